//! Transactions: building the `transact` operations (spec ovsdb-protocol.md §5, §10) and
//! classifying the reply (§5.5).
//!
//! [`Txn`] is write-changed-only: [`Txn::update`] compares the wanted values with the replica
//! and sends only the columns that differ (and nothing at all when none do), and columns the
//! server's schema lacks are never sent. A transaction whose operations change nothing
//! ([`Txn::is_empty`]) is not sent at all.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::value::{to_raw_value, RawValue};
use serde_json::{json, Value};

use super::datum::{Atom, AtomMap, AtomSet, Datum};
use super::replica::Replica;
use super::uuid::Uuid;

/// Reference to a row in a transaction: an existing row or one inserted by this transaction.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RowRef {
    Existing(Uuid),
    Named(String),
}

impl RowRef {
    /// The atom to store in a reference column.
    pub fn atom(&self) -> Atom {
        match self {
            RowRef::Existing(u) => Atom::Uuid(*u),
            RowRef::Named(n) => Atom::NamedUuid(n.clone()),
        }
    }
    fn where_clause(&self) -> Value {
        json!([["_uuid", "==", self.atom().to_json()]])
    }
}

/// A transaction being built for one database.
///
/// Each operation is kept as its JSON text: a cold start writes thousands of rows in one
/// transaction, and as a tree of `serde_json::Value`s those were the largest part of a
/// daemon's peak memory (massif, 6 × 2 × 500: ~10 of 43 MB), several times their text.
#[derive(Debug, Clone)]
pub struct Txn {
    db: String,
    ops: Vec<Box<RawValue>>,
    /// Number of ops that write (insert/update/mutate/delete).
    writes: usize,
    comments: Vec<String>,
    next_name: u64,
    /// Indices of `select` ops that read back incremented counters.
    increments: Vec<usize>,
    /// `uuid-name`s of the inserts by op index (results come back in op order).
    names: Vec<(usize, String)>,
}

impl Txn {
    pub fn new(db: &str) -> Txn {
        Txn {
            db: db.to_string(),
            ops: vec![],
            writes: 0,
            comments: vec![],
            next_name: 0,
            increments: vec![],
            names: vec![],
        }
    }

    fn push_op(&mut self, op: Value) {
        self.ops
            .push(to_raw_value(&op).expect("serialising a JSON value cannot fail"));
    }

    pub fn db(&self) -> &str {
        &self.db
    }

    /// True when nothing would change: such a transaction is not sent.
    pub fn is_empty(&self) -> bool {
        self.writes == 0
    }

    /// Number of write operations.
    pub fn n_writes(&self) -> usize {
        self.writes
    }

    fn row_json(
        replica: Option<&Replica>,
        table: &str,
        cols: Vec<(&str, Datum)>,
    ) -> serde_json::Map<String, Value> {
        let mut row = serde_json::Map::new();
        for (c, d) in cols {
            if let Some(r) = replica {
                if r.schema().is_some() && !r.has_column(table, c) {
                    continue;
                }
            }
            row.insert(c.to_string(), d.to_json());
        }
        row
    }

    /// Insert a row; returns the named reference usable in the same transaction. Columns the
    /// server lacks (per `replica`'s schema) are left out.
    pub fn insert(&mut self, replica: &Replica, table: &str, cols: Vec<(&str, Datum)>) -> RowRef {
        let name = format!("row{}", self.next_name);
        self.next_name += 1;
        let row = Self::row_json(Some(replica), table, cols);
        self.names.push((self.ops.len(), name.clone()));
        self.push_op(json!({"op": "insert", "table": table, "row": row, "uuid-name": name}));
        self.writes += 1;
        RowRef::Named(name)
    }

    /// Insert a row with a chosen UUID (OVS ≥ 2.13 `"uuid"` member).
    pub fn insert_with_uuid(
        &mut self,
        replica: &Replica,
        table: &str,
        uuid: Uuid,
        cols: Vec<(&str, Datum)>,
    ) {
        let row = Self::row_json(Some(replica), table, cols);
        self.push_op(json!({"op": "insert", "table": table, "row": row, "uuid": uuid.to_string()}));
        self.writes += 1;
    }

    /// Update `cols` of an existing row, sending only the columns whose value differs from the
    /// replica (and only those the server has). Returns whether anything was sent.
    ///
    /// A set or map column that may hold more than one element is sent as a `mutate` of the
    /// difference (elements/keys deleted, then inserted), as upstream's IDL partial updates do:
    /// a concurrent writer's change to other elements of the same column (an operator's
    /// `lr-route-add` while we add a learned route to `static_routes`) is merged, not
    /// overwritten with our stale copy, and only the delta goes on the wire.
    pub fn update(
        &mut self,
        replica: &Replica,
        table: &str,
        uuid: Uuid,
        cols: Vec<(&str, Datum)>,
    ) -> bool {
        let current = replica.get(table, uuid);
        let mut whole: Vec<(&str, Datum)> = vec![];
        let mut mutations: Vec<(&str, &str, Datum)> = vec![];
        for (c, d) in cols {
            let Some(row) = current else {
                whole.push((c, d));
                continue;
            };
            if !row.has_column(c) {
                whole.push((c, d));
                continue;
            }
            let cur = row.get(c);
            if cur == &d {
                continue;
            }
            let multi = row
                .meta()
                .column_index(c)
                .and_then(|i| row.meta().types.get(i))
                .is_some_and(|t| t.min == 0 && t.max > 1);
            match (multi, cur, &d) {
                (true, Datum::Set(old), Datum::Set(new)) => {
                    let del: AtomSet = old.difference(new).cloned().collect();
                    let add: AtomSet = new.difference(old).cloned().collect();
                    if !del.is_empty() {
                        mutations.push((c, "delete", Datum::Set(del)));
                    }
                    if !add.is_empty() {
                        mutations.push((c, "insert", Datum::Set(add)));
                    }
                }
                (true, Datum::Map(old), Datum::Map(new)) => {
                    let del: AtomSet = old
                        .iter()
                        .filter(|(k, v)| new.get(k) != Some(*v))
                        .map(|(k, _)| k.clone())
                        .collect();
                    let add: AtomMap = new
                        .iter()
                        .filter(|(k, v)| old.get(k) != Some(*v))
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect();
                    if !del.is_empty() {
                        mutations.push((c, "delete", Datum::Set(del)));
                    }
                    if !add.is_empty() {
                        mutations.push((c, "insert", Datum::Map(add)));
                    }
                }
                _ => whole.push((c, d)),
            }
        }
        let row = Self::row_json(Some(replica), table, whole);
        let sent = !row.is_empty() || !mutations.is_empty();
        if !row.is_empty() {
            self.push_op(json!({
                "op": "update", "table": table,
                "where": RowRef::Existing(uuid).where_clause(), "row": row
            }));
            self.writes += 1;
        }
        self.mutate(table, &RowRef::Existing(uuid), mutations);
        sent
    }

    /// Update columns of a row by reference without comparing (e.g. a row inserted earlier in
    /// this transaction).
    pub fn update_ref(
        &mut self,
        replica: &Replica,
        table: &str,
        row: &RowRef,
        cols: Vec<(&str, Datum)>,
    ) {
        let values = Self::row_json(Some(replica), table, cols);
        if values.is_empty() {
            return;
        }
        self.push_op(
            json!({"op": "update", "table": table, "where": row.where_clause(), "row": values}),
        );
        self.writes += 1;
    }

    /// Delete a row.
    pub fn delete(&mut self, table: &str, uuid: Uuid) {
        self.push_op(
            json!({"op": "delete", "table": table, "where": RowRef::Existing(uuid).where_clause()}),
        );
        self.writes += 1;
    }

    /// Mutate a row: `mutations` are (column, mutator, value), e.g. `("ports", "insert", set)`.
    pub fn mutate(&mut self, table: &str, row: &RowRef, mutations: Vec<(&str, &str, Datum)>) {
        if mutations.is_empty() {
            return;
        }
        let m: Vec<Value> = mutations
            .into_iter()
            .map(|(c, op, d)| json!([c, op, d.to_json()]))
            .collect();
        self.push_op(
            json!({"op": "mutate", "table": table, "where": row.where_clause(), "mutations": m}),
        );
        self.writes += 1;
    }

    /// Set (or replace) keys of a string map column of an existing row with a mutation,
    /// skipping keys that already have the value. Returns whether anything was sent.
    pub fn smap_set(
        &mut self,
        replica: &Replica,
        table: &str,
        uuid: Uuid,
        column: &str,
        pairs: &[(&str, &str)],
    ) -> bool {
        if !replica.has_column(table, column) {
            return false;
        }
        let cur = replica.get(table, uuid);
        let todo: Vec<(&str, &str)> = pairs
            .iter()
            .filter(|(k, v)| cur.and_then(|r| r.smap_get(column, k)) != Some(*v))
            .copied()
            .collect();
        if todo.is_empty() {
            return false;
        }
        let keys = Datum::set(todo.iter().map(|(k, _)| Atom::from(*k)));
        let r = RowRef::Existing(uuid);
        self.mutate(
            table,
            &r,
            vec![
                (column, "delete", keys),
                (column, "insert", Datum::smap(todo)),
            ],
        );
        true
    }

    /// Remove keys from a string map column (only those present).
    pub fn smap_delete(
        &mut self,
        replica: &Replica,
        table: &str,
        uuid: Uuid,
        column: &str,
        keys: &[&str],
    ) -> bool {
        let cur = replica.get(table, uuid);
        let todo: Vec<&str> = keys
            .iter()
            .filter(|k| cur.is_some_and(|r| r.smap_get(column, k).is_some()))
            .copied()
            .collect();
        if todo.is_empty() {
            return false;
        }
        self.mutate(
            table,
            &RowRef::Existing(uuid),
            vec![(
                column,
                "delete",
                Datum::set(todo.into_iter().map(Atom::from)),
            )],
        );
        true
    }

    /// A precondition: the row's `columns` must still equal `values` (else the transaction
    /// fails with "timed out" → try again).
    pub fn verify(&mut self, table: &str, uuid: Uuid, values: Vec<(&str, Datum)>) {
        let cols: Vec<&str> = values.iter().map(|(c, _)| *c).collect();
        let row = Self::row_json(None, table, values);
        self.push_op(json!({
            "op": "wait", "table": table, "timeout": 0,
            "where": RowRef::Existing(uuid).where_clause(),
            "until": "==", "columns": cols, "rows": [row]
        }));
    }

    /// A precondition that `table` is empty (singleton insert race protection, §10 item 3).
    pub fn verify_empty(&mut self, table: &str) {
        self.push_op(json!({"op": "wait", "table": table, "where": [], "timeout": 0, "until": "==", "rows": []}));
    }

    /// Increment an integer column with `+=` and read the new value back (`ovsdb_idl_txn_increment`).
    /// The value is returned by [`TxnOutcome::increment`].
    pub fn increment(&mut self, table: &str, uuid: Uuid, column: &str) {
        let w = RowRef::Existing(uuid).where_clause();
        self.push_op(
            json!({"op": "mutate", "table": table, "where": w, "mutations": [[column, "+=", 1]]}),
        );
        self.push_op(json!({"op": "select", "table": table, "where": w, "columns": [column]}));
        self.increments.push(self.ops.len() - 1);
        self.writes += 1;
    }

    pub fn add_comment(&mut self, c: &str) {
        self.comments.push(c.to_string());
    }

    /// The `transact` params as JSON values (tests and tools): db name, the ops, the comment,
    /// and `assert` for a lock.
    pub fn to_params(&self, lock: Option<&str>) -> Vec<Value> {
        let mut p = Vec::with_capacity(self.ops.len() + 3);
        p.push(Value::String(self.db.clone()));
        p.extend(
            self.ops
                .iter()
                .map(|op| serde_json::from_str(op.get()).expect("ops are JSON text")),
        );
        p.extend(self.tail(lock));
        p
    }

    /// The `transact` params as JSON text, the ops moved rather than copied. What
    /// [`Txn::classify`] needs of them stays.
    pub fn take_params(&mut self, lock: Option<&str>) -> Vec<Box<RawValue>> {
        let ops = std::mem::take(&mut self.ops);
        let mut p = Vec::with_capacity(ops.len() + 3);
        p.push(to_raw_value(&self.db).expect("a string serialises"));
        p.extend(ops);
        p.extend(
            self.tail(lock)
                .map(|v| to_raw_value(&v).expect("serialising a JSON value cannot fail")),
        );
        p
    }

    fn uuid_names(&self) -> impl Iterator<Item = (usize, &str)> {
        self.names.iter().map(|(i, n)| (*i, n.as_str()))
    }

    /// The ops after the caller's: the comment and the lock assertion.
    fn tail(&self, lock: Option<&str>) -> impl Iterator<Item = Value> {
        let comment = (!self.comments.is_empty())
            .then(|| json!({"op": "comment", "comment": self.comments.join("\n")}));
        let assert = lock.map(|l| json!({"op": "assert", "lock": l}));
        comment.into_iter().chain(assert)
    }

    /// Classify the reply to the params built by [`Txn::to_params`] or [`Txn::take_params`].
    pub fn classify(&self, reply: Result<&RawValue, &Value>) -> TxnStatus {
        let results = match decode(reply) {
            Ok(r) => r,
            Err(status) => return status,
        };
        match classify_results(&results) {
            TxnStatus::Success(mut o) => {
                o.named = self.named_uuids(&results);
                o.increment = self.increments.first().and_then(|&i| {
                    results
                        .get(i)?
                        .as_ref()?
                        .rows
                        .as_ref()?
                        .first()?
                        .values()
                        .next()?
                        .as_i64()
                });
                TxnStatus::Success(o)
            }
            other => other,
        }
    }

    fn named_uuids(&self, results: &[Option<OpResult>]) -> HashMap<String, Uuid> {
        let mut m = HashMap::new();
        for (i, name) in self.uuid_names() {
            if let Some(u) = results.get(i).and_then(|r| r.as_ref()?.uuid) {
                m.insert(name.to_string(), u);
            }
        }
        m
    }
}

/// One operation's result in a `transact` reply, with only what a commit reads: the UUID of an
/// inserted row, the rows a `select` read back (the incremented counter), the error. Decoded
/// straight from the reply's text: a cold start's reply has one result per inserted row, and as
/// a tree of `Value`s (a map, a key, an array and two strings each) it was one of the daemon's
/// peak memory items.
#[derive(Debug, Deserialize)]
struct OpResult {
    #[serde(default, deserialize_with = "uuid_pair")]
    uuid: Option<Uuid>,
    #[serde(default)]
    rows: Option<Vec<serde_json::Map<String, Value>>>,
    #[serde(default)]
    error: Option<Value>,
    #[serde(default)]
    details: Option<Value>,
}

/// `["uuid", "<uuid>"]`; anything else names no row (the caller treats it as unnamed).
fn uuid_pair<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Uuid>, D::Error> {
    let v = Value::deserialize(d)?;
    Ok(v.get(1)
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok()))
}

/// The results of a `transact` reply, or the status an error reply or a malformed one means.
fn decode(reply: Result<&RawValue, &Value>) -> Result<Vec<Option<OpResult>>, TxnStatus> {
    match reply {
        Err(Value::String(s)) if s == "canceled" => Err(TxnStatus::TryAgain("canceled".into())),
        Err(e) => {
            let tag = e.get("error").and_then(Value::as_str).unwrap_or("");
            let details = e.get("details").and_then(Value::as_str).unwrap_or("");
            let text = if tag.is_empty() {
                e.to_string()
            } else {
                format!("{tag}: {details}")
            };
            Err(TxnStatus::Error(TxnError::Other {
                tag: "error reply".into(),
                details: text,
            }))
        }
        Ok(raw) => serde_json::from_str(raw.get()).map_err(|e| {
            TxnStatus::Error(TxnError::BadReply(format!(
                "reply is not an array of operation results: {e}"
            )))
        }),
    }
}

/// A server-side transaction error (hard error).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxnError {
    #[error("constraint violation: {0}")]
    ConstraintViolation(String),
    #[error("referential integrity violation: {0}")]
    ReferentialIntegrity(String),
    #[error("not allowed: {0}")]
    NotAllowed(String),
    #[error("{tag}: {details}")]
    Other { tag: String, details: String },
    #[error("bad transaction reply: {0}")]
    BadReply(String),
}

/// Result of a successful transaction.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TxnOutcome {
    /// uuid-name → real UUID of inserted rows.
    pub named: HashMap<String, Uuid>,
    /// New value of the incremented counter, if any.
    pub increment: Option<i64>,
}

/// How a commit ended (spec §5.5).
#[derive(Debug, Clone, PartialEq)]
pub enum TxnStatus {
    /// Nothing to send.
    Unchanged,
    Success(TxnOutcome),
    /// Soft failure: wait for a replica change, then recompute and try again.
    TryAgain(String),
    /// The lock `assert` failed.
    NotLocked,
    Error(TxnError),
}

impl TxnStatus {
    pub fn is_ok(&self) -> bool {
        matches!(self, TxnStatus::Unchanged | TxnStatus::Success(_))
    }
}

/// Classify a `transact` reply (`Ok(result)` or `Err(error)`), as `ovsdb_idl_txn_process_reply`:
/// hard errors beat lock errors beat soft errors.
pub fn classify(reply: Result<&RawValue, &Value>) -> TxnStatus {
    match decode(reply) {
        Ok(results) => classify_results(&results),
        Err(status) => status,
    }
}

fn classify_results(results: &[Option<OpResult>]) -> TxnStatus {
    let (mut hard, mut lock, mut soft) = (None, false, None);
    for op in results {
        let Some(op) = op else {
            soft.get_or_insert_with(|| "operation not executed".to_string());
            continue;
        };
        let Some(e) = &op.error else { continue };
        let Some(tag) = e.as_str() else {
            hard.get_or_insert(TxnError::BadReply("\"error\" is not a string".into()));
            continue;
        };
        let details = op
            .details
            .as_ref()
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        match tag {
            "timed out" => {
                soft.get_or_insert(format!("timed out: {details}"));
            }
            "unknown database" => {
                soft.get_or_insert(format!("unknown database: {details}"));
            }
            "not owner" => lock = true,
            "aborted" => {}
            "constraint violation" => {
                hard.get_or_insert(TxnError::ConstraintViolation(details));
            }
            "referential integrity violation" => {
                hard.get_or_insert(TxnError::ReferentialIntegrity(details));
            }
            "not allowed" => {
                hard.get_or_insert(TxnError::NotAllowed(details));
            }
            _ => {
                hard.get_or_insert(TxnError::Other {
                    tag: tag.to_string(),
                    details,
                });
            }
        }
    }
    if let Some(h) = hard {
        TxnStatus::Error(h)
    } else if lock {
        TxnStatus::NotLocked
    } else if let Some(s) = soft {
        TxnStatus::TryAgain(s)
    } else {
        TxnStatus::Success(TxnOutcome::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// Set and map columns are updated by mutating only their difference; scalars and
    /// optional scalars by `update`.
    #[test]
    fn update_mutates_the_difference_of_set_and_map_columns() {
        use crate::ovsdb::schema::DatabaseSchema;
        use std::sync::Arc;
        let s = json!({"name": "T", "version": "1.0.0", "tables": {"A": {"columns": {
            "name": {"type": "string"},
            "opt": {"type": {"key": "string", "min": 0, "max": 1}},
            "tags": {"type": {"key": "string", "min": 0, "max": "unlimited"}},
            "opts": {"type": {"key": "string", "value": "string", "min": 0, "max": "unlimited"}}
        }}}});
        let mut r = Replica::new("T");
        let mut mon = BTreeMap::new();
        mon.insert(
            "A".to_string(),
            ["name", "opt", "tags", "opts"].map(String::from).to_vec(),
        );
        r.set_schema(Arc::new(DatabaseSchema::from_json(&s).unwrap()), &mon);
        r.apply_update2(
            &json!({"A": {"00000000-0000-0000-0000-000000000001": {"insert": {
            "name": "a", "opt": "x", "tags": ["set", ["t1", "t2"]],
            "opts": ["map", [["k1", "v1"], ["k2", "v2"]]]}}}}),
        )
        .unwrap();
        let mut t = Txn::new("T");
        let sent = t.update(
            &r,
            "A",
            Uuid(1),
            vec![
                ("name", Datum::scalar("b")),
                ("opt", Datum::empty_set()),
                ("tags", Datum::set(["t2", "t3"].map(Atom::from))),
                (
                    "opts",
                    Datum::smap([("k1", "v1"), ("k2", "w"), ("k3", "v3")]),
                ),
            ],
        );
        assert!(sent);
        let ops = t.to_params(None);
        let ops = &ops[1..];
        assert_eq!(ops.len(), 2, "{ops:?}");
        assert_eq!(ops[0]["op"], "update");
        assert_eq!(ops[0]["row"], json!({"name": "b", "opt": ["set", []]}));
        assert_eq!(ops[1]["op"], "mutate");
        assert_eq!(
            ops[1]["mutations"],
            json!([
                ["tags", "delete", "t1"],
                ["tags", "insert", "t3"],
                ["opts", "delete", "k2"],
                ["opts", "insert", ["map", [["k2", "w"], ["k3", "v3"]]]]
            ])
        );
        // Nothing to change: nothing sent.
        let mut t = Txn::new("T");
        assert!(!t.update(
            &r,
            "A",
            Uuid(1),
            vec![("tags", Datum::set(["t1", "t2"].map(Atom::from)))]
        ));
        assert!(t.is_empty());
    }

    fn raw(v: Value) -> Box<RawValue> {
        to_raw_value(&v).unwrap()
    }

    #[test]
    fn classification() {
        assert!(matches!(
            classify(Ok(&raw(json!([{}, {"count": 1}])))),
            TxnStatus::Success(_)
        ));
        assert!(matches!(
            classify(Ok(&raw(json!([{}, {"error": "timed out"}])))),
            TxnStatus::TryAgain(_)
        ));
        assert!(matches!(
            classify(Ok(&raw(json!([{}, null])))),
            TxnStatus::TryAgain(_)
        ));
        assert_eq!(
            classify(Ok(&raw(json!([{}, {"error": "not owner"}])))),
            TxnStatus::NotLocked
        );
        assert!(matches!(
            classify(Ok(&raw(json!([{"error": "constraint violation", "details": "x"}, null])))),
            TxnStatus::Error(TxnError::ConstraintViolation(d)) if d == "x"
        ));
        assert!(matches!(
            classify(Ok(&raw(
                json!([{"count": 1}, {}, {"error": "referential integrity violation", "details": "y"}])
            ))),
            TxnStatus::Error(TxnError::ReferentialIntegrity(_))
        ));
        // hard beats lock beats soft
        assert!(matches!(
            classify(Ok(&raw(
                json!([{"error": "not owner"}, {"error": "constraint violation"}])
            ))),
            TxnStatus::Error(_)
        ));
        assert_eq!(
            classify(Ok(&raw(
                json!([{"error": "timed out"}, {"error": "not owner"}])
            ))),
            TxnStatus::NotLocked
        );
        assert!(matches!(
            classify(Err(&json!("canceled"))),
            TxnStatus::TryAgain(_)
        ));
        assert!(matches!(
            classify(Err(&json!({"error": "unknown database"}))),
            TxnStatus::Error(_)
        ));
        assert!(matches!(
            classify(Ok(&raw(json!({})))),
            TxnStatus::Error(TxnError::BadReply(_))
        ));
        assert!(matches!(
            classify(Ok(&raw(json!([{"error": 5}])))),
            TxnStatus::Error(TxnError::BadReply(_))
        ));
    }

    #[test]
    fn params_shape() {
        let r = Replica::new("DB");
        let mut t = Txn::new("DB");
        assert!(t.is_empty());
        let n = t.insert(&r, "T", vec![("name", Datum::scalar("a"))]);
        t.delete("T", Uuid(5));
        t.add_comment("ovn-ic");
        let p = t.to_params(Some("ovn_ic"));
        assert_eq!(p[0], json!("DB"));
        assert_eq!(p[1]["op"], "insert");
        assert_eq!(
            p[1]["uuid-name"],
            json!(match &n {
                RowRef::Named(s) => s.clone(),
                _ => unreachable!(),
            })
        );
        assert_eq!(p[2]["op"], "delete");
        assert_eq!(p[3], json!({"op": "comment", "comment": "ovn-ic"}));
        assert_eq!(p[4], json!({"op": "assert", "lock": "ovn_ic"}));
        let reply = json!([{"uuid": ["uuid", "00000000-0000-0000-0000-000000000009"]}, {"count": 1}, {}, {}]);
        match t.classify(Ok(&raw(reply.clone()))) {
            TxnStatus::Success(o) => {
                assert_eq!(o.named.get("row0"), Some(&Uuid(9)));
            }
            s => panic!("{s:?}"),
        }
        // Handing the ops over (no copy) builds the same params, byte for byte, and still
        // names the rows.
        let mut moved = t.clone();
        let params = moved.take_params(Some("ovn_ic"));
        let text: Vec<&str> = params.iter().map(|r| r.get()).collect();
        let want: Vec<String> = p.iter().map(Value::to_string).collect();
        assert_eq!(text, want);
        match moved.classify(Ok(&raw(reply.clone()))) {
            TxnStatus::Success(o) => assert_eq!(o.named.get("row0"), Some(&Uuid(9))),
            s => panic!("{s:?}"),
        }
    }

    /// The reply is read from its text: a result without a usable UUID names nothing, unknown
    /// members are ignored, and an element that is not an object or null is a bad reply.
    #[test]
    fn reply_results_are_decoded_from_text() {
        let r = Replica::new("DB");
        let mut t = Txn::new("DB");
        t.insert(&r, "T", vec![("name", Datum::scalar("a"))]);
        t.insert(&r, "T", vec![("name", Datum::scalar("b"))]);
        let reply = json!([{"uuid": "bogus"}, {"uuid": ["uuid", "00000000-0000-0000-0000-00000000000a"], "x": 1}]);
        match t.classify(Ok(&raw(reply))) {
            TxnStatus::Success(o) => {
                assert_eq!(o.named.len(), 1);
                assert_eq!(o.named.get("row1"), Some(&Uuid(10)));
            }
            s => panic!("{s:?}"),
        }
        assert!(matches!(
            t.classify(Ok(&raw(json!([{}, 5])))),
            TxnStatus::Error(TxnError::BadReply(_))
        ));
        assert!(matches!(
            t.classify(Err(&json!({"error": "syntax error", "details": "d"}))),
            TxnStatus::Error(TxnError::Other { details, .. }) if details == "syntax error: d"
        ));
    }

    #[test]
    fn increment_reads_back() {
        let mut t = Txn::new("DB");
        t.increment("G", Uuid(1), "nb_ic_cfg");
        let reply = json!([{"count": 1}, {"rows": [{"nb_ic_cfg": 7}]}]);
        match t.classify(Ok(&raw(reply.clone()))) {
            TxnStatus::Success(o) => assert_eq!(o.increment, Some(7)),
            s => panic!("{s:?}"),
        }
    }
}
