//! Read-your-writes without shared mutable state: [`Intents`] are the writes a computation wants
//! (insert / update columns / delete), and a [`View`] shows a replica with any number of intent
//! layers applied on top, so a later stage sees what an earlier stage decided in the same run
//! (rows it inserted, columns it set, rows it deleted) before anything is committed.
//!
//! A set column can also be *edited* ([`Intents::edit_set`]: elements to add and remove), which
//! is sent as a `mutate` and costs the size of the change, not of the set — a router with
//! thousands of learned routes gains one without its `static_routes` being copied or compared.
//!
//! Inserted rows get their final UUID at once (OVSDB's `insert` with `"uuid"`, OVS ≥ 2.13), so
//! references to them need no renaming. The output stage turns intents into a [`Txn`],
//! comparing each update with the replica so that only real changes are sent.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use super::datum::{Atom, AtomSet, Datum, SetEdit};
use super::replica::{Expect, Replica, Row};
use super::txn::{RowRef, Txn};
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

/// One table's row intents, shared between the stage that computed them and the merged
/// output (copied on write, see [`Intents::merge`]).
type TableIntents = Arc<BTreeMap<Uuid, RowIntent>>;

/// The writes intended for one database, by table and row UUID.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Intents {
    tables: BTreeMap<String, TableIntents>,
    comments: Vec<String>,
    /// Atomic `+= 1` of an integer column (table, row, column); sent even alone.
    increments: Vec<(String, Uuid, String)>,
    /// Edits of set columns of existing rows, by table, row and column. A row never has both
    /// an edit and a whole value of the same column ([`Intents::update`] replaces the edit,
    /// an edit of a column an update or insert sets is applied to that value).
    edits: BTreeMap<String, BTreeMap<Uuid, BTreeMap<String, SetEdit>>>,
}

impl Intents {
    pub fn new() -> Intents {
        Intents::default()
    }

    pub fn is_empty(&self) -> bool {
        self.tables.values().all(|t| t.is_empty())
            && self.increments.is_empty()
            && self.edits.values().all(BTreeMap::is_empty)
    }

    /// Number of row intents (a row only edited counts once).
    pub fn len(&self) -> usize {
        let edited_only = self
            .edits
            .iter()
            .flat_map(|(t, rows)| rows.keys().map(move |u| (t, u)))
            .filter(|(t, u)| self.get(t, **u).is_none())
            .count();
        self.tables.values().map(|t| t.len()).sum::<usize>() + edited_only
    }

    pub fn clear(&mut self) {
        self.tables.clear();
        self.comments.clear();
        self.increments.clear();
        self.edits.clear();
    }

    /// Add the elements `insert` to, and remove `delete` from, the set column `column` of a row
    /// (later calls win for an element). Sent as a `mutate` of the elements that really change.
    /// For set columns only: views and transactions ignore an edit of a map column of an
    /// existing row, but one folded into an insert would be written as a set.
    pub fn edit_set(
        &mut self,
        table: &str,
        uuid: Uuid,
        column: &str,
        insert: impl IntoIterator<Item = Atom>,
        delete: impl IntoIterator<Item = Atom>,
    ) {
        let mut e = SetEdit::new();
        for a in delete {
            e.remove(a);
        }
        for a in insert {
            e.add(a);
        }
        self.apply_edit(table, uuid, column, &e);
    }

    fn apply_edit(&mut self, table: &str, uuid: Uuid, column: &str, e: &SetEdit) {
        if e.is_empty() {
            return;
        }
        // Look before unsharing: most edits are of rows these intents do not hold.
        let held = match self.tables.get(table).and_then(|t| t.get(&uuid)) {
            Some(RowIntent::Update(cols)) => cols.contains_key(column),
            Some(_) => true,
            None => false,
        };
        let row = if held {
            self.tables
                .get_mut(table)
                .and_then(|t| Arc::make_mut(t).get_mut(&uuid))
        } else {
            None
        };
        match row {
            Some(RowIntent::Delete) => return,
            Some(RowIntent::Insert(cols)) => {
                // A new row's set column starts empty (edits are for set columns only).
                let d = cols
                    .entry(column.to_string())
                    .or_insert_with(Datum::empty_set);
                d.apply_set_edit(e);
                return;
            }
            Some(RowIntent::Update(cols)) => {
                if let Some(d) = cols.get_mut(column) {
                    d.apply_set_edit(e);
                    return;
                }
            }
            None => {}
        }
        self.edits
            .entry(table.to_string())
            .or_default()
            .entry(uuid)
            .or_default()
            .entry(column.to_string())
            .or_default()
            .then(e);
    }

    /// The set-column edits of a row.
    pub fn edits_of(&self, table: &str, uuid: Uuid) -> Option<&BTreeMap<String, SetEdit>> {
        self.edits.get(table)?.get(&uuid)
    }

    /// The rows of `table` with set-column edits.
    pub fn edited(&self, table: &str) -> impl Iterator<Item = (&Uuid, &BTreeMap<String, SetEdit>)> {
        self.edits.get(table).into_iter().flatten()
    }

    /// Drop the edits of `columns` of a row (a whole value replaces them).
    fn drop_edits(&mut self, table: &str, uuid: Uuid, columns: Option<&[&str]>) {
        let Some(rows) = self.edits.get_mut(table) else {
            return;
        };
        let Some(cols) = rows.get_mut(&uuid) else {
            return;
        };
        match columns {
            None => cols.clear(),
            Some(cs) => cols.retain(|c, _| !cs.contains(&c.as_str())),
        }
        if cols.is_empty() {
            rows.remove(&uuid);
        }
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
        self.table_mut(table).insert(uuid, RowIntent::Insert(cols));
        uuid
    }

    /// Set columns of a row (existing, or inserted by these intents).
    pub fn update(&mut self, table: &str, uuid: Uuid, cols: Vec<(&str, Datum)>) {
        let names: Vec<&str> = cols.iter().map(|(c, _)| *c).collect();
        self.drop_edits(table, uuid, Some(&names));
        let t = self.table_mut(table);
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
        self.drop_edits(table, uuid, None);
        let t = self.table_mut(table);
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
        self.tables.get(table).into_iter().flat_map(|t| t.iter())
    }

    /// One table's intents, to change (unshared first if the table is shared).
    fn table_mut(&mut self, table: &str) -> &mut BTreeMap<Uuid, RowIntent> {
        Arc::make_mut(self.tables.entry(table.to_string()).or_default())
    }

    pub fn get(&self, table: &str, uuid: Uuid) -> Option<&RowIntent> {
        self.tables.get(table)?.get(&uuid)
    }

    /// Merge `other` into `self` (later wins per column).
    ///
    /// A table that `self` holds neither intents nor edits of is shared, not copied (with
    /// edits of its own, row-by-row merging would drop those the new rows override): the
    /// graph's output node merges every stage's output, and a cold start's thousands of
    /// learned routes were held twice at the peak.
    pub fn merge(&mut self, other: &Intents) {
        for (t, rows) in &other.tables {
            let vacant = !matches!(self.tables.get(t), Some(r) if !r.is_empty());
            if vacant && !self.edits.contains_key(t) {
                self.tables.insert(t.clone(), Arc::clone(rows));
                continue;
            }
            for (u, i) in rows.iter() {
                match i {
                    RowIntent::Delete => self.delete(t, *u),
                    RowIntent::Insert(m) => {
                        self.table_mut(t).insert(*u, RowIntent::Insert(m.clone()));
                    }
                    RowIntent::Update(m) => self.update(
                        t,
                        *u,
                        m.iter().map(|(c, d)| (c.as_str(), d.clone())).collect(),
                    ),
                }
            }
        }
        for (t, rows) in &other.edits {
            for (u, cols) in rows {
                for (c, e) in cols {
                    self.apply_edit(t, *u, c, e);
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
        let mut edits = self.edits;
        for (table, rows) in self.tables {
            // Unshared by now (the stages' copies are dropped first); copied otherwise.
            let rows = Arc::try_unwrap(rows).unwrap_or_else(|shared| (*shared).clone());
            let mut table_edits = edits.remove(&table).unwrap_or_default();
            for (uuid, intent) in rows {
                let exists = || replica.get(&table, uuid).is_some();
                let e = match intent {
                    RowIntent::Insert(cols) => Expect::Row(cols),
                    RowIntent::Update(cols) if exists() => match table_edits.remove(&uuid) {
                        Some(sets) => match edit_expectation(replica, &table, uuid, cols, sets) {
                            Some(e) => e,
                            None => continue,
                        },
                        None => Expect::Row(cols),
                    },
                    RowIntent::Delete if exists() => Expect::Deleted,
                    _ => continue,
                };
                res.push((table.clone(), uuid, e));
            }
            if !table_edits.is_empty() {
                edits.insert(table, table_edits);
            }
        }
        for (table, rows) in edits {
            for (uuid, sets) in rows {
                if let Some(e) = edit_expectation(replica, &table, uuid, BTreeMap::new(), sets) {
                    res.push((table.clone(), uuid, e));
                }
            }
        }
        res
    }

    /// Append these intents to `txn`, sending only real changes: inserts with their UUID,
    /// updates of the columns that differ from the replica (columns the server lacks are never
    /// sent), deletes of rows that still exist. Intents on rows that vanished are dropped.
    pub fn to_txn(&self, replica: &Replica, txn: &mut Txn) {
        for (table, rows) in &self.tables {
            for (uuid, intent) in rows.iter() {
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
        for (table, rows) in &self.edits {
            for (uuid, cols) in rows {
                let Some(row) = replica.get(table, *uuid) else {
                    continue;
                };
                let mut muts: Vec<(&str, &str, Datum)> = vec![];
                for (c, e) in cols {
                    if !row.has_column(c) {
                        continue;
                    }
                    let Some(cur) = row.get(c).as_set() else {
                        continue;
                    };
                    let (ins, del) = e.effect(cur);
                    if !del.is_empty() {
                        muts.push((c.as_str(), "delete", Datum::Set(del)));
                    }
                    if !ins.is_empty() {
                        muts.push((c.as_str(), "insert", Datum::Set(ins)));
                    }
                }
                txn.mutate(table, &RowRef::Existing(*uuid), muts);
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

/// The echo of an update that also edits set columns: for each edited column, the elements it
/// toggles in the replica's current value (what the `modify` will carry). None when the
/// edits change nothing and no column is set (nothing is sent).
fn edit_expectation(
    replica: &Replica,
    table: &str,
    uuid: Uuid,
    cols: BTreeMap<String, Datum>,
    sets: BTreeMap<String, SetEdit>,
) -> Option<Expect> {
    let row = replica.get(table, uuid)?;
    let toggles: BTreeMap<String, AtomSet> = sets
        .into_iter()
        .filter(|(c, _)| row.has_column(c))
        .filter_map(|(c, e)| {
            let t = e.toggles(row.get(&c).as_set()?);
            (!t.is_empty()).then_some((c, t))
        })
        .collect();
    if toggles.is_empty() && cols.is_empty() {
        return None;
    }
    Some(Expect::Edited {
        cols,
        toggles,
        verdict: None,
    })
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
            let intent = l.get(table, uuid);
            let edits = l.edits_of(table, uuid);
            if intent.is_none() && edits.is_none() {
                continue;
            }
            touched = true;
            match intent {
                None => {}
                Some(RowIntent::Delete) => cur = None,
                Some(RowIntent::Insert(cols)) => {
                    let mut row = self.replica.new_row(table, uuid)?;
                    for (c, d) in cols {
                        row.set(c, d.clone());
                    }
                    cur = Some(Cow::Owned(row));
                }
                Some(RowIntent::Update(cols)) => {
                    if let Some(r) = cur.as_mut() {
                        let r = r.to_mut();
                        for (c, d) in cols {
                            r.set(c, d.clone());
                        }
                    }
                }
            }
            // A layer's edits apply after its own intent (they never touch a column it sets).
            if let (Some(edits), Some(r)) = (edits, cur.as_mut()) {
                let r = r.to_mut();
                for (c, e) in edits {
                    r.apply_set_edit(c, e);
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
            let edited = l.edited(table).map(|(u, _)| u);
            for u in l.table(table).map(|(u, _)| u).chain(edited) {
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
        let touched = self
            .layers
            .iter()
            .any(|l| l.table(table).next().is_some() || l.edited(table).next().is_some());
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
                .chain(
                    l.edited(table)
                        .filter(|(_, cols)| cols.contains_key(column))
                        .map(|(u, _)| *u),
                )
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

    /// Merging shares a table the target holds nothing of, even when edits of other rows of
    /// that table come along; the merged result is what merging row by row gives, and a table
    /// both sides hold is unshared before it is changed.
    #[test]
    fn merge_shares_tables_it_does_not_hold_yet() {
        let k = |s: &str| Atom::from(s);
        let mut stage = Intents::new();
        let a = stage.insert("A", vec![("name", Datum::scalar("a"))]);
        stage.update("A", Uuid(2), vec![("name", Datum::scalar("b"))]);
        stage.edit_set("A", Uuid(3), "tags", [k("t")], []);
        let mut out = Intents::new();
        out.merge(&stage);
        assert!(Arc::ptr_eq(&out.tables["A"], &stage.tables["A"]));
        assert_eq!(out, stage);
        assert_eq!(out.edits_of("A", Uuid(3)).map(|e| e.len()), Some(1));

        // Another stage's intents on the same table: `out` gets its own copy, `stage` keeps
        // its rows.
        let mut other = Intents::new();
        other.update("A", Uuid(2), vec![("name", Datum::scalar("c"))]);
        other.delete("A", a);
        out.merge(&other);
        assert!(!Arc::ptr_eq(&out.tables["A"], &stage.tables["A"]));
        assert_eq!(
            out.get("A", Uuid(2)),
            Some(&RowIntent::Update(BTreeMap::from([(
                "name".to_string(),
                Datum::scalar("c")
            )])))
        );
        assert_eq!(
            out.get("A", a),
            None,
            "the delete of an own insert cancels it"
        );
        assert!(matches!(stage.get("A", a), Some(RowIntent::Insert(_))));
        assert_eq!(
            stage.get("A", Uuid(2)),
            Some(&RowIntent::Update(BTreeMap::from([(
                "name".to_string(),
                Datum::scalar("b")
            )])))
        );

        // Consuming a shared table copies it; the source is untouched.
        let mut shared = Intents::new();
        shared.merge(&stage);
        let r = replica();
        let want = stage.clone().into_expectations(&r).len();
        assert!(want > 0);
        assert_eq!(shared.into_expectations(&r).len(), want);
        assert_eq!(stage.table("A").count(), 2);
    }

    /// Set edits: merged in order, folded into whole values, shown by views, and sent as a
    /// `mutate` of the elements that really change.
    #[test]
    fn set_edits_merge_show_and_send_only_changes() {
        let r = replica();
        let k = |s: &str| Atom::from(s);
        let mut a = Intents::new();
        a.edit_set("A", Uuid(1), "opts", [k("x")], []);
        // opts is a map: an edit of a map column is ignored by views and never sent.
        let v = View::new(&r).with(&a);
        assert!(v.get("A", Uuid(1)).unwrap().get("opts").is_empty());
        let mut t = Txn::new("T");
        a.to_txn(&r, &mut t);
        assert!(t.is_empty());

        // A set column: the replica schema of the overlay tests has none, so use a string set
        // through a fresh schema.
        let s = json!({"name": "T", "version": "1.0.0", "tables": {"A": {"columns": {
            "tags": {"type": {"key": "string", "min": 0, "max": "unlimited"}}
        }}}});
        let mut r = Replica::new("T");
        let mut mon = BTreeMap::new();
        mon.insert("A".to_string(), vec!["tags".to_string()]);
        r.set_schema(Arc::new(DatabaseSchema::from_json(&s).unwrap()), &mon);
        r.apply_update2(&json!({"A": {
            "00000000-0000-0000-0000-000000000001": {"insert": {"tags": ["set", ["a", "b"]]}}
        }}))
        .unwrap();
        let tags = |v: &View| -> Vec<String> {
            v.get("A", Uuid(1))
                .unwrap()
                .get("tags")
                .as_set()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap().to_string())
                .collect()
        };
        let mut l1 = Intents::new();
        l1.edit_set("A", Uuid(1), "tags", [k("c")], [k("a")]);
        let mut l2 = Intents::new();
        l2.edit_set("A", Uuid(1), "tags", [k("a")], [k("c"), k("b")]);
        assert_eq!(tags(&View::new(&r).with(&l1)), ["b", "c"]);
        assert_eq!(tags(&View::new(&r).with(&l1).with(&l2)), ["a"]);
        let mut m = l1.clone();
        m.merge(&l2);
        assert_eq!(tags(&View::new(&r).with(&m)), ["a"]);
        assert_eq!(m.len(), 1);
        // Sent: only b deleted (a is kept, c never existed).
        let mut t = Txn::new("T");
        m.to_txn(&r, &mut t);
        assert_eq!(t.n_writes(), 1);
        let p = t.to_params(None);
        assert_eq!(p[1]["op"], "mutate");
        assert_eq!(p[1]["mutations"], json!([["tags", "delete", "b"]]));
        // A whole value replaces an edit; a later edit applies to the whole value.
        let mut w = l1.clone();
        w.update("A", Uuid(1), vec![("tags", Datum::set([k("z")]))]);
        assert!(w.edits_of("A", Uuid(1)).is_none());
        w.edit_set("A", Uuid(1), "tags", [k("y")], []);
        assert_eq!(tags(&View::new(&r).with(&w)), ["y", "z"]);
        // A delete drops the edits.
        let mut d = l1.clone();
        d.delete("A", Uuid(1));
        assert!(d.edits_of("A", Uuid(1)).is_none());
        // An edit that changes nothing sends nothing.
        let mut n = Intents::new();
        n.edit_set("A", Uuid(1), "tags", [k("a")], [k("q")]);
        let mut t = Txn::new("T");
        n.to_txn(&r, &mut t);
        assert!(t.is_empty());
    }

    #[test]
    fn delete_of_own_insert_cancels() {
        let mut i = Intents::new();
        let u = i.insert("A", vec![]);
        i.delete("A", u);
        assert!(i.is_empty());
    }
}
