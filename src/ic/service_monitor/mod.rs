//! Service_Monitor synchronisation (spec ovn-ic-routes.md Part C).
//!
//! A load balancer in a source AZ may health-check a backend whose logical port lives in a
//! target AZ. Northd of the source creates an SB `Service_Monitor` with `remote = true` and
//! `options:az-name = <target>`; this stage:
//!
//! * (source side) publishes each such monitor as an IC-SB `Service_Monitor` (unlocked session)
//!   with `source_availability_zone` = own AZ name, rewrites its `options` every run, copies the
//!   IC-SB `status` back into the SB row, and deletes own IC-SB rows no longer pushed;
//! * (target side) mirrors every IC-SB monitor targeting this AZ whose port binding exists here
//!   into a local SB monitor (`remote = false`, `ic_learned = true`) that ovn-controller probes,
//!   copies that SB row's `status` into the IC-SB row, keeps `options` and `chassis_name` of
//!   rows it owns (`ic_learned = true`) up to date, and deletes owned rows no longer needed.
//!
//! Rows northd owns (`ic_learned = false`) are only read for their status: that is what keeps
//! ovn-ic and northd from rewriting each other's `options` forever (upstream bc1bd2135).
//!
//! Nothing happens without `SB_Global.options:svc_monitor_mac` (not even deletions), or when
//! the servers lack IC-SB `Service_Monitor` or SB `Service_Monitor.remote`/`.ic_learned`
//! (§E.2). A `type` column missing on either side makes `type` count as absent on both.
//!
//! Beyond upstream ([REC] of §C.4, and robustness):
//! * a pushed monitor whose `az-name` is the own AZ is ignored;
//! * when the target SB already has a row with the same unique-index tuple
//!   (`logical_port`, `ip`, `port`, `protocol`) but a different `src_ip`/`type`, a `remote =
//!   false` row is treated as the match and a `remote = true` one blocks the insert (logged),
//!   instead of failing every SB transaction;
//! * a monitor whose `type`/`protocol` the destination schema's enum does not accept is not
//!   copied (logged), instead of failing every transaction.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use crate::ic::incr::{Keys, Unhandled};
use crate::ic::{Ctx, Out, Target, Views};
use crate::ovsdb::overlay::{Intents, RowIntent, View};
use crate::ovsdb::replica::{Change, ChangeKind, Row};
use crate::ovsdb::{Atom, Datum, Uuid};

const TABLE: &str = "Service_Monitor";

/// Rate limit of this stage's warnings (upstream's usual 5/min, burst 1).
static WARN_RL: crate::daemon::vlog::RateLimit = crate::daemon::vlog::RateLimit::new(5, 1);

/// The fields two monitors are matched on (both directions).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Key {
    ty: Option<String>,
    ip: String,
    port: i64,
    protocol: Option<String>,
    logical_port: String,
    src_ip: String,
}

impl Key {
    fn of(row: &Row, use_type: bool) -> Key {
        Key {
            ty: if use_type { opt_str(row, "type") } else { None },
            ip: row.str("ip").to_string(),
            port: row.int("port").unwrap_or(0),
            protocol: opt_str(row, "protocol"),
            logical_port: row.str("logical_port").to_string(),
            src_ip: row.str("src_ip").to_string(),
        }
    }

    /// The SB unique index (`logical_port`, `ip`, `port`, `protocol`).
    fn same_index(&self, o: &Key) -> bool {
        self.logical_port == o.logical_port
            && self.ip == o.ip
            && self.port == o.port
            && self.protocol == o.protocol
    }
}

/// An optional string column (empty set = absent).
fn opt_str(row: &Row, col: &str) -> Option<String> {
    row.get(col).as_str().map(str::to_string)
}

fn opt_datum(v: &Option<String>) -> Datum {
    match v {
        Some(s) => Datum::scalar(s.as_str()),
        None => Datum::empty_set(),
    }
}

/// Whether `value` is acceptable for `table.column` of `view`'s server: true when the column is
/// absent (the output stage drops it) or has no enum or the enum contains the value.
fn enum_allows(view: &View, column: &str, value: &Option<String>) -> bool {
    let Some(v) = value else {
        return true;
    };
    let Some(col) = view
        .replica()
        .schema()
        .and_then(|s| s.tables.get(TABLE))
        .and_then(|t| t.column(column))
    else {
        return true;
    };
    if !view.replica().has_column(TABLE, column) {
        return true;
    }
    col.ty
        .key
        .enum_values
        .as_ref()
        .map_or(true, |e| e.contains(&Atom::from(v.as_str())))
}

/// Whether the destination accepts a monitor with this key's `type` and `protocol`.
fn insertable(dest: &View, k: &Key, what: &str) -> bool {
    for (col, val) in [("type", &k.ty), ("protocol", &k.protocol)] {
        if !enum_allows(dest, col, val) {
            crate::vlog_rl!(WARN_RL, warn,
                target: "ovn_ic",
                "Service monitor {}:{}:{} on port {} has a {} \"{}\" that {} does not support; not syncing it.",
                k.ip,
                k.port,
                k.protocol.as_deref().unwrap_or(""),
                k.logical_port,
                col,
                val.as_deref().unwrap_or(""),
                what
            );
            return false;
        }
    }
    true
}

/// Part C is possible against these servers.
fn supported(v: &Views) -> bool {
    let sb = v.sb.replica();
    v.icsb.replica().has_table(TABLE)
        && sb.has_table(TABLE)
        && sb.has_column(TABLE, "remote")
        && sb.has_column(TABLE, "ic_learned")
}

/// An IC-SB monitor as matched in step 5.
struct IsbMon {
    uuid: Uuid,
    target: String,
    key: Key,
    status: Datum,
}

/// An SB monitor as matched in step 6.
struct SbMon {
    uuid: Uuid,
    key: Key,
    remote: bool,
    ic_learned: bool,
    status: Datum,
}

/// Synchronise service monitors for the local AZ. See the module documentation.
pub fn run(v: &Views, ctx: &Ctx, out: &mut Out) {
    if !supported(v) {
        return;
    }
    sync(v, ctx, v.sb.rows(TABLE), v.icsb.rows(TABLE), out);
}

/// The work of [`run`] for the logical ports in `keys` only. The unit of work is a monitored
/// logical port: monitors are matched (both directions, and by the SB unique index) only with
/// monitors of the same `logical_port`, the port binding is looked up by it, and the chassis
/// name comes from that binding.
///
/// Called several times in one engine run, a port already handled in this run (`out` has its
/// writes) is skipped: the views are the same, so it would yield the same writes again.
pub fn run_scoped(v: &Views, ctx: &Ctx, keys: &Keys, out: &mut Out) -> Result<(), Unhandled> {
    if !supported(v) {
        return Ok(());
    }
    let done = done_keys(v, out);
    let keys: Vec<&String> = keys.iter().filter(|k| !done.contains(*k)).collect();
    let (sb, isb) = (on_ports(&v.sb, &keys), on_ports(&v.icsb, &keys));
    sync(v, ctx, sb, isb, out);
    Ok(())
}

/// The monitors of the logical ports `keys`, in UUID order.
fn on_ports<'a>(view: &View<'a>, keys: &[&String]) -> Vec<Cow<'a, Row>> {
    let mut rows = BTreeMap::new();
    for k in keys {
        for r in view.find_by_str(TABLE, "logical_port", k) {
            rows.insert(r.uuid(), r);
        }
    }
    rows.into_values().collect()
}

/// The logical ports whose monitors `out` already writes.
fn done_keys(v: &Views, out: &Out) -> Keys {
    let mut keys = Keys::new();
    for (view, intents) in [(&v.sb, &out.sb), (&v.icsb, &out.icsb)] {
        for (u, i) in intents.table(TABLE) {
            match i {
                RowIntent::Insert(cols) => {
                    if let Some(n) = cols.get("logical_port").and_then(Datum::as_str) {
                        keys.insert(n.to_string());
                    }
                }
                RowIntent::Update(_) | RowIntent::Delete => {
                    if let Some(r) = view.get(TABLE, *u) {
                        keys.insert(r.str("logical_port").to_string());
                    }
                }
            }
        }
    }
    keys
}

/// The logical ports that tracked `changes` of `table` in database `target` touch:
/// monitors (SB and IC-SB) by their old and new `logical_port`; SB port bindings likewise when
/// `logical_port`, `up` or `chassis` changed; SB chassis created, deleted or renamed via the
/// port bindings bound to them. A change of `SB_Global.options:svc_monitor_mac` (or an
/// `SB_Global` row inserted or deleted) is not handled; other changes are irrelevant.
pub fn keys_for_table(
    v: &Views,
    _ctx: &Ctx,
    target: Target,
    table: &str,
    changes: &[Change],
) -> Result<Keys, Unhandled> {
    let mut keys = Keys::new();
    if !supported(v) {
        return Ok(keys);
    }
    let ports_of = |c: &Change, keys: &mut Keys| {
        for r in [c.old, c.new].into_iter().flatten() {
            keys.insert(r.str("logical_port").to_string());
        }
    };
    match (target, table) {
        (Target::Sb, "SB_Global") => {
            for c in changes {
                let (Some(old), Some(new)) = (c.old, c.new) else {
                    return Err(Unhandled("SB_Global row inserted or deleted"));
                };
                let mac = |r: &Row| r.smap_get("options", "svc_monitor_mac").map(str::to_string);
                if mac(old) != mac(new) {
                    return Err(Unhandled("svc_monitor_mac changed"));
                }
            }
        }
        (Target::Sb | Target::IcSb | Target::IcSbLocked, TABLE) => {
            for c in changes {
                ports_of(c, &mut keys);
            }
        }
        (Target::Sb, "Port_Binding") => {
            for c in changes {
                if c.kind != ChangeKind::Updated || PB_COLS.iter().any(|col| c.column_changed(col))
                {
                    ports_of(c, &mut keys);
                }
            }
        }
        (Target::Sb, "Chassis") => {
            let chassis: BTreeSet<Uuid> = changes
                .iter()
                .filter(|c| c.kind != ChangeKind::Updated || c.column_changed("name"))
                .map(|c| c.uuid)
                .collect();
            if !chassis.is_empty() {
                for pb in v.sb.rows("Port_Binding") {
                    if pb.uuid_of("chassis").is_some_and(|c| chassis.contains(&c)) {
                        keys.insert(pb.str("logical_port").to_string());
                    }
                }
            }
        }
        _ => {}
    }
    Ok(keys)
}

/// The SB `Port_Binding` columns the stage reads.
const PB_COLS: [&str; 3] = ["logical_port", "up", "chassis"];

/// The logical ports whose port bindings the port-binding stage (`upstream`) really changes
/// in this run (bindings it moves between chassis). It writes nothing else this stage reads;
/// if it did (chassis, monitors, `SB_Global`), that is not handled.
pub fn keys_for_stage(v: &Views, _ctx: &Ctx, upstream: &Out) -> Result<Keys, Unhandled> {
    let mut keys = Keys::new();
    if !supported(v) {
        return Ok(keys);
    }
    for t in ["Chassis", "SB_Global", TABLE] {
        if upstream.sb.table(t).next().is_some() || upstream.icsb.table(t).next().is_some() {
            return Err(Unhandled("upstream wrote what service monitors read"));
        }
    }
    let base = v.sb.replica();
    for (u, i) in upstream.sb.table("Port_Binding") {
        let old = base.get("Port_Binding", *u);
        let touched = match i {
            RowIntent::Insert(_) | RowIntent::Delete => true,
            RowIntent::Update(cols) => cols
                .iter()
                .any(|(c, d)| PB_COLS.contains(&c.as_str()) && old.is_some_and(|r| r.get(c) != d)),
        };
        if !touched {
            continue;
        }
        if let RowIntent::Insert(cols) = i {
            if let Some(p) = cols.get("logical_port").and_then(Datum::as_str) {
                keys.insert(p.to_string());
            }
        }
        for r in old
            .into_iter()
            .map(Cow::Borrowed)
            .chain(v.sb.get("Port_Binding", *u))
        {
            keys.insert(r.str("logical_port").to_string());
        }
    }
    Ok(keys)
}

/// Updates of one run, applied to `out` at the end with only the columns that really change
/// (so that a run with nothing to do leaves `out` empty). Later updates of a column win, as
/// when they went to `out` directly.
#[derive(Default)]
struct Pending {
    sb: Intents,
    icsb: Intents,
}

impl Pending {
    fn flush(self, v: &Views, out: &mut Out) {
        for (view, pending, intents) in [
            (&v.sb, self.sb, &mut out.sb),
            (&v.icsb, self.icsb, &mut out.icsb),
        ] {
            for (u, i) in pending.table(TABLE) {
                let RowIntent::Update(cols) = i else { continue };
                let row = view.get(TABLE, *u);
                let cols: Vec<(&str, Datum)> = cols
                    .iter()
                    .filter(|(c, d)| match &row {
                        // A row inserted in this run: the update completes the insert.
                        None => true,
                        Some(r) => view.replica().has_column(TABLE, c) && r.get(c) != *d,
                    })
                    .map(|(c, d)| (c.as_str(), d.clone()))
                    .collect();
                if !cols.is_empty() {
                    intents.update(TABLE, *u, cols);
                }
            }
        }
    }
}

/// The per-port work of [`run`] on the given SB and IC-SB monitors (all, or those of some
/// logical ports), each in UUID order.
fn sync(v: &Views, ctx: &Ctx, sb_rows: Vec<Cow<Row>>, isb_rows: Vec<Cow<Row>>, out: &mut Out) {
    let mut pending = Pending::default();
    sync_in(v, ctx, sb_rows, isb_rows, &mut pending, out);
    pending.flush(v, out);
}

fn sync_in(
    v: &Views,
    ctx: &Ctx,
    sb_rows: Vec<Cow<Row>>,
    isb_rows: Vec<Cow<Row>>,
    pending: &mut Pending,
    out: &mut Out,
) {
    // 0. The gate and the MAC this AZ's monitors use.
    let Some(mac) =
        v.sb.rows("SB_Global")
            .first()
            .and_then(|g| g.smap_get("options", "svc_monitor_mac").map(str::to_string))
    else {
        return;
    };
    let use_type =
        v.icsb.replica().has_column(TABLE, "type") && v.sb.replica().has_column(TABLE, "type");

    // 3./4. What this AZ owns on each side.
    let mut own_isb: BTreeSet<Uuid> = isb_rows
        .iter()
        .filter(|r| r.str("source_availability_zone") == ctx.az_name)
        .map(|r| r.uuid())
        .collect();
    let mut own_sb: BTreeSet<Uuid> = sb_rows
        .iter()
        .filter(|r| r.bool("ic_learned") == Some(true))
        .map(|r| r.uuid())
        .collect();

    // Matching candidates, extended by what this run inserts (read-your-writes).
    let mut isb: Vec<IsbMon> = isb_rows
        .iter()
        .map(|r| IsbMon {
            uuid: r.uuid(),
            target: r.str("target_availability_zone").to_string(),
            key: Key::of(r, use_type),
            status: r.get("status").clone(),
        })
        .collect();
    let mut sb: Vec<SbMon> = sb_rows
        .iter()
        .map(|r| SbMon {
            uuid: r.uuid(),
            key: Key::of(r, use_type),
            remote: r.bool("remote") == Some(true),
            ic_learned: r.bool("ic_learned") == Some(true),
            status: r.get("status").clone(),
        })
        .collect();

    // 1./5. Monitors pushed to other AZs.
    for p in sb_rows.iter().filter(|r| r.bool("remote") == Some(true)) {
        let Some(target) = p.smap_get("options", "az-name") else {
            continue;
        };
        let key = Key::of(p, use_type);
        if target == ctx.az_name {
            crate::vlog_rl!(WARN_RL, warn,
                target: "ovn_ic",
                "Remote service monitor {}:{} on port {} targets the local availability zone {}; ignoring it.",
                key.ip,
                key.port,
                key.logical_port,
                target
            );
            continue;
        }
        let options = p.get("options").clone();
        let found = isb.iter().find(|i| i.target == target && i.key == key);
        let uuid = match found {
            Some(i) => {
                pending
                    .sb
                    .update(TABLE, p.uuid(), vec![("status", i.status.clone())]);
                pending
                    .icsb
                    .update(TABLE, i.uuid, vec![("options", options)]);
                i.uuid
            }
            None => {
                if !insertable(&v.icsb, &key, "IC-SB") {
                    continue;
                }
                let uuid = out.icsb.insert(
                    TABLE,
                    vec![
                        ("type", opt_datum(&key.ty)),
                        ("ip", Datum::scalar(key.ip.as_str())),
                        ("port", Datum::scalar(key.port)),
                        ("src_ip", Datum::scalar(key.src_ip.as_str())),
                        ("src_mac", Datum::scalar(mac.as_str())),
                        ("protocol", opt_datum(&key.protocol)),
                        ("logical_port", Datum::scalar(key.logical_port.as_str())),
                        ("target_availability_zone", Datum::scalar(target)),
                        (
                            "source_availability_zone",
                            Datum::scalar(ctx.az_name.as_str()),
                        ),
                        ("options", options),
                    ],
                );
                isb.push(IsbMon {
                    uuid,
                    target: target.to_string(),
                    key,
                    status: Datum::empty_set(),
                });
                uuid
            }
        };
        own_isb.remove(&uuid);
    }

    // 2./6. Monitors other AZs pushed to this one, whose port binding exists here.
    for i in isb_rows
        .iter()
        .filter(|r| r.str("target_availability_zone") == ctx.az_name)
    {
        let key = Key::of(i, use_type);
        let Some(pb) =
            v.sb.find_by_str("Port_Binding", "logical_port", &key.logical_port)
                .into_iter()
                .next()
        else {
            continue;
        };
        if pb.get("up").is_empty() {
            continue;
        }
        let chassis_name = pb
            .uuid_of("chassis")
            .and_then(|c| v.sb.get("Chassis", c))
            .map(|c| c.str("name").to_string());
        let options = i.get("options").clone();

        let exact = sb.iter().position(|s| !s.remote && s.key == key);
        // [REC] a row holding the SB unique-index tuple is the match (or blocks the insert).
        let by_index = || sb.iter().position(|s| s.key.same_index(&key));
        let idx = match exact.or_else(by_index) {
            Some(n) if sb[n].remote => {
                crate::vlog_rl!(WARN_RL, warn,
                    target: "ovn_ic",
                    "Service monitor {}:{} on port {} from availability zone {} conflicts with a local remote monitor; not syncing it.",
                    key.ip,
                    key.port,
                    key.logical_port,
                    i.str("source_availability_zone")
                );
                continue;
            }
            Some(n) => {
                pending
                    .icsb
                    .update(TABLE, i.uuid(), vec![("status", sb[n].status.clone())]);
                n
            }
            None => {
                if !insertable(&v.sb, &key, "SB") {
                    continue;
                }
                let mut cols = vec![
                    ("type", opt_datum(&key.ty)),
                    ("ip", Datum::scalar(key.ip.as_str())),
                    ("port", Datum::scalar(key.port)),
                    ("src_ip", Datum::scalar(key.src_ip.as_str())),
                    ("src_mac", Datum::scalar(mac.as_str())),
                    ("protocol", opt_datum(&key.protocol)),
                    ("logical_port", Datum::scalar(key.logical_port.as_str())),
                    ("remote", Datum::scalar(false)),
                    ("ic_learned", Datum::scalar(true)),
                    ("options", options.clone()),
                ];
                if let Some(c) = &chassis_name {
                    cols.push(("chassis_name", Datum::scalar(c.as_str())));
                }
                let uuid = out.sb.insert(TABLE, cols);
                sb.push(SbMon {
                    uuid,
                    key: key.clone(),
                    remote: false,
                    ic_learned: true,
                    status: Datum::empty_set(),
                });
                own_sb.remove(&uuid);
                continue;
            }
        };
        let s = &sb[idx];
        if s.ic_learned {
            let mut cols = vec![("options", options)];
            if let Some(c) = &chassis_name {
                cols.push(("chassis_name", Datum::scalar(c.as_str())));
            }
            pending.sb.update(TABLE, s.uuid, cols);
            own_sb.remove(&s.uuid);
        }
    }

    // 7. What this AZ owns and no longer needs.
    for u in own_isb {
        out.icsb.delete(TABLE, u);
    }
    for u in own_sb {
        out.sb.delete(TABLE, u);
    }
}

#[cfg(test)]
mod incr_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ic::testutil::{empty, replica, u};
    use crate::ic::Dbs;
    use crate::ovsdb::overlay::{Intents, RowIntent};
    use crate::ovsdb::replica::Replica;
    use serde_json::{json, Value};
    use std::collections::BTreeMap;

    const MAC: &str = "0a:00:00:00:00:01";

    struct World {
        nb: Replica,
        sb: Replica,
        icnb: Replica,
        icsb: Replica,
    }

    fn supported_schemas() -> bool {
        let icsb = empty("ovn-ic-sb");
        let sb = empty("ovn-sb");
        let ok = icsb.has_table(TABLE)
            && sb.has_column(TABLE, "remote")
            && sb.has_column(TABLE, "ic_learned");
        if !ok {
            eprintln!("skipping: schemas without IC-SB Service_Monitor / SB remote, ic_learned");
        }
        ok
    }

    fn smap(kv: &[(&str, &str)]) -> Value {
        json!([
            "map",
            kv.iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>()
        ])
    }

    fn world(sb: Value, icsb: Value) -> World {
        World {
            nb: replica("ovn-nb", json!({})),
            sb: replica("ovn-sb", sb),
            icnb: replica("ovn-ic-nb", json!({})),
            icsb: replica("ovn-ic-sb", icsb),
        }
    }

    fn ctx(name: &str) -> Ctx {
        Ctx {
            az: u(0xa1).parse().unwrap(),
            az_name: name.into(),
            isb_leader: false,
        }
    }

    fn run_on(w: &World, az: &str) -> Out {
        let dbs = Dbs {
            nb: &w.nb,
            sb: &w.sb,
            icnb: &w.icnb,
            icsb: &w.icsb,
            icsb_locked: &w.icsb,
        };
        let mut out = Out::default();
        run(&Views::new(dbs), &ctx(az), &mut out);
        out
    }

    fn uu(n: u32) -> Uuid {
        u(n).parse().unwrap()
    }

    fn inserts(i: &Intents) -> Vec<BTreeMap<String, Datum>> {
        i.table(TABLE)
            .filter_map(|(_, r)| match r {
                RowIntent::Insert(c) => Some(c.clone()),
                _ => None,
            })
            .collect()
    }

    fn deletes(i: &Intents) -> Vec<Uuid> {
        i.table(TABLE)
            .filter_map(|(u, r)| matches!(r, RowIntent::Delete).then_some(*u))
            .collect()
    }

    fn update(i: &Intents, uuid: Uuid) -> Option<BTreeMap<String, Datum>> {
        match i.get(TABLE, uuid) {
            Some(RowIntent::Update(c)) => Some(c.clone()),
            _ => None,
        }
    }

    fn sb_global() -> Value {
        json!({u(1): {"options": smap(&[("svc_monitor_mac", MAC)])}})
    }

    /// A pushed (remote) SB monitor in the source AZ.
    fn pushed(target: &str, status: Option<&str>) -> Value {
        let mut r = json!({
            "type": "load-balancer", "ip": "10.0.0.5", "port": 80, "protocol": "tcp",
            "logical_port": "lport1", "src_ip": "10.0.0.254", "src_mac": "11:11:11:11:11:11",
            "remote": true,
            "options": smap(&[("az-name", target), ("interval", "5")]),
        });
        if let Some(s) = status {
            r["status"] = json!(s);
        }
        r
    }

    /// The IC-SB image of `pushed`.
    fn isb_row(source: &str, target: &str, status: Option<&str>) -> Value {
        let mut r = json!({
            "type": "load-balancer", "ip": "10.0.0.5", "port": 80, "protocol": "tcp",
            "logical_port": "lport1", "src_ip": "10.0.0.254", "src_mac": "11:11:11:11:11:11",
            "source_availability_zone": source, "target_availability_zone": target,
            "options": smap(&[("az-name", target), ("interval", "5")]),
        });
        if let Some(s) = status {
            r["status"] = json!(s);
        }
        r
    }

    #[test]
    fn source_publishes_pushed_monitor() {
        if !supported_schemas() {
            return;
        }
        let w = world(
            json!({
                "SB_Global": sb_global(),
                "Service_Monitor": {
                    u(10): pushed("az2", Some("offline")),
                    // No az-name: ignored.
                    u(11): {"ip": "10.0.0.6", "port": 80, "protocol": "tcp",
                            "logical_port": "lport2", "src_ip": "10.0.0.254", "remote": true},
                    // Targets ourselves: ignored ([REC]).
                    u(12): {"ip": "10.0.0.7", "port": 80, "protocol": "tcp",
                            "logical_port": "lport3", "src_ip": "10.0.0.254", "remote": true,
                            "options": smap(&[("az-name", "az1")])},
                    // Local monitor: nothing to push.
                    u(13): {"ip": "10.0.0.8", "port": 80, "protocol": "tcp",
                            "logical_port": "lport4", "src_ip": "10.0.0.254"},
                }
            }),
            json!({}),
        );
        let out = run_on(&w, "az1");
        let ins = inserts(&out.icsb);
        assert_eq!(ins.len(), 1);
        let r = &ins[0];
        assert_eq!(r["type"], Datum::scalar("load-balancer"));
        assert_eq!(r["ip"], Datum::scalar("10.0.0.5"));
        assert_eq!(r["port"], Datum::scalar(80));
        assert_eq!(r["protocol"], Datum::scalar("tcp"));
        assert_eq!(r["logical_port"], Datum::scalar("lport1"));
        assert_eq!(r["src_ip"], Datum::scalar("10.0.0.254"));
        // The source AZ's svc_monitor_mac, not the SB row's src_mac.
        assert_eq!(r["src_mac"], Datum::scalar(MAC));
        assert_eq!(r["target_availability_zone"], Datum::scalar("az2"));
        assert_eq!(r["source_availability_zone"], Datum::scalar("az1"));
        assert_eq!(
            r["options"],
            Datum::smap([("az-name", "az2"), ("interval", "5")])
        );
        assert!(!r.contains_key("status") && !r.contains_key("external_ids"));
        // The SB status is untouched until the IC-SB row exists.
        assert!(out.sb.is_empty());
        assert!(out.icsb_locked.is_empty() && out.nb.is_empty());
    }

    #[test]
    fn source_copies_status_and_rewrites_options() {
        if !supported_schemas() {
            return;
        }
        let mut isb_a = isb_row("az1", "az2", Some("online"));
        isb_a["options"] = smap(&[("az-name", "az2"), ("interval", "10")]);
        let w = world(
            json!({
                "SB_Global": sb_global(),
                "Service_Monitor": {u(10): pushed("az2", Some("offline"))}
            }),
            json!({"Service_Monitor": {
                u(20): isb_a,
                // Own row nobody pushes any more: deleted.
                u(21): {"ip": "10.9.9.9", "port": 1, "logical_port": "gone",
                        "source_availability_zone": "az1", "target_availability_zone": "az3"},
                // Another source's row: not ours.
                u(22): {"ip": "10.9.9.9", "port": 1, "logical_port": "other",
                        "source_availability_zone": "az3", "target_availability_zone": "az2"},
            }}),
        );
        let out = run_on(&w, "az1");
        assert!(inserts(&out.icsb).is_empty());
        assert_eq!(
            update(&out.sb, uu(10)).unwrap()["status"],
            Datum::scalar("online")
        );
        assert_eq!(
            update(&out.icsb, uu(20)).unwrap()["options"],
            Datum::smap([("az-name", "az2"), ("interval", "5")])
        );
        assert_eq!(deletes(&out.icsb), vec![uu(21)]);
        assert!(deletes(&out.sb).is_empty());
    }

    #[test]
    fn absent_isb_status_clears_sb_status() {
        if !supported_schemas() {
            return;
        }
        let w = world(
            json!({
                "SB_Global": sb_global(),
                "Service_Monitor": {u(10): pushed("az2", Some("offline"))}
            }),
            json!({"Service_Monitor": {u(20): isb_row("az1", "az2", None)}}),
        );
        let out = run_on(&w, "az1");
        assert_eq!(
            update(&out.sb, uu(10)).unwrap()["status"],
            Datum::empty_set()
        );
    }

    #[test]
    fn identical_monitor_of_another_source_is_reused() {
        if !supported_schemas() {
            return;
        }
        // [QUIRK] the source AZ is not part of the match.
        let w = world(
            json!({
                "SB_Global": sb_global(),
                "Service_Monitor": {u(10): pushed("az2", None)}
            }),
            json!({"Service_Monitor": {u(20): isb_row("az3", "az2", Some("error"))}}),
        );
        let out = run_on(&w, "az1");
        assert!(inserts(&out.icsb).is_empty());
        assert_eq!(
            update(&out.sb, uu(10)).unwrap()["status"],
            Datum::scalar("error")
        );
        // Reused as is: its options already equal the pushed row's, so nothing is rewritten.
        assert!(update(&out.icsb, uu(20)).is_none());
        assert!(deletes(&out.icsb).is_empty());
    }

    #[test]
    fn match_requires_every_field() {
        if !supported_schemas() {
            return;
        }
        let mut other_port = isb_row("az1", "az2", None);
        other_port["port"] = json!(81);
        let mut other_target = isb_row("az1", "az3", None);
        other_target["options"] = smap(&[("az-name", "az3")]);
        let mut no_type = isb_row("az1", "az2", None);
        no_type["type"] = json!(["set", []]);
        let w = world(
            json!({
                "SB_Global": sb_global(),
                "Service_Monitor": {u(10): pushed("az2", None)}
            }),
            json!({"Service_Monitor": {
                u(20): other_port, u(21): other_target, u(22): no_type
            }}),
        );
        let out = run_on(&w, "az1");
        assert_eq!(inserts(&out.icsb).len(), 1);
        let mut d = deletes(&out.icsb);
        d.sort();
        assert_eq!(d, vec![uu(20), uu(21), uu(22)]);
    }

    fn target_sb(extra_monitors: Value, pb_up: Value) -> Value {
        let mut mons = extra_monitors;
        if mons.is_null() {
            mons = json!({});
        }
        let mut pb = json!({"logical_port": "lport1", "datapath": ["uuid", u(50)],
                            "tunnel_key": 1, "chassis": ["uuid", u(60)]});
        if !pb_up.is_null() {
            pb["up"] = pb_up;
        }
        json!({
            "SB_Global": {u(1): {"options": smap(&[("svc_monitor_mac", "0a:00:00:00:00:02")])}},
            "Datapath_Binding": {u(50): {"tunnel_key": 1}},
            "Chassis": {u(60): {"name": "hv1", "hostname": "hv1"}},
            "Port_Binding": {u(40): pb},
            "Service_Monitor": mons,
        })
    }

    #[test]
    fn target_creates_ic_learned_monitor() {
        if !supported_schemas() {
            return;
        }
        let w = world(
            target_sb(Value::Null, json!(false)),
            json!({"Service_Monitor": {u(20): isb_row("az1", "az2", None)}}),
        );
        let out = run_on(&w, "az2");
        let ins = inserts(&out.sb);
        assert_eq!(ins.len(), 1);
        let r = &ins[0];
        assert_eq!(r["type"], Datum::scalar("load-balancer"));
        assert_eq!(r["ip"], Datum::scalar("10.0.0.5"));
        assert_eq!(r["port"], Datum::scalar(80));
        assert_eq!(r["src_ip"], Datum::scalar("10.0.0.254"));
        assert_eq!(r["protocol"], Datum::scalar("tcp"));
        assert_eq!(r["logical_port"], Datum::scalar("lport1"));
        // The target AZ's own MAC.
        assert_eq!(r["src_mac"], Datum::scalar("0a:00:00:00:00:02"));
        assert_eq!(r["remote"], Datum::scalar(false));
        assert_eq!(r["ic_learned"], Datum::scalar(true));
        assert_eq!(r["chassis_name"], Datum::scalar("hv1"));
        assert_eq!(
            r["options"],
            Datum::smap([("az-name", "az2"), ("interval", "5")])
        );
        assert!(!r.contains_key("status"));
        // The new row has no status to copy back yet.
        assert!(out.icsb.is_empty());
    }

    #[test]
    fn target_skips_ports_without_binding_or_up() {
        if !supported_schemas() {
            return;
        }
        let mut other = isb_row("az1", "az2", None);
        other["logical_port"] = json!("nowhere");
        let w = world(
            target_sb(
                json!({
                    // An ic_learned row for the port whose binding has no `up`: deleted.
                    u(30): {"ip": "10.0.0.5", "port": 80, "protocol": "tcp",
                            "type": "load-balancer",
                            "logical_port": "lport1", "src_ip": "10.0.0.254",
                            "ic_learned": true},
                }),
                Value::Null,
            ),
            json!({"Service_Monitor": {u(20): isb_row("az1", "az2", None), u(21): other}}),
        );
        let out = run_on(&w, "az2");
        assert!(inserts(&out.sb).is_empty());
        assert_eq!(deletes(&out.sb), vec![uu(30)]);
        assert!(out.icsb.is_empty());
    }

    #[test]
    fn target_syncs_status_options_and_chassis_of_owned_rows() {
        if !supported_schemas() {
            return;
        }
        let w = world(
            target_sb(
                json!({u(30): {"ip": "10.0.0.5", "port": 80, "protocol": "tcp",
                               "type": "load-balancer", "status": "online",
                               "logical_port": "lport1", "src_ip": "10.0.0.254",
                               "chassis_name": "old", "ic_learned": true,
                               "options": smap(&[("interval", "1")])},
                       // Another ic_learned row nobody needs.
                       u(31): {"ip": "10.0.0.9", "port": 80, "protocol": "tcp",
                               "logical_port": "lport9", "src_ip": "10.0.0.254",
                               "ic_learned": true}}),
                json!(true),
            ),
            json!({"Service_Monitor": {u(20): isb_row("az1", "az2", Some("offline"))}}),
        );
        let out = run_on(&w, "az2");
        assert!(inserts(&out.sb).is_empty());
        assert_eq!(
            update(&out.icsb, uu(20)).unwrap(),
            BTreeMap::from([("status".to_string(), Datum::scalar("online"))])
        );
        let up = update(&out.sb, uu(30)).unwrap();
        assert_eq!(up["chassis_name"], Datum::scalar("hv1"));
        assert_eq!(
            up["options"],
            Datum::smap([("az-name", "az2"), ("interval", "5")])
        );
        assert_eq!(deletes(&out.sb), vec![uu(31)]);
    }

    #[test]
    fn northd_owned_row_is_only_read() {
        if !supported_schemas() {
            return;
        }
        // The backend is also used locally: northd owns the row (ic_learned=false). Its
        // options/chassis are never written (no write fight), and it is never deleted.
        let w = world(
            target_sb(
                json!({u(30): {"ip": "10.0.0.5", "port": 80, "protocol": "tcp",
                               "type": "load-balancer", "status": "error",
                               "logical_port": "lport1", "src_ip": "10.0.0.254",
                               "options": smap(&[("interval", "1")])}}),
                json!(true),
            ),
            json!({"Service_Monitor": {u(20): isb_row("az1", "az2", None)}}),
        );
        let out = run_on(&w, "az2");
        assert!(out.sb.is_empty(), "{:?}", out.sb);
        assert_eq!(
            update(&out.icsb, uu(20)).unwrap()["status"],
            Datum::scalar("error")
        );
    }

    #[test]
    fn unbound_port_keeps_chassis_name() {
        if !supported_schemas() {
            return;
        }
        let mut sb = target_sb(
            json!({u(30): {"ip": "10.0.0.5", "port": 80, "protocol": "tcp",
                           "type": "load-balancer",
                           "logical_port": "lport1", "src_ip": "10.0.0.254",
                           "chassis_name": "old", "ic_learned": true}}),
            json!(false),
        );
        sb["Port_Binding"][u(40)]["chassis"] = json!(["set", []]);
        let w = world(
            sb,
            json!({"Service_Monitor": {u(20): isb_row("az1", "az2", None)}}),
        );
        let out = run_on(&w, "az2");
        let up = update(&out.sb, uu(30)).unwrap();
        assert!(!up.contains_key("chassis_name"));
        assert!(up.contains_key("options"));
    }

    #[test]
    fn same_index_tuple_with_other_src_ip_is_the_match() {
        if !supported_schemas() {
            return;
        }
        let w = world(
            target_sb(
                json!({u(30): {"ip": "10.0.0.5", "port": 80, "protocol": "tcp",
                               "type": "load-balancer", "status": "online",
                               "logical_port": "lport1", "src_ip": "10.0.0.1"}}),
                json!(true),
            ),
            json!({"Service_Monitor": {u(20): isb_row("az1", "az2", None)}}),
        );
        let out = run_on(&w, "az2");
        assert!(out.sb.is_empty());
        assert_eq!(
            update(&out.icsb, uu(20)).unwrap()["status"],
            Datum::scalar("online")
        );
    }

    #[test]
    fn without_svc_monitor_mac_nothing_happens() {
        if !supported_schemas() {
            return;
        }
        let mut sb = target_sb(
            json!({u(31): {"ip": "10.0.0.9", "port": 80, "protocol": "tcp",
                           "logical_port": "lport9", "src_ip": "10.0.0.254",
                           "ic_learned": true},
                   u(10): pushed("az3", None)}),
            json!(true),
        );
        sb["SB_Global"] = json!({u(1): {}});
        let w = world(
            sb,
            json!({"Service_Monitor": {
                u(20): isb_row("az1", "az2", None),
                u(21): isb_row("az2", "az3", None),
            }}),
        );
        assert!(run_on(&w, "az2").is_empty());
        // No SB_Global row at all: same.
        let mut sb2 = target_sb(Value::Null, json!(true));
        sb2.as_object_mut().unwrap().remove("SB_Global");
        let w = world(
            sb2,
            json!({"Service_Monitor": {u(20): isb_row("az1", "az2", None)}}),
        );
        assert!(run_on(&w, "az2").is_empty());
    }

    #[test]
    fn converged_state_writes_only_noops() {
        if !supported_schemas() {
            return;
        }
        // Source side converged: the writes it makes are all equal to the stored values.
        let w = world(
            json!({
                "SB_Global": sb_global(),
                "Service_Monitor": {u(10): pushed("az2", Some("online"))}
            }),
            json!({"Service_Monitor": {u(20): isb_row("az1", "az2", Some("online"))}}),
        );
        let out = run_on(&w, "az1");
        let mut t = crate::ovsdb::txn::Txn::new("OVN_Southbound");
        out.sb.to_txn(&w.sb, &mut t);
        assert!(t.is_empty());
        let mut t = crate::ovsdb::txn::Txn::new("OVN_IC_Southbound");
        out.icsb.to_txn(&w.icsb, &mut t);
        assert!(t.is_empty());
        assert!(inserts(&out.icsb).is_empty() && deletes(&out.icsb).is_empty());
    }

    #[test]
    fn icmp_monitor_is_not_pushed_to_isb() {
        if !supported_schemas() {
            return;
        }
        let icsb = empty("ovn-ic-sb");
        let allows_icmp = icsb
            .schema()
            .and_then(|s| s.tables.get(TABLE))
            .and_then(|t| t.column("protocol"))
            .and_then(|c| c.ty.key.enum_values.as_ref())
            .map_or(true, |e| e.contains(&Atom::from("icmp")));
        let sb_has_icmp = empty("ovn-sb")
            .schema()
            .and_then(|s| s.tables.get(TABLE))
            .and_then(|t| t.column("protocol"))
            .and_then(|c| c.ty.key.enum_values.as_ref())
            .is_some_and(|e| e.contains(&Atom::from("icmp")));
        if allows_icmp || !sb_has_icmp {
            eprintln!("skipping: schemas do not differ on icmp");
            return;
        }
        let mut p = pushed("az2", None);
        p["protocol"] = json!("icmp");
        let w = world(
            json!({"SB_Global": sb_global(), "Service_Monitor": {u(10): p}}),
            json!({}),
        );
        assert!(run_on(&w, "az1").is_empty());
    }

    #[test]
    fn old_schemas_skip_everything() {
        if supported_schemas() {
            eprintln!("skipping: current schemas (run with OVN_SCHEMA_DIR=/usr/share/ovn)");
            return;
        }
        let w = world(
            json!({
                "SB_Global": sb_global(),
                "Service_Monitor": {u(10): {"ip": "10.0.0.5", "port": 80,
                    "logical_port": "lport1", "src_ip": "10.0.0.254",
                    "options": smap(&[("az-name", "az2")])}}
            }),
            json!({}),
        );
        assert!(run_on(&w, "az1").is_empty());
    }
}
