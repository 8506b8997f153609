/* Paying against the real servers. Each command is a request: the test sends it with a
 * response address and takes its one reply before sending the next, so the order of
 * decisions is the order of the test.
 *  - partial, full and over-payment, and repeated payment callbacks: counted once,
 *    OrderPayFinished again for a paid order, OverPaid with the excess; the read-only
 *    model's answers (amount to pay, payment result) on their own endpoint;
 *  - cancel: an unpaid or partly paid order (the event names what to refund), a canceled
 *    one again, refused for a paid order and a group-buy order with a payment; a payment
 *    for a canceled order is not counted and is refused (published when the callback has
 *    no response address);
 *  - persistence: an UPDATE names only the columns that changed (a trigger per column
 *    records them), and each change appends its change-log rows. */
#include "hostfixture.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NS "Ctxd.Paying.Contracts.v1:"

typedef struct {
  ctxt_world_t *w;
  char read_endpoint[96];
  char reply_queue[96];
  int seq;
  char last[4096]; /* the last reply's body */
} paying_t;

static paying_t P;

static void start(ctxt_world_t *w) {
  memset(&P, 0, sizeof P);
  P.w = w;
  snprintf(P.read_endpoint, sizeof P.read_endpoint, "%s-read", w->endpoint);
  snprintf(P.reply_queue, sizeof P.reply_queue, "%s-bus", w->endpoint);
  snprintf(w->plugins, sizeof w->plugins,
           "[{\"name\": \"paying\", \"settings\": {\"endpoint\": \"%s\", \"read_endpoint\": \"%s\"}}]",
           w->endpoint, P.read_endpoint);
  ctxt_amqp_temporary_endpoint(w->amqp, P.reply_queue);
  ctxt_host_start(w, NULL);
}

/* Sends a message of type NS+type to exchange, as a request when `ask`; returns its number
 * (its message id ends in it) at once. */
static int send_message(const char *exchange, const char *type, const char *fields, int ask) {
  char body[4096], request[256] = "";
  int n = P.seq++;
  if (ask)
    snprintf(
        request, sizeof request,
        "\"requestId\":\"10000000-0000-4000-9000-%012d\",\"responseAddress\":\"rabbitmq://localhost/%s\",", n,
        P.reply_queue);
  snprintf(body, sizeof body,
           "{\"messageId\":\"10000000-0000-4000-8000-%012d\",%s\"messageType\":[\"urn:message:" NS
           "%s\"],\"message\":{%s}}",
           n, request, type, fields);
  ctxt_amqp_publish(P.w->amqp, exchange, "application/vnd.masstransit+json", body, NULL, NULL);
  return n;
}

/* Takes the next reply into P.last; it must answer request n. */
static void take_reply(int n) {
  char hv[8];
  assert_true(ctxt_amqp_wait_count(P.w->amqp, P.reply_queue, 1, CTXT_EFFECT_MS) >= 1);
  assert_int_equal(ctxt_amqp_get(P.w->amqp, P.reply_queue, P.last, sizeof P.last, NULL, hv, sizeof hv), 1);
  char want[64];
  snprintf(want, sizeof want, "9000-%012d\"", n);
  if (n >= 0 && strstr(P.last, want) == NULL) fail_msg("reply %s is not to request %d", P.last, n);
}

/* Sends as send_message; returns after its reply came (into P.last) or, without ask, after
 * its inbox row committed. */
static void message(const char *exchange, const char *type, const char *fields, int ask) {
  int n = send_message(exchange, type, fields, ask);
  if (!ask) {
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM ctxd.inbox WHERE message_id = '10000000-0000-4000-8000-%012d'", n);
    assert_int_equal(ctxt_pg_wait_long(P.w->pg, sql, 1, CTXT_EFFECT_MS), 1);
    return;
  }
  take_reply(n);
}

/* The reply must contain every fragment (NULL-terminated). */
static void expect(const char *first, ...) {
  va_list ap;
  va_start(ap, first);
  for (const char *f = first; f != NULL; f = va_arg(ap, const char *))
    if (strstr(P.last, f) == NULL) fail_msg("reply %s: no %s", P.last, f);
  va_end(ap);
}

static void open_order(const char *number, int kind, const char *group, long amount) {
  char m[512];
  snprintf(m, sizeof m, "\"orderNumber\":\"%s\",\"kind\":%d,%s\"amountMinor\":%ld,\"currency\":\"CNY\"",
           number, kind, group, amount);
  message(P.w->endpoint, "OpenPayingOrder", m, 1);
}

static void pay_fields(char *m, size_t len, const char *number, const char *payment, long amount) {
  snprintf(m, len, "\"orderNumber\":\"%s\",\"paymentId\":\"%s\",\"amountMinor\":%ld,\"currency\":\"CNY\"",
           number, payment, amount);
}

static void pay(const char *number, const char *payment, long amount, int ask) {
  char m[512];
  pay_fields(m, sizeof m, number, payment, amount);
  message(P.w->endpoint, "PayOrder", m, ask);
}

static void cancel_because(const char *number, const char *reason) {
  char m[2048];
  snprintf(m, sizeof m, "\"orderNumber\":\"%s\",\"reason\":\"%s\",\"canceledBy\":\"customer\"", number,
           reason);
  message(P.w->endpoint, "CancelOrder", m, 1);
}

static void cancel(const char *number) { cancel_because(number, "changed mind"); }

static long error_queue_count(void) {
  char error_queue[128];
  snprintf(error_queue, sizeof error_queue, "%s_error", P.w->endpoint);
  return ctxt_amqp_queue_count(P.w->amqp, error_queue);
}

static void query(const char *type, const char *number) {
  char m[128];
  snprintf(m, sizeof m, "\"orderNumber\":\"%s\"", number);
  message(P.read_endpoint, type, m, 1);
}

/* Published events of NS+type (where: more SQL on the archived body, or ""), once the
 * outbox is empty. */
static long events(const char *type, const char *where) {
  char sql[2048];
  assert_int_equal(ctxt_pg_wait_long(P.w->pg, "SELECT count(*) FROM ctxd.outbox", 0, CTXT_EFFECT_MS), 0);
  snprintf(sql, sizeof sql, "SELECT count(*) FROM ctxd.outbox_archive WHERE message_type = '" NS "%s'%s",
           type, where);
  return ctxt_pg_long(P.w->pg, sql);
}

static long row(const char *fmt, const char *arg) {
  char sql[1024];
  snprintf(sql, sizeof sql, fmt, arg);
  return ctxt_pg_long(P.w->pg, sql);
}

static void partial_full_over_and_repeated_callbacks(void **state) {
  start(*state);
  open_order("SO-A", 1, "", 1000);
  expect("PayingCommandAccepted", "\"State\":1", "\"Version\":1", NULL);
  pay("SO-A", "P1", 400, 1); /* partial */
  expect("PayingCommandAccepted", "\"State\":1", "\"PaidAmountMinor\":400", "\"Version\":2", NULL);
  pay("SO-A", "P1", 400, 1); /* the gateway calls back again */
  expect("PayingCommandAccepted", "\"PaidAmountMinor\":400", "\"Version\":2", "counted already", NULL);
  query("GetAmountToPay", "SO-A");
  expect("AmountToPay", "\"Found\":true", "\"DueAmountMinor\":600", "\"PaidAmountMinor\":400", NULL);
  assert_int_equal(events("OrderPayFinished", ""), 0);
  pay("SO-A", "P2", 600, 1); /* full */
  expect("\"State\":2", "\"PaidAmountMinor\":1000", "\"Version\":3", NULL);
  assert_int_equal(events("OrderPayFinished", " AND body::json->'message'->>'PaidAmountMinor' = '1000'"), 1);
  pay("SO-A", "P2", 600, 1); /* paid already: said again, nothing counted */
  expect("\"State\":2", "\"PaidAmountMinor\":1000", "\"Version\":3", NULL);
  assert_int_equal(events("OrderPayFinished", ""), 2);
  assert_int_equal(events("OverPaid", ""), 0);
  message(P.w->endpoint, "PayOrder",
          "\"orderNumber\":\"SO-A\",\"paymentId\":\"P3\",\"amountMinor\":50,\"currency\":\"CNY\","
          "\"paidAt\":\"2026-05-01T10:20:30.5Z\"",
          1); /* over-payment, with the payment system's time */
  expect("\"State\":2", "\"PaidAmountMinor\":1050", "\"Version\":4", NULL);
  assert_int_equal(events("OrderPayFinished", ""), 3);
  assert_int_equal(events("OverPaid", " AND body::json->'message'->>'OverPaidAmountMinor' = '50'"
                                      " AND body::json->'message'->>'PaymentId' = 'P3'"
                                      " AND body::json->'message'->>'Currency' = 'CNY'"),
                   1);
  assert_int_equal(row("SELECT count(*) FROM paying.payments WHERE order_number = '%s' AND payment_id = 'P3'"
                       " AND paid_at = '2026-05-01T10:20:30.5Z'::timestamptz AND status = 'counted'",
                       "SO-A"),
                   1);
  pay("SO-A", "P3", 50, 1); /* its callback again: paid again, but no second refund signal */
  assert_int_equal(events("OrderPayFinished", ""), 4);
  assert_int_equal(events("OverPaid", ""), 1);
  pay("SO-A", "P4", 25, 0); /* another: its own excess, not the running total */
  assert_int_equal(events("OverPaid", " AND body::json->'message'->>'OverPaidAmountMinor' = '25'"
                                      " AND body::json->'message'->>'PaidAmountMinor' = '1075'"
                                      " AND body::json->'message'->>'PaymentId' = 'P4'"),
                   1);
  pay("SO-A", "P4", 26, 1); /* its id with another amount: refused, not counted */
  expect("PayingCommandRejected", "\"Reason\":3", "payment P4 was counted with 25, not 26", NULL);
  query("GetPaymentResult", "SO-A");
  expect("PaymentResult", "\"Found\":true", "\"State\":2", "\"Paid\":true", "\"OverPaidAmountMinor\":75",
         "\"Payments\":4", "\"PaidAt\":\"20", NULL);
  query("GetAmountToPay", "SO-A");
  expect("\"DueAmountMinor\":0", NULL);
  query("GetPaymentResult", "SO-NONE");
  expect("\"Found\":false", NULL);
  assert_null(strstr(P.last, "\"State\""));

  /* stored: each payment once, the order, a change-log row per changed field */
  assert_int_equal(row("SELECT count(*) FROM paying.payments WHERE order_number = '%s'", "SO-A"), 4);
  assert_int_equal(row("SELECT count(*) FROM paying.orders WHERE order_number = '%s' AND paid_minor = 1075"
                       " AND payments = 4 AND state = 'paid' AND version = 5 AND paid_at > 0",
                       "SO-A"),
                   1);
  /* open: 13 fields; P1: paid, payments; P2: paid, payments, state, paid_at; P3, P4: paid,
   * payments */
  assert_int_equal(row("SELECT count(*) FROM paying.order_changes WHERE order_number = '%s'", "SO-A"), 23);
  assert_int_equal(
      row("SELECT count(*) FROM paying.order_changes WHERE order_number = '%s' AND version = 3"
          " AND operation = 'pay' AND field = 'state' AND old_value = 'paying' AND new_value = 'paid'"
          " AND message_id IS NOT NULL",
          "SO-A"),
      1);
  ctxt_host_stop(P.w, SIGTERM);
}

static void cancel_rules(void **state) {
  start(*state);
  open_order("SO-B", 1, "", 1000);
  pay("SO-B", "P1", 300, 1);
  cancel("SO-B"); /* partly paid: canceled, the 300 to be refunded */
  expect("PayingCommandAccepted", "\"State\":3", "\"PaidAmountMinor\":300", NULL);
  assert_int_equal(events("PayingOrderCanceled", " AND body::json->'message'->>'PaidAmountMinor' = '300'"
                                                 " AND body::json->'message'->>'Reason' = 'changed mind'"),
                   1);
  pay("SO-B", "P1", 300, 1); /* P1's callback again: refunded by the cancel, not refused again */
  expect("PayingCommandAccepted", "\"State\":3", "\"PaidAmountMinor\":300", "payment P1 was counted already",
         NULL);
  assert_null(strstr(P.last, "Rejected"));
  pay("SO-B", "P2", 700, 1); /* canceled: not counted, the payment system is told */
  expect("PayingCommandRejected", "\"Reason\":5", "\"State\":3", "is canceled: payment P2 of 700 not taken",
         "\"PaymentId\":\"P2\"", "\"AmountMinor\":700", "\"Currency\":\"CNY\"", NULL);
  assert_null(strstr(P.last, "Repeated"));
  pay("SO-B", "P2", 700, 1); /* its callback again: answered, marked repeated */
  expect("PayingCommandRejected", "\"Reason\":5", "\"PaymentId\":\"P2\"", "\"Repeated\":true",
         "payment P2 was refused already", NULL);
  pay("SO-B", "P3", 700, 0); /* the same without a response address: published */
  assert_int_equal(events("PayingCommandRejected", " AND body::json->'message'->>'PaymentId' = 'P3'"
                                                   " AND body::json->'message'->>'AmountMinor' = '700'"),
                   1);
  pay("SO-B", "P3", 700, 0); /* its callback again: recognised, not published again */
  pay("SO-B", "P1", 300, 0); /* a counted one's callback again: nothing published */
  assert_int_equal(
      events("PayingCommandRejected", " AND body::json->'message'->>'PaymentId' IN ('P1', 'P3')"), 1);
  assert_int_equal(row("SELECT count(*) FROM paying.payments WHERE order_number = '%s' AND status = 'refused'"
                       " AND payment_id IN ('P2', 'P3')",
                       "SO-B"),
                   2);
  cancel("SO-B"); /* again: said again */
  expect("PayingCommandAccepted", "\"State\":3", "canceled already", NULL);
  assert_int_equal(events("PayingOrderCanceled", ""), 2);
  assert_int_equal(row("SELECT count(*) FROM paying.orders WHERE order_number = '%s' AND paid_minor = 300"
                       " AND payments = 1 AND version = 3 AND cancel_reason = 'changed mind'",
                       "SO-B"),
                   1);

  open_order("SO-G", 2, "\"groupId\":\"GB-7\",", 1000);
  pay("SO-G", "P1", 100, 1);
  cancel("SO-G");
  expect("PayingCommandRejected", "\"Reason\":2", "\"State\":1", "group-buy", NULL);
  open_order("SO-D", 1, "", 500);
  pay("SO-D", "P1", 500, 1);
  cancel("SO-D");
  expect("PayingCommandRejected", "\"Reason\":2", "\"State\":2", "a refund, not a cancel", NULL);
  open_order("SO-U", 1, "", 500);
  cancel("SO-U"); /* nothing paid */
  expect("PayingCommandAccepted", "\"State\":3", "\"PaidAmountMinor\":0", NULL);
  cancel("SO-X");
  expect("PayingCommandRejected", "\"Reason\":1", NULL);
  assert_null(strstr(P.last, "\"State\""));
  open_order("SO-D", 1, "", 600);
  expect("PayingCommandRejected", "\"Reason\":4", "\"State\":2", NULL);
  query("GetAmountToPay", "SO-B");
  expect("\"State\":3", "\"DueAmountMinor\":0", NULL);
  ctxt_host_stop(P.w, SIGTERM);
  assert_int_equal(error_queue_count(), 0);
}

/* Limits are characters, as the contracts count them: a reason of 256 Chinese characters
 * (768 bytes, the contract's limit) is taken whole; a currency of three characters that are not capital letters
 * is refused with a reply, never sent to _error. */
static void texts_in_characters(void **state) {
  start(*state);
  open_order("SO-T", 1, "", 1000);
  char reason[1024] = "";
  for (int i = 0; i < 256; i++) strcat(reason, "\xe5\x8f\x96"); /* 取: 256 characters, 768 bytes */
  cancel_because("SO-T", reason);
  expect("PayingCommandAccepted", "\"State\":3", NULL);
  char where[1200];
  snprintf(where, sizeof where, " AND body::json->'message'->>'Reason' = '%s'", reason);
  assert_int_equal(events("PayingOrderCanceled", where), 1);
  message(P.w->endpoint, "PayOrder",
          "\"orderNumber\":\"SO-T\",\"paymentId\":\"P1\",\"amountMinor\":5,\"currency\":"
          "\"\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\"",
          1);
  expect("PayingCommandRejected", "\"Reason\":3", "is not an ISO 4217 code", NULL);
  open_order("\xe8\xae\xa2\xe5\x8d\x95-1", 1, "", 100); /* 订单-1 */
  expect("PayingCommandAccepted", "\"Version\":1", NULL);
  ctxt_host_stop(P.w, SIGTERM);
  assert_int_equal(error_queue_count(), 0);
}

/* A callback that overtakes OpenPayingOrder is delivered again until the order is open;
 * one for an order never opened ends in _error after the endpoint's redeliveries. */
static void payment_before_its_order(void **state) {
  ctxt_world_t *w = *state;
  snprintf(
      w->endpoint_settings, sizeof w->endpoint_settings,
      "\"workers\": 2, \"batch_size\": 16, \"immediate_retries\": 0, \"redelivery_ms\": \"200,300,400\"");
  start(w);
  char m[512];
  pay_fields(m, sizeof m, "SO-E", "P1", 500);
  send_message(P.w->endpoint, "PayOrder", m, 0);
  assert_int_equal(ctxt_proc_wait_output(&P.w->host, "pay of order SO-E: not open yet", CTXT_EFFECT_MS), 1);
  open_order("SO-E", 1, "", 500);
  assert_int_equal(ctxt_pg_wait_long(P.w->pg,
                                     "SELECT count(*) FROM paying.orders WHERE order_number = 'SO-E'"
                                     " AND paid_minor = 500 AND state = 'paid'",
                                     1, CTXT_EFFECT_MS),
                   1);
  assert_int_equal(events("OrderPayFinished", ""), 1);
  assert_int_equal(error_queue_count(), 0);
  pay_fields(m, sizeof m, "SO-NEVER", "P1", 5);
  send_message(P.w->endpoint, "PayOrder", m, 0);
  char error_queue[128];
  snprintf(error_queue, sizeof error_queue, "%s_error", P.w->endpoint);
  assert_int_equal(ctxt_amqp_wait_count(P.w->amqp, error_queue, 1, CTXT_EFFECT_MS), 1);
  ctxt_host_stop(P.w, SIGTERM);
}

/* Holds paying.orders locked (EXCLUSIVE: the handlers' SELECT ... FOR UPDATE waits) until
 * release(): commands sent meanwhile start together, when `waiting` of them wait. */
static void hold_orders(void) {
  PGresult *r = PQexec(P.w->pg, "BEGIN; LOCK TABLE paying.orders IN EXCLUSIVE MODE");
  assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
  PQclear(r);
}

static void release_orders(long waiting) {
  assert_int_equal(
      ctxt_pg_wait_long(P.w->pg,
                        "SELECT count(*) FROM pg_locks WHERE relation = 'paying.orders'::regclass"
                        " AND NOT granted",
                        waiting, CTXT_EFFECT_MS),
      waiting);
  PGresult *r = PQexec(P.w->pg, "COMMIT");
  assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
  PQclear(r);
}

/* Commands for one order at once, on four workers, released together: payments (new ones,
 * and the same ids again under other message ids) are each counted once, every change gets
 * its version; two opens of one new order (both find no row, both insert: one conflicts
 * and is retried) make one row and two acceptances. */
static void concurrent_commands_for_one_order(void **state) {
  ctxt_world_t *w = *state;
  snprintf(w->endpoint_settings, sizeof w->endpoint_settings, "\"workers\": 4, \"batch_size\": 1");
  start(w);
  char m[512];
  snprintf(m, sizeof m, "\"orderNumber\":\"SO-Q\",\"kind\":1,\"amountMinor\":100000,\"currency\":\"CNY\"");
  hold_orders();
  int first = send_message(P.w->endpoint, "OpenPayingOrder", m, 1);
  send_message(P.w->endpoint, "OpenPayingOrder", m, 1);
  release_orders(2);
  assert_int_equal(ctxt_amqp_wait_count(P.w->amqp, P.reply_queue, 2, CTXT_EFFECT_MS), 2);
  for (int i = 0; i < 2; i++) {
    take_reply(-1);
    expect("PayingCommandAccepted", "\"Version\":1", NULL);
  }
  assert_int_equal(row("SELECT count(*) FROM paying.orders WHERE order_number = '%s'", "SO-Q"), 1);
  enum { DISTINCT = 8, REPEATS = 4 };
  long sum = 0;
  hold_orders();
  for (int i = 1; i <= DISTINCT + REPEATS; i++) {
    int p = i <= DISTINCT ? i : i - DISTINCT; /* P1..P8, then P1..P4 again */
    char id[16];
    snprintf(id, sizeof id, "P%d", p);
    pay_fields(m, sizeof m, "SO-Q", id, 100L * p);
    send_message(P.w->endpoint, "PayOrder", m, 0);
    if (i <= DISTINCT) sum += 100L * p;
  }
  release_orders(4); /* a worker each */
  char sql[256];
  snprintf(sql, sizeof sql,
           "SELECT count(*) FROM ctxd.inbox WHERE message_id > '10000000-0000-4000-8000-%012d'", first + 1);
  assert_int_equal(ctxt_pg_wait_long(P.w->pg, sql, DISTINCT + REPEATS, CTXT_EFFECT_MS), DISTINCT + REPEATS);
  snprintf(sql, sizeof sql, "SELECT paid_minor FROM paying.orders WHERE order_number = 'SO-Q'");
  assert_int_equal(ctxt_pg_long(P.w->pg, sql), sum);
  assert_int_equal(row("SELECT count(*) FROM paying.payments WHERE order_number = '%s'", "SO-Q"), DISTINCT);
  assert_int_equal(
      row("SELECT count(*) FROM (SELECT payment_id FROM paying.payments WHERE order_number = '%s'"
          " GROUP BY payment_id HAVING count(*) = 1) p",
          "SO-Q"),
      DISTINCT);
  /* versions 1..9: the open and one per counted payment, none missing, none twice */
  assert_int_equal(row("SELECT count(DISTINCT version) FROM paying.order_changes WHERE order_number = '%s'"
                       " AND version BETWEEN 1 AND 9",
                       "SO-Q"),
                   DISTINCT + 1);
  assert_int_equal(row("SELECT max(version) FROM paying.order_changes WHERE order_number = '%s'", "SO-Q"),
                   DISTINCT + 1);
  assert_int_equal(row("SELECT version FROM paying.orders WHERE order_number = '%s'", "SO-Q"), DISTINCT + 1);
  ctxt_host_stop(P.w, SIGTERM);
  assert_int_equal(error_queue_count(), 0);
}

static void writes_only_changed_columns(void **state) {
  start(*state);
  open_order("SO-C", 1, "", 1000);
  ctxt_trace_updates(P.w->pg, "paying", "orders");
  pay("SO-C", "P1", 400, 1);
  ctxt_assert_touched(P.w->pg, "paid_minor,payments,updated_at,version");
  pay("SO-C", "P1", 400, 1); /* repeated callback: nothing written */
  ctxt_assert_touched(P.w->pg, "");
  pay("SO-C", "P2", 600, 1);
  ctxt_assert_touched(P.w->pg, "paid_at,paid_minor,payments,state,updated_at,version");
  pay("SO-C", "P2", 600, 1); /* paid again: an event, no write */
  ctxt_assert_touched(P.w->pg, "");
  cancel("SO-C"); /* refused */
  ctxt_assert_touched(P.w->pg, "");
  assert_int_equal(
      row("SELECT count(*) FROM paying.order_changes WHERE order_number = '%s' AND version > 1", "SO-C"), 6);
  ctxt_host_stop(P.w, SIGTERM);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(partial_full_over_and_repeated_callbacks, ctxt_world_setup,
                                      ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(cancel_rules, ctxt_world_setup, ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(writes_only_changed_columns, ctxt_world_setup, ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(texts_in_characters, ctxt_world_setup, ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(payment_before_its_order, ctxt_world_setup, ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(concurrent_commands_for_one_order, ctxt_world_setup,
                                      ctxt_world_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
