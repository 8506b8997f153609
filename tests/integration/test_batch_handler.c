/* Batch handlers (ABI 1.3) against the real servers, through the batchkit test plugin:
 * messages arrive in batches and each is applied once; a message that fails in a batch
 * fails alone (the others commit once, a transient failure's immediate retry works); what a
 * batch handler publishes after tx_focus is each message's own and leaves once, from a
 * batch that falls back and from one that commits as it is; a per-message handler works
 * beside the batch handler on the same endpoint; one call never mixes two types of one
 * callback, older versions upcast to its type excepted; benchkit's batch
 * mode counts each message once. The messages are published while the host is stopped, so
 * that it receives them in full batches. */
#include "hostfixture.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <ctxd/ctxd.h>

static void setup_kit(ctxt_world_t *w) {
  snprintf(w->plugins, sizeof w->plugins,
           "[{\"name\": \"batchkit\", \"settings\": {\"endpoint\": \"%s\", \"message_type\": \"%s\", "
           "\"echo_type\": \"%s\"}}]",
           w->endpoint, w->type, w->echo_type);
  snprintf(w->endpoint_settings, sizeof w->endpoint_settings,
           "\"workers\": 1, \"batch_size\": 64, \"immediate_retries\": 2");
  /* the first start declares the queue and its bindings */
  ctxt_host_start(w, NULL);
  ctxt_host_stop(w, SIGTERM);
}

/* Publishes n messages {"action": actions[i] or "ok"} with ids 1..n. */
static void publish_actions(ctxt_world_t *w, int n, const char *const *actions) {
  for (int i = 0; i < n; i++) {
    char id[37], message[64];
    ctxt_make_id(id, i + 1);
    snprintf(message, sizeof message, "{\"action\": \"%s\"}",
             actions != NULL && actions[i] != NULL ? actions[i] : "ok");
    ctxt_publish(w, id, message);
  }
}

static long pg(ctxt_world_t *w, const char *sql) { return ctxt_pg_long(w->pg, sql); }

static void every_message_once_in_batches(void **state) {
  ctxt_world_t *w = *state;
  setup_kit(w);
  publish_actions(w, 200, NULL);
  ctxt_host_start(w, NULL);
  ctxt_wait_settled(w, w->endpoint, 200);
  assert_int_equal(pg(w, "SELECT count(*) FROM batchkit.effects"), 200);
  assert_int_equal(pg(w, "SELECT count(DISTINCT message_id) FROM batchkit.effects"), 200);
  assert_int_equal(pg(w, "SELECT sum(n) FROM batchkit.calls"), 200);
  long largest = pg(w, "SELECT max(n) FROM batchkit.calls"),
       calls = pg(w, "SELECT count(*) FROM batchkit.calls");
  print_message("200 messages in %ld calls, the largest of %ld\n", calls, largest);
  assert_true(largest > 1);
  assert_int_equal(ctxt_metric(w, w->endpoint, "ctxd_messages_handled_total"), 200);
  assert_int_equal(ctxt_amqp_queue_count(w->amqp, w->endpoint), 0);
  ctxt_host_stop(w, SIGTERM);
}

static void a_failing_message_fails_alone(void **state) {
  ctxt_world_t *w = *state;
  setup_kit(w);
  const char *actions[50] = {[19] = "fail", [34] = "flaky"};
  publish_actions(w, 50, actions);
  ctxt_host_start(w, NULL);
  char q[128], hv[512], body[4096];
  snprintf(q, sizeof q, "%s_error", w->endpoint);
  assert_int_equal(ctxt_amqp_wait_count(w->amqp, q, 1, CTXT_EFFECT_MS), 1);
  ctxt_wait_settled(w, w->endpoint, 50);
  /* the 49 others, each once; the bad one not at all */
  assert_int_equal(pg(w, "SELECT count(*) FROM batchkit.effects"), 49);
  assert_int_equal(pg(w, "SELECT count(DISTINCT message_id) FROM batchkit.effects"), 49);
  assert_int_equal(pg(w, "SELECT count(*) FROM batchkit.effects WHERE message_id = "
                         "'00000000-0000-4000-8000-000000000020'"),
                   0);
  /* the transient one succeeded on its immediate retry, alone */
  assert_int_equal(pg(w, "SELECT count(*) FROM batchkit.effects WHERE action = 'flaky' AND detail = '1'"), 1);
  assert_true(ctxt_metric(w, w->endpoint, "ctxd_messages_retried_total") >= 1);
  assert_int_equal(ctxt_metric(w, w->endpoint, "ctxd_messages_handled_total"), 49);
  assert_int_equal(ctxt_metric(w, w->endpoint, "ctxd_messages_error_total"), 1);
  /* the bad one in _error with its own fault */
  assert_int_equal(ctxt_amqp_get(w->amqp, q, body, sizeof body, "MT-Fault-ExceptionType", hv, sizeof hv), 1);
  assert_string_equal(hv, "Batchkit.Refused");
  assert_non_null(strstr(body, "00000000-0000-4000-8000-000000000020"));
  assert_int_equal(ctxt_amqp_queue_count(w->amqp, w->endpoint), 0);
  ctxt_host_stop(w, SIGTERM);
}

/* Ten messages publish an event each in a batch that falls back (one fails): each event
 * names its own message (body and conversationId) and arrives once, handled by the
 * per-message handler on the same endpoint. tx_focus refuses a pointer not in the call. */
static void focused_events_are_each_messages_own(void **state) {
  ctxt_world_t *w = *state;
  setup_kit(w);
  const char *actions[12] = {"publish", "publish", "publish", "publish", "publish", "fail",
                             "publish", "publish", "publish", "publish", "publish", "foreign"};
  publish_actions(w, 12, actions);
  ctxt_host_start(w, NULL);
  /* 12 messages and the 10 events they published */
  ctxt_wait_settled(w, w->endpoint, 22);
  assert_int_equal(pg(w, "SELECT count(*) FROM batchkit.effects WHERE action = 'publish'"), 10);
  assert_int_equal(pg(w, "SELECT count(*) FROM batchkit.effects WHERE action = 'echoed'"), 10);
  assert_int_equal(pg(w, "SELECT count(*) FROM batchkit.effects e JOIN batchkit.effects p "
                         "ON p.action = 'publish' AND e.message_id = p.message_id "
                         "AND e.detail = p.message_id::text WHERE e.action = 'echoed'"),
                   10);
  char sql[256];
  snprintf(sql, sizeof sql,
           "SELECT count(*) FROM batchkit.effects WHERE action = 'foreign' AND detail = '%d'", CTXD_EINVAL);
  assert_int_equal(pg(w, sql), 1);
  assert_int_equal(ctxt_metric(w, w->endpoint, "ctxd_messages_handled_total"), 21);
  assert_int_equal(ctxt_metric(w, w->endpoint, "ctxd_messages_error_total"), 1);
  ctxt_host_stop(w, SIGTERM);
  /* nothing more left: the events of the rolled-back batch were never written */
  assert_int_equal(pg(w, "SELECT count(*) FROM batchkit.effects WHERE action = 'echoed'"), 10);
}

/* Twenty messages publish an event each in batches that commit as they are (no
 * fallback: their effects record the size of a call of more than one), each event naming
 * its own message; a message of the per-message handler, published between them, is
 * handled beside them and does not split the call. */
static void a_committed_batch_publishes_each_messages_own(void **state) {
  ctxt_world_t *w = *state;
  setup_kit(w);
  char id[37];
  for (int i = 1; i <= 21; i++) {
    ctxt_make_id(id, i);
    if (i == 11)
      ctxt_publish_type(w, w->echo_type, id, "{\"of\": \"direct\"}");
    else
      ctxt_publish(w, id, "{\"action\": \"publish\"}");
  }
  ctxt_host_start(w, NULL);
  /* 21 messages and the 20 events they published */
  ctxt_wait_settled(w, w->endpoint, 41);
  assert_int_equal(ctxt_metric(w, w->endpoint, "ctxd_messages_retried_total"), 0);
  assert_int_equal(ctxt_metric(w, w->endpoint, "ctxd_messages_error_total"), 0);
  assert_int_equal(pg(w, "SELECT sum(n) FROM batchkit.calls"), 20);
  long largest = pg(w, "SELECT max(n) FROM batchkit.calls");
  print_message("20 publishing messages, the largest call of %ld\n", largest);
  assert_true(largest > 1);
  /* every message of a call of more than one committed in it, its event its own */
  assert_int_equal(pg(w, "SELECT count(*) FROM batchkit.effects e JOIN batchkit.effects p "
                         "ON p.action = 'publish' AND e.message_id = p.message_id "
                         "AND e.detail = p.message_id::text WHERE e.action = 'echoed' AND p.detail <> '1'"),
                   pg(w, "SELECT sum(n) FROM batchkit.calls WHERE n > 1"));
  assert_int_equal(pg(w, "SELECT count(*) FROM batchkit.effects WHERE action = 'echoed'"), 21);
  assert_int_equal(pg(w,
                      "SELECT count(*) FROM batchkit.effects WHERE action = 'echoed' AND detail = 'direct' "
                      "AND message_id = '00000000-0000-4000-8000-000000000011'"),
                   1);
  /* a call took messages from both sides of the per-message one */
  assert_true(pg(w, "SELECT count(*) FROM batchkit.calls "
                    "WHERE ids && '{00000000-0000-4000-8000-000000000010}'::uuid[] "
                    "AND ids && '{00000000-0000-4000-8000-000000000012}'::uuid[]") > 0);
  ctxt_host_stop(w, SIGTERM);
}

#define V1 "Dodo.DataCatalog.Contracts.Products.v1:MaterialType"
#define V2 "Dodo.DataCatalog.Contracts.Products.v2:MaterialType"
#define MATERIAL                                                                                             \
  "\"Id\":\"6f1e3a52-3a55-4d47-9a0e-2b1c6f3d9a10\",\"Version\":3,\"CountryId\":643,"                         \
  "\"DepartmentId\":\"0d5b0000-8f0e-4c2a-b2f1-1a2b3c4d5e6f\",\"Name\":\"Mozzarella\",\"Category\":1,"        \
  "\"BasicUnitOfMeasure\":5,\"IsRemoved\":false"
/* The ids of kind k (0: v1, 1: the other type, 2: v2) among messages 1..30, as a uuid[]. */
#define KIND(k)                                                                                              \
  "ARRAY(SELECT ('00000000-0000-4000-8000-' || lpad(g::text, 12, '0'))::uuid "                               \
  "FROM generate_series(1, 30) g WHERE (g - 1) % 3 = " #k ")"

/* One batch callback registered for two types (MaterialType v2, with v1 upcast to it, and
 * another): a call never mixes the types, and v1 messages share the call of v2 ones. Sent
 * to the endpoint's own exchange: the MaterialType exchanges are shared between tests. */
static void a_call_takes_one_type_and_its_older_versions(void **state) {
  ctxt_world_t *w = *state;
  snprintf(w->plugins, sizeof w->plugins,
           "[{\"name\": \"batchkit\", \"settings\": {\"endpoint\": \"%s\", \"message_type\": \"%s\", "
           "\"other_type\": \"%s\", \"echo_type\": \"%s\"}}]",
           w->endpoint, V2, w->type, w->echo_type);
  snprintf(w->endpoint_settings, sizeof w->endpoint_settings, "\"workers\": 1, \"batch_size\": 64");
  ctxt_host_start(w, NULL);
  ctxt_host_stop(w, SIGTERM);
  for (int i = 0; i < 30; i++) {
    char id[37];
    ctxt_make_id(id, i + 1);
    if (i % 3 == 0)
      ctxt_publish_to(w, w->endpoint, V1, id, "{" MATERIAL "}");
    else if (i % 3 == 1)
      ctxt_publish_to(w, w->endpoint, w->type, id, "{\"action\": \"ok\"}");
    else
      ctxt_publish_to(w, w->endpoint, V2, id, "{" MATERIAL ",\"ExternalCode\":\"M-1\"}");
  }
  ctxt_host_start(w, NULL);
  ctxt_wait_settled(w, w->endpoint, 30);
  assert_int_equal(ctxt_metric(w, w->endpoint, "ctxd_messages_handled_total"), 30);
  assert_int_equal(pg(w, "SELECT count(DISTINCT message_id) FROM batchkit.effects"), 30);
  assert_int_equal(pg(w, "SELECT sum(n) FROM batchkit.calls"), 30);
  assert_int_equal(pg(w, "SELECT count(*) FROM batchkit.calls WHERE ids && " KIND(1) " AND (ids && " KIND(
                             0) " OR ids && " KIND(2) ")"),
                   0);
  assert_true(pg(w, "SELECT count(*) FROM batchkit.calls WHERE ids && " KIND(0) " AND ids && " KIND(2)) > 0);
  assert_true(pg(w, "SELECT max(n) FROM batchkit.calls WHERE ids && " KIND(1)) > 1);
  ctxt_host_stop(w, SIGTERM);
}

/* benchkit's batch mode (the benchmark's): one upsert per batch counts every message once;
 * a body it cannot read fails alone. */
static void benchkit_batch_mode_counts_each_message_once(void **state) {
  ctxt_world_t *w = *state;
  snprintf(w->plugins, sizeof w->plugins,
           "[{\"name\": \"benchkit\", \"settings\": {\"endpoint\": \"%s\", \"message_type\": \"%s\", "
           "\"batch\": true}}]",
           w->endpoint, w->type);
  ctxt_host_start(w, NULL);
  ctxt_host_stop(w, SIGTERM);
  for (int i = 0; i < 100; i++) {
    char id[37], message[64];
    ctxt_make_id(id, i + 1);
    if (i == 57)
      snprintf(message, sizeof message, "{\"key\": \"x\"}");
    else
      snprintf(message, sizeof message, "{\"key\": %d, \"sentNs\": %d}", i, 1000 + i);
    ctxt_publish(w, id, message);
  }
  ctxt_host_start(w, NULL);
  ctxt_wait_settled(w, w->endpoint, 100);
  assert_int_equal(pg(w, "SELECT count(*) FROM benchkit.items"), 99);
  assert_int_equal(pg(w, "SELECT sum(n) FROM benchkit.items"), 99);
  assert_int_equal(pg(w, "SELECT count(*) FROM benchkit.items WHERE sent_ns = 1000 + key"), 99);
  assert_int_equal(ctxt_metric(w, w->endpoint, "ctxd_messages_error_total"), 1);
  char q[128], hv[512], body[4096];
  snprintf(q, sizeof q, "%s_error", w->endpoint);
  assert_int_equal(ctxt_amqp_get(w->amqp, q, body, sizeof body, "MT-Fault-ExceptionType", hv, sizeof hv), 1);
  assert_string_equal(hv, "Benchkit.BadBody");
  ctxt_host_stop(w, SIGTERM);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(every_message_once_in_batches, ctxt_world_setup, ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(a_failing_message_fails_alone, ctxt_world_setup, ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(focused_events_are_each_messages_own, ctxt_world_setup,
                                      ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(a_committed_batch_publishes_each_messages_own, ctxt_world_setup,
                                      ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(a_call_takes_one_type_and_its_older_versions, ctxt_world_setup,
                                      ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(benchkit_batch_mode_counts_each_message_once, ctxt_world_setup,
                                      ctxt_world_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
