//! Database schemas (`get_schema` results, `.ovsschema` files, `_Server.Database.schema`).
//! Spec ovsdb-protocol.md §3.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::Value;

use super::datum::{json_number_to_i64, Atom, AtomicType, Datum};

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
        ColumnType {
            key: BaseType::new(atomic),
            value: None,
            min: 1,
            max: 1,
        }
    }
    pub fn optional(atomic: AtomicType) -> ColumnType {
        ColumnType {
            key: BaseType::new(atomic),
            value: None,
            min: 0,
            max: 1,
        }
    }
    pub fn set(atomic: AtomicType) -> ColumnType {
        ColumnType {
            key: BaseType::new(atomic),
            value: None,
            min: 0,
            max: u64::MAX,
        }
    }
    pub fn map(k: AtomicType, v: AtomicType) -> ColumnType {
        ColumnType {
            key: BaseType::new(k),
            value: Some(BaseType::new(v)),
            min: 0,
            max: u64::MAX,
        }
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
    ///
    /// Follows `ovsdb_type_from_json`: `min` defaults to 1 and must be 0 or 1; `max` defaults to
    /// 1, is a positive integer or `"unlimited"` (= `u64::MAX`), and must be at least `min`.
    pub fn from_json(v: &Value) -> Result<ColumnType, SchemaError> {
        match v {
            Value::String(_) => Ok(ColumnType {
                key: BaseType::from_json(v)?,
                value: None,
                min: 1,
                max: 1,
            }),
            Value::Object(o) => {
                let key = match o.get("key") {
                    Some(k) => BaseType::from_json(k).map_err(|e| e.within("key"))?,
                    None => return Err(syntax("type is missing required member \"key\"")),
                };
                let value = o
                    .get("value")
                    .map(|vt| BaseType::from_json(vt).map_err(|e| e.within("value")))
                    .transpose()?;
                let min = match o.get("min") {
                    None => 1,
                    Some(m) => json_count(m)
                        .ok_or_else(|| syntax(format!("bad min value {m} (expected 0 or 1)")))?,
                };
                let max = match o.get("max") {
                    None => 1,
                    Some(Value::String(s)) if s == "unlimited" => u64::MAX,
                    Some(m) => json_count(m).ok_or_else(|| {
                        syntax(format!(
                            "bad max value {m} (expected a positive integer or \"unlimited\")"
                        ))
                    })?,
                };
                if min > 1 {
                    return Err(syntax(format!("min must be 0 or 1, not {min}")));
                }
                if max == 0 {
                    return Err(syntax("max must be at least 1"));
                }
                if min > max {
                    return Err(syntax(format!("min {min} exceeds max {max}")));
                }
                Ok(ColumnType {
                    key,
                    value,
                    min,
                    max,
                })
            }
            other => Err(syntax(format!(
                "ovsdb type expected (an atomic-type string or an object), got {other}"
            ))),
        }
    }

    /// Encode as `<type>` (inverse of [`ColumnType::from_json`]; the short string form for a
    /// plain scalar).
    pub fn to_json(&self) -> Value {
        if self.is_scalar() && self.key.is_plain() {
            return Value::from(self.key.atomic.name());
        }
        let mut o = serde_json::Map::new();
        o.insert("key".into(), self.key.to_json());
        if let Some(v) = &self.value {
            o.insert("value".into(), v.to_json());
        }
        o.insert("min".into(), Value::from(self.min));
        o.insert(
            "max".into(),
            if self.max == u64::MAX {
                Value::from("unlimited")
            } else {
                Value::from(self.max)
            },
        );
        Value::Object(o)
    }
}

impl BaseType {
    /// Whether the base type has no constraints at all (so `<atomic-type>` alone describes it).
    pub fn is_plain(&self) -> bool {
        *self == BaseType::new(self.atomic)
    }

    /// Whether this is a reference (`refTable` set) of the given strength.
    pub fn is_ref(&self, ty: RefType) -> bool {
        self.ref_table.is_some() && self.ref_type == ty
    }

    /// Parse `<base-type>` (an atomic-type string or an object), as `ovsdb_base_type_from_json`.
    /// `enum` is decoded as a `<value>` with this base type (at least one element).
    /// Constraint members that do not apply to the atomic type are ignored.
    pub fn from_json(v: &Value) -> Result<BaseType, SchemaError> {
        let o = match v {
            Value::String(s) => return Ok(BaseType::new(atomic_from_name(s)?)),
            Value::Object(o) => o,
            other => {
                return Err(syntax(format!(
                    "base type expected (an atomic-type string or an object), got {other}"
                )))
            }
        };
        let atomic = match o.get("type") {
            Some(Value::String(s)) => atomic_from_name(s)?,
            Some(other) => return Err(syntax(format!("\"type\" must be a string, got {other}"))),
            None => return Err(syntax("base type is missing required member \"type\"")),
        };
        let mut base = BaseType::new(atomic);
        match atomic {
            AtomicType::Integer => {
                base.min_integer = opt_member(o, "minInteger", json_int)?;
                base.max_integer = opt_member(o, "maxInteger", json_int)?;
                if let (Some(a), Some(b)) = (base.min_integer, base.max_integer) {
                    if a > b {
                        return Err(syntax("minInteger exceeds maxInteger"));
                    }
                }
            }
            AtomicType::Real => {
                base.min_real = opt_member(o, "minReal", Value::as_f64)?;
                base.max_real = opt_member(o, "maxReal", Value::as_f64)?;
                if let (Some(a), Some(b)) = (base.min_real, base.max_real) {
                    if a > b {
                        return Err(syntax("minReal exceeds maxReal"));
                    }
                }
            }
            AtomicType::String => {
                base.min_length = opt_member(o, "minLength", json_count)?;
                base.max_length = opt_member(o, "maxLength", json_count)?;
                if let (Some(a), Some(b)) = (base.min_length, base.max_length) {
                    if a > b {
                        return Err(syntax("minLength exceeds maxLength"));
                    }
                }
            }
            AtomicType::Uuid => {
                base.ref_table = opt_member(o, "refTable", |v| {
                    v.as_str().filter(|s| is_id(s)).map(str::to_string)
                })?;
                match o.get("refType") {
                    None => {}
                    Some(Value::String(s)) if s == "strong" => base.ref_type = RefType::Strong,
                    Some(Value::String(s)) if s == "weak" => base.ref_type = RefType::Weak,
                    Some(other) => {
                        return Err(syntax(format!(
                            "refType must be \"strong\" or \"weak\" (not {other})"
                        )))
                    }
                }
            }
            AtomicType::Boolean => {}
        }
        if let Some(e) = o.get("enum") {
            let enum_type = ColumnType {
                key: BaseType::new(atomic),
                value: None,
                min: 1,
                max: u64::MAX,
            };
            match Datum::from_json(e, &enum_type) {
                Ok(Datum::Set(set)) => base.enum_values = Some(set.into_iter().collect()),
                Ok(Datum::Map(_)) => return Err(syntax("enum must be a set")),
                Err(err) => return Err(syntax(format!("enum: {err}"))),
            }
        }
        Ok(base)
    }

    /// Encode as `<base-type>`.
    pub fn to_json(&self) -> Value {
        if self.is_plain() {
            return Value::from(self.atomic.name());
        }
        let mut o = serde_json::Map::new();
        o.insert("type".into(), Value::from(self.atomic.name()));
        if let Some(e) = &self.enum_values {
            let d = Datum::Set(e.iter().cloned().collect());
            o.insert("enum".into(), d.to_json());
        }
        let mut put = |k: &str, v: Option<Value>| {
            if let Some(v) = v {
                o.insert(k.into(), v);
            }
        };
        put("minInteger", self.min_integer.map(Value::from));
        put("maxInteger", self.max_integer.map(Value::from));
        put("minReal", self.min_real.map(Value::from));
        put("maxReal", self.max_real.map(Value::from));
        put("minLength", self.min_length.map(Value::from));
        put("maxLength", self.max_length.map(Value::from));
        put("refTable", self.ref_table.clone().map(Value::from));
        if self.ref_table.is_some() {
            let rt = match self.ref_type {
                RefType::Strong => "strong",
                RefType::Weak => "weak",
            };
            put("refType", Some(Value::from(rt)));
        }
        Value::Object(o)
    }
}

impl SchemaError {
    /// Prefix a syntax error's message with the place it occurred (`"table T column C: ..."`).
    fn within(self, place: &str) -> SchemaError {
        match self {
            SchemaError::Syntax(m) => SchemaError::Syntax(format!("{place}: {m}")),
            other => other,
        }
    }
}

fn syntax(msg: impl Into<String>) -> SchemaError {
    SchemaError::Syntax(msg.into())
}

fn atomic_from_name(s: &str) -> Result<AtomicType, SchemaError> {
    AtomicType::from_name(s).ok_or_else(|| syntax(format!("unknown atomic type \"{s}\"")))
}

/// An `<id>`: `[A-Za-z_][A-Za-z0-9_]*` (C `ovsdb_parser_is_id`).
pub fn is_id(s: &str) -> bool {
    let mut b = s.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

fn json_int(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => json_number_to_i64(n),
        _ => None,
    }
}

/// A non-negative JSON integer.
fn json_count(v: &Value) -> Option<u64> {
    json_int(v).and_then(|i| u64::try_from(i).ok())
}

fn json_bool(v: &Value) -> Option<bool> {
    v.as_bool()
}

/// Optional member `name` of `o`, converted by `f`; present but unconvertible is an error.
fn opt_member<T>(
    o: &serde_json::Map<String, Value>,
    name: &str,
    f: impl FnOnce(&Value) -> Option<T>,
) -> Result<Option<T>, SchemaError> {
    match o.get(name) {
        None => Ok(None),
        Some(v) => f(v)
            .map(Some)
            .ok_or_else(|| syntax(format!("bad value {v} for \"{name}\""))),
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
    ///
    /// Besides the syntax it applies `ovsdb_schema_from_json`'s checks and adjustments: table and
    /// column names are ids not starting with `_`, `version` is `x.y.z`, every `refTable` names a
    /// table of the schema, indexes name existing non-ephemeral columns, columns holding weak
    /// references are mutable, columns holding strong references to non-root tables are not
    /// ephemeral, and if no table sets `isRoot` every table is root.
    pub fn from_json(v: &Value) -> Result<DatabaseSchema, SchemaError> {
        let o = v
            .as_object()
            .ok_or_else(|| syntax(format!("database schema must be an object, got {v}")))?;
        let name = match o.get("name") {
            Some(Value::String(s)) if is_id(s) => s.clone(),
            Some(other) => return Err(syntax(format!("database name {other} is not a valid id"))),
            None => {
                return Err(syntax(
                    "database schema is missing required member \"name\"",
                ))
            }
        };
        let in_db = |e: SchemaError| e.within(&format!("database {name}"));
        let version = match o.get("version") {
            None => String::new(),
            Some(Value::String(s)) if is_version(s) => s.clone(),
            Some(other) => {
                return Err(in_db(syntax(format!(
                    "schema version {other} not in format x.y.z"
                ))))
            }
        };
        let cksum = opt_member(o, "cksum", |v| v.as_str().map(str::to_string)).map_err(in_db)?;
        let tables_json = match o.get("tables") {
            Some(Value::Object(t)) => t,
            Some(other) => {
                return Err(in_db(syntax(format!(
                    "\"tables\" must be an object, got {other}"
                ))))
            }
            None => return Err(in_db(syntax("missing required member \"tables\""))),
        };

        let mut tables = BTreeMap::new();
        let mut explicit_root = BTreeMap::new();
        for (tname, tjson) in tables_json {
            let (table, root) = parse_table(tname, tjson)
                .map_err(|e| in_db(e.within(&format!("table {tname}"))))?;
            explicit_root.insert(tname.clone(), root);
            tables.insert(tname.clone(), table);
        }

        // Compatibility rule: without any isRoot, there is no garbage collection.
        let any_root = explicit_root.values().any(|&r| r == Some(true));
        for t in tables.values_mut() {
            t.is_root = !any_root || explicit_root.get(&t.name).copied().flatten() == Some(true);
        }

        // Reference checks need every table's effective root flag.
        let root_of: BTreeMap<String, bool> =
            tables.iter().map(|(n, t)| (n.clone(), t.is_root)).collect();
        for t in tables.values_mut() {
            for c in t.columns.values_mut() {
                for (base, which) in [(Some(&c.ty.key), "key"), (c.ty.value.as_ref(), "value")] {
                    let Some(base) = base else { continue };
                    let Some(rt) = &base.ref_table else { continue };
                    let Some(&target_is_root) = root_of.get(rt) else {
                        return Err(syntax(format!(
                            "database {name}: table {} column {} {which} refers to undefined \
                             table {rt}",
                            t.name, c.name
                        )));
                    };
                    match base.ref_type {
                        // Immutable weak references make no sense: they change when the
                        // referenced row is deleted.
                        RefType::Weak => c.mutable = true,
                        // The only reference to a row must survive a log replay.
                        RefType::Strong if !target_is_root => c.ephemeral = false,
                        RefType::Strong => {}
                    }
                }
            }
        }

        Ok(DatabaseSchema {
            name,
            version,
            cksum,
            tables,
        })
    }

    /// Read and parse an `.ovsschema` file.
    pub fn from_file(path: &Path) -> Result<DatabaseSchema, SchemaError> {
        let text = std::fs::read_to_string(path).map_err(|e| SchemaError::Io {
            path: path.display().to_string(),
            err: e.to_string(),
        })?;
        let v: Value =
            serde_json::from_str(&text).map_err(|e| SchemaError::Syntax(e.to_string()))?;
        DatabaseSchema::from_json(&v)
    }

    /// Parse a schema from JSON text (e.g. the `schema` column of `_Server.Database`).
    pub fn from_str_json(text: &str) -> Result<DatabaseSchema, SchemaError> {
        let v: Value =
            serde_json::from_str(text).map_err(|e| SchemaError::Syntax(e.to_string()))?;
        DatabaseSchema::from_json(&v)
    }

    pub fn table(&self, name: &str) -> Option<&TableSchema> {
        self.tables.get(name)
    }
    pub fn has_table(&self, table: &str) -> bool {
        self.tables.contains_key(table)
    }
    pub fn has_column(&self, table: &str, column: &str) -> bool {
        self.tables
            .get(table)
            .is_some_and(|t| t.columns.contains_key(column))
    }
    pub fn column_type(&self, table: &str, column: &str) -> Option<&ColumnType> {
        self.tables.get(table)?.columns.get(column).map(|c| &c.ty)
    }
}

/// `x.y.z` with decimal components (C `ovsdb_is_valid_version`).
fn is_version(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit()))
}

/// Parse `<table-schema>`; returns the table (with `is_root` as given, default false) and the
/// explicit `isRoot` value if any.
fn parse_table(name: &str, v: &Value) -> Result<(TableSchema, Option<bool>), SchemaError> {
    if name.starts_with('_') {
        return Err(syntax("names beginning with \"_\" are reserved"));
    }
    if !is_id(name) {
        return Err(syntax("name must be a valid id"));
    }
    let o = v
        .as_object()
        .ok_or_else(|| syntax(format!("table schema must be an object, got {v}")))?;
    let columns_json = match o.get("columns") {
        Some(Value::Object(c)) => c,
        Some(other) => {
            return Err(syntax(format!(
                "\"columns\" must be an object, got {other}"
            )))
        }
        None => return Err(syntax("missing required member \"columns\"")),
    };
    if columns_json.is_empty() {
        return Err(syntax("table must have at least one column"));
    }
    let max_rows = opt_member(o, "maxRows", json_int)?
        .map(|n| u64::try_from(n).ok().filter(|&n| n >= 1))
        .map(|n| n.ok_or_else(|| syntax("maxRows must be at least 1")))
        .transpose()?;
    let is_root = opt_member(o, "isRoot", json_bool)?;

    let mut columns = BTreeMap::new();
    for (cname, cjson) in columns_json {
        let col = parse_column(cname, cjson).map_err(|e| e.within(&format!("column {cname}")))?;
        columns.insert(cname.clone(), col);
    }

    let mut indexes = Vec::new();
    if let Some(ij) = o.get("indexes") {
        let list = ij
            .as_array()
            .ok_or_else(|| syntax(format!("\"indexes\" must be an array, got {ij}")))?;
        for index in list {
            let cols = index
                .as_array()
                .ok_or_else(|| syntax(format!("index must be an array of columns, got {index}")))?;
            if cols.is_empty() {
                return Err(syntax("index must have at least one column"));
            }
            let mut names = Vec::with_capacity(cols.len());
            for c in cols {
                let cname = c
                    .as_str()
                    .ok_or_else(|| syntax(format!("index column must be a string, got {c}")))?;
                match columns.get(cname) {
                    Some(ColumnSchema {
                        ephemeral: true, ..
                    }) => {
                        return Err(syntax(format!(
                            "ephemeral columns (such as {cname}) may not be indexed"
                        )))
                    }
                    Some(_) => {}
                    None if cname == "_uuid" || cname == "_version" => {}
                    None => return Err(syntax(format!("index refers to unknown column {cname}"))),
                }
                if names.iter().any(|n| n == cname) {
                    return Err(syntax(format!("index lists column {cname} twice")));
                }
                names.push(cname.to_string());
            }
            indexes.push(names);
        }
    }

    let table = TableSchema {
        name: name.to_string(),
        columns,
        max_rows,
        is_root: is_root.unwrap_or(false),
        indexes,
    };
    Ok((table, is_root))
}

/// Parse `<column-schema>`.
fn parse_column(name: &str, v: &Value) -> Result<ColumnSchema, SchemaError> {
    if name.starts_with('_') {
        return Err(syntax("names beginning with \"_\" are reserved"));
    }
    if !is_id(name) {
        return Err(syntax("name must be a valid id"));
    }
    let o = v
        .as_object()
        .ok_or_else(|| syntax(format!("column schema must be an object, got {v}")))?;
    let ty = match o.get("type") {
        Some(t) => ColumnType::from_json(t)?,
        None => return Err(syntax("missing required member \"type\"")),
    };
    let ephemeral = opt_member(o, "ephemeral", json_bool)?.unwrap_or(false);
    let mutable = opt_member(o, "mutable", json_bool)?.unwrap_or(true);
    Ok(ColumnSchema {
        name: name.to_string(),
        ty,
        ephemeral,
        mutable,
    })
}

#[cfg(test)]
mod tests;
