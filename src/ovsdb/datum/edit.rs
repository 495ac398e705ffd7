//! [`SetEdit`]: a change to a set column given as the elements to add and to remove, so that a
//! write costs the size of the change, not of the set. It is sent as an OVSDB `mutate`
//! (`delete` then `insert`), the same partial update upstream's IDL makes; a concurrent writer's
//! change to other elements is merged by the server rather than overwritten.

use std::collections::BTreeSet;

use super::{Atom, AtomSet};

/// Elements to add to and remove from a set: applied to a value `v` it gives
/// `(v - delete) + insert`. The two sets are disjoint (a later call wins).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SetEdit {
    insert: BTreeSet<Atom>,
    delete: BTreeSet<Atom>,
}

impl SetEdit {
    pub fn new() -> SetEdit {
        SetEdit::default()
    }

    pub fn is_empty(&self) -> bool {
        self.insert.is_empty() && self.delete.is_empty()
    }

    /// The elements added / removed.
    pub fn inserted(&self) -> &BTreeSet<Atom> {
        &self.insert
    }
    pub fn deleted(&self) -> &BTreeSet<Atom> {
        &self.delete
    }

    /// Add `a` (cancels an earlier removal of it).
    pub fn add(&mut self, a: Atom) {
        self.delete.remove(&a);
        self.insert.insert(a);
    }

    /// Remove `a` (cancels an earlier addition of it).
    pub fn remove(&mut self, a: Atom) {
        self.insert.remove(&a);
        self.delete.insert(a);
    }

    /// This edit followed by `later`.
    pub fn then(&mut self, later: &SetEdit) {
        for a in &later.delete {
            self.remove(a.clone());
        }
        for a in &later.insert {
            self.add(a.clone());
        }
    }

    /// Apply to `s`. A few elements are inserted/removed in place (a binary search and a
    /// chunk copy each, see [`AtomSet::few_edits`]); many are merged in one pass.
    pub fn apply_to(&self, s: &mut AtomSet) {
        let k = self.insert.len() + self.delete.len();
        if k <= 8 || s.few_edits(k) {
            for a in &self.delete {
                s.remove(a);
            }
            for a in &self.insert {
                s.insert(a.clone());
            }
            return;
        }
        // Sorted, plus a sorted tail: the adaptive sort of `collect` is linear here.
        let kept = s.iter().filter(|a| !self.delete.contains(a));
        *s = kept.chain(&self.insert).cloned().collect();
    }

    /// What this edit really changes in `cur`: the elements it toggles (added ones not in
    /// `cur`, removed ones in it), sorted — exactly the `modify` diff its echo carries.
    /// Costs the edit's size times a binary search, not the size of `cur`.
    pub fn toggles(&self, cur: &AtomSet) -> AtomSet {
        let ins = self.insert.iter().filter(|a| !cur.contains(a));
        let del = self.delete.iter().filter(|a| cur.contains(a));
        ins.chain(del).cloned().collect()
    }

    /// The elements to send: (`insert` not yet in `cur`, `delete` present in `cur`).
    pub fn effect(&self, cur: &AtomSet) -> (AtomSet, AtomSet) {
        let ins = self.insert.iter().filter(|a| !cur.contains(a)).cloned();
        let del = self.delete.iter().filter(|a| cur.contains(a)).cloned();
        (
            AtomSet::from_sorted_vec(ins.collect()),
            AtomSet::from_sorted_vec(del.collect()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn set(v: &[i64]) -> AtomSet {
        v.iter().map(|&i| Atom::Integer(i)).collect()
    }

    #[test]
    fn later_calls_win_and_effect_is_what_changes() {
        let mut e = SetEdit::new();
        e.add(Atom::Integer(1));
        e.remove(Atom::Integer(1));
        e.add(Atom::Integer(2));
        e.remove(Atom::Integer(3));
        let cur = set(&[2, 3, 4]);
        let (ins, del) = e.effect(&cur);
        assert!(ins.is_empty(), "2 is already there");
        assert_eq!(
            del,
            set(&[1, 3])
                .iter()
                .filter(|a| cur.contains(a))
                .cloned()
                .collect()
        );
        assert_eq!(e.toggles(&cur), set(&[3]));
        let mut s = cur.clone();
        e.apply_to(&mut s);
        assert_eq!(s, set(&[2, 4]));
    }

    proptest! {
        /// apply_to (both strategies) and then() agree with BTreeSet arithmetic, and applying
        /// the toggles as a symmetric difference gives the same set (what the echo does).
        #[test]
        fn matches_btreeset(
            base in proptest::collection::btree_set(0i64..40, 0..30),
            ops1 in proptest::collection::vec((any::<bool>(), 0i64..40), 0..20),
            ops2 in proptest::collection::vec((any::<bool>(), 0i64..40), 0..20),
        ) {
            let mut want: BTreeSet<i64> = base.clone();
            let mut e1 = SetEdit::new();
            for (add, x) in &ops1 {
                if *add { e1.add(Atom::Integer(*x)); want.insert(*x); }
                else { e1.remove(Atom::Integer(*x)); want.remove(x); }
            }
            let mut e2 = SetEdit::new();
            for (add, x) in &ops2 {
                if *add { e2.add(Atom::Integer(*x)); want.insert(*x); }
                else { e2.remove(Atom::Integer(*x)); want.remove(x); }
            }
            let base: AtomSet = base.iter().map(|&i| Atom::Integer(i)).collect();
            let mut e = e1.clone();
            e.then(&e2);
            let mut s = base.clone();
            e.apply_to(&mut s);
            let want: AtomSet = want.iter().map(|&i| Atom::Integer(i)).collect();
            prop_assert_eq!(&s, &want);
            let t = e.toggles(&base);
            let via_diff: AtomSet = base.symmetric_difference(&t).cloned().collect();
            prop_assert_eq!(&via_diff, &want);
            let (ins, del) = e.effect(&base);
            let via_effect: AtomSet = base
                .iter()
                .filter(|a| !del.contains(a))
                .cloned()
                .chain(ins.iter().cloned())
                .collect();
            prop_assert_eq!(via_effect, want);
        }
    }
}
