//! Byte-stream transports: unix, tcp (TCP_NODELAY), ssl over tcp, and the passive forms.
//!
//! Errors are `io::Error`s whose text is meant for log lines; [`error_text`] turns one into the
//! `strerror()`-style text the C library prints ("Connection refused"). A connect that runs
//! out of time fails with `ErrorKind::TimedOut`; the C library reports that case as
//! "connection attempt timed out" (the session should call `Reconnect::disconnected(now, None)`).

use std::fs::File;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::Duration;

use openssl::ssl::{Ssl, SslConnector};
use openssl::x509::X509VerifyResult;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio_openssl::SslStream;

use super::remote::Remote;
use super::ssl::{SslContext, SslError};

pub trait AsyncStream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> AsyncStream for T {}

pub type BoxedStream = Pin<Box<dyn AsyncStream>>;

/// Open a stream to `remote` within `timeout` (connect attempt timeout, §9). For passive remotes,
/// listen and accept one connection. For ssl, run the handshake with the shared context.
pub async fn connect(
    remote: &Remote,
    ssl: Option<&SslContext>,
    timeout: Duration,
) -> std::io::Result<BoxedStream> {
    match tokio::time::timeout(timeout, open(remote, ssl)).await {
        Ok(r) => r,
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "connection attempt timed out",
        )),
    }
}

/// The C library's text for an error: `strerror()` for OS errors (without Rust's
/// " (os error N)" suffix), "End of file" for EOF, the message otherwise.
pub fn error_text(e: &io::Error) -> String {
    if let Some(code) = e.raw_os_error() {
        return nix::errno::Errno::from_raw(code).desc().to_string();
    }
    if e.kind() == io::ErrorKind::UnexpectedEof {
        return "End of file".to_string();
    }
    e.to_string()
}

async fn open(remote: &Remote, ssl: Option<&SslContext>) -> io::Result<BoxedStream> {
    match remote {
        Remote::Unix(path) => Ok(Box::pin(unix_connect(path).await?)),
        Remote::Tcp(addr) => Ok(Box::pin(tcp_connect(*addr).await?)),
        Remote::Ssl(addr) => {
            let ctx = need_ssl(ssl)?;
            // Like the C library, refuse before connecting when SSL is not usable.
            let connector = ctx.connector().map_err(io::Error::other)?;
            let tcp = tcp_connect(*addr).await?;
            Ok(Box::pin(
                ssl_client(&connector, ctx.server_name().as_deref(), tcp).await?,
            ))
        }
        Remote::PUnix(path) => {
            let listener = unix_listen(path)?;
            let (stream, _) = listener.accept().await?;
            Ok(Box::pin(stream))
        }
        Remote::PTcp(addr) => {
            let listener = tcp_listen(*addr).await?;
            Ok(Box::pin(tcp_accept(&listener).await?))
        }
        Remote::PSsl(addr) => {
            let ctx = need_ssl(ssl)?;
            let connector = ctx.connector().map_err(io::Error::other)?;
            let listener = tcp_listen(*addr).await?;
            let tcp = tcp_accept(&listener).await?;
            drop(listener);
            Ok(Box::pin(ssl_server(&connector, tcp).await?))
        }
    }
}

fn need_ssl(ssl: Option<&SslContext>) -> io::Result<&SslContext> {
    ssl.ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::Unsupported,
            "SSL remote but no SSL configuration (--private-key, --certificate, --ca-cert)",
        )
    })
}

/// `sun_path` size on Linux.
const SUN_PATH_MAX: usize = 108;

/// A path short enough for `sun_path`: long paths are reached through `/proc/self/fd/N/NAME`
/// with N an open descriptor of the directory (kept alive by the returned `File`).
fn short_unix_path(path: &Path) -> io::Result<(PathBuf, Option<File>)> {
    if path.as_os_str().len() < SUN_PATH_MAX {
        return Ok((path.to_path_buf(), None));
    }
    let too_long = || {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{}: socket path too long", path.display()),
        )
    };
    let name = path.file_name().ok_or_else(too_long)?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let dir = File::open(dir)?;
    let short = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd())).join(name);
    if short.as_os_str().len() >= SUN_PATH_MAX {
        return Err(too_long());
    }
    Ok((short, Some(dir)))
}

async fn unix_connect(path: &Path) -> io::Result<UnixStream> {
    let (p, _dir) = short_unix_path(path)?;
    UnixStream::connect(&p)
        .await
        .map_err(|e| with_context(e, path.display()))
}

/// Removes the listening socket's file when the (one-shot) listener goes away.
struct UnlinkOnDrop(PathBuf);

impl Drop for UnlinkOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

struct PUnixListener {
    listener: UnixListener,
    _unlink: UnlinkOnDrop,
}

impl PUnixListener {
    async fn accept(&self) -> io::Result<(UnixStream, tokio::net::unix::SocketAddr)> {
        self.listener.accept().await
    }
}

/// Bind a listening Unix socket as OVS does: unlink a stale file, fchmod the socket 0770 before
/// bind (on Linux the socket's mode becomes the file's mode, still subject to the umask).
fn unix_listen(path: &Path) -> io::Result<PUnixListener> {
    use nix::sys::socket::{self, AddressFamily, Backlog, SockFlag, SockType, UnixAddr};
    use nix::sys::stat::{fchmod, Mode};

    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(with_context(e, path.display())),
    }
    let (p, _dir) = short_unix_path(path)?;
    let fd: OwnedFd = socket::socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )?;
    fchmod(fd.as_raw_fd(), Mode::from_bits_truncate(0o770))?;
    let addr = UnixAddr::new(&p)?;
    socket::bind(fd.as_raw_fd(), &addr).map_err(|e| with_context(e.into(), path.display()))?;
    let unlink = UnlinkOnDrop(path.to_path_buf());
    socket::listen(&fd, Backlog::new(10)?)?;
    let std_listener = std::os::unix::net::UnixListener::from(fd);
    Ok(PUnixListener {
        listener: UnixListener::from_std(std_listener)?,
        _unlink: unlink,
    })
}

async fn tcp_connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let s = TcpStream::connect(addr)
        .await
        .map_err(|e| with_context(e, addr))?;
    s.set_nodelay(true)?;
    Ok(s)
}

async fn tcp_listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let l = TcpListener::bind(addr)
        .await
        .map_err(|e| with_context(e, addr))?;
    if addr.port() == 0 {
        tracing::info!(
            target: "socket_util",
            "{addr}: listening on port {}",
            l.local_addr()?.port()
        );
    }
    Ok(l)
}

async fn tcp_accept(l: &TcpListener) -> io::Result<TcpStream> {
    let (s, _) = l.accept().await?;
    s.set_nodelay(true)?;
    Ok(s)
}

/// Keep the OS error (and so `raw_os_error()`/`error_text`) but name what failed.
fn with_context(e: io::Error, what: impl std::fmt::Display) -> io::Error {
    if e.raw_os_error().is_some() {
        // The kind and errno stay; the log line shows strerror via error_text().
        e
    } else {
        io::Error::new(e.kind(), format!("{what}: {e}"))
    }
}

fn ssl_setup_error(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(SslError::Config(e.to_string()))
}

fn handshake_error(s: &SslStream<TcpStream>, e: openssl::ssl::Error) -> io::Error {
    let verify = s.ssl().verify_result();
    let msg = if verify != X509VerifyResult::OK {
        format!("certificate verify failed ({})", verify.error_string())
    } else if let Some(io) = e.io_error() {
        error_text(io)
    } else {
        e.to_string()
    };
    io::Error::new(io::ErrorKind::ConnectionAborted, SslError::Handshake(msg))
}

/// Client handshake: chain-to-CA verification only (no host name check); SNI only with
/// `--ssl-server-name` (remotes are IP literals, which never get SNI).
async fn ssl_client(
    connector: &SslConnector,
    server_name: Option<&str>,
    tcp: TcpStream,
) -> io::Result<SslStream<TcpStream>> {
    let mut cfg = connector.configure().map_err(ssl_setup_error)?;
    cfg.set_verify_hostname(false);
    cfg.set_use_server_name_indication(server_name.is_some());
    let ssl = cfg
        .into_ssl(server_name.unwrap_or(""))
        .map_err(ssl_setup_error)?;
    let mut s = SslStream::new(ssl, tcp).map_err(ssl_setup_error)?;
    match Pin::new(&mut s).connect().await {
        Ok(()) => Ok(s),
        Err(e) => Err(handshake_error(&s, e)),
    }
}

/// Server handshake for `pssl:` with the same context (client certificate required).
async fn ssl_server(connector: &SslConnector, tcp: TcpStream) -> io::Result<SslStream<TcpStream>> {
    let ssl = Ssl::new(connector.context()).map_err(ssl_setup_error)?;
    let mut s = SslStream::new(ssl, tcp).map_err(ssl_setup_error)?;
    match Pin::new(&mut s).accept().await {
        Ok(()) => Ok(s),
        Err(e) => Err(handshake_error(&s, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::super::ssl::test_pki::{ca, leaf, Identity};
    use super::super::ssl::SslOptions;
    use super::*;
    use openssl::ssl::{SslAcceptor, SslMethod, SslVerifyMode};
    use openssl::x509::store::X509StoreBuilder;
    use std::os::unix::fs::PermissionsExt;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const T: Duration = Duration::from_secs(5);

    async fn echo_once<S: AsyncRead + AsyncWrite + Unpin>(mut s: S) {
        let mut buf = [0u8; 64];
        let n = s.read(&mut buf).await.unwrap();
        s.write_all(&buf[..n]).await.unwrap();
        s.flush().await.unwrap();
    }

    async fn roundtrip(s: &mut BoxedStream) {
        s.write_all(b"{\"id\":1}").await.unwrap();
        s.flush().await.unwrap();
        let mut buf = [0u8; 8];
        s.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"{\"id\":1}");
    }

    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    #[tokio::test]
    async fn unix_active() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sock");
        let l = UnixListener::bind(&path).unwrap();
        let srv = tokio::spawn(async move { echo_once(l.accept().await.unwrap().0).await });
        let mut s = connect(&Remote::Unix(path), None, T).await.unwrap();
        roundtrip(&mut s).await;
        srv.await.unwrap();
    }

    #[tokio::test]
    async fn unix_long_path() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("d".repeat(60)).join("e".repeat(60));
        std::fs::create_dir_all(&deep).unwrap();
        let path = deep.join("ovnsb_db.sock");
        assert!(path.as_os_str().len() >= SUN_PATH_MAX);
        // Passive side with the long path too.
        let p2 = path.clone();
        let srv = tokio::spawn(async move {
            let mut s = connect(&Remote::PUnix(p2), None, T).await.unwrap();
            echo_once(&mut s).await;
        });
        let mut s = loop {
            match connect(&Remote::Unix(path.clone()), None, T).await {
                Ok(s) => break s,
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        };
        roundtrip(&mut s).await;
        srv.await.unwrap();
    }

    #[tokio::test]
    async fn unix_refused_and_missing() {
        let dir = tempfile::tempdir().unwrap();
        let e = connect(&Remote::Unix(dir.path().join("nope")), None, T)
            .await
            .err()
            .unwrap();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert_eq!(error_text(&e), "No such file or directory");
    }

    #[tokio::test]
    async fn punix_unlinks_stale_file_and_sets_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.sock");
        std::fs::write(&path, "stale").unwrap();
        let p2 = path.clone();
        let srv = tokio::spawn(async move {
            let mut s = connect(&Remote::PUnix(p2), None, T).await.unwrap();
            echo_once(&mut s).await;
        });
        let c = loop {
            if let Ok(m) = std::fs::symlink_metadata(&path) {
                use std::os::unix::fs::FileTypeExt;
                if m.file_type().is_socket() {
                    let mode = m.permissions().mode() & 0o777;
                    assert_eq!(mode & 0o007, 0, "mode {mode:o}");
                    assert_eq!(mode & 0o700, 0o700, "mode {mode:o}");
                    break UnixStream::connect(&path).await.unwrap();
                }
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        let mut c: BoxedStream = Box::pin(c);
        roundtrip(&mut c).await;
        srv.await.unwrap();
        // The one-shot listener is gone and so is its file.
        assert!(!path.exists());
    }

    #[tokio::test]
    async fn tcp_active_sets_nodelay() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let srv = tokio::spawn(async move { echo_once(l.accept().await.unwrap().0).await });
        let s = tcp_connect(addr).await.unwrap();
        assert!(s.nodelay().unwrap());
        drop(s);
        srv.await.ok();

        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let srv = tokio::spawn(async move { echo_once(l.accept().await.unwrap().0).await });
        let mut s = connect(&Remote::Tcp(addr), None, T).await.unwrap();
        roundtrip(&mut s).await;
        srv.await.unwrap();
    }

    #[tokio::test]
    async fn tcp_refused() {
        let port = free_port();
        let e = connect(&Remote::Tcp(([127, 0, 0, 1], port).into()), None, T)
            .await
            .err()
            .unwrap();
        assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused);
        assert_eq!(error_text(&e), "Connection refused");
    }

    #[tokio::test]
    async fn ptcp_accepts_and_times_out() {
        let port = free_port();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let srv = tokio::spawn(async move {
            let mut s = connect(&Remote::PTcp(addr), None, T).await.unwrap();
            echo_once(&mut s).await;
        });
        let c = loop {
            match TcpStream::connect(addr).await {
                Ok(c) => break c,
                Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        };
        let mut c: BoxedStream = Box::pin(c);
        roundtrip(&mut c).await;
        srv.await.unwrap();

        // Nobody connects: bounded by the timeout.
        let addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let e = connect(&Remote::PTcp(addr), None, Duration::from_millis(100))
            .await
            .err()
            .unwrap();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
    }

    #[tokio::test]
    async fn ssl_without_context_or_config() {
        let addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let e = connect(&Remote::Ssl(addr), None, T).await.err().unwrap();
        assert_eq!(e.kind(), io::ErrorKind::Unsupported);
        let ctx = SslContext::new(SslOptions::default());
        let e = connect(&Remote::Ssl(addr), Some(&ctx), T)
            .await
            .err()
            .unwrap();
        assert_eq!(e.to_string(), "Private key must be configured to use SSL");
    }

    /// A PKI on disk: CA1 with a server and a client leaf, and an unrelated CA2 with a server.
    struct Pki {
        dir: tempfile::TempDir,
        ca1: Identity,
        ca2: Identity,
        server1: Identity,
        server2: Identity,
        client_opts: SslOptions,
    }

    fn pki() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let ca1 = ca("ovs CA 1");
        let ca2 = ca("unrelated CA 2");
        let server1 = leaf("ovnsb id:1234", &ca1);
        let server2 = leaf("ovnsb id:5678", &ca2);
        let client = leaf("ovn-ic", &ca1);
        let (key, cert) = client.write(dir.path(), "client");
        let ca_path = dir.path().join("cacert.pem");
        std::fs::write(&ca_path, ca1.cert_pem()).unwrap();
        Pki {
            client_opts: SslOptions {
                private_key: Some(key),
                certificate: Some(cert),
                ca_cert: Some(ca_path),
                ..Default::default()
            },
            dir,
            ca1,
            ca2,
            server1,
            server2,
        }
    }

    /// An in-process TLS server like ovsdb-server's pssl: requires a client certificate from
    /// `client_ca`, sends "hello" and returns the client's CN.
    async fn tls_server(
        id: &Identity,
        client_ca: &Identity,
    ) -> (SocketAddr, tokio::task::JoinHandle<Result<String, String>>) {
        let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls()).unwrap();
        b.set_private_key(&id.key).unwrap();
        b.set_certificate(&id.cert).unwrap();
        let mut store = X509StoreBuilder::new().unwrap();
        store.add_cert(client_ca.cert.clone()).unwrap();
        b.set_verify_cert_store(store.build()).unwrap();
        b.set_verify(SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT);
        let acceptor = b.build();
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let h = tokio::spawn(async move {
            let (tcp, _) = l.accept().await.map_err(|e| e.to_string())?;
            let ssl = Ssl::new(acceptor.context()).map_err(|e| e.to_string())?;
            let mut s = SslStream::new(ssl, tcp).map_err(|e| e.to_string())?;
            Pin::new(&mut s).accept().await.map_err(|e| e.to_string())?;
            let cn = s
                .ssl()
                .peer_certificate()
                .and_then(|c| {
                    c.subject_name()
                        .entries()
                        .next()
                        .and_then(|e| e.data().to_string().ok())
                })
                .unwrap_or_default();
            s.write_all(b"hello").await.map_err(|e| e.to_string())?;
            s.shutdown().await.ok();
            Ok(cn)
        });
        (addr, h)
    }

    #[tokio::test]
    async fn ssl_right_ca_works_without_hostname_check() {
        let p = pki();
        let (addr, srv) = tls_server(&p.server1, &p.ca1).await;
        let ctx = SslContext::new(p.client_opts.clone());
        // The server's cert names "ovnsb id:1234", not 127.0.0.1: must still be accepted.
        let mut s = connect(&Remote::Ssl(addr), Some(&ctx), T).await.unwrap();
        let mut buf = [0u8; 5];
        s.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"hello");
        assert_eq!(srv.await.unwrap(), Ok("ovn-ic".to_string()));
    }

    #[tokio::test]
    async fn ssl_server_from_other_ca_is_refused() {
        let p = pki();
        let (addr, srv) = tls_server(&p.server2, &p.ca1).await;
        let ctx = SslContext::new(p.client_opts.clone());
        let e = connect(&Remote::Ssl(addr), Some(&ctx), T)
            .await
            .err()
            .unwrap();
        let text = e.to_string();
        assert!(
            text.starts_with("SSL handshake failed: certificate verify failed"),
            "{text}"
        );
        assert!(srv.await.unwrap().is_err());
    }

    #[tokio::test]
    async fn ssl_client_not_trusted_by_server_fails() {
        let p = pki();
        // The server only accepts clients from CA2; ours is from CA1.
        let (addr, srv) = tls_server(&p.server1, &p.ca2).await;
        let ctx = SslContext::new(p.client_opts.clone());
        match connect(&Remote::Ssl(addr), Some(&ctx), T).await {
            Err(_) => {}
            // TLS 1.3: the client finishes first; the server's alert arrives on the first read.
            Ok(mut s) => {
                let mut buf = [0u8; 5];
                assert!(s.read_exact(&mut buf).await.is_err());
            }
        }
        assert!(srv.await.unwrap().is_err());
    }

    #[tokio::test]
    async fn ssl_ca_none_accepts_any_server() {
        let p = pki();
        let (addr, srv) = tls_server(&p.server2, &p.ca1).await;
        let ctx = SslContext::new(SslOptions {
            ca_cert: Some("none".into()),
            ..p.client_opts.clone()
        });
        let mut s = connect(&Remote::Ssl(addr), Some(&ctx), T).await.unwrap();
        let mut buf = [0u8; 5];
        s.read_exact(&mut buf).await.unwrap();
        assert!(srv.await.unwrap().is_ok());
    }

    #[tokio::test]
    async fn ssl_protocol_range_is_applied() {
        let p = pki();
        // Server limited to TLS 1.2, client to TLS 1.3 only: no common version.
        let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls()).unwrap();
        b.set_private_key(&p.server1.key).unwrap();
        b.set_certificate(&p.server1.cert).unwrap();
        b.set_max_proto_version(Some(openssl::ssl::SslVersion::TLS1_2))
            .unwrap();
        let acceptor = b.build();
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let srv = tokio::spawn(async move {
            let (tcp, _) = l.accept().await.unwrap();
            let mut s = SslStream::new(Ssl::new(acceptor.context()).unwrap(), tcp).unwrap();
            Pin::new(&mut s).accept().await.is_ok()
        });
        let ctx = SslContext::new(SslOptions {
            protocols: Some("TLSv1.3".into()),
            ..p.client_opts.clone()
        });
        assert!(connect(&Remote::Ssl(addr), Some(&ctx), T).await.is_err());
        assert!(!srv.await.unwrap());
    }

    #[tokio::test]
    async fn pssl_accepts_mutually_authenticated_client() {
        let p = pki();
        let port = free_port();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let ctx = SslContext::new(p.client_opts.clone());
        let srv = tokio::spawn(async move {
            let mut s = connect(&Remote::PSsl(addr), Some(&ctx), T).await.unwrap();
            echo_once(&mut s).await;
        });
        // The peer: a client with a CA1 certificate that verifies our (CA1) certificate.
        let (ckey, ccert) = p.server1.write(p.dir.path(), "peer");
        let mut b = SslConnector::builder(SslMethod::tls()).unwrap();
        b.set_private_key_file(&ckey, openssl::ssl::SslFiletype::PEM)
            .unwrap();
        b.set_certificate_file(&ccert, openssl::ssl::SslFiletype::PEM)
            .unwrap();
        let mut store = X509StoreBuilder::new().unwrap();
        store.add_cert(p.ca1.cert.clone()).unwrap();
        b.set_cert_store(store.build());
        let peer = b.build();
        let tcp = loop {
            match TcpStream::connect(addr).await {
                Ok(c) => break c,
                Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        };
        let mut cfg = peer.configure().unwrap();
        cfg.set_verify_hostname(false);
        let mut s = SslStream::new(cfg.into_ssl("x").unwrap(), tcp).unwrap();
        Pin::new(&mut s).connect().await.unwrap();
        let mut s: BoxedStream = Box::pin(s);
        roundtrip(&mut s).await;
        srv.await.unwrap();
    }

    /// End-to-end against Debian's real ovsdb-server on a pssl: remote (skipped if absent).
    #[tokio::test]
    async fn ssl_list_dbs_against_real_ovsdb_server() {
        let server_bin = Path::new("/usr/sbin/ovsdb-server");
        let tool_bin = Path::new("/usr/bin/ovsdb-tool");
        let schema = [
            "/usr/share/openvswitch/vswitch.ovsschema",
            "/usr/share/ovn/ovn-ic-nb.ovsschema",
        ]
        .into_iter()
        .map(Path::new)
        .find(|p| p.exists());
        let (Some(schema), true, true) = (schema, server_bin.exists(), tool_bin.exists()) else {
            eprintln!("ovsdb-server not installed; skipping");
            return;
        };
        let p = pki();
        let d = p.dir.path();
        let (skey, scert) = p.server1.write(d, "server");
        let db = d.join("test.db");
        let st = std::process::Command::new(tool_bin)
            .arg("create")
            .arg(&db)
            .arg(schema)
            .status()
            .unwrap();
        assert!(st.success());
        let port = free_port();
        let mut child = std::process::Command::new(server_bin)
            .arg(&db)
            .arg(format!("--remote=pssl:{port}:127.0.0.1"))
            .arg(format!("--private-key={}", skey.display()))
            .arg(format!("--certificate={}", scert.display()))
            .arg(format!("--ca-cert={}", d.join("cacert.pem").display()))
            .arg(format!("--unixctl={}", d.join("ctl").display()))
            .arg(format!(
                "--log-file={}",
                d.join("ovsdb-server.log").display()
            ))
            .arg("--no-chdir")
            .env("OVS_RUNDIR", d)
            .env("OVS_DBDIR", d)
            .env("OVS_LOGDIR", d)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let ctx = SslContext::new(p.client_opts.clone());
        let remote = Remote::Ssl(([127, 0, 0, 1], port).into());
        let mut result = None;
        for _ in 0..100 {
            match connect(&remote, Some(&ctx), T).await {
                Ok(mut s) => {
                    s.write_all(br#"{"method":"list_dbs","params":[],"id":0}"#)
                        .await
                        .unwrap();
                    s.flush().await.unwrap();
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    let reply = loop {
                        let n = tokio::time::timeout(T, s.read(&mut chunk))
                            .await
                            .expect("reply in time")
                            .unwrap();
                        assert!(n > 0, "server closed the connection");
                        buf.extend_from_slice(&chunk[..n]);
                        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&buf) {
                            break v;
                        }
                    };
                    result = Some(reply);
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => {
                    let _ = child.kill();
                    panic!("connect: {e}");
                }
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        let reply = result.expect("ovsdb-server did not come up");
        assert_eq!(reply["id"], 0);
        assert!(reply["error"].is_null(), "{reply}");
        let dbs = reply["result"].as_array().unwrap();
        assert!(dbs.iter().any(|d| d != "_Server"), "{reply}");
    }
}
