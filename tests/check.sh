#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds with AddressSanitizer and
# UndefinedBehaviorSanitizer, starts the private RabbitMQ and PostgreSQL (unless they
# already run), runs every test through CTest, and stops the servers it started.
#   tests/check.sh [ctest arguments...]    e.g. tests/check.sh -L unit
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

. tests/stack/prepare.sh build/test -DCMAKE_BUILD_TYPE=Debug -DCTXD_SANITIZE=ON
# a bounded fuzzing run first (longer ones: bash tests/fuzz/run.sh SECONDS), so that
# CTest's summary closes the output
if [[ $# -eq 0 ]]; then bash tests/fuzz/run.sh "${CTXD_FUZZ_SECONDS:-20}"; fi
# the suite shares one broker and one database server: tests run one at a time
ctest --test-dir "$build" --output-on-failure --no-tests=error "$@"
