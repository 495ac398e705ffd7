//! Our OVSDB client against Debian's real ovsdb-server: replica fidelity, probes, reconnects,
//! clusters, locks, SSL and transaction error classification.

mod common;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use ovn_ic::ovsdb::datum::{Atom, Datum};
use ovn_ic::ovsdb::session::{Session, SessionConfig};
use ovn_ic::ovsdb::txn::{Txn, TxnError, TxnStatus};
use ovn_ic::ovsdb::Uuid;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use tokio::sync::Notify;

use common::{test_schema_path, Listen, Server, TEST_DB};

/// A session plus its wake-up, with async helpers for tests.
struct Client {
    s: Session,
    wake: Arc<Notify>,
}

impl Client {
    fn new(remote: &str, cfg: impl FnOnce(SessionConfig) -> SessionConfig) -> Client {
        let wake = Arc::new(Notify::new());
        let c = SessionConfig::new(TEST_DB, remote, wake.clone()).monitor_all(&[
            "Root",
            "Child",
            "Singleton",
        ]);
        let s = Session::spawn("test", cfg(c));
        Client { s, wake }
    }

    /// Run the session until `cond` holds (or panic after `secs`).
    async fn until(&mut self, secs: u64, what: &str, mut cond: impl FnMut(&mut Session) -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            self.s.run();
            if cond(&mut self.s) {
                return;
            }
            if tokio::time::timeout_at(deadline, self.wake.notified())
                .await
                .is_err()
            {
                self.s.run();
                if cond(&mut self.s) {
                    return;
                }
                panic!("timed out waiting for {what}");
            }
        }
    }

    async fn synced(&mut self) {
        self.until(20, "initial sync", |s| s.is_synced()).await;
    }

    async fn commit(&mut self, txn: Txn) -> TxnStatus {
        self.until(20, "commit possible", |s| s.can_commit()).await;
        self.s.commit(txn);
        let wake = self.wake.clone();
        tokio::time::timeout(Duration::from_secs(20), self.s.wait_result(&wake))
            .await
            .expect("transaction reply")
    }

    /// The replica as {table: [rows without _uuid/_version]} sorted, comparable to a dump.
    fn snapshot(&self) -> Value {
        let r = self.s.replica();
        let mut out = serde_json::Map::new();
        for t in ["Root", "Child", "Singleton"] {
            let mut rows: Vec<Value> = r
                .rows(t)
                .into_iter()
                .map(|row| {
                    let mut v = row.to_json();
                    v["_uuid"] = json!(["uuid", row.uuid().to_string()]);
                    v
                })
                .collect();
            rows.sort_by_key(|v| v["_uuid"].to_string());
            out.insert(t.to_string(), Value::Array(rows));
        }
        Value::Object(out)
    }
}

/// `ovsdb-client dump` normalised like [`Client::snapshot`].
fn dump_normalised(remote: &str) -> Value {
    let d = common::dump(remote, TEST_DB).expect("ovsdb-client dump");
    let mut out = serde_json::Map::new();
    for t in ["Root", "Child", "Singleton"] {
        let mut rows: Vec<Value> = common::rows(&d, t)
            .iter()
            .map(|row| {
                let mut v = row.clone();
                v.as_object_mut().unwrap().remove("_version");
                v
            })
            .collect();
        rows.sort_by_key(|v| v["_uuid"].to_string());
        out.insert(t.to_string(), Value::Array(rows));
    }
    Value::Object(out)
}

fn s(v: &str) -> Datum {
    Datum::scalar(v)
}

/// Random edits by another client (ovsdb-client transact) must leave our replica equal to
/// what `ovsdb-client dump` shows.
#[tokio::test]
async fn replica_equals_dump_after_random_edits() -> Result<()> {
    let server = Server::standalone(test_schema_path(), Listen::Unix)?;
    let remote = server.remote();
    let mut c = Client::new(&remote, |c| c);
    c.synced().await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut names: Vec<String> = vec![];
    for i in 0..60 {
        let op = rng.gen_range(0..10);
        let params = if names.is_empty() || op < 4 {
            let name = format!("r{i}");
            names.push(name.clone());
            json!([TEST_DB, {"op": "insert", "table": "Root", "row": {
                "name": name, "color": "red", "count": rng.gen_range(-5..5), "ratio": rng.gen_range(0.0..2.0),
                "tags": ["set", (0..rng.gen_range(0..4)).map(|k| format!("t{k}")).collect::<Vec<_>>()],
                "labels": ["map", (0..rng.gen_range(0..3)).map(|k| [format!("k{k}"), format!("v{i}")]).collect::<Vec<_>>()],
                "children": ["set", [["named-uuid", "c"]]]
            }}, {"op": "insert", "table": "Child", "uuid-name": "c", "row": {"name": format!("c{i}"), "value": i}}])
        } else if op < 8 {
            let name = &names[rng.gen_range(0..names.len())];
            json!([TEST_DB, {"op": "update", "table": "Root", "where": [["name", "==", name]], "row": {
                "count": rng.gen_range(0..100),
                "opt": ["set", if rng.gen_bool(0.5) { vec!["x".to_string()] } else { vec![] }],
                "tags": ["set", (0..rng.gen_range(0..4)).map(|k| format!("u{k}")).collect::<Vec<_>>()],
                "labels": ["map", (0..rng.gen_range(0..3)).map(|k| [format!("k{k}"), format!("w{i}")]).collect::<Vec<_>>()]
            }}])
        } else {
            let name = names.remove(rng.gen_range(0..names.len()));
            json!([TEST_DB, {"op": "delete", "table": "Root", "where": [["name", "==", name]]}])
        };
        common::transact_ok(&remote, &params)?;
    }
    // One more marker write, then wait until the replica has it.
    common::transact_ok(
        &remote,
        &json!([TEST_DB, {"op": "insert", "table": "Singleton", "row": {"value": "done"}}]),
    )?;
    c.until(20, "marker", |s| s.replica().len("Singleton") == 1)
        .await;
    assert_eq!(c.snapshot(), dump_normalised(&remote));
    Ok(())
}

/// Our own transactions come back through the monitor before the reply.
#[tokio::test]
async fn own_writes_arrive_through_monitor() -> Result<()> {
    let server = Server::standalone(test_schema_path(), Listen::Tcp)?;
    let mut c = Client::new(&server.remote(), |c| c);
    c.synced().await;
    let mut t = Txn::new(TEST_DB);
    let child = t.insert(
        c.s.replica(),
        "Child",
        vec![("name", s("c1")), ("value", Datum::scalar(3i64))],
    );
    t.insert(
        c.s.replica(),
        "Root",
        vec![
            ("name", s("a")),
            ("color", s("red")),
            ("labels", Datum::smap([("k", "v")])),
            ("children", Datum::set([child.atom()])),
        ],
    );
    let st = c.commit(t).await;
    let TxnStatus::Success(out) = st else {
        panic!("{st:?}")
    };
    assert_eq!(out.named.len(), 2);
    // Already in the replica when the reply is processed.
    let root =
        c.s.replica()
            .find_by_str("Root", "name", "a")
            .expect("row a")
            .clone();
    assert_eq!(root.smap_get("labels", "k"), Some("v"));
    let child_uuid = root.get("children").uuids().next().unwrap();
    assert_eq!(
        c.s.replica().get("Child", child_uuid).unwrap().str("name"),
        "c1"
    );

    // Write-changed-only: an update to the same values sends nothing.
    let mut t = Txn::new(TEST_DB);
    assert!(!t.update(
        c.s.replica(),
        "Root",
        root.uuid(),
        vec![
            ("name", s("a")),
            ("color", s("red")),
            ("labels", Datum::smap([("k", "v")]))
        ]
    ));
    assert!(t.is_empty());
    assert_eq!(c.commit(t).await, TxnStatus::Unchanged);
    Ok(())
}

/// A failed precondition is "try again"; a uniqueness violation is a constraint violation;
/// a dangling strong reference is a referential integrity violation.
#[tokio::test]
async fn transaction_errors_are_classified() -> Result<()> {
    let server = Server::standalone(test_schema_path(), Listen::Unix)?;
    let remote = server.remote();
    let mut c = Client::new(&remote, |c| c);
    c.synced().await;
    let mut t = Txn::new(TEST_DB);
    t.insert(
        c.s.replica(),
        "Root",
        vec![
            ("name", s("x")),
            ("color", s("red")),
            ("count", Datum::scalar(1i64)),
        ],
    );
    assert!(c.commit(t).await.is_ok());
    let uuid =
        c.s.replica()
            .find_by_str("Root", "name", "x")
            .unwrap()
            .uuid();

    // Duplicate index value.
    let mut t = Txn::new(TEST_DB);
    t.insert(
        c.s.replica(),
        "Root",
        vec![("name", s("x")), ("color", s("red"))],
    );
    let st = c.commit(t).await;
    assert!(
        matches!(st, TxnStatus::Error(TxnError::ConstraintViolation(ref d)) if d.contains("identical values")),
        "{st:?}"
    );

    // Strong reference to a row that does not exist.
    let mut t = Txn::new(TEST_DB);
    t.insert(
        c.s.replica(),
        "Root",
        vec![
            ("name", s("y")),
            ("color", s("red")),
            ("child", Datum::scalar(Uuid::random())),
        ],
    );
    let st = c.commit(t).await;
    assert!(
        matches!(st, TxnStatus::Error(TxnError::ReferentialIntegrity(_))),
        "{st:?}"
    );

    // Enum violation.
    let mut t = Txn::new(TEST_DB);
    t.insert(
        c.s.replica(),
        "Root",
        vec![("name", s("z")), ("color", s("purple"))],
    );
    let st = c.commit(t).await;
    assert!(
        matches!(st, TxnStatus::Error(TxnError::ConstraintViolation(_))),
        "{st:?}"
    );

    // Someone else changes the row; our verify (built on the old value) fails: try again.
    common::transact_ok(
        &remote,
        &json!([TEST_DB, {"op": "update", "table": "Root", "where": [["name", "==", "x"]], "row": {"count": 2}}]),
    )?;
    let mut t = Txn::new(TEST_DB);
    t.verify("Root", uuid, vec![("count", Datum::scalar(1i64))]);
    t.update(
        c.s.replica(),
        "Root",
        uuid,
        vec![("tags", Datum::set([Atom::from("t")]))],
    );
    let st = c.commit(t).await;
    assert!(matches!(st, TxnStatus::TryAgain(_)), "{st:?}");

    // After "try again" no new transaction is opened until the replica changes.
    assert!(!c.s.can_commit());
    common::transact_ok(
        &remote,
        &json!([TEST_DB, {"op": "update", "table": "Root", "where": [["name", "==", "x"]], "row": {"count": 3}}]),
    )?;
    c.until(20, "unblocked by a change", |s| s.can_commit())
        .await;
    Ok(())
}

/// Over TCP with a 1 s probe, an idle session stays up for several intervals (we answer the
/// server's echo and our own probes get answers); a server that stops answering (SIGSTOP) is
/// detected within two intervals, and the session comes back when it resumes.
#[tokio::test]
async fn probes_keep_idle_sessions_and_detect_dead_servers() -> Result<()> {
    let mut server = Server::builder(test_schema_path())
        .listen(Listen::Tcp)
        .start()?;
    // Make the server probe us every second as well.
    let remote = server.remote();
    let mut c = Client::new(&remote, |mut c| {
        c.probe_interval = Some(1000);
        c
    });
    c.synced().await;
    let connects = c.s.stats().connects;
    tokio::time::sleep(Duration::from_millis(4500)).await;
    c.s.run();
    assert!(c.s.is_connected());
    assert_eq!(c.s.stats().connects, connects, "idle session was dropped");

    server.stop()?;
    c.until(6, "dead server detected", |s| !s.is_connected())
        .await;
    server.cont()?;
    c.until(20, "reconnected", |s| s.is_synced()).await;
    assert!(c.s.stats().connects > connects);
    Ok(())
}

/// Two sessions contend for one lock; the loser learns it owns the lock when the holder goes.
#[tokio::test]
async fn lock_contention_and_handover() -> Result<()> {
    let server = Server::standalone(test_schema_path(), Listen::Unix)?;
    let remote = server.remote();
    let mut a = Client::new(&remote, |mut c| {
        c.lock = Some("ovn_ic".into());
        c
    });
    a.until(20, "a holds lock", |s| s.has_lock()).await;
    let mut b = Client::new(&remote, |mut c| {
        c.lock = Some("ovn_ic".into());
        c
    });
    b.until(20, "b contended", |s| s.is_lock_contended()).await;
    assert!(!b.s.has_lock());

    // b cannot write without the lock: try again locally, nothing sent.
    b.synced().await;
    let mut t = Txn::new(TEST_DB);
    t.insert(
        b.s.replica(),
        "Root",
        vec![("name", s("from-b")), ("color", s("red"))],
    );
    assert!(matches!(b.commit(t).await, TxnStatus::TryAgain(_)));

    // a writes with the lock asserted.
    let mut t = Txn::new(TEST_DB);
    t.insert(
        a.s.replica(),
        "Root",
        vec![("name", s("from-a")), ("color", s("red"))],
    );
    a.synced().await;
    assert!(a.commit(t).await.is_ok());

    drop(a);
    b.until(20, "b gets lock", |s| s.has_lock()).await;
    let mut t = Txn::new(TEST_DB);
    t.insert(
        b.s.replica(),
        "Root",
        vec![("name", s("from-b")), ("color", s("red"))],
    );
    assert!(b.commit(t).await.is_ok());

    // A third session steals it; b learns it was stolen and can no longer write.
    let mut c = Client::new(&remote, |c| c);
    c.synced().await;
    c.s.steal_lock("ovn_ic");
    c.until(20, "c stole lock", |s| s.has_lock()).await;
    b.until(20, "b told stolen", |s| {
        !s.has_lock() && s.is_lock_contended()
    })
    .await;
    let mut t = Txn::new(TEST_DB);
    t.insert(
        b.s.replica(),
        "Root",
        vec![("name", s("from-b-2")), ("color", s("red"))],
    );
    b.until(20, "b may commit", |s| s.can_commit()).await;
    assert!(matches!(b.commit(t).await, TxnStatus::TryAgain(_)));

    // Releasing the lock.
    c.s.set_lock(None);
    assert!(!c.s.has_lock());
    Ok(())
}

/// Reconnecting to a clustered server resumes with monitor_cond_since: no full snapshot.
#[tokio::test]
async fn reconnect_resumes_with_monitor_cond_since() -> Result<()> {
    let cluster = common::Cluster::new(test_schema_path(), 3)?;
    let remote = cluster.remote();
    let mut c = Client::new(&remote, |c| c);
    c.synced().await;
    let mut t = Txn::new(TEST_DB);
    t.insert(
        c.s.replica(),
        "Root",
        vec![("name", s("before")), ("color", s("red"))],
    );
    assert!(c.commit(t).await.is_ok());
    let before = c.s.stats();
    assert_eq!(before.full_syncs, 1);
    c.s.force_reconnect();
    c.until(20, "disconnect", |s| !s.is_synced()).await;
    // Another client writes while we are away.
    common::transact_ok(
        &remote,
        &json!([TEST_DB, {"op": "insert", "table": "Root", "row": {"name": "while-away", "color": "red"}}]),
    )?;
    c.until(30, "resync", |s| {
        s.is_synced()
            && s.replica()
                .find_by_str("Root", "name", "while-away")
                .is_some()
    })
    .await;
    let after = c.s.stats();
    assert_eq!(after.full_syncs, 1, "reconnect did a full resync");
    assert_eq!(after.resumed_syncs, 1);
    Ok(())
}

/// Kill the raft leader while a writer commits: the client follows the new leader, every
/// acknowledged transaction is in the database exactly once, and the replica converges.
#[tokio::test]
async fn follows_new_leader_without_losing_or_duplicating() -> Result<()> {
    let mut cluster = common::Cluster::new(test_schema_path(), 3)?;
    let remote = cluster.remote();
    let mut c = Client::new(&remote, |mut c| {
        c.probe_interval = Some(1000);
        c
    });
    c.synced().await;
    let mut acked = vec![];
    let mut killed = false;
    let mut i = 0;
    while acked.len() < 40 {
        if acked.len() == 15 && !killed {
            let leader = cluster.wait_leader(Duration::from_secs(20))?;
            cluster.kill(leader);
            killed = true;
        }
        let name = format!("w{i}");
        // Idempotent retry: after an unknown outcome, only insert if the row is not there.
        c.until(30, "synced", |s| s.is_synced()).await;
        if c.s.replica().find_by_str("Root", "name", &name).is_some() {
            acked.push(name);
            i += 1;
            continue;
        }
        let mut t = Txn::new(TEST_DB);
        t.insert(
            c.s.replica(),
            "Root",
            vec![("name", s(&name)), ("color", s("red"))],
        );
        match c.commit(t).await {
            TxnStatus::Success(_) => {
                acked.push(name);
                i += 1;
            }
            TxnStatus::TryAgain(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    let d = common::dump(&cluster.remote(), TEST_DB)?;
    let rows = common::rows(&d, "Root");
    for name in &acked {
        let n = rows.iter().filter(|r| r["name"] == json!(name)).count();
        assert_eq!(n, 1, "{name} present {n} times");
    }
    c.until(20, "replica converged", |s| {
        s.replica().len("Root") == rows.len()
    })
    .await;
    Ok(())
}

/// SSL: mutual TLS with the right CA works; a server certificate from another CA is refused.
#[tokio::test]
async fn ssl_mutual_auth() -> Result<()> {
    use ovn_ic::ovsdb::ssl::{SslContext, SslOptions};
    let pki = common::Pki::new()?;
    let server = Server::standalone_ssl(test_schema_path(), &pki)?;
    let files = &pki.client;
    let good = SslOptions {
        private_key: Some(files.private_key.clone()),
        certificate: Some(files.certificate.clone()),
        ca_cert: Some(files.ca_cert.clone()),
        ..Default::default()
    };
    let mut c = Client::new(&server.remote(), |mut c| {
        c.ssl = Some(Arc::new(SslContext::new(good.clone())));
        c
    });
    c.synced().await;

    let bad = SslOptions {
        ca_cert: Some(pki.other_ca_cert.clone()),
        ..good
    };
    let mut c2 = Client::new(&server.remote(), |mut c| {
        c.ssl = Some(Arc::new(SslContext::new(bad)));
        c
    });
    tokio::time::sleep(Duration::from_secs(3)).await;
    c2.s.run();
    assert!(
        !c2.s.is_synced(),
        "connected to a server signed by an unknown CA"
    );
    Ok(())
}
