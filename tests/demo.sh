#!/usr/bin/env bash
# Builds ctxd and runs the host with every context (config/ctxd.json) against a private
# RabbitMQ and PostgreSQL that it starts on loopback. Ctrl-C stops the host, then the
# servers this script started (set CTXD_KEEP_STACK=1 to leave them running).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

bash tests/stack/deps.sh
build=build/release
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCTXD_BUILD_TESTS=OFF >/dev/null
cmake --build "$build" -j"$(nproc)"

started=0
if ! bash tests/stack/stack.sh status; then
  bash tests/stack/stack.sh start
  started=1
fi
stop() {
  if [[ $started -eq 1 && -z "${CTXD_KEEP_STACK:-}" ]]; then bash tests/stack/stack.sh stop; fi
}
trap stop EXIT

set -a
. .run/stack/env
set +a
export CTXD_PLUGIN_DIR="$repo/$build/plugins"
# not exec: the trap must run after the host exits
"$build/runtime/ctxd" run --config config/ctxd.json &
host=$!
trap 'kill -TERM $host 2>/dev/null || true' INT TERM
wait $host || true
wait $host 2>/dev/null || true
