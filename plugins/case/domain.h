/* Case context, pure domain (seed 002, the "coordination case"): when automation fails a
 * fulfillment, a case is opened for a human agent; it moves through a fixed status table
 * (case_action_allowed), every accepted action yields an operation-log entry and a
 * status-changed event, and automatic distribution picks the agent.
 *
 * Pure: no I/O, no globals, no allocation. Everything a function needs comes in as
 * arguments and everything it decides goes out in caller-owned structs, so the handler can
 * persist the result in its transaction (and the same input always gives the same answer).
 * Strings kept in results are copied into fixed buffers; pointers that results hold into
 * inputs are marked "borrowed" and live as long as those inputs. */
#ifndef CTXD_CASE_DOMAIN_H
#define CTXD_CASE_DOMAIN_H

#include <stddef.h>
#include <stdint.h>

#include <ctxd/errno.h>

/* Buffer sizes, terminating NUL included: ids (case, order, fulfillment, compensation,
 * agent, group, actor) hold 63 bytes of text, free texts (reason, note) 255. */
#define CASE_ID_LEN 64
#define CASE_TEXT_LEN 256
#define CASE_FEATURE_KEY_LEN 32
#define CASE_FEATURE_VALUE_LEN 64
/* Features per case, the two built-in ones ("strategy", "amount") included. */
#define CASE_FEATURES_MAX 8
#define CASE_REJECTION_LEN 192

/* ---- statuses, actions and their names ------------------------------------------------ */

typedef enum {
  CASE_STATUS_NONE = -1, /* "before the case existed": the from-status of the opening */
  CASE_STATUS_WAIT_DISTRIBUTION = 0,
  CASE_STATUS_WAIT_PROCESS,
  CASE_STATUS_APPOINT_PROCESS,
  CASE_STATUS_PROCESSING,
  CASE_STATUS_PENDING_ACCEPTANCE,
  CASE_STATUS_FINISHED,
  CASE_STATUS_CLOSED,
  CASE_STATUS_REJECTED,
  CASE_STATUS_COUNT
} case_status_t;

typedef enum {
  CASE_ACTION_OPEN = 0,    /* only through case_aggregate_open: a case opens once */
  CASE_ACTION_ASSIGN,      /* to an agent, by automatic distribution */
  CASE_ACTION_APPOINT,     /* to an agent, by hand (a supervisor's choice) */
  CASE_ACTION_ACCEPT,      /* the agent takes the case up ("handle") */
  CASE_ACTION_TRANSFER,    /* to another on-duty agent of the same skill group */
  CASE_ACTION_PROCESS,     /* work done, waiting for acceptance */
  CASE_ACTION_REJECT_BACK, /* acceptance failed, back to processing */
  CASE_ACTION_COMPLETE,
  CASE_ACTION_CLOSE,
  CASE_ACTION_REFUSE,
  CASE_ACTION_URGE, /* recorded and counted, status unchanged */
  CASE_ACTION_PAY,  /* the payment the case waits for arrived (pay status Paid), status unchanged */
  CASE_ACTION_COUNT
} case_action_t;

/* What a case compensates (the compensation's strategy). */
typedef enum {
  CASE_STRATEGY_REFUND = 0,
  CASE_STRATEGY_RESHIP,
  CASE_STRATEGY_NON_PRODUCT,
  CASE_STRATEGY_COUNT
} case_strategy_t;

/* The seed's needPayFlag and payStatus: a case that needs a payment (the customer pays a
 * difference, a fee) cannot be completed before it is paid. */
typedef enum { CASE_PAY_NOT_REQUIRED = 0, CASE_PAY_UNPAID, CASE_PAY_PAID, CASE_PAY_COUNT } case_pay_status_t;

/* How a distribution rule picks an agent inside its skill group. */
typedef enum {
  CASE_DISPATCH_ROUND_ROBIN = 0,
  CASE_DISPATCH_LEAST_LOADED,
  CASE_DISPATCH_COUNT
} case_dispatch_t;

/* Stable names used in messages and JSON: statuses "WaitDistribution", "WaitProcess",
 * "AppointProcess", "Processing", "PendingAcceptance", "Finished", "Closed", "Rejected";
 * actions "open", "assign", "appoint", "accept", "transfer", "process", "reject_back",
 * "complete", "close", "refuse", "urge", "pay"; strategies "refund", "reship", "non_product";
 * dispatch "round_robin", "least_loaded"; pay statuses "NotRequired", "Unpaid", "Paid". Each returns a static string (never freed), or
 * NULL for a value without a name (CASE_STATUS_NONE, out of range): JSON null. */
const char *case_status_name(case_status_t s);
const char *case_action_name(case_action_t a);
const char *case_strategy_name(case_strategy_t s);
const char *case_dispatch_name(case_dispatch_t d);
const char *case_pay_status_name(case_pay_status_t p);

/* Parse an exact (case-sensitive) name back: 0 with *out set, or CTXD_EINVAL (NULL or
 * unknown name; *out untouched). */
int case_status_parse(const char *name, case_status_t *out);
int case_action_parse(const char *name, case_action_t *out);
int case_strategy_parse(const char *name, case_strategy_t *out);
int case_dispatch_parse(const char *name, case_dispatch_t *out);
int case_pay_status_parse(const char *name, case_pay_status_t *out);

/* 1 when the status table lets action a run on a case in status s, else 0. */
int case_action_allowed(case_action_t a, case_status_t s);

/* ---- the case -------------------------------------------------------------------------- */

/* One key/value feature that distribution rules match on. */
typedef struct {
  char key[CASE_FEATURE_KEY_LEN];
  char value[CASE_FEATURE_VALUE_LEN];
} case_feature_t;

/* The aggregate, a plain value: actions never modify it, they return the next one. */
typedef struct {
  char case_id[CASE_ID_LEN];
  char order_id[CASE_ID_LEN];
  char fulfillment_id[CASE_ID_LEN];
  char compensation_id[CASE_ID_LEN];
  case_strategy_t strategy;
  int64_t amount; /* minor units */
  char reason[CASE_TEXT_LEN];
  /* "strategy" and "amount" (decimal) first, then the opener's extra features */
  case_feature_t features[CASE_FEATURES_MAX];
  size_t n_features;
  case_status_t status;
  char agent_id[CASE_ID_LEN]; /* who holds the case; "" until assigned */
  char group_id[CASE_ID_LEN]; /* that agent's skill group; "" until assigned */
  int urge_count;
  int64_t last_urged_at; /* 0 until urged */
  int auto_accept;       /* the seed's autoAcceptCoordinationFlag: processed means accepted */
  case_pay_status_t pay_status;
  int64_t paid_before; /* the order's last payment time (Paying's clock) known when the case
                          opened, 0 none: only a payment made later pays the case */
  int64_t opened_at;   /* times: whatever unit the caller uses (ms since epoch) */
  int64_t updated_at;
  int64_t version; /* 1 when opened, +1 per accepted action: optimistic-concurrency token */
} case_aggregate_t;

/* An agent as distribution and transfer see it. An agent in several skill groups is listed
 * once per group. Strings are borrowed from the caller. */
typedef struct {
  const char *id;
  const char *group_id;
  int on_duty;    /* 1 while at work: only such agents receive cases */
  int open_cases; /* cases the agent holds and has not finished (least loaded) */
} case_agent_t;

/* Operation-log entry of one accepted action. */
typedef struct {
  case_action_t action;
  char actor[CASE_ID_LEN];
  int64_t at;
  case_status_t from; /* CASE_STATUS_NONE for the opening */
  case_status_t to;
  char agent_id[CASE_ID_LEN]; /* the case's agent after the action ("" when none) */
  char note[CASE_TEXT_LEN];
} case_log_entry_t;

/* The status-changed event of one accepted action (CaseStatusChanged). from == to for
 * actions that keep the status (transfer, urge): they are published too, as the seed's
 * repository does, so followers learn of the new agent or the urge. */
typedef struct {
  char case_id[CASE_ID_LEN];
  char order_id[CASE_ID_LEN];
  case_action_t action;
  case_status_t from; /* CASE_STATUS_NONE for the opening */
  case_status_t to;
  char agent_id[CASE_ID_LEN];
  char group_id[CASE_ID_LEN];
  int64_t at;
} case_event_t;

/* What open and apply return. On 0, next/log/event are filled and rejection is "". On a
 * refusal only rejection is meaningful: a sentence naming the reason, e.g. "cannot
 * complete a case in status WaitDistribution". */
typedef struct {
  case_aggregate_t next;
  case_log_entry_t log;
  case_event_t event;
  char rejection[CASE_REJECTION_LEN];
} case_outcome_t;

/* Opening a case for a failed fulfillment. Strings are borrowed for the call only. */
typedef struct {
  const char *case_id; /* all four ids required */
  const char *order_id;
  const char *fulfillment_id;
  const char *compensation_id;
  case_strategy_t strategy;
  int64_t amount;                 /* >= 0, minor units */
  const char *reason;             /* may be NULL or "" */
  const case_feature_t *features; /* extra features; keys non-empty, unique, not built-in */
  size_t n_features;
  int64_t at;
  int need_pay;        /* 1: pay status Unpaid until CASE_ACTION_PAY; 0: NotRequired */
  int auto_accept;     /* 1: processing the case completes it (case_auto_accept_due) */
  int64_t paid_before; /* the order's last payment time known (case_aggregate_t), 0 none */
} case_open_cmd_t;

/* Opens a case in WaitDistribution, logged as action "open" by actor "system" (cases are
 * opened automatically) with from CASE_STATUS_NONE. Returns 0, CTXD_EINVAL (missing id,
 * bad strategy, negative amount, empty/duplicate/built-in feature key) or CTXD_ETOOBIG
 * (a text longer than its buffer, too many features), with out->rejection saying which. */
int case_aggregate_open(const case_open_cmd_t *cmd, case_outcome_t *out);

/* ---- creation checks (seed: 创建协同单 1. 判断关联业务单是否非法 2. 问题分类是否符合条件) -------- */

/* What the case context knows of the related business document (its read model). */
typedef enum {
  CASE_DOC_UNKNOWN = 0, /* never heard of */
  CASE_DOC_VALID,
  CASE_DOC_INVALID /* known, in a state no case may be opened for (e.g. a terminated order) */
} case_doc_state_t;

/* A problem category (CaseType) and a kind of related document it may be opened for. */
typedef struct {
  int64_t case_type;
  char related_biz_type[CASE_ID_LEN];
} case_category_t;

typedef struct {
  int64_t case_type;
  const char *related_biz_type;
  const char *related_biz_id;
  case_doc_state_t doc;
  const char *doc_status;            /* the document's status as known, for the refusal; may be NULL */
  const case_category_t *categories; /* the qualifying pairs; borrowed */
  size_t n_categories;
  const char *open_case_id; /* a case about the document not yet ended, or NULL / "" */
} case_open_check_t;

/* The seed's two creation checks, in its order: the related document must be known and
 * valid, then the category must qualify for that kind of document. A fulfillment is not
 * valid while a case about it is open: that case's resolution decides it, and a second one
 * could resolve it the other way. Returns 0, CTXD_ENOENT
 * (document unknown), CTXD_ESTATE (document invalid), CTXD_ERANGE (category does not
 * qualify) or CTXD_EINVAL (NULL arguments), with why[cap] saying which ("" on 0). */
int case_open_qualify(const case_open_check_t *chk, char *why, size_t cap);

/* Parses the qualifying categories, "<CaseType>:<kind>[,<kind>...][;...]", e.g.
 * "1:fulfillment;12:compensation,order", into out[cap]; *n gets the count. Returns 0,
 * CTXD_EINVAL (syntax: a type that is not a positive integer, an empty kind) or
 * CTXD_ETOOBIG (more than cap pairs, a kind longer than CASE_ID_LEN - 1). */
int case_categories_parse(const char *text, case_category_t *out, size_t cap, size_t *n);

/* One action on an existing case. Strings and agent are borrowed for the call only. */
typedef struct {
  case_action_t action;
  const char *actor; /* required: who acts ("distribution" when automatic) */
  int64_t at;
  const char *note; /* may be NULL or "" */
  /* assign, appoint, transfer: the agent who receives the case (must be on duty; for a
   * transfer also in the case's skill group and not its current agent). accept: the
   * agent who takes the case (接手), whoever it is: they become its follower, in their
   * group (group_id may be "": the case keeps its group). Else ignored. */
  const case_agent_t *agent;
  /* pay: when the payment was made (the order system's PaidAt). Only a payment later than
   * the case's opening pays it: an order paid before (its payment repeated or re-sent)
   * is what the case was opened about, not the payment it waits for. */
  int64_t paid_at;
} case_action_cmd_t;

/* Applies cmd to cur; cur is never modified. Returns 0 with the next state, its log entry
 * and event in out; CTXD_ESTATE when the status table refuses ("cannot <verb> a case in
 * status <Status>"), or when the table allows it but the payment does not (complete while
 * Unpaid, pay while not Unpaid: "cannot <verb> a case whose pay status is <PayStatus>"),
 * or for a payment made before the case was opened; 
 * CTXD_EINVAL for a malformed command (no actor, no agent where one is
 * needed, unknown action) or an ineligible agent (off duty, other group, same agent);
 * CTXD_ETOOBIG for a text longer than its buffer. Every refusal fills out->rejection. */
int case_aggregate_apply(const case_aggregate_t *cur, const case_action_cmd_t *cmd, case_outcome_t *out);

/* The value of feature key, or NULL when the case has none. Borrowed from c. */
const char *case_feature_get(const case_aggregate_t *c, const char *key);

/* 1 when c should now be completed by auto-acceptance: its flag is set, it waits for
 * acceptance and owes no payment. The caller then applies CASE_ACTION_COMPLETE. */
int case_auto_accept_due(const case_aggregate_t *c);

/* The case feature naming the carrier (航司): distribution prefers an agent who handled
 * the same carrier before, after the same order. */
#define CASE_FEATURE_CARRIER "Carrier"

/* ---- automatic distribution ------------------------------------------------------------- */

typedef enum {
  CASE_MATCH_ANY = 0, /* always true */
  CASE_MATCH_EQ,      /* feature `key` equals `text` */
  CASE_MATCH_GE       /* feature `key` is a decimal integer >= `number` */
} case_match_op_t;

typedef struct {
  case_match_op_t op;
  const char *key;
  const char *text;
  int64_t number;
} case_condition_t;

/* A distribution rule: when all its conditions hold (none, or only ANY: every case), the
 * case goes to skill group group_id, picked by dispatch. Smaller priority wins; equal
 * priorities keep the order of the rules array. Strings borrowed from the caller. */
typedef struct {
  const char *id;
  int priority;
  const case_condition_t *conditions;
  size_t n_conditions;
  const char *group_id;
  case_dispatch_t dispatch;
} case_rule_t;

/* "agent_id handled a case of order_id (of carrier `carrier`) at `at`": the same-order
 * and same-carrier preferences. order_id may be "" and carrier NULL or "" (not known). */
typedef struct {
  const char *order_id;
  const char *agent_id;
  int64_t at;
  const char *carrier;
} case_handled_t;

/* Round-robin position of one skill group: the agent who got its last round-robin case.
 * State the caller keeps (one per group) and passes back in. */
typedef struct {
  char group_id[CASE_ID_LEN];
  char last_agent_id[CASE_ID_LEN];
} case_cursor_t;

/* Everything distribution looks at; all borrowed from the caller. Arrays may be NULL when
 * their count is 0. */
typedef struct {
  const case_rule_t *rules;
  size_t n_rules;
  const case_agent_t *agents;
  size_t n_agents;
  const case_handled_t *history;
  size_t n_history;
  const case_cursor_t *cursors; /* at most one per group; a group without one starts fresh */
  size_t n_cursors;
} case_roster_t;

typedef enum {
  CASE_PICK_ASSIGNED = 0,
  CASE_PICK_NO_RULE, /* no rule matches the case: it waits */
  CASE_PICK_NO_AGENT /* the matching rule's group has nobody on duty: it waits */
} case_pick_outcome_t;

typedef enum {
  CASE_VIA_PREVIOUS_HANDLER = 0, /* on duty in the group and handled the same order before */
  CASE_VIA_ROUND_ROBIN,
  CASE_VIA_LEAST_LOADED,
  CASE_VIA_SAME_CARRIER /* on duty in the group and handled a case of the same carrier before */
} case_via_t;

typedef struct {
  case_pick_outcome_t outcome;
  size_t rule;               /* index in roster->rules; meaningless for NO_RULE */
  const case_agent_t *agent; /* borrowed from roster->agents; NULL unless ASSIGNED */
  case_via_t via;            /* meaningful when ASSIGNED */
  int cursor_moved;          /* 1 when the round robin advanced: store `cursor` */
  case_cursor_t cursor;      /* the group's new cursor when cursor_moved */
} case_pick_t;

/* Decides who gets case c:
 *  1. the rule: the matching rule of smallest priority (ties: earlier in the array). Only
 *     that rule counts: when its group has nobody on duty the case waits rather than
 *     falling to a group without the skill.
 *  2. eligible agents: those of the rule's group with on_duty set.
 *  3. same order: among eligible agents who handled c's order before (history), the one
 *     who did so most recently (ties: smaller id, strcmp). Does not move the cursor.
 *  3b. same carrier: when nobody handled the order, the same among those who handled a
 *     case of c's carrier (feature CASE_FEATURE_CARRIER) before. Does not move the cursor.
 *  4. else the rule's dispatch. Round robin: eligible agents in id order (strcmp); the
 *     first id after the group's cursor, wrapping to the smallest; no cursor: the
 *     smallest. Least loaded: fewest open_cases; ties: smaller id.
 * Returns 0 with out filled (the caller then applies CASE_ACTION_ASSIGN with out->agent),
 * or CTXD_EINVAL for a malformed roster (NULL array with a count, rule without group,
 * condition without key, agent without id or group), CTXD_ETOOBIG for an id longer than a
 * cursor holds. */
int case_distribution_pick(const case_roster_t *roster, const case_aggregate_t *c, case_pick_t *out);

/* One decision of case_distribution_on_duty. */
typedef struct {
  size_t case_index;         /* index in the waiting array */
  const case_agent_t *agent; /* borrowed from roster->agents */
  case_via_t via;
} case_assignment_t;

/* When `arrived` (an agent listed in roster->agents with on_duty set) comes on duty, says
 * which of the waiting cases go to whom: each waiting case (status WaitDistribution; others
 * are skipped) whose matching rule sends it to arrived's group is picked as by
 * case_distribution_pick, in array order (pass them oldest first), counting the cases
 * already given out in this call in each agent's load and advancing the group's round
 * robin from case to case. Cases of other groups are left alone: nothing changed for them.
 * out needs room for n_waiting entries; *n_out gets the count. *cursor gets arrived's
 * group's cursor after the call and *cursor_moved says whether it changed (store it then).
 * Returns 0, or the errors of case_distribution_pick, or CTXD_EINVAL when arrived is not
 * listed on duty in roster->agents. */
int case_distribution_on_duty(const case_roster_t *roster, const case_agent_t *arrived,
                              const case_aggregate_t *waiting, size_t n_waiting, case_assignment_t *out,
                              size_t *n_out, case_cursor_t *cursor, int *cursor_moved);

#endif
