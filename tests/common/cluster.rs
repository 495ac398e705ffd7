//! A raft cluster of `ovsdb-server`s on 127.0.0.1.

use std::collections::HashSet;
use std::net::TcpListener;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use rand::Rng;

use super::process::{run, TestDir};
use super::schema::Schema;
use super::server::{Listen, Server};
use super::wait_for;

/// How long a fresh cluster may take until every member has joined and a leader is elected.
const FORM_TIMEOUT: Duration = Duration::from_secs(30);

/// What `ovs-appctl -t CTL cluster/status DB` says about one member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaftStatus {
    /// Short server id, e.g. `603c`.
    pub sid: String,
    /// `Status:` line, e.g. `cluster member`, `joining cluster`, `disconnected from the cluster
    /// (election timeout)`.
    pub status: String,
    /// `Role:` line: `leader`, `follower` or `candidate`.
    pub role: String,
    pub term: u64,
    /// `Leader:` line: `self`, a short sid, or `None` for `unknown`.
    pub leader: Option<String>,
}

impl RaftStatus {
    pub fn parse(text: &str) -> Result<RaftStatus> {
        let field = |name: &str| -> Option<&str> {
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
                .map(str::trim)
        };
        let need = |name: &str| field(name).ok_or_else(|| anyhow!("no {name}: in {text}"));
        let sid = need("Server ID")?
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string();
        let term = need("Term")?
            .parse()
            .with_context(|| format!("bad Term: in {text}"))?;
        Ok(RaftStatus {
            sid,
            status: need("Status")?.to_string(),
            role: need("Role")?.to_string(),
            term,
            leader: field("Leader")
                .filter(|l| *l != "unknown")
                .map(str::to_string),
        })
    }

    pub fn is_leader(&self) -> bool {
        self.role == "leader"
    }

    pub fn is_member(&self) -> bool {
        self.status == "cluster member"
    }
}

/// A cluster of `n` `ovsdb-server`s for one schema, each in its own directory, listening for
/// clients on `tcp:127.0.0.1:<port>` (and a unix socket) and for raft on another 127.0.0.1 port.
///
/// Members are indexed `0..n`; member 0 created the cluster, the others joined it. Dropping the
/// cluster kills every member.
pub struct Cluster {
    db_name: String,
    members: Vec<Server>,
    raft: Vec<String>,
}

impl Cluster {
    /// `ovsdb-tool create-cluster` + `join-cluster`, starts all members and waits until each is a
    /// cluster member and one is the leader. Retries once with fresh raft ports if the cluster
    /// does not form (another process may have taken a port we picked).
    pub fn new(schema: impl AsRef<Path>, n: usize) -> Result<Cluster> {
        if n == 0 {
            bail!("a cluster needs at least one member");
        }
        match Cluster::try_new(schema.as_ref(), n) {
            Ok(c) => Ok(c),
            Err(first) => {
                eprintln!("harness: cluster did not form, retrying: {first:#}");
                Cluster::try_new(schema.as_ref(), n).context("second attempt")
            }
        }
    }

    fn try_new(schema: &Path, n: usize) -> Result<Cluster> {
        let db_name = Schema::load(schema)?.name().to_string();
        let mut members: Vec<Server> = Vec::with_capacity(n);
        let mut raft: Vec<String> = Vec::with_capacity(n);
        for i in 0..n {
            let port = free_port()?;
            let local = format!("tcp:127.0.0.1:{port}");
            let dir = TestDir::new(&format!("raft{i}"))?;
            let db = dir.join("db.db");
            let mut args = vec![];
            if i == 0 {
                args.extend([
                    "create-cluster".into(),
                    db.display().to_string(),
                    schema.display().to_string(),
                    local.clone(),
                ]);
            } else {
                args.extend([
                    "join-cluster".into(),
                    db.display().to_string(),
                    db_name.clone(),
                    local.clone(),
                ]);
                args.extend(raft.iter().cloned());
            }
            run("ovsdb-tool", &args, Duration::from_secs(30))?;
            let server = Server::builder(schema)
                .name(&format!("{db_name} member {i}"))
                .listen(Listen::Tcp)
                .listen(Listen::Unix)
                .prepared_db(dir, db)
                .start()?;
            members.push(server);
            raft.push(local);
        }
        let mut cluster = Cluster {
            db_name,
            members,
            raft,
        };
        cluster.wait_joined(FORM_TIMEOUT)?;
        Ok(cluster)
    }

    pub fn db_name(&self) -> &str {
        &self.db_name
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Comma-separated client remotes of all members (tcp), in member order:
    /// `tcp:127.0.0.1:P0,tcp:127.0.0.1:P1,tcp:127.0.0.1:P2`.
    pub fn remote(&self) -> String {
        self.members
            .iter()
            .map(Server::remote)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Raft addresses of the members (`tcp:127.0.0.1:PORT`), in member order.
    pub fn raft_addresses(&self) -> &[String] {
        &self.raft
    }

    pub fn member(&self, i: usize) -> &Server {
        &self.members[i]
    }

    pub fn member_mut(&mut self, i: usize) -> &mut Server {
        &mut self.members[i]
    }

    pub fn members(&self) -> &[Server] {
        &self.members
    }

    /// `cluster/status` of member `i` (fails if it is killed or stopped).
    pub fn status(&self, i: usize) -> Result<RaftStatus> {
        let text = self.members[i].appctl(&["cluster/status", &self.db_name])?;
        RaftStatus::parse(&text)
    }

    /// Statuses of the members that are running and not stopped.
    fn live_statuses(&mut self) -> Vec<(usize, RaftStatus)> {
        let mut out = Vec::new();
        for i in 0..self.members.len() {
            let m = &mut self.members[i];
            if !m.is_running() || m.is_stopped() {
                continue;
            }
            if let Ok(s) = self.status(i) {
                out.push((i, s));
            }
        }
        out
    }

    /// The member that currently says `Role: leader` (the one with the highest term if a
    /// deposed leader has not noticed yet). Killed and stopped members are not asked.
    pub fn leader(&mut self) -> Option<usize> {
        self.live_statuses()
            .into_iter()
            .filter(|(_, s)| s.is_leader())
            .max_by_key(|(_, s)| s.term)
            .map(|(i, _)| i)
    }

    /// Waits until some live member is leader and all live members agree on the term.
    pub fn wait_leader(&mut self, timeout: Duration) -> Result<usize> {
        wait_for(timeout, || {
            let st = self.live_statuses();
            let (i, leader) = st
                .iter()
                .filter(|(_, s)| s.is_leader())
                .max_by_key(|(_, s)| s.term)?;
            st.iter()
                .all(|(_, s)| s.term == leader.term && s.is_member())
                .then_some(*i)
        })
        .ok_or_else(|| {
            anyhow!(
                "no leader elected in {timeout:?}: {:?}",
                self.live_statuses()
            )
        })
    }

    /// Waits until every member is running, is a `cluster member`, and there is a leader.
    pub fn wait_joined(&mut self, timeout: Duration) -> Result<usize> {
        let n = self.members.len();
        wait_for(timeout, || {
            let st = self.live_statuses();
            (st.len() == n && st.iter().all(|(_, s)| s.is_member())).then_some(())?;
            st.iter().find(|(_, s)| s.is_leader()).map(|(i, _)| *i)
        })
        .ok_or_else(|| {
            anyhow!(
                "cluster did not form in {timeout:?}: {:?}{}",
                self.live_statuses(),
                self.members
                    .iter()
                    .map(|m| super::process::log_tail_msg(m.log_path()))
                    .collect::<String>()
            )
        })
    }

    /// `kill -9` member `i`.
    pub fn kill(&mut self, i: usize) {
        self.members[i].kill();
    }

    /// Restarts member `i` on its database file and ports; it rejoins by itself (see
    /// [`Cluster::wait_joined`]).
    pub fn restart(&mut self, i: usize) -> Result<()> {
        self.members[i].restart()
    }

    /// `SIGSTOP` member `i`.
    pub fn stop(&mut self, i: usize) -> Result<()> {
        self.members[i].stop()
    }

    /// `SIGCONT` member `i`.
    pub fn cont(&mut self, i: usize) -> Result<()> {
        self.members[i].cont()
    }

    /// Pids of the running members.
    pub fn pids(&self) -> Vec<u32> {
        self.members.iter().filter_map(Server::pid).collect()
    }
}

/// A 127.0.0.1 TCP port that is free now, taken below the kernel's ephemeral range (so no
/// outgoing connection gets it in the meantime) and never handed out twice by this process.
pub(crate) fn free_port() -> Result<u16> {
    static TAKEN: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
    let low_ephemeral = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let (lo, hi) = if low_ephemeral > 12000 {
        (10000, low_ephemeral)
    } else {
        (low_ephemeral / 2, low_ephemeral)
    };
    let mut taken = TAKEN.lock().map_err(|_| anyhow!("port table poisoned"))?;
    let taken = taken.get_or_insert_with(HashSet::new);
    let mut rng = rand::thread_rng();
    for _ in 0..200 {
        let port = rng.gen_range(lo..hi);
        if taken.contains(&port) {
            continue;
        }
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            taken.insert(port);
            return Ok(port);
        }
    }
    bail!("no free 127.0.0.1 port in {lo}..{hi}")
}
