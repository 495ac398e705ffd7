//! The logger proper: per-module/per-destination levels, patterns, the serial counter, the log
//! file, syslog, and the texts of the `vlog/*` commands. Independent of `tracing` so it can be
//! instantiated in tests (writing the console into a [`MemorySink`]).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use super::pattern::{format, MsgCtx};
use super::ratelimit::{RateLimit, RlVerdict};
use super::spec::{parse_spec, vlog_module, Destination, Level, SpecCmd, MODULES};
use super::syslog::{SyslogTarget, Syslogger, RFC5424_PATTERN};

/// An in-memory console for tests (cheap to clone; all clones share the buffer).
#[derive(Clone, Default, Debug)]
pub struct MemorySink(Arc<Mutex<Vec<u8>>>);

impl MemorySink {
    pub fn new() -> MemorySink {
        MemorySink::default()
    }
    /// Everything written so far.
    pub fn contents(&self) -> String {
        let g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        String::from_utf8_lossy(&g).into_owned()
    }
    /// Everything written so far, clearing the buffer.
    pub fn take(&self) -> String {
        let mut g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let s = String::from_utf8_lossy(&g).into_owned();
        g.clear();
        s
    }
}

impl Write for MemorySink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Why a log file could not be opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileError {
    /// `failed to open PATH for logging: <strerror>` (what OVS logs as WARN).
    pub message: String,
    /// `<strerror>` alone (the `vlog/reopen` error reply).
    pub reason: String,
}

#[derive(Default)]
struct LogFile {
    /// The name as configured (`None` = file logging not configured).
    name: Option<PathBuf>,
    /// `name` made absolute at the time it was configured, so that reopening after
    /// `chdir("/")` still finds it.
    path: Option<PathBuf>,
    file: Option<File>,
}

struct State {
    levels: Vec<[Level; 3]>,
    honor_rate_limits: Vec<bool>,
    patterns: [String; 3],
    facility: i32,
    serial: u32,
    console: Box<dyn Write + Send>,
    syslog: Syslogger,
    syslog_target: Option<SyslogTarget>,
    file: LogFile,
    subprogram: Option<String>,
}

/// The process logger. All methods take `&self` and are thread-safe; none panics or blocks on
/// an I/O error (write errors are ignored).
pub struct Logger {
    program: String,
    hostname: String,
    start: Instant,
    state: Mutex<State>,
}

fn strerror(e: &std::io::Error) -> String {
    // `io::Error`'s Display appends " (os error N)"; OVS prints strerror() alone.
    match e.raw_os_error() {
        Some(code) => {
            let s = e.to_string();
            let suffix = format!(" (os error {code})");
            s.strip_suffix(&suffix).map(str::to_string).unwrap_or(s)
        }
        None => e.to_string(),
    }
}

fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: `buf` is writable for `buf.len()` bytes; gethostname writes at most that many.
    let r = unsafe { libc::gethostname(buf.as_mut_ptr().cast::<libc::c_char>(), buf.len()) };
    if r != 0 {
        return String::new();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

fn wall_ms() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

impl Logger {
    /// A logger with default levels (`info` everywhere) and patterns, console output to
    /// `console`, syslog method `null` and no log file.
    pub fn new(program: &str, console: Box<dyn Write + Send>) -> Logger {
        Logger {
            program: program.to_string(),
            hostname: hostname(),
            start: Instant::now(),
            state: Mutex::new(State {
                levels: vec![[Level::Info; 3]; MODULES.len()],
                honor_rate_limits: vec![true; MODULES.len()],
                patterns: Destination::ALL.map(|d| d.default_pattern().to_string()),
                facility: 0,
                serial: 0,
                console,
                syslog: Syslogger::Null,
                syslog_target: None,
                file: LogFile::default(),
                subprogram: None,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The program name (`%A`).
    pub fn program(&self) -> &str {
        &self.program
    }

    /// Install the syslog method and open it (default facility `daemon`, or the configured
    /// one).
    pub fn set_syslogger(&self, mut s: Syslogger) {
        let mut st = self.lock();
        let facility = if st.facility != 0 {
            st.facility
        } else {
            libc::LOG_DAEMON
        };
        s.open(&self.program, facility);
        st.syslog = s;
    }

    /// `--syslog-target=IP:PORT`. Errors are logged (module `vlog`), never fatal.
    pub fn set_syslog_target(&self, target: &str) {
        match SyslogTarget::open(target) {
            Ok(t) => self.lock().syslog_target = Some(t),
            Err(e) => self.log(
                vlog_module(),
                Level::Warn,
                &format!("could not open syslog target: {e}"),
            ),
        }
    }

    /// Whether the syslog target export is active.
    pub fn has_syslog_target(&self) -> bool {
        self.lock().syslog_target.is_some()
    }

    /// Apply one SPEC (`-v SPEC`, one `vlog/set` argument). Error text as OVS.
    pub fn apply_spec(&self, spec: &str) -> Result<(), String> {
        let cmd = parse_spec(spec)?;
        let mut st = self.lock();
        match cmd {
            SpecCmd::Pattern { dest, pattern } => {
                for d in Destination::ALL {
                    if dest.is_none() || dest == Some(d) {
                        st.patterns[d as usize] = pattern.clone();
                    }
                }
            }
            SpecCmd::Facility(f) => st.facility = f,
            SpecCmd::Levels {
                module,
                dest,
                level,
            } => {
                for (m, levels) in st.levels.iter_mut().enumerate() {
                    if module.is_some() && module != Some(m) {
                        continue;
                    }
                    for d in Destination::ALL {
                        if dest.is_none() || dest == Some(d) {
                            levels[d as usize] = level;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Every module, every destination → `level` (a bare `-v` / `vlog/set` is `Dbg`).
    pub fn set_all_levels(&self, level: Level) {
        let mut st = self.lock();
        for l in st.levels.iter_mut() {
            *l = [level; 3];
        }
    }

    /// Current level of `module` for `dest`.
    pub fn level(&self, module: usize, dest: Destination) -> Level {
        self.lock()
            .levels
            .get(module)
            .map_or(Level::Off, |l| l[dest as usize])
    }

    /// Current pattern of `dest`.
    pub fn pattern(&self, dest: Destination) -> String {
        self.lock().patterns[dest as usize].clone()
    }

    fn max_level_locked(st: &State, module: usize) -> Level {
        let Some(l) = st.levels.get(module) else {
            return Level::Off;
        };
        let mut max = l[Destination::Console as usize].max(l[Destination::Syslog as usize]);
        if st.file.file.is_some() {
            max = max.max(l[Destination::File as usize]);
        }
        max
    }

    /// The most verbose level at which `module` produces output anywhere (the file counts only
    /// while it is open), like OVS `min_level`.
    pub fn module_max_level(&self, module: usize) -> Level {
        Self::max_level_locked(&self.lock(), module)
    }

    /// The most verbose level of any module.
    pub fn max_level(&self) -> Level {
        let st = self.lock();
        (0..MODULES.len())
            .map(|m| Self::max_level_locked(&st, m))
            .max()
            .unwrap_or(Level::Off)
    }

    /// Would a `level` message of `module` be written anywhere?
    pub fn is_enabled(&self, module: usize, level: Level) -> bool {
        level != Level::Off && level <= self.module_max_level(module)
    }

    /// Rate-limit decision for a message (`vlog_should_drop`): modules with rate limiting
    /// disabled always log; disabled levels are dropped without touching the bucket.
    pub fn rate_limit(
        &self,
        rl: &RateLimit,
        module: usize,
        level: Level,
        now_ms: u64,
    ) -> RlVerdict {
        let honor = {
            let st = self.lock();
            if level == Level::Off || level > Self::max_level_locked(&st, module) {
                return RlVerdict::Drop;
            }
            st.honor_rate_limits.get(module).copied().unwrap_or(true)
        };
        if !honor {
            return RlVerdict::Log(None);
        }
        rl.check_at(now_ms)
    }

    /// Log `message` at `level` for module index `module` (see [`super::spec::MODULES`]).
    pub fn log(&self, module: usize, level: Level, message: &str) {
        let mut st = self.lock();
        Self::log_locked(self, &mut st, module, level, message);
    }

    fn log_locked(&self, st: &mut State, module: usize, level: Level, message: &str) {
        let Some(levels) = st.levels.get(module).copied() else {
            return;
        };
        if level == Level::Off {
            return;
        }
        let to_console = level <= levels[Destination::Console as usize];
        let to_syslog = level <= levels[Destination::Syslog as usize];
        let to_file = level <= levels[Destination::File as usize] && st.file.file.is_some();
        if !(to_console || to_syslog || to_file) {
            return;
        }
        st.serial = st.serial.wrapping_add(1);
        let subprogram = st.subprogram.clone();
        let ctx = MsgCtx {
            program: &self.program,
            module: MODULES[module],
            level,
            message,
            serial: st.serial,
            subprogram: subprogram.as_deref(),
            wall_ms: wall_ms(),
            uptime_ms: u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX),
            pid: std::process::id(),
            hostname: &self.hostname,
            facility: st.facility,
        };
        let mut line = String::with_capacity(128);
        if to_console {
            format(&st.patterns[Destination::Console as usize], &ctx, &mut line);
            line.push('\n');
            let _ = st.console.write_all(line.as_bytes());
            let _ = st.console.flush();
        }
        if to_syslog {
            line.clear();
            format(&st.patterns[Destination::Syslog as usize], &ctx, &mut line);
            let pri = level.syslog_severity() | st.facility;
            for l in line.split('\n').filter(|l| !l.is_empty()) {
                st.syslog.log(pri, l);
            }
            if st.syslog_target.is_some() {
                line.clear();
                format(RFC5424_PATTERN, &ctx, &mut line);
                if let Some(t) = st.syslog_target.as_mut() {
                    t.send(&line);
                }
            }
        }
        if to_file {
            line.clear();
            format(&st.patterns[Destination::File as usize], &ctx, &mut line);
            line.push('\n');
            if let Some(f) = st.file.file.as_mut() {
                let _ = f.write_all(line.as_bytes());
                if level == Level::Emer {
                    let _ = f.sync_data();
                }
            }
        }
    }

    /// Open `name` as the log file (`vlog_set_log_file`): `O_WRONLY|O_CREAT|O_APPEND`, mode
    /// 0660. If it is the file already open nothing happens; otherwise "closing log file" is
    /// logged to the old file and "opened log file NAME" to the new one (module `vlog`). A
    /// relative name is resolved against the current directory now. On failure nothing is
    /// logged and the previous configuration is kept.
    pub fn set_log_file(&self, name: &Path) -> Result<(), FileError> {
        let path = if name.is_absolute() {
            name.to_path_buf()
        } else {
            std::env::current_dir()
                .map(|d| d.join(name))
                .unwrap_or_else(|_| name.to_path_buf())
        };
        self.open_log_file(name, &path)
    }

    fn open_log_file(&self, name: &Path, path: &Path) -> Result<(), FileError> {
        let new = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o660)
            .open(path)
            .map_err(|e| FileError {
                message: format!(
                    "failed to open {} for logging: {}",
                    name.display(),
                    strerror(&e)
                ),
                reason: strerror(&e),
            })?;
        let mut st = self.lock();
        if let Some(old) = st.file.file.as_ref() {
            if let (Ok(a), Ok(b)) = (old.metadata(), new.metadata()) {
                if a.dev() == b.dev() && a.ino() == b.ino() {
                    return Ok(());
                }
            }
            self.log_locked(&mut st, vlog_module(), Level::Info, "closing log file");
        }
        st.file = LogFile {
            name: Some(name.to_path_buf()),
            path: Some(path.to_path_buf()),
            file: Some(new),
        };
        let msg = format!("opened log file {}", name.display());
        self.log_locked(&mut st, vlog_module(), Level::Info, &msg);
        Ok(())
    }

    /// The log file name as configured, if any.
    pub fn log_file_name(&self) -> Option<PathBuf> {
        self.lock().file.name.clone()
    }

    /// Whether the log file is currently open.
    pub fn log_file_open(&self) -> bool {
        self.lock().file.file.is_some()
    }

    /// `vlog/reopen`: reopen the configured file (after logrotate moved it away a new one is
    /// created). Errors: `Logging to file not configured`, or the strerror text (the failure
    /// is also logged as WARN `failed to open ...`).
    pub fn reopen(&self) -> Result<(), String> {
        let (name, path) = {
            let st = self.lock();
            match (&st.file.name, &st.file.path) {
                (Some(n), Some(p)) => (n.clone(), p.clone()),
                _ => return Err("Logging to file not configured".into()),
            }
        };
        self.open_log_file(&name, &path).map_err(|e| {
            self.log(vlog_module(), Level::Warn, &e.message);
            e.reason
        })
    }

    /// `vlog/close`: close the log file (it can be reopened with `vlog/reopen`).
    pub fn close(&self) {
        self.lock().file.file = None;
    }

    /// `vlog/enable-rate-limit` / `vlog/disable-rate-limit`: no modules or `any` = all.
    /// Unknown module → `unknown module` (modules before it are already changed, as in OVS).
    pub fn set_rate_limits(&self, modules: &[String], enable: bool) -> Result<(), String> {
        let mut st = self.lock();
        if modules.is_empty() {
            st.honor_rate_limits.iter_mut().for_each(|h| *h = enable);
            return Ok(());
        }
        for m in modules {
            if m.eq_ignore_ascii_case("any") {
                st.honor_rate_limits.iter_mut().for_each(|h| *h = enable);
            } else if let Some(i) = super::spec::module_index(m) {
                st.honor_rate_limits[i] = enable;
            } else {
                return Err("unknown module".into());
            }
        }
        Ok(())
    }

    /// `%t`/`%T` name (`None` = main).
    pub fn set_subprogram(&self, name: Option<&str>) {
        self.lock().subprogram = name.filter(|n| !n.is_empty()).map(str::to_string);
    }

    /// `vlog/list` reply.
    pub fn list(&self) -> String {
        let st = self.lock();
        let mut lines: Vec<String> = MODULES
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let l = st.levels[i];
                let mut line = format!(
                    "{:<16}  {:>4}       {:>4}       {:>4}",
                    name,
                    l[Destination::Console as usize].name(),
                    l[Destination::Syslog as usize].name(),
                    l[Destination::File as usize].name()
                );
                if !st.honor_rate_limits[i] {
                    line.push_str("    (rate limiting disabled)");
                }
                line.push('\n');
                line
            })
            .collect();
        lines.sort();
        let mut s = String::from(
            "                 console    syslog    file\n                 -------    ------    ------\n",
        );
        for l in lines {
            s.push_str(&l);
        }
        s
    }

    /// `vlog/list-pattern` reply.
    pub fn list_pattern(&self) -> String {
        let st = self.lock();
        let mut s = String::from(
            "         prefix                            format\n         ------                            ------\n",
        );
        for d in Destination::ALL {
            let prefix = if d == Destination::Syslog {
                st.syslog.prefix()
            } else {
                "none"
            };
            s.push_str(&format!(
                "{:<7}  {:<32}  {}\n",
                d.name(),
                prefix,
                st.patterns[d as usize]
            ));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::super::spec::module_index_exact;
    use super::*;

    fn logger() -> (Logger, MemorySink) {
        let sink = MemorySink::new();
        (Logger::new("ovn-ic", Box::new(sink.clone())), sink)
    }

    fn m(name: &str) -> usize {
        module_index_exact(name).unwrap()
    }

    /// `YYYY-MM-DDTHH:MM:SS[.mmm]Z`
    fn is_timestamp(s: &str, millis: bool) -> bool {
        let b = s.as_bytes();
        let want = if millis { 24 } else { 20 };
        if b.len() != want || b[b.len() - 1] != b'Z' {
            return false;
        }
        let shape = if millis {
            "dddd-dd-ddTdd:dd:dd.dddZ"
        } else {
            "dddd-dd-ddTdd:dd:ddZ"
        };
        shape.bytes().zip(b).all(|(p, c)| {
            if p == b'd' {
                c.is_ascii_digit()
            } else {
                p == *c
            }
        })
    }

    #[test]
    fn console_line_format_and_serial() {
        let (lg, sink) = logger();
        lg.log(m("reconnect"), Level::Info, "tcp:10.0.0.5:6645: connected");
        lg.log(m("ovn_ic"), Level::Warn, "second\n");
        lg.log(m("ovn_ic"), Level::Dbg, "not shown");
        lg.log(m("jsonrpc"), Level::Err, "third");
        let out = sink.take();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3, "{out}");
        let f: Vec<&str> = lines[0].split('|').collect();
        assert!(is_timestamp(f[0], false), "{}", f[0]);
        assert_eq!(
            &f[1..],
            ["00001", "reconnect", "INFO", "tcp:10.0.0.5:6645: connected"]
        );
        assert!(
            lines[1].ends_with("|00002|ovn_ic|WARN|second"),
            "{}",
            lines[1]
        );
        // The filtered DBG message did not consume a serial number.
        assert!(
            lines[2].ends_with("|00003|jsonrpc|ERR|third"),
            "{}",
            lines[2]
        );
        assert!(out.ends_with('\n'));
    }

    #[test]
    fn levels_and_specs() {
        let (lg, sink) = logger();
        for s in [
            "console:emer",
            "syslog:err",
            "file:info",
            "ovn_ic:console:dbg",
        ] {
            lg.apply_spec(s).unwrap();
        }
        lg.log(m("reconnect"), Level::Err, "hidden");
        lg.log(m("reconnect"), Level::Emer, "shown");
        lg.log(m("ovn_ic"), Level::Dbg, "dbg shown");
        let out = sink.take();
        assert!(!out.contains("hidden"));
        assert!(out.contains("|reconnect|EMER|shown"));
        assert!(out.contains("|ovn_ic|DBG|dbg shown"));
        assert_eq!(lg.level(m("ovn_ic"), Destination::Console), Level::Dbg);
        assert_eq!(lg.level(m("ovn_ic"), Destination::Syslog), Level::Err);
        assert_eq!(lg.level(m("vlog"), Destination::File), Level::Info);
        // No file open: the file level does not count.
        assert!(!lg.is_enabled(m("reconnect"), Level::Info));
        assert!(lg.is_enabled(m("reconnect"), Level::Err));
        lg.apply_spec("off").unwrap();
        lg.log(m("reconnect"), Level::Emer, "nothing");
        assert_eq!(sink.take(), "");
        assert_eq!(lg.max_level(), Level::Off);
        assert_eq!(
            lg.apply_spec("console:bogus"),
            Err("no destination, level, or module \"bogus\"".into())
        );
        lg.apply_spec("").unwrap();
        assert_eq!(lg.max_level(), Level::Dbg);
        lg.apply_spec("PATTERN:console:%c:%p:%m").unwrap();
        lg.log(m("memory"), Level::Info, "x");
        assert_eq!(sink.take(), "memory:INFO:x\n");
        lg.set_subprogram(Some("monitor"));
        lg.apply_spec("PATTERN:console:%c%T|%t").unwrap();
        lg.log(m("daemon_unix"), Level::Info, "x");
        assert_eq!(sink.take(), "daemon_unix(monitor)|monitor\n");
        lg.apply_spec("FACILITY:local1").unwrap();
        lg.apply_spec("PATTERN:console:%B").unwrap();
        lg.log(m("vlog"), Level::Err, "x");
        assert_eq!(sink.take(), format!("{}\n", (17 << 3) + 3));
    }

    #[test]
    fn list_format() {
        let (lg, _sink) = logger();
        lg.apply_spec("console:off").unwrap();
        lg.apply_spec("ovn_ic:dbg").unwrap();
        lg.set_rate_limits(&["reconnect".into()], false).unwrap();
        let l = lg.list();
        let lines: Vec<&str> = l.lines().collect();
        assert_eq!(lines[0], "                 console    syslog    file");
        assert_eq!(lines[1], "                 -------    ------    ------");
        assert_eq!(lines[2], "backtrace          OFF       INFO       INFO");
        assert!(lines.contains(&"ovn_ic             DBG        DBG        DBG"));
        assert!(lines
            .contains(&"reconnect          OFF       INFO       INFO    (rate limiting disabled)"));
        assert!(lines.contains(&"dpif_lookup_autovalidator   OFF       INFO       INFO"));
        assert_eq!(lines.len(), 2 + MODULES.len());
        let mut sorted = lines[2..].to_vec();
        sorted.sort();
        assert_eq!(sorted, lines[2..]);
        assert_eq!(
            lg.set_rate_limits(&["nosuch".into()], true),
            Err("unknown module".into())
        );
        lg.set_rate_limits(&["ANY".into()], true).unwrap();
        assert!(!lg.list().contains("rate limiting disabled"));
        lg.set_rate_limits(&[], false).unwrap();
        assert_eq!(
            lg.list().matches("(rate limiting disabled)").count(),
            MODULES.len()
        );
    }

    #[test]
    fn list_pattern_format() {
        let (lg, _sink) = logger();
        lg.set_syslogger(Syslogger::create("libc").unwrap());
        lg.apply_spec("PATTERN:console:%c").unwrap();
        assert_eq!(
            lg.list_pattern(),
            "         prefix                            format\n\
             \x20        ------                            ------\n\
             SYSLOG   <%B> %D{%h %e %T} %E %A:          ovs|%05N|%c%T|%p|%m\n\
             CONSOLE  none                              %c\n\
             FILE     none                              %D{%Y-%m-%dT%H:%M:%S.###Z}|%05N|%c%T|%p|%m\n"
        );
    }

    #[test]
    fn file_open_reopen_after_rename_and_close() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ovn-ic.log");
        let (lg, sink) = logger();
        assert_eq!(lg.reopen(), Err("Logging to file not configured".into()));
        lg.apply_spec("console:off").unwrap();
        lg.set_log_file(&path).unwrap();
        lg.log(m("ovn_ic"), Level::Info, "one");
        lg.log(m("ovn_ic"), Level::Dbg, "not in file");
        let content = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = content.lines().collect();
        assert_eq!(lines.len(), 2, "{content}");
        let f: Vec<&str> = lines[0].split('|').collect();
        assert!(is_timestamp(f[0], true), "{}", f[0]);
        assert_eq!(
            &f[1..],
            [
                "00001",
                "vlog",
                "INFO",
                &format!("opened log file {}", path.display())
            ]
        );
        assert!(lines[1].ends_with("|00002|ovn_ic|INFO|one"));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & !0o660, 0, "mode {mode:o}");
        // Reopening the same file does nothing.
        lg.reopen().unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), content);
        // logrotate: move away, reopen creates a new file.
        let rotated = dir.path().join("ovn-ic.log.1");
        std::fs::rename(&path, &rotated).unwrap();
        lg.log(m("ovn_ic"), Level::Info, "two");
        lg.reopen().unwrap();
        lg.log(m("ovn_ic"), Level::Info, "three");
        let old = std::fs::read_to_string(&rotated).unwrap();
        assert!(old.contains("|00003|ovn_ic|INFO|two\n"), "{old}");
        assert!(
            old.ends_with("|00004|vlog|INFO|closing log file\n"),
            "{old}"
        );
        let new = std::fs::read_to_string(&path).unwrap();
        let nl: Vec<&str> = new.lines().collect();
        assert_eq!(nl.len(), 2, "{new}");
        assert!(nl[0].ends_with(&format!(
            "|00005|vlog|INFO|opened log file {}",
            path.display()
        )));
        assert!(nl[1].ends_with("|00006|ovn_ic|INFO|three"));
        // vlog/close, then messages are not written (nor counted), reopen logs "opened" again.
        lg.close();
        assert!(!lg.log_file_open());
        lg.log(m("ovn_ic"), Level::Info, "lost");
        lg.reopen().unwrap();
        let new = std::fs::read_to_string(&path).unwrap();
        assert!(!new.contains("lost"));
        // "lost" still counted: syslog (level info, method null here) was a destination.
        assert!(new.ends_with(&format!(
            "|00008|vlog|INFO|opened log file {}\n",
            path.display()
        )));
        assert_eq!(sink.take(), "");
        // Reopen failure: the directory is gone.
        drop(dir);
        let e = lg.reopen();
        assert_eq!(e, Err("No such file or directory".into()));
    }

    #[test]
    fn relative_log_file_and_failures() {
        let (lg, _sink) = logger();
        let e = lg
            .set_log_file(Path::new("/nonexistent/dir/x.log"))
            .unwrap_err();
        assert_eq!(
            e.message,
            "failed to open /nonexistent/dir/x.log for logging: No such file or directory"
        );
        assert_eq!(lg.log_file_name(), None);
        // A relative name is shown as given but resolved against the current directory.
        let rel = PathBuf::from(format!("target/vlog-test-{}.log", std::process::id()));
        if lg.set_log_file(&rel).is_ok() {
            assert_eq!(lg.log_file_name(), Some(rel.clone()));
            let abs = std::env::current_dir().unwrap().join(&rel);
            let c = std::fs::read_to_string(&abs).unwrap();
            assert!(c.contains(&format!("opened log file {}", rel.display())));
            let _ = std::fs::remove_file(abs);
        }
    }

    #[test]
    fn rate_limit_through_logger() {
        let (lg, sink) = logger();
        let rl = RateLimit::new(5, 1);
        let module = m("ovn_ic");
        let mut now = 100_000;
        let emit = |now: u64| match lg.rate_limit(&rl, module, Level::Warn, now) {
            RlVerdict::Drop => {}
            RlVerdict::Log(d) => {
                if let Some(d) = d {
                    lg.log(module, Level::Warn, &d);
                }
                lg.log(
                    module,
                    Level::Warn,
                    "Can't get router uuid for transit switch port p1.",
                );
            }
        };
        for _ in 0..10 {
            emit(now);
            now += 1000;
        }
        emit(now + 2_000);
        let out = sink.take();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3, "{out}");
        assert!(lines[0]
            .ends_with("|00001|ovn_ic|WARN|Can't get router uuid for transit switch port p1."));
        assert!(lines[1].ends_with(
            "|00002|ovn_ic|WARN|Dropped 9 log messages in last 11 seconds (most recently, 3 seconds ago) due to excessive rate"
        ), "{}", lines[1]);
        assert!(lines[2]
            .ends_with("|00003|ovn_ic|WARN|Can't get router uuid for transit switch port p1."));
        // Disabled rate limiting: everything passes.
        lg.set_rate_limits(&["ovn_ic".into()], false).unwrap();
        assert_eq!(
            lg.rate_limit(&rl, module, Level::Warn, now + 2_001),
            RlVerdict::Log(None)
        );
        // Disabled level: dropped without counting.
        lg.apply_spec("ovn_ic:off").unwrap();
        lg.set_rate_limits(&[], true).unwrap();
        assert_eq!(
            lg.rate_limit(&rl, module, Level::Warn, now + 2_002),
            RlVerdict::Drop
        );
    }

    #[test]
    fn broken_console_is_ignored() {
        struct Broken;
        impl Write for Broken {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::Error::from_raw_os_error(libc::ENOSPC))
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Err(std::io::Error::from_raw_os_error(libc::EPIPE))
            }
        }
        let lg = Logger::new("ovn-ic", Box::new(Broken));
        lg.log(m("ovn_ic"), Level::Emer, "no panic");
        // /dev/full as the log file: writes fail with ENOSPC, logging goes on.
        if Path::new("/dev/full").exists() {
            lg.set_log_file(Path::new("/dev/full")).unwrap();
            lg.log(m("ovn_ic"), Level::Emer, "disk full");
        }
    }

    #[test]
    fn syslog_unix_destination() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("dev-log");
        let rx = std::os::unix::net::UnixDatagram::bind(&sock).unwrap();
        let (lg, _sink) = logger();
        lg.set_syslogger(Syslogger::create(&format!("unix:{}", sock.display())).unwrap());
        lg.apply_spec("PATTERN:syslog:ovs|%05N|%c|%p|%m").unwrap();
        lg.log(m("ovn_ic"), Level::Info, "line one\nline two");
        lg.log(m("ovn_ic"), Level::Emer, "emergency");
        lg.log(m("ovn_ic"), Level::Dbg, "not sent");
        let mut buf = [0u8; 512];
        let mut got = vec![];
        for _ in 0..3 {
            let n = rx.recv(&mut buf).unwrap();
            got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        // INFO → LOG_NOTICE (5) | LOG_DAEMON (24); EMER → LOG_ALERT (1).
        assert_eq!(
            got,
            [
                "<29>ovs|00001|ovn_ic|INFO|line one",
                "<29>line two",
                "<25>ovs|00002|ovn_ic|EMER|emergency"
            ]
        );
        rx.set_nonblocking(true).unwrap();
        assert!(rx.recv(&mut buf).is_err());
    }
}
