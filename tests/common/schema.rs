//! Where the schemas are, and what they contain.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde_json::Value;

/// The directory holding the OVN schemas: `$OVN_SCHEMA_DIR` if set and non-empty, else
/// `/usr/share/ovn` (Debian's). `scripts/test.sh` points the variable at the project's newer
/// upstream schemas when they are available.
pub fn schema_dir() -> PathBuf {
    match std::env::var_os("OVN_SCHEMA_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => PathBuf::from("/usr/share/ovn"),
    }
}

/// Path of one OVN schema by short name: `"ovn-nb"`, `"ovn-sb"`, `"ovn-ic-nb"`, `"ovn-ic-sb"`
/// (a trailing `.ovsschema` is accepted too). The file may not exist; [`Schema::ovn`] checks.
pub fn schema_path(name: &str) -> PathBuf {
    let file = if name.ends_with(".ovsschema") {
        name.to_string()
    } else {
        format!("{name}.ovsschema")
    };
    schema_dir().join(file)
}

/// Our own small schema for generic OVSDB client tests (database name [`TEST_DB`]):
///
/// * `Root` (root, index on `name`): `name` string, `count` integer, `ratio` real, `enabled`
///   boolean, `id` uuid, `small` integer 0..=100, `color` enum of strings, `opt` optional string,
///   `tags` set of strings, `ints` set of 0..=8 integers, `labels` map string→string,
///   `weights` map string→integer, `child` optional strong ref to `Child`, `children` set of
///   strong refs, `weak_child` optional weak ref, `weak_children` set of weak refs;
/// * `Child` (not root, so unreferenced rows are garbage-collected; index on `name`): `name`
///   string, `value` integer;
/// * `Singleton` (root, `maxRows: 1`): `value` string, `config` map string→string.
pub const TEST_SCHEMA: &str = include_str!("../data/test.ovsschema");

/// Name of the database described by [`TEST_SCHEMA`].
pub const TEST_DB: &str = "Test";

/// Path of [`TEST_SCHEMA`] on disk (for `ovsdb-tool create`).
pub fn test_schema_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/test.ovsschema")
}

/// A parsed `.ovsschema` file.
#[derive(Debug, Clone)]
pub struct Schema {
    pub path: PathBuf,
    pub json: Value,
}

impl Schema {
    /// Loads and minimally validates (has `name` and `tables`) a schema file.
    pub fn load(path: impl AsRef<Path>) -> Result<Schema> {
        let path = path.as_ref().to_path_buf();
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading schema {}", path.display()))?;
        let json: Value = serde_json::from_str(&text)
            .with_context(|| format!("parsing schema {}", path.display()))?;
        if !json.get("name").is_some_and(Value::is_string)
            || !json.get("tables").is_some_and(Value::is_object)
        {
            bail!(
                "{}: not an OVSDB schema (no name or tables)",
                path.display()
            );
        }
        Ok(Schema { path, json })
    }

    /// Loads an OVN schema by short name, see [`schema_path`].
    pub fn ovn(name: &str) -> Result<Schema> {
        Schema::load(schema_path(name))
    }

    /// The database name, e.g. `OVN_IC_Southbound`.
    pub fn name(&self) -> &str {
        self.json["name"].as_str().unwrap_or_default()
    }

    /// The schema version, e.g. `1.1.1` (empty if absent).
    pub fn version(&self) -> &str {
        self.json["version"].as_str().unwrap_or_default()
    }

    pub fn has_table(&self, table: &str) -> bool {
        self.json["tables"].get(table).is_some()
    }

    pub fn has_column(&self, table: &str, column: &str) -> bool {
        self.json["tables"]
            .get(table)
            .and_then(|t| t["columns"].get(column))
            .is_some()
    }

    /// `None` when the schema has the table (and the column, if given), else the reason to skip:
    /// `"schema OVN_IC_Southbound 1.1.1 (/usr/share/ovn/ovn-ic-sb.ovsschema) lacks Route.origin"`.
    pub fn lacks(&self, table: &str, column: Option<&str>) -> Option<String> {
        let present = match column {
            None => self.has_table(table),
            Some(c) => self.has_column(table, c),
        };
        (!present).then(|| {
            format!(
                "schema {} {} ({}) lacks {table}{}",
                self.name(),
                self.version(),
                self.path.display(),
                column.map(|c| format!(".{c}")).unwrap_or_default()
            )
        })
    }
}

/// Helper for [`skip_unless_schema!`]: the reason to skip, or `None`. A schema that cannot be
/// loaded is a reason too (the message says why).
pub fn schema_lacks(schema: &str, table: &str, column: Option<&str>) -> Option<String> {
    match Schema::ovn(schema) {
        Ok(s) => s.lacks(table, column),
        Err(e) => Some(format!("{e:#}")),
    }
}

/// Returns from the current test (which must return `()`) after printing
/// `skipping: schema ... lacks TABLE[.COLUMN]` when the OVN schema in use lacks it:
///
/// ```ignore
/// common::skip_unless_schema!("ovn-ic-sb", "Service_Monitor");
/// common::skip_unless_schema!("ovn-ic-nb", "Transit_Switch", "other_config");
/// ```
///
/// Tests returning `Result` use [`schema_lacks`] directly.
macro_rules! skip_unless_schema {
    ($schema:expr, $table:expr) => {
        if let Some(reason) = $crate::common::schema_lacks($schema, $table, None) {
            eprintln!("skipping: {reason}");
            return;
        }
    };
    ($schema:expr, $table:expr, $column:expr) => {
        if let Some(reason) = $crate::common::schema_lacks($schema, $table, Some($column)) {
            eprintln!("skipping: {reason}");
            return;
        }
    };
}
pub(crate) use skip_unless_schema;
