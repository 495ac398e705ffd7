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

use env::{Env, Opts};
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

fn assert_nothing_lost(watches: &[Watch], what: &str) {
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
