//! OVS-compatible logging ("vlog", spec ovsdb-protocol.md §13) on top of `tracing`.
//! Helper-owned. Modules are `tracing` targets (`info!(target: "ovn_ic", ...)`).
