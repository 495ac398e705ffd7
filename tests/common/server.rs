//! One `ovsdb-server` process per [`Server`], in its own temporary directory.

use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::Value;

use super::client::Client;
use super::pki::{Pki, SslFiles};
use super::process::{isolate_env, log_tail_msg, run, Proc, TestDir};
use super::schema::Schema;
use super::wait_for;

/// How long a server may take to start listening (generous: CI shares 2 cores).
pub(crate) const START_TIMEOUT: Duration = Duration::from_secs(20);

/// The longest a server that keeps making progress may take to start listening (see
/// [`Server::launch`]): reading back a large database file on a loaded machine.
pub(crate) const START_TIMEOUT_MAX: Duration = Duration::from_secs(180);

/// A plain (non-TLS) listener for [`Server::standalone`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listen {
    /// `punix:<dir>/db.sock`; clients use `unix:<dir>/db.sock`.
    Unix,
    /// `ptcp:0:127.0.0.1` (the kernel picks the port, read back from the server's log);
    /// clients use `tcp:127.0.0.1:<port>`. Restarts reuse the same port.
    Tcp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Unix,
    /// Port 0 until the first start has bound it.
    Tcp(u16),
    Ssl(u16),
}

/// Configures and starts a [`Server`]. Without any `listen`/`ssl` call it listens on a unix
/// socket. At most one TCP-like (tcp or ssl) listener per server: ovsdb-server's log names every
/// port-0 listener the same way, so two of them could not be told apart.
pub struct ServerBuilder {
    schema: PathBuf,
    name: String,
    endpoints: Vec<Endpoint>,
    server_ssl: Option<SslFiles>,
    client_ssl: Option<SslFiles>,
    args: Vec<String>,
    /// A database file prepared elsewhere (cluster members), with the directory it lives in.
    prepared: Option<(TestDir, PathBuf)>,
}

impl ServerBuilder {
    /// Used in directory names and messages (default `ovsdb-server`).
    pub fn name(mut self, name: &str) -> Self {
        self.name = name.to_string();
        self
    }

    pub fn listen(mut self, listen: Listen) -> Self {
        let e = match listen {
            Listen::Unix => Endpoint::Unix,
            Listen::Tcp => Endpoint::Tcp(0),
        };
        if !self.endpoints.contains(&e) {
            self.endpoints.push(e);
        }
        self
    }

    /// Adds a `pssl:0:127.0.0.1` listener with the PKI's server key pair; the server's
    /// convenience client methods then use the PKI's client key pair.
    pub fn ssl(mut self, pki: &Pki) -> Self {
        if !self.endpoints.iter().any(|e| matches!(e, Endpoint::Ssl(_))) {
            self.endpoints.push(Endpoint::Ssl(0));
        }
        self.server_ssl = Some(pki.server.clone());
        self.client_ssl = Some(pki.client.clone());
        self
    }

    /// An extra `ovsdb-server` command-line argument.
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    pub(crate) fn prepared_db(mut self, dir: TestDir, db_file: PathBuf) -> Self {
        self.prepared = Some((dir, db_file));
        self
    }

    /// Creates the database (`ovsdb-tool create`) unless prepared, starts `ovsdb-server` and
    /// waits until every listener accepts connections.
    pub fn start(self) -> Result<Server> {
        let schema = Schema::load(&self.schema)?;
        let mut endpoints = self.endpoints;
        if endpoints.is_empty() {
            endpoints.push(Endpoint::Unix);
        }
        let tcp_like = endpoints
            .iter()
            .filter(|e| !matches!(e, Endpoint::Unix))
            .count();
        if tcp_like > 1 {
            bail!("a test server supports only one tcp or ssl listener");
        }
        let (dir, db_file) = match self.prepared {
            Some(p) => p,
            None => {
                let dir = TestDir::new(&self.name)?;
                let db_file = dir.join("db.db");
                run(
                    "ovsdb-tool",
                    [
                        "create".as_ref(),
                        db_file.as_os_str(),
                        self.schema.as_os_str(),
                    ],
                    Duration::from_secs(30),
                )?;
                (dir, db_file)
            }
        };
        let mut server = Server {
            ctl: dir.join("db.ctl"),
            log: dir.join("ovsdb-server.log"),
            out: dir.join("ovsdb-server.out"),
            sock: dir.join("db.sock"),
            name: self.name,
            db_name: schema.name().to_string(),
            db_file,
            endpoints,
            server_ssl: self.server_ssl,
            client_ssl: self.client_ssl,
            args: self.args,
            proc: None,
            stopped: false,
            dir,
        };
        server.launch()?;
        Ok(server)
    }
}

/// A running (or deliberately killed/stopped) `ovsdb-server` with one database.
///
/// Files in [`Server::dir`]: `db.db` (database), `db.sock` (unix listener), `db.ctl` (its
/// `--unixctl` socket), `ovsdb-server.log` (its `--log-file`), `ovsdb-server.out` (stdout and
/// stderr). Dropping the server kills the process and removes the directory.
pub struct Server {
    name: String,
    db_name: String,
    db_file: PathBuf,
    ctl: PathBuf,
    log: PathBuf,
    out: PathBuf,
    sock: PathBuf,
    endpoints: Vec<Endpoint>,
    server_ssl: Option<SslFiles>,
    client_ssl: Option<SslFiles>,
    args: Vec<String>,
    proc: Option<Proc>,
    stopped: bool,
    // Last: dropped after the process is gone.
    dir: TestDir,
}

impl Server {
    /// Starts a standalone server for `schema` listening on `listen`.
    pub fn standalone(schema: impl AsRef<Path>, listen: Listen) -> Result<Server> {
        Server::builder(schema).listen(listen).start()
    }

    /// Starts a standalone server with a single `pssl:` listener using the PKI's server key pair
    /// and CA; [`Server::remote`] is `ssl:127.0.0.1:<port>` and [`Server::client`] uses the PKI's
    /// client key pair.
    pub fn standalone_ssl(schema: impl AsRef<Path>, pki: &Pki) -> Result<Server> {
        Server::builder(schema).ssl(pki).start()
    }

    pub fn builder(schema: impl AsRef<Path>) -> ServerBuilder {
        ServerBuilder {
            schema: schema.as_ref().to_path_buf(),
            name: "ovsdb-server".to_string(),
            endpoints: Vec::new(),
            server_ssl: None,
            client_ssl: None,
            args: Vec::new(),
            prepared: None,
        }
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new("ovsdb-server");
        isolate_env(&mut cmd, self.dir.path());
        cmd.arg(&self.db_file)
            .arg(format!("--unixctl={}", self.ctl.display()))
            .arg(format!("--log-file={}", self.log.display()))
            .arg("-vconsole:off")
            .arg("--no-chdir");
        for e in &self.endpoints {
            cmd.arg(match e {
                Endpoint::Unix => format!("--remote=punix:{}", self.sock.display()),
                Endpoint::Tcp(p) => format!("--remote=ptcp:{p}:127.0.0.1"),
                Endpoint::Ssl(p) => format!("--remote=pssl:{p}:127.0.0.1"),
            });
        }
        if let Some(ssl) = &self.server_ssl {
            cmd.args(ssl.args());
        }
        cmd.args(&self.args);
        cmd
    }

    /// Starts the process and waits until all listeners accept connections; binds port-0
    /// listeners and records the port for later restarts.
    ///
    /// Under load (a big database file to read back after a `kill -9`, a 2-core machine shared
    /// with other tests) a server can take longer than [`START_TIMEOUT`] to listen, so the wait
    /// is adaptive: past [`START_TIMEOUT`] it goes on, up to [`START_TIMEOUT_MAX`], for as long
    /// as the process keeps making progress (its CPU time or its log grew during the last
    /// [`START_TIMEOUT`]). A start that still fails (timed out or exited) is retried once with a
    /// fresh process; the error then names both attempts.
    fn launch(&mut self) -> Result<()> {
        let first = match self.launch_once() {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        match self.launch_once() {
            Ok(()) => {
                eprintln!(
                    "harness: {} started on the second attempt; the first failed: {first:#}",
                    self.name
                );
                Ok(())
            }
            Err(second) => {
                Err(second.context(format!("second attempt (the first failed too: {first:#})")))
            }
        }
    }

    /// One start attempt of [`Server::launch`]; kills the process again if it fails.
    fn launch_once(&mut self) -> Result<()> {
        // A stale socket from a killed predecessor would look like a listener.
        let _ = std::fs::remove_file(&self.sock);
        let log_len_before = std::fs::metadata(&self.log).map(|m| m.len()).unwrap_or(0);
        let proc = Proc::spawn(
            &format!("{} ({})", self.name, self.db_name),
            self.command(),
            &self.out,
            Some(self.log.clone()),
        )?;
        let pid = proc.pid();
        self.proc = Some(proc);

        let started = Instant::now();
        let mut progress = StartProgress::new(pid, &self.log);
        let result = wait_for(START_TIMEOUT_MAX, || {
            match self.check_ready(log_len_before) {
                Ok(true) => return Some(Ok(())),
                Ok(false) => {}
                Err(e) => return Some(Err(e)),
            }
            let waited = started.elapsed();
            let moving = progress.moved_within(START_TIMEOUT);
            if waited >= START_TIMEOUT && !moving {
                return Some(Err(anyhow::anyhow!(
                    "{} did not start listening in {waited:.1?} (no progress in the last \
                     {START_TIMEOUT:?})",
                    self.name
                )));
            }
            None
        });
        let failure = match result {
            Some(Ok(())) => return Ok(()),
            Some(Err(e)) => e,
            None => anyhow::anyhow!(
                "{} did not start listening in {START_TIMEOUT_MAX:?}",
                self.name
            ),
        };
        if let Some(mut p) = self.proc.take() {
            p.kill();
        }
        Err(failure.context(format!(
            "starting {}{}{}",
            self.name,
            log_tail_msg(&self.log),
            log_tail_msg(&self.out)
        )))
    }

    fn check_ready(&mut self, log_offset: u64) -> Result<bool> {
        if let Some(p) = self.proc.as_mut() {
            p.ensure_running()?;
        }
        for i in 0..self.endpoints.len() {
            let ready = match self.endpoints[i] {
                Endpoint::Unix => UnixStream::connect(&self.sock).is_ok(),
                Endpoint::Tcp(0) | Endpoint::Ssl(0) => {
                    match bound_port(&self.log, log_offset, "0:127.0.0.1") {
                        Some(port) => {
                            self.endpoints[i] = match self.endpoints[i] {
                                Endpoint::Tcp(_) => Endpoint::Tcp(port),
                                _ => Endpoint::Ssl(port),
                            };
                            TcpStream::connect(("127.0.0.1", port)).is_ok()
                        }
                        None => false,
                    }
                }
                Endpoint::Tcp(port) | Endpoint::Ssl(port) => {
                    TcpStream::connect(("127.0.0.1", port)).is_ok()
                }
            };
            if !ready {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn remote_of(&self, e: Endpoint) -> String {
        match e {
            Endpoint::Unix => format!("unix:{}", self.sock.display()),
            Endpoint::Tcp(p) => format!("tcp:127.0.0.1:{p}"),
            Endpoint::Ssl(p) => format!("ssl:127.0.0.1:{p}"),
        }
    }

    /// The client remote of the first listener: `unix:/…/db.sock`, `tcp:127.0.0.1:PORT` or
    /// `ssl:127.0.0.1:PORT`.
    pub fn remote(&self) -> String {
        self.remote_of(self.endpoints[0])
    }

    /// Client remotes of all listeners, in the order they were configured.
    pub fn remotes(&self) -> Vec<String> {
        self.endpoints.iter().map(|e| self.remote_of(*e)).collect()
    }

    /// `unix:` remote, if the server listens on a unix socket.
    pub fn unix_remote(&self) -> Option<String> {
        self.endpoints
            .contains(&Endpoint::Unix)
            .then(|| self.remote_of(Endpoint::Unix))
    }

    /// `tcp:` remote, if the server listens on TCP.
    pub fn tcp_remote(&self) -> Option<String> {
        self.endpoints
            .iter()
            .find(|e| matches!(e, Endpoint::Tcp(_)))
            .map(|e| self.remote_of(*e))
    }

    /// `ssl:` remote, if the server listens with TLS.
    pub fn ssl_remote(&self) -> Option<String> {
        self.endpoints
            .iter()
            .find(|e| matches!(e, Endpoint::Ssl(_)))
            .map(|e| self.remote_of(*e))
    }

    /// The TCP or SSL port, if any.
    pub fn port(&self) -> Option<u16> {
        self.endpoints.iter().find_map(|e| match e {
            Endpoint::Tcp(p) | Endpoint::Ssl(p) => Some(*p),
            Endpoint::Unix => None,
        })
    }

    /// Database name from the schema, e.g. `OVN_IC_Southbound`.
    pub fn db_name(&self) -> &str {
        &self.db_name
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn db_path(&self) -> &Path {
        &self.db_file
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    pub fn ctl_path(&self) -> &Path {
        &self.ctl
    }

    /// The client key pair matching an SSL server's PKI.
    pub fn client_ssl(&self) -> Option<&SslFiles> {
        self.client_ssl.as_ref()
    }

    /// Pid of the current process, `None` after [`Server::kill`].
    pub fn pid(&self) -> Option<u32> {
        self.proc.as_ref().map(Proc::pid)
    }

    /// Whether the process is alive (stopped counts as alive).
    pub fn is_running(&mut self) -> bool {
        self.proc.as_mut().is_some_and(Proc::is_running)
    }

    /// Whether [`Server::stop`] was called without a [`Server::cont`] since.
    pub fn is_stopped(&self) -> bool {
        self.stopped
    }

    /// `kill -9` and reap; the database file stays for [`Server::restart`].
    pub fn kill(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.kill();
        }
        self.stopped = false;
    }

    /// (Kills if needed and) starts again on the same database file, socket path and port.
    pub fn restart(&mut self) -> Result<()> {
        self.kill();
        self.launch()
    }

    /// `SIGSTOP`: the server keeps its sockets but stops answering.
    pub fn stop(&mut self) -> Result<()> {
        match self.proc.as_mut() {
            Some(p) => p.stop()?,
            None => bail!("{} is not running", self.name),
        }
        self.stopped = true;
        Ok(())
    }

    /// `SIGCONT` after [`Server::stop`].
    pub fn cont(&mut self) -> Result<()> {
        match self.proc.as_mut() {
            Some(p) => p.cont()?,
            None => bail!("{} is not running", self.name),
        }
        self.stopped = false;
        Ok(())
    }

    /// `ovs-appctl -t <ctl> ARGS...`, returning stdout.
    pub fn appctl(&self, args: &[&str]) -> Result<String> {
        super::client::appctl(&self.ctl, args)
    }

    /// A client for this server (with the matching client key pair for SSL servers).
    pub fn client(&self) -> Client {
        let c = Client::new();
        match &self.client_ssl {
            Some(ssl) => c.ssl(ssl.clone()),
            None => c,
        }
    }

    /// `ovsdb-client dump` of this server's database, see [`super::dump`].
    pub fn dump(&self) -> Result<Value> {
        self.client().dump(&self.remote(), &self.db_name)
    }

    /// `ovsdb-client transact` of `ops` (a JSON array of operations; the database name is
    /// prepended), returning the result array. Fails if any operation failed.
    pub fn transact(&self, ops: Value) -> Result<Value> {
        let Value::Array(ops) = ops else {
            bail!("transact: operations must be a JSON array");
        };
        let mut params = vec![Value::String(self.db_name.clone())];
        params.extend(ops);
        self.client()
            .transact_ok(&self.remote(), &Value::Array(params))
            .with_context(|| format!("transaction on {}", self.name))
    }
}

/// The port from the first `|<target>: listening on port N` line after `offset` in `log`.
/// Only complete lines count, so a half-written number is never read.
pub(crate) fn bound_port(log: &Path, offset: u64, target: &str) -> Option<u16> {
    let text = std::fs::read(log).ok()?;
    let text = String::from_utf8_lossy(text.get(offset as usize..)?);
    let needle = format!("|{target}: listening on port ");
    let end = text.rfind('\n')?;
    text[..end].lines().find_map(|line| {
        let i = line.find(&needle)?;
        line[i + needle.len()..].trim().parse().ok()
    })
}

/// Whether a starting process is still making progress: its CPU time (`/proc/PID/stat`) or the
/// size of its log file grew. Remembers when either last moved.
struct StartProgress {
    pid: u32,
    log: PathBuf,
    last: (u64, u64),
    moved_at: Instant,
}

impl StartProgress {
    fn new(pid: u32, log: &Path) -> StartProgress {
        let mut p = StartProgress {
            pid,
            log: log.to_path_buf(),
            last: (0, 0),
            moved_at: Instant::now(),
        };
        p.last = p.now();
        p
    }

    /// (CPU ticks, log length) now; zeros for what cannot be read.
    fn now(&self) -> (u64, u64) {
        let log_len = std::fs::metadata(&self.log).map(|m| m.len()).unwrap_or(0);
        (cpu_ticks(self.pid).unwrap_or(0), log_len)
    }

    /// Whether the process moved within the last `window`.
    fn moved_within(&mut self, window: Duration) -> bool {
        let now = self.now();
        if now != self.last {
            self.last = now;
            self.moved_at = Instant::now();
        }
        self.moved_at.elapsed() < window
    }
}

/// utime + stime of a process in clock ticks, from `/proc/PID/stat`.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain spaces: split after it.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state); utime and stime are fields 14 and 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}
