//! TLS with OVS semantics (spec ovsdb-protocol.md §15): one process-wide configuration,
//! mandatory mutual authentication, chain-to-CA verification without host name checks,
//! `--ssl-protocols` / `--ssl-ciphers` / `--ssl-ciphersuites` / `--ssl-server-name`, files
//! re-read when their name or mtime changes.
//!
//! The built `SslConnector` wraps the one `SSL_CTX` of the process: active `ssl:` remotes use it
//! as a connector, passive `pssl:` remotes create server-side `Ssl`s from
//! `connector.context()` (it carries the client CA list too). Hostname verification must be
//! switched off per connection (`ConnectConfiguration::set_verify_hostname(false)`), which
//! `stream::connect` does.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use openssl::pkey::PKey;
use openssl::ssl::{
    SslConnector, SslMethod, SslMode, SslOptions as OsslOptions, SslSessionCacheMode,
    SslVerifyMode, SslVersion,
};
use openssl::stack::Stack;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::{X509Name, X509};

/// Cipher list used when `--ssl-ciphers` is not given.
pub const DEFAULT_CIPHERS: &str = "DEFAULT:@SECLEVEL=2";
/// Protocols used when `--ssl-protocols` is not given (or is invalid).
pub const DEFAULT_PROTOCOLS: &str = "TLSv1.2+";

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

/// A TLS protocol version that `--ssl-protocols` may name, oldest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsProtocol {
    Tls12,
    Tls13,
}

const PROTOCOLS: [(TlsProtocol, &str); 2] = [
    (TlsProtocol::Tls12, "TLSv1.2"),
    (TlsProtocol::Tls13, "TLSv1.3"),
];

impl TlsProtocol {
    fn from_name(s: &str) -> Option<TlsProtocol> {
        PROTOCOLS.iter().find(|(_, n)| *n == s).map(|(p, _)| *p)
    }

    pub fn name(self) -> &'static str {
        PROTOCOLS
            .iter()
            .find(|(p, _)| *p == self)
            .map_or("?", |(_, n)| n)
    }

    fn version(self) -> SslVersion {
        match self {
            TlsProtocol::Tls12 => SslVersion::TLS1_2,
            TlsProtocol::Tls13 => SslVersion::TLS1_3,
        }
    }
}

/// A parsed `--ssl-protocols` value: `min..=max` (`max == None`: no upper bound, `A+`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolRange {
    pub min: TlsProtocol,
    pub max: Option<TlsProtocol>,
    /// A list with gaps was given; the range between its extremes is used (log a warning).
    pub filled_gaps: bool,
}

/// Parse `--ssl-protocols`: `TLSv1.2`, `TLSv1.3`, a range `A-B`, an open range `A+`, or a list
/// separated by spaces, commas or tabs. Errors name the offending input.
pub fn parse_protocols(s: &str) -> Result<ProtocolRange, String> {
    let s = s.trim_matches([' ', '\t', ',']);
    let unknown = |name: &str| format!("{name}: SSL/TLS protocol not recognized");
    if s.is_empty() {
        return Err("no SSL/TLS protocols specified".to_string());
    }
    if let Some(open) = s.strip_suffix('+') {
        let min = TlsProtocol::from_name(open.trim()).ok_or_else(|| unknown(open.trim()))?;
        return Ok(ProtocolRange {
            min,
            max: None,
            filled_gaps: false,
        });
    }
    if let Some((a, b)) = s.split_once('-') {
        let (a, b) = (a.trim(), b.trim());
        let min = TlsProtocol::from_name(a).ok_or_else(|| unknown(a))?;
        let max = TlsProtocol::from_name(b).ok_or_else(|| unknown(b))?;
        if min > max {
            return Err(format!("{s}: SSL/TLS protocol range is empty"));
        }
        return Ok(ProtocolRange {
            min,
            max: Some(max),
            filled_gaps: false,
        });
    }
    let mut seen = Vec::new();
    for name in s.split([' ', ',', '\t']).filter(|t| !t.is_empty()) {
        let p = TlsProtocol::from_name(name).ok_or_else(|| unknown(name))?;
        if !seen.contains(&p) {
            seen.push(p);
        }
    }
    let (Some(&min), Some(&max)) = (seen.iter().min(), seen.iter().max()) else {
        return Err("no SSL/TLS protocols specified".to_string());
    };
    let span = PROTOCOLS
        .iter()
        .filter(|(p, _)| *p >= min && *p <= max)
        .count();
    Ok(ProtocolRange {
        min,
        max: Some(max),
        filled_gaps: span != seen.len(),
    })
}

/// A configured file as last seen: name and modification time.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileStamp {
    path: PathBuf,
    mtime: Option<SystemTime>,
}

impl FileStamp {
    fn of(path: &Path) -> FileStamp {
        FileStamp {
            path: path.to_path_buf(),
            mtime: std::fs::metadata(path).and_then(|m| m.modified()).ok(),
        }
    }
}

/// Everything the built context depends on; a change triggers a rebuild.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fingerprint {
    key: FileStamp,
    cert: FileStamp,
    /// `None`: `--ca-cert=none`.
    ca: Option<FileStamp>,
    protocols: Option<String>,
    ciphers: Option<String>,
    ciphersuites: Option<String>,
}

struct Inner {
    opts: SslOptions,
    cached: Option<(Fingerprint, SslConnector)>,
    /// The last failed build, so that the same error is logged once, not on every attempt.
    failed: Option<(Fingerprint, SslError)>,
    warned_no_verify: bool,
    /// The last `--ssl-protocols` value whose problem was logged.
    logged_protocols: Option<String>,
}

/// Builds (and caches, keyed on file names and mtimes) the `SslConnector` for the options.
pub struct SslContext {
    inner: Mutex<Inner>,
}

impl SslContext {
    pub fn new(opts: SslOptions) -> SslContext {
        SslContext {
            inner: Mutex::new(Inner {
                opts,
                cached: None,
                failed: None,
                warned_no_verify: false,
                logged_protocols: None,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave Inner inconsistent (it only caches).
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Replace the options (SSL files are re-applied on every main-loop iteration).
    pub fn set_options(&self, opts: SslOptions) {
        self.lock().opts = opts;
    }

    /// The current options.
    pub fn options(&self) -> SslOptions {
        self.lock().opts.clone()
    }

    /// `--ssl-server-name`: the SNI to send instead of the remote's host.
    pub fn server_name(&self) -> Option<String> {
        self.lock().opts.server_name.clone()
    }

    /// A connector reflecting the current files; re-reads them if a name or mtime changed.
    pub fn connector(&self) -> Result<openssl::ssl::SslConnector, SslError> {
        let mut inner = self.lock();
        let opts = inner.opts.clone();

        // C checks and logs all three before failing the attempt (ENOPROTOOPT).
        let mut missing = None;
        for (absent, err) in [
            (opts.private_key.is_none(), SslError::NoPrivateKey),
            (opts.certificate.is_none(), SslError::NoCertificate),
            (opts.ca_cert.is_none(), SslError::NoCaCert),
        ] {
            if absent {
                tracing::error!(target: "stream_ssl", "{err}");
                missing.get_or_insert(err);
            }
        }
        if let Some(err) = missing {
            return Err(err);
        }
        let (Some(key), Some(cert), Some(ca)) =
            (&opts.private_key, &opts.certificate, &opts.ca_cert)
        else {
            return Err(SslError::NoPrivateKey);
        };
        let verify = ca.as_os_str() != "none";
        let fp = Fingerprint {
            key: FileStamp::of(key),
            cert: FileStamp::of(cert),
            ca: verify.then(|| FileStamp::of(ca)),
            protocols: opts.protocols.clone(),
            ciphers: opts.ciphers.clone(),
            ciphersuites: opts.ciphersuites.clone(),
        };
        if let Some((cached_fp, conn)) = &inner.cached {
            if *cached_fp == fp {
                return Ok(conn.clone());
            }
        }
        if let Some((failed_fp, err)) = &inner.failed {
            if *failed_fp == fp {
                return Err(err.clone());
            }
        }

        if !verify && !inner.warned_no_verify {
            inner.warned_no_verify = true;
            tracing::warn!(
                target: "stream_ssl",
                "Peer certificate validation disabled (this is a security risk)"
            );
        }
        let range = protocol_range(&mut inner, opts.protocols.as_deref());
        match build(&opts, key, cert, verify.then_some(ca.as_path()), &range) {
            Ok(conn) => {
                tracing::debug!(target: "stream_ssl", "SSL configuration (re)loaded");
                inner.failed = None;
                inner.cached = Some((fp, conn.clone()));
                Ok(conn)
            }
            Err(err) => {
                tracing::error!(target: "stream_ssl", "{err}");
                inner.failed = Some((fp, err.clone()));
                Err(err)
            }
        }
    }
}

/// The protocol range to use: the parsed option, or the default when it is absent or invalid
/// (with the problem logged once per value).
fn protocol_range(inner: &mut Inner, protocols: Option<&str>) -> ProtocolRange {
    let default = ProtocolRange {
        min: TlsProtocol::Tls12,
        max: None,
        filled_gaps: false,
    };
    let Some(s) = protocols else {
        return default;
    };
    let first_time = inner.logged_protocols.as_deref() != Some(s);
    let result = parse_protocols(s);
    if first_time {
        inner.logged_protocols = Some(s.to_string());
        match &result {
            Err(e) => tracing::error!(
                target: "stream_ssl",
                "{e}; ignoring --ssl-protocols={s}, using {DEFAULT_PROTOCOLS}"
            ),
            Ok(r) if r.filled_gaps => tracing::warn!(
                target: "stream_ssl",
                "--ssl-protocols={s} has gaps; enabling all protocols from {} to {}",
                r.min.name(),
                r.max.map_or("the latest", |m| m.name())
            ),
            Ok(_) => {}
        }
    }
    result.unwrap_or(default)
}

fn read_file(what: &str, path: &Path) -> Result<Vec<u8>, SslError> {
    std::fs::read(path)
        .map_err(|e| SslError::Config(format!("{}: could not read {what}: {e}", path.display())))
}

fn ossl(context: &str, e: openssl::error::ErrorStack) -> SslError {
    SslError::Config(format!("{context}: {e}"))
}

/// Build the process SSL_CTX as `lib/stream-ssl.c` configures it.
fn build(
    opts: &SslOptions,
    key_path: &Path,
    cert_path: &Path,
    ca_path: Option<&Path>,
    range: &ProtocolRange,
) -> Result<SslConnector, SslError> {
    let mut b = SslConnector::builder(SslMethod::tls()).map_err(|e| ossl("SSL_CTX_new", e))?;
    // Only the configured CA is trusted: drop the default verify paths the builder loaded.
    let empty = X509StoreBuilder::new()
        .map_err(|e| ossl("X509_STORE_new", e))?
        .build();
    b.set_cert_store(empty);
    b.set_options(OsslOptions::NO_TICKET | OsslOptions::NO_COMPRESSION);
    b.set_session_cache_mode(SslSessionCacheMode::OFF);
    b.set_mode(SslMode::ENABLE_PARTIAL_WRITE);
    b.set_min_proto_version(Some(range.min.version()))
        .map_err(|e| ossl("SSL_CTX_set_min_proto_version", e))?;
    b.set_max_proto_version(range.max.map(TlsProtocol::version))
        .map_err(|e| ossl("SSL_CTX_set_max_proto_version", e))?;
    let ciphers = opts.ciphers.as_deref().unwrap_or(DEFAULT_CIPHERS);
    b.set_cipher_list(ciphers)
        .map_err(|e| ossl(&format!("SSL_CTX_set_cipher_list: {ciphers}"), e))?;
    if let Some(suites) = &opts.ciphersuites {
        b.set_ciphersuites(suites)
            .map_err(|e| ossl(&format!("SSL_CTX_set_ciphersuites: {suites}"), e))?;
    }

    // Private key and certificate (the first one in the file), which must match.
    let key_pem = read_file("private key", key_path)?;
    let key = PKey::private_key_from_pem(&key_pem).map_err(|_| {
        SslError::Config(format!(
            "{}: not a valid PEM private key",
            key_path.display()
        ))
    })?;
    b.set_private_key(&key)
        .map_err(|e| ossl("SSL_use_PrivateKey", e))?;
    let cert_pem = read_file("certificate", cert_path)?;
    let cert = X509::from_pem(&cert_pem).map_err(|_| {
        SslError::Config(format!(
            "{}: not a valid PEM certificate",
            cert_path.display()
        ))
    })?;
    b.set_certificate(&cert)
        .map_err(|e| ossl("SSL_use_certificate", e))?;
    b.check_private_key().map_err(|e| {
        SslError::Config(format!(
            "Private key does not match certificate public key: {e}"
        ))
    })?;

    match ca_path {
        None => b.set_verify(SslVerifyMode::NONE),
        Some(ca_path) => {
            let pem = read_file("CA certificate", ca_path)?;
            let cas = X509::stack_from_pem(&pem).map_err(|e| {
                SslError::Config(format!("{}: bad CA certificate: {e}", ca_path.display()))
            })?;
            if cas.is_empty() {
                return Err(SslError::Config(format!(
                    "{}: no certificates in CA file",
                    ca_path.display()
                )));
            }
            let mut names = Stack::<X509Name>::new().map_err(|e| ossl("sk_X509_NAME_new", e))?;
            for ca in &cas {
                b.cert_store_mut()
                    .add_cert(ca.clone())
                    .map_err(|e| ossl("X509_STORE_add_cert", e))?;
                let name = ca
                    .subject_name()
                    .to_owned()
                    .map_err(|e| ossl("X509_NAME_dup", e))?;
                names.push(name).map_err(|e| ossl("sk_X509_NAME_push", e))?;
            }
            // Sent by the server side (pssl:) as the acceptable client CAs.
            b.set_client_ca_list(names);
            b.set_verify(SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT);
        }
    }
    Ok(b.build())
}

pub type SharedSslContext = Arc<SslContext>;

/// Test PKI generation, shared with the transport tests in `stream.rs`.
#[cfg(test)]
pub(crate) mod test_pki {
    use openssl::asn1::Asn1Time;
    use openssl::bn::BigNum;
    use openssl::ec::{EcGroup, EcKey};
    use openssl::hash::MessageDigest;
    use openssl::nid::Nid;
    use openssl::pkey::{PKey, Private};
    use openssl::x509::extension::{BasicConstraints, KeyUsage, SubjectAlternativeName};
    use openssl::x509::{X509NameBuilder, X509};
    use std::path::{Path, PathBuf};

    pub struct Identity {
        pub key: PKey<Private>,
        pub cert: X509,
    }

    impl Identity {
        pub fn key_pem(&self) -> Vec<u8> {
            self.key.private_key_to_pem_pkcs8().unwrap()
        }
        pub fn cert_pem(&self) -> Vec<u8> {
            self.cert.to_pem().unwrap()
        }
        /// Write `<stem>-privkey.pem` and `<stem>-cert.pem` into `dir`.
        pub fn write(&self, dir: &Path, stem: &str) -> (PathBuf, PathBuf) {
            let k = dir.join(format!("{stem}-privkey.pem"));
            let c = dir.join(format!("{stem}-cert.pem"));
            std::fs::write(&k, self.key_pem()).unwrap();
            std::fs::write(&c, self.cert_pem()).unwrap();
            (k, c)
        }
    }

    fn new_key() -> PKey<Private> {
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
        PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap()
    }

    fn build(cn: &str, key: &PKey<Private>, issuer: Option<&Identity>, is_ca: bool) -> X509 {
        let mut name = X509NameBuilder::new().unwrap();
        name.append_entry_by_text("CN", cn).unwrap();
        let name = name.build();
        let mut b = X509::builder().unwrap();
        b.set_version(2).unwrap();
        let serial = BigNum::from_u32(rand::random::<u32>() >> 1)
            .unwrap()
            .to_asn1_integer()
            .unwrap();
        b.set_serial_number(&serial).unwrap();
        b.set_subject_name(&name).unwrap();
        b.set_issuer_name(issuer.map_or(&name, |i| i.cert.subject_name()))
            .unwrap();
        b.set_pubkey(key).unwrap();
        b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        b.set_not_after(&Asn1Time::days_from_now(365).unwrap())
            .unwrap();
        if is_ca {
            b.append_extension(BasicConstraints::new().critical().ca().build().unwrap())
                .unwrap();
            b.append_extension(
                KeyUsage::new()
                    .critical()
                    .key_cert_sign()
                    .crl_sign()
                    .build()
                    .unwrap(),
            )
            .unwrap();
        } else {
            b.append_extension(BasicConstraints::new().build().unwrap())
                .unwrap();
            // Like ovs-pki: a SAN that is not a usable host name (no IP SAN at all).
            let san = SubjectAlternativeName::new()
                .dns(cn)
                .build(&b.x509v3_context(issuer.map(|i| &*i.cert), None))
                .unwrap();
            b.append_extension(san).unwrap();
        }
        let signer = issuer.map_or(key, |i| &i.key);
        b.sign(signer, MessageDigest::sha256()).unwrap();
        b.build()
    }

    pub fn ca(cn: &str) -> Identity {
        let key = new_key();
        let cert = build(cn, &key, None, true);
        Identity { key, cert }
    }

    pub fn leaf(cn: &str, ca: &Identity) -> Identity {
        let key = new_key();
        let cert = build(cn, &key, Some(ca), false);
        Identity { key, cert }
    }
}

#[cfg(test)]
mod tests {
    use super::test_pki::{ca, leaf};
    use super::*;
    use std::time::Duration;

    #[test]
    fn protocols_grammar() {
        use TlsProtocol::*;
        let r = |min, max, gaps| {
            Ok(ProtocolRange {
                min,
                max,
                filled_gaps: gaps,
            })
        };
        let cases = [
            ("TLSv1.2", r(Tls12, Some(Tls12), false)),
            ("TLSv1.3", r(Tls13, Some(Tls13), false)),
            ("TLSv1.2+", r(Tls12, None, false)),
            ("TLSv1.3+", r(Tls13, None, false)),
            ("TLSv1.2-TLSv1.3", r(Tls12, Some(Tls13), false)),
            ("TLSv1.3-TLSv1.3", r(Tls13, Some(Tls13), false)),
            ("TLSv1.2,TLSv1.3", r(Tls12, Some(Tls13), false)),
            ("TLSv1.3 TLSv1.2", r(Tls12, Some(Tls13), false)),
            (" TLSv1.2,\tTLSv1.3, ", r(Tls12, Some(Tls13), false)),
        ];
        for (s, want) in cases {
            assert_eq!(parse_protocols(s), want, "{s}");
        }
        for bad in [
            "",
            " , ",
            "TLSv1",
            "TLSv1.1",
            "TLSv1.1+",
            "SSLv3",
            "tlsv1.2",
            "TLSv1.2-TLSv1.4",
            "TLSv1.3-TLSv1.2",
            "TLSv1.2,TLSv1.1",
            "TLSv1.2++",
        ] {
            assert!(parse_protocols(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            parse_protocols("TLSv1.1"),
            Err("TLSv1.1: SSL/TLS protocol not recognized".to_string())
        );
    }

    struct Pki {
        dir: tempfile::TempDir,
        key: PathBuf,
        cert: PathBuf,
        ca: PathBuf,
    }

    fn pki() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let ca1 = ca("ovsclient CA");
        let client = leaf("ovn-ic client", &ca1);
        let (key, cert) = client.write(dir.path(), "client");
        let ca = dir.path().join("cacert.pem");
        std::fs::write(&ca, ca1.cert_pem()).unwrap();
        Pki { dir, key, cert, ca }
    }

    fn opts(p: &Pki) -> SslOptions {
        SslOptions {
            private_key: Some(p.key.clone()),
            certificate: Some(p.cert.clone()),
            ca_cert: Some(p.ca.clone()),
            ..Default::default()
        }
    }

    #[test]
    fn missing_configuration_errors() {
        let p = pki();
        let ctx = SslContext::new(SslOptions::default());
        assert_eq!(ctx.connector().err(), Some(SslError::NoPrivateKey));
        ctx.set_options(SslOptions {
            private_key: None,
            ..opts(&p)
        });
        assert_eq!(ctx.connector().err(), Some(SslError::NoPrivateKey));
        ctx.set_options(SslOptions {
            certificate: None,
            ..opts(&p)
        });
        assert_eq!(ctx.connector().err(), Some(SslError::NoCertificate));
        ctx.set_options(SslOptions {
            ca_cert: None,
            ..opts(&p)
        });
        assert_eq!(ctx.connector().err(), Some(SslError::NoCaCert));
        assert_eq!(
            SslError::NoCaCert.to_string(),
            "CA certificate must be configured to use SSL"
        );
        ctx.set_options(opts(&p));
        assert!(ctx.connector().is_ok());
    }

    #[test]
    fn file_errors() {
        let p = pki();
        let nofile = p.dir.path().join("missing.pem");
        let ctx = SslContext::new(SslOptions {
            private_key: Some(nofile.clone()),
            ..opts(&p)
        });
        let e = ctx.connector().unwrap_err();
        assert!(
            matches!(&e, SslError::Config(m) if m.contains("missing.pem") && m.contains("private key")),
            "{e}"
        );
        // A key that does not belong to the certificate.
        let other = leaf("other", &ca("x"));
        let (okey, _) = other.write(p.dir.path(), "other");
        ctx.set_options(SslOptions {
            private_key: Some(okey),
            ..opts(&p)
        });
        let e = ctx.connector().unwrap_err();
        assert!(e.to_string().contains("does not match"), "{e}");
        // A CA file without certificates.
        std::fs::write(p.dir.path().join("empty.pem"), "").unwrap();
        ctx.set_options(SslOptions {
            ca_cert: Some(p.dir.path().join("empty.pem")),
            ..opts(&p)
        });
        assert!(matches!(ctx.connector(), Err(SslError::Config(_))));
        // Bad cipher list.
        ctx.set_options(SslOptions {
            ciphers: Some("NOT-A-CIPHER".into()),
            ..opts(&p)
        });
        assert!(ctx.connector().unwrap_err().to_string().contains("cipher"));
        // Invalid --ssl-protocols is ignored (default range), not fatal.
        ctx.set_options(SslOptions {
            protocols: Some("TLSv1".into()),
            ..opts(&p)
        });
        assert!(ctx.connector().is_ok());
    }

    #[test]
    fn ca_none_disables_verification() {
        let p = pki();
        let ctx = SslContext::new(SslOptions {
            ca_cert: Some("none".into()),
            ..opts(&p)
        });
        let c = ctx.connector().unwrap();
        assert_eq!(c.context().verify_mode(), SslVerifyMode::NONE);
        let ctx = SslContext::new(opts(&p));
        let c = ctx.connector().unwrap();
        assert_eq!(
            c.context().verify_mode(),
            SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT
        );
    }

    #[test]
    fn connector_is_cached_and_reloaded_on_change() {
        let p = pki();
        let ctx = SslContext::new(opts(&p));
        let c1 = ctx.connector().unwrap();
        let c2 = ctx.connector().unwrap();
        assert!(std::ptr::eq(c1.context(), c2.context()));
        let serial = |c: &SslConnector| {
            c.context()
                .certificate()
                .unwrap()
                .serial_number()
                .to_bn()
                .unwrap()
        };

        // Rotate: a new key and certificate, same file names, newer mtime.
        let rotated = leaf("ovn-ic client 2", &ca("other CA"));
        std::fs::write(&p.key, rotated.key_pem()).unwrap();
        std::fs::write(&p.cert, rotated.cert_pem()).unwrap();
        let later = SystemTime::now() + Duration::from_secs(10);
        for f in [&p.key, &p.cert] {
            std::fs::File::options()
                .write(true)
                .open(f)
                .unwrap()
                .set_modified(later)
                .unwrap();
        }
        let c3 = ctx.connector().unwrap();
        assert!(!std::ptr::eq(c1.context(), c3.context()));
        assert_ne!(serial(&c1), serial(&c3));
        assert_eq!(serial(&c3), rotated.cert.serial_number().to_bn().unwrap());
        // Changing an option string also rebuilds.
        ctx.set_options(SslOptions {
            ciphersuites: Some("TLS_AES_256_GCM_SHA384".into()),
            ..opts(&p)
        });
        let c4 = ctx.connector().unwrap();
        assert!(!std::ptr::eq(c3.context(), c4.context()));
    }
}
