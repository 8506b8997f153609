/* The compatibility check of the real contracts: every snapshot in contracts/released/
 * must still be compatible with the current definition of its version (see "Released
 * versions are frozen" in contracts/README.md), and every released definition must have a
 * snapshot. The checker itself is tested on fixtures in test_contract.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "contract.h"
#include "testsupport.h"

#define RELEASED_DIR CTXD_TEST_SOURCE_DIR "/contracts/released"

/* Checks one snapshot file; returns 1 when it is fine, 0 after printing why not. */
static int check_snapshot(const ctxd__contracts_t *c, const char *ns_dir, const char *file) {
  char path[1024], err[1024] = "", want[512], type[512];
  snprintf(path, sizeof path, "%s/%s/%s", RELEASED_DIR, ns_dir, file);
  json_error_t je;
  json_t *snapshot = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
  if (!snapshot) {
    print_error("%s: not JSON: %s\n", path, je.text);
    return 0;
  }
  const char *ns = json_string_value(json_object_get(snapshot, "namespace"));
  const char *name = json_string_value(json_object_get(snapshot, "type"));
  int version = (int)json_integer_value(json_object_get(snapshot, "version"));
  snprintf(want, sizeof want, "%s/%s.v%d.json", ns ? ns : "?", name ? name : "?", version);
  snprintf(type, sizeof type, "%s.v%d:%s", ns ? ns : "?", version, name ? name : "?");
  snprintf(path, sizeof path, "%s/%s", ns_dir, file);
  const ctxd__contract_t *k = ctxd__contracts_find(c, type);
  int ok = 0;
  if (strcmp(path, want))
    print_error("contracts/released/%s: holds %s, so it belongs at contracts/released/%s\n", path, type,
                want);
  else if (!k)
    print_error("%s was released but is no longer defined: released versions stay\n", type);
  else if (ctxd__contract_compat(snapshot, ctxd__contract_definition(k), err, sizeof err))
    print_error("%s\n  (a released version is frozen: put the change in a new version)\n", err);
  else
    ok = 1;
  json_decref(snapshot);
  return ok;
}

static void test_released_versions_are_unchanged(void **state) {
  (void)state;
  ctxd__contracts_t *c = NULL;
  char err[512] = "";
  assert_int_equal(ctxd__contracts_new(&c, err, sizeof err), 0);
  size_t bad = 0, snapshots = 0;

  DIR *top = opendir(RELEASED_DIR);
  if (!top) fail_msg("%s is missing", RELEASED_DIR);
  struct dirent *ns;
  while ((ns = readdir(top))) {
    if (ns->d_name[0] == '.') continue;
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/%s", RELEASED_DIR, ns->d_name);
    DIR *d = opendir(dir);
    if (!d) {
      print_error("contracts/released/%s: expected a namespace folder\n", ns->d_name);
      bad++;
      continue;
    }
    struct dirent *f;
    while ((f = readdir(d))) {
      if (f->d_name[0] == '.') continue;
      snapshots++;
      bad += !check_snapshot(c, ns->d_name, f->d_name);
    }
    closedir(d);
  }
  closedir(top);

  /* A released definition without a snapshot could change unnoticed. */
  for (size_t i = 0; i < ctxd__contracts_count(c); i++) {
    const ctxd__contract_t *k = ctxd__contracts_at(c, i);
    if (strcmp(ctxd__contract_status(k), "released")) continue;
    const json_t *def = ctxd__contract_definition(k);
    char rel[512], path[1024];
    snprintf(rel, sizeof rel, "%s/%s.v%d.json", json_string_value(json_object_get(def, "namespace")),
             json_string_value(json_object_get(def, "type")), ctxd__contract_version(k));
    snprintf(path, sizeof path, "%s/%s", RELEASED_DIR, rel);
    if (access(path, R_OK)) {
      print_error("%s is released without a snapshot: copy contracts/%s to "
                  "contracts/released/%s\n",
                  ctxd__contract_type(k), rel, rel);
      bad++;
    }
  }
  ctxd__contracts_free(c);
  assert_true(snapshots > 0);
  if (bad) fail_msg("%zu problem(s) with released contracts, see above", bad);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_released_versions_are_unchanged),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
