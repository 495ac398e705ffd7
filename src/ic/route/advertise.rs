//! Advertisement: candidates per transit switch (A.7.1–A.7.4, A.7.6–A.7.8) and the own ISB
//! `Route` rows reconciled to them (A.9).

use std::collections::{BTreeMap, BTreeSet};

use tracing::{debug, warn};

use super::collect::TsPort;
use super::parse::{
    format_ip, format_prefix, lla_from_mac, parse_cidr, parse_port_addresses, parse_route,
    parse_route_lla, parse_vip, prefix_is_link_local, Ip46, PortAddrs,
};
use super::{allow_list, GlobalOpts, Inputs, RouteState};
use crate::daemon::vlog::RateLimit;
use crate::ic::util::{smap_bool_default_false, smap_bool_default_true};
use crate::ic::{Ctx, Out, Views};
use crate::ovsdb::replica::Row;
use crate::ovsdb::{Datum, Uuid};

static DUP_RL: RateLimit = RateLimit::new(5, 1);
static ADDR_RL: RateLimit = RateLimit::new(5, 1);
static VIP_RL: RateLimit = RateLimit::new(5, 1);
static BAD_RL: RateLimit = RateLimit::new(5, 1);

pub const ORIGIN_CONNECTED: &str = "connected";
pub const ORIGIN_STATIC: &str = "static";
pub const ORIGIN_LB: &str = "loadbalancer";
pub const ORIGIN_DYNAMIC: &str = "connected-dynamic";

/// Candidate identity (A.7.6).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AdKey {
    pub prefix: Ip46,
    pub plen: u32,
    pub nexthop: Ip46,
    pub origin: String,
    pub route_table: String,
    pub override_connected: bool,
}

impl AdKey {
    /// The ISB unique-index part of the identity (transit switch and AZ are implied).
    fn index(&self) -> (String, Ip46, u32, Ip46) {
        (
            self.route_table.clone(),
            self.prefix,
            self.plen,
            self.nexthop,
        )
    }
}

/// One route this AZ wants on a transit switch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub key: AdKey,
    /// NB source (`external_ids:nb-id`).
    pub nb_id: Uuid,
    /// Advertising router (`external_ids:lr-id`).
    pub lr_id: Uuid,
    /// `external_ids:ic-route-tag` ("" = none).
    pub tag: String,
    /// `route`, `lrp`, `loadbalancer` or `lr`, for the duplicate warning.
    pub kind: &'static str,
}

fn origin_rank(o: &str) -> u8 {
    match o {
        ORIGIN_STATIC => 0,
        ORIGIN_CONNECTED => 1,
        ORIGIN_DYNAMIC => 2,
        _ => 3,
    }
}

fn warn_duplicate(c: &Candidate) {
    // rate-limited upstream: 5/min burst 1
    crate::vlog_rl!(DUP_RL, warn, target: "ovn_ic",
        "Duplicate {} route advertisement was suppressed! NB {} uuid: {}",
        c.key.origin, c.kind, c.nb_id);
}

/// The candidates of one transit switch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AdSet {
    pub by_key: BTreeMap<AdKey, Candidate>,
    by_index: BTreeMap<(String, Ip46, u32, Ip46), AdKey>,
    /// ISB index tuples where a candidate was suppressed as a duplicate: removing the kept
    /// one there would need the suppressed one back, which only a rebuild knows.
    suppressed: BTreeSet<(String, Ip46, u32, Ip46)>,
}

impl AdSet {
    /// Add a candidate; duplicates (same identity, or same ISB index tuple) are suppressed with
    /// the warning. Returns whether `c` was kept.
    pub fn add(&mut self, c: Candidate) -> bool {
        let idx = c.key.index();
        if self.by_key.contains_key(&c.key) {
            warn_duplicate(&c);
            self.suppressed.insert(idx);
            return false;
        }
        if let Some(old_key) = self.by_index.get(&idx).cloned() {
            self.suppressed.insert(idx.clone());
            if origin_rank(&c.key.origin) < origin_rank(&old_key.origin) {
                if let Some(old) = self.by_key.remove(&old_key) {
                    warn_duplicate(&old);
                }
            } else {
                warn_duplicate(&c);
                return false;
            }
        }
        self.by_index.insert(idx, c.key.clone());
        self.by_key.insert(c.key.clone(), c);
        true
    }

    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    /// Whether a candidate with the ISB index tuple of `k` is kept or was suppressed here.
    pub fn collides(&self, k: &AdKey) -> bool {
        let idx = k.index();
        self.by_index.contains_key(&idx) || self.suppressed.contains(&idx)
    }

    /// Whether `c` is exactly the kept candidate of its key and nothing was suppressed at its
    /// index tuple, so that removing it leaves what a rebuild without it would build.
    pub fn removable(&self, c: &Candidate) -> bool {
        self.by_key.get(&c.key) == Some(c) && !self.suppressed.contains(&c.key.index())
    }

    /// Remove the candidate with key `k` (see [`AdSet::removable`]).
    pub fn remove(&mut self, k: &AdKey) -> Option<Candidate> {
        let c = self.by_key.remove(k)?;
        self.by_index.remove(&k.index());
        Some(c)
    }

    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    /// Whether removing `gone` and then adding `came` leaves exactly what a rebuild would: the
    /// checks of [`AdSet::removable`] and [`AdSet::collides`] on the set as it is after each
    /// step, and `others_collide` (another router's candidates on the switch) for every
    /// candidate — worked out without copying the set (a router has thousands).
    pub fn swap_is_exact(
        &self,
        gone: &[Candidate],
        came: &[Candidate],
        others_collide: impl Fn(&AdKey) -> bool,
    ) -> bool {
        let mut removed: BTreeSet<&AdKey> = BTreeSet::new();
        for c in gone {
            if removed.contains(&c.key) || !self.removable(c) || others_collide(&c.key) {
                return false;
            }
            removed.insert(&c.key);
        }
        let mut added = BTreeSet::new();
        for c in came {
            let idx = c.key.index();
            let held = self
                .by_index
                .get(&idx)
                .is_some_and(|k| !removed.contains(k));
            if held || self.suppressed.contains(&idx) || added.contains(&idx) {
                return false;
            }
            if others_collide(&c.key) {
                return false;
            }
            added.insert(idx);
        }
        true
    }
}

/// `route_need_advertise` (A.7.7).
pub fn need_advertise(
    g: &GlobalOpts,
    lr: &Row,
    ts_lrp: Option<&Row>,
    addr: Ip46,
    plen: u32,
    policy: Option<&str>,
) -> bool {
    if !g.adv || (plen == 0 && !g.adv_default) || policy == Some("src-ip") {
        return false;
    }
    if prefix_is_link_local(addr, plen) {
        return false;
    }
    let deny = g.deny_list("ic-route-deny-adv", "ic-route-deny-adv", lr, ts_lrp);
    if !deny.is_empty() && deny.matches(addr, plen) {
        return false;
    }
    let allow = allow_list("ic-route-filter-adv", "ic-route-filter-adv", lr, ts_lrp);
    allow.is_empty() || allow.matches(addr, plen)
}

/// `ic-route-ipv4-next-hop-ipv6` of a TS port: the LRP value with the router's as default.
pub fn v4_over_v6(lr: &Row, ts_lrp: Option<&Row>) -> bool {
    let lr_v = smap_bool_default_false(lr.smap_get("options", "ic-route-ipv4-next-hop-ipv6"));
    match ts_lrp {
        None => lr_v,
        Some(p) => {
            let o = p.smap_get("options", "ic-route-ipv4-next-hop-ipv6");
            if lr_v {
                smap_bool_default_true(o)
            } else {
                smap_bool_default_false(o)
            }
        }
    }
}

/// Next hop for a prefix of the given family through a TS port (A.7.8).
pub fn choose_nexthop(addrs: &PortAddrs, prefix_v4: bool, v4ov6: bool) -> Option<Ip46> {
    let v6_available = v4ov6 && !addrs.v6.is_empty();
    if prefix_v4 && !v6_available {
        return addrs.v4.first().map(|(a, _)| *a);
    }
    Some(
        addrs
            .v6
            .first()
            .map(|(a, _)| *a)
            .unwrap_or_else(|| lla_from_mac(addrs.mac)),
    )
}

/// Per-port context of candidate building.
struct PortCtx<'r> {
    lr: &'r Row,
    ts_lrp: Option<&'r Row>,
    addrs: PortAddrs,
    route_table: String,
    tag: String,
    v4ov6: bool,
    has_options: bool,
}

impl<'r> PortCtx<'r> {
    #[allow(clippy::too_many_arguments)]
    fn add(
        &self,
        set: &mut AdSet,
        inp: &Inputs,
        st: &mut RouteState,
        prefix: Ip46,
        plen: u32,
        nexthop: Ip46,
        origin: &str,
        route_table: &str,
        override_connected: bool,
        nb_id: Uuid,
        kind: &'static str,
    ) {
        if let Some(e) = &inp.origin_enum {
            if !e.contains(origin) {
                if st.warned_origins.insert(origin.to_string()) {
                    warn!(target: "ovn_ic",
                        "IC-SB Route.origin does not support \"{}\"; not advertising such routes.",
                        origin);
                }
                return;
            }
        }
        set.add(Candidate {
            key: AdKey {
                prefix,
                plen,
                nexthop,
                origin: origin.to_string(),
                route_table: route_table.to_string(),
                override_connected: override_connected && self.has_options,
            },
            nb_id,
            lr_id: self.lr.uuid(),
            tag: self.tag.clone(),
            kind,
        });
    }

    fn nexthop(&self, prefix: Ip46) -> Option<Ip46> {
        choose_nexthop(&self.addrs, prefix.is_v4(), self.v4ov6)
    }

    /// The context of a TS port with valid addresses.
    fn new(inp: &Inputs, lr: &'r Row, ts_lrp: Option<&'r Row>, addrs: PortAddrs) -> PortCtx<'r> {
        let opt = |k: &str| {
            ts_lrp
                .and_then(|p| p.smap_get("options", k))
                .unwrap_or("")
                .to_string()
        };
        PortCtx {
            lr,
            ts_lrp,
            addrs,
            route_table: opt("route_table"),
            tag: opt("ic-route-tag"),
            v4ov6: v4_over_v6(lr, ts_lrp),
            has_options: inp.has_route_options,
        }
    }

    /// A.7.1 for one static route through this port: its candidate, if advertised.
    fn static_route(&self, inp: &Inputs, st: &mut RouteState, r: &Row) -> Option<Candidate> {
        if r.smap_get("external_ids", "ic-learned-route")
            .is_some_and(|s| s.parse::<Uuid>().is_ok())
        {
            return None;
        }
        if r.str("route_table") != self.route_table {
            return None;
        }
        let pr = parse_route(r.str("ip_prefix"), r.str("nexthop"), true)?;
        let policy = r.get("policy").as_str();
        if !need_advertise(&inp.g, self.lr, self.ts_lrp, pr.prefix, pr.plen, policy) {
            return None;
        }
        let nh = self.nexthop(pr.prefix)?;
        let oc = smap_bool_default_false(r.smap_get("options", "override-connected"));
        let mut one = AdSet::default();
        self.add(
            &mut one,
            inp,
            st,
            pr.prefix,
            pr.plen,
            nh,
            ORIGIN_STATIC,
            r.str("route_table"),
            oc,
            r.uuid(),
            "route",
        );
        one.by_key.into_values().next()
    }

    /// A connected network (LRP network or SB Learned_Route prefix, A.7.2 / A.7.4).
    #[allow(clippy::too_many_arguments)]
    fn add_network(
        &self,
        set: &mut AdSet,
        inp: &Inputs,
        st: &mut RouteState,
        prefix: Ip46,
        plen: u32,
        main_origin: &str,
        nb_id: Uuid,
        kind: &'static str,
    ) {
        let Some(nh) = self.nexthop(prefix) else {
            return;
        };
        if !self.route_table.is_empty() {
            let rt = self.route_table.clone();
            self.add(
                set,
                inp,
                st,
                prefix,
                plen,
                nh,
                ORIGIN_CONNECTED,
                &rt,
                true,
                nb_id,
                kind,
            );
        }
        self.add(
            set,
            inp,
            st,
            prefix,
            plen,
            nh,
            main_origin,
            "",
            false,
            nb_id,
            kind,
        );
    }
}

/// A.7.1 for one static route `r` of router `lr` through its TS port bound by `pb` (LRP
/// `ts_lrp`): the candidate, or None (not advertised, or the port's addresses are invalid).
pub fn static_route_candidate(
    inp: &Inputs,
    st: &mut RouteState,
    lr: &Row,
    pb: &Row,
    ts_lrp: Option<&Row>,
    r: &Row,
) -> Option<Candidate> {
    let addrs = parse_port_addresses(pb.str("address"))?;
    PortCtx::new(inp, lr, ts_lrp, addrs).static_route(inp, st, r)
}

fn sorted_uuids(row: &Row, column: &str) -> Vec<Uuid> {
    let s: BTreeSet<Uuid> = row.get(column).uuids().collect();
    s.into_iter().collect()
}

/// A.7 for one router: candidates of each of its TS ports into `ads`.
pub fn build_router(
    v: &Views,
    inp: &Inputs,
    st: &mut RouteState,
    lr: &Row,
    ports: &[TsPort],
    ads: &mut BTreeMap<String, AdSet>,
) {
    let ts_lrp_names: BTreeSet<&str> = ports.iter().map(|p| p.lrp_name.as_str()).collect();
    let statics: Vec<_> = sorted_uuids(lr, "static_routes")
        .into_iter()
        .filter_map(|u| v.nb.get("Logical_Router_Static_Route", u))
        .collect();
    let lrps: Vec<_> = sorted_uuids(lr, "ports")
        .into_iter()
        .filter_map(|u| v.nb.get("Logical_Router_Port", u))
        .filter(|p| !ts_lrp_names.contains(p.str("name")))
        .collect();
    let mut lbs: Vec<Uuid> = sorted_uuids(lr, "load_balancer");
    for g in sorted_uuids(lr, "load_balancer_group") {
        if let Some(g) = v.nb.get("Load_Balancer_Group", g) {
            lbs.extend(sorted_uuids(&g, "load_balancer"));
        }
    }
    let lbs: Vec<_> = lbs
        .into_iter()
        .filter_map(|u| v.nb.get("Load_Balancer", u))
        .collect();
    let g = &inp.g;

    for port in ports {
        let ts = port.ts();
        if !inp.ts_names.contains(ts) {
            continue;
        }
        let set = ads.entry(ts.to_string()).or_default();
        let Some(addrs) = parse_port_addresses(port.pb.str("address")) else {
            // rate-limited upstream: 5/min burst 1
            crate::vlog_rl!(ADDR_RL, info, target: "ovn_ic",
                "Route sync ignores port {} on ts {} for router {} because the addresses are invalid.",
                port.lport(), ts, lr.str("name"));
            continue;
        };
        let ts_lrp = inp.lrp_by_name.get(&port.lrp_name).map(|r| r.as_ref());
        let pc = PortCtx::new(inp, lr, ts_lrp, addrs);

        // A.7.1 static routes.
        for r in &statics {
            if let Some(c) = pc.static_route(inp, st, r) {
                set.add(c);
            }
        }

        // A.7.2 connected networks.
        for p in &lrps {
            for n in p.get("networks").strs() {
                let Some((a, plen)) = parse_cidr(n) else {
                    continue;
                };
                if !need_advertise(g, lr, pc.ts_lrp, a, plen, None) {
                    debug!(target: "ovn_ic", "Route ad: skip network {} of lrp {}.", n, p.str("name"));
                    continue;
                }
                pc.add_network(set, inp, st, a, plen, ORIGIN_CONNECTED, p.uuid(), "lrp");
            }
        }

        // A.7.3 load-balancer VIPs.
        if g.adv_lb {
            for lb in &lbs {
                let Some(vips) = lb.get("vips").as_map() else {
                    continue;
                };
                for k in vips.keys().filter_map(|k| k.as_str()) {
                    let Some(a) = parse_vip(k) else {
                        crate::vlog_rl!(VIP_RL, warn, target: "ovn_ic",
                            "Route ad: Parsing failed for lb vip {}", k);
                        continue;
                    };
                    let plen = if a.is_v4() { 32 } else { 128 };
                    if !need_advertise(g, lr, pc.ts_lrp, a, plen, None) {
                        continue;
                    }
                    let Some(nh) = pc.nexthop(a) else {
                        crate::vlog_rl!(VIP_RL, warn, target: "ovn_ic",
                            "Route ad: failed to get nexthop for lb vip");
                        continue;
                    };
                    pc.add(
                        set,
                        inp,
                        st,
                        a,
                        plen,
                        nh,
                        ORIGIN_LB,
                        "",
                        false,
                        lb.uuid(),
                        "loadbalancer",
                    );
                }
            }
        }

        // A.7.4 SB Learned_Route prefixes.
        for prefix in inp.sb_learned.get(&lr.uuid()).into_iter().flatten() {
            let Some((a, plen)) = parse_cidr(prefix) else {
                continue;
            };
            if !need_advertise(g, lr, pc.ts_lrp, a, plen, None) {
                continue;
            }
            pc.add_network(set, inp, st, a, plen, ORIGIN_DYNAMIC, lr.uuid(), "lr");
        }
    }
}

/// The `external_ids` of an own ISB row for candidate `c`, from the row's current map.
pub fn synced_external_ids(current: &Datum, c: &Candidate) -> Datum {
    let mut m: BTreeMap<String, String> = current
        .smap_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    m.insert("nb-id".into(), c.nb_id.to_string());
    m.insert("lr-id".into(), c.lr_id.to_string());
    if c.tag.is_empty() {
        m.remove("ic-route-tag");
    } else {
        m.insert("ic-route-tag".into(), c.tag.clone());
    }
    Datum::smap(m)
}

/// The identity of an existing ISB row, or None (with whether it was only a link-local
/// next hop that failed `parse_route`).
pub fn row_key(row: &Row, has_options: bool) -> Option<(AdKey, bool)> {
    let (pr, lla) = parse_route_lla(row.str("ip_prefix"), row.str("nexthop"))?;
    Some((
        AdKey {
            prefix: pr.prefix,
            plen: pr.plen,
            nexthop: pr.nexthop?,
            origin: row.str("origin").to_string(),
            route_table: row.str("route_table").to_string(),
            override_connected: has_options
                && smap_bool_default_false(row.smap_get("options", "override-connected")),
        },
        lla,
    ))
}

/// A.9: reconcile the own ISB rows on `ts` with the candidates.
pub fn reconcile(ctx: &Ctx, inp: &Inputs, ts: &str, mut set: AdSet, out: &mut Out) {
    for row in inp.routes_by_ts.get(ts).into_iter().flatten() {
        if row.uuid_of("availability_zone") != Some(ctx.az) {
            continue;
        }
        let prefix = row.str("ip_prefix");
        let nexthop = row.str("nexthop");
        let found =
            row_key(row, inp.has_route_options).map(|(k, lla)| (set.by_key.remove(&k), lla));
        match found {
            None | Some((None, true)) => {
                // rate-limited upstream: 5/min burst 1
                crate::vlog_rl!(BAD_RL, warn, target: "ovn_ic",
                    "Bad route format in IC-SB: {} -> {}. Delete it.", prefix, nexthop);
                out.icsb.delete("Route", row.uuid());
            }
            Some((None, false)) => {
                debug!(target: "ovn_ic",
                    "Delete route {} -> {} from IC-SB, which is not found in local routes to be advertised.",
                    prefix, nexthop);
                out.icsb.delete("Route", row.uuid());
            }
            Some((Some(c), _)) => {
                let ids = synced_external_ids(row.get("external_ids"), &c);
                // Compared here (the output stage would drop it anyway) so that a run on a
                // converged state, e.g. our own rows coming back, has an empty output.
                if &ids != row.get("external_ids") {
                    out.icsb
                        .update("Route", row.uuid(), vec![("external_ids", ids)]);
                }
            }
        }
    }
    for c in set.by_key.into_values() {
        insert_row(ctx, inp, ts, &c, out);
    }
}

/// Insert the own ISB row of candidate `c` on `ts` (A.9).
pub fn insert_row(ctx: &Ctx, inp: &Inputs, ts: &str, c: &Candidate, out: &mut Out) {
    let mut cols = vec![
        ("transit_switch", Datum::scalar(ts)),
        ("availability_zone", Datum::scalar(ctx.az)),
        (
            "ip_prefix",
            Datum::scalar(format_prefix(c.key.prefix, c.key.plen)),
        ),
        ("nexthop", Datum::scalar(format_ip(c.key.nexthop))),
        ("origin", Datum::scalar(c.key.origin.as_str())),
        ("route_table", Datum::scalar(c.key.route_table.as_str())),
        ("external_ids", synced_external_ids(&Datum::empty_map(), c)),
    ];
    if inp.has_route_options && c.key.override_connected {
        cols.push(("options", Datum::smap([("override-connected", "true")])));
    }
    out.icsb.insert("Route", cols);
}
