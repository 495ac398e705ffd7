//! The process shell: command line, logging, pidfile, detach, control socket, main loop.
//!
//! Start-up order (spec ovn-ic-core.md §1.4, ovsdb-protocol.md §14):
//!
//! 1. ignore SIGPIPE, parse the command line (`-h`, `-o`, `-V`, `--dump-inc-proc-graph` exit
//!    here);
//! 2. name the process `ovn-ic`, initialise logging (the log file is opened now, so an
//!    unusable one is reported on the terminal);
//! 3. [`daemonize::start`]: `--user`, the `--detach` and `--monitor` forks, the pidfile.
//!    **All forking happens here, while the process is still single-threaded**; only
//!    afterwards is the tokio runtime (current-thread) built;
//! 4. inside the runtime: fatal-signal receivers, control socket, command registry, the
//!    `--metrics` listener (if asked for; a bind failure is logged and the daemon runs on without
//!    it), then [`daemonize::Daemon::complete`] releases the waiting parent (pidfile and socket
//!    exist);
//! 5. the main loop until `exit`; pidfile and socket are removed and the status is 0.

pub mod cli;
pub mod coverage;
pub mod daemonize;
pub mod driver;
pub mod mainloop;
pub mod memory;
pub mod memtrim;
pub mod metrics;
pub mod pidfile;
pub mod signals;
pub mod unixctl;
pub mod vlog;

use std::ffi::OsString;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;

use self::cli::{Command, Options};
use self::mainloop::{Driver, Exit, MainLoop, LOOP_COMMANDS};
use self::unixctl::{Handler, Registry};
use self::vlog::{Vlog, VlogConfig};

/// The program name: names the default control socket, pidfile and log file, prefixes fatal
/// messages, and is the process name whatever the binary's file name.
pub const PROGRAM: &str = "ovn-ic";

/// OVN version we implement (first line of `--version` and of the `version` command). `ovn-ctl
/// stop_ic` compares its last word with 2.5.90 before trying a graceful `exit`.
pub const OVN_VERSION: &str = env!("CARGO_PKG_VERSION");
pub use self::cli::{version_text, OVS_LIBRARY_VERSION};

/// `strerror` text of an I/O error ("No such file or directory"), without Rust's
/// "(os error N)" suffix.
pub fn strerror(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => nix::errno::Errno::from_raw(n).desc().to_string(),
        None => e.to_string(),
    }
}

/// Entry point of the `ovn-ic` binary; returns the exit status.
pub fn main() -> i32 {
    let _ = signals::ignore_sigpipe();
    let args: Vec<OsString> = std::env::args_os().collect();
    let program = args
        .first()
        .map(|a| a.to_string_lossy().into_owned())
        .unwrap_or_else(|| PROGRAM.to_string());
    let env = cli::Env::from_process();
    let cmd = match cli::parse(&program, args.get(1..).unwrap_or(&[]), &env) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return 1;
        }
    };
    match cmd {
        Command::Help => {
            print!("{}", cli::usage_with_env(&program, &env));
            0
        }
        Command::ListOptions => {
            print!("{}", cli::options_text());
            0
        }
        Command::Version => {
            println!("{}", version_text());
            0
        }
        Command::DumpGraph(node) => {
            print!("{}", driver::dump_graph(node.as_deref()));
            0
        }
        Command::Run(opts) => run(*opts),
    }
}

/// Report a fatal start-up error the way `VLOG_FATAL` does (log, then `ovn-ic: MSG` on stderr)
/// and clean up what was created; returns exit status 1.
fn fatal(msg: &str) -> i32 {
    tracing::error!(target: "daemon_unix", "{msg}");
    eprintln!("{PROGRAM}: {msg}");
    signals::unlink_files();
    1
}

/// Run the daemon with parsed options (steps 2–5 of the module documentation).
pub fn run(opts: Options) -> i32 {
    if let Err(e) = daemonize::set_process_name(PROGRAM) {
        eprintln!("{PROGRAM}: could not set process name ({})", e.desc());
    }
    let vlog = match Vlog::init(&VlogConfig {
        program: PROGRAM.to_string(),
        specs: opts.verbose.clone(),
        log_file: opts.log_file.clone(),
        syslog_method: opts.syslog_method.clone(),
        syslog_target: opts.syslog_target.clone(),
    }) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("{PROGRAM}: {e}");
            return 1;
        }
    };
    let _ = signals::install_segv_handler();
    memtrim::tune();

    let cfg = daemonize::DaemonConfig {
        detach: opts.detach,
        no_chdir: opts.no_chdir,
        monitor: opts.monitor,
        pidfile: opts.pidfile.clone(),
        overwrite_pidfile: opts.overwrite_pidfile,
        user: opts.user.clone(),
        log_file: opts.log_file.clone(),
    };
    // Forks (if any) happen here, before any thread exists.
    let mut daemon = match daemonize::start(&cfg, Some(&vlog)) {
        Ok(d) => d,
        Err(e) => return fatal(&e),
    };

    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fatal(&format!("could not start the runtime ({})", strerror(&e))),
    };
    let code = rt.block_on(async {
        let driver = driver::IcDriver::new(&opts);
        serve(&opts, &mut daemon, vlog, driver).await
    });
    drop(rt);
    signals::unlink_files();
    drop(daemon);
    code
}

/// Steps 4–5: control socket, start-up completion, main loop with `driver`.
async fn serve<D: Driver>(
    opts: &Options,
    daemon: &mut daemonize::Daemon,
    vlog: Vlog,
    driver: D,
) -> i32 {
    let mut fatal_signals = match signals::FatalSignals::install() {
        Ok(s) => s,
        Err(e) => {
            return fatal(&format!(
                "could not install signal handlers ({})",
                strerror(&e)
            ))
        }
    };
    let path = unixctl::socket_path(&opts.rundir, opts.unixctl.as_deref(), std::process::id());
    let listener = match unixctl::bind(&path) {
        Ok(l) => l,
        Err(e) => return fatal(&e.to_string()),
    };
    let (tx, rx) = mpsc::unbounded_channel();
    let server = match unixctl::serve(listener, Arc::new(registry(vlog)), tx) {
        Ok(s) => s,
        Err(e) => {
            return fatal(&format!(
                "{}: could not serve control socket ({})",
                path.display(),
                strerror(&e)
            ))
        }
    };
    let mut main_loop = MainLoop::new(driver, rx);
    let metrics_server = match opts.metrics {
        Some(addr) => start_metrics(addr, &mut main_loop).await,
        None => None,
    };
    daemon.complete();

    let exit = main_loop.run(&mut fatal_signals).await;
    if let Some(h) = metrics_server {
        h.abort();
    }
    // Let the `exit` reply reach the client before the socket goes away.
    server.shutdown(Duration::from_secs(1)).await;
    match exit {
        Exit::Requested => 0,
        Exit::ControlClosed => 1,
    }
}

/// Listen for metrics scrapes on `addr` and have `main_loop` keep the served snapshot current.
/// A bind failure is logged and the daemon keeps running without the endpoint (`metrics/show`
/// still works): operators expect the daemon up even if, say, the port is taken.
async fn start_metrics<D: Driver>(
    addr: std::net::SocketAddr,
    main_loop: &mut MainLoop<D>,
) -> Option<tokio::task::JoinHandle<()>> {
    let listener = match metrics::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(target: "ovn_ic",
                "{addr}: could not listen for metrics ({}); continuing without the metrics endpoint",
                strerror(&e));
            return None;
        }
    };
    let local = listener.local_addr().unwrap_or(addr);
    tracing::info!(target: "ovn_ic", "Serving metrics on http://{local}/metrics");
    let shared = Arc::new(Mutex::new(metrics::Snapshot::default()));
    main_loop.set_metrics(shared.clone());
    Some(metrics::spawn_server(listener, shared))
}

/// Every control-socket command: the generic ones answered directly, the main loop's forwarded.
pub fn registry(vlog: Vlog) -> Registry {
    let mut r = Registry::new();
    for (name, usage, min, max) in LOOP_COMMANDS {
        r.register(name, usage, min, max, Handler::Forward);
    }
    r.register("version", "", 0, 0, Handler::direct(|_| Ok(version_text())));
    r.register(
        "memory/show",
        "",
        0,
        0,
        Handler::direct(|_| Ok(String::new())),
    );
    r.register(
        "coverage/show",
        "",
        0,
        0,
        Handler::direct(|_| Ok(coverage::show())),
    );
    r.register(
        "coverage/read-counter",
        "COUNTER",
        1,
        1,
        Handler::direct(|a| {
            coverage::read(&a[0])
                .map(|n| n.to_string())
                .ok_or_else(|| "No such counter".to_string())
        }),
    );
    let v = vlog.clone();
    r.register(
        "vlog/set",
        "{spec | PATTERN:destination:pattern}",
        0,
        usize::MAX,
        Handler::direct(move |a| {
            if a.is_empty() {
                v.set("")?;
            }
            for spec in a {
                v.set(spec)?;
            }
            Ok(String::new())
        }),
    );
    let v = vlog.clone();
    r.register(
        "vlog/list",
        "",
        0,
        0,
        Handler::direct(move |_| Ok(v.list())),
    );
    let v = vlog.clone();
    r.register(
        "vlog/list-pattern",
        "",
        0,
        0,
        Handler::direct(move |_| Ok(v.list_pattern())),
    );
    let v = vlog.clone();
    r.register(
        "vlog/reopen",
        "",
        0,
        0,
        Handler::direct(move |_| v.reopen().map(|_| String::new())),
    );
    let v = vlog.clone();
    r.register(
        "vlog/close",
        "",
        0,
        0,
        Handler::direct(move |_| {
            v.close();
            Ok(String::new())
        }),
    );
    let v = vlog.clone();
    r.register(
        "vlog/enable-rate-limit",
        "[module]...",
        0,
        usize::MAX,
        Handler::direct(move |a| v.set_rate_limit(a, true).map(|_| String::new())),
    );
    let v = vlog;
    r.register(
        "vlog/disable-rate-limit",
        "[module]...",
        0,
        usize::MAX,
        Handler::direct(move |a| v.set_rate_limit(a, false).map(|_| String::new())),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_first_line_ends_in_a_version_ovn_ctl_accepts() {
        let v = version_text();
        let first = v.lines().next().unwrap();
        assert!(first.starts_with("ovn-ic "));
        let last_word = first.split_whitespace().last().unwrap();
        let parts: Vec<u32> = last_word.split('.').map(|p| p.parse().unwrap()).collect();
        assert!(parts >= vec![2, 5, 90], "{last_word}");
        assert!(v
            .lines()
            .nth(1)
            .unwrap()
            .starts_with("Open vSwitch Library "));
    }

    #[test]
    fn strerror_text() {
        let e = std::io::Error::from_raw_os_error(libc::ENOENT);
        assert_eq!(strerror(&e), "No such file or directory");
    }
}
