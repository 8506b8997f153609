/* The fulfillment order domain: plan rules, the three processing paths, duplicated /
 * reordered / unknown / misdirected feedback, manual resolution, update tracing, JSON. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <ctxd/errno.h>

#include "domain.h"
#include "testsupport.h"

#define T0 1700000000000LL
#define VU (FULFILLMENT_FIELD_VERSION | FULFILLMENT_FIELD_UPDATED_AT)

static fulfillment_decision_t *new_decision(void) {
  fulfillment_decision_t *d = calloc(1, sizeof *d);
  assert_non_null(d);
  return d;
}

static fulfillment_approved_t approved(fulfillment_kind_t kind) {
  fulfillment_approved_t a;
  memset(&a, 0, sizeof a);
  strcpy(a.compensation_id, "C-1");
  strcpy(a.order_id, "O-1");
  strcpy(a.customer_id, "U-1");
  assert_int_equal(fulfillment_plan_init(&a.plan, kind), 0);
  if (kind == FULFILLMENT_KIND_NON_PRODUCT) {
    assert_int_equal(fulfillment_plan_set_benefit(&a.plan, FULFILLMENT_BENEFIT_RED_PACKET, 800), 0);
  } else {
    int64_t refund = kind == FULFILLMENT_KIND_PRODUCT_REFUND;
    assert_int_equal(fulfillment_plan_add_item(&a.plan, "SKU-1", 2, refund * 1500), 0);
    assert_int_equal(fulfillment_plan_add_item(&a.plan, "SKU-2", 1, refund * 250), 0);
  }
  return a;
}

/* A fulfillment created from an approval of `kind` at T0. */
static fulfillment_order_t created(fulfillment_kind_t kind) {
  fulfillment_approved_t a = approved(kind);
  fulfillment_command_t c = {.action = FULFILLMENT_ACTION_CREATE, .at = T0, .id = "F-1", .approved = &a};
  fulfillment_decision_t *d = new_decision();
  assert_int_equal(fulfillment_order_decide(NULL, &c, d), 0);
  fulfillment_order_t o = d->order;
  free(d);
  return o;
}

/* A refund completes for the 1750 the refund plan of approved() requests. */
static fulfillment_command_t feedback(fulfillment_feedback_t kind, const char *reference, const char *reason,
                                      int64_t at) {
  return (fulfillment_command_t){.action = FULFILLMENT_ACTION_FEEDBACK,
                                 .at = at,
                                 .feedback = kind,
                                 .reference = reference,
                                 .reason = reason,
                                 .amount = kind == FULFILLMENT_FEEDBACK_REFUND_COMPLETED ? 1750 : 0};
}

/* Decides c on o, expects acceptance with exactly `changed` and `n_messages` messages. */
static fulfillment_order_t step(const fulfillment_order_t *o, const fulfillment_command_t *c,
                                uint32_t changed, size_t n_messages, fulfillment_decision_t *d) {
  assert_int_equal(fulfillment_order_decide(o, c, d), 0);
  assert_int_equal(d->ignored, FULFILLMENT_IGNORED_NONE);
  assert_string_equal(d->why.text, "");
  assert_int_equal(d->changed, changed);
  assert_int_equal(d->n_messages, n_messages);
  return d->order;
}

/* Expects c to be accepted and ignored as `kind` with `text`, changing nothing. */
static void assert_ignored(const fulfillment_order_t *o, const fulfillment_command_t *c,
                           fulfillment_ignored_t kind, const char *text) {
  fulfillment_decision_t *d = new_decision();
  assert_int_equal(fulfillment_order_decide(o, c, d), 0);
  assert_int_equal(d->ignored, kind);
  assert_string_equal(d->why.text, text);
  assert_int_equal(d->changed, 0);
  assert_int_equal(d->n_messages, 0);
  assert_memory_equal(&d->order, o, sizeof *o);
  free(d);
}

static void assert_rejected(const fulfillment_order_t *o, const fulfillment_command_t *c, int code,
                            const char *text) {
  fulfillment_decision_t *d = new_decision();
  assert_int_equal(fulfillment_order_decide(o, c, d), code);
  assert_string_equal(d->why.text, text);
  assert_int_equal(d->ignored, FULFILLMENT_IGNORED_NONE);
  assert_int_equal(d->changed, 0);
  assert_int_equal(d->n_messages, 0);
  if (o) assert_memory_equal(&d->order, o, sizeof *o);
  free(d);
}

static void assert_check(const fulfillment_plan_t *p, int code, const char *text) {
  fulfillment_why_t why = {{0}};
  assert_int_equal(fulfillment_plan_check(p, &why), code);
  assert_string_equal(why.text, text);
}

/* Compact text with sorted keys; the caller frees it. */
static char *text_of(const json_t *j) {
  assert_non_null(j);
  char *text = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT);
  assert_non_null(text);
  return text;
}

/* text_of, releasing j. */
static char *take_text(json_t *j) {
  char *text = text_of(j);
  json_decref(j);
  return text;
}

/* ---- plans ---------------------------------------------------------------------------- */

static void test_plan_rules(void **state) {
  (void)state;
  fulfillment_plan_t p = approved(FULFILLMENT_KIND_PRODUCT_REFUND).plan;
  assert_int_equal(fulfillment_plan_check(&p, NULL), 0);
  p.items[1].amount = 0;
  assert_check(&p, CTXD_ERANGE, "item 2: amount must be positive, got 0");
  p = approved(FULFILLMENT_KIND_PRODUCT_REFUND).plan;
  p.items[0].amount = INT64_MAX;
  assert_check(&p, CTXD_ERANGE, "total amount overflows");
  p.n_items = 0;
  assert_check(&p, CTXD_EINVAL, "product refund needs at least one item");

  p = approved(FULFILLMENT_KIND_RESHIP).plan;
  assert_int_equal(fulfillment_plan_check(&p, NULL), 0); /* reship items carry no amount */
  p.items[0].quantity = 0;
  assert_check(&p, CTXD_ERANGE, "item 1: quantity must be positive, got 0");
  p = approved(FULFILLMENT_KIND_RESHIP).plan;
  p.items[1].sku[0] = '\0';
  assert_check(&p, CTXD_EINVAL, "item 2: sku is empty");
  memset(p.items[1].sku, 'z', sizeof p.items[1].sku);
  assert_check(&p, CTXD_ETOOBIG, "item 2: sku is longer than 64 bytes");
  p.n_items = FULFILLMENT_MAX_ITEMS + 1;
  assert_check(&p, CTXD_ETOOBIG, "reship has 101 items, at most 100");
  p.n_items = 0;
  assert_check(&p, CTXD_EINVAL, "reship needs at least one item");

  p = approved(FULFILLMENT_KIND_NON_PRODUCT).plan;
  assert_int_equal(fulfillment_plan_check(&p, NULL), 0);
  fulfillment_plan_set_benefit(&p, FULFILLMENT_BENEFIT_VOUCHER, 0);
  assert_check(&p, CTXD_ERANGE, "amount must be positive, got 0");
  fulfillment_plan_set_benefit(&p, FULFILLMENT_BENEFIT_NONE, 5);
  assert_check(&p, CTXD_EINVAL, "non-product needs a voucher or a red packet");

  memset(&p, 0, sizeof p);
  assert_check(&p, CTXD_EINVAL, "plan is missing");
  assert_check(NULL, CTXD_EINVAL, "plan is missing");
  assert_int_equal(fulfillment_plan_init(&p, FULFILLMENT_KIND_NONE), CTXD_EINVAL);
  assert_int_equal(fulfillment_plan_init(NULL, FULFILLMENT_KIND_RESHIP), CTXD_EINVAL);

  /* builders */
  fulfillment_plan_init(&p, FULFILLMENT_KIND_RESHIP);
  assert_int_equal(fulfillment_plan_add_item(&p, NULL, 1, 0), CTXD_EINVAL);
  char sku[70];
  memset(sku, 's', 65);
  sku[65] = '\0';
  assert_int_equal(fulfillment_plan_add_item(&p, sku, 1, 0), CTXD_ETOOBIG);
  for (int i = 0; i < FULFILLMENT_MAX_ITEMS; i++)
    assert_int_equal(fulfillment_plan_add_item(&p, "S", 1, 0), 0);
  assert_int_equal(fulfillment_plan_add_item(&p, "S", 1, 0), CTXD_ETOOBIG);
  assert_int_equal(p.n_items, FULFILLMENT_MAX_ITEMS);
  assert_int_equal(fulfillment_plan_set_benefit(NULL, FULFILLMENT_BENEFIT_VOUCHER, 1), CTXD_EINVAL);
}

static void test_plan_totals(void **state) {
  (void)state;
  int64_t total = -1;
  fulfillment_plan_t p = approved(FULFILLMENT_KIND_PRODUCT_REFUND).plan;
  assert_int_equal(fulfillment_plan_total(&p, &total), 0);
  assert_int_equal(total, 1750);
  p = approved(FULFILLMENT_KIND_RESHIP).plan;
  assert_int_equal(fulfillment_plan_total(&p, &total), 0);
  assert_int_equal(total, 0);
  p = approved(FULFILLMENT_KIND_NON_PRODUCT).plan;
  assert_int_equal(fulfillment_plan_total(&p, &total), 0);
  assert_int_equal(total, 800);
  p.amount = 0;
  assert_int_equal(fulfillment_plan_total(&p, &total), CTXD_ERANGE);
  assert_int_equal(fulfillment_plan_total(&p, NULL), CTXD_EINVAL);
}

static void test_plan_json(void **state) {
  (void)state;
  static const struct {
    fulfillment_kind_t kind;
    const char *json;
  } cases[] = {
      {FULFILLMENT_KIND_PRODUCT_REFUND,
       "{\"items\":[{\"amount\":1500,\"quantity\":2,\"sku\":\"SKU-1\"},{\"amount\":250,"
       "\"quantity\":1,\"sku\":\"SKU-2\"}],\"kind\":\"product_refund\"}"},
      {FULFILLMENT_KIND_RESHIP, "{\"items\":[{\"quantity\":2,\"sku\":\"SKU-1\"},{\"quantity\":1,"
                                "\"sku\":\"SKU-2\"}],\"kind\":\"reship\"}"},
      {FULFILLMENT_KIND_NON_PRODUCT, "{\"amount\":800,\"benefit\":\"red_packet\",\"kind\":\"non_product\"}"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    fulfillment_plan_t p = approved(cases[i].kind).plan;
    json_t *j = fulfillment_plan_encode(&p);
    char *text = text_of(j);
    assert_string_equal(text, cases[i].json);
    free(text);
    json_decref(j);
  }
}

/* ---- creation: the three paths start -------------------------------------------------- */

/* One limit on a plan's items: the contracts state it, the domain holds exactly that many. */
static void test_item_limit_is_the_contracts(void **state) {
  (void)state;
  assert_int_equal(ctxt_contract_max_items("Ctxd.Compensation.Contracts.v1:CompensationApproved", "Items"),
                   FULFILLMENT_MAX_ITEMS);
  assert_int_equal(ctxt_contract_max_items("Ctxd.Fulfillment.Contracts.v1:ReshipOrderRequested", "Items"),
                   FULFILLMENT_MAX_ITEMS);
}

/* Seed 2.2.2 (處理通過): a non-product compensation is a call to the issuing system, whose answer
 * comes at once: nothing is announced before it; issued succeeds, a failure is the
 * exception outcome (pending communication). */
static void test_create_non_product_calls_the_issuing_system(void **state) {
  (void)state;
  fulfillment_approved_t a = approved(FULFILLMENT_KIND_NON_PRODUCT);
  fulfillment_command_t c = {.action = FULFILLMENT_ACTION_CREATE, .at = T0, .id = "F-1", .approved = &a};
  fulfillment_decision_t *d = new_decision();
  fulfillment_order_t o = step(NULL, &c, FULFILLMENT_FIELD_ALL, 1, d);
  assert_int_equal(o.status, FULFILLMENT_STATUS_PROCESSING);
  assert_int_equal(d->messages[0].type, FULFILLMENT_MESSAGE_ISSUE_BENEFIT);
  char *call = take_text(fulfillment_message_encode(&d->messages[0]));
  assert_string_equal(call, "{\"amount\":800,\"at\":1700000000000,\"benefit\":\"red_packet\","
                            "\"compensationId\":\"C-1\",\"customerId\":\"U-1\",\"fulfillmentId\":"
                            "\"F-1\",\"orderId\":\"O-1\",\"strategy\":\"non_product\"}");
  free(call);

  /* the issuing system says no: pending communication, FulfillmentFailed */
  c = feedback(FULFILLMENT_FEEDBACK_BENEFIT_FAILED, NULL, "HTTP 500: out of vouchers", T0 + 5);
  fulfillment_order_t failed =
      step(&o, &c, FULFILLMENT_FIELD_STATUS | FULFILLMENT_FIELD_PENDING_COMMUNICATION | VU, 1, d);
  assert_int_equal(failed.status, FULFILLMENT_STATUS_FAILED);
  assert_string_equal(failed.communication.reason, "HTTP 500: out of vouchers");
  assert_int_equal(d->messages[0].type, FULFILLMENT_MESSAGE_FAILED);
  assert_string_equal(d->messages[0].reason, "HTTP 500: out of vouchers");

  /* it issued: succeeded with its id; the same answer again is a duplicate, another a conflict */
  c = feedback(FULFILLMENT_FEEDBACK_BENEFIT_ISSUED, "V-9", NULL, T0 + 5);
  o = step(&o, &c, FULFILLMENT_FIELD_STATUS | FULFILLMENT_FIELD_BENEFIT_FEEDBACK | VU, 1, d);
  assert_string_equal(o.id, "F-1");
  assert_string_equal(o.compensation_id, "C-1");
  assert_string_equal(o.order_id, "O-1");
  assert_string_equal(o.customer_id, "U-1");
  assert_int_equal(o.status, FULFILLMENT_STATUS_SUCCEEDED);
  assert_string_equal(o.benefit.issue_id, "V-9");
  assert_int_equal(o.version, 2);
  assert_true(o.created_at == T0 && o.updated_at == T0 + 5);
  assert_ignored(&o, &c, FULFILLMENT_IGNORED_DUPLICATE, "benefit V-9 is issued already");
  c.reference = "V-10";
  assert_ignored(&o, &c, FULFILLMENT_IGNORED_CONFLICT, "benefit V-9 is issued, not V-10");
  c = feedback(FULFILLMENT_FEEDBACK_BENEFIT_FAILED, NULL, "late", T0 + 6);
  assert_ignored(&o, &c, FULFILLMENT_IGNORED_LATE,
                 "benefit_failed ignored: the fulfillment succeeded already");
  json_t *stored = fulfillment_order_encode(&o);
  char *text = text_of(json_object_get(stored, "benefit_feedback"));
  assert_string_equal(text, "{\"issue_id\":\"V-9\",\"issued_at\":1700000000005}");
  free(text);
  fulfillment_order_t again;
  assert_int_equal(fulfillment_order_decode(stored, &again, NULL), 0);
  assert_string_equal(again.benefit.issue_id, "V-9");
  /* states stored before the call existed have no benefit_feedback */
  json_object_del(stored, "benefit_feedback");
  assert_int_equal(fulfillment_order_decode(stored, &again, NULL), 0);
  assert_string_equal(again.benefit.issue_id, "");
  json_decref(stored);
  const fulfillment_message_t *m = &d->messages[0];
  assert_int_equal(m->type, FULFILLMENT_MESSAGE_SUCCEEDED);
  assert_string_equal(m->fulfillment_id, "F-1");
  assert_string_equal(m->compensation_id, "C-1");
  assert_int_equal(m->kind, FULFILLMENT_KIND_NON_PRODUCT);
  assert_string_equal(m->reference, "V-9");
  assert_false(m->resolved_manually);
  text = take_text(fulfillment_message_encode(m));
  assert_string_equal(text, "{\"at\":1700000000005,\"compensationId\":\"C-1\",\"fulfillmentId\":"
                            "\"F-1\",\"orderId\":\"O-1\",\"reason\":\"\",\"reference\":\"V-9\","
                            "\"resolvedManually\":false,\"strategy\":\"non_product\"}");
  free(text);
  free(d);
}

static void test_create_refund_requests_and_waits(void **state) {
  (void)state;
  fulfillment_approved_t a = approved(FULFILLMENT_KIND_PRODUCT_REFUND);
  fulfillment_command_t c = {.action = FULFILLMENT_ACTION_CREATE, .at = T0, .id = "F-1", .approved = &a};
  fulfillment_decision_t *d = new_decision();
  fulfillment_order_t o = step(NULL, &c, FULFILLMENT_FIELD_ALL, 2, d);
  assert_int_equal(o.status, FULFILLMENT_STATUS_PROCESSING);
  const fulfillment_message_t *req = &d->messages[0];
  assert_int_equal(req->type, FULFILLMENT_MESSAGE_REFUND_REQUESTED);
  assert_int_equal(req->amount, 1750);
  assert_string_equal(req->customer_id, "U-1");
  assert_int_equal(req->plan.n_items, 2);
  json_t *j = fulfillment_message_encode(req);
  char *text = text_of(j);
  assert_string_equal(text, "{\"amount\":1750,\"at\":1700000000000,\"compensationId\":\"C-1\","
                            "\"customerId\":\"U-1\",\"fulfillmentId\":\"F-1\",\"items\":[{"
                            "\"amount\":1500,\"quantity\":2,\"sku\":\"SKU-1\"},{\"amount\":250,"
                            "\"quantity\":1,\"sku\":\"SKU-2\"}],\"orderId\":\"O-1\",\"strategy\":"
                            "\"product_refund\"}");
  free(text);
  json_decref(j);
  assert_int_equal(d->messages[1].type, FULFILLMENT_MESSAGE_PROCESSING);
  text = take_text(fulfillment_message_encode(&d->messages[1]));
  assert_string_equal(text, "{\"at\":1700000000000,\"compensationId\":\"C-1\",\"fulfillmentId\":"
                            "\"F-1\",\"orderId\":\"O-1\",\"strategy\":\"product_refund\"}");
  free(text);
  free(d);
}

static void test_create_reship_requests_and_waits(void **state) {
  (void)state;
  fulfillment_approved_t a = approved(FULFILLMENT_KIND_RESHIP);
  fulfillment_command_t c = {.action = FULFILLMENT_ACTION_CREATE, .at = T0, .id = "F-1", .approved = &a};
  fulfillment_decision_t *d = new_decision();
  fulfillment_order_t o = step(NULL, &c, FULFILLMENT_FIELD_ALL, 2, d);
  assert_int_equal(o.status, FULFILLMENT_STATUS_PROCESSING);
  assert_int_equal(d->messages[0].type, FULFILLMENT_MESSAGE_RESHIP_ORDER_REQUESTED);
  char *text = take_text(fulfillment_message_encode(&d->messages[0]));
  assert_string_equal(text, "{\"at\":1700000000000,\"compensationId\":\"C-1\",\"customerId\":"
                            "\"U-1\",\"fulfillmentId\":\"F-1\",\"items\":[{\"quantity\":2,"
                            "\"sku\":\"SKU-1\"},{\"quantity\":1,\"sku\":\"SKU-2\"}],\"orderId\":"
                            "\"O-1\",\"strategy\":\"reship\"}");
  free(text);
  assert_int_equal(d->messages[1].type, FULFILLMENT_MESSAGE_PROCESSING);
  free(d);
}

static void test_create_rejections_and_duplicates(void **state) {
  (void)state;
  fulfillment_approved_t a = approved(FULFILLMENT_KIND_RESHIP);
  fulfillment_command_t c = {.action = FULFILLMENT_ACTION_CREATE, .at = T0, .id = "F-1", .approved = &a};
  c.id = NULL;
  assert_rejected(NULL, &c, CTXD_EINVAL, "id is empty");
  c.id = "F-1";
  c.approved = NULL;
  assert_rejected(NULL, &c, CTXD_EINVAL, "approved compensation is missing");
  c.approved = &a;
  a.compensation_id[0] = '\0';
  assert_rejected(NULL, &c, CTXD_EINVAL, "compensation id is empty");
  a = approved(FULFILLMENT_KIND_RESHIP);
  a.plan.ops = NULL;
  assert_rejected(NULL, &c, CTXD_EINVAL, "plan is missing");
  a = approved(FULFILLMENT_KIND_RESHIP);
  c.at = 0;
  assert_rejected(NULL, &c, CTXD_EINVAL, "at must be positive");
  c.at = T0;
  c.action = (fulfillment_action_t)0;
  assert_rejected(NULL, &c, CTXD_EINVAL, "unknown action 0");
  c.action = (fulfillment_action_t)5;
  assert_rejected(NULL, &c, CTXD_EINVAL, "unknown action 5");
  c.action = FULFILLMENT_ACTION_CREATE;

  /* the same approval again (redelivered, republished) is a duplicate */
  fulfillment_order_t o = created(FULFILLMENT_KIND_RESHIP);
  assert_ignored(&o, &c, FULFILLMENT_IGNORED_DUPLICATE,
                 "fulfillment F-1 exists already for compensation C-1");
  strcpy(a.compensation_id, "C-2");
  assert_rejected(&o, &c, CTXD_EEXIST, "fulfillment F-1 exists already");

  fulfillment_decision_t *d = new_decision();
  assert_int_equal(fulfillment_order_decide(NULL, NULL, d), CTXD_EINVAL);
  assert_int_equal(fulfillment_order_decide(NULL, &c, NULL), CTXD_EINVAL);
  free(d);
}

/* 處理異常: a plan that cannot be carried out creates the fulfillment failed, with a
 * pending-communication record saying why, and announces the failure; never an error queue. */
static void test_create_with_a_plan_that_cannot_be_carried_out(void **state) {
  (void)state;
  fulfillment_approved_t a = approved(FULFILLMENT_KIND_PRODUCT_REFUND);
  a.plan.items[1].amount = 0;
  fulfillment_command_t c = {.action = FULFILLMENT_ACTION_CREATE, .at = T0, .id = "F-1", .approved = &a};
  fulfillment_decision_t *d = new_decision();
  fulfillment_order_t o = step(NULL, &c, FULFILLMENT_FIELD_ALL, 1, d);
  assert_int_equal(o.status, FULFILLMENT_STATUS_FAILED);
  assert_string_equal(o.communication.reason,
                      "the plan cannot be carried out: item 2: amount must be positive, got 0");
  assert_true(o.communication.opened_at == T0);
  assert_int_equal(d->messages[0].type, FULFILLMENT_MESSAGE_FAILED);
  assert_string_equal(d->messages[0].reason, o.communication.reason);
  /* stored and read back as it is, the plan that failed included */
  json_t *j = fulfillment_order_encode(&o);
  fulfillment_order_t back;
  assert_int_equal(fulfillment_order_decode(j, &back, NULL), 0);
  assert_int_equal(back.plan.items[1].amount, 0);
  json_decref(j);
  /* a case resolves it as any failure */
  fulfillment_command_t r = {.action = FULFILLMENT_ACTION_RESOLVE_MANUALLY,
                             .at = T0 + 1,
                             .actor = "agent-1",
                             .reason = "paid by hand"};
  o = step(&o, &r, FULFILLMENT_FIELD_STATUS | FULFILLMENT_FIELD_PENDING_COMMUNICATION | VU, 1, d);
  assert_int_equal(o.status, FULFILLMENT_STATUS_SUCCEEDED);

  /* a plan the message could not even hold */
  a = approved(FULFILLMENT_KIND_RESHIP);
  strcpy(a.unfit.text, "item 3: sku is longer than 64 bytes");
  o = step(NULL, &c, FULFILLMENT_FIELD_ALL, 1, d);
  assert_int_equal(o.status, FULFILLMENT_STATUS_FAILED);
  assert_string_equal(o.communication.reason,
                      "the plan cannot be carried out: item 3: sku is longer than 64 bytes");
  free(d);
}

/* ---- the refund path ------------------------------------------------------------------ */

/* A refund result is held against the request: a partial (or any other) amount, or another
 * currency, is no success; it is recorded, and the fulfillment fails with a reason naming
 * both. One completion per request: a later part is not added to an earlier one. */
static void test_refund_for_another_amount_fails(void **state) {
  (void)state;
  fulfillment_order_t o = created(FULFILLMENT_KIND_PRODUCT_REFUND);
  fulfillment_command_t c = feedback(FULFILLMENT_FEEDBACK_REFUND_COMPLETED, "PAY-3", NULL, T0 + 9);
  c.amount = 100;
  fulfillment_decision_t *d = new_decision();
  fulfillment_order_t failed = step(&o, &c,
                                    FULFILLMENT_FIELD_STATUS | FULFILLMENT_FIELD_REFUND_FEEDBACK |
                                        FULFILLMENT_FIELD_PENDING_COMMUNICATION | VU,
                                    1, d);
  assert_int_equal(failed.status, FULFILLMENT_STATUS_FAILED);
  assert_string_equal(failed.refund.payment_reference, "PAY-3");
  assert_string_equal(failed.communication.reason, "refund PAY-3 paid 100 of the 1750 requested");
  assert_int_equal(d->messages[0].type, FULFILLMENT_MESSAGE_FAILED);
  assert_string_equal(d->messages[0].reason, "refund PAY-3 paid 100 of the 1750 requested");
  /* the same result again is a duplicate */
  assert_ignored(&failed, &c, FULFILLMENT_IGNORED_DUPLICATE, "refund PAY-3 is recorded already");
  c.amount = 2000;
  step(&o, &c,
       FULFILLMENT_FIELD_STATUS | FULFILLMENT_FIELD_REFUND_FEEDBACK |
           FULFILLMENT_FIELD_PENDING_COMMUNICATION | VU,
       1, d);
  assert_string_equal(d->order.communication.reason, "refund PAY-3 paid 2000 of the 1750 requested");
  /* the amount requested in another currency is no success either */
  c.amount = 1750;
  c.currency = "USD";
  c.requested_currency = "CNY";
  step(&o, &c,
       FULFILLMENT_FIELD_STATUS | FULFILLMENT_FIELD_REFUND_FEEDBACK |
           FULFILLMENT_FIELD_PENDING_COMMUNICATION | VU,
       1, d);
  assert_string_equal(d->order.communication.reason, "refund PAY-3 paid 1750 USD, the request was 1750 CNY");
  c.currency = "CNY";
  fulfillment_order_t done =
      step(&o, &c, FULFILLMENT_FIELD_STATUS | FULFILLMENT_FIELD_REFUND_FEEDBACK | VU, 1, d);
  assert_int_equal(done.status, FULFILLMENT_STATUS_SUCCEEDED);
  free(d);
}

static void test_refund_completed(void **state) {
  (void)state;
  fulfillment_order_t o = created(FULFILLMENT_KIND_PRODUCT_REFUND);
  fulfillment_command_t c = feedback(FULFILLMENT_FEEDBACK_REFUND_COMPLETED, "PAY-77", NULL, T0 + 60000);
  fulfillment_decision_t *d = new_decision();
  fulfillment_order_t done =
      step(&o, &c, FULFILLMENT_FIELD_STATUS | FULFILLMENT_FIELD_REFUND_FEEDBACK | VU, 1, d);
  assert_int_equal(done.status, FULFILLMENT_STATUS_SUCCEEDED);
  assert_string_equal(done.refund.payment_reference, "PAY-77");
  assert_true(done.refund.completed_at == T0 + 60000);
  assert_int_equal(done.version, 2);
  assert_true(done.updated_at == T0 + 60000);
  assert_string_equal(done.communication.reason, "");
  const fulfillment_message_t *m = &d->messages[0];
  assert_int_equal(m->type, FULFILLMENT_MESSAGE_SUCCEEDED);
  assert_string_equal(m->reference, "PAY-77");
  assert_false(m->resolved_manually);
  assert_true(m->at == T0 + 60000);
  free(d);

  /* the same answer again, another payment, a failure after success */
  assert_ignored(&done, &c, FULFILLMENT_IGNORED_DUPLICATE, "refund PAY-77 is recorded already");
  c.reference = "PAY-78";
  assert_ignored(&done, &c, FULFILLMENT_IGNORED_CONFLICT, "refund PAY-77 is recorded, not PAY-78");
  c = feedback(FULFILLMENT_FEEDBACK_REFUND_FAILED, NULL, "card closed", T0 + 70000);
  assert_ignored(&done, &c, FULFILLMENT_IGNORED_LATE,
                 "refund_failed ignored: the fulfillment succeeded already");
}

static void test_refund_failed(void **state) {
  (void)state;
  fulfillment_order_t o = created(FULFILLMENT_KIND_PRODUCT_REFUND);
  fulfillment_command_t c = feedback(FULFILLMENT_FEEDBACK_REFUND_FAILED, NULL, "card closed", T0 + 5000);
  fulfillment_decision_t *d = new_decision();
  fulfillment_order_t failed =
      step(&o, &c, FULFILLMENT_FIELD_STATUS | FULFILLMENT_FIELD_PENDING_COMMUNICATION | VU, 1, d);
  assert_int_equal(failed.status, FULFILLMENT_STATUS_FAILED);
  assert_string_equal(failed.communication.reason, "card closed");
  assert_true(failed.communication.opened_at == T0 + 5000);
  assert_string_equal(failed.communication.resolved_by, "");
  assert_string_equal(failed.refund.payment_reference, "");
  const fulfillment_message_t *m = &d->messages[0];
  assert_int_equal(m->type, FULFILLMENT_MESSAGE_FAILED);
  assert_string_equal(m->reason, "card closed");
  char *text = take_text(fulfillment_message_encode(m));
  assert_string_equal(text, "{\"at\":1700000005000,\"compensationId\":\"C-1\",\"fulfillmentId\":"
                            "\"F-1\",\"orderId\":\"O-1\",\"reason\":\"card closed\",\"strategy\":"
                            "\"product_refund\"}");
  free(text);
  free(d);

  /* a second failure is a duplicate; a completion after failure is late: a Case resolves it */
  c.reason = "another reason";
  assert_ignored(&failed, &c, FULFILLMENT_IGNORED_DUPLICATE,
                 "refund_failed ignored: the fulfillment failed already");
  c = feedback(FULFILLMENT_FEEDBACK_REFUND_COMPLETED, "PAY-1", NULL, T0 + 9000);
  assert_ignored(&failed, &c, FULFILLMENT_IGNORED_LATE,
                 "refund_completed ignored: the fulfillment failed already");
}

/* ---- the reship path ------------------------------------------------------------------ */

static void test_reship_created_then_shipped(void **state) {
  (void)state;
  fulfillment_order_t o = created(FULFILLMENT_KIND_RESHIP);
  fulfillment_command_t c = feedback(FULFILLMENT_FEEDBACK_RESHIP_CREATED, "R-5", NULL, T0 + 10);
  fulfillment_decision_t *d = new_decision();
  fulfillment_order_t made = step(&o, &c, FULFILLMENT_FIELD_RESHIP_FEEDBACK | VU, 0, d);
  assert_int_equal(made.status, FULFILLMENT_STATUS_PROCESSING);
  assert_string_equal(made.reship.order_id, "R-5");
  assert_true(made.reship.created_at == T0 + 10);
  assert_true(made.reship.shipped_at == 0);

  assert_ignored(&made, &c, FULFILLMENT_IGNORED_DUPLICATE, "reship order R-5 is created already");
  c.reference = "R-6";
  assert_ignored(&made, &c, FULFILLMENT_IGNORED_CONFLICT, "reship order R-5 is recorded, not R-6");

  c = feedback(FULFILLMENT_FEEDBACK_RESHIP_SHIPPED, "R-6", NULL, T0 + 20);
  assert_ignored(&made, &c, FULFILLMENT_IGNORED_CONFLICT, "reship order R-5 is recorded, not R-6");
  c.reference = "R-5";
  fulfillment_order_t shipped =
      step(&made, &c, FULFILLMENT_FIELD_STATUS | FULFILLMENT_FIELD_RESHIP_FEEDBACK | VU, 1, d);
  assert_int_equal(shipped.status, FULFILLMENT_STATUS_SUCCEEDED);
  assert_true(shipped.reship.created_at == T0 + 10);
  assert_true(shipped.reship.shipped_at == T0 + 20);
  assert_int_equal(shipped.version, 3);
  assert_int_equal(d->messages[0].type, FULFILLMENT_MESSAGE_SUCCEEDED);
  assert_string_equal(d->messages[0].reference, "R-5");

  assert_ignored(&shipped, &c, FULFILLMENT_IGNORED_DUPLICATE, "reship order R-5 is shipped already");
  c = feedback(FULFILLMENT_FEEDBACK_RESHIP_CREATED, "R-5", NULL, T0 + 30);
  assert_ignored(&shipped, &c, FULFILLMENT_IGNORED_DUPLICATE, "reship order R-5 is created already");
  c = feedback(FULFILLMENT_FEEDBACK_RESHIP_FAILED, NULL, "lost in transit", T0 + 40);
  assert_ignored(&shipped, &c, FULFILLMENT_IGNORED_LATE,
                 "reship_failed ignored: the fulfillment succeeded already");
  free(d);
}

static void test_reship_shipped_before_created(void **state) {
  (void)state;
  fulfillment_order_t o = created(FULFILLMENT_KIND_RESHIP);
  fulfillment_command_t c = feedback(FULFILLMENT_FEEDBACK_RESHIP_SHIPPED, "R-5", NULL, T0 + 20);
  fulfillment_decision_t *d = new_decision();
  /* shipping implies the order exists: recorded, created_at unknown, succeeded */
  fulfillment_order_t shipped =
      step(&o, &c, FULFILLMENT_FIELD_STATUS | FULFILLMENT_FIELD_RESHIP_FEEDBACK | VU, 1, d);
  assert_int_equal(shipped.status, FULFILLMENT_STATUS_SUCCEEDED);
  assert_string_equal(shipped.reship.order_id, "R-5");
  assert_true(shipped.reship.created_at == 0);
  assert_true(shipped.reship.shipped_at == T0 + 20);
  free(d);
  /* the late created changes nothing, nor does one for another order */
  c = feedback(FULFILLMENT_FEEDBACK_RESHIP_CREATED, "R-5", NULL, T0 + 10);
  assert_ignored(&shipped, &c, FULFILLMENT_IGNORED_DUPLICATE, "reship order R-5 is created already");
  c.reference = "R-1";
  assert_ignored(&shipped, &c, FULFILLMENT_IGNORED_CONFLICT, "reship order R-5 is recorded, not R-1");
}

static void test_reship_failed(void **state) {
  (void)state;
  fulfillment_order_t o = created(FULFILLMENT_KIND_RESHIP);
  fulfillment_command_t c = feedback(FULFILLMENT_FEEDBACK_RESHIP_CREATED, "R-5", NULL, T0 + 10);
  fulfillment_decision_t *d = new_decision();
  fulfillment_order_t made = step(&o, &c, FULFILLMENT_FIELD_RESHIP_FEEDBACK | VU, 0, d);
  c = feedback(FULFILLMENT_FEEDBACK_RESHIP_FAILED, NULL, "out of stock", T0 + 20);
  fulfillment_order_t failed =
      step(&made, &c, FULFILLMENT_FIELD_STATUS | FULFILLMENT_FIELD_PENDING_COMMUNICATION | VU, 1, d);
  assert_int_equal(failed.status, FULFILLMENT_STATUS_FAILED);
  assert_string_equal(failed.communication.reason, "out of stock");
  assert_string_equal(failed.reship.order_id, "R-5"); /* feedback so far is kept */
  assert_int_equal(d->messages[0].type, FULFILLMENT_MESSAGE_FAILED);
  /* failing without any order created works the same */
  step(&o, &c, FULFILLMENT_FIELD_STATUS | FULFILLMENT_FIELD_PENDING_COMMUNICATION | VU, 1, d);
  free(d);

  assert_ignored(&failed, &c, FULFILLMENT_IGNORED_DUPLICATE,
                 "reship_failed ignored: the fulfillment failed already");
  c = feedback(FULFILLMENT_FEEDBACK_RESHIP_SHIPPED, "R-5", NULL, T0 + 30);
  assert_ignored(&failed, &c, FULFILLMENT_IGNORED_LATE,
                 "reship_shipped ignored: the fulfillment failed already");
  fulfillment_order_t failed_early = failed;
  memset(&failed_early.reship, 0, sizeof failed_early.reship);
  c = feedback(FULFILLMENT_FEEDBACK_RESHIP_CREATED, "R-7", NULL, T0 + 30);
  assert_ignored(&failed_early, &c, FULFILLMENT_IGNORED_LATE,
                 "reship_created ignored: the fulfillment failed already");
}

/* ---- misdirected, unknown and malformed feedback -------------------------------------- */

static void test_wrong_strategy_and_unknown_feedback(void **state) {
  (void)state;
  fulfillment_order_t refund = created(FULFILLMENT_KIND_PRODUCT_REFUND);
  fulfillment_order_t reship = created(FULFILLMENT_KIND_RESHIP);
  fulfillment_order_t voucher = created(FULFILLMENT_KIND_NON_PRODUCT);
  fulfillment_command_t c = feedback(FULFILLMENT_FEEDBACK_RESHIP_SHIPPED, "R-1", NULL, T0 + 1);
  assert_ignored(&refund, &c, FULFILLMENT_IGNORED_WRONG_STRATEGY,
                 "reship_shipped does not apply to a product refund fulfillment");
  assert_ignored(&voucher, &c, FULFILLMENT_IGNORED_WRONG_STRATEGY,
                 "reship_shipped does not apply to a non-product fulfillment");
  c = feedback(FULFILLMENT_FEEDBACK_REFUND_COMPLETED, "P-1", NULL, T0 + 1);
  assert_ignored(&reship, &c, FULFILLMENT_IGNORED_WRONG_STRATEGY,
                 "refund_completed does not apply to a reship fulfillment");
  assert_ignored(&voucher, &c, FULFILLMENT_IGNORED_WRONG_STRATEGY,
                 "refund_completed does not apply to a non-product fulfillment");
  /* misdirected feedback is ignored even when it is malformed */
  c.reference = NULL;
  assert_ignored(&reship, &c, FULFILLMENT_IGNORED_WRONG_STRATEGY,
                 "refund_completed does not apply to a reship fulfillment");

  c = feedback(FULFILLMENT_FEEDBACK_UNKNOWN, "X", NULL, T0 + 1);
  assert_ignored(&refund, &c, FULFILLMENT_IGNORED_UNKNOWN, "unknown feedback 0");
  c.feedback = (fulfillment_feedback_t)42;
  assert_ignored(&reship, &c, FULFILLMENT_IGNORED_UNKNOWN, "unknown feedback 42");
  c.feedback = FULFILLMENT_FEEDBACK_UNKNOWN;
  assert_ignored(&voucher, &c, FULFILLMENT_IGNORED_UNKNOWN, "unknown feedback 0");

  c = feedback(FULFILLMENT_FEEDBACK_REFUND_COMPLETED, "P-1", NULL, 0);
  assert_rejected(&refund, &c, CTXD_EINVAL, "at must be positive");
  c = feedback(FULFILLMENT_FEEDBACK_REFUND_COMPLETED, "P-1", NULL, T0);
  assert_rejected(NULL, &c, CTXD_ENOENT, "no fulfillment for this feedback");
}

/* What a downstream system says is never refused: a reference the order cannot keep (empty,
 * 192 bytes of 64 CJK characters) fails the fulfillment with a pending communication; a
 * reason longer than the order keeps is cut on a character boundary; none is named. */
static void test_unusable_feedback_fails_with_a_record(void **state) {
  (void)state;
  fulfillment_order_t refund = created(FULFILLMENT_KIND_PRODUCT_REFUND);
  fulfillment_order_t reship = created(FULFILLMENT_KIND_RESHIP);
  fulfillment_decision_t *d = new_decision();
  char cjk[64 * 3 + 1] = "";
  for (int i = 0; i < 64; i++) strcat(cjk, "\xe9\x80\x80"); /* 退 */
  fulfillment_command_t c = feedback(FULFILLMENT_FEEDBACK_REFUND_COMPLETED, cjk, NULL, T0 + 1);
  fulfillment_order_t o =
      step(&refund, &c, FULFILLMENT_FIELD_STATUS | FULFILLMENT_FIELD_PENDING_COMMUNICATION | VU, 1, d);
  assert_int_equal(o.status, FULFILLMENT_STATUS_FAILED);
  assert_string_equal(o.refund.payment_reference, "");
  assert_string_equal(o.communication.reason, "refund_completed: payment reference is longer than 64 bytes");
  assert_int_equal(d->messages[0].type, FULFILLMENT_MESSAGE_FAILED);
  /* the same answer again: the failure stands */
  assert_ignored(&o, &c, FULFILLMENT_IGNORED_DUPLICATE,
                 "refund_completed ignored: the fulfillment failed already");
  c = feedback(FULFILLMENT_FEEDBACK_REFUND_COMPLETED, "", NULL, T0 + 1);
  o = step(&refund, &c, FULFILLMENT_FIELD_STATUS | FULFILLMENT_FIELD_PENDING_COMMUNICATION | VU, 1, d);
  assert_string_equal(o.communication.reason, "refund_completed: payment reference is empty");
  c = feedback(FULFILLMENT_FEEDBACK_RESHIP_CREATED, NULL, NULL, T0 + 1);
  o = step(&reship, &c, FULFILLMENT_FIELD_STATUS | FULFILLMENT_FIELD_PENDING_COMMUNICATION | VU, 1, d);
  assert_string_equal(o.communication.reason, "reship_created: reship order id is empty");
  c = feedback(FULFILLMENT_FEEDBACK_RESHIP_FAILED, NULL, NULL, T0 + 1);
  o = step(&reship, &c, FULFILLMENT_FIELD_STATUS | FULFILLMENT_FIELD_PENDING_COMMUNICATION | VU, 1, d);
  assert_string_equal(o.communication.reason, "reship_failed without a reason");

  /* ReshipOrderFailed.Reason may be 1000 characters: the first ones the order keeps, whole */
  char reason[1000 * 3 + 1] = "x";
  for (int i = 0; i < 999; i++) strcat(reason, "\xe7\xbc\xba"); /* 缺 */
  c = feedback(FULFILLMENT_FEEDBACK_RESHIP_FAILED, NULL, reason, T0 + 1);
  o = step(&reship, &c, FULFILLMENT_FIELD_STATUS | FULFILLMENT_FIELD_PENDING_COMMUNICATION | VU, 1, d);
  assert_int_equal(o.status, FULFILLMENT_STATUS_FAILED);
  size_t n = strlen(o.communication.reason);
  assert_int_equal(n, 1 + 85 * 3); /* 256 bytes would split the 86th character */
  assert_memory_equal(o.communication.reason, reason, n);
  assert_string_equal(d->messages[0].reason, o.communication.reason);
  /* a case's note too */
  fulfillment_command_t r = {
      .action = FULFILLMENT_ACTION_RESOLVE_MANUALLY, .at = T0 + 2, .actor = "agent-1", .reason = reason};
  o = step(&o, &r, FULFILLMENT_FIELD_STATUS | FULFILLMENT_FIELD_PENDING_COMMUNICATION | VU, 1, d);
  assert_int_equal(strlen(o.communication.resolution), 1 + 85 * 3);
  free(d);
}

/* An approval without the order or the customer is created failed, like an unfit plan. */
static void test_create_without_order_fails_with_a_record(void **state) {
  (void)state;
  fulfillment_approved_t a = approved(FULFILLMENT_KIND_RESHIP);
  a.order_id[0] = '\0';
  fulfillment_command_t c = {.action = FULFILLMENT_ACTION_CREATE, .at = T0, .id = "F-1", .approved = &a};
  fulfillment_decision_t *d = new_decision();
  fulfillment_order_t o = step(NULL, &c, FULFILLMENT_FIELD_ALL, 1, d);
  assert_int_equal(o.status, FULFILLMENT_STATUS_FAILED);
  assert_string_equal(o.communication.reason, "the plan cannot be carried out: order id is empty");
  a = approved(FULFILLMENT_KIND_RESHIP);
  a.customer_id[0] = '\0';
  o = step(NULL, &c, FULFILLMENT_FIELD_ALL, 1, d);
  assert_string_equal(o.communication.reason, "the plan cannot be carried out: customer id is empty");
  a = approved(FULFILLMENT_KIND_RESHIP);
  strcpy(a.unfit.text, "order number is longer than 64 bytes");
  o = step(NULL, &c, FULFILLMENT_FIELD_ALL, 1, d);
  assert_string_equal(o.communication.reason,
                      "the plan cannot be carried out: order number is longer than 64 bytes");
  free(d);
}

/* ---- manual resolution ---------------------------------------------------------------- */

/* A case closed or rejected about a failed fulfillment gives it up: abandoned for good, the
 * record closed with how the case ended, FulfillmentAbandoned announced. Anywhere else it
 * is news that changes nothing. */
static void test_abandon_when_the_case_ends_unfinished(void **state) {
  (void)state;
  fulfillment_order_t o = created(FULFILLMENT_KIND_RESHIP);
  fulfillment_command_t c = feedback(FULFILLMENT_FEEDBACK_RESHIP_FAILED, NULL, "out of stock", T0 + 5);
  fulfillment_decision_t *d = new_decision();
  fulfillment_order_t failed =
      step(&o, &c, FULFILLMENT_FIELD_STATUS | FULFILLMENT_FIELD_PENDING_COMMUNICATION | VU, 1, d);
  fulfillment_command_t a = {
      .action = FULFILLMENT_ACTION_ABANDON, .at = T0 + 9, .actor = "agent-7", .reason = "case 9 closed"};
  assert_ignored(&o, &a, FULFILLMENT_IGNORED_LATE, "abandon ignored: the fulfillment processing already");
  fulfillment_order_t gone =
      step(&failed, &a, FULFILLMENT_FIELD_STATUS | FULFILLMENT_FIELD_PENDING_COMMUNICATION | VU, 1, d);
  assert_int_equal(gone.status, FULFILLMENT_STATUS_ABANDONED);
  assert_string_equal(gone.communication.reason, "out of stock");
  assert_string_equal(gone.communication.resolved_by, "agent-7");
  assert_string_equal(gone.communication.resolution, "case 9 closed");
  assert_int_equal(d->messages[0].type, FULFILLMENT_MESSAGE_ABANDONED);
  assert_string_equal(d->messages[0].reason, "case 9 closed");
  assert_string_equal(fulfillment_message_type_name(FULFILLMENT_MESSAGE_ABANDONED), "FulfillmentAbandoned");
  /* final: the same again is a duplicate; a finished case or late feedback changes nothing */
  assert_ignored(&gone, &a, FULFILLMENT_IGNORED_DUPLICATE,
                 "abandon ignored: the fulfillment abandoned already");
  c = feedback(FULFILLMENT_FEEDBACK_RESHIP_SHIPPED, "RS-1", NULL, T0 + 10);
  assert_ignored(&gone, &c, FULFILLMENT_IGNORED_LATE,
                 "reship_shipped ignored: the fulfillment abandoned already");
  fulfillment_command_t r = {
      .action = FULFILLMENT_ACTION_RESOLVE_MANUALLY, .at = T0 + 11, .actor = "agent-7", .reason = "done"};
  assert_rejected(&gone, &r, CTXD_ESTATE, "cannot resolve_manually a fulfillment that is abandoned");
  /* stored and read back */
  json_t *j = fulfillment_order_encode(&gone);
  fulfillment_order_t back;
  assert_int_equal(fulfillment_order_decode(j, &back, NULL), 0);
  assert_int_equal(back.status, FULFILLMENT_STATUS_ABANDONED);
  json_decref(j);
  fulfillment_order_t succeeded = created(FULFILLMENT_KIND_RESHIP);
  succeeded.status = FULFILLMENT_STATUS_SUCCEEDED;
  assert_ignored(&succeeded, &a, FULFILLMENT_IGNORED_LATE,
                 "abandon ignored: the fulfillment succeeded already");
  free(d);
}

static void test_manual_resolution(void **state) {
  (void)state;
  fulfillment_order_t o = created(FULFILLMENT_KIND_PRODUCT_REFUND);
  fulfillment_command_t c = feedback(FULFILLMENT_FEEDBACK_REFUND_FAILED, NULL, "card closed", T0 + 5);
  fulfillment_decision_t *d = new_decision();
  fulfillment_order_t failed =
      step(&o, &c, FULFILLMENT_FIELD_STATUS | FULFILLMENT_FIELD_PENDING_COMMUNICATION | VU, 1, d);

  fulfillment_command_t r = {.action = FULFILLMENT_ACTION_RESOLVE_MANUALLY,
                             .at = T0 + 99,
                             .actor = "case-12",
                             .reason = "paid in cash at the store"};
  assert_rejected(&o, &r, CTXD_ESTATE, "cannot resolve_manually a fulfillment that is processing");
  r.actor = NULL;
  assert_rejected(&failed, &r, CTXD_EINVAL, "actor is empty");
  assert_rejected(NULL, &r, CTXD_ENOENT, "no fulfillment to resolve_manually");
  r.actor = "case-12";

  fulfillment_order_t resolved =
      step(&failed, &r, FULFILLMENT_FIELD_STATUS | FULFILLMENT_FIELD_PENDING_COMMUNICATION | VU, 1, d);
  assert_int_equal(resolved.status, FULFILLMENT_STATUS_SUCCEEDED);
  assert_string_equal(resolved.communication.reason, "card closed");
  assert_string_equal(resolved.communication.resolved_by, "case-12");
  assert_string_equal(resolved.communication.resolution, "paid in cash at the store");
  assert_true(resolved.communication.resolved_at == T0 + 99);
  const fulfillment_message_t *m = &d->messages[0];
  assert_int_equal(m->type, FULFILLMENT_MESSAGE_SUCCEEDED);
  assert_true(m->resolved_manually);
  assert_string_equal(m->reason, "paid in cash at the store");
  assert_string_equal(m->reference, "");
  char *text = take_text(fulfillment_message_encode(m));
  assert_string_equal(text, "{\"at\":1700000000099,\"compensationId\":\"C-1\",\"fulfillmentId\":"
                            "\"F-1\",\"orderId\":\"O-1\",\"reason\":\"paid in cash at the store\","
                            "\"reference\":\"\",\"resolvedManually\":true,\"strategy\":"
                            "\"product_refund\"}");
  free(text);

  /* a note is optional */
  r.reason = NULL;
  fulfillment_order_t bare =
      step(&failed, &r, FULFILLMENT_FIELD_STATUS | FULFILLMENT_FIELD_PENDING_COMMUNICATION | VU, 1, d);
  assert_string_equal(bare.communication.resolution, "");
  free(d);

  /* resolving again, or a success reported after the resolution, changes nothing */
  assert_ignored(&resolved, &r, FULFILLMENT_IGNORED_DUPLICATE,
                 "resolve_manually ignored: the fulfillment succeeded already");
  c = feedback(FULFILLMENT_FEEDBACK_REFUND_COMPLETED, "PAY-9", NULL, T0 + 200);
  assert_ignored(&resolved, &c, FULFILLMENT_IGNORED_LATE,
                 "refund_completed ignored: the fulfillment succeeded already");
  fulfillment_order_t voucher = created(FULFILLMENT_KIND_NON_PRODUCT);
  assert_rejected(&voucher, &r, CTXD_ESTATE, "cannot resolve_manually a fulfillment that is processing");
}

/* ---- JSON ----------------------------------------------------------------------------- */

static void assert_order_round_trip(const fulfillment_order_t *o, const char *want) {
  json_t *j = fulfillment_order_encode(o);
  char *text = text_of(j);
  if (want) assert_string_equal(text, want);
  free(text);
  assert_int_equal(json_object_size(j), FULFILLMENT_FIELD_COUNT);
  fulfillment_order_t back;
  fulfillment_why_t why = {{0}};
  assert_int_equal(fulfillment_order_decode(j, &back, &why), 0);
  json_t *again = fulfillment_order_encode(&back);
  assert_true(json_equal(j, again));
  assert_int_equal(back.status, o->status);
  assert_int_equal(back.version, o->version);
  assert_string_equal(back.reship.order_id, o->reship.order_id);
  assert_string_equal(back.communication.resolved_by, o->communication.resolved_by);
  json_decref(again);
  json_decref(j);
}

static void assert_order_decode_fails(const json_t *good, const char *key, json_t *value,
                                      const char *why_text) {
  json_t *bad = json_deep_copy(good);
  if (value)
    json_object_set_new(bad, key, value);
  else
    json_object_del(bad, key);
  fulfillment_order_t o;
  fulfillment_why_t why = {{0}};
  assert_int_equal(fulfillment_order_decode(bad, &o, &why), CTXD_EDECODE);
  assert_string_equal(why.text, why_text);
  json_decref(bad);
}

static void test_order_json(void **state) {
  (void)state;
  fulfillment_order_t o = created(FULFILLMENT_KIND_RESHIP);
  assert_order_round_trip(
      &o,
      "{\"benefit_feedback\":null,\"compensation_id\":\"C-1\",\"created_at\":1700000000000,"
      "\"customer_id\":\"U-1\",\"id\":\"F-1\",\"order_id\":\"O-1\",\"pending_communication\":null,\"plan\":{"
      "\"items\":[{\"quantity\":2,\"sku\":\"SKU-1\"},{\"quantity\":1,\"sku\":\"SKU-2\"}],"
      "\"kind\":\"reship\"},\"refund_feedback\":null,\"reship_"
      "feedback\":null,\"status\":"
      "\"processing\",\"strategy_kind\":\"reship\",\"updated_at\":1700000000000,"
      "\"version\":1}");

  fulfillment_decision_t *d = new_decision();
  fulfillment_command_t c = feedback(FULFILLMENT_FEEDBACK_RESHIP_SHIPPED, "R-5", NULL, T0 + 20);
  assert_int_equal(fulfillment_order_decide(&o, &c, d), 0);
  assert_order_round_trip(&d->order, NULL);
  json_t *j = fulfillment_order_encode(&d->order);
  char *text = text_of(json_object_get(j, "reship_feedback"));
  assert_string_equal(text, "{\"created_at\":0,\"order_id\":\"R-5\",\"shipped_at\":1700000000020}");
  free(text);
  json_decref(j);

  fulfillment_order_t refund = created(FULFILLMENT_KIND_PRODUCT_REFUND);
  c = feedback(FULFILLMENT_FEEDBACK_REFUND_COMPLETED, "PAY-1", NULL, T0 + 1);
  assert_int_equal(fulfillment_order_decide(&refund, &c, d), 0);
  j = fulfillment_order_encode(&d->order);
  text = text_of(json_object_get(j, "refund_feedback"));
  assert_string_equal(text, "{\"completed_at\":1700000000001,\"payment_reference\":\"PAY-1\"}");
  free(text);
  json_decref(j);
  assert_order_round_trip(&d->order, NULL);

  c = feedback(FULFILLMENT_FEEDBACK_REFUND_FAILED, NULL, "declined", T0 + 2);
  assert_int_equal(fulfillment_order_decide(&refund, &c, d), 0);
  fulfillment_order_t failed = d->order;
  assert_order_round_trip(&failed, NULL);
  fulfillment_command_t r = {
      .action = FULFILLMENT_ACTION_RESOLVE_MANUALLY, .at = T0 + 3, .actor = "case-1", .reason = "done"};
  assert_int_equal(fulfillment_order_decide(&failed, &r, d), 0);
  j = fulfillment_order_encode(&d->order);
  text = text_of(json_object_get(j, "pending_communication"));
  assert_string_equal(text, "{\"opened_at\":1700000000002,\"reason\":\"declined\",\"resolution\":"
                            "\"done\",\"resolved_at\":1700000000003,\"resolved_by\":\"case-1\"}");
  free(text);
  assert_order_round_trip(&d->order, NULL);
  assert_order_round_trip(&d->order, NULL);
  free(d);

  assert_order_decode_fails(j, "status", json_string("lost"), "unknown status 'lost'");
  assert_order_decode_fails(j, "strategy_kind", json_string("reship"),
                            "strategy_kind reship does not match the plan's product_refund");
  assert_order_decode_fails(j, "version", json_integer(0), "version 0 is out of range");
  assert_order_decode_fails(j, "id", json_string(""), "id is empty");
  assert_order_decode_fails(j, "plan", json_pack("{s:s}", "kind", "cash"), "unknown strategy kind 'cash'");
  assert_order_decode_fails(j, "refund_feedback", json_pack("{s:s}", "payment_reference", "P"),
                            "refund_feedback: Object item not found: completed_at");
  assert_order_decode_fails(j, "reship_feedback", json_integer(3),
                            "reship_feedback: Expected object, got integer");
  assert_order_decode_fails(j, "pending_communication",
                            json_pack("{s:s, s:i, s:s, s:s, s:i}", "reason", "", "opened_at", 1,
                                      "resolved_by", "", "resolution", "", "resolved_at", 0),
                            "pending_communication.reason is empty");
  assert_order_decode_fails(j, "customer_id", NULL, "Object item not found: customer_id");
  json_decref(j);

  o.status = FULFILLMENT_STATUS_NONE;
  assert_null(fulfillment_order_encode(&o));
  assert_null(fulfillment_order_encode(NULL));
}

static void test_message_json(void **state) {
  (void)state;
  fulfillment_decision_t *d = new_decision();
  fulfillment_message_t all[5];
  size_t n = 0;
  fulfillment_order_t refund = created(FULFILLMENT_KIND_PRODUCT_REFUND);
  fulfillment_approved_t a = approved(FULFILLMENT_KIND_PRODUCT_REFUND);
  fulfillment_command_t c = {.action = FULFILLMENT_ACTION_CREATE, .at = T0, .id = "F-1", .approved = &a};
  assert_int_equal(fulfillment_order_decide(NULL, &c, d), 0);
  all[n++] = d->messages[0]; /* RefundRequested */
  all[n++] = d->messages[1]; /* FulfillmentProcessing */
  a = approved(FULFILLMENT_KIND_RESHIP);
  assert_int_equal(fulfillment_order_decide(NULL, &c, d), 0);
  all[n++] = d->messages[0]; /* ReshipOrderRequested */
  c = feedback(FULFILLMENT_FEEDBACK_REFUND_FAILED, NULL, "declined", T0 + 2);
  assert_int_equal(fulfillment_order_decide(&refund, &c, d), 0);
  all[n++] = d->messages[0]; /* FulfillmentFailed */
  fulfillment_order_t failed = d->order;
  fulfillment_command_t r = {
      .action = FULFILLMENT_ACTION_RESOLVE_MANUALLY, .at = T0 + 3, .actor = "case-1", .reason = "done"};
  assert_int_equal(fulfillment_order_decide(&failed, &r, d), 0);
  all[n++] = d->messages[0]; /* FulfillmentSucceeded, by hand */
  free(d);

  static const char *const names[] = {"RefundRequested", "FulfillmentProcessing", "ReshipOrderRequested",
                                      "FulfillmentFailed", "FulfillmentSucceeded"};
  for (size_t i = 0; i < n; i++) {
    assert_string_equal(fulfillment_message_type_name(all[i].type), names[i]);
    json_t *j = fulfillment_message_encode(&all[i]);
    assert_non_null(j);
    json_decref(j);
  }

  /* a request whose plan is of another kind than it says is malformed */
  fulfillment_message_t odd = all[0];
  odd.kind = FULFILLMENT_KIND_RESHIP;
  assert_null(fulfillment_message_encode(&odd));
  odd.type = (fulfillment_message_type_t)0;
  assert_null(fulfillment_message_encode(&odd));
}

static void test_names(void **state) {
  (void)state;
  assert_string_equal(fulfillment_status_name(FULFILLMENT_STATUS_FAILED), "failed");
  assert_null(fulfillment_status_name(FULFILLMENT_STATUS_NONE));
  assert_string_equal(fulfillment_feedback_name(FULFILLMENT_FEEDBACK_RESHIP_SHIPPED), "reship_shipped");
  assert_null(fulfillment_feedback_name(FULFILLMENT_FEEDBACK_UNKNOWN));
  assert_string_equal(fulfillment_ignored_name(FULFILLMENT_IGNORED_WRONG_STRATEGY), "wrong_strategy");
  assert_null(fulfillment_ignored_name(FULFILLMENT_IGNORED_NONE));
  assert_string_equal(fulfillment_kind_name(FULFILLMENT_KIND_RESHIP), "reship");
  assert_null(fulfillment_kind_name(FULFILLMENT_KIND_NONE));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_plan_rules),
      cmocka_unit_test(test_plan_totals),
      cmocka_unit_test(test_plan_json),
      cmocka_unit_test(test_item_limit_is_the_contracts),
      cmocka_unit_test(test_create_non_product_calls_the_issuing_system),
      cmocka_unit_test(test_create_with_a_plan_that_cannot_be_carried_out),
      cmocka_unit_test(test_create_refund_requests_and_waits),
      cmocka_unit_test(test_create_reship_requests_and_waits),
      cmocka_unit_test(test_create_rejections_and_duplicates),
      cmocka_unit_test(test_refund_completed),
      cmocka_unit_test(test_refund_for_another_amount_fails),
      cmocka_unit_test(test_refund_failed),
      cmocka_unit_test(test_reship_created_then_shipped),
      cmocka_unit_test(test_reship_shipped_before_created),
      cmocka_unit_test(test_reship_failed),
      cmocka_unit_test(test_wrong_strategy_and_unknown_feedback),
      cmocka_unit_test(test_unusable_feedback_fails_with_a_record),
      cmocka_unit_test(test_create_without_order_fails_with_a_record),
      cmocka_unit_test(test_manual_resolution),
      cmocka_unit_test(test_abandon_when_the_case_ends_unfinished),
      cmocka_unit_test(test_order_json),
      cmocka_unit_test(test_message_json),
      cmocka_unit_test(test_names),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
