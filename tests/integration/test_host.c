/* The host end to end, against the private RabbitMQ and PostgreSQL: the testkit plugin
 * records one effect row per handler run (no unique key), so "exactly once" is checked
 * by counting rows. Each test has its own database, endpoint and message type. */
#include "hostfixture.h"

#include <jansson.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "migrate.h"

static void ready_and_clean_exit(void **state) {
  ctxt_world_t *w = *state;
  ctxt_host_start(w, NULL);
  ctxt_host_stop(w, SIGTERM);
  ctxt_host_start(w, NULL);
  ctxt_host_stop(w, SIGINT);
}

static void handled_once_and_deduplicated(void **state) {
  ctxt_world_t *w = *state;
  ctxt_host_start(w, NULL);
  char a[37], b[37];
  ctxt_make_id(a, 1);
  ctxt_make_id(b, 2);
  ctxt_publish(w, a, "{\"action\":\"ok\"}");
  ctxt_publish(w, a, "{\"action\":\"ok\"}");
  ctxt_publish(w, b, "{\"Action\":\"ok\"}");
  /* plain JSON with the id in the AMQP properties, as non-MassTransit publishers send */
  const char *hdr[] = {"MT-MessageType", NULL, NULL};
  char urn[128];
  snprintf(urn, sizeof urn, "urn:message:%s", w->type);
  hdr[1] = urn;
  ctxt_amqp_publish(w->amqp, w->type, "application/json", "{\"action\":\"ok\"}",
                    "00000000-0000-4000-8000-000000000003", hdr);
  assert_int_equal(ctxt_wait_effects(w, NULL, 3), 3);
  assert_int_equal(ctxt_amqp_wait_count(w->amqp, w->endpoint, 0, CTXT_EFFECT_MS), 0);
  ctxt_host_stop(w, SIGTERM);
  assert_int_equal(ctxt_effects(w, NULL), 3);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(*) FROM ctxd.inbox"), 3);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(DISTINCT message_id) FROM testkit.effects"), 3);
  /* the duplicate was acknowledged, not left behind */
  assert_int_equal(ctxt_amqp_queue_count(w->amqp, w->endpoint), 0);
}

static void bad_input_lands_where_an_operator_sees_it(void **state) {
  ctxt_world_t *w = *state;
  ctxt_host_start(w, NULL);
  char q[128], body[4096], hv[512], id[37];
  ctxt_amqp_publish(w->amqp, w->type, "application/vnd.masstransit+json", "{not json", NULL, NULL);
  snprintf(q, sizeof q, "%s_error", w->endpoint);
  assert_int_equal(ctxt_amqp_wait_count(w->amqp, q, 1, CTXT_EFFECT_MS), 1);
  assert_int_equal(ctxt_amqp_get(w->amqp, q, body, sizeof body, "MT-Reason", hv, sizeof hv), 1);
  assert_string_equal(body, "{not json");
  assert_string_equal(hv, "fault");
  ctxt_amqp_wait_count(w->amqp, q, 0, 1000);

  /* a handler that refuses: its exception type and message travel in the fault headers */
  ctxt_make_id(id, 7);
  ctxt_publish(w, id, "{\"action\":\"fail\"}");
  assert_int_equal(ctxt_amqp_wait_count(w->amqp, q, 1, CTXT_EFFECT_MS), 1);
  assert_int_equal(ctxt_amqp_get(w->amqp, q, body, sizeof body, "MT-Fault-ExceptionType", hv, sizeof hv), 1);
  assert_string_equal(hv, "Testkit.Refused");

  /* a type nobody on the endpoint consumes, sent straight to the endpoint's exchange */
  snprintf(body, sizeof body,
           "{\"messageId\":\"00000000-0000-4000-8000-000000000009\",\"messageType\":"
           "[\"urn:message:Nobody.v1:Handles\"],\"message\":{}}");
  ctxt_amqp_publish(w->amqp, w->endpoint, "application/vnd.masstransit+json", body, NULL, NULL);
  snprintf(q, sizeof q, "%s_skipped", w->endpoint);
  assert_int_equal(ctxt_amqp_wait_count(w->amqp, q, 1, CTXT_EFFECT_MS), 1);
  assert_int_equal(ctxt_amqp_get(w->amqp, q, body, sizeof body, "MT-Reason", hv, sizeof hv), 1);
  assert_string_equal(hv, "dead-letter");

  /* and the host keeps consuming */
  ctxt_make_id(id, 8);
  ctxt_publish(w, id, "{\"action\":\"ok\"}");
  assert_int_equal(ctxt_wait_effects(w, NULL, 1), 1);
  ctxt_host_stop(w, SIGTERM);
  assert_int_equal(ctxt_effects(w, NULL), 1);
}

static void kill9_after_commit_is_not_applied_twice(void **state) {
  ctxt_world_t *w = *state;
  ctxt_host_start(w, "CTXD_FAULT=after-commit");
  char id[37];
  ctxt_make_id(id, 42);
  ctxt_publish(w, id, "{\"action\":\"ok\"}");
  assert_true(ctxt_proc_wait_exit(&w->host, CTXT_EFFECT_MS));
  assert_true(WIFSIGNALED(w->host.status));
  assert_int_equal(WTERMSIG(w->host.status), SIGKILL);
  ctxt_proc_free(&w->host);
  /* committed, yet unacknowledged: the broker has it again */
  assert_int_equal(ctxt_effects(w, NULL), 1);
  assert_int_equal(ctxt_amqp_wait_count(w->amqp, w->endpoint, 1, CTXT_EFFECT_MS), 1);

  ctxt_host_start(w, NULL);
  ctxt_wait_settled(w, w->endpoint, 1);
  ctxt_host_stop(w, SIGTERM);
  assert_int_equal(ctxt_effects(w, NULL), 1);
  /* the redelivery met the inbox row: acknowledged, handler not run */
  assert_non_null(strstr(w->host.out, "handled 0, duplicates 1"));
}

/* SIGTERM while batches are running: whatever was received is committed or redelivered. */
static void sigterm_with_messages_in_flight_loses_nothing(void **state) {
  ctxt_world_t *w = *state;
  const int n = 300;
  ctxt_host_start(w, NULL);
  char id[37];
  for (int i = 0; i < n; i++) {
    ctxt_make_id(id, 1000 + i);
    ctxt_publish(w, id, "{\"action\":\"ok\",\"sleep_ms\":20}");
  }
  ctxt_pg_wait_long(w->pg, "SELECT least(count(*), 20) FROM testkit.effects", 20, CTXT_EFFECT_MS);
  ctxt_host_stop(w, SIGTERM);
  long done = ctxt_effects(w, NULL);
  assert_true(done >= 20);
  ctxt_host_start(w, NULL);
  assert_int_equal(ctxt_wait_effects(w, NULL, n), n);
  ctxt_host_stop(w, SIGTERM);
  assert_int_equal(ctxt_effects(w, NULL), n);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(DISTINCT message_id) FROM testkit.effects"), n);
}

/* What a handler publishes is written in its own transaction, envelope ready, with the
 * incoming message's conversation carried over; a failing handler's publish is gone. */
static void handler_publish_is_transactional(void **state) {
  ctxt_world_t *w = *state;
  ctxt_host_start(w, NULL);
  char a[37], b[37];
  ctxt_make_id(a, 11);
  ctxt_make_id(b, 12);
  ctxt_publish(w, a, "{\"action\":\"publish\"}");
  ctxt_publish(w, b, "{\"action\":\"publish_then_fail\"}");
  char q[128];
  snprintf(q, sizeof q, "%s_error", w->endpoint);
  assert_int_equal(ctxt_amqp_wait_count(w->amqp, q, 1, CTXT_EFFECT_MS), 1);
  /* the relay publishes it and archives it once confirmed; beside it, the failed one's
   * Fault<T> (tests/interop/test_faults.c) */
  assert_int_equal(ctxt_pg_wait_long(w->pg, "SELECT count(*) FROM ctxd.outbox_archive", 2, CTXT_EFFECT_MS),
                   2);
  assert_int_equal(
      ctxt_pg_long(w->pg,
                   "SELECT count(*) FROM ctxd.outbox_archive WHERE message_type LIKE 'MassTransit:Fault%'"),
      1);
  ctxt_host_stop(w, SIGTERM);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(*) FROM ctxd.outbox"), 0);
  char sql[1024];
  /* nobody consumes the event in this test: archived, and marked unroutable; the message
   * had no correlationId nor requestId, so no initiator (MassTransit's rule) */
  snprintf(sql, sizeof sql,
           "SELECT count(*) FROM ctxd.outbox_archive WHERE exchange = '%s'"
           " AND (body::json->>'initiatorId') IS NULL AND (body::json->>'conversationId') = '%s'"
           " AND (body::json->'messageType'->>0) = 'urn:message:%s'"
           " AND (body::json->'message'->>'echo') = 'true' AND unroutable",
           w->echo_type, a, w->echo_type);
  assert_int_equal(ctxt_pg_long(w->pg, sql), 1);
}

/* MassTransit request/response: the reply goes to the request's responseAddress with its
 * requestId and correlationId. */
static void request_gets_response_at_its_address(void **state) {
  ctxt_world_t *w = *state;
  char reply[96], body[2048], hv[16];
  snprintf(reply, sizeof reply, "%s-reply", w->endpoint);
  amqp_queue_declare(w->amqp, 1, amqp_cstring_bytes(reply), 0, 0, 0, 1, amqp_empty_table);
  amqp_exchange_declare(w->amqp, 1, amqp_cstring_bytes(reply), amqp_cstring_bytes("fanout"), 0, 1, 0, 0,
                        amqp_empty_table);
  amqp_queue_bind(w->amqp, 1, amqp_cstring_bytes(reply), amqp_cstring_bytes(reply), amqp_empty_bytes,
                  amqp_empty_table);
  assert_int_equal(amqp_get_rpc_reply(w->amqp).reply_type, AMQP_RESPONSE_NORMAL);
  ctxt_host_start(w, NULL);
  snprintf(body, sizeof body,
           "{\"messageId\":\"00000000-0000-4000-8000-000000000031\","
           "\"requestId\":\"00000000-0000-4000-8000-0000000000aa\","
           "\"correlationId\":\"00000000-0000-4000-8000-0000000000bb\","
           "\"responseAddress\":\"rabbitmq://localhost/%s?temporary=true\","
           "\"messageType\":[\"urn:message:%s\"],\"message\":{\"action\":\"respond\"}}",
           reply, w->type);
  ctxt_amqp_publish(w->amqp, w->type, "application/vnd.masstransit+json", body, NULL, NULL);
  assert_int_equal(ctxt_amqp_wait_count(w->amqp, reply, 1, CTXT_EFFECT_MS), 1);
  ctxt_host_stop(w, SIGTERM);
  assert_int_equal(ctxt_amqp_get(w->amqp, reply, body, sizeof body, NULL, hv, sizeof hv), 1);
  assert_non_null(strstr(body, "\"requestId\":\"00000000-0000-4000-8000-0000000000aa\""));
  assert_non_null(strstr(body, "\"correlationId\":\"00000000-0000-4000-8000-0000000000bb\""));
  assert_non_null(strstr(body, "\"messageType\":[\"urn:message:Ctxd.Tests.v1:Pong\"]"));
  assert_non_null(strstr(body, "\"message\":{\"pong\":true}"));
}

/* Every log line is a JSON object; a message's lines carry its ids and trace context, and
 * what its handler publishes continues the same W3C trace. */
static void logs_are_json_and_trace_is_carried(void **state) {
  ctxt_world_t *w = *state;
  const char *trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  ctxt_host_start(w, NULL);
  char body[1024];
  for (int i = 0; i < 2; i++) {
    snprintf(body, sizeof body,
             "{\"messageId\":\"00000000-0000-4000-8000-00000000004%d\","
             "\"correlationId\":\"00000000-0000-4000-8000-0000000000cc\","
             "\"headers\":{\"traceparent\":\"%s\"},"
             "\"messageType\":[\"urn:message:%s\"],\"message\":{\"action\":\"%s\"}}",
             i, trace, w->type, i == 0 ? "publish" : "fail");
    ctxt_amqp_publish(w->amqp, w->type, "application/vnd.masstransit+json", body, NULL, NULL);
  }
  assert_int_equal(ctxt_pg_wait_long(w->pg, "SELECT count(*) FROM ctxd.outbox_archive", 2, CTXT_EFFECT_MS),
                   2);
  char q[128];
  snprintf(q, sizeof q, "%s_error", w->endpoint);
  assert_int_equal(ctxt_amqp_wait_count(w->amqp, q, 1, CTXT_EFFECT_MS), 1);
  ctxt_host_stop(w, SIGTERM);

  /* same trace id and flags, a new parent id */
  PGresult *r = PQexec(w->pg, "SELECT body::json->'headers'->>'traceparent' FROM ctxd.outbox_archive "
                              "WHERE message_type NOT LIKE 'MassTransit:Fault%'");
  assert_int_equal(PQntuples(r), 1);
  const char *out = PQgetvalue(r, 0, 0);
  assert_int_equal(strlen(out), 55);
  assert_memory_equal(out, trace, 36);
  assert_string_equal(out + 52, "-01");
  assert_memory_not_equal(out + 36, trace + 36, 16);
  PQclear(r);

  int lines = 0, traced = 0;
  for (char *line = strtok(w->host.out, "\n"); line != NULL; line = strtok(NULL, "\n")) {
    json_error_t e;
    json_t *j = json_loads(line, 0, &e);
    if (j == NULL) fail_msg("log line is not JSON: %s", line);
    assert_non_null(json_string_value(json_object_get(j, "time")));
    assert_non_null(json_string_value(json_object_get(j, "level")));
    const char *tp = json_string_value(json_object_get(j, "traceparent"));
    if (tp != NULL) {
      assert_string_equal(tp, trace);
      assert_string_equal(json_string_value(json_object_get(j, "correlation_id")),
                          "00000000-0000-4000-8000-0000000000cc");
      traced++;
    }
    lines++;
    json_decref(j);
  }
  assert_true(lines >= 4);
  assert_true(traced >= 1); /* the failing handler's line */
}

/* `ctxd migrate` applies the runtime's and the plugins' migrations and exits. */
static void migrate_command_applies_everything(void **state) {
  ctxt_world_t *w = *state;
  ctxt_world_write_config(w);
  char *argv[] = {(char *)ctxt_ctxd_path(), "migrate", "--config", w->config, NULL};
  char *env[] = {w->db_env, NULL};
  ctxt_proc_spawn(&w->host, argv, env);
  assert_true(ctxt_proc_wait_exit(&w->host, 30000));
  assert_true(WIFEXITED(w->host.status));
  assert_int_equal(WEXITSTATUS(w->host.status), 0);
  w->pg = ctxt_pg_connect(w->db);
  long runtime = 0; /* every runtime migration this build knows, whatever their number */
  while (ctxd__runtime_migrations[runtime].sql != NULL) runtime++;
  assert_true(runtime >= 8);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(*) FROM ctxd.migrations WHERE scope = 'ctxd'"), runtime);
  /* migration 5 dropped the column nothing read */
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(*) FROM information_schema.columns WHERE table_schema = "
                                       "'ctxd' AND table_name = 'outbox' AND column_name = 'xid'"),
                   0);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(*) FROM ctxd.migrations WHERE scope = 'testkit'"), 3);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(*) FROM testkit.effects"), 0);
}

/* An applied migration that changed stops the host with a clear error, exit code 1. */
static void changed_migration_stops_the_host(void **state) {
  ctxt_world_t *w = *state;
  ctxt_host_start(w, NULL);
  ctxt_host_stop(w, SIGTERM);
  PGresult *r = PQexec(w->pg, "UPDATE ctxd.migrations SET checksum = 'feedfacefeedface' "
                              "WHERE scope = 'testkit' AND version = 1");
  assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
  PQclear(r);
  ctxt_host_start_fails(w);
  assert_non_null(
      strstr(w->host.out, "migrations of 'testkit': v1 (effects) was changed after it was applied"));
}

/* An admin port already taken: the host says why and exits without consuming, so
 * nothing it cannot report on is ever taken from the queue. */
static void admin_port_in_use_stops_before_consuming(void **state) {
  ctxt_world_t *w = *state;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof sa;
  assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
  assert_int_equal(listen(fd, 1), 0);
  assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
  snprintf(w->host_settings, sizeof w->host_settings, ", \"admin\": {\"listen\": \"127.0.0.1:%d\"}",
           ntohs(sa.sin_port));
  ctxt_host_start_fails(w);
  close(fd);
  assert_non_null(strstr(w->host.out, "admin: cannot listen on 127.0.0.1:"));
  assert_null(strstr(w->host.out, "\"ready:"));
  assert_null(strstr(w->host.out, "\"broker "));
}

/* Two hosts of one context on one broker and database share the work as competing
 * consumers; every message takes effect once. */
static void competing_hosts_share_the_work(void **state) {
  ctxt_world_t *w = *state;
  const int n = 400;
  ctxt_host_start(w, NULL);
  ctxt_peer_start(w, NULL);
  char id[37];
  for (int i = 0; i < n; i++) {
    ctxt_make_id(id, 9000 + i);
    ctxt_publish(w, id, "{\"action\":\"ok\",\"sleep_ms\":1}");
  }
  assert_int_equal(ctxt_wait_effects(w, NULL, n), n);
  ctxt_peer_stop(w, SIGTERM);
  ctxt_host_stop(w, SIGTERM);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(DISTINCT message_id) FROM testkit.effects"), n);
  /* both took a share */
  assert_null(strstr(w->host.out, "\"handled 0,"));
  assert_null(strstr(w->peer.out, "\"handled 0,"));
}

/* Streams messages while `which` server restarts: consumption resumes and every message
 * takes effect exactly once. */
static void restart_under_load(ctxt_world_t *w, const char *which, int base) {
  const int n = 200;
  ctxt_host_start(w, NULL);
  char id[37];
  for (int i = 0; i < n; i++) {
    ctxt_make_id(id, base + i);
    ctxt_publish(w, id, "{\"action\":\"ok\",\"sleep_ms\":2}");
  }
  ctxt_pg_wait_long(w->pg, "SELECT least(count(*), 10) FROM testkit.effects", 10, CTXT_EFFECT_MS);
  /* the test's own connections do not survive the restart either */
  ctxt_amqp_close(w->amqp);
  PQfinish(w->pg);
  ctxt_restart(which);
  w->amqp = ctxt_amqp_connect();
  w->pg = ctxt_pg_connect(w->db);
  for (int i = 0; i < n; i++) {
    ctxt_make_id(id, base + n + i);
    ctxt_publish(w, id, "{\"action\":\"ok\"}");
  }
  assert_int_equal(ctxt_wait_effects(w, NULL, 2 * n), 2 * n);
  assert_int_equal(ctxt_amqp_wait_count(w->amqp, w->endpoint, 0, CTXT_EFFECT_MS), 0);
  ctxt_host_stop(w, SIGTERM);
  assert_int_equal(ctxt_effects(w, NULL), 2 * n);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(DISTINCT message_id) FROM testkit.effects"), 2 * n);
}

static void broker_restart_resumes_with_exact_counts(void **state) {
  ctxt_world_t *w = *state;
  restart_under_load(w, "broker", 5000);
  assert_non_null(strstr(w->host.out, "consuming again"));
}

/* Workers reconnect and run their batches again; the inbox keeps every effect single. */
static void database_restart_resumes_with_exact_counts(void **state) {
  restart_under_load(*state, "db", 7000);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(ready_and_clean_exit, ctxt_world_setup, ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(handled_once_and_deduplicated, ctxt_world_setup, ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(bad_input_lands_where_an_operator_sees_it, ctxt_world_setup,
                                      ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(kill9_after_commit_is_not_applied_twice, ctxt_world_setup,
                                      ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(sigterm_with_messages_in_flight_loses_nothing, ctxt_world_setup,
                                      ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(handler_publish_is_transactional, ctxt_world_setup,
                                      ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(request_gets_response_at_its_address, ctxt_world_setup,
                                      ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(logs_are_json_and_trace_is_carried, ctxt_world_setup,
                                      ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(migrate_command_applies_everything, ctxt_world_setup,
                                      ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(changed_migration_stops_the_host, ctxt_world_setup,
                                      ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(admin_port_in_use_stops_before_consuming, ctxt_world_setup,
                                      ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(competing_hosts_share_the_work, ctxt_world_setup, ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(broker_restart_resumes_with_exact_counts, ctxt_world_setup,
                                      ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(database_restart_resumes_with_exact_counts, ctxt_world_setup,
                                      ctxt_world_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
