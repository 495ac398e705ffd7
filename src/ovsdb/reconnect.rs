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
//!
//! How a disconnect is reported (the C `error` argument of `reconnect_disconnected()`):
//! * `disconnected(now, Some(err))`: an error (`errno` text) — WARN "connection dropped (err)"
//!   when connected, INFO "connection attempt failed (err)" while connecting;
//! * `peer_closed(now)`: EOF from the peer — INFO "connection closed by peer";
//! * `disconnected(now, None)`: no specific error, e.g. after `run()` returned
//!   `Action::Disconnect` for a probe timeout or a connect attempt that timed out — INFO
//!   "connection dropped" / "connection attempt timed out".
//!
//! Deviations from the C code: the "receive attempted" refinement (probe deadlines only fire
//! once a receive was attempted after them) is off until the driver first calls
//! [`Reconnect::receive_attempted`]; `set_backoff()` clamps a pending backoff to the sanitized
//! maximum rather than the raw argument.

use std::time::{Duration, Instant};

/// Default inactivity probe interval, ms (`RECONNECT_DEFAULT_PROBE_INTERVAL`).
pub const DEFAULT_PROBE_INTERVAL: u64 = 5000;
/// Default minimum backoff, ms.
pub const DEFAULT_MIN_BACKOFF: u64 = 1000;
/// Default maximum backoff, ms.
pub const DEFAULT_MAX_BACKOFF: u64 = 8000;

/// What the driver must do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Connect,
    Disconnect,
    Probe,
}

/// The FSM states of `lib/reconnect.c`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Disabled.
    Void,
    /// Waiting `backoff` before the next attempt.
    Backoff,
    /// A connection (or listen) attempt is in progress.
    Connecting,
    /// Connected, traffic seen recently.
    Active,
    /// Connected, probe sent, waiting for any traffic.
    Idle,
    /// Forced reconnect requested: `run()` says Disconnect at once.
    Reconnect,
    /// Passive: listening for a connection.
    Listening,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Void => "VOID",
            State::Backoff => "BACKOFF",
            State::Connecting => "CONNECTING",
            State::Active => "ACTIVE",
            State::Idle => "IDLE",
            State::Reconnect => "RECONNECT",
            State::Listening => "LISTENING",
        }
    }

    fn is_connected(self) -> bool {
        matches!(self, State::Active | State::Idle)
    }
}

/// Statistics, as `reconnect_get_stats()` reports them (durations instead of ms).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stats {
    pub creation_time: Instant,
    pub last_activity: Instant,
    pub last_connected: Option<Instant>,
    pub last_disconnected: Option<Instant>,
    pub backoff_ms: u64,
    pub seqno: u32,
    pub is_connected: bool,
    pub since_connect: Option<Duration>,
    pub since_disconnect: Option<Duration>,
    pub total_connected_duration: Duration,
    pub n_attempted_connections: u32,
    pub n_successful_connections: u32,
    pub state: State,
    pub state_elapsed: Duration,
}

/// Why the connection (attempt) ended.
#[derive(Debug, Clone, Copy)]
enum Reason<'a> {
    /// No specific error (C: 0).
    None,
    /// Closed by the peer (C: EOF).
    Eof,
    /// An error, as text (C: positive errno).
    Error(&'a str),
}

pub struct Reconnect {
    name: String,
    min_backoff: u64,
    max_backoff: u64,
    probe_interval: u64,
    passive: bool,
    quiet: bool,

    state: State,
    state_entered: Instant,
    backoff: u64,
    last_activity: Instant,
    last_connected: Option<Instant>,
    last_disconnected: Option<Instant>,
    /// `None`: the receive-attempted refinement is disabled (C: LLONG_MAX).
    last_receive_attempt: Option<Instant>,
    /// `None`: unlimited (C: UINT_MAX).
    max_tries: Option<u32>,
    backoff_free_tries: u32,

    creation_time: Instant,
    n_attempted_connections: u32,
    n_successful_connections: u32,
    total_connected_duration: Duration,
    seqno: u32,
}

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

impl Reconnect {
    /// A new, disabled FSM with default settings; `name` prefixes every log line.
    pub fn new(name: &str, now: Instant) -> Reconnect {
        Reconnect {
            name: name.to_string(),
            min_backoff: DEFAULT_MIN_BACKOFF,
            max_backoff: DEFAULT_MAX_BACKOFF,
            probe_interval: DEFAULT_PROBE_INTERVAL,
            passive: false,
            quiet: false,
            state: State::Void,
            state_entered: now,
            backoff: 0,
            last_activity: now,
            last_connected: None,
            last_disconnected: None,
            last_receive_attempt: None,
            max_tries: None,
            backoff_free_tries: 0,
            creation_time: now,
            n_attempted_connections: 0,
            n_successful_connections: 0,
            total_connected_duration: Duration::ZERO,
            seqno: 0,
        }
    }

    // ---- configuration -------------------------------------------------------------------

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Used in log messages (the session sets it to the remote being tried).
    pub fn set_name(&mut self, name: &str) {
        self.name = name.to_string();
    }

    /// Quiet: informational messages are logged at DEBUG instead of INFO.
    pub fn set_quiet(&mut self, quiet: bool) {
        self.quiet = quiet;
    }

    pub fn min_backoff_ms(&self) -> u64 {
        self.min_backoff
    }

    pub fn max_backoff_ms(&self) -> u64 {
        self.max_backoff
    }

    /// `min` is raised to 1000; `max == 0` means the default 8000, else it is raised to 1000
    /// and to `min`.
    pub fn set_backoff(&mut self, min_backoff: u64, max_backoff: u64) {
        self.min_backoff = min_backoff.max(1000);
        self.max_backoff = if max_backoff == 0 {
            DEFAULT_MAX_BACKOFF
        } else {
            max_backoff.max(1000)
        };
        if self.min_backoff > self.max_backoff {
            self.max_backoff = self.min_backoff;
        }
        if self.state == State::Backoff && self.backoff > self.max_backoff {
            self.backoff = self.max_backoff;
        }
    }

    pub fn probe_interval(&self) -> u64 {
        self.probe_interval
    }

    /// ms; 0 disables probing; 1..999 become 1000.
    pub fn set_probe_interval(&mut self, probe_interval: u64) {
        self.probe_interval = if probe_interval == 0 {
            0
        } else {
            probe_interval.max(1000)
        };
    }

    /// Number of attempts made without backoff; 0 and 1 both mean a single attempt.
    pub fn set_backoff_free_tries(&mut self, tries: u32) {
        self.backoff_free_tries = tries;
    }

    /// Limit the number of connection attempts (`None`: unlimited, the default). When they
    /// run out the FSM disables itself instead of backing off.
    pub fn set_max_tries(&mut self, max_tries: Option<u32>) {
        self.max_tries = max_tries;
    }

    pub fn max_tries(&self) -> Option<u32> {
        self.max_tries
    }

    pub fn is_passive(&self) -> bool {
        self.passive
    }

    /// Active (connect) or passive (listen) mode.
    pub fn set_passive(&mut self, passive: bool, now: Instant) {
        if self.passive != passive {
            self.passive = passive;
            let restart = if passive {
                matches!(self.state, State::Connecting | State::Reconnect)
            } else {
                self.state == State::Listening && self.may_retry()
            };
            if restart {
                self.transition(now, State::Backoff);
                self.backoff = 0;
            }
        }
    }

    // ---- state changes reported by the driver --------------------------------------------

    pub fn is_enabled(&self) -> bool {
        self.state != State::Void
    }

    /// Enable a disabled FSM: the next `run()` returns `Connect`.
    pub fn enable(&mut self, now: Instant) {
        if self.state == State::Void && self.may_retry() {
            self.transition(now, State::Backoff);
            self.backoff = 0;
        }
    }

    /// Disable: `run()` returns `None` until enabled again.
    pub fn disable(&mut self, now: Instant) {
        if self.state != State::Void {
            self.transition(now, State::Void);
        }
    }

    /// If connected or connecting, make the next `run()` return `Disconnect`.
    pub fn force_reconnect(&mut self, now: Instant) {
        if matches!(self.state, State::Connecting | State::Active | State::Idle) {
            self.transition(now, State::Reconnect);
        }
    }

    /// The connection dropped or a connection attempt failed; `error` is the error text, or
    /// `None` for "no specific error" (see the module docs). Backs off, then reconnects.
    pub fn disconnected(&mut self, now: Instant, error: Option<&str>) {
        let reason = match error {
            Some(e) => Reason::Error(e),
            None => Reason::None,
        };
        self.disconnected_reason(now, reason);
    }

    /// The peer closed the connection (EOF).
    pub fn peer_closed(&mut self, now: Instant) {
        self.disconnected_reason(now, Reason::Eof);
    }

    fn disconnected_reason(&mut self, now: Instant, reason: Reason<'_>) {
        if matches!(self.state, State::Backoff | State::Void) {
            return;
        }
        let name = &self.name;
        // Report what happened.
        if self.state.is_connected() {
            match reason {
                Reason::Error(e) => {
                    tracing::warn!(target: "reconnect", "{name}: connection dropped ({e})")
                }
                Reason::Eof => self.info(format!("{name}: connection closed by peer")),
                Reason::None => self.info(format!("{name}: connection dropped")),
            }
        } else if self.state == State::Listening {
            match reason {
                Reason::Error(e) => tracing::warn!(
                    target: "reconnect",
                    "{name}: error listening for connections ({e})"
                ),
                _ => self.info(format!("{name}: error listening for connections")),
            }
        } else if self.backoff < self.max_backoff {
            let kind = if self.passive { "listen" } else { "connection" };
            match reason {
                Reason::Error(e) => {
                    tracing::info!(target: "reconnect", "{name}: {kind} attempt failed ({e})")
                }
                _ => self.info(format!("{name}: {kind} attempt timed out")),
            }
        }
        // else: at maximum backoff, logging is suppressed.

        if self.state.is_connected() {
            self.last_disconnected = Some(now);
        }

        if !self.may_retry() {
            self.transition(now, State::Void);
            return;
        }

        // Back off.
        if self.backoff_free_tries > 1 {
            self.backoff_free_tries -= 1;
            self.backoff = 0;
        } else if self.state.is_connected() && (self.passive || self.active_for_backoff()) {
            self.backoff = if self.passive { 0 } else { self.min_backoff };
        } else if self.backoff < self.min_backoff {
            self.backoff = self.min_backoff;
        } else if self.backoff < self.max_backoff / 2 {
            self.backoff *= 2;
            let what = if self.passive {
                "trying to listen again"
            } else {
                "reconnect"
            };
            self.info(format!(
                "{}: waiting {} seconds before {what}",
                self.name,
                fmt_g3(self.backoff as f64 / 1000.0)
            ));
        } else {
            if self.backoff < self.max_backoff {
                let what = if self.passive {
                    "try to listen"
                } else {
                    "reconnect"
                };
                tracing::info!(
                    target: "reconnect",
                    "{}: continuing to {what} in the background but suppressing further logging",
                    self.name
                );
            }
            self.backoff = self.max_backoff;
        }
        self.transition(now, State::Backoff);
    }

    /// C: `last_activity - last_connected >= backoff` (false if never connected).
    fn active_for_backoff(&self) -> bool {
        match self.last_connected {
            Some(lc) => self.last_activity >= lc + ms(self.backoff),
            None => false,
        }
    }

    /// A connection (or listen) attempt is in progress; starts the attempt timer.
    pub fn connecting(&mut self, now: Instant) {
        if self.state != State::Connecting {
            if self.passive {
                self.info(format!("{}: listening...", self.name));
            } else if self.backoff < self.max_backoff {
                self.info(format!("{}: connecting...", self.name));
            }
            self.transition(now, State::Connecting);
        }
    }

    /// Passive: now listening for connections (no deadline).
    pub fn listening(&mut self, now: Instant) {
        if self.state != State::Listening {
            self.info(format!("{}: listening...", self.name));
            self.transition(now, State::Listening);
        }
    }

    /// Passive: accepting a connection failed; back off if listening.
    pub fn listen_error(&mut self, now: Instant, error: &str) {
        if self.state == State::Listening {
            self.disconnected(now, Some(error));
        }
    }

    /// The connection is up; starts the probe timer.
    pub fn connected(&mut self, now: Instant) {
        if !self.state.is_connected() {
            self.connecting(now);
            self.info(format!("{}: connected", self.name));
            self.transition(now, State::Active);
            self.last_connected = Some(now);
        }
    }

    /// The connection attempt failed with `error`.
    pub fn connect_failed(&mut self, now: Instant, error: &str) {
        self.connecting(now);
        self.disconnected(now, Some(error));
    }

    /// Something was received: resets the probe timer (IDLE -> ACTIVE).
    pub fn activity(&mut self, now: Instant) {
        if self.state == State::Idle {
            self.transition(now, State::Active);
        }
        self.last_activity = now;
    }

    /// The driver tried to receive at `now`. Once called, probe deadlines only fire if a
    /// receive was attempted after they passed (protects against long stalls of the loop).
    pub fn receive_attempted(&mut self, now: Instant) {
        self.last_receive_attempt = Some(now);
    }

    // ---- queries -------------------------------------------------------------------------

    fn receive_attempted_since(&self, t: Instant) -> bool {
        self.last_receive_attempt.map_or(true, |a| a >= t)
    }

    /// The instant at which `run()` has something to do; `None` = never.
    fn deadline(&self, now: Instant) -> Option<Instant> {
        match self.state {
            State::Void | State::Listening => None,
            State::Backoff => Some(self.state_entered + ms(self.backoff)),
            State::Connecting => Some(self.state_entered + ms(self.backoff.max(1000))),
            State::Active | State::Idle => {
                if self.probe_interval == 0 {
                    return None;
                }
                let base = if self.state == State::Active {
                    self.last_activity.max(self.state_entered)
                } else {
                    self.state_entered
                };
                let expiration = base + ms(self.probe_interval);
                if now < expiration || self.receive_attempted_since(expiration) {
                    Some(expiration)
                } else {
                    // Expired but nothing was read since: wake up to read first.
                    Some(now + ms(1))
                }
            }
            State::Reconnect => Some(self.state_entered),
        }
    }

    /// What the driver must do now, if anything.
    pub fn run(&mut self, now: Instant) -> Option<Action> {
        let deadline = self.deadline(now)?;
        if now < deadline {
            return None;
        }
        match self.state {
            State::Void | State::Listening => None,
            State::Backoff => Some(Action::Connect),
            State::Connecting | State::Reconnect => Some(Action::Disconnect),
            State::Active => {
                let base = self.last_activity.max(self.state_entered);
                tracing::debug!(
                    target: "reconnect",
                    "{}: idle {} ms, sending inactivity probe",
                    self.name,
                    now.saturating_duration_since(base).as_millis()
                );
                self.transition(now, State::Idle);
                Some(Action::Probe)
            }
            State::Idle => {
                tracing::error!(
                    target: "reconnect",
                    "{}: no response to inactivity probe after {} seconds, disconnecting",
                    self.name,
                    fmt_g3(now.saturating_duration_since(self.state_entered).as_secs_f64())
                );
                Some(Action::Disconnect)
            }
        }
    }

    /// The next instant at which `run()` must be called if nothing else happens; `None` if
    /// there is no deadline. May be in the past (call `run()` at once).
    pub fn timeout(&self, now: Instant) -> Option<Instant> {
        self.deadline(now)
    }

    /// True between `connected()` and the next disconnect/failure/disable.
    pub fn is_connected(&self) -> bool {
        self.state.is_connected()
    }

    /// The current backoff, ms.
    pub fn backoff_ms(&self) -> u64 {
        self.backoff
    }

    /// The connect attempt timeout, max(1 s, backoff).
    pub fn connect_timeout(&self) -> Duration {
        ms(self.backoff.max(1000))
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// Bumped on every transition into or out of a connected state.
    pub fn seqno(&self) -> u32 {
        self.seqno
    }

    /// Time since the last successful connection (`None`: never connected).
    pub fn last_connect_elapsed(&self, now: Instant) -> Option<Duration> {
        self.last_connected
            .map(|t| now.saturating_duration_since(t))
    }

    /// Time since the last disconnection (`None`: never disconnected).
    pub fn last_disconnect_elapsed(&self, now: Instant) -> Option<Duration> {
        self.last_disconnected
            .map(|t| now.saturating_duration_since(t))
    }

    pub fn stats(&self, now: Instant) -> Stats {
        let since_connect = self.last_connect_elapsed(now);
        let current = if self.is_connected() {
            since_connect.unwrap_or_default()
        } else {
            Duration::ZERO
        };
        Stats {
            creation_time: self.creation_time,
            last_activity: self.last_activity,
            last_connected: self.last_connected,
            last_disconnected: self.last_disconnected,
            backoff_ms: self.backoff,
            seqno: self.seqno,
            is_connected: self.is_connected(),
            since_connect,
            since_disconnect: self.last_disconnect_elapsed(now),
            total_connected_duration: self.total_connected_duration + current,
            n_attempted_connections: self.n_attempted_connections,
            n_successful_connections: self.n_successful_connections,
            state: self.state,
            state_elapsed: now.saturating_duration_since(self.state_entered),
        }
    }

    // ---- internals -----------------------------------------------------------------------

    fn info(&self, msg: String) {
        if self.quiet {
            tracing::debug!(target: "reconnect", "{msg}");
        } else {
            tracing::info!(target: "reconnect", "{msg}");
        }
    }

    fn may_retry(&mut self) -> bool {
        match &mut self.max_tries {
            None => true,
            Some(0) => false,
            Some(n) => {
                *n -= 1;
                true
            }
        }
    }

    fn transition(&mut self, now: Instant, state: State) {
        if self.state == State::Connecting {
            self.n_attempted_connections += 1;
            if state == State::Active {
                self.n_successful_connections += 1;
            }
        }
        if self.state.is_connected() != state.is_connected() {
            if self.state.is_connected() {
                if let Some(lc) = self.last_connected {
                    self.total_connected_duration += now.saturating_duration_since(lc);
                }
            }
            self.seqno = self.seqno.wrapping_add(1);
        }
        tracing::debug!(target: "reconnect", "{}: entering {}", self.name, state.name());
        self.state = state;
        self.state_entered = now;
    }
}

/// C's `printf("%.3g", v)` for the non-negative finite values used in log lines.
pub fn fmt_g3(v: f64) -> String {
    if !v.is_finite() {
        return format!("{v}");
    }
    if v == 0.0 {
        return "0".to_string();
    }
    // Round to 3 significant digits first; the exponent of the rounded value decides the style.
    let sci = format!("{v:.2e}");
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..3).contains(&exp) {
        let mant = strip_zeros(mant);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mant}e{sign}{:02}", exp.abs())
    } else {
        let decimals = usize::try_from(2 - exp).unwrap_or(0);
        strip_zeros(&format!("{v:.decimals$}")).to_string()
    }
}

fn strip_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tracing::field::{Field, Visit};
    use tracing_subscriber::layer::{Context, SubscriberExt};
    use tracing_subscriber::Layer;

    /// Captures "LEVEL message" lines of the `reconnect` target.
    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<String>>>);

    struct MsgVisitor(String);
    impl Visit for MsgVisitor {
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            if field.name() == "message" {
                self.0 = format!("{value:?}");
            }
        }
    }

    impl<S: tracing::Subscriber> Layer<S> for Capture {
        fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
            let meta = event.metadata();
            if meta.target() != "reconnect" || *meta.level() == tracing::Level::DEBUG {
                return;
            }
            let mut v = MsgVisitor(String::new());
            event.record(&mut v);
            self.0
                .lock()
                .unwrap()
                .push(format!("{} {}", meta.level(), v.0));
        }
    }

    fn with_logs<R>(f: impl FnOnce() -> R) -> (R, Vec<String>) {
        let cap = Capture::default();
        let sub = tracing_subscriber::registry().with(cap.clone());
        let r = tracing::subscriber::with_default(sub, f);
        let logs = cap.0.lock().unwrap().clone();
        (r, logs)
    }

    struct Clock(Instant);
    impl Clock {
        fn at(&self, msec: u64) -> Instant {
            self.0 + ms(msec)
        }
    }

    const R: &str = "tcp:127.0.0.1:6641";

    #[test]
    fn g3_formatting() {
        for (v, s) in [
            (0.0, "0"),
            (1.0, "1"),
            (2.0, "2"),
            (2.5, "2.5"),
            (5.001, "5"),
            (10.0, "10"),
            (60.0, "60"),
            (123.4, "123"),
            (999.6, "1e+03"),
            (1000.0, "1e+03"),
            (1500.0, "1.5e+03"),
            (0.25, "0.25"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
        ] {
            assert_eq!(fmt_g3(v), s, "{v}");
        }
    }

    #[test]
    fn disabled_until_enabled_then_connect_immediately() {
        let c = Clock(Instant::now());
        let mut r = Reconnect::new(R, c.at(0));
        assert!(!r.is_enabled());
        assert_eq!(r.run(c.at(100_000)), None);
        assert_eq!(r.timeout(c.at(0)), None);
        r.enable(c.at(0));
        assert_eq!(r.timeout(c.at(0)), Some(c.at(0)));
        assert_eq!(r.run(c.at(0)), Some(Action::Connect));
    }

    #[test]
    fn backoff_sequence_and_logs() {
        let c = Clock(Instant::now());
        let (backoffs, logs) = with_logs(|| {
            let mut r = Reconnect::new(R, c.at(0));
            r.enable(c.at(0));
            let mut t = 0;
            let mut seen = vec![];
            for _ in 0..5 {
                assert_eq!(r.run(c.at(t)), Some(Action::Connect));
                r.connecting(c.at(t));
                r.connect_failed(c.at(t), "Connection refused");
                seen.push(r.backoff_ms());
                // Nothing to do before the backoff expires, Connect exactly at it.
                let next = r.timeout(c.at(t)).unwrap();
                assert_eq!(next, c.at(t + r.backoff_ms()));
                assert_eq!(r.run(next - ms(1)), None);
                t += r.backoff_ms();
            }
            seen
        });
        assert_eq!(backoffs, vec![1000, 2000, 4000, 8000, 8000]);
        let want = [
            format!("INFO {R}: connecting..."),
            format!("INFO {R}: connection attempt failed (Connection refused)"),
            format!("INFO {R}: connecting..."),
            format!("INFO {R}: connection attempt failed (Connection refused)"),
            format!("INFO {R}: waiting 2 seconds before reconnect"),
            format!("INFO {R}: connecting..."),
            format!("INFO {R}: connection attempt failed (Connection refused)"),
            format!("INFO {R}: waiting 4 seconds before reconnect"),
            format!("INFO {R}: connecting..."),
            format!("INFO {R}: connection attempt failed (Connection refused)"),
            format!(
                "INFO {R}: continuing to reconnect in the background but suppressing further logging"
            ),
            // At max backoff: "connecting..." and the failure are suppressed.
        ];
        assert_eq!(logs, want);
    }

    #[test]
    fn backoff_free_tries() {
        let c = Clock(Instant::now());
        let mut r = Reconnect::new(R, c.at(0));
        r.set_backoff_free_tries(3);
        r.enable(c.at(0));
        let mut seen = vec![];
        for _ in 0..5 {
            assert_eq!(r.run(c.at(50_000)), Some(Action::Connect));
            r.connect_failed(c.at(0), "Connection refused");
            seen.push(r.backoff_ms());
        }
        // 3 remotes: the first two failures retry at once, then 1, 2, 4 s.
        assert_eq!(seen, vec![0, 0, 1000, 2000, 4000]);
        // Resetting the free tries (leader lost) makes the next ones immediate again.
        r.set_backoff_free_tries(2);
        assert_eq!(r.run(c.at(50_000)), Some(Action::Connect));
        r.connect_failed(c.at(50_000), "x");
        assert_eq!(r.backoff_ms(), 0);
    }

    #[test]
    fn connect_attempt_timeout() {
        let c = Clock(Instant::now());
        let (_, logs) = with_logs(|| {
            let mut r = Reconnect::new(R, c.at(0));
            r.enable(c.at(0));
            assert_eq!(r.run(c.at(0)), Some(Action::Connect));
            r.connecting(c.at(0));
            assert_eq!(r.connect_timeout(), ms(1000));
            assert_eq!(r.timeout(c.at(0)), Some(c.at(1000)));
            assert_eq!(r.run(c.at(999)), None);
            assert_eq!(r.run(c.at(1000)), Some(Action::Disconnect));
            r.disconnected(c.at(1000), None);
            assert_eq!(r.backoff_ms(), 1000);
            // Later attempts time out after max(1 s, backoff).
            for _ in 0..3 {
                let t = r.timeout(c.at(0)).unwrap();
                r.connecting(t);
                r.disconnected(t, None);
            }
            assert_eq!(r.backoff_ms(), 8000);
            let t = r.timeout(c.at(0)).unwrap();
            r.connecting(t);
            assert_eq!(r.timeout(t), Some(t + ms(8000)));
            assert_eq!(r.connect_timeout(), ms(8000));
        });
        assert_eq!(logs[1], format!("INFO {R}: connection attempt timed out"));
    }

    #[test]
    fn probe_then_disconnect() {
        let c = Clock(Instant::now());
        let (_, logs) = with_logs(|| {
            let mut r = Reconnect::new(R, c.at(0));
            r.enable(c.at(0));
            r.run(c.at(0));
            r.connecting(c.at(0));
            r.connected(c.at(10));
            assert!(r.is_connected());
            assert_eq!(r.timeout(c.at(10)), Some(c.at(5010)));
            assert_eq!(r.run(c.at(5009)), None);
            assert_eq!(r.run(c.at(5010)), Some(Action::Probe));
            assert_eq!(r.state(), State::Idle);
            assert!(r.is_connected());
            assert_eq!(r.timeout(c.at(5010)), Some(c.at(10_010)));
            assert_eq!(r.run(c.at(10_009)), None);
            assert_eq!(r.run(c.at(10_010)), Some(Action::Disconnect));
            r.disconnected(c.at(10_010), None);
            assert!(!r.is_connected());
            // Connected for 10 s but with no activity since connecting: normal backoff.
            assert_eq!(r.backoff_ms(), 1000);
        });
        assert_eq!(
            logs,
            vec![
                format!("INFO {R}: connecting..."),
                format!("INFO {R}: connected"),
                format!(
                    "ERROR {R}: no response to inactivity probe after 5 seconds, disconnecting"
                ),
                format!("INFO {R}: connection dropped"),
            ]
        );
    }

    #[test]
    fn activity_resets_probe_timer() {
        let c = Clock(Instant::now());
        let mut r = Reconnect::new(R, c.at(0));
        r.enable(c.at(0));
        r.connected(c.at(0));
        r.activity(c.at(3000));
        assert_eq!(r.run(c.at(5000)), None);
        assert_eq!(r.timeout(c.at(5000)), Some(c.at(8000)));
        assert_eq!(r.run(c.at(8000)), Some(Action::Probe));
        // Any reply in IDLE goes back to ACTIVE and restarts the interval.
        r.activity(c.at(8500));
        assert_eq!(r.state(), State::Active);
        assert_eq!(r.run(c.at(13_000)), None);
        assert_eq!(r.run(c.at(13_500)), Some(Action::Probe));
    }

    #[test]
    fn probe_interval_rules() {
        let c = Clock(Instant::now());
        let mut r = Reconnect::new(R, c.at(0));
        assert_eq!(r.probe_interval(), 5000);
        r.set_probe_interval(1);
        assert_eq!(r.probe_interval(), 1000);
        r.set_probe_interval(999);
        assert_eq!(r.probe_interval(), 1000);
        r.set_probe_interval(30_000);
        assert_eq!(r.probe_interval(), 30_000);
        r.set_probe_interval(0);
        assert_eq!(r.probe_interval(), 0);
        r.enable(c.at(0));
        r.connected(c.at(0));
        assert_eq!(r.timeout(c.at(0)), None);
        assert_eq!(r.run(c.at(1_000_000)), None);
    }

    #[test]
    fn long_active_connection_resets_backoff() {
        let c = Clock(Instant::now());
        let (_, logs) = with_logs(|| {
            let mut r = Reconnect::new(R, c.at(0));
            r.set_probe_interval(0);
            r.enable(c.at(0));
            // Climb to 8 s backoff.
            for _ in 0..4 {
                r.connect_failed(c.at(0), "Connection refused");
            }
            assert_eq!(r.backoff_ms(), 8000);
            // Connected and active for >= 8 s: back to the minimum.
            r.connected(c.at(100_000));
            r.activity(c.at(108_000));
            r.disconnected(c.at(110_000), Some("Connection reset by peer"));
            assert_eq!(r.backoff_ms(), 1000);
            // Connected but active for less than the backoff: doubles.
            r.connected(c.at(200_000));
            r.activity(c.at(200_500));
            r.peer_closed(c.at(201_000));
            assert_eq!(r.backoff_ms(), 2000);
        });
        assert!(logs.contains(&format!(
            "WARN {R}: connection dropped (Connection reset by peer)"
        )));
        assert!(logs.contains(&format!("INFO {R}: connection closed by peer")));
    }

    #[test]
    fn force_reconnect() {
        let c = Clock(Instant::now());
        let mut r = Reconnect::new(R, c.at(0));
        r.enable(c.at(0));
        // No effect while backing off.
        r.force_reconnect(c.at(0));
        assert_eq!(r.state(), State::Backoff);
        r.connected(c.at(0));
        let seq = r.seqno();
        r.force_reconnect(c.at(100));
        assert_eq!(r.state(), State::Reconnect);
        assert!(!r.is_connected());
        assert_eq!(r.seqno(), seq + 1);
        assert_eq!(r.timeout(c.at(100)), Some(c.at(100)));
        assert_eq!(r.run(c.at(100)), Some(Action::Disconnect));
        r.disconnected(c.at(100), None);
        assert_eq!(r.state(), State::Backoff);
        assert_eq!(r.backoff_ms(), 1000);
    }

    #[test]
    fn receive_attempted_delays_probe() {
        let c = Clock(Instant::now());
        let mut r = Reconnect::new(R, c.at(0));
        r.enable(c.at(0));
        r.connected(c.at(0));
        r.receive_attempted(c.at(0));
        // Deadline passed during a stall, but nothing was read since: wake up to read first.
        assert_eq!(r.timeout(c.at(9000)), Some(c.at(9001)));
        assert_eq!(r.run(c.at(9000)), None);
        r.receive_attempted(c.at(9000));
        assert_eq!(r.run(c.at(9000)), Some(Action::Probe));
    }

    #[test]
    fn max_tries_and_disable() {
        let c = Clock(Instant::now());
        let mut r = Reconnect::new(R, c.at(0));
        r.set_max_tries(Some(2));
        r.enable(c.at(0)); // uses one try
        r.connect_failed(c.at(0), "x"); // uses the second
        assert_eq!(r.state(), State::Backoff);
        r.connect_failed(c.at(0), "x");
        assert_eq!(r.state(), State::Void);
        assert_eq!(r.run(c.at(100_000)), None);

        let mut r = Reconnect::new(R, c.at(0));
        r.enable(c.at(0));
        r.disable(c.at(0));
        assert!(!r.is_enabled());
        assert_eq!(r.run(c.at(100_000)), None);
    }

    #[test]
    fn set_backoff_clamps() {
        let c = Clock(Instant::now());
        let mut r = Reconnect::new(R, c.at(0));
        r.set_backoff(10, 0);
        assert_eq!((r.min_backoff_ms(), r.max_backoff_ms()), (1000, 8000));
        r.set_backoff(5000, 2000);
        assert_eq!((r.min_backoff_ms(), r.max_backoff_ms()), (5000, 5000));
    }

    #[test]
    fn stats_and_seqno() {
        let c = Clock(Instant::now());
        let mut r = Reconnect::new(R, c.at(0));
        r.enable(c.at(0));
        r.connecting(c.at(0));
        r.connected(c.at(1000));
        let s = r.stats(c.at(3000));
        assert!(s.is_connected);
        assert_eq!(s.seqno, 1);
        assert_eq!(s.n_attempted_connections, 1);
        assert_eq!(s.n_successful_connections, 1);
        assert_eq!(s.total_connected_duration, ms(2000));
        r.peer_closed(c.at(4000));
        let s = r.stats(c.at(5000));
        assert_eq!(s.seqno, 2);
        assert_eq!(s.total_connected_duration, ms(3000));
        assert_eq!(s.since_disconnect, Some(ms(1000)));
        assert_eq!(s.state, State::Backoff);
    }

    #[test]
    fn passive_mode() {
        let c = Clock(Instant::now());
        let (_, logs) = with_logs(|| {
            let mut r = Reconnect::new("punix:x", c.at(0));
            r.set_passive(true, c.at(0));
            r.enable(c.at(0));
            assert_eq!(r.run(c.at(0)), Some(Action::Connect));
            r.listening(c.at(0));
            assert_eq!(r.timeout(c.at(0)), None);
            r.connected(c.at(100));
            r.activity(c.at(200));
            r.peer_closed(c.at(300));
            // Passive: reconnect (listen) again at once.
            assert_eq!(r.backoff_ms(), 0);
        });
        assert_eq!(logs[0], "INFO punix:x: listening...");
    }
}
