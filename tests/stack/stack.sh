#!/usr/bin/env bash
# A private RabbitMQ node and PostgreSQL cluster on loopback, in a scratch folder, for the
# demo, the tests and the benchmarks.
#
#   stack.sh start    start both (reuses servers this folder already runs), write env file
#   stack.sh stop     stop both, by the PIDs this script recorded
#   stack.sh status   exit 0 when both run, 1 otherwise
#   stack.sh env      print the env file (CTXD_AMQP_URL, CTXD_PG_URL)
#   stack.sh restart-broker | restart-db   stop and start one server (fault tests)
#   stack.sh stop-broker | start-broker     the broker alone (readiness tests)
#
# Settings (environment): CTXD_STACK_DIR (default <repo>/.run/stack), CTXD_AMQP_PORT (5682),
# CTXD_RABBIT_DIST_PORT (25682), CTXD_EPMD_PORT (4382), CTXD_PG_PORT (5442). The defaults
# stay clear of the system servers' ports (5672, 25672, 4369, 5432).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
DIR=${CTXD_STACK_DIR:-$repo/.run/stack}
AMQP_PORT=${CTXD_AMQP_PORT:-5682}
DIST_PORT=${CTXD_RABBIT_DIST_PORT:-25682}
EPMD_PORT=${CTXD_EPMD_PORT:-4382}
PG_PORT=${CTXD_PG_PORT:-5442}
NODE="ctxd-$AMQP_PORT@localhost"
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
START_DEADLINE=${CTXD_STACK_DEADLINE:-120}

die() { echo "stack: $*" >&2; exit 1; }
log() { echo "stack: $*" >&2; }

alive() { [[ -n "${1:-}" ]] && kill -0 "$1" 2>/dev/null; }
pid_of() { [[ -s "$1" ]] && cat "$1" || true; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Every rabbitmq command must see the same variables, or it cannot reach the node and
# litters the real HOME with an Erlang cookie and a stray epmd.
rabbit_env() {
  export HOME="$DIR/rabbit/home"
  export RABBITMQ_NODENAME="$NODE"
  export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
  export RABBITMQ_NODE_PORT="$AMQP_PORT"
  export RABBITMQ_DIST_PORT="$DIST_PORT"
  export ERL_EPMD_ADDRESS=127.0.0.1
  export ERL_EPMD_PORT="$EPMD_PORT"
  export RABBITMQ_MNESIA_BASE="$DIR/rabbit/mnesia"
  export RABBITMQ_LOG_BASE="$DIR/rabbit/log"
  export RABBITMQ_PID_FILE="$DIR/rabbit/rabbit.pid"
  export RABBITMQ_CONF_ENV_FILE="$DIR/rabbit/rabbitmq-env.conf"
  export RABBITMQ_CONFIG_FILE="$DIR/rabbit/rabbitmq"
  export RABBITMQ_ENABLED_PLUGINS_FILE="$DIR/rabbit/enabled_plugins"
  export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
  export RABBITMQ_CTL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
  # the /usr/sbin wrappers switch to user rabbitmq when run as root, changing HOME
  export PATH="/usr/lib/rabbitmq/bin:$PATH"
}

ctl() { (rabbit_env; rabbitmqctl -n "$NODE" "$@"); }

rabbit_running() { alive "$(pid_of "$DIR/rabbit/server.pid")" && ctl -q status >/dev/null 2>&1; }

rabbit_start() {
  if rabbit_running; then log "RabbitMQ $NODE already running on 127.0.0.1:$AMQP_PORT"; return; fi
  port_open "$AMQP_PORT" && die "port $AMQP_PORT is taken by another process (set CTXD_AMQP_PORT)"
  mkdir -p "$DIR/rabbit/home" "$DIR/rabbit/mnesia" "$DIR/rabbit/log"
  : >"$DIR/rabbit/rabbitmq-env.conf"
  echo '[].' >"$DIR/rabbit/enabled_plugins"
  # listeners.tcp.default would bind every interface
  printf 'listeners.tcp.1 = 127.0.0.1:%s\nloopback_users = none\n' "$AMQP_PORT" >"$DIR/rabbit/rabbitmq.conf"

  if ! alive "$(pid_of "$DIR/rabbit/epmd.pid")"; then
    port_open "$EPMD_PORT" && die "port $EPMD_PORT is taken by another process (set CTXD_EPMD_PORT)"
    setsid epmd -address 127.0.0.1 -port "$EPMD_PORT" </dev/null >"$DIR/rabbit/log/epmd.log" 2>&1 &
    echo $! >"$DIR/rabbit/epmd.pid"
  fi

  (rabbit_env; exec setsid rabbitmq-server </dev/null >"$DIR/rabbit/log/server.out" 2>&1) &
  echo $! >"$DIR/rabbit/server.pid"
  log "starting RabbitMQ $NODE on 127.0.0.1:$AMQP_PORT"
  if ! ctl -q wait --timeout "$START_DEADLINE" "$DIR/rabbit/rabbit.pid" >/dev/null 2>&1 \
     || ! ctl -q await_startup --timeout "$START_DEADLINE" >/dev/null 2>&1; then
    echo "stack: RabbitMQ did not come up within ${START_DEADLINE}s; last lines of its logs:" >&2
    tail -n 30 "$DIR/rabbit/log/server.out" "$DIR"/rabbit/log/*.log 2>/dev/null >&2 || true
    exit 1
  fi
}

rabbit_stop() {
  local pid epmd
  pid=$(pid_of "$DIR/rabbit/server.pid")
  if alive "$pid"; then
    log "stopping RabbitMQ $NODE"
    ctl -q stop "$DIR/rabbit/rabbit.pid" >/dev/null 2>&1 || true
    wait_gone "$pid" 30 || kill -KILL "$pid" 2>/dev/null || true
  fi
  # the Erlang VM itself, in case the launcher script was already gone
  pid=$(pid_of "$DIR/rabbit/rabbit.pid")
  if alive "$pid"; then kill -TERM "$pid" 2>/dev/null || true; wait_gone "$pid" 30 || kill -KILL "$pid" 2>/dev/null || true; fi
  epmd=$(pid_of "$DIR/rabbit/epmd.pid")
  if alive "$epmd"; then kill -TERM "$epmd" 2>/dev/null || true; wait_gone "$epmd" 10 || true; fi
  rm -f "$DIR/rabbit/server.pid" "$DIR/rabbit/epmd.pid" "$DIR/rabbit/rabbit.pid"
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
       -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $d/sock -c max_connections=200" start >/dev/null; then
    echo "stack: PostgreSQL did not come up within ${START_DEADLINE}s; last lines of its log:" >&2
    tail -n 30 "$d/server.log" >&2 || true
    exit 1
  fi
  psql_q -tAc "SELECT 1 FROM pg_database WHERE datname = 'ctxd'" | grep -q 1 \
    || psql_q -qc "CREATE DATABASE ctxd" >/dev/null
}

psql_q() { psql -X -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres "$@"; }

pg_stop() {
  local d; d=$(pg_dir)
  if pg_running; then
    log "stopping PostgreSQL"
    as_pg "$PGBIN/pg_ctl" -D "$d/data" -m fast -w -t 60 stop >/dev/null || true
  fi
}

write_env() {
  cat >"$DIR/env" <<EOF
CTXD_AMQP_URL=amqp://guest:guest@127.0.0.1:$AMQP_PORT
CTXD_PG_URL=postgresql://postgres@127.0.0.1:$PG_PORT/ctxd
CTXD_STACK_DIR=$DIR
EOF
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
  *)
    echo "usage: stack.sh start|stop|status|env" >&2
    exit 2
    ;;
esac
