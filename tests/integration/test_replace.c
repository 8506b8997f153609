/* Replacing a plugin's shared object under steady traffic: SIGHUP drains its consumers,
 * swaps in the new version and resumes; every message takes effect exactly once, by one
 * version or the other. A replacement the loader refuses leaves the running one alone. */
#include "hostfixture.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void publish_range(ctxt_world_t *w, int from, int n, const char *message) {
  char id[37];
  for (int i = from; i < from + n; i++) {
    ctxt_make_id(id, i);
    ctxt_publish(w, id, message);
  }
}

static void replace_under_traffic_exact_counts(void **state) {
  ctxt_world_t *w = *state;
  char dir[] = "/tmp/ctxd-plugins-XXXXXX";
  assert_non_null(mkdtemp(dir));
  snprintf(w->plugin_dir, sizeof w->plugin_dir, "%s", dir);
  ctxt_plugin_install(dir, "ctxd_testkit.so");
  ctxt_host_start(w, NULL);

  publish_range(w, 0, 300, "{\"action\":\"ok\",\"sleep_ms\":3}");
  ctxt_pg_wait_long(w->pg, "SELECT least(count(*), 30) FROM testkit.effects", 30, CTXT_EFFECT_MS);
  ctxt_plugin_install(dir, "ctxd_testkit_v2.so");
  ctxt_proc_signal(&w->host, SIGHUP);
  /* traffic goes on while the swap happens */
  publish_range(w, 300, 200, "{\"action\":\"ok\"}");
  assert_true(ctxt_proc_wait_output(&w->host, "replaced plugin 'testkit' 1.0.0 with 2.0.0", CTXT_EFFECT_MS));
  publish_range(w, 500, 100, "{\"action\":\"ok\"}");
  assert_int_equal(ctxt_wait_effects(w, NULL, 600), 600);

  /* a broken replacement is refused; version 2 keeps consuming */
  ctxt_plugin_install(dir, "ctxd_testkit_badabi.so");
  ctxt_proc_signal(&w->host, SIGHUP);
  assert_true(ctxt_proc_wait_output(
      &w->host, "reload of plugin 'testkit' refused, version 2.0.0 keeps running", CTXT_EFFECT_MS));
  publish_range(w, 600, 50, "{\"action\":\"ok\"}");
  assert_int_equal(ctxt_wait_effects(w, NULL, 650), 650);
  assert_int_equal(ctxt_amqp_wait_count(w->amqp, w->endpoint, 0, CTXT_EFFECT_MS), 0);
  ctxt_host_stop(w, SIGTERM);

  assert_int_equal(ctxt_effects(w, NULL), 650);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(DISTINCT message_id) FROM testkit.effects"), 650);
  long v1 = ctxt_effects(w, "action = 'ok'"), v2 = ctxt_effects(w, "action = 'ok@v2'");
  assert_true(v1 >= 30);
  assert_true(v2 >= 150); /* at least everything published after the swap */
  assert_int_equal(v1 + v2, 650);
  char cmd[256];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  assert_int_equal(system(cmd), 0);
}

/* A material type message straight to the datacatalog endpoint's exchange. */
static void material(ctxt_world_t *w, const char *endpoint, int n) {
  char body[1024];
  snprintf(body, sizeof body,
           "{\"messageId\":\"00000000-0000-4000-8000-%012d\",\"messageType\":[\"urn:message:"
           "Dodo.DataCatalog.Contracts.Products.v1:MaterialType\"],\"message\":{\"id\":"
           "\"6f1e3a52-3a55-4d47-9a0e-%012d\",\"version\":1,\"countryId\":643,\"departmentId\":"
           "\"0d5b0000-8f0e-4c2a-b2f1-1a2b3c4d5e6f\",\"name\":\"m%d\",\"category\":1,"
           "\"basicUnitOfMeasure\":5,\"isRemoved\":false}}",
           n, n, n);
  ctxt_amqp_publish(w->amqp, endpoint, "application/vnd.masstransit+json", body, NULL, NULL);
}

/* The replacement's migrations wait for the migration lock, which another session holds
 * (a host migrating, an operator's transaction). Meanwhile the loop thread goes on: the
 * other plugin's endpoint is served and acknowledged, the connection to the broker stays
 * up. The wait ends at reload.lock_timeout_ms: the replacement is given up, said in the
 * log, and the running version stays; once the lock is free a new file replaces it. */
static void replacement_waits_for_the_migration_lock_off_the_loop(void **state) {
  ctxt_world_t *w = *state;
  char dir[] = "/tmp/ctxd-plugins-XXXXXX", dc[96], cmd[1024];
  assert_non_null(mkdtemp(dir));
  snprintf(w->plugin_dir, sizeof w->plugin_dir, "%s", dir);
  ctxt_plugin_install(dir, "ctxd_testkit.so");
  snprintf(cmd, sizeof cmd, "cp %s/ctxd_datacatalog.so %s/", ctxt_plugin_dir(), dir);
  assert_int_equal(system(cmd), 0);
  snprintf(dc, sizeof dc, "%s-dc", w->endpoint);
  snprintf(w->plugins, sizeof w->plugins,
           "[{\"name\": \"testkit\", \"settings\": {\"endpoint\": \"%s\", \"message_type\": \"%s\"}},"
           " {\"name\": \"datacatalog\", \"settings\": {\"endpoint\": \"%s\"}}]",
           w->endpoint, w->type, dc);
  snprintf(w->host_settings, sizeof w->host_settings, ", \"reload\": {\"lock_timeout_ms\": 8000}");
  ctxt_host_start(w, NULL);

  PGconn *holder = ctxt_pg_connect(w->db);
  assert_int_equal(ctxt_pg_long(holder, "SELECT 1 FROM (SELECT pg_advisory_lock(7274640001)) l"), 1);
  ctxt_plugin_install(dir, "ctxd_testkit_v2.so");
  ctxt_proc_signal(&w->host, SIGHUP);
  int64_t signalled = ctxt_now_ms();
  for (int i = 1; i <= 100; i++) material(w, dc, i);
  publish_range(w, 0, 20, "{\"action\":\"ok\"}");
  /* served and acknowledged while the replacement waits */
  assert_int_equal(ctxt_pg_wait_long(w->pg, "SELECT count(*) FROM datacatalog.material_types", 100, 6000),
                   100);
  assert_int_equal(ctxt_amqp_wait_count(w->amqp, dc, 0, 6000), 0);
  assert_int_equal(ctxt_wait_effects(w, "action = 'ok'", 20), 20);
  assert_int_equal(ctxt_amqp_wait_count(w->amqp, w->endpoint, 0, 6000), 0);
  assert_true(ctxt_now_ms() - signalled < 8000);
  assert_null(strstr(w->host.out, "reload of plugin"));

  assert_true(
      ctxt_proc_wait_output(&w->host,
                            "reload of plugin 'testkit' refused, version 1.0.0 keeps running: a database "
                            "lock was not granted within reload.lock_timeout_ms (8000 ms)",
                            CTXT_EFFECT_MS));
  assert_true(ctxt_now_ms() - signalled >= 8000);
  assert_int_equal(ctxt_metric(w, NULL, "ctxd_broker_reconnects_total"), 0);
  assert_null(strstr(w->host.out, "reconnecting"));
  publish_range(w, 20, 10, "{\"action\":\"ok\"}");
  assert_int_equal(ctxt_wait_effects(w, "action = 'ok'", 30), 30);

  /* the lock is free: a new file replaces version 1 */
  PQfinish(holder);
  ctxt_plugin_install(dir, "ctxd_testkit_v2.so");
  ctxt_proc_signal(&w->host, SIGHUP);
  assert_true(ctxt_proc_wait_output(&w->host, "replaced plugin 'testkit' 1.0.0 with 2.0.0", CTXT_EFFECT_MS));
  publish_range(w, 30, 10, "{\"action\":\"ok\"}");
  assert_int_equal(ctxt_wait_effects(w, "action = 'ok@v2'", 10), 10);
  ctxt_host_stop(w, SIGTERM);
  assert_int_equal(ctxt_effects(w, NULL), 40);
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  assert_int_equal(system(cmd), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(replace_under_traffic_exact_counts, ctxt_world_setup,
                                      ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(replacement_waits_for_the_migration_lock_off_the_loop, ctxt_world_setup,
                                      ctxt_world_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
