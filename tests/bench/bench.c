/* ctxd benchmarks: each figure next to its ceiling, medians of several runs.
 *
 *   bench --amqp URL --pg URL --ctxd PATH --plugin-dir DIR --plugins FILE --out DIR
 *         [--messages N] [--runs R] [--rate MSG_PER_S] [--latency-s S] [--inbox-rows N]
 *         [--prefetch N] [--workers N] [--batch N] [--refworker PATH] [--no-batch]
 *         [--only consume,e2e,batch,ref,batch1,outbox,latency,inbox,quorum]
 *
 * FILE is a JSON array of the context plugins to load besides benchkit (tests/bench/run.sh
 * makes it); PATH the exactly-once reference worker (tests/bench/refworker.c). Throughput is
 * measured on a queue filled beforehand, so the publisher (slower than any consumer here)
 * never limits it. Every end-to-end run checks its counts (inbox rows, the effect's total,
 * the queues) and the benchmark stops at the first that is wrong. Prints a table; writes
 * DIR/results.json (every run), DIR/results.md and DIR/throughput.dat (for plot.gp).
 * Figures, not a pass/fail test, except for the counts. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "benchutil.h"

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
  const char *amqp, *pg, *ctxd, *plugin_dir, *plugins, *out, *refworker;
  const char *only; /* comma-separated benchmark names, NULL: all */
  long messages, inbox_rows;
  int runs, latency_s;
  double rate;
  long prefetch, workers, batch;
  int no_batch; /* benchkit has no batch handler (before ABI 1.3): skip those runs */
} opts_t;

static opts_t O = {.messages = 50000,
                   .inbox_rows = 1000000,
                   .runs = 5,
                   .latency_s = 10,
                   .rate = 2000,
                   .prefetch = 1024,
                   .workers = 4,
                   .batch = 64};
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

static long long realtime_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
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

/* A connection on channel 1 to --amqp; the caller ends it with amqp_done(). */
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
static void declare_topology(const char *queue_type) {
  amqp_connection_state_t c = amqp_open();
  /* the endpoint's queues as an earlier run left them may be of the other queue type,
   * which ctxd cannot declare again: start from none (ctxd declares them) */
  const char *endpoint_queues[] = {QUEUE, QUEUE "_error", QUEUE "_skipped"};
  for (size_t i = 0; i < sizeof endpoint_queues / sizeof endpoint_queues[0]; i++) {
    amqp_queue_delete(c, 1, amqp_cstring_bytes(endpoint_queues[i]), 0, 0);
    amqp_check(amqp_get_rpc_reply(c), "queue.delete");
  }
  const char *pairs[][2] = {{SINK, EVENT_TYPE}, {QUEUE, WORK_TYPE}};
  for (int i = 0; i < (strcmp(queue_type, "classic") == 0 ? 2 : 1); i++) {
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

/* How far past the oldest unconfirmed message a confirm may come. */
#define CONFIRM_SPAN 65536

/* A publisher: unique message ids (a random prefix per publisher and a counter). */
typedef struct {
  amqp_connection_state_t c;
  char prefix[32]; /* "xxxxxxxx-xxxx-4xxx-8xxx-" */
  unsigned long long seq;
  uint64_t published, confirmed;     /* messages */
  uint64_t upto;                     /* every delivery tag up to it is confirmed */
  unsigned char acked[CONFIRM_SPAN]; /* tags above upto confirmed alone, by tag % CONFIRM_SPAN */
  int confirms;
} publisher_t;

/* The bodies of the work messages sent (what ctxd consumes; not the confirmed-publish
 * ceiling's events): the message size printed is theirs, measured. */
static struct {
  long long bodies, bytes;
  int min, max;
} sent_bodies = {0, 0, 1 << 30, 0};

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

/* Counts the messages a confirm covers: with multiple, every tag up to `tag` not counted
 * yet; else that tag alone (the broker may confirm singly, and in any order). */
static void confirm(publisher_t *p, uint64_t tag, int multiple) {
  if (tag <= p->upto) return;
  if (tag - p->upto >= CONFIRM_SPAN)
    die("amqp: confirm of tag %llu while %llu is not confirmed yet", (unsigned long long)tag,
        (unsigned long long)p->upto + 1);
  for (uint64_t t = multiple ? p->upto + 1 : tag; t <= tag; t++) {
    unsigned char *b = &p->acked[t % CONFIRM_SPAN];
    if (!*b) p->confirmed++;
    *b = 1;
  }
  /* the mark moves over every tag confirmed in a row, freeing their slots */
  for (unsigned char *b; *(b = &p->acked[(p->upto + 1) % CONFIRM_SPAN]); p->upto++) *b = 0;
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
  amqp_basic_ack_t *a = f.payload.method.decoded;
  confirm(p, a->delivery_tag, a->multiple);
  amqp_maybe_release_buffers(p->c);
}

/* Publishes n persistent MassTransit envelopes {"key": key0+i, "sentNs": now} to exchange,
 * at `rate` per second (0: as fast as possible), keeping at most `window` unconfirmed.
 * Returns the seconds it took, confirms included. */
static double publish(publisher_t *p, const char *exchange, const char *type, long n, long key0, double rate,
                      uint64_t window) {
  double t0 = bench_now_s();
  char body[640], id[64];
  amqp_basic_properties_t props = {0};
  props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_MESSAGE_ID_FLAG;
  props.content_type = amqp_cstring_bytes(CONTENT_TYPE);
  props.delivery_mode = AMQP_DELIVERY_PERSISTENT;
  for (long i = 0; i < n; i++) {
    if (rate > 0) {
      double due = t0 + (double)i / rate, left;
      while ((left = due - bench_now_s()) > 0) {
        if (p->confirms && p->confirmed < p->published)
          read_confirms(p, left);
        else
          bench_sleep_s(left);
      }
    }
    snprintf(id, sizeof id, "%s%012llx", p->prefix, p->seq++ & 0xffffffffffffULL);
    /* a realistic envelope, as a .NET MassTransit publisher writes it */
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
    if (strcmp(type, WORK_TYPE) == 0) {
      sent_bodies.bodies++;
      sent_bodies.bytes += len;
      if (len < sent_bodies.min) sent_bodies.min = len;
      if (len > sent_bodies.max) sent_bodies.max = len;
    }
    p->published++;
    while (p->confirms && p->published - p->confirmed >= window) read_confirms(p, -1);
  }
  while (p->confirms && p->confirmed < p->published) read_confirms(p, -1);
  return bench_now_s() - t0;
}

static void publisher_close(publisher_t *p) { amqp_done(p->c); }

/* Fills QUEUE with n work messages (keys 0..n-1), without confirms (the fastest way), and
 * waits until the broker holds them all (a minute at most: unconfirmed messages the broker
 * dropped would never come). */
static void prefill(long n) {
  purge(QUEUE);
  publisher_t p;
  publisher_open(&p, 0);
  publish(&p, WORK_TYPE, WORK_TYPE, n, 0, 0, 0);
  long got;
  for (double t0 = bench_now_s(); (got = queue_count(p.c, QUEUE)) < n; bench_sleep_s(0.02))
    if (bench_now_s() - t0 > 60)
      die("prefill: the queue holds %ld of the %ld messages published after 60 s", got, n);
  publisher_close(&p);
}

/* ---- CPU time from /proc -------------------------------------------------------------- */

/* utime + stime of pid in seconds (its threads included), with reaped: plus cutime + cstime
 * (its children that exited and were waited for); -1 when unreadable; *ppid its parent. */
static double proc_cpu_s(pid_t pid, pid_t *ppid, int reaped) {
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "r");
  size_t len = f != NULL ? fread(buf, 1, sizeof buf - 1, f) : 0;
  if (f != NULL) fclose(f);
  buf[len] = '\0';
  /* the command name may hold spaces and parentheses: fields count from the last ')' */
  const char *p = strrchr(buf, ')');
  int parent;
  unsigned long long ut, st;
  long long cut, cst;
  if (p == NULL || sscanf(p + 2, "%*c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %lld %lld", &parent,
                          &ut, &st, &cut, &cst) != 5)
    return -1;
  if (ppid != NULL) *ppid = parent;
  double ticks = (double)(ut + st) + (reaped ? (double)(cut + cst) : 0);
  return ticks / (double)sysconf(_SC_CLK_TCK);
}

/* The pid in the first line of file `name` under the stack's folder (or of the folder that
 * the folder's file `indirect` names), 0 when there is none. */
static pid_t stack_pid(const char *indirect, const char *name) {
  const char *dir = getenv("CTXD_STACK_DIR");
  char path[1024], base[512] = "";
  if (dir == NULL) return 0;
  if (indirect != NULL) {
    snprintf(path, sizeof path, "%s/%s", dir, indirect);
    FILE *f = fopen(path, "r");
    if (f == NULL || fgets(base, sizeof base, f) == NULL) base[0] = '\0';
    if (f != NULL) fclose(f);
    base[strcspn(base, "\n")] = '\0';
    if (base[0] == '\0') return 0;
  }
  snprintf(path, sizeof path, "%s/%s", indirect != NULL ? base : dir, name);
  FILE *f = fopen(path, "r");
  long pid = 0;
  if (f == NULL || fscanf(f, "%ld", &pid) != 1) pid = 0;
  if (f != NULL) fclose(f);
  return (pid_t)pid;
}

/* CPU seconds of a running process by its CPU-time clock (ns, not the tick of /proc), -1
 * when it cannot be read. */
static double clock_cpu_s(pid_t pid) {
  clockid_t id;
  struct timespec ts;
  if (clock_getcpuclockid(pid, &id) != 0 || clock_gettime(id, &ts) != 0) return -1;
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU seconds so far of the worker (ctxd or the reference worker), PostgreSQL (the
 * postmaster, every process it started but the benchmark's own backend, and those that
 * exited meanwhile, autovacuum workers say: the postmaster reaped them) and the broker
 * (its Erlang VM); -1 for what cannot be found. */
typedef struct {
  double worker, pg, broker;
} cpu_t;

static cpu_t cpu_now(pid_t worker) {
  static pid_t postmaster = -1, broker = -1;
  if (postmaster < 0) postmaster = stack_pid("pg.path", "data/postmaster.pid");
  if (broker < 0) broker = stack_pid(NULL, "rabbit/rabbit.pid");
  cpu_t c = {clock_cpu_s(worker), -1, broker > 0 ? proc_cpu_s(broker, NULL, 0) : -1};
  if (c.worker < 0) c.worker = proc_cpu_s(worker, NULL, 0);
  DIR *d = postmaster > 0 ? opendir("/proc") : NULL;
  if (d != NULL) c.pg = proc_cpu_s(postmaster, NULL, 1);
  pid_t own = PQbackendPID(pg);
  for (struct dirent *e; d != NULL && c.pg >= 0 && (e = readdir(d)) != NULL;) {
    pid_t pid = (pid_t)atol(e->d_name), parent = 0;
    double s;
    if (pid > 0 && pid != own && (s = proc_cpu_s(pid, &parent, 0)) >= 0 && parent == postmaster) c.pg += s;
  }
  if (d != NULL) closedir(d);
  return c;
}

/* ---- the hosts: ctxd or the reference worker ------------------------------------------ */

typedef struct {
  pid_t pid;
  char log[512];
  double ready_s;     /* exec -> "ready" log line */
  long long ready_ns; /* CLOCK_REALTIME when "ready" was seen: the database's clock too */
  /* the load phase: from ready to host_stop, RSS sampled every 20 ms by a thread */
  pthread_t sampler;
  atomic_int sampling;
  atomic_long rss_peak_kb;
  cpu_t cpu_ready;
} host_t;

/* A thread, so that the publisher's loop (the latency run) cannot starve the sampling. */
static void *host_sampler(void *arg) {
  host_t *h = arg;
  while (atomic_load(&h->sampling)) {
    long kb = ctxt_proc_status_kb(h->pid, "VmRSS:");
    if (kb > atomic_load(&h->rss_peak_kb)) atomic_store(&h->rss_peak_kb, kb);
    bench_sleep_s(0.02);
  }
  return NULL;
}

/* Writes a ctxd configuration: the context plugins from --plugins plus benchkit, and the
 * bench endpoint's settings. Returns its path (new, lives as long as the process). */
static const char *write_config(const char *label, const char *database, long batch, int publish_events,
                                int batch_handler, const char *queue_type) {
  char path[512];
  json_error_t jerr;
  json_t *plugins = json_load_file(O.plugins, 0, &jerr);
  if (!json_is_array(plugins)) die("%s: %s", O.plugins, jerr.text);
  json_t *bk = json_pack("{s:b}", "publish", publish_events);
  /* only when wanted: a benchkit before ABI 1.3 refuses the key */
  if (batch_handler) json_object_set_new(bk, "batch", json_true());
  json_array_append_new(plugins, json_pack("{s:s, s:o}", "name", "benchkit", "settings", bk));
  /* no delayed redelivery: the handler never fails, and no delay queues to clean up */
  json_t *cfg = json_pack("{s:{s:s}, s:{s:s}, s:{s:s}, s:s, s:o, s:{s:{s:I, s:I, s:I, s:s, s:s}}}", "broker",
                          "url", O.amqp, "database", "url", database, "log", "level", "info", "plugin_dir",
                          O.plugin_dir, "plugins", plugins, "endpoints", QUEUE, "prefetch",
                          (json_int_t)O.prefetch, "workers", (json_int_t)O.workers, "batch_size",
                          (json_int_t)batch, "queue_type", queue_type, "redelivery_ms", "");
  if (cfg == NULL) die("building the configuration failed");
  snprintf(path, sizeof path, "%s/ctxd-%s.json", O.out, label);
  if (json_dump_file(cfg, path, JSON_INDENT(2)) != 0) die("cannot write %s", path);
  json_decref(cfg);
  return strdup(path);
}

/* What a run starts: ctxd with a configuration, or the reference worker in a mode. */
typedef struct {
  const char *label;
  const char *config; /* ctxd's; NULL: the reference worker */
  const char *mode;   /* the reference worker's --mode */
} runner_t;

/* Starts the runner and waits for its "ready" line (servers already up); the load phase's
 * sampling starts there. */
static void host_start(host_t *h, const runner_t *r) {
  static int serial;
  memset(h, 0, sizeof *h);
  snprintf(h->log, sizeof h->log, "%s/logs/%s-%s-%d.log", O.out, r->config ? "ctxd" : "refworker", r->label,
           serial++);
  /* a previous run's log, read before the child truncates it, would say "ready" at once */
  unlink(h->log);
  char prefetch[24], workers[24], batch[24];
  snprintf(prefetch, sizeof prefetch, "%ld", O.prefetch);
  snprintf(workers, sizeof workers, "%ld", O.workers);
  snprintf(batch, sizeof batch, "%ld", O.batch);
  double t0 = bench_now_s();
  h->pid = fork();
  if (h->pid < 0) die("fork: %s", strerror(errno));
  running_host = h->pid;
  if (h->pid == 0) {
    int fd = open(h->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) _exit(127);
    /* stdout too: a host left behind must not hold the pipe the results go through */
    dup2(fd, 1);
    dup2(fd, 2);
    if (r->config != NULL)
      execl(O.ctxd, O.ctxd, "run", "--config", r->config, (char *)NULL);
    else
      execl(O.refworker, O.refworker, "--amqp", O.amqp, "--pg", O.pg, "--mode", r->mode, "--queue", QUEUE,
            "--prefetch", prefetch, "--workers", workers, "--batch", batch, (char *)NULL);
    _exit(127);
  }
  /* polling the log every 0.5 ms costs at most that much of the figure */
  const char *ready = r->config != NULL ? "\"ready: " : "ready: ";
  while (!bench_log_has(h->log, ready)) {
    int st;
    if (waitpid(h->pid, &st, WNOHANG) == h->pid)
      die("%s exited before it was ready; see %s", r->label, h->log);
    if (bench_now_s() - t0 > 60) die("%s not ready after 60 s; see %s", r->label, h->log);
    bench_sleep_s(0.0005);
  }
  h->ready_s = bench_now_s() - t0;
  h->ready_ns = realtime_ns();
  h->cpu_ready = cpu_now(h->pid);
  atomic_store(&h->sampling, 1);
  if (pthread_create(&h->sampler, NULL, host_sampler, h) != 0) die("pthread_create failed");
}

static void host_stop(host_t *h) {
  atomic_store(&h->sampling, 0);
  pthread_join(h->sampler, NULL);
  running_host = 0; /* from here on host_stop itself makes sure it ends */
  kill(h->pid, SIGTERM);
  for (double t0 = bench_now_s(); bench_now_s() - t0 < 40; bench_sleep_s(0.01)) {
    int st;
    if (waitpid(h->pid, &st, WNOHANG) == h->pid) {
      if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fprintf(stderr, "bench: %s ended with status %d; see %s\n", h->log, st, h->log);
      return;
    }
  }
  kill(h->pid, SIGKILL);
  waitpid(h->pid, NULL, 0);
  die("%s did not stop within 40 s", h->log);
}

/* The runner's schema: benchkit's or the reference worker's, the same shape. Static, never
 * freed. */
static const char *schema(const runner_t *r) { return r->config != NULL ? "benchkit" : "refworker"; }

static long items_count(const runner_t *r) {
  char q[128];
  snprintf(q, sizeof q, "SELECT count(*) FROM %s.items", schema(r));
  return (long)sql_double(q);
}

/* Gives up at once, with the reason, when the host exited or a message landed in _error
 * (the run can never complete): waiting for the deadline would only hide why. c: a
 * connection of the caller's. */
static void host_check(const host_t *h, amqp_connection_state_t c) {
  int st;
  if (waitpid(h->pid, &st, WNOHANG) == h->pid) {
    running_host = 0; /* reaped: its pid is no longer ours to kill */
    die("%s exited during the run (%s %d); see %s", h->log, WIFEXITED(st) ? "code" : "signal",
        WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st), h->log);
  }
  long failed = queue_count(c, QUEUE "_error");
  if (failed > 0) die("%ld messages in " QUEUE "_error during the run; see %s", failed, h->log);
}

/* Waits until the runner's items hold n rows. It watches the queue until it is empty first:
 * a count(*) every few ms would itself load the database. */
static void wait_items(const host_t *h, const runner_t *r, long n, double timeout_s) {
  double t0 = bench_now_s();
  amqp_connection_state_t c = amqp_open();
  for (; queue_count(c, QUEUE) > 0 && bench_now_s() - t0 < timeout_s; bench_sleep_s(0.02)) host_check(h, c);
  long got;
  while ((got = items_count(r)) < n) {
    if (bench_now_s() - t0 > timeout_s)
      die("only %ld of %ld messages handled after %.0f s; see %s", got, n, timeout_s, h->log);
    host_check(h, c);
    bench_sleep_s(0.02);
  }
  amqp_done(c);
}

/* Empties everything a run of r leaves behind; ctxd's inbox too unless keep_inbox (the
 * reference worker's tables exist once it ran). */
static void reset_db(const runner_t *r, int keep_inbox) {
  if (r->config == NULL)
    sql("DO $$ BEGIN IF to_regclass('refworker.items') IS NOT NULL THEN "
        "TRUNCATE refworker.items, refworker.inbox; END IF; END $$");
  else
    sql(keep_inbox ? "TRUNCATE benchkit.items, ctxd.outbox, ctxd.outbox_archive"
                   : "TRUNCATE benchkit.items, ctxd.outbox, ctxd.outbox_archive, ctxd.inbox");
}

/* What one end-to-end run measured. */
typedef struct {
  double rate;      /* msg/s */
  double rss_mib;   /* peak over the load phase */
  double per_tx;    /* messages per transaction */
  double cpu_us[3]; /* per message: the worker, PostgreSQL, the broker (-1: unknown) */
  char since[64];   /* the database's clock when the run started */
} run_t;

/* The inbox rows of r's endpoint written since run->since (a kept inbox holds older ones). */
static void inbox_where(const runner_t *r, const run_t *run, char *out, size_t len) {
  if (r->config != NULL)
    snprintf(out, len, "FROM ctxd.inbox WHERE endpoint = '" QUEUE "' AND received_at >= '%s'", run->since);
  else
    snprintf(out, len, "FROM refworker.inbox");
}

/* The end of a load phase: CPU per message since ready, RSS peak, messages per transaction. */
static void run_measure(const host_t *h, const runner_t *r, long n, run_t *run) {
  cpu_t c = cpu_now(h->pid);
  double *out = run->cpu_us;
  const double before[3] = {h->cpu_ready.worker, h->cpu_ready.pg, h->cpu_ready.broker},
               after[3] = {c.worker, c.pg, c.broker};
  for (int k = 0; k < 3; k++)
    out[k] = before[k] < 0 || after[k] < 0 ? -1 : (after[k] - before[k]) * 1e6 / (double)n;
  run->rss_mib = (double)atomic_load(&h->rss_peak_kb) / 1024;
  char where[256], q[512];
  inbox_where(r, run, where, sizeof where);
  /* a transaction's inbox rows share its now() */
  snprintf(q, sizeof q, "SELECT count(*)::float8 / greatest(count(DISTINCT received_at), 1) %s", where);
  run->per_tx = sql_double(q);
}

/* Honest counts, after the runner stopped: n inbox rows, the effect applied once per message
 * (sum(n) = count(*) = n), the queue empty, nothing in _error or _skipped. Stops the
 * benchmark at the first run that is wrong: its figures would flatter it. */
static void honest_counts(const runner_t *r, const run_t *run, int round, long n) {
  char where[256], q[512], got[128], bad[1024] = "";
  size_t len = 0;
  inbox_where(r, run, where, sizeof where);
  snprintf(q, sizeof q, "SELECT count(*) %s", where);
  long inbox = (long)sql_double(q);
  if (inbox != n) len += (size_t)snprintf(bad + len, sizeof bad - len, "; inbox rows %ld, not %ld", inbox, n);
  snprintf(q, sizeof q, "SELECT coalesce(sum(n), 0) || ' ' || count(*) FROM %s.items", schema(r));
  sql_text(q, got, sizeof got);
  long total = 0, rows = 0;
  if (sscanf(got, "%ld %ld", &total, &rows) != 2 || total != n || rows != n)
    len += (size_t)snprintf(bad + len, sizeof bad - len, "; effect total %ld over %ld rows, not %ld", total,
                            rows, n);
  amqp_connection_state_t c = amqp_open();
  const char *queues[] = {QUEUE, QUEUE "_error", QUEUE "_skipped"};
  for (int i = 0; i < 3; i++) {
    long left = queue_count(c, queues[i]);
    if (left != 0)
      len += (size_t)snprintf(bad + len, sizeof bad - len, "; %ld messages in %s", left, queues[i]);
  }
  amqp_done(c);
  if (len > 0) die("honest counts failed: %s, run %d%s", r->label, round + 1, bad);
}

/* 1 when the server records commit times (track_commit_timestamp = on; run.sh starts it so). */
static int commit_times(void) {
  static int on = -1;
  char v[16];
  if (on < 0) {
    sql_text("SHOW track_commit_timestamp", v, sizeof v);
    on = strcmp(v, "on") == 0;
  }
  return on;
}

/* Where a message's latency ends: its transaction's commit when the server records commit
 * times, else the handler's upsert, just before the commit. Static, never freed. */
static const char *latency_end(void) {
  return commit_times() ? "pg_xact_commit_timestamp(xmin)" : "handled_at";
}

/* How an end-to-end rate is measured, for the output. Static, never freed. */
static const char *e2e_window(void) {
  return commit_times() ? "N / (last commit - ready)"
                        : "(N - 1) / (last - first handler upsert; track_commit_timestamp is off)";
}

/* The rate of an end-to-end run of n messages that h handled, the raw consume's way: from
 * the start of consuming ("ready") to the last commit (the effect rows' newest commit
 * time). A server without commit times: between the first and the last handler upsert. */
static double e2e_rate(const runner_t *r, const host_t *h, long n) {
  char q[256];
  if (commit_times()) {
    snprintf(q, sizeof q, "SELECT extract(epoch FROM max(pg_xact_commit_timestamp(xmin))) FROM %s.items",
             schema(r));
    return (double)n / (sql_double(q) - (double)h->ready_ns / 1e9);
  }
  snprintf(q, sizeof q, "SELECT extract(epoch FROM max(handled_at) - min(handled_at)) FROM %s.items",
           schema(r));
  return (double)(n - 1) / sql_double(q);
}

/* A runner on a full queue of n messages: its rate (e2e_rate) and the rest of run_t. */
static run_t drain(const runner_t *r, long n, int keep_inbox, int round) {
  run_t run = {0};
  reset_db(r, keep_inbox);
  prefill(n);
  sql_text("SELECT clock_timestamp()", run.since, sizeof run.since);
  host_t h;
  host_start(&h, r);
  wait_items(&h, r, n, 600);
  run_measure(&h, r, n, &run);
  host_stop(&h);
  honest_counts(r, &run, round, n);
  run.rate = e2e_rate(r, &h, n);
  return run;
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

/* The per-round ratios of v to ref into out (0 where the reference was not measured). */
static void ratios_of(const double *v, const double *ref, int n, double *out) {
  for (int i = 0; i < n; i++) out[i] = ref[i] > 0 ? v[i] / ref[i] : 0;
}

/* The median ratio of v to ref over the rounds (what report() prints). */
static double ratio_median(const double *v, const double *ref, int n) {
  double r[MAX_RUNS];
  ratios_of(v, ref, n, r);
  return bench_median(r, n);
}

/* Records a figure (median of v, every run kept) and, with ref (the reference's runs of the
 * same rounds, or NULL), its ratio: the median of the per-round ratios, so that each ratio
 * compares runs that saw the same drift of the machine. Prints a line, returns the median.
 * holds: 1, 0, or -1 when it cannot be judged (the reference was not measured). */
static double report(const char *name, const char *unit, const double *v, int n, const double *ref,
                     const char *target, int holds) {
  double m = bench_median(v, n), ratios[MAX_RUNS], ratio = 0;
  json_t *runs = json_array(), *rr = json_array();
  if (ref != NULL) ratios_of(v, ref, n, ratios);
  for (int i = 0; i < n; i++) {
    json_array_append_new(runs, json_real(v[i]));
    if (ref != NULL) json_array_append_new(rr, json_real(ratios[i]));
  }
  json_t *o = json_pack("{s:s, s:s, s:f, s:o, s:s}", "name", name, "unit", unit, "median", m, "runs", runs,
                        "target", target);
  if (holds >= 0) json_object_set_new(o, "holds", json_boolean(holds));
  if (ref != NULL) {
    ratio = ratio_median(v, ref, n);
    json_object_set_new(o, "ratio", json_real(ratio));
    json_object_set_new(o, "ratio_runs", rr);
    json_object_set_new(o, "reference_median", json_real(bench_median(ref, n)));
  } else {
    json_decref(rr);
  }
  json_object_set_new(o, "loadavg_1m", json_real(loadavg()));
  json_array_append_new(results, o);
  printf("%-62s %10.1f %-6s", name, m, unit);
  if (ref != NULL) printf(" %4.0f%% of reference", 100 * ratio);
  printf("  [%s: %s]  load %.1f\n    runs:", target,
         target[0] == '-' ? "-"
         : holds < 0      ? "no reference measured"
         : holds          ? "holds"
                          : "MISSED",
         loadavg());
  for (int i = 0; i < n; i++) printf(" %.1f%s", v[i], i + 1 < n ? "," : "\n");
  fflush(stdout);
  return m;
}

/* The targets: each with whether it holds and by how much. */
static json_t *targets;

/* value against bound (at_least: value >= bound, else value < or <= bound); value < 0: not
 * measured. unit "%" gives ratios (0.83) as percent and the margin in points. */
static void target(const char *what, double value, double bound, int at_least, const char *unit) {
  json_t *o = json_pack("{s:s, s:f, s:f, s:s, s:s}", "target", what, "value", value, "bound", bound, "unit",
                        unit, "direction", at_least ? ">=" : "<=");
  if (value >= 0) {
    int pct = strcmp(unit, "%") == 0;
    double k = pct ? 100 : 1, margin = at_least ? value - bound : bound - value;
    int holds = margin >= 0;
    char m[96];
    snprintf(m, sizeof m, "%s %.1f %s", holds ? "by" : "missed by", k * (margin < 0 ? -margin : margin),
             pct ? "points" : unit);
    json_object_set_new(o, "holds", json_boolean(holds));
    json_object_set_new(o, "margin", json_string(m));
  }
  json_array_append_new(targets, o);
}

static void targets_print(FILE *f, int markdown) {
  size_t i;
  json_t *t;
  fprintf(f, markdown ? "\n| target | measured | holds | margin |\n|---|---:|---|---|\n"
                      : "\ntargets (medians; the latency over every run):\n");
  json_array_foreach(targets, i, t) {
    const char *unit = json_string_value(json_object_get(t, "unit"));
    double v = json_real_value(json_object_get(t, "value"));
    int pct = strcmp(unit, "%") == 0;
    char val[64];
    if (v < 0)
      snprintf(val, sizeof val, "not measured");
    else
      snprintf(val, sizeof val, "%.1f %s", pct ? 100 * v : v, unit);
    json_t *holds = json_object_get(t, "holds");
    const char *h = holds == NULL ? "n/a" : json_is_true(holds) ? "yes" : markdown ? "**no**" : "NO";
    const char *m = holds == NULL ? "" : json_string_value(json_object_get(t, "margin"));
    fprintf(f, markdown ? "| %s | %s | %s | %s |\n" : "  %-84s %14s  holds: %-3s %s\n",
            json_string_value(json_object_get(t, "target")), val, h, m);
  }
}

/* ---- the benchmarks --------------------------------------------------------------------- */

/* Minimal consumer: prefetch as ctxd's endpoint, a multiple-ack every batch. The rate is
 * N / (the last ack - the start of consuming), the window of the end-to-end runs. */
static double raw_consume(long n) {
  amqp_connection_state_t c = amqp_open();
  amqp_basic_qos(c, 1, 0, (uint16_t)O.prefetch, 0);
  amqp_check(amqp_get_rpc_reply(c), "basic.qos");
  double t0 = bench_now_s(), t = 0;
  amqp_basic_consume(c, 1, amqp_cstring_bytes(QUEUE), amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
  amqp_check(amqp_get_rpc_reply(c), "basic.consume");
  for (long got = 0; got < n;) {
    amqp_envelope_t e;
    amqp_maybe_release_buffers(c);
    amqp_check(amqp_consume_message(c, &e, NULL, 0), "consume");
    got++;
    if (got % O.batch == 0 || got == n) amqp_basic_ack(c, 1, e.delivery_tag, 1);
    amqp_destroy_envelope(&e);
    if (got == n) t = bench_now_s() - t0;
  }
  amqp_done(c);
  return (double)n / t;
}

/* The raw consume ceiling on a queue filled with n messages. */
static double ceiling_consume(long n) {
  prefill(n);
  return raw_consume(n);
}

static double confirmed_publish(long n) {
  purge(SINK);
  publisher_t p;
  publisher_open(&p, 1);
  double t = publish(&p, EVENT_TYPE, EVENT_TYPE, n, 0, 0, 1000);
  publisher_close(&p);
  return (double)n / t;
}

/* Waits until the sink queue holds n events: events per second from ready to the last one. */
static double sink_rate(const host_t *h, long n) {
  double t0 = bench_now_s();
  amqp_connection_state_t c = amqp_open();
  while (queue_count(c, SINK) < n) {
    if (bench_now_s() - t0 > 600) die("events missing after 600 s; see %s", h->log);
    host_check(h, c);
    bench_sleep_s(0.01);
  }
  double t = bench_now_s() - t0;
  amqp_done(c);
  return (double)n / t;
}

/* Honest counts of a relay, after its host stopped: exactly n events in the sink, none
 * missing and none published twice (sink_rate only waited for at least n). */
static void sink_exact(const char *label, int round, long n) {
  amqp_connection_state_t c = amqp_open();
  long got = queue_count(c, SINK);
  amqp_done(c);
  if (got != n)
    die("honest counts failed: %s, run %d; %ld events in " SINK ", not %ld", label, round + 1, got, n);
}

/* ctxd consuming a full queue, each handler publishing one event through the outbox; the
 * counts are checked as for any end-to-end run, and the events' too. */
static run_t relay(const runner_t *r, long n, int round) {
  run_t run = {0};
  reset_db(r, 0);
  purge(SINK);
  prefill(n);
  sql_text("SELECT clock_timestamp()", run.since, sizeof run.since);
  host_t h;
  host_start(&h, r);
  run.rate = sink_rate(&h, n);
  wait_items(&h, r, n, 60);
  run_measure(&h, r, n, &run);
  host_stop(&h);
  honest_counts(r, &run, round, n);
  sink_exact(r->label, round, n);
  return run;
}

/* The relay alone: n committed rows wait in the outbox (their writer's lease ended, as
 * after a crash), and a host publishes them with confirms and archives them. */
static double relay_backlog(const runner_t *r, long n, int round, double *rss_mib) {
  reset_db(r, 0);
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
  host_t h;
  host_start(&h, r);
  double rate = sink_rate(&h, n);
  *rss_mib = (double)atomic_load(&h.rss_peak_kb) / 1024;
  host_stop(&h);
  sink_exact("outbox relay", round, n);
  return rate;
}

/* Publishes at a fixed rate into a running ctxd; p50/p95/p99/max of publish -> committed
 * (latency_end()). */
static run_t latency(const runner_t *r, double out[4], int round) {
  run_t run = {0};
  reset_db(r, 0);
  purge(QUEUE);
  sql_text("SELECT clock_timestamp()", run.since, sizeof run.since);
  host_t h;
  host_start(&h, r);
  long n = (long)(O.rate * O.latency_s);
  publisher_t p;
  publisher_open(&p, 1);
  /* a window large enough never to throttle the offered rate */
  publish(&p, WORK_TYPE, WORK_TYPE, n, 0, O.rate, 4000);
  publisher_close(&p);
  wait_items(&h, r, n, 120);
  run_measure(&h, r, n, &run);
  host_stop(&h);
  honest_counts(r, &run, round, n);
  char buf[256], q[512];
  snprintf(q, sizeof q,
           "SELECT percentile_cont(ARRAY[0.5, 0.95, 0.99, 1]) WITHIN GROUP (ORDER BY "
           "(extract(epoch FROM %s) * 1e9 - sent_ns) / 1e6) FROM benchkit.items",
           latency_end());
  sql_text(q, buf, sizeof buf);
  if (sscanf(buf, "{%lf,%lf,%lf,%lf}", &out[0], &out[1], &out[2], &out[3]) != 4) die("latency: %s", buf);
  return run;
}

/* 1 when benchmark `name` is to run (--only). */
static int want(const char *name) {
  if (O.only == NULL) return 1;
  size_t n = strlen(name);
  for (const char *p = O.only; (p = strstr(p, name)) != NULL; p += n)
    if ((p == O.only || p[-1] == ',') && (p[n] == '\0' || p[n] == ',')) return 1;
  return 0;
}

/* 1 when benchkit accepts `batch: true` (ABI 1.3): ctxd check-config on that configuration. */
static int batch_supported(const char *config) {
  pid_t pid = fork();
  if (pid < 0) die("fork: %s", strerror(errno));
  if (pid == 0) {
    int fd = open("/dev/null", O_WRONLY);
    dup2(fd, 1);
    dup2(fd, 2);
    execl(O.ctxd, O.ctxd, "check-config", "--config", config, (char *)NULL);
    _exit(127);
  }
  int st;
  waitpid(pid, &st, 0);
  return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

/* The step that comes j-th in round `round` of m steps: round k starts at step k mod m, so
 * that no step always runs first (after the previous phase, a cold cache) or always
 * after the same one. */
static int rotated(int round, int j, int m) { return (round + j) % m; }

/* A run_t field over the rounds, for report(). */
enum { F_RSS, F_PER_TX, F_CPU_WORKER, F_CPU_PG, F_CPU_BROKER };

static void field(const run_t *runs, int n, int f, double *out) {
  for (int i = 0; i < n; i++)
    out[i] = f == F_RSS ? runs[i].rss_mib : f == F_PER_TX ? runs[i].per_tx : runs[i].cpu_us[f - F_CPU_WORKER];
}

/* The CPU table: per end-to-end phase (report_phase), the medians of µs per message of the
 * worker, PostgreSQL and the broker; printed and written at the end. */
static struct {
  char phase[96];
  double us[3];
} cpu_rows[32];
static int cpu_rows_n;

static void cpu_table(FILE *f, int markdown) {
  fprintf(f,
          markdown ? "\n| CPU per message (us, medians) | worker | PostgreSQL | broker | sum |\n"
                     "|---|---:|---:|---:|---:|\n"
                   : "\nCPU per message (us, medians over each drain / N: the worker's CPU clock, "
                     "utime+stime from /proc for the others; -1: not found):\n  %-50s %10s %10s %10s %10s\n",
          "phase", "worker", "PostgreSQL", "broker", "sum");
  for (int p = 0; p < cpu_rows_n; p++) {
    const double *m = cpu_rows[p].us;
    double sum = (m[0] > 0 ? m[0] : 0) + (m[1] > 0 ? m[1] : 0) + (m[2] > 0 ? m[2] : 0);
    fprintf(f, markdown ? "| %s | %.1f | %.1f | %.1f | %.1f |\n" : "  %-50s %10.1f %10.1f %10.1f %10.1f\n",
            cpu_rows[p].phase, m[0], m[1], m[2], sum);
  }
}

/* The lines every end-to-end phase prints besides its rate: RSS peak (ctxd), messages per
 * transaction, CPU per message of the worker, PostgreSQL and the broker. */
static void report_phase(const char *phase, const runner_t *r, const run_t *runs, int n) {
  double v[MAX_RUNS];
  char name[160];
  const char *who = r->config != NULL ? "ctxd" : "refworker";
  if (r->config != NULL) {
    field(runs, n, F_RSS, v);
    snprintf(name, sizeof name, "  RSS peak (%s)", phase);
    report(name, "MiB", v, n, NULL, "< 20 MiB", bench_median(v, n) < 20);
  }
  field(runs, n, F_PER_TX, v);
  snprintf(name, sizeof name, "  messages per transaction (%s)", phase);
  report(name, "msg", v, n, NULL, "-", 0);
  const char *whom[] = {who, "PostgreSQL", "broker"};
  int row = cpu_rows_n < (int)(sizeof cpu_rows / sizeof cpu_rows[0]) ? cpu_rows_n++ : -1;
  if (row >= 0) snprintf(cpu_rows[row].phase, sizeof cpu_rows[row].phase, "%s", phase);
  for (int k = 0; k < 3; k++) {
    field(runs, n, F_CPU_WORKER + k, v);
    int found = 1;
    for (int i = 0; i < n; i++) found = found && v[i] >= 0;
    if (row >= 0) cpu_rows[row].us[k] = found ? bench_median(v, n) : -1;
    if (!found) continue; /* not found in some run: -1 in the table, no median of a mix */
    snprintf(name, sizeof name, "  CPU %s per message (%s)", whom[k], phase);
    report(name, "us", v, n, NULL, "-", 0);
  }
}

static void usage(void) {
  fprintf(stderr, "usage: bench --amqp URL --pg URL --ctxd PATH --plugin-dir DIR --plugins FILE --out DIR\n"
                  "             [--messages N] [--runs R] [--rate N] [--latency-s S] [--inbox-rows N]\n"
                  "             [--prefetch N] [--workers N] [--batch N] [--refworker PATH] [--no-batch]\n"
                  "             [--only consume,e2e,batch,ref,batch1,outbox,latency,inbox,quorum]\n");
  exit(2);
}

static void parse(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    const char *k = argv[i];
    if (!strcmp(k, "--no-batch")) {
      O.no_batch = 1;
      continue;
    }
    if (i + 1 >= argc) usage();
    const char *v = argv[++i];
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
    else if (!strcmp(k, "--refworker"))
      O.refworker = v;
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
    else if (!strcmp(k, "--only"))
      O.only = v;
    else
      usage();
  }
  if (!O.amqp || !O.pg || !O.ctxd || !O.plugin_dir || !O.plugins || !O.out || O.runs < 1 ||
      O.runs > MAX_RUNS || O.messages < 100 || O.rate <= 0 || O.latency_s < 1 || O.batch < 1)
    usage();
}

/* The rates of runs. */
static void rates(const run_t *runs, int n, double *out) {
  for (int i = 0; i < n; i++) out[i] = runs[i].rate;
}

/* An end-to-end phase's rate against its reference (NULL: none) with a ratio target
 * (0: none), then its phase lines. Returns the median ratio (0 without a reference). */
static double report_e2e(const char *name, const runner_t *r, const run_t *runs, int n, const double *ref,
                         double at_least) {
  double v[MAX_RUNS];
  char tg[32] = "-";
  rates(runs, n, v);
  if (at_least > 0) snprintf(tg, sizeof tg, ">= %.0f%%", 100 * at_least);
  double ratio = ref != NULL ? ratio_median(v, ref, n) : 0;
  report(name, "msg/s", v, n, ref, tg, at_least <= 0 ? 0 : ref == NULL ? -1 : ratio >= at_least);
  report_phase(name, r, runs, n);
  return ratio;
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
  targets = json_array();
  declare_topology("classic");
  const int R = O.runs;
  const long N = O.messages, N1 = N / 5 > 100 ? N / 5 : 100;
  double v[MAX_RUNS], w[MAX_RUNS], lat[MAX_RUNS][4];

  runner_t per = {"per-message", write_config("per-message", O.pg, O.batch, 0, 0, "classic"), NULL},
           bat = {"batch", write_config("batch", O.pg, O.batch, 0, 1, "classic"), NULL},
           single = {"batch1", write_config("batch1", O.pg, 1, 0, 0, "classic"), NULL},
           outp = {"outbox", write_config("outbox", O.pg, O.batch, 1, 0, "classic"), NULL},
           outb = {"outbox-batch", write_config("outbox-batch", O.pg, O.batch, 1, 1, "classic"), NULL},
           qper = {"quorum", write_config("quorum", O.pg, O.batch, 0, 0, "quorum"), NULL},
           qbat = {"quorum-batch", write_config("quorum-batch", O.pg, O.batch, 0, 1, "quorum"), NULL},
           refp = {"ref-per-message", NULL, "per-message"}, refs = {"ref-set", NULL, "set"};
  if (!O.no_batch && !batch_supported(bat.config)) {
    printf("(benchkit has no batch mode: the batch handler's runs are left out)\n");
    O.no_batch = 1;
  }
  const int B = !O.no_batch, REF = O.refworker != NULL;
  printf("ctxd benchmarks: %ld messages per throughput run (%ld at batch size 1), %d alternating rounds,\n"
         "medians; ratios are medians of the per-round ratios. endpoint: prefetch %ld, workers %ld,\n"
         "batch_size %ld; batch handler runs: %s; reference worker: %s\n"
         "rates: raw consume N / (last ack - consume start); end to end %s\n\n",
         N, N1, R, O.prefetch, O.workers, O.batch, B ? "yes" : "no", REF ? "yes" : "no (no --refworker)",
         e2e_window());

  /* start-up first: the first start also applies every migration (benchkit's schema) */
  purge(QUEUE);
  double first_ready = 0;
  for (int i = 0; i < R + 1; i++) {
    host_t h;
    host_start(&h, &per);
    if (i == 0) {
      first_ready = h.ready_s * 1000;
    } else {
      v[i - 1] = h.ready_s * 1000;
      bench_sleep_s(1);
      w[i - 1] = (double)ctxt_proc_status_kb(h.pid, "VmRSS:") / 1024;
    }
    host_stop(&h);
    /* the host declared them: from here on, anything in _error was lost by this run */
    if (i == 0) {
      purge(QUEUE);
      purge(QUEUE "_error");
    }
  }
  report("start: first start (+ migrations if new)", "ms", &first_ready, 1, NULL, "-", 0);
  double ready = bench_median(v, R);
  report("start: exec -> ready", "ms", v, R, NULL, "< 150 ms", ready < 150);
  double idle = bench_median(w, R);
  report("memory: RSS idle", "MiB", w, R, NULL, "< 20 MiB", idle < 20);

  /* Rounds: the ceiling, ctxd per message, ctxd batch, the reference worker per message and
   * set-based, one after the other in each round (rotated). The broker's speed drifts (its
   * garbage collector, the machine), and the figures a ratio compares should see the same
   * drift. */
  const int do_raw = want("consume"), do_per = want("e2e"), do_bat = B && want("batch"),
            do_ref = REF && want("ref");
  double raw[MAX_RUNS] = {0}, dat_classic[5] = {0};
  run_t rp[MAX_RUNS], rb[MAX_RUNS], fp[MAX_RUNS], fs[MAX_RUNS];
  enum { S_RAW, S_PER, S_BAT, S_REFP, S_REFS };
  int steps[5], m = 0;
  if (do_raw) steps[m++] = S_RAW;
  if (do_per) steps[m++] = S_PER;
  if (do_bat) steps[m++] = S_BAT;
  if (do_ref) {
    steps[m++] = S_REFP;
    steps[m++] = S_REFS;
  }
  for (int i = 0; i < R; i++)
    for (int j = 0; j < m; j++) {
      switch (steps[rotated(i, j, m)]) {
      case S_RAW: raw[i] = ceiling_consume(N); break;
      case S_PER: rp[i] = drain(&per, N, 0, i); break;
      case S_BAT: rb[i] = drain(&bat, N, 0, i); break;
      case S_REFP: fp[i] = drain(&refp, N, 0, i); break;
      default: fs[i] = drain(&refs, N, 0, i); break;
      }
    }
  const double *ceil = do_raw ? raw : NULL;
  double d[MAX_RUNS], e[MAX_RUNS];
  if (do_raw) dat_classic[0] = report("ceiling: raw consume + ack", "msg/s", raw, R, NULL, "-", 0);
  if (do_per) {
    double r = report_e2e("ctxd e2e, per-message handler", &per, rp, R, ceil, 0.8);
    target("e2e per-message handler >= 80% of raw consume", do_raw ? r : -1, 0.8, 1, "%");
    field(rp, R, F_CPU_WORKER, d);
    target("ctxd CPU per message <= 6 us (per-message handler)", bench_median(d, R), 6, 0, "us");
    rates(rp, R, d);
    dat_classic[1] = bench_median(d, R);
  }
  if (do_bat) {
    double r = report_e2e("ctxd e2e, batch handler", &bat, rb, R, ceil, 0.9);
    target("e2e batch handler >= 90% of raw consume", do_raw ? r : -1, 0.9, 1, "%");
    field(rb, R, F_CPU_WORKER, d);
    target("ctxd CPU per message <= 6 us (batch handler)", bench_median(d, R), 6, 0, "us");
    rates(rb, R, d);
    dat_classic[2] = bench_median(d, R);
  }
  if (do_ref) {
    report_e2e("reference worker, per message", &refp, fp, R, ceil, 0);
    report_e2e("reference worker, set-based", &refs, fs, R, ceil, 0);
    rates(fp, R, d);
    dat_classic[3] = bench_median(d, R);
    rates(fs, R, e);
    dat_classic[4] = bench_median(e, R);
    if (do_per) {
      rates(rp, R, v);
      double r = ratio_median(v, d, R);
      report("ctxd per-message vs reference per message", "msg/s", v, R, d, ">= 95%", r >= 0.95);
      target("e2e per-message handler >= 95% of the reference worker (per message)", r, 0.95, 1, "%");
    }
    if (do_bat) {
      rates(rb, R, v);
      double r = ratio_median(v, e, R);
      report("ctxd batch vs reference set-based", "msg/s", v, R, e, ">= 95%", r >= 0.95);
      target("e2e batch handler >= 95% of the reference worker (set-based)", r, 0.95, 1, "%");
    }
  }
  if (want("batch1")) {
    run_t b1[MAX_RUNS];
    for (int i = 0; i < R; i++) b1[i] = drain(&single, N1, 0, i);
    report_e2e("ctxd e2e, per-message handler, batch size 1", &single, b1, R, NULL, 0);
  }

  /* Outbox: the confirmed-publish ceiling, the relay alone, and end to end with one event
   * per message, alternating. */
  double dat_outbox[3] = {0};
  if (want("outbox")) {
    double pub[MAX_RUNS], backlog[MAX_RUNS], rss[MAX_RUNS];
    run_t op[MAX_RUNS], ob[MAX_RUNS];
    for (int i = 0; i < R; i++)
      for (int j = 0, mo = B ? 4 : 3; j < mo; j++) {
        switch (rotated(i, j, mo)) {
        case 0: pub[i] = confirmed_publish(N); break;
        case 1: backlog[i] = relay_backlog(&per, N, i, &rss[i]); break;
        case 2: op[i] = relay(&outp, N, i); break;
        default: ob[i] = relay(&outb, N, i); break;
        }
      }
    dat_outbox[0] = report("ceiling: confirmed publish", "msg/s", pub, R, NULL, "-", 0);
    double rel = ratio_median(backlog, pub, R);
    report("outbox relay (committed rows -> confirmed)", "msg/s", backlog, R, pub, ">= 80%", rel >= 0.8);
    report("  RSS peak (outbox relay)", "MiB", rss, R, NULL, "< 20 MiB", bench_median(rss, R) < 20);
    double r = report_e2e("ctxd e2e with an outbox event, per-message", &outp, op, R, pub, 0.8);
    target("e2e with one outbox event per message >= 80% of confirmed publish (per-message)", r, 0.8, 1, "%");
    rates(op, R, d);
    dat_outbox[1] = bench_median(d, R);
    if (B) {
      r = report_e2e("ctxd e2e with an outbox event, batch", &outb, ob, R, pub, 0.8);
      target("e2e with one outbox event per message >= 80% of confirmed publish (batch)", r, 0.8, 1, "%");
      rates(ob, R, d);
      dat_outbox[2] = bench_median(d, R);
    }
  }

  if (want("latency")) {
    run_t lr[MAX_RUNS];
    for (int i = 0; i < R; i++) lr[i] = latency(&per, lat[i], i);
    const char *pname[] = {"p50", "p95", "p99", "max"};
    const char *until = strcmp(latency_end(), "handled_at") == 0 ? "handler" : "commit";
    double worst = 0;
    for (int i = 0; i < R; i++)
      if (lat[i][2] > worst) worst = lat[i][2];
    for (int k = 0; k < 4; k++) {
      for (int i = 0; i < R; i++) v[i] = lat[i][k];
      char name[96];
      snprintf(name, sizeof name, "latency %s at %.0f msg/s (publish -> %s)", pname[k], O.rate, until);
      report(name, "ms", v, R, NULL, k == 2 ? "< 10 ms in every run" : "-", k == 2 && worst < 10);
    }
    char name[96];
    snprintf(name, sizeof name, "latency at %.0f msg/s", O.rate);
    report_phase(name, &per, lr, R);
    snprintf(name, sizeof name, "p99 publish -> %s < 10 ms at %.0f msg/s in every run (worst run)", until,
             O.rate);
    target(name, worst, 10, 0, "ms");
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
    runner_t full = {"inbox-full", write_config("inbox-full", full_url, O.batch, 0, 0, "classic"), NULL};
    PGconn *full_db = PQconnectdb(full_url);
    if (PQstatus(full_db) != CONNECTION_OK) die("database: %s", PQerrorMessage(full_db));
    PQsetNoticeProcessor(full_db, quiet, NULL);
    host_t h;
    host_start(&h, &full); /* its migrations create the tables */
    host_stop(&h);
    pg = full_db;
    double t0 = bench_now_s();
    snprintf(q, sizeof q,
             "INSERT INTO ctxd.inbox (endpoint, message_id) SELECT 'bench-history', gen_random_uuid() "
             "FROM generate_series(1, %ld)",
             O.inbox_rows);
    sql(q);
    sql("VACUUM ANALYZE ctxd.inbox");
    /* the fill's dirty pages are written now, not by the checkpointer during the runs */
    sql("CHECKPOINT");
    printf("(inbox filled with %ld rows in %.1f s)\n", O.inbox_rows, bench_now_s() - t0);
    run_t re[MAX_RUNS], rf[MAX_RUNS];
    for (int i = 0; i < R; i++)
      for (int j = 0; j < 2; j++)
        if (rotated(i, j, 2) == 0) {
          pg = empty_db;
          re[i] = drain(&per, N, 0, i);
        } else {
          pg = full_db;
          rf[i] = drain(&full, N, 1, i);
        }
    pg = empty_db;
    PQfinish(full_db);
    sql("DROP DATABASE " FULL_DB);
    rates(re, R, w);
    rates(rf, R, v);
    report("ctxd e2e, empty inbox (alternating with the next)", "msg/s", w, R, NULL, "-", 0);
    report_phase("ctxd e2e, empty inbox", &per, re, R);
    snprintf(q, sizeof q, "ctxd e2e with %ld rows in the inbox", O.inbox_rows);
    report(q, "msg/s", v, R, w, ">= 90% of empty", ratio_median(v, w, R) >= 0.9);
    report_phase(q, &full, rf, R);
  }

  /* A single-node quorum queue: the endpoint's queues deleted, the first start declares them
   * as quorum queues; then the ceiling and ctxd alternate as above. Last, since the
   * reference worker and the phases before use the classic queue. */
  double dat_quorum[3] = {0};
  if (want("quorum")) {
    declare_topology("quorum");
    host_t h;
    host_start(&h, &qper);
    host_stop(&h);
    run_t qp[MAX_RUNS], qb[MAX_RUNS];
    double qraw[MAX_RUNS];
    for (int i = 0; i < R; i++)
      for (int j = 0, mq = B ? 3 : 2; j < mq; j++) {
        switch (rotated(i, j, mq)) {
        case 0: qraw[i] = ceiling_consume(N); break;
        case 1: qp[i] = drain(&qper, N, 0, i); break;
        default: qb[i] = drain(&qbat, N, 0, i); break;
        }
      }
    dat_quorum[0] = report("quorum queue: ceiling raw consume + ack", "msg/s", qraw, R, NULL, "-", 0);
    report_e2e("quorum queue: ctxd e2e, per-message handler", &qper, qp, R, qraw, 0);
    rates(qp, R, d);
    dat_quorum[1] = bench_median(d, R);
    target("quorum queue e2e >= 50,000 msg/s (per-message handler)", dat_quorum[1], 50000, 1, "msg/s");
    if (B) {
      report_e2e("quorum queue: ctxd e2e, batch handler", &qbat, qb, R, qraw, 0);
      rates(qb, R, d);
      dat_quorum[2] = bench_median(d, R);
      target("quorum queue e2e >= 50,000 msg/s (batch handler)", dat_quorum[2], 50000, 1, "msg/s");
    }
  }

  /* the size of what was actually published, not what the envelope was meant to be */
  double mean_body = sent_bodies.bodies > 0 ? (double)sent_bodies.bytes / (double)sent_bodies.bodies : 0;
  report("message body size (measured: mean of every work message published)", "bytes", &mean_body, 1, NULL,
         "-", 0);
  printf("    %lld bodies, %d to %d bytes\n", sent_bodies.bodies, sent_bodies.bodies ? sent_bodies.min : 0,
         sent_bodies.max);

  /* the plot's data: per setup, the ceiling and each figure (- when not measured) */
  snprintf(q, sizeof q, "%s/throughput.dat", O.out);
  FILE *dat = fopen(q, "w");
  if (dat == NULL) die("cannot write %s", q);
  fprintf(dat, "# setup ceiling ctxd-per-message ctxd-batch reference-per-message reference-set (msg/s)\n");
  const char *setups[] = {"classic queue", "quorum queue", "one outbox event per message"};
  const double *rows[] = {dat_classic, dat_quorum, dat_outbox};
  const int cols[] = {5, 3, 3};
  for (int s = 0; s < 3; s++) {
    fprintf(dat, "\"%s\"", setups[s]);
    for (int c = 0; c < 5; c++)
      if (c < cols[s] && rows[s][c] > 0)
        fprintf(dat, " %.0f", rows[s][c]);
      else
        fprintf(dat, " -");
    fprintf(dat, "\n");
  }
  fclose(dat);

  snprintf(q, sizeof q, "%s/results.md", O.out);
  FILE *md = fopen(q, "w");
  if (md == NULL) die("cannot write %s", q);
  fprintf(md, "Rates: raw consume N / (last ack - consume start); end to end %s.\n\n", e2e_window());
  fprintf(md, "| benchmark | median | unit | ratio to reference | runs | target | holds | load (1 min) |\n"
              "|---|---:|---|---:|---|---|---|---:|\n");
  size_t i;
  json_t *r;
  json_array_foreach(results, i, r) {
    json_t *runs = json_object_get(r, "runs"), *x;
    size_t j;
    char all[512] = "";
    json_array_foreach(runs, j, x) {
      size_t l = strlen(all);
      snprintf(all + l, sizeof all - l, "%s%.1f", j ? ", " : "", json_real_value(x));
    }
    const char *tg = json_string_value(json_object_get(r, "target"));
    double ratio = json_real_value(json_object_get(r, "ratio"));
    char rs[32] = "";
    if (json_object_get(r, "ratio") != NULL) snprintf(rs, sizeof rs, "%.0f%%", 100 * ratio);
    fprintf(md, "| %s | %.1f | %s | %s | %s | %s | %s | %.1f |\n",
            json_string_value(json_object_get(r, "name")), json_real_value(json_object_get(r, "median")),
            json_string_value(json_object_get(r, "unit")), rs, all, tg,
            strcmp(tg, "-") == 0                        ? ""
            : !json_object_get(r, "holds")              ? "n/a"
            : json_is_true(json_object_get(r, "holds")) ? "yes"
                                                        : "**no**",
            json_real_value(json_object_get(r, "loadavg_1m")));
  }
  cpu_table(md, 1);
  targets_print(md, 1);
  fclose(md);
  cpu_table(stdout, 0);
  targets_print(stdout, 0);

  json_t *doc =
      json_pack("{s:I, s:I, s:i, s:f, s:i, s:I, s:f, s:{s:I, s:I, s:I}, s:b, s:b, s:s, s:o, s:o}", "messages",
                (json_int_t)N, "messages_batch1", (json_int_t)N1, "runs", R, "rate", O.rate, "latency_s",
                O.latency_s, "inbox_rows", (json_int_t)O.inbox_rows, "message_bytes", mean_body, "endpoint",
                "prefetch", (json_int_t)O.prefetch, "workers", (json_int_t)O.workers, "batch_size",
                (json_int_t)O.batch, "batch_handler", B, "reference_worker", REF, "e2e_window", e2e_window(),
                "results", results, "targets", targets);
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
