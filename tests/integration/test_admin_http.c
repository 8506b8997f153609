/* The admin endpoint of a running host: /healthz, /readyz following the broker, and
 * /metrics counting a known traffic, also when two batches race for one message. Stops
 * the shared broker for a while: run alone. */
#include "hostfixture.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Waits for the endpoint to settle `received` deliveries, `errors` of them in _error and
 * `handled` with an effect, then checks its counters: one handler time per message its
 * handler settled. */
static void expect_counts(ctxt_world_t *w, long received, long handled, long duplicates, long errors) {
  char q[128];
  snprintf(q, sizeof q, "%s_error", w->endpoint);
  assert_int_equal(ctxt_amqp_wait_count(w->amqp, q, errors, CTXT_EFFECT_MS), errors);
  assert_int_equal(ctxt_wait_effects(w, NULL, handled), handled);
  ctxt_wait_settled(w, w->endpoint, received);
  assert_int_equal(ctxt_metric(w, w->endpoint, "ctxd_messages_handled_total"), handled);
  assert_int_equal(ctxt_metric(w, w->endpoint, "ctxd_messages_duplicate_total"), duplicates);
  assert_int_equal(ctxt_metric(w, w->endpoint, "ctxd_messages_error_total"), errors);
  assert_int_equal(ctxt_metric(w, w->endpoint, "ctxd_handler_seconds_count"), handled + errors);
}

static void health_readiness_metrics(void **state) {
  ctxt_world_t *w = *state;
  ctxt_host_start(w, NULL);
  int port = w->admin_port;
  assert_true(port > 0);
  char body[65536], id[37];
  assert_int_equal(ctxt_http_get(port, "/healthz", body, sizeof body), 200);
  assert_string_equal(body, "ok\n");
  assert_int_equal(ctxt_http_get(port, "/readyz", body, sizeof body), 200);
  assert_int_equal(ctxt_http_get(port, "/nothing", body, sizeof body), 404);

  /* known traffic: 5 handled, 2 refused, 1 duplicate */
  for (int i = 0; i < 5; i++) {
    ctxt_make_id(id, 100 + i);
    ctxt_publish(w, id, "{\"action\":\"ok\"}");
  }
  ctxt_make_id(id, 100);
  ctxt_publish(w, id, "{\"action\":\"ok\"}");
  for (int i = 0; i < 2; i++) {
    ctxt_make_id(id, 200 + i);
    ctxt_publish(w, id, "{\"action\":\"fail\"}");
  }
  expect_counts(w, 8, 5, 1, 2);
  assert_int_equal(ctxt_metric(w, NULL, "ctxd_broker_connected"), 1);
  assert_int_equal(ctxt_http_get(port, "/metrics", body, sizeof body), 200);
  assert_non_null(strstr(body, "# TYPE ctxd_batch_size histogram\n"));

  /* the broker goes away: not ready, still alive; it comes back: ready again */
  ctxt_amqp_close(w->amqp);
  w->amqp = NULL;
  ctxt_stack("stop-broker");
  assert_int_equal(ctxt_wait_status(w, "/readyz", 503, 30000), 503);
  assert_int_equal(ctxt_http_get(port, "/readyz", body, sizeof body), 503);
  assert_non_null(strstr(body, "broker: not connected"));
  assert_int_equal(ctxt_http_get(port, "/healthz", body, sizeof body), 200);
  ctxt_stack("start-broker");
  assert_int_equal(ctxt_wait_status(w, "/readyz", 200, 60000), 200);
  w->amqp = ctxt_amqp_connect();
  assert_int_equal(ctxt_metric(w, NULL, "ctxd_broker_reconnects_total"), 1);
  ctxt_host_stop(w, SIGTERM);
}

/* Handler time counts once per message its handler settled. Here the first copy of a
 * message runs in a batch that then rolls back (a later message fails), while a second
 * copy's batch takes the inbox row: the first copy ends a duplicate and its handler's
 * time must not count as a second message. */
static void handler_time_once_per_settled_message(void **state) {
  ctxt_world_t *w = *state;
  snprintf(w->endpoint_settings, sizeof w->endpoint_settings, "\"workers\": 2, \"batch_size\": 3");
  /* the first run declares the queue; the next finds three messages waiting: one batch */
  ctxt_host_start(w, NULL);
  ctxt_host_stop(w, SIGTERM);
  char first[37], slow[37], failing[37];
  ctxt_make_id(first, 300);
  ctxt_make_id(slow, 301);
  ctxt_make_id(failing, 302);
  ctxt_publish(w, first, "{\"action\":\"ok\"}");
  ctxt_publish(w, slow, "{\"action\":\"ok\",\"sleep_ms\":1000}");
  ctxt_publish(w, failing, "{\"action\":\"fail\"}");
  ctxt_host_start(w, NULL);
  /* the batch sits in the slow handler, its inbox rows written: the copy comes now */
  assert_int_equal(ctxt_pg_wait_long(w->pg,
                                     "SELECT count(*) FROM pg_stat_activity "
                                     "WHERE datname = current_database() AND backend_xid IS NOT NULL",
                                     1, CTXT_EFFECT_MS),
                   1);
  ctxt_publish(w, first, "{\"action\":\"ok\"}");
  expect_counts(w, 4, 2, 1, 1);
  /* the race needs the three in one batch and the copy in another; should the broker's
   * deliveries have come apart at the start, the counts above hold, but proved less */
  long batches = ctxt_metric(w, w->endpoint, "ctxd_batch_size_count");
  long batched = ctxt_metric(w, w->endpoint, "ctxd_batch_size_sum");
  ctxt_host_stop(w, SIGTERM);
  if (batches != 2 || batched != 4) {
    print_message("deliveries came in %ld batches, not [3] and [1]: the race did not happen\n", batches);
    skip();
  }
}

/* The broker runs again even when the test failed while it was stopped: the tests after
 * this one share it. */
static int teardown_with_broker(void **state) {
  int rc = ctxt_stack_run("start-broker");
  return ctxt_world_teardown(state) != 0 || rc != 0 ? -1 : 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(health_readiness_metrics, ctxt_world_setup, teardown_with_broker),
      cmocka_unit_test_setup_teardown(handler_time_once_per_settled_message, ctxt_world_setup,
                                      ctxt_world_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
