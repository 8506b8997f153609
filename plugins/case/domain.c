/* Case aggregate: names, the status table, opening a case and applying actions. */
#include "domain.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "domain_text.h"

/* ---- name tables ---------------------------------------------------------------------- */

static const char *const status_names[CASE_STATUS_COUNT] = {
    [CASE_STATUS_WAIT_DISTRIBUTION] = "WaitDistribution",
    [CASE_STATUS_WAIT_PROCESS] = "WaitProcess",
    [CASE_STATUS_APPOINT_PROCESS] = "AppointProcess",
    [CASE_STATUS_PROCESSING] = "Processing",
    [CASE_STATUS_PENDING_ACCEPTANCE] = "PendingAcceptance",
    [CASE_STATUS_FINISHED] = "Finished",
    [CASE_STATUS_CLOSED] = "Closed",
    [CASE_STATUS_REJECTED] = "Rejected",
};

static const char *const strategy_names[CASE_STRATEGY_COUNT] = {
    [CASE_STRATEGY_REFUND] = "refund",
    [CASE_STRATEGY_RESHIP] = "reship",
    [CASE_STRATEGY_NON_PRODUCT] = "non_product",
};

static const char *const pay_status_names[CASE_PAY_COUNT] = {
    [CASE_PAY_NOT_REQUIRED] = "NotRequired",
    [CASE_PAY_UNPAID] = "Unpaid",
    [CASE_PAY_PAID] = "Paid",
};

static const char *const dispatch_names[CASE_DISPATCH_COUNT] = {
    [CASE_DISPATCH_ROUND_ROBIN] = "round_robin",
    [CASE_DISPATCH_LEAST_LOADED] = "least_loaded",
};

/* ---- the status table ------------------------------------------------------------------
 *
 * Seed 002, section 5.1.3 (场景梳理), one row per action of the coordination case (协同单).
 * "from" is the set of source statuses the seed's check allows ("判断...状态(=...)"); "to"
 * is the status it sets, SAME where the seed changes none.
 *
 *   action      seed                                   from                        to
 *   open        创建协同单 (not an action on a case)    -                           WaitDistribution
 *   assign      分配协同单 "=待处理"                     WaitDistribution,WaitProcess WaitProcess
 *   appoint     分配协同单, by hand                      WaitDistribution,WaitProcess AppointProcess
 *   accept      受理 "=待处理/验收失败 -> 处理中";       WaitProcess,AppointProcess  Processing
 *               code: isWaitProcess()||isAppointProcess()
 *   transfer    转交 "=处理中、待处理", same 组织        Processing,WaitProcess      SAME
 *   process     处理 "=处理中; 处理中->待验收"           Processing                  PendingAcceptance
 *   reject_back 驳回 "=待验收; 待验收->处理中"           PendingAcceptance           Processing
 *   complete    完结 "=待验收; 待验收->已完结"           PendingAcceptance           Finished
 *   close       关闭 "=处理中、待处理 -> 关闭"           Processing,WaitProcess      Closed
 *   refuse      拒绝 "=处理中、待处理 -> 已拒绝"         Processing,WaitProcess      Rejected
 *   urge        催单 "=处理中、待处理", 修改催单值对象    Processing,WaitProcess      SAME
 *   pay         payStatus (the entity's field; the seed    every status not final      SAME
 *               lists no scenario for it)
 *
 * Readings: assign also leaves WaitDistribution because that status exists only to wait
 * for it (cases open there and distribution is what moves them on); the seed's "=待处理"
 * keeps WaitProcess, i.e. reassigning a case nobody accepted yet. The seed never says what
 * sets AppointProcess; here it is assignment by hand (指派), so accept's "验收失败" is read
 * through the seed's code, which accepts from WaitProcess or AppointProcess. Finished,
 * Closed and Rejected are final: no row lists them.
 *
 * Accept follows the seed's code, handle(followerValue): whoever takes the case becomes
 * its follower (setFollowerValue), the assignee or not; the log records the taker.
 * Completing waits for the payment when the case needs one (needPayFlag/payStatus), and a
 * payment arriving after the case ended changes nothing. */

#define SAME CASE_STATUS_NONE
#define FROM(st) (1u << CASE_STATUS_##st)

typedef enum {
  TAKES_NO_AGENT = 0,
  TAKES_ON_DUTY_AGENT, /* the seed gives cases only to agents at work (上班) */
  TAKES_GROUP_PEER,    /* transfer: "同一组织下的不同人", on duty as well */
  TAKES_TAKER          /* accept: the taker becomes the follower (followerValue) */
} agent_rule_t;

static const struct {
  const char *name; /* stable name (JSON) */
  const char *verb; /* for "cannot <verb> a case ..." */
  unsigned from;
  case_status_t to;
  agent_rule_t agent;
  int urges; /* the seed's urge value object (催单值对象): count and time */
  int pays;  /* records the payment: pay status Unpaid -> Paid */
} actions[CASE_ACTION_COUNT] = {
    [CASE_ACTION_OPEN] = {"open", "open", 0, CASE_STATUS_WAIT_DISTRIBUTION, TAKES_NO_AGENT, 0},
    [CASE_ACTION_ASSIGN] = {"assign", "assign", FROM(WAIT_DISTRIBUTION) | FROM(WAIT_PROCESS),
                            CASE_STATUS_WAIT_PROCESS, TAKES_ON_DUTY_AGENT, 0},
    [CASE_ACTION_APPOINT] = {"appoint", "appoint", FROM(WAIT_DISTRIBUTION) | FROM(WAIT_PROCESS),
                             CASE_STATUS_APPOINT_PROCESS, TAKES_ON_DUTY_AGENT, 0},
    [CASE_ACTION_ACCEPT] = {"accept", "accept", FROM(WAIT_PROCESS) | FROM(APPOINT_PROCESS),
                            CASE_STATUS_PROCESSING, TAKES_TAKER, 0},
    [CASE_ACTION_TRANSFER] = {"transfer", "transfer", FROM(PROCESSING) | FROM(WAIT_PROCESS), SAME,
                              TAKES_GROUP_PEER, 0},
    [CASE_ACTION_PROCESS] = {"process", "process", FROM(PROCESSING), CASE_STATUS_PENDING_ACCEPTANCE,
                             TAKES_NO_AGENT, 0},
    [CASE_ACTION_REJECT_BACK] = {"reject_back", "reject back", FROM(PENDING_ACCEPTANCE),
                                 CASE_STATUS_PROCESSING, TAKES_NO_AGENT, 0},
    [CASE_ACTION_COMPLETE] = {"complete", "complete", FROM(PENDING_ACCEPTANCE), CASE_STATUS_FINISHED,
                              TAKES_NO_AGENT, 0},
    [CASE_ACTION_CLOSE] = {"close", "close", FROM(PROCESSING) | FROM(WAIT_PROCESS), CASE_STATUS_CLOSED,
                           TAKES_NO_AGENT, 0},
    [CASE_ACTION_REFUSE] = {"refuse", "refuse", FROM(PROCESSING) | FROM(WAIT_PROCESS), CASE_STATUS_REJECTED,
                            TAKES_NO_AGENT, 0},
    [CASE_ACTION_URGE] = {"urge", "urge", FROM(PROCESSING) | FROM(WAIT_PROCESS), SAME, TAKES_NO_AGENT, 1},
    [CASE_ACTION_PAY] = {"pay", "pay",
                         FROM(WAIT_DISTRIBUTION) | FROM(WAIT_PROCESS) | FROM(APPOINT_PROCESS) |
                             FROM(PROCESSING) | FROM(PENDING_ACCEPTANCE),
                         SAME, TAKES_NO_AGENT, 0, 1},
};

/* ---- name lookup ------------------------------------------------------------------------
 * One lookup for every enum: names sit at a fixed stride, either a plain array of strings
 * or the first member of each row of a table (the action names live in the status table). */

static const char *name_at(const void *base, size_t stride, size_t n, int v) {
  if (v < 0 || (size_t)v >= n) return NULL;
  return *(const char *const *)(const void *)((const char *)base + (size_t)v * stride);
}

static int name_find(const void *base, size_t stride, size_t n, const char *name, int *out) {
  for (size_t i = 0; name && i < n; i++) {
    if (strcmp(name_at(base, stride, n, (int)i), name) == 0) {
      *out = (int)i;
      return 0;
    }
  }
  return CTXD_EINVAL;
}

#define ARRAY_LEN(arr) (sizeof(arr) / sizeof *(arr))
#define NAMES(arr) (arr), sizeof *(arr), ARRAY_LEN(arr)
#define ACTION_NAMES &actions[0].name, sizeof actions[0], ARRAY_LEN(actions)

const char *case_status_name(case_status_t s) { return name_at(NAMES(status_names), s); }
const char *case_action_name(case_action_t a) { return name_at(ACTION_NAMES, a); }
const char *case_strategy_name(case_strategy_t s) { return name_at(NAMES(strategy_names), s); }
const char *case_dispatch_name(case_dispatch_t d) { return name_at(NAMES(dispatch_names), d); }
const char *case_pay_status_name(case_pay_status_t p) { return name_at(NAMES(pay_status_names), p); }

/* Parses into an int first: writing through an enum pointer as int is not portable. */
#define CASE_PARSE(fn, type, table)                                                                          \
  int fn(const char *name, type *out) {                                                                      \
    int v;                                                                                                   \
    if (!out || name_find(table, name, &v) != 0) return CTXD_EINVAL;                                         \
    *out = (type)v;                                                                                          \
    return 0;                                                                                                \
  }
CASE_PARSE(case_status_parse, case_status_t, NAMES(status_names))
CASE_PARSE(case_action_parse, case_action_t, ACTION_NAMES)
CASE_PARSE(case_strategy_parse, case_strategy_t, NAMES(strategy_names))
CASE_PARSE(case_dispatch_parse, case_dispatch_t, NAMES(dispatch_names))
CASE_PARSE(case_pay_status_parse, case_pay_status_t, NAMES(pay_status_names))
#undef CASE_PARSE

int case_action_allowed(case_action_t a, case_status_t s) {
  if ((unsigned)a >= CASE_ACTION_COUNT || (unsigned)s >= CASE_STATUS_COUNT) return 0;
  return (actions[a].from & (1u << s)) != 0;
}

/* ---- helpers ----------------------------------------------------------------------------- */

int case_text_copy(char *dst, size_t cap, const char *src) {
  size_t len = src ? strlen(src) : 0;
  if (len >= cap) return CTXD_ETOOBIG;
  memcpy(dst, src ? src : "", len + 1);
  return 0;
}

/* Clears out (no half-built state escapes a refusal) and explains rc in out->rejection. */
__attribute__((format(printf, 3, 4))) static int refuse(case_outcome_t *out, int rc, const char *fmt, ...) {
  va_list ap;
  memset(out, 0, sizeof *out);
  va_start(ap, fmt);
  vsnprintf(out->rejection, sizeof out->rejection, fmt, ap);
  va_end(ap);
  return rc;
}

static int nonempty(const char *s) { return s && *s; }

/* Fills out->log and out->event for a move of out->next from `from` (out->next is final). */
static int record(case_outcome_t *out, case_action_t a, const char *actor, const char *note,
                  case_status_t from, int64_t at) {
  const case_aggregate_t *n = &out->next;
  case_log_entry_t *l = &out->log;
  case_event_t *e = &out->event;
  l->action = e->action = a;
  l->from = e->from = from;
  l->to = e->to = n->status;
  l->at = e->at = at;
  memcpy(l->agent_id, n->agent_id, sizeof l->agent_id);
  memcpy(e->agent_id, n->agent_id, sizeof e->agent_id);
  memcpy(e->group_id, n->group_id, sizeof e->group_id);
  memcpy(e->case_id, n->case_id, sizeof e->case_id);
  memcpy(e->order_id, n->order_id, sizeof e->order_id);
  if (case_text_copy(l->actor, sizeof l->actor, actor) != 0)
    return refuse(out, CTXD_ETOOBIG, "cannot %s a case: actor longer than %d bytes", actions[a].verb,
                  CASE_ID_LEN - 1);
  if (case_text_copy(l->note, sizeof l->note, note) != 0)
    return refuse(out, CTXD_ETOOBIG, "cannot %s a case: note longer than %d bytes", actions[a].verb,
                  CASE_TEXT_LEN - 1);
  return 0;
}

/* ---- open ------------------------------------------------------------------------------- */

/* Appends a feature whose key and value are known to fit (checked by the caller). */
static void feature_add(case_aggregate_t *c, const char *key, const char *value) {
  case_feature_t *f = &c->features[c->n_features++];
  (void)case_text_copy(f->key, sizeof f->key, key);
  (void)case_text_copy(f->value, sizeof f->value, value);
}

/* Checks one extra feature of cmd: a NUL inside each buffer, a real key, not a repeat. */
static int feature_check(const case_open_cmd_t *cmd, size_t i, case_outcome_t *out) {
  const case_feature_t *f = &cmd->features[i];
  if (!memchr(f->key, 0, sizeof f->key) || !memchr(f->value, 0, sizeof f->value))
    return refuse(out, CTXD_ETOOBIG, "cannot open a case: feature %zu is not terminated", i);
  if (!*f->key || !strcmp(f->key, "strategy") || !strcmp(f->key, "amount"))
    return refuse(out, CTXD_EINVAL, "cannot open a case: feature key \"%s\" is reserved or empty", f->key);
  for (size_t j = 0; j < i; j++)
    if (strcmp(cmd->features[j].key, f->key) == 0)
      return refuse(out, CTXD_EINVAL, "cannot open a case: feature \"%s\" given twice", f->key);
  return 0;
}

int case_aggregate_open(const case_open_cmd_t *cmd, case_outcome_t *out) {
  if (!out) return CTXD_EINVAL;
  if (!cmd) return refuse(out, CTXD_EINVAL, "cannot open a case without a command");
  memset(out, 0, sizeof *out);
  case_aggregate_t *c = &out->next;
  const struct {
    const char *label, *value;
    char *dst;
  } ids[] = {{"case id", cmd->case_id, c->case_id},
             {"order id", cmd->order_id, c->order_id},
             {"fulfillment id", cmd->fulfillment_id, c->fulfillment_id},
             {"compensation id", cmd->compensation_id, c->compensation_id}};
  for (size_t i = 0; i < ARRAY_LEN(ids); i++) {
    if (!nonempty(ids[i].value))
      return refuse(out, CTXD_EINVAL, "cannot open a case without its %s", ids[i].label);
    if (case_text_copy(ids[i].dst, CASE_ID_LEN, ids[i].value) != 0)
      return refuse(out, CTXD_ETOOBIG, "cannot open a case: %s longer than %d bytes", ids[i].label,
                    CASE_ID_LEN - 1);
  }
  if (!case_strategy_name(cmd->strategy))
    return refuse(out, CTXD_EINVAL, "cannot open a case: unknown strategy %d", (int)cmd->strategy);
  if (cmd->amount < 0)
    return refuse(out, CTXD_EINVAL, "cannot open a case: negative amount %" PRId64, cmd->amount);
  if (case_text_copy(c->reason, sizeof c->reason, cmd->reason) != 0)
    return refuse(out, CTXD_ETOOBIG, "cannot open a case: reason longer than %d bytes", CASE_TEXT_LEN - 1);
  if (cmd->n_features && !cmd->features)
    return refuse(out, CTXD_EINVAL, "cannot open a case: %zu features announced, none given",
                  cmd->n_features);
  if (cmd->n_features > CASE_FEATURES_MAX - 2)
    return refuse(out, CTXD_ETOOBIG, "cannot open a case: more than %d extra features",
                  CASE_FEATURES_MAX - 2);
  char amount[24];
  snprintf(amount, sizeof amount, "%" PRId64, cmd->amount);
  feature_add(c, "strategy", case_strategy_name(cmd->strategy)); /* short by construction */
  feature_add(c, "amount", amount);
  for (size_t i = 0; i < cmd->n_features; i++) {
    int rc = feature_check(cmd, i, out);
    if (rc != 0) return rc;
    feature_add(c, cmd->features[i].key, cmd->features[i].value); /* same buffer sizes */
  }
  c->strategy = cmd->strategy;
  c->amount = cmd->amount;
  c->pay_status = cmd->need_pay ? CASE_PAY_UNPAID : CASE_PAY_NOT_REQUIRED;
  c->auto_accept = cmd->auto_accept != 0;
  c->status = actions[CASE_ACTION_OPEN].to;
  c->opened_at = c->updated_at = cmd->at;
  c->paid_before = cmd->paid_before;
  c->version = 1;
  return record(out, CASE_ACTION_OPEN, "system", NULL, CASE_STATUS_NONE, cmd->at);
}

const char *case_feature_get(const case_aggregate_t *c, const char *key) {
  for (size_t i = 0; c && key && i < c->n_features && i < CASE_FEATURES_MAX; i++)
    if (strcmp(c->features[i].key, key) == 0) return c->features[i].value;
  return NULL;
}

int case_auto_accept_due(const case_aggregate_t *c) {
  return c && c->auto_accept && c->status == CASE_STATUS_PENDING_ACCEPTANCE &&
         c->pay_status != CASE_PAY_UNPAID;
}

/* ---- creation checks -------------------------------------------------------------------- */

int case_open_qualify(const case_open_check_t *chk, char *why, size_t cap) {
  if (!chk || !why || !cap || (chk->n_categories && !chk->categories)) return CTXD_EINVAL;
  const char *type = chk->related_biz_type ? chk->related_biz_type : "";
  const char *id = chk->related_biz_id ? chk->related_biz_id : "";
  why[0] = '\0';
  if (chk->doc == CASE_DOC_UNKNOWN) {
    snprintf(why, cap, "cannot open a case: %s %s is not known", type, id);
    return CTXD_ENOENT;
  }
  if (chk->doc != CASE_DOC_VALID) {
    snprintf(why, cap, "cannot open a case: %s %s is %s", type, id,
             nonempty(chk->doc_status) ? chk->doc_status : "not valid");
    return CTXD_ESTATE;
  }
  if (strcmp(type, "fulfillment") == 0 && nonempty(chk->open_case_id)) {
    snprintf(why, cap, "cannot open a case: %s %s has the open case %s", type, id, chk->open_case_id);
    return CTXD_ESTATE;
  }
  for (size_t i = 0; i < chk->n_categories; i++)
    if (chk->categories[i].case_type == chk->case_type &&
        strcmp(chk->categories[i].related_biz_type, type) == 0)
      return 0;
  snprintf(why, cap, "cannot open a case: problem category %" PRId64 " does not qualify for a %s",
           chk->case_type, type);
  return CTXD_ERANGE;
}

int case_categories_parse(const char *text, case_category_t *out, size_t cap, size_t *n) {
  if (!text || !n || (cap && !out)) return CTXD_EINVAL;
  *n = 0;
  const char *p = text;
  while (*p) {
    char *end;
    errno = 0;
    long long type = strtoll(p, &end, 10);
    if (end == p || *end != ':' || type < 1 || errno != 0) return CTXD_EINVAL;
    p = end + 1;
    for (;;) { /* the kinds of this type, up to ';' or the end */
      size_t len = strcspn(p, ",;");
      if (len == 0) return CTXD_EINVAL;
      if (*n == cap || len >= CASE_ID_LEN) return CTXD_ETOOBIG;
      out[*n].case_type = type;
      memcpy(out[*n].related_biz_type, p, len);
      out[(*n)++].related_biz_type[len] = '\0';
      p += len;
      if (*p != ',') break;
      p++;
    }
    if (*p == ';') p++;
  }
  return 0;
}

/* ---- apply ------------------------------------------------------------------------------ */

/* The agent rule of the table row: who may receive the case. */
static int agent_check(const case_aggregate_t *cur, case_action_t a, const case_agent_t *ag,
                       case_outcome_t *out) {
  const char *verb = actions[a].verb;
  if (!ag || !nonempty(ag->id)) return refuse(out, CTXD_EINVAL, "cannot %s a case without an agent", verb);
  if (actions[a].agent == TAKES_TAKER) return 0; /* anyone may take it: the seed checks nothing */
  if (!nonempty(ag->group_id))
    return refuse(out, CTXD_EINVAL, "cannot %s a case to agent %s: no skill group", verb, ag->id);
  if (!ag->on_duty)
    return refuse(out, CTXD_EINVAL, "cannot %s a case to agent %s: not on duty", verb, ag->id);
  if (actions[a].agent != TAKES_GROUP_PEER) return 0;
  if (strcmp(ag->group_id, cur->group_id) != 0)
    return refuse(out, CTXD_EINVAL, "cannot %s a case to agent %s: not in skill group %s", verb, ag->id,
                  cur->group_id);
  if (strcmp(ag->id, cur->agent_id) == 0)
    return refuse(out, CTXD_EINVAL, "cannot %s a case to agent %s: already its agent", verb, ag->id);
  return 0;
}

int case_aggregate_apply(const case_aggregate_t *cur, const case_action_cmd_t *cmd, case_outcome_t *out) {
  if (!out) return CTXD_EINVAL;
  if (!cur || !cmd) return refuse(out, CTXD_EINVAL, "cannot change a case without the case and a command");
  const char *verb = case_action_name(cmd->action) ? actions[cmd->action].verb : NULL;
  if (!verb) return refuse(out, CTXD_EINVAL, "unknown action %d", (int)cmd->action);
  const char *status = case_status_name(cur->status);
  if (!status)
    return refuse(out, CTXD_EINVAL, "cannot %s a case in unknown status %d", verb, (int)cur->status);
  if (!nonempty(cmd->actor)) return refuse(out, CTXD_EINVAL, "cannot %s a case without an actor", verb);
  if (!case_action_allowed(cmd->action, cur->status))
    return refuse(out, CTXD_ESTATE, "cannot %s a case in status %s", verb, status);
  int pays = actions[cmd->action].pays;
  if ((cmd->action == CASE_ACTION_COMPLETE && cur->pay_status == CASE_PAY_UNPAID) ||
      (pays && cur->pay_status != CASE_PAY_UNPAID))
    return refuse(out, CTXD_ESTATE, "cannot %s a case whose pay status is %s", verb,
                  case_pay_status_name(cur->pay_status) ? case_pay_status_name(cur->pay_status) : "unknown");
  if (pays && cmd->paid_at <= cur->paid_before)
    return refuse(out, CTXD_ESTATE, "cannot pay a case with a payment known before its opening");
  int gives = actions[cmd->action].agent != TAKES_NO_AGENT;
  if (gives) {
    int rc = agent_check(cur, cmd->action, cmd->agent, out);
    if (rc != 0) return rc;
  }
  memset(out, 0, sizeof *out);
  case_aggregate_t *n = &out->next;
  *n = *cur;
  if (actions[cmd->action].to != SAME) n->status = actions[cmd->action].to;
  /* a taker outside every skill group keeps the case in its group */
  const char *group = gives && nonempty(cmd->agent->group_id) ? cmd->agent->group_id : cur->group_id;
  if (gives && (case_text_copy(n->agent_id, sizeof n->agent_id, cmd->agent->id) != 0 ||
                case_text_copy(n->group_id, sizeof n->group_id, group) != 0))
    return refuse(out, CTXD_ETOOBIG, "cannot %s a case: agent or group id longer than %d bytes", verb,
                  CASE_ID_LEN - 1);
  if (actions[cmd->action].urges) {
    n->urge_count++;
    n->last_urged_at = cmd->at;
  }
  if (pays) n->pay_status = CASE_PAY_PAID;
  n->updated_at = cmd->at;
  n->version++;
  /* taking over someone else's case says so in the log when the taker adds no note */
  char taken[CASE_TEXT_LEN];
  const char *note = cmd->note;
  if (actions[cmd->action].agent == TAKES_TAKER && !nonempty(note) && nonempty(cur->agent_id) &&
      strcmp(cur->agent_id, n->agent_id) != 0) {
    snprintf(taken, sizeof taken, "taken over from %s", cur->agent_id);
    note = taken;
  }
  return record(out, cmd->action, cmd->actor, note, cur->status, cmd->at);
}
