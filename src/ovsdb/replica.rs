//! In-memory replica of a monitored database with per-iteration change tracking.
