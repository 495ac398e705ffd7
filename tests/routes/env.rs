//! Shared environment for the route / address-set integration tests (`tests/routes.rs`) and the
//! idle test (`tests/idle.rs`): IC-NB, IC-SB and per AZ an NB, an SB, `ovn-northd` (optional)
//! and one `ovn-ic`, all real processes; helpers to configure routers on transit switches with
//! Debian's `ovn-nbctl`, and to read the route state back as compact, exact one-line strings.
//!
//! Route rows are rendered so that an assertion names every column ovn-ic writes:
//!
//! * ISB `Route`: `"<ts> <az> <prefix> -> <nexthop> <origin> rtb=<table> nb=<src> lr=<lr>"`
//!   followed by ` tag=<tag>` when `external_ids:ic-route-tag` is set and ` oc` when
//!   `options:override-connected=true`. `<src>` is the NB row `external_ids:nb-id` names, looked
//!   up in every AZ's NB (`route:<ip_prefix>`, `lrp:<name>`, `lb:<name>`, `lr:<name>`, `?` if
//!   absent, `!<value>` if it names no row); `<lr>` likewise for `lr-id` (`-` when absent).
//! * NB learned `Logical_Router_Static_Route` (rows of a router's `static_routes` that carry
//!   `external_ids:ic-learned-route`): `"<prefix> -> <nexthop> rtb=<table> origin=<origin> from=<az>/<ts>"`
//!   plus ` oc` for `options:override-connected=true`, ` policy=<p>` when a policy is set and
//!   ` opt:<k>=<v>` for any other option; `from` resolves `ic-learned-route` to the ISB row it
//!   names (`from=gone` when no ISB row has that UUID).

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::common::{rows, run, schema_path, wait_until, AzDbs, Daemon, IcDbs, Schema, Server};
use anyhow::{anyhow, Context, Result};
use serde_json::{json, Value};

/// How long to wait for a state the daemons must reach (2 shared cores: generous).
pub const WAIT: Duration = Duration::from_secs(30);

/// A value in OVSDB JSON notation as plain JSON: `["uuid", U]` → `"U"`, `["set", [..]]` →
/// sorted array (one element → the element), `["map", [..]]` → object.
pub fn norm(v: &Value) -> Value {
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
                let mut m = serde_json::Map::new();
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

/// A string column (or `""`).
pub fn s(row: &Value, col: &str) -> String {
    match row.get(col).map(norm) {
        Some(Value::String(x)) => x,
        _ => String::new(),
    }
}

/// One key of a map column (`None` when absent).
pub fn key(row: &Value, col: &str, k: &str) -> Option<String> {
    row.get(col)
        .map(norm)
        .and_then(|m| m.get(k).and_then(Value::as_str).map(str::to_string))
}

/// A set-of-strings (or UUIDs) column.
pub fn set(row: &Value, col: &str) -> Vec<String> {
    match row.get(col).map(norm) {
        Some(Value::Array(xs)) => xs
            .iter()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect(),
        Some(Value::String(x)) => vec![x],
        _ => Vec::new(),
    }
}

pub fn uuid(row: &Value) -> String {
    s(row, "_uuid")
}

/// The first row of `table` whose `col` is the string `val`.
pub fn find<'a>(db: &'a Value, table: &str, col: &str, val: &str) -> Option<&'a Value> {
    rows(db, table).iter().find(|r| s(r, col) == val)
}

/// `lines` sorted (the canonical form of an expectation).
pub fn sorted<S: AsRef<str>>(lines: &[S]) -> Vec<String> {
    let mut v: Vec<String> = lines.iter().map(|l| l.as_ref().to_string()).collect();
    v.sort();
    v
}

/// Runs a Debian `*ctl` tool against one database and returns its stdout.
pub fn ctl(tool: &str, remote: &str, args: &[&str]) -> String {
    let mut all = vec![format!("--db={remote}"), "--timeout=20".to_string()];
    all.extend(args.iter().map(|s| s.to_string()));
    let out = run(tool, &all, Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{tool} {args:?}: {e:#}"));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Whether the schema in use (short name) has `table.column`.
pub fn has_column(schema: &str, table: &str, column: &str) -> bool {
    Schema::ovn(schema).is_ok_and(|s| s.has_column(table, column))
}

/// Whether ISB `Route.origin` accepts `value` in the schema in use.
pub fn isb_origin_allowed(value: &str) -> bool {
    Schema::ovn("ovn-ic-sb").is_ok_and(|s| {
        let e = &s.json["tables"]["Route"]["columns"]["origin"]["type"]["key"]["enum"];
        norm(e)
            .as_array()
            .is_some_and(|xs| xs.iter().any(|x| x == value))
            || e == value
    })
}

fn start_db(schema: &str, name: &str, args: &[&str]) -> Result<Server> {
    let mut b = Server::builder(schema_path(schema)).name(name);
    for a in args {
        b = b.arg(*a);
    }
    b.start()
        .with_context(|| format!("starting the {name} database"))
}

fn init_global(server: &Server, schema: &str, table: &str, row: Value) -> Result<()> {
    if Schema::ovn(schema)?.has_table(table) {
        server.transact(json!([{"op": "insert", "table": table, "row": row}]))?;
    }
    Ok(())
}

/// The environment. Daemons are declared first so they die before the servers.
pub struct Env {
    pub ics: Vec<Daemon>,
    pub northds: Vec<Daemon>,
    pub azs: Vec<AzDbs>,
    pub ic: IcDbs,
    pub bin: PathBuf,
}

impl Env {
    /// AZs `names` (each `NB_Global.name` set), `ovn-northd` per AZ if `northd`, one `bin` per
    /// AZ. Every `ovsdb-server` gets `server_args` in addition to the harness's own.
    pub fn start(bin: PathBuf, names: &[&str], northd: bool, server_args: &[&str]) -> Env {
        Env::try_start(bin, names, northd, server_args).expect("starting the environment")
    }

    fn try_start(bin: PathBuf, names: &[&str], northd: bool, args: &[&str]) -> Result<Env> {
        let ic = IcDbs {
            ic_nb: start_db("ovn-ic-nb", "ic-nb", args)?,
            ic_sb: start_db("ovn-ic-sb", "ic-sb", args)?,
        };
        init_global(&ic.ic_nb, "ovn-ic-nb", "IC_NB_Global", json!({}))?;
        init_global(&ic.ic_sb, "ovn-ic-sb", "IC_SB_Global", json!({}))?;
        let mut azs = Vec::new();
        for n in names {
            let az = AzDbs {
                name: n.to_string(),
                nb: start_db("ovn-nb", &format!("{n}-nb"), args)?,
                sb: start_db("ovn-sb", &format!("{n}-sb"), args)?,
            };
            init_global(&az.nb, "ovn-nb", "NB_Global", json!({ "name": n }))?;
            init_global(&az.sb, "ovn-sb", "SB_Global", json!({}))?;
            azs.push(az);
        }
        let northds = if northd {
            azs.iter()
                .map(Daemon::northd_for_az)
                .collect::<Result<Vec<_>>>()?
        } else {
            Vec::new()
        };
        let ics = azs
            .iter()
            .map(|az| Daemon::ovn_ic(&bin, az, &ic, &[]))
            .collect::<Result<Vec<_>>>()?;
        let env = Env {
            ics,
            northds,
            azs,
            ic,
            bin,
        };
        env.wait_registered();
        Ok(env)
    }

    /// Waits until every AZ is in ISB.
    fn wait_registered(&self) {
        let want: Vec<String> =
            sorted(&self.azs.iter().map(|a| a.name.clone()).collect::<Vec<_>>());
        let mut last = Vec::new();
        let ok = wait_until(WAIT, || {
            last = self
                .isb()
                .dump()
                .map(|db| {
                    let names: Vec<String> = rows(&db, "Availability_Zone")
                        .iter()
                        .map(|r| s(r, "name"))
                        .collect();
                    sorted(&names)
                })
                .unwrap_or_default();
            last == want
        });
        assert!(ok, "AZs did not register: want {want:?}, got {last:?}");
    }

    pub fn inb(&self) -> &Server {
        &self.ic.ic_nb
    }

    pub fn isb(&self) -> &Server {
        &self.ic.ic_sb
    }

    pub fn nb(&self, az: usize) -> &Server {
        &self.azs[az].nb
    }

    pub fn sb(&self, az: usize) -> &Server {
        &self.azs[az].sb
    }

    pub fn ic_nbctl(&self, args: &[&str]) -> String {
        ctl("ovn-ic-nbctl", &self.inb().remote(), args)
    }

    pub fn nbctl(&self, az: usize, args: &[&str]) -> String {
        ctl("ovn-nbctl", &self.nb(az).remote(), args)
    }

    pub fn sbctl(&self, az: usize, args: &[&str]) -> String {
        ctl("ovn-sbctl", &self.sb(az).remote(), args)
    }

    /// `ovn-nbctl set NB_Global . options:K=V ...` in AZ `az`.
    pub fn set_options(&self, az: usize, kv: &[(&str, &str)]) {
        let mut args = vec!["set".to_string(), "NB_Global".into(), ".".into()];
        args.extend(kv.iter().map(|(k, v)| format!("options:{k}=\"{v}\"")));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.nbctl(az, &args);
    }

    /// `ovn-nbctl remove NB_Global . options K`.
    pub fn remove_option(&self, az: usize, k: &str) {
        self.nbctl(az, &["remove", "NB_Global", ".", "options", k]);
    }

    /// `ic-route-adv=true ic-route-learn=true` in every AZ.
    pub fn enable_routes(&self) {
        for az in 0..self.azs.len() {
            self.set_options(az, &[("ic-route-adv", "true"), ("ic-route-learn", "true")]);
        }
    }

    /// `ovn-ic-nbctl ts-add NAME` and wait until every AZ's NB has the switch.
    pub fn add_ts(&self, name: &str) {
        self.ic_nbctl(&["ts-add", name]);
        for az in 0..self.azs.len() {
            let ok = wait_until(WAIT, || {
                self.nb(az)
                    .dump()
                    .is_ok_and(|db| find(&db, "Logical_Switch", "name", name).is_some())
            });
            assert!(ok, "{name} never appeared in {}'s NB", self.azs[az].name);
        }
    }

    /// Creates router `lr` (if missing) in AZ `az` and attaches it to transit switch `ts` with
    /// LRP `lrp` (`mac`, `networks`) and a router-type LSP `lsp-<lrp>` pointing to it.
    pub fn attach(&self, az: usize, lr: &str, ts: &str, lrp: &str, mac: &str, nets: &[&str]) {
        let lsp = format!("lsp-{lrp}");
        let rp = format!("router-port={lrp}");
        let mut args = vec!["--may-exist", "lr-add", lr, "--", "lrp-add", lr, lrp, mac];
        args.extend_from_slice(nets);
        args.extend_from_slice(&[
            "--",
            "lsp-add",
            ts,
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
            &rp,
        ]);
        self.nbctl(az, &args);
    }

    /// Adds an ordinary (non-TS) LRP to `lr` (created if missing).
    pub fn add_lrp(&self, az: usize, lr: &str, lrp: &str, mac: &str, nets: &[&str]) {
        let mut args = vec!["--may-exist", "lr-add", lr, "--", "lrp-add", lr, lrp, mac];
        args.extend_from_slice(nets);
        self.nbctl(az, &args);
    }

    /// `ovn-nbctl OPTS lr-route-add LR PREFIX NEXTHOP` (command options such as
    /// `--route-table=rtb1` or `--policy=src-ip` precede the command in ovn-nbctl).
    pub fn add_route(&self, az: usize, opts: &[&str], lr: &str, prefix: &str, nexthop: &str) {
        let mut args: Vec<&str> = opts.to_vec();
        args.extend_from_slice(&["lr-route-add", lr, prefix, nexthop]);
        self.nbctl(az, &args);
    }

    /// The `_uuid` of NB row `table` named `name` in AZ `az`.
    pub fn nb_uuid(&self, az: usize, table: &str, name: &str) -> String {
        let db = self.nb(az).dump().expect("NB dump");
        find(&db, table, "name", name)
            .map(uuid)
            .unwrap_or_else(|| panic!("no {table} {name} in {}'s NB", self.azs[az].name))
    }

    /// The state to compare: rendered ISB routes and, per `(az, lr)`, rendered learned routes.
    pub fn route_state(&self, lrs: &[(usize, &str)]) -> Result<RouteState> {
        let isb = self.isb().dump()?;
        let nbs: Vec<Value> = (0..self.azs.len())
            .map(|az| self.nb(az).dump())
            .collect::<Result<_>>()?;
        let mut names = BTreeMap::new();
        for nb in &nbs {
            for r in rows(nb, "Logical_Router_Static_Route") {
                let mut label = format!("route:{}", s(r, "ip_prefix"));
                if !s(r, "route_table").is_empty() {
                    label.push_str(&format!("@{}", s(r, "route_table")));
                }
                names.insert(uuid(r), label);
            }
            for (table, tag) in [
                ("Logical_Router_Port", "lrp"),
                ("Load_Balancer", "lb"),
                ("Logical_Router", "lr"),
            ] {
                for r in rows(nb, table) {
                    names.insert(uuid(r), format!("{tag}:{}", s(r, "name")));
                }
            }
        }
        let az_name = |u: &str| -> String {
            rows(&isb, "Availability_Zone")
                .iter()
                .find(|a| uuid(a) == u)
                .map(|a| s(a, "name"))
                .unwrap_or_else(|| format!("!{u}"))
        };
        let mut isb_lines = Vec::new();
        let mut by_uuid = BTreeMap::new();
        for r in rows(&isb, "Route") {
            let az = az_name(&s(r, "availability_zone"));
            let ts = s(r, "transit_switch");
            by_uuid.insert(uuid(r), format!("{az}/{ts}"));
            let label = |k: &str, absent: &str| match key(r, "external_ids", k) {
                None => absent.to_string(),
                Some(v) => names.get(&v).cloned().unwrap_or(format!("!{v}")),
            };
            let lr = label("lr-id", "-");
            let lr = lr.strip_prefix("lr:").unwrap_or(&lr).to_string();
            let mut line = format!(
                "{ts} {az} {} -> {} {} rtb={} nb={} lr={lr}",
                s(r, "ip_prefix"),
                s(r, "nexthop"),
                s(r, "origin"),
                s(r, "route_table"),
                label("nb-id", "?"),
            );
            if let Some(t) = key(r, "external_ids", "ic-route-tag") {
                line.push_str(&format!(" tag={t}"));
            }
            if key(r, "options", "override-connected").as_deref() == Some("true") {
                line.push_str(" oc");
            }
            isb_lines.push(line);
        }
        isb_lines.sort();
        let mut learned = BTreeMap::new();
        for (az, lr) in lrs {
            let nb = &nbs[*az];
            let router = find(nb, "Logical_Router", "name", lr)
                .ok_or_else(|| anyhow!("no router {lr} in {}", self.azs[*az].name))?;
            let refs = set(router, "static_routes");
            let mut lines = Vec::new();
            for r in rows(nb, "Logical_Router_Static_Route") {
                if !refs.contains(&uuid(r)) {
                    continue;
                }
                let Some(src) = key(r, "external_ids", "ic-learned-route") else {
                    continue;
                };
                let from = by_uuid.get(&src).cloned().unwrap_or("gone".to_string());
                let mut opts = match r.get("options").map(norm) {
                    Some(Value::Object(m)) => m,
                    _ => serde_json::Map::new(),
                };
                let origin = opts
                    .remove("origin")
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default();
                let mut line = format!(
                    "{} -> {} rtb={} origin={origin} from={from}",
                    s(r, "ip_prefix"),
                    s(r, "nexthop"),
                    s(r, "route_table")
                );
                if opts.remove("override-connected") == Some(json!("true")) {
                    line.push_str(" oc");
                }
                if !s(r, "policy").is_empty() {
                    line.push_str(&format!(" policy={}", s(r, "policy")));
                }
                for (k, v) in opts {
                    line.push_str(&format!(" opt:{k}={}", v.as_str().unwrap_or_default()));
                }
                lines.push(line);
            }
            lines.sort();
            learned.insert(format!("{}/{lr}", self.azs[*az].name), lines);
        }
        Ok(RouteState {
            isb: isb_lines,
            learned,
        })
    }

    /// Waits until the ISB routes are exactly `isb` and each `(az, lr, lines)` router's learned
    /// routes are exactly `lines`, twice in a row 300 ms apart (so a route that should *not*
    /// appear has had a chance to); panics with a diff otherwise.
    pub fn expect_routes(
        &self,
        what: &str,
        isb: &[String],
        learned: &[(usize, &str, Vec<String>)],
    ) {
        let want = RouteState {
            isb: sorted(isb),
            learned: learned
                .iter()
                .map(|(az, lr, l)| (format!("{}/{lr}", self.azs[*az].name), sorted(l)))
                .collect(),
        };
        let lrs: Vec<(usize, &str)> = learned.iter().map(|(az, lr, _)| (*az, *lr)).collect();
        let mut last: Result<RouteState> = Err(anyhow!("never checked"));
        let mut matched_at: Option<Instant> = None;
        let ok = wait_until(WAIT, || {
            last = self.route_state(&lrs);
            match &last {
                Ok(got) if *got == want => match matched_at {
                    Some(t) => t.elapsed() >= Duration::from_millis(300),
                    None => {
                        matched_at = Some(Instant::now());
                        false
                    }
                },
                _ => {
                    matched_at = None;
                    false
                }
            }
        });
        if !ok {
            panic!(
                "{what}: routes did not become as expected\n{}",
                match &last {
                    Ok(got) => want.diff(got),
                    Err(e) => format!("reading the state failed: {e:#}"),
                }
            );
        }
    }

    /// Our daemon's `coverage/read-counter NAME` for AZ `az`.
    pub fn counter(&self, az: usize, name: &str) -> u64 {
        self.ics[az]
            .appctl(&["coverage/read-counter", name])
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or_else(|| panic!("coverage/read-counter {name} failed"))
    }

    /// Whether any ovn-ic log contains `needle`.
    pub fn ic_log_contains(&self, az: usize, needle: &str) -> bool {
        self.ics[az].log_text().contains(needle)
    }
}

/// See [`Env::route_state`].
#[derive(Debug, PartialEq, Eq)]
pub struct RouteState {
    pub isb: Vec<String>,
    pub learned: BTreeMap<String, Vec<String>>,
}

impl RouteState {
    /// Readable description of what differs from `got`.
    fn diff(&self, got: &RouteState) -> String {
        let mut out = String::new();
        let mut section = |title: &str, want: &[String], got: &[String]| {
            let missing: Vec<&String> = want.iter().filter(|l| !got.contains(l)).collect();
            let extra: Vec<&String> = got.iter().filter(|l| !want.contains(l)).collect();
            if missing.is_empty() && extra.is_empty() {
                return;
            }
            out.push_str(&format!("== {title}\n"));
            for l in missing {
                out.push_str(&format!("  missing: {l}\n"));
            }
            for l in extra {
                out.push_str(&format!("  extra:   {l}\n"));
            }
            out.push_str("  all seen:\n");
            for l in got {
                out.push_str(&format!("    {l}\n"));
            }
        };
        section("ISB Route", &self.isb, &got.isb);
        for (k, want) in &self.learned {
            let empty = Vec::new();
            let got = got.learned.get(k).unwrap_or(&empty);
            section(&format!("NB learned routes of {k}"), want, got);
        }
        out
    }
}

/// Builds expected ISB lines: `isb_line(ts, az, prefix, nexthop, origin, rtb, nb, lr)`.
#[allow(clippy::too_many_arguments)]
pub fn isb_line(
    ts: &str,
    az: &str,
    prefix: &str,
    nexthop: &str,
    origin: &str,
    rtb: &str,
    nb: &str,
    lr: &str,
) -> String {
    format!("{ts} {az} {prefix} -> {nexthop} {origin} rtb={rtb} nb={nb} lr={lr}")
}

/// Builds an expected learned line.
pub fn learned_line(prefix: &str, nexthop: &str, rtb: &str, origin: &str, from: &str) -> String {
    format!("{prefix} -> {nexthop} rtb={rtb} origin={origin} from={from}")
}

impl Env {
    /// Waits until AZ `az`'s SB has a Port_Binding for `logical_port` (northd created it).
    pub fn wait_sb_port(&self, logical_port: &str, az: usize) {
        let ok = wait_until(WAIT, || {
            self.sb(az)
                .dump()
                .is_ok_and(|db| find(&db, "Port_Binding", "logical_port", logical_port).is_some())
        });
        assert!(
            ok,
            "no SB Port_Binding {logical_port} in {}",
            self.azs[az].name
        );
    }
}
