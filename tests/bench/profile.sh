#!/usr/bin/env bash
# CPU time per message of ctxd, PostgreSQL and the broker in the middle of an e2e drain,
# and a profile of ctxd (docs/performance.md, "Where the time goes"):
#
#   bash tests/bench/profile.sh [--messages N] [--window S] [--perf] [--stat] [bench options...]
#   bash tests/bench/profile.sh --callgrind [--messages N] [bench options...]
#
# Runs the e2e benchmark once (run.sh --no-build --only e2e --runs 1; the bench build and a
# running stack are needed, CTXD_* as for run.sh). Once the draining host has run for a
# second it reads, for S seconds (3), the utime+stime of the host, of every PostgreSQL
# process (the backends that ended are in the postmaster's cutime+cstime) and of the
# broker, and the rows benchkit.items gained; it prints microseconds of CPU per message.
# CPU time is robust to other work on the machine, throughput is not. --perf records ctxd
# with call graphs over the window (perf.data in the output folder; read it with
# `perf report -i ...`), --stat counts its instructions and cycles (`perf stat`).
# --callgrind runs every host under valgrind's callgrind instead (slow: --messages 20000 is
# plenty) and prints ctxd's instructions per message: those of the draining host minus
# those of a start-up run (start, 1 s idle, stop), divided by N; exact, whatever else runs
# on the machine. Read a profile with `callgrind_annotate <file>`.
# --ctxd PATH profiles another build of the host (an older commit's, to compare).
# Output in CTXD_BENCH_OUT (tests/bench/results/profile).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
build=${CTXD_BENCH_BUILD:-$repo/build/bench}
out=${CTXD_BENCH_OUT:-$here/results/profile}
export CTXD_STACK_DIR=${CTXD_STACK_DIR:-$repo/.run/stack-bench}

messages=300000 window=3 perf=0 stat=0 callgrind=0 ctxd=$(readlink -f "$build/runtime/ctxd")
args=()
while (($#)); do
  case "$1" in
    --messages) messages=$2; shift ;;
    --callgrind) callgrind=1 ;;
    --ctxd) ctxd=$(readlink -f "$2"); shift ;;
    --window) window=$2; shift ;;
    --perf) perf=1 ;;
    --stat) stat=1 ;;
    *) args+=("$1") ;;
  esac
  shift
done
# shellcheck disable=SC1091
source "$CTXD_STACK_DIR/env"
mkdir -p "$out"
hz=$(getconf CLK_TCK)

# utime+stime (+ cutime+cstime when $2) of pid $1, in ticks; 0 once it is gone
ticks() {
  local s
  s=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
  s=${s##*) }
  read -r -a f <<<"$s"
  # fields after the name: state is [0], utime [11], stime [12], cutime [13], cstime [14]
  if [[ ${2:-} ]]; then echo $((f[11] + f[12] + f[13] + f[14])); else echo $((f[11] + f[12])); fi
}
# the stack's PostgreSQL: the postmaster with its reaped children, and its live children
pg_ticks() {
  local pm t c
  pm=$(head -1 "$CTXD_STACK_DIR/pg/data/postmaster.pid")
  t=$(ticks "$pm" 1)
  for c in $(cat "/proc/$pm/task/$pm/children"); do t=$((t + $(ticks "$c"))); done
  echo "$t"
}
broker_pid=$(cat "$CTXD_STACK_DIR/rabbit/rabbit.pid")
items() { psql -qAt "$CTXD_PG_URL" -c "SELECT count(*) FROM benchkit.items"; }

# the bench's draining host: the one of our build that lives longer than a start-up run
find_host() {
  local p
  for p in /proc/[0-9]*; do
    [[ $(readlink "$p/exe" 2>/dev/null) == "$ctxd" ]] && echo "${p#/proc/}"
  done
}

if ((callgrind)); then
  rm -f "$out"/callgrind.out.*
  printf '#!/bin/sh\nexec valgrind --tool=callgrind --callgrind-out-file="%s/callgrind.out.%%p" --log-file="%s/valgrind.%%p.log" "%s" "$@"\n' \
    "$out" "$out" "$ctxd" >"$out/ctxd-callgrind"
  chmod +x "$out/ctxd-callgrind"
  CTXD_BENCH_OUT=$out bash "$here/run.sh" --no-build --only e2e --runs 1 --messages "$messages" "${args[@]}" \
    --ctxd "$out/ctxd-callgrind" >"$out/bench.txt" 2>&1 || { echo "profile: the benchmark failed; see $out/bench.txt" >&2; exit 1; }
  # in start order: the start-up runs, then the draining host
  mapfile -t files < <(ls -tr "$out"/callgrind.out.*)
  ir() { awk '/^(summary|totals):/ {print $2; exit}' "$1"; }
  awk -v n="$messages" -v idle="$(ir "${files[1]}")" -v drain="$(ir "${files[-1]}")" -v f="${files[-1]}" \
    'BEGIN { printf "ctxd instructions per message: %.0f (%s)\n", (drain - idle) / n, f }' | tee "$out/profile.txt"
  exit 0
fi

CTXD_BENCH_OUT=$out bash "$here/run.sh" --no-build --only e2e --runs 1 --messages "$messages" "${args[@]}" \
  --ctxd "$ctxd" >"$out/bench.txt" 2>&1 &
bench=$!
host=""
declare -A seen
while kill -0 "$bench" 2>/dev/null && [[ -z $host ]]; do
  for p in $(find_host); do
    [[ ${seen[$p]:-} ]] || seen[$p]=$SECONDS
    # start-up runs end about a second after ready; the drain goes on
    if ((SECONDS - seen[$p] >= 2)) && (($(items) > 0)); then host=$p; fi
  done
  sleep 0.2
done
[[ -n $host ]] || { echo "profile: no draining host found; see $out/bench.txt" >&2; wait "$bench"; exit 1; }

i0=$(items) c0=$(ticks "$host") g0=$(pg_ticks) b0=$(ticks "$broker_pid")
t0=$(date +%s.%N)
if ((perf)); then
  perf record -q -g -p "$host" -o "$out/perf.data" -- sleep "$window" 2>"$out/perf-record.txt"
elif ((stat)); then
  perf stat -e task-clock,instructions,cycles -p "$host" -o "$out/perf-stat.txt" -- sleep "$window"
else
  sleep "$window"
fi
alive=$(kill -0 "$host" 2>/dev/null && echo 1 || echo 0)
i1=$(items) c1=$(ticks "$host") g1=$(pg_ticks) b1=$(ticks "$broker_pid")
t1=$(date +%s.%N)
((alive)) || { echo "profile: the drain ended inside the window: more --messages" >&2; wait "$bench"; exit 1; }
wait "$bench" || { echo "profile: the benchmark failed; see $out/bench.txt" >&2; exit 1; }

n=$((i1 - i0))
((n > 0)) || { echo "profile: no message handled in the window (drain too short: --messages)" >&2; exit 1; }
awk -v n="$n" -v hz="$hz" -v c=$((c1 - c0)) -v g=$((g1 - g0)) -v b=$((b1 - b0)) -v t0="$t0" -v t1="$t1" \
  'BEGIN {
     us = 1e6 / hz / n
     printf "profile: %d messages in %.2f s (%.0f msg/s) in the window\n", n, t1 - t0, n / (t1 - t0)
     printf "CPU per message: ctxd %.1f us, PostgreSQL %.1f us, broker %.1f us (tick %.0f ms)\n",
            c * us, g * us, b * us, 1000 / hz
   }' | tee "$out/profile.txt"
if ((stat)); then
  awk -v n="$n" '/instructions/ && $1 ~ /^[0-9,]+$/ {gsub(",", "", $1); printf "ctxd instructions per message: %.0f\n", $1 / n}' \
    "$out/perf-stat.txt" | tee -a "$out/profile.txt"
fi
grep -E "e2e|per transaction" "$out/bench.txt" | tee -a "$out/profile.txt" || true
