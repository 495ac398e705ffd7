#!/usr/bin/env bash
# A live 3-AZ OVN interconnection sandbox, all in one directory, on unix sockets only.
#
#   scripts/sandbox.sh [start] [--dir DIR] [--c-daemon-az N] [--no-build] [--no-install]
#                      [--debug]
#   scripts/sandbox.sh stop    [--dir DIR] [--keep]
#   scripts/sandbox.sh status  [--dir DIR]
#
# start: installs the Debian packages it needs (scripts/install-deps.sh; --no-install skips it),
#   builds ovn-ic (`cargo build --release`, or `cargo build` with --debug; --no-build skips it),
#   then starts IC-NB and IC-SB, and per AZ (az1, az2, az3) an NB and an SB ovsdb-server,
#   ovn-northd and one ovn-ic. It creates transit switch ts1, a fake interconnection gateway
#   chassis gwN in each AZ's SB (no ovn-controller: the chassis row and the binding of the
#   router's chassis-redirect port are written with ovn-sbctl), a router lrN per AZ attached to
#   ts1 with gateway chassis gwN, an internal network 10.N.0.1/24 (advertised as a connected route) and a static route
#   10.N.1.0/24, turns on route advertisement and learning, waits until every AZ has learned the
#   other AZs' routes, and prints what ovn-ic did and how to point the OVN tools at the sandbox.
#   --c-daemon-az N runs Debian's C daemon (/usr/bin/ovn-ic, or $OVN_IC_C_BIN) in AZ N instead
#   of ours (mixed operation).
# stop: stops every process of the sandbox (by the pids in its pidfiles, after checking that
#   the process really belongs to this sandbox) and removes the directory (--keep keeps the
#   databases and logs).
# status: which processes run, and the environment lines.
#
# Environment: OVN_IC_BIN (our ovn-ic binary to run; no build then), OVN_IC_C_BIN (the C
# binary, default /usr/bin/ovn-ic), OVN_SCHEMA_DIR (OVN schemas, default Debian's
# /usr/share/ovn, which match Debian's ovn-northd and C ovn-ic), SANDBOX_TIMEOUT (seconds to
# wait for convergence, default 90).
#
# The sandbox listens on no TCP port: every database and control socket is a unix socket in
# DIR. start refuses (exit 1, nothing started) when a tool is missing, when DIR already holds a
# running sandbox or a directory that is not a sandbox, or when one of its socket paths is
# bound by another process.
set -euo pipefail

prog=scripts/sandbox.sh
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
marker_name=.ovn-ic-sandbox
azs=(az1 az2 az3)

die() {
    echo "sandbox: $*" >&2
    exit 1
}

usage() {
    sed -n '4,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

# --- command line ---------------------------------------------------------------------------

cmd=start
dir=./sandbox
c_az=""
build=true
install=true
profile=release
keep=false
if (($#)) && [[ $1 != -* ]]; then
    cmd=$1
    shift
fi
case $cmd in start | stop | status) ;; *) echo "sandbox: unknown command '$cmd'" >&2 && usage ;; esac
while (($#)); do
    case $1 in
    --dir) (($# >= 2)) || usage; dir=$2; shift ;;
    --dir=*) dir=${1#--dir=} ;;
    --c-daemon-az) (($# >= 2)) || usage; c_az=$2; shift ;;
    --c-daemon-az=*) c_az=${1#--c-daemon-az=} ;;
    --no-build) build=false ;;
    --no-install) install=false ;;
    --debug) profile=debug ;;
    --keep) keep=true ;;
    -h | --help) usage ;;
    *) echo "sandbox: unknown option '$1'" >&2 && usage ;;
    esac
    shift
done
[ -n "$dir" ] || die "--dir needs a directory"
if [ -n "$c_az" ]; then
    [[ $c_az =~ ^[1-3]$ ]] || die "--c-daemon-az takes 1, 2 or 3 (got '$c_az')"
fi
# Absolute and without a trailing slash: daemons detach with chdir("/"), and the pid checks
# below look for this exact string in the processes' command lines.
case $dir in /*) ;; *) dir=$PWD/$dir ;; esac
dir=${dir%/}
[ -n "$dir" ] || die "refusing to use / as the sandbox directory"

# --- paths ----------------------------------------------------------------------------------

# Each AZ's directory is laid out like /var/run/ovn, so OVN_RUNDIR=DIR/azN alone points
# ovn-nbctl, ovn-sbctl and `ovn-appctl -t ovn-ic` / `-t ovn-northd` at that AZ.
ic_dir=$dir/ic
ic_nb_sock=$ic_dir/ovn_ic_nb_db.sock
ic_sb_sock=$ic_dir/ovn_ic_sb_db.sock
az_dir() { echo "$dir/$1"; }
nb_sock() { echo "$dir/$1/ovnnb_db.sock"; }
sb_sock() { echo "$dir/$1/ovnsb_db.sock"; }

# Every unix socket the sandbox creates (control sockets of ovn-ic/ovn-northd carry the pid in
# their names and cannot collide).
socket_paths() {
    echo "$ic_nb_sock" "$ic_sb_sock" "$ic_dir/ic-nb.ctl" "$ic_dir/ic-sb.ctl"
    for az in "${azs[@]}"; do
        echo "$(nb_sock "$az")" "$(sb_sock "$az")" "$dir/$az/nb.ctl" "$dir/$az/sb.ctl"
    done
}

# Every pidfile, "name path" per line, in stop order (daemons before their databases).
pidfiles() {
    for az in "${azs[@]}"; do
        echo "$az/ovn-ic $dir/$az/ovn-ic.pid"
        echo "$az/ovn-northd $dir/$az/ovn-northd.pid"
    done
    for az in "${azs[@]}"; do
        echo "$az/nb $dir/$az/nb.pid"
        echo "$az/sb $dir/$az/sb.pid"
    done
    echo "ic-nb $ic_dir/ic-nb.pid"
    echo "ic-sb $ic_dir/ic-sb.pid"
}

# The pid in pidfile $1 if that process runs and belongs to this sandbox (its command line
# names the sandbox directory), else nothing. Protects against a reused pid.
live_pid() {
    local f=$1 pid
    [ -r "$f" ] || return 0
    pid=$(tr -dc '0-9' <"$f")
    [ -n "$pid" ] || return 0
    kill -0 "$pid" 2>/dev/null || return 0
    if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$dir/"; then
        echo "$pid"
    fi
}

running_pids() {
    local name f pid
    while read -r name f; do
        pid=$(live_pid "$f")
        [ -z "$pid" ] || echo "$name=$pid"
    done < <(pidfiles)
}

# Whether some process has a unix socket bound at path $1 (the kernel's list of bound unix
# sockets; a socket file left behind by a dead process is not in it).
socket_bound() {
    awk -v p="$1" '$NF == p { found = 1 } END { exit !found }' /proc/net/unix
}

# --- stop / status --------------------------------------------------------------------------

stop_all() {
    local name f pid waited
    local -a pids=()
    while read -r name f; do
        pid=$(live_pid "$f")
        if [ -n "$pid" ]; then
            kill -TERM "$pid" 2>/dev/null || true
            pids+=("$pid")
        fi
    done < <(pidfiles)
    # Up to 10 s for a clean exit, then SIGKILL.
    for pid in "${pids[@]}"; do
        waited=0
        while kill -0 "$pid" 2>/dev/null && ((waited < 100)); do
            sleep 0.1
            waited=$((waited + 1))
        done
        if kill -0 "$pid" 2>/dev/null; then
            echo "sandbox: pid $pid did not exit after SIGTERM; sending SIGKILL" >&2
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done
    echo "${#pids[@]}"
}

cmd_stop() {
    [ -d "$dir" ] || die "no sandbox in $dir (no such directory)"
    [ -e "$dir/$marker_name" ] || die "$dir is not a sandbox directory (no $marker_name)"
    local n
    n=$(stop_all)
    if $keep; then
        find "$dir" -type s -delete 2>/dev/null || true
        rm -f "$dir"/*/*.pid
        echo "sandbox: stopped $n processes; kept $dir (databases and logs)"
    else
        rm -rf -- "$dir"
        echo "sandbox: stopped $n processes; removed $dir"
    fi
}

env_lines() {
    local az=$1
    echo "export OVN_RUNDIR=$dir/$az"
    echo "export OVN_NB_DB=unix:$(nb_sock "$az")"
    echo "export OVN_SB_DB=unix:$(sb_sock "$az")"
    echo "export OVN_IC_NB_DB=unix:$ic_nb_sock"
    echo "export OVN_IC_SB_DB=unix:$ic_sb_sock"
}

print_env() {
    echo "Point the OVN tools at one AZ (az1 here; az2/az3 alike, or source DIR/azN/env.sh):"
    echo
    env_lines az1 | sed 's/^/    /'
    echo
    echo "    # or: . $dir/az1/env.sh"
    echo "    ovn-nbctl show; ovn-sbctl show; ovn-ic-nbctl show; ovn-ic-sbctl show"
    echo "    ovn-appctl -t ovn-ic status          # this AZ's ovn-ic (found via OVN_RUNDIR)"
    echo
    echo "Each AZ's ovn-ic control socket, usable without OVN_RUNDIR:"
    local az pid
    for az in "${azs[@]}"; do
        pid=$(live_pid "$dir/$az/ovn-ic.pid")
        if [ -n "$pid" ]; then
            echo "    ovn-appctl -t $dir/$az/ovn-ic.$pid.ctl status   # $az"
        else
            echo "    (ovn-ic of $az is not running)"
        fi
    done
    echo
    echo "Stop and remove everything: $prog stop --dir $dir"
}

cmd_status() {
    [ -e "$dir/$marker_name" ] || die "no sandbox in $dir"
    local name f pid up=0 down=0
    while read -r name f; do
        pid=$(live_pid "$f")
        if [ -n "$pid" ]; then
            printf '  %-14s running (pid %s)\n' "$name" "$pid"
            up=$((up + 1))
        else
            printf '  %-14s not running\n' "$name"
            down=$((down + 1))
        fi
    done < <(pidfiles)
    echo "sandbox in $dir: $up running, $down not running"
    echo
    ((up == 0)) || print_env
}

# --- start: checks (before anything is started) ---------------------------------------------

# tool -> Debian package
declare -A tool_pkg=(
    [ovsdb-tool]=openvswitch-common [ovsdb-server]=openvswitch-common
    [ovs-appctl]=openvswitch-common [ovn-appctl]=ovn-common [ovn-nbctl]=ovn-common
    [ovn-sbctl]=ovn-common [ovn-ic-nbctl]=ovn-common [ovn-ic-sbctl]=ovn-common
    [ovn-northd]=ovn-central
)

missing_tools() {
    local t
    for t in "${!tool_pkg[@]}"; do
        command -v "$t" >/dev/null 2>&1 || echo "$t"
    done | sort
}

check_tools() {
    local missing
    missing=$(missing_tools)
    if [ -n "$missing" ] && $install; then
        bash "$root/scripts/install-deps.sh" || true
        missing=$(missing_tools)
    fi
    if [ -n "$missing" ]; then
        local t msg=""
        for t in $missing; do msg+=" $t (package ${tool_pkg[$t]})"; done
        die "missing tool(s):$msg; install them (bash scripts/install-deps.sh) or fix PATH"
    fi
}

schema_dir=${OVN_SCHEMA_DIR:-/usr/share/ovn}

check_schemas() {
    local s
    for s in ovn-nb ovn-sb ovn-ic-nb ovn-ic-sb; do
        [ -r "$schema_dir/$s.ovsschema" ] ||
            die "missing schema $schema_dir/$s.ovsschema (package ovn-common; or set OVN_SCHEMA_DIR)"
    done
}

check_dir() {
    if [ -e "$dir" ] && [ ! -d "$dir" ]; then
        die "$dir exists and is not a directory"
    fi
    if [ -e "$dir/$marker_name" ]; then
        local running
        running=$(running_pids | tr '\n' ' ')
        if [ -n "$running" ]; then
            die "a sandbox is already running in $dir (${running% }); stop it first: $prog stop --dir $dir"
        fi
    fi
    # Unix socket paths are limited to 107 bytes.
    local p
    for p in $(socket_paths) "$dir/az1/ovn-northd.4194304.ctl"; do
        ((${#p} <= 100)) || die "socket path $p is too long for a unix socket; use a shorter --dir"
    done
    # ovsdb-server would unlink a socket file and bind its own: never do that to a live one.
    for p in $(socket_paths); do
        if socket_bound "$p"; then
            die "socket $p is in use by another process; stop it or use another --dir"
        fi
    done
    if [ ! -e "$dir/$marker_name" ] && [ -d "$dir" ] && [ -n "$(ls -A "$dir")" ]; then
        die "$dir is not empty and is not a sandbox directory; choose another --dir"
    fi
}

# Our binary: $OVN_IC_BIN, else the one built now (or earlier, with --no-build).
resolve_bin() {
    if [ -n "${OVN_IC_BIN:-}" ]; then
        [ -x "$OVN_IC_BIN" ] || die "OVN_IC_BIN=$OVN_IC_BIN is not an executable file"
        ours=$OVN_IC_BIN
        return
    fi
    if $build; then
        if ! command -v cargo >/dev/null 2>&1 && [ -x "${HOME:-/root}/.cargo/bin/cargo" ]; then
            export PATH="${HOME:-/root}/.cargo/bin:$PATH"
        fi
        command -v cargo >/dev/null 2>&1 ||
            die "missing tool: cargo (install a Rust toolchain >= 1.80 with rustup), or use --no-build with OVN_IC_BIN"
        local flags=()
        [ "$profile" = release ] && flags=(--release)
        echo "sandbox: cargo build ${flags[*]}" >&2
        (cd "$root" && cargo build "${flags[@]}" --bin ovn-ic) >&2 || die "cargo build failed"
        ours=$root/target/$profile/ovn-ic
    else
        for ours in "$root/target/$profile/ovn-ic" "$root/target/release/ovn-ic" \
            "$root/target/debug/ovn-ic"; do
            [ -x "$ours" ] && return
        done
        die "no built ovn-ic in $root/target (build it, drop --no-build, or set OVN_IC_BIN)"
    fi
    [ -x "$ours" ] || die "$ours was not built"
}

# --- start: processes -----------------------------------------------------------------------

# Runs a detaching daemon with every OVS/OVN directory pointed at $1 (so nothing is written
# under /var/run, /var/log or /etc), logging its stderr to $2.
run_in() {
    local rundir=$1 out=$2
    shift 2
    env -u OVN_NB_DB -u OVN_SB_DB -u OVN_IC_NB_DB -u OVN_IC_SB_DB \
        OVS_RUNDIR="$rundir" OVS_LOGDIR="$rundir" OVS_DBDIR="$rundir" OVS_SYSCONFDIR="$rundir" \
        OVN_RUNDIR="$rundir" OVN_LOGDIR="$rundir" OVN_DBDIR="$rundir" OVN_SYSCONFDIR="$rundir" \
        "$@" >>"$out" 2>&1 </dev/null
}

failed_start() {
    local what=$1 log=$2
    echo "sandbox: $what failed; tail of $log:" >&2
    tail -n 15 "$log" >&2 2>/dev/null || true
    die "start failed; logs are in $dir"
}

# While starting, any failure (also of a plain command under `set -e`) stops what had started.
start_done=false
on_start_exit() {
    if ! $start_done; then
        stop_all >/dev/null
        echo "sandbox: stopped the processes started so far; $prog stop --dir $dir removes $dir" >&2
    fi
}

# start_db NAME DIR SCHEMA SOCK: a standalone ovsdb-server with pidfile/log/ctl DIR/NAME.*
start_db() {
    local name=$1 d=$2 schema=$3 sock=$4
    rm -f "$sock"
    ovsdb-tool create "$d/$name.db" "$schema_dir/$schema.ovsschema" ||
        failed_start "ovsdb-tool create $name" "$d/$name.out"
    run_in "$d" "$d/$name.out" ovsdb-server --detach --no-chdir \
        --pidfile="$d/$name.pid" --log-file="$d/$name.log" --unixctl="$d/$name.ctl" \
        -vconsole:off --remote="punix:$sock" "$d/$name.db" ||
        failed_start "ovsdb-server $name" "$d/$name.log"
}

# A detaching OVN daemon in AZ directory $1 with pidfile/log $1/$2.{pid,log}; control socket at
# the default $1/$2.<pid>.ctl (OVN_RUNDIR=$1), so `ovn-appctl -t $2` finds it.
start_daemon() {
    local d=$1 name=$2
    shift 2
    run_in "$d" "$d/$name.out" "$@" --detach --no-chdir --pidfile="$d/$name.pid" \
        --log-file="$d/$name.log" -vconsole:off ||
        failed_start "$name ($(basename "$d"))" "$d/$name.log"
    local pid
    pid=$(live_pid "$d/$name.pid")
    [ -n "$pid" ] || failed_start "$name ($(basename "$d"))" "$d/$name.log"
}

# ctl TOOL DB ARGS...: a Debian *ctl tool against one database, bounded in time.
ctl() {
    local tool=$1 db=$2
    shift 2
    "$tool" --db="unix:$db" --timeout=30 "$@"
}
nbctl() { ctl ovn-nbctl "$(nb_sock "$1")" "${@:2}"; }
# nbctl_az OPTIONS AZ ARGS: rows() puts its options first.
nbctl_az() {
    local -a opts=()
    while [[ $1 == --* ]]; do opts+=("$1"); shift; done
    nbctl "$1" "${opts[@]}" "${@:2}"
}
sbctl() { ctl ovn-sbctl "$(sb_sock "$1")" "${@:2}"; }
icnbctl() { ctl ovn-ic-nbctl "$ic_nb_sock" "$@"; }
icsbctl() { ctl ovn-ic-sbctl "$ic_sb_sock" "$@"; }

# `--format=csv --data=bare --no-headings` rows of a table, quotes dropped.
rows() {
    "$1" --format=csv --data=bare --no-headings "${@:2}" | tr -d '"'
}

deadline=0
set_deadline() { deadline=$((SECONDS + ${SANDBOX_TIMEOUT:-90})); }

# wait_for WHAT COMMAND...: polls COMMAND until it succeeds or the deadline passes.
wait_for() {
    local what=$1
    shift
    until "$@" >/dev/null 2>&1; do
        if ((SECONDS >= deadline)); then
            echo "sandbox: timed out waiting for $what (SANDBOX_TIMEOUT=${SANDBOX_TIMEOUT:-90}s)" >&2
            return 1
        fi
        sleep 0.2
    done
}

has_ls() { nbctl "$1" --bare --columns=name find Logical_Switch name="$2" | grep -qx "$2"; }
has_pb() { sbctl "$1" --bare --columns=logical_port find Port_Binding logical_port="$2" | grep -qx "$2"; }

# The learned routes of AZ $1 as "prefix nexthop isb-route-uuid" lines.
learned_routes() {
    rows nbctl_az "$1" --columns=ip_prefix,nexthop,external_ids list Logical_Router_Static_Route |
        awk -F, '{ if (match($3, /ic-learned-route=[0-9a-f-]+/)) {
                       print $1, $2, substr($3, RSTART + 17, RLENGTH - 17) } }' | sort
}

# Whether AZ $1 has learned both routes of every other AZ.
converged_az() {
    local az=$1 learned other m
    learned=$(learned_routes "$az" | awk '{ print $1 }')
    for other in "${azs[@]}"; do
        [ "$other" = "$az" ] && continue
        m=${other#az}
        grep -qx "10.$m.0.1/24" <<<"$learned" || return 1
        grep -qx "10.$m.1.0/24" <<<"$learned" || return 1
    done
}
converged() {
    local az
    for az in "${azs[@]}"; do converged_az "$az" || return 1; done
}

# ovn-ic-nbctl --wait=sb sync, when both the tool (OVN >= 24.09) and the IC-NB schema support
# sequence numbers (Debian's 23.03 ones do not); the polling below decides either way.
wait_sync() {
    if ovn-ic-nbctl --help 2>/dev/null | grep -q -- '--wait' &&
        grep -q '"nb_ic_cfg"' "$schema_dir/ovn-ic-nb.ovsschema"; then
        icnbctl --wait=sb sync >/dev/null 2>&1 || true
    fi
}

# --- start: summary -------------------------------------------------------------------------

print_summary() {
    local -A az_name=() route_az=()
    local uuid name ts az prefix nexthop origin port key gw addr type ip pid kind ctlsock
    while IFS=, read -r uuid name; do az_name[$uuid]=$name; done \
        < <(rows icsbctl --columns=_uuid,name list Availability_Zone)
    echo
    echo "== ovn-ic sandbox in $dir: ${#azs[@]} AZs on transit switch ts1"
    echo
    echo "Availability zones (IC-SB): $(printf '%s\n' "${az_name[@]}" | sort | tr '\n' ' ')"
    echo
    echo "Gateways (IC-SB):"
    local -A encaps=()
    while IFS=, read -r name type ip; do
        encaps[$name]+="$type $ip "
    done < <(rows icsbctl --columns=gateway_name,type,ip list Encap)
    while IFS=, read -r name az; do
        echo "  $name  az=${az_name[$az]:-?}  encap: ${encaps[$name]:-none}"
    done < <(rows icsbctl --columns=name,availability_zone list Gateway | sort)
    echo
    echo "Port bindings (IC-SB):"
    while IFS=, read -r ts port az key gw addr; do
        echo "  $ts $port  az=${az_name[$az]:-?} key=$key gateway=${gw:-none} address=\"$addr\""
    done < <(rows icsbctl --columns=transit_switch,logical_port,availability_zone,tunnel_key,gateway,address \
        list Port_Binding | sort)
    echo
    while IFS=, read -r uuid az; do route_az[$uuid]=${az_name[$az]:-?}; done \
        < <(rows icsbctl --columns=_uuid,availability_zone list Route)
    local i=0
    for az in "${azs[@]}"; do
        i=$((i + 1))
        pid=$(live_pid "$dir/$az/ovn-ic.pid")
        kind=ours
        [ "$c_az" = "$i" ] && kind="C $(basename "$c_bin")"
        ctlsock="$dir/$az/ovn-ic.${pid:-?}.ctl"
        echo "== $az: ovn-ic $kind (pid ${pid:-not running}), control socket $ctlsock"
        while IFS=, read -r ts uuid prefix nexthop origin; do
            [ "${route_az[$uuid]:-}" = "$az" ] || continue
            echo "   advertised $prefix via $nexthop ($origin, on $ts)"
        done < <(rows icsbctl --columns=transit_switch,_uuid,ip_prefix,nexthop,origin list Route | sort -t, -k3)
        while read -r prefix nexthop uuid; do
            echo "   learned    $prefix via $nexthop (from ${route_az[$uuid]:-?})"
        done < <(learned_routes "$az")
    done
    echo
}

cmd_start() {
    check_tools
    check_schemas
    check_dir
    c_bin=${OVN_IC_C_BIN:-/usr/bin/ovn-ic}
    if [ -n "$c_az" ]; then
        [ -x "$c_bin" ] || die "missing tool: $c_bin (package ovn-ic) for --c-daemon-az"
        if [ "$schema_dir" != /usr/share/ovn ]; then
            echo "sandbox: warning: the C ovn-ic 23.03 does not run against newer IC schemas;" \
                "OVN_SCHEMA_DIR=$schema_dir may keep AZ $c_az from converging" >&2
        fi
    fi
    resolve_bin

    # A stopped sandbox (marker, nothing running) is started afresh.
    if [ -e "$dir/$marker_name" ]; then
        rm -rf -- "${dir:?}"/*
    fi
    mkdir -p "$ic_dir"
    trap on_start_exit EXIT
    echo "ovn-ic sandbox; stop with: $prog stop --dir $dir" >"$dir/$marker_name"
    for az in "${azs[@]}"; do mkdir -p "$dir/$az"; done
    set_deadline

    echo "sandbox: starting in $dir (schemas from $schema_dir)" >&2
    start_db ic-nb "$ic_dir" ovn-ic-nb "$ic_nb_sock"
    start_db ic-sb "$ic_dir" ovn-ic-sb "$ic_sb_sock"
    icnbctl init
    icsbctl init
    local i=0 az d bin
    for az in "${azs[@]}"; do
        i=$((i + 1))
        d=$dir/$az
        start_db nb "$d" ovn-nb "$(nb_sock "$az")"
        start_db sb "$d" ovn-sb "$(sb_sock "$az")"
        nbctl "$az" init -- set NB_Global . name="$az"
        sbctl "$az" init
        env_lines "$az" >"$d/env.sh"
        start_daemon "$d" ovn-northd ovn-northd \
            --ovnnb-db="unix:$(nb_sock "$az")" --ovnsb-db="unix:$(sb_sock "$az")"
        bin=$ours
        [ "$c_az" = "$i" ] && bin=$c_bin
        start_daemon "$d" ovn-ic "$bin" \
            --ovnnb-db="unix:$(nb_sock "$az")" --ovnsb-db="unix:$(sb_sock "$az")" \
            --ic-nb-db="unix:$ic_nb_sock" --ic-sb-db="unix:$ic_sb_sock"
    done

    echo "sandbox: creating transit switch ts1, gateways, routers and routes" >&2
    icnbctl ts-add ts1
    for az in "${azs[@]}"; do
        i=${az#az}
        # A fake interconnection gateway, as ovn-controller with
        # external_ids:ovn-is-interconn=true would register it.
        sbctl "$az" chassis-add "gw$i" geneve "192.168.0.$i" -- \
            set Chassis "gw$i" hostname="gw$i" other_config:is-interconn=true
        wait_for "ts1 in $az's NB" has_ls "$az" ts1 || failed_start "ts1 sync" "$dir/$az/ovn-ic.log"
        nbctl "$az" lr-add "lr$i" \
            -- lrp-add "lr$i" "lr$i-ts1" "aa:aa:aa:aa:aa:0$i" "169.254.100.$i/24" \
            -- lrp-set-gateway-chassis "lr$i-ts1" "gw$i" \
            -- lrp-add "lr$i" "lr$i-int" "00:00:00:00:00:0$i" "10.$i.0.1/24" \
            -- lr-route-add "lr$i" "10.$i.1.0/24" "10.$i.0.10" \
            -- lsp-add ts1 "lsp-lr$i-ts1" \
            -- lsp-set-type "lsp-lr$i-ts1" router \
            -- lsp-set-addresses "lsp-lr$i-ts1" router \
            -- lsp-set-options "lsp-lr$i-ts1" "router-port=lr$i-ts1" \
            -- set NB_Global . options:ic-route-adv=true options:ic-route-learn=true
        # Bind the chassis-redirect port to the gateway, as ovn-controller on gw$i would.
        wait_for "cr-lr$i-ts1 in $az's SB" has_pb "$az" "cr-lr$i-ts1" ||
            failed_start "ovn-northd" "$dir/$az/ovn-northd.log"
        sbctl "$az" lsp-bind "cr-lr$i-ts1" "gw$i"
    done

    echo "sandbox: waiting for every AZ to learn the other AZs' routes" >&2
    wait_sync
    if ! wait_for "route convergence" converged; then
        start_done=true
        print_summary
        echo "sandbox: the sandbox is still running for inspection (logs: $dir/*/*.log);" \
            "stop it with: $prog stop --dir $dir" >&2
        exit 1
    fi
    start_done=true
    print_summary
    print_env
}

case $cmd in
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
esac
