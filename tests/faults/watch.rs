//! A row watcher independent of the code under test: a tiny OVSDB JSON-RPC client (std only)
//! that keeps a `monitor` open on some tables of one database and records every row that
//! disappears, across server restarts (on reconnect the fresh initial snapshot is compared with
//! what was known, so a row deleted and re-created while the watcher was disconnected still
//! counts), and every natural key that shows up again under a new UUID (delete + re-insert).
//!
//! Tests use it to prove "no row was deleted because a database was briefly empty or not yet
//! synced": `Watch::deleted()` must stay empty while faults happen.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Idle time after which the watcher sends an echo; twice that without data and it reconnects.
const PROBE: Duration = Duration::from_millis(1500);

use serde_json::{json, Value};

/// A table to watch and the columns that form its natural key (shown in reports and used to
/// detect a re-insert under a new UUID).
#[derive(Debug, Clone)]
pub struct Table {
    pub name: &'static str,
    pub key: &'static [&'static str],
}

pub const fn table(name: &'static str, key: &'static [&'static str]) -> Table {
    Table { name, key }
}

#[derive(Debug, Default)]
struct Log {
    /// (table, uuid) → natural key of every live row.
    rows: BTreeMap<(String, String), String>,
    /// (table, natural key) → the UUIDs it has had.
    uuids: BTreeMap<(String, String), BTreeSet<String>>,
    deleted: Vec<String>,
    /// Rows missing from a reconnect's snapshot: (table, uuid) → description. A raft follower
    /// may lag behind, so such a row only counts as deleted unless it comes back with the
    /// same UUID (a real delete + re-insert gets a new UUID and is caught as re-inserted).
    vanished: BTreeMap<(String, String), String>,
    reinserted: Vec<String>,
    /// Completed initial snapshots (1 after the first connection, +1 per reconnect).
    snapshots: u32,
}

impl Log {
    fn insert(&mut self, table: &str, uuid: &str, key: String) {
        let seen = self
            .uuids
            .entry((table.to_string(), key.clone()))
            .or_default();
        if !seen.is_empty() && !seen.contains(uuid) {
            self.reinserted
                .push(format!("{table} {key}: new uuid {uuid}, before {seen:?}"));
        }
        seen.insert(uuid.to_string());
        self.vanished.remove(&(table.to_string(), uuid.to_string()));
        self.rows.insert((table.to_string(), uuid.to_string()), key);
    }

    fn delete(&mut self, table: &str, uuid: &str) {
        if let Some(key) = self.rows.remove(&(table.to_string(), uuid.to_string())) {
            self.deleted.push(format!("{table} {key} ({uuid}) deleted"));
        }
    }

    fn vanish(&mut self, table: &str, uuid: &str) {
        let k = (table.to_string(), uuid.to_string());
        if let Some(key) = self.rows.remove(&k) {
            self.vanished
                .insert(k, format!("{table} {key} ({uuid}) gone after reconnect"));
        }
    }
}

/// See the module documentation. Stops (and joins its thread) on drop.
pub struct Watch {
    stop: Arc<AtomicBool>,
    log: Arc<Mutex<Log>>,
    thread: Option<JoinHandle<()>>,
    label: String,
}

impl Watch {
    /// Watches `tables` of database `db`, connecting to the first of `remotes` (`unix:PATH` or
    /// `tcp:IP:PORT`) that answers and moving on to the next one when a connection fails or
    /// closes. Returns once the first snapshot has been read (or after 20 s).
    pub fn start(label: &str, remotes: Vec<String>, db: &str, tables: &[Table]) -> Watch {
        let stop = Arc::new(AtomicBool::new(false));
        let log = Arc::new(Mutex::new(Log::default()));
        let (stop2, log2, db, tables) =
            (stop.clone(), log.clone(), db.to_string(), tables.to_vec());
        let thread = std::thread::Builder::new()
            .name(format!("watch-{label}"))
            .spawn(move || run(&stop2, &log2, &remotes, &db, &tables))
            .expect("spawning a watcher thread");
        let w = Watch {
            stop,
            log,
            thread: Some(thread),
            label: label.to_string(),
        };
        let ok = crate::common::wait_until(Duration::from_secs(20), || w.snapshots() > 0);
        assert!(ok, "watcher {label} never got its first snapshot");
        w
    }

    /// Rows that disappeared ("TABLE KEY (UUID) deleted" or "... gone after reconnect").
    pub fn deleted(&self) -> Vec<String> {
        self.log
            .lock()
            .map(|l| {
                let mut d = l.deleted.clone();
                d.extend(l.vanished.values().cloned());
                d
            })
            .unwrap_or_default()
    }

    /// Natural keys that came back under a new UUID.
    pub fn reinserted(&self) -> Vec<String> {
        self.log
            .lock()
            .map(|l| l.reinserted.clone())
            .unwrap_or_default()
    }

    /// Number of initial snapshots read so far (connections that completed the monitor).
    pub fn snapshots(&self) -> u32 {
        self.log.lock().map(|l| l.snapshots).unwrap_or(0)
    }

    /// Number of live rows of `table` as last seen.
    pub fn count(&self, table: &str) -> usize {
        self.log
            .lock()
            .map(|l| l.rows.keys().filter(|(t, _)| t == table).count())
            .unwrap_or(0)
    }

    /// Panics unless no watched row was deleted or re-inserted under a new UUID.
    pub fn assert_nothing_lost(&self, what: &str) {
        let (d, r) = (self.deleted(), self.reinserted());
        assert!(
            d.is_empty() && r.is_empty(),
            "{what}: watcher {} saw rows disappear: deleted {d:#?}, re-inserted {r:#?}",
            self.label
        );
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

trait Conn: Read + Write + Send {}
impl<T: Read + Write + Send> Conn for T {}

fn connect(remote: &str) -> Option<Box<dyn Conn>> {
    let timeout = Some(Duration::from_millis(200));
    if let Some(path) = remote.strip_prefix("unix:") {
        let s = UnixStream::connect(path).ok()?;
        s.set_read_timeout(timeout).ok()?;
        s.set_write_timeout(Some(Duration::from_secs(5))).ok()?;
        return Some(Box::new(s));
    }
    let addr = remote.strip_prefix("tcp:")?;
    let s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(timeout).ok()?;
    s.set_write_timeout(Some(Duration::from_secs(5))).ok()?;
    Some(Box::new(s))
}

fn run(stop: &AtomicBool, log: &Mutex<Log>, remotes: &[String], db: &str, tables: &[Table]) {
    let mut next = 0usize;
    while !stop.load(Ordering::SeqCst) {
        let remote = &remotes[next % remotes.len()];
        next += 1;
        if let Some(conn) = connect(remote) {
            session(stop, log, conn, db, tables);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Splits complete top-level JSON values off the front of `buf`.
fn frames(buf: &mut Vec<u8>) -> Vec<Value> {
    let mut out = Vec::new();
    loop {
        let (mut depth, mut in_str, mut esc, mut end) = (0i32, false, false, None);
        let mut start = None;
        for (i, &b) in buf.iter().enumerate() {
            if in_str {
                match (esc, b) {
                    (true, _) => esc = false,
                    (false, b'\\') => esc = true,
                    (false, b'"') => in_str = false,
                    _ => {}
                }
                continue;
            }
            match b {
                b'"' => in_str = true,
                b'{' | b'[' => {
                    start.get_or_insert(i);
                    depth += 1;
                }
                b'}' | b']' => {
                    depth -= 1;
                    if depth == 0 {
                        end = Some(i + 1);
                        break;
                    }
                }
                _ => {}
            }
        }
        let (Some(s), Some(e)) = (start, end) else {
            return out;
        };
        if let Ok(v) = serde_json::from_slice(&buf[s..e]) {
            out.push(v);
        }
        buf.drain(..e);
    }
}

fn row_key(t: &Table, row: &Value) -> String {
    t.key
        .iter()
        .map(|c| match row.get(*c) {
            Some(Value::String(s)) => s.clone(),
            Some(v) => v.to_string(),
            None => "-".into(),
        })
        .collect::<Vec<_>>()
        .join("|")
}

/// One connection: monitor request, then updates until the connection fails or `stop`.
fn session(
    stop: &AtomicBool,
    log: &Mutex<Log>,
    mut conn: Box<dyn Conn>,
    db: &str,
    tables: &[Table],
) {
    let mut req = serde_json::Map::new();
    for t in tables {
        req.insert(t.name.to_string(), json!({ "columns": t.key }));
    }
    let msg = json!({"id": "watch", "method": "monitor", "params": [db, null, req]});
    if conn.write_all(msg.to_string().as_bytes()).is_err() {
        return;
    }
    let by_name: BTreeMap<&str, &Table> = tables.iter().map(|t| (t.name, t)).collect();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 65536];
    // Our own inactivity probe, so a hung (SIGSTOPped) server is left for another member.
    let mut last_rx = Instant::now();
    let mut probed = false;
    while !stop.load(Ordering::SeqCst) {
        match conn.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                last_rx = Instant::now();
                probed = false;
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                if last_rx.elapsed() > PROBE * 2 {
                    return;
                }
                if last_rx.elapsed() > PROBE && !probed {
                    let echo = json!({"id": "probe", "method": "echo", "params": []});
                    if conn.write_all(echo.to_string().as_bytes()).is_err() {
                        return;
                    }
                    probed = true;
                }
                continue;
            }
            Err(_) => return,
        }
        for v in frames(&mut buf) {
            if v.get("method").and_then(Value::as_str) == Some("echo") {
                let reply = json!({"id": v["id"], "result": v["params"], "error": null});
                if conn.write_all(reply.to_string().as_bytes()).is_err() {
                    return;
                }
            } else if v.get("id") == Some(&json!("watch")) {
                if !v["error"].is_null() {
                    // E.g. a raft member that is not connected to the cluster yet.
                    return;
                }
                snapshot(log, &by_name, &v["result"]);
            } else if v.get("method").and_then(Value::as_str) == Some("update") {
                apply(log, &by_name, &v["params"][1]);
            }
        }
    }
}

/// The initial reply of a (re)connection: rows known before but absent now are deletions.
fn snapshot(log: &Mutex<Log>, by_name: &BTreeMap<&str, &Table>, updates: &Value) {
    let Ok(mut l) = log.lock() else { return };
    let mut present = BTreeSet::new();
    for (table, rows) in updates.as_object().into_iter().flatten() {
        let Some(t) = by_name.get(table.as_str()) else {
            continue;
        };
        for (uuid, ch) in rows.as_object().into_iter().flatten() {
            present.insert((table.clone(), uuid.clone()));
            let key = row_key(t, &ch["new"]);
            l.insert(table, uuid, key);
        }
    }
    let gone: Vec<(String, String)> = l
        .rows
        .keys()
        .filter(|k| !present.contains(*k))
        .cloned()
        .collect();
    for (t, u) in gone {
        l.vanish(&t, &u);
    }
    l.snapshots += 1;
}

fn apply(log: &Mutex<Log>, by_name: &BTreeMap<&str, &Table>, updates: &Value) {
    let Ok(mut l) = log.lock() else { return };
    for (table, rows) in updates.as_object().into_iter().flatten() {
        let Some(t) = by_name.get(table.as_str()) else {
            continue;
        };
        for (uuid, ch) in rows.as_object().into_iter().flatten() {
            match ch.get("new") {
                Some(new) => {
                    let key = row_key(t, new);
                    l.insert(table, uuid, key);
                }
                None => l.delete(table, uuid),
            }
        }
    }
}
