//! OVN database setups and OVS-style daemons (`ovn-northd`, the C `ovn-ic`, ours).

use std::ffi::OsStr;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use serde_json::json;

use super::process::{isolate_env, log_tail_msg, Proc, TestDir};
use super::schema::{schema_path, Schema};
use super::server::{Listen, Server, START_TIMEOUT};
use super::wait_until;

fn start_db(schema: &str, name: &str) -> Result<Server> {
    Server::builder(schema_path(schema))
        .name(name)
        .listen(Listen::Unix)
        .start()
        .with_context(|| format!("starting the {name} database"))
}

/// Inserts an empty row into a `maxRows: 1` global table, as `ovn-*ctl init` does (skipped if
/// the schema has no such table).
fn init_global(server: &Server, schema: &str, table: &str, row: serde_json::Value) -> Result<()> {
    if Schema::ovn(schema)?.has_table(table) {
        server.transact(json!([{"op": "insert", "table": table, "row": row}]))?;
    }
    Ok(())
}

/// The two interconnection databases shared by all AZs, standalone on unix sockets.
pub struct IcDbs {
    pub ic_nb: Server,
    pub ic_sb: Server,
}

impl IcDbs {
    /// IC-NB and IC-SB, initialised like `ovn-ic-nbctl init` / `ovn-ic-sbctl init` (one empty
    /// `IC_NB_Global` / `IC_SB_Global` row), as `ovn-ctl start_ic_ovsdb` leaves them.
    pub fn start() -> Result<IcDbs> {
        let dbs = IcDbs::start_empty()?;
        init_global(&dbs.ic_nb, "ovn-ic-nb", "IC_NB_Global", json!({}))?;
        init_global(&dbs.ic_sb, "ovn-ic-sb", "IC_SB_Global", json!({}))?;
        Ok(dbs)
    }

    /// IC-NB and IC-SB with no rows at all.
    pub fn start_empty() -> Result<IcDbs> {
        Ok(IcDbs {
            ic_nb: start_db("ovn-ic-nb", "ic-nb")?,
            ic_sb: start_db("ovn-ic-sb", "ic-sb")?,
        })
    }
}

/// One availability zone's NB and SB databases, standalone on unix sockets.
pub struct AzDbs {
    pub name: String,
    pub nb: Server,
    pub sb: Server,
}

impl AzDbs {
    /// NB with `NB_Global` named `name` (`ovn-nbctl init` + `set NB_Global . name=NAME`, what
    /// ovn-ic needs to know its AZ), SB with an empty `SB_Global` (`ovn-sbctl init`).
    pub fn start(name: &str) -> Result<AzDbs> {
        let az = AzDbs {
            name: name.to_string(),
            nb: start_db("ovn-nb", &format!("{name}-nb"))?,
            sb: start_db("ovn-sb", &format!("{name}-sb"))?,
        };
        init_global(&az.nb, "ovn-nb", "NB_Global", json!({ "name": name }))?;
        init_global(&az.sb, "ovn-sb", "SB_Global", json!({}))?;
        Ok(az)
    }

    /// The four database options of `ovn-ic` (C or ours) for this AZ:
    /// `--ovnnb-db=…`, `--ovnsb-db=…`, `--ic-nb-db=…`, `--ic-sb-db=…`.
    pub fn ovn_ic_args(&self, ic: &IcDbs) -> Vec<String> {
        vec![
            format!("--ovnnb-db={}", self.nb.remote()),
            format!("--ovnsb-db={}", self.sb.remote()),
            format!("--ic-nb-db={}", ic.ic_nb.remote()),
            format!("--ic-sb-db={}", ic.ic_sb.remote()),
        ]
    }
}

/// The four databases of a one-AZ interconnection setup.
pub struct OvnDbs {
    pub ic: IcDbs,
    pub az: AzDbs,
}

impl OvnDbs {
    /// [`IcDbs::start`] plus [`AzDbs::start`]`(az)`.
    pub fn start(az: &str) -> Result<OvnDbs> {
        Ok(OvnDbs {
            ic: IcDbs::start()?,
            az: AzDbs::start(az)?,
        })
    }

    /// See [`AzDbs::ovn_ic_args`].
    pub fn ovn_ic_args(&self) -> Vec<String> {
        self.az.ovn_ic_args(&self.ic)
    }
}

/// Path of Debian's C `ovn-ic` (23.03), for differential tests.
pub const C_OVN_IC: &str = "/usr/bin/ovn-ic";

/// Path of this crate's `ovn-ic` binary (built by cargo for integration tests).
pub fn our_ovn_ic() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ovn-ic"))
}

/// An OVS-style daemon (`ovn-northd`, the C `ovn-ic`, ours) running in the foreground with its
/// control socket and log file in a private temporary directory; killed on drop.
///
/// Files in [`Daemon::dir`]: `<name>.ctl` (`--unixctl`), `<name>.log` (`--log-file`),
/// `<name>.out` (stdout and stderr).
pub struct Daemon {
    proc: Proc,
    ctl: PathBuf,
    log: PathBuf,
    dir: TestDir,
}

impl Daemon {
    /// Starts `program ARGS... --unixctl=… --log-file=… -vconsole:off --no-chdir` (so later
    /// duplicates in `args` lose, as getopt's last-wins would make them) and waits until the
    /// control socket accepts connections.
    pub fn start(name: &str, program: impl AsRef<OsStr>, args: &[String]) -> Result<Daemon> {
        let dir = TestDir::new(name)?;
        let ctl = dir.join(format!("{name}.ctl"));
        let log = dir.join(format!("{name}.log"));
        let mut cmd = Command::new(program);
        isolate_env(&mut cmd, dir.path());
        cmd.args(args)
            .arg(format!("--unixctl={}", ctl.display()))
            .arg(format!("--log-file={}", log.display()))
            .arg("-vconsole:off")
            .arg("--no-chdir");
        let mut proc = Proc::spawn(
            name,
            cmd,
            &dir.join(format!("{name}.out")),
            Some(log.clone()),
        )?;
        let mut failed = None;
        let up = wait_until(START_TIMEOUT, || {
            if let Err(e) = proc.ensure_running() {
                failed = Some(e);
                return true;
            }
            UnixStream::connect(&ctl).is_ok()
        });
        if let Some(e) = failed {
            return Err(e.context(format!("starting {name}")));
        }
        if !up {
            bail!(
                "{name} did not open {}{}",
                ctl.display(),
                log_tail_msg(&log)
            );
        }
        Ok(Daemon {
            proc,
            ctl,
            log,
            dir,
        })
    }

    /// Debian's `ovn-northd --ovnnb-db=NB --ovnsb-db=SB`.
    pub fn northd(nb_remote: &str, sb_remote: &str) -> Result<Daemon> {
        Daemon::start(
            "ovn-northd",
            "ovn-northd",
            &[
                format!("--ovnnb-db={nb_remote}"),
                format!("--ovnsb-db={sb_remote}"),
            ],
        )
    }

    /// [`Daemon::northd`] against an AZ's databases.
    pub fn northd_for_az(az: &AzDbs) -> Result<Daemon> {
        Daemon::northd(&az.nb.remote(), &az.sb.remote())
    }

    /// An `ovn-ic` binary ([`C_OVN_IC`] or [`our_ovn_ic`]) for one AZ, with the four database
    /// options of [`AzDbs::ovn_ic_args`] followed by `extra`.
    pub fn ovn_ic(
        program: impl AsRef<OsStr>,
        az: &AzDbs,
        ic: &IcDbs,
        extra: &[&str],
    ) -> Result<Daemon> {
        let mut args = az.ovn_ic_args(ic);
        args.extend(extra.iter().map(|s| s.to_string()));
        Daemon::start(&format!("ovn-ic-{}", az.name), program, &args)
    }

    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }

    pub fn ctl_path(&self) -> &Path {
        &self.ctl
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The log file's current contents (empty if it does not exist yet).
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `ovs-appctl -t <ctl> ARGS...` (same protocol as `ovn-appctl`).
    pub fn appctl(&self, args: &[&str]) -> Result<String> {
        super::client::appctl(&self.ctl, args)
    }

    /// Whether it is still running.
    pub fn is_running(&mut self) -> bool {
        self.proc.is_running()
    }

    /// `kill -9` and reap.
    pub fn kill(&mut self) {
        self.proc.kill();
    }

    /// `SIGTERM`, then `SIGKILL` after `grace`; returns the exit status.
    pub fn terminate(&mut self, grace: std::time::Duration) -> Option<std::process::ExitStatus> {
        self.proc.terminate(grace)
    }

    /// Waits up to `timeout` for the daemon to exit by itself (e.g. after `appctl exit`).
    pub fn wait_exit(&mut self, timeout: std::time::Duration) -> Option<std::process::ExitStatus> {
        self.proc.wait_exit(timeout)
    }
}

/// How to start OVN databases when the defaults (the schemas of [`super::schema_dir`], no extra
/// `ovsdb-server` arguments) do not fit, e.g. a test that must run Debian's C `ovn-ic` 23.03
/// whatever `OVN_SCHEMA_DIR` says, or that needs `-vjsonrpc:file:dbg` logs.
#[derive(Debug, Clone, Default)]
pub struct DbOptions {
    /// Directory holding `ovn-nb.ovsschema`, `ovn-sb.ovsschema`, `ovn-ic-nb.ovsschema` and
    /// `ovn-ic-sb.ovsschema`; `None` means [`super::schema_dir`].
    pub schema_dir: Option<PathBuf>,
    /// Extra arguments for every `ovsdb-server` started with these options.
    pub server_args: Vec<String>,
}

impl DbOptions {
    /// Options using the schemas in `dir`.
    pub fn schema_dir(dir: impl Into<PathBuf>) -> DbOptions {
        DbOptions {
            schema_dir: Some(dir.into()),
            server_args: Vec::new(),
        }
    }

    /// Adds an `ovsdb-server` argument for every server.
    pub fn server_arg(mut self, arg: impl Into<String>) -> DbOptions {
        self.server_args.push(arg.into());
        self
    }

    /// Path of one OVN schema (short name as for [`schema_path`]) under these options.
    pub fn schema_path(&self, name: &str) -> PathBuf {
        match &self.schema_dir {
            None => schema_path(name),
            Some(dir) => {
                let file = if name.ends_with(".ovsschema") {
                    name.to_string()
                } else {
                    format!("{name}.ovsschema")
                };
                dir.join(file)
            }
        }
    }

    fn start_db(&self, schema: &str, name: &str) -> Result<Server> {
        let mut builder = Server::builder(self.schema_path(schema))
            .name(name)
            .listen(Listen::Unix);
        for arg in &self.server_args {
            builder = builder.arg(arg.clone());
        }
        builder
            .start()
            .with_context(|| format!("starting the {name} database"))
    }

    /// [`init_global`] against the schema these options use.
    fn init_global(
        &self,
        server: &Server,
        schema: &str,
        table: &str,
        row: serde_json::Value,
    ) -> Result<()> {
        if Schema::load(self.schema_path(schema))?.has_table(table) {
            server.transact(json!([{"op": "insert", "table": table, "row": row}]))?;
        }
        Ok(())
    }
}

impl IcDbs {
    /// [`IcDbs::start`] with the schemas of `dir` (e.g. `/usr/share/ovn`), whatever
    /// `OVN_SCHEMA_DIR` says.
    pub fn start_with_schema_dir(dir: impl Into<PathBuf>) -> Result<IcDbs> {
        IcDbs::start_with(&DbOptions::schema_dir(dir))
    }

    /// [`IcDbs::start`] with explicit [`DbOptions`].
    pub fn start_with(opts: &DbOptions) -> Result<IcDbs> {
        let dbs = IcDbs {
            ic_nb: opts.start_db("ovn-ic-nb", "ic-nb")?,
            ic_sb: opts.start_db("ovn-ic-sb", "ic-sb")?,
        };
        opts.init_global(&dbs.ic_nb, "ovn-ic-nb", "IC_NB_Global", json!({}))?;
        opts.init_global(&dbs.ic_sb, "ovn-ic-sb", "IC_SB_Global", json!({}))?;
        Ok(dbs)
    }
}

impl AzDbs {
    /// [`AzDbs::start`] with the schemas of `dir`, whatever `OVN_SCHEMA_DIR` says.
    pub fn start_with_schema_dir(name: &str, dir: impl Into<PathBuf>) -> Result<AzDbs> {
        AzDbs::start_with(name, &DbOptions::schema_dir(dir))
    }

    /// [`AzDbs::start`] with explicit [`DbOptions`].
    pub fn start_with(name: &str, opts: &DbOptions) -> Result<AzDbs> {
        let az = AzDbs {
            name: name.to_string(),
            nb: opts.start_db("ovn-nb", &format!("{name}-nb"))?,
            sb: opts.start_db("ovn-sb", &format!("{name}-sb"))?,
        };
        opts.init_global(&az.nb, "ovn-nb", "NB_Global", json!({ "name": name }))?;
        opts.init_global(&az.sb, "ovn-sb", "SB_Global", json!({}))?;
        Ok(az)
    }
}
