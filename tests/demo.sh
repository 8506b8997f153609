#!/usr/bin/env bash
# Builds ctxd and runs the host with every context (config/ctxd.json) against a private
# RabbitMQ and PostgreSQL that it starts on loopback. Ctrl-C stops the host, then the
# servers this script started (set CTXD_KEEP_STACK=1 to leave them running).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

. tests/stack/prepare.sh build/release -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCTXD_BUILD_TESTS=OFF
# The demo's own virtual host: the test suite shares these servers, and its hosts publish
# to the same message-type exchanges, which would route test traffic into the demo's
# queues. (The database is the demo's own already: tests create one each.)
vhost=ctxd-demo
if ! bash tests/stack/stack.sh ctl list_vhosts --quiet --no-table-headers name | grep -qx "$vhost"; then
  bash tests/stack/stack.sh ctl add_vhost "$vhost" >/dev/null
fi
bash tests/stack/stack.sh ctl set_permissions -p "$vhost" guest '.*' '.*' '.*' >/dev/null
export CTXD_AMQP_URL="$CTXD_AMQP_URL/$vhost"
# The operator console (admin.listen) with actions enabled: a token of this run's own, in a
# copy of the configuration that names its file (the checked-in file stays read-only).
mkdir -p .run
(umask 077 && od -An -N16 -tx1 /dev/urandom | tr -d ' \n' >.run/console-token)
sed 's|"listen": "127.0.0.1:9464"|&, "token_file": "'"$repo"'/.run/console-token"|' config/ctxd.json >.run/demo.json
grep -q token_file .run/demo.json || { echo "demo: could not add the console token to the configuration" >&2; exit 1; }
echo "demo: operator console at http://127.0.0.1:9464/ (token: $(cat .run/console-token))" >&2
# The SMS provider the notification context calls and the system issuing the vouchers and
# red packets the fulfillment context calls (config/ctxd.json: 127.0.0.1:8025, /sms and
# /benefits): the tests' fake one (tests/fakeprovider), built here on its own since this tree
# leaves the tests out. It logs each SMS and benefit it accepts; make it refuse the next N
# for good with POST /control {"mode": "refuse", "count": N} (422), or fail them for a
# moment, tried again, with {"mode": "fail", "count": N} (500).
cc -std=c11 -D_GNU_SOURCE -O2 -o build/release/ctxd_fakeprovider tests/fakeprovider/fakeprovider.c \
  $(pkg-config --cflags --libs libuv jansson) -lhttp_parser
build/release/ctxd_fakeprovider 8025 &
provider=$!
# not exec: the trap must run after the host exits
build/release/runtime/ctxd run --config .run/demo.json &
host=$!
trap 'kill -TERM $host 2>/dev/null || true' INT TERM
wait $host || true
wait $host 2>/dev/null || true
kill -TERM $provider 2>/dev/null || true
wait $provider 2>/dev/null || true
