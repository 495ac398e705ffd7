//! Fault injection with real processes (issue 8): databases killed with SIGKILL and restarted,
//! raft leaders killed and members hung with SIGSTOP, our daemon killed mid-run, active/standby
//! fail-over under churn, and two AZs whose configurations clash. Every test asserts the final
//! rows exactly (`faults/state.rs`) and, where it matters, that no row ever disappeared while
//! the fault happened (`faults/watch.rs`, an independent monitor of the databases).
//!
//! The tests share 2 CPU cores with each other and with other test binaries, so they run one
//! at a time (file-level mutex) and only wait on states, never on durations — except the
//! fail-over gap, which the issue bounds by two probe intervals.
//!
//! Run: `cargo test --test faults` (about 3-4 minutes).

mod common;

#[path = "faults/env.rs"]
mod env;
#[path = "faults/state.rs"]
mod state;
#[path = "faults/watch.rs"]
mod watch;

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use common::{schema_path, wait_until, Listen, Server};
use env::{Env, Opts, WAIT};
use serde_json::json;
use watch::{table, Table, Watch};

/// One test at a time: each starts 6-12 database servers, 2 northd and 2-4 daemons.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

const ISB_TABLES: &[Table] = &[
    table("Availability_Zone", &["name"]),
    table("Datapath_Binding", &["transit_switch"]),
    table("Gateway", &["name"]),
    table("Port_Binding", &["transit_switch", "logical_port"]),
    table(
        "Route",
        &[
            "transit_switch",
            "availability_zone",
            "ip_prefix",
            "nexthop",
        ],
    ),
];
const NB_TABLES: &[Table] = &[
    table("Logical_Switch", &["name"]),
    table("Logical_Switch_Port", &["name"]),
    table(
        "Logical_Router_Static_Route",
        &["ip_prefix", "nexthop", "external_ids"],
    ),
];
const SB_TABLES: &[Table] = &[
    table("Chassis", &["name"]),
    table("Encap", &["chassis_name", "ip"]),
];

/// Watchers on IC-SB and every AZ's NB and SB.
fn watch_all(env: &Env) -> Vec<Watch> {
    let mut w = vec![Watch::start(
        "ic-sb",
        env.isb.remotes(),
        "OVN_IC_Southbound",
        ISB_TABLES,
    )];
    for az in &env.azs {
        w.push(Watch::start(
            &format!("{}-nb", az.name),
            az.nb.remotes(),
            "OVN_Northbound",
            NB_TABLES,
        ));
        w.push(Watch::start(
            &format!("{}-sb", az.name),
            az.sb.remotes(),
            "OVN_Southbound",
            SB_TABLES,
        ));
    }
    w
}

/// Every watcher saw no row disappear. Waits a little first: a watcher connected to a raft
/// follower may still be catching up with rows it has not seen come back yet.
fn assert_nothing_lost(watches: &[Watch], what: &str) {
    common::wait_until(Duration::from_secs(10), || {
        watches.iter().all(|w| w.deleted().is_empty())
    });
    for w in watches {
        w.assert_nothing_lost(what);
    }
}

/// Extra static routes per AZ, as [`state::expected`] takes them.
struct Churn {
    routes: Vec<Vec<String>>,
    tss: Vec<String>,
}

impl Churn {
    fn new(azs: usize) -> Churn {
        Churn {
            routes: vec![Vec::new(); azs],
            tss: vec!["ts1".into()],
        }
    }

    /// Adds static route `10.<n>.<k>.0/24` to `lr<n>` of AZ `az` (k counts from 2).
    fn route(&mut self, env: &Env, az: usize) {
        let n = az + 1;
        let p = format!("10.{n}.{}.0/24", self.routes[az].len() + 2);
        env.add_route(az, &format!("lr{n}"), &p, &format!("192.168.{n}.10"));
        self.routes[az].push(p);
    }

    /// Adds transit switch `ts<k>` (k counts from 2).
    fn ts(&mut self, env: &Env) {
        let name = format!("ts{}", self.tss.len() + 1);
        env.add_ts(&name);
        self.tss.push(name);
    }

    fn expected(&self, azs: usize) -> state::State {
        let tss: Vec<&str> = self.tss.iter().map(String::as_str).collect();
        state::expected(azs, &tss, &self.routes)
    }
}

#[test]
fn kill_and_restart_each_database_while_changes_flow() {
    let _g = serial();
    let mut env = Env::start(Opts {
        azs: 2,
        ics_per_az: 1,
        ..Opts::default()
    });
    env.base_topology();
    let mut churn = Churn::new(2);
    state::expect(&env, "initial", &churn.expected(2));
    let watches = watch_all(&env);

    for victim in ["az1-nb", "az1-sb", "ic-nb", "ic-sb"] {
        // A change before the kill, one while the database is down (in a database that is up),
        // and one in the restarted database right after it is back.
        churn.route(&env, 1);
        {
            let db = match victim {
                "az1-nb" => &mut env.azs[0].nb,
                "az1-sb" => &mut env.azs[0].sb,
                "ic-nb" => &mut env.inb,
                _ => &mut env.isb,
            };
            db.server_mut().kill();
        }
        if victim == "ic-nb" {
            churn.route(&env, 0);
        } else {
            churn.ts(&env);
        }
        std::thread::sleep(Duration::from_millis(1500));
        {
            let db = match victim {
                "az1-nb" => &mut env.azs[0].nb,
                "az1-sb" => &mut env.azs[0].sb,
                "ic-nb" => &mut env.inb,
                _ => &mut env.isb,
            };
            db.server_mut().restart().expect("restarting the database");
        }
        match victim {
            "az1-nb" => churn.route(&env, 0),
            "ic-nb" => churn.ts(&env),
            _ => churn.route(&env, 0),
        }
        state::expect(
            &env,
            &format!("after restarting {victim}"),
            &churn.expected(2),
        );
        assert_nothing_lost(&watches, &format!("restart of {victim}"));
        for az in 0..2 {
            assert!(env.ics[az][0].as_mut().unwrap().is_running());
        }
    }
    // Each watcher reconnected after its own database came back.
    assert!(watches.iter().all(|w| w.snapshots() >= 1));
    assert!(
        watches[0].snapshots() >= 2,
        "the IC-SB watcher never reconnected"
    );
}

/// The watcher itself: an explicit delete, and a delete + re-insert done while it was
/// disconnected (the database file edited offline), are both reported.
#[test]
fn watcher_reports_deletes_and_reinserts_across_restarts() {
    let _g = serial();
    let mut isb = Server::standalone(schema_path("ovn-ic-sb"), Listen::Unix).unwrap();
    for n in ["a", "b", "c"] {
        isb.transact(json!([{"op": "insert", "table": "Availability_Zone", "row": {"name": n}}]))
            .unwrap();
    }
    let tables = [table("Availability_Zone", &["name"])];
    let w = Watch::start("self", vec![isb.remote()], isb.db_name(), &tables);
    assert_eq!(w.count("Availability_Zone"), 3);
    w.assert_nothing_lost("before any change");

    isb.transact(json!([{"op": "delete", "table": "Availability_Zone",
                         "where": [["name", "==", "a"]]}]))
        .unwrap();
    assert!(
        wait_until(WAIT, || w.deleted().len() == 1),
        "{:?}",
        w.deleted()
    );
    assert!(
        w.deleted()[0].starts_with("Availability_Zone a ("),
        "{:?}",
        w.deleted()
    );

    isb.kill();
    let txn = json!(["OVN_IC_Southbound",
        {"op": "delete", "table": "Availability_Zone", "where": [["name", "==", "b"]]},
        {"op": "insert", "table": "Availability_Zone", "row": {"name": "b"}}]);
    common::run(
        "ovsdb-tool",
        [
            "transact".to_string(),
            isb.db_path().display().to_string(),
            txn.to_string(),
        ],
        Duration::from_secs(30),
    )
    .unwrap();
    isb.restart().unwrap();
    assert!(wait_until(WAIT, || w.snapshots() >= 2));
    let r = w.reinserted();
    assert!(
        r.len() == 1 && r[0].starts_with("Availability_Zone b: new uuid"),
        "{r:?}"
    );
    let d = w.deleted();
    assert!(
        d.len() == 2 && d[1].contains(" b (") && d[1].ends_with("gone after reconnect"),
        "{d:?}"
    );
    assert_eq!(w.count("Availability_Zone"), 2);
}

/// One scripted run with 2 AZs: the standard topology, then four rounds of changes (a route in
/// each AZ and a transit switch). With `kill`, AZ1's daemon is killed with SIGKILL right after
/// the first round's changes are written and AZ2's after the third's, each restarted at once.
/// Returns the final rows.
fn scripted_run(kill: bool) -> state::State {
    let mut env = Env::start(Opts {
        azs: 2,
        ics_per_az: 1,
        ..Opts::default()
    });
    env.base_topology();
    let mut churn = Churn::new(2);
    state::expect(&env, "initial", &churn.expected(2));
    let watches = watch_all(&env);
    for round in 0..4 {
        churn.route(&env, 0);
        churn.route(&env, 1);
        churn.ts(&env);
        // One more route, in AZ1 in rounds 0-1 and in AZ2 in rounds 2-3; with `kill`, that
        // AZ's daemon is killed right before it (rounds 0 and 2) and restarted after it.
        let az = round / 2;
        let killing = kill && round % 2 == 0;
        if killing {
            if let Some(mut d) = env.ics[az][0].take() {
                d.kill();
            }
        }
        churn.route(&env, az);
        if killing {
            env.ics[az][0] = Some(env.start_ic(az).expect("restarting ovn-ic"));
        }
    }
    let what = if kill { "killed run" } else { "reference run" };
    state::expect(&env, what, &churn.expected(2));
    assert_nothing_lost(&watches, what);
    state::read(&env).expect("reading the final rows")
}

#[test]
fn daemon_killed_mid_run_converges_like_an_uninterrupted_run() {
    let _g = serial();
    let reference = scripted_run(false);
    let killed = scripted_run(true);
    assert!(
        reference == killed,
        "a killed and restarted daemon left other rows than an uninterrupted run\n{}",
        state::diff(&reference, &killed)
    );
}

/// The time of the first log line containing `needle` after line `skip`, as UTC.
fn log_time(log: &str, needle: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    let line = log.lines().find(|l| l.contains(needle))?;
    let ts = line.split('|').next()?;
    let t = chrono::NaiveDateTime::parse_from_str(ts, "%Y-%m-%dT%H:%M:%S%.3fZ").ok()?;
    Some(t.and_utc())
}

const ACTIVE: &str = "ovn-ic lock acquired. This ovn-ic instance is now active.";

/// Two daemons in AZ1 (one in AZ2) with a 1 s probe interval; three rounds of changes, each
/// followed by `kill -9` of AZ1's active daemon: the standby logs that it is active within two
/// probe intervals of the kill (measured between the kill and the standby's log timestamp),
/// a fresh standby is started, and in the end every row exists exactly once and no row was
/// ever deleted.
#[test]
fn active_standby_kill_active_repeatedly_under_churn() {
    let _g = serial();
    let probe_ms = 1000;
    let mut env = Env::start(Opts {
        azs: 2,
        ics_per_az: 1,
        probe_ms: Some(probe_ms),
        ..Opts::default()
    });
    let standby = env.start_ic(0).unwrap();
    env.ics[0].push(Some(standby));
    env.base_topology();
    let mut churn = Churn::new(2);
    state::expect(&env, "initial", &churn.expected(2));
    let watches = watch_all(&env);
    let status = |env: &Env, i: usize| -> String {
        env.ics[0][i]
            .as_ref()
            .and_then(|d| d.appctl(&["status"]).ok())
            .unwrap_or_default()
    };
    let mut gaps = Vec::new();
    for round in 0..3 {
        let active = wait_for_active(&env, &status);
        let other = 1 - active;
        assert!(
            wait_until(WAIT, || status(&env, other) == "Status: standby\n"),
            "round {round}: no standby"
        );
        let standby_log_before = env.ics[0][other].as_ref().unwrap().log_text().len();
        churn.route(&env, 0);
        churn.ts(&env);
        let t_kill = chrono::Utc::now();
        if let Some(mut d) = env.ics[0][active].take() {
            d.kill();
        }
        churn.route(&env, 0);
        let mut took_over = None;
        let ok = wait_until(WAIT, || {
            let log = env.ics[0][other].as_ref().unwrap().log_text();
            took_over = log_time(&log[standby_log_before..], ACTIVE);
            took_over.is_some()
        });
        assert!(ok, "round {round}: the standby never became active");
        let gap = took_over.unwrap() - t_kill;
        gaps.push(gap.num_milliseconds());
        // The new active one writes (its first commit brings the round's changes in).
        state::expect(&env, &format!("round {round}"), &churn.expected(2));
        env.ics[0][active] = Some(env.start_ic(0).unwrap());
    }
    eprintln!("fail-over gaps (ms): {gaps:?}");
    for g in &gaps {
        assert!(
            *g <= 2 * probe_ms as i64,
            "a fail-over took {g} ms, more than two probe intervals: {gaps:?}"
        );
    }
    assert_nothing_lost(&watches, "fail-overs");
    state::expect(&env, "final", &churn.expected(2));
}

fn wait_for_active(env: &Env, status: &dyn Fn(&Env, usize) -> String) -> usize {
    let mut found = None;
    assert!(
        wait_until(WAIT, || {
            found = (0..2).find(|&i| status(env, i) == "Status: active\n");
            found.is_some()
        }),
        "no active ovn-ic in az1"
    );
    found.unwrap()
}

fn cluster<'e>(env: &'e mut Env, which: &str) -> &'e mut common::Cluster {
    match which {
        "ic-sb" => env.isb.cluster_mut(),
        _ => env.azs[0].sb.cluster_mut(),
    }
}

/// IC-SB and AZ1's SB as 3-member raft clusters, probe interval 1 s. For each: changes, then
/// `kill -9` of the leader while the daemons converge; then changes with the (new) leader hung
/// by SIGSTOP, which only the inactivity probe can detect. The daemons move to the new leader
/// each time; in the end every row exists exactly once and none was ever deleted.
#[test]
fn raft_leader_killed_and_leader_hung() {
    let _g = serial();
    let mut env = Env::start(Opts {
        azs: 2,
        ics_per_az: 1,
        isb_raft: true,
        sb0_raft: true,
        probe_ms: Some(1000),
    });
    env.base_topology();
    let mut churn = Churn::new(2);
    state::expect(&env, "initial", &churn.expected(2));
    let watches = watch_all(&env);
    for which in ["ic-sb", "az1-sb"] {
        churn.route(&env, 0);
        churn.route(&env, 1);
        churn.ts(&env);
        let c = cluster(&mut env, which);
        let leader = c.leader().expect("a raft leader");
        c.kill(leader);
        c.wait_leader(WAIT).expect("a new leader");
        state::expect(&env, &format!("{which} leader killed"), &churn.expected(2));
        let c = cluster(&mut env, which);
        c.restart(leader).expect("restarting the old leader");
        c.wait_joined(WAIT).expect("the old leader rejoins");
    }
    for which in ["ic-sb", "az1-sb"] {
        let c = cluster(&mut env, which);
        let leader = c.leader().expect("a raft leader");
        c.stop(leader).unwrap();
        c.wait_leader(WAIT).expect("a new leader");
        churn.route(&env, 0);
        churn.route(&env, 1);
        churn.ts(&env);
        state::expect(&env, &format!("{which} leader hung"), &churn.expected(2));
        let c = cluster(&mut env, which);
        c.cont(leader).unwrap();
        c.wait_joined(WAIT).expect("the hung member rejoins");
    }
    state::expect(&env, "final", &churn.expected(2));
    assert_nothing_lost(&watches, "raft faults");
    for az in 0..2 {
        assert!(env.ics[az][0].as_mut().unwrap().is_running());
        // Connected, then moved after the kill and after the hang.
        let log = env.ic_logs(az);
        assert!(count(&log, "OVN ISB IDL reconnected") >= 3, "{log}");
    }
    let log = env.ic_logs(0);
    assert!(count(&log, "OVN SB IDL reconnected") >= 3, "{log}");
}

/// Counts the lines of `log` containing `needle`.
fn count(log: &str, needle: &str) -> usize {
    log.lines().filter(|l| l.contains(needle)).count()
}

/// `nbctl` arguments attaching router `lr` (created, learning nothing) to `ts1` through LRP
/// `lrp` (`mac`, `net`) and a router-type LSP named `lsp`.
fn clash_router(lr: &str, lrp: &str, mac: &str, net: &str, lsp: &str) -> Vec<String> {
    let rp = format!("router-port={lrp}");
    [
        "lr-add",
        lr,
        "--",
        "set",
        "Logical_Router",
        lr,
        "options:ic-route-deny-learn=\"0.0.0.0/0\"",
        "--",
        "lrp-add",
        lr,
        lrp,
        mac,
        net,
        "--",
        "lsp-add",
        "ts1",
        lsp,
        "--",
        "lsp-set-type",
        lsp,
        "router",
        "--",
        "lsp-set-addresses",
        lsp,
        "router",
        "--",
        "lsp-set-options",
        lsp,
        &rp,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Two AZs that both have a port `dup` on `ts1` (AZ1's is published first, while AZ2's daemon
/// is down; AZ2's own is added before it comes back). AZ2 skips creating its binding with a
/// rate-limited warning and leaves its own port alone (no remote image of AZ1's port can take
/// the name); everything else converges and no transaction keeps failing.
#[test]
fn clashing_port_names_skip_the_offending_rows_only() {
    let _g = serial();
    let mut env = Env::start(Opts {
        azs: 2,
        ics_per_az: 1,
        ..Opts::default()
    });
    env.base_topology();
    let mut churn = Churn::new(2);
    state::expect(&env, "initial", &churn.expected(2));
    let watches = watch_all(&env);

    if let Some(mut d) = env.ics[1][0].take() {
        d.kill();
    }
    let args = clash_router(
        "lr1b",
        "lr1b-ts1",
        "aa:aa:aa:aa:aa:11",
        "169.254.100.11/24",
        "dup",
    );
    env.nbctl(0, &args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(
        wait_until(WAIT, || env.isb.dump().is_ok_and(|db| common::rows(
            &db,
            "Port_Binding"
        )
        .iter()
        .any(|r| state::s(r, "logical_port") == "dup"))),
        "AZ1 never published dup"
    );
    let args = clash_router(
        "lr2b",
        "lr2b-ts1",
        "aa:aa:aa:aa:aa:12",
        "169.254.100.12/24",
        "dup",
    );
    env.nbctl(1, &args.iter().map(String::as_str).collect::<Vec<_>>());
    env.ics[1][0] = Some(env.start_ic(1).unwrap());
    // Changes elsewhere still flow.
    churn.route(&env, 0);
    churn.route(&env, 1);
    churn.ts(&env);

    let mut want = churn.expected(2);
    let mut add = |sec: &str, line: &str| {
        let v = want.get_mut(sec).unwrap();
        v.push(line.to_string());
        v.sort();
    };
    add(
        "isb",
        "PB ts1 dup az=az1 addr=aa:aa:aa:aa:aa:11 169.254.100.11/24 gw=",
    );
    add("nb:az1", "LSP ts1 dup type=router addrs=router tnl=isb");
    // AZ2's own port: no binding, so no tunnel key from IC-SB.
    add("nb:az2", "LSP ts1 dup type=router addrs=router tnl=-");
    state::expect(&env, "clashing port names", &want);
    assert_nothing_lost(&watches, "clashing port names");

    // Idle for a while: no transaction keeps failing, the warnings stay rate-limited.
    let log = env.ic(1, 0).log_text();
    let failed = count(&log, "commit failed");
    std::thread::sleep(Duration::from_secs(4));
    let log = env.ic(1, 0).log_text();
    assert_eq!(count(&log, "commit failed"), failed, "{log}");
    assert!(failed <= 2, "{log}");
    let warning = "Port binding dup already exists in IC-SB (another availability zone or \
                   transit datapath); not creating it for ts1.";
    let n = count(&log, warning);
    assert!((1..=3).contains(&n), "{n} times `{warning}`:\n{log}");
    assert!(!env.ic_logs(0).contains("commit failed"));
    state::expect(&env, "still converged", &want);
}

/// The IPv4 addresses of every LRP of router `lr` in an NB dump.
fn own_addresses(nb: &serde_json::Value, lr: &serde_json::Value) -> Vec<String> {
    state::set(lr, "ports")
        .iter()
        .filter_map(|u| {
            common::rows(nb, "Logical_Router_Port")
                .iter()
                .find(|p| state::s(p, "_uuid") == *u)
        })
        .flat_map(|p| state::set(p, "networks"))
        .filter_map(|n| n.split('/').next().map(str::to_string))
        .collect()
}

/// AZ2's router `lr2c` uses AZ1 `lr1`'s address 169.254.100.1 on `ts1`. Required: no router
/// learns a route whose next hop is one of its own addresses (a self-loop), and the clash is
/// reported with a warning.
#[test]
fn clashing_router_port_addresses_learn_no_self_loops() {
    let _g = serial();
    let env = Env::start(Opts {
        azs: 2,
        ics_per_az: 1,
        ..Opts::default()
    });
    env.base_topology();
    let churn = Churn::new(2);
    state::expect(&env, "initial", &churn.expected(2));
    env.nbctl(1, &["lr-add", "lr2c"]);
    env.attach(
        1,
        "lr2c",
        "ts1",
        "lr2c-ts1",
        "aa:aa:aa:aa:aa:21",
        "169.254.100.1/24",
    );
    env.nbctl(
        1,
        &[
            "lrp-add",
            "lr2c",
            "lr2c-int",
            "00:00:00:00:21:01",
            "192.168.21.1/24",
        ],
    );
    // Converged: lr2c's binding and its connected route are in IC-SB.
    assert!(wait_until(WAIT, || state::read(&env)
        .is_ok_and(|st| st["isb"]
            .iter()
            .any(|l| l.starts_with("RT ts1 az2 192.168.21.1/24")))));
    std::thread::sleep(Duration::from_secs(3));
    let mut loops = Vec::new();
    for az in &env.azs {
        let nb = az.nb.dump().unwrap();
        for lr in common::rows(&nb, "Logical_Router") {
            let own = own_addresses(&nb, lr);
            for sr in state::set(lr, "static_routes") {
                let Some(r) = common::rows(&nb, "Logical_Router_Static_Route")
                    .iter()
                    .find(|r| state::s(r, "_uuid") == sr)
                else {
                    continue;
                };
                if state::key(r, "external_ids", "ic-learned-route").is_some()
                    && own.contains(&state::s(r, "nexthop"))
                {
                    loops.push(format!(
                        "{}: {} {} -> {}",
                        az.name,
                        state::s(lr, "name"),
                        state::s(r, "ip_prefix"),
                        state::s(r, "nexthop")
                    ));
                }
            }
        }
    }
    assert!(
        loops.is_empty(),
        "routes learned via the router's own address: {loops:#?}"
    );
    assert!(env.ic_logs(0).contains("WARN") || env.ic_logs(1).contains("WARN"));
}
