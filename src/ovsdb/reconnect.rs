//! The reconnect state machine of `lib/reconnect.c` as pure logic (no I/O, time passed in):
//! backoff (1 s min, 8 s max, doubling), backoff-free tries (= number of remotes), connect
//! attempt timeout max(1 s, backoff), inactivity probing (send echo after `probe_interval` of
//! silence, disconnect after another `probe_interval`), and the log lines of spec §9.
//! Helper-owned; the session drives it.
//!
//! Contract (the session relies on exactly this API):
//! ```ignore
//! let mut r = Reconnect::new("tcp:127.0.0.1:6641", now);
//! r.set_probe_interval(5000);          // ms; 0 disables; 1..999 -> 1000
//! r.set_backoff_free_tries(n_remotes);
//! r.enable(now);
//! match r.run(now) { Some(Action::Connect) => .., Some(Action::Probe) => .., Some(Action::Disconnect) => .., None => .. }
//! r.connecting(now); r.connected(now); r.connect_failed(now, "Connection refused");
//! r.disconnected(now, Some("connection dropped")); r.activity(now);
//! r.force_reconnect(now);               // leader lost etc.: free tries reset by the caller
//! r.timeout(now) -> Option<Instant>     // next instant run() must be called
//! r.is_connected(); r.backoff_ms();
//! ```

use std::time::Instant;

/// What the driver must do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Connect,
    Disconnect,
    Probe,
}

pub struct Reconnect {
    // helper-defined
    _now: Instant,
}
