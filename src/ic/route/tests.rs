//! Stage tests on plain data (spec ovn-ic-routes.md Part A).

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::advertise::{AdKey, AdSet, Candidate};
use super::parse::parse_cidr;
use super::*;
use crate::ic::testutil::{replica, u};
use crate::ic::Dbs;
use crate::ovsdb::overlay::{Intents, RowIntent};
use crate::ovsdb::replica::Replica;
use crate::ovsdb::Datum;

fn uu(n: u32) -> Uuid {
    u(n).parse().unwrap()
}

fn m(pairs: &[(&str, &str)]) -> Value {
    json!([
        "map",
        pairs.iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>()
    ])
}

fn set_uuids(ns: &[u32]) -> Value {
    json!([
        "set",
        ns.iter()
            .map(|n| json!(["uuid", u(*n)]))
            .collect::<Vec<_>>()
    ])
}

fn set_strs(ss: &[&str]) -> Value {
    json!(["set", ss])
}

/// The five replicas of az1.
struct Fx {
    nb: Replica,
    sb: Replica,
    icnb: Replica,
    icsb: Replica,
}

const AZ1: u32 = 50;
const AZ2: u32 = 51;
const LR1: u32 = 10;
const LRP_TS: u32 = 11;
const LRP_INT: u32 = 12;
const SR1: u32 = 20;
const PB1: u32 = 60;
const R_AZ2: u32 = 70;

/// NB/ICSB tables as JSON, adjustable per test before building the replicas.
struct Spec {
    nb: Value,
    icsb: Value,
    sb: Value,
}

fn spec() -> Spec {
    let nb = json!({
        "NB_Global": {u(1): {"name": "az1", "options": m(&[("ic-route-adv", "true"), ("ic-route-learn", "true")])}},
        "Logical_Router": {u(LR1): {"name": "lr1", "ports": set_uuids(&[LRP_TS, LRP_INT]), "static_routes": set_uuids(&[SR1])}},
        "Logical_Router_Port": {
            u(LRP_TS): {"name": "lrp-lr1-ts1", "mac": "aa:aa:aa:aa:aa:01", "networks": set_strs(&["169.254.100.1/24", "2001:db8:100::1/64"])},
            u(LRP_INT): {"name": "lrp-lr1-int", "mac": "aa:aa:aa:aa:aa:11", "networks": set_strs(&["192.168.1.1/24"])}
        },
        "Logical_Router_Static_Route": {
            u(SR1): {"ip_prefix": "10.11.0.0/16", "nexthop": "192.168.1.10"}
        },
        "Logical_Switch": {u(30): {"name": "ts1", "other_config": m(&[("interconn-ts", "ts1")]), "ports": set_uuids(&[31])}},
        "Logical_Switch_Port": {u(31): {"name": "lsp-ts1-lr1", "type": "router", "options": m(&[("router-port", "lrp-lr1-ts1")])}}
    });
    let icsb = json!({
        "Availability_Zone": {u(AZ1): {"name": "az1"}, u(AZ2): {"name": "az2"}},
        "Port_Binding": {u(PB1): {
            "availability_zone": ["uuid", u(AZ1)], "transit_switch": "ts1", "logical_port": "lsp-ts1-lr1",
            "address": "aa:aa:aa:aa:aa:01 169.254.100.1/24 2001:db8:100::1/64", "tunnel_key": 1,
            "external_ids": m(&[("router-id", &u(LR1))])
        }},
        "Route": {u(R_AZ2): {
            "availability_zone": ["uuid", u(AZ2)], "transit_switch": "ts1", "ip_prefix": "10.22.0.0/16",
            "nexthop": "169.254.100.2", "origin": "static", "route_table": "",
            "external_ids": m(&[("lr-id", &u(99)), ("nb-id", &u(98))])
        }}
    });
    Spec {
        nb,
        icsb,
        sb: json!({}),
    }
}

impl Spec {
    fn build(&self) -> Fx {
        Fx {
            nb: replica("ovn-nb", self.nb.clone()),
            sb: replica("ovn-sb", self.sb.clone()),
            icnb: replica(
                "ovn-ic-nb",
                json!({"Transit_Switch": {u(40): {"name": "ts1"}}}),
            ),
            icsb: replica("ovn-ic-sb", self.icsb.clone()),
        }
    }
    fn nb_global(&mut self, opts: &[(&str, &str)]) {
        self.nb["NB_Global"][u(1)]["options"] = m(opts);
    }
}

fn ctx() -> Ctx {
    Ctx {
        az: uu(AZ1),
        az_name: "az1".into(),
        isb_leader: false,
    }
}

impl Fx {
    fn dbs(&self) -> Dbs<'_> {
        Dbs {
            nb: &self.nb,
            sb: &self.sb,
            icnb: &self.icnb,
            icsb: &self.icsb,
            icsb_locked: &self.icsb,
        }
    }
    fn run(&self) -> Out {
        let mut out = Out::default();
        run(
            &Views::new(self.dbs()),
            &ctx(),
            &mut RouteState::default(),
            &mut out,
        );
        out
    }
    /// Run twice, the second time on top of the first run's writes: the second run must
    /// change nothing (steady state, no write loop).
    fn run_converges(&self) -> Out {
        let out = self.run();
        let views = Views::new(self.dbs()).with(&out);
        let mut out2 = Out::default();
        run(&views, &ctx(), &mut RouteState::default(), &mut out2);
        assert_eq!(
            real_changes(&views.icsb, &out2.icsb, "Route"),
            0,
            "ISB not stable"
        );
        assert_eq!(
            real_changes(&views.nb, &out2.nb, "Logical_Router_Static_Route"),
            0
        );
        assert_eq!(
            real_changes(&views.nb, &out2.nb, "Logical_Router"),
            0,
            "NB not stable"
        );
        out
    }
}

fn real_changes(view: &crate::ovsdb::overlay::View, i: &Intents, table: &str) -> usize {
    i.table(table)
        .filter(|(uuid, intent)| match intent {
            RowIntent::Insert(_) => true,
            RowIntent::Delete => view.get(table, **uuid).is_some(),
            RowIntent::Update(cols) => view
                .get(table, **uuid)
                .is_some_and(|r| cols.iter().any(|(c, d)| r.get(c) != d)),
        })
        .count()
        + i.edited(table)
            .filter(|(uuid, cols)| {
                view.get(table, **uuid).is_some_and(|r| {
                    cols.iter().any(|(c, e)| {
                        r.get(c)
                            .as_set()
                            .is_some_and(|cur| !e.toggles(cur).is_empty())
                    })
                })
            })
            .count()
}

/// LR1's `static_routes` once `out` is applied to the fixture (edits and whole values alike).
fn lr1_routes(f: &Fx, out: &Out) -> Vec<Uuid> {
    let v = Views::new(f.dbs()).with(out);
    let lr = v.nb.get("Logical_Router", uu(LR1)).expect("LR1");
    lr.get("static_routes").uuids().collect()
}

fn inserts(i: &Intents, table: &str) -> Vec<BTreeMap<String, Datum>> {
    i.table(table)
        .filter_map(|(_, x)| match x {
            RowIntent::Insert(c) => Some(c.clone()),
            _ => None,
        })
        .collect()
}

fn deletes(i: &Intents, table: &str) -> Vec<Uuid> {
    i.table(table)
        .filter(|(_, x)| matches!(x, RowIntent::Delete))
        .map(|(u, _)| *u)
        .collect()
}

fn s(c: &BTreeMap<String, Datum>, k: &str) -> String {
    c.get(k).and_then(|d| d.as_str()).unwrap_or("").to_string()
}

fn prefixes(out: &Out) -> Vec<String> {
    let mut v: Vec<String> = inserts(&out.icsb, "Route")
        .iter()
        .map(|c| {
            format!(
                "{} {} {} {}",
                s(c, "ip_prefix"),
                s(c, "nexthop"),
                s(c, "origin"),
                s(c, "route_table")
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn advertises_connected_and_static_with_ts_port_next_hop() {
    let out = spec().build().run_converges();
    assert_eq!(
        prefixes(&out),
        vec![
            "10.11.0.0/16 169.254.100.1 static ",
            "192.168.1.1/24 169.254.100.1 connected ",
        ]
    );
    let r = inserts(&out.icsb, "Route");
    let conn = r.iter().find(|c| s(c, "origin") == "connected").unwrap();
    assert_eq!(conn["transit_switch"], Datum::scalar("ts1"));
    assert_eq!(conn["availability_zone"], Datum::scalar(uu(AZ1)));
    assert_eq!(
        conn["external_ids"],
        Datum::smap([("lr-id", u(LR1)), ("nb-id", u(LRP_INT))])
    );
    assert!(!conn.contains_key("options"));
}

#[test]
fn learns_other_az_route_with_exact_columns() {
    let f = spec().build();
    let out = f.run_converges();
    let l = inserts(&out.nb, "Logical_Router_Static_Route");
    assert_eq!(l.len(), 1);
    assert_eq!(s(&l[0], "ip_prefix"), "10.22.0.0/16");
    assert_eq!(s(&l[0], "nexthop"), "169.254.100.2");
    assert_eq!(s(&l[0], "route_table"), "");
    assert_eq!(
        l[0]["external_ids"],
        Datum::smap([("ic-learned-route", u(R_AZ2))])
    );
    assert_eq!(l[0]["options"], Datum::smap([("origin", "static")]));
    assert_eq!(lr1_routes(&f, &out).len(), 2);
}

#[test]
fn switches_off_withdraw_and_unlearn() {
    let mut sp = spec();
    sp.nb_global(&[]);
    let out = sp.build().run();
    assert!(prefixes(&out).is_empty());
    assert!(inserts(&out.nb, "Logical_Router_Static_Route").is_empty());
    // Now with the routes in place: they are removed.
    let mut sp2 = spec();
    let on = sp2.build().run();
    sp2.nb_global(&[]);
    let f2 = sp2.build();
    let v2 = Views::new(f2.dbs()).with(&on);
    let mut off = Out::default();
    run(&v2, &ctx(), &mut RouteState::default(), &mut off);
    assert_eq!(deletes(&off.icsb, "Route").len(), 2);
    let after = Views::new(f2.dbs()).with(&on).with(&off);
    let lr = after.nb.get("Logical_Router", uu(LR1)).unwrap();
    assert_eq!(
        lr.get("static_routes").uuids().collect::<Vec<_>>(),
        vec![uu(SR1)]
    );
}

#[test]
fn src_ip_default_and_link_local_not_advertised() {
    let mut sp = spec();
    sp.nb["Logical_Router"][u(LR1)]["static_routes"] = set_uuids(&[SR1, 21, 22, 23]);
    let srs = sp.nb["Logical_Router_Static_Route"]
        .as_object_mut()
        .unwrap();
    srs.insert(
        u(21),
        json!({"ip_prefix": "10.99.0.0/16", "nexthop": "192.168.1.10", "policy": "src-ip"}),
    );
    srs.insert(
        u(22),
        json!({"ip_prefix": "0.0.0.0/0", "nexthop": "192.168.1.254"}),
    );
    srs.insert(
        u(23),
        json!({"ip_prefix": "169.254.9.0/24", "nexthop": "192.168.1.254"}),
    );
    let out = sp.build().run();
    assert_eq!(prefixes(&out).len(), 2);
    sp.nb_global(&[("ic-route-adv", "true"), ("ic-route-adv-default", "true")]);
    let out = sp.build().run();
    assert!(prefixes(&out).contains(&"0.0.0.0/0 169.254.100.1 static ".to_string()));
}

#[test]
fn deny_wins_over_allow_and_legacy_blacklist() {
    let mut sp = spec();
    sp.nb["Logical_Router"][u(LR1)]["options"] =
        m(&[("ic-route-filter-adv", "10.0.0.0/8,192.168.0.0/16")]);
    sp.nb_global(&[
        ("ic-route-adv", "true"),
        ("ic-route-blacklist", "10.11.0.0/16"),
    ]);
    assert_eq!(
        prefixes(&sp.build().run()),
        vec!["192.168.1.1/24 169.254.100.1 connected "]
    );
    // denylist present and non-empty replaces the blacklist
    sp.nb_global(&[
        ("ic-route-adv", "true"),
        ("ic-route-blacklist", "10.11.0.0/16"),
        ("ic-route-denylist", "192.168.0.0/16"),
    ]);
    assert_eq!(
        prefixes(&sp.build().run()),
        vec!["10.11.0.0/16 169.254.100.1 static "]
    );
    // allow list of one family blocks the other: only IPv4 allowed
    sp.nb["Logical_Router_Port"][u(LRP_INT)]["networks"] =
        set_strs(&["192.168.1.1/24", "2001:db8:1::1/64"]);
    sp.nb_global(&[("ic-route-adv", "true")]);
    assert_eq!(prefixes(&sp.build().run()).len(), 2);
}

#[test]
fn route_table_port_gets_table_copies() {
    let mut sp = spec();
    sp.nb["Logical_Router_Port"][u(LRP_TS)]["options"] = m(&[("route_table", "rtb1")]);
    sp.nb["Logical_Router"][u(LR1)]["static_routes"] = set_uuids(&[SR1, 21]);
    sp.nb["Logical_Router_Static_Route"][u(21)] = json!({"ip_prefix": "10.18.0.0/16", "nexthop": "192.168.1.10",
        "route_table": "rtb1", "options": m(&[("override-connected", "true")])});
    let f = sp.build();
    let out = f.run_converges();
    assert_eq!(
        prefixes(&out),
        vec![
            "10.18.0.0/16 169.254.100.1 static rtb1",
            "192.168.1.1/24 169.254.100.1 connected ",
            "192.168.1.1/24 169.254.100.1 connected rtb1",
        ]
    );
    if f.icsb.has_column("Route", "options") {
        let r = inserts(&out.icsb, "Route");
        let n = r
            .iter()
            .filter(|c| c.get("options") == Some(&Datum::smap([("override-connected", "true")])))
            .count();
        assert_eq!(n, 2);
    }
}

#[test]
fn learn_rules_l1_to_l5() {
    let base = spec();
    let learned = |sp: &Spec| inserts(&sp.build().run().nb, "Logical_Router_Static_Route").len();
    assert_eq!(learned(&base), 1);

    // L1: own router's row (lr-id) and own-AZ legacy rows are skipped; other-AZ legacy learned.
    let mut sp = spec();
    sp.icsb["Route"][u(R_AZ2)]["external_ids"] = m(&[("lr-id", &u(LR1))]);
    assert_eq!(learned(&sp), 0);
    sp.icsb["Route"][u(R_AZ2)]["external_ids"] = m(&[]);
    assert_eq!(learned(&sp), 1);
    sp.icsb["Route"][u(R_AZ2)]["availability_zone"] = json!(["uuid", u(AZ1)]);
    assert_eq!(learned(&sp), 0);

    // L2: tag filter.
    let mut sp = spec();
    sp.icsb["Route"][u(R_AZ2)]["external_ids"] = m(&[("lr-id", &u(99)), ("ic-route-tag", "vpc1")]);
    assert_eq!(learned(&sp), 1);
    sp.nb["Logical_Router_Port"][u(LRP_TS)]["options"] = m(&[("ic-route-filter-tag", "vpc1")]);
    assert_eq!(learned(&sp), 0);

    // L3: another table is ignored.
    let mut sp = spec();
    sp.icsb["Route"][u(R_AZ2)]["route_table"] = json!("rtb9");
    assert_eq!(learned(&sp), 0);

    // L4: link-local next hop.
    let mut sp = spec();
    sp.icsb["Route"][u(R_AZ2)]["ip_prefix"] = json!("2001:db8:9::/64");
    sp.icsb["Route"][u(R_AZ2)]["nexthop"] = json!("fe80::2");
    assert_eq!(learned(&sp), 0);

    // L5.2 default route, L5.4 disabled router, L5.9 off-link next hop.
    let mut sp = spec();
    sp.icsb["Route"][u(R_AZ2)]["ip_prefix"] = json!("0.0.0.0/0");
    assert_eq!(learned(&sp), 0);
    sp.nb_global(&[
        ("ic-route-learn", "true"),
        ("ic-route-learn-default", "true"),
    ]);
    assert_eq!(learned(&sp), 1);
    sp.nb["Logical_Router"][u(LR1)]["enabled"] = json!(false);
    assert_eq!(learned(&sp), 0);
    let mut sp = spec();
    sp.icsb["Route"][u(R_AZ2)]["nexthop"] = json!("169.254.101.2");
    assert_eq!(learned(&sp), 0);

    // L5.8 local static route: exact string match only.
    let mut sp = spec();
    sp.nb["Logical_Router_Static_Route"][u(SR1)]["ip_prefix"] = json!("10.22.0.0/16");
    assert_eq!(learned(&sp), 0);
    sp.nb["Logical_Router_Static_Route"][u(SR1)]["ip_prefix"] = json!("10.22.0.1/16");
    assert_eq!(learned(&sp), 1);

    // L5.6 / L5.7 learn deny and allow lists.
    let mut sp = spec();
    sp.nb["Logical_Router"][u(LR1)]["options"] = m(&[("ic-route-filter-learn", "192.168.0.0/16")]);
    assert_eq!(learned(&sp), 0);
    sp.nb["Logical_Router"][u(LR1)]["options"] = m(&[("ic-route-deny-learn", "10.0.0.0/8")]);
    assert_eq!(learned(&sp), 0);
}

#[test]
fn next_hop_on_the_learners_own_address_is_not_learned() {
    let learned = |sp: &Spec| inserts(&sp.build().run().nb, "Logical_Router_Static_Route").len();
    let mut sp = spec();
    assert_eq!(learned(&sp), 1);
    // Another AZ's router uses LR1's own TS port address: learning would loop to ourselves.
    sp.icsb["Route"][u(R_AZ2)]["nexthop"] = json!("169.254.100.1");
    assert_eq!(learned(&sp), 0);
}

#[test]
fn local_vip_suppresses_learning_and_lb_routes_need_learn_lb() {
    let mut sp = spec();
    sp.nb["Load_Balancer"] =
        json!({u(80): {"name": "lb", "vips": m(&[("10.22.5.5:80", "1.1.1.1:80")])}});
    sp.nb["Logical_Router"][u(LR1)]["load_balancer"] = set_uuids(&[80]);
    let out = sp.build().run();
    assert!(inserts(&out.nb, "Logical_Router_Static_Route").is_empty());
    // VIPs advertised only with ic-route-adv-lb.
    assert!(!prefixes(&out).iter().any(|p| p.contains("loadbalancer")));
    sp.nb_global(&[("ic-route-adv", "true"), ("ic-route-adv-lb", "true")]);
    let f = sp.build();
    let out = f.run();
    let lb_supported = f
        .icsb
        .schema()
        .and_then(|s| s.tables.get("Route"))
        .and_then(|t| t.column("origin"))
        .and_then(|c| c.ty.key.enum_values.as_ref())
        .is_none_or(|e| e.contains(&Atom::from("loadbalancer")));
    assert_eq!(
        prefixes(&out).contains(&"10.22.5.5/32 169.254.100.1 loadbalancer ".to_string()),
        lb_supported
    );
}

#[test]
fn orphan_and_stale_routes_deleted() {
    let mut sp = spec();
    let own = |ts: &str, nh: &str, p: &str| {
        json!({
            "availability_zone": ["uuid", u(AZ1)], "transit_switch": ts, "ip_prefix": p,
            "nexthop": nh, "origin": "static", "route_table": "",
            "external_ids": m(&[("lr-id", &u(LR1)), ("nb-id", &u(SR1))])
        })
    };
    let r = sp.icsb["Route"].as_object_mut().unwrap();
    r.insert(u(71), own("ts2", "169.254.100.1", "10.11.0.0/16")); // TS gone
    r.insert(u(72), own("ts1", "169.254.100.9", "10.11.0.0/16")); // next hop not owned
    r.insert(u(73), own("ts1", "169.254.100.1", "10.77.0.0/16")); // not a candidate
    r.insert(u(74), own("ts1", "169.254.100.1", "10.11.0.0/16")); // kept
    let out = sp.build().run_converges();
    let mut d = deletes(&out.icsb, "Route");
    d.sort();
    assert_eq!(d, vec![uu(71), uu(72), uu(73)]);
    assert_eq!(
        prefixes(&out),
        vec!["192.168.1.1/24 169.254.100.1 connected "]
    );
}

#[test]
fn learned_routes_reconciled_by_key_and_duplicates_detached() {
    let mut sp = spec();
    sp.nb["Logical_Router"][u(LR1)]["static_routes"] = set_uuids(&[SR1, 21, 22, 23, 24]);
    let learned = |isb: u32, p: &str| {
        json!({"ip_prefix": p, "nexthop": "169.254.100.2",
        "external_ids": m(&[("ic-learned-route", &u(isb))]), "options": m(&[("origin", "static")])})
    };
    let srs = sp.nb["Logical_Router_Static_Route"]
        .as_object_mut()
        .unwrap();
    srs.insert(u(21), learned(R_AZ2, "10.22.0.0/16"));
    srs.insert(u(22), learned(R_AZ2, "10.22.0.0/16")); // exact duplicate
    srs.insert(u(23), learned(777, "10.33.0.0/16")); // no such ISB row
    srs.insert(u(24), learned(R_AZ2, "bad")); // unparseable
    let f = sp.build();
    let out = f.run_converges();
    assert!(inserts(&out.nb, "Logical_Router_Static_Route").is_empty());
    let left = lr1_routes(&f, &out);
    assert_eq!(left.len(), 2);
    assert!(left.contains(&uu(SR1)));
    assert!(left.contains(&uu(21)) || left.contains(&uu(22)));
    // learned routes are never advertised
    assert!(!prefixes(&out).iter().any(|p| p.starts_with("10.22.")));
}

#[test]
fn two_ports_on_one_ts_learn_once() {
    let mut sp = spec();
    sp.nb["Logical_Router"][u(LR1)]["ports"] = set_uuids(&[LRP_TS, LRP_INT, 13]);
    sp.nb["Logical_Router_Port"][u(13)] = json!({"name": "lrp-lr1-ts1b", "mac": "aa:aa:aa:aa:aa:02",
        "networks": set_strs(&["169.254.100.3/24"])});
    sp.nb["Logical_Switch"][u(30)]["ports"] = set_uuids(&[31, 32]);
    sp.nb["Logical_Switch_Port"][u(32)] = json!({"name": "lsp-ts1-lr1b", "type": "router",
        "options": m(&[("router-port", "lrp-lr1-ts1b")])});
    sp.icsb["Port_Binding"][u(61)] = json!({"availability_zone": ["uuid", u(AZ1)], "transit_switch": "ts1",
        "logical_port": "lsp-ts1-lr1b", "address": "aa:aa:aa:aa:aa:02 169.254.100.3/24", "tunnel_key": 2,
        "external_ids": m(&[("router-id", &u(LR1))])});
    let out = sp.build().run_converges();
    assert_eq!(inserts(&out.nb, "Logical_Router_Static_Route").len(), 1);
    // the connected network is advertised through both ports' addresses
    assert_eq!(
        prefixes(&out)
            .iter()
            .filter(|p| p.starts_with("192.168.1.1/24"))
            .count(),
        2
    );
}

#[test]
fn ipv6_prefix_without_ipv6_port_address_is_stable() {
    let mut sp = spec();
    sp.icsb["Port_Binding"][u(PB1)]["address"] = json!("aa:aa:aa:aa:aa:01 169.254.100.1/24");
    sp.nb["Logical_Router_Port"][u(LRP_INT)]["networks"] = set_strs(&["2001:db8:1::1/64"]);
    let out = sp.build().run_converges();
    assert!(prefixes(&out)
        .contains(&"2001:db8:1::1/64 fe80::a8aa:aaff:feaa:aa01 connected ".to_string()));
}

#[test]
fn ipv4_next_hop_over_ipv6_option() {
    let mut sp = spec();
    sp.nb["Logical_Router"][u(LR1)]["options"] = m(&[("ic-route-ipv4-next-hop-ipv6", "true")]);
    assert!(
        prefixes(&sp.build().run()).contains(&"10.11.0.0/16 2001:db8:100::1 static ".to_string())
    );
    sp.nb["Logical_Router_Port"][u(LRP_TS)]["options"] =
        m(&[("ic-route-ipv4-next-hop-ipv6", "false")]);
    assert!(prefixes(&sp.build().run()).contains(&"10.11.0.0/16 169.254.100.1 static ".to_string()));
    sp.nb["Logical_Router"][u(LR1)]["options"] = m(&[]);
    sp.nb["Logical_Router_Port"][u(LRP_TS)]["options"] =
        m(&[("ic-route-ipv4-next-hop-ipv6", "true")]);
    assert!(
        prefixes(&sp.build().run()).contains(&"10.11.0.0/16 2001:db8:100::1 static ".to_string())
    );
}

#[test]
fn sb_learned_routes_advertised_as_connected_dynamic() {
    let mut sp = spec();
    sp.sb = json!({
        "Datapath_Binding": {u(90): {"tunnel_key": 5, "nb_uuid": ["uuid", u(LR1)]}},
        "Port_Binding": {u(91): {"logical_port": "x", "datapath": ["uuid", u(90)], "tunnel_key": 1}},
        "Learned_Route": {u(92): {"datapath": ["uuid", u(90)], "logical_port": ["uuid", u(91)],
            "ip_prefix": "10.22.0.0/16", "nexthop": "1.1.1.1"}}
    });
    let probe = replica("ovn-sb", json!({}));
    if !probe.has_table("Learned_Route") || !probe.has_column("Datapath_Binding", "nb_uuid") {
        return; // older SB schema: feature absent (§E.2)
    }
    let out = sp.build().run();
    assert!(prefixes(&out).contains(&"10.22.0.0/16 169.254.100.1 connected-dynamic ".to_string()));
    // L5.11: the same prefix is not learned.
    assert!(inserts(&out.nb, "Logical_Router_Static_Route").is_empty());
}

fn cand(p: &str, origin: &str, oc: bool, nb: u32) -> Candidate {
    let (a, plen) = parse_cidr(p).unwrap();
    Candidate {
        key: AdKey {
            prefix: a,
            plen,
            nexthop: parse::parse_ip("169.254.100.1").unwrap(),
            origin: origin.into(),
            route_table: String::new(),
            override_connected: oc,
        },
        nb_id: uu(nb),
        lr_id: uu(LR1),
        tag: String::new(),
        kind: "route",
    }
}

#[test]
fn adset_suppresses_duplicates_and_index_collisions() {
    let mut s = AdSet::default();
    assert!(s.add(cand("10.0.0.0/24", "connected", false, 1)));
    assert!(!s.add(cand("10.0.0.0/24", "connected", false, 2)));
    // same index tuple, better origin: replaces
    assert!(s.add(cand("10.0.0.0/24", "static", false, 3)));
    assert_eq!(s.len(), 1);
    assert_eq!(s.by_key.values().next().unwrap().nb_id, uu(3));
    // worse origin: dropped
    assert!(!s.add(cand("10.0.0.0/24", "loadbalancer", false, 4)));
    // host bits make a different prefix
    assert!(s.add(cand("10.0.0.1/24", "connected", false, 5)));
    assert_eq!(s.len(), 2);
}
