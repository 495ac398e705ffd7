//! The per-route path for local static routes (spec design.md "Incremental processing").
//!
//! A local (not learned) static route added to, removed from or changed on an interconnected
//! router changes three things, each of which is redone here for that route alone instead of
//! refreshing the whole router (its candidates, its learned routes, its switches):
//! * its advertisement candidate on each TS port of the router (A.7.1), swapped in the
//!   router's kept candidate set, and the own ISB rows with that candidate's identity (A.9);
//! * the router's L5.8 facts (`(route_table, ip_prefix)` of its local routes): when a pair
//!   appears or disappears, the ISB rows with that prefix on the router's switches are
//!   re-learned ([`super::incr::relearn_router`]);
//! * the router's kept `static_routes`.
//!
//! It applies only when the result is certainly what a rebuild would give: the candidate sets
//! involved have no duplicate at the candidates' ISB index tuples (no suppressed duplicate that
//! would come back, no other router's candidate it would hide), and at most one own ISB row
//! per identity. Otherwise [`local_routes`] reports that it did nothing and the caller
//! refreshes the router.

use std::collections::BTreeSet;

use super::advertise::{self, row_key, synced_external_ids, AdKey, Candidate};
use super::incr::{relearn_router, Cache};
use super::learn::{is_local, local_key, LearnEnv};
use super::parse::{format_ip, format_prefix};
use super::{Inputs, RouteState, StaticRoutesEdit};
use crate::ic::{Ctx, Out, Views};
use crate::ovsdb::replica::Row;
use crate::ovsdb::Uuid;

/// One TS port of the router the route is advertised through.
struct Port<'a> {
    ts: String,
    pb: std::borrow::Cow<'a, Row>,
    lrp: Option<std::borrow::Cow<'a, Row>>,
}

/// The candidate changes on one transit switch.
#[derive(Default)]
struct TsPlan {
    gone: Vec<Candidate>,
    came: Vec<Candidate>,
}

/// The own ISB rows on `ts` whose identity is `k`.
fn own_rows<'a>(v: &Views<'a>, ctx: &Ctx, inp: &Inputs, ts: &str, k: &AdKey) -> Vec<Uuid> {
    v.icsb
        .find_by_str("Route", "ip_prefix", &format_prefix(k.prefix, k.plen))
        .iter()
        .filter(|r| r.str("transit_switch") == ts)
        .filter(|r| r.uuid_of("availability_zone") == Some(ctx.az))
        .filter(|r| row_key(r, inp.has_route_options).is_some_and(|(rk, _)| &rk == k))
        .map(|r| r.uuid())
        .collect()
}

/// Local static routes of router `lr_uuid` changed: `gone` are the old versions of the routes
/// removed or changed, `came` the new versions of those added or changed. Returns false when
/// the per-route path does not apply (nothing was done; refresh the router).
#[allow(clippy::too_many_arguments)]
pub fn local_routes(
    v: &Views,
    ctx: &Ctx,
    st: &mut RouteState,
    cache: &mut Cache,
    lr_uuid: Uuid,
    gone: &[Row],
    came: &[Row],
    out: &mut Out,
) -> Result<bool, super::incr::Unhandled> {
    if ctx.az != cache.az
        || !cache.learn.contains_key(&lr_uuid)
        || !gone.iter().chain(came).all(is_local)
    {
        return Ok(false);
    }
    let Some(lr) = v.nb.get("Logical_Router", lr_uuid) else {
        return Ok(false);
    };
    let inp = Inputs::base(v);
    if inp.g != cache.g {
        return Ok(false);
    }
    let mut ports = vec![];
    for p in cache.routers.get(&lr_uuid).into_iter().flatten() {
        let Some(pb) = v.icsb.get("Port_Binding", p.pb) else {
            return Ok(false);
        };
        if v.icnb
            .find_by_str("Transit_Switch", "name", &p.ts)
            .is_empty()
        {
            continue;
        }
        let lrp =
            v.nb.find_by_str("Logical_Router_Port", "name", &p.lrp_name)
                .into_iter()
                .last();
        ports.push(Port {
            ts: p.ts.clone(),
            pb,
            lrp,
        });
    }

    // Two ports on one switch share a candidate set, which the per-port plans below do not
    // model: refresh such a router.
    let tses: BTreeSet<&str> = ports.iter().map(|p| p.ts.as_str()).collect();
    if tses.len() != ports.len() {
        return Ok(false);
    }

    // Plan the candidate swaps and check that they are exact.
    let mut plans: Vec<(String, TsPlan)> = vec![];
    for port in &ports {
        let mut plan = TsPlan::default();
        for r in gone {
            let c =
                advertise::static_route_candidate(&inp, st, &lr, &port.pb, port.lrp.as_deref(), r);
            plan.gone.extend(c);
        }
        for r in came {
            let c =
                advertise::static_route_candidate(&inp, st, &lr, &port.pb, port.lrp.as_deref(), r);
            plan.came.extend(c);
        }
        plans.push((port.ts.clone(), plan));
    }
    for (ts, plan) in &plans {
        let Some(mine) = cache.ads.get(&lr_uuid).and_then(|m| m.get(ts)) else {
            return Ok(false);
        };
        let others = || {
            cache
                .ads
                .iter()
                .filter(move |(u, _)| **u != lr_uuid)
                .filter_map(move |(_, m)| m.get(ts))
        };
        if !mine.swap_is_exact(&plan.gone, &plan.came, |k| others().any(|s| s.collides(k))) {
            return Ok(false);
        }
        for c in plan.gone.iter().chain(&plan.came) {
            if own_rows(v, ctx, &inp, ts, &c.key).len() > 1 {
                return Ok(false);
            }
        }
    }

    // Advertise: swap the candidates and reconcile the own ISB rows of their identities.
    for (ts, plan) in &plans {
        let set = cache
            .ads
            .get_mut(&lr_uuid)
            .and_then(|m| m.get_mut(ts))
            .expect("checked above");
        for c in &plan.gone {
            set.remove(&c.key);
        }
        for c in &plan.came {
            set.add(c.clone());
        }
        for c in &plan.gone {
            if set.by_key.contains_key(&c.key) {
                continue;
            }
            for u in own_rows(v, ctx, &inp, ts, &c.key) {
                tracing::debug!(target: "ovn_ic",
                    "Delete route {} -> {} from IC-SB, which is not found in local routes to be advertised.",
                    format_prefix(c.key.prefix, c.key.plen), format_ip(c.key.nexthop));
                out.icsb.delete("Route", u);
            }
        }
        for c in &plan.came {
            match own_rows(v, ctx, &inp, ts, &c.key).first() {
                Some(u) => {
                    let Some(row) = v.icsb.get("Route", *u) else {
                        continue;
                    };
                    let ids = synced_external_ids(row.get("external_ids"), c);
                    if &ids != row.get("external_ids") {
                        out.icsb.update("Route", *u, vec![("external_ids", ids)]);
                    }
                }
                None => advertise::insert_row(ctx, &inp, ts, c, out),
            }
        }
    }

    // Learn: the L5.8 pairs that appeared or disappeared re-decide their ISB rows.
    let rl = cache.learn.get_mut(&lr_uuid).expect("checked above");
    let mut flipped: BTreeSet<(String, String)> = BTreeSet::new();
    for r in gone {
        let k = local_key(r);
        if let Some(n) = rl.facts.local_statics.get_mut(&k) {
            *n -= 1;
            if *n == 0 {
                rl.facts.local_statics.remove(&k);
                flipped.insert(k);
            }
        }
    }
    for r in came {
        let k = local_key(r);
        let n = rl.facts.local_statics.entry(k.clone()).or_default();
        *n += 1;
        if *n == 1 {
            if !flipped.remove(&k) {
                flipped.insert(k);
            }
        } else {
            flipped.remove(&k);
        }
    }
    let mut edit = StaticRoutesEdit::default();
    if !flipped.is_empty() {
        let tses: BTreeSet<&str> = cache
            .routers
            .get(&lr_uuid)
            .into_iter()
            .flatten()
            .map(|p| p.ts.as_str())
            .collect();
        let mut rows = BTreeSet::new();
        for (_, prefix) in &flipped {
            for r in v.icsb.find_by_str("Route", "ip_prefix", prefix) {
                if tses.contains(r.str("transit_switch")) {
                    rows.insert(r.uuid());
                }
            }
        }
        let g = cache.g.clone();
        let env = LearnEnv {
            ctx,
            g: &g,
            has_route_options: inp.has_route_options,
        };
        relearn_router(v, &env, cache, &lr, &rows, &mut edit, out)?;
    }
    edit.apply(&lr, out);
    // The operator's attach/detach (`gone`/`came` of another uuid) and our learn edit.
    let remove = gone
        .iter()
        .map(|r| r.uuid())
        .chain(edit.remove.iter().copied());
    let add = came
        .iter()
        .map(|r| r.uuid())
        .chain(edit.add.iter().copied());
    cache.statics_delta(lr_uuid, remove, add);
    Ok(true)
}
