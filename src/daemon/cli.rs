//! Command line of the C daemon, with getopt_long semantics (spec ovn-ic-core.md §1.1,
//! ovsdb-protocol.md §13.1, §14, §15.1). Helper-owned.
//!
//! # Why a hand-written getopt_long
//!
//! clap cannot reproduce glibc `getopt_long` exactly: optional arguments that must be attached
//! (`--pidfile FILE` leaves `FILE` as a positional argument), a required argument that swallows
//! the next word even when it starts with `-` (`-u --help` uses `--help` as the socket name),
//! glibc's exact error wording (`option '--no' is ambiguous; possibilities: ...`), prefix
//! matching in table order, and short options that are raw control bytes. The parser below is a
//! small table-driven port of glibc's permuting `getopt_long` over the same option table as the C
//! `ovn-ic` (HEAD), so `--options` can be generated from that table too.
//!
//! # Deviations from the C daemon (on purpose)
//!
//! * The first getopt error is returned as a [`CliError`] (the caller prints it and exits 1);
//!   the C daemon prints it and carries on.
//! * `-h`, `-o` and `-V` act when they are reached, like the C daemon (which exits from inside
//!   its option loop): `--help --foo` prints help, `--foo --help` is an error.
//! * `-v`/`--verbose` SPECs are validated here with the vlog grammar ([`super::vlog::check_spec`]),
//!   giving the C text `ovn-ic: processing "SPEC": <reason>` (prefixed by the program's base
//!   name, as `ovs_fatal` does). `Vlog::init` applies them (and would reject them again).
//! * An unsupported `--syslog-method` is rejected here (`ovn-ic: unsupported syslog method 'X'`);
//!   as in OVS only the first `--syslog-method` counts, later ones are ignored unchecked.
//! * `--log-file` is not opened here: `Vlog::init` opens it (fatal for an explicit file that
//!   cannot be opened, like the C daemon). A relative FILE is kept relative (to the current
//!   directory at `Vlog::init` time).
//! * `--help` prints the pidfile default in the OVN run dir, where the pidfile really goes (the
//!   C text wrongly names the Open vSwitch run dir).
//!
//! `--options` prints, like the C daemon, a second line for the long-only options with their
//! raw internal option number as the "short option" byte (0x01…0x0E, e.g. a TAB for
//! `--syslog-target`, a newline for `--ssl-protocols`; none for `--detach`, whose number is 0).
//! As in getopt, those bytes are accepted as short options too (`-\x01` = `--no-self-confinement`).

use std::ffi::OsString;
use std::net::SocketAddr;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
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
    /// `--metrics=ADDR:PORT`: serve Prometheus metrics over HTTP there (off when None).
    pub metrics: Option<SocketAddr>,
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

    /// `OVN_RUNDIR`, else Debian's compiled-in `/var/run/ovn`.
    pub fn rundir(&self) -> PathBuf {
        PathBuf::from(self.ovn_rundir.as_deref().unwrap_or("/var/run/ovn"))
    }

    /// `OVS_LOGDIR`, else `/var/log/openvswitch` (the OVS log dir: bare `--log-file`).
    pub fn logdir(&self) -> PathBuf {
        PathBuf::from(self.ovs_logdir.as_deref().unwrap_or("/var/log/openvswitch"))
    }

    fn db_default(&self, var: &Option<String>, sock: &str) -> String {
        match var {
            Some(v) => v.clone(),
            None => format!("unix:{}", self.rundir().join(sock).display()),
        }
    }
    pub fn default_nb_db(&self) -> String {
        self.db_default(&self.ovn_nb_db, "ovnnb_db.sock")
    }
    pub fn default_sb_db(&self) -> String {
        self.db_default(&self.ovn_sb_db, "ovnsb_db.sock")
    }
    pub fn default_ic_nb_db(&self) -> String {
        self.db_default(&self.ovn_ic_nb_db, "ovn_ic_nb_db.sock")
    }
    pub fn default_ic_sb_db(&self) -> String {
        self.db_default(&self.ovn_ic_sb_db, "ovn_ic_sb_db.sock")
    }
}

/// Version of the Open vSwitch library this daemon is compatible with (second `--version` line).
pub const OVS_LIBRARY_VERSION: &str = "3.7.90";

/// `-V/--version` text (also the unixctl `version` reply), without a trailing newline:
/// `ovn-ic 26.3.90\nOpen vSwitch Library 3.6.90`. The first line ends in a dotted version
/// ≥ 2.5.90, which `ovn-ctl stop_ic` requires before it tries a graceful `exit`.
pub fn version_text() -> String {
    format!(
        "ovn-ic {}\nOpen vSwitch Library {}",
        env!("CARGO_PKG_VERSION"),
        OVS_LIBRARY_VERSION
    )
}

/// The program's short name (`set_program_name`: basename of argv[0]), `ovn-ic` when empty.
pub fn program_basename(program: &str) -> &str {
    match program.rsplit('/').next() {
        Some(b) if !b.is_empty() => b,
        _ => "ovn-ic",
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HasArg {
    No,
    Required,
    Optional,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Opt {
    OvnsbDb,
    OvnnbDb,
    IcSbDb,
    IcNbDb,
    Unixctl,
    Help,
    Options,
    Version,
    DumpGraph,
    Detach,
    NoSelfConfinement,
    NoChdir,
    Pidfile,
    OverwritePidfile,
    Monitor,
    User,
    Verbose,
    LogFile,
    SyslogMethod,
    SyslogTarget,
    PrivateKey,
    Certificate,
    CaCert,
    SslProtocols,
    SslCiphers,
    SslCiphersuites,
    SslServerName,
    Metrics,
}

struct OptDef {
    name: &'static str,
    has_arg: HasArg,
    /// getopt `val`: the short option letter, or the C enum number for long-only options.
    val: u8,
    opt: Opt,
}

const fn def(name: &'static str, has_arg: HasArg, val: u8, opt: Opt) -> OptDef {
    OptDef {
        name,
        has_arg,
        val,
        opt,
    }
}

/// The C `long_options[]` of HEAD `ic/ovn-ic.c`, in declaration order. Long-only options carry
/// their enum values: `OVN_DAEMON_OPTION_ENUMS` (detach 0, no-self-confinement 1, no-chdir 2,
/// overwrite-pidfile 3, pidfile 4, monitor 5, user 6), `VLOG_OPTION_ENUMS` (log-file 7,
/// syslog-method 8, syslog-target 9), `SSL_OPTION_ENUMS` (ssl-protocols 10, ssl-ciphers 11,
/// ssl-ciphersuites 12, ssl-server-name 13), then dump-inc-proc-graph 14. Ours only: metrics 15
/// (last, so the C options' prefixes and ambiguity lists are unchanged, except that `--m` now
/// also matches `--metrics`).
const OPTIONS: &[OptDef] = &[
    def("ovnsb-db", HasArg::Required, b'd', Opt::OvnsbDb),
    def("ovnnb-db", HasArg::Required, b'D', Opt::OvnnbDb),
    def("ic-sb-db", HasArg::Required, b'i', Opt::IcSbDb),
    def("ic-nb-db", HasArg::Required, b'I', Opt::IcNbDb),
    def("unixctl", HasArg::Required, b'u', Opt::Unixctl),
    def("help", HasArg::No, b'h', Opt::Help),
    def("options", HasArg::No, b'o', Opt::Options),
    def("version", HasArg::No, b'V', Opt::Version),
    def("dump-inc-proc-graph", HasArg::Optional, 14, Opt::DumpGraph),
    def("detach", HasArg::No, 0, Opt::Detach),
    def("no-self-confinement", HasArg::No, 1, Opt::NoSelfConfinement),
    def("no-chdir", HasArg::No, 2, Opt::NoChdir),
    def("pidfile", HasArg::Optional, 4, Opt::Pidfile),
    def("overwrite-pidfile", HasArg::No, 3, Opt::OverwritePidfile),
    def("monitor", HasArg::No, 5, Opt::Monitor),
    def("user", HasArg::Required, 6, Opt::User),
    def("verbose", HasArg::Optional, b'v', Opt::Verbose),
    def("log-file", HasArg::Optional, 7, Opt::LogFile),
    def("syslog-method", HasArg::Required, 8, Opt::SyslogMethod),
    def("syslog-target", HasArg::Required, 9, Opt::SyslogTarget),
    def("private-key", HasArg::Required, b'p', Opt::PrivateKey),
    def("certificate", HasArg::Required, b'c', Opt::Certificate),
    def("ca-cert", HasArg::Required, b'C', Opt::CaCert),
    def("ssl-protocols", HasArg::Required, 10, Opt::SslProtocols),
    def("ssl-ciphers", HasArg::Required, 11, Opt::SslCiphers),
    def(
        "ssl-ciphersuites",
        HasArg::Required,
        12,
        Opt::SslCiphersuites,
    ),
    def("ssl-server-name", HasArg::Required, 13, Opt::SslServerName),
    def("metrics", HasArg::Required, 15, Opt::Metrics),
];

/// `-o/--options` text (`ovs_cmdl_print_options`): every option in declaration order, each
/// `--name`, `--name=ARG` or `--name=[ARG]` on a line, then, for options with a nonzero getopt
/// value, `-<c> ARG`, `-<c> [ARG]` or `-<c> ` (raw control bytes for long-only options).
pub fn options_text() -> String {
    let mut s = String::new();
    for o in OPTIONS {
        let arg = match o.has_arg {
            HasArg::No => "",
            HasArg::Required => "ARG",
            HasArg::Optional => "[ARG]",
        };
        let eq = if o.has_arg == HasArg::No { "" } else { "=" };
        s.push_str(&format!("--{}{}{}\n", o.name, eq, arg));
        if o.val > 0 {
            s.push_str(&format!("-{} {}\n", o.val as char, arg));
        }
    }
    s
}

/// `-h/--help` text for the process environment (see [`usage_with_env`]).
pub fn usage(program: &str) -> String {
    usage_with_env(program, &Env::from_process())
}

/// `-h/--help` text: the C daemon's usage with the effective defaults for `env`.
pub fn usage_with_env(program: &str, env: &Env) -> String {
    let p = program_basename(program);
    let rundir = env.rundir();
    format!(
        "{p}: OVN interconnection management daemon
usage: {p} [OPTIONS]

Options:
  --ovnnb-db=DATABASE       connect to ovn-nb database at DATABASE
                            (default: {nb})
  --ovnsb-db=DATABASE       connect to ovn-sb database at DATABASE
                            (default: {sb})
  --ic-nb-db=DATABASE       connect to ovn-ic-nb database at DATABASE
                            (default: {inb})
  --ic-sb-db=DATABASE       connect to ovn-ic-sb database at DATABASE
                            (default: {isb})
  --unixctl=SOCKET          override default control socket name
  --metrics=ADDR:PORT       serve Prometheus metrics on http://ADDR:PORT/metrics
                            (IPv6: [ADDR]:PORT; default: off)
  -h, --help                display this help message
  -o, --options             list available options
  -V, --version             display version information

Daemon options:
  --detach                run in background as daemon
  --monitor               creates a process to monitor this daemon
  --user=username[:group] changes the effective daemon user:group
  --no-chdir              do not chdir to '/'
  --pidfile[=FILE]        create pidfile (default: {pidfile})
  --overwrite-pidfile     with --pidfile, start even if already running

Logging options:
  -vSPEC, --verbose=SPEC   set logging levels
  -v, --verbose            set maximum verbosity level
  --log-file[=FILE]        enable logging to specified FILE
                           (default: {logfile})
  --syslog-method=(libc|unix:file|udp:ip:port)
                           specify how to send messages to syslog daemon
  --syslog-target=HOST:PORT  also send syslog msgs to HOST:PORT via UDP

Active database connection methods:
  tcp:HOST:PORT           PORT at remote HOST
  ssl:HOST:PORT           SSL PORT at remote HOST
  unix:FILE               Unix domain socket named FILE
Passive database connection methods:
  ptcp:PORT[:IP]          listen to TCP PORT on IP
  pssl:PORT[:IP]          listen for SSL on PORT on IP
  punix:FILE              listen on Unix domain socket FILE
PKI configuration (required to use SSL):
  -p, --private-key=FILE  file with private key
  -c, --certificate=FILE  file with certificate for private key
  -C, --ca-cert=FILE      file with peer CA certificate
SSL options:
  --ssl-protocols=PROTOS  list of SSL protocols to enable
  --ssl-ciphers=CIPHERS   list of SSL ciphers to enable
  --ssl-ciphersuites=SUITES list of SSL ciphersuites to enable with TLSv1.3
  --ssl-server-name=NAME  server name to send in TLS SNI
",
        nb = env.default_nb_db(),
        sb = env.default_sb_db(),
        inb = env.default_ic_nb_db(),
        isb = env.default_ic_sb_db(),
        pidfile = rundir.join(format!("{p}.pid")).display(),
        logfile = env.logdir().join(format!("{p}.log")).display(),
    )
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn path(b: &[u8]) -> PathBuf {
    PathBuf::from(OsString::from_vec(b.to_vec()))
}

/// `--metrics` value: an IP address and port (`127.0.0.1:9476`, `[::1]:9476`; port 0 picks a
/// free port). Host names are refused: the daemon must not depend on a resolver to start.
pub fn parse_metrics_addr(v: &str) -> Result<SocketAddr, CliError> {
    v.parse().map_err(|_| {
        CliError(format!(
            "{}: --metrics: \"{v}\" is not an IP address and port (ADDR:PORT or [IPV6]:PORT)",
            crate::daemon::PROGRAM
        ))
    })
}

/// Parser state: the options gathered so far.
struct Parser<'a> {
    program: &'a str,
    env: &'a Env,
    opts: Options,
    dump_graph: Option<Option<String>>,
}

impl Parser<'_> {
    fn err(&self, msg: impl std::fmt::Display) -> CliError {
        CliError(format!("{}: {}", self.program, msg))
    }

    /// Apply one recognised option. `Ok(Some(cmd))` ends parsing (help, options, version).
    fn apply(&mut self, opt: Opt, arg: Option<&[u8]>) -> Result<Option<Command>, CliError> {
        // Default file names use the program name `ovn-ic` whatever the binary's file name
        // (the process name is forced to `ovn-ic` too), so wrappers and renamed copies still
        // create the files ovn-ctl and ovn-appctl look for.
        let prog = crate::daemon::PROGRAM;
        let rundir = self.opts.rundir.clone();
        let val = || arg.map(lossy).unwrap_or_default();
        let o = &mut self.opts;
        match opt {
            Opt::OvnsbDb => o.ovnsb_db = val(),
            Opt::OvnnbDb => o.ovnnb_db = val(),
            Opt::IcSbDb => o.ic_sb_db = val(),
            Opt::IcNbDb => o.ic_nb_db = val(),
            Opt::Unixctl => o.unixctl = Some(rundir.join(path(arg.unwrap_or_default()))),
            Opt::Help => return Ok(Some(Command::Help)),
            Opt::Options => return Ok(Some(Command::ListOptions)),
            Opt::Version => return Ok(Some(Command::Version)),
            Opt::DumpGraph => self.dump_graph = Some(arg.map(lossy)),
            Opt::Detach => o.detach = true,
            Opt::NoSelfConfinement => {}
            Opt::NoChdir => o.no_chdir = true,
            Opt::Pidfile => {
                o.pidfile = Some(match arg {
                    Some(f) if !f.is_empty() => rundir.join(path(f)),
                    _ => rundir.join(format!("{prog}.pid")),
                })
            }
            Opt::OverwritePidfile => o.overwrite_pidfile = true,
            Opt::Monitor => o.monitor = true,
            Opt::User => o.user = Some(val()),
            Opt::Verbose => {
                let spec = val();
                if let Err(e) = super::vlog::check_spec(&spec) {
                    return Err(CliError(format!("{prog}: processing \"{spec}\": {e}")));
                }
                o.verbose.push(spec);
            }
            Opt::LogFile => {
                o.log_file = Some(match arg {
                    Some(f) => path(f),
                    None => self.env.logdir().join(format!("{prog}.log")),
                })
            }
            Opt::SyslogMethod => {
                // Only the first --syslog-method counts (OVS `vlog_set_syslog_method`).
                if o.syslog_method.is_none() {
                    let m = val();
                    if let Err(e) = super::vlog::check_syslog_method(&m) {
                        return Err(CliError(format!("{prog}: {e}")));
                    }
                    o.syslog_method = Some(m);
                }
            }
            Opt::SyslogTarget => o.syslog_target = Some(val()),
            Opt::PrivateKey => o.ssl.private_key = Some(path(arg.unwrap_or_default())),
            Opt::Certificate => o.ssl.certificate = Some(path(arg.unwrap_or_default())),
            Opt::CaCert => o.ssl.ca_cert = Some(path(arg.unwrap_or_default())),
            Opt::SslProtocols => o.ssl.protocols = Some(val()),
            Opt::SslCiphers => o.ssl.ciphers = Some(val()),
            Opt::SslCiphersuites => o.ssl.ciphersuites = Some(val()),
            Opt::SslServerName => o.ssl.server_name = Some(val()),
            Opt::Metrics => o.metrics = Some(parse_metrics_addr(&val())?),
        }
        Ok(None)
    }

    /// A `--long[=value]` argument (`body` is what follows `--`).
    fn long(
        &mut self,
        body: &[u8],
        args: &[OsString],
        i: &mut usize,
    ) -> Result<Option<Command>, CliError> {
        let (name, value) = match body.iter().position(|&c| c == b'=') {
            Some(eq) => (&body[..eq], Some(&body[eq + 1..])),
            None => (body, None),
        };
        let found: &'static OptDef = match OPTIONS.iter().find(|o| o.name.as_bytes() == name) {
            Some(o) => o,
            None => {
                let matches: Vec<&'static OptDef> = OPTIONS
                    .iter()
                    .filter(|o| o.name.as_bytes().starts_with(name))
                    .collect();
                match matches.as_slice() {
                    [] => return Err(self.err(format!("unrecognized option '--{}'", lossy(body)))),
                    [one] => one,
                    many => {
                        let list: Vec<String> =
                            many.iter().map(|o| format!("'--{}'", o.name)).collect();
                        return Err(self.err(format!(
                            "option '--{}' is ambiguous; possibilities: {}",
                            lossy(body),
                            list.join(" ")
                        )));
                    }
                }
            }
        };
        let arg: Option<Vec<u8>> = match (found.has_arg, value) {
            (HasArg::No, Some(_)) => {
                return Err(self.err(format!(
                    "option '--{}' doesn't allow an argument",
                    found.name
                )))
            }
            (HasArg::No, None) | (HasArg::Optional, None) => None,
            (_, Some(v)) => Some(v.to_vec()),
            (HasArg::Required, None) => match args.get(*i) {
                Some(next) => {
                    *i += 1;
                    Some(next.as_bytes().to_vec())
                }
                None => {
                    return Err(self.err(format!("option '--{}' requires an argument", found.name)))
                }
            },
        };
        self.apply(found.opt, arg.as_deref())
    }

    /// A cluster of short options (`chars` is what follows `-`).
    fn short(
        &mut self,
        chars: &[u8],
        args: &[OsString],
        i: &mut usize,
    ) -> Result<Option<Command>, CliError> {
        let mut k = 0;
        while k < chars.len() {
            let c = chars[k];
            k += 1;
            let Some(found) = OPTIONS.iter().find(|o| o.val != 0 && o.val == c) else {
                return Err(self.err(format!("invalid option -- '{}'", lossy(&[c]))));
            };
            let rest = &chars[k..];
            let arg: Option<Vec<u8>> = match found.has_arg {
                HasArg::No => None,
                HasArg::Optional => {
                    k = chars.len();
                    (!rest.is_empty()).then(|| rest.to_vec())
                }
                HasArg::Required => {
                    k = chars.len();
                    if !rest.is_empty() {
                        Some(rest.to_vec())
                    } else if let Some(next) = args.get(*i) {
                        *i += 1;
                        Some(next.as_bytes().to_vec())
                    } else {
                        return Err(
                            self.err(format!("option requires an argument -- '{}'", lossy(&[c])))
                        );
                    }
                }
            };
            if let Some(cmd) = self.apply(found.opt, arg.as_deref())? {
                return Ok(Some(cmd));
            }
        }
        Ok(None)
    }
}

/// Parse `args` (without argv[0]). `program` is argv[0] as invoked, used in error messages.
pub fn parse(program: &str, args: &[OsString], env: &Env) -> Result<Command, CliError> {
    let mut p = Parser {
        program,
        env,
        opts: Options {
            ovnnb_db: env.default_nb_db(),
            ovnsb_db: env.default_sb_db(),
            ic_nb_db: env.default_ic_nb_db(),
            ic_sb_db: env.default_ic_sb_db(),
            rundir: env.rundir(),
            ..Options::default()
        },
        dump_graph: None,
    };
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_bytes();
        i += 1;
        let done = if a == b"--" {
            // Everything after `--` is a positional argument (ignored).
            break;
        } else if let Some(body) = a.strip_prefix(b"--") {
            p.long(body, args, &mut i)?
        } else if a.len() > 1 && a[0] == b'-' {
            p.short(&a[1..], args, &mut i)?
        } else {
            // Positional arguments (including a lone "-") are ignored.
            None
        };
        if let Some(cmd) = done {
            return Ok(cmd);
        }
    }
    if let Some(node) = p.dump_graph {
        return Ok(Command::DumpGraph(node));
    }
    Ok(Command::Run(Box::new(p.opts)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Env {
        Env::default()
    }

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    fn run(args: &[&str]) -> Options {
        run_env(args, &env())
    }

    fn run_env(args: &[&str], env: &Env) -> Options {
        match parse("ovn-ic", &os(args), env) {
            Ok(Command::Run(o)) => *o,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    fn err(args: &[&str]) -> String {
        match parse("ovn-ic", &os(args), &env()) {
            Err(CliError(e)) => e,
            other => panic!("{args:?}: expected error, got {other:?}"),
        }
    }

    #[test]
    fn defaults_without_env() {
        let o = run(&[]);
        assert_eq!(o.ovnnb_db, "unix:/var/run/ovn/ovnnb_db.sock");
        assert_eq!(o.ovnsb_db, "unix:/var/run/ovn/ovnsb_db.sock");
        assert_eq!(o.ic_nb_db, "unix:/var/run/ovn/ovn_ic_nb_db.sock");
        assert_eq!(o.ic_sb_db, "unix:/var/run/ovn/ovn_ic_sb_db.sock");
        assert_eq!(o.rundir, PathBuf::from("/var/run/ovn"));
        assert_eq!(o.unixctl, None);
        assert_eq!(o.pidfile, None);
        assert_eq!(o.log_file, None);
        assert!(o.verbose.is_empty());
        assert!(!o.detach && !o.no_chdir && !o.monitor && !o.overwrite_pidfile);
    }

    #[test]
    fn defaults_from_env() {
        let e = Env {
            ovn_nb_db: Some("tcp:1.1.1.1:6641".into()),
            ovn_sb_db: Some("tcp:1.1.1.1:6642".into()),
            ovn_ic_nb_db: None,
            ovn_ic_sb_db: Some("tcp:2.2.2.2:6646".into()),
            ovn_rundir: Some("/run/x".into()),
            ovs_logdir: Some("/logs".into()),
        };
        let o = run_env(&["--pidfile", "--log-file", "-u", "ctl"], &e);
        assert_eq!(o.ovnnb_db, "tcp:1.1.1.1:6641");
        assert_eq!(o.ovnsb_db, "tcp:1.1.1.1:6642");
        assert_eq!(o.ic_nb_db, "unix:/run/x/ovn_ic_nb_db.sock");
        assert_eq!(o.ic_sb_db, "tcp:2.2.2.2:6646");
        assert_eq!(o.rundir, PathBuf::from("/run/x"));
        assert_eq!(o.pidfile, Some(PathBuf::from("/run/x/ovn-ic.pid")));
        assert_eq!(o.log_file, Some(PathBuf::from("/logs/ovn-ic.log")));
        assert_eq!(o.unixctl, Some(PathBuf::from("/run/x/ctl")));
        let u = usage_with_env("/usr/bin/ovn-ic", &e);
        assert!(u.contains("(default: tcp:1.1.1.1:6641)"), "{u}");
        assert!(
            u.contains("(default: unix:/run/x/ovn_ic_nb_db.sock)"),
            "{u}"
        );
        assert!(u.contains("(default: /run/x/ovn-ic.pid)"), "{u}");
        assert!(u.contains("(default: /logs/ovn-ic.log)"), "{u}");
    }

    #[test]
    fn values_and_forms() {
        // (args, field extractor, expected)
        type Get = fn(&Options) -> String;
        let table: &[(&[&str], Get, &str)] = &[
            (&["--ovnnb-db=tcp:a:1"], |o| o.ovnnb_db.clone(), "tcp:a:1"),
            (
                &["--ovnnb-db", "tcp:a:1"],
                |o| o.ovnnb_db.clone(),
                "tcp:a:1",
            ),
            (&["-D", "tcp:a:1"], |o| o.ovnnb_db.clone(), "tcp:a:1"),
            (&["-Dtcp:a:1"], |o| o.ovnnb_db.clone(), "tcp:a:1"),
            (&["--ovnnb-db="], |o| o.ovnnb_db.clone(), ""),
            (&["-d", "x"], |o| o.ovnsb_db.clone(), "x"),
            (&["-i", "x"], |o| o.ic_sb_db.clone(), "x"),
            (&["-I", "x"], |o| o.ic_nb_db.clone(), "x"),
            (&["--ic-sb-db=x"], |o| o.ic_sb_db.clone(), "x"),
            (&["--ic-nb-db", "x"], |o| o.ic_nb_db.clone(), "x"),
            // A required argument swallows the next word even if it looks like an option.
            (&["-D", "--help"], |o| o.ovnnb_db.clone(), "--help"),
            (&["--ovnsb-db", "-x"], |o| o.ovnsb_db.clone(), "-x"),
            // Repeated options: last one wins.
            (
                &["-Da", "--ovnnb-db=b", "--ovnnb=c"],
                |o| o.ovnnb_db.clone(),
                "c",
            ),
            // Unambiguous prefixes.
            (&["--ovnn=p"], |o| o.ovnnb_db.clone(), "p"),
            (&["--ic-s", "q"], |o| o.ic_sb_db.clone(), "q"),
            (
                &["--unixctl=/abs/s.ctl"],
                |o| format!("{:?}", o.unixctl),
                "Some(\"/abs/s.ctl\")",
            ),
            (
                &["-urel.ctl"],
                |o| format!("{:?}", o.unixctl),
                "Some(\"/var/run/ovn/rel.ctl\")",
            ),
            (
                &["--unixctl=none"],
                |o| format!("{:?}", o.unixctl),
                "Some(\"/var/run/ovn/none\")",
            ),
            (
                &["--pidfile"],
                |o| format!("{:?}", o.pidfile),
                "Some(\"/var/run/ovn/ovn-ic.pid\")",
            ),
            (
                &["--pidfile="],
                |o| format!("{:?}", o.pidfile),
                "Some(\"/var/run/ovn/ovn-ic.pid\")",
            ),
            (
                &["--pidfile=x.pid"],
                |o| format!("{:?}", o.pidfile),
                "Some(\"/var/run/ovn/x.pid\")",
            ),
            (
                &["--pidfile=/tmp/x.pid"],
                |o| format!("{:?}", o.pidfile),
                "Some(\"/tmp/x.pid\")",
            ),
            // Optional arguments are attached only: `--pidfile f` leaves `f` positional.
            (
                &["--pidfile", "f.pid"],
                |o| format!("{:?}", o.pidfile),
                "Some(\"/var/run/ovn/ovn-ic.pid\")",
            ),
            (
                &["--log-file"],
                |o| format!("{:?}", o.log_file),
                "Some(\"/var/log/openvswitch/ovn-ic.log\")",
            ),
            (
                &["--log-file=rel.log"],
                |o| format!("{:?}", o.log_file),
                "Some(\"rel.log\")",
            ),
            (
                &["--log-file=/a.log", "--log-file=/b.log"],
                |o| format!("{:?}", o.log_file),
                "Some(\"/b.log\")",
            ),
            (
                &["--log-file", "x.log"],
                |o| format!("{:?}", o.log_file),
                "Some(\"/var/log/openvswitch/ovn-ic.log\")",
            ),
            (
                &["--user", "ovn:ovn"],
                |o| format!("{:?}", o.user),
                "Some(\"ovn:ovn\")",
            ),
            (
                &["--user=root"],
                |o| format!("{:?}", o.user),
                "Some(\"root\")",
            ),
            (
                &["--syslog-method=unix:/dev/log", "--syslog-method=libc"],
                |o| format!("{:?}", o.syslog_method),
                "Some(\"unix:/dev/log\")",
            ),
            (
                &["--syslog-method=null", "--syslog-method=bogus"],
                |o| format!("{:?}", o.syslog_method),
                "Some(\"null\")",
            ),
            (
                &[
                    "--syslog-target=1.2.3.4:514",
                    "--syslog-target",
                    "5.6.7.8:514",
                ],
                |o| format!("{:?}", o.syslog_target),
                "Some(\"5.6.7.8:514\")",
            ),
            (
                &[
                    "-v",
                    "-vconsole:emer",
                    "--verbose",
                    "--verbose=file:info",
                    "-vANY:off",
                ],
                |o| o.verbose.join("|"),
                "|console:emer||file:info|ANY:off",
            ),
            (&["--verb=dbg"], |o| o.verbose.join("|"), "dbg"),
            // Positional arguments are ignored; options after them still count.
            (&["foo", "-", "-Dx", "bar"], |o| o.ovnnb_db.clone(), "x"),
            // `--` ends the options.
            (&["-Dx", "--", "-Dy", "--foo"], |o| o.ovnnb_db.clone(), "x"),
        ];
        for (args, get, want) in table {
            let o = run(args);
            assert_eq!(get(&o), *want, "args {args:?}");
        }
    }

    #[test]
    fn flags_and_ssl() {
        let o = run(&[
            "--det",
            "--no-ch",
            "--no-self-confinement",
            "--overwrite-pidfile",
            "--monitor",
            "-p",
            "k.pem",
            "-ccert.pem",
            "--ca-cert=none",
            "--ssl-protocols=TLSv1.2+",
            "--ssl-ciphers",
            "HIGH",
            "--ssl-ciphersuites=TLS_AES_256_GCM_SHA384",
            "--ssl-server-name=ic.example",
        ]);
        assert!(o.detach && o.no_chdir && o.overwrite_pidfile && o.monitor);
        assert_eq!(o.ssl.private_key, Some(PathBuf::from("k.pem")));
        assert_eq!(o.ssl.certificate, Some(PathBuf::from("cert.pem")));
        assert_eq!(o.ssl.ca_cert, Some(PathBuf::from("none")));
        assert_eq!(o.ssl.protocols.as_deref(), Some("TLSv1.2+"));
        assert_eq!(o.ssl.ciphers.as_deref(), Some("HIGH"));
        assert_eq!(
            o.ssl.ciphersuites.as_deref(),
            Some("TLS_AES_256_GCM_SHA384")
        );
        assert_eq!(o.ssl.server_name.as_deref(), Some("ic.example"));
        // The long-only options' control-byte "short options" work as in getopt.
        let o = run(&["-\x01\x02", "-\x06", "nobody"]);
        assert!(o.no_chdir);
        assert_eq!(o.user.as_deref(), Some("nobody"));
    }

    #[test]
    fn actions() {
        let p = |a: &[&str]| parse("ovn-ic", &os(a), &env());
        assert_eq!(p(&["-h"]), Ok(Command::Help));
        assert_eq!(p(&["--help"]), Ok(Command::Help));
        assert_eq!(p(&["--he"]), Ok(Command::Help));
        assert_eq!(p(&["-o"]), Ok(Command::ListOptions));
        assert_eq!(p(&["--options"]), Ok(Command::ListOptions));
        assert_eq!(p(&["-V"]), Ok(Command::Version));
        assert_eq!(p(&["--version"]), Ok(Command::Version));
        // Bundled: the first action wins, like the C loop that exits on it.
        assert_eq!(p(&["-hV"]), Ok(Command::Help));
        assert_eq!(p(&["-Vh"]), Ok(Command::Version));
        assert_eq!(p(&["-vdbg", "-Vh"]), Ok(Command::Version));
        // Errors after an action are never seen.
        assert_eq!(p(&["--help", "--foo"]), Ok(Command::Help));
        assert_eq!(p(&["-hx"]), Ok(Command::Help));
        assert_eq!(p(&["--dump-inc-proc-graph"]), Ok(Command::DumpGraph(None)));
        assert_eq!(
            p(&["--dump-inc-proc-graph=ic", "-Dx"]),
            Ok(Command::DumpGraph(Some("ic".into())))
        );
        assert_eq!(p(&["--dump"]), Ok(Command::DumpGraph(None)));
    }

    #[test]
    fn errors() {
        let table: &[(&[&str], &str)] = &[
            (&["--foo"], "ovn-ic: unrecognized option '--foo'"),
            (&["--foo=bar"], "ovn-ic: unrecognized option '--foo=bar'"),
            (&["---x"], "ovn-ic: unrecognized option '---x'"),
            (&["-x"], "ovn-ic: invalid option -- 'x'"),
            (&["-xh"], "ovn-ic: invalid option -- 'x'"),
            (&["-vdbg", "-qo"], "ovn-ic: invalid option -- 'q'"),
            (
                &["--ovnnb-db"],
                "ovn-ic: option '--ovnnb-db' requires an argument",
            ),
            (
                &["--ovnnb"],
                "ovn-ic: option '--ovnnb-db' requires an argument",
            ),
            (&["-d"], "ovn-ic: option requires an argument -- 'd'"),
            (&["-C"], "ovn-ic: option requires an argument -- 'C'"),
            (&["--user"], "ovn-ic: option '--user' requires an argument"),
            (
                &["--detach=1"],
                "ovn-ic: option '--detach' doesn't allow an argument",
            ),
            (
                &["--det=x"],
                "ovn-ic: option '--detach' doesn't allow an argument",
            ),
            (
                &["--help=x"],
                "ovn-ic: option '--help' doesn't allow an argument",
            ),
            (
                &["--no"],
                "ovn-ic: option '--no' is ambiguous; possibilities: '--no-self-confinement' '--no-chdir'",
            ),
            (
                &["--no=1"],
                "ovn-ic: option '--no=1' is ambiguous; possibilities: '--no-self-confinement' '--no-chdir'",
            ),
            (
                &["--d"],
                "ovn-ic: option '--d' is ambiguous; possibilities: '--dump-inc-proc-graph' '--detach'",
            ),
            (
                &["--ssl-c=x"],
                "ovn-ic: option '--ssl-c=x' is ambiguous; possibilities: '--ssl-ciphers' '--ssl-ciphersuites'",
            ),
            (
                &["-vfoo"],
                "ovn-ic: processing \"foo\": no destination, level, or module \"foo\"",
            ),
            (
                &["--verbose=console:file"],
                "ovn-ic: processing \"console:file\": cannot specify multiple destinations",
            ),
            (
                &["--syslog-method=journald"],
                "ovn-ic: unsupported syslog method 'journald'",
            ),
        ];
        for (args, want) in table {
            assert_eq!(err(args), *want, "args {args:?}");
        }
        // The prefix is argv[0] as invoked for getopt errors, the base name for vlog errors.
        let e = parse("/usr/bin/ovn-ic", &os(&["--foo"]), &env()).unwrap_err();
        assert_eq!(e.0, "/usr/bin/ovn-ic: unrecognized option '--foo'");
        let e = parse("/usr/bin/ovn-ic", &os(&["-vx"]), &env()).unwrap_err();
        assert_eq!(
            e.0,
            "ovn-ic: processing \"x\": no destination, level, or module \"x\""
        );
        // `--=x` matches every option name: ambiguous.
        assert!(err(&["--=x"]).starts_with(
            "ovn-ic: option '--=x' is ambiguous; possibilities: '--ovnsb-db' '--ovnnb-db'"
        ));
    }

    #[test]
    fn metrics_option() {
        assert_eq!(run(&[]).metrics, None);
        assert_eq!(
            run(&["--metrics=127.0.0.1:0"]).metrics,
            Some("127.0.0.1:0".parse().unwrap())
        );
        assert_eq!(
            run(&["--metrics", "[::1]:9476"]).metrics,
            Some("[::1]:9476".parse().unwrap())
        );
        // Last one wins, and it may be abbreviated like any long option.
        assert_eq!(
            run(&["--metrics=127.0.0.1:1", "--met=0.0.0.0:2"]).metrics,
            Some("0.0.0.0:2".parse().unwrap())
        );
        for bad in [
            "",
            "9476",
            "localhost:9476",
            "127.0.0.1",
            "127.0.0.1:65536",
            "::1:9476",
            "[::1]",
            "1.2.3.4:x",
        ] {
            assert_eq!(
                err(&[&format!("--metrics={bad}")]),
                format!(
                    "ovn-ic: --metrics: \"{bad}\" is not an IP address and port (ADDR:PORT or [IPV6]:PORT)"
                ),
            );
        }
        assert_eq!(
            err(&["--metrics"]),
            "ovn-ic: option '--metrics' requires an argument"
        );
        // `--m` used to mean `--monitor`; it is ambiguous now, `--mo` still works.
        assert!(err(&["--m"]).starts_with("ovn-ic: option '--m' is ambiguous"));
        assert!(run(&["--mo"]).monitor);
    }

    #[test]
    fn non_utf8_values() {
        use std::os::unix::ffi::OsStrExt as _;
        let arg = OsString::from_vec(b"--pidfile=/tmp/\xff.pid".to_vec());
        match parse("ovn-ic", &[arg], &env()) {
            Ok(Command::Run(o)) => {
                assert_eq!(o.pidfile.unwrap().as_os_str().as_bytes(), b"/tmp/\xff.pid")
            }
            other => panic!("{other:?}"),
        }
        let e = parse("ovn-ic", &[OsString::from_vec(b"-\xff".to_vec())], &env());
        assert_eq!(
            e,
            Err(CliError("ovn-ic: invalid option -- '\u{fffd}'".into()))
        );
    }

    #[test]
    fn options_text_format() {
        let t = options_text();
        let names: Vec<&str> = t
            .lines()
            .filter_map(|l| l.strip_prefix("--"))
            .map(|l| l.split('=').next().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "ovnsb-db",
                "ovnnb-db",
                "ic-sb-db",
                "ic-nb-db",
                "unixctl",
                "help",
                "options",
                "version",
                "dump-inc-proc-graph",
                "detach",
                "no-self-confinement",
                "no-chdir",
                "pidfile",
                "overwrite-pidfile",
                "monitor",
                "user",
                "verbose",
                "log-file",
                "syslog-method",
                "syslog-target",
                "private-key",
                "certificate",
                "ca-cert",
                "ssl-protocols",
                "ssl-ciphers",
                "ssl-ciphersuites",
                "ssl-server-name",
                "metrics",
            ]
        );
        assert!(t.starts_with("--ovnsb-db=ARG\n-d ARG\n--ovnnb-db=ARG\n-D ARG\n"));
        assert!(t.contains("--help\n-h \n--options\n-o \n--version\n-V \n"));
        assert!(t.contains("--dump-inc-proc-graph=[ARG]\n-\x0e [ARG]\n--detach\n--no-self"));
        assert!(t.contains("--verbose=[ARG]\n-v [ARG]\n--log-file=[ARG]\n-\x07 [ARG]\n"));
        assert!(t.contains("--syslog-target=ARG\n-\t ARG\n"));
        assert!(t.contains("--ssl-protocols=ARG\n-\n ARG\n--ssl-ciphers=ARG\n-\x0b ARG\n"));
        assert!(t.ends_with("--ssl-server-name=ARG\n-\x0d ARG\n--metrics=ARG\n-\x0f ARG\n"));
    }

    #[test]
    fn version_and_usage() {
        let v = version_text();
        let first = v.lines().next().unwrap();
        assert_eq!(first, "ovn-ic 26.3.90");
        assert!(v.ends_with(&format!("\nOpen vSwitch Library {OVS_LIBRARY_VERSION}")));
        // ovn-ctl compares the last word of the first line with 2.5.90.
        let ver: Vec<u32> = first
            .rsplit(' ')
            .next()
            .unwrap()
            .split('.')
            .map(|x| x.parse().unwrap())
            .collect();
        assert!(ver >= vec![2, 5, 90]);
        let u = usage_with_env("/usr/local/bin/ovn-ic", &env());
        assert!(u.starts_with(
            "ovn-ic: OVN interconnection management daemon\nusage: ovn-ic [OPTIONS]\n\n"
        ));
        assert!(u.contains("(default: unix:/var/run/ovn/ovnnb_db.sock)"));
        assert!(u.contains("(default: unix:/var/run/ovn/ovn_ic_sb_db.sock)"));
        assert!(u.contains("\nDaemon options:\n"));
        assert!(u.contains("\nLogging options:\n"));
        assert!(u.contains("PKI configuration (required to use SSL):\n"));
        assert!(u.contains("  -V, --version             display version information\n"));
        assert!(!u.contains("dump-inc-proc-graph"));
        assert!(u.contains(
            "  --unixctl=SOCKET          override default control socket name\n\
             \x20 --metrics=ADDR:PORT       serve Prometheus metrics on http://ADDR:PORT/metrics\n\
             \x20                           (IPv6: [ADDR]:PORT; default: off)\n\
             \x20 -h, --help"
        ));
        assert!(!u.contains("no-self-confinement"));
    }

    /// Side by side with Debian's C `ovn-ic` (23.03), when installed.
    mod against_c {
        use super::*;
        use std::io::Read;
        use std::process::{Command as Proc, Stdio};
        use std::time::{Duration, Instant};

        const C_BIN: &str = "/usr/bin/ovn-ic";

        /// Run the C daemon with `args` in an environment where it cannot start (run dir does
        /// not exist: it fails creating its control socket right after option parsing) and
        /// return its stderr.
        fn run_c(args: &[&str]) -> String {
            let dir = tempfile::tempdir().unwrap();
            let rundir = dir.path().join("missing");
            let mut child = Proc::new(C_BIN)
                .args(args)
                .env("OVN_RUNDIR", &rundir)
                .env("OVS_RUNDIR", &rundir)
                .env("OVS_LOGDIR", dir.path())
                .env_remove("OVN_NB_DB")
                .env_remove("OVN_SB_DB")
                .env_remove("OVN_IC_NB_DB")
                .env_remove("OVN_IC_SB_DB")
                .current_dir(dir.path())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let start = Instant::now();
            loop {
                if child.try_wait().unwrap().is_some() {
                    break;
                }
                if start.elapsed() > Duration::from_secs(10) {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let mut s = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut s);
            }
            s
        }

        /// The getopt/vlog error line the C daemon printed, if any.
        fn c_error(stderr: &str) -> Option<String> {
            stderr
                .lines()
                .find(|l| {
                    l.contains(": unrecognized option")
                        || l.contains(": invalid option")
                        || l.contains("requires an argument")
                        || l.contains("doesn't allow an argument")
                        || l.contains("is ambiguous; possibilities")
                        || l.contains(": processing \"")
                })
                .map(str::to_string)
        }

        #[test]
        fn same_verdicts_as_c() {
            if !std::path::Path::new(C_BIN).exists() {
                eprintln!("skipping: {C_BIN} not installed");
                return;
            }
            let cases: &[&[&str]] = &[
                // bad
                &["--foo"],
                &["--foo=bar"],
                &["---x"],
                &["-x"],
                &["-Dx", "-qz"],
                &["--ovnnb-db"],
                &["--ovnnb"],
                &["-d"],
                &["-Dtcp:x:1", "-C"],
                &["--detach=1"],
                &["--det=x"],
                &["--no"],
                &["--no=1"],
                &["--user"],
                &["-vfoo"],
                &["-vconsole:file"],
                &["--verbose=dbg:info"],
                &["-vovn_ic:reconnect"],
                &["-vPATTERN:bogus:x"],
                &["-vFACILITY:bogus"],
                // good
                &[
                    "--ovnnb-db=tcp:127.0.0.1:1",
                    "--ovnsb-db",
                    "tcp:127.0.0.1:2",
                ],
                &["-Dunix:a", "-dunix:b", "-I", "unix:c", "-iunix:d"],
                &["-vconsole:off", "-vANY:any:dbg", "--verb=file:info", "-v"],
                &["-vovn_ic:DBG", "-vsyslog:err", "-vFACILITY:local0"],
                &["positional", "-", "--no-self-confinement", "--no-ch"],
                &["-u", "ctl", "--overwrite-pidfile"],
                &["-C", "none", "-p", "k", "-ck", "--ssl-protocols=TLSv1.2"],
                &["--ssl-ciphers", "HIGH", "--syslog-method=null"],
                &["-Dx", "--", "--foo", "-x"],
            ];
            for args in cases {
                let c = c_error(&run_c(args)).map(|l| l.replacen(C_BIN, "ovn-ic", 1));
                let ours = match parse(C_BIN, &os(args), &Env::default()) {
                    Err(CliError(e)) => Some(e.replacen(C_BIN, "ovn-ic", 1)),
                    Ok(_) => None,
                };
                assert_eq!(ours, c, "args {args:?}");
            }
        }

        #[test]
        fn options_superset_of_c() {
            if !std::path::Path::new(C_BIN).exists() {
                eprintln!("skipping: {C_BIN} not installed");
                return;
            }
            let out = Proc::new(C_BIN).arg("--options").output().unwrap();
            assert!(out.status.success());
            let c = String::from_utf8_lossy(&out.stdout).into_owned();
            let ours = options_text();
            let longs = |t: &str| -> Vec<String> {
                t.lines()
                    .filter(|l| l.starts_with("--"))
                    .map(str::to_string)
                    .collect()
            };
            let ours_l = longs(&ours);
            for l in longs(&c) {
                assert!(ours_l.contains(&l), "missing {l:?}");
            }
            // Each option line of the C output is followed by the same second line in ours.
            let c_lines: Vec<&str> = c.split('\n').collect();
            let o_lines: Vec<&str> = ours.split('\n').collect();
            for (i, l) in c_lines.iter().enumerate() {
                if let Some(j) = o_lines.iter().position(|x| x == l) {
                    if l.starts_with("--") {
                        let next_c = c_lines.get(i + 1).copied().unwrap_or("");
                        if !next_c.starts_with("--") {
                            assert_eq!(o_lines.get(j + 1).copied(), Some(next_c), "after {l}");
                        }
                    }
                }
            }
            // Also, C's --version has the same shape.
            let out = Proc::new(C_BIN).arg("--version").output().unwrap();
            let v = String::from_utf8_lossy(&out.stdout).into_owned();
            assert!(v.starts_with("ovn-ic "));
            assert!(v.contains("\nOpen vSwitch Library "));
        }
    }
}
