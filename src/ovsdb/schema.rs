//! Database schemas (`get_schema` results, `.ovsschema` files, `_Server.Database.schema`).
//! Spec ovsdb-protocol.md §3.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::Value;

use super::datum::{Atom, AtomicType};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SchemaError {
    #[error("schema syntax error: {0}")]
    Syntax(String),
    #[error("cannot read schema file {path}: {err}")]
    Io { path: String, err: String },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefType {
    Strong,
    Weak,
}

/// `<base-type>`: an atomic type with optional constraints.
#[derive(Clone, Debug, PartialEq)]
pub struct BaseType {
    pub atomic: AtomicType,
    pub enum_values: Option<BTreeSet<Atom>>,
    pub min_integer: Option<i64>,
    pub max_integer: Option<i64>,
    pub min_real: Option<f64>,
    pub max_real: Option<f64>,
    pub min_length: Option<u64>,
    pub max_length: Option<u64>,
    pub ref_table: Option<String>,
    pub ref_type: RefType,
}

impl BaseType {
    pub fn new(atomic: AtomicType) -> BaseType {
        BaseType {
            atomic,
            enum_values: None,
            min_integer: None,
            max_integer: None,
            min_real: None,
            max_real: None,
            min_length: None,
            max_length: None,
            ref_table: None,
            ref_type: RefType::Strong,
        }
    }
}

/// `<type>`: key, optional value (then it is a map), min and max (u64::MAX = "unlimited").
#[derive(Clone, Debug, PartialEq)]
pub struct ColumnType {
    pub key: BaseType,
    pub value: Option<BaseType>,
    pub min: u64,
    pub max: u64,
}

impl ColumnType {
    pub fn scalar(atomic: AtomicType) -> ColumnType {
        ColumnType { key: BaseType::new(atomic), value: None, min: 1, max: 1 }
    }
    pub fn optional(atomic: AtomicType) -> ColumnType {
        ColumnType { key: BaseType::new(atomic), value: None, min: 0, max: 1 }
    }
    pub fn set(atomic: AtomicType) -> ColumnType {
        ColumnType { key: BaseType::new(atomic), value: None, min: 0, max: u64::MAX }
    }
    pub fn map(k: AtomicType, v: AtomicType) -> ColumnType {
        ColumnType { key: BaseType::new(k), value: Some(BaseType::new(v)), min: 0, max: u64::MAX }
    }
    pub fn is_map(&self) -> bool {
        self.value.is_some()
    }
    pub fn is_scalar(&self) -> bool {
        self.min == 1 && self.max == 1 && self.value.is_none()
    }
    pub fn is_optional_scalar(&self) -> bool {
        self.min == 0 && self.max == 1 && self.value.is_none()
    }

    /// Parse `<type>` (an atomic-type string or an object).
    pub fn from_json(v: &Value) -> Result<ColumnType, SchemaError> {
        todo!("helper: implement")
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct ColumnSchema {
    pub name: String,
    pub ty: ColumnType,
    pub ephemeral: bool,
    pub mutable: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TableSchema {
    pub name: String,
    pub columns: BTreeMap<String, ColumnSchema>,
    pub max_rows: Option<u64>,
    /// Effective root flag: when no table of the schema sets isRoot, every table is root.
    pub is_root: bool,
    pub indexes: Vec<Vec<String>>,
}

impl TableSchema {
    pub fn column(&self, name: &str) -> Option<&ColumnSchema> {
        self.columns.get(name)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct DatabaseSchema {
    pub name: String,
    pub version: String,
    pub cksum: Option<String>,
    pub tables: BTreeMap<String, TableSchema>,
}

impl DatabaseSchema {
    /// Parse a `<database-schema>` object. Unknown members are ignored; missing required members
    /// and bad types are [`SchemaError::Syntax`] naming the place.
    pub fn from_json(v: &Value) -> Result<DatabaseSchema, SchemaError> {
        todo!("helper: implement")
    }

    /// Read and parse an `.ovsschema` file.
    pub fn from_file(path: &Path) -> Result<DatabaseSchema, SchemaError> {
        let text = std::fs::read_to_string(path).map_err(|e| SchemaError::Io {
            path: path.display().to_string(),
            err: e.to_string(),
        })?;
        let v: Value = serde_json::from_str(&text).map_err(|e| SchemaError::Syntax(e.to_string()))?;
        DatabaseSchema::from_json(&v)
    }

    pub fn table(&self, name: &str) -> Option<&TableSchema> {
        self.tables.get(name)
    }
    pub fn has_table(&self, table: &str) -> bool {
        self.tables.contains_key(table)
    }
    pub fn has_column(&self, table: &str, column: &str) -> bool {
        self.tables.get(table).is_some_and(|t| t.columns.contains_key(column))
    }
    pub fn column_type(&self, table: &str, column: &str) -> Option<&ColumnType> {
        self.tables.get(table)?.columns.get(column).map(|c| &c.ty)
    }
}
