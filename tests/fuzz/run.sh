#!/usr/bin/env bash
# Builds the libFuzzer targets with clang and fuzzes each for SECONDS (default 30):
#   bash tests/fuzz/run.sh [SECONDS]
# New inputs that found coverage go to build/fuzz/corpus/<target>; a crash stops the run
# with its input in build/fuzz/crashes/ (fix it, then add the input to
# tests/fuzz/corpus/<target>/ so it replays in every build as unit.corpus_<target>).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
seconds=${1:-30}
command -v clang >/dev/null || { echo "fuzz: clang is needed (apt-get install clang)" >&2; exit 1; }
CC=clang cmake -S . -B build/fuzz -DCMAKE_BUILD_TYPE=Debug -DCTXD_SANITIZE=ON -DCTXD_FUZZ=ON >/dev/null
cmake --build build/fuzz -j"$(nproc)" --target fuzz_envelope fuzz_contract fuzz_config
mkdir -p build/fuzz/crashes
for t in envelope contract config; do
  mkdir -p "build/fuzz/corpus/$t"
  echo "fuzz: $t for ${seconds}s"
  "build/fuzz/tests/fuzz/fuzz_$t" -max_total_time="$seconds" -max_len=65536 -timeout=10 \
    -artifact_prefix="build/fuzz/crashes/$t-" -print_final_stats=1 \
    "build/fuzz/corpus/$t" "tests/fuzz/corpus/$t" 2>&1 | grep -E "stat::number_of_executed_units|stat::peak_rss|ERROR|SUMMARY" || true
  if ls build/fuzz/crashes/"$t"-* >/dev/null 2>&1; then
    echo "fuzz: $t crashed: $(ls build/fuzz/crashes/"$t"-*)" >&2
    exit 1
  fi
done
echo "fuzz: no crash"
