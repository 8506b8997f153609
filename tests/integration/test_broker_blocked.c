/* RabbitMQ's resource alarms against the real broker: its memory watermark set so low that
 * it blocks every publishing connection (connection.blocked), then set back. The host
 * keeps its connection, says it is blocked on /readyz and /metrics, holds its outbox rows
 * (no sweep claims them meanwhile) and sends them once unblocked: every effect once, every
 * event applied once downstream, nothing in _error. */
#include "hostfixture.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MESSAGES 300
/* long enough for several heartbeats of the host's (heartbeat_s 1): a block must not read
 * as a dead connection; and longer than the outbox lease (sweep_grace_ms 2000), which a
 * block must not end in a sweep */
#define BLOCKED_FOR_S 4

/* The broker's default again, whatever became of the test: every other test publishes. */
static int teardown(void **state) {
  ctxt_broker_watermark("0.4");
  return ctxt_world_teardown(state);
}

static void configure(ctxt_world_t *w, char *echo, size_t len) {
  snprintf(echo, len, "%s-echo", w->endpoint);
  snprintf(w->plugin_settings, sizeof w->plugin_settings, ", \"echo_endpoint\": \"%s\"", echo);
  snprintf(w->host_settings, sizeof w->host_settings,
           ", \"outbox\": {\"sweep_grace_ms\": 2000, \"sweep_interval_ms\": 100}");
  w->heartbeat_s = 1;
}

static void publish_stream(ctxt_world_t *w, const char *message) {
  char id[37];
  for (int i = 0; i < MESSAGES; i++) {
    ctxt_make_id(id, i + 1);
    ctxt_publish(w, id, message);
  }
}

/* Waits until the host says it is blocked: /readyz 503 naming the block, the gauge 1. */
static void wait_blocked(ctxt_world_t *w) {
  char body[4096];
  assert_int_equal(ctxt_wait_status(w, "/readyz", 503, CTXT_READY_MS), 503);
  ctxt_http_get(w->admin_port, "/readyz", body, sizeof body);
  assert_non_null(strstr(body, "broker: publishing blocked ("));
  assert_int_equal(ctxt_metric(w, NULL, "ctxd_broker_blocked"), 1);
}

/* Waits (the deadline bounds it) until the host has been blocked for `s` seconds. */
static void wait_blocked_for(ctxt_world_t *w, long s) {
  int64_t end = ctxt_now_ms() + CTXT_EFFECT_MS;
  while (ctxt_metric(w, NULL, "ctxd_broker_blocked_seconds_total") < s && ctxt_now_ms() < end) usleep(50000);
  assert_true(ctxt_metric(w, NULL, "ctxd_broker_blocked_seconds_total") >= s);
}

/* Lifts the alarm and waits for everything: the outbox empty, every event handled once
 * downstream, no reconnect, nothing in _error. Prints how long the host took to recover. */
static void unblock_and_check(ctxt_world_t *w, const char *echo) {
  int64_t t0 = ctxt_now_ms();
  ctxt_broker_watermark("0.4");
  assert_int_equal(ctxt_wait_status(w, "/readyz", 200, CTXT_READY_MS), 200);
  int64_t ready = ctxt_now_ms();
  assert_int_equal(ctxt_pg_wait_long(w->pg, "SELECT count(*) FROM ctxd.outbox", 0, CTXT_EFFECT_MS), 0);
  assert_int_equal(ctxt_wait_effects(w, "action = 'echoed'", MESSAGES), MESSAGES);
  /* on a loaded machine a confirm can outlast its 2 s lease before the block: the sweep
   * sends that event again, the echo endpoint receives it and drops it as a duplicate */
  int64_t end = ctxt_now_ms() + CTXT_EFFECT_MS;
  long received, dups, inflight;
  while ((received = ctxt_metric(w, echo, "ctxd_messages_received_total")) !=
             MESSAGES + (dups = ctxt_metric(w, echo, "ctxd_messages_duplicate_total")) ||
         (inflight = ctxt_metric(w, echo, "ctxd_deliveries_in_flight")) != 0) {
    if (ctxt_now_ms() >= end)
      fail_msg("endpoint %s: %ld received, %ld of them duplicates (want %d + duplicates)", echo, received,
               dups, MESSAGES);
    usleep(20000); /* polling a URL: the deadline bounds it */
  }
  printf("broker blocked: ready again %lld ms after the alarm was lifted, %d events delivered after %lld ms "
         "(%ld sent again by a sweep and dropped)\n",
         (long long)(ready - t0), MESSAGES, (long long)(ctxt_now_ms() - t0), dups);
  assert_int_equal(ctxt_metric(w, NULL, "ctxd_broker_blocked"), 0);
  assert_int_equal(ctxt_metric(w, NULL, "ctxd_broker_blocked_total"), 1);
  assert_int_equal(ctxt_metric(w, NULL, "ctxd_broker_reconnects_total"), 0);
  ctxt_host_stop(w, SIGTERM);
  assert_int_equal(ctxt_effects(w, "action = 'publish'"), MESSAGES);
  assert_int_equal(ctxt_effects(w, "action = 'echoed'"), MESSAGES);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(*) FROM ctxd.outbox_archive WHERE NOT unroutable"),
                   MESSAGES);
  char error[128];
  snprintf(error, sizeof error, "%s_error", w->endpoint);
  assert_int_equal(ctxt_amqp_queue_count(w->amqp, error), 0);
  snprintf(error, sizeof error, "%s_error", echo);
  assert_int_equal(ctxt_amqp_queue_count(w->amqp, error), 0);
}

/* The alarm is in force when the host connects. RabbitMQ says so (connection.blocked) when
 * the connection first publishes, and from then on reads nothing of it, acknowledgements
 * included: the host consumes up to its prefetch and waits. What must hold is that no row
 * is claimed by a sweep (attempts 0 after every lease ended), the connection stays up
 * through several heartbeat intervals, and everything goes once unblocked. */
static void blocked_at_connect_holds_the_outbox(void **state) {
  ctxt_world_t *w = *state;
  char echo[96];
  configure(w, echo, sizeof echo);
  ctxt_host_start(w, NULL); /* declares the queues */
  ctxt_host_stop(w, SIGTERM);
  publish_stream(w, "{\"action\":\"publish\"}");

  ctxt_broker_watermark("0.0000001");
  ctxt_host_start(w, NULL);
  wait_blocked(w);
  wait_blocked_for(w, BLOCKED_FOR_S);
  printf("broker blocked at connect: %ld of %d commands handled, %ld rows waiting in the outbox\n",
         ctxt_effects(w, "action = 'publish'"), MESSAGES,
         ctxt_pg_long(w->pg, "SELECT count(*) FROM ctxd.outbox"));
  /* every lease ended long ago: only the hold kept the sweep from claiming them */
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(*) FROM ctxd.outbox WHERE attempts > 0"), 0);
  unblock_and_check(w, echo);
}

/* The alarm fires mid-stream while the host publishes (handlers slow enough that the
 * stream lasts several seconds): the same, from a running host. */
static void blocked_mid_stream_resumes(void **state) {
  ctxt_world_t *w = *state;
  char echo[96];
  configure(w, echo, sizeof echo);
  ctxt_host_start(w, NULL);
  publish_stream(w, "{\"action\":\"publish\",\"sleep_ms\":50}");
  /* a tenth of the events delivered: the stream is under way */
  assert_int_equal(
      ctxt_pg_wait_long(w->pg, "SELECT (count(*) >= 30)::int FROM testkit.effects WHERE action = 'echoed'", 1,
                        CTXT_EFFECT_MS),
      1);

  ctxt_broker_watermark("0.0000001");
  wait_blocked(w);
  wait_blocked_for(w, BLOCKED_FOR_S);
  long echoed = ctxt_effects(w, "action = 'echoed'");
  printf("broker blocked mid-stream: %ld of %d commands handled, %ld events delivered while blocked\n",
         ctxt_effects(w, "action = 'publish'"), MESSAGES, echoed);
  assert_true(echoed < MESSAGES);
  unblock_and_check(w, echo);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(blocked_at_connect_holds_the_outbox, ctxt_world_setup, teardown),
      cmocka_unit_test_setup_teardown(blocked_mid_stream_resumes, ctxt_world_setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
