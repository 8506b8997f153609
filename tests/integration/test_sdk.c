/* The plugin SDK from the outside: install ctxd into a scratch prefix, build the example
 * plugin (docs/examples/hello-plugin) from a copy outside this tree against that prefix
 * only, load it into the installed host and pass messages through it. */
#include "testsupport.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void run(const char *cmd) {
  if (system(cmd) != 0) fail_msg("failed: %s", cmd);
}

static char *read_all(const char *path) {
  FILE *f = fopen(path, "r");
  if (f == NULL) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = calloc(1, (size_t)n + 1);
  if (fread(buf, 1, (size_t)n, f) != (size_t)n) buf[0] = '\0';
  fclose(f);
  return buf;
}

static void out_of_tree_plugin_runs_in_installed_host(void **state) {
  (void)state;
  char dir[] = "/tmp/ctxd-sdk-XXXXXX";
  assert_non_null(mkdtemp(dir));
  char cmd[2048];
  snprintf(cmd, sizeof cmd, "cmake --install %s --prefix %s/inst > %s/install.log", CTXD_TEST_BINARY_DIR, dir, dir);
  run(cmd);
  snprintf(cmd, sizeof cmd, "cp -r %s/docs/examples/hello-plugin %s/src", CTXD_TEST_SOURCE_DIR, dir);
  run(cmd);
  snprintf(cmd, sizeof cmd,
           "cmake -S %s/src -B %s/build -DCMAKE_PREFIX_PATH=%s/inst -DCMAKE_EXPORT_COMPILE_COMMANDS=ON "
           "> %s/configure.log && cmake --build %s/build > %s/build.log",
           dir, dir, dir, dir, dir, dir);
  run(cmd);
  /* nothing of this source tree went into the plugin's build */
  char path[512];
  snprintf(path, sizeof path, "%s/build/compile_commands.json", dir);
  char *commands = read_all(path);
  assert_non_null(commands);
  assert_null(strstr(commands, CTXD_TEST_SOURCE_DIR "/include"));
  assert_non_null(strstr(commands, "/inst/include"));
  free(commands);

  char db[256], db_env[300], endpoint[64], config[64], text[2048];
  ctxt_pg_fresh_db(db, sizeof db);
  snprintf(db_env, sizeof db_env, "CTXD_PG_URL=%s", db);
  snprintf(endpoint, sizeof endpoint, "hello-%s", ctxt_unique());
  snprintf(text, sizeof text,
           "{\"broker\": {\"url\": \"%s\"}, \"database\": {\"url\": \"%s\"}, \"plugin_dir\": \"%s/build\","
           " \"plugins\": [{\"name\": \"hello\", \"settings\": {\"endpoint\": \"%s\"}}]}",
           ctxt_amqp_url(), db, dir, endpoint);
  ctxt_write_file(config, sizeof config, text);

  char host[512];
  snprintf(host, sizeof host, "%s/inst/bin/ctxd", dir);
  char *argv[] = {host, "run", "--config", config, NULL};
  char *env[] = {db_env, NULL};
  ctxt_proc_t p;
  ctxt_proc_spawn(&p, argv, env);
  assert_true(ctxt_proc_wait_output(&p, "\"ready:", 30000));

  amqp_connection_state_t c = ctxt_amqp_connect();
  static const char *const names[] = {"Ada", "Bob", "Ada"};
  for (int i = 0; i < 3; i++) {
    char body[512];
    snprintf(body, sizeof body,
             "{\"messageId\":\"00000000-0000-4000-8000-00000000000%d\",\"messageType\":"
             "[\"urn:message:Ctxd.Examples.v1:Hello\"],\"message\":{\"name\":\"%s\"}}",
             i, names[i]);
    /* straight to the endpoint's exchange: other runs' queues never see it */
    ctxt_amqp_publish(c, endpoint, "application/vnd.masstransit+json", body, NULL, NULL);
  }
  PGconn *pg = ctxt_pg_connect(db);
  assert_int_equal(ctxt_pg_wait_long(pg, "SELECT sum(count) FROM hello.greetings", 3, 30000), 3);
  assert_int_equal(ctxt_pg_long(pg, "SELECT count FROM hello.greetings WHERE name = 'Ada'"), 2);
  ctxt_proc_signal(&p, SIGTERM);
  assert_true(ctxt_proc_wait_exit(&p, 30000));
  assert_true(WIFEXITED(p.status));
  assert_int_equal(WEXITSTATUS(p.status), 0);
  ctxt_proc_free(&p);
  PQfinish(pg);
  ctxt_amqp_close(c);
  unlink(config);
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  run(cmd);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(out_of_tree_plugin_runs_in_installed_host)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
