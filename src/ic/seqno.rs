//! Sequence numbers: INB → ISB → INB status (spec ovn-ic-core.md §4.7, since 24.03).
//!
//! Lets `ovn-ic-nbctl --wait=sb` (which bumps `IC_NB_Global.nb_ic_cfg` and waits for
//! `IC_NB_Global.sb_ic_cfg` to reach it) know that every AZ's ovn-ic has processed a change:
//! each AZ climbs its `Availability_Zone.nb_ic_cfg` towards the INB value, one atomic `+= 1`
//! per committed iteration, and the first AZ that sees every AZ counter equal to its own
//! publishes the value to `IC_SB_Global.nb_ic_cfg` and `IC_NB_Global.sb_ic_cfg`.
//!
//! Runs after the engine in every iteration where the sync could run and an AZ row exists. The
//! caller tells [`SeqnoState`] when a transaction of the unlocked IC-SB session completed with
//! success or "unchanged" ([`SeqnoState::icsb_committed`]), which makes `cur_cfg := next_cfg`.
//!
//! The whole stage is skipped against servers whose schemas lack the `*_cfg` columns (IC-NB
//! < 1.1.0, IC-SB < 1.2.0, e.g. Debian's 23.03), including the `IC_*_Global` inserts (§6.2).
//!
//! When the local AZ row was inserted in this very run, the increment is dropped by the output
//! stage (the row is not in the replica yet); `next_cfg` is still recorded, exactly as the
//! counter then simply starts climbing in the next iteration.

use crate::ic::{Ctx, Out, Views};
use crate::ovsdb::Datum;

const AZ_TABLE: &str = "Availability_Zone";
const ICNB_GLOBAL: &str = "IC_NB_Global";
const ICSB_GLOBAL: &str = "IC_SB_Global";

/// The unlocked IC-SB session's sequence-number counters (both 0 at process start).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeqnoState {
    next_cfg: i64,
    cur_cfg: i64,
}

impl SeqnoState {
    pub fn new() -> SeqnoState {
        SeqnoState::default()
    }

    /// An unlocked IC-SB transaction completed with success or "unchanged": `cur_cfg := next_cfg`.
    pub fn icsb_committed(&mut self) {
        self.cur_cfg = self.next_cfg;
    }

    /// The INB value the pending increment works towards.
    pub fn next_cfg(&self) -> i64 {
        self.next_cfg
    }

    /// The value acknowledged by the last successful unlocked IC-SB commit.
    pub fn cur_cfg(&self) -> i64 {
        self.cur_cfg
    }
}

/// Whether the connected servers have all four `*_cfg` columns the feature needs.
pub fn supported(v: &Views) -> bool {
    let inb = v.icnb.replica();
    let isb = v.icsb.replica();
    inb.has_column(ICNB_GLOBAL, "nb_ic_cfg")
        && inb.has_column(ICNB_GLOBAL, "sb_ic_cfg")
        && isb.has_column(ICSB_GLOBAL, "nb_ic_cfg")
        && isb.has_column(AZ_TABLE, "nb_ic_cfg")
}

/// One step of the sequence-number protocol for the local AZ `ctx.az`.
pub fn run(v: &Views, ctx: &Ctx, st: &mut SeqnoState, out: &mut Out) {
    if !supported(v) {
        return;
    }

    // 1. The singleton rows, inserted if missing (every AZ may race; losers retry).
    let (inb_uuid, inb_cfg) = match v.icnb.rows(ICNB_GLOBAL).into_iter().next() {
        Some(r) => (r.uuid(), r.int("nb_ic_cfg").unwrap_or(0)),
        None => (out.icnb.insert(ICNB_GLOBAL, vec![]), 0),
    };
    let (isb_uuid, isb_cfg) = match v.icsb.rows(ICSB_GLOBAL).into_iter().next() {
        Some(r) => (r.uuid(), r.int("nb_ic_cfg").unwrap_or(0)),
        None => (out.icsb.insert(ICSB_GLOBAL, vec![]), 0),
    };
    let Some(az) = v.icsb.get(AZ_TABLE, ctx.az) else {
        return;
    };
    let az_cfg = az.int("nb_ic_cfg").unwrap_or(0);

    // 2. Work towards the INB value: one atomic increment per committed iteration.
    if inb_cfg != isb_cfg && inb_cfg != az_cfg {
        if az_cfg == i64::MAX {
            out.icsb
                .update(AZ_TABLE, ctx.az, vec![("nb_ic_cfg", Datum::scalar(0i64))]);
        }
        st.next_cfg = inb_cfg;
        out.icsb.increment(AZ_TABLE, ctx.az, "nb_ic_cfg");
        return;
    }

    // 3. Accept what this session last committed (e.g. after a restart: 0).
    if az_cfg != st.cur_cfg {
        out.icsb.update(
            AZ_TABLE,
            ctx.az,
            vec![("nb_ic_cfg", Datum::scalar(st.cur_cfg))],
        );
        return;
    }

    // 4. Every AZ caught up: publish.
    let all_equal = v
        .icsb
        .rows(AZ_TABLE)
        .iter()
        .all(|r| r.int("nb_ic_cfg").unwrap_or(0) == az_cfg);
    if all_equal && inb_cfg != isb_cfg {
        out.icsb.update(
            ICSB_GLOBAL,
            isb_uuid,
            vec![("nb_ic_cfg", Datum::scalar(az_cfg))],
        );
        out.icnb.update(
            ICNB_GLOBAL,
            inb_uuid,
            vec![("sb_ic_cfg", Datum::scalar(az_cfg))],
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ic::testutil::{empty, replica, u};
    use crate::ic::Dbs;
    use crate::ovsdb::overlay::{RowIntent, View};
    use crate::ovsdb::replica::Replica;
    use crate::ovsdb::Uuid;
    use serde_json::{json, Map, Value};

    fn uuid(n: u32) -> Uuid {
        Uuid(u128::from(n))
    }

    fn ctx(az: u32) -> Ctx {
        Ctx {
            az: uuid(az),
            az_name: format!("az{az}"),
            isb_leader: false,
        }
    }

    /// The interconnection databases of a test; NB/SB are irrelevant here.
    struct World {
        nb: Replica,
        sb: Replica,
        icnb: Replica,
        icsb: Replica,
    }

    impl World {
        /// INB `nb_ic_cfg`/`sb_ic_cfg`, ISB `nb_ic_cfg`, and the AZ counters `(az, cfg)`.
        fn new(inb: (i64, i64), isb: i64, azs: &[(u32, i64)]) -> World {
            let az_rows: Map<String, Value> = azs
                .iter()
                .map(|(n, c)| (u(*n), json!({"name": format!("az{n}"), "nb_ic_cfg": c})))
                .collect();
            World {
                nb: empty("ovn-nb"),
                sb: empty("ovn-sb"),
                icnb: replica(
                    "ovn-ic-nb",
                    json!({"IC_NB_Global": {u(200): {"nb_ic_cfg": inb.0, "sb_ic_cfg": inb.1}}}),
                ),
                icsb: replica(
                    "ovn-ic-sb",
                    json!({"IC_SB_Global": {u(300): {"nb_ic_cfg": isb}}, "Availability_Zone": az_rows}),
                ),
            }
        }
        fn views(&self) -> Views<'_> {
            Views::new(Dbs {
                nb: &self.nb,
                sb: &self.sb,
                icnb: &self.icnb,
                icsb: &self.icsb,
                icsb_locked: &self.icsb,
            })
        }
        fn run(&self, az: u32, st: &mut SeqnoState) -> Out {
            let mut out = Out::default();
            run(&self.views(), &ctx(az), st, &mut out);
            out
        }
        /// Commit `out` (increments applied atomically, after the column updates, as the server
        /// does) and report success of the unlocked IC-SB transaction to `st`.
        fn commit(&mut self, out: &Out, st: &mut SeqnoState) {
            let v = self.views();
            let v = v.with(out);
            let icnb = materialise(&v.icnb, "ovn-ic-nb", &[]);
            let icsb = materialise(&v.icsb, "ovn-ic-sb", out.icsb.increments());
            self.icnb = icnb;
            self.icsb = icsb;
            st.icsb_committed();
        }
        fn inb(&self) -> (i64, i64) {
            let r = self.icnb.rows(ICNB_GLOBAL)[0];
            (r.int("nb_ic_cfg").unwrap(), r.int("sb_ic_cfg").unwrap())
        }
        fn isb(&self) -> i64 {
            self.icsb.rows(ICSB_GLOBAL)[0].int("nb_ic_cfg").unwrap()
        }
        fn az(&self, n: u32) -> i64 {
            self.icsb
                .get(AZ_TABLE, uuid(n))
                .unwrap()
                .int("nb_ic_cfg")
                .unwrap()
        }
        fn bump(&mut self, to: i64) {
            let (_, sb) = self.inb();
            self.icnb = replica(
                "ovn-ic-nb",
                json!({"IC_NB_Global": {u(200): {"nb_ic_cfg": to, "sb_ic_cfg": sb}}}),
            );
        }
        fn set_az(&mut self, n: u32, cfg: i64) {
            let mut out = Out::default();
            out.icsb
                .update(AZ_TABLE, uuid(n), vec![("nb_ic_cfg", Datum::scalar(cfg))]);
            let v = self.views();
            let v = v.with(&out);
            self.icsb = materialise(&v.icsb, "ovn-ic-sb", &[]);
        }
    }

    fn materialise(v: &View, schema: &str, incs: &[(String, Uuid, String)]) -> Replica {
        let mut tables = Map::new();
        for t in v.replica().table_names() {
            let rows: Map<String, Value> = v
                .rows(t)
                .iter()
                .map(|r| (r.uuid().to_string(), r.to_json()))
                .collect();
            if !rows.is_empty() {
                tables.insert(t.to_string(), Value::Object(rows));
            }
        }
        for (t, id, c) in incs {
            if let Some(cell) = tables
                .get_mut(t)
                .and_then(|rs| rs.get_mut(&id.to_string()[..]))
                .and_then(|r| r.get_mut(c))
            {
                *cell = json!(cell.as_i64().unwrap().wrapping_add(1));
            }
        }
        replica(schema, Value::Object(tables))
    }

    fn skip() -> bool {
        let w = World {
            nb: empty("ovn-nb"),
            sb: empty("ovn-sb"),
            icnb: empty("ovn-ic-nb"),
            icsb: empty("ovn-ic-sb"),
        };
        !supported(&w.views())
    }

    fn az_increments(out: &Out) -> usize {
        out.icsb
            .increments()
            .iter()
            .filter(|(t, _, c)| t == AZ_TABLE && c == "nb_ic_cfg")
            .count()
    }

    #[test]
    fn unsupported_schema_writes_nothing() {
        let w = World {
            nb: empty("ovn-nb"),
            sb: empty("ovn-sb"),
            icnb: empty("ovn-ic-nb"),
            icsb: empty("ovn-ic-sb"),
        };
        let has = w.icnb.has_column(ICNB_GLOBAL, "nb_ic_cfg");
        assert_eq!(
            supported(&w.views()),
            has && w.icsb.has_column(AZ_TABLE, "nb_ic_cfg")
        );
        let mut st = SeqnoState::new();
        let out = w.run(1, &mut st);
        if has {
            // Both singletons get inserted.
            assert_eq!(out.icnb.table(ICNB_GLOBAL).count(), 1);
            assert_eq!(out.icsb.table(ICSB_GLOBAL).count(), 1);
        } else {
            assert!(out.is_empty(), "{out:?}");
        }
    }

    #[test]
    fn missing_globals_inserted_through_both_sessions() {
        if skip() {
            return;
        }
        let mut w = World::new((0, 0), 0, &[(1, 0)]);
        w.icnb = empty("ovn-ic-nb");
        w.icsb = replica(
            "ovn-ic-sb",
            json!({"Availability_Zone": {u(1): {"name": "az1"}}}),
        );
        let mut st = SeqnoState::new();
        let out = w.run(1, &mut st);
        let ins: Vec<_> = out.icnb.table(ICNB_GLOBAL).collect();
        assert_eq!(ins.len(), 1);
        assert!(matches!(ins[0].1, RowIntent::Insert(_)));
        let ins: Vec<_> = out.icsb.table(ICSB_GLOBAL).collect();
        assert_eq!(ins.len(), 1);
        assert!(matches!(ins[0].1, RowIntent::Insert(_)));
        assert_eq!(out.icnb.len() + out.icsb.len(), 2);
        assert_eq!(az_increments(&out), 0);
        assert!(out.icsb_locked.is_empty());
    }

    #[test]
    fn idle_synchronised_writes_nothing() {
        if skip() {
            return;
        }
        let w = World::new((0, 0), 0, &[(1, 0), (2, 0)]);
        let mut st = SeqnoState::new();
        assert!(w.run(1, &mut st).is_empty());
    }

    #[test]
    fn counter_climbs_then_publishes() {
        if skip() {
            return;
        }
        let mut w = World::new((0, 0), 0, &[(1, 0)]);
        let mut st = SeqnoState::new();
        // ovn-ic-nbctl --wait=sb bumps to 1.
        w.bump(1);
        let out = w.run(1, &mut st);
        assert_eq!(az_increments(&out), 1);
        assert_eq!(
            out.icsb.increments(),
            [(AZ_TABLE.to_string(), uuid(1), "nb_ic_cfg".to_string())]
        );
        assert_eq!(out.icsb.len(), 0);
        assert!(out.icnb.is_empty());
        assert_eq!(st.next_cfg(), 1);
        assert_eq!(st.cur_cfg(), 0);
        w.commit(&out, &mut st);
        assert_eq!((w.az(1), st.cur_cfg()), (1, 1));
        // All AZs equal: publish to ISB and INB.
        let out = w.run(1, &mut st);
        assert_eq!(az_increments(&out), 0);
        assert_eq!(
            out.icsb.get(ICSB_GLOBAL, uuid(300)),
            Some(&RowIntent::Update(
                [("nb_ic_cfg".to_string(), Datum::scalar(1i64))].into()
            ))
        );
        assert_eq!(
            out.icnb.get(ICNB_GLOBAL, uuid(200)),
            Some(&RowIntent::Update(
                [("sb_ic_cfg".to_string(), Datum::scalar(1i64))].into()
            ))
        );
        w.commit(&out, &mut st);
        assert_eq!((w.inb(), w.isb()), ((1, 1), 1));
        assert!(w.run(1, &mut st).is_empty());

        // A bump by 3 climbs one per committed iteration.
        w.bump(4);
        let mut seen = vec![];
        for _ in 0..3 {
            let out = w.run(1, &mut st);
            assert_eq!(az_increments(&out), 1);
            w.commit(&out, &mut st);
            seen.push(w.az(1));
        }
        assert_eq!(seen, [2, 3, 4]);
        assert_eq!(w.inb(), (4, 1));
        let out = w.run(1, &mut st);
        w.commit(&out, &mut st);
        assert_eq!((w.inb(), w.isb()), ((4, 4), 4));
    }

    #[test]
    fn restart_resets_to_zero_and_climbs_again() {
        if skip() {
            return;
        }
        let mut w = World::new((3, 3), 3, &[(1, 3)]);
        let mut st = SeqnoState::new(); // fresh process: cur_cfg = 0
        let out = w.run(1, &mut st);
        assert_eq!(az_increments(&out), 0);
        assert_eq!(
            out.icsb.get(AZ_TABLE, uuid(1)),
            Some(&RowIntent::Update(
                [("nb_ic_cfg".to_string(), Datum::scalar(0i64))].into()
            ))
        );
        w.commit(&out, &mut st);
        assert_eq!(w.az(1), 0);
        // Idle at 0: nothing more (INB == ISB).
        assert!(w.run(1, &mut st).is_empty());
        // Next bump: climbs 1, 2, 3, 4 then publishes 4.
        w.bump(4);
        let mut seen = vec![];
        for _ in 0..10 {
            let out = w.run(1, &mut st);
            if out.is_empty() {
                break;
            }
            w.commit(&out, &mut st);
            seen.push((w.az(1), w.isb(), w.inb().1));
        }
        assert_eq!(
            seen,
            [(1, 3, 3), (2, 3, 3), (3, 3, 3), (4, 3, 3), (4, 4, 4)]
        );
    }

    #[test]
    fn waits_for_every_az() {
        if skip() {
            return;
        }
        // Two AZs; AZ2 is paused (never runs) → sb_ic_cfg stays 0.
        let mut w = World::new((0, 0), 0, &[(1, 0), (2, 0)]);
        let mut st1 = SeqnoState::new();
        let mut st2 = SeqnoState::new();
        w.bump(1);
        for _ in 0..3 {
            let out = w.run(1, &mut st1);
            w.commit(&out, &mut st1);
        }
        assert_eq!((w.az(1), w.az(2)), (1, 0));
        assert_eq!(w.inb(), (1, 0));
        assert_eq!(w.isb(), 0);
        // AZ2 resumes: it climbs and, seeing every AZ equal, publishes.
        let out = w.run(2, &mut st2);
        assert_eq!(
            out.icsb.increments(),
            [(AZ_TABLE.to_string(), uuid(2), "nb_ic_cfg".to_string())]
        );
        w.commit(&out, &mut st2);
        assert_eq!(w.az(2), 1);
        let out = w.run(2, &mut st2);
        w.commit(&out, &mut st2);
        assert_eq!((w.inb(), w.isb()), ((1, 1), 1));
        // AZ1 then has nothing to do.
        assert!(w.run(1, &mut st1).is_empty());
    }

    #[test]
    fn no_publish_when_another_az_differs() {
        if skip() {
            return;
        }
        let w = World::new((2, 0), 0, &[(1, 2), (2, 1)]);
        let mut st = SeqnoState {
            next_cfg: 2,
            cur_cfg: 2,
        };
        assert!(w.run(1, &mut st).is_empty());
    }

    #[test]
    fn int64_max_wraps_to_zero_before_increment() {
        if skip() {
            return;
        }
        let mut w = World::new((5, 0), 4, &[(1, i64::MAX)]);
        let mut st = SeqnoState::new();
        let out = w.run(1, &mut st);
        assert_eq!(
            out.icsb.get(AZ_TABLE, uuid(1)),
            Some(&RowIntent::Update(
                [("nb_ic_cfg".to_string(), Datum::scalar(0i64))].into()
            ))
        );
        assert_eq!(az_increments(&out), 1);
        assert_eq!(st.next_cfg(), 5);
        w.commit(&out, &mut st);
        assert_eq!(w.az(1), 1);
    }

    #[test]
    fn conflict_resolved_to_cur_cfg() {
        if skip() {
            return;
        }
        // Someone else wrote our counter: we put back what we last committed.
        let mut w = World::new((2, 2), 2, &[(1, 2)]);
        let mut st = SeqnoState {
            next_cfg: 2,
            cur_cfg: 2,
        };
        w.set_az(1, 7);
        let out = w.run(1, &mut st);
        assert_eq!(
            out.icsb.get(AZ_TABLE, uuid(1)),
            Some(&RowIntent::Update(
                [("nb_ic_cfg".to_string(), Datum::scalar(2i64))].into()
            ))
        );
        assert_eq!(az_increments(&out), 0);
    }

    #[test]
    fn cur_cfg_only_moves_on_commit() {
        if skip() {
            return;
        }
        let w = World::new((1, 0), 0, &[(1, 0)]);
        let mut st = SeqnoState::new();
        let out = w.run(1, &mut st);
        assert_eq!(az_increments(&out), 1);
        // The commit failed (no icsb_committed): the same step repeats, cur_cfg untouched.
        let out = w.run(1, &mut st);
        assert_eq!(az_increments(&out), 1);
        assert_eq!((st.next_cfg(), st.cur_cfg()), (1, 0));
        st.icsb_committed();
        assert_eq!(st.cur_cfg(), 1);
    }

    #[test]
    fn az_row_inserted_this_run() {
        if skip() {
            return;
        }
        // The AZ stage just registered us: the counter reads 0 through the view.
        let w = World::new((1, 0), 0, &[]);
        let mut az_out = Out::default();
        let az = az_out
            .icsb
            .insert(AZ_TABLE, vec![("name", Datum::scalar("az1"))]);
        let v = w.views();
        let v = v.with(&az_out);
        let mut st = SeqnoState::new();
        let mut out = Out::default();
        run(
            &v,
            &Ctx {
                az,
                az_name: "az1".into(),
                isb_leader: false,
            },
            &mut st,
            &mut out,
        );
        assert_eq!(
            out.icsb.increments(),
            [(AZ_TABLE.to_string(), az, "nb_ic_cfg".to_string())]
        );
        assert_eq!(st.next_cfg(), 1);
    }
}
