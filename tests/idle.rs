//! The churn test: once three AZs have converged (transit switches, routers with legacy TS
//! ports, gateways, advertised and learned routes, address sets where the schema has them),
//! ten seconds without any change must produce no transaction from any `ovn-ic`, and no busy
//! loop (spec `ovn-ic-routes.md` A.12 and 0.1: a steady-state run writes nothing; a wakeup
//! without input change runs nothing).
//!
//! Transactions are counted on the server side: every `ovsdb-server` (IC-NB, IC-SB, each AZ's
//! NB and SB) runs with `-vjsonrpc:file:dbg`, which logs each received request as
//! `received request, method="transact"`. The test makes no request of its own during the quiet
//! window (an `ovsdb-client dump` is a `transact` too). `ovn-northd` runs as well and is
//! idle in steady state; any transaction in the window fails the test with the logged lines, so
//! whoever sent it can be told from the session name and contents.

mod common;

#[path = "routes/env.rs"]
mod env;

use std::path::PathBuf;
use std::time::Duration;

use common::{our_ovn_ic, wait_until, Server};
use env::{Env, WAIT};
use serde_json::{json, Value};

/// The quiet window.
const QUIET: Duration = Duration::from_secs(10);

const REQUEST: &str = "received request, method=\"transact\"";

/// How many more `poll_zero_timeout` events an idle daemon may count in the window: an idle
/// daemon sleeps in poll; a busy loop would count thousands.
const MAX_ZERO_TIMEOUTS: u64 = 20;

/// `(label, log path)` of every server.
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

/// The `transact` request lines logged after byte `from`.
fn transacts_since(path: &PathBuf, from: usize) -> Vec<String> {
    let text = std::fs::read(path).unwrap_or_default();
    let tail = String::from_utf8_lossy(text.get(from..).unwrap_or_default()).into_owned();
    tail.lines()
        .filter(|l| l.contains(REQUEST))
        .map(|l| l.chars().take(400).collect())
        .collect()
}

/// Every database's full contents (`_version` removed), for the convergence check.
fn snapshot(env: &Env) -> Option<Vec<Value>> {
    let mut servers: Vec<&Server> = vec![env.inb(), env.isb()];
    for az in &env.azs {
        servers.push(&az.nb);
        servers.push(&az.sb);
    }
    servers
        .into_iter()
        .map(|s| {
            s.dump().ok().map(|mut db| {
                if let Some(tables) = db.as_object_mut() {
                    for rows in tables.values_mut() {
                        for row in rows.as_array_mut().into_iter().flatten() {
                            if let Some(o) = row.as_object_mut() {
                                o.remove("_version");
                            }
                        }
                    }
                }
                db
            })
        })
        .collect()
}

/// `ovn-sbctl chassis-add NAME geneve IP` marked as an interconnection gateway.
fn add_gateway(env: &Env, az: usize, name: &str, ip: &str) {
    env.sbctl(az, &["chassis-add", name, "geneve", ip]);
    env.sbctl(
        az,
        &["set", "Chassis", name, "other_config:is-interconn=true"],
    );
}

/// Binds the LRP's chassis-redirect port to gateway `gw`, as ovn-controller would.
fn bind_gateway(env: &Env, az: usize, lrp: &str, gw: &str) {
    env.nbctl(az, &["lrp-set-gateway-chassis", lrp, gw]);
    let cr = format!("cr-{lrp}");
    env.wait_sb_port(&cr, az);
    env.sbctl(az, &["lsp-bind", &cr, gw]);
}

#[test]
fn idle_daemons_send_no_transactions() {
    let env = Env::start(
        our_ovn_ic(),
        &["az1", "az2", "az3"],
        true,
        &["-vjsonrpc:file:dbg"],
    );
    env.add_ts("ts1");
    env.add_ts("ts2");
    let macs = [
        "aa:aa:aa:aa:aa:01",
        "aa:aa:aa:aa:aa:02",
        "aa:aa:aa:aa:aa:03",
    ];
    for (az, mac) in macs.iter().enumerate() {
        let n = az + 1;
        let (lr, gw) = (format!("lr{n}"), format!("gw{n}"));
        add_gateway(&env, az, &gw, &format!("192.168.0.{n}"));
        let lrp = format!("{lr}-ts1");
        env.attach(
            az,
            &lr,
            "ts1",
            &lrp,
            mac,
            &[
                &format!("169.254.100.{n}/24"),
                &format!("2001:db8:100::{n}/64"),
            ],
        );
        bind_gateway(&env, az, &lrp, &gw);
        env.add_lrp(
            az,
            &lr,
            &format!("{lr}-int"),
            &format!("00:00:00:00:0{n}:01"),
            &[&format!("192.168.{n}.1/24"), &format!("2002:db8:{n}::1/64")],
        );
        env.add_route(
            az,
            &[],
            &lr,
            &format!("10.{n}.0.0/16"),
            &format!("192.168.{n}.10"),
        );
        env.add_route(
            az,
            &["--route-table=rtb1"],
            &lr,
            &format!("10.{n}.1.0/24"),
            &format!("192.168.{n}.10"),
        );
    }
    // az1 also on ts2, with a route table; az3 with a second router on ts2.
    env.attach(
        0,
        "lr1",
        "ts2",
        "lr1-ts2",
        "aa:aa:aa:aa:bb:01",
        &["169.254.200.1/24"],
    );
    env.nbctl(
        0,
        &[
            "set",
            "Logical_Router_Port",
            "lr1-ts2",
            "options:route_table=rtb1",
        ],
    );
    env.attach(
        2,
        "lr3b",
        "ts2",
        "lr3b-ts2",
        "aa:aa:aa:aa:bb:03",
        &["169.254.200.3/24"],
    );
    env.add_route(2, &[], "lr3b", "10.33.0.0/16", "169.254.200.99");
    env.enable_routes();

    // Address sets where the schemas have them.
    let address_sets = env::has_column("ovn-ic-sb", "Address_Set", "name")
        && env::has_column("ovn-sb", "Address_Set", "options");
    if address_sets {
        for az in 0..3 {
            env.set_options(az, &[("ic-as-adv", "true"), ("ic-as-learn", "true")]);
            // Debian's ovn-northd owns SB Address_Set (it deletes rows without an NB set) but
            // does not know the `options` column, so the NB set is created and the SB copy
            // marked with `ic-adv` by hand, as a current northd would copy NB options.
            let name = format!("as{}", az + 1);
            let a = format!("10.{}.9.1", az + 1);
            env.nbctl(
                az,
                &[
                    "create",
                    "Address_Set",
                    &format!("name={name}"),
                    &format!("addresses=\"{a}\",\"10.0.0.1\""),
                ],
            );
            let ok = wait_until(WAIT, || {
                env.sb(az)
                    .dump()
                    .is_ok_and(|db| env::find(&db, "Address_Set", "name", &name).is_some())
            });
            assert!(ok, "northd never created SB Address_Set {name}");
            env.sb(az)
                .transact(json!([{"op": "update", "table": "Address_Set",
                                  "where": [["name", "==", name]],
                                  "row": {"options": ["map", [["ic-adv", "true"]]]}}]))
                .expect("marking an SB address set ic-adv");
        }
    } else {
        eprintln!("idle: the schemas in use have no Address_Set sync; routes only");
    }

    // Converged: every route learned (3 AZs x their ads), address sets learned, and then the
    // whole state of all databases unchanged for two seconds.
    let lrs = [(0, "lr1"), (1, "lr2"), (2, "lr3"), (2, "lr3b")];
    let mut last_state = None;
    let exchanged = wait_until(WAIT, || {
        let st = env.route_state(&lrs).ok();
        let ok = st.as_ref().is_some_and(|st| {
            st.learned.values().all(|l| !l.is_empty())
                && st.isb.iter().filter(|l| l.contains(" az3 ")).count() == 4
        });
        last_state = st;
        ok
    });
    assert!(exchanged, "routes were never exchanged: {last_state:#?}");
    if address_sets {
        let ok = wait_until(WAIT, || {
            env.nb(0).dump().is_ok_and(|db| {
                common::rows(&db, "Address_Set")
                    .iter()
                    .filter(|r| env::key(r, "external_ids", "ic-learnt").is_some())
                    .count()
                    == 2
            })
        });
        assert!(ok, "az1 never learned az2's and az3's address sets");
    }
    let mut last = None;
    let stable = wait_until(Duration::from_secs(60), || {
        let now = snapshot(&env);
        let same = now.is_some() && now == last;
        last = now;
        if !same {
            std::thread::sleep(Duration::from_secs(2));
        }
        same
    });
    assert!(stable, "the databases never settled");
    // The last dump's own transactions must be logged before the window starts.
    std::thread::sleep(Duration::from_millis(500));

    // The quiet window: no request of ours to any server.
    let logs = server_logs(&env);
    for (label, path) in &logs {
        assert!(
            !transacts_since(path, 0).is_empty(),
            "{label}'s log has no transact request at all: is -vjsonrpc:file:dbg in effect?"
        );
    }
    let offsets: Vec<usize> = logs.iter().map(|(_, p)| log_len(p)).collect();
    let zero_before: Vec<u64> = (0..3)
        .map(|az| env.counter(az, "poll_zero_timeout"))
        .collect();
    std::thread::sleep(QUIET);
    let zero_after: Vec<u64> = (0..3)
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
        "transactions during {QUIET:?} without any change:\n{report}"
    );
    for az in 0..3 {
        let grew = zero_after[az].saturating_sub(zero_before[az]);
        assert!(
            grew <= MAX_ZERO_TIMEOUTS,
            "az{}'s ovn-ic counted {grew} poll_zero_timeout in {QUIET:?} (busy loop?)",
            az + 1
        );
    }
}
