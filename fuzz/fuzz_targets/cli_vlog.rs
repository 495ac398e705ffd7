//! Command-line parsing (`ovn_ic::daemon::cli::parse`) and vlog option handling
//! (`ovn_ic::daemon::vlog`: `-v`/`vlog/set` SPECs, log patterns), the inputs an operator or
//! `ovn-ctl` hands the daemon.
//!
//! Input: NUL-separated arguments. Checked besides "no panic": a `-v` SPEC the command line
//! accepted is accepted by a logger too, and logging through any accepted pattern works.
#![no_main]

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use ovn_ic::daemon::cli::{self, Command, Env};
use ovn_ic::daemon::vlog::spec::{check_spec, parse_spec, Level};
use ovn_ic::daemon::vlog::syslog::Syslogger;
use ovn_ic::daemon::vlog::{check_syslog_method, Logger, MemorySink};

fn env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| Env {
        ovn_rundir: Some("/nonexistent/run".into()),
        ovs_logdir: Some("/nonexistent/log".into()),
        ..Env::default()
    })
}

fuzz_target!(|data: &[u8]| {
    let args: Vec<OsString> = data
        .split(|&b| b == 0)
        .map(|a| OsString::from_vec(a.to_vec()))
        .collect();
    let parsed = cli::parse("ovn-ic", &args, env());
    let _ = cli::usage_with_env("ovn-ic", env());

    // Every argument as a SPEC, a syslog method and a log line, through a private logger
    // whose syslog goes nowhere (never the machine's syslog).
    let sink = MemorySink::new();
    let logger = Logger::new("ovn-ic", Box::new(sink.clone()));
    if let Ok(null) = Syslogger::create("null") {
        logger.set_syslogger(null);
    }
    for a in &args {
        let s = String::from_utf8_lossy(a.as_encoded_bytes());
        let _ = parse_spec(&s);
        let _ = check_syslog_method(&s);
        let _ = logger.apply_spec(&s);
        let _ = logger.apply_spec(&format!("PATTERN:file:{s}"));
        let _ = logger.apply_spec(&format!("PATTERN:console:{s}"));
        logger.log(0, Level::Warn, &s);
        logger.log(0, Level::Dbg, &s);
    }
    let _ = logger.list();
    let _ = sink.take();

    if let Ok(Command::Run(opts)) = parsed {
        for spec in &opts.verbose {
            if check_spec(spec).is_ok() {
                let l = Logger::new("ovn-ic", Box::new(MemorySink::new()));
                if let Ok(null) = Syslogger::create("null") {
                    l.set_syslogger(null);
                }
                assert!(
                    l.apply_spec(spec).is_ok(),
                    "{spec:?} passed the CLI, not vlog/set"
                );
            }
        }
    }
});
