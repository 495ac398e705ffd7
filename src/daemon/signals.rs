//! Fatal-signal handling as OVS's `lib/fatal-signal.c` does it (spec ovsdb-protocol.md §14,
//! ovn-ic-core.md §1.4 step 7).
//!
//! * SIGTERM, SIGINT, SIGHUP, SIGALRM are caught *asynchronously* (through tokio's signal
//!   driver, i.e. a self-pipe, exactly like the C library records the signal in the handler and
//!   acts on it from the main loop): the daemon logs WARN `terminating with signal N (Name)`
//!   (target `fatal_signal`), unlinks the registered files (pidfile, control socket) and dies from
//!   the same signal with the default action, so its parent sees "killed (Terminated)".
//! * SIGSEGV gets a tiny synchronous handler that restores the default action and re-raises, as
//!   OVS does (no cleanup: the `--monitor` supervisor restarts the daemon and the next pidfile
//!   creation deletes the stale file). It also makes `kill -SEGV` fatal: Rust's own stack-overflow
//!   handler would otherwise swallow one externally sent SIGSEGV.
//! * SIGPIPE is ignored.
//!
//! The list of files to unlink is process-global, like the C library's.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use nix::sys::signal::{self, SaFlags, SigAction, SigHandler, SigSet, Signal};

/// The signals that terminate the daemon after cleanup.
pub const FATAL_SIGNALS: [Signal; 4] = [
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGALRM,
];

static TO_UNLINK: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Register `path` to be unlinked at exit or on a fatal signal.
pub fn add_file_to_unlink(path: &Path) {
    let mut v = TO_UNLINK.lock().unwrap_or_else(|e| e.into_inner());
    if !v.iter().any(|p| p == path) {
        v.push(path.to_path_buf());
    }
}

/// Forget `path` (it is no longer ours to delete).
pub fn remove_file_to_unlink(path: &Path) {
    TO_UNLINK
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|p| p != path);
}

/// The files currently registered for unlinking.
pub fn files_to_unlink() -> Vec<PathBuf> {
    TO_UNLINK.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Unlink every registered file now (errors ignored, as the C library's exit hook) and forget
/// them.
pub fn unlink_files() {
    let files = std::mem::take(&mut *TO_UNLINK.lock().unwrap_or_else(|e| e.into_inner()));
    for f in files {
        let _ = std::fs::remove_file(&f);
    }
}

/// Unlink one file now, logging a warning on failure (`fatal_signal_unlink_file_now`).
pub fn unlink_file_now(path: &Path) {
    if let Err(e) = std::fs::remove_file(path) {
        tracing::warn!(target: "fatal_signal", "could not unlink \"{}\" ({})", path.display(), super::strerror(&e));
    }
    remove_file_to_unlink(path);
}

/// Ignore SIGPIPE (writes to a closed socket return EPIPE instead of killing us).
pub fn ignore_sigpipe() -> nix::Result<()> {
    // SAFETY: installing SIG_IGN runs no code in signal context; it cannot violate any invariant.
    unsafe { signal::signal(Signal::SIGPIPE, SigHandler::SigIgn) }.map(|_| ())
}

extern "C" fn segv_handler(sig: libc::c_int) {
    // SAFETY: `signal` and `raise` are async-signal-safe. Restoring the default action and
    // re-raising makes the (blocked, now pending) signal kill the process when we return.
    unsafe {
        libc::signal(sig, libc::SIG_DFL);
        libc::raise(sig);
    }
}

/// Make SIGSEGV always fatal (see the module documentation).
pub fn install_segv_handler() -> nix::Result<()> {
    let action = SigAction::new(
        SigHandler::Handler(segv_handler),
        SaFlags::SA_ONSTACK,
        SigSet::empty(),
    );
    // SAFETY: the handler only calls async-signal-safe functions (signal, raise) and touches no
    // Rust state; SA_ONSTACK keeps Rust's alternate stack usable on a stack overflow.
    unsafe { signal::sigaction(Signal::SIGSEGV, &action) }.map(|_| ())
}

/// Text of a signal number as glibc's `strsignal` prints it (used in the fatal-signal log line
/// and in the monitor's "killed (...)" messages).
pub fn signal_name(sig: i32) -> String {
    let s = match sig {
        1 => "Hangup",
        2 => "Interrupt",
        3 => "Quit",
        4 => "Illegal instruction",
        5 => "Trace/breakpoint trap",
        6 => "Aborted",
        7 => "Bus error",
        8 => "Floating point exception",
        9 => "Killed",
        10 => "User defined signal 1",
        11 => "Segmentation fault",
        12 => "User defined signal 2",
        13 => "Broken pipe",
        14 => "Alarm clock",
        15 => "Terminated",
        16 => "Stack fault",
        17 => "Child exited",
        18 => "Continued",
        19 => "Stopped (signal)",
        20 => "Stopped",
        21 => "Stopped (tty input)",
        22 => "Stopped (tty output)",
        23 => "Urgent I/O condition",
        24 => "CPU time limit exceeded",
        25 => "File size limit exceeded",
        26 => "Virtual timer expired",
        27 => "Profiling timer expired",
        28 => "Window changed",
        29 => "I/O possible",
        30 => "Power failure",
        31 => "Bad system call",
        _ => return format!("signal {sig}"),
    };
    s.to_string()
}

/// Log the termination line, unlink the registered files and die from `sig` with its default
/// action. Never returns.
pub fn terminate(sig: Signal) -> ! {
    let n = sig as i32;
    tracing::warn!(target: "fatal_signal", "terminating with signal {} ({})", n, signal_name(n));
    unlink_files();
    // SAFETY: restoring SIG_DFL runs no code in signal context.
    let _ = unsafe { signal::signal(sig, SigHandler::SigDfl) };
    let mut set = SigSet::empty();
    set.add(sig);
    let _ = set.thread_unblock();
    let _ = signal::raise(sig);
    // Only reached if the signal somehow did not kill us.
    std::process::exit(128 + n)
}

/// The asynchronous receivers of the fatal signals. Create inside the tokio runtime, before
/// signalling start-up completion, so that a signal sent right after `--detach` returns is
/// already handled.
pub struct FatalSignals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
    alrm: tokio::signal::unix::Signal,
}

impl FatalSignals {
    pub fn install() -> std::io::Result<FatalSignals> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(FatalSignals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
            alrm: signal(SignalKind::alarm())?,
        })
    }

    /// The next fatal signal received.
    pub async fn recv(&mut self) -> Signal {
        tokio::select! {
            _ = self.term.recv() => Signal::SIGTERM,
            _ = self.int.recv() => Signal::SIGINT,
            _ = self.hup.recv() => Signal::SIGHUP,
            _ = self.alrm.recv() => Signal::SIGALRM,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_strsignal() {
        assert_eq!(signal_name(1), "Hangup");
        assert_eq!(signal_name(15), "Terminated");
        assert_eq!(signal_name(11), "Segmentation fault");
        assert_eq!(signal_name(14), "Alarm clock");
        assert_eq!(signal_name(99), "signal 99");
    }

    #[test]
    fn unlink_registry() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        std::fs::write(&a, "x").unwrap();
        add_file_to_unlink(&a);
        add_file_to_unlink(&a);
        assert_eq!(files_to_unlink().iter().filter(|p| **p == a).count(), 1);
        remove_file_to_unlink(&a);
        assert!(!files_to_unlink().contains(&a));
        add_file_to_unlink(&a);
        unlink_file_now(&a);
        assert!(!a.exists());
        assert!(!files_to_unlink().contains(&a));
    }
}
