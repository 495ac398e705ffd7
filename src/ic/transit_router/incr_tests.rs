//! Proof that the transit-router change handlers write what the full run writes (see
//! `enum_datapaths::testworld::prove`), and that the echo of the stage's own writes maps to
//! keys whose scoped run writes nothing.

use super::*;
use crate::ic::enum_datapaths::testworld::{commit, effective_out, prove, World};
use crate::ovsdb::overlay::Intents;

#[test]
fn scoped_equals_full_run_on_random_changes() {
    if !World::new(true).tr_supported() {
        eprintln!("skipping: schemas without transit routers");
        return;
    }
    let (handled, effective) = prove(100..112, 25, true);
    eprintln!("handled {handled}, with writes {effective}");
    assert!(handled >= 12 * 25, "{handled}");
    assert!(effective > 60, "too few changes with writes: {effective}");
}

#[test]
fn echo_of_own_writes_writes_nothing() {
    let mut w = World::new(true);
    if !w.tr_supported() {
        return;
    }
    let mut dps = w.converge();
    let mut icnb = Intents::new();
    let tr = icnb.insert("Transit_Router", vec![("name", Datum::scalar("tr1"))]);
    commit(&mut w.icnb, &icnb);
    let mut rounds = vec![];
    for _ in 0..3 {
        let run = w.incremental(&mut dps);
        assert!(run.recomputed.is_empty(), "{:?}", run.recomputed);
        rounds.push((dps.changed.clone(), effective_out(&w, &run.tr)));
        w.clear();
        w.commit(&run);
    }
    // Run 1: router and datapath; run 2: the echo (router image + datapath group) copies
    // the key to NB; run 3: the echo of that maps to the router and writes nothing.
    assert_eq!(rounds[0].1.len(), 2, "{:?}", rounds[0]);
    assert_eq!(
        rounds[1].0,
        Keys::from(["tr1".to_string(), tr_group_key(Some(tr))])
    );
    assert_eq!(rounds[1].1.len(), 1, "{:?}", rounds[1]);
    assert_eq!(rounds[2].0, Keys::from(["tr1".to_string()]));
    assert!(rounds[2].1.is_empty(), "{:?}", rounds[2]);
    let run = w.incremental(&mut dps);
    assert!(run.ts.is_empty() && run.tr.is_empty());
}

/// Deleting a router: its keys are the old name and its UUID; the scoped run deletes the NB
/// image and (leader) the ISB datapath group. A rename keeps the datapath.
#[test]
fn deletion_and_rename_through_old_rows() {
    let mut w = World::new(true);
    if !w.tr_supported() {
        return;
    }
    let mut icnb = Intents::new();
    let tr1 = icnb.insert("Transit_Router", vec![("name", Datum::scalar("tr1"))]);
    let tr2 = icnb.insert("Transit_Router", vec![("name", Datum::scalar("tr2"))]);
    commit(&mut w.icnb, &icnb);
    let dps = w.converge();
    let mut icnb = Intents::new();
    icnb.delete("Transit_Router", tr1);
    icnb.update("Transit_Router", tr2, vec![("name", Datum::scalar("tr9"))]);
    commit(&mut w.icnb, &icnb);
    let v = w.views();
    let c = w.ctx();
    let ch = w.icnb.changes("Transit_Router");
    let keys = keys_for_table(&v, &c, Target::IcNb, "Transit_Router", &ch).expect("handled");
    assert_eq!(
        keys,
        Keys::from([
            "tr1".to_string(),
            "tr2".to_string(),
            "tr9".to_string(),
            tr_group_key(Some(tr1)),
            tr_group_key(Some(tr2)),
        ])
    );
    let mut out = Out::default();
    run_scoped(&v, &c, &dps, &keys, &mut out).expect("handled");
    let mut full = Out::default();
    run(&v, &c, &dps, &mut full);
    let e = effective_out(&w, &out);
    assert_eq!(e, effective_out(&w, &full));
    // tr1: datapath and router deleted; tr2 -> tr9: old router deleted, new one created with
    // the kept datapath's key.
    assert_eq!(e.len(), 4, "{e:?}");
    assert_eq!(
        e.iter()
            .filter(|x| x.contains("delete Datapath_Binding"))
            .count(),
        1
    );
    assert!(e
        .iter()
        .any(|x| x.contains("insert Logical_Router") && x.contains("tr9")));
    assert_eq!(
        keys_for_table(&v, &c, Target::IcNb, "Transit_Router_Port", &[]),
        Ok(Keys::new())
    );
    assert_eq!(keys_for_stage(&v, &c, &full), Ok(Keys::new()));
}
