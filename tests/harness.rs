//! Proves the test harness in `tests/common/`: servers come up and are reachable with Debian's
//! `ovsdb-client`, clusters form and fail over, TLS works, OVN setups and ovn-northd run, and no
//! process outlives its owner.

mod common;

use std::time::{Duration, Instant};

use common::{
    pid_exists, rows, schema_path, test_schema_path, wait_for, wait_until, Client, Cluster, Daemon,
    IcDbs, Listen, OvnDbs, Pki, Proc, Schema, Server, C_OVN_IC, TEST_DB,
};
use serde_json::{json, Value};

/// Asserts that a process is gone (killed and reaped, not even a zombie).
fn assert_gone(pid: u32) {
    assert!(
        wait_until(Duration::from_secs(5), || !pid_exists(pid)),
        "process {pid} is still there"
    );
}

#[test]
fn wait_until_is_immediate_when_true_and_honours_the_timeout() {
    let start = Instant::now();
    assert!(wait_until(Duration::from_secs(5), || true));
    assert!(start.elapsed() < Duration::from_secs(1));

    let start = Instant::now();
    assert!(!wait_until(Duration::from_millis(150), || false));
    let e = start.elapsed();
    assert!(
        e >= Duration::from_millis(150) && e < Duration::from_secs(2),
        "{e:?}"
    );

    let mut n = 0;
    let v = wait_for(Duration::from_secs(5), || {
        n += 1;
        (n == 4).then_some(n * 10)
    });
    assert_eq!(v, Some(40));
}

fn skipped_body(reached: &mut bool) {
    common::skip_unless_schema!("ovn-ic-sb", "No_Such_Table");
    *reached = true;
}

fn kept_body(reached: &mut bool) {
    common::skip_unless_schema!("ovn-ic-sb", "Route", "ip_prefix");
    *reached = true;
}

#[test]
fn schema_lookup_and_feature_checks() {
    for (name, db) in [
        ("ovn-nb", "OVN_Northbound"),
        ("ovn-sb", "OVN_Southbound"),
        ("ovn-ic-nb", "OVN_IC_Northbound"),
        ("ovn-ic-sb", "OVN_IC_Southbound"),
    ] {
        let path = schema_path(name);
        assert!(path.ends_with(format!("{name}.ovsschema")), "{path:?}");
        let s = Schema::ovn(name).unwrap();
        assert_eq!(s.name(), db);
        assert!(!s.version().is_empty());
    }
    let sb = Schema::ovn("ovn-ic-sb").unwrap();
    assert!(sb.has_table("Route"));
    assert!(sb.has_column("Route", "ip_prefix"));
    assert!(!sb.has_column("Route", "no_such_column"));
    assert!(sb.lacks("Route", None).is_none());
    let why = sb.lacks("Route", Some("no_such_column")).unwrap();
    assert!(why.contains("lacks Route.no_such_column"), "{why}");
    assert!(common::schema_lacks("no-such-schema", "X", None).is_some());
    assert!(Schema::load(test_schema_path())
        .unwrap()
        .has_table("Singleton"));

    let mut reached = false;
    skipped_body(&mut reached);
    assert!(!reached, "skip_unless_schema! did not return");
    kept_body(&mut reached);
    assert!(
        reached,
        "skip_unless_schema! returned although the column exists"
    );
}

#[test]
fn standalone_unix_server_with_the_test_schema() {
    let server = Server::standalone(test_schema_path(), Listen::Unix).unwrap();
    assert!(server.remote().starts_with("unix:"), "{}", server.remote());
    assert_eq!(server.db_name(), TEST_DB);
    let pid = server.pid().unwrap();

    // Every column kind of the test schema round-trips through the real server.
    let reply = server
        .transact(json!([
            {"op": "insert", "table": "Child", "uuid-name": "c1",
             "row": {"name": "c1", "value": 7}},
            {"op": "insert", "table": "Root", "row": {
                "name": "r1", "count": -3, "ratio": 0.5, "enabled": true,
                "id": ["uuid", "7d3c4a63-3f2d-4f0a-9f44-7fd4c0b9d3aa"],
                "small": 100, "color": "green", "opt": ["set", ["x"]],
                "tags": ["set", ["a", "b"]], "ints": ["set", [1, 2, 3]],
                "labels": ["map", [["k", "v"]]], "weights": ["map", [["w", 2]]],
                "child": ["named-uuid", "c1"], "children": ["set", [["named-uuid", "c1"]]],
                "weak_child": ["named-uuid", "c1"]}},
            {"op": "insert", "table": "Singleton", "row": {"value": "only"}}
        ]))
        .unwrap();
    assert_eq!(reply.as_array().unwrap().len(), 3);

    let db = server.dump().unwrap();
    let root = &rows(&db, "Root")[0];
    assert_eq!(root["name"], "r1");
    assert_eq!(root["count"], -3);
    assert_eq!(root["color"], "green");
    assert_eq!(root["tags"], json!(["set", ["a", "b"]]));
    assert_eq!(root["labels"], json!(["map", [["k", "v"]]]));
    let child_uuid = &rows(&db, "Child")[0]["_uuid"];
    assert_eq!(&root["child"], child_uuid);
    assert_eq!(&root["weak_child"], child_uuid);
    assert_eq!(rows(&db, "Singleton").len(), 1);

    // Constraints are real: maxRows 1, the index, and the integer range.
    let c = server.client();
    for bad in [
        json!({"op": "insert", "table": "Singleton", "row": {}}),
        json!({"op": "insert", "table": "Root", "row": {"name": "r1"}}),
        json!({"op": "insert", "table": "Root", "row": {"name": "r2", "small": 101}}),
    ] {
        let reply = c
            .transact(&server.remote(), &json!([TEST_DB, bad]))
            .unwrap();
        assert!(
            reply.to_string().contains("error"),
            "{bad} succeeded: {reply}"
        );
    }
    // Unreferenced Child rows are garbage-collected (Child is not a root table).
    server
        .transact(json!([{"op": "delete", "table": "Root", "where": []}]))
        .unwrap();
    assert!(rows(&server.dump().unwrap(), "Child").is_empty());

    drop(server);
    assert_gone(pid);
}

#[test]
fn standalone_tcp_server_kill_restart_stop_cont() {
    let mut server = Server::standalone(schema_path("ovn-ic-nb"), Listen::Tcp).unwrap();
    let remote = server.remote();
    assert!(remote.starts_with("tcp:127.0.0.1:"), "{remote}");
    assert_ne!(server.port(), Some(0));
    let dir = server.dir().to_path_buf();
    server
        .transact(json!([{"op": "insert", "table": "Transit_Switch",
                          "row": {"name": "ts1"}}]))
        .unwrap();

    // kill -9, then restart on the same port with the same data.
    let first = server.pid().unwrap();
    server.kill();
    assert_gone(first);
    assert!(common::dump(&remote, "OVN_IC_Northbound").is_err());
    server.restart().unwrap();
    assert_eq!(server.remote(), remote);
    assert_ne!(server.pid(), Some(first));
    let db = common::dump(&remote, "OVN_IC_Northbound").unwrap();
    assert_eq!(rows(&db, "Transit_Switch")[0]["name"], "ts1");
    assert!(server.log_path().exists());
    assert!(server
        .appctl(&["ovsdb-server/list-dbs"])
        .unwrap()
        .contains("OVN_IC_Northbound"));

    // SIGSTOP: alive but silent, so a client times out; SIGCONT: answers again.
    server.stop().unwrap();
    let quick = Client::new().timeout(Duration::from_millis(700));
    let err = quick.dump(&remote, "OVN_IC_Northbound").unwrap_err();
    assert!(format!("{err:#}").contains("timed out"), "{err:#}");
    server.cont().unwrap();
    quick.dump(&remote, "OVN_IC_Northbound").unwrap();

    // A stopped server is still killed on drop, and its directory is removed.
    server.stop().unwrap();
    let pid = server.pid().unwrap();
    drop(server);
    assert_gone(pid);
    assert!(!dir.exists());
}

#[test]
fn servers_are_killed_when_the_test_panics() {
    let (tx, rx) = std::sync::mpsc::channel();
    let result = std::panic::catch_unwind(move || {
        let server = Server::standalone(test_schema_path(), Listen::Unix).unwrap();
        tx.send(server.pid().unwrap()).unwrap();
        panic!("deliberate panic with a running server");
    });
    assert!(result.is_err());
    assert_gone(rx.recv().unwrap());

    // A generic Proc started on another thread survives that thread's end (the spawner, not
    // the calling thread, is its parent) and dies with its owner.
    let dir = common::TestDir::new("proc").unwrap();
    let out = dir.join("out");
    let mut proc = std::thread::spawn(move || {
        let mut cmd = std::process::Command::new("sleep");
        cmd.arg("30");
        Proc::spawn("sleep", cmd, &out, None).unwrap()
    })
    .join()
    .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert!(proc.is_running());
    let pid = proc.pid();
    drop(proc);
    assert_gone(pid);
}

#[test]
fn cluster_of_three_elects_fails_over_and_rejoins() {
    let mut cluster = Cluster::new(schema_path("ovn-ic-sb"), 3).unwrap();
    assert_eq!(cluster.len(), 3);
    let remote = cluster.remote();
    assert_eq!(remote.split(',').count(), 3, "{remote}");
    let pids = cluster.pids();
    assert_eq!(pids.len(), 3);

    let leader = cluster.leader().expect("a leader after forming");
    for i in 0..3 {
        let s = cluster.status(i).unwrap();
        assert!(s.is_member(), "{s:?}");
        assert_eq!(s.is_leader(), i == leader, "{s:?}");
    }
    common::transact_ok(
        &remote,
        &json!(["OVN_IC_Southbound",
                {"op": "insert", "table": "Availability_Zone", "row": {"name": "az1"}}]),
    )
    .unwrap();

    // Kill the leader: another member takes over, in a later term.
    let old_term = cluster.status(leader).unwrap().term;
    cluster.kill(leader);
    assert_gone(pids[leader]);
    let new_leader = cluster.wait_leader(Duration::from_secs(15)).unwrap();
    assert_ne!(new_leader, leader);
    assert!(cluster.status(new_leader).unwrap().term > old_term);

    // The cluster still takes writes through the comma-separated remote.
    common::transact_ok(
        &remote,
        &json!(["OVN_IC_Southbound",
                {"op": "insert", "table": "Availability_Zone", "row": {"name": "az2"}}]),
    )
    .unwrap();

    // The old leader restarts, rejoins as a follower and catches up.
    cluster.restart(leader).unwrap();
    cluster.wait_joined(Duration::from_secs(15)).unwrap();
    assert!(!cluster.status(leader).unwrap().is_leader());
    let member_remote = cluster.member(leader).remote();
    assert!(wait_until(Duration::from_secs(10), || {
        common::dump(&member_remote, "OVN_IC_Southbound")
            .is_ok_and(|db| rows(&db, "Availability_Zone").len() == 2)
    }));

    // A hung (SIGSTOPped) leader is replaced too; after SIGCONT it steps down and rejoins.
    let hung = cluster.wait_leader(Duration::from_secs(10)).unwrap();
    cluster.stop(hung).unwrap();
    let other = cluster.wait_leader(Duration::from_secs(15)).unwrap();
    assert_ne!(other, hung);
    cluster.cont(hung).unwrap();
    cluster.wait_joined(Duration::from_secs(15)).unwrap();
    assert!(wait_until(Duration::from_secs(10), || {
        cluster.status(hung).is_ok_and(|s| !s.is_leader())
    }));

    let pids = cluster.pids();
    drop(cluster);
    for pid in pids {
        assert_gone(pid);
    }
}

#[test]
fn pki_and_ssl_server() {
    let pki = Pki::new().unwrap();
    for f in [
        &pki.ca_cert,
        &pki.other_ca_cert,
        &pki.server.certificate,
        &pki.client.private_key,
    ] {
        assert!(f.exists(), "{f:?}");
    }
    let server = Server::standalone_ssl(schema_path("ovn-ic-sb"), &pki).unwrap();
    let remote = server.remote();
    assert!(remote.starts_with("ssl:127.0.0.1:"), "{remote}");

    // The PKI's client is accepted (the convenience client uses it).
    let db = server.dump().unwrap();
    assert!(db.get("Availability_Zone").is_some());
    // Same by hand, with the exact ovsdb-client command line.
    let out = Client::new()
        .run(&[
            &format!("--private-key={}", pki.client.private_key.display()),
            &format!("--certificate={}", pki.client.certificate.display()),
            &format!("--ca-cert={}", pki.ca_cert.display()),
            "list-dbs",
            &remote,
        ])
        .unwrap();
    assert!(out.contains("OVN_IC_Southbound"), "{out}");

    // A client from the unrelated CA is refused, and so is a client without TLS.
    let quick = Client::new().timeout(Duration::from_secs(3));
    assert!(quick
        .clone()
        .ssl(pki.other.clone())
        .dump(&remote, "OVN_IC_Southbound")
        .is_err());
    let plain = remote.replacen("ssl:", "tcp:", 1);
    assert!(quick.dump(&plain, "OVN_IC_Southbound").is_err());

    let pid = server.pid().unwrap();
    drop(server);
    assert_gone(pid);
}

#[test]
fn ovn_databases_and_northd() {
    let dbs = OvnDbs::start("az1").unwrap();
    let args = dbs.ovn_ic_args();
    assert_eq!(args.len(), 4);
    assert!(args[0].starts_with("--ovnnb-db=unix:"), "{args:?}");
    assert!(args[3].starts_with("--ic-sb-db=unix:"), "{args:?}");
    let nb = dbs.az.nb.dump().unwrap();
    assert_eq!(rows(&nb, "NB_Global")[0]["name"], "az1");
    assert_eq!(rows(&dbs.ic.ic_nb.dump().unwrap(), "IC_NB_Global").len(), 1);

    let mut northd = Daemon::northd_for_az(&dbs.az).unwrap();
    assert!(northd.is_running());
    // northd translates an NB logical switch into an SB datapath binding.
    dbs.az
        .nb
        .transact(json!([{"op": "insert", "table": "Logical_Switch", "row": {"name": "ls1"}}]))
        .unwrap();
    let found = wait_until(Duration::from_secs(15), || {
        dbs.az.sb.dump().is_ok_and(|db| {
            rows(&db, "Datapath_Binding")
                .iter()
                .any(|r| r["external_ids"].to_string().contains("ls1"))
        })
    });
    assert!(
        found,
        "northd did not create the datapath{}",
        std::fs::read_to_string(northd.log_path()).unwrap_or_default()
    );
    assert!(northd.appctl(&["status"]).unwrap().contains("active"));

    // Debian's C ovn-ic registers the AZ in IC-SB, answers on its control socket and exits
    // on `exit`.
    let mut ic = Daemon::ovn_ic(C_OVN_IC, &dbs.az, &dbs.ic, &[]).unwrap();
    let registered = wait_until(Duration::from_secs(15), || {
        dbs.ic.ic_sb.dump().is_ok_and(|db| {
            rows(&db, "Availability_Zone")
                .iter()
                .any(|r| r["name"] == "az1")
        })
    });
    assert!(
        registered,
        "C ovn-ic did not register az1\n{}",
        ic.log_text()
    );
    assert!(ic.appctl(&["is-paused"]).unwrap().contains("false"));
    ic.appctl(&["exit"]).unwrap();
    assert!(ic.wait_exit(Duration::from_secs(5)).is_some());

    let mut pids: Vec<u32> = vec![northd.pid(), ic.pid()];
    for s in [&dbs.ic.ic_nb, &dbs.ic.ic_sb, &dbs.az.nb, &dbs.az.sb] {
        pids.push(s.pid().unwrap());
    }
    drop(northd);
    drop(ic);
    drop(dbs);
    for pid in pids {
        assert_gone(pid);
    }

    // Uninitialised IC databases have no rows at all.
    let ic = IcDbs::start_empty().unwrap();
    let db: Value = ic.ic_sb.dump().unwrap();
    assert!(rows(&db, "IC_SB_Global").is_empty());
}
