//! Orphan cleanup of own ISB routes (A.5) and the interconnected routers (A.6).

use std::borrow::Cow;
use std::collections::BTreeMap;

use tracing::warn;

use super::parse::{lrp_networks, parse_ip};
use super::Inputs;
use crate::daemon::vlog::RateLimit;
use crate::ic::{Ctx, Out, Views};
use crate::ovsdb::replica::Row;
use crate::ovsdb::Uuid;

static ORPHAN_RL: RateLimit = RateLimit::new(5, 1);

/// One TS port of a router: its own ISB Port_Binding and the LRP its LSP names.
#[derive(Debug, Clone)]
pub struct TsPort<'a> {
    pub pb: Cow<'a, Row>,
    /// `options:router-port` of the LSP.
    pub lrp_name: String,
}

impl TsPort<'_> {
    pub fn ts(&self) -> &str {
        self.pb.str("transit_switch")
    }
    pub fn lport(&self) -> &str {
        self.pb.str("logical_port")
    }
}

/// Whether some LRP behind the NB image of `ts` owns `nexthop` (A.5).
pub fn nexthop_owned(v: &Views, inp: &Inputs, ts: &str, nexthop: &str) -> bool {
    let Some(ls) =
        v.nb.find_by_str("Logical_Switch", "name", ts)
            .into_iter()
            .find(|ls| ls.smap_get("other_config", "interconn-ts") == Some(ts))
    else {
        return false;
    };
    let Some(nh) = parse_ip(nexthop) else {
        return false;
    };
    let owned = ls.get("ports").uuids().any(|u| {
        let Some(lsp) = v.nb.get("Logical_Switch_Port", u) else {
            return false;
        };
        let Some(lrp) = lsp
            .smap_get("options", "router-port")
            .and_then(|n| inp.lrp_by_name.get(n))
        else {
            return false;
        };
        lrp_networks(lrp.str("mac"), lrp.get("networks").strs()).is_some_and(|n| n.owns_nexthop(nh))
    });
    owned
}

/// A.5: delete own ISB routes whose transit switch is gone or whose next hop no local LRP owns.
/// The deleted rows are removed from `inp.routes_by_ts`.
pub fn delete_orphans(v: &Views, ctx: &Ctx, inp: &mut Inputs, out: &mut Out) {
    let mut routes = std::mem::take(&mut inp.routes_by_ts);
    for (ts, rows) in routes.iter_mut() {
        rows.retain(|r| {
            if r.uuid_of("availability_zone") != Some(ctx.az) {
                return true;
            }
            if inp.ts_names.contains(ts) && nexthop_owned(v, inp, ts, r.str("nexthop")) {
                return true;
            }
            crate::vlog_rl!(ORPHAN_RL, info, target: "ovn_ic",
                "Deleting orphan ICDB:Route: {}->{} ({}, rtb:{}, transit switch: {})",
                r.str("ip_prefix"), r.str("nexthop"), r.str("origin"), r.str("route_table"), ts);
            out.icsb.delete("Route", r.uuid());
            false
        });
    }
    inp.routes_by_ts = routes;
}

/// A.6: the routers of this AZ attached to a transit switch, with their TS ports, by router
/// UUID. Port bindings of a router port whose LSP lost `router-port` are deleted when their
/// `type` is absent.
pub fn routers<'a>(
    v: &Views<'a>,
    ctx: &Ctx,
    inp: &Inputs,
    out: &mut Out,
) -> BTreeMap<Uuid, Vec<TsPort<'a>>> {
    let mut res: BTreeMap<Uuid, Vec<TsPort<'a>>> = BTreeMap::new();
    for pb in v.icsb.rows("Port_Binding") {
        if pb.uuid_of("availability_zone") != Some(ctx.az) {
            continue;
        }
        let ty = pb.str("type");
        if ty == crate::ic::port_binding::TYPE_TR_PORT {
            continue;
        }
        let lp = pb.str("logical_port");
        let Some(lsp) = inp.lsp_by_name.get(lp) else {
            continue;
        };
        if matches!(lsp.str("type"), "switch" | "") {
            continue;
        }
        let Some(lrp_name) = lsp.smap_get("options", "router-port") else {
            if ty != crate::ic::port_binding::TYPE_TS_PORT {
                warn!(target: "ovn_ic",
                    "Route sync ignores port {} on ts {} because logical router port is not found in NB. Deleting it",
                    lp, pb.str("transit_switch"));
                out.icsb.delete("Port_Binding", pb.uuid());
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
        let lrp_name = lrp_name.to_string();
        res.entry(lr_uuid)
            .or_default()
            .push(TsPort { pb, lrp_name });
    }
    res
}
