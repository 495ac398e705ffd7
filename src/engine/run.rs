//! The engine itself: node storage, the run loop, stats, graph dump.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::marker::PhantomData;
use std::time::{Duration, Instant};

use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::Dfs;

use super::ratelimit::{RateLimiter, Verdict};
use super::{
    EngineError, Handle, HandlerResult, NodeData, NodeState, Outcome, RunStatus,
    DEFAULT_COMPUTE_LOG_TIMEOUT_MS, LOG_TARGET,
};

pub(crate) type HandlerFn<C, D> =
    Box<dyn FnMut(&Ctx<'_, C>, &mut D) -> HandlerResult + Send + 'static>;
pub(crate) type RecomputeFn<C, D> = Box<dyn FnMut(&Ctx<'_, C>, &mut D) -> Outcome + Send + 'static>;

/// A node with its data type erased; the closures stay typed inside, so running a node needs no
/// downcast at all. Only reads through a [`Handle`] downcast (and check) the data.
pub(crate) trait ErasedNode<C: ?Sized>: Send {
    fn recompute(&mut self, ctx: &Ctx<'_, C>) -> Outcome;
    fn has_handler(&self, input_pos: usize) -> bool;
    fn handle(&mut self, input_pos: usize, ctx: &Ctx<'_, C>) -> HandlerResult;
    fn clear_tracked(&mut self);
    fn data(&self) -> &dyn Any;
    fn data_mut(&mut self) -> &mut dyn Any;
}

pub(crate) struct TypedNode<D, C: ?Sized> {
    data: D,
    recompute: Option<RecomputeFn<C, D>>,
    handlers: Vec<Option<HandlerFn<C, D>>>,
    _ctx: PhantomData<fn(&C)>,
}

impl<D: NodeData, C: ?Sized> TypedNode<D, C> {
    pub(crate) fn input(data: D) -> Self {
        TypedNode {
            data,
            recompute: None,
            handlers: Vec::new(),
            _ctx: PhantomData,
        }
    }

    pub(crate) fn compute(
        data: D,
        recompute: RecomputeFn<C, D>,
        handlers: Vec<Option<HandlerFn<C, D>>>,
    ) -> Self {
        TypedNode {
            data,
            recompute: Some(recompute),
            handlers,
            _ctx: PhantomData,
        }
    }
}

impl<D: NodeData, C: ?Sized> ErasedNode<C> for TypedNode<D, C> {
    fn recompute(&mut self, ctx: &Ctx<'_, C>) -> Outcome {
        match &mut self.recompute {
            Some(f) => f(ctx, &mut self.data),
            // Input nodes are never recomputed by the run loop.
            None => Outcome::Unchanged,
        }
    }

    fn has_handler(&self, input_pos: usize) -> bool {
        matches!(self.handlers.get(input_pos), Some(Some(_)))
    }

    fn handle(&mut self, input_pos: usize, ctx: &Ctx<'_, C>) -> HandlerResult {
        match self.handlers.get_mut(input_pos) {
            Some(Some(f)) => f(ctx, &mut self.data),
            _ => HandlerResult::Unhandled,
        }
    }

    fn clear_tracked(&mut self) {
        self.data.clear_tracked();
    }

    fn data(&self) -> &dyn Any {
        &self.data
    }

    fn data_mut(&mut self) -> &mut dyn Any {
        &mut self.data
    }
}

/// Where an input node's pushed changes are in their life cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InputStatus {
    /// No changes since the last clear.
    Clean,
    /// Changes pushed and not yet processed by a completed run.
    Pending,
    /// Processed by a completed run; still readable until cleared.
    Consumed,
}

pub(crate) struct Slot<C: ?Sized> {
    pub(crate) name: String,
    pub(crate) type_id: TypeId,
    type_name: &'static str,
    node: Box<dyn ErasedNode<C>>,
    pub(crate) inputs: Vec<usize>,
    pub(crate) handler_names: Vec<Option<String>>,
    /// `Some` for input nodes.
    input: Option<InputStatus>,
    state: NodeState,
    /// Did a full recompute in this run.
    recomputed: bool,
    /// Ran a handler or recompute in this run (its data may have changed).
    worked: bool,
    /// Must recompute in the next run (it or an upstream node did work in a canceled run).
    redo: bool,
    /// Did work in a canceled run: its change set is kept (not cleared at the start of the next
    /// run) because no dependent has seen it yet, and it reports `Updated` next time.
    carry: bool,
    stats: NodeStats,
}

impl<C: ?Sized> Slot<C> {
    pub(crate) fn new(
        name: String,
        type_id: TypeId,
        type_name: &'static str,
        node: Box<dyn ErasedNode<C>>,
        inputs: Vec<usize>,
        handler_names: Vec<Option<String>>,
        is_input: bool,
    ) -> Self {
        Slot {
            name,
            type_id,
            type_name,
            node,
            inputs,
            handler_names,
            input: is_input.then_some(InputStatus::Clean),
            state: NodeState::Stale,
            recomputed: false,
            worked: false,
            redo: false,
            carry: false,
            stats: NodeStats::default(),
        }
    }

    fn set_state(&mut self, state: NodeState, reason: &str) {
        if self.state != state {
            tracing::debug!(
                target: LOG_TARGET,
                "node: {}, old_state {}, new_state {}, reason: {}.",
                self.name,
                self.state,
                state,
                reason
            );
            self.state = state;
        }
    }

    fn downcast<T: 'static>(&self) -> Result<&T, EngineError> {
        self.node
            .data()
            .downcast_ref::<T>()
            .ok_or_else(|| EngineError::TypeMismatch {
                node: self.name.clone(),
                expected: std::any::type_name::<T>(),
            })
    }

    fn downcast_mut<T: 'static>(&mut self) -> Result<&mut T, EngineError> {
        let Slot { node, name, .. } = self;
        node.data_mut()
            .downcast_mut::<T>()
            .ok_or_else(|| EngineError::TypeMismatch {
                node: name.clone(),
                expected: std::any::type_name::<T>(),
            })
    }
}

/// Per-node counters and timing, as `inc-engine/show-stats` (plus timing for metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NodeStats {
    /// Full recomputes (input nodes: every run).
    pub recompute: u64,
    /// Runs in which every changed input was handled incrementally.
    pub compute: u64,
    /// Runs canceled at this node.
    pub cancel: u64,
    /// Time the node's handlers and recompute took in the last run in which it did work.
    pub last_run: Duration,
    /// Sum of all such times since the stats were last cleared.
    pub total_run: Duration,
}

/// What a handler or recompute sees: its inputs' data and states, and the external context.
pub struct Ctx<'a, C: ?Sized> {
    engine: u64,
    /// Every node created before this one (its inputs are among them).
    before: &'a [Slot<C>],
    inputs: &'a [usize],
    node: &'a str,
    context: &'a C,
}

impl<'a, C: ?Sized> Ctx<'a, C> {
    /// The name of the node being computed.
    pub fn node_name(&self) -> &'a str {
        self.node
    }

    /// The external context passed to [`Engine::run`].
    pub fn context(&self) -> &'a C {
        self.context
    }

    fn input_slot<T>(&self, h: Handle<T>) -> Result<&'a Slot<C>, EngineError> {
        if h.engine != self.engine {
            return Err(EngineError::ForeignHandle);
        }
        let before: &'a [Slot<C>] = self.before;
        if !self.inputs.contains(&h.index) {
            let input = before
                .get(h.index)
                .map_or_else(|| format!("#{}", h.index), |s| s.name.clone());
            return Err(EngineError::UndeclaredInput {
                node: self.node.to_string(),
                input,
            });
        }
        before.get(h.index).ok_or(EngineError::ForeignHandle)
    }

    /// The data of input `h`, or an error if `h` is not one of this node's inputs.
    pub fn try_get<T: 'static>(&self, h: Handle<T>) -> Result<&'a T, EngineError> {
        self.input_slot(h)?.downcast::<T>()
    }

    /// The data of input `h`.
    ///
    /// # Panics
    /// If `h` is not one of this node's declared inputs (a wiring bug that would make the node
    /// miss changes; use [`Ctx::try_get`] to handle it instead).
    pub fn get<T: 'static>(&self, h: Handle<T>) -> &'a T {
        match self.try_get(h) {
            Ok(d) => d,
            Err(e) => panic!("{e}"),
        }
    }

    /// The data of the input named `name`, or an error if there is no such input or its data is
    /// not a `T`.
    pub fn try_input<T: 'static>(&self, name: &str) -> Result<&'a T, EngineError> {
        let before: &'a [Slot<C>] = self.before;
        let slot = self
            .inputs
            .iter()
            .filter_map(|&i| before.get(i))
            .find(|s| s.name == name)
            .ok_or_else(|| EngineError::UndeclaredInput {
                node: self.node.to_string(),
                input: name.to_string(),
            })?;
        slot.downcast::<T>()
    }

    /// The data of the input named `name` (upstream's `engine_get_input_data()`).
    ///
    /// # Panics
    /// If there is no such input or its data is not a `T` (see [`Ctx::try_input`]).
    pub fn input<T: 'static>(&self, name: &str) -> &'a T {
        match self.try_input(name) {
            Ok(d) => d,
            Err(e) => panic!("{e}"),
        }
    }

    /// Whether input `h` changed in this run (state `Updated`). False for a non-input.
    pub fn changed<T>(&self, h: Handle<T>) -> bool {
        self.input_slot(h)
            .is_ok_and(|s| s.state == NodeState::Updated)
    }

    /// Whether input `h` did a full recompute in this run, in which case its change set only
    /// holds what its recompute chose to record. False for a non-input.
    pub fn recomputed<T>(&self, h: Handle<T>) -> bool {
        self.input_slot(h).is_ok_and(|s| s.recomputed)
    }
}

/// State shared by all nodes during one run.
struct RunEnv<'a> {
    force: bool,
    allowed: bool,
    log_timeout_ms: u64,
    recompute_rl: &'a mut RateLimiter,
    handler_rl: &'a mut RateLimiter,
}

/// Logs `msg` at INFO through `rl` if `slow`, else at DBG (upstream's pattern for timing lines).
fn log_timing(rl: &mut RateLimiter, slow: bool, msg: std::fmt::Arguments<'_>) {
    if !slow {
        tracing::debug!(target: LOG_TARGET, "{}", msg);
        return;
    }
    // As OVS: a disabled level consumes no tokens.
    if !tracing::enabled!(target: LOG_TARGET, tracing::Level::INFO) {
        return;
    }
    match rl.check(Instant::now()) {
        Verdict::Drop => {}
        Verdict::Pass(dropped) => {
            if let Some(d) = dropped {
                tracing::info!(target: LOG_TARGET, "{}", d);
            }
            tracing::info!(target: LOG_TARGET, "{}", msg);
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The incremental-processing engine. Built by [`super::EngineBuilder`].
pub struct Engine<C: ?Sized + 'static = ()> {
    id: u64,
    slots: Vec<Slot<C>>,
    by_name: HashMap<String, usize>,
    graph: DiGraph<String, Option<String>>,
    order: Vec<usize>,
    force: bool,
    canceled: bool,
    log_timeout_ms: u64,
    recompute_rl: RateLimiter,
    handler_rl: RateLimiter,
}

impl<C: ?Sized + 'static> Engine<C> {
    pub(crate) fn from_parts(
        id: u64,
        slots: Vec<Slot<C>>,
        by_name: HashMap<String, usize>,
        graph: DiGraph<String, Option<String>>,
        order: Vec<usize>,
    ) -> Self {
        Engine {
            id,
            slots,
            by_name,
            graph,
            order,
            force: false,
            canceled: false,
            log_timeout_ms: DEFAULT_COMPUTE_LOG_TIMEOUT_MS,
            // VLOG_RATE_LIMIT_INIT(20, 10), one limiter per call site as upstream.
            recompute_rl: RateLimiter::new(20, 10),
            handler_rl: RateLimiter::new(20, 10),
        }
    }

    fn slot<T: 'static>(&self, h: Handle<T>) -> Result<&Slot<C>, EngineError> {
        if h.engine != self.id {
            return Err(EngineError::ForeignHandle);
        }
        self.slots.get(h.index).ok_or(EngineError::ForeignHandle)
    }

    fn slot_mut<T: 'static>(&mut self, h: Handle<T>) -> Result<&mut Slot<C>, EngineError> {
        if h.engine != self.id {
            return Err(EngineError::ForeignHandle);
        }
        self.slots
            .get_mut(h.index)
            .ok_or(EngineError::ForeignHandle)
    }

    fn index_of(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }

    // ----- feeding and reading data -------------------------------------------------------

    /// Mutable access to an input node's data, to push changes into it. Marks the input as
    /// changed for the next run. If the changes it held were already processed by a completed
    /// run and not cleared yet, they are cleared first (so nothing is processed twice).
    pub fn input_mut<T: 'static>(&mut self, h: Handle<T>) -> Result<&mut T, EngineError> {
        let slot = self.slot_mut(h)?;
        let Some(status) = slot.input else {
            return Err(EngineError::NotAnInput(slot.name.clone()));
        };
        if slot.type_id != TypeId::of::<T>() {
            return Err(EngineError::TypeMismatch {
                node: slot.name.clone(),
                expected: std::any::type_name::<T>(),
            });
        }
        if status == InputStatus::Consumed {
            slot.node.clear_tracked();
        }
        slot.input = Some(InputStatus::Pending);
        // The type was checked above, so this cannot fail; report it rather than panic anyway.
        slot.downcast_mut::<T>()
    }

    /// Take a node's data out after a run, leaving its default in place: the result of the
    /// last node without a copy (it is tracked data, cleared by [`Engine::clear_tracked`]
    /// anyway).
    pub fn take_data<T: Default + 'static>(&mut self, h: Handle<T>) -> Result<T, EngineError> {
        self.slot_mut(h)?.downcast_mut::<T>().map(std::mem::take)
    }

    /// Read access to any node's data.
    pub fn data<T: 'static>(&self, h: Handle<T>) -> Result<&T, EngineError> {
        self.slot(h)?.downcast::<T>()
    }

    /// The state of a node in the last run.
    pub fn state<T: 'static>(&self, h: Handle<T>) -> Result<NodeState, EngineError> {
        Ok(self.slot(h)?.state)
    }

    /// Whether the node's data changed in the last run.
    pub fn changed<T: 'static>(&self, h: Handle<T>) -> bool {
        self.slot(h).is_ok_and(|s| s.state == NodeState::Updated)
    }

    /// The state of the node named `name` in the last run.
    pub fn node_state(&self, name: &str) -> Option<NodeState> {
        self.index_of(name).map(|i| self.slots[i].state)
    }

    /// Node names in topological (display) order.
    pub fn node_names(&self) -> impl Iterator<Item = &str> + '_ {
        self.order.iter().map(|&i| self.slots[i].name.as_str())
    }

    /// Whether a node named `name` exists.
    pub fn contains(&self, name: &str) -> bool {
        self.by_name.contains_key(name)
    }

    /// The input names of node `name` (in the order they were added), if it exists.
    pub fn inputs_of(&self, name: &str) -> Option<Vec<&str>> {
        let i = self.index_of(name)?;
        Some(
            self.slots[i]
                .inputs
                .iter()
                .map(|&j| self.slots[j].name.as_str())
                .collect(),
        )
    }

    /// The change-handler names of node `name`, one per input that has a handler.
    pub fn handler_names(&self, name: &str) -> Option<Vec<&str>> {
        let i = self.index_of(name)?;
        Some(
            self.slots[i]
                .handler_names
                .iter()
                .flatten()
                .map(String::as_str)
                .collect(),
        )
    }

    /// The Rust type name of the node's data (for diagnostics).
    pub fn data_type_name(&self, name: &str) -> Option<&'static str> {
        self.index_of(name).map(|i| self.slots[i].type_name)
    }

    /// The dependency graph: node weights are node names, edges go from an input to its
    /// dependent and carry the change-handler name, if any.
    pub fn graph(&self) -> &DiGraph<String, Option<String>> {
        &self.graph
    }

    // ----- run control ----------------------------------------------------------------------

    /// Requests a full recompute of every compute node in the next run (start-up, reconnect,
    /// failed commit, `inc-engine/recompute`; the caller logs `User triggered force
    /// recompute.`). Served, and cleared, by the next completed run.
    pub fn force_recompute(&mut self) {
        self.force = true;
    }

    /// Whether a forced recompute is pending.
    pub fn force_recompute_pending(&self) -> bool {
        self.force
    }

    /// Withdraws a pending forced recompute.
    pub fn clear_force_recompute(&mut self) {
        self.force = false;
    }

    /// Whether the last run was canceled.
    pub fn canceled(&self) -> bool {
        self.canceled
    }

    /// Whether the next run would do anything: a forced recompute is pending, an input has
    /// pending changes, or work is left over from a canceled run.
    pub fn need_run(&self) -> bool {
        self.force
            || self.canceled
            || self
                .slots
                .iter()
                .any(|s| s.redo || s.input == Some(InputStatus::Pending))
    }

    /// Whether the engine ran at least once (some node is not `Stale`).
    pub fn has_run(&self) -> bool {
        self.slots.iter().any(|s| s.state != NodeState::Stale)
    }

    /// Whether any node's data changed in the last run.
    pub fn has_updated(&self) -> bool {
        self.slots.iter().any(|s| s.state == NodeState::Updated)
    }

    /// Resets the per-run change sets of every node and forgets the inputs' changes. Call after
    /// a completed run once the results were used (not after a skipped or canceled one: the
    /// changes are still needed). If some changes were never processed by a completed run (input
    /// changes pushed since, or changes nodes made in a canceled run), discarding them would
    /// leave the nodes or the caller out of date, so a full recompute is forced for the next
    /// run.
    pub fn clear_tracked(&mut self) {
        let mut discarded = false;
        for slot in &mut self.slots {
            if slot.input == Some(InputStatus::Pending) || slot.carry {
                discarded = true;
            }
            slot.carry = false;
            if slot.input.is_some() {
                slot.input = Some(InputStatus::Clean);
            }
            slot.node.clear_tracked();
        }
        if discarded && !self.force {
            tracing::debug!(
                target: LOG_TARGET,
                "unprocessed input changes discarded, force recompute next time"
            );
            self.force = true;
        }
    }

    /// Runs the engine once over the input changes pushed since the last completed run.
    ///
    /// With `recompute_allowed == false` a node that would need a full recompute cancels the run
    /// instead; after a canceled run, further runs without permission to recompute are skipped.
    pub fn run(&mut self, context: &C, recompute_allowed: bool) -> RunStatus {
        if !recompute_allowed && self.canceled {
            return RunStatus::Skipped;
        }
        tracing::debug!(target: LOG_TARGET, "Initializing new run");
        for slot in &mut self.slots {
            slot.set_state(NodeState::Stale, "engine_init_run");
            slot.recomputed = false;
            slot.worked = false;
            match slot.input {
                None if !slot.carry => slot.node.clear_tracked(),
                None => {}
                Some(InputStatus::Consumed) => {
                    slot.node.clear_tracked();
                    slot.input = Some(InputStatus::Clean);
                }
                Some(_) => {}
            }
        }
        self.canceled = false;

        let mut env = RunEnv {
            force: self.force,
            allowed: recompute_allowed,
            log_timeout_ms: self.log_timeout_ms,
            recompute_rl: &mut self.recompute_rl,
            handler_rl: &mut self.handler_rl,
        };
        for pos in 0..self.order.len() {
            let i = self.order[pos];
            let started = Instant::now();
            run_node(&mut self.slots, i, self.id, context, &mut env);
            let slot = &mut self.slots[i];
            if slot.worked {
                let took = started.elapsed();
                slot.stats.last_run = took;
                slot.stats.total_run += took;
            }
            if slot.state == NodeState::Canceled {
                slot.stats.cancel += 1;
                self.canceled = true;
                self.mark_redo_after_cancel();
                return RunStatus::Canceled;
            }
        }

        self.force = false;
        for slot in &mut self.slots {
            slot.redo = false;
            slot.carry = false;
            if slot.input == Some(InputStatus::Pending) {
                slot.input = Some(InputStatus::Consumed);
            }
        }
        RunStatus::Completed
    }

    /// After a canceled run: the pending input changes stay pending, so every node that already
    /// applied some of them must not apply them again, and every node downstream of such a node
    /// must not trust the (lost) per-run change sets. All of them recompute next time.
    fn mark_redo_after_cancel(&mut self) {
        let worked: Vec<usize> = (0..self.slots.len())
            .filter(|&i| self.slots[i].worked)
            .collect();
        for &i in &worked {
            self.slots[i].carry = true;
        }
        for start in worked {
            let mut dfs = Dfs::new(&self.graph, NodeIndex::new(start));
            while let Some(n) = dfs.next(&self.graph) {
                let slot = &mut self.slots[n.index()];
                if slot.input.is_none() {
                    slot.redo = true;
                }
            }
        }
    }

    // ----- stats ----------------------------------------------------------------------------

    /// The stats of node `name`.
    pub fn stats(&self, name: &str) -> Option<&NodeStats> {
        self.index_of(name).map(|i| &self.slots[i].stats)
    }

    /// All nodes' stats in display order.
    pub fn all_stats(&self) -> impl Iterator<Item = (&str, &NodeStats)> + '_ {
        self.order
            .iter()
            .map(|&i| (self.slots[i].name.as_str(), &self.slots[i].stats))
    }

    /// `inc-engine/clear-stats`: zero every node's counters and timing.
    pub fn clear_stats(&mut self) {
        for slot in &mut self.slots {
            slot.stats = NodeStats::default();
        }
    }

    /// `inc-engine/show-stats [NODE [STAT]]` reply text: per node
    /// `Node: <name>\n- recompute: %12u\n- compute:   %12u\n- cancel:    %12u\n`; with `node`
    /// only that node (empty if unknown); with `stat` (`recompute`/`compute`/`cancel`) just the
    /// number, or `Invalid stat type : <STAT>`.
    pub fn show_stats(&self, node: Option<&str>, stat: Option<&str>) -> String {
        let mut out = String::new();
        for &i in &self.order {
            let slot = &self.slots[i];
            if node.is_some_and(|n| n != slot.name) {
                continue;
            }
            let s = &slot.stats;
            // Writing into a String cannot fail.
            let _ = match stat {
                None => write!(
                    out,
                    "Node: {}\n- recompute: {:12}\n- compute:   {:12}\n- cancel:    {:12}\n",
                    slot.name, s.recompute, s.compute, s.cancel
                ),
                Some("recompute") => write!(out, "{}", s.recompute),
                Some("compute") => write!(out, "{}", s.compute),
                Some("cancel") => write!(out, "{}", s.cancel),
                Some(other) => write!(out, "Invalid stat type : {other}"),
            };
            if node.is_some() {
                break;
            }
        }
        out
    }

    /// The compute-log-timeout in milliseconds.
    pub fn compute_log_timeout_ms(&self) -> u64 {
        self.log_timeout_ms
    }

    /// `inc-engine/compute-log-timeout MSEC`: recomputes and handlers slower than this are
    /// logged at INFO (rate limited) instead of DBG.
    pub fn set_compute_log_timeout_ms(&mut self, ms: u64) {
        self.log_timeout_ms = ms;
    }

    // ----- graph dump -----------------------------------------------------------------------

    /// `--dump-inc-proc-graph[=NODE]` output (DOT). Without `node`: every node in display order,
    /// each followed by its input edges. With `node`: that node, then each input edge
    /// immediately followed by (recursively) the input's own dump. An unknown `node` gives only
    /// the header and the closing brace. Edge labels are change-handler names (empty without).
    pub fn dump_graph(&self, node: Option<&str>) -> String {
        let mut out = String::from("digraph \"Incremental-Processing-Engine\" {\n\trankdir=LR;\n");
        let mut visited = vec![false; self.slots.len()];
        for &i in &self.order {
            if node.is_some_and(|n| n != self.slots[i].name) {
                continue;
            }
            self.dump_node(i, &mut visited, &mut out);
            if node.is_some() {
                break;
            }
        }
        out.push_str("}\n");
        out
    }

    fn dump_node(&self, root: usize, visited: &mut [bool], out: &mut String) {
        // Iterative version of upstream's recursion: (node, next input position).
        let mut stack: Vec<(usize, usize)> = Vec::new();
        let enter = |i: usize, visited: &mut [bool], out: &mut String, stack: &mut Vec<_>| {
            if !visited[i] {
                visited[i] = true;
                let name = &self.slots[i].name;
                let _ = writeln!(
                    out,
                    "\t{name} [style=filled, shape=box, fillcolor=white, label=\"{name}\"];"
                );
                stack.push((i, 0));
            }
        };
        enter(root, visited, out, &mut stack);
        while let Some(top) = stack.last_mut() {
            let (i, pos) = *top;
            let slot = &self.slots[i];
            let Some(&input) = slot.inputs.get(pos) else {
                stack.pop();
                continue;
            };
            top.1 += 1;
            let label = slot
                .handler_names
                .get(pos)
                .and_then(|h| h.as_deref())
                .unwrap_or("");
            let _ = writeln!(
                out,
                "\t{} -> {} [label=\"{}\"];",
                self.slots[input].name, slot.name, label
            );
            enter(input, visited, out, &mut stack);
        }
    }
}

/// Recompute `me` (or cancel it if not allowed). Returns whether the recompute ran.
fn recompute_node<C: ?Sized>(
    me: &mut Slot<C>,
    before: &[Slot<C>],
    engine: u64,
    context: &C,
    env: &mut RunEnv<'_>,
    reason: &str,
) {
    if !env.allowed {
        tracing::debug!(
            target: LOG_TARGET,
            "node: {}, recompute ({}) canceled",
            me.name,
            reason
        );
        me.set_state(NodeState::Canceled, "recompute not allowed");
        return;
    }
    // The change set is not cleared: what handlers recorded before one of them gave up (or what
    // the node did in a canceled run nobody downstream saw) stays, and the recompute adds to it.
    // For the same reason the node reports `Updated` whatever the recompute says: its data may
    // already differ from what dependents last saw.
    let unreported_work = me.worked || me.carry;
    me.worked = true;
    let started = Instant::now();
    let outcome = {
        let ctx = Ctx {
            engine,
            before,
            inputs: &me.inputs,
            node: &me.name,
            context,
        };
        me.node.recompute(&ctx)
    };
    let took = millis(started.elapsed());
    me.stats.recompute += 1;
    me.recomputed = true;
    let state = match outcome {
        Outcome::Updated => NodeState::Updated,
        Outcome::Unchanged if unreported_work => NodeState::Updated,
        Outcome::Unchanged => NodeState::Unchanged,
    };
    me.set_state(state, "recompute run() result");
    log_timing(
        env.recompute_rl,
        took > env.log_timeout_ms,
        format_args!("node: {}, recompute ({}) took {}ms", me.name, reason, took),
    );
}

/// Brings node `i` up to date for this run.
fn run_node<C: ?Sized>(
    slots: &mut [Slot<C>],
    i: usize,
    engine: u64,
    context: &C,
    env: &mut RunEnv<'_>,
) {
    let (before, rest) = slots.split_at_mut(i);
    let before: &[Slot<C>] = before;
    let Some(me) = rest.first_mut() else {
        return;
    };

    if let Some(status) = me.input {
        // Input nodes "run" every time (upstream counts that as a recompute); their data was
        // pushed from outside.
        me.stats.recompute += 1;
        let state = if status == InputStatus::Pending {
            NodeState::Updated
        } else {
            NodeState::Unchanged
        };
        me.set_state(state, "input node");
        return;
    }

    if env.force {
        recompute_node(me, before, engine, context, env, "forced");
        return;
    }
    if me.redo {
        recompute_node(me, before, engine, context, env, "previous run canceled");
        return;
    }

    let mut need_compute = false;
    for (pos, &input) in me.inputs.iter().enumerate() {
        if before[input].state == NodeState::Updated {
            need_compute = true;
            if !me.node.has_handler(pos) {
                let reason = format!("missing handler for input {}", before[input].name);
                recompute_node(me, before, engine, context, env, &reason);
                return;
            }
        }
    }
    if !need_compute {
        me.set_state(NodeState::Unchanged, "no change detected");
        return;
    }

    for pos in 0..me.inputs.len() {
        let input = me.inputs[pos];
        if before[input].state != NodeState::Updated {
            continue;
        }
        me.worked = true;
        let started = Instant::now();
        let result = {
            let ctx = Ctx {
                engine,
                before,
                inputs: &me.inputs,
                node: &me.name,
                context,
            };
            me.node.handle(pos, &ctx)
        };
        let took = millis(started.elapsed());
        log_timing(
            env.handler_rl,
            took > env.log_timeout_ms,
            format_args!(
                "node: {}, handler for input {} took {}ms",
                me.name, before[input].name, took
            ),
        );
        match result {
            HandlerResult::Unhandled => {
                let reason = format!("failed handler for input {}", before[input].name);
                recompute_node(me, before, engine, context, env, &reason);
                return;
            }
            HandlerResult::HandledUpdated => {
                me.set_state(NodeState::Updated, "input updated");
            }
            HandlerResult::HandledUnchanged => {
                if me.state != NodeState::Updated {
                    me.set_state(NodeState::Unchanged, "input handled, no change");
                }
            }
        }
    }
    me.stats.compute += 1;
}
