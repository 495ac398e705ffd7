//! `ovn-ic`: a drop-in Rust replacement for OVN's interconnection controller.
//!
//! Layers, from the bottom up:
//! * [`ovsdb`]: our own OVSDB client (JSON-RPC framing, sessions with reconnect, locks,
//!   monitors, a replica with change tracking, transactions). No OVN knowledge.
//! * [`engine`]: a generic incremental-processing engine on petgraph. No OVN knowledge.
//! * [`ic`]: the ovn-ic logic, one module per engine node, plus the output node.
//! * [`daemon`]: the process shell: command line, vlog-compatible logging, pidfile,
//!   detach, control socket, and the main loop that ties the rest together.

pub mod daemon;
pub mod engine;
pub mod ic;
pub mod ovsdb;
