/* The loader's descriptor checks, on descriptors built in memory. */
#include "testsupport.h"

#include <string.h>

#include "plugin.h"

static int init_ok(ctxd_plugin_t *p, const ctxd_api_t *api, void **state) {
  (void)p;
  (void)api;
  (void)state;
  return 0;
}

typedef struct {
  int64_t n;
} settings_t;

static ctxd_plugin_desc_t good(void) {
  ctxd_plugin_desc_t d = {CTXD_PLUGIN_STAMP, .name = "good", .init = init_ok};
  return d;
}

static void check(const ctxd_plugin_desc_t *d, int want, const char *msg) {
  char err[256] = "";
  assert_int_equal(ctxd__plugin_check(d, CTXD_BUILD_FLAGS, err, sizeof err), want);
  assert_string_equal(err, msg);
}

static void accepts_a_matching_descriptor(void **state) {
  (void)state;
  ctxd_plugin_desc_t d = good();
  /* the stamp of today's header: the loader's size row for the current minor must match */
  check(&d, 0, "");
  /* an older minor runs unchanged */
  d.abi_minor = 0;
  check(&d, 0, "");
  /* ABI 1.0's descriptor is 96 bytes on 64-bit: the stamp a plugin compiled today sends */
  assert_int_equal(sizeof(ctxd_plugin_desc_t), 96);
}

/* The size must be the one the declared minor defines: a longer descriptor is no more
 * acceptable than a shorter one, its tail would be read as fields it does not have. */
static void refuses_a_size_its_minor_does_not_define(void **state) {
  (void)state;
  ctxd_plugin_desc_t d = good();
  d.size = 160;
  check(&d, CTXD_EABI, "size: abi_minor 3 defines 96 bytes, plugin has 160");
  d.size = sizeof d + 1;
  check(&d, CTXD_EABI, "size: abi_minor 3 defines 96 bytes, plugin has 97");
  /* a newer minor's descriptor is refused for its minor, whatever its size */
  d.abi_minor = CTXD_ABI_MINOR + 1;
  check(&d, CTXD_EABI, "abi_minor: host has 3, plugin has 4 (the plugin needs a newer host)");
}

static void refusals_name_field_and_values(void **state) {
  (void)state;
  ctxd_plugin_desc_t d = good();
  check(NULL, CTXD_EABI, "entry function returned no descriptor");
  d.size = 16;
  check(&d, CTXD_EABI, "size: host needs at least 96, plugin has 16 (descriptor too short)");
  d = good();
  d.abi_major = 2;
  check(&d, CTXD_EABI, "abi_major: host has 1, plugin has 2");
  d = good();
  d.abi_minor = CTXD_ABI_MINOR + 1;
  check(&d, CTXD_EABI, "abi_minor: host has 3, plugin has 4 (the plugin needs a newer host)");
  d = good();
  d.build_flags = CTXD_BUILD_PTR64 | CTXD_BUILD_ASAN;
  char err[256];
  assert_int_equal(ctxd__plugin_check(&d, CTXD_BUILD_PTR64, err, sizeof err), CTXD_EABI);
  assert_string_equal(err, "build_flags: host has 0x1 (64-bit), plugin has 0x3 (64-bit, AddressSanitizer)");
  d = good();
  d.name = "Bad Name";
  check(&d, CTXD_EABI, "name: 'Bad Name' is not 1-64 characters of [a-z0-9_-]");
  d = good();
  d.init = NULL;
  check(&d, CTXD_EABI, "init: plugin has none");
}

static void refuses_a_broken_config_map(void **state) {
  (void)state;
  static const ctxd_conf_entry_t map[] = {
      {CTXD_CONF_INT, "n", "ten", offsetof(settings_t, n), "a number"},
      {0, NULL, NULL, 0, NULL},
  };
  ctxd_plugin_desc_t d = good();
  d.config_map = map;
  d.settings_size = sizeof(settings_t);
  char err[256];
  assert_int_equal(ctxd__plugin_check(&d, CTXD_BUILD_FLAGS, err, sizeof err), CTXD_EABI);
  assert_non_null(strstr(err, "config_map: "));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(accepts_a_matching_descriptor),
      cmocka_unit_test(refusals_name_field_and_values),
      cmocka_unit_test(refuses_a_size_its_minor_does_not_define),
      cmocka_unit_test(refuses_a_broken_config_map),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
