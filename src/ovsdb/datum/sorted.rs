//! Compact sorted containers for datum elements.
//!
//! Almost every column value is a scalar (one atom) or a small map. A `BTreeSet`/`BTreeMap` with
//! one element allocates a whole B-tree leaf (11 slots), so a replica of 10^4 rows held several
//! times the memory the C daemon needs. [`AtomMap`] is a sorted, deduplicated boxed slice
//! instead: one heap block of exactly the element count (no spare capacity, and 16 bytes inline,
//! so a [`super::Datum`] is 24 bytes), binary search for lookups. In-place insertion/removal
//! reallocates; bulk changes (decoding, diffs, `Extend`) build a new slice. A small
//! [`super::AtomSet`] is the same; a large one is chunked (see [`super::atom_set`]).
//!
//! Equality, ordering and hashing are those of the B-tree types they replace: lexicographic over
//! the elements in sorted order (for maps over `(key, value)` pairs), hash = length prefix then
//! the elements. `Debug` prints `{a, b}` / `{k: v}` like the B-tree types.

use std::fmt;

use super::Atom;
#[cfg(test)]
use super::AtomSet;

/// A map from atoms to atoms: `(key, value)` pairs sorted by key, keys unique.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AtomMap(Box<[(Atom, Atom)]>);

/// Iterator over `(&key, &value)` in key order (like `btree_map::Iter`).
#[derive(Clone, Debug)]
pub struct MapIter<'a>(std::slice::Iter<'a, (Atom, Atom)>);

impl<'a> Iterator for MapIter<'a> {
    type Item = (&'a Atom, &'a Atom);
    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(|(k, v)| (k, v))
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}
impl DoubleEndedIterator for MapIter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.0.next_back().map(|(k, v)| (k, v))
    }
}
impl ExactSizeIterator for MapIter<'_> {}
impl std::iter::FusedIterator for MapIter<'_> {}

impl AtomMap {
    /// The empty map (no allocation).
    pub fn new() -> AtomMap {
        AtomMap::default()
    }

    /// Wrap pairs already sorted by unique key (checked in debug builds), dropping spare
    /// capacity.
    pub(crate) fn from_sorted_vec(v: Vec<(Atom, Atom)>) -> AtomMap {
        debug_assert!(v.windows(2).all(|w| w[0].0 < w[1].0));
        AtomMap(v.into_boxed_slice())
    }

    /// Run `f` on the pairs as a vector, then store them back without spare capacity.
    fn edit<R>(&mut self, f: impl FnOnce(&mut Vec<(Atom, Atom)>) -> R) -> R {
        let mut v = std::mem::take(&mut self.0).into_vec();
        let r = f(&mut v);
        self.0 = v.into_boxed_slice();
        r
    }

    fn find(&self, k: &Atom) -> Result<usize, usize> {
        self.0.binary_search_by(|(key, _)| key.cmp(k))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// The pairs in key order.
    pub fn iter(&self) -> MapIter<'_> {
        MapIter(self.0.iter())
    }
    pub fn as_slice(&self) -> &[(Atom, Atom)] {
        &self.0
    }
    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &Atom> + ExactSizeIterator + '_ {
        self.0.iter().map(|(k, _)| k)
    }
    pub fn values(&self) -> impl DoubleEndedIterator<Item = &Atom> + ExactSizeIterator + '_ {
        self.0.iter().map(|(_, v)| v)
    }
    pub fn first_key_value(&self) -> Option<(&Atom, &Atom)> {
        self.0.first().map(|(k, v)| (k, v))
    }
    pub fn last_key_value(&self) -> Option<(&Atom, &Atom)> {
        self.0.last().map(|(k, v)| (k, v))
    }
    pub fn contains_key(&self, k: &Atom) -> bool {
        self.find(k).is_ok()
    }
    pub fn get(&self, k: &Atom) -> Option<&Atom> {
        self.find(k).ok().map(|i| &self.0[i].1)
    }
    pub fn get_key_value(&self, k: &Atom) -> Option<(&Atom, &Atom)> {
        self.find(k).ok().map(|i| (&self.0[i].0, &self.0[i].1))
    }
    pub fn get_mut(&mut self, k: &Atom) -> Option<&mut Atom> {
        match self.find(k) {
            Ok(i) => Some(&mut self.0[i].1),
            Err(_) => None,
        }
    }
    /// Insert or replace; returns the previous value of `k`.
    pub fn insert(&mut self, k: Atom, v: Atom) -> Option<Atom> {
        match self.find(&k) {
            Ok(i) => Some(std::mem::replace(&mut self.0[i].1, v)),
            Err(i) => {
                self.edit(|pairs| pairs.insert(i, (k, v)));
                None
            }
        }
    }
    /// Remove `k`; returns its value.
    pub fn remove(&mut self, k: &Atom) -> Option<Atom> {
        match self.find(k) {
            Ok(i) => Some(self.edit(|pairs| pairs.remove(i)).1),
            Err(_) => None,
        }
    }
    pub fn clear(&mut self) {
        self.0 = Box::default();
    }

    /// Sort by key, keeping the last value of each duplicated key (what inserting the pairs one
    /// by one into a `BTreeMap` keeps).
    fn normalise(v: &mut Vec<(Atom, Atom)>) {
        v.sort_by(|a, b| a.0.cmp(&b.0)); // stable: equal keys keep their insertion order
        v.dedup_by(|later, kept| {
            if later.0 == kept.0 {
                std::mem::swap(&mut later.1, &mut kept.1);
                true
            } else {
                false
            }
        });
    }
}

impl fmt::Debug for AtomMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl FromIterator<(Atom, Atom)> for AtomMap {
    fn from_iter<I: IntoIterator<Item = (Atom, Atom)>>(iter: I) -> AtomMap {
        let mut v: Vec<(Atom, Atom)> = iter.into_iter().collect();
        AtomMap::normalise(&mut v);
        AtomMap::from_sorted_vec(v)
    }
}

impl Extend<(Atom, Atom)> for AtomMap {
    fn extend<I: IntoIterator<Item = (Atom, Atom)>>(&mut self, iter: I) {
        self.edit(|v| {
            let before = v.len();
            v.extend(iter);
            if v.len() != before {
                AtomMap::normalise(v);
            }
        });
    }
}

impl<'a> Extend<(&'a Atom, &'a Atom)> for AtomMap {
    fn extend<I: IntoIterator<Item = (&'a Atom, &'a Atom)>>(&mut self, iter: I) {
        self.extend(iter.into_iter().map(|(k, v)| (k.clone(), v.clone())));
    }
}

impl<const N: usize> From<[(Atom, Atom); N]> for AtomMap {
    fn from(a: [(Atom, Atom); N]) -> AtomMap {
        a.into_iter().collect()
    }
}

impl From<std::collections::BTreeMap<Atom, Atom>> for AtomMap {
    fn from(m: std::collections::BTreeMap<Atom, Atom>) -> AtomMap {
        AtomMap::from_sorted_vec(m.into_iter().collect())
    }
}

impl IntoIterator for AtomMap {
    type Item = (Atom, Atom);
    type IntoIter = std::vec::IntoIter<(Atom, Atom)>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_vec().into_iter()
    }
}

impl<'a> IntoIterator for &'a AtomMap {
    type Item = (&'a Atom, &'a Atom);
    type IntoIter = MapIter<'a>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// One step of a merge of two sorted, deduplicated slices.
pub(crate) enum Merged<'a, T> {
    Left(&'a T),
    Right(&'a T),
    Both(&'a T, &'a T),
}

/// Merge two slices sorted (and unique) under `cmp`, in ascending order.
pub(crate) fn merge<'a, T, F>(
    a: &'a [T],
    b: &'a [T],
    cmp: F,
) -> impl Iterator<Item = Merged<'a, T>> + 'a
where
    F: Fn(&T, &T) -> std::cmp::Ordering + 'a,
{
    let (mut i, mut j) = (0, 0);
    std::iter::from_fn(move || {
        use std::cmp::Ordering::*;
        match (a.get(i), b.get(j)) {
            (Some(x), Some(y)) => Some(match cmp(x, y) {
                Less => {
                    i += 1;
                    Merged::Left(x)
                }
                Greater => {
                    j += 1;
                    Merged::Right(y)
                }
                Equal => {
                    i += 1;
                    j += 1;
                    Merged::Both(x, y)
                }
            }),
            (Some(x), None) => {
                i += 1;
                Some(Merged::Left(x))
            }
            (None, Some(y)) => {
                j += 1;
                Some(Merged::Right(y))
            }
            (None, None) => None,
        }
    })
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::ovsdb::datum::Datum;
    use crate::ovsdb::schema::ColumnType;
    use proptest::prelude::*;
    use serde_json::json;
    use std::collections::hash_map::DefaultHasher;
    use std::collections::BTreeMap;
    use std::hash::{Hash, Hasher};

    /// A small atom of any of three types (shared with `atom_set`'s tests).
    pub(in crate::ovsdb::datum) fn atom() -> impl Strategy<Value = Atom> {
        prop_oneof![
            (-3i64..4).prop_map(Atom::Integer),
            "[ab]{0,2}".prop_map(Atom::from),
            any::<bool>().prop_map(Atom::Boolean),
        ]
    }

    pub(in crate::ovsdb::datum) fn hash_of<T: Hash>(t: &T) -> u64 {
        let mut h = DefaultHasher::new();
        t.hash(&mut h);
        h.finish()
    }

    proptest! {
        /// Same pairs (last value wins for a repeated key), order, equality, ordering, hash and
        /// Debug as a BTreeMap.
        #[test]
        fn map_behaves_like_btreemap(a in proptest::collection::vec((atom(), atom()), 0..8),
                                     b in proptest::collection::vec((atom(), atom()), 0..8),
                                     k in atom(), v in atom()) {
            let (ba, bb): (BTreeMap<Atom, Atom>, BTreeMap<Atom, Atom>) =
                (a.iter().cloned().collect(), b.iter().cloned().collect());
            let (ma, mb): (AtomMap, AtomMap) = (a.into_iter().collect(), b.into_iter().collect());
            prop_assert!(ma.iter().eq(ba.iter()));
            prop_assert!(ma.keys().eq(ba.keys()));
            prop_assert!(ma.values().eq(ba.values()));
            prop_assert_eq!(ma.len(), ba.len());
            prop_assert_eq!(ma == mb, ba == bb);
            prop_assert_eq!(ma.cmp(&mb), ba.cmp(&bb));
            prop_assert_eq!(hash_of(&ma), hash_of(&ba));
            prop_assert_eq!(format!("{ma:?}"), format!("{ba:?}"));
            prop_assert_eq!(ma.get(&k), ba.get(&k));
            prop_assert_eq!(ma.contains_key(&k), ba.contains_key(&k));
            let (mut ma2, mut ba2) = (ma.clone(), ba.clone());
            prop_assert_eq!(ma2.insert(k.clone(), v.clone()), ba2.insert(k.clone(), v));
            prop_assert!(ma2.iter().eq(ba2.iter()));
            let (mut ma3, mut ba3) = (ma.clone(), ba.clone());
            prop_assert_eq!(ma3.remove(&k), ba3.remove(&k));
            prop_assert!(ma3.iter().eq(ba3.iter()));
            let (mut ma4, mut ba4) = (ma, ba);
            ma4.extend(mb.iter());
            ba4.extend(bb.iter().map(|(k, v)| (k.clone(), v.clone())));
            prop_assert!(ma4.iter().eq(ba4.iter()));
        }
    }

    /// A datum with the first duplicate before an undecodable element reports the duplicate
    /// (what one-by-one insertion did); one after it reports the decode error.
    #[test]
    fn decode_error_precedence_is_unchanged() {
        let set: ColumnType = ColumnType::from_json(&json!({
            "key": "integer", "min": 0, "max": "unlimited"
        }))
        .unwrap();
        assert_eq!(
            Datum::from_json(&json!(["set", [1, 1, "x"]]), &set),
            Err(crate::ovsdb::datum::DatumError::DuplicateSet)
        );
        assert!(matches!(
            Datum::from_json(&json!(["set", [1, "x", 1]]), &set),
            Err(crate::ovsdb::datum::DatumError::Type { .. })
        ));
        let map: ColumnType = ColumnType::from_json(&json!({
            "key": "string", "value": "integer", "min": 0, "max": "unlimited"
        }))
        .unwrap();
        assert_eq!(
            Datum::from_json(&json!(["map", [["a", 1], ["a", 2], ["b", "x"]]]), &map),
            Err(crate::ovsdb::datum::DatumError::DuplicateKey)
        );
        assert!(matches!(
            Datum::from_json(&json!(["map", [["a", 1], ["b", "x"], ["a", 2]]]), &map),
            Err(crate::ovsdb::datum::DatumError::Type { .. })
        ));
    }

    /// The inline sizes the memory budget relies on: a boxed slice is two words, and a Datum
    /// (two variants of it plus a tag) three.
    #[test]
    fn inline_sizes() {
        assert_eq!(std::mem::size_of::<AtomSet>(), 16);
        assert_eq!(std::mem::size_of::<AtomMap>(), 16);
        assert_eq!(std::mem::size_of::<Datum>(), 24);
        assert_eq!(std::mem::size_of::<Atom>(), 32);
    }
}
