#!/usr/bin/env bash
# A private RabbitMQ node and PostgreSQL cluster on loopback, in a scratch folder, for the
# demo, the tests and the benchmarks.
#
#   stack.sh start    start both (reuses servers this folder already runs), write env file
#   stack.sh stop     stop both (and the TLS node and the links below), by the PIDs this
#                     script recorded
#   stack.sh status   exit 0 when both run, 1 otherwise
#   stack.sh env      print the env file: the URLs (CTXD_AMQP_URL, CTXD_PG_URL) and the
#                     settings below, so that with it sourced this script finds these servers
#   stack.sh restart-broker | restart-db   stop and start one server (fault tests)
#   stack.sh stop-broker | start-broker     the broker alone (readiness tests)
#
# A three-node RabbitMQ cluster on loopback, for the cluster tests (separate from the above:
# stop/start never touch it, the cluster commands never touch the single node):
#   stack.sh cluster-start    start nodes ctxd-c1-<port>@localhost, c2, c3 (reuses running
#                             ones, joins fresh nodes 2 and 3 to node 1), write cluster/env
#   stack.sh cluster-stop     stop the three nodes and their epmd, by the recorded PIDs
#   stack.sh cluster-status   exit 0 when the three nodes run as one cluster, 1 otherwise
#   stack.sh cluster-env      print cluster/env (CTXD_CLUSTER_URLS, CTXD_CLUSTER_NODE1..3, ...,
#                             and the cluster's settings below)
#   stack.sh cluster-stop-node N | cluster-start-node N   one node (N = 1..3), waiting until
#                             it is gone / has rejoined the cluster
#   stack.sh ctl ARGS...      rabbitmqctl against the single node, with its environment
#   stack.sh cluster-ctl N ARGS...   rabbitmqctl against node N, with its environment
#   stack.sh cluster-wipe     cluster-stop, then delete the cluster's data (a fresh cluster next)
#
# A RabbitMQ node with only a TLS listener, for the TLS tests (separate from the others):
#   stack.sh tls-start CERTS  start node ctxd-tls-<port>@localhost with the certificates in
#                             folder CERTS (ca.pem, server.pem, server.key, as
#                             tests/stack/tls-certs.sh makes them); it requires a client
#                             certificate signed by that CA (verify_peer,
#                             fail_if_no_peer_cert); write tls/env (CTXD_AMQPS_URL)
#   stack.sh tls-stop         stop it and its epmd
# PostgreSQL's TLS, on the single cluster (plain connections keep working):
#   stack.sh pg-tls CERTS     ssl = on with CERTS' server.pem, server.key and ca.pem (copied
#                             beside the cluster: the server reads them at every reload)
#   stack.sh pg-tls off       ssl = off again
# A streaming replica of that cluster, for the failover tests (the primary keeps its port):
#   stack.sh pg-replica start [--sync]   pg_basebackup of the primary, started as a standby
#                             on CTXD_PG_REPLICA_PORT (PG port + 1); --sync makes it the
#                             primary's synchronous standby (a commit returns once the
#                             replica flushed it), else replication is asynchronous
#   stack.sh pg-replica detach   the replica stops streaming (it falls behind, as a lagging
#                             asynchronous standby does); not with --sync: commits would wait
#   stack.sh pg-primary-kill  SIGKILL the primary's postmaster, waiting until its processes
#                             are gone (a crash: no shutdown checkpoint, nothing more sent)
#   stack.sh pg-promote       promote the replica to a primary, waiting until it accepts writes
#   stack.sh pg-replica stop  stop and delete the replica, start the primary again if it is
#                             down, and make its replication asynchronous again
#
# Network links, for the network fault tests (root only: a network namespace, a veth pair
# and nftables; the servers keep listening on loopback only). A host pointed at a link's
# URL reaches the server across the veth pair, through a forwarder (tests/stack/link.c)
# listening in the namespace, which connects to the server on loopback:
#   stack.sh link-up [--bin PATH]   namespace ctxd-link-<AMQP port>, veth pair
#                             ctxl<AMQP port>h / ctxl<AMQP port>n on a /30 subnet derived from
#                             the AMQP port, a forwarder for the broker and one for PostgreSQL
#                             (PATH: the ctxd_link binary, default build/test/tests/ctxd_link);
#                             adds CTXD_LINK_AMQP_URL and CTXD_LINK_PG_URL (the direct URLs
#                             with the namespace's address) to the env file, and prints them
#   stack.sh link-delay MS [broker|db|both]  added latency, each way (in the forwarder)
#   stack.sh link-loss PCT [broker|db|both]  random packet loss, each way (nftables numgen)
#   stack.sh link-cut [broker|db|both]       a silent partition: every packet dropped
#   stack.sh link-heal [broker|db|both]      no delay, no loss, no cut
#   stack.sh link-status      what is in force
#   stack.sh link-down        forwarders stopped (by their PIDs), rules, veth and namespace gone
# A link command without a link name means both; each is idempotent and returns at once.
# stop runs link-down.
#
# Settings (environment): CTXD_STACK_DIR (default <repo>/.run/stack), CTXD_AMQP_PORT (5682),
# CTXD_RABBIT_DIST_PORT (25682), CTXD_EPMD_PORT (4382), CTXD_PG_PORT (5442). The defaults
# stay clear of the system servers' ports (5672, 25672, 4369, 5432).
# Cluster: CTXD_CLUSTER_PORT (5722; nodes use it, +1, +2), CTXD_CLUSTER_DIST_PORT (port
# + 20000 = 25722, +1, +2), CTXD_CLUSTER_EPMD_PORT (port - 1300 = 4422), CTXD_CLUSTER_DIR
# (<stack dir>/cluster). Another cluster can run beside it with another CTXD_CLUSTER_PORT
# and CTXD_CLUSTER_DIR.
# TLS node: CTXD_TLS_PORT (AMQP port + 1 = 5683), CTXD_TLS_DIST_PORT (port + 20000),
# CTXD_TLS_EPMD_PORT (port - 1300); its files in <stack dir>/tls.
# CTXD_PG_SETTINGS: more server settings ("-c name=value ..."), e.g. the benchmark's
# track_commit_timestamp.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
DIR=${CTXD_STACK_DIR:-$repo/.run/stack}
AMQP_PORT=${CTXD_AMQP_PORT:-5682}
DIST_PORT=${CTXD_RABBIT_DIST_PORT:-25682}
EPMD_PORT=${CTXD_EPMD_PORT:-4382}
PG_PORT=${CTXD_PG_PORT:-5442}
PG_REPLICA_PORT=${CTXD_PG_REPLICA_PORT:-$((PG_PORT + 1))}
NODE="ctxd-$AMQP_PORT@localhost"
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
START_DEADLINE=${CTXD_STACK_DEADLINE:-120}
CLUSTER_PORT=${CTXD_CLUSTER_PORT:-5722}
CLUSTER_DIST=${CTXD_CLUSTER_DIST_PORT:-$((CLUSTER_PORT + 20000))}
CLUSTER_EPMD=${CTXD_CLUSTER_EPMD_PORT:-$((CLUSTER_PORT - 1300))}
CDIR=${CTXD_CLUSTER_DIR:-$DIR/cluster}
LDIR=$DIR/link
TLS_PORT=${CTXD_TLS_PORT:-$((AMQP_PORT + 1))}
TLS_DIST=${CTXD_TLS_DIST_PORT:-$((TLS_PORT + 20000))}
TLS_EPMD=${CTXD_TLS_EPMD_PORT:-$((TLS_PORT - 1300))}
TLS_CERTS= # set by tls-start: node_launch then writes a TLS-only listener

die() { echo "stack: $*" >&2; exit 1; }
log() { echo "stack: $*" >&2; }

alive() { [[ -n "${1:-}" ]] && kill -0 "$1" 2>/dev/null; }
pid_of() { [[ -s "$1" ]] && cat "$1" || true; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# A RabbitMQ node is described by six values, passed in this order to the node_* functions:
#   NAME AMQP_PORT DIST_PORT EPMD_PORT BASE HOME
# BASE holds its config, mnesia, log and pid files; HOME holds its Erlang cookie.

# Every rabbitmq command must see the same variables, or it cannot reach the node and
# litters the real HOME with an Erlang cookie and a stray epmd.
node_env() {
  local base=$5
  export HOME="$6"
  export RABBITMQ_NODENAME="$1"
  export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
  export RABBITMQ_NODE_PORT="$2"
  export RABBITMQ_DIST_PORT="$3"
  export ERL_EPMD_ADDRESS=127.0.0.1
  export ERL_EPMD_PORT="$4"
  export RABBITMQ_MNESIA_BASE="$base/mnesia"
  export RABBITMQ_LOG_BASE="$base/log"
  export RABBITMQ_PID_FILE="$base/rabbit.pid"
  export RABBITMQ_CONF_ENV_FILE="$base/rabbitmq-env.conf"
  export RABBITMQ_CONFIG_FILE="$base/rabbitmq"
  export RABBITMQ_ENABLED_PLUGINS_FILE="$base/enabled_plugins"
  export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
  export RABBITMQ_CTL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
  # the /usr/sbin wrappers switch to user rabbitmq when run as root, changing HOME
  export PATH="/usr/lib/rabbitmq/bin:$PATH"
}

# node_ctl NODE... ARGS: rabbitmqctl against that node. The CLI starts an epmd when none
# answers on the port (a node that is not running, or settings that name another stack),
# and that epmd would outlive it: -start_epmd false, in ERL_FLAGS because the CLI starts
# it from a helper Erlang VM (ensure_epmd) that RABBITMQ_CTL_ERL_ARGS does not reach.
node_ctl() { (node_env "${@:1:6}"; ERL_FLAGS="-start_epmd false" rabbitmqctl -n "$1" "${@:7}"); }

# ctl_check EPMD_PORT NAME: for the ctl commands, a plain reason instead of the CLI's
# "nodistribution" when no epmd runs on the port
ctl_check() {
  port_open "$1" || die "no epmd on 127.0.0.1:$1, so $2 is not running (start it, or source the env file of the stack you mean)"
}

node_running() { alive "$(pid_of "$5/server.pid")" && node_ctl "${@:1:6}" -q status >/dev/null 2>&1; }

# epmd_start PORT PID_FILE LOG_FILE PORT_SETTING: a private epmd on loopback, unless the
# one recorded in PID_FILE still runs (epmd outlives the brokers)
epmd_start() {
  alive "$(pid_of "$2")" && return 0
  port_open "$1" && die "port $1 is taken by another process (set $4)"
  setsid epmd -address 127.0.0.1 -port "$1" </dev/null >"$3" 2>&1 &
  echo $! >"$2"
  # the broker and the CLI register with it right away, and the CLI starts none of its own
  local end=$((SECONDS + 10))
  until port_open "$1"; do
    ((SECONDS < end)) || die "epmd did not listen on 127.0.0.1:$1 within 10s (see $3)"
    sleep 0.05
  done
}

epmd_stop() {
  local epmd; epmd=$(pid_of "$1")
  if alive "$epmd"; then kill -TERM "$epmd" 2>/dev/null || true; wait_gone "$epmd" 10 || true; fi
  rm -f "$1"
}

# node_launch NODE... EPMD_PID_FILE PORT_SETTING [EPMD_PORT_SETTING]: write the node's
# config, make sure its epmd runs and start the broker in the background, without waiting
node_launch() {
  local name=$1 port=$2 base=$5 home=$6
  port_open "$port" && die "port $port is taken by another process (set $8)"
  mkdir -p "$home" "$base/mnesia" "$base/log"
  : >"$base/rabbitmq-env.conf"
  echo '[].' >"$base/enabled_plugins"
  # listeners.tcp.default would bind every interface
  if [[ -n "$TLS_CERTS" ]]; then
    cat >"$base/rabbitmq.conf" <<EOF
listeners.tcp = none
listeners.ssl.1 = 127.0.0.1:$port
loopback_users = none
ssl_options.cacertfile = $TLS_CERTS/ca.pem
ssl_options.certfile = $TLS_CERTS/server.pem
ssl_options.keyfile = $TLS_CERTS/server.key
ssl_options.verify = verify_peer
ssl_options.fail_if_no_peer_cert = true
EOF
  else
    printf 'listeners.tcp.1 = 127.0.0.1:%s\nloopback_users = none\n' "$port" >"$base/rabbitmq.conf"
  fi
  epmd_start "$4" "$7" "$base/log/epmd.log" "${9:-CTXD_EPMD_PORT}"
  (node_env "${@:1:6}"; exec setsid rabbitmq-server </dev/null >"$base/log/server.out" 2>&1) &
  echo $! >"$base/server.pid"
  log "starting RabbitMQ $name on 127.0.0.1:$port"
}

# node_wait NODE...: wait until the node has booted; on failure show its logs and exit
node_wait() {
  local base=$5
  if ! node_ctl "${@:1:6}" -q wait --timeout "$START_DEADLINE" "$base/rabbit.pid" >/dev/null 2>&1 \
     || ! node_ctl "${@:1:6}" -q await_startup --timeout "$START_DEADLINE" >/dev/null 2>&1; then
    echo "stack: RabbitMQ did not come up within ${START_DEADLINE}s; last lines of its logs:" >&2
    tail -n 30 "$base/log/server.out" "$base"/log/*.log 2>/dev/null >&2 || true
    exit 1
  fi
}

# node_start NODE... EPMD_PID_FILE PORT_SETTING [EPMD_PORT_SETTING]: start the node unless it runs, and wait
node_start() {
  if node_running "${@:1:6}"; then log "RabbitMQ $1 already running on 127.0.0.1:$2"; return; fi
  node_launch "$@"
  node_wait "${@:1:6}"
}

# node_stop NODE...: stop the broker by its pid files (not its epmd)
node_stop() {
  local pid base=$5
  pid=$(pid_of "$base/server.pid")
  if alive "$pid"; then
    log "stopping RabbitMQ $1"
    node_ctl "${@:1:6}" -q stop "$base/rabbit.pid" >/dev/null 2>&1 || true
    wait_gone "$pid" 30 || kill -KILL "$pid" 2>/dev/null || true
  fi
  # the Erlang VM itself, in case the launcher script was already gone
  pid=$(pid_of "$base/rabbit.pid")
  if alive "$pid"; then kill -TERM "$pid" 2>/dev/null || true; wait_gone "$pid" 30 || kill -KILL "$pid" 2>/dev/null || true; fi
  rm -f "$base/server.pid" "$base/rabbit.pid"
}

# The single node
single() { "$1" "$NODE" "$AMQP_PORT" "$DIST_PORT" "$EPMD_PORT" "$DIR/rabbit" "$DIR/rabbit/home" "${@:2}"; }

ctl() { single node_ctl "$@"; }

rabbit_running() { single node_running; }

rabbit_start() { single node_start "$DIR/rabbit/epmd.pid" CTXD_AMQP_PORT; }

rabbit_stop() {
  single node_stop
  epmd_stop "$DIR/rabbit/epmd.pid"
}

# The TLS node, on its own epmd
tls_node() { "$1" "ctxd-tls-$TLS_PORT@localhost" "$TLS_PORT" "$TLS_DIST" "$TLS_EPMD" "$DIR/tls" "$DIR/tls/home" "${@:2}"; }

tls_start() {
  local certs f
  [[ -n "${1:-}" ]] || die "usage: stack.sh tls-start CERTS"
  certs=$(cd "$1" && pwd) || die "no folder $1"
  for f in ca.pem server.pem server.key; do
    [[ -r "$certs/$f" ]] || die "$certs/$f is missing (tests/stack/tls-certs.sh makes it)"
  done
  # a running node may hold other certificates: start afresh
  tls_node node_stop
  TLS_CERTS=$certs
  tls_node node_start "$DIR/tls/epmd.pid" CTXD_TLS_PORT CTXD_TLS_EPMD_PORT
  echo "CTXD_AMQPS_URL=amqps://guest:guest@127.0.0.1:$TLS_PORT" >"$DIR/tls/env"
  log "TLS node ready; its URL in $DIR/tls/env"
}

tls_stop() {
  [[ -d "$DIR/tls" ]] || return 0
  tls_node node_stop
  epmd_stop "$DIR/tls/epmd.pid"
  rm -f "$DIR/tls/env"
}

# The cluster: three nodes on one private epmd, sharing one HOME and so one Erlang cookie.
# Node I (1..3) listens on CLUSTER_PORT+I-1 and CLUSTER_DIST+I-1.
cnode_name() { echo "ctxd-c$1-$CLUSTER_PORT@localhost"; }
cnode() {
  local i=$1 fn=$2; shift 2
  "$fn" "$(cnode_name "$i")" $((CLUSTER_PORT + i - 1)) $((CLUSTER_DIST + i - 1)) "$CLUSTER_EPMD" \
    "$CDIR/n$i" "$CDIR/home" "$@"
}
cnode_start() { cnode "$1" node_start "$CDIR/epmd.pid" CTXD_CLUSTER_PORT CTXD_CLUSTER_EPMD_PORT; }

cluster_check_args() {
  [[ "${1:-}" =~ ^[123]$ ]] || die "cluster node must be 1, 2 or 3"
}

# cluster_running_count I: how many nodes node I sees running in its cluster (0 if none)
cluster_running_count() {
  local n
  n=$(cnode "$1" node_ctl -q eval 'length(rabbit_nodes:all_running()).' 2>/dev/null) || n=0
  [[ "$n" =~ ^[0-9]+$ ]] || n=0
  echo "$n"
}

# cluster_has I J: node I sees node J running in its cluster
cluster_has() {
  [[ "$(cnode "$1" node_ctl -q eval "lists:member('$(cnode_name "$2")', rabbit_nodes:all_running())." 2>/dev/null)" == true ]]
}

# cluster_wait_all I: wait until node I sees three running nodes
cluster_wait_all() {
  local end=$((SECONDS + START_DEADLINE))
  until [[ "$(cluster_running_count "$1")" == 3 ]]; do
    if ((SECONDS >= end)); then
      echo "stack: the cluster did not reach three running nodes within ${START_DEADLINE}s:" >&2
      cnode "$1" node_ctl cluster_status >&2 2>&1 || true
      exit 1
    fi
    sleep 0.5
  done
}

cluster_cookie() {
  mkdir -p "$CDIR/home"
  if [[ ! -s "$CDIR/home/.erlang.cookie" ]]; then
    local c
    c=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
    (umask 077; printf '%s' "$c" >"$CDIR/home/.erlang.cookie")
  fi
  chmod 400 "$CDIR/home/.erlang.cookie"
}

cluster_start() {
  local i out launched=()
  mkdir -p "$CDIR"
  cluster_cookie
  epmd_start "$CLUSTER_EPMD" "$CDIR/epmd.pid" "$CDIR/epmd.log" CTXD_CLUSTER_EPMD_PORT
  # Launch the missing nodes together: a node that remembers a cluster waits at boot for
  # the peer that stopped last, so one-by-one starts could wait on each other.
  for i in 1 2 3; do
    if cnode "$i" node_running; then
      log "RabbitMQ $(cnode_name "$i") already running on 127.0.0.1:$((CLUSTER_PORT + i - 1))"
    else
      cnode "$i" node_launch "$CDIR/epmd.pid" CTXD_CLUSTER_PORT CTXD_CLUSTER_EPMD_PORT
      launched+=("$i")
    fi
  done
  for i in "${launched[@]}"; do cnode "$i" node_wait; done
  # fresh nodes come up alone: join them to node 1
  for i in 2 3; do
    cluster_has 1 "$i" && continue
    log "joining $(cnode_name "$i") to $(cnode_name 1)"
    out="$CDIR/n$i/log/join.out"
    # join_cluster prints harmless warnings and errors on stderr: keep them for failures
    if ! { cnode "$i" node_ctl -q stop_app && cnode "$i" node_ctl -q reset \
           && cnode "$i" node_ctl -q join_cluster "$(cnode_name 1)" && cnode "$i" node_ctl -q start_app \
           && cnode "$i" node_ctl -q await_startup --timeout "$START_DEADLINE"; } >"$out" 2>&1; then
      echo "stack: $(cnode_name "$i") could not join $(cnode_name 1); its output and logs:" >&2
      tail -n 30 "$out" "$CDIR/n$i/log/server.out" "$CDIR/n$i"/log/*.log 2>/dev/null >&2 || true
      exit 1
    fi
  done
  cluster_wait_all 1
  cluster_write_env
  log "cluster ready; connection URLs in $CDIR/env"
}

cluster_stop() {
  local i pids=()
  [[ -d "$CDIR" ]] || return 0
  # in parallel: each stop takes seconds
  for i in 3 2 1; do cnode "$i" node_stop & pids+=($!); done
  for i in "${pids[@]}"; do wait "$i" || true; done
  epmd_stop "$CDIR/epmd.pid"
  rm -f "$CDIR/env"
}

cluster_running() {
  local i
  [[ -d "$CDIR" ]] || return 1
  for i in 1 2 3; do cnode "$i" node_running || return 1; done
  [[ "$(cluster_running_count 1)" == 3 ]]
}

cluster_write_env() {
  cat >"$CDIR/env" <<EOF
CTXD_CLUSTER_URLS=amqp://guest:guest@127.0.0.1:$CLUSTER_PORT,amqp://guest:guest@127.0.0.1:$((CLUSTER_PORT + 1)),amqp://guest:guest@127.0.0.1:$((CLUSTER_PORT + 2))
CTXD_CLUSTER_NODE1=amqp://guest:guest@127.0.0.1:$CLUSTER_PORT
CTXD_CLUSTER_NODE2=amqp://guest:guest@127.0.0.1:$((CLUSTER_PORT + 1))
CTXD_CLUSTER_NODE3=amqp://guest:guest@127.0.0.1:$((CLUSTER_PORT + 2))
CTXD_CLUSTER_NODENAME1=$(cnode_name 1)
CTXD_CLUSTER_NODENAME2=$(cnode_name 2)
CTXD_CLUSTER_NODENAME3=$(cnode_name 3)
CTXD_CLUSTER_DIR=$CDIR
CTXD_CLUSTER_PORT=$CLUSTER_PORT
CTXD_CLUSTER_DIST_PORT=$CLUSTER_DIST
CTXD_CLUSTER_EPMD_PORT=$CLUSTER_EPMD
EOF
}

# wait_gone PID SECONDS: 0 once PID is gone (or a zombie), 1 at the deadline
wait_gone() {
  local end=$((SECONDS + $2))
  while alive "$1"; do
    [[ "$(ps -o stat= -p "$1" 2>/dev/null)" == Z* ]] && return 0
    ((SECONDS >= end)) && return 1
    sleep 0.1
  done
}

# PostgreSQL refuses to run as root: as root it runs as user postgres, from a folder
# that user can reach (a repository under /root is not).
pg_dir() {
  if [[ -s "$DIR/pg.path" ]]; then cat "$DIR/pg.path"; return; fi
  local d="$DIR/pg"
  if [[ $(id -u) -eq 0 ]] && ! runuser -u postgres -- test -x "$DIR" 2>/dev/null; then
    d=$(mktemp -d /tmp/ctxd-pg.XXXXXX)
  fi
  echo "$d" >"$DIR/pg.path"
  echo "$d"
}

as_pg() { if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }

pg_running() { local d; d=$(pg_dir); [[ -d "$d/data" ]] && as_pg "$PGBIN/pg_ctl" -D "$d/data" status >/dev/null 2>&1; }

pg_start() {
  [[ -n "$PGBIN" ]] || die "no PostgreSQL server binaries under /usr/lib/postgresql (run tests/stack/deps.sh)"
  local d; d=$(pg_dir)
  if pg_running; then log "PostgreSQL already running on 127.0.0.1:$PG_PORT"; return; fi
  port_open "$PG_PORT" && die "port $PG_PORT is taken by another process (set CTXD_PG_PORT)"
  mkdir -p "$d/sock"
  [[ $(id -u) -eq 0 ]] && chown -R postgres: "$d"
  if [[ ! -s "$d/data/PG_VERSION" ]]; then
    as_pg "$PGBIN/initdb" -D "$d/data" -U postgres -A trust -E UTF8 --no-locale >"$d/initdb.log" 2>&1 \
      || { tail -n 30 "$d/initdb.log" >&2; die "initdb failed"; }
  fi
  log "starting PostgreSQL on 127.0.0.1:$PG_PORT"
  if ! as_pg "$PGBIN/pg_ctl" -D "$d/data" -l "$d/server.log" -w -t "$START_DEADLINE" \
       -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $d/sock -c max_connections=200 ${CTXD_PG_SETTINGS:-}" start >/dev/null; then
    echo "stack: PostgreSQL did not come up within ${START_DEADLINE}s; last lines of its log:" >&2
    tail -n 30 "$d/server.log" >&2 || true
    exit 1
  fi
  psql_q -tAc "SELECT 1 FROM pg_database WHERE datname = 'ctxd'" | grep -q 1 \
    || psql_q -qc "CREATE DATABASE ctxd" >/dev/null
}

# pg_tls CERTS|off: TLS settings are reloaded without a restart
pg_tls() {
  local d; d=$(pg_dir)
  pg_running || die "PostgreSQL is not running (stack.sh start)"
  if [[ "${1:-}" == off ]]; then
    psql_q -q -c "ALTER SYSTEM SET ssl = off" -c "SELECT pg_reload_conf()" >/dev/null
    return
  fi
  [[ -n "${1:-}" ]] || die "usage: stack.sh pg-tls CERTS|off"
  mkdir -p "$d/tls"
  cp "$1/server.pem" "$1/server.key" "$1/ca.pem" "$d/tls/"
  chmod 600 "$d/tls/server.key"
  if [[ $(id -u) -eq 0 ]]; then chown -R postgres: "$d/tls"; fi
  psql_q -q -c "ALTER SYSTEM SET ssl_cert_file = '$d/tls/server.pem'" \
    -c "ALTER SYSTEM SET ssl_key_file = '$d/tls/server.key'" \
    -c "ALTER SYSTEM SET ssl_ca_file = '$d/tls/ca.pem'" -c "ALTER SYSTEM SET ssl = on" \
    -c "SELECT pg_reload_conf()" >/dev/null
  # the reload is asynchronous: wait until the server offers TLS
  local end=$((SECONDS + 10))
  until psql -X "postgresql://postgres@127.0.0.1:$PG_PORT/postgres?sslmode=require" -tAc "SELECT 1" >/dev/null 2>&1; do
    ((SECONDS < end)) || die "PostgreSQL did not offer TLS within 10s (see $d/server.log)"
    sleep 0.1
  done
}

psql_q() { psql -X -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres "$@"; }

pg_stop() {
  local d; d=$(pg_dir)
  if pg_running; then
    log "stopping PostgreSQL"
    as_pg "$PGBIN/pg_ctl" -D "$d/data" -m fast -w -t 60 stop >/dev/null || true
  fi
}

# The replica: a copy of the primary's data folder in <pg dir>/replica, streaming from it
pg_replica_running() {
  local d; d=$(pg_dir)
  [[ -d "$d/replica" ]] && as_pg "$PGBIN/pg_ctl" -D "$d/replica" status >/dev/null 2>&1
}

# pg_sync on|off: the primary waits for the replica's flush at every commit, or not
pg_sync() {
  local names="''"
  [[ $1 == on ]] && names="'ctxd_replica'"
  psql_q -q -c "ALTER SYSTEM SET synchronous_standby_names = $names" -c "SELECT pg_reload_conf()" >/dev/null
}

pg_replica_start() {
  local d sync=off; d=$(pg_dir)
  [[ "${1:-}" == --sync ]] && sync=on
  pg_running || die "PostgreSQL is not running (stack.sh start)"
  pg_replica_running && die "the replica already runs (stack.sh pg-replica stop first)"
  port_open "$PG_REPLICA_PORT" && die "port $PG_REPLICA_PORT is taken by another process (set CTXD_PG_REPLICA_PORT)"
  # the copy must not carry a synchronous standby setting of an earlier run: promoted, it
  # would wait for a standby of its own at every commit
  pg_sync off
  rm -rf "$d/replica"
  # -R: standby.signal and primary_conninfo; application_name names it for synchronous_standby_names
  as_pg "$PGBIN/pg_basebackup" -h 127.0.0.1 -p "$PG_PORT" -U postgres -D "$d/replica" -X stream -c fast -R \
    -d "application_name=ctxd_replica" >"$d/basebackup.log" 2>&1 \
    || { tail -n 30 "$d/basebackup.log" >&2; die "pg_basebackup failed"; }
  log "starting the PostgreSQL replica on 127.0.0.1:$PG_REPLICA_PORT (synchronous: $sync)"
  if ! as_pg "$PGBIN/pg_ctl" -D "$d/replica" -l "$d/replica.log" -w -t "$START_DEADLINE" \
       -o "-c listen_addresses=127.0.0.1 -p $PG_REPLICA_PORT -k $d/sock -c max_connections=200 ${CTXD_PG_SETTINGS:-}" start >/dev/null; then
    tail -n 30 "$d/replica.log" >&2 || true
    die "the replica did not come up within ${START_DEADLINE}s"
  fi
  # streaming before it returns: the primary sees it, so a synchronous commit can complete
  local end=$((SECONDS + START_DEADLINE))
  until [[ "$(psql_q -tAc "SELECT count(*) FROM pg_stat_replication WHERE application_name = 'ctxd_replica' AND state = 'streaming'")" == 1 ]]; do
    ((SECONDS < end)) || die "the replica did not stream within ${START_DEADLINE}s (see $d/replica.log)"
    sleep 0.1
  done
  [[ $sync == on ]] && pg_sync on
  return 0
}

psql_replica() { psql -X -h 127.0.0.1 -p "$PG_REPLICA_PORT" -U postgres -d postgres "$@"; }

# primary_conninfo is reloadable: without it the WAL receiver stops
pg_replica_detach() {
  pg_replica_running || die "no replica runs (stack.sh pg-replica start)"
  psql_replica -q -c "ALTER SYSTEM SET primary_conninfo = ''" -c "SELECT pg_reload_conf()" >/dev/null
  local end=$((SECONDS + 30))
  until [[ "$(psql_replica -tAc "SELECT count(*) FROM pg_stat_wal_receiver")" == 0 ]]; do
    ((SECONDS < end)) || die "the replica still streams after 30s"
    sleep 0.05
  done
}

# The postmaster's PID is the first line of postmaster.pid; its children (backends,
# walsender, ...) are ours too, and must be gone before the cluster can start again.
pg_primary_kill() {
  local d pm kids p; d=$(pg_dir)
  pg_running || die "PostgreSQL is not running"
  pm=$(head -n 1 "$d/data/postmaster.pid")
  kids=$(ps -o pid= --ppid "$pm" || true)
  kill -KILL "$pm"
  for p in $pm $kids; do wait_gone "$p" 30 || die "process $p of the killed primary did not exit within 30s"; done
  log "killed the PostgreSQL primary (postmaster $pm)"
}

pg_promote() {
  local d; d=$(pg_dir)
  pg_replica_running || die "no replica runs (stack.sh pg-replica start)"
  as_pg "$PGBIN/pg_ctl" -D "$d/replica" -w -t "$START_DEADLINE" promote >/dev/null \
    || die "the replica was not promoted within ${START_DEADLINE}s (see $d/replica.log)"
}

pg_replica_stop() {
  local d; d=$(pg_dir)
  if pg_replica_running; then
    log "stopping the PostgreSQL replica"
    as_pg "$PGBIN/pg_ctl" -D "$d/replica" -m immediate -w -t 60 stop >/dev/null || true
  fi
  rm -rf "$d/replica"
  pg_start
  pg_sync off
}

# The URLs, and every setting this script needs to find these servers again
write_env() {
  cat >"$DIR/env" <<EOF
CTXD_AMQP_URL=amqp://guest:guest@127.0.0.1:$AMQP_PORT
CTXD_PG_URL=postgresql://postgres@127.0.0.1:$PG_PORT/ctxd
CTXD_STACK_DIR=$DIR
CTXD_AMQP_PORT=$AMQP_PORT
CTXD_RABBIT_DIST_PORT=$DIST_PORT
CTXD_EPMD_PORT=$EPMD_PORT
CTXD_PG_PORT=$PG_PORT
CTXD_PG_REPLICA_PORT=$PG_REPLICA_PORT
EOF
  if [[ -s "$LDIR/env" ]]; then cat "$LDIR/env" >>"$DIR/env"; fi
}

# The links. A link is one forwarder (ctxd_link) listening in the namespace on its
# server's port, with its state in $LDIR: <link>.pid, .delay (ms, which the forwarder reads
# at SIGHUP), .loss (percent), .cut (present: cut), .log. The nftables table ctxd_link in
# the namespace is made again from that state at every change.
LINK_NS="ctxd-link-$AMQP_PORT"
LINK_HOST_IF="ctxl${AMQP_PORT}h"
LINK_NS_IF="ctxl${AMQP_PORT}n"
# 10.64.0.0/10 holds 2^16 /30 subnets: one per AMQP port, so parallel stacks never collide
LINK_NET="10.$((64 + (AMQP_PORT >> 10))).$(((AMQP_PORT >> 2) & 255))"
LINK_HOST_ADDR="$LINK_NET.$(((AMQP_PORT & 3) * 4 + 1))"
LINK_NS_ADDR="$LINK_NET.$(((AMQP_PORT & 3) * 4 + 2))"

link_port() { if [[ $1 == broker ]]; then echo "$AMQP_PORT"; else echo "$PG_PORT"; fi; }

# link_targets [NAME]: the links a command names (none: both)
link_targets() {
  case "${1:-both}" in
    broker | db) echo "$1" ;;
    both) echo broker db ;;
    *) die "name a link: broker, db or both (not '$1')" ;;
  esac
}

link_root() { [[ $(id -u) -eq 0 ]] || die "the network links need root (a network namespace, a veth pair, nftables)"; }
link_is_up() { [[ -e "/var/run/netns/$LINK_NS" ]]; }
link_need_up() { link_is_up || die "the links are down (stack.sh link-up)"; }

# The nftables table from the state files: loss and cut per link, matched by its server's
# port on the namespace's end of the veth pair (dport coming in, sport going out).
link_rules() {
  local l port loss rules_in="" rules_out=""
  for l in broker db; do
    port=$(link_port "$l")
    if [[ -e "$LDIR/$l.cut" ]]; then
      rules_in+="    iifname \"$LINK_NS_IF\" tcp dport $port drop"$'\n'
      rules_out+="    oifname \"$LINK_NS_IF\" tcp sport $port drop"$'\n'
    fi
    loss=$(cat "$LDIR/$l.loss" 2>/dev/null || echo 0)
    if ((loss > 0)); then
      rules_in+="    iifname \"$LINK_NS_IF\" tcp dport $port numgen random mod 100 < $loss drop"$'\n'
      rules_out+="    oifname \"$LINK_NS_IF\" tcp sport $port numgen random mod 100 < $loss drop"$'\n'
    fi
  done
  # declared, deleted and made again in one transaction: the rules change at once
  ip netns exec "$LINK_NS" nft -f - <<EOF
table inet ctxd_link {}
delete table inet ctxd_link
table inet ctxd_link {
  chain input {
    type filter hook input priority 0; policy accept;
$rules_in  }
  chain output {
    type filter hook output priority 0; policy accept;
$rules_out  }
}
EOF
}

# link_forwarder NAME BIN: starts the link's forwarder unless it runs, and waits until it
# listens (it writes its pid file then)
link_forwarder() {
  local l=$1 bin=$2 port pid end
  port=$(link_port "$l")
  alive "$(pid_of "$LDIR/$l.pid")" && return 0
  rm -f "$LDIR/$l.pid"
  [[ -e "$LDIR/$l.delay" ]] || echo 0 >"$LDIR/$l.delay"
  setsid "$bin" --netns "$LINK_NS" --listen "$LINK_NS_ADDR:$port" --to "$port" \
    --delay-file "$LDIR/$l.delay" --pid-file "$LDIR/$l.pid" </dev/null >"$LDIR/$l.log" 2>&1 &
  pid=$!
  end=$((SECONDS + 10))
  until [[ -s "$LDIR/$l.pid" ]]; do
    alive "$pid" || { cat "$LDIR/$l.log" >&2; die "the $l link's forwarder exited"; }
    ((SECONDS < end)) || die "the $l link's forwarder did not listen within 10s (see $LDIR/$l.log)"
    sleep 0.02
  done
}

link_up() {
  local bin="$repo/build/test/tests/ctxd_link" l
  if [[ "${1:-}" == --bin ]]; then bin=${2:-}; fi
  link_root
  [[ -x "$bin" ]] || die "no ctxd_link at '$bin' (build the tests, or pass --bin PATH)"
  [[ -s "$DIR/env" ]] || die "the stack does not run (stack.sh start)"
  command -v nft >/dev/null || die "no nft (tests/stack/deps.sh installs nftables)"
  mkdir -p "$LDIR"
  if ! link_is_up; then
    ip netns add "$LINK_NS"
    ip -n "$LINK_NS" link set lo up
  fi
  if ! ip link show "$LINK_HOST_IF" >/dev/null 2>&1; then
    ip link add "$LINK_HOST_IF" type veth peer name "$LINK_NS_IF" netns "$LINK_NS"
    ip addr add "$LINK_HOST_ADDR/30" dev "$LINK_HOST_IF"
    ip -n "$LINK_NS" addr add "$LINK_NS_ADDR/30" dev "$LINK_NS_IF"
    ip link set "$LINK_HOST_IF" up
    ip -n "$LINK_NS" link set "$LINK_NS_IF" up
  fi
  link_rules
  for l in broker db; do link_forwarder "$l" "$bin"; done
  cat >"$LDIR/env" <<EOF
CTXD_LINK_AMQP_URL=amqp://guest:guest@$LINK_NS_ADDR:$AMQP_PORT
CTXD_LINK_PG_URL=postgresql://postgres@$LINK_NS_ADDR:$PG_PORT/ctxd
EOF
  write_env
  cat "$LDIR/env"
}

link_delay() {
  local ms=${1:-} l pid
  [[ "$ms" =~ ^[0-9]+$ ]] && ((ms <= 600000)) || die "usage: stack.sh link-delay MS [broker|db|both] (MS: 0 to 600000)"
  link_root
  link_need_up
  for l in $(link_targets "${2:-}"); do
    echo "$ms" >"$LDIR/$l.delay"
    pid=$(pid_of "$LDIR/$l.pid")
    alive "$pid" || die "the $l link's forwarder does not run (stack.sh link-up)"
    kill -HUP "$pid"
  done
}

link_loss() {
  local pct=${1:-} l
  [[ "$pct" =~ ^[0-9]+$ ]] && ((pct <= 100)) || die "usage: stack.sh link-loss PCT [broker|db|both] (PCT: 0 to 100)"
  link_root
  link_need_up
  for l in $(link_targets "${2:-}"); do echo "$pct" >"$LDIR/$l.loss"; done
  link_rules
}

link_cut() {
  local l
  link_root
  link_need_up
  for l in $(link_targets "${1:-}"); do : >"$LDIR/$l.cut"; done
  link_rules
}

link_heal() {
  local l
  link_root
  link_need_up
  for l in $(link_targets "${1:-}"); do
    rm -f "$LDIR/$l.cut"
    echo 0 >"$LDIR/$l.loss"
  done
  link_rules
  link_delay 0 "${1:-}"
}

link_status() {
  local l port pid run
  if ! link_is_up; then
    echo "links: down"
    return 0
  fi
  for l in broker db; do
    port=$(link_port "$l")
    pid=$(pid_of "$LDIR/$l.pid")
    if alive "$pid"; then run="forwarder pid $pid"; else run="forwarder NOT running"; fi
    echo "$l: $LINK_NS_ADDR:$port -> 127.0.0.1:$port, $run, delay $(cat "$LDIR/$l.delay" 2>/dev/null || echo 0) ms," \
      "loss $(cat "$LDIR/$l.loss" 2>/dev/null || echo 0)%, $([[ -e "$LDIR/$l.cut" ]] && echo CUT || echo "not cut")"
  done
}

link_down() {
  local l pid
  if ! link_is_up && [[ ! -d "$LDIR" ]]; then return 0; fi
  link_root
  for l in broker db; do
    pid=$(pid_of "$LDIR/$l.pid")
    if alive "$pid"; then
      kill -TERM "$pid" 2>/dev/null || true
      wait_gone "$pid" 5 || kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  # the namespace takes its end of the veth pair along, and the pair goes with it
  if link_is_up; then ip netns delete "$LINK_NS"; fi
  if ip link show "$LINK_HOST_IF" >/dev/null 2>&1; then ip link delete "$LINK_HOST_IF"; fi
  rm -rf "$LDIR"
  if [[ -s "$DIR/env" ]]; then write_env; fi
}

cmd=${1:-}
case "$cmd" in
  start)
    mkdir -p "$DIR"
    DIR=$(cd "$DIR" && pwd)
    pg_start
    rabbit_start
    write_env
    log "ready; connection URLs in $DIR/env"
    ;;
  stop)
    [[ -d "$DIR" ]] || exit 0
    tls_stop # left running by a TLS test that did not finish
    pg_replica_running && pg_replica_stop # left by a failover test that did not finish
    link_down
    rabbit_stop
    pg_stop
    rm -f "$DIR/env"
    ;;
  status)
    [[ -d "$DIR" ]] && rabbit_running && pg_running
    ;;
  env)
    cat "$DIR/env"
    ;;
  restart-broker)
    rabbit_stop
    rabbit_start
    ;;
  stop-broker)
    rabbit_stop
    ;;
  start-broker)
    rabbit_start
    ;;
  restart-db)
    pg_stop
    pg_start
    ;;
  cluster-start)
    mkdir -p "$CDIR"
    CDIR=$(cd "$CDIR" && pwd)
    cluster_start
    ;;
  cluster-stop)
    cluster_stop
    ;;
  cluster-wipe)
    cluster_stop
    rm -rf "$CDIR"
    ;;
  cluster-status)
    cluster_running
    ;;
  cluster-env)
    cat "$CDIR/env"
    ;;
  cluster-stop-node)
    cluster_check_args "${2:-}"
    cnode "$2" node_stop
    ;;
  cluster-start-node)
    cluster_check_args "${2:-}"
    [[ -d "$CDIR/n$2" ]] || die "no cluster in $CDIR (run cluster-start)"
    cnode_start "$2"
    # it remembers the cluster in its mnesia; wait until it is back in it
    cluster_wait_all "$2"
    ;;
  tls-start)
    mkdir -p "$DIR"
    DIR=$(cd "$DIR" && pwd)
    tls_start "${2:-}"
    ;;
  tls-stop)
    tls_stop
    ;;
  pg-tls)
    pg_tls "${2:-}"
    ;;
  pg-replica)
    case "${2:-}" in
      start) pg_replica_start "${3:-}" ;;
      stop) pg_replica_stop ;;
      detach) pg_replica_detach ;;
      *) die "usage: stack.sh pg-replica start [--sync] | detach | stop" ;;
    esac
    ;;
  pg-primary-kill)
    pg_primary_kill
    ;;
  pg-promote)
    pg_promote
    ;;
  link-up) link_up "${@:2}" ;;
  link-delay) link_delay "${@:2}" ;;
  link-loss) link_loss "${@:2}" ;;
  link-cut) link_cut "${@:2}" ;;
  link-heal) link_heal "${@:2}" ;;
  link-status) link_status ;;
  link-down) link_down ;;
  ctl)
    ctl_check "$EPMD_PORT" "$NODE"
    ctl "${@:2}"
    ;;
  cluster-ctl)
    cluster_check_args "${2:-}"
    ctl_check "$CLUSTER_EPMD" "$(cnode_name "$2")"
    cnode "$2" node_ctl "${@:3}"
    ;;
  *)
    echo "usage: stack.sh start|stop|status|env|cluster-start|cluster-stop|cluster-status|cluster-env|link-up|link-down|..." >&2
    echo "       (every command is described at the top of $0)" >&2
    exit 2
    ;;
esac
