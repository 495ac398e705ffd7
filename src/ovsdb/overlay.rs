//! Read-your-writes without shared mutable state: [`Intents`] are the writes a computation wants
//! (insert / update columns / delete), and a [`View`] shows a replica with any number of intent
//! layers applied on top, so a later stage sees what an earlier stage decided in the same run
//! (rows it inserted, columns it set, rows it deleted) before anything is committed.
//!
//! Inserted rows get their final UUID at once (OVSDB's `insert` with `"uuid"`, OVS ≥ 2.13), so
//! references to them need no renaming. The output stage turns intents into a [`Txn`],
//! comparing each update with the replica so that only real changes are sent.

use std::borrow::Cow;
use std::collections::BTreeMap;

use super::datum::Datum;
use super::replica::{Expect, Replica, Row};
use super::txn::Txn;
use super::uuid::Uuid;

/// What a computation wants done to one row.
#[derive(Debug, Clone, PartialEq)]
pub enum RowIntent {
    /// A new row with these columns (others default).
    Insert(BTreeMap<String, Datum>),
    /// Set these columns of an existing row.
    Update(BTreeMap<String, Datum>),
    Delete,
}

/// The writes intended for one database, by table and row UUID.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Intents {
    tables: BTreeMap<String, BTreeMap<Uuid, RowIntent>>,
    comments: Vec<String>,
    /// Atomic `+= 1` of an integer column (table, row, column); sent even alone.
    increments: Vec<(String, Uuid, String)>,
}

impl Intents {
    pub fn new() -> Intents {
        Intents::default()
    }

    pub fn is_empty(&self) -> bool {
        self.tables.values().all(BTreeMap::is_empty) && self.increments.is_empty()
    }

    /// Number of row intents.
    pub fn len(&self) -> usize {
        self.tables.values().map(BTreeMap::len).sum()
    }

    pub fn clear(&mut self) {
        self.tables.clear();
        self.comments.clear();
        self.increments.clear();
    }

    /// Atomically increment an integer column by one (`mutate +=`), read back on commit.
    pub fn increment(&mut self, table: &str, uuid: Uuid, column: &str) {
        self.increments
            .push((table.to_string(), uuid, column.to_string()));
    }

    pub fn increments(&self) -> &[(String, Uuid, String)] {
        &self.increments
    }

    /// Insert a new row; returns its (final) UUID.
    pub fn insert(&mut self, table: &str, cols: Vec<(&str, Datum)>) -> Uuid {
        let uuid = Uuid::random();
        let cols = cols.into_iter().map(|(c, d)| (c.to_string(), d)).collect();
        self.tables
            .entry(table.to_string())
            .or_default()
            .insert(uuid, RowIntent::Insert(cols));
        uuid
    }

    /// Set columns of a row (existing, or inserted by these intents).
    pub fn update(&mut self, table: &str, uuid: Uuid, cols: Vec<(&str, Datum)>) {
        let t = self.tables.entry(table.to_string()).or_default();
        match t
            .entry(uuid)
            .or_insert_with(|| RowIntent::Update(BTreeMap::new()))
        {
            RowIntent::Insert(m) | RowIntent::Update(m) => {
                for (c, d) in cols {
                    m.insert(c.to_string(), d);
                }
            }
            RowIntent::Delete => {}
        }
    }

    /// Delete a row (an insert of these intents is simply dropped).
    pub fn delete(&mut self, table: &str, uuid: Uuid) {
        let t = self.tables.entry(table.to_string()).or_default();
        if matches!(t.get(&uuid), Some(RowIntent::Insert(_))) {
            t.remove(&uuid);
        } else {
            t.insert(uuid, RowIntent::Delete);
        }
    }

    pub fn add_comment(&mut self, c: &str) {
        if !self.comments.iter().any(|x| x == c) {
            self.comments.push(c.to_string());
        }
    }

    pub fn comments(&self) -> &[String] {
        &self.comments
    }

    /// The intents of one table.
    pub fn table(&self, table: &str) -> impl Iterator<Item = (&Uuid, &RowIntent)> {
        self.tables.get(table).into_iter().flatten()
    }

    pub fn get(&self, table: &str, uuid: Uuid) -> Option<&RowIntent> {
        self.tables.get(table)?.get(&uuid)
    }

    /// Merge `other` into `self` (later wins per column).
    pub fn merge(&mut self, other: &Intents) {
        for (t, rows) in &other.tables {
            for (u, i) in rows {
                match i {
                    RowIntent::Delete => self.delete(t, *u),
                    RowIntent::Insert(m) => {
                        self.tables
                            .entry(t.clone())
                            .or_default()
                            .insert(*u, RowIntent::Insert(m.clone()));
                    }
                    RowIntent::Update(m) => self.update(
                        t,
                        *u,
                        m.iter().map(|(c, d)| (c.as_str(), d.clone())).collect(),
                    ),
                }
            }
        }
        for c in &other.comments {
            self.add_comment(c);
        }
        self.increments.extend(other.increments.iter().cloned());
    }

    /// What the rows look like once [`Intents::to_txn`]'s transaction is committed, for
    /// [`Replica::expect`]: the same rows it sends (updates and deletes of rows that still
    /// exist, every insert), with the columns the intents set.
    /// Consumes the intents (no copy of the written values).
    pub fn into_expectations(self, replica: &Replica) -> Vec<(String, Uuid, Expect)> {
        let mut res = vec![];
        for (table, rows) in self.tables {
            for (uuid, intent) in rows {
                let exists = || replica.get(&table, uuid).is_some();
                let e = match intent {
                    RowIntent::Insert(cols) => Expect::Row(cols),
                    RowIntent::Update(cols) if exists() => Expect::Row(cols),
                    RowIntent::Delete if exists() => Expect::Deleted,
                    _ => continue,
                };
                res.push((table.clone(), uuid, e));
            }
        }
        res
    }

    /// Append these intents to `txn`, sending only real changes: inserts with their UUID,
    /// updates of the columns that differ from the replica (columns the server lacks are never
    /// sent), deletes of rows that still exist. Intents on rows that vanished are dropped.
    pub fn to_txn(&self, replica: &Replica, txn: &mut Txn) {
        for (table, rows) in &self.tables {
            for (uuid, intent) in rows {
                match intent {
                    RowIntent::Insert(cols) => {
                        txn.insert_with_uuid(
                            replica,
                            table,
                            *uuid,
                            cols.iter().map(|(c, d)| (c.as_str(), d.clone())).collect(),
                        );
                    }
                    RowIntent::Update(cols) => {
                        if replica.get(table, *uuid).is_some() {
                            txn.update(
                                replica,
                                table,
                                *uuid,
                                cols.iter().map(|(c, d)| (c.as_str(), d.clone())).collect(),
                            );
                        }
                    }
                    RowIntent::Delete => {
                        if replica.get(table, *uuid).is_some() {
                            txn.delete(table, *uuid);
                        }
                    }
                }
            }
        }
        for (t, u, c) in &self.increments {
            if replica.get(t, *u).is_some() {
                txn.increment(t, *u, c);
            }
        }
        for c in &self.comments {
            txn.add_comment(c);
        }
    }
}

/// A replica seen through intent layers (applied in order, later layers win).
#[derive(Clone)]
pub struct View<'a> {
    replica: &'a Replica,
    layers: Vec<&'a Intents>,
}

impl<'a> View<'a> {
    pub fn new(replica: &'a Replica) -> View<'a> {
        View {
            replica,
            layers: vec![],
        }
    }

    /// This view with one more layer on top.
    pub fn with(&self, layer: &'a Intents) -> View<'a> {
        let mut v = self.clone();
        v.layers.push(layer);
        v
    }

    pub fn replica(&self) -> &'a Replica {
        self.replica
    }

    /// The final intent for a row across layers: None = untouched.
    fn effective(
        &self,
        table: &str,
        uuid: Uuid,
        base: Option<&'a Row>,
    ) -> Option<Option<Cow<'a, Row>>> {
        let mut touched = false;
        let mut cur: Option<Cow<'a, Row>> = base.map(Cow::Borrowed);
        for l in &self.layers {
            let Some(i) = l.get(table, uuid) else {
                continue;
            };
            touched = true;
            match i {
                RowIntent::Delete => cur = None,
                RowIntent::Insert(cols) => {
                    let mut row = self.replica.new_row(table, uuid)?;
                    for (c, d) in cols {
                        row.set(c, d.clone());
                    }
                    cur = Some(Cow::Owned(row));
                }
                RowIntent::Update(cols) => {
                    if let Some(r) = cur.as_mut() {
                        let r = r.to_mut();
                        for (c, d) in cols {
                            r.set(c, d.clone());
                        }
                    }
                }
            }
        }
        touched.then_some(cur)
    }

    /// A row as it will be after the intents.
    pub fn get(&self, table: &str, uuid: Uuid) -> Option<Cow<'a, Row>> {
        let base = self.replica.get(table, uuid);
        match self.effective(table, uuid, base) {
            None => base.map(Cow::Borrowed),
            Some(r) => r,
        }
    }

    /// All rows of `table` after the intents, in UUID order.
    pub fn rows(&self, table: &str) -> Vec<Cow<'a, Row>> {
        let mut out: BTreeMap<Uuid, Cow<'a, Row>> = BTreeMap::new();
        for r in self.replica.iter(table) {
            out.insert(r.uuid(), Cow::Borrowed(r));
        }
        for l in &self.layers {
            for (u, _) in l.table(table) {
                let base = self.replica.get(table, *u);
                match self.effective(table, *u, base) {
                    Some(Some(r)) => {
                        out.insert(*u, r);
                    }
                    Some(None) => {
                        out.remove(u);
                    }
                    None => {}
                }
            }
        }
        out.into_values().collect()
    }

    /// Rows of `table` whose string column `column` equals `value`.
    pub fn find_by_str(&self, table: &str, column: &str, value: &str) -> Vec<Cow<'a, Row>> {
        let touched = self.layers.iter().any(|l| l.table(table).next().is_some());
        if !touched {
            return self
                .replica
                .find(table, &[column], &[Datum::scalar(value)])
                .into_iter()
                .map(Cow::Borrowed)
                .collect();
        }
        // The replica's matches (through its index) as the layers leave them, then the rows
        // whose intents set `column` to `value` (or insert a row without it when `value` is the
        // default ""): a row whose column no layer sets keeps the replica's value, so the index
        // already found it. Only candidates are materialised, so a lookup costs no row copy
        // per layered row (thousands of rows inserted by an earlier stage made every lookup
        // build thousands of rows).
        let mut seen = std::collections::HashSet::new();
        let mut out = vec![];
        let base = self.replica.find(table, &[column], &[Datum::scalar(value)]);
        let may_match = |d: &Datum| d.as_str().map_or(true, |s| s == value);
        let layered = self.layers.iter().flat_map(|l| {
            l.table(table)
                .filter(|(_, i)| match i {
                    RowIntent::Insert(cols) => cols.get(column).map_or(value.is_empty(), may_match),
                    RowIntent::Update(cols) => cols.get(column).is_some_and(may_match),
                    RowIntent::Delete => false,
                })
                .map(|(u, _)| *u)
        });
        for u in base.iter().map(|r| r.uuid()).chain(layered) {
            if !seen.insert(u) {
                continue;
            }
            if let Some(row) = self.get(table, u) {
                if row.str(column) == value {
                    out.push(row);
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ovsdb::schema::DatabaseSchema;
    use serde_json::json;
    use std::sync::Arc;

    fn replica() -> Replica {
        let s = json!({"name": "T", "version": "1.0.0", "tables": {"A": {"columns": {
            "name": {"type": "string"},
            "opts": {"type": {"key": "string", "value": "string", "min": 0, "max": "unlimited"}}
        }}}});
        let mut r = Replica::new("T");
        let mut mon = BTreeMap::new();
        mon.insert(
            "A".to_string(),
            vec!["name".to_string(), "opts".to_string()],
        );
        r.set_schema(Arc::new(DatabaseSchema::from_json(&s).unwrap()), &mon);
        r.add_index("A", &["name"]);
        r.apply_update2(&json!({"A": {
            "00000000-0000-0000-0000-000000000001": {"insert": {"name": "a"}},
            "00000000-0000-0000-0000-000000000002": {"insert": {"name": "b"}}
        }}))
        .unwrap();
        r
    }

    #[test]
    fn layers_show_inserts_updates_deletes() {
        let r = replica();
        let mut l1 = Intents::new();
        let c = l1.insert("A", vec![("name", Datum::scalar("c"))]);
        l1.update("A", Uuid(1), vec![("name", Datum::scalar("a2"))]);
        let mut l2 = Intents::new();
        l2.delete("A", Uuid(2));
        l2.update("A", c, vec![("opts", Datum::smap([("k", "v")]))]);
        let v = View::new(&r).with(&l1).with(&l2);
        let names: Vec<String> = v
            .rows("A")
            .iter()
            .map(|r| r.str("name").to_string())
            .collect();
        assert_eq!(names.len(), 2);
        assert!(names.contains(&"a2".to_string()) && names.contains(&"c".to_string()));
        assert_eq!(v.get("A", c).unwrap().smap_get("opts", "k"), Some("v"));
        assert!(v.get("A", Uuid(2)).is_none());
        assert_eq!(v.find_by_str("A", "name", "c").len(), 1);
        assert_eq!(v.find_by_str("A", "name", "a").len(), 0);
        // The replica is untouched.
        assert_eq!(View::new(&r).find_by_str("A", "name", "a").len(), 1);
    }

    #[test]
    fn to_txn_sends_only_changes() {
        let r = replica();
        let mut i = Intents::new();
        i.update("A", Uuid(1), vec![("name", Datum::scalar("a"))]);
        i.delete("A", Uuid(99));
        let mut t = Txn::new("T");
        i.to_txn(&r, &mut t);
        assert!(t.is_empty());
        i.update("A", Uuid(2), vec![("name", Datum::scalar("z"))]);
        i.insert("A", vec![("name", Datum::scalar("n"))]);
        let mut t = Txn::new("T");
        i.to_txn(&r, &mut t);
        assert_eq!(t.n_writes(), 2);
    }

    /// A lookup through layers sees inserts, renames and deletes of the layers.
    #[test]
    fn find_by_str_through_layers() {
        let r = replica();
        let mut l = Intents::new();
        let c = l.insert("A", vec![("name", Datum::scalar("a"))]);
        l.update("A", Uuid(2), vec![("name", Datum::scalar("a"))]);
        let v = View::new(&r).with(&l);
        let mut got: Vec<Uuid> = v
            .find_by_str("A", "name", "a")
            .iter()
            .map(|r| r.uuid())
            .collect();
        got.sort();
        let mut want = vec![Uuid(1), Uuid(2), c];
        want.sort();
        assert_eq!(got, want);
        let mut l2 = Intents::new();
        l2.delete("A", Uuid(1));
        l2.update("A", c, vec![("name", Datum::scalar("z"))]);
        let v = v.with(&l2);
        let got: Vec<Uuid> = v
            .find_by_str("A", "name", "a")
            .iter()
            .map(|r| r.uuid())
            .collect();
        assert_eq!(got, vec![Uuid(2)]);
        assert!(v.find_by_str("A", "name", "b").is_empty());
        // Layers that do not set the column leave the replica's value; an insert without it
        // has the default "".
        let mut l3 = Intents::new();
        l3.update("A", Uuid(2), vec![("opts", Datum::smap([("k", "v")]))]);
        let d = l3.insert("A", vec![("opts", Datum::smap([("k", "v")]))]);
        let v = v.with(&l3);
        let got: Vec<Uuid> = v
            .find_by_str("A", "name", "a")
            .iter()
            .map(|r| r.uuid())
            .collect();
        assert_eq!(got, vec![Uuid(2)]);
        let got: Vec<Uuid> = v
            .find_by_str("A", "name", "")
            .iter()
            .map(|r| r.uuid())
            .collect();
        assert_eq!(got, vec![d]);
    }

    #[test]
    fn delete_of_own_insert_cancels() {
        let mut i = Intents::new();
        let u = i.insert("A", vec![]);
        i.delete("A", u);
        assert!(i.is_empty());
    }
}
