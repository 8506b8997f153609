#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds with AddressSanitizer and
# UndefinedBehaviorSanitizer, starts the private RabbitMQ and PostgreSQL (unless they
# already run), runs every test through CTest, and stops the servers it started.
#   tests/check.sh [ctest arguments...]    e.g. tests/check.sh -L unit
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

bash tests/stack/deps.sh
build=build/test
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Debug -DCTXD_SANITIZE=ON >/dev/null
cmake --build "$build" -j"$(nproc)"

started=0
if ! bash tests/stack/stack.sh status; then
  bash tests/stack/stack.sh start
  started=1
fi
stop() { if [[ $started -eq 1 ]]; then bash tests/stack/stack.sh stop; fi; }
trap stop EXIT

set -a
. .run/stack/env
set +a
# the suite shares one broker and one database server: tests run one at a time
ctest --test-dir "$build" --output-on-failure --no-tests=error "$@"
