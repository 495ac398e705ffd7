//! Black-box tests of the core ovn-ic features (spec `ovn-ic-core.md` §4 and Appendix B) against
//! real `ovsdb-server`s, Debian's `ovn-northd` and Debian's client tools (`ovn-ic-nbctl`,
//! `ovn-nbctl`, `ovn-sbctl`, `ovsdb-client`), so they hold for any `ovn-ic` binary.
//!
//! Every scenario is a function `fn scenario(bin: &Path)` run twice:
//!
//! * `<scenario>_ours` with this crate's binary;
//! * `<scenario>_c` with Debian's C `ovn-ic` 23.03 ([`C_OVN_IC`]) — only when the OVN schemas in
//!   use are Debian's (`OVN_SCHEMA_DIR` unset or `/usr/share/ovn`), because 23.03 cannot run
//!   against newer IC databases (spec §6.3, Q20). These runs validate the expectations against
//!   the reference; where 23.03 legitimately differs from the spec (AZ rename, no
//!   `ic-vxlan_mode`, no sequence numbers) the scenario says so via [`Flavour`].
//!
//! Each test function starts one environment (IC-NB, IC-SB and per AZ an NB, an SB, optionally
//! `ovn-northd` and one or more `ovn-ic`) and runs all its steps on it. Rows are compared exactly
//! after normalisation ([`select`]); waits use generous timeouts ([`WAIT`]) because CI shares two
//! cores.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{
    our_ovn_ic, run, schema_dir, wait_until, AzDbs, Daemon, IcDbs, Schema, Server, C_OVN_IC,
};
use serde_json::{json, Map, Value};

/// How long to wait for a state ovn-ic must reach.
const WAIT: Duration = Duration::from_secs(25);

/// First datapath key ovn-ic hands out for a transit switch (`0xFF0002`).
const FIRST_TS_KEY: i64 = 16_711_682;

// ------------------------------------------------------------------------------------------------
// Which binary, which expectations
// ------------------------------------------------------------------------------------------------

/// Behaviour differences between the reference C 23.03.1 and the spec (spec §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flavour {
    /// Debian's C ovn-ic 23.03.1.
    C2303,
    /// An implementation of the current spec (ours).
    Spec,
}

fn flavour(bin: &Path) -> Flavour {
    if bin == Path::new(C_OVN_IC) {
        Flavour::C2303
    } else {
        Flavour::Spec
    }
}

/// Whether the C variant of a scenario can run here; prints why not otherwise.
fn c_runnable() -> bool {
    let dir = schema_dir();
    let debian = dir == Path::new("/usr/share/ovn") || dir == Path::new("/usr/share/ovn/");
    if !debian {
        eprintln!(
            "skipping: the C ovn-ic 23.03 needs Debian's schemas, OVN_SCHEMA_DIR is {}",
            dir.display()
        );
        return false;
    }
    if !Path::new(C_OVN_IC).exists() {
        eprintln!("skipping: {C_OVN_IC} is not installed");
        return false;
    }
    true
}

/// Whether the schema in use (short name, e.g. `ovn-ic-sb`) has `table.column`.
fn has_column(schema: &str, table: &str, column: &str) -> bool {
    Schema::ovn(schema).is_ok_and(|s| s.has_column(table, column))
}

// ------------------------------------------------------------------------------------------------
// Normalised rows
// ------------------------------------------------------------------------------------------------

/// An OVSDB JSON value as plain JSON: `["uuid", U]` → `"U"`, `["set", [..]]` → sorted array (a
/// one-element set → its element, as OVSDB itself writes it), `["map", [..]]` → object.
fn norm(v: &Value) -> Value {
    if let Some([Value::String(tag), inner]) = v.as_array().map(Vec::as_slice) {
        match tag.as_str() {
            "uuid" | "named-uuid" => return inner.clone(),
            "set" => {
                let mut xs: Vec<Value> = inner
                    .as_array()
                    .map(|a| a.iter().map(norm).collect())
                    .unwrap_or_default();
                sort_values(&mut xs);
                return if xs.len() == 1 {
                    xs.remove(0)
                } else {
                    Value::Array(xs)
                };
            }
            "map" => {
                let mut m = Map::new();
                for pair in inner.as_array().map(Vec::as_slice).unwrap_or_default() {
                    if let Some([k, val]) = pair.as_array().map(Vec::as_slice) {
                        let k = match norm(k) {
                            Value::String(s) => s,
                            other => other.to_string(),
                        };
                        m.insert(k, norm(val));
                    }
                }
                return Value::Object(m);
            }
            _ => {}
        }
    }
    v.clone()
}

fn sort_values(xs: &mut [Value]) {
    xs.sort_by_cached_key(Value::to_string);
}

/// The rows of `table` in a dump, each reduced to the columns in `specs` and normalised with
/// [`norm`], sorted. A spec is
///
/// * `col` — the column (omitted from the row if the server's schema lacks it);
/// * `col:key` — one key of a map column (`null` if absent), named `col:key` in the result;
/// * `col>Table.other` — a reference column with every UUID replaced by column `other` of the
///   referenced row in `Table` (`null` for a dangling reference), named `col` in the result.
fn select(db: &Value, table: &str, specs: &[&str]) -> Vec<Value> {
    let mut out: Vec<Value> = common::rows(db, table)
        .iter()
        .map(|row| {
            let mut o = Map::new();
            for spec in specs {
                if let Some((col, target)) = spec.split_once('>') {
                    let Some(v) = row.get(col) else { continue };
                    o.insert(col.to_string(), resolve(db, &norm(v), target));
                } else if let Some((col, key)) = spec.split_once(':') {
                    let Some(v) = row.get(col) else { continue };
                    let v = norm(v).get(key).cloned().unwrap_or(Value::Null);
                    o.insert(spec.to_string(), v);
                } else if let Some(v) = row.get(*spec) {
                    o.insert(spec.to_string(), norm(v));
                }
            }
            Value::Object(o)
        })
        .collect();
    sort_values(&mut out);
    out
}

/// Replaces the UUID string(s) in `v` by `Table.col` of the referenced rows (see [`select`]).
fn resolve(db: &Value, v: &Value, target: &str) -> Value {
    let (table, col) = target.split_once('.').unwrap_or((target, "name"));
    let lookup = |u: &Value| -> Value {
        common::rows(db, table)
            .iter()
            .find(|r| r.get("_uuid").map(norm).as_ref() == Some(u))
            .and_then(|r| r.get(col))
            .map(norm)
            .unwrap_or(Value::Null)
    };
    match v {
        Value::Array(xs) => {
            let mut xs: Vec<Value> = xs.iter().map(lookup).collect();
            sort_values(&mut xs);
            Value::Array(xs)
        }
        Value::String(_) => lookup(v),
        other => other.clone(),
    }
}

/// `expected` (a JSON array of row objects) in [`select`]'s order.
fn sorted(expected: Value) -> Vec<Value> {
    let mut xs = match expected {
        Value::Array(xs) => xs,
        other => vec![other],
    };
    sort_values(&mut xs);
    xs
}

/// The `_uuid` of the first row of `table` whose `col` equals `val` (normalised).
fn uuid_where(db: &Value, table: &str, col: &str, val: &str) -> Option<String> {
    common::rows(db, table)
        .iter()
        .find(|r| r.get(col).map(norm) == Some(json!(val)))
        .and_then(|r| r.get("_uuid"))
        .and_then(|u| norm(u).as_str().map(str::to_string))
}

/// Waits until `select(server.dump(), table, specs) == expected` (exactly, as a sorted list) and
/// returns that dump; panics with the expectation and the last rows seen otherwise.
fn wait_rows(what: &str, server: &Server, table: &str, specs: &[&str], expected: Value) -> Value {
    let want = sorted(expected);
    let mut last = Value::Null;
    let mut last_db = Value::Null;
    let ok = wait_until(WAIT, || match server.dump() {
        Ok(db) => {
            let got = select(&db, table, specs);
            let ok = got == want;
            last = Value::Array(got);
            last_db = db;
            ok
        }
        Err(e) => {
            last = json!(format!("dump failed: {e:#}"));
            false
        }
    });
    assert!(
        ok,
        "{what}: {table} {specs:?} did not become\n{:#}\nlast seen:\n{last:#}",
        Value::Array(want)
    );
    last_db
}

// ------------------------------------------------------------------------------------------------
// The environment
// ------------------------------------------------------------------------------------------------

/// IC-NB, IC-SB and a number of AZs, each with its NB/SB, optionally `ovn-northd`, and the
/// `ovn-ic` daemons under test. Daemons are declared first so they die before the servers.
struct Env {
    bin: PathBuf,
    /// `ics[az]`: the ovn-ic instances of AZ `az` (`None` while one is deliberately down).
    ics: Vec<Vec<Option<Daemon>>>,
    northds: Vec<Daemon>,
    azs: Vec<AzDbs>,
    ic: IcDbs,
}

impl Env {
    /// Starts the databases of AZs `names`, `ovn-northd` per AZ if `northd`, and `per_az`
    /// instances of `bin` per AZ.
    fn start(bin: &Path, names: &[&str], northd: bool, per_az: usize) -> Env {
        let ic = IcDbs::start().expect("IC databases");
        let azs: Vec<AzDbs> = names
            .iter()
            .map(|n| AzDbs::start(n).expect("AZ databases"))
            .collect();
        let northds = if northd {
            azs.iter()
                .map(|az| Daemon::northd_for_az(az).expect("ovn-northd"))
                .collect()
        } else {
            Vec::new()
        };
        let mut env = Env {
            bin: bin.to_path_buf(),
            ics: Vec::new(),
            northds,
            azs,
            ic,
        };
        for az in 0..names.len() {
            let daemons = (0..per_az).map(|_| Some(env.spawn_ic(az))).collect();
            env.ics.push(daemons);
        }
        env
    }

    fn spawn_ic(&self, az: usize) -> Daemon {
        Daemon::ovn_ic(&self.bin, &self.azs[az], &self.ic, &[]).unwrap_or_else(|e| {
            panic!(
                "starting {} for {}: {e:#}",
                self.bin.display(),
                self.azs[az].name
            )
        })
    }

    fn flavour(&self) -> Flavour {
        flavour(&self.bin)
    }

    fn inb(&self) -> &Server {
        &self.ic.ic_nb
    }

    fn isb(&self) -> &Server {
        &self.ic.ic_sb
    }

    fn nb(&self, az: usize) -> &Server {
        &self.azs[az].nb
    }

    fn sb(&self, az: usize) -> &Server {
        &self.azs[az].sb
    }

    /// The (first) ovn-ic of AZ `az`.
    fn ic_daemon(&self, az: usize) -> &Daemon {
        self.ics[az][0].as_ref().expect("ovn-ic is running")
    }

    /// `ovn-ic-nbctl --db=<IC-NB> ARGS`.
    fn ic_nbctl(&self, args: &[&str]) -> String {
        ctl("ovn-ic-nbctl", &self.inb().remote(), args)
    }

    /// `ovn-nbctl --db=<NB of az> ARGS`.
    fn nbctl(&self, az: usize, args: &[&str]) -> String {
        ctl("ovn-nbctl", &self.nb(az).remote(), args)
    }

    /// `ovn-sbctl --db=<SB of az> ARGS`.
    fn sbctl(&self, az: usize, args: &[&str]) -> String {
        ctl("ovn-sbctl", &self.sb(az).remote(), args)
    }

    fn dump(server: &Server) -> Value {
        server.dump().expect("ovsdb-client dump")
    }

    /// Kills the `idx`th ovn-ic of `az` with SIGKILL and starts a fresh one in its place.
    fn restart_ic(&mut self, az: usize, idx: usize) {
        if let Some(mut d) = self.ics[az][idx].take() {
            d.kill();
        }
        let d = self.spawn_ic(az);
        self.ics[az][idx] = Some(d);
    }
}

/// Runs a Debian `*ctl` tool against one database and returns its stdout.
fn ctl(tool: &str, remote: &str, args: &[&str]) -> String {
    let mut all = vec![format!("--db={remote}"), "--timeout=20".to_string()];
    all.extend(args.iter().map(|s| s.to_string()));
    let out = run(tool, &all, Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{tool} {args:?}: {e:#}"));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Inserts an SB Chassis `name` with `hostname`, one Encap per `(type, ip)` (all with
/// `options:csum=true`, as ovn-controller writes them) and `other_config`, the way
/// ovn-controller registers a chassis.
fn add_chassis(
    sb: &Server,
    name: &str,
    hostname: &str,
    encaps: &[(&str, &str)],
    other_config: &[(&str, &str)],
) {
    let mut ops = Vec::new();
    let mut refs = Vec::new();
    for (i, (ty, ip)) in encaps.iter().enumerate() {
        let id = format!("e{i}");
        ops.push(
            json!({"op": "insert", "table": "Encap", "uuid-name": id, "row": {
                "type": ty, "ip": ip, "chassis_name": name,
                "options": ["map", [["csum", "true"]]],
            }}),
        );
        refs.push(json!(["named-uuid", id]));
    }
    let oc: Vec<Value> = other_config.iter().map(|(k, v)| json!([k, v])).collect();
    ops.push(json!({"op": "insert", "table": "Chassis", "row": {
        "name": name, "hostname": hostname,
        "encaps": ["set", refs],
        "other_config": ["map", oc],
    }}));
    sb.transact(Value::Array(ops)).expect("inserting a chassis");
}

/// The expected rows of an Encap table (ISB: `gateway_name`, SB: `chassis_name`) for a
/// gateway's encaps as created by [`add_chassis`].
fn encap_rows(owner_col: &str, gw: &str, encaps: &[(&str, &str)]) -> Vec<Value> {
    encaps
        .iter()
        .map(|(ty, ip)| json!({owner_col: gw, "type": ty, "ip": ip, "options": {"csum": "true"}}))
        .collect()
}

/// A gateway as [`expect_gateways`] expects it: name, hostname, owning AZ index, `(type, ip)`
/// encaps.
type Gw<'a> = (&'a str, &'a str, usize, &'a [(&'a str, &'a str)]);

const ENCAP_COLS_ISB: &[&str] = &["gateway_name", "type", "ip", "options"];
const ENCAP_COLS_SB: &[&str] = &["chassis_name", "type", "ip", "options"];

/// Waits until `table` in `server` has a row whose `col` equals `val`; returns that dump.
fn wait_row_exists(what: &str, server: &Server, table: &str, col: &str, val: &str) -> Value {
    let mut last = Value::Null;
    let ok = wait_until(WAIT, || match server.dump() {
        Ok(db) => {
            let found = uuid_where(&db, table, col, val).is_some();
            last = db;
            found
        }
        Err(_) => false,
    });
    assert!(
        ok,
        "{what}: no {table} row with {col}={val}; last seen:\n{:#}",
        last.get(table).cloned().unwrap_or_default()
    );
    last
}

/// `ovn-appctl status` of a daemon, trimmed (`Status: active` / `Status: standby`), or the error.
fn status(d: &Daemon) -> String {
    match d.appctl(&["status"]) {
        Ok(s) => s.trim().to_string(),
        Err(e) => format!("error: {e:#}"),
    }
}

// ------------------------------------------------------------------------------------------------
// 1. Availability-zone registration (Appendix B `AZ register`, `AZ update in GW`)
// ------------------------------------------------------------------------------------------------

fn az_register(bin: &Path) {
    let env = Env::start(bin, &["az1", "az2"], false, 1);
    let db = wait_rows(
        "both AZs register",
        env.isb(),
        "Availability_Zone",
        &["name"],
        json!([{"name": "az1"}, {"name": "az2"}]),
    );
    let az1 = uuid_where(&db, "Availability_Zone", "name", "az1").expect("az1 row");

    env.nbctl(0, &["set", "NB_Global", ".", "name=az3"]);
    let db = wait_rows(
        "az1 renamed to az3",
        env.isb(),
        "Availability_Zone",
        &["name"],
        json!([{"name": "az2"}, {"name": "az3"}]),
    );
    let az3 = uuid_where(&db, "Availability_Zone", "name", "az3").expect("az3 row");
    match env.flavour() {
        Flavour::Spec => assert_eq!(az3, az1, "a renamed AZ keeps its row (spec §4.1)"),
        Flavour::C2303 => assert_ne!(az3, az1, "23.03 deletes and re-inserts (spec §6.3)"),
    }

    env.nbctl(1, &["set", "NB_Global", ".", "name=\"\""]);
    wait_rows(
        "az2's name emptied",
        env.isb(),
        "Availability_Zone",
        &["name"],
        json!([{"name": "az3"}]),
    );
}

/// `AZ update in GW`: renaming keeps the AZ row, so the gateway keeps pointing to it. Not in
/// 23.03.1 (there the rename is a delete that the gateway's reference makes fail).
fn az_update_in_gw(bin: &Path) {
    let env = Env::start(bin, &["az1"], false, 1);
    add_chassis(
        env.sb(0),
        "gw-az1",
        "gw-az1",
        &[("geneve", "192.168.0.1")],
        &[("is-interconn", "true")],
    );
    let gw_cols = &["name", "availability_zone>Availability_Zone.name"];
    let db = wait_rows(
        "gateway registered in az1",
        env.isb(),
        "Gateway",
        gw_cols,
        json!([{"name": "gw-az1", "availability_zone": "az1"}]),
    );
    let az1 = uuid_where(&db, "Availability_Zone", "name", "az1").expect("az1 row");

    env.nbctl(0, &["set", "NB_Global", ".", "name=az2"]);
    wait_rows(
        "AZ renamed",
        env.isb(),
        "Availability_Zone",
        &["_uuid", "name"],
        json!([{"_uuid": az1, "name": "az2"}]),
    );
    wait_rows(
        "gateway follows the renamed AZ",
        env.isb(),
        "Gateway",
        gw_cols,
        json!([{"name": "gw-az1", "availability_zone": "az2"}]),
    );
}

// ------------------------------------------------------------------------------------------------
// 2. Gateway synchronisation (spec §4.2, `gateway sync`)
// ------------------------------------------------------------------------------------------------

const GW1_ENCAPS: &[(&str, &str)] = &[("geneve", "192.168.0.1"), ("vxlan", "192.168.0.1")];
const GW2_ENCAPS: &[(&str, &str)] = &[("geneve", "192.168.0.2")];

/// Waits for the ISB, and both AZs' SBs, to hold exactly the gateways `gws` (name, hostname,
/// owning AZ index, encaps) plus each AZ's non-gateway chassis `others[az]`.
fn expect_gateways(env: &Env, what: &str, gws: &[Gw], others: &[Vec<Value>]) {
    let types = |encaps: &[(&str, &str)]| -> Value {
        let mut t: Vec<Value> = encaps.iter().map(|(ty, _)| json!(ty)).collect();
        sort_values(&mut t);
        if t.len() == 1 {
            t.remove(0)
        } else {
            Value::Array(t)
        }
    };
    let isb_gws: Vec<Value> = gws
        .iter()
        .map(|(name, host, az, encaps)| {
            json!({"name": name, "hostname": host,
                   "availability_zone": env.azs[*az].name, "encaps": types(encaps)})
        })
        .collect();
    wait_rows(
        what,
        env.isb(),
        "Gateway",
        &[
            "name",
            "hostname",
            "availability_zone>Availability_Zone.name",
            "encaps>Encap.type",
        ],
        Value::Array(isb_gws),
    );
    let isb_encaps: Vec<Value> = gws
        .iter()
        .flat_map(|(name, _, _, encaps)| encap_rows("gateway_name", name, encaps))
        .collect();
    wait_rows(
        what,
        env.isb(),
        "Encap",
        ENCAP_COLS_ISB,
        Value::Array(isb_encaps),
    );

    for (az, others) in others.iter().enumerate() {
        let mut chassis = others.clone();
        let mut encaps = Vec::new();
        for (name, host, owner, gw_encaps) in gws {
            let other_config = if *owner == az {
                json!({"is-interconn": "true"})
            } else {
                json!({"is-remote": "true"})
            };
            chassis.push(json!({"name": name, "hostname": host,
                                "other_config": other_config, "encaps": types(gw_encaps)}));
            encaps.extend(encap_rows("chassis_name", name, gw_encaps));
        }
        let what = format!("{what} ({})", env.azs[az].name);
        wait_rows(
            &what,
            env.sb(az),
            "Chassis",
            &["name", "hostname", "other_config", "encaps>Encap.type"],
            Value::Array(chassis),
        );
        let other_names: Vec<&str> = others.iter().filter_map(|o| o["name"].as_str()).collect();
        let db = Env::dump(env.sb(az));
        let gw_encaps: Vec<Value> = select(&db, "Encap", ENCAP_COLS_SB)
            .into_iter()
            .filter(|e| !other_names.contains(&e["chassis_name"].as_str().unwrap_or_default()))
            .collect();
        assert_eq!(
            gw_encaps,
            sorted(Value::Array(encaps)),
            "{what}: SB gateway encaps"
        );
    }
}

fn gateway_sync(bin: &Path) {
    let env = Env::start(bin, &["az1", "az2"], false, 1);
    wait_rows(
        "AZs registered",
        env.isb(),
        "Availability_Zone",
        &["name"],
        json!([{"name": "az1"}, {"name": "az2"}]),
    );
    add_chassis(
        env.sb(0),
        "gw1",
        "gw1",
        GW1_ENCAPS,
        &[("is-interconn", "true")],
    );
    add_chassis(
        env.sb(1),
        "gw2",
        "gw2host",
        GW2_ENCAPS,
        &[("is-interconn", "true")],
    );
    // An ordinary hypervisor is not a gateway and stays local.
    add_chassis(env.sb(0), "hv1", "hv1", &[("geneve", "192.168.1.1")], &[]);
    let others = vec![
        vec![json!({"name": "hv1", "hostname": "hv1", "other_config": {}, "encaps": "geneve"})],
        vec![],
    ];
    let both: &[Gw] = &[
        ("gw1", "gw1", 0, GW1_ENCAPS),
        ("gw2", "gw2host", 1, GW2_ENCAPS),
    ];
    expect_gateways(&env, "gateways synced", both, &others);

    // Not a gateway any more: gone from ISB and from the other AZ.
    env.sbctl(
        0,
        &["set", "Chassis", "gw1", "other_config:is-interconn=false"],
    );
    let mut others_off = others.clone();
    others_off[0].push(json!({"name": "gw1", "hostname": "gw1",
                              "other_config": {"is-interconn": "false"},
                              "encaps": ["geneve", "vxlan"]}));
    expect_gateways(
        &env,
        "gw1 no longer interconn",
        &[("gw2", "gw2host", 1, GW2_ENCAPS)],
        &others_off,
    );

    // A gateway again: re-created everywhere.
    env.sbctl(
        0,
        &["set", "Chassis", "gw1", "other_config:is-interconn=true"],
    );
    expect_gateways(&env, "gw1 interconn again", both, &others);

    // A new encap IP (ovn-encap-ip changed on the gateway) propagates.
    env.sb(0)
        .transact(json!([{"op": "update", "table": "Encap",
                          "where": [["chassis_name", "==", "gw1"]],
                          "row": {"ip": "192.168.0.11"}}]))
        .expect("changing gw1's encap IP");
    let gw1_new: &[(&str, &str)] = &[("geneve", "192.168.0.11"), ("vxlan", "192.168.0.11")];
    expect_gateways(
        &env,
        "gw1 encap IP changed",
        &[
            ("gw1", "gw1", 0, gw1_new),
            ("gw2", "gw2host", 1, GW2_ENCAPS),
        ],
        &others,
    );

    // The chassis disappears (ovn-controller unregistered): gone everywhere.
    env.sbctl(1, &["chassis-del", "gw2"]);
    expect_gateways(&env, "gw2 deleted", &[("gw1", "gw1", 0, gw1_new)], &others);
}

// ------------------------------------------------------------------------------------------------
// 3. Transit switches (spec §4.4, `transit switch handling`)
// ------------------------------------------------------------------------------------------------

/// The INB `_uuid` of transit switch `name`.
fn ts_uuid(env: &Env, name: &str) -> String {
    uuid_where(&Env::dump(env.inb()), "Transit_Switch", "name", name)
        .unwrap_or_else(|| panic!("no transit switch {name} in IC-NB"))
}

/// Waits until every place a transit switch shows up holds exactly `tss` (name, datapath key):
/// ISB Datapath_Binding, each AZ's NB Logical_Switch and (when ovn-northd runs) SB
/// Datapath_Binding. A key of `None` means "whatever ISB says" (23.03 lets every AZ allocate,
/// so its keys after the first depend on timing, spec §6.3); NB and SB must then agree with ISB
/// and the keys must be distinct and in the transit-switch range.
fn expect_transit_switches(env: &Env, what: &str, tss: &[(&str, Option<i64>)]) {
    let mut last = String::new();
    let ok = wait_until(WAIT, || match transit_switch_mismatch(env, tss) {
        Ok(None) => true,
        Ok(Some(m)) => {
            last = m;
            false
        }
        Err(e) => {
            last = format!("{e:#}");
            false
        }
    });
    assert!(ok, "{what}: {last}");
}

/// One check of [`expect_transit_switches`]: `None` when everything matches, else what differs.
fn transit_switch_mismatch(
    env: &Env,
    tss: &[(&str, Option<i64>)],
) -> anyhow::Result<Option<String>> {
    // The spec writes `type`/`nb_ic_uuid` where the server has them; 23.03 never does.
    let spec = env.flavour() == Flavour::Spec;
    let typed = spec && has_column("ovn-ic-sb", "Datapath_Binding", "type");
    let with_uuid = spec && has_column("ovn-ic-sb", "Datapath_Binding", "nb_ic_uuid");
    let cols = if spec { 4 } else { 2 };
    let inb = env.inb().dump()?;
    let isb = env.isb().dump()?;
    let got = select(
        &isb,
        "Datapath_Binding",
        &["transit_switch", "tunnel_key", "type", "nb_ic_uuid"][..cols],
    );
    // The keys ISB chose, by name (the expected one where given).
    let mut keys = BTreeMap::new();
    for (name, key) in tss {
        let seen = got
            .iter()
            .find(|r| r["transit_switch"] == *name)
            .and_then(|r| r["tunnel_key"].as_i64());
        match key.or(seen) {
            Some(k) => keys.insert(*name, k),
            None => return Ok(Some(format!("ISB has no datapath for {name}: {got:?}"))),
        };
    }
    let distinct: std::collections::BTreeSet<i64> = keys.values().copied().collect();
    if distinct.len() != keys.len()
        || distinct
            .iter()
            .any(|k| !(16_711_681..=16_777_215).contains(k))
    {
        return Ok(Some(format!("bad datapath keys {keys:?}")));
    }
    let want_isb = sorted(Value::Array(
        tss.iter()
            .map(|(name, _)| {
                let mut row = json!({"transit_switch": name, "tunnel_key": keys[name]});
                if typed {
                    row["type"] = json!("transit-switch");
                }
                if with_uuid {
                    row["nb_ic_uuid"] =
                        json!(uuid_where(&inb, "Transit_Switch", "name", name).unwrap_or_default());
                }
                row
            })
            .collect(),
    ));
    if got != want_isb {
        return Ok(Some(format!(
            "ISB Datapath_Binding\n  want {want_isb:?}\n  got  {got:?}"
        )));
    }
    let want_nb = sorted(Value::Array(
        tss.iter()
            .map(|(name, _)| {
                let mut oc =
                    json!({"interconn-ts": name, "requested-tnl-key": keys[name].to_string()});
                if env.flavour() == Flavour::Spec {
                    oc["ic-vxlan_mode"] = json!("false");
                }
                json!({"name": name, "other_config": oc})
            })
            .collect(),
    ));
    let want_sb = sorted(Value::Array(
        tss.iter()
            .map(|(name, _)| json!({"tunnel_key": keys[name], "external_ids:interconn-ts": name}))
            .collect(),
    ));
    for az in 0..env.azs.len() {
        let name = &env.azs[az].name;
        let got = select(
            &env.nb(az).dump()?,
            "Logical_Switch",
            &["name", "other_config"],
        );
        if got != want_nb {
            return Ok(Some(format!(
                "{name} NB Logical_Switch\n  want {want_nb:?}\n  got  {got:?}"
            )));
        }
        if !env.northds.is_empty() {
            let got = select(
                &env.sb(az).dump()?,
                "Datapath_Binding",
                &["tunnel_key", "external_ids:interconn-ts"],
            );
            if got != want_sb {
                return Ok(Some(format!(
                    "{name} SB Datapath_Binding\n  want {want_sb:?}\n  got  {got:?}"
                )));
            }
        }
    }
    Ok(None)
}

fn transit_switch(bin: &Path) {
    let env = Env::start(bin, &["az1", "az2"], true, 1);
    // With the spec, only the ISB leader allocates (lowest free key); 23.03 lets every AZ
    // allocate from its own rotating hint, so no key is certain there: even the first one is
    // lost when both AZs insert ts1 at once and each deletes the other's row as extra, and the
    // next attempt takes the hint's successor (seen in CI: 16711683 for ts1).
    let spec = env.flavour() == Flavour::Spec;
    let exact = |k: i64| spec.then_some(k);
    env.ic_nbctl(&["ts-add", "ts1"]);
    expect_transit_switches(&env, "ts1 created", &[("ts1", exact(FIRST_TS_KEY))]);
    env.ic_nbctl(&["ts-add", "ts2"]);
    expect_transit_switches(
        &env,
        "ts2 created",
        &[
            ("ts1", exact(FIRST_TS_KEY)),
            ("ts2", exact(FIRST_TS_KEY + 1)),
        ],
    );
    env.ic_nbctl(&["ts-del", "ts1"]);
    expect_transit_switches(&env, "ts1 deleted", &[("ts2", exact(FIRST_TS_KEY + 1))]);
    // After a delete the spec reuses the lowest free key (spec §4.4).
    env.ic_nbctl(&["ts-add", "ts3"]);
    expect_transit_switches(
        &env,
        "ts3 created",
        &[
            ("ts2", exact(FIRST_TS_KEY + 1)),
            ("ts3", exact(FIRST_TS_KEY)),
        ],
    );
    env.ic_nbctl(&["ts-del", "ts2", "--", "ts-del", "ts3"]);
    expect_transit_switches(&env, "all deleted", &[]);
}

// ------------------------------------------------------------------------------------------------
// 4. Legacy router ports (spec §4.6.2, §6.3 "Observed 23.03.1 results")
// ------------------------------------------------------------------------------------------------

/// One legacy router port per AZ: AZ `az` has gateway `gw<n>`, router `lr<n>` with `lrp<n>`
/// (MAC `MAC`, network `NET`), and `lsp<n>` on `ts1` of type router pointing to it.
struct LegacyPort {
    az: usize,
    n: usize,
    mac: &'static str,
    net: &'static str,
}

const PORTS: [LegacyPort; 2] = [
    LegacyPort {
        az: 0,
        n: 1,
        mac: "aa:aa:aa:aa:aa:01",
        net: "169.254.100.1/24",
    },
    LegacyPort {
        az: 1,
        n: 2,
        mac: "bb:bb:bb:bb:bb:02",
        net: "169.254.100.2/24",
    },
];

impl LegacyPort {
    fn address(&self) -> String {
        format!("{} {}", self.mac, self.net)
    }
    fn key(&self) -> i64 {
        self.n as i64
    }
}

/// Creates the gateways, `ts1` and the ports of [`PORTS`] one after the other (so the port keys
/// are 1 and 2), binding each `cr-lrp<n>` to its gateway as ovn-controller would, and waits
/// until the whole state of [`expect_legacy_ports`] is reached.
fn setup_legacy_ports(env: &Env) {
    for p in &PORTS {
        let ip = format!("192.168.0.{}", p.n);
        let gw = format!("gw{}", p.n);
        add_chassis(
            env.sb(p.az),
            &gw,
            &gw,
            &[("geneve", &ip)],
            &[("is-interconn", "true")],
        );
    }
    env.ic_nbctl(&["ts-add", "ts1"]);
    for az in 0..env.azs.len() {
        wait_row_exists("ts1 in NB", env.nb(az), "Logical_Switch", "name", "ts1");
    }
    for p in &PORTS {
        let (lr, lrp, lsp, gw) = (
            format!("lr{}", p.n),
            format!("lrp{}", p.n),
            format!("lsp{}", p.n),
            format!("gw{}", p.n),
        );
        let router_port = format!("router-port={lrp}");
        env.nbctl(
            p.az,
            &[
                "lr-add",
                &lr,
                "--",
                "lrp-add",
                &lr,
                &lrp,
                p.mac,
                p.net,
                "--",
                "lrp-set-gateway-chassis",
                &lrp,
                &gw,
                "--",
                "lsp-add",
                "ts1",
                &lsp,
                "--",
                "lsp-set-type",
                &lsp,
                "router",
                "--",
                "lsp-set-addresses",
                &lsp,
                "router",
                "--",
                "lsp-set-options",
                &lsp,
                &router_port,
            ],
        );
        let cr = format!("cr-{lrp}");
        wait_row_exists(
            "northd's cr port",
            env.sb(p.az),
            "Port_Binding",
            "logical_port",
            &cr,
        );
        env.sbctl(p.az, &["lsp-bind", &cr, &gw]);
        // Published before the next port is created, so the keys are deterministic.
        wait_row_exists(
            "ISB binding",
            env.isb(),
            "Port_Binding",
            "logical_port",
            &lsp,
        );
    }
    expect_legacy_ports(env, "legacy ports published");
}

/// The ISB bindings, the NB LSPs (local router ports and remote ports) and each AZ's SB
/// Port_Bindings for [`PORTS`] on `ts1`.
fn expect_legacy_ports(env: &Env, what: &str) {
    let typed = env.flavour() == Flavour::Spec && has_column("ovn-ic-sb", "Port_Binding", "type");
    let ts1 = ts_uuid(env, "ts1");
    let isb: Vec<Value> = PORTS
        .iter()
        .map(|p| {
            let lr = uuid_where(
                &Env::dump(env.nb(p.az)),
                "Logical_Router",
                "name",
                &format!("lr{}", p.n),
            )
            .expect("router in NB");
            let mut row = json!({
                "logical_port": format!("lsp{}", p.n),
                "transit_switch": "ts1",
                "availability_zone": env.azs[p.az].name,
                "tunnel_key": p.key(),
                "address": p.address(),
                "gateway": format!("gw{}", p.n),
                "external_ids": {"router-id": lr},
                "encap": [],
            });
            if typed {
                row["type"] = json!("transit-switch-port");
                row["nb_ic_uuid"] = json!(ts1);
            }
            row
        })
        .collect();
    wait_rows(
        what,
        env.isb(),
        "Port_Binding",
        &[
            "logical_port",
            "transit_switch",
            "availability_zone>Availability_Zone.name",
            "tunnel_key",
            "address",
            "gateway",
            "external_ids",
            "encap",
            "type",
            "nb_ic_uuid",
        ][..if typed { 10 } else { 8 }],
        Value::Array(isb),
    );
    for az in 0..env.azs.len() {
        let what = format!("{what} ({})", env.azs[az].name);
        let lsps: Vec<Value> = PORTS
            .iter()
            .map(|p| {
                let key = p.key().to_string();
                if p.az == az {
                    json!({"name": format!("lsp{}", p.n), "type": "router",
                           "addresses": "router",
                           "options": {"router-port": format!("lrp{}", p.n),
                                       "requested-tnl-key": key}})
                } else {
                    json!({"name": format!("lsp{}", p.n), "type": "remote",
                           "addresses": p.address(),
                           "options": {"requested-tnl-key": key}})
                }
            })
            .collect();
        wait_rows(
            &what,
            env.nb(az),
            "Logical_Switch_Port",
            &["name", "type", "addresses", "options"],
            Value::Array(lsps),
        );
        // The remote port is bound to the other AZ's gateway (ovn-ic's direct SB write).
        let mut pbs = Vec::new();
        for p in &PORTS {
            let (lrp, lsp, gw) = (
                format!("lrp{}", p.n),
                format!("lsp{}", p.n),
                format!("gw{}", p.n),
            );
            if p.az == az {
                pbs.push(json!({"logical_port": lrp, "type": "patch", "chassis": []}));
                pbs.push(json!({"logical_port": format!("cr-{lrp}"),
                                "type": "chassisredirect", "chassis": gw}));
                pbs.push(json!({"logical_port": lsp, "type": "patch", "chassis": []}));
            } else {
                pbs.push(json!({"logical_port": lsp, "type": "remote", "chassis": gw}));
            }
        }
        wait_rows(
            &what,
            env.sb(az),
            "Port_Binding",
            &["logical_port", "type", "chassis>Chassis.name"],
            Value::Array(pbs),
        );
    }
}

fn legacy_router_port(bin: &Path) {
    let env = Env::start(bin, &["az1", "az2"], true, 1);
    setup_legacy_ports(&env);

    // A remote LSP is created "up" by ovn-ic (spec §4.6.2 step 8).
    let db = Env::dump(env.nb(0));
    assert_eq!(
        select(&db, "Logical_Switch_Port", &["name", "up"])
            .into_iter()
            .find(|r| r["name"] == "lsp2"),
        Some(json!({"name": "lsp2", "up": true})),
        "remote LSP in az1"
    );

    // Deleting the transit switch removes the bindings, datapaths and NB switches everywhere.
    env.ic_nbctl(&["ts-del", "ts1"]);
    wait_rows(
        "ts1 deleted",
        env.isb(),
        "Port_Binding",
        &["logical_port"],
        json!([]),
    );
    wait_rows(
        "ts1 deleted",
        env.isb(),
        "Datapath_Binding",
        &["transit_switch"],
        json!([]),
    );
    for (az, p) in PORTS.iter().enumerate() {
        let what = format!("ts1 deleted ({})", env.azs[az].name);
        wait_rows(&what, env.nb(az), "Logical_Switch", &["name"], json!([]));
        wait_rows(
            &what,
            env.nb(az),
            "Logical_Switch_Port",
            &["name"],
            json!([]),
        );
        let lrp = format!("lrp{}", p.n);
        wait_rows(
            &what,
            env.sb(az),
            "Port_Binding",
            &["logical_port"],
            json!([{"logical_port": lrp}, {"logical_port": format!("cr-{lrp}")}]),
        );
    }
}

// ------------------------------------------------------------------------------------------------
// 5. Sequence numbers (spec §4.7, `sync ISB status to INB`)
// ------------------------------------------------------------------------------------------------

/// Whether all four `*_cfg` columns exist; prints the reason to skip otherwise.
fn have_seqno_columns() -> bool {
    for (schema, table, column) in [
        ("ovn-ic-nb", "IC_NB_Global", "nb_ic_cfg"),
        ("ovn-ic-nb", "IC_NB_Global", "sb_ic_cfg"),
        ("ovn-ic-sb", "IC_SB_Global", "nb_ic_cfg"),
        ("ovn-ic-sb", "Availability_Zone", "nb_ic_cfg"),
    ] {
        if let Some(reason) = common::schema_lacks(schema, table, Some(column)) {
            eprintln!("skipping: no sequence numbers: {reason}");
            return false;
        }
    }
    true
}

/// What `ovn-ic-nbctl --wait=sb` does before waiting (Debian's 23.03 tool has no `--wait`):
/// `extra` operations plus `nb_ic_cfg += 1` in one transaction; returns the new value.
fn bump_nb_ic_cfg(env: &Env, extra: Vec<Value>) -> i64 {
    let mut ops = extra;
    let n = ops.len();
    ops.push(json!({"op": "mutate", "table": "IC_NB_Global", "where": [],
                    "mutations": [["nb_ic_cfg", "+=", 1]]}));
    ops.push(json!({"op": "select", "table": "IC_NB_Global", "where": [],
                    "columns": ["nb_ic_cfg"]}));
    let reply = env
        .inb()
        .transact(Value::Array(ops))
        .expect("bumping nb_ic_cfg");
    reply[n + 1]["rows"][0]["nb_ic_cfg"]
        .as_i64()
        .expect("nb_ic_cfg in the select reply")
}

/// Waits until `IC_NB_Global.sb_ic_cfg >= want` (what `--wait=sb` waits for).
fn wait_sb_ic_cfg(env: &Env, what: &str, want: i64) {
    let mut last = Value::Null;
    let ok = wait_until(WAIT, || {
        let Ok(db) = env.inb().dump() else {
            return false;
        };
        last = Value::Array(select(&db, "IC_NB_Global", &["nb_ic_cfg", "sb_ic_cfg"]));
        last[0]["sb_ic_cfg"].as_i64().is_some_and(|v| v >= want)
    });
    assert!(ok, "{what}: sb_ic_cfg never reached {want}; last {last}");
}

fn sequence_numbers(bin: &Path) {
    if !have_seqno_columns() {
        return;
    }
    let env = Env::start(bin, &["az1", "az2"], false, 1);
    wait_rows(
        "AZs registered",
        env.isb(),
        "Availability_Zone",
        &["name"],
        json!([{"name": "az1"}, {"name": "az2"}]),
    );

    // `ovn-ic-nbctl --wait=sb ts-add ts1`: once it returns, every AZ has processed the change.
    // (Each AZ sends its NB write in the same iteration as the ISB counter bump, and the counter
    // is published one ISB round trip later, so allow a short grace for the NB commit only.)
    let one = bump_nb_ic_cfg(
        &env,
        vec![json!({"op": "insert", "table": "Transit_Switch", "row": {"name": "ts1"}})],
    );
    assert_eq!(one, 1);
    wait_sb_ic_cfg(&env, "ts-add with --wait=sb", one);
    for az in 0..2 {
        let mut last = Vec::new();
        let ok = wait_until(Duration::from_secs(2), || {
            last = env
                .nb(az)
                .dump()
                .map(|db| select(&db, "Logical_Switch", &["name"]))
                .unwrap_or_default();
            last == [json!({"name": "ts1"})]
        });
        assert!(
            ok,
            "{} has no ts1 when --wait=sb returns: {last:?}",
            env.azs[az].name
        );
    }
    wait_rows(
        "seqno 1",
        env.isb(),
        "IC_SB_Global",
        &["nb_ic_cfg"],
        json!([{"nb_ic_cfg": 1}]),
    );
    wait_rows(
        "seqno 1",
        env.isb(),
        "Availability_Zone",
        &["name", "nb_ic_cfg"],
        json!([{"name": "az1", "nb_ic_cfg": 1}, {"name": "az2", "nb_ic_cfg": 1}]),
    );

    // A paused AZ holds `--wait=sb` back; resuming releases it.
    env.ic_daemon(1).appctl(&["pause"]).expect("pause");
    let two = bump_nb_ic_cfg(&env, Vec::new());
    assert_eq!(two, 2);
    wait_rows(
        "az1 processed seqno 2",
        env.isb(),
        "Availability_Zone",
        &["name", "nb_ic_cfg"],
        json!([{"name": "az1", "nb_ic_cfg": 2}, {"name": "az2", "nb_ic_cfg": 1}]),
    );
    std::thread::sleep(Duration::from_secs(1));
    wait_rows(
        "paused az2 blocks",
        env.inb(),
        "IC_NB_Global",
        &["nb_ic_cfg", "sb_ic_cfg"],
        json!([{"nb_ic_cfg": 2, "sb_ic_cfg": 1}]),
    );
    env.ic_daemon(1).appctl(&["resume"]).expect("resume");
    wait_sb_ic_cfg(&env, "after resume", two);
    wait_rows(
        "after resume",
        env.inb(),
        "IC_NB_Global",
        &["nb_ic_cfg", "sb_ic_cfg"],
        json!([{"nb_ic_cfg": 2, "sb_ic_cfg": 2}]),
    );
}

// ------------------------------------------------------------------------------------------------
// 6. Restart safety
// ------------------------------------------------------------------------------------------------

/// Every row (all columns, `_uuid` included, so a delete + re-insert shows) of the tables that
/// hold interconnection state, minus the columns that legitimately change (the AZ's
/// `nb_ic_cfg`, reset by a restart, spec Q10; the LSPs' `up`, owned by ovn-northd) and minus rows
/// mentioning a `probe` transit switch.
fn snapshot(env: &Env, with_isb: bool) -> BTreeMap<String, Vec<Value>> {
    let mut out = BTreeMap::new();
    let mut take = |label: String, db: &Value, table: &str, drop: &[&str]| {
        let mut rows: Vec<Value> = common::rows(db, table)
            .iter()
            .map(|r| {
                let mut o = Map::new();
                for (k, v) in r.as_object().into_iter().flatten() {
                    if !drop.contains(&k.as_str()) && k != "_version" {
                        o.insert(k.clone(), norm(v));
                    }
                }
                Value::Object(o)
            })
            .filter(|r| !r.to_string().contains("probe"))
            .collect();
        sort_values(&mut rows);
        out.insert(format!("{label} {table}"), rows);
    };
    if with_isb {
        let isb = Env::dump(env.isb());
        take("ISB".into(), &isb, "Availability_Zone", &["nb_ic_cfg"]);
        for t in ["Gateway", "Encap", "Datapath_Binding", "Port_Binding"] {
            take("ISB".into(), &isb, t, &[]);
        }
    }
    for az in 0..env.azs.len() {
        let name = &env.azs[az].name;
        let nb = Env::dump(env.nb(az));
        take(format!("{name} NB"), &nb, "Logical_Switch", &[]);
        take(format!("{name} NB"), &nb, "Logical_Switch_Port", &["up"]);
        let sb = Env::dump(env.sb(az));
        take(format!("{name} SB"), &sb, "Chassis", &[]);
        take(format!("{name} SB"), &sb, "Encap", &[]);
    }
    out
}

/// Asserts that the state stays `want` for `how_long` (sampling), e.g. while a daemon or
/// server is down or just came back.
fn assert_stays(
    env: &Env,
    what: &str,
    want: &BTreeMap<String, Vec<Value>>,
    with_isb: bool,
    how_long: Duration,
) {
    let end = Instant::now() + how_long;
    loop {
        let got = snapshot(env, with_isb);
        for (k, v) in want {
            if with_isb || !k.starts_with("ISB") {
                assert_eq!(got.get(k), Some(v), "{what}: {k} changed");
            }
        }
        if Instant::now() >= end {
            return;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Adds transit switch `name` and waits until the ISB and every AZ's NB have it: proves that
/// every ovn-ic is connected and has run a full sync since.
fn probe(env: &Env, name: &str) {
    env.ic_nbctl(&["ts-add", name]);
    wait_row_exists(
        "probe in ISB",
        env.isb(),
        "Datapath_Binding",
        "transit_switch",
        name,
    );
    for az in 0..env.azs.len() {
        wait_row_exists("probe in NB", env.nb(az), "Logical_Switch", "name", name);
    }
}

fn restart_safety(bin: &Path) {
    let mut env = Env::start(bin, &["az1", "az2"], true, 1);
    setup_legacy_ports(&env);
    // Steady state first (northd may still be settling).
    let settled = wait_until(WAIT, || {
        let a = snapshot(&env, true);
        std::thread::sleep(Duration::from_millis(500));
        a == snapshot(&env, true)
    });
    assert!(settled, "the state never settled");
    let before = snapshot(&env, true);

    // ovn-ic killed and restarted: nothing is deleted or re-created.
    env.restart_ic(0, 0);
    assert_stays(
        &env,
        "ovn-ic restarted",
        &before,
        true,
        Duration::from_secs(3),
    );
    probe(&env, "probe1");
    assert_eq!(snapshot(&env, true), before, "after the ovn-ic restart");

    // IC-SB killed: the AZs keep their NB/SB state while it is down...
    env.ic.ic_sb.kill();
    assert_stays(&env, "IC-SB down", &before, false, Duration::from_secs(3));
    // ... and after it is back on the same socket everything is as before.
    env.ic.ic_sb.restart().expect("restarting IC-SB");
    probe(&env, "probe2");
    assert_stays(
        &env,
        "IC-SB restarted",
        &before,
        true,
        Duration::from_secs(2),
    );
    expect_legacy_ports(&env, "after the IC-SB restart");
}

// ------------------------------------------------------------------------------------------------
// 7. Active / standby
// ------------------------------------------------------------------------------------------------

fn standby(bin: &Path) {
    let mut env = Env::start(bin, &["az1"], false, 2);
    let statuses = |env: &Env| -> Vec<String> {
        env.ics[0]
            .iter()
            .map(|d| d.as_ref().map(status).unwrap_or_else(|| "down".into()))
            .collect()
    };
    let mut last = Vec::new();
    let one_active = wait_until(WAIT, || {
        last = statuses(&env);
        let mut s = last.clone();
        s.sort();
        s == ["Status: active", "Status: standby"]
    });
    assert!(
        one_active,
        "expected one active and one standby, got {last:?}"
    );
    wait_rows(
        "the active instance registers the AZ",
        env.isb(),
        "Availability_Zone",
        &["name"],
        json!([{"name": "az1"}]),
    );

    let active = last.iter().position(|s| s == "Status: active").unwrap_or(0);
    let other = 1 - active;
    if let Some(mut d) = env.ics[0][active].take() {
        d.kill();
    }
    let took_over = wait_until(WAIT, || {
        last = statuses(&env);
        last[other] == "Status: active"
    });
    assert!(took_over, "the standby did not take over: {last:?}");

    // The replacement works as the active one: a transit switch appears in NB.
    env.ic_nbctl(&["ts-add", "ts1"]);
    wait_row_exists(
        "ts1 after fail-over",
        env.nb(0),
        "Logical_Switch",
        "name",
        "ts1",
    );

    // A restarted instance waits as standby.
    env.ics[0][active] = Some(env.spawn_ic(0));
    let ok = wait_until(WAIT, || {
        last = statuses(&env);
        last[active] == "Status: standby" && last[other] == "Status: active"
    });
    assert!(ok, "the restarted instance should be standby: {last:?}");
}

// ------------------------------------------------------------------------------------------------
// The tests: ours (enabled once the daemon's main loop is wired) and the C reference
// ------------------------------------------------------------------------------------------------

macro_rules! scenario_tests {
    ($($scenario:ident: $ours:ident, $c:ident;)*) => {$(
        #[test]
        fn $ours() {
            $scenario(&our_ovn_ic());
        }

        #[test]
        fn $c() {
            if c_runnable() {
                $scenario(Path::new(C_OVN_IC));
            }
        }
    )*};
}

scenario_tests! {
    az_register: az_register_ours, az_register_c;
    gateway_sync: gateway_sync_ours, gateway_sync_c;
    transit_switch: transit_switch_ours, transit_switch_c;
    legacy_router_port: legacy_router_port_ours, legacy_router_port_c;
    restart_safety: restart_safety_ours, restart_safety_c;
    standby: standby_ours, standby_c;
}

/// Not in 23.03.1 (rename semantics arrived in 23.03.3 / 24.03).
#[test]
fn az_update_in_gw_ours() {
    az_update_in_gw(&our_ovn_ic());
}

/// Not in 23.03.1 (sequence numbers arrived in 24.03); skipped on schemas without `*_cfg`.
#[test]
fn sequence_numbers_ours() {
    sequence_numbers(&our_ovn_ic());
}
