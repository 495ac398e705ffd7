//! Address_Set synchronisation (spec ovn-ic-routes.md Part B).
//!
//! * Advertise: with `NB_Global.options:ic-as-adv=true`, every SB `Address_Set` whose
//!   `options:ic-adv` is true (northd copies NB options there, so only sets northd already
//!   synchronised are published) gets one IC-SB `Address_Set` row owned by the local AZ
//!   (unlocked IC-SB session), holding the same addresses verbatim. Own rows that are no longer
//!   advertised are deleted.
//! * Learn: with `ic-as-learn=true`, the rows of all *other* AZs are merged by name (union of
//!   addresses) and materialised as NB `Address_Set`s marked `external_ids:ic-learnt=true`.
//!   A local NB set without `ic-learnt` always wins over remote sets of its name: it consumes
//!   the remote union and is never touched. Learned sets whose union vanished (or all learned
//!   sets when learning is off) are deleted.
//!
//! Schema tolerance (§E.2): without IC-SB `Address_Set` the stage does nothing; without SB
//! `Address_Set.options` nothing is advertisable, so own IC-SB rows are deleted (as upstream).

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use crate::ic::incr::{Keys, Unhandled};
use crate::ic::util::smap_bool_default_false;
use crate::ic::{Ctx, Out, Target, Views};
use crate::ovsdb::overlay::{RowIntent, View};
use crate::ovsdb::replica::{Change, ChangeKind, Row};
use crate::ovsdb::{Atom, Datum, Uuid};

const TABLE: &str = "Address_Set";

/// The set of address strings of a row's `addresses` column.
fn addresses(d: &Datum) -> BTreeSet<String> {
    d.strs().map(str::to_string).collect()
}

fn addresses_datum(a: &BTreeSet<String>) -> Datum {
    Datum::set(a.iter().map(|s| Atom::from(s.as_str())))
}

/// The global switches of `NB_Global.options`: `ic-as-adv`, `ic-as-learn`.
const SWITCHES: [&str; 2] = ["ic-as-adv", "ic-as-learn"];

/// Synchronise address sets for the local AZ. See the module documentation.
pub fn run(v: &Views, ctx: &Ctx, out: &mut Out) {
    if !v.icsb.replica().has_table(TABLE) {
        return;
    }
    sync(
        v,
        ctx,
        v.icsb.rows(TABLE),
        v.sb.rows(TABLE),
        v.nb.rows(TABLE),
        out,
    );
}

/// The work of [`run`] for the address set names in `keys` only: everything the stage does
/// for a name reads and writes only the `Address_Set` rows of that name in NB, SB and IC-SB
/// (plus the global switches, whose changes [`keys_for_table`] does not handle).
///
/// Called several times in one engine run, a name already handled in this run (`out` has its
/// writes) is skipped: the views are the same, so it would yield the same writes again.
pub fn run_scoped(v: &Views, ctx: &Ctx, keys: &Keys, out: &mut Out) -> Result<(), Unhandled> {
    if !v.icsb.replica().has_table(TABLE) {
        return Ok(());
    }
    let done = done_keys(v, out);
    let keys: Vec<&String> = keys.iter().filter(|k| !done.contains(*k)).collect();
    let (isb, sb, nb) = (
        named(&v.icsb, &keys),
        named(&v.sb, &keys),
        named(&v.nb, &keys),
    );
    sync(v, ctx, isb, sb, nb, out);
    Ok(())
}

/// The address sets named in `keys`, in UUID order.
fn named<'a>(view: &View<'a>, keys: &[&String]) -> Vec<Cow<'a, Row>> {
    let mut rows = BTreeMap::new();
    for k in keys {
        for r in view.find_by_str(TABLE, "name", k) {
            rows.insert(r.uuid(), r);
        }
    }
    rows.into_values().collect()
}

/// The names whose address sets `out` already writes.
fn done_keys(v: &Views, out: &Out) -> Keys {
    let mut keys = Keys::new();
    for (view, intents) in [(&v.icsb, &out.icsb), (&v.nb, &out.nb)] {
        for (u, i) in intents.table(TABLE) {
            match i {
                RowIntent::Insert(cols) => {
                    if let Some(n) = cols.get("name").and_then(Datum::as_str) {
                        keys.insert(n.to_string());
                    }
                }
                RowIntent::Update(_) | RowIntent::Delete => {
                    if let Some(r) = view.get(TABLE, *u) {
                        keys.insert(r.str("name").to_string());
                    }
                }
            }
        }
    }
    keys
}

/// The address set names that tracked `changes` of `table` in database `target` touch: the
/// old and new names of changed `Address_Set` rows (updates of columns the stage does not
/// read are skipped). A change of the global switches `ic-as-adv`/`ic-as-learn` (or an
/// `NB_Global` row inserted or deleted) is not handled; other `NB_Global` changes and other
/// tables are irrelevant.
pub fn keys_for_table(
    v: &Views,
    _ctx: &Ctx,
    target: Target,
    table: &str,
    changes: &[Change],
) -> Result<Keys, Unhandled> {
    let mut keys = Keys::new();
    if !v.icsb.replica().has_table(TABLE) {
        return Ok(keys);
    }
    let cols: &[&str] = match (target, table) {
        (Target::Nb, "NB_Global") => {
            for c in changes {
                let (Some(old), Some(new)) = (c.old, c.new) else {
                    return Err(Unhandled("NB_Global row inserted or deleted"));
                };
                let flag = |r: &Row, k: &str| smap_bool_default_false(r.smap_get("options", k));
                if SWITCHES.iter().any(|k| flag(old, k) != flag(new, k)) {
                    return Err(Unhandled("address set options changed"));
                }
            }
            return Ok(keys);
        }
        (Target::Nb, TABLE) => &["name", "addresses", "external_ids"],
        (Target::Sb, TABLE) => &["name", "addresses", "options"],
        (Target::IcSb | Target::IcSbLocked, TABLE) => &["name", "addresses", "availability_zone"],
        _ => return Ok(keys),
    };
    for c in changes {
        if c.kind == ChangeKind::Updated && !cols.iter().any(|col| c.column_changed(col)) {
            continue;
        }
        for r in [c.old, c.new].into_iter().flatten() {
            keys.insert(r.str("name").to_string());
        }
    }
    Ok(keys)
}

/// The per-name work of [`run`] on the given IC-SB, SB and NB rows (all, or those of some
/// names), each in UUID order.
fn sync(
    v: &Views,
    ctx: &Ctx,
    isb_rows: Vec<Cow<Row>>,
    sb_rows: Vec<Cow<Row>>,
    nb_rows: Vec<Cow<Row>>,
    out: &mut Out,
) {
    // 1. IC-SB rows: own (by name) and remote (union by name).
    let mut own: BTreeMap<String, (Uuid, BTreeSet<String>)> = BTreeMap::new();
    let mut remote: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for row in isb_rows {
        let name = row.str("name").to_string();
        let addrs = addresses(row.get("addresses"));
        if row.uuid_of("availability_zone") == Some(ctx.az) {
            own.entry(name).or_insert((row.uuid(), addrs));
        } else {
            remote.entry(name).or_default().extend(addrs);
        }
    }

    let nb_global = v.nb.rows("NB_Global").into_iter().next();
    let opt = |k: &str| {
        nb_global
            .as_ref()
            .is_some_and(|g| smap_bool_default_false(g.smap_get("options", k)))
    };
    let global_adv = opt(SWITCHES[0]);
    let global_learn = opt(SWITCHES[1]);

    // 2. Advertise the SB sets marked ic-adv.
    if global_adv {
        for sb_as in sb_rows {
            if !smap_bool_default_false(sb_as.smap_get("options", "ic-adv")) {
                continue;
            }
            let name = sb_as.str("name");
            let addrs = addresses(sb_as.get("addresses"));
            match own.remove(name) {
                None => {
                    out.icsb.insert(
                        TABLE,
                        vec![
                            ("name", Datum::scalar(name)),
                            ("availability_zone", Datum::scalar(ctx.az)),
                            ("addresses", addresses_datum(&addrs)),
                        ],
                    );
                }
                Some((uuid, cur)) => {
                    if cur != addrs {
                        out.icsb
                            .update(TABLE, uuid, vec![("addresses", addresses_datum(&addrs))]);
                    }
                }
            }
        }
    }

    // 3. Own rows no longer advertised.
    for (uuid, _) in own.values() {
        out.icsb.delete(TABLE, *uuid);
    }

    // 4. Learned NB sets: refresh or delete; any NB set consumes the remote union of its name.
    for nb_as in nb_rows {
        let union = remote.remove(nb_as.str("name"));
        if !smap_bool_default_false(nb_as.smap_get("external_ids", "ic-learnt")) {
            continue;
        }
        match union {
            Some(u) if global_learn => {
                if addresses(nb_as.get("addresses")) != u {
                    out.nb.update(
                        TABLE,
                        nb_as.uuid(),
                        vec![("addresses", addresses_datum(&u))],
                    );
                }
            }
            _ => out.nb.delete(TABLE, nb_as.uuid()),
        }
    }

    // 5. Remote sets not present locally.
    if global_learn {
        for (name, u) in &remote {
            out.nb.insert(
                TABLE,
                vec![
                    ("name", Datum::scalar(name.as_str())),
                    ("addresses", addresses_datum(u)),
                    ("external_ids", Datum::smap([("ic-learnt", "true")])),
                ],
            );
        }
    }
}

#[cfg(test)]
mod incr_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ic::testutil::{replica, u};
    use crate::ic::Dbs;
    use crate::ovsdb::overlay::RowIntent;
    use crate::ovsdb::replica::Replica;
    use serde_json::{json, Value};

    const AZ1: u32 = 0xa1;
    const AZ2: u32 = 0xa2;
    const AZ3: u32 = 0xa3;

    struct World {
        nb: Replica,
        sb: Replica,
        icnb: Replica,
        icsb: Replica,
    }

    fn set(v: &[&str]) -> Value {
        json!(["set", v])
    }

    fn smap(kv: &[(&str, &str)]) -> Value {
        json!([
            "map",
            kv.iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>()
        ])
    }

    fn world(nb_opts: &[(&str, &str)], nb_sets: Value, sb_sets: Value, icsb_sets: Value) -> World {
        let mut nb = json!({"NB_Global": {u(1): {"name": "az1", "options": smap(nb_opts)}}});
        nb["Address_Set"] = nb_sets;
        let mut sb = json!({});
        sb["Address_Set"] = sb_sets;
        let mut icsb = json!({"Availability_Zone": {
            u(AZ1): {"name": "az1"}, u(AZ2): {"name": "az2"}, u(AZ3): {"name": "az3"}
        }});
        if crate::ic::testutil::empty("ovn-ic-sb").has_table(TABLE) {
            icsb["Address_Set"] = icsb_sets;
        }
        World {
            nb: replica("ovn-nb", nb),
            sb: replica("ovn-sb", sb),
            icnb: replica("ovn-ic-nb", json!({})),
            icsb: replica("ovn-ic-sb", icsb),
        }
    }

    fn has_as_table() -> bool {
        let ok = crate::ic::testutil::empty("ovn-ic-sb").has_table(TABLE)
            && crate::ic::testutil::empty("ovn-sb").has_column(TABLE, "options");
        if !ok {
            eprintln!("skipping: schemas without IC-SB Address_Set / SB Address_Set.options");
        }
        ok
    }

    fn ctx() -> Ctx {
        Ctx {
            az: u(AZ1).parse().unwrap(),
            az_name: "az1".into(),
            isb_leader: false,
        }
    }

    fn run_on(w: &World) -> Out {
        let dbs = Dbs {
            nb: &w.nb,
            sb: &w.sb,
            icnb: &w.icnb,
            icsb: &w.icsb,
            icsb_locked: &w.icsb,
        };
        let mut out = Out::default();
        run(&Views::new(dbs), &ctx(), &mut out);
        out
    }

    fn inserts(i: &crate::ovsdb::overlay::Intents) -> Vec<BTreeMap<String, Datum>> {
        i.table(TABLE)
            .filter_map(|(_, r)| match r {
                RowIntent::Insert(c) => Some(c.clone()),
                _ => None,
            })
            .collect()
    }

    fn deletes(i: &crate::ovsdb::overlay::Intents) -> Vec<Uuid> {
        i.table(TABLE)
            .filter_map(|(u, r)| matches!(r, RowIntent::Delete).then_some(*u))
            .collect()
    }

    fn updates(i: &crate::ovsdb::overlay::Intents) -> Vec<(Uuid, BTreeMap<String, Datum>)> {
        i.table(TABLE)
            .filter_map(|(u, r)| match r {
                RowIntent::Update(c) => Some((*u, c.clone())),
                _ => None,
            })
            .collect()
    }

    fn strs(v: &[&str]) -> Datum {
        Datum::set(v.iter().map(|s| Atom::from(*s)))
    }

    fn uu(n: u32) -> Uuid {
        u(n).parse().unwrap()
    }

    const BOTH: &[(&str, &str)] = &[("ic-as-adv", "true"), ("ic-as-learn", "true")];

    #[test]
    fn advertises_marked_sb_sets_only() {
        if !has_as_table() {
            return;
        }
        let w = world(
            BOTH,
            json!({}),
            json!({
                u(10): {"name": "adv", "addresses": set(&["1.1.1.1", "2001:0db8::1"]),
                        "options": smap(&[("ic-adv", "TRUE")])},
                u(11): {"name": "plain", "addresses": set(&["1.1.1.2"])},
                u(12): {"name": "no", "addresses": set(&["1.1.1.3"]),
                        "options": smap(&[("ic-adv", "yes")])},
            }),
            json!({}),
        );
        let out = run_on(&w);
        let ins = inserts(&out.icsb);
        assert_eq!(ins.len(), 1);
        assert_eq!(ins[0]["name"], Datum::scalar("adv"));
        assert_eq!(ins[0]["availability_zone"], Datum::scalar(uu(AZ1)));
        // Addresses verbatim (no IPv6 re-formatting), external_ids never written.
        assert_eq!(ins[0]["addresses"], strs(&["1.1.1.1", "2001:0db8::1"]));
        assert!(!ins[0].contains_key("external_ids"));
        assert!(out.icsb_locked.is_empty() && out.nb.is_empty() && out.sb.is_empty());
    }

    #[test]
    fn own_row_is_synced_and_stale_ones_deleted() {
        if !has_as_table() {
            return;
        }
        let w = world(
            BOTH,
            json!({}),
            json!({
                u(10): {"name": "a", "addresses": set(&["1.1.1.1", "1.1.1.3"]),
                        "options": smap(&[("ic-adv", "true")])},
                u(11): {"name": "b", "addresses": set(&["1.1.1.2"]),
                        "options": smap(&[("ic-adv", "false")])},
                u(13): {"name": "same", "addresses": set(&["9.9.9.9"]),
                        "options": smap(&[("ic-adv", "true")])},
            }),
            json!({
                u(20): {"name": "a", "addresses": set(&["1.1.1.1", "1.1.1.2"]),
                        "availability_zone": ["uuid", u(AZ1)]},
                u(21): {"name": "b", "addresses": set(&["1.1.1.2"]),
                        "availability_zone": ["uuid", u(AZ1)]},
                u(22): {"name": "gone", "addresses": set(&[]),
                        "availability_zone": ["uuid", u(AZ1)]},
                u(23): {"name": "same", "addresses": set(&["9.9.9.9"]),
                        "availability_zone": ["uuid", u(AZ1)]},
                // Another AZ's row of the same name is not ours to touch.
                u(24): {"name": "b", "addresses": set(&["7.7.7.7"]),
                        "availability_zone": ["uuid", u(AZ2)]},
            }),
        );
        let out = run_on(&w);
        assert!(inserts(&out.icsb).is_empty());
        assert_eq!(
            updates(&out.icsb),
            vec![(
                uu(20),
                BTreeMap::from([("addresses".to_string(), strs(&["1.1.1.1", "1.1.1.3"]))])
            )]
        );
        let mut d = deletes(&out.icsb);
        d.sort();
        assert_eq!(d, vec![uu(21), uu(22)]);
    }

    #[test]
    fn adv_off_removes_all_own_rows() {
        if !has_as_table() {
            return;
        }
        let w = world(
            &[("ic-as-adv", "false"), ("ic-as-learn", "true")],
            json!({}),
            json!({u(10): {"name": "a", "addresses": set(&["1.1.1.1"]),
                           "options": smap(&[("ic-adv", "true")])}}),
            json!({
                u(20): {"name": "a", "addresses": set(&["1.1.1.1"]),
                        "availability_zone": ["uuid", u(AZ1)]},
                u(21): {"name": "x", "addresses": set(&["5.5.5.5"]),
                        "availability_zone": ["uuid", u(AZ2)]},
            }),
        );
        let out = run_on(&w);
        assert_eq!(deletes(&out.icsb), vec![uu(20)]);
        assert!(inserts(&out.icsb).is_empty());
        // Learning still works; the own row is never learned back.
        let ins = inserts(&out.nb);
        assert_eq!(ins.len(), 1);
        assert_eq!(ins[0]["name"], Datum::scalar("x"));
    }

    #[test]
    fn learns_union_of_other_azs_with_ic_learnt() {
        if !has_as_table() {
            return;
        }
        let w = world(
            BOTH,
            json!({}),
            json!({}),
            json!({
                u(20): {"name": "shared", "addresses": set(&["5.5.5.2", "2001:db8::2"]),
                        "availability_zone": ["uuid", u(AZ2)]},
                u(21): {"name": "shared", "addresses": set(&["5.5.5.3", "2001:db8::3", "5.5.5.2"]),
                        "availability_zone": ["uuid", u(AZ3)]},
                u(22): {"name": "mine", "addresses": set(&["1.1.1.1"]),
                        "availability_zone": ["uuid", u(AZ1)]},
            }),
        );
        let out = run_on(&w);
        let ins = inserts(&out.nb);
        assert_eq!(ins.len(), 1);
        assert_eq!(
            ins[0],
            BTreeMap::from([
                ("name".to_string(), Datum::scalar("shared")),
                (
                    "addresses".to_string(),
                    strs(&["5.5.5.2", "5.5.5.3", "2001:db8::2", "2001:db8::3"])
                ),
                (
                    "external_ids".to_string(),
                    Datum::smap([("ic-learnt", "true")])
                ),
            ])
        );
        // The own row is not learned and (no SB set, adv on) is deleted.
        assert_eq!(deletes(&out.icsb), vec![uu(22)]);
    }

    #[test]
    fn learned_sets_follow_the_union_and_local_sets_win() {
        if !has_as_table() {
            return;
        }
        let w = world(
            BOTH,
            json!({
                // Learned, union changed.
                u(30): {"name": "l1", "addresses": set(&["1.0.0.1", "1.0.0.9"]),
                        "external_ids": smap(&[("ic-learnt", "true")])},
                // Learned, union unchanged.
                u(31): {"name": "l2", "addresses": set(&["2.0.0.1"]),
                        "external_ids": smap(&[("ic-learnt", "True")])},
                // Learned, remote gone.
                u(32): {"name": "l3", "addresses": set(&["3.0.0.1"]),
                        "external_ids": smap(&[("ic-learnt", "true")])},
                // Local set of a remote name: untouched, and it consumes the union.
                u(33): {"name": "dup", "addresses": set(&["4.0.0.1"])},
                // ic-learnt not "true": local.
                u(34): {"name": "dup2", "addresses": set(&[]),
                        "external_ids": smap(&[("ic-learnt", "1")])},
            }),
            json!({}),
            json!({
                u(20): {"name": "l1", "addresses": set(&["1.0.0.1", "1.0.0.2"]),
                        "availability_zone": ["uuid", u(AZ2)]},
                u(21): {"name": "l2", "addresses": set(&["2.0.0.1"]),
                        "availability_zone": ["uuid", u(AZ3)]},
                u(22): {"name": "dup", "addresses": set(&["4.0.0.2"]),
                        "availability_zone": ["uuid", u(AZ2)]},
                u(23): {"name": "dup2", "addresses": set(&["4.0.0.3"]),
                        "availability_zone": ["uuid", u(AZ3)]},
            }),
        );
        let out = run_on(&w);
        assert!(inserts(&out.nb).is_empty());
        assert_eq!(
            updates(&out.nb),
            vec![(
                uu(30),
                BTreeMap::from([("addresses".to_string(), strs(&["1.0.0.1", "1.0.0.2"]))])
            )]
        );
        assert_eq!(deletes(&out.nb), vec![uu(32)]);
    }

    #[test]
    fn learn_off_deletes_learned_sets_and_learns_nothing() {
        if !has_as_table() {
            return;
        }
        let w = world(
            &[("ic-as-adv", "true")],
            json!({
                u(30): {"name": "l1", "addresses": set(&["1.0.0.1"]),
                        "external_ids": smap(&[("ic-learnt", "true")])},
                u(33): {"name": "local", "addresses": set(&["4.0.0.1"])},
            }),
            json!({}),
            json!({
                u(20): {"name": "l1", "addresses": set(&["1.0.0.1"]),
                        "availability_zone": ["uuid", u(AZ2)]},
                u(21): {"name": "new", "addresses": set(&["2.0.0.1"]),
                        "availability_zone": ["uuid", u(AZ2)]},
            }),
        );
        let out = run_on(&w);
        assert_eq!(deletes(&out.nb), vec![uu(30)]);
        assert!(inserts(&out.nb).is_empty() && updates(&out.nb).is_empty());
    }

    #[test]
    fn nothing_configured_touches_only_stale_state() {
        if !has_as_table() {
            return;
        }
        // Neither option set: no advertising, no learning, local sets untouched.
        let w = world(
            &[],
            json!({u(33): {"name": "local", "addresses": set(&["4.0.0.1"])}}),
            json!({u(10): {"name": "local", "addresses": set(&["4.0.0.1"]),
                           "options": smap(&[("ic-adv", "true")])}}),
            json!({u(21): {"name": "r", "addresses": set(&["2.0.0.1"]),
                           "availability_zone": ["uuid", u(AZ2)]}}),
        );
        assert!(run_on(&w).is_empty());
    }

    #[test]
    fn converged_state_writes_nothing() {
        if !has_as_table() {
            return;
        }
        let w = world(
            BOTH,
            json!({
                u(30): {"name": "r", "addresses": set(&["2.0.0.1", "3.0.0.1"]),
                        "external_ids": smap(&[("ic-learnt", "true")])},
                u(31): {"name": "a", "addresses": set(&["1.1.1.1"]),
                        "options": smap(&[("ic-adv", "true")])},
            }),
            json!({u(10): {"name": "a", "addresses": set(&["1.1.1.1"]),
                           "options": smap(&[("ic-adv", "true")])}}),
            json!({
                u(20): {"name": "a", "addresses": set(&["1.1.1.1"]),
                        "availability_zone": ["uuid", u(AZ1)]},
                u(21): {"name": "r", "addresses": set(&["2.0.0.1"]),
                        "availability_zone": ["uuid", u(AZ2)]},
                u(22): {"name": "r", "addresses": set(&["3.0.0.1"]),
                        "availability_zone": ["uuid", u(AZ3)]},
            }),
        );
        assert!(run_on(&w).is_empty());
    }

    #[test]
    fn without_isb_table_does_nothing() {
        if crate::ic::testutil::empty("ovn-ic-sb").has_table(TABLE) {
            eprintln!("skipping: IC-SB has Address_Set (run with OVN_SCHEMA_DIR=/usr/share/ovn)");
            return;
        }
        let w = world(
            BOTH,
            json!({u(30): {"name": "l", "addresses": set(&["1.0.0.1"]),
                           "external_ids": smap(&[("ic-learnt", "true")])}}),
            json!({u(10): {"name": "a", "addresses": set(&["1.1.1.1"])}}),
            json!({}),
        );
        assert!(run_on(&w).is_empty());
    }
}
