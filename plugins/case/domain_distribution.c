/* Automatic distribution (seed 002, 分单): a rule turns case features into a skill group
 * and a dispatch strategy; the group's on-duty agents are the candidates; an agent who
 * handled the same order before goes first, then one who handled the same carrier. Pure decisions over the caller's roster. */
#include "domain.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "domain_text.h"

/* ---- roster validation ------------------------------------------------------------------ */

static int rule_check(const case_rule_t *r) {
  if (!r->group_id || !*r->group_id || (unsigned)r->dispatch >= CASE_DISPATCH_COUNT ||
      (r->n_conditions && !r->conditions))
    return CTXD_EINVAL;
  if (strlen(r->group_id) >= CASE_ID_LEN) return CTXD_ETOOBIG;
  for (size_t i = 0; i < r->n_conditions; i++) {
    const case_condition_t *k = &r->conditions[i];
    int ok = k->op == CASE_MATCH_ANY || (k->op == CASE_MATCH_EQ && k->key && k->text) ||
             (k->op == CASE_MATCH_GE && k->key);
    if (!ok) return CTXD_EINVAL;
  }
  return 0;
}

/* Every function below may then rely on non-NULL strings and ids that fit a cursor. */
static int roster_check(const case_roster_t *r) {
  if (!r || (r->n_rules && !r->rules) || (r->n_agents && !r->agents) || (r->n_history && !r->history) ||
      (r->n_cursors && !r->cursors))
    return CTXD_EINVAL;
  for (size_t i = 0; i < r->n_rules; i++) {
    int rc = rule_check(&r->rules[i]);
    if (rc != 0) return rc;
  }
  for (size_t i = 0; i < r->n_agents; i++) {
    const case_agent_t *a = &r->agents[i];
    if (!a->id || !*a->id || !a->group_id || !*a->group_id) return CTXD_EINVAL;
    if (strlen(a->id) >= CASE_ID_LEN || strlen(a->group_id) >= CASE_ID_LEN) return CTXD_ETOOBIG;
  }
  for (size_t i = 0; i < r->n_history; i++)
    if (!r->history[i].order_id || !r->history[i].agent_id) return CTXD_EINVAL;
  for (size_t i = 0; i < r->n_cursors; i++) {
    const case_cursor_t *k = &r->cursors[i];
    if (!memchr(k->group_id, 0, sizeof k->group_id) || !memchr(k->last_agent_id, 0, sizeof k->last_agent_id))
      return CTXD_EINVAL;
  }
  return 0;
}

/* ---- rules ------------------------------------------------------------------------------ */

static int condition_holds(const case_condition_t *k, const case_aggregate_t *c) {
  if (k->op == CASE_MATCH_ANY) return 1;
  const char *v = case_feature_get(c, k->key);
  if (!v) return 0;
  if (k->op == CASE_MATCH_EQ) return strcmp(v, k->text) == 0;
  /* GE: only a whole decimal integer compares; anything else simply does not match */
  char *end;
  errno = 0;
  long long n = strtoll(v, &end, 10);
  return *v && !*end && errno == 0 && n >= k->number;
}

static int rule_holds(const case_rule_t *r, const case_aggregate_t *c) {
  for (size_t i = 0; i < r->n_conditions; i++)
    if (!condition_holds(&r->conditions[i], c)) return 0;
  return 1;
}

/* The matching rule of smallest priority, earliest on ties: 1 with *idx, or 0 for none. */
static int rule_find(const case_roster_t *r, const case_aggregate_t *c, size_t *idx) {
  int found = 0;
  for (size_t i = 0; i < r->n_rules; i++) {
    if (rule_holds(&r->rules[i], c) && (!found || r->rules[i].priority < r->rules[*idx].priority)) {
      *idx = i;
      found = 1;
    }
  }
  return found;
}

/* ---- agents ----------------------------------------------------------------------------- */

static int eligible(const case_agent_t *a, const char *group) {
  return a->on_duty && strcmp(a->group_id, group) == 0;
}

/* The eligible listing of agent id in group, or NULL. */
static const case_agent_t *eligible_find(const case_roster_t *r, const char *group, const char *id) {
  for (size_t i = 0; i < r->n_agents; i++)
    if (eligible(&r->agents[i], group) && strcmp(r->agents[i].id, id) == 0) return &r->agents[i];
  return NULL;
}

/* open_cases plus what this call already gave the agent (by id: the agent may be listed
 * under several groups). */
static long load_of(const case_agent_t *a, const case_assignment_t *made, size_t n_made) {
  long load = a->open_cases;
  for (size_t i = 0; i < n_made; i++) load += strcmp(made[i].agent->id, a->id) == 0;
  return load;
}

/* Same-order (by_carrier 0) or same-carrier (1) preference: the eligible agent who handled
 * c's order, or a case of c's carrier, last (ties: smaller id). */
static const case_agent_t *previous_handler(const case_roster_t *r, const char *group,
                                            const case_aggregate_t *c, int by_carrier) {
  const case_agent_t *best = NULL;
  int64_t best_at = 0;
  const char *carrier = case_feature_get(c, CASE_FEATURE_CARRIER);
  if (by_carrier && (!carrier || !*carrier)) return NULL;
  for (size_t i = 0; i < r->n_history; i++) {
    const case_handled_t *h = &r->history[i];
    int same = by_carrier ? h->carrier && strcmp(h->carrier, carrier) == 0
                          : *h->order_id && strcmp(h->order_id, c->order_id) == 0;
    const case_agent_t *a = same ? eligible_find(r, group, h->agent_id) : NULL;
    if (a && (!best || h->at > best_at || (h->at == best_at && strcmp(a->id, best->id) < 0))) {
      best = a;
      best_at = h->at;
    }
  }
  return best;
}

/* Round robin: the first eligible id after `last` in strcmp order, else the smallest. */
static const case_agent_t *round_robin(const case_roster_t *r, const char *group, const char *last) {
  const case_agent_t *first = NULL, *after = NULL;
  for (size_t i = 0; i < r->n_agents; i++) {
    const case_agent_t *a = &r->agents[i];
    if (!eligible(a, group)) continue;
    if (!first || strcmp(a->id, first->id) < 0) first = a;
    if (strcmp(a->id, last) > 0 && (!after || strcmp(a->id, after->id) < 0)) after = a;
  }
  return after ? after : first;
}

/* Least loaded: fewest open cases (this call's included); ties: smaller id. */
static const case_agent_t *least_loaded(const case_roster_t *r, const char *group,
                                        const case_assignment_t *made, size_t n_made) {
  const case_agent_t *best = NULL;
  long best_load = 0;
  for (size_t i = 0; i < r->n_agents; i++) {
    const case_agent_t *a = &r->agents[i];
    if (!eligible(a, group)) continue;
    long load = load_of(a, made, n_made);
    if (!best || load < best_load || (load == best_load && strcmp(a->id, best->id) < 0)) {
      best = a;
      best_load = load;
    }
  }
  return best;
}

/* Picks inside the group of rule `rule` once the rule is known; `last` is the group's
 * round-robin cursor ("" for none). */
static void pick_in_group(const case_roster_t *r, const case_aggregate_t *c, size_t rule, const char *last,
                          const case_assignment_t *made, size_t n_made, case_pick_t *out) {
  const case_rule_t *k = &r->rules[rule];
  memset(out, 0, sizeof *out);
  out->rule = rule;
  out->agent = previous_handler(r, k->group_id, c, 0);
  if (out->agent) {
    out->via = CASE_VIA_PREVIOUS_HANDLER;
  } else if ((out->agent = previous_handler(r, k->group_id, c, 1)) != NULL) {
    out->via = CASE_VIA_SAME_CARRIER;
  } else if (k->dispatch == CASE_DISPATCH_ROUND_ROBIN) {
    out->via = CASE_VIA_ROUND_ROBIN;
    out->agent = round_robin(r, k->group_id, last);
    if (out->agent) {
      out->cursor_moved = 1; /* ids fit: roster_check */
      case_text_copy(out->cursor.group_id, sizeof out->cursor.group_id, k->group_id);
      case_text_copy(out->cursor.last_agent_id, sizeof out->cursor.last_agent_id, out->agent->id);
    }
  } else {
    out->via = CASE_VIA_LEAST_LOADED;
    out->agent = least_loaded(r, k->group_id, made, n_made);
  }
  out->outcome = out->agent ? CASE_PICK_ASSIGNED : CASE_PICK_NO_AGENT;
}

/* The stored cursor of group, or NULL. */
static const case_cursor_t *cursor_find(const case_roster_t *r, const char *group) {
  for (size_t i = 0; i < r->n_cursors; i++)
    if (strcmp(r->cursors[i].group_id, group) == 0) return &r->cursors[i];
  return NULL;
}

/* ---- public ----------------------------------------------------------------------------- */

int case_distribution_pick(const case_roster_t *roster, const case_aggregate_t *c, case_pick_t *out) {
  if (!c || !out) return CTXD_EINVAL;
  int rc = roster_check(roster);
  if (rc != 0) return rc;
  size_t rule;
  if (!rule_find(roster, c, &rule)) {
    memset(out, 0, sizeof *out);
    out->outcome = CASE_PICK_NO_RULE;
    return 0;
  }
  const case_cursor_t *k = cursor_find(roster, roster->rules[rule].group_id);
  pick_in_group(roster, c, rule, k ? k->last_agent_id : "", NULL, 0, out);
  return 0;
}

int case_distribution_on_duty(const case_roster_t *roster, const case_agent_t *arrived,
                              const case_aggregate_t *waiting, size_t n_waiting, case_assignment_t *out,
                              size_t *n_out, case_cursor_t *cursor, int *cursor_moved) {
  if (!arrived || !arrived->id || !arrived->group_id || (n_waiting && (!waiting || !out)) || !n_out ||
      !cursor || !cursor_moved)
    return CTXD_EINVAL;
  int rc = roster_check(roster);
  if (rc != 0) return rc;
  const char *group = arrived->group_id;
  if (!eligible_find(roster, group, arrived->id)) return CTXD_EINVAL;
  const case_cursor_t *stored = cursor_find(roster, group);
  case_cursor_t now;
  memset(&now, 0, sizeof now);
  if (stored)
    now = *stored;
  else
    case_text_copy(now.group_id, sizeof now.group_id, group); /* fits: it is a listed agent's */
  size_t n = 0;
  int moved = 0;
  for (size_t i = 0; i < n_waiting; i++) {
    size_t rule;
    if (waiting[i].status != CASE_STATUS_WAIT_DISTRIBUTION || !rule_find(roster, &waiting[i], &rule) ||
        strcmp(roster->rules[rule].group_id, group) != 0)
      continue;
    case_pick_t p; /* always ASSIGNED: arrived is eligible in this group */
    pick_in_group(roster, &waiting[i], rule, now.last_agent_id, out, n, &p);
    out[n++] = (case_assignment_t){.case_index = i, .agent = p.agent, .via = p.via};
    if (p.cursor_moved) {
      now = p.cursor;
      moved = 1;
    }
  }
  *n_out = n;
  *cursor = now;
  *cursor_moved = moved;
  return 0;
}
