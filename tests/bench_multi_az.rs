//! The multi-AZ benchmark (issue 7): route advertisement and learning at scale, this crate's
//! `ovn-ic` beside Debian's C `ovn-ic` 23.03 on the same topology.
//!
//!     cargo build --release
//!     cargo test --release --test bench_multi_az -- --ignored --nocapture
//!
//! Topology (see `bench_multi_az/world.rs`): A AZs (NB + SB `ovsdb-server` and `ovn-northd`
//! each, Debian's), IC-NB and IC-SB, T transit switches, one router per AZ on every transit
//! switch with a bound gateway chassis, R static routes per AZ, `ic-route-adv` and
//! `ic-route-learn` on; Debian's 23.03 schemas (`/usr/share/ovn`) for both daemons.
//!
//! Measured for each daemon:
//! * cold convergence: from starting the daemons until every AZ has learned every other AZ's
//!   routes ((A-1)·R·T learned routes per AZ);
//! * per change (N changes, alternately adding a route in AZ1 and removing it again, after the
//!   `ovn-ic`s and the `ovn-northd`s have stopped using CPU after the cold start): the
//!   latency until every other AZ has learned it / dropped it (p50, p99), seen through this
//!   crate's OVSDB client monitoring every NB; the CPU seconds of all `ovn-ic` processes
//!   (`/proc/PID/stat` utime+stime) over the N changes / N; the `transact` requests IC-SB
//!   received (from its `-vjsonrpc:file:dbg` log), their bytes and how many changed nothing;
//! * idle CPU per second (no change for `BENCH_IDLE_SECS`, default 10) and peak RSS
//!   (`VmHWM`) of the `ovn-ic`s, max and sum.
//!
//! Environment: `BENCH_AZS` (6), `BENCH_TS` (2), `BENCH_ROUTES` (500), `BENCH_CHANGES` (20),
//! `BENCH_ONLY=ours|c`, `BENCH_CURVE="100,500,1000,2000"` (per-change figures at several R, one
//! row per R), `BENCH_IDLE_SECS`, `BENCH_TIMEOUT` (seconds per wait, 900), `BENCH_NORTHD=stop`
//! (stop the `ovn-northd`s once the transit ports are bound: needed at 10 × 10 × 1000, whose
//! northds and SB servers need ~17 GB together), `OVN_IC_BIN` (our binary, default the one
//! cargo built for this test). Prints tables; asserts only that each
//! run completes (every wait reached, no daemon died).
//!
//! `BENCH_WARM=ours` (for sizes at which the C daemon's own cold start does not finish, like
//! 10 × 10 × 1000 on two cores): the C run converges the topology with our daemons first, stops
//! them and starts the C daemons on that state (a drop-in replacement leaves the databases as
//! the C daemon would). Its "cold convergence" is then not measured; instead the table shows
//! how long the C daemons took to go quiet on the converged state ("warm start") and what they
//! wrote to IC-SB meanwhile (nothing, if the states agree). The changes are measured as usual.
//!
//! The non-ignored tests at the end check the log parser and the helpers the figures rest on.

mod common;

#[path = "bench_multi_az/measure.rs"]
mod measure;
#[path = "bench_multi_az/watch.rs"]
mod watch;
#[path = "bench_multi_az/world.rs"]
mod world;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use measure::{
    cpu_seconds, cpu_seconds_exact, file_len, peak_rss_kb, percentile, read_window, transact_stats,
    TxnStats,
};
use watch::Watch;
use world::{route_prefix, router, Size, World, NEXTHOP};

/// Which `ovn-ic`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Ours,
    C,
}

impl Side {
    fn label(self) -> &'static str {
        match self {
            Side::Ours => "ours",
            Side::C => "C 23.03",
        }
    }

    fn bin(self) -> PathBuf {
        match self {
            Side::Ours => match std::env::var_os("OVN_IC_BIN") {
                Some(p) if !p.is_empty() => PathBuf::from(p),
                _ => common::our_ovn_ic(),
            },
            Side::C => PathBuf::from(common::C_OVN_IC),
        }
    }
}

/// Knobs from the environment.
#[derive(Debug, Clone)]
struct Config {
    size: Size,
    changes: usize,
    only: Option<Side>,
    curve: Option<Vec<usize>>,
    idle: Duration,
    timeout: Duration,
    /// `BENCH_NORTHD=stop`: stop the northds once the topology is bound.
    stop_northds: bool,
    /// `BENCH_WARM=ours`: the C daemons start on the state our daemons converged to.
    warm_c: bool,
}

fn env_usize(name: &str, default: usize) -> Result<usize> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse()
            .with_context(|| format!("{name}={v:?} is not a number")),
        _ => Ok(default),
    }
}

impl Config {
    fn from_env() -> Result<Config> {
        let size = Size {
            azs: env_usize("BENCH_AZS", 6)?,
            ts: env_usize("BENCH_TS", 2)?,
            routes: env_usize("BENCH_ROUTES", 500)?,
        };
        let changes = env_usize("BENCH_CHANGES", 20)?;
        if changes == 0 {
            bail!("BENCH_CHANGES must be at least 1");
        }
        let only = match std::env::var("BENCH_ONLY").ok().as_deref().map(str::trim) {
            None | Some("") => None,
            Some("ours") => Some(Side::Ours),
            Some("c" | "C") => Some(Side::C),
            Some(other) => bail!("BENCH_ONLY must be ours or c, not {other:?}"),
        };
        let curve = match std::env::var("BENCH_CURVE") {
            Ok(v) if !v.trim().is_empty() => Some(parse_curve(&v)?),
            _ => None,
        };
        let cfg = Config {
            size,
            changes,
            only,
            curve,
            idle: Duration::from_secs(env_usize("BENCH_IDLE_SECS", 10)? as u64),
            timeout: Duration::from_secs(env_usize("BENCH_TIMEOUT", 900)? as u64),
            stop_northds: match std::env::var("BENCH_NORTHD").ok().as_deref().map(str::trim) {
                None | Some("" | "run") => false,
                Some("stop") => true,
                Some(other) => bail!("BENCH_NORTHD must be run or stop, not {other:?}"),
            },
            warm_c: match std::env::var("BENCH_WARM").ok().as_deref().map(str::trim) {
                None | Some("" | "no") => false,
                Some("ours") => true,
                Some(other) => bail!("BENCH_WARM must be ours or no, not {other:?}"),
            },
        };
        for r in cfg.curve.clone().unwrap_or_else(|| vec![size.routes]) {
            Size { routes: r, ..size }.check(changes)?;
        }
        Ok(cfg)
    }

    fn sides(&self) -> Vec<Side> {
        match self.only {
            Some(s) => vec![s],
            None => vec![Side::Ours, Side::C],
        }
    }
}

/// `"100, 500,1000"` → `[100, 500, 1000]`.
fn parse_curve(v: &str) -> Result<Vec<usize>> {
    let rs: Vec<usize> = v
        .split(',')
        .map(|x| {
            x.trim()
                .parse()
                .with_context(|| format!("BENCH_CURVE entry {x:?} is not a number"))
        })
        .collect::<Result<_>>()?;
    if rs.is_empty() || rs.contains(&0) {
        bail!("BENCH_CURVE needs positive route counts, got {v:?}");
    }
    Ok(rs)
}

/// The figures of one run.
#[derive(Debug, Clone, Default)]
struct Figures {
    /// None when the run started warm (`BENCH_WARM=ours`).
    cold: Option<Duration>,
    /// `BENCH_WARM=ours`: from starting the C daemons on the converged state until they use no
    /// CPU.
    warm: Option<Duration>,
    /// `BENCH_WARM=ours`, when the C daemons were still busy with their first pass on the
    /// converged state at `BENCH_TIMEOUT`: how long they had run and the CPU seconds each had
    /// used (fewest, most). No change is measured then.
    warm_unfinished: Option<(Duration, f64, f64)>,
    /// IC-SB writes of the cold start, or of the warm start.
    cold_isb: TxnStats,
    latencies: Vec<Duration>,
    cpu_per_change: f64,
    isb: TxnStats,
    changes: usize,
    idle_cpu_per_s: Option<f64>,
    rss_max_kb: u64,
    rss_sum_kb: u64,
    /// Compute-node recomputes during the changes, summed over all daemons (ours only: the
    /// C daemon has no incremental engine).
    recomputes: Option<u64>,
}

impl Figures {
    fn secs(d: Option<Duration>) -> f64 {
        d.map_or(f64::NAN, |d| d.as_secs_f64())
    }
    fn p(&self, q: f64) -> f64 {
        percentile(&self.latencies, q).map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)
    }
    fn per_change(&self, x: u64) -> f64 {
        x as f64 / self.changes as f64
    }
}

/// Waits until the `ovn-ic`s stop using CPU: no tick for 300 ms (samples every 100 ms), at
/// most 5 s. The sessions are drained meanwhile.
async fn settle(watch: &mut Watch, pids: &[u32]) -> Result<()> {
    settle_within(watch, pids, Duration::from_secs(5)).await
}

/// [`settle`] for `pids` with at most `cap` of waiting.
async fn settle_within(watch: &mut Watch, pids: &[u32], cap: Duration) -> Result<()> {
    settle_quiet(watch, pids, cap, 3).await.map(drop)
}

/// Waits until `pids` use no CPU tick for `samples` × 100 ms, at most `cap`; whether they
/// went quiet.
async fn settle_quiet(
    watch: &mut Watch,
    pids: &[u32],
    cap: Duration,
    samples: u32,
) -> Result<bool> {
    let end = Instant::now() + cap;
    let mut last = cpu_seconds(pids)?;
    let mut quiet = 0;
    while quiet < samples && Instant::now() < end {
        watch.pump_for(Duration::from_millis(100)).await;
        let now = cpu_seconds(pids)?;
        if now == last {
            quiet += 1;
        } else {
            quiet = 0;
            last = now;
        }
    }
    Ok(quiet >= samples)
}

/// Builds the topology for `size`, runs `side`'s daemons and measures. Everything started is
/// killed when this returns (the `World` and the runtime are dropped), also on error.
fn run_side(side: Side, size: Size, cfg: &Config) -> Result<Figures> {
    let bin = side.bin();
    eprintln!(
        "bench: {}: building {} AZs x {} TS x {} routes ({})",
        side.label(),
        size.azs,
        size.ts,
        size.routes,
        bin.display()
    );
    let mut world = World::build(&bin, size)?;
    if cfg.stop_northds {
        eprintln!(
            "bench: {}: stopping the ovn-northds (BENCH_NORTHD=stop)",
            side.label()
        );
        world.stop_northds();
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let _ctx = rt.enter();
    let mut watch = Watch::connect(&world.nb_remotes());
    let wait = cfg.timeout;
    rt.block_on(watch.synced(wait))?;
    for az in 0..size.azs {
        let prefixes: Vec<String> = (0..size.routes).map(|i| route_prefix(az, i)).collect();
        watch.commit_add(az, &router(az), &prefixes, NEXTHOP)?;
        rt.block_on(watch.finish_commit(az, wait))?;
    }
    world.enable_routes()?;

    // Cold start (or warm: ours converge, then C starts on their state).
    let log = world.isb_log().to_path_buf();
    let warm = side == Side::C && cfg.warm_c;
    let mut off0 = file_len(&log);
    let (what, bin) = if warm {
        ("cold start by ours", Side::Ours.bin())
    } else {
        ("cold start", bin)
    };
    eprintln!("bench: {}: {what}", side.label());
    let t0 = Instant::now();
    world.start_ics_with(&bin)?;
    let want = size.learned_per_az();
    let done = rt.block_on(watch.until("cold convergence", wait, |w| {
        (0..size.azs).all(|az| w.learned(az) == want)
    }))?;
    let mut f = Figures {
        cold: (!warm).then(|| done - t0),
        changes: cfg.changes,
        ..Figures::default()
    };
    if warm {
        off0 = file_len(&log);
        match rt.block_on(warm_start(side, &mut world, &mut watch, cfg.timeout))? {
            Warm::Quiet(d) => f.warm = Some(d),
            Warm::Unfinished { after, cpu } => {
                f.warm_unfinished = Some((after, cpu.0, cpu.1));
                f.changes = 0;
                f.cpu_per_change = f64::NAN;
                f.cold_isb = transact_stats(&read_window(&log, off0, file_len(&log))?);
                return finish(f, &mut world);
            }
        }
        if (0..size.azs).any(|az| watch.learned(az) != want) {
            bail!("the C daemons changed the learned routes of the converged state");
        }
    }
    let pids = world.ic_pids()?;
    rt.block_on(settle(&mut watch, &pids))?;
    // The northds digest the cold start's routes for a while (tens of seconds at R = 2000):
    // the first change must not be measured against their recompute on the same cores.
    let northds = world.northd_pids();
    rt.block_on(settle_within(&mut watch, &northds, cfg.timeout))?;
    let off1 = file_len(&log);
    f.cold_isb = transact_stats(&read_window(&log, off0, off1)?);

    // Changes in AZ1: add route j, remove it, add route j+1, ...
    eprintln!("bench: {}: {} changes", side.label(), cfg.changes);
    let rec0 = engine_recomputes(side, &world);
    let cpu0 = cpu_seconds_exact(&pids)?;
    let lr = router(0);
    for c in 0..cfg.changes {
        let prefix = route_prefix(0, size.routes + c / 2);
        let add = c % 2 == 0;
        let t = Instant::now();
        if add {
            watch.commit_add(0, &lr, std::slice::from_ref(&prefix), NEXTHOP)?;
        } else {
            watch.commit_remove(0, &lr, &prefix)?;
        }
        let per_az = if add { size.ts } else { 0 };
        let what = format!(
            "change {c} ({} {prefix})",
            if add { "add" } else { "remove" }
        );
        let seen = rt.block_on(watch.until(&what, wait, |w| {
            (1..size.azs).all(|az| w.learned_prefix(az, &prefix) == per_az)
        }))?;
        f.latencies.push(seen - t);
        rt.block_on(watch.finish_commit(0, wait))?;
        rt.block_on(settle(&mut watch, &pids))?;
    }
    let cpu1 = cpu_seconds_exact(&pids)?;
    f.recomputes = rec0
        .zip(engine_recomputes(side, &world))
        .map(|(a, b)| b - a);
    let off2 = file_len(&log);
    f.cpu_per_change = (cpu1 - cpu0) / cfg.changes as f64;
    f.isb = transact_stats(&read_window(&log, off1, off2)?);
    // The topology is back to its size (odd N leaves one extra route in AZ1).
    let extra = cfg.changes % 2 * size.ts;
    rt.block_on(watch.until("steady state after the changes", wait, |w| {
        (1..size.azs).all(|az| w.learned(az) == want + extra) && w.learned(0) == want
    }))?;

    if !cfg.idle.is_zero() {
        let pids = world.ic_pids()?;
        let a = cpu_seconds_exact(&pids)?;
        rt.block_on(watch.pump_for(cfg.idle));
        let b = cpu_seconds_exact(&pids)?;
        f.idle_cpu_per_s = Some((b - a) / cfg.idle.as_secs_f64());
    }
    drop(watch);
    finish(f, &mut world)
}

/// How a warm start ended.
enum Warm {
    /// The daemons and the servers went quiet after this long.
    Quiet(Duration),
    /// Still busy at the timeout: how long they had run and the CPU seconds each daemon had
    /// used (fewest, most).
    Unfinished { after: Duration, cpu: (f64, f64) },
}

/// `BENCH_WARM=ours`: stops our converged daemons and starts the measured ones on their state.
async fn warm_start(
    side: Side,
    world: &mut World,
    watch: &mut Watch,
    cap: Duration,
) -> Result<Warm> {
    let pids = world.ic_pids()?;
    settle(watch, &pids).await?;
    world.stop_ics();
    eprintln!("bench: {}: warm start on the converged state", side.label());
    let t1 = Instant::now();
    world.start_ics()?;
    // A first full pass of the C daemon at this size takes minutes: wait up to the timeout for
    // the daemons and the servers to go quiet together, 3 s without a CPU tick (the daemons
    // alone are quiet while the servers build their initial monitor replies).
    let ics = world.ic_pids()?;
    let mut pids = ics.clone();
    pids.extend(world.server_pids());
    if settle_quiet(watch, &pids, cap, 30).await? {
        return Ok(Warm::Quiet(t1.elapsed()));
    }
    let mut cpu = (f64::INFINITY, 0.0f64);
    for p in &ics {
        let c = cpu_seconds_exact(std::slice::from_ref(p))?;
        cpu = (cpu.0.min(c), cpu.1.max(c));
    }
    let after = t1.elapsed();
    eprintln!(
        "bench: {}: first pass not finished after {:.0} s; no change measured",
        side.label(),
        after.as_secs_f64()
    );
    Ok(Warm::Unfinished { after, cpu })
}

/// Reads the daemons' peak RSS into `f`.
fn finish(mut f: Figures, world: &mut World) -> Result<Figures> {
    for p in world.ic_pids()? {
        let kb = peak_rss_kb(p)?;
        f.rss_max_kb = f.rss_max_kb.max(kb);
        f.rss_sum_kb += kb;
    }
    Ok(f)
}

/// Sum of every compute node's recompute counter over all daemons (`inc-engine/show-stats`);
/// None for the C daemon or when a daemon does not answer.
fn engine_recomputes(side: Side, world: &World) -> Option<u64> {
    if side != Side::Ours {
        return None;
    }
    let mut sum = 0;
    for d in &world.ics {
        let counters = common::lab::try_recomputes(d)?;
        sum = counters
            .values()
            .fold(sum, |a: u64, v| a.saturating_add(*v));
    }
    Some(sum)
}

/// `a / b` with two decimals, or two significant digits below 0.01 (ours/C is 1e-4 for a
/// change's CPU).
fn ratio(a: f64, b: f64) -> String {
    if a.is_finite() && b.is_finite() && b > 0.0 {
        let r = a / b;
        if r == 0.0 || r >= 0.01 {
            format!("{r:.2}")
        } else {
            format!("{r:.1e}")
        }
    } else {
        "-".to_string()
    }
}

/// One table: measure | ours | C | ours/C (the columns present).
fn print_table(cfg: &Config, results: &[(Side, Figures)]) {
    let s = cfg.size;
    println!();
    println!(
        "multi-AZ benchmark: {} AZs x {} transit switches x {} routes per AZ, {} changes, \
         schemas {}",
        s.azs,
        s.ts,
        s.routes,
        cfg.changes,
        world::SCHEMA_DIR
    );
    let mut head = format!("{:<48}", "measure");
    for (side, _) in results {
        head.push_str(&format!(" {:>12}", side.label()));
    }
    if results.len() == 2 {
        head.push_str(&format!(" {:>8}", "ours/C"));
    }
    println!("{head}");
    type Get = fn(&Figures) -> f64;
    let rows: Vec<(&str, Get, usize)> = vec![
        ("cold convergence, s", |f| Figures::secs(f.cold), 2),
        (
            "warm start on the converged state, s",
            |f| Figures::secs(f.warm),
            2,
        ),
        (
            "  IC-SB transactions during it (or the warm)",
            |f| f.cold_isb.txns as f64,
            0,
        ),
        (
            "  IC-SB kB written during it (or the warm)",
            |f| f.cold_isb.bytes as f64 / 1024.0,
            1,
        ),
        ("change latency p50, ms", |f| f.p(50.0), 1),
        ("change latency p99, ms", |f| f.p(99.0), 1),
        (
            "CPU per change (all ovn-ic), ms",
            |f| f.cpu_per_change * 1000.0,
            1,
        ),
        (
            "IC-SB transactions per change",
            |f| f.per_change(f.isb.txns),
            2,
        ),
        ("IC-SB bytes per change", |f| f.per_change(f.isb.bytes), 0),
        (
            "IC-SB no-effect transactions per change",
            |f| f.per_change(f.isb.no_effect),
            2,
        ),
        (
            "IC-SB failed transactions per change",
            |f| f.per_change(f.isb.failed),
            2,
        ),
        (
            "engine recomputes during the changes (all)",
            |f| f.recomputes.map_or(f64::NAN, |x| x as f64),
            0,
        ),
        (
            "idle CPU (all ovn-ic), ms per s",
            |f| f.idle_cpu_per_s.map_or(f64::NAN, |x| x * 1000.0),
            2,
        ),
        (
            "peak RSS, max of ovn-ic, MB",
            |f| f.rss_max_kb as f64 / 1024.0,
            1,
        ),
        (
            "peak RSS, sum of ovn-ic, MB",
            |f| f.rss_sum_kb as f64 / 1024.0,
            1,
        ),
    ];
    for (name, get, prec) in rows {
        let mut line = format!("{name:<48}");
        let vals: Vec<f64> = results.iter().map(|(_, f)| get(f)).collect();
        for v in &vals {
            line.push_str(&format!(" {:>12.*}", prec, v));
        }
        if vals.len() == 2 {
            line.push_str(&format!(" {:>8}", ratio(vals[0], vals[1])));
        }
        println!("{line}");
    }
    for (side, f) in results {
        let lats: Vec<String> = f
            .latencies
            .iter()
            .map(|d| format!("{:.0}", d.as_secs_f64() * 1000.0))
            .collect();
        println!("{} latencies, ms: {}", side.label(), lats.join(" "));
        if let Some((after, lo, hi)) = f.warm_unfinished {
            // Every iteration of the C daemon is a full pass: a change is learned only by a
            // pass that starts after it, in each of the other AZs.
            println!(
                "{}: first pass on the converged state not finished after {:.0} s (CPU per \
                 daemon {lo:.0}-{hi:.0} s): a change takes more than {lo:.0} s to be learned \
                 and more than {:.0} CPU-s of the {} other AZs' daemons",
                side.label(),
                after.as_secs_f64(),
                lo * (s.azs - 1) as f64,
                s.azs - 1
            );
        }
        if f.isb.unanswered + f.cold_isb.unanswered > 0 {
            println!(
                "{}: {} IC-SB transactions had no reply in their window",
                side.label(),
                f.isb.unanswered + f.cold_isb.unanswered
            );
        }
    }
}

/// The growth curve: one row per R.
fn print_curve_row(r: usize, results: &[(Side, Figures)], header: bool) {
    if header {
        let mut h = format!("{:>6}", "R");
        for (side, _) in results {
            for col in [
                "cold s", "p50 ms", "p99 ms", "cpu ms", "txn/ch", "B/ch", "recomp",
            ] {
                h.push_str(&format!(" {:>12}", format!("{}:{col}", short(*side))));
            }
        }
        if results.len() == 2 {
            for col in ["p50", "p99", "cpu", "B/ch"] {
                h.push_str(&format!(" {:>8}", format!("r:{col}")));
            }
        }
        println!("{h}");
    }
    let mut line = format!("{r:>6}");
    for (_, f) in results {
        line.push_str(&format!(
            " {:>12.2} {:>12.1} {:>12.1} {:>12.1} {:>12.2} {:>12.0} {:>12}",
            Figures::secs(f.cold.or(f.warm)),
            f.p(50.0),
            f.p(99.0),
            f.cpu_per_change * 1000.0,
            f.per_change(f.isb.txns),
            f.per_change(f.isb.bytes),
            f.recomputes.map_or("-".to_string(), |x| x.to_string())
        ));
    }
    if let [(_, a), (_, b)] = results {
        line.push_str(&format!(
            " {:>8} {:>8} {:>8} {:>8}",
            ratio(a.p(50.0), b.p(50.0)),
            ratio(a.p(99.0), b.p(99.0)),
            ratio(a.cpu_per_change, b.cpu_per_change),
            ratio(a.per_change(a.isb.bytes), b.per_change(b.isb.bytes))
        ));
    }
    println!("{line}");
}

fn short(side: Side) -> &'static str {
    match side {
        Side::Ours => "ours",
        Side::C => "C",
    }
}

#[test]
#[ignore = "benchmark: run with --release -- --ignored --nocapture"]
fn multi_az_bench() -> Result<()> {
    let cfg = Config::from_env()?;
    if !std::path::Path::new(&format!("{}/ovn-ic-sb.ovsschema", world::SCHEMA_DIR)).exists() {
        bail!("Debian's OVN schemas are not in {}", world::SCHEMA_DIR);
    }
    match &cfg.curve {
        None => {
            let mut results = Vec::new();
            for side in cfg.sides() {
                let f = run_side(side, cfg.size, &cfg)
                    .with_context(|| format!("the {} run", side.label()))?;
                results.push((side, f));
            }
            print_table(&cfg, &results);
        }
        Some(rs) => {
            let mut rows = Vec::new();
            for &r in rs {
                let size = Size {
                    routes: r,
                    ..cfg.size
                };
                let mut results = Vec::new();
                for side in cfg.sides() {
                    let c = Config {
                        idle: Duration::ZERO,
                        ..cfg.clone()
                    };
                    let f = run_side(side, size, &c)
                        .with_context(|| format!("the {} run at R={r}", side.label()))?;
                    results.push((side, f));
                }
                rows.push((r, results));
            }
            println!();
            println!(
                "growth curve: {} AZs x {} transit switches, {} changes per point \
                 (cpu = CPU ms per change of all ovn-ic; r: = ours/C)",
                cfg.size.azs, cfg.size.ts, cfg.changes
            );
            for (i, (r, results)) in rows.iter().enumerate() {
                print_curve_row(*r, results, i == 0);
            }
        }
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------------
// The helpers the figures rest on (fast, run with the ordinary tests).

#[test]
fn transact_log_is_counted_with_sizes_and_no_effect_transactions() {
    let log = "\
2026-11-25T19:32:45.528Z|00002|ovsdb_server|INFO|ovsdb-server (Open vSwitch) 3.1.0
2026-11-25T19:32:46.065Z|00003|jsonrpc|DBG|unix#0: received request, method=\"transact\", params=[\"OVN_IC_Southbound\",{\"table\":\"Route\",\"row\":{},\"op\":\"insert\"}], id=0
2026-11-25T19:32:46.065Z|00004|jsonrpc|DBG|unix#0: send reply, result=[{\"uuid\":[\"uuid\",\"a3b85871-bb31-4053-892b-1f59b72c616e\"]}], id=0
2026-11-25T19:32:46.095Z|00005|jsonrpc|DBG|unix#1: received request, method=\"transact\", params=[\"OVN_IC_Southbound\",{\"where\":[],\"table\":\"Route\",\"op\":\"delete\"}], id=0
2026-11-25T19:32:46.096Z|00006|jsonrpc|DBG|unix#1: received request, method=\"transact\", params=[\"OVN_IC_Southbound\",{\"op\":\"comment\",\"comment\":\"x, id=1\"}], id=\"c1\"
2026-11-25T19:32:46.097Z|00007|jsonrpc|DBG|unix#1: send reply, result=[{}], id=\"c1\"
2026-11-25T19:32:46.098Z|00008|jsonrpc|DBG|unix#1: send reply, result=[{\"count\":0}], id=0
2026-11-25T19:32:46.099Z|00009|jsonrpc|DBG|unix#2: received request, method=\"transact\", params=[\"OVN_IC_Southbound\",{\"where\":[],\"table\":\"Nope\",\"op\":\"delete\"}], id=7
2026-11-25T19:32:46.100Z|00010|jsonrpc|DBG|unix#2: send reply, result=[{\"error\":\"unknown table\"}], id=7
2026-11-25T19:32:46.101Z|00011|jsonrpc|DBG|unix#2: received request, method=\"echo\", params=[], id=8
2026-11-25T19:32:46.102Z|00012|jsonrpc|DBG|unix#2: send reply, result=[], id=8
2026-11-25T19:32:46.103Z|00013|jsonrpc|DBG|unix#3: received request, method=\"transact\", params=[\"OVN_IC_Southbound\",{\"where\":[],\"table\":\"Route\",\"op\":\"update\",\"row\":{}}], id=1
2026-11-25T19:32:46.104Z|00014|jsonrpc|DBG|unix#3: send error, error=\"overloaded\", id=1
2026-11-25T19:32:46.105Z|00015|jsonrpc|DBG|unix#4: received request, method=\"transact\", params=[\"OVN_IC_Southbound\",{\"where\":[],\"table\":\"Route\",\"op\":\"mutate\",\"mutations\":[]}], id=2
2026-11-25T19:32:46.106Z|00016|jsonrpc|DBG|unix#4: send reply, result=[{\"count\":3}], id=2
2026-11-25T19:32:46.107Z|00017|jsonrpc|DBG|unix#5: received request, method=\"transact\", params=[\"OVN_IC_Southbound\"], id=3
";
    let st = transact_stats(log);
    let params = [
        r#"["OVN_IC_Southbound",{"table":"Route","row":{},"op":"insert"}]"#,
        r#"["OVN_IC_Southbound",{"where":[],"table":"Route","op":"delete"}]"#,
        r#"["OVN_IC_Southbound",{"op":"comment","comment":"x, id=1"}]"#,
        r#"["OVN_IC_Southbound",{"where":[],"table":"Nope","op":"delete"}]"#,
        r#"["OVN_IC_Southbound",{"where":[],"table":"Route","op":"update","row":{}}]"#,
        r#"["OVN_IC_Southbound",{"where":[],"table":"Route","op":"mutate","mutations":[]}]"#,
        r#"["OVN_IC_Southbound"]"#,
    ];
    assert_eq!(
        st,
        TxnStats {
            txns: 7,
            bytes: params.iter().map(|p| p.len() as u64).sum(),
            // the delete that matched nothing and the comment-only transaction
            no_effect: 2,
            // the operation error and the JSON-RPC error
            failed: 2,
            unanswered: 1,
        }
    );
}

#[test]
fn log_window_keeps_only_complete_lines() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("log");
    std::fs::write(&p, "one\ntwo\nthr").unwrap();
    assert_eq!(read_window(&p, 0, 100).unwrap(), "one\ntwo\n");
    assert_eq!(read_window(&p, 4, 100).unwrap(), "two\n");
    assert_eq!(read_window(&p, 4, 6).unwrap(), "");
    assert_eq!(file_len(&p), 11);
    assert_eq!(file_len(&dir.path().join("missing")), 0);
}

#[test]
fn proc_stat_cpu_is_utime_plus_stime_after_the_command_name() {
    let line = "1234 (ovn ic) (x)) S 1 1234 1234 0 -1 4194560 100 0 0 0 \
                37 5 0 0 20 0 3 0 100 1000 200";
    assert_eq!(measure::parse_stat_cpu(line), Some(42));
    assert_eq!(measure::parse_stat_cpu("1234 (x) S 1"), None);
    // Our own process has a stat file with numbers in those fields.
    let me = std::process::id();
    assert!(measure::cpu_ticks(me).is_ok());
    assert_eq!(
        measure::parse_schedstat("346407558 15573787 28\n"),
        Some(346_407_558)
    );
    assert_eq!(measure::parse_schedstat(""), None);
    // Where the kernel has schedstat, this test process has run for more than nothing.
    if let Some(ns) = measure::cpu_ns(me) {
        assert!(ns > 0);
    }
    assert!(peak_rss_kb(me).unwrap() > 0);
}

#[test]
fn ratios_keep_two_significant_digits_when_small() {
    assert_eq!(ratio(3.0, 4.0), "0.75");
    assert_eq!(ratio(3.8, 42730.8), "8.9e-5");
    assert_eq!(ratio(0.0, 2.0), "0.00");
    assert_eq!(ratio(1.0, 0.0), "-");
    assert_eq!(ratio(f64::NAN, 1.0), "-");
}

#[test]
fn percentiles_use_the_nearest_rank() {
    let ms = |v: &[u64]| -> Vec<Duration> { v.iter().map(|&x| Duration::from_millis(x)).collect() };
    let v = ms(&[50, 10, 40, 30, 20]);
    assert_eq!(percentile(&v, 50.0), Some(Duration::from_millis(30)));
    assert_eq!(percentile(&v, 99.0), Some(Duration::from_millis(50)));
    assert_eq!(percentile(&v, 0.0), Some(Duration::from_millis(10)));
    let many: Vec<Duration> = ms(&(1..=200).collect::<Vec<_>>());
    assert_eq!(percentile(&many, 99.0), Some(Duration::from_millis(198)));
    assert_eq!(percentile(&[], 50.0), None);
}

#[test]
fn route_prefixes_are_distinct_canonical_slash_24s() {
    assert_eq!(route_prefix(0, 0), "10.16.0.0/24");
    assert_eq!(route_prefix(0, 257), "10.17.1.0/24");
    assert_eq!(route_prefix(14, 4095), "10.255.255.0/24");
    let mut all = std::collections::BTreeSet::new();
    for az in 0..15 {
        for i in (0..4096).step_by(97).chain([4095]) {
            assert!(all.insert(route_prefix(az, i)), "duplicate {az}/{i}");
        }
    }
    let s = Size {
        azs: 6,
        ts: 2,
        routes: 500,
    };
    assert_eq!(s.learned_per_az(), 5000);
    assert!(s.check(20).is_ok());
    assert!(Size { azs: 16, ..s }.check(20).is_err());
    assert!(Size { routes: 4090, ..s }.check(20).is_err());
    assert_eq!(parse_curve("100, 500,1000").unwrap(), vec![100, 500, 1000]);
    assert!(parse_curve("100,x").is_err());
    assert!(parse_curve("0").is_err());
}
