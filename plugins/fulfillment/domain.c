/* The fulfillment order aggregate: the move table, decide(), names and JSON. */
#include <stdio.h>
#include <string.h>

#include <ctxd/errno.h>

#include "domain_strategy.h"
#include "text.h"

#define countof(a) (sizeof(a) / sizeof((a)[0]))
#define S(status) (1u << (status))

static const char *const status_names[FULFILLMENT_STATUS_COUNT] = {
    [FULFILLMENT_STATUS_PROCESSING] = "processing",
    [FULFILLMENT_STATUS_SUCCEEDED] = "succeeded",
    [FULFILLMENT_STATUS_FAILED] = "failed",
    [FULFILLMENT_STATUS_ABANDONED] = "abandoned",
};

static const char *const ignored_names[] = {
    [FULFILLMENT_IGNORED_DUPLICATE] = "duplicate", [FULFILLMENT_IGNORED_LATE] = "late",
    [FULFILLMENT_IGNORED_CONFLICT] = "conflict",   [FULFILLMENT_IGNORED_WRONG_STRATEGY] = "wrong_strategy",
    [FULFILLMENT_IGNORED_UNKNOWN] = "unknown",
};

/* Each feedback belongs to one strategy and carries a reference (named here) or, when
 * `reference` is NULL, a reason. */
static const struct {
  const char *name;
  fulfillment_kind_t kind;
  const char *reference;
} feedbacks[FULFILLMENT_FEEDBACK_COUNT] = {
    [FULFILLMENT_FEEDBACK_REFUND_COMPLETED] = {"refund_completed", FULFILLMENT_KIND_PRODUCT_REFUND,
                                               "payment reference"},
    [FULFILLMENT_FEEDBACK_REFUND_FAILED] = {"refund_failed", FULFILLMENT_KIND_PRODUCT_REFUND, NULL},
    [FULFILLMENT_FEEDBACK_RESHIP_CREATED] = {"reship_created", FULFILLMENT_KIND_RESHIP, "reship order id"},
    [FULFILLMENT_FEEDBACK_RESHIP_SHIPPED] = {"reship_shipped", FULFILLMENT_KIND_RESHIP, "reship order id"},
    [FULFILLMENT_FEEDBACK_RESHIP_FAILED] = {"reship_failed", FULFILLMENT_KIND_RESHIP, NULL},
    [FULFILLMENT_FEEDBACK_BENEFIT_ISSUED] = {"benefit_issued", FULFILLMENT_KIND_NON_PRODUCT, "issue id"},
    [FULFILLMENT_FEEDBACK_BENEFIT_FAILED] = {"benefit_failed", FULFILLMENT_KIND_NON_PRODUCT, NULL},
};

/* What a message carries beyond the common members; all derived from the order. */
enum {
  M_CUSTOMER = 1 << 0,   /* "customerId" */
  M_ITEMS = 1 << 1,      /* the plan's items */
  M_AMOUNT = 1 << 2,     /* "amount": the plan's total */
  M_REFERENCE = 1 << 3,  /* "reference": the strategy's downstream reference */
  M_FAILURE = 1 << 4,    /* "reason": the pending communication's reason */
  M_RESOLUTION = 1 << 5, /* "reason": its resolution; "resolvedManually" */
};

static const struct {
  const char *name;
  unsigned members;
} message_types[FULFILLMENT_MESSAGE_COUNT] = {
    [FULFILLMENT_MESSAGE_PROCESSING] = {"FulfillmentProcessing", 0},
    [FULFILLMENT_MESSAGE_SUCCEEDED] = {"FulfillmentSucceeded", M_REFERENCE | M_RESOLUTION},
    [FULFILLMENT_MESSAGE_FAILED] = {"FulfillmentFailed", M_FAILURE},
    [FULFILLMENT_MESSAGE_REFUND_REQUESTED] = {"RefundRequested", M_CUSTOMER | M_ITEMS | M_AMOUNT},
    [FULFILLMENT_MESSAGE_RESHIP_ORDER_REQUESTED] = {"ReshipOrderRequested", M_CUSTOMER | M_ITEMS},
    [FULFILLMENT_MESSAGE_ISSUE_BENEFIT] = {"IssueBenefit", M_CUSTOMER | M_ITEMS | M_AMOUNT},
    [FULFILLMENT_MESSAGE_ABANDONED] = {"FulfillmentAbandoned", M_RESOLUTION},
};

/* The event announcing each status. */
static const fulfillment_message_type_t status_events[FULFILLMENT_STATUS_COUNT] = {
    [FULFILLMENT_STATUS_PROCESSING] = FULFILLMENT_MESSAGE_PROCESSING,
    [FULFILLMENT_STATUS_SUCCEEDED] = FULFILLMENT_MESSAGE_SUCCEEDED,
    [FULFILLMENT_STATUS_FAILED] = FULFILLMENT_MESSAGE_FAILED,
    [FULFILLMENT_STATUS_ABANDONED] = FULFILLMENT_MESSAGE_ABANDONED,
};

static const char *name_of(const char *const *names, size_t n, int value) {
  return value >= 0 && (size_t)value < n ? names[value] : NULL;
}

const char *fulfillment_status_name(fulfillment_status_t status) {
  return name_of(status_names, countof(status_names), (int)status);
}

const char *fulfillment_ignored_name(fulfillment_ignored_t ignored) {
  return name_of(ignored_names, countof(ignored_names), (int)ignored);
}

const char *fulfillment_feedback_name(fulfillment_feedback_t feedback) {
  return (unsigned)feedback < countof(feedbacks) ? feedbacks[feedback].name : NULL;
}

const char *fulfillment_message_type_name(fulfillment_message_type_t type) {
  return (unsigned)type < countof(message_types) ? message_types[type].name : NULL;
}

static const char *status_text(fulfillment_status_t status) {
  const char *name = fulfillment_status_name(status);
  return name ? name : "unknown";
}

/* ---- messages ------------------------------------------------------------------------- */

/* Appends the message of `type` describing the order as it now is. */
static void emit(fulfillment_decision_t *d, fulfillment_message_type_t type, int64_t at) {
  const fulfillment_order_t *o = &d->order;
  unsigned members = message_types[type].members;
  fulfillment_message_t *m = &d->messages[d->n_messages++];
  memset(m, 0, sizeof *m);
  m->type = type;
  memcpy(m->fulfillment_id, o->id, sizeof m->fulfillment_id);
  memcpy(m->compensation_id, o->compensation_id, sizeof m->compensation_id);
  memcpy(m->order_id, o->order_id, sizeof m->order_id);
  m->kind = o->plan.ops->kind;
  m->at = at;
  if (members & M_CUSTOMER) memcpy(m->customer_id, o->customer_id, sizeof m->customer_id);
  if (members & M_ITEMS) m->plan = o->plan;
  if (members & M_AMOUNT) o->plan.ops->total(&o->plan, &m->amount);
  if (members & M_REFERENCE) {
    const char *ref = o->plan.ops->reference(o);
    memcpy(m->reference, ref, strlen(ref) + 1);
  }
  if (members & M_FAILURE) memcpy(m->reason, o->communication.reason, sizeof m->reason);
  if (members & M_RESOLUTION) {
    memcpy(m->reason, o->communication.resolution, sizeof m->reason);
    m->resolved_manually = o->communication.resolved_by[0] != '\0';
  }
}

/* ---- moves ---------------------------------------------------------------------------- */

static void open_communication(fulfillment_decision_t *d, const fulfillment_command_t *c,
                               const fulfillment__inputs_t *in) {
  fulfillment_communication_t *k = &d->order.communication;
  memset(k, 0, sizeof *k);
  memcpy(k->reason, in->reason, sizeof k->reason);
  k->opened_at = c->at;
  d->changed |= FULFILLMENT_FIELD_PENDING_COMMUNICATION;
}

static void close_communication(fulfillment_decision_t *d, const fulfillment_command_t *c,
                                const fulfillment__inputs_t *in) {
  fulfillment_communication_t *k = &d->order.communication;
  memcpy(k->resolved_by, in->actor, sizeof k->resolved_by);
  memcpy(k->resolution, in->reason, sizeof k->resolution);
  k->resolved_at = c->at;
  d->changed |= FULFILLMENT_FIELD_PENDING_COMMUNICATION;
}

/* `repeat` classifies a move that finds the fulfillment already where it leads: a second
 * failure or resolution is a duplicate; a success there came another way (duplicated
 * successes carry a reference the strategy recognises first), so it is late. */
static const struct {
  uint32_t from;
  fulfillment_status_t to;
  fulfillment_ignored_t repeat;
  void (*effect)(fulfillment_decision_t *d, const fulfillment_command_t *c,
                 const fulfillment__inputs_t *in); /* NULL: none */
} moves[] = {
    [FULFILLMENT__MOVE_RECORD] = {S(FULFILLMENT_STATUS_PROCESSING), FULFILLMENT_STATUS_PROCESSING,
                                  FULFILLMENT_IGNORED_DUPLICATE, NULL},
    [FULFILLMENT__MOVE_SUCCEED] = {S(FULFILLMENT_STATUS_PROCESSING), FULFILLMENT_STATUS_SUCCEEDED,
                                   FULFILLMENT_IGNORED_LATE, NULL},
    [FULFILLMENT__MOVE_FAIL] = {S(FULFILLMENT_STATUS_PROCESSING), FULFILLMENT_STATUS_FAILED,
                                FULFILLMENT_IGNORED_DUPLICATE, open_communication},
    [FULFILLMENT__MOVE_RESOLVE] = {S(FULFILLMENT_STATUS_FAILED), FULFILLMENT_STATUS_SUCCEEDED,
                                   FULFILLMENT_IGNORED_DUPLICATE, close_communication},
    [FULFILLMENT__MOVE_ABANDON] = {S(FULFILLMENT_STATUS_FAILED), FULFILLMENT_STATUS_ABANDONED,
                                   FULFILLMENT_IGNORED_DUPLICATE, close_communication},
};

/* Runs a move for `what` (a feedback or an action name). Outside its source statuses: when
 * the fulfillment is already where the move leads, the move's `repeat`; otherwise feedback is
 * late (ignored) and a person's action is rejected. */
static int run_move(fulfillment__move_t move, const char *what, bool feedback,
                    const fulfillment_order_t *state, const fulfillment_command_t *c,
                    const fulfillment__inputs_t *in, fulfillment_decision_t *d) {
  if (move == FULFILLMENT__MOVE_IGNORE) return 0;
  fulfillment_status_t now = state->status;
  uint32_t bit = (unsigned)now < FULFILLMENT_STATUS_COUNT ? S(now) : 0;
  if (!(bit & moves[move].from)) {
    if (now == moves[move].to || feedback) {
      fulfillment__ignore(d, now == moves[move].to ? moves[move].repeat : FULFILLMENT_IGNORED_LATE,
                          "%s ignored: the fulfillment %s already", what, status_text(now));
      return 0;
    }
    return fulfillment__why(&d->why, CTXD_ESTATE, "cannot %s a fulfillment that is %s", what,
                            status_text(now));
  }
  if (moves[move].effect) moves[move].effect(d, c, in);
  if (now != moves[move].to) {
    d->order.status = moves[move].to;
    d->changed |= FULFILLMENT_FIELD_STATUS;
    emit(d, status_events[moves[move].to], c->at);
  }
  return 0;
}

/* ---- actions -------------------------------------------------------------------------- */

static int create(const fulfillment_order_t *state, const fulfillment_command_t *c,
                  fulfillment_decision_t *d) {
  const fulfillment_approved_t *a = c->approved;
  fulfillment_order_t *o = &d->order;
  int rc;
  if (!a) return fulfillment__why(&d->why, CTXD_EINVAL, "approved compensation is missing");
  if (!a->plan.ops) return fulfillment__why(&d->why, CTXD_EINVAL, "plan is missing");
  if (state) { /* the same approval delivered again is a duplicate; another is an error */
    if (strcmp(state->compensation_id, a->compensation_id) != 0)
      return fulfillment__why(&d->why, CTXD_EEXIST, "fulfillment %s exists already", state->id);
    fulfillment__ignore(d, FULFILLMENT_IGNORED_DUPLICATE, "fulfillment %s exists already for compensation %s",
                        state->id, state->compensation_id);
    return 0;
  }
  if ((rc = fulfillment__copy_text(o->id, sizeof o->id, c->id, "id", true, &d->why)) ||
      (rc = fulfillment__copy_text(o->compensation_id, sizeof o->compensation_id, a->compensation_id,
                                   "compensation id", true, &d->why)))
    return rc;
  /* the order and the customer as the approval names them (they fit: same types); one
   * missing is a processing error like an unfit plan, below */
  fulfillment_why_t unfit = a->unfit;
  memcpy(o->order_id, a->order_id, sizeof o->order_id);
  memcpy(o->customer_id, a->customer_id, sizeof o->customer_id);
  if (!unfit.text[0] && !o->order_id[0]) fulfillment__why(&unfit, CTXD_EINVAL, "order id is empty");
  if (!unfit.text[0] && !o->customer_id[0]) fulfillment__why(&unfit, CTXD_EINVAL, "customer id is empty");
  o->plan = a->plan;
  o->created_at = c->at;
  d->changed = FULFILLMENT_FIELD_ALL; /* a new row: every column is written */
  /* a plan that cannot be carried out is a processing error (處理異常): recorded for staff
   * to follow up, announced as a failure, never left to an error queue */
  if (unfit.text[0] || fulfillment_plan_check(&a->plan, &unfit)) {
    fulfillment__inputs_t in = {.reference = ""};
    snprintf(in.reason, sizeof in.reason, "the plan cannot be carried out: %.200s", unfit.text);
    open_communication(d, c, &in);
    o->status = FULFILLMENT_STATUS_FAILED;
    emit(d, FULFILLMENT_MESSAGE_FAILED, c->at);
    return 0;
  }
  o->status = a->plan.ops->started;
  if (a->plan.ops->request) emit(d, a->plan.ops->request, c->at);
  if (a->plan.ops->announce_start) emit(d, status_events[o->status], c->at);
  return 0;
}

static int take_feedback(const fulfillment_order_t *state, const fulfillment_command_t *c,
                         fulfillment_decision_t *d) {
  fulfillment__inputs_t in;
  if (!state) return fulfillment__why(&d->why, CTXD_ENOENT, "no fulfillment for this feedback");
  const char *name = fulfillment_feedback_name(c->feedback);
  if (!name) {
    fulfillment__ignore(d, FULFILLMENT_IGNORED_UNKNOWN, "unknown feedback %d", (int)c->feedback);
    return 0;
  }
  const fulfillment_strategy_ops_t *ops = state->plan.ops;
  if (!ops || !ops->feedback || ops->kind != feedbacks[c->feedback].kind) {
    fulfillment__ignore(d, FULFILLMENT_IGNORED_WRONG_STRATEGY, "%s does not apply to a %s fulfillment", name,
                        ops ? ops->label : "planless");
    return 0;
  }
  const char *ref = feedbacks[c->feedback].reference;
  in.actor[0] = '\0';
  in.reference[0] = '\0';
  /* a reason is free text from another system: cut to what the order keeps, never refused */
  plugin_text_excerpt(c->reason, in.reason, sizeof in.reason);
  if (!ref) {
    if (!in.reason[0]) snprintf(in.reason, sizeof in.reason, "%s without a reason", name);
    return run_move(ops->feedback(d, c, &in), name, true, state, c, &in, d);
  }
  /* the downstream system answered, with a reference this order cannot keep (empty, longer
   * than it holds): what happened cannot be recorded, so it is a processing error, a failure
   * with a pending communication for staff to follow up, as a refused answer is */
  fulfillment_why_t unusable;
  if (fulfillment__copy_text(in.reference, sizeof in.reference, c->reference, ref, true, &unusable)) {
    snprintf(in.reason, sizeof in.reason, "%s: %.200s", name, unusable.text);
    return run_move(FULFILLMENT__MOVE_FAIL, name, true, state, c, &in, d);
  }
  return run_move(ops->feedback(d, c, &in), name, true, state, c, &in, d);
}

/* A case ended about a failed fulfillment: finished resolves it (succeeded), closed or
 * rejected abandons it. Abandoning is news from another context, so outside failed it is
 * ignored, not refused. */
static int end_case(const fulfillment_order_t *state, const fulfillment_command_t *c,
                    fulfillment_decision_t *d, fulfillment__move_t move, const char *what) {
  fulfillment__inputs_t in;
  int rc;
  if (!state) return fulfillment__why(&d->why, CTXD_ENOENT, "no fulfillment to %s", what);
  in.reference[0] = '\0';
  if ((rc = fulfillment__copy_text(in.actor, sizeof in.actor, c->actor, "actor", true, &d->why))) return rc;
  plugin_text_excerpt(c->reason, in.reason, sizeof in.reason); /* a note: cut, never refused */
  return run_move(move, what, move == FULFILLMENT__MOVE_ABANDON, state, c, &in, d);
}

static int resolve_manually(const fulfillment_order_t *state, const fulfillment_command_t *c,
                            fulfillment_decision_t *d) {
  return end_case(state, c, d, FULFILLMENT__MOVE_RESOLVE, "resolve_manually");
}

static int abandon(const fulfillment_order_t *state, const fulfillment_command_t *c,
                   fulfillment_decision_t *d) {
  return end_case(state, c, d, FULFILLMENT__MOVE_ABANDON, "abandon");
}

static int (*const actions[])(const fulfillment_order_t *state, const fulfillment_command_t *c,
                              fulfillment_decision_t *d) = {
    [FULFILLMENT_ACTION_CREATE] = create,
    [FULFILLMENT_ACTION_FEEDBACK] = take_feedback,
    [FULFILLMENT_ACTION_RESOLVE_MANUALLY] = resolve_manually,
    [FULFILLMENT_ACTION_ABANDON] = abandon,
};

int fulfillment_order_decide(const fulfillment_order_t *state, const fulfillment_command_t *cmd,
                             fulfillment_decision_t *d) {
  if (!cmd || !d) return CTXD_EINVAL;
  memset(d, 0, sizeof *d);
  if (state) d->order = *state;
  if ((unsigned)cmd->action >= countof(actions) || !actions[cmd->action])
    return fulfillment__why(&d->why, CTXD_EINVAL, "unknown action %d", (int)cmd->action);
  if (cmd->at <= 0) return fulfillment__why(&d->why, CTXD_EINVAL, "at must be positive");
  int rc = actions[cmd->action](state, cmd, d);
  if (rc || d->ignored) { /* nothing happened: the old state, no messages */
    fulfillment_why_t why = d->why;
    fulfillment_ignored_t ignored = rc ? FULFILLMENT_IGNORED_NONE : d->ignored;
    memset(d, 0, sizeof *d);
    if (state) d->order = *state;
    d->why = why;
    d->ignored = ignored;
    return rc;
  }
  if (d->changed) {
    d->order.version++;
    d->order.updated_at = cmd->at;
    d->changed |= FULFILLMENT_FIELD_VERSION | FULFILLMENT_FIELD_UPDATED_AT;
  }
  return 0;
}

/* ---- JSON ----------------------------------------------------------------------------- */

/* Value objects are null while empty. Each returns a new reference (json_null() too), or
 * NULL when out of memory; fulfillment_order_encode's json_pack "o" takes it over, also when
 * the pack fails. */
static json_t *refund_json(const fulfillment_refund_feedback_t *r) {
  return r->payment_reference[0] ? json_pack("{s:s, s:I}", "payment_reference", r->payment_reference,
                                             "completed_at", (json_int_t)r->completed_at)
                                 : json_null();
}

static json_t *reship_json(const fulfillment_reship_feedback_t *r) {
  return r->order_id[0] ? json_pack("{s:s, s:I, s:I}", "order_id", r->order_id, "created_at",
                                    (json_int_t)r->created_at, "shipped_at", (json_int_t)r->shipped_at)
                        : json_null();
}

static json_t *benefit_json(const fulfillment_benefit_feedback_t *b) {
  return b->issue_id[0]
             ? json_pack("{s:s, s:I}", "issue_id", b->issue_id, "issued_at", (json_int_t)b->issued_at)
             : json_null();
}

static json_t *communication_json(const fulfillment_communication_t *k) {
  return k->reason[0] ? json_pack("{s:s, s:I, s:s, s:s, s:I}", "reason", k->reason, "opened_at",
                                  (json_int_t)k->opened_at, "resolved_by", k->resolved_by, "resolution",
                                  k->resolution, "resolved_at", (json_int_t)k->resolved_at)
                      : json_null();
}

json_t *fulfillment_order_encode(const fulfillment_order_t *o) {
  const char *status = o ? fulfillment_status_name(o->status) : NULL;
  if (!status || !o->plan.ops) return NULL;
  return json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:I, s:s, s:o, s:o, s:o, s:I, s:I, s:o}", "id", o->id,
                   "compensation_id", o->compensation_id, "order_id", o->order_id, "customer_id",
                   o->customer_id, "strategy_kind", o->plan.ops->name, "plan",
                   fulfillment_plan_encode(&o->plan), "created_at", (json_int_t)o->created_at, "status",
                   status, "refund_feedback", refund_json(&o->refund), "reship_feedback",
                   reship_json(&o->reship), "pending_communication", communication_json(&o->communication),
                   "updated_at", (json_int_t)o->updated_at, "version", (json_int_t)o->version,
                   "benefit_feedback", benefit_json(&o->benefit));
}

/* Reads a value object unless it is null; errors are prefixed with its key. */
static int decode_refund(const json_t *j, fulfillment_refund_feedback_t *r, fulfillment_why_t *why) {
  const char *ref;
  json_int_t at;
  json_error_t je;
  if (json_is_null(j)) return 0;
  if (json_unpack_ex((json_t *)j, &je, 0, "{s:s, s:I}", "payment_reference", &ref, "completed_at", &at))
    return fulfillment__why(why, CTXD_EDECODE, "refund_feedback: %s", je.text);
  r->completed_at = at;
  return fulfillment__copy_text(r->payment_reference, sizeof r->payment_reference, ref,
                                "refund_feedback.payment_reference", true, why);
}

static int decode_reship(const json_t *j, fulfillment_reship_feedback_t *r, fulfillment_why_t *why) {
  const char *id;
  json_int_t created_at, shipped_at;
  json_error_t je;
  if (json_is_null(j)) return 0;
  if (json_unpack_ex((json_t *)j, &je, 0, "{s:s, s:I, s:I}", "order_id", &id, "created_at", &created_at,
                     "shipped_at", &shipped_at))
    return fulfillment__why(why, CTXD_EDECODE, "reship_feedback: %s", je.text);
  r->created_at = created_at;
  r->shipped_at = shipped_at;
  return fulfillment__copy_text(r->order_id, sizeof r->order_id, id, "reship_feedback.order_id", true, why);
}

/* Absent in states stored before non-product fulfillments called the issuing system. */
static int decode_benefit(const json_t *j, fulfillment_benefit_feedback_t *b, fulfillment_why_t *why) {
  const char *id;
  json_int_t at;
  json_error_t je;
  if (!j || json_is_null(j)) return 0;
  if (json_unpack_ex((json_t *)j, &je, 0, "{s:s, s:I}", "issue_id", &id, "issued_at", &at))
    return fulfillment__why(why, CTXD_EDECODE, "benefit_feedback: %s", je.text);
  b->issued_at = at;
  return fulfillment__copy_text(b->issue_id, sizeof b->issue_id, id, "benefit_feedback.issue_id", true, why);
}

static int decode_communication(const json_t *j, fulfillment_communication_t *k, fulfillment_why_t *why) {
  const char *reason, *resolved_by, *resolution;
  json_int_t opened_at, resolved_at;
  json_error_t je;
  int rc;
  if (json_is_null(j)) return 0;
  if (json_unpack_ex((json_t *)j, &je, 0, "{s:s, s:I, s:s, s:s, s:I}", "reason", &reason, "opened_at",
                     &opened_at, "resolved_by", &resolved_by, "resolution", &resolution, "resolved_at",
                     &resolved_at))
    return fulfillment__why(why, CTXD_EDECODE, "pending_communication: %s", je.text);
  k->opened_at = opened_at;
  k->resolved_at = resolved_at;
  if ((rc = fulfillment__copy_text(k->reason, sizeof k->reason, reason, "pending_communication.reason", true,
                                   why)) ||
      (rc = fulfillment__copy_text(k->resolved_by, sizeof k->resolved_by, resolved_by,
                                   "pending_communication.resolved_by", false, why)))
    return rc;
  return fulfillment__copy_text(k->resolution, sizeof k->resolution, resolution,
                                "pending_communication.resolution", false, why);
}

int fulfillment_order_decode(const json_t *j, fulfillment_order_t *out, fulfillment_why_t *why) {
  const char *id, *compensation_id, *order_id, *customer_id, *kind, *status;
  json_t *plan, *refund, *reship, *communication, *benefit = NULL;
  json_int_t created_at, updated_at, version;
  json_error_t je;
  if (!j || !out) return CTXD_EINVAL;
  if (json_unpack_ex(
          (json_t *)j, &je, 0, "{s:s, s:s, s:s, s:s, s:s, s:o, s:I, s:s, s:o, s:o, s:o, s:I, s:I, s?o}", "id",
          &id, "compensation_id", &compensation_id, "order_id", &order_id, "customer_id", &customer_id,
          "strategy_kind", &kind, "plan", &plan, "created_at", &created_at, "status", &status,
          "refund_feedback", &refund, "reship_feedback", &reship, "pending_communication", &communication,
          "updated_at", &updated_at, "version", &version, "benefit_feedback", &benefit))
    return fulfillment__why(why, CTXD_EDECODE, "%s", je.text);
  fulfillment_order_t o;
  memset(&o, 0, sizeof o);
  int st = fulfillment__name_index(status_names, countof(status_names), status);
  if (fulfillment__copy_text(o.id, sizeof o.id, id, "id", true, why) ||
      fulfillment__copy_text(o.compensation_id, sizeof o.compensation_id, compensation_id, "compensation_id",
                             true, why) ||
      fulfillment__copy_text(o.order_id, sizeof o.order_id, order_id, "order_id", true, why) ||
      fulfillment__copy_text(o.customer_id, sizeof o.customer_id, customer_id, "customer_id", true, why) ||
      fulfillment__plan_read(plan, &o.plan, why) || decode_refund(refund, &o.refund, why) ||
      decode_reship(reship, &o.reship, why) || decode_benefit(benefit, &o.benefit, why) ||
      decode_communication(communication, &o.communication, why))
    return CTXD_EDECODE;
  if (strcmp(kind, o.plan.ops->name) != 0)
    return fulfillment__why(why, CTXD_EDECODE, "strategy_kind %s does not match the plan's %s", kind,
                            o.plan.ops->name);
  if (st < 0) return fulfillment__why(why, CTXD_EDECODE, "unknown status '%s'", status);
  if (version < 1 || version > UINT32_MAX)
    return fulfillment__why(why, CTXD_EDECODE, "version %lld is out of range", version);
  o.status = (fulfillment_status_t)st;
  o.created_at = created_at;
  o.updated_at = updated_at;
  o.version = (uint32_t)version;
  *out = o;
  return 0;
}

json_t *fulfillment_message_encode(const fulfillment_message_t *m) {
  if (!m || !fulfillment_message_type_name(m->type) || !fulfillment_kind_name(m->kind)) return NULL;
  unsigned members = message_types[m->type].members;
  json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:I}", "fulfillmentId", m->fulfillment_id, "compensationId",
                        m->compensation_id, "orderId", m->order_id, "strategy",
                        fulfillment_kind_name(m->kind), "at", (json_int_t)m->at);
  int bad = !j;
  if (!bad && (members & M_CUSTOMER))
    bad |= json_object_set_new(j, "customerId", json_string(m->customer_id));
  if (!bad && (members & M_ITEMS)) {
    json_t *items = fulfillment_plan_kind(&m->plan) == m->kind ? m->plan.ops->encode(&m->plan) : NULL;
    bad |= !items || json_object_update(j, items);
    json_decref(items);
  }
  if (!bad && (members & M_AMOUNT)) bad |= json_object_set_new(j, "amount", json_integer(m->amount));
  if (!bad && (members & M_REFERENCE)) bad |= json_object_set_new(j, "reference", json_string(m->reference));
  if (!bad && (members & (M_FAILURE | M_RESOLUTION)))
    bad |= json_object_set_new(j, "reason", json_string(m->reason));
  if (!bad && (members & M_RESOLUTION))
    bad |= json_object_set_new(j, "resolvedManually", json_boolean(m->resolved_manually));
  if (bad) {
    json_decref(j);
    return NULL;
  }
  return j;
}
