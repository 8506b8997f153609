/* Internal to the compensation domain: the strategy interface (seed 2.2.1: the parts that
 * vary by strategy sit behind one interface instead of branches in the aggregate) and small
 * text helpers the aggregate and the strategies share. */
#ifndef CTXD_COMPENSATION_DOMAIN_STRATEGY_H
#define CTXD_COMPENSATION_DOMAIN_STRATEGY_H

#include "domain.h"

/* The parts of an application a strategy carries (compensation_strategy_conflict). */
enum {
  COMPENSATION__CARRIES_ITEMS = 1 << 0,       /* order lines */
  COMPENSATION__CARRIES_AMOUNTS = 1 << 1,     /* a refund amount per line */
  COMPENSATION__CARRIES_NON_PRODUCT = 1 << 2, /* a voucher or a red packet */
};

/* One strategy's behaviour. Every member is set for every strategy. */
struct compensation_strategy_ops {
  compensation_strategy_kind_t kind;
  const char *name;  /* stored and wire name: "product_refund" */
  const char *label; /* for texts: "product refund" */
  unsigned carries;  /* COMPENSATION__CARRIES_* */
  /* The strategy's own rules; fills why. */
  int (*validate)(const compensation_strategy_t *s, compensation_why_t *why);
  /* Money given back; CTXD_ERANGE on overflow. */
  int (*total)(const compensation_strategy_t *s, int64_t *total);
  /* Kind-specific members as a new JSON object (without "kind"); NULL when out of memory. */
  json_t *(*encode)(const compensation_strategy_t *s);
  /* Reads those members into s (already initialised to this kind); CTXD_EDECODE on shape. */
  int (*decode)(const json_t *j, compensation_strategy_t *s, compensation_why_t *why);
  /* Which stored fields differ between two strategies of this kind:
   * COMPENSATION_FIELD_STRATEGY_DETAIL or 0 (total_amount is compared by the aggregate). */
  uint32_t (*diff)(const compensation_strategy_t *a, const compensation_strategy_t *b);
};

/* The ops of kind (a static table entry, never freed); NULL when unknown. */
const compensation_strategy_ops_t *compensation__strategy_ops(compensation_strategy_kind_t kind);

/* Returns code after formatting why (which may be NULL). */
int compensation__why(compensation_why_t *why, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Copies src into dst (capacity cap, NUL included) after checking it: CTXD_EINVAL
 * "<what> is empty" when required and NULL or empty, CTXD_ETOOBIG "<what> is longer than N
 * bytes". NULL and not required copies "". dst is untouched on error. */
int compensation__copy_text(char *dst, size_t cap, const char *src, const char *what, bool required,
                            compensation_why_t *why);

/* Index of name in names[0..n), or -1. */
int compensation__name_index(const char *const *names, size_t n, const char *name);

#endif
