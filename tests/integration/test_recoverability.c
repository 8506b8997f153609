/* The transactional outbox and recoverability against the real servers: crashes between
 * commit and confirm, immediate retries, delayed redelivery, _error with MassTransit's
 * fault headers, error replay, retention (poison messages: test_poison). */
#include "hostfixture.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

static void wait_killed(ctxt_world_t *w) {
  assert_true(ctxt_proc_wait_exit(&w->host, CTXT_EFFECT_MS));
  assert_true(WIFSIGNALED(w->host.status));
  assert_int_equal(WTERMSIG(w->host.status), SIGKILL);
}

/* An event published by a handler reaches its consumer exactly once in effect across two
 * crashes: after the commit and before publishing (only the sweep can send it), and after
 * the sweep published it and before the confirm (so it is sent twice). */
static void outbox_event_once_across_kill9(void **state) {
  ctxt_world_t *w = *state;
  char echo[96];
  snprintf(echo, sizeof echo, "%s-echo", w->endpoint);
  snprintf(w->plugin_settings, sizeof w->plugin_settings, ", \"echo_endpoint\": \"%s\"", echo);
  snprintf(w->host_settings, sizeof w->host_settings,
           ", \"outbox\": {\"sweep_grace_ms\": 500, \"sweep_interval_ms\": 100}");
  char id[37];
  ctxt_make_id(id, 1);

  ctxt_host_start(w, "CTXD_FAULT=after-commit");
  ctxt_publish(w, id, "{\"action\":\"publish\"}");
  wait_killed(w);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(*) FROM ctxd.outbox"), 1);
  assert_int_equal(ctxt_amqp_queue_count(w->amqp, echo), 0);

  /* the redelivered command is a duplicate; the sweep publishes the row, then the host dies */
  ctxt_host_start(w, "CTXD_FAULT=after-publish");
  wait_killed(w);
  assert_int_equal(ctxt_amqp_wait_count(w->amqp, echo, 1, CTXT_EFFECT_MS), 1);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(*) FROM ctxd.outbox"), 1);

  ctxt_host_start(w, NULL);
  assert_int_equal(ctxt_pg_wait_long(w->pg, "SELECT count(*) FROM ctxd.outbox", 0, CTXT_EFFECT_MS), 0);
  assert_int_equal(ctxt_pg_wait_long(w->pg, "SELECT count(*) FROM ctxd.inbox", 2, CTXT_EFFECT_MS), 2);
  assert_int_equal(ctxt_amqp_wait_count(w->amqp, echo, 0, CTXT_EFFECT_MS), 0);
  assert_int_equal(ctxt_amqp_wait_count(w->amqp, w->endpoint, 0, CTXT_EFFECT_MS), 0);
  ctxt_wait_settled(w, echo, 2);
  ctxt_host_stop(w, SIGTERM);
  assert_int_equal(ctxt_effects(w, "action = 'echoed'"), 1);
  assert_int_equal(ctxt_effects(w, "action = 'publish'"), 1);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(*) FROM ctxd.outbox_archive WHERE NOT unroutable"), 1);
  /* the copy sent twice met the echo endpoint's inbox */
  assert_non_null(strstr(w->host.out, "-echo\",\"msg\":\"handled 1, duplicates 1,"));
}

/* Declares what the backlog test publishes to: a queue `sink` and, bound to it, one
 * durable fanout exchange per row ("sink.1", "sink.2", ...), so that the host declares an
 * exchange for every row it publishes and the loop thread falls behind the sweeps. */
static void declare_sink(amqp_connection_state_t c, const char *sink, int exchanges) {
  amqp_queue_declare(c, 1, amqp_cstring_bytes(sink), 0, 1, 0, 0, amqp_empty_table);
  assert_int_equal(amqp_get_rpc_reply(c).reply_type, AMQP_RESPONSE_NORMAL);
  for (int i = 1; i <= exchanges; i++) {
    char name[128];
    snprintf(name, sizeof name, "%s.%d", sink, i);
    amqp_exchange_declare(c, 1, amqp_cstring_bytes(name), amqp_cstring_bytes("fanout"), 0, 1, 0, 0,
                          amqp_empty_table);
    amqp_queue_bind(c, 1, amqp_cstring_bytes(sink), amqp_cstring_bytes(name), amqp_empty_bytes,
                    amqp_empty_table);
    assert_int_equal(amqp_get_rpc_reply(c).reply_type, AMQP_RESPONSE_NORMAL);
  }
}

static void delete_sink(amqp_connection_state_t c, const char *sink, int exchanges) {
  for (int i = 1; i <= exchanges; i++) {
    char name[128];
    snprintf(name, sizeof name, "%s.%d", sink, i);
    amqp_exchange_delete(c, 1, amqp_cstring_bytes(name), 0);
  }
  amqp_queue_delete(c, 1, amqp_cstring_bytes(sink), 0, 0);
}

/* A backlog the sweep finds (rows whose lease ended, as a crash leaves them) goes out in
 * the order it was written, as the docs promise: sweep after sweep of 500 rows reaches the
 * loop thread first in, first out, even while several wait for it. */
static void swept_backlog_goes_out_in_order(void **state) {
  ctxt_world_t *w = *state;
  enum { ROWS = 3000 };
  ctxt_host_start(w, NULL); /* the schema */
  ctxt_host_stop(w, SIGTERM);
  char sink[96], sql[512];
  snprintf(sink, sizeof sink, "%s-backlog", w->endpoint);
  declare_sink(w->amqp, sink, ROWS);
  snprintf(sql, sizeof sql,
           "INSERT INTO ctxd.outbox (message_id, exchange, message_type, body, lease_until) "
           "SELECT md5(i::text)::uuid, '%s.' || i, '%s.' || i, 'n=' || i, now() - interval '1 minute' "
           "FROM generate_series(1, %d) i",
           sink, sink, ROWS);
  PQclear(PQexec(w->pg, sql));
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(*) FROM ctxd.outbox"), ROWS);

  ctxt_host_start(w, NULL);
  assert_int_equal(ctxt_pg_wait_long(w->pg, "SELECT count(*) FROM ctxd.outbox", 0, CTXT_EFFECT_MS), 0);
  assert_int_equal(ctxt_amqp_wait_count(w->amqp, sink, ROWS, CTXT_EFFECT_MS), ROWS);
  ctxt_host_stop(w, SIGTERM);
  char body[64], hv[8];
  long disorder = 0;
  for (long n = 1; n <= ROWS; n++) {
    assert_int_equal(ctxt_amqp_get(w->amqp, sink, body, sizeof body, NULL, hv, sizeof hv), 1);
    disorder += strtol(body + 2, NULL, 10) != n;
  }
  assert_int_equal(disorder, 0);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(*) FROM ctxd.outbox_archive"), ROWS);
  delete_sink(w->amqp, sink, ROWS);
}

/* What the handlers of one batch publish leaves in the order they wrote it: one worker
 * runs the waiting messages in batches, each message's event goes out after the event of
 * the message before it. */
static void batch_events_go_out_in_order(void **state) {
  ctxt_world_t *w = *state;
  enum { MESSAGES = 40 };
  snprintf(w->endpoint_settings, sizeof w->endpoint_settings, "\"workers\": 1, \"batch_size\": 16");
  ctxt_host_start(w, NULL); /* the queue and its bindings */
  ctxt_host_stop(w, SIGTERM);
  char sink[96], id[37];
  snprintf(sink, sizeof sink, "%s-events", w->endpoint);
  amqp_exchange_declare(w->amqp, 1, amqp_cstring_bytes(w->echo_type), amqp_cstring_bytes("fanout"), 0, 1, 0,
                        0, amqp_empty_table);
  amqp_queue_declare(w->amqp, 1, amqp_cstring_bytes(sink), 0, 1, 0, 0, amqp_empty_table);
  amqp_queue_bind(w->amqp, 1, amqp_cstring_bytes(sink), amqp_cstring_bytes(w->echo_type), amqp_empty_bytes,
                  amqp_empty_table);
  assert_int_equal(amqp_get_rpc_reply(w->amqp).reply_type, AMQP_RESPONSE_NORMAL);
  for (int i = 0; i < MESSAGES; i++) {
    ctxt_make_id(id, 100 + i);
    ctxt_publish(w, id, "{\"action\":\"publish\"}");
  }
  ctxt_host_start(w, NULL);
  assert_int_equal(ctxt_amqp_wait_count(w->amqp, sink, MESSAGES, CTXT_EFFECT_MS), MESSAGES);
  ctxt_host_stop(w, SIGTERM);
  char body[4096], hv[8];
  int disorder = 0;
  for (int i = 0; i < MESSAGES; i++) {
    assert_int_equal(ctxt_amqp_get(w->amqp, sink, body, sizeof body, NULL, hv, sizeof hv), 1);
    ctxt_make_id(id, 100 + i);
    /* a message without conversationId starts one under its own id */
    const char *conversation = strstr(body, "\"conversationId\":\"");
    assert_non_null(conversation);
    disorder += strncmp(conversation + strlen("\"conversationId\":\""), id, 36) != 0;
  }
  assert_int_equal(disorder, 0);
  amqp_queue_delete(w->amqp, 1, amqp_cstring_bytes(sink), 0, 0);
}

/* Fails twice, then succeeds: handled once, by the immediate retries in the worker. */
static void flaky_handler_is_handled_once(void **state) {
  ctxt_world_t *w = *state;
  snprintf(w->endpoint_settings, sizeof w->endpoint_settings,
           "\"immediate_retries\": 2, \"redelivery_ms\": \"\"");
  ctxt_host_start(w, NULL);
  char id[37];
  ctxt_make_id(id, 3);
  ctxt_publish(w, id, "{\"action\":\"flaky\"}");
  assert_int_equal(ctxt_wait_effects(w, NULL, 1), 1);
  assert_int_equal(ctxt_amqp_wait_count(w->amqp, w->endpoint, 0, CTXT_EFFECT_MS), 0);
  ctxt_host_stop(w, SIGTERM);
  assert_int_equal(ctxt_effects(w, NULL), 1);
  assert_non_null(strstr(w->host.out, "handled 1, duplicates 0, retried 1, redelivered 0"));
  char q[128];
  snprintf(q, sizeof q, "%s_error", w->endpoint);
  assert_int_equal(ctxt_amqp_queue_count(w->amqp, q), 0);
}

/* A message whose transaction cannot commit (a deferred constraint fails at COMMIT, every
 * time) stops neither its batch nor the endpoint: after a few attempts the batch's
 * messages run alone, the others commit, and it goes to _error with the database's
 * reason. */
static void message_that_cannot_commit_is_set_aside(void **state) {
  ctxt_world_t *w = *state;
  snprintf(w->endpoint_settings, sizeof w->endpoint_settings, "\"workers\": 1, \"redelivery_ms\": \"\"");
  /* the first run declares the queue; the next finds the three together: one batch */
  ctxt_host_start(w, NULL);
  ctxt_host_stop(w, SIGTERM);
  char id[37], q[128], hv[512];
  const char *actions[] = {"ok", "bad_commit", "ok"};
  for (int i = 0; i < 3; i++) {
    char message[64];
    snprintf(message, sizeof message, "{\"action\":\"%s\"}", actions[i]);
    ctxt_make_id(id, 40 + i);
    ctxt_publish(w, id, message);
  }
  ctxt_host_start(w, NULL);
  snprintf(q, sizeof q, "%s_error", w->endpoint);
  assert_int_equal(ctxt_amqp_wait_count(w->amqp, q, 1, CTXT_EFFECT_MS), 1);
  ctxt_wait_settled(w, w->endpoint, 3);
  assert_int_equal(ctxt_effects(w, NULL), 2);
  assert_int_equal(ctxt_metric(w, w->endpoint, "ctxd_messages_handled_total"), 2);
  assert_int_equal(ctxt_metric(w, w->endpoint, "ctxd_messages_error_total"), 1);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(*) FROM ctxd.inbox"), 2);
  assert_int_equal(ctxt_amqp_peek_header(w->amqp, q, "MT-Fault-ExceptionType", hv, sizeof hv), 1);
  assert_string_equal(hv, "ctxd.CommitFailed");
  assert_int_equal(ctxt_amqp_peek_header(w->amqp, q, "MT-Fault-Message", hv, sizeof hv), 1);
  assert_non_null(strstr(hv, "foreign key constraint"));
  /* the endpoint goes on */
  ctxt_make_id(id, 43);
  ctxt_publish(w, id, "{\"action\":\"ok\"}");
  assert_int_equal(ctxt_wait_effects(w, NULL, 3), 3);
  ctxt_host_stop(w, SIGTERM);
}

/* Always transient: immediate retries, then each delayed redelivery, then _error with
 * the counts and the handler's reason in MassTransit's fault headers. */
static void always_failing_ends_in_error_after_redeliveries(void **state) {
  ctxt_world_t *w = *state;
  snprintf(w->endpoint_settings, sizeof w->endpoint_settings,
           "\"immediate_retries\": 1, \"redelivery_ms\": \"200,400\"");
  ctxt_host_start(w, NULL);
  char id[37], q[128], body[4096], hv[512];
  ctxt_make_id(id, 4);
  ctxt_publish(w, id, "{\"action\":\"retry\"}");
  snprintf(q, sizeof q, "%s_error", w->endpoint);
  assert_int_equal(ctxt_amqp_wait_count(w->amqp, q, 1, CTXT_EFFECT_MS), 1);
  ctxt_host_stop(w, SIGTERM);
  assert_non_null(strstr(w->host.out, "retried 3, redelivered 2, requeued 0, to _error 1"));
  /* counts are integers on the wire, as MassTransit writes them */
  long n;
  assert_int_equal(ctxt_amqp_peek_header_int(w->amqp, q, "MT-Fault-RedeliveryCount", &n), 1);
  assert_int_equal(n, 2);
  assert_int_equal(ctxt_amqp_peek_header_int(w->amqp, q, "MT-Redelivery-Count", &n), 1);
  assert_int_equal(n, 2);
  assert_int_equal(ctxt_amqp_peek_header_int(w->amqp, q, "MT-Fault-RetryCount", &n), 1);
  assert_int_equal(n, 1);
  assert_int_equal(ctxt_amqp_peek_header(w->amqp, q, "MT-Fault-ExceptionType", hv, sizeof hv), 1);
  assert_string_equal(hv, "Testkit.Transient");
  assert_int_equal(ctxt_amqp_get(w->amqp, q, body, sizeof body, NULL, hv, sizeof hv), 1);
  assert_non_null(strstr(body, id));
  assert_int_equal(ctxt_effects(w, NULL), 0);
}

/* A redelivery count another publisher wrote in the envelope is only a hint: a negative
 * one counts as none (taken as it came, it indexed the intervals out of bounds), and the
 * count ctxd writes on the delay queue's copy comes before it (the envelope's, which ctxd
 * never rewrites, redelivered the message forever). So the message gets its one delayed
 * redelivery, then _error, and the endpoint goes on. */
static void foreign_redelivery_count_is_a_hint(void **state) {
  ctxt_world_t *w = *state;
  snprintf(w->endpoint_settings, sizeof w->endpoint_settings,
           "\"immediate_retries\": 0, \"redelivery_ms\": \"200\"");
  ctxt_host_start(w, NULL);
  char id[37], q[128], body[1024];
  ctxt_make_id(id, 7);
  snprintf(
      body, sizeof body,
      "{\"messageId\":\"%s\",\"messageType\":[\"urn:message:%s\"],\"headers\":{\"MT-Redelivery-Count\":-1},"
      "\"message\":{\"action\":\"retry\"}}",
      id, w->type);
  ctxt_amqp_publish(w->amqp, w->type, "application/vnd.masstransit+json", body, NULL, NULL);
  snprintf(q, sizeof q, "%s_error", w->endpoint);
  assert_int_equal(ctxt_amqp_wait_count(w->amqp, q, 1, CTXT_EFFECT_MS), 1);
  ctxt_publish(w, "00000000-0000-4000-8000-000000000008", "{\"action\":\"ok\"}");
  assert_int_equal(ctxt_wait_effects(w, NULL, 1), 1);
  ctxt_host_stop(w, SIGTERM);
  assert_non_null(strstr(w->host.out, "redelivered 1, requeued 0, to _error 1"));
  assert_null(strstr(w->host.out, "reconnecting"));
  long n = -1;
  assert_int_equal(ctxt_amqp_peek_header_int(w->amqp, q, "MT-Fault-RedeliveryCount", &n), 1);
  assert_int_equal(n, 1);
}

/* The exact fault headers of a message the handler refused. */
static void fault_headers(void **state) {
  ctxt_world_t *w = *state;
  ctxt_host_start(w, NULL);
  char id[37], q[128], body[4096], hv[512];
  ctxt_make_id(id, 5);
  ctxt_publish(w, id, "{\"action\":\"fail\"}");
  snprintf(q, sizeof q, "%s_error", w->endpoint);
  assert_int_equal(ctxt_amqp_wait_count(w->amqp, q, 1, CTXT_EFFECT_MS), 1);
  ctxt_host_stop(w, SIGTERM);
  static const char *const want[][2] = {
      {"MT-Reason", "fault"},
      {"MT-Fault-ExceptionType", "Testkit.Refused"},
      {"MT-Fault-Message", "the test asked for a failure"},
      {"MT-Host-ProcessName", "ctxd"},
  };
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
    assert_int_equal(ctxt_amqp_peek_header(w->amqp, q, want[i][0], hv, sizeof hv), 1);
    assert_string_equal(hv, want[i][1]);
  }
  assert_int_equal(ctxt_amqp_peek_header(w->amqp, q, "MT-Fault-Timestamp", hv, sizeof hv), 1);
  assert_int_equal(strlen(hv), strlen("2026-01-01T00:00:00.0000000Z")); /* .NET's "O" */
  /* integers; MassTransit leaves the retry count out when there were no retries */
  long n = -1;
  assert_int_equal(ctxt_amqp_peek_header_int(w->amqp, q, "MT-Fault-RedeliveryCount", &n), 1);
  assert_int_equal(n, 0);
  assert_int_equal(ctxt_amqp_peek_header_int(w->amqp, q, "MT-Redelivery-Count", &n), 1);
  assert_int_equal(n, 0);
  assert_int_equal(ctxt_amqp_peek_header_int(w->amqp, q, "MT-Fault-RetryCount", &n), 0);
  assert_int_equal(ctxt_amqp_peek_header(w->amqp, q, "MT-Fault-RetryCount", hv, sizeof hv), 1);
  assert_string_equal(hv, "");
  assert_int_equal(ctxt_amqp_get(w->amqp, q, body, sizeof body, NULL, hv, sizeof hv), 1);
  /* the original body, unchanged */
  assert_non_null(strstr(body, id));
  assert_non_null(strstr(body, "\"message\":{\"action\":\"fail\"}"));
}

/* Batches run pipelined: a queued statement that fails (when it runs, or when it is
 * prepared) costs only its own message; the rest of its batch, outbox rows included,
 * takes effect once, and the failed statement leaves no stale prepared statement. */
static void failing_statement_in_a_pipelined_batch(void **state) {
  ctxt_world_t *w = *state;
  snprintf(w->endpoint_settings, sizeof w->endpoint_settings,
           "\"workers\": 1, \"batch_size\": 64, \"immediate_retries\": 0, \"redelivery_ms\": \"\"");
  /* the first start declares the queue; the messages wait in it for the second */
  ctxt_host_start(w, NULL);
  ctxt_host_stop(w, SIGTERM);
  static const char *const actions[] = {"ok", "bad_value", "publish", "bad_sql", "ok", "bad_sql", "publish"};
  char id[37], q[128], body[4096], hv[512];
  int n = 0, bad = 0;
  for (int round = 0; round < 5; round++) {
    for (size_t a = 0; a < sizeof actions / sizeof actions[0]; a++, n++) {
      char msg[64];
      snprintf(msg, sizeof msg, "{\"action\":\"%s\"}", actions[a]);
      ctxt_make_id(id, 700 + n);
      ctxt_publish(w, id, msg);
      bad += strncmp(actions[a], "bad", 3) == 0;
    }
  }
  ctxt_host_start(w, NULL);
  snprintf(q, sizeof q, "%s_error", w->endpoint);
  assert_int_equal(ctxt_amqp_wait_count(w->amqp, q, bad, CTXT_EFFECT_MS), bad);
  assert_int_equal(ctxt_wait_effects(w, NULL, n - bad), n - bad);
  /* the outbox rows got their ids in the pipeline: confirmed rows leave the outbox long
   * before the sweep's lease (10 s by default) would resend them */
  assert_int_equal(ctxt_pg_wait_long(w->pg, "SELECT count(*) FROM ctxd.outbox", 0, 9000), 0);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(DISTINCT id) FROM ctxd.outbox_archive WHERE id > 0 "
                                       "AND message_type NOT LIKE 'MassTransit:Fault%'"),
                   10);
  /* and a Fault<T> per message set aside, published in the transaction that decided it */
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(DISTINCT id) FROM ctxd.outbox_archive "
                                       "WHERE message_type LIKE 'MassTransit:Fault[[%'"),
                   bad);
  ctxt_host_stop(w, SIGTERM);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(DISTINCT message_id) FROM testkit.effects"), n - bad);
  int values = 0, syntax = 0;
  while (ctxt_amqp_get(w->amqp, q, body, sizeof body, "MT-Fault-Message", hv, sizeof hv) == 1) {
    values += strstr(hv, "invalid input syntax for type uuid") != NULL;
    syntax += strstr(hv, "syntax error at end of input") != NULL;
  }
  assert_int_equal(values, 5);
  assert_int_equal(syntax, 10);
}

/* A side queue's exchange deleted under a running host (an operator in the management
 * UI): the copy is refused, the host reconnects, declares its topology again, and the
 * failed message still ends in _error, once. */
static void deleted_error_exchange_is_declared_again(void **state) {
  ctxt_world_t *w = *state;
  ctxt_host_start(w, NULL);
  char id[37], q[128];
  snprintf(q, sizeof q, "%s_error", w->endpoint);
  amqp_exchange_delete(w->amqp, 1, amqp_cstring_bytes(q), 0);
  assert_int_equal(amqp_get_rpc_reply(w->amqp).reply_type, AMQP_RESPONSE_NORMAL);
  ctxt_make_id(id, 21);
  ctxt_publish(w, id, "{\"action\":\"fail\"}");
  assert_int_equal(ctxt_amqp_wait_count(w->amqp, q, 1, CTXT_EFFECT_MS), 1);
  assert_true(ctxt_proc_wait_output(&w->host, "consuming again", CTXT_EFFECT_MS) ||
              strstr(w->host.out, "consuming again") != NULL);
  assert_non_null(strstr(w->host.out, "reconnecting to declare it"));
  ctxt_host_stop(w, SIGTERM);
  assert_int_equal(ctxt_amqp_queue_count(w->amqp, q), 1);
}

/* `ctxd errors replay` moves messages back to their queue (their fault headers kept, the
 * redelivery count reset: tests/interop/test_faults.c). */
static void error_replay_moves_messages_back(void **state) {
  ctxt_world_t *w = *state;
  ctxt_host_start(w, NULL);
  char id[37], q[128], body[4096], hv[512];
  for (int i = 0; i < 3; i++) {
    ctxt_make_id(id, 10 + i);
    ctxt_publish(w, id, "{\"action\":\"fail\"}");
  }
  snprintf(q, sizeof q, "%s_error", w->endpoint);
  assert_int_equal(ctxt_amqp_wait_count(w->amqp, q, 3, CTXT_EFFECT_MS), 3);
  ctxt_host_stop(w, SIGTERM);

  char *argv[] = {(char *)ctxt_ctxd_path(),
                  "errors",
                  "replay",
                  "--config",
                  w->config,
                  "--endpoint",
                  w->endpoint,
                  "--limit",
                  "2",
                  NULL};
  char *env[] = {w->db_env, NULL};
  ctxt_proc_t p;
  ctxt_proc_spawn(&p, argv, env);
  assert_true(ctxt_proc_wait_exit(&p, 30000));
  assert_true(WIFEXITED(p.status));
  assert_int_equal(WEXITSTATUS(p.status), 0);
  ctxt_proc_free(&p);
  assert_int_equal(ctxt_amqp_queue_count(w->amqp, q), 1);
  assert_int_equal(ctxt_amqp_queue_count(w->amqp, w->endpoint), 2);
  assert_int_equal(ctxt_amqp_get(w->amqp, w->endpoint, body, sizeof body, "MT-Reason", hv, sizeof hv), 1);
  assert_string_equal(hv, "fault");
  assert_non_null(strstr(body, "\"action\":\"fail\""));
}

/* Old inbox and archive rows are deleted by the cleanup; recent ones stay. */
static void retention_cleanup_deletes_expired_rows(void **state) {
  ctxt_world_t *w = *state;
  snprintf(w->host_settings, sizeof w->host_settings,
           ", \"cleanup_interval_s\": 1, \"inbox\": {\"retention_s\": 3600},"
           " \"outbox\": {\"archive_retention_s\": 3600}");
  ctxt_host_start(w, NULL);
  PGresult *r = PQexec(
      w->pg,
      "INSERT INTO ctxd.inbox (endpoint, message_id, received_at) "
      "SELECT 'old', gen_random_uuid(), now() - interval '2 days' FROM generate_series(1, 2500);"
      "INSERT INTO ctxd.outbox_archive (id, message_id, exchange, message_type, body, created_at, "
      "dispatched_at) "
      "VALUES (-1, gen_random_uuid(), 'x', 'x', '{}', now() - interval '2 days', now() - interval '2 days')");
  assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
  PQclear(r);
  char id[37];
  ctxt_make_id(id, 20);
  ctxt_publish(w, id, "{\"action\":\"ok\"}");
  assert_int_equal(
      ctxt_pg_wait_long(w->pg, "SELECT count(*) FROM ctxd.inbox WHERE endpoint = 'old'", 0, CTXT_EFFECT_MS),
      0);
  assert_int_equal(ctxt_pg_wait_long(w->pg, "SELECT count(*) FROM ctxd.outbox_archive", 0, CTXT_EFFECT_MS),
                   0);
  assert_int_equal(ctxt_wait_effects(w, NULL, 1), 1);
  ctxt_host_stop(w, SIGTERM);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(*) FROM ctxd.inbox"), 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(outbox_event_once_across_kill9, ctxt_world_setup, ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(swept_backlog_goes_out_in_order, ctxt_world_setup, ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(batch_events_go_out_in_order, ctxt_world_setup, ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(flaky_handler_is_handled_once, ctxt_world_setup, ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(message_that_cannot_commit_is_set_aside, ctxt_world_setup,
                                      ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(always_failing_ends_in_error_after_redeliveries, ctxt_world_setup,
                                      ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(foreign_redelivery_count_is_a_hint, ctxt_world_setup,
                                      ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(fault_headers, ctxt_world_setup, ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(failing_statement_in_a_pipelined_batch, ctxt_world_setup,
                                      ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(deleted_error_exchange_is_declared_again, ctxt_world_setup,
                                      ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(error_replay_moves_messages_back, ctxt_world_setup,
                                      ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(retention_cleanup_deletes_expired_rows, ctxt_world_setup,
                                      ctxt_world_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
