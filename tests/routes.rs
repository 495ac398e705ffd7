//! Route exchange (spec `ovn-ic-routes.md` Part A) and Address_Set synchronisation (Part B)
//! end to end: real `ovsdb-server`s, Debian's `ovn-northd` per AZ (it turns the LRPs into SB
//! port bindings whose `mac` column becomes the ISB `Port_Binding.address`), this crate's
//! `ovn-ic` per AZ, configured with Debian's `ovn-nbctl` / `ovn-ic-nbctl`.
//!
//! Each test runs one environment and several steps; after every step the exact ISB `Route`
//! rows and the exact learned NB routes of the routers involved are compared (see
//! `tests/routes/env.rs` for the one-line rendering). The spec rules each step pins down are
//! named in the comments (A.x, L5.x, 0.x). Features whose tables or enum values the schemas in
//! use lack (Debian's 23.03 schemas) are skipped with a message.

mod common;

#[path = "routes/env.rs"]
mod env;

use common::our_ovn_ic;
use env::{isb_line, learned_line, Env};
use serde_json::json;

/// The next hops of a TS port: (IPv4, IPv6).
#[derive(Clone, Copy)]
struct Nh {
    v4: &'static str,
    v6: &'static str,
}

const NH1_TS1: Nh = Nh {
    v4: "169.254.100.1",
    v6: "2001:db8:100::1",
};
const NH1_TS2: Nh = Nh {
    v4: "169.254.200.1",
    v6: "2001:db8:200::1",
};
const NH2_TS1: Nh = Nh {
    v4: "169.254.100.2",
    v6: "2001:db8:100::2",
};

/// What `lr` learns from ISB lines: `(prefix, nexthop, rtb, origin, from)` per line.
fn learned(rows: &[(&str, &str, &str, &str, &str)]) -> Vec<String> {
    rows.iter()
        .map(|(p, n, r, o, f)| learned_line(p, n, r, o, f))
        .collect()
}

// ------------------------------------------------------------------------------------------------
// Basic flow (test "ovn-ic -- route sync", "duplicate NB route adv/learn", "route deletion upon
// TS deletion")
// ------------------------------------------------------------------------------------------------

/// az1's advertisements of lr1 on one TS (with that TS port's next hops).
fn az1_ads(ts: &str, nh: Nh, with_default: bool, with_10_11_1: bool) -> Vec<String> {
    let mut out = vec![
        isb_line(
            ts,
            "az1",
            "1.1.1.1/32",
            nh.v4,
            "static",
            "",
            "route:1.1.1.1",
            "lr1",
        ),
        isb_line(
            ts,
            "az1",
            "2003:db8:1::/64",
            nh.v6,
            "static",
            "",
            "route:2003:db8:1::/64",
            "lr1",
        ),
        // Host bits kept (0.5); the TS LRPs themselves are never advertised (A.7.2).
        isb_line(
            ts,
            "az1",
            "192.168.1.1/24",
            nh.v4,
            "connected",
            "",
            "lrp:lr1-int",
            "lr1",
        ),
        isb_line(
            ts,
            "az1",
            "2002:db8:1::1/64",
            nh.v6,
            "connected",
            "",
            "lrp:lr1-int",
            "lr1",
        ),
    ];
    if with_10_11_1 {
        out.push(isb_line(
            ts,
            "az1",
            "10.11.1.0/24",
            nh.v4,
            "static",
            "",
            "route:10.11.1.0/24",
            "lr1",
        ));
    }
    if with_default {
        out.push(isb_line(
            ts,
            "az1",
            "0.0.0.0/0",
            nh.v4,
            "static",
            "",
            "route:0.0.0.0/0",
            "lr1",
        ));
    }
    out
}

/// What a learner sees from [`az1_ads`] (`skip` = prefixes it must not learn).
fn az1_learned(
    ts: &str,
    nh: Nh,
    with_default: bool,
    with_10_11_1: bool,
    skip: &[&str],
) -> Vec<String> {
    let from = format!("az1/{ts}");
    let mut rows = vec![
        ("1.1.1.1/32", nh.v4, "", "static"),
        ("2003:db8:1::/64", nh.v6, "", "static"),
        ("192.168.1.1/24", nh.v4, "", "connected"),
        ("2002:db8:1::1/64", nh.v6, "", "connected"),
    ];
    if with_10_11_1 {
        rows.push(("10.11.1.0/24", nh.v4, "", "static"));
    }
    if with_default {
        rows.push(("0.0.0.0/0", nh.v4, "", "static"));
    }
    rows.into_iter()
        .filter(|r| !skip.contains(&r.0))
        .map(|(p, n, r, o)| learned_line(p, n, r, o, &from))
        .collect()
}

fn az2_ads() -> Vec<String> {
    vec![
        isb_line(
            "ts1",
            "az2",
            "10.22.1.0/24",
            NH2_TS1.v4,
            "static",
            "",
            "route:10.22.1.0/24",
            "lr2",
        ),
        isb_line(
            "ts1",
            "az2",
            "192.168.2.1/24",
            NH2_TS1.v4,
            "connected",
            "",
            "lrp:lr2-int",
            "lr2",
        ),
    ]
}

fn az2_learned_by_lr1(from: &str) -> Vec<String> {
    learned(&[
        ("10.22.1.0/24", NH2_TS1.v4, "", "static", from),
        ("192.168.2.1/24", NH2_TS1.v4, "", "connected", from),
    ])
}

#[test]
fn route_sync_basic_ipv4_ipv6_filters_and_deletion() {
    let env = Env::start(our_ovn_ic(), &["az1", "az2"], true, &[]);
    env.add_ts("ts1");
    env.add_ts("ts2");
    // az1: lr1 on ts1 and ts2, one internal LRP, static routes of every kind.
    env.attach(
        0,
        "lr1",
        "ts1",
        "lr1-ts1",
        "aa:aa:aa:aa:aa:01",
        &["169.254.100.1/24", "2001:db8:100::1/64"],
    );
    env.attach(
        0,
        "lr1",
        "ts2",
        "lr1-ts2",
        "aa:aa:aa:aa:aa:11",
        &["169.254.200.1/24", "2001:db8:200::1/64"],
    );
    env.add_lrp(
        0,
        "lr1",
        "lr1-int",
        "00:00:00:00:01:01",
        &["192.168.1.1/24", "2002:db8:1::1/64"],
    );
    env.add_route(0, &[], "lr1", "10.11.1.0/24", "192.168.1.10");
    env.add_route(0, &[], "lr1", "1.1.1.1/32", "192.168.1.10");
    env.add_route(0, &[], "lr1", "0.0.0.0/0", "192.168.1.10");
    env.add_route(0, &[], "lr1", "2003:db8:1::/64", "2002:db8:1::10");
    // Never advertised: src-ip policy (A.11.7), link-local prefix (0.6), link-local next hop.
    env.add_route(
        0,
        &["--policy=src-ip"],
        "lr1",
        "10.11.2.0/24",
        "192.168.1.10",
    );
    env.add_route(0, &[], "lr1", "169.254.10.0/24", "192.168.1.10");
    env.add_route(0, &[], "lr1", "2003:db8:3::/64", "fe80::1");
    // az2: lr2 on ts1 with a connected network and a static route; lr3 on ts2 only.
    env.attach(
        1,
        "lr2",
        "ts1",
        "lr2-ts1",
        "aa:aa:aa:aa:aa:02",
        &["169.254.100.2/24", "2001:db8:100::2/64"],
    );
    env.add_lrp(
        1,
        "lr2",
        "lr2-int",
        "00:00:00:00:02:01",
        &["192.168.2.1/24"],
    );
    env.add_route(1, &[], "lr2", "10.22.1.0/24", "192.168.2.10");
    env.attach(
        1,
        "lr3",
        "ts2",
        "lr3-ts2",
        "aa:aa:aa:aa:aa:13",
        &["169.254.200.3/24", "2001:db8:200::3/64"],
    );

    // Nothing is exchanged while ic-route-adv/learn are off (A.7.7 rule 1, L5.1).
    let lrs_empty = vec![(0, "lr1", vec![]), (1, "lr2", vec![]), (1, "lr3", vec![])];
    env.expect_routes("adv/learn off", &[], &lrs_empty);

    env.enable_routes();
    let mut isb = az1_ads("ts1", NH1_TS1, false, true);
    isb.extend(az1_ads("ts2", NH1_TS2, false, true));
    isb.extend(az2_ads());
    // Learned routes are not re-advertised (A.11.5): exactly one 1.1.1.1/32 row per TS.
    // A TS only carries its own routes: lr2 learns ts1's, lr3 ts2's (isolation).
    env.expect_routes(
        "adv/learn on",
        &isb,
        &[
            (0, "lr1", az2_learned_by_lr1("az2/ts1")),
            (1, "lr2", az1_learned("ts1", NH1_TS1, false, true, &[])),
            (1, "lr3", az1_learned("ts2", NH1_TS2, false, true, &[])),
        ],
    );

    // Default route: needs ic-route-adv-default on the advertiser (A.7.7 rule 2) ...
    env.set_options(0, &[("ic-route-adv-default", "true")]);
    let mut isb = az1_ads("ts1", NH1_TS1, true, true);
    isb.extend(az1_ads("ts2", NH1_TS2, true, true));
    isb.extend(az2_ads());
    env.expect_routes(
        "adv-default on",
        &isb,
        &[
            (1, "lr2", az1_learned("ts1", NH1_TS1, false, true, &[])),
            (1, "lr3", az1_learned("ts2", NH1_TS2, false, true, &[])),
        ],
    );
    // ... and ic-route-learn-default on the learner (L5.2).
    env.set_options(1, &[("ic-route-learn-default", "true")]);
    env.expect_routes(
        "learn-default on",
        &isb,
        &[
            (1, "lr2", az1_learned("ts1", NH1_TS1, true, true, &[])),
            (1, "lr3", az1_learned("ts2", NH1_TS2, true, true, &[])),
        ],
    );

    // Global deny list on the learner, IPv4 and IPv6, leading blank tolerated (0.8, L5.6).
    env.set_options(1, &[("ic-route-denylist", "10.11.0.0/16, 2003:db8::/32")]);
    let deny = ["10.11.1.0/24", "2003:db8:1::/64"];
    env.expect_routes(
        "denylist on az2",
        &isb,
        &[
            (0, "lr1", az2_learned_by_lr1("az2/ts1")),
            (1, "lr2", az1_learned("ts1", NH1_TS1, true, true, &deny)),
            (1, "lr3", az1_learned("ts2", NH1_TS2, true, true, &deny)),
        ],
    );
    // The legacy name is used only when ic-route-denylist is absent (or empty).
    env.set_options(1, &[("ic-route-blacklist", "1.1.1.0/24")]);
    env.expect_routes(
        "blacklist ignored while denylist is set",
        &isb,
        &[(1, "lr2", az1_learned("ts1", NH1_TS1, true, true, &deny))],
    );
    env.set_options(1, &[("ic-route-denylist", "")]);
    env.expect_routes(
        "empty denylist: blacklist applies",
        &isb,
        &[
            (
                1,
                "lr2",
                az1_learned("ts1", NH1_TS1, true, true, &["1.1.1.1/32"]),
            ),
            (
                1,
                "lr3",
                az1_learned("ts2", NH1_TS2, true, true, &["1.1.1.1/32"]),
            ),
        ],
    );
    env.remove_option(1, "ic-route-blacklist");
    env.remove_option(1, "ic-route-denylist");

    // Learning switched off in az2 removes every learned route there, not az1's (L5.1).
    env.set_options(1, &[("ic-route-learn", "false")]);
    env.expect_routes(
        "learn off in az2",
        &isb,
        &[
            (0, "lr1", az2_learned_by_lr1("az2/ts1")),
            (1, "lr2", vec![]),
            (1, "lr3", vec![]),
        ],
    );
    env.set_options(1, &[("ic-route-learn", "true")]);
    env.expect_routes(
        "learn on again",
        &isb,
        &[
            (1, "lr2", az1_learned("ts1", NH1_TS1, true, true, &[])),
            (1, "lr3", az1_learned("ts2", NH1_TS2, true, true, &[])),
        ],
    );

    // Deleting the source withdraws the route everywhere (A.9, A.8 step 4).
    env.nbctl(0, &["lr-route-del", "lr1", "10.11.1.0/24"]);
    let mut isb = az1_ads("ts1", NH1_TS1, true, false);
    isb.extend(az1_ads("ts2", NH1_TS2, true, false));
    isb.extend(az2_ads());
    env.expect_routes(
        "static route deleted",
        &isb,
        &[
            (1, "lr2", az1_learned("ts1", NH1_TS1, true, false, &[])),
            (1, "lr3", az1_learned("ts2", NH1_TS2, true, false, &[])),
        ],
    );

    // Transit switch deleted: this AZ's rows on it vanish (A.5), the same prefixes on ts2 stay.
    // lr1 is still attached (ts2) and drops what it learned on ts1; lr2 has no TS port left and
    // is no longer processed, so its learned routes stay (A.6 quirk).
    // lr1-ts1 is now an ordinary LRP of lr1: its IPv6 network is advertised as connected on
    // ts2, its IPv4 one is link-local and is not (A.7.2, 0.6).
    env.ic_nbctl(&["ts-del", "ts1"]);
    let mut isb = az1_ads("ts2", NH1_TS2, true, false);
    isb.push(isb_line(
        "ts2",
        "az1",
        "2001:db8:100::1/64",
        NH1_TS2.v6,
        "connected",
        "",
        "lrp:lr1-ts1",
        "lr1",
    ));
    let mut lr3 = az1_learned("ts2", NH1_TS2, true, false, &[]);
    lr3.push(learned_line(
        "2001:db8:100::1/64",
        NH1_TS2.v6,
        "",
        "connected",
        "az1/ts2",
    ));
    let stale: Vec<String> = az1_learned("ts1", NH1_TS1, true, false, &[])
        .into_iter()
        .map(|l| l.replace("from=az1/ts1", "from=gone"))
        .collect();
    env.expect_routes(
        "ts1 deleted",
        &isb,
        &[
            (0, "lr1", vec![]),
            (1, "lr2", stale.clone()),
            (1, "lr3", lr3),
        ],
    );

    // Advertising switched off: the AZ's rows on its remaining TS go (A.9).
    env.set_options(0, &[("ic-route-adv", "false")]);
    env.expect_routes(
        "adv off in az1",
        &[],
        &[(1, "lr2", stale), (1, "lr3", vec![])],
    );
}

// ------------------------------------------------------------------------------------------------
// Route tables (A.10; tests "route sync -- route tables", "multiple route tables (IPv6)", "same
// routes destination")
// ------------------------------------------------------------------------------------------------

/// `ovn-nbctl set TABLE RECORD K=V...` helper.
fn set(env: &Env, az: usize, table: &str, record: &str, kv: &[&str]) {
    let mut args = vec!["set", table, record];
    args.extend_from_slice(kv);
    env.nbctl(az, &args);
}

/// The `_uuid` of the static route `prefix` (in `rtb`) of AZ `az`.
fn route_uuid(env: &Env, az: usize, prefix: &str) -> String {
    let out = env.nbctl(
        az,
        &[
            "--bare",
            "--columns=_uuid",
            "find",
            "Logical_Router_Static_Route",
            &format!("ip_prefix=\"{prefix}\""),
        ],
    );
    out.lines()
        .next()
        .unwrap_or_else(|| panic!("no static route {prefix}"))
        .trim()
        .to_string()
}

#[test]
fn route_sync_route_tables() {
    let env = Env::start(our_ovn_ic(), &["az1", "az2"], true, &[]);
    // Without ISB Route.options (23.03 schemas) override-connected is neither written nor read.
    let oc = if env::has_column("ovn-ic-sb", "Route", "options") {
        " oc"
    } else {
        ""
    };
    env.add_ts("ts1");
    env.attach(
        0,
        "lr1",
        "ts1",
        "lr1-ts1",
        "aa:aa:aa:aa:aa:01",
        &["169.254.100.1/24", "2001:db8:100::1/64"],
    );
    set(
        &env,
        0,
        "Logical_Router_Port",
        "lr1-ts1",
        &["options:route_table=rtb1"],
    );
    env.add_lrp(
        0,
        "lr1",
        "lr1-int",
        "00:00:00:00:01:01",
        &["192.168.1.1/24"],
    );
    env.add_route(
        0,
        &["--route-table=rtb1"],
        "lr1",
        "10.11.1.0/24",
        "192.168.1.10",
    );
    env.add_route(
        0,
        &["--route-table=rtb1"],
        "lr1",
        "10.11.2.0/24",
        "192.168.1.10",
    );
    env.add_route(
        0,
        &["--route-table=rtb1"],
        "lr1",
        "2003:db8:1::/64",
        "2001:db8:100::10",
    );
    // A main-table static route is not served by a rtb1 port (A.7.1).
    env.add_route(0, &[], "lr1", "10.11.9.0/24", "192.168.1.10");
    let r2 = route_uuid(&env, 0, "10.11.2.0/24");
    set(
        &env,
        0,
        "Logical_Router_Static_Route",
        &r2,
        &["options:override-connected=true"],
    );

    env.attach(
        1,
        "lr2",
        "ts1",
        "lr2-ts1",
        "aa:aa:aa:aa:aa:02",
        &["169.254.100.2/24", "2001:db8:100::2/64"],
    );
    set(
        &env,
        1,
        "Logical_Router_Port",
        "lr2-ts1",
        &["options:route_table=rtb1"],
    );
    env.attach(
        1,
        "lr3",
        "ts1",
        "lr3-ts1",
        "aa:aa:aa:aa:aa:03",
        &["169.254.100.3/24"],
    );
    set(
        &env,
        1,
        "Logical_Router_Port",
        "lr3-ts1",
        &["options:route_table=rtb2"],
    );
    env.enable_routes();

    let (n4, n6) = (NH1_TS1.v4, NH1_TS1.v6);
    let mut isb = vec![
        isb_line(
            "ts1",
            "az1",
            "10.11.1.0/24",
            n4,
            "static",
            "rtb1",
            "route:10.11.1.0/24@rtb1",
            "lr1",
        ),
        isb_line(
            "ts1",
            "az1",
            "10.11.2.0/24",
            n4,
            "static",
            "rtb1",
            "route:10.11.2.0/24@rtb1",
            "lr1",
        ) + oc,
        isb_line(
            "ts1",
            "az1",
            "2003:db8:1::/64",
            n6,
            "static",
            "rtb1",
            "route:2003:db8:1::/64@rtb1",
            "lr1",
        ),
        // Connected networks: main table, plus an override-connected copy in the port's table.
        isb_line(
            "ts1",
            "az1",
            "192.168.1.1/24",
            n4,
            "connected",
            "",
            "lrp:lr1-int",
            "lr1",
        ),
        isb_line(
            "ts1",
            "az1",
            "192.168.1.1/24",
            n4,
            "connected",
            "rtb1",
            "lrp:lr1-int",
            "lr1",
        ) + oc,
    ];
    let from = "az1/ts1";
    let mut lr2 = vec![
        learned_line("10.11.1.0/24", n4, "rtb1", "static", from),
        learned_line("10.11.2.0/24", n4, "rtb1", "static", from) + oc,
        learned_line("2003:db8:1::/64", n6, "rtb1", "static", from),
        learned_line("192.168.1.1/24", n4, "", "connected", from),
        learned_line("192.168.1.1/24", n4, "rtb1", "connected", from) + oc,
    ];
    // lr3 serves rtb2: only main-table rows (L3).
    let lr3_main = vec![learned_line("192.168.1.1/24", n4, "", "connected", from)];
    env.expect_routes(
        "route tables",
        &isb,
        &[
            (0, "lr1", vec![]),
            (1, "lr2", lr2.clone()),
            (1, "lr3", lr3_main.clone()),
        ],
    );

    // A local static route with the same table and prefix string blocks learning (L5.8); the
    // string must match exactly: 192.168.1.0/24 does not block 192.168.1.1/24. lr2 now
    // advertises its rtb1 route, which lr1 does not learn (it has the same local route).
    env.add_route(
        1,
        &["--route-table=rtb1"],
        "lr2",
        "10.11.1.0/24",
        "169.254.100.1",
    );
    env.add_route(1, &[], "lr2", "192.168.1.0/24", "169.254.100.1");
    isb.push(isb_line(
        "ts1",
        "az2",
        "10.11.1.0/24",
        NH2_TS1.v4,
        "static",
        "rtb1",
        "route:10.11.1.0/24@rtb1",
        "lr2",
    ));
    lr2.retain(|l| !l.starts_with("10.11.1.0/24"));
    env.expect_routes(
        "local route blocks learning",
        &isb,
        &[
            (0, "lr1", vec![]),
            (1, "lr2", lr2.clone()),
            (1, "lr3", lr3_main),
        ],
    );

    // lr3 switches to rtb1: it learns az1's rtb1 rows and lr2's (same AZ, other router: lr-id,
    // L1), the two 10.11.1.0/24 next hops side by side (ECMP).
    set(
        &env,
        1,
        "Logical_Router_Port",
        "lr3-ts1",
        &["options:route_table=rtb1"],
    );
    let mut lr3 = vec![
        learned_line("10.11.1.0/24", n4, "rtb1", "static", from),
        learned_line("10.11.1.0/24", NH2_TS1.v4, "rtb1", "static", "az2/ts1"),
        learned_line("10.11.2.0/24", n4, "rtb1", "static", from) + oc,
        learned_line("192.168.1.1/24", n4, "", "connected", from),
        learned_line("192.168.1.1/24", n4, "rtb1", "connected", from) + oc,
    ];
    // lr3's port has no IPv6 network: the IPv6 next hop is not on-link (L5.9).
    env.expect_routes(
        "lr3 on rtb1",
        &isb,
        &[(0, "lr1", vec![]), (1, "lr2", lr2), (1, "lr3", lr3.clone())],
    );
    // ... and once it has one, it is.
    env.nbctl(
        1,
        &[
            "add",
            "Logical_Router_Port",
            "lr3-ts1",
            "networks",
            "\"2001:db8:100::3/64\"",
        ],
    );
    lr3.push(learned_line("2003:db8:1::/64", n6, "rtb1", "static", from));
    env.expect_routes("lr3 with IPv6", &isb, &[(1, "lr3", lr3)]);
}

// ------------------------------------------------------------------------------------------------
// Allow/deny prefix filters and tags (0.8, A.7.7, L2, L5.6, L5.7; tests "prefix filter --
// filtering routes", "prefix filter -- deny route adv", "route tag -- tagging and filtering")
// ------------------------------------------------------------------------------------------------

#[test]
fn route_sync_prefix_filters_and_tags() {
    let env = Env::start(our_ovn_ic(), &["az1", "az2", "az3"], true, &[]);
    env.add_ts("ts1");
    env.attach(
        0,
        "lr1",
        "ts1",
        "lr1-ts1",
        "aa:aa:aa:aa:aa:01",
        &["169.254.100.1/24", "2001:db8:100::1/64"],
    );
    env.add_lrp(
        0,
        "lr1",
        "lr1-int",
        "00:00:00:00:01:01",
        &["192.168.1.1/24", "2002:db8:1::1/64"],
    );
    for p in ["10.1.1.0/24", "10.1.2.0/24", "10.2.1.0/24", "10.3.0.0/16"] {
        env.add_route(0, &[], "lr1", p, "192.168.1.10");
    }
    for p in ["2003:db8:1::/64", "2003:db8:2::/64"] {
        env.add_route(0, &[], "lr1", p, "2002:db8:1::10");
    }
    // Advertiser: deny on the TS port beats the router's allow list; an invalid token is
    // skipped with a warning; allow tokens match their own family only.
    set(
        &env,
        0,
        "Logical_Router_Port",
        "lr1-ts1",
        &[
            "options:ic-route-deny-adv=\"10.2.0.0/16\"",
            "options:ic-route-tag=blue",
        ],
    );
    set(
        &env,
        0,
        "Logical_Router",
        "lr1",
        &["options:ic-route-filter-adv=\"10.1.0.0/16,10.2.0.0/16,10.3.0.0/16,192.168.0.0/16,2003:db8:1::/48,bogus\""],
    );

    env.attach(
        1,
        "lr2",
        "ts1",
        "lr2-ts1",
        "aa:aa:aa:aa:aa:02",
        &["169.254.100.2/24", "2001:db8:100::2/64"],
    );
    env.add_lrp(
        1,
        "lr2",
        "lr2-int",
        "00:00:00:00:02:01",
        &["192.168.2.1/24"],
    );
    env.add_route(1, &[], "lr2", "10.20.0.0/16", "192.168.2.10");
    env.add_route(1, &[], "lr2", "10.20.5.0/24", "192.168.2.10");
    set(
        &env,
        1,
        "Logical_Router_Port",
        "lr2-ts1",
        &["options:ic-route-filter-tag=blue"],
    );

    env.attach(
        2,
        "lr3",
        "ts1",
        "lr3-ts1",
        "aa:aa:aa:aa:aa:03",
        &["169.254.100.3/24", "2001:db8:100::3/64"],
    );
    env.add_lrp(
        2,
        "lr3",
        "lr3-int",
        "00:00:00:00:03:01",
        &["192.168.3.1/24"],
    );
    set(
        &env,
        2,
        "Logical_Router_Port",
        "lr3-ts1",
        &["options:ic-route-filter-learn=\"10.1.0.0/16,10.20.0.0/16,2003:db8::/32\""],
    );
    set(
        &env,
        2,
        "Logical_Router",
        "lr3",
        &["options:ic-route-deny-learn=\"10.1.2.0/24\""],
    );
    env.enable_routes();
    // The global deny list applies to both directions: az3 advertises nothing.
    env.set_options(2, &[("ic-route-denylist", "10.20.5.0/24,192.168.3.0/24")]);

    let (n4, n6) = (NH1_TS1.v4, NH1_TS1.v6);
    let az1 = |tag: &str| -> Vec<String> {
        [
            ("10.1.1.0/24", n4, "static", "route:10.1.1.0/24"),
            ("10.1.2.0/24", n4, "static", "route:10.1.2.0/24"),
            ("10.3.0.0/16", n4, "static", "route:10.3.0.0/16"),
            ("192.168.1.1/24", n4, "connected", "lrp:lr1-int"),
            ("2003:db8:1::/64", n6, "static", "route:2003:db8:1::/64"),
        ]
        .iter()
        .map(|(p, n, o, src)| {
            isb_line("ts1", "az1", p, n, o, "", src, "lr1") + &format!(" tag={tag}")
        })
        .collect()
    };
    let az2 = vec![
        isb_line(
            "ts1",
            "az2",
            "10.20.0.0/16",
            NH2_TS1.v4,
            "static",
            "",
            "route:10.20.0.0/16",
            "lr2",
        ),
        isb_line(
            "ts1",
            "az2",
            "10.20.5.0/24",
            NH2_TS1.v4,
            "static",
            "",
            "route:10.20.5.0/24",
            "lr2",
        ),
        isb_line(
            "ts1",
            "az2",
            "192.168.2.1/24",
            NH2_TS1.v4,
            "connected",
            "",
            "lrp:lr2-int",
            "lr2",
        ),
    ];
    let lr1 = learned(&[
        ("10.20.0.0/16", NH2_TS1.v4, "", "static", "az2/ts1"),
        ("10.20.5.0/24", NH2_TS1.v4, "", "static", "az2/ts1"),
        ("192.168.2.1/24", NH2_TS1.v4, "", "connected", "az2/ts1"),
    ]);
    let lr3 = learned(&[
        ("10.1.1.0/24", n4, "", "static", "az1/ts1"),
        ("2003:db8:1::/64", n6, "", "static", "az1/ts1"),
        ("10.20.0.0/16", NH2_TS1.v4, "", "static", "az2/ts1"),
    ]);
    let mut isb = az1("blue");
    isb.extend(az2.clone());
    env.expect_routes(
        "filters",
        &isb,
        &[
            (0, "lr1", lr1.clone()),
            (1, "lr2", vec![]),
            (2, "lr3", lr3.clone()),
        ],
    );
    assert!(
        env.ic_log_contains(
            0,
            "Bad prefix (ic-route-filter-adv) format: bogus. CIDR expected."
        ),
        "az1's log lacks the invalid-token warning:\n{}",
        env.ics[0].log_text()
    );

    // The tag filter removed: lr2 learns az1's routes. A new tag is rewritten in place.
    env.nbctl(
        1,
        &[
            "remove",
            "Logical_Router_Port",
            "lr2-ts1",
            "options",
            "ic-route-filter-tag",
        ],
    );
    set(
        &env,
        0,
        "Logical_Router_Port",
        "lr1-ts1",
        &["options:ic-route-tag=red"],
    );
    let lr2_all = learned(&[
        ("10.1.1.0/24", n4, "", "static", "az1/ts1"),
        ("10.1.2.0/24", n4, "", "static", "az1/ts1"),
        ("10.3.0.0/16", n4, "", "static", "az1/ts1"),
        ("192.168.1.1/24", n4, "", "connected", "az1/ts1"),
        ("2003:db8:1::/64", n6, "", "static", "az1/ts1"),
    ]);
    let mut isb = az1("red");
    isb.extend(az2.clone());
    env.expect_routes(
        "tag filter removed, tag red",
        &isb,
        &[(1, "lr2", lr2_all.clone()), (2, "lr3", lr3.clone())],
    );
    set(
        &env,
        1,
        "Logical_Router_Port",
        "lr2-ts1",
        &["options:ic-route-filter-tag=red"],
    );
    env.expect_routes("filter tag red", &isb, &[(1, "lr2", vec![])]);

    // No tag: the key is removed from the ISB rows.
    env.nbctl(
        0,
        &[
            "remove",
            "Logical_Router_Port",
            "lr1-ts1",
            "options",
            "ic-route-tag",
        ],
    );
    let mut isb: Vec<String> = az1("x")
        .into_iter()
        .map(|l| l.replace(" tag=x", ""))
        .collect();
    isb.extend(az2);
    env.expect_routes(
        "untagged",
        &isb,
        &[(0, "lr1", lr1), (1, "lr2", lr2_all), (2, "lr3", lr3)],
    );
}

// ------------------------------------------------------------------------------------------------
// Load-balancer VIPs (A.7.3, L5.3, L5.10; test "route sync -- loadbalancer")
// ------------------------------------------------------------------------------------------------

/// Inserts Load_Balancer `name` with `vips` (keys → backends) into AZ `az`'s NB and attaches it
/// to router `lr` directly, or through a new Load_Balancer_Group `group` when given.
fn add_lb(env: &Env, az: usize, lr: &str, name: &str, vips: &[(&str, &str)], group: Option<&str>) {
    let vips: Vec<serde_json::Value> = vips.iter().map(|(k, v)| json!([k, v])).collect();
    let mut ops = vec![
        json!({"op": "insert", "table": "Load_Balancer", "uuid-name": "lb",
                              "row": {"name": name, "protocol": "tcp", "vips": ["map", vips]}}),
    ];
    match group {
        None => ops.push(json!({"op": "mutate", "table": "Logical_Router",
                                "where": [["name", "==", lr]],
                                "mutations": [["load_balancer", "insert", ["named-uuid", "lb"]]]})),
        Some(g) => {
            ops.push(
                json!({"op": "insert", "table": "Load_Balancer_Group", "uuid-name": "g",
                            "row": {"name": g, "load_balancer": ["named-uuid", "lb"]}}),
            );
            ops.push(json!({"op": "mutate", "table": "Logical_Router",
                            "where": [["name", "==", lr]],
                            "mutations": [["load_balancer_group", "insert", ["named-uuid", "g"]]]}));
        }
    }
    env.nb(az)
        .transact(serde_json::Value::Array(ops))
        .expect("adding a load balancer");
}

#[test]
fn route_sync_load_balancer_vips() {
    if !env::isb_origin_allowed("loadbalancer") {
        eprintln!("skipping: the IC-SB schema in use has no Route.origin \"loadbalancer\"");
        return;
    }
    let env = Env::start(our_ovn_ic(), &["az1", "az2"], true, &[]);
    env.add_ts("ts1");
    env.attach(
        0,
        "lr1",
        "ts1",
        "lr1-ts1",
        "aa:aa:aa:aa:aa:01",
        &["169.254.100.1/24", "2001:db8:100::1/64"],
    );
    env.add_lrp(
        0,
        "lr1",
        "lr1-int",
        "00:00:00:00:01:01",
        &["192.168.1.1/24"],
    );
    env.add_route(0, &[], "lr1", "0.0.0.0/0", "192.168.1.10");
    env.add_route(0, &[], "lr1", "::/0", "2001:db8:100::10");
    // Two ports of one VIP collapse into one /32 row; IPv6 VIP → /128 via the IPv6 next hop;
    // LB groups count; a template VIP cannot be parsed and is skipped.
    add_lb(
        &env,
        0,
        "lr1",
        "lb1",
        &[
            ("200.1.1.53:80", "192.168.1.5:80"),
            ("200.1.1.53:8080", "192.168.1.5:8080"),
            ("[4242::1]:80", "[2002:db8:1::5]:80"),
            ("^VIP:80", "192.168.1.6:80"),
        ],
        None,
    );
    add_lb(
        &env,
        0,
        "lr1",
        "lb2",
        &[("200.1.1.54", "192.168.1.7")],
        Some("g1"),
    );
    env.attach(
        1,
        "lr2",
        "ts1",
        "lr2-ts1",
        "aa:aa:aa:aa:aa:02",
        &["169.254.100.2/24", "2001:db8:100::2/64"],
    );
    // A local VIP inside a learned prefix suppresses it, and any local IPv4 VIP suppresses the
    // IPv4 default route (L5.10), whatever the -lb options say.
    add_lb(
        &env,
        1,
        "lr2",
        "lb3",
        &[("200.1.1.54:80", "10.0.0.5:80")],
        None,
    );
    env.enable_routes();
    env.set_options(0, &[("ic-route-adv-default", "true")]);
    env.set_options(1, &[("ic-route-learn-default", "true")]);

    let (n4, n6) = (NH1_TS1.v4, NH1_TS1.v6);
    let base = vec![
        isb_line(
            "ts1",
            "az1",
            "192.168.1.1/24",
            n4,
            "connected",
            "",
            "lrp:lr1-int",
            "lr1",
        ),
        isb_line(
            "ts1",
            "az1",
            "0.0.0.0/0",
            n4,
            "static",
            "",
            "route:0.0.0.0/0",
            "lr1",
        ),
        isb_line("ts1", "az1", "::/0", n6, "static", "", "route:::/0", "lr1"),
    ];
    let base_learned = learned(&[
        ("192.168.1.1/24", n4, "", "connected", "az1/ts1"),
        ("::/0", n6, "", "static", "az1/ts1"),
    ]);
    env.expect_routes("no adv-lb", &base, &[(1, "lr2", base_learned.clone())]);

    env.set_options(0, &[("ic-route-adv-lb", "true")]);
    let mut isb = base.clone();
    isb.extend([
        isb_line(
            "ts1",
            "az1",
            "200.1.1.53/32",
            n4,
            "loadbalancer",
            "",
            "lb:lb1",
            "lr1",
        ),
        isb_line(
            "ts1",
            "az1",
            "4242::1/128",
            n6,
            "loadbalancer",
            "",
            "lb:lb1",
            "lr1",
        ),
        isb_line(
            "ts1",
            "az1",
            "200.1.1.54/32",
            n4,
            "loadbalancer",
            "",
            "lb:lb2",
            "lr1",
        ),
    ]);
    // Not learned without ic-route-learn-lb (L5.3).
    env.expect_routes("adv-lb", &isb, &[(1, "lr2", base_learned.clone())]);
    assert!(
        env.ic_log_contains(0, "Route ad: Parsing failed for lb vip ^VIP:80"),
        "az1's log lacks the template-VIP warning:\n{}",
        env.ics[0].log_text()
    );

    env.set_options(1, &[("ic-route-learn-lb", "true")]);
    let mut lr2 = base_learned.clone();
    lr2.extend(learned(&[
        ("200.1.1.53/32", n4, "", "loadbalancer", "az1/ts1"),
        ("4242::1/128", n6, "", "loadbalancer", "az1/ts1"),
    ]));
    env.expect_routes("learn-lb", &isb, &[(1, "lr2", lr2)]);

    env.set_options(0, &[("ic-route-adv-lb", "false")]);
    env.expect_routes("adv-lb off", &base, &[(1, "lr2", base_learned)]);
}

// ------------------------------------------------------------------------------------------------
// Discard routes, IPv4 over IPv6 next hops, several routers of one AZ, legacy and bad ISB rows
// (A.7.1, A.7.8, L1, L4, L5.9; tests "Advertise discard static routes", "IPv4 next hop over
// IPv6", "multiple logical routers", "Backward compatibility of learning routes in the same AZ")
// ------------------------------------------------------------------------------------------------

#[test]
fn route_sync_discard_v4_over_v6_same_az_and_legacy_rows() {
    let env = Env::start(our_ovn_ic(), &["az1", "az2"], true, &[]);
    env.add_ts("ts1");
    env.attach(
        0,
        "lr1",
        "ts1",
        "lr1-ts1",
        "aa:aa:aa:aa:aa:01",
        &["169.254.100.1/24", "2001:db8:100::1/64"],
    );
    env.add_lrp(
        0,
        "lr1",
        "lr1-int",
        "00:00:00:00:01:01",
        &["192.168.1.1/24"],
    );
    env.add_route(0, &[], "lr1", "10.99.0.0/16", "discard");
    env.attach(
        1,
        "lr2",
        "ts1",
        "lr2-ts1",
        "aa:aa:aa:aa:aa:02",
        &["169.254.100.2/24", "2001:db8:100::2/64"],
    );
    env.attach(
        1,
        "lr2b",
        "ts1",
        "lr2b-ts1",
        "aa:aa:aa:aa:aa:12",
        &["169.254.100.12/24", "2001:db8:100::12/64"],
    );
    env.add_route(1, &[], "lr2b", "10.23.0.0/16", "169.254.100.99");
    // Rows of an AZ without a daemon: one written by an old ovn-ic (no lr-id: learned, L1),
    // one with an unparseable lr-id (skipped, L1), one that does not parse (L4), one whose
    // next hop is not on-link (L5.9).
    let route = |prefix: &str, nh: &str, ext: serde_json::Value| {
        json!({"op": "insert", "table": "Route", "row": {
            "transit_switch": "ts1", "availability_zone": ["named-uuid", "az9"],
            "route_table": "", "ip_prefix": prefix, "nexthop": nh, "origin": "static",
            "external_ids": ["map", ext]}})
    };
    env.isb()
        .transact(json!([
            {"op": "insert", "table": "Availability_Zone", "uuid-name": "az9", "row": {"name": "az9"}},
            route("10.9.0.0/16", "169.254.100.9", json!([])),
            route("10.9.1.0/24", "169.254.100.9", json!([["lr-id", "not-a-uuid"]])),
            route("10.9.2.0/33", "169.254.100.9", json!([])),
            route("10.9.3.0/24", "169.254.99.9", json!([])),
        ]))
        .expect("inserting az9's routes");
    env.enable_routes();

    let legacy = vec![
        isb_line(
            "ts1",
            "az9",
            "10.9.0.0/16",
            "169.254.100.9",
            "static",
            "",
            "?",
            "-",
        ),
        isb_line(
            "ts1",
            "az9",
            "10.9.1.0/24",
            "169.254.100.9",
            "static",
            "",
            "?",
            "!not-a-uuid",
        ),
        isb_line(
            "ts1",
            "az9",
            "10.9.2.0/33",
            "169.254.100.9",
            "static",
            "",
            "?",
            "-",
        ),
        isb_line(
            "ts1",
            "az9",
            "10.9.3.0/24",
            "169.254.99.9",
            "static",
            "",
            "?",
            "-",
        ),
    ];
    let az9 = learned_line("10.9.0.0/16", "169.254.100.9", "", "static", "az9/ts1");
    let expect = |what: &str, nh1: &str| {
        let mut isb = legacy.clone();
        isb.extend([
            // `discard` static routes are advertised (93b5c9143).
            isb_line(
                "ts1",
                "az1",
                "10.99.0.0/16",
                nh1,
                "static",
                "",
                "route:10.99.0.0/16",
                "lr1",
            ),
            isb_line(
                "ts1",
                "az1",
                "192.168.1.1/24",
                nh1,
                "connected",
                "",
                "lrp:lr1-int",
                "lr1",
            ),
            isb_line(
                "ts1",
                "az2",
                "10.23.0.0/16",
                "169.254.100.12",
                "static",
                "",
                "route:10.23.0.0/16",
                "lr2b",
            ),
        ]);
        let from_az1 = learned(&[
            ("10.99.0.0/16", nh1, "", "static", "az1/ts1"),
            ("192.168.1.1/24", nh1, "", "connected", "az1/ts1"),
        ]);
        let lr2b_route = learned_line("10.23.0.0/16", "169.254.100.12", "", "static", "az2/ts1");
        let lr1 = vec![lr2b_route.clone(), az9.clone()];
        let mut lr2 = from_az1.clone();
        // Routers of one AZ learn each other's routes (lr-id, L1), never their own.
        lr2.extend([lr2b_route, az9.clone()]);
        let mut lr2b = from_az1;
        lr2b.push(az9.clone());
        env.expect_routes(
            what,
            &isb,
            &[(0, "lr1", lr1), (1, "lr2", lr2), (1, "lr2b", lr2b)],
        );
    };
    expect("discard, same AZ, legacy rows", NH1_TS1.v4);
    assert!(
        env.ic_log_contains(
            1,
            "Bad route format in IC-SB: 10.9.2.0/33 -> 169.254.100.9. Ignored."
        ),
        "az2's log lacks the bad-route warning:\n{}",
        env.ics[1].log_text()
    );

    // IPv4 prefixes advertised with the TS port's IPv6 address (A.7.8), learned as such.
    set(
        &env,
        0,
        "Logical_Router",
        "lr1",
        &["options:ic-route-ipv4-next-hop-ipv6=true"],
    );
    expect("IPv4 over IPv6", NH1_TS1.v6);
    // The port's own setting overrides the router's.
    set(
        &env,
        0,
        "Logical_Router_Port",
        "lr1-ts1",
        &["options:ic-route-ipv4-next-hop-ipv6=false"],
    );
    expect("port override false", NH1_TS1.v4);
}

// ------------------------------------------------------------------------------------------------
// Orphans and disabled routers (A.5, A.6, A.8 step 1, A.11.2-4; tests "Delete route lsp
// orphan", "Delete route lrp orphan", "Check loop with lsp orphan ...")
// ------------------------------------------------------------------------------------------------

#[test]
fn route_sync_orphans_and_disabled_router() {
    let env = Env::start(our_ovn_ic(), &["az1", "az2"], true, &[]);
    env.add_ts("ts1");
    let lr1_ts1 = ["169.254.100.1/24", "2001:db8:100::1/64"];
    env.attach(0, "lr1", "ts1", "lr1-ts1", "aa:aa:aa:aa:aa:01", &lr1_ts1);
    env.add_lrp(
        0,
        "lr1",
        "lr1-int",
        "00:00:00:00:01:01",
        &["192.168.1.1/24"],
    );
    env.add_route(0, &[], "lr1", "10.11.1.0/24", "192.168.1.10");
    env.attach(
        1,
        "lr2",
        "ts1",
        "lr2-ts1",
        "aa:aa:aa:aa:aa:02",
        &["169.254.100.2/24", "2001:db8:100::2/64"],
    );
    env.add_lrp(
        1,
        "lr2",
        "lr2-int",
        "00:00:00:00:02:01",
        &["192.168.2.1/24"],
    );
    env.enable_routes();

    let n4 = NH1_TS1.v4;
    let az1 = [
        isb_line(
            "ts1",
            "az1",
            "10.11.1.0/24",
            n4,
            "static",
            "",
            "route:10.11.1.0/24",
            "lr1",
        ),
        isb_line(
            "ts1",
            "az1",
            "192.168.1.1/24",
            n4,
            "connected",
            "",
            "lrp:lr1-int",
            "lr1",
        ),
    ];
    let az2 = vec![isb_line(
        "ts1",
        "az2",
        "192.168.2.1/24",
        NH2_TS1.v4,
        "connected",
        "",
        "lrp:lr2-int",
        "lr2",
    )];
    let lr1 = learned(&[("192.168.2.1/24", NH2_TS1.v4, "", "connected", "az2/ts1")]);
    let lr2 = learned(&[
        ("10.11.1.0/24", n4, "", "static", "az1/ts1"),
        ("192.168.1.1/24", n4, "", "connected", "az1/ts1"),
    ]);
    let all: Vec<String> = az1.iter().chain(&az2).cloned().collect();
    let full = |what: &str| {
        env.expect_routes(
            what,
            &all,
            &[(0, "lr1", lr1.clone()), (1, "lr2", lr2.clone())],
        );
    };
    let az1_gone = |what: &str, lr1_learned: Vec<String>| {
        env.expect_routes(what, &az2, &[(0, "lr1", lr1_learned), (1, "lr2", vec![])]);
    };
    full("initial");

    // Disabled router: its port loses its SB binding, so it neither advertises nor learns.
    set(&env, 0, "Logical_Router", "lr1", &["enabled=false"]);
    az1_gone("lr1 disabled", vec![]);
    set(&env, 0, "Logical_Router", "lr1", &["enabled=true"]);
    full("lr1 enabled again");

    // LRP deleted, LSP left ("lsp orphan"): the address is cleared, same effect.
    env.nbctl(0, &["lrp-del", "lr1-ts1"]);
    az1_gone("lsp orphan", vec![]);
    let mut args = vec!["lrp-add", "lr1", "lr1-ts1", "aa:aa:aa:aa:aa:01"];
    args.extend(lr1_ts1);
    env.nbctl(0, &args);
    full("LRP re-added");

    // LSP deleted, LRP left ("lrp orphan"): the ISB binding goes and with it az1's routes;
    // lr1 is no longer interconnected and keeps what it had learned (A.6 quirk).
    env.nbctl(0, &["lsp-del", "lsp-lr1-ts1"]);
    az1_gone("lrp orphan", lr1.clone());
    env.nbctl(
        0,
        &[
            "lsp-add",
            "ts1",
            "lsp-lr1-ts1",
            "--",
            "lsp-set-type",
            "lsp-lr1-ts1",
            "router",
            "--",
            "lsp-set-addresses",
            "lsp-lr1-ts1",
            "router",
            "--",
            "lsp-set-options",
            "lsp-lr1-ts1",
            "router-port=lr1-ts1",
        ],
    );
    full("LSP re-added");
}

// ------------------------------------------------------------------------------------------------
// SB Learned_Route (A.7.4, L5.11; tests "Check ovn-ic adv and learn from SB Learned Route",
// "... - hub and spoke mode")
// ------------------------------------------------------------------------------------------------

/// Marks router `lr`'s SB datapath with `nb_uuid` (what a current ovn-northd writes; Debian's
/// does not) and inserts an SB Learned_Route `prefix` on it via port `lrp`.
fn add_learned_route(env: &Env, az: usize, lr: &str, lrp: &str, prefix: &str) {
    let lr_uuid = env.nb_uuid(az, "Logical_Router", lr);
    let sb = env.sb(az).dump().expect("SB dump");
    let dp = common::rows(&sb, "Datapath_Binding")
        .iter()
        .find(|r| {
            env::key(r, "external_ids", "logical-router").as_deref() == Some(lr_uuid.as_str())
        })
        .map(env::uuid)
        .unwrap_or_else(|| panic!("no SB datapath for {lr}"));
    let pb = env::find(&sb, "Port_Binding", "logical_port", lrp)
        .map(env::uuid)
        .unwrap_or_else(|| panic!("no SB port binding {lrp}"));
    env.sb(az)
        .transact(json!([
            {"op": "update", "table": "Datapath_Binding", "where": [["_uuid", "==", ["uuid", dp]]],
             "row": {"nb_uuid": ["uuid", lr_uuid]}},
            {"op": "insert", "table": "Learned_Route", "row": {
                "datapath": ["uuid", dp], "logical_port": ["uuid", pb],
                "ip_prefix": prefix, "nexthop": "192.0.2.1"}},
        ]))
        .expect("inserting a Learned_Route");
}

#[test]
fn route_sync_sb_learned_routes() {
    if let Some(reason) = common::schema_lacks("ovn-sb", "Learned_Route", None)
        .or_else(|| common::schema_lacks("ovn-sb", "Datapath_Binding", Some("nb_uuid")))
    {
        eprintln!("skipping: {reason}");
        return;
    }
    if !env::isb_origin_allowed("connected-dynamic") {
        eprintln!("skipping: the IC-SB schema in use has no Route.origin \"connected-dynamic\"");
        return;
    }
    let env = Env::start(our_ovn_ic(), &["az1", "az2"], true, &[]);
    env.add_ts("ts1");
    env.attach(
        0,
        "lr1",
        "ts1",
        "lr1-ts1",
        "aa:aa:aa:aa:aa:01",
        &["169.254.100.1/24", "2001:db8:100::1/64"],
    );
    env.add_lrp(
        0,
        "lr1",
        "lr1-int",
        "00:00:00:00:01:01",
        &["192.168.1.1/24"],
    );
    env.attach(
        1,
        "lr2",
        "ts1",
        "lr2-ts1",
        "aa:aa:aa:aa:aa:02",
        &["169.254.100.2/24", "2001:db8:100::2/64"],
    );
    env.enable_routes();
    let n4 = NH1_TS1.v4;
    let connected = isb_line(
        "ts1",
        "az1",
        "192.168.1.1/24",
        n4,
        "connected",
        "",
        "lrp:lr1-int",
        "lr1",
    );
    env.expect_routes(
        "connected only",
        std::slice::from_ref(&connected),
        &[(
            1,
            "lr2",
            learned(&[("192.168.1.1/24", n4, "", "connected", "az1/ts1")]),
        )],
    );

    // Prefixes of SB Learned_Route are advertised as connected-dynamic with the router as
    // source, and learned with that origin (hub and spoke).
    env.wait_sb_port("lr1-ts1", 0);
    add_learned_route(&env, 0, "lr1", "lr1-ts1", "10.50.0.0/24");
    // A prefix the learner has in its own Learned_Route is not learned (L5.11); the learner
    // advertises it itself.
    env.wait_sb_port("lr2-ts1", 1);
    add_learned_route(&env, 1, "lr2", "lr2-ts1", "192.168.1.1/24");
    let isb = vec![
        connected,
        isb_line(
            "ts1",
            "az1",
            "10.50.0.0/24",
            n4,
            "connected-dynamic",
            "",
            "lr:lr1",
            "lr1",
        ),
        isb_line(
            "ts1",
            "az2",
            "192.168.1.1/24",
            NH2_TS1.v4,
            "connected-dynamic",
            "",
            "lr:lr2",
            "lr2",
        ),
    ];
    env.expect_routes(
        "Learned_Route",
        &isb,
        &[
            (
                0,
                "lr1",
                learned(&[(
                    "192.168.1.1/24",
                    NH2_TS1.v4,
                    "",
                    "connected-dynamic",
                    "az2/ts1",
                )]),
            ),
            (
                1,
                "lr2",
                learned(&[("10.50.0.0/24", n4, "", "connected-dynamic", "az1/ts1")]),
            ),
        ],
    );
}

// ------------------------------------------------------------------------------------------------
// Address_Set synchronisation (Part B; test "ovn-ic -- address-set sync")
// ------------------------------------------------------------------------------------------------

/// ISB sets as `"<name> <az> [a,b]"` and per AZ NB sets as `"<name> [a,b] learnt|local"`.
fn address_sets(env: &Env) -> anyhow::Result<(Vec<String>, Vec<Vec<String>>)> {
    let isb = env.isb().dump()?;
    let fmt = |r: &serde_json::Value| {
        let mut a = env::set(r, "addresses");
        a.sort();
        format!("{} [{}]", env::s(r, "name"), a.join(","))
    };
    let azs: std::collections::BTreeMap<String, String> = common::rows(&isb, "Availability_Zone")
        .iter()
        .map(|r| (env::uuid(r), env::s(r, "name")))
        .collect();
    let mut isb_lines: Vec<String> = common::rows(&isb, "Address_Set")
        .iter()
        .map(|r| {
            let line = fmt(r);
            let (name, addrs) = line.split_once(' ').unwrap_or_default();
            let az = azs
                .get(&env::s(r, "availability_zone"))
                .cloned()
                .unwrap_or_default();
            format!("{name} {az} {addrs}")
        })
        .collect();
    isb_lines.sort();
    let mut nbs = Vec::new();
    for az in 0..env.azs.len() {
        let nb = env.nb(az).dump()?;
        let mut lines: Vec<String> = common::rows(&nb, "Address_Set")
            .iter()
            .map(|r| {
                let kind = match env::key(r, "external_ids", "ic-learnt").as_deref() {
                    Some("true") => "learnt",
                    _ => "local",
                };
                format!("{} {kind}", fmt(r))
            })
            .collect();
        lines.sort();
        nbs.push(lines);
    }
    Ok((isb_lines, nbs))
}

fn expect_address_sets(env: &Env, what: &str, isb: &[&str], nbs: [&[&str]; 3]) {
    let want = (
        env::sorted(isb),
        nbs.iter().map(|l| env::sorted(l)).collect::<Vec<_>>(),
    );
    let mut last = None;
    let mut matched = 0;
    let ok = common::wait_until(env::WAIT, || {
        let got = address_sets(env).ok();
        if got.as_ref() == Some(&want) {
            matched += 1;
            std::thread::sleep(std::time::Duration::from_millis(300));
        } else {
            matched = 0;
        }
        last = got;
        matched >= 2
    });
    assert!(ok, "{what}: address sets\nwant {want:#?}\ngot  {last:#?}");
}

/// Inserts SB Address_Set `name` (what northd derives from NB), with `options:ic-adv=true` if
/// `adv`.
fn sb_address_set(env: &Env, az: usize, name: &str, addrs: &[&str], adv: bool) {
    let opts = if adv {
        json!([["ic-adv", "true"]])
    } else {
        json!([])
    };
    env.sb(az)
        .transact(json!([{"op": "insert", "table": "Address_Set", "row": {
            "name": name, "addresses": ["set", addrs], "options": ["map", opts]}}]))
        .expect("inserting an SB address set");
}

fn sb_update_address_set(env: &Env, az: usize, name: &str, row: serde_json::Value) {
    env.sb(az)
        .transact(json!([{"op": "update", "table": "Address_Set",
                          "where": [["name", "==", name]], "row": row}]))
        .expect("updating an SB address set");
}

#[test]
fn address_set_sync() {
    if let Some(reason) = common::schema_lacks("ovn-ic-sb", "Address_Set", None)
        .or_else(|| common::schema_lacks("ovn-sb", "Address_Set", Some("options")))
    {
        eprintln!("skipping: {reason}");
        return;
    }
    // No northd: the test writes the SB sets northd would derive from NB.
    let env = Env::start(our_ovn_ic(), &["az1", "az2", "az3"], false, &[]);
    for az in 0..3 {
        env.set_options(az, &[("ic-as-adv", "true"), ("ic-as-learn", "true")]);
    }
    sb_address_set(&env, 0, "as1", &["10.0.0.1", "10.0.0.2"], true);
    sb_address_set(&env, 0, "as-noadv", &["1.1.1.1"], false);
    // IPv6 members are copied verbatim, not re-formatted.
    sb_address_set(&env, 1, "as2", &["2001:0db8::1"], true);
    expect_address_sets(
        &env,
        "initial",
        &["as1 az1 [10.0.0.1,10.0.0.2]", "as2 az2 [2001:0db8::1]"],
        [
            &["as2 [2001:0db8::1] learnt"],
            &["as1 [10.0.0.1,10.0.0.2] learnt"],
            &[
                "as1 [10.0.0.1,10.0.0.2] learnt",
                "as2 [2001:0db8::1] learnt",
            ],
        ],
    );

    // Members added and removed propagate.
    sb_update_address_set(
        &env,
        0,
        "as1",
        json!({"addresses": ["set", ["10.0.0.2", "10.0.0.3"]]}),
    );
    // A set gets ic-adv: advertised.
    sb_update_address_set(
        &env,
        0,
        "as-noadv",
        json!({"options": ["map", [["ic-adv", "true"]]]}),
    );
    expect_address_sets(
        &env,
        "members changed, as-noadv advertised",
        &[
            "as-noadv az1 [1.1.1.1]",
            "as1 az1 [10.0.0.2,10.0.0.3]",
            "as2 az2 [2001:0db8::1]",
        ],
        [
            &["as2 [2001:0db8::1] learnt"],
            &[
                "as-noadv [1.1.1.1] learnt",
                "as1 [10.0.0.2,10.0.0.3] learnt",
            ],
            &[
                "as-noadv [1.1.1.1] learnt",
                "as1 [10.0.0.2,10.0.0.3] learnt",
                "as2 [2001:0db8::1] learnt",
            ],
        ],
    );

    // ic-adv=false withdraws the set and its remote copies.
    sb_update_address_set(
        &env,
        0,
        "as1",
        json!({"options": ["map", [["ic-adv", "false"]]]}),
    );
    let isb = ["as-noadv az1 [1.1.1.1]", "as2 az2 [2001:0db8::1]"];
    let nb1: &[&str] = &["as2 [2001:0db8::1] learnt"];
    let nb2: &[&str] = &["as-noadv [1.1.1.1] learnt"];
    let nb3: &[&str] = &["as-noadv [1.1.1.1] learnt", "as2 [2001:0db8::1] learnt"];
    expect_address_sets(&env, "as1 not advertised", &isb, [nb1, nb2, nb3]);

    // A local set always wins over a remote one of the same name (az1 keeps its own dup-as);
    // two advertisers of one name are merged for the third AZ.
    env.nb(0)
        .transact(json!([{"op": "insert", "table": "Address_Set",
                          "row": {"name": "dup-as", "addresses": ["set", ["9.9.9.9"]]}}]))
        .expect("local dup-as");
    let sets = [
        (1, "dup-as", "8.8.8.8"),
        (1, "shared-as", "10.2.2.2"),
        (2, "shared-as", "10.3.3.3"),
    ];
    // Local NB sets first (northd derives the SB ones from them), so no AZ learns a name it is
    // about to own locally.
    for (az, name, addr) in sets {
        env.nb(az)
            .transact(json!([{"op": "insert", "table": "Address_Set",
                              "row": {"name": name, "addresses": ["set", [addr]]}}]))
            .expect("local set");
    }
    for (az, name, addr) in sets {
        sb_address_set(&env, az, name, &[addr], true);
    }
    expect_address_sets(
        &env,
        "dup-as and shared-as",
        &[
            "as-noadv az1 [1.1.1.1]",
            "as2 az2 [2001:0db8::1]",
            "dup-as az2 [8.8.8.8]",
            "shared-as az2 [10.2.2.2]",
            "shared-as az3 [10.3.3.3]",
        ],
        [
            &[
                "as2 [2001:0db8::1] learnt",
                "dup-as [9.9.9.9] local",
                "shared-as [10.2.2.2,10.3.3.3] learnt",
            ],
            &[
                "as-noadv [1.1.1.1] learnt",
                "dup-as [8.8.8.8] local",
                "shared-as [10.2.2.2] local",
            ],
            &[
                "as-noadv [1.1.1.1] learnt",
                "as2 [2001:0db8::1] learnt",
                "dup-as [8.8.8.8] learnt",
                "shared-as [10.3.3.3] local",
            ],
        ],
    );
    sb_update_address_set(
        &env,
        2,
        "shared-as",
        json!({"addresses": ["set", ["10.3.3.4"]]}),
    );
    expect_address_sets(
        &env,
        "shared-as changed in az3",
        &[
            "as-noadv az1 [1.1.1.1]",
            "as2 az2 [2001:0db8::1]",
            "dup-as az2 [8.8.8.8]",
            "shared-as az2 [10.2.2.2]",
            "shared-as az3 [10.3.3.4]",
        ],
        [
            &[
                "as2 [2001:0db8::1] learnt",
                "dup-as [9.9.9.9] local",
                "shared-as [10.2.2.2,10.3.3.4] learnt",
            ],
            &[
                "as-noadv [1.1.1.1] learnt",
                "dup-as [8.8.8.8] local",
                "shared-as [10.2.2.2] local",
            ],
            &[
                "as-noadv [1.1.1.1] learnt",
                "as2 [2001:0db8::1] learnt",
                "dup-as [8.8.8.8] learnt",
                "shared-as [10.3.3.3] local",
            ],
        ],
    );
}

/// The NB_Global switches `ic-as-learn` / `ic-as-adv` turned off after sets were exchanged
/// (B.4 steps 3-4): learned sets and own ISB rows must go, and come back when switched on.
#[test]
fn address_set_sync_global_switches() {
    if let Some(reason) = common::schema_lacks("ovn-ic-sb", "Address_Set", None)
        .or_else(|| common::schema_lacks("ovn-sb", "Address_Set", Some("options")))
    {
        eprintln!("skipping: {reason}");
        return;
    }
    let env = Env::start(our_ovn_ic(), &["az1", "az2", "az3"], false, &[]);
    for az in 0..3 {
        env.set_options(az, &[("ic-as-adv", "true"), ("ic-as-learn", "true")]);
    }
    sb_address_set(&env, 0, "as1", &["10.0.0.1"], true);
    sb_address_set(&env, 1, "as2", &["10.0.0.2"], true);
    let isb = ["as1 az1 [10.0.0.1]", "as2 az2 [10.0.0.2]"];
    let nb1: &[&str] = &["as2 [10.0.0.2] learnt"];
    let nb2: &[&str] = &["as1 [10.0.0.1] learnt"];
    let nb3: &[&str] = &["as1 [10.0.0.1] learnt", "as2 [10.0.0.2] learnt"];
    expect_address_sets(&env, "initial", &isb, [nb1, nb2, nb3]);

    // Learning off deletes the learned sets; on again re-creates them.
    env.set_options(2, &[("ic-as-learn", "false")]);
    expect_address_sets(&env, "az3 learn off", &isb, [nb1, nb2, &[]]);
    env.set_options(2, &[("ic-as-learn", "true")]);
    expect_address_sets(&env, "az3 learn on", &isb, [nb1, nb2, nb3]);

    // Advertising off removes the AZ's rows and their remote copies.
    env.set_options(1, &[("ic-as-adv", "false")]);
    expect_address_sets(
        &env,
        "az2 adv off",
        &["as1 az1 [10.0.0.1]"],
        [&[], nb2, &["as1 [10.0.0.1] learnt"]],
    );
}
