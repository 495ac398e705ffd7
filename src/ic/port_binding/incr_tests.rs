//! Proof that the port-binding change handlers write what a full run writes.
//!
//! A random but valid interconnection (transit switches and routers with managed and legacy
//! ports, other AZs' bindings, gateways, the SB rows legacy ports read) is converged with full
//! runs. Then, per step, one random change is applied to the replicas (sometimes presented as
//! an earlier stage's writes of this run instead), including deletions and bad rows (clashing
//! names and keys, dangling chassis, garbage options). The keys of the tracked changes are run
//! scoped and compared with a full run on the same state: the same real writes (inserted rows
//! compared by content) and the same process-lifetime state. The writes are then committed and
//! come back as changes (the echo), which must again match the full run, until the full run
//! wants nothing (so the echo of a converged run writes nothing).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use super::super::{run, PortBindingState, TYPE_TR_PORT, TYPE_TS_PORT};
use super::*;
use crate::ic::testutil::{schema_dir, u};
use crate::ic::{Dbs, Out, Target, Views};
use crate::ovsdb::overlay::{RowIntent, View};
use crate::ovsdb::replica::Replica;
use crate::ovsdb::{DatabaseSchema, Datum, Uuid};

const AZ1: u32 = 0xa1;
const AZ2: u32 = 0xa2;
const AZ3: u32 = 0xa3;

const NAMES: &[&str] = &["p1", "p2", "p3", "p4", "l1", "l2", "r1", "r2", "t1", "t2"];
const CHASSIS: &[&str] = &["", "gw1", "gw2", "rgw", "nochassis"];
const TS_NAMES: &[&str] = &["ts1", "ts2", "ts3"];
/// `ts1` is also a router name: a TS and a TR may share a datapath name (Q11).
const TR_NAMES: &[&str] = &["tr1", "tr2", "ts1"];

/// The stage's table inputs (graph.rs).
const INPUTS: &[(Target, &str)] = &[
    (Target::Nb, "Logical_Switch"),
    (Target::Nb, "Logical_Switch_Port"),
    (Target::Nb, "Logical_Router"),
    (Target::Nb, "Logical_Router_Port"),
    (Target::Sb, "Chassis"),
    (Target::Sb, "Datapath_Binding"),
    (Target::Sb, "Port_Binding"),
    (Target::IcSb, "Port_Binding"),
    (Target::IcNb, "Transit_Switch"),
    (Target::IcNb, "Transit_Switch_Port"),
    (Target::IcNb, "Transit_Router"),
    (Target::IcNb, "Transit_Router_Port"),
];

/// Every table the stage writes.
const WRITTEN: &[&str] = &[
    "Logical_Switch",
    "Logical_Switch_Port",
    "Logical_Router",
    "Logical_Router_Port",
    "Port_Binding",
];

fn uu(n: u32) -> Uuid {
    u(n).parse().expect("fixture uuid")
}

fn m(pairs: &[(&str, &str)]) -> Value {
    json!([
        "map",
        pairs.iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>()
    ])
}
fn s(items: &[&str]) -> Value {
    json!(["set", items])
}
fn r(x: Uuid) -> Value {
    json!(["uuid", x.to_string()])
}
fn rs(xs: &[Uuid]) -> Value {
    json!(["set", xs.iter().map(|x| r(*x)).collect::<Vec<_>>()])
}

fn empty_replica(name: &str) -> Replica {
    let p = schema_dir().join(format!("{name}.ovsschema"));
    let sch = Arc::new(DatabaseSchema::from_file(&p).expect("schema"));
    let mut rp = Replica::new(&sch.name);
    let mon: BTreeMap<String, Vec<String>> = sch
        .tables
        .iter()
        .map(|(t, ts)| (t.clone(), ts.columns.keys().cloned().collect()))
        .collect();
    rp.set_schema(sch.clone(), &mon);
    // The daemon's indexes (driver.rs), so lookups behave as in production.
    for (t, c) in [
        ("Logical_Switch", "name"),
        ("Logical_Router", "name"),
        ("Logical_Switch_Port", "name"),
        ("Logical_Router_Port", "name"),
        ("Port_Binding", "logical_port"),
        ("Chassis", "name"),
        ("Transit_Switch", "name"),
        ("Port_Binding", "transit_switch"),
    ] {
        rp.add_index(t, &[c]);
    }
    rp
}

fn ctx(leader: bool) -> Ctx {
    Ctx {
        az: uu(AZ1),
        az_name: "az1".into(),
        isb_leader: leader,
    }
}

struct World {
    nb: Replica,
    sb: Replica,
    icnb: Replica,
    icsb: Replica,
    /// Next UUID for rows this test creates (deterministic).
    next: u32,
}

impl World {
    fn rp(&mut self, t: Target) -> &mut Replica {
        match t {
            Target::Nb => &mut self.nb,
            Target::Sb => &mut self.sb,
            Target::IcNb => &mut self.icnb,
            Target::IcSb | Target::IcSbLocked => &mut self.icsb,
        }
    }
    fn replica(&self, t: Target) -> &Replica {
        match t {
            Target::Nb => &self.nb,
            Target::Sb => &self.sb,
            Target::IcNb => &self.icnb,
            Target::IcSb | Target::IcSbLocked => &self.icsb,
        }
    }
    fn has(&self, t: Target, table: &str) -> bool {
        self.replica(t).has_table(table)
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
    fn fresh(&mut self) -> Uuid {
        self.next += 1;
        uu(0x10000 + self.next)
    }

    /// Write a whole row (columns the schema lacks are dropped, as a server of that version
    /// would not have them). Tracked as a change.
    fn put(&mut self, t: Target, table: &str, uuid: Uuid, row: Value) {
        let rp = self.rp(t);
        if !rp.has_table(table) {
            return;
        }
        let mut row = row.as_object().expect("row").clone();
        row.retain(|c, _| rp.has_column(table, c));
        let upd = json!({ table: { uuid.to_string(): { "new": Value::Object(row) } } });
        rp.apply_update1(&upd).expect("put");
    }
    fn insert(&mut self, t: Target, table: &str, row: Value) -> Uuid {
        let uuid = self.fresh();
        self.put(t, table, uuid, row);
        uuid
    }
    fn delete(&mut self, t: Target, table: &str, uuid: Uuid) {
        let rp = self.rp(t);
        if rp.get(table, uuid).is_some() {
            rp.apply_update2(&json!({ table: { uuid.to_string(): { "delete": null } } }))
                .expect("delete");
        }
    }
    /// Set one column of an existing row.
    fn set(&mut self, t: Target, table: &str, uuid: Uuid, col: &str, value: Value) {
        let Some(row) = self.replica(t).get(table, uuid) else {
            return;
        };
        let mut j = row.to_json();
        j[col] = value;
        self.put(t, table, uuid, j);
    }
    /// Set one key of a map column (None: remove it).
    fn set_key(&mut self, t: Target, table: &str, uuid: Uuid, col: &str, k: &str, v: Option<&str>) {
        let Some(row) = self.replica(t).get(table, uuid) else {
            return;
        };
        let mut map: BTreeMap<String, String> = row
            .get(col)
            .smap_iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        match v {
            Some(v) => map.insert(k.to_string(), v.to_string()),
            None => map.remove(k),
        };
        self.set(t, table, uuid, col, Datum::smap(map).to_json());
    }
    fn uuids(&self, t: Target, table: &str, uuid: Uuid, col: &str) -> Vec<Uuid> {
        self.replica(t)
            .get(table, uuid)
            .map(|r| r.get(col).uuids().collect())
            .unwrap_or_default()
    }
    fn set_uuids(&mut self, t: Target, table: &str, uuid: Uuid, col: &str, xs: &[Uuid]) {
        self.set(t, table, uuid, col, rs(xs));
    }
    fn all(&self, t: Target, table: &str) -> Vec<Uuid> {
        self.replica(t)
            .rows(table)
            .iter()
            .map(|r| r.uuid())
            .collect()
    }
    fn find(&self, t: Target, table: &str, col: &str, v: &str) -> Vec<Uuid> {
        self.replica(t)
            .rows(table)
            .iter()
            .filter(|r| r.str(col) == v)
            .map(|r| r.uuid())
            .collect()
    }
    fn clear(&mut self) {
        for rp in [&mut self.nb, &mut self.sb, &mut self.icnb, &mut self.icsb] {
            rp.clear_changes();
        }
    }

    /// Commit `out` as the servers would (rows it inserts get deterministic UUIDs).
    fn commit(&mut self, out: &Out) {
        for (t, layers) in [
            (Target::Nb, vec![&out.nb]),
            (Target::Sb, vec![&out.sb]),
            (Target::IcNb, vec![&out.icnb]),
            (Target::IcSb, vec![&out.icsb, &out.icsb_locked]),
        ] {
            let mut renames: Vec<(String, String)> = vec![];
            for l in &layers {
                for table in WRITTEN.iter().chain(["Chassis"].iter()) {
                    for (x, i) in l.table(table) {
                        if matches!(i, RowIntent::Insert(_)) {
                            renames.push((x.to_string(), self.fresh().to_string()));
                        }
                    }
                }
            }
            let rp = self.replica(t);
            let mut upd = serde_json::Map::new();
            {
                let mut view = View::new(rp);
                for l in &layers {
                    view = view.with(l);
                }
                for table in rp.table_names() {
                    let mut touched = BTreeSet::new();
                    for l in &layers {
                        touched.extend(l.table(table).map(|(x, _)| *x));
                    }
                    let mut rows = serde_json::Map::new();
                    for x in touched {
                        let new = view.get(table, x).map(|row| row.to_json());
                        if new.is_none() && rp.get(table, x).is_none() {
                            continue;
                        }
                        rows.insert(x.to_string(), json!({ "new": new.unwrap_or(Value::Null) }));
                    }
                    if !rows.is_empty() {
                        upd.insert(table.to_string(), Value::Object(rows));
                    }
                }
            }
            let mut text = Value::Object(upd).to_string();
            for (a, b) in &renames {
                text = text.replace(a.as_str(), b.as_str());
            }
            let upd: Value = serde_json::from_str(&text).expect("json");
            self.rp(t).apply_update1(&upd).expect("commit");
        }
    }
}

/// The real writes of `out` against the replicas, inserted rows named by their content.
fn effective(w: &World, out: &Out) -> Vec<String> {
    let mut res = vec![];
    for t in [
        Target::Nb,
        Target::Sb,
        Target::IcNb,
        Target::IcSb,
        Target::IcSbLocked,
    ] {
        let rp = w.replica(t);
        let i = out.get(t);
        let n: usize = WRITTEN.iter().map(|tb| i.table(tb).count()).sum();
        assert_eq!(n, i.len(), "the stage wrote an unexpected table: {i:#?}");
        let mut ins: BTreeMap<Uuid, String> = BTreeMap::new();
        for tb in WRITTEN {
            for (x, ri) in i.table(tb) {
                if let RowIntent::Insert(cols) = ri {
                    let c: BTreeMap<&String, String> = cols
                        .iter()
                        .filter(|(k, _)| rp.has_column(tb, k))
                        .map(|(k, d)| (k, d.to_json().to_string()))
                        .collect();
                    ins.insert(*x, format!("{tb}{c:?}"));
                }
            }
        }
        let render = |d: &Datum| -> String {
            let mut items: Vec<String> = d
                .uuids()
                .map(|x| ins.get(&x).cloned().unwrap_or_else(|| x.to_string()))
                .collect();
            if items.is_empty() {
                return d.to_json().to_string();
            }
            items.sort();
            format!("{items:?}")
        };
        for tb in WRITTEN {
            for (x, ri) in i.table(tb) {
                match ri {
                    RowIntent::Insert(_) => res.push(format!("{t:?} insert {}", ins[x])),
                    RowIntent::Delete => {
                        if rp.get(tb, *x).is_some() {
                            res.push(format!("{t:?} delete {tb} {x}"));
                        }
                    }
                    RowIntent::Update(cols) => {
                        let Some(row) = rp.get(tb, *x) else { continue };
                        for (col, d) in cols {
                            if rp.has_column(tb, col) && row.get(col) != d {
                                res.push(format!("{t:?} update {tb} {x} {col}={}", render(d)));
                            }
                        }
                    }
                }
            }
        }
    }
    res.sort();
    res
}

/// The keys of every tracked change of the stage's inputs (each input must map).
fn table_keys(w: &World, c: &Ctx, upstream: &Out) -> Keys {
    let base = w.views();
    let v = base.with(upstream);
    let mut keys = Keys::new();
    for (t, table) in INPUTS {
        let ch = w.replica(*t).changes(table);
        if ch.is_empty() {
            continue;
        }
        let k = keys_for_table(&v, c, *t, table, &ch)
            .unwrap_or_else(|e| panic!("{t:?} {table}: unhandled ({})", e.0));
        keys.extend(k);
    }
    for rp in [&w.nb, &w.sb, &w.icnb, &w.icsb] {
        for table in rp.changed_tables() {
            assert!(
                INPUTS.iter().any(|(_, t)| *t == table),
                "change in {table}, not an input"
            );
        }
    }
    let k = keys_for_stage(&v, c, upstream).unwrap_or_else(|e| panic!("stage: {}", e.0));
    keys.extend(k);
    keys
}

fn full(w: &World, c: &Ctx, st: &mut PortBindingState, upstream: &Out) -> Out {
    let base = w.views();
    let v = base.with(upstream);
    let mut out = Out::default();
    run(&v, c, st, &mut out);
    out
}

fn scoped(w: &World, c: &Ctx, st: &mut PortBindingState, keys: &Keys, upstream: &Out) -> Out {
    let base = w.views();
    let v = base.with(upstream);
    let mut out = Out::default();
    run_scoped(&v, c, st, keys, &mut out).expect("handled");
    out
}

/// Full runs until one wants nothing.
fn converge(w: &mut World, c: &Ctx, st: &mut PortBindingState) {
    for _ in 0..8 {
        let out = full(w, c, st, &Out::default());
        w.clear();
        if effective(w, &out).is_empty() {
            return;
        }
        w.commit(&out);
        w.clear();
    }
    panic!("full runs do not converge");
}

// ---------------------------------------------------------------------------------------------
// The world.

fn world() -> World {
    let mut w = World {
        nb: empty_replica("ovn-nb"),
        sb: empty_replica("ovn-sb"),
        icnb: empty_replica("ovn-ic-nb"),
        icsb: empty_replica("ovn-ic-sb"),
        next: 0,
    };
    for (n, name) in [(AZ1, "az1"), (AZ2, "az2"), (AZ3, "az3")] {
        w.put(
            Target::IcSb,
            "Availability_Zone",
            uu(n),
            json!({ "name": name }),
        );
    }
    // SB: chassis, the datapaths, a legacy router port's peer and its gateway port.
    let gw1 = w.insert(
        Target::Sb,
        "Chassis",
        json!({"name": "gw1", "hostname": "gw1", "other_config": m(&[("is-interconn", "true")])}),
    );
    w.insert(
        Target::Sb,
        "Chassis",
        json!({"name": "gw2", "hostname": "gw2"}),
    );
    w.insert(
        Target::Sb,
        "Chassis",
        json!({"name": "rgw", "hostname": "rgw", "other_config": m(&[("is-remote", "true")])}),
    );
    let lr1 = w.insert(Target::Nb, "Logical_Router", json!({"name": "lr1"}));
    let dp_ls = w.insert(
        Target::Sb,
        "Datapath_Binding",
        json!({"tunnel_key": 1, "external_ids": m(&[("logical-switch", &u(1))])}),
    );
    let dp_lr = w.insert(
        Target::Sb,
        "Datapath_Binding",
        json!({"tunnel_key": 2, "external_ids": m(&[("logical-router", &lr1.to_string())])}),
    );
    w.insert(
        Target::Sb,
        "Port_Binding",
        json!({"logical_port": "lrp1", "datapath": r(dp_lr), "tunnel_key": 1, "type": "patch",
            "mac": s(&["aa:00:00:00:00:01 169.254.1.1/24"]), "options": m(&[("peer", "l1")])}),
    );
    w.insert(
        Target::Sb,
        "Port_Binding",
        json!({"logical_port": "cr-lrp1", "datapath": r(dp_lr), "tunnel_key": 2,
            "type": "chassisredirect", "chassis": r(gw1)}),
    );
    // ts1 with a legacy router port l1 and a switch port l2; ts2 without legacy ports.
    for name in ["ts1", "ts2"] {
        add_ts(&mut w, name, true);
    }
    add_legacy(&mut w, "ts1", "l1", "router", Some(dp_ls));
    add_legacy(&mut w, "ts1", "l2", "switch", Some(dp_ls));
    // Managed ports.
    add_tsp(&mut w, "ts1", "p1", "gw1", "router", "lrpx");
    add_tsp(&mut w, "ts1", "p2", "", "", "");
    add_tsp(&mut w, "ts2", "p3", "rgw", "", "");
    // Other AZs' bindings.
    add_remote_pb(&mut w, "ts1", "r1", 5, "gw2", false);
    add_remote_pb(&mut w, "ts2", "r2", 3, "rgw", false);
    add_remote_pb(&mut w, "ts2", "p3", 4, "rgw", false);
    if w.has(Target::IcNb, "Transit_Router") {
        add_tr(&mut w, "tr1", true);
        add_trp(&mut w, "tr1", "t1", "gw1");
        add_trp(&mut w, "tr1", "t2", "rgw");
        add_remote_pb(&mut w, "tr1", "t2", 2, "rgw", true);
    }
    w.clear();
    w
}

fn ts_uuid(w: &World, name: &str) -> Option<Uuid> {
    w.find(Target::IcNb, "Transit_Switch", "name", name)
        .into_iter()
        .next()
}
fn tr_uuid(w: &World, name: &str) -> Option<Uuid> {
    w.find(Target::IcNb, "Transit_Router", "name", name)
        .into_iter()
        .next()
}
/// The NB image of transit switch `name`.
fn ls_image(w: &World, name: &str) -> Option<Uuid> {
    w.nb.rows("Logical_Switch")
        .iter()
        .find(|l| l.str("name") == name && l.smap_get("other_config", "interconn-ts") == Some(name))
        .map(|l| l.uuid())
}
fn lr_image(w: &World, name: &str) -> Option<Uuid> {
    w.nb.rows("Logical_Router")
        .iter()
        .find(|l| l.str("name") == name && l.smap_get("options", "interconn-tr").is_some())
        .map(|l| l.uuid())
}

fn add_ts(w: &mut World, name: &str, image: bool) {
    w.insert(Target::IcNb, "Transit_Switch", json!({ "name": name }));
    if image {
        w.insert(
            Target::Nb,
            "Logical_Switch",
            json!({"name": name, "other_config": m(&[("interconn-ts", name)])}),
        );
    }
}

fn add_tr(w: &mut World, name: &str, image: bool) {
    w.insert(Target::IcNb, "Transit_Router", json!({ "name": name }));
    if image {
        w.insert(
            Target::Nb,
            "Logical_Router",
            json!({"name": name, "options": m(&[("interconn-tr", name)])}),
        );
    }
}

fn add_legacy(w: &mut World, ts: &str, name: &str, ty: &str, dp: Option<Uuid>) {
    let Some(ls) = ls_image(w, ts) else { return };
    let mut lsp = json!({"name": name, "type": ty});
    if ty == "router" {
        lsp["options"] = m(&[("router-port", "lrp1")]);
    }
    let x = w.insert(Target::Nb, "Logical_Switch_Port", lsp);
    let mut ports = w.uuids(Target::Nb, "Logical_Switch", ls, "ports");
    ports.push(x);
    w.set_uuids(Target::Nb, "Logical_Switch", ls, "ports", &ports);
    if let Some(dp) = dp {
        let gw2 = w.find(Target::Sb, "Chassis", "name", "gw2");
        let mut row = json!({"logical_port": name, "datapath": r(dp), "tunnel_key": 9,
            "type": if ty == "router" { "patch" } else { "" }});
        if ty == "router" {
            row["options"] = m(&[("peer", "lrp1")]);
        } else if let Some(c) = gw2.first() {
            row["chassis"] = r(*c);
        }
        w.insert(Target::Sb, "Port_Binding", row);
    }
}

fn add_tsp(w: &mut World, ts: &str, name: &str, chassis: &str, ty: &str, peer: &str) {
    if !w.has(Target::IcNb, "Transit_Switch_Port") {
        return;
    }
    let Some(t) = ts_uuid(w, ts) else { return };
    let x = w.insert(
        Target::IcNb,
        "Transit_Switch_Port",
        json!({"name": name, "chassis": chassis, "type": ty, "peer": peer,
            "addresses": s(&[&format!("aa:00:00:00:01:{:02x} 169.254.2.1/24", name.len())])}),
    );
    let mut ports = w.uuids(Target::IcNb, "Transit_Switch", t, "ports");
    ports.push(x);
    w.set_uuids(Target::IcNb, "Transit_Switch", t, "ports", &ports);
}

fn add_trp(w: &mut World, tr: &str, name: &str, chassis: &str) {
    let Some(t) = tr_uuid(w, tr) else { return };
    let x = w.insert(
        Target::IcNb,
        "Transit_Router_Port",
        json!({"name": name, "chassis": chassis, "mac": "aa:00:00:00:02:01",
            "networks": s(&["169.254.3.1/24"]), "tr_uuid": r(t)}),
    );
    let mut ports = w.uuids(Target::IcNb, "Transit_Router", t, "ports");
    ports.push(x);
    w.set_uuids(Target::IcNb, "Transit_Router", t, "ports", &ports);
}

fn add_remote_pb(w: &mut World, dp: &str, name: &str, key: i64, gw: &str, router: bool) {
    w.insert(
        Target::IcSb,
        "Port_Binding",
        json!({"availability_zone": r(uu(AZ2)), "transit_switch": dp, "logical_port": name,
            "tunnel_key": key, "gateway": gw, "address": "aa:00:00:00:03:01 169.254.4.1/24",
            "type": if router { TYPE_TR_PORT } else { TYPE_TS_PORT }}),
    );
}

fn pick<T: Clone>(rng: &mut StdRng, xs: &[T]) -> Option<T> {
    (!xs.is_empty()).then(|| xs[rng.gen_range(0..xs.len())].clone())
}

fn name(rng: &mut StdRng) -> &'static str {
    NAMES[rng.gen_range(0..NAMES.len())]
}

/// Remove `x` from the `col` set of `parent` and delete it.
fn unlink(
    w: &mut World,
    t: Target,
    parent_table: &str,
    parent: Uuid,
    col: &str,
    table: &str,
    x: Uuid,
) {
    let ports: Vec<Uuid> = w
        .uuids(t, parent_table, parent, col)
        .into_iter()
        .filter(|p| *p != x)
        .collect();
    w.set_uuids(t, parent_table, parent, col, &ports);
    w.delete(t, table, x);
}

/// The ports (parent, port) of every row of `parent_table`.
fn children(w: &World, t: Target, parent_table: &str, col: &str) -> Vec<(Uuid, Uuid)> {
    w.all(t, parent_table)
        .into_iter()
        .flat_map(|p| {
            w.uuids(t, parent_table, p, col)
                .into_iter()
                .map(move |c| (p, c))
        })
        .collect()
}

/// One random external change. Some changes to NB images and SB chassis are instead returned
/// as an earlier stage's writes of this run (the TS/TR stages write images, the gateway stage
/// chassis).
fn random_edit(w: &mut World, rng: &mut StdRng) -> (String, Out) {
    let mut upstream = Out::default();
    let has_tsp = w.has(Target::IcNb, "Transit_Switch_Port");
    let has_tr = w.has(Target::IcNb, "Transit_Router");
    let what = match rng.gen_range(0..22) {
        0 if has_tsp => {
            let ts = pick(rng, TS_NAMES).unwrap_or("ts1");
            let (n, ch) = (name(rng), pick(rng, CHASSIS).unwrap_or(""));
            let ty = if rng.gen_bool(0.5) { "router" } else { "" };
            add_tsp(w, ts, n, ch, ty, "lrpx");
            format!("add tsp {n} on {ts} chassis {ch:?} type {ty:?}")
        }
        1 if has_tsp => {
            let Some((p, x)) = pick(rng, &children(w, Target::IcNb, "Transit_Switch", "ports"))
            else {
                return ("no tsp".into(), upstream);
            };
            unlink(
                w,
                Target::IcNb,
                "Transit_Switch",
                p,
                "ports",
                "Transit_Switch_Port",
                x,
            );
            format!("delete tsp {x}")
        }
        2 if has_tsp => {
            let Some(x) = pick(rng, &w.all(Target::IcNb, "Transit_Switch_Port")) else {
                return ("no tsp".into(), upstream);
            };
            let t = Target::IcNb;
            let tb = "Transit_Switch_Port";
            match rng.gen_range(0..5) {
                0 => w.set(t, tb, x, "chassis", json!(pick(rng, CHASSIS))),
                1 => w.set(
                    t,
                    tb,
                    x,
                    "addresses",
                    s(&["aa:00:00:00:09:09 169.254.9.9/24"]),
                ),
                2 => w.set(t, tb, x, "type", json!(pick(rng, &["", "router"]))),
                3 => w.set(t, tb, x, "peer", json!(pick(rng, &["", "lrpx", "lrpy"]))),
                _ => w.set(t, tb, x, "name", json!(name(rng))),
            }
            format!("modify tsp {x}")
        }
        3 => {
            let router = has_tr && rng.gen_bool(0.3);
            let dp = if router {
                pick(rng, TR_NAMES)
            } else {
                pick(rng, TS_NAMES)
            }
            .unwrap_or("ts1");
            let n = name(rng);
            let key = rng.gen_range(1..8);
            let gw = pick(rng, CHASSIS).unwrap_or("");
            add_remote_pb(w, dp, n, key, gw, router);
            format!("az2 binding {n} on {dp} key {key} router {router}")
        }
        4 => {
            let Some(x) = pick(rng, &w.all(Target::IcSb, "Port_Binding")) else {
                return ("no isb binding".into(), upstream);
            };
            w.delete(Target::IcSb, "Port_Binding", x);
            format!("delete isb binding {x}")
        }
        5 => {
            let Some(x) = pick(rng, &w.all(Target::IcSb, "Port_Binding")) else {
                return ("no isb binding".into(), upstream);
            };
            let (t, tb) = (Target::IcSb, "Port_Binding");
            match rng.gen_range(0..6) {
                0 => w.set(t, tb, x, "tunnel_key", json!(rng.gen_range(1..8))),
                1 => w.set(t, tb, x, "gateway", json!(pick(rng, CHASSIS))),
                2 => w.set(
                    t,
                    tb,
                    x,
                    "address",
                    json!("aa:00:00:00:05:05 169.254.5.5/24"),
                ),
                3 => w.set(t, tb, x, "transit_switch", json!(pick(rng, TS_NAMES))),
                4 => {
                    let az = pick(rng, &[AZ1, AZ2, AZ3]).unwrap_or(AZ2);
                    w.set(t, tb, x, "availability_zone", r(uu(az)))
                }
                _ => w.set(t, tb, x, "logical_port", json!(name(rng))),
            }
            format!("modify isb binding {x}")
        }
        6 => {
            let ts = pick(rng, TS_NAMES).unwrap_or("ts1");
            let ty = pick(rng, &["router", "switch", "remote", "", "localnet"]).unwrap_or("");
            let n = name(rng);
            let dp = w.all(Target::Sb, "Datapath_Binding").first().copied();
            let dp = if rng.gen_bool(0.7) { dp } else { None };
            add_legacy(w, ts, n, ty, dp);
            format!("add lsp {n} type {ty:?} on {ts}")
        }
        7 => {
            let Some((p, x)) = pick(rng, &children(w, Target::Nb, "Logical_Switch", "ports"))
            else {
                return ("no lsp".into(), upstream);
            };
            unlink(
                w,
                Target::Nb,
                "Logical_Switch",
                p,
                "ports",
                "Logical_Switch_Port",
                x,
            );
            format!("delete lsp {x}")
        }
        8 => {
            let Some(x) = pick(rng, &w.all(Target::Nb, "Logical_Switch_Port")) else {
                return ("no lsp".into(), upstream);
            };
            let (t, tb) = (Target::Nb, "Logical_Switch_Port");
            match rng.gen_range(0..6) {
                0 => w.set_key(t, tb, x, "options", "requested-tnl-key", Some("junk")),
                1 => w.set_key(t, tb, x, "options", "requested-tnl-key", Some("3")),
                2 => w.set(t, tb, x, "addresses", s(&["aa:00:00:00:06:06"])),
                3 => w.set(
                    t,
                    tb,
                    x,
                    "type",
                    json!(pick(rng, &["router", "remote", ""])),
                ),
                4 => w.set_key(t, tb, x, "options", "requested-chassis", Some("gw2")),
                _ => w.set(t, tb, x, "up", json!(rng.gen_bool(0.5))),
            }
            format!("modify lsp {x}")
        }
        9 => {
            let n = pick(rng, TS_NAMES).unwrap_or("ts3");
            match ts_uuid(w, n) {
                Some(x) => {
                    for p in w.uuids(Target::IcNb, "Transit_Switch", x, "ports") {
                        w.delete(Target::IcNb, "Transit_Switch_Port", p);
                    }
                    w.delete(Target::IcNb, "Transit_Switch", x);
                    format!("delete ts {n}")
                }
                None => {
                    add_ts(w, n, false);
                    format!("add ts {n}")
                }
            }
        }
        10 => {
            // The NB image of a transit switch appears or goes (as the TS stage does), or loses
            // its marker.
            let n = pick(rng, TS_NAMES).unwrap_or("ts3");
            let as_stage = rng.gen_bool(0.5);
            match ls_image(w, n) {
                Some(x) if rng.gen_bool(0.3) => {
                    w.set_key(
                        Target::Nb,
                        "Logical_Switch",
                        x,
                        "other_config",
                        "interconn-ts",
                        None,
                    );
                    format!("marker of ls {n} removed")
                }
                Some(x) => {
                    if as_stage {
                        upstream.nb.delete("Logical_Switch", x);
                    } else {
                        for p in w.uuids(Target::Nb, "Logical_Switch", x, "ports") {
                            w.delete(Target::Nb, "Logical_Switch_Port", p);
                        }
                        w.delete(Target::Nb, "Logical_Switch", x);
                    }
                    format!("ls {n} deleted (stage {as_stage})")
                }
                None => {
                    let row = vec![
                        ("name", Datum::scalar(n)),
                        ("other_config", Datum::smap([("interconn-ts", n)])),
                    ];
                    if as_stage {
                        upstream.nb.insert("Logical_Switch", row);
                    } else {
                        w.insert(
                            Target::Nb,
                            "Logical_Switch",
                            json!({"name": n, "other_config": m(&[("interconn-ts", n)])}),
                        );
                    }
                    format!("ls {n} created (stage {as_stage})")
                }
            }
        }
        11 => {
            // Chassis: is-remote flips, renames, appear, go (as the gateway stage does).
            let as_stage = rng.gen_bool(0.5);
            let chs = w.all(Target::Sb, "Chassis");
            let (t, tb) = (Target::Sb, "Chassis");
            match rng.gen_range(0..4) {
                0 => {
                    let Some(x) = pick(rng, &chs) else {
                        return ("no chassis".into(), upstream);
                    };
                    let row = w.sb.get(tb, x).expect("chassis");
                    let remote = row.smap_get("other_config", "is-remote") == Some("true");
                    let v = if remote { "false" } else { "true" };
                    if as_stage {
                        let mut oc: BTreeMap<String, String> = row
                            .get("other_config")
                            .smap_iter()
                            .map(|(a, b)| (a.to_string(), b.to_string()))
                            .collect();
                        oc.insert("is-remote".into(), v.into());
                        upstream
                            .sb
                            .update(tb, x, vec![("other_config", Datum::smap(oc))]);
                    } else {
                        w.set_key(t, tb, x, "other_config", "is-remote", Some(v));
                    }
                    format!("chassis {x} is-remote={v}")
                }
                1 => {
                    let Some(x) = pick(rng, &chs) else {
                        return ("no chassis".into(), upstream);
                    };
                    let n = pick(rng, &CHASSIS[1..]).unwrap_or("gw9");
                    w.set(t, tb, x, "name", json!(n));
                    format!("chassis {x} renamed {n}")
                }
                2 => {
                    let n = pick(rng, &CHASSIS[1..]).unwrap_or("gw9");
                    let remote = if rng.gen_bool(0.5) { "true" } else { "false" };
                    if as_stage {
                        upstream.sb.insert(
                            tb,
                            vec![
                                ("name", Datum::scalar(n)),
                                ("hostname", Datum::scalar(n)),
                                ("other_config", Datum::smap([("is-remote", remote)])),
                            ],
                        );
                    } else {
                        w.insert(
                            t,
                            tb,
                            json!({"name": n, "hostname": n, "other_config": m(&[("is-remote", remote)])}),
                        );
                    }
                    format!("chassis {n} added (stage {as_stage})")
                }
                _ => {
                    let Some(x) = pick(rng, &chs) else {
                        return ("no chassis".into(), upstream);
                    };
                    if as_stage {
                        upstream.sb.delete(tb, x);
                    } else {
                        // SB Port_Binding.chassis is a weak reference.
                        for pb in w.all(t, "Port_Binding") {
                            if w.sb
                                .get("Port_Binding", pb)
                                .and_then(|p| p.uuid_of("chassis"))
                                == Some(x)
                            {
                                w.set(t, "Port_Binding", pb, "chassis", s(&[]));
                            }
                        }
                        w.delete(t, tb, x);
                    }
                    format!("chassis {x} deleted (stage {as_stage})")
                }
            }
        }
        12 => {
            let (t, tb) = (Target::Sb, "Port_Binding");
            let Some(x) = pick(rng, &w.all(t, tb)) else {
                return ("no sb pb".into(), upstream);
            };
            let chs = w.all(t, "Chassis");
            match rng.gen_range(0..6) {
                0 => match pick(rng, &chs) {
                    Some(c) => w.set(t, tb, x, "chassis", r(c)),
                    None => w.set(t, tb, x, "chassis", s(&[])),
                },
                1 => w.set(t, tb, x, "chassis", s(&[])),
                2 => w.set(t, tb, x, "mac", s(&["aa:00:00:00:07:07 169.254.7.7/24"])),
                3 => w.set_key(
                    t,
                    tb,
                    x,
                    "options",
                    "peer",
                    pick(rng, &["lrp1", "l1", "nope"]),
                ),
                4 => w.delete(t, tb, x),
                _ => w.set(t, tb, x, "up", json!(["set", [rng.gen_bool(0.5)]])),
            }
            format!("sb pb {x} changed")
        }
        13 => {
            let (t, tb) = (Target::Sb, "Datapath_Binding");
            let Some(x) = pick(rng, &w.all(t, tb)) else {
                return ("no dp".into(), upstream);
            };
            let v = if rng.gen_bool(0.5) {
                u(0x777)
            } else {
                "junk".into()
            };
            w.set_key(t, tb, x, "external_ids", "logical-router", Some(&v));
            format!("dp {x} logical-router {v}")
        }
        14 if has_tr => {
            let n = pick(rng, TR_NAMES).unwrap_or("tr2");
            match rng.gen_range(0..4) {
                0 => {
                    add_trp(w, n, name(rng), pick(rng, CHASSIS).unwrap_or(""));
                    format!("add trp on {n}")
                }
                1 => {
                    let Some((p, x)) =
                        pick(rng, &children(w, Target::IcNb, "Transit_Router", "ports"))
                    else {
                        return ("no trp".into(), upstream);
                    };
                    unlink(
                        w,
                        Target::IcNb,
                        "Transit_Router",
                        p,
                        "ports",
                        "Transit_Router_Port",
                        x,
                    );
                    format!("delete trp {x}")
                }
                2 => {
                    let Some(x) = pick(rng, &w.all(Target::IcNb, "Transit_Router_Port")) else {
                        return ("no trp".into(), upstream);
                    };
                    let (t, tb) = (Target::IcNb, "Transit_Router_Port");
                    match rng.gen_range(0..3) {
                        0 => w.set(t, tb, x, "chassis", json!(pick(rng, CHASSIS))),
                        1 => w.set(t, tb, x, "mac", json!("aa:00:00:00:08:08")),
                        _ => w.set(t, tb, x, "networks", s(&["169.254.8.8/24"])),
                    }
                    format!("modify trp {x}")
                }
                _ => match tr_uuid(w, n) {
                    Some(x) => {
                        for p in w.uuids(Target::IcNb, "Transit_Router", x, "ports") {
                            w.delete(Target::IcNb, "Transit_Router_Port", p);
                        }
                        w.delete(Target::IcNb, "Transit_Router", x);
                        format!("delete tr {n}")
                    }
                    None => {
                        add_tr(w, n, false);
                        format!("add tr {n}")
                    }
                },
            }
        }
        15 if has_tr => {
            // The NB image of a transit router appears or goes (as the TR stage does).
            let n = pick(rng, TR_NAMES).unwrap_or("tr2");
            let as_stage = rng.gen_bool(0.5);
            match lr_image(w, n) {
                Some(x) => {
                    if as_stage {
                        upstream.nb.delete("Logical_Router", x);
                    } else {
                        for p in w.uuids(Target::Nb, "Logical_Router", x, "ports") {
                            w.delete(Target::Nb, "Logical_Router_Port", p);
                        }
                        w.delete(Target::Nb, "Logical_Router", x);
                    }
                    format!("lr {n} deleted (stage {as_stage})")
                }
                None => {
                    if as_stage {
                        upstream.nb.insert(
                            "Logical_Router",
                            vec![
                                ("name", Datum::scalar(n)),
                                ("options", Datum::smap([("interconn-tr", n)])),
                            ],
                        );
                    } else {
                        w.insert(
                            Target::Nb,
                            "Logical_Router",
                            json!({"name": n, "options": m(&[("interconn-tr", n)])}),
                        );
                    }
                    format!("lr {n} created (stage {as_stage})")
                }
            }
        }
        16 => {
            // A user port elsewhere whose name clashes (or stops clashing) with a transit port.
            let n = name(rng);
            let router = rng.gen_bool(0.5);
            let (tb, ptb) = if router {
                ("Logical_Router_Port", "Logical_Router")
            } else {
                ("Logical_Switch_Port", "Logical_Switch")
            };
            let existing: Vec<Uuid> = w.find(Target::Nb, tb, "name", n);
            let parent = w
                .find(Target::Nb, ptb, "name", "user")
                .into_iter()
                .next()
                .unwrap_or_else(|| w.insert(Target::Nb, ptb, json!({"name": "user"})));
            let mine: Vec<Uuid> = w.uuids(Target::Nb, ptb, parent, "ports");
            if let Some(x) = existing.iter().find(|x| mine.contains(x)) {
                unlink(w, Target::Nb, ptb, parent, "ports", tb, *x);
                format!("user {tb} {n} deleted")
            } else {
                let row = if router {
                    json!({"name": n, "mac": "aa:00:00:00:0a:0a", "networks": s(&["10.0.0.1/24"])})
                } else {
                    json!({"name": n})
                };
                let x = w.insert(Target::Nb, tb, row);
                let mut ports = mine;
                ports.push(x);
                w.set_uuids(Target::Nb, ptb, parent, "ports", &ports);
                format!("user {tb} {n} added")
            }
        }
        17 => {
            // A managed port deleted or changed behind our back.
            let managed: Vec<(Uuid, Uuid)> = children(w, Target::Nb, "Logical_Switch", "ports")
                .into_iter()
                .filter(|(_, x)| {
                    w.nb.get("Logical_Switch_Port", *x)
                        .is_some_and(|p| p.smap_get("options", "interconn-tsp").is_some())
                })
                .collect();
            let Some((p, x)) = pick(rng, &managed) else {
                return ("no managed lsp".into(), upstream);
            };
            if rng.gen_bool(0.5) {
                unlink(
                    w,
                    Target::Nb,
                    "Logical_Switch",
                    p,
                    "ports",
                    "Logical_Switch_Port",
                    x,
                );
                format!("managed lsp {x} deleted")
            } else {
                w.set_key(
                    Target::Nb,
                    "Logical_Switch_Port",
                    x,
                    "options",
                    "requested-tnl-key",
                    None,
                );
                format!("managed lsp {x} lost its key")
            }
        }
        18 => {
            // Changes of columns the stage never reads.
            match rng.gen_range(0..3) {
                0 => {
                    let Some(x) = pick(rng, &w.all(Target::Nb, "Logical_Switch")) else {
                        return ("no ls".into(), upstream);
                    };
                    w.set_key(
                        Target::Nb,
                        "Logical_Switch",
                        x,
                        "external_ids",
                        "foo",
                        Some("bar"),
                    );
                }
                1 => {
                    let Some(x) = pick(rng, &w.all(Target::Sb, "Chassis")) else {
                        return ("no chassis".into(), upstream);
                    };
                    w.set(Target::Sb, "Chassis", x, "hostname", json!("elsewhere"));
                }
                _ => {
                    let Some(x) = pick(rng, &w.all(Target::IcNb, "Transit_Switch")) else {
                        return ("no ts".into(), upstream);
                    };
                    w.set_key(
                        Target::IcNb,
                        "Transit_Switch",
                        x,
                        "external_ids",
                        "foo",
                        Some("bar"),
                    );
                }
            }
            "irrelevant column".into()
        }
        19 if has_tr => {
            // A managed router port deleted or changed behind our back.
            let managed: Vec<(Uuid, Uuid)> = children(w, Target::Nb, "Logical_Router", "ports")
                .into_iter()
                .filter(|(_, x)| {
                    w.nb.get("Logical_Router_Port", *x)
                        .is_some_and(|p| p.smap_get("options", "interconn-tr").is_some())
                })
                .collect();
            let Some((p, x)) = pick(rng, &managed) else {
                return ("no managed lrp".into(), upstream);
            };
            let tb = "Logical_Router_Port";
            match rng.gen_range(0..4) {
                0 => unlink(w, Target::Nb, "Logical_Router", p, "ports", tb, x),
                1 => w.set(Target::Nb, tb, x, "mac", json!("aa:00:00:00:0b:0b")),
                2 => w.set_key(Target::Nb, tb, x, "options", "requested-tnl-key", None),
                _ => w.set(Target::Nb, tb, x, "name", json!(name(rng))),
            }
            format!("managed lrp {x} changed")
        }
        20 => {
            // A chassis renamed (its bindings keep pointing at it).
            let Some(x) = pick(rng, &w.all(Target::Sb, "Chassis")) else {
                return ("no chassis".into(), upstream);
            };
            let n = pick(rng, &["gw1", "gw2", "rgw", "gw7", "gw8"]).unwrap_or("gw9");
            w.set(Target::Sb, "Chassis", x, "name", json!(n));
            format!("chassis {x} renamed {n}")
        }
        _ => {
            // A legacy port's SB binding appears.
            let n = name(rng);
            let dp = w.all(Target::Sb, "Datapath_Binding").first().copied();
            let Some(dp) = dp else {
                return ("no dp".into(), upstream);
            };
            w.insert(
                Target::Sb,
                "Port_Binding",
                json!({"logical_port": n, "datapath": r(dp), "tunnel_key": 11,
                    "options": m(&[("peer", "lrp1")])}),
            );
            format!("sb pb {n} added")
        }
    };
    (what, upstream)
}

#[test]
fn scoped_runs_equal_full_runs_on_random_changes() {
    let (mut handled, mut effective_steps, mut empty_keys) = (0, 0, 0);
    for seed in 0..24u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let c = ctx(seed % 3 != 2);
        let mut w = world();
        let mut st = PortBindingState::default();
        // A random starting point.
        for _ in 0..12 {
            let (_, upstream) = random_edit(&mut w, &mut rng);
            w.commit(&upstream);
        }
        converge(&mut w, &c, &mut st);
        for step in 0..40 {
            let (what, mut upstream) = random_edit(&mut w, &mut rng);
            // The change, then its echoes, until a full run wants nothing.
            for round in 0..6 {
                let msg = format!("seed {seed} step {step} round {round}: {what}");
                let keys = table_keys(&w, &c, &upstream);
                let mut st_full = st.clone();
                let f = full(&w, &c, &mut st_full, &upstream);
                let i = if keys.is_empty() {
                    empty_keys += 1;
                    Out::default()
                } else if rng.gen_bool(0.3) {
                    // Several handlers in one engine run, each with some of the keys.
                    let (mut lo, mut hi) = (Keys::new(), Keys::new());
                    for k in &keys {
                        if rng.gen_bool(0.5) { &mut lo } else { &mut hi }.insert(k.clone());
                    }
                    let v = w.views();
                    let v = v.with(&upstream);
                    let mut out = Out::default();
                    run_scoped(&v, &c, &mut st, &lo, &mut out).expect("handled");
                    run_scoped(&v, &c, &mut st, &hi, &mut out).expect("handled");
                    out
                } else {
                    scoped(&w, &c, &mut st, &keys, &upstream)
                };
                handled += 1;
                let (ei, ef) = (effective(&w, &i), effective(&w, &f));
                assert_eq!(ei, ef, "{msg}: scoped {keys:?} vs full");
                assert_eq!(
                    (st.hint, st.last),
                    (st_full.hint, st_full.last),
                    "{msg}: state"
                );
                w.clear();
                if ef.is_empty() {
                    assert!(i.is_empty(), "{msg}: intents without writes: {i:#?}");
                    assert!(
                        f.is_empty(),
                        "{msg}: full run intents without writes: {f:#?}"
                    );
                    if upstream.is_empty() {
                        break;
                    }
                    // The upstream writes are committed by their own stages; their echo comes
                    // back as changes (e.g. a transit switch image the TS stage created, which
                    // the port stage only sees once committed, as upstream).
                    assert!(round < 5, "{msg}: does not converge");
                    w.commit(&upstream);
                    upstream = Out::default();
                    continue;
                }
                assert!(round < 5, "{msg}: does not converge");
                effective_steps += 1;
                let mut both = upstream.clone();
                both.merge(&i);
                w.commit(&both);
                upstream = Out::default();
            }
        }
    }
    eprintln!("handled {handled} effective {effective_steps} empty {empty_keys}");
    assert!(handled > 1000, "{handled}");
    assert!(
        effective_steps > 100,
        "too few effective changes: {effective_steps}"
    );
    assert!(empty_keys > 20, "{empty_keys}");
}

/// Full runs from scratch; the changes of the last commit stay tracked (the echo).
fn converge_tracked(w: &mut World, c: &Ctx, st: &mut PortBindingState) {
    for _ in 0..8 {
        let out = full(w, c, st, &Out::default());
        if effective(w, &out).is_empty() {
            return;
        }
        w.clear();
        w.commit(&out);
    }
    panic!("full runs do not converge");
}

#[test]
fn echo_of_own_writes_maps_to_keys_that_want_nothing() {
    for leader in [true, false] {
        let c = ctx(leader);
        let mut w = world();
        let mut st = PortBindingState::default();
        converge_tracked(&mut w, &c, &mut st);
        // What came back: our bindings, LSPs/LRPs and their datapaths' port lists.
        assert!(w.icsb.table_changed("Port_Binding"));
        assert!(w.nb.table_changed("Logical_Switch_Port"));
        let keys = table_keys(&w, &c, &Out::default());
        assert!(!keys.is_empty());
        let out = scoped(&w, &c, &mut st, &keys, &Out::default());
        assert!(out.is_empty(), "leader {leader}: {out:#?}");
    }
}

#[test]
fn a_change_maps_to_its_own_datapath_only() {
    let c = ctx(true);
    let mut w = world();
    let mut st = PortBindingState::default();
    converge(&mut w, &c, &mut st);
    let keys_now = |w: &mut World| {
        let k = table_keys(w, &c, &Out::default());
        w.clear();
        k
    };
    let one = |k: &str| -> Keys { [k.to_string()].into_iter().collect() };

    // The gateway port of ts1's legacy router port moves to another chassis.
    let cr = w.find(Target::Sb, "Port_Binding", "logical_port", "cr-lrp1")[0];
    let gw2 = w.find(Target::Sb, "Chassis", "name", "gw2")[0];
    w.set(Target::Sb, "Port_Binding", cr, "chassis", r(gw2));
    assert_eq!(keys_now(&mut w), one("ts:ts1"));
    // Another AZ's binding on ts2 changes its gateway.
    let r2 = w.find(Target::IcSb, "Port_Binding", "logical_port", "r2")[0];
    w.set(Target::IcSb, "Port_Binding", r2, "gateway", json!("gw9"));
    assert_eq!(keys_now(&mut w), one("ts:ts2"));
    // A legacy port of ts1 changes.
    let l2 = w.find(Target::Nb, "Logical_Switch_Port", "name", "l2")[0];
    w.set(
        Target::Nb,
        "Logical_Switch_Port",
        l2,
        "addresses",
        s(&["aa:00:00:00:00:99"]),
    );
    assert_eq!(keys_now(&mut w), one("ts:ts1"));
    if w.has(Target::IcNb, "Transit_Switch_Port") {
        let p3 = w.find(Target::IcNb, "Transit_Switch_Port", "name", "p3")[0];
        w.set(
            Target::IcNb,
            "Transit_Switch_Port",
            p3,
            "addresses",
            s(&["aa:00:00:00:00:98"]),
        );
        assert_eq!(keys_now(&mut w), one("ts:ts2"));
    }
    if w.has(Target::IcNb, "Transit_Router_Port") {
        let t1 = w.find(Target::IcNb, "Transit_Router_Port", "name", "t1")[0];
        w.set(
            Target::IcNb,
            "Transit_Router_Port",
            t1,
            "mac",
            json!("aa:00:00:00:00:97"),
        );
        assert_eq!(keys_now(&mut w), one("tr:tr1"));
    }

    // Columns the stage never reads, and ports of other switches.
    let ls = ls_image(&w, "ts1").expect("image");
    w.set_key(
        Target::Nb,
        "Logical_Switch",
        ls,
        "external_ids",
        "x",
        Some("y"),
    );
    let ch = w.find(Target::Sb, "Chassis", "name", "gw1")[0];
    w.set(Target::Sb, "Chassis", ch, "hostname", json!("moved"));
    w.set(Target::Nb, "Logical_Switch_Port", l2, "up", json!(true));
    let user = w.insert(Target::Nb, "Logical_Switch", json!({"name": "user"}));
    let vm = w.insert(Target::Nb, "Logical_Switch_Port", json!({"name": "vm1"}));
    w.set_uuids(Target::Nb, "Logical_Switch", user, "ports", &[vm]);
    let dp = w.all(Target::Sb, "Datapath_Binding")[0];
    w.insert(
        Target::Sb,
        "Port_Binding",
        json!({"logical_port": "vm1", "datapath": r(dp), "tunnel_key": 30}),
    );
    assert_eq!(keys_now(&mut w), Keys::new());
}

/// A binding a scoped step deletes frees its name for a later step in the same run, as in the
/// full run: a transit router port blocked by a switch port's binding of the same name gets
/// its binding once that switch port goes.
#[test]
fn a_name_freed_by_a_scoped_step_is_used_by_later_steps() {
    let c = ctx(true);
    let mut w = world();
    if !w.has(Target::IcNb, "Transit_Router") {
        return;
    }
    add_tsp(&mut w, "ts1", "x", "gw1", "", "");
    add_trp(&mut w, "tr1", "x", "gw1");
    let mut st = PortBindingState::default();
    converge(&mut w, &c, &mut st);
    let x = w.find(Target::IcSb, "Port_Binding", "logical_port", "x");
    assert_eq!(x.len(), 1);
    let xrow = w.icsb.get("Port_Binding", x[0]).expect("binding");
    assert_eq!(xrow.str("transit_switch"), "ts1");

    let ts1 = ts_uuid(&w, "ts1").expect("ts1");
    let tsp = w
        .uuids(Target::IcNb, "Transit_Switch", ts1, "ports")
        .into_iter()
        .find(|p| {
            w.icnb
                .get("Transit_Switch_Port", *p)
                .is_some_and(|r| r.str("name") == "x")
        })
        .expect("tsp x");
    unlink(
        &mut w,
        Target::IcNb,
        "Transit_Switch",
        ts1,
        "ports",
        "Transit_Switch_Port",
        tsp,
    );
    let keys = table_keys(&w, &c, &Out::default());
    assert_eq!(keys, ["ts:ts1".to_string()].into_iter().collect());
    let mut st_full = st.clone();
    let f = full(&w, &c, &mut st_full, &Out::default());
    let i = scoped(&w, &c, &mut st, &keys, &Out::default());
    assert_eq!(effective(&w, &i), effective(&w, &f));
    assert_eq!(st.hint, st_full.hint);
    let created: Vec<String> = i
        .icsb
        .table("Port_Binding")
        .filter_map(|(_, ri)| match ri {
            RowIntent::Insert(cols) => Some(format!(
                "{} {}",
                cols["transit_switch"].to_json(),
                cols["logical_port"].to_json()
            )),
            _ => None,
        })
        .collect();
    assert_eq!(created, vec!["\"tr1\" \"x\"".to_string()]);
}

#[test]
fn earlier_stage_writes_map_to_keys() {
    let c = ctx(true);
    let mut w = world();
    let mut st = PortBindingState::default();
    converge(&mut w, &c, &mut st);
    let v = w.views();

    // The TS stage creates the NB image of ts3.
    let mut up = Out::default();
    up.nb.insert(
        "Logical_Switch",
        vec![
            ("name", Datum::scalar("ts3")),
            ("other_config", Datum::smap([("interconn-ts", "ts3")])),
        ],
    );
    assert_eq!(
        keys_for_stage(&v.with(&up), &c, &up),
        Ok(["ts:ts3".to_string()].into_iter().collect())
    );

    // The gateway stage adds a remote chassis named like a managed port's chassis.
    let mut up = Out::default();
    up.sb.insert(
        "Chassis",
        vec![
            ("name", Datum::scalar("gw1")),
            ("other_config", Datum::smap([("is-remote", "true")])),
        ],
    );
    up.sb
        .insert("Encap", vec![("ip", Datum::scalar("10.0.0.1"))]);
    up.icsb
        .insert("Gateway", vec![("name", Datum::scalar("gw1"))]);
    let keys = keys_for_stage(&v.with(&up), &c, &up).expect("handled");
    assert!(keys.contains("ts:ts1"), "{keys:?}");

    // Updates that change nothing, and tables the stage never reads.
    let mut up = Out::default();
    let ls = ls_image(&w, "ts1").expect("image");
    let oc =
        w.nb.get("Logical_Switch", ls)
            .expect("ls")
            .get("other_config")
            .clone();
    up.nb
        .update("Logical_Switch", ls, vec![("other_config", oc)]);
    up.icsb_locked.insert(
        "Datapath_Binding",
        vec![("transit_switch", Datum::scalar("ts9"))],
    );
    assert_eq!(keys_for_stage(&v.with(&up), &c, &up), Ok(Keys::new()));

    // The local AZ row written, or a table nobody expects: recompute.
    let mut up = Out::default();
    up.icsb
        .insert("Availability_Zone", vec![("name", Datum::scalar("az1"))]);
    assert!(keys_for_stage(&v.with(&up), &c, &up).is_err());
    let mut up = Out::default();
    up.nb
        .insert("Address_Set", vec![("name", Datum::scalar("as"))]);
    assert!(keys_for_stage(&v.with(&up), &c, &up).is_err());
    assert!(keys_for_table(&v, &c, Target::Nb, "Address_Set", &[]).is_err());
}

#[test]
fn scoped_runs_need_a_full_run_under_the_same_az_and_leadership() {
    let c = ctx(true);
    let mut w = world();
    let keys: Keys = ["ts:ts1".to_string()].into_iter().collect();
    let mut st = PortBindingState::default();
    let v = w.views();
    assert!(run_scoped(&v, &c, &mut st, &keys, &mut Out::default()).is_err());
    drop(v);
    converge(&mut w, &c, &mut st);
    let v = w.views();
    assert_eq!(
        run_scoped(&v, &c, &mut st, &keys, &mut Out::default()),
        Ok(())
    );
    assert!(run_scoped(&v, &ctx(false), &mut st, &keys, &mut Out::default()).is_err());
    let mut other = c.clone();
    other.az = uu(AZ2);
    assert!(run_scoped(&v, &other, &mut st, &keys, &mut Out::default()).is_err());
    let bad: Keys = ["ls:ts1".to_string()].into_iter().collect();
    assert!(run_scoped(&v, &c, &mut st, &bad, &mut Out::default()).is_err());
}

/// Two handlers of one engine run, the first with a later datapath: the second redoes the
/// union, so the earlier datapath still wins a contested name as in the full run.
#[test]
fn several_scoped_runs_in_one_engine_run_act_as_one() {
    let c = ctx(true);
    let mut w = world();
    if !w.has(Target::IcNb, "Transit_Router") {
        return;
    }
    add_tsp(&mut w, "ts1", "y", "gw1", "", "");
    add_trp(&mut w, "tr1", "y", "gw1");
    add_remote_pb(&mut w, "ts2", "y", 6, "rgw", false);
    let mut st = PortBindingState::default();
    converge(&mut w, &c, &mut st);
    let y = w.find(Target::IcSb, "Port_Binding", "logical_port", "y");
    assert_eq!(y.len(), 1, "only the other AZ's binding");
    // The other AZ's binding goes: both ports may now take the name.
    w.delete(Target::IcSb, "Port_Binding", y[0]);
    let keys = table_keys(&w, &c, &Out::default());
    assert!(
        keys.contains("ts:ts1") && keys.contains("tr:tr1"),
        "{keys:?}"
    );
    let mut st_full = st.clone();
    let f = full(&w, &c, &mut st_full, &Out::default());
    let v = w.views();
    let mut out = Out::default();
    let first: Keys = ["tr:tr1".to_string()].into_iter().collect();
    run_scoped(&v, &c, &mut st, &first, &mut out).expect("handled");
    assert!(!out.is_empty(), "the router port took the name alone");
    let rest: Keys = keys.difference(&first).cloned().collect();
    run_scoped(&v, &c, &mut st, &rest, &mut out).expect("handled");
    assert_eq!(effective(&w, &out), effective(&w, &f));
    assert_eq!(st.hint, st_full.hint);
    let created: Vec<String> = out
        .icsb
        .table("Port_Binding")
        .chain(out.icsb_locked.table("Port_Binding"))
        .filter_map(|(_, ri)| match ri {
            RowIntent::Insert(cols) => Some(cols["transit_switch"].to_json().to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(created, vec!["\"ts1\"".to_string()]);
}

/// Cost of one port change on a larger interconnection, scoped vs full (prints; run with
/// `--ignored --nocapture`).
#[test]
#[ignore]
fn measure_one_port_change() {
    let c = ctx(true);
    let mut w = world();
    if !w.has(Target::IcNb, "Transit_Switch_Port") {
        return;
    }
    for t in 0..200 {
        let ts = format!("big{t:03}");
        add_ts(&mut w, &ts, true);
        for p in 0..5 {
            add_tsp(&mut w, &ts, &format!("{ts}-p{p}"), "gw1", "", "");
            add_remote_pb(&mut w, &ts, &format!("{ts}-r{p}"), 100 + p, "rgw", false);
        }
    }
    let mut st = PortBindingState::default();
    converge(&mut w, &c, &mut st);
    let x = w.find(Target::IcNb, "Transit_Switch_Port", "name", "big100-p3")[0];
    w.set(
        Target::IcNb,
        "Transit_Switch_Port",
        x,
        "addresses",
        s(&["aa:00:00:00:0c:0c"]),
    );
    let t0 = std::time::Instant::now();
    let keys = table_keys(&w, &c, &Out::default());
    let keys_t = t0.elapsed();
    let i = scoped(&w, &c, &mut st.clone(), &keys, &Out::default());
    let scoped_t = t0.elapsed() - keys_t;
    let t0 = std::time::Instant::now();
    let f = full(&w, &c, &mut st.clone(), &Out::default());
    let full_t = t0.elapsed();
    assert_eq!(effective(&w, &i), effective(&w, &f));
    eprintln!(
        "1000 local + 1000 remote ports on 200 switches: keys {keys:?} in {keys_t:?}; scoped run {scoped_t:?}; full run {full_t:?}"
    );
    // A VM port created elsewhere, and a SB binding of a legacy port changing.
    w.clear();
    let user = w.insert(Target::Nb, "Logical_Switch", json!({"name": "user"}));
    let vm = w.insert(Target::Nb, "Logical_Switch_Port", json!({"name": "vm1"}));
    w.set_uuids(Target::Nb, "Logical_Switch", user, "ports", &[vm]);
    let t0 = std::time::Instant::now();
    let keys = table_keys(&w, &c, &Out::default());
    eprintln!("VM port created: keys {keys:?} in {:?}", t0.elapsed());
    w.clear();
    let cr = w.find(Target::Sb, "Port_Binding", "logical_port", "cr-lrp1")[0];
    w.set(Target::Sb, "Port_Binding", cr, "chassis", s(&[]));
    let t0 = std::time::Instant::now();
    let keys = table_keys(&w, &c, &Out::default());
    eprintln!("gateway port unbound: keys {keys:?} in {:?}", t0.elapsed());
}

/// A port blocked by a name taken elsewhere is created once that name is freed by a change
/// on another datapath or outside the interconnection.
#[test]
fn names_freed_elsewhere_unblock_ports() {
    let c = ctx(true);
    let mut w = world();
    // Another AZ's binding "zz" on ts1 whose remote LSP is blocked by a user port "zz".
    add_remote_pb(&mut w, "ts1", "zz", 6, "rgw", false);
    let user = w.insert(Target::Nb, "Logical_Switch", json!({"name": "user"}));
    let zz = w.insert(Target::Nb, "Logical_Switch_Port", json!({"name": "zz"}));
    w.set_uuids(Target::Nb, "Logical_Switch", user, "ports", &[zz]);
    // A legacy router port "q" on ts1 whose binding is blocked by another AZ's "q" on ts2.
    let dp = w.all(Target::Sb, "Datapath_Binding")[0];
    add_legacy(&mut w, "ts1", "q", "router", Some(dp));
    add_remote_pb(&mut w, "ts2", "q", 6, "rgw", false);
    let mut st = PortBindingState::default();
    converge(&mut w, &c, &mut st);
    assert_eq!(
        w.find(Target::Nb, "Logical_Switch_Port", "name", "zz")
            .len(),
        1
    );

    let check = |w: &mut World, st: &mut PortBindingState, what: &str| {
        let keys = table_keys(w, &c, &Out::default());
        assert!(keys.contains("ts:ts1"), "{what}: {keys:?}");
        let mut st_full = st.clone();
        let f = full(w, &c, &mut st_full, &Out::default());
        let i = scoped(w, &c, st, &keys, &Out::default());
        let e = effective(w, &i);
        assert!(!e.is_empty(), "{what}");
        assert_eq!(e, effective(w, &f), "{what}");
        w.clear();
        w.commit(&i);
        w.clear();
    };
    unlink(
        &mut w,
        Target::Nb,
        "Logical_Switch",
        user,
        "ports",
        "Logical_Switch_Port",
        zz,
    );
    check(&mut w, &mut st, "user port zz deleted");
    let q = w.find(Target::IcSb, "Port_Binding", "logical_port", "q");
    assert_eq!(q.len(), 1);
    w.delete(Target::IcSb, "Port_Binding", q[0]);
    check(&mut w, &mut st, "other AZ's binding q deleted");
}
