//! Helpers shared by the stages' proofs that a scoped run writes what a full run writes
//! (gateway, address sets, service monitors): a four-database world, committing intents the
//! way the servers would, and the real writes of an [`Out`] in a form that compares inserted
//! rows by content (their UUIDs are random).

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::ic::incr::Unhandled;
use crate::ic::{Dbs, Out, Target, Views};
use crate::ovsdb::overlay::{Intents, RowIntent, View};
use crate::ovsdb::replica::Replica;
use crate::ovsdb::{Datum, Uuid};

/// The databases of one AZ (IC-SB read through both sessions from the same replica).
pub struct World {
    pub nb: Replica,
    pub sb: Replica,
    pub icnb: Replica,
    pub icsb: Replica,
}

impl World {
    pub fn views(&self) -> Views<'_> {
        Views::new(Dbs {
            nb: &self.nb,
            sb: &self.sb,
            icnb: &self.icnb,
            icsb: &self.icsb,
            icsb_locked: &self.icsb,
        })
    }

    pub fn replica(&self, t: Target) -> &Replica {
        match t {
            Target::Nb => &self.nb,
            Target::Sb => &self.sb,
            Target::IcNb => &self.icnb,
            Target::IcSb | Target::IcSbLocked => &self.icsb,
        }
    }

    pub fn replica_mut(&mut self, t: Target) -> &mut Replica {
        match t {
            Target::Nb => &mut self.nb,
            Target::Sb => &mut self.sb,
            Target::IcNb => &mut self.icnb,
            Target::IcSb | Target::IcSbLocked => &mut self.icsb,
        }
    }

    /// Commit `out` to the replicas (tracked as changes, like updates from the servers).
    pub fn commit(&mut self, out: &Out) {
        for t in TARGETS {
            commit(self.replica_mut(t), out.get(t));
        }
    }

    /// Forget the tracked changes (a run completed).
    pub fn clear(&mut self) {
        for r in [&mut self.nb, &mut self.sb, &mut self.icnb, &mut self.icsb] {
            r.clear_changes();
        }
    }

    /// The tables with tracked changes, by database (IC-SB as the unlocked session).
    pub fn changed(&self) -> Vec<(Target, String)> {
        [Target::Nb, Target::Sb, Target::IcNb, Target::IcSb]
            .into_iter()
            .flat_map(|t| {
                self.replica(t)
                    .changed_tables()
                    .into_iter()
                    .map(move |n| (t, n.to_string()))
            })
            .collect()
    }

    /// The real writes of `out` against the current replicas, sorted.
    pub fn real_writes(&self, out: &Out) -> Vec<String> {
        let mut res = vec![];
        for t in TARGETS {
            res.extend(real_writes(self.replica(t), out.get(t), &format!("{t:?}")));
        }
        res.sort();
        res
    }
}

const TARGETS: [Target; 5] = [
    Target::Nb,
    Target::Sb,
    Target::IcNb,
    Target::IcSb,
    Target::IcSbLocked,
];

/// Apply `i` to `rp` as the server's update notification would (rows as the view shows them).
pub fn commit(rp: &mut Replica, i: &Intents) {
    let names: Vec<String> = rp.table_names().map(str::to_string).collect();
    let mut upd = serde_json::Map::new();
    {
        let view = View::new(rp).with(i);
        for t in &names {
            let mut rows = serde_json::Map::new();
            for (uid, _) in i.table(t) {
                let new = view.get(t, *uid).map(|row| row.to_json());
                if new.is_none() && rp.get(t, *uid).is_none() {
                    continue;
                }
                rows.insert(
                    uid.to_string(),
                    json!({ "new": new.unwrap_or(Value::Null) }),
                );
            }
            if !rows.is_empty() {
                upd.insert(t.clone(), Value::Object(rows));
            }
        }
    }
    rp.apply_update1(&Value::Object(upd)).expect("commit");
}

/// Delete the rows of the non-root `table` that no `referrers` (table, column) references, as
/// the server's garbage collection does.
pub fn gc(rp: &mut Replica, table: &str, referrers: &[(&str, &str)]) {
    let used: Vec<Uuid> = referrers
        .iter()
        .flat_map(|(t, c)| {
            rp.iter(t)
                .flat_map(|r| r.get(c).uuids().collect::<Vec<_>>())
                .collect::<Vec<_>>()
        })
        .collect();
    let mut i = Intents::new();
    for r in rp.iter(table) {
        if !used.contains(&r.uuid()) {
            i.delete(table, r.uuid());
        }
    }
    commit(rp, &i);
}

/// The operations `i` would really send against `rp` (as [`Intents::to_txn`] decides), each as
/// a line; inserted rows (and references to them) are shown by content.
pub fn real_writes(rp: &Replica, i: &Intents, tag: &str) -> Vec<String> {
    let tables: Vec<String> = rp.table_names().map(str::to_string).collect();
    let cols_of = |t: &str, c: &BTreeMap<String, Datum>, render: &dyn Fn(&Datum) -> String| {
        c.iter()
            .filter(|(k, _)| rp.has_column(t, k))
            .map(|(k, d)| format!("{k}={}", render(d)))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let plain = |d: &Datum| d.to_json().to_string();
    let mut inserted: BTreeMap<Uuid, String> = BTreeMap::new();
    for t in &tables {
        for (u, x) in i.table(t) {
            if let RowIntent::Insert(c) = x {
                inserted.insert(*u, format!("{t}{{{}}}", cols_of(t, c, &plain)));
            }
        }
    }
    let render = |d: &Datum| -> String {
        let mut items: Vec<String> = d
            .uuids()
            .map(|x| inserted.get(&x).cloned().unwrap_or_else(|| x.to_string()))
            .collect();
        if items.is_empty() {
            return d.to_json().to_string();
        }
        items.sort();
        format!("{items:?}")
    };
    let mut res = vec![];
    for t in &tables {
        for (u, x) in i.table(t) {
            match x {
                RowIntent::Insert(c) => {
                    res.push(format!("{tag} insert {t} {}", cols_of(t, c, &render)))
                }
                RowIntent::Update(c) => {
                    let Some(row) = rp.get(t, *u) else { continue };
                    for (k, d) in c {
                        if rp.has_column(t, k) && row.get(k) != d {
                            res.push(format!("{tag} update {t} {u} {k}={}", render(d)));
                        }
                    }
                }
                RowIntent::Delete => {
                    if rp.get(t, *u).is_some() {
                        res.push(format!("{tag} delete {t} {u}"));
                    }
                }
            }
        }
    }
    res
}

/// The stage under proof: its full run and its change handlers on the world's tracked changes.
pub trait Stage {
    /// The full run.
    fn full(&self, w: &World) -> Out;
    /// The handlers for every changed table, as the graph calls them (one `Out` accumulated).
    fn incremental(&self, w: &World) -> Result<Out, Unhandled>;
    /// What the servers do after a commit (garbage collection).
    fn after_commit(&self, _w: &mut World) {}
}

/// Commit full runs until one wants no real write; then forget the changes.
pub fn converge(w: &mut World, s: &dyn Stage) {
    for _ in 0..6 {
        let out = s.full(w);
        if w.real_writes(&out).is_empty() {
            w.clear();
            return;
        }
        w.commit(&out);
        s.after_commit(w);
        w.clear();
    }
    panic!("the full run does not converge");
}

/// The proof after one change: the handlers write exactly what a full run writes, and so on
/// for the writes coming back, until the world is quiet again; the last handled run (our
/// own writes coming back) wants no intent at all, not even one that would write nothing. Returns whether the change caused writes.
pub fn check_step(w: &mut World, s: &dyn Stage, what: &str) -> bool {
    let mut wrote = false;
    for round in 0..6 {
        let inc = s
            .incremental(w)
            .unwrap_or_else(|e| panic!("{what} (round {round}): not handled: {}", e.0));
        let full = s.full(w);
        let (ei, ef) = (w.real_writes(&inc), w.real_writes(&full));
        assert_eq!(ei, ef, "{what} (round {round}): scoped vs full");
        if ef.is_empty() {
            assert!(
                inc.is_empty(),
                "{what} (round {round}): no-op intents: {inc:#?}"
            );
            w.clear();
            return wrote;
        }
        wrote = true;
        w.clear();
        w.commit(&inc);
        s.after_commit(w);
    }
    panic!("{what}: does not settle");
}
