use super::*;
use crate::ic::testutil::{replica, u};
use crate::ovsdb::txn::{TxnError, TxnOutcome};
use serde_json::json;

fn ok() -> TxnStatus {
    TxnStatus::Success(TxnOutcome::default())
}

fn sample_snapshot() -> Snapshot {
    let mut latency = Histogram::default();
    latency.observe(Duration::from_millis(3));
    latency.observe(Duration::from_millis(200));
    latency.observe(Duration::from_secs(60));
    Snapshot {
        version: "26.3.90".into(),
        paused: false,
        dbs: vec![
            DbMetrics {
                db: NB_DB.into(),
                connected: true,
                committed: 4,
                failed: 1,
            },
            DbMetrics {
                db: ICSB_DB.into(),
                connected: false,
                committed: 0,
                failed: 0,
            },
        ],
        locks: locks(true, false),
        nodes: vec![NodeMetrics {
            name: "route".into(),
            recompute: 2,
            compute: 5,
            cancel: 0,
            last_run: Duration::from_micros(1500),
            total_run: Duration::from_millis(12),
        }],
        latency,
        last_latency: Some(Duration::from_millis(250)),
        owned: vec![OwnedRows {
            db: ICSB_DB.into(),
            table: "Route".into(),
            rows: 7,
        }],
    }
}

/// `name{labels}` → value of every sample line; panics on a line that is not valid text format.
fn parse(text: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    let mut typed = std::collections::BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# ") {
            let mut w = rest.splitn(3, ' ');
            let kind = w.next().unwrap();
            let name = w.next().unwrap();
            assert!(kind == "HELP" || kind == "TYPE", "{line}");
            assert!(name.starts_with("ovn_ic_"), "{line}");
            if kind == "TYPE" {
                let t = w.next().unwrap();
                assert!(["gauge", "counter", "histogram"].contains(&t), "{line}");
                assert!(typed.insert(name.to_string()), "TYPE twice: {line}");
            }
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect(line);
        let name = series.split('{').next().unwrap();
        assert!(
            name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
            "{line}"
        );
        assert!(
            typed.iter().any(|t| name == t
                || name
                    .strip_prefix(t.as_str())
                    .is_some_and(|s| { ["_bucket", "_sum", "_count"].contains(&s) })),
            "sample before its TYPE: {line}"
        );
        if series.contains('{') {
            assert!(series.ends_with('}'), "{line}");
        }
        let v: f64 = match value {
            "+Inf" => f64::INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("bad value in {line}")),
        };
        assert!(out.insert(series.to_string(), v).is_none(), "dup {line}");
    }
    out
}

use std::collections::BTreeMap;

#[test]
fn render_is_valid_text_format_with_every_family() {
    let text = render(&sample_snapshot());
    assert!(text.ends_with('\n'));
    let m = parse(&text);
    assert_eq!(m["ovn_ic_build_info{version=\"26.3.90\"}"], 1.0);
    assert_eq!(m["ovn_ic_paused"], 0.0);
    assert_eq!(m["ovn_ic_db_connected{db=\"OVN_Northbound\"}"], 1.0);
    assert_eq!(m["ovn_ic_db_connected{db=\"OVN_IC_Southbound\"}"], 0.0);
    assert_eq!(
        m["ovn_ic_lock_held{db=\"OVN_Southbound\",lock=\"ovn_ic\"}"],
        1.0
    );
    assert_eq!(
        m["ovn_ic_lock_held{db=\"OVN_IC_Southbound\",lock=\"ovn_ic_sb\"}"],
        0.0
    );
    assert_eq!(
        m["ovn_ic_transactions_committed_total{db=\"OVN_Northbound\"}"],
        4.0
    );
    assert_eq!(
        m["ovn_ic_transactions_failed_total{db=\"OVN_Northbound\"}"],
        1.0
    );
    assert_eq!(m["ovn_ic_engine_recompute_total{node=\"route\"}"], 2.0);
    assert_eq!(m["ovn_ic_engine_compute_total{node=\"route\"}"], 5.0);
    assert_eq!(m["ovn_ic_engine_cancel_total{node=\"route\"}"], 0.0);
    assert_eq!(m["ovn_ic_engine_run_seconds_total{node=\"route\"}"], 0.012);
    assert_eq!(m["ovn_ic_engine_last_run_seconds{node=\"route\"}"], 0.0015);
    assert_eq!(
        m["ovn_ic_change_to_commit_seconds_bucket{le=\"0.001\"}"],
        0.0
    );
    assert_eq!(
        m["ovn_ic_change_to_commit_seconds_bucket{le=\"0.005\"}"],
        1.0
    );
    assert_eq!(
        m["ovn_ic_change_to_commit_seconds_bucket{le=\"0.25\"}"],
        2.0
    );
    assert_eq!(m["ovn_ic_change_to_commit_seconds_bucket{le=\"10\"}"], 2.0);
    assert_eq!(
        m["ovn_ic_change_to_commit_seconds_bucket{le=\"+Inf\"}"],
        3.0
    );
    assert_eq!(m["ovn_ic_change_to_commit_seconds_count"], 3.0);
    assert!((m["ovn_ic_change_to_commit_seconds_sum"] - 60.203).abs() < 1e-9);
    assert_eq!(m["ovn_ic_change_to_commit_last_seconds"], 0.25);
    assert_eq!(
        m["ovn_ic_owned_rows{db=\"OVN_IC_Southbound\",table=\"Route\"}"],
        7.0
    );
    // Exact lines, as a scraper sees them.
    assert!(text.starts_with(
        "# HELP ovn_ic_build_info ovn-ic version (always 1).\n\
         # TYPE ovn_ic_build_info gauge\n\
         ovn_ic_build_info{version=\"26.3.90\"} 1\n"
    ));
    assert!(text.contains("\n# TYPE ovn_ic_change_to_commit_seconds histogram\n"));
    assert!(text.contains("\novn_ic_engine_last_run_seconds{node=\"route\"} 0.0015\n"));
}

#[test]
fn empty_snapshot_keeps_every_family() {
    let text = render(&Snapshot::default());
    let m = parse(&text);
    for family in [
        "ovn_ic_build_info",
        "ovn_ic_paused",
        "ovn_ic_db_connected",
        "ovn_ic_lock_held",
        "ovn_ic_transactions_committed_total",
        "ovn_ic_transactions_failed_total",
        "ovn_ic_engine_recompute_total",
        "ovn_ic_engine_compute_total",
        "ovn_ic_engine_cancel_total",
        "ovn_ic_engine_run_seconds_total",
        "ovn_ic_engine_last_run_seconds",
        "ovn_ic_change_to_commit_seconds",
        "ovn_ic_change_to_commit_last_seconds",
        "ovn_ic_owned_rows",
    ] {
        assert!(
            text.contains(&format!("# TYPE {family} ")),
            "{family} missing"
        );
    }
    // No latency observed yet: no "last" sample, an all-zero histogram.
    assert!(!m.contains_key("ovn_ic_change_to_commit_last_seconds"));
    assert_eq!(m["ovn_ic_change_to_commit_seconds_count"], 0.0);
    assert_eq!(
        m["ovn_ic_change_to_commit_seconds_bucket{le=\"+Inf\"}"],
        0.0
    );
}

#[test]
fn label_values_are_escaped() {
    let s = Snapshot {
        nodes: vec![NodeMetrics {
            name: "a\"b\\c\nd".into(),
            ..Default::default()
        }],
        ..Default::default()
    };
    let text = render(&s);
    assert!(
        text.contains("ovn_ic_engine_recompute_total{node=\"a\\\"b\\\\c\\nd\"} 0\n"),
        "{text}"
    );
    parse(&text);
}

#[test]
fn float_format() {
    assert_eq!(float(1.0), "1");
    assert_eq!(float(0.0), "0");
    assert_eq!(float(0.0000005), "0.0000005");
    assert_eq!(float(f64::INFINITY), "+Inf");
    assert_eq!(float(f64::NEG_INFINITY), "-Inf");
    assert_eq!(float(f64::NAN), "NaN");
}

#[test]
fn histogram_buckets_are_cumulative_and_inclusive() {
    let mut h = Histogram::default();
    h.observe(Duration::from_millis(1)); // exactly on the first bound: counts there
    h.observe(Duration::from_millis(2));
    h.observe(Duration::from_secs(11));
    let c = h.cumulative();
    assert_eq!(c.len(), LATENCY_BUCKETS.len() + 1);
    assert_eq!(c[0], (0.001, 1));
    assert_eq!(c[1], (0.005, 2));
    assert_eq!(c[LATENCY_BUCKETS.len() - 1], (10.0, 2));
    assert_eq!(c[LATENCY_BUCKETS.len()], (f64::INFINITY, 3));
    assert_eq!(h.count(), 3);
    assert!((h.sum() - 11.003).abs() < 1e-9);
    assert!(c.windows(2).all(|w| w[0].1 <= w[1].1));
}

fn snapshot_of(r: &Recorder) -> Snapshot {
    let mut s = Snapshot::default();
    r.fill(&mut s, [true, true, false, true]);
    s
}

#[test]
fn transaction_counters_per_database() {
    let mut r = Recorder::new();
    let now = Instant::now();
    r.txn_result(0, &ok(), now);
    r.txn_result(0, &TxnStatus::Unchanged, now);
    r.txn_result(1, &TxnStatus::TryAgain("x".into()), now);
    r.txn_result(1, &TxnStatus::NotLocked, now);
    r.txn_result(2, &TxnStatus::Error(TxnError::NotAllowed("no".into())), now);
    r.txn_result(SESSION_ICSB, &ok(), now);
    r.txn_result(SESSION_ICSB_LOCKED, &ok(), now);
    r.txn_result(99, &ok(), now); // out of range: ignored
    let s = snapshot_of(&r);
    let get = |db: &str| s.dbs.iter().find(|d| d.db == db).unwrap().clone();
    assert_eq!(s.dbs.len(), 4);
    assert_eq!(
        get(NB_DB),
        DbMetrics {
            db: NB_DB.into(),
            connected: true,
            committed: 1,
            failed: 0
        }
    );
    assert_eq!((get(SB_DB).committed, get(SB_DB).failed), (0, 2));
    assert_eq!((get(ICNB_DB).committed, get(ICNB_DB).failed), (0, 1));
    assert!(!get(ICNB_DB).connected);
    // Both IC-SB sessions count for the one database.
    assert_eq!((get(ICSB_DB).committed, get(ICSB_DB).failed), (2, 0));
}

#[test]
fn latency_from_change_to_last_commit() {
    let mut r = Recorder::new();
    let t0 = Instant::now();
    r.changed(t0);
    r.changed(t0 + Duration::from_millis(5)); // the earliest change counts
    r.committing([true, false, false, true, false]);
    r.txn_result(0, &ok(), t0 + Duration::from_millis(20));
    assert_eq!(snapshot_of(&r).latency.count(), 0, "IC-SB still out");
    // A result of a session that sent nothing does not end the measurement.
    r.txn_result(1, &TxnStatus::Unchanged, t0 + Duration::from_millis(25));
    assert_eq!(snapshot_of(&r).latency.count(), 0);
    r.txn_result(SESSION_ICSB, &ok(), t0 + Duration::from_millis(30));
    let s = snapshot_of(&r);
    assert_eq!(s.latency.count(), 1);
    assert_eq!(s.last_latency, Some(Duration::from_millis(30)));
    // Later results are not part of any measurement.
    r.txn_result(0, &ok(), t0 + Duration::from_secs(5));
    assert_eq!(snapshot_of(&r).latency.count(), 1);
}

#[test]
fn latency_runs_without_writes_or_changes_record_nothing() {
    let mut r = Recorder::new();
    let t0 = Instant::now();
    // Commits without a preceding change (e.g. a forced recompute) are not measured.
    r.committing([true; 5]);
    for i in 0..5 {
        r.txn_result(i, &ok(), t0);
    }
    assert_eq!(snapshot_of(&r).latency.count(), 0);
    // A change whose run writes nothing ends without a sample...
    r.changed(t0);
    r.committing([false; 5]);
    // ...and is not counted from by the next run.
    r.changed(t0 + Duration::from_secs(1));
    r.committing([false, true, false, false, false]);
    r.txn_result(1, &ok(), t0 + Duration::from_millis(1100));
    let s = snapshot_of(&r);
    assert_eq!(s.latency.count(), 1);
    assert_eq!(s.last_latency, Some(Duration::from_millis(100)));
    // Changes dropped while on standby are never measured.
    r.changed(t0 + Duration::from_secs(2));
    r.discarded();
    r.committing([true, false, false, false, false]);
    r.txn_result(0, &ok(), t0 + Duration::from_secs(3));
    assert_eq!(snapshot_of(&r).latency.count(), 1);
}

#[test]
fn latency_continues_through_failed_commits() {
    let mut r = Recorder::new();
    let t0 = Instant::now();
    r.changed(t0);
    r.committing([true, true, false, false, false]);
    r.txn_result(0, &ok(), t0 + Duration::from_millis(10));
    r.txn_result(
        1,
        &TxnStatus::TryAgain("conflict".into()),
        t0 + Duration::from_millis(10),
    );
    assert_eq!(snapshot_of(&r).latency.count(), 0);
    // The retry (no new change) commits: measured from the original change.
    r.committing([false, true, false, false, false]);
    r.txn_result(1, &ok(), t0 + Duration::from_millis(400));
    let s = snapshot_of(&r);
    assert_eq!(s.latency.count(), 1);
    assert_eq!(s.last_latency, Some(Duration::from_millis(400)));
}

#[test]
fn latency_overlapping_runs_wait_for_both() {
    let mut r = Recorder::new();
    let t0 = Instant::now();
    r.changed(t0);
    r.committing([false, false, false, false, true]); // locked IC-SB still out...
    r.changed(t0 + Duration::from_millis(50));
    r.committing([true, false, false, false, false]); // ...when the next run commits NB
    r.txn_result(0, &ok(), t0 + Duration::from_millis(60));
    assert_eq!(snapshot_of(&r).latency.count(), 0);
    r.txn_result(SESSION_ICSB_LOCKED, &ok(), t0 + Duration::from_millis(70));
    let s = snapshot_of(&r);
    assert_eq!(s.latency.count(), 1);
    assert_eq!(s.last_latency, Some(Duration::from_millis(70)));
}

const AZ1: u32 = 1;
const AZ2: u32 = 2;

fn fixtures() -> (Replica, Replica, Replica) {
    let nb = replica(
        "ovn-nb",
        json!({
            "NB_Global": {u(100): {"name": "az1"}},
            "Logical_Switch": {
                u(10): {"name": "ts1", "other_config": ["map", [["interconn-ts", "ts1"]]],
                        "ports": ["set", [["uuid", u(20)], ["uuid", u(21)], ["uuid", u(22)]]]},
                u(11): {"name": "ls-local",
                        "ports": ["set", [["uuid", u(23)]]]}
            },
            "Logical_Switch_Port": {
                u(20): {"name": "tsp1", "options": ["map", [["interconn-tsp", "tsp1"]]]},
                u(21): {"name": "remote1", "type": "remote"},
                u(22): {"name": "legacy-local", "type": "router"},
                u(23): {"name": "remote-elsewhere", "type": "remote"}
            },
            "Logical_Router": {
                u(30): {"name": "lr1"}
            },
            "Logical_Router_Static_Route": {
                u(40): {"ip_prefix": "10.0.0.0/24", "nexthop": "169.254.0.2",
                        "external_ids": ["map", [["ic-learned-route", u(50)]]]},
                u(41): {"ip_prefix": "10.0.1.0/24", "nexthop": "169.254.0.3"}
            },
            "Address_Set": {
                u(60): {"name": "as1", "external_ids": ["map", [["ic-learnt", "true"]]]},
                u(61): {"name": "as2"}
            }
        }),
    );
    let sb = replica(
        "ovn-sb",
        json!({
            "Chassis": {
                u(70): {"name": "gw-remote", "other_config": ["map", [["is-remote", "true"]]]},
                u(71): {"name": "hv1"}
            }
        }),
    );
    let icsb = replica(
        "ovn-ic-sb",
        json!({
            "Availability_Zone": {u(AZ1): {"name": "az1"}, u(AZ2): {"name": "az2"}},
            "Route": {
                u(80): {"availability_zone": ["uuid", u(AZ1)], "transit_switch": "ts1",
                        "ip_prefix": "10.0.0.0/24", "nexthop": "169.254.0.1"},
                u(81): {"availability_zone": ["uuid", u(AZ1)], "transit_switch": "ts1",
                        "ip_prefix": "10.0.2.0/24", "nexthop": "169.254.0.1"},
                u(82): {"availability_zone": ["uuid", u(AZ2)], "transit_switch": "ts1",
                        "ip_prefix": "10.0.3.0/24", "nexthop": "169.254.0.2"}
            },
            "Port_Binding": {
                u(90): {"availability_zone": ["uuid", u(AZ2)], "transit_switch": "ts1",
                        "logical_port": "remote1"}
            },
            "Gateway": {
                u(95): {"availability_zone": ["uuid", u(AZ1)], "name": "gw1"}
            }
        }),
    );
    (nb, sb, icsb)
}

fn owned_map(v: &[OwnedRows]) -> BTreeMap<(String, String), u64> {
    v.iter()
        .map(|o| ((o.db.clone(), o.table.clone()), o.rows))
        .collect()
}

#[test]
fn owned_rows_per_table() {
    let (nb, sb, icsb) = fixtures();
    let m = owned_map(&owned_rows(&nb, &sb, &icsb));
    let get = |db: &str, t: &str| m.get(&(db.to_string(), t.to_string())).copied();
    assert_eq!(get(ICSB_DB, "Availability_Zone"), Some(1));
    assert_eq!(get(ICSB_DB, "Route"), Some(2));
    assert_eq!(get(ICSB_DB, "Port_Binding"), Some(0));
    assert_eq!(get(ICSB_DB, "Gateway"), Some(1));
    assert_eq!(get(NB_DB, "Logical_Switch"), Some(1));
    // Managed and remote ports on the transit switch image; not the CMS's router port there,
    // nor a remote port on an ordinary switch.
    assert_eq!(get(NB_DB, "Logical_Switch_Port"), Some(2));
    assert_eq!(get(NB_DB, "Logical_Router"), Some(0));
    assert_eq!(get(NB_DB, "Logical_Router_Static_Route"), Some(1));
    assert_eq!(get(NB_DB, "Address_Set"), Some(1));
    assert_eq!(get(SB_DB, "Chassis"), Some(1));
    // Tables the schema lacks are left out rather than reported as 0.
    if icsb.is_monitored("Address_Set") {
        assert_eq!(get(ICSB_DB, "Address_Set"), Some(0));
    } else {
        assert_eq!(get(ICSB_DB, "Address_Set"), None);
    }
}

#[test]
fn owned_rows_before_the_az_is_registered() {
    let (nb, sb, _) = fixtures();
    let icsb = replica(
        "ovn-ic-sb",
        json!({
            "Availability_Zone": {u(AZ2): {"name": "az2"}},
            "Route": {u(82): {"availability_zone": ["uuid", u(AZ2)], "transit_switch": "ts1",
                              "ip_prefix": "10.0.3.0/24", "nexthop": "169.254.0.2"}}
        }),
    );
    let m = owned_map(&owned_rows(&nb, &sb, &icsb));
    assert_eq!(
        m[&(ICSB_DB.to_string(), "Availability_Zone".to_string())],
        0
    );
    assert_eq!(m[&(ICSB_DB.to_string(), "Route".to_string())], 0);
}

#[test]
fn owned_rows_recounted_only_after_changes() {
    let (nb, sb, mut icsb) = fixtures();
    let mut r = Recorder::new();
    let first = r.owned(&nb, &sb, &icsb);
    assert_eq!(r.owned(&nb, &sb, &icsb), first);
    let upd = json!({"Route": {u(83): {"insert": {
        "availability_zone": ["uuid", u(AZ1)], "transit_switch": "ts1",
        "ip_prefix": "10.0.9.0/24", "nexthop": "169.254.0.1"}}}});
    icsb.apply_update2(&upd).unwrap();
    let m = owned_map(&r.owned(&nb, &sb, &icsb));
    assert_eq!(m[&(ICSB_DB.to_string(), "Route".to_string())], 3);
}

// ---- HTTP ----

fn req(head: &str) -> Response {
    respond(head.as_bytes(), || "BODY\n".to_string())
}

#[test]
fn respond_routes_requests() {
    let r = req("GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*");
    assert_eq!(r.status, 200);
    assert_eq!(r.content_type, CONTENT_TYPE);
    assert_eq!(r.body, "BODY\n");
    assert!(!r.head_only);
    assert_eq!(req("GET /metrics?x=1 HTTP/1.0").status, 200);
    assert_eq!(req("GET /metrics HTTP/1.1\nHost: x").status, 200);
    let h = req("HEAD /metrics HTTP/1.1");
    assert_eq!((h.status, h.head_only), (200, true));
    assert_eq!(req("GET / HTTP/1.1").status, 404);
    assert_eq!(req("GET /metrics/ HTTP/1.1").status, 404);
    assert_eq!(req("GET /favicon.ico HTTP/1.1").status, 404);
    let p = req("POST /metrics HTTP/1.1\r\nContent-Length: 0");
    assert_eq!(p.status, 405);
    assert_eq!(p.extra_headers, vec![("Allow", "GET, HEAD")]);
    for bad in [
        "",
        "GET",
        "GET /metrics",
        "GET  /metrics HTTP/1.1",
        "GET /metrics HTTP/2.0",
        "GET metrics HTTP/1.1",
        "G(T /metrics HTTP/1.1",
        "GET /metrics HTTP/1.1 extra",
        "GET /metrics HTTP/1.1\r\nno colon here",
        "GET /metrics HTTP/1.1\r\nbad name: x",
        "PRI * HTTP/2.0",
    ] {
        assert_eq!(req(bad).status, 400, "{bad:?}");
    }
    assert_eq!(
        respond(b"GET /metrics HTTP/1.1\r\nX: \xff", String::new).status,
        400
    );
}

#[test]
fn response_bytes() {
    let r = req("GET /metrics HTTP/1.1");
    assert_eq!(
        String::from_utf8(r.to_bytes()).unwrap(),
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
         Content-Length: 5\r\nConnection: close\r\n\r\nBODY\n"
    );
    let h = req("HEAD /metrics HTTP/1.1");
    let s = String::from_utf8(h.to_bytes()).unwrap();
    assert!(
        s.ends_with("Content-Length: 5\r\nConnection: close\r\n\r\n"),
        "{s}"
    );
    let p = String::from_utf8(req("PUT /metrics HTTP/1.1").to_bytes()).unwrap();
    assert!(p.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"), "{p}");
    assert!(p.contains("\r\nAllow: GET, HEAD\r\n"), "{p}");
}

#[test]
fn head_end_finds_the_first_terminator() {
    assert_eq!(head_end(b"GET / HTTP/1.1\r\n\r\nrest"), Some((14, 4)));
    assert_eq!(head_end(b"GET / HTTP/1.1\n\nrest"), Some((14, 2)));
    assert_eq!(head_end(b"GET / HTTP/1.1\r\nHost: x\r\n"), None);
}

/// Talk to a real listener: one request, the whole response (the server closes).
async fn exchange(addr: SocketAddr, request: &[u8]) -> String {
    exchange_with(addr, request, false).await
}

/// [`exchange`]; with `half_close`, the client shuts its sending side after the request.
async fn exchange_with(addr: SocketAddr, request: &[u8], half_close: bool) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request).await.unwrap();
    if half_close {
        s.shutdown().await.unwrap();
    }
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut out))
        .await
        .expect("server answers and closes")
        .ok();
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn server_over_tcp() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared: Shared = Arc::new(Mutex::new(sample_snapshot()));
        let server = spawn_server(listener, shared.clone());

        let r = exchange(addr, b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n").await;
        let (head, body) = r.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert!(head.contains(&format!("Content-Length: {}", body.len())));
        assert_eq!(body, render(&sample_snapshot()));

        // The responder renders whatever the main loop stored last.
        shared.lock().unwrap().paused = true;
        let r = exchange(addr, b"GET /metrics HTTP/1.1\r\n\r\n").await;
        assert!(r.contains("\novn_ic_paused 1\n"), "{r}");

        let r = exchange(addr, b"GET /nope HTTP/1.1\r\n\r\n").await;
        assert!(r.starts_with("HTTP/1.1 404 Not Found\r\n"), "{r}");
        let r = exchange(addr, b"hello\r\n\r\n").await;
        assert!(r.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{r}");
        // Closed half-way through the head: 400.
        let r = exchange_with(addr, b"GET /metrics HT", true).await;
        assert!(r.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{r}");
        // Gone before sending anything: no response.
        assert_eq!(exchange_with(addr, b"", true).await, "");
        // An endless head is cut off.
        let big = format!(
            "GET /metrics HTTP/1.1\r\nX: {}",
            "a".repeat(MAX_REQUEST + 10)
        );
        let r = exchange(addr, big.as_bytes()).await;
        assert!(r.starts_with("HTTP/1.1 431 "), "{r}");
        // More clients at once than are served: the others wait, and are served once the
        // first ones go away.
        let idle: Vec<TcpStream> = futures_connect(addr, MAX_CONNECTIONS + 4).await;
        drop(idle);
        let r = exchange(addr, b"GET /metrics HTTP/1.1\r\n\r\n").await;
        assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
        server.abort();
    });
}

async fn futures_connect(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    let mut v = Vec::new();
    for _ in 0..n {
        v.push(TcpStream::connect(addr).await.unwrap());
    }
    // Let the server accept them.
    tokio::time::sleep(Duration::from_millis(50)).await;
    v
}
