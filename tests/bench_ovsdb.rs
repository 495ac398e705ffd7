//! Replica load and transaction throughput of our OVSDB client against a real ovsdb-server,
//! beside the time Debian's `ovsdb-client dump` (the C library) needs for the same database.
//!
//!     cargo test --release --test bench_ovsdb -- --ignored --nocapture
//!
//! `BENCH_ROWS` / `BENCH_TXNS` override the defaults (100000 rows, 10000 transactions). Prints a
//! table; asserts only that the operations succeed.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use ovn_ic::ovsdb::datum::Datum;
use ovn_ic::ovsdb::session::{Session, SessionConfig};
use ovn_ic::ovsdb::txn::Txn;
use tokio::sync::Notify;

fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(|l| l.to_string())
        })
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

async fn until(s: &mut Session, wake: &Notify, mut cond: impl FnMut(&mut Session) -> bool) {
    loop {
        s.run();
        if cond(s) {
            return;
        }
        let _ = tokio::time::timeout(Duration::from_secs(1), wake.notified()).await;
    }
}

#[test]
#[ignore = "benchmark: run with --ignored --nocapture"]
fn ovsdb_bench() -> anyhow::Result<()> {
    let env = |k: &str, d: usize| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let rows = env("BENCH_ROWS", 100_000);
    let txns = env("BENCH_TXNS", 10_000);
    let server = common::Server::standalone(common::test_schema_path(), common::Listen::Unix)?;
    let remote = server.remote();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        // Load the rows through one writer session (batches of 2000 inserts).
        let wake = Arc::new(Notify::new());
        let cfg = SessionConfig::new(common::TEST_DB, &remote, wake.clone())
            .monitor_columns("Singleton", &["value"]);
        let mut w = Session::spawn("writer", cfg);
        until(&mut w, &wake, |s| s.is_synced()).await;
        let t0 = Instant::now();
        let mut i = 0;
        while i < rows {
            let mut t = Txn::new(common::TEST_DB);
            for _ in 0..2000.min(rows - i) {
                t.insert(
                    w.replica(),
                    "Root",
                    vec![
                        ("name", Datum::scalar(format!("row{i:07}"))),
                        ("color", Datum::scalar("red")),
                        ("count", Datum::scalar(i as i64)),
                        ("tags", Datum::set(["a", "b"].map(Into::into))),
                        (
                            "labels",
                            Datum::smap([("k1", "v1"), ("k2", format!("{i}").as_str())]),
                        ),
                    ],
                );
                i += 1;
            }
            w.commit(t);
            let st = w.wait_result(&wake).await;
            assert!(st.is_ok(), "{st:?}");
        }
        let load = t0.elapsed();
        drop(w);

        // A fresh replica of the whole database.
        let rss0 = peak_rss_kb();
        let wake = Arc::new(Notify::new());
        let cfg = SessionConfig::new(common::TEST_DB, &remote, wake.clone()).monitor_all(&[
            "Root",
            "Child",
            "Singleton",
        ]);
        let t0 = Instant::now();
        let mut r = Session::spawn("reader", cfg);
        until(&mut r, &wake, |s| s.is_synced()).await;
        let replica_time = t0.elapsed();
        assert_eq!(r.replica().len("Root"), rows);
        let rss1 = peak_rss_kb();

        // ovsdb-client dump of the same database.
        let t0 = Instant::now();
        let out = std::process::Command::new("ovsdb-client")
            .args(["dump", &remote, common::TEST_DB])
            .output()?;
        let dump_time = t0.elapsed();
        assert!(out.status.success());

        // Small transactions, one at a time (update one row each).
        let uuids: Vec<_> = r
            .replica()
            .rows("Root")
            .iter()
            .take(txns.max(1))
            .map(|row| row.uuid())
            .collect();
        let t0 = Instant::now();
        for k in 0..txns {
            let mut t = Txn::new(common::TEST_DB);
            t.update(
                r.replica(),
                "Root",
                uuids[k % uuids.len()],
                vec![("count", Datum::scalar(-(k as i64) - 1))],
            );
            r.commit(t);
            let st = r.wait_result(&wake).await;
            assert!(st.is_ok(), "{st:?}");
        }
        let txn_time = t0.elapsed();

        println!("ovsdb client benchmark ({rows} rows, {txns} transactions, unix socket)");
        println!("{:<44} {:>12}", "measure", "value");
        println!(
            "{:<44} {:>12.0}",
            "bulk insert, rows/s (2000 per txn)",
            rows as f64 / load.as_secs_f64()
        );
        println!(
            "{:<44} {:>12.3}",
            "replica load from scratch, s",
            replica_time.as_secs_f64()
        );
        println!(
            "{:<44} {:>12.0}",
            "replica load, rows/s",
            rows as f64 / replica_time.as_secs_f64()
        );
        println!(
            "{:<44} {:>12.3}",
            "ovsdb-client dump (C library), s",
            dump_time.as_secs_f64()
        );
        println!(
            "{:<44} {:>12.2}",
            "replica time / dump time",
            replica_time.as_secs_f64() / dump_time.as_secs_f64()
        );
        println!(
            "{:<44} {:>12.0}",
            "small transactions, txn/s (sequential)",
            txns as f64 / txn_time.as_secs_f64()
        );
        println!("{:<44} {:>12}", "peak RSS before replica, kB", rss0);
        println!("{:<44} {:>12}", "peak RSS after replica, kB", rss1);
        Ok::<(), anyhow::Error>(())
    })?;
    Ok(())
}
