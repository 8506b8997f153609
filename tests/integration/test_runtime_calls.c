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

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

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

/* The relay's part of the lateness of the n scheduled messages that arrived, on the
 * database's clock: when each row entered the outbox minus when it was due (or `since`,
 * Unix ms, when that is later: a host was down meanwhile). Waits for the n to be archived. */
static long relay_lateness(ctxt_world_t *w, long n, int64_t since) {
  static const char *join = "FROM ctxd.outbox_archive a JOIN runtimekit.scheduled s ON a.message_id = s.id "
                            "JOIN runtimekit.effects e ON e.action = 'arrived' AND e.tag = s.tag";
  char sql[512];
  snprintf(sql, sizeof sql, "SELECT count(*) %s", join);
  assert_int_equal(ctxt_pg_wait_long(w->pg, sql, n, CTXT_EFFECT_MS), n);
  snprintf(sql, sizeof sql,
           "SELECT max(round(extract(epoch FROM a.created_at) * 1000) - greatest(e.due_ms, %lld)) %s",
           (long long)since, join);
  return ctxt_pg_long(w->pg, sql);
}

/* The same end to end (from due, or since, until the handler ran), on the host's clock. */
static long arrival_lateness(ctxt_world_t *w, int64_t since) {
  char sql[256];
  snprintf(sql, sizeof sql,
           "SELECT max(at_ms - greatest(due_ms, %lld)) FROM runtimekit.effects WHERE action = 'arrived'",
           (long long)since);
  return ctxt_pg_long(w->pg, sql);
}

static void send_action(ctxt_world_t *w, const char *message) {
  char id[37];
  ctxt_make_id(id, ++seq);
  ctxt_publish(w, id, message);
}

/* ---- scheduled messages -------------------------------------------------------------- */

/* Two messages scheduled 6 s ahead and a third cancelled survive a stop and a start of the
 * host: the two arrive, the relay's part of their lateness within a tick of the host's
 * start (they may fall due while it is down), the cancelled one never (it was due at the
 * same time, so it would have moved in the same statement). */
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
  int64_t started = ctxt_now_ms();
  assert_int_equal(wait_effects(w, "action = 'arrived'", 2), 2);
  assert_int_equal(effects(w, "action = 'arrived' AND tag IN ('a', 'c')"), 2);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(*) FROM ctxd.scheduled"), 0);
  long relay = relay_lateness(w, 2, started), late = arrival_lateness(w, started);
  print_message("lateness after a restart: relay %ld ms, arrival %ld ms (tick %d ms)\n", relay, late,
                SWEEP_INTERVAL_MS);
  assert_true(relay < SWEEP_INTERVAL_MS);
  assert_true(late < SWEEP_INTERVAL_MS + 2000);
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

/* A message scheduled through one host, which then dies (kill -9), leaves through another
 * host's relay on time: any relay moves due rows. */
static void scheduled_leaves_through_another_host(void **state) {
  ctxt_world_t *w = *state;
  setup_kit(w, "");
  ctxt_host_start(w, NULL);
  send_action(w, "{\"action\": \"schedule\", \"tag\": \"f\", \"delay_ms\": 4000}");
  assert_int_equal(wait_effects(w, "action = 'scheduled'", 1), 1);
  ctxt_peer_start(w, NULL);
  ctxt_proc_signal(&w->host, SIGKILL);
  assert_true(ctxt_proc_wait_exit(&w->host, CTXT_EFFECT_MS));
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(*) FROM ctxd.scheduled"), 1);
  assert_int_equal(wait_effects(w, "action = 'arrived' AND tag = 'f'", 1), 1);
  long relay = relay_lateness(w, 1, 0), late = arrival_lateness(w, 0);
  print_message("lateness through the other host: relay %ld ms, arrival %ld ms\n", relay, late);
  assert_true(relay >= 0 && relay < SWEEP_INTERVAL_MS);
  assert_true(late >= 0 && late < SWEEP_INTERVAL_MS + 2000);
  ctxt_peer_stop(w, SIGTERM);
}

/* Messages due within the current tick (scheduled for now, at_ms 0 included, and up to
 * 600 ms ahead, by a handler, at whatever point of the relay's tick): the worker that
 * committed them wakes its host's relay for the earliest, so they leave well within a tick,
 * not at the next one (the bound for a message another host scheduled). Three rounds, each
 * after the last arrived, land at other points of the tick. A time out of range is refused. */
static void due_soon_leaves_well_within_a_tick(void **state) {
  ctxt_world_t *w = *state;
  setup_kit(w, "");
  ctxt_host_start(w, NULL);
  for (int round = 1; round <= 3; round++) {
    char m[128];
    for (int i = 0; i < 6; i++) {
      snprintf(m, sizeof m, "{\"action\": \"schedule\", \"tag\": \"r%d-%d\", \"delay_ms\": %d}", round, i,
               (i % 3) * 300);
      send_action(w, m);
    }
    snprintf(m, sizeof m, "{\"action\": \"schedule\", \"tag\": \"r%d-zero\", \"at_ms\": 0}", round);
    send_action(w, m);
    assert_int_equal(wait_effects(w, "action = 'arrived'", round * 7), round * 7);
  }
  long relay = relay_lateness(w, 21, 0), late = arrival_lateness(w, 0);
  print_message("lateness of messages due within a tick: relay %ld ms, arrival %ld ms (tick %d ms)\n", relay,
                late, SWEEP_INTERVAL_MS);
  assert_true(relay < SWEEP_INTERVAL_MS / 2);
  assert_true(late >= 0 && late < SWEEP_INTERVAL_MS + 2000);
  /* before 1970, after 9999, or expiring after 9999: refused in the handler's transaction */
  send_action(w, "{\"action\": \"schedule\", \"tag\": \"neg\", \"at_ms\": -1}");
  send_action(w, "{\"action\": \"schedule\", \"tag\": \"far\", \"at_ms\": 253402300800000}");
  send_action(w, "{\"action\": \"schedule\", \"tag\": \"huge\", \"at_ms\": 9223372036854775807}");
  assert_int_equal(wait_effects(w, "action = 'schedule:CTXD_EINVAL'", 3), 3);
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
  /* both recorded before anything is counted */
  assert_int_equal(wait_effects(w, "action = 'called' AND tag = 'k1'", 2), 2);
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

/* The outcome body's Outcome.Version for key ("" for version 1.0.0, which sets none). */
static const char *outcome_version(ctxt_world_t *w, const char *key, char *buf, size_t len) {
  json_t *o = outcome(w, key);
  assert_non_null(o);
  assert_string_equal(json_string_value(json_object_get(o, "Status")), "done");
  const char *v = json_string_value(json_object_get(json_object_get(o, "Outcome"), "Version"));
  snprintf(buf, len, "%s", v != NULL ? v : "");
  json_decref(o);
  return buf;
}

/* A plugin replaced (SIGHUP) while its executor holds a call for 3 s: the host keeps
 * serving meanwhile (/healthz answers at once: the loop never waits for the executor), the
 * old version's run finishes and reports, and the new version's executor runs the calls
 * recorded after the swap (its outcomes carry Version 2.0.0). */
static void call_runs_after_the_plugin_is_replaced(void **state) {
  ctxt_world_t *w = *state;
  char dir[] = "/tmp/ctxd-plugins-XXXXXX", cmd[128], v[32], body[64];
  assert_non_null(mkdtemp(dir));
  snprintf(w->plugin_dir, sizeof w->plugin_dir, "%s", dir);
  ctxt_plugin_install_as(dir, "ctxd_runtimekit.so", "ctxd_runtimekit.so");
  setup_kit(w, "");
  ctxt_host_start(w, NULL);
  send_action(w, "{\"action\": \"call\", \"key\": \"before\", \"payload\": {}}");
  assert_int_equal(wait_effects(w, "action = 'outcome' AND tag = 'before'", 1), 1);
  assert_string_equal(outcome_version(w, "before", v, sizeof v), "");

  send_action(w, "{\"action\": \"call\", \"key\": \"held\", \"payload\": {\"hold_ms\": 3000}}");
  assert_true(ctxt_proc_wait_output(&w->host, "fake.sms key held accepted; holding", CTXT_EFFECT_MS));
  ctxt_plugin_install_as(dir, "ctxd_runtimekit_v2.so", "ctxd_runtimekit.so");
  ctxt_proc_signal(&w->host, SIGHUP);
  assert_true(ctxt_proc_wait_output(&w->host, "draining its endpoints", CTXT_EFFECT_MS));
  int64_t t0 = ctxt_now_ms();
  assert_int_equal(ctxt_http_get(w->admin_port, "/healthz", body, sizeof body), 200);
  long took = (long)(ctxt_now_ms() - t0);
  print_message("/healthz during the replacement: %ld ms\n", took);
  assert_true(took < 1000);
  assert_int_equal(effects(w, "action = 'outcome' AND tag = 'held'"), 0); /* still held */
  assert_true(
      ctxt_proc_wait_output(&w->host, "replaced plugin 'runtimekit' 1.0.0 with 2.0.0", CTXT_EFFECT_MS));
  assert_int_equal(wait_effects(w, "action = 'outcome' AND tag = 'held'", 1), 1);
  assert_string_equal(outcome_version(w, "held", v, sizeof v), "");

  send_action(w, "{\"action\": \"call\", \"key\": \"after\", \"payload\": {}}");
  assert_int_equal(wait_effects(w, "action = 'outcome' AND tag = 'after'", 1), 1);
  assert_string_equal(outcome_version(w, "after", v, sizeof v), "2.0.0");
  ctxt_host_stop(w, SIGTERM);
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  assert_int_equal(system(cmd), 0);
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

  /* an outcome that breaks CallCompleted's contract: failed with the host's own outcome,
   * once, instead of being run again for ever */
  send_action(w, "{\"action\": \"call\", \"key\": \"rejected\", \"payload\": {\"bad_outcome\": true}}");
  assert_int_equal(wait_effects(w, "action = 'outcome' AND tag = 'rejected'", 1), 1);
  o = outcome(w, "rejected");
  assert_string_equal(json_string_value(json_object_get(o, "Status")), "failed");
  const char *error = json_string_value(json_object_get(json_object_get(o, "Outcome"), "Error"));
  assert_non_null(error);
  assert_true(strncmp(error, "outcome rejected: ", 18) == 0);
  json_decref(o);

  /* a key longer than CallCompleted's IdempotencyKey allows (255 bytes) is refused */
  char m[512], key[300];
  memset(key, 'x', 256);
  key[256] = '\0';
  snprintf(m, sizeof m, "{\"action\": \"call\", \"key\": \"%s\", \"payload\": {}}", key);
  send_action(w, m);
  assert_int_equal(wait_effects(w, "action = 'call:CTXD_EINVAL'", 1), 1);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(*) FROM ctxd.calls WHERE length(idempotency_key) > 255"),
                   0);
  ctxt_host_stop(w, SIGTERM);
}

/* The host is killed -9 after the provider accepted the call and before its outcome
 * committed: once the claim ends, the restarted host runs it again with the same key, even
 * with max_attempts 1 (a run lost with its host is no failure). The provider saw the key
 * twice and kept one message; one CallCompleted "done" was handled. */
static void call_host_killed_before_outcome(void **state) {
  ctxt_world_t *w = *state;
  setup_kit(w, ", \"max_attempts\": 1");
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

/* ---- the fake provider's HTTP parsing -------------------------------------------------- */

/* A connection to the fake provider. */
static int provider_connect(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)provider_port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  struct timeval tv = {5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
  return fd;
}

/* Sends part; then a whole request on another connection is answered, so the provider's
 * single-threaded loop has read what was sent before (part arrives as its own fragment). */
static void send_fragment(int fd, const char *part) {
  assert_int_equal(send(fd, part, strlen(part), MSG_NOSIGNAL), (ssize_t)strlen(part));
  json_decref(ctxt_fakeprovider_list(provider_port));
}

/* The status of the answer on fd (then closed). */
static int answer_status(int fd) {
  char buf[1024];
  ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
  close(fd);
  int status = -1;
  if (n > 0) {
    buf[n] = '\0';
    sscanf(buf, "HTTP/1.1 %d", &status);
  }
  return status;
}

/* A header name and a key split across reads are put together; a key longer than the
 * provider keeps is refused (431), not cut (two keys sharing their first 255 bytes would
 * be one message); a body that is not UTF-8 is refused (400). */
static void fakeprovider_reads_split_headers(void **state) {
  (void)state;
  int fd = provider_connect();
  send_fragment(fd, "POST /sms HTTP/1.1\r\nIdempot");
  send_fragment(fd, "ency-Key: split-");
  send_fragment(fd, "key\r\nContent-Length: 2\r\n\r\n{}");
  assert_int_equal(answer_status(fd), 200);
  json_t *list = ctxt_fakeprovider_list(provider_port);
  assert_non_null(provider_message(list, "split-key"));
  json_decref(list);

  char req[1024], key[301];
  memset(key, 'k', 300);
  key[300] = '\0';
  snprintf(req, sizeof req, "POST /sms HTTP/1.1\r\nIdempotency-Key: %.200s", key);
  fd = provider_connect();
  send_fragment(fd, req);
  snprintf(req, sizeof req, "%s\r\nContent-Length: 2\r\n\r\n{}", key + 200);
  send_fragment(fd, req);
  assert_int_equal(answer_status(fd), 431);

  fd = provider_connect();
  send_fragment(fd, "POST /sms HTTP/1.1\r\nIdempotency-Key: utf\r\nContent-Length: 2\r\n\r\n\xff\xfe");
  assert_int_equal(answer_status(fd), 400);
  list = ctxt_fakeprovider_list(provider_port);
  assert_int_equal(json_array_size(json_object_get(list, "messages")), 1);
  json_decref(list);
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
      cmocka_unit_test_setup_teardown(scheduled_leaves_through_another_host, setup, teardown),
      cmocka_unit_test_setup_teardown(due_soon_leaves_well_within_a_tick, setup, teardown),
      cmocka_unit_test_setup_teardown(saga_concurrent_updates_never_lose_one, setup, teardown),
      cmocka_unit_test_setup_teardown(saga_finished_is_seen_finished, setup, teardown),
      cmocka_unit_test_setup_teardown(call_retried_with_same_key_one_outcome, setup, teardown),
      cmocka_unit_test_setup_teardown(call_runs_after_the_plugin_is_replaced, setup, teardown),
      cmocka_unit_test_setup_teardown(call_fails_after_max_attempts, setup, teardown),
      cmocka_unit_test_setup_teardown(call_host_killed_before_outcome, setup, teardown),
      cmocka_unit_test_setup_teardown(fakeprovider_reads_split_headers, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
