//! Generic incremental-processing engine (no OVN knowledge).
