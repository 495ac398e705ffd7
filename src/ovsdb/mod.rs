//! Our own OVSDB client: no OVN knowledge lives here.
//!
//! * [`uuid`], [`datum`], [`schema`]: the OVSDB data model and its JSON encoding (RFC 7047 §5.1,
//!   with the OVS extensions).
//! * [`jsonrpc`]: JSON-RPC 1.0 messages and the incremental stream framer.
//! * [`remote`], [`stream`], [`ssl`]: connection strings and transports (unix, tcp, ssl).
//! * [`reconnect`]: the C library's reconnect/backoff/probe state machine, as pure logic.
//! * [`replica`]: rows by table and UUID, indexes, per-iteration change tracking.
//! * [`txn`]: transaction building (write-changed-only) and reply classification.
//! * [`session`]: one long-lived connection to a (possibly clustered) database: `_Server`
//!   checks, monitor_cond_since, locks, echo, one transaction in flight.

pub mod datum;
pub mod jsonrpc;
pub mod overlay;
pub mod reconnect;
pub mod remote;
pub mod replica;
pub mod schema;
pub mod session;
pub mod ssl;
pub mod stream;
pub mod txn;
pub mod uuid;

pub use datum::{Atom, AtomicType, Datum};

pub use schema::{ColumnType, DatabaseSchema, TableSchema};
pub use uuid::Uuid;
