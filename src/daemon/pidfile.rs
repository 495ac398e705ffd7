//! The pidfile, created exactly as OVS's `make_pidfile` does (spec ovsdb-protocol.md §14, §12.2).
//!
//! The daemon holds a classic POSIX record lock (`fcntl(F_SETLK)`, `F_WRLCK`, whole file) on the
//! pidfile for its whole life: `ovn-appctl -t ovn-ic` and other daemons validate a pidfile with
//! `F_GETLK` and only believe it if the lock holder's pid equals the number in the file. `flock`
//! locks are invisible to `F_GETLK` and OFD locks report `l_pid == -1`, so neither would do.
//!
//! POSIX-lock pitfall: the lock belongs to the process and is released as soon as the process
//! closes *any* descriptor of the file. So after creation this process never opens the pidfile
//! again: [`read_pidfile`] recognises our own pidfile by device and inode and answers from memory.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Seek, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg};

use super::signals;
use super::strerror;

/// Device and inode of the pidfiles this process created (they must never be reopened by us).
/// A daemon has one; unit tests create several in one process.
static OWN_PIDFILES: Mutex<Vec<(u64, u64)>> = Mutex::new(Vec::new());

/// A fatal pidfile error; the text is the message OVS prints (after `ovn-ic: `).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PidfileError {
    #[error("{0}: create failed ({1})")]
    Create(String, String),
    #[error("{0}: failed to lock file ({1})")]
    Lock(String, String),
    #[error("{0}: already running as pid {1}, aborting")]
    AlreadyRunning(String, i32),
    #[error("{0}: pidfile check failed ({1}), aborting")]
    Check(String, String),
    #[error("{0}: fstat failed ({1})")]
    Fstat(String, String),
    #[error("{0}: write failed ({1})")]
    Write(String, String),
    #[error("failed to rename \"{0}\" to \"{1}\" ({2})")]
    Rename(String, String, String),
}

/// A created, locked pidfile. Keep it alive for the life of the process: dropping it closes the
/// descriptor and so releases the lock (the file itself is unlinked through
/// [`signals::unlink_files`] at exit).
#[derive(Debug)]
pub struct Pidfile {
    path: PathBuf,
    _file: File,
    id: (u64, u64),
}

impl Drop for Pidfile {
    fn drop(&mut self) {
        // The lock goes with the descriptor; the inode may be reused from now on.
        OWN_PIDFILES
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|id| *id != self.id);
    }
}

impl Pidfile {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `make_pidfile`: write our pid to `path` through a locked temporary file and an atomic
    /// rename. Without `overwrite`, refuse to start if a live process holds the current pidfile
    /// and delete it if it is stale.
    pub fn create(path: &Path, overwrite: bool) -> Result<Pidfile, PidfileError> {
        let pid = std::process::id();
        let shown = path.display().to_string();
        let mut tmp = path.as_os_str().to_owned();
        if overwrite {
            tmp.push(format!(".tmp{pid}"));
        } else {
            tmp.push(".tmp");
        }
        let tmp = PathBuf::from(tmp);
        let tmp_shown = tmp.display().to_string();
        if overwrite {
            signals::add_file_to_unlink(&tmp);
        }

        // "a+": create, read and append.
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&tmp)
            .map_err(|e| PidfileError::Create(tmp_shown.clone(), strerror(&e)))?;
        lock_file(&file, libc::F_WRLCK as libc::c_short)
            .map_err(|e| PidfileError::Lock(tmp_shown.clone(), e.desc().to_string()))?;

        if !overwrite {
            // Everyone shares "PIDFILE.tmp" as a lock; it is ours to clean up only now.
            signals::add_file_to_unlink(&tmp);
            match read_pidfile_inner(path, true) {
                Ok(0) => {}
                Ok(other) => return Err(PidfileError::AlreadyRunning(shown, other)),
                Err(e) => return Err(PidfileError::Check(shown, e.desc().to_string())),
            }
        }

        let meta = file
            .metadata()
            .map_err(|e| PidfileError::Fstat(tmp_shown.clone(), strerror(&e)))?;
        let write = |file: &mut File| -> io::Result<()> {
            file.set_len(0)?;
            file.rewind()?;
            writeln!(file, "{pid}")?;
            file.flush()
        };
        write(&mut file).map_err(|e| PidfileError::Write(tmp_shown.clone(), strerror(&e)))?;

        let renamed = std::fs::rename(&tmp, path);
        // Whatever happened, "PIDFILE.tmp" may now belong to another process.
        signals::remove_file_to_unlink(&tmp);
        renamed.map_err(|e| PidfileError::Rename(tmp_shown, shown, strerror(&e)))?;

        signals::add_file_to_unlink(path);
        let id = (meta.dev(), meta.ino());
        OWN_PIDFILES
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(id);
        Ok(Pidfile {
            path: path.to_path_buf(),
            _file: file,
            id,
        })
    }
}

/// `fcntl(F_SETLK)` of type `l_type` over the whole file.
fn lock_file(file: &File, l_type: libc::c_short) -> Result<(), Errno> {
    let lck = whole_file_lock(l_type);
    fcntl(file.as_raw_fd(), FcntlArg::F_SETLK(&lck)).map(|_| ())
}

fn whole_file_lock(l_type: libc::c_short) -> libc::flock {
    libc::flock {
        l_type,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: 0,
        l_len: 0,
        l_pid: 0,
    }
}

/// `read_pidfile` as `ovn-appctl` does it: the pid of the live process that holds `path`
/// locked and whose pid is the number written in it. A pidfile nobody locks, or locked by a
/// process other than the one it names, is stale: `Err(ESRCH)` ("No such process").
pub fn read_pidfile(path: &Path) -> Result<i32, Errno> {
    read_pidfile_inner(path, false)
}

/// Returns 0 when `delete_if_stale` and there was no live pidfile (absent, or stale and now
/// deleted).
fn read_pidfile_inner(path: &Path, delete_if_stale: bool) -> Result<i32, Errno> {
    let errno_of = |e: &io::Error| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO));

    // Our own pidfile: opening and closing it would drop our lock.
    if let Ok(m) = std::fs::metadata(path) {
        if OWN_PIDFILES
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&(m.dev(), m.ino()))
        {
            return Ok(std::process::id() as i32);
        }
    }

    let file = match OpenOptions::new()
        .read(true)
        .write(delete_if_stale)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound && delete_if_stale => return Ok(0),
        Err(e) => {
            tracing::warn!(target: "daemon_unix", "{}: open: {}", path.display(), strerror(&e));
            return Err(errno_of(&e));
        }
    };

    let mut lck = whole_file_lock(libc::F_WRLCK as libc::c_short);
    if let Err(e) = fcntl(file.as_raw_fd(), FcntlArg::F_GETLK(&mut lck)) {
        tracing::warn!(target: "daemon_unix", "{}: fcntl: {}", path.display(), e.desc());
        return Err(e);
    }

    if lck.l_type == libc::F_UNLCK as libc::c_short {
        if !delete_if_stale {
            tracing::debug!(target: "daemon_unix", "{}: pid file is stale", path.display());
            return Err(Errno::ESRCH);
        }
        // Only the process that manages to lock the stale file may unlink it; otherwise we
        // could delete a fresh pidfile that someone else just renamed into place.
        if lock_file(&file, libc::F_WRLCK as libc::c_short).is_err() {
            tracing::warn!(target: "daemon_unix", "{}: lost race to lock pidfile", path.display());
            return Err(Errno::EALREADY);
        }
        let same = match (std::fs::metadata(path), file.metadata()) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        };
        if !same {
            tracing::warn!(target: "daemon_unix", "{}: lost race to delete pidfile", path.display());
            return Err(Errno::EALREADY);
        }
        if let Err(e) = std::fs::remove_file(path) {
            tracing::warn!(target: "daemon_unix", "{}: failed to delete stale pidfile ({})", path.display(), strerror(&e));
            return Err(errno_of(&e));
        }
        tracing::debug!(target: "daemon_unix", "{}: deleted stale pidfile", path.display());
        return Ok(0);
    }

    let mut line = String::new();
    if let Err(e) = BufReader::new(&file).read_line(&mut line) {
        tracing::warn!(target: "daemon_unix", "{}: read: {}", path.display(), strerror(&e));
        return Err(errno_of(&e));
    }
    if line.is_empty() {
        tracing::warn!(target: "daemon_unix", "{}: read: unexpected end of file", path.display());
        return Err(Errno::ESRCH);
    }
    let written: i64 = line.trim().parse().unwrap_or(-1);
    if i64::from(lck.l_pid) != written {
        tracing::warn!(
            target: "daemon_unix",
            "{}: stale pidfile for pid {} being deleted by pid {}",
            path.display(),
            line.trim_end(),
            lck.l_pid
        );
        return Err(Errno::ESRCH);
    }
    Ok(lck.l_pid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    /// A helper process (python) that creates `path` containing `content` and holds a POSIX
    /// lock on it until its stdin closes. Returns the child once the lock is taken.
    fn lock_holder(path: &Path, content: Option<&str>) -> std::process::Child {
        let script = r#"
import fcntl, os, sys
p = sys.argv[1]
f = open(p, "a+")
if len(sys.argv) > 2:
    f.truncate(0); f.write(sys.argv[2]); f.flush()
fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
print("locked", flush=True)
sys.stdin.read()
"#;
        let mut cmd = Command::new("python3");
        cmd.arg("-c").arg(script).arg(path);
        if let Some(c) = content {
            cmd.arg(c);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3");
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut l = String::new();
        out.read_line(&mut l).unwrap();
        assert_eq!(l.trim(), "locked");
        child
    }

    #[test]
    fn stale_and_absent() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.pid");
        assert_eq!(read_pidfile(&p), Err(Errno::ENOENT));
        std::fs::write(&p, "12345\n").unwrap();
        assert_eq!(read_pidfile(&p), Err(Errno::ESRCH));
        // delete_if_stale removes it.
        assert_eq!(read_pidfile_inner(&p, true), Ok(0));
        assert!(!p.exists());
    }

    #[test]
    fn locked_by_the_named_process() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("y.pid");
        // Lock first, then write the holder's pid: python writes its own pid below.
        let mut child = lock_holder(&p, None);
        std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&p)
            .and_then(|mut f| writeln!(f, "{}", child.id()))
            .unwrap();
        assert_eq!(read_pidfile(&p), Ok(child.id() as i32));
        // Refused start.
        let err = Pidfile::create(&p, false).unwrap_err();
        assert_eq!(
            err,
            PidfileError::AlreadyRunning(p.display().to_string(), child.id() as i32)
        );
        assert_eq!(
            err.to_string(),
            format!(
                "{}: already running as pid {}, aborting",
                p.display(),
                child.id()
            )
        );
        drop(child.stdin.take());
        child.wait().unwrap();
        // Holder gone: the file is stale now.
        assert_eq!(read_pidfile(&p), Err(Errno::ESRCH));
    }

    #[test]
    fn locked_by_another_pid_is_stale() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("z.pid");
        let mut child = lock_holder(&p, Some("1\n"));
        assert_eq!(read_pidfile(&p), Err(Errno::ESRCH));
        drop(child.stdin.take());
        child.wait().unwrap();
    }

    #[test]
    fn create_writes_pid_keeps_lock_and_replaces_stale() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ovn-ic.pid");
        std::fs::write(&p, "999999\n").unwrap(); // stale
        let pf = Pidfile::create(&p, false).unwrap();
        assert_eq!(pf.path(), p);
        // Never open the pidfile from this process (closing that fd would drop the lock): look
        // at it from another process, which also sees whether the lock is held.
        let out = Command::new("python3")
            .arg("-c")
            .arg("import fcntl,sys\nf=open(sys.argv[1],'r+')\nc=f.read().strip()\ntry:\n fcntl.lockf(f, fcntl.LOCK_EX|fcntl.LOCK_NB); print(c, 'free')\nexcept OSError: print(c, 'held')")
            .arg(&p)
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            format!("{} held", std::process::id())
        );
        assert!(!dir.path().join("ovn-ic.pid.tmp").exists());
        assert!(signals::files_to_unlink().contains(&p));
        // Our own pidfile is answered without reopening it.
        assert_eq!(read_pidfile(&p), Ok(std::process::id() as i32));
        signals::remove_file_to_unlink(&p);
        drop(pf);
    }

    #[test]
    fn overwrite_ignores_running_holder() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("w.pid");
        let mut child = lock_holder(&p, Some("1\n"));
        // Overwrite does not check; rename replaces the locked file with ours.
        let pf = Pidfile::create(&p, true).unwrap();
        assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            format!("{}\n", std::process::id())
        );
        signals::remove_file_to_unlink(&p);
        drop(pf);
        drop(child.stdin.take());
        child.wait().unwrap();
    }

    #[test]
    fn create_in_missing_dir_fails_cleanly() {
        let p = Path::new("/nonexistent-dir-for-test/ovn-ic.pid");
        let e = Pidfile::create(p, false).unwrap_err();
        assert_eq!(
            e.to_string(),
            "/nonexistent-dir-for-test/ovn-ic.pid.tmp: create failed (No such file or directory)"
        );
    }
}
