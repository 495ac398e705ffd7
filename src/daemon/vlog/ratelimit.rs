//! Rate limiting of log messages (`struct vlog_rate_limit`, `VLOG_*_RL` of OVS).
//!
//! A token bucket per call site: `rate` messages per minute, bursts of `burst` messages. Each
//! message costs 60 000 tokens and the bucket gains `rate` tokens per millisecond, holding at
//! most `burst × 60 000`; it starts full.

use std::sync::Mutex;

/// Tokens one message costs (`VLOG_MSG_TOKENS`).
const MSG_TOKENS: u64 = 60 * 1000;

#[derive(Debug)]
struct State {
    tokens: u64,
    /// Monotonic ms of the last refill (`None` = never: the first check fills the bucket).
    last_fill: Option<u64>,
    /// Monotonic seconds of the first and last drop since the last report.
    first_dropped: u64,
    last_dropped: u64,
    n_dropped: u32,
}

/// A rate limit for one log call site; use it from a `static`:
///
/// ```ignore
/// static WARN_RL: RateLimit = RateLimit::new(5, 1);
/// vlog_rl!(WARN_RL, warn, target: "ovn_ic", "Can't get router uuid for transit switch port {}.", p);
/// ```
#[derive(Debug)]
pub struct RateLimit {
    rate: u32,
    burst: u32,
    state: Mutex<State>,
}

/// What to do with a rate-limited message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RlVerdict {
    /// Drop it (it was counted).
    Drop,
    /// Log it, after logging this "Dropped N log messages…" line first if `Some`.
    Log(Option<String>),
}

impl RateLimit {
    /// `rate` messages per minute, in bursts of up to `burst`.
    pub const fn new(rate_per_minute: u32, burst: u32) -> RateLimit {
        RateLimit {
            rate: rate_per_minute,
            burst,
            state: Mutex::new(State {
                tokens: 0,
                last_fill: None,
                first_dropped: 0,
                last_dropped: 0,
                n_dropped: 0,
            }),
        }
    }

    /// Take one message's worth of tokens at monotonic time `now_ms`.
    pub fn check_at(&self, now_ms: u64) -> RlVerdict {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let cap = u64::from(self.burst).saturating_mul(MSG_TOKENS);
        if st.tokens < MSG_TOKENS {
            let elapsed = match st.last_fill {
                None => u64::MAX,
                Some(last) => now_ms.saturating_sub(last),
            };
            let refill = match st.last_fill {
                None => true,
                Some(last) => now_ms > last,
            };
            if refill {
                let add = u64::from(self.rate).saturating_mul(elapsed);
                st.tokens = st.tokens.saturating_add(add).min(cap);
                st.last_fill = Some(now_ms);
            }
        }
        let now_s = now_ms / 1000;
        if st.tokens < MSG_TOKENS {
            if st.n_dropped == 0 {
                st.first_dropped = now_s;
            }
            st.last_dropped = now_s;
            st.n_dropped = st.n_dropped.saturating_add(1);
            return RlVerdict::Drop;
        }
        st.tokens -= MSG_TOKENS;
        if st.n_dropped == 0 {
            return RlVerdict::Log(None);
        }
        let msg = format!(
            "Dropped {} log messages in last {} seconds (most recently, {} seconds ago) due to excessive rate",
            st.n_dropped,
            now_s.saturating_sub(st.first_dropped),
            now_s.saturating_sub(st.last_dropped)
        );
        st.n_dropped = 0;
        RlVerdict::Log(Some(msg))
    }

    /// Messages per minute.
    pub fn rate_per_minute(&self) -> u32 {
        self.rate
    }

    /// Messages per burst.
    pub fn burst(&self) -> u32 {
        self.burst
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_rate() {
        // 5 per minute, burst 1: one message, then one every 12 s.
        let rl = RateLimit::new(5, 1);
        let t0 = 1_000_000;
        assert_eq!(rl.check_at(t0), RlVerdict::Log(None));
        assert_eq!(rl.check_at(t0 + 1), RlVerdict::Drop);
        assert_eq!(rl.check_at(t0 + 3_000), RlVerdict::Drop);
        assert_eq!(rl.check_at(t0 + 11_999), RlVerdict::Drop);
        assert_eq!(
            rl.check_at(t0 + 12_000),
            RlVerdict::Log(Some(
                "Dropped 3 log messages in last 12 seconds (most recently, 1 seconds ago) due to excessive rate"
                    .into()
            ))
        );
        // The report resets the counter.
        assert_eq!(rl.check_at(t0 + 12_001), RlVerdict::Drop);
        assert_eq!(
            rl.check_at(t0 + 24_001),
            RlVerdict::Log(Some(
                "Dropped 1 log messages in last 12 seconds (most recently, 12 seconds ago) due to excessive rate"
                    .into()
            ))
        );
        assert_eq!(rl.check_at(t0 + 60_000), RlVerdict::Log(None));
    }

    #[test]
    fn bursts() {
        let rl = RateLimit::new(60, 3);
        for i in 0..3 {
            assert_eq!(rl.check_at(5_000 + i), RlVerdict::Log(None), "{i}");
        }
        assert_eq!(rl.check_at(5_003), RlVerdict::Drop);
        // 1 per second: a second later one more passes.
        assert!(matches!(rl.check_at(6_003), RlVerdict::Log(Some(_))));
        // Long idle: refills only up to the burst.
        for i in 0..3 {
            assert_eq!(rl.check_at(1_000_000 + i), RlVerdict::Log(None), "{i}");
        }
        assert_eq!(rl.check_at(1_000_003), RlVerdict::Drop);
        // Time going backwards does not panic or refill.
        assert_eq!(rl.check_at(10), RlVerdict::Drop);
    }
}
