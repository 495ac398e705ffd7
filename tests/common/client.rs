//! Debian's client tools (`ovsdb-client`, `ovs-appctl`) as functions, for checking what a
//! server holds independently of our own OVSDB client.

use std::path::Path;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{Map, Value};

use super::pki::SslFiles;
use super::process::run;

/// Options for running `ovsdb-client`: TLS key pair (for `ssl:` remotes) and a timeout after
/// which the tool is killed (default 10 s; `ovsdb-client` itself would wait forever on a
/// stopped server).
#[derive(Debug, Clone)]
pub struct Client {
    ssl: Option<SslFiles>,
    timeout: Duration,
}

impl Default for Client {
    fn default() -> Self {
        Client::new()
    }
}

impl Client {
    pub fn new() -> Client {
        Client {
            ssl: None,
            timeout: Duration::from_secs(10),
        }
    }

    /// Use this key pair and CA (`--private-key`, `--certificate`, `--ca-cert`).
    pub fn ssl(mut self, files: SslFiles) -> Client {
        self.ssl = Some(files);
        self
    }

    pub fn timeout(mut self, timeout: Duration) -> Client {
        self.timeout = timeout;
        self
    }

    /// Runs `ovsdb-client [ssl options] ARGS...` and returns its stdout.
    pub fn run(&self, args: &[&str]) -> Result<String> {
        let mut all: Vec<String> = self.ssl.as_ref().map(SslFiles::args).unwrap_or_default();
        all.extend(args.iter().map(|s| s.to_string()));
        let out = run("ovsdb-client", &all, self.timeout)?;
        String::from_utf8(out.stdout).context("ovsdb-client printed invalid UTF-8")
    }

    /// The whole database as `{"Table": [{"_uuid": ["uuid", "…"], "column": value, …}, …], …}`
    /// with values in OVSDB JSON notation (`["set", […]]`, `["map", […]]`, `["uuid", "…"]`).
    /// Every table of the schema is present, empty ones as `[]`.
    pub fn dump(&self, remote: &str, db: &str) -> Result<Value> {
        let out = self.run(&["-f", "json", "-d", "json", "dump", remote, db])?;
        parse_dump(&out).with_context(|| format!("parsing `ovsdb-client dump {remote} {db}`"))
    }

    /// `ovsdb-client transact REMOTE PARAMS`: `params` is the full `transact` params array,
    /// database name first. Returns the reply array as is (operation errors included).
    pub fn transact(&self, remote: &str, params: &Value) -> Result<Value> {
        let out = self.run(&["transact", remote, &params.to_string()])?;
        serde_json::from_str(out.trim())
            .with_context(|| format!("parsing the reply of `ovsdb-client transact`: {out}"))
    }

    /// [`Client::transact`], failing if any operation (or the transaction) reported an error.
    pub fn transact_ok(&self, remote: &str, params: &Value) -> Result<Value> {
        let reply = self.transact(remote, params)?;
        if let Some(err) = reply_error(&reply) {
            bail!("transaction failed: {err}; transaction: {params}");
        }
        Ok(reply)
    }
}

/// The first error in a `transact` reply array, as text.
fn reply_error(reply: &Value) -> Option<String> {
    match reply {
        Value::Array(results) => results
            .iter()
            .find(|r| r.get("error").is_some())
            .map(|r| r.to_string()),
        other => Some(format!("unexpected reply {other}")),
    }
}

/// Parses `ovsdb-client -f json -d json dump` output: one
/// `{"caption":"T table","headings":[…],"data":[[…],…]}` object per line.
pub(crate) fn parse_dump(out: &str) -> Result<Value> {
    let mut db = Map::new();
    for line in out.lines().filter(|l| !l.trim().is_empty()) {
        let t: Value = serde_json::from_str(line)?;
        let caption = t["caption"]
            .as_str()
            .ok_or_else(|| anyhow!("no caption in {line}"))?;
        let table = caption.strip_suffix(" table").unwrap_or(caption);
        let headings: Vec<&str> = t["headings"]
            .as_array()
            .ok_or_else(|| anyhow!("no headings in {line}"))?
            .iter()
            .map(|h| h.as_str().ok_or_else(|| anyhow!("bad heading {h}")))
            .collect::<Result<_>>()?;
        let mut rows = Vec::new();
        for r in t["data"]
            .as_array()
            .ok_or_else(|| anyhow!("no data in {line}"))?
        {
            let cells = r.as_array().ok_or_else(|| anyhow!("bad row {r}"))?;
            if cells.len() != headings.len() {
                bail!("row {r} does not match headings {headings:?}");
            }
            let row: Map<String, Value> = headings
                .iter()
                .map(|h| h.to_string())
                .zip(cells.iter().cloned())
                .collect();
            rows.push(Value::Object(row));
        }
        db.insert(table.to_string(), Value::Array(rows));
    }
    Ok(Value::Object(db))
}

/// `ovsdb-client dump` without TLS, see [`Client::dump`].
pub fn dump(remote: &str, db: &str) -> Result<Value> {
    Client::new().dump(remote, db)
}

/// `ovsdb-client transact` without TLS, see [`Client::transact`].
pub fn transact(remote: &str, params: &Value) -> Result<Value> {
    Client::new().transact(remote, params)
}

/// `ovsdb-client transact` without TLS, see [`Client::transact_ok`].
pub fn transact_ok(remote: &str, params: &Value) -> Result<Value> {
    Client::new().transact_ok(remote, params)
}

/// The rows of `table` in a [`dump`] result (empty if the table is absent).
pub fn rows<'a>(dump: &'a Value, table: &str) -> &'a [Value] {
    dump.get(table)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// `ovs-appctl -T 5 -t CTL ARGS...` (works for every OVS/OVN daemon's control socket),
/// returning stdout.
pub fn appctl(ctl: &Path, args: &[&str]) -> Result<String> {
    let mut all = vec![
        "-T".to_string(),
        "5".to_string(),
        "-t".to_string(),
        ctl.display().to_string(),
    ];
    all.extend(args.iter().map(|s| s.to_string()));
    let out = run("ovs-appctl", &all, Duration::from_secs(10))?;
    String::from_utf8(out.stdout).context("ovs-appctl printed invalid UTF-8")
}
