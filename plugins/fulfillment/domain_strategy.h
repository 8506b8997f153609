/* Internal to the fulfillment domain: the strategy interface (seed 2.2.2: processing by
 * strategy behind one interface whose "receive feedback" has a default) and helpers shared
 * by the aggregate and the strategies. */
#ifndef CTXD_FULFILLMENT_DOMAIN_STRATEGY_H
#define CTXD_FULFILLMENT_DOMAIN_STRATEGY_H

#include "domain.h"

/* What feedback asks the aggregate to do; rows of the move table in domain.c. */
typedef enum {
  FULFILLMENT__MOVE_IGNORE = 0, /* the strategy ignored it (d->ignored, d->why set) */
  FULFILLMENT__MOVE_RECORD,     /* value objects changed, status kept */
  FULFILLMENT__MOVE_SUCCEED,
  FULFILLMENT__MOVE_FAIL,
  FULFILLMENT__MOVE_RESOLVE,
  FULFILLMENT__MOVE_ABANDON,
} fulfillment__move_t;

/* A command's inputs, checked and copied by decide(). */
typedef struct {
  fulfillment_id_t reference;
  fulfillment_text_t reason;
  fulfillment_id_t actor;
} fulfillment__inputs_t;

struct fulfillment_strategy_ops {
  fulfillment_kind_t kind;
  const char *name;                   /* wire name: "product_refund" */
  const char *label;                  /* for texts: "product refund" */
  fulfillment_status_t started;       /* status right after creation */
  fulfillment_message_type_t request; /* command to a downstream system at creation; 0: none */
  bool announce_start;                /* the started status is published (not when the
                                         request is a call answered at once) */
  int (*check)(const fulfillment_plan_t *p, fulfillment_why_t *why);
  /* Money given back; CTXD_ERANGE on overflow. */
  int (*total)(const fulfillment_plan_t *p, int64_t *total);
  /* Kind-specific members as a new object (without "kind"); NULL when out of memory. */
  json_t *(*encode)(const fulfillment_plan_t *p);
  /* Reads those members into p (initialised to this kind); CTXD_EDECODE on shape. */
  int (*decode)(const json_t *j, fulfillment_plan_t *p, fulfillment_why_t *why);
  /* Takes feedback of this strategy into d->order's value objects (marking d->changed) and
   * says which move follows; a failure it finds itself it explains in in->reason. */
  fulfillment__move_t (*feedback)(fulfillment_decision_t *d, const fulfillment_command_t *c,
                                  fulfillment__inputs_t *in);
  /* The downstream reference a FulfillmentSucceeded carries ("" when none). */
  const char *(*reference)(const fulfillment_order_t *o);
};

/* The ops of kind (a static table entry, never freed); NULL when unknown. */
const fulfillment_strategy_ops_t *fulfillment__strategy_ops(fulfillment_kind_t kind);

/* Returns code after formatting why (which may be NULL). */
int fulfillment__why(fulfillment_why_t *why, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Marks d ignored for `kind` with a reason; returns FULFILLMENT__MOVE_IGNORE. */
fulfillment__move_t fulfillment__ignore(fulfillment_decision_t *d, fulfillment_ignored_t kind,
                                        const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Copies src into dst[cap] after checking it: CTXD_EINVAL "<what> is empty" when required and
 * NULL or empty, CTXD_ETOOBIG "<what> is longer than N bytes"; NULL and not required copies
 * "". dst is untouched on error. */
int fulfillment__copy_text(char *dst, size_t cap, const char *src, const char *what, bool required,
                           fulfillment_why_t *why);

/* Sets dst (capacity checked by the caller) to src, marking `field` changed when it differs. */
void fulfillment__set_text(fulfillment_decision_t *d, uint32_t field, char *dst, const char *src);

/* Reads a plan's JSON ({"kind", ...}) into p without checking it: the stored state of a
 * fulfillment created failed keeps the plan that could not be carried out. 0, or
 * CTXD_EDECODE with why. */
int fulfillment__plan_read(const json_t *j, fulfillment_plan_t *p, fulfillment_why_t *why);

/* Index of name in names[0..n), or -1. */
int fulfillment__name_index(const char *const *names, size_t n, const char *name);

#endif
