/* The paying order domain, the seed's way (seed 003, "Domain Test"): order fixtures of
 * every kind in every state are made with the domain's own functions, then every
 * operation (pays of amounts below, at and above what is due, free pays, repeated payment
 * callbacks, invalid pays, cancels, opens) is applied to each, and again to each result:
 * every step is checked against one table of expected outcomes (state, events, changed
 * columns, warning) and against invariants (money is counted once, an unchanged order keeps
 * its version, the read-only model agrees). Then the edges the table does not reach:
 * validation texts and limits, overflow, the column texts. */
#include <inttypes.h>
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

#define T0 1700000000000LL
#define AMOUNT 1000 /* Normal and GroupBuy fixtures */
#define MAX_PAYMENTS 8

/* ---- fixtures ------------------------------------------------------------------------- */

/* A step that makes a fixture: 'p' pays amount with a new payment id, 'f' is a free pay,
 * 'c' cancels. */
typedef struct {
  char op;
  int64_t amount;
} step_t;

typedef struct {
  const char *name;
  paying_kind_t kind;
  int64_t amount;
  step_t steps[3];
} fixture_t;

static const fixture_t fixtures[] = {
    {"normal unpaid", PAYING_KIND_NORMAL, AMOUNT, {{0}}},
    {"normal partial", PAYING_KIND_NORMAL, AMOUNT, {{'p', 400}}},
    {"normal partial twice", PAYING_KIND_NORMAL, AMOUNT, {{'p', 400}, {'p', 599}}},
    {"normal paid in two", PAYING_KIND_NORMAL, AMOUNT, {{'p', 400}, {'p', 600}}},
    {"normal paid at once", PAYING_KIND_NORMAL, AMOUNT, {{'p', AMOUNT}}},
    {"normal over-paid", PAYING_KIND_NORMAL, AMOUNT, {{'p', 1200}}},
    {"normal canceled", PAYING_KIND_NORMAL, AMOUNT, {{'c', 0}}},
    {"normal canceled partial", PAYING_KIND_NORMAL, AMOUNT, {{'p', 400}, {'c', 0}}},
    {"normal of 1 unpaid", PAYING_KIND_NORMAL, 1, {{0}}},
    {"normal of 1 paid", PAYING_KIND_NORMAL, 1, {{'p', 1}}},
    {"group-buy unpaid", PAYING_KIND_GROUP_BUY, AMOUNT, {{0}}},
    {"group-buy partial", PAYING_KIND_GROUP_BUY, AMOUNT, {{'p', 300}}},
    {"group-buy paid", PAYING_KIND_GROUP_BUY, AMOUNT, {{'p', AMOUNT}}},
    {"group-buy over-paid", PAYING_KIND_GROUP_BUY, AMOUNT, {{'p', 700}, {'p', 700}}},
    {"group-buy canceled", PAYING_KIND_GROUP_BUY, AMOUNT, {{'c', 0}}},
    {"free unpaid", PAYING_KIND_FREE, 0, {{0}}},
    {"free paid", PAYING_KIND_FREE, 0, {{'f', 0}}},
    {"free over-paid", PAYING_KIND_FREE, 0, {{'p', 5}}},
    {"free canceled", PAYING_KIND_FREE, 0, {{'c', 0}}},
};
#define N_FIXTURES (sizeof fixtures / sizeof fixtures[0])

/* A payment the repository would hold. */
typedef struct {
  char id[16];
  int64_t amount;
  bool free_pay;
  bool refused;
} stored_payment_t;

/* A scenario's order and what its repository would hold: the payments recorded (counted or
 * refused), and what OverPaid events told the payment system to refund in all. */
typedef struct {
  bool exists;
  paying_order_t order;
  int n_ids;
  stored_payment_t ids[MAX_PAYMENTS + 8];
  int next_id;
  int64_t refunded_over;
} world_t;

static paying_command_t pay_cmd(const char *id, int64_t amount) {
  return (paying_command_t){.op = PAYING_OP_PAY,
                            .at = T0 + 1000,
                            .order_number = "SO-1",
                            .currency = "CNY",
                            .amount = amount,
                            .payment_id = id};
}

static paying_command_t open_cmd(paying_kind_t kind, int64_t amount) {
  return (paying_command_t){.op = PAYING_OP_OPEN,
                            .at = T0,
                            .order_number = "SO-1",
                            .kind = kind,
                            .group_id = kind == PAYING_KIND_GROUP_BUY ? "GB-1" : NULL,
                            .currency = "CNY",
                            .amount = amount};
}

static paying_command_t cancel_cmd(void) {
  return (paying_command_t){.op = PAYING_OP_CANCEL,
                            .at = T0 + 2000,
                            .order_number = "SO-1",
                            .reason = "changed mind",
                            .actor = "u-1"};
}

static const stored_payment_t *known(const world_t *w, const char *id) {
  for (int i = 0; i < w->n_ids; i++)
    if (strcmp(w->ids[i].id, id) == 0) return &w->ids[i];
  return NULL;
}

/* The first stored payment, counted or refused as asked; NULL: none. */
static const stored_payment_t *first_stored(const world_t *w, bool refused) {
  for (int i = 0; i < w->n_ids; i++)
    if (w->ids[i].refused == refused) return &w->ids[i];
  return NULL;
}

/* Decides c on the world (as the plugin does: the repository says whether the payment id is
 * known, and with what amount) and applies an accepted decision. Returns the code. */
static int run(world_t *w, paying_command_t *c, paying_decision_t *d) {
  const stored_payment_t *p = c->op == PAYING_OP_PAY ? known(w, c->payment_id) : NULL;
  if (c->op == PAYING_OP_PAY) {
    c->payment_known = p == NULL    ? PAYING_PAYMENT_NEW
                       : p->refused ? PAYING_PAYMENT_REFUSED
                                    : PAYING_PAYMENT_COUNTED;
    c->known_amount = p != NULL ? p->amount : 0;
  }
  int rc = paying_order_decide(w->exists ? &w->order : NULL, c, d);
  if (rc == 0) {
    w->exists = true;
    w->order = d->order;
    if (d->record_payment || d->record_refusal) {
      stored_payment_t *s = &w->ids[w->n_ids++];
      snprintf(s->id, sizeof s->id, "%s", c->payment_id);
      s->amount = c->amount;
      s->free_pay = c->free_pay;
      s->refused = d->record_refusal;
    }
    w->refunded_over += d->over_paid;
  }
  return rc;
}

static void new_payment_id(world_t *w, char id[16]) { snprintf(id, 16, "P%d", ++w->next_id); }

static world_t make_fixture(const fixture_t *f) {
  world_t w = {0};
  paying_decision_t d;
  paying_command_t c = open_cmd(f->kind, f->amount);
  assert_int_equal(run(&w, &c, &d), 0);
  for (int i = 0; i < 3 && f->steps[i].op; i++) {
    char id[16];
    new_payment_id(&w, id);
    c = f->steps[i].op == 'c' ? cancel_cmd() : pay_cmd(id, f->steps[i].amount);
    c.free_pay = f->steps[i].op == 'f';
    if (run(&w, &c, &d) != 0) fail_msg("fixture %s, step %d: %s", f->name, i, d.why);
  }
  return w;
}

/* ---- operations ----------------------------------------------------------------------- */

typedef enum {
  OP_PAY_ONE,            /* a new payment of 1 */
  OP_PAY_BELOW,          /* due - 1 (due >= 2) */
  OP_PAY_DUE,            /* exactly what is due (due >= 1) */
  OP_PAY_ABOVE,          /* due + 1 */
  OP_PAY_BIG,            /* far more than the amount */
  OP_PAY_FREE,           /* a free pay of 0 */
  OP_PAY_REPEAT,         /* the first counted payment's callback again (there is one) */
  OP_PAY_REPEAT_REFUSED, /* the first refused payment's callback again (there is one) */
  OP_PAY_REPEAT_OTHER,   /* the first recorded payment's id with another amount */
  OP_PAY_ZERO,           /* 0 without free pay */
  OP_PAY_NEGATIVE,       /* -5 */
  OP_PAY_FREE_AMOUNT,    /* a free pay of 5 */
  OP_PAY_NO_ID,          /* an empty payment id */
  OP_PAY_USD,            /* another currency */
  OP_CANCEL,
  OP_OPEN_SAME,
  OP_OPEN_OTHER, /* the same number, another amount */
  OP_COUNT
} op_t;

static const char *const op_names[OP_COUNT] = {"pay 1",
                                               "pay below due",
                                               "pay due",
                                               "pay above due",
                                               "pay big",
                                               "free pay",
                                               "repeat callback",
                                               "repeat refused callback",
                                               "repeat callback, other amount",
                                               "pay 0",
                                               "pay -5",
                                               "free pay of 5",
                                               "pay without id",
                                               "pay in USD",
                                               "cancel",
                                               "open same",
                                               "open other"};

static int64_t due_of(const world_t *w) {
  return w->exists && w->order.state == PAYING_STATE_PAYING ? w->order.amount - w->order.paid : 0;
}

/* Makes the command of op for the world; false when op does not apply to it. */
static bool make_op(world_t *w, op_t op, paying_command_t *c, char id[16]) {
  int64_t due = due_of(w);
  new_payment_id(w, id);
  int64_t amount = 1;
  const stored_payment_t *again = NULL;
  switch (op) {
  case OP_PAY_ONE: break;
  case OP_PAY_BELOW:
    if (due < 2) return false;
    amount = due - 1;
    break;
  case OP_PAY_DUE:
    if (due < 1) return false;
    amount = due;
    break;
  case OP_PAY_ABOVE: amount = due + 1; break;
  case OP_PAY_BIG: amount = 1000000; break;
  case OP_PAY_FREE: amount = 0; break;
  case OP_PAY_REPEAT:
  case OP_PAY_REPEAT_REFUSED:
  case OP_PAY_REPEAT_OTHER:
    again = op == OP_PAY_REPEAT_OTHER ? (w->n_ids > 0 ? &w->ids[0] : NULL)
                                      : first_stored(w, op == OP_PAY_REPEAT_REFUSED);
    if (again == NULL) return false;
    snprintf(id, 16, "%s", again->id);
    amount = again->amount + (op == OP_PAY_REPEAT_OTHER); /* the callback says it again */
    break;
  case OP_PAY_ZERO: amount = 0; break;
  case OP_PAY_NEGATIVE: amount = -5; break;
  case OP_PAY_FREE_AMOUNT: amount = 5; break;
  case OP_PAY_NO_ID: id[0] = '\0'; break;
  case OP_PAY_USD: break;
  case OP_CANCEL: *c = cancel_cmd(); return true;
  case OP_OPEN_SAME:
  case OP_OPEN_OTHER:
    if (!w->exists) return false;
    *c = open_cmd(w->order.kind, w->order.amount + (op == OP_OPEN_OTHER));
    return true;
  default: return false;
  }
  *c = pay_cmd(id, amount);
  c->free_pay = op == OP_PAY_FREE || op == OP_PAY_FREE_AMOUNT || (again != NULL && again->free_pay);
  if (op == OP_PAY_USD) c->currency = "USD";
  return true;
}

/* ---- the table of expected outcomes --------------------------------------------------- */

/* How the world looks to a rule. */
typedef enum {
  S_NONE = 1 << 0,
  S_PAYING = 1 << 1, /* nothing or some paid */
  S_PAID = 1 << 2,
  S_CANCELED = 1 << 3,
  S_ANY = S_NONE | S_PAYING | S_PAID | S_CANCELED,
  S_EXISTS = S_PAYING | S_PAID | S_CANCELED,
} sclass_t;

/* Kinds a rule covers. */
enum {
  K_NORMAL = 1 << PAYING_KIND_NORMAL,
  K_GROUP = 1 << PAYING_KIND_GROUP_BUY,
  K_FREE = 1 << PAYING_KIND_FREE
};
#define K_ANY (K_NORMAL | K_GROUP | K_FREE)

/* What a counted payment does to paid against the amount. */
typedef enum {
  A_ANY = 0,
  A_BELOW = 1, /* paid + x < amount */
  A_AT = 2,    /* paid + x == amount */
  A_ABOVE = 3, /* paid + x > amount */
} aclass_t;

/* Op groups a rule covers. */
#define OPS_NEW_PAY                                                                                          \
  (1u << OP_PAY_ONE | 1u << OP_PAY_BELOW | 1u << OP_PAY_DUE | 1u << OP_PAY_ABOVE | 1u << OP_PAY_BIG)
#define OPS_INVALID_PAY                                                                                      \
  (1u << OP_PAY_ZERO | 1u << OP_PAY_NEGATIVE | 1u << OP_PAY_FREE_AMOUNT | 1u << OP_PAY_NO_ID)
#define OPS_REPEAT (1u << OP_PAY_REPEAT | 1u << OP_PAY_REPEAT_REFUSED | 1u << OP_PAY_REPEAT_OTHER)
#define OPS_PAY (OPS_NEW_PAY | OPS_INVALID_PAY | OPS_REPEAT | 1u << OP_PAY_FREE | 1u << OP_PAY_USD)
#define OPS_OPEN (1u << OP_OPEN_SAME | 1u << OP_OPEN_OTHER)

#define F(x) (1u << PAYING_FIELD_##x)
#define F_TOUCH (F(UPDATED_AT) | F(VERSION))
#define F_COUNT (F(PAID) | F(PAYMENTS) | F_TOUCH)
#define F_PAID (F_COUNT | F(STATE) | F(PAID_AT))
#define F_CANCEL (F(STATE) | F(CANCEL_REASON) | F(CANCELED_BY) | F(CANCELED_AT) | F_TOUCH)

enum { E_FIN = 1, E_OVER = 2, E_CANCELED = 4 };

typedef struct {
  uint32_t ops;   /* op bits */
  unsigned sc;    /* sclass_t bits */
  unsigned kinds; /* K_* bits */
  aclass_t a;     /* for new payments */
  int payments;   /* -1 any, 0 none taken, 1 some taken */
  /* expected */
  int code;
  paying_outcome_t outcome;
  paying_state_t state; /* 0: unchanged */
  unsigned events;      /* E_* */
  uint32_t fields;      /* changed columns */
  const char *why;      /* a fragment of d->why ("": it is empty); NULL: not checked */
} rule_t;

/* First match wins. */
static const rule_t rules[] = {
    /* the command alone is wrong: refused before the order is looked at */
    {OPS_INVALID_PAY, S_ANY, K_ANY, A_ANY, -1, CTXD_EINVAL, PAYING_OUTCOME_REJECTED, 0, 0, 0, NULL},
    {OPS_PAY | 1u << OP_CANCEL, S_NONE, K_ANY, A_ANY, -1, CTXD_ENOENT, PAYING_OUTCOME_REJECTED, 0, 0, 0,
     "no paying order SO-1"},
    /* the command does not fit the order */
    {1u << OP_PAY_USD, S_EXISTS, K_ANY, A_ANY, -1, CTXD_EINVAL, PAYING_OUTCOME_REJECTED, 0, 0, 0,
     "payment in USD for an order in CNY"},
    {1u << OP_PAY_FREE, S_EXISTS, K_NORMAL | K_GROUP, A_ANY, -1, CTXD_EINVAL, PAYING_OUTCOME_REJECTED, 0, 0,
     0, "a free pay of a"},
    /* a repeated callback, before the state is looked at: never counted nor refused again,
     * no refund signal; another amount than the stored one is refused; a paid order says
     * it is paid again */
    {1u << OP_PAY_REPEAT_OTHER, S_EXISTS, K_ANY, A_ANY, -1, CTXD_EINVAL, PAYING_OUTCOME_REJECTED, 0, 0, 0,
     ", not "},
    {1u << OP_PAY_REPEAT, S_PAYING | S_CANCELED, K_ANY, A_ANY, -1, 0, PAYING_OUTCOME_REPEATED, 0, 0, 0,
     "was counted already"},
    {1u << OP_PAY_REPEAT, S_PAID, K_ANY, A_ANY, -1, 0, PAYING_OUTCOME_APPLIED, 0, E_FIN, 0,
     "was counted already"},
    {1u << OP_PAY_REPEAT_REFUSED, S_CANCELED, K_ANY, A_ANY, -1, 0, PAYING_OUTCOME_REPEATED, 0, 0, 0,
     "was refused already: order SO-1 is canceled"},
    /* canceled: a new payment is ignored with a warning, and recorded as refused */
    {OPS_PAY, S_CANCELED, K_ANY, A_ANY, -1, 0, PAYING_OUTCOME_IGNORED, 0, 0, 0, "is canceled: payment"},
    /* a new payment while paying */
    {OPS_NEW_PAY, S_PAYING, K_ANY, A_BELOW, -1, 0, PAYING_OUTCOME_APPLIED, 0, 0, F_COUNT, ""},
    {OPS_NEW_PAY, S_PAYING, K_ANY, A_AT, -1, 0, PAYING_OUTCOME_APPLIED, PAYING_STATE_PAID, E_FIN, F_PAID, ""},
    {1u << OP_PAY_FREE, S_PAYING, K_FREE, A_AT, -1, 0, PAYING_OUTCOME_APPLIED, PAYING_STATE_PAID, E_FIN,
     F_PAID & ~F(PAID), ""}, /* 0 more paid: the column stays */
    {OPS_NEW_PAY, S_PAYING, K_ANY, A_ABOVE, -1, 0, PAYING_OUTCOME_APPLIED, PAYING_STATE_PAID, E_FIN | E_OVER,
     F_PAID, ""},
    /* a new payment of a paid order: counted, paid again, over-paid by what it adds (a free
     * pay adds nothing: no OverPaid, even for an over-paid order) */
    {1u << OP_PAY_FREE, S_PAID, K_FREE, A_ANY, -1, 0, PAYING_OUTCOME_APPLIED, 0, E_FIN, F(PAYMENTS) | F_TOUCH,
     ""},
    {OPS_NEW_PAY, S_PAID, K_ANY, A_ABOVE, -1, 0, PAYING_OUTCOME_APPLIED, 0, E_FIN | E_OVER, F_COUNT, ""},
    /* cancel */
    {1u << OP_CANCEL, S_CANCELED, K_ANY, A_ANY, -1, 0, PAYING_OUTCOME_APPLIED, 0, E_CANCELED, 0,
     "canceled already"},
    {1u << OP_CANCEL, S_PAID, K_ANY, A_ANY, -1, CTXD_ESTATE, PAYING_OUTCOME_REJECTED, 0, 0, 0,
     "a refund, not a cancel"},
    {1u << OP_CANCEL, S_PAYING, K_GROUP, A_ANY, 1, CTXD_ESTATE, PAYING_OUTCOME_REJECTED, 0, 0, 0,
     "cannot be canceled"},
    {1u << OP_CANCEL, S_PAYING, K_ANY, A_ANY, -1, 0, PAYING_OUTCOME_APPLIED, PAYING_STATE_CANCELED,
     E_CANCELED, F_CANCEL, ""},
    /* open again */
    {1u << OP_OPEN_SAME, S_EXISTS, K_ANY, A_ANY, -1, 0, PAYING_OUTCOME_REPEATED, 0, 0, 0, "open already"},
    /* another amount for a free order does not fit its kind: refused as invalid first */
    {1u << OP_OPEN_OTHER, S_EXISTS, K_FREE, A_ANY, -1, CTXD_EINVAL, PAYING_OUTCOME_REJECTED, 0, 0, 0,
     "a free order's amount is 0"},
    {1u << OP_OPEN_OTHER, S_EXISTS, K_ANY, A_ANY, -1, CTXD_EEXIST, PAYING_OUTCOME_REJECTED, 0, 0, 0,
     "opened with other data"},
};

static sclass_t classify(const world_t *w) {
  if (!w->exists) return S_NONE;
  switch (w->order.state) {
  case PAYING_STATE_PAYING: return S_PAYING;
  case PAYING_STATE_PAID: return S_PAID;
  default: return S_CANCELED;
  }
}

static aclass_t amount_class(const world_t *w, const paying_command_t *c) {
  if (!w->exists) return A_ANY;
  int64_t after = w->order.paid + c->amount;
  return after < w->order.amount ? A_BELOW : after == w->order.amount ? A_AT : A_ABOVE;
}

static const rule_t *rule_for(const world_t *w, op_t op, const paying_command_t *c) {
  sclass_t sc = classify(w);
  unsigned kind = w->exists ? 1u << w->order.kind : K_ANY;
  aclass_t a = amount_class(w, c);
  int some = w->exists && w->order.payments > 0;
  for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++) {
    const rule_t *r = &rules[i];
    if ((r->ops & (1u << op)) && (r->sc & sc) && (r->kinds & kind) && (r->a == A_ANY || r->a == a) &&
        (r->payments < 0 || r->payments == some))
      return r;
  }
  return NULL;
}

/* ---- the scenarios -------------------------------------------------------------------- */

static int scenarios;

/* Applies op to w, checks the outcome against the table and the invariants; false when op
 * does not apply to w. */
static bool step(world_t *w, op_t op, const char *trail) {
  paying_command_t c;
  char id[16];
  if (!make_op(w, op, &c, id)) return false;
  c.at = T0 + 1000 * (100 + w->next_id); /* every step later than the one before */
  const rule_t *r = rule_for(w, op, &c);
  if (r == NULL) fail_msg("%s / %s: no rule covers it", trail, op_names[op]);
  world_t before = *w;
  paying_decision_t d;
  int rc = run(w, &c, &d);
  scenarios++;
  if (rc != r->code || d.outcome != r->outcome)
    fail_msg("%s / %s: code %d outcome %d, want %d / %d (%s)", trail, op_names[op], rc, d.outcome, r->code,
             r->outcome, d.why);
  /* the state */
  paying_state_t want_state = r->state ? r->state : before.exists ? before.order.state : PAYING_STATE_NONE;
  if (w->exists && w->order.state != want_state)
    fail_msg("%s / %s: state %s, want %s", trail, op_names[op], paying_state_name(w->order.state),
             paying_state_name(want_state));
  /* the events */
  unsigned want = r->events;
  unsigned got = 0;
  for (size_t i = 0; i < d.n_events; i++)
    got |= d.events[i] == PAYING_EVENT_PAY_FINISHED ? E_FIN
           : d.events[i] == PAYING_EVENT_OVER_PAID  ? E_OVER
                                                    : E_CANCELED;
  if (got != want || d.n_events != (size_t)__builtin_popcount(want))
    fail_msg("%s / %s: events %x (%zu), want %x", trail, op_names[op], got, d.n_events, want);
  if (d.n_events == 2) assert_int_equal(d.events[0], PAYING_EVENT_PAY_FINISHED); /* then OverPaid */
  /* the changed columns */
  uint32_t fields = before.exists && rc == 0 ? paying_order_diff(&before.order, &w->order) : 0;
  if (before.exists && fields != r->fields)
    fail_msg("%s / %s: changed columns %#x, want %#x", trail, op_names[op], fields, r->fields);
  /* the warning or refusal */
  if (r->why != NULL && (r->why[0] ? strstr(d.why, r->why) == NULL : d.why[0] != '\0'))
    fail_msg("%s / %s: why '%s', want '%s'", trail, op_names[op], d.why, r->why ? r->why : "");
  /* invariants */
  if (rc != 0 || d.outcome != PAYING_OUTCOME_APPLIED || fields == 0) {
    if (before.exists) assert_memory_equal(&w->order, &before.order, sizeof w->order);
  } else {
    assert_int_equal(w->order.version, before.order.version + 1);
    assert_int_equal(w->order.updated_at, c.at);
  }
  assert_int_equal(d.record_payment, (fields & F(PAYMENTS)) != 0);
  /* a refused payment is recorded exactly when a new one is ignored, and changes nothing */
  assert_int_equal(d.record_refusal, rc == 0 && d.outcome == PAYING_OUTCOME_IGNORED);
  assert_false(d.record_refusal && d.record_payment);
  /* OverPaid carries this payment's own excess; the excesses told add up to the excess */
  if (got & E_OVER) {
    int64_t from = before.order.paid > before.order.amount ? before.order.paid : before.order.amount;
    assert_int_equal(d.over_paid, w->order.paid - from);
    assert_true(d.over_paid > 0 && d.over_paid <= c.amount);
  } else {
    assert_int_equal(d.over_paid, 0);
  }
  if (w->exists)
    assert_int_equal(w->refunded_over, w->order.paid > w->order.amount ? w->order.paid - w->order.amount : 0);
  if (d.record_payment) {
    assert_int_equal(w->order.paid, before.order.paid + c.amount); /* counted once */
    assert_int_equal(w->order.payments, before.order.payments + 1);
  }
  if (w->exists) {
    paying_view_t v = paying_order_view(&w->order);
    assert_int_equal(v.due, w->order.state == PAYING_STATE_PAYING ? w->order.amount - w->order.paid : 0);
    assert_true(v.due >= 0 && v.over_paid >= 0);
    assert_int_equal(v.paid_in_full, w->order.state == PAYING_STATE_PAID);
    assert_int_equal(v.over_paid, w->order.paid > w->order.amount ? w->order.paid - w->order.amount : 0);
    /* paying: less than the amount was paid (a free order: nothing of nothing) */
    assert_true(w->order.state != PAYING_STATE_PAYING || w->order.paid < w->order.amount ||
                (w->order.amount == 0 && w->order.payments == 0));
    assert_true(w->order.state != PAYING_STATE_PAID || w->order.paid_at > 0);
  }
  return true;
}

/* Every fixture (and no order at all), every op, then every op again on each result. */
static void every_fixture_every_operation_twice(void **state) {
  (void)state;
  scenarios = 0;
  for (size_t f = 0; f <= N_FIXTURES; f++) {
    world_t base = f < N_FIXTURES ? make_fixture(&fixtures[f]) : (world_t){0};
    const char *name = f < N_FIXTURES ? fixtures[f].name : "no order";
    for (int op1 = 0; op1 < OP_COUNT; op1++) {
      world_t w = base;
      char trail[128];
      snprintf(trail, sizeof trail, "%s", name);
      if (!step(&w, (op_t)op1, trail)) continue;
      snprintf(trail, sizeof trail, "%s / %s", name, op_names[op1]);
      for (int op2 = 0; op2 < OP_COUNT; op2++) {
        world_t w2 = w;
        step(&w2, (op_t)op2, trail);
      }
    }
  }
  print_message("%d scenarios from %zu fixtures\n", scenarios, N_FIXTURES + 1);
  assert_true(scenarios > 2000);
}

/* The seed's three callback sequences, spelled out: partial, then the rest; the callbacks
 * repeated at each point; over-payment after paid. */
static void callbacks_in_sequence(void **state) {
  (void)state;
  world_t w = make_fixture(&fixtures[0]);
  paying_decision_t d;
  paying_command_t c = pay_cmd("A", 300);
  assert_int_equal(run(&w, &c, &d), 0);
  assert_int_equal(d.n_events, 0);
  assert_int_equal(paying_order_view(&w.order).due, 700);
  c = pay_cmd("A", 300); /* the gateway calls back again */
  assert_int_equal(run(&w, &c, &d), 0);
  assert_int_equal(d.outcome, PAYING_OUTCOME_REPEATED);
  assert_int_equal(w.order.paid, 300);
  c = pay_cmd("B", 700);
  assert_int_equal(run(&w, &c, &d), 0);
  assert_int_equal(d.n_events, 1);
  assert_int_equal(d.events[0], PAYING_EVENT_PAY_FINISHED);
  assert_int_equal(w.order.paid_at, T0 + 1000);
  c = pay_cmd("B", 700);
  c.at = T0 + 5000;
  assert_int_equal(run(&w, &c, &d), 0);
  assert_int_equal(d.n_events, 1); /* paid again: the same news, nothing stored */
  assert_int_equal(w.order.version, 3);
  assert_int_equal(w.order.paid_at, T0 + 1000);
  c = pay_cmd("C", 50);
  assert_int_equal(run(&w, &c, &d), 0);
  assert_int_equal(d.n_events, 2);
  assert_int_equal(d.events[1], PAYING_EVENT_OVER_PAID);
  assert_int_equal(paying_order_view(&w.order).over_paid, 50);
  assert_int_equal(w.order.payments, 3);
}

static void validation_texts_and_limits(void **state) {
  (void)state;
  paying_decision_t d;
  char long_id[PAYING_ID_MAX + 2];
  memset(long_id, 'x', sizeof long_id - 1);
  long_id[sizeof long_id - 1] = '\0';
  paying_command_t c = open_cmd(PAYING_KIND_NORMAL, 100);
  c.order_number = long_id;
  assert_int_equal(paying_order_decide(NULL, &c, &d), CTXD_ETOOBIG);
  assert_string_equal(d.why, "order number is longer than 64 characters");
  long_id[PAYING_ID_MAX] = '\0'; /* exactly the limit */
  assert_int_equal(paying_order_decide(NULL, &c, &d), 0);
  c = open_cmd(PAYING_KIND_NORMAL, 100);
  c.currency = "cny";
  assert_int_equal(paying_order_decide(NULL, &c, &d), CTXD_EINVAL);
  assert_string_equal(d.why, "currency 'cny' is not an ISO 4217 code");
  c = open_cmd(PAYING_KIND_GROUP_BUY, 100);
  c.group_id = NULL;
  assert_int_equal(paying_order_decide(NULL, &c, &d), CTXD_EINVAL);
  assert_string_equal(d.why, "a group-buy order needs its group id");
  c = open_cmd(PAYING_KIND_NORMAL, 100);
  c.group_id = "GB-1";
  assert_int_equal(paying_order_decide(NULL, &c, &d), CTXD_EINVAL);
  assert_string_equal(d.why, "only a group-buy order has a group id");
  c = open_cmd(PAYING_KIND_NORMAL, 0);
  assert_int_equal(paying_order_decide(NULL, &c, &d), CTXD_EINVAL);
  assert_string_equal(d.why, "a normal order's amount must be positive, got 0");
  c = open_cmd(PAYING_KIND_FREE, 5);
  assert_int_equal(paying_order_decide(NULL, &c, &d), CTXD_EINVAL);
  c = open_cmd((paying_kind_t)9, 5);
  assert_int_equal(paying_order_decide(NULL, &c, &d), CTXD_EINVAL);
  assert_string_equal(d.why, "order kind 9 is unknown");
  c = open_cmd(PAYING_KIND_NORMAL, 100);
  c.at = 0;
  assert_int_equal(paying_order_decide(NULL, &c, &d), CTXD_EINVAL);
  c.at = T0;
  c.op = (paying_op_t)7;
  assert_int_equal(paying_order_decide(NULL, &c, &d), CTXD_EINVAL);
  assert_int_equal(paying_order_decide(NULL, NULL, &d), CTXD_EINVAL);
  /* a cancel reason at its limit, and past it */
  world_t w = make_fixture(&fixtures[0]);
  char reason[PAYING_TEXT_MAX + 2];
  memset(reason, 'r', sizeof reason - 1);
  reason[sizeof reason - 1] = '\0';
  c = cancel_cmd();
  c.reason = reason;
  assert_int_equal(paying_order_decide(&w.order, &c, &d), CTXD_ETOOBIG);
  reason[PAYING_TEXT_MAX] = '\0';
  assert_int_equal(paying_order_decide(&w.order, &c, &d), 0);
  assert_int_equal(strlen(d.order.cancel_reason), PAYING_TEXT_MAX);
  /* the paid total cannot overflow */
  w.order.paid = INT64_MAX - 10;
  c = pay_cmd("X", 11);
  assert_int_equal(paying_order_decide(&w.order, &c, &d), CTXD_ERANGE);
  c = pay_cmd("X", 10);
  assert_int_equal(paying_order_decide(&w.order, &c, &d), 0);
}

/* Seed 003's canceled order with repeated callbacks: a payment counted before the cancel
 * was refunded through PayingOrderCanceled; its callback again is neither refused nor
 * signalled again. A new payment is refused once: its callback again is recognised. */
static void canceled_order_repeated_callbacks(void **state) {
  (void)state;
  world_t w = make_fixture(&fixtures[0]);
  paying_decision_t d;
  paying_command_t c = pay_cmd("P1", 400);
  assert_int_equal(run(&w, &c, &d), 0);
  c = cancel_cmd();
  assert_int_equal(run(&w, &c, &d), 0);
  assert_int_equal(d.events[0], PAYING_EVENT_CANCELED); /* PaidAmountMinor 400: refund it */
  c = pay_cmd("P1", 400);                               /* P1's callback again */
  assert_int_equal(run(&w, &c, &d), 0);
  assert_int_equal(d.outcome, PAYING_OUTCOME_REPEATED);
  assert_int_equal(d.n_events, 0);
  assert_false(d.record_refusal);
  assert_string_equal(d.why, "payment P1 was counted already");
  c = pay_cmd("P2", 600); /* a new payment: refused, recorded as refused */
  assert_int_equal(run(&w, &c, &d), 0);
  assert_int_equal(d.outcome, PAYING_OUTCOME_IGNORED);
  assert_true(d.record_refusal);
  assert_int_equal(w.n_ids, 2);
  c = pay_cmd("P2", 600); /* its callback again: refused already, not again */
  assert_int_equal(run(&w, &c, &d), 0);
  assert_int_equal(d.outcome, PAYING_OUTCOME_REPEATED);
  assert_false(d.record_refusal);
  assert_string_equal(d.why, "payment P2 was refused already: order SO-1 is canceled");
  c = pay_cmd("P2", 700); /* the same id with another amount */
  assert_int_equal(run(&w, &c, &d), CTXD_EINVAL);
  assert_string_equal(d.why, "payment P2 was refused with 600, not 700");
  c = pay_cmd("P1", 401);
  assert_int_equal(run(&w, &c, &d), CTXD_EINVAL);
  assert_string_equal(d.why, "payment P1 was counted with 400, not 401");
  assert_int_equal(w.order.paid, 400);
  assert_int_equal(w.order.version, 3);
}

/* OverPaid says each payment's own excess, once: P1 1200 of 1000 is 200 over; P1 again
 * says nothing; P2 50 is 50 over: 250 refunded in all, as paid - amount. */
static void over_paid_once_per_payment(void **state) {
  (void)state;
  world_t w = make_fixture(&fixtures[0]);
  paying_decision_t d;
  paying_command_t c = pay_cmd("P1", 1200);
  assert_int_equal(run(&w, &c, &d), 0);
  assert_int_equal(d.n_events, 2);
  assert_int_equal(d.events[1], PAYING_EVENT_OVER_PAID);
  assert_int_equal(d.over_paid, 200);
  c = pay_cmd("P1", 1200);
  assert_int_equal(run(&w, &c, &d), 0);
  assert_int_equal(d.n_events, 1); /* OrderPayFinished again, no OverPaid */
  assert_int_equal(d.events[0], PAYING_EVENT_PAY_FINISHED);
  assert_int_equal(d.over_paid, 0);
  c = pay_cmd("P2", 50);
  assert_int_equal(run(&w, &c, &d), 0);
  assert_int_equal(d.events[1], PAYING_EVENT_OVER_PAID);
  assert_int_equal(d.over_paid, 50);
  assert_int_equal(w.refunded_over, 250);
  assert_int_equal(paying_order_view(&w.order).over_paid, 250);
}

/* Whether s is whole UTF-8 (no sequence cut or stray). */
static bool utf8_whole(const char *s) {
  for (const unsigned char *p = (const unsigned char *)s; *p;) {
    int n = *p < 0x80 ? 1 : (*p & 0xE0) == 0xC0 ? 2 : (*p & 0xF0) == 0xE0 ? 3 : (*p & 0xF8) == 0xF0 ? 4 : 0;
    if (n == 0) return false;
    for (int i = 1; i < n; i++)
      if ((p[i] & 0xC0) != 0x80) return false;
    p += n;
  }
  return true;
}

/* Limits are characters, as the contracts count them; texts said back stay whole. */
static void limits_in_characters(void **state) {
  (void)state;
  paying_decision_t d;
  char id[PAYING_ID_SIZE + 8] = "";
  for (int i = 0; i < PAYING_ID_MAX; i++) strcat(id, "\xe2\x82\xac"); /* 64 x EURO SIGN: 192 bytes */
  paying_command_t c = open_cmd(PAYING_KIND_NORMAL, 100);
  c.order_number = id;
  assert_int_equal(paying_order_decide(NULL, &c, &d), 0);
  assert_string_equal(d.order.order_number, id);
  world_t w = {.exists = true, .order = d.order};
  c = pay_cmd(id, 40); /* payment id and order number at their limit, said back whole */
  c.order_number = id;
  w.order.state = PAYING_STATE_CANCELED;
  assert_int_equal(paying_order_decide(&w.order, &c, &d), 0);
  assert_int_equal(d.outcome, PAYING_OUTCOME_IGNORED);
  assert_non_null(strstr(d.why, id));
  assert_non_null(strstr(d.why, "of 40 not taken"));
  strcat(id, "x"); /* 65 characters */
  c = open_cmd(PAYING_KIND_NORMAL, 100);
  c.order_number = id;
  assert_int_equal(paying_order_decide(NULL, &c, &d), CTXD_ETOOBIG);
  /* 256 Chinese characters of reason (768 bytes) fit; the reason is kept whole */
  char reason[PAYING_TEXT_SIZE] = "";
  for (int i = 0; i < PAYING_TEXT_MAX; i++) strcat(reason, "\xe4\xb8\xad");
  w = make_fixture(&fixtures[0]);
  c = cancel_cmd();
  c.reason = reason;
  assert_int_equal(paying_order_decide(&w.order, &c, &d), 0);
  assert_string_equal(d.order.cancel_reason, reason);
  /* a currency of three characters the contract lets through: refused, said back whole */
  c = open_cmd(PAYING_KIND_NORMAL, 100);
  c.currency = "\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac";
  assert_int_equal(paying_order_decide(NULL, &c, &d), CTXD_EINVAL);
  assert_string_equal(d.why, "currency '\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac' is not an ISO 4217 code");
  assert_true(utf8_whole(d.why));
  /* stray continuation bytes are not characters: bounded by bytes too */
  char stray[PAYING_UTF8_MAX * PAYING_ID_MAX + 2];
  memset(stray, 0x80, sizeof stray - 1);
  stray[sizeof stray - 1] = '\0';
  c = open_cmd(PAYING_KIND_NORMAL, 100);
  c.order_number = stray;
  assert_int_equal(paying_order_decide(NULL, &c, &d), CTXD_ETOOBIG);
  /* copies cut at a character, never inside one */
  char small[5];
  assert_int_equal(paying_text_copy(small, sizeof small, "\xe4\xb8\xad\xe6\x96\x87"), 3);
  assert_string_equal(small, "\xe4\xb8\xad");
  assert_int_equal(paying_text_copy(small, sizeof small, "ab\xe4\xb8\xad"), 2);
  assert_int_equal(paying_text_copy(small, sizeof small, NULL), 0);
  assert_int_equal(paying_text_chars("\xe4\xb8\xad\xe6\x96\x87", 10), 2);
}

/* A stored paid total below 0 (which paying_field_parse now refuses) cannot make the
 * overflow check itself overflow. */
static void overflow_check_never_overflows(void **state) {
  (void)state;
  world_t w = make_fixture(&fixtures[0]);
  paying_decision_t d;
  w.order.paid = -1;
  paying_command_t c = pay_cmd("X", INT64_MAX);
  assert_int_equal(paying_order_decide(&w.order, &c, &d), 0);
  assert_int_equal(d.order.paid, INT64_MAX - 1);
  w.order.paid = 1;
  assert_int_equal(paying_order_decide(&w.order, &c, &d), CTXD_ERANGE);
  assert_int_equal(d.order.paid, 1);
}

/* Each column's text reads back into the same order; names are total. */
static void column_texts_round_trip(void **state) {
  (void)state;
  world_t w = make_fixture(&fixtures[7]); /* canceled after a payment: every field set */
  w.order.paid_at = T0 + 3;
  snprintf(w.order.group_id, sizeof w.order.group_id, "G");
  paying_order_t back = {0};
  char text[PAYING_VALUE_SIZE];
  for (int f = 0; f < PAYING_FIELD_COUNT; f++) {
    assert_non_null(paying_field_column((paying_field_t)f));
    paying_field_text(&w.order, (paying_field_t)f, text, sizeof text);
    assert_int_equal(paying_field_parse(&back, (paying_field_t)f, text), 0);
  }
  assert_int_equal(paying_order_diff(&w.order, &back), 0);
  assert_memory_equal(&w.order, &back, sizeof back);
  paying_field_text(&w.order, PAYING_FIELD_STATE, text, sizeof text);
  assert_string_equal(text, "canceled");
  paying_field_text(&w.order, PAYING_FIELD_PAID, text, sizeof text);
  assert_string_equal(text, "400");
  assert_int_equal(paying_field_parse(&back, PAYING_FIELD_STATE, "refunded"), CTXD_EDECODE);
  assert_int_equal(paying_field_parse(&back, PAYING_FIELD_PAID, "12x"), CTXD_EDECODE);
  assert_int_equal(paying_field_parse(&back, PAYING_FIELD_PAID, "-1"), CTXD_EDECODE); /* never negative */
  assert_int_equal(paying_field_parse(&back, PAYING_FIELD_AMOUNT, "-1000"), CTXD_EDECODE);
  assert_int_equal(paying_field_parse(&back, PAYING_FIELD_PAID, "99999999999999999999"), CTXD_EDECODE);
  assert_int_equal(paying_field_parse(&back, PAYING_FIELD_CURRENCY, "EURO"), CTXD_EDECODE);
  assert_int_equal(paying_field_parse(&back, PAYING_FIELD_COUNT, "1"), CTXD_EDECODE);
  assert_null(paying_field_column(PAYING_FIELD_COUNT));
  assert_false(paying_field_logged(PAYING_FIELD_VERSION));
  assert_false(paying_field_logged(PAYING_FIELD_UPDATED_AT));
  assert_true(paying_field_logged(PAYING_FIELD_PAID));
  assert_string_equal(paying_kind_name(PAYING_KIND_GROUP_BUY), "group_buy");
  assert_null(paying_kind_name((paying_kind_t)4));
  assert_null(paying_state_name(PAYING_STATE_NONE));
  assert_string_equal(paying_op_name(PAYING_OP_CANCEL), "cancel");
  assert_string_equal(paying_event_name(PAYING_EVENT_OVER_PAID), "OverPaid");
  assert_null(paying_event_name((paying_event_t)0));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(every_fixture_every_operation_twice),
      cmocka_unit_test(callbacks_in_sequence),
      cmocka_unit_test(validation_texts_and_limits),
      cmocka_unit_test(canceled_order_repeated_callbacks),
      cmocka_unit_test(over_paid_once_per_payment),
      cmocka_unit_test(limits_in_characters),
      cmocka_unit_test(overflow_check_never_overflows),
      cmocka_unit_test(column_texts_round_trip),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
