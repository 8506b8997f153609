/* The admin endpoint of a running host: /healthz, /readyz following the broker, and
 * /metrics counting a known traffic. Stops the shared broker for a while: run alone. */
#include "hostfixture.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int port;

/* The value of the sample line starting with `sample` in a metrics page, or -1. */
static long sample_value(const char *page, const char *sample) {
  for (const char *line = page; line != NULL && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
    size_t n = strlen(sample);
    if (strncmp(line, sample, n) == 0 && line[n] == ' ') return strtol(line + n + 1, NULL, 10);
  }
  return -1;
}

static int wait_status(const char *path, int want, int timeout_ms) {
  char body[4096];
  int64_t end = ctxt_now_ms() + timeout_ms;
  int st;
  while ((st = ctxt_http_get(port, path, body, sizeof body)) != want && ctxt_now_ms() < end) {
    /* polling a URL: the deadline bounds it */
    usleep(50000);
  }
  return st;
}

static void stack(const char *what) {
  char cmd[512];
  snprintf(cmd, sizeof cmd, "bash %s/tests/stack/stack.sh %s", CTXD_TEST_SOURCE_DIR, what);
  assert_int_equal(system(cmd), 0);
}

static void health_readiness_metrics(void **state) {
  ctxt_world_t *w = *state;
  port = 20000 + (int)(getpid() % 20000);
  snprintf(w->host_settings, sizeof w->host_settings, ", \"admin\": {\"listen\": \"127.0.0.1:%d\"}", port);
  ctxt_host_start(w, NULL);
  char body[65536], id[37];
  assert_int_equal(ctxt_http_get(port, "/healthz", body, sizeof body), 200);
  assert_string_equal(body, "ok\n");
  assert_int_equal(ctxt_http_get(port, "/readyz", body, sizeof body), 200);
  assert_int_equal(ctxt_http_get(port, "/nothing", body, sizeof body), 404);

  /* known traffic: 5 handled, 2 refused, 1 duplicate */
  for (int i = 0; i < 5; i++) {
    ctxt_make_id(id, 100 + i);
    ctxt_publish(w, id, "{\"action\":\"ok\"}");
  }
  ctxt_make_id(id, 100);
  ctxt_publish(w, id, "{\"action\":\"ok\"}");
  for (int i = 0; i < 2; i++) {
    ctxt_make_id(id, 200 + i);
    ctxt_publish(w, id, "{\"action\":\"fail\"}");
  }
  char q[128];
  snprintf(q, sizeof q, "%s_error", w->endpoint);
  assert_int_equal(ctxt_amqp_wait_count(w->amqp, q, 2, CTXT_EFFECT_MS), 2);
  assert_int_equal(ctxt_wait_effects(w, NULL, 5), 5);
  assert_int_equal(ctxt_amqp_wait_count(w->amqp, w->endpoint, 0, CTXT_EFFECT_MS), 0);
  assert_int_equal(ctxt_http_get(port, "/metrics", body, sizeof body), 200);
  char sample[256];
#define EP_SAMPLE(name) (snprintf(sample, sizeof sample, "%s{endpoint=\"%s\"}", name, w->endpoint), sample)
  assert_int_equal(sample_value(body, EP_SAMPLE("ctxd_messages_received_total")), 8);
  assert_int_equal(sample_value(body, EP_SAMPLE("ctxd_messages_handled_total")), 5);
  assert_int_equal(sample_value(body, EP_SAMPLE("ctxd_messages_duplicate_total")), 1);
  assert_int_equal(sample_value(body, EP_SAMPLE("ctxd_messages_error_total")), 2);
  assert_int_equal(sample_value(body, EP_SAMPLE("ctxd_handler_seconds_count")), 7);
  assert_int_equal(sample_value(body, "ctxd_broker_connected"), 1);
  assert_non_null(strstr(body, "# TYPE ctxd_batch_size histogram\n"));

  /* the broker goes away: not ready, still alive; it comes back: ready again */
  ctxt_amqp_close(w->amqp);
  w->amqp = NULL;
  stack("stop-broker");
  assert_int_equal(wait_status("/readyz", 503, 30000), 503);
  assert_int_equal(ctxt_http_get(port, "/readyz", body, sizeof body), 503);
  assert_non_null(strstr(body, "broker: not connected"));
  assert_int_equal(ctxt_http_get(port, "/healthz", body, sizeof body), 200);
  stack("start-broker");
  assert_int_equal(wait_status("/readyz", 200, 60000), 200);
  w->amqp = ctxt_amqp_connect();
  assert_int_equal(ctxt_http_get(port, "/metrics", body, sizeof body), 200);
  assert_int_equal(sample_value(body, "ctxd_broker_reconnects_total"), 1);
  ctxt_host_stop(w, SIGTERM);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(health_readiness_metrics, ctxt_world_setup, ctxt_world_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
