//! Proof that [`Datapaths::apply`] keeps the enumeration equal to a fresh [`enumerate`], and
//! that it records the units of work the changed rows belong to.

use std::collections::BTreeSet;

use rand::rngs::StdRng;
use rand::SeedableRng;
use serde_json::json;

use super::testworld::{commit, World};
use super::*;
use crate::ic::testutil::{empty, replica, u};
use crate::ic::Dbs;
use crate::ovsdb::overlay::Intents;
use crate::ovsdb::Datum;

/// The handler sequence the graph runs for the enumeration's inputs.
fn apply_all(w: &World, d: &mut Datapaths) -> Result<(), Unhandled> {
    let v = w.views();
    for (target, rp, table) in [
        (Target::Nb, &w.nb, "Logical_Switch"),
        (Target::Nb, &w.nb, "Logical_Router"),
        (Target::IcSb, &w.icsb, DP_TABLE),
        (Target::IcSbLocked, &w.icsb, DP_TABLE),
        (Target::IcNb, &w.icnb, "IC_NB_Global"),
        (Target::IcSb, &w.icsb, "Encap"),
    ] {
        let ch = rp.changes(table);
        if !ch.is_empty() {
            d.apply(&v, target, table, &ch)?;
        }
    }
    Ok(())
}

/// The keys the changed rows of the step must have produced (old and new groups / markers).
fn expected_keys(w: &World) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    let typed = w.typed();
    for c in w.icsb.changes(DP_TABLE) {
        let side = |r: Option<&Row>| r.map(IsbDatapath::from_row);
        if side(c.old) == side(c.new) {
            continue; // Nothing the enumeration reads changed (e.g. `type` [] -> "").
        }
        for r in c.old.into_iter().chain(c.new) {
            let dp = IsbDatapath::from_row(r);
            keys.insert(Group::of(typed, &dp).key());
        }
    }
    for (table, col, marker) in [
        ("Logical_Switch", "other_config", LS_TS_MARKER),
        ("Logical_Router", "options", LR_TR_MARKER),
    ] {
        for c in w.nb.changes(table) {
            let relevant =
                c.kind != ChangeKind::Updated || c.column_changed("name") || c.column_changed(col);
            if relevant {
                for r in c.old.into_iter().chain(c.new) {
                    if let Some(m) = r.smap_get(col, marker) {
                        keys.insert(m.to_string());
                    }
                }
            }
        }
    }
    keys
}

#[test]
fn apply_equals_enumerate_on_random_changes() {
    let mut unhandled = 0;
    let mut non_trivial = 0;
    for seed in 0..12u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut w = World::new(true);
        let mut d = enumerate(&w.views());
        d.clear_changed();
        for step in 0..40 {
            let mode = vxlan_mode(&w.views());
            let what = w.random_edit(&mut rng, true);
            let msg = format!("seed {seed} step {step}: {what}");
            let want_keys = expected_keys(&w);
            match apply_all(&w, &mut d) {
                Ok(()) => {
                    assert!(!d.all_changed, "{msg}");
                    assert!(
                        d.changed.is_superset(&want_keys),
                        "{msg}: changed {:?} lacks some of {want_keys:?}",
                        d.changed
                    );
                    if !d.changed.is_empty() {
                        non_trivial += 1;
                    }
                }
                Err(e) => {
                    assert_ne!(mode, vxlan_mode(&w.views()), "{msg}: unhandled {e:?}");
                    unhandled += 1;
                    d = enumerate(&w.views());
                }
            }
            let mut fresh = enumerate(&w.views());
            fresh.clear_changed();
            d.clear_changed();
            assert!(d == fresh, "{msg}\n{d:#?}\n{fresh:#?}");
            w.clear();
        }
    }
    assert!(non_trivial > 100, "too few relevant changes: {non_trivial}");
    assert!(unhandled < 60, "{unhandled}");
}

#[test]
fn own_switch_image_echo_maps_to_its_switch() {
    let mut w = World::new(true);
    let mut d = enumerate(&w.views());
    d.clear_changed();
    let mut nb = Intents::new();
    let ls = nb.insert(
        "Logical_Switch",
        vec![
            ("name", Datum::scalar("ts1")),
            (
                "other_config",
                Datum::smap([("interconn-ts", "ts1"), ("ic-vxlan_mode", "false")]),
            ),
        ],
    );
    commit(&mut w.nb, &nb);
    apply_all(&w, &mut d).expect("handled");
    assert_eq!(d.changed, BTreeSet::from(["ts1".to_string()]));
    assert_eq!(d.ts_image_rows("ts1").collect::<Vec<_>>(), vec![ls]);
    w.clear();
    d.clear_changed();
    // A change the stages do not read (ports, external_ids) records nothing.
    let mut nb = Intents::new();
    nb.update(
        "Logical_Switch",
        ls,
        vec![("external_ids", Datum::smap([("a", "b")]))],
    );
    commit(&mut w.nb, &nb);
    apply_all(&w, &mut d).expect("handled");
    assert!(d.changed.is_empty(), "{:?}", d.changed);
    // Losing the marker moves it out of the index.
    w.clear();
    let mut nb = Intents::new();
    nb.update(
        "Logical_Switch",
        ls,
        vec![("other_config", Datum::smap([("x", "y")]))],
    );
    commit(&mut w.nb, &nb);
    apply_all(&w, &mut d).expect("handled");
    assert_eq!(d.changed, BTreeSet::from(["ts1".to_string()]));
    assert_eq!(d.ts_image_rows("ts1").count(), 0);
}

/// Rows are re-read through the locked replica: a datapath seen only by the unlocked session
/// changes nothing until the locked one has it.
#[test]
fn datapath_rows_are_read_through_the_locked_session() {
    let unlocked = replica(
        "ovn-ic-sb",
        json!({"Datapath_Binding": {u(9): {"transit_switch": "ts1", "tunnel_key": 16711682}}}),
    );
    let mut unlocked_changes = empty("ovn-ic-sb");
    unlocked_changes
        .apply_update2(&json!({"Datapath_Binding": {u(9): {"insert": {"transit_switch": "ts1", "tunnel_key": 16711682}}}}))
        .expect("insert");
    let mut locked = empty("ovn-ic-sb");
    let (nb, sb, icnb) = (empty("ovn-nb"), empty("ovn-sb"), empty("ovn-ic-nb"));
    let mut d;
    {
        let dbs = Dbs {
            nb: &nb,
            sb: &sb,
            icnb: &icnb,
            icsb: &unlocked,
            icsb_locked: &locked,
        };
        let v = Views::new(dbs);
        d = enumerate(&v);
        d.clear_changed();
        let ch = unlocked_changes.changes(DP_TABLE);
        d.apply(&v, Target::IcSb, DP_TABLE, &ch).expect("handled");
        assert!(d.ts.is_empty() && d.changed.is_empty());
    }
    locked
        .apply_update2(&json!({"Datapath_Binding": {u(9): {"insert": {"transit_switch": "ts1", "tunnel_key": 16711682}}}}))
        .expect("insert");
    let dbs = Dbs {
        nb: &nb,
        sb: &sb,
        icnb: &icnb,
        icsb: &unlocked,
        icsb_locked: &locked,
    };
    let v = Views::new(dbs);
    let ch = locked.changes(DP_TABLE);
    d.apply(&v, Target::IcSbLocked, DP_TABLE, &ch)
        .expect("handled");
    assert_eq!(d.changed, BTreeSet::from(["ts1".to_string()]));
    let mut fresh = enumerate(&v);
    fresh.clear_changed();
    d.clear_changed();
    assert_eq!(d, fresh);
    assert_eq!(d.ts["ts1"].tunnel_key, 16711682);
}

#[test]
fn vxlan_mode_change_is_unhandled_and_recompute_flags_everything() {
    let mut w = World::new(true);
    let mut d = enumerate(&w.views());
    assert!(
        d.all_changed,
        "a fresh enumeration means: everything may have changed"
    );
    d.clear_changed();
    let mut icsb = Intents::new();
    icsb.insert(
        "Encap",
        vec![
            ("type", Datum::scalar("vxlan")),
            ("ip", Datum::scalar("10.0.0.1")),
            ("gateway_name", Datum::scalar("gw")),
        ],
    );
    commit(&mut w.icsb, &icsb);
    apply_all(&w, &mut d).expect("option off: the mode stays normal");
    w.clear();
    let g = w.icnb.rows("IC_NB_Global")[0].uuid();
    let mut icnb = Intents::new();
    icnb.update(
        "IC_NB_Global",
        g,
        vec![("options", Datum::smap([("vxlan_mode", "true")]))],
    );
    commit(&mut w.icnb, &icnb);
    assert_eq!(apply_all(&w, &mut d), Err(Unhandled("VXLAN mode changed")));
    assert_eq!(
        d.apply(&w.views(), Target::Sb, "Chassis", &[]),
        Err(Unhandled("not an input of the datapath enumeration"))
    );
}
