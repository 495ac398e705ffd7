//! Bad input in every database, end to end: real `ovsdb-server`s, `ovn-northd` and our
//! `ovn-ic` for two AZs. Each kind of bad input is injected on top of a working setup; for each
//! the test checks the log line that names it, that it is skipped (not applied, or repaired),
//! that both daemons stay alive, that the good configuration still converges, and that once
//! everything has settled a quiet window brings no `transact` request to any server (counted
//! from `ovsdb-server -vjsonrpc:file:dbg` logs, as `tests/idle.rs` does) and no busy loop.
//!
//! The same scenario is run a second time with `-vdbg` (every module at debug level): the
//! databases must end up with identical rows (UUIDs aside), so debug logging neither crashes nor
//! changes behaviour.
//!
//! Conflicting gateways between AZs are covered by `tests/ic_bad_input.rs`, not repeated here.
//!
//! Kinds covered (database: what):
//! * IC-SB `Route` of another AZ with a malformed prefix and one with a malformed next hop
//!   (`Bad route format in IC-SB: P -> N. Ignored.`), never learned;
//! * IC-SB `Route` of our own AZ with a malformed prefix (`... Delete it.`), deleted;
//! * IC-SB `Route` of our own AZ with a malformed next hop, and one on a transit switch that
//!   does not exist (missing reference): `Deleting orphan ICDB:Route: ...`, deleted (also by
//!   the incremental path);
//! * IC-SB `Route` with non-ASCII `external_ids:lr-id` (not a UUID): ignored;
//! * NB learned route (`external_ids:ic-learned-route`) with a malformed prefix
//!   (`Bad format of learned route in NB: ... Delete it.`), deleted;
//! * NB `NB_Global.options:ic-route-denylist` that is not a CIDR
//!   (`Bad prefix (...) format: ... CIDR expected.`), good routes still exchanged;
//! * NB `Load_Balancer.vips` key that is no address, with `ic-route-adv-lb=true`
//!   (`Route ad: Parsing failed for lb vip ...`);
//! * NB transit-switch LSP with a malformed `options:requested-tnl-key`: repaired to the key in
//!   IC-SB;
//! * NB transit-switch LSP of type router whose `router-port` names no LRP (missing reference):
//!   no crash, nothing bound for it;
//! * IC-NB transit switch with a 1000-character non-ASCII name: synced to both NBs;
//! * IC-NB / NB `external_ids` and `options` with non-ASCII and very long values.

mod common;

#[path = "routes/env.rs"]
mod env;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use common::{our_ovn_ic, rows, wait_until, Daemon, Server};
use env::{find, key, s, Env, WAIT};
use serde_json::{json, Value};

/// The quiet window after convergence.
const QUIET: Duration = Duration::from_secs(10);
/// An idle daemon sleeps in poll; a busy loop would count thousands.
const MAX_ZERO_TIMEOUTS: u64 = 20;
/// How often one rate-limited message may appear in a daemon's log during the whole test
/// (upstream limits: 5 per minute, burst 1; the test runs for about a minute or two).
const MAX_REPEATS: usize = 12;
const REQUEST: &str = "received request, method=\"transact\"";

/// A long, non-ASCII transit switch name (1000 characters, about 1900 bytes).
fn long_name() -> String {
    let mut n = String::from("ts-ünïcødé-");
    while n.chars().count() < 1000 {
        n.push_str("日本語-ελληνικά-");
    }
    n.chars().take(1000).collect()
}

fn server_logs(env: &Env) -> Vec<(String, PathBuf)> {
    let mut out = vec![
        ("IC-NB".to_string(), env.inb().log_path().to_path_buf()),
        ("IC-SB".to_string(), env.isb().log_path().to_path_buf()),
    ];
    for az in &env.azs {
        out.push((format!("{} NB", az.name), az.nb.log_path().to_path_buf()));
        out.push((format!("{} SB", az.name), az.sb.log_path().to_path_buf()));
    }
    out
}

fn log_len(path: &PathBuf) -> usize {
    std::fs::metadata(path)
        .map(|m| m.len() as usize)
        .unwrap_or(0)
}

fn transacts_since(path: &PathBuf, from: usize) -> Vec<String> {
    let text = std::fs::read(path).unwrap_or_default();
    let tail = String::from_utf8_lossy(text.get(from..).unwrap_or_default()).into_owned();
    tail.lines()
        .filter(|l| l.contains(REQUEST))
        .map(|l| l.chars().take(400).collect())
        .collect()
}

fn add_gateway(env: &Env, az: usize, name: &str, ip: &str) {
    env.sbctl(az, &["chassis-add", name, "geneve", ip]);
    env.sbctl(
        az,
        &["set", "Chassis", name, "other_config:is-interconn=true"],
    );
}

fn bind_gateway(env: &Env, az: usize, lrp: &str, gw: &str) {
    env.nbctl(az, &["lrp-set-gateway-chassis", lrp, gw]);
    let cr = format!("cr-{lrp}");
    env.wait_sb_port(&cr, az);
    env.sbctl(az, &["lsp-bind", &cr, gw]);
}

fn isb_uuid(env: &Env, table: &str, name: &str) -> String {
    let db = env.isb().dump().expect("IC-SB dump");
    find(&db, table, "name", name)
        .map(env::uuid)
        .unwrap_or_else(|| panic!("no IC-SB {table} {name}"))
}

/// Whether `server` has a row in `table` with `col == val`.
fn has_row(server: &Server, table: &str, col: &str, val: &str) -> bool {
    server
        .dump()
        .is_ok_and(|db| find(&db, table, col, val).is_some())
}

fn isb_route_exists(env: &Env, prefix: &str, nexthop: &str) -> bool {
    env.isb().dump().is_ok_and(|db| {
        rows(&db, "Route")
            .iter()
            .any(|r| s(r, "ip_prefix") == prefix && s(r, "nexthop") == nexthop)
    })
}

/// The learned routes of `lr` in AZ `az`, as `"prefix nexthop"`.
fn learned(env: &Env, az: usize, lr: &str) -> Vec<String> {
    let Ok(db) = env.nb(az).dump() else {
        return Vec::new();
    };
    let Some(router) = find(&db, "Logical_Router", "name", lr) else {
        return Vec::new();
    };
    let ids = env::set(router, "static_routes");
    rows(&db, "Logical_Router_Static_Route")
        .iter()
        .filter(|r| ids.contains(&env::uuid(r)))
        .filter(|r| key(r, "external_ids", "ic-learned-route").is_some())
        .map(|r| format!("{} {}", s(r, "ip_prefix"), s(r, "nexthop")))
        .collect()
}

fn wait_log(d: &Daemon, needle: &str) {
    let ok = wait_until(WAIT, || d.log_text().contains(needle));
    assert!(ok, "no log line {needle:?} in:\n{}", d.log_text());
}

fn wait_log_any(d: &Daemon, needles: &[&str]) {
    let ok = wait_until(WAIT, || {
        let t = d.log_text();
        needles.iter().any(|n| t.contains(n))
    });
    assert!(ok, "none of {needles:?} in:\n{}", d.log_text());
}

/// Canonical form of a database dump for comparing two runs: `_uuid`/`_version` and columns
/// whose name ends in `timestamp` dropped, northd's random `mac_prefix`/`svc_monitor_mac`
/// options dropped, every UUID (as `["uuid", U]` or inside strings) replaced by `<uuid>`, rows
/// of each table sorted.
fn canonical(db: &Value, tables: Option<&[&str]>) -> BTreeMap<String, Vec<String>> {
    fn scrub(v: &Value) -> Value {
        match v {
            Value::String(x) => Value::String(scrub_str(x)),
            Value::Array(a) => {
                if let [Value::String(t), Value::String(_)] = a.as_slice() {
                    if t == "uuid" {
                        return json!("<uuid>");
                    }
                }
                Value::Array(a.iter().map(scrub).collect())
            }
            Value::Object(o) => {
                Value::Object(o.iter().map(|(k, v)| (k.clone(), scrub(v))).collect())
            }
            other => other.clone(),
        }
    }
    fn scrub_str(x: &str) -> String {
        // 8-4-4-4-12 hex digits.
        let b = x.as_bytes();
        let mut out = String::new();
        let mut i = 0;
        while i < b.len() {
            if x.get(i..i + 36).is_some_and(is_uuid) {
                out.push_str("<uuid>");
                i += 36;
            } else {
                let ch = x[i..].chars().next().unwrap_or('?');
                out.push(ch);
                i += ch.len_utf8();
            }
        }
        out
    }
    fn is_uuid(x: &str) -> bool {
        x.len() == 36
            && x.char_indices().all(|(i, c)| {
                if [8, 13, 18, 23].contains(&i) {
                    c == '-'
                } else {
                    c.is_ascii_hexdigit()
                }
            })
    }
    let mut out = BTreeMap::new();
    let Some(obj) = db.as_object() else {
        return out;
    };
    for (table, rs) in obj {
        if tables.is_some_and(|t| !t.contains(&table.as_str())) {
            continue;
        }
        let mut lines: Vec<String> = rs
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| {
                let mut r = r.clone();
                if let Some(o) = r.as_object_mut() {
                    o.retain(|k, _| k != "_uuid" && k != "_version" && !k.ends_with("timestamp"));
                    if let Some(opts) = o.get_mut("options") {
                        if let Some([_, Value::Array(pairs)]) =
                            opts.as_array_mut().map(Vec::as_mut_slice)
                        {
                            pairs.retain(|p| {
                                !matches!(
                                    p.get(0).and_then(Value::as_str),
                                    Some("mac_prefix" | "svc_monitor_mac")
                                )
                            });
                        }
                    }
                }
                scrub(&r).to_string()
            })
            .collect();
        lines.sort();
        out.insert(table.clone(), lines);
    }
    out
}

/// Everything ovn-ic writes, in canonical form: IC-NB and IC-SB entirely, each NB entirely,
/// each SB's `Chassis`, `Encap` (northd owns the rest of the SB).
fn snapshot(env: &Env) -> BTreeMap<String, BTreeMap<String, Vec<String>>> {
    let mut out = BTreeMap::new();
    let dump = |s: &Server| s.dump().expect("dump");
    out.insert("IC-NB".into(), canonical(&dump(env.inb()), None));
    out.insert("IC-SB".into(), canonical(&dump(env.isb()), None));
    for (i, az) in env.azs.iter().enumerate() {
        out.insert(format!("{} NB", az.name), canonical(&dump(env.nb(i)), None));
        out.insert(
            format!("{} SB", az.name),
            canonical(&dump(env.sb(i)), Some(&["Chassis", "Encap"])),
        );
    }
    out
}

/// Runs the whole sweep with `ic_args` for both daemons; returns the settled databases.
fn sweep(ic_args: &[&str]) -> BTreeMap<String, BTreeMap<String, Vec<String>>> {
    let mut env = Env::start(our_ovn_ic(), &["az1", "az2"], true, &["-vjsonrpc:file:dbg"]);
    if !ic_args.is_empty() {
        // Env starts the daemons with default options; restart them with ours.
        env.ics.clear();
        let ics: Vec<Daemon> = env
            .azs
            .iter()
            .map(|az| Daemon::ovn_ic(&env.bin, az, &env.ic, ic_args).expect("starting ovn-ic"))
            .collect();
        env.ics = ics;
    }

    // The good configuration: one transit switch, a router per AZ on it with a gateway and a
    // static route, routes exchanged.
    env.add_ts("ts1");
    for az in 0..2 {
        let n = az + 1;
        let (lr, gw) = (format!("lr{n}"), format!("gw{n}"));
        add_gateway(&env, az, &gw, &format!("192.168.0.{n}"));
        let lrp = format!("{lr}-ts1");
        env.attach(
            az,
            &lr,
            "ts1",
            &lrp,
            &format!("aa:aa:aa:aa:aa:0{n}"),
            &[&format!("169.254.100.{n}/24")],
        );
        bind_gateway(&env, az, &lrp, &gw);
        env.add_lrp(
            az,
            &lr,
            &format!("{lr}-int"),
            &format!("00:00:00:00:0{n}:01"),
            &[&format!("192.168.{n}.1/24")],
        );
        env.add_route(
            az,
            &[],
            &lr,
            &format!("10.{n}.0.0/16"),
            &format!("192.168.{n}.10"),
        );
    }
    env.enable_routes();
    let exchanged = wait_until(WAIT, || {
        learned(&env, 0, "lr1").contains(&"10.2.0.0/16 169.254.100.2".to_string())
            && learned(&env, 1, "lr2").contains(&"10.1.0.0/16 169.254.100.1".to_string())
    });
    assert!(
        exchanged,
        "routes never exchanged: az1 {:?}, az2 {:?}",
        learned(&env, 0, "lr1"),
        learned(&env, 1, "lr2")
    );
    let az1 = isb_uuid(&env, "Availability_Zone", "az1");

    // 1. NB (az1): a learned route with a malformed prefix. Deleted, logged. Injected first:
    //    the learning messages share one rate limiter (burst 1), so az1's later "Ignored." line
    //    may be suppressed; az2 reports that one.
    let lr1 = env.nb_uuid(0, "Logical_Router", "lr1");
    env.nb(0)
        .transact(json!([
            {"op": "insert", "table": "Logical_Router_Static_Route", "uuid-name": "r",
             "row": {"ip_prefix": "10.999.0.0/16", "nexthop": "169.254.100.2",
                     "external_ids": ["map", [["ic-learned-route", az1]]]}},
            {"op": "mutate", "table": "Logical_Router", "where": [["_uuid", "==", ["uuid", lr1]]],
             "mutations": [["static_routes", "insert", ["set", [["named-uuid", "r"]]]]]}
        ]))
        .expect("inserting a bad learned route");
    wait_log(
        &env.ics[0],
        "Bad format of learned route in NB: 10.999.0.0/16 -> 169.254.100.2. Delete it.",
    );
    assert!(
        wait_until(WAIT, || !has_row(
            env.nb(0),
            "Logical_Router_Static_Route",
            "ip_prefix",
            "10.999.0.0/16"
        )),
        "the malformed learned route was not deleted"
    );

    // 2. IC-SB: routes of an AZ without a daemon (nobody deletes them): malformed prefix,
    //    malformed next hop, a non-ASCII lr-id. And routes of az1: malformed next hop, and one
    //    on a transit switch that does not exist.
    env.isb()
        .transact(json!([
            {"op": "insert", "table": "Availability_Zone", "uuid-name": "az9",
             "row": {"name": "az9"}},
            {"op": "insert", "table": "Route",
             "row": {"transit_switch": "ts1", "availability_zone": ["named-uuid", "az9"],
                     "route_table": "", "origin": "static",
                     "ip_prefix": "10.300.0.0/16", "nexthop": "169.254.100.9"}},
            {"op": "insert", "table": "Route",
             "row": {"transit_switch": "ts1", "availability_zone": ["named-uuid", "az9"],
                     "route_table": "", "origin": "static",
                     "ip_prefix": "10.9.0.0/16", "nexthop": "nexthop-ø"}},
            {"op": "insert", "table": "Route",
             "row": {"transit_switch": "ts1", "availability_zone": ["named-uuid", "az9"],
                     "route_table": "", "origin": "static",
                     "ip_prefix": "10.19.0.0/16", "nexthop": "169.254.100.9",
                     "external_ids": ["map", [["lr-id", "ルーター"]]]}},
            {"op": "insert", "table": "Route",
             "row": {"transit_switch": "ts1", "availability_zone": ["uuid", az1],
                     "route_table": "", "origin": "static",
                     "ip_prefix": "10.1.300.0/24", "nexthop": "169.254.100.1"}},
            {"op": "insert", "table": "Route",
             "row": {"transit_switch": "ts1", "availability_zone": ["uuid", az1],
                     "route_table": "", "origin": "static",
                     "ip_prefix": "10.1.99.0/24", "nexthop": "garbage"}},
            {"op": "insert", "table": "Route",
             "row": {"transit_switch": "no-such-ts", "availability_zone": ["uuid", az1],
                     "route_table": "", "origin": "static",
                     "ip_prefix": "10.1.77.0/24", "nexthop": "169.254.100.1"}}
        ]))
        .expect("inserting bad IC-SB routes");
    wait_log_any(
        &env.ics[1],
        &[
            "Bad route format in IC-SB: 10.300.0.0/16 -> 169.254.100.9. Ignored.",
            "Bad route format in IC-SB: 10.9.0.0/16 -> nexthop-ø. Ignored.",
            // az1's own bad rows are visible to az2 until az1 deletes them; whichever comes
            // first takes the limiter's burst.
            "Bad route format in IC-SB: 10.1.99.0/24 -> garbage. Ignored.",
            "Bad route format in IC-SB: 10.1.300.0/24 -> 169.254.100.1. Ignored.",
        ],
    );
    // Our own row with a malformed prefix (its next hop is ours): deleted by the advertiser.
    wait_log(
        &env.ics[0],
        "Bad route format in IC-SB: 10.1.300.0/24 -> 169.254.100.1. Delete it.",
    );
    // Our own row whose next hop is no address of ours, and one on a transit switch that does
    // not exist: orphans. Both go through one rate limiter (burst 1), as upstream, so only the
    // first is sure to be logged.
    wait_log_any(
        &env.ics[0],
        &[
            "Deleting orphan ICDB:Route: 10.1.99.0/24->garbage (static, rtb:, transit switch: ts1)",
            "Deleting orphan ICDB:Route: 10.1.77.0/24->169.254.100.1 (static, rtb:, transit switch: no-such-ts)",
        ],
    );
    assert!(
        wait_until(WAIT, || !isb_route_exists(&env, "10.1.99.0/24", "garbage")
            && !isb_route_exists(&env, "10.1.300.0/24", "169.254.100.1")),
        "az1's malformed / orphan IC-SB routes on ts1 were not deleted"
    );
    // The incremental route stage deletes it too (no recompute needed).
    assert!(
        wait_until(WAIT, || !isb_route_exists(
            &env,
            "10.1.77.0/24",
            "169.254.100.1"
        )),
        "the orphan route on a missing transit switch survived"
    );
    // az9's rows stay (not ours), and nothing of them is learned.
    assert!(isb_route_exists(&env, "10.300.0.0/16", "169.254.100.9"));

    // 3. NB (az2): a deny list that is not a CIDR.
    env.set_options(1, &[("ic-route-denylist", "not-a-prefix,10.200.0.0/16")]);
    wait_log(&env.ics[1], "format: not-a-prefix. CIDR expected.");

    // 4. NB (az1): a load balancer whose VIP key is no address, advertised.
    env.set_options(0, &[("ic-route-adv-lb", "true")]);
    env.nb(0)
        .transact(json!([
            {"op": "insert", "table": "Load_Balancer", "uuid-name": "lb",
             "row": {"name": "lb-bad", "protocol": "tcp",
                     "vips": ["map", [["bogus-vip:80", "192.168.1.20:80"],
                                      ["10.1.5.5:80", "192.168.1.21:80"]]]}},
            {"op": "mutate", "table": "Logical_Router", "where": [["_uuid", "==", ["uuid", lr1]]],
             "mutations": [["load_balancer", "insert", ["set", [["named-uuid", "lb"]]]]]}
        ]))
        .expect("inserting a load balancer with a bad VIP");
    wait_log(
        &env.ics[0],
        "Route ad: Parsing failed for lb vip bogus-vip:80",
    );

    // 5. NB (az1): the TS port's requested-tnl-key overwritten with garbage: repaired.
    let lsp = "lsp-lr1-ts1";
    let key_of = |env: &Env| -> Option<String> {
        env.nb(0).dump().ok().and_then(|db| {
            find(&db, "Logical_Switch_Port", "name", lsp)
                .and_then(|r| key(r, "options", "requested-tnl-key"))
        })
    };
    let good_key = wait_until(WAIT, || {
        key_of(&env).is_some_and(|k| k.parse::<u32>().is_ok())
    });
    assert!(good_key, "{lsp} never got a requested-tnl-key");
    let before = key_of(&env);
    env.nbctl(
        0,
        &[
            "set",
            "Logical_Switch_Port",
            lsp,
            "options:requested-tnl-key=\"0x-ß\"",
        ],
    );
    assert!(
        wait_until(WAIT, || key_of(&env) == before),
        "malformed requested-tnl-key not repaired: {:?} (was {before:?})",
        key_of(&env)
    );

    // 6. NB (az2): a router-type TS port whose router-port names no LRP (missing reference).
    env.nbctl(
        1,
        &[
            "lsp-add",
            "ts1",
            "lsp-ghost",
            "--",
            "lsp-set-type",
            "lsp-ghost",
            "router",
            "--",
            "lsp-set-addresses",
            "lsp-ghost",
            "router",
            "--",
            "lsp-set-options",
            "lsp-ghost",
            "router-port=no-such-lrp",
        ],
    );

    // 7. IC-NB: a transit switch with a long non-ASCII name and odd external_ids; NB global
    //    options with long non-ASCII values.
    let long = long_name();
    env.inb()
        .transact(json!([
            {"op": "insert", "table": "Transit_Switch",
             "row": {"name": long,
                     "external_ids": ["map", [["ключ", "значение".repeat(200)],
                                              ["", ""]]]}}
        ]))
        .expect("inserting a long-named transit switch");
    env.set_options(0, &[("ic-route-adv-default", &"ü".repeat(3000))]);
    for az in 0..2 {
        assert!(
            wait_until(WAIT, || has_row(
                env.nb(az),
                "Logical_Switch",
                "name",
                &long
            )),
            "the long-named transit switch never reached az{}'s NB",
            az + 1
        );
    }

    // The good configuration is still in place and still converges.
    env.add_ts("ts2");
    let still = wait_until(WAIT, || {
        learned(&env, 0, "lr1").contains(&"10.2.0.0/16 169.254.100.2".to_string())
            && learned(&env, 1, "lr2").contains(&"10.1.0.0/16 169.254.100.1".to_string())
    });
    assert!(still, "good routes lost after bad input");
    for az in 0..2 {
        let bad: Vec<String> = learned(&env, az, &format!("lr{}", az + 1))
            .into_iter()
            .filter(|l| l.contains("10.300.") || l.contains("10.9.0.0") || l.contains("10.19."))
            .collect();
        assert!(bad.is_empty(), "az{} learned bad routes: {bad:?}", az + 1);
    }

    // Settle: all databases unchanged for two seconds.
    let mut last = None;
    let stable = wait_until(Duration::from_secs(90), || {
        let now = Some(snapshot(&env));
        let same = now == last;
        last = now;
        if !same {
            std::thread::sleep(Duration::from_secs(2));
        }
        same
    });
    assert!(stable, "the databases never settled");
    std::thread::sleep(Duration::from_millis(500));

    // The quiet window: no transaction, no busy loop, daemons alive.
    let logs = server_logs(&env);
    let offsets: Vec<usize> = logs.iter().map(|(_, p)| log_len(p)).collect();
    let zero_before: Vec<u64> = (0..2)
        .map(|az| env.counter(az, "poll_zero_timeout"))
        .collect();
    std::thread::sleep(QUIET);
    let zero_after: Vec<u64> = (0..2)
        .map(|az| env.counter(az, "poll_zero_timeout"))
        .collect();
    let mut report = String::new();
    for ((label, path), from) in logs.iter().zip(offsets) {
        let lines = transacts_since(path, from);
        if !lines.is_empty() {
            report.push_str(&format!("{label}: {} transact request(s):\n", lines.len()));
            for l in lines {
                report.push_str(&format!("  {l}\n"));
            }
        }
    }
    assert!(
        report.is_empty(),
        "transactions during {QUIET:?} with bad input present:\n{report}"
    );
    for az in 0..2 {
        let grew = zero_after[az].saturating_sub(zero_before[az]);
        assert!(
            grew <= MAX_ZERO_TIMEOUTS,
            "az{}'s ovn-ic counted {grew} poll_zero_timeout in {QUIET:?} (busy loop?)",
            az + 1
        );
    }
    for (i, d) in env.ics.iter_mut().enumerate() {
        assert!(
            d.is_running(),
            "az{}'s ovn-ic died:\n{}",
            i + 1,
            d.log_text()
        );
        let log = d.log_text();
        assert!(!log.contains("panicked"), "az{}: {log}", i + 1);
        for needle in [
            "Bad route format in IC-SB",
            "Bad format of learned route in NB",
            "CIDR expected.",
            "Parsing failed for lb vip",
        ] {
            let n = log.matches(needle).count();
            assert!(
                n <= MAX_REPEATS,
                "az{}: {needle:?} logged {n} times (not rate limited?)",
                i + 1
            );
        }
    }
    snapshot(&env)
}

#[test]
fn bad_input_is_logged_and_skipped_and_debug_logging_changes_nothing() {
    let default = sweep(&[]);
    let debug = sweep(&["-vdbg"]);
    if default != debug {
        let mut diff = String::new();
        for (db, tables) in &default {
            for (table, rows) in tables {
                let other = debug.get(db).and_then(|t| t.get(table));
                if other != Some(rows) {
                    diff.push_str(&format!(
                        "{db} {table}:\n  default: {rows:#?}\n  -vdbg:   {other:#?}\n"
                    ));
                }
            }
        }
        panic!("-vdbg changed the databases:\n{diff}");
    }
}
