//! OVSDB atoms and datums, and their JSON encoding (RFC 7047 §5.1 plus OVS rules, see
//! spec ovsdb-protocol.md §1.4 and §4).
//!
//! A [`Datum`] is always a set or a map; a scalar column holds a set of exactly one atom, an
//! optional column a set of zero or one. Elements are kept sorted and unique, in the order
//! ovsdb-server uses (integers/reals numerically, false < true, strings bytewise, uuids by value).

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};

use serde_json::Value;

use super::schema::{BaseType, ColumnType};
use super::uuid::Uuid;

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
#[derive(Clone, Debug)]
pub enum Atom {
    Integer(i64),
    Real(f64),
    Boolean(bool),
    String(String),
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
        todo!("helper: implement")
    }

    /// Encode for the wire: uuids as `["uuid", "..."]`, named uuids as `["named-uuid", n]`.
    pub fn to_json(&self) -> Value {
        todo!("helper: implement")
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
        Atom::String(s.to_string())
    }
}
impl From<String> for Atom {
    fn from(s: String) -> Atom {
        Atom::String(s)
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
        todo!("helper: implement")
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
        todo!("helper: implement, consistent with Eq (reals by bits)")
    }
}

/// A column value: a set (scalars are one-element sets) or a map.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Datum {
    Set(BTreeSet<Atom>),
    Map(BTreeMap<Atom, Atom>),
}

impl Default for Datum {
    fn default() -> Self {
        Datum::Set(BTreeSet::new())
    }
}

impl Datum {
    pub fn empty_set() -> Datum {
        Datum::Set(BTreeSet::new())
    }
    pub fn empty_map() -> Datum {
        Datum::Map(BTreeMap::new())
    }
    /// A one-element set.
    pub fn scalar(a: impl Into<Atom>) -> Datum {
        Datum::Set(BTreeSet::from([a.into()]))
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
        todo!("helper: implement")
    }

    /// Decode a column value as the server sends it and as `ovsdb_datum_from_json` parses it: for
    /// a map column `["map", [[k, v], ...]]`; otherwise `["set", [...]]` or a bare atom. Enforces
    /// min/max and rejects duplicates. (Enum/range constraints are the server's job; not checked.)
    pub fn from_json(v: &Value, ty: &ColumnType) -> Result<Datum, DatumError> {
        todo!("helper: implement")
    }

    /// Encode as `ovsdb_datum_to_json`: maps always `["map", ...]`; a set with exactly one element
    /// as the bare atom; otherwise `["set", [...]]`.
    pub fn to_json(&self) -> Value {
        todo!("helper: implement")
    }

    /// Apply an `update2` `modify` diff for a column of type `ty` (spec §6.2): max == 1 → the diff
    /// is the new value; set → toggle each element; map → remove/add/replace per key.
    pub fn apply_diff(&mut self, diff: &Datum, ty: &ColumnType) -> Result<(), DatumError> {
        todo!("helper: implement")
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
            Datum::Set(s) => s.iter().next(),
            Datum::Map(m) => m.keys().next(),
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
    pub fn as_set(&self) -> Option<&BTreeSet<Atom>> {
        match self {
            Datum::Set(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_map(&self) -> Option<&BTreeMap<Atom, Atom>> {
        match self {
            Datum::Map(m) => Some(m),
            _ => None,
        }
    }
    /// The uuids of a set-of-uuid (reference) column.
    pub fn uuids(&self) -> impl Iterator<Item = Uuid> + '_ {
        self.as_set().into_iter().flatten().filter_map(Atom::as_uuid)
    }
    /// The strings of a set-of-string column.
    pub fn strs(&self) -> impl Iterator<Item = &str> + '_ {
        self.as_set().into_iter().flatten().filter_map(Atom::as_str)
    }
    /// Value of string key `key` in a string→string map (`smap_get`).
    pub fn smap_get(&self, key: &str) -> Option<&str> {
        self.as_map()?
            .get(&Atom::String(key.to_string()))
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

/// Validate that `a` satisfies the type-level part of a base type (used by tests and fuzzing).
pub fn atom_matches(a: &Atom, base: &BaseType) -> bool {
    a.atomic_type() == base.atomic
}
