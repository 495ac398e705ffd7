//! Generic incremental-processing engine (no OVN knowledge).
//!
//! Modelled on OVN's `lib/inc-proc-eng.c`, but typed and without `unsafe`, on a petgraph DAG.
//!
//! * **Input nodes** have no inputs; their data is fed from outside (the daemon pushes a table's
//!   change set through [`Engine::input_mut`], which marks the input as changed).
//! * **Compute nodes** have inputs (edges), data that downstream nodes read, a full `recompute`,
//!   and optionally one change handler per input. When an input changed, the handler for it runs
//!   and says [`HandlerResult::HandledUpdated`], [`HandlerResult::HandledUnchanged`] or
//!   [`HandlerResult::Unhandled`]; an unhandled change or an input without a handler makes the
//!   engine fall back to `recompute`. A node none of whose inputs changed is not touched.
//! * A node's data carries its own per-run change set (see [`NodeData::clear_tracked`] and the
//!   reusable [`ChangeSet`]) so its dependents can be incremental too. Handlers and `recompute`
//!   get read access to the node's inputs (through [`Ctx`]) and to an external context `C` (e.g.
//!   the database replicas), and mutable access to the node's own data only.
//!
//! Per run ([`Engine::run`]) nodes are visited in topological order (depth-first post-order from
//! the sinks, inputs in the order they were added: the order upstream shows in
//! `inc-engine/show-stats`). [`Engine::force_recompute`] makes the next run recompute every
//! compute node. `run(ctx, false)` *cancels* instead of recomputing: the run stops at the first
//! node that would need a recompute, the input changes stay pending for the next run, and nodes
//! that already did work in the canceled run (and everything downstream of them) are recomputed
//! next time, so no change is applied twice or lost. After a completed run the caller reads what
//! it needs and calls [`Engine::clear_tracked`].
//!
//! The text interfaces match upstream exactly: [`Engine::show_stats`] (`inc-engine/show-stats`),
//! [`Engine::dump_graph`] (`--dump-inc-proc-graph`), and the `inc_proc_eng` log lines
//! `node: <name>, recompute (<reason>) took <n>ms` (INFO, rate limited, when slower than the
//! compute-log-timeout, else DBG).
//!
//! # Example
//!
//! ```
//! use std::collections::BTreeMap;
//! use ovn_ic::engine::{
//!     Change, ChangeSet, EngineBuilder, HandlerResult, NodeData, Outcome, RunStatus,
//! };
//!
//! /// Input node data: the rows of a table plus what changed since the last run.
//! #[derive(Default)]
//! struct Prices {
//!     rows: BTreeMap<String, i64>,
//!     changes: ChangeSet<String>,
//! }
//! impl NodeData for Prices {
//!     fn clear_tracked(&mut self) {
//!         self.changes.clear();
//!     }
//! }
//! impl Prices {
//!     fn set(&mut self, k: &str, v: i64) {
//!         let change = if self.rows.insert(k.into(), v).is_some() {
//!             Change::Updated
//!         } else {
//!             Change::Inserted
//!         };
//!         self.changes.record(k.into(), change);
//!     }
//! }
//!
//! /// Compute node data: a total, plus the contribution of each key so that a change can be
//! /// applied without looking at the other rows.
//! #[derive(Default)]
//! struct Total {
//!     seen: BTreeMap<String, i64>,
//!     sum: i64,
//! }
//! impl NodeData for Total {}
//!
//! let mut b = EngineBuilder::<()>::new();
//! let prices = b.add_input("prices", Prices::default()).unwrap();
//! let total = b
//!     .node("total", Total::default())
//!     .input_with(prices, move |ctx, t: &mut Total| {
//!         let p = ctx.get(prices);
//!         for (k, _) in p.changes.iter() {
//!             let old = t.seen.remove(k).unwrap_or(0);
//!             let new = p.rows.get(k).copied().unwrap_or(0);
//!             if p.rows.contains_key(k) {
//!                 t.seen.insert(k.clone(), new);
//!             }
//!             t.sum += new - old;
//!         }
//!         HandlerResult::HandledUpdated
//!     })
//!     .recompute(move |ctx, t| {
//!         t.seen = ctx.get(prices).rows.clone();
//!         t.sum = t.seen.values().sum();
//!         Outcome::Updated
//!     })
//!     .unwrap();
//! let mut engine = b.build().unwrap();
//!
//! // Start-up: a forced full recompute.
//! engine.force_recompute();
//! engine.input_mut(prices).unwrap().set("apple", 3);
//! assert_eq!(engine.run(&(), true), RunStatus::Completed);
//! engine.clear_tracked();
//! assert_eq!(engine.data(total).unwrap().sum, 3);
//!
//! // Later changes go through the handler: no recompute.
//! engine.input_mut(prices).unwrap().set("pear", 4);
//! engine.run(&(), true);
//! engine.clear_tracked();
//! assert_eq!(engine.data(total).unwrap().sum, 7);
//! assert_eq!(engine.show_stats(Some("total"), Some("recompute")), "1");
//! assert_eq!(engine.show_stats(Some("total"), Some("compute")), "1");
//! ```

mod builder;
mod changes;
mod ratelimit;
mod run;

#[cfg(test)]
mod tests;

use std::any::Any;
use std::fmt;
use std::marker::PhantomData;

pub use builder::{EngineBuilder, NodeBuilder};
pub use changes::{Change, ChangeSet};
pub use run::{Ctx, Engine, NodeStats};

/// The log module (`tracing` target) of the engine, as upstream's `inc_proc_eng`.
pub const LOG_TARGET: &str = "inc_proc_eng";

/// Default compute-log-timeout: recomputes slower than this are logged at INFO.
pub const DEFAULT_COMPUTE_LOG_TIMEOUT_MS: u64 = 500;

/// Data owned by a node and read by its dependents.
///
/// `clear_tracked` resets the per-run change set the data carries (if any). The engine calls it
/// for compute nodes at the start of every run and for every node in [`Engine::clear_tracked`];
/// input nodes keep their changes until a completed run has processed them.
///
/// A node's change set describes how its data differs from what its dependents last saw. So it
/// is *not* cleared before a fallback recompute (a handler may have applied part of the changes
/// before returning [`HandlerResult::Unhandled`]), nor at the start of the run after a canceled
/// run in which the node did work; a recompute should therefore add to the change set (e.g. by
/// diffing old and new contents; [`ChangeSet`] merges), or dependents must treat
/// [`Ctx::recomputed`] inputs as "anything may have changed". A node in either situation reports
/// `Updated` even if its recompute says `Unchanged`.
pub trait NodeData: Any + Send {
    /// Forget the changes tracked for the current run; the data itself stays.
    fn clear_tracked(&mut self) {}
}

impl NodeData for () {}

/// What a full recompute did to the node's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The data changed; dependents will be computed.
    Updated,
    /// The data is as before; dependents are not touched (unless another input changed).
    Unchanged,
}

/// What a change handler did with the change of its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HandlerResult {
    /// The change cannot be applied incrementally: the engine recomputes the node.
    Unhandled,
    /// Applied; the node's data changed.
    HandledUpdated,
    /// Applied; the node's data did not change.
    HandledUnchanged,
}

impl From<Outcome> for HandlerResult {
    fn from(o: Outcome) -> Self {
        match o {
            Outcome::Updated => HandlerResult::HandledUpdated,
            Outcome::Unchanged => HandlerResult::HandledUnchanged,
        }
    }
}

/// The state of a node in (or after) the current run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeState {
    /// Not visited yet in this run (or the engine never ran).
    Stale,
    /// Its data changed in this run.
    Updated,
    /// Visited; its data did not change.
    Unchanged,
    /// It needed a recompute that was not allowed; the run stopped there.
    Canceled,
}

impl NodeState {
    /// Upstream's name for the state (used in debug logs).
    pub fn as_str(self) -> &'static str {
        match self {
            NodeState::Stale => "Stale",
            NodeState::Updated => "Updated",
            NodeState::Unchanged => "Unchanged",
            NodeState::Canceled => "Canceled",
        }
    }
}

impl fmt::Display for NodeState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a call to [`Engine::run`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RunStatus {
    /// Every node was visited; the force-recompute request (if any) has been served.
    Completed,
    /// A node needed a recompute but `recompute_allowed` was false; the run stopped there and the
    /// pending input changes are kept.
    Canceled,
    /// Nothing ran: the previous run was canceled and recompute is still not allowed.
    Skipped,
}

/// Errors from building or addressing the engine. All are programming errors in the graph
/// wiring, reported instead of panicking.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    #[error("invalid engine node name \"{0}\" (use letters, digits and '_')")]
    InvalidName(String),
    #[error("duplicate engine node name \"{0}\"")]
    DuplicateName(String),
    #[error("engine node \"{0}\" has no inputs (use add_input for input nodes)")]
    NoInputs(String),
    #[error("engine node \"{node}\" lists input \"{input}\" twice")]
    DuplicateInput { node: String, input: String },
    #[error("handle does not refer to a node of this engine")]
    ForeignHandle,
    #[error("engine node \"{node}\" does not hold data of type {expected}")]
    TypeMismatch {
        node: String,
        expected: &'static str,
    },
    #[error("no engine node named \"{0}\"")]
    UnknownNode(String),
    #[error("engine node \"{0}\" is not an input node")]
    NotAnInput(String),
    #[error("engine node \"{node}\" has no input \"{input}\"")]
    UndeclaredInput { node: String, input: String },
    #[error("engine graph has a cycle")]
    Cycle,
    #[error("engine graph is empty")]
    Empty,
}

/// A typed reference to a node, returned when the node is added. Reading a node's data through
/// its handle needs no downcasting by the caller; the type is checked once, when the handle is
/// used as an input, and again (cheaply) on every access.
pub struct Handle<T> {
    engine: u64,
    index: usize,
    _type: PhantomData<fn() -> T>,
}

impl<T> Handle<T> {
    fn new(engine: u64, index: usize) -> Self {
        Handle {
            engine,
            index,
            _type: PhantomData,
        }
    }
}

impl<T> Clone for Handle<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Handle<T> {}

impl<T> PartialEq for Handle<T> {
    fn eq(&self, other: &Self) -> bool {
        self.engine == other.engine && self.index == other.index
    }
}

impl<T> Eq for Handle<T> {}

impl<T> std::hash::Hash for Handle<T> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.engine.hash(state);
        self.index.hash(state);
    }
}

impl<T> fmt::Debug for Handle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Handle({}#{})", self.engine, self.index)
    }
}

/// Node names are printed raw into DOT output and log lines, as upstream does, so they must be
/// plain identifiers.
fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}
