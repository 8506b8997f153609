/* Plugins that misbehave, against the real broker and database: a message that kills the
 * host every time ends in _error after max_attempts without taking innocent messages with
 * it, a crash names the message it was handling, and a handler that hangs is reported
 * while the other endpoints go on. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "hostfixture.h"

#define GOOD 9
#define LATE 5 /* published after the first crash: batches then mix new and redelivered ones */

/* Starts the host and waits until it exits (1) or `done` holds (0). */
static int run_until_exit_or(ctxt_world_t *w, int (*done)(ctxt_world_t *)) {
  ctxt_host_start(w, NULL);
  int64_t deadline = ctxt_now_ms() + CTXT_EFFECT_MS;
  while (ctxt_now_ms() < deadline) {
    if (ctxt_proc_wait_exit(&w->host, 100)) return 1;
    if (done(w)) return 0;
  }
  fail_msg("the host neither exited nor finished its work");
  return 0;
}

static int poison_done(ctxt_world_t *w) {
  char q[128];
  snprintf(q, sizeof q, "%s_error", w->endpoint);
  return ctxt_amqp_queue_count(w->amqp, q) == 1 && ctxt_effects(w, NULL) == GOOD + LATE;
}

/* Publishes a good message whose body names its own id. */
static void publish_good(ctxt_world_t *w, int n) {
  char id[37], body[128];
  ctxt_make_id(id, n);
  snprintf(body, sizeof body, "{\"action\":\"ok\",\"self\":\"%s\"}", id);
  ctxt_publish(w, id, body);
}

/* One aborting message, then nine good ones, all in the queue before the host starts (so
 * they share its first batch), and five more after the first crash (so later batches mix
 * new and redelivered messages); the test restarts the host after each death, as a
 * supervisor would. */
static void poison_among_good(ctxt_world_t *w, const char *queue_type) {
  snprintf(w->endpoint_settings, sizeof w->endpoint_settings,
           "\"queue_type\": \"%s\", \"max_attempts\": 3, \"workers\": 2, \"batch_size\": 16", queue_type);
  ctxt_host_start(w, NULL); /* declares the queue */
  ctxt_host_stop(w, SIGTERM);
  char poison[37], q[128], hv[512], body[4096];
  ctxt_make_id(poison, 1);
  ctxt_publish(w, poison, "{\"action\":\"abort\"}");
  for (int i = 0; i < GOOD; i++) publish_good(w, 100 + i);

  int crashes = 0;
  while (run_until_exit_or(w, poison_done)) {
    if (crashes == 0)
      for (int i = 0; i < LATE; i++) publish_good(w, 200 + i);
    assert_true(WIFSIGNALED(w->host.status));
    assert_int_equal(WTERMSIG(w->host.status), SIGABRT);
    /* the breadcrumb names the message whose handler aborted */
    assert_non_null(strstr(w->host.out, "crashed with SIGABRT in a handler of plugin testkit"));
    assert_non_null(strstr(w->host.out, poison));
    assert_true(++crashes <= 3);
  }
  /* the first delivery and two counted runs: max_attempts 3 */
  assert_int_equal(crashes, 3);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(DISTINCT message_id) FROM testkit.effects"),
                   GOOD + LATE);
  /* each handled as itself: its effect row carries its own id */
  assert_int_equal(ctxt_effects(w, "position(message_id::text in body) = 0"), 0);
  assert_non_null(strstr(w->host.out, "poison message"));
  assert_int_equal(ctxt_metric(w, w->endpoint, "ctxd_messages_poisoned_total"), 1);

  /* the endpoint goes on consuming */
  publish_good(w, 500);
  assert_int_equal(ctxt_wait_effects(w, NULL, GOOD + LATE + 1), GOOD + LATE + 1);
  ctxt_host_stop(w, SIGTERM);
  assert_int_equal(ctxt_effects(w, NULL), GOOD + LATE + 1);
  /* the innocents' counts went with their transactions; the poison's stays, to expire */
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(*) FROM ctxd.attempts"), 1);
  char sql[160];
  snprintf(sql, sizeof sql, "SELECT attempts FROM ctxd.attempts WHERE message_id = '%s'", poison);
  assert_int_equal(ctxt_pg_long(w->pg, sql), 4);

  snprintf(q, sizeof q, "%s_error", w->endpoint);
  long attempts = 0;
  assert_int_equal(ctxt_amqp_peek_header_int(w->amqp, q, "ctxd-Fault-Attempts", &attempts), 1);
  assert_int_equal(attempts, 3);
  assert_int_equal(ctxt_amqp_peek_header(w->amqp, q, "MT-Fault-ConsumerType", hv, sizeof hv), 1);
  assert_string_equal(hv, "testkit");
  assert_int_equal(ctxt_amqp_peek_header(w->amqp, q, "MT-Fault-MessageType", hv, sizeof hv), 1);
  assert_string_equal(hv, w->type);
  assert_int_equal(ctxt_amqp_get(w->amqp, q, body, sizeof body, "MT-Fault-ExceptionType", hv, sizeof hv), 1);
  assert_string_equal(hv, "ctxd.PoisonMessage");
  assert_non_null(strstr(body, poison));
}

static void poison_among_good_on_classic_queue(void **state) { poison_among_good(*state, "classic"); }
static void poison_among_good_on_quorum_queue(void **state) { poison_among_good(*state, "quorum"); }

/* A handler that segfaults: the host dies, and its last line names the message. */
static void segfault_leaves_breadcrumb(void **state) {
  ctxt_world_t *w = *state;
  ctxt_host_start(w, NULL);
  char id[37];
  ctxt_make_id(id, 7);
  ctxt_publish(w, id, "{\"action\":\"segv\"}");
  assert_true(ctxt_proc_wait_exit(&w->host, CTXT_EFFECT_MS));
  /* killed by the signal, or by a sanitizer's report after it: not a clean exit */
  assert_false(WIFEXITED(w->host.status) && WEXITSTATUS(w->host.status) == 0);
  const char *line = strstr(w->host.out, "\"signal\":\"SIGSEGV\"");
  assert_non_null(line);
  while (line > w->host.out && line[-1] != '\n') line--;
  char expect[256];
  snprintf(expect, sizeof expect, "\"message_id\":\"%s\"", id);
  assert_non_null(strstr(line, expect));
  snprintf(expect, sizeof expect, "\"message_type\":\"%s\"", w->type);
  assert_non_null(strstr(line, expect));
  snprintf(expect, sizeof expect, "\"endpoint\":\"%s\"", w->endpoint);
  assert_non_null(strstr(line, expect));
  assert_non_null(strstr(line, "\"src\":\"testkit\""));
}

/* Time for the echo endpoint to handle n messages published from `first` on, in ms. */
static int64_t echo_round(ctxt_world_t *w, int first, int n) {
  char where[64], id[37];
  snprintf(where, sizeof where, "action = 'echoed'");
  long before = ctxt_effects(w, where);
  int64_t t0 = ctxt_now_ms();
  for (int i = 0; i < n; i++) {
    ctxt_make_id(id, first + i);
    ctxt_publish_type(w, w->echo_type, id, "{}");
  }
  assert_int_equal(ctxt_wait_effects(w, where, before + n), before + n);
  return ctxt_now_ms() - t0;
}

static int readyz_names(ctxt_world_t *w, const char *needle) {
  char page[4096];
  int64_t deadline = ctxt_now_ms() + CTXT_EFFECT_MS;
  do {
    if (ctxt_http_get(w->admin_port, "/readyz", page, sizeof page) == 503 && strstr(page, needle) != NULL)
      return 1;
  } while (ctxt_now_ms() < deadline && ctxt_proc_wait_exit(&w->host, 50) == 0);
  return 0;
}

/* A handler that hangs: /readyz says which, a metric counts it, and another endpoint of
 * the host keeps its throughput. */
static void hanging_handler_is_reported(void **state) {
  ctxt_world_t *w = *state;
  char echo[96], id[37], needle[256];
  snprintf(echo, sizeof echo, "%s_echo", w->endpoint);
  snprintf(w->plugin_settings, sizeof w->plugin_settings, ", \"echo_endpoint\": \"%s\"", echo);
  snprintf(w->endpoint_settings, sizeof w->endpoint_settings, "\"handler_timeout_ms\": 1000");
  ctxt_host_start(w, NULL);
  const int n = 200;
  int64_t before_ms = echo_round(w, 1000, n);

  ctxt_make_id(id, 1);
  ctxt_publish(w, id, "{\"action\":\"ok\",\"sleep_ms\":600000}");
  snprintf(needle, sizeof needle, "endpoint %s: handler of plugin testkit running for", w->endpoint);
  assert_true(readyz_names(w, needle));
  assert_true(readyz_names(w, id));
  /* counted and logged together, at the host's next check */
  int64_t deadline = ctxt_now_ms() + CTXT_EFFECT_MS;
  while (ctxt_metric(w, w->endpoint, "ctxd_handler_timeouts_total") != 1 && ctxt_now_ms() < deadline)
    assert_false(ctxt_proc_wait_exit(&w->host, 50));
  assert_int_equal(ctxt_metric(w, w->endpoint, "ctxd_handler_timeouts_total"), 1);
  assert_false(ctxt_proc_wait_exit(&w->host, 50)); /* reads what it wrote */
  assert_non_null(strstr(w->host.out, "past handler_timeout_ms 1000"));

  int64_t during_ms = echo_round(w, 2000, n);
  print_message("echo endpoint: %d messages in %lld ms before the hang, %lld ms during it\n", n,
                (long long)before_ms, (long long)during_ms);
  assert_true(during_ms <= 3 * before_ms + 1000);
  /* still reported: the handler still runs */
  assert_true(readyz_names(w, id));
  assert_int_equal(ctxt_metric(w, w->endpoint, "ctxd_handler_timeouts_total"), 1);
  /* the teardown kills the host: the handler never returns */
}

static int in_error(ctxt_world_t *w) {
  char q[128];
  snprintf(q, sizeof q, "%s_error", w->endpoint);
  return ctxt_amqp_queue_count(w->amqp, q) == 1;
}

/* With handler_timeout_exit the host exits so its supervisor restarts it; the message
 * counts an attempt each time, and ends in _error after max_attempts. */
static void handler_timeout_exit_counts_attempts(void **state) {
  ctxt_world_t *w = *state;
  char id[37], q[128], hv[256], body[4096];
  snprintf(w->endpoint_settings, sizeof w->endpoint_settings,
           "\"handler_timeout_ms\": 500, \"handler_timeout_exit\": true, \"max_attempts\": 2");
  snprintf(q, sizeof q, "%s_error", w->endpoint);
  ctxt_host_start(w, NULL);
  ctxt_make_id(id, 3);
  ctxt_publish(w, id, "{\"action\":\"ok\",\"sleep_ms\":600000}");
  int exits = 0;
  if (!ctxt_proc_wait_exit(&w->host, CTXT_EFFECT_MS)) fail_msg("the host did not exit");
  do {
    assert_true(WIFEXITED(w->host.status));
    assert_int_equal(WEXITSTATUS(w->host.status), 1);
    assert_non_null(strstr(w->host.out, "exiting: a handler ran past handler_timeout_ms"));
    assert_true(++exits <= 2);
  } while (run_until_exit_or(w, in_error));
  assert_int_equal(exits, 2);
  ctxt_host_stop(w, SIGTERM);
  assert_int_equal(ctxt_amqp_get(w->amqp, q, body, sizeof body, "MT-Fault-ExceptionType", hv, sizeof hv), 1);
  assert_string_equal(hv, "ctxd.PoisonMessage");
  assert_int_equal(ctxt_effects(w, NULL), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(poison_among_good_on_classic_queue, ctxt_world_setup,
                                      ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(poison_among_good_on_quorum_queue, ctxt_world_setup,
                                      ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(segfault_leaves_breadcrumb, ctxt_world_setup, ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(hanging_handler_is_reported, ctxt_world_setup, ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(handler_timeout_exit_counts_attempts, ctxt_world_setup,
                                      ctxt_world_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
