/* Scale out on a three-node RabbitMQ cluster: two hosts of one context share a quorum
 * endpoint as competing consumers (each connected to another node), every message also
 * publishes an event to a second endpoint; the node one host is connected to stops
 * mid-stream and starts again later. Afterwards every message took effect exactly once,
 * every event was applied exactly once downstream, nothing is in _error, and both hosts
 * consume again. The suite runs a short stream; tests/cluster/run.sh the full one (20,000).
 * Needs the cluster tests/stack/stack.sh cluster-start starts, and its URLs in the
 * environment (CTXD_CLUSTER_NODE1..3). */
#include "hostfixture.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *cluster_value(const char *name) {
  const char *v = getenv(name);
  if (v == NULL || !*v)
    fail_msg("%s is not set: start the cluster with tests/stack/stack.sh cluster-start", name);
  return v;
}

static void node(ctxt_proc_t *p, const char *what, int n) {
  char script[512], num[4];
  snprintf(script, sizeof script, "%s/tests/stack/stack.sh", CTXD_TEST_SOURCE_DIR);
  snprintf(num, sizeof num, "%d", n);
  char verb[32];
  snprintf(verb, sizeof verb, "cluster-%s-node", what);
  char *argv[] = {"/bin/bash", script, verb, num, NULL};
  ctxt_proc_spawn(p, argv, NULL);
}

static void node_done(ctxt_proc_t *p) {
  assert_true(ctxt_proc_wait_exit(p, 180000));
  assert_true(WIFEXITED(p->status) && WEXITSTATUS(p->status) == 0);
  ctxt_proc_free(p);
}

static void node_loss_without_loss(void **state) {
  ctxt_world_t *w = *state;
  long n = getenv("CTXD_CLUSTER_MESSAGES") ? strtol(getenv("CTXD_CLUSTER_MESSAGES"), NULL, 10) : 4000;
  const char *n1 = cluster_value("CTXD_CLUSTER_NODE1"), *n2 = cluster_value("CTXD_CLUSTER_NODE2"),
             *n3 = cluster_value("CTXD_CLUSTER_NODE3");
  char echo[96];
  snprintf(echo, sizeof echo, "%s-echo", w->endpoint);
  snprintf(w->plugin_settings, sizeof w->plugin_settings, ", \"echo_endpoint\": \"%s\"", echo);
  /* quorum queues, the recommended setting on a cluster, for both endpoints */
  snprintf(w->endpoint_settings, sizeof w->endpoint_settings, "\"queue_type\": \"quorum\"");
  snprintf(w->more_endpoints, sizeof w->more_endpoints, ", \"%s\": {\"queue_type\": \"quorum\"}", echo);
  snprintf(w->host_settings, sizeof w->host_settings,
           ", \"outbox\": {\"sweep_grace_ms\": 1000, \"sweep_interval_ms\": 200}");

  /* host A prefers node 1, host B node 2 */
  char url_b[512];
  snprintf(w->broker_url, sizeof w->broker_url, "%s,%s,%s", n1, n2, n3);
  snprintf(url_b, sizeof url_b, "%s,%s,%s", n2, n3, n1);
  ctxt_host_start(w, NULL);
  ctxt_peer_start(w, url_b);

  /* the publisher stays on node 3, which never stops */
  ctxt_amqp_close(w->amqp);
  w->amqp = ctxt_amqp_connect_url(n3);
  char id[37];
  for (long i = 0; i < n / 2; i++) {
    ctxt_make_id(id, (int)i);
    ctxt_publish(w, id, "{\"action\":\"publish\"}");
  }
  /* node 1 goes down while the hosts work and the second half is being published */
  char sql[128];
  snprintf(sql, sizeof sql, "SELECT least(count(*), %ld) FROM testkit.effects WHERE action = 'publish'",
           n / 8);
  ctxt_pg_wait_long(w->pg, sql, n / 8, CTXT_EFFECT_MS);
  ctxt_proc_t stop;
  node(&stop, "stop", 1);
  printf("cluster: stopping node 1 (host A's) at %ld effects\n", ctxt_effects(w, "action = 'publish'"));
  for (long i = n / 2; i < n; i++) {
    ctxt_make_id(id, (int)i);
    ctxt_publish(w, id, "{\"action\":\"publish\"}");
  }
  node_done(&stop);
  printf("cluster: node 1 stopped at %ld effects\n", ctxt_effects(w, "action = 'publish'"));
  assert_true(ctxt_proc_wait_output(&w->host, "consuming again", 60000));
  printf("cluster: host A consumes again (through another node) at %ld effects\n",
         ctxt_effects(w, "action = 'publish'"));
  ctxt_proc_t start;
  node(&start, "start", 1);
  node_done(&start);
  printf("cluster: node 1 started again at %ld effects\n", ctxt_effects(w, "action = 'publish'"));

  assert_int_equal(
      ctxt_pg_wait_long(w->pg, "SELECT count(*) FROM testkit.effects WHERE action = 'publish'", n, 300000),
      n);
  assert_int_equal(
      ctxt_pg_wait_long(w->pg, "SELECT count(*) FROM testkit.effects WHERE action = 'echoed'", n, 300000), n);
  assert_int_equal(ctxt_pg_wait_long(w->pg, "SELECT count(*) FROM ctxd.outbox", 0, 120000), 0);
  assert_int_equal(ctxt_amqp_wait_count(w->amqp, w->endpoint, 0, 60000), 0);
  assert_int_equal(ctxt_amqp_wait_count(w->amqp, echo, 0, 60000), 0);
  /* both hosts consume again */
  assert_int_equal(ctxt_amqp_wait_consumers(w->amqp, w->endpoint, 2, 60000), 2);
  assert_int_equal(ctxt_amqp_wait_consumers(w->amqp, echo, 2, 60000), 2);

  ctxt_peer_stop(w, SIGTERM);
  ctxt_host_stop(w, SIGTERM);
  /* both took a share of the work */
  assert_null(strstr(w->host.out, "\"handled 0,"));
  assert_null(strstr(w->peer.out, "\"handled 0,"));

  long effects = ctxt_effects(w, "action = 'publish'"), events = ctxt_effects(w, "action = 'echoed'");
  long distinct =
      ctxt_pg_long(w->pg, "SELECT count(DISTINCT message_id) FROM testkit.effects WHERE action = 'publish'");
  char q[128];
  snprintf(q, sizeof q, "%s_error", w->endpoint);
  long errors = ctxt_amqp_queue_count(w->amqp, q);
  snprintf(q, sizeof q, "%s_error", echo);
  errors += ctxt_amqp_queue_count(w->amqp, q);
  printf(
      "cluster: %ld messages -> %ld effects (%ld distinct), %ld events applied downstream, %ld in _error\n",
      n, effects, distinct, events, errors);
  assert_int_equal(effects, n);
  assert_int_equal(distinct, n);
  assert_int_equal(events, n);
  assert_int_equal(errors, 0);
}

/* All three nodes up first: a run that failed halfway may have left node 1 stopped. */
static int cluster_setup(void **state) {
  char cmd[512];
  snprintf(cmd, sizeof cmd, "bash %s/tests/stack/stack.sh cluster-start", CTXD_TEST_SOURCE_DIR);
  if (system(cmd) != 0) return -1;
  return ctxt_world_setup(state);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(node_loss_without_loss, cluster_setup, ctxt_world_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
