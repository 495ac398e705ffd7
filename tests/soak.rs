//! Soak test (issue "Soak", not run in CI):
//!
//! ```text
//! SOAK_MINUTES=30 SOAK_RESTART_SECS=60 cargo test --release --test soak -- --ignored --nocapture
//! ```
//!
//! Four AZs (NB+SB+northd+our ovn-ic each), two transit switches with a router per AZ on each.
//! The topology is bounded so that "RSS stays flat" means something: every AZ has a space of
//! [`ROUTE_SLOTS`] static-route prefixes and [`PORT_SLOTS`] extra router ports per transit
//! switch; the setup fills half of each space at random, and every random change afterwards
//! toggles one random slot (adds it if absent, removes it if present), so the sizes oscillate
//! around half of the spaces for the whole run. Changes go on for `SOAK_MINUTES` (default 30)
//! while every `SOAK_RESTART_SECS` (default 60) one database server (IC-NB, IC-SB, an AZ's NB
//! or SB) is killed with SIGKILL and restarted; the restarts go through all ten databases in
//! cycles of random order. Every `SOAK_COMPACT_SECS` (default
//! 120) every database file over 10 MB is compacted (`ovsdb-server/compact`), as the server
//! itself would do were it not restarted all the time.
//!
//! Resources: every 30 s it samples each ovn-ic's RSS and open file descriptors (printed as a
//! table at the end). The warm-up lasts until every database has been restarted once (one
//! cycle, at twice the restart rate) and at least `SOAK_WARMUP_SECS` (default 300 s, at most
//! a third of the run); then the changes pause, the daemons settle and reconnect, and a
//! reference sample is taken. At the end (quiet again) each daemon's RSS must be at most 1.2
//! times its reference and its open file descriptors equal to the reference.
//!
//! At the end it also asserts:
//! * every AZ learned exactly the routes the other AZs still have (the model of the changes
//!   that succeeded), and the remote ports match;
//! * each daemon is active, and exactly one holds the IC-SB lock (no lock lost for good);
//! * a forced full recompute (`inc-engine/recompute`) in every daemon changes no row anywhere
//!   (the incrementally maintained state equals a fresh recompute).
//!
//! `SOAK_SEED` picks the random sequence (printed).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::lab::{learned, table_rows, Lab, LAB_WAIT};
use common::{wait_for, wait_until, Server};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;

const AZS: usize = 4;
const TSS: [&str; 2] = ["ts1", "ts2"];
/// Static-route prefixes per AZ an operator may add (`10.N.J.0/24`); about half are present.
const ROUTE_SLOTS: usize = 120;
/// Extra router ports per AZ and transit switch (`tspN-TS-J`); about half are present.
const PORT_SLOTS: u8 = 8;
/// Allowed RSS growth from the post-warm-up reference to the end.
const RSS_FACTOR: f64 = 1.2;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// RSS in kB and number of open file descriptors of a process.
fn rss_fds(pid: u32) -> (u64, usize) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0);
    (rss, fds)
}

/// The server `i` of the lab's database list: 0 IC-NB, 1 IC-SB, then NB/SB per AZ.
fn server(lab: &mut Lab, i: usize) -> (&mut Server, String) {
    match i {
        0 => (&mut lab.ic.ic_nb, "IC-NB".into()),
        1 => (&mut lab.ic.ic_sb, "IC-SB".into()),
        n => {
            let az = (n - 2) / 2;
            if n % 2 == 0 {
                (&mut lab.azs[az].nb, format!("az{} NB", az + 1))
            } else {
                (&mut lab.azs[az].sb, format!("az{} SB", az + 1))
            }
        }
    }
}

/// What every ovn-ic-owned table looks like, for the before/after-recompute comparison.
fn snapshot(lab: &Lab) -> Vec<(String, Vec<String>)> {
    let mut v = vec![];
    let mut add = |name: String, s: &Server, tables: &[&str]| {
        for t in tables {
            let mut rows: Vec<String> = table_rows(s, t)
                .into_iter()
                .map(|mut r| {
                    if let Value::Object(o) = &mut r {
                        o.remove("_version");
                    }
                    r.to_string()
                })
                .collect();
            rows.sort();
            v.push((format!("{name} {t}"), rows));
        }
    };
    add(
        "IC-SB".into(),
        &lab.ic.ic_sb,
        &[
            "Availability_Zone",
            "Gateway",
            "Encap",
            "Datapath_Binding",
            "Port_Binding",
            "Route",
            "Address_Set",
        ],
    );
    for (i, az) in lab.azs.iter().enumerate() {
        add(
            format!("az{} NB", i + 1),
            &az.nb,
            &[
                "Logical_Switch",
                "Logical_Switch_Port",
                "Logical_Router",
                "Logical_Router_Port",
                "Logical_Router_Static_Route",
                "Address_Set",
            ],
        );
        add(format!("az{} SB", i + 1), &az.sb, &["Chassis", "Encap"]);
    }
    v
}

/// The route slot `j` of AZ `az` (0-based): its prefix and the nbctl arguments that add it.
fn route_change(az: usize, j: usize) -> (String, Vec<String>) {
    let n = az + 1;
    let p = format!("10.{n}.{j}.0/24");
    let add = vec![
        "lr-route-add".to_string(),
        format!("lr{n}"),
        p.clone(),
        format!("169.254.100.{}", 200 + n),
    ];
    (p, add)
}

/// The router-port slot `j` of AZ `az` on transit switch `TSS[k]`: its name and the nbctl
/// arguments that add it.
fn port_change(az: usize, k: usize, j: u8) -> (String, Vec<String>) {
    let n = az + 1;
    let name = format!("tsp{n}-{}-{j}", TSS[k]);
    let host = 10 + 20 * n as u8 + j;
    let add = Lab::router_port_args(az, TSS[k], &name, 100 + k as u8, host);
    (name, add)
}

fn shuffle<T>(v: &mut [T], rng: &mut StdRng) {
    for i in (1..v.len()).rev() {
        v.swap(i, rng.gen_range(0..=i));
    }
}

/// How long the daemons may take to settle and reconnect: on the loaded machine a daemon in
/// the middle of a full recompute does not answer `ovs-appctl` (5 s timeout) for a while.
const QUIET_WAIT: Duration = Duration::from_secs(300);

/// utime + stime of a process in clock ticks (`/proc/PID/stat` fields 14 and 15).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rfind(')').map_or("", |i| &stat[i + 1..]);
    let f: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|v| v.parse().ok())
        .collect();
    f.iter().sum()
}

/// Daemons not answering `ovs-appctl` (its 5 s timeout) during the quiet phases: per
/// episode, the AZ, how long it went unanswered and the CPU time the daemon used meanwhile
/// (busy computing, not hung, when that is most of the wall time it got).
#[derive(Default)]
struct Stalls(Vec<(usize, Duration, Duration)>);

impl Stalls {
    /// Polls every daemon once; tracks when each stopped answering.
    fn poll(
        &mut self,
        lab: &Lab,
        open: &mut [Option<(Instant, u64)>],
    ) -> Option<Vec<BTreeMap<String, u64>>> {
        let mut all = Some(vec![]);
        for (i, d) in lab.ics.iter().enumerate() {
            match common::lab::try_recomputes(d) {
                Some(c) => {
                    if let Some((since, ticks)) = open[i].take() {
                        let cpu = cpu_ticks(d.pid()).saturating_sub(ticks) * 10;
                        self.0
                            .push((i, since.elapsed(), Duration::from_millis(cpu)));
                    }
                    if let Some(v) = all.as_mut() {
                        v.push(c);
                    }
                }
                None => {
                    if open[i].is_none() {
                        // It was asked 5 s ago.
                        open[i] =
                            Some((Instant::now() - Duration::from_secs(5), cpu_ticks(d.pid())));
                    }
                    all = None;
                }
            }
        }
        all
    }
}

/// Waits until the daemons are settled (recompute counters still), every daemon's sessions
/// to all its databases are connected (`ovn_ic_db_connected` in `metrics/show`), and their open
/// file descriptor counts are the same in two reads a second apart; the moment to compare
/// resources at. A daemon that does not answer `ovs-appctl` for a while (busy) is waited for,
/// and the stall recorded.
fn quiesce(lab: &Lab, stalls: &mut Stalls) {
    let mut open: Vec<Option<(Instant, u64)>> = vec![None; lab.ics.len()];
    let mut last = None;
    let settled = wait_until(QUIET_WAIT, || {
        std::thread::sleep(Duration::from_millis(1500));
        let now = stalls.poll(lab, &mut open);
        let same = now.is_some() && now == last;
        last = now;
        same
    });
    if !settled {
        let cpu: Vec<u64> = lab.ics.iter().map(|d| cpu_ticks(d.pid())).collect();
        panic!(
            "the daemons did not settle in {QUIET_WAIT:?}: last counters {last:?}, not \
             answering since {open:?}, CPU ticks now {cpu:?}"
        );
    }
    let connected = |d: &common::Daemon| {
        d.appctl(&["metrics/show"]).is_ok_and(|m| {
            let lines: Vec<&str> = m
                .lines()
                .filter(|l| l.starts_with("ovn_ic_db_connected{"))
                .collect();
            !lines.is_empty() && lines.iter().all(|l| l.ends_with(" 1"))
        })
    };
    let fds = || -> Vec<usize> { lab.ics.iter().map(|d| rss_fds(d.pid()).1).collect() };
    let ok = wait_until(QUIET_WAIT, || {
        if !lab.ics.iter().all(connected) {
            return false;
        }
        let a = fds();
        std::thread::sleep(Duration::from_secs(1));
        a == fds()
    });
    assert!(
        ok,
        "the daemons did not all reconnect with a stable fd count"
    );
}

/// One resource sample: seconds since the start, (RSS kB, open fds) per daemon.
#[derive(Clone, Debug)]
struct Sample {
    secs: u64,
    per_daemon: Vec<(u64, usize)>,
    note: &'static str,
}

fn sample(start: Instant, pids: &[u32], note: &'static str) -> Sample {
    Sample {
        secs: start.elapsed().as_secs(),
        per_daemon: pids.iter().map(|&p| rss_fds(p)).collect(),
        note,
    }
}

fn print_table(samples: &[Sample]) {
    let mut head = format!("{:>6}", "t (s)");
    for i in 0..AZS {
        head.push_str(&format!(" | az{} RSS MB  fds", i + 1));
    }
    println!("soak: resource samples (our ovn-ic per AZ)\n{head}");
    for s in samples {
        let mut line = format!("{:>6}", s.secs);
        for (rss, fds) in &s.per_daemon {
            line.push_str(&format!(" | {:>10.1} {:>4}", *rss as f64 / 1024.0, fds));
        }
        if !s.note.is_empty() {
            line.push_str(&format!("   {}", s.note));
        }
        println!("{line}");
    }
}

#[test]
#[ignore = "soak: run by hand, see the module doc"]
fn soak_random_changes_with_database_restarts() {
    let minutes = env_u64("SOAK_MINUTES", 30);
    let restart_every = Duration::from_secs(env_u64("SOAK_RESTART_SECS", 60));
    let seed = env_u64("SOAK_SEED", rand::random::<u32>() as u64);
    println!("soak: {minutes} min, restart every {restart_every:?}, SOAK_SEED={seed}");
    let mut rng = StdRng::seed_from_u64(seed);

    let mut lab = Lab::start(AZS);
    for (k, ts) in TSS.iter().enumerate() {
        lab.add_ts(ts);
        for az in 0..AZS {
            lab.attach_router(az, ts, 100 + k as u8);
        }
    }
    // The model: static routes per AZ (prefix → router), TS ports per AZ.
    let mut routes: Vec<BTreeSet<String>> = vec![BTreeSet::new(); AZS];
    let mut vifs: Vec<BTreeSet<String>> = vec![BTreeSet::new(); AZS];
    let pids: Vec<u32> = lab.ics.iter().map(|d| d.pid()).collect();

    // Fill half of every slot space at once (one nbctl call per AZ).
    for az in 0..AZS {
        let mut args: Vec<String> = vec![];
        let mut slots: Vec<usize> = (0..ROUTE_SLOTS).collect();
        shuffle(&mut slots, &mut rng);
        for &j in &slots[..ROUTE_SLOTS / 2] {
            let (p, add) = route_change(az, j);
            routes[az].insert(p);
            args.extend(add);
            args.push("--".into());
        }
        let mut ports: Vec<(usize, u8)> = (0..TSS.len())
            .flat_map(|k| (0..PORT_SLOTS).map(move |j| (k, j)))
            .collect();
        shuffle(&mut ports, &mut rng);
        for &(k, j) in &ports[..ports.len() / 2] {
            let (name, add) = port_change(az, k, j);
            vifs[az].insert(name);
            args.extend(add);
            args.push("--".into());
        }
        args.pop();
        lab.nbctl(az, &args.iter().map(String::as_str).collect::<Vec<_>>());
    }
    println!(
        "soak: filled {} routes and {} router ports per AZ",
        ROUTE_SLOTS / 2,
        TSS.len() * PORT_SLOTS as usize / 2
    );

    let start = Instant::now();
    let deadline = start + Duration::from_secs(minutes * 60);
    let warmup = Duration::from_secs(env_u64("SOAK_WARMUP_SECS", 300).min(minutes * 20));
    let compact_every = Duration::from_secs(env_u64("SOAK_COMPACT_SECS", 120));
    let mut reference: Option<Sample> = None;
    // Restarts go through the databases in cycles, each a random order of all of them; during
    // the warm-up twice as often, so that the reference comes after every database (the IC-SB
    // among them, whose restart makes every daemon read the whole ISB again) was restarted.
    let mut cycle: Vec<usize> = vec![];
    let mut first_cycle_done = false;
    let mut next_restart = start + restart_every / 2;
    let mut next_compact = start + compact_every;
    let mut compactions = 0u64;
    let mut stalls = Stalls::default();
    let mut next_sample = start;
    let mut samples: Vec<Sample> = vec![];
    let (mut changes, mut failed_changes, mut restarts) = (0u64, 0u64, 0u64);
    let mut slowest_restart = Duration::ZERO;
    while Instant::now() < deadline {
        let az = rng.gen_range(0..AZS);
        // A change may fail (nbctl timing out on the loaded machine, a database just
        // restarted); the model only follows the changes that succeeded.
        let ok = |args: &[String], lab: &Lab| -> bool {
            common::run(
                "ovn-nbctl",
                [
                    vec![
                        format!("--db={}", lab.azs[az].nb.remote()),
                        "--timeout=10".into(),
                    ],
                    args.to_vec(),
                ]
                .concat(),
                Duration::from_secs(20),
            )
            .is_ok_and(|o| o.status.success())
        };
        let done = if rng.gen_range(0..10) < 6 {
            let (p, add) = route_change(az, rng.gen_range(0..ROUTE_SLOTS));
            if routes[az].contains(&p) {
                let del = [
                    "--if-exists".to_string(),
                    "lr-route-del".into(),
                    format!("lr{}", az + 1),
                    p.clone(),
                ];
                ok(&del, &lab) && routes[az].remove(&p)
            } else {
                ok(&add, &lab) && routes[az].insert(p)
            }
        } else {
            let k = rng.gen_range(0..TSS.len());
            let (name, add) = port_change(az, k, rng.gen_range(0..PORT_SLOTS));
            if vifs[az].contains(&name) {
                ok(&Lab::del_router_port_args(&name), &lab) && vifs[az].remove(&name)
            } else {
                ok(&add, &lab) && vifs[az].insert(name)
            }
        };
        changes += 1;
        failed_changes += u64::from(!done);
        std::thread::sleep(Duration::from_millis(rng.gen_range(50..400)));

        let now = Instant::now();
        if now >= next_restart {
            if cycle.is_empty() {
                cycle = (0..2 + 2 * AZS).collect();
                shuffle(&mut cycle, &mut rng);
            }
            let i = cycle.pop().expect("a non-empty cycle");
            first_cycle_done |= cycle.is_empty();
            let (s, name) = server(&mut lab, i);
            let size = std::fs::metadata(s.db_path()).map(|m| m.len()).unwrap_or(0);
            s.kill();
            std::thread::sleep(Duration::from_millis(rng.gen_range(100..3000)));
            let t = Instant::now();
            s.restart().expect("restarting a database");
            let took = t.elapsed();
            slowest_restart = slowest_restart.max(took);
            println!(
                "soak: {:>5}s kill -9 + restart {name} ({:.1} MB file): listening after {took:.1?}",
                start.elapsed().as_secs(),
                size as f64 / 1e6
            );
            restarts += 1;
            let period = if reference.is_none() {
                restart_every / 2
            } else {
                restart_every
            };
            next_restart = Instant::now() + period;
        }
        if now >= next_compact {
            // ovsdb-server compacts a standalone database itself only 10 to 20 minutes after it
            // started, which the restarts here keep postponing, while northd grows each SB's
            // file by megabytes a minute; an ever longer file would make restarts ever slower.
            // So do what the server would do: compact every file over 10 MB.
            for i in 0..2 + 2 * AZS {
                let (s, name) = server(&mut lab, i);
                let size = std::fs::metadata(s.db_path()).map(|m| m.len()).unwrap_or(0);
                if size > 10_000_000 {
                    match s.appctl(&["ovsdb-server/compact"]) {
                        Ok(_) => compactions += 1,
                        Err(e) => println!("soak: compacting {name}: {e:#}"),
                    }
                    let after = std::fs::metadata(s.db_path()).map(|m| m.len()).unwrap_or(0);
                    println!(
                        "soak: {:>5}s compacted {name}: {:.1} MB -> {:.1} MB",
                        start.elapsed().as_secs(),
                        size as f64 / 1e6,
                        after as f64 / 1e6
                    );
                }
            }
            next_compact = Instant::now() + compact_every;
        }
        if reference.is_none() && first_cycle_done && now >= start + warmup {
            // The reference: changes paused, every database up and connected, the daemons
            // settled.
            quiesce(&lab, &mut stalls);
            let s = sample(start, &pids, "reference (warm-up over, settled)");
            println!("soak: {:>5}s {} {:?}", s.secs, s.note, s.per_daemon);
            samples.push(s.clone());
            reference = Some(s);
            next_sample = Instant::now() + Duration::from_secs(30);
        } else if now >= next_sample {
            let s = sample(start, &pids, "");
            println!("soak: {:>5}s rss/fds {:?}", s.secs, s.per_daemon);
            samples.push(s);
            next_sample = now + Duration::from_secs(30);
        }
    }
    println!(
        "soak: {changes} changes ({failed_changes} failed), \
         {restarts} database restarts (slowest {slowest_restart:.1?}), \
         {compactions} compactions; \
         end: {:?} routes, {:?} router ports per AZ",
        routes.iter().map(BTreeSet::len).collect::<Vec<_>>(),
        vifs.iter().map(BTreeSet::len).collect::<Vec<_>>()
    );

    // Convergence: every AZ learned exactly the routes of the others.
    for az in 0..AZS {
        let want: Vec<String> = (0..AZS)
            .filter(|&o| o != az)
            .flat_map(|o| routes[o].iter().cloned())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        // Each prefix is learned once per router port it is advertised through.
        let got = |lab: &Lab| {
            let mut l = learned(&lab.azs[az].nb);
            l.dedup();
            l
        };
        let ok = wait_until(QUIET_WAIT, || got(&lab) == want);
        if !ok {
            let have = got(&lab);
            let isb: BTreeSet<String> = table_rows(&lab.ic.ic_sb, "Route")
                .iter()
                .filter_map(|r| r["ip_prefix"].as_str().map(String::from))
                .collect();
            let missing: Vec<&String> = want.iter().filter(|p| !have.contains(p)).collect();
            let extra: Vec<&String> = have.iter().filter(|p| !want.contains(p)).collect();
            let in_isb: Vec<&&String> = missing.iter().filter(|p| isb.contains(**p)).collect();
            let in_owner_nb: Vec<&&String> = missing
                .iter()
                .filter(|p| {
                    (0..AZS).any(|o| {
                        table_rows(&lab.azs[o].nb, "Logical_Router_Static_Route")
                            .iter()
                            .any(|r| r["ip_prefix"] == p.as_str())
                    })
                })
                .collect();
            for d in &lab.ics {
                d.appctl(&["inc-engine/recompute"]).ok();
            }
            let fixed = wait_until(LAB_WAIT, || got(&lab) == want);
            panic!(
                "az{} missing {missing:?} (in the ISB: {in_isb:?}; in an NB: {in_owner_nb:?}), \
                 extra {extra:?}; \
                 a forced recompute {} it",
                az + 1,
                if fixed { "fixed" } else { "did not fix" }
            );
        }
    }
    let remote_vifs: usize = table_rows(&lab.azs[0].nb, "Logical_Switch_Port")
        .iter()
        .filter(|r| {
            r["type"] == "remote" && r["name"].as_str().is_some_and(|n| n.starts_with("tsp"))
        })
        .count();
    let want_remote: usize = vifs.iter().skip(1).map(|v| v.len()).sum();
    assert!(
        wait_until(LAB_WAIT, || {
            table_rows(&lab.azs[0].nb, "Logical_Switch_Port")
                .iter()
                .filter(|r| {
                    r["type"] == "remote"
                        && r["name"].as_str().is_some_and(|n| n.starts_with("tsp"))
                })
                .count()
                == want_remote
        }),
        "az1 has {remote_vifs} remote tsp ports, want {want_remote}"
    );

    // Locks: every daemon active, the ISB lock held by exactly one.
    quiesce(&lab, &mut stalls);
    let mut isb_holders = 0;
    for d in &lab.ics {
        let s = wait_for(QUIET_WAIT, || d.appctl(&["status"]).ok()).unwrap_or_default();
        assert_eq!(s.trim(), "Status: active", "{}", d.log_text());
        let log = d.log_text();
        let last_isb = log
            .lines()
            .rfind(|l| l.contains("OVN ISB lock acquired") || l.contains("OVN ISB lock lost"))
            .unwrap_or("");
        isb_holders += usize::from(last_isb.contains("acquired"));
    }
    assert_eq!(
        isb_holders, 1,
        "daemons whose last IC-SB lock event is 'acquired'"
    );

    // Resources: flat after warm-up.
    let end = sample(start, &pids, "end (settled)");
    samples.push(end.clone());
    print_table(&samples);
    for (az, wall, cpu) in &stalls.0 {
        println!(
            "soak: az{} ovn-ic did not answer ovs-appctl for {wall:.1?} (used {cpu:.1?} of CPU meanwhile)",
            az + 1
        );
    }
    let reference = reference.expect("the run ended before its warm-up did");
    for (i, ((rss0, fds0), (rss1, fds1))) in
        reference.per_daemon.iter().zip(&end.per_daemon).enumerate()
    {
        assert_eq!(
            fds0,
            fds1,
            "az{} open fds: {fds0} after warm-up, {fds1} at the end",
            i + 1
        );
        assert!(
            *rss1 as f64 <= *rss0 as f64 * RSS_FACTOR,
            "az{} RSS grew from {rss0} kB after warm-up to {rss1} kB at the end (limit x{RSS_FACTOR})",
            i + 1
        );
    }

    // A fresh full recompute changes nothing.
    let before = snapshot(&lab);
    for (i, d) in lab.ics.iter().enumerate() {
        let count = |c: Option<BTreeMap<String, u64>>| c.map(|c| c.values().sum::<u64>());
        let n0 = count(wait_for(QUIET_WAIT, || common::lab::try_recomputes(d)));
        // A reply lost to the appctl timeout (a busy daemon) does not mean the command was;
        // the counters say whether it ran.
        let ran = (0..3).any(|_| {
            let _ = d.appctl(&["inc-engine/recompute"]);
            wait_until(QUIET_WAIT / 3, || {
                count(common::lab::try_recomputes(d)) > n0
            })
        });
        assert!(ran, "az{}: inc-engine/recompute did not run", i + 1);
    }
    quiesce(&lab, &mut stalls);
    std::thread::sleep(Duration::from_secs(2));
    let after = snapshot(&lab);
    let before: BTreeMap<_, _> = before.into_iter().collect();
    for (what, rows) in after {
        assert_eq!(
            before.get(&what),
            Some(&rows),
            "{what} changed after a forced recompute"
        );
    }
}
