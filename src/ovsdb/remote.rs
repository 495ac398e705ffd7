//! Connection strings ("remotes"), spec ovsdb-protocol.md §1.1.
//!
//! Helper-owned module: parse `unix:PATH`, `tcp:HOST:PORT`, `ssl:HOST:PORT` (IPv4, `[IPv6]`,
//! bracketed IPv4, `%scope`), default port 6640 with the C library's colon-count rule, passive
//! forms `punix:`, `ptcp:`, `pssl:` (parsed, reported as passive), and comma-separated cluster
//! lists with the exact splitting rule of `lib/ovsdb-session.c` (`cid:<uuid>` elements extracted).

use std::net::SocketAddr;
use std::path::PathBuf;

use super::uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RemoteError {
    #[error("{0}: unknown connection method")]
    UnknownMethod(String),
    #[error("{0}: port must be specified")]
    NoPort(String),
    #[error("{0}: bad address: {1}")]
    BadAddress(String, String),
    #[error("empty remote")]
    Empty,
}

/// One transport endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Remote {
    Unix(PathBuf),
    Tcp(SocketAddr),
    Ssl(SocketAddr),
    /// Passive methods: we listen and the server connects to us.
    PUnix(PathBuf),
    PTcp(SocketAddr),
    PSsl(SocketAddr),
}

impl Remote {
    /// Parse one remote. A relative `unix:` path is resolved against `rundir`.
    pub fn parse(s: &str, rundir: &std::path::Path) -> Result<Remote, RemoteError> {
        todo!("helper")
    }
    /// tcp/ssl (active or passive) need inactivity probes; unix does not.
    pub fn needs_probes(&self) -> bool {
        !matches!(self, Remote::Unix(_) | Remote::PUnix(_))
    }
    pub fn is_passive(&self) -> bool {
        matches!(self, Remote::PUnix(_) | Remote::PTcp(_) | Remote::PSsl(_))
    }
}

/// A parsed `--ovnsb-db`-style value: one or more remotes (the original strings are kept for log
/// lines, which name the remote as written) and an optional expected cluster id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteList {
    pub remotes: Vec<(String, Remote)>,
    pub cid: Option<Uuid>,
}

impl RemoteList {
    pub fn parse(s: &str, rundir: &std::path::Path) -> Result<RemoteList, RemoteError> {
        todo!("helper")
    }
}

/// Split a comma-separated list as `lib/ovsdb-session.c` does: a comma starts a new element only
/// when followed by optional blanks, a run of lowercase ASCII letters and a `:`.
pub fn split_remotes(s: &str) -> Vec<String> {
    todo!("helper")
}
