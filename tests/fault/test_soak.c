/* Soak: a host under a steady stream of messages (each handler publishes an event that a
 * second endpoint applies) while faults come on a schedule, round and round: the host
 * killed (SIGKILL) and started again, the broker restarted, the broker blocked by its
 * memory alarm for a while, PostgreSQL restarted, and, through the test stack's links, a
 * slow, a lossy and a cut network; and once, near the end, a database failover (the
 * primary killed, its synchronous replica promoted; the host's URL names both). Every few
 * seconds a sample of the host's resident set
 * (VmRSS) and open files (/proc/PID/fd) with the counts (published, effects, events, queue
 * depths, outbox rows) is printed and written to a CSV file.
 *
 * Afterwards: every message took effect once (effects = distinct = published), every
 * event was applied once downstream, nothing in _error, the outbox empty; and the host's
 * RSS and open files stayed flat: over each host lifetime long enough to judge, the
 * least-squares slope of the samples after a warm-up stays under a bound (see
 * docs/operations.md, "Soak run", for the bounds and why).
 *
 * The suite runs a short form (about 130 s); tests/fault/soak.sh runs 30 minutes at 3,000
 * msg/s on an optimized build and plots the samples. Knobs (environment):
 *   CTXD_SOAK_SECONDS        how long the stream runs (120)
 *   CTXD_SOAK_RATE           messages per second (200)
 *   CTXD_SOAK_SAMPLE_S       seconds between samples (2)
 *   CTXD_SOAK_FAULT_EVERY_S  seconds between faults (as many as make one cycle of the run)
 *   CTXD_SOAK_HOLD_S         how long a held fault lasts: blocked, slow, lossy, cut (4)
 *   CTXD_SOAK_FAULTS         the cycle, comma-separated: kill, broker, blocked, db, slow,
 *                            lossy, cut (kill, then two rounds of the others)
 *   CTXD_SOAK_LINK           1: the host reaches the servers through the stack's links and
 *                            the link faults are in the cycle (they need root: without,
 *                            as 0); 0: direct, without them (1)
 *   CTXD_SOAK_FAILOVER       1: the database has a synchronous streaming replica and fails
 *                            over to it once, CTXD_SOAK_FAILOVER_AT_S into the run (a
 *                            fault interval before the end), after the cycle's faults (a
 *                            restart of the old primary then would split the database in
 *                            two); 0: no replica (1)
 *   CTXD_SOAK_WARMUP_S       how long after its start and after each fault's first time a
 *                            lifetime's samples are not judged (10; see judged_from)
 *   CTXD_SOAK_MIN_SPAN_S     a lifetime is judged when its judged samples span this (30)
 *   CTXD_SOAK_RSS_SLOPE_KIB  bound of the RSS slope, KiB per minute (1024; 32768 under
 *                            AddressSanitizer: see RSS_SLOPE_KIB)
 *   CTXD_SOAK_FDS_RISE       bound of the open files' rise over a judged window: its
 *                            fitted line rises by less than this many files (2; a host
 *                            that kept one a fault would rise by one a fault, 3 to 6)
 *   CTXD_SOAK_PREFETCH       both endpoints' prefetch (64; batches of half, at most 64)
 *   CTXD_SOAK_DRAIN_S        how long the backlog may take to drain at the end (300)
 *   CTXD_SOAK_CSV            the CSV file (<build dir>/soak.csv) */
#include "hostfixture.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- clocks ---------------------------------------------------------------------------- */

static struct timespec at_ms(int64_t ms) {
  return (struct timespec){(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
}

/* Sleeps until the monotonic clock reads ms (absolute: pacing keeps its rate however long
 * each step took). */
static void sleep_until_ms(int64_t ms) {
  struct timespec ts = at_ms(ms);
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) != 0) {
  }
}

/* ---- the publisher ----------------------------------------------------------------------- */

/* A tick's messages go out together and are confirmed before the next tick. */
#define TICK_MS 20
#define MAX_BATCH 2048
/* a batch unconfirmed this long: the connection is taken for dead (a blocked broker
 * confirms once unblocked, well within it) */
#define CONFIRM_WAIT_MS 60000
/* a batch that cannot be published this long (reconnects included) ends the publisher */
#define GIVE_UP_MS 300000

/* publisher_t.stop: 1 ends the stream after the batch under way is confirmed; ABANDON
 * (the test failed) ends it at once */
#define ABANDON 2

/* A thread with a connection of its own that publishes message ids 1, 2, ... at `rate` a
 * second to the world's message type, each confirmed by the broker. A batch whose
 * confirms do not all come is published again (on a new connection when the old one
 * broke): a copy the broker already had is a duplicate the host's inbox drops. A tick
 * that starts more than a second late (the broker down or blocked) does not make up what
 * it missed: the schedule starts again from there, so the offered load stays at `rate`. */
typedef struct {
  const char *url, *exchange;
  double rate;
  pthread_t thread;
  atomic_int stop, failed;
  atomic_long confirmed; /* every id up to it is confirmed */
  long reconnects, resent, restarts;
  char error[256];
} publisher_t;

/* The connection's delivery tags count from 1. */
typedef struct {
  amqp_connection_state_t c;
  uint64_t tag; /* the last tag used */
} pubconn_t;

static void pubconn_drop(pubconn_t *pc) {
  if (pc->c != NULL) amqp_destroy_connection(pc->c);
  pc->c = NULL;
  pc->tag = 0;
}

/* Publishes ids first+1 .. first+k and waits for their confirms: 0 when every one came. */
static int publish_batch(pubconn_t *pc, const publisher_t *p, long first, int k) {
  char body[512], id[37];
  amqp_basic_properties_t props = {0};
  props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG;
  props.content_type = amqp_cstring_bytes("application/vnd.masstransit+json");
  props.delivery_mode = AMQP_DELIVERY_PERSISTENT;
  uint64_t base = pc->tag;
  for (int i = 0; i < k; i++) {
    ctxt_make_id(id, (int)(first + i + 1));
    int len = ctxt_envelope(body, sizeof body, p->exchange, id, "{\"action\":\"publish\"}");
    if (amqp_basic_publish(pc->c, 1, amqp_cstring_bytes(p->exchange), amqp_empty_bytes, 0, 0, &props,
                           (amqp_bytes_t){(size_t)len, body}) != AMQP_STATUS_OK)
      return -1;
    pc->tag++;
  }
  unsigned char acked[MAX_BATCH] = {0};
  int left = k;
  int64_t end = ctxt_now_ms() + CONFIRM_WAIT_MS;
  while (left > 0) {
    struct timeval tv = {1, 0};
    amqp_frame_t f;
    int st = amqp_simple_wait_frame_noblock(pc->c, &f, &tv);
    if (st == AMQP_STATUS_TIMEOUT && ctxt_now_ms() < end) continue;
    if (st != AMQP_STATUS_OK) return -1;
    if (f.frame_type != AMQP_FRAME_METHOD) continue;
    amqp_method_number_t m = f.payload.method.id;
    if (m == AMQP_BASIC_NACK_METHOD || m == AMQP_CHANNEL_CLOSE_METHOD || m == AMQP_CONNECTION_CLOSE_METHOD)
      return -1;
    if (m == AMQP_BASIC_ACK_METHOD) {
      const amqp_basic_ack_t *a = f.payload.method.decoded;
      for (uint64_t t = a->multiple ? base + 1 : a->delivery_tag; t <= a->delivery_tag; t++)
        if (t > base && t <= base + (uint64_t)k && !acked[t - base - 1]) {
          acked[t - base - 1] = 1;
          left--;
        }
    }
    /* connection.blocked / unblocked: the confirms simply come later */
    amqp_maybe_release_buffers(pc->c);
  }
  return 0;
}

static void *publish_loop(void *arg) {
  publisher_t *p = arg;
  pubconn_t pc = {0};
  long sent = 0, anchor_sent = 0, tick = 0;
  int64_t anchor = ctxt_now_ms();
  while (!atomic_load(&p->stop)) {
    int64_t due_at = anchor + ++tick * TICK_MS;
    sleep_until_ms(due_at);
    long due = anchor_sent + (long)(p->rate * (double)(tick * TICK_MS) / 1000.0) - sent;
    int k = (int)(due < MAX_BATCH ? due : MAX_BATCH);
    int64_t give_up = ctxt_now_ms() + GIVE_UP_MS;
    for (int tries = 0; k > 0; tries++) {
      if (ctxt_now_ms() >= give_up || atomic_load(&p->stop) == ABANDON) {
        pubconn_drop(&pc);
        break;
      }
      if (pc.c == NULL && (pc.c = ctxt_amqp_try_connect(p->url)) == NULL) {
        /* the broker is down: try again shortly; the deadline bounds it */
        usleep(200000);
        continue;
      }
      if (publish_batch(&pc, p, sent, k) == 0) break;
      pubconn_drop(&pc);
      p->reconnects++;
      if (tries == 0) p->resent++;
    }
    if (k > 0 && pc.c == NULL) {
      snprintf(p->error, sizeof p->error, "ids %ld..%ld not confirmed within %d s%s", sent + 1, sent + k,
               GIVE_UP_MS / 1000, atomic_load(&p->stop) == ABANDON ? " (abandoned)" : "");
      atomic_store(&p->failed, 1);
      break;
    }
    sent += k;
    atomic_store(&p->confirmed, sent);
    if (ctxt_now_ms() - due_at > 1000) {
      anchor = ctxt_now_ms();
      anchor_sent = sent;
      tick = 0;
      p->restarts++;
    }
  }
  pubconn_drop(&pc);
  return NULL;
}

/* ---- the soak's state ---------------------------------------------------------------------- */

#define MAX_LIVES 256
#define MAX_FAULTS 4096

typedef struct {
  double t; /* seconds since the stream started */
  int life; /* the host lifetime it belongs to (-1: no host at that moment) */
  long rss_kib, fds;
  long published, effects, events, queue, echo_queue, outbox; /* -1: not read */
  char fault[16];
} sample_t;

typedef struct {
  ctxt_world_t *w;
  char echo[96];
  char asan[64]; /* the host's ASAN_OPTIONS */
  int links;
  int64_t t0; /* the stream's start, ms */
  publisher_t pub;
  int pub_running;
  /* the host now: set by the main thread, read by the sampler */
  atomic_int life, host_pid;
  double life_start[MAX_LIVES]; /* seconds, when each lifetime's host was ready */
  _Atomic(const char *) fault;  /* the fault in force, "" for none */
  /* the faults so far: which, in which lifetime, when it was over (seconds) */
  struct {
    const struct fault *f;
    int life;
    double end;
  } done[MAX_FAULTS];
  size_t ndone;
  int blocked;    /* the watermark is lowered: the teardown raises it */
  int link_fault; /* a link fault is in force: the teardown heals it */
  int replica;    /* the stack's replica runs (or was promoted): the teardown puts it away */
  /* the sampler */
  pthread_t sampler;
  int sampler_running;
  atomic_int sampler_stop;
  atomic_long last_effects, last_events;
  long sample_ms;
  FILE *csv;
  sample_t *samples;
  size_t nsamples, cap;
} soak_t;

static double since_start(const soak_t *s) { return (double)(ctxt_now_ms() - s->t0) / 1000.0; }

/* ---- the sampler --------------------------------------------------------------------------- */

/* The effects counted so far: rows up to `upto` (by testkit.effects.n) are counted once
 * for good, so each sample reads only the rows of the last two intervals. Rows are
 * numbered when inserted and committed up to a batch later: a row becomes part of the
 * tally one sample after it was the newest seen, when every row numbered before it has
 * committed (or rolled back) unless a transaction stayed open a whole interval. The
 * samples' counts are for the table; the final counts are taken from the whole table. */
typedef struct {
  long upto, newest, publish, echoed;
} tally_t;

/* One connection of the sampler's own, made again after a fault broke it. */
static PGconn *sampler_pg(PGconn **pg, const char *url) {
  if (*pg != NULL && PQstatus(*pg) != CONNECTION_OK) {
    PQfinish(*pg);
    *pg = NULL;
  }
  if (*pg == NULL) {
    char conninfo[512];
    /* a server that is down answers at once; one that does not answer must not hold the
     * sampler past its interval */
    snprintf(conninfo, sizeof conninfo, "%s%sconnect_timeout=2", url, strchr(url, '?') ? "&" : "?");
    *pg = PQconnectdb(conninfo);
  }
  return PQstatus(*pg) == CONNECTION_OK ? *pg : NULL;
}

static void sample_db(PGconn **pg, const char *url, tally_t *tally, sample_t *out) {
  PGconn *c = sampler_pg(pg, url);
  if (c == NULL) return;
  char sql[1024];
  snprintf(sql, sizeof sql,
           "SELECT count(*) FILTER (WHERE n <= %ld AND action = 'publish'),"
           " count(*) FILTER (WHERE n <= %ld AND action = 'echoed'),"
           " count(*) FILTER (WHERE action = 'publish'), count(*) FILTER (WHERE action = 'echoed'),"
           " coalesce(max(n), %ld), (SELECT count(*) FROM ctxd.outbox)"
           " FROM testkit.effects WHERE n > %ld",
           tally->newest, tally->newest, tally->newest, tally->upto);
  PGresult *r = PQexec(c, sql);
  if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
    long v[6];
    for (int i = 0; i < 6; i++) v[i] = strtol(PQgetvalue(r, 0, i), NULL, 10);
    out->effects = tally->publish + v[2];
    out->events = tally->echoed + v[3];
    out->outbox = v[5];
    tally->publish += v[0];
    tally->echoed += v[1];
    tally->upto = tally->newest;
    tally->newest = v[4];
  }
  PQclear(r);
}

/* Messages ready in queue, -1 when the broker cannot say (the connection is made again
 * at the next sample). */
static long sample_queue(amqp_connection_state_t *c, const char *queue) {
  if (*c == NULL && (*c = ctxt_amqp_try_connect(ctxt_amqp_url())) != NULL) {
    /* a broker going down must not hold the sampler */
    struct timeval tv = {2, 0};
    amqp_set_rpc_timeout(*c, &tv);
  }
  if (*c == NULL) return -1;
  amqp_queue_declare_ok_t *ok =
      amqp_queue_declare(*c, 1, amqp_cstring_bytes(queue), 1, 0, 0, 0, amqp_empty_table);
  long n = ok != NULL ? (long)ok->message_count : -1;
  amqp_maybe_release_buffers(*c);
  if (ok == NULL) {
    amqp_destroy_connection(*c);
    *c = NULL;
  }
  return n;
}

static void sample_print(soak_t *s, const sample_t *x) {
  if (s->nsamples == 0)
    printf("soak: %7s %4s %8s %5s %10s %10s %10s %7s %7s %7s  %s\n", "t_s", "life", "rss_kib", "fds",
           "published", "effects", "events", "queue", "echo_q", "outbox", "fault");
  printf("soak: %7.1f %4d %8ld %5ld %10ld %10ld %10ld %7ld %7ld %7ld  %s\n", x->t, x->life, x->rss_kib,
         x->fds, x->published, x->effects, x->events, x->queue, x->echo_queue, x->outbox, x->fault);
  fflush(stdout);
  /* "-" for no fault: gnuplot 5.4 reads an empty last field as a piece of the one before */
  fprintf(s->csv, "%.1f,%d,%ld,%ld,%ld,%ld,%ld,%ld,%ld,%ld,%s\n", x->t, x->life, x->rss_kib, x->fds,
          x->published, x->effects, x->events, x->queue, x->echo_queue, x->outbox,
          x->fault[0] != '\0' ? x->fault : "-");
  fflush(s->csv);
}

static void *sample_loop(void *arg) {
  soak_t *s = arg;
  PGconn *pg = NULL;
  amqp_connection_state_t amqp = NULL;
  tally_t tally = {0};
  for (int64_t next = s->t0; !atomic_load(&s->sampler_stop);) {
    sample_t x = {
        .t = since_start(s), .life = -1, .rss_kib = -1, .fds = -1, .effects = -1, .events = -1, .outbox = -1};
    pid_t pid = atomic_load(&s->host_pid);
    if (pid > 0) {
      x.life = atomic_load(&s->life);
      x.rss_kib = ctxt_proc_status_kb(pid, "VmRSS:");
      x.fds = ctxt_proc_fds(pid);
      /* a host killed meanwhile (a zombie until reaped) has neither: read again after */
      if (x.rss_kib <= 0 || x.fds <= 0 || ctxt_proc_status_kb(pid, "VmRSS:") <= 0)
        x.rss_kib = x.fds = x.life = -1;
    }
    x.published = atomic_load(&s->pub.confirmed);
    sample_db(&pg, s->w->db, &tally, &x);
    x.queue = sample_queue(&amqp, s->w->endpoint);
    x.echo_queue = sample_queue(&amqp, s->echo);
    snprintf(x.fault, sizeof x.fault, "%s", atomic_load(&s->fault));
    if (x.effects >= 0) atomic_store(&s->last_effects, x.effects);
    if (x.events >= 0) atomic_store(&s->last_events, x.events);
    sample_print(s, &x);
    sample_t *more =
        s->nsamples < s->cap ? s->samples : realloc(s->samples, (2 * s->cap + 1024) * sizeof *more);
    if (more != NULL && more != s->samples) s->cap = 2 * s->cap + 1024;
    /* out of memory: the sample is printed and written, not judged */
    if (more != NULL) (s->samples = more)[s->nsamples++] = x;
    /* the next sample on the schedule; a slow one (a server down) is not made up */
    next += s->sample_ms;
    if (next < ctxt_now_ms()) next = ctxt_now_ms() + s->sample_ms;
    while (!atomic_load(&s->sampler_stop) && ctxt_now_ms() < next)
      sleep_until_ms(next - ctxt_now_ms() > 200 ? ctxt_now_ms() + 200 : next);
  }
  if (pg != NULL) PQfinish(pg);
  if (amqp != NULL) amqp_destroy_connection(amqp);
  return NULL;
}

/* ---- faults -------------------------------------------------------------------------------- */

/* Starts the host: a new lifetime for the sampler once it is ready. */
static void host_start(soak_t *s) {
  ctxt_host_start(s->w, s->asan);
  int life = atomic_load(&s->life) + 1;
  if (life >= MAX_LIVES) fail_msg("more than %d host lifetimes", MAX_LIVES);
  s->life_start[life] = since_start(s);
  atomic_store(&s->life, life);
  atomic_store(&s->host_pid, s->w->host.pid);
}

static void fault_kill(soak_t *s) {
  ctxt_proc_signal(&s->w->host, SIGKILL);
  assert_true(ctxt_proc_wait_exit(&s->w->host, 30000));
  atomic_store(&s->host_pid, 0);
  int64_t t = ctxt_now_ms();
  host_start(s);
  printf("soak: %.1f s: host killed (SIGKILL), the new one ready after %lld ms\n", since_start(s),
         (long long)(ctxt_now_ms() - t));
}

static void fault_restart(const soak_t *s, const char *which) {
  int64_t t = ctxt_now_ms();
  ctxt_restart(which);
  printf("soak: %.1f s: %s restarted in %lld ms\n", since_start(s), which, (long long)(ctxt_now_ms() - t));
}

static void fault_broker(soak_t *s) { fault_restart(s, "broker"); }
static void fault_db(soak_t *s) { fault_restart(s, "db"); }

static void block_start(soak_t *s) {
  s->blocked = 1;
  ctxt_broker_watermark("0.0000001");
}

static void block_end(soak_t *s) {
  ctxt_broker_watermark("0.4");
  s->blocked = 0;
}

static void link_do(soak_t *s, const char *args) {
  ctxt_stack(args);
  s->link_fault = strcmp(args, "link-heal") != 0;
}

static void slow_start(soak_t *s) { link_do(s, "link-delay 200"); }
static void lossy_start(soak_t *s) { link_do(s, "link-loss 5"); }
static void cut_start(soak_t *s) { link_do(s, "link-cut"); }
static void link_heal(soak_t *s) { link_do(s, "link-heal"); }

typedef struct fault {
  const char *name;
  void (*start)(soak_t *s);
  void (*end)(soak_t *s); /* NULL: over when start returns; else held for CTXD_SOAK_HOLD_S */
  int link;               /* needs the links */
} fault_t;

static const fault_t faults[] = {
    {"kill", fault_kill, NULL, 0},          {"broker", fault_broker, NULL, 0},
    {"blocked", block_start, block_end, 0}, {"db", fault_db, NULL, 0},
    {"slow", slow_start, link_heal, 1},     {"lossy", lossy_start, link_heal, 1},
    {"cut", cut_start, link_heal, 1},
};
#define NFAULTS (sizeof faults / sizeof faults[0])

/* Once a run, after the cycle's faults: the primary killed (SIGKILL) and its synchronous
 * replica promoted; the host finds the new primary by its URL's target_session_attrs. */
static void fault_failover(soak_t *s) {
  int64_t t = ctxt_now_ms();
  ctxt_stack("pg-primary-kill");
  ctxt_stack("pg-promote");
  printf("soak: %.1f s: primary killed, replica promoted in %lld ms\n", since_start(s),
         (long long)(ctxt_now_ms() - t));
}

static const fault_t failover_fault = {"failover", fault_failover, NULL, 0};

/* The cycle: the faults CTXD_SOAK_FAULTS names, in its order (the link ones only with the
 * links). Returns how many. */
static size_t fault_cycle(const soak_t *s, const fault_t **cycle, size_t max) {
  const char *names = getenv("CTXD_SOAK_FAULTS");
  char list[256];
  /* a new host, then two rounds of the others: the first warms it up, the second is
   * judged (a short run judges what it reaches of the second) */
  snprintf(list, sizeof list, "%s",
           names != NULL && *names
               ? names
               : "kill,broker,blocked,db,slow,lossy,cut,broker,blocked,db,slow,lossy,cut");
  size_t n = 0;
  for (char *save = NULL, *name = strtok_r(list, ",", &save); name != NULL;
       name = strtok_r(NULL, ",", &save)) {
    size_t i = 0;
    while (i < NFAULTS && strcmp(faults[i].name, name) != 0) i++;
    if (i == NFAULTS) fail_msg("CTXD_SOAK_FAULTS: no fault '%s'", name);
    if ((!faults[i].link || s->links) && n < max) cycle[n++] = &faults[i];
  }
  return n;
}

/* Waits until the monotonic clock reads ms, failing the test as soon as the host or the
 * publisher gave up meanwhile. */
static void hold_until(soak_t *s, int64_t ms) {
  while (ctxt_now_ms() < ms) {
    if (ctxt_proc_wait_exit(&s->w->host, 0)) fail_msg("the host exited (status %d)", s->w->host.status);
    if (atomic_load(&s->pub.failed)) fail_msg("publisher: %s", s->pub.error);
    sleep_until_ms(ms - ctxt_now_ms() > 500 ? ctxt_now_ms() + 500 : ms);
  }
}

/* Injects f (held for `hold` seconds when it has an end) and records it. */
static void inject(soak_t *s, const fault_t *f, long hold) {
  printf("soak: %.1f s: %s\n", since_start(s), f->name);
  atomic_store(&s->fault, f->name);
  f->start(s);
  if (f->end != NULL) {
    /* a held fault lasts its time: a schedule, not a wait for something */
    hold_until(s, ctxt_now_ms() + hold * 1000);
    f->end(s);
    printf("soak: %.1f s: %s over\n", since_start(s), f->name);
  }
  atomic_store(&s->fault, "");
  if (s->ndone < MAX_FAULTS) {
    s->done[s->ndone].f = f;
    s->done[s->ndone].life = atomic_load(&s->life);
    s->done[s->ndone++].end = since_start(s);
  }
}

/* ---- flatness ----------------------------------------------------------------------------- */

/* The bound of the RSS slope (KiB per minute) unless CTXD_SOAK_RSS_SLOPE_KIB says otherwise.
 * An optimized host's RSS reaches its high-water marks in the first round of faults and
 * then moves by a few hundred KiB (measured: under 900 KiB/min over windows of 40 s to 7
 * min); 1 MiB/min is a leak of 6 bytes a message at 3,000 msg/s. AddressSanitizer's
 * allocator grows with every burst the host takes in (2-4 MiB after a backlog of a thousand
 * messages, measured, where the optimized host moves by 0.3; the short form's 42 s window,
 * with a database restart and the failover in it, fits 11-12.5 MiB/min): under it the
 * bound only catches gross growth, and LeakSanitizer, at the host's exit, what it leaked. */
#if defined(__SANITIZE_ADDRESS__)
#define RSS_SLOPE_KIB 32768
#else
#define RSS_SLOPE_KIB 1024
#endif

/* The least-squares slope of y over x. */
static double slope(const double *x, const double *y, size_t n) {
  double mx = 0, my = 0, sxy = 0, sxx = 0;
  for (size_t i = 0; i < n; i++) mx += x[i], my += y[i];
  mx /= (double)n, my /= (double)n;
  for (size_t i = 0; i < n; i++) sxy += (x[i] - mx) * (y[i] - my), sxx += (x[i] - mx) * (x[i] - mx);
  return sxx > 0 ? sxy / sxx : 0;
}

/* Where a lifetime's judged samples start (seconds): `warmup` after the host became
 * ready and after the end of the first of each fault of the cycle that it went through
 * (the kill aside, which ends it). Each kind of fault leaves a backlog the host takes in
 * at its prefetch, and its allocator keeps the high-water mark that reaches: once every
 * kind has hit the host, what grows further is a leak. -1 when some kind has not hit it. */
static double judged_from(const soak_t *s, const fault_t *const *cycle, size_t ncycle, int life,
                          double warmup) {
  double from = s->life_start[life] + warmup;
  for (size_t k = 0; k < ncycle; k++) {
    if (cycle[k]->start == fault_kill) continue;
    size_t i = 0;
    while (i < s->ndone && (s->done[i].life != life || s->done[i].f != cycle[k])) i++;
    if (i == s->ndone) return -1;
    if (s->done[i].end + warmup > from) from = s->done[i].end + warmup;
  }
  return from;
}

/* Judges each lifetime from judged_from on: the least-squares slopes of RSS and open
 * files against their bounds. Returns how many lifetimes were judged; fails the test when
 * a slope is over its bound. */
static int judge_flatness(const soak_t *s, const fault_t *const *cycle, size_t ncycle) {
  const double warmup = (double)ctxt_env_long("CTXD_SOAK_WARMUP_S", 10),
               min_span = (double)ctxt_env_long("CTXD_SOAK_MIN_SPAN_S", 30),
               rss_bound = (double)ctxt_env_long("CTXD_SOAK_RSS_SLOPE_KIB", RSS_SLOPE_KIB),
               fds_bound = (double)ctxt_env_long("CTXD_SOAK_FDS_RISE", 2);
  double *t = calloc(s->nsamples + 1, sizeof *t), *rss = calloc(s->nsamples + 1, sizeof *rss),
         *fds = calloc(s->nsamples + 1, sizeof *fds);
  int judged = 0, over = 0;
  for (int life = 0; life <= atomic_load(&s->life); life++) {
    double from = judged_from(s, cycle, ncycle, life, warmup);
    size_t n = 0;
    double rmin = 1e18, rmax = 0;
    long fmin = 1L << 30, fmax = 0;
    for (size_t i = 0; i < s->nsamples && from >= 0; i++) {
      const sample_t *x = &s->samples[i];
      if (x->life != life || x->rss_kib <= 0 || x->t < from) continue;
      t[n] = x->t / 60.0;
      rss[n] = (double)x->rss_kib;
      fds[n] = (double)x->fds;
      rmin = rss[n] < rmin ? rss[n] : rmin, rmax = rss[n] > rmax ? rss[n] : rmax;
      fmin = x->fds < fmin ? x->fds : fmin, fmax = x->fds > fmax ? x->fds : fmax;
      n++;
    }
    double span = n > 1 ? (t[n - 1] - t[0]) * 60 : 0;
    if (from < 0 || n < 5 || span < min_span) {
      printf("soak: lifetime %d (from %.0f s): %s\n", life, s->life_start[life],
             from < 0 ? "not every fault of the cycle hit it: not judged" : "too short to judge");
      continue;
    }
    /* open files: how far their fitted line rises across the window, in files */
    double rs = slope(t, rss, n), rise = slope(t, fds, n) * span / 60;
    int ok = rs <= rss_bound && rise < fds_bound;
    printf("soak: lifetime %d (from %.0f s), judged from %.0f s: %zu samples over %.0f s: RSS %.0f-%.0f KiB, "
           "slope %+.0f KiB/min (bound %.0f); open files %ld-%ld, fitted rise %+.2f (bound %.0f): %s\n",
           life, s->life_start[life], from, n, span, rmin, rmax, rs, rss_bound, fmin, fmax, rise, fds_bound,
           ok ? "flat" : "NOT FLAT");
    judged++;
    over += !ok;
  }
  free(t);
  free(rss);
  free(fds);
  assert_int_equal(over, 0);
  return judged;
}

/* ---- the test ------------------------------------------------------------------------------- */

static int setup(void **state) {
  soak_t *s = calloc(1, sizeof *s);
  ctxt_world_setup((void **)&s->w);
  atomic_store(&s->fault, "");
  atomic_store(&s->life, -1);
  *state = s;
  return 0;
}

/* Whatever became of the test: the threads stopped, the broker's watermark and the links
 * as every other test needs them. */
static int teardown(void **state) {
  soak_t *s = *state;
  atomic_store(&s->pub.stop, ABANDON);
  atomic_store(&s->sampler_stop, 1);
  if (s->pub_running) pthread_join(s->pub.thread, NULL);
  if (s->sampler_running) pthread_join(s->sampler, NULL);
  if (s->blocked) block_end(s);
  if (s->link_fault) link_heal(s);
  if (s->links) ctxt_stack_run("link-down");
  if (s->replica) {
    /* the host first: it would reconnect to the old primary coming back */
    ctxt_proc_free(&s->w->host);
    ctxt_stack_run("pg-replica stop");
  }
  if (s->csv != NULL) fclose(s->csv);
  free(s->samples);
  ctxt_world_teardown((void **)&s->w);
  free(s);
  return 0;
}

/* Polls an exact count until it reads want, once a second (each reads the whole table);
 * the deadline bounds it. Returns the last value. */
static long wait_count(soak_t *s, const char *sql, long want, int64_t deadline) {
  long v;
  while ((v = ctxt_pg_long(s->w->pg, sql)) != want && ctxt_now_ms() < deadline)
    sleep_until_ms(ctxt_now_ms() + 1000);
  return v;
}

static void soak(void **state) {
  soak_t *s = *state;
  ctxt_world_t *w = s->w;
  const long seconds = ctxt_env_long("CTXD_SOAK_SECONDS", 120), rate = ctxt_env_long("CTXD_SOAK_RATE", 200),
             hold = ctxt_env_long("CTXD_SOAK_HOLD_S", 4), drain = ctxt_env_long("CTXD_SOAK_DRAIN_S", 300);
  s->sample_ms = ctxt_env_long("CTXD_SOAK_SAMPLE_S", 2) * 1000;
  /* the links need root (a network namespace): without, the stream goes direct */
  s->links = ctxt_env_long("CTXD_SOAK_LINK", 1) && geteuid() == 0;
  const int failover = (int)ctxt_env_long("CTXD_SOAK_FAILOVER", 1);
  if (failover) {
    ctxt_world_replica(w, 1);
    s->replica = 1;
  }
  if (s->links) ctxt_world_through_links(w);
  const fault_t *cycle[64];
  size_t ncycle = fault_cycle(s, cycle, 64);
  /* by default one cycle fills the run */
  const long every_s = ctxt_env_long("CTXD_SOAK_FAULT_EVERY_S", seconds / (long)(ncycle + 1 + failover)),
             every = every_s > 0 ? every_s : 1,
             failover_at = ctxt_env_long("CTXD_SOAK_FAILOVER_AT_S", seconds - every);

  snprintf(s->echo, sizeof s->echo, "%s-echo", w->endpoint);
  snprintf(w->plugin_settings, sizeof w->plugin_settings, ", \"echo_endpoint\": \"%s\"", s->echo);
  /* every fault leaves a backlog larger than the prefetch: each burst after one fills it,
   * and reaches the same high-water mark in the host's allocator */
  const long prefetch = ctxt_env_long("CTXD_SOAK_PREFETCH", 64);
  char settings[128];
  snprintf(settings, sizeof settings, "\"prefetch\": %ld, \"workers\": 2, \"batch_size\": %ld", prefetch,
           prefetch / 2 < 64 ? prefetch / 2 : 64);
  snprintf(w->endpoint_settings, sizeof w->endpoint_settings, "%s", settings);
  snprintf(w->more_endpoints, sizeof w->more_endpoints, ", \"%s\": {%s}", s->echo, settings);
  /* the host's housekeeping runs too (a steady state keeps bounded tables): the inbox
   * remembers ids far longer than any redelivery here takes; short deadlines notice a cut
   * link */
  snprintf(w->host_settings, sizeof w->host_settings,
           ", \"outbox\": {\"sweep_interval_ms\": 200, \"archive_retention_s\": 60}"
           ", \"inbox\": {\"retention_s\": 900}, \"cleanup_interval_s\": 30");
  ctxt_world_quick_deadlines(w);
  /* AddressSanitizer's quarantine (256 MB by default) would count in the host's RSS as if
   * still held (see test_memory.c) */
  snprintf(s->asan, sizeof s->asan, "ASAN_OPTIONS=quarantine_size_mb=8");

  char path[512];
  const char *csv = getenv("CTXD_SOAK_CSV");
  snprintf(path, sizeof path, "%s", csv != NULL && *csv ? csv : CTXD_TEST_BINARY_DIR "/soak.csv");
  s->csv = fopen(path, "w");
  if (s->csv == NULL) fail_msg("cannot write %s", path);
  fprintf(s->csv, "t_s,life,rss_kib,fds,published,effects,events,queue,echo_queue,outbox,fault\n");
  printf("soak: %ld s at %ld msg/s, a fault every %ld s (held %ld s), cycle:", seconds, rate, every, hold);
  for (size_t i = 0; i < ncycle; i++) printf(" %s", cycle[i]->name);
  if (failover) printf("; failover at %ld s", failover_at);
  printf("%s; samples every %ld s into %s\n", s->links ? " (through the links)" : " (links off)",
         s->sample_ms / 1000, path);

  s->t0 = ctxt_now_ms();
  host_start(s);
  s->pub = (publisher_t){.url = ctxt_amqp_url(), .exchange = w->type, .rate = (double)rate};
  assert_int_equal(pthread_create(&s->pub.thread, NULL, publish_loop, &s->pub), 0);
  s->pub_running = 1;
  assert_int_equal(pthread_create(&s->sampler, NULL, sample_loop, s), 0);
  s->sampler_running = 1;

  /* the faults, round and round, one every `every` seconds */
  int64_t end = s->t0 + seconds * 1000;
  const int64_t faults_end = failover ? s->t0 + failover_at * 1000 : end;
  for (int64_t next = s->t0 + every * 1000; next < faults_end && ncycle > 0;) {
    hold_until(s, next);
    inject(s, cycle[s->ndone % ncycle], hold);
    /* a fault that took longer than the interval (a slow restart) leaves the next one a
     * whole interval of calm */
    next += every * 1000;
    if (next < ctxt_now_ms()) next = ctxt_now_ms() + every * 1000;
  }
  if (failover) {
    hold_until(s, faults_end);
    inject(s, &failover_fault, hold);
  }
  hold_until(s, end);
  atomic_store(&s->pub.stop, 1);
  pthread_join(s->pub.thread, NULL);
  s->pub_running = 0;
  if (atomic_load(&s->pub.failed)) fail_msg("publisher: %s", s->pub.error);
  const long published = atomic_load(&s->pub.confirmed);
  const double stream_s = since_start(s);
  printf("soak: stream over after %.0f s: %ld published (%.0f msg/s), %zu faults; publisher: %ld reconnects, "
         "%ld batches sent again, %ld schedule restarts\n",
         stream_s, published, (double)published / stream_s, s->ndone, s->pub.reconnects, s->pub.resent,
         s->pub.restarts);

  /* how far behind the host was when the stream ended */
  const long behind = published - atomic_load(&s->last_effects);

  /* the backlog drains: the sampler's counts first (cheap), then the exact ones */
  int64_t deadline = ctxt_now_ms() + drain * 1000;
  while ((atomic_load(&s->last_effects) < published || atomic_load(&s->last_events) < published) &&
         ctxt_now_ms() < deadline)
    hold_until(s, ctxt_now_ms() + s->sample_ms);
  PQfinish(w->pg);
  w->pg = ctxt_pg_connect(w->db);
  ctxt_amqp_close(w->amqp);
  w->amqp = ctxt_amqp_connect();
  long effects =
      wait_count(s, "SELECT count(*) FROM testkit.effects WHERE action = 'publish'", published, deadline);
  long events =
      wait_count(s, "SELECT count(*) FROM testkit.effects WHERE action = 'echoed'", published, deadline);
  ctxt_wait_drained(w, s->echo, (int)(deadline > ctxt_now_ms() ? deadline - ctxt_now_ms() : 0) + 10000);
  printf("soak: drained %.0f s after the stream ended (%ld effects, %ld events)\n", since_start(s) - stream_s,
         effects, events);
  atomic_store(&s->sampler_stop, 1);
  pthread_join(s->sampler, NULL);
  s->sampler_running = 0;
  ctxt_host_stop(w, SIGTERM);
  /* whether the host kept up: what it took in, and the largest backlog a fault left */
  long largest = 0;
  double largest_at = 0;
  for (size_t i = 0; i < s->nsamples; i++)
    if (s->samples[i].queue > largest) largest = s->samples[i].queue, largest_at = s->samples[i].t;
  printf(
      "soak: handled %.0f msg/s while the stream ran, %ld behind at its end; the largest queue %ld messages, "
      "at %.0f s\n",
      (double)(published - behind) / stream_s, behind, largest, largest_at);

  ctxt_stream_counts_t c;
  ctxt_stream_count(w, s->echo, &c);
  long outbox = ctxt_pg_long(w->pg, "SELECT count(*) FROM ctxd.outbox");
  printf("soak: %ld published -> %ld effects (%ld distinct), %ld events applied downstream (%ld distinct), "
         "%ld in _error, %ld outbox rows left\n",
         published, c.effects, c.distinct, c.events, c.distinct_events, c.errors, outbox);
  assert_true(published > 0);
  assert_int_equal(c.effects, published);
  assert_int_equal(c.distinct, published);
  assert_int_equal(c.events, published);
  assert_int_equal(c.distinct_events, published);
  assert_int_equal(c.errors, 0);
  assert_int_equal(outbox, 0);
  assert_true(judge_flatness(s, cycle, ncycle) >= 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(soak, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
