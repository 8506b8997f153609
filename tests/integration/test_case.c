/* Case against the real servers: a failed fulfillment opens a case that automatic
 * distribution assigns, and the case runs to its resolution; refused actions answer with the
 * case's status; a case without an agent on duty waits until one arrives; a duplicated
 * FulfillmentFailed opens one case; round robin alternates and the agent who handled an
 * order before gets its next case; OpenCase is idempotent. Seed 002's creation checks (the
 * related document from the read model fed by Compensation's and the order system's events,
 * the problem category), taking over a case, the pay status fed by Paying's OrderPayFinished,
 * auto-acceptance and the carrier preference. Only the case plugin runs. */
#include "hostfixture.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NS "Ctxd.Case.Contracts.v1:"
#define FULFILLMENT_FAILED "Ctxd.Fulfillment.Contracts.v1:FulfillmentFailed"
#define GROUP "a0000000-0000-4000-8000-000000000001"
#define OTHER_GROUP "a0000000-0000-4000-8000-000000000002"
#define RULE "b0000000-0000-4000-8000-000000000001"
#define COMP "c0000000-0000-4000-8000-000000000001"
#define PENDING "d0000000-0000-4000-8000-000000000001"
#define F1 "f0000000-0000-4000-8000-000000000001"
#define F2 "f0000000-0000-4000-8000-000000000002"
#define F3 "f0000000-0000-4000-8000-000000000003"
#define F4 "f0000000-0000-4000-8000-000000000004"
#define F5 "f0000000-0000-4000-8000-000000000005"
#define MISSING "e0000000-0000-4000-8000-000000000009"
#define COMP2 "c0000000-0000-4000-8000-000000000002"
#define C1 "ca000000-0000-4000-8000-000000000001"
#define C2 "ca000000-0000-4000-8000-000000000002"
#define C3 "ca000000-0000-4000-8000-000000000003"
#define C4 "ca000000-0000-4000-8000-000000000004"
#define COMPENSATION_CHANGED "Ctxd.Compensation.Contracts.v1:CompensationStatusChanged"
#define ORDER_CREATED "Ctxd.Ordering.Contracts.v1:OrderCreated"
#define ORDER_PAID "Ctxd.Paying.Contracts.v1:OrderPayFinished"

static int seq;
static char reply[96];

/* The case plugin alone on the world's endpoint (more settings: "" or starting with ", "),
 * and a queue for the replies. */
static void setup_case(ctxt_world_t *w, const char *settings, const char *endpoint_settings) {
  snprintf(w->plugins, sizeof w->plugins, "[{\"name\": \"case\", \"settings\": {\"endpoint\": \"%s\"%s}}]",
           w->endpoint, settings);
  snprintf(w->endpoint_settings, sizeof w->endpoint_settings, "%s", endpoint_settings);
  snprintf(reply, sizeof reply, "%s-reply", w->endpoint);
  amqp_queue_declare(w->amqp, 1, amqp_cstring_bytes(reply), 0, 0, 0, 1, amqp_empty_table);
  amqp_exchange_declare(w->amqp, 1, amqp_cstring_bytes(reply), amqp_cstring_bytes("fanout"), 0, 1, 0, 0,
                        amqp_empty_table);
  amqp_queue_bind(w->amqp, 1, amqp_cstring_bytes(reply), amqp_cstring_bytes(reply), amqp_empty_bytes,
                  amqp_empty_table);
  assert_int_equal(amqp_get_rpc_reply(w->amqp).reply_type, AMQP_RESPONSE_NORMAL);
  ctxt_host_start(w, NULL);
}

/* Sends a message of `type` straight to the endpoint; a request names the reply queue.
 * Returns the request's number (its requestId ends with it). */
static int send_message(ctxt_world_t *w, const char *type, const char *message, int request) {
  char body[4096], address[256] = "";
  if (request)
    snprintf(
        address, sizeof address,
        "\"requestId\":\"00000000-0000-4000-9000-%012d\",\"responseAddress\":\"rabbitmq://localhost/%s\",",
        seq, reply);
  snprintf(body, sizeof body,
           "{\"messageId\":\"00000000-0000-4000-8000-%012d\",%s\"messageType\":[\"urn:message:%s\"],"
           "\"message\":%s}",
           seq, address, type, message);
  ctxt_amqp_publish(w->amqp, w->endpoint, "application/vnd.masstransit+json", body, NULL, NULL);
  return seq++;
}

static int command(ctxt_world_t *w, const char *type, const char *message) {
  char full[128];
  snprintf(full, sizeof full, NS "%s", type);
  return send_message(w, full, message, 1);
}

static void wait_sql(ctxt_world_t *w, const char *sql, long want) {
  assert_int_equal(ctxt_pg_wait_long(w->pg, sql, want, CTXT_EFFECT_MS), want);
}

/* Waits until case id is in status (and with agent, when not NULL). */
static void wait_case(ctxt_world_t *w, const char *id, const char *status, const char *agent) {
  char sql[512];
  snprintf(sql, sizeof sql,
           "SELECT count(*) FROM cases.cases WHERE case_id = '%s' AND status = '%s' AND agent_id IS NOT "
           "DISTINCT FROM "
           "%s%s%s",
           id, status, agent ? "'" : "", agent ? agent : "NULL", agent ? "'" : "");
  wait_sql(w, sql, 1);
}

static void wait_archived(ctxt_world_t *w, const char *type, const char *where, long want) {
  char sql[1024];
  snprintf(sql, sizeof sql, "SELECT count(*) FROM ctxd.outbox_archive WHERE message_type = '%s'%s%s", type,
           where ? " AND " : "", where ? where : "");
  wait_sql(w, sql, want);
}

static void define_group(ctxt_world_t *w, const char *id, const char *agents, int version) {
  char m[512];
  snprintf(m, sizeof m, "{\"SkillGroupId\":\"%s\",\"Name\":\"g\",\"AgentIds\":%s,\"Version\":%d}", id, agents,
           version);
  command(w, "DefineSkillGroup", m);
}

#define ROUND_ROBIN 1
#define LEAST_LOADED 2

/* A rule sending the cases its conditions match to group. */
static void define_rule(ctxt_world_t *w, const char *id, int priority, const char *conditions,
                        const char *group, int strategy, int prefer) {
  char m[1024];
  snprintf(m, sizeof m,
           "{\"RuleId\":\"%s\",\"Name\":\"r\",\"Priority\":%d,\"Conditions\":%s,\"SkillGroupId\":\"%s\","
           "\"Strategy\":%d,\"PreferPreviousAgent\":%s,\"Enabled\":true,\"Version\":1}",
           id, priority, conditions, group, strategy, prefer ? "true" : "false");
  command(w, "DefineDistributionRule", m);
}

static void duty(ctxt_world_t *w, const char *agent, int on, const char *at) {
  char m[256], type[96];
  snprintf(m, sizeof m, "{\"AgentId\":\"%s\",\"At\":\"%s\"}", agent, at);
  snprintf(type, sizeof type, NS "%s", on ? "AgentOnDuty" : "AgentOffDuty");
  send_message(w, type, m, 0);
}

/* strategy: 1 refund, 2 reship, 3 non-product */
static void fulfillment_failed(ctxt_world_t *w, const char *fulfillment, const char *compensation,
                               int strategy) {
  char m[512];
  snprintf(
      m, sizeof m,
      "{\"FulfillmentId\":\"%s\",\"CompensationId\":\"%s\",\"Strategy\":%d,\"Reason\":\"Refund declined\","
      "\"PendingCommunicationId\":\"" PENDING "\",\"FailedAt\":\"2026-11-24T08:00:00Z\"}",
      fulfillment, compensation, strategy);
  send_message(w, FULFILLMENT_FAILED, m, 0);
}

/* Compensation's event: compensation id is in status (1 Draft .. 8 PendingCommunication). */
static void compensation_changed(ctxt_world_t *w, const char *id, int status, int version) {
  char m[512];
  snprintf(m, sizeof m,
           "{\"CompensationId\":\"%s\",\"OldStatus\":null,\"NewStatus\":%d,\"Version\":%d,"
           "\"ChangedAt\":\"2026-11-24T08:00:00Z\"}",
           id, status, version);
  send_message(w, COMPENSATION_CHANGED, m, 0);
}

/* The order system's event for order `number`. */
static void order_created(ctxt_world_t *w, const char *number) {
  char m[512];
  snprintf(m, sizeof m,
           "{\"OrderId\":\"0a000000-0000-4000-8000-000000000001\",\"OrderNumber\":\"%s\","
           "\"CustomerId\":\"0b000000-0000-4000-8000-000000000001\",\"TotalAmountMinor\":3000,"
           "\"Currency\":\"CNY\",\"CreatedAt\":\"2026-11-24T08:00:00Z\"}",
           number);
  send_message(w, ORDER_CREATED, m, 0);
}

/* Paying's event: order `number` paid at `paid_at`. */
static void order_paid(ctxt_world_t *w, const char *number, const char *paid_at) {
  char m[512];
  snprintf(m, sizeof m,
           "{\"OrderNumber\":\"%s\",\"Kind\":1,\"AmountMinor\":3000,\"PaidAmountMinor\":3000,"
           "\"Currency\":\"CNY\",\"PaidAt\":\"%s\"}",
           number, paid_at);
  send_message(w, ORDER_PAID, m, 0);
}

/* A reply expected for request `request`: its body holds every needle (the type first). */
typedef struct {
  int request;
  const char *needles[5];
} expected_t;

/* Takes exactly n replies (the relay may publish them in any order) and matches each
 * expectation to the reply carrying its requestId. */
static void expect_replies(ctxt_world_t *w, const expected_t *e, size_t n) {
  assert_int_equal(ctxt_amqp_wait_count(w->amqp, reply, (long)n, CTXT_EFFECT_MS), (long)n);
  char(*bodies)[8192] = calloc(n, sizeof *bodies), hv[8];
  for (size_t i = 0; i < n; i++)
    assert_int_equal(ctxt_amqp_get(w->amqp, reply, bodies[i], sizeof bodies[i], NULL, hv, sizeof hv), 1);
  assert_int_equal(ctxt_amqp_queue_count(w->amqp, reply), 0);
  for (size_t i = 0; i < n; i++) {
    char id[64];
    snprintf(id, sizeof id, "\"requestId\":\"00000000-0000-4000-9000-%012d\"", e[i].request);
    size_t b = 0;
    while (b < n && strstr(bodies[b], id) == NULL) b++;
    if (b == n) fail_msg("no reply to request %d", e[i].request);
    for (size_t k = 0; k < 5 && e[i].needles[k] != NULL; k++)
      if (strstr(bodies[b], e[i].needles[k]) == NULL) fail_msg("%s not in %s", e[i].needles[k], bodies[b]);
  }
  free(bodies);
}

/* A group of agent-1 with a rule for refunds, and agent-1 on duty. */
static void refund_desk(ctxt_world_t *w) {
  define_group(w, GROUP, "[\"agent-1\",\"agent-off\"]", 1);
  define_rule(w, RULE, 10, "[{\"Feature\":\"strategy\",\"Values\":[\"refund\",\"reship\"]}]", GROUP,
              ROUND_ROBIN, 1);
  wait_sql(w, "SELECT count(*) FROM cases.rules", 1);
  wait_sql(w, "SELECT count(*) FROM cases.skill_group_members", 2);
  duty(w, "agent-1", 1, "2026-11-24T07:00:00Z");
  wait_sql(w, "SELECT count(*) FROM cases.agents WHERE agent_id = 'agent-1' AND on_duty", 1);
}

static void failure_path_to_resolution(void **state) {
  ctxt_world_t *w = *state;
  setup_case(w, "", "\"workers\": 2, \"batch_size\": 16");
  refund_desk(w);
  fulfillment_failed(w, F1, COMP, 1);
  wait_case(w, F1, "WaitProcess", "agent-1");
  wait_archived(w, NS "CaseOpened",
                "body::json->'message'->>'RelatedBizId' = '" F1 "'"
                " AND body::json->'message'->>'RelatedBizType' = 'fulfillment'"
                " AND (body::json->'message'->>'CaseType')::int = 1",
                1);
  /* opening (no old status) and automatic assignment */
  wait_archived(w, NS "CaseStatusChanged",
                "body::json->'message'->>'OldStatus' IS NULL"
                " AND body::json->'message'->>'NewStatus' = '1'"
                " AND body::json->'message'->>'Action' = '1'",
                1);
  wait_archived(w, NS "CaseStatusChanged",
                "body::json->'message'->>'OldStatus' = '1'"
                " AND body::json->'message'->>'NewStatus' = '2'"
                " AND body::json->'message'->>'Action' = '2'"
                " AND body::json->'message'->'Follower'->>'AgentId' = 'agent-1'"
                " AND body::json->'message'->'Follower'->>'SkillGroupId' = '" GROUP "'",
                1);

  int r[5];
  r[0] = command(w, "AcceptCase", "{\"CaseId\":\"" F1 "\",\"AgentId\":\"agent-1\"}");
  wait_case(w, F1, "Processing", "agent-1");
  r[1] = command(w, "ProcessCase",
                 "{\"CaseId\":\"" F1 "\",\"AgentId\":\"agent-1\",\"Result\":\"called the bank\"}");
  wait_case(w, F1, "PendingAcceptance", "agent-1");
  r[2] = command(w, "RejectCaseBack",
                 "{\"CaseId\":\"" F1 "\",\"OperatorId\":\"sup-1\",\"Reason\":\"no proof\"}");
  wait_case(w, F1, "Processing", "agent-1");
  r[3] = command(w, "ProcessCase",
                 "{\"CaseId\":\"" F1 "\",\"AgentId\":\"agent-1\",\"Result\":\"refunded by transfer\"}");
  wait_case(w, F1, "PendingAcceptance", "agent-1");
  r[4] = command(w, "CompleteCase", "{\"CaseId\":\"" F1 "\",\"OperatorId\":\"sup-1\"}");
  wait_case(w, F1, "Finished", "agent-1");

  wait_archived(w, NS "CaseResolved",
                "body::json->'message'->>'CaseId' = '" F1 "'"
                " AND body::json->'message'->>'RelatedBizId' = '" F1 "'"
                " AND body::json->'message'->>'Outcome' = '1'"
                " AND body::json->'message'->>'AgentId' = 'agent-1'",
                1);
  wait_archived(w, NS "CaseStatusChanged", NULL, 7);
  wait_archived(w, NS "CaseStatusChanged",
                "body::json->'message'->>'OldStatus' = '5'"
                " AND body::json->'message'->>'NewStatus' = '6'"
                " AND body::json->'message'->>'Action' = '7'"
                " AND body::json->'message'->>'OperatorId' = 'sup-1'"
                " AND body::json->'message'->>'Version' = '7'",
                1);
  /* each command answered with the status and version after it */
  const expected_t accepted[] = {
      {r[0], {"CaseCommandAccepted", "\"Status\":4", "\"Version\":3", NULL}},
      {r[1], {"CaseCommandAccepted", "\"Status\":5", "\"Version\":4", NULL}},
      {r[2], {"CaseCommandAccepted", "\"Status\":4", "\"Version\":5", NULL}},
      {r[3], {"CaseCommandAccepted", "\"Status\":5", "\"Version\":6", NULL}},
      {r[4], {"CaseCommandAccepted", "\"Status\":6", "\"Version\":7", NULL}},
  };
  expect_replies(w, accepted, 5);
  ctxt_host_stop(w, SIGTERM);

  /* every action in order, with its statuses, actor and note */
  assert_int_equal(
      ctxt_pg_long(
          w->pg,
          "SELECT count(*) FROM (SELECT string_agg(action || ':' || coalesce(from_status, '-') || '>'"
          " || to_status || ':' || actor, ',' ORDER BY version) s FROM cases.operation_log"
          " WHERE case_id = '" F1 "') t WHERE s = "
          "'open:->WaitDistribution:system,assign:WaitDistribution>WaitProcess:distribution,"
          "accept:WaitProcess>Processing:agent-1,process:Processing>PendingAcceptance:agent-1,"
          "reject_back:PendingAcceptance>Processing:sup-1,process:Processing>PendingAcceptance:agent-1,"
          "complete:PendingAcceptance>Finished:sup-1'"),
      1);
  assert_int_equal(
      ctxt_pg_long(
          w->pg,
          "SELECT count(*) FROM cases.operation_log WHERE action = 'reject_back' AND note = 'no proof'"),
      1);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT version FROM cases.cases WHERE case_id = '" F1 "'"), 7);
  /* the agent holds nothing any more; the order remembers them */
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT open_cases FROM cases.agents WHERE agent_id = 'agent-1'"), 0);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(*) FROM cases.order_history WHERE order_id = '" COMP
                                       "' AND agent_id = 'agent-1'"),
                   1);
}

static void refused_actions_answer_with_status(void **state) {
  ctxt_world_t *w = *state;
  setup_case(w, "", "\"workers\": 1");
  refund_desk(w);
  define_group(w, OTHER_GROUP, "[\"agent-x\"]", 1);
  duty(w, "agent-x", 1, "2026-11-24T07:00:00Z");
  wait_sql(w, "SELECT count(*) FROM cases.agents WHERE on_duty", 2);
  wait_sql(w, "SELECT count(*) FROM cases.skill_group_members", 3);
  fulfillment_failed(w, F1, COMP, 1);
  wait_case(w, F1, "WaitProcess", "agent-1");

  const expected_t replies[] = {
      {command(w, "CompleteCase", "{\"CaseId\":\"" F1 "\",\"OperatorId\":\"sup-1\"}"),
       {"Ctxd.Case.Contracts.v1:CaseCommandRejected\"]", "\"Reason\":2", "\"Status\":2",
        "cannot complete a case in status WaitProcess", NULL}},
      {command(w, "ProcessCase", "{\"CaseId\":\"" F1 "\",\"AgentId\":\"agent-1\",\"Result\":\"r\"}"),
       {"Ctxd.Case.Contracts.v1:CaseCommandRejected\"]", "\"Reason\":2", "\"Status\":2",
        "cannot process a case in status WaitProcess", NULL}},
      {command(w, "RejectCaseBack", "{\"CaseId\":\"" F1 "\",\"OperatorId\":\"sup-1\",\"Reason\":\"r\"}"),
       {"Ctxd.Case.Contracts.v1:CaseCommandRejected\"]", "\"Reason\":2", "\"Status\":2",
        "cannot reject back a case in status WaitProcess", NULL}},
      {command(w, "TransferCase",
               "{\"CaseId\":\"" F1 "\",\"ToAgentId\":\"agent-off\",\"OperatorId\":\"agent-1\"}"),
       {"Ctxd.Case.Contracts.v1:CaseCommandRejected\"]", "\"Reason\":4", "\"Status\":2",
        "agent agent-off: not on duty", NULL}},
      {command(w, "TransferCase",
               "{\"CaseId\":\"" F1 "\",\"ToAgentId\":\"agent-x\",\"OperatorId\":\"agent-1\"}"),
       {"Ctxd.Case.Contracts.v1:CaseCommandRejected\"]", "\"Reason\":3", "\"Status\":2",
        "agent agent-x: not in skill group " GROUP, NULL}},
      {command(w, "AcceptCase", "{\"CaseId\":\"" MISSING "\",\"AgentId\":\"agent-1\"}"),
       {"Ctxd.Case.Contracts.v1:CaseCommandRejected\"]", "\"Reason\":1",
        "\"Message\":\"no case " MISSING "\"", "\"CaseId\":\"" MISSING "\"", NULL}},
  };
  expect_replies(w, replies, sizeof replies / sizeof replies[0]);
  /* once closed, nothing more is allowed */
  const expected_t closed[] = {
      {command(w, "CloseCase", "{\"CaseId\":\"" F1 "\",\"OperatorId\":\"sup-1\",\"Reason\":\"duplicate\"}"),
       {"CaseCommandAccepted", "\"Status\":7", "\"Version\":3", NULL}},
  };
  expect_replies(w, closed, 1);
  const expected_t after[] = {
      {command(w, "UrgeCase", "{\"CaseId\":\"" F1 "\",\"OperatorId\":\"sup-1\"}"),
       {"Ctxd.Case.Contracts.v1:CaseCommandRejected\"]", "\"Reason\":2", "\"Status\":7",
        "cannot urge a case in status Closed", NULL}},
      {command(w, "AssignCase", "{\"CaseId\":\"" F1 "\",\"AgentId\":\"agent-1\",\"OperatorId\":\"sup-1\"}"),
       {"Ctxd.Case.Contracts.v1:CaseCommandRejected\"]", "\"Reason\":2", "\"Status\":7",
        "cannot appoint a case in status Closed", NULL}},
      {command(w, "RefuseCase", "{\"CaseId\":\"" F1 "\",\"AgentId\":\"agent-1\",\"Reason\":\"r\"}"),
       {"Ctxd.Case.Contracts.v1:CaseCommandRejected\"]", "\"Reason\":2", "\"Status\":7",
        "cannot refuse a case in status Closed", NULL}},
      {command(w, "AcceptCase", "{\"CaseId\":\"" F1 "\",\"AgentId\":\"agent-1\"}"),
       {"Ctxd.Case.Contracts.v1:CaseCommandRejected\"]", "\"Reason\":2", "\"Status\":7",
        "cannot accept a case in status Closed", NULL}},
  };
  expect_replies(w, after, sizeof after / sizeof after[0]);
  wait_sql(w, "SELECT count(*) FROM ctxd.outbox", 0);
  ctxt_host_stop(w, SIGTERM);

  /* NotFound names no status; refusals changed nothing: open, assign and close only */
  assert_int_equal(
      ctxt_pg_long(w->pg,
                   "SELECT count(*) FROM ctxd.outbox_archive WHERE message_type LIKE '%CaseCommandRejected'"
                   " AND body::json->'message'->>'Reason' = '1' AND body::json->'message'->'Status' IS NULL"),
      1);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(*) FROM cases.operation_log WHERE case_id = '" F1 "'"),
                   3);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(*) FROM ctxd.outbox_archive WHERE message_type = '" NS
                                       "CaseStatusChanged'"),
                   3);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(*) FROM ctxd.outbox_archive WHERE message_type = '" NS
                                       "CaseResolved'"
                                       " AND body::json->'message'->>'Outcome' = '2'"),
                   1);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT open_cases FROM cases.agents WHERE agent_id = 'agent-1'"), 0);
}

static void waits_until_an_agent_comes_on_duty(void **state) {
  ctxt_world_t *w = *state;
  setup_case(w, "", "\"workers\": 2, \"batch_size\": 16");
  define_group(w, GROUP, "[\"agent-1\"]", 1);
  define_rule(w, RULE, 10, "[]", GROUP, ROUND_ROBIN, 1);
  wait_sql(w, "SELECT count(*) FROM cases.rules", 1);
  wait_sql(w, "SELECT count(*) FROM cases.skill_groups", 1);
  fulfillment_failed(w, F1, COMP, 1);
  fulfillment_failed(w, F2, COMP, 2);
  wait_sql(w, "SELECT count(*) FROM ctxd.inbox", 4);
  /* both handled: open, nobody to give them to */
  assert_int_equal(
      ctxt_pg_long(w->pg,
                   "SELECT count(*) FROM cases.cases WHERE status = 'WaitDistribution' AND agent_id IS NULL"),
      2);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(*) FROM cases.operation_log WHERE action = 'assign'"),
                   0);

  duty(w, "agent-1", 1, "2026-11-24T09:00:00Z");
  wait_case(w, F1, "WaitProcess", "agent-1");
  wait_case(w, F2, "WaitProcess", "agent-1");
  wait_archived(w, NS "CaseStatusChanged",
                "body::json->'message'->>'Action' = '2'"
                " AND body::json->'message'->'Follower'->>'AgentId' = 'agent-1'",
                2);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT open_cases FROM cases.agents WHERE agent_id = 'agent-1'"), 2);
  /* a late, older off-duty changes nothing */
  duty(w, "agent-1", 0, "2026-11-24T08:00:00Z");
  wait_sql(w, "SELECT count(*) FROM ctxd.inbox", 6);
  assert_int_equal(
      ctxt_pg_long(w->pg, "SELECT count(*) FROM cases.agents WHERE agent_id = 'agent-1' AND on_duty"), 1);
  ctxt_host_stop(w, SIGTERM);
}

static void duplicated_failure_opens_one_case(void **state) {
  ctxt_world_t *w = *state;
  setup_case(w, "", "\"workers\": 2, \"batch_size\": 1");
  fulfillment_failed(w, F1, COMP, 3);
  fulfillment_failed(w, F1, COMP, 3); /* another message id, same fulfillment */
  fulfillment_failed(w, F1, COMP, 3);
  wait_sql(w, "SELECT count(*) FROM ctxd.inbox", 3);
  wait_sql(w, "SELECT count(*) FROM ctxd.outbox", 0);
  ctxt_host_stop(w, SIGTERM);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(*) FROM cases.cases"), 1);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(*) FROM cases.cases WHERE case_id = '" F1
                                       "' AND strategy = 'non_product'"
                                       " AND status = 'WaitDistribution' AND compensation_id = '" COMP "'"),
                   1);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(*) FROM cases.operation_log"), 1);
  assert_int_equal(
      ctxt_pg_long(w->pg, "SELECT count(*) FROM ctxd.outbox_archive WHERE message_type = '" NS "CaseOpened'"),
      1);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(*) FROM ctxd.outbox_archive WHERE message_type = '" NS
                                       "CaseStatusChanged'"),
                   1);
}

static void round_robin_prefers_the_orders_agent(void **state) {
  ctxt_world_t *w = *state;
  setup_case(w, "", "\"workers\": 2, \"batch_size\": 16");
  define_group(w, GROUP, "[\"agent-b\",\"agent-a\",\"agent-c\"]", 1);
  define_rule(w, RULE, 10, "[]", GROUP, ROUND_ROBIN, 1);
  wait_sql(w, "SELECT count(*) FROM cases.rules", 1);
  wait_sql(w, "SELECT count(*) FROM cases.skill_group_members", 3);
  duty(w, "agent-a", 1, "2026-11-24T07:00:00Z");
  duty(w, "agent-b", 1, "2026-11-24T07:00:00Z");
  wait_sql(w, "SELECT count(*) FROM cases.agents WHERE on_duty", 2);
  /* agent-c is off duty: never picked */
  static const struct {
    const char *fulfillment, *compensation, *agent;
  } steps[] = {
      {F1, "c1000000-0000-4000-8000-000000000001", "agent-a"}, /* no cursor: the smallest id */
      {F2, "c1000000-0000-4000-8000-000000000002", "agent-b"},
      {F3, "c1000000-0000-4000-8000-000000000003", "agent-a"},
      {F4, "c1000000-0000-4000-8000-000000000001", "agent-a"}, /* same order as F1: its agent, not b */
      {F5, "c1000000-0000-4000-8000-000000000005", "agent-b"}, /* the preference left the cursor */
  };
  for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
    fulfillment_failed(w, steps[i].fulfillment, steps[i].compensation, 1);
    wait_case(w, steps[i].fulfillment, "WaitProcess", steps[i].agent);
  }
  ctxt_host_stop(w, SIGTERM);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT open_cases FROM cases.agents WHERE agent_id = 'agent-a'"), 3);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT open_cases FROM cases.agents WHERE agent_id = 'agent-b'"), 2);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(*) FROM cases.cursors WHERE group_id = '" GROUP
                                       "' AND last_agent_id = 'agent-b'"),
                   1);
}

static void open_case_command_is_idempotent(void **state) {
  ctxt_world_t *w = *state;
  setup_case(w, ", \"categories\": \"12:compensation;13:compensation\"", "\"workers\": 1");
  compensation_changed(w, COMP, 3, 2);
  wait_sql(w, "SELECT count(*) FROM cases.related_documents WHERE valid", 1);
  const char *open =
      "{\"CaseId\":\"" F1 "\",\"CaseType\":12,\"RelatedBizType\":\"compensation\",\"RelatedBizId\":\"" COMP
      "\","
      "\"OrderNumber\":\"SO-1\",\"Subject\":\"call the customer\",\"OpenedBy\":\"compensation\","
      "\"Features\":[{\"Name\":\"strategy\",\"Value\":\"reship\"},{\"Name\":\"Region\",\"Value\":\"east\"}]}";
  const expected_t first[] = {
      {command(w, "OpenCase", open), {"CaseCommandAccepted", "\"Status\":1", "\"Version\":1", NULL}}};
  expect_replies(w, first, 1);
  const expected_t again[] = {
      /* retried: the same answer */
      {command(w, "OpenCase", open), {"CaseCommandAccepted", "\"Status\":1", "\"Version\":1", NULL}},
      /* the same id for something else */
      {command(w, "OpenCase",
               "{\"CaseId\":\"" F1
               "\",\"CaseType\":13,\"RelatedBizType\":\"compensation\",\"RelatedBizId\":\"" COMP "\","
               "\"Subject\":\"s\",\"OpenedBy\":\"compensation\"}"),
       {"Ctxd.Case.Contracts.v1:CaseCommandRejected\"]", "\"Reason\":6", "\"Status\":1", NULL}},
  };
  expect_replies(w, again, 2);
  wait_sql(w, "SELECT count(*) FROM ctxd.outbox", 0);
  ctxt_host_stop(w, SIGTERM);
  assert_int_equal(
      ctxt_pg_long(w->pg, "SELECT count(*) FROM cases.cases WHERE case_id = '" F1 "' AND strategy = 'reship'"
                          " AND order_id = 'SO-1' AND compensation_id = '" COMP "' AND case_type = 12"
                          " AND features::text LIKE '%[\"Region\",\"east\"]%'"),
      1);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(*) FROM ctxd.outbox_archive WHERE message_type = '" NS
                                       "CaseOpened'"
                                       " AND body::json->'message'->>'OrderNumber' = 'SO-1'"),
                   1);
}

/* Two agents of a least-loaded group: the one with fewer cases gets the next; a transfer
 * moves the load; an urge keeps the status; a rule that does not prefer the previous agent
 * ignores who handled the order. */
static void least_loaded_transfer_and_urge(void **state) {
  ctxt_world_t *w = *state;
  setup_case(w, "", "\"workers\": 2, \"batch_size\": 16");
  define_group(w, GROUP, "[\"agent-a\",\"agent-b\"]", 1);
  define_rule(w, RULE, 10, "[{\"Feature\":\"CaseType\",\"Values\":[\"1\"]}]", GROUP, LEAST_LOADED, 0);
  wait_sql(w, "SELECT count(*) FROM cases.rules", 1);
  wait_sql(w, "SELECT count(*) FROM cases.skill_group_members", 2);
  duty(w, "agent-a", 1, "2026-11-24T07:00:00Z");
  duty(w, "agent-b", 1, "2026-11-24T07:00:00Z");
  wait_sql(w, "SELECT count(*) FROM cases.agents WHERE on_duty", 2);
  fulfillment_failed(w, F1, "c1000000-0000-4000-8000-000000000001", 1);
  wait_case(w, F1, "WaitProcess", "agent-a"); /* 0 and 0: the smaller id */
  fulfillment_failed(w, F2, "c1000000-0000-4000-8000-000000000002", 1);
  wait_case(w, F2, "WaitProcess", "agent-b");
  fulfillment_failed(w, F3, "c1000000-0000-4000-8000-000000000003", 1);
  wait_case(w, F3, "WaitProcess", "agent-a");

  const expected_t moved[] = {
      {command(w, "TransferCase",
               "{\"CaseId\":\"" F1
               "\",\"ToAgentId\":\"agent-b\",\"OperatorId\":\"agent-a\",\"Reason\":\"leave\"}"),
       {"CaseCommandAccepted", "\"Status\":2", "\"Version\":3", NULL}},
  };
  expect_replies(w, moved, 1);
  const expected_t urged[] = {
      {command(w, "UrgeCase",
               "{\"CaseId\":\"" F1 "\",\"OperatorId\":\"sup-1\",\"Message\":\"customer called\"}"),
       {"CaseCommandAccepted", "\"Status\":2", "\"Version\":4", NULL}},
  };
  expect_replies(w, urged, 1);
  wait_sql(w,
           "SELECT count(*) FROM cases.cases WHERE case_id = '" F1
           "' AND agent_id = 'agent-b' AND urge_count = 1"
           " AND last_urged_at IS NOT NULL",
           1);
  /* a: F3; b: F2 and F1. F4 is F2's order, but the rule does not prefer b */
  fulfillment_failed(w, F4, "c1000000-0000-4000-8000-000000000002", 1);
  wait_case(w, F4, "WaitProcess", "agent-a");
  wait_archived(w, NS "CaseStatusChanged",
                "body::json->'message'->>'Action' = '4' AND body::json->'message'->>'OldStatus' = '2'"
                " AND body::json->'message'->>'NewStatus' = '2'"
                " AND body::json->'message'->'Follower'->>'AgentId' = 'agent-b'",
                1);
  wait_archived(w, NS "CaseStatusChanged",
                "body::json->'message'->>'Action' = '10' AND body::json->'message'->>'OldStatus' = '2'"
                " AND body::json->'message'->>'NewStatus' = '2'",
                1);
  ctxt_host_stop(w, SIGTERM);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT open_cases FROM cases.agents WHERE agent_id = 'agent-a'"), 2);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT open_cases FROM cases.agents WHERE agent_id = 'agent-b'"), 2);
  assert_int_equal(
      ctxt_pg_long(w->pg,
                   "SELECT count(*) FROM cases.operation_log WHERE case_id = '" F1 "' AND action = 'transfer'"
                   " AND from_status = 'WaitProcess' AND to_status = 'WaitProcess' AND agent_id = 'agent-b'"
                   " AND note = 'leave'"),
      1);
}

/* Many failures at once on several workers: the group's cursor is locked while a case is
 * distributed, so round robin hands out exactly alternating turns. */
static void concurrent_failures_share_the_round_robin(void **state) {
  ctxt_world_t *w = *state;
  const int n = 40;
  setup_case(w, "", "\"workers\": 4, \"batch_size\": 1, \"immediate_retries\": 50");
  define_group(w, GROUP, "[\"agent-a\",\"agent-b\"]", 1);
  define_rule(w, RULE, 10, "[]", GROUP, ROUND_ROBIN, 0);
  wait_sql(w, "SELECT count(*) FROM cases.rules", 1);
  wait_sql(w, "SELECT count(*) FROM cases.skill_group_members", 2);
  duty(w, "agent-a", 1, "2026-11-24T07:00:00Z");
  duty(w, "agent-b", 1, "2026-11-24T07:00:00Z");
  wait_sql(w, "SELECT count(*) FROM cases.agents WHERE on_duty", 2);
  for (int i = 0; i < n; i++) {
    char f[37], c[37];
    snprintf(f, sizeof f, "f1000000-0000-4000-8000-%012d", i);
    snprintf(c, sizeof c, "c2000000-0000-4000-8000-%012d", i);
    fulfillment_failed(w, f, c, 2);
  }
  wait_sql(w, "SELECT count(*) FROM cases.cases WHERE status = 'WaitProcess'", n);
  ctxt_host_stop(w, SIGTERM);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(*) FROM cases.cases WHERE agent_id = 'agent-a'"), n / 2);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(*) FROM cases.cases WHERE agent_id = 'agent-b'"), n / 2);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT sum(open_cases) FROM cases.agents"), n);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(*) FROM cases.operation_log WHERE action = 'assign'"),
                   n);
}

/* Without a matching rule a case goes to the configured default group, round robin. */
static void default_group_takes_unmatched_cases(void **state) {
  ctxt_world_t *w = *state;
  setup_case(w, ", \"default_skill_group\": \"" OTHER_GROUP "\", \"fulfillment_case_type\": 7",
             "\"workers\": 1");
  define_group(w, OTHER_GROUP, "[\"agent-x\"]", 1);
  define_rule(w, RULE, 10, "[{\"Feature\":\"CaseType\",\"Values\":[\"1\"]}]", GROUP, ROUND_ROBIN, 1);
  duty(w, "agent-x", 1, "2026-11-24T07:00:00Z");
  wait_sql(w, "SELECT count(*) FROM cases.agents WHERE on_duty", 1);
  fulfillment_failed(w, F1, COMP, 1);
  wait_case(w, F1, "WaitProcess", "agent-x");
  wait_archived(w, NS "CaseOpened", "(body::json->'message'->>'CaseType')::int = 7", 1);
  ctxt_host_stop(w, SIGTERM);
  assert_int_equal(
      ctxt_pg_long(w->pg,
                   "SELECT count(*) FROM cases.cases WHERE case_type = 7 AND group_id = '" OTHER_GROUP "'"),
      1);
}

/* 创建协同单: the related document must be known and valid (the read model fed by the
 * neighbours' events), then the category must qualify for its kind; a retried command finds
 * its case whatever the document became since. */
static void creation_checks(void **state) {
  ctxt_world_t *w = *state;
  setup_case(w, ", \"categories\": \"12:compensation,order\"", "\"workers\": 1");
  compensation_changed(w, COMP, 3, 2);
  compensation_changed(w, COMP2, 5, 4); /* terminated */
  compensation_changed(w, COMP2, 3, 2); /* older, arriving late: ignored */
  order_created(w, "SO-9");
  wait_sql(w, "SELECT count(*) FROM cases.related_documents WHERE version > 1 OR biz_type = 'order'", 3);
  static const char open_fmt[] = "{\"CaseId\":\"%s\",\"CaseType\":%d,\"RelatedBizType\":\"%s\","
                                 "\"RelatedBizId\":\"%s\",\"Subject\":\"s\",\"OpenedBy\":\"desk\"}";
  char m[6][512];
  snprintf(m[0], sizeof m[0], open_fmt, C1, 12, "compensation", MISSING);
  snprintf(m[1], sizeof m[1], open_fmt, C1, 12, "compensation", COMP2);
  snprintf(m[2], sizeof m[2], open_fmt, C1, 99, "compensation", COMP);
  snprintf(m[3], sizeof m[3], open_fmt, C1, 12, "fulfillment", F1); /* a kind without events of its own */
  snprintf(m[4], sizeof m[4], open_fmt, C1, 12, "compensation", COMP);
  snprintf(m[5], sizeof m[5], open_fmt, C2, 12, "order", "SO-9");
  const expected_t replies[] = {
      {command(w, "OpenCase", m[0]),
       {"Ctxd.Case.Contracts.v2:CaseCommandRejected\"]", "\"Reason\":7",
        "compensation " MISSING " is not known", NULL}},
      {command(w, "OpenCase", m[1]),
       {"Ctxd.Case.Contracts.v2:CaseCommandRejected\"]", "\"Reason\":8", "is Terminated", NULL}},
      {command(w, "OpenCase", m[2]),
       {"Ctxd.Case.Contracts.v2:CaseCommandRejected\"]", "\"Reason\":9",
        "problem category 99 does not qualify for a compensation", NULL}},
      {command(w, "OpenCase", m[3]), {"Ctxd.Case.Contracts.v2:CaseCommandRejected\"]", "\"Reason\":7", NULL}},
  };
  expect_replies(w, replies, 4);
  const expected_t opened[] = {
      {command(w, "OpenCase", m[4]), {"CaseCommandAccepted", "\"Status\":1", NULL}},
      {command(w, "OpenCase", m[5]), {"CaseCommandAccepted", "\"Status\":1", NULL}},
  };
  expect_replies(w, opened, 2);
  /* the compensation is terminated afterwards: the retried command still finds its case */
  compensation_changed(w, COMP, 5, 3);
  wait_sql(w, "SELECT count(*) FROM cases.related_documents WHERE NOT valid", 2);
  const expected_t again[] = {{command(w, "OpenCase", m[4]), {"CaseCommandAccepted", "\"Status\":1", NULL}}};
  expect_replies(w, again, 1);
  wait_sql(w, "SELECT count(*) FROM ctxd.outbox", 0);
  ctxt_host_stop(w, SIGTERM);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(*) FROM cases.cases"), 2);
}

/* 接手 by another agent than the assignee, the payment the case waits for, and
 * auto-acceptance once it is paid. */
static void take_over_pay_and_auto_accept(void **state) {
  ctxt_world_t *w = *state;
  setup_case(w, ", \"categories\": \"12:order\"", "\"workers\": 1");
  refund_desk(w);
  order_created(w, "SO-7");
  wait_sql(w, "SELECT count(*) FROM cases.related_documents", 1);
  /* the payment the case is about, made before it opens (by Paying's clock, in the future of
   * this host's: the clocks are never compared) */
  char before[32], later[32];
  time_t t = time(NULL) + 3600;
  strftime(before, sizeof before, "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
  t += 60;
  strftime(later, sizeof later, "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
  order_paid(w, "SO-7", before);
  wait_sql(w, "SELECT count(*) FROM cases.order_payments WHERE order_number = 'SO-7' AND paid_at_ms > 0", 1);
  const expected_t opened[] = {
      {command(w, "OpenCase",
               "{\"CaseId\":\"" C3
               "\",\"CaseType\":12,\"RelatedBizType\":\"order\",\"RelatedBizId\":\"SO-7\","
               "\"OrderNumber\":\"SO-7\",\"Subject\":\"pay the difference\",\"OpenedBy\":\"desk\","
               "\"NeedPay\":true,\"AutoAccept\":true}"),
       {"CaseCommandAccepted", "\"Status\":1", NULL}}};
  expect_replies(w, opened, 1);
  const expected_t steps[] = {
      {command(w, "AssignCase", "{\"CaseId\":\"" C3 "\",\"AgentId\":\"agent-1\",\"OperatorId\":\"sup-1\"}"),
       {"CaseCommandAccepted", "\"Status\":3", NULL}},
      /* agent-2 is nobody's assignee and in no group: whoever takes the case follows it */
      {command(w, "AcceptCase", "{\"CaseId\":\"" C3 "\",\"AgentId\":\"agent-2\"}"),
       {"CaseCommandAccepted", "\"Status\":4", NULL}},
      {command(w, "ProcessCase",
               "{\"CaseId\":\"" C3 "\",\"AgentId\":\"agent-2\",\"Result\":\"asked to pay\"}"),
       {"CaseCommandAccepted", "\"Status\":5", NULL}}, /* unpaid: auto-acceptance waits */
      {command(w, "CompleteCase", "{\"CaseId\":\"" C3 "\",\"OperatorId\":\"sup-1\"}"),
       {"Ctxd.Case.Contracts.v2:CaseCommandRejected\"]", "\"Reason\":10", "\"Status\":5",
        "whose pay status is Unpaid", NULL}},
  };
  expect_replies(w, steps, sizeof steps / sizeof steps[0]); /* one worker: handled in this order */
  assert_int_equal(ctxt_pg_long(w->pg,
                                "SELECT count(*) FROM cases.operation_log WHERE case_id = '" C3
                                "' AND action = 'accept' AND actor = 'agent-2' AND agent_id = 'agent-2'"
                                " AND note = 'taken over from agent-1'"),
                   1);
  /* the order's payment known before the case opened, repeated by Paying, pays nothing;
   * a later one (by Paying's clock) does (one worker: handled in this order) */
  order_paid(w, "SO-7", before);
  order_paid(w, "SO-7", later);
  wait_case(w, C3, "Finished", "agent-2");
  char sql[512];
  snprintf(sql, sizeof sql,
           "SELECT count(*) FROM cases.operation_log WHERE case_id = '" C3
           "' AND action = 'pay' AND note = 'order SO-7 paid at %s'",
           later);
  assert_int_equal(ctxt_pg_long(w->pg, sql), 1);
  wait_archived(w, NS "CaseResolved", "body::json->'message'->>'CaseId' = '" C3 "'", 1);
  wait_archived(w, NS "CaseStatusChanged",
                "body::json->'message'->>'Action' = '7' AND body::json->'message'->>'OperatorId' = "
                "'auto-acceptance' AND body::json->'message'->>'PayStatus' = '3'",
                1);
  wait_sql(w, "SELECT count(*) FROM ctxd.outbox", 0);
  ctxt_host_stop(w, SIGTERM);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(*) FROM cases.cases WHERE case_id = '" C3
                                       "' AND pay_status = 'Paid' AND auto_accept"),
                   1);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(*) FROM cases.operation_log WHERE case_id = '" C3
                                       "' AND action = 'pay' AND actor = 'paying'"),
                   1);
  /* agent-1's load moved to agent-2, whose case then ended */
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT open_cases FROM cases.agents WHERE agent_id = 'agent-1'"), 0);
}

/* 航司: an agent who handled a case of the same carrier gets the next one before the round
 * robin's turn. */
static void carrier_preference(void **state) {
  ctxt_world_t *w = *state;
  setup_case(w, ", \"categories\": \"12:order\"", "\"workers\": 1");
  define_group(w, GROUP, "[\"agent-a\",\"agent-b\"]", 1);
  define_rule(w, RULE, 10, "[{\"Feature\":\"CaseType\",\"Values\":[\"12\"]}]", GROUP, ROUND_ROBIN, 1);
  wait_sql(w, "SELECT count(*) FROM cases.skill_group_members", 2);
  duty(w, "agent-a", 1, "2026-11-24T07:00:00Z");
  duty(w, "agent-b", 1, "2026-11-24T07:00:00Z");
  order_created(w, "SO-1");
  order_created(w, "SO-2");
  wait_sql(w, "SELECT count(*) FROM cases.agents WHERE on_duty", 2);
  wait_sql(w, "SELECT count(*) FROM cases.related_documents", 2);
  static const char open_fmt[] =
      "{\"CaseId\":\"%s\",\"CaseType\":12,\"RelatedBizType\":\"order\",\"RelatedBizId\":\"%s\","
      "\"OrderNumber\":\"%s\",\"Subject\":\"s\",\"OpenedBy\":\"desk\","
      "\"Features\":[{\"Name\":\"Carrier\",\"Value\":\"MU\"}]}";
  char m[512];
  snprintf(m, sizeof m, open_fmt, C1, "SO-1", "SO-1");
  command(w, "OpenCase", m);
  wait_case(w, C1, "WaitProcess", "agent-a"); /* no cursor: the smallest id */
  snprintf(m, sizeof m, open_fmt, C4, "SO-2", "SO-2");
  command(w, "OpenCase", m);
  wait_case(w, C4, "WaitProcess", "agent-a"); /* round robin would say agent-b */
  ctxt_host_stop(w, SIGTERM);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(*) FROM cases.order_history WHERE carrier = 'MU'"), 2);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(failure_path_to_resolution, ctxt_world_setup, ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(refused_actions_answer_with_status, ctxt_world_setup,
                                      ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(waits_until_an_agent_comes_on_duty, ctxt_world_setup,
                                      ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(duplicated_failure_opens_one_case, ctxt_world_setup,
                                      ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(round_robin_prefers_the_orders_agent, ctxt_world_setup,
                                      ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(open_case_command_is_idempotent, ctxt_world_setup, ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(least_loaded_transfer_and_urge, ctxt_world_setup, ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(concurrent_failures_share_the_round_robin, ctxt_world_setup,
                                      ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(default_group_takes_unmatched_cases, ctxt_world_setup,
                                      ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(creation_checks, ctxt_world_setup, ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(take_over_pay_and_auto_accept, ctxt_world_setup, ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(carrier_preference, ctxt_world_setup, ctxt_world_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
