//! The benchmark topology: IC-NB, IC-SB (logging its JSON-RPC traffic), and per AZ an NB, an SB
//! and Debian's `ovn-northd`, all real processes on Debian's 23.03 schemas; `T` transit
//! switches; in every AZ one router `lr-azN` with one LRP per transit switch, each with a
//! gateway chassis (`gw-azN`, `is-interconn=true`) to which northd's `cr-` port is bound, so
//! the ISB port bindings get their address and gateway and routes are advertised and learned.
//!
//! [`World::build`] sets all of that up with the `ovn-ic` under test running (it creates the
//! transit switches in the NBs and the ISB port bindings) and route exchange still off, then
//! stops those daemons: the measured run starts from a complete topology, with no route yet in
//! the ISB and none learned. Every process is owned by the harness (`Daemon`, `Server`) and
//! killed when the `World` is dropped, also on failure.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::common::{rows, run, wait_until, AzDbs, Daemon, DbOptions, IcDbs, Listen, Server};

/// Debian's OVN 23.03 schemas: both daemons run against them so the comparison is fair.
pub const SCHEMA_DIR: &str = "/usr/share/ovn";

/// The next hop of every static route the benchmark writes (on transit switch 1's subnet).
pub const NEXTHOP: &str = "169.254.1.254";

/// How long a setup step may take (2 shared cores: generous).
const SETUP_WAIT: Duration = Duration::from_secs(180);

/// The topology's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size {
    pub azs: usize,
    pub ts: usize,
    pub routes: usize,
}

impl Size {
    /// Checks the limits of the naming scheme (see [`route_prefix`], [`World::build`]).
    pub fn check(&self, changes: usize) -> Result<()> {
        if !(2..=15).contains(&self.azs) {
            bail!("BENCH_AZS must be 2..=15, not {}", self.azs);
        }
        if !(1..=200).contains(&self.ts) {
            bail!("BENCH_TS must be 1..=200, not {}", self.ts);
        }
        if self.routes + changes.div_ceil(2) > 4096 {
            bail!(
                "BENCH_ROUTES + BENCH_CHANGES/2 must be at most 4096 (routes {}, changes {changes})",
                self.routes
            );
        }
        Ok(())
    }

    /// Learned routes each AZ holds when converged: every route of every other AZ, through
    /// each transit switch (the learned key includes the ISB row, one per switch).
    pub fn learned_per_az(&self) -> usize {
        (self.azs - 1) * self.routes * self.ts
    }
}

/// AZ `az`'s (0-based) name.
pub fn az_name(az: usize) -> String {
    format!("az{}", az + 1)
}

/// AZ `az`'s router.
pub fn router(az: usize) -> String {
    format!("lr-az{}", az + 1)
}

/// The `i`-th static route prefix of AZ `az` (0-based; az < 15, i < 4096): a /24 inside
/// `10.(16·(az+1) + i/256).(i%256).0`, unique across AZs and already in canonical form (what
/// ovn-ic writes to the ISB and NB is the same string).
pub fn route_prefix(az: usize, i: usize) -> String {
    let v: u32 = (10 << 24) | (((az as u32) + 1) << 20) | ((i as u32) << 8);
    format!("{}.{}.{}.0/24", v >> 24, (v >> 16) & 0xff, (v >> 8) & 0xff)
}

/// Runs a Debian `*ctl` tool against one database.
pub fn ctl(tool: &str, remote: &str, args: &[String]) -> Result<String> {
    let mut all = vec![format!("--db={remote}"), "--timeout=60".to_string()];
    all.extend(args.iter().cloned());
    let out = run(tool, &all, Duration::from_secs(90))?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn s(row: &Value, col: &str) -> String {
    row.get(col)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// A column that holds a (possibly empty) set: non-empty?
fn non_empty(row: &Value, col: &str) -> bool {
    match row.get(col) {
        Some(Value::String(x)) => !x.is_empty(),
        Some(Value::Array(a)) => {
            !(a.len() == 2 && a[0] == "set" && a[1].as_array().is_some_and(Vec::is_empty))
        }
        _ => false,
    }
}

/// The running topology. Fields drop in order: daemons first, then the databases.
pub struct World {
    /// The measured `ovn-ic`s, one per AZ (empty until [`World::start_ics`]).
    pub ics: Vec<Daemon>,
    /// The northds live as long as the world.
    pub northds: Vec<Daemon>,
    pub azs: Vec<AzDbs>,
    pub ic: IcDbs,
    pub size: Size,
    pub bin: PathBuf,
}

impl World {
    /// Starts everything and builds the topology with `bin` as `ovn-ic` (see the module doc).
    /// The IC-SB `ovsdb-server` runs with `-vjsonrpc:file:dbg`.
    pub fn build(bin: &Path, size: Size) -> Result<World> {
        let opts = DbOptions::schema_dir(SCHEMA_DIR);
        let ic = IcDbs {
            ic_nb: Server::builder(opts.schema_path("ovn-ic-nb"))
                .name("ic-nb")
                .listen(Listen::Unix)
                .start()
                .context("starting IC-NB")?,
            ic_sb: Server::builder(opts.schema_path("ovn-ic-sb"))
                .name("ic-sb")
                .listen(Listen::Unix)
                .arg("-vjsonrpc:file:dbg")
                .start()
                .context("starting IC-SB")?,
        };
        ic.ic_nb
            .transact(json!([{"op": "insert", "table": "IC_NB_Global", "row": {}}]))?;
        ic.ic_sb
            .transact(json!([{"op": "insert", "table": "IC_SB_Global", "row": {}}]))?;
        let azs = (0..size.azs)
            .map(|az| AzDbs::start_with(&az_name(az), &opts))
            .collect::<Result<Vec<_>>>()?;
        let northds = azs
            .iter()
            .map(Daemon::northd_for_az)
            .collect::<Result<Vec<_>>>()?;
        let mut world = World {
            ics: Vec::new(),
            northds,
            azs,
            ic,
            size,
            bin: bin.to_path_buf(),
        };
        world.ics = world.spawn_ics()?;
        world.setup_topology()?;
        world.stop_ics();
        Ok(world)
    }

    fn spawn_ics(&self) -> Result<Vec<Daemon>> {
        self.spawn_ics_with(&self.bin)
    }

    fn spawn_ics_with(&self, bin: &Path) -> Result<Vec<Daemon>> {
        self.azs
            .iter()
            .map(|az| Daemon::ovn_ic(bin, az, &self.ic, &[]))
            .collect()
    }

    fn nbctl(&self, az: usize, args: &[String]) -> Result<String> {
        ctl("ovn-nbctl", &self.azs[az].nb.remote(), args)
    }

    fn sbctl(&self, az: usize, args: &[String]) -> Result<String> {
        ctl("ovn-sbctl", &self.azs[az].sb.remote(), args)
    }

    fn setup_topology(&self) -> Result<()> {
        let Size { azs, ts, .. } = self.size;
        let ts_names: Vec<String> = (1..=ts).map(|k| format!("ts{k}")).collect();
        let mut args = Vec::new();
        for t in &ts_names {
            if !args.is_empty() {
                args.push("--".to_string());
            }
            args.extend(["ts-add".to_string(), t.clone()]);
        }
        ctl("ovn-ic-nbctl", &self.ic.ic_nb.remote(), &args)?;
        for az in 0..azs {
            let ok = wait_until(SETUP_WAIT, || {
                self.azs[az].nb.dump().is_ok_and(|db| {
                    let have: Vec<String> = rows(&db, "Logical_Switch")
                        .iter()
                        .map(|r| s(r, "name"))
                        .collect();
                    ts_names.iter().all(|t| have.contains(t))
                })
            });
            if !ok {
                bail!(
                    "the transit switches never all appeared in {}'s NB",
                    az_name(az)
                );
            }
        }

        for az in 0..azs {
            let n = az + 1;
            let gw = format!("gw-az{n}");
            self.azs[az].sb.transact(json!([
                {"op": "insert", "table": "Encap", "uuid-name": "e0", "row": {
                    "type": "geneve", "ip": format!("192.168.0.{n}"), "chassis_name": gw,
                    "options": ["map", [["csum", "true"]]]}},
                {"op": "insert", "table": "Chassis", "row": {
                    "name": gw, "hostname": gw, "encaps": ["named-uuid", "e0"],
                    "other_config": ["map", [["is-interconn", "true"]]]}}
            ]))?;
            let lr = router(az);
            let mut a: Vec<String> = vec!["lr-add".into(), lr.clone()];
            for k in 1..=ts {
                let lrp = format!("lrp-az{n}-ts{k}");
                let lsp = format!("lsp-az{n}-ts{k}");
                a.extend(
                    [
                        "--",
                        "lrp-add",
                        &lr,
                        &lrp,
                        &format!("0a:00:00:00:{n:02x}:{k:02x}"),
                        &format!("169.254.{k}.{n}/24"),
                        "--",
                        "lrp-set-gateway-chassis",
                        &lrp,
                        &gw,
                        "--",
                        "lsp-add",
                        &format!("ts{k}"),
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
                        &format!("router-port={lrp}"),
                    ]
                    .map(String::from),
                );
            }
            self.nbctl(az, &a)?;
        }

        // northd creates the cr- ports; bind them to the AZ's gateway chassis.
        for az in 0..azs {
            let n = az + 1;
            let want: Vec<String> = (1..=ts).map(|k| format!("cr-lrp-az{n}-ts{k}")).collect();
            let ok = wait_until(SETUP_WAIT, || {
                self.azs[az].sb.dump().is_ok_and(|db| {
                    let have: Vec<String> = rows(&db, "Port_Binding")
                        .iter()
                        .map(|r| s(r, "logical_port"))
                        .collect();
                    want.iter().all(|p| have.contains(p))
                })
            });
            if !ok {
                bail!("northd never created the cr- ports in {}'s SB", az_name(az));
            }
            let mut a = Vec::new();
            for p in &want {
                if !a.is_empty() {
                    a.push("--".to_string());
                }
                a.extend(["lsp-bind".to_string(), p.clone(), format!("gw-az{n}")]);
            }
            self.sbctl(az, &a)?;
        }

        // ovn-ic publishes every TS port in the ISB with its address and gateway.
        let want = azs * ts;
        let mut seen = 0;
        let ok = wait_until(SETUP_WAIT, || {
            seen = self.ic.ic_sb.dump().map_or(0, |db| {
                rows(&db, "Port_Binding")
                    .iter()
                    .filter(|r| non_empty(r, "address") && non_empty(r, "gateway"))
                    .count()
            });
            seen == want
        });
        if !ok {
            bail!("ISB has {seen} complete port bindings, want {want}");
        }
        Ok(())
    }

    /// `ic-route-adv=true ic-route-learn=true` in every AZ.
    pub fn enable_routes(&self) -> Result<()> {
        for az in 0..self.azs.len() {
            self.nbctl(
                az,
                &[
                    "set",
                    "NB_Global",
                    ".",
                    "options:ic-route-adv=true",
                    "options:ic-route-learn=true",
                ]
                .map(String::from),
            )?;
        }
        Ok(())
    }

    /// Starts the measured `ovn-ic` in every AZ, as an operator would (the four database
    /// options, `--log-file`, `--unixctl`).
    pub fn start_ics(&mut self) -> Result<()> {
        self.ics = self.spawn_ics()?;
        Ok(())
    }

    /// Starts `bin` as `ovn-ic` in every AZ instead of the measured one (`BENCH_WARM=ours`:
    /// our daemons converge the topology for the C daemons).
    pub fn start_ics_with(&mut self, bin: &Path) -> Result<()> {
        self.ics = self.spawn_ics_with(bin)?;
        Ok(())
    }

    /// Stops the running `ovn-ic`s (SIGTERM, then SIGKILL after 10 s).
    pub fn stop_ics(&mut self) {
        terminate_all(&mut self.ics);
    }

    /// Pids of the measured `ovn-ic`s; fails if one of them has exited.
    pub fn ic_pids(&mut self) -> Result<Vec<u32>> {
        for d in &mut self.ics {
            if !d.is_running() {
                bail!(
                    "{} exited; log tail:\n{}",
                    d.log_path().display(),
                    tail(&d.log_text(), 20)
                );
            }
        }
        Ok(self.ics.iter().map(Daemon::pid).collect())
    }

    /// Stops the `ovn-northd`s (`BENCH_NORTHD=stop`): once the topology is bound, `ovn-ic`
    /// needs nothing more of them, and at 10 × 10 × 1000 their logical flows for 90 000
    /// learned routes per AZ (~0.8 GB per northd and as much per SB `ovsdb-server`) do not
    /// fit beside each other on the benchmark machine.
    pub fn stop_northds(&mut self) {
        terminate_all(&mut self.northds);
    }

    /// Pids of every `ovsdb-server` (the AZs' NB and SB, IC-NB, IC-SB).
    pub fn server_pids(&self) -> Vec<u32> {
        self.azs
            .iter()
            .flat_map(|a| [&a.nb, &a.sb])
            .chain([&self.ic.ic_nb, &self.ic.ic_sb])
            .filter_map(|s| s.pid())
            .collect()
    }

    pub fn northd_pids(&self) -> Vec<u32> {
        self.northds.iter().map(Daemon::pid).collect()
    }

    pub fn nb_remotes(&self) -> Vec<String> {
        self.azs.iter().map(|a| a.nb.remote()).collect()
    }

    pub fn isb_log(&self) -> &Path {
        self.ic.ic_sb.log_path()
    }
}

/// SIGTERM to each daemon, SIGKILL after 10 s; the list is left empty.
fn terminate_all(daemons: &mut Vec<Daemon>) {
    for d in daemons.iter_mut() {
        d.terminate(Duration::from_secs(10));
    }
    daemons.clear();
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
