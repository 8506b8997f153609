/* Paying: the pure domain of a paying order (seed 003, 支付单).
 *
 * A paying order is the part of an order this context owns: what is to be paid, what was
 * paid, whether it is paid or canceled. The read-write model decides the commands
 * (paying_order_decide); the read-only model (paying_order_view) answers the cashier's
 * "amount still to pay" and the result page's "payment result" from the same state,
 * without deciding anything. No I/O, no globals, no clock: times come in with the command.
 * Values only: every type here is plain data, copied with `=`.
 *
 * Pay (the payment system's callback, the seed's pay()), in this order:
 *   1. the command is checked on its own (payment id, amount > 0, or a free pay of 0);
 *   2. no such order: rejected (CTXD_ENOENT; the plugin has it delivered again later, as
 *      the callback may overtake the order's opening); another currency, or a free pay of
 *      an order that is not Free: rejected (CTXD_EINVAL);
 *   3. a payment id the repository knows (a repeated callback) is never counted again nor
 *      refused again, whatever the order's state: with another amount than the one stored
 *      it is rejected (CTXD_EINVAL); a payment counted before is REPEATED (a paid order
 *      says OrderPayFinished again; a canceled one nothing: its PayingOrderCanceled named
 *      what to refund); a payment refused before is REPEATED (the refusal was said once);
 *   4. canceled: ignored with a warning (the seed's log.warn): nothing counted, the
 *      payment is recorded as refused (record_refusal), for the payment system to refund;
 *   5. otherwise the payment is counted: paid += amount, payments += 1 (record_payment);
 *      paid already: OrderPayFinished again (idempotent);
 *      paying and paid >= amount: becomes paid (paid_at), OrderPayFinished;
 *      paying and paid < amount: a partial payment, recorded, nothing published;
 *   6. a counted payment that takes paid past the amount adds OverPaid with this payment's
 *      own excess (over_paid: paid after - max(paid before, amount)), so that refunding
 *      each OverPaid once per payment id refunds exactly paid - amount in all.
 * Cancel (the seed leaves it open; docs/contexts.md gives the reasons):
 *   no such order: CTXD_ENOENT; canceled: nothing changes, PayingOrderCanceled again (the
 *   same content: a consumer refunds once per order number);
 *   paid: rejected (CTXD_ESTATE: a refund, not a cancel); a GroupBuy order with a payment
 *   taken: rejected (CTXD_ESTATE: the group counts on it); otherwise canceled, and the event
 *   says what was paid, for the payment system to refund.
 * Open: creates the order in state paying; the same data again changes nothing; other data
 *   for an existing order is CTXD_EEXIST.
 *
 * Change tracking (the seed's snapshot + diff): paying_order_diff() compares the state
 * before and after a decision field by field; the repository writes only those columns and
 * appends a change-log row per logged field. */
#ifndef CTXD_PAYING_DOMAIN_H
#define CTXD_PAYING_DOMAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Limits count characters (Unicode code points), as the contracts' max_length does; a
 * character takes up to PAYING_UTF8_MAX bytes of UTF-8, so a buffer of a text at its limit
 * holds PAYING_UTF8_MAX * limit bytes and the NUL. */
#define PAYING_UTF8_MAX 4
#define PAYING_ID_MAX 64    /* characters of an order number, payment id, group id, actor */
#define PAYING_TEXT_MAX 256 /* characters of a cancel reason */
#define PAYING_ID_SIZE (PAYING_UTF8_MAX * PAYING_ID_MAX + 1)
#define PAYING_TEXT_SIZE (PAYING_UTF8_MAX * PAYING_TEXT_MAX + 1)
/* A rejection or warning text, NUL included: room for two ids at their limit and the
 * words around them, so it is never cut (and never cut inside a character). */
#define PAYING_WHY_SIZE (2 * PAYING_ID_SIZE + 256)
#define PAYING_MAX_EVENTS 2                /* events one decision can yield */
#define PAYING_VALUE_SIZE PAYING_TEXT_SIZE /* a field's text, NUL included */

typedef char paying_id_t[PAYING_ID_SIZE];

/* The kind of order sets its rules (numbered as the contracts number them). */
typedef enum {
  PAYING_KIND_NONE = 0,
  PAYING_KIND_NORMAL = 1,    /* paid in one or more payments */
  PAYING_KIND_GROUP_BUY = 2, /* 拼团: no cancel once a payment was taken */
  PAYING_KIND_FREE = 3,      /* 免单: amount 0, paid by a free pay */
} paying_kind_t;

typedef enum {
  PAYING_STATE_NONE = 0,
  PAYING_STATE_PAYING = 1, /* 支付中: waiting for payments, none or some taken */
  PAYING_STATE_PAID = 2,   /* 已支付: the amount is reached (perhaps passed) */
  PAYING_STATE_CANCELED = 3,
} paying_state_t;

/* The aggregate (AbstractReadWritePayingOrder's data). Amounts in minor units. Times in
 * ms since the epoch, 0 when not (yet) so. */
typedef struct {
  paying_id_t order_number;
  paying_kind_t kind;
  paying_id_t group_id; /* GroupBuy only; "" otherwise */
  char currency[4];     /* ISO 4217 */
  int64_t amount;       /* to pay */
  int64_t paid;         /* counted so far */
  int64_t payments;     /* payments counted */
  paying_state_t state;
  char cancel_reason[PAYING_TEXT_SIZE];
  paying_id_t canceled_by;
  int64_t opened_at, paid_at, canceled_at, updated_at;
  int64_t version; /* 1 when opened, +1 per change */
} paying_order_t;

/* ---- commands and decisions ----------------------------------------------------------- */

typedef enum {
  PAYING_OP_OPEN = 1,
  PAYING_OP_PAY = 2,
  PAYING_OP_CANCEL = 3,
} paying_op_t;

/* What the repository knows of a payment id of the order. */
typedef enum {
  PAYING_PAYMENT_NEW = 0,     /* never seen */
  PAYING_PAYMENT_COUNTED = 1, /* counted (paying.payments status 'counted') */
  PAYING_PAYMENT_REFUSED = 2, /* refused: it came for a canceled order (status 'refused') */
} paying_payment_known_t;

/* One command. Strings are borrowed for the call; unused ones may be NULL; texts are UTF-8.
 *   open    order_number, kind, group_id (GroupBuy), currency, amount
 *   pay     order_number, payment_id, amount, currency, free_pay, payment_known and, when
 *           known, known_amount (what the repository has of payment_id for the order)
 *   cancel  order_number, reason, actor */
typedef struct {
  paying_op_t op;
  int64_t at; /* > 0: the domain reads no clock */
  const char *order_number;
  paying_kind_t kind;
  const char *group_id;
  const char *currency;
  int64_t amount;
  const char *payment_id;
  bool free_pay;
  paying_payment_known_t payment_known;
  int64_t known_amount;
  const char *reason;
  const char *actor;
} paying_command_t;

typedef enum {
  PAYING_EVENT_PAY_FINISHED = 1, /* OrderPayFinished */
  PAYING_EVENT_OVER_PAID = 2,    /* OverPaid */
  PAYING_EVENT_CANCELED = 3,     /* PayingOrderCanceled */
} paying_event_t;

typedef enum {
  /* the order changed, or a final event is published again (a repeated callback of a paid
   * order: OrderPayFinished; a cancel of a canceled order: PayingOrderCanceled) */
  PAYING_OUTCOME_APPLIED = 1,
  /* nothing new, nothing published (a repeated callback of an unpaid or canceled order, or
   * of a refused payment; an open again); why says so */
  PAYING_OUTCOME_REPEATED = 2,
  PAYING_OUTCOME_IGNORED = 3,  /* the seed's warning: a new payment for a canceled order, refused */
  PAYING_OUTCOME_REJECTED = 4, /* refused: the return code and why */
} paying_outcome_t;

typedef struct {
  paying_outcome_t outcome;
  paying_order_t order; /* the state after the command; the old one when unchanged */
  bool record_payment;  /* the payment is new and counted: store it with the order */
  bool record_refusal;  /* the payment is new and refused (IGNORED): store it as refused */
  int64_t over_paid;    /* with OverPaid: this payment's excess, to refund; else 0 */
  size_t n_events;      /* events to publish, built from `order` */
  paying_event_t events[PAYING_MAX_EVENTS];
  char why[PAYING_WHY_SIZE]; /* rejection or warning text, whole UTF-8 characters; "" when
                                applied without remark */
} paying_decision_t;

/* Decides cmd against state (NULL: no such order). 0 with d filled (applied, repeated or
 * ignored), or the rejection code with d->outcome REJECTED and d->why:
 *   CTXD_EINVAL  unknown op, at <= 0, a required text missing or empty, a currency that is
 *                not three capital letters or not the order's, an amount < 0, a repeated
 *                callback whose amount is not the stored one, a pay of 0
 *                that is not a free pay or a free pay of more than 0, a free pay of an order
 *                that is not Free, an open whose amount does not fit its kind (Free: 0,
 *                others: > 0), a group id missing (GroupBuy) or given (others)
 *   CTXD_ETOOBIG a text longer than its limit (in characters)
 *   CTXD_ERANGE  the paid total would pass INT64_MAX
 *   CTXD_ENOENT  pay or cancel without an order
 *   CTXD_EEXIST  open of an existing order with other data
 *   CTXD_ESTATE  cancel of a paid order, or of a GroupBuy order with a payment taken */
int paying_order_decide(const paying_order_t *state, const paying_command_t *cmd, paying_decision_t *d);

/* ---- the read-only model -------------------------------------------------------------- */

/* ReadonlyPayingOrder: what the cashier and the result page are told. */
typedef struct {
  paying_state_t state;
  int64_t amount, paid;
  int64_t due;       /* still to pay: amount - paid while paying, else 0 */
  int64_t over_paid; /* paid - amount when more, else 0 */
  bool paid_in_full; /* state paid */
} paying_view_t;

paying_view_t paying_order_view(const paying_order_t *o);

/* ---- change tracking ------------------------------------------------------------------ */

/* The stored fields, one column each (paying_field_column), in column order. */
typedef enum {
  PAYING_FIELD_ORDER_NUMBER = 0,
  PAYING_FIELD_KIND,
  PAYING_FIELD_GROUP_ID,
  PAYING_FIELD_CURRENCY,
  PAYING_FIELD_AMOUNT,
  PAYING_FIELD_PAID,
  PAYING_FIELD_PAYMENTS,
  PAYING_FIELD_STATE,
  PAYING_FIELD_CANCEL_REASON,
  PAYING_FIELD_CANCELED_BY,
  PAYING_FIELD_OPENED_AT,
  PAYING_FIELD_PAID_AT,
  PAYING_FIELD_CANCELED_AT,
  PAYING_FIELD_UPDATED_AT,
  PAYING_FIELD_VERSION,
  PAYING_FIELD_COUNT
} paying_field_t;

#define PAYING_FIELDS_ALL ((1u << PAYING_FIELD_COUNT) - 1u)

/* The column of a field ("paid_minor"); NULL when out of range. Static strings. */
const char *paying_field_column(paying_field_t f);
/* Whether a change of the field gets a change-log row: every field but updated_at and
 * version, which change with every change and are on each log row already. */
bool paying_field_logged(paying_field_t f);
/* The field's value as the column's text: strings as they are, numbers in decimal, kind
 * and state by name ("group_buy", "paid"). Writes at most len bytes, NUL included. */
void paying_field_text(const paying_order_t *o, paying_field_t f, char *buf, size_t len);
/* Bit (1u << field) for each field whose text differs between a and b. */
uint32_t paying_order_diff(const paying_order_t *a, const paying_order_t *b);
/* Reads a column's text back into o (the inverse of paying_field_text). 0, or CTXD_EDECODE
 * for a text the field cannot hold (an unknown state, a number that is not one, a negative
 * number: every number of an order is 0 or more). */
int paying_field_parse(paying_order_t *o, paying_field_t f, const char *text);

/* ---- texts ---------------------------------------------------------------------------- */

/* Copies src (NULL: "") into dst of cap bytes (cap > 0), NUL-terminated, cut at the last
 * whole UTF-8 character that fits: never inside one. Returns the bytes copied. */
size_t paying_text_copy(char *dst, size_t cap, const char *src);
/* Characters (code points: bytes that do not continue a UTF-8 sequence) in s, counting at
 * most max + 1 of them: more than max means the text is past its limit. */
size_t paying_text_chars(const char *s, size_t max);

/* ---- names ---------------------------------------------------------------------------- */

/* "normal", "group_buy", "free"; NULL when unknown. Static strings. */
const char *paying_kind_name(paying_kind_t k);
/* "paying", "paid", "canceled"; NULL when unknown. */
const char *paying_state_name(paying_state_t s);
/* "open", "pay", "cancel"; NULL when unknown. */
const char *paying_op_name(paying_op_t op);
/* "OrderPayFinished", "OverPaid", "PayingOrderCanceled"; NULL when unknown. */
const char *paying_event_name(paying_event_t e);

#endif
