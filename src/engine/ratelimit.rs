//! OVS-style log rate limiting (`VLOG_RATE_LIMIT_INIT(RATE, BURST)`): RATE messages per minute,
//! bursts of BURST, and a "Dropped N log messages ..." summary before the next message that
//! passes after some were dropped.

use std::time::Instant;

/// Token cost of one message; the bucket refills `rate` tokens per millisecond, so `rate`
/// messages pass per minute.
const MSG_TOKENS: u64 = 60_000;

/// A summary of the messages dropped since the last one that passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Dropped {
    pub n: u64,
    pub first_secs_ago: u64,
    pub last_secs_ago: u64,
}

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Dropped {} log messages in last {} seconds (most recently, {} seconds ago) due to \
             excessive rate",
            self.n, self.first_secs_ago, self.last_secs_ago
        )
    }
}

/// Result of asking the limiter whether a message may be logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Drop the message silently.
    Drop,
    /// Log the message; if some were dropped before, log the summary first.
    Pass(Option<Dropped>),
}

#[derive(Debug, Clone)]
pub(crate) struct RateLimiter {
    rate: u64,
    burst: u64,
    tokens: u64,
    last_fill: Option<Instant>,
    n_dropped: u64,
    first_dropped: Option<Instant>,
    last_dropped: Option<Instant>,
}

impl RateLimiter {
    /// `rate` messages per minute, bursts of `burst` (as `VLOG_RATE_LIMIT_INIT(rate, burst)`).
    pub(crate) fn new(rate: u32, burst: u32) -> Self {
        RateLimiter {
            rate: u64::from(rate),
            burst: u64::from(burst).saturating_mul(MSG_TOKENS),
            tokens: 0,
            last_fill: None,
            n_dropped: 0,
            first_dropped: None,
            last_dropped: None,
        }
    }

    fn withdraw(&mut self, now: Instant) -> bool {
        if self.tokens < MSG_TOKENS {
            let refill = match self.last_fill {
                // A fresh bucket fills up completely on first use.
                None => Some(self.burst),
                Some(last) => {
                    // Whole milliseconds only, like OVS's time_msec(); a partial millisecond is
                    // kept for the next refill by not moving `last_fill`.
                    let ms = u64::try_from(now.saturating_duration_since(last).as_millis())
                        .unwrap_or(u64::MAX);
                    (ms > 0).then(|| self.rate.saturating_mul(ms))
                }
            };
            if let Some(add) = refill {
                self.tokens = self.tokens.saturating_add(add).min(self.burst);
                self.last_fill = Some(now);
            }
            if self.tokens < MSG_TOKENS {
                return false;
            }
        }
        self.tokens -= MSG_TOKENS;
        true
    }

    /// Decides about one message at time `now`.
    pub(crate) fn check(&mut self, now: Instant) -> Verdict {
        if !self.withdraw(now) {
            if self.n_dropped == 0 {
                self.first_dropped = Some(now);
            }
            self.last_dropped = Some(now);
            self.n_dropped += 1;
            return Verdict::Drop;
        }
        if self.n_dropped == 0 {
            return Verdict::Pass(None);
        }
        let secs_since =
            |t: Option<Instant>| t.map_or(0, |t| now.saturating_duration_since(t).as_secs());
        let dropped = Dropped {
            n: self.n_dropped,
            first_secs_ago: secs_since(self.first_dropped),
            last_secs_ago: secs_since(self.last_dropped),
        };
        self.n_dropped = 0;
        self.first_dropped = None;
        self.last_dropped = None;
        Verdict::Pass(Some(dropped))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn burst_then_rate() {
        let t0 = Instant::now();
        let mut rl = RateLimiter::new(20, 10);
        for _ in 0..10 {
            assert_eq!(rl.check(t0), Verdict::Pass(None));
        }
        assert_eq!(rl.check(t0), Verdict::Drop);
        assert_eq!(rl.check(t0 + Duration::from_secs(1)), Verdict::Drop);
        // 20 per minute: one token every 3 s.
        let t = t0 + Duration::from_secs(3);
        assert_eq!(
            rl.check(t),
            Verdict::Pass(Some(Dropped {
                n: 2,
                first_secs_ago: 3,
                last_secs_ago: 2
            }))
        );
        assert_eq!(rl.check(t), Verdict::Drop);
        // After a long pause the bucket is full again, but never above the burst.
        let later = t + Duration::from_secs(3600);
        assert!(matches!(rl.check(later), Verdict::Pass(Some(_))));
        for _ in 0..9 {
            assert_eq!(rl.check(later), Verdict::Pass(None));
        }
        assert_eq!(rl.check(later), Verdict::Drop);
    }

    #[test]
    fn dropped_text() {
        let d = Dropped {
            n: 5,
            first_secs_ago: 7,
            last_secs_ago: 1,
        };
        assert_eq!(
            d.to_string(),
            "Dropped 5 log messages in last 7 seconds (most recently, 1 seconds ago) due to \
             excessive rate"
        );
    }
}
