/* Fault injection: N messages stream through a context that also publishes an event per
 * message to a second endpoint, while the host is killed with SIGKILL at random moments
 * and the broker and PostgreSQL restart. Afterwards every message took effect exactly
 * once, every event was applied exactly once downstream, and nothing is in _error. Each
 * fault prints how long the host took to recover (from the kill or the start of the
 * restart to its first commit after it; for a kill also the restart until ready), and the
 * end a summary per kind of fault.
 *
 * Each handler takes CTXD_FAULT_HANDLER_MS (default 4 ms): the host, which would otherwise
 * clear the whole backlog within a second of coming back, is still working through the
 * stream at every fault, so that every fault meets work in flight and the first commit
 * after it measures the recovery, not the next message's arrival.
 *
 * CI runs a short version; the full one (100,000 messages, 10 kills, 2 + 2 restarts):
 *   bash tests/fault/run.sh
 * Sizes from CTXD_FAULT_MESSAGES, CTXD_FAULT_KILLS, CTXD_FAULT_BROKER_RESTARTS,
 * CTXD_FAULT_DB_RESTARTS, CTXD_FAULT_HANDLER_MS, CTXD_FAULT_SEED. */
#include "hostfixture.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

static long env_long(const char *name, long def) {
  const char *v = getenv(name);
  return v != NULL && *v ? strtol(v, NULL, 10) : def;
}

enum { KILL, BROKER, DB, KINDS };

/* The recovery times of one kind of fault, for the summary. */
typedef struct {
  int n;
  int64_t min, max;
} range_t;

static void range_add(range_t *r, int64_t ms) {
  if (r->n == 0 || ms < r->min) r->min = ms;
  if (r->n == 0 || ms > r->max) r->max = ms;
  r->n++;
}

#define PUBLISHED "action = 'publish'"

/* Kills the host with SIGKILL and starts it again at once, as a service manager would.
 * Returns the time from the kill to its first commit after it; *ready the start's. */
static int64_t kill_host(ctxt_world_t *w, long done, int64_t *ready) {
  int64_t t0 = ctxt_now_ms();
  ctxt_proc_signal(&w->host, SIGKILL);
  assert_true(ctxt_proc_wait_exit(&w->host, 30000));
  /* nothing commits for a dead host: from here on, only the new one */
  long at = ctxt_effects(w, PUBLISHED);
  int64_t started = ctxt_now_ms();
  ctxt_host_start(w, NULL);
  *ready = ctxt_now_ms() - started;
  int64_t recovered = ctxt_wait_effects_above(w, PUBLISHED, at, 120000) - t0;
  printf("fault: killed the host (SIGKILL) at %ld effects: started again, ready after %lld ms; first commit "
         "%lld ms after the kill\n",
         done, (long long)*ready, (long long)recovered);
  return recovered;
}

/* A /readyz body on one line: its reasons separated by " | ". */
static void one_line(const char *body, char *out, size_t len) {
  size_t o = 0;
  for (const char *c = body; *c && o + 4 < len; c++) {
    if (*c != '\n') {
      out[o++] = *c;
    } else if (c[1]) {
      memcpy(out + o, " | ", 3);
      o += 3;
    }
  }
  out[o] = '\0';
}

/* Restarts the broker or PostgreSQL in place while reading the host's /readyz, as a probe
 * would. Returns the time from the restart's start to the host's first commit once the
 * server is back. */
static int64_t restart_server(ctxt_world_t *w, int kind, long done) {
  const char *what = kind == BROKER ? "the broker" : "PostgreSQL";
  ctxt_amqp_close(w->amqp);
  PQfinish(w->pg);
  long reconnects = ctxt_metric(w, NULL, "ctxd_broker_reconnects_total");
  int64_t t0 = ctxt_now_ms(), unready = -1;
  char body[4096], why[4200] = "/readyz stayed 200";
  ctxt_proc_t restart;
  ctxt_stack_spawn(&restart, kind == BROKER ? "restart-broker" : "restart-db", NULL);
  /* ctxt_stack_done bounds the restart */
  while (!ctxt_proc_wait_exit(&restart, 50) && ctxt_now_ms() - t0 < 180000) {
    if (unready < 0 && ctxt_http_get(w->admin_port, "/readyz", body, sizeof body) == 503) {
      unready = ctxt_now_ms() - t0;
      int len = snprintf(why, sizeof why, "/readyz 503 after %lld ms: ", (long long)unready);
      one_line(body, why + len, sizeof why - (size_t)len);
    }
  }
  int64_t back = ctxt_now_ms() - t0;
  ctxt_stack_done(&restart);
  w->amqp = ctxt_amqp_connect();
  w->pg = ctxt_pg_connect(w->db);
  /* the restart ended seconds after the server went down: what the host had in hand is
   * settled, so the next commit is on the server that came back */
  long at = ctxt_effects(w, PUBLISHED);
  int64_t recovered = ctxt_wait_effects_above(w, PUBLISHED, at, 120000) - t0;
  assert_int_equal(ctxt_wait_status(w, "/readyz", 200, CTXT_READY_MS), 200);
  printf("fault: restarted %s at %ld effects: %s; %s back after %lld ms; first commit %lld ms after the "
         "restart began\n",
         what, done, why, what, (long long)back, (long long)recovered);
  if (kind == BROKER) {
    /* the probe saw it: a restart lasts seconds, the probe reads every 50 ms */
    assert_non_null(strstr(why, "broker: not connected"));
    assert_true(ctxt_metric(w, NULL, "ctxd_broker_reconnects_total") > reconnects);
  }
  return recovered;
}

static void stream_through_faults(void **state) {
  ctxt_world_t *w = *state;
  const long n = env_long("CTXD_FAULT_MESSAGES", 5000);
  const int kills = (int)env_long("CTXD_FAULT_KILLS", 3),
            brokers = (int)env_long("CTXD_FAULT_BROKER_RESTARTS", 1),
            dbs = (int)env_long("CTXD_FAULT_DB_RESTARTS", 1);
  const long handler_ms = env_long("CTXD_FAULT_HANDLER_MS", 4);
  unsigned seed = (unsigned)env_long("CTXD_FAULT_SEED", (long)ctxt_now_ms());
  srand(seed);
  char echo[96];
  snprintf(echo, sizeof echo, "%s-echo", w->endpoint);
  snprintf(w->plugin_settings, sizeof w->plugin_settings, ", \"echo_endpoint\": \"%s\"", echo);
  snprintf(w->host_settings, sizeof w->host_settings,
           ", \"outbox\": {\"sweep_grace_ms\": 1000, \"sweep_interval_ms\": 200}");
  printf(
      "fault: %ld messages, %d kills, %d broker restarts, %d database restarts, handlers %ld ms, seed %u\n",
      n, kills, brokers, dbs, handler_ms, seed);

  ctxt_host_start(w, NULL);
  char id[37], message[64];
  snprintf(message, sizeof message, "{\"action\":\"publish\",\"sleep_ms\":%ld}", handler_ms);
  for (long i = 0; i < n; i++) {
    ctxt_make_id(id, (int)i);
    ctxt_publish(w, id, message);
  }
  printf("fault: published %ld messages\n", n);

  /* the faults, shuffled, each when a random share of the work is done */
  int plan[64], nplan = 0;
  for (int i = 0; i < kills && nplan < 64; i++) plan[nplan++] = KILL;
  for (int i = 0; i < brokers && nplan < 64; i++) plan[nplan++] = BROKER;
  for (int i = 0; i < dbs && nplan < 64; i++) plan[nplan++] = DB;
  for (int i = nplan - 1; i > 0; i--) {
    int j = rand() % (i + 1), t = plan[i];
    plan[i] = plan[j];
    plan[j] = t;
  }
  range_t took[KINDS] = {{0}}, ready = {0};
  long at = 0;
  for (int f = 0; f < nplan; f++) {
    /* somewhere in the next slice of the work */
    long slice = n / (nplan + 1);
    at += slice > 0 ? 1 + rand() % slice : 1;
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT least(count(*), %ld) FROM testkit.effects WHERE " PUBLISHED, at);
    long done = ctxt_pg_wait_long(w->pg, sql, at, 120000);
    if (ctxt_effects(w, PUBLISHED) >= n)
      fail_msg("fault: the stream ended before fault %d: raise CTXD_FAULT_HANDLER_MS or CTXD_FAULT_MESSAGES",
               f + 1);
    if (plan[f] == KILL) {
      int64_t ready_ms;
      range_add(&took[KILL], kill_host(w, done, &ready_ms));
      range_add(&ready, ready_ms);
    } else {
      range_add(&took[plan[f]], restart_server(w, plan[f], done));
    }
  }
  static const char *const kinds[] = {"host killed (SIGKILL)", "broker restarted", "PostgreSQL restarted"};
  for (int k = 0; k < KINDS; k++) {
    if (took[k].n == 0) continue;
    printf("fault: recovery, %s (%d): first commit %lld-%lld ms after the fault", kinds[k], took[k].n,
           (long long)took[k].min, (long long)took[k].max);
    if (k == KILL) printf("; ready %lld-%lld ms after the start", (long long)ready.min, (long long)ready.max);
    printf("\n");
  }

  assert_int_equal(
      ctxt_pg_wait_long(w->pg, "SELECT count(*) FROM testkit.effects WHERE " PUBLISHED, n, 300000), n);
  assert_int_equal(
      ctxt_pg_wait_long(w->pg, "SELECT count(*) FROM testkit.effects WHERE action = 'echoed'", n, 300000), n);
  assert_int_equal(ctxt_pg_wait_long(w->pg, "SELECT count(*) FROM ctxd.outbox", 0, 120000), 0);
  assert_int_equal(ctxt_amqp_wait_count(w->amqp, w->endpoint, 0, 60000), 0);
  assert_int_equal(ctxt_amqp_wait_count(w->amqp, echo, 0, 60000), 0);
  ctxt_host_stop(w, SIGTERM);

  ctxt_stream_assert_once(w, echo, n, "fault");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(stream_through_faults, ctxt_world_setup, ctxt_world_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
