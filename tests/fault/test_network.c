/* Network faults: the host reaches the broker and PostgreSQL through the test stack's links
 * (stack.sh link-up: a network namespace behind a veth pair, a forwarder in it), which the
 * test makes slow, lossy, or cuts for a while, while a stream of messages whose handler
 * publishes an event to a second endpoint flows through. The host gets over each on its
 * own; during a cut /readyz answers at once, 503, naming what is down; afterwards every
 * message took effect exactly once, every event was applied exactly once downstream, and
 * nothing is in _error. The time to notice each cut and to recover from it is printed.
 *
 * The host's deadlines are short here, so that a cut is noticed within seconds: broker
 * heartbeat 2 s (a send unacknowledged for 4 s fails), rpc_timeout_ms 3000 (a connection
 * attempt over a cut link gives up after 3 s), reconnect_max_ms 1000; database keepalives
 * and tcp_user_timeout 3 s (in the URL, as an operator would write them), connect_timeout_s
 * 2 and idle_in_transaction_timeout_ms 3000.
 *
 * Needs root (a network namespace): skipped without. CTXD_NETWORK_MESSAGES (default 200)
 * sets the messages per fault. */
#include "hostfixture.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* the host's deadlines, short (see above) */
#define HEARTBEAT_S 2
#define PG_DEADLINES "keepalives_idle=1&keepalives_interval=1&keepalives_count=3&tcp_user_timeout=3000"
#define PHASE_MS 180000

typedef struct {
  ctxt_world_t *w;
  char echo[96];
  long sent; /* messages published so far */
} run_t;

static long env_long(const char *name, long def) {
  const char *v = getenv(name);
  return v != NULL && *v ? strtol(v, NULL, 10) : def;
}

static int teardown(void **state) {
  ctxt_world_t *w = *state;
  if (w->host.pid > 0) ctxt_proc_read(&w->host); /* a failed run shows the host's whole log */
  ctxt_proc_free(&w->host);
  int rc = ctxt_stack_run("link-down");
  ctxt_world_teardown(state);
  return rc == 0 ? 0 : -1;
}

/* The host's URLs through the links: the broker's as link-up gives it, the world's own
 * database on the link's address with the short deadlines. The test's own connections
 * stay direct. */
static void through_links(ctxt_world_t *w) {
  char amqp[512], pg[512];
  ctxt_link_up(amqp, sizeof amqp, pg, sizeof pg);
  snprintf(w->broker_url, sizeof w->broker_url, "%s", amqp);
  const char *db = strrchr(w->db, '/');
  *strrchr(pg, '/') = '\0';
  snprintf(w->db_env, sizeof w->db_env, "CTXD_PG_URL=%.80s%.80s?" PG_DEADLINES, pg, db);
}

static long effects(run_t *r) { return ctxt_effects(r->w, "action = 'publish'"); }
static long events(run_t *r) { return ctxt_effects(r->w, "action = 'echoed'"); }

/* Waits until every message sent so far took effect and its event was applied. */
static void wait_caught_up(run_t *r, const char *phase) {
  long e = ctxt_pg_wait_long(r->w->pg, "SELECT count(*) FROM testkit.effects WHERE action = 'publish'",
                             r->sent, PHASE_MS);
  long v = ctxt_pg_wait_long(r->w->pg, "SELECT count(*) FROM testkit.effects WHERE action = 'echoed'",
                             r->sent, PHASE_MS);
  if (e != r->sent || v != r->sent)
    fail_msg("%s: %ld effects and %ld events of %ld messages", phase, e, v, r->sent);
}

/* A slow or lossy link (or a healthy one, for comparison): n messages through it, all
 * handled; the time it took and the reconnections it caused printed. */
static void degraded(run_t *r, const char *phase, const char *fault, long n) {
  long reconnects = ctxt_metric(r->w, NULL, "ctxd_broker_reconnects_total");
  ctxt_stack(fault);
  int64_t t0 = ctxt_now_ms();
  pid_t publisher = ctxt_publish_background(r->w, r->sent, n, 0, "{\"action\":\"publish\"}");
  r->sent += n;
  ctxt_publisher_wait(publisher, PHASE_MS);
  wait_caught_up(r, phase);
  int64_t took = ctxt_now_ms() - t0;
  ctxt_stack("link-heal");
  printf("network: %s: %ld messages and their events in %lld ms, %ld broker reconnections\n", phase, n,
         (long long)took, ctxt_metric(r->w, NULL, "ctxd_broker_reconnects_total") - reconnects);
}

/* 1 when every one of needles (NULL-terminated) is in text. */
static int has_all(const char *text, const char *const *needles) {
  for (size_t i = 0; needles[i] != NULL; i++)
    if (strstr(text, needles[i]) == NULL) return 0;
  return 1;
}

/* A cut: a stream of n messages is under way when the links named `which` are cut. They
 * stay cut until /readyz answered 503 naming each of `down`, the host logged each of
 * `tried` (it tried to reach what is cut off, and failed), and the whole stream is
 * published, and then up to 2 s more, so that the heal finds the host's reconnection
 * backoff anywhere; then they heal. /readyz is asked all along, and must answer at once:
 * the admin endpoint never waits for the broker or the database. Prints the time to
 * notice the cut, and the time from the heal to the first commit and to /readyz 200. */
static void cut(run_t *r, const char *phase, const char *which, const char *const *down,
                const char *const *tried, long n) {
  char args[64], body[4096], said[4096] = "";
  /* each handler takes 50 ms: the workers are always in a transaction, so the cut leaves
   * the database sessions it cuts off in theirs, holding its locks */
  pid_t publisher = ctxt_publish_background(r->w, r->sent, n, 50, "{\"action\":\"publish\",\"sleep_ms\":50}");
  long before = r->sent;
  r->sent += n;
  /* under way: a fifth of the stream handled */
  char sql[256];
  snprintf(sql, sizeof sql, "SELECT least(count(*), %ld) FROM testkit.effects WHERE action = 'publish'",
           before + n / 5);
  ctxt_pg_wait_long(r->w->pg, sql, before + n / 5, PHASE_MS);
  snprintf(args, sizeof args, "link-cut %s", which);
  ctxt_stack(args);
  int64_t t_cut = ctxt_now_ms(), noticed = -1, slowest = 0;
  size_t mark = ctxt_proc_read(&r->w->host);
  /* the database sessions the cut left inside a transaction (frozen there at the cut) */
  long stale =
      strcmp(which, "broker") == 0
          ? 0
          : ctxt_pg_long(r->w->pg,
                         "SELECT count(*) FROM pg_stat_activity WHERE datname = "
                         "current_database() AND application_name = 'ctxd' AND xact_start IS NOT NULL");
  int published = 0;
  int64_t heal_at = -1;
  for (;;) {
    int64_t asked = ctxt_now_ms();
    int st = ctxt_http_get(r->w->admin_port, "/readyz", body, sizeof body);
    int64_t answered = ctxt_now_ms();
    if (answered - asked > slowest) slowest = answered - asked;
    if (noticed < 0 && st == 503 && has_all(body, down)) {
      noticed = answered - t_cut;
      snprintf(said, sizeof said, "%s", body);
    } else if (noticed >= 0 && st != 503) {
      fail_msg("%s: /readyz answered %d during the cut: %s", phase, st, body);
    }
    published = published || ctxt_publisher_done(publisher);
    ctxt_proc_read(&r->w->host);
    if (heal_at < 0 && noticed >= 0 && published && has_all(r->w->host.out + mark, tried))
      heal_at = answered + rand() % 2000;
    if (heal_at >= 0 && answered >= heal_at) break;
    if (answered - t_cut > PHASE_MS)
      fail_msg("%s: after %d ms /readyz said %d %s; published: %d", phase, PHASE_MS, st, body, published);
    usleep(50000); /* polling a URL: the deadline bounds it */
  }
  long at_heal = effects(r);
  snprintf(args, sizeof args, "link-heal %s", which);
  ctxt_stack(args);
  int64_t t_heal = ctxt_now_ms();
  while (effects(r) == at_heal) {
    if (ctxt_now_ms() - t_heal > PHASE_MS)
      fail_msg("%s: no commit within %d ms of the heal", phase, PHASE_MS);
    usleep(10000); /* polling: the deadline bounds it */
  }
  int64_t recovered = ctxt_now_ms() - t_heal;
  assert_int_equal(ctxt_wait_status(r->w, "/readyz", 200, PHASE_MS), 200);
  int64_t ready = ctxt_now_ms() - t_heal;
  wait_caught_up(r, phase);
  int64_t caught_up = ctxt_now_ms() - t_heal;
  /* the sessions the cut left inside their transactions are gone: nothing holds their
   * locks any more (a second after the cut: the new sessions began after the heal) */
  snprintf(sql, sizeof sql,
           "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = "
           "'ctxd' AND xact_start < now() - interval '%lld milliseconds'",
           (long long)(ctxt_now_ms() - t_cut - 1000));
  assert_int_equal(ctxt_pg_long(r->w->pg, sql), 0);
  for (char *nl; (nl = strchr(said, '\n')) != NULL;) *nl = nl[1] != '\0' ? ';' : '\0';
  printf("network: %s: noticed after %lld ms (/readyz 503 \"%s\"), cut for %lld ms, /readyz answered within "
         "%lld ms, %ld database sessions cut off inside a transaction; after the heal the first commit came "
         "after %lld ms, /readyz 200 after %lld ms, every effect and event after %lld ms\n",
         phase, (long long)noticed, said, (long long)(t_heal - t_cut), (long long)slowest, stale,
         (long long)recovered, (long long)ready, (long long)caught_up);
  assert_true(slowest < 1000);
}

static void network_faults(void **state) {
  ctxt_world_t *w = *state;
  if (geteuid() != 0) {
    printf("skipped: the network links need root (a network namespace, a veth pair, nftables)\n");
    skip();
  }
  const long n = env_long("CTXD_NETWORK_MESSAGES", 200);
  srand((unsigned)ctxt_now_ms());
  run_t r = {.w = w};
  snprintf(r.echo, sizeof r.echo, "%s-echo", w->endpoint);
  snprintf(w->plugin_settings, sizeof w->plugin_settings, ", \"echo_endpoint\": \"%s\"", r.echo);
  snprintf(w->host_settings, sizeof w->host_settings, ", \"outbox\": {\"sweep_interval_ms\": 200}");
  w->heartbeat_s = HEARTBEAT_S;
  snprintf(w->broker_settings, sizeof w->broker_settings,
           ", \"rpc_timeout_ms\": 3000, \"reconnect_max_ms\": 1000");
  snprintf(w->database_settings, sizeof w->database_settings,
           ", \"connect_timeout_s\": 2, \"idle_in_transaction_timeout_ms\": 3000");
  /* below the idle-in-transaction timeout, or the host refuses the configuration */
  snprintf(w->more_endpoints, sizeof w->more_endpoints, ", \"defaults\": {\"handler_timeout_ms\": 2000}");
  through_links(w);
  ctxt_host_start(w, NULL);
  int64_t t0 = ctxt_now_ms();

  degraded(&r, "healthy link (the baseline)", "link-heal", n);
  degraded(&r, "slow link (200 ms each way)", "link-delay 200", n);
  degraded(&r, "lossy link (10% of packets dropped each way)", "link-loss 10", n);
  const char *const broker[] = {"broker: not connected", NULL}, *const broker_tried[] = {"; retrying", NULL};
  const char *const db[] = {"database unreachable", NULL}, *const db_tried[] = {"database unreachable", NULL};
  const char *const both[] = {"broker: not connected", "database unreachable", NULL},
                    *const both_tried[] = {"; retrying", "database unreachable", NULL};
  cut(&r, "broker link cut", "broker", broker, broker_tried, n);
  cut(&r, "database link cut", "db", db, db_tried, n);
  cut(&r, "both links cut", "both", both, both_tried, n);

  ctxt_wait_drained(w, r.echo, PHASE_MS);
  long effects_n = effects(&r), events_n = events(&r);
  long distinct =
      ctxt_pg_long(w->pg, "SELECT count(DISTINCT message_id) FROM testkit.effects WHERE action = 'publish'");
  char q[128];
  snprintf(q, sizeof q, "%s_error", w->endpoint);
  long errors = ctxt_amqp_queue_count(w->amqp, q);
  snprintf(q, sizeof q, "%s_error", r.echo);
  errors += ctxt_amqp_queue_count(w->amqp, q);
  ctxt_host_stop(w, SIGTERM);
  printf("network: %ld messages -> %ld effects (%ld distinct), %ld events applied downstream, %ld in _error, "
         "in %lld s\n",
         r.sent, effects_n, distinct, events_n, errors, (long long)((ctxt_now_ms() - t0) / 1000));
  assert_int_equal(effects_n, r.sent);
  assert_int_equal(distinct, r.sent);
  assert_int_equal(events_n, r.sent);
  assert_int_equal(errors, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(network_faults, ctxt_world_setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
