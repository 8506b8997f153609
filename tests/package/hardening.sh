#!/usr/bin/env bash
# Checks the hardening of built ELF files (CMakeLists.txt, CTXD_HARDEN): the first is the
# host executable, the rest are plugins.
#   tests/package/hardening.sh [--fortify] HOST PLUGIN...
# Every file: full RELRO (a GNU_RELRO segment and immediate binding) and the stack
# protector (imports __stack_chk_fail). The host: a position-independent executable.
# --fortify (optimised builds only): the host calls _FORTIFY_SOURCE's checked functions.
set -euo pipefail
fortify=0
if [[ ${1:-} == --fortify ]]; then fortify=1; shift; fi
[[ $# -ge 1 ]] || { echo "usage: $0 [--fortify] HOST PLUGIN..." >&2; exit 2; }

failed=0
fail() { echo "FAIL: $1: $2" >&2; failed=1; }

check() {
  local f=$1 dyn segs syms
  dyn=$(readelf -d -W "$f")
  segs=$(readelf -l -W "$f")
  syms=$(readelf --dyn-syms -W "$f")
  grep -q 'GNU_RELRO' <<<"$segs" || fail "$f" "no GNU_RELRO segment (-z relro)"
  grep -Eq '\(FLAGS\).*BIND_NOW|\(FLAGS_1\).*\bNOW\b' <<<"$dyn" || fail "$f" "no BIND_NOW (-z now)"
  grep -Eq 'UND +__stack_chk_fail\b' <<<"$syms" || fail "$f" "does not import __stack_chk_fail (-fstack-protector-strong)"
  echo "$f: relro now stack-protector"
}

host=$1
shift
check "$host"
readelf -h "$host" | grep -Eq 'Type: +DYN' || fail "$host" "not a position-independent executable (ELF type is not DYN)"
readelf -d -W "$host" | grep -Eq '\(FLAGS_1\).*\bPIE\b' || fail "$host" "no PIE flag (-pie)"
if [[ $fortify -eq 1 ]]; then
  n=$(readelf --dyn-syms -W "$host" | grep -E 'UND +__[a-z_]+_chk\b' | grep -vc '__stack_chk_fail' || true)
  [[ $n -gt 0 ]] || fail "$host" "imports no __*_chk function (-D_FORTIFY_SOURCE=2 with -O>0)"
  echo "$host: pie fortify ($n checked functions)"
fi
for p in "$@"; do check "$p"; done
exit $failed
