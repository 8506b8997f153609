/* A host under test: its own database, endpoint and message type, the testkit plugin, a
 * broker client and the host process. Shared by the integration tests. */
#ifndef CTXD_HOSTFIXTURE_H
#define CTXD_HOSTFIXTURE_H

#include "testsupport.h"

#define CTXT_READY_MS 30000
#define CTXT_EFFECT_MS 30000

typedef struct {
  char db[256];
  char endpoint[64];
  char type[96];
  char echo_type[96]; /* what testkit's "publish" sends */
  char config[64];
  char plugin_dir[256]; /* where the host looks for testkit; the build's by default */
  char db_env[512];
  /* written into the configuration by ctxt_host_start; a test may change them first */
  char plugin_settings[512];   /* more testkit settings, starting with ", " */
  char endpoint_settings[512]; /* the endpoint's own section, without braces */
  char host_settings[512];     /* more top-level keys, starting with ", " */
  char database_settings[256]; /* more keys of "database", starting with ", " */
  char plugins[4096];          /* the "plugins" array; empty: testkit on the world's endpoint */
  char broker_url[512];        /* empty: the private single node */
  char broker_settings[1024];  /* more keys of the broker section, starting with ", " */
  int heartbeat_s;             /* the broker's heartbeat_s; 0: 10 */
  char more_endpoints[512];    /* more endpoint sections, starting with ", " */
  unsigned long nofile;        /* not 0: the host's open-file limit (soft and hard) */
  ctxt_proc_t host;
  ctxt_proc_t peer;    /* a second host of the same context, when a test starts one */
  ctxt_proc_t more[3]; /* hosts a test starts on configurations of its own */
  int admin_port;      /* the host's admin endpoint (127.0.0.1, a port it picked) */
  PGconn *pg;
  amqp_connection_state_t amqp;
} ctxt_world_t;

/* cmocka setup/teardown: *state is a new world. */
int ctxt_world_setup(void **state);
int ctxt_world_teardown(void **state);

/* Writes the world's configuration file (w->config) from its fields. */
void ctxt_world_write_config(ctxt_world_t *w);

/* Puts build/plugins/<from> at <dir>/ctxd_testkit.so the way deployments do: a new file
 * renamed over the old one. */
void ctxt_plugin_install(const char *dir, const char *from);
/* The same under another name (<dir>/<as>). */
void ctxt_plugin_install_as(const char *dir, const char *from, const char *as);

/* Writes the configuration and starts the host (extra: one more environment entry, or
 * NULL); returns once it logged that it is ready. */
void ctxt_host_start(ctxt_world_t *w, char *extra);
/* The same with a NULL-terminated list of environment entries. */
void ctxt_host_start_env(ctxt_world_t *w, char *const *extra);
/* Writes the configuration and starts the host, which must refuse to start: returns once
 * it exited with code 1 (its output in w->host.out). */
void ctxt_host_start_fails(ctxt_world_t *w);
/* Sends sig and asserts a clean exit (code 0, "stopped" logged). */
void ctxt_host_stop(ctxt_world_t *w, int sig);
/* Starts w->peer, a second host on the same configuration file (already written) with
 * broker_url (or the world's); returns once it is ready. The teardown stops it. */
void ctxt_peer_start(ctxt_world_t *w, const char *broker_url);
/* The same as ctxt_host_stop for w->peer. */
void ctxt_peer_stop(ctxt_world_t *w, int sig);

/* The value of a sample on the host's /metrics page: `name{endpoint="endpoint"}`, or
 * `name` alone when endpoint is NULL; -1 when absent. */
long ctxt_metric(ctxt_world_t *w, const char *endpoint, const char *name);
/* Waits until endpoint received `received` deliveries and settled them all: its counters
 * are final then. Fails the test at the deadline. */
void ctxt_wait_settled(ctxt_world_t *w, const char *endpoint, long received);

/* Writes a MassTransit envelope of type with id and message JSON into buf; returns its
 * length (as snprintf). */
int ctxt_envelope(char *buf, size_t len, const char *type, const char *id, const char *message);
/* Publishes a MassTransit envelope of the world's type with id and message JSON. */
void ctxt_publish(ctxt_world_t *w, const char *id, const char *message);
/* The same with a type of the test's choosing (w->echo_type, say). */
void ctxt_publish_type(ctxt_world_t *w, const char *type, const char *id, const char *message);
/* The same to another exchange (w->endpoint's own, say: a type exchange other tests share). */
void ctxt_publish_to(ctxt_world_t *w, const char *exchange, const char *type, const char *id,
                     const char *message);
/* Writes a UUID made from n into id[37]. */
void ctxt_make_id(char *id, int n);
/* Rows in testkit.effects (optionally with `where`), and waiting for a count. */
long ctxt_effects(ctxt_world_t *w, const char *where);
long ctxt_wait_effects(ctxt_world_t *w, const char *where, long want);
/* Waits until there are more than `count` such rows: the first commit after a fault.
 * Returns ctxt_now_ms() then; fails the test after timeout_ms. */
int64_t ctxt_wait_effects_above(ctxt_world_t *w, const char *where, long count, int timeout_ms);
/* What a stream through the world's endpoint (testkit's "publish") and its echo endpoint
 * left: effects and their distinct message ids, events applied downstream ("echoed") and
 * theirs, and the messages in both _error queues. */
typedef struct {
  long effects, distinct, events, distinct_events, errors;
} ctxt_stream_counts_t;
void ctxt_stream_count(ctxt_world_t *w, const char *echo, ctxt_stream_counts_t *c);
/* Prints those counts after "label: " and asserts exactly once: n effects of n distinct
 * messages, n events of n distinct ids downstream, nothing in _error. */
void ctxt_stream_assert_once(ctxt_world_t *w, const char *echo, long n, const char *label);
/* Runs tests/stack/stack.sh verb [arg] (arg may be NULL) as the child p, so that the test
 * watches the host while the fault happens. ctxt_stack_done waits for it to exit 0 (180 s),
 * else fails the test, and frees p. */
void ctxt_stack_spawn(ctxt_proc_t *p, const char *verb, const char *arg);
void ctxt_stack_done(ctxt_proc_t *p);
/* Waits until the host's admin endpoint answers path with status want; returns the last
 * status seen. */
int ctxt_wait_status(ctxt_world_t *w, const char *path, int want, int timeout_ms);
/* Records, in public.touched, the columns each UPDATE of schema.table names in its SET
 * list (a trigger per column: AFTER UPDATE OF col). */
void ctxt_trace_updates(PGconn *pg, const char *schema, const char *table);
/* Asserts the columns recorded since the last call, sorted and comma-separated ("" for
 * none), and forgets them. */
void ctxt_assert_touched(PGconn *pg, const char *want);
/* Restarts the private "broker" or "db". */
void ctxt_restart(const char *which);
/* Short deadlines for the host, so that a cut link is noticed within seconds: broker
 * heartbeat 2 s, rpc_timeout_ms 3000, reconnect_max_ms 1000; database connect_timeout_s 2
 * and idle_in_transaction_timeout_ms 3000 (w->broker_settings and w->database_settings
 * are replaced), the endpoints' default handler_timeout_ms 2000 (added to
 * w->more_endpoints), and the keepalives and tcp_user_timeout (3 s) that
 * ctxt_world_through_links puts in the database URL. */
void ctxt_world_quick_deadlines(ctxt_world_t *w);
/* Starts the stack's streaming replica of the primary (stack.sh pg-replica start; sync:
 * --sync) and points the world's database URLs at both, the primary first, with
 * target_session_attrs=read-write: the world's database is on both once the replica is a
 * copy. First it drops the databases earlier tests left (ctxd_t_*, but the world's own)
 * that nobody is connected to: pg_basebackup copies the whole cluster, and by the end of
 * the suite hundreds of them made each copy take 40 s. */
void ctxt_world_replica(ctxt_world_t *w, int sync);
/* Points the host (not the test's own connections) at the private servers through the
 * stack's links (stack.sh link-up): the broker's URL as link-up gives it, the world's own
 * database on the link's address (the primary's; a replica after it, from
 * ctxt_world_replica, stays direct). The caller runs link-down (stack.sh stop does too). */
void ctxt_world_through_links(ctxt_world_t *w);
/* Sets the private broker's memory watermark, a fraction of the machine's memory: a tiny
 * one raises its memory alarm (it blocks every publishing connection), 0.4 is its default. */
void ctxt_broker_watermark(const char *fraction);

/* Publishes n messages of the world's type, ids ctxt_make_id(first .. first + n - 1), with
 * message JSON, from a child process on a connection of its own (the test goes on
 * meanwhile), per_s a second (0: as fast as the broker takes them). Returns its pid. */
pid_t ctxt_publish_background(ctxt_world_t *w, long first, long n, long per_s, const char *message);
/* Waits until that publisher exited having published everything, or fails the test after
 * timeout_ms (killing it). */
void ctxt_publisher_wait(pid_t pid, int timeout_ms);
/* 1 when it exited having published everything (reaped: not to be waited for again), 0
 * while it runs; fails the test when it failed. */
int ctxt_publisher_done(pid_t pid);
/* Waits until nothing is left to do on the world's endpoint and on endpoint `echo`: both
 * queues empty, nothing in flight, the outbox empty; fails the test after timeout_ms. */
void ctxt_wait_drained(ctxt_world_t *w, const char *echo, int timeout_ms);

#endif
