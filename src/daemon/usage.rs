//! `--help` and `--options` texts (spec ovn-ic-core.md §1.1). The option list itself is owned
//! by `cli`; these texts mirror it for printing.

use super::cli::Env;

/// Default run directory when `OVN_RUNDIR` is unset (Debian build).
pub const DEFAULT_RUNDIR: &str = "/var/run/ovn";
/// Default OVS log directory when `OVS_LOGDIR` is unset (the default `--log-file` lives there).
pub const DEFAULT_OVS_LOGDIR: &str = "/var/log/openvswitch";

/// The `--help` text, with the effective database defaults.
pub fn usage(env: &Env) -> String {
    let rundir = env
        .ovn_rundir
        .clone()
        .unwrap_or_else(|| DEFAULT_RUNDIR.to_string());
    let logdir = env
        .ovs_logdir
        .clone()
        .unwrap_or_else(|| DEFAULT_OVS_LOGDIR.to_string());
    let def = |v: &Option<String>, sock: &str| {
        v.clone().unwrap_or_else(|| format!("unix:{rundir}/{sock}"))
    };
    let nb = def(&env.ovn_nb_db, "ovnnb_db.sock");
    let sb = def(&env.ovn_sb_db, "ovnsb_db.sock");
    let inb = def(&env.ovn_ic_nb_db, "ovn_ic_nb_db.sock");
    let isb = def(&env.ovn_ic_sb_db, "ovn_ic_sb_db.sock");
    format!(
        "\
ovn-ic: OVN interconnection management daemon
usage: ovn-ic [OPTIONS]

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
  -h, --help                display this help message
  -o, --options             list available options
  -V, --version             display version information

Daemon options:
  --detach                run in background as daemon
  --monitor               creates a process to monitor this daemon
  --user=username[:group] changes the effective daemon user:group
  --no-chdir              do not chdir to '/'
  --pidfile[=FILE]        create pidfile (default: {rundir}/ovn-ic.pid)
  --overwrite-pidfile     with --pidfile, start even if already running

Logging options:
  -vSPEC, --verbose=SPEC   set logging levels
  -v, --verbose            set maximum verbosity level
  --log-file[=FILE]        enable logging to specified FILE
                           (default: {logdir}/ovn-ic.log)
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
  --ssl-ciphersuites=SUITES list of SSL ciphersuites to enable
  --ssl-server-name=NAME  server name for SNI
"
    )
}

/// Every option in declaration order: `(long name, short letter, argument)` where the argument
/// is 0 = none, 1 = required, 2 = optional.
pub const OPTIONS: [(&str, Option<char>, u8); 27] = [
    ("ovnsb-db", Some('d'), 1),
    ("ovnnb-db", Some('D'), 1),
    ("ic-sb-db", Some('i'), 1),
    ("ic-nb-db", Some('I'), 1),
    ("unixctl", Some('u'), 1),
    ("help", Some('h'), 0),
    ("options", Some('o'), 0),
    ("version", Some('V'), 0),
    ("dump-inc-proc-graph", None, 2),
    ("detach", None, 0),
    ("no-self-confinement", None, 0),
    ("no-chdir", None, 0),
    ("pidfile", None, 2),
    ("overwrite-pidfile", None, 0),
    ("monitor", None, 0),
    ("user", None, 1),
    ("verbose", Some('v'), 2),
    ("log-file", None, 2),
    ("syslog-method", None, 1),
    ("syslog-target", None, 1),
    ("private-key", Some('p'), 1),
    ("certificate", Some('c'), 1),
    ("ca-cert", Some('C'), 1),
    ("ssl-protocols", None, 1),
    ("ssl-ciphers", None, 1),
    ("ssl-ciphersuites", None, 1),
    ("ssl-server-name", None, 1),
];

/// The `--options` text: `--name[=ARG|=[ARG]]`, then `-c ARG`/`-c [ARG]`/`-c ` for options with
/// a short form (the raw control-byte lines of long-only options are not reproduced).
pub fn options_text() -> String {
    let mut s = String::new();
    for (name, short, arg) in OPTIONS {
        let (long_arg, short_arg) = match arg {
            1 => ("=ARG", "ARG"),
            2 => ("=[ARG]", "[ARG]"),
            _ => ("", ""),
        };
        s.push_str(&format!("--{name}{long_arg}\n"));
        if let Some(c) = short {
            s.push_str(&format!("-{c} {short_arg}\n"));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_uses_environment_defaults() {
        let env = Env {
            ovn_rundir: Some("/r".into()),
            ovn_sb_db: Some("tcp:1.2.3.4:6642".into()),
            ..Default::default()
        };
        let u = usage(&env);
        assert!(u.starts_with(
            "ovn-ic: OVN interconnection management daemon\nusage: ovn-ic [OPTIONS]\n"
        ));
        assert!(u.contains("(default: unix:/r/ovnnb_db.sock)"));
        assert!(u.contains("(default: tcp:1.2.3.4:6642)"));
        assert!(u.contains("(default: /r/ovn-ic.pid)"));
        assert!(u.contains("(default: /var/log/openvswitch/ovn-ic.log)"));
    }

    #[test]
    fn options_format() {
        let o = options_text();
        assert!(o.starts_with("--ovnsb-db=ARG\n-d ARG\n--ovnnb-db=ARG\n-D ARG\n"));
        assert!(o.contains("--help\n-h \n"));
        assert!(o.contains("--pidfile=[ARG]\n--overwrite-pidfile\n"));
        assert!(o.contains("--verbose=[ARG]\n-v [ARG]\n"));
        assert!(o.ends_with("--ssl-server-name=ARG\n"));
    }
}
