//! `--detach`, `--monitor`, `--user`, `--pidfile` and the process name (spec ovsdb-protocol.md
//! §14, ovn-ic-core.md §1.4, deployment.md §1.2), following OVS's `lib/daemon-unix.c`.
//!
//! [`start`] runs before anything else that could start a thread, in particular before the tokio
//! runtime is built: `fork` in a multi-threaded process leaves the child with only the forking
//! thread while other threads may hold locks (allocator, logging) forever. `start` checks that
//! the process is single-threaded before every fork.
//!
//! Process tree with `--detach --monitor`:
//!
//! ```text
//! launcher ── parent (waits on pipe A, exits 0 or with the child's status)
//!               └─ monitor (setsid; waits on pipe B, then writes A; restarts crashed daemons)
//!                    └─ daemon (pidfile, control socket, writes B when ready)
//! ```

use std::ffi::CString;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::fcntl::OFlag;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{ForkResult, Gid, Group, Pid, Uid, User};

use super::pidfile::Pidfile;
use super::signals::signal_name;
use super::vlog::Vlog;

/// The process name `ovn-ctl` checks in `/proc/<pid>/comm` (`pid_comm_check`).
pub const PROCESS_NAME: &str = "ovn-ic";

/// Signals after which `--monitor` restarts the daemon (OVS `should_restart`).
const RESTART_SIGNALS: [i32; 9] = [
    libc::SIGABRT,
    libc::SIGALRM,
    libc::SIGBUS,
    libc::SIGFPE,
    libc::SIGILL,
    libc::SIGPIPE,
    libc::SIGSEGV,
    libc::SIGXCPU,
    libc::SIGXFSZ,
];

/// Minimum time between two restarts by the monitor.
const RESTART_INTERVAL: Duration = Duration::from_secs(10);

/// The daemon options of the command line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DaemonConfig {
    pub detach: bool,
    pub no_chdir: bool,
    pub monitor: bool,
    pub pidfile: Option<PathBuf>,
    pub overwrite_pidfile: bool,
    pub user: Option<String>,
    /// The log file, chowned to the new user by `--user`.
    pub log_file: Option<PathBuf>,
}

/// The daemon process after [`start`]: it owns the pidfile and the start-up notification pipe.
#[derive(Debug)]
pub struct Daemon {
    notify: Option<OwnedFd>,
    pidfile: Option<Pidfile>,
    detach: bool,
    no_chdir: bool,
    completed: bool,
}

impl Daemon {
    pub fn pidfile(&self) -> Option<&Pidfile> {
        self.pidfile.as_ref()
    }

    /// `daemonize_complete`: tell the waiting parent (or monitor) that start-up is done, then,
    /// when detached, `chdir("/")` unless `--no-chdir` and point fds 0–2 at `/dev/null`.
    /// Idempotent.
    pub fn complete(&mut self) {
        if self.completed {
            return;
        }
        self.completed = true;
        if let Some(fd) = self.notify.take() {
            notify_startup(fd);
        }
        if self.detach {
            if !self.no_chdir {
                let _ = std::env::set_current_dir("/");
            }
            close_standard_fds();
        }
    }
}

/// Set the kernel's name of the calling thread (the main thread's is `/proc/<pid>/comm`).
/// Inherited across `fork`, so calling it first names the monitor and every daemon.
pub fn set_process_name(name: &str) -> nix::Result<()> {
    let c = CString::new(name).map_err(|_| nix::errno::Errno::EINVAL)?;
    nix::sys::prctl::set_name(&c)
}

/// Number of threads of this process (from `/proc/self/task`).
fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|d| d.count())
        .unwrap_or(1)
}

/// `daemonize_start`: switch user, fork for `--detach` and `--monitor`, create the pidfile.
///
/// Returns in the daemon process only; parents and the monitor exit from here. Errors are
/// fatal start-up errors (the caller prints `ovn-ic: <error>` and exits 1; a waiting parent then
/// exits 1 as well).
pub fn start(cfg: &DaemonConfig, vlog: Option<&Vlog>) -> Result<Daemon, String> {
    if let Some(spec) = &cfg.user {
        become_user(spec, cfg.log_file.as_deref())?;
    }

    let mut notify = None;
    if cfg.detach {
        match fork_and_wait_for_startup()? {
            Forked::Parent(_) => std::process::exit(0),
            Forked::Child(fd) => {
                notify = Some(fd);
                let _ = nix::unistd::setsid();
            }
        }
    }

    if cfg.monitor {
        let saved = notify.take();
        match fork_and_wait_for_startup()? {
            Forked::Parent(daemon_pid) => {
                // Monitor process: release the launcher only now that the daemon is ready.
                if let Some(v) = vlog {
                    v.set_subprogram(Some("monitor"));
                }
                if let Some(fd) = saved {
                    notify_startup(fd);
                }
                if cfg.detach {
                    close_standard_fds();
                }
                notify = Some(monitor_daemon(daemon_pid, vlog)?);
                if let Some(v) = vlog {
                    v.set_subprogram(None);
                }
            }
            Forked::Child(fd) => notify = Some(fd),
        }
    }

    let pidfile = match &cfg.pidfile {
        Some(p) => Some(Pidfile::create(p, cfg.overwrite_pidfile).map_err(|e| e.to_string())?),
        None => None,
    };

    Ok(Daemon {
        notify,
        pidfile,
        detach: cfg.detach,
        no_chdir: cfg.no_chdir,
        completed: false,
    })
}

enum Forked {
    /// In the parent, after the child reported start-up complete.
    Parent(Pid),
    /// In the child, with the write end of the notification pipe.
    Child(OwnedFd),
}

/// `fork_and_wait_for_startup`: fork; the parent blocks until the child writes one byte on the
/// pipe (start-up complete). If the child dies first the parent exits: with the child's status
/// if it exited nonzero, with 1 otherwise.
fn fork_and_wait_for_startup() -> Result<Forked, String> {
    let n = thread_count();
    if n > 1 {
        return Err(format!("cannot fork: process has {n} threads"));
    }
    let (rd, wr) =
        nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| format!("pipe failed ({})", e.desc()))?;
    // SAFETY: the process is single-threaded (checked just above; `start` runs before the tokio
    // runtime or any other thread exists), so the child is an exact copy with no lock held by a
    // vanished thread and may keep running arbitrary Rust code.
    match unsafe { nix::unistd::fork() } {
        Err(e) => Err(format!("could not fork ({})", e.desc())),
        Ok(ForkResult::Child) => {
            drop(rd);
            Ok(Forked::Child(wr))
        }
        Ok(ForkResult::Parent { child }) => {
            drop(wr);
            let mut f = std::fs::File::from(rd);
            let mut byte = [0u8; 1];
            let got = loop {
                match f.read(&mut byte) {
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    r => break matches!(r, Ok(1)),
                }
            };
            if got {
                return Ok(Forked::Parent(child));
            }
            let status = wait_for(child);
            match status {
                Some(WaitStatus::Exited(_, code)) if code != 0 => std::process::exit(code),
                other => {
                    let msg = format!(
                        "fork child died before signaling startup ({})",
                        other
                            .map(status_msg)
                            .unwrap_or_else(|| "unknown status".into())
                    );
                    tracing::error!(target: "daemon_unix", "{msg}");
                    eprintln!("{}: {msg}", super::PROGRAM);
                    std::process::exit(1)
                }
            }
        }
    }
}

fn wait_for(pid: Pid) -> Option<WaitStatus> {
    loop {
        match waitpid(pid, None) {
            Err(nix::errno::Errno::EINTR) => continue,
            Ok(s) => return Some(s),
            Err(_) => return None,
        }
    }
}

fn notify_startup(fd: OwnedFd) {
    let mut f = std::fs::File::from(fd);
    let _ = std::io::Write::write_all(&mut f, b"\0");
}

/// Replace fds 0, 1, 2 with `/dev/null`.
fn close_standard_fds() {
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        use std::os::fd::AsRawFd;
        for fd in 0..=2 {
            let _ = nix::unistd::dup2(null.as_raw_fd(), fd);
        }
    }
}

/// OVS `process_status_msg`: "exit status N", "killed (Name)", with ", core dumped".
pub fn status_msg(status: WaitStatus) -> String {
    match status {
        WaitStatus::Exited(_, code) => format!("exit status {code}"),
        WaitStatus::Signaled(_, sig, core) => {
            format!(
                "killed ({}){}",
                signal_name(sig as i32),
                if core { ", core dumped" } else { "" }
            )
        }
        WaitStatus::Stopped(_, sig) => format!("stopped ({})", signal_name(sig as i32)),
        other => format!("terminated abnormally ({other:?})"),
    }
}

/// Whether the monitor restarts a daemon that ended with `status`.
pub fn should_restart(status: &WaitStatus) -> bool {
    matches!(status, WaitStatus::Signaled(_, sig, _) if RESTART_SIGNALS.contains(&(*sig as i32)))
}

/// The monitor loop (`monitor_daemon`). Returns only in a freshly forked, restarted daemon, with
/// its notification pipe; exits the monitor process when the daemon ends for any other reason.
fn monitor_daemon(mut daemon_pid: Pid, vlog: Option<&Vlog>) -> Result<OwnedFd, String> {
    let mut last_restart: Option<Instant> = None;
    let mut crashes = 0u32;
    loop {
        let Some(status) = wait_for(daemon_pid) else {
            tracing::error!(target: "daemon_unix", "waitpid failed, exiting");
            std::process::exit(1);
        };
        let msg = format!("pid {} died, {}", daemon_pid, status_msg(status));
        if !should_restart(&status) {
            tracing::info!(target: "daemon_unix", "{msg}, exiting");
            std::process::exit(0);
        }
        crashes += 1;
        if matches!(status, WaitStatus::Signaled(_, _, true)) {
            // Keep the first core dump only.
            let _ = nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_CORE, 0, 0);
        }
        if let Some(t) = last_restart {
            let since = t.elapsed();
            if since < RESTART_INTERVAL {
                tracing::warn!(target: "daemon_unix", "{msg}, waiting until 10 seconds since last restart");
                std::thread::sleep(RESTART_INTERVAL - since);
            }
        }
        last_restart = Some(Instant::now());
        tracing::error!(target: "daemon_unix", "{crashes} crashes: {msg}, restarting");
        match fork_and_wait_for_startup()? {
            Forked::Parent(pid) => daemon_pid = pid,
            Forked::Child(fd) => {
                if let Some(v) = vlog {
                    v.set_subprogram(None);
                }
                return Ok(fd);
            }
        }
    }
}

/// Split `USER[:GROUP]` (either part may be empty).
pub fn parse_user_spec(spec: &str) -> (Option<&str>, Option<&str>) {
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    (
        Some(u).filter(|s| !s.is_empty()),
        g.filter(|s| !s.is_empty()),
    )
}

/// `--user`: only root may use it; drop supplementary groups, then set gid and uid.
fn become_user(spec: &str, log_file: Option<&Path>) -> Result<(), String> {
    if !Uid::current().is_root() || !Uid::effective().is_root() {
        return Err(format!(
            "{}: only root can use --user option",
            super::PROGRAM
        ));
    }
    let (user_name, group_name) = parse_user_spec(spec);
    let mut uid = Uid::current();
    let mut gid = Gid::current();
    let mut user = None;
    if let Some(name) = user_name {
        let u = User::from_name(name)
            .map_err(|e| format!("{name}: user lookup failed ({})", e.desc()))?
            .ok_or_else(|| format!("user {name} not found, aborting."))?;
        uid = u.uid;
        gid = u.gid;
        user = Some(u);
    }
    if let Some(name) = group_name {
        let g = Group::from_name(name)
            .map_err(|e| format!("{name}: group lookup failed ({})", e.desc()))?
            .ok_or_else(|| format!("group {name} not found, aborting."))?;
        if let Some(u) = &user {
            if u.gid != g.gid && !g.mem.contains(&u.name) {
                return Err(format!(
                    "Invalid --user option {spec} (user {} is not in group {name}), aborting.",
                    u.name
                ));
            }
        }
        gid = g.gid;
    }
    if let Some(f) = log_file {
        let _ = nix::unistd::chown(f, Some(uid), Some(gid));
    }
    nix::unistd::setgroups(&[gid]).map_err(|e| format!("failed to set groups ({})", e.desc()))?;
    nix::unistd::setgid(gid).map_err(|e| format!("setgid({gid}) failed ({})", e.desc()))?;
    nix::unistd::setuid(uid).map_err(|e| format!("setuid({uid}) failed ({})", e.desc()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::signal::Signal;

    #[test]
    fn user_spec() {
        assert_eq!(parse_user_spec("ovn"), (Some("ovn"), None));
        assert_eq!(parse_user_spec("ovn:ovn"), (Some("ovn"), Some("ovn")));
        assert_eq!(parse_user_spec(":hugetlbfs"), (None, Some("hugetlbfs")));
        assert_eq!(parse_user_spec("ovn:"), (Some("ovn"), None));
    }

    #[test]
    fn restart_policy() {
        let p = Pid::from_raw(42);
        assert!(should_restart(&WaitStatus::Signaled(
            p,
            Signal::SIGSEGV,
            false
        )));
        assert!(should_restart(&WaitStatus::Signaled(
            p,
            Signal::SIGABRT,
            true
        )));
        assert!(should_restart(&WaitStatus::Signaled(
            p,
            Signal::SIGALRM,
            false
        )));
        assert!(!should_restart(&WaitStatus::Signaled(
            p,
            Signal::SIGTERM,
            false
        )));
        assert!(!should_restart(&WaitStatus::Signaled(
            p,
            Signal::SIGKILL,
            false
        )));
        assert!(!should_restart(&WaitStatus::Exited(p, 101)));
        assert!(!should_restart(&WaitStatus::Exited(p, 0)));
    }

    #[test]
    fn status_messages() {
        let p = Pid::from_raw(42);
        assert_eq!(status_msg(WaitStatus::Exited(p, 3)), "exit status 3");
        assert_eq!(
            status_msg(WaitStatus::Signaled(p, Signal::SIGSEGV, false)),
            "killed (Segmentation fault)"
        );
        assert_eq!(
            status_msg(WaitStatus::Signaled(p, Signal::SIGABRT, true)),
            "killed (Aborted), core dumped"
        );
    }

    #[test]
    fn fork_refused_with_threads() {
        // The test harness itself runs tests on threads: forking must be refused here.
        let t = std::thread::spawn(|| std::thread::sleep(Duration::from_millis(200)));
        assert!(thread_count() > 1);
        let err = fork_and_wait_for_startup().err().expect("must refuse");
        assert!(err.starts_with("cannot fork: process has"), "{err}");
        t.join().unwrap();
    }
}
