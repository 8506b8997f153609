/* Case: when automation fails, a case is opened for a human agent (seed 002).
 *
 * Everything arrives on one endpoint: Fulfillment's FulfillmentFailed (opens a case, once
 * per fulfillment), OpenCase, the case commands (assign, accept, transfer, process, reject
 * back, complete, close, refuse, urge), the agent desk's AgentOnDuty / AgentOffDuty, and
 * the skill-group and distribution-rule definitions, and what the neighbours publish for
 * the creation checks and the pay status (CompensationStatusChanged and OrderCreated into
 * the read model of related documents, Paying's OrderPayFinished). The pure domain (domain.h) decides
 * every change; the repository (repo.h) keeps all state in the database, so the handlers
 * may run on several workers at once. An accepted action updates the case (optimistic
 * version), appends to its operation log, publishes CaseStatusChanged (and CaseResolved
 * when the case ends) and answers CaseCommandAccepted; a refused one is handled, not
 * failed: CaseCommandRejected names the current status, at the request's responseAddress
 * or published when it has none. New cases, and waiting ones when an agent comes on
 * duty, are distributed automatically (rules by priority, round robin or least loaded,
 * on-duty agents only, the agent who handled the same order first, then the same carrier). */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include <ctxd/ctxd.h>

#include "ctxd_contracts.h"
#include "domain.h"
#include "repo.h"

typedef struct {
  const char *endpoint;
  const char *default_skill_group;
  int64_t fulfillment_case_type;
  const char *categories;
} settings_t;

/* Qualifying (problem category, kind of document) pairs the settings may list. */
#define CASE_CATEGORIES_MAX 64

typedef struct {
  const ctxd_api_t *api;
  ctxd_plugin_t *plugin;
  const settings_t *settings;
  case_category_t categories[CASE_CATEGORIES_MAX];
  size_t n_categories;
} state_t;

static const ctxd_conf_entry_t config_map[] = {
    {CTXD_CONF_STR, "endpoint", "case", offsetof(settings_t, endpoint),
     "queue receiving the case commands and the events Case reacts to"},
    {CTXD_CONF_STR, "default_skill_group", "", offsetof(settings_t, default_skill_group),
     "skill group id (uuid) that gets, by round robin, the cases no rule matches (\"\": they wait)"},
    {CTXD_CONF_INT, "fulfillment_case_type", "1", offsetof(settings_t, fulfillment_case_type),
     "CaseType of the cases opened for a FulfillmentFailed (rules match it as feature CaseType)"},
    {CTXD_CONF_STR, "categories", "1:fulfillment,compensation,order", offsetof(settings_t, categories),
     "the problem categories (CaseType) OpenCase may open for each kind of related document,"
     " \"<CaseType>:<kind>[,<kind>...][;...]\"; kinds: fulfillment, compensation, order"},
    {0, NULL, NULL, 0, NULL},
};

static const ctxd_migration_t migrations[] = {
    {1, "cases, operation log, agents, skill groups, distribution rules", CASE_REPO_DDL},
    {2, "pay status, auto-acceptance, carriers in the history, related documents", CASE_REPO_DDL_2},
    {3, "the orders' payment times, cases by related document", CASE_REPO_DDL_3},
    {0, NULL, NULL},
};

/* ---- one handler call -------------------------------------------------------------------- */

typedef struct {
  const state_t *st;
  const ctxd_api_t *api;
  ctxd_tx_t *tx;
  const ctxd_msg_t *msg;
  const char *fault_type; /* set when the message is refused for good, with fault */
  char fault[512];
} case_call_t;

static case_call_t case_call_begin(const state_t *st, ctxd_tx_t *tx, const ctxd_msg_t *msg) {
  return (case_call_t){.st = st, .api = st->api, .tx = tx, .msg = msg};
}

/* Says why the message can never succeed; returns CTXD_EINVAL for the caller to pass up. */
__attribute__((format(printf, 3, 4))) static int case_call_fail(case_call_t *x, const char *type,
                                                                const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(x->fault, sizeof x->fault, fmt, ap);
  va_end(ap);
  x->fault_type = type;
  return CTXD_EINVAL;
}

static ctxd_handler_result_t case_call_end(case_call_t *x, int rc) {
  if (rc == 0) return CTXD_HANDLER_OK;
  if (rc == CTXD_ECONFLICT) {
    /* another worker changed the same rows: decide again on what it committed */
    x->api->tx_fault(x->tx, "Case.Conflict", "concurrent change of the same case, agent or cursor");
    return CTXD_HANDLER_RETRY;
  }
  if (x->fault_type == NULL) {
    x->fault_type = "Case.Failed";
    snprintf(x->fault, sizeof x->fault, "%s",
             x->api->tx_error(x->tx)[0] ? x->api->tx_error(x->tx) : ctxd_strerror(rc));
  }
  x->api->tx_fault(x->tx, x->fault_type, x->fault);
  return CTXD_HANDLER_FAIL;
}

/* ---- time and text --------------------------------------------------------------------------- */

static int64_t case_clock_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Epoch milliseconds as the contracts' ISO 8601 (UTC). */
static void case_time_format(int64_t ms, char out[32]) {
  time_t t = (time_t)(ms / 1000);
  struct tm tm;
  gmtime_r(&t, &tm);
  size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(out + n, 32 - n, ".%03dZ", (int)(ms % 1000));
}

/* Copies at most max_chars characters of src into dst[cap], cut at a character boundary:
 * the contracts allow longer free texts than the domain keeps, and they only inform. */
static void case_text_clip(char *dst, size_t cap, const char *src, size_t max_chars) {
  size_t n = 0, chars = 0;
  for (src = src != NULL ? src : ""; src[n] != '\0' && chars < max_chars; chars++) {
    size_t len = 1;
    while (((unsigned char)src[n + len] & 0xC0) == 0x80) len++; /* continuation bytes */
    if (n + len >= cap) break;
    n += len;
  }
  memcpy(dst, src, n);
  dst[n] = '\0';
}

/* Domain ids came from the contracts' UUIDs: they fit a UUID field. */
static void case_uuid_copy(ctxd_c_uuid_t dst, const char *src) {
  size_t n = strnlen(src, sizeof(ctxd_c_uuid_t) - 1);
  memcpy(dst, src, n);
  dst[n] = '\0';
}

/* ---- the contracts' numbers ------------------------------------------------------------------ */

/* The contracts list the statuses in the domain's order, from 1, and the released contract
 * cannot gain one: a status added to the domain or reordered breaks the build here. */
_Static_assert((int)CASE_STATUS_WAIT_DISTRIBUTION + 1 ==
                       (int)CTXD_C_CASE_V1_CASE_STATUS_CHANGED_NEW_STATUS_WAIT_DISTRIBUTION &&
                   (int)CASE_STATUS_COUNT == (int)CTXD_C_CASE_V1_CASE_STATUS_CHANGED_NEW_STATUS_REJECTED,
               "case statuses and CaseStatusChanged.NewStatus differ");
static int32_t case_status_number(case_status_t s) { return (int32_t)s + 1; }

/* CaseStatusChanged.PayStatus of the domain's pay status. */
static const int32_t case_pay_status_wire[CASE_PAY_COUNT] = {
    [CASE_PAY_NOT_REQUIRED] = CTXD_C_CASE_V1_CASE_STATUS_CHANGED_PAY_STATUS_NOT_REQUIRED,
    [CASE_PAY_UNPAID] = CTXD_C_CASE_V1_CASE_STATUS_CHANGED_PAY_STATUS_UNPAID,
    [CASE_PAY_PAID] = CTXD_C_CASE_V1_CASE_STATUS_CHANGED_PAY_STATUS_PAID,
};

static const int32_t case_action_wire[CASE_ACTION_COUNT] = {
    [CASE_ACTION_OPEN] = CTXD_C_CASE_V1_CASE_STATUS_CHANGED_ACTION_OPEN,
    [CASE_ACTION_ASSIGN] = CTXD_C_CASE_V1_CASE_STATUS_CHANGED_ACTION_ASSIGN,
    /* the contract does not tell assignment by hand from automatic assignment */
    [CASE_ACTION_APPOINT] = CTXD_C_CASE_V1_CASE_STATUS_CHANGED_ACTION_ASSIGN,
    [CASE_ACTION_ACCEPT] = CTXD_C_CASE_V1_CASE_STATUS_CHANGED_ACTION_ACCEPT,
    [CASE_ACTION_TRANSFER] = CTXD_C_CASE_V1_CASE_STATUS_CHANGED_ACTION_TRANSFER,
    [CASE_ACTION_PROCESS] = CTXD_C_CASE_V1_CASE_STATUS_CHANGED_ACTION_PROCESS,
    [CASE_ACTION_REJECT_BACK] = CTXD_C_CASE_V1_CASE_STATUS_CHANGED_ACTION_REJECT_BACK,
    [CASE_ACTION_COMPLETE] = CTXD_C_CASE_V1_CASE_STATUS_CHANGED_ACTION_COMPLETE,
    [CASE_ACTION_CLOSE] = CTXD_C_CASE_V1_CASE_STATUS_CHANGED_ACTION_CLOSE,
    [CASE_ACTION_REFUSE] = CTXD_C_CASE_V1_CASE_STATUS_CHANGED_ACTION_REFUSE,
    [CASE_ACTION_URGE] = CTXD_C_CASE_V1_CASE_STATUS_CHANGED_ACTION_URGE,
};

/* CaseResolved.Outcome of a final status; 0 for a status the case goes on from. */
static int32_t case_resolution_outcome(case_status_t s) {
  static const int32_t outcomes[CASE_STATUS_COUNT] = {
      [CASE_STATUS_FINISHED] = CTXD_C_CASE_V1_CASE_RESOLVED_OUTCOME_FINISHED,
      [CASE_STATUS_CLOSED] = CTXD_C_CASE_V1_CASE_RESOLVED_OUTCOME_CLOSED,
      [CASE_STATUS_REJECTED] = CTXD_C_CASE_V1_CASE_RESOLVED_OUTCOME_REJECTED,
  };
  return (unsigned)s < CASE_STATUS_COUNT ? outcomes[s] : 0;
}

/* FulfillmentFailed.Strategy (1..3) as the domain's strategy. */
static const case_strategy_t case_fulfillment_strategies[] = {
    [CTXD_C_FULFILLMENT_V1_FULFILLMENT_FAILED_STRATEGY_PRODUCT_REFUND] = CASE_STRATEGY_REFUND,
    [CTXD_C_FULFILLMENT_V1_FULFILLMENT_FAILED_STRATEGY_RESHIP] = CASE_STRATEGY_RESHIP,
    [CTXD_C_FULFILLMENT_V1_FULFILLMENT_FAILED_STRATEGY_NON_PRODUCT] = CASE_STRATEGY_NON_PRODUCT,
};

/* ---- outgoing messages ----------------------------------------------------------------------- */

/* Writes an outgoing message (and frees body): a reply goes to the request's
 * responseAddress, or is published when the request has none; an event is published. */
static int case_message_write(case_call_t *x, const char *type, char *body, int reply) {
  if (body == NULL)
    return case_call_fail(x, "Case.Contract", "%s could not be encoded: a value breaks its contract", type);
  ctxd_out_msg_t out = {.size = sizeof out, .message_type = type, .body = body};
  int rc = reply ? x->api->respond(x->tx, &out) : x->api->publish(x->tx, &out);
  if (rc == CTXD_ENOENT) rc = x->api->publish(x->tx, &out); /* no responseAddress */
  free(body);
  return rc;
}

static int case_opened_publish(case_call_t *x, const case_record_t *rec) {
  char at[32];
  case_time_format(rec->agg.opened_at, at);
  ctxd_c_case_v1_case_opened_t e = {
      .case_type = rec->case_type,
      .related_biz_type = (char *)rec->related_biz_type,
      .related_biz_id = (char *)rec->related_biz_id,
      .order_number = rec->order_number[0] ? (char *)rec->order_number : NULL,
      .subject = (char *)rec->subject,
      .opened_by = (char *)rec->opened_by,
      .opened_at = at,
      .has_need_pay = true,
      .need_pay = rec->agg.pay_status != CASE_PAY_NOT_REQUIRED,
      .has_auto_accept = true,
      .auto_accept = rec->agg.auto_accept != 0,
  };
  case_uuid_copy(e.case_id, rec->agg.case_id);
  return case_message_write(x, CTXD_C_CASE_V1_CASE_OPENED_TYPE, ctxd_c_case_v1_case_opened_encode(&e), 0);
}

static int case_status_changed_publish(case_call_t *x, const case_record_t *rec, const case_outcome_t *out) {
  const case_event_t *ev = &out->event;
  char changed[32], appointed[32];
  case_time_format(ev->at, changed);
  case_time_format(rec->appointed_at, appointed);
  ctxd_c_case_v1_case_status_changed_t e = {
      .has_old_status = ev->from != CASE_STATUS_NONE,
      .old_status = ev->from != CASE_STATUS_NONE ? case_status_number(ev->from) : 0,
      .new_status = case_status_number(ev->to),
      .action = case_action_wire[ev->action],
      .case_type = rec->case_type,
      .operator_id = (char *)out->log.actor,
      .has_follower = ev->agent_id[0] != '\0',
      .follower = {.agent_id = (char *)ev->agent_id},
      .appoint_time = rec->appointed_at ? appointed : NULL,
      .version = rec->agg.version,
      .changed_at = changed,
      .has_pay_status = true,
      .pay_status = case_pay_status_wire[rec->agg.pay_status],
  };
  case_uuid_copy(e.case_id, ev->case_id);
  case_uuid_copy(e.follower.skill_group_id, ev->group_id);
  return case_message_write(x, CTXD_C_CASE_V1_CASE_STATUS_CHANGED_TYPE,
                            ctxd_c_case_v1_case_status_changed_encode(&e), 0);
}

/* The opener learns how its case ended (Fulfillment resolves the failed fulfillment). */
static int case_resolved_publish(case_call_t *x, const case_record_t *rec) {
  char at[32];
  case_time_format(rec->agg.updated_at, at);
  ctxd_c_case_v1_case_resolved_t e = {
      .related_biz_type = (char *)rec->related_biz_type,
      .related_biz_id = (char *)rec->related_biz_id,
      .outcome = case_resolution_outcome(rec->agg.status),
      .agent_id = rec->agg.agent_id[0] ? (char *)rec->agg.agent_id : NULL,
      .resolved_at = at,
  };
  case_uuid_copy(e.case_id, rec->agg.case_id);
  return case_message_write(x, CTXD_C_CASE_V1_CASE_RESOLVED_TYPE, ctxd_c_case_v1_case_resolved_encode(&e), 0);
}

static int case_accepted_reply(case_call_t *x, const case_record_t *rec) {
  ctxd_c_case_v1_case_command_accepted_t a = {.status = case_status_number(rec->agg.status),
                                              .version = rec->agg.version};
  case_uuid_copy(a.case_id, rec->agg.case_id);
  /* accepted replies only go to a requester: nobody else waits for them */
  ctxd_out_msg_t out = {.size = sizeof out,
                        .message_type = CTXD_C_CASE_V1_CASE_COMMAND_ACCEPTED_TYPE,
                        .body = ctxd_c_case_v1_case_command_accepted_encode(&a)};
  if (out.body == NULL) return CTXD_ENOMEM;
  int rc = x->api->respond(x->tx, &out);
  free((char *)out.body);
  return rc == CTXD_ENOENT ? 0 : rc;
}

/* A refusal, naming the case's current status when there is a case (rec non-NULL). A
 * reason v1 has is answered as v1, which released requesters (the agent desk, the
 * simulator) understand; only the reasons v1 lacks need v2. */
static int case_rejected_reply(case_call_t *x, const char *case_id, int32_t reason, const char *text,
                               const case_record_t *rec) {
  ctxd_c_case_v2_case_command_rejected_t r = {
      .reason = reason,
      .message = (char *)text,
      .has_status = rec != NULL,
      .status = rec != NULL ? case_status_number(rec->agg.status) : 0,
  };
  case_uuid_copy(r.case_id, case_id);
  x->api->log(x->st->plugin, x->msg, CTXD_LOG_INFO, "command rejected: %s", text);
  if (ctxd_c_case_v1_case_command_rejected_reason_name(reason) == NULL)
    return case_message_write(x, CTXD_C_CASE_V2_CASE_COMMAND_REJECTED_TYPE,
                              ctxd_c_case_v2_case_command_rejected_encode(&r), 1);
  ctxd_c_case_v1_case_command_rejected_t v1 = {
      .reason = r.reason, .message = r.message, .has_status = r.has_status, .status = r.status};
  memcpy(v1.case_id, r.case_id, sizeof v1.case_id);
  return case_message_write(x, CTXD_C_CASE_V1_CASE_COMMAND_REJECTED_TYPE,
                            ctxd_c_case_v1_case_command_rejected_encode(&v1), 1);
}

/* ---- recording accepted actions -------------------------------------------------------------- */

/* The operation log and the public events of the action that made rec's current version. */
static int case_action_record(case_call_t *x, const case_record_t *rec, const case_outcome_t *out) {
  int rc = case_repo_log_append(x->api, x->tx, rec, &out->log);
  /* a payment changes no status: the contract has no action for it, the next event shows it */
  if (rc == 0 && case_action_wire[out->log.action] != 0) rc = case_status_changed_publish(x, rec, out);
  if (rc == 0 && out->log.from != out->log.to && case_resolution_outcome(out->log.to) != 0)
    rc = case_resolved_publish(x, rec);
  return rc;
}

/* An agent holds a case from assignment until it ends: what "open cases" counts. */
static int case_hold_open(const case_aggregate_t *c) {
  return c->agent_id[0] != '\0' && case_resolution_outcome(c->status) == 0;
}

/* Stores an accepted action on rec (the case as loaded; it becomes out->next): the row if
 * nobody changed it meanwhile, the log and events, the agents' loads and, when the case
 * changes hands, the order history for the same-order preference. */
static int case_outcome_commit(case_call_t *x, case_record_t *rec, const case_outcome_t *out) {
  const case_aggregate_t *next = &out->next;
  char before[CASE_ID_LEN];
  memcpy(before, rec->agg.agent_id, sizeof before);
  int held = case_hold_open(&rec->agg), holds = case_hold_open(next),
      handed = strcmp(before, next->agent_id) != 0;
  int64_t old_version = rec->agg.version;
  rec->agg = *next;
  if (handed) rec->appointed_at = next->agent_id[0] ? out->log.at : 0;
  int rc = case_repo_update(x->api, x->tx, rec, old_version);
  if (rc == 0) rc = case_action_record(x, rec, out);
  if (rc == 0 && held && (!holds || handed)) rc = case_repo_agent_load_add(x->api, x->tx, before, -1);
  if (rc == 0 && holds && (!held || handed)) rc = case_repo_agent_load_add(x->api, x->tx, next->agent_id, 1);
  if (rc == 0 && handed && next->agent_id[0])
    rc = case_repo_history_touch(x->api, x->tx, next->order_id, case_feature_get(next, CASE_FEATURE_CARRIER),
                                 next->agent_id, out->log.at);
  return rc;
}

/* Auto-acceptance (autoAcceptCoordinationFlag): a case whose work is done, and paid when it
 * needs to be, is completed at once, logged as done by "auto-acceptance". */
static int case_auto_accept(case_call_t *x, case_record_t *rec) {
  if (!case_auto_accept_due(&rec->agg)) return 0;
  case_action_cmd_t cmd = {
      .action = CASE_ACTION_COMPLETE, .actor = "auto-acceptance", .at = case_clock_now()};
  case_outcome_t out;
  if (case_aggregate_apply(&rec->agg, &cmd, &out) != 0)
    return case_call_fail(x, "Case.AutoAccept", "%s", out.rejection);
  return case_outcome_commit(x, rec, &out);
}

/* A JSON array holding the carrier of c, or empty: the history distribution loads. A new
 * reference, the caller's to json_decref (NULL when memory ran out). */
static json_t *case_carriers(const case_aggregate_t *c) {
  const char *carrier = case_feature_get(c, CASE_FEATURE_CARRIER);
  return carrier != NULL && carrier[0] ? json_pack("[s]", carrier) : json_array();
}

/* ---- automatic distribution ------------------------------------------------------------------ */

static int case_agent_assign(case_call_t *x, case_record_t *rec, const case_agent_t *agent) {
  case_action_cmd_t cmd = {
      .action = CASE_ACTION_ASSIGN, .actor = "distribution", .at = case_clock_now(), .agent = agent};
  case_outcome_t out;
  if (case_aggregate_apply(&rec->agg, &cmd, &out) != 0)
    return case_call_fail(x, "Case.Distribution", "%s", out.rejection);
  return case_outcome_commit(x, rec, &out);
}

/* The domain rule that matches c (*found 0: none), looking at the rules alone. */
static int case_rule_match(const case_roster_store_t *s, const case_aggregate_t *c, size_t *rule,
                           int *found) {
  case_roster_t rules_only = {.rules = s->roster.rules, .n_rules = s->roster.n_rules};
  case_pick_t p = {0};
  int rc = case_distribution_pick(&rules_only, c, &p);
  *found = rc == 0 && p.outcome != CASE_PICK_NO_RULE;
  *rule = p.rule;
  return rc;
}

/* A new case: the matching rule's group is locked, then the domain picks among its agents.
 * Without a rule or an agent on duty the case waits in WaitDistribution. */
static int case_distribution_run(case_call_t *x, case_record_t *rec) {
  case_roster_store_t s = {0};
  size_t rule = 0;
  int found = 0;
  case_pick_t p = {.outcome = CASE_PICK_NO_RULE};
  int rc = case_repo_rules_load(x->api, x->tx, x->st->settings->default_skill_group, &s);
  if (rc == 0) rc = case_rule_match(&s, &rec->agg, &rule, &found);
  if (rc == 0 && found) {
    const char *group = s.rules[rule].group_id;
    json_t *orders = json_pack("[s]", rec->agg.order_id), *carriers = case_carriers(&rec->agg);
    rc = orders != NULL && carriers != NULL ? case_repo_cursor_lock(x->api, x->tx, group, &s) : CTXD_ENOMEM;
    if (rc == 0) rc = case_repo_agents_load(x->api, x->tx, group, &s);
    if (rc == 0 && s.prefer[rule]) rc = case_repo_history_load(x->api, x->tx, orders, carriers, &s);
    if (rc == 0) rc = case_distribution_pick(&s.roster, &rec->agg, &p);
    json_decref(orders);
    json_decref(carriers);
  }
  if (rc == 0 && p.outcome == CASE_PICK_ASSIGNED) rc = case_agent_assign(x, rec, p.agent);
  if (rc == 0 && p.outcome == CASE_PICK_ASSIGNED && p.cursor_moved)
    rc = case_repo_cursor_store(x->api, x->tx, &p.cursor);
  case_roster_store_free(&s);
  return rc;
}

/* Agent agent_id of group_id came on duty: the waiting cases whose rule sends them to that
 * group are handed out, oldest first, as case_distribution_on_duty decides. */
static int case_arrival_distribute(case_call_t *x, const char *agent_id, const char *group_id) {
  case_roster_store_t s = {0};
  case_record_t *waiting = NULL;
  case_aggregate_t *cases = NULL;
  case_assignment_t *made = NULL;
  size_t n = 0, n_made = 0;
  json_t *orders = json_array(), *carriers = json_array();
  int rc =
      orders != NULL && carriers != NULL ? case_repo_cursor_lock(x->api, x->tx, group_id, &s) : CTXD_ENOMEM;
  if (rc == 0) rc = case_repo_rules_load(x->api, x->tx, x->st->settings->default_skill_group, &s);
  if (rc == 0) rc = case_repo_agents_load(x->api, x->tx, group_id, &s);
  if (rc == 0) rc = case_repo_waiting(x->api, x->tx, &waiting, &n);
  if (rc == 0 && n > 0 &&
      ((cases = calloc(n, sizeof *cases)) == NULL || (made = calloc(n, sizeof *made)) == NULL))
    rc = CTXD_ENOMEM;
  /* the history of the orders (and carriers) whose rule prefers their previous agent */
  for (size_t i = 0; rc == 0 && i < n; i++) {
    size_t rule;
    int found;
    cases[i] = waiting[i].agg;
    rc = case_rule_match(&s, &cases[i], &rule, &found);
    const char *carrier = case_feature_get(&cases[i], CASE_FEATURE_CARRIER);
    if (rc == 0 && found && s.prefer[rule] && strcmp(s.rules[rule].group_id, group_id) == 0 &&
        (json_array_append_new(orders, json_string(cases[i].order_id)) != 0 ||
         (carrier != NULL && carrier[0] && json_array_append_new(carriers, json_string(carrier)) != 0)))
      rc = CTXD_ENOMEM;
  }
  if (rc == 0) rc = case_repo_history_load(x->api, x->tx, orders, carriers, &s);
  const case_agent_t *arrived = NULL;
  for (size_t i = 0; rc == 0 && i < s.roster.n_agents; i++)
    if (strcmp(s.agents[i].id, agent_id) == 0) arrived = &s.agents[i];
  case_cursor_t cursor;
  int moved = 0;
  if (rc == 0 && arrived != NULL)
    rc = case_distribution_on_duty(&s.roster, arrived, cases, n, made, &n_made, &cursor, &moved);
  for (size_t i = 0; rc == 0 && i < n_made; i++)
    rc = case_agent_assign(x, &waiting[made[i].case_index], made[i].agent);
  if (rc == 0 && moved) rc = case_repo_cursor_store(x->api, x->tx, &cursor);
  json_decref(orders);
  json_decref(carriers);
  free(made);
  free(cases);
  free(waiting);
  case_roster_store_free(&s);
  return rc;
}

/* ---- opening cases ----------------------------------------------------------------------------- */

static int case_feature_set(case_call_t *x, case_feature_t *f, const char *key, const char *value) {
  if (strlen(key) >= sizeof f->key || strlen(value) >= sizeof f->value)
    return case_call_fail(x, "Case.Invalid",
                          "feature %.64s: name longer than %zu or value longer than %zu bytes", key,
                          sizeof f->key - 1, sizeof f->value - 1);
  memcpy(f->key, key, strlen(key) + 1);
  memcpy(f->value, value, strlen(value) + 1);
  return 0;
}

/* Opens the case cmd describes (rec holds what the contracts add), publishes CaseOpened and
 * the opening, then distributes it. *opened is 0 when the case id exists already: nothing
 * is written then. */
static int case_record_open(case_call_t *x, case_record_t *rec, const case_open_cmd_t *cmd,
                            const char *detail, int *opened) {
  case_outcome_t out;
  *opened = 0;
  if (case_aggregate_open(cmd, &out) != 0) return case_call_fail(x, "Case.Invalid", "%s", out.rejection);
  rec->agg = out.next;
  int rc = case_repo_insert(x->api, x->tx, rec, detail, opened);
  if (rc == 0 && *opened) rc = case_opened_publish(x, rec);
  if (rc == 0 && *opened) rc = case_action_record(x, rec, &out);
  if (rc == 0 && *opened) rc = case_distribution_run(x, rec);
  return rc;
}

/* A failed fulfillment gets one case, whose id is the fulfillment's: a second
 * FulfillmentFailed for it opens nothing. The contract names no order, so the compensation
 * stands for it in the same-order preference, and no amount (0). */
static int case_fulfillment_open(case_call_t *x, const ctxd_c_fulfillment_v1_fulfillment_failed_t *m) {
  const settings_t *set = x->st->settings;
  case_record_t rec;
  memset(&rec, 0, sizeof rec);
  rec.case_type = set->fulfillment_case_type;
  snprintf(rec.related_biz_type, sizeof rec.related_biz_type, "fulfillment");
  snprintf(rec.related_biz_id, sizeof rec.related_biz_id, "%s", m->fulfillment_id);
  snprintf(rec.compensation_id, sizeof rec.compensation_id, "%s", m->compensation_id);
  snprintf(rec.opened_by, sizeof rec.opened_by, "fulfillment");
  char subject[CASE_SUBJECT_LEN], reason[CASE_TEXT_LEN], type[24];
  /* 20 characters of prefix and the clip keep well inside subject's bytes */
  snprintf(subject, sizeof subject, "Fulfillment failed: %s", m->reason);
  case_text_clip(rec.subject, sizeof rec.subject, subject, CASE_SUBJECT_CHARS);
  case_text_clip(reason, sizeof reason, m->reason, SIZE_MAX);
  snprintf(type, sizeof type, "%" PRId64, set->fulfillment_case_type);
  case_feature_t extra[1];
  int rc = case_feature_set(x, &extra[0], "CaseType", type), opened = 0;
  case_open_cmd_t cmd = {
      .case_id = m->fulfillment_id,
      .order_id = m->compensation_id,
      .fulfillment_id = m->fulfillment_id,
      .compensation_id = m->compensation_id,
      .strategy = case_fulfillment_strategies[m->strategy],
      .amount = 0,
      .reason = reason,
      .features = extra,
      .n_features = 1,
      .at = case_clock_now(),
  };
  /* the event is the document: a later OpenCase about this fulfillment finds it */
  if (rc == 0) rc = case_repo_document_put(x->api, x->tx, "fulfillment", m->fulfillment_id, "Failed", 1, 1);
  if (rc == 0) rc = case_record_open(x, &rec, &cmd, m->reason, &opened);
  if (rc == 0 && !opened)
    x->api->log(x->st->plugin, x->msg, CTXD_LOG_INFO, "fulfillment %s has its case already",
                m->fulfillment_id);
  return rc;
}

/* A fulfillment carried out or given up is decided for good: no case may be opened about
 * it any more (a case finishing after it was given up would say compensated while the
 * compensation says Terminated). Version 2: after the failure that made it valid (1). */
/* An ended fulfillment's event: the typed decode, then its id into the read model. */
#define CASE_FULFILLMENT_ENDED(fn, type, STATUS)                                                             \
  static ctxd_handler_result_t fn(ctxd_tx_t *tx, const ctxd_msg_t *msg, void *data) {                        \
    case_call_t x = case_call_begin(data, tx, msg);                                                          \
    size_t len;                                                                                              \
    type##_t m;                                                                                              \
    const char *body = x.api->msg_body(msg, &len);                                                           \
    int rc = type##_decode(body, len, &m, x.fault, sizeof x.fault);                                          \
    if (rc != 0)                                                                                             \
      x.fault_type = "Case.Malformed";                                                                       \
    else                                                                                                     \
      rc = case_repo_document_put(x.api, tx, "fulfillment", m.fulfillment_id, STATUS, 0, 2);                 \
    type##_free(&m);                                                                                         \
    return case_call_end(&x, rc);                                                                            \
  }
/* A fulfillment carried out or given up is decided for good: no case may be opened about
 * it any more (a case finishing after it was given up would say compensated while the
 * compensation says Terminated). Version 2: after the failure that made it valid (1). */
CASE_FULFILLMENT_ENDED(on_fulfillment_succeeded, ctxd_c_fulfillment_v1_fulfillment_succeeded, "Succeeded")
CASE_FULFILLMENT_ENDED(on_fulfillment_abandoned, ctxd_c_fulfillment_v1_fulfillment_abandoned, "Abandoned")

static ctxd_handler_result_t on_fulfillment_failed(ctxd_tx_t *tx, const ctxd_msg_t *msg, void *data) {
  case_call_t x = case_call_begin(data, tx, msg);
  size_t len;
  ctxd_c_fulfillment_v1_fulfillment_failed_t m;
  const char *body = x.api->msg_body(msg, &len);
  int rc = ctxd_c_fulfillment_v1_fulfillment_failed_decode(body, len, &m, x.fault, sizeof x.fault);
  if (rc != 0)
    x.fault_type = "Case.Malformed";
  else
    rc = case_fulfillment_open(&x, &m);
  ctxd_c_fulfillment_v1_fulfillment_failed_free(&m);
  return case_call_end(&x, rc);
}

/* The seed's creation checks (创建协同单) on what the read model knows of the related
 * document and on the category table; a refusal is answered and *refused set. */
static int case_open_checks(case_call_t *x, const ctxd_c_case_v1_open_case_t *m, int *refused) {
  static const struct {
    int rc;
    int32_t reason;
  } reasons[] = {
      {CTXD_ENOENT, CTXD_C_CASE_V2_CASE_COMMAND_REJECTED_REASON_RELATED_BIZ_UNKNOWN},
      {CTXD_ESTATE, CTXD_C_CASE_V2_CASE_COMMAND_REJECTED_REASON_RELATED_BIZ_INVALID},
      {CTXD_ERANGE, CTXD_C_CASE_V2_CASE_COMMAND_REJECTED_REASON_CATEGORY_NOT_QUALIFIED},
  };
  case_open_check_t chk = {.case_type = m->case_type,
                           .related_biz_type = m->related_biz_type,
                           .related_biz_id = m->related_biz_id,
                           .categories = x->st->categories,
                           .n_categories = x->st->n_categories};
  char status[CASE_REF_LEN], open_case[CASE_ID_LEN], why[CASE_REJECTION_LEN + 3 * CASE_REF_LEN];
  int rc = case_repo_document_get(x->api, x->tx, m->related_biz_type, m->related_biz_id, &chk.doc, status,
                                  sizeof status);
  if (rc == 0)
    rc = case_repo_open_case_find(x->api, x->tx, m->related_biz_type, m->related_biz_id, open_case,
                                  sizeof open_case);
  chk.doc_status = status;
  chk.open_case_id = open_case;
  if (rc == 0) rc = case_open_qualify(&chk, why, sizeof why);
  *refused = 0;
  for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++)
    if (reasons[i].rc == rc) {
      *refused = 1;
      return case_rejected_reply(x, m->case_id, reasons[i].reason, why, NULL);
    }
  return rc;
}

/* OpenCase: the opener chose the case id, so a retried command finds its case and gets
 * the same answer; the same id with other data is refused (AlreadyExists). The features
 * "strategy" and "amount" are the domain's own; without a strategy the case is taken as
 * non-product (nothing to refund or ship). */
static int case_open_command_decide(case_call_t *x, const ctxd_c_case_v1_open_case_t *m) {
  case_record_t rec;
  memset(&rec, 0, sizeof rec);
  rec.case_type = m->case_type;
  snprintf(rec.related_biz_type, sizeof rec.related_biz_type, "%s", m->related_biz_type);
  snprintf(rec.related_biz_id, sizeof rec.related_biz_id, "%s", m->related_biz_id);
  if (strcmp(m->related_biz_type, "compensation") == 0)
    snprintf(rec.compensation_id, sizeof rec.compensation_id, "%s", m->related_biz_id);
  snprintf(rec.order_number, sizeof rec.order_number, "%s", m->order_number != NULL ? m->order_number : "");
  snprintf(rec.subject, sizeof rec.subject, "%s", m->subject);
  snprintf(rec.opened_by, sizeof rec.opened_by, "%s", m->opened_by);
  char reason[CASE_TEXT_LEN], type[24];
  case_text_clip(reason, sizeof reason, m->subject, SIZE_MAX);
  snprintf(type, sizeof type, "%" PRId64, m->case_type);
  case_feature_t extra[1 + 32]; /* CaseType and the contract's at most 32 */
  size_t n = 0;
  case_strategy_t strategy = CASE_STRATEGY_NON_PRODUCT;
  int64_t amount = 0;
  int rc = case_feature_set(x, &extra[n++], "CaseType", type);
  for (size_t i = 0; rc == 0 && i < m->features_count && n < sizeof extra / sizeof extra[0]; i++) {
    const ctxd_c_case_v1_open_case_features_item_t *f = &m->features[i];
    if (strcmp(f->name, "strategy") == 0) {
      if (case_strategy_parse(f->value, &strategy) != 0)
        rc = case_call_fail(x, "Case.Invalid",
                            "feature strategy: '%.64s' is not refund, reship or non_product", f->value);
    } else if (strcmp(f->name, "amount") == 0) {
      char *end;
      amount = strtoll(f->value, &end, 10);
      if (amount < 0 || *end != '\0' || f->value[0] == '\0')
        rc = case_call_fail(x, "Case.Invalid", "feature amount: '%.64s' is not an amount in minor units",
                            f->value);
    } else {
      rc = case_feature_set(x, &extra[n++], f->name, f->value);
    }
  }
  const char *order = rec.order_number[0] ? rec.order_number : rec.related_biz_id;
  case_open_cmd_t cmd = {
      .case_id = m->case_id,
      .order_id = order,
      .fulfillment_id = m->related_biz_id,
      .compensation_id = m->related_biz_id, /* the domain wants one (repo.h) */
      .strategy = strategy,
      .amount = amount,
      .reason = reason,
      .features = extra,
      .n_features = n,
      .at = case_clock_now(),
      .need_pay = m->has_need_pay && m->need_pay,
      .auto_accept = m->has_auto_accept && m->auto_accept,
  };
  /* a retried command finds its case: the checks were passed when it opened */
  case_record_t old;
  int found = 0, opened = 0, refused = 0;
  if (rc == 0) rc = case_repo_load(x->api, x->tx, m->case_id, &old, &found);
  if (rc == 0 && !found) rc = case_open_checks(x, m, &refused);
  if (rc != 0 || refused) return rc;
  /* the payments of the order known now are not the one this case waits for */
  if (!found && cmd.need_pay && rec.order_number[0])
    rc = case_repo_order_paid(x->api, x->tx, rec.order_number, 0, &cmd.paid_before);
  if (rc != 0) return rc;
  if (!found) {
    rc = case_record_open(x, &rec, &cmd, m->detail, &opened);
    if (rc != 0 || opened) return rc == 0 ? case_accepted_reply(x, &rec) : rc;
    rc = case_repo_load(x->api, x->tx, m->case_id, &old, &found);
    if (rc == 0 && !found) rc = CTXD_ECONFLICT; /* cannot be: the insert found it */
    if (rc != 0) return rc;
  }
  if (old.case_type == rec.case_type && strcmp(old.related_biz_type, rec.related_biz_type) == 0 &&
      strcmp(old.related_biz_id, rec.related_biz_id) == 0 && strcmp(old.order_number, rec.order_number) == 0)
    return case_accepted_reply(x, &old);
  char text[160];
  snprintf(text, sizeof text, "case %s exists with other data", m->case_id);
  return case_rejected_reply(x, m->case_id, CTXD_C_CASE_V2_CASE_COMMAND_REJECTED_REASON_ALREADY_EXISTS, text,
                             &old);
}

static ctxd_handler_result_t on_open_case(ctxd_tx_t *tx, const ctxd_msg_t *msg, void *data) {
  case_call_t x = case_call_begin(data, tx, msg);
  size_t len;
  ctxd_c_case_v1_open_case_t m;
  const char *body = x.api->msg_body(msg, &len);
  int rc = ctxd_c_case_v1_open_case_decode(body, len, &m, x.fault, sizeof x.fault);
  if (rc != 0)
    x.fault_type = "Case.Malformed";
  else
    rc = case_open_command_decide(&x, &m);
  ctxd_c_case_v1_open_case_free(&m);
  return case_call_end(&x, rc);
}

/* ---- case commands ------------------------------------------------------------------------------ */

/* What every case command says, whatever its contract calls it. */
typedef struct {
  ctxd_c_uuid_t case_id;
  char actor[CASE_REF_LEN];
  char note[CASE_TEXT_LEN];
  char agent_id[CASE_REF_LEN]; /* who receives the case: assign, transfer, accept */
  ctxd_c_uuid_t group_id;      /* AssignCase.SkillGroupId, "" when not given */
} case_request_t;

static void case_request_fill(case_request_t *r, const char *case_id, const char *actor, const char *note,
                              const char *agent_id, const char *group_id) {
  snprintf(r->case_id, sizeof r->case_id, "%s", case_id);
  snprintf(r->actor, sizeof r->actor, "%s", actor);
  case_text_clip(r->note, sizeof r->note, note, SIZE_MAX);
  snprintf(r->agent_id, sizeof r->agent_id, "%s", agent_id != NULL ? agent_id : "");
  snprintf(r->group_id, sizeof r->group_id, "%s", group_id != NULL ? group_id : "");
}

/* A decoder per command contract: the typed decode, then its fields into a request. */
#define CASE_REQUEST_DECODER(fn, type, ACTOR, NOTE, AGENT, GROUP)                                            \
  static int fn(const char *body, size_t len, case_request_t *r, char *err, size_t errlen) {                 \
    type##_t m;                                                                                              \
    int rc = type##_decode(body, len, &m, err, errlen);                                                      \
    if (rc == 0) case_request_fill(r, m.case_id, ACTOR, NOTE, AGENT, GROUP);                                 \
    type##_free(&m);                                                                                         \
    return rc;                                                                                               \
  }
CASE_REQUEST_DECODER(case_assign_decode, ctxd_c_case_v1_assign_case, m.operator_id, NULL, m.agent_id,
                     m.skill_group_id)
/* the taker is the actor and the agent who gets the case (the seed's followerValue) */
CASE_REQUEST_DECODER(case_accept_decode, ctxd_c_case_v1_accept_case, m.agent_id, NULL, m.agent_id, NULL)
CASE_REQUEST_DECODER(case_transfer_decode, ctxd_c_case_v1_transfer_case, m.operator_id, m.reason,
                     m.to_agent_id, NULL)
CASE_REQUEST_DECODER(case_process_decode, ctxd_c_case_v1_process_case, m.agent_id, m.result, NULL, NULL)
CASE_REQUEST_DECODER(case_reject_back_decode, ctxd_c_case_v1_reject_case_back, m.operator_id, m.reason, NULL,
                     NULL)
CASE_REQUEST_DECODER(case_complete_decode, ctxd_c_case_v1_complete_case, m.operator_id, NULL, NULL, NULL)
CASE_REQUEST_DECODER(case_close_decode, ctxd_c_case_v1_close_case, m.operator_id, m.reason, NULL, NULL)
CASE_REQUEST_DECODER(case_refuse_decode, ctxd_c_case_v1_refuse_case, m.agent_id, m.reason, NULL, NULL)
CASE_REQUEST_DECODER(case_urge_decode, ctxd_c_case_v1_urge_case, m.operator_id, m.message, NULL, NULL)
#undef CASE_REQUEST_DECODER

static const struct {
  const char *type;
  case_action_t action;
  int (*decode)(const char *body, size_t len, case_request_t *r, char *err, size_t errlen);
  int holder_acts; /* the contract's AgentId acts: it must be the agent holding the case */
} case_commands[] = {
    /* AssignCase is the supervisor's choice: status AppointProcess (the contract says so) */
    {CTXD_C_CASE_V1_ASSIGN_CASE_TYPE, CASE_ACTION_APPOINT, case_assign_decode, 0},
    {CTXD_C_CASE_V1_ACCEPT_CASE_TYPE, CASE_ACTION_ACCEPT, case_accept_decode, 0},
    {CTXD_C_CASE_V1_TRANSFER_CASE_TYPE, CASE_ACTION_TRANSFER, case_transfer_decode, 0},
    {CTXD_C_CASE_V1_PROCESS_CASE_TYPE, CASE_ACTION_PROCESS, case_process_decode, 1},
    {CTXD_C_CASE_V1_REJECT_CASE_BACK_TYPE, CASE_ACTION_REJECT_BACK, case_reject_back_decode, 0},
    {CTXD_C_CASE_V1_COMPLETE_CASE_TYPE, CASE_ACTION_COMPLETE, case_complete_decode, 0},
    {CTXD_C_CASE_V1_CLOSE_CASE_TYPE, CASE_ACTION_CLOSE, case_close_decode, 0},
    {CTXD_C_CASE_V1_REFUSE_CASE_TYPE, CASE_ACTION_REFUSE, case_refuse_decode, 1},
    {CTXD_C_CASE_V1_URGE_CASE_TYPE, CASE_ACTION_URGE, case_urge_decode, 0},
};
#define CASE_COMMAND_COUNT (sizeof case_commands / sizeof case_commands[0])

/* Decides command c on the loaded case and answers. The status table speaks first, then
 * the agent rules (on duty, skill group, holder), each with the contract's reason. */
static int case_command_decide(case_call_t *x, size_t c, const case_request_t *req, case_record_t *rec) {
  case_agent_facts_t facts = {0};
  case_agent_t agent = {0};
  int gives = req->agent_id[0] != '\0', rc = 0;
  if (gives) {
    rc = case_repo_agent_facts(x->api, x->tx, req->agent_id,
                               req->group_id[0] ? req->group_id : rec->agg.group_id, &facts);
    agent = (case_agent_t){req->agent_id, facts.group_id, facts.on_duty, facts.open_cases};
  }
  if (rc != 0) return rc;
  case_action_cmd_t cmd = {.action = case_commands[c].action,
                           .actor = req->actor,
                           .at = case_clock_now(),
                           .note = req->note,
                           .agent = gives ? &agent : NULL};
  case_outcome_t out;
  char text[CASE_REJECTION_LEN + 2 * CASE_REF_LEN];
  int32_t reason = 0;
  rc = case_aggregate_apply(&rec->agg, &cmd, &out);
  snprintf(text, sizeof text, "%s", out.rejection);
  if (rc == CTXD_ESTATE && case_action_allowed(cmd.action, rec->agg.status)) {
    /* the status table allows it: the payment does not */
    reason = CTXD_C_CASE_V2_CASE_COMMAND_REJECTED_REASON_PAYMENT_OUTSTANDING;
  } else if (rc == CTXD_ESTATE) {
    reason = CTXD_C_CASE_V2_CASE_COMMAND_REJECTED_REASON_NOT_ALLOWED_IN_STATUS;
  } else if (rc == CTXD_EINVAL && gives && req->actor[0] != '\0') {
    reason = facts.on_duty ? CTXD_C_CASE_V2_CASE_COMMAND_REJECTED_REASON_AGENT_NOT_IN_GROUP
                           : CTXD_C_CASE_V2_CASE_COMMAND_REJECTED_REASON_AGENT_OFF_DUTY;
  } else if (rc != 0) {
    return case_call_fail(x, "Case.Invalid", "%s", out.rejection);
  } else if (case_commands[c].holder_acts && strcmp(req->actor, rec->agg.agent_id) != 0) {
    reason = CTXD_C_CASE_V2_CASE_COMMAND_REJECTED_REASON_NOT_ASSIGNEE;
    snprintf(text, sizeof text, "agent %s does not hold the case (%s does)", req->actor,
             rec->agg.agent_id[0] ? rec->agg.agent_id : "nobody");
  } else if (req->group_id[0] && !facts.in_preferred) {
    reason = CTXD_C_CASE_V2_CASE_COMMAND_REJECTED_REASON_AGENT_NOT_IN_GROUP;
    snprintf(text, sizeof text, "agent %s is not in skill group %s", req->agent_id, req->group_id);
  }
  if (reason != 0) return case_rejected_reply(x, req->case_id, reason, text, rec);
  rc = case_outcome_commit(x, rec, &out);
  if (rc == 0) rc = case_auto_accept(x, rec);
  return rc == 0 ? case_accepted_reply(x, rec) : rc;
}

static ctxd_handler_result_t on_case_command(ctxd_tx_t *tx, const ctxd_msg_t *msg, void *data) {
  case_call_t x = case_call_begin(data, tx, msg);
  const char *type = x.api->msg_field(msg, CTXD_MSG_MESSAGE_TYPE);
  size_t c = 0, len;
  while (c < CASE_COMMAND_COUNT && strcmp(case_commands[c].type, type) != 0) c++;
  case_request_t req;
  const char *body = x.api->msg_body(msg, &len);
  int rc = c < CASE_COMMAND_COUNT ? case_commands[c].decode(body, len, &req, x.fault, sizeof x.fault)
                                  : CTXD_EINVAL;
  if (rc != 0) {
    x.fault_type = "Case.Malformed";
    return case_call_end(&x, rc);
  }
  case_record_t rec;
  int found = 0;
  rc = case_repo_load(x.api, tx, req.case_id, &rec, &found);
  if (rc == 0 && !found) {
    char text[96];
    snprintf(text, sizeof text, "no case %s", req.case_id);
    rc = case_rejected_reply(&x, req.case_id, CTXD_C_CASE_V2_CASE_COMMAND_REJECTED_REASON_NOT_FOUND, text,
                             NULL);
  } else if (rc == 0) {
    rc = case_command_decide(&x, c, &req, &rec);
  }
  return case_call_end(&x, rc);
}

/* ---- agents on and off duty ---------------------------------------------------------------------- */

typedef struct {
  char agent_id[CASE_REF_LEN];
  char at[64];
} case_duty_t;

#define CASE_DUTY_DECODER(fn, type)                                                                          \
  static int fn(const char *body, size_t len, case_duty_t *d, char *err, size_t errlen) {                    \
    type##_t m;                                                                                              \
    int rc = type##_decode(body, len, &m, err, errlen);                                                      \
    if (rc == 0) {                                                                                           \
      snprintf(d->agent_id, sizeof d->agent_id, "%s", m.agent_id);                                           \
      snprintf(d->at, sizeof d->at, "%s", m.at);                                                             \
    }                                                                                                        \
    type##_free(&m);                                                                                         \
    return rc;                                                                                               \
  }
CASE_DUTY_DECODER(case_on_duty_decode, ctxd_c_case_v1_agent_on_duty)
CASE_DUTY_DECODER(case_off_duty_decode, ctxd_c_case_v1_agent_off_duty)
#undef CASE_DUTY_DECODER

static const struct {
  const char *type;
  int on_duty;
  int (*decode)(const char *body, size_t len, case_duty_t *d, char *err, size_t errlen);
} case_duties[] = {
    {CTXD_C_CASE_V1_AGENT_ON_DUTY_TYPE, 1, case_on_duty_decode},
    {CTXD_C_CASE_V1_AGENT_OFF_DUTY_TYPE, 0, case_off_duty_decode},
};

/* Duty changes apply in the order of their At (a late older one is ignored). An agent
 * coming on duty gets the waiting cases of each of their skill groups. */
static ctxd_handler_result_t on_agent_duty(ctxd_tx_t *tx, const ctxd_msg_t *msg, void *data) {
  case_call_t x = case_call_begin(data, tx, msg);
  const char *type = x.api->msg_field(msg, CTXD_MSG_MESSAGE_TYPE);
  size_t d = strcmp(type, case_duties[0].type) == 0 ? 0 : 1, len;
  case_duty_t duty;
  const char *body = x.api->msg_body(msg, &len);
  int rc = case_duties[d].decode(body, len, &duty, x.fault, sizeof x.fault), applied = 0;
  if (rc != 0) {
    x.fault_type = "Case.Malformed";
    return case_call_end(&x, rc);
  }
  rc = case_repo_agent_duty_set(x.api, tx, duty.agent_id, case_duties[d].on_duty, duty.at, &applied);
  json_t *groups = NULL;
  if (rc == 0 && applied && case_duties[d].on_duty)
    rc = case_repo_agent_groups(x.api, tx, duty.agent_id, &groups);
  for (size_t i = 0; rc == 0 && i < json_array_size(groups); i++)
    rc = case_arrival_distribute(&x, duty.agent_id, json_string_value(json_array_get(groups, i)));
  json_decref(groups);
  return case_call_end(&x, rc);
}

/* ---- skill groups and distribution rules ---------------------------------------------------------- */

static void case_definition_log(case_call_t *x, const char *what, const char *id, int64_t version,
                                int applied) {
  x->api->log(x->st->plugin, x->msg, CTXD_LOG_INFO, "%s %s version %" PRId64 ": %s", what, id, version,
              applied ? "stored" : "ignored (an equal or newer version is stored)");
}

static ctxd_handler_result_t on_group_define(ctxd_tx_t *tx, const ctxd_msg_t *msg, void *data) {
  case_call_t x = case_call_begin(data, tx, msg);
  size_t len;
  ctxd_c_case_v1_define_skill_group_t m;
  const char *body = x.api->msg_body(msg, &len);
  int rc = ctxd_c_case_v1_define_skill_group_decode(body, len, &m, x.fault, sizeof x.fault), applied = 0;
  json_t *members = json_array();
  if (rc != 0) x.fault_type = "Case.Malformed";
  if (rc == 0 && members == NULL) rc = CTXD_ENOMEM;
  for (size_t i = 0; rc == 0 && i < m.agent_ids_count; i++)
    if (json_array_append_new(members, json_string(m.agent_ids[i])) != 0) rc = CTXD_ENOMEM;
  if (rc == 0) rc = case_repo_group_put(x.api, tx, m.skill_group_id, m.version, m.name, members, &applied);
  if (rc == 0) case_definition_log(&x, "skill group", m.skill_group_id, m.version, applied);
  json_decref(members);
  ctxd_c_case_v1_define_skill_group_free(&m);
  return case_call_end(&x, rc);
}

static ctxd_handler_result_t on_group_remove(ctxd_tx_t *tx, const ctxd_msg_t *msg, void *data) {
  case_call_t x = case_call_begin(data, tx, msg);
  size_t len;
  ctxd_c_case_v1_remove_skill_group_t m;
  const char *body = x.api->msg_body(msg, &len);
  int rc = ctxd_c_case_v1_remove_skill_group_decode(body, len, &m, x.fault, sizeof x.fault), applied = 0;
  if (rc != 0) x.fault_type = "Case.Malformed";
  if (rc == 0) rc = case_repo_group_put(x.api, tx, m.skill_group_id, m.version, NULL, NULL, &applied);
  if (rc == 0) case_definition_log(&x, "skill group removal", m.skill_group_id, m.version, applied);
  ctxd_c_case_v1_remove_skill_group_free(&m);
  return case_call_end(&x, rc);
}

/* The conditions as stored: [{"feature", "values"}], what the repository expands. */
static json_t *case_conditions_encode(const ctxd_c_case_v1_define_distribution_rule_t *m) {
  json_t *all = json_array();
  for (size_t i = 0; all != NULL && i < m->conditions_count; i++) {
    json_t *values = json_array();
    for (size_t v = 0; values != NULL && v < m->conditions[i].values_count; v++)
      json_array_append_new(values, json_string(m->conditions[i].values[v]));
    if (values == NULL ||
        json_array_append_new(
            all, json_pack("{s:s, s:o}", "feature", m->conditions[i].feature, "values", values)) != 0) {
      json_decref(all);
      return NULL;
    }
  }
  return all;
}

static ctxd_handler_result_t on_rule_define(ctxd_tx_t *tx, const ctxd_msg_t *msg, void *data) {
  case_call_t x = case_call_begin(data, tx, msg);
  size_t len;
  ctxd_c_case_v1_define_distribution_rule_t m;
  const char *body = x.api->msg_body(msg, &len);
  int rc = ctxd_c_case_v1_define_distribution_rule_decode(body, len, &m, x.fault, sizeof x.fault),
      applied = 0;
  json_t *conditions = rc == 0 ? case_conditions_encode(&m) : NULL;
  if (rc != 0) x.fault_type = "Case.Malformed";
  if (rc == 0 && conditions == NULL) rc = CTXD_ENOMEM;
  if (rc == 0 && case_rule_combinations(conditions) > CASE_RULE_COMBINATIONS_MAX)
    rc = case_call_fail(&x, "Case.RuleTooBroad",
                        "rule %s: its conditions make more than %d combinations of values; split the rule",
                        m.rule_id, CASE_RULE_COMBINATIONS_MAX);
  case_rule_def_t def = {
      .rule_id = m.rule_id,
      .name = m.name,
      .priority = m.priority,
      .conditions = conditions,
      .group_id = m.skill_group_id,
      .dispatch = m.strategy == CTXD_C_CASE_V1_DEFINE_DISTRIBUTION_RULE_STRATEGY_LEAST_LOADED
                      ? CASE_DISPATCH_LEAST_LOADED
                      : CASE_DISPATCH_ROUND_ROBIN,
      .prefer_previous = m.prefer_previous_agent,
      .enabled = m.enabled,
  };
  if (rc == 0) rc = case_repo_rule_put(x.api, tx, m.rule_id, m.version, &def, &applied);
  if (rc == 0) case_definition_log(&x, "distribution rule", m.rule_id, m.version, applied);
  json_decref(conditions);
  ctxd_c_case_v1_define_distribution_rule_free(&m);
  return case_call_end(&x, rc);
}

static ctxd_handler_result_t on_rule_remove(ctxd_tx_t *tx, const ctxd_msg_t *msg, void *data) {
  case_call_t x = case_call_begin(data, tx, msg);
  size_t len;
  ctxd_c_case_v1_remove_distribution_rule_t m;
  const char *body = x.api->msg_body(msg, &len);
  int rc = ctxd_c_case_v1_remove_distribution_rule_decode(body, len, &m, x.fault, sizeof x.fault),
      applied = 0;
  if (rc != 0) x.fault_type = "Case.Malformed";
  if (rc == 0) rc = case_repo_rule_put(x.api, tx, m.rule_id, m.version, NULL, &applied);
  if (rc == 0) case_definition_log(&x, "distribution rule removal", m.rule_id, m.version, applied);
  ctxd_c_case_v1_remove_distribution_rule_free(&m);
  return case_call_end(&x, rc);
}

/* ---- what the neighbours publish: related documents and payments ---------------------------------- */

/* Compensation orders: a case may be opened about one unless it was rejected or terminated. */
static ctxd_handler_result_t on_compensation_changed(ctxd_tx_t *tx, const ctxd_msg_t *msg, void *data) {
  case_call_t x = case_call_begin(data, tx, msg);
  size_t len;
  ctxd_c_compensation_v1_compensation_status_changed_t m;
  const char *body = x.api->msg_body(msg, &len);
  int rc = ctxd_c_compensation_v1_compensation_status_changed_decode(body, len, &m, x.fault, sizeof x.fault);
  if (rc != 0) {
    x.fault_type = "Case.Malformed";
  } else { /* decoding checked the status against the contract's values */
    int closed = m.new_status == CTXD_C_COMPENSATION_V1_COMPENSATION_STATUS_CHANGED_NEW_STATUS_REJECTED ||
                 m.new_status == CTXD_C_COMPENSATION_V1_COMPENSATION_STATUS_CHANGED_NEW_STATUS_TERMINATED;
    rc = case_repo_document_put(
        x.api, tx, "compensation", m.compensation_id,
        ctxd_c_compensation_v1_compensation_status_changed_new_status_name(m.new_status), !closed, m.version);
  }
  ctxd_c_compensation_v1_compensation_status_changed_free(&m);
  return case_call_end(&x, rc);
}

/* Orders, by the number customers and Paying use: placed is valid (an order republished
 * keeps its row). */
static ctxd_handler_result_t on_order_created(ctxd_tx_t *tx, const ctxd_msg_t *msg, void *data) {
  case_call_t x = case_call_begin(data, tx, msg);
  size_t len;
  ctxd_c_ordering_v1_order_created_t m;
  const char *body = x.api->msg_body(msg, &len);
  int rc = ctxd_c_ordering_v1_order_created_decode(body, len, &m, x.fault, sizeof x.fault);
  if (rc != 0)
    x.fault_type = "Case.Malformed";
  else
    rc = case_repo_document_put(x.api, tx, "order", m.order_number, "Created", 1, 1);
  ctxd_c_ordering_v1_order_created_free(&m);
  return case_call_end(&x, rc);
}

/* An order paid: recorded as the order's last payment, then its cases waiting for a payment
 * made after the last one known when they opened (Paying's clock on both sides) record it,
 * and those processed with auto-acceptance complete. A repeated or re-sent OrderPayFinished
 * finds them paid; a payment known before a case was opened (what the case is about,
 * repeated by Paying) pays nothing (docs/contexts.md). */
static int case_order_paid(case_call_t *x, const char *order_number, const char *paid_at) {
  json_t *ids = NULL;
  int64_t paid_ms = 0;
  int rc = case_repo_time_ms(x->api, x->tx, paid_at, &paid_ms);
  if (rc == 0) rc = case_repo_order_paid(x->api, x->tx, order_number, paid_ms, NULL);
  if (rc == 0) rc = case_repo_unpaid(x->api, x->tx, order_number, &ids);
  char note[CASE_TEXT_LEN];
  snprintf(note, sizeof note, "order %.160s paid at %.40s", order_number, paid_at);
  for (size_t i = 0; rc == 0 && i < json_array_size(ids); i++) {
    case_record_t rec;
    int found = 0;
    rc = case_repo_load(x->api, x->tx, json_string_value(json_array_get(ids, i)), &rec, &found);
    case_action_cmd_t cmd = {.action = CASE_ACTION_PAY,
                             .actor = "paying",
                             .at = case_clock_now(),
                             .note = note,
                             .paid_at = paid_ms};
    case_outcome_t out;
    if (rc != 0 || !found) continue;
    /* an ended case owes nothing any more, an earlier payment is not the one it waits for:
     * the domain refuses, and that is the answer */
    if (case_aggregate_apply(&rec.agg, &cmd, &out) != 0) {
      x->api->log(x->st->plugin, x->msg, CTXD_LOG_INFO, "case %s: %s", rec.agg.case_id, out.rejection);
      continue;
    }
    rc = case_outcome_commit(x, &rec, &out);
    if (rc == 0) rc = case_auto_accept(x, &rec);
  }
  json_decref(ids);
  return rc;
}

static ctxd_handler_result_t on_order_paid(ctxd_tx_t *tx, const ctxd_msg_t *msg, void *data) {
  case_call_t x = case_call_begin(data, tx, msg);
  size_t len;
  ctxd_c_paying_v1_order_pay_finished_t m;
  const char *body = x.api->msg_body(msg, &len);
  int rc = ctxd_c_paying_v1_order_pay_finished_decode(body, len, &m, x.fault, sizeof x.fault);
  if (rc != 0)
    x.fault_type = "Case.Malformed";
  else
    rc = case_order_paid(&x, m.order_number, m.paid_at);
  ctxd_c_paying_v1_order_pay_finished_free(&m);
  return case_call_end(&x, rc);
}

/* ---- lifecycle -------------------------------------------------------------------------------------- */

/* A skill group id as the contracts write it (lowercase 8-4-4-4-12): the stored groups
 * have that form, and CaseStatusChanged carries it as a UUID. */
static int case_group_id_valid(const char *id) {
  size_t i = 0;
  for (; id[i] != '\0' && i < 36; i++)
    if ((i == 8 || i == 13 || i == 18 || i == 23) ? id[i] != '-' : !strchr("0123456789abcdef", id[i]))
      return 0;
  return i == 36 && id[i] == '\0';
}

static int init(ctxd_plugin_t *plugin, const ctxd_api_t *api, void **state) {
  state_t *st = calloc(1, sizeof *st);
  if (st == NULL) return CTXD_ENOMEM;
  st->api = api;
  st->plugin = plugin;
  st->settings = api->settings(plugin);
  *state = st;
  if (st->settings->fulfillment_case_type < 1 ||
      (st->settings->default_skill_group[0] && !case_group_id_valid(st->settings->default_skill_group))) {
    api->log(plugin, NULL, CTXD_LOG_ERROR,
             "settings: fulfillment_case_type must be at least 1 and default_skill_group \"\" or a lowercase "
             "UUID");
    return CTXD_ECONFIG;
  }
  if (case_categories_parse(st->settings->categories, st->categories, CASE_CATEGORIES_MAX,
                            &st->n_categories) != 0) {
    api->log(plugin, NULL, CTXD_LOG_ERROR,
             "settings: categories must read \"<CaseType>:<kind>[,<kind>...][;...]\", at most %d pairs",
             CASE_CATEGORIES_MAX);
    return CTXD_ECONFIG;
  }
  const struct {
    const char *type;
    ctxd_handler_cb fn;
  } consumers[] = {
      {CTXD_C_FULFILLMENT_V1_FULFILLMENT_FAILED_TYPE, on_fulfillment_failed},
      {CTXD_C_FULFILLMENT_V1_FULFILLMENT_SUCCEEDED_TYPE, on_fulfillment_succeeded},
      {CTXD_C_FULFILLMENT_V1_FULFILLMENT_ABANDONED_TYPE, on_fulfillment_abandoned},
      {CTXD_C_CASE_V1_OPEN_CASE_TYPE, on_open_case},
      {CTXD_C_CASE_V1_AGENT_ON_DUTY_TYPE, on_agent_duty},
      {CTXD_C_CASE_V1_AGENT_OFF_DUTY_TYPE, on_agent_duty},
      {CTXD_C_CASE_V1_DEFINE_SKILL_GROUP_TYPE, on_group_define},
      {CTXD_C_CASE_V1_REMOVE_SKILL_GROUP_TYPE, on_group_remove},
      {CTXD_C_CASE_V1_DEFINE_DISTRIBUTION_RULE_TYPE, on_rule_define},
      {CTXD_C_CASE_V1_REMOVE_DISTRIBUTION_RULE_TYPE, on_rule_remove},
      {CTXD_C_COMPENSATION_V1_COMPENSATION_STATUS_CHANGED_TYPE, on_compensation_changed},
      {CTXD_C_ORDERING_V1_ORDER_CREATED_TYPE, on_order_created},
      {CTXD_C_PAYING_V1_ORDER_PAY_FINISHED_TYPE, on_order_paid},
  };
  const size_t n_consumers = sizeof consumers / sizeof consumers[0];
  int rc = 0;
  for (size_t i = 0; rc == 0 && i < n_consumers + CASE_COMMAND_COUNT; i++) {
    ctxd_consumer_t c = {.size = sizeof c,
                         .endpoint = st->settings->endpoint,
                         .message_type =
                             i < n_consumers ? consumers[i].type : case_commands[i - n_consumers].type,
                         .handler = i < n_consumers ? consumers[i].fn : on_case_command,
                         .data = st};
    rc = api->consumer_register(plugin, &c);
  }
  return rc;
}

static void destroy(void *state) { free(state); }

static const ctxd_plugin_desc_t desc = {
    CTXD_PLUGIN_STAMP, /* size, ABI version, build flags */
    .name = "case",
    .version = "1.0.0",
    .description = "coordination cases for human agents when automation fails, with automatic distribution",
    .config_map = config_map,
    .settings_size = sizeof(settings_t),
    .migrations = migrations,
    .init = init,
    .destroy = destroy,
};

CTXD_PLUGIN_DEFINE(desc)
