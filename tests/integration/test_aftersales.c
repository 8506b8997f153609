/* Compensation and Fulfillment in one host, each on its own endpoint, talking only through
 * the broker: CompensationApproved reaches Fulfillment, the Fulfillment* events reach
 * Compensation. The test sends the commands and plays the payment system, the order system
 * and the Case context, the fake provider the issuing system; it never publishes the
 * contexts' own events. Paths: a refund ends Finished, a reship ends Finished, a non-product
 * compensation ends Finished on the issuing system's answer (PendingCommunication on its
 * refusal), a partial refund and a failed refund leave the order PendingCommunication, which
 * cannot be terminated, until a finished case resolves the fulfillment, which finishes the
 * order. */
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

/* issuing_port: the fake issuing system's (0: the default URL, for paths that call none). */
static void setup_calling(ctxt_world_t *w, int issuing_port) {
  snprintf(fulfillment_endpoint, sizeof fulfillment_endpoint, "%s-f", w->endpoint);
  snprintf(w->plugins, sizeof w->plugins,
           "[{\"name\": \"compensation\", \"settings\": {\"endpoint\": \"%s\"}},"
           " {\"name\": \"fulfillment\", \"settings\": {\"endpoint\": \"%s\", \"issuing_url\":"
           " \"http://127.0.0.1:%d/benefits\"}}]",
           w->endpoint, fulfillment_endpoint, issuing_port ? issuing_port : 8025);
  /* one worker on Compensation's endpoint: apply, submit and approve are decided in order */
  snprintf(w->endpoint_settings, sizeof w->endpoint_settings, "\"workers\": 1");
  seq = 0;
  ctxt_host_start(w, NULL);
}

static void setup_both(ctxt_world_t *w) { setup_calling(w, 0); }

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

static void non_product_is_issued_by_the_issuing_system(void **state) {
  ctxt_world_t *w = *state;
  ctxt_proc_t issuing;
  int port = ctxt_fakeprovider_start(&issuing);
  setup_calling(w, port);
  approved_compensation(w, "\"strategy\":3,\"nonProduct\":{\"kind\":2,\"amountMinor\":888}");
  /* approved -> finished directly, on the issuing system's answer */
  wait_compensation(w, "finished", 4);
  json_t *list = ctxt_fakeprovider_list(port);
  assert_int_equal(json_integer_value(json_object_get(list, "requests")), 1);
  json_decref(list);
  finish(w, 0, 0);
  ctxt_proc_free(&issuing);
  assert_int_equal(
      ctxt_pg_long(w->pg,
                   "SELECT count(*) FROM ctxd.outbox_archive WHERE message_type LIKE '%CompensationApproved'"
                   " AND body::json->'message'->'NonProduct'->>'AmountMinor' = '888'"),
      1);
}

/* The issuing system refuses: the order waits in PendingCommunication for a case. */
static void refused_benefit_waits_for_a_case(void **state) {
  ctxt_world_t *w = *state;
  ctxt_proc_t issuing;
  int port = ctxt_fakeprovider_start(&issuing);
  ctxt_fakeprovider_control(port, "refuse", 1);
  setup_calling(w, port);
  approved_compensation(w, "\"strategy\":3,\"nonProduct\":{\"kind\":1,\"amountMinor\":500}");
  wait_compensation(w, "pending_communication", 4);
  assert_int_equal(ctxt_pg_long(w->pg,
                                "SELECT count(*) FROM compensation.orders WHERE status_reason ="
                                " 'the issuing system answered HTTP 422: the test asked for a refusal'"),
                   1);
  ids_t f = fulfillment_of_c1(w);
  char m[512];
  snprintf(m, sizeof m,
           "{\"caseId\":\"ca000000-0000-4000-8000-000000000002\",\"relatedBizType\":\"fulfillment\","
           "\"relatedBizId\":\"%s\",\"outcome\":1,\"agentId\":\"agent-7\",\"resolvedAt\":\"2026-05-03T12:00:"
           "00Z\"}",
           f.id);
  send_to(w, fulfillment_endpoint, "Ctxd.Case.Contracts.v1:CaseResolved", m);
  wait_compensation(w, "finished", 5);
  finish(w, 0, 1);
  ctxt_proc_free(&issuing);
}

/* A refund for less than requested is no success: PendingCommunication, not Finished. */
static void partial_refund_waits_for_a_case(void **state) {
  ctxt_world_t *w = *state;
  setup_both(w);
  approved_compensation(w, REFUND_PLAN);
  ids_t f = fulfillment_of_c1(w);
  wait_compensation(w, "compensating", 4);
  feedback(w, "Ctxd.Payment.Contracts.v1:RefundCompleted", "refundId", &f,
           "\"amountMinor\":100,\"currency\":\"CNY\",\"paymentReference\":\"PAY-1\",\"completedAt\":\"2026-"
           "05-01T09:05:00Z\"");
  wait_compensation(w, "pending_communication", 5);
  assert_int_equal(ctxt_pg_long(w->pg,
                                "SELECT count(*) FROM compensation.orders"
                                " WHERE status_reason = 'refund PAY-1 paid 100 of the 1500 requested'"),
                   1);
  assert_int_equal(ctxt_pg_wait_long(w->pg, "SELECT count(*) FROM ctxd.outbox", 0, CTXT_EFFECT_MS), 0);
  ctxt_host_stop(w, SIGTERM);
  assert_int_equal(archived(w, FNS "FulfillmentSucceeded"), 0);
  assert_int_equal(archived(w, FNS "FulfillmentFailed"), 1);
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
  /* the order cannot be terminated under its open case: the two would disagree once the
   * case finishes */
  send_to(w, w->endpoint, NS "TerminateCompensation",
          "{\"compensationId\":\"" C1 "\",\"terminatedBy\":\"staff-1\",\"reason\":\"gave up\"}");
  char inbox[256];
  snprintf(inbox, sizeof inbox, "SELECT count(*) FROM ctxd.inbox WHERE endpoint = '%s'", w->endpoint);
  assert_int_equal(ctxt_pg_wait_long(w->pg, inbox, 6, CTXT_EFFECT_MS), 6);
  wait_compensation(w, "pending_communication", 5);

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
      cmocka_unit_test_setup_teardown(non_product_is_issued_by_the_issuing_system, ctxt_world_setup,
                                      ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(refused_benefit_waits_for_a_case, ctxt_world_setup,
                                      ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(partial_refund_waits_for_a_case, ctxt_world_setup, ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(failed_refund_waits_for_a_case, ctxt_world_setup, ctxt_world_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
