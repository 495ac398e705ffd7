//! Runs a [`Scenario`] on fresh databases with one ovn-ic binary, settling after every step.
//!
//! * Databases: IC-NB, IC-SB and per AZ an NB and an SB, all created from **Debian's 23.03
//!   schemas** in [`DEBIAN_SCHEMAS`] (whatever `OVN_SCHEMA_DIR` says).
//! * No ovn-northd runs. Instead [`World::northd_pass`] writes, per AZ, the SB rows ovn-northd
//!   (and ovn-controller, for `cr-` ports) would, and only those ovn-ic reads: a
//!   `Datapath_Binding` per transit switch (`external_ids:interconn-ts`, `logical-switch`,
//!   `tunnel_key` = `requested-tnl-key`) and per router (`external_ids:logical-router`), a
//!   `Port_Binding` per `router`/`remote` LSP on a transit switch (`options:peer`, tunnel key =
//!   `requested-tnl-key` when free), per LRP peered with such an LSP (`mac` = "MAC NETWORKS…")
//!   and `cr-<lrp>` bound to the LRP's gateway chassis. It is deterministic (names, sorted), so
//!   both runs see the same SB.
//! * Settling: the normalised snapshot is taken every [`QUIET`]; when two consecutive ones are
//!   equal, the northd pass runs; if it wrote nothing the state is settled, else settling goes
//!   on. Bounded by [`SETTLE_TIMEOUT`]. A daemon that exits is an error.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Map, Value};

use crate::common::{AzDbs, Daemon, IcDbs, Listen, Server};
use crate::generator::{Op, Scenario};
use crate::normaliser::{
    self, map_get, row_uuid, rows, str_col, strings, uuids, DbDump, DbKind, Snapshot,
};

/// Debian's OVN 23.03 schemas.
pub const DEBIAN_SCHEMAS: &str = "/usr/share/ovn";
/// Interval between the two dumps that must be equal.
pub const QUIET: Duration = Duration::from_secs(1);
/// Longest time one step may take to settle.
pub const SETTLE_TIMEOUT: Duration = Duration::from_secs(40);

/// Which daemon a run uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Impl {
    /// Debian's `/usr/bin/ovn-ic` (23.03).
    C,
    /// This crate's binary.
    Ours,
}

impl Impl {
    pub fn binary(self) -> PathBuf {
        match self {
            Impl::C => PathBuf::from(crate::common::C_OVN_IC),
            Impl::Ours => crate::common::our_ovn_ic(),
        }
    }
}

/// What one run produced: the settled snapshot after every step it completed and, if it
/// stopped early, at which step and why.
#[derive(Debug)]
pub struct Outcome {
    pub snapshots: Vec<Snapshot>,
    pub error: Option<(usize, String)>,
}

/// Runs `scn` (all its steps) with `imp`.
pub fn run(scn: &Scenario, imp: Impl) -> Outcome {
    let mut snapshots = Vec::new();
    let mut world = match World::start(imp, &scn.azs) {
        Ok(w) => w,
        Err(e) => {
            return Outcome {
                snapshots,
                error: Some((0, format!("setup: {e:#}"))),
            }
        }
    };
    for (i, step) in scn.steps.iter().enumerate() {
        let r = step
            .ops
            .iter()
            .try_for_each(|op| world.apply(op).with_context(|| format!("applying {op}")))
            .and_then(|()| world.settle());
        match r {
            Ok(s) => snapshots.push(s),
            Err(e) => {
                return Outcome {
                    snapshots,
                    error: Some((i, format!("{e:#}"))),
                }
            }
        }
    }
    Outcome {
        snapshots,
        error: None,
    }
}

fn start_db(schema: &str, name: &str) -> Result<Server> {
    Server::builder(Path::new(DEBIAN_SCHEMAS).join(format!("{schema}.ovsschema")))
        .name(name)
        .listen(Listen::Unix)
        .start()
        .with_context(|| format!("starting {name}"))
}

/// The databases and daemons of one run. Daemons are declared first so they die first.
pub struct World {
    imp: Impl,
    daemons: Vec<Option<Daemon>>,
    azs: Vec<AzDbs>,
    ic: IcDbs,
}

impl World {
    pub fn start(imp: Impl, names: &[String]) -> Result<World> {
        let ic = IcDbs {
            ic_nb: start_db("ovn-ic-nb", "diff-ic-nb")?,
            ic_sb: start_db("ovn-ic-sb", "diff-ic-sb")?,
        };
        ic.ic_nb
            .transact(json!([{"op": "insert", "table": "IC_NB_Global", "row": {}}]))?;
        ic.ic_sb
            .transact(json!([{"op": "insert", "table": "IC_SB_Global", "row": {}}]))?;
        let mut azs = Vec::new();
        for (i, n) in names.iter().enumerate() {
            let az = AzDbs {
                name: n.clone(),
                nb: start_db("ovn-nb", &format!("diff-az{}-nb", i + 1))?,
                sb: start_db("ovn-sb", &format!("diff-az{}-sb", i + 1))?,
            };
            az.nb
                .transact(json!([{"op": "insert", "table": "NB_Global", "row": {"name": n}}]))?;
            az.sb
                .transact(json!([{"op": "insert", "table": "SB_Global", "row": {}}]))?;
            azs.push(az);
        }
        let mut w = World {
            imp,
            daemons: Vec::new(),
            azs,
            ic,
        };
        for i in 0..names.len() {
            let d = w.spawn(i)?;
            w.daemons.push(Some(d));
        }
        Ok(w)
    }

    fn spawn(&self, az: usize) -> Result<Daemon> {
        Daemon::ovn_ic(self.imp.binary(), &self.azs[az], &self.ic, &[])
    }

    fn nb(&self, az: usize) -> Result<&Server> {
        self.azs
            .get(az)
            .map(|a| &a.nb)
            .ok_or_else(|| anyhow!("no AZ {az}"))
    }

    fn sb(&self, az: usize) -> Result<&Server> {
        self.azs
            .get(az)
            .map(|a| &a.sb)
            .ok_or_else(|| anyhow!("no AZ {az}"))
    }

    /// Applies one op (and the northd pass, so ovn-ic sees what northd would have written).
    pub fn apply(&mut self, op: &Op) -> Result<()> {
        match op {
            Op::SetOption { az, key, value } => {
                let mut muts = vec![json!(["options", "delete", ["set", [key]]])];
                if let Some(v) = value {
                    muts.push(json!(["options", "insert", ["map", [[key, v]]]]));
                }
                self.nb(*az)?
                    .transact(json!([{"op": "mutate", "table": "NB_Global",
                    "where": [], "mutations": muts}]))?;
            }
            Op::AddGateway { az, name, encaps } => {
                let mut ops = Vec::new();
                let mut refs = Vec::new();
                for (i, (ty, ip)) in encaps.iter().enumerate() {
                    let id = format!("e{i}");
                    ops.push(json!({"op": "insert", "table": "Encap", "uuid-name": id,
                        "row": {"type": ty, "ip": ip, "chassis_name": name,
                                "options": ["map", [["csum", "true"]]]}}));
                    refs.push(json!(["named-uuid", id]));
                }
                ops.push(json!({"op": "insert", "table": "Chassis", "row": {
                    "name": name, "hostname": name, "encaps": ["set", refs],
                    "other_config": ["map", [["is-interconn", "true"]]]}}));
                self.sb(*az)?.transact(Value::Array(ops))?;
            }
            Op::DelGateway { az, name } => {
                self.sb(*az)?
                    .transact(json!([{"op": "delete", "table": "Chassis",
                    "where": [["name", "==", name]]}]))?;
            }
            Op::SetGatewayIp { az, name, ip } => {
                self.sb(*az)?
                    .transact(json!([{"op": "update", "table": "Encap",
                    "where": [["chassis_name", "==", name]], "row": {"ip": ip}}]))?;
            }
            Op::AddTs { name } => {
                self.ic
                    .ic_nb
                    .transact(json!([{"op": "insert", "table": "Transit_Switch",
                    "row": {"name": name}}]))?;
            }
            Op::DelTs { name } => {
                self.ic
                    .ic_nb
                    .transact(json!([{"op": "delete", "table": "Transit_Switch",
                    "where": [["name", "==", name]]}]))?;
            }
            Op::RenameTs { old, new } => {
                self.ic
                    .ic_nb
                    .transact(json!([{"op": "update", "table": "Transit_Switch",
                    "where": [["name", "==", old]], "row": {"name": new}}]))?;
            }
            Op::AddRouter { az, name } => {
                self.nb(*az)?
                    .transact(json!([{"op": "insert", "table": "Logical_Router",
                    "row": {"name": name}}]))?;
            }
            Op::DelRouter { az, name, lsps } => {
                let nb = self.nb(*az)?;
                let mut ops = Vec::new();
                for lsp in lsps {
                    if let Some(u) = uuid_of(nb, "Logical_Switch_Port", lsp)? {
                        ops.push(json!({"op": "mutate", "table": "Logical_Switch",
                            "where": [["ports", "includes", ["uuid", u]]],
                            "mutations": [["ports", "delete", ["uuid", u]]]}));
                    }
                }
                ops.push(json!({"op": "delete", "table": "Logical_Router",
                    "where": [["name", "==", name]]}));
                nb.transact(Value::Array(ops))?;
            }
            Op::AddLrp {
                az,
                router,
                lrp,
                mac,
                networks,
            } => {
                self.nb(*az)?.transact(json!([
                    {"op": "insert", "table": "Logical_Router_Port", "uuid-name": "p",
                     "row": {"name": lrp, "mac": mac, "networks": ["set", networks]}},
                    {"op": "mutate", "table": "Logical_Router", "where": [["name", "==", router]],
                     "mutations": [["ports", "insert", ["named-uuid", "p"]]]},
                ]))?;
            }
            Op::DelLrp { az, router, lrp } => {
                let nb = self.nb(*az)?;
                if let Some(u) = uuid_of(nb, "Logical_Router_Port", lrp)? {
                    nb.transact(json!([{"op": "mutate", "table": "Logical_Router",
                        "where": [["name", "==", router]],
                        "mutations": [["ports", "delete", ["uuid", u]]]}]))?;
                }
            }
            Op::AttachPort {
                az,
                router,
                lrp,
                lsp,
                ts,
                mac,
                networks,
                gateway,
                route_table,
            } => {
                let options: Vec<Value> = route_table
                    .iter()
                    .map(|rt| json!(["route_table", rt]))
                    .collect();
                let mut lrp_row = json!({"name": lrp, "mac": mac,
                    "networks": ["set", networks], "options": ["map", options]});
                let mut ops = Vec::new();
                if let Some(gw) = gateway {
                    ops.push(json!({"op": "insert", "table": "Gateway_Chassis",
                        "uuid-name": "gwc", "row": {"name": format!("{lrp}-{gw}"),
                        "chassis_name": gw, "priority": 1}}));
                    lrp_row["gateway_chassis"] = json!(["named-uuid", "gwc"]);
                }
                ops.push(json!({"op": "insert", "table": "Logical_Router_Port",
                    "uuid-name": "p", "row": lrp_row}));
                ops.push(json!({"op": "mutate", "table": "Logical_Router",
                    "where": [["name", "==", router]],
                    "mutations": [["ports", "insert", ["named-uuid", "p"]]]}));
                ops.push(json!({"op": "insert", "table": "Logical_Switch_Port",
                    "uuid-name": "s", "row": {"name": lsp, "type": "router",
                    "addresses": "router", "options": ["map", [["router-port", lrp]]]}}));
                ops.push(json!({"op": "mutate", "table": "Logical_Switch",
                    "where": [["other_config", "includes", ["map", [["interconn-ts", ts]]]]],
                    "mutations": [["ports", "insert", ["named-uuid", "s"]]]}));
                self.nb(*az)?.transact(Value::Array(ops))?;
            }
            Op::DetachPort {
                az,
                router,
                lrp,
                lsp,
            } => {
                let nb = self.nb(*az)?;
                let mut ops = Vec::new();
                if let Some(u) = uuid_of(nb, "Logical_Switch_Port", lsp)? {
                    ops.push(json!({"op": "mutate", "table": "Logical_Switch",
                        "where": [["ports", "includes", ["uuid", u]]],
                        "mutations": [["ports", "delete", ["uuid", u]]]}));
                }
                if let Some(u) = uuid_of(nb, "Logical_Router_Port", lrp)? {
                    ops.push(json!({"op": "mutate", "table": "Logical_Router",
                        "where": [["name", "==", router]],
                        "mutations": [["ports", "delete", ["uuid", u]]]}));
                }
                if !ops.is_empty() {
                    nb.transact(Value::Array(ops))?;
                }
            }
            Op::SetLrpNetworks { az, lrp, networks } => {
                self.nb(*az)?.transact(json!([{"op": "update",
                    "table": "Logical_Router_Port", "where": [["name", "==", lrp]],
                    "row": {"networks": ["set", networks]}}]))?;
            }
            Op::SetLrpRouteTable {
                az,
                lrp,
                route_table,
            } => {
                let mut muts = vec![json!(["options", "delete", ["set", ["route_table"]]])];
                if let Some(rt) = route_table {
                    muts.push(json!(["options", "insert", ["map", [["route_table", rt]]]]));
                }
                self.nb(*az)?.transact(json!([{"op": "mutate",
                    "table": "Logical_Router_Port", "where": [["name", "==", lrp]],
                    "mutations": muts}]))?;
            }
            Op::AddStaticRoute {
                az,
                router,
                prefix,
                nexthop,
                route_table,
            } => {
                self.nb(*az)?.transact(json!([
                    {"op": "insert", "table": "Logical_Router_Static_Route", "uuid-name": "r",
                     "row": {"ip_prefix": prefix, "nexthop": nexthop, "route_table": route_table}},
                    {"op": "mutate", "table": "Logical_Router", "where": [["name", "==", router]],
                     "mutations": [["static_routes", "insert", ["named-uuid", "r"]]]},
                ]))?;
            }
            Op::DelStaticRoute {
                az,
                router,
                prefix,
                nexthop,
            } => {
                let nb = self.nb(*az)?;
                let reply = nb.transact(json!([{"op": "select",
                    "table": "Logical_Router_Static_Route",
                    "where": [["ip_prefix", "==", prefix], ["nexthop", "==", nexthop]]}]))?;
                let victims: Vec<Value> = reply[0]["rows"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_object)
                    .filter(|r| map_get(r, "external_ids", "ic-learned-route").is_none())
                    .filter_map(row_uuid)
                    .map(|u| json!(["uuid", u]))
                    .collect();
                if !victims.is_empty() {
                    nb.transact(json!([{"op": "mutate", "table": "Logical_Router",
                        "where": [["name", "==", router]],
                        "mutations": [["static_routes", "delete", ["set", victims]]]}]))?;
                }
            }
            Op::RenameAz { az, name } => {
                self.nb(*az)?
                    .transact(json!([{"op": "update", "table": "NB_Global",
                    "where": [], "row": {"name": name}}]))?;
            }
            Op::RestartDaemon { az } => {
                let slot = self
                    .daemons
                    .get_mut(*az)
                    .ok_or_else(|| anyhow!("no AZ {az}"))?;
                if let Some(mut d) = slot.take() {
                    d.terminate(Duration::from_secs(5));
                }
                let d = self.spawn(*az)?;
                self.daemons[*az] = Some(d);
            }
        }
        Ok(())
    }

    /// Fails if a daemon has exited (with the tail of its log).
    fn check_daemons(&mut self) -> Result<()> {
        for (i, slot) in self.daemons.iter_mut().enumerate() {
            if let Some(d) = slot {
                if !d.is_running() {
                    let log = d.log_text();
                    let tail: Vec<&str> = log.lines().rev().take(15).collect();
                    bail!(
                        "ovn-ic of AZ {} exited; log tail:\n{}",
                        i + 1,
                        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                    );
                }
            }
        }
        Ok(())
    }

    /// The normalised contents of every database.
    pub fn snapshot(&self) -> Result<Snapshot> {
        let mut dbs = vec![
            DbDump {
                label: "ic-nb".into(),
                kind: DbKind::IcNb,
                data: self.ic.ic_nb.dump()?,
            },
            DbDump {
                label: "ic-sb".into(),
                kind: DbKind::IcSb,
                data: self.ic.ic_sb.dump()?,
            },
        ];
        for (i, az) in self.azs.iter().enumerate() {
            dbs.push(DbDump {
                label: format!("az{}-nb", i + 1),
                kind: DbKind::Nb,
                data: az.nb.dump()?,
            });
            dbs.push(DbDump {
                label: format!("az{}-sb", i + 1),
                kind: DbKind::Sb,
                data: az.sb.dump()?,
            });
        }
        Ok(normaliser::normalise(dbs))
    }

    /// Waits until the databases are quiet and the northd pass has nothing left to write.
    pub fn settle(&mut self) -> Result<Snapshot> {
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        self.northd_pass_all()?;
        let mut prev = self.snapshot()?;
        loop {
            std::thread::sleep(QUIET);
            self.check_daemons()?;
            let cur = self.snapshot()?;
            if cur == prev {
                if !self.northd_pass_all()? {
                    return Ok(cur);
                }
                prev = self.snapshot()?;
            } else {
                if Instant::now() > deadline {
                    bail!(
                        "no quiescence within {SETTLE_TIMEOUT:?}; still changing:\n{}",
                        normaliser::diff(&prev, &cur)
                    );
                }
                prev = cur;
            }
        }
    }

    fn northd_pass_all(&self) -> Result<bool> {
        let mut changed = false;
        for az in 0..self.azs.len() {
            changed |= self.northd_pass(az)?;
        }
        Ok(changed)
    }

    /// One reconciliation of AZ `az`'s SB with its NB, as ovn-northd (plus ovn-controller for
    /// `cr-` ports) would do for the rows ovn-ic reads. Returns whether it wrote anything.
    pub fn northd_pass(&self, az: usize) -> Result<bool> {
        let nb = self.nb(az)?.dump()?;
        let sb = self.sb(az)?;
        let ops = northd_ops(&nb, &sb.dump()?);
        if ops.is_empty() {
            return Ok(false);
        }
        sb.transact(Value::Array(ops.clone()))
            .with_context(|| format!("northd pass for AZ {}: {}", az + 1, Value::Array(ops)))?;
        Ok(true)
    }
}

/// The `_uuid` of the row of `table` named `name`, if any.
fn uuid_of(server: &Server, table: &str, name: &str) -> Result<Option<String>> {
    let reply = server.transact(json!([{"op": "select", "table": table,
        "where": [["name", "==", name]], "columns": ["_uuid"]}]))?;
    Ok(reply[0]["rows"]
        .as_array()
        .and_then(|rs| rs.first())
        .and_then(Value::as_object)
        .and_then(row_uuid))
}

// ------------------------------------------------------------------------------------------------
// The northd pass (pure: NB dump + SB dump → SB operations)
// ------------------------------------------------------------------------------------------------

/// A desired SB Datapath_Binding: NB uuid, `external_ids` key naming it (`logical-switch` /
/// `logical-router`), required tunnel key, `external_ids`.
type WantDp = (String, &'static str, Option<i64>, Vec<(String, String)>);

/// A desired SB Port_Binding.
struct WantPb {
    name: String,
    /// Key of the datapath in `dp_refs`.
    dp: String,
    ty: &'static str,
    options: Vec<(String, String)>,
    mac: Vec<String>,
    requested: Option<i64>,
    /// `Some` for `cr-` ports: the chassis to bind (`None` = unbound).
    chassis: Option<Option<String>>,
}

fn map_value(pairs: &[(String, String)]) -> Value {
    let mut sorted = pairs.to_vec();
    sorted.sort();
    json!([
        "map",
        sorted
            .iter()
            .map(|(k, v)| json!([k, v]))
            .collect::<Vec<_>>()
    ])
}

fn set_value(xs: &[Value]) -> Value {
    json!(["set", xs])
}

/// Canonical form of an OVSDB JSON value for equality tests (sorted sets and maps, a
/// one-element set as its atom).
fn canon(v: &Value) -> Value {
    if let Value::Array(x) = v {
        if x.len() == 2 && (x[0] == "set" || x[0] == "map") {
            let mut items: Vec<String> = x[1]
                .as_array()
                .into_iter()
                .flatten()
                .map(Value::to_string)
                .collect();
            items.sort();
            if x[0] == "set" && items.len() == 1 {
                return serde_json::from_str(&items[0]).unwrap_or(Value::Null);
            }
            return json!([x[0], items]);
        }
    }
    v.clone()
}

fn lowest_free(used: &BTreeSet<i64>, min: i64) -> i64 {
    (min..).find(|k| !used.contains(k)).unwrap_or(min)
}

/// SB operations that make `sb` hold what northd would derive from `nb` (empty when it does).
pub fn northd_ops(nb: &Value, sb: &Value) -> Vec<Value> {
    let mut ops = Vec::new();

    // NB indexes.
    let lsps: HashMap<String, &Map<String, Value>> = rows(nb, "Logical_Switch_Port")
        .filter_map(|r| row_uuid(r).map(|u| (u, r)))
        .collect();
    let lrp_rows: HashMap<String, &Map<String, Value>> = rows(nb, "Logical_Router_Port")
        .filter_map(|r| row_uuid(r).map(|u| (u, r)))
        .collect();
    let gwcs: HashMap<String, &Map<String, Value>> = rows(nb, "Gateway_Chassis")
        .filter_map(|r| row_uuid(r).map(|u| (u, r)))
        .collect();
    // LRP name → (LR uuid, LRP row).
    let mut lrps: BTreeMap<String, (String, &Map<String, Value>)> = BTreeMap::new();
    for lr in rows(nb, "Logical_Router") {
        let Some(lr_u) = row_uuid(lr) else { continue };
        for p in uuids(lr.get("ports")) {
            if let Some(row) = lrp_rows.get(&p) {
                lrps.insert(str_col(row, "name"), (lr_u.clone(), row));
            }
        }
    }

    // SB indexes.
    let sb_dps: Vec<&Map<String, Value>> = rows(sb, "Datapath_Binding").collect();
    let mut used_dp_keys: BTreeSet<i64> = sb_dps
        .iter()
        .filter_map(|d| d.get("tunnel_key").and_then(Value::as_i64))
        .collect();
    let sb_pbs: BTreeMap<String, &Map<String, Value>> = rows(sb, "Port_Binding")
        .map(|r| (str_col(r, "logical_port"), r))
        .collect();
    let chassis: HashMap<String, (String, bool)> = rows(sb, "Chassis")
        .filter_map(|c| {
            let remote = map_get(c, "other_config", "is-remote").as_deref() == Some("true");
            row_uuid(c).map(|u| (str_col(c, "name"), (u, remote)))
        })
        .collect();

    // Desired datapaths: NB uuid → (reference value, kind).
    let mut dp_refs: BTreeMap<String, Value> = BTreeMap::new();
    let mut kept_dps: BTreeSet<String> = BTreeSet::new();
    let mut desired: Vec<WantDp> = Vec::new();
    for ls in rows(nb, "Logical_Switch") {
        let (Some(u), Some(ts)) = (row_uuid(ls), map_get(ls, "other_config", "interconn-ts"))
        else {
            continue;
        };
        let Some(key) = map_get(ls, "other_config", "requested-tnl-key")
            .and_then(|k| k.parse::<i64>().ok())
            .filter(|k| (1..=16_777_215).contains(k))
        else {
            continue;
        };
        desired.push((
            u.clone(),
            "logical-switch",
            Some(key),
            vec![
                ("interconn-ts".into(), ts),
                ("logical-switch".into(), u),
                ("name".into(), str_col(ls, "name")),
            ],
        ));
    }
    let mut lrs: Vec<&Map<String, Value>> = rows(nb, "Logical_Router").collect();
    lrs.sort_by_key(|r| str_col(r, "name"));
    for lr in lrs {
        let Some(u) = row_uuid(lr) else { continue };
        desired.push((
            u.clone(),
            "logical-router",
            None,
            vec![
                ("logical-router".into(), u),
                ("name".into(), str_col(lr, "name")),
            ],
        ));
    }
    for (i, (nb_u, kind, key, ext)) in desired.iter().enumerate() {
        let existing = sb_dps
            .iter()
            .find(|d| map_get(d, "external_ids", kind).as_deref() == Some(nb_u.as_str()));
        let ext_v = map_value(ext);
        match existing {
            Some(d) => {
                let u = row_uuid(d).unwrap_or_default();
                let mut row = Map::new();
                if let Some(k) = key {
                    if d.get("tunnel_key").and_then(Value::as_i64) != Some(*k) {
                        row.insert("tunnel_key".into(), json!(k));
                    }
                }
                if canon(d.get("external_ids").unwrap_or(&Value::Null)) != canon(&ext_v) {
                    row.insert("external_ids".into(), ext_v);
                }
                if !row.is_empty() {
                    ops.push(json!({"op": "update", "table": "Datapath_Binding",
                        "where": [["_uuid", "==", ["uuid", u]]], "row": row}));
                }
                kept_dps.insert(u.clone());
                dp_refs.insert(nb_u.clone(), json!(["uuid", u]));
            }
            None => {
                let k = key.unwrap_or_else(|| lowest_free(&used_dp_keys, 1));
                used_dp_keys.insert(k);
                let name = format!("dp{i}");
                ops.push(json!({"op": "insert", "table": "Datapath_Binding",
                    "uuid-name": name, "row": {"tunnel_key": k, "external_ids": ext_v}}));
                dp_refs.insert(nb_u.clone(), json!(["named-uuid", name]));
            }
        }
    }

    // Desired port bindings.
    let mut want: Vec<WantPb> = Vec::new();
    for ls in rows(nb, "Logical_Switch") {
        let Some(ls_u) = row_uuid(ls) else { continue };
        if !dp_refs.contains_key(&ls_u) {
            continue;
        }
        for p in uuids(ls.get("ports")) {
            let Some(lsp) = lsps.get(&p) else { continue };
            let name = str_col(lsp, "name");
            let requested = map_get(lsp, "options", "requested-tnl-key")
                .and_then(|k| k.parse::<i64>().ok())
                .filter(|k| (1..=32_767).contains(k));
            match str_col(lsp, "type").as_str() {
                "router" => {
                    let peer = map_get(lsp, "options", "router-port");
                    let mut options = Vec::new();
                    if let Some((lr_u, lrp)) = peer.as_ref().and_then(|p| lrps.get(p)) {
                        let lrp_name = str_col(lrp, "name");
                        options.push(("peer".to_string(), lrp_name.clone()));
                        let mut mac = str_col(lrp, "mac");
                        let mut nets = strings(lrp.get("networks"));
                        nets.sort();
                        for n in nets {
                            mac.push(' ');
                            mac.push_str(&n);
                        }
                        want.push(WantPb {
                            name: lrp_name.clone(),
                            dp: lr_u.clone(),
                            ty: "patch",
                            options: vec![("peer".into(), name.clone())],
                            mac: vec![mac],
                            requested: None,
                            chassis: None,
                        });
                        let mut gws: Vec<&Map<String, Value>> = uuids(lrp.get("gateway_chassis"))
                            .iter()
                            .filter_map(|g| gwcs.get(g).copied())
                            .collect();
                        gws.sort_by_key(|g| {
                            std::cmp::Reverse(g.get("priority").and_then(Value::as_i64))
                        });
                        if let Some(gw) = gws.first() {
                            let bound = chassis
                                .get(&str_col(gw, "chassis_name"))
                                .filter(|(_, remote)| !remote)
                                .map(|(u, _)| u.clone());
                            want.push(WantPb {
                                name: format!("cr-{lrp_name}"),
                                dp: lr_u.clone(),
                                ty: "chassisredirect",
                                options: vec![("distributed-port".into(), lrp_name)],
                                mac: Vec::new(),
                                requested: None,
                                chassis: Some(bound),
                            });
                        }
                    }
                    want.push(WantPb {
                        name,
                        dp: ls_u.clone(),
                        ty: "patch",
                        options,
                        mac: vec!["router".into()],
                        requested,
                        chassis: None,
                    });
                }
                "remote" => want.push(WantPb {
                    name,
                    dp: ls_u.clone(),
                    ty: "remote",
                    options: Vec::new(),
                    mac: strings(lsp.get("addresses")),
                    requested,
                    chassis: None,
                }),
                _ => {}
            }
        }
    }
    want.sort_by(|a, b| a.name.cmp(&b.name));
    want.dedup_by(|a, b| a.name == b.name);

    // Tunnel keys: requested (or kept) keys first, in name order; then the lowest free.
    let mut used: BTreeMap<String, BTreeSet<i64>> = BTreeMap::new();
    let mut keys: Vec<Option<i64>> = Vec::new();
    for w in &want {
        let existing = sb_pbs.get(&w.name).and_then(|pb| {
            let same_dp = uuids(pb.get("datapath")).first().cloned()
                == dp_refs.get(&w.dp).and_then(|r| {
                    (r[0] == "uuid").then(|| r[1].as_str().unwrap_or_default().to_string())
                });
            same_dp
                .then(|| pb.get("tunnel_key").and_then(Value::as_i64))
                .flatten()
        });
        let u = used.entry(w.dp.clone()).or_default();
        let k = w.requested.or(existing).filter(|k| !u.contains(k));
        if let Some(k) = k {
            u.insert(k);
        }
        keys.push(k);
    }
    for (w, k) in want.iter().zip(keys.iter_mut()) {
        if k.is_none() {
            let u = used.entry(w.dp.clone()).or_default();
            let free = lowest_free(u, 1);
            u.insert(free);
            *k = Some(free);
        }
    }

    let mut kept_pbs = BTreeSet::new();
    for (w, k) in want.iter().zip(keys) {
        let Some(dp) = dp_refs.get(&w.dp) else {
            continue;
        };
        let mut row = Map::new();
        row.insert("type".into(), json!(w.ty));
        row.insert("options".into(), map_value(&w.options));
        row.insert("datapath".into(), dp.clone());
        row.insert("tunnel_key".into(), json!(k.unwrap_or(1)));
        let macs: Vec<Value> = w.mac.iter().map(|m| json!(m)).collect();
        row.insert("mac".into(), set_value(&macs));
        if let Some(ch) = &w.chassis {
            let v = match ch {
                Some(u) => json!(["uuid", u]),
                None => json!(["set", []]),
            };
            row.insert("chassis".into(), v);
        }
        match sb_pbs.get(&w.name) {
            Some(pb) => {
                kept_pbs.insert(w.name.clone());
                let changed: Map<String, Value> = row
                    .into_iter()
                    .filter(|(c, v)| canon(pb.get(c).unwrap_or(&json!(["set", []]))) != canon(v))
                    .collect();
                if !changed.is_empty() {
                    let u = row_uuid(pb).unwrap_or_default();
                    ops.push(json!({"op": "update", "table": "Port_Binding",
                        "where": [["_uuid", "==", ["uuid", u]]], "row": changed}));
                }
            }
            None => {
                row.insert("logical_port".into(), json!(w.name));
                ops.push(json!({"op": "insert", "table": "Port_Binding", "row": row}));
            }
        }
    }
    for (name, pb) in &sb_pbs {
        if !kept_pbs.contains(name) {
            let u = row_uuid(pb).unwrap_or_default();
            ops.push(json!({"op": "delete", "table": "Port_Binding",
                "where": [["_uuid", "==", ["uuid", u]]]}));
        }
    }
    for d in &sb_dps {
        let u = row_uuid(d).unwrap_or_default();
        if !kept_dps.contains(&u) {
            ops.push(json!({"op": "delete", "table": "Datapath_Binding",
                "where": [["_uuid", "==", ["uuid", u]]]}));
        }
    }
    ops
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(n: u8) -> String {
        format!("{n:08x}-0000-0000-0000-000000000000")
    }

    fn nb() -> Value {
        json!({
            "Logical_Switch": [{"_uuid": ["uuid", u(1)], "name": "ts1",
                "other_config": ["map", [["interconn-ts", "ts1"], ["requested-tnl-key", "16711682"]]],
                "ports": ["set", [["uuid", u(2)], ["uuid", u(3)]]]}],
            "Logical_Switch_Port": [
                {"_uuid": ["uuid", u(2)], "name": "tsp1", "type": "router",
                 "options": ["map", [["router-port", "lrp1"]]], "addresses": "router"},
                {"_uuid": ["uuid", u(3)], "name": "rp", "type": "remote",
                 "options": ["map", [["requested-tnl-key", "7"]]], "addresses": "aa:bb:cc:dd:ee:ff 1.2.3.4/24"}],
            "Logical_Router": [{"_uuid": ["uuid", u(4)], "name": "lr1",
                "ports": ["set", [["uuid", u(5)]]]}],
            "Logical_Router_Port": [{"_uuid": ["uuid", u(5)], "name": "lrp1",
                "mac": "0a:00:00:00:00:01", "networks": ["set", ["169.254.1.1/24", "fd00::1/64"]],
                "gateway_chassis": ["uuid", u(6)]}],
            "Gateway_Chassis": [{"_uuid": ["uuid", u(6)], "name": "lrp1-gw1",
                "chassis_name": "gw1", "priority": 1}],
        })
    }

    #[test]
    fn northd_pass_creates_the_rows_ovn_ic_reads() {
        let sb = json!({"Chassis": [{"_uuid": ["uuid", u(9)], "name": "gw1",
            "other_config": ["map", [["is-interconn", "true"]]]}]});
        let ops = northd_ops(&nb(), &sb);
        let text = Value::Array(ops.clone()).to_string();
        let inserts = |t: &str| {
            ops.iter()
                .filter(|o| o["op"] == "insert" && o["table"] == t)
                .count()
        };
        assert_eq!(inserts("Datapath_Binding"), 2, "{text}");
        // tsp1, rp, lrp1, cr-lrp1.
        assert_eq!(inserts("Port_Binding"), 4, "{text}");
        assert!(text.contains("\"tunnel_key\":16711682"), "{text}");
        assert!(
            text.contains("0a:00:00:00:00:01 169.254.1.1/24 fd00::1/64"),
            "{text}"
        );
        assert!(text.contains(&format!("[\"uuid\",\"{}\"]", u(9))), "{text}");
        assert!(text.contains("\"tunnel_key\":7"), "{text}");
    }

    #[test]
    fn canon_ignores_order_and_singleton_sets() {
        assert_eq!(
            canon(&json!(["set", ["b", "a"]])),
            canon(&json!(["set", ["a", "b"]]))
        );
        assert_eq!(canon(&json!(["set", ["a"]])), json!("a"));
        assert_eq!(lowest_free(&[1, 2, 4].into_iter().collect(), 1), 3);
    }
}
