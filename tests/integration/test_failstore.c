/* The failed-message store against the real servers: its queries and actions on rows of
 * ctxd.failed_messages (failstore.h), ingestion of _error copies by one host and by two
 * sharing the database and broker, retry through the outbox until the handler succeeds,
 * and `ctxd errors` on the same data. */
#include "hostfixture.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <jansson.h>

#include "db.h"
#include "endpoint.h"
#include "failstore.h"
#include "migrate.h"

/* A connection made as the host makes its own, to a database migrated to the runtime's
 * schema. */
static PGconn *store_connect(ctxt_world_t *w) {
  PGconn *c = NULL;
  char err[512];
  assert_int_equal(ctxd__db_connect(w->db, NULL, 5, &c, err, sizeof err), 0);
  assert_int_equal(ctxd__migrate(c, "ctxd", ctxd__runtime_migrations, 1, err, sizeof err), 0);
  if (w->pg == NULL) w->pg = ctxt_pg_connect(w->db);
  return c;
}

/* Inserts failed message n of endpoint ep: type, exception, its body (a bytea literal),
 * status and failures; older the smaller n. */
static void insert_failed(ctxt_world_t *w, const char *ep, int n, const char *type, const char *exception,
                          const char *body_hex, const char *status, int failures) {
  char id[37], sql[2048];
  ctxt_make_id(id, n);
  snprintf(sql, sizeof sql,
           "INSERT INTO ctxd.failed_messages (endpoint, message_id, message_type, exception_type, "
           "exception_message, plugin, failures, headers, properties, body, first_failed_at, last_failed_at, "
           "status) VALUES ('%s', '%s', '%s', '%s', 'failure %d', 'testkit', %d, "
           "'{\"MT-Fault-Message\": \"x\", \"MT-Reason\": \"fault\", \"MT-Host-MachineName\": \"m\", "
           "\"MT-Redelivery-Count\": 1, \"ctxd-Fault-Id\": \"f\", \"traceparent\": \"tp\"}', "
           "'{\"correlation_id\": \"corr-%d\"}', %s, now() - interval '%d minutes', "
           "now() - interval '%d minutes', '%s')",
           ep, id, type, exception, n, failures, n, body_hex, 100 - n, 100 - n, status);
  PGresult *r = PQexec(w->pg, sql);
  if (PQresultStatus(r) != PGRES_COMMAND_OK) fail_msg("insert: %s", PQerrorMessage(w->pg));
  PQclear(r);
}

/* A JSON answer of the store, or the test fails with its reason. */
static json_t *ok(json_t *v, int code, const char *err) {
  if (v == NULL) fail_msg("store: %d %s", code, err);
  return v;
}

static long member(const json_t *o, const char *key) {
  return (long)json_integer_value(json_object_get(o, key));
}

static const char *text(const json_t *o, const char *key) {
  return json_string_value(json_object_get(o, key));
}

static void store_queries_and_actions(void **state) {
  ctxt_world_t *w = *state;
  PGconn *c = store_connect(w);
  const char *ep = w->endpoint;
  int code = 0;
  char err[512] = "";
  for (int n = 1; n <= 3; n++)
    insert_failed(w, ep, n, "Ns:A", "X", "'\\x7b7d'", "unresolved", n == 3 ? 2 : 1);
  for (int n = 4; n <= 5; n++) insert_failed(w, ep, n, "Ns:B", "Y", "'\\x7b7d'", "unresolved", 1);
  insert_failed(w, ep, 6, "Ns:B", "Y", "'\\xff00'", "archived", 1);
  insert_failed(w, ep, 7, "Ns:C", "Z", "'\\x7b7d'", "resolved", 1);

  json_t *g = ok(ctxd__failstore_groups(c, NULL, &code, err, sizeof err), code, err);
  json_t *groups = json_object_get(g, "groups");
  assert_int_equal(json_array_size(groups), 2);
  assert_int_equal(member(g, "total"), 5);
  /* newest first: B's last failure (n 5) is newer than A's (n 3) */
  json_t *b = json_array_get(groups, 0), *a = json_array_get(groups, 1);
  assert_string_equal(text(b, "message_type"), "Ns:B");
  assert_int_equal(member(b, "count"), 2);
  assert_int_equal(member(a, "count"), 3);
  assert_int_equal(member(a, "repeated"), 1);
  assert_string_equal(text(a, "example_message"), "failure 3");
  assert_int_equal(strlen(text(a, "group")), 16);
  assert_non_null(strstr(text(a, "last_failed_at"), "Z"));
  char group_a[17];
  snprintf(group_a, sizeof group_a, "%s", text(a, "group"));
  json_decref(g);

  ctxd__failfilter_t all = {.status = "all", .limit = 2};
  json_t *l = ok(ctxd__failstore_list(c, &all, &code, err, sizeof err), code, err);
  assert_int_equal(member(l, "total"), 7);
  assert_int_equal(member(l, "limit"), 2);
  assert_int_equal(json_array_size(json_object_get(l, "messages")), 2);
  json_t *first = json_array_get(json_object_get(l, "messages"), 0);
  assert_int_equal(member(first, "failures"), 1);
  assert_string_equal(text(first, "message_type"), "Ns:C"); /* the newest */
  json_decref(l);

  char id3[37];
  ctxt_make_id(id3, 3);
  ctxd__failfilter_t by_id = {.message_id = id3};
  l = ok(ctxd__failstore_list(c, &by_id, &code, err, sizeof err), code, err);
  assert_int_equal(member(l, "total"), 1);
  int64_t row3 = member(json_array_get(json_object_get(l, "messages"), 0), "id");
  json_decref(l);
  ctxd__failfilter_t by_group = {
      .group = group_a, .message_type = "Ns:A", .exception_type = "X", .endpoint = ep};
  l = ok(ctxd__failstore_list(c, &by_group, &code, err, sizeof err), code, err);
  assert_int_equal(member(l, "total"), 3);
  json_decref(l);
  ctxd__failfilter_t recent = {.since = "now() is no time", .status = "all"};
  assert_null(ctxd__failstore_list(c, &recent, &code, err, sizeof err));
  assert_int_equal(code, CTXD_EINVAL);
  ctxd__failfilter_t odd = {.status = "lost"};
  assert_null(ctxd__failstore_list(c, &odd, &code, err, sizeof err));
  assert_int_equal(code, CTXD_EINVAL);

  json_t *s = ok(ctxd__failstore_summary(c, &code, err, sizeof err), code, err);
  assert_int_equal(member(s, "unresolved"), 5);
  assert_int_equal(member(s, "archived"), 1);
  assert_int_equal(member(s, "resolved"), 1);
  assert_int_equal(member(s, "groups"), 2);
  json_decref(s);

  /* archive hides a row from the open list; unarchive brings it back */
  json_t *act = ok(ctxd__failstore_act(c, CTXD__FAIL_ARCHIVE, &row3, 1, NULL, "ops", &code, err, sizeof err),
                   code, err);
  assert_int_equal(member(act, "done"), 1);
  json_decref(act);
  l = ok(ctxd__failstore_list(c, &by_id, &code, err, sizeof err), code, err);
  assert_int_equal(member(l, "total"), 0);
  json_decref(l);
  act = ok(ctxd__failstore_act(c, CTXD__FAIL_UNARCHIVE, &row3, 1, NULL, "ops", &code, err, sizeof err), code,
           err);
  assert_int_equal(member(act, "done"), 1);
  json_decref(act);
  l = ok(ctxd__failstore_list(c, &by_id, &code, err, sizeof err), code, err);
  assert_int_equal(member(l, "total"), 1);
  json_decref(l);

  /* retry of group A: three outbox rows without the failure's headers; the archived body
   * that is not text, the resolved row and a missing id are skipped with their reasons */
  ctxd__failfilter_t group = {.group = group_a};
  act =
      ok(ctxd__failstore_act(c, CTXD__FAIL_RETRY, NULL, 0, &group, "ops", &code, err, sizeof err), code, err);
  assert_int_equal(member(act, "requested"), 3);
  assert_int_equal(member(act, "done"), 3);
  json_decref(act);
  assert_int_equal(ctxt_pg_long(w->pg,
                                "SELECT count(*) FROM ctxd.outbox WHERE headers::jsonb ? 'ctxd-Retry-Of' "
                                "AND NOT headers::jsonb ? 'MT-Reason' AND NOT headers::jsonb ? "
                                "'ctxd-Fault-Id' AND headers::jsonb ? 'traceparent' AND "
                                "correlation_id LIKE 'corr-%' AND lease_until <= now()"),
                   3);
  int64_t ids[3] = {row3 + 3, row3 + 4, 99999};
  act = ok(ctxd__failstore_act(c, CTXD__FAIL_RETRY, ids, 3, NULL, "ops", &code, err, sizeof err), code, err);
  assert_int_equal(member(act, "requested"), 3);
  assert_int_equal(member(act, "done"), 0);
  json_t *skipped = json_object_get(act, "skipped");
  assert_int_equal(json_array_size(skipped), 3);
  assert_non_null(strstr(text(json_array_get(skipped, 0), "reason"), "no such"));
  assert_non_null(strstr(text(json_array_get(skipped, 1), "reason"), "errors replay"));
  assert_string_equal(text(json_array_get(skipped, 2), "reason"), "already resolved");
  json_decref(act);

  json_t *one = ok(ctxd__failstore_show(c, row3, &code, err, sizeof err), code, err);
  assert_string_equal(text(one, "status"), "retry_requested");
  assert_int_equal(member(one, "operator_retries"), 1);
  assert_string_equal(text(one, "body"), "{}");
  assert_string_equal(text(json_object_get(one, "properties"), "correlation_id"), "corr-3");
  json_t *actions = json_object_get(one, "actions");
  assert_int_equal(json_array_size(actions), 3);
  assert_string_equal(text(json_array_get(actions, 2), "action"), "retry");
  assert_string_equal(text(json_array_get(actions, 2), "actor"), "ops");
  json_decref(one);
  one = ok(ctxd__failstore_show(c, row3 + 3, &code, err, sizeof err), code, err);
  assert_string_equal(text(one, "body_base64"), "/wA=");
  json_decref(one);
  assert_null(ctxd__failstore_show(c, 99999, &code, err, sizeof err));
  assert_int_equal(code, CTXD_ENOENT);
  PQfinish(c);
}

/* The store on: the host ingests _error copies. */
#define STORE_ON ", \"errors\": {\"store\": true}"
/* An endpoint whose failures go to _error at once. */
#define FAIL_AT_ONCE "\"immediate_retries\": 0, \"redelivery_ms\": \"\""

static void publish_action(ctxt_world_t *w, int n, const char *action) {
  char id[37], body[64];
  ctxt_make_id(id, n);
  snprintf(body, sizeof body, "{\"action\":\"%s\"}", action);
  ctxt_publish(w, id, body);
}

/* Rows of ctxd.failed_messages (where: a condition, or NULL), waited for. */
static long wait_failed(ctxt_world_t *w, const char *where, long want) {
  char sql[512];
  snprintf(sql, sizeof sql, "SELECT count(*) FROM ctxd.failed_messages%s%s", where ? " WHERE " : "",
           where ? where : "");
  return ctxt_pg_wait_long(w->pg, sql, want, CTXT_EFFECT_MS);
}

/* Failures land in the store once each and group by endpoint, type and exception: three
 * refusals and two transient failures out of retries make two groups, 3 and 2. A copy
 * put back into _error by hand (same ctxd-Fault-Id) is not stored again; a MassTransit
 * service's copy (no ctxd-Fault-Id) is stored under a derived id, once. */
static void failures_are_stored_once_and_grouped(void **state) {
  ctxt_world_t *w = *state;
  snprintf(w->endpoint_settings, sizeof w->endpoint_settings, FAIL_AT_ONCE);
  snprintf(w->host_settings, sizeof w->host_settings, STORE_ON);
  ctxt_host_start(w, NULL);
  for (int n = 1; n <= 3; n++) publish_action(w, n, "fail");
  for (int n = 4; n <= 5; n++) publish_action(w, n, "retry");
  publish_action(w, 6, "ok");
  assert_int_equal(wait_failed(w, NULL, 5), 5);
  char q[128];
  snprintf(q, sizeof q, "%s_error", w->endpoint);
  assert_int_equal(ctxt_amqp_wait_count(w->amqp, q, 0, CTXT_EFFECT_MS), 0);
  ctxt_wait_settled(w, CTXD__INGEST_ENDPOINT, 5);
  assert_int_equal(ctxt_metric(w, CTXD__INGEST_ENDPOINT, "ctxd_messages_handled_total"), 5);

  /* copies of the first failure again, by hand: its own (same fault id), and one as a
   * MassTransit service writes it (no fault id), twice */
  char fault_id[64], id[37];
  PGresult *r = PQexec(w->pg, "SELECT headers->>'ctxd-Fault-Id', message_id FROM ctxd.failed_messages "
                              "WHERE exception_type = 'Testkit.Refused' ORDER BY message_id LIMIT 1");
  snprintf(fault_id, sizeof fault_id, "%s", PQgetvalue(r, 0, 0));
  snprintf(id, sizeof id, "%s", PQgetvalue(r, 0, 1));
  PQclear(r);
  assert_int_equal(strlen(fault_id), 36);
  const char *again[] = {"ctxd-Fault-Id", fault_id, "MT-Fault-ExceptionType", "Testkit.Refused", NULL};
  const char *mt[] = {"MT-Fault-ExceptionType", "Testkit.Refused", "MT-Fault-Timestamp",
                      "2026-01-02T03:04:05.1234567Z", NULL};
  ctxt_amqp_publish(w->amqp, q, "application/vnd.masstransit+json", "{}", id, again);
  ctxt_amqp_publish(w->amqp, q, "application/vnd.masstransit+json", "{}", id, mt);
  ctxt_amqp_publish(w->amqp, q, "application/vnd.masstransit+json", "{}", id, mt);
  ctxt_wait_settled(w, CTXD__INGEST_ENDPOINT, 8);
  assert_int_equal(ctxt_metric(w, CTXD__INGEST_ENDPOINT, "ctxd_messages_duplicate_total"), 2);
  char sql[256];
  snprintf(sql, sizeof sql, "SELECT failures FROM ctxd.failed_messages WHERE message_id = '%s'", id);
  assert_int_equal(ctxt_pg_long(w->pg, sql), 2);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(*) FROM ctxd.failed_messages"), 5);
  /* the MassTransit copy is older than the host's: the newer fault stays, the first time
   * moves back */
  snprintf(sql, sizeof sql,
           "SELECT count(*) FROM ctxd.failed_messages WHERE message_id = '%s' AND first_failed_at = "
           "'2026-01-02T03:04:05.123457Z' AND last_failed_at > first_failed_at AND stack_trace <> ''",
           id);
  assert_int_equal(ctxt_pg_long(w->pg, sql), 1);
  ctxt_host_stop(w, SIGTERM);

  PGconn *c = store_connect(w);
  int code = 0;
  char err[512] = "";
  json_t *g = ok(ctxd__failstore_groups(c, NULL, &code, err, sizeof err), code, err);
  json_t *groups = json_object_get(g, "groups");
  assert_int_equal(json_array_size(groups), 2);
  long counts[2] = {0, 0};
  for (size_t i = 0; i < 2; i++) {
    json_t *one = json_array_get(groups, i);
    assert_string_equal(text(one, "endpoint"), w->endpoint);
    assert_string_equal(text(one, "message_type"), w->type);
    counts[strcmp(text(one, "exception_type"), "Testkit.Refused") == 0 ? 0 : 1] = member(one, "count");
    if (strcmp(text(one, "exception_type"), "Testkit.Refused") == 0)
      assert_int_equal(member(one, "repeated"), 1);
  }
  assert_int_equal(counts[0], 3);
  assert_int_equal(counts[1], 2);
  json_decref(g);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(*) FROM ctxd.failed_actions WHERE action = 'failed' AND "
                                       "actor LIKE 'host %/%'"),
                   5);
  assert_int_equal(
      ctxt_pg_long(w->pg, "SELECT count(*) FROM ctxd.failed_actions WHERE action = 'failed again'"), 1);
  PQfinish(c);
}

/* Two hosts on one database and broker: each failure is stored once, whichever host took
 * its copy. */
static void two_hosts_store_each_failure_once(void **state) {
  ctxt_world_t *w = *state;
  enum { FAILURES = 20 };
  snprintf(w->endpoint_settings, sizeof w->endpoint_settings,
           "\"immediate_retries\": 0, \"redelivery_ms\": \"\", \"workers\": 2, \"prefetch\": 4, "
           "\"batch_size\": 2");
  snprintf(w->host_settings, sizeof w->host_settings, STORE_ON);
  ctxt_host_start(w, NULL);
  ctxt_peer_start(w, NULL);
  for (int n = 1; n <= FAILURES; n++) publish_action(w, n, "fail");
  assert_int_equal(wait_failed(w, NULL, FAILURES), FAILURES);
  char q[128];
  snprintf(q, sizeof q, "%s_error", w->endpoint);
  assert_int_equal(ctxt_amqp_wait_count(w->amqp, q, 0, CTXT_EFFECT_MS), 0);
  ctxt_peer_stop(w, SIGTERM);
  ctxt_host_stop(w, SIGTERM);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(*) FROM ctxd.failed_messages WHERE failures = 1"),
                   FAILURES);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(*) FROM ctxd.failed_actions"), FAILURES);
  /* both took part: each stored some (the actor names the host) */
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(DISTINCT actor) FROM ctxd.failed_actions"), 2);
}

/* Starts a host that stores failures at once (no retries) and sends retries quickly. */
static void start_retrying_host(ctxt_world_t *w) {
  snprintf(w->endpoint_settings, sizeof w->endpoint_settings, FAIL_AT_ONCE);
  snprintf(w->host_settings, sizeof w->host_settings, STORE_ON ", \"outbox\": {\"sweep_interval_ms\": 100}");
  ctxt_host_start(w, NULL);
}

/* The status of the failed message with id message_id, waited for. */
static void wait_status(ctxt_world_t *w, const char *message_id, const char *status, int failures) {
  char sql[512];
  snprintf(
      sql, sizeof sql,
      "SELECT count(*) FROM ctxd.failed_messages WHERE message_id = '%s' AND status = '%s' AND failures = %d",
      message_id, status, failures);
  if (ctxt_pg_wait_long(w->pg, sql, 1, CTXT_EFFECT_MS) != 1)
    fail_msg("message %s never became %s with %d failure(s)", message_id, status, failures);
}

static int64_t failed_id(ctxt_world_t *w, const char *message_id) {
  char sql[256];
  snprintf(sql, sizeof sql, "SELECT id FROM ctxd.failed_messages WHERE message_id = '%s'", message_id);
  return ctxt_pg_long(w->pg, sql);
}

/* A retry goes back through the outbox: one whose handler now succeeds applies its effect
 * once and marks the row resolved; one that fails again is a repeated failure of the same
 * row (failures 2, unresolved again, "repeated" in its group). The action log tells it
 * all. */
static void retry_until_the_handler_succeeds(void **state) {
  ctxt_world_t *w = *state;
  start_retrying_host(w);
  char flaky[37], failing[37];
  ctxt_make_id(flaky, 1);
  ctxt_make_id(failing, 2);
  /* flaky fails in its first delivery (the batch and its careful run count two attempts)
   * and succeeds from the third */
  publish_action(w, 1, "flaky");
  publish_action(w, 2, "fail");
  wait_status(w, flaky, "unresolved", 1);
  wait_status(w, failing, "unresolved", 1);
  PGconn *c = store_connect(w);
  int code = 0;
  char err[512] = "";
  int64_t rows[2] = {failed_id(w, flaky), failed_id(w, failing)};
  json_t *act =
      ok(ctxd__failstore_act(c, CTXD__FAIL_RETRY, rows, 2, NULL, "ops", &code, err, sizeof err), code, err);
  assert_int_equal(member(act, "done"), 2);
  json_decref(act);
  wait_status(w, flaky, "resolved", 1);
  wait_status(w, failing, "unresolved", 2);
  assert_int_equal(ctxt_wait_effects(w, NULL, 1), 1);
  ctxt_wait_settled(w, w->endpoint, 4);
  ctxt_host_stop(w, SIGTERM);
  assert_int_equal(ctxt_effects(w, NULL), 1);

  ctxd__failfilter_t all = {.status = "all"};
  json_t *g = ok(ctxd__failstore_groups(c, &all, &code, err, sizeof err), code, err);
  json_t *groups = json_object_get(g, "groups");
  assert_int_equal(json_array_size(groups), 2);
  for (size_t i = 0; i < 2; i++) {
    json_t *one = json_array_get(groups, i);
    assert_int_equal(member(one, "repeated"), strcmp(text(one, "exception_type"), "Testkit.Refused") == 0);
  }
  json_decref(g);
  const char *want[2][3] = {{"failed", "retry", "resolved"}, {"failed", "retry", "failed again"}};
  for (int k = 0; k < 2; k++) {
    json_t *one = ok(ctxd__failstore_show(c, rows[k], &code, err, sizeof err), code, err);
    assert_int_equal(member(one, "operator_retries"), 1);
    json_t *actions = json_object_get(one, "actions");
    assert_int_equal(json_array_size(actions), 3);
    for (size_t i = 0; i < 3; i++)
      assert_string_equal(text(json_array_get(actions, i), "action"), want[k][i]);
    assert_string_equal(text(json_array_get(actions, 1), "actor"), "ops");
    assert_non_null(strstr(text(json_array_get(actions, 2), "actor"), "host "));
    json_decref(one);
  }
  /* a resolved message is not retried again */
  act = ok(ctxd__failstore_act(c, CTXD__FAIL_RETRY, rows, 1, NULL, "ops", &code, err, sizeof err), code, err);
  assert_int_equal(member(act, "done"), 0);
  assert_string_equal(text(json_array_get(json_object_get(act, "skipped"), 0), "reason"), "already resolved");
  json_decref(act);
  PQfinish(c);
}

/* keep_in_queue: every copy stays in <E>_error for other tools and is stored too. */
static void keep_in_queue_stores_and_keeps(void **state) {
  ctxt_world_t *w = *state;
  snprintf(w->endpoint_settings, sizeof w->endpoint_settings, FAIL_AT_ONCE);
  snprintf(w->host_settings, sizeof w->host_settings, ", \"errors\": {\"keep_in_queue\": true}");
  ctxt_host_start(w, NULL);
  publish_action(w, 1, "fail");
  publish_action(w, 2, "fail");
  assert_int_equal(wait_failed(w, NULL, 2), 2);
  char q[128], store[160];
  snprintf(q, sizeof q, "%s_error", w->endpoint);
  snprintf(store, sizeof store, "%s_error_store", w->endpoint);
  assert_int_equal(ctxt_amqp_wait_count(w->amqp, store, 0, CTXT_EFFECT_MS), 0);
  ctxt_host_stop(w, SIGTERM);
  assert_int_equal(ctxt_amqp_queue_count(w->amqp, q), 2);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(*) FROM ctxd.failed_messages"), 2);
}

/* Resolved rows expire errors.retention_s after they were resolved; open ones stay,
 * however old. */
static void resolved_rows_expire(void **state) {
  ctxt_world_t *w = *state;
  snprintf(w->host_settings, sizeof w->host_settings,
           ", \"errors\": {\"retention_s\": 60}, \"cleanup_interval_s\": 1");
  ctxt_host_start(w, NULL);
  insert_failed(w, w->endpoint, 1, "Ns:A", "X", "'\\x7b7d'", "resolved", 1);
  insert_failed(w, w->endpoint, 2, "Ns:A", "X", "'\\x7b7d'", "resolved", 1);
  insert_failed(w, w->endpoint, 3, "Ns:A", "X", "'\\x7b7d'", "unresolved", 1);
  PQclear(PQexec(w->pg,
                 "UPDATE ctxd.failed_messages SET status_at = now() - interval '2 minutes' WHERE id <> 2"));
  assert_int_equal(wait_failed(w, NULL, 2), 2);
  ctxt_host_stop(w, SIGTERM);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(*) FROM ctxd.failed_messages WHERE status = 'resolved'"),
                   1);
  assert_int_equal(
      ctxt_pg_long(w->pg, "SELECT count(*) FROM ctxd.failed_messages WHERE status = 'unresolved'"), 1);
}

/* Runs `ctxd errors ARGS --config <w's>` on w's database; returns its exit code and its
 * standard output in out. */
static int ctxd_errors(ctxt_world_t *w, char *out, size_t len, const char *args) {
  char cmd[2048];
  snprintf(cmd, sizeof cmd, "CTXD_PG_URL='%s' '%s' errors %s --config '%s' 2>/dev/null", w->db,
           ctxt_ctxd_path(), args, w->config);
  FILE *p = popen(cmd, "r");
  assert_non_null(p);
  size_t n = fread(out, 1, len - 1, p);
  out[n] = '\0';
  int status = pclose(p);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* `ctxd errors ...` as JSON parsed, after exit code want. */
static json_t *cli_json(ctxt_world_t *w, const char *args, int want) {
  static char out[1 << 16];
  assert_int_equal(ctxd_errors(w, out, sizeof out, args), want);
  json_error_t je;
  json_t *j = json_loads(out, 0, &je);
  if (j == NULL) fail_msg("ctxd errors %s: not JSON (%s): %s", args, je.text, out);
  return j;
}

/* The command line on the same data: list, groups, show, archive, unarchive and retry,
 * with their exit codes and --json answers. */
static void cli_on_the_store(void **state) {
  ctxt_world_t *w = *state;
  start_retrying_host(w);
  publish_action(w, 1, "fail");
  publish_action(w, 2, "fail");
  publish_action(w, 3, "retry");
  assert_int_equal(wait_failed(w, NULL, 3), 3);

  json_t *j = cli_json(w, "list --json", 0);
  assert_int_equal(member(j, "total"), 3);
  assert_int_equal(json_array_size(json_object_get(j, "messages")), 3);
  json_decref(j);
  j = cli_json(w, "groups --json", 0);
  json_t *groups = json_object_get(j, "groups");
  assert_int_equal(json_array_size(groups), 2);
  char refused[17] = "";
  for (size_t i = 0; i < 2; i++)
    if (strcmp(text(json_array_get(groups, i), "exception_type"), "Testkit.Refused") == 0)
      snprintf(refused, sizeof refused, "%s", text(json_array_get(groups, i), "group"));
  assert_int_equal(strlen(refused), 16);
  json_decref(j);
  char out[8192], args[256], id[37];
  assert_int_equal(ctxd_errors(w, out, sizeof out, "list --exception-type Testkit.Refused"), 0);
  assert_non_null(strstr(out, "2 of 2"));
  assert_non_null(strstr(out, "Testkit.Refused"));
  ctxt_make_id(id, 3);
  int64_t row = failed_id(w, id);
  snprintf(args, sizeof args, "show %lld --json", (long long)row);
  j = cli_json(w, args, 0);
  assert_string_equal(text(j, "message_id"), id);
  assert_non_null(strstr(text(j, "body"), "\"retry\""));
  assert_string_equal(text(json_array_get(json_object_get(j, "actions"), 0), "action"), "failed");
  json_decref(j);
  assert_int_equal(ctxd_errors(w, out, sizeof out, "show 999999"), 1);
  assert_int_equal(ctxd_errors(w, out, sizeof out, "list --status lost"), 2);
  assert_int_equal(ctxd_errors(w, out, sizeof out, "list --since yesterday-ish"), 2);
  assert_int_equal(ctxd_errors(w, out, sizeof out, "retry"), 2);

  snprintf(args, sizeof args, "archive %lld --by ops --json", (long long)row);
  j = cli_json(w, args, 0);
  assert_int_equal(member(j, "done"), 1);
  json_decref(j);
  j = cli_json(w, "list --json", 0);
  assert_int_equal(member(j, "total"), 2);
  json_decref(j);
  j = cli_json(w, "list --status archived --json", 0);
  assert_int_equal(member(j, "total"), 1);
  json_decref(j);
  snprintf(args, sizeof args, "unarchive %lld", (long long)row);
  assert_int_equal(ctxd_errors(w, out, sizeof out, args), 0);
  assert_non_null(strstr(out, "unarchive: 1 requested, 1 done"));
  j = cli_json(w, "list --json", 0);
  assert_int_equal(member(j, "total"), 3);
  json_decref(j);

  /* the refused group again: both fail again, each a repeated failure */
  snprintf(args, sizeof args, "retry --group %s --json", refused);
  j = cli_json(w, args, 0);
  assert_int_equal(member(j, "requested"), 2);
  assert_int_equal(member(j, "done"), 2);
  json_decref(j);
  assert_int_equal(wait_failed(w, "failures = 2 AND status = 'unresolved'", 2), 2);
  ctxt_host_stop(w, SIGTERM);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(*) FROM ctxd.failed_actions WHERE action = 'retry' AND "
                                       "actor LIKE '%@cli'"),
                   2);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(*) FROM ctxd.failed_actions WHERE actor = 'ops'"), 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(store_queries_and_actions, ctxt_world_setup, ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(failures_are_stored_once_and_grouped, ctxt_world_setup,
                                      ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(two_hosts_store_each_failure_once, ctxt_world_setup,
                                      ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(retry_until_the_handler_succeeds, ctxt_world_setup,
                                      ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(keep_in_queue_stores_and_keeps, ctxt_world_setup, ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(resolved_rows_expire, ctxt_world_setup, ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(cli_on_the_store, ctxt_world_setup, ctxt_world_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
