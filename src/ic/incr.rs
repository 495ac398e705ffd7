//! The contract between the engine graph ([`super::graph`]) and a stage's change handlers.
//!
//! A stage that can process a change locally exposes, beside its full `run`:
//!
//! * `keys_for_table(v, ctx, target, table, changes) -> Result<Keys, Unhandled>`: the stage's
//!   units of work (transit switch names, chassis names, address set names, ...) that changes
//!   to one input table touch. `changes` carries the old row of updated and deleted rows, so a
//!   deleted row still maps to the key it belonged to. An empty set means the change is
//!   irrelevant to the stage.
//! * `keys_for_stage(v, ctx, upstream) -> Result<Keys, Unhandled>` where an earlier stage's
//!   writes of this run (`upstream`) feed the stage.
//! * `run_scoped(v, ctx, .., keys, out) -> Result<(), Unhandled>`: redo the work of the full
//!   run for those keys only. The contract, proven by each stage's randomized tests: starting
//!   from a converged state (a full run wants no real write), after any change, `run_scoped`
//!   on the keys the change maps to writes exactly what the full run would really write.
//!
//! Anything a stage cannot map to keys is reported as [`Unhandled`] and the engine recomputes
//! the node; the reason is logged at DBG.

use std::collections::BTreeSet;

/// Why a change cannot be handled incrementally (shown in debug logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unhandled(pub &'static str);

/// A stage's units of work touched by a change.
pub type Keys = BTreeSet<String>;
