//! Throw-away TLS material for SSL tests, made with the `openssl` crate (no CLI, no prompts).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::BigNum;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, KeyUsage, SubjectAlternativeName,
    SubjectKeyIdentifier,
};
use openssl::x509::{X509NameBuilder, X509};

use super::process::TestDir;

/// The three files OVS programs take: `--private-key`, `--certificate`, `--ca-cert`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SslFiles {
    pub private_key: PathBuf,
    pub certificate: PathBuf,
    pub ca_cert: PathBuf,
}

impl SslFiles {
    /// `["--private-key=K", "--certificate=C", "--ca-cert=CA"]`, as every OVS/OVN program takes
    /// them (ovsdb-server, ovsdb-client, ovn-northd, ovn-ic, ...).
    pub fn args(&self) -> Vec<String> {
        vec![
            format!("--private-key={}", self.private_key.display()),
            format!("--certificate={}", self.certificate.display()),
            format!("--ca-cert={}", self.ca_cert.display()),
        ]
    }
}

/// A test PKI in its own temporary directory:
///
/// * `ca-cert.pem`: the CA ("harness CA") that signed the server and client certificates;
/// * `server-privkey.pem` / `server-cert.pem`: CN `server`, SAN `IP:127.0.0.1`, `DNS:localhost`;
/// * `client-privkey.pem` / `client-cert.pem`: CN `client`;
/// * `other-ca-cert.pem`: a second, unrelated CA ("unrelated CA"), and
///   `other-privkey.pem` / `other-cert.pem`: CN `intruder`, signed by that other CA.
///
/// Keys are RSA 2048, certificates SHA-256, valid from yesterday for a year. No extended key
/// usage is set, so every certificate works for both client and server roles (ovsdb-server is a
/// TLS client too, towards its raft peers).
pub struct Pki {
    dir: TestDir,
    pub ca_cert: PathBuf,
    pub other_ca_cert: PathBuf,
    /// Server key pair, trusting `ca_cert`.
    pub server: SslFiles,
    /// Client key pair, trusting `ca_cert`.
    pub client: SslFiles,
    /// Key pair from the unrelated CA, trusting the unrelated CA: it must be rejected by a
    /// server of this PKI, and it rejects that server.
    pub other: SslFiles,
}

impl Pki {
    pub fn new() -> Result<Pki> {
        let dir = TestDir::new("pki")?;
        let write = |name: &str, data: &[u8]| -> Result<PathBuf> {
            let p = dir.join(name);
            std::fs::write(&p, data).with_context(|| format!("writing {}", p.display()))?;
            Ok(p)
        };

        let ca = Issued::ca("harness CA", 1)?;
        let other_ca = Issued::ca("unrelated CA", 1)?;
        let server = Issued::leaf("server", &ca, 2, true)?;
        let client = Issued::leaf("client", &ca, 3, false)?;
        let other = Issued::leaf("intruder", &other_ca, 2, false)?;

        let ca_cert = write("ca-cert.pem", &ca.cert.to_pem()?)?;
        let other_ca_cert = write("other-ca-cert.pem", &other_ca.cert.to_pem()?)?;
        let pair = |name: &str, leaf: &Issued, trust: &Path| -> Result<SslFiles> {
            Ok(SslFiles {
                private_key: write(
                    &format!("{name}-privkey.pem"),
                    &leaf.key.private_key_to_pem_pkcs8()?,
                )?,
                certificate: write(&format!("{name}-cert.pem"), &leaf.cert.to_pem()?)?,
                ca_cert: trust.to_path_buf(),
            })
        };
        let server = pair("server", &server, &ca_cert)?;
        let client = pair("client", &client, &ca_cert)?;
        let other = pair("other", &other, &other_ca_cert)?;
        Ok(Pki {
            dir,
            ca_cert,
            other_ca_cert,
            server,
            client,
            other,
        })
    }

    /// The directory holding all files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// A key and the certificate issued for it.
struct Issued {
    key: PKey<Private>,
    cert: X509,
}

impl Issued {
    fn ca(cn: &str, serial: u32) -> Result<Issued> {
        let key = PKey::from_rsa(Rsa::generate(2048)?)?;
        let mut b = base_builder(cn, serial, &key)?;
        let issuer = name(cn)?;
        b.set_issuer_name(&issuer)?;
        b.append_extension(BasicConstraints::new().critical().ca().build()?)?;
        b.append_extension(
            KeyUsage::new()
                .critical()
                .key_cert_sign()
                .crl_sign()
                .digital_signature()
                .build()?,
        )?;
        let ski = SubjectKeyIdentifier::new().build(&b.x509v3_context(None, None))?;
        b.append_extension(ski)?;
        b.sign(&key, MessageDigest::sha256())?;
        Ok(Issued {
            key,
            cert: b.build(),
        })
    }

    fn leaf(cn: &str, ca: &Issued, serial: u32, server: bool) -> Result<Issued> {
        let key = PKey::from_rsa(Rsa::generate(2048)?)?;
        let mut b = base_builder(cn, serial, &key)?;
        b.set_issuer_name(ca.cert.subject_name())?;
        b.append_extension(BasicConstraints::new().build()?)?;
        b.append_extension(
            KeyUsage::new()
                .critical()
                .digital_signature()
                .key_encipherment()
                .build()?,
        )?;
        let ski = SubjectKeyIdentifier::new().build(&b.x509v3_context(Some(&ca.cert), None))?;
        b.append_extension(ski)?;
        let aki = AuthorityKeyIdentifier::new()
            .keyid(false)
            .build(&b.x509v3_context(Some(&ca.cert), None))?;
        b.append_extension(aki)?;
        if server {
            let san = SubjectAlternativeName::new()
                .ip("127.0.0.1")
                .dns("localhost")
                .build(&b.x509v3_context(Some(&ca.cert), None))?;
            b.append_extension(san)?;
        }
        b.sign(&ca.key, MessageDigest::sha256())?;
        Ok(Issued {
            key,
            cert: b.build(),
        })
    }
}

fn name(cn: &str) -> Result<openssl::x509::X509Name> {
    let mut n = X509NameBuilder::new()?;
    n.append_entry_by_text("O", "ovn-ic test harness")?;
    n.append_entry_by_text("CN", cn)?;
    Ok(n.build())
}

fn base_builder(cn: &str, serial: u32, key: &PKey<Private>) -> Result<openssl::x509::X509Builder> {
    let mut b = X509::builder()?;
    b.set_version(2)?;
    let serial: Asn1Integer = BigNum::from_u32(serial)?.to_asn1_integer()?;
    b.set_serial_number(&serial)?;
    let subject = name(cn)?;
    b.set_subject_name(&subject)?;
    b.set_pubkey(key)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .context("clock before 1970")?
        .as_secs() as i64;
    let not_before = Asn1Time::from_unix(now - 86_400)?;
    let not_after = Asn1Time::from_unix(now + 365 * 86_400)?;
    b.set_not_before(&not_before)?;
    b.set_not_after(&not_after)?;
    Ok(b)
}
