//! The metrics endpoint (`--metrics=ADDR:PORT`) and `metrics/show` against real databases
//! (issue 9, part 2): our daemon with IC-NB, IC-SB, NB and SB `ovsdb-server`s, scraped over TCP.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use common::{our_ovn_ic, rows, wait_for, wait_until, Daemon, OvnDbs};
use serde_json::json;

/// Generous: the machine is shared.
const WAIT: Duration = Duration::from_secs(60);

const LISTENING: &str = "Serving metrics on http://";

/// The metrics address the daemon logged.
fn metrics_addr(d: &Daemon) -> Option<SocketAddr> {
    d.log_text().lines().find_map(|l| {
        l.split(LISTENING)
            .nth(1)?
            .strip_suffix("/metrics")?
            .parse()
            .ok()
    })
}

/// One HTTP exchange: `(status, head, body)`.
fn http(addr: SocketAddr, request: &str) -> std::io::Result<(u16, String, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(10))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    s.write_all(request.as_bytes())?;
    let mut out = Vec::new();
    s.read_to_end(&mut out)?;
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok((status, head.to_string(), body.to_string()))
}

/// `GET /metrics`: the body of a 200 with the Prometheus media type.
fn scrape(addr: SocketAddr) -> String {
    let (status, head, body) = http(
        addr,
        "GET /metrics HTTP/1.1\r\nHost: localhost\r\nAccept: text/plain\r\n\r\n",
    )
    .expect("scraping");
    assert_eq!(status, 200, "{head}");
    assert!(
        head.contains("\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"),
        "{head}"
    );
    assert!(
        head.contains(&format!("\r\nContent-Length: {}\r\n", body.len())),
        "{head}"
    );
    body
}

/// `series` → value; checks the text format line by line.
fn parse(text: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        if line.starts_with("# HELP ovn_ic_") || line.starts_with("# TYPE ovn_ic_") {
            continue;
        }
        assert!(line.starts_with("ovn_ic_"), "unexpected line {line:?}");
        let (series, value) = line.rsplit_once(' ').expect(line);
        let v = match value {
            "+Inf" => f64::INFINITY,
            v => v
                .parse()
                .unwrap_or_else(|_| panic!("bad value in {line:?}")),
        };
        out.insert(series.to_string(), v);
    }
    out
}

fn families(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .map(str::to_string)
        .collect()
}

fn get(m: &BTreeMap<String, f64>, series: &str) -> f64 {
    *m.get(series)
        .unwrap_or_else(|| panic!("no {series} in {m:#?}"))
}

/// Inodes of the TCP sockets in LISTEN state that process `pid` has open.
fn listening_tcp_ports(pid: u32) -> Vec<u16> {
    let mut inodes = BTreeSet::new();
    if let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) {
        for e in dir.flatten() {
            if let Ok(target) = std::fs::read_link(e.path()) {
                let t = target.to_string_lossy();
                if let Some(n) = t.strip_prefix("socket:[").and_then(|r| r.strip_suffix(']')) {
                    inodes.insert(n.to_string());
                }
            }
        }
    }
    let mut ports = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() > 9 && f[3] == "0A" && inodes.contains(f[9]) {
                if let Some(port) = f[1]
                    .rsplit(':')
                    .next()
                    .and_then(|p| u16::from_str_radix(p, 16).ok())
                {
                    ports.push(port);
                }
            }
        }
    }
    ports
}

fn appctl_status(d: &Daemon) -> String {
    d.appctl(&["status"]).unwrap_or_default()
}

#[test]
fn scrape_reports_the_daemon_state_like_metrics_show() {
    let dbs = OvnDbs::start("az1").unwrap();
    let d = Daemon::ovn_ic(our_ovn_ic(), &dbs.az, &dbs.ic, &["--metrics=127.0.0.1:0"]).unwrap();
    let addr = wait_for(WAIT, || metrics_addr(&d))
        .unwrap_or_else(|| panic!("no '{LISTENING}' line in the log:\n{}", d.log_text()));
    assert_ne!(addr.port(), 0, "the real port is logged");
    assert_eq!(listening_tcp_ports(d.pid()), vec![addr.port()]);

    // The AZ registers itself in IC-SB; then a transit switch makes it create an NB switch.
    assert!(
        wait_until(WAIT, || dbs.ic.ic_sb.dump().is_ok_and(|db| rows(
            &db,
            "Availability_Zone"
        )
        .len()
            == 1)),
        "AZ not registered:\n{}",
        d.log_text()
    );
    dbs.ic
        .ic_nb
        .transact(json!([{"op": "insert", "table": "Transit_Switch",
                          "row": {"name": "ts1"}}]))
        .unwrap();

    let ns = "ovn_ic_owned_rows{db=\"OVN_Northbound\",table=\"Logical_Switch\"}";
    let latency = "ovn_ic_change_to_commit_seconds_count";
    let m = wait_for(WAIT, || {
        let m = parse(&scrape(addr));
        (m.get(ns) == Some(&1.0) && m.get(latency).is_some_and(|&n| n >= 1.0)).then_some(m)
    })
    .unwrap_or_else(|| panic!("metrics never showed the transit switch:\n{}", scrape(addr)));

    for db in [
        "OVN_Northbound",
        "OVN_Southbound",
        "OVN_IC_Northbound",
        "OVN_IC_Southbound",
    ] {
        assert_eq!(
            get(&m, &format!("ovn_ic_db_connected{{db=\"{db}\"}}")),
            1.0,
            "{db}"
        );
        let failed = get(
            &m,
            &format!("ovn_ic_transactions_failed_total{{db=\"{db}\"}}"),
        );
        assert!(failed >= 0.0);
    }
    assert_eq!(
        get(
            &m,
            "ovn_ic_lock_held{db=\"OVN_Southbound\",lock=\"ovn_ic\"}"
        ),
        1.0
    );
    // The only ovn-ic of the interconnection becomes ISB leader.
    assert_eq!(
        get(
            &m,
            "ovn_ic_lock_held{db=\"OVN_IC_Southbound\",lock=\"ovn_ic_sb\"}"
        ),
        1.0
    );
    assert_eq!(get(&m, "ovn_ic_paused"), 0.0);
    // Registering the AZ and the transit switch's datapath binding were IC-SB commits, the
    // switch an NB commit.
    assert!(
        get(
            &m,
            "ovn_ic_transactions_committed_total{db=\"OVN_IC_Southbound\"}"
        ) >= 1.0
    );
    assert!(
        get(
            &m,
            "ovn_ic_transactions_committed_total{db=\"OVN_Northbound\"}"
        ) >= 1.0
    );
    assert_eq!(
        get(
            &m,
            "ovn_ic_owned_rows{db=\"OVN_IC_Southbound\",table=\"Availability_Zone\"}"
        ),
        1.0
    );
    // Engine counters: the first run recomputes every node.
    assert!(get(&m, "ovn_ic_engine_recompute_total{node=\"route\"}") >= 1.0);
    assert!(get(&m, "ovn_ic_engine_compute_total{node=\"route\"}") >= 0.0);
    assert!(get(&m, "ovn_ic_engine_run_seconds_total{node=\"route\"}") >= 0.0);
    assert!(get(&m, "ovn_ic_engine_last_run_seconds{node=\"route\"}") >= 0.0);
    // Latency: a sane histogram.
    let count = get(&m, latency);
    assert_eq!(
        get(&m, "ovn_ic_change_to_commit_seconds_bucket{le=\"+Inf\"}"),
        count
    );
    let sum = get(&m, "ovn_ic_change_to_commit_seconds_sum");
    assert!(sum > 0.0 && sum.is_finite(), "sum {sum}");
    let last = get(&m, "ovn_ic_change_to_commit_last_seconds");
    assert!(last > 0.0 && last <= sum, "last {last}, sum {sum}");

    // metrics/show prints the same text (once nothing moves between the two reads).
    let mut show = String::new();
    let mut body = String::new();
    let same = wait_until(WAIT, || {
        show = d.appctl(&["metrics/show"]).unwrap_or_default();
        body = scrape(addr);
        show.trim_end() == body.trim_end()
    });
    assert!(same, "metrics/show:\n{show}\nscrape:\n{body}");
    assert_eq!(families(&body).len(), 14, "{body}");

    // Other requests.
    let (status, head, _) = http(addr, "GET / HTTP/1.1\r\n\r\n").unwrap();
    assert_eq!(status, 404, "{head}");
    let (status, head, _) = http(addr, "POST /metrics HTTP/1.1\r\n\r\n").unwrap();
    assert_eq!(status, 405, "{head}");
    let (status, head, _) = http(addr, "this is not http\r\n\r\n").unwrap();
    assert_eq!(status, 400, "{head}");
    let (status, head, body) = http(addr, "HEAD /metrics HTTP/1.0\r\n\r\n").unwrap();
    assert_eq!((status, body.as_str()), (200, ""), "{head}");

    // Pausing shows at once (the loop wakes for the command).
    d.appctl(&["pause"]).unwrap();
    assert!(
        wait_until(WAIT, || parse(&scrape(addr)).get("ovn_ic_paused")
            == Some(&1.0)),
        "{}",
        scrape(addr)
    );
    assert!(appctl_status(&d).contains("paused"));
}

#[test]
fn nothing_listens_without_the_option() {
    let dbs = OvnDbs::start("az1").unwrap();
    let d = Daemon::ovn_ic(our_ovn_ic(), &dbs.az, &dbs.ic, &[]).unwrap();
    assert!(
        wait_until(WAIT, || appctl_status(&d) == "Status: active\n"),
        "never active:\n{}",
        d.log_text()
    );
    assert!(!d.log_text().contains(LISTENING), "{}", d.log_text());
    assert_eq!(listening_tcp_ports(d.pid()), Vec::<u16>::new());
    // metrics/show works all the same.
    let m = wait_for(WAIT, || {
        let m = parse(&d.appctl(&["metrics/show"]).ok()?);
        (m.get("ovn_ic_db_connected{db=\"OVN_IC_Southbound\"}") == Some(&1.0)).then_some(m)
    })
    .expect("metrics/show");
    assert_eq!(
        get(
            &m,
            "ovn_ic_lock_held{db=\"OVN_Southbound\",lock=\"ovn_ic\"}"
        ),
        1.0
    );
}

#[test]
fn port_in_use_is_logged_and_the_daemon_runs_on() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dbs = OvnDbs::start("az1").unwrap();
    let arg = format!("--metrics=127.0.0.1:{port}");
    let mut d = Daemon::ovn_ic(our_ovn_ic(), &dbs.az, &dbs.ic, &[arg.as_str()]).unwrap();
    let want = format!("127.0.0.1:{port}: could not listen for metrics (Address already in use)");
    assert!(
        wait_until(WAIT, || d.log_text().contains(&want)),
        "{}",
        d.log_text()
    );
    assert!(d
        .log_text()
        .lines()
        .any(|l| l.contains("|ovn_ic|ERR|") && l.contains(&want)));
    assert!(
        wait_until(WAIT, || appctl_status(&d) == "Status: active\n"),
        "{}",
        d.log_text()
    );
    assert!(d.is_running());
    drop(taken);
}

#[test]
fn bad_address_is_a_startup_error() {
    for bad in ["localhost:9476", "9476", "[::1]"] {
        // Fails while parsing the command line: nothing is started or written.
        let out = std::process::Command::new(our_ovn_ic())
            .arg(format!("--metrics={bad}"))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{bad}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            err,
            format!(
                "ovn-ic: --metrics: \"{bad}\" is not an IP address and port (ADDR:PORT or [IPV6]:PORT)\n"
            )
        );
    }
}

#[test]
fn ipv6_endpoint_reports_unreachable_databases() {
    if TcpListener::bind("[::1]:0").is_err() {
        eprintln!("skipping: no IPv6 loopback");
        return;
    }
    let dir = common::TestDir::new("metrics-v6").unwrap();
    let sock = |n: &str| format!("unix:{}", dir.join(n).display());
    let args = [
        format!("--ovnnb-db={}", sock("nb.sock")),
        format!("--ovnsb-db={}", sock("sb.sock")),
        format!("--ic-nb-db={}", sock("icnb.sock")),
        format!("--ic-sb-db={}", sock("icsb.sock")),
        "--metrics=[::1]:0".to_string(),
    ];
    let d = Daemon::start("ovn-ic-v6", our_ovn_ic(), &args).unwrap();
    let addr = wait_for(WAIT, || metrics_addr(&d))
        .unwrap_or_else(|| panic!("no '{LISTENING}' line in the log:\n{}", d.log_text()));
    assert!(addr.is_ipv6() && addr.port() != 0, "{addr}");
    assert!(d
        .log_text()
        .contains(&format!("{LISTENING}[::1]:{}/metrics", addr.port())));
    let m = parse(&scrape(addr));
    for db in [
        "OVN_Northbound",
        "OVN_Southbound",
        "OVN_IC_Northbound",
        "OVN_IC_Southbound",
    ] {
        assert_eq!(
            get(&m, &format!("ovn_ic_db_connected{{db=\"{db}\"}}")),
            0.0,
            "{db}"
        );
        assert_eq!(
            get(
                &m,
                &format!("ovn_ic_transactions_committed_total{{db=\"{db}\"}}")
            ),
            0.0
        );
    }
    assert_eq!(
        get(
            &m,
            "ovn_ic_lock_held{db=\"OVN_Southbound\",lock=\"ovn_ic\"}"
        ),
        0.0
    );
    assert!(!m.contains_key("ovn_ic_change_to_commit_last_seconds"));
    // Nothing was ever synchronised: no owned rows to report.
    assert!(
        !m.keys().any(|k| k.starts_with("ovn_ic_owned_rows")),
        "{m:#?}"
    );
}
