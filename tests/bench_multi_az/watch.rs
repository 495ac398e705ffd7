//! The benchmark's own view of every AZ's NB, through this crate's OVSDB client: one session
//! per NB monitoring `Logical_Router` and `Logical_Router_Static_Route`. It counts the learned
//! routes (rows with `external_ids:ic-learned-route`) per AZ and per prefix from the replica's
//! change tracking, so a wait costs O(changes), and it is also how the benchmark writes the
//! static routes and the measured changes (no `ovn-nbctl` process in the timed path).
//!
//! Sessions need a tokio runtime context: create a [`Watch`] inside `Runtime::enter` (or
//! `block_on`) and drive its async methods with `block_on`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use ovn_ic::ovsdb::datum::{Atom, Datum};
use ovn_ic::ovsdb::session::{Session, SessionConfig};
use ovn_ic::ovsdb::txn::{RowRef, Txn, TxnStatus};
use tokio::sync::Notify;

pub const NB_DB: &str = "OVN_Northbound";
pub const LRSR: &str = "Logical_Router_Static_Route";
const LR: &str = "Logical_Router";
const LEARNED_KEY: &str = "ic-learned-route";

/// Learned routes of one AZ.
#[derive(Debug, Default)]
struct Learned {
    total: usize,
    by_prefix: HashMap<String, usize>,
}

impl Learned {
    fn adjust(&mut self, prefix: &str, up: bool) {
        let n = self.by_prefix.entry(prefix.to_string()).or_default();
        if up {
            *n += 1;
            self.total += 1;
        } else {
            *n = n.saturating_sub(1);
            self.total = self.total.saturating_sub(1);
            if *n == 0 {
                self.by_prefix.remove(prefix);
            }
        }
    }
}

pub struct Watch {
    wake: Arc<Notify>,
    nbs: Vec<Session>,
    learned: Vec<Learned>,
}

fn is_learned(row: &ovn_ic::ovsdb::replica::Row) -> bool {
    row.smap_get("external_ids", LEARNED_KEY).is_some()
}

impl Watch {
    /// One session per NB remote (index = AZ index). Must run inside a runtime context.
    pub fn connect(nb_remotes: &[String]) -> Watch {
        let wake = Arc::new(Notify::new());
        let nbs = nb_remotes
            .iter()
            .enumerate()
            .map(|(i, remote)| {
                let cfg = SessionConfig::new(NB_DB, remote, wake.clone())
                    .monitor_columns(LR, &["name", "static_routes"])
                    .monitor_columns(LRSR, &["ip_prefix", "nexthop", "external_ids"]);
                let mut s = Session::spawn(&format!("bench-nb{i}"), cfg);
                s.replica_mut().add_index(LRSR, &["ip_prefix"]);
                s.replica_mut().add_index(LR, &["name"]);
                s
            })
            .collect::<Vec<_>>();
        let learned = nbs.iter().map(|_| Learned::default()).collect();
        Watch { wake, nbs, learned }
    }

    /// Applies every queued update and folds the replica changes into the counters.
    fn absorb(&mut self) {
        for (s, l) in self.nbs.iter_mut().zip(self.learned.iter_mut()) {
            s.run();
            if s.take_resynced() {
                // A full snapshot replaced the replica: count from scratch.
                *l = Learned::default();
                for r in s.replica().iter(LRSR).filter(|r| is_learned(r)) {
                    l.adjust(r.str("ip_prefix"), true);
                }
            } else {
                for c in s.replica().changes(LRSR) {
                    if let Some(old) = c.old.filter(|r| is_learned(r)) {
                        l.adjust(old.str("ip_prefix"), false);
                    }
                    if let Some(new) = c.new.filter(|r| is_learned(r)) {
                        l.adjust(new.str("ip_prefix"), true);
                    }
                }
            }
            s.replica_mut().clear_changes();
        }
    }

    /// Learned routes in AZ `az`.
    pub fn learned(&self, az: usize) -> usize {
        self.learned[az].total
    }

    /// Learned routes for `prefix` in AZ `az`.
    pub fn learned_prefix(&self, az: usize, prefix: &str) -> usize {
        self.learned[az].by_prefix.get(prefix).copied().unwrap_or(0)
    }

    /// Pumps the sessions until `cond` holds; returns the moment it was first seen to hold.
    pub async fn until(
        &mut self,
        what: &str,
        timeout: Duration,
        mut cond: impl FnMut(&Watch) -> bool,
    ) -> Result<Instant> {
        let deadline = Instant::now() + timeout;
        loop {
            self.absorb();
            if cond(self) {
                return Ok(Instant::now());
            }
            if let Some(e) = self.nbs.iter().find_map(|s| s.error()) {
                bail!("{what}: an NB session failed: {e}");
            }
            let now = Instant::now();
            if now >= deadline {
                let counts: Vec<usize> = self.learned.iter().map(|l| l.total).collect();
                bail!("{what}: not reached in {timeout:?} (learned routes per AZ: {counts:?})");
            }
            let step = (deadline - now).min(Duration::from_millis(500));
            let _ = tokio::time::timeout(step, self.wake.notified()).await;
        }
    }

    /// Waits until every session has its first complete replica.
    pub async fn synced(&mut self, timeout: Duration) -> Result<()> {
        self.until("NB sessions synced", timeout, |w| {
            w.nbs.iter().all(Session::is_synced)
        })
        .await
        .map(drop)
    }

    /// Keeps the sessions drained for `d` (updates keep flowing while nothing is measured).
    pub async fn pump_for(&mut self, d: Duration) {
        let end = Instant::now() + d;
        loop {
            self.absorb();
            let now = Instant::now();
            if now >= end {
                return;
            }
            let _ = tokio::time::timeout(end - now, self.wake.notified()).await;
        }
    }

    fn router(&self, az: usize, lr: &str) -> Result<ovn_ic::ovsdb::uuid::Uuid> {
        self.nbs[az]
            .replica()
            .find_by_str(LR, "name", lr)
            .map(|r| r.uuid())
            .ok_or_else(|| anyhow!("no router {lr} in AZ {az}'s NB"))
    }

    /// Sends one transaction adding static routes `prefixes` → `nexthop` to router `lr` of AZ
    /// `az`. Finish it with [`Watch::finish_commit`].
    pub fn commit_add(
        &mut self,
        az: usize,
        lr: &str,
        prefixes: &[String],
        nexthop: &str,
    ) -> Result<()> {
        let lr = self.router(az, lr)?;
        let s = &mut self.nbs[az];
        if !s.can_commit() {
            bail!("AZ {az}'s NB session cannot commit now");
        }
        let mut t = Txn::new(NB_DB);
        let mut refs = Vec::with_capacity(prefixes.len());
        for p in prefixes {
            let r = t.insert(
                s.replica(),
                LRSR,
                vec![
                    ("ip_prefix", Datum::scalar(p.as_str())),
                    ("nexthop", Datum::scalar(nexthop)),
                ],
            );
            refs.push(r.atom());
        }
        t.mutate(
            LR,
            &RowRef::Existing(lr),
            vec![("static_routes", "insert", Datum::set(refs))],
        );
        s.commit(t);
        Ok(())
    }

    /// Sends one transaction detaching router `lr`'s own (not learned) static route `prefix`
    /// (the row is garbage-collected). Finish it with [`Watch::finish_commit`].
    pub fn commit_remove(&mut self, az: usize, lr: &str, prefix: &str) -> Result<()> {
        let lr_uuid = self.router(az, lr)?;
        let s = &mut self.nbs[az];
        let own: Vec<Atom> = s
            .replica()
            .find(LRSR, &["ip_prefix"], &[Datum::scalar(prefix)])
            .into_iter()
            .filter(|r| !is_learned(r))
            .map(|r| Atom::Uuid(r.uuid()))
            .collect();
        if own.is_empty() {
            bail!("AZ {az} has no static route {prefix} of its own");
        }
        if !s.can_commit() {
            bail!("AZ {az}'s NB session cannot commit now");
        }
        let mut t = Txn::new(NB_DB);
        t.mutate(
            LR,
            &RowRef::Existing(lr_uuid),
            vec![("static_routes", "delete", Datum::set(own))],
        );
        s.commit(t);
        Ok(())
    }

    /// Waits for the reply to AZ `az`'s transaction in flight; fails unless it succeeded.
    pub async fn finish_commit(&mut self, az: usize, timeout: Duration) -> Result<()> {
        let wake = self.wake.clone();
        let st = tokio::time::timeout(timeout, self.nbs[az].wait_result(&wake))
            .await
            .map_err(|_| anyhow!("no reply from AZ {az}'s NB in {timeout:?}"))?;
        // Other sessions' updates may have been queued meanwhile; a later absorb sees them.
        match st {
            TxnStatus::Success(_) => Ok(()),
            other => bail!("transaction on AZ {az}'s NB: {other:?}"),
        }
    }
}
