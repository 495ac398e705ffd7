//! Incremental route processing end to end: real servers, `ovn-northd` and our daemon in two
//! AZs. After the route exchange converged, adding one static route in AZ1 must be advertised
//! and learned in AZ2 without either daemon recomputing its `route` engine node
//! (`inc-engine/show-stats route recompute`).

mod common;

use std::time::Duration;

use common::{our_ovn_ic, run, wait_until, AzDbs, Daemon, IcDbs, Server};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(40);

fn ctl(tool: &str, remote: &str, args: &[&str]) -> String {
    let mut all = vec![format!("--db={remote}"), "--timeout=20".to_string()];
    all.extend(args.iter().map(|s| s.to_string()));
    let out = run(tool, &all, Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{tool} {args:?}: {e:#}"));
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

/// The prefixes AZ's NB learned through ovn-ic.
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

fn route_recomputes(d: &Daemon) -> u64 {
    let s = d
        .appctl(&["inc-engine/show-stats", "route", "recompute"])
        .expect("inc-engine/show-stats");
    s.trim()
        .parse()
        .unwrap_or_else(|_| panic!("show-stats output: {s:?}"))
}

#[test]
fn one_static_route_added_is_handled_without_recompute() {
    let ic = IcDbs::start().expect("IC databases");
    let azs: Vec<AzDbs> = ["az1", "az2"]
        .iter()
        .map(|n| AzDbs::start(n).expect("AZ databases"))
        .collect();
    let _northds: Vec<Daemon> = azs
        .iter()
        .map(|az| Daemon::northd_for_az(az).expect("ovn-northd"))
        .collect();
    let ics: Vec<Daemon> = azs
        .iter()
        .map(|az| Daemon::ovn_ic(our_ovn_ic(), az, &ic, &[]).expect("ovn-ic"))
        .collect();
    let nbctl = |az: usize, args: &[&str]| ctl("ovn-nbctl", &azs[az].nb.remote(), args);

    for (az, n) in [(0usize, 1), (1, 2)] {
        nbctl(
            az,
            &[
                "set",
                "NB_Global",
                ".",
                "options:ic-route-adv=true",
                "options:ic-route-learn=true",
            ],
        );
        add_gateway(&azs[az].sb, &format!("gw{n}"), &format!("192.168.0.{n}"));
    }
    ctl("ovn-ic-nbctl", &ic.ic_nb.remote(), &["ts-add", "ts1"]);
    for az in &azs {
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
        nbctl(
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
            &azs[az].sb,
            "Port_Binding",
            "logical_port",
            &cr,
        );
        ctl("ovn-sbctl", &azs[az].sb.remote(), &["lsp-bind", &cr, &gw]);
        wait_row(
            "ISB binding",
            &ic.ic_sb,
            "Port_Binding",
            "logical_port",
            &lsp,
        );
    }

    // ~20 static routes in AZ1, one transaction.
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
    nbctl(0, &args.iter().map(String::as_str).collect::<Vec<_>>());
    let want: usize = 20;
    let ok = wait_until(WAIT, || learned(&azs[1].nb).len() == want);
    assert!(ok, "AZ2 learned {:?}", learned(&azs[1].nb));

    // Quiescent: the recompute counters stop moving.
    let mut before = vec![];
    let ok = wait_until(WAIT, || {
        let now: Vec<u64> = ics.iter().map(route_recomputes).collect();
        std::thread::sleep(Duration::from_millis(1500));
        let later: Vec<u64> = ics.iter().map(route_recomputes).collect();
        before = later.clone();
        now == later
    });
    assert!(ok, "route recomputes keep increasing: {before:?}");

    nbctl(
        0,
        &["lr-route-add", "lr1", "10.2.0.0/16", "169.254.100.254"],
    );
    let ok = wait_until(WAIT, || learned(&azs[1].nb).contains(&"10.2.0.0/16".into()));
    assert!(ok, "AZ2 learned {:?}", learned(&azs[1].nb));
    // Let our own writes come back to both daemons.
    std::thread::sleep(Duration::from_secs(2));
    let after: Vec<u64> = ics.iter().map(route_recomputes).collect();
    assert_eq!(
        before, after,
        "the route node recomputed for one added route (az1, az2)"
    );
    assert_eq!(learned(&azs[1].nb).len(), want + 1);
    assert!(
        rows(&ic.ic_sb, "Route")
            .iter()
            .any(|r| r["ip_prefix"] == "10.2.0.0/16"),
        "advertised in the ISB"
    );
}
