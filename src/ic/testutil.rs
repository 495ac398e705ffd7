//! Building replicas from plain JSON for unit tests of the stages (no sockets).
//!
//! Schemas come from `OVN_SCHEMA_DIR` (the current upstream schemas in CI) or `/usr/share/ovn`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::Value;

use crate::ovsdb::replica::Replica;
use crate::ovsdb::schema::DatabaseSchema;

pub fn schema_dir() -> PathBuf {
    std::env::var_os("OVN_SCHEMA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let shared = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/schemas");
            if shared.join("ovn-nb.ovsschema").exists() {
                shared
            } else {
                PathBuf::from("/usr/share/ovn")
            }
        })
}

/// Load `ovn-nb`, `ovn-sb`, `ovn-ic-nb` or `ovn-ic-sb`.
pub fn schema(name: &str) -> Arc<DatabaseSchema> {
    let p = schema_dir().join(format!("{name}.ovsschema"));
    Arc::new(DatabaseSchema::from_file(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
}

/// An empty replica of schema `name` monitoring every table and column.
pub fn empty(name: &str) -> Replica {
    let s = schema(name);
    let mut r = Replica::new(&s.name);
    let mon: BTreeMap<String, Vec<String>> = s
        .tables
        .iter()
        .map(|(t, ts)| (t.clone(), ts.columns.keys().cloned().collect()))
        .collect();
    r.set_schema(s, &mon);
    r
}

/// A replica of schema `name` holding `rows`: `{"Table": {"<uuid>": {col: json, ...}}}` in the
/// wire encoding (`["uuid", ...]`, `["map", ...]`, `["set", ...]`). Changes are cleared.
pub fn replica(name: &str, rows: Value) -> Replica {
    let mut r = empty(name);
    let mut upd = serde_json::Map::new();
    for (t, rs) in rows.as_object().expect("object of tables") {
        let mut m = serde_json::Map::new();
        for (u, row) in rs.as_object().expect("object of rows") {
            m.insert(u.clone(), serde_json::json!({"insert": row}));
        }
        upd.insert(t.clone(), Value::Object(m));
    }
    r.apply_update2(&Value::Object(upd)).expect("valid rows");
    r.clear_changes();
    r
}

/// A UUID string from a small number, for readable fixtures.
pub fn u(n: u32) -> String {
    format!("00000000-0000-0000-0000-{n:012x}")
}
