//! Security of the daemon end to end (the client-level TLS checks are in `tests/ovsdb_client.rs`):
//!
//! * mutual TLS with every database: the AZ registers over `ssl:` remotes, and neither the
//!   log (at `-vdbg`) nor the control socket's output contains private key material;
//! * a server whose certificate is not signed by our CA is refused (our side fails the
//!   handshake; the AZ never registers), the daemon stays alive and keeps retrying with backoff;
//! * a missing private key or certificate file is reported clearly (file name and what it is)
//!   right at start-up; as OVS does, the daemon keeps running and picks the file up once it
//!   exists, without a restart;
//! * `--ssl-protocols` and `--ssl-ciphers` are honoured: no common protocol or cipher with the
//!   server → no connection; a matching one → connection;
//! * the control socket gets the permissions OVS gives it (`bind_unix_socket` in OVS
//!   `lib/socket-util-unix.c`: `fchmod(fd, 0770)` before `bind`, so on Linux the socket file
//!   is 0770 minus the umask: 0750 under umask 022), checked against Debian's C `ovn-ic`;
//! * the daemon runs unprivileged: `--user USER` (started as root, it ends with every uid and
//!   gid of USER and owns its socket) and as a plain user without `--user` (as kube-ovn runs
//!   it). These create a user with `useradd` and are skipped when not root.

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use common::{
    our_ovn_ic, rows, run, schema_path, wait_until, AzDbs, Daemon, IcDbs, Listen, Pki, Proc,
    Schema, Server, SslFiles, TestDir, C_OVN_IC,
};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(30);

fn init_global(server: &Server, schema: &str, table: &str, row: serde_json::Value) -> Result<()> {
    if Schema::ovn(schema)?.has_table(table) {
        server.transact(json!([{"op": "insert", "table": table, "row": row}]))?;
    }
    Ok(())
}

/// IC-NB, IC-SB, NB and SB of AZ `name`, each on its own `pssl:` listener of `pki`, plus any
/// extra `ovsdb-server` arguments.
fn ssl_dbs(pki: &Pki, name: &str, server_args: &[&str]) -> Result<(IcDbs, AzDbs)> {
    let start = |schema: &str, label: &str| -> Result<Server> {
        let mut b = Server::builder(schema_path(schema)).name(label).ssl(pki);
        for a in server_args {
            b = b.arg(*a);
        }
        b.start()
    };
    let ic = IcDbs {
        ic_nb: start("ovn-ic-nb", "ic-nb")?,
        ic_sb: start("ovn-ic-sb", "ic-sb")?,
    };
    let az = AzDbs {
        name: name.to_string(),
        nb: start("ovn-nb", &format!("{name}-nb"))?,
        sb: start("ovn-sb", &format!("{name}-sb"))?,
    };
    init_global(&ic.ic_nb, "ovn-ic-nb", "IC_NB_Global", json!({}))?;
    init_global(&ic.ic_sb, "ovn-ic-sb", "IC_SB_Global", json!({}))?;
    init_global(&az.nb, "ovn-nb", "NB_Global", json!({ "name": name }))?;
    init_global(&az.sb, "ovn-sb", "SB_Global", json!({}))?;
    Ok((ic, az))
}

/// The plain (non-TLS) setup: every database on a unix socket, except IC-SB which listens
/// with TLS (optionally with extra server arguments).
fn ssl_isb_only(pki: &Pki, name: &str, isb_args: &[&str]) -> Result<(IcDbs, AzDbs)> {
    let mut b = Server::builder(schema_path("ovn-ic-sb"))
        .name("ic-sb")
        .ssl(pki);
    for a in isb_args {
        b = b.arg(*a);
    }
    let ic = IcDbs {
        ic_nb: Server::standalone(schema_path("ovn-ic-nb"), Listen::Unix)?,
        ic_sb: b.start()?,
    };
    init_global(&ic.ic_nb, "ovn-ic-nb", "IC_NB_Global", json!({}))?;
    init_global(&ic.ic_sb, "ovn-ic-sb", "IC_SB_Global", json!({}))?;
    Ok((ic, AzDbs::start(name)?))
}

fn registered(ic: &IcDbs, name: &str) -> bool {
    ic.ic_sb.dump().is_ok_and(|db| {
        rows(&db, "Availability_Zone")
            .iter()
            .any(|r| r.get("name").and_then(|v| v.as_str()) == Some(name))
    })
}

fn args(list: &[String]) -> Vec<&str> {
    list.iter().map(String::as_str).collect()
}

/// Lines of the PEM body of a key file (base64 lines, no BEGIN/END), for leak checks.
fn pem_body_lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.starts_with("-----") && l.len() >= 40)
        .map(str::to_string)
        .collect()
}

fn assert_no_key_material(text: &str, key: &Path, what: &str) {
    assert!(
        !text.contains("PRIVATE KEY"),
        "{what} mentions a PRIVATE KEY:\n{text}"
    );
    for line in pem_body_lines(key) {
        assert!(
            !text.contains(&line[..40]),
            "{what} contains private key material ({})",
            &line[..40]
        );
    }
}

#[test]
fn mutual_tls_with_every_database_and_no_key_material_in_logs() -> Result<()> {
    let pki = Pki::new()?;
    let (ic, az) = ssl_dbs(&pki, "az1", &[])?;
    let mut extra = pki.client.args();
    extra.push("-vdbg".into());
    let mut d = Daemon::ovn_ic(our_ovn_ic(), &az, &ic, &args(&extra))?;
    assert!(
        wait_until(WAIT, || registered(&ic, "az1")),
        "az1 never registered over TLS:\n{}",
        d.log_text()
    );
    // A transit switch flows IC-NB → NB over TLS too.
    ic.ic_nb
        .transact(json!([{"op": "insert", "table": "Transit_Switch",
                              "row": {"name": "ts1"}}]))?;
    assert!(wait_until(WAIT, || az.nb.dump().is_ok_and(|db| {
        rows(&db, "Logical_Switch")
            .iter()
            .any(|r| r.get("name").and_then(|v| v.as_str()) == Some("ts1"))
    })));
    assert!(d.is_running());
    // Everything the daemon says about itself, at debug level.
    let mut said = d.log_text();
    for cmd in [
        &["vlog/list"][..],
        &["memory/show"],
        &["coverage/show"],
        &["connection-status"],
    ] {
        if let Ok(out) = d.appctl(cmd) {
            said.push_str(&out);
        }
    }
    said.push_str(&fs::read_to_string(d.dir().join("ovn-ic-az1.out")).unwrap_or_default());
    assert_no_key_material(
        &said,
        &pki.client.private_key,
        "ovn-ic's log and appctl output",
    );
    Ok(())
}

#[test]
fn server_certificate_from_another_ca_is_refused() -> Result<()> {
    let pki = Pki::new()?;
    let (ic, az) = ssl_isb_only(&pki, "az1", &[])?;
    // Our own key pair is fine for the server; only the CA we trust is a different one.
    let ours = SslFiles {
        ca_cert: pki.other_ca_cert.clone(),
        ..pki.client.clone()
    };
    let mut d = Daemon::ovn_ic(our_ovn_ic(), &az, &ic, &args(&ours.args()))?;
    let refused = wait_until(WAIT, || {
        let log = d.log_text().to_lowercase();
        log.contains("certificate verify failed") || log.contains("certificate_verify_failed")
    });
    assert!(
        refused,
        "no certificate verification failure logged:\n{}",
        d.log_text()
    );
    std::thread::sleep(Duration::from_secs(5));
    assert!(
        !registered(&ic, "az1"),
        "registered through an untrusted server"
    );
    assert!(d.is_running(), "ovn-ic died:\n{}", d.log_text());
    // Retried with backoff, not in a tight loop: a handful of attempts in this time.
    let attempts = d
        .log_text()
        .to_lowercase()
        .matches("certificate verify failed")
        .count();
    assert!(attempts < 30, "{attempts} failed handshakes logged");
    assert_no_key_material(&d.log_text(), &pki.client.private_key, "ovn-ic's log");

    // Control: the same daemon options with the right CA connect.
    drop(d);
    let d = Daemon::ovn_ic(our_ovn_ic(), &az, &ic, &args(&pki.client.args()))?;
    assert!(
        wait_until(WAIT, || registered(&ic, "az1")),
        "the right CA did not connect either:\n{}",
        d.log_text()
    );
    Ok(())
}

#[test]
fn missing_key_or_certificate_is_reported_at_startup() -> Result<()> {
    let pki = Pki::new()?;
    let (ic, az) = ssl_isb_only(&pki, "az1", &[])?;
    let dir = TestDir::new("missing")?;
    for (which, what) in [
        ("private_key", "private key"),
        ("certificate", "certificate"),
    ] {
        let absent = dir.join(format!("absent-{which}.pem"));
        let mut files = pki.client.clone();
        match which {
            "private_key" => files.private_key = absent.clone(),
            _ => files.certificate = absent.clone(),
        }
        let mut d = Daemon::ovn_ic(our_ovn_ic(), &az, &ic, &args(&files.args()))?;
        let shown = absent.display().to_string();
        let clear = wait_until(WAIT, || {
            d.log_text()
                .lines()
                .any(|l| l.contains("|ERR|") && l.contains(&shown) && l.contains(what))
        });
        assert!(
            clear,
            "no ERR line naming {shown} ({what}):\n{}",
            d.log_text()
        );
        // The error is logged once, not on every retry (the reconnect lines that repeat it
        // are INFO and back off).
        std::thread::sleep(Duration::from_secs(3));
        let errs = d
            .log_text()
            .lines()
            .filter(|l| l.contains("|ERR|") && l.contains(&shown))
            .count();
        assert_eq!(errs, 1, "{shown} reported {errs} times:\n{}", d.log_text());
        assert!(d.is_running(), "ovn-ic exited:\n{}", d.log_text());
        assert!(!registered(&ic, "az1"));
        // Like OVS, the file is picked up once it appears, without a restart.
        let source = match which {
            "private_key" => &pki.client.private_key,
            _ => &pki.client.certificate,
        };
        fs::copy(source, &absent)?;
        assert!(
            wait_until(Duration::from_secs(60), || registered(&ic, "az1")),
            "the {what} was not picked up once it existed:\n{}",
            d.log_text()
        );
        drop(d);
        // Unregister for the next round.
        ic.ic_sb
            .transact(json!([{"op": "delete", "table": "Availability_Zone", "where": []}]))?;
        fs::remove_file(&absent)?;
    }
    Ok(())
}

#[test]
fn ssl_protocols_and_ciphers_are_honoured() -> Result<()> {
    let pki = Pki::new()?;
    // The server speaks only TLS 1.2 with one cipher.
    let (ic, az) = ssl_isb_only(
        &pki,
        "az1",
        &[
            "--ssl-protocols=TLSv1.2",
            "--ssl-ciphers=ECDHE-RSA-AES256-GCM-SHA384",
        ],
    )?;
    let base = pki.client.args();
    let attempt = |extra: &[&str]| -> Result<(bool, String)> {
        let mut a = args(&base);
        a.extend_from_slice(extra);
        let d = Daemon::ovn_ic(our_ovn_ic(), &az, &ic, &a)?;
        let ok = wait_until(Duration::from_secs(12), || registered(&ic, "az1"));
        let log = d.log_text();
        drop(d);
        if ok {
            ic.ic_sb
                .transact(json!([{"op": "delete", "table": "Availability_Zone", "where": []}]))?;
        }
        Ok((ok, log))
    };
    let (ok, log) = attempt(&["--ssl-protocols=TLSv1.3"])?;
    assert!(
        !ok,
        "connected with TLSv1.3 only to a TLSv1.2-only server:\n{log}"
    );
    let (ok, log) = attempt(&[
        "--ssl-protocols=TLSv1.2",
        "--ssl-ciphers=ECDHE-RSA-AES128-GCM-SHA256",
    ])?;
    assert!(!ok, "connected without a common cipher:\n{log}");
    let (ok, log) = attempt(&[
        "--ssl-protocols=TLSv1.2",
        "--ssl-ciphers=ECDHE-RSA-AES256-GCM-SHA384",
    ])?;
    assert!(
        ok,
        "the matching protocol and cipher did not connect:\n{log}"
    );
    let (ok, log) = attempt(&[])?;
    assert!(ok, "the defaults (TLSv1.2+) did not connect:\n{log}");
    Ok(())
}

/// The mode bits of the control socket `program` creates under `umask`.
fn socket_mode(program: &Path, umask: &str) -> Result<u32> {
    let az = AzDbs::start("az1")?;
    let ic = IcDbs::start()?;
    // A shell sets the umask, then becomes the daemon; the harness's options follow "$@".
    let mut a = vec![
        "-c".to_string(),
        format!("umask {umask}; exec \"$0\" \"$@\""),
        program.display().to_string(),
    ];
    a.extend(az.ovn_ic_args(&ic));
    let d = Daemon::start("ovn-ic-umask", "sh", &a)?;
    let mode = fs::metadata(d.ctl_path())?.permissions().mode();
    Ok(mode & 0o7777)
}

#[test]
fn control_socket_permissions_are_those_of_ovs() -> Result<()> {
    for (umask, want) in [("022", 0o750), ("002", 0o770), ("077", 0o700)] {
        let ours = socket_mode(&our_ovn_ic(), umask)?;
        assert_eq!(ours, want, "umask {umask}: ours {ours:o}, want {want:o}");
        if Path::new(C_OVN_IC).exists() {
            let c = socket_mode(Path::new(C_OVN_IC), umask)?;
            assert_eq!(ours, c, "umask {umask}: ours {ours:o}, C ovn-ic {c:o}");
        }
    }
    Ok(())
}

/// A system user created for one test, deleted on drop.
struct TestUser {
    name: String,
    uid: u32,
    gid: u32,
}

impl TestUser {
    /// `None` (test skipped) unless running as root with `useradd` available.
    fn create(tag: &str) -> Option<TestUser> {
        if !nix::unistd::Uid::effective().is_root() {
            eprintln!("skipping: not root, cannot create a user");
            return None;
        }
        let name = format!("ovnic{tag}{}", std::process::id() % 100_000);
        let out = run(
            "useradd",
            [
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                &name,
            ],
            Duration::from_secs(30),
        );
        if let Err(e) = out {
            eprintln!("skipping: useradd failed: {e:#}");
            return None;
        }
        let user = nix::unistd::User::from_name(&name).ok().flatten()?;
        Some(TestUser {
            name,
            uid: user.uid.as_raw(),
            gid: user.gid.as_raw(),
        })
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        let _ = Command::new("userdel").arg(&self.name).output();
    }
}

/// IC and AZ databases on TCP (an unprivileged daemon cannot reach the harness's private unix
/// sockets).
fn tcp_dbs(name: &str) -> Result<(IcDbs, AzDbs)> {
    let start = |schema: &str, label: &str| -> Result<Server> {
        Server::builder(schema_path(schema))
            .name(label)
            .listen(Listen::Tcp)
            .start()
    };
    let ic = IcDbs {
        ic_nb: start("ovn-ic-nb", "ic-nb")?,
        ic_sb: start("ovn-ic-sb", "ic-sb")?,
    };
    let az = AzDbs {
        name: name.to_string(),
        nb: start("ovn-nb", &format!("{name}-nb"))?,
        sb: start("ovn-sb", &format!("{name}-sb"))?,
    };
    init_global(&ic.ic_nb, "ovn-ic-nb", "IC_NB_Global", json!({}))?;
    init_global(&ic.ic_sb, "ovn-ic-sb", "IC_SB_Global", json!({}))?;
    init_global(&az.nb, "ovn-nb", "NB_Global", json!({ "name": name }))?;
    init_global(&az.sb, "ovn-sb", "SB_Global", json!({}))?;
    Ok((ic, az))
}

/// `Uid:` / `Gid:` lines of /proc/PID/status: (real, effective, saved, fs) each.
fn proc_ids(pid: u32) -> Result<(Vec<u32>, Vec<u32>)> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))?;
    let ids = |key: &str| -> Vec<u32> {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .map(|l| {
                l.split_whitespace()
                    .skip(1)
                    .filter_map(|x| x.parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    };
    Ok((ids("Uid:"), ids("Gid:")))
}

/// Starts our daemon in `dir` (world-writable) as described by `setup`, waits for its socket.
fn start_unprivileged(
    dir: &TestDir,
    az: &AzDbs,
    ic: &IcDbs,
    extra: &[String],
    setup: impl FnOnce(&mut Command),
) -> Result<(Proc, PathBuf, PathBuf)> {
    let ctl = dir.join("ovn-ic.ctl");
    let log = dir.join("ovn-ic.log");
    let mut cmd = Command::new(our_ovn_ic());
    for var in [
        "OVS_RUNDIR",
        "OVS_LOGDIR",
        "OVS_DBDIR",
        "OVN_RUNDIR",
        "OVN_LOGDIR",
        "OVN_DBDIR",
    ] {
        cmd.env(var, dir.path());
    }
    cmd.args(az.ovn_ic_args(ic))
        .args(extra)
        .arg(format!("--unixctl={}", ctl.display()))
        .arg(format!("--log-file={}", log.display()))
        .arg("-vconsole:off")
        .arg("--no-chdir")
        .current_dir(dir.path());
    setup(&mut cmd);
    let mut proc = Proc::spawn("ovn-ic", cmd, &dir.join("ovn-ic.out"), Some(log.clone()))?;
    let up = wait_until(WAIT, || {
        proc.is_running() && UnixStream::connect(&ctl).is_ok()
    });
    if !up {
        bail!(
            "unprivileged ovn-ic did not open {}: {}{}",
            ctl.display(),
            fs::read_to_string(dir.join("ovn-ic.out")).unwrap_or_default(),
            fs::read_to_string(&log).unwrap_or_default()
        );
    }
    Ok((proc, ctl, log))
}

fn world_writable_dir(tag: &str) -> Result<TestDir> {
    let dir = TestDir::new(tag)?;
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o777))
        .context("chmod 0777 on the test directory")?;
    Ok(dir)
}

#[test]
fn runs_as_another_user_with_the_user_option() -> Result<()> {
    let Some(user) = TestUser::create("u") else {
        return Ok(());
    };
    let (ic, az) = tcp_dbs("az1")?;
    let dir = world_writable_dir("user")?;
    let (mut proc, ctl, log) =
        start_unprivileged(&dir, &az, &ic, &[format!("--user={}", user.name)], |_| {})?;
    assert!(
        wait_until(WAIT, || registered(&ic, "az1")),
        "az1 never registered:\n{}",
        fs::read_to_string(&log).unwrap_or_default()
    );
    let (uids, gids) = proc_ids(proc.pid())?;
    assert_eq!(uids, vec![user.uid; 4], "uids (real, effective, saved, fs)");
    assert_eq!(gids, vec![user.gid; 4], "gids (real, effective, saved, fs)");
    let groups = fs::read_to_string(format!("/proc/{}/status", proc.pid()))?
        .lines()
        .find(|l| l.starts_with("Groups:"))
        .map(|l| l.trim_start_matches("Groups:").trim().to_string())
        .unwrap_or_default();
    assert!(
        groups.split_whitespace().all(|g| g == user.gid.to_string()),
        "root's supplementary groups kept: {groups:?}"
    );
    assert_eq!(fs::metadata(&ctl)?.uid(), user.uid, "control socket owner");
    assert_eq!(fs::metadata(&log)?.uid(), user.uid, "log file owner");
    let out = common::appctl(&ctl, &["version"])?;
    assert!(out.contains("ovn-ic"), "{out}");
    assert!(proc.is_running());
    Ok(())
}

#[test]
fn runs_as_a_plain_user_without_the_user_option() -> Result<()> {
    let Some(user) = TestUser::create("p") else {
        return Ok(());
    };
    let (ic, az) = tcp_dbs("az1")?;
    let dir = world_writable_dir("plain")?;
    let (uid, gid) = (user.uid, user.gid);
    let (mut proc, ctl, log) = start_unprivileged(&dir, &az, &ic, &[], |cmd| {
        // As root, std also drops the supplementary groups (setgroups(0)) before setuid.
        cmd.uid(uid).gid(gid);
    })?;
    assert!(
        wait_until(WAIT, || registered(&ic, "az1")),
        "az1 never registered:\n{}",
        fs::read_to_string(&log).unwrap_or_default()
    );
    ic.ic_nb
        .transact(json!([{"op": "insert", "table": "Transit_Switch",
                              "row": {"name": "ts1"}}]))?;
    assert!(wait_until(WAIT, || az.nb.dump().is_ok_and(|db| {
        rows(&db, "Logical_Switch")
            .iter()
            .any(|r| r.get("name").and_then(|v| v.as_str()) == Some("ts1"))
    })));
    let (uids, _) = proc_ids(proc.pid())?;
    assert_eq!(uids, vec![uid; 4]);
    assert_eq!(fs::metadata(&ctl)?.uid(), uid);
    let text = fs::read_to_string(&log).unwrap_or_default();
    assert!(!text.contains("|ERR|"), "errors as a plain user:\n{text}");
    // `--user` needs root; as a plain user it is refused with OVS's message.
    let out = Command::new(our_ovn_ic())
        .arg(format!("--user={}", user.name))
        .arg("--unixctl=/nonexistent/x.ctl")
        .uid(uid)
        .gid(gid)
        .output()?;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("only root can use --user option"), "{err}");
    assert!(proc.is_running());
    Ok(())
}
