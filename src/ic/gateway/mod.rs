//! Gateway synchronisation (spec ovn-ic-core.md §4.2), both directions:
//!
//! * local interconnection gateways (SB `Chassis` with `other_config:is-interconn=true`) are
//!   published as IC-SB `Gateway` + `Encap` rows of the local AZ (unlocked IC-SB session);
//! * other AZs' gateways are materialised in the local SB as `Chassis` + `Encap` rows marked
//!   `other_config:is-remote=true`.
//!
//! A row is refilled only when the "differs" test says so (hostname, encap count, or some
//! IC-SB encap without an SB encap of the same `(type, ip)` and `options`); a refill inserts new
//! `Encap` rows and points the gateway/chassis at exactly those. The old ones are left to the
//! server's garbage collection (Encap is a non-root table in both schemas).
//!
//! Robustness beyond upstream (which would crash or fail a transaction on every run):
//! * encap references that do not resolve are ignored (the IDL drops dangling references the
//!   same way); a gateway/chassis left without any encap is not copied (the target `encaps`
//!   column has `min: 1`) and a WARN is logged;
//! * a remote gateway whose name equals an existing local SB chassis is not materialised (the
//!   SB `Chassis` `[name]` index would reject the insert), and a local gateway whose name another
//!   AZ already publishes is not inserted into IC-SB (the `Gateway` `[name]` index would reject
//!   it); both are logged. Chassis names must be unique across AZs (quirk Q12).

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use crate::ic::incr::{Keys, Unhandled};
use crate::ic::util::smap_bool_default_false;
use crate::ic::{Ctx, Out, Target, Views};
use crate::ovsdb::overlay::{RowIntent, View};
use crate::ovsdb::replica::{Change, ChangeKind, Row};
use crate::ovsdb::{Atom, Datum, Uuid};

/// Rate limit of this stage's warnings (as upstream's 5/min, burst 1).
static WARN_RL: crate::daemon::vlog::RateLimit = crate::daemon::vlog::RateLimit::new(5, 1);

/// One encapsulation as the "differs" test and the copy see it.
#[derive(Debug, Clone, PartialEq)]
struct EncapData {
    ty: String,
    ip: String,
    options: Datum,
}

/// A gateway (IC-SB `Gateway`) or chassis (SB `Chassis`) reduced to what is compared/copied.
#[derive(Debug, Clone)]
struct Node {
    uuid: Uuid,
    name: String,
    hostname: String,
    encaps: Vec<EncapData>,
}

/// Whether SB chassis `name` is local, i.e. exists (as seen through `sb`, including rows the
/// gateway stage inserted this run) and is not a remote gateway materialised by ovn-ic
/// (`other_config:is-remote` not true). Port-binding stages use this to decide which AZ owns a
/// port bound to a chassis.
pub fn chassis_is_local(sb: &View, name: &str) -> bool {
    sb.find_by_str("Chassis", "name", name)
        .iter()
        .any(|c| !smap_bool_default_false(c.smap_get("other_config", "is-remote")))
}

/// Synchronise gateways for the local AZ `ctx.az`. See the module documentation.
pub fn run(v: &Views, ctx: &Ctx, out: &mut Out) {
    sync(v, ctx, v.icsb.rows("Gateway"), v.sb.rows("Chassis"), out);
}

/// The work of [`run`] for the names in `keys` only (the units of work are chassis/gateway
/// names: everything the stage does for a name reads and writes only the IC-SB `Gateway` and
/// SB `Chassis` rows of that name, their encaps, and — for the `(type, ip)` clash test — the
/// encaps of the same `(type, ip)`, which [`keys_for_table`] maps to their owners' names).
///
/// Called several times in one engine run (one call per changed input), a name already handled
/// in this run (`out` has its writes) is skipped: the views are the same, so it would yield the
/// same writes again (with new inserts).
pub fn run_scoped(v: &Views, ctx: &Ctx, keys: &Keys, out: &mut Out) -> Result<(), Unhandled> {
    let done = done_keys(v, out);
    let mut gateways = BTreeMap::new();
    let mut chassis = BTreeMap::new();
    for k in keys.iter().filter(|k| !done.contains(*k)) {
        for r in v.icsb.find_by_str("Gateway", "name", k) {
            gateways.insert(r.uuid(), r);
        }
        for r in v.sb.find_by_str("Chassis", "name", k) {
            chassis.insert(r.uuid(), r);
        }
    }
    sync(
        v,
        ctx,
        gateways.into_values().collect(),
        chassis.into_values().collect(),
        out,
    );
    Ok(())
}

/// The names whose gateway/chassis `out` already writes.
fn done_keys(v: &Views, out: &Out) -> Keys {
    let mut keys = Keys::new();
    for (view, intents, table) in [(&v.icsb, &out.icsb, "Gateway"), (&v.sb, &out.sb, "Chassis")] {
        for (u, i) in intents.table(table) {
            match i {
                RowIntent::Insert(cols) => {
                    if let Some(n) = cols.get("name").and_then(Datum::as_str) {
                        keys.insert(n.to_string());
                    }
                }
                RowIntent::Update(_) | RowIntent::Delete => {
                    if let Some(r) = view.get(table, *u) {
                        keys.insert(r.str("name").to_string());
                    }
                }
            }
        }
    }
    keys
}

/// The names that tracked `changes` of `table` in database `target` touch: a chassis or
/// gateway by its old and new name; an encap by its owner column and the names of the rows
/// referencing it, plus the owners of every encap (in SB and IC-SB) with the same
/// `(type, ip)`, whose clash test it may decide. Other tables are irrelevant to the stage.
pub fn keys_for_table(
    v: &Views,
    _ctx: &Ctx,
    target: Target,
    table: &str,
    changes: &[Change],
) -> Result<Keys, Unhandled> {
    let mut keys = Keys::new();
    match (target, table) {
        (Target::Sb, "Chassis") => names_of(
            changes,
            &["name", "hostname", "encaps", "other_config"],
            &mut keys,
        ),
        (Target::IcSb | Target::IcSbLocked, "Gateway") => names_of(
            changes,
            &["name", "hostname", "encaps", "availability_zone"],
            &mut keys,
        ),
        (Target::Sb | Target::IcSb | Target::IcSbLocked, "Encap") => {
            encap_keys(v, changes, &mut keys)
        }
        _ => {}
    }
    Ok(keys)
}

/// Old and new names of the changed rows, skipping updates of none of `cols`.
fn names_of(changes: &[Change], cols: &[&str], keys: &mut Keys) {
    for c in changes {
        if c.kind == ChangeKind::Updated && !cols.iter().any(|col| c.column_changed(col)) {
            continue;
        }
        for r in [c.old, c.new].into_iter().flatten() {
            keys.insert(r.str("name").to_string());
        }
    }
}

const OWNER_COLS: [&str; 2] = ["chassis_name", "gateway_name"];

fn encap_keys(v: &Views, changes: &[Change], keys: &mut Keys) {
    let mut pairs: BTreeSet<(String, String)> = BTreeSet::new();
    let mut ids: BTreeSet<Uuid> = BTreeSet::new();
    for c in changes {
        if c.kind == ChangeKind::Updated
            && !["type", "ip", "options"]
                .into_iter()
                .chain(OWNER_COLS)
                .any(|col| c.column_changed(col))
        {
            continue;
        }
        ids.insert(c.uuid);
        for r in [c.old, c.new].into_iter().flatten() {
            pairs.insert((r.str("type").to_string(), r.str("ip").to_string()));
            for col in OWNER_COLS {
                if r.has_column(col) && !r.str(col).is_empty() {
                    keys.insert(r.str(col).to_string());
                }
            }
        }
    }
    if ids.is_empty() {
        return;
    }
    for view in [&v.sb, &v.icsb] {
        for e in view.rows("Encap") {
            if pairs.contains(&(e.str("type").to_string(), e.str("ip").to_string())) {
                ids.insert(e.uuid());
            }
        }
    }
    for (view, table) in [(&v.sb, "Chassis"), (&v.icsb, "Gateway")] {
        for r in view.rows(table) {
            if r.get("encaps").uuids().any(|u| ids.contains(&u)) {
                keys.insert(r.str("name").to_string());
            }
        }
    }
}

/// The per-name work of [`run`] on the given IC-SB gateways and SB chassis (all rows, or those
/// of some names), in UUID order.
fn sync(v: &Views, ctx: &Ctx, gateways: Vec<Cow<Row>>, chassis: Vec<Cow<Row>>, out: &mut Out) {
    // 1. IC-SB gateways split into local and remote, keyed by name.
    let mut local: BTreeMap<String, Node> = BTreeMap::new();
    let mut remote: BTreeMap<String, Node> = BTreeMap::new();
    for gw in gateways {
        let node = node(&v.icsb, &gw, "Gateway");
        let set = if gw.uuid_of("availability_zone") == Some(ctx.az) {
            &mut local
        } else {
            &mut remote
        };
        set.entry(node.name.clone()).or_insert(node);
    }
    let remote_names: Vec<String> = remote.keys().cloned().collect();

    // 2. Every SB chassis.
    for ch in chassis {
        if smap_bool_default_false(ch.smap_get("other_config", "is-interconn")) {
            let chassis = node(&v.sb, &ch, "Chassis");
            match local.remove(&chassis.name) {
                None => {
                    if remote_names.contains(&chassis.name) {
                        crate::vlog_rl!(WARN_RL, warn,
                            target: "ovn_ic",
                            "Gateway {} is already registered by another availability zone; not registering it for {}.",
                            chassis.name,
                            ctx.az_name
                        );
                    } else if chassis.encaps.is_empty() {
                        warn_no_encaps("Chassis", &chassis.name);
                    } else if !encap_clash(&v.icsb, &chassis, "gateway_name") {
                        let encaps = insert_isb_encaps(out, &chassis);
                        out.icsb.insert(
                            "Gateway",
                            vec![
                                ("availability_zone", Datum::scalar(ctx.az)),
                                ("name", Datum::scalar(chassis.name.as_str())),
                                ("hostname", Datum::scalar(chassis.hostname.as_str())),
                                ("encaps", encaps),
                            ],
                        );
                    }
                }
                Some(gw) if differs(&gw, &chassis) => {
                    if chassis.encaps.is_empty() {
                        warn_no_encaps("Chassis", &chassis.name);
                    } else if !encap_clash(&v.icsb, &chassis, "gateway_name") {
                        let encaps = insert_isb_encaps(out, &chassis);
                        out.icsb.update(
                            "Gateway",
                            gw.uuid,
                            vec![
                                ("hostname", Datum::scalar(chassis.hostname.as_str())),
                                ("encaps", encaps),
                            ],
                        );
                    }
                }
                Some(_) => {}
            }
        } else if smap_bool_default_false(ch.smap_get("other_config", "is-remote")) {
            let name = ch.str("name");
            match remote.remove(name) {
                None => out.sb.delete("Chassis", ch.uuid()),
                Some(gw) => {
                    let chassis = node(&v.sb, &ch, "Chassis");
                    if differs(&gw, &chassis) {
                        if gw.encaps.is_empty() {
                            warn_no_encaps("Gateway", &gw.name);
                        } else if !encap_clash(&v.sb, &gw, "chassis_name") {
                            let encaps = insert_sb_encaps(out, &gw);
                            out.sb.update(
                                "Chassis",
                                ch.uuid(),
                                vec![
                                    ("hostname", Datum::scalar(gw.hostname.as_str())),
                                    ("other_config", remote_other_config(ch.get("other_config"))),
                                    ("encaps", encaps),
                                ],
                            );
                        }
                    }
                }
            }
        }
    }

    // 3. Local gateways whose chassis vanished or stopped being a gateway.
    for gw in local.values() {
        out.icsb.delete("Gateway", gw.uuid);
    }

    // 4. Remote gateways not materialised yet.
    for gw in remote.values() {
        if !v.sb.find_by_str("Chassis", "name", &gw.name).is_empty() {
            crate::vlog_rl!(WARN_RL, warn,
                target: "ovn_ic",
                "Chassis {} of another availability zone conflicts with a local chassis of the same name; not syncing it to SB.",
                gw.name
            );
            continue;
        }
        if gw.encaps.is_empty() {
            warn_no_encaps("Gateway", &gw.name);
            continue;
        }
        if encap_clash(&v.sb, gw, "chassis_name") {
            continue;
        }
        let encaps = insert_sb_encaps(out, gw);
        out.sb.insert(
            "Chassis",
            vec![
                ("name", Datum::scalar(gw.name.as_str())),
                ("hostname", Datum::scalar(gw.hostname.as_str())),
                ("other_config", Datum::smap([("is-remote", "true")])),
                ("encaps", encaps),
            ],
        );
    }
}

/// Read a gateway/chassis and resolve its encaps through `view` (dangling references skipped).
fn node(view: &View, row: &Row, what: &str) -> Node {
    let mut encaps = Vec::new();
    for e in row.get("encaps").uuids() {
        match view.get("Encap", e) {
            Some(er) => encaps.push(EncapData {
                ty: er.str("type").to_string(),
                ip: er.str("ip").to_string(),
                options: er.get("options").clone(),
            }),
            None => {
                crate::vlog_rl!(WARN_RL, warn,
                    target: "ovn_ic",
                    "{} {} references a missing encap {}; ignoring it.",
                    what,
                    row.str("name"),
                    e
                );
            }
        }
    }
    Node {
        uuid: row.uuid(),
        name: row.str("name").to_string(),
        hostname: row.str("hostname").to_string(),
        encaps,
    }
}

/// Whether one of `node`'s encaps has the `(type, ip)` of an encap that belongs to another
/// chassis/gateway (`owner_col` names the owner): `(type, ip)` is unique in both the IC-SB and
/// the SB Encap tables, so writing it would fail the whole transaction (quirk Q12). The gateway
/// is skipped with a warning instead, and the rest of the batch goes through.
fn encap_clash(view: &View, node: &Node, owner_col: &str) -> bool {
    for e in &node.encaps {
        let clash = view.rows("Encap").into_iter().find(|r| {
            r.str("type") == e.ty && r.str("ip") == e.ip && r.str(owner_col) != node.name
        });
        if let Some(r) = clash {
            crate::vlog_rl!(WARN_RL, warn,
                target: "ovn_ic",
                "Encap {} {} of {} is already used by {}; not syncing {}.",
                e.ty, e.ip, node.name, r.str(owner_col), node.name
            );
            return true;
        }
    }
    false
}

fn warn_no_encaps(table: &str, name: &str) {
    crate::vlog_rl!(WARN_RL, warn, target: "ovn_ic", "{} {} has no encap; not syncing it.", table, name);
}

/// The "differs" test: hostnames, encap counts, and for every IC-SB encap an SB encap with the
/// same `(type, ip)` and equal `options`. Chassis `other_config` and encap
/// `chassis_name`/`gateway_name` are not compared.
fn differs(gw: &Node, chassis: &Node) -> bool {
    if gw.hostname != chassis.hostname || gw.encaps.len() != chassis.encaps.len() {
        return true;
    }
    gw.encaps.iter().any(
        |g| match chassis.encaps.iter().find(|c| c.ty == g.ty && c.ip == g.ip) {
            Some(c) => c.options != g.options,
            None => true,
        },
    )
}

/// Insert one IC-SB Encap per chassis encap; returns the `encaps` column value.
fn insert_isb_encaps(out: &mut Out, chassis: &Node) -> Datum {
    let uuids = chassis.encaps.iter().map(|e| {
        Atom::Uuid(out.icsb.insert(
            "Encap",
            vec![
                ("gateway_name", Datum::scalar(chassis.name.as_str())),
                ("ip", Datum::scalar(e.ip.as_str())),
                ("type", Datum::scalar(e.ty.as_str())),
                ("options", e.options.clone()),
            ],
        ))
    });
    Datum::set(uuids.collect::<Vec<_>>())
}

/// Insert one SB Encap per gateway encap; returns the `encaps` column value.
fn insert_sb_encaps(out: &mut Out, gw: &Node) -> Datum {
    let uuids = gw.encaps.iter().map(|e| {
        Atom::Uuid(out.sb.insert(
            "Encap",
            vec![
                ("chassis_name", Datum::scalar(gw.name.as_str())),
                ("ip", Datum::scalar(e.ip.as_str())),
                ("type", Datum::scalar(e.ty.as_str())),
                ("options", e.options.clone()),
            ],
        ))
    });
    Datum::set(uuids.collect::<Vec<_>>())
}

/// `other_config` with `is-remote=true` merged in (whole map, so later stages see it).
fn remote_other_config(cur: &Datum) -> Datum {
    let mut m: BTreeMap<String, String> = cur
        .smap_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    m.insert("is-remote".to_string(), "true".to_string());
    Datum::smap(m)
}

#[cfg(test)]
mod incr_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ic::az::test_logs::with_logs;
    use crate::ic::testutil::{empty, replica, u};
    use crate::ic::Dbs;
    use crate::ovsdb::overlay::RowIntent;
    use crate::ovsdb::replica::Replica;
    use serde_json::{json, Map, Value};

    const AZ1: u32 = 1;
    const AZ2: u32 = 2;

    fn uuid(n: u32) -> Uuid {
        Uuid(u128::from(n))
    }

    fn ctx(az: u32, name: &str) -> Ctx {
        Ctx {
            az: uuid(az),
            az_name: name.to_string(),
            isb_leader: false,
        }
    }

    fn smap(pairs: &[(&str, &str)]) -> Value {
        json!([
            "map",
            pairs.iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>()
        ])
    }

    fn refs(ns: &[u32]) -> Value {
        json!([
            "set",
            ns.iter()
                .map(|n| json!(["uuid", u(*n)]))
                .collect::<Vec<_>>()
        ])
    }

    /// An Encap row (`owner` is `chassis_name` for SB, `gateway_name` for IC-SB).
    fn encap(owner_col: &str, owner: &str, ty: &str, ip: &str) -> Value {
        json!({"type": ty, "ip": ip, owner_col: owner, "options": smap(&[("csum", "true")])})
    }

    struct World {
        nb: Replica,
        sb: Replica,
        icnb: Replica,
        icsb: Replica,
    }

    impl World {
        fn new(sb: Value, icsb: Value) -> World {
            World {
                nb: empty("ovn-nb"),
                sb: replica("ovn-sb", sb),
                icnb: empty("ovn-ic-nb"),
                icsb: replica("ovn-ic-sb", icsb),
            }
        }
        fn views(&self) -> Views<'_> {
            Views::new(Dbs {
                nb: &self.nb,
                sb: &self.sb,
                icnb: &self.icnb,
                icsb: &self.icsb,
                icsb_locked: &self.icsb,
            })
        }
        fn run(&self, c: &Ctx) -> (Out, Vec<String>) {
            let mut out = Out::default();
            let ((), logs) = with_logs(|| run(&self.views(), c, &mut out));
            (out, logs)
        }
        /// The databases after `out` committed (Encap rows garbage-collected like the server does).
        fn commit(&self, out: &Out) -> World {
            let v = self.views();
            let v = v.with(out);
            World {
                nb: commit(&v.nb, "ovn-nb", None),
                sb: commit(&v.sb, "ovn-sb", Some("Chassis")),
                icnb: commit(&v.icnb, "ovn-ic-nb", None),
                icsb: commit(&v.icsb, "ovn-ic-sb", Some("Gateway")),
            }
        }
    }

    fn commit(v: &View, schema: &str, encap_owner: Option<&str>) -> Replica {
        let referenced: Vec<Uuid> = encap_owner
            .map(|t| {
                v.rows(t)
                    .iter()
                    .flat_map(|r| r.get("encaps").uuids().collect::<Vec<_>>())
                    .collect()
            })
            .unwrap_or_default();
        let mut tables = Map::new();
        for t in v.replica().table_names() {
            let rows: Map<String, Value> = v
                .rows(t)
                .iter()
                .filter(|r| t != "Encap" || referenced.contains(&r.uuid()))
                .map(|r| (r.uuid().to_string(), r.to_json()))
                .collect();
            if !rows.is_empty() {
                tables.insert(t.to_string(), Value::Object(rows));
            }
        }
        replica(schema, Value::Object(tables))
    }

    fn azs() -> Value {
        json!({u(AZ1): {"name": "az1"}, u(AZ2): {"name": "az2"}})
    }

    /// AZ1's SB with gateway chassis gw1 (geneve + vxlan on 192.168.0.1, csum=true).
    fn sb_with_gw1(interconn: &str) -> Value {
        json!({
            "Chassis": {u(10): {"name": "gw1", "hostname": "gw1", "encaps": refs(&[11, 12]),
                                 "other_config": smap(&[("is-interconn", interconn)])},
                        u(20): {"name": "hv1", "hostname": "hv1", "encaps": refs(&[21])}},
            "Encap": {u(11): encap("chassis_name", "gw1", "geneve", "192.168.0.1"),
                      u(12): encap("chassis_name", "gw1", "vxlan", "192.168.0.1"),
                      u(21): encap("chassis_name", "hv1", "geneve", "192.168.0.2")}
        })
    }

    fn row_cols(i: &RowIntent) -> &BTreeMap<String, Datum> {
        match i {
            RowIntent::Insert(c) | RowIntent::Update(c) => c,
            RowIntent::Delete => panic!("delete"),
        }
    }

    fn inserts<'a>(
        i: &'a crate::ovsdb::overlay::Intents,
        t: &str,
    ) -> Vec<(&'a Uuid, &'a BTreeMap<String, Datum>)> {
        i.table(t)
            .filter(|(_, x)| matches!(x, RowIntent::Insert(_)))
            .map(|(u, x)| (u, row_cols(x)))
            .collect()
    }

    fn s(d: &Datum) -> &str {
        d.as_str().unwrap_or("")
    }

    fn pairs(d: &Datum) -> Vec<(String, String)> {
        d.smap_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn local_gateway_published() {
        let w = World::new(sb_with_gw1("true"), json!({"Availability_Zone": azs()}));
        let (out, logs) = w.run(&ctx(AZ1, "az1"));
        assert!(logs.is_empty(), "{logs:?}");
        assert!(
            out.sb.is_empty()
                && out.nb.is_empty()
                && out.icnb.is_empty()
                && out.icsb_locked.is_empty()
        );
        let gws = inserts(&out.icsb, "Gateway");
        assert_eq!(gws.len(), 1);
        let gw = gws[0].1;
        assert_eq!(gw["availability_zone"], Datum::scalar(uuid(AZ1)));
        assert_eq!(s(&gw["name"]), "gw1");
        assert_eq!(s(&gw["hostname"]), "gw1");
        let encs = inserts(&out.icsb, "Encap");
        assert_eq!(encs.len(), 2);
        let ids: Vec<Uuid> = gw["encaps"].uuids().collect();
        assert_eq!(ids.len(), 2);
        let mut seen: Vec<(String, String)> = vec![];
        for (id, e) in &encs {
            assert!(ids.contains(id));
            assert_eq!(s(&e["gateway_name"]), "gw1");
            assert_eq!(s(&e["ip"]), "192.168.0.1");
            assert_eq!(
                pairs(&e["options"]),
                [("csum".to_string(), "true".to_string())]
            );
            seen.push((s(&e["type"]).to_string(), s(&e["ip"]).to_string()));
        }
        seen.sort();
        assert_eq!(seen[0].0, "geneve");
        assert_eq!(seen[1].0, "vxlan");
        // Committed: steady state, nothing more to write.
        let w2 = w.commit(&out);
        let (out2, _) = w2.run(&ctx(AZ1, "az1"));
        assert!(out2.is_empty(), "{out2:?}");
    }

    /// `ovn-ic -- gateway sync`: AZ1 publishes gw1, AZ2 materialises it in its SB.
    #[test]
    fn gateway_sync_across_azs() {
        let az1 = World::new(sb_with_gw1("true"), json!({"Availability_Zone": azs()}));
        let (out, _) = az1.run(&ctx(AZ1, "az1"));
        let az1 = az1.commit(&out);

        // AZ2 shares the ISB, has its own SB with one ordinary chassis.
        let az2_sb = json!({"Chassis": {u(30): {"name": "hv2", "hostname": "hv2", "encaps": refs(&[31])}},
                            "Encap": {u(31): encap("chassis_name", "hv2", "geneve", "192.168.1.2")}});
        let mut az2 = World::new(az2_sb, json!({}));
        az2.icsb = commit(&View::new(&az1.icsb), "ovn-ic-sb", Some("Gateway"));
        let (out, logs) = az2.run(&ctx(AZ2, "az2"));
        assert!(logs.is_empty(), "{logs:?}");
        assert!(out.icsb.is_empty());
        let ch = inserts(&out.sb, "Chassis");
        assert_eq!(ch.len(), 1);
        let ch = ch[0].1;
        assert_eq!(s(&ch["name"]), "gw1");
        assert_eq!(s(&ch["hostname"]), "gw1");
        assert_eq!(
            pairs(&ch["other_config"]),
            [("is-remote".to_string(), "true".to_string())]
        );
        let encs = inserts(&out.sb, "Encap");
        assert_eq!(encs.len(), 2);
        for (id, e) in &encs {
            assert!(ch["encaps"].uuids().any(|x| x == **id));
            assert_eq!(s(&e["chassis_name"]), "gw1");
            assert_eq!(s(&e["ip"]), "192.168.0.1");
            assert_eq!(
                pairs(&e["options"]),
                [("csum".to_string(), "true".to_string())]
            );
        }
        let mut types: Vec<&str> = encs.iter().map(|(_, e)| s(&e["type"])).collect();
        types.sort();
        assert_eq!(types, ["geneve", "vxlan"]);
        // The remote chassis is visible (and remote) to later stages of the same run.
        let v = az2.views();
        let v2 = v.with(&out);
        assert!(!chassis_is_local(&v2.sb, "gw1"));
        assert!(chassis_is_local(&v2.sb, "hv2"));
        let az2 = az2.commit(&out);
        let (o, _) = az2.run(&ctx(AZ2, "az2"));
        assert!(o.is_empty(), "{o:?}");

        // ovn-is-interconn=false on gw1: AZ1 deletes its gateway, AZ2 its remote chassis.
        let mut az1_off = World::new(sb_with_gw1("false"), json!({}));
        az1_off.icsb = commit(&View::new(&az1.icsb), "ovn-ic-sb", Some("Gateway"));
        let (o1, _) = az1_off.run(&ctx(AZ1, "az1"));
        let gw_uuid = az1.icsb.rows("Gateway")[0].uuid();
        assert_eq!(o1.icsb.get("Gateway", gw_uuid), Some(&RowIntent::Delete));
        assert_eq!(o1.icsb.len(), 1);
        let az1_off = az1_off.commit(&o1);
        assert!(az1_off.icsb.rows("Gateway").is_empty());
        assert!(az1_off.icsb.rows("Encap").is_empty());
        let mut az2_off = World::new(json!({}), json!({}));
        az2_off.sb = commit(&View::new(&az2.sb), "ovn-sb", Some("Chassis"));
        az2_off.icsb = commit(&View::new(&az1_off.icsb), "ovn-ic-sb", Some("Gateway"));
        let (o2, _) = az2_off.run(&ctx(AZ2, "az2"));
        let rc = az2.sb.find_by_str("Chassis", "name", "gw1").unwrap().uuid();
        assert_eq!(o2.sb.get("Chassis", rc), Some(&RowIntent::Delete));
        assert_eq!(o2.sb.len(), 1);

        // ovn-is-interconn=true again: re-created on both sides.
        let mut az1_on = World::new(sb_with_gw1("true"), json!({}));
        az1_on.icsb = commit(&View::new(&az1_off.icsb), "ovn-ic-sb", Some("Gateway"));
        let (o1, _) = az1_on.run(&ctx(AZ1, "az1"));
        assert_eq!(inserts(&o1.icsb, "Gateway").len(), 1);
        let az1_on = az1_on.commit(&o1);
        let az2_off = az2_off.commit(&o2);
        let mut az2_on = World::new(json!({}), json!({}));
        az2_on.sb = commit(&View::new(&az2_off.sb), "ovn-sb", Some("Chassis"));
        az2_on.icsb = commit(&View::new(&az1_on.icsb), "ovn-ic-sb", Some("Gateway"));
        let (o2, _) = az2_on.run(&ctx(AZ2, "az2"));
        assert_eq!(inserts(&o2.sb, "Chassis").len(), 1);
        assert_eq!(inserts(&o2.sb, "Encap").len(), 2);
    }

    #[test]
    fn encap_change_propagates() {
        let az1 = World::new(sb_with_gw1("true"), json!({"Availability_Zone": azs()}));
        let (out, _) = az1.run(&ctx(AZ1, "az1"));
        let az1 = az1.commit(&out);
        let gw = az1.icsb.rows("Gateway")[0].uuid();

        // ovn-encap-ip changed: ovn-controller replaced the SB encaps.
        let mut sb = sb_with_gw1("true");
        sb["Encap"][u(11)]["ip"] = json!("192.168.0.9");
        sb["Encap"][u(12)]["ip"] = json!("192.168.0.9");
        let mut w = World::new(sb, json!({}));
        w.icsb = commit(&View::new(&az1.icsb), "ovn-ic-sb", Some("Gateway"));
        let (o, _) = w.run(&ctx(AZ1, "az1"));
        let upd = row_cols(o.icsb.get("Gateway", gw).unwrap());
        assert!(matches!(
            o.icsb.get("Gateway", gw),
            Some(RowIntent::Update(_))
        ));
        assert_eq!(upd["encaps"].len(), 2);
        let encs = inserts(&o.icsb, "Encap");
        assert_eq!(encs.len(), 2);
        assert!(encs.iter().all(|(_, e)| s(&e["ip"]) == "192.168.0.9"));
        // Old ISB encaps are not deleted explicitly (server GC).
        assert!(o
            .icsb
            .table("Encap")
            .all(|(_, i)| matches!(i, RowIntent::Insert(_))));
        let w = w.commit(&o);
        assert_eq!(w.icsb.rows("Encap").len(), 2);

        // ovn-encap-type changed to geneve only: count differs → refill with one encap.
        let mut sb = sb_with_gw1("true");
        sb["Chassis"][u(10)]["encaps"] = refs(&[11]);
        let mut w2 = World::new(sb, json!({}));
        w2.icsb = commit(&View::new(&w.icsb), "ovn-ic-sb", Some("Gateway"));
        let (o, _) = w2.run(&ctx(AZ1, "az1"));
        assert_eq!(
            row_cols(o.icsb.get("Gateway", gw).unwrap())["encaps"].len(),
            1
        );
    }

    #[test]
    fn differs_rules() {
        let e = |ty: &str, ip: &str, opt: &str| EncapData {
            ty: ty.into(),
            ip: ip.into(),
            options: Datum::smap([("csum", opt)]),
        };
        let n = |host: &str, encaps: Vec<EncapData>| Node {
            uuid: Uuid(0),
            name: "x".into(),
            hostname: host.into(),
            encaps,
        };
        let base = n(
            "h",
            vec![
                e("geneve", "1.1.1.1", "true"),
                e("vxlan", "1.1.1.1", "true"),
            ],
        );
        // Order does not matter; other fields are not compared.
        let same = n(
            "h",
            vec![
                e("vxlan", "1.1.1.1", "true"),
                e("geneve", "1.1.1.1", "true"),
            ],
        );
        assert!(!differs(&base, &same));
        assert!(differs(&base, &n("h2", same.encaps.clone())));
        assert!(differs(
            &base,
            &n("h", vec![e("geneve", "1.1.1.1", "true")])
        ));
        assert!(differs(
            &base,
            &n(
                "h",
                vec![
                    e("geneve", "1.1.1.1", "true"),
                    e("vxlan", "1.1.1.2", "true")
                ]
            )
        ));
        assert!(differs(
            &base,
            &n(
                "h",
                vec![
                    e("geneve", "1.1.1.1", "false"),
                    e("vxlan", "1.1.1.1", "true")
                ]
            )
        ));
        assert!(differs(
            &base,
            &n(
                "h",
                vec![
                    e("geneve", "1.1.1.1", "true"),
                    e("geneve", "1.1.1.1", "true")
                ]
            )
        ));
        assert!(!differs(&n("h", vec![]), &n("h", vec![])));
    }

    #[test]
    fn local_hostname_change_refills() {
        let icsb = json!({
            "Availability_Zone": azs(),
            "Gateway": {u(40): {"name": "gw1", "hostname": "old", "availability_zone": ["uuid", u(AZ1)], "encaps": refs(&[41, 42])}},
            "Encap": {u(41): encap("gateway_name", "gw1", "geneve", "192.168.0.1"),
                      u(42): encap("gateway_name", "gw1", "vxlan", "192.168.0.1")}
        });
        let w = World::new(sb_with_gw1("true"), icsb);
        let (o, _) = w.run(&ctx(AZ1, "az1"));
        let c = row_cols(o.icsb.get("Gateway", uuid(40)).unwrap());
        assert_eq!(s(&c["hostname"]), "gw1");
        assert_eq!(c["encaps"].len(), 2);
        assert!(!c.contains_key("availability_zone") && !c.contains_key("name"));
        assert_eq!(inserts(&o.icsb, "Encap").len(), 2);
        assert_eq!(o.icsb.len(), 3);
    }

    #[test]
    fn local_gateway_deleted_when_chassis_gone() {
        let icsb = json!({
            "Availability_Zone": azs(),
            "Gateway": {u(40): {"name": "gw1", "hostname": "gw1", "availability_zone": ["uuid", u(AZ1)], "encaps": refs(&[41])},
                        u(50): {"name": "gw2", "hostname": "gw2", "availability_zone": ["uuid", u(AZ2)], "encaps": refs(&[51])}},
            "Encap": {u(41): encap("gateway_name", "gw1", "geneve", "192.168.0.1"),
                      u(51): encap("gateway_name", "gw2", "geneve", "192.168.0.3")}
        });
        let sb = json!({
            "Chassis": {u(60): {"name": "gw2", "hostname": "gw2", "encaps": refs(&[61]), "other_config": smap(&[("is-remote", "true")])}},
            "Encap": {u(61): encap("chassis_name", "gw2", "geneve", "192.168.0.3")}
        });
        let w = World::new(sb, icsb);
        let (o, _) = w.run(&ctx(AZ1, "az1"));
        // Only our own gateway goes; the other AZ's gateway is untouched and already in sync.
        assert_eq!(o.icsb.get("Gateway", uuid(40)), Some(&RowIntent::Delete));
        assert_eq!(o.icsb.len(), 1);
        assert!(o.sb.is_empty());
    }

    #[test]
    fn remote_chassis_refilled_keeping_other_config() {
        let icsb = json!({
            "Availability_Zone": azs(),
            "Gateway": {u(50): {"name": "gw2", "hostname": "gw2host", "availability_zone": ["uuid", u(AZ2)], "encaps": refs(&[51])}},
            "Encap": {u(51): encap("gateway_name", "gw2", "geneve", "192.168.0.3")}
        });
        let sb = json!({
            "Chassis": {u(60): {"name": "gw2", "hostname": "stale", "encaps": refs(&[61]),
                                 "other_config": smap(&[("is-remote", "true"), ("foo", "bar")])}},
            "Encap": {u(61): encap("chassis_name", "gw2", "geneve", "192.168.0.3")}
        });
        let w = World::new(sb, icsb);
        let (o, _) = w.run(&ctx(AZ1, "az1"));
        let c = row_cols(o.sb.get("Chassis", uuid(60)).unwrap());
        assert_eq!(s(&c["hostname"]), "gw2host");
        assert_eq!(
            pairs(&c["other_config"]),
            [
                ("foo".to_string(), "bar".to_string()),
                ("is-remote".to_string(), "true".to_string())
            ]
        );
        let encs = inserts(&o.sb, "Encap");
        assert_eq!(encs.len(), 1);
        assert_eq!(c["encaps"], Datum::scalar(*encs[0].0));
        assert_eq!(s(&encs[0].1["chassis_name"]), "gw2");
        assert!(o.icsb.is_empty());
    }

    #[test]
    fn remote_chassis_without_gateway_deleted() {
        let sb = json!({
            "Chassis": {u(60): {"name": "gw2", "hostname": "gw2", "encaps": refs(&[61]), "other_config": smap(&[("is-remote", "TRUE")])},
                        u(70): {"name": "hv", "hostname": "hv", "encaps": refs(&[71]), "other_config": smap(&[("is-remote", "no")])}},
            "Encap": {u(61): encap("chassis_name", "gw2", "geneve", "192.168.0.3"),
                      u(71): encap("chassis_name", "hv", "geneve", "192.168.0.4")}
        });
        let w = World::new(sb, json!({"Availability_Zone": azs()}));
        let (o, _) = w.run(&ctx(AZ1, "az1"));
        assert_eq!(o.sb.get("Chassis", uuid(60)), Some(&RowIntent::Delete));
        assert_eq!(o.sb.len(), 1);
        assert!(o.icsb.is_empty());
    }

    #[test]
    fn remote_name_colliding_with_local_chassis_skipped() {
        // Another AZ publishes "hv1", which is an ordinary chassis here.
        let icsb = json!({
            "Availability_Zone": azs(),
            "Gateway": {u(50): {"name": "hv1", "hostname": "x", "availability_zone": ["uuid", u(AZ2)], "encaps": refs(&[51])}},
            "Encap": {u(51): encap("gateway_name", "hv1", "geneve", "10.0.0.9")}
        });
        let w = World::new(sb_with_gw1("false"), icsb);
        let (o, logs) = w.run(&ctx(AZ1, "az1"));
        assert!(o.is_empty(), "{o:?}");
        assert_eq!(logs.len(), 1);
        assert!(
            logs[0].starts_with("WARN Chassis hv1 of another availability zone conflicts"),
            "{logs:?}"
        );
        assert!(chassis_is_local(&w.views().sb, "hv1"));
    }

    #[test]
    fn local_gateway_name_taken_by_other_az_skipped() {
        // Both AZ2 and we (AZ1) have a gateway chassis named gw1.
        let icsb = json!({
            "Availability_Zone": azs(),
            "Gateway": {u(50): {"name": "gw1", "hostname": "x", "availability_zone": ["uuid", u(AZ2)], "encaps": refs(&[51])}},
            "Encap": {u(51): encap("gateway_name", "gw1", "geneve", "10.0.0.9")}
        });
        let w = World::new(sb_with_gw1("true"), icsb);
        let (o, logs) = w.run(&ctx(AZ1, "az1"));
        assert!(o.is_empty(), "{o:?}");
        assert_eq!(logs.len(), 2, "{logs:?}");
        assert!(logs[0]
            .starts_with("WARN Gateway gw1 is already registered by another availability zone"));
        assert!(logs[1].starts_with("WARN Chassis gw1 of another availability zone conflicts"));
    }

    #[test]
    fn dangling_encaps_do_not_crash() {
        // The ISB gateway references one existing and one missing encap; the SB chassis of
        // another gateway references only a missing one.
        let icsb = json!({
            "Availability_Zone": azs(),
            "Gateway": {u(50): {"name": "gw2", "hostname": "h", "availability_zone": ["uuid", u(AZ2)], "encaps": refs(&[51, 52])},
                        u(55): {"name": "gw3", "hostname": "h", "availability_zone": ["uuid", u(AZ2)], "encaps": refs(&[56])}},
            "Encap": {u(51): encap("gateway_name", "gw2", "geneve", "10.0.0.9")}
        });
        let sb = json!({
            "Chassis": {u(10): {"name": "gw1", "hostname": "gw1", "encaps": refs(&[99]),
                                 "other_config": smap(&[("is-interconn", "true")])}}
        });
        let w = World::new(sb, icsb);
        let (o, logs) = w.run(&ctx(AZ1, "az1"));
        // gw1 (no resolvable encap) is not published; gw3 (none) is not materialised; gw2 is, with
        // the one encap that exists.
        assert!(o.icsb.is_empty(), "{o:?}");
        let ch = inserts(&o.sb, "Chassis");
        assert_eq!(ch.len(), 1);
        assert_eq!(s(&ch[0].1["name"]), "gw2");
        assert_eq!(ch[0].1["encaps"].len(), 1);
        assert!(logs
            .iter()
            .any(|l| l.contains("references a missing encap")));
        assert!(logs
            .iter()
            .any(|l| l == "WARN Chassis gw1 has no encap; not syncing it."));
        assert!(logs
            .iter()
            .any(|l| l == "WARN Gateway gw3 has no encap; not syncing it."));
    }

    #[test]
    fn chassis_locality() {
        let sb = json!({
            "Chassis": {u(60): {"name": "r", "hostname": "", "encaps": refs(&[61]), "other_config": smap(&[("is-remote", "true")])},
                        u(70): {"name": "l", "hostname": "", "encaps": refs(&[71])}},
            "Encap": {u(61): encap("chassis_name", "r", "geneve", "1.0.0.1"),
                      u(71): encap("chassis_name", "l", "geneve", "1.0.0.2")}
        });
        let w = World::new(sb, json!({}));
        let v = w.views();
        assert!(chassis_is_local(&v.sb, "l"));
        assert!(!chassis_is_local(&v.sb, "r"));
        assert!(!chassis_is_local(&v.sb, "missing"));
        // A chassis deleted in this run is no longer local.
        let mut out = Out::default();
        out.sb.delete("Chassis", uuid(70));
        let v2 = v.with(&out);
        assert!(!chassis_is_local(&v2.sb, "l"));
    }

    /// `ovn-ic -- AZ update in GW`: renaming az1 → az2 keeps the row and the gateway's reference.
    #[test]
    fn az_rename_keeps_gateway() {
        use crate::ic::az::{self, AzOutcome, AzState};
        let icsb = json!({
            "Availability_Zone": {u(AZ1): {"name": "az1"}},
            "Gateway": {u(40): {"name": "gw1", "hostname": "gw1", "availability_zone": ["uuid", u(AZ1)], "encaps": refs(&[41, 42])}},
            "Encap": {u(41): encap("gateway_name", "gw1", "geneve", "192.168.0.1"),
                      u(42): encap("gateway_name", "gw1", "vxlan", "192.168.0.1")}
        });
        let mut w = World::new(sb_with_gw1("true"), icsb);
        let mut st = AzState::new();
        w.nb = replica("ovn-nb", json!({"NB_Global": {u(100): {"name": "az1"}}}));
        let mut out = Out::default();
        az::run(&w.views(), &mut st, &mut out);
        w.nb = replica("ovn-nb", json!({"NB_Global": {u(100): {"name": "az2"}}}));
        let mut out = Out::default();
        let r = az::run(&w.views(), &mut st, &mut out);
        assert_eq!(
            r,
            AzOutcome::Az {
                uuid: uuid(AZ1),
                name: "az2".into()
            }
        );
        let v = w.views();
        let v = v.with(&out);
        let mut gw_out = Out::default();
        run(&v, &ctx(AZ1, "az2"), &mut gw_out);
        assert!(gw_out.is_empty(), "{gw_out:?}");
        let w2 = w.commit(&out);
        assert_eq!(
            w2.icsb
                .find_by_str("Availability_Zone", "name", "az2")
                .map(|r| r.uuid()),
            Some(uuid(AZ1))
        );
        assert_eq!(
            w2.icsb
                .get("Gateway", uuid(40))
                .and_then(|g| g.uuid_of("availability_zone")),
            Some(uuid(AZ1))
        );
    }
}
