//! Operator-facing behaviour with real databases: pause/resume and the IC-SB lock, logrotate
//! through `ovs-appctl vlog/reopen`.

mod common;

use std::process::Command;
use std::time::Duration;

use anyhow::Result;
use common::{our_ovn_ic, wait_until, Daemon, OvnDbs};

fn ctl(tool: &str, remote: &str, args: &[&str]) -> String {
    let out = Command::new(tool)
        .arg(format!("--db={remote}"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{tool} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn datapaths(dbs: &OvnDbs) -> String {
    ctl(
        "ovn-ic-sbctl",
        &dbs.ic.ic_sb.remote(),
        &[
            "--bare",
            "--columns=transit_switch",
            "list",
            "Datapath_Binding",
        ],
    )
}

#[test]
fn pause_releases_locks_writes_nothing_and_does_not_spin() -> Result<()> {
    let dbs = OvnDbs::start("az1")?;
    let d = Daemon::ovn_ic(our_ovn_ic(), &dbs.az, &dbs.ic, &[])?;
    assert!(wait_until(Duration::from_secs(20), || d
        .log_text()
        .contains(
            "OVN ISB lock acquired. This ovn-ic instance is now active."
        )));
    assert_eq!(d.appctl(&["status"])?, "Status: active\n");

    d.appctl(&["pause"])?;
    assert!(wait_until(Duration::from_secs(10), || {
        let log = d.log_text();
        log.contains("This ovn-ic instance is now paused. Removing IC-SB lock.")
            && log.contains("This ovn-ic instance is now paused.")
    }));
    assert_eq!(d.appctl(&["status"])?, "Status: paused\n");
    assert_eq!(d.appctl(&["is-paused"])?.trim(), "true");
    let zero_before: u64 = d
        .appctl(&["coverage/read-counter", "poll_zero_timeout"])?
        .trim()
        .parse()?;
    ctl("ovn-ic-nbctl", &dbs.ic.ic_nb.remote(), &["ts-add", "ts1"]);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(datapaths(&dbs).trim(), "", "a paused daemon wrote to IC-SB");
    let zero_after: u64 = d
        .appctl(&["coverage/read-counter", "poll_zero_timeout"])?
        .trim()
        .parse()?;
    assert!(
        zero_after - zero_before < 100,
        "busy loop while paused: {zero_before} -> {zero_after}"
    );

    d.appctl(&["resume"])?;
    assert!(wait_until(Duration::from_secs(20), || datapaths(&dbs)
        .trim()
        == "ts1"));
    assert_eq!(d.appctl(&["status"])?, "Status: active\n");
    let acquired = d
        .log_text()
        .matches("OVN ISB lock acquired. This ovn-ic instance is now active.")
        .count();
    assert_eq!(acquired, 2, "the ISB lock is acquired again after resume");
    Ok(())
}

#[test]
fn logrotate_with_ovs_appctl_vlog_reopen() -> Result<()> {
    let dbs = OvnDbs::start("az1")?;
    let d = Daemon::ovn_ic(our_ovn_ic(), &dbs.az, &dbs.ic, &[])?;
    assert!(wait_until(Duration::from_secs(20), || d
        .log_text()
        .contains("Register AZ az1")));
    let rotated = d.log_path().with_extension("log.1");
    std::fs::rename(d.log_path(), &rotated)?;
    let out = Command::new("ovs-appctl")
        .arg("-t")
        .arg(d.ctl_path())
        .arg("vlog/reopen")
        .output()?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    d.appctl(&["inc-engine/recompute"])?;
    assert!(wait_until(Duration::from_secs(10), || d
        .log_text()
        .contains("User triggered force recompute.")));
    let old = std::fs::read_to_string(&rotated)?;
    assert!(old.contains("Register AZ az1") && !old.contains("User triggered force recompute."));
    Ok(())
}

/// Two instances for one AZ under churn: the active one is killed with SIGKILL three times while
/// transit switches are added; each time the standby takes over within two probe intervals
/// (10 s) and no row is ever duplicated.
#[test]
fn active_standby_failover_under_churn() -> Result<()> {
    let dbs = OvnDbs::start("az1")?;
    let start = || Daemon::ovn_ic(our_ovn_ic(), &dbs.az, &dbs.ic, &[]).unwrap();
    let mut ds = [Some(start()), Some(start())];
    let status = |d: &Option<Daemon>| {
        d.as_ref()
            .and_then(|d| d.appctl(&["status"]).ok())
            .unwrap_or_default()
    };
    let active_of =
        |ds: &[Option<Daemon>; 2]| (0..2).find(|&i| status(&ds[i]) == "Status: active\n");
    assert!(wait_until(Duration::from_secs(20), || active_of(&ds).is_some()));
    for round in 0..3 {
        let a = active_of(&ds).expect("one active");
        assert_eq!(status(&ds[1 - a]), "Status: standby\n", "round {round}");
        ctl(
            "ovn-ic-nbctl",
            &dbs.ic.ic_nb.remote(),
            &["ts-add", &format!("ts{round}")],
        );
        if let Some(mut d) = ds[a].take() {
            d.kill();
        }
        let t0 = std::time::Instant::now();
        assert!(
            wait_until(Duration::from_secs(10), || status(&ds[1 - a])
                == "Status: active\n"),
            "round {round}: no take-over"
        );
        eprintln!("round {round}: take-over after {:?}", t0.elapsed());
        ds[a] = Some(start());
    }
    // Converged, and nothing written twice.
    let names = |tool: &str, remote: &str, table: &str, col: &str| -> Vec<String> {
        let mut v: Vec<String> = ctl(
            tool,
            remote,
            &["--bare", &format!("--columns={col}"), "list", table],
        )
        .split_whitespace()
        .map(str::to_string)
        .collect();
        v.sort();
        v
    };
    let want = vec!["ts0".to_string(), "ts1".into(), "ts2".into()];
    assert!(wait_until(Duration::from_secs(20), || names(
        "ovn-nbctl",
        &dbs.az.nb.remote(),
        "Logical_Switch",
        "name"
    ) == want));
    assert!(wait_until(Duration::from_secs(20), || {
        names(
            "ovn-ic-sbctl",
            &dbs.ic.ic_sb.remote(),
            "Datapath_Binding",
            "transit_switch",
        ) == want
    }));
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        names("ovn-nbctl", &dbs.az.nb.remote(), "Logical_Switch", "name"),
        want
    );
    assert_eq!(
        names(
            "ovn-ic-sbctl",
            &dbs.ic.ic_sb.remote(),
            "Datapath_Binding",
            "transit_switch"
        ),
        want
    );
    assert_eq!(
        names(
            "ovn-ic-sbctl",
            &dbs.ic.ic_sb.remote(),
            "Availability_Zone",
            "name"
        ),
        vec!["az1".to_string()]
    );
    Ok(())
}
