/* The host end to end, against the private RabbitMQ and PostgreSQL: the testkit plugin
 * records one effect row per handler run (no unique key), so "exactly once" is checked
 * by counting rows. Each test has its own database, endpoint and message type. */
#include "testsupport.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#define READY_MS 30000
#define EFFECT_MS 30000

typedef struct {
  char db[256];
  char endpoint[64];
  char type[96];
  char config[64];
  char db_env[300];
  ctxt_proc_t host;
  PGconn *pg;
  amqp_connection_state_t amqp;
} world_t;

static void write_config(world_t *w, const char *extra_settings, const char *endpoint_settings) {
  char text[4096];
  snprintf(text, sizeof text,
           "{\n"
           "  \"broker\": {\"url\": \"%s\", \"heartbeat_s\": 10},\n"
           "  \"database\": {\"url\": \"%s\"},\n"
           "  \"plugin_dir\": \"%s\",\n"
           "  \"plugins\": [{\"name\": \"testkit\", \"settings\": {\"endpoint\": \"%s\","
           " \"message_type\": \"%s\"%s}}],\n"
           "  \"endpoints\": {\"%s\": {%s}}\n"
           "}\n",
           ctxt_amqp_url(), w->db, ctxt_plugin_dir(), w->endpoint, w->type,
           extra_settings != NULL ? extra_settings : "", w->endpoint,
           endpoint_settings != NULL ? endpoint_settings : "\"workers\": 2, \"batch_size\": 16");
  ctxt_write_file(w->config, sizeof w->config, text);
}

static int setup(void **state) {
  world_t *w = calloc(1, sizeof *w);
  ctxt_pg_fresh_db(w->db, sizeof w->db);
  snprintf(w->endpoint, sizeof w->endpoint, "t-%s", ctxt_unique());
  snprintf(w->type, sizeof w->type, "Ctxd.Tests.v1:Ping%s", ctxt_unique());
  snprintf(w->db_env, sizeof w->db_env, "CTXD_PG_URL=%s", w->db);
  write_config(w, NULL, NULL);
  w->amqp = ctxt_amqp_connect();
  *state = w;
  return 0;
}

static int teardown(void **state) {
  world_t *w = *state;
  ctxt_proc_free(&w->host);
  if (w->pg != NULL) PQfinish(w->pg);
  if (w->amqp != NULL) ctxt_amqp_close(w->amqp);
  unlink(w->config);
  free(w);
  return 0;
}

/* Starts the host; extra is one more environment entry or NULL. */
static void host_start(world_t *w, char *extra) {
  char *argv[] = {(char *)ctxt_ctxd_path(), "run", "--config", w->config, NULL};
  char *env[] = {w->db_env, extra, NULL};
  ctxt_proc_free(&w->host);
  ctxt_proc_spawn(&w->host, argv, env);
  if (!ctxt_proc_wait_output(&w->host, "\"ready:", READY_MS)) fail_msg("host did not become ready");
  if (w->pg == NULL) w->pg = ctxt_pg_connect(w->db);
}

static void host_stop(world_t *w, int sig) {
  ctxt_proc_signal(&w->host, sig);
  assert_true(ctxt_proc_wait_exit(&w->host, 60000));
  assert_true(WIFEXITED(w->host.status));
  assert_int_equal(WEXITSTATUS(w->host.status), 0);
  assert_non_null(strstr(w->host.out, "\"stopped\""));
}

static void publish(world_t *w, const char *id, const char *message) {
  char body[1024];
  snprintf(body, sizeof body,
           "{\"messageId\":\"%s\",\"conversationId\":\"%s\",\"messageType\":[\"urn:message:%s\"],"
           "\"message\":%s}",
           id, id, w->type, message);
  ctxt_amqp_publish(w->amqp, w->type, "application/vnd.masstransit+json", body, NULL, NULL);
}

static void make_id(char *id, int n) { snprintf(id, 37, "00000000-0000-4000-8000-%012d", n); }

static long effects(world_t *w) { return ctxt_pg_long(w->pg, "SELECT count(*) FROM testkit.effects"); }

static long wait_effects(world_t *w, long want) {
  return ctxt_pg_wait_long(w->pg, "SELECT count(*) FROM testkit.effects", want, EFFECT_MS);
}

static void ready_and_clean_exit(void **state) {
  world_t *w = *state;
  host_start(w, NULL);
  host_stop(w, SIGTERM);
  host_start(w, NULL);
  host_stop(w, SIGINT);
}

static void handled_once_and_deduplicated(void **state) {
  world_t *w = *state;
  host_start(w, NULL);
  char a[37], b[37];
  make_id(a, 1);
  make_id(b, 2);
  publish(w, a, "{\"action\":\"ok\"}");
  publish(w, a, "{\"action\":\"ok\"}");
  publish(w, b, "{\"Action\":\"ok\"}");
  /* plain JSON with the id in the AMQP properties, as non-MassTransit publishers send */
  const char *hdr[] = {"MT-MessageType", NULL, NULL};
  char urn[128];
  snprintf(urn, sizeof urn, "urn:message:%s", w->type);
  hdr[1] = urn;
  ctxt_amqp_publish(w->amqp, w->type, "application/json", "{\"action\":\"ok\"}",
                    "00000000-0000-4000-8000-000000000003", hdr);
  assert_int_equal(wait_effects(w, 3), 3);
  assert_int_equal(ctxt_amqp_wait_count(w->amqp, w->endpoint, 0, EFFECT_MS), 0);
  host_stop(w, SIGTERM);
  assert_int_equal(effects(w), 3);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(*) FROM ctxd.inbox"), 3);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(DISTINCT message_id) FROM testkit.effects"), 3);
  /* the duplicate was acknowledged, not left behind */
  assert_int_equal(ctxt_amqp_queue_count(w->amqp, w->endpoint), 0);
}

static void bad_input_lands_where_an_operator_sees_it(void **state) {
  world_t *w = *state;
  host_start(w, NULL);
  char q[128], body[4096], hv[512], id[37];
  ctxt_amqp_publish(w->amqp, w->type, "application/vnd.masstransit+json", "{not json", NULL, NULL);
  snprintf(q, sizeof q, "%s_error", w->endpoint);
  assert_int_equal(ctxt_amqp_wait_count(w->amqp, q, 1, EFFECT_MS), 1);
  assert_int_equal(ctxt_amqp_get(w->amqp, q, body, sizeof body, "MT-Reason", hv, sizeof hv), 1);
  assert_string_equal(body, "{not json");
  assert_string_equal(hv, "fault");
  ctxt_amqp_wait_count(w->amqp, q, 0, 1000);

  /* a handler that refuses: its exception type and message travel in the fault headers */
  make_id(id, 7);
  publish(w, id, "{\"action\":\"fail\"}");
  assert_int_equal(ctxt_amqp_wait_count(w->amqp, q, 1, EFFECT_MS), 1);
  assert_int_equal(ctxt_amqp_get(w->amqp, q, body, sizeof body, "MT-Fault-ExceptionType", hv, sizeof hv), 1);
  assert_string_equal(hv, "Testkit.Refused");

  /* a type nobody on the endpoint consumes, sent straight to the endpoint's exchange */
  snprintf(body, sizeof body,
           "{\"messageId\":\"00000000-0000-4000-8000-000000000009\",\"messageType\":"
           "[\"urn:message:Nobody.v1:Handles\"],\"message\":{}}");
  ctxt_amqp_publish(w->amqp, w->endpoint, "application/vnd.masstransit+json", body, NULL, NULL);
  snprintf(q, sizeof q, "%s_skipped", w->endpoint);
  assert_int_equal(ctxt_amqp_wait_count(w->amqp, q, 1, EFFECT_MS), 1);
  assert_int_equal(ctxt_amqp_get(w->amqp, q, body, sizeof body, "MT-Reason", hv, sizeof hv), 1);
  assert_string_equal(hv, "dead-letter");

  /* and the host keeps consuming */
  make_id(id, 8);
  publish(w, id, "{\"action\":\"ok\"}");
  assert_int_equal(wait_effects(w, 1), 1);
  host_stop(w, SIGTERM);
  assert_int_equal(effects(w), 1);
}

static void kill9_after_commit_is_not_applied_twice(void **state) {
  world_t *w = *state;
  host_start(w, "CTXD_FAULT=after-commit");
  char id[37];
  make_id(id, 42);
  publish(w, id, "{\"action\":\"ok\"}");
  assert_true(ctxt_proc_wait_exit(&w->host, EFFECT_MS));
  assert_true(WIFSIGNALED(w->host.status));
  assert_int_equal(WTERMSIG(w->host.status), SIGKILL);
  ctxt_proc_free(&w->host);
  /* committed, yet unacknowledged: the broker has it again */
  assert_int_equal(effects(w), 1);
  assert_int_equal(ctxt_amqp_wait_count(w->amqp, w->endpoint, 1, EFFECT_MS), 1);

  host_start(w, NULL);
  assert_int_equal(ctxt_amqp_wait_count(w->amqp, w->endpoint, 0, EFFECT_MS), 0);
  host_stop(w, SIGTERM);
  assert_int_equal(effects(w), 1);
  /* the redelivery met the inbox row: acknowledged, handler not run */
  assert_non_null(strstr(w->host.out, "handled 0, duplicates 1"));
}

/* SIGTERM while batches are running: whatever was received is committed or redelivered. */
static void sigterm_with_messages_in_flight_loses_nothing(void **state) {
  world_t *w = *state;
  const int n = 300;
  host_start(w, NULL);
  char id[37];
  for (int i = 0; i < n; i++) {
    make_id(id, 1000 + i);
    publish(w, id, "{\"action\":\"ok\",\"sleep_ms\":20}");
  }
  ctxt_pg_wait_long(w->pg, "SELECT least(count(*), 20) FROM testkit.effects", 20, EFFECT_MS);
  host_stop(w, SIGTERM);
  long done = effects(w);
  assert_true(done >= 20);
  host_start(w, NULL);
  assert_int_equal(wait_effects(w, n), n);
  host_stop(w, SIGTERM);
  assert_int_equal(effects(w), n);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(DISTINCT message_id) FROM testkit.effects"), n);
}

static void restart_broker(void) {
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "bash %s/tests/stack/stack.sh restart-broker", CTXD_TEST_SOURCE_DIR);
  assert_int_equal(system(cmd), 0);
}

static void broker_restart_resumes_with_exact_counts(void **state) {
  world_t *w = *state;
  const int n = 200;
  host_start(w, NULL);
  char id[37];
  for (int i = 0; i < n; i++) {
    make_id(id, 5000 + i);
    publish(w, id, "{\"action\":\"ok\",\"sleep_ms\":2}");
  }
  ctxt_pg_wait_long(w->pg, "SELECT least(count(*), 10) FROM testkit.effects", 10, EFFECT_MS);
  ctxt_amqp_close(w->amqp);
  w->amqp = NULL;
  restart_broker();
  w->amqp = ctxt_amqp_connect();
  assert_true(ctxt_proc_wait_output(&w->host, "consuming again", 60000));
  for (int i = 0; i < n; i++) {
    make_id(id, 6000 + i);
    publish(w, id, "{\"action\":\"ok\"}");
  }
  assert_int_equal(wait_effects(w, 2 * n), 2 * n);
  assert_int_equal(ctxt_amqp_wait_count(w->amqp, w->endpoint, 0, EFFECT_MS), 0);
  host_stop(w, SIGTERM);
  assert_int_equal(effects(w), 2 * n);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(DISTINCT message_id) FROM testkit.effects"), 2 * n);
}

/* What a handler publishes is written in its own transaction, envelope ready, with the
 * incoming message's conversation carried over; a failing handler's publish is gone. */
static void handler_publish_is_transactional(void **state) {
  world_t *w = *state;
  host_start(w, NULL);
  char a[37], b[37];
  make_id(a, 11);
  make_id(b, 12);
  publish(w, a, "{\"action\":\"publish\"}");
  publish(w, b, "{\"action\":\"publish_then_fail\"}");
  char q[128];
  snprintf(q, sizeof q, "%s_error", w->endpoint);
  assert_int_equal(ctxt_amqp_wait_count(w->amqp, q, 1, EFFECT_MS), 1);
  assert_int_equal(ctxt_pg_wait_long(w->pg, "SELECT count(*) FROM ctxd.outbox", 1, EFFECT_MS), 1);
  host_stop(w, SIGTERM);
  char sql[512];
  snprintf(sql, sizeof sql,
           "SELECT count(*) FROM ctxd.outbox WHERE exchange = 'Ctxd.Tests.v1:Echoed'"
           " AND (body::json->>'initiatorId') = '%s' AND (body::json->>'conversationId') = '%s'"
           " AND (body::json->'messageType'->>0) = 'urn:message:Ctxd.Tests.v1:Echoed'"
           " AND (body::json->'message'->>'echo') = 'true'",
           a, a);
  assert_int_equal(ctxt_pg_long(w->pg, sql), 1);
}

/* An applied migration that changed stops the host with a clear error, exit code 1. */
static void changed_migration_stops_the_host(void **state) {
  world_t *w = *state;
  host_start(w, NULL);
  host_stop(w, SIGTERM);
  PGresult *r = PQexec(w->pg, "UPDATE ctxd.migrations SET checksum = 'feedfacefeedface' "
                              "WHERE scope = 'testkit' AND version = 1");
  assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
  PQclear(r);
  char *argv[] = {(char *)ctxt_ctxd_path(), "run", "--config", w->config, NULL};
  char *env[] = {w->db_env, NULL};
  ctxt_proc_free(&w->host);
  ctxt_proc_spawn(&w->host, argv, env);
  assert_true(ctxt_proc_wait_exit(&w->host, 30000));
  assert_true(WIFEXITED(w->host.status));
  assert_int_equal(WEXITSTATUS(w->host.status), 1);
  assert_non_null(strstr(w->host.out, "migrations of 'testkit': v1 (effects) was changed after it was applied"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(ready_and_clean_exit, setup, teardown),
      cmocka_unit_test_setup_teardown(handled_once_and_deduplicated, setup, teardown),
      cmocka_unit_test_setup_teardown(bad_input_lands_where_an_operator_sees_it, setup, teardown),
      cmocka_unit_test_setup_teardown(kill9_after_commit_is_not_applied_twice, setup, teardown),
      cmocka_unit_test_setup_teardown(sigterm_with_messages_in_flight_loses_nothing, setup, teardown),
      cmocka_unit_test_setup_teardown(handler_publish_is_transactional, setup, teardown),
      cmocka_unit_test_setup_teardown(changed_migration_stops_the_host, setup, teardown),
      cmocka_unit_test_setup_teardown(broker_restart_resumes_with_exact_counts, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
