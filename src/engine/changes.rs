//! A reusable, mergeable per-key change set for node data.

use std::collections::btree_map::{self, BTreeMap};

use super::NodeData;

/// What happened to one key since the change set was last cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Change {
    /// The key did not exist before and exists now.
    Inserted,
    /// The key existed before and still exists, with (possibly) different contents.
    Updated,
    /// The key existed before and does not exist now.
    Deleted,
}

/// The set of keys that changed since the last `clear`, with net effect per key.
///
/// Recording is *merging*: several changes to one key collapse to their net effect relative to the
/// state before the first one, so an input node can keep accumulating changes across iterations in
/// which the engine did not run (insert + delete = nothing, delete + insert = update, insert +
/// update = insert, update + delete = delete). Iteration is in key order, so handlers that walk a
/// change set are deterministic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeSet<K: Ord> {
    map: BTreeMap<K, Change>,
}

impl<K: Ord> Default for ChangeSet<K> {
    fn default() -> Self {
        ChangeSet {
            map: BTreeMap::new(),
        }
    }
}

impl<K: Ord> ChangeSet<K> {
    /// An empty change set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `change` for `key`, merging it with what was already recorded.
    pub fn record(&mut self, key: K, change: Change) {
        use Change::*;
        match self.map.entry(key) {
            btree_map::Entry::Vacant(v) => {
                v.insert(change);
            }
            btree_map::Entry::Occupied(mut o) => {
                let merged = match (*o.get(), change) {
                    // Created and destroyed since the consumer last looked: it never existed.
                    (Inserted, Deleted) => None,
                    (Inserted, Inserted | Updated) => Some(Inserted),
                    (Updated, Deleted) => Some(Deleted),
                    (Updated, Inserted | Updated) => Some(Updated),
                    // Deleted and re-created: the consumer sees a changed row.
                    (Deleted, Inserted | Updated) => Some(Updated),
                    (Deleted, Deleted) => Some(Deleted),
                };
                match merged {
                    Some(c) => {
                        o.insert(c);
                    }
                    None => {
                        o.remove();
                    }
                }
            }
        }
    }

    /// Records an insertion of `key`.
    pub fn inserted(&mut self, key: K) {
        self.record(key, Change::Inserted);
    }

    /// Records a modification of `key`.
    pub fn updated(&mut self, key: K) {
        self.record(key, Change::Updated);
    }

    /// Records a deletion of `key`.
    pub fn deleted(&mut self, key: K) {
        self.record(key, Change::Deleted);
    }

    /// Merges every change of `other` into `self` (as if recorded after `self`'s).
    pub fn merge(&mut self, other: ChangeSet<K>) {
        for (k, c) in other.map {
            self.record(k, c);
        }
    }

    /// The net change recorded for `key`, if any.
    pub fn get(&self, key: &K) -> Option<Change> {
        self.map.get(key).copied()
    }

    /// Whether `key` changed.
    pub fn contains(&self, key: &K) -> bool {
        self.map.contains_key(key)
    }

    /// All changed keys with their net change, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, Change)> + '_ {
        self.map.iter().map(|(k, c)| (k, *c))
    }

    /// All changed keys, in key order.
    pub fn keys(&self) -> impl Iterator<Item = &K> + '_ {
        self.map.keys()
    }

    /// Keys whose net change is `change`, in key order.
    pub fn keys_with(&self, change: Change) -> impl Iterator<Item = &K> + '_ {
        self.map
            .iter()
            .filter(move |(_, c)| **c == change)
            .map(|(k, _)| k)
    }

    /// Number of changed keys.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Forgets every recorded change.
    pub fn clear(&mut self) {
        self.map.clear();
    }
}

impl<K: Ord> Extend<(K, Change)> for ChangeSet<K> {
    fn extend<I: IntoIterator<Item = (K, Change)>>(&mut self, iter: I) {
        for (k, c) in iter {
            self.record(k, c);
        }
    }
}

impl<K: Ord> FromIterator<(K, Change)> for ChangeSet<K> {
    fn from_iter<I: IntoIterator<Item = (K, Change)>>(iter: I) -> Self {
        let mut cs = ChangeSet::new();
        cs.extend(iter);
        cs
    }
}

impl<K: Ord + Send + 'static> NodeData for ChangeSet<K> {
    fn clear_tracked(&mut self) {
        self.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::Change::*;
    use super::*;

    fn merged(seq: &[Change]) -> Option<Change> {
        let mut cs = ChangeSet::new();
        for c in seq {
            cs.record(1u8, *c);
        }
        cs.get(&1)
    }

    #[test]
    fn merge_rules() {
        assert_eq!(merged(&[Inserted]), Some(Inserted));
        assert_eq!(merged(&[Inserted, Updated]), Some(Inserted));
        assert_eq!(merged(&[Inserted, Deleted]), None);
        assert_eq!(merged(&[Inserted, Deleted, Inserted]), Some(Inserted));
        assert_eq!(merged(&[Updated, Updated]), Some(Updated));
        assert_eq!(merged(&[Updated, Deleted]), Some(Deleted));
        assert_eq!(merged(&[Deleted, Inserted]), Some(Updated));
        assert_eq!(merged(&[Deleted, Inserted, Deleted]), Some(Deleted));
        assert_eq!(merged(&[Deleted, Deleted]), Some(Deleted));
    }

    #[test]
    fn iteration_and_filters() {
        let mut cs: ChangeSet<&str> = [("b", Updated), ("a", Inserted), ("c", Deleted)]
            .into_iter()
            .collect();
        assert_eq!(cs.len(), 3);
        assert_eq!(cs.keys().copied().collect::<Vec<_>>(), ["a", "b", "c"]);
        assert_eq!(cs.keys_with(Deleted).copied().collect::<Vec<_>>(), ["c"]);
        let mut other = ChangeSet::new();
        other.deleted("a");
        other.inserted("c");
        cs.merge(other);
        assert_eq!(
            cs.iter().map(|(k, c)| (*k, c)).collect::<Vec<_>>(),
            [("b", Updated), ("c", Updated)]
        );
        assert!(cs.contains(&"b"));
        cs.clear_tracked();
        assert!(cs.is_empty());
    }
}
