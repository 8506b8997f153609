/* The compensation order domain: strategy rules, totals, every action from every status,
 * update tracing, reactions to fulfillment events, JSON round trips. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <ctxd/errno.h>

#include "domain.h"
#include "testsupport.h"

#define T0 1700000000000LL /* the apply time used throughout */

/* Decisions are several KB: one per test, on the heap. */
static compensation_decision_t *new_decision(void) {
  compensation_decision_t *d = calloc(1, sizeof *d);
  assert_non_null(d);
  return d;
}

static compensation_strategy_t refund2(void) {
  compensation_strategy_t s;
  assert_int_equal(compensation_strategy_init(&s, COMPENSATION_STRATEGY_PRODUCT_REFUND), 0);
  assert_int_equal(compensation_strategy_add_refund_item(&s, "SKU-1", 2, 1500), 0);
  assert_int_equal(compensation_strategy_add_refund_item(&s, "SKU-2", 1, 250), 0);
  return s;
}

static compensation_strategy_t reship1(void) {
  compensation_strategy_t s;
  assert_int_equal(compensation_strategy_init(&s, COMPENSATION_STRATEGY_RESHIP), 0);
  assert_int_equal(compensation_strategy_add_reship_item(&s, "SKU-9", 3), 0);
  return s;
}

static compensation_strategy_t voucher(int64_t amount) {
  compensation_strategy_t s;
  assert_int_equal(compensation_strategy_init(&s, COMPENSATION_STRATEGY_NON_PRODUCT), 0);
  assert_int_equal(compensation_strategy_set_non_product(&s, COMPENSATION_BENEFIT_VOUCHER, amount), 0);
  return s;
}

static compensation_command_t apply_cmd(const compensation_strategy_t *s) {
  return (compensation_command_t){.action = COMPENSATION_ACTION_APPLY,
                                  .at = T0,
                                  .id = "C-1",
                                  .order_id = "O-1",
                                  .customer_id = "U-1",
                                  .channel = COMPENSATION_CHANNEL_CUSTOMER_SERVICE,
                                  .actor = "agent-7",
                                  .reason = "pizza arrived cold",
                                  .strategy = s};
}

/* An applied order with a two-item refund (total 1750), put into `status` by hand. */
static compensation_order_t order_in(compensation_status_t status) {
  compensation_strategy_t s = refund2();
  compensation_command_t c = apply_cmd(&s);
  compensation_decision_t *d = new_decision();
  assert_int_equal(compensation_order_decide(NULL, &c, d), 0);
  compensation_order_t o = d->order;
  free(d);
  o.status = status;
  return o;
}

/* Decides and expects a rejection with exactly this code and text; the state is kept. */
static void assert_rejected(const compensation_order_t *state, const compensation_command_t *c, int code,
                            const char *text) {
  compensation_decision_t *d = new_decision();
  assert_int_equal(compensation_order_decide(state, c, d), code);
  assert_string_equal(d->why.text, text);
  assert_int_equal(d->changed, 0);
  assert_int_equal(d->n_events, 0);
  assert_false(d->ignored);
  if (state) assert_memory_equal(&d->order, state, sizeof *state);
  free(d);
}

static void assert_validation(const compensation_strategy_t *s, int code, const char *text) {
  compensation_why_t why = {{0}};
  assert_int_equal(compensation_strategy_validate(s, &why), code);
  assert_string_equal(why.text, text);
}

/* ---- strategies ----------------------------------------------------------------------- */

static void test_refund_rules(void **state) {
  (void)state;
  compensation_strategy_t s = refund2();
  assert_int_equal(compensation_strategy_validate(&s, NULL), 0);

  compensation_strategy_init(&s, COMPENSATION_STRATEGY_PRODUCT_REFUND);
  assert_validation(&s, CTXD_EINVAL, "product refund needs at least one item");

  s = refund2();
  s.refund.items[1].line.sku[0] = '\0';
  assert_validation(&s, CTXD_EINVAL, "item 2: sku is empty");

  s = refund2();
  memset(s.refund.items[0].line.sku, 'x', sizeof s.refund.items[0].line.sku);
  assert_validation(&s, CTXD_ETOOBIG, "item 1: sku is longer than 64 bytes");

  s = refund2();
  s.refund.items[1].line.quantity = 0;
  assert_validation(&s, CTXD_ERANGE, "item 2: quantity must be positive, got 0");

  s = refund2();
  s.refund.items[0].line.quantity = -3;
  assert_validation(&s, CTXD_ERANGE, "item 1: quantity must be positive, got -3");

  s = refund2();
  strcpy(s.refund.items[1].line.sku, "SKU-1");
  assert_validation(&s, CTXD_EINVAL, "item 2: sku SKU-1 is listed twice");

  s = refund2();
  s.refund.items[1].amount = 0;
  assert_validation(&s, CTXD_ERANGE, "item 2: amount must be positive, got 0");

  s = refund2();
  s.refund.items[0].amount = -1;
  assert_validation(&s, CTXD_ERANGE, "item 1: amount must be positive, got -1");

  s = refund2();
  s.refund.items[0].amount = INT64_MAX;
  assert_validation(&s, CTXD_ERANGE, "total amount overflows");

  s = refund2();
  s.refund.n = COMPENSATION_MAX_ITEMS + 1;
  assert_validation(&s, CTXD_ETOOBIG, "product refund has 101 items, at most 100");
}

static void test_reship_rules(void **state) {
  (void)state;
  compensation_strategy_t s = reship1();
  assert_int_equal(compensation_strategy_validate(&s, NULL), 0);

  compensation_strategy_init(&s, COMPENSATION_STRATEGY_RESHIP);
  assert_validation(&s, CTXD_EINVAL, "reship needs at least one item");

  s = reship1();
  s.reship.items[0].sku[0] = '\0';
  assert_validation(&s, CTXD_EINVAL, "item 1: sku is empty");

  s = reship1();
  s.reship.items[0].quantity = 0;
  assert_validation(&s, CTXD_ERANGE, "item 1: quantity must be positive, got 0");

  s = reship1();
  assert_int_equal(compensation_strategy_add_reship_item(&s, "SKU-9", 1), 0);
  assert_validation(&s, CTXD_EINVAL, "item 2: sku SKU-9 is listed twice");

  s = reship1();
  s.reship.n = 140;
  assert_validation(&s, CTXD_ETOOBIG, "reship has 140 items, at most 100");
}

/* One limit on a plan's items: the contracts state it, the domain holds exactly that many. */
static void test_item_limit_is_the_contracts(void **state) {
  (void)state;
  static const char *const types[] = {"Ctxd.Compensation.Contracts.v1:ApplyCompensation",
                                      "Ctxd.Compensation.Contracts.v1:ModifyCompensation",
                                      "Ctxd.Compensation.Contracts.v1:CompensationApproved"};
  for (size_t i = 0; i < sizeof types / sizeof *types; i++)
    assert_int_equal(ctxt_contract_max_items(types[i], "Items"), COMPENSATION_MAX_ITEMS);
}

/* Exactly one strategy: what an application carries beside its kind must be that kind's. */
static void test_strategy_conflicts(void **state) {
  (void)state;
  compensation_why_t why = {{0}};
  assert_int_equal(compensation_strategy_conflict(COMPENSATION_STRATEGY_PRODUCT_REFUND, 2, 2, false, &why),
                   0);
  assert_int_equal(compensation_strategy_conflict(COMPENSATION_STRATEGY_RESHIP, 3, 0, false, &why), 0);
  assert_int_equal(compensation_strategy_conflict(COMPENSATION_STRATEGY_NON_PRODUCT, 0, 0, true, &why), 0);
  /* missing parts are the strategy's own validation, not a conflict */
  assert_int_equal(compensation_strategy_conflict(COMPENSATION_STRATEGY_PRODUCT_REFUND, 0, 0, false, &why),
                   0);

  assert_int_equal(compensation_strategy_conflict(COMPENSATION_STRATEGY_PRODUCT_REFUND, 1, 1, true, &why),
                   CTXD_EINVAL);
  assert_string_equal(why.text, "exactly one strategy: a product refund carries no non-product compensation");
  assert_int_equal(compensation_strategy_conflict(COMPENSATION_STRATEGY_RESHIP, 2, 2, false, &why),
                   CTXD_EINVAL);
  assert_string_equal(why.text, "exactly one strategy: a reship carries no refund amounts (2 given)");
  assert_int_equal(compensation_strategy_conflict(COMPENSATION_STRATEGY_RESHIP, 1, 0, true, &why),
                   CTXD_EINVAL);
  assert_string_equal(why.text, "exactly one strategy: a reship carries no non-product compensation");
  assert_int_equal(compensation_strategy_conflict(COMPENSATION_STRATEGY_NON_PRODUCT, 3, 0, true, &why),
                   CTXD_EINVAL);
  assert_string_equal(why.text,
                      "exactly one strategy: a non-product compensation carries no items (3 given)");
  assert_int_equal(compensation_strategy_conflict(COMPENSATION_STRATEGY_NONE, 0, 0, false, &why),
                   CTXD_EINVAL);
  assert_string_equal(why.text, "strategy is missing");
}

static void test_non_product_rules(void **state) {
  (void)state;
  compensation_strategy_t s = voucher(500);
  assert_int_equal(compensation_strategy_validate(&s, NULL), 0);
  assert_int_equal(compensation_strategy_set_non_product(&s, COMPENSATION_BENEFIT_RED_PACKET, 1), 0);
  assert_int_equal(compensation_strategy_validate(&s, NULL), 0);

  assert_int_equal(compensation_strategy_set_non_product(&s, COMPENSATION_BENEFIT_NONE, 500), 0);
  assert_validation(&s, CTXD_EINVAL, "non-product needs a voucher or a red packet");
  assert_int_equal(compensation_strategy_set_non_product(&s, (compensation_benefit_t)9, 500), 0);
  assert_validation(&s, CTXD_EINVAL, "non-product needs a voucher or a red packet");

  s = voucher(0);
  assert_validation(&s, CTXD_ERANGE, "amount must be positive, got 0");
  s = voucher(-20);
  assert_validation(&s, CTXD_ERANGE, "amount must be positive, got -20");
}

static void test_strategy_missing_and_builders(void **state) {
  (void)state;
  compensation_strategy_t s;
  memset(&s, 0, sizeof s);
  assert_validation(&s, CTXD_EINVAL, "strategy is missing");
  assert_validation(NULL, CTXD_EINVAL, "strategy is missing");
  assert_int_equal(compensation_strategy_kind(&s), COMPENSATION_STRATEGY_NONE);
  assert_int_equal(compensation_strategy_init(&s, (compensation_strategy_kind_t)7), CTXD_EINVAL);
  assert_int_equal(compensation_strategy_init(&s, COMPENSATION_STRATEGY_NONE), CTXD_EINVAL);

  /* builders refuse the wrong kind: exactly one strategy, never a mix */
  s = reship1();
  assert_int_equal(compensation_strategy_add_refund_item(&s, "A", 1, 1), CTXD_EINVAL);
  assert_int_equal(compensation_strategy_set_non_product(&s, COMPENSATION_BENEFIT_VOUCHER, 1), CTXD_EINVAL);
  s = voucher(5);
  assert_int_equal(compensation_strategy_add_reship_item(&s, "A", 1), CTXD_EINVAL);
  assert_int_equal(compensation_strategy_add_reship_item(NULL, "A", 1), CTXD_EINVAL);

  compensation_strategy_init(&s, COMPENSATION_STRATEGY_PRODUCT_REFUND);
  assert_int_equal(compensation_strategy_add_refund_item(&s, NULL, 1, 1), CTXD_EINVAL);
  char sku[80];
  memset(sku, 'k', 65);
  sku[65] = '\0';
  assert_int_equal(compensation_strategy_add_refund_item(&s, sku, 1, 1), CTXD_ETOOBIG);
  sku[64] = '\0'; /* exactly the limit fits */
  assert_int_equal(compensation_strategy_add_refund_item(&s, sku, 1, 1), 0);
  for (int i = 1; i < COMPENSATION_MAX_ITEMS; i++) {
    char name[16];
    snprintf(name, sizeof name, "S%d", i);
    assert_int_equal(compensation_strategy_add_refund_item(&s, name, 1, 1), 0);
  }
  assert_int_equal(s.refund.n, COMPENSATION_MAX_ITEMS);
  assert_int_equal(compensation_strategy_add_refund_item(&s, "one-more", 1, 1), CTXD_ETOOBIG);
  assert_int_equal(s.refund.n, COMPENSATION_MAX_ITEMS);
  assert_int_equal(compensation_strategy_validate(&s, NULL), 0);
}

static void test_strategy_totals(void **state) {
  (void)state;
  int64_t total = -1;
  compensation_strategy_t s = refund2();
  assert_int_equal(compensation_strategy_total(&s, &total), 0);
  assert_int_equal(total, 1750);
  s = reship1();
  assert_int_equal(compensation_strategy_total(&s, &total), 0);
  assert_int_equal(total, 0);
  s = voucher(999);
  assert_int_equal(compensation_strategy_total(&s, &total), 0);
  assert_int_equal(total, 999);

  s = refund2();
  s.refund.items[0].amount = INT64_MAX - 100;
  s.refund.items[1].amount = 100;
  assert_int_equal(compensation_strategy_total(&s, &total), 0);
  assert_true(total == INT64_MAX);
  s.refund.items[1].amount = 101;
  total = 7;
  assert_int_equal(compensation_strategy_total(&s, &total), CTXD_ERANGE);
  assert_int_equal(total, 7);
  s = reship1();
  s.reship.items[0].quantity = 0;
  assert_int_equal(compensation_strategy_total(&s, &total), CTXD_ERANGE);
  memset(&s, 0, sizeof s);
  assert_int_equal(compensation_strategy_total(&s, &total), CTXD_EINVAL);
  assert_int_equal(compensation_strategy_total(NULL, &total), CTXD_EINVAL);
}

static json_t *parse(const char *text) {
  json_error_t je;
  json_t *j = json_loads(text, 0, &je);
  assert_non_null(j);
  return j;
}

/* Encodes s, compares the text with want, decodes it back and compares the values. */
static void assert_strategy_json(const compensation_strategy_t *s, const char *want) {
  json_t *j = compensation_strategy_encode(s);
  assert_non_null(j);
  char *text = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT);
  assert_string_equal(text, want);
  free(text);
  compensation_strategy_t back;
  compensation_why_t why = {{0}};
  assert_int_equal(compensation_strategy_decode(j, &back, &why), 0);
  json_decref(j);
  assert_int_equal(compensation_strategy_kind(&back), compensation_strategy_kind(s));
  j = compensation_strategy_encode(&back);
  text = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT);
  assert_string_equal(text, want);
  free(text);
  json_decref(j);
}

static void assert_strategy_decode(const char *text, int code, const char *why_text) {
  json_t *j = parse(text);
  compensation_strategy_t s;
  compensation_why_t why = {{0}};
  assert_int_equal(compensation_strategy_decode(j, &s, &why), code);
  assert_string_equal(why.text, why_text);
  json_decref(j);
}

static void test_strategy_json(void **state) {
  (void)state;
  compensation_strategy_t s = refund2();
  assert_strategy_json(&s, "{\"items\":[{\"amount\":1500,\"quantity\":2,\"sku\":\"SKU-1\"},"
                           "{\"amount\":250,\"quantity\":1,\"sku\":\"SKU-2\"}],"
                           "\"kind\":\"product_refund\"}");
  s = reship1();
  assert_strategy_json(&s, "{\"items\":[{\"quantity\":3,\"sku\":\"SKU-9\"}],\"kind\":\"reship\"}");
  s = voucher(500);
  assert_strategy_json(&s, "{\"amount\":500,\"benefit\":\"voucher\",\"kind\":\"non_product\"}");
  compensation_strategy_set_non_product(&s, COMPENSATION_BENEFIT_RED_PACKET, 88);
  assert_strategy_json(&s, "{\"amount\":88,\"benefit\":\"red_packet\",\"kind\":\"non_product\"}");

  memset(&s, 0, sizeof s);
  assert_null(compensation_strategy_encode(&s));

  assert_strategy_decode("{}", CTXD_EDECODE, "strategy: kind is required");
  assert_strategy_decode("{\"kind\":\"cash\"}", CTXD_EDECODE, "unknown strategy kind 'cash'");
  assert_strategy_decode("{\"kind\":\"reship\"}", CTXD_EDECODE, "items: an array is required");
  assert_strategy_decode("{\"kind\":\"reship\",\"items\":{}}", CTXD_EDECODE, "items: an array is required");
  assert_strategy_decode("{\"kind\":\"reship\",\"items\":[]}", CTXD_EINVAL, "reship needs at least one item");
  assert_strategy_decode("{\"kind\":\"reship\",\"items\":[{\"sku\":\"A\"}]}", CTXD_EDECODE,
                         "item 1: Object item not found: quantity");
  assert_strategy_decode("{\"kind\":\"reship\",\"items\":[{\"sku\":\"A\",\"quantity\":4294967296}]}",
                         CTXD_EDECODE, "item 1: quantity 4294967296 is out of range");
  assert_strategy_decode("{\"kind\":\"product_refund\",\"items\":[{\"sku\":\"A\",\"quantity\":1}]}",
                         CTXD_EDECODE, "item 1: Object item not found: amount");
  assert_strategy_decode(
      "{\"kind\":\"product_refund\",\"items\":[{\"sku\":\"A\",\"quantity\":1,\"amount\":0}]}", CTXD_ERANGE,
      "item 1: amount must be positive, got 0");
  assert_strategy_decode("{\"kind\":\"reship\",\"items\":[{\"sku\":\"xxxxxxxxxxxxxxxxxxxxxxxx"
                         "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\",\"quantity\":1}]}",
                         CTXD_ETOOBIG, "item 1: sku is longer than 64 bytes");
  assert_strategy_decode("{\"kind\":\"non_product\",\"benefit\":\"gift\",\"amount\":1}", CTXD_EDECODE,
                         "unknown benefit 'gift'");
  assert_strategy_decode("{\"kind\":\"non_product\",\"benefit\":\"voucher\"}", CTXD_EDECODE,
                         "Object item not found: amount");
  assert_strategy_decode("{\"kind\":\"non_product\",\"benefit\":\"voucher\",\"amount\":0}", CTXD_ERANGE,
                         "amount must be positive, got 0");

  /* more items than fit are refused before any is read */
  json_t *items = json_array();
  for (int i = 0; i < COMPENSATION_MAX_ITEMS + 1; i++)
    json_array_append_new(items, json_pack("{s:s, s:i}", "sku", "A", "quantity", 1));
  json_t *j = json_pack("{s:s, s:o}", "kind", "reship", "items", items);
  compensation_why_t why = {{0}};
  assert_int_equal(compensation_strategy_decode(j, &s, &why), CTXD_ETOOBIG);
  assert_string_equal(why.text, "reship has 101 items, at most 100");
  json_decref(j);
}

/* ---- apply ---------------------------------------------------------------------------- */

static void test_apply(void **state) {
  (void)state;
  compensation_strategy_t s = refund2();
  compensation_command_t c = apply_cmd(&s);
  compensation_decision_t *d = new_decision();
  assert_int_equal(compensation_order_decide(NULL, &c, d), 0);
  const compensation_order_t *o = &d->order;
  assert_string_equal(o->id, "C-1");
  assert_string_equal(o->order_id, "O-1");
  assert_string_equal(o->customer_id, "U-1");
  assert_int_equal(o->created_by, COMPENSATION_CHANNEL_CUSTOMER_SERVICE);
  assert_string_equal(o->applicant, "agent-7");
  assert_string_equal(o->reason, "pizza arrived cold");
  assert_int_equal(o->status, COMPENSATION_STATUS_APPLIED);
  assert_int_equal(o->total_amount, 1750);
  assert_int_equal(compensation_strategy_kind(&o->strategy), COMPENSATION_STRATEGY_PRODUCT_REFUND);
  assert_int_equal(o->strategy.refund.n, 2);
  assert_string_equal(o->status_reason, "");
  assert_string_equal(o->reviewer, "");
  assert_string_equal(o->fulfillment_id, "");
  assert_true(o->created_at == T0 && o->updated_at == T0);
  assert_int_equal(o->version, 1);
  assert_int_equal(d->changed, COMPENSATION_FIELD_ALL);
  assert_int_equal(d->n_events, 0);
  assert_false(d->ignored);
  assert_string_equal(d->why.text, "");

  /* each strategy's total lands on the order */
  s = reship1();
  assert_int_equal(compensation_order_decide(NULL, &c, d), 0);
  assert_int_equal(d->order.total_amount, 0);
  s = voucher(300);
  c.channel = COMPENSATION_CHANNEL_APP;
  assert_int_equal(compensation_order_decide(NULL, &c, d), 0);
  assert_int_equal(d->order.total_amount, 300);
  assert_int_equal(d->order.created_by, COMPENSATION_CHANNEL_APP);
  free(d);
}

static void test_apply_rejections(void **state) {
  (void)state;
  compensation_strategy_t s = refund2();
  compensation_command_t c;
  char long_text[300];
  memset(long_text, 'r', 257);
  long_text[257] = '\0';

  c = apply_cmd(&s), c.id = NULL;
  assert_rejected(NULL, &c, CTXD_EINVAL, "id is empty");
  c = apply_cmd(&s), c.order_id = "";
  assert_rejected(NULL, &c, CTXD_EINVAL, "order id is empty");
  c = apply_cmd(&s), c.customer_id = NULL;
  assert_rejected(NULL, &c, CTXD_EINVAL, "customer id is empty");
  c = apply_cmd(&s), c.actor = NULL;
  assert_rejected(NULL, &c, CTXD_EINVAL, "actor is empty");
  c = apply_cmd(&s), c.reason = "";
  assert_rejected(NULL, &c, CTXD_EINVAL, "reason is empty");
  c = apply_cmd(&s), c.reason = long_text;
  assert_rejected(NULL, &c, CTXD_ETOOBIG, "reason is longer than 256 bytes");
  c = apply_cmd(&s), c.id = long_text;
  assert_rejected(NULL, &c, CTXD_ETOOBIG, "id is longer than 64 bytes");
  c = apply_cmd(&s), c.channel = COMPENSATION_CHANNEL_NONE;
  assert_rejected(NULL, &c, CTXD_EINVAL, "unknown channel 0");
  c = apply_cmd(NULL);
  assert_rejected(NULL, &c, CTXD_EINVAL, "strategy is missing");
  compensation_strategy_t bad = voucher(0);
  c = apply_cmd(&bad);
  assert_rejected(NULL, &c, CTXD_ERANGE, "amount must be positive, got 0");
  c = apply_cmd(&s), c.at = 0;
  assert_rejected(NULL, &c, CTXD_EINVAL, "at must be positive");
  c = apply_cmd(&s), c.action = (compensation_action_t)0;
  assert_rejected(NULL, &c, CTXD_EINVAL, "unknown action 0");
  c = apply_cmd(&s), c.action = (compensation_action_t)99;
  assert_rejected(NULL, &c, CTXD_EINVAL, "unknown action 99");

  compensation_order_t o = order_in(COMPENSATION_STATUS_APPLIED);
  c = apply_cmd(&s);
  assert_rejected(&o, &c, CTXD_EEXIST, "compensation order C-1 exists already");
  c = (compensation_command_t){.action = COMPENSATION_ACTION_SUBMIT, .at = T0};
  assert_rejected(NULL, &c, CTXD_ENOENT, "no compensation order to submit");

  compensation_decision_t *d = new_decision();
  assert_int_equal(compensation_order_decide(&o, NULL, d), CTXD_EINVAL);
  assert_int_equal(compensation_order_decide(&o, &c, NULL), CTXD_EINVAL);
  free(d);
}

/* ---- every action from every status --------------------------------------------------- */

/* A command for `action` with every input it could need; modify brings a new strategy. */
static compensation_command_t full_cmd(compensation_action_t action, const compensation_strategy_t *s) {
  return (compensation_command_t){.action = action,
                                  .at = T0 + 1000,
                                  .actor = "boss",
                                  .reason = "because",
                                  .strategy = s,
                                  .fulfillment_id = "F-1"};
}

static void test_every_action_from_every_status(void **state) {
  (void)state;
  /* Columns: applied, pending_approval, approved, rejected, compensating, finished,
   * pending_communication, terminated. A: runs, I: ignored (stale event), -: rejected.
   * Written out here, independently of the implementation's table. */
  static const struct {
    compensation_action_t action;
    const char *grid;
    compensation_status_t to; /* NONE: kept */
  } matrix[] = {
      {COMPENSATION_ACTION_MODIFY, "A--A----", COMPENSATION_STATUS_NONE},
      {COMPENSATION_ACTION_SUBMIT, "A--A----", COMPENSATION_STATUS_PENDING_APPROVAL},
      {COMPENSATION_ACTION_APPROVE, "-A------", COMPENSATION_STATUS_APPROVED},
      {COMPENSATION_ACTION_REJECT, "-A------", COMPENSATION_STATUS_REJECTED},
      {COMPENSATION_ACTION_TERMINATE, "AA-A----", COMPENSATION_STATUS_TERMINATED},
      {COMPENSATION_ACTION_FULFILLMENT_PROCESSING, "--A-IIII", COMPENSATION_STATUS_COMPENSATING},
      {COMPENSATION_ACTION_FULFILLMENT_SUCCEEDED, "--A-AIA-", COMPENSATION_STATUS_FINISHED},
      {COMPENSATION_ACTION_FULFILLMENT_FAILED, "--A-AIII", COMPENSATION_STATUS_PENDING_COMMUNICATION},
      {COMPENSATION_ACTION_FULFILLMENT_ABANDONED, "--A-AIAI", COMPENSATION_STATUS_TERMINATED},
  };
  compensation_strategy_t s = reship1();
  compensation_decision_t *d = new_decision();
  char want[256];
  for (size_t a = 0; a < sizeof matrix / sizeof matrix[0]; a++) {
    for (int st = COMPENSATION_STATUS_APPLIED; st <= COMPENSATION_STATUS_TERMINATED; st++) {
      compensation_order_t o = order_in((compensation_status_t)st);
      compensation_command_t c = full_cmd(matrix[a].action, &s);
      const char *name = compensation_action_name(matrix[a].action);
      const char *status = compensation_status_name((compensation_status_t)st);
      char cell = matrix[a].grid[st - 1];
      int rc = compensation_order_decide(&o, &c, d);
      if (cell == 'A') {
        assert_int_equal(rc, 0);
        assert_false(d->ignored);
        assert_int_equal(d->order.status, matrix[a].to ? matrix[a].to : (compensation_status_t)st);
        assert_int_equal(d->order.version, 2);
        assert_true(d->changed & COMPENSATION_FIELD_VERSION);
        assert_string_equal(d->why.text, "");
      } else if (cell == 'I') {
        assert_int_equal(rc, 0);
        assert_true(d->ignored);
        assert_int_equal(d->changed, 0);
        assert_int_equal(d->n_events, 0);
        assert_memory_equal(&d->order, &o, sizeof o);
        snprintf(want, sizeof want, "%s ignored: compensation order is %s already", name, status);
        assert_string_equal(d->why.text, want);
      } else {
        snprintf(want, sizeof want, "cannot %s a compensation order that is %s", name, status);
        assert_rejected(&o, &c, CTXD_ESTATE, want);
      }
    }
  }
  free(d);
}

/* ---- update tracing ------------------------------------------------------------------- */

#define VU (COMPENSATION_FIELD_VERSION | COMPENSATION_FIELD_UPDATED_AT)

/* Decides c on o, expects acceptance with exactly `changed`, returns the new state. */
static compensation_order_t step(const compensation_order_t *o, const compensation_command_t *c,
                                 uint32_t changed) {
  compensation_decision_t *d = new_decision();
  assert_int_equal(compensation_order_decide(o, c, d), 0);
  assert_int_equal(d->changed, changed);
  compensation_order_t next = d->order;
  free(d);
  return next;
}

static void test_changed_fields_per_action(void **state) {
  (void)state;
  compensation_order_t o = order_in(COMPENSATION_STATUS_APPLIED);
  compensation_command_t c;

  c = (compensation_command_t){.action = COMPENSATION_ACTION_SUBMIT, .at = T0 + 1};
  compensation_order_t submitted = step(&o, &c, COMPENSATION_FIELD_STATUS | VU);
  assert_int_equal(submitted.version, 2);
  assert_true(submitted.updated_at == T0 + 1);
  assert_true(submitted.created_at == T0);

  c = (compensation_command_t){
      .action = COMPENSATION_ACTION_REJECT, .at = T0 + 2, .actor = "boss", .reason = "no photo"};
  compensation_order_t rejected =
      step(&submitted, &c,
           COMPENSATION_FIELD_STATUS | COMPENSATION_FIELD_STATUS_REASON | COMPENSATION_FIELD_REVIEWER | VU);
  assert_string_equal(rejected.status_reason, "no photo");
  assert_string_equal(rejected.reviewer, "boss");

  /* resubmitting clears the rejection's reason: status_reason explains the current status */
  c = (compensation_command_t){.action = COMPENSATION_ACTION_SUBMIT, .at = T0 + 3};
  compensation_order_t resubmitted =
      step(&rejected, &c, COMPENSATION_FIELD_STATUS | COMPENSATION_FIELD_STATUS_REASON | VU);
  assert_string_equal(resubmitted.status_reason, "");
  assert_string_equal(resubmitted.reviewer, "boss");

  /* the same reviewer approving changes status only */
  c = (compensation_command_t){.action = COMPENSATION_ACTION_APPROVE, .at = T0 + 4, .actor = "boss"};
  compensation_order_t approved = step(&resubmitted, &c, COMPENSATION_FIELD_STATUS | VU);
  c.actor = "boss-2";
  approved = step(&resubmitted, &c, COMPENSATION_FIELD_STATUS | COMPENSATION_FIELD_REVIEWER | VU);
  assert_string_equal(approved.reviewer, "boss-2");
  assert_int_equal(approved.version, 5);

  c = (compensation_command_t){
      .action = COMPENSATION_ACTION_FULFILLMENT_PROCESSING, .at = T0 + 5, .fulfillment_id = "F-1"};
  compensation_order_t compensating =
      step(&approved, &c, COMPENSATION_FIELD_STATUS | COMPENSATION_FIELD_FULFILLMENT_ID | VU);
  assert_string_equal(compensating.fulfillment_id, "F-1");

  c = (compensation_command_t){.action = COMPENSATION_ACTION_FULFILLMENT_FAILED,
                               .at = T0 + 6,
                               .fulfillment_id = "F-1",
                               .reason = "payment declined"};
  compensation_order_t failed =
      step(&compensating, &c, COMPENSATION_FIELD_STATUS | COMPENSATION_FIELD_STATUS_REASON | VU);
  assert_string_equal(failed.status_reason, "payment declined");

  c = (compensation_command_t){
      .action = COMPENSATION_ACTION_FULFILLMENT_SUCCEEDED, .at = T0 + 7, .fulfillment_id = "F-1"};
  compensation_order_t finished =
      step(&failed, &c, COMPENSATION_FIELD_STATUS | COMPENSATION_FIELD_STATUS_REASON | VU);
  assert_int_equal(finished.status, COMPENSATION_STATUS_FINISHED);
  assert_string_equal(finished.status_reason, "");
  step(&compensating, &c, COMPENSATION_FIELD_STATUS | VU);
  /* a non-product fulfillment reports no processing (its call answers at once): approved ->
   * finished, id learned */
  step(&approved, &c, COMPENSATION_FIELD_STATUS | COMPENSATION_FIELD_FULFILLMENT_ID | VU);

  c = (compensation_command_t){
      .action = COMPENSATION_ACTION_TERMINATE, .at = T0 + 8, .reason = "customer withdrew"};
  compensation_order_t terminated =
      step(&o, &c, COMPENSATION_FIELD_STATUS | COMPENSATION_FIELD_STATUS_REASON | VU);
  assert_string_equal(terminated.status_reason, "customer withdrew");
  /* a failed fulfillment is settled by its case, never terminated under it */
  assert_rejected(&failed, &c, CTXD_ESTATE,
                  "cannot terminate a compensation order that is pending_communication");
}

static void test_modify(void **state) {
  (void)state;
  compensation_order_t o = order_in(COMPENSATION_STATUS_REJECTED);
  compensation_command_t c = {.action = COMPENSATION_ACTION_MODIFY, .at = T0 + 10, .actor = "staff-1"};

  c.reason = "pizza arrived cold and late";
  compensation_order_t m = step(&o, &c, COMPENSATION_FIELD_REASON | VU);
  assert_string_equal(m.reason, "pizza arrived cold and late");
  assert_int_equal(m.status, COMPENSATION_STATUS_REJECTED);

  /* same values: nothing changes, not even the version */
  c.reason = "pizza arrived cold";
  compensation_strategy_t same = refund2();
  c.strategy = &same;
  m = step(&o, &c, 0);
  assert_memory_equal(&m, &o, sizeof o);

  /* same kind, one amount differs: detail and total */
  compensation_strategy_t s = refund2();
  s.refund.items[1].amount = 300;
  c.reason = NULL;
  c.strategy = &s;
  m = step(&o, &c, COMPENSATION_FIELD_STRATEGY_DETAIL | COMPENSATION_FIELD_TOTAL_AMOUNT | VU);
  assert_int_equal(m.total_amount, 1800);
  assert_int_equal(m.strategy.refund.items[1].amount, 300);

  /* same kind and total, another sku: detail only */
  s = refund2();
  strcpy(s.refund.items[1].line.sku, "SKU-3");
  m = step(&o, &c, COMPENSATION_FIELD_STRATEGY_DETAIL | VU);
  assert_string_equal(m.strategy.refund.items[1].line.sku, "SKU-3");
  s = refund2();
  s.refund.items[0].line.quantity = 5;
  step(&o, &c, COMPENSATION_FIELD_STRATEGY_DETAIL | VU);

  /* another kind: kind, detail, and the total when it differs */
  s = reship1();
  m = step(&o, &c,
           COMPENSATION_FIELD_STRATEGY_KIND | COMPENSATION_FIELD_STRATEGY_DETAIL |
               COMPENSATION_FIELD_TOTAL_AMOUNT | VU);
  assert_int_equal(compensation_strategy_kind(&m.strategy), COMPENSATION_STRATEGY_RESHIP);
  assert_int_equal(m.total_amount, 0);
  s = voucher(1750);
  m = step(&o, &c, COMPENSATION_FIELD_STRATEGY_KIND | COMPENSATION_FIELD_STRATEGY_DETAIL | VU);
  assert_int_equal(m.total_amount, 1750);

  /* within non-product and reship, each difference is seen */
  compensation_order_t v = m;
  s = voucher(1750);
  compensation_strategy_set_non_product(&s, COMPENSATION_BENEFIT_RED_PACKET, 1750);
  step(&v, &c, COMPENSATION_FIELD_STRATEGY_DETAIL | VU);
  s = voucher(1750);
  step(&v, &c, 0);
  s = reship1();
  compensation_order_t r = step(&o, &c,
                                COMPENSATION_FIELD_STRATEGY_KIND | COMPENSATION_FIELD_STRATEGY_DETAIL |
                                    COMPENSATION_FIELD_TOTAL_AMOUNT | VU);
  s.reship.items[0].quantity = 4;
  step(&r, &c, COMPENSATION_FIELD_STRATEGY_DETAIL | VU);
  s = reship1();
  compensation_strategy_add_reship_item(&s, "SKU-10", 1);
  step(&r, &c, COMPENSATION_FIELD_STRATEGY_DETAIL | VU);
  s = reship1();
  step(&r, &c, 0);

  /* reason and strategy together */
  c.reason = "new reason";
  s = voucher(10);
  step(&o, &c,
       COMPENSATION_FIELD_REASON | COMPENSATION_FIELD_STRATEGY_KIND | COMPENSATION_FIELD_STRATEGY_DETAIL |
           COMPENSATION_FIELD_TOTAL_AMOUNT | VU);

  /* rejections leave the order as it was */
  s = refund2();
  s.refund.items[0].line.quantity = 0;
  c.reason = "new reason";
  assert_rejected(&o, &c, CTXD_ERANGE, "item 1: quantity must be positive, got 0");
  c.strategy = NULL;
  c.reason = "";
  assert_rejected(&o, &c, CTXD_EINVAL, "reason is empty");
  c.reason = NULL;
  assert_rejected(&o, &c, CTXD_EINVAL, "modify needs a reason, a strategy or a responsible party");
}

/* The responsible party (責任方): stated at apply, changed by modify where modifying is
 * allowed, kept when a modify does not name it, carried by the approval. */
static void test_responsible_party(void **state) {
  (void)state;
  compensation_strategy_t s = refund2();
  compensation_command_t c = apply_cmd(&s);
  c.responsible_party = COMPENSATION_PARTY_LOGISTICS;
  compensation_decision_t *d = new_decision();
  assert_int_equal(compensation_order_decide(NULL, &c, d), 0);
  compensation_order_t o = d->order;
  assert_int_equal(o.responsible_party, COMPENSATION_PARTY_LOGISTICS);

  c = (compensation_command_t){
      .action = COMPENSATION_ACTION_MODIFY, .at = T0 + 1, .actor = "staff-1", .reason = "pizza arrived cold"};
  step(&o, &c, 0); /* not named: kept */
  c.responsible_party = COMPENSATION_PARTY_MERCHANT;
  compensation_order_t m = step(&o, &c, COMPENSATION_FIELD_RESPONSIBLE_PARTY | VU);
  assert_int_equal(m.responsible_party, COMPENSATION_PARTY_MERCHANT);
  c.reason = NULL; /* the party alone is a modification, which consumers see */
  c.actor = "staff-2";
  assert_int_equal(compensation_order_decide(&o, &c, d), 0);
  assert_int_equal(d->changed, COMPENSATION_FIELD_RESPONSIBLE_PARTY | VU);
  assert_int_equal(d->n_events, 1);
  assert_int_equal(d->events[0].type, COMPENSATION_EVENT_MODIFIED);
  assert_string_equal(compensation_event_type_name(d->events[0].type), "CompensationModified");
  assert_int_equal(d->events[0].responsible_party, COMPENSATION_PARTY_MERCHANT);
  assert_string_equal(d->events[0].actor, "staff-2");
  assert_true(d->events[0].at == T0 + 1);
  assert_int_equal(d->events[0].total_amount, o.total_amount);
  c.responsible_party = (compensation_party_t)9;
  assert_rejected(&o, &c, CTXD_EINVAL, "unknown responsible party 9");
  /* cleared: the order names none any more, and says so */
  c.responsible_party = COMPENSATION_PARTY_NONE;
  c.clear_responsible_party = true;
  assert_int_equal(compensation_order_decide(&m, &c, d), 0);
  assert_int_equal(d->changed, COMPENSATION_FIELD_RESPONSIBLE_PARTY | VU);
  assert_int_equal(d->order.responsible_party, COMPENSATION_PARTY_NONE);
  assert_int_equal(d->n_events, 1);
  assert_int_equal(d->events[0].responsible_party, COMPENSATION_PARTY_NONE);
  compensation_order_t cleared = d->order;
  assert_int_equal(compensation_order_decide(&cleared, &c, d), 0); /* nothing left to clear */
  assert_int_equal(d->changed, 0);
  assert_int_equal(d->n_events, 0);
  c.responsible_party = COMPENSATION_PARTY_PLATFORM;
  assert_rejected(&m, &c, CTXD_EINVAL, "a responsible party cannot be set and cleared at once");
  c = (compensation_command_t){
      .action = COMPENSATION_ACTION_MODIFY, .at = T0 + 1, .actor = "staff-1", .reason = "pizza arrived cold"};

  /* not where modifying is not */
  compensation_order_t pending = m;
  pending.status = COMPENSATION_STATUS_PENDING_APPROVAL;
  c.responsible_party = COMPENSATION_PARTY_PLATFORM;
  assert_rejected(&pending, &c, CTXD_ESTATE, "cannot modify a compensation order that is pending_approval");

  c = (compensation_command_t){.action = COMPENSATION_ACTION_APPROVE, .at = T0 + 2, .actor = "lead-1"};
  assert_int_equal(compensation_order_decide(&pending, &c, d), 0);
  assert_int_equal(d->events[0].responsible_party, COMPENSATION_PARTY_MERCHANT);
  json_t *j = compensation_order_encode(&m);
  assert_string_equal(json_string_value(json_object_get(j, "responsible_party")), "merchant");
  compensation_order_t back;
  assert_int_equal(compensation_order_decode(j, &back, NULL), 0);
  assert_int_equal(back.responsible_party, COMPENSATION_PARTY_MERCHANT);
  json_object_set_new(j, "responsible_party", json_string("weather"));
  compensation_why_t why = {{0}};
  assert_int_equal(compensation_order_decode(j, &back, &why), CTXD_EDECODE);
  assert_string_equal(why.text, "unknown responsible_party 'weather'");
  json_decref(j);
  assert_string_equal(compensation_party_name(COMPENSATION_PARTY_NONE), "");
  assert_null(compensation_party_name((compensation_party_t)5));
  free(d);
}

static void test_input_rejections(void **state) {
  (void)state;
  compensation_order_t pending = order_in(COMPENSATION_STATUS_PENDING_APPROVAL);
  compensation_order_t approved = order_in(COMPENSATION_STATUS_APPROVED);
  compensation_command_t c;

  c = (compensation_command_t){.action = COMPENSATION_ACTION_APPROVE, .at = T0};
  assert_rejected(&pending, &c, CTXD_EINVAL, "actor is empty");
  c = (compensation_command_t){.action = COMPENSATION_ACTION_REJECT, .at = T0, .actor = "b"};
  assert_rejected(&pending, &c, CTXD_EINVAL, "reason is empty");
  c = (compensation_command_t){.action = COMPENSATION_ACTION_TERMINATE, .at = T0};
  assert_rejected(&pending, &c, CTXD_EINVAL, "reason is empty");
  c = (compensation_command_t){.action = COMPENSATION_ACTION_FULFILLMENT_PROCESSING, .at = T0};
  assert_rejected(&approved, &c, CTXD_EINVAL, "fulfillment id is empty");
  c = (compensation_command_t){
      .action = COMPENSATION_ACTION_FULFILLMENT_FAILED, .at = T0, .fulfillment_id = "F-1"};
  assert_rejected(&approved, &c, CTXD_EINVAL, "reason is empty");
  /* inputs are checked before the status: a malformed command is always an error */
  compensation_order_t finished = order_in(COMPENSATION_STATUS_FINISHED);
  assert_rejected(&finished, &c, CTXD_EINVAL, "reason is empty");

  /* one fulfillment per compensation order */
  compensation_order_t comp = order_in(COMPENSATION_STATUS_COMPENSATING);
  strcpy(comp.fulfillment_id, "F-1");
  c = (compensation_command_t){
      .action = COMPENSATION_ACTION_FULFILLMENT_SUCCEEDED, .at = T0, .fulfillment_id = "F-2"};
  assert_rejected(&comp, &c, CTXD_ECONFLICT, "fulfillment F-2 is not this order's fulfillment F-1");
  comp.status = COMPENSATION_STATUS_FINISHED; /* even when it would be ignored */
  assert_rejected(&comp, &c, CTXD_ECONFLICT, "fulfillment F-2 is not this order's fulfillment F-1");

  /* a corrupt status is rejected, never trusted */
  compensation_order_t odd = order_in((compensation_status_t)40);
  c = (compensation_command_t){.action = COMPENSATION_ACTION_SUBMIT, .at = T0};
  assert_rejected(&odd, &c, CTXD_ESTATE, "cannot submit a compensation order that is unknown");
}

/* ---- approval and fulfillment reactions ----------------------------------------------- */

static void test_approve_yields_event(void **state) {
  (void)state;
  compensation_order_t o = order_in(COMPENSATION_STATUS_PENDING_APPROVAL);
  compensation_command_t c = {.action = COMPENSATION_ACTION_APPROVE, .at = T0 + 50, .actor = "lead-1"};
  compensation_decision_t *d = new_decision();
  assert_int_equal(compensation_order_decide(&o, &c, d), 0);
  assert_int_equal(d->n_events, 1);
  const compensation_event_t *e = &d->events[0];
  assert_int_equal(e->type, COMPENSATION_EVENT_APPROVED);
  assert_string_equal(e->compensation_id, "C-1");
  assert_string_equal(e->order_id, "O-1");
  assert_string_equal(e->customer_id, "U-1");
  assert_int_equal(compensation_strategy_kind(&e->strategy), COMPENSATION_STRATEGY_PRODUCT_REFUND);
  assert_int_equal(e->strategy.refund.n, 2);
  assert_string_equal(e->strategy.refund.items[0].line.sku, "SKU-1");
  assert_int_equal(e->strategy.refund.items[0].line.quantity, 2);
  assert_int_equal(e->strategy.refund.items[0].amount, 1500);
  assert_int_equal(e->total_amount, 1750);
  assert_string_equal(e->actor, "lead-1");
  assert_true(e->at == T0 + 50);
  assert_string_equal(compensation_event_type_name(e->type), "CompensationApproved");

  /* only approve yields an event */
  compensation_order_t applied = order_in(COMPENSATION_STATUS_APPLIED);
  c = (compensation_command_t){.action = COMPENSATION_ACTION_SUBMIT, .at = T0};
  assert_int_equal(compensation_order_decide(&applied, &c, d), 0);
  assert_int_equal(d->n_events, 0);
  free(d);
}

static void test_fulfillment_flows(void **state) {
  (void)state;
  compensation_command_t processing = {
      .action = COMPENSATION_ACTION_FULFILLMENT_PROCESSING, .at = T0 + 1, .fulfillment_id = "F-1"};
  compensation_command_t succeeded = {
      .action = COMPENSATION_ACTION_FULFILLMENT_SUCCEEDED, .at = T0 + 2, .fulfillment_id = "F-1"};
  compensation_command_t failed = {.action = COMPENSATION_ACTION_FULFILLMENT_FAILED,
                                   .at = T0 + 2,
                                   .fulfillment_id = "F-1",
                                   .reason = "no stock"};
  compensation_order_t approved = order_in(COMPENSATION_STATUS_APPROVED);

  /* refund / reship: processing, then the outcome */
  compensation_order_t o =
      step(&approved, &processing, COMPENSATION_FIELD_STATUS | COMPENSATION_FIELD_FULFILLMENT_ID | VU);
  assert_int_equal(o.status, COMPENSATION_STATUS_COMPENSATING);
  compensation_order_t done = step(&o, &succeeded, COMPENSATION_FIELD_STATUS | VU);
  assert_int_equal(done.status, COMPENSATION_STATUS_FINISHED);
  compensation_order_t waiting =
      step(&o, &failed, COMPENSATION_FIELD_STATUS | COMPENSATION_FIELD_STATUS_REASON | VU);
  assert_int_equal(waiting.status, COMPENSATION_STATUS_PENDING_COMMUNICATION);
  assert_string_equal(waiting.status_reason, "no stock");

  /* a failure resolved by hand: the fulfillment succeeds, the order finishes */
  done = step(&waiting, &succeeded, COMPENSATION_FIELD_STATUS | COMPENSATION_FIELD_STATUS_REASON | VU);
  assert_int_equal(done.status, COMPENSATION_STATUS_FINISHED);

  /* stale and repeated events change nothing */
  compensation_decision_t *d = new_decision();
  assert_int_equal(compensation_order_decide(&done, &processing, d), 0);
  assert_true(d->ignored);
  assert_int_equal(d->changed, 0);
  assert_memory_equal(&d->order, &done, sizeof done);
  assert_string_equal(d->why.text, "fulfillment_processing ignored: compensation order is finished already");
  assert_int_equal(compensation_order_decide(&done, &succeeded, d), 0);
  assert_true(d->ignored);
  assert_int_equal(compensation_order_decide(&waiting, &failed, d), 0);
  assert_true(d->ignored);
  assert_string_equal(d->why.text, "fulfillment_failed ignored: compensation order is pending_communication "
                                   "already");
  assert_int_equal(compensation_order_decide(&o, &processing, d), 0);
  assert_true(d->ignored);
  free(d);
}

/* ---- JSON ----------------------------------------------------------------------------- */

static void test_order_json(void **state) {
  (void)state;
  compensation_order_t o = order_in(COMPENSATION_STATUS_PENDING_COMMUNICATION);
  strcpy(o.status_reason, "refund failed");
  strcpy(o.reviewer, "lead-1");
  strcpy(o.fulfillment_id, "F-1");
  o.updated_at = T0 + 9;
  o.version = 6;
  json_t *j = compensation_order_encode(&o);
  assert_non_null(j);
  char *text = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT);
  assert_string_equal(text,
                      "{\"applicant\":\"agent-7\",\"created_at\":1700000000000,\"created_by\":"
                      "\"customer_service\",\"customer_id\":\"U-1\",\"fulfillment_id\":\"F-1\",\"id\":"
                      "\"C-1\",\"order_id\":\"O-1\",\"reason\":\"pizza arrived "
                      "cold\",\"responsible_party\":\"\",\"reviewer\":"
                      "\"lead-1\",\"status\":\"pending_communication\",\"status_reason\":\"refund "
                      "failed\",\"strategy_detail\":{\"items\":[{\"amount\":1500,\"quantity\":2,\"sku\":"
                      "\"SKU-1\"},{\"amount\":250,\"quantity\":1,\"sku\":\"SKU-2\"}],\"kind\":"
                      "\"product_refund\"},\"strategy_kind\":\"product_refund\",\"total_amount\":1750,"
                      "\"updated_at\":1700000000009,\"version\":6}");
  free(text);
  /* every field bit names exactly one key of the encoded object */
  assert_int_equal(json_object_size(j), COMPENSATION_FIELD_COUNT);
  for (int i = 0; i < COMPENSATION_FIELD_COUNT; i++)
    assert_non_null(json_object_get(j, compensation_field_name(1u << i)));

  compensation_order_t back;
  compensation_why_t why = {{0}};
  assert_int_equal(compensation_order_decode(j, &back, &why), 0);
  json_t *again = compensation_order_encode(&back);
  assert_true(json_equal(j, again));
  json_decref(again);
  assert_string_equal(back.fulfillment_id, "F-1");
  assert_int_equal(back.version, 6);
  assert_int_equal(back.status, COMPENSATION_STATUS_PENDING_COMMUNICATION);

  /* every status and channel survives the trip */
  for (int st = COMPENSATION_STATUS_APPLIED; st <= COMPENSATION_STATUS_TERMINATED; st++)
    for (int ch = COMPENSATION_CHANNEL_BACK_OFFICE; ch <= COMPENSATION_CHANNEL_APP; ch++) {
      compensation_order_t x = o;
      x.status = (compensation_status_t)st;
      x.created_by = (compensation_channel_t)ch;
      json_t *xj = compensation_order_encode(&x);
      assert_int_equal(compensation_order_decode(xj, &back, NULL), 0);
      assert_int_equal(back.status, st);
      assert_int_equal(back.created_by, ch);
      json_decref(xj);
    }

  json_t *bad = json_deep_copy(j);
  json_object_set_new(bad, "status", json_string("lost"));
  assert_int_equal(compensation_order_decode(bad, &back, &why), CTXD_EDECODE);
  assert_string_equal(why.text, "unknown status 'lost'");
  json_object_set_new(bad, "status", json_string("applied"));
  json_object_set_new(bad, "created_by", json_string("fax"));
  assert_int_equal(compensation_order_decode(bad, &back, &why), CTXD_EDECODE);
  assert_string_equal(why.text, "unknown created_by 'fax'");
  json_object_set_new(bad, "created_by", json_string("app"));
  json_object_set_new(bad, "total_amount", json_integer(1749));
  assert_int_equal(compensation_order_decode(bad, &back, &why), CTXD_EDECODE);
  assert_string_equal(why.text, "total_amount 1749 does not match the strategy's 1750");
  json_object_set_new(bad, "total_amount", json_integer(1750));
  json_object_set_new(bad, "strategy_kind", json_string("reship"));
  assert_int_equal(compensation_order_decode(bad, &back, &why), CTXD_EDECODE);
  assert_string_equal(why.text, "strategy_kind reship does not match the detail's product_refund");
  json_object_set_new(bad, "strategy_kind", json_string("product_refund"));
  json_object_set_new(bad, "version", json_integer(0));
  assert_int_equal(compensation_order_decode(bad, &back, &why), CTXD_EDECODE);
  assert_string_equal(why.text, "version 0 is out of range");
  json_object_set_new(bad, "version", json_integer(6));
  json_object_set_new(bad, "reason", json_string(""));
  assert_int_equal(compensation_order_decode(bad, &back, &why), CTXD_EDECODE);
  assert_string_equal(why.text, "reason is empty");
  json_object_set_new(bad, "reason", json_string("ok"));
  json_object_set_new(bad, "strategy_detail", json_pack("{s:s}", "kind", "cash"));
  assert_int_equal(compensation_order_decode(bad, &back, &why), CTXD_EDECODE);
  assert_string_equal(why.text, "unknown strategy kind 'cash'");
  json_object_del(bad, "reviewer");
  assert_int_equal(compensation_order_decode(bad, &back, &why), CTXD_EDECODE);
  assert_string_equal(why.text, "Object item not found: reviewer");
  /* a failed decode leaves the output untouched */
  compensation_order_t copy;
  memset(&back, 0x5A, sizeof back);
  memcpy(&copy, &back, sizeof copy);
  assert_int_equal(compensation_order_decode(bad, &back, NULL), CTXD_EDECODE);
  assert_memory_equal(&back, &copy, sizeof back);
  json_decref(bad);
  json_decref(j);

  /* an order without a valid strategy or status does not encode */
  o.status = COMPENSATION_STATUS_NONE;
  assert_null(compensation_order_encode(&o));
  o.status = COMPENSATION_STATUS_APPLIED;
  memset(&o.strategy, 0, sizeof o.strategy);
  assert_null(compensation_order_encode(&o));
}

static void test_names(void **state) {
  (void)state;
  assert_string_equal(compensation_field_name(COMPENSATION_FIELD_ID), "id");
  assert_string_equal(compensation_field_name(COMPENSATION_FIELD_STATUS_REASON), "status_reason");
  assert_string_equal(compensation_field_name(COMPENSATION_FIELD_VERSION), "version");
  assert_null(compensation_field_name(0));
  assert_null(compensation_field_name(COMPENSATION_FIELD_ID | COMPENSATION_FIELD_VERSION));
  assert_null(compensation_field_name(1u << COMPENSATION_FIELD_COUNT));
  assert_string_equal(compensation_status_name(COMPENSATION_STATUS_PENDING_APPROVAL), "pending_approval");
  assert_null(compensation_status_name(COMPENSATION_STATUS_NONE));
  assert_null(compensation_status_name((compensation_status_t)9));
  assert_string_equal(compensation_channel_name(COMPENSATION_CHANNEL_BACK_OFFICE), "back_office");
  assert_null(compensation_channel_name((compensation_channel_t)4));
  assert_string_equal(compensation_action_name(COMPENSATION_ACTION_TERMINATE), "terminate");
  assert_null(compensation_action_name((compensation_action_t)0));
  assert_string_equal(compensation_action_name(COMPENSATION_ACTION_FULFILLMENT_ABANDONED),
                      "fulfillment_abandoned");
  assert_null(compensation_action_name((compensation_action_t)11));
  assert_string_equal(compensation_strategy_kind_name(COMPENSATION_STRATEGY_NON_PRODUCT), "non_product");
  assert_null(compensation_strategy_kind_name(COMPENSATION_STRATEGY_NONE));
  assert_null(compensation_event_type_name((compensation_event_type_t)0));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_refund_rules),
      cmocka_unit_test(test_reship_rules),
      cmocka_unit_test(test_strategy_conflicts),
      cmocka_unit_test(test_item_limit_is_the_contracts),
      cmocka_unit_test(test_non_product_rules),
      cmocka_unit_test(test_strategy_missing_and_builders),
      cmocka_unit_test(test_strategy_totals),
      cmocka_unit_test(test_strategy_json),
      cmocka_unit_test(test_apply),
      cmocka_unit_test(test_apply_rejections),
      cmocka_unit_test(test_every_action_from_every_status),
      cmocka_unit_test(test_changed_fields_per_action),
      cmocka_unit_test(test_modify),
      cmocka_unit_test(test_responsible_party),
      cmocka_unit_test(test_input_rejections),
      cmocka_unit_test(test_approve_yields_event),
      cmocka_unit_test(test_fulfillment_flows),
      cmocka_unit_test(test_order_json),
      cmocka_unit_test(test_names),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
