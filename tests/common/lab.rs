//! A multi-AZ interconnection lab for end-to-end tests: IC-NB/IC-SB, per AZ NB+SB servers,
//! `ovn-northd` and our `ovn-ic`, route advertisement/learning and address-set sync on, a
//! gateway chassis per AZ, and helpers to build the usual topology (a transit switch with one
//! router per AZ) and to read what the daemons did.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{json, Value};

use super::{our_ovn_ic, run, wait_until, AzDbs, Daemon, IcDbs, Server};

pub const LAB_WAIT: Duration = Duration::from_secs(60);

/// Runs an OVN ctl tool against `remote`; panics with its stderr on failure.
pub fn ctl(tool: &str, remote: &str, args: &[&str]) -> String {
    let mut all = vec![format!("--db={remote}"), "--timeout=20".to_string()];
    all.extend(args.iter().map(|s| s.to_string()));
    let out = run(tool, &all, Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{tool} {args:?}: {e:#}"));
    assert!(
        out.status.success(),
        "{tool} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The rows of `table` in a server's dump (empty when the server is down).
pub fn table_rows(server: &Server, table: &str) -> Vec<Value> {
    server
        .dump()
        .ok()
        .and_then(|d| d.get(table).cloned())
        .and_then(|t| match t {
            Value::Array(a) => Some(a),
            Value::Object(o) => Some(o.into_values().collect()),
            _ => None,
        })
        .unwrap_or_default()
}

pub fn has_row(server: &Server, table: &str, col: &str, val: &str) -> bool {
    table_rows(server, table).iter().any(|r| r[col] == val)
}

pub fn wait_row(what: &str, server: &Server, table: &str, col: &str, val: &str) {
    assert!(
        wait_until(LAB_WAIT, || has_row(server, table, col, val)),
        "{what}: no {table} with {col}={val}"
    );
}

/// The prefixes an AZ's NB learned through ovn-ic, sorted.
pub fn learned(server: &Server) -> Vec<String> {
    let mut v: Vec<String> = table_rows(server, "Logical_Router_Static_Route")
        .iter()
        .filter(|r| r.to_string().contains("ic-learned-route"))
        .map(|r| r["ip_prefix"].as_str().unwrap_or("").to_string())
        .collect();
    v.sort();
    v
}

/// Inserts an interconnection gateway chassis (with one geneve encap) into an SB.
pub fn add_gateway(sb: &Server, name: &str, ip: &str) {
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

/// Recompute counter of every compute node (`inc-engine/show-stats`; input nodes count every
/// engine run and are left out).
pub fn recomputes(d: &Daemon) -> BTreeMap<String, u64> {
    try_recomputes(d).expect("show-stats")
}

/// [`recomputes`], or `None` when the daemon does not answer in time.
pub fn try_recomputes(d: &Daemon) -> Option<BTreeMap<String, u64>> {
    let s = d.appctl(&["inc-engine/show-stats"]).ok()?;
    Some(parse_recomputes(&s))
}

/// The compute nodes' recompute counters in an `inc-engine/show-stats` reply.
pub fn parse_recomputes(show_stats: &str) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    let mut node = None;
    for line in show_stats.lines() {
        if let Some(n) = line.strip_prefix("Node: ") {
            let input = ["NB_", "SB_", "ICNB_", "ICSB_"]
                .iter()
                .any(|p| n.starts_with(p));
            node = (!input).then(|| n.to_string());
        } else if let (Some(n), Some(v)) = (&node, line.strip_prefix("- recompute:")) {
            m.insert(n.clone(), v.trim().parse().unwrap_or(u64::MAX));
        }
    }
    m
}

pub struct Lab {
    pub ic: IcDbs,
    pub azs: Vec<AzDbs>,
    pub northds: Vec<Daemon>,
    pub ics: Vec<Daemon>,
}

impl Lab {
    /// `n` AZs named az1..azN with route and address-set advertise/learn on and a gateway
    /// chassis `gwI` each; our ovn-ic in every AZ.
    pub fn start(n: usize) -> Lab {
        let ic = IcDbs::start().expect("IC databases");
        let azs: Vec<AzDbs> = (1..=n)
            .map(|i| AzDbs::start(&format!("az{i}")).expect("AZ databases"))
            .collect();
        let northds = azs
            .iter()
            .map(|az| Daemon::northd_for_az(az).expect("ovn-northd"))
            .collect();
        let ics = azs
            .iter()
            .map(|az| Daemon::ovn_ic(our_ovn_ic(), az, &ic, &[]).expect("ovn-ic"))
            .collect();
        let lab = Lab {
            ic,
            azs,
            northds,
            ics,
        };
        for az in 0..n {
            lab.nbctl(
                az,
                &[
                    "set",
                    "NB_Global",
                    ".",
                    "options:ic-route-adv=true",
                    "options:ic-route-learn=true",
                    "options:ic-as-adv=true",
                    "options:ic-as-learn=true",
                ],
            );
            add_gateway(
                &lab.azs[az].sb,
                &format!("gw{}", az + 1),
                &format!("192.168.0.{}", az + 1),
            );
        }
        lab
    }

    pub fn nbctl(&self, az: usize, args: &[&str]) -> String {
        ctl("ovn-nbctl", &self.azs[az].nb.remote(), args)
    }

    pub fn ic_nbctl(&self, args: &[&str]) -> String {
        ctl("ovn-ic-nbctl", &self.ic.ic_nb.remote(), args)
    }

    /// Creates transit switch `ts` and waits for its image in every AZ.
    pub fn add_ts(&self, ts: &str) {
        self.ic_nbctl(&["ts-add", ts]);
        for az in &self.azs {
            wait_row("transit switch image", &az.nb, "Logical_Switch", "name", ts);
        }
    }

    /// Attaches router `lrI` of AZ `az` (0-based; created on first use) to transit switch `ts`
    /// through port `lrpI-ts` on 169.254.K.I/24 with the AZ's gateway chassis, binds northd's
    /// chassis-redirect port to it and waits for the ISB port binding.
    pub fn attach_router(&self, az: usize, ts: &str, k: u8) {
        let n = az + 1;
        let lr = format!("lr{n}");
        let lrp = format!("lrp{n}-{ts}");
        let lsp = format!("lsp{n}-{ts}");
        let gw = format!("gw{n}");
        let mac = format!("aa:aa:aa:aa:{k:02x}:{n:02x}");
        let net = format!("169.254.{k}.{n}/24");
        let rp = format!("router-port={lrp}");
        let mut args: Vec<&str> = vec![];
        if !has_row(&self.azs[az].nb, "Logical_Router", "name", &lr) {
            args.extend(["lr-add", &lr, "--"]);
        }
        args.extend([
            "lrp-add",
            &lr,
            &lrp,
            &mac,
            &net,
            "--",
            "lrp-set-gateway-chassis",
            &lrp,
            &gw,
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
        let cr = format!("cr-{lrp}");
        wait_row(
            "northd's cr port",
            &self.azs[az].sb,
            "Port_Binding",
            "logical_port",
            &cr,
        );
        ctl(
            "ovn-sbctl",
            &self.azs[az].sb.remote(),
            &["lsp-bind", &cr, &gw],
        );
        wait_row(
            "ISB binding",
            &self.ic.ic_sb,
            "Port_Binding",
            "logical_port",
            &lsp,
        );
    }

    /// The nbctl arguments that add port `name` to transit switch `ts` in AZ `az`: a router
    /// port `name` on router `lrI` (which must exist) with address 169.254.K.HOST/24, and its
    /// router-type LSP on the switch (published to the ISB by ovn-ic, unlike a VIF).
    pub fn router_port_args(az: usize, ts: &str, name: &str, k: u8, host: u8) -> Vec<String> {
        let n = az + 1;
        [
            "lrp-add",
            &format!("lr{n}"),
            &format!("{name}-lrp"),
            &format!("aa:aa:aa:{k:02x}:{n:02x}:{host:02x}"),
            &format!("169.254.{k}.{host}/24"),
            "--",
            "lsp-add",
            ts,
            name,
            "--",
            "lsp-set-type",
            name,
            "router",
            "--",
            "lsp-set-addresses",
            name,
            "router",
            "--",
            "lsp-set-options",
            name,
            &format!("router-port={name}-lrp"),
        ]
        .map(String::from)
        .to_vec()
    }

    /// The nbctl arguments that remove what [`Lab::router_port_args`] added.
    pub fn del_router_port_args(name: &str) -> Vec<String> {
        [
            "--if-exists",
            "lsp-del",
            name,
            "--",
            "--if-exists",
            "lrp-del",
            &format!("{name}-lrp"),
        ]
        .map(String::from)
        .to_vec()
    }

    /// Recompute counters of every daemon.
    pub fn stats(&self) -> Vec<BTreeMap<String, u64>> {
        self.ics.iter().map(recomputes).collect()
    }

    /// Waits until the recompute counters of every daemon stop moving; returns them.
    pub fn settled(&self) -> Vec<BTreeMap<String, u64>> {
        let mut last = self.stats();
        let ok = wait_until(LAB_WAIT, || {
            std::thread::sleep(Duration::from_millis(1500));
            let now = self.stats();
            let same = now == last;
            last = now;
            same
        });
        assert!(ok, "recompute counters keep moving: {last:?}");
        last
    }
}
