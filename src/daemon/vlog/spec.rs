//! Levels, destinations, facilities, the module table and the SPEC grammar of
//! `vlog_set_levels_from_string` (spec ovsdb-protocol.md §13.2), with OVS's exact error texts.

/// A vlog level. Numerically ordered like OVS: a message of level `m` goes to a destination
/// whose level is `d` iff `m <= d` (and `m != Off`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Off = 0,
    Emer = 1,
    Err = 2,
    Warn = 3,
    Info = 4,
    Dbg = 5,
}

impl Level {
    pub const ALL: [Level; 6] = [
        Level::Off,
        Level::Emer,
        Level::Err,
        Level::Warn,
        Level::Info,
        Level::Dbg,
    ];

    /// Upper-case name as printed by `%p` and `vlog/list`.
    pub fn name(self) -> &'static str {
        match self {
            Level::Off => "OFF",
            Level::Emer => "EMER",
            Level::Err => "ERR",
            Level::Warn => "WARN",
            Level::Info => "INFO",
            Level::Dbg => "DBG",
        }
    }

    /// Case-insensitive lookup (`off emer err warn info dbg`).
    pub fn from_name(s: &str) -> Option<Level> {
        Level::ALL
            .into_iter()
            .find(|l| l.name().eq_ignore_ascii_case(s))
    }

    /// syslog(3) severity: EMER→LOG_ALERT, ERR→LOG_ERR, WARN→LOG_WARNING, INFO→LOG_NOTICE,
    /// DBG→LOG_DEBUG.
    pub fn syslog_severity(self) -> i32 {
        match self {
            Level::Off => 0,
            Level::Emer => libc::LOG_ALERT,
            Level::Err => libc::LOG_ERR,
            Level::Warn => libc::LOG_WARNING,
            Level::Info => libc::LOG_NOTICE,
            Level::Dbg => libc::LOG_DEBUG,
        }
    }
}

/// A log destination, in OVS's enum order (which is the order of `vlog/list-pattern`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Destination {
    Syslog = 0,
    Console = 1,
    File = 2,
}

impl Destination {
    pub const ALL: [Destination; 3] =
        [Destination::Syslog, Destination::Console, Destination::File];

    pub fn name(self) -> &'static str {
        match self {
            Destination::Syslog => "SYSLOG",
            Destination::Console => "CONSOLE",
            Destination::File => "FILE",
        }
    }

    pub fn from_name(s: &str) -> Option<Destination> {
        Destination::ALL
            .into_iter()
            .find(|d| d.name().eq_ignore_ascii_case(s))
    }

    /// Default pattern (from OVS `include/openvswitch/vlog.h`, not the outdated man page).
    pub fn default_pattern(self) -> &'static str {
        match self {
            Destination::Syslog => "ovs|%05N|%c%T|%p|%m",
            Destination::Console => "%D{%Y-%m-%dT%H:%M:%SZ}|%05N|%c%T|%p|%m",
            Destination::File => "%D{%Y-%m-%dT%H:%M:%S.###Z}|%05N|%c%T|%p|%m",
        }
    }
}

/// Syslog facilities accepted by `FACILITY:<name>` with their `<syslog.h>` values.
pub const FACILITIES: &[(&str, i32)] = &[
    ("kern", 0),
    ("user", 1 << 3),
    ("mail", 2 << 3),
    ("daemon", 3 << 3),
    ("auth", 4 << 3),
    ("syslog", 5 << 3),
    ("lpr", 6 << 3),
    ("news", 7 << 3),
    ("uucp", 8 << 3),
    ("clock", 9 << 3),
    ("ftp", 11 << 3),
    ("ntp", 12 << 3),
    ("audit", 13 << 3),
    ("alert", 14 << 3),
    ("clock2", 15 << 3),
    ("local0", 16 << 3),
    ("local1", 17 << 3),
    ("local2", 18 << 3),
    ("local3", 19 << 3),
    ("local4", 20 << 3),
    ("local5", 21 << 3),
    ("local6", 22 << 3),
    ("local7", 23 << 3),
];

/// `LOG_LOCAL0`, the facility `%B` uses when none was configured.
pub const LOG_LOCAL0: i32 = 16 << 3;

/// Every vlog module, sorted. This is the module list of the C `ovn-ic` (23.03.1, as printed by
/// its `vlog/list`) plus the modules HEAD's ovn-ic adds (`en_ic`, `inc_proc_eng`,
/// `inc_proc_ic`), so that existing `-v` configurations naming any of them keep working and
/// `vlog/list` looks the same. Most of them never log anything in this daemon.
pub const MODULES: &[&str] = &[
    "backtrace",
    "bundle",
    "command_line",
    "conntrack",
    "conntrack_tp",
    "coverage",
    "ct_dpif",
    "daemon",
    "daemon_unix",
    "dns_resolve",
    "dpdk",
    "dpif",
    "dpif_lookup_autovalidator",
    "dpif_lookup_generic",
    "dpif_mfex_extract_study",
    "dpif_netdev",
    "dpif_netdev_extract",
    "dpif_netdev_impl",
    "dpif_netdev_lookup",
    "dpif_netlink",
    "dpif_netlink_rtnl",
    "en_ic",
    "entropy",
    "fatal_signal",
    "flow",
    "hmap",
    "inc_proc_eng",
    "inc_proc_ic",
    "ipf",
    "jsonrpc",
    "lockfile",
    "memory",
    "meta_flow",
    "native_tnl",
    "netdev",
    "netdev_linux",
    "netdev_offload",
    "netdev_offload_tc",
    "netdev_vport",
    "netlink",
    "netlink_conntrack",
    "netlink_notifier",
    "netlink_socket",
    "nx_match",
    "odp_execute",
    "odp_execute_impl",
    "odp_util",
    "ofp_actions",
    "ofp_bundle",
    "ofp_connection",
    "ofp_errors",
    "ofp_flow",
    "ofp_group",
    "ofp_match",
    "ofp_meter",
    "ofp_monitor",
    "ofp_msgs",
    "ofp_packet",
    "ofp_port",
    "ofp_protocol",
    "ofp_queue",
    "ofp_table",
    "ofp_util",
    "ovn_ic",
    "ovn_util",
    "ovs_numa",
    "ovs_rcu",
    "ovs_replay",
    "ovs_router",
    "ovs_thread",
    "ovsdb_cs",
    "ovsdb_error",
    "ovsdb_idl",
    "ox_stat",
    "pmd_perf",
    "poll_loop",
    "process",
    "reconnect",
    "route_table",
    "sha1",
    "signals",
    "socket_util",
    "socket_util_unix",
    "stream",
    "stream_fd",
    "stream_replay",
    "stream_ssl",
    "stream_tcp",
    "stream_unix",
    "svec",
    "tc",
    "timeval",
    "unixctl",
    "userspace_tso",
    "util",
    "uuid",
    "vlog",
];

/// Index of module `name` in [`MODULES`] (exact, case-sensitive: used for tracing targets).
pub fn module_index_exact(name: &str) -> Option<usize> {
    MODULES.binary_search(&name).ok()
}

/// Index of module `name` in [`MODULES`], case-insensitive like OVS's `vlog_module_from_name`.
pub fn module_index(name: &str) -> Option<usize> {
    module_index_exact(name).or_else(|| MODULES.iter().position(|m| m.eq_ignore_ascii_case(name)))
}

/// Rust module-path segments that do not carry a vlog module name themselves.
const ALIASES: &[(&str, &str)] = &[
    ("cli", "command_line"),
    ("cs", "ovsdb_cs"),
    ("daemon", "daemon_unix"),
    ("detach", "daemon_unix"),
    ("engine", "inc_proc_eng"),
    ("ic", "ovn_ic"),
    ("idl", "ovsdb_idl"),
    ("pidfile", "daemon_unix"),
    ("replica", "ovsdb_idl"),
    ("session", "ovsdb_cs"),
    ("signal", "fatal_signal"),
    ("ssl", "stream_ssl"),
    ("txn", "ovsdb_idl"),
];

/// The module a `tracing` target logs as.
///
/// * A target that is a module name (`"reconnect"`, `"ovn_ic"`) is that module.
/// * A Rust module path (`ovn_ic::ovsdb::jsonrpc`, the default target of `tracing` macros) is
///   mapped by its most specific segment that names a module or has an alias
///   (`ovn_ic::ovsdb::session` → `ovsdb_cs`, `ovn_ic::daemon::pidfile` → `daemon_unix`,
///   `ovn_ic::engine::…` → `inc_proc_eng`).
/// * Anything else (other crates, unknown paths) logs as `ovn_ic`, the program's own module.
pub fn module_for_target(target: &str) -> usize {
    if let Some(i) = module_index_exact(target) {
        return i;
    }
    let segments: Vec<&str> = target.split("::").collect();
    for seg in segments.iter().rev() {
        // The crate name `ovn_ic` is also a module name: only use it as a last resort.
        if *seg == "ovn_ic" {
            continue;
        }
        if let Some(i) = module_index_exact(seg) {
            return i;
        }
        if let Some((_, m)) = ALIASES.iter().find(|(a, _)| a == seg) {
            if let Some(i) = module_index_exact(m) {
                return i;
            }
        }
    }
    ovn_ic_module()
}

/// Index of the `ovn_ic` module.
pub fn ovn_ic_module() -> usize {
    module_index_exact("ovn_ic").unwrap_or(0)
}

/// Index of the `vlog` module.
pub fn vlog_module() -> usize {
    module_index_exact("vlog").unwrap_or(0)
}

/// What a SPEC asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpecCmd {
    /// `PATTERN:<dest>:<pattern>`; `dest == None` means `ANY`.
    Pattern {
        dest: Option<Destination>,
        pattern: String,
    },
    /// `FACILITY:<name>`, the facility's `<syslog.h>` value.
    Facility(i32),
    /// `[dest][:level][:module]`; `None` = every destination / every module.
    Levels {
        module: Option<usize>,
        dest: Option<Destination>,
        level: Level,
    },
}

const DELIMS: &[char] = &[' ', ',', ':', '\t'];

/// `strtok_r(…, " ,:\t", …)` over a string.
struct Tokenizer<'a> {
    rest: &'a str,
}

impl<'a> Tokenizer<'a> {
    fn next_token(&mut self) -> Option<&'a str> {
        let s = self.rest.trim_start_matches(DELIMS);
        if s.is_empty() {
            self.rest = s;
            return None;
        }
        match s.find(DELIMS) {
            Some(i) => {
                // The delimiter is one ASCII byte.
                self.rest = &s[i + 1..];
                Some(&s[..i])
            }
            None => {
                self.rest = "";
                Some(s)
            }
        }
    }
}

/// Parse one SPEC (`vlog_set_levels_from_string`). The error is OVS's text, e.g.
/// `no destination, level, or module "foo"`.
pub fn parse_spec(spec: &str) -> Result<SpecCmd, String> {
    let mut tok = Tokenizer { rest: spec };
    let first = tok.next_token();
    match first {
        Some(w) if w.eq_ignore_ascii_case("PATTERN") => {
            let Some(d) = tok.next_token() else {
                return Err("missing destination".into());
            };
            let dest = if d.eq_ignore_ascii_case("ANY") {
                None
            } else {
                match Destination::from_name(d) {
                    Some(d) => Some(d),
                    None => return Err(format!("unknown destination \"{d}\"")),
                }
            };
            Ok(SpecCmd::Pattern {
                dest,
                pattern: tok.rest.to_string(),
            })
        }
        Some(w) if w.eq_ignore_ascii_case("FACILITY") => FACILITIES
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(tok.rest))
            .map(|(_, v)| SpecCmd::Facility(*v))
            .ok_or_else(|| "invalid facility".to_string()),
        _ => {
            let mut module = None;
            let mut level = None;
            let mut dest = None;
            let mut word = first;
            while let Some(w) = word {
                if w.eq_ignore_ascii_case("ANY") {
                    // ignored
                } else if let Some(d) = Destination::from_name(w) {
                    if dest.is_some() {
                        return Err("cannot specify multiple destinations".into());
                    }
                    dest = Some(d);
                } else if let Some(l) = Level::from_name(w) {
                    if level.is_some() {
                        return Err("cannot specify multiple levels".into());
                    }
                    level = Some(l);
                } else if let Some(m) = module_index(w) {
                    if module.is_some() {
                        return Err("cannot specify multiple modules".into());
                    }
                    module = Some(m);
                } else {
                    return Err(format!("no destination, level, or module \"{w}\""));
                }
                word = tok.next_token();
            }
            Ok(SpecCmd::Levels {
                module,
                dest,
                level: level.unwrap_or(Level::Dbg),
            })
        }
    }
}

/// Validate a `-v` SPEC as the command line does (`vlog_set_verbosity`): `Err` is the text after
/// `processing "SPEC": `.
pub fn check_spec(spec: &str) -> Result<(), String> {
    parse_spec(spec).map(|_| ())
}

/// Validate a `--syslog-method` value: `Err` is OVS's `unsupported syslog method 'X'`.
pub fn check_syslog_method(method: &str) -> Result<(), String> {
    if method == "libc"
        || method == "null"
        || method.starts_with("udp:")
        || method.starts_with("unix:")
    {
        Ok(())
    } else {
        Err(format!("unsupported syslog method '{method}'"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(name: &str) -> Option<usize> {
        Some(module_index_exact(name).unwrap())
    }

    #[test]
    fn modules_sorted_and_unique() {
        for w in MODULES.windows(2) {
            assert!(w[0] < w[1], "{} !< {}", w[0], w[1]);
        }
        for needed in [
            "ovn_ic",
            "reconnect",
            "jsonrpc",
            "ovsdb_cs",
            "ovsdb_idl",
            "stream_ssl",
            "unixctl",
            "vlog",
            "daemon_unix",
            "fatal_signal",
            "memory",
            "inc_proc_eng",
            "inc_proc_ic",
            "en_ic",
            "ovn_util",
            "coverage",
            "poll_loop",
            "timeval",
            "stream_unix",
        ] {
            assert!(module_index_exact(needed).is_some(), "{needed}");
        }
    }

    #[test]
    fn spec_table() {
        use Destination::*;
        let ok: &[(&str, SpecCmd)] = &[
            (
                "",
                SpecCmd::Levels {
                    module: None,
                    dest: None,
                    level: Level::Dbg,
                },
            ),
            (
                "any",
                SpecCmd::Levels {
                    module: None,
                    dest: None,
                    level: Level::Dbg,
                },
            ),
            (
                "console:emer",
                SpecCmd::Levels {
                    module: None,
                    dest: Some(Console),
                    level: Level::Emer,
                },
            ),
            (
                "syslog:err",
                SpecCmd::Levels {
                    module: None,
                    dest: Some(Syslog),
                    level: Level::Err,
                },
            ),
            (
                "file:info",
                SpecCmd::Levels {
                    module: None,
                    dest: Some(File),
                    level: Level::Info,
                },
            ),
            (
                "ovn_ic:DBG",
                SpecCmd::Levels {
                    module: m("ovn_ic"),
                    dest: None,
                    level: Level::Dbg,
                },
            ),
            (
                "OVN_IC",
                SpecCmd::Levels {
                    module: m("ovn_ic"),
                    dest: None,
                    level: Level::Dbg,
                },
            ),
            (
                "off reconnect\tFILE,any",
                SpecCmd::Levels {
                    module: m("reconnect"),
                    dest: Some(File),
                    level: Level::Off,
                },
            ),
            (
                "::jsonrpc::warn::",
                SpecCmd::Levels {
                    module: m("jsonrpc"),
                    dest: None,
                    level: Level::Warn,
                },
            ),
            (
                "ANY:ANY:off",
                SpecCmd::Levels {
                    module: None,
                    dest: None,
                    level: Level::Off,
                },
            ),
            (
                "PATTERN:console:%c|%m",
                SpecCmd::Pattern {
                    dest: Some(Console),
                    pattern: "%c|%m".into(),
                },
            ),
            (
                "pattern:ANY:%D{%H:%M}:x",
                SpecCmd::Pattern {
                    dest: None,
                    pattern: "%D{%H:%M}:x".into(),
                },
            ),
            (
                "PATTERN:file",
                SpecCmd::Pattern {
                    dest: Some(File),
                    pattern: String::new(),
                },
            ),
            (
                "PATTERN:file::x",
                SpecCmd::Pattern {
                    dest: Some(File),
                    pattern: ":x".into(),
                },
            ),
            ("FACILITY:local3", SpecCmd::Facility(19 << 3)),
            ("facility:DAEMON", SpecCmd::Facility(3 << 3)),
            ("FACILITY:kern", SpecCmd::Facility(0)),
        ];
        for (s, want) in ok {
            assert_eq!(parse_spec(s).as_ref(), Ok(want), "spec {s:?}");
        }
        let bad: &[(&str, &str)] = &[
            ("foo", "no destination, level, or module \"foo\""),
            ("ovn-ic:dbg", "no destination, level, or module \"ovn-ic\""),
            ("console:file", "cannot specify multiple destinations"),
            (
                "console:emer,syslog:err",
                "cannot specify multiple destinations",
            ),
            ("dbg:info", "cannot specify multiple levels"),
            ("console:emer:info", "cannot specify multiple levels"),
            ("ovn_ic:reconnect", "cannot specify multiple modules"),
            ("PATTERN", "missing destination"),
            ("PATTERN:bogus:x", "unknown destination \"bogus\""),
            ("FACILITY:bogus", "invalid facility"),
            ("FACILITY:", "invalid facility"),
            ("FACILITY", "invalid facility"),
            ("FACILITY: local0", "invalid facility"),
        ];
        for (s, want) in bad {
            assert_eq!(parse_spec(s), Err(want.to_string()), "spec {s:?}");
        }
    }

    #[test]
    fn target_mapping() {
        let name = |t: &str| MODULES[module_for_target(t)];
        assert_eq!(name("reconnect"), "reconnect");
        assert_eq!(name("ovn_ic"), "ovn_ic");
        assert_eq!(name("ovn_ic::ovsdb::jsonrpc"), "jsonrpc");
        assert_eq!(name("ovn_ic::ovsdb::reconnect"), "reconnect");
        assert_eq!(name("ovn_ic::ovsdb::session"), "ovsdb_cs");
        assert_eq!(name("ovn_ic::ovsdb::ssl"), "stream_ssl");
        assert_eq!(name("ovn_ic::daemon::pidfile"), "daemon_unix");
        assert_eq!(name("ovn_ic::daemon::unixctl"), "unixctl");
        assert_eq!(name("ovn_ic::daemon::vlog"), "vlog");
        assert_eq!(name("ovn_ic::engine"), "inc_proc_eng");
        assert_eq!(name("ovn_ic::ic::routes"), "ovn_ic");
        assert_eq!(name("tokio::runtime"), "ovn_ic");
        assert_eq!(name(""), "ovn_ic");
        // Exact target names are case-sensitive; "Reconnect" is not a module target.
        assert_eq!(name("Reconnect"), "ovn_ic");
    }

    #[test]
    fn syslog_methods() {
        for ok in ["libc", "null", "unix:/dev/log", "udp:127.0.0.1:514"] {
            assert_eq!(check_syslog_method(ok), Ok(()));
        }
        assert_eq!(
            check_syslog_method("journald"),
            Err("unsupported syslog method 'journald'".into())
        );
    }
}
