//! Incremental processing end to end (issue "Truly incremental"): real servers, `ovn-northd`
//! and our daemon in two AZs. After convergence, each typical single change — one static
//! route added and removed, one transit switch port, one gateway chassis, one transit switch,
//! one address set — reaches the other AZ while no engine node of either daemon recomputes
//! (`inc-engine/show-stats`), and our own writes coming back through the monitors cause no
//! recompute either (the counters are read after everything settled).

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{our_ovn_ic, run, wait_until, AzDbs, Daemon, IcDbs, Server};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(40);

fn ctl(tool: &str, remote: &str, args: &[&str]) -> String {
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

fn rows(server: &Server, table: &str) -> Vec<Value> {
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

fn has_row(server: &Server, table: &str, col: &str, val: &str) -> bool {
    rows(server, table).iter().any(|r| r[col] == val)
}

fn wait_row(what: &str, server: &Server, table: &str, col: &str, val: &str) {
    assert!(
        wait_until(WAIT, || has_row(server, table, col, val)),
        "{what}: no {table} with {col}={val}"
    );
}

/// The prefixes an AZ's NB learned through ovn-ic.
fn learned(server: &Server) -> Vec<String> {
    let mut v: Vec<String> = rows(server, "Logical_Router_Static_Route")
        .iter()
        .filter(|r| r.to_string().contains("ic-learned-route"))
        .map(|r| r["ip_prefix"].as_str().unwrap_or("").to_string())
        .collect();
    v.sort();
    v
}

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

/// Recompute counter of every compute node (`inc-engine/show-stats`; input nodes count every
/// engine run and are left out).
fn recomputes(d: &Daemon) -> BTreeMap<String, u64> {
    let s = d.appctl(&["inc-engine/show-stats"]).expect("show-stats");
    let mut m = BTreeMap::new();
    let mut node = None;
    for line in s.lines() {
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

struct Env {
    ic: IcDbs,
    azs: Vec<AzDbs>,
    _northds: Vec<Daemon>,
    ics: Vec<Daemon>,
}

impl Env {
    fn nbctl(&self, az: usize, args: &[&str]) -> String {
        ctl("ovn-nbctl", &self.azs[az].nb.remote(), args)
    }

    fn stats(&self) -> Vec<BTreeMap<String, u64>> {
        self.ics.iter().map(recomputes).collect()
    }

    /// Wait until the recompute counters of both daemons stop moving; returns them.
    fn settled(&self) -> Vec<BTreeMap<String, u64>> {
        let mut last = self.stats();
        let ok = wait_until(WAIT, || {
            std::thread::sleep(Duration::from_millis(1500));
            let now = self.stats();
            let same = now == last;
            last = now;
            same
        });
        assert!(ok, "recompute counters keep moving: {last:?}");
        last
    }

    /// Two AZs with route advertisement/learning and address-set sync on, a gateway chassis
    /// each, a transit switch `ts1` and one router per AZ on it, 20 routes in AZ1 learned by
    /// AZ2.
    fn start() -> Env {
        let ic = IcDbs::start().expect("IC databases");
        let azs: Vec<AzDbs> = ["az1", "az2"]
            .iter()
            .map(|n| AzDbs::start(n).expect("AZ databases"))
            .collect();
        let northds = azs
            .iter()
            .map(|az| Daemon::northd_for_az(az).expect("ovn-northd"))
            .collect();
        let ics = azs
            .iter()
            .map(|az| Daemon::ovn_ic(our_ovn_ic(), az, &ic, &[]).expect("ovn-ic"))
            .collect();
        let env = Env {
            ic,
            azs,
            _northds: northds,
            ics,
        };
        for (az, n) in [(0usize, 1), (1, 2)] {
            env.nbctl(
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
                &env.azs[az].sb,
                &format!("gw{n}"),
                &format!("192.168.0.{n}"),
            );
        }
        ctl("ovn-ic-nbctl", &env.ic.ic_nb.remote(), &["ts-add", "ts1"]);
        for az in &env.azs {
            wait_row("ts1 in NB", &az.nb, "Logical_Switch", "name", "ts1");
        }
        for (az, n) in [(0usize, 1), (1, 2)] {
            let (lr, lrp, lsp, gw) = (
                format!("lr{n}"),
                format!("lrp{n}"),
                format!("lsp{n}"),
                format!("gw{n}"),
            );
            let mac = format!("aa:aa:aa:aa:aa:0{n}");
            let net = format!("169.254.100.{n}/24");
            let rp = format!("router-port={lrp}");
            env.nbctl(
                az,
                &[
                    "lr-add",
                    &lr,
                    "--",
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
                    &rp,
                ],
            );
            let cr = format!("cr-{lrp}");
            wait_row(
                "northd's cr port",
                &env.azs[az].sb,
                "Port_Binding",
                "logical_port",
                &cr,
            );
            ctl(
                "ovn-sbctl",
                &env.azs[az].sb.remote(),
                &["lsp-bind", &cr, &gw],
            );
            wait_row(
                "ISB binding",
                &env.ic.ic_sb,
                "Port_Binding",
                "logical_port",
                &lsp,
            );
        }
        let mut args: Vec<String> = vec![];
        for i in 0..20 {
            if i > 0 {
                args.push("--".into());
            }
            args.extend(
                [
                    "lr-route-add",
                    "lr1",
                    &format!("10.1.{i}.0/24"),
                    "169.254.100.254",
                ]
                .map(String::from),
            );
        }
        env.nbctl(0, &args.iter().map(String::as_str).collect::<Vec<_>>());
        let ok = wait_until(WAIT, || learned(&env.azs[1].nb).len() == 20);
        assert!(ok, "AZ2 learned {:?}", learned(&env.azs[1].nb));
        env
    }

    /// Apply `change`, wait for `done`, let everything settle, and assert that no compute
    /// node of either daemon recomputed.
    fn assert_no_recompute(
        &self,
        what: &str,
        change: impl FnOnce(&Env),
        done: impl Fn(&Env) -> bool,
    ) {
        let before = self.settled();
        change(self);
        assert!(wait_until(WAIT, || done(self)), "{what}: never converged");
        let after = self.settled();
        for (i, (b, a)) in before.iter().zip(&after).enumerate() {
            let grew: Vec<String> = a
                .iter()
                .filter(|(n, v)| b.get(*n) != Some(v))
                .map(|(n, v)| format!("{n}: {} -> {v}", b.get(n).copied().unwrap_or(0)))
                .collect();
            assert!(
                grew.is_empty(),
                "{what}: az{} recomputed {grew:?}\nlog:\n{}",
                i + 1,
                self.ics[i].log_text()
            );
        }
    }
}

#[test]
fn typical_single_changes_cause_no_recompute() {
    let env = Env::start();

    env.assert_no_recompute(
        "one static route added",
        |e| {
            e.nbctl(
                0,
                &["lr-route-add", "lr1", "10.2.0.0/16", "169.254.100.254"],
            );
        },
        |e| learned(&e.azs[1].nb).contains(&"10.2.0.0/16".to_string()),
    );
    assert!(rows(&env.ic.ic_sb, "Route")
        .iter()
        .any(|r| r["ip_prefix"] == "10.2.0.0/16"));

    env.assert_no_recompute(
        "one static route removed",
        |e| {
            e.nbctl(0, &["lr-route-del", "lr1", "10.2.0.0/16"]);
        },
        |e| !learned(&e.azs[1].nb).contains(&"10.2.0.0/16".to_string()),
    );

    env.assert_no_recompute(
        "one transit switch port added",
        |e| {
            e.nbctl(
                0,
                &[
                    "lsp-add",
                    "ts1",
                    "vif1",
                    "--",
                    "lsp-set-addresses",
                    "vif1",
                    "aa:aa:aa:aa:bb:01 169.254.100.50",
                ],
            );
        },
        |e| {
            rows(&e.azs[1].nb, "Logical_Switch_Port")
                .iter()
                .any(|r| r["name"] == "vif1" && r["type"] == "remote")
        },
    );

    env.assert_no_recompute(
        "one gateway chassis added",
        |e| add_gateway(&e.azs[0].sb, "gw1b", "192.168.0.11"),
        |e| has_row(&e.azs[1].sb, "Chassis", "name", "gw1b"),
    );

    env.assert_no_recompute(
        "one transit switch added",
        |e| {
            ctl("ovn-ic-nbctl", &e.ic.ic_nb.remote(), &["ts-add", "ts2"]);
        },
        |e| {
            e.azs
                .iter()
                .all(|az| has_row(&az.nb, "Logical_Switch", "name", "ts2"))
        },
    );

    if common::schema_lacks("ovn-ic-sb", "Address_Set", None)
        .or_else(|| common::schema_lacks("ovn-sb", "Address_Set", Some("options")))
        .is_none()
    {
        env.assert_no_recompute(
            "one address set advertised",
            |e| {
                e.azs[0]
                    .sb
                    .transact(json!([{"op": "insert", "table": "Address_Set", "row": {
                        "name": "as1", "addresses": ["set", ["10.9.0.1", "10.9.0.2"]],
                        "options": ["map", [["ic-adv", "true"]]]}}]))
                    .expect("SB Address_Set");
            },
            |e| has_row(&e.azs[1].nb, "Address_Set", "name", "as1"),
        );
    }
}
