//! Byte-stream transports: unix, tcp (TCP_NODELAY), ssl over tcp, and the passive forms.

use std::pin::Pin;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};

use super::remote::Remote;
use super::ssl::SslContext;

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
    todo!("helper")
}
