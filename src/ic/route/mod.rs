//! Route advertisement and learning (spec ovn-ic-routes.md §0, Part A, §D, §E; upstream
//! `route_run()`).
//!
//! A full recomputation of the route exchange of this AZ: orphan cleanup of the own ISB
//! `Route` rows ([`collect::delete_orphans`], A.5), the interconnected routers
//! ([`collect::routers`], A.6), per router the advertisement candidates
//! ([`advertise::build_router`], A.7) and the learned NB routes ([`learn::learn_router`],
//! A.7.5/A.8), then the own ISB rows per transit switch ([`advertise::reconcile`], A.9).
//! The pieces are pure functions of plain data so that per-route change handlers can reuse
//! them later.
//!
//! # Deviations
//!
//! Intentional differences from the C daemon, all recommended by the spec ([REC]):
//! * Strict address parsing (§0.4.5): IPv4 octets must be 0–255 and no blanks inside an
//!   address; values written by ovn-nbctl/northd/ovn-ic are canonical anyway.
//! * `discard` as a next hop is a parse failure everywhere except local NB static routes
//!   (§0.7), instead of an undefined next-hop value.
//! * Duplicate learned NB routes (identical A.7.5 key) are detached as soon as they are seen
//!   instead of surviving until the ISB row stops being learned (A.7.5).
//! * Candidates that would collide on the ISB `Route` unique index (same route table, prefix
//!   and next hop, differing only in origin or override-connected) keep one row — preferring
//!   `static`, `connected`, `connected-dynamic`, `loadbalancer`, the first seen on a tie — and log
//!   the duplicate-advertisement warning for the other, instead of a transaction that fails
//!   forever (A.7.6).
//! * Candidates are built in a deterministic order (routers, ports, routes, LBs by UUID, networks
//!   and VIPs in set order) instead of hash order; this only decides `nb-id` / `lr-id` /
//!   `ic-route-tag` of collapsed duplicates (A.7.6).
//! * An own ISB row whose only defect is a link-local (`fe80::/64`) next hop is kept when a
//!   candidate matches it, which removes the upstream delete/insert loop (A.7.8); the database
//!   contents are those upstream shows between two iterations of its loop.
//! * Each (router, ISB row) pair is learned at most once per run, so a router with two ports on
//!   one transit switch does not grow copies of a learned route (A.8).
//! * Schema tolerance (§E.2): without ISB `Route.options`, override-connected is false in every
//!   identity and never written; candidates whose origin the server's `Route.origin` enum lacks
//!   are dropped (logged once per origin); without SB `Learned_Route` or
//!   `Datapath_Binding.nb_uuid` there are no `connected-dynamic` candidates and no L5.11.
//! * Learned routes are detached only from the router's `static_routes` (OVSDB garbage-collects
//!   the row), as upstream; the whole `static_routes` set is written with the change.

pub mod advertise;
pub mod collect;
pub mod incr;
pub mod learn;
pub mod parse;
pub mod per_route;

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::util::smap_bool_default_false;
use super::{Ctx, Out, Views};
use crate::ovsdb::replica::Row;
use crate::ovsdb::{Atom, Uuid};

use parse::PrefixList;

/// Process-lifetime state of the route stage.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteState {
    /// Origins already reported as unsupported by the ISB server (logged once each).
    pub warned_origins: BTreeSet<String>,
    /// How the incremental paths were taken (for tests and debugging).
    pub stats: RouteStats,
}

/// Counters of the route stage's incremental paths.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteStats {
    /// Routers whose candidates and learned routes were rebuilt by a refresh.
    pub routers_refreshed: u64,
    /// Routers updated by the per-route path for local static routes.
    pub per_route: u64,
    /// Batches of changed ISB rows handled by the per-row learn path.
    pub per_row: u64,
}

/// The `NB_Global.options` the route exchange reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GlobalOpts {
    pub adv: bool,
    pub learn: bool,
    pub adv_default: bool,
    pub learn_default: bool,
    pub adv_lb: bool,
    pub learn_lb: bool,
    /// `ic-route-denylist` if present and non-empty, else `ic-route-blacklist` if non-empty.
    pub deny: Option<String>,
}

impl GlobalOpts {
    pub fn from_options(opt: impl Fn(&str) -> Option<String>) -> GlobalOpts {
        let b = |k: &str| smap_bool_default_false(opt(k).as_deref());
        let nonempty = |k: &str| opt(k).filter(|s| !s.is_empty());
        GlobalOpts {
            adv: b("ic-route-adv"),
            learn: b("ic-route-learn"),
            adv_default: b("ic-route-adv-default"),
            learn_default: b("ic-route-learn-default"),
            adv_lb: b("ic-route-adv-lb"),
            learn_lb: b("ic-route-learn-lb"),
            deny: nonempty("ic-route-denylist").or_else(|| nonempty("ic-route-blacklist")),
        }
    }

    /// The deny list of one direction: TS LRP value, LR value, global list.
    pub fn deny_list(
        &self,
        name: &'static str,
        key: &str,
        lr: &Row,
        ts_lrp: Option<&Row>,
    ) -> PrefixList {
        PrefixList::new(
            name,
            [
                ts_lrp.and_then(|p| p.smap_get("options", key)),
                lr.smap_get("options", key),
                self.deny.as_deref(),
            ],
        )
    }
}

/// The allow list of one direction: TS LRP value, LR value.
pub fn allow_list(name: &'static str, key: &str, lr: &Row, ts_lrp: Option<&Row>) -> PrefixList {
    PrefixList::new(
        name,
        [
            ts_lrp.and_then(|p| p.smap_get("options", key)),
            lr.smap_get("options", key),
        ],
    )
}

/// Everything the route stage reads, indexed once per run.
pub struct Inputs<'a> {
    pub g: GlobalOpts,
    pub lsp_by_name: HashMap<String, Cow<'a, Row>>,
    pub lrp_by_name: HashMap<String, Cow<'a, Row>>,
    /// INB transit switch names.
    pub ts_names: BTreeSet<String>,
    /// ISB routes by transit switch name (rows deleted as orphans are removed).
    pub routes_by_ts: BTreeMap<String, Vec<Cow<'a, Row>>>,
    /// SB Learned_Route prefixes by the NB UUID of their router (empty when unsupported).
    pub sb_learned: BTreeMap<Uuid, Vec<String>>,
    /// ISB `Route.options` exists.
    pub has_route_options: bool,
    /// The ISB `Route.origin` enum, when the server's schema constrains it.
    pub origin_enum: Option<BTreeSet<String>>,
}

impl<'a> Inputs<'a> {
    /// The global facts (options, schema) with empty row indexes.
    fn base(v: &Views<'a>) -> Inputs<'a> {
        let origin_enum = v
            .icsb
            .replica()
            .schema()
            .and_then(|s| s.tables.get("Route"))
            .and_then(|t| t.column("origin"))
            .and_then(|c| c.ty.key.enum_values.as_ref())
            .map(|e| {
                e.iter()
                    .filter_map(|a| a.as_str().map(str::to_string))
                    .collect()
            });
        Inputs {
            g: global_opts(v),
            lsp_by_name: HashMap::new(),
            lrp_by_name: HashMap::new(),
            ts_names: BTreeSet::new(),
            routes_by_ts: BTreeMap::new(),
            sb_learned: BTreeMap::new(),
            has_route_options: v.icsb.replica().has_column("Route", "options"),
            origin_enum,
        }
    }

    /// Whether SB `Learned_Route` can be mapped to NB routers (§E.2).
    fn sb_learned_supported(v: &Views) -> bool {
        let sb = v.sb.replica();
        sb.has_table("Learned_Route") && sb.has_column("Datapath_Binding", "nb_uuid")
    }

    /// SB Learned_Route prefixes by router, for the routers `keep` accepts.
    fn load_sb_learned(v: &Views<'a>, keep: impl Fn(&Uuid) -> bool) -> BTreeMap<Uuid, Vec<String>> {
        let mut sb_learned: BTreeMap<Uuid, Vec<String>> = BTreeMap::new();
        if !Self::sb_learned_supported(v) {
            return sb_learned;
        }
        let dp_to_lr: HashMap<Uuid, Uuid> =
            v.sb.rows("Datapath_Binding")
                .iter()
                .filter_map(|d| d.uuid_of("nb_uuid").map(|n| (d.uuid(), n)))
                .filter(|(_, n)| keep(n))
                .collect();
        if dp_to_lr.is_empty() {
            return sb_learned;
        }
        for lr in v.sb.rows("Learned_Route") {
            if let Some(n) = lr.uuid_of("datapath").and_then(|d| dp_to_lr.get(&d)) {
                sb_learned
                    .entry(*n)
                    .or_default()
                    .push(lr.str("ip_prefix").to_string());
            }
        }
        sb_learned
    }

    pub fn load(v: &Views<'a>) -> Inputs<'a> {
        let by_name = |rows: Vec<Cow<'a, Row>>| -> HashMap<String, Cow<'a, Row>> {
            rows.into_iter()
                .map(|r| (r.str("name").to_string(), r))
                .collect()
        };
        let mut routes_by_ts: BTreeMap<String, Vec<Cow<'a, Row>>> = BTreeMap::new();
        for r in v.icsb.rows("Route") {
            routes_by_ts
                .entry(r.str("transit_switch").to_string())
                .or_default()
                .push(r);
        }
        Inputs {
            lsp_by_name: by_name(v.nb.rows("Logical_Switch_Port")),
            lrp_by_name: by_name(v.nb.rows("Logical_Router_Port")),
            ts_names: v
                .icnb
                .rows("Transit_Switch")
                .iter()
                .map(|t| t.str("name").to_string())
                .collect(),
            routes_by_ts,
            sb_learned: Self::load_sb_learned(v, |_| true),
            ..Self::base(v)
        }
    }

    /// Only what the incremental path needs for the routers `lrs` whose TS ports name the LRPs
    /// `lrp_names`, on the transit switches `tses`: those switches (if they exist), their ISB
    /// routes, the LSPs/LRPs behind their NB images (for the orphan check), the named LRPs and
    /// the routers' SB learned prefixes. Lookups go through the replicas' indexes where the
    /// daemon declares them.
    pub fn load_for(
        v: &Views<'a>,
        lrs: &BTreeSet<Uuid>,
        lrp_names: &BTreeSet<String>,
        tses: &BTreeSet<String>,
    ) -> Inputs<'a> {
        let mut inp = Self::base(v);
        let mut lrps: BTreeSet<String> = lrp_names.clone();
        for ts in tses {
            // Routes on a switch gone from the INB are still loaded: the orphan cleanup
            // deletes our own ones (as the full recompute does).
            let rows = v.icsb.find_by_str("Route", "transit_switch", ts);
            if !rows.is_empty() {
                inp.routes_by_ts.insert(ts.clone(), rows);
            }
            if v.icnb.find_by_str("Transit_Switch", "name", ts).is_empty() {
                continue;
            }
            inp.ts_names.insert(ts.clone());
            for ls in v.nb.find_by_str("Logical_Switch", "name", ts) {
                for u in ls.get("ports").uuids() {
                    let Some(lsp) = v.nb.get("Logical_Switch_Port", u) else {
                        continue;
                    };
                    if let Some(n) = lsp.smap_get("options", "router-port") {
                        lrps.insert(n.to_string());
                    }
                    inp.lsp_by_name.insert(lsp.str("name").to_string(), lsp);
                }
            }
        }
        for n in lrps {
            if let Some(r) =
                v.nb.find_by_str("Logical_Router_Port", "name", &n)
                    .into_iter()
                    .last()
            {
                inp.lrp_by_name.insert(n, r);
            }
        }
        inp.sb_learned = Self::load_sb_learned(v, |n| lrs.contains(n));
        inp
    }

    /// The LRP named by an LSP's `options:router-port`.
    pub fn lrp_of_lsp(&self, lsp_name: &str) -> Option<&Row> {
        let lsp = self.lsp_by_name.get(lsp_name)?;
        let lrp = lsp.smap_get("options", "router-port")?;
        self.lrp_by_name.get(lrp).map(|r| r.as_ref())
    }
}

/// The route options of the (first) NB_Global row.
pub fn global_opts(v: &Views) -> GlobalOpts {
    let nbg = v.nb.rows("NB_Global").into_iter().next();
    GlobalOpts::from_options(|k| {
        nbg.as_ref()
            .and_then(|r| r.smap_get("options", k))
            .map(str::to_string)
    })
}

/// Pending edits of one router's `static_routes`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StaticRoutesEdit {
    pub remove: BTreeSet<Uuid>,
    pub add: Vec<Uuid>,
}

impl StaticRoutesEdit {
    pub fn is_empty(&self) -> bool {
        self.remove.is_empty() && self.add.is_empty()
    }
    /// Write the edit (a `mutate` of `static_routes`: its cost is the edit's size, not the
    /// router's route count) if anything changed.
    pub fn apply(&self, lr: &Row, out: &mut Out) {
        if self.is_empty() {
            return;
        }
        out.nb.edit_set(
            "Logical_Router",
            lr.uuid(),
            "static_routes",
            self.add.iter().copied().map(Atom::from),
            self.remove.iter().copied().map(Atom::from),
        );
    }
}

/// Run the route stage (a full recompute). `v` must include the outputs of the AZ, gateway,
/// TS, TR and port-binding stages of this run. [`incr::recompute`] does the same and also
/// returns the per-router results the incremental path keeps.
pub fn run(v: &Views, ctx: &Ctx, st: &mut RouteState, out: &mut Out) {
    incr::recompute(v, ctx, st, out);
}

#[cfg(test)]
mod tests;
