//! Command line of the C daemon, with getopt_long semantics (spec ovn-ic-core.md §1.1,
//! ovsdb-protocol.md §13.1, §14, §15.1). Helper-owned.

use std::ffi::OsString;
use std::path::PathBuf;

use crate::ovsdb::ssl::SslOptions;

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Run(Box<Options>),
    /// `-h/--help`: print [`usage`] and exit 0.
    Help,
    /// `-o/--options`: print [`options_text`] and exit 0.
    ListOptions,
    /// `-V/--version`.
    Version,
    /// `--dump-inc-proc-graph[=NODE]`.
    DumpGraph(Option<String>),
}

/// Everything `Run` needs. Paths are already resolved (rundir, defaults from the environment).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Options {
    pub ovnnb_db: String,
    pub ovnsb_db: String,
    pub ic_nb_db: String,
    pub ic_sb_db: String,
    /// Control socket path (None = `<rundir>/ovn-ic.<pid>.ctl`, decided after detaching).
    pub unixctl: Option<PathBuf>,
    pub detach: bool,
    pub no_chdir: bool,
    pub pidfile: Option<PathBuf>,
    pub overwrite_pidfile: bool,
    pub monitor: bool,
    pub user: Option<String>,
    /// `-v`/`--verbose` specs in command-line order (`""` for a bare `-v`).
    pub verbose: Vec<String>,
    /// `--log-file` (last one wins); `Some(default)` for a bare `--log-file`.
    pub log_file: Option<PathBuf>,
    pub syslog_method: Option<String>,
    pub syslog_target: Option<String>,
    pub ssl: SslOptions,
    pub rundir: PathBuf,
}

/// A bad command line: one line naming the option, exit status 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CliError(pub String);

/// The process environment the defaults come from (injected for tests).
#[derive(Debug, Clone, Default)]
pub struct Env {
    pub ovn_nb_db: Option<String>,
    pub ovn_sb_db: Option<String>,
    pub ovn_ic_nb_db: Option<String>,
    pub ovn_ic_sb_db: Option<String>,
    pub ovn_rundir: Option<String>,
    pub ovs_logdir: Option<String>,
}

impl Env {
    pub fn from_process() -> Env {
        let g = |k: &str| std::env::var(k).ok();
        Env {
            ovn_nb_db: g("OVN_NB_DB"),
            ovn_sb_db: g("OVN_SB_DB"),
            ovn_ic_nb_db: g("OVN_IC_NB_DB"),
            ovn_ic_sb_db: g("OVN_IC_SB_DB"),
            ovn_rundir: g("OVN_RUNDIR"),
            ovs_logdir: g("OVS_LOGDIR"),
        }
    }
}

/// Parse `args` (without argv[0]). `program` is argv[0] as invoked, used in error messages.
pub fn parse(program: &str, args: &[OsString], env: &Env) -> Result<Command, CliError> {
    let _ = (program, args, env);
    Err(CliError("not implemented".into()))
}
