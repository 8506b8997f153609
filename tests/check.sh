#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds with AddressSanitizer and
# UndefinedBehaviorSanitizer, starts the private RabbitMQ and PostgreSQL and the
# three-node RabbitMQ cluster (unless they already run), runs every test through CTest,
# and stops the servers it started.
#   tests/check.sh [ctest arguments...]    e.g. tests/check.sh -L unit
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

. tests/stack/prepare.sh build/test -DCMAKE_BUILD_TYPE=Debug -DCTXD_SANITIZE=ON

# the cluster for tests/cluster starts in the background while the fuzzers run
cluster_started=0 cluster_pid=
cluster_stop() {
  if [[ -n $cluster_pid ]]; then wait "$cluster_pid" || true; fi
  if [[ $cluster_started -eq 1 && -z "${CTXD_KEEP_STACK:-}" ]]; then bash tests/stack/stack.sh cluster-stop; fi
  stack_stop
}
trap cluster_stop EXIT
if ! bash tests/stack/stack.sh cluster-status; then
  cluster_started=1
  mkdir -p .run
  bash tests/stack/stack.sh cluster-start >.run/cluster-start.log 2>&1 &
  cluster_pid=$!
fi

# a bounded fuzzing run first (longer ones: bash tests/fuzz/run.sh SECONDS), so that
# CTest's summary closes the output
if [[ $# -eq 0 ]]; then bash tests/fuzz/run.sh "${CTXD_FUZZ_SECONDS:-20}"; fi

if [[ -n $cluster_pid ]]; then
  pid=$cluster_pid cluster_pid=
  if ! wait "$pid"; then cat .run/cluster-start.log >&2; exit 1; fi
  cat .run/cluster-start.log
fi
set -a
. <(bash tests/stack/stack.sh cluster-env)
set +a
# the integration tests share one broker and one database server: their resource lock
# (tests/CMakeLists.txt) runs them one at a time, even when ctest -j is passed
ctest --test-dir "$build" --output-on-failure --no-tests=error "$@"
