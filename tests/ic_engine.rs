//! The engine as the daemon runs it: engine stats prove that a change to one transit switch
//! recomputes only the nodes that depend on transit switches, and the graph dump.

mod common;

use std::time::Duration;

use anyhow::Result;
use common::{our_ovn_ic, wait_until, Daemon, OvnDbs};

fn stat(d: &Daemon, node: &str) -> u64 {
    stat_of(d, node, "recompute")
}

fn stat_of(d: &Daemon, node: &str, what: &str) -> u64 {
    d.appctl(&["inc-engine/show-stats", node, what])
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

fn ic_sbctl(dbs: &OvnDbs, args: &[&str]) -> String {
    let db = format!("--db={}", dbs.ic.ic_sb.remote());
    let out = std::process::Command::new("ovn-ic-sbctl")
        .arg(db)
        .args(args)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn ic_nbctl(dbs: &OvnDbs, args: &[&str]) {
    let db = format!("--db={}", dbs.ic.ic_nb.remote());
    let st = std::process::Command::new("ovn-ic-nbctl")
        .arg(db)
        .args(args)
        .status()
        .unwrap();
    assert!(st.success(), "ovn-ic-nbctl {args:?}");
}

#[test]
fn transit_switch_change_is_handled_without_recompute() -> Result<()> {
    let dbs = OvnDbs::start("az1")?;
    let d = Daemon::ovn_ic(our_ovn_ic(), &dbs.az, &dbs.ic, &[])?;
    assert!(wait_until(Duration::from_secs(20), || ic_sbctl(
        &dbs,
        &["show"]
    )
    .contains("availability-zone az1")));
    ic_nbctl(&dbs, &["ts-add", "ts1"]);
    let key = || {
        ic_sbctl(
            &dbs,
            &["--bare", "--columns=tunnel_key", "list", "Datapath_Binding"],
        )
    };
    assert!(wait_until(Duration::from_secs(20), || key().trim() == "16711682"));
    // Let our own writes come back and settle.
    std::thread::sleep(Duration::from_millis(500));
    let before: Vec<u64> = ["az", "gateway", "transit_switch", "port_binding"]
        .iter()
        .map(|n| stat(&d, n))
        .collect();
    let handled_before = stat_of(&d, "transit_switch", "compute");

    ic_nbctl(&dbs, &["ts-add", "ts2"]);
    assert!(wait_until(Duration::from_secs(20), || key()
        .split_whitespace()
        .count()
        == 2));
    std::thread::sleep(Duration::from_millis(500));
    let after: Vec<u64> = ["az", "gateway", "transit_switch", "port_binding"]
        .iter()
        .map(|n| stat(&d, n))
        .collect();
    assert_eq!(
        after[0], before[0],
        "az recomputed on a transit switch change"
    );
    assert_eq!(
        after[1], before[1],
        "gateway recomputed on a transit switch change"
    );
    assert_eq!(
        after[2], before[2],
        "transit_switch recomputed instead of handling the change"
    );
    assert!(
        stat_of(&d, "transit_switch", "compute") > handled_before,
        "transit_switch's change handler did not run"
    );
    Ok(())
}

#[test]
fn dump_graph_is_dot_with_every_node() {
    let out = std::process::Command::new(our_ovn_ic())
        .arg("--dump-inc-proc-graph")
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success());
    assert!(text.starts_with("digraph \"Incremental-Processing-Engine\" {\n\trankdir=LR;\n"));
    for node in [
        "NB_nb_global",
        "ICNB_transit_switch_port",
        "az",
        "gateway",
        "enum_datapaths",
        "transit_switch",
        "transit_router",
        "port_binding",
        "route",
        "service_monitor",
        "address_set",
        "ic",
    ] {
        assert!(
            text.contains(&format!(
                "\t{node} [style=filled, shape=box, fillcolor=white, label=\"{node}\"];"
            )),
            "{node}"
        );
    }
    assert!(text.contains("\tport_binding -> ic [label=\"ic_port_binding_handler\"];"));
    assert!(text.ends_with("}\n"));
}
