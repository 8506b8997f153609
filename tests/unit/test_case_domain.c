/* Case domain (plugins/case): the status table action by action and status by status, the
 * operation log and events, and automatic distribution. Expected values are written out
 * here, independently of the table in domain.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <ctxd/errno.h>

#include "domain.h"

#define LEN(a) (sizeof(a) / sizeof *(a))

/* ---- fixtures --------------------------------------------------------------------------- */

/* An opened refund case for order o-1, amount 12.50, extra feature channel=app. */
static case_aggregate_t opened(const char *case_id, const char *order_id, case_strategy_t st,
                               int64_t amount) {
  case_feature_t extra[1];
  memset(extra, 0, sizeof extra);
  strcpy(extra[0].key, "channel");
  strcpy(extra[0].value, "app");
  case_open_cmd_t cmd = {.case_id = case_id,
                         .order_id = order_id,
                         .fulfillment_id = "f-1",
                         .compensation_id = "cp-1",
                         .strategy = st,
                         .amount = amount,
                         .reason = "refund timed out",
                         .features = extra,
                         .n_features = 1,
                         .at = 1000};
  case_outcome_t o;
  assert_int_equal(case_aggregate_open(&cmd, &o), 0);
  return o.next;
}

/* A case in status s, held by ann of group g-refund when s is past distribution. */
static case_aggregate_t in_status(case_status_t s) {
  case_aggregate_t c = opened("c-1", "o-1", CASE_STRATEGY_REFUND, 1250);
  c.status = s;
  if (s != CASE_STATUS_WAIT_DISTRIBUTION) {
    strcpy(c.agent_id, "ann");
    strcpy(c.group_id, "g-refund");
  }
  return c;
}

static const case_agent_t bob_on = {"bob", "g-refund", 1, 0};

/* ---- names ------------------------------------------------------------------------------ */

static void test_names_round_trip(void **state) {
  (void)state;
  static const char *const statuses[] = {"WaitDistribution",  "WaitProcess", "AppointProcess", "Processing",
                                         "PendingAcceptance", "Finished",    "Closed",         "Rejected"};
  static const char *const acts[] = {"open",        "assign",   "appoint", "accept", "transfer", "process",
                                     "reject_back", "complete", "close",   "refuse", "urge",     "pay"};
  static const char *const strategies[] = {"refund", "reship", "non_product"};
  static const char *const dispatch[] = {"round_robin", "least_loaded"};
  assert_int_equal(LEN(statuses), CASE_STATUS_COUNT);
  assert_int_equal(LEN(acts), CASE_ACTION_COUNT);
  for (int i = 0; i < CASE_STATUS_COUNT; i++) {
    case_status_t s = CASE_STATUS_NONE;
    assert_string_equal(case_status_name((case_status_t)i), statuses[i]);
    assert_int_equal(case_status_parse(statuses[i], &s), 0);
    assert_int_equal(s, i);
  }
  for (int i = 0; i < CASE_ACTION_COUNT; i++) {
    case_action_t a = CASE_ACTION_COUNT;
    assert_string_equal(case_action_name((case_action_t)i), acts[i]);
    assert_int_equal(case_action_parse(acts[i], &a), 0);
    assert_int_equal(a, i);
  }
  for (int i = 0; i < CASE_STRATEGY_COUNT; i++) {
    case_strategy_t s = CASE_STRATEGY_COUNT;
    assert_string_equal(case_strategy_name((case_strategy_t)i), strategies[i]);
    assert_int_equal(case_strategy_parse(strategies[i], &s), 0);
    assert_int_equal(s, i);
  }
  for (int i = 0; i < CASE_DISPATCH_COUNT; i++) {
    case_dispatch_t d = CASE_DISPATCH_COUNT;
    assert_string_equal(case_dispatch_name((case_dispatch_t)i), dispatch[i]);
    assert_int_equal(case_dispatch_parse(dispatch[i], &d), 0);
    assert_int_equal(d, i);
  }
  assert_null(case_status_name(CASE_STATUS_NONE));
  assert_null(case_status_name(CASE_STATUS_COUNT));
  assert_null(case_action_name(CASE_ACTION_COUNT));
  assert_null(case_strategy_name((case_strategy_t)-1));
  assert_null(case_dispatch_name(CASE_DISPATCH_COUNT));
  case_status_t s = CASE_STATUS_CLOSED;
  assert_int_equal(case_status_parse("processing", &s), CTXD_EINVAL); /* case-sensitive */
  assert_int_equal(case_status_parse(NULL, &s), CTXD_EINVAL);
  assert_int_equal(s, CASE_STATUS_CLOSED);
  case_action_t a;
  assert_int_equal(case_action_parse("reject back", &a), CTXD_EINVAL);
  case_strategy_t st;
  assert_int_equal(case_strategy_parse("voucher", &st), CTXD_EINVAL);
  case_dispatch_t d;
  assert_int_equal(case_dispatch_parse("random", &d), CTXD_EINVAL);
  assert_int_equal(case_dispatch_parse("round_robin", NULL), CTXD_EINVAL);
}

/* ---- open ------------------------------------------------------------------------------- */

static void test_open_fills_case_log_and_event(void **state) {
  (void)state;
  case_feature_t extra[2];
  memset(extra, 0, sizeof extra);
  strcpy(extra[0].key, "channel");
  strcpy(extra[0].value, "app");
  strcpy(extra[1].key, "country");
  strcpy(extra[1].value, "CN");
  case_open_cmd_t cmd = {
      "c-9", "o-9", "f-9", "cp-9", CASE_STRATEGY_RESHIP, 4200, "order system refused", extra, 2,
      777,   0,     0,     0};
  case_outcome_t o;
  memset(&o, 0x5a, sizeof o);
  assert_int_equal(case_aggregate_open(&cmd, &o), 0);
  const case_aggregate_t *c = &o.next;
  assert_string_equal(c->case_id, "c-9");
  assert_string_equal(c->order_id, "o-9");
  assert_string_equal(c->fulfillment_id, "f-9");
  assert_string_equal(c->compensation_id, "cp-9");
  assert_int_equal(c->strategy, CASE_STRATEGY_RESHIP);
  assert_int_equal(c->amount, 4200);
  assert_string_equal(c->reason, "order system refused");
  assert_int_equal(c->status, CASE_STATUS_WAIT_DISTRIBUTION);
  assert_string_equal(c->agent_id, "");
  assert_string_equal(c->group_id, "");
  assert_int_equal(c->urge_count, 0);
  assert_int_equal(c->last_urged_at, 0);
  assert_int_equal(c->opened_at, 777);
  assert_int_equal(c->updated_at, 777);
  assert_int_equal(c->version, 1);
  assert_int_equal(c->n_features, 4);
  assert_string_equal(c->features[0].key, "strategy");
  assert_string_equal(c->features[0].value, "reship");
  assert_string_equal(c->features[1].key, "amount");
  assert_string_equal(c->features[1].value, "4200");
  assert_string_equal(case_feature_get(c, "channel"), "app");
  assert_string_equal(case_feature_get(c, "country"), "CN");
  assert_null(case_feature_get(c, "missing"));
  assert_int_equal(o.log.action, CASE_ACTION_OPEN);
  assert_string_equal(o.log.actor, "system");
  assert_int_equal(o.log.at, 777);
  assert_int_equal(o.log.from, CASE_STATUS_NONE);
  assert_int_equal(o.log.to, CASE_STATUS_WAIT_DISTRIBUTION);
  assert_string_equal(o.log.agent_id, "");
  assert_string_equal(o.log.note, "");
  assert_string_equal(o.event.case_id, "c-9");
  assert_string_equal(o.event.order_id, "o-9");
  assert_int_equal(o.event.action, CASE_ACTION_OPEN);
  assert_int_equal(o.event.from, CASE_STATUS_NONE);
  assert_int_equal(o.event.to, CASE_STATUS_WAIT_DISTRIBUTION);
  assert_string_equal(o.event.agent_id, "");
  assert_string_equal(o.event.group_id, "");
  assert_int_equal(o.event.at, 777);
  assert_string_equal(o.rejection, "");
}

static void assert_open_refused(const case_open_cmd_t *cmd, int rc, const char *text) {
  case_outcome_t o;
  assert_int_equal(case_aggregate_open(cmd, &o), rc);
  assert_string_equal(o.rejection, text);
  assert_string_equal(o.next.case_id, ""); /* nothing half-built escapes */
}

static void test_open_refusals(void **state) {
  (void)state;
  char long_id[CASE_ID_LEN + 1];
  memset(long_id, 'x', CASE_ID_LEN);
  long_id[CASE_ID_LEN] = 0;
  case_feature_t f[7];
  memset(f, 0, sizeof f);
  const case_open_cmd_t ok = {"c-1", "o-1", "f-1", "cp-1", CASE_STRATEGY_REFUND, 1, NULL, NULL, 0,
                              1,     0,     0,     0};
  case_open_cmd_t cmd = ok;
  cmd.order_id = "";
  assert_open_refused(&cmd, CTXD_EINVAL, "cannot open a case without its order id");
  cmd = ok;
  cmd.compensation_id = NULL;
  assert_open_refused(&cmd, CTXD_EINVAL, "cannot open a case without its compensation id");
  cmd = ok;
  cmd.case_id = long_id;
  assert_open_refused(&cmd, CTXD_ETOOBIG, "cannot open a case: case id longer than 63 bytes");
  cmd = ok;
  cmd.strategy = CASE_STRATEGY_COUNT;
  assert_open_refused(&cmd, CTXD_EINVAL, "cannot open a case: unknown strategy 3");
  cmd = ok;
  cmd.amount = -5;
  assert_open_refused(&cmd, CTXD_EINVAL, "cannot open a case: negative amount -5");
  cmd = ok;
  cmd.features = f;
  cmd.n_features = 7;
  assert_open_refused(&cmd, CTXD_ETOOBIG, "cannot open a case: more than 6 extra features");
  cmd.features = NULL;
  cmd.n_features = 1;
  assert_open_refused(&cmd, CTXD_EINVAL, "cannot open a case: 1 features announced, none given");
  cmd.features = f;
  strcpy(f[0].key, "amount");
  assert_open_refused(&cmd, CTXD_EINVAL, "cannot open a case: feature key \"amount\" is reserved or empty");
  strcpy(f[0].key, "tier");
  strcpy(f[1].key, "tier");
  cmd.n_features = 2;
  assert_open_refused(&cmd, CTXD_EINVAL, "cannot open a case: feature \"tier\" given twice");
  memset(f[1].value, 'v', sizeof f[1].value); /* no NUL inside the buffer */
  strcpy(f[1].key, "vip");
  assert_open_refused(&cmd, CTXD_ETOOBIG, "cannot open a case: feature 1 is not terminated");
  assert_int_equal(case_aggregate_open(&ok, NULL), CTXD_EINVAL);
}

/* ---- the status table ------------------------------------------------------------------- */

/* Expected result of every action from every status, written from the seed's table:
 * a status name is the new status, "-" a refusal. Columns in case_status_t order:
 * WaitDistribution WaitProcess AppointProcess Processing PendingAcceptance Finished Closed
 * Rejected. */
static const struct {
  case_action_t action;
  const char *verb;
  const char *to[CASE_STATUS_COUNT];
} matrix[] = {
    {CASE_ACTION_OPEN, "open", {"-", "-", "-", "-", "-", "-", "-", "-"}},
    {CASE_ACTION_ASSIGN, "assign", {"WaitProcess", "WaitProcess", "-", "-", "-", "-", "-", "-"}},
    {CASE_ACTION_APPOINT, "appoint", {"AppointProcess", "AppointProcess", "-", "-", "-", "-", "-", "-"}},
    {CASE_ACTION_ACCEPT, "accept", {"-", "Processing", "Processing", "-", "-", "-", "-", "-"}},
    {CASE_ACTION_TRANSFER, "transfer", {"-", "WaitProcess", "-", "Processing", "-", "-", "-", "-"}},
    {CASE_ACTION_PROCESS, "process", {"-", "-", "-", "PendingAcceptance", "-", "-", "-", "-"}},
    {CASE_ACTION_REJECT_BACK, "reject back", {"-", "-", "-", "-", "Processing", "-", "-", "-"}},
    {CASE_ACTION_COMPLETE, "complete", {"-", "-", "-", "-", "Finished", "-", "-", "-"}},
    {CASE_ACTION_CLOSE, "close", {"-", "Closed", "-", "Closed", "-", "-", "-", "-"}},
    {CASE_ACTION_REFUSE, "refuse", {"-", "Rejected", "-", "Rejected", "-", "-", "-", "-"}},
    {CASE_ACTION_URGE, "urge", {"-", "WaitProcess", "-", "Processing", "-", "-", "-", "-"}},
    {CASE_ACTION_PAY,
     "pay",
     {"WaitDistribution", "WaitProcess", "AppointProcess", "Processing", "PendingAcceptance", "-", "-", "-"}},
};

static void test_every_action_from_every_status(void **state) {
  (void)state;
  assert_int_equal(LEN(matrix), CASE_ACTION_COUNT);
  int accepted = 0;
  for (size_t r = 0; r < LEN(matrix); r++) {
    case_action_t a = matrix[r].action;
    for (int s = 0; s < CASE_STATUS_COUNT; s++) {
      case_aggregate_t cur = in_status((case_status_t)s);
      if (a == CASE_ACTION_PAY) cur.pay_status = CASE_PAY_UNPAID; /* what it is for */
      const case_aggregate_t before = cur;
      case_action_cmd_t cmd = {a, "zoe", 5000, "see ticket 7", &bob_on, 4000};
      case_outcome_t o;
      int rc = case_aggregate_apply(&cur, &cmd, &o);
      assert_memory_equal(&cur, &before, sizeof cur); /* the input is a value */
      const char *want = matrix[r].to[s];
      if (strcmp(want, "-") == 0) {
        char text[CASE_REJECTION_LEN];
        snprintf(text, sizeof text, "cannot %s a case in status %s", matrix[r].verb,
                 case_status_name((case_status_t)s));
        assert_int_equal(rc, CTXD_ESTATE);
        assert_string_equal(o.rejection, text);
        assert_int_equal(case_action_allowed(a, (case_status_t)s), 0);
        continue;
      }
      accepted++;
      assert_int_equal(rc, 0);
      assert_int_equal(case_action_allowed(a, (case_status_t)s), 1);
      assert_string_equal(o.rejection, "");
      assert_string_equal(case_status_name(o.next.status), want);
      int gives = a == CASE_ACTION_ASSIGN || a == CASE_ACTION_APPOINT || a == CASE_ACTION_TRANSFER ||
                  a == CASE_ACTION_ACCEPT;
      const char *agent = gives ? "bob" : cur.agent_id;
      assert_string_equal(o.next.agent_id, agent);
      assert_string_equal(o.next.group_id, gives ? "g-refund" : cur.group_id);
      assert_int_equal(o.next.version, 2);
      assert_int_equal(o.next.updated_at, 5000);
      assert_int_equal(o.next.opened_at, 1000);
      assert_int_equal(o.next.urge_count, a == CASE_ACTION_URGE);
      assert_int_equal(o.next.pay_status, a == CASE_ACTION_PAY ? CASE_PAY_PAID : cur.pay_status);
      assert_int_equal(o.next.last_urged_at, a == CASE_ACTION_URGE ? 5000 : 0);
      assert_string_equal(o.next.case_id, "c-1");
      assert_int_equal(o.next.amount, 1250);
      /* operation log */
      assert_int_equal(o.log.action, a);
      assert_string_equal(o.log.actor, "zoe");
      assert_int_equal(o.log.at, 5000);
      assert_int_equal(o.log.from, s);
      assert_int_equal(o.log.to, o.next.status);
      assert_string_equal(o.log.agent_id, agent);
      assert_string_equal(o.log.note, "see ticket 7");
      /* status-changed event */
      assert_string_equal(o.event.case_id, "c-1");
      assert_string_equal(o.event.order_id, "o-1");
      assert_int_equal(o.event.action, a);
      assert_int_equal(o.event.from, s);
      assert_int_equal(o.event.to, o.next.status);
      assert_string_equal(o.event.agent_id, agent);
      assert_string_equal(o.event.group_id, gives ? "g-refund" : cur.group_id);
      assert_int_equal(o.event.at, 5000);
    }
  }
  assert_int_equal(accepted, 22);
}

static void test_unknown_status_and_action(void **state) {
  (void)state;
  case_aggregate_t cur = in_status(CASE_STATUS_PROCESSING);
  case_action_cmd_t cmd = {CASE_ACTION_COUNT, "zoe", 1, NULL, NULL, 0};
  case_outcome_t o;
  assert_int_equal(case_aggregate_apply(&cur, &cmd, &o), CTXD_EINVAL);
  assert_string_equal(o.rejection, "unknown action 12");
  cmd.action = CASE_ACTION_PROCESS;
  cur.status = (case_status_t)42;
  assert_int_equal(case_aggregate_apply(&cur, &cmd, &o), CTXD_EINVAL);
  assert_string_equal(o.rejection, "cannot process a case in unknown status 42");
  assert_int_equal(case_action_allowed(CASE_ACTION_PROCESS, (case_status_t)42), 0);
  assert_int_equal(case_action_allowed(CASE_ACTION_COUNT, CASE_STATUS_PROCESSING), 0);
  assert_int_equal(case_aggregate_apply(NULL, &cmd, &o), CTXD_EINVAL);
  assert_string_equal(o.rejection, "cannot change a case without the case and a command");
  assert_int_equal(case_aggregate_apply(&cur, &cmd, NULL), CTXD_EINVAL);
}

/* ---- agents, actor, note ---------------------------------------------------------------- */

static void assert_apply_refused(const case_aggregate_t *cur, const case_action_cmd_t *cmd, int rc,
                                 const char *text) {
  case_outcome_t o;
  assert_int_equal(case_aggregate_apply(cur, cmd, &o), rc);
  assert_string_equal(o.rejection, text);
  assert_int_equal(o.next.version, 0);
}

static void test_assign_and_appoint_need_an_on_duty_agent(void **state) {
  (void)state;
  const case_aggregate_t cur = in_status(CASE_STATUS_WAIT_DISTRIBUTION);
  const case_agent_t bob_off = {"bob", "g-refund", 0, 0};
  const case_agent_t no_group = {"bob", "", 1, 0};
  case_action_cmd_t cmd = {CASE_ACTION_ASSIGN, "distribution", 10, NULL, &bob_off, 0};
  assert_apply_refused(&cur, &cmd, CTXD_EINVAL, "cannot assign a case to agent bob: not on duty");
  cmd.agent = NULL;
  assert_apply_refused(&cur, &cmd, CTXD_EINVAL, "cannot assign a case without an agent");
  cmd.agent = &no_group;
  assert_apply_refused(&cur, &cmd, CTXD_EINVAL, "cannot assign a case to agent bob: no skill group");
  cmd.action = CASE_ACTION_APPOINT;
  cmd.agent = &bob_off;
  assert_apply_refused(&cur, &cmd, CTXD_EINVAL, "cannot appoint a case to agent bob: not on duty");
  cmd.actor = "";
  cmd.agent = &bob_on;
  assert_apply_refused(&cur, &cmd, CTXD_EINVAL, "cannot appoint a case without an actor");
  /* the status table speaks before the agent rules */
  const case_aggregate_t done = in_status(CASE_STATUS_FINISHED);
  cmd.actor = "sue";
  cmd.agent = &bob_off;
  assert_apply_refused(&done, &cmd, CTXD_ESTATE, "cannot appoint a case in status Finished");
  /* appointing by hand: AppointProcess, group taken from the agent */
  const case_agent_t cat = {"cat", "g-vip", 1, 9};
  cmd.agent = &cat;
  case_outcome_t o;
  assert_int_equal(case_aggregate_apply(&cur, &cmd, &o), 0);
  assert_int_equal(o.next.status, CASE_STATUS_APPOINT_PROCESS);
  assert_string_equal(o.next.agent_id, "cat");
  assert_string_equal(o.next.group_id, "g-vip");
  assert_string_equal(o.log.actor, "sue");
  assert_string_equal(o.log.note, "");
}

static void test_transfer_only_to_on_duty_agent_of_same_group(void **state) {
  (void)state;
  const case_aggregate_t cur = in_status(CASE_STATUS_PROCESSING); /* ann, g-refund */
  const case_agent_t other_group = {"carol", "g-reship", 1, 0};
  const case_agent_t off = {"dan", "g-refund", 0, 0};
  const case_agent_t self = {"ann", "g-refund", 1, 0};
  case_action_cmd_t cmd = {CASE_ACTION_TRANSFER, "ann", 20, "going home", &other_group, 0};
  assert_apply_refused(&cur, &cmd, CTXD_EINVAL,
                       "cannot transfer a case to agent carol: not in skill group g-refund");
  cmd.agent = &off;
  assert_apply_refused(&cur, &cmd, CTXD_EINVAL, "cannot transfer a case to agent dan: not on duty");
  cmd.agent = &self;
  assert_apply_refused(&cur, &cmd, CTXD_EINVAL, "cannot transfer a case to agent ann: already its agent");
  cmd.agent = NULL;
  assert_apply_refused(&cur, &cmd, CTXD_EINVAL, "cannot transfer a case without an agent");
  cmd.agent = &bob_on;
  case_outcome_t o;
  assert_int_equal(case_aggregate_apply(&cur, &cmd, &o), 0);
  assert_int_equal(o.next.status, CASE_STATUS_PROCESSING);
  assert_string_equal(o.next.agent_id, "bob");
  assert_string_equal(o.next.group_id, "g-refund");
  assert_int_equal(o.log.from, CASE_STATUS_PROCESSING);
  assert_int_equal(o.log.to, CASE_STATUS_PROCESSING);
  assert_string_equal(o.log.actor, "ann");
  assert_string_equal(o.log.agent_id, "bob");
  assert_string_equal(o.log.note, "going home");
  assert_int_equal(o.event.from, CASE_STATUS_PROCESSING);
  assert_int_equal(o.event.to, CASE_STATUS_PROCESSING);
  assert_string_equal(o.event.agent_id, "bob");
}

/* 接手: whoever takes the case becomes its follower (seed: handle(followerValue)). */
static void test_accept_makes_the_taker_the_follower(void **state) {
  (void)state;
  const case_aggregate_t cur = in_status(CASE_STATUS_WAIT_PROCESS); /* ann, g-refund */
  case_action_cmd_t cmd = {CASE_ACTION_ACCEPT, "bob", 30, NULL, &bob_on, 0};
  case_outcome_t o;
  assert_int_equal(case_aggregate_apply(&cur, &cmd, &o), 0);
  assert_int_equal(o.next.status, CASE_STATUS_PROCESSING);
  assert_string_equal(o.next.agent_id, "bob");
  assert_string_equal(o.log.actor, "bob");
  assert_string_equal(o.log.agent_id, "bob");
  assert_string_equal(o.log.note, "taken over from ann");
  assert_string_equal(o.event.agent_id, "bob");
  /* an agent of no skill group, off duty: taking is their own act; the case keeps its group */
  const case_agent_t zed = {"zed", "", 0, 0};
  cmd = (case_action_cmd_t){CASE_ACTION_ACCEPT, "zed", 31, "my customer", &zed, 0};
  assert_int_equal(case_aggregate_apply(&cur, &cmd, &o), 0);
  assert_string_equal(o.next.agent_id, "zed");
  assert_string_equal(o.next.group_id, "g-refund");
  assert_string_equal(o.log.note, "my customer");
  /* the assignee taking it: nothing taken over */
  const case_agent_t ann = {"ann", "g-refund", 1, 1};
  cmd = (case_action_cmd_t){CASE_ACTION_ACCEPT, "ann", 32, NULL, &ann, 0};
  assert_int_equal(case_aggregate_apply(&cur, &cmd, &o), 0);
  assert_string_equal(o.next.agent_id, "ann");
  assert_string_equal(o.log.note, "");
  cmd.agent = NULL;
  assert_apply_refused(&cur, &cmd, CTXD_EINVAL, "cannot accept a case without an agent");
}

/* needPayFlag/payStatus: completing waits for the payment; paying is recorded once. */
static void test_pay_status_gates_completion(void **state) {
  (void)state;
  /* the order's last payment known when the case opened: 500 by Paying's clock, whatever
   * the host's clock said (1) */
  case_open_cmd_t open = {"c-2", "o-2", "f-2", "cp-2", CASE_STRATEGY_RESHIP, 0, NULL, NULL, 0, 1, 1, 0, 500};
  case_outcome_t o;
  assert_int_equal(case_aggregate_open(&open, &o), 0);
  assert_int_equal(o.next.pay_status, CASE_PAY_UNPAID);
  case_aggregate_t c = o.next;
  c.status = CASE_STATUS_PENDING_ACCEPTANCE;
  strcpy(c.agent_id, "ann");
  case_action_cmd_t cmd = {CASE_ACTION_COMPLETE, "sue", 40, NULL, NULL, 0};
  assert_apply_refused(&c, &cmd, CTXD_ESTATE, "cannot complete a case whose pay status is Unpaid");
  /* the order's payment known before the case opened (repeated, re-sent) pays nothing */
  assert_int_equal(c.paid_before, 500);
  cmd = (case_action_cmd_t){CASE_ACTION_PAY, "paying", 41, "SO-2 paid", NULL, 499};
  assert_apply_refused(&c, &cmd, CTXD_ESTATE, "cannot pay a case with a payment known before its opening");
  cmd.paid_at = 500;
  assert_apply_refused(&c, &cmd, CTXD_ESTATE, "cannot pay a case with a payment known before its opening");
  /* a later one does, though the host opened the case at 1 (the clocks are not compared) */
  cmd.paid_at = 501;
  assert_int_equal(case_aggregate_apply(&c, &cmd, &o), 0);
  assert_int_equal(o.next.pay_status, CASE_PAY_PAID);
  assert_int_equal(o.next.status, CASE_STATUS_PENDING_ACCEPTANCE);
  assert_int_equal(o.log.action, CASE_ACTION_PAY);
  assert_int_equal(o.log.from, o.log.to);
  assert_apply_refused(&o.next, &cmd, CTXD_ESTATE, "cannot pay a case whose pay status is Paid");
  c = o.next;
  cmd = (case_action_cmd_t){CASE_ACTION_COMPLETE, "sue", 42, NULL, NULL, 0};
  assert_int_equal(case_aggregate_apply(&c, &cmd, &o), 0);
  assert_int_equal(o.next.status, CASE_STATUS_FINISHED);
  /* a case that needs no payment: nothing to pay; an ended case: the table refuses */
  const case_aggregate_t free_case = in_status(CASE_STATUS_PROCESSING);
  assert_int_equal(free_case.pay_status, CASE_PAY_NOT_REQUIRED);
  cmd = (case_action_cmd_t){CASE_ACTION_PAY, "paying", 43, NULL, NULL, 0};
  assert_apply_refused(&free_case, &cmd, CTXD_ESTATE, "cannot pay a case whose pay status is NotRequired");
  assert_apply_refused(&o.next, &cmd, CTXD_ESTATE, "cannot pay a case in status Finished");
  assert_string_equal(case_pay_status_name(CASE_PAY_UNPAID), "Unpaid");
  case_pay_status_t ps;
  assert_int_equal(case_pay_status_parse("Paid", &ps), 0);
  assert_int_equal(ps, CASE_PAY_PAID);
  assert_null(case_pay_status_name(CASE_PAY_COUNT));
}

/* autoAcceptCoordinationFlag: a processed case is accepted at once, unless it owes a payment. */
static void test_auto_accept_due(void **state) {
  (void)state;
  case_open_cmd_t open = {"c-3", "o-3", "f-3", "cp-3", CASE_STRATEGY_REFUND, 0, NULL, NULL, 0, 1, 0, 1, 0};
  case_outcome_t o;
  assert_int_equal(case_aggregate_open(&open, &o), 0);
  case_aggregate_t c = o.next;
  assert_int_equal(c.auto_accept, 1);
  assert_int_equal(case_auto_accept_due(&c), 0); /* not processed yet */
  c.status = CASE_STATUS_PROCESSING;
  case_action_cmd_t cmd = {CASE_ACTION_PROCESS, "ann", 50, NULL, NULL, 0};
  assert_int_equal(case_aggregate_apply(&c, &cmd, &o), 0);
  assert_int_equal(case_auto_accept_due(&o.next), 1);
  c = o.next;
  c.pay_status = CASE_PAY_UNPAID;
  assert_int_equal(case_auto_accept_due(&c), 0);
  c.pay_status = CASE_PAY_PAID;
  assert_int_equal(case_auto_accept_due(&c), 1);
  c.auto_accept = 0;
  assert_int_equal(case_auto_accept_due(&c), 0);
  assert_int_equal(case_auto_accept_due(NULL), 0);
}

/* 创建协同单: the related document first, then the problem category. */
static void test_open_qualify(void **state) {
  (void)state;
  case_category_t cats[4];
  size_t n = 0;
  assert_int_equal(case_categories_parse("1:fulfillment;12:compensation,order", cats, 4, &n), 0);
  assert_int_equal(n, 3);
  assert_int_equal(cats[2].case_type, 12);
  assert_string_equal(cats[2].related_biz_type, "order");
  char why[CASE_REJECTION_LEN];
  case_open_check_t chk = {12, "compensation", "cp-1", CASE_DOC_VALID, "Approved", cats, n, NULL};
  assert_int_equal(case_open_qualify(&chk, why, sizeof why), 0);
  assert_string_equal(why, "");
  chk.case_type = 1;
  assert_int_equal(case_open_qualify(&chk, why, sizeof why), CTXD_ERANGE);
  assert_string_equal(why, "cannot open a case: problem category 1 does not qualify for a compensation");
  chk.doc = CASE_DOC_INVALID;
  chk.doc_status = "Terminated";
  assert_int_equal(case_open_qualify(&chk, why, sizeof why), CTXD_ESTATE);
  assert_string_equal(why, "cannot open a case: compensation cp-1 is Terminated");
  chk.doc = CASE_DOC_UNKNOWN;
  assert_int_equal(case_open_qualify(&chk, why, sizeof why), CTXD_ENOENT);
  assert_string_equal(why, "cannot open a case: compensation cp-1 is not known");
  assert_int_equal(case_open_qualify(NULL, why, sizeof why), CTXD_EINVAL);
  /* a fulfillment has one open case at a time: its resolution decides the fulfillment; other
   * documents may have several */
  chk.doc = CASE_DOC_VALID;
  chk.open_case_id = "ca-1";
  chk.case_type = 12;
  assert_int_equal(case_open_qualify(&chk, why, sizeof why), 0);
  case_open_check_t ful = {1, "fulfillment", "fu-1", CASE_DOC_VALID, "Failed", cats, n, "ca-1"};
  assert_int_equal(case_open_qualify(&ful, why, sizeof why), CTXD_ESTATE);
  assert_string_equal(why, "cannot open a case: fulfillment fu-1 has the open case ca-1");
  ful.open_case_id = "";
  assert_int_equal(case_open_qualify(&ful, why, sizeof why), 0);
  /* the table's syntax */
  assert_int_equal(case_categories_parse("", cats, 4, &n), 0);
  assert_int_equal(n, 0);
  assert_int_equal(case_categories_parse("0:order", cats, 4, &n), CTXD_EINVAL);
  assert_int_equal(case_categories_parse("x:order", cats, 4, &n), CTXD_EINVAL);
  assert_int_equal(case_categories_parse("1:", cats, 4, &n), CTXD_EINVAL);
  assert_int_equal(case_categories_parse("1:a,,b", cats, 4, &n), CTXD_EINVAL);
  assert_int_equal(case_categories_parse("1:a,b;2:c,d,e", cats, 4, &n), CTXD_ETOOBIG);
}

static void test_long_texts_are_refused(void **state) {
  (void)state;
  const case_aggregate_t cur = in_status(CASE_STATUS_PROCESSING);
  char note[CASE_TEXT_LEN + 1];
  memset(note, 'n', CASE_TEXT_LEN);
  note[CASE_TEXT_LEN] = 0;
  char id[CASE_ID_LEN + 1];
  memset(id, 'i', CASE_ID_LEN);
  id[CASE_ID_LEN] = 0;
  case_action_cmd_t cmd = {CASE_ACTION_URGE, "zoe", 1, note, NULL, 0};
  assert_apply_refused(&cur, &cmd, CTXD_ETOOBIG, "cannot urge a case: note longer than 255 bytes");
  cmd.note = note + 1; /* exactly 255 bytes fit */
  case_outcome_t o;
  assert_int_equal(case_aggregate_apply(&cur, &cmd, &o), 0);
  assert_int_equal(strlen(o.log.note), CASE_TEXT_LEN - 1);
  cmd.note = NULL;
  cmd.actor = id;
  assert_apply_refused(&cur, &cmd, CTXD_ETOOBIG, "cannot urge a case: actor longer than 63 bytes");
  const case_agent_t long_agent = {id, "g-refund", 1, 0};
  cmd.actor = "zoe";
  cmd.action = CASE_ACTION_TRANSFER;
  cmd.agent = &long_agent;
  assert_apply_refused(&cur, &cmd, CTXD_ETOOBIG,
                       "cannot transfer a case: agent or group id longer than 63 bytes");
}

/* A whole life: each step's log entry and event, urges counted, version per action. */
static void test_lifecycle_log_and_events(void **state) {
  (void)state;
  static const struct {
    case_action_t a;
    const char *actor;
    const case_agent_t *agent;
    case_status_t from, to;
    const char *holder;
  } steps[] = {
      {CASE_ACTION_ASSIGN, "distribution", &bob_on, CASE_STATUS_WAIT_DISTRIBUTION, CASE_STATUS_WAIT_PROCESS,
       "bob"},
      {CASE_ACTION_URGE, "customer", NULL, CASE_STATUS_WAIT_PROCESS, CASE_STATUS_WAIT_PROCESS, "bob"},
      {CASE_ACTION_ACCEPT, "bob", &bob_on, CASE_STATUS_WAIT_PROCESS, CASE_STATUS_PROCESSING, "bob"},
      {CASE_ACTION_URGE, "customer", NULL, CASE_STATUS_PROCESSING, CASE_STATUS_PROCESSING, "bob"},
      {CASE_ACTION_PROCESS, "bob", NULL, CASE_STATUS_PROCESSING, CASE_STATUS_PENDING_ACCEPTANCE, "bob"},
      {CASE_ACTION_REJECT_BACK, "sue", NULL, CASE_STATUS_PENDING_ACCEPTANCE, CASE_STATUS_PROCESSING, "bob"},
      {CASE_ACTION_PROCESS, "bob", NULL, CASE_STATUS_PROCESSING, CASE_STATUS_PENDING_ACCEPTANCE, "bob"},
      {CASE_ACTION_COMPLETE, "sue", NULL, CASE_STATUS_PENDING_ACCEPTANCE, CASE_STATUS_FINISHED, "bob"},
  };
  case_aggregate_t c = opened("c-5", "o-5", CASE_STRATEGY_NON_PRODUCT, 300);
  for (size_t i = 0; i < LEN(steps); i++) {
    int64_t at = 2000 + (int64_t)i;
    case_action_cmd_t cmd = {steps[i].a, steps[i].actor, at, NULL, steps[i].agent, 0};
    case_outcome_t o;
    assert_int_equal(case_aggregate_apply(&c, &cmd, &o), 0);
    assert_int_equal(o.log.action, steps[i].a);
    assert_string_equal(o.log.actor, steps[i].actor);
    assert_int_equal(o.log.at, at);
    assert_int_equal(o.log.from, steps[i].from);
    assert_int_equal(o.log.to, steps[i].to);
    assert_string_equal(o.log.agent_id, steps[i].holder);
    assert_string_equal(o.event.case_id, "c-5");
    assert_int_equal(o.event.from, steps[i].from);
    assert_int_equal(o.event.to, steps[i].to);
    assert_int_equal(o.next.version, (int64_t)i + 2);
    c = o.next;
  }
  assert_int_equal(c.status, CASE_STATUS_FINISHED);
  assert_int_equal(c.urge_count, 2);
  assert_int_equal(c.last_urged_at, 2003);
  assert_int_equal(c.updated_at, 2007);
  case_action_cmd_t again = {CASE_ACTION_URGE, "customer", 3000, NULL, NULL, 0};
  case_outcome_t o;
  assert_int_equal(case_aggregate_apply(&c, &again, &o), CTXD_ESTATE);
  assert_string_equal(o.rejection, "cannot urge a case in status Finished");
}

/* ---- distribution ----------------------------------------------------------------------- */

static const case_condition_t cond_refund[] = {{CASE_MATCH_EQ, "strategy", "refund", 0}};
static const case_condition_t cond_big_refund[] = {{CASE_MATCH_EQ, "strategy", "refund", 0},
                                                   {CASE_MATCH_GE, "amount", NULL, 10000}};
static const case_condition_t cond_any[] = {{CASE_MATCH_ANY, NULL, NULL, 0}};
static const case_condition_t cond_app[] = {{CASE_MATCH_EQ, "channel", "app", 0}};

/* Deliberately not in priority order. */
static const case_rule_t rules[] = {
    {"r-any", 9, cond_any, 1, "g-general", CASE_DISPATCH_LEAST_LOADED},
    {"r-refund", 2, cond_refund, 1, "g-refund", CASE_DISPATCH_ROUND_ROBIN},
    {"r-big", 1, cond_big_refund, 2, "g-big", CASE_DISPATCH_LEAST_LOADED},
    {"r-app", 2, cond_app, 1, "g-app", CASE_DISPATCH_ROUND_ROBIN}, /* ties with r-refund */
};

static case_pick_t pick(const case_roster_t *roster, const case_aggregate_t *c) {
  case_pick_t p;
  assert_int_equal(case_distribution_pick(roster, c, &p), 0);
  return p;
}

static void test_rule_priority_order(void **state) {
  (void)state;
  const case_agent_t agents[] = {
      {"gus", "g-general", 1, 0}, {"rita", "g-refund", 1, 0}, {"bea", "g-big", 1, 0}, {"al", "g-app", 1, 0}};
  case_roster_t roster = {rules, LEN(rules), agents, LEN(agents), NULL, 0, NULL, 0};
  /* refund 200.00 matches r-any, r-refund, r-big and r-app: r-big has priority 1 */
  case_aggregate_t big = opened("c", "o", CASE_STRATEGY_REFUND, 20000);
  case_pick_t p = pick(&roster, &big);
  assert_int_equal(p.outcome, CASE_PICK_ASSIGNED);
  assert_int_equal(p.rule, 2);
  assert_string_equal(p.agent->id, "bea");
  /* refund 12.50: r-refund and r-app tie on priority 2: the earlier rule wins */
  case_aggregate_t small = opened("c", "o", CASE_STRATEGY_REFUND, 1250);
  p = pick(&roster, &small);
  assert_int_equal(p.rule, 1);
  assert_string_equal(p.agent->id, "rita");
  /* reship from the app: r-app (2) before r-any (9) */
  case_aggregate_t reship = opened("c", "o", CASE_STRATEGY_RESHIP, 20000);
  p = pick(&roster, &reship);
  assert_int_equal(p.rule, 3);
  assert_string_equal(p.agent->id, "al");
  /* amount must be >= 10000 exactly: 9999 misses r-big */
  case_aggregate_t edge = opened("c", "o", CASE_STRATEGY_REFUND, 9999);
  assert_int_equal(pick(&roster, &edge).rule, 1);
  edge = opened("c", "o", CASE_STRATEGY_REFUND, 10000);
  assert_int_equal(pick(&roster, &edge).rule, 2);
  /* without the app feature only r-any is left for a reship */
  strcpy(reship.features[2].value, "web");
  p = pick(&roster, &reship);
  assert_int_equal(p.rule, 0);
  assert_string_equal(p.agent->id, "gus");
  assert_int_equal(p.via, CASE_VIA_LEAST_LOADED);
}

static void test_no_rule_and_non_numeric_amount(void **state) {
  (void)state;
  const case_rule_t only_big[] = {rules[2]};
  case_roster_t roster = {only_big, 1, NULL, 0, NULL, 0, NULL, 0};
  case_aggregate_t c = opened("c", "o", CASE_STRATEGY_REFUND, 20000);
  strcpy(c.features[1].value, "20000x"); /* not a whole integer: GE does not match */
  case_pick_t p = pick(&roster, &c);
  assert_int_equal(p.outcome, CASE_PICK_NO_RULE);
  assert_null(p.agent);
  assert_int_equal(p.cursor_moved, 0);
  roster.n_rules = 0;
  c = opened("c", "o", CASE_STRATEGY_REFUND, 20000);
  assert_int_equal(pick(&roster, &c).outcome, CASE_PICK_NO_RULE);
}

static void test_round_robin_rotation_and_cursor(void **state) {
  (void)state;
  /* listed out of order; dan is off duty, eve is in another group */
  const case_agent_t agents[] = {{"cid", "g-refund", 1, 0},
                                 {"eve", "g-reship", 1, 0},
                                 {"ali", "g-refund", 1, 0},
                                 {"dan", "g-refund", 0, 0},
                                 {"ben", "g-refund", 1, 0}};
  const case_rule_t rr[] = {rules[1]};
  case_cursor_t cursors[2];
  memset(cursors, 0, sizeof cursors);
  strcpy(cursors[0].group_id, "g-reship");
  strcpy(cursors[0].last_agent_id, "zed");
  case_roster_t roster = {rr, 1, agents, LEN(agents), NULL, 0, cursors, 1};
  case_aggregate_t c = opened("c", "o", CASE_STRATEGY_REFUND, 100);
  /* no cursor for g-refund: the smallest id; then around, the caller storing the cursor */
  const char *expect[] = {"ali", "ben", "cid", "ali", "ben"};
  roster.n_cursors = 2;
  for (size_t i = 0; i < LEN(expect); i++) {
    case_pick_t p = pick(&roster, &c);
    assert_int_equal(p.outcome, CASE_PICK_ASSIGNED);
    assert_int_equal(p.via, CASE_VIA_ROUND_ROBIN);
    assert_string_equal(p.agent->id, expect[i]);
    assert_int_equal(p.cursor_moved, 1);
    assert_string_equal(p.cursor.group_id, "g-refund");
    assert_string_equal(p.cursor.last_agent_id, expect[i]);
    cursors[1] = p.cursor;
  }
  /* a cursor left on someone now off duty, or gone: the next id after it */
  strcpy(cursors[1].last_agent_id, "dan");
  assert_string_equal(pick(&roster, &c).agent->id, "ali");
  strcpy(cursors[1].last_agent_id, "bz");
  assert_string_equal(pick(&roster, &c).agent->id, "cid");
  /* the other group's cursor is not touched nor used */
  assert_string_equal(cursors[0].last_agent_id, "zed");
}

static void test_least_loaded_with_ties(void **state) {
  (void)state;
  const case_agent_t agents[] = {{"kim", "g-big", 1, 3},
                                 {"lou", "g-big", 1, 1},
                                 {"jo", "g-big", 1, 1},  /* ties lou: smaller id wins */
                                 {"ian", "g-big", 0, 0}, /* emptier but off duty */
                                 {"hal", "g-general", 1, 0}};
  const case_rule_t big[] = {rules[2]};
  case_roster_t roster = {big, 1, agents, LEN(agents), NULL, 0, NULL, 0};
  case_aggregate_t c = opened("c", "o", CASE_STRATEGY_REFUND, 50000);
  case_pick_t p = pick(&roster, &c);
  assert_int_equal(p.outcome, CASE_PICK_ASSIGNED);
  assert_int_equal(p.via, CASE_VIA_LEAST_LOADED);
  assert_string_equal(p.agent->id, "jo");
  assert_ptr_equal(p.agent, &agents[2]);
  assert_int_equal(p.cursor_moved, 0);
  roster.n_agents = 2; /* kim 3, lou 1 */
  assert_string_equal(pick(&roster, &c).agent->id, "lou");
}

static void test_only_on_duty_agents(void **state) {
  (void)state;
  const case_agent_t agents[] = {
      {"rita", "g-refund", 0, 0}, {"ron", "g-refund", 0, 0}, {"gus", "g-general", 1, 0}};
  case_roster_t roster = {rules, 2, agents, LEN(agents), NULL, 0, NULL, 0}; /* r-any, r-refund */
  case_aggregate_t c = opened("c", "o", CASE_STRATEGY_REFUND, 100);
  case_pick_t p = pick(&roster, &c);
  /* r-refund matches and its group is empty: the case waits, it does not fall to r-any */
  assert_int_equal(p.outcome, CASE_PICK_NO_AGENT);
  assert_int_equal(p.rule, 1);
  assert_null(p.agent);
  assert_int_equal(p.cursor_moved, 0);
}

static void test_same_order_preference(void **state) {
  (void)state;
  case_agent_t agents[] = {{"ali", "g-refund", 1, 0},
                           {"ben", "g-refund", 1, 0},
                           {"cid", "g-refund", 1, 0},
                           {"xav", "g-reship", 1, 0}};
  const case_handled_t history[] = {{"o-7", "ben", 100, NULL},
                                    {"o-8", "ali", 900, NULL}, /* another order */
                                    {"o-7", "cid", 200, NULL},
                                    {"o-7", "xav", 300, NULL}}; /* same order, other group */
  const case_rule_t rr[] = {rules[1]};
  case_cursor_t cur = {"g-refund", "ali"};
  case_roster_t roster = {rr, 1, agents, LEN(agents), history, LEN(history), &cur, 1};
  case_aggregate_t c = opened("c", "o-7", CASE_STRATEGY_REFUND, 100);
  case_pick_t p = pick(&roster, &c);
  assert_int_equal(p.outcome, CASE_PICK_ASSIGNED);
  assert_int_equal(p.via, CASE_VIA_PREVIOUS_HANDLER);
  assert_string_equal(p.agent->id, "cid"); /* handled o-7 most recently in the group */
  assert_int_equal(p.cursor_moved, 0);     /* round robin keeps its place */
  agents[2].on_duty = 0;                   /* cid off duty: ben handled it before too */
  p = pick(&roster, &c);
  assert_int_equal(p.via, CASE_VIA_PREVIOUS_HANDLER);
  assert_string_equal(p.agent->id, "ben");
  agents[1].on_duty = 0; /* nobody who handled o-7 is on duty: the rule's own dispatch */
  p = pick(&roster, &c);
  assert_int_equal(p.via, CASE_VIA_ROUND_ROBIN);
  assert_string_equal(p.agent->id, "ali"); /* after "ali" nobody: wraps to ali */
  assert_int_equal(p.cursor_moved, 1);
  /* two previous handlers at the same time: the smaller id */
  agents[1].on_duty = agents[2].on_duty = 1;
  const case_handled_t tie[] = {{"o-7", "cid", 500, NULL}, {"o-7", "ben", 500, NULL}};
  roster.history = tie;
  roster.n_history = LEN(tie);
  assert_string_equal(pick(&roster, &c).agent->id, "ben");
}

/* 航司: with nobody who handled the order, an agent who handled the same carrier goes
 * first; the order still wins over the carrier. */
static void test_same_carrier_preference(void **state) {
  (void)state;
  case_agent_t agents[] = {{"ali", "g-refund", 1, 0}, {"ben", "g-refund", 1, 0}, {"cid", "g-refund", 1, 0}};
  const case_handled_t history[] = {
      {"o-1", "ben", 100, "MU"}, {"o-2", "cid", 50, "MU"}, {"o-3", "ali", 900, "CA"}}; /* another carrier */
  const case_rule_t rr[] = {rules[1]};
  case_cursor_t cur = {"g-refund", "ali"};
  case_roster_t roster = {rr, 1, agents, LEN(agents), history, LEN(history), &cur, 1};
  case_feature_t mu = {"Carrier", "MU"};
  case_open_cmd_t cmd = {"c", "o-9", "f", "cp", CASE_STRATEGY_REFUND, 1, NULL, &mu, 1, 1, 0, 0, 0};
  case_outcome_t o;
  assert_int_equal(case_aggregate_open(&cmd, &o), 0);
  case_pick_t p = pick(&roster, &o.next);
  assert_int_equal(p.via, CASE_VIA_SAME_CARRIER);
  assert_string_equal(p.agent->id, "ben"); /* handled MU most recently */
  assert_int_equal(p.cursor_moved, 0);
  agents[1].on_duty = 0;
  p = pick(&roster, &o.next);
  assert_int_equal(p.via, CASE_VIA_SAME_CARRIER);
  assert_string_equal(p.agent->id, "cid");
  /* the same order first: cid handled o-1 */
  agents[1].on_duty = 1;
  cmd.order_id = "o-2";
  assert_int_equal(case_aggregate_open(&cmd, &o), 0);
  p = pick(&roster, &o.next);
  assert_int_equal(p.via, CASE_VIA_PREVIOUS_HANDLER);
  assert_string_equal(p.agent->id, "cid");
  /* a case without a carrier: no carrier preference */
  cmd.order_id = "o-9";
  cmd.n_features = 0;
  assert_int_equal(case_aggregate_open(&cmd, &o), 0);
  p = pick(&roster, &o.next);
  assert_int_equal(p.via, CASE_VIA_ROUND_ROBIN);
  assert_string_equal(p.agent->id, "ben");
}

static void test_waits_then_assigned_when_agent_comes_on_duty(void **state) {
  (void)state;
  case_agent_t agents[] = {{"ali", "g-refund", 0, 0}, {"bob", "g-refund", 0, 0}, {"rex", "g-reship", 0, 0}};
  const case_rule_t rr[] = {rules[1], {"r-reship", 3, NULL, 0, "g-reship", CASE_DISPATCH_ROUND_ROBIN}};
  case_roster_t roster = {rr, 2, agents, LEN(agents), NULL, 0, NULL, 0};
  case_aggregate_t waiting[4] = {
      opened("c-1", "o-1", CASE_STRATEGY_REFUND, 100), opened("c-2", "o-2", CASE_STRATEGY_RESHIP, 100),
      opened("c-3", "o-3", CASE_STRATEGY_REFUND, 100), opened("c-4", "o-4", CASE_STRATEGY_REFUND, 100)};
  waiting[3].status = CASE_STATUS_PROCESSING; /* not waiting: skipped */
  /* nobody on duty: the case stays in WaitDistribution */
  case_pick_t p = pick(&roster, &waiting[0]);
  assert_int_equal(p.outcome, CASE_PICK_NO_AGENT);
  assert_int_equal(waiting[0].status, CASE_STATUS_WAIT_DISTRIBUTION);
  /* bob comes on duty: both refund cases go to him, the reship case keeps waiting */
  agents[1].on_duty = 1;
  case_assignment_t out[4];
  size_t n = 99;
  case_cursor_t cursor;
  int moved = -1;
  assert_int_equal(case_distribution_on_duty(&roster, &agents[1], waiting, 4, out, &n, &cursor, &moved), 0);
  assert_int_equal(n, 2);
  assert_int_equal(out[0].case_index, 0);
  assert_ptr_equal(out[0].agent, &agents[1]);
  assert_int_equal(out[0].via, CASE_VIA_ROUND_ROBIN);
  assert_int_equal(out[1].case_index, 2);
  assert_ptr_equal(out[1].agent, &agents[1]);
  assert_int_equal(moved, 1);
  assert_string_equal(cursor.group_id, "g-refund");
  assert_string_equal(cursor.last_agent_id, "bob");
  /* the caller then assigns: WaitDistribution -> WaitProcess held by bob */
  case_action_cmd_t cmd = {CASE_ACTION_ASSIGN, "distribution", 9000, NULL, out[0].agent, 0};
  case_outcome_t o;
  assert_int_equal(case_aggregate_apply(&waiting[out[0].case_index], &cmd, &o), 0);
  assert_int_equal(o.next.status, CASE_STATUS_WAIT_PROCESS);
  assert_string_equal(o.next.agent_id, "bob");
  assert_string_equal(o.next.group_id, "g-refund");
  /* round robin goes on across the batch: ali also on duty, cursor at bob */
  agents[0].on_duty = 1;
  roster.cursors = &cursor;
  roster.n_cursors = 1;
  case_aggregate_t three[3] = {waiting[0], waiting[2], waiting[0]};
  assert_int_equal(case_distribution_on_duty(&roster, &agents[0], three, 3, out, &n, &cursor, &moved), 0);
  assert_int_equal(n, 3);
  assert_string_equal(out[0].agent->id, "ali"); /* after bob: wraps to ali */
  assert_string_equal(out[1].agent->id, "bob");
  assert_string_equal(out[2].agent->id, "ali");
  assert_string_equal(cursor.last_agent_id, "ali");
  assert_int_equal(moved, 1);
}

static void test_on_duty_batch_counts_load_and_preference(void **state) {
  (void)state;
  const case_agent_t agents[] = {{"kim", "g-big", 1, 1}, {"jo", "g-big", 1, 0}};
  const case_rule_t big[] = {rules[2]};
  const case_handled_t history[] = {{"o-3", "kim", 10, NULL}};
  case_roster_t roster = {big, 1, agents, LEN(agents), history, 1, NULL, 0};
  case_aggregate_t w[4] = {
      opened("c-1", "o-1", CASE_STRATEGY_REFUND, 10000), opened("c-2", "o-2", CASE_STRATEGY_REFUND, 10000),
      opened("c-3", "o-3", CASE_STRATEGY_REFUND, 10000), opened("c-4", "o-4", CASE_STRATEGY_REFUND, 10000)};
  case_assignment_t out[4];
  size_t n;
  case_cursor_t cursor;
  int moved = -1;
  assert_int_equal(case_distribution_on_duty(&roster, &agents[1], w, 4, out, &n, &cursor, &moved), 0);
  assert_int_equal(n, 4);
  /* jo 0 < kim 1 -> jo; then 1 = 1, tie -> jo (smaller id); o-3 -> kim by preference;
   * then jo 2 vs kim 2 -> jo */
  assert_string_equal(out[0].agent->id, "jo");
  assert_int_equal(out[0].via, CASE_VIA_LEAST_LOADED);
  assert_string_equal(out[1].agent->id, "jo");
  assert_string_equal(out[2].agent->id, "kim");
  assert_int_equal(out[2].via, CASE_VIA_PREVIOUS_HANDLER);
  assert_string_equal(out[3].agent->id, "jo");
  assert_int_equal(moved, 0);
  assert_string_equal(cursor.group_id, "g-big");
  assert_string_equal(cursor.last_agent_id, "");
  /* nothing waiting: nothing to do */
  assert_int_equal(case_distribution_on_duty(&roster, &agents[1], NULL, 0, NULL, &n, &cursor, &moved), 0);
  assert_int_equal(n, 0);
}

static void test_distribution_refuses_bad_input(void **state) {
  (void)state;
  const case_agent_t agents[] = {{"kim", "g-big", 1, 1}, {"jo", "g-big", 0, 0}};
  const case_rule_t big[] = {rules[2]};
  case_roster_t roster = {big, 1, agents, LEN(agents), NULL, 0, NULL, 0};
  case_aggregate_t c = opened("c", "o", CASE_STRATEGY_REFUND, 10000);
  case_assignment_t out[1];
  size_t n;
  case_cursor_t cursor;
  int moved;
  /* arrived must be listed on duty in the roster */
  assert_int_equal(case_distribution_on_duty(&roster, &agents[1], &c, 1, out, &n, &cursor, &moved),
                   CTXD_EINVAL);
  const case_agent_t stranger = {"zed", "g-big", 1, 0};
  assert_int_equal(case_distribution_on_duty(&roster, &stranger, &c, 1, out, &n, &cursor, &moved),
                   CTXD_EINVAL);
  case_pick_t p;
  const case_rule_t no_group[] = {{"r", 1, NULL, 0, NULL, CASE_DISPATCH_ROUND_ROBIN}};
  roster.rules = no_group;
  assert_int_equal(case_distribution_pick(&roster, &c, &p), CTXD_EINVAL);
  const case_condition_t keyless[] = {{CASE_MATCH_GE, NULL, NULL, 1}};
  const case_rule_t bad_cond[] = {{"r", 1, keyless, 1, "g", CASE_DISPATCH_ROUND_ROBIN}};
  roster.rules = bad_cond;
  assert_int_equal(case_distribution_pick(&roster, &c, &p), CTXD_EINVAL);
  roster.rules = big;
  const case_agent_t nameless[] = {{NULL, "g-big", 1, 0}};
  roster.agents = nameless;
  roster.n_agents = 1;
  assert_int_equal(case_distribution_pick(&roster, &c, &p), CTXD_EINVAL);
  char long_id[CASE_ID_LEN + 1];
  memset(long_id, 'a', CASE_ID_LEN);
  long_id[CASE_ID_LEN] = 0;
  const case_agent_t long_agent[] = {{long_id, "g-big", 1, 0}};
  roster.agents = long_agent;
  assert_int_equal(case_distribution_pick(&roster, &c, &p), CTXD_ETOOBIG);
  roster.agents = NULL;
  assert_int_equal(case_distribution_pick(&roster, &c, &p), CTXD_EINVAL);
  assert_int_equal(case_distribution_pick(NULL, &c, &p), CTXD_EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_names_round_trip),
      cmocka_unit_test(test_open_fills_case_log_and_event),
      cmocka_unit_test(test_open_refusals),
      cmocka_unit_test(test_every_action_from_every_status),
      cmocka_unit_test(test_unknown_status_and_action),
      cmocka_unit_test(test_assign_and_appoint_need_an_on_duty_agent),
      cmocka_unit_test(test_transfer_only_to_on_duty_agent_of_same_group),
      cmocka_unit_test(test_accept_makes_the_taker_the_follower),
      cmocka_unit_test(test_pay_status_gates_completion),
      cmocka_unit_test(test_auto_accept_due),
      cmocka_unit_test(test_open_qualify),
      cmocka_unit_test(test_long_texts_are_refused),
      cmocka_unit_test(test_lifecycle_log_and_events),
      cmocka_unit_test(test_rule_priority_order),
      cmocka_unit_test(test_no_rule_and_non_numeric_amount),
      cmocka_unit_test(test_round_robin_rotation_and_cursor),
      cmocka_unit_test(test_least_loaded_with_ties),
      cmocka_unit_test(test_only_on_duty_agents),
      cmocka_unit_test(test_same_order_preference),
      cmocka_unit_test(test_same_carrier_preference),
      cmocka_unit_test(test_waits_then_assigned_when_agent_comes_on_duty),
      cmocka_unit_test(test_on_duty_batch_counts_load_and_preference),
      cmocka_unit_test(test_distribution_refuses_bad_input),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
