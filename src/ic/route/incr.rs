//! Incremental route processing (spec design.md "Incremental processing"; issue "Routes —
//! incremental from the start").
//!
//! The full recompute ([`recompute`]) builds the advertisement candidates per router and per
//! transit switch, merges them per transit switch in router-UUID order and reconciles the own
//! ISB `Route` rows with the merged set; it returns a [`Cache`] of the per-router results.
//!
//! A change handler ([`on_static_routes`], [`on_routers`], [`on_isb_routes`]) maps the changed
//! rows to the affected routers and calls [`refresh`], which redoes the work of the full
//! recompute for those routers only — their candidates, their learned NB routes — and
//! reconciles only the transit switches they (or the changed ISB rows) are on, with the other
//! routers' candidates taken from the cache. Because both paths share every step, a handled
//! change writes exactly what a full recompute on the same state would really write.
//!
//! Neither path emits intents that would write nothing (see [`advertise::reconcile`]), so our
//! own writes coming back through the monitors yield an empty output.
//!
//! Anything a handler cannot map to routers (a router created or deleted, a change of the
//! global options or of the local AZ, no cache yet) is reported as [`Unhandled`] and the engine
//! recomputes.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::advertise::{self, AdSet};
use super::collect::{self, TsPort};
use super::learn::{LearnEnv, LearnFacts, LearnPort, LearnedIndex};
use super::per_route;
use super::{global_opts, learn, GlobalOpts, Inputs, RouteState, StaticRoutesEdit};
use crate::ic::{Ctx, Out, Views};
use crate::ovsdb::replica::{ChangeKind, Row};
use crate::ovsdb::Uuid;
use tracing::debug;

pub use crate::ic::incr::Unhandled;

/// One TS port of an interconnected router, by reference (the rows are re-read per run).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortRef {
    /// The router's own ISB `Port_Binding`.
    pub pb: Uuid,
    pub ts: String,
    /// `options:router-port` of the LSP.
    pub lrp_name: String,
}

/// The per-router results kept between runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cache {
    /// The local AZ the results were computed for.
    pub az: Uuid,
    /// The route options they were computed with.
    pub g: GlobalOpts,
    /// The interconnected routers and their TS ports (A.6).
    pub routers: BTreeMap<Uuid, Vec<PortRef>>,
    /// Advertisement candidates per router, per transit switch (A.7). A transit switch is a key
    /// when the router has a port on it and it exists in the INB.
    pub ads: BTreeMap<Uuid, BTreeMap<String, AdSet>>,
    /// `static_routes` of each interconnected router.
    pub statics: BTreeMap<Uuid, BTreeSet<Uuid>>,
    /// The owner of each static route of an interconnected router.
    pub static_owner: HashMap<Uuid, Uuid>,
    /// What the per-row learn path needs of each interconnected router.
    pub learn: BTreeMap<Uuid, RouterLearn>,
}

/// A router's learn facts and learned NB routes as of the last run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouterLearn {
    pub facts: LearnFacts,
    pub index: LearnedIndex,
}

impl Cache {
    fn new(az: Uuid, g: GlobalOpts) -> Cache {
        Cache {
            az,
            g,
            routers: BTreeMap::new(),
            ads: BTreeMap::new(),
            statics: BTreeMap::new(),
            static_owner: HashMap::new(),
            learn: BTreeMap::new(),
        }
    }

    /// Record the `static_routes` of router `lr` after this run's edit.
    pub(super) fn set_statics(&mut self, lr: Uuid, now: BTreeSet<Uuid>) {
        if let Some(old) = self.statics.get(&lr) {
            for u in old.difference(&now) {
                if self.static_owner.get(u) == Some(&lr) {
                    self.static_owner.remove(u);
                }
            }
        }
        for u in &now {
            self.static_owner.insert(*u, lr);
        }
        self.statics.insert(lr, now);
    }

    /// Record an edit of router `lr`'s `static_routes` by its delta (what [`Cache::set_statics`]
    /// would record for the edited set, without walking the whole set): `remove` first, then
    /// `add`.
    pub(super) fn statics_delta(
        &mut self,
        lr: Uuid,
        remove: impl IntoIterator<Item = Uuid>,
        add: impl IntoIterator<Item = Uuid>,
    ) {
        let set = self.statics.entry(lr).or_default();
        for u in remove {
            if set.remove(&u) && self.static_owner.get(&u) == Some(&lr) {
                self.static_owner.remove(&u);
            }
        }
        for u in add {
            set.insert(u);
            self.static_owner.insert(u, lr);
        }
    }

    /// The interconnected routers with a port on `ts`.
    pub fn routers_on<'s>(&'s self, ts: &'s str) -> impl Iterator<Item = Uuid> + 's {
        self.routers
            .iter()
            .filter(move |(_, ports)| ports.iter().any(|p| p.ts == ts))
            .map(|(u, _)| *u)
    }

    /// The candidates of all routers on `ts`, merged in router-UUID order (None when no router
    /// advertises on it).
    pub fn merged(&self, ts: &str) -> Option<AdSet> {
        let mut sets = self.ads.values().filter_map(|m| m.get(ts));
        let mut merged = sets.next()?.clone();
        for s in sets {
            for c in s.by_key.values() {
                merged.add(c.clone());
            }
        }
        Some(merged)
    }
}

/// The `static_routes` of `lr` once `edit` is applied.
pub(super) fn statics_after(
    lr: &crate::ovsdb::replica::Row,
    edit: &StaticRoutesEdit,
) -> BTreeSet<Uuid> {
    let mut s: BTreeSet<Uuid> = lr.get("static_routes").uuids().collect();
    s.retain(|u| !edit.remove.contains(u));
    s.extend(edit.add.iter().copied());
    s
}

/// Learn for one router (A.7.5/A.8) and write its `static_routes` edit; returns the router's
/// `static_routes` afterwards.
fn learn_one(
    v: &Views,
    ctx: &Ctx,
    inp: &Inputs,
    lr: &crate::ovsdb::replica::Row,
    ports: &[TsPort],
    cache: &mut Cache,
    out: &mut Out,
) {
    let mut edit = StaticRoutesEdit::default();
    let (facts, index) = learn::learn_router(v, ctx, inp, lr, ports, &mut edit, out);
    edit.apply(lr, out);
    cache.set_statics(lr.uuid(), statics_after(lr, &edit));
    cache.learn.insert(lr.uuid(), RouterLearn { facts, index });
}

/// The full recompute of the route stage; returns the per-router results.
pub fn recompute(v: &Views, ctx: &Ctx, st: &mut RouteState, out: &mut Out) -> Cache {
    let mut inp = Inputs::load(v);
    collect::delete_orphans(v, ctx, &mut inp, out);
    let routers = collect::routers(v, ctx, &inp, out);
    let mut cache = Cache::new(ctx.az, inp.g.clone());
    for (lr_uuid, ports) in &routers {
        cache.routers.insert(
            *lr_uuid,
            ports
                .iter()
                .map(|p| PortRef {
                    pb: p.pb.uuid(),
                    ts: p.ts().to_string(),
                    lrp_name: p.lrp_name.clone(),
                })
                .collect(),
        );
        let Some(lr) = v.nb.get("Logical_Router", *lr_uuid) else {
            continue;
        };
        let mut ads = BTreeMap::new();
        advertise::build_router(v, &inp, st, &lr, ports, &mut ads);
        cache.ads.insert(*lr_uuid, ads);
        learn_one(v, ctx, &inp, &lr, ports, &mut cache, out);
    }
    let tses: BTreeSet<String> = cache.ads.values().flat_map(|m| m.keys().cloned()).collect();
    for ts in tses {
        if let Some(set) = cache.merged(&ts) {
            advertise::reconcile(ctx, &inp, &ts, set, out);
        }
    }
    if let Err(e) = learn_own_writes(v, ctx, &mut cache, &Out::default(), out) {
        // Every router was just learned for; nothing here can be missing.
        tracing::warn!(target: "ovn_ic", "route: learning our own new routes: {}", e.0);
    }
    cache
}

/// Redo the route work for the routers `lrs` (those not interconnected are ignored) and
/// reconcile the transit switches they are on plus `extra_ts`. `base` are the views the full
/// recompute would read; `out` holds what this node already wants this run (a refresh reads
/// through it, so refreshing a router twice in one run writes nothing twice).
pub fn refresh(
    base: &Views,
    ctx: &Ctx,
    st: &mut RouteState,
    cache: &mut Cache,
    lrs: &BTreeSet<Uuid>,
    extra_ts: &BTreeSet<String>,
    out: &mut Out,
) -> Result<(), Unhandled> {
    let prev = std::mem::take(out);
    let mut fresh = Out::default();
    let res = {
        let v = base.with(&prev);
        refresh_in(&v, ctx, st, cache, lrs, extra_ts, &mut fresh)
    }
    .and_then(|()| learn_own_writes(base, ctx, cache, &prev, &mut fresh));
    *out = prev;
    out.merge(&fresh);
    res
}

fn refresh_in(
    v: &Views,
    ctx: &Ctx,
    st: &mut RouteState,
    cache: &mut Cache,
    lrs: &BTreeSet<Uuid>,
    extra_ts: &BTreeSet<String>,
    out: &mut Out,
) -> Result<(), Unhandled> {
    if ctx.az != cache.az {
        return Err(Unhandled("availability zone changed"));
    }
    let lrs: BTreeSet<Uuid> = lrs
        .iter()
        .filter(|u| cache.routers.contains_key(u))
        .copied()
        .collect();
    let mut tses = extra_ts.clone();
    let mut lrp_names = BTreeSet::new();
    for p in lrs.iter().flat_map(|u| &cache.routers[u]) {
        tses.insert(p.ts.clone());
        lrp_names.insert(p.lrp_name.clone());
    }
    if tses.is_empty() {
        return Ok(());
    }
    st.stats.routers_refreshed += lrs.len() as u64;
    let mut inp = Inputs::load_for(v, &lrs, &lrp_names, &tses);
    if inp.g != cache.g {
        return Err(Unhandled("route options changed"));
    }
    collect::delete_orphans(v, ctx, &mut inp, out);
    for lr_uuid in &lrs {
        let Some(lr) = v.nb.get("Logical_Router", *lr_uuid) else {
            return Err(Unhandled("interconnected router deleted"));
        };
        let mut ports = vec![];
        for p in &cache.routers[lr_uuid] {
            let Some(pb) = v.icsb.get("Port_Binding", p.pb) else {
                return Err(Unhandled("router port binding gone"));
            };
            ports.push(TsPort {
                pb,
                lrp_name: p.lrp_name.clone(),
            });
        }
        let mut ads = BTreeMap::new();
        advertise::build_router(v, &inp, st, &lr, &ports, &mut ads);
        cache.ads.insert(*lr_uuid, ads);
        learn_one(v, ctx, &inp, &lr, &ports, cache, out);
    }
    for ts in &tses {
        if let Some(set) = cache.merged(ts) {
            advertise::reconcile(ctx, &inp, ts, set, out);
        }
    }
    Ok(())
}

/// The TS ports of this AZ's interconnected routers as [`collect::routers`] derives them (own
/// ISB `Port_Binding` rows naming a router), without its side effects; `None` when a binding
/// would be deleted there (the recompute does that).
fn router_ports(v: &Views, ctx: &Ctx) -> Option<BTreeMap<Uuid, Vec<PortRef>>> {
    let mut res: BTreeMap<Uuid, Vec<PortRef>> = BTreeMap::new();
    for pb in v.icsb.rows("Port_Binding") {
        if pb.uuid_of("availability_zone") != Some(ctx.az) {
            continue;
        }
        let ty = pb.str("type");
        if ty == crate::ic::port_binding::TYPE_TR_PORT {
            continue;
        }
        let lp = pb.str("logical_port");
        let Some(lsp) =
            v.nb.find_by_str("Logical_Switch_Port", "name", lp)
                .into_iter()
                .last()
        else {
            continue;
        };
        if matches!(lsp.str("type"), "switch" | "") {
            continue;
        }
        let Some(lrp_name) = lsp.smap_get("options", "router-port") else {
            if ty != crate::ic::port_binding::TYPE_TS_PORT {
                return None;
            }
            continue;
        };
        let Some(lr_uuid) = pb
            .smap_get("external_ids", "router-id")
            .and_then(|s| s.parse::<Uuid>().ok())
        else {
            continue;
        };
        if v.nb.get("Logical_Router", lr_uuid).is_none() {
            continue;
        }
        res.entry(lr_uuid).or_default().push(PortRef {
            pb: pb.uuid(),
            ts: pb.str("transit_switch").to_string(),
            lrp_name: lrp_name.to_string(),
        });
    }
    Some(res)
}

/// Changes that may move TS ports of interconnected routers (own ISB port bindings, LSPs and
/// TS images, an earlier stage's writes): re-derive every router's TS ports, refresh the
/// routers whose ports changed or whose port bindings are among `pbs` (changed in place),
/// plus `lrs` (LRPs changed in place), and reconcile the
/// transit switches involved plus `extra_ts`. A router that becomes or stops being
/// interconnected changes the set of routers: recompute.
// The three change sets are what the caller could map; bundling them gains nothing.
#[allow(clippy::too_many_arguments)]
pub fn on_ports(
    base: &Views,
    ctx: &Ctx,
    st: &mut RouteState,
    cache: &mut Cache,
    lrs: &BTreeSet<Uuid>,
    extra_ts: &BTreeSet<String>,
    pbs: &BTreeSet<Uuid>,
    out: &mut Out,
) -> Result<(), Unhandled> {
    if ctx.az != cache.az {
        return Err(Unhandled("availability zone changed"));
    }
    let now = {
        let v = base.with(out);
        router_ports(&v, ctx).ok_or(Unhandled("a router port binding lost its LRP"))?
    };
    if now.keys().ne(cache.routers.keys()) {
        return Err(Unhandled("the set of interconnected routers changed"));
    }
    let mut lrs = lrs.clone();
    let mut tses = extra_ts.clone();
    for (lr, ports) in &now {
        let old = &cache.routers[lr];
        if old != ports || ports.iter().any(|p| pbs.contains(&p.pb)) {
            lrs.insert(*lr);
            tses.extend(old.iter().chain(ports).map(|p| p.ts.clone()));
        }
    }
    for (lr, ports) in now {
        cache.routers.insert(lr, ports);
    }
    // Switches a router left keep stale candidates in the cache until reconciled.
    for lr in &lrs {
        if let Some(ads) = cache.ads.get_mut(lr) {
            let on: BTreeSet<&String> = cache.routers[lr].iter().map(|p| &p.ts).collect();
            ads.retain(|ts, _| on.contains(ts));
        }
    }
    refresh(base, ctx, st, cache, &lrs, &tses, out)
}

/// The interconnected routers owning the changed NB `Logical_Router_Port` rows.
pub fn routers_of_lrps(base: &Views, cache: &Cache, changed: &BTreeSet<Uuid>) -> BTreeSet<Uuid> {
    cache
        .routers
        .keys()
        .filter(|lr| {
            base.nb
                .get("Logical_Router", **lr)
                .is_some_and(|r| r.get("ports").uuids().any(|u| changed.contains(&u)))
        })
        .copied()
        .collect()
}

/// Changed NB `Logical_Router_Static_Route` rows: a local route changed in place goes
/// through the per-route path ([`per_route::local_routes`]), anything else refreshes its
/// owner. A route inserted or deleted is attached to or detached from its router in the same
/// transaction, so the router's own change ([`on_routers`]) covers it.
pub fn on_static_routes(
    base: &Views,
    ctx: &Ctx,
    st: &mut RouteState,
    cache: &mut Cache,
    changed: &BTreeSet<Uuid>,
    out: &mut Out,
) -> Result<(), Unhandled> {
    let changes = base.nb.replica().changes("Logical_Router_Static_Route");
    let by_uuid: HashMap<Uuid, &crate::ovsdb::replica::Change> =
        changes.iter().map(|c| (c.uuid, c)).collect();
    let mut lrs = BTreeSet::new();
    let mut in_place: Vec<(Uuid, Row, Row)> = vec![];
    for u in changed {
        let Some(lr) = cache.static_owner.get(u).copied() else {
            continue;
        };
        match by_uuid.get(u) {
            Some(c) if c.kind == ChangeKind::Inserted => {}
            Some(c) if c.kind == ChangeKind::Deleted => {
                let still = base
                    .nb
                    .get("Logical_Router", lr)
                    .is_some_and(|r| r.get("static_routes").uuids().any(|x| x == *u));
                if still {
                    lrs.insert(lr);
                }
            }
            Some(c) => match (c.old, c.new) {
                (Some(o), Some(n)) => in_place.push((lr, o.clone(), n.clone())),
                _ => {
                    lrs.insert(lr);
                }
            },
            None => {
                lrs.insert(lr);
            }
        }
    }
    let mut per_router: BTreeMap<Uuid, (Vec<Row>, Vec<Row>)> = BTreeMap::new();
    for (lr, o, n) in in_place {
        let e = per_router.entry(lr).or_default();
        e.0.push(o);
        e.1.push(n);
    }
    per_route_then_refresh(base, ctx, st, cache, per_router, lrs, out)
}

/// Run the per-route path for each router's (gone, came) local routes; routers it does not
/// apply to join `lrs`, which are refreshed.
fn per_route_then_refresh(
    base: &Views,
    ctx: &Ctx,
    st: &mut RouteState,
    cache: &mut Cache,
    per_router: BTreeMap<Uuid, (Vec<Row>, Vec<Row>)>,
    mut lrs: BTreeSet<Uuid>,
    out: &mut Out,
) -> Result<(), Unhandled> {
    for (lr, (gone, came)) in per_router {
        if lrs.contains(&lr) {
            continue;
        }
        let prev = std::mem::take(out);
        let mut fresh = Out::default();
        let res = {
            let v = base.with(&prev);
            per_route::local_routes(&v, ctx, st, cache, lr, &gone, &came, &mut fresh)
        }
        .and_then(|done| {
            if done {
                learn_own_writes(base, ctx, cache, &prev, &mut fresh)?;
            }
            Ok(done)
        });
        *out = prev;
        match res? {
            true => {
                st.stats.per_route += 1;
                out.merge(&fresh)
            }
            false => {
                lrs.insert(lr);
            }
        }
    }
    refresh(base, ctx, st, cache, &lrs, &BTreeSet::new(), out)
}

/// Changed NB `Logical_Router` rows: an interconnected router whose only change is local
/// routes attached or detached goes through the per-route path; other interconnected ones are
/// refreshed. A router created or deleted may change the set of interconnected routers:
/// recompute.
pub fn on_routers(
    base: &Views,
    ctx: &Ctx,
    st: &mut RouteState,
    cache: &mut Cache,
    changed: &BTreeSet<Uuid>,
    out: &mut Out,
) -> Result<(), Unhandled> {
    let nb = base.nb.replica();
    let lr_changes = nb.changes("Logical_Router");
    let by_uuid: HashMap<Uuid, &crate::ovsdb::replica::Change> =
        lr_changes.iter().map(|c| (c.uuid, c)).collect();
    let sr_changes = nb.changes("Logical_Router_Static_Route");
    let old_routes: HashMap<Uuid, &Row> = sr_changes
        .iter()
        .filter_map(|c| c.old.map(|o| (c.uuid, o)))
        .collect();
    let mut lrs = BTreeSet::new();
    let mut per_router: BTreeMap<Uuid, (Vec<Row>, Vec<Row>)> = BTreeMap::new();
    for u in changed {
        let exists = base.nb.get("Logical_Router", *u).is_some();
        let change = by_uuid.get(u);
        if !cache.routers.contains_key(u) {
            if exists && change.map(|c| c.kind) != Some(ChangeKind::Updated) {
                return Err(Unhandled("router created"));
            }
            continue;
        }
        if !exists {
            return Err(Unhandled("interconnected router deleted"));
        }
        let attach = change
            .and_then(|c| Some((c.old?, c.new?)))
            .filter(|(o, n)| o.changed_columns(n).all(|c| c == "static_routes"))
            .and_then(|(o, n)| {
                // Both sets are sorted: one linear merge, no copy of either.
                let was = o.get("static_routes").as_set()?;
                let is = n.get("static_routes").as_set()?;
                let gone = was
                    .difference(is)
                    .filter_map(|a| a.as_uuid())
                    .map(|r| {
                        old_routes
                            .get(&r)
                            .map(|x| (*x).clone())
                            .or_else(|| nb.get("Logical_Router_Static_Route", r).cloned())
                    })
                    .collect::<Option<Vec<Row>>>()?;
                let came = is
                    .difference(was)
                    .filter_map(|a| a.as_uuid())
                    .map(|r| nb.get("Logical_Router_Static_Route", r).cloned())
                    .collect::<Option<Vec<Row>>>()?;
                Some((gone, came))
            });
        match attach {
            Some(gc) => {
                per_router.insert(*u, gc);
            }
            None => {
                lrs.insert(*u);
            }
        }
    }
    per_route_then_refresh(base, ctx, st, cache, per_router, lrs, out)
}

/// Changed ISB `Route` rows: refresh the routers learning through their transit switches and
/// reconcile those switches (own rows coming back, rows of other AZs to learn or unlearn).
pub fn on_isb_routes(
    base: &Views,
    ctx: &Ctx,
    st: &mut RouteState,
    cache: &mut Cache,
    changed: &BTreeSet<Uuid>,
    out: &mut Out,
) -> Result<(), Unhandled> {
    if relearn_rows(base, ctx, cache, changed, out)? {
        st.stats.per_row += 1;
        return Ok(());
    }
    let old: HashMap<Uuid, String> = base
        .icsb
        .replica()
        .changes("Route")
        .into_iter()
        .filter_map(|c| c.old.map(|r| (c.uuid, r.str("transit_switch").to_string())))
        .collect();
    let mut tses = BTreeSet::new();
    for u in changed {
        let now = base.icsb.get("Route", *u);
        let mut known = false;
        if let Some(r) = &now {
            tses.insert(r.str("transit_switch").to_string());
            known = true;
        }
        if let Some(ts) = old.get(u) {
            tses.insert(ts.clone());
            known = true;
        }
        if !known {
            return Err(Unhandled("changed ISB route unknown"));
        }
    }
    let lrs: BTreeSet<Uuid> = tses.iter().flat_map(|ts| cache.routers_on(ts)).collect();
    refresh(base, ctx, st, cache, &lrs, &tses, out)
}

/// The per-row path of [`on_isb_routes`]: when every changed ISB route belongs to another AZ
/// (before and after the change), our advertisements and orphans are untouched and only the
/// learning of those rows can change. Each router on their switches re-decides L1–L6 for
/// those rows alone, with its facts and learned routes kept from the last run, instead of
/// re-learning every ISB row of its switches. Returns false (nothing done) when it does not
/// apply; the caller then refreshes the routers.
fn relearn_rows(
    base: &Views,
    ctx: &Ctx,
    cache: &mut Cache,
    changed: &BTreeSet<Uuid>,
    out: &mut Out,
) -> Result<bool, Unhandled> {
    if ctx.az != cache.az {
        return Ok(false);
    }
    let prev = std::mem::take(out);
    let mut fresh = Out::default();
    let res = {
        let v = base.with(&prev);
        relearn_rows_in(&v, ctx, cache, changed, &mut fresh)
    };
    *out = prev;
    if matches!(res, Ok(true)) {
        out.merge(&fresh);
    }
    res
}

fn relearn_rows_in(
    v: &Views,
    ctx: &Ctx,
    cache: &mut Cache,
    changed: &BTreeSet<Uuid>,
    out: &mut Out,
) -> Result<bool, Unhandled> {
    let own = |r: &crate::ovsdb::replica::Row| r.uuid_of("availability_zone") == Some(ctx.az);
    let mut old_ts: HashMap<Uuid, String> = HashMap::new();
    for c in v.icsb.replica().changes("Route") {
        if let Some(o) = c.old {
            if own(o) {
                return Ok(false);
            }
            old_ts.insert(c.uuid, o.str("transit_switch").to_string());
        }
    }
    let mut tses = BTreeSet::new();
    for u in changed {
        let now = v.icsb.get("Route", *u);
        match (&now, old_ts.get(u)) {
            (None, None) => return Ok(false),
            (Some(r), _) if own(r) => return Ok(false),
            _ => {}
        }
        tses.extend(now.map(|r| r.str("transit_switch").to_string()));
        tses.extend(old_ts.get(u).cloned());
    }
    let lrs: BTreeSet<Uuid> = tses.iter().flat_map(|ts| cache.routers_on(ts)).collect();
    if lrs.iter().any(|lr| !cache.learn.contains_key(lr)) {
        return Ok(false);
    }
    if global_opts(v) != cache.g {
        return Err(Unhandled("route options changed"));
    }
    let g = cache.g.clone();
    let env = LearnEnv {
        ctx,
        g: &g,
        has_route_options: v.icsb.replica().has_column("Route", "options"),
    };
    for lr_uuid in lrs {
        let Some(lr) = v.nb.get("Logical_Router", lr_uuid) else {
            return Err(Unhandled("interconnected router deleted"));
        };
        relearn_and_write(v, &env, cache, &lr, changed, out)?;
    }
    Ok(true)
}

/// Routers of this AZ learn each other's routes (L1 compares `lr-id`, not the AZ): the own ISB
/// rows `fresh` inserts, changes or deletes are re-decided at once for every router on their
/// switches, reading through `prev` and `fresh`, so that our own writes coming back through
/// the monitor change nothing (the driver hides such echoes from the handlers).
pub(super) fn learn_own_writes(
    base: &Views,
    ctx: &Ctx,
    cache: &mut Cache,
    prev: &Out,
    fresh: &mut Out,
) -> Result<(), Unhandled> {
    let written: BTreeSet<Uuid> = fresh
        .icsb
        .table("Route")
        .chain(fresh.icsb_locked.table("Route"))
        .map(|(u, _)| *u)
        .collect();
    if written.is_empty() {
        return Ok(());
    }
    let mut extra = Out::default();
    {
        let before = base.with(prev);
        let v = before.with(fresh);
        let mut by_ts: BTreeMap<String, BTreeSet<Uuid>> = BTreeMap::new();
        for u in &written {
            for r in [v.icsb.get("Route", *u), before.icsb.get("Route", *u)]
                .into_iter()
                .flatten()
            {
                by_ts
                    .entry(r.str("transit_switch").to_string())
                    .or_default()
                    .insert(*u);
            }
        }
        let mut rows_of: BTreeMap<Uuid, BTreeSet<Uuid>> = BTreeMap::new();
        for (ts, rows) in &by_ts {
            for lr in cache.routers_on(ts) {
                rows_of.entry(lr).or_default().extend(rows);
            }
        }
        let g = cache.g.clone();
        let env = LearnEnv {
            ctx,
            g: &g,
            has_route_options: v.icsb.replica().has_column("Route", "options"),
        };
        for (lr_uuid, rows) in rows_of {
            let Some(lr) = v.nb.get("Logical_Router", lr_uuid) else {
                return Err(Unhandled("interconnected router deleted"));
            };
            relearn_and_write(&v, &env, cache, &lr, &rows, &mut extra)?;
        }
    }
    fresh.merge(&extra);
    Ok(())
}

/// [`relearn_router`], then write the router's `static_routes` edit and keep the cache's copy
/// in step.
fn relearn_and_write(
    v: &Views,
    env: &LearnEnv,
    cache: &mut Cache,
    lr: &crate::ovsdb::replica::Row,
    rows: &BTreeSet<Uuid>,
    out: &mut Out,
) -> Result<(), Unhandled> {
    let mut edit = StaticRoutesEdit::default();
    relearn_router(v, env, cache, lr, rows, &mut edit, out)?;
    edit.apply(lr, out);
    cache.statics_delta(
        lr.uuid(),
        edit.remove.iter().copied(),
        edit.add.iter().copied(),
    );
    Ok(())
}

/// Re-decide L1–L6 of the ISB rows `rows` alone for the interconnected router `lr` (its
/// learn facts as kept in `cache`, which must have them): learned NB routes to insert and
/// detach go to `out` and `edit`, the kept index follows.
pub(super) fn relearn_router(
    v: &Views,
    env: &LearnEnv,
    cache: &mut Cache,
    lr: &crate::ovsdb::replica::Row,
    rows: &BTreeSet<Uuid>,
    edit: &mut StaticRoutesEdit,
    out: &mut Out,
) -> Result<(), Unhandled> {
    let lr_uuid = lr.uuid();
    let mut pbs = vec![];
    let mut lrps = vec![];
    for p in cache.routers.get(&lr_uuid).into_iter().flatten() {
        let Some(pb) = v.icsb.get("Port_Binding", p.pb) else {
            return Err(Unhandled("router port binding gone"));
        };
        pbs.push(pb);
        lrps.push(
            v.nb.find_by_str("Logical_Router_Port", "name", &p.lrp_name)
                .into_iter()
                .last(),
        );
    }
    let ports: Vec<LearnPort> = pbs
        .iter()
        .zip(&lrps)
        .map(|(pb, lrp)| LearnPort::new(pb, lrp.as_deref()))
        .collect();
    let Some(rl) = cache.learn.get_mut(&lr_uuid) else {
        return Err(Unhandled("no learn facts kept for the router"));
    };
    for u in rows {
        let row = v.icsb.get("Route", *u);
        let want = row
            .as_ref()
            .and_then(|r| learn::accept_any(env, lr, &rl.facts, &ports, r));
        let have = rl.index.remove(u).unwrap_or_default();
        match (&want, have.as_slice()) {
            (Some(k), [(nb, hk)]) if k == hk => {
                rl.index.insert(*u, vec![(*nb, hk.clone())]);
                continue;
            }
            _ => {}
        }
        for (nb, _) in &have {
            debug!(target: "ovn_ic", "Delete route learned from IC-SB row {} from NB.", u);
            edit.remove.insert(*nb);
        }
        if let (Some(k), Some(r)) = (want, row) {
            let nb = learn::insert_learned(&r, &k, out);
            edit.add.push(nb);
            rl.index.insert(*u, vec![(nb, k)]);
        }
    }
    Ok(())
}

/// A change of `NB_Global`: handled when the route options stay the same.
pub fn on_nb_global(base: &Views, cache: &Cache) -> Result<(), Unhandled> {
    if global_opts(base) == cache.g {
        Ok(())
    } else {
        Err(Unhandled("route options changed"))
    }
}

/// A change of SB `Learned_Route` or `Datapath_Binding`: irrelevant when the SB cannot map
/// learned routes to routers (§E.2), else recompute.
pub fn on_sb_learned(base: &Views) -> Result<(), Unhandled> {
    if Inputs::sb_learned_supported(base) {
        Err(Unhandled("SB learned routes"))
    } else {
        Ok(())
    }
}

/// Changed SB `Datapath_Binding` or `Learned_Route` rows: refresh the interconnected routers
/// they belong to (through `nb_uuid`, old and new rows); nothing when the SB cannot map
/// learned routes to routers (§E.2).
pub fn on_sb_rows(
    base: &Views,
    ctx: &Ctx,
    st: &mut RouteState,
    cache: &mut Cache,
    table: &str,
    changes: &[crate::ovsdb::replica::Change],
    out: &mut Out,
) -> Result<(), Unhandled> {
    if !Inputs::sb_learned_supported(base) {
        return Ok(());
    }
    let mut lrs = BTreeSet::new();
    for c in changes {
        for row in [c.old, c.new].into_iter().flatten() {
            let lr = if table == "Datapath_Binding" {
                row.uuid_of("nb_uuid")
            } else {
                row.uuid_of("datapath")
                    .and_then(|d| base.sb.get("Datapath_Binding", d))
                    .and_then(|d| d.uuid_of("nb_uuid"))
            };
            if let Some(lr) = lr.filter(|lr| cache.routers.contains_key(lr)) {
                lrs.insert(lr);
            }
        }
    }
    if lrs.is_empty() {
        return Ok(());
    }
    refresh(base, ctx, st, cache, &lrs, &BTreeSet::new(), out)
}

#[cfg(test)]
#[path = "incr_tests.rs"]
mod tests;
