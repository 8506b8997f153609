/* Fulfillment: the pure domain of an after-sales fulfillment order (seed 004, 售後履約單).
 *
 * A fulfillment order is created from CompensationApproved and carries out the approved
 * plan (補償方案) with its own lifecycle; it never touches the compensation order, it only
 * publishes events (seed 2.2.2, 2.3). Processing depends on the strategy, behind one vtable:
 *
 *   non_product     calls the issuing system (IssueBenefit, an external call whose
 *                   result comes back at once: seed 2.2.2, 處理通過), announces nothing
 *                   until it answers:             -> processing  -
 *   product_refund  sends RefundRequested to the payment system,
 *                   waits for its result:         -> processing  FulfillmentProcessing
 *   reship          sends ReshipOrderRequested to the order system,
 *                   waits for created, shipped:   -> processing  FulfillmentProcessing
 *
 * Downstream feedback (seed 2.1.2.1/2.1.2.2) is kept as value objects on the order and moves
 * it through this table (domain.c):
 *
 *   move              from         -> to          event                 feedback
 *   record            processing   (processing)   -                     reship_created
 *   succeed           processing   -> succeeded   FulfillmentSucceeded  refund_completed (the
 *                                                                       amount and currency
 *                                                                       requested),
 *                                                                       reship_shipped,
 *                                                                       benefit_issued
 *   fail              processing   -> failed      FulfillmentFailed     refund_failed,
 *                                                                       refund_completed for
 *                                                                       another amount or
 *                                                                       currency,
 *                                                                       reship_failed,
 *                                                                       benefit_failed
 *   resolve_manually  failed       -> succeeded   FulfillmentSucceeded  (a Case resolved it)
 *   abandon           failed       -> abandoned   FulfillmentAbandoned  (its Case ended
 *                                                                       without finishing)
 *
 * A failure opens the pending-communication record (待溝通記錄) with its reason; a manual
 * resolution closes it, and so does abandoning: a case about a failed fulfillment that is
 * closed or rejected means nothing more will be tried, and the compensation ends (Terminated)
 * instead of waiting for ever. Abandon outside failed is ignored (late; duplicate once
 * abandoned): only a failure waits for its case. An approval whose plan cannot be carried out (處理異常) opens one
 * too: the fulfillment is created failed, the record says why, FulfillmentFailed announces
 * it. Feedback never crashes and never rejects for being unexpected; it is accepted and
 * ignored, changing nothing and yielding nothing, with a reason:
 *   duplicate       the same feedback again (same payment reference / reship order id, a
 *                   second failure, resolving a succeeded fulfillment, creating twice)
 *   late            feedback after the fulfillment moved on (any feedback once it failed:
 *                   a Case resolves it; a failure after success; a success after a manual
 *                   resolution)
 *   conflict        feedback naming another payment reference or reship order than recorded
 *   wrong_strategy  feedback of another strategy (refund feedback on a reship, ...)
 *   unknown         a feedback kind this code does not know
 * reship_shipped before reship_created is accepted: shipping implies the order was created,
 * so its order id is recorded (created_at stays 0: unknown) and the late created is then a
 * duplicate.
 *
 * No I/O, no globals, no clock: times come in with the command. Every type is plain data. */
#ifndef CTXD_FULFILLMENT_DOMAIN_H
#define CTXD_FULFILLMENT_DOMAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define FULFILLMENT_ID_MAX 64    /* bytes of an id, a sku, a reference, without the NUL */
#define FULFILLMENT_TEXT_MAX 256 /* bytes of a free text, without the NUL */
/* Items of a plan: the contracts' Items max_items (CompensationApproved,
 * ReshipOrderRequested); a unit test reads each of them and holds them equal to this (why
 * not the generated code's: see COMPENSATION_MAX_ITEMS). */
#define FULFILLMENT_MAX_ITEMS 100
#define FULFILLMENT_WHY_SIZE 256   /* a rejection or ignore text, NUL included */
#define FULFILLMENT_MAX_MESSAGES 2 /* messages one decision can yield */

typedef char fulfillment_id_t[FULFILLMENT_ID_MAX + 1];
typedef char fulfillment_text_t[FULFILLMENT_TEXT_MAX + 1];

/* Why something was refused or ignored, for people and logs. */
typedef struct {
  char text[FULFILLMENT_WHY_SIZE];
} fulfillment_why_t;

/* ---- the plan ------------------------------------------------------------------------- */

typedef enum {
  FULFILLMENT_KIND_NONE = 0,
  FULFILLMENT_KIND_PRODUCT_REFUND = 1,
  FULFILLMENT_KIND_RESHIP = 2,
  FULFILLMENT_KIND_NON_PRODUCT = 3,
} fulfillment_kind_t;

typedef enum {
  FULFILLMENT_BENEFIT_NONE = 0,
  FULFILLMENT_BENEFIT_VOUCHER = 1,
  FULFILLMENT_BENEFIT_RED_PACKET = 2,
} fulfillment_benefit_t;

typedef struct {
  fulfillment_id_t sku;
  int32_t quantity;
  int64_t amount; /* minor units; product refund only */
} fulfillment_item_t;

typedef struct fulfillment_strategy_ops fulfillment_strategy_ops_t; /* domain_strategy.h */

/* What to fulfill. `ops` is the strategy (NULL: none). A product refund and a reship use
 * items; a non-product uses benefit and amount; members a kind does not use are ignored. */
typedef struct {
  const fulfillment_strategy_ops_t *ops;
  size_t n_items;
  fulfillment_item_t items[FULFILLMENT_MAX_ITEMS];
  fulfillment_benefit_t benefit;
  int64_t amount;
} fulfillment_plan_t;

/* Empties p and makes it a plan of `kind`. 0, or CTXD_EINVAL for an unknown kind. */
int fulfillment_plan_init(fulfillment_plan_t *p, fulfillment_kind_t kind);
/* Appends an item. 0; CTXD_EINVAL when p or sku is NULL; CTXD_ETOOBIG when p is full or sku
 * is too long. Values are checked by fulfillment_plan_check. */
int fulfillment_plan_add_item(fulfillment_plan_t *p, const char *sku, int32_t quantity, int64_t amount);
/* Sets a non-product's benefit and amount. 0, or CTXD_EINVAL when p is NULL. */
int fulfillment_plan_set_benefit(fulfillment_plan_t *p, fulfillment_benefit_t benefit, int64_t amount);
/* The kind of p (FULFILLMENT_KIND_NONE when none). */
fulfillment_kind_t fulfillment_plan_kind(const fulfillment_plan_t *p);
/* Checks that p can be carried out. 0, or with why filled (may be NULL):
 *   no strategy                    CTXD_EINVAL  "plan is missing"
 *   refund/reship without items    CTXD_EINVAL  "reship needs at least one item"
 *   more items than fit            CTXD_ETOOBIG "reship has 33 items, at most 32"
 *   empty / unterminated sku       CTXD_EINVAL "item 1: sku is empty" /
 *                                  CTXD_ETOOBIG "item 1: sku is longer than 64 bytes"
 *   quantity <= 0                  CTXD_ERANGE  "item 1: quantity must be positive, got 0"
 *   refund amount <= 0             CTXD_ERANGE  "item 1: amount must be positive, got 0"
 *   refund total past INT64_MAX    CTXD_ERANGE  "total amount overflows"
 *   non-product benefit unknown    CTXD_EINVAL  "non-product needs a voucher or a red packet"
 *   non-product amount <= 0        CTXD_ERANGE  "amount must be positive, got 0" */
int fulfillment_plan_check(const fulfillment_plan_t *p, fulfillment_why_t *why);
/* Money the plan gives back (refund: the items' sum; non-product: its amount; reship: 0).
 * 0 with *total set, or fulfillment_plan_check's code. */
int fulfillment_plan_total(const fulfillment_plan_t *p, int64_t *total);
/* The plan as the CompensationApproved "strategy" object: {"kind": "product_refund",
 * "items": [{"sku", "quantity", "amount"}]}, {"kind": "reship", "items": [{"sku",
 * "quantity"}]}, {"kind": "non_product", "benefit": "voucher", "amount": 500}. New
 * reference (caller json_decref's it); NULL when out of memory or p has no strategy. */
json_t *fulfillment_plan_encode(const fulfillment_plan_t *p);
/* "product_refund", "reship", "non_product"; NULL when unknown. Static strings. */
const char *fulfillment_kind_name(fulfillment_kind_t kind);

/* What Fulfillment reads from a CompensationApproved message. */
typedef struct {
  fulfillment_id_t compensation_id;
  fulfillment_id_t order_id;
  fulfillment_id_t customer_id;
  fulfillment_plan_t plan;
  fulfillment_why_t unfit; /* "", or why the plan received did not fit `plan` (a sku too long) */
} fulfillment_approved_t;

/* ---- the order ------------------------------------------------------------------------ */

typedef enum {
  FULFILLMENT_STATUS_NONE = 0,
  FULFILLMENT_STATUS_PROCESSING = 1, /* 處理中: waits for downstream feedback */
  FULFILLMENT_STATUS_SUCCEEDED = 2,  /* 處理通過 */
  FULFILLMENT_STATUS_FAILED = 3,     /* 處理異常: pending communication */
  FULFILLMENT_STATUS_ABANDONED = 4,  /* failed, and its case ended without finishing: final */
} fulfillment_status_t;
#define FULFILLMENT_STATUS_COUNT 5

/* 創建退款回饋值對象: the payment system's refund result. Empty until it completes. */
typedef struct {
  fulfillment_id_t payment_reference;
  int64_t completed_at;
} fulfillment_refund_feedback_t;

/* 創建訂單回饋值對象: the order system's reship order. Empty until created or shipped. */
typedef struct {
  fulfillment_id_t order_id;
  int64_t created_at; /* 0: not known (shipped reported first) */
  int64_t shipped_at; /* 0: not shipped yet */
} fulfillment_reship_feedback_t;

/* The issuing system's answer to a non-product compensation. Empty until it issued. */
typedef struct {
  fulfillment_id_t issue_id; /* the voucher's or red packet's id there */
  int64_t issued_at;
} fulfillment_benefit_feedback_t;

/* 待溝通記錄: opened by a failure, closed by a manual resolution. Empty while none. */
typedef struct {
  fulfillment_text_t reason;
  int64_t opened_at;
  fulfillment_id_t resolved_by; /* "" while open */
  fulfillment_text_t resolution;
  int64_t resolved_at;
} fulfillment_communication_t;

/* Stored fields, one bit each (update tracing); each is a column, named as the key in
 * fulfillment_order_encode()'s object. */
typedef enum {
  FULFILLMENT_FIELD_ID = 1u << 0,
  FULFILLMENT_FIELD_COMPENSATION_ID = 1u << 1,
  FULFILLMENT_FIELD_ORDER_ID = 1u << 2,
  FULFILLMENT_FIELD_CUSTOMER_ID = 1u << 3,
  FULFILLMENT_FIELD_STRATEGY_KIND = 1u << 4,
  FULFILLMENT_FIELD_PLAN = 1u << 5,
  FULFILLMENT_FIELD_CREATED_AT = 1u << 6,
  FULFILLMENT_FIELD_STATUS = 1u << 7,
  FULFILLMENT_FIELD_REFUND_FEEDBACK = 1u << 8,
  FULFILLMENT_FIELD_RESHIP_FEEDBACK = 1u << 9,
  FULFILLMENT_FIELD_PENDING_COMMUNICATION = 1u << 10,
  FULFILLMENT_FIELD_UPDATED_AT = 1u << 11,
  FULFILLMENT_FIELD_VERSION = 1u << 12,
  FULFILLMENT_FIELD_BENEFIT_FEEDBACK = 1u << 13,
} fulfillment_field_t;
#define FULFILLMENT_FIELD_COUNT 14
#define FULFILLMENT_FIELD_ALL ((1u << FULFILLMENT_FIELD_COUNT) - 1u)

/* The aggregate root (售後履約單). */
typedef struct {
  fulfillment_id_t id;
  fulfillment_id_t compensation_id;
  fulfillment_id_t order_id;
  fulfillment_id_t customer_id;
  fulfillment_plan_t plan;
  int64_t created_at;
  fulfillment_status_t status;
  fulfillment_refund_feedback_t refund;
  fulfillment_reship_feedback_t reship;
  fulfillment_benefit_feedback_t benefit;
  fulfillment_communication_t communication;
  int64_t updated_at;
  uint32_t version; /* 1 after create, +1 per change */
} fulfillment_order_t;

/* ---- commands, messages, decisions ---------------------------------------------------- */

typedef enum {
  FULFILLMENT_ACTION_CREATE = 1,       /* from CompensationApproved */
  FULFILLMENT_ACTION_FEEDBACK,         /* a downstream system answered */
  FULFILLMENT_ACTION_RESOLVE_MANUALLY, /* a Case resolved a failed fulfillment by hand */
  FULFILLMENT_ACTION_ABANDON,          /* its Case ended without finishing (closed, rejected) */
} fulfillment_action_t;

typedef enum {
  FULFILLMENT_FEEDBACK_UNKNOWN = 0,
  FULFILLMENT_FEEDBACK_REFUND_COMPLETED, /* reference: payment reference */
  FULFILLMENT_FEEDBACK_REFUND_FAILED,    /* reason */
  FULFILLMENT_FEEDBACK_RESHIP_CREATED,   /* reference: reship order id */
  FULFILLMENT_FEEDBACK_RESHIP_SHIPPED,   /* reference: reship order id */
  FULFILLMENT_FEEDBACK_RESHIP_FAILED,    /* reason */
  FULFILLMENT_FEEDBACK_BENEFIT_ISSUED,   /* reference: the issuing system's id */
  FULFILLMENT_FEEDBACK_BENEFIT_FAILED,   /* reason */
} fulfillment_feedback_t;
#define FULFILLMENT_FEEDBACK_COUNT 8

/* One command. Strings are borrowed for the call only; unused ones may be NULL.
 *   create            id (the new fulfillment's), approved
 *   feedback          feedback, and reference or reason as listed above; refund_completed
 *                     also amount and currency (what was refunded) and requested_currency
 *                     (what the refund was requested in: the plugin keeps it beside the
 *                     order); it succeeds only for the plan's total in that currency
 *   resolve_manually  actor (who resolved: the case or its agent), reason (the note)
 *   abandon           actor (the case's agent or the case), reason (how the case ended) */
typedef struct {
  fulfillment_action_t action;
  int64_t at; /* ms since the epoch, > 0: when it happened (the feedback's own time) */
  const char *id;
  const fulfillment_approved_t *approved;
  fulfillment_feedback_t feedback;
  const char *reference;
  const char *reason;
  const char *actor;
  int64_t amount;
  const char *currency;           /* NULL: "" */
  const char *requested_currency; /* NULL: "" */
} fulfillment_command_t;

typedef enum {
  FULFILLMENT_MESSAGE_PROCESSING = 1,         /* event "FulfillmentProcessing" */
  FULFILLMENT_MESSAGE_SUCCEEDED,              /* event "FulfillmentSucceeded" */
  FULFILLMENT_MESSAGE_FAILED,                 /* event "FulfillmentFailed" */
  FULFILLMENT_MESSAGE_REFUND_REQUESTED,       /* command "RefundRequested" to the payment system */
  FULFILLMENT_MESSAGE_RESHIP_ORDER_REQUESTED, /* command "ReshipOrderRequested" to orders */
  FULFILLMENT_MESSAGE_ISSUE_BENEFIT,          /* external call "IssueBenefit" to the issuing system */
  FULFILLMENT_MESSAGE_ABANDONED,              /* event "FulfillmentAbandoned" */
} fulfillment_message_type_t;
#define FULFILLMENT_MESSAGE_COUNT 8

/* An event to publish or a command to send. Which members a type carries: see
 * fulfillment_message_encode. */
typedef struct {
  fulfillment_message_type_t type;
  fulfillment_id_t fulfillment_id;
  fulfillment_id_t compensation_id;
  fulfillment_id_t order_id;
  fulfillment_id_t customer_id; /* requests */
  fulfillment_kind_t kind;
  fulfillment_plan_t plan;    /* requests: the items */
  int64_t amount;             /* RefundRequested: money to refund */
  fulfillment_id_t reference; /* Succeeded: payment reference or reship order id, or "" */
  fulfillment_text_t reason;  /* Failed: why; Succeeded by hand: the resolution note */
  bool resolved_manually;     /* Succeeded */
  int64_t at;
} fulfillment_message_t;

/* Why feedback was accepted without effect. */
typedef enum {
  FULFILLMENT_IGNORED_NONE = 0,
  FULFILLMENT_IGNORED_DUPLICATE,
  FULFILLMENT_IGNORED_LATE,
  FULFILLMENT_IGNORED_CONFLICT,
  FULFILLMENT_IGNORED_WRONG_STRATEGY,
  FULFILLMENT_IGNORED_UNKNOWN,
} fulfillment_ignored_t;

/* The outcome of fulfillment_order_decide(). */
typedef struct {
  fulfillment_order_t order; /* the state after the command; the old one when ignored or
                                rejected */
  uint32_t changed;          /* fulfillment_field_t bits changed; 0: none */
  fulfillment_ignored_t ignored;
  size_t n_messages;
  fulfillment_message_t messages[FULFILLMENT_MAX_MESSAGES]; /* requests first, then events */
  fulfillment_why_t why;                                    /* rejection or ignore reason; "" otherwise */
} fulfillment_decision_t;

/* Decides a command against the current state (NULL for create). Returns 0 when accepted
 * (d->ignored says whether it had no effect, d->why why), else the rejection code with
 * d->why:
 *   CTXD_EINVAL   unknown action, at <= 0, create without its id, compensation id or
 *                 strategy, resolve_manually without an actor
 *   CTXD_ETOOBIG  those longer than their limit
 * What another system says is never refused: an approval with a plan that fails
 * fulfillment_plan_check, or without order or customer, is created failed (see above);
 * feedback whose reference is empty or longer than FULFILLMENT_ID_MAX fails the
 * fulfillment (reason "refund_completed: payment reference is longer than 64 bytes"); a
 * reason or a note longer than FULFILLMENT_TEXT_MAX is cut on a UTF-8 character boundary,
 * an empty failure reason becomes "refund_failed without a reason".
 *   CTXD_EEXIST   create on a fulfillment of another compensation (the same compensation's
 *                 approval again is ignored as a duplicate)
 *   CTXD_ENOENT   feedback or resolve_manually without a fulfillment
 *   CTXD_ESTATE   resolve_manually while processing:
 *                 "cannot resolve_manually a fulfillment that is processing"
 * `d` is large (about 10 KB): keep it off small stacks. */
int fulfillment_order_decide(const fulfillment_order_t *state, const fulfillment_command_t *cmd,
                             fulfillment_decision_t *d);

/* ---- names and JSON ------------------------------------------------------------------- */

/* "processing", "succeeded", "failed"; NULL when unknown. Static strings. */
const char *fulfillment_status_name(fulfillment_status_t status);
/* "refund_completed", ...; NULL for unknown. Static strings. */
const char *fulfillment_feedback_name(fulfillment_feedback_t feedback);
/* "duplicate", "late", "conflict", "wrong_strategy", "unknown"; NULL for none. */
const char *fulfillment_ignored_name(fulfillment_ignored_t ignored);
/* "FulfillmentSucceeded", "RefundRequested", ...; NULL when unknown. Static strings. */
const char *fulfillment_message_type_name(fulfillment_message_type_t type);

/* The order as one JSON object keyed by column name: value objects are objects, or null
 * while empty; "plan" is fulfillment_plan_encode()'s object. New reference (caller
 * json_decref's it); NULL when out of memory or the order is malformed. */
json_t *fulfillment_order_encode(const fulfillment_order_t *o);
/* Reads that object back and checks it. 0 or CTXD_EDECODE with why (may be NULL). */
int fulfillment_order_decode(const json_t *j, fulfillment_order_t *o, fulfillment_why_t *why);

/* A message body. Every type: {"fulfillmentId", "compensationId", "orderId", "strategy"
 * (kind name), "at"}; plus
 *   FulfillmentSucceeded   "reference", "reason", "resolvedManually"
 *   FulfillmentAbandoned   "reason" (how the case ended), "resolvedManually"
 *   FulfillmentFailed      "reason"
 *   RefundRequested        "customerId", "items" [{"sku", "quantity", "amount"}], "amount"
 *   ReshipOrderRequested   "customerId", "items" [{"sku", "quantity"}]
 *   IssueBenefit           "customerId", "benefit", "amount"
 * New reference (caller json_decref's it); NULL when out of memory or m is malformed. */
json_t *fulfillment_message_encode(const fulfillment_message_t *m);

#endif
