//! Tests for atoms and datums: the JSON rules of spec ovsdb-protocol.md §1.4, §4.1 and §6.2, plus
//! property tests (codec round trips, diff application, ordering/hash consistency, no panics).

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};

use proptest::prelude::*;
use serde_json::{json, Value};

use super::*;
use crate::ovsdb::schema::ColumnType;

const U1: &str = "550e8400-e29b-41d4-a716-446655440000";
const U2: &str = "650e8400-e29b-41d4-a716-446655440000";

fn uuid(s: &str) -> Uuid {
    s.parse().unwrap()
}

fn hash_of<T: Hash>(t: &T) -> u64 {
    let mut h = DefaultHasher::new();
    t.hash(&mut h);
    h.finish()
}

fn ty_with(min: u64, max: u64, key: AtomicType, value: Option<AtomicType>) -> ColumnType {
    let mut t = match value {
        Some(v) => ColumnType::map(key, v),
        None => ColumnType::set(key),
    };
    t.min = min;
    t.max = max;
    t
}

// ---- atoms -------------------------------------------------------------------------------

#[test]
fn atom_integer_accepts_exactly_integral_numbers() {
    let t = AtomicType::Integer;
    assert_eq!(Atom::from_json(&json!(5), t), Ok(Atom::Integer(5)));
    assert_eq!(Atom::from_json(&json!(-7), t), Ok(Atom::Integer(-7)));
    assert_eq!(Atom::from_json(&json!(1.0), t), Ok(Atom::Integer(1)));
    let e3: Value = serde_json::from_str("1e3").unwrap();
    assert_eq!(Atom::from_json(&e3, t), Ok(Atom::Integer(1000)));
    assert_eq!(
        Atom::from_json(&json!(i64::MIN), t),
        Ok(Atom::Integer(i64::MIN))
    );
    assert_eq!(
        Atom::from_json(&json!(-(2f64.powi(63))), t),
        Ok(Atom::Integer(i64::MIN))
    );
    for bad in [
        json!(1.5),
        json!(9.3e18),
        json!(u64::MAX),
        json!(1u64 << 63),
        json!("1"),
        json!(true),
        json!(null),
        json!([1]),
    ] {
        assert!(
            matches!(Atom::from_json(&bad, t), Err(DatumError::Type { .. })),
            "{bad}"
        );
    }
    assert_eq!(
        Atom::from_json(&json!("1"), t).unwrap_err().to_string(),
        "syntax error: expected integer, got string"
    );
}

#[test]
fn atom_real_accepts_integers() {
    let t = AtomicType::Real;
    assert_eq!(Atom::from_json(&json!(2), t), Ok(Atom::Real(2.0)));
    assert_eq!(Atom::from_json(&json!(2.5), t), Ok(Atom::Real(2.5)));
    assert_eq!(
        Atom::from_json(&json!(u64::MAX), t),
        Ok(Atom::Real(u64::MAX as f64))
    );
    assert!(Atom::from_json(&json!("2.5"), t).is_err());
}

#[test]
fn atom_boolean_and_string() {
    assert_eq!(
        Atom::from_json(&json!(true), AtomicType::Boolean),
        Ok(Atom::Boolean(true))
    );
    assert!(Atom::from_json(&json!(1), AtomicType::Boolean).is_err());
    assert_eq!(
        Atom::from_json(&json!("héllo"), AtomicType::String),
        Ok(Atom::from("héllo"))
    );
    assert!(Atom::from_json(&json!(["set", []]), AtomicType::String).is_err());
}

#[test]
fn atom_uuid_forms() {
    let t = AtomicType::Uuid;
    assert_eq!(
        Atom::from_json(&json!(["uuid", U1]), t),
        Ok(Atom::Uuid(uuid(U1)))
    );
    assert_eq!(
        Atom::from_json(&json!(["named-uuid", "row1"]), t),
        Ok(Atom::NamedUuid("row1".into()))
    );
    assert_eq!(
        Atom::from_json(&json!(["uuid", "nope"]), t),
        Err(DatumError::Syntax("\"nope\" is not a valid UUID".into()))
    );
    for bad in [
        json!(U1),
        json!(["uuid"]),
        json!(["uuid", U1, 1]),
        json!(["uuid", 5]),
        json!(["uid", U1]),
        json!(["set", [["uuid", U1]]]),
    ] {
        assert!(Atom::from_json(&bad, t).is_err(), "{bad}");
    }
}

#[test]
fn atom_to_json() {
    assert_eq!(Atom::Integer(-3).to_json(), json!(-3));
    assert_eq!(Atom::Real(2.5).to_json(), json!(2.5));
    assert_eq!(Atom::Boolean(false).to_json(), json!(false));
    assert_eq!(Atom::from("x").to_json(), json!("x"));
    assert_eq!(Atom::Uuid(uuid(U1)).to_json(), json!(["uuid", U1]));
    assert_eq!(
        Atom::NamedUuid("n".into()).to_json(),
        json!(["named-uuid", "n"])
    );
}

#[test]
fn atom_ordering_matches_ovsdb_server() {
    assert!(Atom::Integer(-1) < Atom::Integer(0));
    assert!(Atom::Integer(2) < Atom::Integer(10));
    assert!(Atom::Real(-0.5) < Atom::Real(0.25));
    assert!(Atom::Real(1e300) < Atom::Real(f64::INFINITY));
    assert!(Atom::Boolean(false) < Atom::Boolean(true));
    // strcmp: bytewise, so uppercase sorts first and a prefix sorts first.
    assert!(Atom::from("B") < Atom::from("a"));
    assert!(Atom::from("a") < Atom::from("ab"));
    assert!(Atom::from("z") < Atom::from("é"));
    assert!(Atom::Uuid(uuid(U1)) < Atom::Uuid(uuid(U2)));
    assert!(Atom::Uuid(Uuid(1)) < Atom::Uuid(Uuid(1 << 100)));
    // Type rank: Integer < Real < Boolean < String < Uuid < NamedUuid.
    let ranked = [
        Atom::Integer(i64::MAX),
        Atom::Real(f64::NEG_INFINITY),
        Atom::Boolean(false),
        Atom::from(""),
        Atom::Uuid(Uuid::ZERO),
        Atom::NamedUuid(String::new()),
    ];
    for w in ranked.windows(2) {
        assert!(w[0] < w[1], "{:?} < {:?}", w[0], w[1]);
        assert_ne!(w[0], w[1]);
    }
}

#[test]
fn atom_hash_consistent_with_eq() {
    assert_eq!(hash_of(&Atom::Real(1.5)), hash_of(&Atom::Real(1.5)));
    assert_eq!(
        hash_of(&Atom::from("x")),
        hash_of(&Atom::String("x".into()))
    );
    // total_cmp tells 0.0 and -0.0 apart; so must equality (and hashing then may differ).
    assert_ne!(Atom::Real(0.0), Atom::Real(-0.0));
    // Same payload, different type: not equal, and (with the rank hashed) different hashes.
    assert_ne!(Atom::from("a"), Atom::NamedUuid("a".into()));
    assert_ne!(
        hash_of(&Atom::from("a")),
        hash_of(&Atom::NamedUuid("a".into()))
    );
}

// ---- default values ----------------------------------------------------------------------

#[test]
fn default_for_types() {
    use AtomicType::*;
    assert_eq!(
        Datum::default_for(&ColumnType::scalar(Integer)),
        Datum::scalar(0)
    );
    assert_eq!(
        Datum::default_for(&ColumnType::scalar(Real)),
        Datum::scalar(Atom::Real(0.0))
    );
    assert_eq!(
        Datum::default_for(&ColumnType::scalar(Boolean)),
        Datum::scalar(false)
    );
    assert_eq!(
        Datum::default_for(&ColumnType::scalar(String)),
        Datum::scalar("")
    );
    assert_eq!(
        Datum::default_for(&ColumnType::scalar(Uuid)),
        Datum::scalar(super::Uuid::ZERO)
    );
    assert_eq!(
        Datum::default_for(&ColumnType::optional(String)),
        Datum::empty_set()
    );
    assert_eq!(
        Datum::default_for(&ColumnType::set(Uuid)),
        Datum::empty_set()
    );
    assert_eq!(
        Datum::default_for(&ColumnType::map(String, String)),
        Datum::empty_map()
    );
    assert_eq!(
        Datum::default_for(&ty_with(1, 5, String, Some(Integer))),
        Datum::map([(Atom::from(""), Atom::Integer(0))])
    );
}

// ---- datum decoding ----------------------------------------------------------------------

#[test]
fn datum_from_json_sets_and_bare_atoms() {
    use AtomicType::*;
    let scalar = ColumnType::scalar(Integer);
    assert_eq!(Datum::from_json(&json!(5), &scalar), Ok(Datum::scalar(5)));
    assert_eq!(
        Datum::from_json(&json!(["set", [5]]), &scalar),
        Ok(Datum::scalar(5))
    );
    assert_eq!(
        Datum::from_json(&json!(["set", []]), &scalar),
        Err(DatumError::Count {
            min: 1,
            max: 1,
            n: 0
        })
    );

    let opt = ColumnType::optional(String);
    assert_eq!(
        Datum::from_json(&json!(["set", []]), &opt),
        Ok(Datum::empty_set())
    );
    assert_eq!(Datum::from_json(&json!("x"), &opt), Ok(Datum::scalar("x")));
    let e = Datum::from_json(&json!(["set", ["a", "b"]]), &opt).unwrap_err();
    assert_eq!(
        e.to_string(),
        "set must have 0 to 1 members but 2 are present"
    );

    let set = ColumnType::set(Uuid);
    let d = Datum::from_json(&json!(["set", [["uuid", U2], ["uuid", U1]]]), &set).unwrap();
    assert_eq!(d, Datum::set([Atom::Uuid(uuid(U1)), Atom::Uuid(uuid(U2))]));
    assert_eq!(d.uuids().collect::<Vec<_>>(), vec![uuid(U1), uuid(U2)]);
    // A bare uuid atom is a one-element set.
    assert_eq!(
        Datum::from_json(&json!(["uuid", U1]), &set),
        Ok(Datum::scalar(uuid(U1)))
    );
    assert_eq!(
        Datum::from_json(&json!(["set", [["uuid", U1], ["uuid", U1]]]), &set),
        Err(DatumError::DuplicateSet)
    );
    assert_eq!(
        DatumError::DuplicateSet.to_string(),
        "set contains duplicate value"
    );
    // Reals are accepted for a real set; integral reals arrive as integers.
    let reals = ColumnType::set(Real);
    assert_eq!(
        Datum::from_json(&json!(["set", [2, 0.5]]), &reals),
        Ok(Datum::set([Atom::Real(0.5), Atom::Real(2.0)]))
    );
    // Malformed "set" wrappers.
    for bad in [
        json!(["set"]),
        json!(["set", 1]),
        json!(["set", [], []]),
        json!(["set", {}]),
    ] {
        assert!(Datum::from_json(&bad, &set).is_err(), "{bad}");
    }
    // Elements of the wrong type.
    assert!(Datum::from_json(&json!(["set", ["a"]]), &ColumnType::set(Integer)).is_err());
}

#[test]
fn datum_from_json_maps() {
    use AtomicType::*;
    let smap = ColumnType::map(String, String);
    let d = Datum::from_json(&json!(["map", [["b", "2"], ["a", "1"]]]), &smap).unwrap();
    assert_eq!(d, Datum::smap([("a", "1"), ("b", "2")]));
    assert_eq!(d.smap_get("a"), Some("1"));
    assert_eq!(
        d.smap_iter().collect::<Vec<_>>(),
        vec![("a", "1"), ("b", "2")]
    );
    assert_eq!(
        Datum::from_json(&json!(["map", []]), &smap),
        Ok(Datum::empty_map())
    );
    assert_eq!(
        Datum::from_json(&json!(["map", [["a", "1"], ["a", "2"]]]), &smap),
        Err(DatumError::DuplicateKey)
    );
    // Map columns must be wrapped, even for a single pair or when empty.
    for bad in [
        json!(["set", []]),
        json!("a"),
        json!(["a", "1"]),
        json!(["map", [["a"]]]),
        json!(["map", [["a", "1", "x"]]]),
        json!(["map", [{"a": "1"}]]),
        json!(["map", [["a", 1]]]),
        json!(["map", {"a": "1"}]),
    ] {
        assert!(Datum::from_json(&bad, &smap).is_err(), "{bad}");
    }
    let uuid_map = ColumnType::map(Integer, Uuid);
    assert_eq!(
        Datum::from_json(&json!(["map", [[1, ["uuid", U1]]]]), &uuid_map),
        Ok(Datum::map([(Atom::Integer(1), Atom::Uuid(uuid(U1)))]))
    );
    let bounded = ty_with(1, 2, String, Some(String));
    assert_eq!(
        Datum::from_json(&json!(["map", []]), &bounded),
        Err(DatumError::Count {
            min: 1,
            max: 2,
            n: 0
        })
    );
}

#[test]
fn datum_to_json_shapes() {
    assert_eq!(Datum::empty_map().to_json(), json!(["map", []]));
    assert_eq!(
        Datum::smap([("k", "v")]).to_json(),
        json!(["map", [["k", "v"]]])
    );
    assert_eq!(Datum::empty_set().to_json(), json!(["set", []]));
    assert_eq!(Datum::scalar(7).to_json(), json!(7));
    assert_eq!(Datum::scalar(uuid(U1)).to_json(), json!(["uuid", U1]));
    assert_eq!(
        Datum::set([Atom::from("b"), Atom::from("a")]).to_json(),
        json!(["set", ["a", "b"]])
    );
}

#[test]
fn datum_accessors() {
    let d = Datum::set([Atom::from("x"), Atom::from("y")]);
    assert_eq!(d.strs().collect::<Vec<_>>(), vec!["x", "y"]);
    assert_eq!(d.as_str(), Some("x"));
    assert_eq!(Datum::scalar(3).as_int(), Some(3));
    assert_eq!(Datum::scalar(true).as_bool(), Some(true));
    assert_eq!(Datum::empty_set().as_int(), None);
    assert!(atom_matches(
        &Atom::Integer(1),
        &crate::ovsdb::schema::BaseType::new(AtomicType::Integer)
    ));
}

// ---- update2 diffs (§6.2) ----------------------------------------------------------------

#[test]
fn diff_scalar_replaces() {
    let ty = ColumnType::scalar(AtomicType::Integer);
    let mut d = Datum::scalar(1);
    let diff = Datum::diff_from_json(&json!(2), &ty).unwrap();
    d.apply_diff(&diff, &ty).unwrap();
    assert_eq!(d, Datum::scalar(2));
    // A scalar cannot become empty.
    let empty = Datum::diff_from_json(&json!(["set", []]), &ty).unwrap();
    assert_eq!(
        d.apply_diff(&empty, &ty),
        Err(DatumError::Count {
            min: 1,
            max: 1,
            n: 0
        })
    );
    assert_eq!(d, Datum::scalar(2));
}

#[test]
fn diff_optional_becomes_empty() {
    let ty = ColumnType::optional(AtomicType::String);
    let mut d = Datum::scalar("a");
    // Same value as a diff still means "new value" for max == 1 (not a toggle).
    d.apply_diff(&Datum::scalar("a"), &ty).unwrap();
    assert_eq!(d, Datum::scalar("a"));
    let diff = Datum::diff_from_json(&json!(["set", []]), &ty).unwrap();
    d.apply_diff(&diff, &ty).unwrap();
    assert_eq!(d, Datum::empty_set());
    d.apply_diff(&Datum::scalar("b"), &ty).unwrap();
    assert_eq!(d, Datum::scalar("b"));
}

#[test]
fn diff_set_toggles() {
    let ty = ColumnType::set(AtomicType::String);
    let mut d = Datum::set(["a", "b"].map(Atom::from));
    let diff = Datum::diff_from_json(&json!(["set", ["b", "c"]]), &ty).unwrap();
    d.apply_diff(&diff, &ty).unwrap();
    assert_eq!(d, Datum::set(["a", "c"].map(Atom::from)));
    // A bare atom diff toggles one element.
    d.apply_diff(&Datum::diff_from_json(&json!("a"), &ty).unwrap(), &ty)
        .unwrap();
    assert_eq!(d, Datum::scalar("c"));
}

#[test]
fn diff_set_may_exceed_max_but_result_may_not() {
    let ty = ty_with(0, 2, AtomicType::Integer, None);
    // {1,2} -> {3,4}: the diff has 4 elements, more than max; strict decoding rejects it.
    let wire = json!(["set", [1, 2, 3, 4]]);
    assert!(Datum::from_json(&wire, &ty).is_err());
    let diff = Datum::diff_from_json(&wire, &ty).unwrap();
    let mut d = Datum::set([Atom::Integer(1), Atom::Integer(2)]);
    d.apply_diff(&diff, &ty).unwrap();
    assert_eq!(d, Datum::set([Atom::Integer(3), Atom::Integer(4)]));
    // Adding a third element violates max; the datum is left unchanged.
    let before = d.clone();
    assert_eq!(
        d.apply_diff(&Datum::scalar(5), &ty),
        Err(DatumError::Count {
            min: 0,
            max: 2,
            n: 3
        })
    );
    assert_eq!(d, before);
    // min 1: removing the last element is an error.
    let ty1 = ty_with(1, u64::MAX, AtomicType::Integer, None);
    let mut one = Datum::scalar(1);
    assert!(one.apply_diff(&Datum::scalar(1), &ty1).is_err());
    assert_eq!(one, Datum::scalar(1));
}

#[test]
fn diff_map_remove_replace_add() {
    let ty = ColumnType::map(AtomicType::String, AtomicType::String);
    let mut d = Datum::smap([("keep", "1"), ("gone", "2"), ("chg", "3")]);
    // gone: same value -> remove; chg: different value -> replace; new: absent -> add.
    let diff = Datum::diff_from_json(
        &json!(["map", [["gone", "2"], ["chg", "33"], ["new", "4"]]]),
        &ty,
    )
    .unwrap();
    d.apply_diff(&diff, &ty).unwrap();
    assert_eq!(d, Datum::smap([("keep", "1"), ("chg", "33"), ("new", "4")]));

    let bounded = ty_with(0, 1, AtomicType::String, Some(AtomicType::String));
    // max == 1 map: the diff is the new value.
    let mut m = Datum::smap([("a", "1")]);
    m.apply_diff(&Datum::smap([("b", "2")]), &bounded).unwrap();
    assert_eq!(m, Datum::smap([("b", "2")]));

    let two = ty_with(0, 2, AtomicType::String, Some(AtomicType::String));
    let mut m = Datum::smap([("a", "1"), ("b", "2")]);
    let before = m.clone();
    assert!(m.apply_diff(&Datum::smap([("c", "3")]), &two).is_err());
    assert_eq!(m, before);
    // Replacing a value keeps the size: fine at the bound.
    m.apply_diff(&Datum::smap([("a", "9")]), &two).unwrap();
    assert_eq!(m, Datum::smap([("a", "9"), ("b", "2")]));
}

#[test]
fn diff_kind_mismatches() {
    let mty = ColumnType::map(AtomicType::String, AtomicType::String);
    // An empty default datum of the other kind is accepted as empty.
    let mut d = Datum::default();
    d.apply_diff(&Datum::smap([("a", "1")]), &mty).unwrap();
    assert_eq!(d, Datum::smap([("a", "1")]));
    // A set diff for a map column, or a non-empty set value, is an error.
    assert!(d.apply_diff(&Datum::scalar("a"), &mty).is_err());
    let mut s = Datum::scalar("x");
    assert!(s.apply_diff(&Datum::smap([("a", "1")]), &mty).is_err());
    let sty = ColumnType::set(AtomicType::String);
    let mut e = Datum::empty_map();
    e.apply_diff(&Datum::scalar("a"), &sty).unwrap();
    assert_eq!(e, Datum::scalar("a"));
    assert!(e.apply_diff(&Datum::smap([("a", "1")]), &sty).is_err());
    assert_eq!(e, Datum::scalar("a"));
}

// ---- property tests ----------------------------------------------------------------------

fn atomic_type() -> impl Strategy<Value = AtomicType> {
    prop_oneof![
        Just(AtomicType::Integer),
        Just(AtomicType::Real),
        Just(AtomicType::Boolean),
        Just(AtomicType::String),
        Just(AtomicType::Uuid),
    ]
}

/// Atoms of `ty`, drawn from small domains so that sets and maps often share elements.
fn atom(ty: AtomicType) -> BoxedStrategy<Atom> {
    match ty {
        AtomicType::Integer => prop_oneof![-3i64..4, any::<i64>()]
            .prop_map(Atom::Integer)
            .boxed(),
        AtomicType::Real => prop_oneof![
            (-3i32..4).prop_map(f64::from),
            Just(-0.0),
            Just(0.5),
            // Any finite double (JSON cannot carry NaN or infinities).
            any::<f64>().prop_filter("finite", |f| f.is_finite()),
        ]
        .prop_map(Atom::Real)
        .boxed(),
        AtomicType::Boolean => any::<bool>().prop_map(Atom::Boolean).boxed(),
        AtomicType::String => prop_oneof!["[abc]{0,2}", ".{0,8}"]
            .prop_map(Atom::from)
            .boxed(),
        AtomicType::Uuid => prop_oneof![0u128..4, any::<u128>()]
            .prop_map(|u| Atom::Uuid(Uuid(u)))
            .boxed(),
    }
}

fn column_type() -> impl Strategy<Value = ColumnType> {
    (
        atomic_type(),
        proptest::option::of(atomic_type()),
        0u64..2,
        prop_oneof![Just(1u64), 2u64..5, Just(u64::MAX)],
    )
        .prop_map(|(k, v, min, max)| ty_with(min, max, k, v))
}

/// Largest element count we generate for a type.
fn cap(ty: &ColumnType) -> usize {
    ty.max.min(6) as usize
}

/// A datum valid for `ty` (element count within min..=max).
fn datum_for(ty: &ColumnType) -> BoxedStrategy<Datum> {
    let n = ty.min as usize..=cap(ty);
    let k = atom(ty.key.atomic);
    match &ty.value {
        Some(vt) => proptest::collection::vec((k, atom(vt.atomic)), n)
            .prop_map(|pairs| Datum::Map(pairs.into_iter().collect()))
            .boxed(),
        None => proptest::collection::vec(k, n)
            .prop_map(|atoms| Datum::Set(atoms.into_iter().collect()))
            .boxed(),
    }
}

fn type_and_datum() -> impl Strategy<Value = (ColumnType, Datum)> {
    column_type().prop_flat_map(|ty| {
        let d = datum_for(&ty);
        (Just(ty), d)
    })
}

fn type_and_two_datums() -> impl Strategy<Value = (ColumnType, Datum, Datum)> {
    column_type().prop_flat_map(|ty| {
        let (a, b) = (datum_for(&ty), datum_for(&ty));
        (Just(ty), a, b)
    })
}

/// The diff ovsdb-server sends in an update2 `modify` (`ovsdb_datum_diff`, spec §6.2).
fn diff(old: &Datum, new: &Datum, ty: &ColumnType) -> Datum {
    if ty.max == 1 {
        return new.clone();
    }
    match (old, new) {
        (Datum::Set(o), Datum::Set(n)) => Datum::Set(o.symmetric_difference(n).cloned().collect()),
        (Datum::Map(o), Datum::Map(n)) => {
            let mut d = BTreeMap::new();
            for (k, v) in o {
                match n.get(k) {
                    None => {
                        d.insert(k.clone(), v.clone());
                    }
                    Some(nv) if nv != v => {
                        d.insert(k.clone(), nv.clone());
                    }
                    Some(_) => {}
                }
            }
            for (k, v) in n {
                if !o.contains_key(k) {
                    d.insert(k.clone(), v.clone());
                }
            }
            Datum::Map(d.into())
        }
        _ => panic!("mixed kinds in test"),
    }
}

fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        prop_oneof![
            Just("set".to_string()),
            Just("map".to_string()),
            Just("uuid".to_string()),
            Just("named-uuid".to_string()),
            Just(U1.to_string()),
            ".{0,4}",
        ]
        .prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map("[a-z]{1,3}", inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn prop_json_round_trip((ty, d) in type_and_datum()) {
        let j = d.to_json();
        prop_assert_eq!(Datum::from_json(&j, &ty), Ok(d.clone()));
        // The shape rules of ovsdb_datum_to_json.
        match &d {
            Datum::Map(_) => prop_assert!(j.as_array().is_some_and(|a| a[0] == "map")),
            Datum::Set(s) if s.len() == 1 => prop_assert!(
                !j.as_array().is_some_and(|a| a.first().is_some_and(|t| t == "set"))
            ),
            Datum::Set(_) => prop_assert!(j.as_array().is_some_and(|a| a[0] == "set")),
        }
        // Through text too, when no reals are involved (serde_json's default float parser is not
        // guaranteed to round-trip the last bit).
        let has_real = ty.key.atomic == AtomicType::Real
            || ty.value.as_ref().is_some_and(|v| v.atomic == AtomicType::Real);
        if !has_real {
            let text = serde_json::to_string(&j).unwrap();
            let back: Value = serde_json::from_str(&text).unwrap();
            prop_assert_eq!(Datum::from_json(&back, &ty), Ok(d));
        }
    }

    #[test]
    fn prop_diff_application((ty, old, new) in type_and_two_datums()) {
        let dj = diff(&old, &new, &ty).to_json();
        let parsed = Datum::diff_from_json(&dj, &ty).unwrap();
        let mut cur = old.clone();
        prop_assert_eq!(cur.apply_diff(&parsed, &ty), Ok(()));
        prop_assert_eq!(&cur, &new);
        // And back again.
        let back = diff(&new, &old, &ty);
        prop_assert_eq!(cur.apply_diff(&back, &ty), Ok(()));
        prop_assert_eq!(cur, old);
    }

    #[test]
    fn prop_default_is_valid(ty in column_type()) {
        let d = Datum::default_for(&ty);
        prop_assert_eq!(d.len() as u64, ty.min);
        prop_assert_eq!(Datum::from_json(&d.to_json(), &ty), Ok(d));
    }

    #[test]
    fn prop_order_and_hash_consistent(
        a in atomic_type().prop_flat_map(atom),
        b in atomic_type().prop_flat_map(atom),
        c in atomic_type().prop_flat_map(atom),
    ) {
        prop_assert_eq!(a.cmp(&b), b.cmp(&a).reverse());
        prop_assert_eq!(a == b, a.cmp(&b) == std::cmp::Ordering::Equal);
        prop_assert_eq!(a.clone(), a.clone());
        prop_assert_eq!(hash_of(&a), hash_of(&a.clone()));
        if a.atomic_type() != b.atomic_type() {
            prop_assert_eq!(a.cmp(&b), a.rank().cmp(&b.rank()));
        }
        // Transitivity.
        if a <= b && b <= c {
            prop_assert!(a <= c);
        }
    }

    #[test]
    fn prop_atom_round_trip(a in atomic_type().prop_flat_map(atom)) {
        prop_assert_eq!(Atom::from_json(&a.to_json(), a.atomic_type()), Ok(a));
    }

    #[test]
    fn prop_garbage_never_panics(v in arbitrary_json(), ty in column_type()) {
        let _ = Datum::from_json(&v, &ty);
        if let Ok(d) = Datum::diff_from_json(&v, &ty) {
            let mut cur = Datum::default_for(&ty);
            let _ = cur.apply_diff(&d, &ty);
        }
        for t in [AtomicType::Integer, AtomicType::Real, AtomicType::Boolean,
                  AtomicType::String, AtomicType::Uuid] {
            let _ = Atom::from_json(&v, t);
        }
    }

    #[test]
    fn prop_apply_never_panics((ty, old) in type_and_datum(), (_, d) in type_and_datum()) {
        // A diff decoded for another type: may fail, must not panic, and on failure leaves
        // the datum unchanged.
        let mut cur = old.clone();
        if cur.apply_diff(&d, &ty).is_err() {
            prop_assert_eq!(cur, old);
        }
    }
}

#[test]
fn sets_sorted_like_server() {
    let ty = ColumnType::set(AtomicType::String);
    let d = Datum::from_json(&json!(["set", ["b", "B", "a", "ab"]]), &ty).unwrap();
    let order: Vec<_> = d.strs().collect();
    assert_eq!(order, vec!["B", "a", "ab", "b"]);
    let s: BTreeSet<Atom> = [3, -1, 2].into_iter().map(Atom::Integer).collect();
    assert_eq!(Datum::Set(s.into()).to_json(), json!(["set", [-1, 2, 3]]));
}
