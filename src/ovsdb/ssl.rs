//! TLS with OVS semantics (spec ovsdb-protocol.md §15): one process-wide configuration,
//! mandatory mutual authentication, chain-to-CA verification without host name checks,
//! `--ssl-protocols` / `--ssl-ciphers` / `--ssl-ciphersuites` / `--ssl-server-name`, files
//! re-read when their name or mtime changes.

use std::path::PathBuf;
use std::sync::Arc;

/// The process-wide SSL options as given on the command line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SslOptions {
    pub private_key: Option<PathBuf>,
    pub certificate: Option<PathBuf>,
    /// `None`: not configured; `Some("none")`: verification disabled.
    pub ca_cert: Option<PathBuf>,
    pub protocols: Option<String>,
    pub ciphers: Option<String>,
    pub ciphersuites: Option<String>,
    pub server_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SslError {
    #[error("Private key must be configured to use SSL")]
    NoPrivateKey,
    #[error("Certificate must be configured to use SSL")]
    NoCertificate,
    #[error("CA certificate must be configured to use SSL")]
    NoCaCert,
    #[error("{0}")]
    Config(String),
    #[error("SSL handshake failed: {0}")]
    Handshake(String),
}

/// Builds (and caches, keyed on file names and mtimes) the `SslConnector` for the options.
pub struct SslContext {
    // helper-defined fields
}

impl SslContext {
    pub fn new(opts: SslOptions) -> SslContext {
        todo!("helper")
    }
    /// Replace the options (SSL files are re-applied on every main-loop iteration).
    pub fn set_options(&self, opts: SslOptions) {
        todo!("helper")
    }
    /// A connector reflecting the current files; re-reads them if a name or mtime changed.
    pub fn connector(&self) -> Result<openssl::ssl::SslConnector, SslError> {
        todo!("helper")
    }
}

pub type SharedSslContext = Arc<SslContext>;
