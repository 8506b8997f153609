/* Scale out on a three-node RabbitMQ cluster: two hosts of one context share a quorum
 * endpoint as competing consumers (each connected to another node), every message also
 * publishes an event to a second endpoint; the node one host is connected to stops
 * mid-stream, more messages are published while it is down, and it starts again later.
 * The test prints how long that host took to recover: from the start of the node's stop
 * to its reconnection through another node and to its first commit after it. Afterwards
 * every message took effect exactly once, every event was applied exactly once
 * downstream, nothing is in _error, and both hosts consume again. The suite runs a short
 * stream; tests/cluster/run.sh the full one (20,000). Each handler takes
 * CTXD_CLUSTER_HANDLER_MS (default 4 ms), so that the backlog lasts beyond the node's loss.
 * Needs the cluster tests/stack/stack.sh cluster-start starts, and its URLs in the
 * environment (CTXD_CLUSTER_NODE1..3). */
#include "hostfixture.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *cluster_value(const char *name) {
  const char *v = getenv(name);
  if (v == NULL || !*v)
    fail_msg("%s is not set: start the cluster with tests/stack/stack.sh cluster-start", name);
  return v;
}

/* Host A's recovery from the loss of its node, stopped from t0 on, from its /metrics: when
 * it saw its connection lost (the broker closes it once the node's shutdown begins; 0 when
 * it was back before a reading saw it down), connected again through another node, and
 * first committed after that. */
typedef struct {
  int64_t lost, reconnected, committed;
} recovery_t;

static void watch_recovery(ctxt_world_t *w, int64_t t0, recovery_t *r) {
  long seen = -1;
  *r = (recovery_t){0};
  while (r->committed == 0) {
    if (ctxt_now_ms() - t0 > 120000)
      fail_msg(
          "cluster: host A did not commit within 120 s of the node's stop (did the backlog run out? raise "
          "CTXD_CLUSTER_HANDLER_MS)");
    /* handled first: a commit after the reconnection is then after this reading */
    long handled = ctxt_metric(w, w->endpoint, "ctxd_messages_handled_total");
    if (r->reconnected == 0 && ctxt_metric(w, NULL, "ctxd_broker_reconnects_total") >= 1) {
      r->reconnected = ctxt_now_ms() - t0;
      seen = handled;
    } else if (r->reconnected != 0 && handled > seen) {
      r->committed = ctxt_now_ms() - t0;
    } else if (r->lost == 0 && r->reconnected == 0 && ctxt_metric(w, NULL, "ctxd_broker_connected") == 0) {
      r->lost = ctxt_now_ms() - t0;
    }
    usleep(10000); /* polling: the deadline bounds it */
  }
}

static void node_loss_without_loss(void **state) {
  ctxt_world_t *w = *state;
  const char *v = getenv("CTXD_CLUSTER_MESSAGES"), *ms = getenv("CTXD_CLUSTER_HANDLER_MS");
  long n = v != NULL && *v ? strtol(v, NULL, 10) : 4000,
       handler_ms = ms != NULL && *ms ? strtol(ms, NULL, 10) : 4;
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
  ctxt_host_start(w, NULL); /* declares the queues */
  ctxt_host_stop(w, SIGTERM);

  /* the publisher stays on node 3, which never stops. Three quarters before the hosts
   * start: the backlog they work through while node 1 goes down, however fast the
   * publisher is */
  ctxt_amqp_close(w->amqp);
  w->amqp = ctxt_amqp_connect_url(n3);
  char id[37], message[64];
  snprintf(message, sizeof message, "{\"action\":\"publish\",\"sleep_ms\":%ld}", handler_ms);
  long i = 0;
  for (; i < n * 3 / 4; i++) {
    ctxt_make_id(id, (int)i);
    ctxt_publish(w, id, message);
  }
  ctxt_host_start(w, NULL);
  ctxt_peer_start(w, url_b);
  char sql[128];
  snprintf(sql, sizeof sql, "SELECT least(count(*), %ld) FROM testkit.effects WHERE action = 'publish'",
           n / 8);
  ctxt_pg_wait_long(w->pg, sql, n / 8, CTXT_EFFECT_MS);
  long before = ctxt_effects(w, "action = 'publish'");
  assert_int_equal(ctxt_metric(w, NULL, "ctxd_broker_reconnects_total"), 0);
  int64_t t0 = ctxt_now_ms();
  recovery_t r;
  ctxt_proc_t stop;
  ctxt_stack_spawn(&stop, "cluster-stop-node", "1");
  watch_recovery(w, t0, &r);
  long at_recovery = ctxt_effects(w, "action = 'publish'");
  ctxt_stack_done(&stop);
  int64_t stopped = ctxt_now_ms() - t0;
  assert_true(ctxt_proc_wait_output(&w->host, "consuming again", 60000));
  printf("cluster: stopping node 1 (host A's) at %ld effects; host A saw its connection lost after %lld ms, "
         "connected again through another node after %lld ms and committed after %lld ms (at %ld effects); "
         "node 1 stopped after %lld ms\n",
         before, (long long)r.lost, (long long)r.reconnected, (long long)r.committed, at_recovery,
         (long long)stopped);
  /* the last quarter while node 1 is down */
  for (; i < n; i++) {
    ctxt_make_id(id, (int)i);
    ctxt_publish(w, id, message);
  }
  ctxt_proc_t start;
  ctxt_stack_spawn(&start, "cluster-start-node", "1");
  ctxt_stack_done(&start);
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

  ctxt_stream_assert_once(w, echo, n, "cluster");
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
