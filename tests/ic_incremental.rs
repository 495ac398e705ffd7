//! Incremental processing end to end (issue "Truly incremental"): real servers, `ovn-northd`
//! and our daemon in two AZs. After convergence, each typical single change — one static
//! route added and removed, one transit switch port, one gateway chassis, one transit switch,
//! one address set — reaches the other AZ while no engine node of either daemon recomputes
//! (`inc-engine/show-stats`), and our own writes coming back through the monitors cause no
//! recompute either (the counters are read after everything settled). One service monitor is
//! checked the same way in tests/service_monitor.rs (no northd there: northd would delete a
//! hand-written SB monitor).

mod common;

use common::lab::{add_gateway, has_row, learned, table_rows, Lab, LAB_WAIT};
use common::wait_until;
use serde_json::json;

/// Apply `change`, wait for `done`, let everything settle, and assert that no compute node of
/// any daemon recomputed.
fn assert_no_recompute(
    lab: &Lab,
    what: &str,
    change: impl FnOnce(&Lab),
    done: impl Fn(&Lab) -> bool,
) {
    let before = lab.settled();
    change(lab);
    assert!(
        wait_until(LAB_WAIT, || done(lab)),
        "{what}: never converged"
    );
    let after = lab.settled();
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
            lab.ics[i].log_text()
        );
    }
}

#[test]
fn typical_single_changes_cause_no_recompute() {
    let lab = Lab::start(2);
    lab.add_ts("ts1");
    lab.attach_router(0, "ts1", 100);
    lab.attach_router(1, "ts1", 100);
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
    lab.nbctl(0, &args.iter().map(String::as_str).collect::<Vec<_>>());
    let ok = wait_until(LAB_WAIT, || learned(&lab.azs[1].nb).len() == 20);
    assert!(ok, "AZ2 learned {:?}", learned(&lab.azs[1].nb));

    assert_no_recompute(
        &lab,
        "one static route added",
        |l| {
            l.nbctl(
                0,
                &["lr-route-add", "lr1", "10.2.0.0/16", "169.254.100.254"],
            );
        },
        |l| learned(&l.azs[1].nb).contains(&"10.2.0.0/16".to_string()),
    );
    assert!(table_rows(&lab.ic.ic_sb, "Route")
        .iter()
        .any(|r| r["ip_prefix"] == "10.2.0.0/16"));

    assert_no_recompute(
        &lab,
        "one static route removed",
        |l| {
            l.nbctl(0, &["lr-route-del", "lr1", "10.2.0.0/16"]);
        },
        |l| !learned(&l.azs[1].nb).contains(&"10.2.0.0/16".to_string()),
    );

    assert_no_recompute(
        &lab,
        "one transit switch port added",
        |l| {
            let args = Lab::router_port_args(0, "ts1", "tsp1", 100, 50);
            l.nbctl(0, &args.iter().map(String::as_str).collect::<Vec<_>>());
        },
        |l| {
            table_rows(&l.azs[1].nb, "Logical_Switch_Port")
                .iter()
                .any(|r| r["name"] == "tsp1" && r["type"] == "remote")
        },
    );

    assert_no_recompute(
        &lab,
        "one gateway chassis added",
        |l| add_gateway(&l.azs[0].sb, "gw1b", "192.168.0.11"),
        |l| has_row(&l.azs[1].sb, "Chassis", "name", "gw1b"),
    );

    assert_no_recompute(
        &lab,
        "one transit switch added",
        |l| {
            l.ic_nbctl(&["ts-add", "ts2"]);
        },
        |l| {
            l.azs
                .iter()
                .all(|az| has_row(&az.nb, "Logical_Switch", "name", "ts2"))
        },
    );

    if common::schema_lacks("ovn-ic-sb", "Address_Set", None)
        .or_else(|| common::schema_lacks("ovn-sb", "Address_Set", Some("options")))
        .is_none()
    {
        assert_no_recompute(
            &lab,
            "one address set advertised",
            |l| {
                l.azs[0]
                    .sb
                    .transact(json!([{"op": "insert", "table": "Address_Set", "row": {
                        "name": "as1", "addresses": ["set", ["10.9.0.1", "10.9.0.2"]],
                        "options": ["map", [["ic-adv", "true"]]]}}]))
                    .expect("SB Address_Set");
            },
            |l| has_row(&l.azs[1].nb, "Address_Set", "name", "as1"),
        );
    }
}
