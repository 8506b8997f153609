/* The three fulfillment strategies behind fulfillment_strategy_ops_t, and the public plan
 * functions that dispatch through it. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <ctxd/errno.h>

#include "domain_strategy.h"

int fulfillment__why(fulfillment_why_t *why, int code, const char *fmt, ...) {
  if (why) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why->text, sizeof why->text, fmt, ap);
    va_end(ap);
  }
  return code;
}

fulfillment__move_t fulfillment__ignore(fulfillment_decision_t *d, fulfillment_ignored_t kind,
                                        const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(d->why.text, sizeof d->why.text, fmt, ap);
  va_end(ap);
  d->ignored = kind;
  return FULFILLMENT__MOVE_IGNORE;
}

int fulfillment__copy_text(char *dst, size_t cap, const char *src, const char *what, bool required,
                           fulfillment_why_t *why) {
  if (!src || !*src) {
    if (required) return fulfillment__why(why, CTXD_EINVAL, "%s is empty", what);
    src = "";
  }
  size_t len = strlen(src);
  if (len >= cap) return fulfillment__why(why, CTXD_ETOOBIG, "%s is longer than %zu bytes", what, cap - 1);
  memcpy(dst, src, len + 1);
  return 0;
}

void fulfillment__set_text(fulfillment_decision_t *d, uint32_t field, char *dst, const char *src) {
  if (strcmp(dst, src) != 0) {
    memcpy(dst, src, strlen(src) + 1);
    d->changed |= field;
  }
}

int fulfillment__name_index(const char *const *names, size_t n, const char *name) {
  for (size_t i = 0; name && i < n; i++)
    if (names[i] && strcmp(names[i], name) == 0) return (int)i;
  return -1;
}

static const char *const benefit_names[] = {
    [FULFILLMENT_BENEFIT_VOUCHER] = "voucher",
    [FULFILLMENT_BENEFIT_RED_PACKET] = "red_packet",
};
#define N_BENEFITS (sizeof benefit_names / sizeof benefit_names[0])

/* ---- items: product refund and reship ------------------------------------------------- */

static int check_items(const fulfillment_plan_t *p, bool with_amount, fulfillment_why_t *why) {
  const char *label = p->ops->label;
  if (p->n_items == 0) return fulfillment__why(why, CTXD_EINVAL, "%s needs at least one item", label);
  if (p->n_items > FULFILLMENT_MAX_ITEMS)
    return fulfillment__why(why, CTXD_ETOOBIG, "%s has %zu items, at most %d", label, p->n_items,
                            FULFILLMENT_MAX_ITEMS);
  for (size_t i = 0; i < p->n_items; i++) {
    const fulfillment_item_t *it = &p->items[i];
    if (!memchr(it->sku, '\0', sizeof it->sku))
      return fulfillment__why(why, CTXD_ETOOBIG, "item %zu: sku is longer than %d bytes", i + 1,
                              FULFILLMENT_ID_MAX);
    if (!it->sku[0]) return fulfillment__why(why, CTXD_EINVAL, "item %zu: sku is empty", i + 1);
    if (it->quantity <= 0)
      return fulfillment__why(why, CTXD_ERANGE, "item %zu: quantity must be positive, got %d", i + 1,
                              (int)it->quantity);
    if (with_amount && it->amount <= 0)
      return fulfillment__why(why, CTXD_ERANGE, "item %zu: amount must be positive, got %lld", i + 1,
                              (long long)it->amount);
  }
  return 0;
}

static json_t *encode_items(const fulfillment_plan_t *p, bool with_amount) {
  json_t *items = json_array();
  for (size_t i = 0; items && i < p->n_items; i++) {
    const fulfillment_item_t *it = &p->items[i];
    json_t *item = json_pack("{s:s, s:I}", "sku", it->sku, "quantity", (json_int_t)it->quantity);
    if (item && with_amount && json_object_set_new(item, "amount", json_integer(it->amount))) {
      json_decref(item);
      item = NULL;
    }
    if (json_array_append_new(items, item)) {
      json_decref(items);
      return NULL;
    }
  }
  return items ? json_pack("{s:o}", "items", items) : NULL;
}

static int decode_items(const json_t *j, fulfillment_plan_t *p, bool with_amount, fulfillment_why_t *why) {
  json_t *items;
  json_error_t je;
  if (json_unpack_ex((json_t *)j, &je, 0, "{s:o}", "items", &items) || !json_is_array(items))
    return fulfillment__why(why, CTXD_EDECODE, "items: an array is required");
  if (json_array_size(items) > FULFILLMENT_MAX_ITEMS)
    return fulfillment__why(why, CTXD_EDECODE, "%s has %zu items, at most %d", p->ops->label,
                            json_array_size(items), FULFILLMENT_MAX_ITEMS);
  for (size_t i = 0; i < json_array_size(items); i++) {
    const char *sku;
    json_int_t quantity, amount = 0;
    json_t *item = json_array_get(items, i);
    int rc = with_amount ? json_unpack_ex(item, &je, 0, "{s:s, s:I, s:I}", "sku", &sku, "quantity", &quantity,
                                          "amount", &amount)
                         : json_unpack_ex(item, &je, 0, "{s:s, s:I}", "sku", &sku, "quantity", &quantity);
    if (rc) return fulfillment__why(why, CTXD_EDECODE, "item %zu: %s", i + 1, je.text);
    if (quantity < INT32_MIN || quantity > INT32_MAX)
      return fulfillment__why(why, CTXD_EDECODE, "item %zu: quantity %lld is out of range", i + 1, quantity);
    if (fulfillment_plan_add_item(p, sku, (int32_t)quantity, amount))
      return fulfillment__why(why, CTXD_EDECODE, "item %zu: sku is longer than %d bytes", i + 1,
                              FULFILLMENT_ID_MAX);
  }
  return 0;
}

/* ---- product refund ------------------------------------------------------------------- */

static int refund_total(const fulfillment_plan_t *p, int64_t *total) {
  int64_t sum = 0;
  for (size_t i = 0; i < p->n_items; i++)
    if (__builtin_add_overflow(sum, p->items[i].amount, &sum)) return CTXD_ERANGE;
  *total = sum;
  return 0;
}

static int refund_check(const fulfillment_plan_t *p, fulfillment_why_t *why) {
  int64_t total;
  int rc = check_items(p, true, why);
  if (!rc && refund_total(p, &total)) rc = fulfillment__why(why, CTXD_ERANGE, "total amount overflows");
  return rc;
}

static json_t *refund_encode(const fulfillment_plan_t *p) { return encode_items(p, true); }

static int refund_decode(const json_t *j, fulfillment_plan_t *p, fulfillment_why_t *why) {
  return decode_items(j, p, true, why);
}

/* The payment system's answer. A second completion is a duplicate when it names the same
 * payment, a conflict otherwise; failures are judged by the move table alone. A completion
 * for another amount than requested is recorded and fails: a partial refund is no success. */
static fulfillment__move_t refund_feedback(fulfillment_decision_t *d, const fulfillment_command_t *c,
                                           fulfillment__inputs_t *in) {
  fulfillment_refund_feedback_t *r = &d->order.refund;
  if (c->feedback == FULFILLMENT_FEEDBACK_REFUND_FAILED) return FULFILLMENT__MOVE_FAIL;
  if (r->payment_reference[0])
    return strcmp(r->payment_reference, in->reference) == 0
               ? fulfillment__ignore(d, FULFILLMENT_IGNORED_DUPLICATE, "refund %s is recorded already",
                                     in->reference)
               : fulfillment__ignore(d, FULFILLMENT_IGNORED_CONFLICT, "refund %s is recorded, not %s",
                                     r->payment_reference, in->reference);
  fulfillment__set_text(d, FULFILLMENT_FIELD_REFUND_FEEDBACK, r->payment_reference, in->reference);
  r->completed_at = c->at;
  int64_t requested = 0;
  refund_total(&d->order.plan, &requested);
  /* one completion per request: any other amount or currency is no success (a partial
   * refund is not summed with a later one), it fails for staff to follow up */
  const char *paid_in = c->currency ? c->currency : "",
             *asked_in = c->requested_currency ? c->requested_currency : "";
  if (strcmp(paid_in, asked_in) != 0)
    snprintf(in->reason, sizeof in->reason, "refund %s paid %lld %.8s, the request was %lld %.8s",
             in->reference, (long long)c->amount, paid_in, (long long)requested, asked_in);
  else if (c->amount != requested)
    snprintf(in->reason, sizeof in->reason, "refund %s paid %lld of the %lld requested", in->reference,
             (long long)c->amount, (long long)requested);
  else
    return FULFILLMENT__MOVE_SUCCEED;
  return FULFILLMENT__MOVE_FAIL;
}

static const char *refund_reference(const fulfillment_order_t *o) { return o->refund.payment_reference; }

/* ---- reship --------------------------------------------------------------------------- */

static int reship_check(const fulfillment_plan_t *p, fulfillment_why_t *why) {
  return check_items(p, false, why);
}

/* A reship gives goods, not money. */
static int reship_total(const fulfillment_plan_t *p, int64_t *total) {
  (void)p;
  *total = 0;
  return 0;
}

static json_t *reship_encode(const fulfillment_plan_t *p) { return encode_items(p, false); }

static int reship_decode(const json_t *j, fulfillment_plan_t *p, fulfillment_why_t *why) {
  return decode_items(j, p, false, why);
}

/* The order system's answers: created (recorded), shipped (succeeds; implies created when
 * it comes first), failed (judged by the move table). */
static fulfillment__move_t reship_feedback(fulfillment_decision_t *d, const fulfillment_command_t *c,
                                           fulfillment__inputs_t *in) {
  fulfillment_reship_feedback_t *r = &d->order.reship;
  const char *what = c->feedback == FULFILLMENT_FEEDBACK_RESHIP_SHIPPED ? "shipped" : "created";
  if (c->feedback == FULFILLMENT_FEEDBACK_RESHIP_FAILED) return FULFILLMENT__MOVE_FAIL;
  if (r->order_id[0] && strcmp(r->order_id, in->reference) != 0)
    return fulfillment__ignore(d, FULFILLMENT_IGNORED_CONFLICT, "reship order %s is recorded, not %s",
                               r->order_id, in->reference);
  if (r->order_id[0] && (c->feedback == FULFILLMENT_FEEDBACK_RESHIP_CREATED || r->shipped_at))
    return fulfillment__ignore(d, FULFILLMENT_IGNORED_DUPLICATE, "reship order %s is %s already",
                               in->reference, what);
  fulfillment__set_text(d, FULFILLMENT_FIELD_RESHIP_FEEDBACK, r->order_id, in->reference);
  if (c->feedback == FULFILLMENT_FEEDBACK_RESHIP_CREATED) {
    r->created_at = c->at;
    return FULFILLMENT__MOVE_RECORD;
  }
  r->shipped_at = c->at;
  d->changed |= FULFILLMENT_FIELD_RESHIP_FEEDBACK;
  return FULFILLMENT__MOVE_SUCCEED;
}

static const char *reship_reference(const fulfillment_order_t *o) { return o->reship.order_id; }

/* ---- non-product ---------------------------------------------------------------------- */

static int non_product_check(const fulfillment_plan_t *p, fulfillment_why_t *why) {
  if (p->benefit != FULFILLMENT_BENEFIT_VOUCHER && p->benefit != FULFILLMENT_BENEFIT_RED_PACKET)
    return fulfillment__why(why, CTXD_EINVAL, "non-product needs a voucher or a red packet");
  if (p->amount <= 0)
    return fulfillment__why(why, CTXD_ERANGE, "amount must be positive, got %lld", (long long)p->amount);
  return 0;
}

static int non_product_total(const fulfillment_plan_t *p, int64_t *total) {
  *total = p->amount;
  return 0;
}

static json_t *non_product_encode(const fulfillment_plan_t *p) {
  size_t b = (size_t)p->benefit;
  if (b >= N_BENEFITS || !benefit_names[b]) return NULL;
  return json_pack("{s:s, s:I}", "benefit", benefit_names[b], "amount", (json_int_t)p->amount);
}

static int non_product_decode(const json_t *j, fulfillment_plan_t *p, fulfillment_why_t *why) {
  const char *benefit;
  json_int_t amount;
  json_error_t je;
  if (json_unpack_ex((json_t *)j, &je, 0, "{s:s, s:I}", "benefit", &benefit, "amount", &amount))
    return fulfillment__why(why, CTXD_EDECODE, "%s", je.text);
  int b = fulfillment__name_index(benefit_names, N_BENEFITS, benefit);
  if (b < 0) return fulfillment__why(why, CTXD_EDECODE, "unknown benefit '%s'", benefit);
  return fulfillment_plan_set_benefit(p, (fulfillment_benefit_t)b, amount);
}

/* The issuing system's answer to the call: issued (succeeds; the same id again is a
 * duplicate, another a conflict) or failed (judged by the move table). */
static fulfillment__move_t non_product_feedback(fulfillment_decision_t *d, const fulfillment_command_t *c,
                                                fulfillment__inputs_t *in) {
  fulfillment_benefit_feedback_t *b = &d->order.benefit;
  if (c->feedback == FULFILLMENT_FEEDBACK_BENEFIT_FAILED) return FULFILLMENT__MOVE_FAIL;
  if (b->issue_id[0])
    return strcmp(b->issue_id, in->reference) == 0
               ? fulfillment__ignore(d, FULFILLMENT_IGNORED_DUPLICATE, "benefit %s is issued already",
                                     in->reference)
               : fulfillment__ignore(d, FULFILLMENT_IGNORED_CONFLICT, "benefit %s is issued, not %s",
                                     b->issue_id, in->reference);
  fulfillment__set_text(d, FULFILLMENT_FIELD_BENEFIT_FEEDBACK, b->issue_id, in->reference);
  b->issued_at = c->at;
  return FULFILLMENT__MOVE_SUCCEED;
}

static const char *non_product_reference(const fulfillment_order_t *o) { return o->benefit.issue_id; }

/* ---- the table ------------------------------------------------------------------------ */

static const fulfillment_strategy_ops_t strategies[] = {
    {FULFILLMENT_KIND_PRODUCT_REFUND, "product_refund", "product refund", FULFILLMENT_STATUS_PROCESSING,
     FULFILLMENT_MESSAGE_REFUND_REQUESTED, true, refund_check, refund_total, refund_encode, refund_decode,
     refund_feedback, refund_reference},
    {FULFILLMENT_KIND_RESHIP, "reship", "reship", FULFILLMENT_STATUS_PROCESSING,
     FULFILLMENT_MESSAGE_RESHIP_ORDER_REQUESTED, true, reship_check, reship_total, reship_encode,
     reship_decode, reship_feedback, reship_reference},
    {FULFILLMENT_KIND_NON_PRODUCT, "non_product", "non-product", FULFILLMENT_STATUS_PROCESSING,
     FULFILLMENT_MESSAGE_ISSUE_BENEFIT, false, non_product_check, non_product_total, non_product_encode,
     non_product_decode, non_product_feedback, non_product_reference},
};
#define N_STRATEGIES (sizeof strategies / sizeof strategies[0])

const fulfillment_strategy_ops_t *fulfillment__strategy_ops(fulfillment_kind_t kind) {
  for (size_t i = 0; i < N_STRATEGIES; i++)
    if (strategies[i].kind == kind) return &strategies[i];
  return NULL;
}

/* ---- public --------------------------------------------------------------------------- */

int fulfillment_plan_init(fulfillment_plan_t *p, fulfillment_kind_t kind) {
  const fulfillment_strategy_ops_t *ops = fulfillment__strategy_ops(kind);
  if (!p || !ops) return CTXD_EINVAL;
  memset(p, 0, sizeof *p);
  p->ops = ops;
  return 0;
}

int fulfillment_plan_add_item(fulfillment_plan_t *p, const char *sku, int32_t quantity, int64_t amount) {
  if (!p || !sku) return CTXD_EINVAL;
  if (p->n_items >= FULFILLMENT_MAX_ITEMS || strlen(sku) > FULFILLMENT_ID_MAX) return CTXD_ETOOBIG;
  fulfillment_item_t *it = &p->items[p->n_items++];
  memcpy(it->sku, sku, strlen(sku) + 1);
  it->quantity = quantity;
  it->amount = amount;
  return 0;
}

int fulfillment_plan_set_benefit(fulfillment_plan_t *p, fulfillment_benefit_t benefit, int64_t amount) {
  if (!p) return CTXD_EINVAL;
  p->benefit = benefit;
  p->amount = amount;
  return 0;
}

fulfillment_kind_t fulfillment_plan_kind(const fulfillment_plan_t *p) {
  return p && p->ops ? p->ops->kind : FULFILLMENT_KIND_NONE;
}

int fulfillment_plan_check(const fulfillment_plan_t *p, fulfillment_why_t *why) {
  if (!p || !p->ops) return fulfillment__why(why, CTXD_EINVAL, "plan is missing");
  return p->ops->check(p, why);
}

int fulfillment_plan_total(const fulfillment_plan_t *p, int64_t *total) {
  int rc = total ? fulfillment_plan_check(p, NULL) : CTXD_EINVAL;
  return rc ? rc : p->ops->total(p, total);
}

json_t *fulfillment_plan_encode(const fulfillment_plan_t *p) {
  if (!p || !p->ops) return NULL;
  json_t *j = p->ops->encode(p);
  if (j && json_object_set_new(j, "kind", json_string(p->ops->name))) {
    json_decref(j);
    return NULL;
  }
  return j;
}

int fulfillment__plan_read(const json_t *j, fulfillment_plan_t *p, fulfillment_why_t *why) {
  const char *kind;
  json_error_t je;
  if (!p) return CTXD_EINVAL;
  if (!j || json_unpack_ex((json_t *)j, &je, 0, "{s:s}", "kind", &kind))
    return fulfillment__why(why, CTXD_EDECODE, "strategy: kind is required");
  for (size_t i = 0; i < N_STRATEGIES; i++)
    if (strcmp(strategies[i].name, kind) == 0) {
      fulfillment_plan_init(p, strategies[i].kind);
      return p->ops->decode(j, p, why) ? CTXD_EDECODE : 0;
    }
  return fulfillment__why(why, CTXD_EDECODE, "unknown strategy kind '%s'", kind);
}

const char *fulfillment_kind_name(fulfillment_kind_t kind) {
  const fulfillment_strategy_ops_t *ops = fulfillment__strategy_ops(kind);
  return ops ? ops->name : NULL;
}
