//! In-memory replica of a monitored database with per-iteration change tracking.
//!
//! The replica is owned by the main loop (single writer, no locks). A session feeds it the
//! monitor replies and notifications in the order the server sent them; the caller reads the
//! rows and the changes tracked since the last [`Replica::clear_changes`] (inserted, updated
//! with the old row, deleted with the old row), then clears them.
//!
//! A full resync (a reconnect without `monitor_cond_since` history) replaces the contents; the
//! difference between the old and the new contents is tracked as ordinary changes, so callers
//! never see a reconnect as "everything deleted, everything inserted".

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use serde_json::value::RawValue;
use serde_json::Value;

use super::datum::{AtomSet, Datum, DatumError, SetEdit};
use super::schema::{ColumnType, DatabaseSchema};
use super::uuid::Uuid;

/// Errors decoding monitor updates. The session treats them as a protocol error (reconnect).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ReplicaError {
    #[error("table updates must be a JSON object")]
    NotObject,
    #[error("unknown table {0} in update")]
    UnknownTable(String),
    #[error("bad row UUID {0:?}")]
    BadUuid(String),
    #[error("bad row update for {table} row {uuid}: {msg}")]
    BadRowUpdate {
        table: String,
        uuid: Uuid,
        msg: String,
    },
    #[error("table {table} column {column}: {err}")]
    Datum {
        table: String,
        column: String,
        err: DatumError,
    },
}

/// `<table-updates>` (or `<table-updates2>`) as received: `{table: {uuid: row-update}}`.
///
/// A [`Value`] (tests, small messages) or raw text ([`RawValue`], what the session delivers),
/// which is decoded one row at a time so that a large update never exists as one JSON tree.
pub trait TableUpdates {
    /// Calls `f(table, uuid, row-update)` for every row, tables and rows in name order; stops
    /// at the first error (a row name that is not a UUID is one).
    fn each_row(
        &self,
        f: &mut dyn FnMut(&str, Uuid, &Value) -> Result<(), ReplicaError>,
    ) -> Result<(), ReplicaError>;
}

/// The UUID a row update is keyed by.
fn row_uuid(s: &str) -> Result<Uuid, ReplicaError> {
    s.parse().map_err(|_| ReplicaError::BadUuid(s.to_string()))
}

impl TableUpdates for Value {
    fn each_row(
        &self,
        f: &mut dyn FnMut(&str, Uuid, &Value) -> Result<(), ReplicaError>,
    ) -> Result<(), ReplicaError> {
        let tables = self.as_object().ok_or(ReplicaError::NotObject)?;
        for (tname, rows) in tables {
            let rows = rows.as_object().ok_or(ReplicaError::NotObject)?;
            for (uuid, ru) in rows {
                f(tname, row_uuid(uuid)?, ru)?;
            }
        }
        Ok(())
    }
}

impl TableUpdates for RawValue {
    fn each_row(
        &self,
        f: &mut dyn FnMut(&str, Uuid, &Value) -> Result<(), ReplicaError>,
    ) -> Result<(), ReplicaError> {
        // The skeleton borrows each row's text; only one row is a `Value` at a time.
        let tables: BTreeMap<String, BTreeMap<String, &RawValue>> =
            serde_json::from_str(self.get()).map_err(|_| ReplicaError::NotObject)?;
        for (tname, rows) in &tables {
            for (uuid, ru) in rows {
                let ru: Value =
                    serde_json::from_str(ru.get()).map_err(|_| ReplicaError::NotObject)?;
                f(tname, row_uuid(uuid)?, &ru)?;
            }
        }
        Ok(())
    }
}

/// Columns of one monitored table, in the order the replica stores them.
#[derive(Debug)]
pub struct TableMeta {
    pub name: String,
    pub columns: Vec<String>,
    pub types: Vec<ColumnType>,
    index_of: HashMap<String, usize>,
}

impl TableMeta {
    pub fn new(name: &str, columns: Vec<(String, ColumnType)>) -> TableMeta {
        let index_of = columns
            .iter()
            .enumerate()
            .map(|(i, (c, _))| (c.clone(), i))
            .collect();
        let (columns, types) = columns.into_iter().unzip();
        TableMeta {
            name: name.to_string(),
            columns,
            types,
            index_of,
        }
    }
    pub fn column_index(&self, column: &str) -> Option<usize> {
        self.index_of.get(column).copied()
    }
}

static EMPTY: std::sync::LazyLock<Datum> = std::sync::LazyLock::new(Datum::empty_set);

/// One row: its UUID and the values of the monitored columns.
#[derive(Debug, Clone)]
pub struct Row {
    uuid: Uuid,
    meta: Arc<TableMeta>,
    values: Vec<Datum>,
}

impl PartialEq for Row {
    fn eq(&self, other: &Self) -> bool {
        self.uuid == other.uuid && self.meta.name == other.meta.name && self.values == other.values
    }
}

impl Row {
    fn new_default(uuid: Uuid, meta: Arc<TableMeta>) -> Row {
        let values = meta.types.iter().map(Datum::default_for).collect();
        Row { uuid, meta, values }
    }

    pub fn uuid(&self) -> Uuid {
        self.uuid
    }
    /// Set a column's value in this (detached) copy; unknown columns are ignored.
    pub fn set(&mut self, column: &str, value: Datum) {
        if let Some(i) = self.meta.column_index(column) {
            self.values[i] = value;
        }
    }
    /// Edit a set column of this (detached) copy in place; unknown and map columns are
    /// ignored.
    pub fn apply_set_edit(&mut self, column: &str, e: &SetEdit) {
        if let Some(i) = self.meta.column_index(column) {
            if !self.meta.types[i].is_map() {
                self.values[i].apply_set_edit(e);
            }
        }
    }
    pub fn table(&self) -> &str {
        &self.meta.name
    }
    pub fn meta(&self) -> &TableMeta {
        &self.meta
    }
    /// True when the column is monitored (i.e. the server has it and it was requested).
    pub fn has_column(&self, column: &str) -> bool {
        self.meta.column_index(column).is_some()
    }
    /// The column's value; the empty set for a column that is not monitored (e.g. missing from
    /// an older server's schema), so readers see the default as upstream's IDL does.
    pub fn get(&self, column: &str) -> &Datum {
        match self.meta.column_index(column) {
            Some(i) => &self.values[i],
            None => &EMPTY,
        }
    }
    /// A string column (`""` when absent).
    pub fn str(&self, column: &str) -> &str {
        self.get(column).as_str().unwrap_or("")
    }
    pub fn int(&self, column: &str) -> Option<i64> {
        self.get(column).as_int()
    }
    pub fn bool(&self, column: &str) -> Option<bool> {
        self.get(column).as_bool()
    }
    /// A (single) reference or uuid column.
    pub fn uuid_of(&self, column: &str) -> Option<Uuid> {
        self.get(column).as_uuid()
    }
    /// `smap_get(column, key)` on a string→string map column.
    pub fn smap_get(&self, column: &str, key: &str) -> Option<&str> {
        self.get(column).smap_get(key)
    }
    /// Iterate over (column name, value).
    pub fn columns(&self) -> impl Iterator<Item = (&str, &Datum)> {
        self.meta
            .columns
            .iter()
            .map(String::as_str)
            .zip(self.values.iter())
    }
    /// The columns whose values differ between `self` and `other` (same table).
    pub fn changed_columns<'a>(&'a self, other: &'a Row) -> impl Iterator<Item = &'a str> + 'a {
        self.columns()
            .filter(move |(c, v)| other.get(c) != *v)
            .map(|(c, _)| c)
    }
    /// The row as `{column: json}` (wire encoding), handy for tests and dumps.
    pub fn to_json(&self) -> Value {
        let mut m = serde_json::Map::new();
        for (c, v) in self.columns() {
            m.insert(c.to_string(), v.to_json());
        }
        Value::Object(m)
    }
}

/// What happened to a row since tracking was last cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Inserted,
    Updated,
    Deleted,
}

/// A tracked change: `old` is the row as it was when tracking was last cleared (absent for an
/// insert), `new` the current row (absent for a delete).
#[derive(Debug, Clone)]
pub struct Change<'a> {
    pub uuid: Uuid,
    pub kind: ChangeKind,
    pub old: Option<&'a Row>,
    pub new: Option<&'a Row>,
}

impl Change<'_> {
    /// The current row, or the old one for a delete.
    pub fn row(&self) -> &Row {
        self.new
            .or(self.old)
            .expect("a change has at least one side")
    }
    /// True when `column` differs between old and new (always true for insert/delete).
    pub fn column_changed(&self, column: &str) -> bool {
        match (self.old, self.new) {
            (Some(o), Some(n)) => o.get(column) != n.get(column),
            _ => true,
        }
    }
}

/// A secondary (non-unique) index over some columns of one table.
#[derive(Debug)]
struct Index {
    columns: Vec<usize>,
    map: HashMap<Vec<Datum>, BTreeSet<Uuid>>,
}

impl Index {
    fn key(&self, row: &Row) -> Vec<Datum> {
        self.columns
            .iter()
            .map(|&i| row.values[i].clone())
            .collect()
    }
    fn add(&mut self, row: &Row) {
        let k = self.key(row);
        self.map.entry(k).or_default().insert(row.uuid);
    }
    fn remove(&mut self, row: &Row) {
        let k = self.key(row);
        if let Some(s) = self.map.get_mut(&k) {
            s.remove(&row.uuid);
            if s.is_empty() {
                self.map.remove(&k);
            }
        }
    }
}

#[derive(Debug)]
struct Table {
    meta: Arc<TableMeta>,
    rows: HashMap<Uuid, Arc<Row>>,
    indexes: Vec<Index>,
    /// uuid → row as of the last clear (None: did not exist then).
    tracked: BTreeMap<Uuid, Option<Arc<Row>>>,
}

impl Table {
    fn new(meta: Arc<TableMeta>) -> Table {
        Table {
            meta,
            rows: HashMap::new(),
            indexes: Vec::new(),
            tracked: BTreeMap::new(),
        }
    }

    fn track(&mut self, uuid: Uuid) {
        if !self.tracked.contains_key(&uuid) {
            let before = self.rows.get(&uuid).cloned();
            self.tracked.insert(uuid, before);
        }
    }

    fn put(&mut self, row: Row) {
        let uuid = row.uuid;
        self.track(uuid);
        if let Some(old) = self.rows.get(&uuid).cloned() {
            for ix in &mut self.indexes {
                ix.remove(&old);
            }
        }
        for ix in &mut self.indexes {
            ix.add(&row);
        }
        self.rows.insert(uuid, Arc::new(row));
    }

    fn remove(&mut self, uuid: Uuid) -> bool {
        if !self.rows.contains_key(&uuid) {
            return false;
        }
        self.track(uuid);
        if let Some(old) = self.rows.remove(&uuid) {
            for ix in &mut self.indexes {
                ix.remove(&old);
            }
        }
        true
    }
}

/// Which tables and columns to monitor: `None` = every column of the table.
pub type MonitorSpec = BTreeMap<String, Option<Vec<String>>>;

/// The replica of one database.
#[derive(Debug, Default)]
pub struct Replica {
    db: String,
    schema: Option<Arc<DatabaseSchema>>,
    tables: BTreeMap<String, Table>,
    /// Index definitions (table, columns), re-applied when tables are rebuilt.
    index_defs: Vec<(String, Vec<String>)>,
    seqno: u64,
    /// Rows inserted, modified or deleted by updates so far (for memory housekeeping).
    rows_applied: u64,
    /// Our own writes whose echo has not been seen yet (see [`Replica::expect`]).
    expected: HashMap<String, HashMap<Uuid, Expect>>,
}

/// The state a row should have once one of our transactions is echoed back.
#[derive(Debug, Clone, PartialEq)]
pub enum Expect {
    /// Inserted or updated: these columns have these values.
    Row(BTreeMap<String, Datum>),
    /// Updated with set-column edits: the `modify` that echoes it sets exactly `cols` and
    /// toggles exactly `toggles` (per column, what the edit changes in the value we had), and
    /// is the first change of the row we see after the transaction was sent — checked when it
    /// is applied (`verdict`), so the cost is the edit's size and not the set's.
    Edited {
        cols: BTreeMap<String, Datum>,
        toggles: BTreeMap<String, AtomSet>,
        verdict: Option<bool>,
    },
    Deleted,
}

impl Replica {
    pub fn new(db: &str) -> Replica {
        Replica {
            db: db.to_string(),
            ..Default::default()
        }
    }

    pub fn db(&self) -> &str {
        &self.db
    }

    /// The schema of the server we are (or were last) connected to.
    pub fn schema(&self) -> Option<&DatabaseSchema> {
        self.schema.as_deref()
    }

    /// Whether the server's schema has `table` (and `column`, if given) — what a feature checks
    /// before writing a column an older server lacks.
    pub fn has_column(&self, table: &str, column: &str) -> bool {
        self.schema
            .as_ref()
            .is_some_and(|s| s.has_column(table, column))
    }
    pub fn has_table(&self, table: &str) -> bool {
        self.schema.as_ref().is_some_and(|s| s.has_table(table))
    }

    /// Incremented on every change applied; lets callers tell whether anything happened.
    /// Rows inserted, modified or deleted by updates since the replica was created.
    pub fn rows_applied(&self) -> u64 {
        self.rows_applied
    }

    pub fn seqno(&self) -> u64 {
        self.seqno
    }

    /// Set the schema and the monitored columns (those of `spec` the schema has). Existing rows
    /// are kept (converted to the new column layout), so a reconnect to an upgraded server shows
    /// only real differences.
    pub fn set_schema(
        &mut self,
        schema: Arc<DatabaseSchema>,
        monitored: &BTreeMap<String, Vec<String>>,
    ) {
        let mut tables = BTreeMap::new();
        for (tname, cols) in monitored {
            let Some(ts) = schema.table(tname) else {
                continue;
            };
            let columns: Vec<(String, ColumnType)> = cols
                .iter()
                .filter_map(|c| ts.column(c).map(|cs| (c.clone(), cs.ty.clone())))
                .collect();
            let meta = Arc::new(TableMeta::new(tname, columns));
            let mut table = Table::new(meta.clone());
            if let Some(old) = self.tables.remove(tname) {
                // Carry rows over to the new layout; changes already tracked stay tracked.
                table.tracked = old.tracked;
                for (uuid, row) in old.rows {
                    let mut new_row = Row::new_default(uuid, meta.clone());
                    for (c, v) in row.columns() {
                        if let Some(i) = meta.column_index(c) {
                            new_row.values[i] = v.clone();
                        }
                    }
                    table.rows.insert(uuid, Arc::new(new_row));
                }
            }
            tables.insert(tname.clone(), table);
        }
        self.tables = tables;
        self.schema = Some(schema);
        let defs = std::mem::take(&mut self.index_defs);
        for (t, cols) in &defs {
            self.build_index(t, cols);
        }
        self.index_defs = defs;
    }

    /// Declare a secondary index on `columns` of `table` (built now, maintained on every change).
    pub fn add_index(&mut self, table: &str, columns: &[&str]) {
        let cols: Vec<String> = columns.iter().map(|c| c.to_string()).collect();
        if self
            .index_defs
            .iter()
            .any(|(t, c)| t == table && *c == cols)
        {
            return;
        }
        self.build_index(table, &cols);
        self.index_defs.push((table.to_string(), cols));
    }

    fn build_index(&mut self, table: &str, cols: &[String]) {
        let Some(t) = self.tables.get_mut(table) else {
            return;
        };
        let Some(columns) = cols
            .iter()
            .map(|c| t.meta.column_index(c))
            .collect::<Option<Vec<_>>>()
        else {
            return;
        };
        let mut ix = Index {
            columns,
            map: HashMap::new(),
        };
        for row in t.rows.values() {
            ix.add(row);
        }
        t.indexes.retain(|i| i.columns != ix.columns);
        t.indexes.push(ix);
    }

    /// Rows of `table` whose `columns` equal `key`, through a declared index (or a scan when no
    /// such index exists).
    pub fn find<'a>(&'a self, table: &str, columns: &[&str], key: &[Datum]) -> Vec<&'a Row> {
        let Some(t) = self.tables.get(table) else {
            return vec![];
        };
        let Some(idx) = columns
            .iter()
            .map(|c| t.meta.column_index(c))
            .collect::<Option<Vec<_>>>()
        else {
            return vec![];
        };
        if let Some(ix) = t.indexes.iter().find(|i| i.columns == idx) {
            return ix
                .map
                .get(key)
                .into_iter()
                .flatten()
                .filter_map(|u| t.rows.get(u).map(|r| &**r))
                .collect();
        }
        let mut v: Vec<&Row> = t
            .rows
            .values()
            .filter(|r| idx.iter().zip(key).all(|(&i, k)| &r.values[i] == k))
            .map(|r| &**r)
            .collect();
        v.sort_by_key(|r| r.uuid);
        v
    }

    /// The first row of `table` whose string column `column` equals `value`.
    pub fn find_by_str(&self, table: &str, column: &str, value: &str) -> Option<&Row> {
        self.find(table, &[column], &[Datum::scalar(value)])
            .into_iter()
            .next()
    }

    /// A detached row of `table` with default values (for views of uncommitted inserts).
    pub fn new_row(&self, table: &str, uuid: Uuid) -> Option<Row> {
        Some(Row::new_default(uuid, self.tables.get(table)?.meta.clone()))
    }

    pub fn get(&self, table: &str, uuid: Uuid) -> Option<&Row> {
        self.tables.get(table)?.rows.get(&uuid).map(|r| &**r)
    }

    /// All rows of a table, in UUID order (deterministic).
    pub fn rows(&self, table: &str) -> Vec<&Row> {
        let mut v: Vec<&Row> = self
            .tables
            .get(table)
            .map(|t| t.rows.values().map(|r| &**r).collect())
            .unwrap_or_default();
        v.sort_by_key(|r| r.uuid);
        v
    }

    /// All rows of a table, unordered (cheaper).
    pub fn iter(&self, table: &str) -> impl Iterator<Item = &Row> {
        self.tables
            .get(table)
            .into_iter()
            .flat_map(|t| t.rows.values().map(|r| &**r))
    }

    pub fn len(&self, table: &str) -> usize {
        self.tables.get(table).map_or(0, |t| t.rows.len())
    }

    pub fn table_names(&self) -> impl Iterator<Item = &str> {
        self.tables.keys().map(String::as_str)
    }

    pub fn is_monitored(&self, table: &str) -> bool {
        self.tables.contains_key(table)
    }

    // ---- change tracking ----

    /// The changes of `table` since the last clear, in UUID order. Rows inserted and deleted
    /// again, or modified back to their old value, do not appear.
    pub fn changes(&self, table: &str) -> Vec<Change<'_>> {
        let Some(t) = self.tables.get(table) else {
            return vec![];
        };
        t.tracked
            .iter()
            .filter_map(|(uuid, old)| {
                let new = t.rows.get(uuid).map(|r| &**r);
                let old = old.as_deref();
                let kind = match (old, new) {
                    (None, None) => return None,
                    (None, Some(_)) => ChangeKind::Inserted,
                    (Some(_), None) => ChangeKind::Deleted,
                    (Some(o), Some(n)) if o.values == n.values => return None,
                    (Some(_), Some(_)) => ChangeKind::Updated,
                };
                Some(Change {
                    uuid: *uuid,
                    kind,
                    old,
                    new,
                })
            })
            .collect()
    }

    /// Whether `table` has any tracked change.
    pub fn table_changed(&self, table: &str) -> bool {
        !self.changes(table).is_empty()
    }

    /// Tables with tracked changes.
    pub fn changed_tables(&self) -> Vec<&str> {
        self.tables
            .keys()
            .filter(|t| self.table_changed(t))
            .map(String::as_str)
            .collect()
    }

    pub fn has_changes(&self) -> bool {
        self.tables.keys().any(|t| self.table_changed(t))
    }

    // ---- echoes of our own writes ----

    /// Remember that a transaction of ours sets `uuid` of `table` to `e`: when the change comes
    /// back through the monitor, [`Replica::absorb_echoes`] hides it from the tracked changes
    /// (the computation that wrote it already accounted for it).
    pub fn expect(&mut self, table: &str, uuid: Uuid, e: Expect) {
        if self.tables.contains_key(table) {
            self.expected
                .entry(table.to_string())
                .or_default()
                .insert(uuid, e);
        }
    }

    /// Forget every expectation (a transaction failed, or the contents were replaced).
    pub fn forget_expected(&mut self) {
        self.expected.clear();
    }

    /// Number of writes whose echo is still awaited.
    pub fn expected_len(&self) -> usize {
        self.expected.values().map(HashMap::len).sum()
    }

    /// Drop from the tracked changes every row whose change is exactly the echo of a write we
    /// expect: the row was deleted as expected, or every column that changed now has the value
    /// we wrote (an insert: every column we wrote has our value). A tracked row consumes its
    /// expectation whether or not it matched; a change that also carries someone else's edit
    /// stays visible. Returns how many changes were absorbed.
    pub fn absorb_echoes(&mut self) -> usize {
        let mut absorbed = 0;
        for (tname, exp) in self.expected.iter_mut() {
            let Some(t) = self.tables.get_mut(tname) else {
                continue;
            };
            let seen: Vec<Uuid> = exp
                .keys()
                .filter(|u| t.tracked.contains_key(u))
                .copied()
                .collect();
            for u in seen {
                let Some(e) = exp.remove(&u) else { continue };
                let old = t.tracked.get(&u).cloned().flatten();
                let new = t.rows.get(&u);
                let echo = match (&e, old.as_deref(), new.map(|r| &**r)) {
                    (Expect::Deleted, Some(_), None) => true,
                    (Expect::Edited { verdict, .. }, Some(_), Some(_)) => *verdict == Some(true),
                    (Expect::Row(cols), old, Some(n)) => {
                        let want = |i: usize| {
                            let name = &t.meta.columns[i];
                            cols.get(name).map(|d| d == &n.values[i])
                        };
                        match old {
                            None => (0..n.values.len()).all(|i| want(i) != Some(false)),
                            Some(o) => (0..n.values.len())
                                .filter(|&i| o.values[i] != n.values[i])
                                .all(|i| want(i) == Some(true)),
                        }
                    }
                    _ => false,
                };
                if echo {
                    t.tracked.remove(&u);
                    absorbed += 1;
                }
            }
        }
        self.expected.retain(|_, m| !m.is_empty());
        absorbed
    }

    /// Forget the tracked changes (the current contents become the new baseline).
    pub fn clear_changes(&mut self) {
        for t in self.tables.values_mut() {
            t.tracked.clear();
        }
    }

    // ---- applying updates ----

    /// Apply `<table-updates2>` (update2/update3 notifications and `found=true` replies).
    pub fn apply_update2<U: TableUpdates + ?Sized>(
        &mut self,
        updates: &U,
    ) -> Result<(), ReplicaError> {
        updates.each_row(&mut |tname, uuid, ru| self.apply_row2(tname, uuid, ru))?;
        self.seqno += 1;
        Ok(())
    }

    fn apply_row2(&mut self, tname: &str, uuid: Uuid, ru: &Value) -> Result<(), ReplicaError> {
        let table = table_in(&mut self.tables, tname)?;
        let meta = table.meta.clone();
        self.rows_applied += 1;
        let bad = |msg: &str| ReplicaError::BadRowUpdate {
            table: tname.to_string(),
            uuid,
            msg: msg.to_string(),
        };
        let ru = ru
            .as_object()
            .filter(|o| o.len() == 1)
            .ok_or_else(|| bad("must have exactly one member"))?;
        let (op, body) = ru.iter().next().expect("len checked");
        let expected = self.expected.get_mut(tname).and_then(|m| m.get_mut(&uuid));
        let edited = match expected {
            Some(Expect::Edited { verdict, .. }) if verdict.is_some() || op != "modify" => {
                // Not the first change after our write, or not a modify: not (only) ours.
                *verdict = Some(false);
                None
            }
            Some(Expect::Edited {
                cols,
                toggles,
                verdict,
            }) => Some((&*cols, &*toggles, verdict)),
            _ => None,
        };
        match op.as_str() {
            "initial" | "insert" => {
                let row = parse_row(&meta, uuid, body, None)?;
                table.put(row);
            }
            "modify" => {
                let Some(cur) = table.rows.get(&uuid) else {
                    return Err(bad("modify of unknown row"));
                };
                let mut row = Row::clone(cur);
                apply_modify(&meta, &mut row, body)?;
                if let Some((cols, toggles, verdict)) = edited {
                    *verdict = Some(is_edit_echo(&meta, &row, body, cols, toggles));
                }
                table.put(row);
            }
            "delete" => {
                if !table.remove(uuid) {
                    return Err(bad("delete of unknown row"));
                }
            }
            other => return Err(bad(&format!("unknown operation {other}"))),
        }
        Ok(())
    }

    /// Apply `<table-updates>` of the v1 `monitor` method (`{"old":..., "new":...}`).
    pub fn apply_update1<U: TableUpdates + ?Sized>(
        &mut self,
        updates: &U,
    ) -> Result<(), ReplicaError> {
        updates.each_row(&mut |tname, uuid, ru| {
            let table = table_in(&mut self.tables, tname)?;
            let meta = table.meta.clone();
            self.rows_applied += 1;
            // Edits are only checked on update2 `modify` diffs: here, not an echo.
            if let Some(Expect::Edited { verdict, .. }) =
                self.expected.get_mut(tname).and_then(|m| m.get_mut(&uuid))
            {
                *verdict = Some(false);
            }
            match ru.get("new") {
                Some(new) if !new.is_null() => {
                    let base = table.rows.get(&uuid).map(|r| Row::clone(r));
                    let row = parse_row(&meta, uuid, new, base)?;
                    table.put(row);
                }
                _ => {
                    table.remove(uuid);
                }
            }
            Ok(())
        })?;
        self.seqno += 1;
        Ok(())
    }

    /// Replace the whole contents with a full snapshot (`monitor_cond` reply, `found=false`
    /// `monitor_cond_since` reply, or v1 `monitor` reply when `v1`). Only the real differences
    /// from the previous contents are tracked as changes.
    pub fn replace_all<U: TableUpdates + ?Sized>(
        &mut self,
        updates: &U,
        v1: bool,
    ) -> Result<(), ReplicaError> {
        self.expected.clear();
        let mut fresh: BTreeMap<String, HashMap<Uuid, Row>> = BTreeMap::new();
        let tables = &self.tables;
        let rows_applied = &mut self.rows_applied;
        updates.each_row(&mut |tname, uuid, ru| {
            let meta = &tables
                .get(tname)
                .ok_or_else(|| ReplicaError::UnknownTable(tname.to_string()))?
                .meta;
            *rows_applied += 1;
            let body = if v1 {
                ru.get("new")
            } else {
                ru.get("initial").or_else(|| ru.get("insert"))
            };
            let Some(body) = body else {
                return Err(ReplicaError::BadRowUpdate {
                    table: tname.to_string(),
                    uuid,
                    msg: "snapshot row without initial contents".into(),
                });
            };
            let row = parse_row(meta, uuid, body, None)?;
            match fresh.get_mut(tname) {
                Some(out) => {
                    out.insert(uuid, row);
                }
                None => {
                    fresh.insert(tname.to_string(), HashMap::from([(uuid, row)]));
                }
            }
            Ok(())
        })?;
        for (tname, table) in self.tables.iter_mut() {
            let mut new_rows = fresh.remove(tname).unwrap_or_default();
            let gone: Vec<Uuid> = table
                .rows
                .keys()
                .filter(|u| !new_rows.contains_key(u))
                .copied()
                .collect();
            for u in gone {
                table.remove(u);
            }
            for (u, row) in new_rows.drain() {
                if table
                    .rows
                    .get(&u)
                    .is_some_and(|cur| cur.values == row.values)
                {
                    continue;
                }
                table.put(row);
            }
        }
        self.seqno += 1;
        Ok(())
    }

    /// Forget everything (rows and tracking), keeping schema and index definitions.
    pub fn clear(&mut self) {
        self.expected.clear();
        for t in self.tables.values_mut() {
            t.rows.clear();
            t.tracked.clear();
            for ix in &mut t.indexes {
                ix.map.clear();
            }
        }
        self.seqno += 1;
    }
}

fn parse_row(
    meta: &Arc<TableMeta>,
    uuid: Uuid,
    body: &Value,
    base: Option<Row>,
) -> Result<Row, ReplicaError> {
    let obj = body.as_object().ok_or_else(|| ReplicaError::BadRowUpdate {
        table: meta.name.clone(),
        uuid,
        msg: "row must be a JSON object".into(),
    })?;
    let mut row = base.unwrap_or_else(|| Row::new_default(uuid, meta.clone()));
    for (c, v) in obj {
        // Columns we did not ask for (e.g. `_version` from a v1 monitor) are ignored.
        let Some(i) = meta.column_index(c) else {
            continue;
        };
        row.values[i] = Datum::from_json(v, &meta.types[i]).map_err(|err| ReplicaError::Datum {
            table: meta.name.clone(),
            column: c.clone(),
            err,
        })?;
    }
    Ok(row)
}

/// A table of the replica by name (a free function, so that `expected` can be borrowed beside).
fn table_in<'t>(
    tables: &'t mut BTreeMap<String, Table>,
    name: &str,
) -> Result<&'t mut Table, ReplicaError> {
    tables
        .get_mut(name)
        .ok_or_else(|| ReplicaError::UnknownTable(name.to_string()))
}

/// Whether a `modify` (already applied to `row`) is exactly the echo of our edit: every column
/// it touches is one we set (now to our value) or one we edited with exactly the toggles we
/// expected, and every edited column is there.
fn is_edit_echo(
    meta: &TableMeta,
    row: &Row,
    body: &Value,
    cols: &BTreeMap<String, Datum>,
    toggles: &BTreeMap<String, AtomSet>,
) -> bool {
    let Some(obj) = body.as_object() else {
        return false;
    };
    if toggles.keys().any(|c| !obj.contains_key(c)) {
        return false;
    }
    obj.iter().all(|(c, v)| {
        let Some(i) = meta.column_index(c) else {
            return true; // not monitored: not applied either
        };
        if let Some(t) = toggles.get(c) {
            return Datum::diff_from_json(v, &meta.types[i])
                .ok()
                .is_some_and(|d| d.as_set() == Some(t));
        }
        cols.get(c).is_some_and(|want| want == &row.values[i])
    })
}

fn apply_modify(meta: &Arc<TableMeta>, row: &mut Row, body: &Value) -> Result<(), ReplicaError> {
    let obj = body.as_object().ok_or_else(|| ReplicaError::BadRowUpdate {
        table: meta.name.clone(),
        uuid: row.uuid,
        msg: "modify must be a JSON object".into(),
    })?;
    for (c, v) in obj {
        let Some(i) = meta.column_index(c) else {
            continue;
        };
        let ty = &meta.types[i];
        let err = |err| ReplicaError::Datum {
            table: meta.name.clone(),
            column: c.clone(),
            err,
        };
        let diff = Datum::diff_from_json(v, ty).map_err(err)?;
        row.values[i].apply_diff(&diff, ty).map_err(err)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Arc<DatabaseSchema> {
        let s = json!({
            "name": "T", "version": "1.0.0",
            "tables": {
                "A": {"columns": {
                    "name": {"type": "string"},
                    "n": {"type": {"key": "integer", "min": 0, "max": 1}},
                    "tags": {"type": {"key": "string", "min": 0, "max": "unlimited"}},
                    "opts": {"type": {"key": "string", "value": "string", "min": 0, "max": "unlimited"}}
                }, "isRoot": true},
                "B": {"columns": {"x": {"type": "integer"}}, "isRoot": true}
            }
        });
        Arc::new(DatabaseSchema::from_json(&s).unwrap())
    }

    fn replica() -> Replica {
        let mut r = Replica::new("T");
        let mut mon = BTreeMap::new();
        mon.insert(
            "A".to_string(),
            vec!["name".into(), "n".into(), "tags".into(), "opts".into()],
        );
        mon.insert("B".to_string(), vec!["x".into()]);
        r.set_schema(schema(), &mon);
        r.add_index("A", &["name"]);
        r
    }

    const U1: &str = "00000000-0000-0000-0000-000000000001";
    const U2: &str = "00000000-0000-0000-0000-000000000002";

    fn cols(c: &[(&str, Datum)]) -> Expect {
        Expect::Row(c.iter().map(|(k, v)| (k.to_string(), v.clone())).collect())
    }

    /// Set-column edits (sent as `mutate`) are recognised from the `modify` diff alone: exactly
    /// our toggles, first change of the row after the write. Anything else stays visible.
    #[test]
    fn edit_echoes_are_absorbed_only_when_exact() {
        use crate::ovsdb::overlay::Intents;
        use crate::ovsdb::Atom;
        let mut r = replica();
        let u2: Uuid = U2.parse().unwrap();
        let tags: Vec<String> = (0..100).map(|i| format!("t{i:03}")).collect();
        r.apply_update2(&json!({"A": {U2: {"insert": {"name": "b", "tags": ["set", tags]}}}}))
            .unwrap();
        r.clear_changes();
        let expect = |r: &mut Replica, ins: &[&str], del: &[&str]| {
            let mut i = Intents::new();
            i.edit_set(
                "A",
                u2,
                "tags",
                ins.iter().map(|&s| Atom::from(s)),
                del.iter().map(|&s| Atom::from(s)),
            );
            let e = i.into_expectations(r);
            let n = e.len();
            for (t, u, e) in e {
                r.expect(&t, u, e);
            }
            n
        };
        let tags_now = |r: &Replica| -> Vec<String> {
            r.get("A", u2)
                .unwrap()
                .get("tags")
                .as_set()
                .unwrap()
                .iter()
                .filter_map(|a| a.as_str().map(str::to_string))
                .collect()
        };
        // Exact echo: absorbed, and the in-place diff left the right set.
        assert_eq!(expect(&mut r, &["x"], &["t005"]), 1);
        r.apply_update2(&json!({"A": {U2: {"modify": {"tags": ["set", ["t005", "x"]]}}}}))
            .unwrap();
        assert_eq!(r.absorb_echoes(), 1);
        assert!(r.changes("A").is_empty());
        let now = tags_now(&r);
        assert_eq!(now.len(), 100);
        assert!(now.contains(&"x".to_string()) && !now.contains(&"t005".to_string()));
        assert!(now.windows(2).all(|w| w[0] < w[1]));
        r.clear_changes();
        // Someone else's element in the same modify: visible.
        expect(&mut r, &["y"], &[]);
        r.apply_update2(&json!({"A": {U2: {"modify": {"tags": ["set", ["y", "z"]]}}}}))
            .unwrap();
        assert_eq!(r.absorb_echoes(), 0);
        assert_eq!(r.changes("A").len(), 1);
        r.clear_changes();
        // Our exact echo followed by another change before the run: visible.
        expect(&mut r, &["w"], &[]);
        r.apply_update2(&json!({"A": {U2: {"modify": {"tags": "w"}}}}))
            .unwrap();
        r.apply_update2(&json!({"A": {U2: {"modify": {"name": "c"}}}}))
            .unwrap();
        assert_eq!(r.absorb_echoes(), 0);
        assert_eq!(r.changes("A").len(), 1);
        r.clear_changes();
        // An edit that changes nothing expects nothing (and sends nothing).
        assert_eq!(expect(&mut r, &["t001"], &["nope"]), 0);
    }

    /// A `modify` toggling one element of a large set column (one more learned route on a
    /// router with thousands) keeps the old row for the change handlers and stores a new one
    /// that shares every chunk of the set but the edited one: the copy does not grow with the
    /// set.
    #[test]
    fn modify_of_a_large_set_copies_one_chunk() {
        let mut r = replica();
        let tags: Vec<String> = (0..20_000).map(|i| format!("t{i:05}")).collect();
        r.apply_update2(&json!({"A": {U2: {"insert": {"name": "b", "tags": ["set", tags]}}}}))
            .unwrap();
        r.clear_changes();
        r.apply_update2(&json!({"A": {U2: {"modify": {"tags": "t10000x"}}}}))
            .unwrap();
        let changes = r.changes("A");
        let [c] = changes.as_slice() else {
            panic!("one change, got {changes:?}")
        };
        let (old, new) = (c.old.unwrap().get("tags"), c.new.unwrap().get("tags"));
        let (old, new) = (old.as_set().unwrap(), new.as_set().unwrap());
        assert_eq!((old.len(), new.len()), (20_000, 20_001));
        assert!(new.contains(&crate::ovsdb::Atom::from("t10000x")));
        assert_eq!(new.shared_chunks(old), old.chunks() - 1);
        assert!(c.column_changed("tags") && !c.column_changed("name"));
        assert_eq!(new.difference(old).count(), 1);

        // Ten toggles at once (a route learned through ten transit switches): still in place,
        // at most one chunk copied per toggle, and the result is the symmetric difference.
        r.clear_changes();
        let toggles: Vec<String> = (0..10)
            .map(|i| format!("t{:05}", i * 1999))
            .chain((0..10).map(|i| format!("t{:05}y", i * 1999)))
            .collect();
        r.apply_update2(&json!({"A": {U2: {"modify": {"tags": ["set", toggles]}}}}))
            .unwrap();
        let changes = r.changes("A");
        let (old, new) = (changes[0].old.unwrap(), changes[0].new.unwrap());
        let (old, new) = (
            old.get("tags").as_set().unwrap(),
            new.get("tags").as_set().unwrap(),
        );
        assert_eq!(new.len(), old.len());
        assert!(new.shared_chunks(old) >= old.chunks() - 10);
        assert_eq!(new.symmetric_difference(old).count(), 20);
        assert!(!new.contains(&crate::ovsdb::Atom::from("t01999")));
        assert!(new.contains(&crate::ovsdb::Atom::from("t01999y")));
    }

    #[test]
    fn echoes_of_own_writes_are_absorbed_and_foreign_edits_are_not() {
        let mut r = replica();
        let (u1, u2): (Uuid, Uuid) = (U1.parse().unwrap(), U2.parse().unwrap());
        r.apply_update2(&json!({"A": {U2: {"insert": {"name": "b", "n": 1}}}}))
            .unwrap();
        r.clear_changes();
        // Our insert of U1 and our update of U2's n: both come back exactly.
        r.expect("A", u1, cols(&[("name", Datum::scalar("a"))]));
        r.expect("A", u2, cols(&[("n", Datum::scalar(2i64))]));
        r.apply_update2(&json!({"A": {
            U1: {"insert": {"name": "a"}},
            U2: {"modify": {"n": 2}}
        }}))
        .unwrap();
        assert_eq!(r.absorb_echoes(), 2);
        assert!(r.changes("A").is_empty());
        assert_eq!(r.expected_len(), 0);
        r.clear_changes();

        // Our update of n arrives together with someone else's change of name: visible.
        r.expect("A", u2, cols(&[("n", Datum::scalar(3i64))]));
        r.apply_update2(&json!({"A": {U2: {"modify": {"n": 3, "name": "c"}}}}))
            .unwrap();
        assert_eq!(r.absorb_echoes(), 0);
        assert_eq!(r.changes("A").len(), 1);
        assert_eq!(r.expected_len(), 0, "a seen row consumes its expectation");
        r.clear_changes();

        // A value other than ours is not an echo; an expected delete is.
        r.expect("A", u2, cols(&[("n", Datum::scalar(4i64))]));
        r.expect("A", u1, Expect::Deleted);
        r.apply_update2(&json!({"A": {U2: {"modify": {"n": 5}}, U1: {"delete": null}}}))
            .unwrap();
        assert_eq!(r.absorb_echoes(), 1);
        let ch = r.changes("A");
        assert_eq!(ch.len(), 1);
        assert_eq!(ch[0].uuid, u2);
        r.clear_changes();

        // Not seen yet: kept until it comes; forgotten on request.
        r.expect("A", u2, Expect::Deleted);
        assert_eq!(r.absorb_echoes(), 0);
        assert_eq!(r.expected_len(), 1);
        r.forget_expected();
        r.apply_update2(&json!({"A": {U2: {"delete": null}}}))
            .unwrap();
        assert_eq!(r.absorb_echoes(), 0);
        assert_eq!(r.changes("A").len(), 1);
    }

    #[test]
    fn insert_modify_delete_tracking() {
        let mut r = replica();
        r.apply_update2(
            &json!({"A": {U1: {"insert": {"name": "a", "tags": ["set", ["x", "y"]]}}}}),
        )
        .unwrap();
        let u1: Uuid = U1.parse().unwrap();
        let row = r.get("A", u1).unwrap();
        assert_eq!(row.str("name"), "a");
        assert_eq!(row.int("n"), None);
        assert_eq!(row.get("tags").len(), 2);
        assert_eq!(r.changes("A")[0].kind, ChangeKind::Inserted);
        r.clear_changes();
        assert!(!r.has_changes());

        r.apply_update2(
            &json!({"A": {U1: {"modify": {"tags": "x", "opts": ["map", [["k", "v"]]], "n": 5}}}}),
        )
        .unwrap();
        let row = r.get("A", u1).unwrap();
        assert_eq!(row.get("tags").strs().collect::<Vec<_>>(), vec!["y"]);
        assert_eq!(row.smap_get("opts", "k"), Some("v"));
        assert_eq!(row.int("n"), Some(5));
        let ch = r.changes("A");
        assert_eq!(ch.len(), 1);
        assert_eq!(ch[0].kind, ChangeKind::Updated);
        assert!(ch[0].column_changed("tags"));
        assert!(!ch[0].column_changed("name"));
        assert_eq!(ch[0].old.unwrap().get("tags").len(), 2);
        r.clear_changes();

        r.apply_update2(&json!({"A": {U1: {"delete": null}}}))
            .unwrap();
        let ch = r.changes("A");
        assert_eq!(ch[0].kind, ChangeKind::Deleted);
        assert_eq!(ch[0].old.unwrap().str("name"), "a");
        assert!(r.find_by_str("A", "name", "a").is_none());
    }

    #[test]
    fn insert_then_delete_is_no_change() {
        let mut r = replica();
        r.apply_update2(&json!({"A": {U1: {"insert": {"name": "a"}}}}))
            .unwrap();
        r.apply_update2(&json!({"A": {U1: {"delete": null}}}))
            .unwrap();
        assert!(!r.has_changes());
        assert!(r.seqno() >= 2);
    }

    #[test]
    fn modify_back_is_no_change() {
        let mut r = replica();
        r.apply_update2(&json!({"A": {U1: {"insert": {"name": "a"}}}}))
            .unwrap();
        r.clear_changes();
        r.apply_update2(&json!({"A": {U1: {"modify": {"name": "b"}}}}))
            .unwrap();
        r.apply_update2(&json!({"A": {U1: {"modify": {"name": "a"}}}}))
            .unwrap();
        assert!(!r.has_changes());
    }

    #[test]
    fn index_follows_changes() {
        let mut r = replica();
        r.apply_update2(
            &json!({"A": {U1: {"insert": {"name": "a"}}, U2: {"insert": {"name": "a"}}}}),
        )
        .unwrap();
        assert_eq!(r.find("A", &["name"], &[Datum::scalar("a")]).len(), 2);
        r.apply_update2(&json!({"A": {U1: {"modify": {"name": "b"}}}}))
            .unwrap();
        assert_eq!(r.find("A", &["name"], &[Datum::scalar("a")]).len(), 1);
        assert_eq!(
            r.find_by_str("A", "name", "b").unwrap().uuid(),
            U1.parse().unwrap()
        );
        // Unindexed lookups scan.
        assert_eq!(r.find("B", &["x"], &[Datum::scalar(0i64)]).len(), 0);
    }

    #[test]
    fn full_resync_tracks_only_differences() {
        let mut r = replica();
        r.replace_all(
            &json!({"A": {U1: {"initial": {"name": "a"}}, U2: {"initial": {"name": "b"}}}}),
            false,
        )
        .unwrap();
        r.clear_changes();
        // After a reconnect: U1 unchanged, U2 gone, U3 new.
        let u3 = "00000000-0000-0000-0000-000000000003";
        r.replace_all(
            &json!({"A": {U1: {"initial": {"name": "a"}}, u3: {"initial": {"name": "c"}}}}),
            false,
        )
        .unwrap();
        let ch = r.changes("A");
        assert_eq!(ch.len(), 2);
        assert_eq!(ch[0].kind, ChangeKind::Deleted);
        assert_eq!(ch[1].kind, ChangeKind::Inserted);
        assert_eq!(r.len("A"), 2);
    }

    #[test]
    fn bad_updates_are_errors_not_panics() {
        let mut r = replica();
        for bad in [
            json!([]),
            json!({"A": []}),
            json!({"Nope": {U1: {"insert": {}}}}),
            json!({"A": {"not-a-uuid": {"insert": {}}}}),
            json!({"A": {U1: {"insert": {}, "delete": null}}}),
            json!({"A": {U1: {"modify": {"name": "x"}}}}),
            json!({"A": {U1: {"delete": null}}}),
            json!({"A": {U1: {"insert": {"name": 5}}}}),
            json!({"A": {U1: {"frob": {}}}}),
        ] {
            assert!(r.apply_update2(&bad).is_err(), "{bad}");
            let raw = RawValue::from_string(bad.to_string()).unwrap();
            assert!(r.apply_update2(&*raw).is_err(), "raw {bad}");
        }
    }

    /// Rows (as JSON, by UUID) and how many changes are tracked.
    fn dump(r: &Replica) -> (Vec<(Uuid, Value)>, usize) {
        let mut rows: Vec<_> = r.iter("A").map(|row| (row.uuid(), row.to_json())).collect();
        rows.sort_by_key(|(u, _)| *u);
        (rows, r.changes("A").len())
    }

    /// The session hands over raw text; it reads exactly as the same JSON value.
    #[test]
    fn raw_updates_apply_as_their_values() {
        let updates = [
            json!({"A": {U1: {"insert": {"name": "a", "tags": ["set", ["x", "y"]]}}}}),
            json!({"A": {U2: {"insert": {"name": "bé\"", "n": 2}}, U1: {"modify": {"tags": "x"}}}}),
            json!({"A": {U1: {"delete": null}}}),
        ];
        let (mut by_value, mut by_raw) = (replica(), replica());
        for u in &updates {
            by_value.apply_update2(u).unwrap();
            let raw = RawValue::from_string(u.to_string()).unwrap();
            by_raw.apply_update2(&*raw).unwrap();
            assert_eq!(dump(&by_value), dump(&by_raw), "{u}");
            by_value.clear_changes();
            by_raw.clear_changes();
        }
        let snapshot = json!({"A": {U2: {"initial": {"name": "c"}}}});
        by_value.replace_all(&snapshot, false).unwrap();
        let raw = RawValue::from_string(snapshot.to_string()).unwrap();
        by_raw.replace_all(&*raw, false).unwrap();
        assert_eq!(dump(&by_value), dump(&by_raw));
        assert_eq!(by_raw.len("A"), 1);
        assert_eq!(by_raw.rows("A")[0].str("name"), "c");
    }

    #[test]
    fn v1_updates() {
        let mut r = replica();
        r.replace_all(
            &json!({"A": {U1: {"new": {"name": "a", "_version": ["uuid", U2]}}}}),
            true,
        )
        .unwrap();
        r.apply_update1(&json!({"A": {U1: {"old": {"name": "a"}, "new": {"name": "z", "n": 1}}}}))
            .unwrap();
        assert_eq!(r.get("A", U1.parse().unwrap()).unwrap().str("name"), "z");
        r.apply_update1(&json!({"A": {U1: {"old": {"name": "z"}}}}))
            .unwrap();
        assert_eq!(r.len("A"), 0);
    }

    #[test]
    fn missing_column_reads_as_default() {
        let r = {
            let mut r = replica();
            r.apply_update2(&json!({"A": {U1: {"insert": {"name": "a"}}}}))
                .unwrap();
            r
        };
        let row = r.get("A", U1.parse().unwrap()).unwrap();
        assert!(row.get("no_such_column").is_empty());
        assert!(!row.has_column("no_such_column"));
        assert!(r.has_column("A", "opts"));
        assert!(!r.has_column("A", "zzz"));
    }
}
