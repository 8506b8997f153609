/* Compensation and Fulfillment in one host, each on its own endpoint, talking only through
 * the broker: CompensationApproved reaches Fulfillment, the Fulfillment* events reach
 * Compensation. The test sends the commands and plays the payment system, the order system
 * and the Case context; it never publishes the contexts' own events. Paths: a refund ends
 * Finished, a reship ends Finished, a non-product compensation ends Finished at once, and a
 * failed refund leaves the order PendingCommunication until a finished case resolves the
 * fulfillment, which finishes the order. */
#include "hostfixture.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define C1 "c0000000-0000-4000-8000-0000000000a1"
#define CUSTOMER "c5000000-0000-4000-8000-000000000001"
#define NS "Ctxd.Compensation.Contracts.v1:"
#define FNS "Ctxd.Fulfillment.Contracts.v1:"

static int seq;
static char fulfillment_endpoint[96];

static void setup_both(ctxt_world_t *w) {
  snprintf(fulfillment_endpoint, sizeof fulfillment_endpoint, "%s-f", w->endpoint);
  snprintf(w->plugins, sizeof w->plugins,
           "[{\"name\": \"compensation\", \"settings\": {\"endpoint\": \"%s\"}},"
           " {\"name\": \"fulfillment\", \"settings\": {\"endpoint\": \"%s\"}}]",
           w->endpoint, fulfillment_endpoint);
  /* one worker on Compensation's endpoint: apply, submit and approve are decided in order */
  snprintf(w->endpoint_settings, sizeof w->endpoint_settings, "\"workers\": 1");
  seq = 0;
  ctxt_host_start(w, NULL);
}

static void send_to(ctxt_world_t *w, const char *endpoint, const char *type, const char *message) {
  char body[4096];
  snprintf(
      body, sizeof body,
      "{\"messageId\":\"00000000-0000-4000-8000-%012d\",\"messageType\":[\"urn:message:%s\"],\"message\":%s}",
      seq++, type, message);
  ctxt_amqp_publish(w->amqp, endpoint, "application/vnd.masstransit+json", body, NULL, NULL);
}

/* Applies, submits and approves C1 with `plan` (Strategy and its members). */
static void approved_compensation(ctxt_world_t *w, const char *plan) {
  char m[1024];
  snprintf(m, sizeof m,
           "{\"compensationId\":\"" C1 "\",\"orderNumber\":\"SO-1\",\"customerId\":\"" CUSTOMER
           "\",\"channel\":1,"
           "\"appliedBy\":\"staff-1\",\"reason\":\"Pizza arrived cold\",%s,\"currency\":\"CNY\"}",
           plan);
  send_to(w, w->endpoint, NS "ApplyCompensation", m);
  send_to(w, w->endpoint, NS "SubmitCompensation",
          "{\"compensationId\":\"" C1 "\",\"submittedBy\":\"staff-1\"}");
  send_to(w, w->endpoint, NS "ApproveCompensation",
          "{\"compensationId\":\"" C1 "\",\"approvedBy\":\"boss\"}");
}

/* Waits for C1 to reach `status` (with the version that path gives it). */
static void wait_compensation(ctxt_world_t *w, const char *status, int version) {
  char sql[256];
  snprintf(sql, sizeof sql,
           "SELECT count(*) FROM compensation.orders WHERE id = '" C1 "' AND status = '%s' AND version = %d",
           status, version);
  assert_int_equal(ctxt_pg_wait_long(w->pg, sql, 1, CTXT_EFFECT_MS), 1);
}

typedef struct {
  char id[64], request[64];
} ids_t;

/* The fulfillment Fulfillment made for C1, once it exists. */
static ids_t fulfillment_of_c1(ctxt_world_t *w) {
  ids_t ids;
  assert_int_equal(
      ctxt_pg_wait_long(w->pg, "SELECT count(*) FROM fulfillment.orders WHERE compensation_id = '" C1 "'", 1,
                        CTXT_EFFECT_MS),
      1);
  PGresult *r =
      PQexec(w->pg, "SELECT id, request_id FROM fulfillment.orders WHERE compensation_id = '" C1 "'");
  snprintf(ids.id, sizeof ids.id, "%s", PQgetvalue(r, 0, 0));
  snprintf(ids.request, sizeof ids.request, "%s", PQgetvalue(r, 0, 1));
  PQclear(r);
  return ids;
}

/* Downstream feedback to Fulfillment's endpoint: `key` names the request id member. */
static void feedback(ctxt_world_t *w, const char *type, const char *key, const ids_t *f, const char *rest) {
  char m[1024];
  snprintf(m, sizeof m, "{\"%s\":\"%s\",\"fulfillmentId\":\"%s\",%s}", key, f->request, f->id, rest);
  send_to(w, fulfillment_endpoint, type, m);
}

static long archived(ctxt_world_t *w, const char *type) {
  char sql[256];
  snprintf(sql, sizeof sql, "SELECT count(*) FROM ctxd.outbox_archive WHERE message_type = '%s'", type);
  return ctxt_pg_long(w->pg, sql);
}

/* After a path: the outbox drained, nothing in either _error, the events counted. */
static void finish(ctxt_world_t *w, long processing, long failed) {
  char q[128];
  assert_int_equal(ctxt_pg_wait_long(w->pg, "SELECT count(*) FROM ctxd.outbox", 0, CTXT_EFFECT_MS), 0);
  ctxt_host_stop(w, SIGTERM);
  snprintf(q, sizeof q, "%s_error", w->endpoint);
  assert_int_equal(ctxt_amqp_queue_count(w->amqp, q), 0);
  snprintf(q, sizeof q, "%s_error", fulfillment_endpoint);
  assert_int_equal(ctxt_amqp_queue_count(w->amqp, q), 0);
  assert_int_equal(archived(w, NS "CompensationApproved"), 1);
  assert_int_equal(archived(w, FNS "FulfillmentProcessing"), processing);
  assert_int_equal(archived(w, FNS "FulfillmentFailed"), failed);
  assert_int_equal(archived(w, FNS "FulfillmentSucceeded"), 1);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(*) FROM fulfillment.orders WHERE status = 'succeeded'"),
                   1);
}

#define REFUND_PLAN                                                                                          \
  "\"strategy\":1,\"items\":[{\"sku\":\"SKU-1\",\"name\":\"Margherita\",\"quantity\":2,"                     \
  "\"refundAmountMinor\":1500}]"

static void refund_path_finishes(void **state) {
  ctxt_world_t *w = *state;
  setup_both(w);
  approved_compensation(w, REFUND_PLAN);
  ids_t f = fulfillment_of_c1(w);
  wait_compensation(w, "compensating", 4);
  feedback(w, "Ctxd.Payment.Contracts.v1:RefundCompleted", "refundId", &f,
           "\"amountMinor\":1500,\"currency\":\"CNY\",\"paymentReference\":\"PAY-1\",\"completedAt\":\"2026-"
           "05-01T09:05:00Z\"");
  wait_compensation(w, "finished", 5);
  finish(w, 1, 0);
  assert_int_equal(archived(w, FNS "RefundRequested"), 1);
  /* applied, submitted, approved, compensating, finished */
  assert_int_equal(archived(w, NS "CompensationStatusChanged"), 5);
}

static void reship_path_finishes(void **state) {
  ctxt_world_t *w = *state;
  setup_both(w);
  approved_compensation(
      w, "\"strategy\":2,\"items\":[{\"sku\":\"SKU-1\",\"name\":\"Margherita\",\"quantity\":1}]");
  ids_t f = fulfillment_of_c1(w);
  wait_compensation(w, "compensating", 4);
  feedback(w, "Ctxd.Ordering.Contracts.v1:ReshipOrderCreated", "reshipId", &f,
           "\"orderNumber\":\"RS-1\",\"createdAt\":\"2026-05-01T09:10:00Z\"");
  assert_int_equal(
      ctxt_pg_wait_long(
          w->pg,
          "SELECT count(*) FROM fulfillment.orders WHERE state->'reship_feedback'->>'order_id' = 'RS-1'", 1,
          CTXT_EFFECT_MS),
      1);
  wait_compensation(w, "compensating", 4); /* created is not done yet */
  feedback(w, "Ctxd.Ordering.Contracts.v1:ReshipOrderShipped", "reshipId", &f,
           "\"orderNumber\":\"RS-1\",\"shippedAt\":\"2026-05-02T08:00:00Z\"");
  wait_compensation(w, "finished", 5);
  finish(w, 1, 0);
  assert_int_equal(archived(w, FNS "ReshipOrderRequested"), 1);
}

static void non_product_finishes_at_once(void **state) {
  ctxt_world_t *w = *state;
  setup_both(w);
  approved_compensation(w, "\"strategy\":3,\"nonProduct\":{\"kind\":2,\"amountMinor\":888}");
  /* approved -> finished directly: Fulfillment never waited */
  wait_compensation(w, "finished", 4);
  finish(w, 0, 0);
  assert_int_equal(
      ctxt_pg_long(w->pg,
                   "SELECT count(*) FROM ctxd.outbox_archive WHERE message_type LIKE '%CompensationApproved'"
                   " AND body::json->'message'->'NonProduct'->>'AmountMinor' = '888'"),
      1);
}

static void failed_refund_waits_for_a_case(void **state) {
  ctxt_world_t *w = *state;
  setup_both(w);
  approved_compensation(w, REFUND_PLAN);
  ids_t f = fulfillment_of_c1(w);
  wait_compensation(w, "compensating", 4);
  feedback(w, "Ctxd.Payment.Contracts.v1:RefundFailed", "refundId", &f,
           "\"reason\":\"card expired\",\"failedAt\":\"2026-05-01T09:05:00Z\"");
  wait_compensation(w, "pending_communication", 5);
  assert_int_equal(
      ctxt_pg_long(w->pg, "SELECT count(*) FROM compensation.orders WHERE status_reason = 'card expired'"),
      1);
  assert_int_equal(
      ctxt_pg_long(w->pg,
                   "SELECT count(*) FROM fulfillment.pending_communications WHERE resolved_at IS NULL"),
      1);

  char m[512];
  snprintf(m, sizeof m,
           "{\"caseId\":\"ca000000-0000-4000-8000-000000000001\",\"relatedBizType\":\"fulfillment\","
           "\"relatedBizId\":\"%s\","
           "\"outcome\":1,\"agentId\":\"agent-7\",\"resolvedAt\":\"2026-05-03T12:00:00Z\"}",
           f.id);
  send_to(w, fulfillment_endpoint, "Ctxd.Case.Contracts.v1:CaseResolved", m);
  wait_compensation(w, "finished", 6);
  finish(w, 1, 1);
  assert_int_equal(
      ctxt_pg_long(w->pg,
                   "SELECT count(*) FROM fulfillment.pending_communications WHERE resolved_by = 'agent-7'"),
      1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(refund_path_finishes, ctxt_world_setup, ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(reship_path_finishes, ctxt_world_setup, ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(non_product_finishes_at_once, ctxt_world_setup, ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(failed_refund_waits_for_a_case, ctxt_world_setup, ctxt_world_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
