//! The main loop (spec ovn-ic-core.md §3.1, §3.5, §3.6) and its seam for the OVSDB sessions and
//! the engine.
//!
//! Everything that talks to databases plugs in through [`Driver`]: the loop calls
//! [`Driver::run`] once per iteration (steps 1–6 of §3.1), then serves the control-socket
//! requests that arrived (step 7), then sleeps until the driver, the control socket, or a fatal
//! signal wakes it (step 8). [`Idle`] is the driver used until the sessions exist: nothing is
//! connected and nothing ever wakes the loop except the control socket.

use std::collections::VecDeque;
use std::future::Future;
use std::time::Instant;

use tokio::sync::mpsc;

use super::coverage;
use super::metrics::{self, NodeMetrics, Snapshot};
use super::signals::{self, FatalSignals};
use super::unixctl::{Reply, Request};

/// The four databases whose connection state `*-connection-status` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Nb,
    Sb,
    IcNb,
    /// The locked IC-SB session.
    IcSb,
}

/// Per-node engine counters, as `inc-engine/show-stats` prints them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeStats {
    pub name: String,
    pub recompute: u64,
    pub compute: u64,
    pub cancel: u64,
}

/// What one iteration may ask of the loop, and the loop's state the driver must honour.
#[derive(Debug, Default)]
pub struct IterationCtx {
    /// `pause` is in effect (§3.5): keep replicas current, no transactions, release locks.
    pub paused: bool,
    /// A full recompute is pending (set by `inc-engine/recompute`; the engine clears it).
    pub force_recompute: bool,
    /// Set by the driver to run the next iteration without sleeping.
    pub immediate_wake: bool,
}

/// The seam for the sessions and the engine.
pub trait Driver {
    /// Steps 1–6 of one iteration (§3.1).
    fn run(&mut self, ctx: &mut IterationCtx);
    /// Resolves when a session has input or one of the driver's timers fires.
    fn wait(&mut self) -> impl Future<Output = ()>;
    /// Whether that session is connected (`*-connection-status`).
    fn is_connected(&self, db: Db) -> bool;
    /// Whether the SB lock `ovn_ic` is held (the tracked `had_lock`): `status` says `active`.
    fn has_sb_lock(&self) -> bool;
    /// Engine nodes with their counters, in display order.
    fn engine_stats(&self) -> Vec<NodeStats>;
    /// `inc-engine/clear-stats`.
    fn clear_engine_stats(&mut self);
    /// Fill the driver's part of a metrics snapshot: `dbs`, `locks`, `nodes`, latency and
    /// `owned`. The default reports what the other methods tell (no counters, no timing).
    fn metrics(&mut self, snap: &mut Snapshot) {
        let dbs = [
            (Db::Nb, crate::ic::tables::NB_DB),
            (Db::Sb, crate::ic::tables::SB_DB),
            (Db::IcNb, crate::ic::tables::ICNB_DB),
            (Db::IcSb, crate::ic::tables::ICSB_DB),
        ];
        snap.dbs = dbs
            .iter()
            .map(|&(db, name)| metrics::DbMetrics {
                db: name.to_string(),
                connected: self.is_connected(db),
                committed: 0,
                failed: 0,
            })
            .collect();
        snap.locks = metrics::locks(self.has_sb_lock(), false);
        snap.nodes = self
            .engine_stats()
            .into_iter()
            .map(|n| NodeMetrics {
                name: n.name,
                recompute: n.recompute,
                compute: n.compute,
                cancel: n.cancel,
                ..Default::default()
            })
            .collect();
    }
}

/// The driver until sessions exist: nothing connected, never wakes the loop.
#[derive(Debug, Default)]
pub struct Idle;

impl Driver for Idle {
    fn run(&mut self, _ctx: &mut IterationCtx) {}
    fn wait(&mut self) -> impl Future<Output = ()> {
        std::future::pending()
    }
    fn is_connected(&self, _db: Db) -> bool {
        false
    }
    fn has_sb_lock(&self) -> bool {
        false
    }
    fn engine_stats(&self) -> Vec<NodeStats> {
        Vec::new()
    }
    fn clear_engine_stats(&mut self) {}
}

/// The commands the main loop answers (everything else is answered by the control socket).
/// `(name, usage, min args, max args)`.
pub const LOOP_COMMANDS: [(&str, &str, usize, usize); 13] = [
    ("exit", "", 0, 0),
    ("pause", "", 0, 0),
    ("resume", "", 0, 0),
    ("is-paused", "", 0, 0),
    ("status", "", 0, 0),
    ("nb-connection-status", "", 0, 0),
    ("sb-connection-status", "", 0, 0),
    ("ic-nb-connection-status", "", 0, 0),
    ("ic-sb-connection-status", "", 0, 0),
    ("inc-engine/show-stats", "", 0, 2),
    ("inc-engine/clear-stats", "", 0, 0),
    ("inc-engine/recompute", "", 0, 0),
    ("metrics/show", "", 0, 0),
];

/// Why the loop returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// `exit` command: exit status 0.
    Requested,
    /// The control socket went away (cannot happen while the server runs): exit status 1.
    ControlClosed,
}

pub struct MainLoop<D: Driver> {
    pub driver: D,
    pub paused: bool,
    pub exiting: bool,
    force_recompute: bool,
    immediate_wake: bool,
    requests: mpsc::UnboundedReceiver<Request>,
    pending: VecDeque<Request>,
    /// With `--metrics`: the snapshot the HTTP responder serves, refreshed after every iteration.
    metrics: Option<metrics::Shared>,
}

impl<D: Driver> MainLoop<D> {
    pub fn new(driver: D, requests: mpsc::UnboundedReceiver<Request>) -> MainLoop<D> {
        MainLoop {
            driver,
            paused: false,
            exiting: false,
            // The first iteration always recomputes (§3.4).
            force_recompute: true,
            immediate_wake: false,
            requests,
            pending: VecDeque::new(),
            metrics: None,
        }
    }

    /// Keep `shared` up to date after every iteration (from now on).
    pub fn set_metrics(&mut self, shared: metrics::Shared) {
        let snap = self.metrics_snapshot();
        *shared.lock().unwrap_or_else(|e| e.into_inner()) = snap;
        self.metrics = Some(shared);
    }

    /// The figures `metrics/show` and the HTTP endpoint print.
    pub fn metrics_snapshot(&mut self) -> Snapshot {
        let mut s = Snapshot {
            version: super::OVN_VERSION.to_string(),
            paused: self.paused,
            ..Snapshot::default()
        };
        self.driver.metrics(&mut s);
        s
    }

    /// One iteration's steps 1–7; returns whether the loop should leave.
    pub fn iterate(&mut self) -> bool {
        coverage::run(Instant::now());
        let mut ctx = IterationCtx {
            paused: self.paused,
            force_recompute: self.force_recompute,
            immediate_wake: false,
        };
        self.driver.run(&mut ctx);
        self.force_recompute = ctx.force_recompute;
        self.immediate_wake |= ctx.immediate_wake;
        // Step 7: serve the control socket.
        while let Ok(r) = self.requests.try_recv() {
            self.pending.push_back(r);
        }
        while let Some(r) = self.pending.pop_front() {
            let reply = self.handle(&r.command, &r.args);
            r.reply(reply);
        }
        if let Some(shared) = self.metrics.clone() {
            let snap = self.metrics_snapshot();
            *shared.lock().unwrap_or_else(|e| e.into_inner()) = snap;
        }
        self.exiting
    }

    /// Run until `exit`. Fatal signals terminate the process from here.
    pub async fn run(&mut self, signals: &mut FatalSignals) -> Exit {
        loop {
            if self.iterate() {
                return Exit::Requested;
            }
            // Step 8: sleep.
            let zero = std::mem::take(&mut self.immediate_wake);
            coverage::inc(coverage::POLL_CREATE_NODE);
            if zero {
                coverage::inc(coverage::POLL_ZERO_TIMEOUT);
            }
            tokio::select! {
                biased;
                sig = signals.recv() => signals::terminate(sig),
                r = self.requests.recv() => match r {
                    Some(r) => self.pending.push_back(r),
                    None => return Exit::ControlClosed,
                },
                _ = self.driver.wait() => {}
                _ = std::future::ready(()), if zero => {}
            }
        }
    }

    /// Answer one of [`LOOP_COMMANDS`].
    pub fn handle(&mut self, command: &str, args: &[String]) -> Reply {
        let status = |db| {
            if self.driver.is_connected(db) {
                "connected"
            } else {
                "not connected"
            }
        };
        match command {
            "exit" => {
                self.exiting = true;
                Ok(String::new())
            }
            "pause" => {
                self.paused = true;
                self.immediate_wake = true;
                Ok(String::new())
            }
            "resume" => {
                self.paused = false;
                self.immediate_wake = true;
                Ok(String::new())
            }
            "is-paused" => Ok(if self.paused { "true" } else { "false" }.to_string()),
            "status" => Ok(format!(
                "Status: {}\n",
                if self.paused {
                    "paused"
                } else if self.driver.has_sb_lock() {
                    "active"
                } else {
                    "standby"
                }
            )),
            "nb-connection-status" => Ok(status(Db::Nb).to_string()),
            "sb-connection-status" => Ok(status(Db::Sb).to_string()),
            "ic-nb-connection-status" => Ok(status(Db::IcNb).to_string()),
            "ic-sb-connection-status" => Ok(status(Db::IcSb).to_string()),
            "inc-engine/show-stats" => {
                Ok(format_stats(&self.driver.engine_stats(), args.first().map(String::as_str), args.get(1).map(String::as_str)))
            }
            "inc-engine/clear-stats" => {
                self.driver.clear_engine_stats();
                Ok(String::new())
            }
            "metrics/show" => Ok(metrics::render(&self.metrics_snapshot())),
            "inc-engine/recompute" => {
                tracing::info!(target: "inc_proc_eng", "User triggered force recompute.");
                self.force_recompute = true;
                self.immediate_wake = true;
                Ok(String::new())
            }
            other => Err(format!(
                "\"{other}\" is not a valid command (use \"list-commands\" to see a list of valid commands)"
            )),
        }
    }

    pub fn force_recompute_pending(&self) -> bool {
        self.force_recompute
    }
}

/// `inc-engine/show-stats [NODE [STAT]]` text (`engine_dump_stats`).
pub fn format_stats(nodes: &[NodeStats], node: Option<&str>, stat: Option<&str>) -> String {
    let mut s = String::new();
    for n in nodes
        .iter()
        .filter(|n| node.map_or(true, |want| want == n.name))
    {
        match stat {
            None => s.push_str(&format!(
                "Node: {}\n- recompute: {:12}\n- compute:   {:12}\n- cancel:    {:12}\n",
                n.name, n.recompute, n.compute, n.cancel
            )),
            Some("recompute") => s.push_str(&n.recompute.to_string()),
            Some("compute") => s.push_str(&n.compute.to_string()),
            Some("cancel") => s.push_str(&n.cancel.to_string()),
            Some(other) => s.push_str(&format!("Invalid stat type : {other}")),
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Fake {
        connected: bool,
        lock: bool,
        stats: Vec<NodeStats>,
        runs: Vec<(bool, bool)>,
    }

    impl Driver for Fake {
        fn run(&mut self, ctx: &mut IterationCtx) {
            self.runs.push((ctx.paused, ctx.force_recompute));
            ctx.force_recompute = false;
        }
        fn wait(&mut self) -> impl Future<Output = ()> {
            std::future::pending()
        }
        fn is_connected(&self, _db: Db) -> bool {
            self.connected
        }
        fn has_sb_lock(&self) -> bool {
            self.lock
        }
        fn engine_stats(&self) -> Vec<NodeStats> {
            self.stats.clone()
        }
        fn clear_engine_stats(&mut self) {
            for s in &mut self.stats {
                *s = NodeStats {
                    name: s.name.clone(),
                    ..Default::default()
                };
            }
        }
    }

    fn ml(f: Fake) -> MainLoop<Fake> {
        MainLoop::new(f, mpsc::unbounded_channel().1)
    }

    #[test]
    fn pause_resume_status() {
        let mut m = ml(Fake::default());
        assert_eq!(m.handle("status", &[]), Ok("Status: standby\n".into()));
        assert_eq!(m.handle("is-paused", &[]), Ok("false".into()));
        assert_eq!(m.handle("pause", &[]), Ok(String::new()));
        assert_eq!(m.handle("is-paused", &[]), Ok("true".into()));
        assert_eq!(m.handle("status", &[]), Ok("Status: paused\n".into()));
        m.driver.lock = true;
        assert_eq!(m.handle("status", &[]), Ok("Status: paused\n".into()));
        m.handle("resume", &[]).unwrap();
        assert_eq!(m.handle("status", &[]), Ok("Status: active\n".into()));
    }

    #[test]
    fn connection_status() {
        let mut m = ml(Fake::default());
        for c in [
            "nb-connection-status",
            "sb-connection-status",
            "ic-nb-connection-status",
            "ic-sb-connection-status",
        ] {
            assert_eq!(m.handle(c, &[]), Ok("not connected".into()));
        }
        m.driver.connected = true;
        assert_eq!(
            m.handle("ic-sb-connection-status", &[]),
            Ok("connected".into())
        );
    }

    #[test]
    fn iterations_see_pause_and_recompute() {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut m = MainLoop::new(Fake::default(), rx);
        assert!(!m.iterate());
        let (req, mut reply) = Request::new("pause", vec![]);
        tx.send(req).unwrap();
        assert!(!m.iterate());
        assert_eq!(reply.try_recv().unwrap(), Ok(String::new()));
        let (req, _r) = Request::new("inc-engine/recompute", vec![]);
        tx.send(req).unwrap();
        assert!(!m.iterate());
        assert!(m.force_recompute_pending());
        let (req, _r) = Request::new("exit", vec![]);
        tx.send(req).unwrap();
        // The iteration runs first, then the request is served and the loop leaves.
        assert!(m.iterate());
        assert_eq!(
            m.driver.runs,
            vec![(false, true), (false, false), (true, false), (true, true)]
        );
    }

    #[test]
    fn metrics_show_and_shared_snapshot() {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut m = MainLoop::new(
            Fake {
                connected: true,
                lock: true,
                stats: vec![NodeStats {
                    name: "route".into(),
                    recompute: 3,
                    compute: 1,
                    cancel: 0,
                }],
                ..Default::default()
            },
            rx,
        );
        let text = m.handle("metrics/show", &[]).unwrap();
        assert_eq!(text, metrics::render(&m.metrics_snapshot()));
        assert!(text.contains("\novn_ic_paused 0\n"), "{text}");
        assert!(text.contains("\novn_ic_db_connected{db=\"OVN_IC_Southbound\"} 1\n"));
        assert!(text.contains("\novn_ic_lock_held{db=\"OVN_Southbound\",lock=\"ovn_ic\"} 1\n"));
        assert!(text.contains("\novn_ic_engine_recompute_total{node=\"route\"} 3\n"));
        assert!(text.contains(&format!(
            "ovn_ic_build_info{{version=\"{}\"}} 1\n",
            crate::daemon::OVN_VERSION
        )));

        // With a shared snapshot, every iteration refreshes it, after serving the requests.
        let shared = metrics::Shared::default();
        m.set_metrics(shared.clone());
        assert_eq!(shared.lock().unwrap().nodes[0].recompute, 3);
        let (req, _r) = Request::new("pause", vec![]);
        tx.send(req).unwrap();
        m.driver.stats[0].recompute = 4;
        assert!(!m.iterate());
        let snap = shared.lock().unwrap().clone();
        assert!(snap.paused);
        assert_eq!(snap.nodes[0].recompute, 4);
        assert_eq!(
            metrics::render(&snap),
            m.handle("metrics/show", &[]).unwrap()
        );
    }

    #[test]
    fn stats_format() {
        let nodes = vec![
            NodeStats {
                name: "NB_nb_global".into(),
                recompute: 3,
                compute: 0,
                cancel: 0,
            },
            NodeStats {
                name: "ic".into(),
                recompute: 2,
                compute: 0,
                cancel: 1,
            },
        ];
        assert_eq!(
            format_stats(&nodes, Some("ic"), None),
            "Node: ic\n- recompute:            2\n- compute:              0\n- cancel:               1\n"
        );
        assert_eq!(
            format_stats(&nodes, None, None).matches("Node: ").count(),
            2
        );
        assert_eq!(format_stats(&nodes, Some("ic"), Some("cancel")), "1");
        assert_eq!(
            format_stats(&nodes, Some("ic"), Some("bogus")),
            "Invalid stat type : bogus"
        );
        assert_eq!(format_stats(&nodes, Some("nope"), Some("bogus")), "");
        let mut m = ml(Fake {
            stats: nodes,
            ..Default::default()
        });
        assert_eq!(
            m.handle("inc-engine/show-stats", &["ic".into(), "recompute".into()]),
            Ok("2".into())
        );
        m.handle("inc-engine/clear-stats", &[]).unwrap();
        assert_eq!(
            m.handle("inc-engine/show-stats", &["ic".into(), "recompute".into()]),
            Ok("0".into())
        );
    }
}
