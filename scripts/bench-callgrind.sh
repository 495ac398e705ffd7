#!/usr/bin/env bash
# Instructions per change, counted by callgrind: does a change cost more when there are more
# routes? Runs the multi-AZ benchmark (tests/bench_multi_az.rs, ours only) with the daemons of
# some AZs under `valgrind --tool=callgrind`, instrumentation off through the cold start and on
# for the changes, and prints the instructions each of them executed per change. Instruction
# counts do not depend on the machine's load, so two route counts compare exactly.
#
#   cargo build --release
#   scripts/bench-callgrind.sh 100 && scripts/bench-callgrind.sh 2000
#
# Arguments: R (routes per AZ, default 500), N (changes, default 40). Environment: OVN_IC_BIN
# (default target/release/ovn-ic), CG_AZS (AZs under callgrind, default "az1 az2": az1 makes
# the changes, az2 learns them), CG_OUT (where the callgrind files go, default a temp dir;
# `callgrind_annotate FILE` shows where the instructions went), CG_OPTS (more callgrind
# options: `--cache-sim=yes` adds simulated cache misses per change), BENCH_AZS / BENCH_TS as
# for the benchmark. The window opens when the benchmark starts its changes (the first may be
# partly missed) and closes when the instrumented daemons have used no CPU for 3 s.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
R=${1:-500}
N=${2:-40}
bin=$(realpath "${OVN_IC_BIN:-target/release/ovn-ic}")
out=${CG_OUT:-$(mktemp -d /tmp/ovn-ic-callgrind-XXXXXX)}
mkdir -p "$out"
command -v callgrind_control >/dev/null || { echo "needs valgrind" >&2; exit 1; }

# The benchmark starts every AZ's daemon through this wrapper.
wrap="$out/ovn-ic-wrapper"
cat >"$wrap" <<EOF
#!/bin/sh
for a in ${CG_AZS:-az1 az2}; do
  case "\$*" in
    *"/ovnic-\$a-nb-"*) exec valgrind --tool=callgrind --instr-atstart=no ${CG_OPTS:-} \\
        --callgrind-out-file=$out/\$a.%p "$bin" "\$@";;
  esac
done
exec "$bin" "\$@"
EOF
chmod +x "$wrap"

log="$out/bench.log"
OVN_IC_BIN="$wrap" BENCH_ONLY=ours BENCH_ROUTES="$R" BENCH_CHANGES="$N" BENCH_IDLE_SECS=30 \
    cargo test --release --test bench_multi_az -- --ignored --nocapture >"$log" 2>&1 &
bench=$!
trap 'kill $bench 2>/dev/null || true' EXIT

until grep -q ": $N changes\$" "$log"; do
    kill -0 $bench 2>/dev/null || { tail -20 "$log"; exit 1; }
    sleep 0.1
done
# The daemons of the measured run (the ones the topology set-up started have exited).
mapfile -t pids < <(pgrep -f "callgrind.*--callgrind-out-file=$out/")
for p in "${pids[@]}"; do callgrind_control -i on "$p" >/dev/null 2>&1; done

cpu() { for p in "${pids[@]}"; do awk '{print $14 + $15}' "/proc/$p/stat"; done | tr '\n' ' '; }
prev=$(cpu)
quiet=0
while [ $quiet -lt 3 ]; do
    sleep 1
    cur=$(cpu)
    if [ "$cur" = "$prev" ]; then quiet=$((quiet + 1)); else quiet=0; prev=$cur; fi
done
for p in "${pids[@]}"; do callgrind_control -d "$p" >/dev/null 2>&1; done
wait $bench
trap - EXIT

echo "R=$R, $N changes (files in $out), per change:"
for f in "$out"/az*.*.1; do
    events=$(sed -n 's/^events: *//p' "$f")
    totals=$(sed -n 's/^totals: *//p' "$f")
    printf '  %-6s' "$(basename "$f" | cut -d. -f1)"
    paste <(tr ' ' '\n' <<<"$events") <(tr ' ' '\n' <<<"$totals") |
        while read -r e t; do printf ' %s %d' "$e" $((t / N)); done
    echo
done
