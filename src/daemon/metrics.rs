//! Metrics (issue 9, part 2): the same figures through an opt-in Prometheus endpoint
//! (`--metrics=ADDR:PORT`) and `ovn-appctl -t ovn-ic metrics/show`.
//!
//! The main loop builds a [`Snapshot`] from the driver (engine counters, session and lock state,
//! transaction counters, latency, rows owned); [`render`] turns it into the Prometheus text
//! exposition format 0.0.4. With `--metrics` the loop stores a fresh snapshot after every
//! iteration in an `Arc<Mutex<Snapshot>>` that a small HTTP/1.1 responder ([`spawn_server`])
//! renders on `GET /metrics`; `metrics/show` renders a snapshot taken when the command is
//! served. Scraping never waits for the main loop: the responder only locks the mutex to render.
//!
//! # Metrics
//!
//! | name | type | labels | meaning |
//! |---|---|---|---|
//! | `ovn_ic_build_info` | gauge | `version` | always 1 |
//! | `ovn_ic_paused` | gauge | – | 1 while paused (`ovn-appctl pause`) |
//! | `ovn_ic_db_connected` | gauge | `db` | 1 when the session to the database is connected (as `*-connection-status`; IC-SB = the locked session) |
//! | `ovn_ic_lock_held` | gauge | `db`, `lock` | 1 while the lock is held: `ovn_ic` on `OVN_Southbound` (this instance is active for its AZ), `ovn_ic_sb` on `OVN_IC_Southbound` (ISB leader) |
//! | `ovn_ic_transactions_committed_total` | counter | `db` | transactions that committed (both IC-SB sessions count for `OVN_IC_Southbound`) |
//! | `ovn_ic_transactions_failed_total` | counter | `db` | transactions that did not commit (error, lock not owned, try again, connection lost) |
//! | `ovn_ic_engine_recompute_total` | counter | `node` | full recomputes of the engine node |
//! | `ovn_ic_engine_compute_total` | counter | `node` | runs in which the node's change handlers handled every input change |
//! | `ovn_ic_engine_cancel_total` | counter | `node` | runs canceled at the node |
//! | `ovn_ic_engine_run_seconds_total` | counter | `node` | time spent in the node's handlers and recomputes |
//! | `ovn_ic_engine_last_run_seconds` | gauge | `node` | that time in the last run in which the node did work |
//! | `ovn_ic_change_to_commit_seconds` | histogram | `le` | from applying a monitor update that changed a replica to the commit success of every transaction of the run that processed it |
//! | `ovn_ic_change_to_commit_last_seconds` | gauge | – | the last such latency (no sample before the first) |
//! | `ovn_ic_owned_rows` | gauge | `db`, `table` | rows this AZ's ovn-ic is responsible for (see [`owned_rows`]) |
//!
//! The engine counters restart from zero after `inc-engine/clear-stats` (a counter reset, which
//! Prometheus handles). Runs whose transactions fail do not end a latency measurement: the
//! measurement continues into the retry, so the latency includes it.
//!
//! # HTTP responder
//!
//! `GET /metrics` (or `HEAD`) → `200` with `Content-Type: text/plain; version=0.0.4;
//! charset=utf-8`; any other path → `404`; another method on `/metrics` → `405`; a malformed
//! request → `400`; a request head over [`MAX_REQUEST`] bytes → `431`; no complete head within
//! [`READ_TIMEOUT`] → `408`. Every response closes the connection. At most [`MAX_CONNECTIONS`]
//! connections are served at once; further ones wait in the listen backlog.
//!
//! If the address cannot be bound, the daemon logs an error and keeps running without the
//! endpoint (the interconnection matters more than its metrics); `metrics/show` still works.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tracing::debug;

use crate::ic::tables::{ICNB_DB, ICSB_DB, ICSB_LOCK, NB_DB, SB_DB, SB_LOCK};
use crate::ovsdb::replica::Replica;
use crate::ovsdb::txn::TxnStatus;

/// Upper bounds (seconds) of the latency histogram's buckets (`+Inf` is implied).
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A histogram over [`LATENCY_BUCKETS`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Histogram {
    /// Observations per bucket (not cumulative); the last one is `+Inf`.
    counts: [u64; LATENCY_BUCKETS.len() + 1],
    sum: f64,
    count: u64,
}

impl Histogram {
    pub fn observe(&mut self, d: Duration) {
        let s = d.as_secs_f64();
        let i = LATENCY_BUCKETS
            .iter()
            .position(|&b| s <= b)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.counts[i] += 1;
        self.sum += s;
        self.count += 1;
    }
    pub fn count(&self) -> u64 {
        self.count
    }
    /// Sum of the observations in seconds.
    pub fn sum(&self) -> f64 {
        self.sum
    }
    /// `(upper bound, cumulative count)` per bucket, ending with `+Inf`.
    pub fn cumulative(&self) -> Vec<(f64, u64)> {
        let mut acc = 0;
        LATENCY_BUCKETS
            .iter()
            .copied()
            .chain([f64::INFINITY])
            .zip(self.counts.iter())
            .map(|(b, n)| {
                acc += n;
                (b, acc)
            })
            .collect()
    }
}

/// One database's session figures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbMetrics {
    pub db: String,
    pub connected: bool,
    pub committed: u64,
    pub failed: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockMetrics {
    pub db: String,
    pub lock: String,
    pub held: bool,
}

/// One engine node's counters and timing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeMetrics {
    pub name: String,
    pub recompute: u64,
    pub compute: u64,
    pub cancel: u64,
    pub last_run: Duration,
    pub total_run: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedRows {
    pub db: String,
    pub table: String,
    pub rows: u64,
}

/// Every figure [`render`] prints.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    pub version: String,
    pub paused: bool,
    pub dbs: Vec<DbMetrics>,
    pub locks: Vec<LockMetrics>,
    pub nodes: Vec<NodeMetrics>,
    pub latency: Histogram,
    pub last_latency: Option<Duration>,
    pub owned: Vec<OwnedRows>,
}

/// The shared snapshot the HTTP responder renders.
pub type Shared = Arc<Mutex<Snapshot>>;

// ---- rendering ----

/// A label value escaped for the text format (`\`, `"`, newline).
fn escape(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

/// A sample value: integers without a fraction, `+Inf`/`-Inf`/`NaN` spelled as Prometheus does.
fn float(x: f64) -> String {
    if x.is_nan() {
        "NaN".into()
    } else if x.is_infinite() {
        if x > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{x}")
    }
}

fn bool01(b: bool) -> u8 {
    u8::from(b)
}

/// A per-node family: name, type, help, value.
type NodeFamily = (
    &'static str,
    &'static str,
    &'static str,
    fn(&NodeMetrics) -> String,
);

struct Text(String);

impl Text {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}");
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
    }
    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                let _ = write!(self.0, "{k}=\"{}\"", escape(v));
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {value}");
    }
}

/// The Prometheus text exposition (format 0.0.4) of `s`; every family is present (possibly
/// without samples), each sample line ends in a newline.
pub fn render(s: &Snapshot) -> String {
    let mut t = Text(String::with_capacity(4096));
    t.family("ovn_ic_build_info", "gauge", "ovn-ic version (always 1).");
    t.sample("ovn_ic_build_info", &[("version", &s.version)], 1);

    t.family(
        "ovn_ic_paused",
        "gauge",
        "1 while this instance is paused (ovn-appctl pause), else 0.",
    );
    t.sample("ovn_ic_paused", &[], bool01(s.paused));

    t.family(
        "ovn_ic_db_connected",
        "gauge",
        "1 when the session to the database is connected, else 0.",
    );
    for d in &s.dbs {
        t.sample("ovn_ic_db_connected", &[("db", &d.db)], bool01(d.connected));
    }

    t.family(
        "ovn_ic_lock_held",
        "gauge",
        "1 while the database lock is held, else 0.",
    );
    for l in &s.locks {
        t.sample(
            "ovn_ic_lock_held",
            &[("db", &l.db), ("lock", &l.lock)],
            bool01(l.held),
        );
    }

    t.family(
        "ovn_ic_transactions_committed_total",
        "counter",
        "Transactions committed, per database.",
    );
    for d in &s.dbs {
        t.sample(
            "ovn_ic_transactions_committed_total",
            &[("db", &d.db)],
            d.committed,
        );
    }
    t.family(
        "ovn_ic_transactions_failed_total",
        "counter",
        "Transactions that did not commit, per database.",
    );
    for d in &s.dbs {
        t.sample(
            "ovn_ic_transactions_failed_total",
            &[("db", &d.db)],
            d.failed,
        );
    }

    let node_families: [NodeFamily; 5] = [
        (
            "ovn_ic_engine_recompute_total",
            "counter",
            "Full recomputes of the engine node.",
            |n| n.recompute.to_string(),
        ),
        (
            "ovn_ic_engine_compute_total",
            "counter",
            "Engine runs in which the node's change handlers handled every input change.",
            |n| n.compute.to_string(),
        ),
        (
            "ovn_ic_engine_cancel_total",
            "counter",
            "Engine runs canceled at the node.",
            |n| n.cancel.to_string(),
        ),
        (
            "ovn_ic_engine_run_seconds_total",
            "counter",
            "Time spent in the node's change handlers and recomputes.",
            |n| float(n.total_run.as_secs_f64()),
        ),
        (
            "ovn_ic_engine_last_run_seconds",
            "gauge",
            "Time the node's handlers and recompute took in the last run in which it did work.",
            |n| float(n.last_run.as_secs_f64()),
        ),
    ];
    for (name, kind, help, value) in node_families {
        t.family(name, kind, help);
        for n in &s.nodes {
            t.sample(name, &[("node", &n.name)], value(n));
        }
    }

    let h = "ovn_ic_change_to_commit_seconds";
    t.family(
        h,
        "histogram",
        "From applying a database change to the commit of the transactions that processed it.",
    );
    for (le, n) in s.latency.cumulative() {
        t.sample(&format!("{h}_bucket"), &[("le", &float(le))], n);
    }
    t.sample(&format!("{h}_sum"), &[], float(s.latency.sum()));
    t.sample(&format!("{h}_count"), &[], s.latency.count());
    t.family(
        "ovn_ic_change_to_commit_last_seconds",
        "gauge",
        "The last change-to-commit latency.",
    );
    if let Some(d) = s.last_latency {
        t.sample(
            "ovn_ic_change_to_commit_last_seconds",
            &[],
            float(d.as_secs_f64()),
        );
    }

    t.family(
        "ovn_ic_owned_rows",
        "gauge",
        "Rows this availability zone's ovn-ic is responsible for, per table.",
    );
    for o in &s.owned {
        t.sample(
            "ovn_ic_owned_rows",
            &[("db", &o.db), ("table", &o.table)],
            o.rows,
        );
    }
    t.0
}

// ---- figures kept by the driver ----

/// The driver's five sessions, in the order [`Recorder`] indexes them.
pub const SESSION_DBS: [&str; 5] = [NB_DB, SB_DB, ICNB_DB, ICSB_DB, ICSB_DB];
/// Index of the unlocked IC-SB session in [`SESSION_DBS`].
pub const SESSION_ICSB: usize = 3;
/// Index of the locked IC-SB session in [`SESSION_DBS`].
pub const SESSION_ICSB_LOCKED: usize = 4;

/// Transactions of one run still awaiting their results.
#[derive(Debug, Clone, Copy)]
struct Awaiting {
    /// When the earliest change this run processed was applied.
    since: Instant,
    /// Sessions (bit per [`SESSION_DBS`] index) whose transaction has not completed yet.
    pending: u8,
    failed: bool,
}

/// Change-to-commit latency: a change is applied ([`Recorder::changed`]), a run processes it and
/// commits ([`Recorder::committing`]), and the last of those transactions succeeds
/// ([`Recorder::txn_result`]).
#[derive(Debug, Default)]
struct Latency {
    /// The earliest change applied since the last run that processed changes.
    change_at: Option<Instant>,
    awaiting: Option<Awaiting>,
    hist: Histogram,
    last: Option<Duration>,
}

/// The counters the driver keeps for the metrics, and the rows-owned cache.
#[derive(Debug, Default)]
pub struct Recorder {
    committed: [u64; 5],
    failed: [u64; 5],
    latency: Latency,
    owned_key: Option<[u64; 3]>,
    owned: Vec<OwnedRows>,
}

impl Recorder {
    pub fn new() -> Recorder {
        Recorder::default()
    }

    /// A monitor update changed a replica at `now`.
    pub fn changed(&mut self, now: Instant) {
        self.latency.change_at.get_or_insert(now);
    }

    /// The tracked changes were dropped without processing (standby, paused): nothing of them
    /// will be committed by this instance.
    pub fn discarded(&mut self) {
        self.latency.change_at = None;
    }

    /// A run processed the changes applied so far and sent a non-empty transaction on each
    /// session `i` with `sent[i]`. A run that sends nothing ends the measurement without a
    /// sample (nothing needed writing).
    pub fn committing(&mut self, sent: [bool; 5]) {
        let Some(since) = self.latency.change_at.take() else {
            return;
        };
        let mask = sent
            .iter()
            .enumerate()
            .filter(|(_, &s)| s)
            .fold(0u8, |m, (i, _)| m | (1 << i));
        if mask == 0 {
            return;
        }
        self.latency.awaiting = Some(match self.latency.awaiting {
            // A transaction of an earlier run is still out (the locked IC-SB session): wait for
            // both, measuring from the earlier change.
            Some(a) => Awaiting {
                since: a.since.min(since),
                pending: a.pending | mask,
                failed: a.failed,
            },
            None => Awaiting {
                since,
                pending: mask,
                failed: false,
            },
        });
    }

    /// The transaction of session `i` completed with `status` at `now`.
    pub fn txn_result(&mut self, i: usize, status: &TxnStatus, now: Instant) {
        if i >= SESSION_DBS.len() {
            return;
        }
        match status {
            TxnStatus::Success(_) => self.committed[i] += 1,
            TxnStatus::Unchanged => {}
            _ => self.failed[i] += 1,
        }
        let lat = &mut self.latency;
        let Some(a) = lat.awaiting.as_mut() else {
            return;
        };
        let bit = 1u8 << i;
        if a.pending & bit == 0 {
            return;
        }
        a.pending &= !bit;
        a.failed |= !status.is_ok();
        if a.pending != 0 {
            return;
        }
        let a = *a;
        lat.awaiting = None;
        if a.failed {
            // The retry (a forced recompute) will commit these changes: keep measuring.
            lat.change_at = Some(lat.change_at.map_or(a.since, |c| c.min(a.since)));
        } else {
            let d = now.saturating_duration_since(a.since);
            lat.hist.observe(d);
            lat.last = Some(d);
        }
    }

    /// Fill the transaction counters and connection state of `snap.dbs` (one entry per
    /// database; `connected` in the order NB, SB, IC-NB, IC-SB) and the latency figures.
    pub fn fill(&self, snap: &mut Snapshot, connected: [bool; 4]) {
        let dbs = [NB_DB, SB_DB, ICNB_DB, ICSB_DB];
        snap.dbs = dbs
            .iter()
            .zip(connected)
            .map(|(db, up)| {
                let sum = |v: &[u64; 5]| -> u64 {
                    SESSION_DBS
                        .iter()
                        .zip(v)
                        .filter(|(d, _)| *d == db)
                        .map(|(_, n)| n)
                        .sum()
                };
                DbMetrics {
                    db: db.to_string(),
                    connected: up,
                    committed: sum(&self.committed),
                    failed: sum(&self.failed),
                }
            })
            .collect();
        snap.latency = self.latency.hist.clone();
        snap.last_latency = self.latency.last;
    }

    /// [`owned_rows`], recounted only when one of the replicas changed since the last count.
    pub fn owned(&mut self, nb: &Replica, sb: &Replica, icsb: &Replica) -> Vec<OwnedRows> {
        let key = [nb.seqno(), sb.seqno(), icsb.seqno()];
        if self.owned_key != Some(key) {
            self.owned = owned_rows(nb, sb, icsb);
            self.owned_key = Some(key);
        }
        self.owned.clone()
    }
}

/// The two locks and their databases, for [`LockMetrics`].
pub fn locks(sb_lock: bool, isb_lock: bool) -> Vec<LockMetrics> {
    vec![
        LockMetrics {
            db: SB_DB.into(),
            lock: SB_LOCK.into(),
            held: sb_lock,
        },
        LockMetrics {
            db: ICSB_DB.into(),
            lock: ICSB_LOCK.into(),
            held: isb_lock,
        },
    ]
}

/// Rows this AZ's ovn-ic is responsible for, per table (only tables the replica monitors):
///
/// * `OVN_IC_Southbound`: `Availability_Zone` (its own row: 0 or 1); `Gateway`, `Port_Binding`,
///   `Route`, `Address_Set` with `availability_zone` = the own AZ; `Service_Monitor` with
///   `source_availability_zone` = the own AZ name;
/// * `OVN_Northbound`: transit switch images (`Logical_Switch` with `other_config:interconn-ts`),
///   transit router images (`Logical_Router` with `options:interconn-tr`), ports on transit
///   switch images that ovn-ic manages (`options:interconn-tsp`) or created for other AZs
///   (`type=remote`), `Logical_Router_Port`s with `options:interconn-tr`, learned routes
///   (`Logical_Router_Static_Route` with `external_ids:ic-learned-route`), learned address sets
///   (`Address_Set` with `external_ids:ic-learnt=true`);
/// * `OVN_Southbound`: remote gateways (`Chassis` with `other_config:is-remote=true`), mirrored
///   monitors (`Service_Monitor` with `ic_learned=true`).
///
/// One pass over each of these tables; the AZ is `NB_Global.name`.
pub fn owned_rows(nb: &Replica, sb: &Replica, icsb: &Replica) -> Vec<OwnedRows> {
    let mut out = Vec::new();
    let mut push = |db: &str, table: &str, rows: usize| {
        out.push(OwnedRows {
            db: db.into(),
            table: table.into(),
            rows: rows as u64,
        })
    };
    let az_name = nb
        .iter("NB_Global")
        .next()
        .map(|r| r.str("name"))
        .unwrap_or("");
    let az = (!az_name.is_empty())
        .then(|| icsb.find_by_str("Availability_Zone", "name", az_name))
        .flatten()
        .map(|r| r.uuid());

    if icsb.is_monitored("Availability_Zone") {
        push(ICSB_DB, "Availability_Zone", usize::from(az.is_some()));
    }
    for table in ["Gateway", "Port_Binding", "Route", "Address_Set"] {
        if icsb.is_monitored(table) {
            let n = match az {
                Some(az) => icsb
                    .iter(table)
                    .filter(|r| r.uuid_of("availability_zone") == Some(az))
                    .count(),
                None => 0,
            };
            push(ICSB_DB, table, n);
        }
    }
    if icsb.is_monitored("Service_Monitor") {
        let n = if az_name.is_empty() {
            0
        } else {
            icsb.iter("Service_Monitor")
                .filter(|r| r.str("source_availability_zone") == az_name)
                .count()
        };
        push(ICSB_DB, "Service_Monitor", n);
    }

    let count = |r: &Replica, table: &str, f: &dyn Fn(&crate::ovsdb::replica::Row) -> bool| {
        r.is_monitored(table)
            .then(|| r.iter(table).filter(|row| f(row)).count())
    };
    if let Some(n) = count(nb, "Logical_Switch", &|r| {
        r.smap_get("other_config", "interconn-ts").is_some()
    }) {
        push(NB_DB, "Logical_Switch", n);
    }
    if let Some(n) = count(nb, "Logical_Router", &|r| {
        r.smap_get("options", "interconn-tr").is_some()
    }) {
        push(NB_DB, "Logical_Router", n);
    }
    if nb.is_monitored("Logical_Switch_Port") && nb.is_monitored("Logical_Switch") {
        let n: usize = nb
            .iter("Logical_Switch")
            .filter(|ls| ls.smap_get("other_config", "interconn-ts").is_some())
            .flat_map(|ls| ls.get("ports").uuids())
            .filter_map(|u| nb.get("Logical_Switch_Port", u))
            .filter(|p| {
                p.smap_get("options", "interconn-tsp").is_some() || p.str("type") == "remote"
            })
            .count();
        push(NB_DB, "Logical_Switch_Port", n);
    }
    if let Some(n) = count(nb, "Logical_Router_Port", &|r| {
        r.smap_get("options", "interconn-tr").is_some()
    }) {
        push(NB_DB, "Logical_Router_Port", n);
    }
    if let Some(n) = count(nb, "Logical_Router_Static_Route", &|r| {
        r.smap_get("external_ids", "ic-learned-route").is_some()
    }) {
        push(NB_DB, "Logical_Router_Static_Route", n);
    }
    if let Some(n) = count(nb, "Address_Set", &|r| {
        r.smap_get("external_ids", "ic-learnt") == Some("true")
    }) {
        push(NB_DB, "Address_Set", n);
    }
    if let Some(n) = count(sb, "Chassis", &|r| {
        r.smap_get("other_config", "is-remote") == Some("true")
    }) {
        push(SB_DB, "Chassis", n);
    }
    if sb.has_column("Service_Monitor", "ic_learned") {
        if let Some(n) = count(sb, "Service_Monitor", &|r| {
            r.bool("ic_learned") == Some(true)
        }) {
            push(SB_DB, "Service_Monitor", n);
        }
    }
    out
}

// ---- HTTP responder ----

/// Largest request head accepted (request line and headers).
pub const MAX_REQUEST: usize = 8192;
/// Time a client has to send its request head, and to take the response.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 16;

/// An HTTP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
    /// `HEAD`: send the headers (with the body's length) only.
    pub head_only: bool,
    pub extra_headers: Vec<(&'static str, &'static str)>,
}

/// The metrics media type.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        _ => "Error",
    }
}

fn plain(status: u16) -> Response {
    Response {
        status,
        content_type: "text/plain; charset=utf-8",
        body: format!("{}\n", reason(status)),
        head_only: false,
        extra_headers: Vec::new(),
    }
}

impl Response {
    /// The bytes on the wire (the connection is closed afterwards).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut s = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n",
            self.status,
            reason(self.status),
            self.content_type,
            self.body.len()
        );
        for (k, v) in &self.extra_headers {
            let _ = write!(s, "{k}: {v}\r\n");
        }
        s.push_str("\r\n");
        if !self.head_only {
            s.push_str(&self.body);
        }
        s.into_bytes()
    }
}

/// The response to a request `head` (request line and header lines, without the empty line
/// that ends them); `metrics` renders the body of a successful scrape.
pub fn respond(head: &[u8], metrics: impl FnOnce() -> String) -> Response {
    let Ok(text) = std::str::from_utf8(head) else {
        return plain(400);
    };
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let request_line = lines.next().unwrap_or("");
    let parts: Vec<&str> = request_line.split(' ').collect();
    let [method, target, version] = parts.as_slice() else {
        return plain(400);
    };
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b))
    };
    if !token(method)
        || !version.starts_with("HTTP/1.")
        || !target.starts_with('/')
        || !target.bytes().all(|b| b.is_ascii_graphic())
    {
        return plain(400);
    }
    for l in lines {
        match l.split_once(':') {
            Some((name, _)) if token(name) => {}
            _ => return plain(400),
        }
    }
    let path = target.split_once('?').map_or(*target, |(p, _)| p);
    if path != "/metrics" {
        return plain(404);
    }
    match *method {
        "GET" | "HEAD" => Response {
            status: 200,
            content_type: CONTENT_TYPE,
            body: metrics(),
            head_only: *method == "HEAD",
            extra_headers: Vec::new(),
        },
        _ => Response {
            extra_headers: vec![("Allow", "GET, HEAD")],
            ..plain(405)
        },
    }
}

/// Bind the metrics listener.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Where the request head ends: the index of the empty line's start and the terminator length.
fn head_end(buf: &[u8]) -> Option<(usize, usize)> {
    let crlf = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, 4));
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2));
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

enum Head {
    Complete(Vec<u8>),
    TooLarge,
    /// The client closed (or failed) before sending a whole head.
    Gone {
        partial: bool,
    },
}

async fn read_head(stream: &mut TcpStream) -> Head {
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    loop {
        if let Some((end, _)) = head_end(&buf) {
            buf.truncate(end);
            return Head::Complete(buf);
        }
        if buf.len() > MAX_REQUEST {
            return Head::TooLarge;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => {
                return Head::Gone {
                    partial: !buf.is_empty(),
                }
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

async fn serve_connection(mut stream: TcpStream, shared: Shared) {
    let resp = match tokio::time::timeout(READ_TIMEOUT, read_head(&mut stream)).await {
        Err(_) => plain(408),
        Ok(Head::TooLarge) => plain(431),
        Ok(Head::Gone { partial: false }) => return,
        Ok(Head::Gone { partial: true }) => plain(400),
        Ok(Head::Complete(head)) => respond(&head, || {
            let s = shared.lock().unwrap_or_else(|e| e.into_inner());
            render(&s)
        }),
    };
    let bytes = resp.to_bytes();
    let write = async {
        stream.write_all(&bytes).await?;
        stream.shutdown().await?;
        // Lingering close: read what the client still sends (an oversized head, a body) so
        // closing does not reset the connection before it has read the response.
        let mut sink = [0u8; 1024];
        let mut left = 64 * 1024usize;
        while left > 0 {
            match stream.read(&mut sink).await? {
                0 => break,
                n => left = left.saturating_sub(n),
            }
        }
        Ok::<(), std::io::Error>(())
    };
    if let Err(e) = tokio::time::timeout(READ_TIMEOUT, write)
        .await
        .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))
    {
        debug!(target: "ovn_ic", "metrics: could not send the response ({e})");
    }
}

/// Serve `GET /metrics` from `shared` on `listener` until the runtime stops.
pub fn spawn_server(listener: TcpListener, shared: Shared) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        loop {
            // Beyond MAX_CONNECTIONS, further clients wait in the listen backlog.
            let Ok(permit) = slots.clone().acquire_owned().await else {
                return;
            };
            let stream = match listener.accept().await {
                Ok((s, _)) => s,
                Err(e) => {
                    // E.g. out of file descriptors: do not spin.
                    debug!(target: "ovn_ic", "metrics: accept failed ({e})");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let shared = shared.clone();
            tokio::spawn(async move {
                serve_connection(stream, shared).await;
                drop(permit);
            });
        }
    })
}

#[cfg(test)]
mod tests;
