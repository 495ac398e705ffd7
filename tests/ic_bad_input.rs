//! Conflicting configuration between AZs is skipped with a warning; it does not block the rest
//! of the batch and does not make the daemon retry a failing transaction.

mod common;

use std::process::Command;
use std::time::Duration;

use anyhow::Result;
use common::{our_ovn_ic, wait_until, AzDbs, Daemon, IcDbs};

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

fn gateway(az: &AzDbs, name: &str, ip: &str) {
    let sb = az.sb.remote();
    ctl("ovn-sbctl", &sb, &["chassis-add", name, "geneve", ip]);
    ctl(
        "ovn-sbctl",
        &sb,
        &[
            "set",
            "Chassis",
            name,
            "other_config:is-interconn=true",
            &format!("hostname={name}"),
        ],
    );
}

#[test]
fn gateways_with_the_same_encap_ip_do_not_block_the_batch() -> Result<()> {
    let ic = IcDbs::start()?;
    let az1 = AzDbs::start("az1")?;
    let az2 = AzDbs::start("az2")?;
    gateway(&az1, "gw1", "192.0.2.1");
    gateway(&az2, "gw2", "192.0.2.1"); // same (type, ip) as gw1: a configuration error
    gateway(&az2, "gw3", "192.0.2.3");
    let d1 = Daemon::ovn_ic(our_ovn_ic(), &az1, &ic, &["-vfile:info"])?;
    assert!(wait_until(Duration::from_secs(20), || ctl(
        "ovn-ic-sbctl",
        &ic.ic_sb.remote(),
        &["show"]
    )
    .contains("gw1")));
    let d2 = Daemon::ovn_ic(our_ovn_ic(), &az2, &ic, &["-vfile:info"])?;
    ctl("ovn-ic-nbctl", &ic.ic_nb.remote(), &["ts-add", "ts1"]);
    // Everything else converges: both AZs, gw3, the transit switch in both NBs.
    let show = || ctl("ovn-ic-sbctl", &ic.ic_sb.remote(), &["show"]);
    assert!(
        wait_until(Duration::from_secs(20), || {
            let s = show();
            s.contains("availability-zone az2") && s.contains("gw3")
        }),
        "{}",
        show()
    );
    for az in [&az1, &az2] {
        let ls = || {
            ctl(
                "ovn-nbctl",
                &az.nb.remote(),
                &["--bare", "--columns=name", "list", "Logical_Switch"],
            )
        };
        assert!(
            wait_until(Duration::from_secs(20), || ls().trim() == "ts1"),
            "{}",
            az.name
        );
    }
    // gw2 is not published, gw3 is; gw3 reaches az1's SB as a remote chassis, gw2 never.
    std::thread::sleep(Duration::from_secs(3));
    let s = show();
    assert!(!s.contains("gw2"), "{s}");
    let chassis = ctl(
        "ovn-sbctl",
        &az1.sb.remote(),
        &["--bare", "--columns=name", "list", "Chassis"],
    );
    assert!(
        chassis.contains("gw3") && !chassis.contains("gw2"),
        "{chassis}"
    );
    let log2 = d2.log_text();
    assert!(
        log2.contains("Encap geneve 192.0.2.1 of gw2 is already used by gw1; not syncing gw2."),
        "{log2}"
    );
    for log in [d1.log_text(), log2] {
        assert!(!log.contains("commit failed"), "{log}");
        assert!(!log.contains("transaction error"), "{log}");
    }
    Ok(())
}
