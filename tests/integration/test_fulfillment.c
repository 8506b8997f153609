/* Fulfillment against the real servers, the test playing Compensation (CompensationApproved),
 * the payment system, the order system and the Case context, the fake provider playing the
 * issuing system: a non-product compensation is one call to the issuing system, succeeding
 * on a 2xx, failing on a business refusal (422), tried again with the same key when no
 * answer or a passing failure (503) came; a refund asks the payment system and succeeds on a
 * RefundCompleted for the amount requested (another amount fails it); an approval whose
 * plan cannot be carried out is created failed with a pending communication; a
 * reship asks the order system and succeeds once shipped (also when shipped is reported
 * before created); a failed refund opens a pending communication and a finished case
 * resolves it. Repeated, late, reordered and foreign feedback changes nothing: the events
 * are counted exactly and nothing goes to _error. */
#include "hostfixture.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CA "c0000000-0000-4000-8000-00000000000a"
#define CB "c0000000-0000-4000-8000-00000000000b"
#define CC "c0000000-0000-4000-8000-00000000000c"
#define CD "c0000000-0000-4000-8000-00000000000d"
#define CUSTOMER "c5000000-0000-4000-8000-000000000001"
#define OTHER "e0000000-0000-4000-8000-000000000001"
#define FNS "Ctxd.Fulfillment.Contracts.v1:"
#define REFUND_ITEMS                                                                                         \
  "\"strategy\":1,\"items\":[{\"sku\":\"SKU-1\",\"name\":\"Margherita\",\"quantity\":2,"                     \
  "\"refundAmountMinor\":1500},"                                                                             \
  "{\"sku\":\"SKU-2\",\"name\":\"Cola\",\"quantity\":1,\"refundAmountMinor\":300}],\"totalAmountMinor\":"    \
  "1800"
#define RESHIP_ITEMS                                                                                         \
  "\"strategy\":2,\"items\":[{\"sku\":\"SKU-1\",\"name\":\"Margherita\",\"quantity\":2}],"                   \
  "\"totalAmountMinor\":0"
#define VOUCHER "\"strategy\":3,\"nonProduct\":{\"kind\":1,\"amountMinor\":500},\"totalAmountMinor\":500"

static int seq;

/* The plugin on the test's endpoint; issuing_port: the fake issuing system's port (0: the
 * default URL, for tests that make no call). */
static void setup_fulfillment_calling(ctxt_world_t *w, int issuing_port) {
  snprintf(w->plugins, sizeof w->plugins,
           "[{\"name\": \"fulfillment\", \"settings\": {\"endpoint\": \"%s\", \"issuing_url\": "
           "\"http://127.0.0.1:%d/benefits\", \"backoff_ms\": 50, \"max_attempts\": 2}}]",
           w->endpoint, issuing_port ? issuing_port : 8025);
  /* one worker: feedback is decided in the order the test sends it */
  snprintf(w->endpoint_settings, sizeof w->endpoint_settings, "\"workers\": 1");
  seq = 0;
  ctxt_host_start(w, NULL);
}

static void setup_fulfillment(ctxt_world_t *w) { setup_fulfillment_calling(w, 0); }

static void send_message(ctxt_world_t *w, const char *type, const char *message) {
  char body[4096];
  snprintf(
      body, sizeof body,
      "{\"messageId\":\"00000000-0000-4000-8000-%012d\",\"messageType\":[\"urn:message:%s\"],\"message\":%s}",
      seq++, type, message);
  ctxt_amqp_publish(w->amqp, w->endpoint, "application/vnd.masstransit+json", body, NULL, NULL);
}

/* Waits until every message sent was handled and what it published left the outbox. */
static void settle(ctxt_world_t *w) {
  char sql[256];
  snprintf(sql, sizeof sql, "SELECT count(*) FROM ctxd.inbox WHERE endpoint = '%s'", w->endpoint);
  assert_int_equal(ctxt_pg_wait_long(w->pg, sql, seq, CTXT_EFFECT_MS), seq);
  assert_int_equal(ctxt_pg_wait_long(w->pg, "SELECT count(*) FROM ctxd.outbox", 0, CTXT_EFFECT_MS), 0);
}

static void approve(ctxt_world_t *w, const char *compensation, const char *plan) {
  char m[1024];
  snprintf(m, sizeof m,
           "{\"compensationId\":\"%s\",\"orderNumber\":\"SO-1\",\"customerId\":\"" CUSTOMER
           "\",%s,\"currency\":\"CNY\","
           "\"approvedBy\":\"boss\",\"approvedAt\":\"2026-05-01T09:00:00Z\"}",
           compensation, plan);
  send_message(w, "Ctxd.Compensation.Contracts.v1:CompensationApproved", m);
}

/* The fulfillment of a compensation: its id and the request id sent downstream. */
typedef struct {
  char id[64], request[64];
} ids_t;

static ids_t ids_of(ctxt_world_t *w, const char *compensation) {
  char sql[256];
  ids_t ids;
  snprintf(sql, sizeof sql, "SELECT id, request_id FROM fulfillment.orders WHERE compensation_id = '%s'",
           compensation);
  PGresult *r = PQexec(w->pg, sql);
  assert_int_equal(PQntuples(r), 1);
  snprintf(ids.id, sizeof ids.id, "%s", PQgetvalue(r, 0, 0));
  snprintf(ids.request, sizeof ids.request, "%s", PQgetvalue(r, 0, 1));
  PQclear(r);
  return ids;
}

/* Feedback of `type` for a fulfillment and request; `rest` holds the type's own members. */
static void feedback(ctxt_world_t *w, const char *type, const char *request_key, const ids_t *f,
                     const char *rest) {
  char m[1024];
  snprintf(m, sizeof m, "{\"%s\":\"%s\",\"fulfillmentId\":\"%s\",%s}", request_key, f->request, f->id, rest);
  send_message(w, type, m);
}

#define REFUND_COMPLETED(w, f, ref)                                                                          \
  feedback(w, "Ctxd.Payment.Contracts.v1:RefundCompleted", "refundId", f,                                    \
           "\"amountMinor\":1800,\"currency\":\"CNY\",\"paymentReference\":\"" ref "\","                     \
           "\"completedAt\":\"2026-05-01T09:05:00Z\"")
#define REFUND_FAILED(w, f)                                                                                  \
  feedback(w, "Ctxd.Payment.Contracts.v1:RefundFailed", "refundId", f,                                       \
           "\"reason\":\"card expired\",\"failedAt\":\"2026-05-01T09:05:00Z\"")
#define RESHIP_CREATED(w, f)                                                                                 \
  feedback(w, "Ctxd.Ordering.Contracts.v1:ReshipOrderCreated", "reshipId", f,                                \
           "\"orderNumber\":\"RS-1\",\"createdAt\":\"2026-05-01T09:10:00Z\"")
#define RESHIP_SHIPPED(w, f)                                                                                 \
  feedback(w, "Ctxd.Ordering.Contracts.v1:ReshipOrderShipped", "reshipId", f,                                \
           "\"orderNumber\":\"RS-1\",\"trackingNumber\":\"TN-1\",\"shippedAt\":\"2026-05-02T08:00:00Z\"")

static void case_resolved(ctxt_world_t *w, const char *biz_type, const char *biz_id, int outcome) {
  char m[512];
  snprintf(m, sizeof m,
           "{\"caseId\":\"ca000000-0000-4000-8000-%012d\",\"relatedBizType\":\"%s\",\"relatedBizId\":\"%s\","
           "\"outcome\":%d,"
           "\"agentId\":\"agent-7\",\"resolvedAt\":\"2026-05-03T12:00:00Z\"}",
           seq, biz_type, biz_id, outcome);
  send_message(w, "Ctxd.Case.Contracts.v1:CaseResolved", m);
}

static long pg_long(ctxt_world_t *w, const char *fmt, const char *arg) {
  char sql[1024];
  snprintf(sql, sizeof sql, fmt, arg);
  return ctxt_pg_long(w->pg, sql);
}

static long archived(ctxt_world_t *w, const char *type) {
  return pg_long(w, "SELECT count(*) FROM ctxd.outbox_archive WHERE message_type = '%s'", type);
}

static long status_is(ctxt_world_t *w, const char *compensation, const char *status) {
  char sql[512];
  snprintf(sql, sizeof sql,
           "SELECT count(*) FROM fulfillment.orders WHERE compensation_id = '%s' AND status = '%s'"
           " AND state->>'status' = '%s'",
           compensation, status, status);
  return ctxt_pg_long(w->pg, sql);
}

static void assert_nothing_failed(ctxt_world_t *w) {
  char q[128];
  snprintf(q, sizeof q, "%s_error", w->endpoint);
  assert_int_equal(ctxt_amqp_queue_count(w->amqp, q), 0);
}

/* Waits until the fulfillment of `compensation` has `status`. */
static void wait_status(ctxt_world_t *w, const char *compensation, const char *status) {
  char sql[512];
  snprintf(sql, sizeof sql,
           "SELECT count(*) FROM fulfillment.orders WHERE compensation_id = '%s' AND status = '%s'",
           compensation, status);
  assert_int_equal(ctxt_pg_wait_long(w->pg, sql, 1, CTXT_EFFECT_MS), 1);
}

static void non_product_calls_the_issuing_system(void **state) {
  ctxt_world_t *w = *state;
  ctxt_proc_t issuing;
  int port = ctxt_fakeprovider_start(&issuing);
  setup_fulfillment_calling(w, port);
  approve(w, CA, VOUCHER);
  approve(w, CA, VOUCHER); /* the same approval again */
  settle(w);
  wait_status(w, CA, "succeeded");
  /* one POST, keyed by the fulfillment, carrying the benefit, its currency and note */
  ids_t a = ids_of(w, CA);
  json_t *list = ctxt_fakeprovider_list(port);
  assert_int_equal(json_integer_value(json_object_get(list, "requests")), 1);
  json_t *m = json_array_get(json_object_get(list, "messages"), 0);
  assert_string_equal(json_string_value(json_object_get(m, "key")), a.id);
  json_t *body = json_loads(json_string_value(json_object_get(m, "body")), 0, NULL);
  assert_string_equal(json_string_value(json_object_get(body, "benefit")), "voucher");
  assert_int_equal(json_integer_value(json_object_get(body, "amount")), 500);
  assert_string_equal(json_string_value(json_object_get(body, "currency")), "CNY");
  json_decref(body);
  json_decref(list);
  /* issued when the host sent the answer (its envelope's sentTime, the same in a redelivered
   * copy), not when the handler happened to run */
  assert_int_equal(
      ctxt_pg_long(
          w->pg,
          "SELECT count(*) FROM fulfillment.orders o JOIN ctxd.outbox_archive a"
          " ON a.message_type LIKE '%CallCompleted' AND a.body::json->'message'->>'IdempotencyKey' = o.id"
          " WHERE o.compensation_id = '" CA "' AND (o.state->'benefit_feedback'->>'issued_at')::bigint ="
          " floor(extract(epoch FROM (a.body::json->>'sentTime')::timestamptz) * 1000)::bigint"),
      1);
  /* nothing announced before the answer; the success names what was issued */
  assert_int_equal(ctxt_pg_wait_long(w->pg, "SELECT count(*) FROM ctxd.outbox", 0, CTXT_EFFECT_MS), 0);
  assert_int_equal(archived(w, FNS "FulfillmentProcessing"), 0);
  assert_int_equal(archived(w, FNS "FulfillmentSucceeded"), 1);
  assert_int_equal(
      ctxt_pg_long(w->pg, "SELECT count(*) FROM ctxd.outbox_archive WHERE message_type LIKE '%Succeeded'"
                          " AND body::json->'message'->>'CompensationId' = '" CA "'"
                          " AND body::json->'message'->>'Strategy' = '3'"
                          " AND body::json->'message'->>'Reference' = 'benefit-1'"),
      1);

  /* the issuing system refuses (a business refusal, 422): the exception outcome, a pending
   * communication, after one POST */
  ctxt_fakeprovider_control(port, "refuse", 1);
  approve(w, CB, VOUCHER);
  wait_status(w, CB, "failed");
  assert_int_equal(ctxt_pg_wait_long(w->pg, "SELECT count(*) FROM ctxd.outbox", 0, CTXT_EFFECT_MS), 0);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(*) FROM fulfillment.pending_communications"
                                       " WHERE resolved_at IS NULL AND reason = 'the issuing system answered"
                                       " HTTP 422: the test asked for a refusal'"),
                   1);
  assert_int_equal(
      ctxt_pg_long(w->pg,
                   "SELECT count(*) FROM ctxd.outbox_archive WHERE message_type LIKE '%FulfillmentFailed'"
                   " AND body::json->'message'->>'CompensationId' = '" CB "'"),
      1);
  list = ctxt_fakeprovider_list(port);
  assert_int_equal(json_integer_value(json_object_get(list, "requests")), 2);
  json_decref(list);

  /* no answer (the issuing system took it and the connection dropped): tried again with the
   * same key, which the issuing system recognises, so one benefit is issued */
  ctxt_fakeprovider_control(port, "drop", 1);
  approve(w, CC, VOUCHER);
  wait_status(w, CC, "succeeded");
  ids_t c = ids_of(w, CC);
  list = ctxt_fakeprovider_list(port);
  json_t *issued = json_array_get(json_object_get(list, "messages"), 1);
  assert_string_equal(json_string_value(json_object_get(issued, "key")), c.id);
  assert_int_equal(json_integer_value(json_object_get(issued, "hits")), 2);
  json_decref(list);

  /* the issuing system is unavailable for a moment (503): no refusal, tried again with the
   * same key, issued once, succeeded */
  ctxt_fakeprovider_fail(port, 503, 1);
  approve(w, CD, VOUCHER);
  wait_status(w, CD, "succeeded");
  ids_t dd = ids_of(w, CD);
  list = ctxt_fakeprovider_list(port);
  assert_int_equal(json_integer_value(json_object_get(list, "requests")), 6); /* 1 + 1 + 2 + 2 */
  json_t *again = json_array_get(json_object_get(list, "messages"), 2);
  assert_string_equal(json_string_value(json_object_get(again, "key")), dd.id);
  assert_int_equal(json_integer_value(json_object_get(again, "hits")), 1); /* the 503 took nothing */
  json_decref(list);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(*) FROM fulfillment.pending_communications"
                                       " WHERE compensation_id = '" CD "'"),
                   0);
  ctxt_host_stop(w, SIGTERM);
  ctxt_proc_free(&issuing);
  assert_nothing_failed(w);
}

/* A partial refund, or one in another currency, is no success: the fulfillment fails with a
 * pending communication. */
static void refund_for_another_amount_fails(void **state) {
  ctxt_world_t *w = *state;
  setup_fulfillment(w);
  approve(w, CA, REFUND_ITEMS);
  settle(w);
  ids_t f = ids_of(w, CA);
  feedback(w, "Ctxd.Payment.Contracts.v1:RefundCompleted", "refundId", &f,
           "\"amountMinor\":100,\"currency\":\"CNY\",\"paymentReference\":\"PAY-2\","
           "\"completedAt\":\"2026-05-01T09:05:00Z\"");
  settle(w);
  assert_int_equal(status_is(w, CA, "failed"), 1);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(*) FROM fulfillment.pending_communications"
                                       " WHERE reason = 'refund PAY-2 paid 100 of the 1800 requested'"),
                   1);
  assert_int_equal(archived(w, FNS "FulfillmentFailed"), 1);
  assert_int_equal(archived(w, FNS "FulfillmentSucceeded"), 0);

  /* a payment reference of 64 CJK characters (192 bytes: the contract's 64 characters, more
   * than the 64 bytes the fulfillment keeps) fails it with a record too, never a log line */
  approve(w, CB, REFUND_ITEMS);
  settle(w);
  ids_t b = ids_of(w, CB);
  char rest[512] = "\"amountMinor\":1800,\"currency\":\"CNY\",\"paymentReference\":\"";
  for (int i = 0; i < 64; i++) strcat(rest, "\xe9\x80\x80");
  strcat(rest, "\",\"completedAt\":\"2026-05-01T09:05:00Z\"");
  feedback(w, "Ctxd.Payment.Contracts.v1:RefundCompleted", "refundId", &b, rest);
  settle(w);
  assert_int_equal(status_is(w, CB, "failed"), 1);
  assert_int_equal(ctxt_pg_long(w->pg,
                                "SELECT count(*) FROM fulfillment.pending_communications WHERE"
                                " reason = 'refund_completed: payment reference is longer than 64 bytes'"),
                   1);
  assert_int_equal(archived(w, FNS "FulfillmentFailed"), 2);

  /* the amount requested, in another currency than requested (CNY) */
  approve(w, CC, REFUND_ITEMS);
  settle(w);
  ids_t c = ids_of(w, CC);
  feedback(w, "Ctxd.Payment.Contracts.v1:RefundCompleted", "refundId", &c,
           "\"amountMinor\":1800,\"currency\":\"USD\",\"paymentReference\":\"PAY-4\","
           "\"completedAt\":\"2026-05-01T09:05:00Z\"");
  settle(w);
  assert_int_equal(status_is(w, CC, "failed"), 1);
  assert_int_equal(ctxt_pg_long(w->pg,
                                "SELECT count(*) FROM fulfillment.pending_communications"
                                " WHERE reason = 'refund PAY-4 paid 1800 USD, the request was 1800 CNY'"),
                   1);
  assert_int_equal(archived(w, FNS "FulfillmentSucceeded"), 0);
  ctxt_host_stop(w, SIGTERM);
  assert_nothing_failed(w);
}

/* 處理異常: an approval whose plan cannot be carried out (a refund line without an amount)
 * is created failed with a pending communication, and announced; nothing goes to _error. */
static void plan_that_cannot_be_carried_out_fails_with_a_record(void **state) {
  ctxt_world_t *w = *state;
  setup_fulfillment(w);
  approve(w, CA,
          "\"strategy\":1,\"items\":[{\"sku\":\"SKU-1\",\"name\":\"Margherita\",\"quantity\":2}],"
          "\"totalAmountMinor\":0");
  settle(w);
  assert_int_equal(status_is(w, CA, "failed"), 1);
  assert_int_equal(ctxt_pg_long(w->pg,
                                "SELECT count(*) FROM fulfillment.pending_communications WHERE reason ="
                                " 'the plan cannot be carried out: item 1: amount must be positive, got 0'"),
                   1);
  assert_int_equal(archived(w, FNS "FulfillmentFailed"), 1);
  assert_int_equal(archived(w, FNS "RefundRequested"), 0);
  ctxt_host_stop(w, SIGTERM);
  assert_nothing_failed(w);
}

static void refund_succeeds_on_the_payment_result(void **state) {
  ctxt_world_t *w = *state;
  setup_fulfillment(w);
  approve(w, CA, REFUND_ITEMS);
  settle(w);
  ids_t f = ids_of(w, CA), wrong = f;
  assert_int_equal(status_is(w, CA, "processing"), 1);
  /* the request to the payment system: its own id, the total, the currency */
  assert_int_equal(
      pg_long(
          w,
          "SELECT count(*) FROM ctxd.outbox_archive WHERE message_type LIKE '%%RefundRequested'"
          " AND body::json->'message'->>'RefundId' = '%s' AND body::json->'message'->>'AmountMinor' = '1800'"
          " AND body::json->'message'->>'Currency' = 'CNY'",
          f.request),
      1);
  assert_int_equal(
      ctxt_pg_long(w->pg, "SELECT count(*) FROM ctxd.outbox_archive WHERE message_type LIKE '%Processing'"
                          " AND body::json->'message'->>'WaitingFor' = '1'"),
      1);

  snprintf(wrong.request, sizeof wrong.request, OTHER);
  REFUND_COMPLETED(w, &wrong, "PAY-0"); /* another refund's result */
  settle(w);
  assert_int_equal(status_is(w, CA, "processing"), 1);
  REFUND_COMPLETED(w, &f, "PAY-1");
  REFUND_COMPLETED(w, &f, "PAY-1"); /* twice */
  REFUND_FAILED(w, &f);             /* late */
  settle(w);
  assert_int_equal(status_is(w, CA, "succeeded"), 1);
  assert_int_equal(archived(w, FNS "RefundRequested"), 1);
  assert_int_equal(archived(w, FNS "FulfillmentProcessing"), 1);
  assert_int_equal(archived(w, FNS "FulfillmentSucceeded"), 1);
  assert_int_equal(archived(w, FNS "FulfillmentFailed"), 0);
  assert_int_equal(
      ctxt_pg_long(w->pg, "SELECT count(*) FROM ctxd.outbox_archive WHERE message_type LIKE '%Succeeded'"
                          " AND body::json->'message'->>'Reference' = 'PAY-1'"),
      1);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(*) FROM fulfillment.pending_communications"), 0);
  ctxt_host_stop(w, SIGTERM);
  assert_nothing_failed(w);
}

static void reship_succeeds_once_shipped(void **state) {
  ctxt_world_t *w = *state;
  setup_fulfillment(w);
  approve(w, CA, RESHIP_ITEMS);
  approve(w, CB, RESHIP_ITEMS);
  settle(w);
  ids_t a = ids_of(w, CA), b = ids_of(w, CB);
  assert_int_equal(
      pg_long(w,
              "SELECT count(*) FROM ctxd.outbox_archive WHERE message_type LIKE '%%ReshipOrderRequested'"
              " AND body::json->'message'->>'ReshipId' = '%s'"
              " AND body::json->'message'->'Items'->0->>'Name' = 'Margherita'",
              a.request),
      1);
  assert_int_equal(
      ctxt_pg_long(w->pg, "SELECT count(*) FROM ctxd.outbox_archive WHERE message_type LIKE '%Processing'"
                          " AND body::json->'message'->>'WaitingFor' = '2'"),
      2);

  RESHIP_CREATED(w, &a); /* in order: created, then shipped */
  settle(w);
  assert_int_equal(status_is(w, CA, "processing"), 1);
  assert_int_equal(
      pg_long(w, "SELECT count(*) FROM fulfillment.orders WHERE state->'reship_feedback'->>'order_id' = '%s'",
              "RS-1"),
      1);
  RESHIP_SHIPPED(w, &a);
  RESHIP_CREATED(w, &a); /* duplicates */
  RESHIP_SHIPPED(w, &a);
  RESHIP_SHIPPED(w, &b); /* reordered: shipped reported first */
  RESHIP_CREATED(w, &b);
  REFUND_COMPLETED(w, &b, "PAY-9"); /* refund feedback on a reship */
  settle(w);
  assert_int_equal(status_is(w, CA, "succeeded"), 1);
  assert_int_equal(status_is(w, CB, "succeeded"), 1);
  assert_int_equal(archived(w, FNS "ReshipOrderRequested"), 2);
  assert_int_equal(archived(w, FNS "FulfillmentProcessing"), 2);
  assert_int_equal(archived(w, FNS "FulfillmentSucceeded"), 2);
  assert_int_equal(
      ctxt_pg_long(w->pg, "SELECT count(*) FROM ctxd.outbox_archive WHERE message_type LIKE '%Succeeded'"
                          " AND body::json->'message'->>'Reference' = 'RS-1'"),
      2);
  ctxt_host_stop(w, SIGTERM);
  assert_nothing_failed(w);
}

static void failed_refund_is_resolved_by_a_case(void **state) {
  ctxt_world_t *w = *state;
  setup_fulfillment(w);
  approve(w, CA, REFUND_ITEMS);
  settle(w);
  ids_t f = ids_of(w, CA);
  REFUND_FAILED(w, &f);
  settle(w);
  assert_int_equal(status_is(w, CA, "failed"), 1);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(*) FROM fulfillment.pending_communications"
                                       " WHERE reason = 'card expired' AND resolved_at IS NULL"),
                   1);
  /* FulfillmentFailed names the record staff follow up */
  assert_int_equal(
      ctxt_pg_long(w->pg,
                   "SELECT count(*) FROM ctxd.outbox_archive a JOIN fulfillment.pending_communications p"
                   " ON a.body::json->'message'->>'PendingCommunicationId' = p.id::text"
                   " WHERE a.message_type LIKE '%FulfillmentFailed'"
                   " AND a.body::json->'message'->>'Reason' = 'card expired'"),
      1);

  REFUND_FAILED(w, &f);                      /* twice */
  REFUND_COMPLETED(w, &f, "PAY-1");          /* late: a case decides now */
  case_resolved(w, "compensation", f.id, 1); /* about something else */
  case_resolved(w, "fulfillment", OTHER, 1); /* an unknown fulfillment */
  settle(w);
  assert_int_equal(status_is(w, CA, "failed"), 1);
  case_resolved(w, "fulfillment", f.id, 1);
  case_resolved(w, "fulfillment", f.id, 1); /* twice */
  settle(w);
  assert_int_equal(status_is(w, CA, "succeeded"), 1);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(*) FROM fulfillment.pending_communications"
                                       " WHERE resolved_at IS NOT NULL AND resolved_by = 'agent-7'"),
                   1);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(*) FROM fulfillment.pending_communications"), 1);
  assert_int_equal(archived(w, FNS "RefundRequested"), 1);
  assert_int_equal(archived(w, FNS "FulfillmentProcessing"), 1);
  assert_int_equal(archived(w, FNS "FulfillmentFailed"), 1);
  assert_int_equal(archived(w, FNS "FulfillmentSucceeded"), 1);

  /* a case closed without finishing gives the failure up: abandoned for good, its record
   * closed, FulfillmentAbandoned. A finished resolution after that changes nothing: only a
   * duplicate or a forged one can come, as the case context opens no other case about a
   * fulfillment while one is open or once it is given up (test_aftersales_cases) */
  approve(w, CB, REFUND_ITEMS);
  settle(w);
  ids_t b = ids_of(w, CB);
  REFUND_FAILED(w, &b);
  case_resolved(w, "fulfillment", b.id, 2); /* closed */
  case_resolved(w, "fulfillment", b.id, 3); /* rejected, after: a duplicate */
  case_resolved(w, "fulfillment", b.id, 1); /* finished, after: not from the case context */
  settle(w);
  assert_int_equal(status_is(w, CB, "abandoned"), 1);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(*) FROM fulfillment.pending_communications"
                                       " WHERE compensation_id = '" CB "' AND resolved_at IS NOT NULL"
                                       " AND resolution LIKE 'case % closed without finishing'"),
                   1);
  assert_int_equal(archived(w, FNS "FulfillmentAbandoned"), 1);
  assert_int_equal(archived(w, FNS "FulfillmentSucceeded"), 1);
  ctxt_host_stop(w, SIGTERM);
  assert_nothing_failed(w);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(non_product_calls_the_issuing_system, ctxt_world_setup,
                                      ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(refund_for_another_amount_fails, ctxt_world_setup, ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(plan_that_cannot_be_carried_out_fails_with_a_record, ctxt_world_setup,
                                      ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(refund_succeeds_on_the_payment_result, ctxt_world_setup,
                                      ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(reship_succeeds_once_shipped, ctxt_world_setup, ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(failed_refund_is_resolved_by_a_case, ctxt_world_setup,
                                      ctxt_world_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
