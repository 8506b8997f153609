/* Fault injection: N messages stream through a context that also publishes an event per
 * message to a second endpoint, while the host is killed with SIGKILL at random moments
 * and the broker and PostgreSQL restart. Afterwards every message took effect exactly
 * once, every event was applied exactly once downstream, and nothing is in _error.
 *
 * CI runs a short version; the full one (100,000 messages, 10 kills, 2 + 2 restarts):
 *   bash tests/fault/run.sh
 * Sizes from CTXD_FAULT_MESSAGES, CTXD_FAULT_KILLS, CTXD_FAULT_BROKER_RESTARTS,
 * CTXD_FAULT_DB_RESTARTS, CTXD_FAULT_SEED. */
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

enum { KILL, BROKER, DB };

static void stream_through_faults(void **state) {
  ctxt_world_t *w = *state;
  const long n = env_long("CTXD_FAULT_MESSAGES", 5000);
  const int kills = (int)env_long("CTXD_FAULT_KILLS", 3),
            brokers = (int)env_long("CTXD_FAULT_BROKER_RESTARTS", 1),
            dbs = (int)env_long("CTXD_FAULT_DB_RESTARTS", 1);
  unsigned seed = (unsigned)env_long("CTXD_FAULT_SEED", (long)ctxt_now_ms());
  srand(seed);
  char echo[96];
  snprintf(echo, sizeof echo, "%s-echo", w->endpoint);
  snprintf(w->plugin_settings, sizeof w->plugin_settings, ", \"echo_endpoint\": \"%s\"", echo);
  snprintf(w->host_settings, sizeof w->host_settings,
           ", \"outbox\": {\"sweep_grace_ms\": 1000, \"sweep_interval_ms\": 200}");
  printf("fault: %ld messages, %d kills, %d broker restarts, %d database restarts, seed %u\n", n, kills,
         brokers, dbs, seed);

  ctxt_host_start(w, NULL);
  char id[37];
  for (long i = 0; i < n; i++) {
    ctxt_make_id(id, (int)i);
    ctxt_publish(w, id, "{\"action\":\"publish\"}");
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
  long at = 0;
  for (int f = 0; f < nplan; f++) {
    /* somewhere in the next slice of the work */
    long slice = n / (nplan + 1);
    at += slice > 0 ? 1 + rand() % slice : 1;
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT least(count(*), %ld) FROM testkit.effects WHERE action = 'publish'",
             at);
    long done = ctxt_pg_wait_long(w->pg, sql, at, 120000);
    if (plan[f] == KILL) {
      ctxt_proc_signal(&w->host, SIGKILL);
      assert_true(ctxt_proc_wait_exit(&w->host, 30000));
      printf("fault: killed the host (SIGKILL) at %ld effects\n", done);
      ctxt_host_start(w, NULL);
    } else {
      ctxt_amqp_close(w->amqp);
      PQfinish(w->pg);
      ctxt_restart(plan[f] == BROKER ? "broker" : "db");
      printf("fault: restarted %s at %ld effects\n", plan[f] == BROKER ? "the broker" : "PostgreSQL", done);
      w->amqp = ctxt_amqp_connect();
      w->pg = ctxt_pg_connect(w->db);
    }
  }

  assert_int_equal(
      ctxt_pg_wait_long(w->pg, "SELECT count(*) FROM testkit.effects WHERE action = 'publish'", n, 300000),
      n);
  assert_int_equal(
      ctxt_pg_wait_long(w->pg, "SELECT count(*) FROM testkit.effects WHERE action = 'echoed'", n, 300000), n);
  assert_int_equal(ctxt_pg_wait_long(w->pg, "SELECT count(*) FROM ctxd.outbox", 0, 120000), 0);
  assert_int_equal(ctxt_amqp_wait_count(w->amqp, w->endpoint, 0, 60000), 0);
  assert_int_equal(ctxt_amqp_wait_count(w->amqp, echo, 0, 60000), 0);
  ctxt_host_stop(w, SIGTERM);

  long effects = ctxt_effects(w, "action = 'publish'"), events = ctxt_effects(w, "action = 'echoed'");
  long distinct =
      ctxt_pg_long(w->pg, "SELECT count(DISTINCT message_id) FROM testkit.effects WHERE action = 'publish'");
  char q[128];
  snprintf(q, sizeof q, "%s_error", w->endpoint);
  long errors = ctxt_amqp_queue_count(w->amqp, q);
  snprintf(q, sizeof q, "%s_error", echo);
  errors += ctxt_amqp_queue_count(w->amqp, q);
  printf("fault: %ld messages -> %ld effects (%ld distinct), %ld events applied downstream, %ld in _error\n",
         n, effects, distinct, events, errors);
  assert_int_equal(effects, n);
  assert_int_equal(distinct, n);
  assert_int_equal(events, n);
  assert_int_equal(errors, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(stream_through_faults, ctxt_world_setup, ctxt_world_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
