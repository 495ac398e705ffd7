//! The fault-injection environment: IC-NB, IC-SB and per AZ an NB and an SB (each standalone on
//! a unix socket or a 3-member raft cluster), `ovn-northd` per AZ, and any number of our
//! `ovn-ic` per AZ; helpers to build the standard topology with Debian's `*ctl` tools.
//!
//! Topology built by [`Env::base_topology`] for AZ number `n` (1-based):
//! * SB: gateway chassis `gw-az<n>` (`geneve 192.0.2.<n>`, `is-interconn=true`);
//! * router `lr<n>` on transit switch `ts1` through LRP `lr<n>-ts1` (`aa:aa:aa:aa:aa:0<n>`,
//!   `169.254.100.<n>/24`) and router-type LSP `lsp-lr<n>-ts1`, an internal LRP `lr<n>-int`
//!   (`00:00:00:00:0<n>:01`, `192.168.<n>.1/24`) and static route `10.<n>.1.0/24` via
//!   `192.168.<n>.10`;
//! * `ic-route-adv=true ic-route-learn=true`.

#![allow(dead_code)]

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::{json, Value};

use crate::common::{
    our_ovn_ic, rows, run, schema_path, wait_until, Client, Cluster, Daemon, Listen, Schema, Server,
};

/// How long to wait for a state the daemons must reach (2 shared cores: generous).
pub const WAIT: Duration = Duration::from_secs(60);

/// One database: a standalone server or a raft cluster.
pub enum Db {
    One(Box<Server>),
    Raft(Cluster),
}

impl Db {
    fn start(schema: &str, name: &str, raft: bool) -> Result<Db> {
        if raft {
            return Ok(Db::Raft(
                Cluster::new(schema_path(schema), 3).with_context(|| format!("cluster {name}"))?,
            ));
        }
        Ok(Db::One(Box::new(
            Server::builder(schema_path(schema))
                .name(name)
                .listen(Listen::Unix)
                .start()
                .with_context(|| format!("starting {name}"))?,
        )))
    }

    /// Client remote(s): `unix:…` or `tcp:…,tcp:…,tcp:…`.
    pub fn remote(&self) -> String {
        match self {
            Db::One(s) => s.remote(),
            Db::Raft(c) => c.remote(),
        }
    }

    /// Remotes of the members that are running and not stopped (for our own clients, which
    /// would otherwise hang on a SIGSTOPped member until their timeout).
    pub fn live_remote(&self) -> String {
        match self {
            Db::One(s) => s.remote(),
            Db::Raft(c) => c
                .members()
                .iter()
                .filter(|m| m.pid().is_some() && !m.is_stopped())
                .map(Server::remote)
                .collect::<Vec<_>>()
                .join(","),
        }
    }

    /// Every remote on its own (for the watcher).
    pub fn remotes(&self) -> Vec<String> {
        match self {
            Db::One(s) => vec![s.remote()],
            Db::Raft(c) => c.members().iter().map(Server::remote).collect(),
        }
    }

    pub fn db_name(&self) -> String {
        match self {
            Db::One(s) => s.db_name().to_string(),
            Db::Raft(c) => c.db_name().to_string(),
        }
    }

    /// `ovsdb-client dump` (from the leader of a cluster).
    pub fn dump(&self) -> Result<Value> {
        Client::new().dump(&self.live_remote(), &self.db_name())
    }

    pub fn transact(&self, ops: Value) -> Result<Value> {
        let mut params = vec![Value::String(self.db_name())];
        params.extend(ops.as_array().cloned().unwrap_or_default());
        Client::new().transact_ok(&self.live_remote(), &Value::Array(params))
    }

    pub fn server_mut(&mut self) -> &mut Server {
        match self {
            Db::One(s) => s,
            Db::Raft(_) => panic!("not a standalone database"),
        }
    }

    pub fn cluster_mut(&mut self) -> &mut Cluster {
        match self {
            Db::Raft(c) => c,
            Db::One(_) => panic!("not a cluster"),
        }
    }
}

/// How to build an [`Env`].
#[derive(Debug, Clone, Default)]
pub struct Opts {
    pub azs: usize,
    /// IC-SB as a 3-member raft cluster.
    pub isb_raft: bool,
    /// The first AZ's SB as a 3-member raft cluster.
    pub sb0_raft: bool,
    /// `ovn-ic` instances per AZ (0 = start none).
    pub ics_per_az: usize,
    /// `ic_probe_interval` (ms) for IC_NB_Global and every NB_Global.
    pub probe_ms: Option<u64>,
}

pub struct Az {
    pub name: String,
    pub nb: Db,
    pub sb: Db,
}

/// The environment. Daemons are declared first so they die before the servers.
pub struct Env {
    /// Per AZ, its `ovn-ic` instances (`None` = killed and not restarted).
    pub ics: Vec<Vec<Option<Daemon>>>,
    pub northds: Vec<Daemon>,
    pub azs: Vec<Az>,
    pub inb: Db,
    pub isb: Db,
    pub bin: PathBuf,
    pub opts: Opts,
}

fn has_table(schema: &str, table: &str) -> bool {
    Schema::ovn(schema).is_ok_and(|s| s.has_table(table))
}

impl Env {
    pub fn start(opts: Opts) -> Env {
        Env::try_start(opts).expect("starting the environment")
    }

    fn try_start(opts: Opts) -> Result<Env> {
        let inb = Db::start("ovn-ic-nb", "ic-nb", false)?;
        let isb = Db::start("ovn-ic-sb", "ic-sb", opts.isb_raft)?;
        let probe = opts
            .probe_ms
            .map(|p| json!(["map", [["ic_probe_interval", p.to_string()]]]));
        if has_table("ovn-ic-nb", "IC_NB_Global") {
            let row = match &probe {
                Some(p) => json!({ "options": p }),
                None => json!({}),
            };
            inb.transact(json!([{"op": "insert", "table": "IC_NB_Global", "row": row}]))?;
        }
        if has_table("ovn-ic-sb", "IC_SB_Global") {
            isb.transact(json!([{"op": "insert", "table": "IC_SB_Global", "row": {}}]))?;
        }
        let mut azs = Vec::new();
        for i in 0..opts.azs {
            let name = format!("az{}", i + 1);
            let nb = Db::start("ovn-nb", &format!("{name}-nb"), false)?;
            let sb = Db::start("ovn-sb", &format!("{name}-sb"), i == 0 && opts.sb0_raft)?;
            let mut row = json!({ "name": name });
            if let Some(p) = &probe {
                row["options"] = p.clone();
            }
            nb.transact(json!([{"op": "insert", "table": "NB_Global", "row": row}]))?;
            sb.transact(json!([{"op": "insert", "table": "SB_Global", "row": {}}]))?;
            azs.push(Az { name, nb, sb });
        }
        let northds = azs
            .iter()
            .map(|az| Daemon::northd(&az.nb.remote(), &az.sb.remote()))
            .collect::<Result<Vec<_>>>()?;
        let mut env = Env {
            ics: (0..opts.azs).map(|_| Vec::new()).collect(),
            northds,
            azs,
            inb,
            isb,
            bin: our_ovn_ic(),
            opts: opts.clone(),
        };
        for az in 0..opts.azs {
            for _ in 0..opts.ics_per_az {
                let d = env.start_ic(az)?;
                env.ics[az].push(Some(d));
            }
        }
        Ok(env)
    }

    /// Starts one more of our `ovn-ic` for AZ `az` (not recorded in `ics`).
    pub fn start_ic(&self, az: usize) -> Result<Daemon> {
        let a = &self.azs[az];
        let args = vec![
            format!("--ovnnb-db={}", a.nb.remote()),
            format!("--ovnsb-db={}", a.sb.remote()),
            format!("--ic-nb-db={}", self.inb.remote()),
            format!("--ic-sb-db={}", self.isb.remote()),
            "-vfile:info".to_string(),
        ];
        Daemon::start(&format!("ovn-ic-{}", a.name), &self.bin, &args)
    }

    /// Our `ovn-ic` `idx` of AZ `az`.
    pub fn ic(&self, az: usize, idx: usize) -> &Daemon {
        self.ics[az][idx].as_ref().expect("a running ovn-ic")
    }

    pub fn ic_nbctl(&self, args: &[&str]) -> String {
        ctl("ovn-ic-nbctl", &self.inb.live_remote(), args)
    }

    pub fn nbctl(&self, az: usize, args: &[&str]) -> String {
        ctl("ovn-nbctl", &self.azs[az].nb.live_remote(), args)
    }

    pub fn sbctl(&self, az: usize, args: &[&str]) -> String {
        ctl("ovn-sbctl", &self.azs[az].sb.live_remote(), args)
    }

    /// An interconnection gateway chassis `name` with a geneve encap on `ip` in AZ `az`'s SB.
    pub fn gateway(&self, az: usize, name: &str, ip: &str) {
        self.sbctl(az, &["chassis-add", name, "geneve", ip]);
        self.sbctl(
            az,
            &[
                "set",
                "Chassis",
                name,
                "other_config:is-interconn=true",
                &format!("hostname={name}"),
            ],
        );
    }

    /// Router `lr` (created if missing) attached to `ts` via LRP `lrp` and LSP `lsp-<lrp>`.
    pub fn attach(&self, az: usize, lr: &str, ts: &str, lrp: &str, mac: &str, net: &str) {
        let lsp = format!("lsp-{lrp}");
        let rp = format!("router-port={lrp}");
        self.nbctl(
            az,
            &[
                "--may-exist",
                "lr-add",
                lr,
                "--",
                "lrp-add",
                lr,
                lrp,
                mac,
                net,
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
            ],
        );
    }

    /// `ovn-nbctl lr-route-add LR PREFIX NEXTHOP`.
    pub fn add_route(&self, az: usize, lr: &str, prefix: &str, nexthop: &str) {
        self.nbctl(az, &["lr-route-add", lr, prefix, nexthop]);
    }

    /// `ovn-ic-nbctl ts-add NAME`.
    pub fn add_ts(&self, name: &str) {
        self.ic_nbctl(&["ts-add", name]);
    }

    /// Waits until every AZ's NB has transit switch `name`.
    pub fn wait_ts(&self, name: &str) {
        for az in 0..self.azs.len() {
            let ok = wait_until(WAIT, || {
                self.azs[az].nb.dump().is_ok_and(|db| {
                    rows(&db, "Logical_Switch")
                        .iter()
                        .any(|r| r["name"] == json!(name))
                })
            });
            assert!(ok, "{name} never appeared in {}'s NB", self.azs[az].name);
        }
    }

    /// The standard topology (module documentation) in every AZ, on `ts1`.
    pub fn base_topology(&self) {
        self.add_ts("ts1");
        self.wait_ts("ts1");
        for az in 0..self.azs.len() {
            let n = az + 1;
            self.gateway(az, &format!("gw-az{n}"), &format!("192.0.2.{n}"));
            let lr = format!("lr{n}");
            self.attach(
                az,
                &lr,
                "ts1",
                &format!("lr{n}-ts1"),
                &format!("aa:aa:aa:aa:aa:0{n}"),
                &format!("169.254.100.{n}/24"),
            );
            self.nbctl(
                az,
                &[
                    "lrp-add",
                    &lr,
                    &format!("lr{n}-int"),
                    &format!("00:00:00:00:0{n}:01"),
                    &format!("192.168.{n}.1/24"),
                ],
            );
            self.add_route(
                az,
                &lr,
                &format!("10.{n}.1.0/24"),
                &format!("192.168.{n}.10"),
            );
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
        }
    }

    /// Whether any ovn-ic log of AZ `az` contains `needle`.
    pub fn ic_logs(&self, az: usize) -> String {
        self.ics[az]
            .iter()
            .flatten()
            .map(Daemon::log_text)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Runs a Debian `*ctl` tool against one database (a comma-separated list for clusters) and
/// returns its stdout.
pub fn ctl(tool: &str, remote: &str, args: &[&str]) -> String {
    let mut all = vec![format!("--db={remote}"), "--timeout=30".to_string()];
    all.extend(args.iter().map(|s| s.to_string()));
    let out = run(tool, &all, Duration::from_secs(40))
        .unwrap_or_else(|e| panic!("{tool} {args:?}: {e:#}"));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}
