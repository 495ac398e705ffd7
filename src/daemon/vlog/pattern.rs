//! Log-line patterns (`format_log_message` of OVS `lib/vlog.c`, spec ovsdb-protocol.md §13.3).

use std::ffi::CString;

use super::spec::{Level, LOG_LOCAL0};

/// Everything a pattern can refer to for one message.
#[derive(Debug, Clone)]
pub struct MsgCtx<'a> {
    /// `%A`
    pub program: &'a str,
    /// `%c`
    pub module: &'a str,
    /// `%p` (and `%B`)
    pub level: Level,
    /// `%m` (trailing newlines are trimmed)
    pub message: &'a str,
    /// `%N`
    pub serial: u32,
    /// `%t` / `%T` (`None` = main thread)
    pub subprogram: Option<&'a str>,
    /// Wall clock, milliseconds since the epoch (`%d`, `%D`).
    pub wall_ms: i64,
    /// `%r`
    pub uptime_ms: u64,
    /// `%P`
    pub pid: u32,
    /// `%E`
    pub hostname: &'a str,
    /// Configured facility value (0 = none, `%B` then uses `local0`).
    pub facility: i32,
}

/// Default strftime format of `%d` and `%D`.
const DEFAULT_TIME_FMT: &str = "%Y-%m-%d %H:%M:%S.###";

/// Append `pattern` expanded for `ctx` to `out`.
///
/// Escapes: `%A %B %c %d %d{fmt} %D %D{fmt} %E %m %N %n %p %P %r %t %T %%`; between `%` and the
/// letter an optional `-` (left-justify), `0` (pad with zeros) and a decimal width. Any other
/// letter stands for itself (so `%%` is `%`). A `{…}` after `%c` is accepted and ignored, as in
/// OVS. Widths count bytes, as in C.
pub fn format(pattern: &str, ctx: &MsgCtx<'_>, out: &mut String) {
    let b = pattern.as_bytes();
    let mut p = 0;
    while p < b.len() {
        if b[p] != b'%' {
            let end = pattern[p..].find('%').map_or(b.len(), |i| p + i);
            out.push_str(&pattern[p..end]);
            p = end;
            continue;
        }
        p += 1;
        let mut left = false;
        let mut pad = ' ';
        if p < b.len() && b[p] == b'-' {
            left = true;
            p += 1;
        }
        if p < b.len() && b[p] == b'0' {
            pad = '0';
            p += 1;
        }
        let mut field: usize = 0;
        while p < b.len() && b[p].is_ascii_digit() {
            field = field
                .saturating_mul(10)
                .saturating_add((b[p] - b'0') as usize);
            p += 1;
        }
        // Bound absurd widths so a hostile pattern cannot allocate gigabytes.
        let field = field.min(4096);
        let Some(c) = pattern[p..].chars().next() else {
            break;
        };
        p += c.len_utf8();
        let start = out.len();
        match c {
            'A' => out.push_str(ctx.program),
            'B' => {
                let facility = if ctx.facility != 0 {
                    ctx.facility
                } else {
                    LOG_LOCAL0
                };
                out.push_str(&(facility + ctx.level.syslog_severity()).to_string());
            }
            'c' => {
                p = fetch_braces(pattern, p, "").0;
                out.push_str(ctx.module);
            }
            'd' | 'D' => {
                let (np, fmt) = fetch_braces(pattern, p, DEFAULT_TIME_FMT);
                p = np;
                out.push_str(&strftime_msec(&fmt, ctx.wall_ms, c == 'D'));
            }
            'E' => out.push_str(ctx.hostname),
            'm' => out.push_str(ctx.message.trim_end_matches('\n')),
            'N' => out.push_str(&ctx.serial.to_string()),
            'n' => out.push('\n'),
            'p' => out.push_str(ctx.level.name()),
            'P' => out.push_str(&ctx.pid.to_string()),
            'r' => out.push_str(&ctx.uptime_ms.to_string()),
            't' => out.push_str(ctx.subprogram.unwrap_or("main")),
            'T' => {
                if let Some(s) = ctx.subprogram {
                    out.push('(');
                    out.push_str(s);
                    out.push(')');
                }
            }
            other => out.push(other),
        }
        let used = out.len() - start;
        if used < field {
            let padding: String = std::iter::repeat(pad).take(field - used).collect();
            if left {
                out.push_str(&padding);
            } else {
                out.insert_str(start, &padding);
            }
        }
    }
}

/// `{…}` right after an escape: returns the position after it and its contents, or `def`.
/// An unterminated brace takes the rest of the pattern.
fn fetch_braces(pattern: &str, p: usize, def: &str) -> (usize, String) {
    let rest = &pattern[p..];
    if let Some(inner) = rest.strip_prefix('{') {
        match inner.find('}') {
            Some(n) => (p + 1 + n + 1, inner[..n].to_string()),
            None => (pattern.len(), inner.to_string()),
        }
    } else {
        (p, def.to_string())
    }
}

/// `strftime` of `fmt` for `wall_ms` (UTC or local time), then every run of `#` replaced by
/// the milliseconds' digits (`###` → `123`, further `#`s → `0`), like OVS `strftime_msec`.
///
/// Uses the C library's `strftime` so every conversion (and the treatment of unknown ones)
/// is exactly the C daemon's.
pub fn strftime_msec(fmt: &str, wall_ms: i64, utc: bool) -> String {
    if fmt.is_empty() {
        return String::new();
    }
    let secs = wall_ms.div_euclid(1000);
    let msec = wall_ms.rem_euclid(1000);
    // time_t is 64 bits on every Linux target this daemon supports.
    let secs: libc::time_t = secs;
    // SAFETY: `libc::tm` is a plain C struct for which all-zero bytes are a valid value
    // (integers and a nullable pointer).
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers refer to live, properly aligned locals; the *_r variants are
    // thread-safe and only write into `tm`.
    let r = unsafe {
        if utc {
            libc::gmtime_r(&secs, &mut tm)
        } else {
            libc::localtime_r(&secs, &mut tm)
        }
    };
    if r.is_null() {
        return String::new();
    }
    let Ok(cfmt) = CString::new(fmt.replace('\0', "")) else {
        return String::new();
    };
    let mut cap = 128usize;
    let mut bytes = loop {
        let mut buf = vec![0u8; cap];
        // SAFETY: `buf` has `cap` writable bytes, `cfmt` is NUL-terminated and `tm` was
        // filled in by gmtime_r/localtime_r; strftime writes at most `cap` bytes.
        let n = unsafe {
            libc::strftime(
                buf.as_mut_ptr().cast::<libc::c_char>(),
                cap,
                cfmt.as_ptr(),
                &tm,
            )
        };
        if n > 0 {
            buf.truncate(n);
            break buf;
        }
        if cap >= 8192 {
            // Empty result (or absurdly long): nothing to print.
            break Vec::new();
        }
        cap *= 4;
    };
    let digits = format!("{msec:03}");
    let digits = digits.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'#' {
            let mut d = 0;
            while i < bytes.len() && bytes[i] == b'#' {
                bytes[i] = digits.get(d).copied().unwrap_or(b'0');
                d += 1;
                i += 1;
            }
        } else {
            i += 1;
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2026-11-25T14:30:05.123Z
    const T: i64 = 1_795_617_005_123;

    fn ctx() -> MsgCtx<'static> {
        MsgCtx {
            program: "ovn-ic",
            module: "reconnect",
            level: Level::Info,
            message: "tcp:10.0.0.5:6645: connected\n\n",
            serial: 42,
            subprogram: None,
            wall_ms: T,
            uptime_ms: 1234,
            pid: 4242,
            hostname: "host1",
            facility: 0,
        }
    }

    fn f(p: &str, c: &MsgCtx<'_>) -> String {
        let mut s = String::new();
        format(p, c, &mut s);
        s
    }

    #[test]
    fn default_patterns() {
        use super::super::spec::Destination;
        let c = ctx();
        assert_eq!(
            f(Destination::File.default_pattern(), &c),
            "2026-11-25T14:30:05.123Z|00042|reconnect|INFO|tcp:10.0.0.5:6645: connected"
        );
        assert_eq!(
            f(Destination::Console.default_pattern(), &c),
            "2026-11-25T14:30:05Z|00042|reconnect|INFO|tcp:10.0.0.5:6645: connected"
        );
        assert_eq!(
            f(Destination::Syslog.default_pattern(), &c),
            "ovs|00042|reconnect|INFO|tcp:10.0.0.5:6645: connected"
        );
        let m = MsgCtx {
            subprogram: Some("monitor"),
            level: Level::Emer,
            ..ctx()
        };
        assert_eq!(f("%c%T|%p|%t", &m), "reconnect(monitor)|EMER|monitor");
    }

    #[test]
    fn escapes() {
        let c = ctx();
        let table: &[(&str, &str)] = &[
            ("%A", "ovn-ic"),
            ("%B", "133"),
            ("%c", "reconnect"),
            ("%c{ignored}x", "reconnectx"),
            ("%D", "2026-11-25 14:30:05.123"),
            ("%D{%h %e %T ##.#}", "Nov 25 14:30:05 12.1"),
            ("%D{%Y####}", "20261230"),
            ("%D{%Q}", "%Q"),
            ("%D{}", ""),
            ("%D{%H", "14"),
            ("%E", "host1"),
            ("[%m]", "[tcp:10.0.0.5:6645: connected]"),
            ("%N", "42"),
            ("%05N", "00042"),
            ("a%nb", "a\nb"),
            ("%p", "INFO"),
            ("%P", "4242"),
            ("%r", "1234"),
            ("%t", "main"),
            ("[%T]", "[]"),
            ("%%", "%"),
            ("%x", "x"),
            ("100%", "100"),
            ("[%5p]", "[ INFO]"),
            ("[%-6p]", "[INFO  ]"),
            ("[%-06p]", "[INFO00]"),
            ("[%2p]", "[INFO]"),
            ("[%-12c]", "[reconnect   ]"),
            ("[%3N]", "[ 42]"),
            ("é%cü", "éreconnectü"),
            ("%é", "é"),
        ];
        for (p, want) in table {
            assert_eq!(f(p, &c), *want, "pattern {p:?}");
        }
        let local = MsgCtx {
            facility: 19 << 3,
            level: Level::Dbg,
            ..ctx()
        };
        assert_eq!(f("%B", &local), "159");
        let w = MsgCtx {
            level: Level::Warn,
            ..ctx()
        };
        assert_eq!(f("%B", &w), "132");
        // %d is local time: same shape as %D.
        let d = f("%d", &c);
        assert_eq!(d.len(), "2026-11-25 14:30:05.123".len(), "{d}");
        assert!(d.ends_with(".123"));
        // Huge widths are bounded.
        assert_eq!(f("%999999999999999999999p", &c).len(), 4096);
    }
}
