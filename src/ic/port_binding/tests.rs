//! Unit tests of the port-binding stage on plain data (spec ovn-ic-core.md §4.6).
//!
//! Every test builds the five databases as replicas, runs the stage, "commits" its output into
//! the replicas (as if every transaction succeeded) and runs again, so convergence (a run on the
//! committed state writes nothing) is checked along with the exact rows.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{json, Value};

use super::{PortBindingState, PORT_KEY_MAX, TYPE_TR_PORT, TYPE_TS_PORT};
use crate::ic::enum_datapaths::logcap::{capture, Logged};
use crate::ic::testutil::{schema_dir, u};
use crate::ic::{Ctx, Dbs, Out, Target, Views};
use crate::ovsdb::overlay::{Intents, RowIntent, View};
use crate::ovsdb::replica::{Replica, Row};
use crate::ovsdb::txn::Txn;
use crate::ovsdb::{DatabaseSchema, Datum, Uuid};

// ---------------------------------------------------------------------------------------------
// Fixture UUIDs.

const AZ1: u32 = 0xa1; // the local AZ
const AZ2: u32 = 0xa2;
// IC-NB
const TS1: u32 = 0x100;
const TS2: u32 = 0x101;
const TSP1: u32 = 0x110;
const TSP2: u32 = 0x111;
const TR1: u32 = 0x120;
const TRP1: u32 = 0x130;
// NB
const LS1: u32 = 0x200;
const LS2: u32 = 0x201;
const LSP1: u32 = 0x210;
const RLSP: u32 = 0x212;
const MLSP: u32 = 0x213;
const LR1: u32 = 0x220;
const LRP1: u32 = 0x230;
const NBTR: u32 = 0x240;
const MLRP: u32 = 0x250;
const CMSLRP: u32 = 0x251;
// SB
const CH_GW1: u32 = 0x300;
const CH_GW2: u32 = 0x301;
const CH_HV1: u32 = 0x302;
const SB_LSP1: u32 = 0x310;
const SB_LRP1: u32 = 0x311;
const SB_CR: u32 = 0x312;
const SB_RPORT: u32 = 0x313;
const SB_LEAF: u32 = 0x314;
const DP_LS: u32 = 0x320;
const DP_LR: u32 = 0x321;
// IC-SB
const PB1: u32 = 0x400;
const PB2: u32 = 0x401;
const PB3: u32 = 0x402;

fn uu(n: u32) -> Uuid {
    u(n).parse().expect("fixture uuid")
}

fn ctx(leader: bool) -> Ctx {
    Ctx {
        az: uu(AZ1),
        az_name: "az1".into(),
        isb_leader: leader,
    }
}

// JSON builders in the wire encoding.
fn m(pairs: &[(&str, &str)]) -> Value {
    json!([
        "map",
        pairs.iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>()
    ])
}
fn s(items: &[&str]) -> Value {
    json!(["set", items])
}
fn r(n: u32) -> Value {
    json!(["uuid", u(n)])
}
fn rs(ns: &[u32]) -> Value {
    json!(["set", ns.iter().map(|n| r(*n)).collect::<Vec<_>>()])
}

/// Merge JSON objects table by table (later rows win).
fn tables(parts: &[Value]) -> Value {
    let mut out = serde_json::Map::new();
    for p in parts {
        for (t, rows) in p.as_object().expect("tables") {
            let e = out
                .entry(t.clone())
                .or_insert_with(|| Value::Object(Default::default()));
            for (u, row) in rows.as_object().expect("rows") {
                e.as_object_mut()
                    .expect("rows")
                    .insert(u.clone(), row.clone());
            }
        }
    }
    Value::Object(out)
}

/// ISB: both AZs plus `pbs`.
fn isb(pbs: Value) -> Value {
    tables(&[
        json!({"Availability_Zone": {u(AZ1): {"name": "az1"}, u(AZ2): {"name": "az2"}}}),
        json!({ "Port_Binding": pbs }),
    ])
}

/// One ISB Port_Binding row.
fn pb(az: u32, dp: &str, port: &str, key: i64, extra: Value) -> Value {
    let mut row = json!({
        "availability_zone": r(az),
        "transit_switch": dp,
        "logical_port": port,
        "tunnel_key": key,
    });
    for (k, v) in extra.as_object().expect("extra columns") {
        row[k] = v.clone();
    }
    row
}

// ---------------------------------------------------------------------------------------------
// The world: four replicas (both IC-SB sessions read the same database).

#[derive(Clone)]
struct Dirs {
    nb: PathBuf,
    sb: PathBuf,
    icnb: PathBuf,
    icsb: PathBuf,
}

impl Dirs {
    fn default_dirs() -> Dirs {
        let d = schema_dir();
        Dirs {
            nb: d.clone(),
            sb: d.clone(),
            icnb: d.clone(),
            icsb: d,
        }
    }
}

fn load_schema(dir: &Path, name: &str) -> Arc<DatabaseSchema> {
    let p = dir.join(format!("{name}.ovsschema"));
    Arc::new(DatabaseSchema::from_file(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
}

/// A replica of `name` from `dir` holding `rows`; tables the schema lacks are left out and
/// columns it lacks are ignored (as a server of that version would not have them).
fn rep(dir: &Path, name: &str, rows: Value) -> Replica {
    let sch = load_schema(dir, name);
    let mut rp = Replica::new(&sch.name);
    let mon: BTreeMap<String, Vec<String>> = sch
        .tables
        .iter()
        .map(|(t, ts)| (t.clone(), ts.columns.keys().cloned().collect()))
        .collect();
    rp.set_schema(sch.clone(), &mon);
    let mut upd = serde_json::Map::new();
    for (t, rws) in rows.as_object().expect("tables") {
        if !sch.tables.contains_key(t) {
            continue;
        }
        let mm: serde_json::Map<String, Value> = rws
            .as_object()
            .expect("rows")
            .iter()
            .map(|(u, row)| (u.clone(), json!({ "insert": row })))
            .collect();
        upd.insert(t.clone(), Value::Object(mm));
    }
    rp.apply_update2(&Value::Object(upd)).expect("valid rows");
    rp.clear_changes();
    rp
}

/// Apply intent layers to a replica as if committed.
fn apply(rp: &mut Replica, layers: &[&Intents]) {
    let names: Vec<String> = rp.table_names().map(str::to_string).collect();
    let mut upd = serde_json::Map::new();
    {
        let mut view = View::new(rp);
        for l in layers {
            view = view.with(l);
        }
        for t in &names {
            let mut touched = BTreeSet::new();
            for l in layers {
                touched.extend(l.table(t).map(|(u, _)| *u));
            }
            let mut rows = serde_json::Map::new();
            for uid in touched {
                let new = view.get(t, uid).map(|row| row.to_json());
                if new.is_none() && rp.get(t, uid).is_none() {
                    continue;
                }
                rows.insert(
                    uid.to_string(),
                    json!({ "new": new.unwrap_or(Value::Null) }),
                );
            }
            if !rows.is_empty() {
                upd.insert(t.clone(), Value::Object(rows));
            }
        }
    }
    rp.apply_update1(&Value::Object(upd)).expect("commit");
    rp.clear_changes();
}

const ALL_TARGETS: [Target; 5] = [
    Target::Nb,
    Target::Sb,
    Target::IcNb,
    Target::IcSb,
    Target::IcSbLocked,
];

/// One committed run: its intents, logs and real writes per target.
struct Ran {
    out: Out,
    logs: Logged,
    writes: BTreeMap<Target, usize>,
}

impl Ran {
    fn n(&self, t: Target) -> usize {
        self.writes.get(&t).copied().unwrap_or(0)
    }
    fn total(&self) -> usize {
        self.writes.values().sum()
    }
}

struct W {
    nb: Replica,
    sb: Replica,
    icnb: Replica,
    icsb: Replica,
}

impl W {
    fn new(nb: Value, sb: Value, icnb: Value, icsb: Value) -> W {
        W::in_dirs(&Dirs::default_dirs(), nb, sb, icnb, icsb)
    }

    fn in_dirs(d: &Dirs, nb: Value, sb: Value, icnb: Value, icsb: Value) -> W {
        W {
            nb: rep(&d.nb, "ovn-nb", nb),
            sb: rep(&d.sb, "ovn-sb", sb),
            icnb: rep(&d.icnb, "ovn-ic-nb", icnb),
            icsb: rep(&d.icsb, "ovn-ic-sb", icsb),
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

    /// One run of the stage on the current state.
    fn run(&self, c: &Ctx, st: &mut PortBindingState) -> (Out, Logged) {
        capture(|| {
            let mut out = Out::default();
            super::run(&self.views(), c, st, &mut out);
            out
        })
    }

    fn replica(&self, t: Target) -> &Replica {
        match t {
            Target::Nb => &self.nb,
            Target::Sb => &self.sb,
            Target::IcNb => &self.icnb,
            Target::IcSb | Target::IcSbLocked => &self.icsb,
        }
    }

    /// Real writes `out` would send to `t` (after the output stage's no-op suppression).
    fn writes(&self, out: &Out, t: Target) -> usize {
        let mut txn = Txn::new("x");
        out.get(t).to_txn(self.replica(t), &mut txn);
        txn.n_writes()
    }

    fn total_writes(&self, out: &Out) -> usize {
        ALL_TARGETS.into_iter().map(|t| self.writes(out, t)).sum()
    }

    fn commit(&mut self, out: &Out) {
        apply(&mut self.nb, &[&out.nb]);
        apply(&mut self.sb, &[&out.sb]);
        apply(&mut self.icnb, &[&out.icnb]);
        apply(&mut self.icsb, &[&out.icsb, &out.icsb_locked]);
    }

    /// Run and commit; the real writes per target are counted before the commit.
    fn step(&mut self, c: &Ctx, st: &mut PortBindingState) -> Ran {
        let (out, logs) = self.run(c, st);
        let writes = ALL_TARGETS
            .into_iter()
            .map(|t| (t, self.writes(&out, t)))
            .collect();
        self.commit(&out);
        Ran { out, logs, writes }
    }

    /// A run on the committed state must change nothing.
    fn assert_converged(&self, c: &Ctx, st: &mut PortBindingState) {
        let (out, _) = self.run(c, st);
        assert_eq!(self.total_writes(&out), 0, "not converged: {out:#?}");
    }

    /// Edit replica rows directly (an external change between runs).
    fn edit(&mut self, db: Target, f: impl FnOnce(&mut Intents)) {
        let mut i = Intents::new();
        f(&mut i);
        let rp = match db {
            Target::Nb => &mut self.nb,
            Target::Sb => &mut self.sb,
            Target::IcNb => &mut self.icnb,
            Target::IcSb | Target::IcSbLocked => &mut self.icsb,
        };
        apply(rp, &[&i]);
    }

    /// Insert or replace a row with a chosen UUID (an external change between runs).
    fn put(&mut self, db: Target, table: &str, n: u32, row: Value) {
        let rp = match db {
            Target::Nb => &mut self.nb,
            Target::Sb => &mut self.sb,
            Target::IcNb => &mut self.icnb,
            Target::IcSb | Target::IcSbLocked => &mut self.icsb,
        };
        let upd = json!({ table: { u(n): { "new": row } } });
        rp.apply_update1(&upd).expect("put");
        rp.clear_changes();
    }

    // Lookups on the committed state.
    fn isb_pb(&self, port: &str) -> Option<&Row> {
        self.icsb
            .rows("Port_Binding")
            .into_iter()
            .find(|p| p.str("logical_port") == port)
    }
    fn isb_pbs(&self) -> Vec<&Row> {
        self.icsb.rows("Port_Binding")
    }
    fn lsp(&self, name: &str) -> Option<&Row> {
        self.nb
            .rows("Logical_Switch_Port")
            .into_iter()
            .find(|p| p.str("name") == name)
    }
    fn lrp(&self, name: &str) -> Option<&Row> {
        self.nb
            .rows("Logical_Router_Port")
            .into_iter()
            .find(|p| p.str("name") == name)
    }
    fn ls_ports(&self, ls: u32) -> BTreeSet<String> {
        let Some(row) = self.nb.get("Logical_Switch", uu(ls)) else {
            return BTreeSet::new();
        };
        row.get("ports")
            .uuids()
            .filter_map(|p| self.nb.get("Logical_Switch_Port", p))
            .map(|p| p.str("name").to_string())
            .collect()
    }
    fn lr_ports(&self, lr: u32) -> BTreeSet<String> {
        let Some(row) = self.nb.get("Logical_Router", uu(lr)) else {
            return BTreeSet::new();
        };
        row.get("ports")
            .uuids()
            .filter_map(|p| self.nb.get("Logical_Router_Port", p))
            .map(|p| p.str("name").to_string())
            .collect()
    }
    fn has_pb_type(&self) -> bool {
        self.icsb.has_column("Port_Binding", "type")
    }
    fn has_tsp(&self) -> bool {
        self.icnb.has_table("Transit_Switch_Port")
    }
    fn has_tr(&self) -> bool {
        self.icnb.has_table("Transit_Router") && self.has_pb_type()
    }
}

fn smap(row: &Row, col: &str) -> BTreeMap<String, String> {
    row.get(col)
        .smap_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn strs(row: &Row, col: &str) -> Vec<String> {
    row.get(col).strs().map(str::to_string).collect()
}

fn kv(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The messages logged at `level` with target `ovn_ic` (or `ovn_util`).
fn msgs(logs: &Logged, level: tracing::Level) -> Vec<String> {
    logs.iter()
        .filter(|(l, t, _)| *l == level && (t == "ovn_ic" || t == "ovn_util"))
        .map(|(_, _, m)| m.clone())
        .collect()
}

fn logged(logs: &Logged, level: tracing::Level, msg: &str) -> bool {
    msgs(logs, level).iter().any(|m| m == msg)
}

/// The column names and values of the single Port_Binding insert in `i`.
fn pb_inserts(i: &Intents) -> Vec<BTreeMap<String, Datum>> {
    i.table("Port_Binding")
        .filter_map(|(_, ri)| match ri {
            RowIntent::Insert(cols) => Some(cols.clone()),
            _ => None,
        })
        .collect()
}

fn count(i: &Intents, table: &str, f: impl Fn(&RowIntent) -> bool) -> usize {
    i.table(table).filter(|(_, ri)| f(ri)).count()
}
fn is_delete(ri: &RowIntent) -> bool {
    matches!(ri, RowIntent::Delete)
}

// ---------------------------------------------------------------------------------------------
// Fixtures.

const MAC1: &str = "aa:aa:aa:aa:aa:01 169.254.100.1/24";
const MAC2: &str = "bb:bb:bb:bb:bb:02 169.254.100.2/24";

fn icnb_ts(names: &[(u32, &str)]) -> Value {
    let rows: serde_json::Map<String, Value> = names
        .iter()
        .map(|(n, name)| (u(*n), json!({ "name": name })))
        .collect();
    json!({ "Transit_Switch": rows })
}

/// NB switch `ts1` (marker set) with `ports`.
fn nb_ts1(ports: &[u32]) -> Value {
    json!({"Logical_Switch": {u(LS1): {
        "name": "ts1", "other_config": m(&[("interconn-ts", "ts1")]), "ports": rs(ports)}}})
}

/// NB: ts1 with the legacy router port lsp1 (→ lrp1 of lr1).
fn legacy_router_nb() -> Value {
    tables(&[
        nb_ts1(&[LSP1]),
        json!({
            "Logical_Switch_Port": {u(LSP1): {"name": "lsp1", "type": "router",
                "addresses": s(&["router"]), "options": m(&[("router-port", "lrp1")])}},
            "Logical_Router": {u(LR1): {"name": "lr1", "ports": rs(&[LRP1])}},
            "Logical_Router_Port": {u(LRP1): {"name": "lrp1", "mac": "aa:aa:aa:aa:aa:01",
                "networks": s(&["169.254.100.1/24"])}},
        }),
    ])
}

/// SB as northd would make it for `legacy_router_nb`, lrp1 bound to gateway gw1 through cr-lrp1.
fn legacy_router_sb(lr_dp: Value) -> Value {
    json!({
        "Chassis": {
            u(CH_GW1): {"name": "gw1", "hostname": "gw1", "other_config": m(&[("is-interconn", "true")])},
        },
        "Datapath_Binding": {
            u(DP_LS): {"tunnel_key": 1, "external_ids": m(&[("logical-switch", &u(LS1))])},
            u(DP_LR): lr_dp,
        },
        "Port_Binding": {
            u(SB_LSP1): {"logical_port": "lsp1", "datapath": r(DP_LS), "tunnel_key": 1,
                "type": "patch", "options": m(&[("peer", "lrp1")])},
            u(SB_LRP1): {"logical_port": "lrp1", "datapath": r(DP_LR), "tunnel_key": 1,
                "type": "patch", "mac": s(&[MAC1]), "options": m(&[("peer", "lsp1")])},
            u(SB_CR): {"logical_port": "cr-lrp1", "datapath": r(DP_LR), "tunnel_key": 2,
                "type": "chassisredirect", "chassis": r(CH_GW1)},
        },
    })
}

fn lr_dp_ext() -> Value {
    json!({"tunnel_key": 2, "external_ids": m(&[("logical-router", &u(LR1))])})
}

fn legacy_router_world() -> W {
    W::new(
        legacy_router_nb(),
        legacy_router_sb(lr_dp_ext()),
        icnb_ts(&[(TS1, "ts1")]),
        isb(json!({})),
    )
}

// ---------------------------------------------------------------------------------------------
// Legacy local ports.

#[test]
fn legacy_router_port_published_then_key_written_next_run() {
    let mut w = legacy_router_world();
    let mut st = PortBindingState::default();
    let c = ctx(false);

    let ran = w.step(&c, &mut st);
    let logs = &ran.logs;
    // One binding through the unlocked session, nothing else.
    let ins = pb_inserts(&ran.out.icsb);
    assert_eq!(ins.len(), 1, "{:#?}", ran.out);
    assert_eq!(ran.n(Target::IcSb), 1);
    assert!(ran.out.icsb_locked.is_empty());
    assert_eq!(ran.n(Target::Nb), 0, "NB key only on the next run");
    assert_eq!(ran.n(Target::Sb), 0);
    let mut want: BTreeSet<&str> = [
        "availability_zone",
        "transit_switch",
        "logical_port",
        "tunnel_key",
        "address",
        "gateway",
        "external_ids",
    ]
    .into();
    if w.has_pb_type() {
        want.extend(["type", "nb_ic_uuid"]);
    }
    assert_eq!(
        ins[0].keys().map(String::as_str).collect::<BTreeSet<_>>(),
        want
    );
    assert!(msgs(logs, tracing::Level::WARN).is_empty(), "{logs:?}");

    let b = w.isb_pb("lsp1").expect("binding");
    assert_eq!(b.uuid_of("availability_zone"), Some(uu(AZ1)));
    assert_eq!(b.str("transit_switch"), "ts1");
    assert_eq!(b.int("tunnel_key"), Some(1));
    assert_eq!(b.str("address"), MAC1);
    assert_eq!(b.str("gateway"), "gw1");
    assert_eq!(smap(b, "external_ids"), kv(&[("router-id", &u(LR1))]));
    if w.has_pb_type() {
        assert_eq!(b.str("type"), TYPE_TS_PORT);
        assert_eq!(b.uuid_of("nb_ic_uuid"), Some(uu(TS1)));
    }
    assert_eq!(
        smap(w.lsp("lsp1").unwrap(), "options"),
        kv(&[("router-port", "lrp1")])
    );

    // Run 2: the key reaches the NB, nothing else changes.
    let ran = w.step(&c, &mut st);
    let logs = &ran.logs;
    assert_eq!((ran.n(Target::Nb), ran.total()), (1, 1));
    assert!(
        logged(
            logs,
            tracing::Level::DEBUG,
            "Set options:requested-tnl-key 1 for lsp lsp1 in NB."
        ),
        "{logs:?}"
    );
    assert_eq!(
        smap(w.lsp("lsp1").unwrap(), "options"),
        kv(&[("router-port", "lrp1"), ("requested-tnl-key", "1")])
    );
    // Run 3: converged, and the DBG line is not repeated.
    let (out, logs) = w.run(&c, &mut st);
    assert_eq!(w.total_writes(&out), 0, "{out:#?}");
    assert!(!logs.iter().any(|(_, _, m)| m.starts_with("Set options")));
}

#[test]
fn legacy_router_id_from_sb_nb_uuid() {
    let probe = legacy_router_world();
    if !probe.sb.has_column("Datapath_Binding", "nb_uuid") {
        return; // SB < 21.5: covered by the external_ids tests
    }
    let other = u(0x999);
    // type and nb_uuid both set: nb_uuid wins over external_ids.
    let dp = json!({"tunnel_key": 2, "type": "logical-router", "nb_uuid": r(LR1),
        "external_ids": m(&[("logical-router", &other)])});
    let mut w = W::new(
        legacy_router_nb(),
        legacy_router_sb(dp),
        icnb_ts(&[(TS1, "ts1")]),
        isb(json!({})),
    );
    let mut st = PortBindingState::default();
    w.step(&ctx(false), &mut st);
    assert_eq!(
        w.isb_pb("lsp1")
            .unwrap()
            .smap_get("external_ids", "router-id"),
        Some(u(LR1).as_str())
    );
    // nb_uuid without type: external_ids is used.
    let dp = json!({"tunnel_key": 2, "nb_uuid": r(LR1),
        "external_ids": m(&[("logical-router", &other)])});
    let mut w = W::new(
        legacy_router_nb(),
        legacy_router_sb(dp),
        icnb_ts(&[(TS1, "ts1")]),
        isb(json!({})),
    );
    w.step(&ctx(false), &mut st);
    assert_eq!(
        w.isb_pb("lsp1")
            .unwrap()
            .smap_get("external_ids", "router-id"),
        Some(other.as_str())
    );
}

#[test]
fn legacy_router_id_missing_warns_and_leaves_key_alone() {
    let mut w = W::new(
        legacy_router_nb(),
        legacy_router_sb(json!({"tunnel_key": 2})),
        icnb_ts(&[(TS1, "ts1")]),
        isb(json!({})),
    );
    let mut st = PortBindingState::default();
    let c = ctx(false);
    let ran = w.step(&c, &mut st);
    let logs = &ran.logs;
    let warn = "Can't get router uuid for transit switch port lsp1.";
    assert!(logged(logs, tracing::Level::WARN, warn), "{logs:?}");
    let b = w.isb_pb("lsp1").unwrap();
    assert_eq!(b.str("address"), MAC1);
    assert!(smap(b, "external_ids").is_empty());
    // Existing unrelated keys are kept and no router-id appears on later runs.
    let pbu = b.uuid();
    w.edit(Target::IcSb, |i| {
        i.update(
            "Port_Binding",
            pbu,
            vec![("external_ids", Datum::smap([("k", "v")]))],
        )
    });
    let ran = w.step(&c, &mut st);
    assert!(logged(&ran.logs, tracing::Level::WARN, warn));
    assert_eq!(ran.n(Target::IcSb), 0);
    assert_eq!(
        smap(w.isb_pb("lsp1").unwrap(), "external_ids"),
        kv(&[("k", "v")])
    );
}

#[test]
fn legacy_router_id_rewritten_when_different() {
    let mut w = legacy_router_world();
    let mut st = PortBindingState::default();
    let c = ctx(false);
    w.step(&c, &mut st);
    w.step(&c, &mut st);
    let pbu = w.isb_pb("lsp1").unwrap().uuid();
    w.edit(Target::IcSb, |i| {
        i.update(
            "Port_Binding",
            pbu,
            vec![(
                "external_ids",
                Datum::smap([("router-id", "stale"), ("k", "v")]),
            )],
        )
    });
    w.step(&c, &mut st);
    assert_eq!(
        smap(w.isb_pb("lsp1").unwrap(), "external_ids"),
        kv(&[("router-id", &u(LR1)), ("k", "v")])
    );
    w.assert_converged(&c, &mut st);
}

#[test]
fn legacy_full_sync_address_and_gateway_follow_sb() {
    let mut w = legacy_router_world();
    let mut st = PortBindingState::default();
    let c = ctx(false);
    w.step(&c, &mut st);
    w.step(&c, &mut st);
    w.assert_converged(&c, &mut st);

    // The gateway chassis goes away from cr-lrp1: gateway cleared (no fallback for routers).
    w.edit(Target::Sb, |i| {
        i.update(
            "Port_Binding",
            uu(SB_CR),
            vec![("chassis", Datum::empty_set())],
        )
    });
    w.step(&c, &mut st);
    assert_eq!(w.isb_pb("lsp1").unwrap().str("gateway"), "");
    w.assert_converged(&c, &mut st);

    // The peer loses its mac: DBG and address cleared.
    w.edit(Target::Sb, |i| {
        i.update(
            "Port_Binding",
            uu(SB_LRP1),
            vec![("mac", Datum::empty_set())],
        )
    });
    let logs = w.step(&c, &mut st).logs;
    assert!(logged(
        &logs,
        tracing::Level::DEBUG,
        "Can't get router/switch port address for logical switch port lsp1"
    ));
    assert_eq!(w.isb_pb("lsp1").unwrap().str("address"), "");
    w.assert_converged(&c, &mut st);

    // Both come back.
    w.edit(Target::Sb, |i| {
        i.update(
            "Port_Binding",
            uu(SB_LRP1),
            vec![("mac", Datum::scalar(MAC2))],
        );
        i.update(
            "Port_Binding",
            uu(SB_CR),
            vec![("chassis", Datum::scalar(uu(CH_GW1)))],
        );
    });
    w.step(&c, &mut st);
    let b = w.isb_pb("lsp1").unwrap();
    assert_eq!((b.str("address"), b.str("gateway")), (MAC2, "gw1"));
    w.assert_converged(&c, &mut st);

    // A wrong NB key is corrected with the DBG line.
    w.edit(Target::Nb, |i| {
        i.update(
            "Logical_Switch_Port",
            uu(LSP1),
            vec![(
                "options",
                Datum::smap([("router-port", "lrp1"), ("requested-tnl-key", "9")]),
            )],
        )
    });
    let logs = w.step(&c, &mut st).logs;
    assert!(logged(
        &logs,
        tracing::Level::DEBUG,
        "Set options:requested-tnl-key 1 for lsp lsp1 in NB."
    ));
    assert_eq!(
        w.lsp("lsp1")
            .unwrap()
            .smap_get("options", "requested-tnl-key"),
        Some("1")
    );
    w.assert_converged(&c, &mut st);
}

/// Spine-leaf: a `switch` LSP publishes `unknown` and, from the second run on, the chassis its
/// own SB binding is bound to; router-id is the leaf switch's UUID.
#[test]
fn legacy_switch_port_unknown_address_and_gateway_fallback() {
    let nb = tables(&[
        nb_ts1(&[LSP1]),
        json!({"Logical_Switch_Port": {u(LSP1): {"name": "lsp1", "type": "switch"}}}),
    ]);
    let sb = json!({
        "Chassis": {u(CH_HV1): {"name": "hv1", "hostname": "hv1"}},
        "Datapath_Binding": {
            u(DP_LS): {"tunnel_key": 1, "external_ids": m(&[("logical-switch", &u(LS1))])},
            u(DP_LR): {"tunnel_key": 2, "external_ids": m(&[("logical-switch", &u(LS2))])},
        },
        "Port_Binding": {
            u(SB_LSP1): {"logical_port": "lsp1", "datapath": r(DP_LS), "tunnel_key": 1,
                "options": m(&[("peer", "leaf1")]), "chassis": r(CH_HV1)},
            u(SB_LEAF): {"logical_port": "leaf1", "datapath": r(DP_LR), "tunnel_key": 1,
                "options": m(&[("peer", "lsp1")])},
        },
    });
    let mut w = W::new(nb, sb, icnb_ts(&[(TS1, "ts1")]), isb(json!({})));
    let mut st = PortBindingState::default();
    let c = ctx(false);
    w.step(&c, &mut st);
    let b = w.isb_pb("lsp1").unwrap();
    assert_eq!(b.str("address"), "unknown");
    assert_eq!(b.str("gateway"), "", "no switch fallback at creation");
    assert_eq!(smap(b, "external_ids"), kv(&[("router-id", &u(LS2))]));
    w.step(&c, &mut st);
    let b = w.isb_pb("lsp1").unwrap();
    assert_eq!(b.str("gateway"), "hv1");
    assert_eq!(
        w.lsp("lsp1")
            .unwrap()
            .smap_get("options", "requested-tnl-key"),
        Some("1")
    );
    w.assert_converged(&c, &mut st);
}

#[test]
fn legacy_port_without_sb_binding_loses_its_isb_binding_q9() {
    let mut sb = legacy_router_sb(lr_dp_ext());
    sb["Port_Binding"]
        .as_object_mut()
        .unwrap()
        .remove(&u(SB_LSP1));
    let mut w = W::new(
        legacy_router_nb(),
        sb,
        icnb_ts(&[(TS1, "ts1")]),
        isb(json!({u(PB1): pb(AZ1, "ts1", "lsp1", 1, json!({"address": MAC1}))})),
    );
    let mut st = PortBindingState::default();
    let c = ctx(false);
    let ran = w.step(&c, &mut st);
    assert!(w.isb_pb("lsp1").is_none());
    assert_eq!((ran.n(Target::IcSb), ran.total()), (1, 1));
    // Nothing is created until northd makes the SB binding.
    w.assert_converged(&c, &mut st);
    w.put(
        Target::Sb,
        "Port_Binding",
        SB_LSP1,
        json!({"logical_port": "lsp1", "datapath": r(DP_LS), "tunnel_key": 1,
            "options": m(&[("peer", "lrp1")])}),
    );
    w.step(&c, &mut st);
    assert_eq!(w.isb_pb("lsp1").unwrap().str("address"), MAC1);
}

#[test]
fn missing_nb_switch_deletes_local_bindings_q8() {
    let isb_rows = isb(json!({
        u(PB1): pb(AZ1, "ts1", "lsp1", 1, json!({})),
        u(PB2): pb(AZ2, "ts1", "rport", 2, json!({})),
    }));
    // No NB switch at all, then a switch of that name without the marker.
    for nb in [
        json!({}),
        json!({"Logical_Switch": {u(LS1): {"name": "ts1"}}}),
    ] {
        let mut w = W::new(
            nb,
            legacy_router_sb(lr_dp_ext()),
            icnb_ts(&[(TS1, "ts1")]),
            isb_rows.clone(),
        );
        let mut st = PortBindingState::default();
        let ran = w.step(&ctx(false), &mut st);
        assert!(logged(
            &ran.logs,
            tracing::Level::DEBUG,
            "Transit switch ts1 not found in NB."
        ));
        assert!(w.isb_pb("lsp1").is_none());
        assert!(w.isb_pb("rport").is_some(), "other AZs' rows are not ours");
        assert_eq!((ran.n(Target::IcSb), ran.total()), (1, 1));
    }
}

#[test]
fn ts_deleted_deletes_local_bindings() {
    let mut w = legacy_router_world();
    let mut st = PortBindingState::default();
    let c = ctx(false);
    w.step(&c, &mut st);
    w.put(
        Target::IcSb,
        "Port_Binding",
        PB2,
        pb(AZ2, "ts1", "rport", 5, json!({})),
    );
    w.edit(Target::IcNb, |i| i.delete("Transit_Switch", uu(TS1)));
    w.step(&c, &mut st);
    assert!(w.isb_pb("lsp1").is_none());
    assert!(w.isb_pb("rport").is_some());
    w.assert_converged(&c, &mut st);
}

#[test]
fn other_lsp_types_are_ignored_with_dbg() {
    let nb = tables(&[
        nb_ts1(&[LSP1]),
        json!({"Logical_Switch_Port": {u(LSP1): {"name": "vif1", "type": "localnet"}}}),
    ]);
    let w = W::new(nb, json!({}), icnb_ts(&[(TS1, "ts1")]), isb(json!({})));
    let mut st = PortBindingState::default();
    let (out, logs) = w.run(&ctx(true), &mut st);
    assert!(logged(
        &logs,
        tracing::Level::DEBUG,
        "Ignore lsp vif1 on ts ts1 with type localnet."
    ));
    assert_eq!(w.total_writes(&out), 0);
}

// ---------------------------------------------------------------------------------------------
// Legacy remote ports.

fn remote_world(gateway: &str) -> W {
    W::new(
        nb_ts1(&[]),
        json!({
            "Chassis": {u(CH_GW2): {"name": "gw2", "hostname": "gw2host",
                "other_config": m(&[("is-remote", "true")])}},
            "Datapath_Binding": {u(DP_LS): {"tunnel_key": 1}},
        }),
        icnb_ts(&[(TS1, "ts1")]),
        isb(json!({u(PB2): pb(AZ2, "ts1", "rport", 7,
            json!({"address": MAC2, "gateway": gateway}))})),
    )
}

/// northd's SB binding for the remote LSP.
fn add_sb_rport(w: &mut W, chassis: Option<u32>) {
    let mut row = json!({"logical_port": "rport", "datapath": r(DP_LS), "tunnel_key": 7,
        "type": "remote"});
    if let Some(ch) = chassis {
        row["chassis"] = r(ch);
    }
    w.put(Target::Sb, "Port_Binding", SB_RPORT, row);
}

#[test]
fn legacy_remote_port_created_with_up_addresses_and_key() {
    let mut w = remote_world("gw2");
    let mut st = PortBindingState::default();
    let c = ctx(false);
    let ran = w.step(&c, &mut st);
    assert_eq!(ran.n(Target::IcSb) + ran.n(Target::IcSbLocked), 0);
    let lsps: Vec<_> = ran
        .out
        .nb
        .table("Logical_Switch_Port")
        .filter_map(|(_, ri)| match ri {
            RowIntent::Insert(cols) => Some(cols.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(lsps.len(), 1);
    let want: BTreeMap<String, Datum> = [
        ("name", Datum::scalar("rport")),
        ("type", Datum::scalar("remote")),
        ("up", Datum::scalar(true)),
        ("addresses", Datum::scalar(MAC2)),
        ("options", Datum::smap([("requested-tnl-key", "7")])),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(lsps[0], want);
    assert_eq!(w.ls_ports(LS1), BTreeSet::from(["rport".to_string()]));
    // No SB binding yet: nothing else to do.
    w.assert_converged(&c, &mut st);

    // northd creates the SB binding: ovn-ic binds it to the ISB gateway's chassis.
    add_sb_rport(&mut w, None);
    let ran = w.step(&c, &mut st);
    assert_eq!((ran.n(Target::Sb), ran.total()), (1, 1));
    assert_eq!(
        w.sb.get("Port_Binding", uu(SB_RPORT))
            .unwrap()
            .uuid_of("chassis"),
        Some(uu(CH_GW2))
    );
    w.assert_converged(&c, &mut st);

    // `up` is never re-asserted.
    let lu = w.lsp("rport").unwrap().uuid();
    w.edit(Target::Nb, |i| {
        i.update(
            "Logical_Switch_Port",
            lu,
            vec![("up", Datum::scalar(false))],
        )
    });
    w.assert_converged(&c, &mut st);

    // Address and key follow the ISB binding; an empty address empties `addresses`.
    w.edit(Target::IcSb, |i| {
        i.update(
            "Port_Binding",
            uu(PB2),
            vec![
                ("address", Datum::scalar("")),
                ("tunnel_key", Datum::scalar(9i64)),
            ],
        )
    });
    w.step(&c, &mut st);
    let l = w.lsp("rport").unwrap();
    assert!(l.get("addresses").is_empty());
    assert_eq!(smap(l, "options"), kv(&[("requested-tnl-key", "9")]));
    assert_eq!(l.bool("up"), Some(false));
    w.assert_converged(&c, &mut st);
    w.edit(Target::IcSb, |i| {
        i.update(
            "Port_Binding",
            uu(PB2),
            vec![("address", Datum::scalar(MAC1))],
        )
    });
    w.step(&c, &mut st);
    assert_eq!(strs(w.lsp("rport").unwrap(), "addresses"), vec![MAC1]);
    w.assert_converged(&c, &mut st);

    // The binding disappears: the remote LSP goes, from `ports` too.
    w.edit(Target::IcSb, |i| i.delete("Port_Binding", uu(PB2)));
    let ran = w.step(&c, &mut st);
    assert!(w.lsp("rport").is_none());
    assert!(w.ls_ports(LS1).is_empty());
    assert_eq!(
        count(&ran.out.nb, "Logical_Switch_Port", is_delete),
        1,
        "{:#?}",
        ran.out.nb
    );
    w.assert_converged(&c, &mut st);
}

#[test]
fn legacy_remote_port_chassis_from_isb_gateway() {
    let c = ctx(false);
    // Already bound elsewhere (e.g. a stale chassis): rebound to gw2.
    let mut w = remote_world("gw2");
    let mut st = PortBindingState::default();
    w.step(&c, &mut st);
    w.put(
        Target::Sb,
        "Chassis",
        CH_HV1,
        json!({"name": "hv1", "hostname": "hv1"}),
    );
    add_sb_rport(&mut w, Some(CH_HV1));
    w.step(&c, &mut st);
    assert_eq!(
        w.sb.get("Port_Binding", uu(SB_RPORT))
            .unwrap()
            .uuid_of("chassis"),
        Some(uu(CH_GW2))
    );

    // Gateway cleared in ISB: SB chassis cleared.
    w.edit(Target::IcSb, |i| {
        i.update(
            "Port_Binding",
            uu(PB2),
            vec![("gateway", Datum::scalar(""))],
        )
    });
    w.step(&c, &mut st);
    assert_eq!(
        w.sb.get("Port_Binding", uu(SB_RPORT))
            .unwrap()
            .uuid_of("chassis"),
        None
    );
    w.assert_converged(&c, &mut st);

    // Gateway unknown in SB: DBG and no SB write.
    w.edit(Target::IcSb, |i| {
        i.update(
            "Port_Binding",
            uu(PB2),
            vec![("gateway", Datum::scalar("gw3"))],
        )
    });
    let ran = w.step(&c, &mut st);
    assert!(logged(
        &ran.logs,
        tracing::Level::DEBUG,
        "Chassis gw3 is not found in SB, syncing from ISB to SB skipped for logical port rport."
    ));
    assert_eq!(ran.total(), 0);

    // requested-chassis (even empty) on the LSP: ovn-ic leaves the SB binding to northd.
    w.edit(Target::IcSb, |i| {
        i.update(
            "Port_Binding",
            uu(PB2),
            vec![("gateway", Datum::scalar("gw2"))],
        )
    });
    let lu = w.lsp("rport").unwrap().uuid();
    w.edit(Target::Nb, |i| {
        i.update(
            "Logical_Switch_Port",
            lu,
            vec![(
                "options",
                Datum::smap([("requested-tnl-key", "7"), ("requested-chassis", "")]),
            )],
        )
    });
    let ran = w.step(&c, &mut st);
    assert_eq!(ran.total(), 0, "{:#?}", ran.out);
    assert_eq!(
        w.sb.get("Port_Binding", uu(SB_RPORT))
            .unwrap()
            .uuid_of("chassis"),
        None
    );
}

#[test]
fn legacy_remote_lsp_without_binding_is_deleted() {
    let nb = tables(&[
        nb_ts1(&[RLSP]),
        json!({"Logical_Switch_Port": {u(RLSP): {"name": "gone", "type": "remote"}}}),
    ]);
    let mut w = W::new(nb, json!({}), icnb_ts(&[(TS1, "ts1")]), isb(json!({})));
    let mut st = PortBindingState::default();
    w.step(&ctx(false), &mut st);
    assert!(w.lsp("gone").is_none());
    assert!(w.ls_ports(LS1).is_empty());
    w.assert_converged(&ctx(false), &mut st);
}

// ---------------------------------------------------------------------------------------------
// Managed ports (Transit_Switch_Port).

fn tsp_icnb(tsp: Value) -> Value {
    json!({
        "Transit_Switch": {u(TS1): {"name": "ts1", "ports": rs(&[TSP1])}},
        "Transit_Switch_Port": {u(TSP1): tsp},
    })
}

fn tsp_row(ty: &str, chassis: &str, peer: &str, addrs: &[&str]) -> Value {
    json!({"name": "tsp1", "type": ty, "chassis": chassis, "peer": peer, "addresses": s(addrs)})
}

fn gw_sb() -> Value {
    json!({"Chassis": {
        u(CH_GW1): {"name": "gw-az1", "hostname": "gw-az1",
            "other_config": m(&[("is-interconn", "true")])},
        u(CH_GW2): {"name": "gw-az2", "hostname": "gw-az2",
            "other_config": m(&[("is-remote", "true")])},
    }})
}

/// A world with TSP `tsp`; None (test skipped) when the IC-NB schema has no TSPs.
fn tsp_world(tsp: Value, isb_pbs: Value) -> Option<W> {
    let w = W::new(nb_ts1(&[]), gw_sb(), tsp_icnb(tsp), isb(isb_pbs));
    w.has_tsp().then_some(w)
}

fn lsp_peer(w: &W, name: &str) -> Option<String> {
    if !w.nb.has_column("Logical_Switch_Port", "peer") {
        return None;
    }
    w.lsp(name)
        .and_then(|l| l.get("peer").strs().next().map(str::to_string))
}

/// Spec §4.6.6 test expectation: a router TSP bound to this AZ's gateway.
#[test]
fn tsp_local_chassis_router_then_plain() {
    let Some(mut w) = tsp_world(tsp_row("router", "gw-az1", "lrp1", &[MAC1]), json!({})) else {
        return;
    };
    let mut st = PortBindingState::default();
    let c = ctx(false);
    let ran = w.step(&c, &mut st);
    // Created through the unlocked session even by a non-leader.
    assert!(ran.out.icsb_locked.is_empty());
    assert_eq!(pb_inserts(&ran.out.icsb).len(), 1);
    let b = w.isb_pb("tsp1").unwrap();
    assert_eq!(b.uuid_of("availability_zone"), Some(uu(AZ1)));
    assert_eq!(b.str("transit_switch"), "ts1");
    assert_eq!(b.int("tunnel_key"), Some(1));
    assert_eq!(b.str("type"), TYPE_TS_PORT);
    assert_eq!(b.uuid_of("nb_ic_uuid"), Some(uu(TS1)));
    assert_eq!(b.str("address"), MAC1);
    assert_eq!(b.str("gateway"), "gw-az1");
    assert!(smap(b, "external_ids").is_empty(), "no router-id for TSPs");

    let l = w.lsp("tsp1").unwrap();
    assert_eq!(l.str("type"), "router");
    assert_eq!(strs(l, "addresses"), vec![MAC1]);
    assert_eq!(
        smap(l, "options"),
        kv(&[
            ("interconn-tsp", "tsp1"),
            ("router-port", "lrp1"),
            ("requested-chassis", "gw-az1"),
            ("requested-tnl-key", "1"),
        ])
    );
    assert_eq!(lsp_peer(&w, "tsp1"), None);
    assert_eq!(w.ls_ports(LS1), BTreeSet::from(["tsp1".to_string()]));
    w.assert_converged(&c, &mut st);

    // Clearing the TSP type: plain LSP with `peer`, no router-port.
    w.put(
        Target::IcNb,
        "Transit_Switch_Port",
        TSP1,
        tsp_row("", "gw-az1", "lrp1", &[MAC1]),
    );
    w.step(&c, &mut st);
    let l = w.lsp("tsp1").unwrap();
    assert_eq!(l.str("type"), "");
    assert_eq!(
        smap(l, "options"),
        kv(&[
            ("interconn-tsp", "tsp1"),
            ("requested-chassis", "gw-az1"),
            ("requested-tnl-key", "1"),
        ])
    );
    if w.nb.has_column("Logical_Switch_Port", "peer") {
        assert_eq!(lsp_peer(&w, "tsp1").as_deref(), Some("lrp1"));
    }
    w.assert_converged(&c, &mut st);

    // Address change: ISB address follows (first of the sorted set, Q13), NB gets the set.
    w.put(
        Target::IcNb,
        "Transit_Switch_Port",
        TSP1,
        tsp_row("", "gw-az1", "", &["unknown", "0a:00:00:00:00:01 10.0.0.1"]),
    );
    w.step(&c, &mut st);
    assert_eq!(
        w.isb_pb("tsp1").unwrap().str("address"),
        "0a:00:00:00:00:01 10.0.0.1"
    );
    assert_eq!(
        strs(w.lsp("tsp1").unwrap(), "addresses"),
        vec!["0a:00:00:00:00:01 10.0.0.1", "unknown"]
    );
    assert_eq!(lsp_peer(&w, "tsp1"), None);
    w.assert_converged(&c, &mut st);
}

#[test]
fn tsp_without_chassis_leader_creates_through_locked_session() {
    let Some(mut w) = tsp_world(tsp_row("router", "", "lrp1", &[MAC1]), json!({})) else {
        return;
    };
    let mut st = PortBindingState::default();
    // A non-leader does nothing while no binding exists.
    let (out, _) = w.run(&ctx(false), &mut st);
    assert_eq!(w.total_writes(&out), 0, "{out:#?}");
    assert_eq!(st.hint, 0, "no key consumed");

    let c = ctx(true);
    let ran = w.step(&c, &mut st);
    assert!(pb_inserts(&ran.out.icsb).is_empty());
    assert_eq!(pb_inserts(&ran.out.icsb_locked).len(), 1);
    assert_eq!(ran.n(Target::IcSb), 0);
    let b = w.isb_pb("tsp1").unwrap();
    assert_eq!(b.uuid_of("availability_zone"), Some(uu(AZ1)));
    assert_eq!(b.int("tunnel_key"), Some(1));
    assert_eq!(b.str("type"), TYPE_TS_PORT);
    assert_eq!(b.uuid_of("nb_ic_uuid"), Some(uu(TS1)));
    assert_eq!((b.str("address"), b.str("gateway")), (MAC1, ""));
    let l = w.lsp("tsp1").unwrap();
    assert_eq!(l.str("type"), "router");
    assert_eq!(
        smap(l, "options"),
        kv(&[
            ("interconn-tsp", "tsp1"),
            ("router-port", "lrp1"),
            ("requested-tnl-key", "1"),
        ])
    );
    w.assert_converged(&c, &mut st);
    w.assert_converged(&ctx(false), &mut st);
}

/// Another AZ (the leader) owns the chassis-less TSP's binding: every AZ has a local-flavour LSP.
#[test]
fn tsp_without_chassis_binding_of_other_az() {
    let Some(mut w) = tsp_world(
        tsp_row("", "", "", &[MAC1]),
        json!({u(PB2): pb(AZ2, "ts1", "tsp1", 4, json!({"type": TYPE_TS_PORT,
            "nb_ic_uuid": r(TS1), "address": MAC1}))}),
    ) else {
        return;
    };
    let mut st = PortBindingState::default();
    let c = ctx(false);
    let ran = w.step(&c, &mut st);
    assert_eq!(ran.n(Target::IcSb) + ran.n(Target::IcSbLocked), 0);
    let l = w.lsp("tsp1").unwrap();
    assert_eq!(l.str("type"), "");
    assert_eq!(
        smap(l, "options"),
        kv(&[("interconn-tsp", "tsp1"), ("requested-tnl-key", "4")])
    );
    // No legacy remote LSP besides it.
    assert_eq!(w.ls_ports(LS1), BTreeSet::from(["tsp1".to_string()]));
    w.assert_converged(&c, &mut st);

    // The leader also syncs TSP→ISB into that binding.
    w.put(
        Target::IcNb,
        "Transit_Switch_Port",
        TSP1,
        tsp_row("", "", "", &[MAC2]),
    );
    let ran = w.step(&ctx(true), &mut st);
    assert!(pb_inserts(&ran.out.icsb_locked).is_empty());
    assert_eq!(w.isb_pb("tsp1").unwrap().str("address"), MAC2);
    assert_eq!(strs(w.lsp("tsp1").unwrap(), "addresses"), vec![MAC2]);
    w.assert_converged(&ctx(true), &mut st);
}

#[test]
fn tsp_remote_chassis_remote_flavour() {
    for chassis in ["gw-az2", "gw-unknown"] {
        let Some(mut w) = tsp_world(
            tsp_row("router", chassis, "lrp2", &[MAC2]),
            json!({u(PB2): pb(AZ2, "ts1", "tsp1", 5, json!({"type": TYPE_TS_PORT,
                "nb_ic_uuid": r(TS1), "address": MAC2, "gateway": chassis}))}),
        ) else {
            return;
        };
        let mut st = PortBindingState::default();
        let c = ctx(true);
        let ran = w.step(&c, &mut st);
        assert_eq!(ran.n(Target::IcSb) + ran.n(Target::IcSbLocked), 0);
        let l = w.lsp("tsp1").unwrap();
        assert_eq!(l.str("type"), "remote");
        assert_eq!(strs(l, "addresses"), vec![MAC2]);
        assert_eq!(
            smap(l, "options"),
            kv(&[
                ("interconn-tsp", "tsp1"),
                ("router-port", "lrp2"),
                ("requested-chassis", chassis),
                ("requested-tnl-key", "5"),
            ])
        );
        assert_eq!(w.ls_ports(LS1), BTreeSet::from(["tsp1".to_string()]));
        w.assert_converged(&c, &mut st);
    }
    // No binding yet: nothing at all.
    let Some(w) = tsp_world(tsp_row("router", "gw-az2", "lrp2", &[MAC2]), json!({})) else {
        return;
    };
    let mut st = PortBindingState::default();
    let (out, _) = w.run(&ctx(true), &mut st);
    assert_eq!(w.total_writes(&out), 0);
}

/// The TSP's chassis moves from this AZ to another one (spec §4.6.5).
#[test]
fn tsp_chassis_moves_away() {
    let Some(mut w) = tsp_world(tsp_row("", "gw-az1", "", &[MAC1]), json!({})) else {
        return;
    };
    let mut st = PortBindingState::default();
    let c = ctx(false);
    w.step(&c, &mut st);
    assert!(w.isb_pb("tsp1").is_some());
    w.put(
        Target::IcNb,
        "Transit_Switch_Port",
        TSP1,
        tsp_row("", "gw-az2", "", &[MAC1]),
    );
    // AZ1: no remote binding yet → its own binding and the managed LSP go.
    w.step(&c, &mut st);
    assert!(w.isb_pb("tsp1").is_none());
    assert!(w.lsp("tsp1").is_none());
    assert!(w.ls_ports(LS1).is_empty());
    w.assert_converged(&c, &mut st);
    // AZ2 publishes its binding → remote flavour here.
    w.put(
        Target::IcSb,
        "Port_Binding",
        PB2,
        pb(
            AZ2,
            "ts1",
            "tsp1",
            2,
            json!({"type": TYPE_TS_PORT, "gateway": "gw-az2"}),
        ),
    );
    w.step(&c, &mut st);
    let l = w.lsp("tsp1").unwrap();
    assert_eq!(l.str("type"), "remote");
    assert_eq!(l.smap_get("options", "requested-tnl-key"), Some("2"));
    w.assert_converged(&c, &mut st);
}

/// The TSP's chassis moves to this AZ while the old owner's binding still exists (Q16).
#[test]
fn tsp_chassis_moves_here_q16() {
    let Some(mut w) = tsp_world(
        tsp_row("", "gw-az1", "", &[MAC1]),
        json!({u(PB2): pb(AZ2, "ts1", "tsp1", 3, json!({"type": TYPE_TS_PORT,
            "gateway": "gw-az2"}))}),
    ) else {
        return;
    };
    let mut st = PortBindingState::default();
    let c = ctx(false);
    let ran = w.step(&c, &mut st);
    // Neither a duplicate binding nor a legacy remote LSP for the old owner's binding.
    assert_eq!(ran.total(), 0, "{:#?}", ran.out);
    // The old owner deletes its binding: now this AZ takes over.
    w.edit(Target::IcSb, |i| i.delete("Port_Binding", uu(PB2)));
    w.step(&c, &mut st);
    let b = w.isb_pb("tsp1").unwrap();
    assert_eq!(b.uuid_of("availability_zone"), Some(uu(AZ1)));
    let l = w.lsp("tsp1").unwrap();
    assert_eq!(l.str("type"), "");
    assert_eq!(
        l.smap_get("options", "requested-tnl-key"),
        b.int("tunnel_key").map(|k| k.to_string()).as_deref()
    );
    w.assert_converged(&c, &mut st);
}

#[test]
fn unmatched_managed_lsp_is_deleted() {
    let Some(mut w) = tsp_world(tsp_row("", "gw-az1", "", &[MAC1]), json!({})) else {
        return;
    };
    let mut st = PortBindingState::default();
    let c = ctx(false);
    w.step(&c, &mut st);
    // A managed LSP without TSP (e.g. left over) next to the real one.
    let tsp_lsp = w.lsp("tsp1").unwrap().uuid();
    w.put(
        Target::Nb,
        "Logical_Switch_Port",
        MLSP,
        json!({"name": "old", "options": m(&[("interconn-tsp", "old")])}),
    );
    w.edit(Target::Nb, |i| {
        i.update(
            "Logical_Switch",
            uu(LS1),
            vec![("ports", Datum::set([tsp_lsp, uu(MLSP)].map(Into::into)))],
        )
    });
    w.step(&c, &mut st);
    assert!(w.lsp("old").is_none());
    assert_eq!(w.ls_ports(LS1), BTreeSet::from(["tsp1".to_string()]));
    w.assert_converged(&c, &mut st);

    // The TSP is deleted: its LSP and its binding go.
    w.edit(Target::IcNb, |i| {
        i.update(
            "Transit_Switch",
            uu(TS1),
            vec![("ports", Datum::empty_set())],
        );
        i.delete("Transit_Switch_Port", uu(TSP1));
    });
    w.step(&c, &mut st);
    assert!(w.lsp("tsp1").is_none());
    assert!(w.isb_pb("tsp1").is_none());
    assert!(w.ls_ports(LS1).is_empty());
    w.assert_converged(&c, &mut st);
}

/// `transit port-bindings deletion upon TS deletion`.
#[test]
fn tsp_bindings_deleted_with_ts() {
    let Some(mut w) = tsp_world(tsp_row("", "", "", &[MAC1]), json!({})) else {
        return;
    };
    let mut st = PortBindingState::default();
    let c = ctx(true);
    w.step(&c, &mut st);
    assert!(w.isb_pb("tsp1").is_some());
    w.edit(Target::IcNb, |i| {
        i.delete("Transit_Switch", uu(TS1));
        i.delete("Transit_Switch_Port", uu(TSP1));
    });
    w.step(&c, &mut st);
    assert!(w.isb_pb("tsp1").is_none());
    w.assert_converged(&c, &mut st);
}

/// Legacy and managed ports coexist on one TS (`port sync`).
#[test]
fn legacy_and_managed_ports_coexist() {
    let mut nb = legacy_router_nb();
    nb["Logical_Switch"][u(LS1)]["ports"] = rs(&[LSP1]);
    let w0 = W::new(
        nb.clone(),
        legacy_router_sb(lr_dp_ext()),
        tsp_icnb(tsp_row("", "gw1", "", &[MAC2])),
        isb(json!({u(PB2): pb(AZ2, "ts1", "rport", 7, json!({"address": MAC2}))})),
    );
    if !w0.has_tsp() {
        return;
    }
    let mut w = w0;
    let mut st = PortBindingState::default();
    let c = ctx(false);
    w.step(&c, &mut st);
    w.step(&c, &mut st);
    w.assert_converged(&c, &mut st);
    let mut keys: Vec<(String, i64)> = w
        .isb_pbs()
        .iter()
        .map(|b| {
            (
                b.str("logical_port").to_string(),
                b.int("tunnel_key").unwrap(),
            )
        })
        .collect();
    keys.sort();
    // The managed port is handled first; keys avoid the other AZ's 7.
    assert_eq!(
        keys,
        vec![
            ("lsp1".to_string(), 2),
            ("rport".to_string(), 7),
            ("tsp1".to_string(), 1)
        ]
    );
    assert_eq!(
        w.ls_ports(LS1),
        ["lsp1", "rport", "tsp1"].map(String::from).into()
    );
    assert_eq!(w.lsp("rport").unwrap().str("type"), "remote");
}

// ---------------------------------------------------------------------------------------------
// Transit routers.

const TRMAC: &str = "00:00:00:00:10:01";

fn trp_row(name: &str, mac: &str, chassis: &str, nets: &[&str]) -> Value {
    json!({"name": name, "mac": mac, "chassis": chassis, "networks": s(nets), "tr_uuid": r(TR1)})
}

fn tr_world(trp: Value, nb_extra: Value, isb_pbs: Value) -> Option<W> {
    let nb = tables(&[
        json!({"Logical_Router": {u(NBTR): {"name": "tr1",
            "options": m(&[("interconn-tr", "tr1")])}}}),
        nb_extra,
    ]);
    let icnb = json!({
        "Transit_Router": {u(TR1): {"name": "tr1", "ports": rs(&[TRP1])}},
        "Transit_Router_Port": {u(TRP1): trp},
    });
    let w = W::new(nb, gw_sb(), icnb, isb(isb_pbs));
    w.has_tr().then_some(w)
}

#[test]
fn trp_local_chassis_binding_and_lrp() {
    let Some(mut w) = tr_world(
        trp_row("trp1", TRMAC, "gw-az1", &["10.0.0.1/24"]),
        json!({}),
        json!({}),
    ) else {
        return;
    };
    let mut st = PortBindingState::default();
    let c = ctx(false);
    let ran = w.step(&c, &mut st);
    let ins = pb_inserts(&ran.out.icsb);
    assert_eq!(ins.len(), 1);
    assert!(ran.out.icsb_locked.is_empty());
    assert_eq!(
        ins[0].keys().map(String::as_str).collect::<BTreeSet<_>>(),
        BTreeSet::from([
            "availability_zone",
            "transit_switch",
            "logical_port",
            "tunnel_key",
            "type",
            "nb_ic_uuid",
            "address"
        ]),
        "no gateway for router ports"
    );
    let b = w.isb_pb("trp1").unwrap();
    assert_eq!(b.uuid_of("availability_zone"), Some(uu(AZ1)));
    assert_eq!(b.str("transit_switch"), "tr1");
    assert_eq!(b.int("tunnel_key"), Some(1));
    assert_eq!(b.str("type"), TYPE_TR_PORT);
    assert_eq!(b.uuid_of("nb_ic_uuid"), Some(uu(TR1)));
    assert_eq!((b.str("address"), b.str("gateway")), (TRMAC, ""));
    assert!(logged(
        &ran.logs,
        tracing::Level::DEBUG,
        "Set options:requested-tnl-key 1 for lrp trp1 in NB."
    ));
    let l = w.lrp("trp1").unwrap();
    assert_eq!(l.str("mac"), TRMAC);
    assert_eq!(strs(l, "networks"), vec!["10.0.0.1/24"]);
    assert_eq!(
        smap(l, "options"),
        kv(&[
            ("interconn-tr", "trp1"),
            ("requested-chassis", "gw-az1"),
            ("requested-tnl-key", "1"),
        ])
    );
    assert_eq!(w.lr_ports(NBTR), BTreeSet::from(["trp1".to_string()]));
    let (out, logs) = w.run(&c, &mut st);
    assert_eq!(w.total_writes(&out), 0, "{out:#?}");
    assert!(!logs.iter().any(|(_, _, m)| m.starts_with("Set options")));

    // MAC / networks follow INB; the ISB address keeps the creation-time MAC (Q14).
    w.put(
        Target::IcNb,
        "Transit_Router_Port",
        TRP1,
        trp_row(
            "trp1",
            "00:00:00:00:10:02",
            "gw-az1",
            &["10.0.0.2/24", "fd00::2/64"],
        ),
    );
    w.step(&c, &mut st);
    let l = w.lrp("trp1").unwrap();
    assert_eq!(l.str("mac"), "00:00:00:00:10:02");
    assert_eq!(strs(l, "networks"), vec!["10.0.0.2/24", "fd00::2/64"]);
    assert_eq!(w.isb_pb("trp1").unwrap().str("address"), TRMAC);
    w.assert_converged(&c, &mut st);

    // A wrong NB key is corrected.
    let lu = w.lrp("trp1").unwrap().uuid();
    w.edit(Target::Nb, |i| {
        i.update(
            "Logical_Router_Port",
            lu,
            vec![(
                "options",
                Datum::smap([
                    ("interconn-tr", "trp1"),
                    ("requested-chassis", "gw-az1"),
                    ("requested-tnl-key", "3"),
                    ("keep", "me"),
                ]),
            )],
        )
    });
    let ran = w.step(&c, &mut st);
    assert!(logged(
        &ran.logs,
        tracing::Level::DEBUG,
        "Set options:requested-tnl-key 1 for lrp trp1 in NB."
    ));
    assert_eq!(
        smap(w.lrp("trp1").unwrap(), "options"),
        kv(&[
            ("interconn-tr", "trp1"),
            ("requested-chassis", "gw-az1"),
            ("requested-tnl-key", "1"),
            ("keep", "me"),
        ])
    );
    w.assert_converged(&c, &mut st);
}

#[test]
fn trp_remote_chassis_lrp_only_once_published() {
    let Some(mut w) = tr_world(
        trp_row("trp1", TRMAC, "gw-az2", &["10.0.0.1/24"]),
        json!({}),
        json!({}),
    ) else {
        return;
    };
    let mut st = PortBindingState::default();
    let c = ctx(true);
    let (out, _) = w.run(&c, &mut st);
    assert_eq!(w.total_writes(&out), 0, "nothing until the owner publishes");
    w.put(
        Target::IcSb,
        "Port_Binding",
        PB2,
        pb(
            AZ2,
            "tr1",
            "trp1",
            4,
            json!({"type": TYPE_TR_PORT, "nb_ic_uuid": r(TR1),
            "address": TRMAC}),
        ),
    );
    let ran = w.step(&c, &mut st);
    assert_eq!(ran.n(Target::IcSb) + ran.n(Target::IcSbLocked), 0);
    let l = w.lrp("trp1").unwrap();
    assert_eq!(l.str("mac"), TRMAC);
    assert_eq!(
        smap(l, "options"),
        kv(&[
            ("interconn-tr", "trp1"),
            ("requested-chassis", "gw-az2"),
            ("requested-tnl-key", "4"),
        ])
    );
    w.assert_converged(&c, &mut st);
}

/// Q7: a TRP without chassis is materialised nowhere.
#[test]
fn trp_without_chassis_nowhere() {
    let Some(w) = tr_world(trp_row("trp1", TRMAC, "", &[]), json!({}), json!({})) else {
        return;
    };
    let mut st = PortBindingState::default();
    let (out, _) = w.run(&ctx(true), &mut st);
    assert_eq!(w.total_writes(&out), 0);
}

/// `Transit router delete port` with the Q3 fix; CMS ports are never touched.
#[test]
fn trp_deleted_binding_and_lrp_deleted_q3() {
    let Some(mut w) = tr_world(
        trp_row("trp1", TRMAC, "gw-az1", &["10.0.0.1/24"]),
        json!({"Logical_Router_Port": {u(CMSLRP): {"name": "cms", "mac": "00:00:00:00:00:99"}}}),
        json!({}),
    ) else {
        return;
    };
    w.edit(Target::Nb, |i| {
        i.update(
            "Logical_Router",
            uu(NBTR),
            vec![("ports", Datum::scalar(uu(CMSLRP)))],
        )
    });
    let mut st = PortBindingState::default();
    let c = ctx(false);
    w.step(&c, &mut st);
    assert_eq!(w.lr_ports(NBTR), ["cms", "trp1"].map(String::from).into());
    w.edit(Target::IcNb, |i| {
        i.update(
            "Transit_Router",
            uu(TR1),
            vec![("ports", Datum::empty_set())],
        );
        i.delete("Transit_Router_Port", uu(TRP1));
    });
    w.step(&c, &mut st);
    assert!(w.isb_pb("trp1").is_none(), "Q3 fix");
    assert!(w.lrp("trp1").is_none());
    assert_eq!(w.lr_ports(NBTR), BTreeSet::from(["cms".to_string()]));
    assert!(w.lrp("cms").is_some());
    w.assert_converged(&c, &mut st);
}

/// A stale managed LRP (no TRP) is deleted; the chassis moving away deletes the binding too.
#[test]
fn trp_chassis_moves_away() {
    let Some(mut w) = tr_world(
        trp_row("trp1", TRMAC, "gw-az1", &["10.0.0.1/24"]),
        json!({"Logical_Router_Port": {u(MLRP): {"name": "stale",
            "options": m(&[("interconn-tr", "stale")])}}}),
        json!({}),
    ) else {
        return;
    };
    w.edit(Target::Nb, |i| {
        i.update(
            "Logical_Router",
            uu(NBTR),
            vec![("ports", Datum::scalar(uu(MLRP)))],
        )
    });
    let mut st = PortBindingState::default();
    let c = ctx(false);
    w.step(&c, &mut st);
    assert!(w.lrp("stale").is_none());
    assert_eq!(w.lr_ports(NBTR), BTreeSet::from(["trp1".to_string()]));
    w.put(
        Target::IcNb,
        "Transit_Router_Port",
        TRP1,
        trp_row("trp1", TRMAC, "gw-az2", &["10.0.0.1/24"]),
    );
    w.step(&c, &mut st);
    assert!(w.isb_pb("trp1").is_none());
    assert!(w.lrp("trp1").is_none());
    w.assert_converged(&c, &mut st);
}

/// `Port binding deletion upon transit router deletion` and a missing NB router.
#[test]
fn tr_deleted_or_missing_in_nb() {
    let Some(mut w) = tr_world(
        trp_row("trp1", TRMAC, "gw-az1", &["10.0.0.1/24"]),
        json!({}),
        json!({u(PB2): pb(AZ2, "tr1", "trp2", 2, json!({"type": TYPE_TR_PORT}))}),
    ) else {
        return;
    };
    let mut st = PortBindingState::default();
    let c = ctx(false);
    w.step(&c, &mut st);
    assert!(w.isb_pb("trp1").is_some());
    // The NB router loses its marker: DBG, local router bindings deleted.
    w.edit(Target::Nb, |i| {
        i.update(
            "Logical_Router",
            uu(NBTR),
            vec![("options", Datum::empty_map())],
        )
    });
    let ran = w.step(&c, &mut st);
    assert!(logged(
        &ran.logs,
        tracing::Level::DEBUG,
        "Transit router tr1 not found in NB."
    ));
    assert!(w.isb_pb("trp1").is_none());
    assert!(w.isb_pb("trp2").is_some());
    // Back, then the TR is deleted in INB.
    w.edit(Target::Nb, |i| {
        i.update(
            "Logical_Router",
            uu(NBTR),
            vec![("options", Datum::smap([("interconn-tr", "tr1")]))],
        )
    });
    w.step(&c, &mut st);
    assert!(w.isb_pb("trp1").is_some());
    w.edit(Target::IcNb, |i| {
        i.delete("Transit_Router", uu(TR1));
        i.delete("Transit_Router_Port", uu(TRP1));
    });
    w.step(&c, &mut st);
    assert!(w.isb_pb("trp1").is_none());
    assert!(w.isb_pb("trp2").is_some());
}

/// Q11: a TS and a TR with the same name do not delete each other's bindings.
#[test]
fn ts_and_tr_with_the_same_name_q11() {
    let nb = tables(&[json!({
        "Logical_Switch": {u(LS1): {"name": "x", "other_config": m(&[("interconn-ts", "x")]),
            "ports": rs(&[LSP1])}},
        "Logical_Switch_Port": {u(LSP1): {"name": "lsp1", "type": "router",
            "options": m(&[("router-port", "lrp1")])}},
        "Logical_Router": {u(NBTR): {"name": "x", "options": m(&[("interconn-tr", "x")])}},
    })]);
    let icnb = json!({
        "Transit_Switch": {u(TS1): {"name": "x"}},
        "Transit_Router": {u(TR1): {"name": "x", "ports": rs(&[TRP1])}},
        "Transit_Router_Port": {u(TRP1): trp_row("trp1", TRMAC, "gw1", &[])},
    });
    let sb = legacy_router_sb(lr_dp_ext());
    let mut w = W::new(nb, sb, icnb, isb(json!({})));
    if !w.has_tr() {
        return;
    }
    let mut st = PortBindingState::default();
    let c = ctx(false);
    w.step(&c, &mut st);
    w.step(&c, &mut st);
    w.assert_converged(&c, &mut st);
    let lsp1 = w.isb_pb("lsp1").unwrap();
    let trp1 = w.isb_pb("trp1").unwrap();
    assert_eq!(
        (lsp1.str("transit_switch"), trp1.str("transit_switch")),
        ("x", "x")
    );
    assert_ne!(lsp1.int("tunnel_key"), trp1.int("tunnel_key"));
}

// ---------------------------------------------------------------------------------------------
// Port key allocation (§4.6.6).

/// NB switch `ts1` with legacy `switch` LSPs `names`, each with its SB binding bound to hv1.
fn switch_ports(names: &[&str]) -> (Value, Value) {
    let mut lsps = serde_json::Map::new();
    let mut pbs = serde_json::Map::new();
    for (i, n) in names.iter().enumerate() {
        let i = i as u32;
        lsps.insert(u(0x1000 + i), json!({"name": n, "type": "switch"}));
        pbs.insert(
            u(0x2000 + i),
            json!({"logical_port": n, "datapath": r(DP_LS), "tunnel_key": i + 1,
                "chassis": r(CH_HV1)}),
        );
    }
    let ids: Vec<u32> = (0..names.len() as u32).map(|i| 0x1000 + i).collect();
    let nb = tables(&[nb_ts1(&ids), json!({ "Logical_Switch_Port": lsps })]);
    let sb = json!({
        "Chassis": {u(CH_HV1): {"name": "hv1", "hostname": "hv1"}},
        "Datapath_Binding": {u(DP_LS): {"tunnel_key": 1}},
        "Port_Binding": pbs,
    });
    (nb, sb)
}

fn key_of(w: &W, port: &str) -> Option<i64> {
    w.isb_pb(port).and_then(|b| b.int("tunnel_key"))
}

#[test]
fn keys_start_at_one_and_are_not_reused_while_running() {
    let (nb, sb) = switch_ports(&["a", "b"]);
    let mut w = W::new(nb, sb, icnb_ts(&[(TS1, "ts1")]), isb(json!({})));
    let mut st = PortBindingState::default();
    let c = ctx(false);
    w.step(&c, &mut st);
    assert_eq!((key_of(&w, "a"), key_of(&w, "b")), (Some(1), Some(2)));
    assert_eq!(st.hint, 2);
    // b goes away, c comes: key 3 (the hint keeps increasing).
    w.edit(Target::Nb, |i| {
        i.update(
            "Logical_Switch",
            uu(LS1),
            vec![(
                "ports",
                Datum::set([uu(0x1000), uu(0x1002)].map(Into::into)),
            )],
        );
        i.delete("Logical_Switch_Port", uu(0x1001));
    });
    w.put(
        Target::Nb,
        "Logical_Switch_Port",
        0x1002,
        json!({"name": "c", "type": "switch"}),
    );
    w.put(
        Target::Sb,
        "Port_Binding",
        0x2002,
        json!({"logical_port": "c", "datapath": r(DP_LS), "tunnel_key": 3}),
    );
    w.step(&c, &mut st);
    assert_eq!(key_of(&w, "b"), None);
    assert_eq!(key_of(&w, "c"), Some(3));
    // A restarted process starts from 0 again and takes the lowest free key.
    let mut fresh = PortBindingState::default();
    w.put(
        Target::Nb,
        "Logical_Switch_Port",
        0x1003,
        json!({"name": "d", "type": "switch"}),
    );
    w.edit(Target::Nb, |i| {
        i.update(
            "Logical_Switch",
            uu(LS1),
            vec![(
                "ports",
                Datum::set([uu(0x1000), uu(0x1002), uu(0x1003)].map(Into::into)),
            )],
        )
    });
    w.put(
        Target::Sb,
        "Port_Binding",
        0x2003,
        json!({"logical_port": "d", "datapath": r(DP_LS), "tunnel_key": 4}),
    );
    w.step(&c, &mut fresh);
    assert_eq!(key_of(&w, "d"), Some(2));
    w.step(&c, &mut fresh);
    w.assert_converged(&c, &mut fresh);
}

/// Q2 fix: the used set is per TS and covers every AZ's bindings on it (and keys allocated
/// earlier in the same run).
#[test]
fn keys_per_ts_across_azs_q2() {
    let (nb, sb) = switch_ports(&["a", "b"]);
    let mut w = W::new(
        nb,
        sb,
        icnb_ts(&[(TS1, "ts1"), (TS2, "ts2")]),
        isb(json!({
            u(PB1): pb(AZ2, "ts1", "r1", 1, json!({})),
            u(PB2): pb(AZ2, "ts2", "r2", 2, json!({})),
            u(PB3): pb(AZ2, "ts2", "r3", 3, json!({})),
        })),
    );
    let mut st = PortBindingState::default();
    let c = ctx(false);
    w.step(&c, &mut st);
    // 1 is taken on ts1 by az2; 2 and 3 only on ts2.
    assert_eq!((key_of(&w, "a"), key_of(&w, "b")), (Some(2), Some(3)));

    // Wrap-around within one run: 32767, then 1 is taken, so 4.
    let (nb, sb) = switch_ports(&["a", "b"]);
    let mut w = W::new(
        nb,
        sb,
        icnb_ts(&[(TS1, "ts1")]),
        isb(json!({
            u(PB1): pb(AZ2, "ts1", "r1", 1, json!({})),
            u(PB2): pb(AZ2, "ts1", "r2", 2, json!({})),
            u(PB3): pb(AZ1, "ts1", "gone", 3, json!({})),
        })),
    );
    let mut st = PortBindingState {
        hint: PORT_KEY_MAX - 1,
        ..Default::default()
    };
    w.step(&c, &mut st);
    assert_eq!(key_of(&w, "a"), Some(PORT_KEY_MAX));
    assert_eq!(
        key_of(&w, "b"),
        Some(4),
        "the key of a binding deleted in the same run is not reused"
    );
    assert!(w.isb_pb("gone").is_none());
}

/// Every key of a TS/TR taken: each path skips its port with the WARN, nothing is written.
#[test]
fn key_exhaustion_skips_ports() {
    let probe = W::new(json!({}), json!({}), json!({}), json!({}));
    if !probe.has_tsp() || !probe.has_tr() {
        return; // the filler rows need Port_Binding.type
    }
    let mut pbs = serde_json::Map::new();
    for k in 1..=PORT_KEY_MAX {
        // Router-port bindings on "ts1" and switch-port bindings on "tr1": they take the keys
        // without being anyone's port on that TS/TR.
        pbs.insert(
            format!("10000000-0000-0000-0000-{k:012x}"),
            pb(
                AZ2,
                "ts1",
                &format!("f{k}"),
                k,
                json!({"type": TYPE_TR_PORT}),
            ),
        );
        pbs.insert(
            format!("20000000-0000-0000-0000-{k:012x}"),
            pb(AZ2, "tr1", &format!("g{k}"), k, json!({})),
        );
    }
    let mut nb = legacy_router_nb();
    nb = tables(&[
        nb,
        json!({"Logical_Router": {u(NBTR): {"name": "tr1",
            "options": m(&[("interconn-tr", "tr1")])}}}),
    ]);
    let mut sb = legacy_router_sb(lr_dp_ext());
    sb["Chassis"] = gw_sb()["Chassis"].clone();
    sb["Chassis"][u(CH_GW1)]["name"] = json!("gw1");
    let icnb = json!({
        "Transit_Switch": {u(TS1): {"name": "ts1", "ports": rs(&[TSP1, TSP2])}},
        "Transit_Switch_Port": {
            u(TSP1): tsp_row("", "gw1", "", &[MAC1]),
            u(TSP2): {"name": "tsp2", "chassis": ""},
        },
        "Transit_Router": {u(TR1): {"name": "tr1", "ports": rs(&[TRP1])}},
        "Transit_Router_Port": {u(TRP1): trp_row("trp1", TRMAC, "gw1", &[])},
    });
    let w = W::new(nb, sb, icnb, isb(Value::Object(pbs)));
    let mut st = PortBindingState::default();
    let (out, logs) = w.run(&ctx(true), &mut st);
    assert_eq!(w.total_writes(&out), 0, "{out:#?}");
    let warns: Vec<_> = logs
        .iter()
        .filter(|(l, t, m)| {
            *l == tracing::Level::WARN
                && t == "ovn_util"
                && m == "all transit port tunnel ids exhausted"
        })
        .collect();
    // lsp1 (legacy), tsp1 (local chassis), tsp2 (leader, no chassis), trp1.
    assert_eq!(warns.len(), 4, "{logs:?}");
}

// ---------------------------------------------------------------------------------------------
// Q15 and schema tolerance (§6.2).

/// Upstream's inverted re-assert: rows without `type`/`nb_ic_uuid` are not back-filled, a stale
/// `nb_ic_uuid` is rewritten.
#[test]
fn legacy_type_and_nb_ic_uuid_reassert_q15() {
    let probe = legacy_router_world();
    if !probe.has_pb_type() {
        return;
    }
    let synced = json!({"address": MAC1, "gateway": "gw1",
        "external_ids": m(&[("router-id", &u(LR1))])});
    let mk = |extra: Value| {
        let mut row = pb(AZ1, "ts1", "lsp1", 1, synced.clone());
        for (k, v) in extra.as_object().unwrap() {
            row[k] = v.clone();
        }
        W::new(
            legacy_router_nb(),
            legacy_router_sb(lr_dp_ext()),
            icnb_ts(&[(TS1, "ts1")]),
            isb(json!({ u(PB1): row })),
        )
    };
    let mut st = PortBindingState {
        hint: 1,
        ..Default::default()
    };
    // Pre-26.03 row: never back-filled.
    let w = mk(json!({}));
    let (out, _) = w.run(&ctx(false), &mut st);
    assert_eq!(w.writes(&out, Target::IcSb), 0, "{out:#?}");
    // Stale nb_ic_uuid: rewritten.
    let mut w = mk(json!({"type": TYPE_TS_PORT, "nb_ic_uuid": r(0x999)}));
    let ran = w.step(&ctx(false), &mut st);
    assert_eq!(ran.n(Target::IcSb), 1);
    assert_eq!(
        w.isb_pb("lsp1").unwrap().uuid_of("nb_ic_uuid"),
        Some(uu(TS1))
    );
}

fn debian_dirs() -> Option<PathBuf> {
    let d = PathBuf::from("/usr/share/ovn");
    d.join("ovn-ic-sb.ovsschema").exists().then_some(d)
}

fn shared_dirs() -> Option<PathBuf> {
    let d = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/schemas");
    let d = if d.join("ovn-ic-nb.ovsschema").exists() {
        d
    } else {
        PathBuf::from("/work/shared/schemas")
    };
    d.join("ovn-ic-nb.ovsschema").exists().then_some(d)
}

/// 23.03 everywhere: legacy ports work; no `type`/`nb_ic_uuid` is written; router-id from
/// external_ids; TSP/TR rows cannot exist.
#[test]
fn debian_23_03_schemas_legacy_ports() {
    let Some(d) = debian_dirs() else { return };
    let dirs = Dirs {
        nb: d.clone(),
        sb: d.clone(),
        icnb: d.clone(),
        icsb: d,
    };
    let mut w = W::in_dirs(
        &dirs,
        legacy_router_nb(),
        legacy_router_sb(lr_dp_ext()),
        icnb_ts(&[(TS1, "ts1")]),
        isb(json!({u(PB2): pb(AZ2, "ts1", "rport", 7, json!({"address": MAC2}))})),
    );
    assert!(!w.has_pb_type() && !w.has_tsp() && !w.has_tr());
    let mut st = PortBindingState::default();
    let c = ctx(true);
    let ran = w.step(&c, &mut st);
    let ins = pb_inserts(&ran.out.icsb);
    assert_eq!(ins.len(), 1);
    assert!(!ins[0].contains_key("type") && !ins[0].contains_key("nb_ic_uuid"));
    let b = w.isb_pb("lsp1").unwrap();
    assert_eq!((b.str("address"), b.str("gateway")), (MAC1, "gw1"));
    assert_eq!(b.int("tunnel_key"), Some(1));
    assert_eq!(smap(b, "external_ids"), kv(&[("router-id", &u(LR1))]));
    let l = w.lsp("rport").unwrap();
    assert_eq!(l.str("type"), "remote");
    assert_eq!(l.bool("up"), Some(true));
    w.step(&c, &mut st);
    assert_eq!(
        w.lsp("lsp1")
            .unwrap()
            .smap_get("options", "requested-tnl-key"),
        Some("1")
    );
    w.assert_converged(&c, &mut st);
}

/// Current IC schemas with a 23.03 NB (no LSP `peer`): managed ports work, `peer` is not written.
#[test]
fn old_nb_without_lsp_peer() {
    let (Some(old), Some(new)) = (debian_dirs(), shared_dirs()) else {
        return;
    };
    let dirs = Dirs {
        nb: old,
        sb: new.clone(),
        icnb: new.clone(),
        icsb: new,
    };
    let mut w = W::in_dirs(
        &dirs,
        nb_ts1(&[]),
        gw_sb(),
        tsp_icnb(tsp_row("", "gw-az1", "lrp1", &[MAC1])),
        isb(json!({})),
    );
    if w.nb.has_column("Logical_Switch_Port", "peer") || !w.has_tsp() {
        return;
    }
    let mut st = PortBindingState::default();
    let c = ctx(false);
    let ran = w.step(&c, &mut st);
    for (_, ri) in ran.out.nb.table("Logical_Switch_Port") {
        if let RowIntent::Insert(cols) | RowIntent::Update(cols) = ri {
            assert!(!cols.contains_key("peer"), "{cols:?}");
        }
    }
    let l = w.lsp("tsp1").unwrap();
    assert_eq!(
        smap(l, "options"),
        kv(&[
            ("interconn-tsp", "tsp1"),
            ("requested-chassis", "gw-az1"),
            ("requested-tnl-key", "1"),
        ])
    );
    w.assert_converged(&c, &mut st);
}

/// Current IC-NB with a pre-26.03 IC-SB (no Port_Binding.type): no transit-router feature, and
/// every binding counts as a switch binding.
#[test]
fn old_isb_disables_transit_routers() {
    let (Some(old), Some(new)) = (debian_dirs(), shared_dirs()) else {
        return;
    };
    let dirs = Dirs {
        nb: new.clone(),
        sb: new.clone(),
        icnb: new,
        icsb: old,
    };
    let nb = json!({"Logical_Router": {u(NBTR): {"name": "tr1",
        "options": m(&[("interconn-tr", "tr1")])}}});
    let icnb = json!({
        "Transit_Router": {u(TR1): {"name": "tr1", "ports": rs(&[TRP1])}},
        "Transit_Router_Port": {u(TRP1): trp_row("trp1", TRMAC, "gw-az1", &[])},
    });
    let w = W::in_dirs(&dirs, nb, gw_sb(), icnb, isb(json!({})));
    if w.has_pb_type() {
        return;
    }
    let mut st = PortBindingState::default();
    let (out, _) = w.run(&ctx(true), &mut st);
    assert_eq!(w.total_writes(&out), 0, "{out:#?}");
}

// ---------------------------------------------------------------------------------------------
// Regression tests for the fixes (module doc / report).

/// Upstream syncs every NB key through `sync_lsp_tnl_key`, which logs the DBG line on a real
/// change: also at remote LSP creation, in the remote sync and for managed ports.
#[test]
fn tnl_key_dbg_on_every_lsp_path() {
    let dbg = |k: i64, p: &str| format!("Set options:requested-tnl-key {k} for lsp {p} in NB.");
    let mut w = remote_world("gw2");
    let mut st = PortBindingState::default();
    let c = ctx(false);
    let ran = w.step(&c, &mut st);
    assert!(logged(&ran.logs, tracing::Level::DEBUG, &dbg(7, "rport")));
    add_sb_rport(&mut w, Some(CH_GW2));
    w.edit(Target::IcSb, |i| {
        i.update(
            "Port_Binding",
            uu(PB2),
            vec![("tunnel_key", Datum::scalar(8i64))],
        )
    });
    let ran = w.step(&c, &mut st);
    assert!(logged(&ran.logs, tracing::Level::DEBUG, &dbg(8, "rport")));
    let ran = w.step(&c, &mut st);
    assert_eq!(ran.total(), 0);
    assert!(!logged(&ran.logs, tracing::Level::DEBUG, &dbg(8, "rport")));

    let Some(mut w) = tsp_world(tsp_row("", "gw-az1", "", &[MAC1]), json!({})) else {
        return;
    };
    let mut st = PortBindingState::default();
    let ran = w.step(&c, &mut st);
    assert!(logged(&ran.logs, tracing::Level::DEBUG, &dbg(1, "tsp1")));
    let ran = w.step(&c, &mut st);
    assert!(!logged(&ran.logs, tracing::Level::DEBUG, &dbg(1, "tsp1")));
}

/// `requested-tnl-key` is compared as `smap_get_int` reads it: "01" is key 1 and is left alone.
#[test]
fn tnl_key_compared_as_integer() {
    // Legacy local port.
    let mut w = legacy_router_world();
    let mut st = PortBindingState::default();
    let c = ctx(false);
    w.step(&c, &mut st);
    w.edit(Target::Nb, |i| {
        i.update(
            "Logical_Switch_Port",
            uu(LSP1),
            vec![(
                "options",
                Datum::smap([("router-port", "lrp1"), ("requested-tnl-key", "01")]),
            )],
        )
    });
    let (out, logs) = w.run(&c, &mut st);
    assert_eq!(w.total_writes(&out), 0, "{out:#?}");
    assert!(!logs.iter().any(|(_, _, m)| m.starts_with("Set options")));

    // Legacy remote port.
    let mut w = remote_world("");
    w.step(&c, &mut st);
    add_sb_rport(&mut w, None);
    let lu = w.lsp("rport").unwrap().uuid();
    w.edit(Target::Nb, |i| {
        i.update(
            "Logical_Switch_Port",
            lu,
            vec![("options", Datum::smap([("requested-tnl-key", "007")]))],
        )
    });
    let (out, _) = w.run(&c, &mut st);
    assert_eq!(w.total_writes(&out), 0, "{out:#?}");

    // Managed port and transit router port.
    if let Some(mut w) = tsp_world(tsp_row("", "gw-az1", "", &[MAC1]), json!({})) {
        let mut st = PortBindingState::default();
        w.step(&c, &mut st);
        let lu = w.lsp("tsp1").unwrap().uuid();
        w.edit(Target::Nb, |i| {
            i.update(
                "Logical_Switch_Port",
                lu,
                vec![(
                    "options",
                    Datum::smap([
                        ("interconn-tsp", "tsp1"),
                        ("requested-chassis", "gw-az1"),
                        ("requested-tnl-key", "01"),
                    ]),
                )],
            )
        });
        let (out, _) = w.run(&c, &mut st);
        assert_eq!(w.total_writes(&out), 0, "{out:#?}");
    }
    if let Some(mut w) = tr_world(trp_row("trp1", TRMAC, "gw-az1", &[]), json!({}), json!({})) {
        let mut st = PortBindingState::default();
        w.step(&c, &mut st);
        let lu = w.lrp("trp1").unwrap().uuid();
        w.edit(Target::Nb, |i| {
            i.update(
                "Logical_Router_Port",
                lu,
                vec![(
                    "options",
                    Datum::smap([
                        ("interconn-tr", "trp1"),
                        ("requested-chassis", "gw-az1"),
                        ("requested-tnl-key", "01"),
                    ]),
                )],
            )
        });
        let (out, logs) = w.run(&c, &mut st);
        assert_eq!(w.total_writes(&out), 0, "{out:#?}");
        assert!(!logs.iter().any(|(_, _, m)| m.starts_with("Set options")));
    }
}

/// router-id values are UUIDs: compared parsed, read with `smap_get_uuid` (a malformed
/// `logical-switch` falls through to `logical-router`), written in canonical lowercase.
#[test]
fn router_id_is_parsed_as_uuid() {
    let upper = u(LR1).to_uppercase();
    // Uppercase in SB external_ids, malformed logical-switch key: lowercase router-id written.
    let dp = json!({"tunnel_key": 2,
        "external_ids": m(&[("logical-switch", "not-a-uuid"), ("logical-router", &upper)])});
    let mut w = W::new(
        legacy_router_nb(),
        legacy_router_sb(dp),
        icnb_ts(&[(TS1, "ts1")]),
        isb(json!({})),
    );
    let mut st = PortBindingState::default();
    let c = ctx(false);
    let ran = w.step(&c, &mut st);
    assert!(msgs(&ran.logs, tracing::Level::WARN).is_empty());
    assert_eq!(
        w.isb_pb("lsp1")
            .unwrap()
            .smap_get("external_ids", "router-id"),
        Some(u(LR1).as_str())
    );
    // An uppercase spelling of the same UUID in ISB is not rewritten.
    let pbu = w.isb_pb("lsp1").unwrap().uuid();
    w.edit(Target::IcSb, |i| {
        i.update(
            "Port_Binding",
            pbu,
            vec![("external_ids", Datum::smap([("router-id", upper.as_str())]))],
        )
    });
    w.step(&c, &mut st);
    let (out, _) = w.run(&c, &mut st);
    assert_eq!(w.writes(&out, Target::IcSb), 0, "{out:#?}");
    // Nothing parses: WARN.
    let dp = json!({"tunnel_key": 2, "external_ids": m(&[("logical-router", "lr1")])});
    let w = W::new(
        legacy_router_nb(),
        legacy_router_sb(dp),
        icnb_ts(&[(TS1, "ts1")]),
        isb(json!({})),
    );
    let (_, logs) = w.run(&c, &mut PortBindingState::default());
    assert!(logged(
        &logs,
        tracing::Level::WARN,
        "Can't get router uuid for transit switch port lsp1."
    ));
}

/// A creation refused because the name is taken consumes no key.
#[test]
fn refused_creation_consumes_no_key() {
    let Some(mut w) = tsp_world(
        tsp_row("", "gw-az1", "", &[MAC1]),
        json!({u(PB2): pb(AZ2, "ts1", "tsp1", 3, json!({"type": TYPE_TS_PORT}))}),
    ) else {
        return;
    };
    let mut st = PortBindingState::default();
    let c = ctx(false);
    w.step(&c, &mut st);
    w.step(&c, &mut st);
    assert_eq!(st.hint, 0);
    w.edit(Target::IcSb, |i| i.delete("Port_Binding", uu(PB2)));
    w.step(&c, &mut st);
    assert_eq!(key_of(&w, "tsp1"), Some(1));
}

/// Names freed by a deletion earlier in the run can be reused in the same run (one
/// transaction deletes and inserts, as upstream does).
#[test]
fn names_freed_by_deletes_are_reusable_in_the_same_run() {
    // NB: a chassis-less TSP's managed LSP goes (TSP deleted) while the owner's binding still
    // exists: the legacy remote LSP of that name is created at once.
    if let Some(mut w) = tsp_world(
        tsp_row("", "", "", &[MAC1]),
        json!({u(PB2): pb(AZ2, "ts1", "tsp1", 4, json!({"type": TYPE_TS_PORT,
            "address": MAC1}))}),
    ) {
        let mut st = PortBindingState::default();
        let c = ctx(false);
        w.step(&c, &mut st);
        assert!(w.lsp("tsp1").is_some());
        w.edit(Target::IcNb, |i| {
            i.update(
                "Transit_Switch",
                uu(TS1),
                vec![("ports", Datum::empty_set())],
            );
            i.delete("Transit_Switch_Port", uu(TSP1));
        });
        let ran = w.step(&c, &mut st);
        assert!(
            msgs(&ran.logs, tracing::Level::WARN).is_empty(),
            "{:?}",
            ran.logs
        );
        let l = w.lsp("tsp1").unwrap();
        assert_eq!(l.str("type"), "remote");
        assert!(l.smap_get("options", "interconn-tsp").is_none());
        assert_eq!(w.ls_ports(LS1), BTreeSet::from(["tsp1".to_string()]));
    }

    // ISB: a legacy port moved from ts1's switch to ts2's: ts1's binding is deleted and ts2's
    // created in the same run.
    let nb = tables(&[
        legacy_router_nb(),
        json!({"Logical_Switch": {
            u(LS1): {"name": "ts1", "other_config": m(&[("interconn-ts", "ts1")])},
            u(LS2): {"name": "ts2", "other_config": m(&[("interconn-ts", "ts2")]),
                "ports": rs(&[LSP1])},
        }}),
    ]);
    let mut w = W::new(
        nb,
        legacy_router_sb(lr_dp_ext()),
        icnb_ts(&[(TS1, "ts1"), (TS2, "ts2")]),
        isb(json!({u(PB1): pb(AZ1, "ts1", "lsp1", 1, json!({"address": MAC1}))})),
    );
    let mut st = PortBindingState::default();
    let ran = w.step(&ctx(false), &mut st);
    assert!(
        msgs(&ran.logs, tracing::Level::WARN).is_empty(),
        "{:?}",
        ran.logs
    );
    let b = w.isb_pb("lsp1").unwrap();
    assert_eq!(b.str("transit_switch"), "ts2");
    assert_eq!(w.isb_pbs().len(), 1);
}

/// Keys allocated in the TS pass are taken for a TR of the same name (Q11 + Q2 fix): with only
/// one key left on "x", the TS port gets it and the TR port finds the space exhausted.
#[test]
fn keys_allocated_earlier_in_the_run_are_taken() {
    let probe = W::new(json!({}), json!({}), json!({}), json!({}));
    if !probe.has_tr() {
        return;
    }
    let mut pbs = serde_json::Map::new();
    for k in (1..=PORT_KEY_MAX).filter(|k| *k != 5) {
        // Other AZs' router-port bindings on "x" that no TRP claims.
        pbs.insert(
            format!("10000000-0000-0000-0000-{k:012x}"),
            pb(AZ2, "x", &format!("f{k}"), k, json!({"type": TYPE_TR_PORT})),
        );
    }
    let nb = json!({
        "Logical_Switch": {u(LS1): {"name": "x", "other_config": m(&[("interconn-ts", "x")]),
            "ports": rs(&[LSP1])}},
        "Logical_Switch_Port": {u(LSP1): {"name": "lsp1", "type": "router",
            "options": m(&[("router-port", "lrp1")])}},
        "Logical_Router": {u(NBTR): {"name": "x", "options": m(&[("interconn-tr", "x")])}},
    });
    let icnb = json!({
        "Transit_Switch": {u(TS1): {"name": "x"}},
        "Transit_Router": {u(TR1): {"name": "x", "ports": rs(&[TRP1])}},
        "Transit_Router_Port": {u(TRP1): trp_row("trp1", TRMAC, "gw1", &[])},
    });
    let w = W::new(
        nb,
        legacy_router_sb(lr_dp_ext()),
        icnb,
        isb(Value::Object(pbs)),
    );
    let mut st = PortBindingState {
        hint: 4,
        ..Default::default()
    };
    let (out, logs) = w.run(&ctx(false), &mut st);
    let ins = pb_inserts(&out.icsb);
    assert_eq!(ins.len(), 1, "{ins:?}");
    assert_eq!(ins[0].get("logical_port"), Some(&Datum::scalar("lsp1")));
    assert_eq!(ins[0].get("tunnel_key"), Some(&Datum::scalar(5i64)));
    assert!(logged(
        &logs,
        tracing::Level::WARN,
        "all transit port tunnel ids exhausted"
    ));
}
