//! Transit routers (spec ovn-ic-core.md §4.5; since 26.03).
//!
//! * NB part (every active instance): one `Logical_Router` per INB `Transit_Router`, marked
//!   `options:interconn-tr=<name>` and carrying the ISB datapath key as
//!   `options:requested-tnl-key`; routers whose TR vanished are deleted (their ports with them).
//! * ISB part (ISB leader only, locked session): one `Datapath_Binding{type=transit-router,
//!   nb_ic_uuid=<TR _uuid>}` per TR, keyed from the **normal** range even in VXLAN mode (Q17);
//!   existing rows are never modified; leftovers (vanished TRs, duplicates, rows without
//!   `nb_ic_uuid`) are deleted.
//!
//! The whole stage is skipped when IC-NB lacks `Transit_Router` or IC-SB lacks
//! `Datapath_Binding.type`/`nb_ic_uuid` (23.03-era servers, spec §6.2 rule 3).
//!
//! The ISB datapath of a TR is identified by the TR's INB UUID, its NB image by name, so a TR
//! rename re-creates the NB router but keeps the ISB datapath and key. NB routers sharing one
//! `interconn-tr` value: the one named like the TR wins, then the lowest UUID; the others are
//! deleted.

use std::collections::{BTreeMap, BTreeSet};

use super::enum_datapaths::{
    allocate_dp_key, nb_images, nb_images_of, tr_group_key, used_keys_now, Datapaths, NbImage,
    DP_TABLE, DP_TYPE_TR, LR_TR_MARKER, NORMAL_KEY_MAX, NORMAL_KEY_MIN,
};
use super::incr::{Keys, Unhandled};
use super::{Ctx, Out, Target, Views};
use crate::ovsdb::overlay::RowIntent;
use crate::ovsdb::replica::{Change, ChangeKind};
use crate::ovsdb::{Datum, Uuid};

const LR: &str = "Logical_Router";
const TNL_KEY: &str = "requested-tnl-key";

/// One INB Transit_Router.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Tr {
    uuid: Uuid,
    name: String,
}

impl Tr {
    fn of(r: &crate::ovsdb::replica::Row) -> Tr {
        Tr {
            uuid: r.uuid(),
            name: r.str("name").to_string(),
        }
    }
}

/// Whether the servers support transit routers (IC-NB `Transit_Router` and IC-SB
/// `Datapath_Binding.type`/`nb_ic_uuid`).
pub fn supported(v: &Views) -> bool {
    let isb = v.icsb_locked.replica();
    v.icnb.replica().has_table("Transit_Router")
        && isb.has_column(DP_TABLE, "type")
        && isb.has_column(DP_TABLE, "nb_ic_uuid")
}

/// INB transit routers in name order (names are unique in INB).
fn transit_routers(v: &Views) -> Vec<Tr> {
    let mut v: Vec<Tr> = v
        .icnb
        .rows("Transit_Router")
        .iter()
        .map(|r| Tr::of(r))
        .collect();
    v.sort_by(|a, b| a.name.cmp(&b.name).then(a.uuid.cmp(&b.uuid)));
    v
}

/// The INB transit routers named `name` (normally one or none), in UUID order.
fn transit_routers_named(v: &Views, name: &str) -> Vec<Tr> {
    let mut v: Vec<Tr> = v
        .icnb
        .find_by_str("Transit_Router", "name", name)
        .iter()
        .map(|r| Tr::of(r))
        .collect();
    v.sort_by_key(|t| t.uuid);
    v
}

/// Run the transit-router stage. Its units of work: the NB image of each router name (every
/// name the INB or the NB images know), and, on the leader, the ISB datapath group of each
/// `nb_ic_uuid` — those of existing routers in router-name order (the allocation order),
/// then the orphaned ones.
pub fn run(v: &Views, ctx: &Ctx, dps: &Datapaths, out: &mut Out) {
    if !supported(v) {
        return;
    }
    let trs = transit_routers(v);
    let mut by_name: BTreeMap<String, Vec<Tr>> = BTreeMap::new();
    for tr in &trs {
        by_name.entry(tr.name.clone()).or_default().push(tr.clone());
    }
    // NB routers with interconn-tr, keyed by that value; best candidate first.
    let mut images = nb_images(&v.nb, LR, "options", LR_TR_MARKER);
    let mut names: Keys = by_name.keys().cloned().collect();
    names.extend(images.keys().cloned());
    for name in &names {
        let named = by_name.remove(name).unwrap_or_default();
        let cands = images.remove(name).unwrap_or_default();
        sync_nb(dps, &named, cands, out);
    }
    if ctx.isb_leader {
        let mut orphans: BTreeSet<Option<Uuid>> = dps.tr.keys().map(|u| Some(*u)).collect();
        orphans.extend(dps.tr_extra.iter().map(|d| d.nb_ic_uuid));
        let mut used = None;
        for tr in &trs {
            orphans.remove(&Some(tr.uuid));
            sync_isb(v, dps, Some(tr.uuid), Some(tr), &mut used, out);
        }
        for g in orphans {
            sync_isb(v, dps, g, None, &mut used, out);
        }
    }
}

/// The units of work that changes to `table` of `target` touch: for IC-NB `Transit_Router`
/// the old and new names (NB images) and the router's UUID as a string (its ISB datapath
/// group); a change of anything but the name is irrelevant. IC-NB `Transit_Router_Port` is
/// not read by this stage (no keys). NB routers and ISB datapaths reach this stage through the
/// enumeration ([`keys_for_datapaths`]); anything else is [`Unhandled`].
pub fn keys_for_table(
    _v: &Views,
    _ctx: &Ctx,
    target: Target,
    table: &str,
    changes: &[Change],
) -> Result<Keys, Unhandled> {
    match (target, table) {
        (Target::IcNb, "Transit_Router") => {
            let mut keys = Keys::new();
            for c in changes {
                if c.kind == ChangeKind::Updated && !c.column_changed("name") {
                    continue;
                }
                keys.insert(tr_group_key(Some(c.uuid)));
                for r in c.old.into_iter().chain(c.new) {
                    keys.insert(r.str("name").to_string());
                }
            }
            Ok(keys)
        }
        (Target::IcNb, "Transit_Router_Port") => Ok(Keys::new()),
        _ => Err(Unhandled("not an input of the transit-router stage")),
    }
}

/// The units whose datapath group or NB image the enumeration saw change (a superset:
/// switch names in it are no-ops here). After a re-enumeration: [`Unhandled`].
pub fn keys_for_datapaths(dps: &Datapaths) -> Result<Keys, Unhandled> {
    if dps.all_changed {
        Err(Unhandled("datapaths re-enumerated"))
    } else {
        Ok(dps.changed.clone())
    }
}

/// The transit-switch stage's writes of this run (`upstream`) need no work here: this stage
/// reads them only as keys in use when it allocates, and every allocation (scoped or full)
/// takes the used keys from the whole view, which includes them. Existing router datapaths
/// are never re-keyed, and the switch stage never allocates a key in use, so nothing collides.
pub fn keys_for_stage(_v: &Views, _ctx: &Ctx, _upstream: &Out) -> Result<Keys, Unhandled> {
    Ok(Keys::new())
}

/// Redo the full run's work for `keys` (plus the units this stage already wrote for in this
/// run: `out` holds only this stage's writes of the run and is rebuilt). A key is a router
/// name (its NB image; on the leader also the datapath groups of the routers of that name), a
/// router UUID string (that datapath group, and the NB image of the router if it exists, which
/// carries the group's key), or `""` (also the rows without `nb_ic_uuid`).
pub fn run_scoped(
    v: &Views,
    ctx: &Ctx,
    dps: &Datapaths,
    keys: &Keys,
    out: &mut Out,
) -> Result<(), Unhandled> {
    if !supported(v) {
        return Ok(());
    }
    let mut all = keys.clone();
    all.extend(keys_of_out(v, out)?);
    let mut fresh = Out::default();
    // Datapath groups: of existing routers by (name, uuid) — the full run's allocation
    // order — and the orphaned ones.
    let mut routed: BTreeMap<(String, Uuid), Tr> = BTreeMap::new();
    let mut orphans: BTreeSet<Option<Uuid>> = BTreeSet::new();
    let mut group = |g: Option<Uuid>| match g.and_then(|u| v.icnb.get("Transit_Router", u)) {
        Some(r) => {
            let tr = Tr::of(&r);
            routed.insert((tr.name.clone(), tr.uuid), tr);
        }
        None => {
            orphans.insert(g);
        }
    };
    // A datapath group's router: its NB image carries the group's key.
    let owners: Vec<String> = all
        .iter()
        .filter_map(|k| k.parse::<Uuid>().ok())
        .filter_map(|u| v.icnb.get("Transit_Router", u))
        .map(|r| r.str("name").to_string())
        .collect();
    all.extend(owners);
    for key in &all {
        let named = transit_routers_named(v, key);
        let cands = nb_images_of(
            &v.nb,
            LR,
            "options",
            LR_TR_MARKER,
            key,
            dps.tr_image_rows(key),
        );
        sync_nb(dps, &named, cands, &mut fresh);
        for tr in named {
            group(Some(tr.uuid));
        }
        if key.is_empty() {
            group(None);
        } else if let Ok(u) = key.parse::<Uuid>() {
            group(Some(u));
        }
    }
    if ctx.isb_leader {
        let mut used = None;
        for tr in routed.values() {
            sync_isb(v, dps, Some(tr.uuid), Some(tr), &mut used, &mut fresh);
        }
        for g in orphans {
            sync_isb(v, dps, g, None, &mut used, &mut fresh);
        }
    }
    *out = fresh;
    Ok(())
}

/// The units this stage's intents `out` were written for.
fn keys_of_out(v: &Views, out: &Out) -> Result<Keys, Unhandled> {
    let mut keys = Keys::new();
    if !(out.sb.is_empty() && out.icnb.is_empty() && out.icsb.is_empty()) {
        return Err(Unhandled("unexpected writes of the transit-router stage"));
    }
    for (u, i) in out.nb.table(LR) {
        let key =
            crate::ic::enum_datapaths::image_marker(&v.nb, LR, "options", LR_TR_MARKER, *u, i);
        keys.insert(key.ok_or(Unhandled("earlier router write cannot be mapped"))?);
    }
    for (u, i) in out.icsb_locked.table(DP_TABLE) {
        let key = match i {
            RowIntent::Insert(cols) => cols.get("nb_ic_uuid").map(|d| tr_group_key(d.as_uuid())),
            _ => v
                .icsb_locked
                .get(DP_TABLE, *u)
                .map(|r| tr_group_key(r.uuid_of("nb_ic_uuid"))),
        };
        keys.insert(key.ok_or(Unhandled("earlier datapath write cannot be mapped"))?);
    }
    Ok(keys)
}

/// NB part for one name: `trs` the INB routers of that name (normally one or none), `cands` the
/// NB routers marked with it (best first).
fn sync_nb(dps: &Datapaths, trs: &[Tr], cands: Vec<NbImage>, out: &mut Out) {
    let mut cands = Some(cands);
    let mut losers: Vec<Uuid> = Vec::new();
    for tr in trs {
        let key = dps.tr_datapath(tr.uuid).map(|d| d.tunnel_key.to_string());
        let mut candidates = cands.take().unwrap_or_default().into_iter();
        let Some(mut lr) = candidates.next() else {
            // No NB image: create it (with the key if the ISB datapath is already visible).
            let mut options = BTreeMap::from([(LR_TR_MARKER.to_string(), tr.name.clone())]);
            if let Some(k) = key {
                options.insert(TNL_KEY.to_string(), k);
            }
            out.nb.insert(
                LR,
                vec![
                    ("name", Datum::scalar(tr.name.as_str())),
                    ("options", Datum::smap(&options)),
                ],
            );
            continue;
        };
        losers.extend(candidates.map(|r| r.uuid));
        if let Some(k) = key {
            // Write only if different (string comparison, as the IDL's no-op suppression).
            if lr.map.get(TNL_KEY) != Some(&k) {
                lr.map.insert(TNL_KEY.to_string(), k);
                out.nb
                    .update(LR, lr.uuid, vec![("options", Datum::smap(&lr.map))]);
            }
        }
    }

    // Routers whose TR is gone (their ports go with them), and losing duplicates.
    for r in cands.into_iter().flatten() {
        out.nb.delete(LR, r.uuid);
    }
    for u in losers {
        out.nb.delete(LR, u);
    }
}

/// ISB part (leader only) for the datapath group of `nb_ic_uuid` `g`, whose router is `tr`
/// (None: no such router). `used` is computed on the first allocation of the run.
fn sync_isb(
    v: &Views,
    dps: &Datapaths,
    g: Option<Uuid>,
    tr: Option<&Tr>,
    used: &mut Option<BTreeSet<i64>>,
    out: &mut Out,
) {
    let winner = g.and_then(|u| dps.tr.get(&u));
    match (tr, winner) {
        // Existing rows are not modified.
        (Some(_), Some(_)) => {}
        (Some(tr), None) => {
            // Used set: every ISB datapath, including keys the TS stage allocated in this run.
            let used = used.get_or_insert_with(|| used_keys_now(&v.icsb_locked, dps));
            // Q17: always the normal range, VXLAN mode or not.
            if let Some(key) = allocate_dp_key(
                used,
                NORMAL_KEY_MIN,
                NORMAL_KEY_MAX,
                "transit router datapath",
            ) {
                out.icsb_locked.insert(
                    DP_TABLE,
                    vec![
                        ("tunnel_key", Datum::scalar(key)),
                        ("nb_ic_uuid", Datum::scalar(tr.uuid)),
                        ("type", Datum::scalar(DP_TYPE_TR)),
                    ],
                );
            }
        }
        (None, Some(dp)) => out.icsb_locked.delete(DP_TABLE, dp.uuid),
        (None, None) => {}
    }
    // Losing duplicates (and rows without nb_ic_uuid) always go.
    for dp in dps.tr_extra.iter().filter(|d| d.nb_ic_uuid == g) {
        out.icsb_locked.delete(DP_TABLE, dp.uuid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ic::enum_datapaths::fixture::{ctx, uu, World};
    use crate::ic::enum_datapaths::logcap::capture;
    use crate::ic::testutil::u;
    use crate::ovsdb::overlay::RowIntent;
    use serde_json::{json, Value};
    use std::path::Path;

    /// Both stages in pipeline order, as the engine runs them.
    fn both(v: &Views, c: &Ctx, d: &Datapaths, out: &mut Out) {
        crate::ic::transit_switch::run(v, c, d, out);
        let ts_out = out.clone();
        let v2 = v.with(&ts_out);
        run(&v2, c, d, out);
    }

    fn routers(w: &World, committed: &Out) -> Vec<(String, BTreeMap<String, String>)> {
        let base = w.views();
        let v = base.with(committed);
        let mut r: Vec<_> =
            v.nb.rows(LR)
                .iter()
                .map(|r| {
                    let o = r
                        .get("options")
                        .smap_iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect();
                    (r.str("name").to_string(), o)
                })
                .collect();
        r.sort();
        r
    }

    /// (type, transit_switch, nb_ic_uuid, tunnel_key) of every ISB datapath.
    fn isb(w: &World, committed: &Out) -> Vec<(String, String, Option<Uuid>, i64)> {
        let base = w.views();
        let v = base.with(committed);
        let mut r: Vec<_> = v
            .icsb_locked
            .rows(DP_TABLE)
            .iter()
            .map(|r| {
                (
                    r.str("type").to_string(),
                    r.str("transit_switch").to_string(),
                    r.uuid_of("nb_ic_uuid"),
                    r.int("tunnel_key").unwrap_or(0),
                )
            })
            .collect();
        r.sort();
        r
    }

    fn opts(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// A world on the default schemas; None when they lack transit routers (the test then
    /// skips itself; `old_schema_skips_everything` covers that case).
    fn world(nb: Value, icnb: Value, icsb: Value) -> Option<World> {
        // Check on empty databases first: the fixture rows need the newer tables and columns.
        if !supported(&World::new(None, json!({}), json!({}), json!({})).views()) {
            return None;
        }
        Some(World::new(None, nb, icnb, icsb))
    }

    #[test]
    fn create_key_and_delete() {
        let Some(w) = world(
            json!({}),
            json!({"Transit_Router": {u(1): {"name": "tr1"}}}),
            json!({}),
        ) else {
            return;
        };
        let mut c = Out::default();
        let o = w.run(&mut c, &ctx(true), run);
        assert_eq!(
            routers(&w, &c),
            vec![("tr1".into(), opts(&[("interconn-tr", "tr1")]))]
        );
        assert_eq!(
            isb(&w, &c),
            vec![(
                "transit-router".into(),
                String::new(),
                Some(uu(1)),
                16711682
            )]
        );
        assert_eq!(o.icsb_locked.len(), 1);
        // Next run: key copied to NB; then stable.
        w.run(&mut c, &ctx(true), run);
        assert_eq!(
            routers(&w, &c),
            vec![(
                "tr1".into(),
                opts(&[("interconn-tr", "tr1"), ("requested-tnl-key", "16711682")])
            )]
        );
        assert!(w.run(&mut c, &ctx(true), run).is_empty());
        // tr-del: the router and the datapath go away.
        c.icnb.delete("Transit_Router", uu(1));
        let o = w.run(&mut c, &ctx(true), run);
        assert_eq!(o.nb.len(), 1);
        assert!(routers(&w, &c).is_empty());
        assert!(isb(&w, &c).is_empty());
    }

    #[test]
    fn non_leader_writes_nb_only() {
        let Some(w) = world(
            json!({}),
            json!({"Transit_Router": {u(1): {"name": "tr1"}}}),
            json!({}),
        ) else {
            return;
        };
        let mut c = Out::default();
        let o = w.run(&mut c, &ctx(false), run);
        assert!(o.icsb_locked.is_empty());
        assert_eq!(routers(&w, &c).len(), 1);
        // The leader of another AZ created the datapath: this AZ copies its key.
        c.icsb_locked.insert(
            DP_TABLE,
            vec![
                ("tunnel_key", Datum::scalar(16711700i64)),
                ("type", Datum::scalar("transit-router")),
                ("nb_ic_uuid", Datum::scalar(uu(1))),
            ],
        );
        let o = w.run(&mut c, &ctx(false), run);
        assert!(o.icsb_locked.is_empty());
        assert_eq!(
            routers(&w, &c)[0]
                .1
                .get("requested-tnl-key")
                .map(String::as_str),
            Some("16711700")
        );
    }

    /// Q17, and keys shared with the switches allocated in the same run.
    #[test]
    fn normal_range_even_in_vxlan_mode_and_no_clash_with_ts_keys() {
        let Some(w) = world(
            json!({}),
            json!({
                "IC_NB_Global": {u(50): {"options": ["map", [["vxlan_mode", "true"]]]}},
                "Transit_Switch": {u(2): {"name": "ts1"}},
                "Transit_Router": {u(1): {"name": "tr1"}, u(3): {"name": "tr2"}}
            }),
            json!({"Encap": {u(60): {"type": "vxlan", "ip": "192.168.0.2", "gateway_name": "gw2"}}}),
        ) else {
            return;
        };
        let mut c = Out::default();
        w.run(&mut c, &ctx(true), both);
        let d = isb(&w, &c);
        assert_eq!(
            d,
            vec![
                (
                    "transit-router".into(),
                    String::new(),
                    Some(uu(1)),
                    16711682
                ),
                (
                    "transit-router".into(),
                    String::new(),
                    Some(uu(3)),
                    16711683
                ),
                ("transit-switch".into(), "ts1".into(), Some(uu(2)), 1025),
            ]
        );
        // Normal mode: the TS must not reuse the routers' keys allocated in the same run.
        let Some(w) = world(
            json!({}),
            json!({"Transit_Switch": {u(2): {"name": "ts1"}}, "Transit_Router": {u(1): {"name": "tr1"}}}),
            json!({}),
        ) else {
            return;
        };
        let mut c = Out::default();
        w.run(&mut c, &ctx(true), both);
        let keys: Vec<i64> = isb(&w, &c).iter().map(|d| d.3).collect();
        assert_eq!(
            keys,
            vec![16711683, 16711682],
            "TS first in the pipeline, TR next"
        );
    }

    #[test]
    fn rename_keeps_datapath_recreates_router() {
        let Some(w) = world(
            json!({"Logical_Router": {u(10): {"name": "tr1", "options": ["map", [["interconn-tr", "tr1"], ["requested-tnl-key", "16711682"]]]}}}),
            json!({"Transit_Router": {u(1): {"name": "tr1"}}}),
            json!({"Datapath_Binding": {u(20): {"tunnel_key": 16711682, "type": "transit-router", "nb_ic_uuid": ["uuid", u(1)]}}}),
        ) else {
            return;
        };
        let mut c = Out::default();
        assert!(w.run(&mut c, &ctx(true), run).is_empty());
        c.icnb.update(
            "Transit_Router",
            uu(1),
            vec![("name", Datum::scalar("tr9"))],
        );
        let o = w.run(&mut c, &ctx(true), run);
        assert_eq!(o.nb.get(LR, uu(10)), Some(&RowIntent::Delete));
        assert!(
            o.icsb_locked.is_empty(),
            "the ISB datapath is identified by UUID and kept"
        );
        assert_eq!(
            routers(&w, &c),
            vec![(
                "tr9".into(),
                opts(&[("interconn-tr", "tr9"), ("requested-tnl-key", "16711682")])
            )]
        );
    }

    #[test]
    fn duplicates_and_orphans_are_cleaned() {
        let Some(w) = world(
            json!({"Logical_Router": {
                u(10): {"name": "x", "options": ["map", [["interconn-tr", "tr1"]]]},
                u(11): {"name": "tr1", "options": ["map", [["interconn-tr", "tr1"]]]},
                u(12): {"name": "user-router"}
            }}),
            json!({"Transit_Router": {u(1): {"name": "tr1"}}}),
            json!({"Datapath_Binding": {
                u(20): {"tunnel_key": 16711682, "type": "transit-router", "nb_ic_uuid": ["uuid", u(1)]},
                u(21): {"tunnel_key": 16711683, "type": "transit-router", "nb_ic_uuid": ["uuid", u(1)]},
                u(22): {"tunnel_key": 16711684, "type": "transit-router"},
                u(23): {"tunnel_key": 16711685, "type": "transit-router", "nb_ic_uuid": ["uuid", u(77)]},
                u(24): {"tunnel_key": 16711686, "transit_switch": "ts1"}
            }}),
        ) else {
            return;
        };
        let mut c = Out::default();
        let o = w.run(&mut c, &ctx(true), run);
        assert_eq!(o.nb.get(LR, uu(10)), Some(&RowIntent::Delete));
        assert_eq!(
            o.nb.get(LR, uu(12)),
            None,
            "routers without the marker are never touched"
        );
        let deleted: Vec<Uuid> = o
            .icsb_locked
            .table(DP_TABLE)
            .filter(|(_, i)| **i == RowIntent::Delete)
            .map(|(u, _)| *u)
            .collect();
        assert_eq!(
            deleted,
            vec![uu(21), uu(22), uu(23)],
            "the TS datapath is not this stage's business"
        );
        assert_eq!(
            routers(&w, &c)[0]
                .1
                .get("requested-tnl-key")
                .map(String::as_str),
            Some("16711682")
        );
    }

    #[test]
    fn exhaustion_skips_the_tr() {
        let Some(w) = world(
            json!({}),
            json!({"Transit_Router": {u(1): {"name": "tr1"}}}),
            json!({}),
        ) else {
            return;
        };
        // Fill the whole normal range through an intent layer (cheaper than JSON rows).
        let mut c = Out::default();
        for k in NORMAL_KEY_MIN..=NORMAL_KEY_MAX {
            c.icsb_locked.insert(
                DP_TABLE,
                vec![
                    ("tunnel_key", Datum::scalar(k)),
                    ("transit_switch", Datum::scalar(format!("x{k}"))),
                ],
            );
        }
        let (o, logs) = capture(|| w.run(&mut c, &ctx(true), run));
        assert!(o.icsb_locked.is_empty());
        assert_eq!(routers(&w, &c).len(), 1, "the NB router is still created");
        assert!(logs.contains(&(
            tracing::Level::WARN,
            "ovn_util".to_string(),
            "all transit router datapath tunnel ids exhausted".to_string()
        )));
    }

    #[test]
    fn old_schema_skips_everything() {
        let dir = Path::new("/usr/share/ovn");
        if !dir.join("ovn-ic-nb.ovsschema").exists() {
            return;
        }
        let w = World::new(
            Some(dir),
            json!({"Logical_Router": {u(10): {"name": "tr1", "options": ["map", [["interconn-tr", "tr1"]]]}}}),
            json!({"Transit_Switch": {u(2): {"name": "ts1"}}}),
            json!({}),
        );
        if supported(&w.views()) {
            return; // Not the 23.03 schemas after all.
        }
        let mut c = Out::default();
        let o = w.run(&mut c, &ctx(true), run);
        assert!(
            o.is_empty(),
            "no TR feature: the marked router is left alone"
        );
    }
}

#[cfg(test)]
mod incr_tests;
