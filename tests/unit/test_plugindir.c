/* The default plugin folder, found from the executable's place: beside an installed host
 * under any prefix, the build's folder for a host run from its build tree (plugindir.h). */
#include "testsupport.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ctxd/errno.h>

#include "plugindir.h"

typedef struct {
  char root[32]; /* a scratch folder, the executable in root/bin */
  char exe[64];
  char installed[PATH_MAX]; /* root/bin/CTXD_PLUGIN_DIR_FROM_BIN, not created */
  char built[PATH_MAX];     /* root/bin/CTXD_BUILD_PLUGIN_DIR_FROM_BIN, not created */
} layout_t;

static int layout_setup(void **state) {
  layout_t *l = calloc(1, sizeof *l);
  if (l == NULL) return -1;
  snprintf(l->root, sizeof l->root, "/tmp/ctxd-pdir-XXXXXX");
  if (mkdtemp(l->root) == NULL) {
    free(l);
    return -1;
  }
  snprintf(l->exe, sizeof l->exe, "%s/bin/ctxd", l->root);
  snprintf(l->installed, sizeof l->installed, "%s/bin/%s", l->root, CTXD_PLUGIN_DIR_FROM_BIN);
  snprintf(l->built, sizeof l->built, "%s/bin/%s", l->root, CTXD_BUILD_PLUGIN_DIR_FROM_BIN);
  *state = l;
  return 0;
}

static int layout_teardown(void **state) {
  layout_t *l = *state;
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", l->root);
  int rc = system(cmd);
  free(l);
  return rc == 0 ? 0 : -1;
}

static void make_dir(const char *path) {
  char cmd[PATH_MAX + 32];
  snprintf(cmd, sizeof cmd, "mkdir -p '%s'", path);
  assert_int_equal(system(cmd), 0);
}

/* ctxd__plugindir_find of l->exe is the canonical path of `want`. */
static void finds(const layout_t *l, const char *want) {
  char got[PATH_MAX], real[PATH_MAX];
  assert_non_null(realpath(want, real));
  assert_int_equal(ctxd__plugindir_find(l->exe, got, sizeof got), 0);
  assert_string_equal(got, real);
}

static void installed_folder_first(void **state) {
  layout_t *l = *state;
  make_dir(l->installed);
  finds(l, l->installed);
  /* a build folder beside it changes nothing */
  make_dir(l->built);
  finds(l, l->installed);
}

static void build_folder_when_not_installed(void **state) {
  layout_t *l = *state;
  make_dir(l->built);
  finds(l, l->built);
}

static void installed_path_when_neither(void **state) {
  layout_t *l = *state;
  char got[PATH_MAX];
  assert_int_equal(ctxd__plugindir_find(l->exe, got, sizeof got), 0);
  assert_string_equal(got, l->installed);
  assert_int_equal(ctxd__plugindir_find(l->exe, got, strlen(l->installed)), CTXD_ETOOBIG);
}

/* The README's way: the build tree's ctxd, a configuration without plugin_dir, no
 * CTXD_PLUGIN_DIR (ctxt_proc_spawn drops it): the build's plugins load. */
static void build_tree_host_loads_build_plugins(void **state) {
  (void)state;
  char config[64], plugins[PATH_MAX], want[PATH_MAX + 64];
  ctxt_write_file(config, sizeof config,
                  "{\"broker\": {\"url\": \"amqp://127.0.0.1:1\"}, \"database\": {\"url\": "
                  "\"postgresql://127.0.0.1:1/x\"}, \"plugins\": [{\"name\": \"datacatalog\"}]}");
  assert_non_null(realpath(ctxt_plugin_dir(), plugins));
  snprintf(want, sizeof want, "loaded plugin 'datacatalog' 1.0.0 from %s/ctxd_datacatalog.so", plugins);
  char *argv[] = {(char *)ctxt_ctxd_path(), "check-config", "--config", config, NULL};
  ctxt_proc_t p;
  ctxt_proc_spawn(&p, argv, NULL);
  assert_true(ctxt_proc_wait_exit(&p, 30000));
  unlink(config);
  if (strstr(p.out, want) == NULL) fail_msg("expected '%s' in: %s", want, p.out);
  assert_true(WIFEXITED(p.status));
  assert_int_equal(WEXITSTATUS(p.status), 0);
  ctxt_proc_free(&p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(installed_folder_first, layout_setup, layout_teardown),
      cmocka_unit_test_setup_teardown(build_folder_when_not_installed, layout_setup, layout_teardown),
      cmocka_unit_test_setup_teardown(installed_path_when_neither, layout_setup, layout_teardown),
      cmocka_unit_test(build_tree_host_loads_build_plugins),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
