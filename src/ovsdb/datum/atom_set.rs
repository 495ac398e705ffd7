//! [`AtomSet`]: the elements of a set column, sorted and without duplicates.
//!
//! Almost every set is tiny (a scalar or optional column holds zero or one atom): those are one
//! boxed slice of exactly their size, 16 bytes inline, no spare capacity (see [`super::sorted`]
//! for why not a `BTreeSet`). A large set — a router's `static_routes` has one UUID per route,
//! tens of thousands once routes are learned from every AZ — is a sequence of shared,
//! immutable chunks instead. A change to one row of the replica keeps the old row for the
//! change handlers and stores an edited copy; with chunks, that copy and one toggle cost one
//! chunk (a few hundred atoms) instead of the whole set, and comparing or diffing the old and
//! the new version skips the chunks they still share. So the per-change cost of learning one
//! more route does not grow with the number of routes.
//!
//! Equality, ordering and hashing are those of `BTreeSet<Atom>` whatever the representation:
//! lexicographic over the elements in order, hash = length prefix then the elements.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use super::sorted::Merged;
use super::Atom;

/// Sets up to this size are one flat slice.
const FLAT_MAX: usize = 256;
/// A large set is cut into chunks of this size when it is built…
const CHUNK: usize = 256;
/// …and a chunk that grows beyond this is split in two.
const CHUNK_MAX: usize = 2 * CHUNK;
/// A chunked set that shrinks to this size becomes flat again.
const FLAT_AGAIN: usize = FLAT_MAX / 2;

#[derive(Clone)]
enum Repr {
    Flat(Box<[Atom]>),
    Chunked(Box<Chunks>),
}

/// The chunks of a large set: each non-empty and sorted, every element of one below every
/// element of the next.
#[derive(Clone)]
struct Chunks {
    len: usize,
    parts: Vec<Arc<[Atom]>>,
}

impl Chunks {
    fn from_sorted(v: Vec<Atom>) -> Chunks {
        let len = v.len();
        let mut parts = Vec::with_capacity(len.div_ceil(CHUNK));
        let mut it = v.into_iter();
        loop {
            let part: Vec<Atom> = it.by_ref().take(CHUNK).collect();
            if part.is_empty() {
                break;
            }
            parts.push(Arc::from(part));
        }
        Chunks { len, parts }
    }

    /// The chunk `a` belongs in: the first whose last element is not below `a`, or the last
    /// chunk when `a` is above every element.
    fn part_of(&self, a: &Atom) -> usize {
        let i = self
            .parts
            .partition_point(|p| p.last().is_some_and(|l| l < a));
        i.min(self.parts.len().saturating_sub(1))
    }
}

/// A set of atoms in ascending [`Atom`] order, without duplicates.
#[derive(Clone)]
pub struct AtomSet(Repr);

impl Default for AtomSet {
    fn default() -> Self {
        AtomSet(Repr::Flat(Box::default()))
    }
}

impl AtomSet {
    /// The empty set (no allocation).
    pub fn new() -> AtomSet {
        AtomSet::default()
    }

    /// Wrap a vector already sorted and deduplicated (checked in debug builds), dropping spare
    /// capacity.
    pub(crate) fn from_sorted_vec(v: Vec<Atom>) -> AtomSet {
        debug_assert!(v.windows(2).all(|w| w[0] < w[1]));
        if v.len() <= FLAT_MAX {
            AtomSet(Repr::Flat(v.into_boxed_slice()))
        } else {
            AtomSet(Repr::Chunked(Box::new(Chunks::from_sorted(v))))
        }
    }

    /// The elements as one vector (a copy for a chunked set).
    fn into_vec(self) -> Vec<Atom> {
        match self.0 {
            Repr::Flat(s) => s.into_vec(),
            Repr::Chunked(c) => {
                let mut v = Vec::with_capacity(c.len);
                for p in &c.parts {
                    v.extend_from_slice(p);
                }
                v
            }
        }
    }

    pub fn len(&self) -> usize {
        match &self.0 {
            Repr::Flat(s) => s.len(),
            Repr::Chunked(c) => c.len,
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The elements in ascending order.
    pub fn iter(&self) -> Iter<'_> {
        match &self.0 {
            Repr::Flat(s) => Iter::new(s, &[], s.len()),
            Repr::Chunked(c) => Iter::new(&[], &c.parts, c.len),
        }
    }
    pub fn first(&self) -> Option<&Atom> {
        match &self.0 {
            Repr::Flat(s) => s.first(),
            Repr::Chunked(c) => c.parts.first().and_then(|p| p.first()),
        }
    }
    pub fn last(&self) -> Option<&Atom> {
        match &self.0 {
            Repr::Flat(s) => s.last(),
            Repr::Chunked(c) => c.parts.last().and_then(|p| p.last()),
        }
    }
    pub fn contains(&self, a: &Atom) -> bool {
        self.get(a).is_some()
    }
    pub fn get(&self, a: &Atom) -> Option<&Atom> {
        let s: &[Atom] = match &self.0 {
            Repr::Flat(s) => s,
            Repr::Chunked(c) => c.parts.get(c.part_of(a))?,
        };
        s.binary_search(a).ok().map(|i| &s[i])
    }
    /// Insert `a`; false if it was already present (the set is then unchanged). A chunked set
    /// copies only the chunk `a` goes in.
    pub fn insert(&mut self, a: Atom) -> bool {
        match &mut self.0 {
            Repr::Flat(s) => match s.binary_search(&a) {
                Ok(_) => false,
                Err(i) => {
                    let mut v = std::mem::take(s).into_vec();
                    v.insert(i, a);
                    *self = AtomSet::from_sorted_vec(v);
                    true
                }
            },
            Repr::Chunked(c) => {
                let pi = c.part_of(&a);
                let p = &c.parts[pi];
                let Err(i) = p.binary_search(&a) else {
                    return false;
                };
                let mut v = Vec::with_capacity(p.len() + 1);
                v.extend_from_slice(&p[..i]);
                v.push(a);
                v.extend_from_slice(&p[i..]);
                if v.len() > CHUNK_MAX {
                    let right = v.split_off(v.len() / 2);
                    c.parts[pi] = Arc::from(v);
                    c.parts.insert(pi + 1, Arc::from(right));
                } else {
                    c.parts[pi] = Arc::from(v);
                }
                c.len += 1;
                true
            }
        }
    }
    /// Remove `a`; false if it was absent. A chunked set copies only the chunk `a` was in.
    pub fn remove(&mut self, a: &Atom) -> bool {
        match &mut self.0 {
            Repr::Flat(s) => match s.binary_search(a) {
                Ok(i) => {
                    let mut v = std::mem::take(s).into_vec();
                    v.remove(i);
                    *s = v.into_boxed_slice();
                    true
                }
                Err(_) => false,
            },
            Repr::Chunked(c) => {
                let pi = c.part_of(a);
                let p = &c.parts[pi];
                let Ok(i) = p.binary_search(a) else {
                    return false;
                };
                if p.len() == 1 {
                    c.parts.remove(pi);
                } else {
                    let mut v = Vec::with_capacity(p.len() - 1);
                    v.extend_from_slice(&p[..i]);
                    v.extend_from_slice(&p[i + 1..]);
                    c.parts[pi] = Arc::from(v);
                }
                c.len -= 1;
                if c.len <= FLAT_AGAIN {
                    let v = std::mem::take(self).into_vec();
                    *self = AtomSet::from_sorted_vec(v);
                }
                true
            }
        }
    }
    pub fn clear(&mut self) {
        *self = AtomSet::default();
    }
    /// True when toggling `k` elements one by one ([`AtomSet::insert`]/[`AtomSet::remove`],
    /// a binary search and a chunk or small-set copy each) is cheaper than rebuilding the set
    /// in one merge: a few elements of a set that is not tiny, or fewer elements than the set
    /// has chunks. The echo of ten learned routes on a router with 100 000 must not copy the
    /// 100 000.
    pub fn few_edits(&self, k: usize) -> bool {
        let n = self.len();
        (k <= 8 && n > 64) || k.saturating_mul(CHUNK) <= n
    }
    /// Elements of `self` not in `other`, ascending: a linear merge that skips the chunks both
    /// share.
    pub fn difference<'a>(&'a self, other: &'a AtomSet) -> impl Iterator<Item = &'a Atom> + 'a {
        SetMerge::new(self, other, true).filter_map(|m| match m {
            Merged::Left(a) => Some(a),
            _ => None,
        })
    }
    /// Elements in exactly one of `self` and `other`, ascending (skips shared chunks).
    pub fn symmetric_difference<'a>(
        &'a self,
        other: &'a AtomSet,
    ) -> impl Iterator<Item = &'a Atom> + 'a {
        SetMerge::new(self, other, true).filter_map(|m| match m {
            Merged::Left(a) | Merged::Right(a) => Some(a),
            Merged::Both(..) => None,
        })
    }
    /// Elements in both sets, ascending.
    pub fn intersection<'a>(&'a self, other: &'a AtomSet) -> impl Iterator<Item = &'a Atom> + 'a {
        SetMerge::new(self, other, false).filter_map(|m| match m {
            Merged::Both(a, _) => Some(a),
            _ => None,
        })
    }
    /// Elements in either set, ascending.
    pub fn union<'a>(&'a self, other: &'a AtomSet) -> impl Iterator<Item = &'a Atom> + 'a {
        SetMerge::new(self, other, false).map(|m| match m {
            Merged::Left(a) | Merged::Right(a) | Merged::Both(a, _) => a,
        })
    }

    /// How many chunks (of a large set) there are (tests).
    #[cfg(test)]
    pub(crate) fn chunks(&self) -> usize {
        match &self.0 {
            Repr::Flat(_) => 0,
            Repr::Chunked(c) => c.parts.len(),
        }
    }

    /// How many chunks `self` and `other` share (tests: what an edit copied).
    #[cfg(test)]
    pub(crate) fn shared_chunks(&self, other: &AtomSet) -> usize {
        match (&self.0, &other.0) {
            (Repr::Chunked(a), Repr::Chunked(b)) => a
                .parts
                .iter()
                .filter(|p| b.parts.iter().any(|q| Arc::ptr_eq(p, q)))
                .count(),
            _ => 0,
        }
    }
}

impl PartialEq for AtomSet {
    fn eq(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            (Repr::Flat(a), Repr::Flat(b)) => a == b,
            _ => {
                self.len() == other.len()
                    && SetMerge::new(self, other, true).all(|m| matches!(m, Merged::Both(..)))
            }
        }
    }
}

impl Eq for AtomSet {}

impl PartialOrd for AtomSet {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for AtomSet {
    fn cmp(&self, other: &Self) -> Ordering {
        self.iter().cmp(other.iter())
    }
}

impl Hash for AtomSet {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // What `[Atom]` and `BTreeSet<Atom>` hash: the length, then the elements.
        state.write_usize(self.len());
        for a in self.iter() {
            a.hash(state);
        }
    }
}

impl fmt::Debug for AtomSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl FromIterator<Atom> for AtomSet {
    fn from_iter<I: IntoIterator<Item = Atom>>(iter: I) -> AtomSet {
        let mut v: Vec<Atom> = iter.into_iter().collect();
        // Atoms that compare equal are identical, so which duplicate survives does not matter.
        // The stable sort is adaptive: a sorted set with a few atoms appended (an edit of a
        // large set) sorts in linear time, where the unstable one would not.
        v.sort();
        v.dedup();
        AtomSet::from_sorted_vec(v)
    }
}

impl Extend<Atom> for AtomSet {
    fn extend<I: IntoIterator<Item = Atom>>(&mut self, iter: I) {
        let mut iter = iter.into_iter().peekable();
        if iter.peek().is_none() {
            return;
        }
        let mut v = std::mem::take(self).into_vec();
        v.extend(iter);
        v.sort();
        v.dedup();
        *self = AtomSet::from_sorted_vec(v);
    }
}

impl<'a> Extend<&'a Atom> for AtomSet {
    fn extend<I: IntoIterator<Item = &'a Atom>>(&mut self, iter: I) {
        self.extend(iter.into_iter().cloned());
    }
}

impl<const N: usize> From<[Atom; N]> for AtomSet {
    fn from(a: [Atom; N]) -> AtomSet {
        a.into_iter().collect()
    }
}

impl From<std::collections::BTreeSet<Atom>> for AtomSet {
    fn from(s: std::collections::BTreeSet<Atom>) -> AtomSet {
        AtomSet::from_sorted_vec(s.into_iter().collect())
    }
}

impl IntoIterator for AtomSet {
    type Item = Atom;
    type IntoIter = std::vec::IntoIter<Atom>;
    fn into_iter(self) -> Self::IntoIter {
        self.into_vec().into_iter()
    }
}

impl<'a> IntoIterator for &'a AtomSet {
    type Item = &'a Atom;
    type IntoIter = Iter<'a>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// The elements of one chunk.
fn chunk_atoms(p: &Arc<[Atom]>) -> &[Atom] {
    p
}

type Chunked<'a> = std::iter::FlatMap<std::slice::Iter<'a, Arc<[Atom]>>, &'a [Atom], ChunkAtoms>;
type ChunkAtoms = for<'b> fn(&'b Arc<[Atom]>) -> &'b [Atom];

/// Iterator over a set's elements in ascending order (like `btree_set::Iter`): a flat set's
/// slice, then (for a chunked set) each chunk's, with the count left for `len`.
#[derive(Clone, Debug)]
pub struct Iter<'a> {
    inner: std::iter::Chain<std::slice::Iter<'a, Atom>, Chunked<'a>>,
    len: usize,
}

impl<'a> Iter<'a> {
    fn new(flat: &'a [Atom], parts: &'a [Arc<[Atom]>], len: usize) -> Iter<'a> {
        let chunks = parts.iter().flat_map(chunk_atoms as ChunkAtoms);
        Iter {
            inner: flat.iter().chain(chunks),
            len,
        }
    }
}

impl<'a> Iterator for Iter<'a> {
    type Item = &'a Atom;
    fn next(&mut self) -> Option<&'a Atom> {
        let a = self.inner.next()?;
        self.len -= 1;
        Some(a)
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.len, Some(self.len))
    }
}

impl DoubleEndedIterator for Iter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        let a = self.inner.next_back()?;
        self.len -= 1;
        Some(a)
    }
}

impl ExactSizeIterator for Iter<'_> {}
impl std::iter::FusedIterator for Iter<'_> {}

/// A position in a set for [`SetMerge`].
struct Cursor<'a> {
    /// What is left of the current chunk (the whole of a flat set).
    cur: &'a [Atom],
    /// The current chunk, while `cur` is all of it.
    whole: Option<&'a Arc<[Atom]>>,
    /// The chunks after the current one.
    rest: &'a [Arc<[Atom]>],
}

impl<'a> Cursor<'a> {
    fn new(s: &'a AtomSet) -> Cursor<'a> {
        match &s.0 {
            Repr::Flat(v) => Cursor {
                cur: v,
                whole: None,
                rest: &[],
            },
            Repr::Chunked(c) => {
                let mut k = Cursor {
                    cur: &[],
                    whole: None,
                    rest: &c.parts,
                };
                k.refill();
                k
            }
        }
    }
    /// Move to the next chunk while the current one is used up.
    fn refill(&mut self) {
        while self.cur.is_empty() {
            let Some((p, rest)) = self.rest.split_first() else {
                self.whole = None;
                return;
            };
            self.cur = p;
            self.whole = Some(p);
            self.rest = rest;
        }
    }
    fn head(&self) -> Option<&'a Atom> {
        self.cur.first()
    }
    fn advance(&mut self) {
        self.cur = &self.cur[1..];
        self.whole = None;
        self.refill();
    }
    fn skip_chunk(&mut self) {
        self.cur = &[];
        self.refill();
    }
}

/// A merge of two sets in ascending order. With `skip_shared`, a chunk both sets hold (the
/// same allocation, so the same elements) at the same point is passed over without a step:
/// for uses that ignore the elements in both (differences, equality).
struct SetMerge<'a> {
    a: Cursor<'a>,
    b: Cursor<'a>,
    skip_shared: bool,
}

impl<'a> SetMerge<'a> {
    fn new(a: &'a AtomSet, b: &'a AtomSet, skip_shared: bool) -> SetMerge<'a> {
        SetMerge {
            a: Cursor::new(a),
            b: Cursor::new(b),
            skip_shared,
        }
    }
}

impl<'a> Iterator for SetMerge<'a> {
    type Item = Merged<'a, Atom>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.skip_shared {
            while let (Some(x), Some(y)) = (self.a.whole, self.b.whole) {
                if !Arc::ptr_eq(x, y) {
                    break;
                }
                self.a.skip_chunk();
                self.b.skip_chunk();
            }
        }
        #[cfg(test)]
        tests::STEPS.with(|s| s.set(s.get() + 1));
        match (self.a.head(), self.b.head()) {
            (Some(x), Some(y)) => Some(match x.cmp(y) {
                Ordering::Less => {
                    self.a.advance();
                    Merged::Left(x)
                }
                Ordering::Greater => {
                    self.b.advance();
                    Merged::Right(y)
                }
                Ordering::Equal => {
                    self.a.advance();
                    self.b.advance();
                    Merged::Both(x, y)
                }
            }),
            (Some(x), None) => {
                self.a.advance();
                Some(Merged::Left(x))
            }
            (None, Some(y)) => {
                self.b.advance();
                Some(Merged::Right(y))
            }
            (None, None) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ovsdb::datum::sorted::tests::{atom, hash_of};
    use proptest::prelude::*;
    use std::cell::Cell;
    use std::collections::BTreeSet;

    thread_local! {
        /// Steps taken by [`SetMerge`] on this thread.
        pub(super) static STEPS: Cell<usize> = const { Cell::new(0) };
    }

    fn steps<R>(f: impl FnOnce() -> R) -> (R, usize) {
        STEPS.with(|s| s.set(0));
        let r = f();
        (r, STEPS.with(Cell::get))
    }

    fn ints(r: impl IntoIterator<Item = i64>) -> AtomSet {
        r.into_iter().map(Atom::Integer).collect()
    }

    /// Everything a set is checked against a `BTreeSet` for.
    fn same_as_btreeset(
        sa: &AtomSet,
        sb: &AtomSet,
        ba: &BTreeSet<Atom>,
        bb: &BTreeSet<Atom>,
        probe: &Atom,
    ) -> Result<(), TestCaseError> {
        prop_assert!(sa.iter().eq(ba.iter()));
        prop_assert!(sa.iter().rev().eq(ba.iter().rev()));
        prop_assert_eq!(sa.iter().len(), ba.len());
        prop_assert_eq!(sa.len(), ba.len());
        prop_assert_eq!(sa.first(), ba.first());
        prop_assert_eq!(sa.last(), ba.last());
        prop_assert_eq!(sa == sb, ba == bb);
        prop_assert_eq!(sa.cmp(sb), ba.cmp(bb));
        prop_assert_eq!(hash_of(sa), hash_of(ba));
        prop_assert_eq!(format!("{sa:?}"), format!("{ba:?}"));
        prop_assert_eq!(sa.contains(probe), ba.contains(probe));
        prop_assert_eq!(sa.get(probe), ba.get(probe));
        prop_assert!(sa.difference(sb).eq(ba.difference(bb)));
        prop_assert!(sa.symmetric_difference(sb).eq(ba.symmetric_difference(bb)));
        prop_assert!(sa.intersection(sb).eq(ba.intersection(bb)));
        prop_assert!(sa.union(sb).eq(ba.union(bb)));
        Ok(())
    }

    proptest! {
        /// Small (flat) sets: same elements, order, equality, ordering, hash and Debug as a
        /// BTreeSet.
        #[test]
        fn set_behaves_like_btreeset(a in proptest::collection::vec(atom(), 0..8),
                                     b in proptest::collection::vec(atom(), 0..8),
                                     probe in atom()) {
            let (ba, bb): (BTreeSet<Atom>, BTreeSet<Atom>) =
                (a.iter().cloned().collect(), b.iter().cloned().collect());
            let (sa, sb): (AtomSet, AtomSet) = (a.into_iter().collect(), b.into_iter().collect());
            same_as_btreeset(&sa, &sb, &ba, &bb, &probe)?;
            let (mut sa2, mut ba2) = (sa.clone(), ba.clone());
            prop_assert_eq!(sa2.insert(probe.clone()), ba2.insert(probe.clone()));
            prop_assert!(sa2.iter().eq(ba2.iter()));
            let (mut sa3, mut ba3) = (sa.clone(), ba.clone());
            prop_assert_eq!(sa3.remove(&probe), ba3.remove(&probe));
            prop_assert!(sa3.iter().eq(ba3.iter()));
            let (mut sa4, mut ba4) = (sa, ba);
            sa4.extend(sb.iter().cloned());
            ba4.extend(bb.iter().cloned());
            prop_assert!(sa4.iter().eq(ba4.iter()));
        }

        /// Large sets across the flat/chunked boundary, edited one element at a time from a
        /// shared copy (what the replica does to a modified row): every operation agrees with a
        /// BTreeSet, whichever representations the two operands have.
        #[test]
        fn chunked_set_behaves_like_btreeset(
            n in 0usize..1400,
            stride in 1i64..4,
            edits in proptest::collection::vec((any::<bool>(), 0i64..4200), 0..300),
            probe in 0i64..4200,
        ) {
            let ba: BTreeSet<Atom> = (0..n as i64).map(|i| Atom::Integer(i * stride)).collect();
            let sa: AtomSet = ba.iter().cloned().collect();
            let (mut sb, mut bb) = (sa.clone(), ba.clone());
            for (add, x) in edits {
                let x = Atom::Integer(x);
                if add {
                    prop_assert_eq!(sb.insert(x.clone()), bb.insert(x));
                } else {
                    prop_assert_eq!(sb.remove(&x), bb.remove(&x));
                }
            }
            let probe = Atom::Integer(probe);
            same_as_btreeset(&sa, &sb, &ba, &bb, &probe)?;
            same_as_btreeset(&sb, &sa, &bb, &ba, &probe)?;
            // Built afresh from the same elements: equal to the edited copy.
            let fresh: AtomSet = bb.iter().cloned().collect();
            same_as_btreeset(&fresh, &sb, &bb, &bb, &probe)?;
            prop_assert!(sb.clone().into_iter().eq(bb.iter().cloned()));
        }
    }

    /// Copying a large set and toggling one element shares every chunk but one, and comparing
    /// or diffing the two versions steps through that chunk only, not the set.
    #[test]
    fn an_edit_copies_and_compares_one_chunk() {
        let n = 100_000;
        let old = ints((0..n).map(|i| 2 * i));
        let mut new = old.clone();
        assert!(new.insert(Atom::Integer(2 * 50_000 + 1)));
        let Repr::Chunked(c) = &old.0 else {
            panic!("a set of {n} is chunked")
        };
        let chunks = c.parts.len();
        assert_eq!(new.shared_chunks(&old), chunks - 1);

        let (eq, s) = steps(|| old == new);
        assert!(!eq);
        assert_eq!(s, 0, "lengths differ: no merge at all");

        let (d, s) = steps(|| new.difference(&old).cloned().collect::<Vec<_>>());
        assert_eq!(d, vec![Atom::Integer(100_001)]);
        assert!(s <= 2 * CHUNK + 2, "{s} steps for a one-element difference");

        // Same length, one element swapped for another in a different chunk.
        let mut swapped = new.clone();
        assert!(swapped.remove(&Atom::Integer(0)));
        let (eq, s) = steps(|| swapped == old);
        assert!(!eq);
        assert!(s <= 2 * CHUNK + 2, "{s} steps to find the first difference");
        let (eq, s) = steps(|| swapped.clone() == swapped);
        assert!(eq);
        assert!(s <= 1, "{s} steps to compare a set with its copy");

        // The same elements in separately built chunks: equal, by a full merge.
        let rebuilt: AtomSet = swapped.iter().cloned().collect();
        let (eq, s) = steps(|| rebuilt == swapped);
        assert!(eq);
        assert!(s > n as usize / 2);
    }

    /// A chunk that grows past its limit splits; a chunked set that shrinks becomes flat.
    #[test]
    fn chunks_split_and_sets_flatten() {
        let mut s = ints(0..(FLAT_MAX as i64 + 1));
        assert!(matches!(s.0, Repr::Chunked(_)));
        for i in 0..(CHUNK_MAX as i64) {
            assert!(s.insert(Atom::Integer(1000 + i)));
        }
        let Repr::Chunked(c) = &s.0 else {
            panic!("still chunked")
        };
        assert!(c
            .parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= CHUNK_MAX));
        assert!(c.parts.len() >= 3);
        assert_eq!(c.parts.iter().map(|p| p.len()).sum::<usize>(), s.len());
        let all: Vec<Atom> = s.iter().cloned().collect();
        for a in &all[FLAT_AGAIN..] {
            assert!(s.remove(a));
        }
        assert!(matches!(s.0, Repr::Flat(_)));
        assert!(s.iter().eq(all[..FLAT_AGAIN].iter()));
    }
}
