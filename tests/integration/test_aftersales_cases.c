/* The whole after-sales flow across Compensation, Fulfillment and Case, talking only
 * through the broker: a refund fails -> a case is opened and assigned to the on-duty agent
 * -> the agent accepts, processes, and the case completes -> the fulfillment succeeds ->
 * the compensation order is Finished. Once with the three plugins in one host, once in
 * three hosts. And the other way out: the case is closed without finishing -> the
 * fulfillment is abandoned -> the compensation order is Terminated, and no second case
 * about that fulfillment may be opened (nor while the first is open). The test plays the
 * payment system and the agent; it never publishes the contexts' own events. */
#include "hostfixture.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define C1 "c0000000-0000-4000-8000-0000000000b1"
#define GROUP "9a000000-0000-4000-8000-000000000001"
#define RULE "9b000000-0000-4000-8000-000000000001"
#define CASE_B "ca000000-0000-4000-8000-0000000000b2"
#define CASE_B2 "ca000000-0000-4000-8000-0000000000b3"

static int seq;
static char comp_ep[96], ful_ep[96], case_ep[96];

static void send_to(ctxt_world_t *w, const char *endpoint, const char *type, const char *message) {
  char body[4096];
  snprintf(
      body, sizeof body,
      "{\"messageId\":\"00000000-0000-4000-8000-%012d\",\"messageType\":[\"urn:message:%s\"],\"message\":%s}",
      seq++, type, message);
  ctxt_amqp_publish(w->amqp, endpoint, "application/vnd.masstransit+json", body, NULL, NULL);
}

static const char *plugin(char *buf, size_t len, const char *name, const char *endpoint) {
  snprintf(buf, len, "{\"name\": \"%s\", \"settings\": {\"endpoint\": \"%s\"}}", name, endpoint);
  return buf;
}

/* A host of its own for one plugin, sharing the world's broker and database. */
static void spawn_host(ctxt_world_t *w, ctxt_proc_t *p, char *config, size_t configlen, const char *plugins) {
  char text[4096];
  snprintf(text, sizeof text,
           "{\"broker\": {\"url\": \"%s\"}, \"database\": {\"url\": \"%s\"}, \"plugin_dir\": \"%s\", "
           "\"plugins\": [%s],"
           " \"endpoints\": {\"defaults\": {\"workers\": 1, \"immediate_retries\": 10}},"
           " \"errors\": {\"store\": false}}", /* no_errors reads the _error queues */
           ctxt_amqp_url(), w->db, w->plugin_dir, plugins);
  ctxt_write_file(config, configlen, text);
  char *argv[] = {(char *)ctxt_ctxd_path(), "run", "--config", config, NULL};
  char *env[] = {w->db_env, NULL};
  ctxt_proc_spawn(p, argv, env);
  if (!ctxt_proc_wait_output(p, "\"ready:", CTXT_READY_MS)) fail_msg("host did not become ready");
}

static void wait_sql(ctxt_world_t *w, const char *sql) {
  assert_int_equal(ctxt_pg_wait_long(w->pg, sql, 1, CTXT_EFFECT_MS), 1);
}

/* The agent desk opens a case of its own (id case_id) about the fulfillment fid, as a request
 * whose answer lands in a queue of the test; waits until the case context refused it as
 * RelatedBizInvalid (8) saying `why`. */
static void second_case_refused(ctxt_world_t *w, const char *case_id, const char *fid, const char *why) {
  char reply[128], m[2048], sql[1024];
  snprintf(reply, sizeof reply, "%s-reply", case_ep);
  amqp_queue_declare(w->amqp, 1, amqp_cstring_bytes(reply), 0, 0, 0, 1, amqp_empty_table);
  amqp_exchange_declare(w->amqp, 1, amqp_cstring_bytes(reply), amqp_cstring_bytes("fanout"), 0, 1, 0, 0,
                        amqp_empty_table);
  amqp_queue_bind(w->amqp, 1, amqp_cstring_bytes(reply), amqp_cstring_bytes(reply), amqp_empty_bytes,
                  amqp_empty_table);
  assert_int_equal(amqp_get_rpc_reply(w->amqp).reply_type, AMQP_RESPONSE_NORMAL);
  snprintf(
      m, sizeof m,
      "{\"messageId\":\"00000000-0000-4000-8000-%012d\",\"requestId\":\"00000000-0000-4000-9000-%012d\","
      "\"responseAddress\":\"rabbitmq://localhost/%s\","
      "\"messageType\":[\"urn:message:Ctxd.Case.Contracts.v1:OpenCase\"],\"message\":{\"CaseId\":\"%s\","
      "\"CaseType\":1,\"RelatedBizType\":\"fulfillment\",\"RelatedBizId\":\"%s\",\"Subject\":\"call back\","
      "\"OpenedBy\":\"desk\"}}",
      seq, seq, reply, case_id, fid);
  seq++;
  ctxt_amqp_publish(w->amqp, case_ep, "application/vnd.masstransit+json", m, NULL, NULL);
  snprintf(sql, sizeof sql,
           "SELECT count(*) FROM ctxd.outbox_archive WHERE message_type = "
           "'Ctxd.Case.Contracts.v2:CaseCommandRejected'"
           " AND body::json->'message'->>'CaseId' = '%s' AND body::json->'message'->>'Reason' = '8'"
           " AND body::json->'message'->>'Message' LIKE '%%%s%%'",
           case_id, why);
  wait_sql(w, sql);
  snprintf(sql, sizeof sql, "SELECT count(*) FROM cases.cases WHERE case_id = '%s'", case_id);
  assert_int_equal(ctxt_pg_long(w->pg, sql), 0);
}

/* The desk set up, a refund approved and refused by the payment system: the compensation
 * waits in PendingCommunication, a case for the failed fulfillment (its id in fid) waits for
 * agent-1. */
static void failed_refund(ctxt_world_t *w, char fid[64]) {
  /* the desk: one group, one rule for every case, one agent on duty */
  send_to(w, case_ep, "Ctxd.Case.Contracts.v1:DefineSkillGroup",
          "{\"SkillGroupId\":\"" GROUP
          "\",\"Name\":\"after-sales\",\"AgentIds\":[\"agent-1\"],\"Version\":1}");
  send_to(w, case_ep, "Ctxd.Case.Contracts.v1:DefineDistributionRule",
          "{\"RuleId\":\"" RULE
          "\",\"Name\":\"all\",\"Priority\":1,\"Conditions\":[],\"SkillGroupId\":\"" GROUP "\","
          "\"Strategy\":1,\"PreferPreviousAgent\":false,\"Enabled\":true,\"Version\":1}");
  wait_sql(w, "SELECT count(*) FROM cases.rules");
  send_to(w, case_ep, "Ctxd.Case.Contracts.v1:AgentOnDuty",
          "{\"AgentId\":\"agent-1\",\"At\":\"2026-05-01T08:00:00Z\"}");
  wait_sql(w, "SELECT count(*) FROM cases.agents WHERE on_duty");

  /* a refund, approved */
  send_to(w, comp_ep, "Ctxd.Compensation.Contracts.v1:ApplyCompensation",
          "{\"compensationId\":\"" C1
          "\",\"orderNumber\":\"SO-9\",\"customerId\":\"c5000000-0000-4000-8000-000000000001\","
          "\"channel\":1,\"appliedBy\":\"staff-1\",\"reason\":\"Pizza arrived cold\",\"strategy\":1,"
          "\"items\":[{\"sku\":\"SKU-1\",\"name\":\"Margherita\",\"quantity\":1,\"refundAmountMinor\":1500}],"
          "\"currency\":\"CNY\"}");
  wait_sql(w, "SELECT count(*) FROM compensation.orders WHERE id = '" C1 "'");
  send_to(w, comp_ep, "Ctxd.Compensation.Contracts.v1:SubmitCompensation",
          "{\"compensationId\":\"" C1 "\",\"submittedBy\":\"staff-1\"}");
  wait_sql(w, "SELECT count(*) FROM compensation.orders WHERE id = '" C1 "' AND status = 'pending_approval'");
  send_to(w, comp_ep, "Ctxd.Compensation.Contracts.v1:ApproveCompensation",
          "{\"compensationId\":\"" C1 "\",\"approvedBy\":\"boss\"}");

  /* Fulfillment asked the payment system; the payment system says no */
  wait_sql(w, "SELECT count(*) FROM fulfillment.orders WHERE compensation_id = '" C1
              "' AND status = 'processing'");
  PGresult *r =
      PQexec(w->pg, "SELECT id, request_id FROM fulfillment.orders WHERE compensation_id = '" C1 "'");
  char rid[64], m[1024];
  snprintf(fid, 64, "%s", PQgetvalue(r, 0, 0));
  snprintf(rid, sizeof rid, "%s", PQgetvalue(r, 0, 1));
  PQclear(r);
  snprintf(m, sizeof m,
           "{\"refundId\":\"%s\",\"fulfillmentId\":\"%s\",\"reason\":\"card "
           "expired\",\"failedAt\":\"2026-05-01T09:05:00Z\"}",
           rid, fid);
  send_to(w, ful_ep, "Ctxd.Payment.Contracts.v1:RefundFailed", m);
  wait_sql(w, "SELECT count(*) FROM compensation.orders WHERE id = '" C1
              "' AND status = 'pending_communication'");

  /* the case for the failed fulfillment (its id), assigned to the agent on duty */
  char sql[512];
  snprintf(sql, sizeof sql,
           "SELECT count(*) FROM cases.cases WHERE case_id = '%s' AND agent_id = 'agent-1' AND status = "
           "'WaitProcess'",
           fid);
  wait_sql(w, sql);
  /* while it is open, no second case about the fulfillment: this one's resolution decides it */
  second_case_refused(w, CASE_B, fid, "has the open case");
}

static void failure_path(ctxt_world_t *w) {
  char fid[64], sql[512], m[1024];
  failed_refund(w, fid);
  snprintf(m, sizeof m, "{\"CaseId\":\"%s\",\"AgentId\":\"agent-1\"}", fid);
  send_to(w, case_ep, "Ctxd.Case.Contracts.v1:AcceptCase", m);
  snprintf(sql, sizeof sql, "SELECT count(*) FROM cases.cases WHERE case_id = '%s' AND status = 'Processing'",
           fid);
  wait_sql(w, sql);
  snprintf(m, sizeof m,
           "{\"CaseId\":\"%s\",\"AgentId\":\"agent-1\",\"Result\":\"refunded by bank transfer\"}", fid);
  send_to(w, case_ep, "Ctxd.Case.Contracts.v1:ProcessCase", m);
  snprintf(sql, sizeof sql,
           "SELECT count(*) FROM cases.cases WHERE case_id = '%s' AND status = 'PendingAcceptance'", fid);
  wait_sql(w, sql);
  snprintf(m, sizeof m, "{\"CaseId\":\"%s\",\"OperatorId\":\"sup-1\"}", fid);
  send_to(w, case_ep, "Ctxd.Case.Contracts.v1:CompleteCase", m);

  /* CaseResolved -> the fulfillment succeeds -> the compensation order is Finished */
  wait_sql(w, "SELECT count(*) FROM compensation.orders WHERE id = '" C1 "' AND status = 'finished'");
  wait_sql(w, "SELECT count(*) FROM fulfillment.orders WHERE compensation_id = '" C1
              "' AND status = 'succeeded'");
  assert_int_equal(ctxt_pg_wait_long(w->pg, "SELECT count(*) FROM ctxd.outbox", 0, CTXT_EFFECT_MS), 0);
  assert_int_equal(
      ctxt_pg_long(w->pg,
                   "SELECT count(*) FROM fulfillment.pending_communications WHERE resolved_at IS NOT NULL"),
      1);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(*) FROM ctxd.outbox_archive WHERE message_type = "
                                       "'Ctxd.Case.Contracts.v1:CaseResolved'"),
                   1);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(*) FROM ctxd.outbox_archive WHERE message_type = "
                                       "'Ctxd.Fulfillment.Contracts.v1:FulfillmentSucceeded'"),
                   1);
  /* carried out: the case context opens no more cases about it */
  snprintf(sql, sizeof sql,
           "SELECT count(*) FROM cases.related_documents WHERE biz_id = '%s' AND NOT valid AND status = "
           "'Succeeded'",
           fid);
  wait_sql(w, sql);
  snprintf(sql, sizeof sql, "SELECT count(*) FROM cases.operation_log WHERE case_id = '%s'", fid);
  assert_true(ctxt_pg_long(w->pg, sql) >= 5); /* opened, assigned, accepted, processed, completed */
}

/* The agent closes the case without finishing it: the fulfillment is given up
 * (FulfillmentAbandoned, its record closed) and the compensation ends Terminated, never
 * waiting in PendingCommunication for ever and never Finished: the contexts agree that
 * nothing was compensated. */
static void abandoned_path(ctxt_world_t *w, const char *command) {
  char fid[64], sql[512], m[1024];
  failed_refund(w, fid);
  snprintf(m, sizeof m, "{\"CaseId\":\"%s\",\"OperatorId\":\"agent-1\",\"Reason\":\"customer unreachable\"}",
           fid);
  send_to(w, case_ep, command, m);
  wait_sql(w, "SELECT count(*) FROM compensation.orders WHERE id = '" C1 "' AND status = 'terminated'");
  snprintf(sql, sizeof sql,
           "SELECT count(*) FROM fulfillment.orders WHERE id = '%s' AND status = 'abandoned'"
           " AND state->>'status' = 'abandoned'",
           fid);
  wait_sql(w, sql);
  assert_int_equal(ctxt_pg_wait_long(w->pg, "SELECT count(*) FROM ctxd.outbox", 0, CTXT_EFFECT_MS), 0);
  snprintf(sql, sizeof sql,
           "SELECT count(*) FROM compensation.orders WHERE id = '" C1 "' AND status_reason LIKE"
           " 'case %% without finishing'");
  assert_int_equal(ctxt_pg_long(w->pg, sql), 1);
  assert_int_equal(
      ctxt_pg_long(w->pg, "SELECT count(*) FROM fulfillment.pending_communications"
                          " WHERE resolved_at IS NOT NULL AND resolution LIKE 'case % without finishing'"),
      1);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(*) FROM ctxd.outbox_archive WHERE message_type = "
                                       "'Ctxd.Fulfillment.Contracts.v1:FulfillmentAbandoned'"),
                   1);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(*) FROM ctxd.outbox_archive WHERE message_type = "
                                       "'Ctxd.Fulfillment.Contracts.v1:FulfillmentSucceeded'"),
                   0);
  /* the fulfillment was given up for good: a second case about it, which might finish and say
   * compensated while the compensation says Terminated, is refused */
  snprintf(sql, sizeof sql,
           "SELECT count(*) FROM cases.related_documents WHERE biz_id = '%s' AND NOT valid AND status = "
           "'Abandoned'",
           fid);
  wait_sql(w, sql);
  second_case_refused(w, CASE_B2, fid, "is Abandoned");
  /* the last status change says so: PendingCommunication (8) -> Terminated (5) */
  assert_int_equal(ctxt_pg_long(w->pg,
                                "SELECT count(*) FROM ctxd.outbox_archive WHERE message_type LIKE"
                                " '%CompensationStatusChanged' AND body::json->'message'->>'OldStatus' = '8'"
                                " AND body::json->'message'->>'NewStatus' = '5'"),
                   1);
}

static void endpoints(ctxt_world_t *w) {
  snprintf(comp_ep, sizeof comp_ep, "%s-comp", w->endpoint);
  snprintf(ful_ep, sizeof ful_ep, "%s-ful", w->endpoint);
  snprintf(case_ep, sizeof case_ep, "%s-case", w->endpoint);
  seq = 0;
}

static void no_errors(ctxt_world_t *w) {
  const char *eps[] = {comp_ep, ful_ep, case_ep};
  for (int i = 0; i < 3; i++) {
    char q[128];
    snprintf(q, sizeof q, "%s_error", eps[i]);
    assert_int_equal(ctxt_amqp_queue_count(w->amqp, q), 0);
  }
}

static void three_plugins_in_one_host(void **state) {
  ctxt_world_t *w = *state;
  endpoints(w);
  char a[256], b[256], c[256];
  snprintf(w->plugins, sizeof w->plugins, "[%s, %s, %s]", plugin(a, sizeof a, "compensation", comp_ep),
           plugin(b, sizeof b, "fulfillment", ful_ep), plugin(c, sizeof c, "case", case_ep));
  /* the world's own endpoint section would name no endpoint of these plugins */
  snprintf(w->host_settings, sizeof w->host_settings, ", \"cleanup_interval_s\": 60");
  ctxt_host_start(w, NULL);
  failure_path(w);
  ctxt_host_stop(w, SIGTERM);
  no_errors(w);
}

static void case_closed_unfinished_terminates(void **state) {
  ctxt_world_t *w = *state;
  endpoints(w);
  char a[256], b[256], c[256];
  snprintf(w->plugins, sizeof w->plugins, "[%s, %s, %s]", plugin(a, sizeof a, "compensation", comp_ep),
           plugin(b, sizeof b, "fulfillment", ful_ep), plugin(c, sizeof c, "case", case_ep));
  snprintf(w->host_settings, sizeof w->host_settings, ", \"cleanup_interval_s\": 60");
  ctxt_host_start(w, NULL);
  abandoned_path(w, "Ctxd.Case.Contracts.v1:CloseCase");
  ctxt_host_stop(w, SIGTERM);
  no_errors(w);
}

static void three_plugins_in_three_hosts(void **state) {
  ctxt_world_t *w = *state;
  endpoints(w);
  char a[256], b[256], c[256], cfg[3][64];
  ctxt_proc_t *hosts = w->more; /* the teardown stops them if the test fails */
  spawn_host(w, &hosts[0], cfg[0], sizeof cfg[0], plugin(a, sizeof a, "compensation", comp_ep));
  spawn_host(w, &hosts[1], cfg[1], sizeof cfg[1], plugin(b, sizeof b, "fulfillment", ful_ep));
  spawn_host(w, &hosts[2], cfg[2], sizeof cfg[2], plugin(c, sizeof c, "case", case_ep));
  w->pg = ctxt_pg_connect(w->db);
  failure_path(w);
  for (int i = 0; i < 3; i++) {
    ctxt_proc_signal(&hosts[i], SIGTERM);
    assert_true(ctxt_proc_wait_exit(&hosts[i], 60000));
    assert_true(WIFEXITED(hosts[i].status) && WEXITSTATUS(hosts[i].status) == 0);
    ctxt_proc_free(&hosts[i]);
    unlink(cfg[i]);
  }
  no_errors(w);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(three_plugins_in_one_host, ctxt_world_setup, ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(three_plugins_in_three_hosts, ctxt_world_setup, ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(case_closed_unfinished_terminates, ctxt_world_setup,
                                      ctxt_world_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
