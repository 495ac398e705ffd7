//! The driver that connects the main loop to the databases (spec ovn-ic-core.md §3.1): five
//! sessions, the locks, the engine run, the sequence-number stage, and the commits.
//!
//! One iteration: drain every session; log reconnections and lock transitions; then, when
//! active (SB lock held, every session synchronised at least once, no transaction in flight on
//! NB/SB/IC-NB/IC-SB), lend the replicas to the engine, run it, turn its output into at most
//! one transaction per session (only real changes), and commit. A failed commit forces a full
//! recompute; "try again" waits for the replica to change (the session enforces it), so a
//! failing transaction never becomes a busy loop.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tracing::{debug, info};

use super::cli::Options;
use super::mainloop::{Db, Driver, IterationCtx, NodeStats};
use super::metrics::{self, NodeMetrics, Recorder, Snapshot};
use crate::ic::graph::{IcGraph, IcInput};
use crate::ic::seqno::{self, SeqnoState};
use crate::ic::tables::{self, ICSB_LOCK, SB_LOCK};
use crate::ic::util::smap_int;
use crate::ic::{Out, Views};
use crate::ovsdb::overlay::Intents;
use crate::ovsdb::replica::{Expect, Replica};
use crate::ovsdb::session::{Session, SessionConfig};
use crate::ovsdb::ssl::SslContext;
use crate::ovsdb::txn::{Txn, TxnStatus};
use crate::ovsdb::Uuid;

/// The five sessions and everything kept across iterations.
pub struct IcDriver {
    nb: Session,
    sb: Session,
    icnb: Session,
    icsb: Session,
    icsb_locked: Session,
    wake: Arc<Notify>,
    graph: IcGraph,
    seqno: SeqnoState,
    had_lock: bool,
    had_isb_lock: bool,
    /// Whether the last engine run was made as the IC-SB leader.
    last_isb_leader: Option<bool>,
    probes: [Option<Option<u64>>; 2],
    /// Back-off after failed commits: the first retry is immediate (as upstream), consecutive
    /// failures wait 250 ms, 500 ms, ... up to 8 s, so a transaction the server keeps rejecting
    /// never turns into a busy loop. Reset by a commit that succeeds.
    backoff: Duration,
    retry_at: Option<Instant>,
    memory: super::memory::MemoryMonitor,
    trimmer: super::memtrim::Trimmer,
    /// Rows written by this iteration's transactions (for the trimmer).
    written: u64,
    /// Transaction counters, change-to-commit latency, rows-owned cache.
    metrics: Recorder,
}

const MAX_BACKOFF: Duration = Duration::from_secs(8);

fn session(
    db: &str,
    remote: &str,
    monitor: crate::ovsdb::replica::MonitorSpec,
    lock: Option<&str>,
    opts: &Options,
    ssl: &Option<Arc<SslContext>>,
    wake: &Arc<Notify>,
) -> Session {
    let mut cfg = SessionConfig::new(db, remote, wake.clone());
    cfg.monitor = monitor;
    cfg.lock = lock.map(str::to_string);
    cfg.ssl = ssl.clone();
    cfg.rundir = opts.rundir.clone();
    Session::spawn(db, cfg)
}

impl IcDriver {
    /// Open the five sessions (needs the tokio runtime).
    pub fn new(opts: &Options) -> IcDriver {
        let wake = Arc::new(Notify::new());
        let s = &opts.ssl;
        let any_ssl = s.private_key.is_some() || s.certificate.is_some() || s.ca_cert.is_some();
        let ssl = any_ssl.then(|| Arc::new(SslContext::new(opts.ssl.clone())));
        let nb = session(
            tables::NB_DB,
            &opts.ovnnb_db,
            tables::nb_monitor(),
            None,
            opts,
            &ssl,
            &wake,
        );
        let sb = session(
            tables::SB_DB,
            &opts.ovnsb_db,
            tables::sb_monitor(),
            Some(SB_LOCK),
            opts,
            &ssl,
            &wake,
        );
        let icnb = session(
            tables::ICNB_DB,
            &opts.ic_nb_db,
            tables::icnb_monitor(),
            None,
            opts,
            &ssl,
            &wake,
        );
        let icsb = session(
            tables::ICSB_DB,
            &opts.ic_sb_db,
            tables::icsb_monitor(),
            None,
            opts,
            &ssl,
            &wake,
        );
        let icsb_locked = session(
            tables::ICSB_DB,
            &opts.ic_sb_db,
            tables::icsb_locked_monitor(),
            None,
            opts,
            &ssl,
            &wake,
        );
        let mut d = IcDriver {
            nb,
            sb,
            icnb,
            icsb,
            icsb_locked,
            wake,
            graph: IcGraph::build().expect("the ovn-ic graph is well formed"),
            seqno: SeqnoState::default(),
            had_lock: false,
            had_isb_lock: false,
            last_isb_leader: None,
            probes: [None, None],
            backoff: Duration::ZERO,
            retry_at: None,
            memory: super::memory::MemoryMonitor::new(Instant::now()),
            trimmer: super::memtrim::Trimmer::new(),
            written: 0,
            metrics: Recorder::new(),
        };
        for s in d.sessions_mut() {
            index_tables(s.replica_mut());
        }
        d
    }

    fn sessions_mut(&mut self) -> [&mut Session; 5] {
        [
            &mut self.nb,
            &mut self.sb,
            &mut self.icnb,
            &mut self.icsb_locked,
            &mut self.icsb,
        ]
    }

    /// `ic_probe_interval` from NB_Global (NB, SB) and IC_NB_Global (IC-NB, IC-SB).
    fn update_probes(&mut self) {
        let read = |r: &Replica, table: &str| -> Option<u64> {
            let row = r.iter(table).next()?;
            let v = smap_int(row.smap_get("options", "ic_probe_interval"), -1);
            (v >= 0).then_some(v as u64)
        };
        let local = read(self.nb.replica(), "NB_Global");
        let global = read(self.icnb.replica(), "IC_NB_Global");
        if self.probes[0] != Some(local) {
            self.probes[0] = Some(local);
            self.nb.set_probe_interval(local);
            self.sb.set_probe_interval(local);
        }
        if self.probes[1] != Some(global) {
            self.probes[1] = Some(global);
            self.icnb.set_probe_interval(global);
            self.icsb.set_probe_interval(global);
            self.icsb_locked.set_probe_interval(global);
        }
    }

    /// Collect finished commits: failures force a recompute (§3.1 step 4.5.3/4).
    fn collect_results(&mut self, ctx: &mut IterationCtx) {
        let isb_held = self.icsb_locked.has_lock();
        let checks: [(&mut Session, &str, bool); 5] = [
            (&mut self.nb, "OVNNB", true),
            (&mut self.sb, "OVNSB", true),
            (&mut self.icnb, "OVNINB", true),
            (&mut self.icsb, "OVNISB Unlocked", true),
            (&mut self.icsb_locked, "OVNISB", isb_held),
        ];
        let mut icsb_ok = false;
        let (mut failed, mut succeeded) = (false, false);
        let now = Instant::now();
        // `checks` is in the session order of `metrics::SESSION_DBS`.
        for (i, (s, name, report)) in checks.into_iter().enumerate() {
            let Some(st) = s.take_result() else { continue };
            self.metrics.txn_result(i, &st, now);
            if i == 3 && st.is_ok() {
                icsb_ok = true;
            }
            if matches!(st, TxnStatus::Success(_)) {
                succeeded = true;
            }
            if !st.is_ok() && report {
                info!(target: "ovn_ic", "{name} commit failed, force recompute next time.");
                ctx.force_recompute = true;
                failed = true;
            }
            if let TxnStatus::TryAgain(why) = &st {
                debug!(target: "ovn_ic", "{name} transaction: try again ({why})");
            }
        }
        if icsb_ok {
            self.seqno.icsb_committed();
        }
        if failed {
            // What we expected to see written may never come: process every change.
            for s in self.sessions_mut() {
                s.replica_mut().forget_expected();
            }
            if self.backoff.is_zero() {
                ctx.immediate_wake = true;
                self.backoff = Duration::from_millis(250);
            } else {
                debug!(target: "ovn_ic", "commit failed again; retrying in {} ms", self.backoff.as_millis());
                self.retry_at = Some(Instant::now() + self.backoff);
                self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
            }
        } else if succeeded {
            self.backoff = Duration::ZERO;
        }
    }

    fn log_reconnects(&mut self, ctx: &mut IterationCtx) {
        let names = [
            (&mut self.nb, "OVN NB IDL"),
            (&mut self.sb, "OVN SB IDL"),
            (&mut self.icnb, "OVN INB IDL"),
            (&mut self.icsb_locked, "OVN ISB IDL"),
            (&mut self.icsb, "OVN ISB IDL Unlocked"),
        ];
        for (s, name) in names {
            if s.take_resynced() {
                info!(target: "ovn_ic", "{name} reconnected, force recompute.");
                ctx.force_recompute = true;
            }
        }
    }

    /// Record the rows our transactions about to be sent will write, per session (`echoes` in
    /// the order nb, sb, icnb, icsb, icsb_locked), so that their echoes cause no work. Both
    /// IC-SB sessions monitor the same database: each sees the writes of both.
    fn expect_echoes(&mut self, echoes: [Echoes; 5]) {
        let [nb, sb, icnb, icsb, locked] = echoes;
        let isb: Vec<_> = icsb.into_iter().chain(locked).collect();
        // Moved, not copied (a cold start's NB list holds every learned route's columns);
        // only the two IC-SB sessions, which watch the same database, need a copy each.
        let plan: [(&mut Session, Echoes); 5] = [
            (&mut self.nb, nb),
            (&mut self.sb, sb),
            (&mut self.icnb, icnb),
            (&mut self.icsb_locked, isb.clone()),
            (&mut self.icsb, isb),
        ];
        for (s, list) in plan {
            for (t, u, e) in list {
                s.replica_mut().expect(&t, u, e);
            }
        }
    }

    /// Hide the echoes of our own committed writes from the tracked changes.
    fn absorb_echoes(&mut self) {
        let mut n = 0;
        for s in self.sessions_mut() {
            n += s.replica_mut().absorb_echoes();
        }
        if n > 0 {
            debug!(target: "ovn_ic", "{n} changes were echoes of our own writes");
        }
    }

    fn clear_changes(&mut self) {
        for s in self.sessions_mut() {
            s.replica_mut().clear_changes();
        }
    }

    fn paused(&mut self, ctx: &mut IterationCtx) {
        if self.icsb_locked.lock_name().is_some()
            && (self.icsb_locked.has_lock() || self.icsb_locked.is_lock_contended())
        {
            info!(target: "ovn_ic", "This ovn-ic instance is now paused. Removing IC-SB lock.");
            self.icsb_locked.set_lock(None);
            self.had_isb_lock = false;
        }
        if self.sb.lock_name().is_some() && (self.sb.has_lock() || self.sb.is_lock_contended()) {
            info!(target: "ovn_ic", "This ovn-ic instance is now paused.");
            self.sb.set_lock(None);
            self.had_lock = false;
        }
        ctx.force_recompute = true;
        self.metrics.discarded();
        self.clear_changes();
    }

    fn locks(&mut self, ctx: &mut IterationCtx) {
        if self.sb.lock_name().is_none() {
            self.sb.set_lock(Some(SB_LOCK));
        }
        let has = self.sb.has_lock();
        if has && !self.had_lock {
            info!(target: "ovn_ic", "ovn-ic lock acquired. This ovn-ic instance is now active.");
            ctx.force_recompute = true;
        } else if !has && self.had_lock {
            info!(target: "ovn_ic", "ovn-ic lock lost. This ovn-ic instance is now on standby.");
        }
        self.had_lock = has;
        // Q1 fix: compete for the IC-SB lock only while active for this AZ.
        if has && self.icsb_locked.lock_name().is_none() {
            info!(target: "ovn_ic", "Acquiring OVN ISB lock.");
            self.icsb_locked.set_lock(Some(ICSB_LOCK));
        } else if !has && self.icsb_locked.lock_name().is_some() {
            self.icsb_locked.set_lock(None);
        }
        let isb = self.icsb_locked.has_lock();
        if isb && !self.had_isb_lock {
            info!(target: "ovn_ic", "OVN ISB lock acquired. This ovn-ic instance is now active.");
            ctx.force_recompute = true;
            ctx.immediate_wake = true;
        } else if !isb && self.had_isb_lock {
            info!(target: "ovn_ic", "OVN ISB lock lost.");
        }
        self.had_isb_lock = isb;
    }

    fn lend(&mut self, isb_leader: bool) -> IcInput {
        IcInput {
            nb: std::mem::take(self.nb.replica_mut()),
            sb: std::mem::take(self.sb.replica_mut()),
            icnb: std::mem::take(self.icnb.replica_mut()),
            icsb: std::mem::take(self.icsb.replica_mut()),
            icsb_locked: std::mem::take(self.icsb_locked.replica_mut()),
            isb_leader,
        }
    }

    fn give_back(&mut self, i: IcInput) {
        *self.nb.replica_mut() = i.nb;
        *self.sb.replica_mut() = i.sb;
        *self.icnb.replica_mut() = i.icnb;
        *self.icsb.replica_mut() = i.icsb;
        *self.icsb_locked.replica_mut() = i.icsb_locked;
    }

    /// The active path: engine, sequence numbers, commits.
    fn active(&mut self, ctx: &mut IterationCtx) {
        let open = self.nb.can_commit()
            && self.sb.can_commit()
            && self.icnb.can_commit()
            && self.icsb.can_commit();
        if !open {
            // Keep the tracked changes for the next run (§3.1 step 4.5.2).
            return;
        }
        // While we hold the IC-SB lock, wait for the locked session's transaction in flight
        // too: a run made as a non-leader in between would do only the per-AZ half of the
        // work for its changes, and the leader half would never be redone.
        if self.icsb_locked.has_lock() && !self.icsb_locked.can_commit() {
            return;
        }
        let isb_leader = self.icsb_locked.has_lock() && self.icsb_locked.is_synced();
        if self.last_isb_leader != Some(isb_leader) {
            // Leader-only work depends on this for every key: recompute on each change.
            self.last_isb_leader = Some(isb_leader);
            ctx.force_recompute = true;
        }
        let input = self.lend(isb_leader);
        self.graph.feed(&input);
        if ctx.force_recompute {
            self.graph.engine.force_recompute();
            ctx.force_recompute = false;
        }
        self.graph.engine.run(&input, true);
        // Take the merged writes and drop every node's own copy before the transactions are
        // built: a cold start writes thousands of rows, and each copy shows in the peak RSS.
        let mut out = self.graph.take_output();
        self.graph.engine.clear_tracked();
        match self.graph.ctx(&input) {
            Some(c) => {
                debug!(target: "ovn_ic", "Availability zone: {}", c.az_name);
                // Upstream comments every IC-SB transaction with the AZ (the az node, which
                // adds it when it runs, does not run for most changes).
                out.icsb.add_comment(&format!("AZ {}", c.az_name));
                let views = Views::new(input.dbs()).with(&out);
                if seqno::supported(&views) {
                    let mut so = Out::default();
                    seqno::run(&views, &c, &mut self.seqno, &mut so);
                    out.merge(&so);
                }
            }
            None => debug!(target: "ovn_ic", "Availability zone: not created yet."),
        }
        let txns = [
            build(&input.nb, &out.nb),
            build(&input.sb, &out.sb),
            build(&input.icnb, &out.icnb),
            build(&input.icsb, &out.icsb),
            build(&input.icsb_locked, &out.icsb_locked),
        ];
        self.written += [&out.nb, &out.sb, &out.icnb, &out.icsb, &out.icsb_locked]
            .iter()
            .map(|i| i.len() as u64)
            .sum::<u64>();
        let expect = |i: Intents, r: &Replica| -> Echoes {
            i.into_expectations(r)
                .into_iter()
                .filter(|(t, _, e)| crate::ic::echo_is_noop(r.db(), t, e))
                .collect()
        };
        let mut echoes = [
            expect(out.nb, &input.nb),
            expect(out.sb, &input.sb),
            expect(out.icnb, &input.icnb),
            expect(out.icsb, &input.icsb),
            expect(out.icsb_locked, &input.icsb_locked),
        ];
        self.give_back(input);
        let [nb, sb, icnb, icsb, locked] = txns;
        let send_locked = isb_leader && !locked.is_empty();
        if !send_locked {
            echoes[4].clear();
        }
        self.expect_echoes(echoes);
        let sent = [
            !nb.is_empty(),
            !sb.is_empty(),
            !icnb.is_empty(),
            !icsb.is_empty(),
            send_locked,
        ];
        self.nb.commit(nb);
        self.sb.commit(sb);
        self.icnb.commit(icnb);
        self.icsb.commit(icsb);
        if isb_leader {
            self.icsb_locked.commit(locked);
        } else if !locked.is_empty() {
            debug!(target: "ovn_ic", "dropping IC-SB leader writes: not the ISB leader this run");
        }
        self.metrics.committing(sent);
        self.clear_changes();
    }
}

/// Rows a transaction of ours writes: (table, row, what it will look like).
type Echoes = Vec<(String, Uuid, Expect)>;

fn build(replica: &Replica, intents: &Intents) -> Txn {
    let mut t = Txn::new(replica.db());
    intents.to_txn(replica, &mut t);
    t
}

/// Secondary indexes the stages look rows up by (spec §2.2).
fn index_tables(r: &mut Replica) {
    let idx: &[(&str, &[&str])] = match r.db() {
        tables::NB_DB => &[
            ("Address_Set", &["name"]),
            ("Logical_Switch", &["name"]),
            ("Logical_Router", &["name"]),
            ("Logical_Switch_Port", &["name"]),
            ("Logical_Router_Port", &["name"]),
        ],
        tables::SB_DB => &[
            ("Port_Binding", &["logical_port"]),
            ("Chassis", &["name"]),
            ("Datapath_Binding", &["nb_uuid"]),
            ("Port_Binding", &["chassis"]),
            ("Address_Set", &["name"]),
            ("Service_Monitor", &["logical_port"]),
            ("Encap", &["ip"]),
        ],
        tables::ICNB_DB => &[("Transit_Switch", &["name"]), ("Transit_Router", &["name"])],
        tables::ICSB_DB => &[
            ("Route", &["transit_switch"]),
            ("Route", &["ip_prefix"]),
            ("Port_Binding", &["transit_switch"]),
            ("Port_Binding", &["logical_port"]),
            ("Availability_Zone", &["name"]),
            ("Gateway", &["name"]),
            ("Address_Set", &["name"]),
            ("Service_Monitor", &["logical_port"]),
            ("Encap", &["ip"]),
        ],
        _ => &[],
    };
    for (t, c) in idx {
        r.add_index(t, c);
    }
}

impl Driver for IcDriver {
    fn run(&mut self, ctx: &mut IterationCtx) {
        self.memory.run(Instant::now());
        let mut changed = false;
        for s in self.sessions_mut() {
            let before = s.replica().seqno();
            s.run();
            changed |= s.replica().seqno() != before;
        }
        if changed {
            self.metrics.changed(Instant::now());
        }
        self.update_probes();
        self.log_reconnects(ctx);
        self.collect_results(ctx);
        self.absorb_echoes();
        if ctx.paused {
            self.paused(ctx);
            return;
        }
        self.locks(ctx);
        let synced = self.nb.ever_synced()
            && self.sb.ever_synced()
            && self.icnb.ever_synced()
            && self.icsb.ever_synced()
            && self.icsb_locked.ever_synced();
        if self.sb.has_lock() && synced {
            self.active(ctx);
        } else {
            // Standby (or not synced yet): recompute everything once active.
            ctx.force_recompute = true;
            self.metrics.discarded();
            self.clear_changes();
        }
        let applied = self
            .sessions_mut()
            .iter()
            .map(|s| s.replica().rows_applied())
            .sum::<u64>();
        if self.trimmer.due(applied, std::mem::take(&mut self.written)) {
            super::memtrim::trim();
        }
    }

    fn wait(&mut self) -> impl Future<Output = ()> {
        let w = self.wake.clone();
        let at = self.retry_at;
        async move {
            match at {
                Some(t) => {
                    tokio::select! {
                        _ = w.notified() => {}
                        _ = tokio::time::sleep_until(t.into()) => {}
                    }
                }
                None => w.notified().await,
            }
        }
    }

    fn is_connected(&self, db: Db) -> bool {
        match db {
            Db::Nb => self.nb.is_connected(),
            Db::Sb => self.sb.is_connected(),
            Db::IcNb => self.icnb.is_connected(),
            Db::IcSb => self.icsb_locked.is_connected(),
        }
    }

    fn has_sb_lock(&self) -> bool {
        self.had_lock
    }

    fn engine_stats(&self) -> Vec<NodeStats> {
        self.graph
            .engine
            .all_stats()
            .map(|(name, s)| NodeStats {
                name: name.to_string(),
                recompute: s.recompute,
                compute: s.compute,
                cancel: s.cancel,
            })
            .collect()
    }

    fn clear_engine_stats(&mut self) {
        self.graph.engine.clear_stats();
    }

    fn metrics(&mut self, snap: &mut Snapshot) {
        let connected = [Db::Nb, Db::Sb, Db::IcNb, Db::IcSb].map(|db| self.is_connected(db));
        self.metrics.fill(snap, connected);
        snap.locks = metrics::locks(self.had_lock, self.icsb_locked.has_lock());
        snap.nodes = self
            .graph
            .engine
            .all_stats()
            .map(|(name, s)| NodeMetrics {
                name: name.to_string(),
                recompute: s.recompute,
                compute: s.compute,
                cancel: s.cancel,
                last_run: s.last_run,
                total_run: s.total_run,
            })
            .collect();
        snap.owned = self
            .metrics
            .owned(self.nb.replica(), self.sb.replica(), self.icsb.replica());
    }
}

/// `--dump-inc-proc-graph[=NODE]`.
pub fn dump_graph(node: Option<&str>) -> String {
    match IcGraph::build() {
        Ok(g) => g.engine.dump_graph(node),
        Err(e) => format!("error building the graph: {e}\n"),
    }
}
