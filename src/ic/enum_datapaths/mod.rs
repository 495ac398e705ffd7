//! Datapath enumeration (spec ovn-ic-core.md §4.3) and the VXLAN-mode decision (§4.4), plus the
//! NB-side classification of transit images (§4.3 table) shared by the later stages.
//!
//! Read only: [`enumerate`] turns the IC-SB `Datapath_Binding` rows (read through the locked
//! session's view, as upstream does) into plain data that the transit-switch, transit-router and
//! port-binding stages consume.
//!
//! Duplicates (upstream keeps a multimap and later lookups take an arbitrary match): here the
//! row with the **lowest UUID** wins, which is deterministic and identical in every AZ (all AZs
//! see the same IC-SB). The losing rows are kept in [`Datapaths::ts_extra`] /
//! [`Datapaths::tr_extra`]; the ISB leader deletes them like any other leftover datapath, which
//! is what upstream's find-and-delete followed by "delete what is left in the map" amounts to.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use super::incr::{Keys, Unhandled};
use super::util::smap_bool_default_false;
use super::{Target, Views};
use crate::ovsdb::overlay::View;
use crate::ovsdb::replica::{Change, ChangeKind, Row};
use crate::ovsdb::Uuid;

/// Rate limit of this stage's warnings (as upstream's 1/min, burst 1).
static EXHAUSTED_RL: crate::daemon::vlog::RateLimit = crate::daemon::vlog::RateLimit::new(1, 1);

/// IC-SB table holding the transit datapaths.
pub const DP_TABLE: &str = "Datapath_Binding";
/// `Datapath_Binding.type` values (Appendix C).
pub const DP_TYPE_TS: &str = "transit-switch";
pub const DP_TYPE_TR: &str = "transit-router";

/// Normal datapath-key range: 2^24 − 65535 … 2^24 − 1.
pub const NORMAL_KEY_MIN: i64 = 16_711_681;
pub const NORMAL_KEY_MAX: i64 = 16_777_215;
/// VXLAN-mode datapath-key range (transit switches only).
pub const VXLAN_KEY_MIN: i64 = 1024;
pub const VXLAN_KEY_MAX: i64 = 4095;

/// NB ownership markers (Appendix C).
pub const LS_TS_MARKER: &str = "interconn-ts";
pub const LR_TR_MARKER: &str = "interconn-tr";
pub const LSP_TSP_MARKER: &str = "interconn-tsp";
pub const LRP_TR_MARKER: &str = "interconn-tr";

/// One IC-SB `Datapath_Binding` row, as the stages need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsbDatapath {
    pub uuid: Uuid,
    /// 0 when the row has none (cannot happen with a valid schema; such a row is outside every
    /// range and gets re-keyed by the leader).
    pub tunnel_key: i64,
    pub transit_switch: String,
    /// `""` when absent (legacy rows, or a server without the column).
    pub dp_type: String,
    pub nb_ic_uuid: Option<Uuid>,
}

impl IsbDatapath {
    fn from_row(r: &Row) -> IsbDatapath {
        IsbDatapath {
            uuid: r.uuid(),
            tunnel_key: r.int("tunnel_key").unwrap_or(0),
            transit_switch: r.str("transit_switch").to_string(),
            dp_type: r.str("type").to_string(),
            nb_ic_uuid: r.uuid_of("nb_ic_uuid"),
        }
    }
}

/// What the enumeration found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Datapaths {
    /// Tunnel keys of every ISB datapath (switch and router).
    pub used_keys: BTreeSet<i64>,
    /// Transit-switch datapaths by `transit_switch` (every row whose type is not
    /// `transit-router`); on duplicates the lowest UUID.
    pub ts: BTreeMap<String, IsbDatapath>,
    /// Transit-router datapaths by `nb_ic_uuid`; on duplicates the lowest UUID.
    pub tr: BTreeMap<Uuid, IsbDatapath>,
    /// Transit-switch rows that lost to another row of the same name.
    pub ts_extra: Vec<IsbDatapath>,
    /// Transit-router rows that lost to another row with the same `nb_ic_uuid`, and
    /// transit-router rows without `nb_ic_uuid` (no TR can own them; upstream would crash).
    pub tr_extra: Vec<IsbDatapath>,
    /// VXLAN mode in effect (§4.4).
    pub vxlan_mode: bool,
    /// The units of work of the transit stages whose inputs changed since [`Self::clear_changed`]
    /// (see [`Datapaths::apply`]): transit-switch names (their datapath group or NB image
    /// changed), marker values of changed NB router images (transit-router names), and the
    /// `nb_ic_uuid` (as a string; `""` for none) of changed transit-router datapath groups.
    pub changed: Keys,
    /// The whole enumeration was redone (by [`enumerate`]) since [`Self::clear_changed`]: what
    /// changed is unknown, the dependent stages must recompute.
    pub all_changed: bool,
    /// What [`Datapaths::apply`] needs to update the fields above locally.
    idx: DpIndex,
}

/// Indexes behind [`Datapaths`]: every enumerated row, the rows of each group, the key
/// reference counts, and the NB images by marker value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct DpIndex {
    /// IC-SB has `Datapath_Binding.type` (rows of type `transit-router` are router datapaths).
    typed: bool,
    rows: BTreeMap<Uuid, IsbDatapath>,
    /// How many rows use each tunnel key (`used_keys` = the keys counted here).
    key_refs: BTreeMap<i64, usize>,
    ts_groups: BTreeMap<String, BTreeSet<Uuid>>,
    tr_groups: BTreeMap<Option<Uuid>, BTreeSet<Uuid>>,
    /// NB `Logical_Switch` rows by `other_config:interconn-ts` value, and the reverse.
    ts_images: BTreeMap<String, BTreeSet<Uuid>>,
    ts_image_of: BTreeMap<Uuid, String>,
    /// NB `Logical_Router` rows by `options:interconn-tr` value, and the reverse.
    tr_images: BTreeMap<String, BTreeSet<Uuid>>,
    tr_image_of: BTreeMap<Uuid, String>,
}

/// The group an ISB datapath row belongs to: transit switch by name, transit router by
/// `nb_ic_uuid` (None: no router can own it).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Group {
    Ts(String),
    Tr(Option<Uuid>),
}

impl Group {
    fn of(typed: bool, dp: &IsbDatapath) -> Group {
        if typed && dp.dp_type == DP_TYPE_TR {
            Group::Tr(dp.nb_ic_uuid)
        } else {
            Group::Ts(dp.transit_switch.clone())
        }
    }

    /// The unit-of-work key of the group (see [`Datapaths::changed`]).
    fn key(&self) -> String {
        match self {
            Group::Ts(name) => name.clone(),
            Group::Tr(u) => tr_group_key(*u),
        }
    }
}

/// The key naming the transit-router datapath group of `nb_ic_uuid` (`""` for rows without).
pub fn tr_group_key(nb_ic_uuid: Option<Uuid>) -> String {
    nb_ic_uuid.map(|u| u.to_string()).unwrap_or_default()
}

/// Insert `dp` into `list`, kept in UUID order (the enumeration's order).
fn insert_sorted(list: &mut Vec<IsbDatapath>, dp: IsbDatapath) {
    let at = list.partition_point(|x| x.uuid < dp.uuid);
    list.insert(at, dp);
}

impl Datapaths {
    /// The datapath-key range transit switches use in the current mode.
    pub fn ts_key_range(&self) -> (i64, i64) {
        if self.vxlan_mode {
            (VXLAN_KEY_MIN, VXLAN_KEY_MAX)
        } else {
            (NORMAL_KEY_MIN, NORMAL_KEY_MAX)
        }
    }

    /// The TS datapath of `name`, if any.
    pub fn ts_datapath(&self, name: &str) -> Option<&IsbDatapath> {
        self.ts.get(name)
    }

    /// The TR datapath of INB Transit_Router `tr`, if any.
    pub fn tr_datapath(&self, tr: Uuid) -> Option<&IsbDatapath> {
        self.tr.get(&tr)
    }

    /// The NB `Logical_Switch` rows whose `other_config:interconn-ts` is `name`.
    pub fn ts_image_rows(&self, name: &str) -> impl Iterator<Item = Uuid> + '_ {
        self.idx.ts_images.get(name).into_iter().flatten().copied()
    }

    /// The NB `Logical_Router` rows whose `options:interconn-tr` is `name`.
    pub fn tr_image_rows(&self, name: &str) -> impl Iterator<Item = Uuid> + '_ {
        self.idx.tr_images.get(name).into_iter().flatten().copied()
    }

    /// Forget what changed (the graph calls this at the start of each run).
    pub fn clear_changed(&mut self) {
        self.changed.clear();
        self.all_changed = false;
    }

    /// Update the enumeration for the tracked `changes` of one input table (`v` as for
    /// [`enumerate`]), touching only the entries the changed rows affect, and record the
    /// affected units of work in [`Self::changed`]. Inputs: NB `Logical_Switch` and
    /// `Logical_Router` (the image indexes), IC-SB `Datapath_Binding` of either session (the
    /// rows are re-read through the locked view, as the enumeration reads them), IC-NB
    /// `IC_NB_Global` and IC-SB `Encap` (VXLAN mode). A change of VXLAN mode, of the IC-SB
    /// schema, or of any other table is [`Unhandled`] (re-enumerate with [`enumerate`]).
    pub fn apply(
        &mut self,
        v: &Views,
        target: Target,
        table: &str,
        changes: &[Change],
    ) -> Result<(), Unhandled> {
        match (target, table) {
            (Target::Nb, "Logical_Switch") => {
                self.apply_images(&v.nb, table, "other_config", LS_TS_MARKER, changes);
                Ok(())
            }
            (Target::Nb, "Logical_Router") => {
                self.apply_images(&v.nb, table, "options", LR_TR_MARKER, changes);
                Ok(())
            }
            (Target::IcSb | Target::IcSbLocked, DP_TABLE) => self.apply_isb(v, changes),
            (Target::IcNb, "IC_NB_Global") | (Target::IcSb | Target::IcSbLocked, "Encap") => {
                if vxlan_mode(v) == self.vxlan_mode {
                    Ok(())
                } else {
                    Err(Unhandled("VXLAN mode changed"))
                }
            }
            _ => Err(Unhandled("not an input of the datapath enumeration")),
        }
    }

    fn apply_images(
        &mut self,
        nb: &View,
        table: &str,
        column: &str,
        marker: &str,
        changes: &[Change],
    ) {
        let (images, image_of) = if table == "Logical_Switch" {
            (&mut self.idx.ts_images, &mut self.idx.ts_image_of)
        } else {
            (&mut self.idx.tr_images, &mut self.idx.tr_image_of)
        };
        for c in changes {
            let now = nb
                .get(table, c.uuid)
                .and_then(|r| r.smap_get(column, marker).map(str::to_string));
            let before = image_of.get(&c.uuid).cloned();
            if now == before {
                // Same group: only a change of what the stages read makes it relevant.
                if let Some(m) = now {
                    if c.kind != ChangeKind::Updated
                        || c.column_changed("name")
                        || c.column_changed(column)
                    {
                        self.changed.insert(m);
                    }
                }
                continue;
            }
            if let Some(m) = before {
                if let Some(set) = images.get_mut(&m) {
                    set.remove(&c.uuid);
                    if set.is_empty() {
                        images.remove(&m);
                    }
                }
                image_of.remove(&c.uuid);
                self.changed.insert(m);
            }
            if let Some(m) = now {
                images.entry(m.clone()).or_default().insert(c.uuid);
                image_of.insert(c.uuid, m.clone());
                self.changed.insert(m);
            }
        }
    }

    fn apply_isb(&mut self, v: &Views, changes: &[Change]) -> Result<(), Unhandled> {
        let isb = &v.icsb_locked;
        if isb.replica().has_column(DP_TABLE, "type") != self.idx.typed {
            return Err(Unhandled("IC-SB schema changed"));
        }
        let mut groups = BTreeSet::new();
        for c in changes {
            let now = isb.get(DP_TABLE, c.uuid).map(|r| IsbDatapath::from_row(&r));
            let before = self.idx.rows.get(&c.uuid).cloned();
            if now == before {
                continue;
            }
            if let Some(b) = before {
                groups.insert(self.unindex(&b));
            }
            if let Some(n) = now {
                groups.insert(self.index(n));
            }
        }
        for g in groups {
            self.regroup(&g);
            self.changed.insert(g.key());
        }
        Ok(())
    }

    /// Add a row to the indexes; returns its group.
    fn index(&mut self, dp: IsbDatapath) -> Group {
        let g = Group::of(self.idx.typed, &dp);
        *self.idx.key_refs.entry(dp.tunnel_key).or_default() += 1;
        self.used_keys.insert(dp.tunnel_key);
        match &g {
            Group::Ts(name) => self.idx.ts_groups.entry(name.clone()).or_default(),
            Group::Tr(u) => self.idx.tr_groups.entry(*u).or_default(),
        }
        .insert(dp.uuid);
        self.idx.rows.insert(dp.uuid, dp);
        g
    }

    /// Remove a row from the indexes; returns its group.
    fn unindex(&mut self, dp: &IsbDatapath) -> Group {
        let g = Group::of(self.idx.typed, dp);
        if let Some(n) = self.idx.key_refs.get_mut(&dp.tunnel_key) {
            *n -= 1;
            if *n == 0 {
                self.idx.key_refs.remove(&dp.tunnel_key);
                self.used_keys.remove(&dp.tunnel_key);
            }
        }
        match &g {
            Group::Ts(name) => {
                if let Some(set) = self.idx.ts_groups.get_mut(name) {
                    set.remove(&dp.uuid);
                    if set.is_empty() {
                        self.idx.ts_groups.remove(name);
                    }
                }
            }
            Group::Tr(u) => {
                if let Some(set) = self.idx.tr_groups.get_mut(u) {
                    set.remove(&dp.uuid);
                    if set.is_empty() {
                        self.idx.tr_groups.remove(u);
                    }
                }
            }
        }
        self.idx.rows.remove(&dp.uuid);
        g
    }

    /// Recompute the winner and the losers of one group from its rows, as [`enumerate`] does.
    fn regroup(&mut self, g: &Group) {
        match g {
            Group::Ts(name) => {
                self.ts.remove(name);
                self.ts_extra.retain(|x| x.transit_switch != *name);
                let rows: Vec<IsbDatapath> = self
                    .idx
                    .ts_groups
                    .get(name)
                    .into_iter()
                    .flatten()
                    .filter_map(|u| self.idx.rows.get(u).cloned())
                    .collect();
                let mut rows = rows.into_iter();
                if let Some(first) = rows.next() {
                    self.ts.insert(name.clone(), first);
                }
                for dp in rows {
                    insert_sorted(&mut self.ts_extra, dp);
                }
            }
            Group::Tr(u) => {
                if let Some(u) = u {
                    self.tr.remove(u);
                }
                self.tr_extra.retain(|x| x.nb_ic_uuid != *u);
                let rows: Vec<IsbDatapath> = self
                    .idx
                    .tr_groups
                    .get(u)
                    .into_iter()
                    .flatten()
                    .filter_map(|x| self.idx.rows.get(x).cloned())
                    .collect();
                let mut rows = rows.into_iter();
                if let Some(u) = u {
                    if let Some(first) = rows.next() {
                        self.tr.insert(*u, first);
                    }
                }
                for dp in rows {
                    insert_sorted(&mut self.tr_extra, dp);
                }
            }
        }
    }
}

/// Enumerate the IC-SB datapaths (through the locked session's view) and decide VXLAN mode.
pub fn enumerate(v: &Views) -> Datapaths {
    let isb = &v.icsb_locked;
    // A 23.03-era IC-SB has no `type` column: every row is a TS datapath.
    let typed = isb.replica().has_column(DP_TABLE, "type");
    let mut d = Datapaths {
        vxlan_mode: vxlan_mode(v),
        all_changed: true,
        ..Datapaths::default()
    };
    d.idx.typed = typed;

    // `View::rows` yields UUID order, so the first row seen for a name is the lowest UUID.
    for row in isb.rows(DP_TABLE) {
        let dp = IsbDatapath::from_row(&row);
        d.used_keys.insert(dp.tunnel_key);
        *d.idx.key_refs.entry(dp.tunnel_key).or_default() += 1;
        match Group::of(typed, &dp) {
            Group::Ts(name) => d.idx.ts_groups.entry(name).or_default(),
            Group::Tr(u) => d.idx.tr_groups.entry(u).or_default(),
        }
        .insert(dp.uuid);
        d.idx.rows.insert(dp.uuid, dp.clone());
        if typed && dp.dp_type == DP_TYPE_TR {
            match dp.nb_ic_uuid {
                Some(u) if !d.tr.contains_key(&u) => {
                    d.tr.insert(u, dp);
                }
                _ => d.tr_extra.push(dp),
            }
        } else if d.ts.contains_key(&dp.transit_switch) {
            d.ts_extra.push(dp);
        } else {
            d.ts.insert(dp.transit_switch.clone(), dp);
        }
    }
    for (table, column, marker) in [
        ("Logical_Switch", "other_config", LS_TS_MARKER),
        ("Logical_Router", "options", LR_TR_MARKER),
    ] {
        let (images, image_of) = if table == "Logical_Switch" {
            (&mut d.idx.ts_images, &mut d.idx.ts_image_of)
        } else {
            (&mut d.idx.tr_images, &mut d.idx.tr_image_of)
        };
        for row in v.nb.rows(table) {
            if let Some(m) = row.smap_get(column, marker) {
                images.entry(m.to_string()).or_default().insert(row.uuid());
                image_of.insert(row.uuid(), m.to_string());
            }
        }
    }
    d
}

/// VXLAN mode (§4.4): `IC_NB_Global.options:vxlan_mode` is true AND some ISB Encap (of any AZ's
/// gateway) has type `vxlan`.
pub fn vxlan_mode(v: &Views) -> bool {
    let requested = v
        .icnb
        .rows("IC_NB_Global")
        .first()
        .is_some_and(|g| smap_bool_default_false(g.smap_get("options", "vxlan_mode")));
    requested
        && v.icsb
            .rows("Encap")
            .iter()
            .any(|e| e.str("type") == "vxlan")
}

/// Keys in use right now: those enumerated plus those of every datapath row visible through
/// `isb` (which includes keys allocated by earlier stages of this run).
pub fn used_keys_now(isb: &View, dps: &Datapaths) -> BTreeSet<i64> {
    let mut used = dps.used_keys.clone();
    used.extend(
        isb.rows(DP_TABLE)
            .iter()
            .filter_map(|r| r.int("tunnel_key")),
    );
    used
}

/// Allocate a datapath key in `[min, max]` (scan from `min + 1`, wrap to `min`: the lowest free
/// key above `min` first, `min` itself last) and mark it used. On exhaustion logs the upstream
/// WARN `all <what> tunnel ids exhausted` and returns None.
pub fn allocate_dp_key(used: &mut BTreeSet<i64>, min: i64, max: i64, what: &str) -> Option<i64> {
    match super::util::allocate_key(used, min, max, min) {
        Some(k) => {
            used.insert(k);
            Some(k)
        }
        None => {
            crate::vlog_rl!(EXHAUSTED_RL, warn, target: "ovn_util", "all {} tunnel ids exhausted", what);
            None
        }
    }
}

// ---------------------------------------------------------------------------------------------
// NB-side classification (§4.3 table).

/// The TS whose NB image this Logical_Switch is (`other_config:interconn-ts`, presence counts).
pub fn ls_ts_image(ls: &Row) -> Option<&str> {
    ls.smap_get("other_config", LS_TS_MARKER)
}

/// True when `ls` is the NB image of TS `ts_name` for lookups: `name == ts_name` and
/// `other_config:interconn-ts == ts_name`.
pub fn is_ts_image_of(ls: &Row, ts_name: &str) -> bool {
    ls.str("name") == ts_name && ls_ts_image(ls) == Some(ts_name)
}

/// The TR whose NB image this Logical_Router is (`options:interconn-tr`, presence counts).
pub fn lr_tr_image(lr: &Row) -> Option<&str> {
    lr.smap_get("options", LR_TR_MARKER)
}

/// True when `lr` is the NB image of TR `tr_name` for lookups. As upstream's `find_tr_in_nb`
/// (and §4.6.3) this requires `name == tr_name` and the presence of `options:interconn-tr`,
/// whatever its value.
pub fn is_tr_image_of(lr: &Row, tr_name: &str) -> bool {
    lr.str("name") == tr_name && lr_tr_image(lr).is_some()
}

/// The NB image of TS `ts_name` (lowest UUID if several), as the port stage looks it up.
pub fn find_ts_image<'a>(nb: &View<'a>, ts_name: &str) -> Option<Cow<'a, Row>> {
    nb.find_by_str("Logical_Switch", "name", ts_name)
        .into_iter()
        .filter(|r| is_ts_image_of(r, ts_name))
        .min_by_key(|r| r.uuid())
}

/// The NB image of TR `tr_name` (lowest UUID if several), as the port stage looks it up.
pub fn find_tr_image<'a>(nb: &View<'a>, tr_name: &str) -> Option<Cow<'a, Row>> {
    nb.find_by_str("Logical_Router", "name", tr_name)
        .into_iter()
        .filter(|r| is_tr_image_of(r, tr_name))
        .min_by_key(|r| r.uuid())
}

/// How a Logical_Switch_Port on a TS image is handled (§4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TsLspClass<'a> {
    /// Created by ovn-ic from the TSP named by `options:interconn-tsp`.
    Managed(&'a str),
    /// CMS-created port of this AZ (`type` `router` or `switch`).
    LegacyLocal,
    /// CMS/ovn-ic legacy remote port (`type` `remote`).
    LegacyRemote,
    /// Anything else (upstream DBG `Ignore lsp …`).
    Ignored,
}

/// Classify a Logical_Switch_Port of a TS image.
pub fn classify_ts_lsp(lsp: &Row) -> TsLspClass<'_> {
    if let Some(tsp) = lsp.smap_get("options", LSP_TSP_MARKER) {
        return TsLspClass::Managed(tsp);
    }
    match lsp.str("type") {
        "router" | "switch" => TsLspClass::LegacyLocal,
        "remote" => TsLspClass::LegacyRemote,
        _ => TsLspClass::Ignored,
    }
}

/// True when a Logical_Router_Port of a TR image is managed by ovn-ic (`options:interconn-tr`
/// present, any value); unmanaged ports are never touched.
pub fn is_managed_trp(lrp: &Row) -> bool {
    lrp.smap_get("options", LRP_TR_MARKER).is_some()
}

/// An NB switch or router that carries an interconnection marker, with its marker map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NbImage {
    pub uuid: Uuid,
    pub name: String,
    /// The whole map column holding the marker (`other_config` / `options`).
    pub map: BTreeMap<String, String>,
}

/// The NB rows of `table` whose map `column` has `marker`, grouped by the marker's value, each
/// group ordered best candidate first: the row named like the marker value, then lowest UUID.
pub fn nb_images(
    nb: &View,
    table: &str,
    column: &str,
    marker: &str,
) -> BTreeMap<String, Vec<NbImage>> {
    let mut images: BTreeMap<String, Vec<NbImage>> = BTreeMap::new();
    for row in nb.rows(table) {
        let Some(value) = row.smap_get(column, marker) else {
            continue;
        };
        images
            .entry(value.to_string())
            .or_default()
            .push(NbImage::of(&row, column));
    }
    for (value, list) in images.iter_mut() {
        sort_images(value, list);
    }
    images
}

/// The NB images of `value` among the rows `uuids` of `table` (those that still carry
/// `marker` = `value` in `nb`), best candidate first as in [`nb_images`].
pub fn nb_images_of(
    nb: &View,
    table: &str,
    column: &str,
    marker: &str,
    value: &str,
    uuids: impl Iterator<Item = Uuid>,
) -> Vec<NbImage> {
    let mut list: Vec<NbImage> = uuids
        .filter_map(|u| nb.get(table, u))
        .filter(|r| r.smap_get(column, marker) == Some(value))
        .map(|r| NbImage::of(&r, column))
        .collect();
    sort_images(value, &mut list);
    list
}

fn sort_images(value: &str, list: &mut [NbImage]) {
    list.sort_by_key(|i| (i.name != value, i.uuid));
}

impl NbImage {
    fn of(row: &Row, column: &str) -> NbImage {
        NbImage {
            uuid: row.uuid(),
            name: row.str("name").to_string(),
            map: row
                .get(column)
                .smap_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }
}

/// The marker (`column:marker`, e.g. `other_config:interconn-ts`) of an NB image row a stage
/// wrote (`intent` on row `u` of `table`): from the inserted columns, else from the row as the
/// view shows it.
pub fn image_marker(
    nb: &crate::ovsdb::overlay::View,
    table: &str,
    column: &str,
    marker: &str,
    u: Uuid,
    intent: &crate::ovsdb::overlay::RowIntent,
) -> Option<String> {
    match intent {
        crate::ovsdb::overlay::RowIntent::Insert(cols) => cols
            .get(column)
            .and_then(|d| d.smap_get(marker))
            .map(str::to_string),
        _ => nb
            .get(table, u)
            .and_then(|r| r.smap_get(column, marker).map(str::to_string)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ic::testutil::{empty, replica, u};
    use crate::ic::Dbs;
    use crate::ovsdb::replica::Replica;
    use serde_json::json;

    pub(crate) struct Fx {
        pub nb: Replica,
        pub sb: Replica,
        pub icnb: Replica,
        pub icsb: Replica,
    }

    impl Fx {
        fn views(&self) -> Views<'_> {
            Views::new(Dbs {
                nb: &self.nb,
                sb: &self.sb,
                icnb: &self.icnb,
                icsb: &self.icsb,
                icsb_locked: &self.icsb,
            })
        }
    }

    fn uu(n: u32) -> Uuid {
        u(n).parse().expect("fixture uuid")
    }

    fn typed() -> bool {
        empty("ovn-ic-sb").has_column(DP_TABLE, "type")
    }

    fn fx(icnb: serde_json::Value, icsb: serde_json::Value) -> Fx {
        Fx {
            nb: empty("ovn-nb"),
            sb: empty("ovn-sb"),
            icnb: replica("ovn-ic-nb", icnb),
            icsb: replica("ovn-ic-sb", icsb),
        }
    }

    #[test]
    fn splits_switch_and_router_datapaths() {
        let mut dps = serde_json::Map::new();
        dps.insert(
            u(1),
            json!({"transit_switch": "ts1", "tunnel_key": 16711682}),
        );
        if typed() {
            dps.insert(
                u(2),
                json!({"transit_switch": "ts2", "tunnel_key": 16711683, "type": "transit-switch"}),
            );
            dps.insert(u(3), json!({"tunnel_key": 16711684, "type": "transit-router", "nb_ic_uuid": ["uuid", u(100)]}));
        } else {
            dps.insert(
                u(2),
                json!({"transit_switch": "ts2", "tunnel_key": 16711683}),
            );
        }
        let f = fx(json!({}), json!({"Datapath_Binding": dps}));
        let d = enumerate(&f.views());
        assert_eq!(d.ts.keys().cloned().collect::<Vec<_>>(), vec!["ts1", "ts2"]);
        assert_eq!(d.ts["ts1"].tunnel_key, 16711682);
        assert_eq!(d.ts["ts1"].uuid, uu(1));
        if typed() {
            assert_eq!(d.used_keys, BTreeSet::from([16711682, 16711683, 16711684]));
            assert_eq!(d.tr[&uu(100)].tunnel_key, 16711684);
            assert_eq!(
                d.tr_datapath(uu(100)).map(|d| d.transit_switch.as_str()),
                Some("")
            );
        } else {
            assert!(d.tr.is_empty());
            assert_eq!(d.used_keys, BTreeSet::from([16711682, 16711683]));
        }
        assert!(d.ts_extra.is_empty() && d.tr_extra.is_empty());
        assert!(!d.vxlan_mode);
    }

    #[test]
    fn duplicate_rows_lowest_uuid_wins() {
        let mut dps = serde_json::Map::new();
        dps.insert(
            u(7),
            json!({"transit_switch": "ts1", "tunnel_key": 16711690}),
        );
        dps.insert(
            u(3),
            json!({"transit_switch": "ts1", "tunnel_key": 16711685}),
        );
        if typed() {
            dps.insert(u(9), json!({"tunnel_key": 16711700, "type": "transit-router", "nb_ic_uuid": ["uuid", u(50)]}));
            dps.insert(u(8), json!({"tunnel_key": 16711701, "type": "transit-router", "nb_ic_uuid": ["uuid", u(50)]}));
            dps.insert(
                u(10),
                json!({"tunnel_key": 16711702, "type": "transit-router"}),
            );
        }
        let f = fx(json!({}), json!({"Datapath_Binding": dps}));
        let d = enumerate(&f.views());
        assert_eq!(d.ts["ts1"].uuid, uu(3));
        assert_eq!(
            d.ts_extra.iter().map(|x| x.uuid).collect::<Vec<_>>(),
            vec![uu(7)]
        );
        assert!(d.used_keys.contains(&16711690) && d.used_keys.contains(&16711685));
        if typed() {
            assert_eq!(d.tr[&uu(50)].uuid, uu(8));
            let mut extra: Vec<Uuid> = d.tr_extra.iter().map(|x| x.uuid).collect();
            extra.sort();
            assert_eq!(extra, vec![uu(9), uu(10)]);
        }
    }

    #[test]
    fn vxlan_mode_needs_option_and_vxlan_encap() {
        let gw = |ty: &str| json!({"Encap": {u(20): {"type": ty, "ip": "192.168.0.1", "gateway_name": "gw1"}}});
        let opt =
            |v: &str| json!({"IC_NB_Global": {u(1): {"options": ["map", [["vxlan_mode", v]]]}}});
        assert!(enumerate(&fx(opt("true"), gw("vxlan")).views()).vxlan_mode);
        assert!(enumerate(&fx(opt("TRUE"), gw("vxlan")).views()).vxlan_mode);
        assert!(!enumerate(&fx(opt("true"), gw("geneve")).views()).vxlan_mode);
        assert!(!enumerate(&fx(opt("yes"), gw("vxlan")).views()).vxlan_mode);
        assert!(!enumerate(&fx(json!({}), gw("vxlan")).views()).vxlan_mode);
        assert!(!enumerate(&fx(opt("true"), json!({})).views()).vxlan_mode);
        let d = enumerate(&fx(opt("true"), gw("vxlan")).views());
        assert_eq!(d.ts_key_range(), (1024, 4095));
        assert_eq!(Datapaths::default().ts_key_range(), (16711681, 16777215));
    }

    #[test]
    fn enumeration_sees_earlier_writes_of_the_run() {
        let f = fx(json!({}), json!({}));
        let mut out = crate::ic::Out::default();
        out.icsb_locked.insert(
            DP_TABLE,
            vec![
                ("transit_switch", crate::ovsdb::Datum::scalar("ts9")),
                ("tunnel_key", crate::ovsdb::Datum::scalar(16711699i64)),
            ],
        );
        let base = f.views();
        let d = enumerate(&base.with(&out));
        assert_eq!(d.ts["ts9"].tunnel_key, 16711699);
    }

    #[test]
    fn allocation_rules() {
        let mut used = BTreeSet::new();
        assert_eq!(
            allocate_dp_key(&mut used, NORMAL_KEY_MIN, NORMAL_KEY_MAX, "x"),
            Some(16711682)
        );
        assert_eq!(
            allocate_dp_key(&mut used, NORMAL_KEY_MIN, NORMAL_KEY_MAX, "x"),
            Some(16711683)
        );
        assert_eq!(
            allocate_dp_key(&mut used, VXLAN_KEY_MIN, VXLAN_KEY_MAX, "x"),
            Some(1025)
        );
        // Reuse: the lowest free key above min, min itself last.
        let mut used = BTreeSet::from([16711682, 16711684]);
        assert_eq!(
            allocate_dp_key(&mut used, NORMAL_KEY_MIN, NORMAL_KEY_MAX, "x"),
            Some(16711683)
        );
        let mut used: BTreeSet<i64> = (VXLAN_KEY_MIN + 1..=VXLAN_KEY_MAX).collect();
        assert_eq!(
            allocate_dp_key(&mut used, VXLAN_KEY_MIN, VXLAN_KEY_MAX, "x"),
            Some(1024)
        );
        let (r, logs) = super::logcap::capture(|| {
            allocate_dp_key(&mut used, VXLAN_KEY_MIN, VXLAN_KEY_MAX, "x")
        });
        assert_eq!(r, None);
        assert_eq!(
            logs,
            vec![(
                tracing::Level::WARN,
                "ovn_util".to_string(),
                "all x tunnel ids exhausted".to_string()
            )]
        );
    }

    #[test]
    fn nb_classification() {
        let nb = replica(
            "ovn-nb",
            json!({
                "Logical_Switch": {
                    u(1): {"name": "ts1", "other_config": ["map", [["interconn-ts", "ts1"]]]},
                    u(2): {"name": "ts1"},
                    u(3): {"name": "other", "other_config": ["map", [["interconn-ts", "ts2"]]]},
                },
                "Logical_Router": {
                    u(4): {"name": "tr1", "options": ["map", [["interconn-tr", "whatever"]]]},
                    u(5): {"name": "tr2"},
                },
                "Logical_Switch_Port": {
                    u(10): {"name": "a", "options": ["map", [["interconn-tsp", "tsp1"]]], "type": "remote"},
                    u(11): {"name": "b", "type": "router"},
                    u(12): {"name": "c", "type": "switch"},
                    u(13): {"name": "d", "type": "remote"},
                    u(14): {"name": "e", "type": ""},
                },
                "Logical_Router_Port": {
                    u(20): {"name": "p1", "mac": "aa:bb:cc:dd:ee:ff", "options": ["map", [["interconn-tr", "p1"]]]},
                    u(21): {"name": "p2", "mac": "aa:bb:cc:dd:ee:fe"},
                },
            }),
        );
        let v = View::new(&nb);
        let ls = |n: u32| nb.get("Logical_Switch", uu(n)).expect("ls");
        assert_eq!(ls_ts_image(ls(1)), Some("ts1"));
        assert_eq!(ls_ts_image(ls(2)), None);
        assert!(is_ts_image_of(ls(1), "ts1"));
        assert!(!is_ts_image_of(ls(2), "ts1"));
        assert!(!is_ts_image_of(ls(3), "ts2"), "name must match too");
        assert_eq!(find_ts_image(&v, "ts1").map(|r| r.uuid()), Some(uu(1)));
        assert!(find_ts_image(&v, "ts2").is_none());

        let lr = |n: u32| nb.get("Logical_Router", uu(n)).expect("lr");
        assert_eq!(lr_tr_image(lr(4)), Some("whatever"));
        assert!(is_tr_image_of(lr(4), "tr1"));
        assert!(!is_tr_image_of(lr(5), "tr2"));
        assert_eq!(find_tr_image(&v, "tr1").map(|r| r.uuid()), Some(uu(4)));
        assert!(find_tr_image(&v, "tr2").is_none());

        let lsp = |n: u32| nb.get("Logical_Switch_Port", uu(n)).expect("lsp");
        assert_eq!(classify_ts_lsp(lsp(10)), TsLspClass::Managed("tsp1"));
        assert_eq!(classify_ts_lsp(lsp(11)), TsLspClass::LegacyLocal);
        assert_eq!(classify_ts_lsp(lsp(12)), TsLspClass::LegacyLocal);
        assert_eq!(classify_ts_lsp(lsp(13)), TsLspClass::LegacyRemote);
        assert_eq!(classify_ts_lsp(lsp(14)), TsLspClass::Ignored);

        let lrp = |n: u32| nb.get("Logical_Router_Port", uu(n)).expect("lrp");
        assert!(is_managed_trp(lrp(20)));
        assert!(!is_managed_trp(lrp(21)));
    }
}

/// Test fixtures shared by the transit-switch and transit-router stage tests: the four
/// databases as replicas (schemas from the default directory or an explicit one), and a way to
/// simulate successive runs by layering everything "committed" so far as one intent set.
#[cfg(test)]
pub(crate) mod fixture {
    use std::collections::BTreeMap;
    use std::path::Path;
    use std::sync::Arc;

    use serde_json::Value;

    use super::{enumerate, Datapaths};
    use crate::ic::{Ctx, Dbs, Out, Views};
    use crate::ovsdb::replica::Replica;
    use crate::ovsdb::schema::DatabaseSchema;
    use crate::ovsdb::Uuid;

    /// Like `testutil::replica`, with the schema taken from `dir` when given.
    pub fn replica_in(dir: Option<&Path>, name: &str, rows: Value) -> Replica {
        let Some(dir) = dir else {
            return crate::ic::testutil::replica(name, rows);
        };
        let p = dir.join(format!("{name}.ovsschema"));
        let s = Arc::new(
            DatabaseSchema::from_file(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())),
        );
        let mut r = Replica::new(&s.name);
        let mon: BTreeMap<String, Vec<String>> = s
            .tables
            .iter()
            .map(|(t, ts)| (t.clone(), ts.columns.keys().cloned().collect()))
            .collect();
        r.set_schema(s, &mon);
        let mut upd = serde_json::Map::new();
        for (t, rs) in rows.as_object().expect("object of tables") {
            let m: serde_json::Map<String, Value> = rs
                .as_object()
                .expect("object of rows")
                .iter()
                .map(|(u, row)| (u.clone(), serde_json::json!({ "insert": row })))
                .collect();
            upd.insert(t.clone(), Value::Object(m));
        }
        r.apply_update2(&Value::Object(upd)).expect("valid rows");
        r.clear_changes();
        r
    }

    pub struct World {
        pub nb: Replica,
        pub sb: Replica,
        pub icnb: Replica,
        pub icsb: Replica,
    }

    impl World {
        pub fn new(dir: Option<&Path>, nb: Value, icnb: Value, icsb: Value) -> World {
            World {
                nb: replica_in(dir, "ovn-nb", nb),
                sb: replica_in(dir, "ovn-sb", serde_json::json!({})),
                icnb: replica_in(dir, "ovn-ic-nb", icnb),
                icsb: replica_in(dir, "ovn-ic-sb", icsb),
            }
        }

        pub fn views(&self) -> Views<'_> {
            Views::new(Dbs {
                nb: &self.nb,
                sb: &self.sb,
                icnb: &self.icnb,
                icsb: &self.icsb,
                icsb_locked: &self.icsb,
            })
        }

        /// One run: enumerate on the committed state, then `stage`; the run's writes are merged
        /// into `committed` (as if every transaction succeeded) and returned.
        pub fn run(
            &self,
            committed: &mut Out,
            ctx: &Ctx,
            stage: impl Fn(&Views, &Ctx, &Datapaths, &mut Out),
        ) -> Out {
            let mut out = Out::default();
            {
                let base = self.views();
                let v = base.with(committed);
                let dps = enumerate(&v);
                stage(&v, ctx, &dps, &mut out);
            }
            committed.merge(&out);
            out
        }
    }

    pub fn ctx(leader: bool) -> Ctx {
        Ctx {
            az: Uuid(0xa2),
            az_name: "az1".to_string(),
            isb_leader: leader,
        }
    }

    pub fn uu(n: u32) -> Uuid {
        crate::ic::testutil::u(n).parse().expect("fixture uuid")
    }
}

/// Capturing log events in tests (exact upstream texts are part of the contract).
#[cfg(test)]
pub(crate) mod logcap {
    use std::fmt::Debug;
    use std::sync::{Arc, Mutex};

    use tracing::field::{Field, Visit};
    use tracing_subscriber::layer::{Context, SubscriberExt};
    use tracing_subscriber::Layer;

    /// (level, target, message)
    pub type Logged = Vec<(tracing::Level, String, String)>;

    struct Capture(Arc<Mutex<Logged>>);

    struct Msg(String);
    impl Visit for Msg {
        fn record_debug(&mut self, f: &Field, v: &dyn Debug) {
            if f.name() == "message" {
                self.0 = format!("{v:?}");
            }
        }
    }

    impl<S: tracing::Subscriber> Layer<S> for Capture {
        fn on_event(&self, ev: &tracing::Event<'_>, _: Context<'_, S>) {
            let mut m = Msg(String::new());
            ev.record(&mut m);
            let md = ev.metadata();
            if let Ok(mut l) = self.0.lock() {
                l.push((*md.level(), md.target().to_string(), m.0));
            }
        }
    }

    /// Run `f` with a thread-local subscriber recording every event.
    pub fn capture<R>(f: impl FnOnce() -> R) -> (R, Logged) {
        let logs = Arc::new(Mutex::new(Vec::new()));
        let sub = tracing_subscriber::registry().with(Capture(logs.clone()));
        let r = tracing::subscriber::with_default(sub, f);
        let l = logs.lock().map(|l| l.clone()).unwrap_or_default();
        (r, l)
    }
}

#[cfg(test)]
pub(crate) mod testworld;

#[cfg(test)]
mod incr_tests;
