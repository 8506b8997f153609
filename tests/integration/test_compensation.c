/* Compensation against the real servers: every command answered at the response address
 * (accepted with status and version, rejected with the reason and the current status); a
 * Modify writes only the columns it changed (a trigger per column records which ones an
 * UPDATE names); the fulfillment events move the order (processing -> Compensating, failed
 * -> PendingCommunication, succeeded -> Finished) and repeated or stale ones change nothing. */
#include "hostfixture.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define C1 "c0000000-0000-4000-8000-000000000001"
#define C2 "c0000000-0000-4000-8000-000000000002"
#define C3 "c0000000-0000-4000-8000-000000000003"
#define CUSTOMER "c5000000-0000-4000-8000-000000000001"
#define F1 "f0000000-0000-4000-8000-000000000001"
#define F2 "f0000000-0000-4000-8000-000000000002"
#define NS "Ctxd.Compensation.Contracts.v1:"
#define FNS "Ctxd.Fulfillment.Contracts.v1:"
#define MAX_REPLIES 32

static int seq, sent;
static char reply[96];

static void setup_compensation(ctxt_world_t *w) {
  snprintf(w->plugins, sizeof w->plugins,
           "[{\"name\": \"compensation\", \"settings\": {\"endpoint\": \"%s\"}}]", w->endpoint);
  /* one worker: the commands of a test are decided in the order they were sent */
  snprintf(w->endpoint_settings, sizeof w->endpoint_settings, "\"workers\": 1");
  snprintf(reply, sizeof reply, "%s-reply", w->endpoint);
  amqp_queue_declare(w->amqp, 1, amqp_cstring_bytes(reply), 0, 0, 0, 1, amqp_empty_table);
  amqp_exchange_declare(w->amqp, 1, amqp_cstring_bytes(reply), amqp_cstring_bytes("fanout"), 0, 1, 0, 0,
                        amqp_empty_table);
  amqp_queue_bind(w->amqp, 1, amqp_cstring_bytes(reply), amqp_cstring_bytes(reply), amqp_empty_bytes,
                  amqp_empty_table);
  assert_int_equal(amqp_get_rpc_reply(w->amqp).reply_type, AMQP_RESPONSE_NORMAL);
  ctxt_host_start(w, NULL);
}

/* Sends a message of `type` to the endpoint; a request (with_reply) carries requestId = its
 * sequence number and the response address. Returns the sequence number. */
static int send_message(ctxt_world_t *w, const char *type, const char *message, int with_reply) {
  char body[4096], request[256] = "";
  if (with_reply)
    snprintf(
        request, sizeof request,
        "\"requestId\":\"00000000-0000-4000-9000-%012d\",\"responseAddress\":\"rabbitmq://localhost/%s\",",
        seq, reply);
  snprintf(body, sizeof body,
           "{\"messageId\":\"00000000-0000-4000-8000-%012d\",%s\"messageType\":[\"urn:message:%s\"],"
           "\"message\":%s}",
           seq, request, type, message);
  ctxt_amqp_publish(w->amqp, w->endpoint, "application/vnd.masstransit+json", body, NULL, NULL);
  sent++;
  return seq++;
}

static int command(ctxt_world_t *w, const char *type, const char *message) {
  char full[128];
  snprintf(full, sizeof full, NS "%s", type);
  return send_message(w, full, message, 1);
}

static void fulfillment_event(ctxt_world_t *w, const char *type, const char *message) {
  char full[128];
  snprintf(full, sizeof full, FNS "%s", type);
  send_message(w, full, message, 0);
}

static void apply_refund(ctxt_world_t *w, const char *id) {
  char m[1024];
  snprintf(
      m, sizeof m,
      "{\"compensationId\":\"%s\",\"orderNumber\":\"SO-1\",\"customerId\":\"" CUSTOMER "\",\"channel\":2,"
      "\"appliedBy\":\"staff-1\",\"reason\":\"Pizza arrived cold\",\"strategy\":1,\"items\":["
      "{\"sku\":\"SKU-1\",\"name\":\"Margherita\",\"quantity\":2,\"refundAmountMinor\":1500},"
      "{\"sku\":\"SKU-2\",\"name\":\"Cola\",\"quantity\":1,\"refundAmountMinor\":300}],\"currency\":\"CNY\"}",
      id);
  command(w, "ApplyCompensation", m);
}

static void simple(ctxt_world_t *w, const char *type, const char *id, const char *extra) {
  char m[512];
  snprintf(m, sizeof m, "{\"compensationId\":\"%s\"%s}", id, extra);
  command(w, type, m);
}

/* Waits until every message sent so far was handled (its inbox row committed). */
static void wait_handled(ctxt_world_t *w) {
  char sql[256];
  snprintf(sql, sizeof sql, "SELECT count(*) FROM ctxd.inbox WHERE endpoint = '%s'", w->endpoint);
  assert_int_equal(ctxt_pg_wait_long(w->pg, sql, sent, CTXT_EFFECT_MS), sent);
}

/* Takes n replies from the reply queue into replies[requestId]. */
static void take_replies(ctxt_world_t *w, int n, char replies[][2048]) {
  assert_int_equal(ctxt_amqp_wait_count(w->amqp, reply, n, CTXT_EFFECT_MS), n);
  for (int i = 0; i < n; i++) {
    char body[2048], hv[8];
    assert_int_equal(ctxt_amqp_get(w->amqp, reply, body, sizeof body, NULL, hv, sizeof hv), 1);
    char *r = strstr(body, "\"requestId\":\"00000000-0000-4000-9000-");
    assert_non_null(r);
    int at = atoi(r + strlen("\"requestId\":\"00000000-0000-4000-9000-"));
    assert_true(at >= 0 && at < MAX_REPLIES);
    snprintf(replies[at], 2048, "%s", body);
  }
  assert_int_equal(ctxt_amqp_queue_count(w->amqp, reply), 0);
}

static void assert_reply(const char *body, const char *type, const char *fragment) {
  if (strstr(body, type) == NULL || strstr(body, fragment) == NULL)
    fail_msg("reply %s: want %s with %s", body, type, fragment);
}

static long pg_long(ctxt_world_t *w, const char *fmt, const char *arg) {
  char sql[512];
  snprintf(sql, sizeof sql, fmt, arg);
  return ctxt_pg_long(w->pg, sql);
}

static long archived(ctxt_world_t *w, const char *type) {
  return pg_long(w, "SELECT count(*) FROM ctxd.outbox_archive WHERE message_type = '%s'", type);
}

static void commands_answer_at_the_response_address(void **state) {
  ctxt_world_t *w = *state;
  static char replies[MAX_REPLIES][2048];
  seq = sent = 0;
  setup_compensation(w);
  apply_refund(w, C1);                                                               /* 0 */
  simple(w, "SubmitCompensation", C1, ",\"submittedBy\":\"staff-1\"");               /* 1 */
  simple(w, "ApproveCompensation", C1, ",\"approvedBy\":\"boss\"");                  /* 2 */
  simple(w, "ApproveCompensation", C1, ",\"approvedBy\":\"boss\"");                  /* 3: approved already */
  simple(w, "SubmitCompensation", C2, ",\"submittedBy\":\"staff-1\"");               /* 4: no such order */
  apply_refund(w, C1);                                                               /* 5: exists */
  apply_refund(w, C3);                                                               /* 6 */
  simple(w, "RejectCompensation", C3, ",\"rejectedBy\":\"boss\",\"reason\":\"no\""); /* 7: not submitted */
  simple(w, "SubmitCompensation", C3, ",\"submittedBy\":\"staff-1\"");               /* 8 */
  simple(w, "RejectCompensation", C3, ",\"rejectedBy\":\"boss\",\"reason\":\"too much\""); /* 9 */
  command(w, "ModifyCompensation", /* 10: a voucher instead */
          "{\"compensationId\":\"" C3
          "\",\"modifiedBy\":\"staff-1\",\"reason\":\"Pizza arrived cold\",\"strategy\":3,"
          "\"nonProduct\":{\"kind\":1,\"amountMinor\":500},\"currency\":\"CNY\"}");
  command(w, "ModifyCompensation", /* 11: a refund without amounts */
          "{\"compensationId\":\"" C3 "\",\"modifiedBy\":\"staff-1\",\"reason\":\"x\",\"strategy\":1,"
          "\"items\":[{\"sku\":\"SKU-1\",\"name\":\"Margherita\",\"quantity\":1}],\"currency\":\"CNY\"}");
  simple(w, "TerminateCompensation", C3,
         ",\"terminatedBy\":\"staff-1\",\"reason\":\"customer withdrew\""); /* 12 */
  simple(w, "TerminateCompensation", C1,
         ",\"terminatedBy\":\"staff-1\",\"reason\":\"late\""); /* 13: approved */
  take_replies(w, 14, replies);
  wait_handled(w);

  assert_reply(replies[0], "CompensationCommandAccepted", "\"Status\":1,\"Version\":1");
  assert_reply(replies[1], "CompensationCommandAccepted", "\"Status\":2,\"Version\":2");
  assert_reply(replies[2], "CompensationCommandAccepted", "\"Status\":3,\"Version\":3");
  assert_reply(replies[3], "CompensationCommandRejected", "\"Reason\":2");
  assert_reply(replies[3], "cannot approve a compensation order that is approved", "\"Status\":3");
  assert_reply(replies[4], "CompensationCommandRejected", "\"Reason\":1");
  assert_null(strstr(replies[4], "\"Status\""));
  assert_reply(replies[5], "CompensationCommandRejected", "\"Reason\":4");
  assert_reply(replies[6], "CompensationCommandAccepted", "\"Status\":1,\"Version\":1");
  assert_reply(replies[7], "CompensationCommandRejected", "\"Status\":1");
  assert_reply(replies[7], "cannot reject a compensation order that is applied", "\"Reason\":2");
  assert_reply(replies[8], "CompensationCommandAccepted", "\"Status\":2,\"Version\":2");
  assert_reply(replies[9], "CompensationCommandAccepted", "\"Status\":4,\"Version\":3");
  assert_reply(replies[10], "CompensationCommandAccepted", "\"Status\":4,\"Version\":4");
  assert_reply(replies[11], "CompensationCommandRejected", "\"Reason\":3");
  assert_reply(replies[11], "amount must be positive", "\"Status\":4");
  assert_reply(replies[12], "CompensationCommandAccepted", "\"Status\":5,\"Version\":5");
  assert_reply(replies[13], "CompensationCommandRejected",
               "cannot terminate a compensation order that is approved");

  assert_int_equal(ctxt_pg_wait_long(w->pg, "SELECT count(*) FROM ctxd.outbox", 0, CTXT_EFFECT_MS), 0);
  ctxt_host_stop(w, SIGTERM);
  assert_int_equal(pg_long(w,
                           "SELECT count(*) FROM compensation.orders WHERE id = '%s' AND status = 'approved'"
                           " AND version = 3 AND total_amount = 1800 AND reviewer = 'boss'",
                           C1),
                   1);
  assert_int_equal(
      pg_long(w,
              "SELECT count(*) FROM compensation.orders WHERE id = '%s' AND status = 'terminated'"
              " AND status_reason = 'customer withdrew' AND strategy_kind = 'non_product'"
              " AND total_amount = 500",
              C3),
      1);
  /* one approval, with what Fulfillment needs: lines with names and amounts, the currency */
  assert_int_equal(archived(w, NS "CompensationApproved"), 1);
  assert_int_equal(
      ctxt_pg_long(w->pg,
                   "SELECT count(*) FROM ctxd.outbox_archive WHERE message_type LIKE '%CompensationApproved'"
                   " AND body::json->'message'->>'TotalAmountMinor' = '1800'"
                   " AND body::json->'message'->>'Currency' = 'CNY'"
                   " AND body::json->'message'->'Items'->0->>'Name' = 'Margherita'"
                   " AND body::json->'message'->>'ApprovedBy' = 'boss'"),
      1);
  /* status changes: C1 applied, submitted, approved; C3 applied, submitted, rejected, terminated */
  assert_int_equal(archived(w, NS "CompensationStatusChanged"), 7);
  assert_int_equal(
      ctxt_pg_long(w->pg, "SELECT count(*) FROM ctxd.outbox_archive WHERE message_type LIKE '%StatusChanged'"
                          " AND body::json->'message'->>'OldStatus' IS NULL"),
      2);
  assert_int_equal(
      ctxt_pg_long(w->pg, "SELECT count(*) FROM ctxd.outbox_archive WHERE message_type LIKE '%StatusChanged'"
                          " AND body::json->'message'->>'NewStatus' = '4'"
                          " AND body::json->'message'->>'Reason' = 'too much'"),
      1);
}

static void modify_writes_only_changed_columns(void **state) {
  ctxt_world_t *w = *state;
  static char replies[MAX_REPLIES][2048];
  seq = sent = 0;
  setup_compensation(w);
  apply_refund(w, C1);
  wait_handled(w);
  ctxt_trace_updates(w->pg, "compensation", "orders");
  /* a column the Modify does not change, set behind the plugin's back: it must survive */
  PQclear(PQexec(w->pg, "UPDATE compensation.orders SET applicant = 'set-by-sql'"));
  PQclear(PQexec(w->pg, "TRUNCATE public.touched"));

  /* the same plan, another reason: one domain field changed */
  command(w, "ModifyCompensation",
          "{\"compensationId\":\"" C1
          "\",\"modifiedBy\":\"staff-1\",\"reason\":\"Pizza arrived cold and late\",\"strategy\":1,"
          "\"items\":[{\"sku\":\"SKU-1\",\"name\":\"Margherita\",\"quantity\":2,\"refundAmountMinor\":1500},"
          "{\"sku\":\"SKU-2\",\"name\":\"Cola\",\"quantity\":1,\"refundAmountMinor\":300}],\"currency\":"
          "\"CNY\"}");
  wait_handled(w);
  ctxt_assert_touched(w->pg, "reason,updated_at,version");
  assert_int_equal(pg_long(w,
                           "SELECT count(*) FROM compensation.orders WHERE applicant = '%s' AND version = 2"
                           " AND reason = 'Pizza arrived cold and late'",
                           "set-by-sql"),
                   1);

  /* the same reason, another amount: the plan and its total */
  command(w, "ModifyCompensation",
          "{\"compensationId\":\"" C1
          "\",\"modifiedBy\":\"staff-1\",\"reason\":\"Pizza arrived cold and late\",\"strategy\":1,"
          "\"items\":[{\"sku\":\"SKU-1\",\"name\":\"Margherita\",\"quantity\":2,\"refundAmountMinor\":1000},"
          "{\"sku\":\"SKU-2\",\"name\":\"Cola\",\"quantity\":1,\"refundAmountMinor\":300}],\"currency\":"
          "\"CNY\"}");
  wait_handled(w);
  ctxt_assert_touched(w->pg, "strategy_detail,total_amount,updated_at,version");

  /* nothing different: nothing written, still accepted */
  command(w, "ModifyCompensation",
          "{\"compensationId\":\"" C1
          "\",\"modifiedBy\":\"staff-1\",\"reason\":\"Pizza arrived cold and late\",\"strategy\":1,"
          "\"items\":[{\"sku\":\"SKU-1\",\"name\":\"Margherita\",\"quantity\":2,\"refundAmountMinor\":1000},"
          "{\"sku\":\"SKU-2\",\"name\":\"Cola\",\"quantity\":1,\"refundAmountMinor\":300}],\"currency\":"
          "\"CNY\"}");
  wait_handled(w);
  ctxt_assert_touched(w->pg, "");

  /* submitting: the status (its reason is "" already) */
  simple(w, "SubmitCompensation", C1, ",\"submittedBy\":\"staff-1\"");
  wait_handled(w);
  ctxt_assert_touched(w->pg, "status,updated_at,version");

  take_replies(w, 5, replies);
  assert_reply(replies[3], "CompensationCommandAccepted", "\"Status\":1,\"Version\":3");
  assert_reply(replies[4], "CompensationCommandAccepted", "\"Status\":2,\"Version\":4");
  assert_int_equal(
      pg_long(w,
              "SELECT count(*) FROM compensation.orders WHERE applicant = '%s' AND total_amount = 1300"
              " AND version = 4",
              "set-by-sql"),
      1);
  ctxt_host_stop(w, SIGTERM);
}

static void fulfillment_message(ctxt_world_t *w, const char *type, const char *fulfillment,
                                const char *extra) {
  char m[512];
  snprintf(m, sizeof m, "{\"fulfillmentId\":\"%s\",\"compensationId\":\"" C1 "\",\"strategy\":1%s}",
           fulfillment, extra);
  fulfillment_event(w, type, m);
}

#define PROCESSING ",\"waitingFor\":1,\"occurredAt\":\"2026-05-01T10:00:00Z\""
#define FAILED                                                                                               \
  ",\"reason\":\"card expired\",\"pendingCommunicationId\":\"a0000000-0000-4000-8000-000000000001\","        \
  "\"failedAt\":\"2026-05-01T10:01:00Z\""
#define SUCCEEDED ",\"reference\":\"PAY-1\",\"succeededAt\":\"2026-05-01T10:02:00Z\""

static const char *status_of_c1(ctxt_world_t *w, char *buf, size_t len) {
  PGresult *r =
      PQexec(w->pg, "SELECT status || '/' || version || '/' || status_reason || '/' || fulfillment_id"
                    " FROM compensation.orders WHERE id = '" C1 "'");
  snprintf(buf, len, "%s", PQntuples(r) == 1 ? PQgetvalue(r, 0, 0) : "");
  PQclear(r);
  return buf;
}

static void reacts_to_fulfillment_events(void **state) {
  ctxt_world_t *w = *state;
  static char replies[MAX_REPLIES][2048];
  char s[256];
  seq = sent = 0;
  setup_compensation(w);
  apply_refund(w, C1);
  simple(w, "SubmitCompensation", C1, ",\"submittedBy\":\"staff-1\"");
  simple(w, "ApproveCompensation", C1, ",\"approvedBy\":\"boss\"");
  wait_handled(w);

  fulfillment_message(w, "FulfillmentProcessing", F1, PROCESSING);
  wait_handled(w);
  assert_string_equal(status_of_c1(w, s, sizeof s), "compensating/4//" F1);
  fulfillment_message(w, "FulfillmentProcessing", F1, PROCESSING); /* twice */
  fulfillment_message(w, "FulfillmentSucceeded", F2, SUCCEEDED);   /* another fulfillment's */
  wait_handled(w);
  assert_string_equal(status_of_c1(w, s, sizeof s), "compensating/4//" F1);

  fulfillment_message(w, "FulfillmentFailed", F1, FAILED);
  wait_handled(w);
  assert_string_equal(status_of_c1(w, s, sizeof s), "pending_communication/5/card expired/" F1);
  /* its case settles it: terminating under it would end with a compensated customer on a
   * terminated order */
  simple(w, "TerminateCompensation", C1, ",\"terminatedBy\":\"staff-1\",\"reason\":\"gave up\"");
  fulfillment_message(w, "FulfillmentFailed", F1, FAILED);         /* twice */
  fulfillment_message(w, "FulfillmentProcessing", F1, PROCESSING); /* late */
  wait_handled(w);
  assert_string_equal(status_of_c1(w, s, sizeof s), "pending_communication/5/card expired/" F1);

  fulfillment_message(w, "FulfillmentSucceeded", F1, SUCCEEDED); /* a case resolved it */
  wait_handled(w);
  assert_string_equal(status_of_c1(w, s, sizeof s), "finished/6//" F1);
  fulfillment_message(w, "FulfillmentSucceeded", F1, SUCCEEDED);
  fulfillment_message(w, "FulfillmentFailed", F1, FAILED);
  fulfillment_message(w, "FulfillmentProcessing", F1, PROCESSING);
  wait_handled(w);
  assert_string_equal(status_of_c1(w, s, sizeof s), "finished/6//" F1);

  /* only the commands were answered; nothing failed */
  take_replies(w, 4, replies);
  assert_reply(replies[7], "CompensationCommandRejected", /* the 8th message sent */
               "cannot terminate a compensation order that is pending_communication");
  assert_int_equal(ctxt_pg_wait_long(w->pg, "SELECT count(*) FROM ctxd.outbox", 0, CTXT_EFFECT_MS), 0);
  ctxt_host_stop(w, SIGTERM);
  char error_queue[128];
  snprintf(error_queue, sizeof error_queue, "%s_error", w->endpoint);
  assert_int_equal(ctxt_amqp_queue_count(w->amqp, error_queue), 0);
  /* applied, submitted, approved, compensating, pending communication, finished */
  assert_int_equal(archived(w, NS "CompensationStatusChanged"), 6);
  assert_int_equal(
      ctxt_pg_long(w->pg, "SELECT count(*) FROM ctxd.outbox_archive WHERE message_type LIKE '%StatusChanged'"
                          " AND body::json->'message'->>'OldStatus' = '6'"
                          " AND body::json->'message'->>'NewStatus' = '8'"
                          " AND body::json->'message'->>'Reason' = 'card expired'"),
      1);
}

/* Exactly one strategy: a second plan is refused by name, nothing of it dropped; the
 * responsible party is stored, changed or cleared by Modify while modifying is allowed, each
 * change seen in CompensationModified, and carried by the approval and the status changes. */
static void one_strategy_and_the_responsible_party(void **state) {
  ctxt_world_t *w = *state;
  static char replies[MAX_REPLIES][2048];
  seq = sent = 0;
  setup_compensation(w);
  command(w, "ApplyCompensation", /* 0: a reship with refund amounts */
          "{\"compensationId\":\"" C2 "\",\"orderNumber\":\"SO-2\",\"customerId\":\"" CUSTOMER
          "\",\"channel\":1,\"appliedBy\":\"staff-1\",\"reason\":\"x\",\"strategy\":2,\"items\":["
          "{\"sku\":\"SKU-1\",\"name\":\"Margherita\",\"quantity\":1,\"refundAmountMinor\":900}],"
          "\"currency\":\"CNY\"}");
  command(w, "ApplyCompensation", /* 1: items plus a voucher */
          "{\"compensationId\":\"" C2 "\",\"orderNumber\":\"SO-2\",\"customerId\":\"" CUSTOMER
          "\",\"channel\":1,\"appliedBy\":\"staff-1\",\"reason\":\"x\",\"strategy\":1,\"items\":["
          "{\"sku\":\"SKU-1\",\"name\":\"Margherita\",\"quantity\":1,\"refundAmountMinor\":900}],"
          "\"nonProduct\":{\"kind\":1,\"amountMinor\":500},\"currency\":\"CNY\"}");
  command(w, "ApplyCompensation", /* 2: a voucher with items */
          "{\"compensationId\":\"" C2 "\",\"orderNumber\":\"SO-2\",\"customerId\":\"" CUSTOMER
          "\",\"channel\":1,\"appliedBy\":\"staff-1\",\"reason\":\"x\",\"strategy\":3,\"items\":["
          "{\"sku\":\"SKU-1\",\"name\":\"Margherita\",\"quantity\":1}],"
          "\"nonProduct\":{\"kind\":1,\"amountMinor\":500},\"currency\":\"CNY\"}");
  command(w, "ApplyCompensation", /* 3: the logistics company's fault */
          "{\"compensationId\":\"" C1 "\",\"orderNumber\":\"SO-1\",\"customerId\":\"" CUSTOMER
          "\",\"channel\":2,\"appliedBy\":\"staff-1\",\"reason\":\"Pizza arrived cold\","
          "\"responsibleParty\":3,\"strategy\":3,\"nonProduct\":{\"kind\":1,\"amountMinor\":500},"
          "\"currency\":\"CNY\"}");
  command(w, "ModifyCompensation", /* 4: no, the merchant's */
          "{\"compensationId\":\"" C1 "\",\"modifiedBy\":\"staff-1\",\"reason\":\"Pizza arrived cold\","
          "\"responsibleParty\":1,\"strategy\":3,\"nonProduct\":{\"kind\":1,\"amountMinor\":500},"
          "\"currency\":\"CNY\"}");
  command(w, "ModifyCompensation", /* 5: nobody's, after all */
          "{\"compensationId\":\"" C1 "\",\"modifiedBy\":\"staff-2\",\"reason\":\"Pizza arrived cold\","
          "\"clearResponsibleParty\":true,\"strategy\":3,\"nonProduct\":{\"kind\":1,\"amountMinor\":500},"
          "\"currency\":\"CNY\"}");
  command(w, "ModifyCompensation", /* 6: the merchant's again */
          "{\"compensationId\":\"" C1 "\",\"modifiedBy\":\"staff-1\",\"reason\":\"Pizza arrived cold\","
          "\"responsibleParty\":1,\"strategy\":3,\"nonProduct\":{\"kind\":1,\"amountMinor\":500},"
          "\"currency\":\"CNY\"}");
  simple(w, "SubmitCompensation", C1, ",\"submittedBy\":\"staff-1\""); /* 7 */
  command(w, "ModifyCompensation",                                     /* 8: submitted */
          "{\"compensationId\":\"" C1 "\",\"modifiedBy\":\"staff-1\",\"reason\":\"Pizza arrived cold\","
          "\"responsibleParty\":2,\"strategy\":3,\"nonProduct\":{\"kind\":1,\"amountMinor\":500},"
          "\"currency\":\"CNY\"}");
  simple(w, "ApproveCompensation", C1, ",\"approvedBy\":\"boss\""); /* 9 */
  take_replies(w, 10, replies);
  wait_handled(w);
  assert_reply(replies[0], "CompensationCommandRejected", "\"Reason\":3");
  assert_reply(replies[0], "exactly one strategy: a reship carries no refund amounts (1 given)",
               "\"Reason\":3");
  assert_reply(replies[1], "exactly one strategy: a product refund carries no non-product compensation",
               "\"Reason\":3");
  assert_reply(replies[2], "exactly one strategy: a non-product compensation carries no items (1 given)",
               "\"Reason\":3");
  assert_reply(replies[3], "CompensationCommandAccepted", "\"Status\":1,\"Version\":1");
  assert_reply(replies[4], "CompensationCommandAccepted", "\"Status\":1,\"Version\":2");
  assert_reply(replies[5], "CompensationCommandAccepted", "\"Status\":1,\"Version\":3");
  assert_reply(replies[6], "CompensationCommandAccepted", "\"Status\":1,\"Version\":4");
  assert_reply(replies[8], "cannot modify a compensation order that is pending_approval", "\"Reason\":2");
  assert_reply(replies[9], "CompensationCommandAccepted", "\"Status\":3,\"Version\":6");
  ctxt_host_stop(w, SIGTERM);
  assert_int_equal(pg_long(w, "SELECT count(*) FROM compensation.orders WHERE id = '%s'", C2), 0);
  assert_int_equal(
      pg_long(w,
              "SELECT count(*) FROM compensation.orders WHERE id = '%s' AND responsible_party = 'merchant'",
              C1),
      1);
  assert_int_equal(
      ctxt_pg_long(w->pg, "SELECT count(*) FROM ctxd.outbox_archive WHERE message_type LIKE "
                          "'%CompensationApproved' AND body::json->'message'->>'ResponsibleParty' = '1'"),
      1);
  /* applied (logistics), submitted and approved (merchant) */
  assert_int_equal(ctxt_pg_long(w->pg,
                                "SELECT count(*) FROM ctxd.outbox_archive WHERE message_type LIKE "
                                "'%StatusChanged' AND body::json->'message'->>'ResponsibleParty' = '3'"),
                   1);
  assert_int_equal(ctxt_pg_long(w->pg,
                                "SELECT count(*) FROM ctxd.outbox_archive WHERE message_type LIKE "
                                "'%StatusChanged' AND body::json->'message'->>'ResponsibleParty' = '1'"),
                   2);
  /* each Modify that changed the party alone is seen: merchant, none (cleared), merchant */
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(*) FROM ctxd.outbox_archive WHERE message_type = "
                                       "'" NS "CompensationModified'"),
                   3);
  assert_int_equal(
      ctxt_pg_long(w->pg, "SELECT count(*) FROM ctxd.outbox_archive WHERE message_type LIKE"
                          " '%CompensationModified' AND body::json->'message'->>'ResponsibleParty' = '1'"
                          " AND body::json->'message'->>'ModifiedBy' = 'staff-1'"),
      2);
  assert_int_equal(
      ctxt_pg_long(w->pg, "SELECT count(*) FROM ctxd.outbox_archive WHERE message_type LIKE"
                          " '%CompensationModified' AND body::json->'message'->'ResponsibleParty' IS NULL"
                          " AND body::json->'message'->>'Version' = '3'"),
      1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(commands_answer_at_the_response_address, ctxt_world_setup,
                                      ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(modify_writes_only_changed_columns, ctxt_world_setup,
                                      ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(reacts_to_fulfillment_events, ctxt_world_setup, ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(one_strategy_and_the_responsible_party, ctxt_world_setup,
                                      ctxt_world_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
