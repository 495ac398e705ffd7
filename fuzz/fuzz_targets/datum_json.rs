//! OVSDB datum decoding (`ovn_ic::ovsdb::datum`, `ovn_ic::ovsdb::schema::ColumnType`): the
//! JSON a server sends in `update2`/`update3` notifications and transaction replies.
//!
//! Input: one JSON text `[type, value, diff]` (anything else is used as `value` with a
//! type picked by the first byte). Checked besides "no panic":
//! * a decoded datum re-encodes to JSON that decodes to the same datum;
//! * `apply_diff` either fails leaving the datum unchanged, or yields a datum that satisfies the
//!   column's min/max (for bounded columns) and re-encodes/decodes stably.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ovn_ic::ovsdb::datum::Datum;
use ovn_ic::ovsdb::schema::ColumnType;
use ovn_ic::ovsdb::AtomicType;
use serde_json::{json, Value};

/// A few real column types when the input does not bring its own.
fn preset(n: u8) -> ColumnType {
    match n % 8 {
        0 => ColumnType::scalar(AtomicType::String),
        1 => ColumnType::optional(AtomicType::Integer),
        2 => ColumnType::set(AtomicType::Uuid),
        3 => ColumnType::map(AtomicType::String, AtomicType::String),
        4 => ColumnType::scalar(AtomicType::Real),
        5 => ColumnType::scalar(AtomicType::Boolean),
        6 => ColumnType::map(AtomicType::Integer, AtomicType::Uuid),
        _ => ColumnType::set(AtomicType::String),
    }
}

fn check(ty: &ColumnType, value: &Value, diff: Option<&Value>) {
    let _ = Datum::default_for(ty);
    let decoded = Datum::from_json(value, ty);
    if let Ok(d) = &decoded {
        let again = Datum::from_json(&d.to_json(), ty).expect("re-encoded datum decodes");
        assert_eq!(&again, d, "datum JSON round trip");
        let _ = (d.as_str(), d.as_int(), d.as_bool(), d.as_uuid(), d.len());
        let _ = d.smap_iter().count() + d.strs().count() + d.uuids().count();
    }
    let Some(diff) = diff else { return };
    let Ok(diff) = Datum::diff_from_json(diff, ty) else {
        return;
    };
    let mut base = decoded.unwrap_or_else(|_| Datum::default_for(ty));
    let before = base.clone();
    match base.apply_diff(&diff, ty) {
        Err(_) => assert_eq!(base, before, "a failed diff must leave the datum unchanged"),
        Ok(()) => {
            let n = base.len() as u64;
            let unbounded = ty.min == 0 && ty.max == u64::MAX;
            if !unbounded {
                assert!(n >= ty.min && n <= ty.max, "diff broke min/max: {n}");
            }
            if let Ok(again) = Datum::diff_from_json(&base.to_json(), ty) {
                // Only the element count is relaxed by diff decoding, so this must agree.
                assert_eq!(again, base, "datum JSON round trip after diff");
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let Ok(v) = serde_json::from_slice::<Value>(rest) else {
        return;
    };
    if let Some([t, value, more @ ..]) = v.as_array().map(Vec::as_slice) {
        if let Ok(ty) = ColumnType::from_json(t) {
            // The type's own JSON form parses back to the same type.
            let back = ColumnType::from_json(&ty.to_json()).expect("type JSON round trip");
            assert_eq!(back.to_json(), ty.to_json());
            check(&ty, value, more.first());
            return;
        }
    }
    let ty = preset(pick);
    check(&ty, &v, None);
    check(&ty, &json!(["set", []]), Some(&v));
});
