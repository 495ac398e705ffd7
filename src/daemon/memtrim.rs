//! Give freed heap back to the kernel after large bursts of work.
//!
//! A cold start (or a resync) decodes and writes thousands of rows as short-lived JSON trees
//! and intents. glibc keeps the freed pages, so the resident size stayed at the burst's high
//! water mark, and fragmentation from one burst added to the next one's peak (measured: 7–9 MB
//! of a 35–45 MB daemon came back with `malloc_trim`). After enough rows have gone through
//! since the last trim, the main loop trims once (a few ms); a single change is a handful of
//! rows, so steady state trims only every few hundred changes.

/// Rows applied from updates plus rows written that make a burst worth a trim.
const THRESHOLD: u64 = 2000;

#[derive(Debug, Default)]
pub struct Trimmer {
    /// Rows seen at the last trim (replica counters are monotonic).
    last_applied: u64,
    /// Rows written since the last trim.
    written: u64,
}

impl Trimmer {
    pub fn new() -> Trimmer {
        Trimmer::default()
    }

    /// Account for `applied` (the replicas' total rows applied so far) and `written` (rows
    /// this run wrote); true when a trim is due (the counters then restart).
    pub fn due(&mut self, applied: u64, written: u64) -> bool {
        self.written += written;
        let burst = applied.saturating_sub(self.last_applied) + self.written;
        if burst < THRESHOLD {
            return false;
        }
        self.last_applied = applied;
        self.written = 0;
        true
    }
}

/// Blocks at least this large are mapped on their own and unmapped when freed.
const MMAP_THRESHOLD: i32 = 128 * 1024;

/// Fix glibc's mmap threshold (call once at start). glibc raises it to the size of any mapped
/// block that is freed, so after the first large buffer (a framed message, a hash table of
/// thousands of rows) every later one of up to that size came from the heap, left a hole
/// between long-lived rows when freed, and the heap's resident size grew to twice the live
/// data during a cold start.
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters (under its lock); called before any
    // other thread exists, and valid at any time anyway.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
    }
}

/// Return free heap pages to the kernel (glibc only; elsewhere nothing to do).
pub fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists under its lock and
    // releases unused pages; it touches no memory we own and may be called at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_after_a_burst_not_after_single_changes() {
        let mut t = Trimmer::new();
        // Single changes: a few rows each, never due.
        let mut applied = 0;
        for _ in 0..100 {
            applied += 3;
            assert!(!t.due(applied, 1));
        }
        // 100 runs of small changes add up to 400 rows: still not a burst.
        // A cold start: thousands of rows at once.
        applied += 5000;
        assert!(t.due(applied, 1000));
        // Counted from there again.
        assert!(!t.due(applied + 10, 0));
        assert!(t.due(applied + 10, 2000));
    }
}
