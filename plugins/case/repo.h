/* The Case context's repository: its tables in PostgreSQL, read and written in the
 * handler's transaction through the host's SQL. Cases carry a version (optimistic
 * concurrency: an update that finds another version is CTXD_ECONFLICT and the message is
 * retried); a skill group's round-robin cursor row is locked (SELECT ... FOR UPDATE) while
 * its cases are distributed, so two workers never hand out the same turn.
 *
 * Every function returns 0, or the error of the SQL it ran (CTXD_EDB, CTXD_ECONFLICT),
 * CTXD_EDECODE for a stored value that no longer parses, CTXD_ENOMEM. */
#ifndef CTXD_CASE_REPO_H
#define CTXD_CASE_REPO_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include <ctxd/ctxd.h>

#include "domain.h"

/* A contract string of at most 64 characters (4 bytes each in UTF-8) and its NUL. */
#define CASE_REF_LEN 257
/* CaseOpened.Subject: at most 200 characters. */
#define CASE_SUBJECT_CHARS 200
#define CASE_SUBJECT_LEN (CASE_SUBJECT_CHARS * 4 + 1)
/* A rule definition becomes one domain rule per combination of its conditions' values
 * (the domain matches single values); more than this is refused when defined. */
#define CASE_RULE_COMBINATIONS_MAX 256

/* A case as stored: the aggregate the domain decides on, and what the contracts say about
 * it besides. agg.fulfillment_id is the related business object's id and
 * agg.compensation_id the compensation's, or that id again when the case was opened by a
 * command about something else (the domain wants both). */
typedef struct {
  case_aggregate_t agg;
  int64_t case_type;
  char related_biz_type[CASE_REF_LEN];
  char related_biz_id[CASE_REF_LEN];
  char compensation_id[CASE_REF_LEN]; /* "" when the case is not about a compensation */
  char order_number[CASE_REF_LEN];    /* "" when the opener named none */
  char subject[CASE_SUBJECT_LEN];
  char opened_by[CASE_REF_LEN];
  int64_t appointed_at; /* ms: when the current agent got it; 0 while nobody holds it */
} case_record_t;

/* Inserts a new case (rec->agg as case_aggregate_open made it) with its free-text detail
 * (may be NULL). *inserted is 0 when the case id exists already (nothing written). */
int case_repo_insert(const ctxd_api_t *api, ctxd_tx_t *tx, const case_record_t *rec, const char *detail,
                     int *inserted);

/* Loads case `case_id` into rec; *found is 0 when there is none. */
int case_repo_load(const ctxd_api_t *api, ctxd_tx_t *tx, const char *case_id, case_record_t *rec, int *found);

/* The cases waiting for distribution, oldest first. *out is new (free() it; NULL when
 * *n is 0). */
int case_repo_waiting(const ctxd_api_t *api, ctxd_tx_t *tx, case_record_t **out, size_t *n);

/* Writes rec's state if the stored version is still old_version, else CTXD_ECONFLICT. */
int case_repo_update(const ctxd_api_t *api, ctxd_tx_t *tx, const case_record_t *rec, int64_t old_version);

/* Appends the operation-log entry of the action that made rec's current version. */
int case_repo_log_append(const ctxd_api_t *api, ctxd_tx_t *tx, const case_record_t *rec,
                         const case_log_entry_t *entry);

/* Adds delta to the open-case count of agent_id. */
int case_repo_agent_load_add(const ctxd_api_t *api, ctxd_tx_t *tx, const char *agent_id, int delta);

/* Records that agent_id held a case of order_id (of carrier `carrier`, NULL or "" when the
 * case names none) at `at` (ms): the same-order and same-carrier preferences. */
int case_repo_history_touch(const ctxd_api_t *api, ctxd_tx_t *tx, const char *order_id, const char *carrier,
                            const char *agent_id, int64_t at);

/* Sets agent_id on or off duty as of `at` (ISO 8601); *applied is 0 when a later change is
 * stored already (events may arrive out of order). */
int case_repo_agent_duty_set(const ctxd_api_t *api, ctxd_tx_t *tx, const char *agent_id, int on_duty,
                             const char *at, int *applied);

/* The skill groups agent_id belongs to, as a new JSON array of ids in id order
 * (json_decref it). */
int case_repo_agent_groups(const ctxd_api_t *api, ctxd_tx_t *tx, const char *agent_id, json_t **groups);

/* What a command that hands a case to an agent needs to know about them. */
typedef struct {
  int on_duty;
  int open_cases;
  char group_id[CASE_REF_LEN]; /* `preferred` when the agent is in it, else their first
                                  group by id, "" when in none */
  int in_preferred;
} case_agent_facts_t;

int case_repo_agent_facts(const ctxd_api_t *api, ctxd_tx_t *tx, const char *agent_id, const char *preferred,
                          case_agent_facts_t *out);

/* Creates or replaces (name non-NULL, members a JSON array of agent ids) or removes (name
 * NULL) skill group group_id at `version`; *applied is 0 when the stored version is equal
 * or newer. A removal leaves a tombstone so an older definition arriving late is ignored. */
int case_repo_group_put(const ctxd_api_t *api, ctxd_tx_t *tx, const char *group_id, int64_t version,
                        const char *name, const json_t *members, int *applied);

/* A distribution rule as DefineDistributionRule gives it. */
typedef struct {
  const char *rule_id;
  const char *name;
  int64_t priority;
  const json_t *conditions; /* [{"feature": "...", "values": ["...", ...]}, ...] */
  const char *group_id;
  case_dispatch_t dispatch;
  int prefer_previous;
  int enabled;
} case_rule_def_t;

/* Creates or replaces (def non-NULL) or removes (def NULL) rule rule_id, as
 * case_repo_group_put does for groups. */
int case_repo_rule_put(const ctxd_api_t *api, ctxd_tx_t *tx, const char *rule_id, int64_t version,
                       const case_rule_def_t *def, int *applied);

/* The domain rules a definition's conditions make (the product of their value counts; 0
 * when a condition lists no value: it never matches). Saturates above
 * CASE_RULE_COMBINATIONS_MAX. */
size_t case_rule_combinations(const json_t *conditions);

/* What distribution looks at, read from the tables; the roster borrows from the JSON
 * documents held here. */
typedef struct {
  case_roster_t roster;
  unsigned char *prefer; /* per domain rule: prefer an agent who handled the order */
  json_t *rules_doc, *agents_doc, *history_doc;
  case_rule_t *rules;
  case_condition_t *conditions;
  case_agent_t *agents;
  case_handled_t *history;
  case_cursor_t cursor;
} case_roster_store_t;

/* Loads the enabled rules by priority (ties: rule id), each expanded into its domain
 * rules, then a catch-all rule to default_group (round robin, last) unless it is "". */
int case_repo_rules_load(const ctxd_api_t *api, ctxd_tx_t *tx, const char *default_group,
                         case_roster_store_t *s);

/* Locks group_id's round-robin cursor until the transaction ends and puts it in the
 * roster: distribution of that group is serialised from here on. */
int case_repo_cursor_lock(const ctxd_api_t *api, ctxd_tx_t *tx, const char *group_id, case_roster_store_t *s);

/* Stores group's new cursor (its row is locked by case_repo_cursor_lock). */
int case_repo_cursor_store(const ctxd_api_t *api, ctxd_tx_t *tx, const case_cursor_t *cursor);

/* Loads the agents of group_id (with duty and load) into the roster. */
int case_repo_agents_load(const ctxd_api_t *api, ctxd_tx_t *tx, const char *group_id, case_roster_store_t *s);

/* Loads who handled the orders listed in order_ids, or cases of the carriers listed in
 * carriers (JSON arrays of strings), into the roster. */
int case_repo_history_load(const ctxd_api_t *api, ctxd_tx_t *tx, const json_t *order_ids,
                           const json_t *carriers, case_roster_store_t *s);

void case_roster_store_free(case_roster_store_t *s);

/* The read model of the documents cases are opened about (creation checks): the owning
 * contexts' events say that biz_type biz_id exists, its status and whether a case may be
 * opened for it. A put older than or as old as the stored version changes nothing. */
int case_repo_document_put(const ctxd_api_t *api, ctxd_tx_t *tx, const char *biz_type, const char *biz_id,
                           const char *status, int valid, int64_t version);

/* What the read model says of biz_type biz_id: *state (CASE_DOC_UNKNOWN when absent) and
 * its status into status[cap] ("" when absent). The row stays locked to the transaction's
 * end, so two cases opened about one document are decided one after the other. */
int case_repo_document_get(const ctxd_api_t *api, ctxd_tx_t *tx, const char *biz_type, const char *biz_id,
                           case_doc_state_t *state, char *status, size_t cap);

/* A case about biz_type biz_id not yet ended (Finished, Closed, Rejected) into case_id[cap],
 * "" when none. */
int case_repo_open_case_find(const ctxd_api_t *api, ctxd_tx_t *tx, const char *biz_type, const char *biz_id,
                             char *case_id, size_t cap);

/* The epoch milliseconds of an ISO 8601 time from a contract, read by the database as it
 * reads the other times it is given (a time without a zone in the session's zone). */
int case_repo_time_ms(const ctxd_api_t *api, ctxd_tx_t *tx, const char *iso, int64_t *ms);

/* Records that order_number was paid at paid_at (Paying's clock, epoch ms; 0 records
 * nothing new) and gives the latest payment time recorded for it in *last (0 none; last may
 * be NULL). The
 * order's row stays locked to the transaction's end: a case opened and a payment recorded
 * for one order are decided one after the other, so each payment is either known when a
 * case opens or sees that case. */
int case_repo_order_paid(const ctxd_api_t *api, ctxd_tx_t *tx, const char *order_number, int64_t paid_at,
                         int64_t *last);

/* The ids of the cases of order_number still waiting for their payment, oldest first, as a
 * new JSON array (json_decref it). */
int case_repo_unpaid(const ctxd_api_t *api, ctxd_tx_t *tx, const char *order_number, json_t **case_ids);

/* The schema, for the plugin's migrations. */
#define CASE_REPO_DDL                                                                                        \
  "CREATE SCHEMA cases;\n"                                                                                   \
  "CREATE TABLE cases.cases (\n"                                                                             \
  "  case_id uuid PRIMARY KEY,\n"                                                                            \
  "  case_type bigint NOT NULL,\n"                                                                           \
  "  related_biz_type text NOT NULL,\n"                                                                      \
  "  related_biz_id text NOT NULL,\n"                                                                        \
  "  compensation_id text,\n"                                                                                \
  "  order_id text NOT NULL,\n"                                                                              \
  "  order_number text,\n"                                                                                   \
  "  strategy text NOT NULL,\n"                                                                              \
  "  amount bigint NOT NULL,\n"                                                                              \
  "  reason text NOT NULL,\n"                                                                                \
  "  subject text NOT NULL,\n"                                                                               \
  "  detail text,\n"                                                                                         \
  "  opened_by text NOT NULL,\n"                                                                             \
  "  features json NOT NULL,\n"                                                                              \
  "  status text NOT NULL,\n"                                                                                \
  "  agent_id text,\n"                                                                                       \
  "  group_id text,\n"                                                                                       \
  "  appointed_at timestamptz,\n"                                                                            \
  "  urge_count int NOT NULL DEFAULT 0,\n"                                                                   \
  "  last_urged_at timestamptz,\n"                                                                           \
  "  opened_at timestamptz NOT NULL,\n"                                                                      \
  "  updated_at timestamptz NOT NULL,\n"                                                                     \
  "  version bigint NOT NULL\n"                                                                              \
  ");\n"                                                                                                     \
  "CREATE INDEX cases_waiting ON cases.cases (opened_at) WHERE status = 'WaitDistribution';\n"               \
  "CREATE TABLE cases.operation_log (\n"                                                                     \
  "  id bigserial PRIMARY KEY,\n"                                                                            \
  "  case_id uuid NOT NULL REFERENCES cases.cases,\n"                                                        \
  "  version bigint NOT NULL,\n"                                                                             \
  "  action text NOT NULL,\n"                                                                                \
  "  actor text NOT NULL,\n"                                                                                 \
  "  from_status text,\n"                                                                                    \
  "  to_status text NOT NULL,\n"                                                                             \
  "  agent_id text,\n"                                                                                       \
  "  note text,\n"                                                                                           \
  "  at timestamptz NOT NULL,\n"                                                                             \
  "  UNIQUE (case_id, version)\n"                                                                            \
  ");\n"                                                                                                     \
  "CREATE TABLE cases.agents (\n"                                                                            \
  "  agent_id text PRIMARY KEY,\n"                                                                           \
  "  on_duty boolean NOT NULL,\n"                                                                            \
  "  duty_changed_at timestamptz NOT NULL,\n"                                                                \
  "  open_cases int NOT NULL DEFAULT 0\n"                                                                    \
  ");\n"                                                                                                     \
  "CREATE TABLE cases.skill_groups (\n"                                                                      \
  "  group_id text PRIMARY KEY,\n"                                                                           \
  "  name text NOT NULL,\n"                                                                                  \
  "  version bigint NOT NULL,\n"                                                                             \
  "  removed boolean NOT NULL\n"                                                                             \
  ");\n"                                                                                                     \
  "CREATE TABLE cases.skill_group_members (\n"                                                               \
  "  group_id text NOT NULL REFERENCES cases.skill_groups,\n"                                                \
  "  agent_id text NOT NULL,\n"                                                                              \
  "  PRIMARY KEY (group_id, agent_id)\n"                                                                     \
  ");\n"                                                                                                     \
  "CREATE INDEX skill_group_members_agent ON cases.skill_group_members (agent_id);\n"                        \
  "CREATE TABLE cases.rules (\n"                                                                             \
  "  rule_id text PRIMARY KEY,\n"                                                                            \
  "  name text NOT NULL,\n"                                                                                  \
  "  priority int NOT NULL,\n"                                                                               \
  "  conditions jsonb NOT NULL,\n"                                                                           \
  "  group_id text NOT NULL,\n"                                                                              \
  "  strategy text NOT NULL,\n"                                                                              \
  "  prefer_previous boolean NOT NULL,\n"                                                                    \
  "  enabled boolean NOT NULL,\n"                                                                            \
  "  version bigint NOT NULL,\n"                                                                             \
  "  removed boolean NOT NULL\n"                                                                             \
  ");\n"                                                                                                     \
  "CREATE TABLE cases.cursors (\n"                                                                           \
  "  group_id text PRIMARY KEY,\n"                                                                           \
  "  last_agent_id text NOT NULL\n"                                                                          \
  ");\n"                                                                                                     \
  "CREATE TABLE cases.order_history (\n"                                                                     \
  "  order_id text NOT NULL,\n"                                                                              \
  "  agent_id text NOT NULL,\n"                                                                              \
  "  last_at timestamptz NOT NULL,\n"                                                                        \
  "  PRIMARY KEY (order_id, agent_id)\n"                                                                     \
  ");\n"

/* Migration 2: pay status and auto-acceptance, the carrier of the history, and the read
 * model of related documents for the creation checks. */
#define CASE_REPO_DDL_2                                                                                      \
  "ALTER TABLE cases.cases ADD COLUMN pay_status text NOT NULL DEFAULT 'NotRequired',\n"                     \
  "  ADD COLUMN auto_accept boolean NOT NULL DEFAULT false;\n"                                               \
  "CREATE INDEX cases_unpaid ON cases.cases (order_number) WHERE pay_status = 'Unpaid';\n"                   \
  "ALTER TABLE cases.order_history ADD COLUMN carrier text;\n"                                               \
  "CREATE INDEX order_history_carrier ON cases.order_history (carrier) WHERE carrier IS NOT NULL;\n"         \
  "CREATE TABLE cases.related_documents (\n"                                                                 \
  "  biz_type text NOT NULL,\n"                                                                              \
  "  biz_id text NOT NULL,\n"                                                                                \
  "  status text NOT NULL,\n"                                                                                \
  "  valid boolean NOT NULL,\n"                                                                              \
  "  version bigint NOT NULL,\n"                                                                             \
  "  PRIMARY KEY (biz_type, biz_id)\n"                                                                       \
  ");\n"

/* Migration 3: the last payment time (Paying's clock) of each order as the case context
 * saw it, and on each case the one known when it opened: a payment pays a case only when
 * later by the same clock. Beside the related documents, not in them: a payment does not
 * make an order valid to open cases about. Where a case may be opened about a fulfillment
 * already having one: found by its document. */
#define CASE_REPO_DDL_3                                                                                      \
  "CREATE TABLE cases.order_payments (\n"                                                                    \
  "  order_number text PRIMARY KEY,\n"                                                                       \
  "  paid_at_ms bigint NOT NULL\n"                                                                           \
  ");\n"                                                                                                     \
  "ALTER TABLE cases.cases ADD COLUMN paid_before_ms bigint NOT NULL DEFAULT 0;\n"                           \
  "CREATE INDEX cases_related ON cases.cases (related_biz_type, related_biz_id);\n"

#endif
