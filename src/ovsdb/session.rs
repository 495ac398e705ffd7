//! One long-lived session to a (possibly clustered) OVSDB database.
