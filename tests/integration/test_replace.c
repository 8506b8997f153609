/* Replacing a plugin's shared object under steady traffic: SIGHUP drains its consumers,
 * swaps in the new version and resumes; every message takes effect exactly once, by one
 * version or the other. A replacement the loader refuses leaves the running one alone. */
#include "hostfixture.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Puts build/plugins/<from> at <dir>/ctxd_testkit.so the way deployments do: a new file
 * renamed over the old one. */
static void install(const char *dir, const char *from) {
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "cp %s/%s %s/.incoming.so && mv -f %s/.incoming.so %s/ctxd_testkit.so",
           ctxt_plugin_dir(), from, dir, dir, dir);
  assert_int_equal(system(cmd), 0);
}

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
  install(dir, "ctxd_testkit.so");
  ctxt_host_start(w, NULL);

  publish_range(w, 0, 300, "{\"action\":\"ok\",\"sleep_ms\":3}");
  ctxt_pg_wait_long(w->pg, "SELECT least(count(*), 30) FROM testkit.effects", 30, CTXT_EFFECT_MS);
  install(dir, "ctxd_testkit_v2.so");
  ctxt_proc_signal(&w->host, SIGHUP);
  /* traffic goes on while the swap happens */
  publish_range(w, 300, 200, "{\"action\":\"ok\"}");
  assert_true(ctxt_proc_wait_output(&w->host, "replaced plugin 'testkit' 1.0.0 with 2.0.0", CTXT_EFFECT_MS));
  publish_range(w, 500, 100, "{\"action\":\"ok\"}");
  assert_int_equal(ctxt_wait_effects(w, NULL, 600), 600);

  /* a broken replacement is refused; version 2 keeps consuming */
  install(dir, "ctxd_testkit_badabi.so");
  ctxt_proc_signal(&w->host, SIGHUP);
  assert_true(ctxt_proc_wait_output(&w->host, "reload of plugin 'testkit' refused, version 2.0.0 keeps running", CTXT_EFFECT_MS));
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

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(replace_under_traffic_exact_counts, ctxt_world_setup, ctxt_world_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
