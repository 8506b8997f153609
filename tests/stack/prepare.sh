# Sourced by tests/check.sh and tests/demo.sh: installs what is missing, configures and
# builds into BUILD_DIR with the CMake arguments given, starts the private servers unless
# they run already (and stops the ones it started when the script exits, unless
# CTXD_KEEP_STACK is set), and exports their URLs.
# usage: . tests/stack/prepare.sh BUILD_DIR [cmake arguments...]
build=$1
shift
bash tests/stack/deps.sh
cmake -S . -B "$build" "$@" >/dev/null
cmake --build "$build" -j"$(nproc)"

started=0
stack_stop() {
  if [[ $started -eq 1 && -z "${CTXD_KEEP_STACK:-}" ]]; then bash tests/stack/stack.sh stop; fi
}
trap stack_stop EXIT
if ! bash tests/stack/stack.sh status; then
  # set first: a start that fails halfway still stops what it started
  started=1
  bash tests/stack/stack.sh start
fi
set -a
. <(bash tests/stack/stack.sh env)
set +a
