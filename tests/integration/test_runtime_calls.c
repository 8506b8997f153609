/* ABI 1.2 against the real servers, through the runtimekit test plugin: scheduled messages
 * (across a restart, cancelled, lateness), process managers (no lost update under two
 * workers, finishing, cleanup), external calls (retries with the same key, exactly one
 * outcome, a host killed -9 after the provider accepted and before the outcome committed). */
#include "hostfixture.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#define SWEEP_INTERVAL_MS 1000

static int provider_port;
static ctxt_proc_t provider;

/* runtimekit alone on the world's endpoint (more settings: "" or starting with ", "). */
static void setup_kit(ctxt_world_t *w, const char *settings) {
  snprintf(w->plugins, sizeof w->plugins,
           "[{\"name\": \"runtimekit\", \"settings\": {\"endpoint\": \"%s\", \"message_type\": \"%s\", "
           "\"outcome_endpoint\": \"%s-out\", \"provider_port\": %d%s}}]",
           w->endpoint, w->type, w->endpoint, provider_port, settings);
  snprintf(w->host_settings, sizeof w->host_settings,
           ", \"outbox\": {\"sweep_interval_ms\": %d}, \"calls\": {\"poll_interval_ms\": 50}",
           SWEEP_INTERVAL_MS);
}

static long effects(ctxt_world_t *w, const char *where) {
  char sql[512];
  snprintf(sql, sizeof sql, "SELECT count(*) FROM runtimekit.effects WHERE %s", where);
  return ctxt_pg_long(w->pg, sql);
}

static long wait_effects(ctxt_world_t *w, const char *where, long want) {
  char sql[512];
  snprintf(sql, sizeof sql, "SELECT count(*) FROM runtimekit.effects WHERE %s", where);
  return ctxt_pg_wait_long(w->pg, sql, want, CTXT_EFFECT_MS);
}

static int seq;

static void send_action(ctxt_world_t *w, const char *message) {
  char id[37];
  ctxt_make_id(id, ++seq);
  ctxt_publish(w, id, message);
}

/* ---- scheduled messages -------------------------------------------------------------- */

/* Two messages scheduled 6 s ahead and a third cancelled survive a stop and a start of the
 * host: the two arrive, within the documented lateness (a relay tick), the cancelled one
 * never (it was due at the same time, so it would have moved in the same statement). */
static void scheduled_survive_restart_cancelled_never_arrive(void **state) {
  ctxt_world_t *w = *state;
  setup_kit(w, "");
  ctxt_host_start(w, NULL);
  send_action(w, "{\"action\": \"schedule\", \"tag\": \"a\", \"delay_ms\": 6000}");
  send_action(w, "{\"action\": \"schedule\", \"tag\": \"b\", \"delay_ms\": 6000}");
  send_action(w, "{\"action\": \"schedule\", \"tag\": \"c\", \"delay_ms\": 6000}");
  assert_int_equal(wait_effects(w, "action = 'scheduled'", 3), 3);
  send_action(w, "{\"action\": \"unschedule\", \"tag\": \"b\"}");
  assert_int_equal(wait_effects(w, "action = 'unscheduled' AND tag = 'b'", 1), 1);
  ctxt_host_stop(w, SIGTERM);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(*) FROM ctxd.scheduled"), 2);
  assert_int_equal(effects(w, "action = 'arrived'"), 0);

  ctxt_host_start(w, NULL);
  assert_int_equal(wait_effects(w, "action = 'arrived'", 2), 2);
  assert_int_equal(effects(w, "action = 'arrived' AND tag IN ('a', 'c')"), 2);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(*) FROM ctxd.scheduled"), 0);
  long late =
      ctxt_pg_long(w->pg, "SELECT max(at_ms - due_ms) FROM runtimekit.effects WHERE action = 'arrived'");
  print_message("lateness after a restart: %ld ms (tick %d ms)\n", late, SWEEP_INTERVAL_MS);
  assert_true(late >= 0 && late < SWEEP_INTERVAL_MS);
  /* the message id is the one schedule() returned */
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(*) FROM runtimekit.effects a JOIN runtimekit.effects s "
                                       "ON s.action = 'scheduled' AND a.action = 'arrived' AND s.tag = a.tag "
                                       "AND s.body = a.body"),
                   2);
  /* too late to cancel: it left */
  send_action(w, "{\"action\": \"unschedule\", \"tag\": \"a\"}");
  assert_int_equal(wait_effects(w, "action = 'unschedule:CTXD_ENOENT'", 1), 1);
  ctxt_host_stop(w, SIGTERM);
  assert_int_equal(effects(w, "action = 'arrived' AND tag = 'b'"), 0);
  assert_int_equal(ctxt_pg_long(w->pg,
                                "SELECT count(*) FROM ctxd.outbox_archive a JOIN runtimekit.scheduled s "
                                "ON a.message_id = s.id WHERE s.tag = 'b'"),
                   0);
}

/* Messages due within the current tick (scheduled for now and up to 600 ms ahead, by a
 * handler, at whatever point of the relay's tick) leave at that tick or the next one:
 * at most a tick late. Three rounds, each after the last arrived, land at other points of
 * the tick. */
static void due_soon_waits_at_most_a_tick(void **state) {
  ctxt_world_t *w = *state;
  setup_kit(w, "");
  ctxt_host_start(w, NULL);
  for (int round = 1; round <= 3; round++) {
    for (int i = 0; i < 6; i++) {
      char m[128];
      snprintf(m, sizeof m, "{\"action\": \"schedule\", \"tag\": \"r%d-%d\", \"delay_ms\": %d}", round, i,
               (i % 3) * 300);
      send_action(w, m);
    }
    assert_int_equal(wait_effects(w, "action = 'arrived'", round * 6), round * 6);
  }
  long late =
      ctxt_pg_long(w->pg, "SELECT max(at_ms - due_ms) FROM runtimekit.effects WHERE action = 'arrived'");
  print_message("lateness of messages due within a tick: at most %ld ms (tick %d ms)\n", late,
                SWEEP_INTERVAL_MS);
  assert_true(late >= 0 && late < SWEEP_INTERVAL_MS + 300);
  ctxt_host_stop(w, SIGTERM);
}

/* ---- process managers ---------------------------------------------------------------- */

/* 40 increments of one instance by two workers, one message per transaction, each
 * sleeping between load and save: the row lock serialises them, none is lost. A finished
 * instance is seen as finished, then deleted after sagas.retention_s. */
static void saga_concurrent_updates_never_lose_one(void **state) {
  ctxt_world_t *w = *state;
  setup_kit(w, "");
  snprintf(w->endpoint_settings, sizeof w->endpoint_settings, "\"workers\": 2, \"batch_size\": 1");
  size_t n = strlen(w->host_settings);
  snprintf(w->host_settings + n, sizeof w->host_settings - n,
           ", \"sagas\": {\"retention_s\": 1}, \"cleanup_interval_s\": 1");
  ctxt_host_start(w, NULL);
  for (int i = 0; i < 40; i++) send_action(w, "{\"action\": \"saga\", \"key\": \"k\", \"sleep_ms\": 20}");
  assert_int_equal(wait_effects(w, "action = 'saga'", 40), 40);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT (state->>'count')::int FROM ctxd.sagas WHERE saga = 'counter' "
                                       "AND key = 'k'"),
                   40);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT version FROM ctxd.sagas WHERE key = 'k'"), 40);
  /* each handler saw the previous one's count: 40 different states were saved */
  assert_int_equal(
      ctxt_pg_long(w->pg, "SELECT count(DISTINCT body) FROM runtimekit.effects WHERE action = 'saga'"), 40);

  send_action(w, "{\"action\": \"saga_finish\", \"key\": \"k\"}");
  assert_int_equal(wait_effects(w, "action = 'saga-finish'", 1), 1);
  /* a finished instance is deleted after its retention */
  assert_int_equal(ctxt_pg_wait_long(w->pg, "SELECT count(*) FROM ctxd.sagas", 0, CTXT_EFFECT_MS), 0);
  ctxt_host_stop(w, SIGTERM);
}

/* A message for a finished instance sees it finished (retention long enough). */
static void saga_finished_is_seen_finished(void **state) {
  ctxt_world_t *w = *state;
  setup_kit(w, "");
  ctxt_host_start(w, NULL);
  send_action(w, "{\"action\": \"saga\", \"key\": \"f\"}");
  assert_int_equal(wait_effects(w, "action = 'saga'", 1), 1);
  send_action(w, "{\"action\": \"saga_finish\", \"key\": \"f\"}");
  assert_int_equal(wait_effects(w, "action = 'saga-finish'", 1), 1);
  send_action(w, "{\"action\": \"saga\", \"key\": \"f\"}");
  assert_int_equal(wait_effects(w, "action = 'saga-finished'", 1), 1);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT (state->>'count')::int FROM ctxd.sagas WHERE key = 'f'"), 1);
  ctxt_host_stop(w, SIGTERM);
}

/* ---- external calls ------------------------------------------------------------------ */

static json_t *provider_message(json_t *list, const char *key) {
  size_t i;
  json_t *m;
  json_array_foreach(json_object_get(list, "messages"), i, m) {
    if (strcmp(json_string_value(json_object_get(m, "key")), key) == 0) return m;
  }
  return NULL;
}

/* The CallCompleted body recorded for key, as JSON (new), or NULL. */
static json_t *outcome(ctxt_world_t *w, const char *key) {
  char sql[256];
  snprintf(sql, sizeof sql, "SELECT body FROM runtimekit.effects WHERE action = 'outcome' AND tag = '%s'",
           key);
  PGresult *r = PQexec(w->pg, sql);
  json_t *j = PQntuples(r) == 1 ? json_loads(PQgetvalue(r, 0, 0), 0, NULL) : NULL;
  PQclear(r);
  return j;
}

/* The provider fails twice (500), then accepts: three attempts with one key, one message at
 * the provider, one CallCompleted "done". The same call recorded twice is one call. A call
 * whose answer is lost (accepted, connection dropped) and one held past the time-out are
 * run again with their key, and the provider keeps one message each. */
static void call_retried_with_same_key_one_outcome(void **state) {
  ctxt_world_t *w = *state;
  setup_kit(w, "");
  ctxt_host_start(w, NULL);
  ctxt_fakeprovider_control(provider_port, "fail", 2);
  send_action(w, "{\"action\": \"call\", \"key\": \"k1\", \"payload\": {\"text\": \"hello\"}}");
  send_action(w, "{\"action\": \"call\", \"key\": \"k1\", \"payload\": {\"text\": \"hello\"}}");
  assert_int_equal(wait_effects(w, "action = 'outcome'", 1), 1);
  json_t *o = outcome(w, "k1");
  assert_non_null(o);
  assert_string_equal(json_string_value(json_object_get(o, "Status")), "done");
  assert_int_equal(json_integer_value(json_object_get(o, "Attempts")), 3);
  assert_string_equal(json_string_value(json_object_get(json_object_get(o, "Outcome"), "ProviderId")),
                      "sms-1");
  json_decref(o);
  json_t *list = ctxt_fakeprovider_list(provider_port);
  assert_int_equal(json_integer_value(json_object_get(list, "requests")), 3);
  json_t *m = provider_message(list, "k1");
  assert_non_null(m);
  assert_int_equal(json_integer_value(json_object_get(m, "hits")), 1);
  assert_string_equal(json_string_value(json_object_get(m, "body")), "{\"text\":\"hello\"}");
  json_decref(list);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(*) FROM ctxd.calls"), 1);

  /* accepted, then the connection dropped: run again, the provider drops the copy */
  ctxt_fakeprovider_control(provider_port, "drop", 1);
  send_action(w, "{\"action\": \"call\", \"key\": \"k2\", \"payload\": {}}");
  assert_int_equal(wait_effects(w, "action = 'outcome' AND tag = 'k2'", 1), 1);
  /* held past the executor's time-out (2 s) */
  ctxt_fakeprovider_control(provider_port, "timeout", 1);
  send_action(w, "{\"action\": \"call\", \"key\": \"k3\", \"payload\": {}}");
  assert_int_equal(wait_effects(w, "action = 'outcome' AND tag = 'k3'", 1), 1);
  list = ctxt_fakeprovider_list(provider_port);
  assert_int_equal(json_integer_value(json_object_get(provider_message(list, "k2"), "hits")), 2);
  assert_int_equal(json_integer_value(json_object_get(provider_message(list, "k3"), "hits")), 1);
  json_decref(list);
  o = outcome(w, "k2");
  assert_int_equal(json_integer_value(json_object_get(o, "Attempts")), 2);
  json_decref(o);
  o = outcome(w, "k3");
  assert_int_equal(json_integer_value(json_object_get(o, "Attempts")), 2);
  json_decref(o);
  ctxt_host_stop(w, SIGTERM);
  assert_int_equal(effects(w, "action = 'outcome'"), 3);
}

/* A provider that always fails: max_attempts runs, then one CallCompleted "failed". */
static void call_fails_after_max_attempts(void **state) {
  ctxt_world_t *w = *state;
  setup_kit(w, ", \"max_attempts\": 3");
  ctxt_host_start(w, NULL);
  ctxt_fakeprovider_control(provider_port, "fail", 100);
  send_action(w, "{\"action\": \"call\", \"key\": \"bad\", \"payload\": {}}");
  assert_int_equal(wait_effects(w, "action = 'outcome'", 1), 1);
  ctxt_fakeprovider_control(provider_port, "ok", 1);
  json_t *o = outcome(w, "bad");
  assert_string_equal(json_string_value(json_object_get(o, "Status")), "failed");
  assert_int_equal(json_integer_value(json_object_get(o, "Attempts")), 3);
  assert_int_equal(json_integer_value(json_object_get(json_object_get(o, "Outcome"), "HttpStatus")), 500);
  json_decref(o);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(*) FROM ctxd.calls WHERE status = 'failed'"), 1);
  ctxt_host_stop(w, SIGTERM);
}

/* The host is killed -9 after the provider accepted the call and before its outcome
 * committed: once the claim ends, the restarted host runs it again with the same key. The
 * provider saw the key twice and kept one message; one CallCompleted was handled. */
static void call_host_killed_before_outcome(void **state) {
  ctxt_world_t *w = *state;
  setup_kit(w, "");
  ctxt_host_start(w, NULL);
  send_action(w, "{\"action\": \"call\", \"key\": \"crash\", \"payload\": {\"hold_ms\": 600000}}");
  assert_true(ctxt_proc_wait_output(&w->host, "fake.sms key crash accepted; holding", CTXT_EFFECT_MS));
  ctxt_proc_signal(&w->host, SIGKILL);
  assert_true(ctxt_proc_wait_exit(&w->host, CTXT_EFFECT_MS));
  assert_true(WIFSIGNALED(w->host.status));
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(*) FROM ctxd.calls WHERE status = 'pending'"), 1);

  ctxt_host_start(w, NULL);
  assert_int_equal(wait_effects(w, "action = 'outcome'", 1), 1);
  assert_int_equal(ctxt_pg_wait_long(w->pg, "SELECT count(*) FROM ctxd.outbox", 0, CTXT_EFFECT_MS), 0);
  char out[96];
  snprintf(out, sizeof out, "%s-out", w->endpoint);
  ctxt_wait_settled(w, out, 1); /* one CallCompleted delivered */
  ctxt_host_stop(w, SIGTERM);
  json_t *list = ctxt_fakeprovider_list(provider_port);
  json_t *m = provider_message(list, "crash");
  assert_non_null(m);
  assert_int_equal(json_integer_value(json_object_get(m, "hits")), 2);
  assert_int_equal(json_array_size(json_object_get(list, "messages")), 1);
  json_decref(list);
  assert_int_equal(effects(w, "action = 'outcome'"), 1);
  json_t *o = outcome(w, "crash");
  assert_string_equal(json_string_value(json_object_get(o, "Status")), "done");
  assert_int_equal(json_integer_value(json_object_get(o, "Attempts")), 2);
  json_decref(o);
}

static int setup(void **state) {
  provider_port = ctxt_fakeprovider_start(&provider);
  seq = 0;
  return ctxt_world_setup(state);
}

static int teardown(void **state) {
  ctxt_proc_signal(&provider, SIGTERM);
  ctxt_proc_wait_exit(&provider, 5000);
  ctxt_proc_free(&provider);
  return ctxt_world_teardown(state);
}

int main(void) {
  /* CTXT_TEST_FILTER=name runs one test (a mutation check, say) */
  if (getenv("CTXT_TEST_FILTER") != NULL) cmocka_set_test_filter(getenv("CTXT_TEST_FILTER"));
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(scheduled_survive_restart_cancelled_never_arrive, setup, teardown),
      cmocka_unit_test_setup_teardown(due_soon_waits_at_most_a_tick, setup, teardown),
      cmocka_unit_test_setup_teardown(saga_concurrent_updates_never_lose_one, setup, teardown),
      cmocka_unit_test_setup_teardown(saga_finished_is_seen_finished, setup, teardown),
      cmocka_unit_test_setup_teardown(call_retried_with_same_key_one_outcome, setup, teardown),
      cmocka_unit_test_setup_teardown(call_fails_after_max_attempts, setup, teardown),
      cmocka_unit_test_setup_teardown(call_host_killed_before_outcome, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
