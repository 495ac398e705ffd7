//! Proof that the service monitor change handlers write what a full run writes.
//!
//! A random world of monitors northd pushes to other AZs, monitors other AZs push to this one,
//! local monitors holding the same SB index tuple, port bindings coming up, going down and
//! moving between chassis, chassis renamed or deleted, statuses changing on both sides, and
//! "bad" rows (pushes to the own AZ, types IC-SB does not accept, own IC-SB rows deleted by
//! hand), is driven through seeded random changes. After each batch of changes the handlers
//! run as the graph calls them (and, like the graph, on what the port-binding stage writes);
//! their real writes must equal a full run's; the writes then come back and must map to keys
//! whose scoped run wants nothing.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

use super::*;
use crate::ic::az::test_incr::{self, check_step, converge, Stage, World};
use crate::ic::testutil::{empty, replica, u};
use crate::ovsdb::replica::Replica;

const MAC: &str = "0a:00:00:00:00:01";
const PORTS: [&str; 4] = ["lp0", "lp1", "lp2", "lp3"];
const IPS: [&str; 2] = ["10.0.0.5", "10.0.0.6"];
const CHASSIS: [u32; 2] = [0xc1, 0xc2];

fn uu(n: u32) -> Uuid {
    u(n).parse().expect("fixture uuid")
}

fn ctx() -> Ctx {
    Ctx {
        az: uu(0xa1),
        az_name: "az1".into(),
        isb_leader: false,
    }
}

fn supported_schemas() -> bool {
    let ok = empty("ovn-ic-sb").has_table(TABLE)
        && empty("ovn-sb").has_column(TABLE, "remote")
        && empty("ovn-sb").has_column(TABLE, "ic_learned");
    if !ok {
        eprintln!("skipping: schemas without IC-SB Service_Monitor / SB remote, ic_learned");
    }
    ok
}

/// The stage, plus what the port-binding stage wants this run (fed through `keys_for_stage`
/// and read through the views, as the graph does).
struct Sm {
    upstream: Out,
}

impl Stage for Sm {
    fn full(&self, w: &World) -> Out {
        let mut out = Out::default();
        run(&w.views().with(&self.upstream), &ctx(), &mut out);
        out
    }
    fn incremental(&self, w: &World) -> Result<Out, Unhandled> {
        let base = w.views();
        let v = base.with(&self.upstream);
        let mut out = Out::default();
        let keys = keys_for_stage(&v, &ctx(), &self.upstream)?;
        if !keys.is_empty() {
            run_scoped(&v, &ctx(), &keys, &mut out)?;
        }
        for (t, table) in w.changed() {
            let keys = keys_for_table(&v, &ctx(), t, &table, &w.replica(t).changes(&table))?;
            if !keys.is_empty() {
                run_scoped(&v, &ctx(), &keys, &mut out)?;
            }
        }
        Ok(out)
    }
}

/// The stage when the port-binding stage wants nothing.
fn alone() -> Sm {
    Sm {
        upstream: Out::default(),
    }
}

fn world() -> World {
    let chassis: serde_json::Map<String, serde_json::Value> = CHASSIS
        .iter()
        .map(|c| (u(*c), json!({"name": format!("ch{c:x}"), "hostname": ""})))
        .collect();
    World {
        nb: replica("ovn-nb", json!({})),
        sb: replica(
            "ovn-sb",
            json!({
                "SB_Global": {u(1): {"options": ["map", [["svc_monitor_mac", MAC]]]}},
                "Chassis": chassis,
            }),
        ),
        icnb: replica("ovn-ic-nb", json!({})),
        icsb: replica("ovn-ic-sb", json!({})),
    }
}

fn pick<T: Copy>(rng: &mut StdRng, xs: &[T]) -> T {
    xs[rng.gen_range(0..xs.len())]
}

fn status(rng: &mut StdRng) -> Datum {
    match rng.gen_range(0..4) {
        0 => Datum::empty_set(),
        1 => Datum::scalar("online"),
        2 => Datum::scalar("offline"),
        _ => Datum::scalar("error"),
    }
}

/// A random monitor key as columns: (type, ip, port, protocol, logical_port, src_ip).
fn key_cols(rng: &mut StdRng) -> Vec<(&'static str, Datum)> {
    let ty = match rng.gen_range(0..8) {
        0 => Datum::empty_set(),
        1 => Datum::scalar("network-function"),
        _ => Datum::scalar("load-balancer"),
    };
    vec![
        ("type", ty),
        ("ip", Datum::scalar(pick(rng, &IPS))),
        ("port", Datum::scalar(pick(rng, &[80i64, 443]))),
        ("protocol", Datum::scalar(pick(rng, &["tcp", "udp"]))),
        ("logical_port", Datum::scalar(pick(rng, &PORTS))),
        (
            "src_ip",
            Datum::scalar(pick(rng, &["10.0.0.254", "10.0.0.253"])),
        ),
    ]
}

fn opts(rng: &mut StdRng, az: &str) -> Datum {
    Datum::smap([
        ("az-name", az.to_string()),
        ("interval", rng.gen_range(1..4).to_string()),
    ])
}

/// The SB monitor holding the unique-index tuple of `cols`, if any.
fn sb_with_tuple(sb: &Replica, cols: &[(&str, Datum)]) -> Option<Uuid> {
    let get = |k: &str| cols.iter().find(|(c, _)| *c == k).map(|(_, d)| d.clone());
    sb.iter(TABLE)
        .find(|r| {
            ["logical_port", "ip", "port", "protocol"]
                .iter()
                .all(|c| Some(r.get(c).clone()) == get(c))
        })
        .map(|r| r.uuid())
}

fn some_row(rp: &Replica, table: &str, rng: &mut StdRng, f: impl Fn(&Row) -> bool) -> Option<Uuid> {
    let v: Vec<Uuid> = rp.iter(table).filter(|r| f(r)).map(|r| r.uuid()).collect();
    (!v.is_empty()).then(|| pick(rng, &v))
}

/// One random change by someone else (northd, ovn-controller, another AZ, an admin); the
/// port-binding stage's writes of the coming run go to `upstream`.
fn random_edit(w: &mut World, rng: &mut StdRng, upstream: &mut Out) -> String {
    let mut i = Intents::new();
    let (t, what) = match rng.gen_range(0..12) {
        0..=2 => {
            // northd pushes a monitor to another AZ (or, badly, to this one).
            let mut cols = key_cols(rng);
            let az = pick(rng, &["az2", "az2", "az3", "az1"]);
            match sb_with_tuple(&w.sb, &cols) {
                Some(x) => i.update(TABLE, x, vec![("options", opts(rng, az))]),
                None => {
                    cols.extend([
                        ("remote", Datum::scalar(true)),
                        ("options", opts(rng, az)),
                        ("status", status(rng)),
                    ]);
                    i.insert(TABLE, cols);
                }
            }
            (Target::Sb, format!("northd pushes to {az}"))
        }
        3 => {
            // northd removes a monitor, or adds a local one on some tuple.
            if rng.gen_bool(0.5) {
                let Some(x) = some_row(&w.sb, TABLE, rng, |r| r.bool("ic_learned") != Some(true))
                else {
                    return "no sb monitor".into();
                };
                i.delete(TABLE, x);
            } else {
                let cols = key_cols(rng);
                if sb_with_tuple(&w.sb, &cols).is_some() {
                    return "tuple taken".into();
                }
                i.insert(TABLE, cols);
            }
            (Target::Sb, "northd local monitor".into())
        }
        4 | 5 => {
            // Another AZ pushes a monitor to us (or changes its options or status).
            let src = pick(rng, &["az2", "az3"]);
            let mut cols = key_cols(rng);
            let same = w.icsb.iter(TABLE).find(|r| {
                r.str("source_availability_zone") == src
                    && r.str("target_availability_zone") == "az1"
                    && cols.iter().all(|(c, d)| r.get(c) == d)
            });
            match same.map(|r| r.uuid()) {
                Some(x) if rng.gen_bool(0.5) => i.delete(TABLE, x),
                Some(x) => i.update(
                    TABLE,
                    x,
                    vec![("options", opts(rng, "az1")), ("status", status(rng))],
                ),
                None => {
                    cols.extend([
                        ("src_mac", Datum::scalar("0a:00:00:00:00:02")),
                        ("source_availability_zone", Datum::scalar(src)),
                        ("target_availability_zone", Datum::scalar("az1")),
                        ("options", opts(rng, "az1")),
                    ]);
                    i.insert(TABLE, cols);
                }
            }
            (Target::IcSb, format!("{src} pushes to az1"))
        }
        6 => {
            // The target AZ reports a status on our row; or an own row deleted by hand.
            let Some(x) = some_row(&w.icsb, TABLE, rng, |r| {
                r.str("source_availability_zone") == "az1"
            }) else {
                return "no own isb row".into();
            };
            if rng.gen_bool(0.7) {
                i.update(TABLE, x, vec![("status", status(rng))]);
            } else {
                i.delete(TABLE, x);
            }
            (Target::IcSb, "target side touches our row".into())
        }
        7 => {
            // ovn-controller probes a monitor.
            let Some(x) = some_row(&w.sb, TABLE, rng, |_| true) else {
                return "no sb monitor".into();
            };
            i.update(TABLE, x, vec![("status", status(rng))]);
            (Target::Sb, "status probed".into())
        }
        8 | 9 => {
            // A port binding created, coming up or down, or moving.
            let lp = pick(rng, &PORTS);
            let up = match rng.gen_range(0..3) {
                0 => Datum::empty_set(),
                1 => Datum::scalar(false),
                _ => Datum::scalar(true),
            };
            let ch = if rng.gen_bool(0.7) {
                Datum::scalar(uu(pick(rng, &CHASSIS)))
            } else {
                Datum::empty_set()
            };
            let existing = w.sb.find_by_str("Port_Binding", "logical_port", lp);
            match existing.map(|r| r.uuid()) {
                // The port-binding stage moves it in the coming run.
                Some(x) if rng.gen_bool(0.5) => {
                    upstream.sb.update("Port_Binding", x, vec![("chassis", ch)]);
                    return format!("port binding {lp} moved by the port-binding stage");
                }
                Some(x) if rng.gen_bool(0.2) => i.delete("Port_Binding", x),
                Some(x) => i.update("Port_Binding", x, vec![("up", up), ("chassis", ch)]),
                None => {
                    i.insert(
                        "Port_Binding",
                        vec![
                            ("logical_port", Datum::scalar(lp)),
                            ("up", up),
                            ("chassis", ch),
                            ("tunnel_key", Datum::scalar(rng.gen_range(1..1000i64))),
                        ],
                    );
                }
            }
            (Target::Sb, format!("port binding {lp} changed"))
        }
        10 => {
            // A chassis renamed, or deleted (the server clears the weak references).
            let c = uu(pick(rng, &CHASSIS));
            if w.sb.get("Chassis", c).is_none() {
                let mut i = Intents::new();
                let n = i.insert("Chassis", vec![("name", Datum::scalar("new"))]);
                test_incr::commit(&mut w.sb, &i);
                return format!("chassis {n} added");
            }
            if rng.gen_bool(0.6) {
                let name = format!("ch-{}", rng.gen_range(0..99));
                i.update("Chassis", c, vec![("name", Datum::scalar(name.as_str()))]);
            } else {
                i.delete("Chassis", c);
                for pb in w.sb.iter("Port_Binding") {
                    if pb.uuid_of("chassis") == Some(c) {
                        i.update(
                            "Port_Binding",
                            pb.uuid(),
                            vec![("chassis", Datum::empty_set())],
                        );
                    }
                }
            }
            (Target::Sb, format!("chassis {c} renamed or deleted"))
        }
        _ => {
            // Something the stage does not read.
            let g = uu(1);
            i.update(
                "SB_Global",
                g,
                vec![(
                    "options",
                    Datum::smap([
                        ("svc_monitor_mac", MAC.to_string()),
                        ("x", rng.gen_range(0..99).to_string()),
                    ]),
                )],
            );
            (Target::Sb, "SB_Global other option".into())
        }
    };
    test_incr::commit(w.replica_mut(t), &i);
    what
}

#[test]
fn scoped_run_equals_full_run_on_random_service_monitor_changes() {
    if !supported_schemas() {
        return;
    }
    let mut total = 0;
    for seed in 0..12u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut w = world();
        let mut ignored = Out::default();
        for _ in 0..10 {
            random_edit(&mut w, &mut rng, &mut ignored);
        }
        test_incr::commit(&mut w.sb, &ignored.sb);
        converge(&mut w, &alone());
        let mut wrote = 0;
        for step in 0..30 {
            let mut upstream = Out::default();
            let mut what = random_edit(&mut w, &mut rng, &mut upstream);
            while rng.gen_bool(0.3) {
                what = format!("{what}; {}", random_edit(&mut w, &mut rng, &mut upstream));
            }
            let what = format!("seed {seed} step {step}: {what}");
            // The run with the port-binding stage's writes: handled like the graph does.
            let sm = Sm { upstream };
            let inc = sm
                .incremental(&w)
                .unwrap_or_else(|e| panic!("{what}: not handled: {}", e.0));
            let full = sm.full(&w);
            assert_eq!(
                w.real_writes(&inc),
                w.real_writes(&full),
                "{what}: scoped vs full"
            );
            // Both stages' writes are committed and come back.
            w.clear();
            test_incr::commit(&mut w.sb, &sm.upstream.sb);
            w.commit(&inc);
            if !w.real_writes(&inc).is_empty() || !sm.upstream.sb.is_empty() {
                wrote += 1;
            }
            check_step(&mut w, &alone(), &what);
        }
        assert!(
            wrote >= 5,
            "seed {seed}: only {wrote} changes caused writes"
        );
        total += wrote;
    }
    assert!(total >= 100, "{total}");
}

/// Our SB and IC-SB monitors coming back map to their ports; a scoped run on them wants
/// nothing.
#[test]
fn own_writes_coming_back_write_nothing() {
    if !supported_schemas() {
        return;
    }
    let mut w = world();
    let mut i = Intents::new();
    i.insert(
        "Port_Binding",
        vec![
            ("logical_port", Datum::scalar("lp1")),
            ("up", Datum::scalar(true)),
            ("chassis", Datum::scalar(uu(0xc1))),
            ("tunnel_key", Datum::scalar(5i64)),
        ],
    );
    let mut cols = vec![
        ("type", Datum::scalar("load-balancer")),
        ("ip", Datum::scalar("10.0.0.5")),
        ("port", Datum::scalar(80i64)),
        ("protocol", Datum::scalar("tcp")),
        ("logical_port", Datum::scalar("lp0")),
        ("src_ip", Datum::scalar("10.0.0.254")),
    ];
    let mut pushed = cols.clone();
    pushed.extend([
        ("remote", Datum::scalar(true)),
        ("options", Datum::smap([("az-name", "az2")])),
    ]);
    i.insert(TABLE, pushed);
    test_incr::commit(&mut w.sb, &i);
    cols[4] = ("logical_port", Datum::scalar("lp1"));
    cols.extend([
        ("source_availability_zone", Datum::scalar("az2")),
        ("target_availability_zone", Datum::scalar("az1")),
    ]);
    let mut i = Intents::new();
    i.insert(TABLE, cols);
    test_incr::commit(&mut w.icsb, &i);
    w.clear();

    let out = alone().full(&w);
    assert_eq!(w.real_writes(&out).len(), 2, "{out:#?}");
    w.commit(&out);
    let v = w.views();
    let mut keys = Keys::new();
    for (t, table) in w.changed() {
        keys.extend(keys_for_table(&v, &ctx(), t, &table, &w.replica(t).changes(&table)).unwrap());
    }
    assert_eq!(keys, Keys::from(["lp0".to_string(), "lp1".to_string()]));
    let mut back = Out::default();
    run_scoped(&v, &ctx(), &keys, &mut back).unwrap();
    assert!(back.is_empty(), "{back:#?}");
}

#[test]
fn mac_changes_and_unexpected_upstream_writes_are_not_handled() {
    if !supported_schemas() {
        return;
    }
    let mut w = world();
    let mut i = Intents::new();
    i.update(
        "SB_Global",
        uu(1),
        vec![(
            "options",
            Datum::smap([("svc_monitor_mac", "0a:00:00:00:00:09")]),
        )],
    );
    test_incr::commit(&mut w.sb, &i);
    let v = w.views();
    assert_eq!(
        keys_for_table(
            &v,
            &ctx(),
            Target::Sb,
            "SB_Global",
            &w.sb.changes("SB_Global")
        ),
        Err(Unhandled("svc_monitor_mac changed"))
    );
    let mut up = Out::default();
    up.sb
        .update("Chassis", uu(0xc1), vec![("name", Datum::scalar("x"))]);
    assert!(keys_for_stage(&v, &ctx(), &up).is_err());
    // A port binding write that changes nothing maps to nothing.
    assert_eq!(keys_for_stage(&v, &ctx(), &Out::default()), Ok(Keys::new()));
}

/// What the port-binding stage writes in this run reaches the monitors of the moved port.
#[test]
fn port_binding_stage_moving_a_port_updates_its_learned_monitor() {
    if !supported_schemas() {
        return;
    }
    let mut w = world();
    let mut i = Intents::new();
    let pb = i.insert(
        "Port_Binding",
        vec![
            ("logical_port", Datum::scalar("lp1")),
            ("up", Datum::scalar(true)),
            ("chassis", Datum::scalar(uu(0xc1))),
            ("tunnel_key", Datum::scalar(5i64)),
        ],
    );
    test_incr::commit(&mut w.sb, &i);
    let mut i = Intents::new();
    i.insert(
        TABLE,
        vec![
            ("ip", Datum::scalar("10.0.0.5")),
            ("port", Datum::scalar(80i64)),
            ("protocol", Datum::scalar("tcp")),
            ("logical_port", Datum::scalar("lp1")),
            ("src_ip", Datum::scalar("10.0.0.254")),
            ("source_availability_zone", Datum::scalar("az2")),
            ("target_availability_zone", Datum::scalar("az1")),
        ],
    );
    test_incr::commit(&mut w.icsb, &i);
    converge(&mut w, &alone());
    let mut sm = alone();
    sm.upstream.sb.update(
        "Port_Binding",
        pb,
        vec![("chassis", Datum::scalar(uu(0xc2)))],
    );
    let v = w.views();
    let v = v.with(&sm.upstream);
    assert_eq!(
        keys_for_stage(&v, &ctx(), &sm.upstream),
        Ok(Keys::from(["lp1".to_string()]))
    );
    let inc = sm.incremental(&w).unwrap();
    let writes = w.real_writes(&inc);
    assert_eq!(writes.len(), 1, "{writes:?}");
    assert!(writes[0].ends_with("chassis_name=\"chc2\""), "{writes:?}");
    assert_eq!(writes, w.real_writes(&sm.full(&w)));
}
