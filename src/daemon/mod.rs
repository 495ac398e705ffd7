//! The process shell: command line, logging, pidfile, detach, control socket, main loop.

pub mod cli;
pub mod vlog;

/// Entry point of the `ovn-ic` binary; returns the exit status.
pub fn main() -> i32 {
    0
}
