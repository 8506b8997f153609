/* The three compensation strategies behind compensation_strategy_ops_t, and the public
 * strategy functions that dispatch through it. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <ctxd/errno.h>

#include "domain_strategy.h"

int compensation__why(compensation_why_t *why, int code, const char *fmt, ...) {
  if (why) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why->text, sizeof why->text, fmt, ap);
    va_end(ap);
  }
  return code;
}

int compensation__copy_text(char *dst, size_t cap, const char *src, const char *what, bool required,
                            compensation_why_t *why) {
  if (!src || !*src) {
    if (required) return compensation__why(why, CTXD_EINVAL, "%s is empty", what);
    src = "";
  }
  size_t len = strlen(src);
  if (len >= cap) return compensation__why(why, CTXD_ETOOBIG, "%s is longer than %zu bytes", what, cap - 1);
  memcpy(dst, src, len + 1);
  return 0;
}

int compensation__name_index(const char *const *names, size_t n, const char *name) {
  for (size_t i = 0; name && i < n; i++)
    if (names[i] && strcmp(names[i], name) == 0) return (int)i;
  return -1;
}

static const char *const benefit_names[] = {
    [COMPENSATION_BENEFIT_VOUCHER] = "voucher",
    [COMPENSATION_BENEFIT_RED_PACKET] = "red_packet",
};
#define N_BENEFITS (sizeof benefit_names / sizeof benefit_names[0])

/* ---- lines: what refund and reship items have in common -------------------------------- */

typedef const compensation_line_t *(*line_at_fn)(const compensation_strategy_t *s, size_t i);

static const compensation_line_t *refund_line(const compensation_strategy_t *s, size_t i) {
  return &s->refund.items[i].line;
}

static const compensation_line_t *reship_line(const compensation_strategy_t *s, size_t i) {
  return &s->reship.items[i];
}

static int check_lines(const compensation_strategy_t *s, size_t n, line_at_fn at, compensation_why_t *why) {
  const char *label = s->ops->label;
  if (n == 0) return compensation__why(why, CTXD_EINVAL, "%s needs at least one item", label);
  if (n > COMPENSATION_MAX_ITEMS)
    return compensation__why(why, CTXD_ETOOBIG, "%s has %zu items, at most %d", label, n,
                             COMPENSATION_MAX_ITEMS);
  for (size_t i = 0; i < n; i++) {
    const compensation_line_t *l = at(s, i);
    if (!memchr(l->sku, '\0', sizeof l->sku))
      return compensation__why(why, CTXD_ETOOBIG, "item %zu: sku is longer than %d bytes", i + 1,
                               COMPENSATION_ID_MAX);
    if (!l->sku[0]) return compensation__why(why, CTXD_EINVAL, "item %zu: sku is empty", i + 1);
    if (l->quantity <= 0)
      return compensation__why(why, CTXD_ERANGE, "item %zu: quantity must be positive, got %d", i + 1,
                               (int)l->quantity);
    for (size_t j = 0; j < i; j++)
      if (strcmp(at(s, j)->sku, l->sku) == 0)
        return compensation__why(why, CTXD_EINVAL, "item %zu: sku %s is listed twice", i + 1, l->sku);
  }
  return 0;
}

static int lines_equal(const compensation_line_t *a, const compensation_line_t *b) {
  return strcmp(a->sku, b->sku) == 0 && a->quantity == b->quantity;
}

static json_t *encode_line(const compensation_line_t *l) {
  return json_pack("{s:s, s:I}", "sku", l->sku, "quantity", (json_int_t)l->quantity);
}

/* Encodes n items as {"items": [...]}, item i by item_fn. */
static json_t *encode_items(const compensation_strategy_t *s, size_t n,
                            json_t *(*item_fn)(const compensation_strategy_t *s, size_t i)) {
  json_t *items = json_array();
  for (size_t i = 0; items && i < n; i++)
    if (json_array_append_new(items, item_fn(s, i)) != 0) {
      json_decref(items);
      return NULL;
    }
  return items ? json_pack("{s:o}", "items", items) : NULL;
}

/* Reads {"items": [...]}, item i through add_fn. Item errors are prefixed "item <i>: ". */
static int decode_items(const json_t *j, compensation_strategy_t *s,
                        int (*add_fn)(compensation_strategy_t *s, const json_t *item,
                                      compensation_why_t *why),
                        compensation_why_t *why) {
  json_t *items;
  json_error_t je;
  if (json_unpack_ex((json_t *)j, &je, 0, "{s:o}", "items", &items) != 0 || !json_is_array(items))
    return compensation__why(why, CTXD_EDECODE, "items: an array is required");
  size_t n = json_array_size(items);
  if (n > COMPENSATION_MAX_ITEMS)
    return compensation__why(why, CTXD_ETOOBIG, "%s has %zu items, at most %d", s->ops->label, n,
                             COMPENSATION_MAX_ITEMS);
  for (size_t i = 0; i < n; i++) {
    compensation_why_t item_why;
    int rc = add_fn(s, json_array_get(items, i), &item_why);
    if (rc) return compensation__why(why, rc, "item %zu: %s", i + 1, item_why.text);
  }
  return 0;
}

/* Reads {"sku", "quantity"} and, when amount is not NULL, "amount". */
static int decode_line(const json_t *item, const char **sku, int32_t *quantity, int64_t *amount,
                       compensation_why_t *why) {
  json_error_t je;
  json_int_t q, a = 0;
  int rc = amount ? json_unpack_ex((json_t *)item, &je, 0, "{s:s, s:I, s:I}", "sku", sku, "quantity", &q,
                                   "amount", &a)
                  : json_unpack_ex((json_t *)item, &je, 0, "{s:s, s:I}", "sku", sku, "quantity", &q);
  if (rc != 0) return compensation__why(why, CTXD_EDECODE, "%s", je.text);
  if (q < INT32_MIN || q > INT32_MAX)
    return compensation__why(why, CTXD_EDECODE, "quantity %lld is out of range", q);
  *quantity = (int32_t)q;
  if (amount) *amount = a;
  return 0;
}

static int add_line_result(int rc, compensation_why_t *why) {
  if (rc == CTXD_ETOOBIG)
    return compensation__why(why, rc, "sku is longer than %d bytes", COMPENSATION_ID_MAX);
  return rc;
}

/* ---- product refund ------------------------------------------------------------------- */

static int refund_total(const compensation_strategy_t *s, int64_t *total) {
  int64_t sum = 0;
  for (size_t i = 0; i < s->refund.n; i++)
    if (__builtin_add_overflow(sum, s->refund.items[i].amount, &sum)) return CTXD_ERANGE;
  *total = sum;
  return 0;
}

static int refund_validate(const compensation_strategy_t *s, compensation_why_t *why) {
  int rc = check_lines(s, s->refund.n, refund_line, why);
  if (rc) return rc;
  for (size_t i = 0; i < s->refund.n; i++)
    if (s->refund.items[i].amount <= 0)
      return compensation__why(why, CTXD_ERANGE, "item %zu: amount must be positive, got %lld", i + 1,
                               (long long)s->refund.items[i].amount);
  int64_t total;
  if (refund_total(s, &total)) return compensation__why(why, CTXD_ERANGE, "total amount overflows");
  return 0;
}

static json_t *refund_item_json(const compensation_strategy_t *s, size_t i) {
  json_t *item = encode_line(&s->refund.items[i].line);
  if (item && json_object_set_new(item, "amount", json_integer(s->refund.items[i].amount))) {
    json_decref(item);
    return NULL;
  }
  return item;
}

static json_t *refund_encode(const compensation_strategy_t *s) {
  return encode_items(s, s->refund.n, refund_item_json);
}

static int refund_add_json(compensation_strategy_t *s, const json_t *item, compensation_why_t *why) {
  const char *sku;
  int32_t quantity;
  int64_t amount;
  int rc = decode_line(item, &sku, &quantity, &amount, why);
  return rc ? rc : add_line_result(compensation_strategy_add_refund_item(s, sku, quantity, amount), why);
}

static int refund_decode(const json_t *j, compensation_strategy_t *s, compensation_why_t *why) {
  return decode_items(j, s, refund_add_json, why);
}

static uint32_t refund_diff(const compensation_strategy_t *a, const compensation_strategy_t *b) {
  if (a->refund.n != b->refund.n) return COMPENSATION_FIELD_STRATEGY_DETAIL;
  for (size_t i = 0; i < a->refund.n; i++)
    if (!lines_equal(&a->refund.items[i].line, &b->refund.items[i].line) ||
        a->refund.items[i].amount != b->refund.items[i].amount)
      return COMPENSATION_FIELD_STRATEGY_DETAIL;
  return 0;
}

/* ---- reship --------------------------------------------------------------------------- */

static int reship_validate(const compensation_strategy_t *s, compensation_why_t *why) {
  return check_lines(s, s->reship.n, reship_line, why);
}

/* A reship gives goods, not money. */
static int reship_total(const compensation_strategy_t *s, int64_t *total) {
  (void)s;
  *total = 0;
  return 0;
}

static json_t *reship_item_json(const compensation_strategy_t *s, size_t i) {
  return encode_line(&s->reship.items[i]);
}

static json_t *reship_encode(const compensation_strategy_t *s) {
  return encode_items(s, s->reship.n, reship_item_json);
}

static int reship_add_json(compensation_strategy_t *s, const json_t *item, compensation_why_t *why) {
  const char *sku;
  int32_t quantity;
  int rc = decode_line(item, &sku, &quantity, NULL, why);
  return rc ? rc : add_line_result(compensation_strategy_add_reship_item(s, sku, quantity), why);
}

static int reship_decode(const json_t *j, compensation_strategy_t *s, compensation_why_t *why) {
  return decode_items(j, s, reship_add_json, why);
}

static uint32_t reship_diff(const compensation_strategy_t *a, const compensation_strategy_t *b) {
  if (a->reship.n != b->reship.n) return COMPENSATION_FIELD_STRATEGY_DETAIL;
  for (size_t i = 0; i < a->reship.n; i++)
    if (!lines_equal(&a->reship.items[i], &b->reship.items[i])) return COMPENSATION_FIELD_STRATEGY_DETAIL;
  return 0;
}

/* ---- non-product ---------------------------------------------------------------------- */

static int non_product_validate(const compensation_strategy_t *s, compensation_why_t *why) {
  compensation_benefit_t b = s->non_product.benefit;
  if (b != COMPENSATION_BENEFIT_VOUCHER && b != COMPENSATION_BENEFIT_RED_PACKET)
    return compensation__why(why, CTXD_EINVAL, "non-product needs a voucher or a red packet");
  if (s->non_product.amount <= 0)
    return compensation__why(why, CTXD_ERANGE, "amount must be positive, got %lld",
                             (long long)s->non_product.amount);
  return 0;
}

static int non_product_total(const compensation_strategy_t *s, int64_t *total) {
  *total = s->non_product.amount;
  return 0;
}

static json_t *non_product_encode(const compensation_strategy_t *s) {
  size_t b = (size_t)s->non_product.benefit;
  if (b >= N_BENEFITS || !benefit_names[b]) return NULL;
  return json_pack("{s:s, s:I}", "benefit", benefit_names[b], "amount", (json_int_t)s->non_product.amount);
}

static int non_product_decode(const json_t *j, compensation_strategy_t *s, compensation_why_t *why) {
  const char *benefit;
  json_int_t amount;
  json_error_t je;
  if (json_unpack_ex((json_t *)j, &je, 0, "{s:s, s:I}", "benefit", &benefit, "amount", &amount))
    return compensation__why(why, CTXD_EDECODE, "%s", je.text);
  int b = compensation__name_index(benefit_names, N_BENEFITS, benefit);
  if (b < 0) return compensation__why(why, CTXD_EDECODE, "unknown benefit '%s'", benefit);
  return compensation_strategy_set_non_product(s, (compensation_benefit_t)b, amount);
}

static uint32_t non_product_diff(const compensation_strategy_t *a, const compensation_strategy_t *b) {
  return a->non_product.benefit != b->non_product.benefit || a->non_product.amount != b->non_product.amount
             ? COMPENSATION_FIELD_STRATEGY_DETAIL
             : 0;
}

/* ---- the table ------------------------------------------------------------------------ */

static const compensation_strategy_ops_t strategies[] = {
    {COMPENSATION_STRATEGY_PRODUCT_REFUND, "product_refund", "product refund",
     COMPENSATION__CARRIES_ITEMS | COMPENSATION__CARRIES_AMOUNTS, refund_validate, refund_total,
     refund_encode, refund_decode, refund_diff},
    {COMPENSATION_STRATEGY_RESHIP, "reship", "reship", COMPENSATION__CARRIES_ITEMS, reship_validate,
     reship_total, reship_encode, reship_decode, reship_diff},
    {COMPENSATION_STRATEGY_NON_PRODUCT, "non_product", "non-product", COMPENSATION__CARRIES_NON_PRODUCT,
     non_product_validate, non_product_total, non_product_encode, non_product_decode, non_product_diff},
};
#define N_STRATEGIES (sizeof strategies / sizeof strategies[0])

const compensation_strategy_ops_t *compensation__strategy_ops(compensation_strategy_kind_t kind) {
  for (size_t i = 0; i < N_STRATEGIES; i++)
    if (strategies[i].kind == kind) return &strategies[i];
  return NULL;
}

/* ---- public --------------------------------------------------------------------------- */

int compensation_strategy_init(compensation_strategy_t *s, compensation_strategy_kind_t kind) {
  const compensation_strategy_ops_t *ops = compensation__strategy_ops(kind);
  if (!s || !ops) return CTXD_EINVAL;
  memset(s, 0, sizeof *s);
  s->ops = ops;
  return 0;
}

/* 0 when one more item with this sku fits next to n others. */
static int line_fits(size_t n, const char *sku) {
  if (!sku) return CTXD_EINVAL;
  return n >= COMPENSATION_MAX_ITEMS || strlen(sku) > COMPENSATION_ID_MAX ? CTXD_ETOOBIG : 0;
}

static void set_line(compensation_line_t *line, const char *sku, int32_t quantity) {
  memcpy(line->sku, sku, strlen(sku) + 1);
  line->quantity = quantity;
}

int compensation_strategy_add_refund_item(compensation_strategy_t *s, const char *sku, int32_t quantity,
                                          int64_t amount) {
  if (compensation_strategy_kind(s) != COMPENSATION_STRATEGY_PRODUCT_REFUND) return CTXD_EINVAL;
  int rc = line_fits(s->refund.n, sku);
  if (rc) return rc;
  compensation_refund_item_t *item = &s->refund.items[s->refund.n++];
  set_line(&item->line, sku, quantity);
  item->amount = amount;
  return 0;
}

int compensation_strategy_add_reship_item(compensation_strategy_t *s, const char *sku, int32_t quantity) {
  if (compensation_strategy_kind(s) != COMPENSATION_STRATEGY_RESHIP) return CTXD_EINVAL;
  int rc = line_fits(s->reship.n, sku);
  if (rc) return rc;
  set_line(&s->reship.items[s->reship.n++], sku, quantity);
  return 0;
}

int compensation_strategy_set_non_product(compensation_strategy_t *s, compensation_benefit_t benefit,
                                          int64_t amount) {
  if (compensation_strategy_kind(s) != COMPENSATION_STRATEGY_NON_PRODUCT) return CTXD_EINVAL;
  s->non_product.benefit = benefit;
  s->non_product.amount = amount;
  return 0;
}

compensation_strategy_kind_t compensation_strategy_kind(const compensation_strategy_t *s) {
  return s && s->ops ? s->ops->kind : COMPENSATION_STRATEGY_NONE;
}

int compensation_strategy_conflict(compensation_strategy_kind_t kind, size_t items, size_t refund_amounts,
                                   bool non_product, compensation_why_t *why) {
  const compensation_strategy_ops_t *ops = compensation__strategy_ops(kind);
  if (!ops) return compensation__why(why, CTXD_EINVAL, "strategy is missing");
  const char *label = ops->label;
  if (items && !(ops->carries & COMPENSATION__CARRIES_ITEMS))
    return compensation__why(why, CTXD_EINVAL,
                             "exactly one strategy: a %s compensation carries no items (%zu given)", label,
                             items);
  if (refund_amounts && !(ops->carries & COMPENSATION__CARRIES_AMOUNTS))
    return compensation__why(why, CTXD_EINVAL,
                             "exactly one strategy: a %s carries no refund amounts (%zu given)", label,
                             refund_amounts);
  if (non_product && !(ops->carries & COMPENSATION__CARRIES_NON_PRODUCT))
    return compensation__why(why, CTXD_EINVAL,
                             "exactly one strategy: a %s carries no non-product compensation", label);
  return 0;
}

int compensation_strategy_validate(const compensation_strategy_t *s, compensation_why_t *why) {
  if (!s || !s->ops) return compensation__why(why, CTXD_EINVAL, "strategy is missing");
  return s->ops->validate(s, why);
}

int compensation_strategy_total(const compensation_strategy_t *s, int64_t *total) {
  int rc = total ? compensation_strategy_validate(s, NULL) : CTXD_EINVAL;
  return rc ? rc : s->ops->total(s, total);
}

json_t *compensation_strategy_encode(const compensation_strategy_t *s) {
  if (!s || !s->ops) return NULL;
  json_t *j = s->ops->encode(s);
  if (j && json_object_set_new(j, "kind", json_string(s->ops->name))) {
    json_decref(j);
    return NULL;
  }
  return j;
}

int compensation_strategy_decode(const json_t *j, compensation_strategy_t *s, compensation_why_t *why) {
  const char *kind;
  json_error_t je;
  if (!s) return CTXD_EINVAL;
  if (!j || json_unpack_ex((json_t *)j, &je, 0, "{s:s}", "kind", &kind))
    return compensation__why(why, CTXD_EDECODE, "strategy: kind is required");
  for (size_t i = 0; i < N_STRATEGIES; i++)
    if (strcmp(strategies[i].name, kind) == 0) {
      compensation_strategy_init(s, strategies[i].kind);
      int rc = s->ops->decode(j, s, why);
      return rc ? rc : s->ops->validate(s, why);
    }
  return compensation__why(why, CTXD_EDECODE, "unknown strategy kind '%s'", kind);
}

const char *compensation_strategy_kind_name(compensation_strategy_kind_t kind) {
  const compensation_strategy_ops_t *ops = compensation__strategy_ops(kind);
  return ops ? ops->name : NULL;
}
