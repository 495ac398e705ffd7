//! The control socket (`ovn-appctl`), spec ovsdb-protocol.md §12 and ovn-ic-core.md §3.6.
//!
//! * [`bind`] creates the listening Unix socket synchronously (before start-up completion, so
//!   its failure is a start-up error): stale file unlinked, mode 0770 (`fchmod` before `bind`,
//!   as OVS does on Linux; the umask still applies), registered for unlink at exit.
//! * [`serve`] runs the accept loop on the tokio runtime. Each connection is handled by its own
//!   task, one request at a time: the next request is not processed before the previous one is
//!   answered. Anything that is not a JSON-RPC request (or does not parse) closes the connection.
//! * A [`Registry`] maps command names to handlers. [`Handler::Direct`] commands are answered by
//!   the connection task (vlog, coverage, version, ...); [`Handler::Forward`] commands are sent to
//!   the main loop as a [`Request`] carrying a oneshot for the reply, so the loop answers with its
//!   own state.
//!
//! Replies: `{"result":TEXT,"error":null,"id":I}` or `{"result":null,"error":TEXT,"id":I}`.
//! Like the OVS 3.1 library of the Debian build, a non-empty text that lacks a final newline gets
//! one ([`APPEND_NEWLINE`]); newer clients add the newline themselves when printing, older ones
//! do not, so this gives identical `ovn-appctl` output with both.

use std::collections::BTreeMap;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use nix::sys::socket::{self, AddressFamily, Backlog, SockFlag, SockType, UnixAddr};
use nix::sys::stat::Mode;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot, Notify};

use super::coverage;
use super::signals;
use super::strerror;
use crate::ovsdb::jsonrpc::{Framer, Message};

/// Append `\n` to non-empty reply and error texts that lack one (see the module docs).
pub const APPEND_NEWLINE: bool = true;

/// A command's outcome: `Ok(text)` for a reply, `Err(text)` for an error reply.
pub type Reply = Result<String, String>;

type DirectFn = dyn Fn(&[String]) -> Reply + Send + Sync;

/// How a command is answered.
#[derive(Clone)]
pub enum Handler {
    /// Answered by the connection task from the arguments alone.
    Direct(Arc<DirectFn>),
    /// Sent to the main loop as a [`Request`].
    Forward,
}

impl Handler {
    pub fn direct(f: impl Fn(&[String]) -> Reply + Send + Sync + 'static) -> Handler {
        Handler::Direct(Arc::new(f))
    }
}

struct Entry {
    usage: String,
    min_args: usize,
    max_args: usize,
    handler: Handler,
}

/// The registered commands. `list-commands` is built in.
pub struct Registry {
    commands: BTreeMap<String, Entry>,
}

impl Default for Registry {
    fn default() -> Self {
        Registry::new()
    }
}

/// What the connection task does with a request.
#[derive(Debug, PartialEq)]
pub enum Route {
    Reply(Reply),
    Forward { command: String, args: Vec<String> },
}

impl Registry {
    pub fn new() -> Registry {
        let mut r = Registry {
            commands: BTreeMap::new(),
        };
        // Placeholder handler: answered in `route`, which needs the registry itself.
        r.register("list-commands", "", 0, 0, Handler::Forward);
        r
    }

    /// Register (or replace) `name` with `usage` (shown by `list-commands`) accepting between
    /// `min_args` and `max_args` string arguments (`usize::MAX` for "any number").
    pub fn register(
        &mut self,
        name: &str,
        usage: &str,
        min_args: usize,
        max_args: usize,
        handler: Handler,
    ) {
        self.commands.insert(
            name.to_string(),
            Entry {
                usage: usage.to_string(),
                min_args,
                max_args,
                handler,
            },
        );
    }

    pub fn contains(&self, name: &str) -> bool {
        self.commands.contains_key(name)
    }

    /// `list-commands` reply.
    pub fn list_commands(&self) -> String {
        let mut s = String::from("The available commands are:\n");
        for (name, e) in &self.commands {
            s.push_str(&format!("  {:<23} {}\n", name, e.usage));
        }
        s
    }

    /// Validate a request exactly as OVS's `process_command` (unknown command, then arity,
    /// then argument types) and answer or route it.
    pub fn route(&self, method: &str, params: &[Value]) -> Route {
        let Some(entry) = self.commands.get(method) else {
            return Route::Reply(Err(format!(
                "\"{method}\" is not a valid command (use \"list-commands\" to see a list of valid commands)"
            )));
        };
        if params.len() < entry.min_args {
            return Route::Reply(Err(format!(
                "\"{method}\" command requires at least {} arguments",
                entry.min_args
            )));
        }
        if params.len() > entry.max_args {
            return Route::Reply(Err(format!(
                "\"{method}\" command takes at most {} arguments",
                entry.max_args
            )));
        }
        let mut args = Vec::with_capacity(params.len());
        for p in params {
            match p {
                Value::String(s) => args.push(s.clone()),
                _ => {
                    return Route::Reply(Err(format!(
                        "\"{method}\" command has non-string argument"
                    )))
                }
            }
        }
        if method == "list-commands" {
            return Route::Reply(Ok(self.list_commands()));
        }
        match &entry.handler {
            Handler::Direct(f) => Route::Reply(f(&args)),
            Handler::Forward => Route::Forward {
                command: method.to_string(),
                args,
            },
        }
    }
}

/// A command forwarded to the main loop. Answer it with [`Request::reply`]; dropping it
/// unanswered closes the client's connection.
#[derive(Debug)]
pub struct Request {
    pub command: String,
    pub args: Vec<String>,
    reply: oneshot::Sender<Reply>,
}

impl Request {
    /// For tests and for callers that build requests themselves.
    pub fn new(command: &str, args: Vec<String>) -> (Request, oneshot::Receiver<Reply>) {
        let (tx, rx) = oneshot::channel();
        (
            Request {
                command: command.to_string(),
                args,
                reply: tx,
            },
            rx,
        )
    }

    pub fn reply(self, r: Reply) {
        let _ = self.reply.send(r);
    }
}

/// The socket path: `--unixctl=PATH` (relative to the rundir; `none` is just a name) or
/// `<rundir>/ovn-ic.<pid>.ctl`.
pub fn socket_path(rundir: &Path, unixctl: Option<&Path>, pid: u32) -> PathBuf {
    match unixctl {
        Some(p) => rundir.join(p),
        None => rundir.join(format!("{}.{pid}.ctl", super::PROGRAM)),
    }
}

/// A control-socket creation failure, printed as `ovn-ic: <this>` before exiting 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: could not initialize control socket ({reason})")]
pub struct BindError {
    pub path: String,
    pub reason: String,
}

/// Create the listening socket at `path` (see the module docs). Logs the `stream_unix` ERR
/// line on failure, as OVS does.
pub fn bind(path: &Path) -> Result<std::os::unix::net::UnixListener, BindError> {
    signals::add_file_to_unlink(path);
    if let Err(e) = std::fs::remove_file(path) {
        if e.kind() != io::ErrorKind::NotFound {
            tracing::warn!(target: "stream_unix", "{}: unlink failed ({})", path.display(), strerror(&e));
        }
    }
    bind_inner(path).map_err(|(what, e)| {
        tracing::error!(target: "stream_unix", "{}: {what} failed: {}", path.display(), e.desc());
        signals::remove_file_to_unlink(path);
        BindError {
            path: path.display().to_string(),
            reason: e.desc().to_string(),
        }
    })
}

fn bind_inner(
    path: &Path,
) -> Result<std::os::unix::net::UnixListener, (&'static str, nix::errno::Errno)> {
    let fd: OwnedFd = socket::socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| ("socket", e))?;
    // On Linux the socket inode's mode becomes the file's mode (minus the umask).
    nix::sys::stat::fchmod(fd.as_raw_fd(), Mode::from_bits_truncate(0o770))
        .map_err(|e| ("fchmod", e))?;
    // sun_path holds 107 bytes: for longer paths bind through /proc/self/fd/<dirfd>/<name>.
    let _dir_guard;
    let addr = match UnixAddr::new(path) {
        Ok(a) => a,
        Err(_) => {
            let dir = path
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            let name = path
                .file_name()
                .ok_or(("binding", nix::errno::Errno::ENAMETOOLONG))?;
            let dfd = nix::fcntl::open(
                dir,
                nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| ("binding", e))?;
            // SAFETY: `open` just returned this descriptor and nothing else owns it.
            _dir_guard = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(dfd) };
            let short = Path::new("/proc/self/fd").join(dfd.to_string()).join(name);
            UnixAddr::new(&short).map_err(|e| ("binding", e))?
        }
    };
    socket::bind(fd.as_raw_fd(), &addr).map_err(|e| ("binding", e))?;
    socket::listen(&fd, Backlog::new(64).unwrap_or(Backlog::MAXCONN)).map_err(|e| ("listen", e))?;
    let l = std::os::unix::net::UnixListener::from(fd);
    l.set_nonblocking(true).map_err(|e| {
        (
            "fcntl",
            nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(0)),
        )
    })?;
    Ok(l)
}

/// Replies being computed or written; lets the daemon flush the `exit` reply before leaving.
#[derive(Default)]
struct Busy {
    n: AtomicUsize,
    idle: Notify,
}

impl Busy {
    fn enter(&self) {
        self.n.fetch_add(1, Ordering::SeqCst);
    }
    fn leave(&self) {
        if self.n.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.idle.notify_waiters();
        }
    }
}

/// The running server.
pub struct Server {
    busy: Arc<Busy>,
    accept: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Stop accepting and wait (at most `timeout`) until every started reply has been written.
    pub async fn shutdown(self, timeout: Duration) {
        self.accept.abort();
        let busy = self.busy.clone();
        let _ = tokio::time::timeout(timeout, async move {
            loop {
                let idle = busy.idle.notified();
                if busy.n.load(Ordering::SeqCst) == 0 {
                    return;
                }
                idle.await;
            }
        })
        .await;
    }
}

/// Start serving `listener` (from [`bind`]) on the current tokio runtime.
pub fn serve(
    listener: std::os::unix::net::UnixListener,
    registry: Arc<Registry>,
    forward: mpsc::UnboundedSender<Request>,
) -> io::Result<Server> {
    let listener = UnixListener::from_std(listener)?;
    let busy = Arc::new(Busy::default());
    let b = busy.clone();
    let accept = tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    coverage::inc(coverage::PSTREAM_OPEN);
                    tokio::spawn(connection(
                        stream,
                        registry.clone(),
                        forward.clone(),
                        b.clone(),
                    ));
                }
                Err(e) => {
                    tracing::warn!(target: "unixctl", "accept failed: {}", strerror(&e));
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    });
    Ok(Server { busy, accept })
}

fn finish_text(s: String) -> String {
    if APPEND_NEWLINE && !s.is_empty() && !s.ends_with('\n') {
        s + "\n"
    } else {
        s
    }
}

/// The wire message for `reply` to request `id`.
pub fn reply_message(reply: Reply, id: Value) -> Message {
    match reply {
        Ok(text) => Message::Reply {
            result: Value::String(finish_text(text)),
            id,
        },
        Err(text) => Message::Error {
            error: Value::String(finish_text(text)),
            id,
        },
    }
}

async fn connection(
    mut stream: UnixStream,
    registry: Arc<Registry>,
    forward: mpsc::UnboundedSender<Request>,
    busy: Arc<Busy>,
) {
    let mut framer = Framer::new();
    let mut buf = vec![0u8; 4096];
    loop {
        loop {
            let msg = match framer.next_message() {
                Ok(Some(m)) => m,
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(target: "unixctl", "control connection: {e}");
                    return;
                }
            };
            let Message::Request { method, params, id } = msg else {
                tracing::warn!(target: "unixctl", "control connection: received unexpected non-request message");
                return;
            };
            coverage::inc(coverage::UNIXCTL_RECEIVED);
            tracing::debug!(target: "unixctl", "received request {method}{params:?}, id={id}");
            busy.enter();
            let ok = answer(&mut stream, &registry, &forward, method, params, id).await;
            busy.leave();
            if !ok {
                return;
            }
        }
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => {
                if let Ok(Some(_)) = framer.finish_eof() {
                    tracing::warn!(target: "unixctl", "control connection: trailing data at end of stream");
                }
                return;
            }
            Ok(n) => framer.push(&buf[..n]),
        }
    }
}

async fn answer(
    stream: &mut UnixStream,
    registry: &Registry,
    forward: &mpsc::UnboundedSender<Request>,
    method: String,
    params: Vec<Value>,
    id: Value,
) -> bool {
    let reply = match registry.route(&method, &params) {
        Route::Reply(r) => r,
        Route::Forward { command, args } => {
            let (req, rx) = Request::new(&command, args);
            if forward.send(req).is_err() {
                return false;
            }
            match rx.await {
                Ok(r) => r,
                Err(_) => return false,
            }
        }
    };
    tracing::debug!(target: "unixctl", "replying to id={id}: {reply:?}");
    let bytes = reply_message(reply, id).to_bytes();
    if stream.write_all(&bytes).await.is_err() {
        return false;
    }
    coverage::inc(coverage::UNIXCTL_REPLIED);
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn registry() -> Registry {
        let mut r = Registry::new();
        r.register("exit", "", 0, 0, Handler::Forward);
        r.register(
            "vlog/set",
            "{spec | PATTERN:destination:pattern}",
            0,
            usize::MAX,
            Handler::direct(|a| Ok(a.join(","))),
        );
        r.register(
            "coverage/read-counter",
            "COUNTER",
            1,
            1,
            Handler::direct(|a| Err(format!("no {}", a[0]))),
        );
        r
    }

    #[test]
    fn errors_are_exact() {
        let r = registry();
        assert_eq!(
            r.route("bogus", &[]),
            Route::Reply(Err(
                "\"bogus\" is not a valid command (use \"list-commands\" to see a list of valid commands)".into()
            ))
        );
        assert_eq!(
            r.route("exit", &[json!("x")]),
            Route::Reply(Err("\"exit\" command takes at most 0 arguments".into()))
        );
        assert_eq!(
            r.route("coverage/read-counter", &[]),
            Route::Reply(Err(
                "\"coverage/read-counter\" command requires at least 1 arguments".into()
            ))
        );
        // Arity is checked before the argument types.
        assert_eq!(
            r.route("exit", &[json!(1)]),
            Route::Reply(Err("\"exit\" command takes at most 0 arguments".into()))
        );
        assert_eq!(
            r.route("vlog/set", &[json!("a"), json!(1)]),
            Route::Reply(Err("\"vlog/set\" command has non-string argument".into()))
        );
    }

    #[test]
    fn routing() {
        let r = registry();
        assert_eq!(
            r.route("exit", &[]),
            Route::Forward {
                command: "exit".into(),
                args: vec![]
            }
        );
        assert_eq!(
            r.route("vlog/set", &[json!("a"), json!("b")]),
            Route::Reply(Ok("a,b".into()))
        );
        assert_eq!(
            r.route("coverage/read-counter", &[json!("c")]),
            Route::Reply(Err("no c".into()))
        );
    }

    #[test]
    fn list_commands_format() {
        let r = registry();
        let Route::Reply(Ok(text)) = r.route("list-commands", &[]) else {
            panic!()
        };
        assert_eq!(
            text,
            "The available commands are:\n\
             \x20 coverage/read-counter   COUNTER\n\
             \x20 exit                    \n\
             \x20 list-commands           \n\
             \x20 vlog/set                {spec | PATTERN:destination:pattern}\n"
        );
    }

    #[test]
    fn wire_form() {
        let m = reply_message(Ok("false".into()), json!(0));
        assert_eq!(m.to_json(), json!({"result":"false\n","error":null,"id":0}));
        let m = reply_message(Ok(String::new()), json!(1));
        assert_eq!(m.to_json(), json!({"result":"","error":null,"id":1}));
        let m = reply_message(Err("bad\n".into()), json!("x"));
        assert_eq!(m.to_json(), json!({"result":null,"error":"bad\n","id":"x"}));
    }

    #[test]
    fn socket_paths() {
        let rd = Path::new("/run/ovn");
        assert_eq!(
            socket_path(rd, None, 42),
            PathBuf::from("/run/ovn/ovn-ic.42.ctl")
        );
        assert_eq!(
            socket_path(rd, Some(Path::new("none")), 42),
            PathBuf::from("/run/ovn/none")
        );
        assert_eq!(
            socket_path(rd, Some(Path::new("/tmp/x.ctl")), 42),
            PathBuf::from("/tmp/x.ctl")
        );
    }

    async fn roundtrip(path: &Path, reqs: &[Value]) -> Vec<Value> {
        let mut s = UnixStream::connect(path).await.unwrap();
        let mut out = vec![];
        let mut f = Framer::new();
        let mut buf = vec![0u8; 4096];
        for r in reqs {
            s.write_all(r.to_string().as_bytes()).await.unwrap();
            loop {
                if let Some(v) = f.next_value().unwrap() {
                    out.push(v);
                    break;
                }
                let n = s.read(&mut buf).await.unwrap();
                if n == 0 {
                    return out;
                }
                f.push(&buf[..n]);
            }
        }
        out
    }

    #[test]
    fn serves_over_a_real_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.ctl");
        std::fs::write(&path, "stale").unwrap();
        let l = bind(&path).unwrap();
        use std::os::unix::fs::{FileTypeExt, PermissionsExt};
        let meta = std::fs::metadata(&path).unwrap();
        assert!(meta.file_type().is_socket());
        assert_eq!(meta.permissions().mode() & 0o007, 0, "no access for others");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let (tx, mut rx) = mpsc::unbounded_channel();
            let server = serve(l, Arc::new(registry()), tx).unwrap();
            // The "main loop": answers exit.
            let main = tokio::spawn(async move {
                while let Some(req) = rx.recv().await {
                    assert_eq!(req.command, "exit");
                    req.reply(Ok(String::new()));
                }
            });
            let got = roundtrip(
                &path,
                &[
                    json!({"method":"vlog/set","params":["x","y"],"id":1}),
                    json!({"method":"exit","params":[],"id":2}),
                    json!({"method":"bogus","params":[],"id":3}),
                ],
            )
            .await;
            assert_eq!(got[0], json!({"result":"x,y\n","error":null,"id":1}));
            assert_eq!(got[1], json!({"result":"","error":null,"id":2}));
            assert_eq!(got[2]["result"], Value::Null);
            assert_eq!(got[2]["id"], json!(3));
            // A notification is not a request: the server hangs up.
            let got = roundtrip(&path, &[json!({"method":"exit","params":[],"id":null})]).await;
            assert!(got.is_empty());
            server.shutdown(Duration::from_secs(1)).await;
            main.abort();
        });
        signals::remove_file_to_unlink(&path);
    }

    #[test]
    fn bind_failure_message() {
        let e = bind(Path::new("/nonexistent-dir-for-test/x.ctl")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "/nonexistent-dir-for-test/x.ctl: could not initialize control socket (No such file or directory)"
        );
    }

    #[test]
    fn long_paths_bind_via_proc() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("d".repeat(60)).join("e".repeat(60));
        std::fs::create_dir_all(&deep).unwrap();
        let path = deep.join("ovn-ic.1.ctl");
        assert!(path.as_os_str().len() > 108);
        let _l = bind(&path).unwrap();
        assert!(path.exists());
        signals::remove_file_to_unlink(&path);
    }
}
