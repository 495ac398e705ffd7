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

use std::collections::BTreeMap;

use super::enum_datapaths::{
    allocate_dp_key, nb_images, used_keys_now, Datapaths, DP_TABLE, DP_TYPE_TR, LR_TR_MARKER,
    NORMAL_KEY_MAX, NORMAL_KEY_MIN,
};
use super::{Ctx, Out, Views};
use crate::ovsdb::{Datum, Uuid};

const LR: &str = "Logical_Router";
const TNL_KEY: &str = "requested-tnl-key";

/// One INB Transit_Router.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Tr {
    uuid: Uuid,
    name: String,
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
        .map(|r| Tr {
            uuid: r.uuid(),
            name: r.str("name").to_string(),
        })
        .collect();
    v.sort_by(|a, b| a.name.cmp(&b.name).then(a.uuid.cmp(&b.uuid)));
    v
}

/// Run the transit-router stage.
pub fn run(v: &Views, ctx: &Ctx, dps: &Datapaths, out: &mut Out) {
    if !supported(v) {
        return;
    }
    let trs = transit_routers(v);
    sync_nb(v, dps, &trs, out);
    if ctx.isb_leader {
        sync_isb(v, dps, &trs, out);
    }
}

fn sync_nb(v: &Views, dps: &Datapaths, trs: &[Tr], out: &mut Out) {
    // 1. NB routers with interconn-tr, keyed by that value; best candidate first.
    let mut nb_trs = nb_images(&v.nb, LR, "options", LR_TR_MARKER);

    let mut losers: Vec<Uuid> = Vec::new();
    for tr in trs {
        let key = dps.tr_datapath(tr.uuid).map(|d| d.tunnel_key.to_string());
        let mut candidates = nb_trs.remove(&tr.name).unwrap_or_default().into_iter();
        let Some(mut lr) = candidates.next() else {
            // 2. No NB image: create it (with the key if the ISB datapath is already visible).
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

    // 3. Routers whose TR is gone (their ports go with them), and losing duplicates.
    for r in nb_trs.into_values().flatten() {
        out.nb.delete(LR, r.uuid);
    }
    for u in losers {
        out.nb.delete(LR, u);
    }
}

/// ISB part (leader only).
fn sync_isb(v: &Views, dps: &Datapaths, trs: &[Tr], out: &mut Out) {
    // Used set: every ISB datapath, including keys the TS stage allocated in this run.
    let mut used = used_keys_now(&v.icsb_locked, dps);
    let mut left = dps.tr.clone();
    for tr in trs {
        if left.remove(&tr.uuid).is_some() {
            continue; // Existing rows are not modified.
        }
        // Q17: always the normal range, VXLAN mode or not.
        let Some(key) = allocate_dp_key(
            &mut used,
            NORMAL_KEY_MIN,
            NORMAL_KEY_MAX,
            "transit router datapath",
        ) else {
            continue;
        };
        out.icsb_locked.insert(
            DP_TABLE,
            vec![
                ("tunnel_key", Datum::scalar(key)),
                ("nb_ic_uuid", Datum::scalar(tr.uuid)),
                ("type", Datum::scalar(DP_TYPE_TR)),
            ],
        );
    }
    for dp in left.values().chain(dps.tr_extra.iter()) {
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
