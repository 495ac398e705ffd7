//! OVS-compatible logging ("vlog", spec ovsdb-protocol.md §13) on top of `tracing`.
//! Helper-owned. Modules are `tracing` targets (`info!(target: "ovn_ic", ...)`).
//!
//! Contract used by the rest of the daemon (keep these names and signatures):

use std::path::PathBuf;

pub mod spec;

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

/// Handle to the global logger; cheap to clone; all methods are thread-safe.
#[derive(Clone)]
pub struct Vlog {
    _private: (),
}

impl Vlog {
    /// Install the global `tracing` subscriber. Errors (bad spec, log file that cannot be opened)
    /// are returned as the one-line message to print before exiting 1.
    pub fn init(cfg: &VlogConfig) -> Result<Vlog, String> {
        let _ = cfg;
        Err("not implemented".into())
    }
    /// `vlog/set SPEC` (and `-v SPEC`): error text as OVS.
    pub fn set(&self, spec: &str) -> Result<(), String> {
        let _ = spec;
        Err("not implemented".into())
    }
    /// `vlog/list` reply text.
    pub fn list(&self) -> String {
        String::new()
    }
    /// `vlog/list-pattern` reply text.
    pub fn list_pattern(&self) -> String {
        String::new()
    }
    /// `vlog/reopen`: Err("Logging to file not configured") without a log file.
    pub fn reopen(&self) -> Result<(), String> {
        Err("Logging to file not configured".into())
    }
    /// `vlog/close`.
    pub fn close(&self) {}
    /// `vlog/enable-rate-limit` / `vlog/disable-rate-limit` (empty or "any" = all modules).
    pub fn set_rate_limit(&self, modules: &[String], enable: bool) -> Result<(), String> {
        let _ = (modules, enable);
        Ok(())
    }
    /// Called in a freshly forked child (the `--monitor` supervisor logs as "(monitor)").
    pub fn set_subprogram(&self, name: Option<&str>) {
        let _ = name;
    }
}
