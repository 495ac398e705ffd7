//! Mixed versions on one IC-SB (issue 6): Debian's C `ovn-ic` 23.03 and ours run side by side,
//! each in its own availability zone, against the same IC-NB/IC-SB.
//!
//! Every database uses Debian's 23.03 schemas (`/usr/share/ovn`) whatever `OVN_SCHEMA_DIR` says,
//! because the C 23.03 daemon cannot run against newer IC databases (spec `ovn-ic-core.md` §6.3).
//!
//! Topology (AZ `n` = 1, 2, 3): `ovn-northd`, a gateway chassis `gw<n>` (raw SB Chassis/Encap
//! with `other_config:is-interconn=true`), a router `lr<n>` with an internal port `lr<n>-int`
//! (`10.<n>.0.1/24`, advertised as a connected route), two static routes (`10.<n>.1.0/24`,
//! `10.<n>.2.0/24`) and one legacy router port per transit switch: `lrp<n>-ts<t>`
//! (`169.254.<100t>.<n>/24`, gateway chassis `gw<n>`) behind LSP `lsp<n>-ts<t>` on `ts<t>`, with
//! `cr-lrp<n>-ts<t>` bound to `gw<n>` (standing in for ovn-controller). Route advertisement and
//! learning are on everywhere.
//!
//! Scenarios:
//! 1. [`mixed_c_and_ours_converge`]: AZ1 runs C, AZ2 and AZ3 ours; everything converges in both
//!    directions ([`check_converged`]).
//! 2. [`swapping_daemons_keeps_the_state`]: C in AZ1 replaced by ours, ours in AZ2 by C; the
//!    normalised state is the same as before ([`natural`]), and no row was re-created.
//! 3. [`upgrading_an_az_from_c_to_ours_withdraws_nothing`]: AZ1 and AZ2 run C, AZ3 ours; AZ1 is
//!    upgraded to ours while every ISB Port_Binding/Route and NB learned route is watched (polled
//!    every 100 ms, and monitored with `ovsdb-client monitor` so even a delete + re-insert inside
//!    one poll interval shows).
//! 4. [`mixed_daemons_stay_quiet`]: after convergence, 10 s without input produce no
//!    `transact` request on any server (counted in the servers' `-vjsonrpc:file:dbg` logs).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{
    our_ovn_ic, run, wait_until, AzDbs, Daemon, DbOptions, IcDbs, Proc, Server, TestDir, C_OVN_IC,
};
use serde_json::{json, Map, Value};

/// Debian's OVN 23.03 schemas, the only ones the C daemon runs against.
const DEBIAN_SCHEMAS: &str = "/usr/share/ovn";

/// How long a state the daemons must reach may take (three AZs on a shared 2-core machine).
const WAIT: Duration = Duration::from_secs(60);

const AZ_COUNT: usize = 3;
const TS_NAMES: [&str; 2] = ["ts1", "ts2"];

// ------------------------------------------------------------------------------------------------
// Which daemon runs where
// ------------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Impl {
    /// Debian's C `ovn-ic` 23.03.
    C,
    /// This crate's binary.
    Ours,
}

impl Impl {
    fn program(self) -> PathBuf {
        match self {
            Impl::C => PathBuf::from(C_OVN_IC),
            Impl::Ours => our_ovn_ic(),
        }
    }
}

/// Whether the scenarios can run here (Debian's C daemon, northd and 23.03 schemas installed);
/// prints why not otherwise.
fn runnable() -> bool {
    for f in [
        "ovn-nb.ovsschema",
        "ovn-sb.ovsschema",
        "ovn-ic-nb.ovsschema",
        "ovn-ic-sb.ovsschema",
    ] {
        let p = Path::new(DEBIAN_SCHEMAS).join(f);
        if !p.exists() {
            eprintln!("skipping: {} is not installed", p.display());
            return false;
        }
    }
    if !Path::new(C_OVN_IC).exists() {
        eprintln!("skipping: {C_OVN_IC} is not installed");
        return false;
    }
    true
}

// ------------------------------------------------------------------------------------------------
// Normalised rows
// ------------------------------------------------------------------------------------------------

/// An OVSDB JSON value as plain JSON: `["uuid", U]` → `"U"`, `["set", [..]]` → sorted array (a
/// one-element set → its element), `["map", [..]]` → object.
fn norm(v: &Value) -> Value {
    if let Some([Value::String(tag), inner]) = v.as_array().map(Vec::as_slice) {
        match tag.as_str() {
            "uuid" | "named-uuid" => return inner.clone(),
            "set" => {
                let mut xs: Vec<Value> = inner
                    .as_array()
                    .map(|a| a.iter().map(norm).collect())
                    .unwrap_or_default();
                xs.sort_by_cached_key(Value::to_string);
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

/// The rows of `table`, each normalised with [`norm`].
fn rows(db: &Value, table: &str) -> Vec<Map<String, Value>> {
    common::rows(db, table)
        .iter()
        .filter_map(|r| r.as_object())
        .map(|r| r.iter().map(|(k, v)| (k.clone(), norm(v))).collect())
        .collect()
}

fn s<'a>(row: &'a Map<String, Value>, col: &str) -> &'a str {
    row.get(col).and_then(Value::as_str).unwrap_or_default()
}

/// `col` of the row of `table` whose `_uuid` is `uuid` (`""` if none).
fn lookup(db: &Value, table: &str, uuid: &str, col: &str) -> String {
    rows(db, table)
        .iter()
        .find(|r| s(r, "_uuid") == uuid)
        .map(|r| s(r, col).to_string())
        .unwrap_or_default()
}

/// The `_uuid` of the row of `table` whose `col` is `val` (`""` if none).
fn uuid_of(db: &Value, table: &str, col: &str, val: &str) -> String {
    rows(db, table)
        .iter()
        .find(|r| s(r, col) == val)
        .map(|r| s(r, "_uuid").to_string())
        .unwrap_or_default()
}

/// Sorted, for order-independent comparison.
fn sorted(mut xs: Vec<Value>) -> Vec<Value> {
    xs.sort_by_cached_key(Value::to_string);
    xs
}

/// Values of a normalised set column as a list (a one-element set is stored as the element).
fn set_items(v: Option<&Value>) -> Vec<Value> {
    match v {
        None => Vec::new(),
        Some(Value::Array(xs)) => xs.clone(),
        Some(x) => vec![x.clone()],
    }
}

// ------------------------------------------------------------------------------------------------
// The environment
// ------------------------------------------------------------------------------------------------

/// IC-NB, IC-SB and three AZs; daemons are declared first so they die before the servers.
struct Env {
    /// `ics[az]`: the running ovn-ic of that AZ and which implementation it is.
    ics: Vec<Option<(Impl, Daemon)>>,
    _northds: Vec<Daemon>,
    azs: Vec<AzDbs>,
    ic: IcDbs,
}

impl Env {
    /// Starts all databases with Debian's schemas (and `server_args`), `ovn-northd` per AZ and
    /// `impls[az]` as each AZ's ovn-ic, then builds the topology and waits for convergence.
    fn start(impls: &[Impl; AZ_COUNT], server_args: &[&str]) -> Env {
        let mut opts = DbOptions::schema_dir(DEBIAN_SCHEMAS);
        for a in server_args {
            opts = opts.server_arg(*a);
        }
        let ic = IcDbs::start_with(&opts).expect("IC databases");
        let azs: Vec<AzDbs> = (1..=AZ_COUNT)
            .map(|n| AzDbs::start_with(&format!("az{n}"), &opts).expect("AZ databases"))
            .collect();
        let _northds = azs
            .iter()
            .map(|az| Daemon::northd_for_az(az).expect("ovn-northd"))
            .collect();
        let mut env = Env {
            ics: Vec::new(),
            _northds,
            azs,
            ic,
        };
        for (az, imp) in impls.iter().enumerate() {
            let d = env.spawn_ic(az, *imp);
            env.ics.push(Some((*imp, d)));
        }
        env.build_topology();
        env.wait_converged("initial convergence");
        env
    }

    fn spawn_ic(&self, az: usize, imp: Impl) -> Daemon {
        Daemon::ovn_ic(imp.program(), &self.azs[az], &self.ic, &[])
            .unwrap_or_else(|e| panic!("starting {imp:?} ovn-ic for {}: {e:#}", self.azs[az].name))
    }

    fn impl_of(&self, az: usize) -> Option<Impl> {
        self.ics[az].as_ref().map(|(i, _)| *i)
    }

    /// Stops AZ `az`'s ovn-ic (SIGTERM, as an init system would for an upgrade).
    fn stop_ic(&mut self, az: usize) {
        if let Some((_, mut d)) = self.ics[az].take() {
            d.terminate(Duration::from_secs(5));
        }
    }

    /// Replaces AZ `az`'s ovn-ic by `imp`: stop the old one, start the new one.
    fn replace_ic(&mut self, az: usize, imp: Impl) {
        self.stop_ic(az);
        let d = self.spawn_ic(az, imp);
        self.ics[az] = Some((imp, d));
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

    /// Every server: IC-NB, IC-SB, then each AZ's NB and SB.
    fn servers(&self) -> Vec<&Server> {
        let mut v = vec![&self.ic.ic_nb, &self.ic.ic_sb];
        for az in &self.azs {
            v.push(&az.nb);
            v.push(&az.sb);
        }
        v
    }

    fn nbctl(&self, az: usize, args: &[&str]) -> String {
        ctl("ovn-nbctl", &self.nb(az).remote(), args)
    }

    fn sbctl(&self, az: usize, args: &[&str]) -> String {
        ctl("ovn-sbctl", &self.sb(az).remote(), args)
    }

    /// Builds the topology of the module documentation, publishing the ports one AZ after the
    /// other.
    fn build_topology(&self) {
        for az in 0..AZ_COUNT {
            let n = az + 1;
            self.nbctl(
                az,
                &[
                    "set",
                    "NB_Global",
                    ".",
                    "options:ic-route-adv=true",
                    "options:ic-route-learn=true",
                ],
            );
            add_gateway(self.sb(az), &format!("gw{n}"), &format!("192.168.0.{n}"));
        }
        ctl(
            "ovn-ic-nbctl",
            &self.ic.ic_nb.remote(),
            &["ts-add", "ts1", "--", "ts-add", "ts2"],
        );
        for az in 0..AZ_COUNT {
            for ts in TS_NAMES {
                wait_row("transit switch in NB", self.nb(az), "Logical_Switch", ts);
            }
        }
        for az in 0..AZ_COUNT {
            let n = az + 1;
            let lr = format!("lr{n}");
            let mut args: Vec<String> = Vec::new();
            let mut cmd = |a: &[&str]| {
                if !args.is_empty() {
                    args.push("--".into());
                }
                args.extend(a.iter().map(|s| s.to_string()));
            };
            cmd(&["lr-add", &lr]);
            cmd(&[
                "lrp-add",
                &lr,
                &format!("lr{n}-int"),
                &format!("0a:00:00:0{n}:00:00"),
                &format!("10.{n}.0.1/24"),
            ]);
            for (i, ts) in TS_NAMES.iter().enumerate() {
                let t = i + 1;
                let (lrp, lsp) = (format!("lrp{n}-ts{t}"), format!("lsp{n}-ts{t}"));
                cmd(&[
                    "lrp-add",
                    &lr,
                    &lrp,
                    &format!("0a:00:00:0{n}:00:0{t}"),
                    &format!("169.254.{}.{n}/24", 100 * t),
                ]);
                cmd(&["lrp-set-gateway-chassis", &lrp, &format!("gw{n}")]);
                cmd(&["lsp-add", ts, &lsp]);
                cmd(&["lsp-set-type", &lsp, "router"]);
                cmd(&["lsp-set-addresses", &lsp, "router"]);
                cmd(&["lsp-set-options", &lsp, &format!("router-port={lrp}")]);
            }
            for prefix in static_prefixes(n) {
                cmd(&["lr-route-add", &lr, &prefix, &format!("10.{n}.0.254")]);
            }
            let argv: Vec<&str> = args.iter().map(String::as_str).collect();
            self.nbctl(az, &argv);
            for t in 1..=TS_NAMES.len() {
                let cr = format!("cr-lrp{n}-ts{t}");
                wait_row_col(
                    "northd's cr port",
                    self.sb(az),
                    "Port_Binding",
                    "logical_port",
                    &cr,
                );
                self.sbctl(az, &["lsp-bind", &cr, &format!("gw{n}")]);
            }
            for t in 1..=TS_NAMES.len() {
                wait_row_col(
                    "ISB binding",
                    self.isb(),
                    "Port_Binding",
                    "logical_port",
                    &format!("lsp{n}-ts{t}"),
                );
            }
        }
    }

    /// Waits until [`check_converged`] passes; panics with the last mismatch and both kinds of
    /// daemons' log tails otherwise.
    fn wait_converged(&self, what: &str) {
        let mut last = String::new();
        let ok = wait_until(WAIT, || match check_converged(self) {
            Ok(()) => true,
            Err(m) => {
                last = m;
                false
            }
        });
        assert!(ok, "{what}: not converged: {last}{}", self.log_tails());
    }

    /// The last lines of every ovn-ic log, for failure messages.
    fn log_tails(&self) -> String {
        let mut out = String::new();
        for (az, d) in self.ics.iter().enumerate() {
            if let Some((imp, d)) = d {
                let text = d.log_text();
                let lines: Vec<&str> = text.lines().collect();
                let tail = lines[lines.len().saturating_sub(20)..].join("\n");
                out.push_str(&format!(
                    "\n--- {} ovn-ic ({imp:?}) log tail ---\n{tail}",
                    self.azs[az].name
                ));
            }
        }
        out
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

/// Registers gateway chassis `name` with one geneve encap at `ip`, as ovn-controller would with
/// `ovn-is-interconn=true`.
fn add_gateway(sb: &Server, name: &str, ip: &str) {
    sb.transact(json!([
        {"op": "insert", "table": "Encap", "uuid-name": "e0", "row": {
            "type": "geneve", "ip": ip, "chassis_name": name,
            "options": ["map", [["csum", "true"]]]}},
        {"op": "insert", "table": "Chassis", "row": {
            "name": name, "hostname": name, "encaps": ["named-uuid", "e0"],
            "other_config": ["map", [["is-interconn", "true"]]]}}
    ]))
    .expect("inserting a gateway chassis");
}

fn wait_row(what: &str, server: &Server, table: &str, name: &str) {
    wait_row_col(what, server, table, "name", name);
}

fn wait_row_col(what: &str, server: &Server, table: &str, col: &str, val: &str) {
    let ok = wait_until(WAIT, || {
        server
            .dump()
            .is_ok_and(|db| !uuid_of(&db, table, col, val).is_empty())
    });
    assert!(ok, "{what}: no {table} row with {col}={val}");
}

fn static_prefixes(n: usize) -> [String; 2] {
    [format!("10.{n}.1.0/24"), format!("10.{n}.2.0/24")]
}

/// The three routes AZ `n` advertises on each transit switch: `(prefix, origin)`.
fn advertised(n: usize) -> Vec<(String, &'static str)> {
    let mut v: Vec<(String, &str)> = static_prefixes(n)
        .into_iter()
        .map(|p| (p, "static"))
        .collect();
    v.push((format!("10.{n}.0.1/24"), "connected"));
    v
}

/// AZ `n`'s address on transit switch `t` (1-based).
fn ts_ip(n: usize, t: usize) -> String {
    format!("169.254.{}.{n}", 100 * t)
}

/// The ISB/NB address string of port `lsp<n>-ts<t>`.
fn port_address(n: usize, t: usize) -> String {
    format!("0a:00:00:0{n}:00:0{t} {}/24", ts_ip(n, t))
}

// ------------------------------------------------------------------------------------------------
// Convergence check (scenario 1)
// ------------------------------------------------------------------------------------------------

fn diff(what: &str, want: Vec<Value>, got: Vec<Value>) -> Result<(), String> {
    let (want, got) = (sorted(want), sorted(got));
    if want == got {
        Ok(())
    } else {
        let mut msg = format!("{what}:");
        for r in want.iter().filter(|r| !got.contains(r)) {
            msg.push_str(&format!("\n  missing {r}"));
        }
        for r in got.iter().filter(|r| !want.contains(r)) {
            msg.push_str(&format!("\n  unexpected {r}"));
        }
        Err(msg)
    }
}

/// `Ok` when the whole interconnection state is as expected in the ISB, every NB and every SB.
fn check_converged(env: &Env) -> Result<(), String> {
    let isb = env.isb().dump().map_err(|e| format!("{e:#}"))?;
    let mut nbs = Vec::new();
    let mut sbs = Vec::new();
    for az in 0..AZ_COUNT {
        nbs.push(env.nb(az).dump().map_err(|e| format!("{e:#}"))?);
        sbs.push(env.sb(az).dump().map_err(|e| format!("{e:#}"))?);
    }
    let az_name = |uuid: &str| lookup(&isb, "Availability_Zone", uuid, "name");
    let lr_uuid = |az: usize| uuid_of(&nbs[az], "Logical_Router", "name", &format!("lr{}", az + 1));

    // Availability zones and gateways.
    diff(
        "ISB Availability_Zone",
        (1..=AZ_COUNT)
            .map(|n| json!({"name": format!("az{n}")}))
            .collect(),
        rows(&isb, "Availability_Zone")
            .iter()
            .map(|r| json!({"name": s(r, "name")}))
            .collect(),
    )?;
    diff(
        "ISB Gateway",
        (1..=AZ_COUNT)
            .map(|n| {
                json!({"name": format!("gw{n}"), "hostname": format!("gw{n}"),
                       "az": format!("az{n}"),
                       "encaps": [format!("geneve 192.168.0.{n}")]})
            })
            .collect(),
        rows(&isb, "Gateway")
            .iter()
            .map(|r| {
                let encaps: Vec<String> = set_items(r.get("encaps"))
                    .iter()
                    .map(|u| {
                        let u = u.as_str().unwrap_or_default();
                        format!(
                            "{} {}",
                            lookup(&isb, "Encap", u, "type"),
                            lookup(&isb, "Encap", u, "ip")
                        )
                    })
                    .collect();
                json!({"name": s(r, "name"), "hostname": s(r, "hostname"),
                       "az": az_name(s(r, "availability_zone")), "encaps": encaps})
            })
            .collect(),
    )?;

    // One datapath per transit switch, distinct keys in the transit-switch range.
    let dps = rows(&isb, "Datapath_Binding");
    let mut keys = BTreeMap::new();
    for r in &dps {
        let key = r.get("tunnel_key").and_then(Value::as_i64).unwrap_or(-1);
        if keys
            .insert(s(r, "transit_switch").to_string(), key)
            .is_some()
        {
            return Err(format!("two ISB datapaths for {}", s(r, "transit_switch")));
        }
    }
    let names: Vec<&str> = keys.keys().map(String::as_str).collect();
    if names != TS_NAMES {
        return Err(format!("ISB datapaths for {names:?}, want {TS_NAMES:?}"));
    }
    let distinct: BTreeSet<i64> = keys.values().copied().collect();
    if distinct.len() != keys.len()
        || distinct
            .iter()
            .any(|k| !(16_711_681..=16_777_215).contains(k))
    {
        return Err(format!("bad ISB datapath keys {keys:?}"));
    }

    // Port bindings: one per port, owned by its AZ, with address, gateway and router-id. Keys
    // depend on timing (each daemon allocates from its own process-lifetime hint, C 23.03 and
    // the spec alike, §4.6.6): they must be distinct per switch, and NB must agree with them.
    let mut port_keys: BTreeMap<String, i64> = BTreeMap::new();
    let mut used: BTreeSet<(String, i64)> = BTreeSet::new();
    for r in rows(&isb, "Port_Binding") {
        let key = r.get("tunnel_key").and_then(Value::as_i64).unwrap_or(-1);
        let ts = s(&r, "transit_switch").to_string();
        if !(1..=32_767).contains(&key) || !used.insert((ts.clone(), key)) {
            return Err(format!("bad or duplicate port key {key} on {ts}"));
        }
        port_keys.insert(s(&r, "logical_port").to_string(), key);
    }
    let port_key = |lsp: &str| port_keys.get(lsp).map(i64::to_string).unwrap_or_default();
    let mut want = Vec::new();
    for az in 0..AZ_COUNT {
        let n = az + 1;
        for (i, ts) in TS_NAMES.iter().enumerate() {
            let t = i + 1;
            want.push(json!({
                "logical_port": format!("lsp{n}-ts{t}"), "transit_switch": ts,
                "az": format!("az{n}"), "address": port_address(n, t),
                "gateway": format!("gw{n}"), "external_ids": {"router-id": lr_uuid(az)},
                "encap": [],
            }));
        }
    }
    diff(
        "ISB Port_Binding",
        want,
        rows(&isb, "Port_Binding")
            .iter()
            .map(|r| {
                json!({
                    "logical_port": s(r, "logical_port"), "transit_switch": s(r, "transit_switch"),
                    "az": az_name(s(r, "availability_zone")),
                    "address": s(r, "address"), "gateway": s(r, "gateway"),
                    "external_ids": r["external_ids"], "encap": r["encap"],
                })
            })
            .collect(),
    )?;

    // Routes: every AZ advertises its three routes on both switches. `nb-id` names the NB
    // source; `lr-id` (not written by 23.03) is the router when present, and always present
    // while ours runs the owning AZ.
    let mut want = Vec::new();
    for az in 0..AZ_COUNT {
        let n = az + 1;
        for (i, ts) in TS_NAMES.iter().enumerate() {
            for (prefix, origin) in advertised(n) {
                want.push(json!({
                    "transit_switch": ts, "az": format!("az{n}"), "route_table": "",
                    "ip_prefix": prefix, "nexthop": ts_ip(n, i + 1), "origin": origin,
                    "nb-id ok": true, "lr-id ok": true,
                }));
            }
        }
    }
    let got = rows(&isb, "Route")
        .iter()
        .map(|r| {
            let az_n = az_name(s(r, "availability_zone"));
            let az = az_n
                .strip_prefix("az")
                .and_then(|x| x.parse::<usize>().ok())
                .map(|n| n - 1);
            let ids = r["external_ids"].as_object().cloned().unwrap_or_default();
            let nb_id = ids.get("nb-id").and_then(Value::as_str).unwrap_or_default();
            let nb_ok = az.is_some_and(|az| {
                let nb = &nbs[az];
                match s(r, "origin") {
                    "static" => {
                        lookup(nb, "Logical_Router_Static_Route", nb_id, "ip_prefix")
                            == s(r, "ip_prefix")
                    }
                    _ => {
                        lookup(nb, "Logical_Router_Port", nb_id, "name")
                            == format!("lr{}-int", az + 1)
                    }
                }
            });
            let lr_ok = az.is_some_and(|az| match ids.get("lr-id") {
                Some(v) => v.as_str() == Some(lr_uuid(az).as_str()),
                None => env.impl_of(az) != Some(Impl::Ours),
            });
            json!({
                "transit_switch": s(r, "transit_switch"), "az": az_n,
                "route_table": s(r, "route_table"), "ip_prefix": s(r, "ip_prefix"),
                "nexthop": s(r, "nexthop"), "origin": s(r, "origin"),
                "nb-id ok": nb_ok, "lr-id ok": lr_ok,
            })
        })
        .collect();
    diff("ISB Route", want, got)?;

    for az in 0..AZ_COUNT {
        let m = az + 1;
        let (nb, sb) = (&nbs[az], &sbs[az]);
        let name = format!("az{m}");

        // Transit switches with the ISB's keys.
        diff(
            &format!("{name} NB Logical_Switch"),
            keys.iter()
                .map(|(ts, k)| {
                    json!({"name": ts, "interconn-ts": ts,
                                      "requested-tnl-key": k.to_string()})
                })
                .collect(),
            rows(nb, "Logical_Switch")
                .iter()
                .map(|r| {
                    json!({"name": s(r, "name"),
                           "interconn-ts": r["other_config"]["interconn-ts"],
                           "requested-tnl-key": r["other_config"]["requested-tnl-key"]})
                })
                .collect(),
        )?;

        // Local router ports and the remote LSPs of the other AZs.
        let mut want = Vec::new();
        for n in 1..=AZ_COUNT {
            for t in 1..=TS_NAMES.len() {
                let lsp = format!("lsp{n}-ts{t}");
                let key = port_key(&lsp);
                want.push(if n == m {
                    json!({"name": lsp, "type": "router", "addresses": "router",
                           "options": {"router-port": format!("lrp{n}-ts{t}"),
                                       "requested-tnl-key": key}})
                } else {
                    json!({"name": lsp, "type": "remote", "addresses": port_address(n, t),
                           "options": {"requested-tnl-key": key}})
                });
            }
        }
        diff(
            &format!("{name} NB Logical_Switch_Port"),
            want,
            rows(nb, "Logical_Switch_Port")
                .iter()
                .map(|r| {
                    json!({"name": s(r, "name"), "type": s(r, "type"),
                           "addresses": r["addresses"], "options": r["options"]})
                })
                .collect(),
        )?;

        // Learned routes: every other AZ's routes on both switches, each pointing to its ISB row.
        let mut want = Vec::new();
        for n in (1..=AZ_COUNT).filter(|n| *n != m) {
            for (i, ts) in TS_NAMES.iter().enumerate() {
                for (prefix, _) in advertised(n) {
                    want.push(json!({"router": format!("lr{m}"), "ip_prefix": prefix,
                                     "nexthop": ts_ip(n, i + 1), "route_table": "",
                                     "from": format!("{ts} az{n}")}));
                }
            }
        }
        diff(
            &format!("{name} NB learned routes"),
            want,
            learned_routes(nb)
                .iter()
                .map(|r| {
                    let isb_uuid = r["external_ids"]["ic-learned-route"]
                        .as_str()
                        .unwrap_or_default();
                    let from = rows(&isb, "Route")
                        .iter()
                        .find(|x| s(x, "_uuid") == isb_uuid)
                        .map(|x| {
                            format!(
                                "{} {}",
                                s(x, "transit_switch"),
                                az_name(s(x, "availability_zone"))
                            )
                        })
                        .unwrap_or_else(|| format!("missing ISB row {isb_uuid}"));
                    json!({"router": r["router"], "ip_prefix": r["ip_prefix"],
                           "nexthop": r["nexthop"], "route_table": r["route_table"],
                           "from": from})
                })
                .collect(),
        )?;

        // Gateways: the own one as interconn, the others as remote chassis.
        diff(
            &format!("{name} SB Chassis"),
            (1..=AZ_COUNT)
                .map(|n| {
                    let oc = if n == m {
                        json!({"is-interconn": "true"})
                    } else {
                        json!({"is-remote": "true"})
                    };
                    json!({"name": format!("gw{n}"), "other_config": oc,
                           "encaps": [format!("geneve 192.168.0.{n}")]})
                })
                .collect(),
            rows(sb, "Chassis")
                .iter()
                .map(|r| {
                    let encaps: Vec<String> = set_items(r.get("encaps"))
                        .iter()
                        .map(|u| {
                            let u = u.as_str().unwrap_or_default();
                            format!(
                                "{} {}",
                                lookup(sb, "Encap", u, "type"),
                                lookup(sb, "Encap", u, "ip")
                            )
                        })
                        .collect();
                    json!({"name": s(r, "name"), "other_config": r["other_config"],
                           "encaps": encaps})
                })
                .collect(),
        )?;

        // Remote ports bound to their AZ's gateway (ovn-ic's direct SB write).
        let mut want = Vec::new();
        for n in (1..=AZ_COUNT).filter(|n| *n != m) {
            for t in 1..=TS_NAMES.len() {
                want.push(json!({"logical_port": format!("lsp{n}-ts{t}"),
                                 "chassis": format!("gw{n}")}));
            }
        }
        diff(
            &format!("{name} SB remote Port_Binding"),
            want,
            rows(sb, "Port_Binding")
                .iter()
                .filter(|r| s(r, "type") == "remote")
                .map(|r| {
                    json!({"logical_port": s(r, "logical_port"),
                           "chassis": lookup(sb, "Chassis", s(r, "chassis"), "name")})
                })
                .collect(),
        )?;
    }
    Ok(())
}

/// NB static routes learned through ovn-ic, normalised, with their router's name as `router`.
fn learned_routes(nb: &Value) -> Vec<Map<String, Value>> {
    let routers = rows(nb, "Logical_Router");
    rows(nb, "Logical_Router_Static_Route")
        .into_iter()
        .filter(|r| r["external_ids"].get("ic-learned-route").is_some())
        .map(|mut r| {
            let uuid = Value::String(s(&r, "_uuid").to_string());
            let router = routers
                .iter()
                .find(|lr| set_items(lr.get("static_routes")).contains(&uuid))
                .map(|lr| s(lr, "name").to_string())
                .unwrap_or_default();
            r.insert("router".into(), json!(router));
            r
        })
        .collect()
}

// ------------------------------------------------------------------------------------------------
// Snapshots (scenarios 2 and 3)
// ------------------------------------------------------------------------------------------------

/// Interconnection rows by `"<db> <table>"`, each with its `_uuid`, references resolved to
/// names, sorted.
type Snapshot = BTreeMap<String, Vec<Value>>;

/// The rows ovn-ic owns or relies on, everywhere. Columns that legitimately differ between the
/// implementations are left out: NB `Logical_Switch.other_config:ic-vxlan_mode` (written by the
/// spec, unknown to 23.03) and the LSPs' `up` (owned by ovn-northd). `lr-id` stays in (see
/// [`natural`]).
fn snapshot(env: &Env) -> Snapshot {
    let mut out = Snapshot::new();
    let isb = env.isb().dump().expect("dumping IC-SB");
    let az_name = |uuid: &str| lookup(&isb, "Availability_Zone", uuid, "name");
    let mut put = |key: String, rows: Vec<Value>| {
        out.insert(key, sorted(rows));
    };
    put(
        "ISB Availability_Zone".into(),
        rows(&isb, "Availability_Zone")
            .iter()
            .map(|r| json!({"_uuid": r["_uuid"], "name": r["name"]}))
            .collect(),
    );
    put(
        "ISB Gateway".into(),
        rows(&isb, "Gateway")
            .iter()
            .map(|r| {
                json!({"_uuid": r["_uuid"], "name": r["name"], "hostname": r["hostname"],
                       "az": az_name(s(r, "availability_zone")), "encaps": r["encaps"]})
            })
            .collect(),
    );
    put(
        "ISB Encap".into(),
        rows(&isb, "Encap").into_iter().map(Value::Object).collect(),
    );
    put(
        "ISB Datapath_Binding".into(),
        rows(&isb, "Datapath_Binding")
            .into_iter()
            .map(Value::Object)
            .collect(),
    );
    put("ISB Port_Binding".into(), isb_port_bindings(&isb));
    put("ISB Route".into(), isb_routes(&isb));
    for az in 0..AZ_COUNT {
        let name = &env.azs[az].name;
        let nb = env.nb(az).dump().expect("dumping NB");
        let sb = env.sb(az).dump().expect("dumping SB");
        put(
            format!("{name} NB Logical_Switch"),
            rows(&nb, "Logical_Switch")
                .iter()
                .map(|r| {
                    let mut oc = r["other_config"].as_object().cloned().unwrap_or_default();
                    oc.remove("ic-vxlan_mode");
                    json!({"_uuid": r["_uuid"], "name": r["name"], "other_config": oc})
                })
                .collect(),
        );
        put(
            format!("{name} NB Logical_Switch_Port"),
            rows(&nb, "Logical_Switch_Port")
                .iter()
                .map(|r| {
                    json!({"_uuid": r["_uuid"], "name": r["name"], "type": r["type"],
                           "addresses": r["addresses"], "options": r["options"]})
                })
                .collect(),
        );
        put(format!("{name} NB learned routes"), nb_learned(&nb, &isb));
        put(
            format!("{name} SB Chassis"),
            rows(&sb, "Chassis")
                .iter()
                .map(|r| {
                    json!({"_uuid": r["_uuid"], "name": r["name"], "hostname": r["hostname"],
                           "other_config": r["other_config"], "encaps": r["encaps"]})
                })
                .collect(),
        );
        put(
            format!("{name} SB Encap"),
            rows(&sb, "Encap").into_iter().map(Value::Object).collect(),
        );
        put(
            format!("{name} SB Port_Binding chassis"),
            rows(&sb, "Port_Binding")
                .iter()
                .filter(|r| s(r, "logical_port").starts_with("lsp"))
                .map(|r| {
                    json!({"logical_port": r["logical_port"], "type": r["type"],
                           "chassis": lookup(&sb, "Chassis", s(r, "chassis"), "name")})
                })
                .collect(),
        );
    }
    out
}

fn isb_port_bindings(isb: &Value) -> Vec<Value> {
    rows(isb, "Port_Binding")
        .into_iter()
        .map(|mut r| {
            let az = lookup(isb, "Availability_Zone", s(&r, "availability_zone"), "name");
            r.insert("availability_zone".into(), json!(az));
            Value::Object(r)
        })
        .collect()
}

fn isb_routes(isb: &Value) -> Vec<Value> {
    rows(isb, "Route")
        .into_iter()
        .map(|mut r| {
            let az = lookup(isb, "Availability_Zone", s(&r, "availability_zone"), "name");
            r.insert("availability_zone".into(), json!(az));
            Value::Object(r)
        })
        .collect()
}

/// NB learned routes with `from`: the natural key of the ISB row they were learned from.
fn nb_learned(nb: &Value, isb: &Value) -> Vec<Value> {
    learned_routes(nb)
        .into_iter()
        .map(|mut r| {
            let u = r["external_ids"]["ic-learned-route"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let from = rows(isb, "Route")
                .iter()
                .find(|x| s(x, "_uuid") == u)
                .map(|x| {
                    format!(
                        "{} {} {} {}",
                        s(x, "transit_switch"),
                        lookup(isb, "Availability_Zone", s(x, "availability_zone"), "name"),
                        s(x, "ip_prefix"),
                        s(x, "nexthop")
                    )
                })
                .unwrap_or_default();
            r.insert("from".into(), json!(from));
            Value::Object(r)
        })
        .collect()
}

/// A snapshot reduced to natural keys: without `_uuid`/`_version`, references to rows that
/// ovn-ic creates replaced by what they name (kept as `from`/names in [`snapshot`]), and
/// without `external_ids:lr-id` of ISB routes (written by the spec on rows it owns, not by
/// 23.03; checked on its own by [`check_converged`]).
fn natural(snap: &Snapshot) -> Snapshot {
    let uuid_cols = ["_uuid", "_version", "encaps", "static_routes"];
    snap.iter()
        .map(|(k, rows)| {
            let rows = rows
                .iter()
                .map(|r| {
                    let mut r = r.as_object().cloned().unwrap_or_default();
                    for c in uuid_cols {
                        r.remove(c);
                    }
                    if let Some(Value::Object(ids)) = r.get_mut("external_ids") {
                        ids.remove("ic-learned-route");
                        if k == "ISB Route" {
                            ids.remove("lr-id");
                        }
                    }
                    Value::Object(r)
                })
                .collect();
            (k.clone(), sorted(rows))
        })
        .collect()
}

/// Human-readable differences between two snapshots (empty when equal).
fn snapshot_diff(before: &Snapshot, after: &Snapshot) -> String {
    let mut out = String::new();
    for k in before.keys().chain(after.keys()).collect::<BTreeSet<_>>() {
        let (b, a) = (before.get(k), after.get(k));
        if b == a {
            continue;
        }
        let (b, a) = (
            b.cloned().unwrap_or_default(),
            a.cloned().unwrap_or_default(),
        );
        let gone: Vec<&Value> = b.iter().filter(|r| !a.contains(r)).collect();
        let new: Vec<&Value> = a.iter().filter(|r| !b.contains(r)).collect();
        out.push_str(&format!("\n{k}:"));
        for r in gone {
            out.push_str(&format!("\n  - {r}"));
        }
        for r in new {
            out.push_str(&format!("\n  + {r}"));
        }
    }
    out
}

/// Waits until the snapshot stops changing (two equal snapshots 1 s apart) and returns it.
fn settled_snapshot(env: &Env, what: &str) -> Snapshot {
    let mut last = snapshot(env);
    let deadline = Instant::now() + WAIT;
    loop {
        std::thread::sleep(Duration::from_secs(1));
        let now = snapshot(env);
        if now == last {
            return now;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: the state never settled; last change:{}",
            snapshot_diff(&last, &now)
        );
        last = now;
    }
}

// ------------------------------------------------------------------------------------------------
// Watching for deletes (scenario 3)
// ------------------------------------------------------------------------------------------------

/// `ovsdb-client --format=csv monitor` of one table, recording every change to a file, so a
/// delete + re-insert between two polls is seen too.
struct DeleteWatch {
    what: String,
    out: PathBuf,
    proc: Proc,
    _dir: TestDir,
}

impl DeleteWatch {
    /// Starts monitoring `table` of `server` and waits until the initial rows have been printed.
    fn start(what: &str, server: &Server, table: &str) -> DeleteWatch {
        let dir = TestDir::new("monitor").expect("monitor directory");
        let out = dir.join("monitor.csv");
        let mut cmd = Command::new("ovsdb-client");
        cmd.args([
            "--format=csv",
            "monitor",
            &server.remote(),
            server.db_name(),
            table,
        ]);
        let mut proc = Proc::spawn(&format!("monitor {what}"), cmd, &out, None)
            .expect("starting ovsdb-client monitor");
        let ok = wait_until(WAIT, || {
            std::fs::read_to_string(&out).is_ok_and(|t| t.contains(",initial,"))
        });
        proc.ensure_running().expect("ovsdb-client monitor");
        assert!(ok, "{what}: the monitor printed no initial rows");
        DeleteWatch {
            what: what.to_string(),
            out,
            proc,
            _dir: dir,
        }
    }

    /// Every `delete` (and, for information, `insert`) line seen so far.
    fn changes(&mut self) -> (Vec<String>, Vec<String>) {
        let _ = self.proc.ensure_running();
        let text = std::fs::read_to_string(&self.out).unwrap_or_default();
        let pick = |action: &str| -> Vec<String> {
            text.lines()
                .filter(|l| l.contains(&format!(",{action},")))
                .map(|l| format!("{}: {l}", self.what))
                .collect()
        };
        (pick("delete"), pick("insert"))
    }
}

// ------------------------------------------------------------------------------------------------
// Counting transactions (scenario 4)
// ------------------------------------------------------------------------------------------------

/// The `transact` requests an ovsdb-server logged (with `-vjsonrpc:file:dbg`) after byte
/// `offset` of its log.
fn transacts_since(server: &Server, offset: u64) -> Vec<String> {
    let text = std::fs::read(server.log_path()).unwrap_or_default();
    let tail = text.get(offset as usize..).unwrap_or_default();
    String::from_utf8_lossy(tail)
        .lines()
        .filter(|l| l.contains("received request, method=\"transact\""))
        .map(|l| l.chars().take(400).collect())
        .collect()
}

fn log_len(server: &Server) -> u64 {
    std::fs::metadata(server.log_path())
        .map(|m| m.len())
        .unwrap_or(0)
}

// ------------------------------------------------------------------------------------------------
// The scenarios
// ------------------------------------------------------------------------------------------------

/// Scenario 1: C in AZ1, ours in AZ2 and AZ3 on one IC-SB converge in both directions (checked
/// by [`Env::start`]), and the state then stays put.
#[test]
fn mixed_c_and_ours_converge() {
    if !runnable() {
        return;
    }
    let env = Env::start(&[Impl::C, Impl::Ours, Impl::Ours], &[]);
    let before = settled_snapshot(&env, "after convergence");
    check_converged(&env).unwrap_or_else(|m| panic!("after settling: {m}"));
    // Both kinds of daemons are alive and active.
    for (az, d) in env.ics.iter().enumerate() {
        let (imp, d) = d.as_ref().expect("running");
        let status = d.appctl(&["status"]).unwrap_or_else(|e| format!("{e:#}"));
        assert_eq!(
            status.trim(),
            "Status: active",
            "az{} ({imp:?}) status",
            az + 1
        );
    }
    assert_eq!(snapshot(&env), before, "the state changed after settling");
}

/// Scenario 2: swap the implementations of AZ1 (C → ours) and AZ2 (ours → C); the state
/// converges to the same rows, and no row is re-created.
#[test]
fn swapping_daemons_keeps_the_state() {
    if !runnable() {
        return;
    }
    let mut env = Env::start(&[Impl::C, Impl::Ours, Impl::Ours], &[]);
    let before = settled_snapshot(&env, "before the swap");

    env.replace_ic(0, Impl::Ours);
    env.replace_ic(1, Impl::C);
    // Ours in AZ1 proves it ran a full sync by adding `lr-id` to AZ1's routes (23.03 never
    // writes it); check_converged requires that.
    env.wait_converged("after the swap");
    let after = settled_snapshot(&env, "after the swap");

    let (nb, na) = (natural(&before), natural(&after));
    assert!(
        nb == na,
        "the swap changed the natural state:{}{}",
        snapshot_diff(&nb, &na),
        env.log_tails()
    );
    // Ideally nothing was re-created: the same rows, UUIDs included (only `lr-id` may be new).
    let strip_lr_id = |snap: &Snapshot| -> Snapshot {
        let mut snap = snap.clone();
        if let Some(routes) = snap.get_mut("ISB Route") {
            for r in routes.iter_mut() {
                if let Some(Value::Object(ids)) = r.get_mut("external_ids") {
                    ids.remove("lr-id");
                }
            }
            routes.sort_by_cached_key(Value::to_string);
        }
        snap
    };
    let (bu, au) = (strip_lr_id(&before), strip_lr_id(&after));
    assert!(
        bu == au,
        "the swap re-created rows:{}{}",
        snapshot_diff(&bu, &au),
        env.log_tails()
    );
}

/// Scenario 3: AZ1 and AZ2 run C, AZ3 ours; AZ1 is upgraded to ours. No ISB Port_Binding or
/// Route and no NB learned route disappears at any time, and in the end they are identical,
/// UUIDs included (ours adds `external_ids:lr-id` to AZ1's routes, as the spec requires).
#[test]
fn upgrading_an_az_from_c_to_ours_withdraws_nothing() {
    if !runnable() {
        return;
    }
    let mut env = Env::start(&[Impl::C, Impl::C, Impl::Ours], &[]);
    // The traffic-relevant rows only (four dumps, so a poll fits in about 100 ms).
    let traffic = |env: &Env| -> Snapshot {
        let isb = env.isb().dump().expect("dumping IC-SB");
        let mut snap = Snapshot::new();
        snap.insert("ISB Port_Binding".into(), sorted(isb_port_bindings(&isb)));
        snap.insert("ISB Route".into(), sorted(isb_routes(&isb)));
        for az in 0..AZ_COUNT {
            let nb = env.nb(az).dump().expect("dumping NB");
            snap.insert(
                format!("{} NB learned routes", env.azs[az].name),
                sorted(nb_learned(&nb, &isb)),
            );
        }
        snap
    };
    settled_snapshot(&env, "before the upgrade");
    let before = traffic(&env);
    let uuids = |snap: &Snapshot| -> BTreeSet<String> {
        snap.iter()
            .flat_map(|(k, rows)| {
                rows.iter()
                    .map(move |r| format!("{k} {}", r["_uuid"].as_str().unwrap_or_default()))
            })
            .collect()
    };
    let before_uuids = uuids(&before);

    let mut watches = vec![
        DeleteWatch::start("ISB Route", env.isb(), "Route"),
        DeleteWatch::start("ISB Port_Binding", env.isb(), "Port_Binding"),
    ];
    for az in 0..AZ_COUNT {
        watches.push(DeleteWatch::start(
            &format!("az{} NB Logical_Router_Static_Route", az + 1),
            env.nb(az),
            "Logical_Router_Static_Route",
        ));
    }

    env.stop_ic(0);
    let d = env.spawn_ic(0, Impl::Ours);
    env.ics[0] = Some((Impl::Ours, d));
    let lr1 = uuid_of(
        &env.nb(0).dump().expect("dump"),
        "Logical_Router",
        "name",
        "lr1",
    );

    // Poll every 100 ms until ours has taken over (AZ1's routes carry its `lr-id`), then for
    // 3 s more.
    let start = Instant::now();
    let mut taken_over: Option<Instant> = None;
    loop {
        let tick = Instant::now();
        let now = traffic(&env);
        let missing: Vec<String> = before_uuids.difference(&uuids(&now)).cloned().collect();
        assert!(
            missing.is_empty(),
            "{:?} after the swap these rows disappeared: {missing:?}{}{}",
            start.elapsed(),
            snapshot_diff(&before, &now),
            env.log_tails()
        );
        let az1_routes: Vec<&Value> = now["ISB Route"]
            .iter()
            .filter(|r| r["availability_zone"] == "az1")
            .collect();
        if taken_over.is_none()
            && !az1_routes.is_empty()
            && az1_routes
                .iter()
                .all(|r| r["external_ids"]["lr-id"] == json!(lr1))
        {
            taken_over = Some(Instant::now());
        }
        match taken_over {
            Some(t) if t.elapsed() >= Duration::from_secs(3) => break,
            None if start.elapsed() > WAIT => panic!(
                "ours in az1 never added lr-id to az1's routes:{}{}",
                snapshot_diff(&before, &now),
                env.log_tails()
            ),
            _ => {}
        }
        std::thread::sleep(Duration::from_millis(100).saturating_sub(tick.elapsed()));
    }

    let mut deletes = Vec::new();
    let mut inserts = Vec::new();
    for w in &mut watches {
        let (d, i) = w.changes();
        deletes.extend(d);
        inserts.extend(i);
    }
    assert!(
        deletes.is_empty() && inserts.is_empty(),
        "rows were withdrawn or added during the upgrade:\n{}\n{}{}",
        deletes.join("\n"),
        inserts.join("\n"),
        env.log_tails()
    );

    // Identical, UUIDs included; the only difference allowed is `lr-id` on AZ1's routes.
    let after = traffic(&env);
    let mut expected = before.clone();
    if let Some(routes) = expected.get_mut("ISB Route") {
        for r in routes.iter_mut() {
            if r["availability_zone"] == "az1" {
                r["external_ids"]["lr-id"] = json!(lr1);
            }
        }
        routes.sort_by_cached_key(Value::to_string);
    }
    assert!(
        after == expected,
        "the upgrade changed rows:{}{}",
        snapshot_diff(&expected, &after),
        env.log_tails()
    );
    env.wait_converged("after the upgrade");
}

/// Scenario 4: once converged, 10 s without input produce no transaction on any server: no
/// fight between C and ours (or between either and ovn-northd) over any row.
#[test]
fn mixed_daemons_stay_quiet() {
    if !runnable() {
        return;
    }
    let env = Env::start(&[Impl::C, Impl::Ours, Impl::Ours], &["-vjsonrpc:file:dbg"]);
    // Settle without client calls: wait (reading log files only) until no server has logged a
    // transaction for 3 s.
    let servers = env.servers();
    let deadline = Instant::now() + WAIT;
    loop {
        let offsets: Vec<u64> = servers.iter().map(|s| log_len(s)).collect();
        std::thread::sleep(Duration::from_secs(3));
        let busy: Vec<String> = servers
            .iter()
            .zip(&offsets)
            .flat_map(|(s, o)| transacts_since(s, *o))
            .collect();
        if busy.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the servers never became quiet; last transactions:\n{}{}",
            busy.join("\n"),
            env.log_tails()
        );
    }

    // The logs do record transactions (the setup wrote to every IC-SB and NB).
    for server in [env.isb(), env.nb(0), env.nb(1), env.nb(2)] {
        assert!(
            !transacts_since(server, 0).is_empty(),
            "{}: no transaction logged at all; is -vjsonrpc:file:dbg in effect?",
            server.log_path().display()
        );
    }

    let offsets: Vec<u64> = servers.iter().map(|s| log_len(s)).collect();
    std::thread::sleep(Duration::from_secs(10));
    let mut found = Vec::new();
    for (server, offset) in servers.iter().zip(&offsets) {
        for t in transacts_since(server, *offset) {
            found.push(format!("{}: {t}", server.log_path().display()));
        }
    }
    assert!(
        found.is_empty(),
        "{} transactions in a quiet 10 s window:\n{}{}",
        found.len(),
        found.join("\n"),
        env.log_tails()
    );
    // Still converged afterwards (client calls are fine again).
    check_converged(&env).unwrap_or_else(|m| panic!("after the quiet window: {m}"));
}
