/* Scheduled messages under load: the relay's tick time and the lateness of scheduled
 * messages with no pending row and with 1,000,000 rows pending far in the future (the
 * index on due_at must keep both flat). Prints a table (docs/performance.md).
 *
 *   ctxd_bench_sched [pending rows (1000000)] [messages per phase (200)]
 *
 * Needs the private stack (tests/stack/stack.sh start); runs the host with the runtimekit
 * test plugin, outbox.sweep_interval_ms 1000. Not a CTest test. */
#include "hostfixture.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TICK_MS 1000

static long pending_rows = 1000000;
static int messages = 200;

static void pause_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* A gauge of the host's /metrics page (no labels), as a double. */
static double gauge(ctxt_world_t *w, const char *name) {
  static char body[1 << 16];
  if (ctxt_http_get(w->admin_port, "/metrics", body, sizeof body) != 200) fail_msg("no /metrics");
  char needle[128];
  snprintf(needle, sizeof needle, "\n%s ", name);
  const char *at = strstr(body, needle);
  if (at == NULL) fail_msg("no %s on /metrics", name);
  return strtod(at + strlen(needle), NULL);
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static void start(ctxt_world_t *w) {
  snprintf(w->plugins, sizeof w->plugins,
           "[{\"name\": \"runtimekit\", \"settings\": {\"endpoint\": \"%s\", \"message_type\": \"%s\", "
           "\"outcome_endpoint\": \"%s-out\"}}]",
           w->endpoint, w->type, w->endpoint);
  snprintf(w->host_settings, sizeof w->host_settings, ", \"outbox\": {\"sweep_interval_ms\": %d}", TICK_MS);
  snprintf(w->endpoint_settings, sizeof w->endpoint_settings, "\"workers\": 2, \"batch_size\": 16");
  ctxt_host_start(w, NULL);
}

/* One phase: the relay's tick time over 10 ticks, then `messages` scheduled 0-2 s ahead in
 * 4 rounds; prints the figures. */
static void phase(ctxt_world_t *w, long pending) {
  static int phases;
  phases++;
  double ticks[10];
  for (int i = 0; i < 10; i++) {
    pause_ms(TICK_MS);
    ticks[i] = gauge(w, "ctxd_relay_tick_seconds") * 1000;
  }
  qsort(ticks, 10, sizeof ticks[0], cmp);
  PQclear(PQexec(w->pg, "TRUNCATE runtimekit.effects, runtimekit.scheduled"));
  int seq = 0;
  for (int round = 0; round < 4; round++) {
    for (int i = 0; i < messages / 4; i++) {
      char m[160], id[37];
      snprintf(m, sizeof m, "{\"action\": \"schedule\", \"tag\": \"p%ld-%d\", \"delay_ms\": %d}", pending,
               seq, (i * 2000) / (messages / 4));
      ctxt_make_id(id, phases * 1000000 + ++seq); /* new ids: the inbox keeps the last phase's */
      ctxt_publish(w, id, m);
    }
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM runtimekit.effects WHERE action = 'arrived'");
    long want = (long)(round + 1) * (messages / 4);
    if (ctxt_pg_wait_long(w->pg, sql, want, 120000) != want) fail_msg("scheduled messages did not arrive");
  }
  PGresult *r =
      PQexec(w->pg, "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY at_ms - due_ms), "
                    "percentile_cont(0.99) WITHIN GROUP (ORDER BY at_ms - due_ms), max(at_ms - due_ms) "
                    "FROM runtimekit.effects WHERE action = 'arrived'");
  printf("| %9ld | %8.2f | %8.2f | %7.0f | %7.0f | %7.0f |\n", pending, ticks[5], ticks[9],
         strtod(PQgetvalue(r, 0, 0), NULL), strtod(PQgetvalue(r, 0, 1), NULL),
         strtod(PQgetvalue(r, 0, 2), NULL));
  fflush(stdout);
  PQclear(r);
}

static void bench(void **state) {
  ctxt_world_t *w = *state;
  start(w);
  printf("scheduled messages: relay tick (ms, median and max of 10 ticks) and lateness (ms, arrival in the "
         "handler - due time, %d messages scheduled 0-2 s ahead); tick %d ms\n\n",
         messages, TICK_MS);
  printf("| pending   | tick p50 | tick max | late p50| late p99| late max|\n");
  printf("|-----------|----------|----------|---------|---------|---------|\n");
  phase(w, 0);
  char sql[512];
  snprintf(sql, sizeof sql,
           "INSERT INTO ctxd.scheduled (id, due_at, exchange, message_type, body) SELECT gen_random_uuid(), "
           "now() + interval '1 day' + i * interval '1 second', 'bench-nowhere', 'Ctxd.Tests.v1:Never', '{}' "
           "FROM generate_series(1, %ld) i",
           pending_rows);
  int64_t t0 = ctxt_now_ms();
  PGresult *r = PQexec(w->pg, sql);
  if (PQresultStatus(r) != PGRES_COMMAND_OK) fail_msg("filling ctxd.scheduled: %s", PQerrorMessage(w->pg));
  PQclear(r);
  PQclear(PQexec(w->pg, "ANALYZE ctxd.scheduled"));
  fprintf(stderr, "bench: %ld pending rows written in %.1f s\n", pending_rows,
          (double)(ctxt_now_ms() - t0) / 1000);
  phase(w, pending_rows);
  ctxt_host_stop(w, SIGTERM);
}

int main(int argc, char **argv) {
  if (argc > 1) pending_rows = atol(argv[1]);
  if (argc > 2) messages = atoi(argv[2]) / 4 * 4;
  if (messages < 4) messages = 4;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(bench, ctxt_world_setup, ctxt_world_teardown)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
