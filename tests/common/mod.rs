//! Shared test harness for the integration tests (`mod common;` in each `tests/*.rs`).
//!
//! It runs Debian's real OVSDB/OVN programs (`ovsdb-tool`, `ovsdb-server`, `ovsdb-client`,
//! `ovs-appctl`, `ovn-northd`) in private temporary directories and guarantees that every process
//! it starts goes away again:
//!
//! * every child is owned by a [`Proc`], whose `Drop` sends `SIGKILL` by pid and reaps it
//!   (`waitpid`), so nothing is left behind even when the test panics (unwinding drops it);
//! * every child is also started with `PR_SET_PDEATHSIG = SIGKILL` from a process-wide spawner
//!   thread, so if the test binary itself dies (killed by a timeout, `abort`), the kernel kills
//!   the children too;
//! * children get `OVS_RUNDIR`/`OVS_LOGDIR`/`OVS_DBDIR`/`OVN_RUNDIR`/... pointed at their temp
//!   directory, so nothing is written under `/var/run` or `/var/log`.
//!
//! Main entry points:
//!
//! * schemas: [`schema_path`], [`Schema`], [`skip_unless_schema!`], [`test_schema_path`]
//!   (our own small schema for generic client tests, `tests/data/test.ovsschema`);
//! * servers: [`Server::standalone`], [`Server::standalone_ssl`], [`Server::builder`],
//!   [`Cluster::new`];
//! * TLS material: [`Pki::new`];
//! * Debian's client tools: [`dump`], [`transact`], [`transact_ok`], [`appctl`], [`Client`];
//! * OVN setups: [`IcDbs`], [`AzDbs`], [`OvnDbs`]; daemons: [`Daemon::northd`],
//!   [`Daemon::ovn_ic`] (Debian's C binary [`C_OVN_IC`] or ours, [`our_ovn_ic`]);
//! * polling: [`wait_until`], [`wait_for`].
//!
//! Every function that can fail returns `anyhow::Result` with a message naming the command, its
//! stderr and the tail of the relevant log, so a failing test says why.
//!
//! Environment knobs: `OVN_SCHEMA_DIR` (where the OVN schemas are, default `/usr/share/ovn`),
//! `OVN_IC_TEST_KEEP=1` (keep temporary directories for inspection; their paths are printed).
//!
//! Example:
//!
//! ```ignore
//! mod common;
//! use common::{rows, schema_path, wait_until, Listen, Server};
//! use serde_json::json;
//!
//! #[test]
//! fn inserts_are_visible() {
//!     common::skip_unless_schema!("ovn-ic-sb", "Availability_Zone");
//!     let isb = Server::standalone(schema_path("ovn-ic-sb"), Listen::Unix).unwrap();
//!     isb.transact(json!([{"op": "insert", "table": "Availability_Zone",
//!                          "row": {"name": "az1"}}])).unwrap();
//!     // … run the code under test against isb.remote() …
//!     assert!(wait_until(std::time::Duration::from_secs(5), || {
//!         isb.dump().is_ok_and(|db| rows(&db, "Availability_Zone").len() == 1)
//!     }));
//! } // isb is killed (by pid) and its directory removed here, also if the test panicked
//! ```
//!
//! The harness's own tests are in `tests/harness.rs`.

// Each test crate compiles this module separately and uses only part of it.
#![allow(dead_code, unused_imports, unused_macros)]

mod client;
mod cluster;
pub mod lab;
mod ovn;
mod pki;
mod process;
mod schema;
mod server;

pub use client::{appctl, dump, rows, transact, transact_ok, Client};
pub use cluster::{Cluster, RaftStatus};
pub use ovn::{our_ovn_ic, AzDbs, Daemon, DbOptions, IcDbs, OvnDbs, C_OVN_IC};
pub use pki::{Pki, SslFiles};
pub use process::{pid_exists, run, Proc, TestDir};
pub use schema::{
    schema_dir, schema_lacks, schema_path, test_schema_path, Schema, TEST_DB, TEST_SCHEMA,
};
pub use server::{Listen, Server, ServerBuilder};

pub(crate) use schema::skip_unless_schema;

use std::time::{Duration, Instant};

/// Polls `cond` until it returns true or `timeout` passes; returns whether it became true.
///
/// The first check is immediate; the interval starts at 10 ms and grows to 100 ms, so short
/// waits stay short and long waits do not burn the (shared, 2-core) CPU.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    wait_for(timeout, || cond().then_some(())).is_some()
}

/// Polls `f` until it returns `Some(value)` or `timeout` passes.
pub fn wait_for<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    let mut interval = Duration::from_millis(10);
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        std::thread::sleep(interval.min(deadline - now));
        interval = (interval * 2).min(Duration::from_millis(100));
    }
}
