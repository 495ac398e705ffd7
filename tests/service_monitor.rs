//! Service_Monitor synchronisation (spec ovn-ic-routes.md Part C) between two AZs run by our
//! daemon against real ovsdb-servers. No northd runs: the test writes the SB rows northd would
//! (the source AZ's `remote = true` monitor, the target AZ's port binding, the target's
//! ovn-controller status, and northd's take-over of an `ic_learned` row).
//!
//! Needs the current schemas (`OVN_SCHEMA_DIR=/work/shared/schemas`); skips on older ones.

mod common;

use std::time::Duration;

use anyhow::{anyhow, Result};
use common::lab::recomputes;
use common::{our_ovn_ic, rows, skip_unless_schema, wait_for, AzDbs, Daemon, IcDbs, Server};
use serde_json::{json, Value};

const T: Duration = Duration::from_secs(20);
const MAC1: &str = "0a:00:00:00:01:01";
const MAC2: &str = "0a:00:00:00:02:02";

fn monitors(s: &Server) -> Vec<Value> {
    s.dump()
        .map(|d| rows(&d, "Service_Monitor").to_vec())
        .unwrap_or_default()
}

/// An optional string column of a dumped row (`["set", []]` = absent).
fn opt(row: &Value, col: &str) -> Option<String> {
    row.get(col).and_then(Value::as_str).map(str::to_string)
}

/// A string→string map column of a dumped row.
fn map(row: &Value, col: &str) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = row
        .get(col)
        .and_then(|m| m.get(1))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| Some((p[0].as_str()?.to_string(), p[1].as_str()?.to_string())))
        .collect();
    v.sort();
    v
}

fn uuid(row: &Value) -> String {
    row["_uuid"][1].as_str().unwrap_or_default().to_string()
}

fn pairs(kv: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = kv
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    v.sort();
    v
}

/// Waits for exactly one Service_Monitor row in `s` satisfying `f`, and returns it.
fn wait_one(s: &Server, what: &str, f: impl Fn(&Value) -> bool) -> Result<Value> {
    wait_for(T, || {
        let m: Vec<Value> = monitors(s).into_iter().filter(|r| f(r)).collect();
        (m.len() == 1).then(|| m[0].clone())
    })
    .ok_or_else(|| anyhow!("timed out waiting for {what}; rows: {:?}", monitors(s)))
}

fn set_mac(s: &Server, mac: &str) -> Result<()> {
    s.transact(json!([{"op": "update", "table": "SB_Global", "where": [],
                       "row": {"options": ["map", [["svc_monitor_mac", mac]]]}}]))?;
    Ok(())
}

/// The target AZ binds the backend's port (northd leaves `up = false` until it is claimed).
fn bind_backend(sb: &Server) -> Result<()> {
    sb.transact(json!([
        {"op": "insert", "table": "Encap", "uuid-name": "e",
         "row": {"type": "geneve", "ip": "192.168.0.2", "chassis_name": "hv2"}},
        {"op": "insert", "table": "Chassis", "uuid-name": "ch",
         "row": {"name": "hv2", "hostname": "hv2", "encaps": ["named-uuid", "e"]}},
        {"op": "insert", "table": "Datapath_Binding", "uuid-name": "dp",
         "row": {"tunnel_key": 7}},
        {"op": "insert", "table": "Port_Binding",
         "row": {"logical_port": "backend1", "datapath": ["named-uuid", "dp"],
                 "tunnel_key": 1, "up": false, "chassis": ["named-uuid", "ch"]}},
    ]))?;
    Ok(())
}

/// Northd of the source AZ: a load balancer health-checks backend1 (in az2) on `port`.
/// Returns the SB row's UUID.
fn push_monitor(sb: &Server, port: u16) -> Result<String> {
    let r = sb.transact(json!([{"op": "insert", "table": "Service_Monitor", "row": {
        "type": "load-balancer", "ip": "10.0.2.5", "port": port, "protocol": "tcp",
        "logical_port": "backend1", "src_ip": "10.0.2.254", "src_mac": MAC1,
        "remote": true, "status": "offline",
        "options": ["map", [["az-name", "az2"], ["interval", "5"]]]}}]))?;
    r[0]["uuid"][1]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| anyhow!("no uuid in {r}"))
}

fn set_monitor(s: &Server, uuid: &str, row: Value) -> Result<()> {
    s.transact(json!([{"op": "update", "table": "Service_Monitor",
                       "where": [["_uuid", "==", ["uuid", uuid]]], "row": row}]))?;
    Ok(())
}

#[test]
fn monitors_travel_to_the_target_az_and_status_comes_back() {
    skip_unless_schema!("ovn-ic-sb", "Service_Monitor");
    skip_unless_schema!("ovn-sb", "Service_Monitor", "ic_learned");
    if let Err(e) = two_azs() {
        panic!("{e:#}");
    }
}

fn two_azs() -> Result<()> {
    let ic = IcDbs::start()?;
    let az1 = AzDbs::start("az1")?;
    let az2 = AzDbs::start("az2")?;
    set_mac(&az1.sb, MAC1)?;

    bind_backend(&az2.sb)?;

    let _d1 = Daemon::ovn_ic(our_ovn_ic(), &az1, &ic, &[])?;
    let _d2 = Daemon::ovn_ic(our_ovn_ic(), &az2, &ic, &[])?;

    // Northd of az1: a load balancer health-checks backend1 in az2.
    let pushed = push_monitor(&az1.sb, 80)?;

    // Source side: the IC-SB row, and the SB status cleared (the IC-SB row has none yet).
    let isb = wait_one(&ic.ic_sb, "the IC-SB monitor", |r| {
        r["logical_port"] == "backend1"
    })?;
    assert_eq!(isb["source_availability_zone"], "az1");
    assert_eq!(isb["target_availability_zone"], "az2");
    assert_eq!(isb["src_mac"], MAC1);
    assert_eq!(isb["ip"], "10.0.2.5");
    assert_eq!(isb["port"], 80);
    assert_eq!(isb["protocol"], "tcp");
    assert_eq!(isb["src_ip"], "10.0.2.254");
    assert_eq!(opt(&isb, "type").as_deref(), Some("load-balancer"));
    assert_eq!(
        map(&isb, "options"),
        pairs(&[("az-name", "az2"), ("interval", "5")])
    );
    wait_one(&az1.sb, "the az1 status cleared", |r| {
        uuid(r) == pushed && opt(r, "status").is_none()
    })?;

    // Target side: nothing without svc_monitor_mac, not even after a while.
    std::thread::sleep(Duration::from_millis(1500));
    assert!(monitors(&az2.sb).is_empty(), "{:?}", monitors(&az2.sb));
    set_mac(&az2.sb, MAC2)?;
    let learned = wait_one(&az2.sb, "the ic_learned monitor", |r| {
        r["ic_learned"] == true
    })?;
    assert_eq!(learned["remote"], false);
    assert_eq!(learned["src_mac"], MAC2);
    assert_eq!(learned["logical_port"], "backend1");
    assert_eq!(learned["ip"], "10.0.2.5");
    assert_eq!(learned["port"], 80);
    assert_eq!(learned["src_ip"], "10.0.2.254");
    assert_eq!(learned["chassis_name"], "hv2");
    assert_eq!(opt(&learned, "type").as_deref(), Some("load-balancer"));
    assert_eq!(
        map(&learned, "options"),
        pairs(&[("az-name", "az2"), ("interval", "5")])
    );
    let learned_uuid = uuid(&learned);

    // ovn-controller of az2 reports: the status travels az2 SB -> IC-SB -> az1 SB.
    set_monitor(&az2.sb, &learned_uuid, json!({"status": "online"}))?;
    wait_one(&ic.ic_sb, "IC-SB status online", |r| {
        opt(r, "status").as_deref() == Some("online")
    })?;
    wait_one(&az1.sb, "az1 status online", |r| {
        uuid(r) == pushed && opt(r, "status").as_deref() == Some("online")
    })?;

    // The source changes the probe options: they follow to the target's ic_learned row.
    set_monitor(
        &az1.sb,
        &pushed,
        json!({"options": ["map", [["az-name", "az2"], ["interval", "9"]]]}),
    )?;
    wait_one(&az2.sb, "options followed", |r| {
        map(r, "options") == pairs(&[("az-name", "az2"), ("interval", "9")])
    })?;

    // Northd of az2 takes the row over (a local LB uses the same backend): it flips
    // ic_learned and writes its own options. ovn-ic must leave them alone (no write fight)
    // while still carrying the status.
    set_monitor(
        &az2.sb,
        &learned_uuid,
        json!({"ic_learned": false, "options": ["map", [["interval", "3"]]],
               "status": "error"}),
    )?;
    wait_one(&az1.sb, "az1 status error", |r| {
        uuid(r) == pushed && opt(r, "status").as_deref() == Some("error")
    })?;
    std::thread::sleep(Duration::from_millis(1500));
    let sb2 = monitors(&az2.sb);
    assert_eq!(sb2.len(), 1, "{sb2:?}");
    assert_eq!(sb2[0]["ic_learned"], false);
    assert_eq!(map(&sb2[0], "options"), pairs(&[("interval", "3")]));

    // Northd no longer needs it and deletes it: ovn-ic re-creates its own copy.
    az2.sb
        .transact(json!([{"op": "delete", "table": "Service_Monitor",
                            "where": [["_uuid", "==", ["uuid", learned_uuid]]]}]))?;
    let again = wait_one(&az2.sb, "the re-created ic_learned monitor", |r| {
        r["ic_learned"] == true
    })?;
    assert_ne!(uuid(&again), learned_uuid);

    // The source's load balancer goes away: the IC-SB row and the target's copy follow.
    az1.sb
        .transact(json!([{"op": "delete", "table": "Service_Monitor",
                            "where": [["_uuid", "==", ["uuid", pushed]]]}]))?;
    assert!(
        wait_for(T, || monitors(&ic.ic_sb).is_empty().then_some(())).is_some(),
        "IC-SB rows left: {:?}",
        monitors(&ic.ic_sb)
    );
    assert!(
        wait_for(T, || monitors(&az2.sb).is_empty().then_some(())).is_some(),
        "az2 SB rows left: {:?}",
        monitors(&az2.sb)
    );
    assert!(monitors(&az1.sb).is_empty());
    Ok(())
}

/// Waits until the recompute counters of `ds` stop moving (1.5 s apart) and returns them.
fn settled(ds: &[&Daemon]) -> Vec<std::collections::BTreeMap<String, u64>> {
    let stats = || ds.iter().map(|d| recomputes(d)).collect::<Vec<_>>();
    let mut last = stats();
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(1500));
        let now = stats();
        if now == last {
            return now;
        }
        last = now;
    }
    panic!("recompute counters keep moving: {last:?}");
}

/// One more service monitor, its status coming back and its removal are handled by the change
/// handlers of both daemons: no engine node recomputes (issue "Truly incremental").
#[test]
fn one_service_monitor_causes_no_recompute() {
    skip_unless_schema!("ovn-ic-sb", "Service_Monitor");
    skip_unless_schema!("ovn-sb", "Service_Monitor", "ic_learned");
    if let Err(e) = one_more_monitor() {
        panic!("{e:#}");
    }
}

fn one_more_monitor() -> Result<()> {
    let ic = IcDbs::start()?;
    let az1 = AzDbs::start("az1")?;
    let az2 = AzDbs::start("az2")?;
    set_mac(&az1.sb, MAC1)?;
    set_mac(&az2.sb, MAC2)?;
    bind_backend(&az2.sb)?;
    let d1 = Daemon::ovn_ic(our_ovn_ic(), &az1, &ic, &[])?;
    let d2 = Daemon::ovn_ic(our_ovn_ic(), &az2, &ic, &[])?;
    let learned_port = |port: u16| move |r: &Value| r["ic_learned"] == true && r["port"] == port;

    // Converged with one monitor.
    push_monitor(&az1.sb, 80)?;
    wait_one(&az2.sb, "the first ic_learned monitor", learned_port(80))?;
    let before = settled(&[&d1, &d2]);

    // One more: published, learned, its status carried back, then withdrawn.
    let pushed = push_monitor(&az1.sb, 8080)?;
    let learned = wait_one(&az2.sb, "the second ic_learned monitor", learned_port(8080))?;
    set_monitor(&az2.sb, &uuid(&learned), json!({"status": "online"}))?;
    wait_one(&az1.sb, "the second monitor's status", |r| {
        uuid(r) == pushed && opt(r, "status").as_deref() == Some("online")
    })?;
    az1.sb
        .transact(json!([{"op": "delete", "table": "Service_Monitor",
                            "where": [["_uuid", "==", ["uuid", pushed]]]}]))?;
    let gone = wait_for(T, || {
        (!monitors(&az2.sb).iter().any(|r| r["port"] == 8080)).then_some(())
    });
    assert!(gone.is_some(), "az2 SB: {:?}", monitors(&az2.sb));
    assert_eq!(monitors(&ic.ic_sb).len(), 1, "{:?}", monitors(&ic.ic_sb));

    let after = settled(&[&d1, &d2]);
    assert_eq!(
        before,
        after,
        "recomputes moved; az1 log:\n{}\naz2 log:\n{}",
        d1.log_text(),
        d2.log_text()
    );
    Ok(())
}
