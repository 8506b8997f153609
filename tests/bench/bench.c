/* ctxd benchmarks: each figure next to its ceiling, medians of several runs.
 *
 *   bench --amqp URL --pg URL --ctxd PATH --plugin-dir DIR --plugins FILE --out DIR
 *         [--messages N] [--runs R] [--rate MSG_PER_S] [--latency-s S] [--inbox-rows N]
 *         [--prefetch N] [--workers N] [--batch N] [--only consume,e2e,batch1,publish,relay,latency,inbox]
 *
 * FILE is a JSON array of the context plugins to load besides benchkit (tests/bench/run.sh
 * makes it). Throughput is measured on a queue filled beforehand, so the publisher (slower
 * than any consumer here) never limits it. Prints a table; writes DIR/results.json,
 * DIR/results.md and DIR/throughput.dat (for plot.gp). Figures, not a pass/fail test. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <jansson.h>
#include <libpq-fe.h>

#define WORK_TYPE "Ctxd.Bench.v1:Work"
#define EVENT_TYPE "Ctxd.Bench.v1:WorkDone"
#define QUEUE "bench"
/* the inbox-growth runs' second database */
#define FULL_DB "ctxd_bench_inbox_full"
#define SINK "bench-sink"
#define CONTENT_TYPE "application/vnd.masstransit+json"
#define MAX_RUNS 15

typedef struct {
  const char *amqp, *pg, *ctxd, *plugin_dir, *plugins, *out;
  const char *only; /* comma-separated benchmark names, NULL: all */
  long messages, inbox_rows;
  int runs, latency_s;
  double rate;
  long prefetch, workers, batch;
  const char *queue_type; /* the endpoint's: classic or quorum */
} opts_t;

static opts_t O = {.messages = 50000,
                   .inbox_rows = 1000000,
                   .runs = 5,
                   .latency_s = 10,
                   .rate = 2000,
                   .prefetch = 1024,
                   .workers = 4,
                   .batch = 64,
                   .queue_type = "classic"};
static PGconn *pg;
static json_t *results; /* array of result objects, written at the end */

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* The ctxd running now, 0 if none: a benchmark that gives up stops it too. */
static pid_t running_host;

static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "bench: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  if (running_host > 0) {
    kill(running_host, SIGKILL);
    waitpid(running_host, NULL, 0);
  }
  exit(1);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long long realtime_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void sleep_s(double s) {
  struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
  nanosleep(&ts, NULL);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double median(const double *v, int n) {
  double s[MAX_RUNS];
  memcpy(s, v, (size_t)n * sizeof *s);
  qsort(s, (size_t)n, sizeof *s, cmp_double);
  return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/* ---- PostgreSQL ------------------------------------------------------------------------ */

/* NOTICEs ("database ... does not exist, skipping") would land in the middle of the figures. */
static void quiet(void *arg, const char *message) {
  (void)arg;
  (void)message;
}

static void sql(const char *q) {
  PGresult *r = PQexec(pg, q);
  if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
    die("%s: %s", q, PQerrorMessage(pg));
  PQclear(r);
}

/* The first value of q's first row as text into buf. */
static void sql_text(const char *q, char *buf, size_t len) {
  PGresult *r = PQexec(pg, q);
  if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) < 1) die("%s: %s", q, PQerrorMessage(pg));
  snprintf(buf, len, "%s", PQgetvalue(r, 0, 0));
  PQclear(r);
}

static double sql_double(const char *q) {
  char buf[64];
  sql_text(q, buf, sizeof buf);
  return strtod(buf, NULL);
}

/* O.pg naming database `name` instead (new, lives as long as the process). */
static const char *database_url(const char *name) {
  const char *scheme = strstr(O.pg, "://"), *query = O.pg + strcspn(O.pg, "?"), *slash = NULL;
  for (const char *p = scheme != NULL ? scheme + 3 : query; p < query; p++)
    if (*p == '/') slash = p;
  if (slash == NULL) die("--pg %s: a postgresql:// URL naming a database is needed", O.pg);
  char *url;
  if (asprintf(&url, "%.*s/%s%s", (int)(slash - O.pg), O.pg, name, query) < 0) die("out of memory");
  return url;
}

/* ---- AMQP ------------------------------------------------------------------------------ */

static void amqp_check(amqp_rpc_reply_t r, const char *what) {
  if (r.reply_type != AMQP_RESPONSE_NORMAL) die("amqp: %s failed (reply type %d)", what, r.reply_type);
}

static amqp_connection_state_t amqp_open(void) {
  char *url = strdup(O.amqp);
  struct amqp_connection_info ci;
  if (url == NULL || amqp_parse_url(url, &ci) != AMQP_STATUS_OK) die("bad AMQP URL");
  amqp_connection_state_t c = amqp_new_connection();
  amqp_socket_t *s = amqp_tcp_socket_new(c);
  if (s == NULL || amqp_socket_open(s, ci.host, ci.port) != AMQP_STATUS_OK) die("cannot reach the broker");
  amqp_check(amqp_login(c, ci.vhost, 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, ci.user, ci.password), "login");
  amqp_channel_open(c, 1);
  amqp_check(amqp_get_rpc_reply(c), "channel.open");
  free(url);
  return c;
}

static void amqp_done(amqp_connection_state_t c) {
  amqp_channel_close(c, 1, AMQP_REPLY_SUCCESS);
  amqp_connection_close(c, AMQP_REPLY_SUCCESS);
  amqp_destroy_connection(c);
}

/* MassTransit's topology, as ctxd declares it: queue + exchange "bench", the message type's
 * exchange bound to it; and a sink queue for the events the relay publishes. A quorum
 * endpoint is left to the host (its arguments must match exactly): the first start, before
 * any queue is filled, declares it. */
static void declare_topology(void) {
  amqp_connection_state_t c = amqp_open();
  /* the endpoint's queues as an earlier run left them may be of the other queue type,
   * which ctxd cannot declare again: start from none (ctxd declares them) */
  const char *endpoint_queues[] = {QUEUE, QUEUE "_error", QUEUE "_skipped"};
  for (size_t i = 0; i < sizeof endpoint_queues / sizeof endpoint_queues[0]; i++) {
    amqp_queue_delete(c, 1, amqp_cstring_bytes(endpoint_queues[i]), 0, 0);
    amqp_check(amqp_get_rpc_reply(c), "queue.delete");
  }
  const char *pairs[][2] = {{SINK, EVENT_TYPE}, {QUEUE, WORK_TYPE}};
  for (int i = 0; i < (strcmp(O.queue_type, "classic") == 0 ? 2 : 1); i++) {
    amqp_bytes_t q = amqp_cstring_bytes(pairs[i][0]), t = amqp_cstring_bytes(pairs[i][1]);
    amqp_exchange_declare(c, 1, q, amqp_cstring_bytes("fanout"), 0, 1, 0, 0, amqp_empty_table);
    amqp_exchange_declare(c, 1, t, amqp_cstring_bytes("fanout"), 0, 1, 0, 0, amqp_empty_table);
    amqp_queue_declare(c, 1, q, 0, 1, 0, 0, amqp_empty_table);
    amqp_queue_bind(c, 1, q, q, amqp_empty_bytes, amqp_empty_table);
    amqp_exchange_bind(c, 1, q, t, amqp_empty_bytes, amqp_empty_table);
    amqp_check(amqp_get_rpc_reply(c), "declare");
  }
  amqp_done(c);
}

static long queue_count(amqp_connection_state_t c, const char *queue) {
  amqp_queue_declare_ok_t *ok =
      amqp_queue_declare(c, 1, amqp_cstring_bytes(queue), 1, 0, 0, 0, amqp_empty_table);
  amqp_check(amqp_get_rpc_reply(c), "queue.declare passive");
  return (long)ok->message_count;
}

static void purge(const char *queue) {
  amqp_connection_state_t c = amqp_open();
  amqp_queue_purge(c, 1, amqp_cstring_bytes(queue));
  amqp_check(amqp_get_rpc_reply(c), "queue.purge");
  amqp_done(c);
}

/* A publisher: unique message ids (a random prefix per publisher and a counter). */
typedef struct {
  amqp_connection_state_t c;
  char prefix[32]; /* "xxxxxxxx-xxxx-4xxx-8xxx-" */
  unsigned long long seq;
  uint64_t published, confirmed;
  int confirms;
} publisher_t;

static void publisher_open(publisher_t *p, int confirms) {
  memset(p, 0, sizeof *p);
  p->c = amqp_open();
  unsigned char r[8];
  if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r) die("getrandom");
  snprintf(p->prefix, sizeof p->prefix, "%02x%02x%02x%02x-%02x%02x-4%01x%02x-8%01x%02x-", r[0], r[1], r[2],
           r[3], r[4], r[5], r[6] & 15, r[7], r[6] >> 4, r[0] ^ r[7]);
  if (confirms) {
    amqp_confirm_select(p->c, 1);
    amqp_check(amqp_get_rpc_reply(p->c), "confirm.select");
    p->confirms = 1;
  }
}

/* Reads confirms for up to timeout_s (< 0: until one frame came). */
static void read_confirms(publisher_t *p, double timeout_s) {
  amqp_frame_t f;
  struct timeval tv = {(time_t)timeout_s, (suseconds_t)((timeout_s - (double)(time_t)timeout_s) * 1e6)};
  int rc = amqp_simple_wait_frame_noblock(p->c, &f, timeout_s < 0 ? NULL : &tv);
  if (rc == AMQP_STATUS_TIMEOUT) return;
  if (rc != AMQP_STATUS_OK) die("amqp: waiting for confirms: %s", amqp_error_string2(rc));
  if (f.frame_type != AMQP_FRAME_METHOD) return;
  if (f.payload.method.id == AMQP_BASIC_NACK_METHOD) die("amqp: the broker refused a message");
  if (f.payload.method.id != AMQP_BASIC_ACK_METHOD) die("amqp: unexpected method 0x%x", f.payload.method.id);
  /* RabbitMQ confirms in publish order: the highest tag counts every earlier one */
  amqp_basic_ack_t *a = f.payload.method.decoded;
  if (a->delivery_tag > p->confirmed) p->confirmed = a->delivery_tag;
  amqp_maybe_release_buffers(p->c);
}

/* Publishes n persistent MassTransit envelopes {"key": key0+i, "sentNs": now} to exchange,
 * at `rate` per second (0: as fast as possible), keeping at most `window` unconfirmed.
 * Returns the seconds it took, confirms included. */
static double publish(publisher_t *p, const char *exchange, const char *type, long n, long key0, double rate,
                      uint64_t window) {
  double t0 = now_s();
  char body[640], id[64];
  amqp_basic_properties_t props = {0};
  props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_MESSAGE_ID_FLAG;
  props.content_type = amqp_cstring_bytes(CONTENT_TYPE);
  props.delivery_mode = AMQP_DELIVERY_PERSISTENT;
  for (long i = 0; i < n; i++) {
    if (rate > 0) {
      double due = t0 + (double)i / rate, left;
      while ((left = due - now_s()) > 0) {
        if (p->confirms && p->confirmed < p->published)
          read_confirms(p, left);
        else
          sleep_s(left);
      }
    }
    snprintf(id, sizeof id, "%s%012llx", p->prefix, p->seq++ & 0xffffffffffffULL);
    /* a realistic ~330-byte envelope, as a .NET MassTransit publisher writes it */
    int len = snprintf(body, sizeof body,
                       "{\"messageId\":\"%s\",\"conversationId\":\"%s\",\"sourceAddress\":"
                       "\"rabbitmq://127.0.0.1/bench_publisher\",\"destinationAddress\":"
                       "\"rabbitmq://127.0.0.1/%s\",\"messageType\":[\"urn:message:%s\"],"
                       "\"message\":{\"key\":%ld,\"sentNs\":%lld},\"sentTime\":\"2024-05-01T12:00:00Z\","
                       "\"headers\":{},\"host\":{\"machineName\":\"bench\",\"processName\":\"bench\"}}",
                       id, id, type, type, key0 + i, realtime_ns());
    props.message_id = amqp_cstring_bytes(id);
    if (amqp_basic_publish(p->c, 1, amqp_cstring_bytes(exchange), amqp_empty_bytes, 0, 0, &props,
                           (amqp_bytes_t){(size_t)len, body}) != AMQP_STATUS_OK)
      die("amqp: publish failed");
    p->published++;
    while (p->confirms && p->published - p->confirmed >= window) read_confirms(p, -1);
  }
  while (p->confirms && p->confirmed < p->published) read_confirms(p, -1);
  return now_s() - t0;
}

static void publisher_close(publisher_t *p) { amqp_done(p->c); }

/* Fills QUEUE with n work messages (keys 0..n-1), without confirms (the fastest way), and
 * waits until the broker holds them all. */
static void prefill(long n) {
  purge(QUEUE);
  publisher_t p;
  publisher_open(&p, 0);
  publish(&p, WORK_TYPE, WORK_TYPE, n, 0, 0, 0);
  while (queue_count(p.c, QUEUE) < n) sleep_s(0.02);
  publisher_close(&p);
}

/* ---- the ctxd host ------------------------------------------------------------------- */

typedef struct {
  pid_t pid;
  char log[512];
  double ready_s; /* exec -> "ready" log line */
  long rss_peak_kb;
} host_t;

static long rss_kb(pid_t pid) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
  FILE *f = fopen(path, "r");
  long kb = 0;
  while (f != NULL && fgets(line, sizeof line, f) != NULL)
    if (sscanf(line, "VmRSS: %ld kB", &kb) == 1) break;
  if (f != NULL) fclose(f);
  return kb;
}

static void host_sample(host_t *h) {
  long kb = rss_kb(h->pid);
  if (kb > h->rss_peak_kb) h->rss_peak_kb = kb;
}

/* Writes a configuration: the context plugins from --plugins plus benchkit, and the
 * bench endpoint's settings. Returns its path (new, lives as long as the process). */
static const char *write_config(const char *label, const char *database, long batch, int publish_events) {
  char path[512];
  json_error_t jerr;
  json_t *plugins = json_load_file(O.plugins, 0, &jerr);
  if (!json_is_array(plugins)) die("%s: %s", O.plugins, jerr.text);
  json_array_append_new(
      plugins, json_pack("{s:s, s:{s:b}}", "name", "benchkit", "settings", "publish", publish_events));
  /* no delayed redelivery: the handler never fails, and no delay queues to clean up */
  json_t *cfg = json_pack("{s:{s:s}, s:{s:s}, s:{s:s}, s:s, s:o, s:{s:{s:I, s:I, s:I, s:s, s:s}}}", "broker",
                          "url", O.amqp, "database", "url", database, "log", "level", "info", "plugin_dir",
                          O.plugin_dir, "plugins", plugins, "endpoints", QUEUE, "prefetch",
                          (json_int_t)O.prefetch, "workers", (json_int_t)O.workers, "batch_size",
                          (json_int_t)batch, "queue_type", O.queue_type, "redelivery_ms", "");
  if (cfg == NULL) die("building the configuration failed");
  snprintf(path, sizeof path, "%s/ctxd-%s.json", O.out, label);
  if (json_dump_file(cfg, path, JSON_INDENT(2)) != 0) die("cannot write %s", path);
  json_decref(cfg);
  return strdup(path);
}

static int log_has(const char *path, const char *needle) {
  FILE *f = fopen(path, "r");
  char line[4096];
  int found = 0;
  while (!found && f != NULL && fgets(line, sizeof line, f) != NULL) found = strstr(line, needle) != NULL;
  if (f != NULL) fclose(f);
  return found;
}

/* Starts ctxd with config and waits for its "ready" line (servers already up). */
static void host_start(host_t *h, const char *config, const char *label) {
  static int serial;
  memset(h, 0, sizeof *h);
  snprintf(h->log, sizeof h->log, "%s/logs/ctxd-%s-%d.log", O.out, label, serial++);
  /* a previous run's log, read before the child truncates it, would say "ready" at once */
  unlink(h->log);
  double t0 = now_s();
  h->pid = fork();
  if (h->pid < 0) die("fork: %s", strerror(errno));
  running_host = h->pid;
  if (h->pid == 0) {
    int fd = open(h->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) _exit(127);
    /* stdout too: a host left behind must not hold the pipe the results go through */
    dup2(fd, 1);
    dup2(fd, 2);
    execl(O.ctxd, O.ctxd, "run", "--config", config, (char *)NULL);
    _exit(127);
  }
  /* polling the log every 0.5 ms costs at most that much of the figure */
  while (!log_has(h->log, "\"ready: ")) {
    int st;
    if (waitpid(h->pid, &st, WNOHANG) == h->pid) die("ctxd exited before it was ready; see %s", h->log);
    if (now_s() - t0 > 60) die("ctxd not ready after 60 s; see %s", h->log);
    sleep_s(0.0005);
  }
  h->ready_s = now_s() - t0;
  host_sample(h);
}

static void host_stop(host_t *h) {
  running_host = 0; /* from here on host_stop itself makes sure it ends */
  kill(h->pid, SIGTERM);
  for (double t0 = now_s(); now_s() - t0 < 40; sleep_s(0.01)) {
    int st;
    if (waitpid(h->pid, &st, WNOHANG) == h->pid) {
      if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fprintf(stderr, "bench: ctxd ended with status %d; see %s\n", st, h->log);
      return;
    }
  }
  kill(h->pid, SIGKILL);
  waitpid(h->pid, NULL, 0);
  die("ctxd did not stop within 40 s; see %s", h->log);
}

static long items_count(void) { return (long)sql_double("SELECT count(*) FROM benchkit.items"); }

/* Waits until benchkit.items holds n rows, sampling the host's RSS. It watches the queue
 * until it is empty first: a count(*) every few ms would itself load the database. */
static void wait_items(host_t *h, long n, double timeout_s) {
  double t0 = now_s();
  amqp_connection_state_t c = amqp_open();
  while (queue_count(c, QUEUE) > 0 && now_s() - t0 < timeout_s) {
    host_sample(h);
    sleep_s(0.02);
  }
  amqp_done(c);
  while (items_count() < n) {
    host_sample(h);
    if (now_s() - t0 > timeout_s)
      die("only %ld of %ld messages handled after %.0f s; see %s", items_count(), n, timeout_s, h->log);
    sleep_s(0.02);
  }
}

/* Empties everything a run leaves behind; the inbox too unless keep_inbox. */
static void reset_db(int keep_inbox) {
  sql(keep_inbox ? "TRUNCATE benchkit.items, ctxd.outbox, ctxd.outbox_archive"
                 : "TRUNCATE benchkit.items, ctxd.outbox, ctxd.outbox_archive, ctxd.inbox");
}

/* ---- results ------------------------------------------------------------------------ */

/* The 1-minute load average: the machine may be shared, and the figures depend on it. */
static double loadavg(void) {
  double l = -1;
  FILE *f = fopen("/proc/loadavg", "r");
  if (f != NULL && fscanf(f, "%lf", &l) != 1) l = -1;
  if (f != NULL) fclose(f);
  return l;
}

/* Records a figure (median of v) with its ceiling (0: none), prints a line, returns the
 * median. holds: 1, 0, or -1 when it cannot be judged (the ceiling was not measured). */
static double report(const char *name, const char *unit, const double *v, int n, double ceiling,
                     const char *target, int holds) {
  double m = median(v, n);
  json_t *runs = json_array();
  for (int i = 0; i < n; i++) json_array_append_new(runs, json_real(v[i]));
  json_t *o = json_pack("{s:s, s:s, s:f, s:o, s:s}", "name", name, "unit", unit, "median", m, "runs", runs,
                        "target", target);
  if (holds >= 0) json_object_set_new(o, "holds", json_boolean(holds));
  if (ceiling > 0) json_object_set_new(o, "ratio", json_real(m / ceiling));
  json_object_set_new(o, "loadavg_1m", json_real(loadavg()));
  json_array_append_new(results, o);
  printf("%-44s %12.1f %-6s", name, m, unit);
  if (ceiling > 0) printf("  %5.0f%% of reference", 100 * m / ceiling);
  printf("  [%s: %s]  load %.1f\n", target,
         target[0] == '-' ? "-"
         : holds < 0      ? "no ceiling measured"
         : holds          ? "holds"
                          : "MISSED",
         loadavg());
  fflush(stdout);
  return m;
}

/* ---- the benchmarks --------------------------------------------------------------------- */

/* Minimal consumer: prefetch as ctxd's endpoint, a multiple-ack every batch. */
static double raw_consume(long n) {
  amqp_connection_state_t c = amqp_open();
  amqp_basic_qos(c, 1, 0, (uint16_t)O.prefetch, 0);
  amqp_basic_consume(c, 1, amqp_cstring_bytes(QUEUE), amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
  amqp_check(amqp_get_rpc_reply(c), "basic.consume");
  double t0 = now_s();
  for (long got = 0; got < n;) {
    amqp_envelope_t e;
    amqp_maybe_release_buffers(c);
    amqp_check(amqp_consume_message(c, &e, NULL, 0), "consume");
    got++;
    if (got % O.batch == 0 || got == n) amqp_basic_ack(c, 1, e.delivery_tag, 1);
    amqp_destroy_envelope(&e);
  }
  double t = now_s() - t0;
  amqp_done(c);
  return (double)n / t;
}

/* ctxd on a full queue: messages per second between the first and the last handled row.
 * *batch_mean (when not NULL): messages per transaction, from the inbox rows (a batch's
 * rows share their transaction's now()). */
static double ctxd_drain(const char *config, const char *label, long n, int keep_inbox, long *rss_peak,
                         double *batch_mean) {
  reset_db(keep_inbox);
  prefill(n);
  host_t h;
  host_start(&h, config, label);
  wait_items(&h, n, 600);
  host_stop(&h);
  if (rss_peak != NULL && h.rss_peak_kb > *rss_peak) *rss_peak = h.rss_peak_kb;
  double span =
      sql_double("SELECT extract(epoch FROM max(handled_at) - min(handled_at)) FROM benchkit.items");
  if (batch_mean != NULL)
    *batch_mean = sql_double("SELECT count(*)::float8 / count(DISTINCT received_at) FROM ctxd.inbox "
                             "WHERE endpoint = '" QUEUE "'");
  return (double)(n - 1) / span;
}

static double confirmed_publish(long n) {
  purge(SINK);
  publisher_t p;
  publisher_open(&p, 1);
  double t = publish(&p, EVENT_TYPE, EVENT_TYPE, n, 0, 0, 1000);
  publisher_close(&p);
  return (double)n / t;
}

/* Starts ctxd and waits until the sink queue holds n events: events per second from
 * ready to the last one. */
static double sink_rate(const char *config, const char *label, long n) {
  host_t h;
  host_start(&h, config, label);
  double t0 = now_s();
  amqp_connection_state_t c = amqp_open();
  while (queue_count(c, SINK) < n) {
    if (now_s() - t0 > 600) die("%s: events missing after 600 s; see %s", label, h.log);
    sleep_s(0.01);
  }
  double t = now_s() - t0;
  amqp_done(c);
  host_stop(&h);
  return (double)n / t;
}

/* ctxd consuming a full queue, each handler publishing one event through the outbox. */
static double relay(const char *config, long n) {
  reset_db(0);
  purge(SINK);
  prefill(n);
  return sink_rate(config, "relay", n);
}

/* The relay alone: n committed rows wait in the outbox (their writer's lease ended, as
 * after a crash), and a host publishes them with confirms and archives them. */
static double relay_backlog(const char *config, long n) {
  reset_db(0);
  purge(SINK);
  char q[1024];
  snprintf(
      q, sizeof q,
      "INSERT INTO ctxd.outbox (message_id, exchange, message_type, body, lease_until) "
      "SELECT id, '%s', '%s', json_build_object('messageId', id, 'messageType', "
      "json_build_array('urn:message:%s'), 'message', json_build_object('key', g, 'sentNs', 0))::text, "
      "now() - interval '1 second' FROM (SELECT gen_random_uuid() AS id, g FROM generate_series(1, %ld) g) s",
      EVENT_TYPE, EVENT_TYPE, EVENT_TYPE, n);
  sql(q);
  sql("VACUUM ANALYZE ctxd.outbox");
  return sink_rate(config, "relay-backlog", n);
}

/* Publishes at a fixed rate into a running ctxd; p50/p95/p99/max of publish -> handled. */
static void latency(const char *config, double out[4], long *rss_kb_load) {
  reset_db(0);
  purge(QUEUE);
  host_t h;
  host_start(&h, config, "latency");
  long n = (long)(O.rate * O.latency_s);
  publisher_t p;
  publisher_open(&p, 1);
  /* a window large enough never to throttle the offered rate */
  publish(&p, WORK_TYPE, WORK_TYPE, n, 0, O.rate, 4000);
  publisher_close(&p);
  host_sample(&h);
  wait_items(&h, n, 120);
  *rss_kb_load = h.rss_peak_kb;
  host_stop(&h);
  char buf[256];
  sql_text("SELECT percentile_cont(ARRAY[0.5, 0.95, 0.99, 1]) WITHIN GROUP (ORDER BY "
           "(extract(epoch FROM handled_at) * 1e9 - sent_ns) / 1e6) FROM benchkit.items",
           buf, sizeof buf);
  if (sscanf(buf, "{%lf,%lf,%lf,%lf}", &out[0], &out[1], &out[2], &out[3]) != 4) die("latency: %s", buf);
}

/* 1 when benchmark `name` is to run (--only). */
static int want(const char *name) {
  if (O.only == NULL) return 1;
  size_t n = strlen(name);
  for (const char *p = O.only; (p = strstr(p, name)) != NULL; p += n)
    if ((p == O.only || p[-1] == ',') && (p[n] == '\0' || p[n] == ',')) return 1;
  return 0;
}

static void usage(void) {
  fprintf(stderr, "usage: bench --amqp URL --pg URL --ctxd PATH --plugin-dir DIR --plugins FILE --out DIR\n"
                  "             [--messages N] [--runs R] [--rate N] [--latency-s S] [--inbox-rows N]\n"
                  "             [--prefetch N] [--workers N] [--batch N] [--queue-type classic|quorum]\n"
                  "             [--only consume,e2e,batch1,publish,relay,latency,inbox]\n");
  exit(2);
}

static void parse(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    if (i + 1 >= argc) usage();
    const char *k = argv[i], *v = argv[++i];
    if (!strcmp(k, "--amqp"))
      O.amqp = v;
    else if (!strcmp(k, "--pg"))
      O.pg = v;
    else if (!strcmp(k, "--ctxd"))
      O.ctxd = v;
    else if (!strcmp(k, "--plugin-dir"))
      O.plugin_dir = v;
    else if (!strcmp(k, "--plugins"))
      O.plugins = v;
    else if (!strcmp(k, "--out"))
      O.out = v;
    else if (!strcmp(k, "--messages"))
      O.messages = atol(v);
    else if (!strcmp(k, "--runs"))
      O.runs = atoi(v);
    else if (!strcmp(k, "--rate"))
      O.rate = atof(v);
    else if (!strcmp(k, "--latency-s"))
      O.latency_s = atoi(v);
    else if (!strcmp(k, "--inbox-rows"))
      O.inbox_rows = atol(v);
    else if (!strcmp(k, "--prefetch"))
      O.prefetch = atol(v);
    else if (!strcmp(k, "--workers"))
      O.workers = atol(v);
    else if (!strcmp(k, "--batch"))
      O.batch = atol(v);
    else if (!strcmp(k, "--queue-type") && (!strcmp(v, "classic") || !strcmp(v, "quorum")))
      O.queue_type = v;
    else if (!strcmp(k, "--only"))
      O.only = v;
    else
      usage();
  }
  if (!O.amqp || !O.pg || !O.ctxd || !O.plugin_dir || !O.plugins || !O.out || O.runs < 1 ||
      O.runs > MAX_RUNS || O.messages < 100 || O.rate <= 0 || O.latency_s < 1 || O.batch < 1)
    usage();
}

int main(int argc, char **argv) {
  parse(argc, argv);
  /* the hosts' configuration names --amqp and --pg; inherited overrides would win over it */
  unsetenv("CTXD_AMQP_URL");
  unsetenv("CTXD_PG_URL");
  char dir[600];
  snprintf(dir, sizeof dir, "%s/logs", O.out);
  mkdir(O.out, 0755);
  mkdir(dir, 0755);
  pg = PQconnectdb(O.pg);
  if (PQstatus(pg) != CONNECTION_OK) die("database: %s", PQerrorMessage(pg));
  PQsetNoticeProcessor(pg, quiet, NULL);
  results = json_array();
  declare_topology();
  const int R = O.runs;
  const long N = O.messages, N1 = N / 5 > 100 ? N / 5 : 100;
  double v[MAX_RUNS], w[MAX_RUNS], lat[MAX_RUNS][4];

  const char *batched = write_config("batched", O.pg, O.batch, 0);
  const char *single = write_config("batch1", O.pg, 1, 0);
  const char *relaying = write_config("relay", O.pg, O.batch, 1);
  printf("ctxd benchmarks: %ld messages per throughput run (%ld at batch size 1), %d runs each, medians\n"
         "endpoint: prefetch %ld, workers %ld, batch_size %ld, queue_type %s\n\n",
         N, N1, R, O.prefetch, O.workers, O.batch, O.queue_type);

  /* start-up first: the first start also applies every migration (benchkit's schema) and
   * declares a quorum endpoint */
  if (strcmp(O.queue_type, "classic") == 0) purge(QUEUE);
  double first_ready = 0;
  for (int i = 0; i < R + 1; i++) {
    host_t h;
    host_start(&h, batched, "ready");
    if (i == 0) {
      first_ready = h.ready_s * 1000;
    } else {
      v[i - 1] = h.ready_s * 1000;
      sleep_s(1);
      w[i - 1] = (double)rss_kb(h.pid) / 1024;
    }
    host_stop(&h);
    /* the host declared them: from here on, anything in _error was lost by this run */
    if (i == 0) {
      purge(QUEUE);
      purge(QUEUE "_error");
    }
  }
  report("start: first start (+ migrations if new)", "ms", &first_ready, 1, 0, "-", 0);
  double ready = median(v, R);
  report("start: exec -> ready", "ms", v, R, 0, "< 150 ms", ready < 150);
  double idle = median(w, R);
  report("memory: RSS idle", "MiB", w, R, 0, "< 20 MiB", idle < 20);

  /* The ceiling and e2e runs alternate: the broker's speed drifts (its garbage collector,
   * the machine), and both figures should see the same drift. */
  double consume_ceiling = 0, e2e = 0, publish_ceiling = 0, ceilings[MAX_RUNS], sizes[MAX_RUNS];
  long rss_load = 0;
  for (int i = 0; i < R && (want("consume") || want("e2e")); i++) {
    if (want("consume")) {
      prefill(N);
      ceilings[i] = raw_consume(N);
    }
    if (want("e2e")) v[i] = ctxd_drain(batched, "batched", N, 0, &rss_load, &sizes[i]);
  }
  if (want("consume"))
    consume_ceiling = report("ceiling: raw consume + ack", "msg/s", ceilings, R, 0, "-", 0);
  if (want("e2e")) {
    e2e = median(v, R);
    report("ctxd e2e exactly once (batched)", "msg/s", v, R, consume_ceiling, ">= 12000/s and >= 60%",
           consume_ceiling > 0 ? e2e >= 12000 && e2e >= 0.6 * consume_ceiling : -1);
    report("ctxd e2e: messages per transaction", "msg", sizes, R, 0, "-", 0);
    double mib = (double)rss_load / 1024;
    report("memory: RSS peak at full throughput", "MiB", &mib, 1, 0, "< 20 MiB", mib < 20);
  }
  if (want("batch1")) {
    for (int i = 0; i < R; i++) v[i] = ctxd_drain(single, "batch1", N1, 0, NULL, NULL);
    report("ctxd e2e exactly once (batch size 1)", "msg/s", v, R, consume_ceiling, "-", 0);
  }

  if (want("publish")) {
    for (int i = 0; i < R; i++) v[i] = confirmed_publish(N);
    publish_ceiling = report("ceiling: confirmed publish", "msg/s", v, R, 0, "-", 0);
  }
  if (want("relay")) {
    for (int i = 0; i < R; i++) v[i] = relay_backlog(batched, N);
    double rel = median(v, R);
    report("outbox relay (committed rows -> confirmed)", "msg/s", v, R, publish_ceiling, ">= 80%",
           publish_ceiling > 0 ? rel >= 0.8 * publish_ceiling : -1);
    for (int i = 0; i < R; i++) v[i] = relay(relaying, N);
    report("ctxd e2e with outbox (consume+upsert+event)", "msg/s", v, R, publish_ceiling, "-", 0);
  }

  long rss_rate = 0;
  for (int i = 0; i < R && want("latency"); i++) {
    long kb;
    latency(batched, lat[i], &kb);
    if (kb > rss_rate) rss_rate = kb;
  }
  const char *pname[] = {"p50", "p95", "p99", "max"};
  for (int k = 0; k < 4 && want("latency"); k++) {
    for (int i = 0; i < R; i++) v[i] = lat[i][k];
    char name[96];
    snprintf(name, sizeof name, "latency %s at %.0f msg/s", pname[k], O.rate);
    double m = median(v, R);
    report(name, "ms", v, R, 0, k == 2 ? "< 25 ms" : "-", k == 2 && m < 25);
  }
  if (want("latency")) {
    double mib = (double)rss_rate / 1024;
    report("memory: RSS peak at the fixed rate", "MiB", &mib, 1, 0, "< 20 MiB", mib < 20);
  }

  /* Inbox growth: rows of another endpoint, as a busy host's week of history would be, in
   * a database of their own, so that runs against it alternate with runs against the
   * empty one and both see the same drift of the machine. */
  char q[512];
  if (want("inbox")) {
    PGconn *empty_db = pg;
    sql("DROP DATABASE IF EXISTS " FULL_DB " WITH (FORCE)");
    sql("CREATE DATABASE " FULL_DB);
    const char *full_url = database_url(FULL_DB);
    const char *full_config = write_config("inbox-full", full_url, O.batch, 0);
    PGconn *full_db = PQconnectdb(full_url);
    if (PQstatus(full_db) != CONNECTION_OK) die("database: %s", PQerrorMessage(full_db));
    PQsetNoticeProcessor(full_db, quiet, NULL);
    host_t h;
    host_start(&h, full_config, "inbox-migrate"); /* its migrations create the tables */
    host_stop(&h);
    pg = full_db;
    double t0 = now_s();
    snprintf(q, sizeof q,
             "INSERT INTO ctxd.inbox (endpoint, message_id) SELECT 'bench-history', gen_random_uuid() "
             "FROM generate_series(1, %ld)",
             O.inbox_rows);
    sql(q);
    sql("VACUUM ANALYZE ctxd.inbox");
    /* the fill's dirty pages are written now, not by the checkpointer during the runs */
    sql("CHECKPOINT");
    printf("(inbox filled with %ld rows in %.1f s)\n", O.inbox_rows, now_s() - t0);
    for (int i = 0; i < R; i++) {
      pg = empty_db;
      w[i] = ctxd_drain(batched, "inbox-empty", N, 0, NULL, NULL);
      pg = full_db;
      v[i] = ctxd_drain(full_config, "inbox-full", N, 1, NULL, NULL);
    }
    pg = empty_db;
    PQfinish(full_db);
    sql("DROP DATABASE " FULL_DB);
    double empty = report("ctxd e2e, empty inbox (alternating with the next)", "msg/s", w, R, 0, "-", 0);
    double full = median(v, R);
    snprintf(q, sizeof q, "ctxd e2e with %ld rows in the inbox", O.inbox_rows);
    report(q, "msg/s", v, R, empty, ">= 90% of empty", full >= 0.9 * empty);
  }

  /* the plot's data: label, figure, its ceiling */
  snprintf(q, sizeof q, "%s/throughput.dat", O.out);
  FILE *dat = fopen(q, "w");
  if (dat == NULL) die("cannot write %s", q);
  fprintf(dat, "# label figure ceiling (msg/s)\n");
  size_t i;
  json_t *r;
  json_array_foreach(results, i, r) {
    if (strcmp(json_string_value(json_object_get(r, "unit")), "msg/s") != 0) continue;
    const char *name = json_string_value(json_object_get(r, "name"));
    double m = json_real_value(json_object_get(r, "median"));
    double ratio = json_real_value(json_object_get(r, "ratio"));
    fprintf(dat, "\"%s\" %.0f %.0f\n", name, m, ratio > 0 ? m / ratio : 0);
  }
  fclose(dat);

  snprintf(q, sizeof q, "%s/results.md", O.out);
  FILE *md = fopen(q, "w");
  if (md == NULL) die("cannot write %s", q);
  fprintf(md, "| benchmark | median | unit | ratio to reference | runs | target | holds | load (1 min) |\n"
              "|---|---:|---|---:|---|---|---|---:|\n");
  json_array_foreach(results, i, r) {
    json_t *runs = json_object_get(r, "runs"), *x;
    size_t j;
    char all[256] = "";
    json_array_foreach(runs, j, x) {
      size_t l = strlen(all);
      snprintf(all + l, sizeof all - l, "%s%.1f", j ? ", " : "", json_real_value(x));
    }
    const char *tg = json_string_value(json_object_get(r, "target"));
    double ratio = json_real_value(json_object_get(r, "ratio"));
    char rs[32] = "";
    if (ratio > 0) snprintf(rs, sizeof rs, "%.0f%%", 100 * ratio);
    fprintf(md, "| %s | %.1f | %s | %s | %s | %s | %s | %.1f |\n",
            json_string_value(json_object_get(r, "name")), json_real_value(json_object_get(r, "median")),
            json_string_value(json_object_get(r, "unit")), rs, all, tg,
            strcmp(tg, "-") == 0                        ? ""
            : !json_object_get(r, "holds")              ? "n/a"
            : json_is_true(json_object_get(r, "holds")) ? "yes"
                                                        : "**no**",
            json_real_value(json_object_get(r, "loadavg_1m")));
  }
  fclose(md);

  json_t *doc =
      json_pack("{s:I, s:I, s:i, s:f, s:i, s:I, s:{s:I, s:I, s:I}, s:o}", "messages", (json_int_t)N,
                "messages_batch1", (json_int_t)N1, "runs", R, "rate", O.rate, "latency_s", O.latency_s,
                "inbox_rows", (json_int_t)O.inbox_rows, "endpoint", "prefetch", (json_int_t)O.prefetch,
                "workers", (json_int_t)O.workers, "batch_size", (json_int_t)O.batch, "results", results);
  snprintf(q, sizeof q, "%s/results.json", O.out);
  if (doc == NULL || json_dump_file(doc, q, JSON_INDENT(2)) != 0) die("cannot write %s", q);
  json_decref(doc);
  PQfinish(pg);
  /* figures of a run that failed messages would flatter it */
  amqp_connection_state_t c = amqp_open();
  long failed = queue_count(c, QUEUE "_error");
  amqp_done(c);
  printf("%s_error: %ld messages%s\n", QUEUE, failed, failed ? " (the run lost work: see the logs)" : "");
  return failed ? 1 : 0;
}
