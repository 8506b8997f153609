/* The paying order's pure domain (domain.h). */
#include "domain.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ctxd/errno.h>

/* ---- names ---------------------------------------------------------------------------- */

static const char *const kind_names[] = {
    [PAYING_KIND_NORMAL] = "normal", [PAYING_KIND_GROUP_BUY] = "group_buy", [PAYING_KIND_FREE] = "free"};
static const char *const state_names[] = {
    [PAYING_STATE_PAYING] = "paying", [PAYING_STATE_PAID] = "paid", [PAYING_STATE_CANCELED] = "canceled"};
static const char *const op_names[] = {
    [PAYING_OP_OPEN] = "open", [PAYING_OP_PAY] = "pay", [PAYING_OP_CANCEL] = "cancel"};
static const char *const event_names[] = {[PAYING_EVENT_PAY_FINISHED] = "OrderPayFinished",
                                          [PAYING_EVENT_OVER_PAID] = "OverPaid",
                                          [PAYING_EVENT_CANCELED] = "PayingOrderCanceled"};

#define NAME_OF(table, i) ((unsigned)(i) < sizeof(table) / sizeof((table)[0]) ? (table)[(unsigned)(i)] : NULL)

const char *paying_kind_name(paying_kind_t k) { return NAME_OF(kind_names, k); }
const char *paying_state_name(paying_state_t s) { return NAME_OF(state_names, s); }
const char *paying_op_name(paying_op_t op) { return NAME_OF(op_names, op); }
const char *paying_event_name(paying_event_t e) { return NAME_OF(event_names, e); }

/* ---- texts ---------------------------------------------------------------------------- */

static bool utf8_continuation(unsigned char c) { return (c & 0xC0) == 0x80; }

/* The byte length of a UTF-8 sequence led by c (1 for a stray byte). */
static size_t utf8_sequence(unsigned char c) { return c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1; }

/* Cuts s (of n bytes) back to whole characters: drops a last sequence that is not complete. */
static void utf8_trim(char *s, size_t n) {
  size_t lead = n;
  while (lead > 0 && utf8_continuation((unsigned char)s[lead - 1])) lead--;
  if (lead > 0 && lead - 1 + utf8_sequence((unsigned char)s[lead - 1]) > n)
    s[lead - 1] = '\0';
  else if (lead == 0)
    s[0] = '\0';
}

size_t paying_text_copy(char *dst, size_t cap, const char *src) {
  if (cap == 0) return 0;
  size_t n = strnlen(src != NULL ? src : "", cap);
  if (n >= cap) n = cap - 1;
  memcpy(dst, src != NULL ? src : "", n);
  dst[n] = '\0';
  utf8_trim(dst, n);
  return strlen(dst);
}

size_t paying_text_chars(const char *s, size_t max) {
  size_t chars = 0;
  for (; *s != '\0' && chars <= max; s++)
    if (!utf8_continuation((unsigned char)*s)) chars++;
  return chars;
}

/* ---- decisions ------------------------------------------------------------------------ */

/* Says why (a warning, a remark) with the outcome: whole characters, even when cut. */
static void remark(paying_decision_t *d, paying_outcome_t outcome, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void remark(paying_decision_t *d, paying_outcome_t outcome, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(d->why, sizeof d->why, fmt, ap);
  va_end(ap);
  if (n >= (int)sizeof d->why) utf8_trim(d->why, sizeof d->why - 1);
  d->outcome = outcome;
}

/* Refuses with code and why: nothing to store or publish. Evaluates to code. */
#define refuse(d, code, ...)                                                                                 \
  (remark((d), PAYING_OUTCOME_REJECTED, __VA_ARGS__), (d)->n_events = 0, (d)->record_payment = false, (code))

static void emit(paying_decision_t *d, paying_event_t e) {
  if (d->n_events < PAYING_MAX_EVENTS) d->events[d->n_events++] = e;
}

/* Checks a required (or optional, when may_be_empty) text against its limit. */
static int check_text(paying_decision_t *d, const char *what, const char *s, size_t max, bool may_be_empty) {
  if (s == NULL || s[0] == '\0') return may_be_empty ? 0 : refuse(d, CTXD_EINVAL, "%s is empty", what);
  if (paying_text_chars(s, max) > max || strnlen(s, PAYING_UTF8_MAX * max + 1) > PAYING_UTF8_MAX * max)
    return refuse(d, CTXD_ETOOBIG, "%s is longer than %zu characters", what, max);
  return 0;
}

static bool currency_valid(const char *c) {
  if (c == NULL || strlen(c) != 3) return false;
  for (int i = 0; i < 3; i++)
    if (c[i] < 'A' || c[i] > 'Z') return false;
  return true;
}

static int check_currency(paying_decision_t *d, const char *c) {
  if (currency_valid(c)) return 0;
  /* said back whole when short (a contract allows 3 characters: 12 bytes at most) */
  bool say = c != NULL && strnlen(c, 13) <= 12;
  return refuse(d, CTXD_EINVAL, "currency '%s' is not an ISO 4217 code", say ? c : "(a longer text)");
}

/* The order after a change: stamped with the time and the next version. */
static void touch(paying_order_t *o, int64_t at) {
  o->updated_at = at;
  o->version++;
}

static int decide_open(const paying_order_t *state, const paying_command_t *c, paying_decision_t *d) {
  int rc = check_text(d, "order number", c->order_number, PAYING_ID_MAX, false);
  if (rc == 0) rc = check_currency(d, c->currency);
  if (rc == 0) rc = check_text(d, "group id", c->group_id, PAYING_ID_MAX, true);
  if (rc != 0) return rc;
  bool has_group = c->group_id != NULL && c->group_id[0] != '\0';
  if (paying_kind_name(c->kind) == NULL)
    return refuse(d, CTXD_EINVAL, "order kind %d is unknown", (int)c->kind);
  if (c->kind == PAYING_KIND_FREE && c->amount != 0)
    return refuse(d, CTXD_EINVAL, "a free order's amount is 0, not %" PRId64, c->amount);
  if (c->kind != PAYING_KIND_FREE && c->amount <= 0)
    return refuse(d, CTXD_EINVAL, "a %s order's amount must be positive, got %" PRId64,
                  paying_kind_name(c->kind), c->amount);
  if ((c->kind == PAYING_KIND_GROUP_BUY) != has_group)
    return refuse(d, CTXD_EINVAL,
                  has_group ? "only a group-buy order has a group id"
                            : "a group-buy order needs its group id");
  if (state != NULL) {
    if (state->kind == c->kind && state->amount == c->amount && strcmp(state->currency, c->currency) == 0 &&
        strcmp(state->group_id, has_group ? c->group_id : "") == 0) {
      remark(d, PAYING_OUTCOME_REPEATED, "order %s is open already", state->order_number);
      return 0;
    }
    return refuse(d, CTXD_EEXIST, "order %s was opened with other data", state->order_number);
  }
  paying_order_t *o = &d->order;
  memset(o, 0, sizeof *o);
  paying_text_copy(o->order_number, sizeof o->order_number, c->order_number);
  o->kind = c->kind;
  paying_text_copy(o->group_id, sizeof o->group_id, has_group ? c->group_id : "");
  memcpy(o->currency, c->currency, 4);
  o->amount = c->amount;
  o->state = PAYING_STATE_PAYING;
  o->opened_at = o->updated_at = c->at;
  o->version = 1;
  d->outcome = PAYING_OUTCOME_APPLIED;
  return 0;
}

/* The pay command on its own, before the order is looked at. */
static int check_payment(const paying_command_t *c, paying_decision_t *d) {
  int rc = check_text(d, "order number", c->order_number, PAYING_ID_MAX, false);
  if (rc == 0) rc = check_text(d, "payment id", c->payment_id, PAYING_ID_MAX, false);
  if (rc == 0) rc = check_currency(d, c->currency);
  if (rc != 0) return rc;
  if (c->amount < 0) return refuse(d, CTXD_EINVAL, "payment amount is negative: %" PRId64, c->amount);
  if (c->free_pay && c->amount != 0)
    return refuse(d, CTXD_EINVAL, "a free pay is of 0, not %" PRId64, c->amount);
  if (!c->free_pay && c->amount == 0) return refuse(d, CTXD_EINVAL, "a payment of 0 that is not a free pay");
  return 0;
}

static int decide_pay(const paying_order_t *state, const paying_command_t *c, paying_decision_t *d) {
  int rc = check_payment(c, d);
  if (rc != 0) return rc;
  if (state == NULL) return refuse(d, CTXD_ENOENT, "no paying order %s", c->order_number);
  if (strcmp(state->currency, c->currency) != 0)
    return refuse(d, CTXD_EINVAL, "payment in %s for an order in %s", c->currency, state->currency);
  if (c->free_pay && state->kind != PAYING_KIND_FREE)
    return refuse(d, CTXD_EINVAL, "a free pay of a %s order", paying_kind_name(state->kind));
  paying_order_t *o = &d->order;
  if (c->payment_known != PAYING_PAYMENT_NEW) {
    /* a repeated callback: never counted nor refused again, whatever the state */
    bool refused = c->payment_known == PAYING_PAYMENT_REFUSED;
    if (c->known_amount != c->amount)
      return refuse(d, CTXD_EINVAL, "payment %s was %s with %" PRId64 ", not %" PRId64, c->payment_id,
                    refused ? "refused" : "counted", c->known_amount, c->amount);
    if (refused) {
      remark(d, PAYING_OUTCOME_REPEATED, "payment %s was refused already: order %s is canceled",
             c->payment_id, state->order_number);
      return 0;
    }
    remark(d, PAYING_OUTCOME_REPEATED, "payment %s was counted already", c->payment_id);
    if (o->state == PAYING_STATE_PAID) {
      emit(d, PAYING_EVENT_PAY_FINISHED); /* idempotent: the paid order says so again */
      d->outcome = PAYING_OUTCOME_APPLIED;
    }
    return 0;
  }
  if (state->state == PAYING_STATE_CANCELED) {
    remark(d, PAYING_OUTCOME_IGNORED, "order %s is canceled: payment %s of %" PRId64 " not taken",
           state->order_number, c->payment_id, c->amount);
    d->record_refusal = true;
    return 0;
  }
  int64_t paid_before = o->paid;
  if (__builtin_add_overflow(o->paid, c->amount, &o->paid)) {
    o->paid = paid_before;
    return refuse(d, CTXD_ERANGE, "paid total of order %s would overflow", state->order_number);
  }
  o->payments++;
  d->record_payment = true;
  if (o->state == PAYING_STATE_PAID) {
    emit(d, PAYING_EVENT_PAY_FINISHED); /* idempotent: the paid order says so again */
  } else if (o->paid >= o->amount) {
    o->state = PAYING_STATE_PAID;
    o->paid_at = c->at;
    emit(d, PAYING_EVENT_PAY_FINISHED);
  }
  /* partial: recorded above, nothing to say */
  int64_t over_from = paid_before > o->amount ? paid_before : o->amount;
  if (o->paid > over_from) {
    d->over_paid = o->paid - over_from; /* this payment's part past the amount */
    emit(d, PAYING_EVENT_OVER_PAID);
  }
  touch(o, c->at);
  d->outcome = PAYING_OUTCOME_APPLIED;
  return 0;
}

static int decide_cancel(const paying_order_t *state, const paying_command_t *c, paying_decision_t *d) {
  int rc = check_text(d, "order number", c->order_number, PAYING_ID_MAX, false);
  if (rc == 0) rc = check_text(d, "cancel reason", c->reason, PAYING_TEXT_MAX, true);
  if (rc == 0) rc = check_text(d, "canceled by", c->actor, PAYING_ID_MAX, true);
  if (rc != 0) return rc;
  if (state == NULL) return refuse(d, CTXD_ENOENT, "no paying order %s", c->order_number);
  paying_order_t *o = &d->order;
  switch (state->state) {
  case PAYING_STATE_CANCELED:
    remark(d, PAYING_OUTCOME_APPLIED, "order %s is canceled already", o->order_number);
    emit(d, PAYING_EVENT_CANCELED);
    return 0;
  case PAYING_STATE_PAID:
    return refuse(d, CTXD_ESTATE, "order %s is paid: a refund, not a cancel", o->order_number);
  default: break;
  }
  if (o->kind == PAYING_KIND_GROUP_BUY && o->payments > 0)
    return refuse(d, CTXD_ESTATE, "group-buy order %s has a payment taken: it cannot be canceled",
                  o->order_number);
  o->state = PAYING_STATE_CANCELED;
  o->canceled_at = c->at;
  paying_text_copy(o->cancel_reason, sizeof o->cancel_reason, c->reason);
  paying_text_copy(o->canceled_by, sizeof o->canceled_by, c->actor);
  touch(o, c->at);
  d->outcome = PAYING_OUTCOME_APPLIED;
  emit(d, PAYING_EVENT_CANCELED);
  return 0;
}

int paying_order_decide(const paying_order_t *state, const paying_command_t *cmd, paying_decision_t *d) {
  memset(d, 0, sizeof *d);
  if (state != NULL) d->order = *state;
  d->outcome = PAYING_OUTCOME_REPEATED;
  if (cmd == NULL) return refuse(d, CTXD_EINVAL, "no command");
  if (cmd->at <= 0) return refuse(d, CTXD_EINVAL, "command time must be positive");
  switch (cmd->op) {
  case PAYING_OP_OPEN: return decide_open(state, cmd, d);
  case PAYING_OP_PAY: return decide_pay(state, cmd, d);
  case PAYING_OP_CANCEL: return decide_cancel(state, cmd, d);
  default: return refuse(d, CTXD_EINVAL, "unknown command %d", (int)cmd->op);
  }
}

/* ---- the read-only model -------------------------------------------------------------- */

paying_view_t paying_order_view(const paying_order_t *o) {
  paying_view_t v = {.state = o->state, .amount = o->amount, .paid = o->paid};
  v.due = o->state == PAYING_STATE_PAYING && o->amount > o->paid ? o->amount - o->paid : 0;
  v.over_paid = o->paid > o->amount ? o->paid - o->amount : 0;
  v.paid_in_full = o->state == PAYING_STATE_PAID;
  return v;
}

/* ---- change tracking ------------------------------------------------------------------ */

static const char *const field_columns[PAYING_FIELD_COUNT] = {
    [PAYING_FIELD_ORDER_NUMBER] = "order_number",
    [PAYING_FIELD_KIND] = "kind",
    [PAYING_FIELD_GROUP_ID] = "group_id",
    [PAYING_FIELD_CURRENCY] = "currency",
    [PAYING_FIELD_AMOUNT] = "amount_minor",
    [PAYING_FIELD_PAID] = "paid_minor",
    [PAYING_FIELD_PAYMENTS] = "payments",
    [PAYING_FIELD_STATE] = "state",
    [PAYING_FIELD_CANCEL_REASON] = "cancel_reason",
    [PAYING_FIELD_CANCELED_BY] = "canceled_by",
    [PAYING_FIELD_OPENED_AT] = "opened_at",
    [PAYING_FIELD_PAID_AT] = "paid_at",
    [PAYING_FIELD_CANCELED_AT] = "canceled_at",
    [PAYING_FIELD_UPDATED_AT] = "updated_at",
    [PAYING_FIELD_VERSION] = "version",
};

const char *paying_field_column(paying_field_t f) { return NAME_OF(field_columns, f); }

bool paying_field_logged(paying_field_t f) {
  return (unsigned)f < PAYING_FIELD_COUNT && f != PAYING_FIELD_UPDATED_AT && f != PAYING_FIELD_VERSION;
}

/* Where a field lives in the order: a string (with its capacity) or an int64. */
typedef struct {
  char *text;
  size_t cap;
  int64_t *number;
} field_ref_t;

static field_ref_t field_ref(paying_order_t *o, paying_field_t f) {
#define TEXT(m) ((field_ref_t){.text = o->m, .cap = sizeof o->m})
#define NUMBER(m) ((field_ref_t){.number = &o->m})
  switch (f) {
  case PAYING_FIELD_ORDER_NUMBER: return TEXT(order_number);
  case PAYING_FIELD_GROUP_ID: return TEXT(group_id);
  case PAYING_FIELD_CURRENCY: return TEXT(currency);
  case PAYING_FIELD_CANCEL_REASON: return TEXT(cancel_reason);
  case PAYING_FIELD_CANCELED_BY: return TEXT(canceled_by);
  case PAYING_FIELD_AMOUNT: return NUMBER(amount);
  case PAYING_FIELD_PAID: return NUMBER(paid);
  case PAYING_FIELD_PAYMENTS: return NUMBER(payments);
  case PAYING_FIELD_OPENED_AT: return NUMBER(opened_at);
  case PAYING_FIELD_PAID_AT: return NUMBER(paid_at);
  case PAYING_FIELD_CANCELED_AT: return NUMBER(canceled_at);
  case PAYING_FIELD_UPDATED_AT: return NUMBER(updated_at);
  case PAYING_FIELD_VERSION: return NUMBER(version);
  default: return (field_ref_t){0}; /* kind and state: by name */
  }
#undef TEXT
#undef NUMBER
}

void paying_field_text(const paying_order_t *o, paying_field_t f, char *buf, size_t len) {
  if (len == 0) return;
  field_ref_t r = field_ref((paying_order_t *)o, f);
  const char *name = f == PAYING_FIELD_KIND    ? paying_kind_name(o->kind)
                     : f == PAYING_FIELD_STATE ? paying_state_name(o->state)
                                               : r.text;
  if (r.number != NULL)
    snprintf(buf, len, "%" PRId64, *r.number);
  else
    snprintf(buf, len, "%s", name != NULL ? name : "");
}

uint32_t paying_order_diff(const paying_order_t *a, const paying_order_t *b) {
  uint32_t bits = 0;
  char x[PAYING_VALUE_SIZE], y[PAYING_VALUE_SIZE];
  for (int f = 0; f < PAYING_FIELD_COUNT; f++) {
    paying_field_text(a, (paying_field_t)f, x, sizeof x);
    paying_field_text(b, (paying_field_t)f, y, sizeof y);
    if (strcmp(x, y) != 0) bits |= 1u << f;
  }
  return bits;
}

/* The enum value whose name is text in names[0..n); 0 when none. */
static int name_index(const char *const *names, size_t n, const char *text) {
  for (size_t i = 1; i < n; i++)
    if (names[i] != NULL && strcmp(names[i], text) == 0) return (int)i;
  return 0;
}

int paying_field_parse(paying_order_t *o, paying_field_t f, const char *text) {
  if (text == NULL || (unsigned)f >= PAYING_FIELD_COUNT) return CTXD_EDECODE;
  if (f == PAYING_FIELD_KIND || f == PAYING_FIELD_STATE) {
    int v = f == PAYING_FIELD_KIND ? name_index(kind_names, sizeof kind_names / sizeof *kind_names, text)
                                   : name_index(state_names, sizeof state_names / sizeof *state_names, text);
    if (v == 0) return CTXD_EDECODE;
    if (f == PAYING_FIELD_KIND)
      o->kind = (paying_kind_t)v;
    else
      o->state = (paying_state_t)v;
    return 0;
  }
  field_ref_t r = field_ref(o, f);
  if (r.text != NULL) {
    if (strlen(text) >= r.cap) return CTXD_EDECODE;
    memcpy(r.text, text, strlen(text) + 1);
    return 0;
  }
  char *end;
  errno = 0;
  long long v = strtoll(text, &end, 10);
  if (text[0] == '\0' || *end != '\0' || errno == ERANGE || v < 0) return CTXD_EDECODE;
  *r.number = v;
  return 0;
}
