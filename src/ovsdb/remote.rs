//! Connection strings ("remotes"), spec ovsdb-protocol.md §1.1.
//!
//! Helper-owned module: parse `unix:PATH`, `tcp:HOST:PORT`, `ssl:HOST:PORT` (IPv4, `[IPv6]`,
//! bracketed IPv4, `%scope`), default port 6640 with the C library's colon-count rule, passive
//! forms `punix:`, `ptcp:`, `pssl:` (parsed, reported as passive), and comma-separated cluster
//! lists with the exact splitting rule of `lib/ovsdb-session.c` (`cid:<uuid>` elements extracted).
//!
//! Differences from the C library, all deliberate:
//! * DNS names are not resolved (OVS only resolves them when built with libunbound); the one
//!   exception is the literal host `localhost`, which maps to 127.0.0.1.
//! * An empty port (`tcp:1.2.3.4:` after defaulting, `ptcp::1.2.3.4`) is an error instead of the
//!   C library's accidental port 65535.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::path::{Path, PathBuf};
use std::sync::Once;

use super::uuid::Uuid;

/// The IANA-assigned OVSDB port, used when a `tcp:`/`ssl:`/`ptcp:`/`pssl:` remote has none.
pub const OVSDB_PORT: u16 = 6640;
/// The pre-IANA OVSDB port, only mentioned in the one-time warning.
const OVSDB_OLD_PORT: u16 = 6632;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RemoteError {
    #[error("{0}: unknown connection method")]
    UnknownMethod(String),
    #[error("{0}: port must be specified")]
    NoPort(String),
    #[error("{0}: bad address: {1}")]
    BadAddress(String, String),
    #[error("empty remote")]
    Empty,
}

/// One transport endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Remote {
    Unix(PathBuf),
    Tcp(SocketAddr),
    Ssl(SocketAddr),
    /// Passive methods: we listen and the server connects to us.
    PUnix(PathBuf),
    PTcp(SocketAddr),
    PSsl(SocketAddr),
}

impl Remote {
    /// Parse one remote. A relative `unix:` path is resolved against `rundir`.
    pub fn parse(s: &str, rundir: &std::path::Path) -> Result<Remote, RemoteError> {
        if s.is_empty() {
            return Err(RemoteError::Empty);
        }
        let Some((method, rest)) = s.split_once(':') else {
            return Err(RemoteError::UnknownMethod(s.to_string()));
        };
        match method {
            "unix" => Ok(Remote::Unix(unix_path(s, rest, rundir)?)),
            "punix" => Ok(Remote::PUnix(unix_path(s, rest, rundir)?)),
            "tcp" | "ssl" => {
                // stream_open_with_default_port(): append the default port only when the whole
                // string has fewer than 3 non-empty ':'-separated fields.
                let target = if count_fields(s) < 3 {
                    warn_default_port_once();
                    format!("{rest}:{OVSDB_PORT}")
                } else {
                    rest.to_string()
                };
                let addr = parse_active(s, &target)?;
                Ok(if method == "tcp" {
                    Remote::Tcp(addr)
                } else {
                    Remote::Ssl(addr)
                })
            }
            "ptcp" | "pssl" => {
                // pstream_open_with_default_port(): fewer than 2 fields -> append the port.
                let target = if count_fields(s) < 2 {
                    format!("{rest}{OVSDB_PORT}")
                } else {
                    rest.to_string()
                };
                let addr = parse_passive(s, &target)?;
                Ok(if method == "ptcp" {
                    Remote::PTcp(addr)
                } else {
                    Remote::PSsl(addr)
                })
            }
            _ => Err(RemoteError::UnknownMethod(s.to_string())),
        }
    }
    /// tcp/ssl (active or passive) need inactivity probes; unix does not.
    pub fn needs_probes(&self) -> bool {
        !matches!(self, Remote::Unix(_) | Remote::PUnix(_))
    }
    pub fn is_passive(&self) -> bool {
        matches!(self, Remote::PUnix(_) | Remote::PTcp(_) | Remote::PSsl(_))
    }
    /// True for `ssl:` and `pssl:` remotes (they need the SSL options).
    pub fn is_ssl(&self) -> bool {
        matches!(self, Remote::Ssl(_) | Remote::PSsl(_))
    }
}

/// A parsed `--ovnsb-db`-style value: one or more remotes (the original strings are kept for log
/// lines, which name the remote as written) and an optional expected cluster id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteList {
    pub remotes: Vec<(String, Remote)>,
    pub cid: Option<Uuid>,
}

impl RemoteList {
    pub fn parse(s: &str, rundir: &std::path::Path) -> Result<RemoteList, RemoteError> {
        let mut names = split_remotes(s);
        // ovsdb_session_parse_remote(): the first element "cid:<valid uuid>" is removed and
        // becomes the cluster id; a "cid:" element with a bad uuid stays (and fails below).
        let mut cid = None;
        if let Some(i) = names.iter().position(|n| {
            n.strip_prefix("cid:")
                .is_some_and(|u| u.parse::<Uuid>().is_ok())
        }) {
            let name = names.remove(i);
            cid = name[4..].parse::<Uuid>().ok();
        }
        if names.is_empty() {
            return Err(RemoteError::Empty);
        }
        let remotes = names
            .into_iter()
            .map(|n| Remote::parse(&n, rundir).map(|r| (n, r)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(RemoteList { remotes, cid })
    }

    /// Number of remotes (the backoff-free tries of the reconnect FSM).
    pub fn len(&self) -> usize {
        self.remotes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.remotes.is_empty()
    }
}

/// Split a comma-separated list as `lib/ovsdb-session.c` does: a comma starts a new element only
/// when followed by optional blanks, a run of lowercase ASCII letters and a `:`.
pub fn split_remotes(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut s = s;
    loop {
        s = s.trim_start_matches([' ', '\t']);
        if s.is_empty() {
            break;
        }
        match next_delimiter(s) {
            Some(i) => {
                out.push(s[..i].to_string());
                s = &s[i + 1..];
            }
            None => {
                out.push(s.to_string());
                break;
            }
        }
    }
    out
}

/// Byte index of the first comma in `s` that starts a new remote.
fn next_delimiter(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    for (i, _) in b.iter().enumerate().filter(|(_, &c)| c == b',') {
        let mut p = i + 1;
        while p < b.len() && (b[p] == b' ' || b[p] == b'\t') {
            p += 1;
        }
        let start = p;
        while p < b.len() && b[p].is_ascii_lowercase() {
            p += 1;
        }
        if p > start && p < b.len() && b[p] == b':' {
            return Some(i);
        }
    }
    None
}

/// strtok_r(s, ":") field count: empty fields are not counted.
fn count_fields(s: &str) -> usize {
    s.split(':').filter(|f| !f.is_empty()).count()
}

fn warn_default_port_once() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        tracing::warn!(
            target: "stream",
            "The default OVSDB port number has changed from {} to {}",
            OVSDB_OLD_PORT,
            OVSDB_PORT
        );
    });
}

fn unix_path(full: &str, rest: &str, rundir: &Path) -> Result<PathBuf, RemoteError> {
    if rest.is_empty() {
        return Err(RemoteError::BadAddress(
            full.to_string(),
            "file name must be specified".to_string(),
        ));
    }
    let p = Path::new(rest);
    Ok(if p.is_absolute() {
        p.to_path_buf()
    } else {
        rundir.join(p)
    })
}

/// `inet_parse_tokens__()`: split into host and port, ignoring colons inside `[...]`. With more
/// than one colon outside brackets the whole string is the host. Returns (first, second) in the
/// order they appear; the caller decides which one is the host.
fn split_tokens(s: &str) -> (Option<&str>, Option<&str>, bool) {
    let mut in_brackets = false;
    let mut n_colons = 0;
    let mut colon = None;
    for (i, c) in s.char_indices() {
        match c {
            '[' => in_brackets = true,
            ']' => in_brackets = false,
            ':' if !in_brackets => {
                n_colons += 1;
                colon = Some(i);
            }
            _ => {}
        }
    }
    if n_colons > 1 {
        return (Some(s), None, true);
    }
    match colon {
        Some(i) => (
            Some(unbracket(&s[..i])),
            Some(unbracket(&s[i + 1..])),
            false,
        ),
        None => (Some(unbracket(s)), None, false),
    }
}

fn unbracket(s: &str) -> &str {
    match s.strip_prefix('[') {
        Some(inner) => inner.strip_suffix(']').unwrap_or(inner),
        None => s,
    }
}

/// `inet_parse_active()` with a mandatory port.
fn parse_active(full: &str, target: &str) -> Result<SocketAddr, RemoteError> {
    let (host, port, _) = split_tokens(target);
    let host = host.unwrap_or("");
    let Some(port) = port else {
        return Err(RemoteError::NoPort(full.to_string()));
    };
    let port = parse_port(full, port)?;
    sockaddr(full, Some(host), port)
}

/// `inet_parse_passive()`: "[PORT][:HOST]", port mandatory (after defaulting).
fn parse_passive(full: &str, target: &str) -> Result<SocketAddr, RemoteError> {
    let (first, second, whole_is_host) = split_tokens(target);
    let (port, host) = if whole_is_host {
        // More than one colon outside brackets: the C code treats the whole string as the
        // host and leaves the port unset.
        (None, first)
    } else {
        (first, second)
    };
    let Some(port) = port else {
        return Err(RemoteError::NoPort(full.to_string()));
    };
    let port = parse_port(full, port)?;
    sockaddr(full, host, port)
}

fn parse_port(full: &str, port: &str) -> Result<u16, RemoteError> {
    let bad = || RemoteError::BadAddress(full.to_string(), format!("bad port number \"{port}\""));
    // str_to_int(): strtol base 10 (leading blanks and a sign allowed), whole string consumed.
    let v: i64 = port
        .trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c'])
        .parse()
        .map_err(|_| bad())?;
    u16::try_from(v).map_err(|_| bad())
}

/// `parse_sockaddr_components()`: a host with a ':' is IPv6 (optionally `%scope`), anything else
/// IPv4; no host means the IPv4 wildcard.
fn sockaddr(full: &str, host: Option<&str>, port: u16) -> Result<SocketAddr, RemoteError> {
    let bad = |msg: String| RemoteError::BadAddress(full.to_string(), msg);
    let Some(host) = host else {
        return Ok(SocketAddr::V4(SocketAddrV4::new(
            Ipv4Addr::UNSPECIFIED,
            port,
        )));
    };
    if host.contains(':') {
        let (addr, scope) = match host.split_once('%') {
            Some((a, rest)) => (a, rest.split('%').next().unwrap_or("")),
            None => (host, ""),
        };
        let ip: Ipv6Addr = addr
            .parse()
            .map_err(|_| bad(format!("bad IPv6 address \"{addr}\"")))?;
        let scope_id = if scope.is_empty() {
            0
        } else {
            parse_scope(scope).ok_or_else(|| bad(format!("bad IPv6 scope \"{scope}\"")))?
        };
        return Ok(SocketAddr::V6(SocketAddrV6::new(ip, port, 0, scope_id)));
    }
    if host == "localhost" {
        return Ok(SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)));
    }
    let ip: Ipv4Addr = host.parse().map_err(|_| {
        bad(format!(
            "bad IP address \"{host}\" (DNS names are not supported)"
        ))
    })?;
    Ok(SocketAddr::V4(SocketAddrV4::new(ip, port)))
}

/// A numeric scope is used as is (atoi semantics, wrapping like the C assignment); a name is
/// resolved with if_nametoindex().
fn parse_scope(scope: &str) -> Option<u32> {
    if scope.bytes().all(|c| c.is_ascii_digit()) {
        // atoi() into a uint32_t: digits only here, so just reduce modulo 2^32 on overflow.
        let mut v: u32 = 0;
        for c in scope.bytes() {
            v = v.wrapping_mul(10).wrapping_add(u32::from(c - b'0'));
        }
        return Some(v);
    }
    let name = std::ffi::CString::new(scope).ok()?;
    // SAFETY: `name` is a valid NUL-terminated C string that outlives the call, and
    // if_nametoindex() only reads it; it returns 0 on failure.
    let idx = unsafe { libc::if_nametoindex(name.as_ptr()) };
    (idx != 0).then_some(idx)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(a: [u8; 4], port: u16) -> SocketAddr {
        SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(a), port))
    }

    fn v6(s: &str, port: u16, scope: u32) -> SocketAddr {
        SocketAddr::V6(SocketAddrV6::new(s.parse().unwrap(), port, 0, scope))
    }

    #[test]
    fn parse_table() {
        let rundir = Path::new("/var/run/ovn");
        let ok: Vec<(&str, Remote)> = vec![
            ("unix:/tmp/db.sock", Remote::Unix("/tmp/db.sock".into())),
            (
                "unix:ovnsb_db.sock",
                Remote::Unix("/var/run/ovn/ovnsb_db.sock".into()),
            ),
            ("punix:x.sock", Remote::PUnix("/var/run/ovn/x.sock".into())),
            ("tcp:127.0.0.1:6641", Remote::Tcp(v4([127, 0, 0, 1], 6641))),
            ("ssl:10.0.0.1:6642", Remote::Ssl(v4([10, 0, 0, 1], 6642))),
            ("tcp:1.2.3.4", Remote::Tcp(v4([1, 2, 3, 4], 6640))),
            ("ssl:1.2.3.4", Remote::Ssl(v4([1, 2, 3, 4], 6640))),
            ("tcp:[::1]:6641", Remote::Tcp(v6("::1", 6641, 0))),
            ("ssl:[fe80::1]:6653", Remote::Ssl(v6("fe80::1", 6653, 0))),
            ("tcp:[fe80::1%7]:6653", Remote::Tcp(v6("fe80::1", 6653, 7))),
            ("ssl:[fe80::1%lo]:6653", Remote::Ssl(v6("fe80::1", 6653, 1))),
            ("tcp:[10.0.0.1]:6645", Remote::Tcp(v4([10, 0, 0, 1], 6645))),
            ("tcp:localhost:6641", Remote::Tcp(v4([127, 0, 0, 1], 6641))),
            ("tcp:1.2.3.4:+80", Remote::Tcp(v4([1, 2, 3, 4], 80))),
            ("ptcp:", Remote::PTcp(v4([0, 0, 0, 0], 6640))),
            ("ptcp:6641", Remote::PTcp(v4([0, 0, 0, 0], 6641))),
            ("ptcp:0:127.0.0.1", Remote::PTcp(v4([127, 0, 0, 1], 0))),
            ("ptcp:6641:[::]", Remote::PTcp(v6("::", 6641, 0))),
            ("pssl:", Remote::PSsl(v4([0, 0, 0, 0], 6640))),
            ("pssl:6643:[::1]", Remote::PSsl(v6("::1", 6643, 0))),
        ];
        for (s, want) in ok {
            assert_eq!(Remote::parse(s, rundir), Ok(want), "{s}");
        }
    }

    #[test]
    fn parse_errors_table() {
        let rundir = Path::new("/run");
        let nop = |s: &str| RemoteError::NoPort(s.to_string());
        let unk = |s: &str| RemoteError::UnknownMethod(s.to_string());
        let cases: Vec<(&str, Option<RemoteError>)> = vec![
            ("", Some(RemoteError::Empty)),
            ("foo:1.2.3.4:5", Some(unk("foo:1.2.3.4:5"))),
            ("1.2.3.4", Some(unk("1.2.3.4"))),
            ("TCP:1.2.3.4:5", Some(unk("TCP:1.2.3.4:5"))),
            ("pfd:3", Some(unk("pfd:3"))),
            // Three fields ("tcp", "[", "1]"): not defaulted, then no port.
            ("tcp:[::1]", Some(nop("tcp:[::1]"))),
            // Defaulted to "::1:6640": >1 colon, all host, no port.
            ("tcp:::1", Some(nop("tcp:::1"))),
            ("tcp:1.2.3.4:99999", None),
            ("tcp:1.2.3.4:x", None),
            ("tcp:example.com:6641", None),
            ("tcp:[fe80::1%nosuchif0]:6641", None),
            ("tcp:[::g]:6641", None),
            ("tcp:1.2.3:6641", None),
            ("unix:", None),
            ("ptcp:x", None),
        ];
        for (s, want) in cases {
            let got = Remote::parse(s, rundir);
            match want {
                Some(e) => assert_eq!(got, Err(e), "{s}"),
                None => assert!(
                    matches!(got, Err(RemoteError::BadAddress(..))),
                    "{s}: {got:?}"
                ),
            }
        }
    }

    #[test]
    fn probes_and_passive() {
        let r = Path::new("/run");
        let p = |s| Remote::parse(s, r).unwrap();
        assert!(!p("unix:a").needs_probes());
        assert!(!p("punix:a").needs_probes());
        assert!(p("tcp:1.1.1.1:1").needs_probes());
        assert!(p("pssl:1").needs_probes());
        assert!(p("punix:a").is_passive());
        assert!(p("ptcp:1").is_passive());
        assert!(!p("ssl:1.1.1.1:1").is_passive());
        assert!(p("ssl:1.1.1.1:1").is_ssl());
    }

    #[test]
    fn split_table() {
        let cases: Vec<(&str, Vec<&str>)> = vec![
            ("", vec![]),
            ("   ", vec![]),
            ("tcp:1.1.1.1:1", vec!["tcp:1.1.1.1:1"]),
            (
                "tcp:1.1.1.1:1,tcp:2.2.2.2:2",
                vec!["tcp:1.1.1.1:1", "tcp:2.2.2.2:2"],
            ),
            (
                "tcp:1.1.1.1:1, \tssl:2.2.2.2:2 ,unix:/x",
                vec!["tcp:1.1.1.1:1", "ssl:2.2.2.2:2 ", "unix:/x"],
            ),
            // Comma not followed by "letters:" is part of the element.
            ("unix:/a,b,unix:/c", vec!["unix:/a,b", "unix:/c"]),
            ("unix:/a,B:x", vec!["unix:/a,B:x"]),
            ("unix:/a,:x", vec!["unix:/a,:x"]),
            ("unix:/a,1:x", vec!["unix:/a,1:x"]),
            ("tcp:1.1.1.1:1,", vec!["tcp:1.1.1.1:1,"]),
            (
                "cid:01234567-89ab-cdef-0123-456789abcdef,tcp:1.1.1.1:1",
                vec!["cid:01234567-89ab-cdef-0123-456789abcdef", "tcp:1.1.1.1:1"],
            ),
        ];
        for (s, want) in cases {
            assert_eq!(split_remotes(s), want, "{s:?}");
        }
    }

    #[test]
    fn list_with_cid() {
        let r = Path::new("/run");
        let l = RemoteList::parse(
            "tcp:10.0.0.1:6641,cid:01234567-89ab-cdef-0123-456789abcdef, tcp:[::1]:6641",
            r,
        )
        .unwrap();
        assert_eq!(
            l.cid,
            Some("01234567-89ab-cdef-0123-456789abcdef".parse().unwrap())
        );
        assert_eq!(l.len(), 2);
        assert_eq!(l.remotes[0].0, "tcp:10.0.0.1:6641");
        assert_eq!(l.remotes[1].0, "tcp:[::1]:6641");
        assert_eq!(l.remotes[1].1, Remote::Tcp(v6("::1", 6641, 0)));

        let l = RemoteList::parse("unix:db.sock", r).unwrap();
        assert_eq!(l.cid, None);
        assert_eq!(
            l.remotes,
            vec![("unix:db.sock".into(), Remote::Unix("/run/db.sock".into()))]
        );

        // A bad cid stays in the list and then fails as an unknown method.
        assert_eq!(
            RemoteList::parse("cid:nope,tcp:1.1.1.1:1", r),
            Err(RemoteError::UnknownMethod("cid:nope".into()))
        );
        assert_eq!(
            RemoteList::parse("cid:01234567-89ab-cdef-0123-456789abcdef", r),
            Err(RemoteError::Empty)
        );
        assert_eq!(RemoteList::parse("  ", r), Err(RemoteError::Empty));
        assert!(matches!(
            RemoteList::parse("tcp:1.1.1.1:1,tcp:[::1]", r),
            Err(RemoteError::NoPort(_))
        ));
    }
}
