/* The compensation order aggregate: the action table, decide(), names and JSON. */
#include <string.h>

#include <ctxd/errno.h>

#include "domain_strategy.h"

#define countof(a) (sizeof(a) / sizeof((a)[0]))

static const char *const status_names[COMPENSATION_STATUS_COUNT] = {
    [COMPENSATION_STATUS_APPLIED] = "applied",
    [COMPENSATION_STATUS_PENDING_APPROVAL] = "pending_approval",
    [COMPENSATION_STATUS_APPROVED] = "approved",
    [COMPENSATION_STATUS_REJECTED] = "rejected",
    [COMPENSATION_STATUS_COMPENSATING] = "compensating",
    [COMPENSATION_STATUS_FINISHED] = "finished",
    [COMPENSATION_STATUS_PENDING_COMMUNICATION] = "pending_communication",
    [COMPENSATION_STATUS_TERMINATED] = "terminated",
};

static const char *const channel_names[] = {
    [COMPENSATION_CHANNEL_BACK_OFFICE] = "back_office",
    [COMPENSATION_CHANNEL_CUSTOMER_SERVICE] = "customer_service",
    [COMPENSATION_CHANNEL_APP] = "app",
};

static const char *const party_names[] = {
    [COMPENSATION_PARTY_NONE] = "",
    [COMPENSATION_PARTY_MERCHANT] = "merchant",
    [COMPENSATION_PARTY_PLATFORM] = "platform",
    [COMPENSATION_PARTY_LOGISTICS] = "logistics",
    [COMPENSATION_PARTY_CUSTOMER] = "customer",
};

/* Indexed by bit position; the order of compensation_field_t. */
static const char *const field_names[COMPENSATION_FIELD_COUNT] = {
    "id",
    "order_id",
    "customer_id",
    "created_by",
    "applicant",
    "created_at",
    "reason",
    "strategy_kind",
    "strategy_detail",
    "total_amount",
    "status",
    "status_reason",
    "reviewer",
    "fulfillment_id",
    "updated_at",
    "version",
    "responsible_party",
};

static const char *name_of(const char *const *names, size_t n, int value) {
  return value >= 0 && (size_t)value < n ? names[value] : NULL;
}

const char *compensation_status_name(compensation_status_t status) {
  return name_of(status_names, countof(status_names), (int)status);
}

const char *compensation_channel_name(compensation_channel_t channel) {
  return name_of(channel_names, countof(channel_names), (int)channel);
}

const char *compensation_party_name(compensation_party_t party) {
  return name_of(party_names, countof(party_names), (int)party);
}

const char *compensation_field_name(uint32_t field) {
  if (field == 0 || (field & (field - 1)) != 0) return NULL;
  return name_of(field_names, countof(field_names), __builtin_ctz(field));
}

const char *compensation_event_type_name(compensation_event_type_t type) {
  return type == COMPENSATION_EVENT_APPROVED   ? "CompensationApproved"
         : type == COMPENSATION_EVENT_MODIFIED ? "CompensationModified"
                                               : NULL;
}

/* ---- the action table ----------------------------------------------------------------- */

#define S(status) (1u << (status))

/* What decide() checks and does for an action before its effect runs. */
enum {
  NEEDS_ACTOR = 1 << 0,       /* cmd->actor is required */
  NEEDS_REASON = 1 << 1,      /* cmd->reason is required */
  NEEDS_FULFILLMENT = 1 << 2, /* cmd->fulfillment_id is required, recorded, must not change */
  REASON_IS_STATUS = 1 << 3,  /* the reason explains the new status (status_reason) */
  SETS_REVIEWER = 1 << 4,     /* the actor is recorded as reviewer */
};

/* Inputs decide() has checked and copied, by the action's flags. */
typedef struct {
  compensation_id_t actor;
  compensation_text_t reason;
  compensation_id_t fulfillment_id;
} inputs_t;

typedef int (*effect_fn)(const compensation_command_t *c, const inputs_t *in, compensation_decision_t *d);

typedef struct {
  const char *name;
  uint32_t from;            /* statuses the action runs in */
  uint32_t ignore;          /* statuses where it is a stale or repeated event: a no-op */
  compensation_status_t to; /* NONE: status kept */
  unsigned flags;
  effect_fn effect; /* action-specific work after the status change; NULL: none */
} rule_t;

static int apply_order(const compensation_command_t *c, const inputs_t *in, compensation_decision_t *d);
static int modify_order(const compensation_command_t *c, const inputs_t *in, compensation_decision_t *d);
static int emit_approved(const compensation_command_t *c, const inputs_t *in, compensation_decision_t *d);

static const rule_t rules[COMPENSATION_ACTION_COUNT] = {
    [COMPENSATION_ACTION_APPLY] = {"apply", 0, 0, COMPENSATION_STATUS_APPLIED, NEEDS_ACTOR | NEEDS_REASON,
                                   apply_order},
    [COMPENSATION_ACTION_MODIFY] = {"modify",
                                    S(COMPENSATION_STATUS_APPLIED) | S(COMPENSATION_STATUS_REJECTED), 0,
                                    COMPENSATION_STATUS_NONE, NEEDS_ACTOR, modify_order},
    [COMPENSATION_ACTION_SUBMIT] = {"submit",
                                    S(COMPENSATION_STATUS_APPLIED) | S(COMPENSATION_STATUS_REJECTED), 0,
                                    COMPENSATION_STATUS_PENDING_APPROVAL, 0, NULL},
    [COMPENSATION_ACTION_APPROVE] = {"approve", S(COMPENSATION_STATUS_PENDING_APPROVAL), 0,
                                     COMPENSATION_STATUS_APPROVED, NEEDS_ACTOR | SETS_REVIEWER,
                                     emit_approved},
    [COMPENSATION_ACTION_REJECT] = {"reject", S(COMPENSATION_STATUS_PENDING_APPROVAL), 0,
                                    COMPENSATION_STATUS_REJECTED,
                                    NEEDS_ACTOR | NEEDS_REASON | REASON_IS_STATUS | SETS_REVIEWER, NULL},
    [COMPENSATION_ACTION_TERMINATE] = {"terminate",
                                       S(COMPENSATION_STATUS_APPLIED) |
                                           S(COMPENSATION_STATUS_PENDING_APPROVAL) |
                                           S(COMPENSATION_STATUS_REJECTED),
                                       0, COMPENSATION_STATUS_TERMINATED, NEEDS_REASON | REASON_IS_STATUS,
                                       NULL},
    [COMPENSATION_ACTION_FULFILLMENT_PROCESSING] = {"fulfillment_processing", S(COMPENSATION_STATUS_APPROVED),
                                                    S(COMPENSATION_STATUS_COMPENSATING) |
                                                        S(COMPENSATION_STATUS_PENDING_COMMUNICATION) |
                                                        S(COMPENSATION_STATUS_FINISHED) |
                                                        S(COMPENSATION_STATUS_TERMINATED),
                                                    COMPENSATION_STATUS_COMPENSATING, NEEDS_FULFILLMENT,
                                                    NULL},
    [COMPENSATION_ACTION_FULFILLMENT_SUCCEEDED] = {"fulfillment_succeeded",
                                                   S(COMPENSATION_STATUS_APPROVED) |
                                                       S(COMPENSATION_STATUS_COMPENSATING) |
                                                       S(COMPENSATION_STATUS_PENDING_COMMUNICATION),
                                                   S(COMPENSATION_STATUS_FINISHED),
                                                   COMPENSATION_STATUS_FINISHED, NEEDS_FULFILLMENT, NULL},
    [COMPENSATION_ACTION_FULFILLMENT_FAILED] = {"fulfillment_failed",
                                                S(COMPENSATION_STATUS_APPROVED) |
                                                    S(COMPENSATION_STATUS_COMPENSATING),
                                                S(COMPENSATION_STATUS_PENDING_COMMUNICATION) |
                                                    S(COMPENSATION_STATUS_FINISHED) |
                                                    S(COMPENSATION_STATUS_TERMINATED),
                                                COMPENSATION_STATUS_PENDING_COMMUNICATION,
                                                NEEDS_FULFILLMENT | NEEDS_REASON | REASON_IS_STATUS, NULL},
    /* abandoned implies failed first: taken also when the failure is still on its way */
    [COMPENSATION_ACTION_FULFILLMENT_ABANDONED] = {"fulfillment_abandoned",
                                                   S(COMPENSATION_STATUS_APPROVED) |
                                                       S(COMPENSATION_STATUS_COMPENSATING) |
                                                       S(COMPENSATION_STATUS_PENDING_COMMUNICATION),
                                                   S(COMPENSATION_STATUS_TERMINATED) |
                                                       S(COMPENSATION_STATUS_FINISHED),
                                                   COMPENSATION_STATUS_TERMINATED,
                                                   NEEDS_FULFILLMENT | NEEDS_REASON | REASON_IS_STATUS, NULL},
};

const char *compensation_action_name(compensation_action_t action) {
  return (unsigned)action < countof(rules) ? rules[action].name : NULL;
}

/* ---- setters that trace what changed -------------------------------------------------- */

/* dst and src hold checked texts (src fits dst). */
static void set_text(compensation_decision_t *d, uint32_t field, char *dst, const char *src) {
  if (strcmp(dst, src) != 0) {
    memcpy(dst, src, strlen(src) + 1);
    d->changed |= field;
  }
}

static void set_int(compensation_decision_t *d, uint32_t field, int64_t *dst, int64_t v) {
  if (*dst != v) {
    *dst = v;
    d->changed |= field;
  }
}

/* s is valid. The strategy decides what of itself changed; kind and total are ours. */
static void set_strategy(compensation_decision_t *d, const compensation_strategy_t *s) {
  compensation_order_t *o = &d->order;
  uint32_t changed = o->strategy.ops != s->ops
                         ? COMPENSATION_FIELD_STRATEGY_KIND | COMPENSATION_FIELD_STRATEGY_DETAIL
                         : s->ops->diff(&o->strategy, s);
  if (changed) o->strategy = *s;
  d->changed |= changed;
  int64_t total = 0;
  s->ops->total(s, &total);
  set_int(d, COMPENSATION_FIELD_TOTAL_AMOUNT, &o->total_amount, total);
}

/* ---- effects -------------------------------------------------------------------------- */

/* A party named by a command: NONE (not stated) or a known one. */
static int check_party(compensation_party_t party, compensation_why_t *why) {
  return compensation_party_name(party)
             ? 0
             : compensation__why(why, CTXD_EINVAL, "unknown responsible party %d", (int)party);
}

static void set_party(compensation_decision_t *d, compensation_party_t party) {
  if (d->order.responsible_party != party) {
    d->order.responsible_party = party;
    d->changed |= COMPENSATION_FIELD_RESPONSIBLE_PARTY;
  }
}

static int apply_order(const compensation_command_t *c, const inputs_t *in, compensation_decision_t *d) {
  compensation_order_t *o = &d->order;
  int rc;
  if ((rc = compensation__copy_text(o->id, sizeof o->id, c->id, "id", true, &d->why)) ||
      (rc = compensation__copy_text(o->order_id, sizeof o->order_id, c->order_id, "order id", true,
                                    &d->why)) ||
      (rc = compensation__copy_text(o->customer_id, sizeof o->customer_id, c->customer_id, "customer id",
                                    true, &d->why)))
    return rc;
  if (!compensation_channel_name(c->channel))
    return compensation__why(&d->why, CTXD_EINVAL, "unknown channel %d", (int)c->channel);
  if ((rc = compensation_strategy_validate(c->strategy, &d->why)) ||
      (rc = check_party(c->responsible_party, &d->why)))
    return rc;
  o->created_by = c->channel;
  o->responsible_party = c->responsible_party;
  memcpy(o->applicant, in->actor, sizeof o->applicant);
  memcpy(o->reason, in->reason, sizeof o->reason);
  o->created_at = c->at;
  set_strategy(d, c->strategy);
  d->changed = COMPENSATION_FIELD_ALL; /* a new row: every column is written */
  return 0;
}

/* An event describing the order as it now is. */
static void emit(compensation_event_type_t type, const compensation_command_t *c, const inputs_t *in,
                 compensation_decision_t *d) {
  const compensation_order_t *o = &d->order;
  compensation_event_t *e = &d->events[d->n_events++];
  e->type = type;
  memcpy(e->compensation_id, o->id, sizeof e->compensation_id);
  memcpy(e->order_id, o->order_id, sizeof e->order_id);
  memcpy(e->customer_id, o->customer_id, sizeof e->customer_id);
  e->strategy = o->strategy;
  e->total_amount = o->total_amount;
  e->responsible_party = o->responsible_party;
  memcpy(e->actor, in->actor, sizeof e->actor);
  e->at = c->at;
}

static int modify_order(const compensation_command_t *c, const inputs_t *in, compensation_decision_t *d) {
  compensation_text_t reason;
  int rc;
  if (!c->reason && !c->strategy && c->responsible_party == COMPENSATION_PARTY_NONE &&
      !c->clear_responsible_party)
    return compensation__why(&d->why, CTXD_EINVAL,
                             "modify needs a reason, a strategy or a responsible party");
  if (c->clear_responsible_party && c->responsible_party != COMPENSATION_PARTY_NONE)
    return compensation__why(&d->why, CTXD_EINVAL, "a responsible party cannot be set and cleared at once");
  if ((rc = check_party(c->responsible_party, &d->why))) return rc;
  if (c->reason && (rc = compensation__copy_text(reason, sizeof reason, c->reason, "reason", true, &d->why)))
    return rc;
  if (c->strategy && (rc = compensation_strategy_validate(c->strategy, &d->why))) return rc;
  if (c->reason) set_text(d, COMPENSATION_FIELD_REASON, d->order.reason, reason);
  if (c->strategy) set_strategy(d, c->strategy);
  if (c->responsible_party != COMPENSATION_PARTY_NONE || c->clear_responsible_party)
    set_party(d, c->responsible_party);
  /* whatever changed, consumers see the order as it now is (a party changed alone included) */
  if (d->changed) emit(COMPENSATION_EVENT_MODIFIED, c, in, d);
  return 0;
}

static int emit_approved(const compensation_command_t *c, const inputs_t *in, compensation_decision_t *d) {
  emit(COMPENSATION_EVENT_APPROVED, c, in, d);
  return 0;
}

/* ---- decide --------------------------------------------------------------------------- */

static const char *status_text(compensation_status_t status) {
  const char *name = compensation_status_name(status);
  return name ? name : "unknown";
}

/* Checks and copies an input when the action needs it; leaves dst "" otherwise. */
static int take_input(char *dst, size_t cap, const char *src, const char *what, bool needed,
                      compensation_why_t *why) {
  dst[0] = '\0';
  return needed ? compensation__copy_text(dst, cap, src, what, true, why) : 0;
}

/* Checks and copies the inputs the action's flags require. */
static int take_inputs(const rule_t *r, const compensation_command_t *c, inputs_t *in,
                       compensation_why_t *why) {
  int rc;
  if ((rc = take_input(in->actor, sizeof in->actor, c->actor, "actor", r->flags & NEEDS_ACTOR, why)) ||
      (rc = take_input(in->reason, sizeof in->reason, c->reason, "reason", r->flags & NEEDS_REASON, why)) ||
      (rc = take_input(in->fulfillment_id, sizeof in->fulfillment_id, c->fulfillment_id, "fulfillment id",
                       r->flags & NEEDS_FULFILLMENT, why)))
    return rc;
  return 0;
}

/* Whether the state lets the action run: 0 (run), 1 (ignore), or a rejection code. */
static int check_state(const rule_t *r, const compensation_order_t *state, const inputs_t *in,
                       compensation_decision_t *d) {
  if (!r->from) /* apply creates */
    return state ? compensation__why(&d->why, CTXD_EEXIST, "compensation order %s exists already", state->id)
                 : 0;
  if (!state) return compensation__why(&d->why, CTXD_ENOENT, "no compensation order to %s", r->name);
  if ((r->flags & NEEDS_FULFILLMENT) && state->fulfillment_id[0] &&
      strcmp(state->fulfillment_id, in->fulfillment_id) != 0)
    return compensation__why(&d->why, CTXD_ECONFLICT, "fulfillment %s is not this order's fulfillment %s",
                             in->fulfillment_id, state->fulfillment_id);
  uint32_t bit = (unsigned)state->status < COMPENSATION_STATUS_COUNT ? S(state->status) : 0;
  if (bit & r->ignore) {
    compensation__why(&d->why, 0, "%s ignored: compensation order is %s already", r->name,
                      status_text(state->status));
    return 1;
  }
  if (!(bit & r->from))
    return compensation__why(&d->why, CTXD_ESTATE, "cannot %s a compensation order that is %s", r->name,
                             status_text(state->status));
  return 0;
}

int compensation_order_decide(const compensation_order_t *state, const compensation_command_t *cmd,
                              compensation_decision_t *d) {
  if (!cmd || !d) return CTXD_EINVAL;
  memset(d, 0, sizeof *d);
  if (state) d->order = *state;
  const rule_t *r = (unsigned)cmd->action < countof(rules) ? &rules[cmd->action] : NULL;
  if (!r || !r->name) return compensation__why(&d->why, CTXD_EINVAL, "unknown action %d", (int)cmd->action);
  if (cmd->at <= 0) return compensation__why(&d->why, CTXD_EINVAL, "at must be positive");
  inputs_t in;
  int rc = take_inputs(r, cmd, &in, &d->why);
  if (rc) return rc;
  rc = check_state(r, state, &in, d);
  if (rc == 1) {
    d->ignored = true;
    return 0;
  }
  if (rc) return rc;

  compensation_order_t *o = &d->order;
  if (r->to != COMPENSATION_STATUS_NONE) {
    if (o->status != r->to) {
      o->status = r->to;
      d->changed |= COMPENSATION_FIELD_STATUS;
    }
    set_text(d, COMPENSATION_FIELD_STATUS_REASON, o->status_reason,
             r->flags & REASON_IS_STATUS ? in.reason : "");
  }
  if (r->flags & SETS_REVIEWER) set_text(d, COMPENSATION_FIELD_REVIEWER, o->reviewer, in.actor);
  if (r->flags & NEEDS_FULFILLMENT)
    set_text(d, COMPENSATION_FIELD_FULFILLMENT_ID, o->fulfillment_id, in.fulfillment_id);
  if (r->effect && (rc = r->effect(cmd, &in, d))) {
    compensation_why_t why = d->why;
    memset(d, 0, sizeof *d);
    if (state) d->order = *state;
    d->why = why;
    return rc;
  }
  if (d->changed) {
    o->version++;
    o->updated_at = cmd->at;
    d->changed |= COMPENSATION_FIELD_VERSION | COMPENSATION_FIELD_UPDATED_AT;
  }
  return 0;
}

/* ---- JSON ----------------------------------------------------------------------------- */

json_t *compensation_order_encode(const compensation_order_t *o) {
  if (!o) return NULL;
  const char *channel = compensation_channel_name(o->created_by);
  const char *status = compensation_status_name(o->status);
  const char *kind = compensation_strategy_kind_name(compensation_strategy_kind(&o->strategy));
  if (!channel || !status || !kind) return NULL;
  const char *party = compensation_party_name(o->responsible_party);
  if (!party) return NULL;
  return json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:s, s:s, s:o, s:I, s:s, s:s, s:s, s:s, "
                   "s:I, s:I, s:s}",
                   "id", o->id, "order_id", o->order_id, "customer_id", o->customer_id, "created_by", channel,
                   "applicant", o->applicant, "created_at", (json_int_t)o->created_at, "reason", o->reason,
                   "strategy_kind", kind, "strategy_detail", compensation_strategy_encode(&o->strategy),
                   "total_amount", (json_int_t)o->total_amount, "status", status, "status_reason",
                   o->status_reason, "reviewer", o->reviewer, "fulfillment_id", o->fulfillment_id,
                   "updated_at", (json_int_t)o->updated_at, "version", (json_int_t)o->version,
                   "responsible_party", party);
}

/* A decode failure of any kind is CTXD_EDECODE; the text says what. */
static int decode_failed(int rc) { return rc ? CTXD_EDECODE : 0; }

/* Decodes a strategy and checks the total that travels with it. */
static int decode_strategy(const json_t *j, int64_t total, const char *total_key, compensation_strategy_t *s,
                           compensation_why_t *why) {
  int64_t want = 0;
  if (compensation_strategy_decode(j, s, why)) return CTXD_EDECODE;
  compensation_strategy_total(s, &want);
  if (want != total)
    return compensation__why(why, CTXD_EDECODE, "%s %lld does not match the strategy's %lld", total_key,
                             (long long)total, (long long)want);
  return 0;
}

int compensation_order_decode(const json_t *j, compensation_order_t *out, compensation_why_t *why) {
  const char *id, *order_id, *customer_id, *channel, *applicant, *reason, *kind, *status, *status_reason,
      *reviewer, *fulfillment_id, *party;
  json_t *detail;
  json_int_t created_at, total, updated_at, version;
  json_error_t je;
  if (!j || !out) return CTXD_EINVAL;
  if (json_unpack_ex((json_t *)j, &je, 0,
                     "{s:s, s:s, s:s, s:s, s:s, s:I, s:s, s:s, s:o, s:I, s:s, s:s, s:s, s:s, "
                     "s:I, s:I, s:s}",
                     "id", &id, "order_id", &order_id, "customer_id", &customer_id, "created_by", &channel,
                     "applicant", &applicant, "created_at", &created_at, "reason", &reason, "strategy_kind",
                     &kind, "strategy_detail", &detail, "total_amount", &total, "status", &status,
                     "status_reason", &status_reason, "reviewer", &reviewer, "fulfillment_id",
                     &fulfillment_id, "updated_at", &updated_at, "version", &version, "responsible_party",
                     &party))
    return compensation__why(why, CTXD_EDECODE, "%s", je.text);
  compensation_order_t o;
  memset(&o, 0, sizeof o);
  int rc;
  if ((rc = compensation__copy_text(o.id, sizeof o.id, id, "id", true, why)) ||
      (rc = compensation__copy_text(o.order_id, sizeof o.order_id, order_id, "order_id", true, why)) ||
      (rc = compensation__copy_text(o.customer_id, sizeof o.customer_id, customer_id, "customer_id", true,
                                    why)) ||
      (rc = compensation__copy_text(o.applicant, sizeof o.applicant, applicant, "applicant", true, why)) ||
      (rc = compensation__copy_text(o.reason, sizeof o.reason, reason, "reason", true, why)) ||
      (rc = compensation__copy_text(o.status_reason, sizeof o.status_reason, status_reason, "status_reason",
                                    false, why)) ||
      (rc = compensation__copy_text(o.reviewer, sizeof o.reviewer, reviewer, "reviewer", false, why)) ||
      (rc = compensation__copy_text(o.fulfillment_id, sizeof o.fulfillment_id, fulfillment_id,
                                    "fulfillment_id", false, why)))
    return decode_failed(rc);
  int c = compensation__name_index(channel_names, countof(channel_names), channel);
  int st = compensation__name_index(status_names, countof(status_names), status);
  int rp = compensation__name_index(party_names, countof(party_names), party);
  if (rp < 0) return compensation__why(why, CTXD_EDECODE, "unknown responsible_party '%s'", party);
  if (c < 0) return compensation__why(why, CTXD_EDECODE, "unknown created_by '%s'", channel);
  if (st < 0) return compensation__why(why, CTXD_EDECODE, "unknown status '%s'", status);
  if ((rc = decode_strategy(detail, total, "total_amount", &o.strategy, why))) return rc;
  if (strcmp(kind, o.strategy.ops->name) != 0)
    return compensation__why(why, CTXD_EDECODE, "strategy_kind %s does not match the detail's %s", kind,
                             o.strategy.ops->name);
  if (version < 1 || version > UINT32_MAX)
    return compensation__why(why, CTXD_EDECODE, "version %lld is out of range", version);
  o.created_by = (compensation_channel_t)c;
  o.status = (compensation_status_t)st;
  o.responsible_party = (compensation_party_t)rp;
  o.created_at = created_at;
  o.total_amount = total;
  o.updated_at = updated_at;
  o.version = (uint32_t)version;
  *out = o;
  return 0;
}
