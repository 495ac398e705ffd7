//! The `memory` module's peak-RSS log lines (spec ovn-ic-core.md §1.5), checked when the main
//! loop wakes up (there is no timer, as upstream).

use std::time::{Duration, Instant};

use tracing::info;

/// Peak resident set size in kB (`VmHWM`), if the kernel tells.
pub fn peak_rss_kb() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Logs `<N> kB peak resident set size after <S> seconds` at the first wake-up at least 10 s
/// after start, then `peak resident set size grew <P>% in last <S> seconds, from <A> kB to
/// <B> kB` whenever the peak grew by 50 % or more (checked at most every 10 s).
#[derive(Debug)]
pub struct MemoryMonitor {
    start: Instant,
    last_check: Option<Instant>,
    last_peak: Option<u64>,
}

const INTERVAL: Duration = Duration::from_secs(10);

impl MemoryMonitor {
    pub fn new(start: Instant) -> MemoryMonitor {
        MemoryMonitor {
            start,
            last_check: None,
            last_peak: None,
        }
    }

    /// Call on every main-loop iteration.
    pub fn run(&mut self, now: Instant) {
        if let Some(line) = self.check(now, peak_rss_kb) {
            info!(target: "memory", "{line}");
        }
    }

    /// The line to log now, if any (`peak` is injected for tests).
    pub fn check(&mut self, now: Instant, peak: impl FnOnce() -> Option<u64>) -> Option<String> {
        let since = self.last_check.unwrap_or(self.start);
        if now.duration_since(since) < INTERVAL {
            return None;
        }
        let kb = peak()?;
        let elapsed = now.duration_since(since).as_secs_f64();
        self.last_check = Some(now);
        match self.last_peak {
            None => {
                self.last_peak = Some(kb);
                Some(format!(
                    "{kb} kB peak resident set size after {elapsed:.1} seconds"
                ))
            }
            Some(old) if old > 0 && kb * 2 >= old * 3 => {
                self.last_peak = Some(kb);
                let pct = ((kb as f64 - old as f64) * 100.0 / old as f64).round();
                Some(format!(
                    "peak resident set size grew {pct:.0}% in last {elapsed:.1} seconds, from {old} kB to {kb} kB"
                ))
            }
            Some(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_line_after_ten_seconds_then_growth() {
        let t0 = Instant::now();
        let mut m = MemoryMonitor::new(t0);
        assert_eq!(m.check(t0 + Duration::from_secs(5), || Some(100)), None);
        assert_eq!(
            m.check(t0 + Duration::from_millis(19_800), || Some(6316))
                .as_deref(),
            Some("6316 kB peak resident set size after 19.8 seconds")
        );
        assert_eq!(
            m.check(t0 + Duration::from_secs(25), || Some(20000)),
            None,
            "checked at most every 10 s"
        );
        assert_eq!(
            m.check(t0 + Duration::from_secs(31), || Some(7000)),
            None,
            "less than 50 %"
        );
        assert_eq!(
            m.check(t0 + Duration::from_secs(45), || Some(9474))
                .as_deref(),
            Some("peak resident set size grew 50% in last 14.0 seconds, from 6316 kB to 9474 kB")
        );
        assert!(peak_rss_kb().is_some_and(|k| k > 0));
    }
}
