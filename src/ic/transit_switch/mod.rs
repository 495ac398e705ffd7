//! Transit switches (spec ovn-ic-core.md §4.4).
//!
//! * NB part (every active instance): one `Logical_Switch` per INB `Transit_Switch`, marked
//!   `other_config:interconn-ts=<name>` and `ic-vxlan_mode=<true|false>`, carrying the ISB
//!   datapath key as `other_config:requested-tnl-key`; switches whose TS vanished are deleted.
//! * ISB part (ISB leader only, locked session): one `Datapath_Binding` per TS with a key from
//!   the active range; `type`/`nb_ic_uuid` back-filled where the server has those columns;
//!   datapaths of vanished TSs (and duplicate rows) are deleted.
//!
//! Re-keying (quirk Q5, recommended fix): upstream re-keys every TS only in a run where *this*
//! instance flipped an NB `ic-vxlan_mode` flag while also being the leader, so a mode change can
//! be missed for good. Here the leader re-keys, on every run, each TS whose key lies outside the
//! active range (normal 16711681…16777215, VXLAN 1024…4095). The two ranges are disjoint, so
//! this covers every case in which upstream's flag-driven refresh changes anything, and it never
//! churns keys that already fit. The NB flag change is still detected and written; it only no
//! longer drives the ISB side.
//!
//! NB switches sharing one `interconn-ts` value: the one whose `name` equals the TS name wins
//! (the port stage looks switches up by name), then the lowest UUID; the others are deleted as
//! upstream's find-and-delete + "delete the rest" does.

use std::collections::{BTreeMap, BTreeSet};

use super::enum_datapaths::{
    allocate_dp_key, nb_images, nb_images_of, used_keys_now, Datapaths, NbImage, DP_TABLE,
    DP_TYPE_TS, LS_TS_MARKER,
};
use super::incr::{Keys, Unhandled};
use super::util::{smap_bool_default_false, smap_int};
use super::{Ctx, Out, Target, Views};
use crate::ovsdb::overlay::RowIntent;
use crate::ovsdb::replica::{Change, ChangeKind};
use crate::ovsdb::{Datum, Uuid};

const LS: &str = "Logical_Switch";
const VXLAN_KEY: &str = "ic-vxlan_mode";
const TNL_KEY: &str = "requested-tnl-key";

/// One INB Transit_Switch.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Ts {
    uuid: Uuid,
    name: String,
}

/// INB transit switches in name order (names are unique in INB), deterministic across runs.
fn transit_switches(v: &Views) -> Vec<Ts> {
    let mut v: Vec<Ts> = v
        .icnb
        .rows("Transit_Switch")
        .iter()
        .map(|r| Ts {
            uuid: r.uuid(),
            name: r.str("name").to_string(),
        })
        .collect();
    v.sort_by(|a, b| a.name.cmp(&b.name).then(a.uuid.cmp(&b.uuid)));
    v
}

/// The INB transit switches named `name` (one, or none; in UUID order).
fn transit_switches_named(v: &Views, name: &str) -> Vec<Ts> {
    let mut v: Vec<Ts> = v
        .icnb
        .find_by_str("Transit_Switch", "name", name)
        .iter()
        .map(|r| Ts {
            uuid: r.uuid(),
            name: r.str("name").to_string(),
        })
        .collect();
    v.sort_by_key(|t| t.uuid);
    v
}

fn bool_str(b: bool) -> &'static str {
    if b {
        "true"
    } else {
        "false"
    }
}

/// Run the transit-switch stage: every transit-switch name the INB, the NB images or the ISB
/// datapaths know, in name order (the order keys are allocated in), through [`sync_key`].
pub fn run(v: &Views, ctx: &Ctx, dps: &Datapaths, out: &mut Out) {
    let mut by_name: BTreeMap<String, Vec<Ts>> = BTreeMap::new();
    for ts in transit_switches(v) {
        by_name.entry(ts.name.clone()).or_default().push(ts);
    }
    // NB switches with interconn-ts, keyed by that value; best candidate first.
    let mut images = nb_images(&v.nb, LS, "other_config", LS_TS_MARKER);
    let mut keys: Keys = by_name.keys().cloned().collect();
    keys.extend(images.keys().cloned());
    keys.extend(dps.ts.keys().cloned());
    keys.extend(dps.ts_extra.iter().map(|d| d.transit_switch.clone()));
    let mut used = None;
    for key in &keys {
        let tses = by_name.remove(key).unwrap_or_default();
        let cands = images.remove(key).unwrap_or_default();
        sync_key(v, ctx, dps, key, &tses, cands, &mut used, out);
    }
}

/// The transit switches that changes to `table` of `target` touch (old and new names).
/// Handled inputs: IC-NB `Transit_Switch` (a change of anything but the name is irrelevant)
/// and IC-NB `IC_NB_Global` (read only through [`Datapaths::vxlan_mode`], whose change the
/// datapath enumeration reports). NB switches and ISB datapaths reach this stage through the
/// enumeration ([`keys_for_datapaths`]); anything else is [`Unhandled`].
pub fn keys_for_table(
    _v: &Views,
    _ctx: &Ctx,
    target: Target,
    table: &str,
    changes: &[Change],
) -> Result<Keys, Unhandled> {
    match (target, table) {
        (Target::IcNb, "Transit_Switch") => Ok(changes
            .iter()
            .filter(|c| c.kind != ChangeKind::Updated || c.column_changed("name"))
            .flat_map(|c| c.old.into_iter().chain(c.new))
            .map(|r| r.str("name").to_string())
            .collect()),
        (Target::IcNb, "IC_NB_Global") => Ok(Keys::new()),
        _ => Err(Unhandled("not an input of the transit-switch stage")),
    }
}

/// The transit switches whose datapath group or NB image the enumeration saw change (a
/// superset: router keys in it are no-ops here). After a re-enumeration: [`Unhandled`].
pub fn keys_for_datapaths(dps: &Datapaths) -> Result<Keys, Unhandled> {
    if dps.all_changed {
        Err(Unhandled("datapaths re-enumerated"))
    } else {
        Ok(dps.changed.clone())
    }
}

/// Redo the full run's work for the transit switches `keys` (plus those this stage already
/// wrote for in this run: `out` holds only this stage's writes of the run and is rebuilt, so
/// calling this several times in a run never writes anything twice).
pub fn run_scoped(
    v: &Views,
    ctx: &Ctx,
    dps: &Datapaths,
    keys: &Keys,
    out: &mut Out,
) -> Result<(), Unhandled> {
    let mut all = keys.clone();
    all.extend(keys_of_out(v, out)?);
    // A datapath that went away (or a change of a switch still without one) may have freed a
    // key a switch is waiting for since the key space ran out: retry every switch without a
    // datapath. Only such changes pay for the scan of the IC-NB switches.
    if ctx.isb_leader && keys.iter().any(|k| dps.ts_datapath(k).is_none()) {
        all.extend(
            v.icnb
                .rows("Transit_Switch")
                .iter()
                .map(|r| r.str("name"))
                .filter(|n| dps.ts_datapath(n).is_none())
                .map(str::to_string),
        );
    }
    let mut fresh = Out::default();
    let mut used = None;
    for key in &all {
        let tses = transit_switches_named(v, key);
        let cands = nb_images_of(
            &v.nb,
            LS,
            "other_config",
            LS_TS_MARKER,
            key,
            dps.ts_image_rows(key),
        );
        sync_key(v, ctx, dps, key, &tses, cands, &mut used, &mut fresh);
    }
    *out = fresh;
    Ok(())
}

/// The transit switches this stage's intents `out` were written for.
fn keys_of_out(v: &Views, out: &Out) -> Result<Keys, Unhandled> {
    let mut keys = Keys::new();
    if !(out.sb.is_empty() && out.icnb.is_empty() && out.icsb.is_empty()) {
        return Err(Unhandled("unexpected writes of the transit-switch stage"));
    }
    for (u, i) in out.nb.table(LS) {
        let key =
            crate::ic::enum_datapaths::image_marker(&v.nb, LS, "other_config", LS_TS_MARKER, *u, i);
        keys.insert(key.ok_or(Unhandled("earlier switch write cannot be mapped"))?);
    }
    for (u, i) in out.icsb_locked.table(DP_TABLE) {
        let key = match i {
            RowIntent::Insert(cols) => cols
                .get("transit_switch")
                .and_then(|d| d.as_str())
                .map(str::to_string),
            _ => v
                .icsb_locked
                .get(DP_TABLE, *u)
                .map(|r| r.str("transit_switch").to_string()),
        };
        keys.insert(key.ok_or(Unhandled("earlier datapath write cannot be mapped"))?);
    }
    Ok(keys)
}

/// Everything the stage does for the transit-switch name `name`: `tses` are the INB switches of
/// that name (normally one or none), `cands` the NB switches marked with it (best first).
#[allow(clippy::too_many_arguments)]
fn sync_key(
    v: &Views,
    ctx: &Ctx,
    dps: &Datapaths,
    name: &str,
    tses: &[Ts],
    cands: Vec<NbImage>,
    used: &mut Option<BTreeSet<i64>>,
    out: &mut Out,
) {
    sync_nb(dps, tses, cands, out);
    if ctx.isb_leader {
        sync_isb(v, dps, name, tses, used, out);
    }
}

/// NB part. Upstream also derives its "key refresh needed" flag here; with the Q5 fix that flag
/// has no effect (see the module documentation), so it is not computed.
fn sync_nb(dps: &Datapaths, tses: &[Ts], cands: Vec<NbImage>, out: &mut Out) {
    let mut cands = Some(cands);
    let mut losers: Vec<Uuid> = Vec::new();
    for ts in tses {
        let dp_key = dps.ts_datapath(&ts.name).map(|d| d.tunnel_key);
        let mut candidates = cands.take().unwrap_or_default().into_iter();
        let Some(mut sw) = candidates.next() else {
            // No NB image: create it (the key only if the ISB datapath is already visible).
            let mut oc = BTreeMap::from([
                (LS_TS_MARKER.to_string(), ts.name.clone()),
                (VXLAN_KEY.to_string(), bool_str(dps.vxlan_mode).to_string()),
            ]);
            if let Some(k) = dp_key {
                log_key(k, &ts.name);
                oc.insert(TNL_KEY.to_string(), k.to_string());
            }
            out.nb.insert(
                LS,
                vec![
                    ("name", Datum::scalar(ts.name.as_str())),
                    ("other_config", Datum::smap(&oc)),
                ],
            );
            continue;
        };
        losers.extend(candidates.map(|s| s.uuid));

        let mut changed = false;
        if smap_bool_default_false(sw.map.get(VXLAN_KEY).map(String::as_str)) != dps.vxlan_mode {
            sw.map
                .insert(VXLAN_KEY.to_string(), bool_str(dps.vxlan_mode).to_string());
            changed = true;
        }
        if let Some(k) = dp_key {
            if smap_int(sw.map.get(TNL_KEY).map(String::as_str), 0) != k {
                log_key(k, &ts.name);
                sw.map.insert(TNL_KEY.to_string(), k.to_string());
                changed = true;
            }
        }
        if changed {
            out.nb
                .update(LS, sw.uuid, vec![("other_config", Datum::smap(&sw.map))]);
        }
    }

    // Switches whose TS is gone (their ports go with them), and losing duplicates.
    for sw in cands.into_iter().flatten() {
        out.nb.delete(LS, sw.uuid);
    }
    for u in losers {
        out.nb.delete(LS, u);
    }
}

fn log_key(k: i64, ts: &str) {
    tracing::debug!(target: "ovn_ic", "Set other_config:requested-tnl-key {} for transit switch {} in NB.", k, ts);
}

/// ISB part (leader only): datapath rows, keys, back-fill, deletion. `used` is the set of keys
/// in use, computed on the first allocation of the run.
fn sync_isb(
    v: &Views,
    dps: &Datapaths,
    name: &str,
    tses: &[Ts],
    used: &mut Option<BTreeSet<i64>>,
    out: &mut Out,
) {
    let isb = &v.icsb_locked;
    let has_type = isb.replica().has_column(DP_TABLE, "type");
    let has_nb_ic_uuid = isb.replica().has_column(DP_TABLE, "nb_ic_uuid");
    let (min, max) = dps.ts_key_range();
    let mut allocate = || {
        let used = used.get_or_insert_with(|| used_keys_now(isb, dps));
        allocate_dp_key(used, min, max, "transit switch datapath")
    };
    let mut left = dps.ts.get(name).cloned();

    for ts in tses {
        let mut cols: Vec<(&str, Datum)> = Vec::new();
        match left.take() {
            None => {
                let Some(key) = allocate() else {
                    continue;
                };
                cols.push(("transit_switch", Datum::scalar(ts.name.as_str())));
                cols.push(("tunnel_key", Datum::scalar(key)));
                if has_type {
                    cols.push(("type", Datum::scalar(DP_TYPE_TS)));
                }
                if has_nb_ic_uuid {
                    cols.push(("nb_ic_uuid", Datum::scalar(ts.uuid)));
                }
                out.icsb_locked.insert(DP_TABLE, cols);
            }
            Some(dp) => {
                // Q5 fix: re-key whenever the key is outside the active range.
                if !(min..=max).contains(&dp.tunnel_key) {
                    if let Some(key) = allocate() {
                        cols.push(("tunnel_key", Datum::scalar(key)));
                    }
                }
                // Back-fill rows of older versions; existing values are never changed.
                if has_type && dp.dp_type.is_empty() {
                    cols.push(("type", Datum::scalar(DP_TYPE_TS)));
                }
                if has_nb_ic_uuid && dp.nb_ic_uuid.is_none() {
                    cols.push(("nb_ic_uuid", Datum::scalar(ts.uuid)));
                }
                if !cols.is_empty() {
                    out.icsb_locked.update(DP_TABLE, dp.uuid, cols);
                }
            }
        }
    }

    // The datapath of a vanished TS, and duplicate rows.
    let extra = dps.ts_extra.iter().filter(|d| d.transit_switch == name);
    for dp in left.iter().chain(extra) {
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

    /// (name, other_config) of the NB switches, as the committed state shows them.
    fn nb_switches(w: &World, committed: &Out) -> Vec<(String, BTreeMap<String, String>)> {
        let base = w.views();
        let v = base.with(committed);
        let mut r: Vec<_> =
            v.nb.rows(LS)
                .iter()
                .map(|r| {
                    let oc = r
                        .get("other_config")
                        .smap_iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect();
                    (r.str("name").to_string(), oc)
                })
                .collect();
        r.sort();
        r
    }

    /// (transit_switch, tunnel_key, type, nb_ic_uuid) of the ISB datapaths.
    fn isb_dps(w: &World, committed: &Out) -> Vec<(String, i64, String, Option<Uuid>)> {
        let base = w.views();
        let v = base.with(committed);
        let mut r: Vec<_> = v
            .icsb_locked
            .rows(DP_TABLE)
            .iter()
            .map(|r| {
                (
                    r.str("transit_switch").to_string(),
                    r.int("tunnel_key").unwrap_or(0),
                    r.str("type").to_string(),
                    r.uuid_of("nb_ic_uuid"),
                )
            })
            .collect();
        r.sort();
        r
    }

    fn oc(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn tses(names: &[(u32, &str)]) -> Value {
        let m: serde_json::Map<String, Value> = names
            .iter()
            .map(|(n, name)| (u(*n), json!({ "name": name })))
            .collect();
        json!({ "Transit_Switch": m })
    }

    fn typed(w: &World) -> bool {
        w.icsb.has_column(DP_TABLE, "type")
    }

    /// Runs until nothing changes any more (at most 5 runs).
    fn settle(w: &World, committed: &mut Out, leader: bool) {
        for _ in 0..5 {
            if w.run(committed, &ctx(leader), run).is_empty() {
                return;
            }
        }
        panic!("no fixpoint after 5 runs");
    }

    #[test]
    fn create_with_keys_and_sync_to_nb() {
        let w = World::new(None, json!({}), tses(&[(1, "ts1"), (2, "ts2")]), json!({}));
        let mut c = Out::default();
        let first = w.run(&mut c, &ctx(true), run);
        // First run: NB switches without key (not yet in ISB), ISB datapaths with fresh keys.
        assert_eq!(
            nb_switches(&w, &c),
            vec![
                (
                    "ts1".into(),
                    oc(&[("ic-vxlan_mode", "false"), ("interconn-ts", "ts1")])
                ),
                (
                    "ts2".into(),
                    oc(&[("ic-vxlan_mode", "false"), ("interconn-ts", "ts2")])
                ),
            ]
        );
        let t = |s: &str| {
            if typed(&w) {
                s.to_string()
            } else {
                String::new()
            }
        };
        let n = |x: u32| if typed(&w) { Some(uu(x)) } else { None };
        assert_eq!(
            isb_dps(&w, &c),
            vec![
                ("ts1".into(), 16711682, t("transit-switch"), n(1)),
                ("ts2".into(), 16711683, t("transit-switch"), n(2))
            ]
        );
        assert_eq!(first.icsb_locked.len(), 2);
        // Second run copies the keys to NB (DBG once per switch).
        let (_, logs) = capture(|| w.run(&mut c, &ctx(true), run));
        let dbg: Vec<&str> = logs
            .iter()
            .filter(|l| l.0 == tracing::Level::DEBUG && l.1 == "ovn_ic")
            .map(|l| l.2.as_str())
            .collect();
        assert_eq!(
            dbg,
            vec![
                "Set other_config:requested-tnl-key 16711682 for transit switch ts1 in NB.",
                "Set other_config:requested-tnl-key 16711683 for transit switch ts2 in NB.",
            ]
        );
        let sw = nb_switches(&w, &c);
        assert_eq!(
            sw[0].1.get("requested-tnl-key").map(String::as_str),
            Some("16711682")
        );
        assert_eq!(
            sw[1].1.get("requested-tnl-key").map(String::as_str),
            Some("16711683")
        );
        // Third run: nothing to do, nothing logged.
        let (o, logs) = capture(|| w.run(&mut c, &ctx(true), run));
        assert!(o.is_empty());
        assert!(logs.is_empty(), "{logs:?}");
    }

    #[test]
    fn non_leader_writes_nb_only() {
        let w = World::new(None, json!({}), tses(&[(1, "ts1")]), json!({}));
        let mut c = Out::default();
        let o = w.run(&mut c, &ctx(false), run);
        assert!(o.icsb_locked.is_empty() && o.icsb.is_empty());
        assert_eq!(o.nb.len(), 1);
        assert!(isb_dps(&w, &c).is_empty());
        // A datapath created by another AZ's leader is copied to NB by the non-leader.
        c.icsb_locked.insert(
            DP_TABLE,
            vec![
                ("transit_switch", Datum::scalar("ts1")),
                ("tunnel_key", Datum::scalar(16711700i64)),
            ],
        );
        let o = w.run(&mut c, &ctx(false), run);
        assert!(o.icsb_locked.is_empty());
        assert_eq!(
            nb_switches(&w, &c)[0]
                .1
                .get("requested-tnl-key")
                .map(String::as_str),
            Some("16711700")
        );
    }

    #[test]
    fn new_switch_gets_key_of_existing_datapath() {
        let w = World::new(
            None,
            json!({}),
            tses(&[(1, "ts1")]),
            json!({"Datapath_Binding": {u(9): {"transit_switch": "ts1", "tunnel_key": 16711690}}}),
        );
        let mut c = Out::default();
        w.run(&mut c, &ctx(false), run);
        assert_eq!(
            nb_switches(&w, &c),
            vec![(
                "ts1".into(),
                oc(&[
                    ("ic-vxlan_mode", "false"),
                    ("interconn-ts", "ts1"),
                    ("requested-tnl-key", "16711690")
                ])
            )]
        );
    }

    /// Appendix B `VXLAN tunnel key`: 16711682 ↔ 1025 following `options:vxlan_mode`.
    #[test]
    fn vxlan_tunnel_key() {
        let mut icnb = tses(&[(1, "ts1")]);
        icnb["IC_NB_Global"] = json!({ u(50): {} });
        let w = World::new(
            None,
            json!({}),
            icnb,
            json!({"Encap": {u(60): {"type": "vxlan", "ip": "192.168.0.2", "gateway_name": "gw2"}}}),
        );
        let mut c = Out::default();
        settle(&w, &mut c, true);
        let want = |mode: &str, key: &str| {
            vec![(
                "ts1".to_string(),
                oc(&[
                    ("ic-vxlan_mode", mode),
                    ("interconn-ts", "ts1"),
                    ("requested-tnl-key", key),
                ]),
            )]
        };
        assert_eq!(nb_switches(&w, &c), want("false", "16711682"));

        c.icnb.update(
            "IC_NB_Global",
            uu(50),
            vec![("options", Datum::smap([("vxlan_mode", "true")]))],
        );
        settle(&w, &mut c, true);
        assert_eq!(nb_switches(&w, &c), want("true", "1025"));
        assert_eq!(isb_dps(&w, &c)[0].1, 1025);

        c.icnb.update(
            "IC_NB_Global",
            uu(50),
            vec![("options", Datum::smap([("vxlan_mode", "false")]))],
        );
        settle(&w, &mut c, true);
        assert_eq!(nb_switches(&w, &c), want("false", "16711682"));
    }

    /// Q5 fix: the leader re-keys even when its own NB flag is already right (another AZ or an
    /// earlier non-leader run flipped it), and does not churn keys that fit the range.
    #[test]
    fn rekey_outside_range_without_flag_flip() {
        let mut icnb = tses(&[(1, "ts1"), (2, "ts2")]);
        icnb["IC_NB_Global"] = json!({ u(50): {"options": ["map", [["vxlan_mode", "true"]]]} });
        let w = World::new(
            None,
            json!({"Logical_Switch": {
                u(10): {"name": "ts1", "other_config": ["map", [["interconn-ts", "ts1"], ["ic-vxlan_mode", "true"]]]},
                u(11): {"name": "ts2", "other_config": ["map", [["interconn-ts", "ts2"], ["ic-vxlan_mode", "true"]]]}
            }}),
            icnb,
            json!({
                "Encap": {u(60): {"type": "vxlan", "ip": "192.168.0.2", "gateway_name": "gw2"}},
                "Datapath_Binding": {
                    u(20): {"transit_switch": "ts1", "tunnel_key": 16711682},
                    u(21): {"transit_switch": "ts2", "tunnel_key": 1030}
                }
            }),
        );
        let mut c = Out::default();
        let o = w.run(&mut c, &ctx(true), run);
        let rekeyed: Vec<_> = o
            .icsb_locked
            .table(DP_TABLE)
            .filter_map(|(u, i)| match i {
                RowIntent::Update(m) => m.get("tunnel_key").map(|k| (*u, k.as_int())),
                _ => None,
            })
            .collect();
        assert_eq!(
            rekeyed,
            vec![(uu(20), Some(1025))],
            "only the out-of-range key moves"
        );
        let nb_ops: Vec<_> = o.nb.table(LS).collect();
        // NB gets the current (pre-rekey) keys for both: they are what ISB holds now.
        assert_eq!(nb_ops.len(), 2);
    }

    #[test]
    fn keys_are_reused_lowest_free_above_min() {
        let w = World::new(
            None,
            json!({}),
            tses(&[(1, "ts1"), (2, "ts2"), (3, "ts3")]),
            json!({"Datapath_Binding": {
                u(20): {"transit_switch": "ts1", "tunnel_key": 16711682},
                u(21): {"transit_switch": "ts3", "tunnel_key": 16711684},
                u(22): {"transit_switch": "gone", "tunnel_key": 16711683}
            }}),
        );
        let mut c = Out::default();
        w.run(&mut c, &ctx(true), run);
        // `gone` is deleted, but its key stays used for this run: ts2 gets 16711685.
        let d = isb_dps(&w, &c);
        assert_eq!(
            d.iter().map(|x| (x.0.as_str(), x.1)).collect::<Vec<_>>(),
            vec![("ts1", 16711682), ("ts2", 16711685), ("ts3", 16711684)]
        );
        // Next run a new TS takes the freed 16711683.
        c.icnb
            .insert("Transit_Switch", vec![("name", Datum::scalar("ts4"))]);
        w.run(&mut c, &ctx(true), run);
        assert!(isb_dps(&w, &c)
            .iter()
            .any(|x| x.0 == "ts4" && x.1 == 16711683));
    }

    #[test]
    fn ts_deletion_removes_switch_and_datapath() {
        let w = World::new(None, json!({}), tses(&[(1, "ts1"), (2, "ts2")]), json!({}));
        let mut c = Out::default();
        settle(&w, &mut c, true);
        assert_eq!(nb_switches(&w, &c).len(), 2);
        c.icnb.delete("Transit_Switch", uu(1));
        // A non-leader deletes only its NB switch.
        let o = w.run(&mut c.clone(), &ctx(false), run);
        assert_eq!(o.nb.len(), 1);
        assert!(o.icsb_locked.is_empty());
        // The leader also deletes the datapath.
        settle(&w, &mut c, true);
        assert_eq!(
            nb_switches(&w, &c)
                .iter()
                .map(|s| s.0.as_str())
                .collect::<Vec<_>>(),
            vec!["ts2"]
        );
        assert_eq!(
            isb_dps(&w, &c)
                .iter()
                .map(|s| s.0.as_str())
                .collect::<Vec<_>>(),
            vec!["ts2"]
        );
    }

    #[test]
    fn user_switch_with_same_name_is_ignored() {
        let w = World::new(
            None,
            json!({"Logical_Switch": {u(10): {"name": "ts1"}}}),
            tses(&[(1, "ts1")]),
            json!({}),
        );
        let mut c = Out::default();
        let o = w.run(&mut c, &ctx(false), run);
        assert!(o.nb.get(LS, uu(10)).is_none());
        assert_eq!(nb_switches(&w, &c).len(), 2);
    }

    #[test]
    fn duplicates_do_not_crash_and_are_cleaned() {
        let w = World::new(
            None,
            json!({"Logical_Switch": {
                u(10): {"name": "other", "other_config": ["map", [["interconn-ts", "ts1"]]]},
                u(11): {"name": "ts1", "other_config": ["map", [["interconn-ts", "ts1"], ["ic-vxlan_mode", "false"]]]}
            }}),
            tses(&[(1, "ts1")]),
            json!({"Datapath_Binding": {
                u(30): {"transit_switch": "ts1", "tunnel_key": 16711690},
                u(20): {"transit_switch": "ts1", "tunnel_key": 16711685}
            }}),
        );
        let mut c = Out::default();
        let o = w.run(&mut c, &ctx(true), run);
        // NB: the switch named like the TS wins, the other is deleted; the key of the winning
        // (lowest-UUID) datapath is requested.
        assert_eq!(o.nb.get(LS, uu(10)), Some(&RowIntent::Delete));
        assert_eq!(
            nb_switches(&w, &c),
            vec![(
                "ts1".into(),
                oc(&[
                    ("ic-vxlan_mode", "false"),
                    ("interconn-ts", "ts1"),
                    ("requested-tnl-key", "16711685")
                ])
            )]
        );
        // ISB: the duplicate datapath is deleted.
        assert_eq!(
            o.icsb_locked.get(DP_TABLE, uu(30)),
            Some(&RowIntent::Delete)
        );
        assert_eq!(
            isb_dps(&w, &c).iter().map(|d| d.1).collect::<Vec<_>>(),
            vec![16711685]
        );
    }

    #[test]
    fn backfill_only_empty_columns() {
        let w = World::new(
            None,
            json!({}),
            tses(&[(1, "ts1"), (2, "ts2")]),
            json!({"Datapath_Binding": {
                u(20): {"transit_switch": "ts1", "tunnel_key": 16711682},
                u(21): {"transit_switch": "ts2", "tunnel_key": 16711683}
            }}),
        );
        let mut c = Out::default();
        if typed(&w) {
            // ts2's row already names some other (stale) TS uuid: it is kept.
            c.icsb_locked.update(
                DP_TABLE,
                uu(21),
                vec![
                    ("type", Datum::scalar("transit-switch")),
                    ("nb_ic_uuid", Datum::scalar(uu(99))),
                ],
            );
        }
        let o = w.run(&mut c, &ctx(true), run);
        if typed(&w) {
            assert_eq!(
                o.icsb_locked.get(DP_TABLE, uu(20)),
                Some(&RowIntent::Update(BTreeMap::from([
                    ("nb_ic_uuid".to_string(), Datum::scalar(uu(1))),
                    ("type".to_string(), Datum::scalar("transit-switch")),
                ])))
            );
            assert_eq!(o.icsb_locked.get(DP_TABLE, uu(21)), None);
        } else {
            assert!(
                o.icsb_locked.is_empty(),
                "nothing to back-fill on a server without the columns"
            );
        }
    }

    #[test]
    fn exhaustion_skips_the_ts() {
        // VXLAN range full except nothing: 3072 keys taken by other switches.
        let mut dps = serde_json::Map::new();
        for (i, k) in (1024..=4095).enumerate() {
            dps.insert(
                u(1000 + i as u32),
                json!({"transit_switch": format!("x{k}"), "tunnel_key": k}),
            );
        }
        let mut icnb = tses(&[(1, "new")]);
        for k in 1024..=4095u32 {
            icnb["Transit_Switch"][u(100_000 + k)] = json!({ "name": format!("x{k}") });
        }
        icnb["IC_NB_Global"] = json!({ u(50): {"options": ["map", [["vxlan_mode", "true"]]]} });
        let w = World::new(
            None,
            json!({}),
            icnb,
            json!({"Datapath_Binding": dps, "Encap": {u(60): {"type": "vxlan", "ip": "10.0.0.1", "gateway_name": "g"}}}),
        );
        let mut c = Out::default();
        let (o, logs) = capture(|| w.run(&mut c, &ctx(true), run));
        assert!(logs.contains(&(
            tracing::Level::WARN,
            "ovn_util".to_string(),
            "all transit switch datapath tunnel ids exhausted".to_string()
        )));
        assert!(!o
            .icsb_locked
            .table(DP_TABLE)
            .any(|(_, i)| matches!(i, RowIntent::Insert(_))));
        assert!(!isb_dps(&w, &c).iter().any(|d| d.0 == "new"));
        // The NB switch is still created.
        assert!(nb_switches(&w, &c).iter().any(|s| s.0 == "new"));
    }

    #[test]
    fn malformed_nb_key_is_rewritten() {
        let w = World::new(
            None,
            json!({"Logical_Switch": {u(10): {"name": "ts1", "other_config": ["map", [["interconn-ts", "ts1"], ["requested-tnl-key", "junk"], ["ic-vxlan_mode", "false"]]]}}}),
            tses(&[(1, "ts1")]),
            json!({"Datapath_Binding": {u(20): {"transit_switch": "ts1", "tunnel_key": 16711682}}}),
        );
        let mut c = Out::default();
        let o = w.run(&mut c, &ctx(false), run);
        assert_eq!(
            o.nb.get(LS, uu(10)),
            Some(&RowIntent::Update(BTreeMap::from([(
                "other_config".to_string(),
                Datum::smap([
                    ("ic-vxlan_mode", "false"),
                    ("interconn-ts", "ts1"),
                    ("requested-tnl-key", "16711682")
                ])
            )])))
        );
    }

    #[test]
    fn switch_without_vxlan_key_left_alone_while_off() {
        // Created by an ovn-ic older than 25.03: no ic-vxlan_mode key, reads as false.
        let w = World::new(
            None,
            json!({"Logical_Switch": {u(10): {"name": "ts1", "other_config": ["map", [["interconn-ts", "ts1"], ["requested-tnl-key", "16711682"]]]}}}),
            tses(&[(1, "ts1")]),
            json!({"Datapath_Binding": {u(20): {"transit_switch": "ts1", "tunnel_key": 16711682}}}),
        );
        let mut c = Out::default();
        assert!(w.run(&mut c, &ctx(false), run).nb.is_empty());
    }

    /// The Debian 23.03 schemas: no `type`/`nb_ic_uuid` in IC-SB; every row is a TS datapath and
    /// nothing is written into the missing columns.
    #[test]
    fn old_schema_tolerance() {
        let dir = Path::new("/usr/share/ovn");
        if !dir.join("ovn-ic-sb.ovsschema").exists() {
            return;
        }
        let w = World::new(
            Some(dir),
            json!({}),
            tses(&[(1, "ts1"), (2, "ts2")]),
            json!({"Datapath_Binding": {u(20): {"transit_switch": "ts1", "tunnel_key": 16711682}}}),
        );
        if typed(&w) {
            return; // Not the old schema after all.
        }
        let mut c = Out::default();
        let o = w.run(&mut c, &ctx(true), run);
        for (_, i) in o.icsb_locked.table(DP_TABLE) {
            let cols = match i {
                RowIntent::Insert(m) | RowIntent::Update(m) => m,
                RowIntent::Delete => continue,
            };
            assert!(
                !cols.contains_key("type") && !cols.contains_key("nb_ic_uuid"),
                "{cols:?}"
            );
        }
        settle(&w, &mut c, true);
        assert_eq!(
            isb_dps(&w, &c),
            vec![
                ("ts1".into(), 16711682, String::new(), None),
                ("ts2".into(), 16711683, String::new(), None)
            ]
        );
    }
}

#[cfg(test)]
mod incr_tests;
