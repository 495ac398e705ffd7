//! Schema parser tests: every rule of spec ovsdb-protocol.md §3, the real schema files, and
//! malformed input giving errors (never panics).

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use serde_json::{json, Value};

use super::*;
use crate::ovsdb::datum::Datum;

/// `ovsdb/_server.ovsschema` of Open vSwitch (schema 1.2.0, spec §7).
const SERVER_SCHEMA: &str = r#"{"name": "_Server",
 "version": "1.2.0",
 "cksum": "3009684573 744",
 "tables": {
   "Database": {
     "columns": {
       "name": {"type": "string"},
       "model": {
         "type": {"key": {"type": "string",
                          "enum": ["set", ["standalone", "clustered", "relay"]]}}},
       "connected": {"type": "boolean"},
       "leader": {"type": "boolean"},
       "schema": {
         "type": {"key": {"type": "string"}, "min": 0, "max": 1}},
       "cid": {
         "type": {"key": {"type": "uuid"}, "min": 0, "max": 1}},
       "sid": {
         "type": {"key": {"type": "uuid"}, "min": 0, "max": 1}},
       "index": {
         "type": {"key": {"type": "integer"}, "min": 0, "max": 1}}},
     "isRoot": true}}}"#;

fn ct(v: Value) -> Result<ColumnType, SchemaError> {
    ColumnType::from_json(&v)
}

fn syntax_msg(r: Result<impl std::fmt::Debug, SchemaError>) -> String {
    match r {
        Err(SchemaError::Syntax(m)) => m,
        other => panic!("expected a syntax error, got {other:?}"),
    }
}

/// A one-table schema with the given columns (and table members).
fn db(tables: Value) -> Result<DatabaseSchema, SchemaError> {
    DatabaseSchema::from_json(&json!({"name": "T", "version": "1.0.0", "tables": tables}))
}

// ---- <type> and <base-type> ----------------------------------------------------------------

#[test]
fn type_defaults_min_1_max_1() {
    assert_eq!(
        ct(json!("integer")),
        Ok(ColumnType::scalar(AtomicType::Integer))
    );
    assert_eq!(
        ct(json!({"key": "string"})),
        Ok(ColumnType::scalar(AtomicType::String))
    );
    assert_eq!(
        ct(json!({"key": {"type": "uuid"}})),
        Ok(ColumnType::scalar(AtomicType::Uuid))
    );
    let opt = ct(json!({"key": "real", "min": 0})).unwrap();
    assert!(opt.is_optional_scalar());
    assert_eq!(opt, ColumnType::optional(AtomicType::Real));
}

#[test]
fn type_max_unlimited_and_maps() {
    assert_eq!(
        ct(json!({"key": "uuid", "min": 0, "max": "unlimited"})),
        Ok(ColumnType::set(AtomicType::Uuid))
    );
    let m = ct(json!({"key": "string", "value": "string", "min": 0, "max": "unlimited"})).unwrap();
    assert!(m.is_map());
    assert_eq!(m, ColumnType::map(AtomicType::String, AtomicType::String));
    let four = ct(json!({"key": "integer", "min": 1, "max": 4})).unwrap();
    assert_eq!((four.min, four.max), (1, 4));
    assert!(!four.is_scalar());
    // An integral real written as 4.0 is an integer (§1.4).
    assert_eq!(ct(json!({"key": "integer", "max": 4.0})).unwrap().max, 4);
}

#[test]
fn type_bad_counts() {
    for (v, needle) in [
        (
            json!({"key": "string", "min": 2, "max": 5}),
            "min must be 0 or 1",
        ),
        (json!({"key": "string", "max": 0}), "max must be at least 1"),
        (json!({"key": "string", "min": -1}), "bad min value"),
        (json!({"key": "string", "min": "0"}), "bad min value"),
        (json!({"key": "string", "max": "lots"}), "bad max value"),
        (json!({"key": "string", "max": 1.5}), "bad max value"),
        (
            json!({"key": "string", "min": 1, "max": 0}),
            "max must be at least 1",
        ),
    ] {
        let m = syntax_msg(ct(v.clone()));
        assert!(m.contains(needle), "{v}: {m}");
    }
}

#[test]
fn type_unknown_atomic_types_and_shapes() {
    assert_eq!(syntax_msg(ct(json!("int"))), "unknown atomic type \"int\"");
    assert_eq!(
        syntax_msg(ct(json!({"key": "void"}))),
        "key: unknown atomic type \"void\""
    );
    assert_eq!(
        syntax_msg(ct(json!({"key": "string", "value": {"type": "map"}}))),
        "value: unknown atomic type \"map\""
    );
    assert!(syntax_msg(ct(json!({"value": "string"}))).contains("\"key\""));
    assert!(syntax_msg(ct(json!({"key": {"enum": ["set", []]}}))).contains("\"type\""));
    assert!(syntax_msg(ct(json!({"key": {"type": 5}}))).contains("\"type\" must be a string"));
    for v in [json!(null), json!(5), json!(["integer"]), json!(true)] {
        assert!(
            syntax_msg(ct(v.clone())).contains("ovsdb type expected"),
            "{v}"
        );
    }
    assert!(syntax_msg(ct(json!({"key": 5}))).starts_with("key: base type expected"));
}

#[test]
fn base_type_constraints() {
    let t = ct(json!({"key": {"type": "integer", "minInteger": 1, "maxInteger": 32767}})).unwrap();
    assert_eq!(
        (t.key.min_integer, t.key.max_integer),
        (Some(1), Some(32767))
    );
    let t = ct(json!({"key": {"type": "real", "minReal": -1.5, "maxReal": 2}})).unwrap();
    assert_eq!((t.key.min_real, t.key.max_real), (Some(-1.5), Some(2.0)));
    let t = ct(json!({"key": {"type": "string", "minLength": 1, "maxLength": 63}})).unwrap();
    assert_eq!((t.key.min_length, t.key.max_length), (Some(1), Some(63)));
    for (v, needle) in [
        (
            json!({"type": "integer", "minInteger": 5, "maxInteger": 4}),
            "minInteger exceeds maxInteger",
        ),
        (
            json!({"type": "real", "minReal": 5, "maxReal": 4.5}),
            "minReal exceeds maxReal",
        ),
        (
            json!({"type": "string", "minLength": 5, "maxLength": 4}),
            "minLength exceeds maxLength",
        ),
        (
            json!({"type": "string", "minLength": -1}),
            "bad value -1 for \"minLength\"",
        ),
        (
            json!({"type": "integer", "minInteger": 1.5}),
            "\"minInteger\"",
        ),
        (json!({"type": "real", "maxReal": "x"}), "\"maxReal\""),
    ] {
        let m = syntax_msg(ct(json!({ "key": v.clone() })));
        assert!(m.contains(needle), "{v}: {m}");
    }
    // Constraints that do not apply to the atomic type are ignored.
    assert_eq!(
        ct(json!({"key": {"type": "boolean", "minInteger": 3}})),
        Ok(ColumnType::scalar(AtomicType::Boolean))
    );
}

#[test]
fn base_type_refs() {
    let t = ct(json!({"key": {"type": "uuid", "refTable": "Encap"}})).unwrap();
    assert_eq!(t.key.ref_table.as_deref(), Some("Encap"));
    assert_eq!(
        t.key.ref_type,
        RefType::Strong,
        "refType defaults to strong"
    );
    assert!(t.key.is_ref(RefType::Strong) && !t.key.is_ref(RefType::Weak));
    let t = ct(json!({"key": {"type": "uuid", "refTable": "Encap", "refType": "weak"}})).unwrap();
    assert_eq!(t.key.ref_type, RefType::Weak);
    let m = syntax_msg(ct(
        json!({"key": {"type": "uuid", "refTable": "E", "refType": "soft"}}),
    ));
    assert_eq!(
        m,
        "key: refType must be \"strong\" or \"weak\" (not \"soft\")"
    );
    assert!(
        syntax_msg(ct(json!({"key": {"type": "uuid", "refTable": "1x"}}))).contains("refTable")
    );
    assert!(syntax_msg(ct(json!({"key": {"type": "uuid", "refTable": 3}}))).contains("refTable"));
}

#[test]
fn base_type_enums() {
    let t = ct(json!({"key": {"type": "string", "enum": ["set", ["b", "a"]]}})).unwrap();
    let e = t.key.enum_values.unwrap();
    assert_eq!(
        e.iter().filter_map(Atom::as_str).collect::<Vec<_>>(),
        vec!["a", "b"]
    );
    // A one-element enum may be a bare atom.
    let t = ct(json!({"key": {"type": "integer", "enum": 7}})).unwrap();
    assert_eq!(t.key.enum_values, Some([Atom::Integer(7)].into()));
    // Enum of the value type of a map.
    let t = ct(
        json!({"key": "string", "value": {"type": "boolean", "enum": ["set", [true]]},
                      "max": "unlimited", "min": 0}),
    )
    .unwrap();
    assert_eq!(
        t.value.unwrap().enum_values,
        Some([Atom::Boolean(true)].into())
    );
    for (v, needle) in [
        (
            json!({"type": "string", "enum": ["set", []]}),
            "set must have 1 to",
        ),
        (
            json!({"type": "string", "enum": ["set", ["a", "a"]]}),
            "duplicate",
        ),
        (
            json!({"type": "string", "enum": ["set", [1]]}),
            "expected string",
        ),
        (
            json!({"type": "integer", "enum": ["map", [[1, 2]]]}),
            "enum:",
        ),
    ] {
        let m = syntax_msg(ct(json!({ "key": v.clone() })));
        assert!(m.contains(needle), "{v}: {m}");
    }
}

#[test]
fn column_type_to_json_round_trips() {
    for v in [
        json!("string"),
        json!({"key": "string", "min": 0}),
        json!({"key": {"type": "uuid", "refTable": "X", "refType": "weak"}, "min": 0, "max": 3}),
        json!({"key": {"type": "string", "enum": ["set", ["a", "b"]]},
               "value": {"type": "integer", "minInteger": 0, "maxInteger": 9},
               "max": "unlimited"}),
        json!({"key": {"type": "real", "minReal": 0.5}}),
        json!({"key": {"type": "string", "minLength": 1, "maxLength": 2}}),
    ] {
        let t = ct(v.clone()).unwrap();
        assert_eq!(ct(t.to_json()), Ok(t.clone()), "{v}");
    }
    assert_eq!(
        ColumnType::scalar(AtomicType::Real).to_json(),
        json!("real")
    );
}

// ---- <database-schema> and <table-schema> ----------------------------------------------------

#[test]
fn server_schema() {
    let s = DatabaseSchema::from_str_json(SERVER_SCHEMA).unwrap();
    assert_eq!(s.name, "_Server");
    assert_eq!(s.version, "1.2.0");
    assert_eq!(s.cksum.as_deref(), Some("3009684573 744"));
    let t = s.table("Database").unwrap();
    assert!(t.is_root);
    assert_eq!(t.columns.len(), 8);
    assert!(s.column_type("Database", "name").unwrap().is_scalar());
    assert!(s
        .column_type("Database", "schema")
        .unwrap()
        .is_optional_scalar());
    assert_eq!(
        s.column_type("Database", "cid").unwrap(),
        &ColumnType::optional(AtomicType::Uuid)
    );
    let model = &s.column_type("Database", "model").unwrap().key;
    assert_eq!(model.enum_values.as_ref().map(|e| e.len()), Some(3));
    let c = t.column("connected").unwrap();
    assert!(c.mutable && !c.ephemeral);
    assert!(
        !s.has_column("Database", "_uuid"),
        "implicit columns are not listed"
    );
    assert!(!s.has_table("Nope"));
}

#[test]
fn table_members() {
    let s = db(json!({
        "A": {"columns": {"x": {"type": "integer", "ephemeral": true, "mutable": false},
                          "y": {"type": "string"}},
              "maxRows": 1, "isRoot": true, "indexes": [["y"], ["y", "_uuid"]]}
    }))
    .unwrap();
    let t = s.table("A").unwrap();
    assert_eq!(t.name, "A");
    assert_eq!(t.max_rows, Some(1));
    assert_eq!(
        t.indexes,
        vec![vec!["y".to_string()], vec!["y".into(), "_uuid".into()]]
    );
    let x = t.column("x").unwrap();
    assert_eq!(
        (x.name.as_str(), x.ephemeral, x.mutable),
        ("x", true, false)
    );
    let y = t.column("y").unwrap();
    assert_eq!((y.ephemeral, y.mutable), (false, true));
    assert_eq!(
        db(json!({"A": {"columns": {"y": {"type": "string"}}}}))
            .unwrap()
            .tables["A"]
            .max_rows,
        None
    );
}

#[test]
fn version_and_cksum_optional() {
    let s = DatabaseSchema::from_json(&json!({"name": "N", "tables": {}})).unwrap();
    assert_eq!((s.version.as_str(), s.cksum), ("", None));
    for bad in ["1.2", "1.2.3.4", "a.b.c", "1..2", ""] {
        let m = syntax_msg(DatabaseSchema::from_json(
            &json!({"name": "N", "version": bad, "tables": {}}),
        ));
        assert!(m.contains("not in format x.y.z"), "{bad}: {m}");
    }
    assert!(syntax_msg(DatabaseSchema::from_json(
        &json!({"name": "N", "version": 1, "tables": {}})
    ))
    .contains("x.y.z"));
    assert!(syntax_msg(DatabaseSchema::from_json(
        &json!({"name": "N", "cksum": 1, "tables": {}})
    ))
    .contains("cksum"));
}

#[test]
fn is_root_compatibility_rule() {
    // No table sets isRoot: every table is root.
    let s = db(json!({
        "A": {"columns": {"r": {"type": {"key": {"type": "uuid", "refTable": "B"}}}}},
        "B": {"columns": {"x": {"type": "integer"}}, "isRoot": false}
    }))
    .unwrap();
    assert!(s.tables.values().all(|t| t.is_root));
    // One table sets it: only that one is root.
    let s = db(json!({
        "A": {"columns": {"r": {"type": {"key": {"type": "uuid", "refTable": "B"}}}},
              "isRoot": true},
        "B": {"columns": {"x": {"type": "integer"}}}
    }))
    .unwrap();
    assert!(s.tables["A"].is_root);
    assert!(!s.tables["B"].is_root);
}

#[test]
fn reference_adjustments() {
    let s = db(json!({
        "A": {"columns": {
                "weak": {"type": {"key": {"type": "uuid", "refTable": "B", "refType": "weak"},
                                  "min": 0, "max": "unlimited"},
                         "mutable": false},
                "strong": {"type": {"key": "string",
                                    "value": {"type": "uuid", "refTable": "B"},
                                    "min": 0, "max": "unlimited"},
                           "ephemeral": true},
                "to_root": {"type": {"key": {"type": "uuid", "refTable": "A"}, "min": 0},
                            "ephemeral": true}},
              "isRoot": true},
        "B": {"columns": {"x": {"type": "integer"}}}
    }))
    .unwrap();
    let a = &s.tables["A"];
    assert!(
        a.columns["weak"].mutable,
        "weak references are forced mutable"
    );
    assert!(
        !a.columns["strong"].ephemeral,
        "strong refs to non-root tables are persistent"
    );
    assert!(
        a.columns["to_root"].ephemeral,
        "strong refs to root tables may be ephemeral"
    );
}

#[test]
fn errors_name_table_and_column() {
    let cases = [
        (
            json!({"A": {"columns": {"c": {"type": "int"}}}}),
            "database T: table A: column c: unknown atomic type \"int\"",
        ),
        (
            json!({"A": {"columns": {"c": {"type": {"key": "string", "max": 0}}}}}),
            "database T: table A: column c: max must be at least 1",
        ),
        (
            json!({"A": {"columns": {"c": {}}}}),
            "database T: table A: column c: missing required member \"type\"",
        ),
        (
            json!({"A": {"columns": {"c": {"type": "string", "mutable": "no"}}}}),
            "database T: table A: column c: bad value \"no\" for \"mutable\"",
        ),
        (
            json!({"A": {"columns": {"c": {"type": "string", "ephemeral": 1}}}}),
            "database T: table A: column c: bad value 1 for \"ephemeral\"",
        ),
        (
            json!({"A": {"columns": {"c": 5}}}),
            "database T: table A: column c: column schema must be an object, got 5",
        ),
        (
            json!({"A": {"columns": {"_c": {"type": "string"}}}}),
            "database T: table A: column _c: names beginning with \"_\" are reserved",
        ),
        (
            json!({"A": {"columns": {"a-b": {"type": "string"}}}}),
            "database T: table A: column a-b: name must be a valid id",
        ),
        (
            json!({"_A": {"columns": {"c": {"type": "string"}}}}),
            "database T: table _A: names beginning with \"_\" are reserved",
        ),
        (
            json!({"9A": {"columns": {"c": {"type": "string"}}}}),
            "database T: table 9A: name must be a valid id",
        ),
        (
            json!({"A": {"columns": {}}}),
            "database T: table A: table must have at least one column",
        ),
        (
            json!({"A": {}}),
            "database T: table A: missing required member \"columns\"",
        ),
        (
            json!({"A": []}),
            "database T: table A: table schema must be an object, got []",
        ),
        (
            json!({"A": {"columns": {"c": {"type": "string"}}, "maxRows": 0}}),
            "database T: table A: maxRows must be at least 1",
        ),
        (
            json!({"A": {"columns": {"c": {"type": "string"}}, "maxRows": "1"}}),
            "database T: table A: bad value \"1\" for \"maxRows\"",
        ),
        (
            json!({"A": {"columns": {"c": {"type": "string"}}, "isRoot": 1}}),
            "database T: table A: bad value 1 for \"isRoot\"",
        ),
        (
            json!({"A": {"columns": {"c": {"type": "string"}}, "indexes": [["d"]]}}),
            "database T: table A: index refers to unknown column d",
        ),
        (
            json!({"A": {"columns": {"c": {"type": "string"}}, "indexes": [[]]}}),
            "database T: table A: index must have at least one column",
        ),
        (
            json!({"A": {"columns": {"c": {"type": "string"}}, "indexes": [["c", "c"]]}}),
            "database T: table A: index lists column c twice",
        ),
        (
            json!({"A": {"columns": {"c": {"type": "string"}}, "indexes": ["c"]}}),
            "database T: table A: index must be an array of columns, got \"c\"",
        ),
        (
            json!({"A": {"columns": {"c": {"type": "string"}}, "indexes": [[1]]}}),
            "database T: table A: index column must be a string, got 1",
        ),
        (
            json!({"A": {"columns": {"c": {"type": "string"}}, "indexes": {}}}),
            "database T: table A: \"indexes\" must be an array, got {}",
        ),
        (
            json!({"A": {"columns": {"c": {"type": "string", "ephemeral": true}},
                         "indexes": [["c"]]}}),
            "database T: table A: ephemeral columns (such as c) may not be indexed",
        ),
        (
            json!({"A": {"columns": {"r": {"type": {"key": {"type": "uuid", "refTable": "Z"}}}}}}),
            "database T: table A column r key refers to undefined table Z",
        ),
        (
            json!({"A": {"columns": {"m": {"type": {"key": "string",
                "value": {"type": "uuid", "refTable": "Z"}, "max": "unlimited"}}}}}),
            "database T: table A column m value refers to undefined table Z",
        ),
    ];
    for (tables, want) in cases {
        assert_eq!(syntax_msg(db(tables.clone())), want, "{tables}");
    }
}

#[test]
fn database_level_errors() {
    let cases = [
        (json!([]), "database schema must be an object, got []"),
        (
            json!({"tables": {}}),
            "database schema is missing required member \"name\"",
        ),
        (
            json!({"name": "a b", "tables": {}}),
            "database name \"a b\" is not a valid id",
        ),
        (
            json!({"name": 5, "tables": {}}),
            "database name 5 is not a valid id",
        ),
        (
            json!({"name": "N"}),
            "database N: missing required member \"tables\"",
        ),
        (
            json!({"name": "N", "tables": []}),
            "database N: \"tables\" must be an object, got []",
        ),
    ];
    for (v, want) in cases {
        assert_eq!(syntax_msg(DatabaseSchema::from_json(&v)), want, "{v}");
    }
    assert!(matches!(
        DatabaseSchema::from_str_json("{\"name\": "),
        Err(SchemaError::Syntax(_))
    ));
    assert!(matches!(
        DatabaseSchema::from_file(Path::new("/nonexistent/x.ovsschema")),
        Err(SchemaError::Io { .. })
    ));
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.ovsschema");
    std::fs::write(&p, "not json").unwrap();
    assert!(matches!(
        DatabaseSchema::from_file(&p),
        Err(SchemaError::Syntax(_))
    ));
}

// ---- the real schema files -------------------------------------------------------------------

/// Every schema file we know of on this machine; `OVSDB_TEST_SCHEMA_DIRS` (colon-separated) adds
/// more directories.
fn schema_files() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = [
        "/work/shared/schemas",
        "/usr/share/ovn",
        "/usr/share/openvswitch",
    ]
    .iter()
    .map(PathBuf::from)
    .collect();
    if let Ok(extra) = std::env::var("OVSDB_TEST_SCHEMA_DIRS") {
        dirs.extend(
            extra
                .split(':')
                .filter(|s| !s.is_empty())
                .map(PathBuf::from),
        );
    }
    let mut files = Vec::new();
    for d in dirs {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "ovsschema") {
                files.push(p);
            }
        }
    }
    files.sort();
    files
}

fn check_invariants(s: &DatabaseSchema) {
    assert!(!s.tables.is_empty(), "{}", s.name);
    for t in s.tables.values() {
        for c in t.columns.values() {
            // Every column type survives encode/decode, and its default value is valid.
            assert_eq!(
                ColumnType::from_json(&c.ty.to_json()).as_ref(),
                Ok(&c.ty),
                "{}",
                c.name
            );
            let d = Datum::default_for(&c.ty);
            assert_eq!(Datum::from_json(&d.to_json(), &c.ty), Ok(d));
            for base in [Some(&c.ty.key), c.ty.value.as_ref()].into_iter().flatten() {
                if let Some(rt) = &base.ref_table {
                    assert!(s.has_table(rt), "{}.{} -> {rt}", t.name, c.name);
                    if base.ref_type == RefType::Weak {
                        assert!(c.mutable);
                    }
                }
            }
        }
        for idx in &t.indexes {
            for c in idx {
                assert!(t.columns.contains_key(c) || c == "_uuid" || c == "_version");
            }
        }
    }
}

#[test]
fn parses_every_schema_file() {
    let files = schema_files();
    assert!(
        files.len() >= 8,
        "expected the OVN schemas, found {files:?}"
    );
    let mut names = Vec::new();
    for f in &files {
        let s = DatabaseSchema::from_file(f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        check_invariants(&s);
        // Parsing is deterministic and independent of the text form.
        let text = std::fs::read_to_string(f).unwrap();
        assert_eq!(DatabaseSchema::from_str_json(&text).as_ref(), Ok(&s));
        names.push(s.name.clone());
    }
    for want in [
        "OVN_Northbound",
        "OVN_Southbound",
        "OVN_IC_Northbound",
        "OVN_IC_Southbound",
    ] {
        assert!(
            names.iter().any(|n| n == want),
            "{want} missing from {names:?}"
        );
    }
}

fn ic_sb_files() -> Vec<(PathBuf, DatabaseSchema)> {
    schema_files()
        .into_iter()
        .filter_map(|p| {
            let s = DatabaseSchema::from_file(&p).ok()?;
            (s.name == "OVN_IC_Southbound").then_some((p, s))
        })
        .collect()
}

#[test]
fn ovn_ic_sb_known_tables() {
    let files = ic_sb_files();
    assert!(
        files.len() >= 2,
        "upstream and Debian IC-SB schemas: {files:?}"
    );
    for (path, s) in files {
        let p = path.display();
        // Port_Binding.tunnel_key: integer scalar 1..32767.
        let tk = s.column_type("Port_Binding", "tunnel_key").unwrap();
        assert!(tk.is_scalar(), "{p}");
        assert_eq!(tk.key.atomic, AtomicType::Integer);
        assert_eq!(
            (tk.key.min_integer, tk.key.max_integer),
            (Some(1), Some(32767)),
            "{p}"
        );
        // Port_Binding.encap: optional weak reference to Encap.
        let encap = s.table("Port_Binding").unwrap().column("encap").unwrap();
        assert!(encap.ty.is_optional_scalar());
        assert_eq!(encap.ty.key.ref_table.as_deref(), Some("Encap"));
        assert_eq!(encap.ty.key.ref_type, RefType::Weak);
        assert!(encap.mutable);
        assert_eq!(
            s.column_type("Port_Binding", "external_ids"),
            Some(&ColumnType::map(AtomicType::String, AtomicType::String))
        );
        let ts = s.column_type("Port_Binding", "availability_zone").unwrap();
        assert_eq!(ts.key.ref_table.as_deref(), Some("Availability_Zone"));
        assert_eq!(ts.key.ref_type, RefType::Strong);
        // Roots: IC_SB_Global is root with maxRows 1; Encap is not root.
        let g = s.table("IC_SB_Global").unwrap();
        assert!(g.is_root);
        assert_eq!(g.max_rows, Some(1));
        assert!(!s.table("Encap").unwrap().is_root, "{p}");
        assert_eq!(s.table("Encap").unwrap().indexes, vec![vec!["type", "ip"]]);
        // Encap.type is an enum containing geneve and vxlan.
        let e = s
            .column_type("Encap", "type")
            .unwrap()
            .key
            .enum_values
            .clone()
            .unwrap();
        assert!(e.contains(&Atom::from("geneve")) && e.contains(&Atom::from("vxlan")));
        // Datapath_Binding indexes: upstream (>= 2.x) adds nb_ic_uuid to the tunnel key index.
        let dp = s.table("Datapath_Binding").unwrap();
        let major: u32 = s.version.split('.').next().unwrap().parse().unwrap();
        if major >= 2 {
            assert_eq!(dp.indexes, vec![vec!["nb_ic_uuid", "tunnel_key"]], "{p}");
            assert!(s
                .column_type("Datapath_Binding", "nb_ic_uuid")
                .unwrap()
                .is_optional_scalar());
        } else {
            assert_eq!(dp.indexes, vec![vec!["tunnel_key"]], "{p}");
        }
        assert_eq!(s.table("Port_Binding").unwrap().indexes.len(), 2);
    }
}

#[test]
fn ovn_nb_and_sb_known_columns() {
    for p in schema_files() {
        let s = DatabaseSchema::from_file(&p).unwrap();
        match s.name.as_str() {
            "OVN_Northbound" => {
                let nb = s.table("NB_Global").unwrap();
                assert!(nb.is_root);
                assert!(nb.column("options").unwrap().ty.is_map());
                let lsp = s.column_type("Logical_Switch", "ports").unwrap();
                assert_eq!(lsp.key.ref_table.as_deref(), Some("Logical_Switch_Port"));
                assert_eq!((lsp.min, lsp.max), (0, u64::MAX));
                assert!(!s.table("Logical_Switch_Port").unwrap().is_root);
            }
            "OVN_Southbound" => {
                let pb = s.column_type("Port_Binding", "tunnel_key").unwrap();
                assert_eq!(pb.key.atomic, AtomicType::Integer);
                let chassis = s.column_type("Port_Binding", "chassis").unwrap();
                assert_eq!(chassis.key.ref_type, RefType::Weak);
            }
            "OVN_IC_Northbound" => {
                assert!(s.table("Transit_Switch").unwrap().is_root);
            }
            "Open_vSwitch" => {
                assert!(s.table("Open_vSwitch").unwrap().is_root);
                assert!(s
                    .column_type("Bridge", "ports")
                    .unwrap()
                    .key
                    .ref_table
                    .is_some());
            }
            _ => {}
        }
    }
}

// ---- garbage in, errors out --------------------------------------------------------------------

fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-3i64..5).prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        prop_oneof![
            Just("integer"),
            Just("real"),
            Just("boolean"),
            Just("string"),
            Just("uuid"),
            Just("unlimited"),
            Just("set"),
            Just("strong"),
            Just("weak"),
            Just("T"),
            Just("1.0.0"),
        ]
        .prop_map(Value::from),
    ];
    let keys = prop_oneof![
        Just("name"),
        Just("version"),
        Just("tables"),
        Just("columns"),
        Just("type"),
        Just("key"),
        Just("value"),
        Just("min"),
        Just("max"),
        Just("enum"),
        Just("refTable"),
        Just("refType"),
        Just("indexes"),
        Just("isRoot"),
        Just("maxRows"),
        Just("T"),
        Just("c"),
        Just("minInteger"),
        Just("maxInteger"),
        Just("ephemeral"),
        Just("mutable"),
    ]
    .prop_map(String::from);
    leaf.prop_recursive(6, 64, 5, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(keys.clone(), inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn garbage_schemas_never_panic(v in arbitrary_json()) {
        let _ = ColumnType::from_json(&v);
        let _ = BaseType::from_json(&v);
        let _ = DatabaseSchema::from_json(&v);
        let _ = DatabaseSchema::from_json(&json!({"name": "T", "tables": {"T": v.clone()}}));
        let _ = DatabaseSchema::from_json(
            &json!({"name": "T", "tables": {"T": {"columns": {"c": v}}}}),
        );
    }
}
