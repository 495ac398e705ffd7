//! Proof that the transit-switch change handlers write what the full run writes (see
//! `enum_datapaths::testworld::prove`), and that the echo of the stage's own writes maps to
//! keys whose scoped run writes nothing.

use super::*;
use crate::ic::enum_datapaths::testworld::{commit, effective_out, prove, World};
use crate::ovsdb::overlay::Intents;

#[test]
fn scoped_equals_full_run_on_random_changes() {
    let (handled, effective) = prove(0..12, 25, false);
    eprintln!("handled {handled}, with writes {effective}");
    assert!(handled >= 12 * 25, "{handled}");
    assert!(effective > 60, "too few changes with writes: {effective}");
}

fn world_with_switches() -> (World, Datapaths) {
    let mut w = World::new(true);
    let mut icnb = Intents::new();
    for n in ["ts1", "ts2"] {
        icnb.insert("Transit_Switch", vec![("name", Datum::scalar(n))]);
    }
    commit(&mut w.icnb, &icnb);
    let d = w.converge();
    (w, d)
}

#[test]
fn echo_of_own_writes_writes_nothing() {
    let mut w = World::new(true);
    let mut dps = w.converge();
    let mut icnb = Intents::new();
    icnb.insert("Transit_Switch", vec![("name", Datum::scalar("ts1"))]);
    commit(&mut w.icnb, &icnb);
    // Run 1: the switch and its datapath; run 2 (their echo): the key goes to NB; run 3 (its
    // echo): nothing, and the keys of the echo are the switch's.
    let mut rounds = vec![];
    for _ in 0..3 {
        let run = w.incremental(&mut dps);
        assert!(run.recomputed.is_empty(), "{:?}", run.recomputed);
        rounds.push((dps.changed.clone(), effective_out(&w, &run.ts)));
        w.clear();
        w.commit(&run);
    }
    assert_eq!(rounds[0].1.len(), 2, "{:?}", rounds[0]);
    assert_eq!(rounds[1].0, Keys::from(["ts1".to_string()]));
    assert_eq!(rounds[1].1.len(), 1, "{:?}", rounds[1]);
    assert!(
        rounds[1].1[0].contains("requested-tnl-key"),
        "{:?}",
        rounds[1]
    );
    assert_eq!(rounds[2].0, Keys::from(["ts1".to_string()]));
    assert!(rounds[2].1.is_empty(), "{:?}", rounds[2]);
    let run = w.incremental(&mut dps);
    assert!(run.ts.is_empty() && run.tr.is_empty());
}

/// A deleted transit switch: its key is the old row's name; the scoped run deletes the NB
/// image and (leader) the ISB datapath, and only those.
#[test]
fn deletion_through_the_old_name() {
    let (mut w, dps) = world_with_switches();
    let ts1 = w
        .icnb
        .rows("Transit_Switch")
        .iter()
        .find(|r| r.str("name") == "ts1")
        .map(|r| r.uuid())
        .expect("ts1");
    let mut icnb = Intents::new();
    icnb.delete("Transit_Switch", ts1);
    commit(&mut w.icnb, &icnb);
    let v = w.views();
    let c = w.ctx();
    let keys = keys_for_table(
        &v,
        &c,
        Target::IcNb,
        "Transit_Switch",
        &w.icnb.changes("Transit_Switch"),
    )
    .expect("handled");
    assert_eq!(keys, Keys::from(["ts1".to_string()]));
    let mut out = Out::default();
    run_scoped(&v, &c, &dps, &keys, &mut out).expect("handled");
    let e = effective_out(&w, &out);
    assert_eq!(e.len(), 2, "{e:?}");
    assert!(e[0].starts_with("nb: delete Logical_Switch"), "{e:?}");
    assert!(
        e[1].starts_with("icsb-locked: delete Datapath_Binding"),
        "{e:?}"
    );
    // A non-leader deletes only its NB image.
    let mut out = Out::default();
    let follower = Ctx {
        isb_leader: false,
        ..c.clone()
    };
    run_scoped(&v, &follower, &dps, &keys, &mut out).expect("handled");
    assert_eq!(effective_out(&w, &out).len(), 1);
    // Irrelevant inputs and changes map to nothing; others are unhandled.
    assert_eq!(
        keys_for_table(&v, &c, Target::IcNb, "IC_NB_Global", &[]),
        Ok(Keys::new())
    );
    assert!(keys_for_table(&v, &c, Target::Sb, "Chassis", &[]).is_err());
}

/// The graph may call the scoped run several times in one run (one call per changed input):
/// a unit processed again is rebuilt, not written twice.
#[test]
fn repeated_scoped_runs_write_once() {
    let mut w = World::new(true);
    let dps = w.converge();
    let mut icnb = Intents::new();
    icnb.insert("Transit_Switch", vec![("name", Datum::scalar("ts1"))]);
    icnb.insert("Transit_Switch", vec![("name", Datum::scalar("ts2"))]);
    commit(&mut w.icnb, &icnb);
    let v = w.views();
    let c = w.ctx();
    let mut out = Out::default();
    run_scoped(&v, &c, &dps, &Keys::from(["ts2".to_string()]), &mut out).expect("handled");
    run_scoped(&v, &c, &dps, &Keys::from(["ts1".to_string()]), &mut out).expect("handled");
    run_scoped(&v, &c, &dps, &Keys::from(["ts2".to_string()]), &mut out).expect("handled");
    let mut full = Out::default();
    run(&v, &c, &dps, &mut full);
    assert_eq!(effective_out(&w, &out), effective_out(&w, &full));
    assert_eq!(out.nb.len(), 2);
    assert_eq!(out.icsb_locked.len(), 2);
    // A re-enumeration cannot be mapped.
    let mut d = dps.clone();
    d.all_changed = true;
    assert!(keys_for_datapaths(&d).is_err());
}
