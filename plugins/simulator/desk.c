/* The agent desk: the humans who work the cases Case opens for failed fulfillments.
 *
 * After every connect it defines one skill group with its agents and one rule sending
 * every case to it (round robin), then puts the agents on duty: the same message ids,
 * versions and times all run long, so a repeat changes nothing. It follows
 * CaseStatusChanged: a case given to one of its agents is accepted, processed, then
 * completed, each after a delay; at reject_back_percent the processed work is first
 * rejected back once. Each command's message id comes from the status message's, and the
 * choice between rejecting back and completing is remembered per case, so a redelivered
 * status change gets the same command again, which Case drops as a duplicate. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctxd_contracts.h"
#include "sim.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))
#define GROUP_NAME "Simulated after-sales desk"
#define RULE_NAME "Every case to the simulated desk"
#define RULE_PRIORITY 1000000 /* the last tried: a rule someone defines wins over it */

int sim_desk_init(sim_t *sim) {
  sim_desk_t *d = &sim->desk;
  const char *p = sim->s->agent_ids;
  while (*p != '\0') {
    size_t n = strcspn(p, ",");
    if (n == 0 || n >= SIM_AGENT_LEN || d->nagents == SIM_MAX_AGENTS) {
      sim->api->log(sim->plugin, NULL, CTXD_LOG_ERROR,
                    "agent_ids: 1..%d comma-separated ids of 1..%d characters", SIM_MAX_AGENTS,
                    SIM_AGENT_LEN - 1);
      return CTXD_ECONFIG;
    }
    memcpy(d->agents[d->nagents++], p, n);
    p += n + (p[n] == ',');
  }
  if (d->nagents == 0 && sim->s->feed_agents) {
    sim->api->log(sim->plugin, NULL, CTXD_LOG_ERROR, "agent_ids: the agent desk needs an agent");
    return CTXD_ECONFIG;
  }
  d->version = sim_version_floor();
  sim_iso_at(sim_now_ms(), d->on_duty_at);
  return 0;
}

void sim_desk_free(sim_t *sim) {
  free(sim->desk.cases);
  sim->desk.cases = NULL;
  sim->desk.ncases = 0;
}

/* ---- the definitions and the duty --------------------------------------------------------- */

/* A desk message to the case endpoint; id receives its message id, the same for the
 * same (what, version) in every connect of the run. */
static sim_out_t desk_out(const sim_t *sim, const char *type, const char *what, char id[37]) {
  char kind[160];
  snprintf(kind, sizeof kind, "%s@%" PRId64, type, sim->desk.version);
  sim_uuid_derive(what, kind, id);
  return (sim_out_t){.exchange = sim->s->case_endpoint, .type = type, .id = id};
}

int sim_desk_announce(sim_t *sim, int64_t now) {
  const sim_desk_t *d = &sim->desk;
  const sim_settings_t *s = sim->s;
  char id[37], *agents[SIM_MAX_AGENTS];
  for (size_t i = 0; i < d->nagents; i++) agents[i] = (char *)d->agents[i];
  ctxd_c_case_v1_define_skill_group_t group = {
      .name = GROUP_NAME, .agent_ids = agents, .agent_ids_count = d->nagents, .version = d->version};
  memcpy(group.skill_group_id, s->skill_group_id, sizeof group.skill_group_id);
  sim_out_t out = desk_out(sim, CTXD_C_CASE_V1_DEFINE_SKILL_GROUP_TYPE, s->skill_group_id, id);
  int rc = sim_later(sim, now, &out, ctxd_c_case_v1_define_skill_group_encode(&group),
                     "agent desk: skill group %s '%s' of %zu agents defined (version %" PRId64 ")",
                     s->skill_group_id, GROUP_NAME, d->nagents, d->version);
  /* no conditions: the rule matches every case */
  ctxd_c_case_v1_define_distribution_rule_t rule = {
      .name = RULE_NAME,
      .priority = RULE_PRIORITY,
      .strategy = CTXD_C_CASE_V1_DEFINE_DISTRIBUTION_RULE_STRATEGY_ROUND_ROBIN,
      .enabled = true,
      .version = d->version};
  memcpy(rule.rule_id, s->rule_id, sizeof rule.rule_id);
  memcpy(rule.skill_group_id, s->skill_group_id, sizeof rule.skill_group_id);
  out = desk_out(sim, CTXD_C_CASE_V1_DEFINE_DISTRIBUTION_RULE_TYPE, s->rule_id, id);
  if (rc == 0)
    rc =
        sim_later(sim, now, &out, ctxd_c_case_v1_define_distribution_rule_encode(&rule),
                  "agent desk: rule %s sends every case to skill group %s, round robin (version %" PRId64 ")",
                  s->rule_id, s->skill_group_id, d->version);
  /* one delay later: Case looks the agents' groups up when they come on duty */
  int64_t due = now + sim_delay(sim);
  for (size_t i = 0; i < d->nagents && rc == 0; i++) {
    ctxd_c_case_v1_agent_on_duty_t duty = {.agent_id = agents[i], .at = (char *)d->on_duty_at};
    out = desk_out(sim, CTXD_C_CASE_V1_AGENT_ON_DUTY_TYPE, agents[i], id);
    rc = sim_later(sim, due, &out, ctxd_c_case_v1_agent_on_duty_encode(&duty),
                   "agent desk: agent %s on duty since %s", agents[i], d->on_duty_at);
  }
  return rc;
}

/* ---- following the cases ------------------------------------------------------------------- */

static const char *desk_agent(const sim_t *sim, const char *agent) {
  for (size_t i = 0; agent != NULL && i < sim->desk.nagents; i++)
    if (strcmp(sim->desk.agents[i], agent) == 0) return sim->desk.agents[i];
  return NULL;
}

/* The case's entry, added when missing (NULL: out of memory). Beyond SIM_MAX_DESK_CASES
 * the oldest is forgotten: a case that old was ended by someone else. */
static sim_desk_case_t *desk_case(sim_desk_t *d, const char *case_id) {
  for (size_t i = 0; i < d->ncases; i++)
    if (strcmp(d->cases[i].case_id, case_id) == 0) return &d->cases[i];
  if (d->ncases == SIM_MAX_DESK_CASES) memmove(d->cases, d->cases + 1, --d->ncases * sizeof *d->cases);
  if (d->cases == NULL && (d->cases = malloc(SIM_MAX_DESK_CASES * sizeof *d->cases)) == NULL) return NULL;
  sim_desk_case_t *c = &d->cases[d->ncases++];
  snprintf(c->case_id, sizeof c->case_id, "%s", case_id);
  c->rejected_by[0] = '\0';
  return c;
}

static void desk_case_forget(sim_desk_t *d, const char *case_id) {
  for (size_t i = 0; i < d->ncases; i++)
    if (strcmp(d->cases[i].case_id, case_id) == 0) {
      d->cases[i] = d->cases[--d->ncases];
      return;
    }
}

enum { ACCEPT, PROCESS, REJECT_BACK, COMPLETE };

/* What the agent does, by command. */
static const struct {
  const char *type;
  const char *verb; /* the log line's */
} commands[] = {
    [ACCEPT] = {CTXD_C_CASE_V1_ACCEPT_CASE_TYPE, "accepted"},
    [PROCESS] = {CTXD_C_CASE_V1_PROCESS_CASE_TYPE, "processed"},
    [REJECT_BACK] = {CTXD_C_CASE_V1_REJECT_CASE_BACK_TYPE, "rejected back"},
    [COMPLETE] = {CTXD_C_CASE_V1_COMPLETE_CASE_TYPE, "completed"},
};

#define RESULT "Called the customer and settled the refund by bank transfer"
#define REJECT_REASON "The customer has not confirmed the transfer yet"

/* The command's message (new, or NULL when it breaks its contract). */
static char *command_body(int command, const char *case_id, const char *agent) {
  char *a = (char *)agent;
  switch (command) {
  case ACCEPT: {
    ctxd_c_case_v1_accept_case_t m = {.agent_id = a};
    memcpy(m.case_id, case_id, sizeof m.case_id);
    return ctxd_c_case_v1_accept_case_encode(&m);
  }
  case PROCESS: {
    ctxd_c_case_v1_process_case_t m = {.agent_id = a, .result = RESULT};
    memcpy(m.case_id, case_id, sizeof m.case_id);
    return ctxd_c_case_v1_process_case_encode(&m);
  }
  case REJECT_BACK: {
    ctxd_c_case_v1_reject_case_back_t m = {.operator_id = a, .reason = REJECT_REASON};
    memcpy(m.case_id, case_id, sizeof m.case_id);
    return ctxd_c_case_v1_reject_case_back_encode(&m);
  }
  default: {
    ctxd_c_case_v1_complete_case_t m = {.operator_id = a};
    memcpy(m.case_id, case_id, sizeof m.case_id);
    return ctxd_c_case_v1_complete_case_encode(&m);
  }
  }
}

/* The command the agent answers the change of one of its cases with; -1: none, -2: out of
 * memory. */
static int desk_decide(sim_t *sim, const sim_request_t *req, const ctxd_c_case_v1_case_status_changed_t *e) {
  enum {
    WAIT_PROCESS = CTXD_C_CASE_V1_CASE_STATUS_CHANGED_NEW_STATUS_WAIT_PROCESS,
    APPOINT_PROCESS = CTXD_C_CASE_V1_CASE_STATUS_CHANGED_NEW_STATUS_APPOINT_PROCESS,
    PROCESSING = CTXD_C_CASE_V1_CASE_STATUS_CHANGED_NEW_STATUS_PROCESSING,
    PENDING_ACCEPTANCE = CTXD_C_CASE_V1_CASE_STATUS_CHANGED_NEW_STATUS_PENDING_ACCEPTANCE,
  };
  /* an urge changes no status: the agent already acted on it */
  if (e->action == CTXD_C_CASE_V1_CASE_STATUS_CHANGED_ACTION_URGE) return -1;
  if (e->new_status != WAIT_PROCESS && e->new_status != APPOINT_PROCESS && e->new_status != PROCESSING &&
      e->new_status != PENDING_ACCEPTANCE) {
    desk_case_forget(&sim->desk, e->case_id); /* ended, or back to distribution */
    return -1;
  }
  sim_desk_case_t *c = desk_case(&sim->desk, e->case_id);
  if (c == NULL) return -2;
  if (e->new_status == PROCESSING) return PROCESS;
  if (e->new_status != PENDING_ACCEPTANCE) return ACCEPT;
  /* the same status message rejected back again (a redelivery); another one completes */
  if (c->rejected_by[0]) return strcmp(c->rejected_by, req->id) == 0 ? REJECT_BACK : COMPLETE;
  if ((int64_t)(sim_hash(e->case_id, "reject back") % 100) >= sim->s->reject_back_percent) return COMPLETE;
  snprintf(c->rejected_by, sizeof c->rejected_by, "%s", req->id);
  return REJECT_BACK;
}

int sim_desk_answer(sim_t *sim, const sim_request_t *req, const char *text, char *err, size_t errlen) {
  ctxd_c_case_v1_case_status_changed_t e;
  int rc = ctxd_c_case_v1_case_status_changed_decode(text, strlen(text), &e, err, errlen);
  const char *agent = rc == 0 && e.has_follower ? desk_agent(sim, e.follower.agent_id) : NULL;
  int command = agent != NULL ? desk_decide(sim, req, &e) : -1;
  if (rc == 0 && command == -2) rc = CTXD_ENOMEM;
  if (rc == 0 && command == -1) rc = SIM_NOTHING; /* not one of the desk's cases, or nothing to do */
  if (rc == 0) {
    char id[37];
    sim_out_t out = sim_answer_out(req, commands[command].type, true, id);
    out.exchange = sim->s->case_endpoint;
    rc = sim_later(sim, sim_now_ms() + sim_delay(sim), &out, command_body(command, e.case_id, agent),
                   "agent desk: agent %s %s case %s", agent, commands[command].verb, e.case_id);
  }
  ctxd_c_case_v1_case_status_changed_free(&e);
  return rc;
}
