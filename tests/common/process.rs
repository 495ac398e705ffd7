//! Owned child processes that cannot outlive the test, temporary directories, and running a
//! one-shot tool with a timeout.

use std::ffi::OsStr;
use std::fs;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// A private temporary directory, removed on drop unless `OVN_IC_TEST_KEEP` is set (then its
/// path is printed so it can be inspected).
///
/// Created under `$TMPDIR` when that path is short, else under `/tmp`: unix socket paths are
/// limited to 107 bytes and our clients do not use OVS's `/proc/self/fd` workaround.
pub struct TestDir {
    dir: Option<tempfile::TempDir>,
    path: PathBuf,
}

impl TestDir {
    /// A new directory whose name starts with `ovnic-<prefix>-`.
    pub fn new(prefix: &str) -> Result<TestDir> {
        let base = std::env::temp_dir();
        let base = if base.as_os_str().len() <= 40 {
            base
        } else {
            PathBuf::from("/tmp")
        };
        let dir = tempfile::Builder::new()
            .prefix(&format!("ovnic-{prefix}-"))
            .tempdir_in(&base)
            .with_context(|| format!("creating a temporary directory in {}", base.display()))?;
        let path = dir.path().to_path_buf();
        Ok(TestDir {
            dir: Some(dir),
            path,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `self.path().join(name)`.
    pub fn join(&self, name: impl AsRef<Path>) -> PathBuf {
        self.path.join(name)
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        if std::env::var_os("OVN_IC_TEST_KEEP").is_some_and(|v| !v.is_empty() && v != "0") {
            if let Some(d) = self.dir.take() {
                eprintln!("harness: keeping {}", d.keep().display());
            }
        }
    }
}

/// Environment for every child: all OVS/OVN run, log, db and config directories inside `dir`,
/// so a child never touches the system's daemons or files by default.
pub(crate) fn isolate_env(cmd: &mut Command, dir: &Path) {
    for var in [
        "OVS_RUNDIR",
        "OVS_LOGDIR",
        "OVS_DBDIR",
        "OVS_SYSCONFDIR",
        "OVN_RUNDIR",
        "OVN_LOGDIR",
        "OVN_DBDIR",
        "OVN_SYSCONFDIR",
    ] {
        cmd.env(var, dir);
    }
    // Daemons read these as default remotes; a test must pass remotes explicitly.
    for var in [
        "OVN_NB_DB",
        "OVN_SB_DB",
        "OVN_IC_NB_DB",
        "OVN_IC_SB_DB",
        "OVS_CTL_TIMEOUT",
    ] {
        cmd.env_remove(var);
    }
}

type SpawnRequest = (Command, mpsc::Sender<io::Result<Child>>);

/// All long-running children are forked by one thread that lives as long as the test process:
/// `PR_SET_PDEATHSIG` fires when the *thread* that forked the child exits, so forking from the
/// test's own thread would kill a server that a test handed to another thread, or that a helper
/// thread started. With a permanent spawner the signal fires only when the process dies.
fn spawner() -> &'static Mutex<mpsc::Sender<SpawnRequest>> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<SpawnRequest>>> = OnceLock::new();
    SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        std::thread::Builder::new()
            .name("harness-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    // The test may have given up waiting; then the child is dropped (std does
                    // not kill on drop) and PDEATHSIG still ends it with the process.
                    let _ = reply.send(cmd.spawn());
                }
            })
            .expect("spawning the harness spawner thread");
        Mutex::new(tx)
    })
}

fn spawn_tied_to_process(mut cmd: Command) -> io::Result<Child> {
    // SAFETY: the closure runs in the forked child before exec. It only calls prctl(2) and
    // getppid(2), both async-signal-safe system calls, touches no heap and takes no locks.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            ) != 0
            {
                return Err(io::Error::last_os_error());
            }
            // The parent may already be gone (the signal would then never come).
            if libc::getppid() == 1 {
                return Err(io::Error::other("parent exited before exec"));
            }
            Ok(())
        });
    }
    let (tx, rx) = mpsc::channel();
    spawner()
        .lock()
        .map_err(|_| io::Error::other("harness spawner lock poisoned"))?
        .send((cmd, tx))
        .map_err(|_| io::Error::other("harness spawner thread is gone"))?;
    rx.recv()
        .map_err(|_| io::Error::other("harness spawner thread is gone"))?
}

/// A long-running child process owned by the test.
///
/// Dropping it sends `SIGKILL` to its pid and reaps it, so it is gone (not even a zombie) when
/// the drop returns. If the test is panicking at that moment, the tail of the process's log file
/// (if one was given) is printed to help diagnose the failure.
pub struct Proc {
    name: String,
    child: Option<Child>,
    pid: u32,
    status: Option<ExitStatus>,
    log: Option<PathBuf>,
}

impl Proc {
    /// Starts `cmd` (stdin from /dev/null; stdout and stderr appended to `output`) as `name`
    /// (used in messages). `log` is the program's own log file, shown on failures.
    pub fn spawn(
        name: &str,
        mut cmd: Command,
        output: &Path,
        log: Option<PathBuf>,
    ) -> Result<Proc> {
        let out = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(output)
            .with_context(|| format!("opening {}", output.display()))?;
        let err = out.try_clone()?;
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        let desc = describe(&cmd);
        let child = spawn_tied_to_process(cmd).with_context(|| format!("starting {desc}"))?;
        Ok(Proc {
            name: name.to_string(),
            pid: child.id(),
            child: Some(child),
            status: None,
            log,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Whether the process is still running (a stopped process counts as running). Reaps it if
    /// it has exited.
    pub fn is_running(&mut self) -> bool {
        self.exit_status().is_none()
    }

    /// The exit status once it has exited (reaping it), else `None`.
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(st)) = child.try_wait() {
                    self.status = Some(st);
                }
            }
        }
        self.status
    }

    /// Sends `sig` to the process; no-op once it has been reaped.
    pub fn signal(&mut self, sig: Signal) -> Result<()> {
        if self.exit_status().is_some() {
            return Ok(());
        }
        match kill(Pid::from_raw(self.pid as i32), sig) {
            Ok(()) | Err(Errno::ESRCH) => Ok(()),
            Err(e) => Err(anyhow!("kill -{sig} {} ({}): {e}", self.pid, self.name)),
        }
    }

    /// `SIGKILL` and reap. Idempotent.
    pub fn kill(&mut self) {
        if self.exit_status().is_none() {
            let _ = kill(Pid::from_raw(self.pid as i32), Signal::SIGKILL);
            if let Some(child) = self.child.as_mut() {
                if let Ok(st) = child.wait() {
                    self.status = Some(st);
                }
            }
        }
    }

    /// `SIGTERM`, wait up to `grace` for a clean exit, then `SIGKILL`. Returns the exit status.
    pub fn terminate(&mut self, grace: Duration) -> Option<ExitStatus> {
        let _ = self.signal(Signal::SIGTERM);
        // A stopped process cannot act on SIGTERM.
        let _ = self.signal(Signal::SIGCONT);
        if !super::wait_until(grace, || !self.is_running()) {
            self.kill();
        }
        self.status
    }

    /// Waits up to `timeout` for the process to exit by itself.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        super::wait_until(timeout, || !self.is_running());
        self.status
    }

    /// `SIGSTOP`: the process stays alive but stops answering (a hung server).
    pub fn stop(&mut self) -> Result<()> {
        self.signal(Signal::SIGSTOP)
    }

    /// `SIGCONT` after [`Proc::stop`].
    pub fn cont(&mut self) -> Result<()> {
        self.signal(Signal::SIGCONT)
    }

    /// Fails with the program's log tail when the process has exited.
    pub fn ensure_running(&mut self) -> Result<()> {
        match self.exit_status() {
            None => Ok(()),
            Some(st) => bail!(
                "{} (pid {}) exited: {st}{}",
                self.name,
                self.pid,
                self.log.as_deref().map(log_tail_msg).unwrap_or_default()
            ),
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let was_running = self.exit_status().is_none();
        self.kill();
        if std::thread::panicking() {
            if let Some(log) = &self.log {
                eprintln!(
                    "harness: {} (pid {}, {}){}",
                    self.name,
                    self.pid,
                    if was_running { "killed" } else { "had exited" },
                    log_tail_msg(log)
                );
            }
        }
    }
}

/// "\n--- tail of PATH ---\n<last lines>" or "" when the file is missing or empty.
pub(crate) fn log_tail_msg(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    if text.trim().is_empty() {
        return String::new();
    }
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(15)..].join("\n");
    format!("\n--- tail of {} ---\n{tail}", path.display())
}

/// Whether a process with this pid exists (zombies count). Used to prove cleanup.
pub fn pid_exists(pid: u32) -> bool {
    !matches!(kill(Pid::from_raw(pid as i32), None), Err(Errno::ESRCH))
}

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Runs a one-shot tool to completion with a timeout (it is killed when the time is up, e.g.
/// `ovsdb-client` against a stopped server), and fails unless it exits 0. Returns its output.
pub fn run<I, S>(program: &str, args: I, timeout: Duration) -> Result<Output>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = Command::new(program);
    cmd.args(args);
    run_cmd(cmd, timeout)
}

/// [`run`] for a prepared command.
pub(crate) fn run_cmd(mut cmd: Command, timeout: Duration) -> Result<Output> {
    let desc = describe(&cmd);
    // Output goes to anonymous files, not pipes: a pipe could fill up while we poll for exit.
    let mut out_file = tempfile::tempfile()?;
    let mut err_file = tempfile::tempfile()?;
    cmd.stdin(Stdio::null())
        .stdout(out_file.try_clone()?)
        .stderr(err_file.try_clone()?);
    let mut child = cmd.spawn().with_context(|| format!("starting {desc}"))?;
    let deadline = Instant::now() + timeout;
    let read_all = |f: &mut fs::File| -> io::Result<Vec<u8>> {
        let mut v = Vec::new();
        f.seek(SeekFrom::Start(0))?;
        f.read_to_end(&mut v)?;
        Ok(v)
    };
    let status = loop {
        if let Some(st) = child.try_wait()? {
            break st;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = read_all(&mut err_file).unwrap_or_default();
            bail!(
                "{desc}: timed out after {timeout:?}; stderr: {}",
                String::from_utf8_lossy(&stderr).trim()
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let output = Output {
        status,
        stdout: read_all(&mut out_file)?,
        stderr: read_all(&mut err_file)?,
    };
    if !status.success() {
        bail!(
            "{desc}: {status}; stderr: {}; stdout: {}",
            String::from_utf8_lossy(&output.stderr).trim(),
            String::from_utf8_lossy(&output.stdout).trim()
        );
    }
    Ok(output)
}
