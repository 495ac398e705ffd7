//! Proof that the incremental route path writes what a full recompute writes.
//!
//! A small AZ (three routers on two transit switches, AZ2 routes to learn) is driven through a
//! seeded random sequence of static-route and ISB-route adds/removes. After each change the
//! handlers run on the tracked changes, a full recompute runs on the same state, and the real
//! writes of both (inserted rows compared by content) must be equal; the handlers must not ask
//! for a recompute. The writes are then committed and come back as changes: the handlers must
//! want nothing, and the kept per-router results must equal a fresh recompute's.

use std::collections::{BTreeMap, BTreeSet};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use super::*;
use crate::ic::testutil::{replica, u};
use crate::ic::{Dbs, Out, Views};
use crate::ovsdb::overlay::{Intents, RowIntent, View};
use crate::ovsdb::replica::Replica;
use crate::ovsdb::{Datum, Uuid};

const AZ1: u32 = 0xa1;
const AZ2: u32 = 0xa2;
/// Routers: (number, TS ports as (ts index, host octet)).
const ROUTERS: &[(u32, &[(u32, u32)])] = &[(1, &[(1, 1)]), (2, &[(1, 2), (2, 2)]), (3, &[(2, 3)])];

fn uu(n: u32) -> Uuid {
    u(n).parse().expect("fixture uuid")
}

fn m(pairs: &[(&str, &str)]) -> Value {
    json!([
        "map",
        pairs.iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>()
    ])
}

fn uuids(ns: &[u32]) -> Value {
    json!([
        "set",
        ns.iter()
            .map(|n| json!(["uuid", u(*n)]))
            .collect::<Vec<_>>()
    ])
}

fn lr_uuid(r: u32) -> u32 {
    0x100 + r
}
fn lrp_int(r: u32) -> u32 {
    0x200 + r
}
fn lrp_ts(r: u32, t: u32) -> u32 {
    0x300 + r * 16 + t
}
fn lsp_ts(r: u32, t: u32) -> u32 {
    0x400 + r * 16 + t
}
fn pb(r: u32, t: u32) -> u32 {
    0x500 + r * 16 + t
}
fn mac(r: u32, t: u32) -> String {
    format!("aa:00:00:00:{r:02x}:{t:02x}")
}

struct World {
    nb: Replica,
    sb: Replica,
    icnb: Replica,
    icsb: Replica,
}

fn world() -> World {
    let mut lrs = serde_json::Map::new();
    let mut lrps = serde_json::Map::new();
    let mut lsps = serde_json::Map::new();
    let mut pbs = serde_json::Map::new();
    let mut ls_ports: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    for (r, ports) in ROUTERS {
        let mut lr_ports = vec![lrp_int(*r)];
        lrps.insert(
            u(lrp_int(*r)),
            json!({"name": format!("lrp-{r}-int"), "mac": mac(*r, 0),
                   "networks": ["set", [format!("10.{r}.0.1/24")]]}),
        );
        for (t, host) in *ports {
            lr_ports.push(lrp_ts(*r, *t));
            let lrp_name = format!("lrp-{r}-ts{t}");
            let lsp_name = format!("lsp-ts{t}-{r}");
            let ip = format!("169.254.{t}.{host}/24");
            lrps.insert(
                u(lrp_ts(*r, *t)),
                json!({"name": lrp_name, "mac": mac(*r, *t), "networks": ["set", [ip]]}),
            );
            lsps.insert(
                u(lsp_ts(*r, *t)),
                json!({"name": lsp_name, "type": "router",
                       "options": m(&[("router-port", &lrp_name)])}),
            );
            ls_ports.entry(*t).or_default().push(lsp_ts(*r, *t));
            pbs.insert(
                u(pb(*r, *t)),
                json!({"availability_zone": ["uuid", u(AZ1)], "transit_switch": format!("ts{t}"),
                       "logical_port": lsp_name, "tunnel_key": (r * 16 + t) as i64,
                       "address": format!("{} {}", mac(*r, *t), ip),
                       "external_ids": m(&[("router-id", &u(lr_uuid(*r)))])}),
            );
        }
        lrs.insert(
            u(lr_uuid(*r)),
            json!({"name": format!("lr{r}"), "ports": uuids(&lr_ports)}),
        );
    }
    let mut lss = serde_json::Map::new();
    for (t, ports) in &ls_ports {
        lss.insert(
            u(0x600 + t),
            json!({"name": format!("ts{t}"), "ports": uuids(ports),
                   "other_config": m(&[("interconn-ts", &format!("ts{t}"))])}),
        );
    }
    World {
        nb: replica(
            "ovn-nb",
            json!({
                "NB_Global": {u(1): {"options": m(&[("ic-route-adv", "true"), ("ic-route-learn", "true")])}},
                "Logical_Router": lrs,
                "Logical_Router_Port": lrps,
                "Logical_Switch": lss,
                "Logical_Switch_Port": lsps,
            }),
        ),
        sb: replica("ovn-sb", json!({})),
        icnb: replica(
            "ovn-ic-nb",
            json!({"Transit_Switch": {u(0x700): {"name": "ts1"}, u(0x701): {"name": "ts2"}}}),
        ),
        icsb: replica(
            "ovn-ic-sb",
            json!({
                "Availability_Zone": {u(AZ1): {"name": "az1"}, u(AZ2): {"name": "az2"}},
                "Port_Binding": pbs,
            }),
        ),
    }
}

fn ctx() -> Ctx {
    Ctx {
        az: uu(AZ1),
        az_name: "az1".into(),
        isb_leader: true,
    }
}

/// Apply intents to a replica as committed; the changes stay tracked.
fn commit(rp: &mut Replica, i: &Intents) {
    let names: Vec<String> = rp.table_names().map(str::to_string).collect();
    let mut upd = serde_json::Map::new();
    {
        let view = View::new(rp).with(i);
        for t in &names {
            let mut rows = serde_json::Map::new();
            let touched: BTreeSet<Uuid> = i
                .table(t)
                .map(|(u, _)| *u)
                .chain(i.edited(t).map(|(u, _)| *u))
                .collect();
            for uid in &touched {
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

impl World {
    fn views(&self) -> Views<'_> {
        Views::new(Dbs {
            nb: &self.nb,
            sb: &self.sb,
            icnb: &self.icnb,
            icsb: &self.icsb,
            icsb_locked: &self.icsb,
        })
    }
    fn full(&self) -> (Out, Cache) {
        let mut out = Out::default();
        let cache = recompute(&self.views(), &ctx(), &mut RouteState::default(), &mut out);
        (out, cache)
    }
    fn commit(&mut self, out: &Out) {
        commit(&mut self.nb, &out.nb);
        commit(&mut self.icsb, &out.icsb);
        commit(&mut self.icsb, &out.icsb_locked);
    }
    fn clear(&mut self) {
        self.nb.clear_changes();
        self.sb.clear_changes();
        self.icnb.clear_changes();
        self.icsb.clear_changes();
    }
    fn changed(&self, rp: &Replica, table: &str) -> BTreeSet<Uuid> {
        rp.changes(table).iter().map(|c| c.uuid).collect()
    }
    /// The handlers the graph runs for the tracked changes, in the graph's input order.
    fn incremental(&self, st: &mut RouteState, cache: &mut Cache) -> Result<Out, Unhandled> {
        let v = self.views();
        let c = ctx();
        let mut out = Out::default();
        for t in self.nb.changed_tables() {
            assert!(
                matches!(t, "Logical_Router" | "Logical_Router_Static_Route"),
                "unexpected NB change in {t}"
            );
        }
        let lr = self.changed(&self.nb, "Logical_Router");
        if !lr.is_empty() {
            on_routers(&v, &c, st, cache, &lr, &mut out)?;
        }
        let sr = self.changed(&self.nb, "Logical_Router_Static_Route");
        if !sr.is_empty() {
            on_static_routes(&v, &c, st, cache, &sr, &mut out)?;
        }
        let isb = self.changed(&self.icsb, "Route");
        if !isb.is_empty() {
            on_isb_routes(&v, &c, st, cache, &isb, &mut out)?;
        }
        Ok(out)
    }
}

/// The real writes of `out` on top of `v`, inserted rows named by their content.
fn effective(v: &Views, out: &Out) -> Vec<String> {
    // ISB rows inserted by this output, named by content: learned NB routes refer to them.
    let mut new_isb: BTreeMap<String, String> = BTreeMap::new();
    for (uid, x) in out
        .icsb
        .table("Route")
        .chain(out.icsb_locked.table("Route"))
    {
        if let RowIntent::Insert(cols) = x {
            let c: Vec<String> = ["transit_switch", "ip_prefix", "nexthop", "route_table"]
                .iter()
                .map(|k| {
                    cols.get(*k)
                        .map(|d| d.to_json().to_string())
                        .unwrap_or_default()
                })
                .collect();
            new_isb.insert(uid.to_string(), format!("new-isb-route{c:?}"));
        }
    }
    let name_refs = |mut s: String| {
        for (u, n) in &new_isb {
            s = s.replace(u.as_str(), n);
        }
        s
    };
    let mut res = vec![];
    for (name, view, i) in [
        ("nb", &v.nb, &out.nb),
        ("sb", &v.sb, &out.sb),
        ("icnb", &v.icnb, &out.icnb),
        ("icsb", &v.icsb, &out.icsb),
        ("icsb-locked", &v.icsb, &out.icsb_locked),
    ] {
        let mut ins: BTreeMap<Uuid, String> = BTreeMap::new();
        for t in ["Logical_Router_Static_Route", "Route"] {
            for (uid, x) in i.table(t) {
                if let RowIntent::Insert(cols) = x {
                    let c: BTreeMap<&String, String> = cols
                        .iter()
                        .map(|(k, d)| (k, d.to_json().to_string()))
                        .collect();
                    ins.insert(*uid, name_refs(format!("{t}{c:?}")));
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
        for t in [
            "Logical_Router",
            "Logical_Router_Static_Route",
            "Route",
            "Port_Binding",
        ] {
            for (uid, x) in i.table(t) {
                match x {
                    RowIntent::Insert(_) => res.push(format!("{name} insert {}", ins[uid])),
                    RowIntent::Delete => {
                        if view.get(t, *uid).is_some() {
                            res.push(format!("{name} delete {t} {uid}"));
                        }
                    }
                    RowIntent::Update(cols) => {
                        let Some(row) = view.get(t, *uid) else {
                            continue;
                        };
                        for (col, d) in cols {
                            if row.get(col) != d {
                                res.push(format!("{name} update {t} {uid} {col}={}", render(d)));
                            }
                        }
                    }
                }
            }
            // Set-column edits, rendered as the whole value they leave.
            let after = view.with(i);
            for (uid, cols) in i.edited(t) {
                let (Some(row), Some(new)) = (view.get(t, *uid), after.get(t, *uid)) else {
                    continue;
                };
                for col in cols.keys() {
                    if row.get(col) != new.get(col) {
                        res.push(format!(
                            "{name} update {t} {uid} {col}={}",
                            render(new.get(col))
                        ));
                    }
                }
            }
        }
        assert!(
            i.table("Logical_Switch").next().is_none(),
            "route stage wrote elsewhere"
        );
    }
    res.sort();
    res
}

/// Whether `out` has any intent at all.
fn no_intents(out: &Out) -> bool {
    out.is_empty()
}

/// One random edit between runs: a static route or an AZ2 ISB route added or removed.
fn random_edit(w: &mut World, rng: &mut StdRng, next: &mut u32) -> String {
    let prefix = |rng: &mut StdRng| format!("10.100.{}.0/24", rng.gen_range(0..6));
    match rng.gen_range(0..5) {
        0 => {
            // Add a static route to a random router.
            let (r, _) = ROUTERS[rng.gen_range(0..ROUTERS.len())];
            let p = prefix(rng);
            add_local_route(w, r, &p);
            format!("add static {p} to lr{r}")
        }
        1 => {
            // Remove a random local (not learned) static route.
            let mut cands = vec![];
            for (r, _) in ROUTERS {
                let lr = w.nb.get("Logical_Router", uu(lr_uuid(*r))).expect("router");
                for s in lr.get("static_routes").uuids() {
                    let row = w.nb.get("Logical_Router_Static_Route", s).expect("route");
                    if row.smap_get("external_ids", "ic-learned-route").is_none() {
                        cands.push((*r, s));
                    }
                }
            }
            if cands.is_empty() {
                return "nothing to remove".into();
            }
            let (r, s) = cands[rng.gen_range(0..cands.len())];
            remove_local_route(w, r, s);
            format!("remove static {s} from lr{r}")
        }
        2 => {
            // AZ2 advertises a route on a random TS.
            let t = rng.gen_range(1..=2);
            let p = prefix(rng);
            *next += 1;
            let mut isb = Intents::new();
            isb.insert(
                "Route",
                vec![
                    ("availability_zone", Datum::scalar(uu(AZ2))),
                    ("transit_switch", Datum::scalar(format!("ts{t}").as_str())),
                    ("ip_prefix", Datum::scalar(p.as_str())),
                    (
                        "nexthop",
                        Datum::scalar(format!("169.254.{t}.100").as_str()),
                    ),
                    ("origin", Datum::scalar("static")),
                    ("route_table", Datum::scalar("")),
                    (
                        "external_ids",
                        Datum::smap([("lr-id", u(0x900 + *next)), ("nb-id", u(0xa00 + *next))]),
                    ),
                ],
            );
            commit(&mut w.icsb, &isb);
            format!("az2 adds {p} on ts{t}")
        }
        3 => {
            // AZ2 moves one of its routes to another prefix (an update in place).
            let az2: Vec<Uuid> = w
                .icsb
                .rows("Route")
                .iter()
                .filter(|r| r.uuid_of("availability_zone") == Some(uu(AZ2)))
                .map(|r| r.uuid())
                .collect();
            if az2.is_empty() {
                return "no az2 route".into();
            }
            let x = az2[rng.gen_range(0..az2.len())];
            let p = prefix(rng);
            let mut isb = Intents::new();
            isb.update("Route", x, vec![("ip_prefix", Datum::scalar(p.as_str()))]);
            commit(&mut w.icsb, &isb);
            format!("az2 moves {x} to {p}")
        }
        _ => {
            let az2: Vec<Uuid> = w
                .icsb
                .rows("Route")
                .iter()
                .filter(|r| r.uuid_of("availability_zone") == Some(uu(AZ2)))
                .map(|r| r.uuid())
                .collect();
            if az2.is_empty() {
                return "no az2 route".into();
            }
            let x = az2[rng.gen_range(0..az2.len())];
            let mut isb = Intents::new();
            isb.delete("Route", x);
            commit(&mut w.icsb, &isb);
            format!("az2 removes {x}")
        }
    }
}

/// Converge the world with full recomputes; returns the kept results of the last one.
fn converge(w: &mut World) -> Cache {
    for _ in 0..4 {
        let (out, cache) = w.full();
        let writes = effective(&w.views(), &out);
        if writes.is_empty() {
            w.clear();
            return cache;
        }
        w.commit(&out);
        w.clear();
    }
    panic!("full recompute does not converge");
}

#[test]
fn incremental_equals_full_recompute_on_random_route_changes() {
    for seed in 0..12u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut w = world();
        let mut cache = converge(&mut w);
        let mut st = RouteState::default();
        let mut next = 0;
        let (mut handled, mut non_empty) = (0, 0);
        for step in 0..25 {
            let what = random_edit(&mut w, &mut rng, &mut next);
            let ctx_msg = format!("seed {seed} step {step}: {what}");

            // The change: handled, and the same real writes as a full recompute.
            let inc = w
                .incremental(&mut st, &mut cache)
                .unwrap_or_else(|e| panic!("{ctx_msg}: recompute needed ({})", e.0));
            handled += 1;
            let (full, _) = w.full();
            let (ei, ef) = (effective(&w.views(), &inc), effective(&w.views(), &full));
            assert_eq!(ei, ef, "{ctx_msg}: incremental vs full");
            if !ei.is_empty() {
                non_empty += 1;
            }
            w.clear();
            w.commit(&inc);

            // Our writes come back: handled, nothing more to do.
            let back = w
                .incremental(&mut st, &mut cache)
                .unwrap_or_else(|e| panic!("{ctx_msg}: own writes need recompute ({})", e.0));
            handled += 1;
            let (full, fresh) = w.full();
            let ef = effective(&w.views(), &full);
            let eb = effective(&w.views(), &back);
            assert_eq!(eb, ef, "{ctx_msg}: own writes back, incremental vs full");
            if ef.is_empty() {
                assert!(no_intents(&back), "{ctx_msg}: own writes back: {back:#?}");
                assert_eq!(
                    cache, fresh,
                    "{ctx_msg}: kept results differ from a recompute"
                );
            } else {
                // Routers on one TS learn each other's rows: one more round.
                w.clear();
                w.commit(&back);
                let again = w.incremental(&mut st, &mut cache).expect("handled");
                assert!(effective(&w.views(), &again).is_empty(), "{ctx_msg}");
                let (_, fresh) = w.full();
                assert_eq!(
                    cache, fresh,
                    "{ctx_msg}: kept results differ from a recompute"
                );
            }
            w.clear();
        }
        assert!(st.stats.per_route > 0, "seed {seed}: {:?}", st.stats);
        assert!(st.stats.per_row > 0, "seed {seed}: {:?}", st.stats);
        assert!(handled >= 50);
        assert!(non_empty > 5, "seed {seed}: too few effective changes");
    }
}

#[test]
fn own_rows_coming_back_produce_no_intents() {
    let mut w = world();
    let mut cache = converge(&mut w);
    let mut st = RouteState::default();
    // Re-announce every own ISB route and learned NB route as changed.
    let own: Vec<Uuid> = w.icsb.rows("Route").iter().map(|r| r.uuid()).collect();
    assert!(!own.is_empty());
    let mut out = Out::default();
    on_isb_routes(
        &w.views(),
        &ctx(),
        &mut st,
        &mut cache,
        &own.into_iter().collect(),
        &mut out,
    )
    .expect("handled");
    assert!(out.is_empty(), "{out:#?}");
}

#[test]
fn changes_the_cache_cannot_map_ask_for_recompute() {
    let mut w = world();
    let mut cache = converge(&mut w);
    let mut st = RouteState::default();
    // Another AZ as local AZ.
    let mut other = ctx();
    other.az = uu(AZ2);
    let e = refresh(
        &w.views(),
        &other,
        &mut st,
        &mut cache,
        &[uu(lr_uuid(1))].into_iter().collect(),
        &BTreeSet::new(),
        &mut Out::default(),
    );
    assert_eq!(e, Err(Unhandled("availability zone changed")));
    // Route options changed.
    let mut nb = Intents::new();
    nb.update(
        "NB_Global",
        uu(1),
        vec![("options", Datum::smap([("ic-route-adv", "true")]))],
    );
    commit(&mut w.nb, &nb);
    assert!(on_nb_global(&w.views(), &cache).is_err());
    assert!(on_static_routes(
        &w.views(),
        &ctx(),
        &mut st,
        &mut cache,
        &BTreeSet::new(),
        &mut Out::default()
    )
    .is_ok());
    let e = refresh(
        &w.views(),
        &ctx(),
        &mut st,
        &mut cache,
        &[uu(lr_uuid(1))].into_iter().collect(),
        &BTreeSet::new(),
        &mut Out::default(),
    );
    assert_eq!(e, Err(Unhandled("route options changed")));
    // A deleted interconnected router.
    w.clear();
    let mut cache = converge(&mut world());
    let mut w = world();
    let mut nb = Intents::new();
    nb.delete("Logical_Router", uu(lr_uuid(3)));
    commit(&mut w.nb, &nb);
    let e = on_routers(
        &w.views(),
        &ctx(),
        &mut st,
        &mut cache,
        &[uu(lr_uuid(3))].into_iter().collect(),
        &mut Out::default(),
    );
    assert_eq!(e, Err(Unhandled("interconnected router deleted")));
    // A new router.
    let mut nb = Intents::new();
    let n = nb.insert("Logical_Router", vec![("name", Datum::scalar("lr9"))]);
    commit(&mut w.nb, &nb);
    let e = on_routers(
        &w.views(),
        &ctx(),
        &mut st,
        &mut cache,
        &[n].into_iter().collect(),
        &mut Out::default(),
    );
    assert_eq!(e, Err(Unhandled("router created")));
}

/// AZ2 advertises `n` routes on ts1 (one ISB insert each), as committed changes.
fn az2_routes(w: &mut World, first: u32, n: u32) -> Vec<Uuid> {
    let mut isb = Intents::new();
    let mut res = vec![];
    for i in first..first + n {
        res.push(isb.insert(
            "Route",
            vec![
                ("availability_zone", Datum::scalar(uu(AZ2))),
                ("transit_switch", Datum::scalar("ts1")),
                (
                    "ip_prefix",
                    Datum::scalar(format!("10.200.{}.0/24", i % 250).as_str()),
                ),
                ("nexthop", Datum::scalar("169.254.1.100")),
                ("origin", Datum::scalar("static")),
                ("route_table", Datum::scalar("")),
                (
                    "external_ids",
                    Datum::smap([("lr-id", u(0x9000 + i)), ("nb-id", u(0xa000 + i))]),
                ),
            ],
        ));
    }
    commit(&mut w.icsb, &isb);
    res
}

#[test]
fn one_foreign_route_is_relearned_alone() {
    let mut w = world();
    az2_routes(&mut w, 0, 200);
    w.clear();
    let mut cache = converge(&mut w);
    let learners: Vec<Uuid> = cache.routers_on("ts1").collect();
    assert!(!learners.is_empty());
    let before: usize = cache.learn.values().map(|l| l.index.len()).sum();
    assert!(before >= 200, "the 200 rows are learned: {before}");

    // One more row: the per-row path takes it and writes one NB route per learning router.
    let new = az2_routes(&mut w, 200, 1)[0];
    let changed = w.changed(&w.icsb, "Route");
    assert_eq!(changed, BTreeSet::from([new]));
    let mut out = Out::default();
    let took = relearn_rows(&w.views(), &ctx(), &mut cache, &changed, &mut out);
    assert_eq!(took, Ok(true));
    let (full, _) = w.full();
    assert_eq!(effective(&w.views(), &out), effective(&w.views(), &full));
    let inserts = out.nb.table("Logical_Router_Static_Route").count();
    assert_eq!(inserts, learners.len(), "{out:#?}");
    assert!(
        out.icsb.is_empty(),
        "no ISB write for a foreign row: {out:#?}"
    );
    w.clear();
    w.commit(&out);
    let (_, fresh) = w.full();
    assert_eq!(
        cache, fresh,
        "kept results equal a recompute after the commit"
    );

    // A change of one of our own rows is not for the per-row path.
    w.clear();
    let own = w
        .icsb
        .rows("Route")
        .iter()
        .find(|r| r.uuid_of("availability_zone") == Some(uu(AZ1)))
        .map(|r| r.uuid())
        .expect("an own route");
    let mut isb = Intents::new();
    isb.delete("Route", own);
    commit(&mut w.icsb, &isb);
    let mut out = Out::default();
    let changed = w.changed(&w.icsb, "Route");
    assert_eq!(
        relearn_rows(&w.views(), &ctx(), &mut cache, &changed, &mut out),
        Ok(false)
    );
    assert!(out.is_empty());
}

/// Attach a new local static route to router `r` (one NB transaction, as `lr-route-add`).
fn add_local_route(w: &mut World, r: u32, prefix: &str) -> Uuid {
    let mut nb = Intents::new();
    let sr = nb.insert(
        "Logical_Router_Static_Route",
        vec![
            ("ip_prefix", Datum::scalar(prefix)),
            ("nexthop", Datum::scalar(format!("10.{r}.0.254").as_str())),
        ],
    );
    let lr = w.nb.get("Logical_Router", uu(lr_uuid(r))).expect("router");
    let mut set: BTreeSet<Uuid> = lr.get("static_routes").uuids().collect();
    set.insert(sr);
    nb.update(
        "Logical_Router",
        uu(lr_uuid(r)),
        vec![("static_routes", Datum::set(set.into_iter().map(Into::into)))],
    );
    commit(&mut w.nb, &nb);
    sr
}

/// Detach static route `sr` from router `r` and delete it (one NB transaction, as
/// `lr-route-del`).
fn remove_local_route(w: &mut World, r: u32, sr: Uuid) {
    let lr = w.nb.get("Logical_Router", uu(lr_uuid(r))).expect("router");
    let set: BTreeSet<Uuid> = lr
        .get("static_routes")
        .uuids()
        .filter(|x| *x != sr)
        .collect();
    let mut nb = Intents::new();
    nb.update(
        "Logical_Router",
        uu(lr_uuid(r)),
        vec![("static_routes", Datum::set(set.into_iter().map(Into::into)))],
    );
    nb.delete("Logical_Router_Static_Route", sr);
    commit(&mut w.nb, &nb);
}

#[test]
fn one_local_route_is_advertised_and_withdrawn_without_a_router_refresh() {
    let mut w = world();
    az2_routes(&mut w, 0, 200);
    w.clear();
    let mut cache = converge(&mut w);
    let mut st = RouteState::default();
    let r = ROUTERS[0].0;

    // Added: advertised (and, with the same prefix as an AZ2 route, that one unlearned).
    let sr = add_local_route(&mut w, r, "10.200.7.0/24");
    let out = w.incremental(&mut st, &mut cache).expect("handled");
    let (full, _) = w.full();
    assert_eq!(effective(&w.views(), &out), effective(&w.views(), &full));
    assert!(out.icsb.table("Route").count() > 0, "advertised: {out:#?}");
    assert_eq!(st.stats.routers_refreshed, 0, "{:?}", st.stats);
    assert_eq!(st.stats.per_route, 1, "{:?}", st.stats);
    w.clear();
    w.commit(&out);
    w.clear();
    let (_, fresh) = w.full();
    assert_eq!(cache, fresh, "kept results equal a recompute");

    // Removed again: withdrawn and the AZ2 route learned back, still no refresh.
    remove_local_route(&mut w, r, sr);
    let out = w.incremental(&mut st, &mut cache).expect("handled");
    let (full, _) = w.full();
    let eff = effective(&w.views(), &out);
    assert_eq!(eff, effective(&w.views(), &full));
    assert!(!eff.is_empty());
    assert_eq!(st.stats.routers_refreshed, 0, "{:?}", st.stats);
    assert_eq!(st.stats.per_route, 2, "{:?}", st.stats);
    w.clear();
    w.commit(&out);
    w.clear();
    let (_, fresh) = w.full();
    assert_eq!(cache, fresh, "kept results equal a recompute");
}
