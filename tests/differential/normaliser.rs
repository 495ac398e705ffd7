//! Normalised database contents, comparable between two runs on different fresh databases.
//!
//! A Rust port of the ideas of `../shared/golden/normalize.py`:
//!
//! * `_uuid` / `_version` are dropped; every reference (`["uuid", …]`) and every string that is
//!   the UUID of a dumped row (`external_ids:router-id`, `logical-switch`, `ic-learned-route`, …)
//!   becomes a label `<db>:<Table>:<natural key>` — the natural key is the row's `name` or
//!   `logical_port` (Encap: `type/ip`), else the compact JSON of the row's own columns with
//!   references resolved through the simple keys (`?` where the target has none);
//! * sets become sorted arrays, maps objects with sorted keys, rows are sorted;
//! * before that, [`apply_deviations`] removes the *intended* differences between Debian's C
//!   ovn-ic 23.03 and ours (each one names the deviation it covers).
//!
//! The result, [`Snapshot`], maps `db label → table → sorted canonical JSON rows`, so two
//! snapshots compare with `==` and [`diff`] lists the rows only one side has.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{Map, Value};

/// Which OVN database a dump comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbKind {
    IcNb,
    IcSb,
    Nb,
    Sb,
}

impl DbKind {
    /// The tables ovn-ic reads or writes (as in `normalize.py`); the others are ignored.
    fn tables(self) -> &'static [&'static str] {
        match self {
            DbKind::IcNb => &[
                "IC_NB_Global",
                "Transit_Switch",
                "Transit_Switch_Port",
                "Transit_Router",
                "Transit_Router_Port",
            ],
            DbKind::IcSb => &[
                "IC_SB_Global",
                "Availability_Zone",
                "Gateway",
                "Encap",
                "Datapath_Binding",
                "Port_Binding",
                "Route",
                "Address_Set",
                "Service_Monitor",
            ],
            DbKind::Nb => &[
                "NB_Global",
                "Logical_Switch",
                "Logical_Switch_Port",
                "Logical_Router",
                "Logical_Router_Port",
                "Logical_Router_Static_Route",
                "Gateway_Chassis",
                "Load_Balancer",
                "Load_Balancer_Group",
                "Address_Set",
            ],
            DbKind::Sb => &[
                "SB_Global",
                "Chassis",
                "Encap",
                "Port_Binding",
                "Datapath_Binding",
                "Service_Monitor",
                "Address_Set",
                "Learned_Route",
            ],
        }
    }
}

/// One database's `ovsdb-client dump` (`{"Table": [rows…]}`) with its label (`ic-sb`,
/// `az1-nb`, …). Labels must not depend on AZ names, which scenarios rename.
#[derive(Debug, Clone)]
pub struct DbDump {
    pub label: String,
    pub kind: DbKind,
    pub data: Value,
}

/// `db label → table → sorted canonical JSON rows`.
pub type Snapshot = BTreeMap<String, BTreeMap<String, Vec<String>>>;

/// Columns only other daemons write (timestamps), never compared.
const DROPPED: &[(&str, &str)] = &[
    ("NB_Global", "nb_cfg_timestamp"),
    ("NB_Global", "sb_cfg_timestamp"),
    ("NB_Global", "hv_cfg_timestamp"),
];

/// First datapath key of a transit switch (both implementations start here).
pub const TS_KEY_MIN: i64 = 16_711_682;
/// Last datapath key of a transit switch.
pub const TS_KEY_MAX: i64 = 16_777_215;
/// Port keys on a transit switch are 1 ..= 32767.
pub const PORT_KEY_MAX: i64 = 32_767;

/// Normalises a set of dumps into a [`Snapshot`] (deviations applied first).
pub fn normalise(mut dbs: Vec<DbDump>) -> Snapshot {
    for db in &mut dbs {
        keep_tables(db);
    }
    apply_deviations(&mut dbs);
    let labels = build_labels(&dbs);
    let mut out = Snapshot::new();
    for db in &dbs {
        let mut tables = BTreeMap::new();
        if let Some(obj) = db.data.as_object() {
            for (table, rows) in obj {
                let mut norm: Vec<String> = rows
                    .as_array()
                    .map(Vec::as_slice)
                    .unwrap_or(&[])
                    .iter()
                    .filter_map(Value::as_object)
                    .map(|r| {
                        Value::Object(row_body(table, r, &|u: &str| {
                            labels
                                .get(u)
                                .cloned()
                                .unwrap_or_else(|| "<uuid:unresolved>".to_string())
                        }))
                        .to_string()
                    })
                    .collect();
                norm.sort();
                tables.insert(table.clone(), norm);
            }
        }
        out.insert(db.label.clone(), tables);
    }
    out
}

fn keep_tables(db: &mut DbDump) {
    if let Some(obj) = db.data.as_object_mut() {
        let wanted = db.kind.tables();
        obj.retain(|t, _| wanted.contains(&t.as_str()));
    }
}

/// Removes the intended differences between Debian's C ovn-ic 23.03 and ours, in place.
///
/// Every rule here corresponds to a documented deviation (docs/compatibility.md, spec
/// ovn-ic-core.md §6.3); see docs/differential.md.
pub fn apply_deviations(dbs: &mut [DbDump]) {
    // Deviation "VXLAN mode, ic-vxlan_mode: 23.03 no": ours records the mode of each transit
    // switch in NB `Logical_Switch.other_config:ic-vxlan_mode`; 23.03 never writes that key.
    for db in dbs.iter_mut().filter(|d| d.kind == DbKind::Nb) {
        for ls in rows_mut(&mut db.data, "Logical_Switch") {
            map_remove(ls, "other_config", "ic-vxlan_mode");
        }
    }
    // Version drift "lr-id, same-AZ learning" (v23.09, ovn-ic-routes.md history): ours
    // records the advertising router in IC-SB `Route.external_ids:lr-id`; 23.03 does not.
    for db in dbs.iter_mut().filter(|d| d.kind == DbKind::IcSb) {
        for route in rows_mut(&mut db.data, "Route") {
            map_remove(route, "external_ids", "lr-id");
        }
    }
    drop_drifted_routes(dbs);
    relabel_tunnel_keys(dbs);
}

/// IC-SB `Route` rows removed by [`apply_deviations`], with the NB routes learned from them.
///
/// * Version drift "route-table copies of connected routes" (ca4f75e38, after v26.03): through
///   a transit switch port with `options:route_table=X` ours advertises each connected network
///   a second time with `route_table=X`; 23.03 advertises it once, in the main table. Rows with
///   origin `connected` and a non-empty `route_table` are removed.
/// * Version drift "orphan handling" (c03bda692, v25.09): when a router leaves a transit switch
///   (port detached, router deleted) ours deletes the routes it advertised there; 23.03 never
///   looks at them again and leaves them (and the routes other AZs learned from them) behind.
///   Rows of an AZ on a transit switch where that AZ has no IC-SB `Port_Binding` are removed.
fn drop_drifted_routes(dbs: &mut [DbDump]) {
    let mut gone: BTreeSet<String> = BTreeSet::new();
    for db in dbs.iter_mut().filter(|d| d.kind == DbKind::IcSb) {
        let bound: BTreeSet<(String, String)> = rows(&db.data, "Port_Binding")
            .map(|pb| {
                let az = uuids(pb.get("availability_zone")).pop().unwrap_or_default();
                (az, str_col(pb, "transit_switch"))
            })
            .collect();
        if let Some(Value::Array(routes)) = db.data.get_mut("Route") {
            routes.retain(|r| {
                let Some(r) = r.as_object() else { return true };
                let copy =
                    str_col(r, "origin") == "connected" && !str_col(r, "route_table").is_empty();
                let az = uuids(r.get("availability_zone")).pop().unwrap_or_default();
                let orphan = !bound.contains(&(az, str_col(r, "transit_switch")));
                if copy || orphan {
                    gone.extend(row_uuid(r));
                }
                !(copy || orphan)
            });
        }
    }
    // Orphan handling also covers learned routes: a router with no transit switch port left
    // (its switch or port deleted) keeps, with 23.03, the routes it had learned; ours removes
    // them. Learned routes of such a router whose IC-SB row no longer exists are removed.
    let mut isb_routes: BTreeSet<String> = BTreeSet::new();
    let mut attached: BTreeSet<String> = BTreeSet::new();
    for db in dbs.iter().filter(|d| d.kind == DbKind::IcSb) {
        isb_routes.extend(rows(&db.data, "Route").filter_map(row_uuid));
        attached.extend(
            rows(&db.data, "Port_Binding")
                .filter_map(|pb| map_get(pb, "external_ids", "router-id")),
        );
    }
    for db in dbs.iter_mut().filter(|d| d.kind == DbKind::Nb) {
        let detached_routes: BTreeSet<String> = rows(&db.data, "Logical_Router")
            .filter(|lr| row_uuid(lr).is_some_and(|u| !attached.contains(&u)))
            .flat_map(|lr| uuids(lr.get("static_routes")))
            .collect();
        let mut learned_gone: BTreeSet<String> = BTreeSet::new();
        if let Some(Value::Array(routes)) = db.data.get_mut("Logical_Router_Static_Route") {
            routes.retain(|r| {
                let Some(r) = r.as_object() else { return true };
                let from_copy = map_get(r, "external_ids", "ic-learned-route").is_some_and(|u| {
                    gone.contains(&u)
                        || (!isb_routes.contains(&u)
                            && row_uuid(r).is_some_and(|me| detached_routes.contains(&me)))
                });
                if from_copy {
                    learned_gone.extend(row_uuid(r));
                }
                !from_copy
            });
        }
        for lr in rows_mut(&mut db.data, "Logical_Router") {
            let kept: Vec<Value> = uuids(lr.get("static_routes"))
                .into_iter()
                .filter(|u| !learned_gone.contains(u))
                .map(|u| Value::Array(vec![Value::String("uuid".into()), Value::String(u)]))
                .collect();
            lr.insert(
                "static_routes".into(),
                Value::Array(vec![Value::String("set".into()), Value::Array(kept)]),
            );
        }
    }
}

/// Deviations "TS key allocation: 23.03 process-lifetime rotating hint, ours lowest free key"
/// and "port keys: 23.03 rotating hint shared by all transit switches, ours per switch": the
/// concrete key values depend on allocation history and on hash order (which depends on random
/// UUIDs, so even two runs of the C daemon differ). What must agree is the *assignment*: every
/// key is replaced by the name of the row that owns it in IC-SB (`dpkey:<ts>`,
/// `pkey:<ts>/<port>`), in IC-SB itself and wherever NB/SB copy it (`requested-tnl-key`, SB
/// tunnel keys of transit-switch datapaths and their ports). A key owned by nobody stays
/// visible as `dpkey:?<n>` / `pkey:?<n>`; keys outside the allowed range are marked too.
fn relabel_tunnel_keys(dbs: &mut [DbDump]) {
    let mut dp_owner: HashMap<i64, String> = HashMap::new();
    let mut port_owner: HashMap<(String, i64), String> = HashMap::new();
    for db in dbs.iter_mut().filter(|d| d.kind == DbKind::IcSb) {
        for dp in rows_mut(&mut db.data, "Datapath_Binding") {
            let ts = str_col(dp, "transit_switch");
            if let Some(k) = dp.get("tunnel_key").and_then(Value::as_i64) {
                let label = if (TS_KEY_MIN..=TS_KEY_MAX).contains(&k) {
                    format!("dpkey:{ts}")
                } else {
                    format!("dpkey:{ts}:out-of-range:{k}")
                };
                dp_owner.insert(k, label.clone());
                dp.insert("tunnel_key".into(), Value::String(label));
            }
        }
        for pb in rows_mut(&mut db.data, "Port_Binding") {
            let ts = str_col(pb, "transit_switch");
            let lp = str_col(pb, "logical_port");
            if let Some(k) = pb.get("tunnel_key").and_then(Value::as_i64) {
                let label = if (1..=PORT_KEY_MAX).contains(&k) {
                    format!("pkey:{ts}/{lp}")
                } else {
                    format!("pkey:{ts}/{lp}:out-of-range:{k}")
                };
                port_owner.insert((ts.clone(), k), label.clone());
                pb.insert("tunnel_key".into(), Value::String(label));
            }
        }
    }
    let dp_label = |k: &str| -> String {
        k.parse::<i64>()
            .ok()
            .and_then(|k| dp_owner.get(&k).cloned())
            .unwrap_or_else(|| format!("dpkey:?{k}"))
    };
    let port_label = |ts: &str, k: &str| -> String {
        k.parse::<i64>()
            .ok()
            .and_then(|k| port_owner.get(&(ts.to_string(), k)).cloned())
            .unwrap_or_else(|| format!("pkey:?{k}"))
    };
    for db in dbs.iter_mut() {
        match db.kind {
            DbKind::Nb => {
                // LSP uuid → transit switch name, for the ports' requested-tnl-key.
                let mut lsp_ts: HashMap<String, String> = HashMap::new();
                for ls in rows_mut(&mut db.data, "Logical_Switch") {
                    let Some(ts) = map_get(ls, "other_config", "interconn-ts") else {
                        continue;
                    };
                    if let Some(k) = map_get(ls, "other_config", "requested-tnl-key") {
                        map_set(ls, "other_config", "requested-tnl-key", &dp_label(&k));
                    }
                    for u in uuids(ls.get("ports")) {
                        lsp_ts.insert(u, ts.clone());
                    }
                }
                for lsp in rows_mut(&mut db.data, "Logical_Switch_Port") {
                    let Some(ts) = row_uuid(lsp).and_then(|u| lsp_ts.get(&u).cloned()) else {
                        continue;
                    };
                    if let Some(k) = map_get(lsp, "options", "requested-tnl-key") {
                        map_set(lsp, "options", "requested-tnl-key", &port_label(&ts, &k));
                    }
                }
            }
            DbKind::Sb => {
                // Datapath uuid → transit switch name.
                let mut dp_ts: HashMap<String, String> = HashMap::new();
                for dp in rows_mut(&mut db.data, "Datapath_Binding") {
                    let Some(ts) = map_get(dp, "external_ids", "interconn-ts") else {
                        continue;
                    };
                    if let Some(u) = row_uuid(dp) {
                        dp_ts.insert(u, ts);
                    }
                    if let Some(k) = dp.get("tunnel_key").and_then(Value::as_i64) {
                        dp.insert("tunnel_key".into(), Value::String(dp_label(&k.to_string())));
                    }
                }
                for pb in rows_mut(&mut db.data, "Port_Binding") {
                    let Some(ts) = uuids(pb.get("datapath"))
                        .first()
                        .and_then(|u| dp_ts.get(u).cloned())
                    else {
                        continue;
                    };
                    if let Some(k) = pb.get("tunnel_key").and_then(Value::as_i64) {
                        pb.insert(
                            "tunnel_key".into(),
                            Value::String(port_label(&ts, &k.to_string())),
                        );
                    }
                }
            }
            DbKind::IcNb | DbKind::IcSb => {}
        }
    }
}

// ------------------------------------------------------------------------------------------------
// Labels
// ------------------------------------------------------------------------------------------------

fn simple_key(table: &str, row: &Map<String, Value>) -> Option<String> {
    for c in ["name", "logical_port"] {
        if let Some(Value::String(s)) = row.get(c) {
            if !s.is_empty() {
                return Some(s.clone());
            }
        }
    }
    if table == "Encap" {
        return Some(format!("{}/{}", str_col(row, "type"), str_col(row, "ip")));
    }
    None
}

/// UUID → label for every row of every dump.
fn build_labels(dbs: &[DbDump]) -> HashMap<String, String> {
    let mut labels = HashMap::new();
    for db in dbs {
        for (table, row) in all_rows(&db.data) {
            if let (Some(u), Some(k)) = (row_uuid(row), simple_key(table, row)) {
                labels.insert(u, format!("{}:{table}:{k}", db.label));
            }
        }
    }
    let pass1 = labels.clone();
    for db in dbs {
        for (table, row) in all_rows(&db.data) {
            let Some(u) = row_uuid(row) else { continue };
            if labels.contains_key(&u) {
                continue;
            }
            let body = row_body(table, row, &|x: &str| {
                pass1.get(x).cloned().unwrap_or_else(|| "?".to_string())
            });
            labels.insert(u, format!("{}:{table}:{}", db.label, Value::Object(body)));
        }
    }
    labels
}

/// The row without `_uuid`/`_version`/dropped columns, values normalised, keys sorted
/// (serde_json's map is ordered by key).
fn row_body(
    table: &str,
    row: &Map<String, Value>,
    resolve: &dyn Fn(&str) -> String,
) -> Map<String, Value> {
    let mut out = Map::new();
    for (c, v) in row {
        if c == "_uuid" || c == "_version" || DROPPED.contains(&(table, c.as_str())) {
            continue;
        }
        out.insert(c.clone(), norm_value(v, resolve));
    }
    out
}

fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_digit() || ('a'..='f').contains(&c),
        })
}

fn norm_atom(a: &Value, resolve: &dyn Fn(&str) -> String) -> Value {
    match a {
        Value::Array(x) if x.len() == 2 && x[0] == "uuid" => {
            Value::String(resolve(x[1].as_str().unwrap_or_default()))
        }
        Value::String(s) if is_uuid(s) => Value::String(resolve(s)),
        other => other.clone(),
    }
}

fn norm_value(v: &Value, resolve: &dyn Fn(&str) -> String) -> Value {
    if let Value::Array(x) = v {
        if x.len() == 2 && x[0] == "map" {
            let mut m = BTreeMap::new();
            for kv in x[1].as_array().map(Vec::as_slice).unwrap_or(&[]) {
                if let Some([k, val]) = kv.as_array().map(Vec::as_slice) {
                    let k = match norm_atom(k, resolve) {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    m.insert(k, norm_atom(val, resolve));
                }
            }
            return Value::Object(m.into_iter().collect());
        }
        if x.len() == 2 && x[0] == "set" {
            let mut items: Vec<Value> = x[1]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or(&[])
                .iter()
                .map(|a| norm_atom(a, resolve))
                .collect();
            items.sort_by_key(|a| a.to_string());
            // A one-element set is printed as its atom by ovsdb-client; make both alike.
            return match items.len() {
                1 => items.remove(0),
                _ => Value::Array(items),
            };
        }
    }
    norm_atom(v, resolve)
}

// ------------------------------------------------------------------------------------------------
// Comparison
// ------------------------------------------------------------------------------------------------

/// Human-readable differences: per database and table, rows only the C daemon's run has (`-`)
/// and rows only ours has (`+`). Empty when equal.
pub fn diff(c: &Snapshot, ours: &Snapshot) -> String {
    let mut out = String::new();
    let dbs: BTreeSet<&String> = c.keys().chain(ours.keys()).collect();
    let empty = BTreeMap::new();
    for db in dbs {
        let (a, b) = (c.get(db).unwrap_or(&empty), ours.get(db).unwrap_or(&empty));
        let tables: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
        for t in tables {
            let ra: BTreeSet<&String> = a.get(t).into_iter().flatten().collect();
            let rb: BTreeSet<&String> = b.get(t).into_iter().flatten().collect();
            if ra == rb {
                continue;
            }
            out.push_str(&format!("--- {db} {t}\n"));
            for r in ra.difference(&rb) {
                out.push_str(&format!("-C    {r}\n"));
            }
            for r in rb.difference(&ra) {
                out.push_str(&format!("+ours {r}\n"));
            }
        }
    }
    out
}

// ------------------------------------------------------------------------------------------------
// Row helpers (shared with the runner)
// ------------------------------------------------------------------------------------------------

pub fn rows_mut<'a>(
    data: &'a mut Value,
    table: &str,
) -> impl Iterator<Item = &'a mut Map<String, Value>> {
    data.get_mut(table)
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object_mut)
}

pub fn rows<'a>(data: &'a Value, table: &str) -> impl Iterator<Item = &'a Map<String, Value>> {
    data.get(table)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
}

fn all_rows(data: &Value) -> impl Iterator<Item = (&str, &Map<String, Value>)> {
    data.as_object().into_iter().flatten().flat_map(|(t, rs)| {
        rs.as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_object)
            .map(move |r| (t.as_str(), r))
    })
}

pub fn row_uuid(row: &Map<String, Value>) -> Option<String> {
    uuids(row.get("_uuid")).into_iter().next()
}

pub fn str_col(row: &Map<String, Value>, col: &str) -> String {
    match row.get(col) {
        Some(Value::String(s)) => s.clone(),
        _ => String::new(),
    }
}

/// The UUIDs of a reference column (atom or set).
pub fn uuids(v: Option<&Value>) -> Vec<String> {
    fn atom(a: &Value) -> Option<String> {
        match a.as_array().map(Vec::as_slice) {
            Some([t, u]) if t == "uuid" => u.as_str().map(str::to_string),
            _ => None,
        }
    }
    match v {
        Some(Value::Array(x)) if x.len() == 2 && x[0] == "set" => x[1]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(atom)
            .collect(),
        Some(a) => atom(a).into_iter().collect(),
        None => Vec::new(),
    }
}

/// The strings of a string set column (atom or set).
pub fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(x)) if x.len() == 2 && x[0] == "set" => x[1]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a.as_str().map(str::to_string))
            .collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
}

fn map_pairs(row: &Map<String, Value>, col: &str) -> Vec<(String, String)> {
    match row.get(col).and_then(Value::as_array).map(Vec::as_slice) {
        Some([t, kvs]) if t == "map" => kvs
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|kv| match kv.as_array().map(Vec::as_slice) {
                Some([Value::String(k), Value::String(v)]) => Some((k.clone(), v.clone())),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

pub fn map_get(row: &Map<String, Value>, col: &str, key: &str) -> Option<String> {
    map_pairs(row, col)
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
}

fn map_write(row: &mut Map<String, Value>, col: &str, pairs: Vec<(String, String)>) {
    let kvs: Vec<Value> = pairs
        .into_iter()
        .map(|(k, v)| Value::Array(vec![Value::String(k), Value::String(v)]))
        .collect();
    row.insert(
        col.to_string(),
        Value::Array(vec![Value::String("map".into()), Value::Array(kvs)]),
    );
}

fn map_remove(row: &mut Map<String, Value>, col: &str, key: &str) {
    if row.contains_key(col) {
        let pairs = map_pairs(row, col)
            .into_iter()
            .filter(|(k, _)| k != key)
            .collect();
        map_write(row, col, pairs);
    }
}

fn map_set(row: &mut Map<String, Value>, col: &str, key: &str, val: &str) {
    let mut pairs: Vec<(String, String)> = map_pairs(row, col)
        .into_iter()
        .filter(|(k, _)| k != key)
        .collect();
    pairs.push((key.to_string(), val.to_string()));
    map_write(row, col, pairs);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn u(n: u8) -> String {
        format!("{n:08x}-0000-0000-0000-000000000000")
    }

    fn world(az_uuid: &str, key: i64, pkey: i64, lr: &str) -> Vec<DbDump> {
        vec![
            DbDump {
                label: "ic-sb".into(),
                kind: DbKind::IcSb,
                data: json!({
                    "Availability_Zone": [{"_uuid": ["uuid", az_uuid], "name": "az1"}],
                    "Datapath_Binding": [{"_uuid": ["uuid", u(9)], "transit_switch": "ts1",
                                          "tunnel_key": key, "external_ids": ["map", []]}],
                    "Port_Binding": [{"_uuid": ["uuid", u(8)], "logical_port": "p1",
                                      "transit_switch": "ts1", "tunnel_key": pkey,
                                      "availability_zone": ["uuid", az_uuid],
                                      "external_ids": ["map", [["router-id", lr]]]}],
                    "Connection": [{"_uuid": ["uuid", u(7)], "target": "ignored"}],
                }),
            },
            DbDump {
                label: "az1-nb".into(),
                kind: DbKind::Nb,
                data: json!({
                    "Logical_Router": [{"_uuid": ["uuid", lr], "name": "lr1"}],
                    "Logical_Switch": [{"_uuid": ["uuid", u(6)], "name": "ts1",
                        "ports": ["set", [["uuid", u(5)]]],
                        "other_config": ["map", [["interconn-ts", "ts1"],
                                                 ["requested-tnl-key", key.to_string()],
                                                 ["ic-vxlan_mode", "false"]]]}],
                    "Logical_Switch_Port": [{"_uuid": ["uuid", u(5)], "name": "p1",
                        "options": ["map", [["requested-tnl-key", pkey.to_string()]]]}],
                }),
            },
        ]
    }

    #[test]
    fn uuids_and_key_values_do_not_matter_but_assignments_do() {
        let a = normalise(world(&u(1), TS_KEY_MIN, 1, &u(2)));
        let b = normalise(world(&u(3), TS_KEY_MIN + 5, 7, &u(4)));
        assert_eq!(a, b, "{}", diff(&a, &b));
        let pb = &a["ic-sb"]["Port_Binding"][0];
        assert!(pb.contains("\"availability_zone\":\"ic-sb:Availability_Zone:az1\""));
        assert!(pb.contains("\"router-id\":\"az1-nb:Logical_Router:lr1\""));
        assert!(pb.contains("pkey:ts1/p1"));
        assert!(!a["ic-sb"].contains_key("Connection"));
        assert!(!a["az1-nb"]["Logical_Switch"][0].contains("ic-vxlan_mode"));

        // NB asking for a key IC-SB does not assign to that switch is a difference.
        let mut bad = world(&u(1), TS_KEY_MIN, 1, &u(2));
        map_set(
            rows_mut(&mut bad[1].data, "Logical_Switch").next().unwrap(),
            "other_config",
            "requested-tnl-key",
            "5",
        );
        let c = normalise(bad);
        assert_ne!(a, c);
        let d = diff(&a, &c);
        assert!(d.contains("--- az1-nb Logical_Switch"), "{d}");
        assert!(d.contains("dpkey:?5"), "{d}");
    }

    #[test]
    fn orphan_routes_and_what_was_learned_from_them_are_dropped() {
        let isb = |with_pb: bool| {
            let pbs = if with_pb {
                json!([{"_uuid": ["uuid", u(8)], "logical_port": "p1", "transit_switch": "ts1",
                        "availability_zone": ["uuid", u(1)], "tunnel_key": 1,
                        "external_ids": ["map", [["router-id", u(4)]]]}])
            } else {
                json!([])
            };
            DbDump {
                label: "ic-sb".into(),
                kind: DbKind::IcSb,
                data: json!({
                    "Availability_Zone": [{"_uuid": ["uuid", u(1)], "name": "az1"}],
                    "Port_Binding": pbs,
                    "Route": [{"_uuid": ["uuid", u(2)], "transit_switch": "ts1",
                               "availability_zone": ["uuid", u(1)], "route_table": "",
                               "ip_prefix": "10.0.0.0/24", "nexthop": "169.254.1.1",
                               "origin": "static", "external_ids": ["map", []]}],
                }),
            }
        };
        let nb = DbDump {
            label: "az2-nb".into(),
            kind: DbKind::Nb,
            data: json!({
                "Logical_Router": [{"_uuid": ["uuid", u(5)], "name": "lr2",
                                    "static_routes": ["set", [["uuid", u(6)]]]}],
                "Logical_Router_Static_Route": [{"_uuid": ["uuid", u(6)],
                    "ip_prefix": "10.0.0.0/24", "nexthop": "169.254.1.1",
                    "external_ids": ["map", [["ic-learned-route", u(2)]]]}],
            }),
        };
        let kept = normalise(vec![isb(true), nb.clone()]);
        assert_eq!(kept["ic-sb"]["Route"].len(), 1);
        assert_eq!(kept["az2-nb"]["Logical_Router_Static_Route"].len(), 1);
        let dropped = normalise(vec![isb(false), nb]);
        assert!(dropped["ic-sb"]["Route"].is_empty());
        assert!(dropped["az2-nb"]["Logical_Router_Static_Route"].is_empty());
        assert!(dropped["az2-nb"]["Logical_Router"][0].contains("\"static_routes\":[]"));
    }

    #[test]
    fn out_of_range_keys_show() {
        let a = normalise(world(&u(1), 5, 1, &u(2)));
        assert!(a["ic-sb"]["Datapath_Binding"][0].contains("out-of-range:5"));
    }

    #[test]
    fn sets_and_maps_are_order_independent() {
        let r = |v: Value| norm_value(&v, &|s: &str| s.to_string());
        assert_eq!(r(json!(["set", ["b", "a"]])), r(json!(["set", ["a", "b"]])));
        assert_eq!(r(json!(["set", ["a"]])), r(json!("a")));
        assert_eq!(
            r(json!(["map", [["y", "1"], ["x", "2"]]])),
            json!({"x": "2", "y": "1"})
        );
        assert!(is_uuid(&u(1)));
        assert!(!is_uuid("not-a-uuid"));
    }
}
