#include "repo.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- small helpers ----------------------------------------------------------------------- */

/* Times are epoch milliseconds in the domain, timestamptz in the tables; 0 is "none". */
#define CASE_SQL_TIME(p) "to_timestamp(NULLIF(" p "::bigint, 0) / 1000.0)"
#define CASE_SQL_MS(col) "coalesce((extract(epoch FROM " col ") * 1000)::bigint, 0)"

static void case_int_format(int64_t v, char out[24]) { snprintf(out, 24, "%" PRId64, v); }

static int case_int_parse(const char *s, int64_t *out) {
  char *end;
  errno = 0;
  long long v = s != NULL ? strtoll(s, &end, 10) : 0;
  if (s == NULL || *s == '\0' || *end != '\0' || errno != 0) return CTXD_EDECODE;
  *out = v;
  return 0;
}

/* A stored string back into its buffer: one that no longer fits was not written by us. */
static int case_str_load(char *dst, size_t cap, const char *src) {
  size_t n = src != NULL ? strlen(src) : 0;
  if (n >= cap) return CTXD_EDECODE;
  memcpy(dst, src != NULL ? src : "", n + 1);
  return 0;
}

/* Runs sql and returns its single row/column value, parsed as JSON, in *doc. */
static int case_doc_load(const ctxd_api_t *api, ctxd_tx_t *tx, const char *sql, int nparams,
                         const char *const *params, json_t **doc) {
  ctxd_rows_t *rows;
  int rc = api->sql_exec(tx, sql, nparams, params, &rows);
  if (rc != 0) return rc;
  const char *text = api->rows_value(rows, 0, 0);
  *doc = text != NULL ? json_loads(text, 0, NULL) : NULL;
  api->rows_free(rows);
  return json_is_array(*doc) ? 0 : CTXD_EDECODE;
}

/* The JSON text of v, or NULL when memory runs out; free() it. */
static char *case_json_text(const json_t *v) { return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY); }

/* ---- cases --------------------------------------------------------------------------------- */

#define CASE_COLUMNS                                                                                         \
  "case_id::text, case_type, related_biz_type, related_biz_id, coalesce(compensation_id, ''), "              \
  "order_id, coalesce(order_number, ''), strategy, amount, reason, subject, opened_by, "                     \
  "pay_status, auto_accept::int, "                                                                           \
  "features::text, status, coalesce(agent_id, ''), coalesce(group_id, ''), urge_count, " CASE_SQL_MS(        \
      "last_urged_at") ", " CASE_SQL_MS("appointed_at") ", " CASE_SQL_MS("opened_at") ", " CASE_SQL_MS("upd" \
                                                                                                       "ate" \
                                                                                                       "d_"  \
                                                                                                       "at") ", version, paid_before_ms"

/* Features are stored as [[key, value], ...] in the aggregate's order. */
static json_t *case_features_encode(const case_aggregate_t *c) {
  json_t *a = json_array();
  for (size_t i = 0; a != NULL && i < c->n_features; i++)
    if (json_array_append_new(a, json_pack("[ss]", c->features[i].key, c->features[i].value)) != 0) {
      json_decref(a);
      return NULL;
    }
  return a;
}

static int case_features_decode(const char *text, case_aggregate_t *c) {
  json_t *a = text != NULL ? json_loads(text, 0, NULL) : NULL;
  int rc = json_is_array(a) && json_array_size(a) <= CASE_FEATURES_MAX ? 0 : CTXD_EDECODE;
  c->n_features = 0;
  for (size_t i = 0; rc == 0 && i < json_array_size(a); i++, c->n_features++) {
    json_t *kv = json_array_get(a, i);
    rc = case_str_load(c->features[i].key, sizeof c->features[i].key,
                       json_string_value(json_array_get(kv, 0)));
    if (rc == 0)
      rc = case_str_load(c->features[i].value, sizeof c->features[i].value,
                         json_string_value(json_array_get(kv, 1)));
  }
  json_decref(a);
  return rc;
}

/* One row of CASE_COLUMNS into rec, column by column in the order of the list. */
static int case_row_decode(const ctxd_api_t *api, const ctxd_rows_t *rows, int row, case_record_t *rec) {
  memset(rec, 0, sizeof *rec);
  case_aggregate_t *c = &rec->agg;
  char strategy[32], status[32], pay[32];
  int64_t urges = 0, auto_accept = 0;
  const struct {
    char *text; /* a text column into text[cap], an integer into *num, or neither: read below */
    size_t cap;
    int64_t *num;
  } cols[] = {
      {c->case_id, sizeof c->case_id, NULL},
      {NULL, 0, &rec->case_type},
      {rec->related_biz_type, sizeof rec->related_biz_type, NULL},
      {rec->related_biz_id, sizeof rec->related_biz_id, NULL},
      {rec->compensation_id, sizeof rec->compensation_id, NULL},
      {c->order_id, sizeof c->order_id, NULL},
      {rec->order_number, sizeof rec->order_number, NULL},
      {strategy, sizeof strategy, NULL},
      {NULL, 0, &c->amount},
      {c->reason, sizeof c->reason, NULL},
      {rec->subject, sizeof rec->subject, NULL},
      {rec->opened_by, sizeof rec->opened_by, NULL},
      {pay, sizeof pay, NULL},
      {NULL, 0, &auto_accept},
      {NULL, 0, NULL}, /* features */
      {status, sizeof status, NULL},
      {c->agent_id, sizeof c->agent_id, NULL},
      {c->group_id, sizeof c->group_id, NULL},
      {NULL, 0, &urges},
      {NULL, 0, &c->last_urged_at},
      {NULL, 0, &rec->appointed_at},
      {NULL, 0, &c->opened_at},
      {NULL, 0, &c->updated_at},
      {NULL, 0, &c->version},
      {NULL, 0, &c->paid_before},
  };
  const char *features = NULL;
  int rc = 0;
  for (int i = 0; rc == 0 && i < (int)(sizeof cols / sizeof cols[0]); i++) {
    const char *v = api->rows_value(rows, row, i);
    if (cols[i].text != NULL)
      rc = case_str_load(cols[i].text, cols[i].cap, v);
    else if (cols[i].num != NULL)
      rc = case_int_parse(v, cols[i].num);
    else
      features = v;
  }
  if (rc == 0 &&
      (case_strategy_parse(strategy, &c->strategy) != 0 || case_status_parse(status, &c->status) != 0 ||
       case_pay_status_parse(pay, &c->pay_status) != 0))
    rc = CTXD_EDECODE;
  if (rc == 0) rc = case_features_decode(features, c);
  c->urge_count = (int)urges;
  c->auto_accept = auto_accept != 0;
  /* the domain wants both ids (repo.h) */
  if (rc == 0) rc = case_str_load(c->fulfillment_id, sizeof c->fulfillment_id, rec->related_biz_id);
  if (rc == 0)
    rc = case_str_load(c->compensation_id, sizeof c->compensation_id,
                       rec->compensation_id[0] ? rec->compensation_id : rec->related_biz_id);
  return rc;
}

static const char case_insert_sql[] =
    "INSERT INTO cases.cases (case_id, case_type, related_biz_type, related_biz_id, compensation_id, "
    "order_id,"
    " order_number, strategy, amount, reason, subject, detail, opened_by, features, status, opened_at, "
    "updated_at,"
    " version, pay_status, auto_accept, paid_before_ms) VALUES ($1, $2, $3, $4, NULLIF($5, ''), $6, "
    "NULLIF($7, ''), $8, $9, "
    "$10,"
    " $11, $12, $13, $14, $15, " CASE_SQL_TIME("$16") ", " CASE_SQL_TIME(
        "$16") ", $17, $18, $19, $20)"
               " ON CONFLICT (case_id) DO NOTHING";

int case_repo_insert(const ctxd_api_t *api, ctxd_tx_t *tx, const case_record_t *rec, const char *detail,
                     int *inserted) {
  const case_aggregate_t *c = &rec->agg;
  char type[24], amount[24], at[24], version[24], paid_before[24];
  case_int_format(rec->case_type, type);
  case_int_format(c->paid_before, paid_before);
  case_int_format(c->amount, amount);
  case_int_format(c->opened_at, at);
  case_int_format(c->version, version);
  json_t *features = case_features_encode(c);
  char *ftext = features != NULL ? case_json_text(features) : NULL;
  json_decref(features);
  if (ftext == NULL) return CTXD_ENOMEM;
  const char *params[] = {c->case_id,
                          type,
                          rec->related_biz_type,
                          rec->related_biz_id,
                          rec->compensation_id,
                          c->order_id,
                          rec->order_number,
                          case_strategy_name(c->strategy),
                          amount,
                          c->reason,
                          rec->subject,
                          detail,
                          rec->opened_by,
                          ftext,
                          case_status_name(c->status),
                          at,
                          version,
                          case_pay_status_name(c->pay_status),
                          c->auto_accept ? "true" : "false",
                          paid_before};
  ctxd_rows_t *rows;
  int rc = api->sql_exec(tx, case_insert_sql, 20, params, &rows);
  free(ftext);
  if (rc != 0) return rc;
  *inserted = api->rows_affected(rows) == 1;
  api->rows_free(rows);
  return 0;
}

int case_repo_load(const ctxd_api_t *api, ctxd_tx_t *tx, const char *case_id, case_record_t *rec,
                   int *found) {
  ctxd_rows_t *rows;
  const char *params[] = {case_id};
  int rc = api->sql_exec(tx, "SELECT " CASE_COLUMNS " FROM cases.cases WHERE case_id = $1", 1, params, &rows);
  if (rc != 0) return rc;
  *found = api->rows_count(rows) == 1;
  if (*found) rc = case_row_decode(api, rows, 0, rec);
  api->rows_free(rows);
  return rc;
}

int case_repo_waiting(const ctxd_api_t *api, ctxd_tx_t *tx, case_record_t **out, size_t *n) {
  ctxd_rows_t *rows;
  *out = NULL;
  *n = 0;
  int rc = api->sql_exec(tx,
                         "SELECT " CASE_COLUMNS " FROM cases.cases WHERE status = 'WaitDistribution'"
                         " ORDER BY opened_at, case_id",
                         0, NULL, &rows);
  if (rc != 0) return rc;
  int count = api->rows_count(rows);
  if (count > 0 && (*out = calloc((size_t)count, sizeof **out)) == NULL) rc = CTXD_ENOMEM;
  for (int i = 0; rc == 0 && i < count; i++) rc = case_row_decode(api, rows, i, &(*out)[i]);
  api->rows_free(rows);
  if (rc != 0) {
    free(*out);
    *out = NULL;
  } else {
    *n = (size_t)count;
  }
  return rc;
}

int case_repo_update(const ctxd_api_t *api, ctxd_tx_t *tx, const case_record_t *rec, int64_t old_version) {
  const case_aggregate_t *c = &rec->agg;
  char urges[24], urged[24], appointed[24], updated[24], version[24], old[24];
  case_int_format(c->urge_count, urges);
  case_int_format(c->last_urged_at, urged);
  case_int_format(rec->appointed_at, appointed);
  case_int_format(c->updated_at, updated);
  case_int_format(c->version, version);
  case_int_format(old_version, old);
  const char *params[] = {c->case_id,
                          case_status_name(c->status),
                          c->agent_id,
                          c->group_id,
                          appointed,
                          urges,
                          urged,
                          updated,
                          version,
                          old,
                          case_pay_status_name(c->pay_status)};
  ctxd_rows_t *rows;
  int rc = api->sql_exec(
      tx,
      "UPDATE cases.cases SET status = $2, agent_id = NULLIF($3, ''), group_id = NULLIF($4, ''),"
      " urge_count = $6, version = $9, pay_status = $11,"
      " appointed_at = " CASE_SQL_TIME("$5") ","
                                             " last_urged_at = " CASE_SQL_TIME(
                                                 "$7") ","
                                                       " updated_at = " CASE_SQL_TIME(
                                                           "$8") " WHERE case_id = $1 AND version = $10",
      11, params, &rows);
  if (rc != 0) return rc;
  /* another worker changed the case since it was read: decide again on the new state */
  rc = api->rows_affected(rows) == 1 ? 0 : CTXD_ECONFLICT;
  api->rows_free(rows);
  return rc;
}

int case_repo_log_append(const ctxd_api_t *api, ctxd_tx_t *tx, const case_record_t *rec,
                         const case_log_entry_t *entry) {
  char version[24], at[24];
  case_int_format(rec->agg.version, version);
  case_int_format(entry->at, at);
  const char *params[] = {rec->agg.case_id,
                          version,
                          case_action_name(entry->action),
                          entry->actor,
                          case_status_name(entry->from),
                          case_status_name(entry->to),
                          entry->agent_id,
                          entry->note,
                          at};
  return api->sql_exec(
      tx,
      "INSERT INTO cases.operation_log (case_id, version, action, actor, from_status, to_status,"
      " agent_id, note, at) VALUES ($1, $2, $3, $4, $5, $6, NULLIF($7, ''), NULLIF($8, ''), " CASE_SQL_TIME(
          "$9") ")",
      9, params, NULL);
}

/* ---- agents ---------------------------------------------------------------------------- */

int case_repo_agent_load_add(const ctxd_api_t *api, ctxd_tx_t *tx, const char *agent_id, int delta) {
  char d[24];
  case_int_format(delta, d);
  const char *params[] = {agent_id, d};
  return api->sql_exec(tx, "UPDATE cases.agents SET open_cases = open_cases + $2 WHERE agent_id = $1", 2,
                       params, NULL);
}

int case_repo_history_touch(const ctxd_api_t *api, ctxd_tx_t *tx, const char *order_id, const char *carrier,
                            const char *agent_id, int64_t at) {
  char ms[24];
  case_int_format(at, ms);
  const char *params[] = {order_id, agent_id, ms, carrier != NULL ? carrier : ""};
  return api->sql_exec(tx,
                       "INSERT INTO cases.order_history (order_id, agent_id, last_at, carrier)"
                       " VALUES ($1, $2, " CASE_SQL_TIME(
                           "$3") ", NULLIF($4, ''))"
                                 " ON CONFLICT (order_id, agent_id)"
                                 " DO UPDATE SET last_at = GREATEST(order_history.last_at, EXCLUDED.last_at),"
                                 " carrier = coalesce(EXCLUDED.carrier, order_history.carrier)",
                       4, params, NULL);
}

int case_repo_agent_duty_set(const ctxd_api_t *api, ctxd_tx_t *tx, const char *agent_id, int on_duty,
                             const char *at, int *applied) {
  const char *params[] = {agent_id, on_duty ? "true" : "false", at};
  ctxd_rows_t *rows;
  int rc = api->sql_exec(tx,
                         "INSERT INTO cases.agents (agent_id, on_duty, duty_changed_at) VALUES ($1, $2, $3)"
                         " ON CONFLICT (agent_id) DO UPDATE SET on_duty = EXCLUDED.on_duty,"
                         " duty_changed_at = EXCLUDED.duty_changed_at"
                         " WHERE agents.duty_changed_at <= EXCLUDED.duty_changed_at",
                         3, params, &rows);
  if (rc != 0) return rc;
  *applied = api->rows_affected(rows) == 1;
  api->rows_free(rows);
  return 0;
}

int case_repo_agent_groups(const ctxd_api_t *api, ctxd_tx_t *tx, const char *agent_id, json_t **groups) {
  const char *params[] = {agent_id};
  return case_doc_load(api, tx,
                       "SELECT coalesce(json_agg(group_id ORDER BY group_id), '[]')::text"
                       " FROM cases.skill_group_members WHERE agent_id = $1",
                       1, params, groups);
}

int case_repo_agent_facts(const ctxd_api_t *api, ctxd_tx_t *tx, const char *agent_id, const char *preferred,
                          case_agent_facts_t *out) {
  const char *params[] = {agent_id, preferred};
  ctxd_rows_t *rows;
  int rc = api->sql_exec(tx,
                         "SELECT coalesce(a.on_duty, false), coalesce(a.open_cases, 0),"
                         " (SELECT group_id FROM cases.skill_group_members WHERE agent_id = $1"
                         "  ORDER BY group_id = $2 DESC, group_id LIMIT 1)"
                         " FROM (SELECT 1) one LEFT JOIN cases.agents a ON a.agent_id = $1",
                         2, params, &rows);
  if (rc != 0) return rc;
  int64_t open = 0;
  out->on_duty = api->rows_value(rows, 0, 0)[0] == 't';
  rc = case_int_parse(api->rows_value(rows, 0, 1), &open);
  out->open_cases = (int)open;
  if (rc == 0) rc = case_str_load(out->group_id, sizeof out->group_id, api->rows_value(rows, 0, 2));
  out->in_preferred = rc == 0 && preferred[0] && strcmp(out->group_id, preferred) == 0;
  api->rows_free(rows);
  return rc;
}

/* ---- skill groups and rules ------------------------------------------------------------ */

int case_repo_group_put(const ctxd_api_t *api, ctxd_tx_t *tx, const char *group_id, int64_t version,
                        const char *name, const json_t *members, int *applied) {
  char v[24];
  case_int_format(version, v);
  const char *params[] = {group_id, name, v};
  ctxd_rows_t *rows;
  int rc =
      api->sql_exec(tx,
                    "INSERT INTO cases.skill_groups (group_id, name, version, removed)"
                    " VALUES ($1, coalesce($2, ''), $3, $2::text IS NULL)"
                    " ON CONFLICT (group_id) DO UPDATE SET name = EXCLUDED.name, version = EXCLUDED.version,"
                    " removed = EXCLUDED.removed WHERE skill_groups.version < EXCLUDED.version",
                    3, params, &rows);
  if (rc != 0) return rc;
  *applied = api->rows_affected(rows) == 1;
  api->rows_free(rows);
  if (!*applied) return 0;
  rc = api->sql_exec(tx, "DELETE FROM cases.skill_group_members WHERE group_id = $1", 1, params, NULL);
  if (rc != 0 || name == NULL) return rc;
  char *list = case_json_text(members);
  if (list == NULL) return CTXD_ENOMEM;
  const char *add[] = {group_id, list};
  rc = api->sql_exec(tx,
                     "INSERT INTO cases.skill_group_members (group_id, agent_id)"
                     " SELECT DISTINCT $1::text, a FROM jsonb_array_elements_text($2::jsonb) a",
                     2, add, NULL);
  free(list);
  return rc;
}

int case_repo_rule_put(const ctxd_api_t *api, ctxd_tx_t *tx, const char *rule_id, int64_t version,
                       const case_rule_def_t *def, int *applied) {
  /* a removal is a tombstone that matches nothing */
  json_t *empty = json_array();
  const case_rule_def_t tombstone = {
      .name = "", .conditions = empty, .group_id = "", .dispatch = CASE_DISPATCH_ROUND_ROBIN};
  const case_rule_def_t *d = def != NULL ? def : &tombstone;
  char v[24], priority[24];
  case_int_format(version, v);
  case_int_format(d->priority, priority);
  char *conditions = case_json_text(d->conditions);
  json_decref(empty);
  if (conditions == NULL) return CTXD_ENOMEM;
  const char *params[] = {rule_id,
                          d->name,
                          priority,
                          conditions,
                          d->group_id,
                          case_dispatch_name(d->dispatch),
                          d->prefer_previous ? "true" : "false",
                          d->enabled ? "true" : "false",
                          v,
                          def == NULL ? "true" : "false"};
  ctxd_rows_t *rows;
  int rc =
      api->sql_exec(tx,
                    "INSERT INTO cases.rules (rule_id, name, priority, conditions, group_id, strategy,"
                    " prefer_previous, enabled, version, removed)"
                    " VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7, $8, $9, $10)"
                    " ON CONFLICT (rule_id) DO UPDATE SET name = EXCLUDED.name, priority = EXCLUDED.priority,"
                    " conditions = EXCLUDED.conditions, group_id = EXCLUDED.group_id,"
                    " strategy = EXCLUDED.strategy, prefer_previous = EXCLUDED.prefer_previous,"
                    " enabled = EXCLUDED.enabled, version = EXCLUDED.version, removed = EXCLUDED.removed"
                    " WHERE rules.version < EXCLUDED.version",
                    10, params, &rows);
  free(conditions);
  if (rc != 0) return rc;
  *applied = api->rows_affected(rows) == 1;
  api->rows_free(rows);
  return 0;
}

size_t case_rule_combinations(const json_t *conditions) {
  size_t n = 1, i;
  json_t *c;
  json_array_foreach(conditions, i, c) {
    size_t values = json_array_size(json_object_get(c, "values"));
    if (values == 0) return 0;
    n = n > CASE_RULE_COMBINATIONS_MAX / values ? CASE_RULE_COMBINATIONS_MAX + 1 : n * values;
  }
  return n;
}

/* ---- the roster ------------------------------------------------------------------------- */

/* Writes the domain rules of definition r (a rules_doc element) at rules/conds; returns how
 * many rules. Combination t takes value (t / stride) % count of each condition, so every
 * combination of values appears once, all with the definition's priority and group. */
static size_t case_rule_expand(json_t *r, case_rule_t *rules, case_condition_t *conds,
                               unsigned char *prefer) {
  json_t *conditions = json_object_get(r, "conditions");
  size_t combos = case_rule_combinations(conditions), k = json_array_size(conditions);
  case_dispatch_t dispatch = CASE_DISPATCH_ROUND_ROBIN;
  if (combos > CASE_RULE_COMBINATIONS_MAX ||
      case_dispatch_parse(json_string_value(json_object_get(r, "dispatch")), &dispatch) != 0)
    return 0; /* refused when defined; never stored */
  for (size_t t = 0; t < combos; t++) {
    size_t stride = 1;
    for (size_t i = 0; i < k; i++) {
      json_t *c = json_array_get(conditions, i), *values = json_object_get(c, "values");
      size_t count = json_array_size(values);
      conds[t * k + i] =
          (case_condition_t){.op = CASE_MATCH_EQ,
                             .key = json_string_value(json_object_get(c, "feature")),
                             .text = json_string_value(json_array_get(values, (t / stride) % count))};
      stride *= count;
    }
    rules[t] = (case_rule_t){.id = json_string_value(json_object_get(r, "id")),
                             .priority = (int)json_integer_value(json_object_get(r, "priority")),
                             .conditions = k ? &conds[t * k] : NULL,
                             .n_conditions = k,
                             .group_id = json_string_value(json_object_get(r, "group")),
                             .dispatch = dispatch};
    prefer[t] = json_is_true(json_object_get(r, "prefer"));
  }
  return combos;
}

int case_repo_rules_load(const ctxd_api_t *api, ctxd_tx_t *tx, const char *default_group,
                         case_roster_store_t *s) {
  int rc = case_doc_load(api, tx,
                         "SELECT coalesce(json_agg(json_build_object('id', rule_id, 'priority', priority,"
                         " 'group', group_id, 'dispatch', strategy, 'prefer', prefer_previous,"
                         " 'conditions', conditions) ORDER BY priority, rule_id), '[]')::text"
                         " FROM cases.rules WHERE enabled AND NOT removed",
                         0, NULL, &s->rules_doc);
  if (rc != 0) return rc;
  size_t n_rules = 1, n_conds = 1, i; /* room for the catch-all rule */
  json_t *r;
  json_array_foreach(s->rules_doc, i, r) {
    size_t combos = case_rule_combinations(json_object_get(r, "conditions"));
    if (combos > CASE_RULE_COMBINATIONS_MAX) continue;
    n_rules += combos;
    n_conds += combos * json_array_size(json_object_get(r, "conditions"));
  }
  s->rules = calloc(n_rules, sizeof *s->rules);
  s->conditions = calloc(n_conds, sizeof *s->conditions);
  s->prefer = calloc(n_rules, sizeof *s->prefer);
  if (s->rules == NULL || s->conditions == NULL || s->prefer == NULL) return CTXD_ENOMEM;
  size_t at = 0, cat = 0;
  json_array_foreach(s->rules_doc, i, r) {
    size_t made = case_rule_expand(r, &s->rules[at], &s->conditions[cat], &s->prefer[at]);
    cat += made * json_array_size(json_object_get(r, "conditions"));
    at += made;
  }
  if (default_group[0]) {
    s->rules[at] = (case_rule_t){.id = "default",
                                 .priority = INT32_MAX,
                                 .group_id = default_group,
                                 .dispatch = CASE_DISPATCH_ROUND_ROBIN};
    s->prefer[at++] = 1;
  }
  s->roster.rules = s->rules;
  s->roster.n_rules = at;
  return 0;
}

int case_repo_cursor_lock(const ctxd_api_t *api, ctxd_tx_t *tx, const char *group_id,
                          case_roster_store_t *s) {
  const char *params[] = {group_id};
  ctxd_rows_t *rows;
  if (strlen(group_id) >= sizeof s->cursor.group_id) return CTXD_ETOOBIG;
  int rc = api->sql_exec(
      tx, "INSERT INTO cases.cursors (group_id, last_agent_id) VALUES ($1, '') ON CONFLICT DO NOTHING", 1,
      params, NULL);
  if (rc == 0)
    rc = api->sql_exec(tx, "SELECT last_agent_id FROM cases.cursors WHERE group_id = $1 FOR UPDATE", 1,
                       params, &rows);
  if (rc != 0) return rc;
  memset(&s->cursor, 0, sizeof s->cursor);
  memcpy(s->cursor.group_id, group_id, strlen(group_id));
  rc = case_str_load(s->cursor.last_agent_id, sizeof s->cursor.last_agent_id, api->rows_value(rows, 0, 0));
  api->rows_free(rows);
  s->roster.cursors = &s->cursor;
  s->roster.n_cursors = 1;
  return rc;
}

int case_repo_cursor_store(const ctxd_api_t *api, ctxd_tx_t *tx, const case_cursor_t *cursor) {
  const char *params[] = {cursor->group_id, cursor->last_agent_id};
  return api->sql_exec(tx, "UPDATE cases.cursors SET last_agent_id = $2 WHERE group_id = $1", 2, params,
                       NULL);
}

int case_repo_agents_load(const ctxd_api_t *api, ctxd_tx_t *tx, const char *group_id,
                          case_roster_store_t *s) {
  const char *params[] = {group_id};
  int rc = case_doc_load(api, tx,
                         "SELECT coalesce(json_agg(json_build_object('id', m.agent_id, 'group', m.group_id,"
                         " 'on_duty', coalesce(a.on_duty, false), 'open', coalesce(a.open_cases, 0))"
                         " ORDER BY m.agent_id), '[]')::text"
                         " FROM cases.skill_group_members m LEFT JOIN cases.agents a USING (agent_id)"
                         " WHERE m.group_id = $1",
                         1, params, &s->agents_doc);
  if (rc != 0) return rc;
  size_t n = json_array_size(s->agents_doc), i;
  json_t *a;
  if (n > 0 && (s->agents = calloc(n, sizeof *s->agents)) == NULL) return CTXD_ENOMEM;
  json_array_foreach(s->agents_doc, i, a) {
    s->agents[i] = (case_agent_t){.id = json_string_value(json_object_get(a, "id")),
                                  .group_id = json_string_value(json_object_get(a, "group")),
                                  .on_duty = json_is_true(json_object_get(a, "on_duty")),
                                  .open_cases = (int)json_integer_value(json_object_get(a, "open"))};
  }
  s->roster.agents = s->agents;
  s->roster.n_agents = n;
  return 0;
}

int case_repo_history_load(const ctxd_api_t *api, ctxd_tx_t *tx, const json_t *order_ids,
                           const json_t *carriers, case_roster_store_t *s) {
  char *ids = case_json_text(order_ids), *names = case_json_text(carriers);
  const char *params[] = {ids, names};
  int rc =
      ids != NULL && names != NULL
          ? case_doc_load(api, tx,
                          "SELECT coalesce(json_agg(json_build_object('order', order_id, 'agent', agent_id,"
                          " 'at', " CASE_SQL_MS(
                              "last_at") ", 'carrier', carrier)), '[]')::text"
                                         " FROM cases.order_history"
                                         " WHERE order_id IN (SELECT jsonb_array_elements_text($1::jsonb))"
                                         " OR carrier IN (SELECT jsonb_array_elements_text($2::jsonb))",
                          2, params, &s->history_doc)
          : CTXD_ENOMEM;
  free(ids);
  free(names);
  if (rc != 0) return rc;
  size_t n = json_array_size(s->history_doc), i;
  json_t *h;
  if (n > 0 && (s->history = calloc(n, sizeof *s->history)) == NULL) return CTXD_ENOMEM;
  json_array_foreach(s->history_doc, i, h) {
    s->history[i] = (case_handled_t){.order_id = json_string_value(json_object_get(h, "order")),
                                     .agent_id = json_string_value(json_object_get(h, "agent")),
                                     .at = json_integer_value(json_object_get(h, "at")),
                                     .carrier = json_string_value(json_object_get(h, "carrier"))};
  }
  s->roster.history = s->history;
  s->roster.n_history = n;
  return 0;
}

void case_roster_store_free(case_roster_store_t *s) {
  free(s->rules);
  free(s->conditions);
  free(s->prefer);
  free(s->agents);
  free(s->history);
  json_decref(s->rules_doc);
  json_decref(s->agents_doc);
  json_decref(s->history_doc);
  memset(s, 0, sizeof *s);
}

/* ---- the related documents' read model ------------------------------------------------------- */

int case_repo_document_put(const ctxd_api_t *api, ctxd_tx_t *tx, const char *biz_type, const char *biz_id,
                           const char *status, int valid, int64_t version) {
  char v[24];
  case_int_format(version, v);
  const char *params[] = {biz_type, biz_id, status, valid ? "true" : "false", v};
  return api->sql_exec(tx,
                       "INSERT INTO cases.related_documents (biz_type, biz_id, status, valid, version)"
                       " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (biz_type, biz_id) DO UPDATE"
                       " SET status = EXCLUDED.status, valid = EXCLUDED.valid, version = EXCLUDED.version"
                       " WHERE related_documents.version < EXCLUDED.version",
                       5, params, NULL);
}

int case_repo_document_get(const ctxd_api_t *api, ctxd_tx_t *tx, const char *biz_type, const char *biz_id,
                           case_doc_state_t *state, char *status, size_t cap) {
  const char *params[] = {biz_type, biz_id};
  ctxd_rows_t *rows;
  int rc = api->sql_exec(tx,
                         "SELECT valid::int, status FROM cases.related_documents"
                         " WHERE biz_type = $1 AND biz_id = $2 FOR UPDATE",
                         2, params, &rows);
  if (rc != 0) return rc;
  *state = CASE_DOC_UNKNOWN;
  status[0] = '\0';
  if (api->rows_count(rows) == 1) {
    *state = strcmp(api->rows_value(rows, 0, 0), "1") == 0 ? CASE_DOC_VALID : CASE_DOC_INVALID;
    rc = case_str_load(status, cap, api->rows_value(rows, 0, 1));
  }
  api->rows_free(rows);
  return rc;
}

int case_repo_open_case_find(const ctxd_api_t *api, ctxd_tx_t *tx, const char *biz_type, const char *biz_id,
                             char *case_id, size_t cap) {
  const char *params[] = {biz_type, biz_id};
  ctxd_rows_t *rows;
  int rc = api->sql_exec(
      tx,
      "SELECT case_id::text FROM cases.cases WHERE related_biz_type = $1 AND related_biz_id = $2"
      " AND status NOT IN ('Finished', 'Closed', 'Rejected') ORDER BY opened_at LIMIT 1",
      2, params, &rows);
  if (rc != 0) return rc;
  case_id[0] = '\0';
  if (api->rows_count(rows) == 1) rc = case_str_load(case_id, cap, api->rows_value(rows, 0, 0));
  api->rows_free(rows);
  return rc;
}

int case_repo_order_paid(const ctxd_api_t *api, ctxd_tx_t *tx, const char *order_number, int64_t paid_at,
                         int64_t *last) {
  char at[24];
  case_int_format(paid_at, at);
  const char *params[] = {order_number, at};
  ctxd_rows_t *rows;
  int rc = api->sql_exec(tx,
                         "INSERT INTO cases.order_payments (order_number, paid_at_ms) VALUES ($1, $2)"
                         " ON CONFLICT (order_number) DO UPDATE"
                         " SET paid_at_ms = greatest(order_payments.paid_at_ms, EXCLUDED.paid_at_ms)"
                         " RETURNING paid_at_ms",
                         2, params, &rows);
  if (rc != 0) return rc;
  if (api->rows_count(rows) != 1)
    rc = CTXD_EDECODE;
  else if (last != NULL)
    rc = case_int_parse(api->rows_value(rows, 0, 0), last);
  api->rows_free(rows);
  return rc;
}

int case_repo_unpaid(const ctxd_api_t *api, ctxd_tx_t *tx, const char *order_number, json_t **case_ids) {
  const char *params[] = {order_number};
  return case_doc_load(api, tx,
                       "SELECT coalesce(json_agg(case_id::text ORDER BY opened_at, case_id), '[]')::text"
                       " FROM cases.cases WHERE order_number = $1 AND pay_status = 'Unpaid'",
                       1, params, case_ids);
}

int case_repo_time_ms(const ctxd_api_t *api, ctxd_tx_t *tx, const char *iso, int64_t *ms) {
  const char *params[] = {iso};
  ctxd_rows_t *rows;
  int rc = api->sql_exec(tx, "SELECT (extract(epoch FROM $1::timestamptz) * 1000)::bigint", 1, params, &rows);
  if (rc != 0) return rc;
  const char *text = api->rows_value(rows, 0, 0); /* owned by rows */
  *ms = text != NULL ? strtoll(text, NULL, 10) : 0;
  rc = text != NULL ? 0 : CTXD_EDECODE;
  api->rows_free(rows);
  return rc;
}
