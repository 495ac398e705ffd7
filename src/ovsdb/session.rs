//! One long-lived session to a (possibly clustered) OVSDB database, as the C library's
//! `ovsdb_cs`/`ovsdb_idl` pair behaves (spec ovsdb-protocol.md §7–§10).
//!
//! Split in two halves:
//! * a tokio task ([`run_connection_task`]) that owns the socket: reconnect with backoff over
//!   the (shuffled) remote list, inactivity probes and echo replies, the `_Server` checks
//!   (leader-only, stale index, cluster id), `monitor_cond_since` with fallbacks, locks, and at
//!   most one transaction on the wire. It never touches the replica: it forwards what it
//!   receives as [`Event`]s, in the order the server sent them, and wakes the main loop;
//! * [`Session`], owned by the main loop: it applies the events to its [`Replica`] (single
//!   owner, no locks), tracks connection and lock state, and commits [`Txn`]s with the retry
//!   discipline of `ovsdb_idl_loop` (no new transaction after "try again" until the replica
//!   changed).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::seq::SliceRandom;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, Notify};
use tracing::{debug, info, warn};

use super::jsonrpc::lazy::{to_value, RawMessage};
use super::jsonrpc::{Framer, Message};
use super::reconnect::{Action, Reconnect};
use super::remote::{Remote, RemoteList};
use super::replica::{MonitorSpec, Replica};
use super::schema::DatabaseSchema;
use super::ssl::SslContext;
use super::stream;
use super::txn::{Txn, TxnStatus};
use super::uuid::Uuid;

/// How to reach and what to monitor.
#[derive(Clone)]
pub struct SessionConfig {
    /// Database name, e.g. `OVN_Southbound`.
    pub db: String,
    /// Remote string as given on the command line (comma-separated for clusters).
    pub remote: String,
    /// Tables and columns to monitor (`None` = all columns). Tables or columns the server lacks
    /// are left out with the upstream warning.
    pub monitor: MonitorSpec,
    /// Lock to take on every (re)connect.
    pub lock: Option<String>,
    /// Disconnect from cluster followers (the C default).
    pub leader_only: bool,
    /// Shuffle the remote list once (the C default).
    pub shuffle: bool,
    /// Inactivity probe interval in ms; `None` = 5000 for tcp/ssl, 0 for unix.
    pub probe_interval: Option<u64>,
    pub ssl: Option<Arc<SslContext>>,
    /// Directory relative `unix:` paths are resolved against.
    pub rundir: PathBuf,
    /// Woken whenever an event is queued for the main loop.
    pub wake: Arc<Notify>,
}

impl SessionConfig {
    pub fn new(db: &str, remote: &str, wake: Arc<Notify>) -> SessionConfig {
        SessionConfig {
            db: db.to_string(),
            remote: remote.to_string(),
            monitor: MonitorSpec::new(),
            lock: None,
            leader_only: true,
            shuffle: true,
            probe_interval: None,
            ssl: None,
            rundir: PathBuf::from("/var/run/ovn"),
            wake,
        }
    }

    /// Monitor every column of `tables`.
    pub fn monitor_all(mut self, tables: &[&str]) -> Self {
        for t in tables {
            self.monitor.insert(t.to_string(), None);
        }
        self
    }

    /// Monitor the given columns of `table`.
    pub fn monitor_columns(mut self, table: &str, columns: &[&str]) -> Self {
        self.monitor.insert(
            table.to_string(),
            Some(columns.iter().map(|c| c.to_string()).collect()),
        );
        self
    }
}

/// Monitor flavour in use on the current connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MonitorMethod {
    Since,
    Cond,
    V1,
}

/// Reply to a transaction as it came from the wire.
#[derive(Debug, Clone)]
pub enum RawReply {
    /// The results, undecoded: [`Txn::classify`](super::txn::Txn::classify) reads them.
    Result(Box<RawValue>),
    Error(Value),
    /// Not sent or connection lost before the reply: try again.
    NotSent(String),
}

/// How many decoded database updates may wait for the main loop: the connection stops reading
/// while they do (the rest waits in the socket and the server), so that a burst of large
/// updates (other AZs' cold starts) is not held as several JSON trees at once — that set the
/// daemon's peak RSS. Upstream's IDL likewise decodes and applies one message at a time.
const UPDATE_BACKLOG: usize = 2;

/// A place in the update backlog, freed when the main loop has applied the update.
#[derive(Debug)]
pub struct Backlog(#[allow(dead_code)] Option<tokio::sync::OwnedSemaphorePermit>);

/// What the connection task tells the main loop.
#[derive(Debug)]
pub enum Event {
    Connected {
        remote: String,
    },
    Disconnected,
    /// The schema of the data database for this connection and the columns actually monitored.
    Schema {
        schema: Arc<DatabaseSchema>,
        monitored: BTreeMap<String, Vec<String>>,
    },
    /// The reply to the data monitor: `full` = a complete snapshot replacing the replica.
    MonitorReply {
        method: MonitorMethod,
        full: bool,
        /// Raw text, decoded row by row by the replica.
        updates: Box<RawValue>,
        backlog: Backlog,
    },
    Update {
        method: MonitorMethod,
        updates: Box<RawValue>,
        backlog: Backlog,
    },
    Lock {
        has_lock: bool,
        contended: bool,
    },
    TxnReply {
        id: u64,
        reply: RawReply,
    },
    /// The monitor could not be set up at all (the session parks, as the C client does).
    Error(String),
}

enum Cmd {
    Transact { id: u64, params: Vec<Box<RawValue>> },
    SetLock(Option<String>),
    StealLock(String),
    SetProbeInterval(Option<u64>),
    ForceReconnect,
}

/// Counters of one session (for tests, `memory/show`-style reports and metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionStats {
    /// Streams opened.
    pub connects: u64,
    /// Monitor replies that replaced the whole replica.
    pub full_syncs: u64,
    /// Monitor replies that resumed from the last transaction id (`found = true`).
    pub resumed_syncs: u64,
    /// Update notifications applied.
    pub updates: u64,
    /// Transactions sent / failed (any non-success outcome).
    pub txns_sent: u64,
    pub txns_failed: u64,
}

/// The main loop's handle on one database session.
pub struct Session {
    stats: SessionStats,
    db: String,
    label: String,
    replica: Replica,
    cmd: mpsc::UnboundedSender<Cmd>,
    events: mpsc::UnboundedReceiver<Event>,
    connected: bool,
    remote: Option<String>,
    synced: bool,
    ever_synced: bool,
    resynced: bool,
    has_lock: bool,
    contended: bool,
    lock: Option<String>,
    next_txn: u64,
    in_flight: Option<(u64, Txn)>,
    done: Option<TxnStatus>,
    /// Change counter: replica updates, lock changes, (re)connections.
    change_seqno: u64,
    /// After "try again": the change_seqno at that moment; no commit until it moves.
    blocked_at: Option<u64>,
    error: Option<String>,
}

impl Session {
    /// Start the connection task (needs a tokio runtime). `label` names the session in logs.
    pub fn spawn(label: &str, cfg: SessionConfig) -> Session {
        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
        let (ev_tx, ev_rx) = mpsc::unbounded_channel();
        let db = cfg.db.clone();
        let lock = cfg.lock.clone();
        tokio::spawn(run_connection_task(cfg, cmd_rx, ev_tx));
        Session {
            stats: SessionStats::default(),
            db: db.clone(),
            label: label.to_string(),
            replica: Replica::new(&db),
            cmd: cmd_tx,
            events: ev_rx,
            connected: false,
            remote: None,
            synced: false,
            ever_synced: false,
            resynced: false,
            has_lock: false,
            contended: false,
            lock,
            next_txn: 1,
            in_flight: None,
            done: None,
            change_seqno: 0,
            blocked_at: None,
            error: None,
        }
    }

    pub fn db(&self) -> &str {
        &self.db
    }
    pub fn label(&self) -> &str {
        &self.label
    }
    pub fn replica(&self) -> &Replica {
        &self.replica
    }
    pub fn replica_mut(&mut self) -> &mut Replica {
        &mut self.replica
    }

    /// Apply every queued event. Returns true when anything changed (replica, connection or
    /// lock state, transaction completion).
    pub fn run(&mut self) -> bool {
        let mut any = false;
        while let Ok(ev) = self.events.try_recv() {
            any = true;
            self.handle(ev);
        }
        any
    }

    fn handle(&mut self, ev: Event) {
        match ev {
            Event::Connected { remote } => {
                self.connected = true;
                self.remote = Some(remote);
                self.stats.connects += 1;
                self.change_seqno += 1;
            }
            Event::Disconnected => {
                self.connected = false;
                self.synced = false;
                self.has_lock = false;
                self.contended = false;
                self.change_seqno += 1;
            }
            Event::Schema { schema, monitored } => {
                self.replica.set_schema(schema, &monitored);
            }
            Event::MonitorReply {
                method,
                full,
                updates,
                backlog: _held,
            } => {
                if full {
                    self.stats.full_syncs += 1;
                } else {
                    self.stats.resumed_syncs += 1;
                }
                let r = if full {
                    self.replica
                        .replace_all(&*updates, method == MonitorMethod::V1)
                } else {
                    self.replica.apply_update2(&*updates)
                };
                match r {
                    Ok(()) => {
                        self.synced = true;
                        self.ever_synced = true;
                        self.resynced = true;
                        self.error = None;
                    }
                    Err(e) => self.protocol_error(&e.to_string()),
                }
                self.change_seqno += 1;
            }
            Event::Update {
                method,
                updates,
                backlog: _held,
            } => {
                self.stats.updates += 1;
                let r = match method {
                    MonitorMethod::V1 => self.replica.apply_update1(&*updates),
                    _ => self.replica.apply_update2(&*updates),
                };
                if let Err(e) = r {
                    self.protocol_error(&e.to_string());
                }
                self.change_seqno += 1;
            }
            Event::Lock {
                has_lock,
                contended,
            } => {
                if has_lock != self.has_lock || contended != self.contended {
                    self.change_seqno += 1;
                }
                self.has_lock = has_lock;
                self.contended = contended;
            }
            Event::TxnReply { id, reply } => {
                let Some((cur, txn)) = self.in_flight.take() else {
                    return;
                };
                if cur != id {
                    self.in_flight = Some((cur, txn));
                    return;
                }
                let status = match &reply {
                    RawReply::Result(v) => txn.classify(Ok(v)),
                    RawReply::Error(e) => txn.classify(Err(e)),
                    RawReply::NotSent(why) => TxnStatus::TryAgain(why.clone()),
                };
                self.finish(status);
            }
            Event::Error(e) => {
                warn!(target: "ovsdb_cs", "{}: {}", self.label, e);
                self.error = Some(e);
            }
        }
    }

    fn protocol_error(&mut self, e: &str) {
        warn!(target: "ovsdb_cs", "{}: error applying update: {}; reconnecting", self.label, e);
        self.synced = false;
        let _ = self.cmd.send(Cmd::ForceReconnect);
    }

    fn finish(&mut self, status: TxnStatus) {
        if !status.is_ok() {
            self.stats.txns_failed += 1;
        }
        match &status {
            TxnStatus::TryAgain(_) => self.blocked_at = Some(self.change_seqno),
            TxnStatus::Error(e) => warn!(target: "ovsdb_idl", "transaction error: {}", e),
            TxnStatus::NotLocked => {
                warn!(target: "ovsdb_idl", "transaction error: {{\"error\":\"not owner\"}}")
            }
            _ => {}
        }
        self.done = Some(status);
    }

    /// The stream to some remote is open (not necessarily synced).
    pub fn is_connected(&self) -> bool {
        self.connected
    }
    /// The remote we are connected to.
    pub fn connected_remote(&self) -> Option<&str> {
        self.remote.as_deref().filter(|_| self.connected)
    }
    /// The initial contents have arrived on the current connection.
    pub fn is_synced(&self) -> bool {
        self.synced
    }
    /// The initial contents have arrived at least once: the replica is complete (possibly stale
    /// while reconnecting). Never reconcile before this is true.
    pub fn ever_synced(&self) -> bool {
        self.ever_synced
    }
    /// True once after every (re)sync: the caller forces a recompute.
    pub fn take_resynced(&mut self) -> bool {
        std::mem::take(&mut self.resynced)
    }
    pub fn has_lock(&self) -> bool {
        self.has_lock
    }
    pub fn is_lock_contended(&self) -> bool {
        self.contended
    }
    pub fn lock_name(&self) -> Option<&str> {
        self.lock.as_deref()
    }
    /// The monitor could not be established (parked).
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// Request (Some) or release (None) a lock.
    pub fn set_lock(&mut self, lock: Option<&str>) {
        if self.lock.as_deref() == lock {
            return;
        }
        self.lock = lock.map(str::to_string);
        if self.lock.is_none() {
            self.has_lock = false;
            self.contended = false;
        }
        let _ = self.cmd.send(Cmd::SetLock(self.lock.clone()));
    }

    /// Take `lock` by force (`steal`): the current owner gets `stolen`. On later reconnects the
    /// lock is requested normally.
    pub fn steal_lock(&mut self, lock: &str) {
        self.lock = Some(lock.to_string());
        let _ = self.cmd.send(Cmd::StealLock(lock.to_string()));
    }

    /// Change the inactivity probe (ms; None = default for the remote type).
    pub fn set_probe_interval(&mut self, ms: Option<u64>) {
        let _ = self.cmd.send(Cmd::SetProbeInterval(ms));
    }

    /// Drop the connection and reconnect (e.g. after an inconsistency).
    pub fn force_reconnect(&mut self) {
        let _ = self.cmd.send(Cmd::ForceReconnect);
    }

    /// Whether a new transaction may be opened now: none in flight, and not waiting for a
    /// change after a "try again".
    pub fn can_commit(&self) -> bool {
        self.in_flight.is_none() && self.blocked_at != Some(self.change_seqno)
    }

    /// A transaction is awaiting its reply.
    pub fn commit_in_flight(&self) -> bool {
        self.in_flight.is_some()
    }

    /// Send `txn`. An empty transaction completes at once as `Unchanged`; without a synced
    /// connection, or with a configured lock not held, it completes at once as `TryAgain`
    /// (nothing is sent). Otherwise the result arrives later via [`Session::take_result`].
    pub fn commit(&mut self, mut txn: Txn) {
        debug_assert!(
            self.in_flight.is_none(),
            "one transaction in flight per session"
        );
        if txn.is_empty() {
            self.done = Some(TxnStatus::Unchanged);
            return;
        }
        if !self.synced {
            self.finish(TxnStatus::TryAgain("not connected".into()));
            return;
        }
        if self.lock.is_some() && !self.has_lock {
            self.finish(TxnStatus::TryAgain("lock not held".into()));
            return;
        }
        txn.add_comment("ovn-ic");
        let id = self.next_txn;
        self.next_txn += 1;
        let params = txn.take_params(self.lock.as_deref());
        let _ = self.cmd.send(Cmd::Transact { id, params });
        self.in_flight = Some((id, txn));
        self.stats.txns_sent += 1;
    }

    pub fn stats(&self) -> SessionStats {
        self.stats
    }

    /// The status of the last completed commit, once.
    pub fn take_result(&mut self) -> Option<TxnStatus> {
        self.done.take()
    }

    /// Wait until the transaction in flight completes (for tools and tests; the daemon uses the
    /// shared wake-up instead). Returns its status.
    pub async fn wait_result(&mut self, wake: &Notify) -> TxnStatus {
        loop {
            self.run();
            if let Some(s) = self.take_result() {
                return s;
            }
            wake.notified().await;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The connection task.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for `get_schema _Server`.
    ServerSchema,
    /// Waiting for the `_Server` monitor reply.
    ServerMonitor,
    /// Pre-2.9 server: waiting for `get_schema DB`.
    DataSchema,
    /// Waiting for the data monitor reply.
    DataMonitor(MonitorMethod),
    Monitoring(MonitorMethod),
    /// Nothing works on this server; keep the session, do nothing.
    Parked,
}

#[derive(Debug)]
enum Pending {
    ServerSchema,
    ServerMonitor,
    DataSchema,
    DataMonitor(MonitorMethod),
    Lock,
    Unlock,
    ChangeAware,
    Transact(u64),
}

/// State that survives reconnections.
struct Persistent {
    cfg: SessionConfig,
    last_txn_id: Uuid,
    min_index: i64,
    lock: Option<String>,
    probe: Option<u64>,
    events: mpsc::UnboundedSender<Event>,
    backlog: Arc<tokio::sync::Semaphore>,
}

impl Persistent {
    fn emit(&self, ev: Event) {
        let _ = self.events.send(ev);
        self.cfg.wake.notify_one();
    }

    /// A place in the update backlog (none when it is full: the message was already read;
    /// the reader waits before reading more, see [`UPDATE_BACKLOG`]).
    fn backlog(&self) -> Backlog {
        Backlog(self.backlog.clone().try_acquire_owned().ok())
    }
}

/// Why a connection ended.
enum End {
    Closed(String),
    PeerClosed,
    /// No answer to the inactivity probe (logged by the state machine).
    Probe,
    /// Move on to another server without backoff (leader lost, stale data...).
    Reject(String),
    /// The main loop's handle is gone: stop the task.
    Shutdown,
}

/// Drive one session forever (until the [`Session`] is dropped).
async fn run_connection_task(
    cfg: SessionConfig,
    mut cmds: mpsc::UnboundedReceiver<Cmd>,
    events: mpsc::UnboundedSender<Event>,
) {
    let list = match RemoteList::parse(&cfg.remote, &cfg.rundir) {
        Ok(l) if !l.remotes.is_empty() => l,
        Ok(_) => {
            let _ = events.send(Event::Error(format!("{}: no remotes", cfg.remote)));
            cfg.wake.notify_one();
            return;
        }
        Err(e) => {
            let _ = events.send(Event::Error(format!("{}: {}", cfg.remote, e)));
            cfg.wake.notify_one();
            // Keep answering commands so transactions fail cleanly.
            while let Some(c) = cmds.recv().await {
                if let Cmd::Transact { id, .. } = c {
                    let _ = events.send(Event::TxnReply {
                        id,
                        reply: RawReply::NotSent("bad remote".into()),
                    });
                    cfg.wake.notify_one();
                }
            }
            return;
        }
    };
    let mut remotes = list.remotes.clone();
    if cfg.shuffle {
        remotes.shuffle(&mut rand::thread_rng());
    }
    let n = remotes.len();
    let mut p = Persistent {
        lock: cfg.lock.clone(),
        probe: cfg.probe_interval,
        cfg,
        last_txn_id: Uuid::ZERO,
        min_index: 0,
        events,
        backlog: Arc::new(tokio::sync::Semaphore::new(UPDATE_BACKLOG)),
    };
    let mut idx = 0usize;
    let mut fsm = Reconnect::new(&remotes[0].0, Instant::now());
    fsm.set_backoff_free_tries(n as u32);
    fsm.set_probe_interval(probe_for(&p, &remotes[0].1));
    fsm.enable(Instant::now());
    loop {
        // Wait until the state machine says connect, serving commands meanwhile.
        loop {
            let now = Instant::now();
            if let Some(Action::Connect) = fsm.run(now) {
                break;
            }
            let deadline = fsm.timeout(now).unwrap_or(now + Duration::from_secs(3600));
            tokio::select! {
                _ = tokio::time::sleep_until(deadline.into()) => {}
                c = cmds.recv() => match c {
                    None => return,
                    Some(c) => handle_cmd_offline(&mut p, c),
                }
            }
        }
        let (name, remote) = remotes[idx % n].clone();
        fsm.set_name(&name);
        fsm.set_probe_interval(probe_for(&p, &remote));
        let now = Instant::now();
        fsm.connecting(now);
        let timeout = fsm.connect_timeout();
        let conn = stream::connect(&remote, p.cfg.ssl.as_deref(), timeout).await;
        let stream = match conn {
            Ok(s) => s,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                fsm.disconnected(Instant::now(), None);
                idx += 1;
                continue;
            }
            Err(e) => {
                fsm.connect_failed(Instant::now(), &stream::error_text(&e));
                idx += 1;
                continue;
            }
        };
        fsm.connected(Instant::now());
        p.emit(Event::Connected {
            remote: name.clone(),
        });
        let end = serve_connection(&mut p, &mut fsm, &mut cmds, stream, &name).await;
        p.emit(Event::Disconnected);
        idx += 1;
        match end {
            End::Shutdown => return,
            End::PeerClosed => fsm.peer_closed(Instant::now()),
            End::Probe => fsm.disconnected(Instant::now(), None),
            End::Closed(why) => fsm.disconnected(Instant::now(), Some(&why)),
            End::Reject(why) => {
                info!(target: "ovsdb_cs", "{}", why);
                // Try the other servers without delay (C: reset free tries to N, N+1 if still
                // connected).
                fsm.set_backoff_free_tries(n as u32 + 1);
                fsm.disconnected(Instant::now(), None);
            }
        }
    }
}

fn probe_for(p: &Persistent, remote: &Remote) -> u64 {
    match p.probe {
        Some(ms) => ms,
        None if remote.needs_probes() => 5000,
        None => 0,
    }
}

fn handle_cmd_offline(p: &mut Persistent, c: Cmd) {
    match c {
        Cmd::Transact { id, .. } => p.emit(Event::TxnReply {
            id,
            reply: RawReply::NotSent("not connected".into()),
        }),
        Cmd::SetLock(l) => p.lock = l,
        Cmd::StealLock(l) => p.lock = Some(l),
        Cmd::SetProbeInterval(ms) => p.probe = ms,
        Cmd::ForceReconnect => {}
    }
}

struct Conn<'a> {
    p: &'a mut Persistent,
    out: mpsc::UnboundedSender<Vec<u8>>,
    next_id: i64,
    pending: HashMap<i64, Pending>,
    phase: Phase,
    server_rows: HashMap<String, serde_json::Map<String, Value>>,
    remote: String,
    has_lock: bool,
    contended: bool,
    /// Lock name requested on this connection (lock sent, not unlocked).
    requested_lock: Option<String>,
    schema: Option<Arc<DatabaseSchema>>,
}

impl Conn<'_> {
    fn send(&mut self, msg: Message) {
        let _ = self.out.send(msg.to_bytes());
    }

    /// The id of a new request, whose reply `what` awaits.
    fn next_request(&mut self, what: Pending) -> i64 {
        let id = self.next_id;
        self.next_id += 1;
        self.pending.insert(id, what);
        id
    }

    fn request(&mut self, method: &str, params: Vec<Value>, what: Pending) {
        let id = self.next_request(what);
        self.send(Message::request(method, params, json!(id)));
    }

    /// [`Conn::request`] with params that are JSON text already.
    fn request_raw(&mut self, method: &str, params: &[Box<RawValue>], what: Pending) {
        let id = self.next_request(what);
        let _ = self.out.send(Message::request_bytes(method, params, id));
    }

    fn start(&mut self) {
        self.request("get_schema", vec![json!("_Server")], Pending::ServerSchema);
        if let Some(l) = self.p.lock.clone() {
            self.send_lock(&l);
        }
    }

    fn send_lock(&mut self, l: &str) {
        self.requested_lock = Some(l.to_string());
        self.request("lock", vec![json!(l)], Pending::Lock);
    }

    fn set_lock(&mut self, l: Option<String>) {
        if self.requested_lock == l {
            return;
        }
        if let Some(old) = self.requested_lock.take() {
            self.request("unlock", vec![json!(old)], Pending::Unlock);
            self.has_lock = false;
            self.contended = false;
            self.emit_lock();
        }
        if let Some(new) = &l {
            self.send_lock(new);
        }
        self.p.lock = l;
    }

    fn emit_lock(&self) {
        self.p.emit(Event::Lock {
            has_lock: self.has_lock,
            contended: self.contended,
        });
    }

    fn db(&self) -> String {
        self.p.cfg.db.clone()
    }

    /// Build the monitor requests for the tables/columns the server has.
    fn monitor_requests(
        &self,
        schema: &DatabaseSchema,
        method: MonitorMethod,
    ) -> (Value, BTreeMap<String, Vec<String>>) {
        let mut reqs = serde_json::Map::new();
        let mut monitored = BTreeMap::new();
        for (table, cols) in &self.p.cfg.monitor {
            let Some(ts) = schema.table(table) else {
                warn!(target: "ovsdb_idl", "{} database lacks {} table (database needs upgrade?)", schema.name, table);
                continue;
            };
            let cols: Vec<String> = match cols {
                None => ts.columns.keys().cloned().collect(),
                Some(list) => list
                    .iter()
                    .filter(|c| {
                        let ok = ts.columns.contains_key(*c);
                        if !ok {
                            warn!(target: "ovsdb_idl",
                                "{} table in {} database lacks {} column (database needs upgrade?)",
                                table, schema.name, c);
                        }
                        ok
                    })
                    .cloned()
                    .collect(),
            };
            let req = json!({"columns": cols});
            reqs.insert(
                table.clone(),
                if method == MonitorMethod::V1 {
                    req
                } else {
                    json!([req])
                },
            );
            monitored.insert(table.clone(), cols);
        }
        (Value::Object(reqs), monitored)
    }

    fn send_data_monitor(&mut self, method: MonitorMethod) {
        let Some(schema) = self.schema.clone() else {
            return;
        };
        let (reqs, monitored) = self.monitor_requests(&schema, method);
        self.p.emit(Event::Schema {
            schema: schema.clone(),
            monitored,
        });
        let db = self.db();
        let monid = json!(["monid", db]);
        let (m, params) = match method {
            MonitorMethod::Since => (
                "monitor_cond_since",
                vec![
                    json!(db),
                    monid,
                    reqs,
                    json!(self.p.last_txn_id.to_string()),
                ],
            ),
            MonitorMethod::Cond => ("monitor_cond", vec![json!(db), monid, reqs]),
            MonitorMethod::V1 => ("monitor", vec![json!(db), monid, reqs]),
        };
        self.request(m, params, Pending::DataMonitor(method));
        self.phase = Phase::DataMonitor(method);
    }

    /// Apply a `_Server` Database update and check the row for our database.
    fn server_update(&mut self, updates: &Value) -> Result<(), End> {
        if let Some(rows) = updates.get("Database").and_then(Value::as_object) {
            for (uuid, ru) in rows {
                let Some(ru) = ru.as_object() else { continue };
                for (op, body) in ru {
                    match op.as_str() {
                        "initial" | "insert" => {
                            self.server_rows.insert(
                                uuid.clone(),
                                body.as_object().cloned().unwrap_or_default(),
                            );
                        }
                        "modify" => {
                            let row = self.server_rows.entry(uuid.clone()).or_default();
                            for (k, v) in body.as_object().into_iter().flatten() {
                                row.insert(k.clone(), v.clone());
                            }
                        }
                        "delete" => {
                            self.server_rows.remove(uuid);
                        }
                        _ => {}
                    }
                }
            }
        }
        self.check_server()
    }

    fn check_server(&mut self) -> Result<(), End> {
        let db = self.db();
        let remote = self.remote.clone();
        let want_cid = self.p.cfg_cid();
        let row = self.server_rows.values().find(|r| match &want_cid {
            Some(cid) => {
                r.get("cid").and_then(|c| c.get(1)).and_then(Value::as_str) == Some(cid.as_str())
            }
            None => r.get("name").and_then(Value::as_str) == Some(db.as_str()),
        });
        let Some(row) = row else {
            return Err(End::Reject(format!(
                "{remote}: server does not have {db} database"
            )));
        };
        let s = |k: &str| row.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let b = |k: &str| row.get(k).and_then(Value::as_bool).unwrap_or(false);
        let model = s("model");
        let schema_text = s("schema");
        let reject = |what: &str| {
            Err(End::Reject(format!(
                "{remote}: {what}; trying another server"
            )))
        };
        match model.as_str() {
            "clustered" => {
                if schema_text.is_empty() {
                    return reject("clustered database server has not yet joined cluster");
                }
                if !b("connected") {
                    return reject("clustered database server is disconnected from cluster");
                }
                if self.p.cfg.leader_only && !b("leader") {
                    return reject("clustered database server is not cluster leader");
                }
                let index = row.get("index").and_then(Value::as_i64).unwrap_or(0);
                if index < self.p.min_index {
                    return reject("clustered database server has stale data");
                }
                self.p.min_index = index;
            }
            "relay" => {
                if schema_text.is_empty() || !b("connected") {
                    return reject("relay database server is not connected");
                }
                if self.p.cfg.leader_only {
                    return reject("relay database server cannot be a leader");
                }
            }
            _ => {
                if schema_text.is_empty() {
                    return reject("database server has no schema");
                }
            }
        }
        if self.schema.is_none() {
            let v: Value = serde_json::from_str(&schema_text)
                .map_err(|e| End::Closed(format!("bad schema in _Server: {e}")))?;
            let schema = DatabaseSchema::from_json(&v)
                .map_err(|e| End::Closed(format!("bad schema in _Server: {e}")))?;
            self.schema = Some(Arc::new(schema));
        }
        Ok(())
    }

    fn handle_reply(&mut self, id: &Value, reply: Result<Box<RawValue>, Value>) -> Result<(), End> {
        let Some(id) = id.as_i64() else { return Ok(()) };
        let Some(what) = self.pending.remove(&id) else {
            debug!(target: "jsonrpc", "{}: unexpected reply id {}", self.remote, id);
            return Ok(());
        };
        if let Pending::DataMonitor(method) = what {
            self.data_monitor_reply(method, reply);
            return Ok(());
        }
        if let Pending::Transact(tid) = what {
            let reply = match reply {
                Ok(v) => RawReply::Result(v),
                Err(e) => RawReply::Error(e),
            };
            self.p.emit(Event::TxnReply { id: tid, reply });
            return Ok(());
        }
        // Everything else but the database's contents is small: decoded whole.
        let reply = reply.map(|r| to_value(&r));
        match what {
            Pending::ServerSchema => match reply {
                Ok(_) => {
                    let params = vec![
                        json!("_Server"),
                        json!(["monid", "_Server"]),
                        json!({"Database": [{"columns": ["name", "model", "connected", "leader", "schema", "cid", "index"]}]}),
                    ];
                    self.request("monitor_cond", params, Pending::ServerMonitor);
                    self.phase = Phase::ServerMonitor;
                }
                Err(_) => self.fallback_no_server(),
            },
            Pending::ServerMonitor => match reply {
                Ok(updates) => {
                    self.server_update(&updates)?;
                    self.send_data_monitor(MonitorMethod::Since);
                    self.request(
                        "set_db_change_aware",
                        vec![json!(true)],
                        Pending::ChangeAware,
                    );
                }
                Err(_) => self.fallback_no_server(),
            },
            Pending::DataSchema => match reply {
                Ok(v) => match DatabaseSchema::from_json(&v) {
                    Ok(s) => {
                        self.schema = Some(Arc::new(s));
                        self.send_data_monitor(MonitorMethod::Cond);
                    }
                    Err(e) => return Err(End::Closed(format!("bad schema: {e}"))),
                },
                Err(e) => {
                    self.phase = Phase::Parked;
                    self.p.emit(Event::Error(format!("get_schema failed: {e}")));
                }
            },
            Pending::Lock => {
                if let Ok(v) = reply {
                    let locked = v.get("locked").and_then(Value::as_bool).unwrap_or(false);
                    if self.requested_lock.is_some() {
                        self.has_lock = locked;
                        self.contended = !locked;
                        self.emit_lock();
                    }
                }
            }
            Pending::Unlock | Pending::ChangeAware => {}
            Pending::DataMonitor(_) | Pending::Transact(_) => {} // handled above, undecoded
        }
        Ok(())
    }

    /// The reply to the data monitor: the database's contents (kept as raw text, see
    /// [`RawMessage`]), or a fallback to an older monitor method.
    fn data_monitor_reply(&mut self, method: MonitorMethod, reply: Result<Box<RawValue>, Value>) {
        match reply {
            Ok(v) => {
                let (full, updates) = if method == MonitorMethod::Since {
                    // `[found, last-txn-id, table-updates2]`; anything else reads as "not found,
                    // empty", as the members of a malformed reply did before.
                    let mut parts: Vec<Box<RawValue>> =
                        serde_json::from_str(v.get()).unwrap_or_default();
                    let found = parts.first().is_some_and(|f| to_value(f) == json!(true));
                    if let Some(u) = parts
                        .get(1)
                        .map(|l| to_value(l))
                        .as_ref()
                        .and_then(Value::as_str)
                        .and_then(|s| s.parse().ok())
                    {
                        self.p.last_txn_id = u;
                    }
                    let updates = (parts.len() > 2).then(|| parts.swap_remove(2));
                    (!found, updates.unwrap_or_else(empty_updates))
                } else {
                    (true, v)
                };
                self.phase = Phase::Monitoring(method);
                let backlog = self.p.backlog();
                self.p.emit(Event::MonitorReply {
                    method,
                    full,
                    updates,
                    backlog,
                });
            }
            Err(e) => match method {
                MonitorMethod::Since => self.send_data_monitor(MonitorMethod::Cond),
                MonitorMethod::Cond => self.send_data_monitor(MonitorMethod::V1),
                MonitorMethod::V1 => {
                    self.phase = Phase::Parked;
                    self.p.emit(Event::Error(format!("monitor failed: {e}")));
                }
            },
        }
    }

    /// Pre-2.9 server without `_Server`: plain get_schema, then monitor_cond.
    fn fallback_no_server(&mut self) {
        let db = self.db();
        self.request("get_schema", vec![json!(db)], Pending::DataSchema);
        self.phase = Phase::DataSchema;
    }

    fn handle_notify(&mut self, method: &str, mut params: Vec<Box<RawValue>>) -> Result<(), End> {
        let param = |i: usize| params.get(i).map(|p| to_value(p)).unwrap_or(Value::Null);
        match method {
            "update" | "update2" | "update3" => {
                if param(0) == json!(["monid", "_Server"]) {
                    if params.len() > 1 {
                        self.server_update(&param(1))?;
                    }
                    return Ok(());
                }
                let Phase::Monitoring(m) = self.phase else {
                    return Ok(());
                };
                let at = if method == "update3" {
                    if let Some(u) = param(1).as_str().and_then(|s| s.parse().ok()) {
                        self.p.last_txn_id = u;
                    }
                    2
                } else {
                    1
                };
                // Moved, not copied, and not decoded here (thousands of rows, see RawMessage).
                if params.len() > at {
                    let updates = params.swap_remove(at);
                    let backlog = self.p.backlog();
                    self.p.emit(Event::Update {
                        method: m,
                        updates,
                        backlog,
                    });
                }
            }
            "locked" if param(0).as_str() == self.requested_lock.as_deref() => {
                self.has_lock = true;
                self.contended = false;
                self.emit_lock();
            }
            "stolen" if param(0).as_str() == self.requested_lock.as_deref() => {
                self.has_lock = false;
                self.contended = true;
                self.emit_lock();
            }
            "monitor_canceled" => {
                return Err(End::Closed("monitor canceled".into()));
            }
            _ => {}
        }
        Ok(())
    }

    fn handle_cmd(&mut self, c: Cmd) -> Result<(), End> {
        match c {
            Cmd::Transact { id, params } => {
                let monitoring = matches!(self.phase, Phase::Monitoring(_));
                let lock_ok = self.p.lock.is_none() || self.has_lock;
                if !monitoring || !lock_ok {
                    let why = if monitoring {
                        "lock not held"
                    } else {
                        "not monitoring"
                    };
                    self.p.emit(Event::TxnReply {
                        id,
                        reply: RawReply::NotSent(why.into()),
                    });
                } else {
                    self.request_raw("transact", &params, Pending::Transact(id));
                }
            }
            Cmd::SetLock(l) => self.set_lock(l),
            Cmd::StealLock(l) => {
                if let Some(old) = self.requested_lock.take() {
                    self.request("unlock", vec![json!(old)], Pending::Unlock);
                }
                self.requested_lock = Some(l.clone());
                self.request("steal", vec![json!(l)], Pending::Lock);
                self.p.lock = Some(l);
            }
            Cmd::SetProbeInterval(ms) => self.p.probe = ms,
            Cmd::ForceReconnect => return Err(End::Closed("forced reconnect".into())),
        }
        Ok(())
    }

    /// Fail every transaction still awaiting a reply (delivery is at-least-once).
    fn fail_pending(&mut self) {
        for (_, what) in self.pending.drain() {
            if let Pending::Transact(id) = what {
                self.p.emit(Event::TxnReply {
                    id,
                    reply: RawReply::NotSent("connection lost".into()),
                });
            }
        }
    }
}

impl Persistent {
    fn cfg_cid(&self) -> Option<String> {
        RemoteList::parse(&self.cfg.remote, &self.cfg.rundir)
            .ok()?
            .cid
            .map(|c| c.to_string())
    }
}

async fn serve_connection(
    p: &mut Persistent,
    fsm: &mut Reconnect,
    cmds: &mut mpsc::UnboundedReceiver<Cmd>,
    stream: stream::BoxedStream,
    remote: &str,
) -> End {
    let (mut rd, mut wr) = tokio::io::split(stream);
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<Vec<u8>>();
    // The writer runs apart so that a peer that stops reading never blocks our probes.
    let writer = tokio::spawn(async move {
        while let Some(buf) = out_rx.recv().await {
            if wr.write_all(&buf).await.is_err() {
                break;
            }
        }
        let _ = wr.shutdown().await;
    });
    let mut conn = Conn {
        p,
        out: out_tx,
        next_id: 0,
        pending: HashMap::new(),
        phase: Phase::ServerSchema,
        server_rows: HashMap::new(),
        remote: remote.to_string(),
        has_lock: false,
        contended: false,
        requested_lock: None,
        schema: None,
    };
    conn.start();
    let mut framer = Framer::new();
    let mut buf = vec![0u8; 64 * 1024];
    let backlog = conn.p.backlog.clone();
    let end = loop {
        let now = Instant::now();
        match fsm.run(now) {
            Some(Action::Probe) => conn.send(Message::request("echo", vec![], json!("echo"))),
            Some(Action::Disconnect) => break End::Probe,
            _ => {}
        }
        let deadline = fsm.timeout(now).unwrap_or(now + Duration::from_secs(3600));
        let room = backlog.available_permits() > 0;
        tokio::select! {
            // The main loop frees a place in the backlog: read again.
            _ = backlog.acquire(), if !room => {}
            r = rd.read(&mut buf), if room => {
                let n = match r {
                    Ok(0) => break End::PeerClosed,
                    Ok(n) => n,
                    Err(e) => break End::Closed(stream::error_text(&e)),
                };
                fsm.activity(Instant::now());
                framer.push(&buf[..n]);
                let mut res = Ok(());
                loop {
                    // Decoded from the read buffer: the members are the only copy.
                    let msg = match framer.next_text() {
                        Ok(Some(text)) => RawMessage::decode(text),
                        Ok(None) => break,
                        Err(e) => Err(e),
                    };
                    let msg = match msg {
                        Ok(m) => m,
                        Err(e) => {
                            warn!(target: "jsonrpc", "{}: {}", remote, e);
                            res = Err(End::Closed(e.to_string()));
                            break;
                        }
                    };
                    res = match msg {
                        RawMessage::Request { method, params, id } if method == "echo" => {
                            let params = params.iter().map(|p| to_value(p)).collect();
                            conn.send(Message::Reply { result: Value::Array(params), id });
                            Ok(())
                        }
                        RawMessage::Request { method, id, .. } => {
                            conn.send(Message::Error { error: json!("unknown method"), id });
                            debug!(target: "jsonrpc", "{}: unexpected request {}", remote, method);
                            Ok(())
                        }
                        RawMessage::Notify { method, params } => conn.handle_notify(&method, params),
                        RawMessage::Reply { id, .. } if id == json!("echo") => Ok(()),
                        RawMessage::Error { id, .. } if id == json!("echo") => Ok(()),
                        RawMessage::Reply { result, id } => conn.handle_reply(&id, Ok(result)),
                        RawMessage::Error { error, id } => {
                            conn.handle_reply(&id, Err(to_value(&error)))
                        }
                    };
                    if res.is_err() {
                        break;
                    }
                }
                if let Err(e) = res {
                    break e;
                }
            }
            c = cmds.recv() => match c {
                None => break End::Shutdown,
                Some(c) => {
                    if let Err(e) = conn.handle_cmd(c) {
                        break e;
                    }
                }
            },
            _ = tokio::time::sleep_until(deadline.into()) => {}
        }
        // The probe interval may have changed.
        let probe = conn.p.probe;
        fsm.set_probe_interval(match probe {
            Some(ms) => ms,
            None if remote_needs_probes(remote) => 5000,
            None => 0,
        });
    };
    conn.fail_pending();
    drop(conn);
    writer.abort();
    end
}

/// `{}`: the table-updates of a reply that carried none.
fn empty_updates() -> Box<RawValue> {
    RawValue::from_string("{}".to_string()).expect("valid JSON")
}

fn remote_needs_probes(name: &str) -> bool {
    !name.starts_with("unix:") && !name.starts_with("punix:")
}
