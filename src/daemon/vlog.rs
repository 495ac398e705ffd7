//! OVS-compatible logging ("vlog", spec ovsdb-protocol.md §13) on top of `tracing`.
//! Helper-owned. Modules are `tracing` targets (`info!(target: "ovn_ic", ...)`).
//!
//! * [`spec`]: levels, destinations, the module table, the SPEC grammar (OVS error texts) and
//!   the mapping of `tracing` targets to modules ([`spec::module_for_target`]: a module name is
//!   itself; a Rust module path maps by its most specific known segment, e.g.
//!   `ovn_ic::ovsdb::session` → `ovsdb_cs`; anything else → `ovn_ic`).
//! * [`pattern`]: `%`-escapes of the line patterns.
//! * [`logger`]: [`Logger`], the state and output (console, file, syslog), and the `vlog/*`
//!   texts; instantiable in tests with a [`MemorySink`] console.
//! * [`layer`]: the `tracing_subscriber` [`VlogLayer`] feeding a `Logger`.
//! * [`ratelimit`]: [`RateLimit`] and the [`vlog_rl!`](crate::vlog_rl) macro.
//!
//! Levels: `tracing` ERROR→ERR, WARN→WARN, INFO→INFO, DEBUG/TRACE→DBG; EMER is an `error!`
//! with an `emer` field, written [`vlog_emer!`](crate::vlog_emer)`(target: "x", "...")`.
//!
//! Rate-limited logging:
//!
//! ```ignore
//! use crate::daemon::vlog::RateLimit;
//! static WARN_RL: RateLimit = RateLimit::new(5, 1); // 5 per minute, bursts of 1
//! crate::vlog_rl!(WARN_RL, warn, target: "ovn_ic",
//!                 "Can't get router uuid for transit switch port {}.", p);
//! ```
//!
//! Contract used by the rest of the daemon (keep these names and signatures):

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

pub mod layer;
pub mod logger;
pub mod pattern;
pub mod ratelimit;
pub mod spec;
pub mod syslog;

pub use layer::VlogLayer;
pub use logger::{FileError, Logger, MemorySink};
pub use ratelimit::{RateLimit, RlVerdict};
pub use spec::{check_spec, check_syslog_method, Destination, Level};

/// Logging configuration from the command line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VlogConfig {
    /// Program name for `%A` and syslog ident (normally "ovn-ic").
    pub program: String,
    /// `-v` specs in order (`""` = bare `-v`).
    pub specs: Vec<String>,
    pub log_file: Option<PathBuf>,
    pub syslog_method: Option<String>,
    pub syslog_target: Option<String>,
}

impl VlogConfig {
    fn program_name(&self) -> &str {
        if self.program.is_empty() {
            "ovn-ic"
        } else {
            &self.program
        }
    }

    /// The file a bare `--log-file` means: `$OVS_LOGDIR/<program>.log` (default log dir
    /// `/var/log/openvswitch`).
    pub fn default_log_file(&self) -> PathBuf {
        let dir = std::env::var("OVS_LOGDIR").unwrap_or_else(|_| "/var/log/openvswitch".into());
        PathBuf::from(dir).join(format!("{}.log", self.program_name()))
    }
}

/// The installed global logger (used by [`vlog_rl!`](crate::vlog_rl)).
static GLOBAL: OnceLock<Arc<Logger>> = OnceLock::new();

/// Monotonic milliseconds since the first call (rate limiting clock).
pub fn monotonic_ms() -> u64 {
    static BASE: OnceLock<Instant> = OnceLock::new();
    let base = BASE.get_or_init(Instant::now);
    u64::try_from(base.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Handle to the global logger; cheap to clone; all methods are thread-safe.
#[derive(Clone)]
pub struct Vlog {
    logger: Arc<Logger>,
}

impl Vlog {
    /// Install the global `tracing` subscriber. Errors (bad spec, log file that cannot be opened)
    /// are returned as the one-line message to print before exiting 1.
    ///
    /// Messages (no program prefix): `processing "SPEC": <reason>`,
    /// `unsupported syslog method 'X'`, `failed to open FILE for logging: <strerror>` (only for
    /// an explicit file; the default file of a bare `--log-file` failing to open is logged as a
    /// WARN and startup continues, like OVS), `logging is already initialized`.
    ///
    /// Must run before the daemon changes directory (a relative log file is resolved against
    /// the current directory here).
    pub fn init(cfg: &VlogConfig) -> Result<Vlog, String> {
        if GLOBAL.get().is_some() {
            return Err("logging is already initialized".into());
        }
        let vlog = Vlog::build(cfg, Box::new(std::io::stderr()))?;
        let subscriber = tracing_subscriber::layer::SubscriberExt::with(
            tracing_subscriber::Registry::default(),
            vlog.layer(),
        );
        tracing::subscriber::set_global_default(subscriber)
            .map_err(|_| "logging is already initialized".to_string())?;
        let _ = GLOBAL.set(vlog.logger.clone());
        tracing::callsite::rebuild_interest_cache();
        Ok(vlog)
    }

    /// Build a logger from `cfg` with console output to `console`, without installing
    /// anything globally (tests; embedding in another subscriber via [`Vlog::layer`]).
    ///
    /// The syslog method is `cfg.syslog_method`, else env `OVS_SYSLOG_METHOD`, else `libc`.
    pub fn build(cfg: &VlogConfig, console: Box<dyn Write + Send>) -> Result<Vlog, String> {
        let logger = Arc::new(Logger::new(cfg.program_name(), console));
        let method = cfg
            .syslog_method
            .clone()
            .or_else(|| {
                std::env::var("OVS_SYSLOG_METHOD")
                    .ok()
                    .filter(|m| !m.is_empty())
            })
            .unwrap_or_else(|| "libc".into());
        logger.set_syslogger(syslog::Syslogger::create(&method)?);
        for s in &cfg.specs {
            logger
                .apply_spec(s)
                .map_err(|e| format!("processing \"{s}\": {e}"))?;
        }
        if let Some(t) = &cfg.syslog_target {
            logger.set_syslog_target(t);
            if logger.has_syslog_target() {
                logger.log(
                    spec::vlog_module(),
                    Level::Warn,
                    "--syslog-target flag is deprecated, use --syslog-method instead",
                );
            }
        }
        if let Some(f) = &cfg.log_file {
            if let Err(e) = logger.set_log_file(f) {
                if *f == cfg.default_log_file() {
                    logger.log(spec::vlog_module(), Level::Warn, &e.message);
                } else {
                    return Err(e.message);
                }
            }
        }
        Ok(Vlog { logger })
    }

    /// The globally installed logger, if [`Vlog::init`] succeeded.
    pub fn global() -> Option<Vlog> {
        GLOBAL.get().map(|l| Vlog { logger: l.clone() })
    }

    /// The underlying logger.
    pub fn logger(&self) -> &Arc<Logger> {
        &self.logger
    }

    /// A `tracing` layer writing into this logger.
    pub fn layer(&self) -> VlogLayer {
        VlogLayer::new(self.logger.clone())
    }

    fn changed(&self) {
        tracing::callsite::rebuild_interest_cache();
    }

    /// `vlog/set SPEC` (and `-v SPEC`): error text as OVS.
    pub fn set(&self, spec: &str) -> Result<(), String> {
        let r = self.logger.apply_spec(spec);
        self.changed();
        r
    }

    /// `vlog/set SPEC...`: no SPEC = everything to `dbg`; stops at the first bad SPEC (the
    /// ones before it stay applied), returning its error.
    pub fn set_many(&self, specs: &[String]) -> Result<(), String> {
        if specs.is_empty() {
            self.logger.set_all_levels(Level::Dbg);
        }
        let r = specs.iter().try_for_each(|s| self.logger.apply_spec(s));
        self.changed();
        r
    }

    /// `vlog/list` reply text.
    pub fn list(&self) -> String {
        self.logger.list()
    }
    /// `vlog/list-pattern` reply text.
    pub fn list_pattern(&self) -> String {
        self.logger.list_pattern()
    }
    /// `vlog/reopen`: Err("Logging to file not configured") without a log file.
    pub fn reopen(&self) -> Result<(), String> {
        let r = self.logger.reopen();
        self.changed();
        r
    }
    /// `vlog/close`.
    pub fn close(&self) {
        self.logger.close();
        self.changed();
    }
    /// `vlog/enable-rate-limit` / `vlog/disable-rate-limit` (empty or "any" = all modules).
    pub fn set_rate_limit(&self, modules: &[String], enable: bool) -> Result<(), String> {
        self.logger.set_rate_limits(modules, enable)
    }
    /// Called in a freshly forked child (the `--monitor` supervisor logs as "(monitor)").
    pub fn set_subprogram(&self, name: Option<&str>) {
        self.logger.set_subprogram(name);
    }
}

/// Rate-limit decision for [`vlog_rl!`](crate::vlog_rl): uses the global logger's levels and
/// per-module rate-limit switch when installed. Without an installed logger (unit tests, the
/// library used on its own) nothing is rate limited, so every message reaches the subscriber.
#[doc(hidden)]
pub fn __rl_check(rl: &RateLimit, target: &str, level: Level) -> RlVerdict {
    let now = monotonic_ms();
    match GLOBAL.get() {
        Some(lg) => lg.rate_limit(rl, spec::module_for_target(target), level, now),
        None if BARE_BUCKETS.with(|b| b.get()) => rl.check_at(now),
        None => RlVerdict::Log(None),
    }
}

thread_local! {
    /// Tests of the rate limiter itself apply the buckets without an installed logger.
    static BARE_BUCKETS: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Log through a [`RateLimit`]:
/// `vlog_rl!(RL, warn, target: "ovn_ic", "fmt {}", x)`; levels `emer error warn info debug`.
/// When earlier messages were dropped, first logs "Dropped N log messages in last S seconds
/// (most recently, T seconds ago) due to excessive rate" at the same level and target.
#[macro_export]
macro_rules! vlog_rl {
    ($rl:expr, $lvl:ident, target: $target:expr, $($arg:tt)+) => {{
        match $crate::daemon::vlog::__rl_check(&$rl, $target, $crate::__vlog_level!($lvl)) {
            $crate::daemon::vlog::RlVerdict::Drop => {}
            $crate::daemon::vlog::RlVerdict::Log(__vlog_dropped) => {
                if let ::core::option::Option::Some(__vlog_d) = __vlog_dropped {
                    $crate::__vlog_event!($lvl, $target, "{}", __vlog_d);
                }
                $crate::__vlog_event!($lvl, $target, $($arg)+);
            }
        }
    }};
}

/// Log an EMER message: `vlog_emer!(target: "daemon_unix", "...", ...)`.
#[macro_export]
macro_rules! vlog_emer {
    (target: $target:expr, $($arg:tt)+) => {
        ::tracing::error!(target: $target, emer = true, $($arg)+)
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __vlog_level {
    (emer) => {
        $crate::daemon::vlog::Level::Emer
    };
    (error) => {
        $crate::daemon::vlog::Level::Err
    };
    (warn) => {
        $crate::daemon::vlog::Level::Warn
    };
    (info) => {
        $crate::daemon::vlog::Level::Info
    };
    (debug) => {
        $crate::daemon::vlog::Level::Dbg
    };
    (trace) => {
        $crate::daemon::vlog::Level::Dbg
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __vlog_event {
    (emer, $target:expr, $($arg:tt)+) => {
        ::tracing::error!(target: $target, emer = true, $($arg)+)
    };
    (error, $target:expr, $($arg:tt)+) => {
        ::tracing::error!(target: $target, $($arg)+)
    };
    (warn, $target:expr, $($arg:tt)+) => {
        ::tracing::warn!(target: $target, $($arg)+)
    };
    (info, $target:expr, $($arg:tt)+) => {
        ::tracing::info!(target: $target, $($arg)+)
    };
    (debug, $target:expr, $($arg:tt)+) => {
        ::tracing::debug!(target: $target, $($arg)+)
    };
    (trace, $target:expr, $($arg:tt)+) => {
        ::tracing::trace!(target: $target, $($arg)+)
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    fn cfg(specs: &[&str]) -> VlogConfig {
        VlogConfig {
            program: "ovn-ic".into(),
            specs: specs.iter().map(|s| s.to_string()).collect(),
            syslog_method: Some("null".into()),
            ..VlogConfig::default()
        }
    }

    fn with_vlog<R>(v: &Vlog, f: impl FnOnce() -> R) -> R {
        let sub = tracing_subscriber::Registry::default().with(v.layer());
        BARE_BUCKETS.with(|b| b.set(true));
        let r = tracing::subscriber::with_default(sub, || {
            tracing::callsite::rebuild_interest_cache();
            f()
        });
        BARE_BUCKETS.with(|b| b.set(false));
        r
    }

    #[test]
    fn build_errors() {
        let sink = MemorySink::new();
        let e = Vlog::build(&cfg(&["console:emer", "bogus"]), Box::new(sink.clone()));
        assert_eq!(
            e.err(),
            Some("processing \"bogus\": no destination, level, or module \"bogus\"".into())
        );
        let mut c = cfg(&[]);
        c.syslog_method = Some("journald".into());
        let e = Vlog::build(&c, Box::new(sink.clone()));
        assert_eq!(e.err(), Some("unsupported syslog method 'journald'".into()));
        let mut c = cfg(&[]);
        c.log_file = Some("/nonexistent/dir/ovn-ic.log".into());
        let e = Vlog::build(&c, Box::new(sink.clone()));
        assert_eq!(
            e.err(),
            Some(
                "failed to open /nonexistent/dir/ovn-ic.log for logging: No such file or directory"
                    .into()
            )
        );
        // The default file of a bare --log-file failing is only a warning.
        let mut c = cfg(&[]);
        c.program = "ovn-ic-vlog-test-no-such-file".into();
        let default = c.default_log_file();
        if !default.parent().is_some_and(|d| d.exists()) {
            c.log_file = Some(default.clone());
            let v = Vlog::build(&c, Box::new(sink.clone())).unwrap();
            assert!(sink.take().contains(&format!(
                "|vlog|WARN|failed to open {} for logging:",
                default.display()
            )));
            assert_eq!(v.reopen(), Err("Logging to file not configured".into()));
        }
    }

    #[test]
    fn tracing_events_become_vlog_lines() {
        let sink = MemorySink::new();
        let v = Vlog::build(
            &cfg(&["PATTERN:console:%05N|%c|%p|%m"]),
            Box::new(sink.clone()),
        )
        .unwrap();
        with_vlog(&v, || {
            tracing::info!(target: "reconnect", "tcp:10.0.0.5:6645: connected");
            tracing::debug!(target: "reconnect", "hidden at default level");
            tracing::warn!(target: "ovn_ic", port = "p1", "with field");
            tracing::error!(target: "jsonrpc", "err {}", 42);
            crate::vlog_emer!(target: "daemon_unix", "pidfile: already running as pid {}, aborting", 7);
            // Default target `ovn_ic::daemon::vlog::tests`: module `vlog`.
            tracing::info!("default target");
        });
        assert_eq!(
            sink.take(),
            "00001|reconnect|INFO|tcp:10.0.0.5:6645: connected\n\
             00002|ovn_ic|WARN|with field port=p1\n\
             00003|jsonrpc|ERR|err 42\n\
             00004|daemon_unix|EMER|pidfile: already running as pid 7, aborting\n\
             00005|vlog|INFO|default target\n"
        );
        // vlog/set at run time changes what passes (interest cache rebuilt).
        v.set("reconnect:console:dbg").unwrap();
        v.set("jsonrpc:off").unwrap();
        with_vlog(&v, || {
            tracing::debug!(target: "reconnect", "now shown");
            tracing::error!(target: "jsonrpc", "now hidden");
        });
        assert_eq!(sink.take(), "00006|reconnect|DBG|now shown\n");
        assert_eq!(
            v.set("console:file"),
            Err("cannot specify multiple destinations".into())
        );
        assert_eq!(
            v.set_many(&["ovn_ic:warn".into(), "nope".into(), "vlog:warn".into()]),
            Err("no destination, level, or module \"nope\"".into())
        );
        assert_eq!(
            v.logger().level(spec::ovn_ic_module(), Destination::File),
            Level::Warn
        );
        assert_eq!(
            v.logger().level(spec::vlog_module(), Destination::File),
            Level::Info
        );
        v.set_many(&[]).unwrap();
        assert_eq!(v.logger().max_level(), Level::Dbg);
        assert!(v
            .list()
            .contains("\nvlog               DBG        DBG        DBG\n"));
    }

    #[test]
    fn disabled_levels_are_not_formatted() {
        struct Bomb;
        impl std::fmt::Display for Bomb {
            fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                panic!("formatted a disabled message");
            }
        }
        let sink = MemorySink::new();
        let v = Vlog::build(&cfg(&[]), Box::new(sink.clone())).unwrap();
        with_vlog(&v, || {
            for _ in 0..3 {
                tracing::debug!(target: "ovsdb_idl", "{}", Bomb);
            }
            assert!(!tracing::enabled!(target: "ovsdb_idl", tracing::Level::DEBUG));
        });
        assert_eq!(sink.take(), "");
    }

    #[test]
    fn rate_limited_macro_logs_dropped_line() {
        static RL: RateLimit = RateLimit::new(1, 1);
        let sink = MemorySink::new();
        let v = Vlog::build(&cfg(&["PATTERN:console:%c|%p|%m"]), Box::new(sink.clone())).unwrap();
        with_vlog(&v, || {
            for i in 0..5 {
                crate::vlog_rl!(RL, warn, target: "ovn_ic", "Can't get router uuid for transit switch port {}.", i);
            }
        });
        assert_eq!(
            sink.take(),
            "ovn_ic|WARN|Can't get router uuid for transit switch port 0.\n"
        );
        // Simulate a minute passing on the bucket directly: the next message reports the drops.
        match RL.check_at(monotonic_ms() + 120_000) {
            RlVerdict::Log(Some(d)) => {
                assert!(d.starts_with("Dropped 4 log messages in last "), "{d}");
                assert!(d.ends_with(" due to excessive rate"), "{d}");
            }
            other => panic!("{other:?}"),
        }
    }

    /// `Vlog::init` installs a process-global subscriber, so it runs in a child process: this
    /// test re-executes the test binary for itself with `VLOG_INIT_CHILD=1`.
    #[test]
    fn init_installs_global_subscriber() {
        if std::env::var_os("VLOG_INIT_CHILD").is_some() {
            let v = Vlog::init(&cfg(&["PATTERN:console:%c|%p|%m"])).unwrap();
            tracing::info!(target: "reconnect", "hello");
            tracing::debug!(target: "reconnect", "hidden");
            v.set("reconnect:dbg").unwrap();
            tracing::debug!(target: "reconnect", "shown");
            static RL: RateLimit = RateLimit::new(1, 1);
            for i in 0..3 {
                crate::vlog_rl!(RL, info, target: "ovn_util", "limited {}", i);
            }
            v.set_rate_limit(&["ovn_util".into()], false).unwrap();
            crate::vlog_rl!(RL, info, target: "ovn_util", "unlimited");
            v.set("ovn_util:off").unwrap();
            v.set_rate_limit(&[], true).unwrap();
            crate::vlog_rl!(RL, info, target: "ovn_util", "off");
            assert!(Vlog::global().is_some());
            let again = Vlog::init(&cfg(&[]));
            assert_eq!(again.err(), Some("logging is already initialized".into()));
            return;
        }
        let exe = std::env::current_exe().unwrap();
        let out = std::process::Command::new(exe)
            .args([
                "--exact",
                "daemon::vlog::tests::init_installs_global_subscriber",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("VLOG_INIT_CHILD", "1")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "child failed: {stderr}");
        let lines: Vec<&str> = stderr
            .lines()
            .filter(|l| l.contains('|') && !l.contains("test "))
            .collect();
        assert_eq!(
            lines,
            [
                "reconnect|INFO|hello",
                "reconnect|DBG|shown",
                "ovn_util|INFO|limited 0",
                "ovn_util|INFO|unlimited"
            ],
            "{stderr}"
        );
    }

    #[test]
    fn subprogram_and_file_via_handle() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ic.log");
        let sink = MemorySink::new();
        let mut c = cfg(&["console:off"]);
        c.log_file = Some(path.clone());
        let v = Vlog::build(&c, Box::new(sink.clone())).unwrap();
        v.set_subprogram(Some("monitor"));
        with_vlog(&v, || {
            tracing::info!(target: "daemon_unix", "monitoring pid 42 (healthy)");
        });
        v.set_subprogram(None);
        v.close();
        v.reopen().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[1].ends_with("|00002|daemon_unix(monitor)|INFO|monitoring pid 42 (healthy)"));
        assert!(lines[2].ends_with(&format!(
            "|00003|vlog|INFO|opened log file {}",
            path.display()
        )));
        assert_eq!(sink.take(), "");
        assert!(v.list_pattern().contains("\nSYSLOG            "));
        v.set_rate_limit(&["reconnect".into()], false).unwrap();
        assert!(v.list().contains("(rate limiting disabled)"));
    }
}
