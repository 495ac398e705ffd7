//! Transactions: building, write-changed-only, reply classification.
