/* The simulator plugin against the real broker, in a host running only it: a refund
 * request gets RefundCompleted (or RefundFailed when every refund fails), a reship request
 * ReshipOrderCreated then ReshipOrderShipped (or ReshipOrderFailed), a request delivered
 * twice gets answers with the same message ids, the feeds publish valid messages in the
 * order a context needs them, and the agent desk defines its group, rule and agents and
 * works the cases CaseStatusChanged gives its agents. Every message the simulator sends is decoded as the
 * host decodes an envelope and checked against its contract.
 *
 * The broker is shared: the simulator's queues are unique to each test, and the test
 * watches the answer exchanges with its own exclusive queues, keeping only the messages
 * with its request's correlation id (answers) or from its host process (feeds). */
#include "hostfixture.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "contract.h"
#include "envelope.h"

#define REFUND_REQUESTED "Ctxd.Fulfillment.Contracts.v1:RefundRequested"
#define RESHIP_REQUESTED "Ctxd.Fulfillment.Contracts.v1:ReshipOrderRequested"
#define REFUND_COMPLETED "Ctxd.Payment.Contracts.v1:RefundCompleted"
#define REFUND_FAILED "Ctxd.Payment.Contracts.v1:RefundFailed"
#define RESHIP_CREATED "Ctxd.Ordering.Contracts.v1:ReshipOrderCreated"
#define RESHIP_SHIPPED "Ctxd.Ordering.Contracts.v1:ReshipOrderShipped"
#define RESHIP_FAILED "Ctxd.Ordering.Contracts.v1:ReshipOrderFailed"
#define MATERIAL_TYPE "Dodo.DataCatalog.Contracts.Products.v1:MaterialType"
#define CASE_STATUS_CHANGED "Ctxd.Case.Contracts.v1:CaseStatusChanged"
#define CASE_NS "Ctxd.Case.Contracts.v1:"

#define REFUND_ID "a1000000-0000-4000-8000-000000000001"
#define RESHIP_ID "a2000000-0000-4000-8000-000000000002"
#define FULFILLMENT_ID "a3000000-0000-4000-8000-000000000003"
#define COMPENSATION_ID "a4000000-0000-4000-8000-000000000004"
#define CUSTOMER_ID "a5000000-0000-4000-8000-000000000005"
#define CONVERSATION_ID "a6000000-0000-4000-8000-000000000006"

/* config/inventory-templates.json, which the simulator's defaults follow */
#define TEMPLATE_ID "3f1a0c55-6d1e-4b7a-9c1e-5a0d2b7c9e01"
#define TEMPLATE_UNIT "0d5b0000-8f0e-4c2a-b2f1-1a2b3c4d5e6f"
#define FRIDGE "8e9d5a40-1b2c-4d3e-8f40-000000000001"
#define DRY_STORE "8e9d5a40-1b2c-4d3e-8f40-000000000002"
#define CHEESE "6f1e3a52-3a55-4d47-9a0e-2b1c6f3d9a10"
#define FLOUR "7a2e3a52-3a55-4d47-9a0e-2b1c6f3d9a11"

#define REFUND_MESSAGE                                                                                       \
  "{\"RefundId\":\"" REFUND_ID "\",\"FulfillmentId\":\"" FULFILLMENT_ID                                      \
  "\",\"CompensationId\":\"" COMPENSATION_ID                                                                 \
  "\",\"OrderNumber\":\"SO20240810000123\",\"CustomerId\":\"" CUSTOMER_ID "\",\"AmountMinor\":2990,"         \
  "\"Currency\":\"CNY\",\"RequestedAt\":\"2026-11-24T08:00:00Z\"}"
#define RESHIP_MESSAGE                                                                                       \
  "{\"ReshipId\":\"" RESHIP_ID "\",\"FulfillmentId\":\"" FULFILLMENT_ID                                      \
  "\",\"CompensationId\":\"" COMPENSATION_ID                                                                 \
  "\",\"OriginalOrderNumber\":\"SO20240810000123\",\"CustomerId\":\"" CUSTOMER_ID "\",\"Items\":[{\"Sku\":"  \
  "\"SKU-10023\",\"Name\":\"Margherita 30 cm\",\"Quantity\":2}],\"RequestedAt\":\"2026-11-24T08:00:00Z\"}"

#define MAX_SEEN 32

static ctxd__contracts_t *contracts;

typedef struct {
  ctxt_world_t *w;
  char pay[96], ord[96], inv[96], comp[96], desk[96], cas[96], paying[96]; /* its queues and endpoints */
  char watch[96];                                                          /* the test's queue */
  char correlation[37]; /* of the requests this test sends */
} sim_test_t;

static int group_setup(void **state) {
  (void)state;
  char err[256];
  if (ctxd__contracts_new(&contracts, err, sizeof err) != 0) fail_msg("contracts: %s", err);
  return 0;
}

static int group_teardown(void **state) {
  (void)state;
  ctxd__contracts_free(contracts);
  return 0;
}

static int setup(void **state) {
  sim_test_t *t = calloc(1, sizeof *t);
  ctxt_world_setup((void **)&t->w);
  ctxt_world_t *w = t->w;
  snprintf(t->pay, sizeof t->pay, "%s-payment", w->endpoint);
  snprintf(t->ord, sizeof t->ord, "%s-ordering", w->endpoint);
  snprintf(t->inv, sizeof t->inv, "%s-inventory", w->endpoint);
  snprintf(t->comp, sizeof t->comp, "%s-compensation", w->endpoint);
  snprintf(t->desk, sizeof t->desk, "%s-desk", w->endpoint);
  snprintf(t->cas, sizeof t->cas, "%s-case", w->endpoint);
  snprintf(t->paying, sizeof t->paying, "%s-paying", w->endpoint);
  snprintf(t->watch, sizeof t->watch, "%s-watch", w->endpoint);
  static unsigned tests;
  snprintf(t->correlation, sizeof t->correlation, "c%07x-0000-4000-8000-%012x", tests++, (unsigned)getpid());
  *state = t;
  return 0;
}

/* Removes what the simulator declared for this test, once its host is gone. */
static int teardown(void **state) {
  sim_test_t *t = *state;
  ctxt_proc_free(&t->w->host);
  amqp_queue_delete(t->w->amqp, 1, amqp_cstring_bytes(t->pay), 0, 0);
  amqp_queue_delete(t->w->amqp, 1, amqp_cstring_bytes(t->ord), 0, 0);
  amqp_exchange_delete(t->w->amqp, 1, amqp_cstring_bytes(t->inv), 0);
  amqp_exchange_delete(t->w->amqp, 1, amqp_cstring_bytes(t->comp), 0);
  amqp_queue_delete(t->w->amqp, 1, amqp_cstring_bytes(t->desk), 0, 0);
  amqp_exchange_delete(t->w->amqp, 1, amqp_cstring_bytes(t->cas), 0);
  amqp_exchange_delete(t->w->amqp, 1, amqp_cstring_bytes(t->paying), 0);
  void *w = t->w;
  ctxt_world_teardown(&w);
  free(t);
  return 0;
}

enum {
  FEED_MATERIALS = 1,
  FEED_INVENTORY = 2,
  FEED_COMPENSATION = 4,
  FEED_AGENTS = 8,
  FEED_PAYING = 16,
  FEED_ORDERS = 32
};
/* delays short enough for a test, long enough that answers interleave with requests */
#define QUICK ", \"delay_min_ms\": 5, \"delay_max_ms\": 30"

/* Runs a host with only the simulator on this test's queues, the feeds in
 * `feeds` on, and more `settings` (starting with ", "); returns once the simulator
 * consumes. */
static void start_simulator(sim_test_t *t, int feeds, const char *settings) {
  ctxt_world_t *w = t->w;
  char ready[256];
  snprintf(w->plugins, sizeof w->plugins,
           "[{\"name\": \"simulator\", \"settings\": {\"amqp_url\": \"%s\", \"payment_queue\": \"%s\","
           " \"ordering_queue\": \"%s\", \"inventory_endpoint\": \"%s\", \"compensation_endpoint\": \"%s\","
           " \"agent_desk_queue\": \"%s\", \"case_endpoint\": \"%s\", \"paying_endpoint\": \"%s\","
           " \"feed_materials\": %s, \"feed_inventory\": %s,"
           " \"feed_compensation\": %s, \"feed_agents\": %s, \"feed_paying\": %s, \"feed_orders\": %s%s}}]",
           ctxt_amqp_url(), t->pay, t->ord, t->inv, t->comp, t->desk, t->cas, t->paying,
           feeds & FEED_MATERIALS ? "true" : "false", feeds & FEED_INVENTORY ? "true" : "false",
           feeds & FEED_COMPENSATION ? "true" : "false", feeds & FEED_AGENTS ? "true" : "false",
           feeds & FEED_PAYING ? "true" : "false", feeds & FEED_ORDERS ? "true" : "false", settings);
  ctxt_host_start(w, NULL);
  snprintf(ready, sizeof ready, "consuming '%s' (payment) and '%s' (ordering)", t->pay, t->ord);
  if (strstr(w->host.out, ready) == NULL) assert_true(ctxt_proc_wait_output(&w->host, ready, CTXT_READY_MS));
}

/* The test's own exclusive queue on each exchange of types (NULL-terminated). */
static void watch(sim_test_t *t, const char *const *types) {
  amqp_connection_state_t c = t->w->amqp;
  amqp_queue_declare(c, 1, amqp_cstring_bytes(t->watch), 0, 0, 1, 1, amqp_empty_table);
  assert_int_equal(amqp_get_rpc_reply(c).reply_type, AMQP_RESPONSE_NORMAL);
  for (size_t i = 0; types[i] != NULL; i++) {
    amqp_exchange_declare(c, 1, amqp_cstring_bytes(types[i]), amqp_cstring_bytes("fanout"), 0, 1, 0, 0,
                          amqp_empty_table);
    amqp_queue_bind(c, 1, amqp_cstring_bytes(t->watch), amqp_cstring_bytes(types[i]), amqp_empty_bytes,
                    amqp_empty_table);
    assert_int_equal(amqp_get_rpc_reply(c).reply_type, AMQP_RESPONSE_NORMAL);
  }
}

/* Publishes a request of type (valid per its contract) as a MassTransit envelope. */
static void request(sim_test_t *t, const char *type, const char *id, const char *message) {
  char body[4096], err[256];
  json_t *m = json_loads(message, 0, NULL);
  assert_non_null(m);
  if (ctxd__contract_validate(ctxd__contracts_find(contracts, type), m, err, sizeof err) != 0)
    fail_msg("the test's %s is not valid: %s", type, err);
  json_decref(m);
  snprintf(body, sizeof body,
           "{\"messageId\":\"%s\",\"correlationId\":\"%s\",\"conversationId\":\"" CONVERSATION_ID "\","
           "\"messageType\":[\"urn:message:%s\"],\"message\":%s}",
           id, t->correlation, type, message);
  ctxt_amqp_publish(t->w->amqp, type, "application/vnd.masstransit+json", body, NULL, NULL);
}

/* Whether env is this test's: the request's correlation id, or (correlation NULL) sent by
 * the test's host process. */
static int mine(const sim_test_t *t, const json_t *env, const char *correlation) {
  const char *c = json_string_value(json_object_get(env, "correlationId"));
  if (correlation != NULL) return c != NULL && strcmp(c, correlation) == 0;
  return json_integer_value(json_object_get(json_object_get(env, "host"), "processId")) ==
         (json_int_t)t->w->host.pid;
}

/* Decodes body as the host does and checks its message against its contract; returns the
 * envelope (json_decref). */
static json_t *checked(const char *body) {
  ctxd__envelope_t env;
  char err[512];
  if (ctxd__envelope_decode(body, strlen(body), NULL, NULL, &env, err, sizeof err) != 0)
    fail_msg("not an envelope the host accepts: %s: %s", err, body);
  assert_int_equal(env.nmessage_types, 1);
  const ctxd__contract_t *k = ctxd__contracts_find(contracts, env.message_types[0]);
  assert_non_null(k);
  if (ctxd__contract_validate(k, env.message, err, sizeof err) != 0)
    fail_msg("breaks its contract: %s: %s", err, body);
  ctxd__envelope_free(&env);
  json_t *root = json_loads(body, 0, NULL);
  assert_true(json_is_object(json_object_get(root, "headers")));
  assert_non_null(json_string_value(json_object_get(root, "sentTime")));
  return root;
}

/* Waits for `want` of this test's messages on its queue (see mine), in arrival order, into
 * out (each checked); others are dropped. Returns how many came. */
static int collect(sim_test_t *t, const char *correlation, json_t **out, int want) {
  int got = 0;
  int64_t end = ctxt_now_ms() + CTXT_EFFECT_MS;
  char body[16384], unused[4];
  while (got < want && ctxt_now_ms() < end) {
    ctxt_amqp_wait_count(t->w->amqp, t->watch, want - got, (int)(end - ctxt_now_ms()));
    while (got < want &&
           ctxt_amqp_get(t->w->amqp, t->watch, body, sizeof body, NULL, unused, sizeof unused)) {
      json_t *env = json_loads(body, 0, NULL);
      int keep = mine(t, env, correlation);
      json_decref(env);
      if (keep) out[got++] = checked(body);
    }
  }
  return got;
}

/* Stops the host and checks that nothing more of this test's arrived and every request
 * was acknowledged (its queue is empty once the simulator's connection is gone). */
static void stop_and_check_quiet(sim_test_t *t, const char *correlation) {
  ctxt_host_stop(t->w, SIGTERM);
  assert_int_equal(ctxt_amqp_queue_count(t->w->amqp, t->pay), 0);
  assert_int_equal(ctxt_amqp_queue_count(t->w->amqp, t->ord), 0);
  char body[16384], unused[4];
  int more = 0;
  while (ctxt_amqp_get(t->w->amqp, t->watch, body, sizeof body, NULL, unused, sizeof unused)) {
    json_t *env = json_loads(body, 0, NULL);
    more += mine(t, env, correlation);
    json_decref(env);
  }
  assert_int_equal(more, 0);
}

static void free_all(json_t **seen, int n) {
  for (int i = 0; i < n; i++) json_decref(seen[i]);
}

static const char *type_of(const json_t *env) {
  return json_string_value(json_array_get(json_object_get(env, "messageType"), 0)) + strlen("urn:message:");
}

static const char *str(const json_t *env, const char *key) {
  return json_string_value(json_object_get(json_object_get(env, "message"), key));
}

static const char *env_str(const json_t *env, const char *key) {
  return json_string_value(json_object_get(env, key));
}

static json_int_t num(const json_t *env, const char *key) {
  return json_integer_value(json_object_get(json_object_get(env, "message"), key));
}

/* An answer's envelope carries the request's ids on. */
static void assert_answers(const json_t *answer, const sim_test_t *t, const char *request_id) {
  assert_string_equal(env_str(answer, "correlationId"), t->correlation);
  assert_string_equal(env_str(answer, "conversationId"), CONVERSATION_ID);
  assert_string_equal(env_str(answer, "initiatorId"), request_id);
  assert_string_not_equal(env_str(answer, "messageId"), request_id);
}

static void refund_completed(void **state) {
  sim_test_t *t = *state;
  const char *request_id = "b1000000-0000-4000-8000-000000000001";
  start_simulator(t, 0, QUICK ", \"failure_percent\": 0");
  watch(t, (const char *const[]){REFUND_COMPLETED, REFUND_FAILED, NULL});
  request(t, REFUND_REQUESTED, request_id, REFUND_MESSAGE);
  json_t *seen[MAX_SEEN];
  assert_int_equal(collect(t, t->correlation, seen, 1), 1);
  assert_string_equal(type_of(seen[0]), REFUND_COMPLETED);
  assert_answers(seen[0], t, request_id);
  assert_string_equal(str(seen[0], "RefundId"), REFUND_ID);
  assert_string_equal(str(seen[0], "FulfillmentId"), FULFILLMENT_ID);
  assert_int_equal(num(seen[0], "AmountMinor"), 2990);
  assert_string_equal(str(seen[0], "Currency"), "CNY");
  assert_int_equal(strlen(str(seen[0], "PaymentReference")), strlen("RF-000000000000"));
  assert_non_null(str(seen[0], "CompletedAt"));
  stop_and_check_quiet(t, t->correlation);
  /* the host's log, complete once it exited */
  assert_non_null(strstr(t->w->host.out, "payment: refund " REFUND_ID " of 2990 CNY completed"));
  free_all(seen, 1);
}

static void reship_created_then_shipped(void **state) {
  sim_test_t *t = *state;
  const char *request_id = "b2000000-0000-4000-8000-000000000002";
  start_simulator(t, 0, QUICK ", \"failure_percent\": 0");
  watch(t, (const char *const[]){RESHIP_CREATED, RESHIP_SHIPPED, RESHIP_FAILED, NULL});
  request(t, RESHIP_REQUESTED, request_id, RESHIP_MESSAGE);
  json_t *seen[MAX_SEEN];
  assert_int_equal(collect(t, t->correlation, seen, 2), 2);
  assert_string_equal(type_of(seen[0]), RESHIP_CREATED);
  assert_string_equal(type_of(seen[1]), RESHIP_SHIPPED);
  for (int i = 0; i < 2; i++) {
    assert_answers(seen[i], t, request_id);
    assert_string_equal(str(seen[i], "ReshipId"), RESHIP_ID);
    assert_string_equal(str(seen[i], "FulfillmentId"), FULFILLMENT_ID);
  }
  assert_string_not_equal(env_str(seen[0], "messageId"), env_str(seen[1], "messageId"));
  assert_int_equal(strlen(str(seen[0], "OrderNumber")), strlen("RS00000000000000"));
  assert_string_equal(str(seen[0], "OrderNumber"), str(seen[1], "OrderNumber"));
  assert_int_equal(strncmp(str(seen[1], "TrackingNumber"), "SF", 2), 0);
  assert_non_null(str(seen[0], "CreatedAt"));
  assert_non_null(str(seen[1], "ShippedAt"));
  stop_and_check_quiet(t, t->correlation);
  free_all(seen, 2);
}

static void everything_fails_at_100_percent(void **state) {
  sim_test_t *t = *state;
  start_simulator(t, 0, QUICK ", \"failure_percent\": 100");
  watch(t, (const char *const[]){REFUND_COMPLETED, REFUND_FAILED, RESHIP_CREATED, RESHIP_SHIPPED,
                                 RESHIP_FAILED, NULL});
  request(t, REFUND_REQUESTED, "b3000000-0000-4000-8000-000000000001", REFUND_MESSAGE);
  json_t *seen[MAX_SEEN];
  assert_int_equal(collect(t, t->correlation, seen, 1), 1);
  request(t, RESHIP_REQUESTED, "b3000000-0000-4000-8000-000000000002", RESHIP_MESSAGE);
  assert_int_equal(collect(t, t->correlation, seen + 1, 2), 2);
  assert_string_equal(type_of(seen[0]), REFUND_FAILED);
  assert_string_equal(str(seen[0], "RefundId"), REFUND_ID);
  assert_true(strlen(str(seen[0], "Reason")) > 0);
  assert_non_null(str(seen[0], "FailedAt"));
  /* the order is created, then fails to ship */
  assert_string_equal(type_of(seen[1]), RESHIP_CREATED);
  assert_string_equal(type_of(seen[2]), RESHIP_FAILED);
  assert_string_equal(str(seen[2], "ReshipId"), RESHIP_ID);
  assert_true(strlen(str(seen[2], "Reason")) > 0);
  stop_and_check_quiet(t, t->correlation);
  assert_non_null(strstr(t->w->host.out, "payment: refund " REFUND_ID " failed: "));
  assert_non_null(strstr(t->w->host.out, "ordering: reship " RESHIP_ID " failed: "));
  free_all(seen, 3);
}

/* The same request twice (one message id), then once more under another id: the first two
 * answers are one message to a consumer that deduplicates; the third is another message
 * with the same outcome. */
static void redelivered_request_gets_same_answer_ids(void **state) {
  sim_test_t *t = *state;
  const char *first = "b4000000-0000-4000-8000-000000000001", *again = "b4000000-0000-4000-8000-000000000002";
  start_simulator(t, 0, QUICK ", \"failure_percent\": 50");
  watch(t, (const char *const[]){REFUND_COMPLETED, REFUND_FAILED, NULL});
  request(t, REFUND_REQUESTED, first, REFUND_MESSAGE);
  request(t, REFUND_REQUESTED, first, REFUND_MESSAGE);
  json_t *seen[MAX_SEEN];
  assert_int_equal(collect(t, t->correlation, seen, 2), 2);
  request(t, REFUND_REQUESTED, again, REFUND_MESSAGE);
  assert_int_equal(collect(t, t->correlation, seen + 2, 1), 1);
  assert_string_equal(env_str(seen[0], "messageId"), env_str(seen[1], "messageId"));
  assert_string_equal(type_of(seen[0]), type_of(seen[1]));
  assert_string_equal(env_str(seen[0], "initiatorId"), first);
  assert_string_equal(env_str(seen[2], "initiatorId"), again);
  assert_string_not_equal(env_str(seen[2], "messageId"), env_str(seen[0], "messageId"));
  /* the outcome belongs to the refund, not to the message asking for it */
  assert_string_equal(type_of(seen[2]), type_of(seen[0]));
  stop_and_check_quiet(t, t->correlation);
  free_all(seen, 3);
}

/* A request is acknowledged only once answered: stopped before its answer is due, the
 * simulator leaves it in its queue for the next run. */
static void request_stays_queued_until_answered(void **state) {
  sim_test_t *t = *state;
  start_simulator(t, 0, ", \"delay_min_ms\": 600000, \"delay_max_ms\": 600000");
  request(t, REFUND_REQUESTED, "b5000000-0000-4000-8000-000000000001", REFUND_MESSAGE);
  /* delivered to the simulator: no longer ready, not yet acknowledged */
  assert_int_equal(ctxt_amqp_wait_count(t->w->amqp, t->pay, 0, CTXT_EFFECT_MS), 0);
  ctxt_host_stop(t->w, SIGTERM);
  /* the broker requeues the unacknowledged delivery once it sees the connection close */
  assert_int_equal(ctxt_amqp_wait_count(t->w->amqp, t->pay, 1, CTXT_EFFECT_MS), 1);
}

/* Its queue deleted under it, the simulator connects again, declares it again and
 * answers. */
static void reconnects_when_its_queue_is_deleted(void **state) {
  sim_test_t *t = *state;
  char ready[256];
  start_simulator(t, 0, QUICK ", \"failure_percent\": 0");
  watch(t, (const char *const[]){REFUND_COMPLETED, REFUND_FAILED, NULL});
  amqp_queue_delete(t->w->amqp, 1, amqp_cstring_bytes(t->pay), 0, 0);
  assert_int_equal(amqp_get_rpc_reply(t->w->amqp).reply_type, AMQP_RESPONSE_NORMAL);
  snprintf(ready, sizeof ready, "consuming '%s' (payment)", t->pay);
  assert_true(ctxt_proc_wait_output(&t->w->host, ready, CTXT_EFFECT_MS));
  request(t, REFUND_REQUESTED, "b6000000-0000-4000-8000-000000000001", REFUND_MESSAGE);
  json_t *seen[MAX_SEEN];
  assert_int_equal(collect(t, t->correlation, seen, 1), 1);
  assert_string_equal(type_of(seen[0]), REFUND_COMPLETED);
  stop_and_check_quiet(t, t->correlation);
  assert_non_null(strstr(t->w->host.out, "the broker cancelled a consumer"));
  free_all(seen, 1);
}

/* The whole catalog first (the audited materials, then three others), then one material
 * per tick, each version higher than the last; the others get a tombstone every third
 * update. */
static void materials_feed(void **state) {
  sim_test_t *t = *state;
  static const char *const ids[] = {CHEESE, FLOUR, "9b0c0000-5e1f-4d00-8000-000000000001",
                                    "9b0c0000-5e1f-4d00-8000-000000000002",
                                    "9b0c0000-5e1f-4d00-8000-000000000003"};
  static const char *const names[] = {"Mozzarella", "Flour", "Pizza box 30 cm", "Napkins", "Cola 0.5 l"};
  static const int units[] = {5, 5, 1, 1, 1};
  watch(t, (const char *const[]){MATERIAL_TYPE, NULL});
  start_simulator(t, FEED_MATERIALS, QUICK ", \"materials_interval_ms\": 100");
  json_t *seen[MAX_SEEN];
  assert_int_equal(collect(t, NULL, seen, 15), 15);
  ctxt_host_stop(t->w, SIGTERM);
  for (int i = 0; i < 15; i++) {
    assert_string_equal(type_of(seen[i]), MATERIAL_TYPE);
    assert_string_equal(str(seen[i], "Id"), ids[i % 5]);
    assert_string_equal(str(seen[i], "Name"), names[i % 5]);
    assert_int_equal(num(seen[i], "BasicUnitOfMeasure"), units[i % 5]);
    assert_int_equal(num(seen[i], "CountryId"), 643);
    assert_int_equal(json_is_true(json_object_get(json_object_get(seen[i], "message"), "IsRemoved")),
                     i >= 12);
    if (i >= 5) assert_true(num(seen[i], "Version") > num(seen[i - 5], "Version"));
  }
  assert_non_null(strstr(t->w->host.out, "datacatalog: material " CHEESE " 'Mozzarella' version "));
  free_all(seen, 15);
}

/* An audit of the default template, and a compensation of each strategy, each flow in
 * order and in one conversation. */
static void inventory_and_compensation_feeds(void **state) {
  sim_test_t *t = *state;
  static const char *const audit[] = {"StartInventory", "AddMeasurement", "AddMeasurement", "AddMeasurement",
                                      "FinishInventory"};
  static const char *const steps[] = {"ApplyCompensation", "SubmitCompensation", "ApproveCompensation"};
  watch(t, (const char *const[]){t->inv, NULL});
  start_simulator(t, FEED_INVENTORY, QUICK ", \"inventory_interval_ms\": 500");
  json_t *seen[MAX_SEEN];
  assert_int_equal(collect(t, NULL, seen, 5), 5);
  ctxt_host_stop(t->w, SIGTERM);
  const char *inventory = str(seen[0], "InventoryId"), *conversation = env_str(seen[0], "messageId");
  for (int i = 0; i < 5; i++) {
    char type[96];
    snprintf(type, sizeof type, "Ctxd.Inventory.Contracts.v1:%s", audit[i]);
    assert_string_equal(type_of(seen[i]), type);
    assert_string_equal(str(seen[i], "InventoryId"), inventory);
    assert_string_equal(env_str(seen[i], "correlationId"), inventory);
    assert_string_equal(env_str(seen[i], "conversationId"), conversation);
  }
  assert_string_equal(str(seen[0], "UnitId"), TEMPLATE_UNIT);
  assert_string_equal(str(seen[0], "InventoryTemplateId"), TEMPLATE_ID);
  assert_string_equal(str(seen[1], "InventoryZoneId"), FRIDGE);
  assert_string_equal(str(seen[1], "MaterialTypeId"), CHEESE);
  assert_string_equal(str(seen[2], "InventoryZoneId"), DRY_STORE);
  assert_string_equal(str(seen[2], "MaterialTypeId"), FLOUR);
  /* the correction: the first measurement's next version */
  assert_string_equal(str(seen[3], "MeasurementId"), str(seen[1], "MeasurementId"));
  assert_int_equal(num(seen[1], "Version"), 1);
  assert_int_equal(num(seen[3], "Version"), 2);
  for (int i = 1; i < 4; i++) {
    assert_int_equal(num(seen[i], "UnitOfMeasure"), 5);
    assert_string_equal(str(seen[i], "UserId"), str(seen[0], "StartedBy"));
  }
  assert_string_equal(str(seen[4], "FinishedBy"), str(seen[0], "StartedBy"));
  free_all(seen, 5);

  /* compensation, in a host of its own so the queue sees only it */
  watch(t, (const char *const[]){t->comp, NULL});
  start_simulator(t, FEED_COMPENSATION, QUICK ", \"compensation_interval_ms\": 300");
  assert_int_equal(collect(t, NULL, seen, 9), 9);
  ctxt_host_stop(t->w, SIGTERM);
  for (int f = 0; f < 3; f++) {
    json_t **flow = seen + 3 * f;
    for (int i = 0; i < 3; i++) {
      char type[96];
      snprintf(type, sizeof type, "Ctxd.Compensation.Contracts.v1:%s", steps[i]);
      assert_string_equal(type_of(flow[i]), type);
      assert_string_equal(str(flow[i], "CompensationId"), str(flow[0], "CompensationId"));
      assert_string_equal(env_str(flow[i], "conversationId"), env_str(flow[0], "messageId"));
    }
    const json_t *apply = json_object_get(flow[0], "message");
    assert_int_equal(num(flow[0], "Strategy"), f + 1);
    assert_string_equal(str(flow[0], "Currency"), "CNY");
    const json_t *items = json_object_get(apply, "Items"),
                 *non_product = json_object_get(apply, "NonProduct");
    assert_int_equal(json_array_size(items), f < 2 ? 2 : 0);
    assert_int_equal(json_object_get(json_array_get(items, 0), "RefundAmountMinor") != NULL, f == 0);
    assert_int_equal(json_is_object(non_product), f == 2);
    assert_string_equal(str(flow[1], "SubmittedBy"), str(flow[0], "AppliedBy"));
    assert_string_equal(str(flow[2], "ApprovedBy"), "lead-0001");
  }
  free_all(seen, 9);
}

/* The paying flows in turn, each in order, each message valid: a partial payment, the rest
 * and its repeated callback; an over-payment; a cancel between two payments; a group-buy
 * order with its group; a free order's free pay. */
static void paying_feed(void **state) {
  sim_test_t *t = *state;
  static const char *const types[] = {"OpenPayingOrder", "PayOrder", "PayOrder",        "PayOrder",
                                      "OpenPayingOrder", "PayOrder", "OpenPayingOrder", "PayOrder",
                                      "CancelOrder",     "PayOrder", "OpenPayingOrder", "PayOrder",
                                      "OpenPayingOrder", "PayOrder"};
  enum { N = sizeof types / sizeof types[0] };
  watch(t, (const char *const[]){t->paying, NULL});
  start_simulator(t, FEED_PAYING, QUICK ", \"paying_interval_ms\": 300");
  json_t *seen[MAX_SEEN];
  assert_int_equal(collect(t, NULL, seen, N), N);
  ctxt_host_stop(t->w, SIGTERM);
  const char *order = NULL;
  for (int i = 0; i < N; i++) {
    char type[96];
    snprintf(type, sizeof type, "Ctxd.Paying.Contracts.v1:%s", types[i]);
    assert_string_equal(type_of(seen[i]), type);
    if (strcmp(types[i], "OpenPayingOrder") == 0) order = str(seen[i], "OrderNumber");
    assert_string_equal(str(seen[i], "OrderNumber"), order);
  }
  /* the repeated callback is the same payment; the group-buy order has its group */
  assert_string_equal(str(seen[3], "PaymentId"), str(seen[2], "PaymentId"));
  assert_int_equal(num(seen[5], "AmountMinor"), num(seen[4], "AmountMinor") + 10);
  assert_int_equal(num(seen[10], "Kind"), 2);
  assert_non_null(str(seen[10], "GroupId"));
  assert_int_equal(num(seen[12], "AmountMinor"), 0);
  assert_true(json_is_true(json_object_get(json_object_get(seen[13], "message"), "FreePay")));
  free_all(seen, N);
}

/* Customers and their orders for Notification: customer first, then order first, then an
 * order published twice (same order, another message id); each order names its customer. */
static void orders_feed(void **state) {
  sim_test_t *t = *state;
  watch(t, (const char *const[]){"Ctxd.Customers.Contracts.v1:CustomerCreated",
                                 "Ctxd.Ordering.Contracts.v1:OrderCreated", NULL});
  start_simulator(t, FEED_ORDERS, QUICK ", \"orders_interval_ms\": 300");
  json_t *seen[7];
  assert_int_equal(collect(t, NULL, seen, 7), 7);
  ctxt_host_stop(t->w, SIGTERM);
  static const char *const types[] = {"CustomerCreated", "OrderCreated", "OrderCreated", "CustomerCreated",
                                      "CustomerCreated", "OrderCreated", "OrderCreated"};
  for (int i = 0; i < 7; i++) assert_non_null(strstr(type_of(seen[i]), types[i]));
  /* each order is its customer's */
  assert_string_equal(str(seen[1], "CustomerId"), str(seen[0], "CustomerId"));
  assert_string_equal(str(seen[2], "CustomerId"), str(seen[3], "CustomerId"));
  assert_string_equal(str(seen[5], "CustomerId"), str(seen[4], "CustomerId"));
  assert_string_not_equal(str(seen[0], "CustomerId"), str(seen[3], "CustomerId"));
  /* the third order twice: another message */
  assert_string_equal(str(seen[6], "OrderId"), str(seen[5], "OrderId"));
  assert_string_not_equal(env_str(seen[6], "messageId"), env_str(seen[5], "messageId"));
  assert_string_equal(str(seen[0], "Name"), "Customer 1");
  free_all(seen, 7);
}

/* ---- the agent desk ---------------------------------------------------------------------- */

#define GROUP_ID "d1000000-0000-4000-8000-000000000001"
#define RULE_ID "d2000000-0000-4000-8000-000000000002"
#define CASE_ID "d3000000-0000-4000-8000-000000000003"
#define OTHER_CASE_ID "d4000000-0000-4000-8000-000000000004"
#define DESK_SETTINGS                                                                                        \
  QUICK ", \"agent_ids\": \"desk-agent-1,desk-agent-2\", \"skill_group_id\": \"" GROUP_ID "\","              \
        " \"rule_id\": \"" RULE_ID "\", \"reject_back_percent\": 100"

enum { WAIT_PROCESS = 2, PROCESSING = 4, PENDING_ACCEPTANCE = 5, FINISHED = 6 };
enum { ASSIGN = 2, ACCEPT = 3, PROCESS = 5, REJECT_BACK = 6, COMPLETE = 7 };

/* Plays Case: publishes CaseStatusChanged `id` saying case_id went from old to new status
 * by action, held by agent. */
static void status_changed(sim_test_t *t, const char *id, const char *case_id, int old, int new_status,
                           int action, const char *agent) {
  static int version; /* Case's: one more per change */
  char message[1024];
  snprintf(message, sizeof message,
           "{\"CaseId\":\"%s\",\"OldStatus\":%d,\"NewStatus\":%d,\"Action\":%d,\"CaseType\":1,"
           "\"OperatorId\":\"%s\",\"Follower\":{\"AgentId\":\"%s\",\"SkillGroupId\":\"" GROUP_ID "\"},"
           "\"Version\":%d,\"ChangedAt\":\"2026-11-24T08:00:00.000Z\"}",
           case_id, old, new_status, action, agent, agent, ++version);
  request(t, CASE_STATUS_CHANGED, id, message);
}

/* Waits for the desk's next command: of `type`, on case_id, answering status message
 * status_id, its actor (AgentId or OperatorId) agent. Returns its envelope (json_decref). */
static json_t *next_command(sim_test_t *t, const char *type, const char *status_id, const char *agent) {
  json_t *seen[1];
  assert_int_equal(collect(t, NULL, seen, 1), 1);
  assert_string_equal(type_of(seen[0]), type);
  assert_string_equal(str(seen[0], "CaseId"), CASE_ID);
  const char *actor = str(seen[0], "AgentId") != NULL ? str(seen[0], "AgentId") : str(seen[0], "OperatorId");
  assert_non_null(actor);
  assert_string_equal(actor, agent);
  assert_answers(seen[0], t, status_id);
  return seen[0];
}

/* The desk announces its group, rule and agents to the case endpoint, then works a case
 * given to its second agent: accepted, processed, rejected back (at 100 percent), processed
 * again, completed. A redelivered status change gets the same command (same message id);
 * another agent's case and an ended case get none, and every status change is
 * acknowledged. */
static void agent_desk_works_its_cases(void **state) {
  sim_test_t *t = *state;
  static const char *const agents[] = {"desk-agent-1", "desk-agent-2"};
  watch(t, (const char *const[]){t->cas, NULL});
  start_simulator(t, FEED_AGENTS, DESK_SETTINGS);
  json_t *seen[MAX_SEEN];
  assert_int_equal(collect(t, NULL, seen, 4), 4);
  assert_string_equal(type_of(seen[0]), CASE_NS "DefineSkillGroup");
  assert_string_equal(str(seen[0], "SkillGroupId"), GROUP_ID);
  const json_t *members = json_object_get(json_object_get(seen[0], "message"), "AgentIds");
  assert_int_equal(json_array_size(members), 2);
  for (size_t i = 0; i < 2; i++)
    assert_string_equal(json_string_value(json_array_get(members, i)), agents[i]);
  assert_true(num(seen[0], "Version") >= 1);
  assert_string_equal(type_of(seen[1]), CASE_NS "DefineDistributionRule");
  assert_string_equal(str(seen[1], "RuleId"), RULE_ID);
  assert_string_equal(str(seen[1], "SkillGroupId"), GROUP_ID);
  assert_int_equal(num(seen[1], "Strategy"), 1); /* round robin */
  assert_int_equal(json_array_size(json_object_get(json_object_get(seen[1], "message"), "Conditions")), 0);
  assert_true(json_is_true(json_object_get(json_object_get(seen[1], "message"), "Enabled")));
  assert_int_equal(num(seen[1], "Version"), num(seen[0], "Version"));
  for (int i = 0; i < 2; i++) {
    assert_string_equal(type_of(seen[2 + i]), CASE_NS "AgentOnDuty");
    assert_string_equal(str(seen[2 + i], "AgentId"), agents[i]);
    assert_non_null(str(seen[2 + i], "At"));
  }
  free_all(seen, 4);

  const char *const ids[] = {"e1000000-0000-4000-8000-000000000001", "e1000000-0000-4000-8000-000000000002",
                             "e1000000-0000-4000-8000-000000000003", "e1000000-0000-4000-8000-000000000004",
                             "e1000000-0000-4000-8000-000000000005", "e1000000-0000-4000-8000-000000000006",
                             "e1000000-0000-4000-8000-000000000007"};
  status_changed(t, ids[0], CASE_ID, 1, WAIT_PROCESS, ASSIGN, agents[1]);
  json_t *accept = next_command(t, CASE_NS "AcceptCase", ids[0], agents[1]);
  /* Case's copy of the same status change, delivered again */
  status_changed(t, ids[0], CASE_ID, 1, WAIT_PROCESS, ASSIGN, agents[1]);
  json_t *again = next_command(t, CASE_NS "AcceptCase", ids[0], agents[1]);
  assert_string_equal(env_str(again, "messageId"), env_str(accept, "messageId"));
  status_changed(t, ids[1], CASE_ID, WAIT_PROCESS, PROCESSING, ACCEPT, agents[1]);
  json_t *process = next_command(t, CASE_NS "ProcessCase", ids[1], agents[1]);
  assert_true(strlen(str(process, "Result")) > 0);
  status_changed(t, ids[2], CASE_ID, PROCESSING, PENDING_ACCEPTANCE, PROCESS, agents[1]);
  json_t *reject = next_command(t, CASE_NS "RejectCaseBack", ids[2], agents[1]);
  assert_true(strlen(str(reject, "Reason")) > 0);
  /* redelivered, the change that was rejected back is rejected back again, not completed */
  status_changed(t, ids[2], CASE_ID, PROCESSING, PENDING_ACCEPTANCE, PROCESS, agents[1]);
  json_t *reject_again = next_command(t, CASE_NS "RejectCaseBack", ids[2], agents[1]);
  assert_string_equal(env_str(reject_again, "messageId"), env_str(reject, "messageId"));
  status_changed(t, ids[3], CASE_ID, PENDING_ACCEPTANCE, PROCESSING, REJECT_BACK, agents[1]);
  json_t *process_again = next_command(t, CASE_NS "ProcessCase", ids[3], agents[1]);
  /* none of the desk's business: another agent's case, and an ended one */
  status_changed(t, ids[4], OTHER_CASE_ID, 1, WAIT_PROCESS, ASSIGN, "someone-else");
  status_changed(t, ids[5], OTHER_CASE_ID, PENDING_ACCEPTANCE, FINISHED, COMPLETE, agents[0]);
  status_changed(t, ids[6], CASE_ID, PROCESSING, PENDING_ACCEPTANCE, PROCESS, agents[1]);
  json_t *complete = next_command(t, CASE_NS "CompleteCase", ids[6], agents[1]);
  stop_and_check_quiet(t, t->correlation);
  assert_int_equal(ctxt_amqp_queue_count(t->w->amqp, t->desk), 0);
  assert_non_null(strstr(t->w->host.out, "agent desk: skill group " GROUP_ID));
  assert_non_null(strstr(t->w->host.out, "agent desk: agent desk-agent-2 on duty"));
  assert_non_null(strstr(t->w->host.out, "agent desk: agent desk-agent-2 accepted case " CASE_ID));
  assert_non_null(strstr(t->w->host.out, "agent desk: agent desk-agent-2 rejected back case " CASE_ID));
  assert_non_null(strstr(t->w->host.out, "agent desk: agent desk-agent-2 completed case " CASE_ID));
  json_t *commands[] = {accept, again, process, reject, reject_again, process_again, complete};
  free_all(commands, (int)(sizeof commands / sizeof commands[0]));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(refund_completed, setup, teardown),
      cmocka_unit_test_setup_teardown(reship_created_then_shipped, setup, teardown),
      cmocka_unit_test_setup_teardown(everything_fails_at_100_percent, setup, teardown),
      cmocka_unit_test_setup_teardown(redelivered_request_gets_same_answer_ids, setup, teardown),
      cmocka_unit_test_setup_teardown(request_stays_queued_until_answered, setup, teardown),
      cmocka_unit_test_setup_teardown(reconnects_when_its_queue_is_deleted, setup, teardown),
      cmocka_unit_test_setup_teardown(materials_feed, setup, teardown),
      cmocka_unit_test_setup_teardown(inventory_and_compensation_feeds, setup, teardown),
      cmocka_unit_test_setup_teardown(paying_feed, setup, teardown),
      cmocka_unit_test_setup_teardown(orders_feed, setup, teardown),
      cmocka_unit_test_setup_teardown(agent_desk_works_its_cases, setup, teardown),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
