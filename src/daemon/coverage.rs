//! A small coverage-counter facility in the manner of OVS's `lib/coverage.c`: named event
//! counters, `coverage/show` (rates over the last 5 s, minute and hour, then the totals) and
//! `coverage/read-counter COUNTER`.
//!
//! Counters are declared in [`COUNTERS`]; incrementing an undeclared name is a no-op so that a
//! typo cannot panic. The main loop calls [`run`] on every wake-up to take the 5-second samples
//! the rates are computed from.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Main loop woke up with a zero timeout (an immediate wake was requested).
pub const POLL_ZERO_TIMEOUT: &str = "poll_zero_timeout";
/// Main loop woke up (any reason).
pub const POLL_CREATE_NODE: &str = "poll_create_node";
/// Control-socket requests received / replied.
pub const UNIXCTL_RECEIVED: &str = "unixctl_received";
pub const UNIXCTL_REPLIED: &str = "unixctl_replied";
/// Connections accepted on the control socket.
pub const PSTREAM_OPEN: &str = "pstream_open";

/// Every counter, in display order.
pub const COUNTERS: [&str; 5] = [
    POLL_CREATE_NODE,
    POLL_ZERO_TIMEOUT,
    PSTREAM_OPEN,
    UNIXCTL_RECEIVED,
    UNIXCTL_REPLIED,
];

static TOTALS: [AtomicU64; COUNTERS.len()] = [const { AtomicU64::new(0) }; COUNTERS.len()];

/// Sampling interval of the rates.
const INTERVAL: Duration = Duration::from_secs(5);
/// One hour of samples.
const HOUR_SAMPLES: usize = 720;
const MINUTE_SAMPLES: usize = 12;

struct History {
    last: Option<Instant>,
    /// Totals at each 5-second tick, newest last (at most an hour + 1).
    samples: VecDeque<[u64; COUNTERS.len()]>,
}

static HISTORY: Mutex<History> = Mutex::new(History {
    last: None,
    samples: VecDeque::new(),
});

fn index(name: &str) -> Option<usize> {
    COUNTERS.iter().position(|c| *c == name)
}

/// Increment counter `name` by one.
pub fn inc(name: &str) {
    add(name, 1);
}

pub fn add(name: &str, n: u64) {
    if let Some(i) = index(name) {
        TOTALS[i].fetch_add(n, Ordering::Relaxed);
    }
}

/// `coverage/read-counter`: the total of `name`, `None` for an unknown counter.
pub fn read(name: &str) -> Option<u64> {
    index(name).map(|i| TOTALS[i].load(Ordering::Relaxed))
}

fn totals() -> [u64; COUNTERS.len()] {
    std::array::from_fn(|i| TOTALS[i].load(Ordering::Relaxed))
}

/// Take a sample if 5 s passed since the previous one (`coverage_run`).
pub fn run(now: Instant) {
    let mut h = HISTORY.lock().unwrap_or_else(|e| e.into_inner());
    sample(&mut h, now, totals());
}

fn sample(h: &mut History, now: Instant, t: [u64; COUNTERS.len()]) {
    match h.last {
        Some(last) if now.duration_since(last) < INTERVAL => return,
        _ => {}
    }
    if h.samples.is_empty() {
        // Baseline: everything counted so far happened "now".
        h.samples.push_back([0; COUNTERS.len()]);
    }
    h.samples.push_back(t);
    while h.samples.len() > HOUR_SAMPLES + 1 {
        h.samples.pop_front();
    }
    h.last = Some(now);
}

/// `coverage/show` reply text.
pub fn show() -> String {
    let h = HISTORY.lock().unwrap_or_else(|e| e.into_inner());
    format_show(&h.samples, totals())
}

fn format_show(samples: &VecDeque<[u64; COUNTERS.len()]>, totals: [u64; COUNTERS.len()]) -> String {
    let at_back = |back: usize, i: usize| -> u64 {
        if samples.is_empty() {
            return 0;
        }
        let idx = samples.len().saturating_sub(1 + back);
        samples[idx][i]
    };
    let newest = |i: usize| samples.back().map(|s| s[i]).unwrap_or(0);
    // A stable digest of which counters were hit, like OVS's hash (any value is fine).
    let mut hash: u32 = 0x811c_9dc5;
    let mut lines = Vec::new();
    let mut never = 0;
    for (i, name) in COUNTERS.iter().enumerate() {
        if totals[i] == 0 {
            never += 1;
            continue;
        }
        for b in name.bytes().chain(totals[i].to_le_bytes()) {
            hash = (hash ^ u32::from(b)).wrapping_mul(0x0100_0193);
        }
        let last5 = newest(i) - at_back(1, i);
        let min = newest(i) - at_back(MINUTE_SAMPLES, i);
        let hour = newest(i) - at_back(HOUR_SAMPLES, i);
        lines.push(format!(
            "{:<24} {:5.1}/sec {:9.3}/sec {:13.4}/sec   total: {}",
            name,
            last5 as f64 / INTERVAL.as_secs_f64(),
            min as f64 / 60.0,
            hour as f64 / 3600.0,
            totals[i]
        ));
    }
    let mut out =
        format!("Event coverage, avg rate over last: 5 seconds, last minute, last hour,  hash={hash:08x}:\n");
    for l in lines {
        out.push_str(&l);
        out.push('\n');
    }
    out.push_str(&format!("{never} events never hit\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_counter() {
        assert_eq!(read("no_such_counter"), None);
        inc("no_such_counter"); // no panic, no effect
        assert!(read(POLL_ZERO_TIMEOUT).is_some());
    }

    #[test]
    fn counting() {
        let before = read(PSTREAM_OPEN).unwrap();
        inc(PSTREAM_OPEN);
        add(PSTREAM_OPEN, 2);
        assert_eq!(read(PSTREAM_OPEN).unwrap(), before + 3);
    }

    #[test]
    fn show_format_and_rates() {
        let mut h = History {
            last: None,
            samples: VecDeque::new(),
        };
        let t0 = Instant::now();
        sample(&mut h, t0, [10, 0, 0, 0, 0]);
        sample(&mut h, t0 + Duration::from_secs(1), [99, 0, 0, 0, 0]); // too early: ignored
        sample(&mut h, t0 + Duration::from_secs(5), [20, 0, 0, 0, 0]);
        let s = format_show(&h.samples, [25, 0, 0, 3, 0]);
        let lines: Vec<&str> = s.lines().collect();
        assert!(lines[0].starts_with(
            "Event coverage, avg rate over last: 5 seconds, last minute, last hour,  hash="
        ));
        assert_eq!(
            lines[1],
            "poll_create_node           2.0/sec     0.333/sec        0.0056/sec   total: 25"
        );
        assert_eq!(
            lines[2],
            "unixctl_received           0.0/sec     0.000/sec        0.0000/sec   total: 3"
        );
        assert_eq!(lines[3], "3 events never hit");
        assert!(s.ends_with('\n'));
    }
}
