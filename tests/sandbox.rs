//! `scripts/sandbox.sh` (the README's run command) end to end: `start` with this crate's debug
//! binary (`--no-build --no-install`, `OVN_IC_BIN`) in a temporary directory, the printed
//! summary (every AZ learned the other AZs' routes), a second `start` refused while it runs,
//! `stop` leaves no process and no directory behind; the C daemon in one AZ (mixed operation);
//! and the refusals that must start nothing: a socket path bound by another process, a missing
//! tool (PATH without `ovn-northd`), `stop` on a directory that is no sandbox.
//!
//! The sandbox's daemons detach (`--detach`), so the harness's `Proc` cannot own them: a guard
//! runs `sandbox.sh stop` on drop and then SIGKILLs whatever its pidfiles still name, so a failing
//! test leaves nothing running either.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{our_ovn_ic, TestDir};

/// Generous: three AZs with northd and ovn-ic each on 2 shared cores.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(300);
/// The script's own convergence timeout (seconds).
const CONVERGE_SECS: &str = "180";

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/sandbox.sh")
}

struct Outcome {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Outcome {
    fn describe(&self) -> String {
        format!(
            "{}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

/// `bash scripts/sandbox.sh ARGS...` with our binary, the OVN client variables removed, `envs`
/// added, and `path` as PATH when given; killed after [`SCRIPT_TIMEOUT`].
fn sandbox_env(args: &[&str], path: Option<&Path>, envs: &[(&str, &str)]) -> Outcome {
    let out_dir = TestDir::new("sandbox-out").expect("temp dir");
    let (out, err) = (out_dir.join("stdout"), out_dir.join("stderr"));
    let mut cmd = Command::new("/bin/bash");
    cmd.arg(script())
        .args(args)
        .env("OVN_IC_BIN", our_ovn_ic())
        .env("SANDBOX_TIMEOUT", CONVERGE_SECS)
        .stdin(Stdio::null())
        .stdout(fs::File::create(&out).expect("stdout file"))
        .stderr(fs::File::create(&err).expect("stderr file"));
    for var in [
        "OVN_NB_DB",
        "OVN_SB_DB",
        "OVN_IC_NB_DB",
        "OVN_IC_SB_DB",
        "OVN_RUNDIR",
        "OVN_IC_C_BIN",
    ] {
        cmd.env_remove(var);
    }
    if let Some(p) = path {
        cmd.env("PATH", p);
    }
    cmd.envs(envs.iter().copied());
    let mut child = cmd.spawn().expect("starting sandbox.sh");
    let deadline = Instant::now() + SCRIPT_TIMEOUT;
    let status = loop {
        if let Some(st) = child.try_wait().expect("waiting for sandbox.sh") {
            break st;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "sandbox.sh {args:?} timed out; stderr:\n{}",
                fs::read_to_string(&err).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Outcome {
        status,
        stdout: fs::read_to_string(&out).unwrap_or_default(),
        stderr: fs::read_to_string(&err).unwrap_or_default(),
    }
}

/// [`sandbox_env`] without extra variables.
fn sandbox(args: &[&str], path: Option<&Path>) -> Outcome {
    sandbox_env(args, path, &[])
}

/// The pid files a sandbox in `dir` writes (whatever exists).
fn pidfiles(dir: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    for sub in ["ic", "az1", "az2", "az3"] {
        if let Ok(rd) = fs::read_dir(dir.join(sub)) {
            for e in rd.flatten() {
                if e.path().extension().is_some_and(|x| x == "pid") {
                    v.push(e.path());
                }
            }
        }
    }
    v.sort();
    v
}

/// Whether `pid` is a live (not zombie) process whose command line names `dir`.
fn runs_in(pid: u32, dir: &Path) -> bool {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat.rsplit(')').next().unwrap_or("").trim_start();
    if stat.is_empty() || state.starts_with('Z') || state.starts_with('X') {
        return false;
    }
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    String::from_utf8_lossy(&cmdline).contains(&*dir.to_string_lossy())
}

/// `name → pid` of every sandbox process that runs now.
fn live(dir: &Path) -> BTreeMap<String, u32> {
    pidfiles(dir)
        .into_iter()
        .filter_map(|f| {
            let pid: u32 = fs::read_to_string(&f).ok()?.trim().parse().ok()?;
            let name = f.strip_prefix(dir).ok()?.display().to_string();
            runs_in(pid, dir).then_some((name, pid))
        })
        .collect()
}

/// Unix socket paths under `dir` that some process has bound (`/proc/net/unix`).
fn bound_sockets(dir: &Path) -> Vec<String> {
    let prefix = format!("{}/", dir.display());
    fs::read_to_string("/proc/net/unix")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().nth(7))
        .filter(|p| p.starts_with(&prefix))
        .map(str::to_string)
        .collect()
}

/// Stops the sandbox in `dir` on drop (script first, then SIGKILL by pid for anything left,
/// including processes noted with [`Guard::note`] whose pidfiles are gone).
struct Guard {
    dir: PathBuf,
    noted: Vec<u32>,
}

impl Guard {
    fn new(dir: &Path) -> Guard {
        Guard {
            dir: dir.to_path_buf(),
            noted: Vec::new(),
        }
    }

    fn note(&mut self, pids: impl IntoIterator<Item = u32>) {
        self.noted.extend(pids);
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if self.dir.join(".ovn-ic-sandbox").exists() {
            let d = self.dir.to_string_lossy().into_owned();
            let _ = std::panic::catch_unwind(|| sandbox(&["stop", "--dir", &d], None));
        }
        let mut pids: Vec<u32> = live(&self.dir).into_values().collect();
        pids.extend(self.noted.iter().copied());
        for pid in pids {
            if runs_in(pid, &self.dir) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }
}

/// The summary's per-AZ sections: `az → learned prefixes` (lines `   learned    P via ...`
/// under `== azN: ...`).
fn learned_by_az(summary: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut by_az: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in summary.lines() {
        if let Some(rest) = line.strip_prefix("== az") {
            let az = format!("az{}", rest.split(':').next().unwrap_or(""));
            by_az.entry(az.clone()).or_default();
            current = Some(az);
        } else if line.starts_with("== ") || line.is_empty() {
            current = None;
        } else if let (Some(az), Some(rest)) = (&current, line.trim().strip_prefix("learned")) {
            if let Some(prefix) = rest.split_whitespace().next() {
                by_az.get_mut(az).unwrap().insert(prefix.to_string());
            }
        }
    }
    by_az
}

/// What every AZ must have learned: the connected network and the static route of each other
/// AZ (`10.M.0.1/24` — the router port's network as advertised — and `10.M.1.0/24`).
fn expected_learned() -> BTreeMap<String, BTreeSet<String>> {
    (1..=3)
        .map(|n| {
            let set = (1..=3)
                .filter(|m| *m != n)
                .flat_map(|m| [format!("10.{m}.0.1/24"), format!("10.{m}.1.0/24")])
                .collect();
            (format!("az{n}"), set)
        })
        .collect()
}

/// Two sandboxes (28 processes) at once would only slow each other down.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Starts a sandbox, checks the summary, then stops it and checks nothing is left.
fn start_check_stop(extra: &[&str], envs: &[(&str, &str)]) -> String {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = TestDir::new("sandbox").expect("temp dir");
    let dir = tmp.join("sbx");
    let d = dir.to_string_lossy().into_owned();
    let mut guard = Guard::new(&dir);
    let mut args = vec!["start", "--dir", &d, "--no-build", "--no-install"];
    args.extend_from_slice(extra);
    let started = sandbox_env(&args, None, envs);
    assert!(
        started.status.success(),
        "start failed: {}",
        started.describe()
    );

    // The summary: AZs, gateways, port bindings, and every AZ learned the others' routes.
    let out = &started.stdout;
    assert!(
        out.contains("Availability zones (IC-SB): az1 az2 az3"),
        "{out}"
    );
    for n in 1..=3 {
        assert!(
            out.contains(&format!("  gw{n}  az=az{n}")),
            "gateway gw{n}: {out}"
        );
        assert!(
            out.contains(&format!("ts1 lsp-lr{n}-ts1  az=az{n}")),
            "port binding of lr{n}: {out}"
        );
        assert!(
            out.contains(&format!("advertised 10.{n}.1.0/24 via 169.254.100.{n}")),
            "az{n}'s static route advertised: {out}"
        );
    }
    assert_eq!(learned_by_az(out), expected_learned(), "{out}");
    // The environment lines and each AZ's control socket.
    assert!(
        out.contains(&format!("export OVN_NB_DB=unix:{d}/az1/ovnnb_db.sock")),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "export OVN_IC_NB_DB=unix:{d}/ic/ovn_ic_nb_db.sock"
        )),
        "{out}"
    );
    let running = live(&dir);
    guard.note(running.values().copied());
    assert_eq!(running.len(), 14, "processes: {running:?}");
    for az in ["az1", "az2", "az3"] {
        let pid = running[&format!("{az}/ovn-ic.pid")];
        let ctl = format!("{d}/{az}/ovn-ic.{pid}.ctl");
        assert!(
            out.contains(&format!("ovn-appctl -t {ctl} status")),
            "{out}"
        );
        let status = common::appctl(Path::new(&ctl), &["status"]).expect("appctl status");
        assert!(status.contains("Status: active"), "{az}: {status}");
    }

    // A second start into the running sandbox is refused and changes nothing.
    let again = sandbox_env(&args, None, envs);
    assert_eq!(again.status.code(), Some(1), "{}", again.describe());
    assert!(
        again.stderr.contains("already running in"),
        "{}",
        again.describe()
    );
    assert_eq!(live(&dir), running);

    let stopped = sandbox(&["stop", "--dir", &d], None);
    assert!(
        stopped.status.success(),
        "stop failed: {}",
        stopped.describe()
    );
    for (name, pid) in &running {
        assert!(
            !runs_in(*pid, &dir),
            "{name} (pid {pid}) still runs after stop"
        );
    }
    assert!(
        stopped.stdout.contains("stopped 14 processes"),
        "{}",
        stopped.describe()
    );
    assert!(bound_sockets(&dir).is_empty(), "{:?}", bound_sockets(&dir));
    assert!(!dir.exists(), "{d} still exists after stop");
    started.stdout
}

#[test]
fn sandbox_start_summary_stop() {
    start_check_stop(&[], &[]);
}

#[test]
fn sandbox_mixed_with_c_daemon() {
    if !Path::new(common::C_OVN_IC).exists() {
        eprintln!("skipping: {} not installed", common::C_OVN_IC);
        return;
    }
    // Debian's C daemon (23.03) wants Debian's schemas.
    let out = start_check_stop(
        &["--c-daemon-az", "2"],
        &[("OVN_SCHEMA_DIR", "/usr/share/ovn")],
    );
    assert!(out.contains("== az2: ovn-ic C ovn-ic"), "{out}");
    assert!(out.contains("== az1: ovn-ic ours"), "{out}");
}

#[test]
fn sandbox_refuses_a_socket_in_use() {
    let tmp = TestDir::new("sandbox").expect("temp dir");
    let dir = tmp.join("sbx");
    let d = dir.to_string_lossy().into_owned();
    let _guard = Guard::new(&dir);
    // A stopped sandbox (marker present) whose IC-SB socket path someone else listens on.
    fs::create_dir_all(dir.join("ic")).unwrap();
    fs::write(dir.join(".ovn-ic-sandbox"), "test\n").unwrap();
    let sock = dir.join("ic/ovn_ic_sb_db.sock");
    let listener = UnixListener::bind(&sock).expect("binding the socket");
    let r = sandbox(&["start", "--dir", &d, "--no-build", "--no-install"], None);
    assert_eq!(r.status.code(), Some(1), "{}", r.describe());
    assert!(
        r.stderr.contains(&format!(
            "socket {} is in use by another process",
            sock.display()
        )),
        "{}",
        r.describe()
    );
    // Nothing started, nothing removed: the listener still owns its socket.
    assert!(pidfiles(&dir).is_empty(), "{:?}", pidfiles(&dir));
    assert!(sock.exists());
    std::os::unix::net::UnixStream::connect(&sock).expect("the listener's socket still works");
    drop(listener);

    // `stop` on a directory that is not a sandbox refuses too.
    let plain = tmp.join("plain");
    fs::create_dir(&plain).unwrap();
    let r = sandbox(&["stop", "--dir", &plain.to_string_lossy()], None);
    assert_eq!(r.status.code(), Some(1), "{}", r.describe());
    assert!(
        r.stderr.contains("is not a sandbox directory"),
        "{}",
        r.describe()
    );
    assert!(plain.exists());
}

#[test]
fn sandbox_refuses_a_missing_tool() {
    let tmp = TestDir::new("sandbox").expect("temp dir");
    // A PATH with everything of the real one except ovn-northd.
    let bin = tmp.join("bin");
    fs::create_dir(&bin).unwrap();
    let path = std::env::var_os("PATH").unwrap_or_default();
    for d in std::env::split_paths(&path) {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let name = e.file_name();
            let link = bin.join(&name);
            if name == "ovn-northd" || link.exists() {
                continue;
            }
            let _ = std::os::unix::fs::symlink(e.path(), &link);
        }
    }
    assert!(
        bin.join("ovn-nbctl").exists(),
        "PATH has no ovn-nbctl to keep"
    );
    let dir = tmp.join("sbx");
    let d = dir.to_string_lossy().into_owned();
    let _guard = Guard::new(&dir);
    let r = sandbox(
        &["start", "--dir", &d, "--no-build", "--no-install"],
        Some(&bin),
    );
    assert_eq!(r.status.code(), Some(1), "{}", r.describe());
    assert!(
        r.stderr
            .contains("missing tool(s): ovn-northd (package ovn-central)"),
        "{}",
        r.describe()
    );
    assert!(!dir.exists(), "the refused start created {d}");
}
