//! Syslog output: `--syslog-method` (`libc`, `unix:FILE`, `udp:IP[:PORT]`, `null`) and the
//! deprecated `--syslog-target=IP:PORT` RFC 5424 export (OVS `lib/syslog-*.c`).
//!
//! Sockets are non-blocking and send errors are ignored: logging never blocks or fails the
//! daemon.

use std::ffi::CString;
use std::net::{SocketAddr, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::sync::OnceLock;

/// `LOG_FACMASK`.
const FACILITY_MASK: i32 = 0x03f8;

/// A connected datagram socket to a syslog daemon.
pub enum DirectSock {
    Unix(UnixDatagram),
    Udp(UdpSocket),
}

impl DirectSock {
    fn send(&self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            DirectSock::Unix(s) => s.send(buf),
            DirectSock::Udp(s) => s.send(buf),
        }
    }
}

/// The syslog method.
pub enum Syslogger {
    /// `null`: syslog output is discarded.
    Null,
    /// `libc`: `openlog(3)`/`syslog(3)`.
    Libc,
    /// `unix:FILE` or `udp:IP[:PORT]`: `<PRI>MSG` datagrams. `sock` is `None` if the socket could
    /// not be created (messages are then dropped, as in OVS).
    Direct {
        sock: Option<DirectSock>,
        facility: i32,
        max_len: usize,
    },
}

impl std::fmt::Debug for Syslogger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Syslogger::Null => "Syslogger::Null",
            Syslogger::Libc => "Syslogger::Libc",
            Syslogger::Direct { .. } => "Syslogger::Direct",
        })
    }
}

/// Parse `IP:PORT` (`[v6]:PORT` for IPv6), or a bare IP with `default_port` when nonzero.
pub fn parse_inet(s: &str, default_port: u16) -> Result<SocketAddr, String> {
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    if default_port != 0 {
        let host = s.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = host.parse::<std::net::IpAddr>() {
            return Ok(SocketAddr::new(ip, default_port));
        }
    }
    Err(format!("{s}: bad peer name format"))
}

/// A connected, non-blocking UDP socket to `addr`.
pub fn udp_connect(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    let local: SocketAddr = if addr.is_ipv4() {
        "0.0.0.0:0".parse().expect("valid literal")
    } else {
        "[::]:0".parse().expect("valid literal")
    };
    let s = UdpSocket::bind(local)?;
    s.connect(addr)?;
    s.set_nonblocking(true)?;
    Ok(s)
}

impl Syslogger {
    /// Create the syslogger for a `--syslog-method` value. `Err` = `unsupported syslog method`.
    pub fn create(method: &str) -> Result<Syslogger, String> {
        super::spec::check_syslog_method(method)?;
        Ok(if method == "libc" {
            Syslogger::Libc
        } else if method == "null" {
            Syslogger::Null
        } else if let Some(path) = method.strip_prefix("unix:") {
            let sock = UnixDatagram::unbound()
                .and_then(|s| {
                    s.set_nonblocking(true)?;
                    s.connect(path)?;
                    Ok(s)
                })
                .ok()
                .map(DirectSock::Unix);
            Syslogger::Direct {
                sock,
                facility: libc::LOG_DAEMON,
                max_len: usize::MAX,
            }
        } else {
            let target = method.strip_prefix("udp:").unwrap_or(method);
            let sock = parse_inet(target, 514)
                .ok()
                .and_then(|a| udp_connect(a).ok())
                .map(DirectSock::Udp);
            Syslogger::Direct {
                sock,
                facility: libc::LOG_DAEMON,
                max_len: usize::MAX,
            }
        })
    }

    /// `vlog/list-pattern`'s "prefix" column for the syslog destination.
    pub fn prefix(&self) -> &'static str {
        match self {
            Syslogger::Null => "",
            Syslogger::Libc => "<%B> %D{%h %e %T} %E %A:",
            Syslogger::Direct { .. } => "<%B>",
        }
    }

    /// (Re)open with `facility` (the default facility for messages that carry none).
    pub fn open(&mut self, program: &str, facility: i32) {
        match self {
            Syslogger::Null => {}
            Syslogger::Libc => {
                // openlog(3) keeps the ident pointer: keep one NUL-terminated copy forever.
                static IDENT: OnceLock<CString> = OnceLock::new();
                let ident = IDENT
                    .get_or_init(|| CString::new(program.replace('\0', "")).unwrap_or_default());
                // SAFETY: `ident` is a 'static NUL-terminated string; openlog has no other
                // preconditions.
                unsafe { libc::openlog(ident.as_ptr(), libc::LOG_NDELAY, facility) };
            }
            Syslogger::Direct { facility: f, .. } => *f = facility,
        }
    }

    /// Send one line with priority `pri` (severity, possibly or-ed with a facility).
    pub fn log(&mut self, pri: i32, msg: &str) {
        match self {
            Syslogger::Null => {}
            Syslogger::Libc => {
                let Ok(line) = CString::new(msg.replace('\0', "")) else {
                    return;
                };
                // SAFETY: constant "%s" format with exactly one NUL-terminated string argument.
                unsafe { libc::syslog(pri, c"%s".as_ptr(), line.as_ptr()) };
            }
            Syslogger::Direct {
                sock,
                facility,
                max_len,
            } => {
                let Some(sock) = sock else { return };
                let pri = if pri & FACILITY_MASK == 0 {
                    pri | *facility
                } else {
                    pri
                };
                let wire = format!("<{pri}>{msg}");
                send_truncating(sock, wire.as_bytes(), max_len);
            }
        }
    }
}

/// Send a datagram; on EMSGSIZE retry with 5 % less, remembering the size that worked.
fn send_truncating(sock: &DirectSock, msg: &[u8], max_len: &mut usize) {
    let mut len = msg.len().min(*max_len);
    loop {
        match sock.send(&msg[..len]) {
            Err(e) if e.raw_os_error() == Some(libc::EMSGSIZE) && len > 0 => {
                len -= (len / 20).max(1);
                *max_len = len;
            }
            _ => return,
        }
    }
}

/// The `--syslog-target` UDP export.
pub struct SyslogTarget {
    sock: DirectSock,
    max_len: usize,
}

impl SyslogTarget {
    /// `IP:PORT` (numeric).
    pub fn open(target: &str) -> Result<SyslogTarget, String> {
        let addr = parse_inet(target, 0)?;
        let sock = udp_connect(addr).map_err(|e| format!("{target}: connect: {e}"))?;
        Ok(SyslogTarget {
            sock: DirectSock::Udp(sock),
            max_len: usize::MAX,
        })
    }

    pub fn send(&mut self, msg: &str) {
        send_truncating(&self.sock, msg.as_bytes(), &mut self.max_len);
    }
}

/// The RFC 5424 pattern used for `--syslog-target` messages.
pub const RFC5424_PATTERN: &str = "<%B>1 %D{%Y-%m-%dT%H:%M:%S.###Z} %E %A %P %c - \u{feff}%m";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_method_sends_pri_and_message() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.sock");
        let rx = UnixDatagram::bind(&path).unwrap();
        let mut s = Syslogger::create(&format!("unix:{}", path.display())).unwrap();
        assert_eq!(s.prefix(), "<%B>");
        s.open("ovn-ic", libc::LOG_DAEMON);
        s.log(libc::LOG_WARNING, "hello");
        s.log(libc::LOG_ERR | (19 << 3), "with facility");
        let mut buf = [0u8; 256];
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"<28>hello");
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"<155>with facility");
    }

    #[test]
    fn udp_method_and_target() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = rx.local_addr().unwrap().port();
        let mut s = Syslogger::create(&format!("udp:127.0.0.1:{port}")).unwrap();
        s.open("ovn-ic", 16 << 3);
        s.log(libc::LOG_NOTICE, "x");
        let mut buf = [0u8; 64];
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"<133>x");
        let mut t = SyslogTarget::open(&format!("127.0.0.1:{port}")).unwrap();
        t.send("<133>1 rfc");
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"<133>1 rfc");
        assert!(SyslogTarget::open("localhost:514").is_err());
        assert!(SyslogTarget::open("1.2.3.4").is_err());
    }

    #[test]
    fn unreachable_sockets_never_fail() {
        let mut s = Syslogger::create("unix:/nonexistent/dir/log").unwrap();
        s.log(libc::LOG_ERR, "dropped silently");
        assert!(Syslogger::create("bogus").is_err());
        assert_eq!(Syslogger::create("null").unwrap().prefix(), "");
        assert_eq!(
            Syslogger::create("libc").unwrap().prefix(),
            "<%B> %D{%h %e %T} %E %A:"
        );
        assert_eq!(parse_inet("10.1.2.3", 514).unwrap().port(), 514);
        assert_eq!(parse_inet("[::1]:9", 514).unwrap().port(), 9);
    }
}
