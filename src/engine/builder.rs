//! Building the engine graph.

use std::any::TypeId;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use petgraph::graph::{DiGraph, NodeIndex};

use super::run::{Engine, ErasedNode, HandlerFn, RecomputeFn, Slot, TypedNode};
use super::{valid_name, Ctx, EngineError, Handle, HandlerResult, NodeData, Outcome};

/// Distinguishes handles of different engines.
static NEXT_ENGINE_ID: AtomicU64 = AtomicU64::new(1);

/// Builds an [`Engine`]: add input nodes, then compute nodes whose inputs already exist (so the
/// graph is acyclic by construction), then [`build`](EngineBuilder::build).
///
/// `C` is the external context passed to every [`Engine::run`] and readable by every node
/// through [`Ctx::context`] (e.g. the database replicas).
pub struct EngineBuilder<C: ?Sized + 'static = ()> {
    id: u64,
    slots: Vec<Slot<C>>,
    by_name: HashMap<String, usize>,
}

impl<C: ?Sized + 'static> Default for EngineBuilder<C> {
    fn default() -> Self {
        Self::new()
    }
}

impl<C: ?Sized + 'static> EngineBuilder<C> {
    /// An empty graph.
    pub fn new() -> Self {
        EngineBuilder {
            id: NEXT_ENGINE_ID.fetch_add(1, Ordering::Relaxed),
            slots: Vec::new(),
            by_name: HashMap::new(),
        }
    }

    fn check_name(&self, name: &str) -> Result<(), EngineError> {
        if !valid_name(name) {
            return Err(EngineError::InvalidName(name.to_string()));
        }
        if self.by_name.contains_key(name) {
            return Err(EngineError::DuplicateName(name.to_string()));
        }
        Ok(())
    }

    fn push_slot<D: NodeData>(
        &mut self,
        name: String,
        node: Box<dyn ErasedNode<C>>,
        inputs: Vec<usize>,
        handler_names: Vec<Option<String>>,
        is_input: bool,
    ) -> Handle<D> {
        let index = self.slots.len();
        self.by_name.insert(name.clone(), index);
        self.slots.push(Slot::new(
            name,
            TypeId::of::<D>(),
            std::any::type_name::<D>(),
            node,
            inputs,
            handler_names,
            is_input,
        ));
        Handle::new(self.id, index)
    }

    /// Adds an input node: no inputs, data fed from outside through [`Engine::input_mut`].
    pub fn add_input<D: NodeData>(
        &mut self,
        name: &str,
        data: D,
    ) -> Result<Handle<D>, EngineError> {
        self.check_name(name)?;
        let node: Box<dyn ErasedNode<C>> = Box::new(TypedNode::<D, C>::input(data));
        Ok(self.push_slot::<D>(name.to_string(), node, Vec::new(), Vec::new(), true))
    }

    /// Starts a compute node with initial `data`; add its inputs on the returned builder and
    /// finish with [`NodeBuilder::recompute`].
    pub fn node<D: NodeData>(&mut self, name: &str, data: D) -> NodeBuilder<'_, C, D> {
        let error = self.check_name(name).err();
        NodeBuilder {
            builder: self,
            name: name.to_string(),
            data,
            inputs: Vec::new(),
            handler_names: Vec::new(),
            handlers: Vec::new(),
            error,
        }
    }

    /// Finishes the graph.
    pub fn build(self) -> Result<Engine<C>, EngineError> {
        if self.slots.is_empty() {
            return Err(EngineError::Empty);
        }
        let mut graph: DiGraph<String, Option<String>> = DiGraph::new();
        for slot in &self.slots {
            graph.add_node(slot.name.clone());
        }
        for (i, slot) in self.slots.iter().enumerate() {
            for (&input, handler) in slot.inputs.iter().zip(&slot.handler_names) {
                graph.add_edge(NodeIndex::new(input), NodeIndex::new(i), handler.clone());
            }
        }
        // Inputs must exist before their dependents, so a cycle cannot be built; check anyway
        // because the run loop relies on it.
        if petgraph::algo::is_cyclic_directed(&graph) {
            return Err(EngineError::Cycle);
        }
        let order = topo_order(&self.slots, &graph);
        Ok(Engine::from_parts(
            self.id,
            self.slots,
            self.by_name,
            graph,
            order,
        ))
    }
}

/// Upstream's order: for every sink (a node nothing depends on), in creation order, a depth-first
/// post-order walk over its inputs in the order they were added.
fn topo_order<C: ?Sized>(slots: &[Slot<C>], graph: &DiGraph<String, Option<String>>) -> Vec<usize> {
    let mut visited = vec![false; slots.len()];
    let mut order = Vec::with_capacity(slots.len());
    for root in 0..slots.len() {
        let is_sink = graph
            .neighbors_directed(NodeIndex::new(root), petgraph::Direction::Outgoing)
            .next()
            .is_none();
        if !is_sink || visited[root] {
            continue;
        }
        // Iterative DFS: (node, next input position to visit).
        let mut stack = vec![(root, 0usize)];
        visited[root] = true;
        while let Some(top) = stack.last_mut() {
            let (node, pos) = *top;
            if let Some(&input) = slots[node].inputs.get(pos) {
                top.1 += 1;
                if !visited[input] {
                    visited[input] = true;
                    stack.push((input, 0));
                }
            } else {
                order.push(node);
                stack.pop();
            }
        }
    }
    order
}

/// Adds the inputs of one compute node; see [`EngineBuilder::node`].
pub struct NodeBuilder<'b, C: ?Sized + 'static, D: NodeData> {
    builder: &'b mut EngineBuilder<C>,
    name: String,
    data: D,
    inputs: Vec<usize>,
    handler_names: Vec<Option<String>>,
    handlers: Vec<Option<HandlerFn<C, D>>>,
    error: Option<EngineError>,
}

impl<C: ?Sized + 'static, D: NodeData> NodeBuilder<'_, C, D> {
    fn check_input<T: 'static>(&self, h: Handle<T>) -> Result<(), EngineError> {
        if h.engine != self.builder.id {
            return Err(EngineError::ForeignHandle);
        }
        let slot = self
            .builder
            .slots
            .get(h.index)
            .ok_or(EngineError::ForeignHandle)?;
        if slot.type_id != TypeId::of::<T>() {
            return Err(EngineError::TypeMismatch {
                node: slot.name.clone(),
                expected: std::any::type_name::<T>(),
            });
        }
        if self.inputs.contains(&h.index) {
            return Err(EngineError::DuplicateInput {
                node: self.name.clone(),
                input: slot.name.clone(),
            });
        }
        Ok(())
    }

    fn add<T: 'static>(mut self, h: Handle<T>, handler: Option<(String, HandlerFn<C, D>)>) -> Self {
        if self.error.is_some() {
            return self;
        }
        if let Err(e) = self.check_input(h) {
            self.error = Some(e);
            return self;
        }
        self.inputs.push(h.index);
        match handler {
            Some((name, f)) => {
                self.handler_names.push(Some(name));
                self.handlers.push(Some(f));
            }
            None => {
                self.handler_names.push(None);
                self.handlers.push(None);
            }
        }
        self
    }

    /// Adds an input without a change handler: any change of it recomputes this node
    /// (`recompute (missing handler for input <input>)`).
    pub fn input<T: 'static>(self, h: Handle<T>) -> Self {
        self.add(h, None)
    }

    /// Adds an input with a change handler. The handler's name (shown as the edge label by
    /// [`Engine::dump_graph`]) is taken from the function's name for a function item, else
    /// `<node>_<input>_handler`.
    pub fn input_with<T: 'static, F>(self, h: Handle<T>, handler: F) -> Self
    where
        F: FnMut(&Ctx<'_, C>, &mut D) -> HandlerResult + Send + 'static,
    {
        let full = std::any::type_name::<F>();
        let last = full.rsplit("::").next().unwrap_or(full);
        let name = if valid_name(last) {
            last.to_string()
        } else {
            let input = self
                .builder
                .slots
                .get(h.index)
                .map_or("input", |s| s.name.as_str());
            format!("{}_{}_handler", self.name, input)
        };
        self.input_with_named(h, &name, handler)
    }

    /// Adds an input with a change handler named `handler_name`.
    pub fn input_with_named<T: 'static, F>(
        self,
        h: Handle<T>,
        handler_name: &str,
        handler: F,
    ) -> Self
    where
        F: FnMut(&Ctx<'_, C>, &mut D) -> HandlerResult + Send + 'static,
    {
        self.add(h, Some((handler_name.to_string(), Box::new(handler))))
    }

    /// Finishes the node with its full recompute function.
    pub fn recompute<F>(self, recompute: F) -> Result<Handle<D>, EngineError>
    where
        F: FnMut(&Ctx<'_, C>, &mut D) -> Outcome + Send + 'static,
    {
        if let Some(e) = self.error {
            return Err(e);
        }
        if self.inputs.is_empty() {
            return Err(EngineError::NoInputs(self.name));
        }
        let recompute: RecomputeFn<C, D> = Box::new(recompute);
        let node: Box<dyn ErasedNode<C>> =
            Box::new(TypedNode::compute(self.data, recompute, self.handlers));
        Ok(self
            .builder
            .push_slot::<D>(self.name, node, self.inputs, self.handler_names, false))
    }
}
