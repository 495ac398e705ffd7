//! Proof that the address set change handlers write what a full run writes.
//!
//! A random world (per seed a combination of the global switches) of SB sets northd marks
//! `ic-adv` or not, other AZs' IC-SB rows, local NB sets and learned ones, is driven through
//! seeded random changes, including "bad" ones (own IC-SB rows deleted or altered by hand,
//! learned NB sets edited, local sets taking a learned name). After each change the handlers
//! run as the graph calls them and their real writes must equal a full run's; the writes then
//! come back and must map to keys whose scoped run wants nothing.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

use super::*;
use crate::ic::az::test_incr::{self, check_step, converge, Stage, World};
use crate::ic::testutil::{empty, replica, u};
use crate::ovsdb::overlay::Intents;
use crate::ovsdb::replica::Replica;

const AZ1: u32 = 0xa1;
const AZS: [u32; 3] = [0xa1, 0xa2, 0xa3];
const NAMES: [&str; 5] = ["as0", "as1", "as2", "as3", "as4"];
const ADDRS: [&str; 5] = [
    "10.0.0.1",
    "10.0.0.2",
    "10.1.0.0/16",
    "2001:db8::1",
    "10.0.0.3",
];

fn uu(n: u32) -> Uuid {
    u(n).parse().expect("fixture uuid")
}

fn ctx() -> Ctx {
    Ctx {
        az: uu(AZ1),
        az_name: "az1".into(),
        isb_leader: false,
    }
}

fn supported() -> bool {
    let ok = empty("ovn-ic-sb").has_table(TABLE) && empty("ovn-sb").has_column(TABLE, "options");
    if !ok {
        eprintln!("skipping: schemas without IC-SB Address_Set / SB Address_Set.options");
    }
    ok
}

struct As;

impl Stage for As {
    fn full(&self, w: &World) -> Out {
        let mut out = Out::default();
        run(&w.views(), &ctx(), &mut out);
        out
    }
    fn incremental(&self, w: &World) -> Result<Out, Unhandled> {
        let v = w.views();
        let mut out = Out::default();
        for (t, table) in w.changed() {
            let keys = keys_for_table(&v, &ctx(), t, &table, &w.replica(t).changes(&table))?;
            if !keys.is_empty() {
                run_scoped(&v, &ctx(), &keys, &mut out)?;
            }
        }
        Ok(out)
    }
}

fn world(adv: bool, learn: bool) -> World {
    let opts = |b: bool| if b { "true" } else { "false" };
    World {
        nb: replica(
            "ovn-nb",
            json!({"NB_Global": {u(1): {"name": "az1", "options": ["map", [
                ["ic-as-adv", opts(adv)], ["ic-as-learn", opts(learn)]]]}}}),
        ),
        sb: replica("ovn-sb", json!({})),
        icnb: replica("ovn-ic-nb", json!({})),
        icsb: replica(
            "ovn-ic-sb",
            json!({"Availability_Zone": {
                u(0xa1): {"name": "az1"}, u(0xa2): {"name": "az2"}, u(0xa3): {"name": "az3"}}}),
        ),
    }
}

fn addrs(rng: &mut StdRng) -> Datum {
    Datum::set(
        ADDRS
            .iter()
            .filter(|_| rng.gen_bool(0.4))
            .map(|a| Atom::from(*a)),
    )
}

fn pick<T: Copy>(rng: &mut StdRng, xs: &[T]) -> Option<T> {
    (!xs.is_empty()).then(|| xs[rng.gen_range(0..xs.len())])
}

fn uuids_of(rp: &Replica, f: impl Fn(&Row) -> bool) -> Vec<Uuid> {
    rp.iter(TABLE).filter(|r| f(r)).map(|r| r.uuid()).collect()
}

/// One random change; returns what it did.
fn random_edit(w: &mut World, rng: &mut StdRng) -> String {
    let name = pick(rng, &NAMES).expect("names");
    let mut i = Intents::new();
    let (t, what) = match rng.gen_range(0..9) {
        0 | 1 => {
            // northd syncs an NB set to SB, marked ic-adv or not.
            let opts = match rng.gen_range(0..4) {
                0 => Datum::empty_map(),
                1 => Datum::smap([("ic-adv", "false")]),
                _ => Datum::smap([("ic-adv", "true")]),
            };
            let cols = vec![("addresses", addrs(rng)), ("options", opts)];
            match w.sb.find_by_str(TABLE, "name", name) {
                Some(r) => i.update(TABLE, r.uuid(), cols),
                None => {
                    let mut cols = cols;
                    cols.push(("name", Datum::scalar(name)));
                    i.insert(TABLE, cols);
                }
            }
            (Target::Sb, format!("sb set {name} upserted"))
        }
        2 => {
            let Some(x) = pick(rng, &uuids_of(&w.sb, |_| true)) else {
                return "no sb set".into();
            };
            i.delete(TABLE, x);
            (Target::Sb, format!("sb set {x} deleted"))
        }
        3 | 4 => {
            // Another AZ advertises (or changes) a set.
            let az = uu(pick(rng, &AZS[1..]).expect("azs"));
            let mine = uuids_of(&w.icsb, |r| {
                r.str("name") == name && r.uuid_of("availability_zone") == Some(az)
            });
            match mine.first() {
                Some(x) => i.update(TABLE, *x, vec![("addresses", addrs(rng))]),
                None => {
                    i.insert(
                        TABLE,
                        vec![
                            ("name", Datum::scalar(name)),
                            ("availability_zone", Datum::scalar(az)),
                            ("addresses", addrs(rng)),
                        ],
                    );
                }
            }
            (Target::IcSb, format!("{az} advertises {name}"))
        }
        5 => {
            // An IC-SB row deleted or altered (another AZ's, or ours by hand).
            let Some(x) = pick(rng, &uuids_of(&w.icsb, |_| true)) else {
                return "no isb set".into();
            };
            if rng.gen_bool(0.5) {
                i.delete(TABLE, x);
            } else {
                i.update(TABLE, x, vec![("addresses", addrs(rng))]);
            }
            (Target::IcSb, format!("isb set {x} deleted or altered"))
        }
        6 => {
            // A local NB set created (possibly taking a learned set's name) or deleted.
            match w.nb.find_by_str(TABLE, "name", name).map(|r| r.uuid()) {
                Some(x) if rng.gen_bool(0.5) => i.delete(TABLE, x),
                Some(x) => i.update(TABLE, x, vec![("external_ids", Datum::empty_map())]),
                None => {
                    i.insert(
                        TABLE,
                        vec![("name", Datum::scalar(name)), ("addresses", addrs(rng))],
                    );
                }
            }
            (
                Target::Nb,
                format!("nb set {name} created/deleted/unmarked"),
            )
        }
        7 => {
            // A learned set edited by hand.
            let learned = uuids_of(&w.nb, |r| r.smap_get("external_ids", "ic-learnt").is_some());
            let Some(x) = pick(rng, &learned) else {
                return "no learned set".into();
            };
            i.update(TABLE, x, vec![("addresses", addrs(rng))]);
            (Target::Nb, format!("learned set {x} edited"))
        }
        _ => {
            // An NB_Global option the stage does not read.
            let g = w.nb.rows("NB_Global")[0].uuid();
            let cur: Vec<(String, String)> = w.nb.rows("NB_Global")[0]
                .get("options")
                .smap_iter()
                .filter(|(k, _)| *k != "other")
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .chain([("other".to_string(), rng.gen_range(0..99).to_string())])
                .collect();
            i.update("NB_Global", g, vec![("options", Datum::smap(cur))]);
            (Target::Nb, "NB_Global other option".into())
        }
    };
    test_incr::commit(w.replica_mut(t), &i);
    what
}

#[test]
fn scoped_run_equals_full_run_on_random_address_set_changes() {
    if !supported() {
        return;
    }
    let mut total = 0;
    for seed in 0..12u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let (adv, learn) =
            [(true, true), (true, false), (false, true), (true, true)][seed as usize % 4];
        let mut w = world(adv, learn);
        for _ in 0..8 {
            random_edit(&mut w, &mut rng);
        }
        converge(&mut w, &As);
        let mut wrote = 0;
        for step in 0..30 {
            let mut what = random_edit(&mut w, &mut rng);
            // Sometimes several changes arrive before a run (handlers called per table).
            while rng.gen_bool(0.3) {
                what = format!("{what}; {}", random_edit(&mut w, &mut rng));
            }
            let msg = format!("seed {seed} ({adv}, {learn}) step {step}: {what}");
            if check_step(&mut w, &As, &msg) {
                wrote += 1;
            }
        }
        assert!(
            wrote >= 3,
            "seed {seed}: only {wrote} changes caused writes"
        );
        total += wrote;
    }
    assert!(total >= 80, "{total}");
}

/// Our IC-SB and NB rows coming back map to their names; a scoped run on them wants nothing.
#[test]
fn own_writes_coming_back_write_nothing() {
    if !supported() {
        return;
    }
    let mut w = world(true, true);
    let mut i = Intents::new();
    i.insert(
        TABLE,
        vec![
            ("name", Datum::scalar("mine")),
            ("addresses", Datum::scalar("10.0.0.1")),
            ("options", Datum::smap([("ic-adv", "true")])),
        ],
    );
    test_incr::commit(&mut w.sb, &i);
    let mut i = Intents::new();
    i.insert(
        TABLE,
        vec![
            ("name", Datum::scalar("theirs")),
            ("availability_zone", Datum::scalar(uu(0xa2))),
            ("addresses", Datum::scalar("10.0.0.2")),
        ],
    );
    test_incr::commit(&mut w.icsb, &i);
    w.clear();
    let out = As.full(&w);
    assert_eq!(w.real_writes(&out).len(), 2, "{out:#?}");
    w.commit(&out);
    let v = w.views();
    let mut keys = Keys::new();
    for (t, table) in w.changed() {
        keys.extend(keys_for_table(&v, &ctx(), t, &table, &w.replica(t).changes(&table)).unwrap());
    }
    assert_eq!(keys, Keys::from(["mine".to_string(), "theirs".to_string()]));
    let mut back = Out::default();
    run_scoped(&v, &ctx(), &keys, &mut back).unwrap();
    assert!(back.is_empty(), "{back:#?}");
}

/// The global switches cannot be handled per set; other options are irrelevant.
#[test]
fn switch_changes_are_not_handled() {
    if !supported() {
        return;
    }
    let mut w = world(true, false);
    let g = w.nb.rows("NB_Global")[0].uuid();
    let keys = |w: &World| {
        keys_for_table(
            &w.views(),
            &ctx(),
            Target::Nb,
            "NB_Global",
            &w.nb.changes("NB_Global"),
        )
    };
    let mut i = Intents::new();
    i.update(
        "NB_Global",
        g,
        vec![(
            "options",
            Datum::smap([("ic-as-adv", "TRUE"), ("ic-as-learn", "no"), ("x", "1")]),
        )],
    );
    test_incr::commit(&mut w.nb, &i);
    assert_eq!(keys(&w), Ok(Keys::new()));
    w.clear();
    let mut i = Intents::new();
    i.update(
        "NB_Global",
        g,
        vec![("options", Datum::smap([("ic-as-learn", "true")]))],
    );
    test_incr::commit(&mut w.nb, &i);
    assert_eq!(keys(&w), Err(Unhandled("address set options changed")));
}
