#!/usr/bin/env bash
# Builds and tests everything; fails on the first error. Used by CI (.ci/run) and by hand.
#
#   scripts/test.sh
#
# Steps: install missing Debian packages, then `cargo build`, `cargo fmt --check`,
# `cargo clippy -D warnings` and `cargo test` on all targets.
# OVN_SCHEMA_DIR (the schemas the tests start ovsdb-server with) defaults to ../shared/schemas
# (the project's current upstream schemas) when that folder exists, else the tests use
# Debian's /usr/share/ovn.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

# A toolchain installed by rustup may not be on a non-login shell's PATH.
if ! command -v cargo >/dev/null 2>&1 && [ -x "${HOME:-/root}/.cargo/bin/cargo" ]; then
    export PATH="${HOME:-/root}/.cargo/bin:$PATH"
fi

bash scripts/install-deps.sh

if [ -z "${OVN_SCHEMA_DIR:-}" ] && [ -d ../shared/schemas ]; then
    OVN_SCHEMA_DIR=$(cd ../shared/schemas && pwd)
    export OVN_SCHEMA_DIR
fi
echo "test.sh: OVN schemas from ${OVN_SCHEMA_DIR:-/usr/share/ovn}" >&2

# No terminal in CI: keep cargo's output plain.
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
export CARGO_TERM_PROGRESS_WHEN=never

cargo build --all-targets
cargo fmt --all -- --check --color never
cargo clippy --all-targets -- -D warnings
cargo test --all-targets

# Schema tolerance: the stage unit tests and the core integration tests again on Debian's 23.03
# schemas, which lack the newer tables and columns (the same binary must serve both).
if [ -d /usr/share/ovn ] && [ "${OVN_SCHEMA_DIR:-/usr/share/ovn}" != /usr/share/ovn ]; then
    echo "test.sh: again on Debian's schemas in /usr/share/ovn" >&2
    OVN_SCHEMA_DIR=/usr/share/ovn cargo test --lib ic::
    for t in tests/ic_*.rs; do
        OVN_SCHEMA_DIR=/usr/share/ovn cargo test --test "$(basename "$t" .rs)"
    done
fi
