/* Compensation: the pure domain of an after-sales compensation order (seed 004, 補償單).
 *
 * A compensation order compensates one customer order. It carries exactly one strategy
 * (補償策略): a product refund, a reship, or a non-product compensation (voucher, red
 * packet). Strategy-specific rules (validation, total, storage as JSON, which stored fields
 * changed) sit behind one vtable, so the aggregate never branches on the strategy kind.
 *
 * compensation_order_decide() turns (state, command) into the new state, the events to
 * publish and the set of changed fields (update tracing: the repository writes only those
 * columns), or into a rejection with a code and a text. No I/O, no globals, no clock: times
 * come in with the command. Values only: every type here is plain data, copied with `=`.
 *
 * Statuses and the actions allowed in each (the data table in domain.c):
 *
 *   action                   from                                         -> to
 *   apply                    (no order yet)                               -> applied
 *   modify                   applied, rejected                            (status kept)
 *   submit                   applied, rejected                            -> pending_approval
 *   approve                  pending_approval                             -> approved
 *   reject                   pending_approval                             -> rejected
 *   terminate                applied, pending_approval, rejected          -> terminated
 *   fulfillment_processing   approved                                     -> compensating
 *   fulfillment_succeeded    approved, compensating, pending_communication -> finished
 *   fulfillment_failed       approved, compensating                       -> pending_communication
 *   fulfillment_abandoned    approved, compensating, pending_communication -> terminated
 *
 * Fulfillment events that arrive after a later one already moved the order on (processing
 * after failed or finished, failed after finished, any of them twice) are accepted and
 * ignored: the decision says so and nothing changes. Any other action outside its row is
 * rejected with CTXD_ESTATE naming the current status. Modify stops at submission: a reviewer
 * decides on the plan submitted, not on one changed under them. Terminate stops at approval:
 * from then on a fulfillment exists, which this context never changes (seed 2.2.2), and a
 * failed one (pending_communication) is still resolved by its case; terminating it would
 * leave a compensated customer on a terminated order once the case finishes. The way out of
 * pending_communication besides a finished case is the fulfillment's: its case closed or
 * rejected abandons it (FulfillmentAbandoned), and the order ends terminated with the reason,
 * so the two contexts agree that nothing was compensated. A failure or processing event
 * arriving after that changes nothing. */
#ifndef CTXD_COMPENSATION_DOMAIN_H
#define CTXD_COMPENSATION_DOMAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define COMPENSATION_ID_MAX 64    /* bytes of an id, a sku or an actor, without the NUL */
#define COMPENSATION_TEXT_MAX 256 /* bytes of a free text (reason), without the NUL */
/* Items of a refund or a reship: the contracts' Items max_items (ApplyCompensation,
 * ModifyCompensation, CompensationApproved); a unit test reads each of them and holds them
 * equal to this. Not the generated code's: the pure domain stays free of the generated
 * contracts, whose generator emits no limits, and the contracts state it three times anyway. */
#define COMPENSATION_MAX_ITEMS 100
#define COMPENSATION_WHY_SIZE 256 /* a rejection text, NUL included */
#define COMPENSATION_MAX_EVENTS 1 /* events one decision can yield */

typedef char compensation_id_t[COMPENSATION_ID_MAX + 1];
typedef char compensation_text_t[COMPENSATION_TEXT_MAX + 1];

/* Why something was refused or ignored, for people and logs. */
typedef struct {
  char text[COMPENSATION_WHY_SIZE];
} compensation_why_t;

/* ---- strategy ------------------------------------------------------------------------- */

typedef enum {
  COMPENSATION_STRATEGY_NONE = 0,
  COMPENSATION_STRATEGY_PRODUCT_REFUND = 1, /* 商品退款: refund money for items */
  COMPENSATION_STRATEGY_RESHIP = 2,         /* 補發: ship items again */
  COMPENSATION_STRATEGY_NON_PRODUCT = 3,    /* 非商品: voucher or red packet */
} compensation_strategy_kind_t;

typedef enum {
  COMPENSATION_BENEFIT_NONE = 0,
  COMPENSATION_BENEFIT_VOUCHER = 1,    /* 代金券 */
  COMPENSATION_BENEFIT_RED_PACKET = 2, /* 紅包 */
} compensation_benefit_t;

/* A product and how many of it. */
typedef struct {
  compensation_id_t sku;
  int32_t quantity;
} compensation_line_t;

/* A refunded product: the line and the money for it, in integer minor units (cents). */
typedef struct {
  compensation_line_t line;
  int64_t amount;
} compensation_refund_item_t;

typedef struct compensation_strategy_ops compensation_strategy_ops_t; /* domain_strategy.h */

/* Exactly one strategy: `ops` says which member of the union is live (NULL: none chosen). */
typedef struct {
  const compensation_strategy_ops_t *ops;
  union {
    struct {
      size_t n;
      compensation_refund_item_t items[COMPENSATION_MAX_ITEMS];
    } refund;
    struct {
      size_t n;
      compensation_line_t items[COMPENSATION_MAX_ITEMS];
    } reship;
    struct {
      compensation_benefit_t benefit;
      int64_t amount;
    } non_product;
  };
} compensation_strategy_t;

/* Empties s and makes it a strategy of `kind`. 0, or CTXD_EINVAL for an unknown kind. */
int compensation_strategy_init(compensation_strategy_t *s, compensation_strategy_kind_t kind);
/* Appends an item to a product refund. 0; CTXD_EINVAL when s is not a product refund or sku
 * is NULL; CTXD_ETOOBIG when s is full or sku is too long. Values are checked by validate. */
int compensation_strategy_add_refund_item(compensation_strategy_t *s, const char *sku, int32_t quantity,
                                          int64_t amount);
/* Appends an item to a reship; same results as compensation_strategy_add_refund_item. */
int compensation_strategy_add_reship_item(compensation_strategy_t *s, const char *sku, int32_t quantity);
/* Sets what a non-product compensation gives. 0, or CTXD_EINVAL when s is another kind. */
int compensation_strategy_set_non_product(compensation_strategy_t *s, compensation_benefit_t benefit,
                                          int64_t amount);

/* Exactly one strategy (seed 2.1.1.2, 有且僅有一個): what an application carries beside its
 * chosen kind must belong to that kind. `items` order lines, `refund_amounts` of them with a
 * refund amount, `non_product` whether a voucher or red packet is given. 0, or CTXD_EINVAL
 * with why naming the conflict: "exactly one strategy: a reship carries no refund amounts
 * (2 given)", "... a product refund carries no non-product compensation", "... a
 * non-product compensation carries no items (3 given)". why may be NULL. */
int compensation_strategy_conflict(compensation_strategy_kind_t kind, size_t items, size_t refund_amounts,
                                   bool non_product, compensation_why_t *why);

/* The kind of s (COMPENSATION_STRATEGY_NONE when none chosen). */
compensation_strategy_kind_t compensation_strategy_kind(const compensation_strategy_t *s);
/* Checks the strategy's own rules. 0, or a negative code with why filled:
 *   no strategy                       CTXD_EINVAL  "strategy is missing"
 *   refund/reship without items       CTXD_EINVAL  "product refund needs at least one item"
 *   more items than fit               CTXD_ETOOBIG "product refund has 33 items, at most 32"
 *   empty sku                         CTXD_EINVAL  "item 2: sku is empty"
 *   unterminated sku                  CTXD_ETOOBIG "item 2: sku is longer than 64 bytes"
 *   quantity <= 0                     CTXD_ERANGE  "item 2: quantity must be positive, got 0"
 *   same sku twice                    CTXD_EINVAL  "item 2: sku A1 is listed twice"
 *   refund amount <= 0                CTXD_ERANGE  "item 2: amount must be positive, got 0"
 *   refund total past INT64_MAX       CTXD_ERANGE  "total amount overflows"
 *   non-product benefit unknown       CTXD_EINVAL  "non-product needs a voucher or a red packet"
 *   non-product amount <= 0           CTXD_ERANGE  "amount must be positive, got 0"
 * why may be NULL. */
int compensation_strategy_validate(const compensation_strategy_t *s, compensation_why_t *why);
/* The money the strategy gives back: sum of refund items, the non-product amount, 0 for a
 * reship. 0 with *total set, or the validation code when s is not valid (CTXD_ERANGE when
 * the sum overflows). */
int compensation_strategy_total(const compensation_strategy_t *s, int64_t *total);
/* The strategy as {"kind": "product_refund", "items": [{"sku", "quantity", "amount"}]},
 * {"kind": "reship", "items": [{"sku", "quantity"}]} or {"kind": "non_product",
 * "benefit": "voucher", "amount": 500}. New reference (caller json_decref's it); NULL when
 * out of memory or s has no strategy. */
json_t *compensation_strategy_encode(const compensation_strategy_t *s);
/* Reads that shape back and validates it. 0, or CTXD_EDECODE (shape) or the validation code,
 * with why filled (may be NULL). */
int compensation_strategy_decode(const json_t *j, compensation_strategy_t *s, compensation_why_t *why);
/* "product_refund", "reship", "non_product"; NULL for anything else. Static strings. */
const char *compensation_strategy_kind_name(compensation_strategy_kind_t kind);

/* ---- the order ------------------------------------------------------------------------ */

typedef enum {
  COMPENSATION_STATUS_NONE = 0,
  COMPENSATION_STATUS_APPLIED = 1,               /* 申請: created, editable */
  COMPENSATION_STATUS_PENDING_APPROVAL = 2,      /* submitted, waits for a reviewer */
  COMPENSATION_STATUS_APPROVED = 3,              /* fulfillment starts (CompensationApproved) */
  COMPENSATION_STATUS_REJECTED = 4,              /* reviewer said no; can be fixed, resubmitted */
  COMPENSATION_STATUS_COMPENSATING = 5,          /* 補償中: fulfillment waits for feedback */
  COMPENSATION_STATUS_FINISHED = 6,              /* 結束: fulfillment succeeded */
  COMPENSATION_STATUS_PENDING_COMMUNICATION = 7, /* 待溝通: fulfillment failed */
  COMPENSATION_STATUS_TERMINATED = 8,            /* 終止: given up */
} compensation_status_t;
#define COMPENSATION_STATUS_COUNT 9

/* Who created the order (seed 2.1.1). */
typedef enum {
  COMPENSATION_CHANNEL_NONE = 0,
  COMPENSATION_CHANNEL_BACK_OFFICE = 1,      /* after-sales staff, back-office system */
  COMPENSATION_CHANNEL_CUSTOMER_SERVICE = 2, /* customer service, back-office system */
  COMPENSATION_CHANNEL_APP = 3,              /* the customer, in the app */
} compensation_channel_t;

/* Who caused the problem (責任方), as the contracts number them; NONE: not stated. */
typedef enum {
  COMPENSATION_PARTY_NONE = 0,
  COMPENSATION_PARTY_MERCHANT = 1,
  COMPENSATION_PARTY_PLATFORM = 2,
  COMPENSATION_PARTY_LOGISTICS = 3,
  COMPENSATION_PARTY_CUSTOMER = 4,
} compensation_party_t;

/* Stored fields, one bit each: the unit of update tracing. compensation_field_name() gives
 * the column name, which is also the key in compensation_order_encode()'s object. */
typedef enum {
  COMPENSATION_FIELD_ID = 1u << 0,
  COMPENSATION_FIELD_ORDER_ID = 1u << 1,
  COMPENSATION_FIELD_CUSTOMER_ID = 1u << 2,
  COMPENSATION_FIELD_CREATED_BY = 1u << 3,
  COMPENSATION_FIELD_APPLICANT = 1u << 4,
  COMPENSATION_FIELD_CREATED_AT = 1u << 5,
  COMPENSATION_FIELD_REASON = 1u << 6,
  COMPENSATION_FIELD_STRATEGY_KIND = 1u << 7,
  COMPENSATION_FIELD_STRATEGY_DETAIL = 1u << 8,
  COMPENSATION_FIELD_TOTAL_AMOUNT = 1u << 9,
  COMPENSATION_FIELD_STATUS = 1u << 10,
  COMPENSATION_FIELD_STATUS_REASON = 1u << 11,
  COMPENSATION_FIELD_REVIEWER = 1u << 12,
  COMPENSATION_FIELD_FULFILLMENT_ID = 1u << 13,
  COMPENSATION_FIELD_UPDATED_AT = 1u << 14,
  COMPENSATION_FIELD_VERSION = 1u << 15,
  COMPENSATION_FIELD_RESPONSIBLE_PARTY = 1u << 16,
} compensation_field_t;
#define COMPENSATION_FIELD_COUNT 17
#define COMPENSATION_FIELD_ALL ((1u << COMPENSATION_FIELD_COUNT) - 1u)

/* The aggregate root (補償單). */
typedef struct {
  compensation_id_t id; /* 補償單號 */
  compensation_id_t order_id;
  compensation_id_t customer_id;
  compensation_channel_t created_by;
  compensation_id_t applicant; /* who applied */
  int64_t created_at;          /* ms since the epoch, from the apply command */
  compensation_text_t reason;  /* after-sales reason */
  compensation_party_t responsible_party;
  compensation_strategy_t strategy;
  int64_t total_amount; /* the strategy's total, kept on the order (seed 2.1.1.2) */
  compensation_status_t status;
  compensation_text_t status_reason; /* why the current status: rejection, termination,
                                        fulfillment failure; "" otherwise */
  compensation_id_t reviewer;        /* who approved or rejected last */
  compensation_id_t fulfillment_id;  /* learned from the first fulfillment event */
  int64_t updated_at;
  uint32_t version; /* 1 after apply, +1 per change: optimistic concurrency for the repository */
} compensation_order_t;

/* ---- commands, events, decisions ------------------------------------------------------ */

typedef enum {
  COMPENSATION_ACTION_APPLY = 1,
  COMPENSATION_ACTION_MODIFY,
  COMPENSATION_ACTION_SUBMIT,
  COMPENSATION_ACTION_APPROVE,
  COMPENSATION_ACTION_REJECT,
  COMPENSATION_ACTION_TERMINATE,
  COMPENSATION_ACTION_FULFILLMENT_PROCESSING, /* FulfillmentProcessing arrived */
  COMPENSATION_ACTION_FULFILLMENT_SUCCEEDED,  /* FulfillmentSucceeded arrived */
  COMPENSATION_ACTION_FULFILLMENT_FAILED,     /* FulfillmentFailed arrived */
  COMPENSATION_ACTION_FULFILLMENT_ABANDONED,  /* FulfillmentAbandoned arrived */
} compensation_action_t;
#define COMPENSATION_ACTION_COUNT 11

/* One command. Strings are borrowed for the call only; unused ones may be NULL.
 *   apply      id, order_id, customer_id, channel, actor (applicant), reason, strategy,
 *              responsible_party (NONE: not stated)
 *   modify     reason, strategy (NULL: keep) and/or responsible_party (NONE: keep) or
 *              clear_responsible_party (not both); actor (who); values equal to the current
 *              ones change nothing; a change yields CompensationModified
 *   submit     -
 *   approve    actor (reviewer)
 *   reject     actor (reviewer), reason
 *   terminate  reason
 *   fulfillment_processing / _succeeded   fulfillment_id
 *   fulfillment_failed / _abandoned       fulfillment_id, reason (the failure, how its case
 *                                         ended) */
typedef struct {
  compensation_action_t action;
  int64_t at; /* ms since the epoch, > 0: the domain reads no clock */
  const char *id;
  const char *order_id;
  const char *customer_id;
  compensation_channel_t channel;
  const char *actor;
  const char *reason;
  const compensation_strategy_t *strategy;
  compensation_party_t responsible_party;
  bool clear_responsible_party; /* modify: the order no longer names one */
  const char *fulfillment_id;
} compensation_command_t;

typedef enum {
  COMPENSATION_EVENT_APPROVED = 1, /* "CompensationApproved": what Fulfillment needs to start */
  COMPENSATION_EVENT_MODIFIED = 2, /* "CompensationModified": a Modify changed the order */
} compensation_event_type_t;

/* An event: the order as it is after the command. */
typedef struct {
  compensation_event_type_t type;
  compensation_id_t compensation_id;
  compensation_id_t order_id;
  compensation_id_t customer_id;
  compensation_strategy_t strategy;
  int64_t total_amount;
  compensation_party_t responsible_party;
  compensation_id_t actor; /* who approved, who modified */
  int64_t at;
} compensation_event_t;

/* The outcome of compensation_order_decide(). */
typedef struct {
  compensation_order_t order; /* the state after the command; the old one if nothing changed
                                 or the command was rejected */
  uint32_t changed;           /* compensation_field_t bits the command changed; 0: none */
  bool ignored;               /* a stale or repeated fulfillment event: accepted, no change */
  size_t n_events;
  compensation_event_t events[COMPENSATION_MAX_EVENTS];
  compensation_why_t why; /* rejection or ignore reason; "" otherwise */
} compensation_decision_t;

/* Decides a command against the current state (NULL for apply: the order does not exist
 * yet). Returns 0 when accepted (changed, unchanged, or ignored) with d filled; otherwise the
 * rejection code with d->why:
 *   CTXD_EINVAL   unknown action, at <= 0, a required input missing ("reason is empty")
 *   CTXD_ETOOBIG  an input longer than its limit ("reason is longer than 256 bytes")
 *   (any)         apply/modify: the strategy's validation code and text
 *                 (see compensation_strategy_validate)
 *   CTXD_EEXIST   apply on an existing order
 *   CTXD_ENOENT   any other action without an order
 *   CTXD_ESTATE   the action is not allowed in the current status:
 *                 "cannot approve a compensation order that is applied"
 *   CTXD_ECONFLICT a fulfillment event for another fulfillment than the one recorded
 * `d` is large (several KB): keep it off small stacks. */
int compensation_order_decide(const compensation_order_t *state, const compensation_command_t *cmd,
                              compensation_decision_t *d);

/* ---- names and JSON ------------------------------------------------------------------- */

/* Column name of one field bit ("status_reason"); NULL when `field` is not exactly one bit. */
const char *compensation_field_name(uint32_t field);
/* "applied", "pending_approval", ...; NULL when unknown. Static strings. */
const char *compensation_status_name(compensation_status_t status);
/* "merchant", "platform", "logistics", "customer", "" for NONE; NULL when unknown. Static
 * strings. */
const char *compensation_party_name(compensation_party_t party);
/* "back_office", "customer_service", "app"; NULL when unknown. Static strings. */
const char *compensation_channel_name(compensation_channel_t channel);
/* "apply", "modify", ..., "fulfillment_failed"; NULL when unknown. Static strings. */
const char *compensation_action_name(compensation_action_t action);
/* "CompensationApproved"; NULL when unknown. Static string. */
const char *compensation_event_type_name(compensation_event_type_t type);

/* The order as one JSON object keyed by column name (compensation_field_name): a repository
 * writes json_object_get(obj, compensation_field_name(bit)) for each changed bit.
 * strategy_detail is compensation_strategy_encode()'s object. New reference (caller
 * json_decref's it); NULL when out of memory or the order has no valid strategy. */
json_t *compensation_order_encode(const compensation_order_t *o);
/* Reads that object back and checks it (every key present, names known, strategy valid,
 * total_amount equal to the strategy's total). 0 or CTXD_EDECODE with why (may be NULL). */
int compensation_order_decode(const json_t *j, compensation_order_t *o, compensation_why_t *why);

#endif
