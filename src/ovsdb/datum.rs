//! OVSDB atoms and datums, and their JSON encoding (RFC 7047 §5.1 plus OVS rules, see
//! spec ovsdb-protocol.md §1.4 and §4).
//!
//! A [`Datum`] is always a set or a map; a scalar column holds a set of exactly one atom, an
//! optional column a set of zero or one. Elements are kept sorted and unique, in the order
//! ovsdb-server uses (integers/reals numerically, false < true, strings bytewise, uuids by value).

use std::cmp::Ordering;
use std::hash::{Hash, Hasher};

use compact_str::CompactString;
use serde_json::Value;

use super::schema::{BaseType, ColumnType};
use super::uuid::Uuid;

mod atom_set;
mod edit;
mod sorted;
pub use atom_set::AtomSet;
pub use edit::SetEdit;
use sorted::{merge, Merged};
pub use sorted::{AtomMap, MapIter};

/// The five atomic types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AtomicType {
    Integer,
    Real,
    Boolean,
    String,
    Uuid,
}

impl AtomicType {
    pub fn name(self) -> &'static str {
        match self {
            AtomicType::Integer => "integer",
            AtomicType::Real => "real",
            AtomicType::Boolean => "boolean",
            AtomicType::String => "string",
            AtomicType::Uuid => "uuid",
        }
    }

    pub fn from_name(s: &str) -> Option<AtomicType> {
        Some(match s {
            "integer" => AtomicType::Integer,
            "real" => AtomicType::Real,
            "boolean" => AtomicType::Boolean,
            "string" => AtomicType::String,
            "uuid" => AtomicType::Uuid,
            _ => return None,
        })
    }
}

/// One atom. `NamedUuid` exists only inside a transaction being built (`["named-uuid", name]`).
///
/// Strings up to 24 bytes (names, addresses, prefixes: nearly all of them) live inside the atom
/// ([`CompactString`]): a replica of thousands of rows is not thousands of tiny heap blocks, which
/// cost twice their size in allocator overhead and fragmented the heap.
#[derive(Clone, Debug)]
pub enum Atom {
    Integer(i64),
    Real(f64),
    Boolean(bool),
    String(CompactString),
    Uuid(Uuid),
    NamedUuid(String),
}

/// Errors decoding JSON into atoms/datums. Never a panic.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DatumError {
    #[error("syntax error: expected {expected}, got {got}")]
    Type { expected: String, got: String },
    #[error("syntax error: {0}")]
    Syntax(String),
    #[error("set must have {min} to {max} members but {n} are present")]
    Count { min: u64, max: u64, n: usize },
    #[error("set contains duplicate value")]
    DuplicateSet,
    #[error("map contains duplicate key")]
    DuplicateKey,
}

impl Atom {
    pub fn atomic_type(&self) -> AtomicType {
        match self {
            Atom::Integer(_) => AtomicType::Integer,
            Atom::Real(_) => AtomicType::Real,
            Atom::Boolean(_) => AtomicType::Boolean,
            Atom::String(_) => AtomicType::String,
            Atom::Uuid(_) | Atom::NamedUuid(_) => AtomicType::Uuid,
        }
    }

    /// Decode one atom of type `ty`. A real accepts JSON integers; an integer accepts a JSON
    /// number that is exactly integral. `["named-uuid", n]` is accepted for uuids.
    pub fn from_json(v: &Value, ty: AtomicType) -> Result<Atom, DatumError> {
        match ty {
            AtomicType::Integer => match v {
                Value::Number(n) => json_number_to_i64(n)
                    .map(Atom::Integer)
                    .ok_or_else(|| type_error(ty, v)),
                _ => Err(type_error(ty, v)),
            },
            AtomicType::Real => match v {
                Value::Number(n) => n.as_f64().map(Atom::Real).ok_or_else(|| type_error(ty, v)),
                _ => Err(type_error(ty, v)),
            },
            AtomicType::Boolean => match v {
                Value::Bool(b) => Ok(Atom::Boolean(*b)),
                _ => Err(type_error(ty, v)),
            },
            AtomicType::String => match v {
                Value::String(s) => Ok(Atom::String(CompactString::new(s))),
                _ => Err(type_error(ty, v)),
            },
            AtomicType::Uuid => match v.as_array().map(Vec::as_slice) {
                Some([Value::String(tag), Value::String(s)]) if tag == "uuid" => s
                    .parse::<Uuid>()
                    .map(Atom::Uuid)
                    .map_err(|e| DatumError::Syntax(e.to_string())),
                Some([Value::String(tag), Value::String(name)]) if tag == "named-uuid" => {
                    Ok(Atom::NamedUuid(name.clone()))
                }
                _ => Err(type_error(ty, v)),
            },
        }
    }

    /// Encode for the wire: uuids as `["uuid", "..."]`, named uuids as `["named-uuid", n]`.
    pub fn to_json(&self) -> Value {
        match self {
            Atom::Integer(i) => Value::from(*i),
            // Non-finite reals cannot come from JSON; they encode as `null` (serde_json's rule).
            Atom::Real(r) => Value::from(*r),
            Atom::Boolean(b) => Value::Bool(*b),
            Atom::String(s) => Value::String(s.to_string()),
            Atom::Uuid(u) => Value::Array(vec![Value::from("uuid"), Value::String(u.to_string())]),
            Atom::NamedUuid(n) => {
                Value::Array(vec![Value::from("named-uuid"), Value::String(n.clone())])
            }
        }
    }

    /// Rank of the variant in the total order (Integer < Real < Boolean < String < Uuid <
    /// NamedUuid); also the discriminant fed to `Hash`.
    fn rank(&self) -> u8 {
        match self {
            Atom::Integer(_) => 0,
            Atom::Real(_) => 1,
            Atom::Boolean(_) => 2,
            Atom::String(_) => 3,
            Atom::Uuid(_) => 4,
            Atom::NamedUuid(_) => 5,
        }
    }

    /// The default atom of a type (`ovsdb_atom_init_default`): 0, 0.0, false, "", zero uuid.
    pub fn default_for(ty: AtomicType) -> Atom {
        match ty {
            AtomicType::Integer => Atom::Integer(0),
            AtomicType::Real => Atom::Real(0.0),
            AtomicType::Boolean => Atom::Boolean(false),
            AtomicType::String => Atom::String(CompactString::default()),
            AtomicType::Uuid => Atom::Uuid(Uuid::ZERO),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Atom::String(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Atom::Integer(i) => Some(*i),
            _ => None,
        }
    }
    pub fn as_uuid(&self) -> Option<Uuid> {
        match self {
            Atom::Uuid(u) => Some(*u),
            _ => None,
        }
    }
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Atom::Boolean(b) => Some(*b),
            _ => None,
        }
    }
}

impl From<&str> for Atom {
    fn from(s: &str) -> Atom {
        Atom::String(CompactString::new(s))
    }
}
impl From<String> for Atom {
    fn from(s: String) -> Atom {
        Atom::String(CompactString::from(s))
    }
}
impl From<i64> for Atom {
    fn from(i: i64) -> Atom {
        Atom::Integer(i)
    }
}
impl From<bool> for Atom {
    fn from(b: bool) -> Atom {
        Atom::Boolean(b)
    }
}
impl From<Uuid> for Atom {
    fn from(u: Uuid) -> Atom {
        Atom::Uuid(u)
    }
}

// Total order: by type rank (Integer, Real, Boolean, String, Uuid, NamedUuid), then by value as
// ovsdb-server orders it (reals by f64::total_cmp, strings bytewise).
impl Ord for Atom {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Atom::Integer(a), Atom::Integer(b)) => a.cmp(b),
            (Atom::Real(a), Atom::Real(b)) => a.total_cmp(b),
            (Atom::Boolean(a), Atom::Boolean(b)) => a.cmp(b),
            // `str`'s Ord is bytewise, i.e. `strcmp` on UTF-8.
            (Atom::String(a), Atom::String(b)) => a.cmp(b),
            (Atom::Uuid(a), Atom::Uuid(b)) => a.cmp(b),
            (Atom::NamedUuid(a), Atom::NamedUuid(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}
impl PartialOrd for Atom {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl PartialEq for Atom {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Atom {}
impl Hash for Atom {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.rank().hash(state);
        match self {
            Atom::Integer(i) => i.hash(state),
            // total_cmp equality is exactly bit equality, so hashing the bits is consistent.
            Atom::Real(r) => r.to_bits().hash(state),
            Atom::Boolean(b) => b.hash(state),
            Atom::String(s) => s.as_str().hash(state),
            Atom::NamedUuid(s) => s.as_str().hash(state),
            Atom::Uuid(u) => u.hash(state),
        }
    }
}

/// A column value: a set (scalars are one-element sets) or a map.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Datum {
    Set(AtomSet),
    Map(AtomMap),
}

impl Default for Datum {
    fn default() -> Self {
        Datum::Set(AtomSet::new())
    }
}

impl Datum {
    pub fn empty_set() -> Datum {
        Datum::Set(AtomSet::new())
    }
    pub fn empty_map() -> Datum {
        Datum::Map(AtomMap::new())
    }
    /// A one-element set.
    pub fn scalar(a: impl Into<Atom>) -> Datum {
        Datum::Set(AtomSet::from_sorted_vec(vec![a.into()]))
    }
    pub fn set(atoms: impl IntoIterator<Item = Atom>) -> Datum {
        Datum::Set(atoms.into_iter().collect())
    }
    pub fn map(pairs: impl IntoIterator<Item = (Atom, Atom)>) -> Datum {
        Datum::Map(pairs.into_iter().collect())
    }
    /// A string→string map (OVSDB "smap").
    pub fn smap<K: AsRef<str>, V: AsRef<str>>(pairs: impl IntoIterator<Item = (K, V)>) -> Datum {
        Datum::Map(
            pairs
                .into_iter()
                .map(|(k, v)| (Atom::from(k.as_ref()), Atom::from(v.as_ref())))
                .collect(),
        )
    }

    /// The default value of a column type (RFC 7047 §5.1 / `ovsdb_datum_init_default`): `min`
    /// copies of the base type's default atom (0, 0.0, false, "", all-zero uuid), i.e. the empty
    /// set or map when `min` is 0.
    pub fn default_for(ty: &ColumnType) -> Datum {
        // Elements are unique, so `min` copies of one atom collapse to a single element
        // (valid schemas have min 0 or 1 anyway).
        let present = ty.min > 0;
        match &ty.value {
            Some(vt) => {
                let mut m = Vec::new();
                if present {
                    m.push((
                        Atom::default_for(ty.key.atomic),
                        Atom::default_for(vt.atomic),
                    ));
                }
                Datum::Map(AtomMap::from_sorted_vec(m))
            }
            None => {
                let mut s = Vec::new();
                if present {
                    s.push(Atom::default_for(ty.key.atomic));
                }
                Datum::Set(AtomSet::from_sorted_vec(s))
            }
        }
    }

    /// Decode a column value as the server sends it and as `ovsdb_datum_from_json` parses it: for
    /// a map column `["map", [[k, v], ...]]`; otherwise `["set", [...]]` or a bare atom. Enforces
    /// min/max and rejects duplicates. (Enum/range constraints are the server's job; not checked.)
    pub fn from_json(v: &Value, ty: &ColumnType) -> Result<Datum, DatumError> {
        Datum::from_json_counted(v, ty, ty.min, ty.max)
    }

    /// Decode an `update2` `modify` diff for a column of type `ty` (the C
    /// `ovsdb_transient_datum_from_json`): like [`Datum::from_json`] but without the min/max
    /// element-count check, since a set diff (a symmetric difference) may legitimately have more
    /// elements than the column allows. Pass the result to [`Datum::apply_diff`].
    pub fn diff_from_json(v: &Value, ty: &ColumnType) -> Result<Datum, DatumError> {
        Datum::from_json_counted(v, ty, 0, u64::MAX)
    }

    fn from_json_counted(
        v: &Value,
        ty: &ColumnType,
        min: u64,
        max: u64,
    ) -> Result<Datum, DatumError> {
        let check_count = |n: usize| {
            let n64 = u64::try_from(n).unwrap_or(u64::MAX);
            if n64 < min || n64 > max {
                Err(DatumError::Count { min, max, n })
            } else {
                Ok(())
            }
        };
        if let Some(vt) = &ty.value {
            let pairs = unwrap_tagged(v, "map")?;
            check_count(pairs.len())?;
            // Decode every pair, then sort and look for duplicate keys. The error reported is
            // the one a one-by-one insertion would hit first: a duplicate among the pairs before
            // the first undecodable one wins over that decode error.
            let mut m = Vec::with_capacity(pairs.len());
            let mut failed = None;
            for p in pairs {
                let decoded = match p.as_array().map(Vec::as_slice) {
                    Some([k, val]) => Atom::from_json(k, ty.key.atomic)
                        .and_then(|k| Ok((k, Atom::from_json(val, vt.atomic)?))),
                    _ => Err(DatumError::Type {
                        expected: "2-element array".into(),
                        got: json_kind(p).into(),
                    }),
                };
                match decoded {
                    Ok(kv) => m.push(kv),
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
            }
            m.sort_by(|a, b| a.0.cmp(&b.0));
            if m.windows(2).any(|w| w[0].0 == w[1].0) {
                return Err(DatumError::DuplicateKey);
            }
            if let Some(e) = failed {
                return Err(e);
            }
            return Ok(Datum::Map(AtomMap::from_sorted_vec(m)));
        }
        if is_tagged_array(v, "set") {
            let elems = unwrap_tagged(v, "set")?;
            check_count(elems.len())?;
            let mut s = Vec::with_capacity(elems.len());
            let mut failed = None;
            for e in elems {
                match Atom::from_json(e, ty.key.atomic) {
                    Ok(a) => s.push(a),
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
            }
            s.sort();
            if s.windows(2).any(|w| w[0] == w[1]) {
                return Err(DatumError::DuplicateSet);
            }
            if let Some(e) = failed {
                return Err(e);
            }
            Ok(Datum::Set(AtomSet::from_sorted_vec(s)))
        } else {
            check_count(1)?;
            Ok(Datum::Set(AtomSet::from_sorted_vec(vec![Atom::from_json(
                v,
                ty.key.atomic,
            )?])))
        }
    }

    /// Encode as `ovsdb_datum_to_json`: maps always `["map", ...]`; a set with exactly one element
    /// as the bare atom; otherwise `["set", [...]]`.
    pub fn to_json(&self) -> Value {
        match self {
            Datum::Map(m) => tagged(
                "map",
                m.iter()
                    .map(|(k, v)| Value::Array(vec![k.to_json(), v.to_json()]))
                    .collect(),
            ),
            Datum::Set(s) if s.len() == 1 => s.first().map_or(Value::Null, Atom::to_json),
            Datum::Set(s) => tagged("set", s.iter().map(Atom::to_json).collect()),
        }
    }

    /// Apply an `update2` `modify` diff for a column of type `ty` (spec §6.2): max == 1 → the diff
    /// is the new value; set → toggle each element; map → remove/add/replace per key.
    ///
    /// Decode the diff with [`Datum::diff_from_json`]. An empty datum of the wrong kind (e.g.
    /// `Datum::default()` for a map column) is treated as empty of the right kind. On error
    /// (a diff of the wrong kind, or a result violating min/max) `self` is left unchanged.
    /// Apply a [`SetEdit`] to a set value; false, and `self` unchanged, for a map.
    pub fn apply_set_edit(&mut self, e: &SetEdit) -> bool {
        match self {
            Datum::Set(s) => {
                e.apply_to(s);
                true
            }
            Datum::Map(_) => false,
        }
    }

    pub fn apply_diff(&mut self, diff: &Datum, ty: &ColumnType) -> Result<(), DatumError> {
        let kind_err = |d: &Datum| DatumError::Type {
            expected: if ty.is_map() { "map" } else { "set" }.into(),
            got: if matches!(d, Datum::Map(_)) {
                "map"
            } else {
                "set"
            }
            .into(),
        };
        let check = |n: usize| {
            let n64 = u64::try_from(n).unwrap_or(u64::MAX);
            if n64 < ty.min || n64 > ty.max {
                Err(DatumError::Count {
                    min: ty.min,
                    max: ty.max,
                    n,
                })
            } else {
                Ok(())
            }
        };
        if ty.is_map() != matches!(diff, Datum::Map(_)) {
            return Err(kind_err(diff));
        }
        if ty.max == 1 {
            check(diff.len())?;
            self.clone_from(diff);
            return Ok(());
        }
        if ty.is_map() != matches!(self, Datum::Map(_)) {
            if !self.is_empty() {
                return Err(kind_err(self));
            }
            *self = if ty.is_map() {
                Datum::empty_map()
            } else {
                Datum::empty_set()
            };
        }
        // Both sides are sorted: build the result in one linear merge, check its size, and only
        // then replace `self` (so an error leaves it unchanged).
        match (self, diff) {
            // A few toggles of a large set (learned routes on a router with thousands): in
            // place, a binary search and a chunk copy each.
            (Datum::Set(s), Datum::Set(d)) if s.few_edits(d.len()) => {
                let added = d.iter().filter(|a| !s.contains(a)).count();
                check(s.len() + added - (d.len() - added))?;
                for a in d.iter() {
                    if !s.remove(a) {
                        s.insert(a.clone());
                    }
                }
            }
            (Datum::Set(s), Datum::Set(d)) => {
                let new: Vec<Atom> = s.symmetric_difference(d).cloned().collect();
                check(new.len())?;
                *s = AtomSet::from_sorted_vec(new);
            }
            (Datum::Map(m), Datum::Map(d)) => {
                let new: Vec<(Atom, Atom)> =
                    merge(m.as_slice(), d.as_slice(), |a, b| a.0.cmp(&b.0))
                        .filter_map(|step| match step {
                            Merged::Left(kv) | Merged::Right(kv) => Some(kv.clone()),
                            Merged::Both(old, new) if old.1 == new.1 => None,
                            Merged::Both(_, new) => Some(new.clone()),
                        })
                        .collect();
                check(new.len())?;
                *m = AtomMap::from_sorted_vec(new);
            }
            // Kinds were checked above; keep this total rather than panicking.
            (d, _) => return Err(kind_err(d)),
        }
        Ok(())
    }

    pub fn len(&self) -> usize {
        match self {
            Datum::Set(s) => s.len(),
            Datum::Map(m) => m.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The single atom of a scalar (or set) datum, if it has exactly one... or the first one.
    pub fn first(&self) -> Option<&Atom> {
        match self {
            Datum::Set(s) => s.first(),
            Datum::Map(m) => m.first_key_value().map(|(k, _)| k),
        }
    }
    pub fn as_str(&self) -> Option<&str> {
        self.first().and_then(Atom::as_str)
    }
    pub fn as_int(&self) -> Option<i64> {
        self.first().and_then(Atom::as_int)
    }
    pub fn as_bool(&self) -> Option<bool> {
        self.first().and_then(Atom::as_bool)
    }
    pub fn as_uuid(&self) -> Option<Uuid> {
        self.first().and_then(Atom::as_uuid)
    }
    pub fn as_set(&self) -> Option<&AtomSet> {
        match self {
            Datum::Set(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_map(&self) -> Option<&AtomMap> {
        match self {
            Datum::Map(m) => Some(m),
            _ => None,
        }
    }
    /// The uuids of a set-of-uuid (reference) column.
    pub fn uuids(&self) -> impl Iterator<Item = Uuid> + '_ {
        self.as_set()
            .into_iter()
            .flatten()
            .filter_map(Atom::as_uuid)
    }
    /// The strings of a set-of-string column.
    pub fn strs(&self) -> impl Iterator<Item = &str> + '_ {
        self.as_set().into_iter().flatten().filter_map(Atom::as_str)
    }
    /// Value of string key `key` in a string→string map (`smap_get`).
    pub fn smap_get(&self, key: &str) -> Option<&str> {
        self.as_map()?
            .get(&Atom::String(CompactString::new(key)))
            .and_then(Atom::as_str)
    }
    /// Iterate a string→string map.
    pub fn smap_iter(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.as_map()
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| Some((k.as_str()?, v.as_str()?)))
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "real",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn type_error(ty: AtomicType, v: &Value) -> DatumError {
    let expected = match ty {
        AtomicType::Uuid => "[\"uuid\", <string>] or [\"named-uuid\", <string>]",
        other => other.name(),
    };
    DatumError::Type {
        expected: expected.to_string(),
        got: json_kind(v).to_string(),
    }
}

/// A JSON number as an int64, if it is exactly integral and in range (the C lexer's rule: `1.0`
/// and `1e3` are integers; `2^63` is not).
pub(crate) fn json_number_to_i64(n: &serde_json::Number) -> Option<i64> {
    if let Some(i) = n.as_i64() {
        return Some(i);
    }
    if n.is_u64() {
        return None; // > i64::MAX
    }
    let f = n.as_f64()?;
    // -2^63 is exactly representable; 2^63 is the first value out of range.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    if f.fract() == 0.0 && (-LIMIT..LIMIT).contains(&f) {
        Some(f as i64)
    } else {
        None
    }
}

fn tagged(tag: &str, elems: Vec<Value>) -> Value {
    Value::Array(vec![Value::from(tag), Value::Array(elems)])
}

/// Whether `v` is an array whose first element is the string `tag`.
fn is_tagged_array(v: &Value, tag: &str) -> bool {
    matches!(v.as_array().and_then(|a| a.first()), Some(Value::String(t)) if t == tag)
}

/// The inner array of `[tag, [...]]` (C `unwrap_json`).
fn unwrap_tagged<'a>(v: &'a Value, tag: &str) -> Result<&'a [Value], DatumError> {
    match v.as_array().map(Vec::as_slice) {
        Some([Value::String(t), Value::Array(inner)]) if t == tag => Ok(inner),
        _ => Err(DatumError::Type {
            expected: format!("[\"{tag}\", <array>]"),
            got: json_kind(v).to_string(),
        }),
    }
}

/// Validate that `a` satisfies the type-level part of a base type (used by tests and fuzzing).
pub fn atom_matches(a: &Atom, base: &BaseType) -> bool {
    a.atomic_type() == base.atomic
}

#[cfg(test)]
mod tests;
