/* `ctxd check-config` with plugins the loader must refuse: real dlopen of real shared
 * objects, no server needed. Every refusal exits 3 and names what is wrong. */
#include "testsupport.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Runs check-config on a config listing `plugins_json`; returns the exit code, stderr
 * copied into out. */
static int check_config(const char *plugins_json, char *out, size_t outlen) {
  char text[2048], path[64];
  snprintf(text, sizeof text,
           "{\n  \"broker\": {\"url\": \"amqp://guest:secret@127.0.0.1:1\"},\n"
           "  \"database\": {\"url\": \"postgresql://127.0.0.1:1/x\"},\n"
           "  \"plugin_dir\": \"%s\",\n  \"plugins\": %s\n}\n",
           ctxt_plugin_dir(), plugins_json);
  ctxt_write_file(path, sizeof path, text);
  char *argv[] = {(char *)ctxt_ctxd_path(), "check-config", "--config", path, NULL};
  ctxt_proc_t p;
  ctxt_proc_spawn(&p, argv, NULL);
  assert_true(ctxt_proc_wait_exit(&p, 30000));
  snprintf(out, outlen, "%s", p.out);
  int code = WIFEXITED(p.status) ? WEXITSTATUS(p.status) : -1;
  ctxt_proc_free(&p);
  unlink(path);
  assert_null(strstr(out, "secret"));
  return code;
}

static void refused(const char *name, const char *want) {
  char plugins[256], out[8192];
  snprintf(plugins, sizeof plugins, "[{\"name\": \"%s\"}]", name);
  assert_int_equal(check_config(plugins, out, sizeof out), 3);
  if (strstr(out, want) == NULL) fail_msg("expected '%s' in: %s", want, out);
}

static void abi_refusals(void **state) {
  (void)state;
  refused("badabi_major", "refused: abi_major: host has 1, plugin has 2");
  refused("badabi_minor", "refused: abi_minor: host has 3, plugin has 10 (the plugin needs a newer host)");
  refused("badabi_short", "refused: size: host needs at least 96, plugin has 16 (descriptor too short)");
  refused("badabi_flags", "refused: build_flags: host has 0x");
  refused("badabi_noentry", "refused: no entry function ctxd_plugin_entry() (not a ctxd plugin?)");
  refused("nosuchplugin", "ctxd_nosuchplugin.so: cannot load:");
}

static void accepted_plugin_prints_topology(void **state) {
  (void)state;
  char out[8192];
  assert_int_equal(
      check_config("[{\"name\": \"testkit\", \"settings\": {\"endpoint\": \"orders\"}}]", out, sizeof out),
      0);
}

/* Plugins of older minors (1.1: before scheduled messages and external calls; 1.2: before
 * batch handlers, its consumers shorter) load and register. */
static void older_minor_plugin_loads(void **state) {
  (void)state;
  char out[8192];
  static const char *const older[] = {"ctxd_testkit_abi11.so", "ctxd_testkit_abi12.so"};
  for (size_t i = 0; i < 2; i++) {
    char plugins[256];
    snprintf(plugins, sizeof plugins,
             "[{\"name\": \"testkit\", \"path\": \"%s\", \"settings\": {\"endpoint\": \"orders\"}}]",
             older[i]);
    if (check_config(plugins, out, sizeof out) != 0) fail_msg("%s refused: %s", older[i], out);
  }
}

/* ctxd check-config prints the topology on stdout, which the helper does not capture:
 * read it through a file. */
static void topology_line(const char *plugins, const char *more, char *line, size_t len) {
  char text[2048], cfg[64], out[64], cmd[512];
  snprintf(text, sizeof text,
           "{\"broker\": {\"url\": \"amqp://x\"}, \"database\": {\"url\": \"postgresql://x\"},"
           " \"plugin_dir\": \"%s\", \"plugins\": %s%s}",
           ctxt_plugin_dir(), plugins, more);
  ctxt_write_file(cfg, sizeof cfg, text);
  ctxt_write_file(out, sizeof out, "");
  /* like ctxt_proc_spawn: the plugin_dir written above, not an inherited CTXD_PLUGIN_DIR */
  snprintf(cmd, sizeof cmd, "env -u CTXD_PLUGIN_DIR %s check-config --config %s > %s 2>/dev/null",
           ctxt_ctxd_path(), cfg, out);
  assert_int_equal(system(cmd), 0);
  FILE *f = fopen(out, "r");
  assert_non_null(f);
  assert_non_null(fgets(line, (int)len, f));
  fclose(f);
  unlink(cfg);
  unlink(out);
}

static void plugin_suggests_and_configuration_overrides(void **state) {
  (void)state;
  char line[512];
  const char *plugins =
      "[{\"name\": \"testkit\", \"settings\": {\"endpoint\": \"orders\", \"suggest_prefetch\": 32}}]";
  topology_line(plugins, "", line, sizeof line);
  assert_string_equal(line, "endpoint orders (queue orders, classic, prefetch 32, workers 2, batch 32)\n");
  topology_line(plugins, ", \"endpoints\": {\"defaults\": {\"prefetch\": 500}}", line, sizeof line);
  assert_string_equal(line, "endpoint orders (queue orders, classic, prefetch 32, workers 2, batch 32)\n");
  topology_line(plugins, ", \"endpoints\": {\"orders\": {\"prefetch\": 16, \"batch_size\": 8}}", line,
                sizeof line);
  assert_string_equal(line, "endpoint orders (queue orders, classic, prefetch 16, workers 2, batch 8)\n");
}

static void init_failure_stops_before_consuming(void **state) {
  (void)state;
  char out[8192];
  assert_int_equal(
      check_config("[{\"name\": \"testkit\", \"settings\": {\"fail_init\": true}}]", out, sizeof out), 3);
  assert_non_null(strstr(out, "init failed"));
}

static void settings_errors_point_into_the_file(void **state) {
  (void)state;
  char out[8192];
  assert_int_equal(
      check_config("[{\"name\": \"testkit\",\n    \"settings\": {\"endpont\": \"x\"}}]", out, sizeof out), 3);
  /* line 6 column 29 of the generated file is where the value of "endpont" stands */
  if (strstr(out, ":6:29: plugins[0].settings.endpont: unknown key (did you mean 'endpoint'?)") == NULL)
    fail_msg("got: %s", out);
  assert_int_equal(
      check_config("[{\"name\": \"testkit\", \"settings\": {\"fail_init\": 3}}]", out, sizeof out), 3);
  assert_non_null(strstr(out, "plugins[0].settings.fail_init: expected a boolean, got an integer"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(abi_refusals),
      cmocka_unit_test(accepted_plugin_prints_topology),
      cmocka_unit_test(older_minor_plugin_loads),
      cmocka_unit_test(init_failure_stops_before_consuming),
      cmocka_unit_test(plugin_suggests_and_configuration_overrides),
      cmocka_unit_test(settings_errors_point_into_the_file),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
