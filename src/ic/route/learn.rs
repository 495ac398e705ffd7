//! Learning: the router's existing learned NB routes (A.7.5) reconciled with the ISB routes it
//! accepts through its TS ports (A.8, rules L1–L6).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use tracing::debug;

use super::collect::TsPort;
use super::parse::{
    lrp_networks, parse_ip, parse_route, parse_vip, prefix_is_link_local, Ip46, PortAddrs,
};
use super::{allow_list, GlobalOpts, Inputs, StaticRoutesEdit};
use crate::daemon::vlog::RateLimit;
use crate::ic::util::smap_bool_default_false;
use crate::ic::{Ctx, Out, Views};
use crate::ovsdb::replica::Row;
use crate::ovsdb::{Datum, Uuid};

static BAD_RL: RateLimit = RateLimit::new(5, 1);
static VIP_RL: RateLimit = RateLimit::new(5, 1);
static CLASH_RL: RateLimit = RateLimit::new(5, 1);

/// Whether `nh` is one of the port's own addresses (not just on its networks).
fn is_own_address(n: &PortAddrs, nh: Ip46) -> bool {
    n.v4.iter().chain(&n.v6).any(|(a, _)| *a == nh)
}

/// Key of a learned route (A.7.5): prefix, plen, next hop, origin, route table, ISB row UUID,
/// override-connected.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LearnedKey {
    pub prefix: Ip46,
    pub plen: u32,
    pub nexthop: Ip46,
    pub origin: String,
    pub route_table: String,
    pub isb_uuid: Uuid,
    pub override_connected: bool,
}

/// A learned NB route found in the router.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LearnedNb {
    pub uuid: Uuid,
    pub ip_prefix: String,
    pub nexthop: String,
}

fn learned_uuid(r: &Row) -> Option<Uuid> {
    r.smap_get("external_ids", "ic-learned-route")?.parse().ok()
}

/// A.7.5: the router's learned routes by key. Unparseable ones and exact duplicates are
/// detached through `edit`.
pub fn collect_learned(
    statics: &[&Row],
    edit: &mut StaticRoutesEdit,
) -> BTreeMap<LearnedKey, LearnedNb> {
    let mut res = BTreeMap::new();
    for r in statics {
        let Some(u) = learned_uuid(r) else {
            continue;
        };
        let (p, nh) = (r.str("ip_prefix"), r.str("nexthop"));
        let Some(pr) = parse_route(p, nh, false) else {
            // rate-limited upstream: 5/min burst 1
            crate::vlog_rl!(BAD_RL, warn, target: "ovn_ic",
                "Bad format of learned route in NB: {} -> {}. Delete it.", p, nh);
            edit.remove.insert(r.uuid());
            continue;
        };
        let Some(nexthop) = pr.nexthop else {
            continue;
        };
        let key = LearnedKey {
            prefix: pr.prefix,
            plen: pr.plen,
            nexthop,
            origin: r.smap_get("options", "origin").unwrap_or("").to_string(),
            route_table: r.str("route_table").to_string(),
            isb_uuid: u,
            override_connected: smap_bool_default_false(
                r.smap_get("options", "override-connected"),
            ),
        };
        if res.contains_key(&key) {
            // A duplicate of an identical learned route: detach at once (A.7.5 [REC]).
            debug!(target: "ovn_ic", "Delete duplicate learned route {} -> {} from NB.", p, nh);
            edit.remove.insert(r.uuid());
            continue;
        }
        res.insert(
            key,
            LearnedNb {
                uuid: r.uuid(),
                ip_prefix: p.to_string(),
                nexthop: nh.to_string(),
            },
        );
    }
    res
}

/// What L5 needs to know about the learning router, besides the router row itself. It does
/// not depend on the ISB routes, so the per-row path keeps it between runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LearnFacts {
    /// (route_table, ip_prefix) of its non-learned static routes, with how many routes have
    /// it (L5.8 asks for presence only).
    pub local_statics: BTreeMap<(String, String), usize>,
    /// Its LB VIPs (from `load_balancer` and groups).
    pub vips: Vec<Ip46>,
    /// Its SB Learned_Route prefixes.
    pub sb_learned: BTreeSet<String>,
}

/// One ISB route as L5 sees it.
pub struct IsbRoute<'s> {
    pub ip_prefix: &'s str,
    pub route_table: &'s str,
    pub origin: &'s str,
    pub nexthop: &'s str,
    pub prefix: Ip46,
    pub plen: u32,
}

/// `route_need_learn` (L5.1–L5.11).
pub fn need_learn(
    g: &GlobalOpts,
    lr: &Row,
    f: &LearnFacts,
    lrp: Option<&Row>,
    lrp_nets: Option<&PortAddrs>,
    r: &IsbRoute,
) -> bool {
    if !g.learn || (r.plen == 0 && !g.learn_default) {
        return false;
    }
    if r.origin == super::advertise::ORIGIN_LB && !g.learn_lb {
        return false;
    }
    if lr.get("enabled").as_bool() == Some(false) {
        return false;
    }
    if prefix_is_link_local(r.prefix, r.plen) {
        return false;
    }
    let deny = g.deny_list("ic-route-deny-learn", "ic-route-deny-learn", lr, lrp);
    if !deny.is_empty() && deny.matches(r.prefix, r.plen) {
        return false;
    }
    let allow = allow_list("ic-route-filter-learn", "ic-route-filter-learn", lr, lrp);
    if !allow.is_empty() && !allow.matches(r.prefix, r.plen) {
        return false;
    }
    if f.local_statics
        .contains_key(&(r.route_table.to_string(), r.ip_prefix.to_string()))
    {
        return false;
    }
    let on_link = lrp_nets
        .zip(parse_ip(r.nexthop))
        .is_some_and(|(n, nh)| n.on_link(nh));
    if !on_link {
        return false;
    }
    if f.vips
        .iter()
        .any(|vip| vip.is_v4() == r.prefix.is_v4() && vip.masked(r.plen) == r.prefix)
    {
        return false;
    }
    !f.sb_learned.contains(r.ip_prefix)
}

/// Whether a static route counts as local for L5.8 (no `ic-learned-route` at all).
pub fn is_local(r: &Row) -> bool {
    r.smap_get("external_ids", "ic-learned-route").is_none()
}

/// The L5.8 key of a local static route: (route_table, ip_prefix).
pub fn local_key(r: &Row) -> (String, String) {
    (
        r.str("route_table").to_string(),
        r.str("ip_prefix").to_string(),
    )
}

/// The facts about a router L5 needs.
pub fn router_facts(v: &Views, inp: &Inputs, lr: &Row, statics: &[&Row]) -> LearnFacts {
    let mut local_statics: BTreeMap<(String, String), usize> = BTreeMap::new();
    for r in statics.iter().filter(|r| is_local(r)) {
        *local_statics.entry(local_key(r)).or_default() += 1;
    }
    let mut lbs: BTreeSet<Uuid> = lr.get("load_balancer").uuids().collect();
    for g in lr.get("load_balancer_group").uuids() {
        if let Some(g) = v.nb.get("Load_Balancer_Group", g) {
            lbs.extend(g.get("load_balancer").uuids());
        }
    }
    let mut vips = vec![];
    for lb in lbs.into_iter().filter_map(|u| v.nb.get("Load_Balancer", u)) {
        for k in lb.get("vips").as_map().into_iter().flat_map(|m| m.keys()) {
            let Some(k) = k.as_str() else { continue };
            match parse_vip(k) {
                Some(a) => vips.push(a),
                None => {
                    crate::vlog_rl!(VIP_RL, warn, target: "ovn_ic",
                        "Route learn: Parsing failed for local lb vip {}", k);
                }
            }
        }
    }
    LearnFacts {
        local_statics,
        vips,
        sb_learned: inp
            .sb_learned
            .get(&lr.uuid())
            .into_iter()
            .flatten()
            .cloned()
            .collect(),
    }
}

/// One TS port of the learning router as the rules see it.
pub struct LearnPort<'r> {
    pub ts: &'r str,
    /// The ISB `Port_Binding.address` is set (a port without one learns nothing).
    pub has_address: bool,
    pub lrp: Option<&'r Row>,
    pub route_table: &'r str,
    pub filter_tag: &'r str,
    pub nets: Option<PortAddrs>,
}

impl<'r> LearnPort<'r> {
    pub fn new(pb: &'r Row, lrp: Option<&'r Row>) -> LearnPort<'r> {
        let opt = |k: &str| lrp.and_then(|p| p.smap_get("options", k)).unwrap_or("");
        LearnPort {
            ts: pb.str("transit_switch"),
            has_address: !pb.str("address").is_empty(),
            lrp,
            route_table: opt("route_table"),
            filter_tag: opt("ic-route-filter-tag"),
            nets: lrp.and_then(|p| lrp_networks(p.str("mac"), p.get("networks").strs())),
        }
    }
}

/// The settings every learn decision of one run shares.
pub struct LearnEnv<'a> {
    pub ctx: &'a Ctx,
    pub g: &'a GlobalOpts,
    /// ISB `Route.options` exists.
    pub has_route_options: bool,
}

/// L1–L5 for one ISB row through one TS port of router `lr`: the key of the NB route it
/// should be learned as, or None.
pub fn accept(
    env: &LearnEnv,
    lr: &Row,
    f: &LearnFacts,
    port: &LearnPort,
    row: &Row,
) -> Option<LearnedKey> {
    // L1: origin of the row.
    match row.smap_get("external_ids", "lr-id") {
        Some(s) => match s.parse::<Uuid>() {
            Ok(u) if u != lr.uuid() => {}
            _ => return None,
        },
        None => {
            if row.uuid_of("availability_zone") == Some(env.ctx.az) {
                return None;
            }
        }
    }
    // L2: route tag.
    if row.smap_get("external_ids", "ic-route-tag") == Some(port.filter_tag) {
        return None;
    }
    // L3: route table.
    let rt = row.str("route_table");
    if !rt.is_empty() && rt != port.route_table {
        return None;
    }
    // L4: parse.
    let (p, nh) = (row.str("ip_prefix"), row.str("nexthop"));
    let Some(pr) = parse_route(p, nh, false) else {
        crate::vlog_rl!(BAD_RL, warn, target: "ovn_ic",
            "Bad route format in IC-SB: {} -> {}. Ignored.", p, nh);
        return None;
    };
    let nexthop = pr.nexthop?;
    // L5: learn filter.
    let ir = IsbRoute {
        ip_prefix: p,
        route_table: rt,
        origin: row.str("origin"),
        nexthop: nh,
        prefix: pr.prefix,
        plen: pr.plen,
    };
    if !need_learn(env.g, lr, f, port.lrp, port.nets.as_ref(), &ir) {
        return None;
    }
    // [REC] A next hop that is this port's own address (another AZ uses the same address on
    // the transit switch) would be a route to ourselves: a forwarding loop. Not learned.
    if port
        .nets
        .as_ref()
        .is_some_and(|n| is_own_address(n, nexthop))
    {
        crate::vlog_rl!(CLASH_RL, warn, target: "ovn_ic",
            "Route learn: not learning {} -> {} into router {}: the next hop is the router's own address on transit switch {} (address clash between availability zones).",
            p, nh, lr.str("name"), port.ts);
        return None;
    }
    Some(LearnedKey {
        prefix: pr.prefix,
        plen: pr.plen,
        nexthop,
        origin: ir.origin.to_string(),
        route_table: rt.to_string(),
        isb_uuid: row.uuid(),
        override_connected: env.has_route_options
            && smap_bool_default_false(row.smap_get("options", "override-connected")),
    })
}

/// The first of `ports` (in order) through which `row` is learned (each ISB row is learned
/// at most once per router).
pub fn accept_any(
    env: &LearnEnv,
    lr: &Row,
    f: &LearnFacts,
    ports: &[LearnPort],
    row: &Row,
) -> Option<LearnedKey> {
    let ts = row.str("transit_switch");
    ports
        .iter()
        .filter(|p| p.has_address && p.ts == ts)
        .find_map(|p| accept(env, lr, f, p, row))
}

/// L6: insert the NB route learned from `row` with `key`; returns its UUID.
pub fn insert_learned(row: &Row, key: &LearnedKey, out: &mut Out) -> Uuid {
    let mut opts = vec![("origin", key.origin.as_str())];
    if key.override_connected {
        opts.push(("override-connected", "true"));
    }
    out.nb.insert(
        "Logical_Router_Static_Route",
        vec![
            ("ip_prefix", Datum::scalar(row.str("ip_prefix"))),
            ("nexthop", Datum::scalar(row.str("nexthop"))),
            ("route_table", Datum::scalar(key.route_table.as_str())),
            (
                "external_ids",
                Datum::smap([("ic-learned-route", row.uuid().to_string())]),
            ),
            ("options", Datum::smap(opts)),
        ],
    )
}

/// The learned NB routes of one router by the ISB row they were learned from.
pub type LearnedIndex = HashMap<Uuid, Vec<(Uuid, LearnedKey)>>;

/// A.8 for one router: create the NB routes for accepted ISB rows, detach the rest. Returns
/// the router's facts and its learned routes afterwards, for the per-row path.
pub fn learn_router(
    v: &Views,
    ctx: &Ctx,
    inp: &Inputs,
    lr: &Row,
    ports: &[TsPort],
    edit: &mut StaticRoutesEdit,
    out: &mut Out,
) -> (LearnFacts, LearnedIndex) {
    let statics_rows: Vec<_> = lr
        .get("static_routes")
        .uuids()
        .filter_map(|u| v.nb.get("Logical_Router_Static_Route", u))
        .collect();
    let statics: Vec<&Row> = statics_rows.iter().map(|r| r.as_ref()).collect();
    let mut learned = collect_learned(&statics, edit);
    let facts = router_facts(v, inp, lr, &statics);
    let env = LearnEnv {
        ctx,
        g: &inp.g,
        has_route_options: inp.has_route_options,
    };
    let lports: Vec<LearnPort> = ports
        .iter()
        .map(|p| LearnPort::new(&p.pb, inp.lrp_by_name.get(&p.lrp_name).map(|r| r.as_ref())))
        .collect();
    let mut index = LearnedIndex::new();
    let mut done: BTreeSet<Uuid> = BTreeSet::new();
    for port in lports.iter().filter(|p| p.has_address) {
        for row in inp.routes_by_ts.get(port.ts).into_iter().flatten() {
            if done.contains(&row.uuid()) {
                continue;
            }
            let Some(key) = accept(&env, lr, &facts, port, row) else {
                continue;
            };
            done.insert(row.uuid());
            let nb = match learned.remove(&key) {
                Some(l) => l.uuid,
                None => {
                    let u = insert_learned(row, &key, out);
                    edit.add.push(u);
                    u
                }
            };
            index.entry(row.uuid()).or_default().push((nb, key));
        }
    }
    for l in learned.values() {
        debug!(target: "ovn_ic", "Delete route {} -> {} that is not in IC-SB from NB.", l.ip_prefix, l.nexthop);
        edit.remove.insert(l.uuid);
    }
    (facts, index)
}
