#!/usr/bin/env bash
# Installs what building and testing need on a Debian 12 (bookworm) machine, only when missing:
# Debian's OVS/OVN tools (real ovsdb-server, ovsdb-tool, ovsdb-client, ovs-appctl, ovn-northd,
# the C ovn-ic and the OVN schemas), the OpenSSL headers and pkg-config for the openssl crate,
# and the Rust toolchain's clippy and rustfmt components.
#
# Quiet and idempotent: when everything is present it only runs `dpkg -s` and returns.
# Works as root (CI) or through sudo; never prompts (no stdin in CI).
set -euo pipefail

packages=(openvswitch-common ovn-common ovn-central ovn-ic ovn-ic-db libssl-dev pkg-config)

is_installed() {
    dpkg -s "$1" 2>/dev/null | grep -q '^Status: install ok installed$'
}

missing=()
for p in "${packages[@]}"; do
    is_installed "$p" || missing+=("$p")
done

if ((${#missing[@]})); then
    sudo=()
    if [ "$(id -u)" != 0 ]; then
        sudo=(sudo -n)
    fi
    echo "install-deps: installing ${missing[*]}" >&2
    # Do not let the packages' maintainer scripts start system-wide ovsdb-server/ovn-northd
    # daemons: the tests run their own. policy-rc.d exit status 101 = "action forbidden".
    policy=/usr/sbin/policy-rc.d
    created_policy=false
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
        "${sudo[@]}" chmod 755 "$policy"
        created_policy=true
    fi
    cleanup() {
        if $created_policy; then
            "${sudo[@]}" rm -f "$policy"
        fi
    }
    trap cleanup EXIT
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get update -qq >/dev/null
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        -o Dpkg::Use-Pty=0 --no-install-recommends "${missing[@]}" >/dev/null
    for p in "${missing[@]}"; do
        is_installed "$p" || { echo "install-deps: $p failed to install" >&2; exit 1; }
    done
fi

# clippy and rustfmt for scripts/test.sh; a toolchain without rustup (or offline) may lack
# them, which test.sh then reports. Not fatal here.
if command -v cargo >/dev/null 2>&1; then
    for c in clippy rustfmt; do
        sub=$([ "$c" = clippy ] && echo clippy || echo fmt)
        if ! cargo "$sub" --version >/dev/null 2>&1; then
            if command -v rustup >/dev/null 2>&1; then
                rustup component add "$c" >/dev/null 2>&1 ||
                    echo "install-deps: could not add the $c component" >&2
            else
                echo "install-deps: cargo $sub missing and no rustup to add it" >&2
            fi
        fi
    done
else
    echo "install-deps: no cargo in PATH; install a Rust toolchain (>= 1.80) with rustup" >&2
fi
