//! A randomized world for the proofs of the datapath enumeration and the transit stages'
//! change handlers: replicas of the four databases (schemas from `OVN_SCHEMA_DIR` or the
//! default), random valid (and some deliberately "bad") edits applied as committed
//! transactions (so the replicas track them as changes), and the graph's handler sequence for
//! the three nodes beside the full runs on the same state.

use std::collections::BTreeMap;

use rand::rngs::StdRng;
use rand::Rng;
use serde_json::{json, Value};

use super::{enumerate, vxlan_mode, Datapaths, DP_TABLE, DP_TYPE_TR, DP_TYPE_TS};
use crate::ic::incr::{Keys, Unhandled};
use crate::ic::testutil::replica;
use crate::ic::{transit_router, transit_switch, Ctx, Dbs, Out, Target, Views};
use crate::ovsdb::overlay::{Intents, RowIntent, View};
use crate::ovsdb::replica::Replica;
use crate::ovsdb::{Datum, Uuid};

pub const TS_NAMES: &[&str] = &["ts0", "ts1", "ts2", "ts3", "ts4"];
pub const TR_NAMES: &[&str] = &["tr0", "tr1", "tr2", "tr3"];

pub struct World {
    pub nb: Replica,
    pub sb: Replica,
    pub icnb: Replica,
    pub icsb: Replica,
    pub leader: bool,
}

/// Apply intents to a replica as a committed transaction would (tracked as changes).
pub fn commit(rp: &mut Replica, i: &Intents) {
    let names: Vec<String> = rp.table_names().map(str::to_string).collect();
    let mut upd = serde_json::Map::new();
    {
        let view = View::new(rp).with(i);
        for t in &names {
            let mut rows = serde_json::Map::new();
            for (uid, _) in i.table(t) {
                let new = view.get(t, *uid).map(|row| row.to_json());
                if new.is_none() && rp.get(t, *uid).is_none() {
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
}

/// The real writes of `i` on `rp` (what `Intents::to_txn` would send), inserted rows named by
/// their content, sorted.
pub fn effective(rp: &Replica, i: &Intents) -> Vec<String> {
    let mut res = vec![];
    for t in rp.table_names() {
        for (uid, x) in i.table(t) {
            match x {
                RowIntent::Insert(cols) => {
                    let c: BTreeMap<&String, String> = cols
                        .iter()
                        .filter(|(k, _)| rp.has_column(t, k))
                        .map(|(k, d)| (k, d.to_json().to_string()))
                        .collect();
                    res.push(format!("insert {t} {c:?}"));
                }
                RowIntent::Update(cols) => {
                    let Some(row) = rp.get(t, *uid) else { continue };
                    for (col, d) in cols {
                        if rp.has_column(t, col) && row.get(col) != d {
                            res.push(format!("update {t} {uid} {col}={}", d.to_json()));
                        }
                    }
                }
                RowIntent::Delete => {
                    if rp.get(t, *uid).is_some() {
                        res.push(format!("delete {t} {uid}"));
                    }
                }
            }
        }
    }
    res.sort();
    res
}

/// The real writes of a stage output, per database.
pub fn effective_out(w: &World, out: &Out) -> Vec<String> {
    let mut r = vec![];
    for (name, rp, i) in [
        ("nb", &w.nb, &out.nb),
        ("sb", &w.sb, &out.sb),
        ("icnb", &w.icnb, &out.icnb),
        ("icsb", &w.icsb, &out.icsb),
        ("icsb-locked", &w.icsb, &out.icsb_locked),
    ] {
        r.extend(effective(rp, i).into_iter().map(|s| format!("{name}: {s}")));
    }
    r
}

/// One run of the three nodes.
#[derive(Debug, Default)]
pub struct Run {
    pub ts: Out,
    pub tr: Out,
    /// Why a node had to recompute, if one did.
    pub recomputed: Vec<&'static str>,
}

impl World {
    pub fn new(leader: bool) -> World {
        let icnb = replica(
            "ovn-ic-nb",
            json!({"IC_NB_Global": {crate::ic::testutil::u(0x77): {}}}),
        );
        World {
            nb: replica("ovn-nb", json!({})),
            sb: replica("ovn-sb", json!({})),
            icnb,
            icsb: replica("ovn-ic-sb", json!({})),
            leader,
        }
    }

    pub fn views(&self) -> Views<'_> {
        Views::new(Dbs {
            nb: &self.nb,
            sb: &self.sb,
            icnb: &self.icnb,
            icsb: &self.icsb,
            icsb_locked: &self.icsb,
        })
    }

    pub fn ctx(&self) -> Ctx {
        Ctx {
            az: Uuid(0xa2),
            az_name: "az1".to_string(),
            isb_leader: self.leader,
        }
    }

    pub fn tr_supported(&self) -> bool {
        transit_router::supported(&self.views())
    }

    pub fn typed(&self) -> bool {
        self.icsb.has_column(DP_TABLE, "type")
    }

    /// The full runs on the current state: enumeration, switches, routers (reading through
    /// the switches' writes).
    pub fn full(&self) -> (Datapaths, Run) {
        let v = self.views();
        let c = self.ctx();
        let dps = enumerate(&v);
        let mut run = Run::default();
        transit_switch::run(&v, &c, &dps, &mut run.ts);
        let v2 = v.with(&run.ts);
        transit_router::run(&v2, &c, &dps, &mut run.tr);
        (dps, run)
    }

    /// What the graph does with the tracked changes: the enumeration applies them (or
    /// re-enumerates), then each stage maps every changed input to keys and runs scoped on
    /// them (or recomputes). Each scoped run is made twice to prove that a unit processed
    /// again in the same run writes nothing twice.
    pub fn incremental(&self, dps: &mut Datapaths) -> Run {
        let v = self.views();
        let c = self.ctx();
        let mut run = Run::default();
        dps.clear_changed();
        for (target, rp, table) in [
            (Target::Nb, &self.nb, "Logical_Switch"),
            (Target::Nb, &self.nb, "Logical_Router"),
            (Target::IcSb, &self.icsb, DP_TABLE),
            (Target::IcSbLocked, &self.icsb, DP_TABLE),
            (Target::IcNb, &self.icnb, "IC_NB_Global"),
            (Target::IcSb, &self.icsb, "Encap"),
        ] {
            let ch = rp.changes(table);
            if ch.is_empty() {
                continue;
            }
            if let Err(Unhandled(why)) = dps.apply(&v, target, table, &ch) {
                run.recomputed.push(why);
                *dps = enumerate(&v);
            }
        }

        // transit_switch: enum_datapaths, ICNB_transit_switch, ICNB_ic_nb_global.
        let mut inputs: Vec<Result<Keys, Unhandled>> =
            vec![transit_switch::keys_for_datapaths(dps)];
        for table in ["Transit_Switch", "IC_NB_Global"] {
            let ch = self.icnb.changes(table);
            if !ch.is_empty() {
                inputs.push(transit_switch::keys_for_table(
                    &v,
                    &c,
                    Target::IcNb,
                    table,
                    &ch,
                ));
            }
        }
        let mut recompute = None;
        for keys in inputs {
            match keys {
                Ok(k) if k.is_empty() => {}
                Ok(k) => {
                    for _ in 0..2 {
                        if let Err(Unhandled(why)) =
                            transit_switch::run_scoped(&v, &c, dps, &k, &mut run.ts)
                        {
                            recompute = Some(why);
                        }
                    }
                }
                Err(Unhandled(why)) => recompute = Some(why),
            }
        }
        if let Some(why) = recompute {
            run.recomputed.push(why);
            run.ts = Out::default();
            transit_switch::run(&v, &c, dps, &mut run.ts);
        }

        // transit_router: enum_datapaths, transit_switch, ICNB_transit_router(_port).
        let v2 = v.with(&run.ts);
        let mut inputs = vec![
            transit_router::keys_for_datapaths(dps),
            transit_router::keys_for_stage(&v2, &c, &run.ts),
        ];
        for table in ["Transit_Router", "Transit_Router_Port"] {
            let ch = self.icnb.changes(table);
            if !ch.is_empty() {
                inputs.push(transit_router::keys_for_table(
                    &v2,
                    &c,
                    Target::IcNb,
                    table,
                    &ch,
                ));
            }
        }
        let mut tr = Out::default();
        let mut recompute = None;
        for keys in inputs {
            match keys {
                Ok(k) if k.is_empty() => {}
                Ok(k) => {
                    for _ in 0..2 {
                        if let Err(Unhandled(why)) =
                            transit_router::run_scoped(&v2, &c, dps, &k, &mut tr)
                        {
                            recompute = Some(why);
                        }
                    }
                }
                Err(Unhandled(why)) => recompute = Some(why),
            }
        }
        if let Some(why) = recompute {
            run.recomputed.push(why);
            tr = Out::default();
            transit_router::run(&v2, &c, dps, &mut tr);
        }
        run.tr = tr;
        run
    }

    pub fn commit(&mut self, run: &Run) {
        for out in [&run.ts, &run.tr] {
            commit(&mut self.nb, &out.nb);
            commit(&mut self.icsb, &out.icsb_locked);
        }
    }

    pub fn clear(&mut self) {
        self.nb.clear_changes();
        self.sb.clear_changes();
        self.icnb.clear_changes();
        self.icsb.clear_changes();
    }

    /// Full runs committed until they want no real write; changes cleared, enumeration
    /// returned.
    pub fn converge(&mut self) -> Datapaths {
        for _ in 0..6 {
            let (_, run) = self.full();
            if effective_out(self, &run.ts).is_empty() && effective_out(self, &run.tr).is_empty() {
                self.clear();
                let mut d = enumerate(&self.views());
                d.clear_changed();
                return d;
            }
            self.commit(&run);
            self.clear();
        }
        panic!("full runs do not converge");
    }

    fn names_in(&self, table: &str) -> Vec<(Uuid, String)> {
        self.icnb
            .rows(table)
            .iter()
            .map(|r| (r.uuid(), r.str("name").to_string()))
            .collect()
    }

    fn pick<T: Clone>(rng: &mut StdRng, v: &[T]) -> Option<T> {
        (!v.is_empty()).then(|| v[rng.gen_range(0..v.len())].clone())
    }

    fn free_key(&self, rng: &mut StdRng) -> i64 {
        let used: Vec<i64> = self
            .icsb
            .rows(DP_TABLE)
            .iter()
            .filter_map(|r| r.int("tunnel_key"))
            .collect();
        loop {
            let k = match rng.gen_range(0..4) {
                0 => rng.gen_range(1024..1100),
                1 => rng.gen_range(5..50),
                _ => rng.gen_range(16_711_682..16_711_700),
            };
            if !used.contains(&k) {
                return k;
            }
        }
    }

    /// One random edit of the databases, committed; returns what it did.
    pub fn random_edit(&mut self, rng: &mut StdRng, routers: bool) -> String {
        let tr_ok = self.tr_supported();
        let typed = self.typed();
        let kind = if routers && tr_ok && rng.gen_bool(0.4) {
            rng.gen_range(100..106)
        } else {
            rng.gen_range(0..14)
        };
        let mut icnb = Intents::new();
        let mut nb = Intents::new();
        let mut icsb = Intents::new();
        let what = match kind {
            0 | 1 => {
                let have = self.names_in("Transit_Switch");
                let free: Vec<&str> = TS_NAMES
                    .iter()
                    .copied()
                    .filter(|n| !have.iter().any(|h| h.1 == *n))
                    .collect();
                let Some(n) = Self::pick(rng, &free) else {
                    return "no free TS name".into();
                };
                icnb.insert("Transit_Switch", vec![("name", Datum::scalar(n))]);
                format!("add TS {n}")
            }
            2 => {
                let Some((u, n)) = Self::pick(rng, &self.names_in("Transit_Switch")) else {
                    return "no TS".into();
                };
                icnb.delete("Transit_Switch", u);
                format!("delete TS {n}")
            }
            3 => {
                let have = self.names_in("Transit_Switch");
                let free: Vec<&str> = TS_NAMES
                    .iter()
                    .copied()
                    .filter(|n| !have.iter().any(|h| h.1 == *n))
                    .collect();
                let (Some((u, n)), Some(to)) = (Self::pick(rng, &have), Self::pick(rng, &free))
                else {
                    return "no TS to rename".into();
                };
                icnb.update("Transit_Switch", u, vec![("name", Datum::scalar(to))]);
                format!("rename TS {n} to {to}")
            }
            4 => {
                let Some((u, n)) = Self::pick(rng, &self.names_in("Transit_Switch")) else {
                    return "no TS".into();
                };
                let x = rng.gen_range(0..100).to_string();
                icnb.update(
                    "Transit_Switch",
                    u,
                    vec![("external_ids", Datum::smap([("x", x.as_str())]))],
                );
                format!("TS {n} external_ids")
            }
            5 | 6 => {
                // NB switch with a marker (the image of some TS, or not named like it).
                let marker = Self::pick(rng, TS_NAMES).expect("names");
                let name = if rng.gen_bool(0.5) { marker } else { "user-sw" };
                let mut oc = vec![("interconn-ts", marker.to_string())];
                match rng.gen_range(0..3) {
                    0 => oc.push(("requested-tnl-key", "junk".to_string())),
                    1 => oc.push(("ic-vxlan_mode", "true".to_string())),
                    _ => {}
                }
                nb.insert(
                    "Logical_Switch",
                    vec![
                        ("name", Datum::scalar(name)),
                        ("other_config", Datum::smap(oc)),
                    ],
                );
                format!("add LS {name} marked {marker}")
            }
            7 => {
                let all: Vec<Uuid> = self
                    .nb
                    .rows("Logical_Switch")
                    .iter()
                    .map(|r| r.uuid())
                    .collect();
                let Some(u) = Self::pick(rng, &all) else {
                    return "no LS".into();
                };
                nb.delete("Logical_Switch", u);
                format!("delete LS {u}")
            }
            8 => {
                let all: Vec<Uuid> = self
                    .nb
                    .rows("Logical_Switch")
                    .iter()
                    .map(|r| r.uuid())
                    .collect();
                let Some(u) = Self::pick(rng, &all) else {
                    return "no LS".into();
                };
                let row = self.nb.get("Logical_Switch", u).expect("row");
                let mut oc: BTreeMap<String, String> = row
                    .get("other_config")
                    .smap_iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect();
                let how = rng.gen_range(0..6);
                match how {
                    0 => {
                        oc.remove("requested-tnl-key");
                    }
                    1 => {
                        oc.insert("requested-tnl-key".into(), "12x".into());
                    }
                    2 => {
                        oc.insert("ic-vxlan_mode".into(), "TRUE".into());
                    }
                    3 => {
                        oc.remove("interconn-ts");
                    }
                    4 => {
                        let m = Self::pick(rng, TS_NAMES).expect("names");
                        oc.insert("interconn-ts".into(), m.into());
                    }
                    _ => {
                        nb.update(
                            "Logical_Switch",
                            u,
                            vec![("external_ids", Datum::smap([("y", "1")]))],
                        );
                        return format!("LS {u} external_ids");
                    }
                }
                nb.update(
                    "Logical_Switch",
                    u,
                    vec![("other_config", Datum::smap(&oc))],
                );
                format!("LS {u} other_config edit {how}")
            }
            9 => {
                let name = Self::pick(rng, TS_NAMES).expect("names");
                nb.insert("Logical_Switch", vec![("name", Datum::scalar(name))]);
                format!("add user LS {name}")
            }
            10 => {
                // An ISB datapath row nobody asked for (duplicate, legacy, out of range).
                let ts = Self::pick(rng, TS_NAMES).expect("names");
                let key = self.free_key(rng);
                let mut cols = vec![
                    ("transit_switch", Datum::scalar(ts)),
                    ("tunnel_key", Datum::scalar(key)),
                ];
                if typed && rng.gen_bool(0.5) {
                    cols.push(("type", Datum::scalar(DP_TYPE_TS)));
                }
                icsb.insert(DP_TABLE, cols);
                format!("add TS datapath {ts} key {key}")
            }
            11 => {
                let all: Vec<Uuid> = self.icsb.rows(DP_TABLE).iter().map(|r| r.uuid()).collect();
                let Some(u) = Self::pick(rng, &all) else {
                    return "no datapath".into();
                };
                icsb.delete(DP_TABLE, u);
                format!("delete datapath {u}")
            }
            12 => {
                let all: Vec<Uuid> = self.icsb.rows(DP_TABLE).iter().map(|r| r.uuid()).collect();
                let Some(u) = Self::pick(rng, &all) else {
                    return "no datapath".into();
                };
                let how = rng.gen_range(0..3);
                match how {
                    0 => {
                        let k = self.free_key(rng);
                        icsb.update(DP_TABLE, u, vec![("tunnel_key", Datum::scalar(k))]);
                    }
                    1 => {
                        let ts = Self::pick(rng, TS_NAMES).expect("names");
                        icsb.update(DP_TABLE, u, vec![("transit_switch", Datum::scalar(ts))]);
                    }
                    _ => {
                        if !typed {
                            return "untyped".into();
                        }
                        let t = if rng.gen_bool(0.5) { DP_TYPE_TR } else { "" };
                        icsb.update(DP_TABLE, u, vec![("type", Datum::scalar(t))]);
                    }
                }
                format!("modify datapath {u} ({how})")
            }
            13 => {
                // VXLAN: the option or a VXLAN encap (the mode may or may not change).
                if rng.gen_bool(0.5) {
                    let g = self.icnb.rows("IC_NB_Global")[0].uuid();
                    let on = if rng.gen_bool(0.5) { "true" } else { "false" };
                    icnb.update(
                        "IC_NB_Global",
                        g,
                        vec![("options", Datum::smap([("vxlan_mode", on)]))],
                    );
                    format!("vxlan_mode option {on}")
                } else {
                    let encaps: Vec<Uuid> =
                        self.icsb.rows("Encap").iter().map(|r| r.uuid()).collect();
                    if let (true, Some(u)) = (rng.gen_bool(0.5), Self::pick(rng, &encaps)) {
                        icsb.delete("Encap", u);
                        format!("delete encap {u}")
                    } else {
                        let t = if rng.gen_bool(0.5) { "vxlan" } else { "geneve" };
                        let ip = format!(
                            "192.168.{}.{}",
                            rng.gen_range(0..255),
                            rng.gen_range(1..255)
                        );
                        icsb.insert(
                            "Encap",
                            vec![
                                ("type", Datum::scalar(t)),
                                ("ip", Datum::scalar(ip.as_str())),
                                ("gateway_name", Datum::scalar("gw9")),
                            ],
                        );
                        format!("add {t} encap")
                    }
                }
            }
            100 | 101 => {
                let have = self.names_in("Transit_Router");
                let free: Vec<&str> = TR_NAMES
                    .iter()
                    .copied()
                    .filter(|n| !have.iter().any(|h| h.1 == *n))
                    .collect();
                let Some(n) = Self::pick(rng, &free) else {
                    return "no free TR name".into();
                };
                icnb.insert("Transit_Router", vec![("name", Datum::scalar(n))]);
                format!("add TR {n}")
            }
            102 => {
                let have = self.names_in("Transit_Router");
                let Some((u, n)) = Self::pick(rng, &have) else {
                    return "no TR".into();
                };
                if rng.gen_bool(0.5) {
                    icnb.delete("Transit_Router", u);
                    format!("delete TR {n}")
                } else {
                    let free: Vec<&str> = TR_NAMES
                        .iter()
                        .copied()
                        .filter(|n| !have.iter().any(|h| h.1 == *n))
                        .collect();
                    let Some(to) = Self::pick(rng, &free) else {
                        return "no free TR name".into();
                    };
                    icnb.update("Transit_Router", u, vec![("name", Datum::scalar(to))]);
                    format!("rename TR {n} to {to}")
                }
            }
            103 => {
                let marker = Self::pick(rng, TR_NAMES).expect("names");
                let name = if rng.gen_bool(0.5) { marker } else { "user-lr" };
                let mut opts = vec![("interconn-tr", marker.to_string())];
                if rng.gen_bool(0.3) {
                    opts.push(("requested-tnl-key", "7".to_string()));
                }
                nb.insert(
                    "Logical_Router",
                    vec![
                        ("name", Datum::scalar(name)),
                        ("options", Datum::smap(opts)),
                    ],
                );
                format!("add LR {name} marked {marker}")
            }
            104 => {
                let all: Vec<Uuid> = self
                    .nb
                    .rows("Logical_Router")
                    .iter()
                    .map(|r| r.uuid())
                    .collect();
                let Some(u) = Self::pick(rng, &all) else {
                    return "no LR".into();
                };
                match rng.gen_range(0..4) {
                    0 => {
                        nb.delete("Logical_Router", u);
                        format!("delete LR {u}")
                    }
                    1 => {
                        nb.update(
                            "Logical_Router",
                            u,
                            vec![("options", Datum::smap([("x", "y")]))],
                        );
                        format!("LR {u} loses its marker")
                    }
                    2 => {
                        let n = Self::pick(rng, TR_NAMES).expect("names");
                        nb.update("Logical_Router", u, vec![("name", Datum::scalar(n))]);
                        format!("rename LR {u} to {n}")
                    }
                    _ => {
                        nb.update(
                            "Logical_Router",
                            u,
                            vec![("external_ids", Datum::smap([("z", "1")]))],
                        );
                        format!("LR {u} external_ids")
                    }
                }
            }
            _ => {
                // A router datapath nobody asked for (duplicate, orphan, without nb_ic_uuid).
                let key = self.free_key(rng);
                let mut cols = vec![
                    ("tunnel_key", Datum::scalar(key)),
                    ("type", Datum::scalar(DP_TYPE_TR)),
                ];
                let trs = self.names_in("Transit_Router");
                let owner = match rng.gen_range(0..3) {
                    0 => Self::pick(rng, &trs).map(|t| t.0),
                    1 => Some(Uuid(0xdead_0000 + rng.gen_range(0..3))),
                    _ => None,
                };
                if let Some(o) = owner {
                    cols.push(("nb_ic_uuid", Datum::scalar(o)));
                }
                icsb.insert(DP_TABLE, cols);
                format!("add TR datapath key {key} owner {owner:?}")
            }
        };
        commit(&mut self.icnb, &icnb);
        commit(&mut self.nb, &nb);
        commit(&mut self.icsb, &icsb);
        what
    }
}

/// Whether an edit changed the VXLAN mode (the one change the handlers may not handle).
pub fn mode_changed(before: bool, w: &World) -> bool {
    vxlan_mode(&w.views()) != before
}

/// The proof loop shared by the stages' tests: for `seeds` seeds, a world converged by full
/// runs, then `steps` random edits; after each one the handlers must handle it (unless the
/// VXLAN mode changed), keep the enumeration equal to a fresh one, and write exactly what the
/// full runs write; the writes are committed and come back as changes until the full runs
/// want nothing, at which point the handlers must want nothing either (not even no-op
/// intents). Returns (handled changes, changes with real writes).
pub fn prove(seeds: std::ops::Range<u64>, steps: usize, routers: bool) -> (usize, usize) {
    use rand::SeedableRng;
    let (mut handled, mut effective_steps) = (0, 0);
    for seed in seeds {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut w = World::new(seed % 3 != 2);
        // A few switches and routers to start with.
        for _ in 0..4 {
            w.random_edit(&mut rng, routers);
        }
        let mut dps = w.converge();
        for step in 0..steps {
            let mode_before = vxlan_mode(&w.views());
            let what = w.random_edit(&mut rng, routers);
            let may_recompute = mode_changed(mode_before, &w);
            let msg = format!("seed {seed} step {step} (leader {}): {what}", w.leader);
            for round in 0..6 {
                let inc = w.incremental(&mut dps);
                let (fresh, full) = w.full();
                if !(may_recompute && round == 0) {
                    assert!(
                        inc.recomputed.is_empty(),
                        "{msg} round {round}: {:?}",
                        inc.recomputed
                    );
                    handled += 1;
                }
                let mut a = dps.clone();
                let mut b = fresh;
                a.clear_changed();
                b.clear_changed();
                assert!(
                    a == b,
                    "{msg} round {round}: enumeration differs\n{a:#?}\n{b:#?}"
                );
                let (ets, etr) = (effective_out(&w, &inc.ts), effective_out(&w, &inc.tr));
                assert_eq!(
                    ets,
                    effective_out(&w, &full.ts),
                    "{msg} round {round}: switches"
                );
                assert_eq!(
                    etr,
                    effective_out(&w, &full.tr),
                    "{msg} round {round}: routers"
                );
                if ets.is_empty() && etr.is_empty() {
                    assert!(
                        inc.ts.is_empty() && inc.tr.is_empty(),
                        "{msg} round {round}: no-op intents {:#?} {:#?}",
                        inc.ts,
                        inc.tr
                    );
                    break;
                }
                if round == 0 {
                    effective_steps += 1;
                }
                assert!(round < 5, "{msg}: no fixpoint");
                w.clear();
                w.commit(&inc);
            }
            w.clear();
        }
    }
    (handled, effective_steps)
}
