/* A host with many endpoints: one plugin (benchkit) registers ENDPOINTS of them. The host
 * becomes ready, a message sent to the last endpoint is handled there exactly once, and an
 * idle host holds a bounded number of database connections: none per endpoint at start
 * (workers connect on their first batch), and those the traffic opened are closed again
 * after database.idle_close_ms. */
#include "hostfixture.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

#define ENDPOINTS 200
/* endpoints that get a message each in the idle-connections check: each opens a worker's
 * connection, well under the test server's max_connections */
#define BUSY 20
#define IDLE_CLOSE_MS 300
/* an idle host's connections: the outbox relay's, and the error ingest worker's while it
 * has not closed it */
#define IDLE_CONNECTIONS_MAX 2
#define MT "application/vnd.masstransit+json"

/* Sends {"key": key} of the world's type to endpoint `index` (its own exchange, as
 * MassTransit's Send does: only that endpoint receives it). */
static void send_to(ctxt_world_t *w, int index, int key) {
  char exchange[128], id[37], body[512];
  snprintf(exchange, sizeof exchange, "%s-%d", w->endpoint, index);
  ctxt_make_id(id, key);
  snprintf(
      body, sizeof body,
      "{\"messageId\":\"%s\",\"messageType\":[\"urn:message:%s\"],\"message\":{\"key\":%d,\"sentNs\":1}}", id,
      w->type, key);
  ctxt_amqp_publish(w->amqp, exchange, MT, body, NULL, NULL);
}

/* The host's connections to the world's database, the test's own not counted. */
#define HOST_CONNECTIONS                                                                                     \
  "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"

/* Deletes the queues and exchanges the host declared: a few hundred of them would slow
 * every later test's broker. */
static void forget_topology(ctxt_world_t *w) {
  static const char *const sides[] = {"", "_error", "_skipped"};
  for (int i = 0; i < ENDPOINTS; i++)
    for (size_t k = 0; k < sizeof sides / sizeof sides[0]; k++) {
      char name[160];
      snprintf(name, sizeof name, "%s-%d%s", w->endpoint, i, sides[k]);
      amqp_queue_delete(w->amqp, 1, amqp_cstring_bytes(name), 0, 0);
      amqp_exchange_delete(w->amqp, 1, amqp_cstring_bytes(name), 0);
      assert_int_equal(amqp_get_rpc_reply(w->amqp).reply_type, AMQP_RESPONSE_NORMAL);
    }
}

static void many_endpoints(void **state) {
  ctxt_world_t *w = *state;
  snprintf(w->plugins, sizeof w->plugins,
           "[{\"name\": \"benchkit\", \"settings\": {\"endpoint\": \"%s\", \"message_type\": \"%s\", "
           "\"endpoints\": %d}}]",
           w->endpoint, w->type, ENDPOINTS);
  /* no delay queues: fewer to declare and to clean up; the error store on, so the ingest
   * endpoint consumes all ENDPOINTS _error queues too */
  snprintf(w->more_endpoints, sizeof w->more_endpoints, ", \"defaults\": {\"redelivery_ms\": \"\"}");
  snprintf(w->host_settings, sizeof w->host_settings, ", \"errors\": {\"store\": true}");
  snprintf(w->database_settings, sizeof w->database_settings, ", \"idle_close_ms\": %d", IDLE_CLOSE_MS);
  int64_t t0 = ctxt_now_ms();
  ctxt_host_start(w, NULL);
  int64_t t1 = ctxt_now_ms();
  ctxt_host_stop(w, SIGTERM);
  int64_t t2 = ctxt_now_ms();
  ctxt_host_start(w, NULL); /* declared already: the usual restart */
  print_message("%d endpoints: ready in %.2f s on the first start, %.2f s on a restart\n", ENDPOINTS,
                (double)(t1 - t0) / 1000, (double)(ctxt_now_ms() - t2) / 1000);
  assert_true(strstr(w->host.out, "endpoints consuming") != NULL);

  /* ready with no worker connected: the relay's connection only */
  long idle = ctxt_pg_long(w->pg, HOST_CONNECTIONS);
  print_message("database connections when ready: %ld\n", idle);
  assert_true(idle >= 0 && idle <= IDLE_CONNECTIONS_MAX);

  char last[128];
  snprintf(last, sizeof last, "%s-%d", w->endpoint, ENDPOINTS - 1);
  send_to(w, ENDPOINTS - 1, 1);
  assert_int_equal(ctxt_pg_wait_long(w->pg, "SELECT count(*) FROM benchkit.items", 1, CTXT_EFFECT_MS), 1);
  char inbox[256];
  snprintf(inbox, sizeof inbox, "SELECT count(*) FROM ctxd.inbox WHERE endpoint = '%s'", last);
  assert_int_equal(ctxt_pg_wait_long(w->pg, inbox, 1, CTXT_EFFECT_MS), 1);

  /* traffic on BUSY endpoints opens their workers' connections; idle, they close again */
  for (int i = 0; i < BUSY; i++) send_to(w, i, 100 + i);
  assert_int_equal(ctxt_pg_wait_long(w->pg, "SELECT count(*) FROM benchkit.items", BUSY + 1, CTXT_EFFECT_MS),
                   BUSY + 1);
  char check[256];
  snprintf(check, sizeof check, "SELECT ((%s) <= %d)::int", HOST_CONNECTIONS, IDLE_CONNECTIONS_MAX);
  assert_int_equal(ctxt_pg_wait_long(w->pg, check, 1, CTXT_EFFECT_MS), 1);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT sum(n) FROM benchkit.items"), BUSY + 1);

  ctxt_host_stop(w, SIGTERM);
  /* applied once, and acknowledged: nothing came back to the queue when the host left */
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT n FROM benchkit.items WHERE key = 1"), 1);
  assert_int_equal(ctxt_amqp_queue_count(w->amqp, last), 0);
  assert_int_equal(ctxt_pg_long(w->pg, inbox), 1);
  forget_topology(w);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(many_endpoints, ctxt_world_setup, ctxt_world_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
