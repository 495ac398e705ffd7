//! What the multi-AZ benchmark measures outside the databases: CPU time and peak RSS of
//! processes (from `/proc`), the `transact` requests an `ovsdb-server` logged with
//! `-vjsonrpc:file:dbg`, and percentiles.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use serde_json::Value;

/// Clock ticks per second of `/proc/PID/stat` times.
pub fn clock_ticks_per_sec() -> f64 {
    // SAFETY: sysconf(3) takes an integer name and has no memory-safety preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// `utime + stime` of a process (all its threads), in clock ticks, from `/proc/PID/stat`.
pub fn cpu_ticks(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/stat");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    parse_stat_cpu(&text).ok_or_else(|| anyhow!("{path}: unexpected format: {text}"))
}

/// `utime + stime` from the text of `/proc/PID/stat`. The command name (field 2) is in
/// parentheses and may itself contain spaces and parentheses, so fields are counted from the
/// last `)`: field 3 (state) is the first after it, utime is field 14, stime field 15.
pub fn parse_stat_cpu(text: &str) -> Option<u64> {
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = f.get(14 - 3)?.parse().ok()?;
    let stime: u64 = f.get(15 - 3)?.parse().ok()?;
    Some(utime + stime)
}

/// The sum of [`cpu_ticks`] over `pids`, in seconds.
pub fn cpu_seconds(pids: &[u32]) -> Result<f64> {
    let mut ticks = 0;
    for &p in pids {
        ticks += cpu_ticks(p)?;
    }
    Ok(ticks as f64 / clock_ticks_per_sec())
}

/// CPU time of a process in nanoseconds, exact: the scheduler's run time (first field of
/// `/proc/PID/task/TID/schedstat`) summed over its live threads. `/proc/PID/stat` counts whole
/// clock ticks (10 ms) charged to whoever runs at the tick, too coarse for a daemon that spends
/// about a millisecond per change. Both daemons do their work on one thread, so threads that
/// have exited lose nothing. `None` where the kernel has no schedstat.
pub fn cpu_ns(pid: u32) -> Option<u64> {
    let mut total = 0;
    for t in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let path = t.ok()?.path().join("schedstat");
        let text = std::fs::read_to_string(path).ok()?;
        total += parse_schedstat(&text)?;
    }
    Some(total)
}

/// The run time (ns) from the text of a `schedstat` file: `run wait timeslices`.
pub fn parse_schedstat(text: &str) -> Option<u64> {
    text.split_whitespace().next()?.parse().ok()
}

/// CPU seconds of `pids` as exactly as the kernel tells: [`cpu_ns`] where every process has
/// it, else [`cpu_seconds`].
pub fn cpu_seconds_exact(pids: &[u32]) -> Result<f64> {
    let ns: Option<u64> = pids.iter().map(|&p| cpu_ns(p)).sum();
    match ns {
        Some(ns) => Ok(ns as f64 / 1e9),
        None => cpu_seconds(pids),
    }
}

/// Peak resident set size (`VmHWM`) of a process, in kB.
pub fn peak_rss_kb(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    text.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| anyhow!("{path}: no VmHWM line"))
}

/// The `p`-th percentile (0..=100) by nearest rank; `None` for no samples.
pub fn percentile(samples: &[Duration], p: f64) -> Option<Duration> {
    if samples.is_empty() {
        return None;
    }
    let mut v = samples.to_vec();
    v.sort();
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    Some(v[rank.clamp(1, v.len()) - 1])
}

/// The `transact` traffic an `ovsdb-server` logged (`-vjsonrpc:file:dbg`) in some window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TxnStats {
    /// `transact` requests received.
    pub txns: u64,
    /// Total length of their `params` as the server logged them (compact JSON, re-serialised by
    /// the server, so both clients are measured the same way).
    pub bytes: u64,
    /// Requests that changed nothing: only `wait`/`comment`/`assert`/`select` operations, or a
    /// reply without an inserted row and with `count: 0` for every update, mutate and delete.
    pub no_effect: u64,
    /// Requests answered with an error (a JSON-RPC error or an operation error).
    pub failed: u64,
    /// Requests whose reply is not in the window.
    pub unanswered: u64,
}

/// A logged message of interest: `(connection, id) → request params`, or a reply.
enum Msg<'a> {
    Transact {
        conn: &'a str,
        id: &'a str,
        params: &'a str,
    },
    Reply {
        conn: &'a str,
        id: &'a str,
        result: Option<&'a str>,
    },
}

/// Parses one log line written by OVS's `jsonrpc_log_msg`:
/// `TIME|SEQ|jsonrpc|DBG|CONN: received request, method="transact", params=JSON, id=JSON`,
/// `…|CONN: send reply, result=JSON, id=JSON`, `…|CONN: send error, error=JSON, id=JSON`.
fn parse_line(line: &str) -> Option<Msg<'_>> {
    let (_, msg) = line.split_once("|jsonrpc|DBG|")?;
    let (conn, rest) = msg.split_once(": ")?;
    let (body, id) = rest.rsplit_once(", id=")?;
    if let Some(params) = body.strip_prefix("received request, method=\"transact\", params=") {
        return Some(Msg::Transact { conn, id, params });
    }
    if let Some(result) = body.strip_prefix("send reply, result=") {
        return Some(Msg::Reply {
            conn,
            id,
            result: Some(result),
        });
    }
    if body.starts_with("send error, ") {
        return Some(Msg::Reply {
            conn,
            id,
            result: None,
        });
    }
    None
}

/// Whether a `transact` request can change anything at all (has a write operation).
fn has_write_op(params: &Value) -> bool {
    params.as_array().is_some_and(|ops| {
        ops.iter().skip(1).any(|op| {
            matches!(
                op.get("op").and_then(Value::as_str),
                Some("insert" | "update" | "mutate" | "delete")
            )
        })
    })
}

/// Whether a reply shows an effect: an inserted row or a positive count.
fn reply_has_effect(result: &Value) -> bool {
    result.as_array().is_some_and(|rs| {
        rs.iter().any(|r| {
            r.get("uuid").is_some() || r.get("count").and_then(Value::as_u64).unwrap_or(0) > 0
        })
    })
}

fn reply_has_error(result: &Value) -> bool {
    match result.as_array() {
        Some(rs) => rs.iter().any(|r| r.get("error").is_some()),
        None => true,
    }
}

/// Counts the `transact` requests in a jsonrpc debug log text.
pub fn transact_stats(log: &str) -> TxnStats {
    let mut st = TxnStats::default();
    // (conn, id) → whether the request has a write op.
    let mut pending: HashMap<(String, String), bool> = HashMap::new();
    for line in log.lines() {
        match parse_line(line) {
            Some(Msg::Transact { conn, id, params }) => {
                st.txns += 1;
                st.bytes += params.len() as u64;
                let writes = serde_json::from_str::<Value>(params)
                    .map(|p| has_write_op(&p))
                    .unwrap_or(true);
                pending.insert((conn.to_string(), id.to_string()), writes);
            }
            Some(Msg::Reply { conn, id, result }) => {
                let Some(writes) = pending.remove(&(conn.to_string(), id.to_string())) else {
                    continue; // the reply to something else (echo, monitor, …)
                };
                let result = result.and_then(|r| serde_json::from_str::<Value>(r).ok());
                match result {
                    None => st.failed += 1,
                    Some(r) if reply_has_error(&r) => st.failed += 1,
                    Some(r) if !writes || !reply_has_effect(&r) => st.no_effect += 1,
                    Some(_) => {}
                }
            }
            None => {}
        }
    }
    st.unanswered = pending.len() as u64;
    st
}

/// The current length of a file (0 if it does not exist).
pub fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// The complete lines of `path` between byte offsets `from` and `to` (a line cut at `to` is
/// left out; `from` is expected at a line start, as returned by [`file_len`] at a quiet
/// moment).
pub fn read_window(path: &Path, from: u64, to: u64) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let to = (to as usize).min(bytes.len());
    let from = (from as usize).min(to);
    let slice = &bytes[from..to];
    let end = slice.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    Ok(String::from_utf8_lossy(&slice[..end]).into_owned())
}
