#!/usr/bin/env bash
# Runs every ctxd benchmark in one go (docs/performance.md):
#
#   bash tests/bench/run.sh [--no-build] [--full-inbox] [--endpoints] [bench options...]
#
# builds a RelWithDebInfo tree (build/bench, no sanitizers), starts a private RabbitMQ and
# PostgreSQL on their own ports (unless that stack already runs), runs tests/bench/bench.c,
# stops the stack it started, and writes tests/bench/results/{results.md,results.json,
# throughput.svg} (or CTXD_BENCH_OUT). --full-inbox fills the inbox with 10 million rows instead of 1 million.
# Other options go to the benchmark (--messages N, --runs R, --rate N, --inbox-rows N, --no-batch,
# --only ..., ...). Then tests/bench/bench_endpoints.c measures hosts of 1 to 500 endpoints
# (endpoints.{md,json,svg}); --endpoints runs only that one. A failing plot step is a warning only.
# Ports: CTXD_AMQP_PORT (5692), CTXD_RABBIT_DIST_PORT (25692), CTXD_EPMD_PORT (4392),
# CTXD_PG_PORT (5452); folder CTXD_STACK_DIR (.run/stack-bench).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
build=${CTXD_BENCH_BUILD:-$repo/build/bench}
out=${CTXD_BENCH_OUT:-$here/results}
export CTXD_STACK_DIR=${CTXD_STACK_DIR:-$repo/.run/stack-bench}
export CTXD_AMQP_PORT=${CTXD_AMQP_PORT:-5692} CTXD_RABBIT_DIST_PORT=${CTXD_RABBIT_DIST_PORT:-25692}
export CTXD_EPMD_PORT=${CTXD_EPMD_PORT:-4392} CTXD_PG_PORT=${CTXD_PG_PORT:-5452}
# commit times, so that latency is measured up to the COMMIT (pg_xact_commit_timestamp)
export CTXD_PG_SETTINGS="${CTXD_PG_SETTINGS:-} -c track_commit_timestamp=on"

do_build=1 only_endpoints=0
args=()
for a in "$@"; do
  case "$a" in
    --no-build) do_build=0 ;;
    --endpoints) only_endpoints=1 ;;
    --full-inbox) args+=(--inbox-rows 10000000) ;;
    *) args+=("$a") ;;
  esac
done

# shellcheck source=tests/stack/ondemand.sh
source "$repo/tests/stack/ondemand.sh"
ondemand_build "$do_build"
ondemand_stack

mkdir -p "$out"
rm -rf "$out/logs"
# Every context plugin that was built, with the settings the dev configuration gives it.
/usr/bin/python3 - "$repo" "$build/plugins" >"$out/plugins.json" <<'PY'
import json, os, sys
repo, plugdir = sys.argv[1], sys.argv[2]
dev = {p["name"]: p for p in json.load(open(os.path.join(repo, "config/ctxd.json")))["plugins"]}
plugins = []
for name in sorted(os.listdir(os.path.join(repo, "plugins"))):
    # the simulator feeds traffic of its own: not in a measurement
    if name != "simulator" and os.path.exists(os.path.join(plugdir, "ctxd_%s.so" % name)):
        plugins.append(dev.get(name, {"name": name}))
json.dump(plugins, sys.stdout)
PY
echo "bench: contexts loaded: $(/usr/bin/python3 -c 'import json,sys; print(", ".join(p["name"] for p in json.load(open(sys.argv[1]))))' "$out/plugins.json")"

cd "$repo"  # plugin settings name files relative to the repository
if ((only_endpoints == 0)); then
  "$build/tests/bench/ctxd_bench" --amqp "$CTXD_AMQP_URL" --pg "$CTXD_PG_URL" --ctxd "$build/runtime/ctxd" \
    --refworker "$build/tests/bench/ctxd_refworker" --plugin-dir "$build/plugins" --plugins "$out/plugins.json" --out "$out" "${args[@]}" | tee "$out/results.txt"

  ondemand_plot bench "$out/throughput.dat" "$out/throughput.svg" "$here/plot.gp"
fi
# the rabbitmqctl of the stack counts the host's channels
"$build/tests/bench/ctxd_bench_endpoints" --amqp "$CTXD_AMQP_URL" --pg "$CTXD_PG_URL" --ctxd "$build/runtime/ctxd" \
  --plugin-dir "$build/plugins" --plugins "$out/plugins.json" --out "$out" \
  --ctl "bash $repo/tests/stack/stack.sh ctl" | tee "$out/endpoints.txt"
ondemand_plot bench "$out/endpoints.dat" "$out/endpoints.svg" "$here/plot_endpoints.gp"
