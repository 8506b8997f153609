/* The exactly-once reference worker: the smallest program doing the work ctxd and benchkit
 * do for the benchmark, without the framework, as the practical limit on this stack
 * (docs/performance.md).
 *
 *   refworker --amqp URL --pg URL --mode per-message|set [--queue bench] [--prefetch 1024]
 *             [--workers 4] [--batch 64]
 *
 * Each of --workers threads has its own broker connection (a consumer with prefetch / workers,
 * so that as many deliveries are in flight as on ctxd's one channel) and its own PostgreSQL
 * connection in pipeline mode. A thread takes a batch (the first delivery waits, the rest
 * are what has already arrived, up to --batch), then runs in two round trips:
 *   BEGIN; INSERT INTO refworker.inbox SELECT unnest($1::uuid[]) ON CONFLICT DO NOTHING
 *   RETURNING message_id  -> which messages are fresh
 *   the effect of the fresh ones; COMMIT
 * and acks the batch (multiple: a channel's deliveries are acked in order) only after the
 * commit, so a crash at any point redelivers and the inbox drops what was already applied.
 * While one thread waits for its commit's WAL flush the others consume and commit: that
 * overlap is what ctxd's workers get too. --mode per-message runs one pipelined upsert
 * per message (a per-message handler); --mode set one unnest upsert for the batch (a
 * batch handler). Any error ends the process without acking what was not committed.
 * Prints "ready: ..." once every thread consumes; SIGTERM finishes the batches in flight.
 *
 * Deliberately standalone: no project code (nor the benchmark's), only librabbitmq, libpq
 * and libc, so that it measures what the work costs without ctxd; the few helpers that
 * look like benchkit's or bench.c's (an integer field of the body, a silent notice
 * processor) are its own copies on purpose. */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>

#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <libpq-fe.h>

#define MAX_BATCH 1024
#define ID_LEN 36  /* a UUID's text */
#define NUM_LEN 24 /* an int64's digits */

static const char *amqp_url, *pg_url, *queue = "bench";
static long prefetch = 1024, workers = 4, batch_max = 64;
static int set_mode = -1;
/* set by the signal handler, read by every worker thread: an atomic (lock-free, so
 * async-signal-safe), which a volatile sig_atomic_t is not between threads */
static atomic_int stopping;
static pthread_barrier_t consuming;

static const char schema_sql[] =
    "CREATE SCHEMA IF NOT EXISTS refworker;"
    "CREATE TABLE IF NOT EXISTS refworker.inbox (message_id uuid PRIMARY KEY,"
    "  received_at timestamptz NOT NULL DEFAULT now());"
    "CREATE TABLE IF NOT EXISTS refworker.items (key bigint PRIMARY KEY, n int NOT NULL,"
    "  sent_ns bigint NOT NULL, handled_at timestamptz NOT NULL)";
static const char inbox_sql[] = "INSERT INTO refworker.inbox (message_id) SELECT unnest($1::uuid[]) "
                                "ON CONFLICT DO NOTHING RETURNING message_id";
/* benchkit's statements: clock_timestamp(), as the benchmark computes rates from it */
static const char one_sql[] =
    "INSERT INTO refworker.items (key, n, sent_ns, handled_at) VALUES ($1, 1, $2, clock_timestamp()) "
    "ON CONFLICT (key) DO UPDATE SET n = items.n + 1, sent_ns = EXCLUDED.sent_ns, "
    "handled_at = EXCLUDED.handled_at";
/* n counts every message of a key, so a key twice in one batch still counts twice */
static const char set_sql[] =
    "INSERT INTO refworker.items (key, n, sent_ns, handled_at) SELECT key, count(*), max(sent), "
    "clock_timestamp() FROM unnest($1::bigint[], $2::bigint[]) AS m(key, sent) GROUP BY key "
    "ON CONFLICT (key) DO UPDATE SET n = items.n + EXCLUDED.n, sent_ns = EXCLUDED.sent_ns, "
    "handled_at = EXCLUDED.handled_at";

static void fail(const char *what, const char *detail) {
  fprintf(stderr, "refworker: %s: %s\n", what, detail);
  exit(1);
}

typedef struct {
  char id[ID_LEN + 1], key[NUM_LEN], sent[NUM_LEN];
  int fresh;
} msg_t;

/* Copies the integer field `name` of the flat JSON object starting at obj into out; 0 or -1.
 * The body is the benchmark's own envelope, so a search is enough. */
static int int_field(const char *obj, const char *name, char *out) {
  const char *p = strstr(obj, name);
  if (p == NULL) return -1;
  p += strlen(name);
  while (*p == '"' || *p == ':' || *p == ' ') p++;
  size_t n = strspn(p, "-0123456789");
  if (n == 0 || n >= NUM_LEN) return -1;
  memcpy(out, p, n);
  out[n] = '\0';
  return 0;
}

/* Fills m from a delivery: the message id from its property (else the envelope's messageId),
 * key and sentNs from the envelope's "message". */
static void msg_read(msg_t *m, const amqp_envelope_t *e) {
  char body[4096];
  size_t len = e->message.body.len < sizeof body - 1 ? e->message.body.len : sizeof body - 1;
  memcpy(body, e->message.body.bytes, len);
  body[len] = '\0';
  const amqp_basic_properties_t *p = &e->message.properties;
  const char *id = NULL;
  size_t id_len = 0;
  if ((p->_flags & AMQP_BASIC_MESSAGE_ID_FLAG) && p->message_id.len == ID_LEN) {
    id = p->message_id.bytes;
    id_len = ID_LEN;
  } else if ((id = strstr(body, "\"messageId\":\"")) != NULL) {
    id += strlen("\"messageId\":\"");
    id_len = strcspn(id, "\"");
  }
  const char *msg = strstr(body, "\"message\":");
  if (id == NULL || id_len != ID_LEN || msg == NULL || int_field(msg, "\"key\"", m->key) != 0 ||
      int_field(msg, "\"sentNs\"", m->sent) != 0)
    fail("a delivery", "not the benchmark's envelope (messageId, message.key, message.sentNs)");
  memcpy(m->id, id, ID_LEN);
  m->id[ID_LEN] = '\0';
}

/* Writes "{a,b,...}", the array literal of field `off` of the messages selected (all, or the
 * fresh ones), into out. */
static void array_text(char *out, size_t cap, const msg_t *msgs, size_t n, size_t off, int fresh_only) {
  size_t len = 0;
  out[len++] = '{';
  for (size_t i = 0; i < n; i++) {
    if (fresh_only && !msgs[i].fresh) continue;
    const char *v = (const char *)&msgs[i] + off;
    len += (size_t)snprintf(out + len, cap - len, "%s%s", len > 1 ? "," : "", v);
  }
  snprintf(out + len, cap - len, "}");
}

static void pg_send(PGconn *pg, const char *stmt, int n, const char *const *params) {
  if (!PQsendQueryPrepared(pg, stmt, n, params, NULL, NULL, 0)) fail("PostgreSQL send", PQerrorMessage(pg));
}

/* Reads one statement's result (and the NULL after it); returns it (the caller clears it). */
static PGresult *pg_result(PGconn *pg) {
  PGresult *r = PQgetResult(pg);
  ExecStatusType s = PQresultStatus(r);
  if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) fail("PostgreSQL", PQerrorMessage(pg));
  if (PQgetResult(pg) != NULL) fail("PostgreSQL", "more than one result for a statement");
  return r;
}

/* Ends a round trip: the server runs what was queued and answers it all. */
static void pg_flush(PGconn *pg) {
  if (!PQpipelineSync(pg)) fail("PostgreSQL send", PQerrorMessage(pg));
}

static void pg_sync(PGconn *pg) {
  PGresult *r = PQgetResult(pg);
  if (PQresultStatus(r) != PGRES_PIPELINE_SYNC) fail("PostgreSQL", "pipeline out of step");
  PQclear(r);
}

/* One batch, exactly once: the inbox says which messages are fresh, their effect and the
 * inbox rows commit together. */
static void batch_commit(PGconn *pg, msg_t *msgs, size_t n) {
  char ids[MAX_BATCH * (ID_LEN + 1) + 4], keys[MAX_BATCH * NUM_LEN + 4], sents[MAX_BATCH * NUM_LEN + 4];
  array_text(ids, sizeof ids, msgs, n, offsetof(msg_t, id), 0);
  const char *p1[] = {ids};
  pg_send(pg, "begin", 0, NULL);
  pg_send(pg, "inbox", 1, p1);
  pg_flush(pg);
  PQclear(pg_result(pg));
  PGresult *r = pg_result(pg);
  pg_sync(pg);
  int fresh = PQntuples(r);
  for (size_t i = 0; i < n; i++) msgs[i].fresh = fresh == (int)n; /* the usual case: all */
  for (int t = 0; t < fresh && fresh != (int)n; t++)
    for (size_t i = 0; i < n; i++)
      if (!msgs[i].fresh && strcasecmp(msgs[i].id, PQgetvalue(r, t, 0)) == 0) {
        msgs[i].fresh = 1;
        break;
      }
  PQclear(r);
  int sent = 0;
  if (set_mode && fresh > 0) {
    array_text(keys, sizeof keys, msgs, n, offsetof(msg_t, key), 1);
    array_text(sents, sizeof sents, msgs, n, offsetof(msg_t, sent), 1);
    const char *p[] = {keys, sents};
    pg_send(pg, "set", 2, p);
    sent = 1;
  }
  for (size_t i = 0; i < n && !set_mode; i++)
    if (msgs[i].fresh) {
      const char *p[] = {msgs[i].key, msgs[i].sent};
      pg_send(pg, "one", 2, p);
      sent++;
    }
  pg_send(pg, "commit", 0, NULL);
  pg_flush(pg);
  for (int i = 0; i < sent + 1; i++) PQclear(pg_result(pg));
  pg_sync(pg);
}

/* A consuming connection to --amqp (channel 1 on the queue); the caller closes and
 * destroys it. */
static amqp_connection_state_t amqp_connect(void) {
  char *url = strdup(amqp_url);
  struct amqp_connection_info ci;
  if (url == NULL || amqp_parse_url(url, &ci) != AMQP_STATUS_OK) fail("--amqp", "not an AMQP URL");
  amqp_connection_state_t c = amqp_new_connection();
  amqp_socket_t *s = amqp_tcp_socket_new(c);
  if (s == NULL || amqp_socket_open(s, ci.host, ci.port) != AMQP_STATUS_OK) fail("broker", "unreachable");
  if (amqp_login(c, ci.vhost, 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, ci.user, ci.password).reply_type !=
      AMQP_RESPONSE_NORMAL)
    fail("broker", "login refused");
  free(url);
  amqp_channel_open(c, 1);
  /* at least a batch per consumer, and as many in flight in all as ctxd's one channel */
  long each = prefetch / workers > batch_max ? prefetch / workers : batch_max;
  amqp_basic_qos(c, 1, 0, (uint16_t)(each < 65535 ? each : 65535), 0);
  amqp_basic_consume(c, 1, amqp_cstring_bytes(queue), amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
  if (amqp_get_rpc_reply(c).reply_type != AMQP_RESPONSE_NORMAL) fail("broker", "basic.consume refused");
  return c;
}

/* A connection to --pg with the statements prepared, in pipeline mode; the caller ends it
 * with PQfinish(). */
static PGconn *pg_connect(void) {
  PGconn *pg = PQconnectdb(pg_url);
  if (PQstatus(pg) != CONNECTION_OK) fail("PostgreSQL", PQerrorMessage(pg));
  const char *names[] = {"begin", "inbox", "one", "set", "commit"},
             *sqls[] = {"BEGIN", inbox_sql, one_sql, set_sql, "COMMIT"};
  for (int i = 0; i < 5; i++) {
    PGresult *r = PQprepare(pg, names[i], sqls[i], 0, NULL);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) fail("PostgreSQL prepare", PQerrorMessage(pg));
    PQclear(r);
  }
  if (!PQenterPipelineMode(pg)) fail("PostgreSQL pipeline", PQerrorMessage(pg));
  return pg;
}

/* 1 when a delivery came within timeout (NULL: none given, wait), 0 when none did. */
static int next_delivery(amqp_connection_state_t c, msg_t *m, uint64_t *tag, struct timeval *timeout) {
  amqp_envelope_t e;
  amqp_maybe_release_buffers(c);
  amqp_rpc_reply_t r = amqp_consume_message(c, &e, timeout, 0);
  if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION && r.library_error == AMQP_STATUS_TIMEOUT) return 0;
  if (r.reply_type != AMQP_RESPONSE_NORMAL) fail("broker", "consume failed (connection or channel closed)");
  msg_read(m, &e);
  *tag = e.delivery_tag;
  amqp_destroy_envelope(&e);
  return 1;
}

static void *worker(void *arg) {
  (void)arg;
  amqp_connection_state_t c = amqp_connect();
  PGconn *pg = pg_connect();
  pthread_barrier_wait(&consuming);
  msg_t msgs[MAX_BATCH];
  while (!atomic_load(&stopping)) {
    /* the first delivery waits (a while, to see SIGTERM); the rest are what already came */
    struct timeval wait = {0, 100000}, none = {0, 0};
    uint64_t tag = 0;
    size_t n = 0;
    while (n < (size_t)batch_max && next_delivery(c, &msgs[n], &tag, n == 0 ? &wait : &none)) n++;
    if (n == 0) continue;
    batch_commit(pg, msgs, n);
    if (amqp_basic_ack(c, 1, tag, 1) != AMQP_STATUS_OK) fail("broker", "basic.ack failed");
  }
  PQfinish(pg);
  /* what was delivered but not taken goes back to the queue with the channel */
  amqp_channel_close(c, 1, AMQP_REPLY_SUCCESS);
  amqp_connection_close(c, AMQP_REPLY_SUCCESS);
  amqp_destroy_connection(c);
  return NULL;
}

/* "schema ... already exists, skipping" is no news */
static void quiet(void *arg, const char *message) {
  (void)arg;
  (void)message;
}

static void on_term(int sig) {
  (void)sig;
  atomic_store(&stopping, 1);
}

static void usage(void) {
  fprintf(stderr, "usage: refworker --amqp URL --pg URL --mode per-message|set [--queue NAME]\n"
                  "                 [--prefetch N] [--workers N] [--batch N]\n");
  exit(2);
}

int main(int argc, char **argv) {
  for (int i = 1; i + 1 < argc; i += 2) {
    const char *k = argv[i], *v = argv[i + 1];
    if (!strcmp(k, "--amqp"))
      amqp_url = v;
    else if (!strcmp(k, "--pg"))
      pg_url = v;
    else if (!strcmp(k, "--queue"))
      queue = v;
    else if (!strcmp(k, "--prefetch"))
      prefetch = atol(v);
    else if (!strcmp(k, "--workers"))
      workers = atol(v);
    else if (!strcmp(k, "--batch"))
      batch_max = atol(v);
    else if (!strcmp(k, "--mode") && (!strcmp(v, "per-message") || !strcmp(v, "set")))
      set_mode = !strcmp(v, "set");
    else
      usage();
  }
  if (argc % 2 == 0 || !amqp_url || !pg_url || set_mode < 0 || prefetch < 1 || workers < 1 || workers > 64 ||
      batch_max < 1 || batch_max > MAX_BATCH)
    usage();
  PGconn *pg = PQconnectdb(pg_url);
  if (PQstatus(pg) != CONNECTION_OK) fail("PostgreSQL", PQerrorMessage(pg));
  PQsetNoticeProcessor(pg, quiet, NULL);
  PGresult *r = PQexec(pg, schema_sql);
  if (PQresultStatus(r) != PGRES_COMMAND_OK) fail("creating the schema", PQerrorMessage(pg));
  PQclear(r);
  PQfinish(pg);

  struct sigaction sa = {.sa_handler = on_term};
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  pthread_barrier_init(&consuming, NULL, (unsigned)workers + 1);
  pthread_t t[64];
  for (long i = 0; i < workers; i++)
    if (pthread_create(&t[i], NULL, worker, NULL) != 0) fail("pthread_create", "failed");
  pthread_barrier_wait(&consuming);
  printf("ready: %ld workers consuming %s (%s)\n", workers, queue, set_mode ? "set" : "per-message");
  fflush(stdout);
  for (long i = 0; i < workers; i++) pthread_join(t[i], NULL);
  return 0;
}
