#!/usr/bin/env bash
# The soak run (docs/operations.md, "Soak run"): one host for 30 minutes at 3,000 msg/s,
# each message's handler publishing an event that a second endpoint applies, with faults on
# a schedule (the broker restarted, the broker blocked, PostgreSQL restarted, the links slow,
# lossy and cut; the host killed, then those twice round; and again, cut short at 25 minutes
# by a failover to a synchronous replica, the last 5 minutes on it), the host's RSS and open
# files sampled every 5 s, exact counts at the end:
#
#   bash tests/fault/soak.sh [--no-build]
#
# It builds the optimized tree (build/bench: RelWithDebInfo without sanitizers, as
# tests/bench/run.sh does; a sanitizer build's RSS is not what production sees, nor can it
# take 3,000 msg/s), starts a private stack on its own ports unless that one runs already
# (and then stops it at the end), runs build/bench/tests/test_soak and writes
# tests/fault/results/ (or CTXD_SOAK_OUT): soak.txt (the table, the faults, the verdicts),
# soak.csv (the samples) and soak.svg (RSS, open files and rates against time; a plot that
# fails is a warning only). The link faults need root (a network namespace): without, the
# run goes direct and leaves them out. Knobs as in tests/fault/test_soak.c, with these
# defaults here: CTXD_SOAK_SECONDS 1800, CTXD_SOAK_RATE 3000, CTXD_SOAK_SAMPLE_S 5,
# CTXD_SOAK_FAULT_EVERY_S 60, CTXD_SOAK_HOLD_S 10, CTXD_SOAK_PREFETCH 512,
# CTXD_SOAK_WARMUP_S 20, CTXD_SOAK_MIN_SPAN_S 120, CTXD_SOAK_FAILOVER_AT_S 1500.
# Ports: CTXD_AMQP_PORT (5702), CTXD_RABBIT_DIST_PORT (25702), CTXD_EPMD_PORT (4402),
# CTXD_PG_PORT (5462), CTXD_TLS_PORT (5703); folder CTXD_STACK_DIR (.run/stack-soak).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
build=${CTXD_SOAK_BUILD:-$repo/build/bench}
out=${CTXD_SOAK_OUT:-$here/results}
export CTXD_STACK_DIR=${CTXD_STACK_DIR:-$repo/.run/stack-soak}
export CTXD_AMQP_PORT=${CTXD_AMQP_PORT:-5702} CTXD_RABBIT_DIST_PORT=${CTXD_RABBIT_DIST_PORT:-25702}
export CTXD_EPMD_PORT=${CTXD_EPMD_PORT:-4402} CTXD_PG_PORT=${CTXD_PG_PORT:-5462}
export CTXD_TLS_PORT=${CTXD_TLS_PORT:-5703}
export CTXD_SOAK_SECONDS=${CTXD_SOAK_SECONDS:-1800} CTXD_SOAK_RATE=${CTXD_SOAK_RATE:-3000}
export CTXD_SOAK_SAMPLE_S=${CTXD_SOAK_SAMPLE_S:-5} CTXD_SOAK_FAULT_EVERY_S=${CTXD_SOAK_FAULT_EVERY_S:-60}
export CTXD_SOAK_HOLD_S=${CTXD_SOAK_HOLD_S:-10} CTXD_SOAK_PREFETCH=${CTXD_SOAK_PREFETCH:-512}
export CTXD_SOAK_WARMUP_S=${CTXD_SOAK_WARMUP_S:-20} CTXD_SOAK_MIN_SPAN_S=${CTXD_SOAK_MIN_SPAN_S:-120}
export CTXD_SOAK_FAILOVER_AT_S=${CTXD_SOAK_FAILOVER_AT_S:-1500}
export CTXD_SOAK_CSV=$out/soak.csv

do_build=1
for a in "$@"; do
  case "$a" in
    --no-build) do_build=0 ;;
    *) echo "usage: soak.sh [--no-build]" >&2; exit 2 ;;
  esac
done

# shellcheck source=tests/stack/ondemand.sh
source "$repo/tests/stack/ondemand.sh"
ondemand_build "$do_build"
ondemand_stack
export CTXD_STACK_ENV=$CTXD_STACK_DIR/env

mkdir -p "$out"
echo "soak: $CTXD_SOAK_SECONDS s at $CTXD_SOAK_RATE msg/s on $build; output in $out"
status=0
# the host's log (its stderr, echoed by the test) beside the table
"$build/tests/test_soak" 2>"$out/soak-host.log" | tee "$out/soak.txt" || status=$?
if ((status != 0)); then
  echo "soak: FAILED (status $status); the end of the host's log and the test's messages:" >&2
  tail -n 30 "$out/soak-host.log" >&2
fi

ondemand_plot soak "$out/soak.csv" "$out/soak.svg" "$here/soak.gp"
exit "$status"
