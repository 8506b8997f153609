#!/usr/bin/env bash
# The full fault-injection run (the test suite runs a short one): 100,000 messages, ten
# SIGKILLs of the host, two broker and two PostgreSQL restarts. Needs the test build and
# the private servers (tests/check.sh leaves both; or tests/stack/stack.sh start).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
set -a
. .run/stack/env
set +a
CTXD_FAULT_MESSAGES=${CTXD_FAULT_MESSAGES:-100000} CTXD_FAULT_KILLS=${CTXD_FAULT_KILLS:-10} \
CTXD_FAULT_BROKER_RESTARTS=${CTXD_FAULT_BROKER_RESTARTS:-2} CTXD_FAULT_DB_RESTARTS=${CTXD_FAULT_DB_RESTARTS:-2} \
  build/test/tests/test_fault
