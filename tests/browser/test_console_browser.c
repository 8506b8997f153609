/* The operator console in a real headless Chromium against a real host on the private
 * stack: this driver starts the host (testkit plugin, failed-message store on), makes the
 * traffic and the failures, and runs one scenario of tests/browser/console.test.js at a
 * time (node, playwright-core, /usr/bin/chromium); it checks in the database what the
 * clicks did. Screenshots: <build>/browser/shots. */
#include "hostfixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#define TOKEN "browser-test-token"
#define SCENARIO_MS 240000
/* what the store and the admin endpoint need on top of the world's settings */
#define STORE ", \"errors\": {\"store\": true}"

/* Names a reader of the screenshots understands; the endpoint is unique per run, as the
 * broker outlives the test. */
static void console_world(ctxt_world_t *w, const char *token) {
  snprintf(w->endpoint, sizeof w->endpoint, "orders-%s", ctxt_unique());
  snprintf(w->type, sizeof w->type, "Shop.Orders.v1:PlaceOrder");
  snprintf(w->echo_type, sizeof w->echo_type, "Shop.Orders.v1:OrderPlaced");
  /* a failure goes to _error at once, so the store has it without waiting for redeliveries */
  snprintf(w->endpoint_settings, sizeof w->endpoint_settings,
           "\"workers\": 2, \"batch_size\": 16, \"immediate_retries\": 0, \"redelivery_ms\": \"\"");
  if (token != NULL)
    snprintf(w->host_settings, sizeof w->host_settings,
             ", \"admin\": {\"listen\": \"127.0.0.1:0\", \"token\": \"%s\"}" STORE, token);
  else
    snprintf(w->host_settings, sizeof w->host_settings, STORE);
}

static void publish_action(ctxt_world_t *w, int n, const char *action) {
  char id[37], body[64];
  ctxt_make_id(id, n);
  snprintf(body, sizeof body, "{\"action\":\"%s\"}", action);
  ctxt_publish(w, id, body);
}

/* Starts a scenario of console.test.js against the host's admin endpoint; args:
 * name=value entries, NULL-terminated. */
static void browser_start(ctxt_proc_t *p, ctxt_world_t *w, const char *scenario, const char *const *args) {
  char base[64], modules[512], shots[512];
  snprintf(base, sizeof base, "http://127.0.0.1:%d", w->admin_port);
  snprintf(modules, sizeof modules, "CTXD_BROWSER_MODULES=%s/browser/node_modules", CTXD_TEST_BINARY_DIR);
  snprintf(shots, sizeof shots, "CTXD_BROWSER_SHOTS=%s/browser/shots", CTXD_TEST_BINARY_DIR);
  char *argv[16] = {"/usr/bin/env", "node", CTXD_TEST_SOURCE_DIR "/tests/browser/console.test.js",
                    (char *)scenario, base};
  size_t n = 5;
  for (size_t i = 0; args[i] != NULL && n + 1 < sizeof argv / sizeof argv[0]; i++)
    argv[n++] = (char *)args[i];
  char *env[] = {modules, shots, NULL};
  ctxt_proc_spawn(p, argv, env);
}

/* Fails the test with the scenario's output unless it passed; frees p when it did. */
static void browser_passed(ctxt_proc_t *p, const char *scenario) {
  int ok = p->exited && WIFEXITED(p->status) && WEXITSTATUS(p->status) == 0;
  if (!ok) fail_msg("browser scenario %s failed:\n%s", scenario, p->out);
  ctxt_proc_free(p);
}

/* The browser's node process is the world's (w->more[0]): a failed test's teardown ends it. */
static void browser(ctxt_world_t *w, const char *scenario, const char *const *args) {
  ctxt_proc_t *p = &w->more[0];
  browser_start(p, w, scenario, args);
  if (!ctxt_proc_wait_exit(p, SCENARIO_MS))
    fail_msg("browser scenario %s did not end:\n%s", scenario, p->out);
  browser_passed(p, scenario);
}

/* The same while messages flow: one published between looks at the browser. */
static void browser_under_traffic(ctxt_world_t *w, const char *scenario, const char *const *args) {
  ctxt_proc_t *p = &w->more[0];
  browser_start(p, w, scenario, args);
  int64_t end = ctxt_now_ms() + SCENARIO_MS;
  for (int n = 1000; !ctxt_proc_wait_exit(p, 20); n++) {
    if (ctxt_now_ms() > end) fail_msg("browser scenario %s did not end:\n%s", scenario, p->out);
    publish_action(w, n, "publish");
  }
  browser_passed(p, scenario);
}

static long failed_rows(ctxt_world_t *w, const char *where, long want) {
  char sql[512];
  snprintf(sql, sizeof sql, "SELECT count(*) FROM ctxd.failed_messages WHERE %s", where);
  return ctxt_pg_wait_long(w->pg, sql, want, CTXT_EFFECT_MS);
}

/* With a token: every view loads without an error under traffic; the failed group opens
 * down to one message; a click on retry, once the cause is fixed, applies the message's
 * effect once and resolves it; archive hides a message and unarchive brings it back;
 * archiving a group of 1003 takes them all. */
static void console_with_token(void **state) {
  ctxt_world_t *w = *state;
  console_world(w, TOKEN);
  ctxt_host_start(w, NULL);
  char endpoint[80], plugin[] = "plugin=testkit";
  snprintf(endpoint, sizeof endpoint, "endpoint=%s", w->endpoint);
  /* ten samples of the rate: 20 s of traffic on the screenshot */
  const char *traffic[] = {endpoint, plugin, "samples=10", NULL};
  browser_under_traffic(w, "traffic", traffic);

  /* three messages whose commit fails (a row they refer to is missing) and two the
   * handler refuses: two groups */
  for (int n = 1; n <= 3; n++) publish_action(w, n, "bad_commit");
  for (int n = 4; n <= 5; n++) publish_action(w, n, "fail");
  assert_int_equal(failed_rows(w, "exception_type = 'ctxd.CommitFailed'", 3), 3);
  assert_int_equal(failed_rows(w, "exception_type = 'Testkit.Refused'", 2), 2);

  char first[37], fourth[37], message[60], archive_message[60];
  ctxt_make_id(first, 1);
  ctxt_make_id(fourth, 4);
  snprintf(message, sizeof message, "message=%s", first);
  snprintf(archive_message, sizeof archive_message, "message=%s", fourth);
  const char *failed[] = {endpoint, "exception=ctxd.CommitFailed", "count=3", message, "body=bad_commit",
                          NULL};
  browser(w, "failed", failed);

  /* the operator fixes the cause, then retries the first message from the page */
  PGresult *r = PQexec(w->pg, "INSERT INTO testkit.parents (id) VALUES (1)");
  assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
  PQclear(r);
  const char *retry[] = {
      endpoint, "exception=ctxd.CommitFailed", "count=3", message, "token=" TOKEN, "resolved=1", NULL};
  browser(w, "retry", retry);
  assert_int_equal(ctxt_pg_wait_long(w->pg, "SELECT count(*) FROM testkit.orphans", 1, CTXT_EFFECT_MS), 1);
  char sql[512];
  snprintf(sql, sizeof sql,
           "SELECT count(*) FROM ctxd.failed_messages WHERE message_id = '%s' AND status = 'resolved' "
           "AND operator_retries = 1",
           first);
  assert_int_equal(ctxt_pg_long(w->pg, sql), 1);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(*) FROM ctxd.failed_actions WHERE action = 'retry' AND "
                                       "actor = 'browser-test'"),
                   1);
  /* once: the other two are still waiting for an operator */
  assert_int_equal(failed_rows(w, "exception_type = 'ctxd.CommitFailed' AND status = 'unresolved'", 2), 2);

  const char *archive[] = {
      endpoint, "exception=Testkit.Refused", "count=2", archive_message, "token=" TOKEN, "archived=0", NULL};
  browser(w, "archive", archive);
  assert_int_equal(ctxt_pg_long(w->pg,
                                "SELECT count(*) FROM ctxd.failed_actions WHERE actor = 'browser-test' AND "
                                "action IN ('archive', 'unarchive')"),
                   2);
  assert_int_equal(failed_rows(w, "exception_type = 'Testkit.Refused' AND status = 'unresolved'", 2), 2);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(*) FROM testkit.orphans"), 1);

  /* a group of 1003: more than one request of the API takes */
  snprintf(sql, sizeof sql,
           "INSERT INTO ctxd.failed_messages (endpoint, message_id, exception_type, body, first_failed_at, "
           "last_failed_at) SELECT '%s', md5(i::text)::uuid, 'Testkit.Bulk', '{}', now(), now() "
           "FROM generate_series(1, 1003) i",
           w->endpoint);
  r = PQexec(w->pg, sql);
  assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
  PQclear(r);
  const char *bulk[] = {endpoint, "exception=Testkit.Bulk", "count=1003", "token=" TOKEN, NULL};
  browser(w, "bulk", bulk);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(*) FROM ctxd.failed_messages WHERE exception_type = "
                                       "'Testkit.Bulk' AND status = 'archived'"),
                   1003);
}

/* Without admin.token the page is read-only: every action button is disabled and says why. */
static void console_read_only(void **state) {
  ctxt_world_t *w = *state;
  console_world(w, NULL);
  ctxt_host_start(w, NULL);
  publish_action(w, 1, "fail");
  assert_int_equal(failed_rows(w, "exception_type = 'Testkit.Refused'", 1), 1);
  char endpoint[80];
  snprintf(endpoint, sizeof endpoint, "endpoint=%s", w->endpoint);
  const char *readonly[] = {endpoint, "exception=Testkit.Refused", "count=1", NULL};
  browser(w, "readonly", readonly);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(console_with_token, ctxt_world_setup, ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(console_read_only, ctxt_world_setup, ctxt_world_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
