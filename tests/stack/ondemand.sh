# What the on-demand runs share (tests/bench/run.sh, tests/fault/soak.sh); sourced, with
# $repo and $build set and CTXD_STACK_DIR and the stack's ports exported:
#   ondemand_build [0]   builds the optimized tree in $build (RelWithDebInfo, no sanitizers:
#                        what production runs); 0 builds nothing
#   ondemand_stack       starts the private stack unless it runs (and then stops it when the
#                        script exits) and exports what its env file says
#   ondemand_plot TAG DAT SVG SCRIPT   plots DAT with a gnuplot SCRIPT; a plot that fails is
#                        a warning only
# shellcheck shell=bash

ondemand_build() {
  bash "$repo/tests/stack/deps.sh"
  [[ "${1:-1}" == 0 ]] && return 0
  cmake -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCTXD_SANITIZE=OFF -DCTXD_BUILD_TESTS=ON >/dev/null
  cmake --build "$build" -j"$(nproc)" >/dev/null
}

ondemand_started=0
ondemand_stop() { if ((ondemand_started)); then bash "$repo/tests/stack/stack.sh" stop || true; fi; }

ondemand_stack() {
  if ! bash "$repo/tests/stack/stack.sh" status 2>/dev/null; then
    bash "$repo/tests/stack/stack.sh" start
    ondemand_started=1
  fi
  trap ondemand_stop EXIT
  set -a
  # shellcheck disable=SC1091
  source "$CTXD_STACK_DIR/env"
  set +a
}

ondemand_plot() {
  if ! command -v gnuplot >/dev/null; then
    echo "$1: gnuplot not installed (tests/stack/deps.sh installs gnuplot-nox); no plot" >&2
  elif gnuplot -e "datafile='$2'; outfile='$3'" "$4"; then
    echo "$1: plot in $3"
  else
    echo "$1: the plot $3 failed" >&2
  fi
}
