#!/usr/bin/env bash
# The full node-loss run on the three-node cluster (the test suite runs a short one):
# 20,000 messages, two hosts, node 1 stopped mid-stream and started again. Needs the test
# build and the private servers (tests/check.sh builds it; tests/stack/stack.sh start);
# starts the cluster when it is not running and leaves it running.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
bash tests/stack/stack.sh cluster-start
set -a
. .run/stack/env
. <(bash tests/stack/stack.sh cluster-env)
set +a
CTXD_CLUSTER_MESSAGES=${CTXD_CLUSTER_MESSAGES:-20000} build/test/tests/test_cluster
