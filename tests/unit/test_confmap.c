/* Config maps (typed keys applied to JSON objects) and locating key paths in JSON text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <ctxd/errno.h>

#include "confmap.h"

typedef struct {
  const char *name;
  int64_t count;
  int verbose;
  double ratio;
} settings_t;

static const ctxd_conf_entry_t map[] = {
    {CTXD_CONF_STR, "name", "anonymous", offsetof(settings_t, name), "a name"},
    {CTXD_CONF_INT, "count", "-12", offsetof(settings_t, count), "a count"},
    {CTXD_CONF_BOOL, "verbose", "true", offsetof(settings_t, verbose), "chatty"},
    {CTXD_CONF_DOUBLE, "ratio", "2.5", offsetof(settings_t, ratio), "a ratio"},
    {.name = NULL}};

static json_t *parse(const char *text) {
  json_error_t je;
  json_t *j = json_loads(text, JSON_DECODE_ANY, &je);
  assert_non_null(j);
  return j;
}

/* Applies `map` to the JSON `text` at `path`; returns the result code. */
static int apply_text(const ctxd_conf_entry_t *m, const char *text, void *dst, const char *path,
                      ctxd__conf_error_t *e) {
  json_t *obj = parse(text);
  int rc = ctxd__confmap_apply(m, obj, dst, path, e);
  json_decref(obj);
  return rc;
}

static void assert_apply_error(const ctxd_conf_entry_t *m, const char *text, const char *path,
                               const char *want_path, const char *want_reason) {
  settings_t s;
  ctxd__conf_error_t e;
  assert_int_equal(apply_text(m, text, &s, path, &e), CTXD_ECONFIG);
  assert_string_equal(e.path, want_path);
  assert_string_equal(e.reason, want_reason);
}

/* ---- apply ---------------------------------------------------------------------------- */

static void test_apply_values(void **state) {
  (void)state;
  json_t *obj = parse("{\"name\": \"x\\\"y\", \"count\": 9007199254740993, \"verbose\": false,"
                      " \"ratio\": 0.25}");
  settings_t s;
  ctxd__conf_error_t e;
  assert_int_equal(ctxd__confmap_apply(map, obj, &s, "", &e), 0);
  assert_string_equal(s.name, "x\"y");
  /* borrowed from the object, not copied */
  assert_ptr_equal(s.name, json_string_value(json_object_get(obj, "name")));
  assert_true(s.count == INT64_C(9007199254740993));
  assert_int_equal(s.verbose, 0);
  assert_true(s.ratio == 0.25);
  json_decref(obj);
}

static void test_apply_defaults(void **state) {
  (void)state;
  settings_t s;
  ctxd__conf_error_t e;
  memset(&s, 0xA5, sizeof s);
  assert_int_equal(ctxd__confmap_apply(map, NULL, &s, "x", &e), 0);
  assert_ptr_equal(s.name, map[0].def); /* the default text itself */
  assert_true(s.count == -12);
  assert_int_equal(s.verbose, 1);
  assert_true(s.ratio == 2.5);

  /* present keys win, absent ones default */
  assert_int_equal(apply_text(map, "{\"count\": 3, \"ratio\": 7}", &s, "", &e), 0);
  assert_string_equal(s.name, "anonymous");
  assert_true(s.count == 3);
  assert_int_equal(s.verbose, 1);
  assert_true(s.ratio == 7.0); /* a JSON integer is a fine double */
}

static void test_apply_type_errors(void **state) {
  (void)state;
  assert_apply_error(map, "{\"count\": \"3\"}", "ep", "ep.count", "expected an integer, got a string");
  /* a real is refused even without a fraction: the file says something else than it means */
  assert_apply_error(map, "{\"count\": 3.0}", "ep", "ep.count", "expected an integer, got a real");
  assert_apply_error(map, "{\"verbose\": null}", "", "verbose", "expected a boolean, got null");
  assert_apply_error(map, "{\"verbose\": 1}", "", "verbose", "expected a boolean, got an integer");
  assert_apply_error(map, "{\"name\": {}}", "plugins[0].settings", "plugins[0].settings.name",
                     "expected a string, got an object");
  assert_apply_error(map, "{\"ratio\": [1]}", "a.b", "a.b.ratio", "expected a number, got an array");
  assert_apply_error(map, "{\"ratio\": true}", "a", "a.ratio", "expected a number, got a boolean");
}

static void test_apply_not_an_object(void **state) {
  (void)state;
  assert_apply_error(map, "[]", "plugins[1].settings", "plugins[1].settings",
                     "expected an object, got an array");
  assert_apply_error(map, "\"s\"", "", "", "expected an object, got a string");
  assert_apply_error(map, "null", "x", "x", "expected an object, got null");
}

static void test_apply_required(void **state) {
  (void)state;
  static const ctxd_conf_entry_t req[] = {
      {CTXD_CONF_INT, "interval", NULL, offsetof(settings_t, count), NULL},
      {CTXD_CONF_STR, "name", "n", offsetof(settings_t, name), NULL},
      {.name = NULL}};
  assert_apply_error(req, "{\"name\": \"a\"}", "plugins[0].settings", "plugins[0].settings.interval",
                     "required key is missing");
  settings_t s;
  ctxd__conf_error_t e;
  assert_int_equal(ctxd__confmap_apply(req, NULL, &s, "", &e), CTXD_ECONFIG);
  assert_string_equal(e.path, "interval");
  assert_string_equal(e.reason, "required key is missing");
  assert_int_equal(apply_text(req, "{\"interval\": 0}", &s, "", &e), 0);
  assert_true(s.count == 0);
}

static void test_apply_unknown_keys(void **state) {
  (void)state;
  assert_apply_error(map, "{\"name\": \"a\", \"colour\": 1}", "p", "p.colour", "unknown key");
  /* differs by case only */
  assert_apply_error(map, "{\"Verbose\": true}", "p", "p.Verbose", "unknown key (did you mean 'verbose'?)");
  /* edit distance 1 and 2 */
  assert_apply_error(map, "{\"cont\": 1}", "", "cont", "unknown key (did you mean 'count'?)");
  assert_apply_error(map, "{\"raito\": 1}", "", "raito", "unknown key (did you mean 'ratio'?)");
  assert_apply_error(map, "{\"verbos\": 1}", "", "verbos", "unknown key (did you mean 'verbose'?)");
  /* distance 3 is no longer a typo */
  assert_apply_error(map, "{\"vrbs\": 1}", "", "vrbs", "unknown key");
  /* the closest name wins */
  static const ctxd_conf_entry_t two[] = {{CTXD_CONF_INT, "workers", "1", offsetof(settings_t, count), NULL},
                                          {CTXD_CONF_INT, "worker", "1", offsetof(settings_t, count), NULL},
                                          {.name = NULL}};
  assert_apply_error(two, "{\"workr\": 1}", "", "workr", "unknown key (did you mean 'worker'?)");
  /* a tie goes to the first in map order */
  assert_apply_error(two, "{\"worker_\": 1}", "", "worker_", "unknown key (did you mean 'workers'?)");
  /* exact match only: a known key in another case is not that key */
  assert_apply_error(two, "{\"WORKERS\": 1}", "", "WORKERS", "unknown key (did you mean 'workers'?)");
}

static void test_apply_bad_map(void **state) {
  (void)state;
  static const ctxd_conf_entry_t bad_default[] = {
      {CTXD_CONF_INT, "n", "ten", offsetof(settings_t, count), NULL}, {.name = NULL}};
  assert_apply_error(bad_default, "{}", "s", "s.n", "config map default \"ten\" is not an integer");
  static const ctxd_conf_entry_t bad_type[] = {
      {(ctxd_conf_type_t)9, "n", "1", offsetof(settings_t, count), NULL}, {.name = NULL}};
  assert_apply_error(bad_type, "{}", "s", "s.n", "config map has an invalid type 9");
}

typedef struct {
  const json_t *obj;
  const json_t *arr;
} sections_t;

static void test_apply_host_types(void **state) {
  (void)state;
  static const ctxd_conf_entry_t sec[] = {{CTXD__CONF_OBJECT, "obj", "", offsetof(sections_t, obj), NULL},
                                          {CTXD__CONF_ARRAY, "arr", "", offsetof(sections_t, arr), NULL},
                                          {.name = NULL}};
  json_t *doc = parse("{\"obj\": {\"a\": 1}, \"arr\": [1, 2]}");
  sections_t s;
  ctxd__conf_error_t e;
  assert_int_equal(ctxd__confmap_apply(sec, doc, &s, "", &e), 0);
  assert_ptr_equal(s.obj, json_object_get(doc, "obj"));
  assert_ptr_equal(s.arr, json_object_get(doc, "arr"));
  json_decref(doc);

  assert_int_equal(apply_text(sec, "{}", &s, "", &e), 0);
  assert_null(s.obj);
  assert_null(s.arr);

  assert_int_equal(apply_text(sec, "{\"obj\": []}", &s, "root", &e), CTXD_ECONFIG);
  assert_string_equal(e.path, "root.obj");
  assert_string_equal(e.reason, "expected an object, got an array");
  assert_int_equal(apply_text(sec, "{\"arr\": {}}", &s, "", &e), CTXD_ECONFIG);
  assert_string_equal(e.path, "arr");
  assert_string_equal(e.reason, "expected an array, got an object");
}

static void test_apply_unaligned_offset(void **state) {
  (void)state;
  /* a plugin may pack its struct; the value must land byte-exact without UB */
  static const ctxd_conf_entry_t packed[] = {{CTXD_CONF_INT, "n", "16", 1, NULL}, {.name = NULL}};
  ctxd__conf_error_t e;
  unsigned char buf[16] = {0};
  assert_int_equal(apply_text(packed, "{\"n\": 258}", buf, "", &e), 0);
  int64_t v;
  memcpy(&v, buf + 1, sizeof v);
  assert_true(v == 258);
  assert_int_equal(buf[0], 0);
  assert_int_equal(buf[9], 0);
}

/* ---- check ---------------------------------------------------------------------------- */

static void assert_check_error(const ctxd_conf_entry_t *m, size_t size, const char *reason) {
  ctxd__conf_error_t e;
  assert_int_equal(ctxd__confmap_check(m, size, &e), CTXD_EINVAL);
  assert_string_equal(e.reason, reason);
}

static void test_check_valid(void **state) {
  (void)state;
  ctxd__conf_error_t e;
  assert_int_equal(ctxd__confmap_check(map, sizeof(settings_t), &e), 0);
  static const ctxd_conf_entry_t empty[] = {{.name = NULL}};
  assert_int_equal(ctxd__confmap_check(empty, 0, &e), 0);
  /* a value ending exactly at the end of the struct fits */
  static const ctxd_conf_entry_t last[] = {
      {CTXD_CONF_DOUBLE, "r", "1e3", 8, NULL}, {CTXD_CONF_STR, "s", NULL, 0, NULL}, {.name = NULL}};
  assert_int_equal(ctxd__confmap_check(last, 16, &e), 0);
}

static void test_check_names(void **state) {
  (void)state;
  static const ctxd_conf_entry_t empty_name[] = {
      {CTXD_CONF_INT, "a", "1", 0, NULL}, {CTXD_CONF_INT, "", "1", 0, NULL}, {.name = NULL}};
  assert_check_error(empty_name, 8, "entry 1 has an empty name");
  static const ctxd_conf_entry_t dup[] = {{CTXD_CONF_INT, "a", "1", 0, NULL},
                                          {CTXD_CONF_INT, "b", "1", 0, NULL},
                                          {CTXD_CONF_BOOL, "a", "true", 0, NULL},
                                          {.name = NULL}};
  assert_check_error(dup, 8, "entries 0 and 2 are both named 'a'");
  ctxd__conf_error_t e;
  assert_int_equal(ctxd__confmap_check(dup, 8, &e), CTXD_EINVAL);
  assert_string_equal(e.path, "a");
}

static void test_check_types(void **state) {
  (void)state;
  static const ctxd_conf_entry_t zero[] = {{(ctxd_conf_type_t)0, "a", "1", 0, NULL}, {.name = NULL}};
  assert_check_error(zero, 8, "entry 'a' has an invalid type 0");
  static const ctxd_conf_entry_t five[] = {{(ctxd_conf_type_t)5, "a", "1", 0, NULL}, {.name = NULL}};
  assert_check_error(five, 8, "entry 'a' has an invalid type 5");
  /* the host's own section types are not part of the plugin ABI */
  static const ctxd_conf_entry_t host[] = {{CTXD__CONF_OBJECT, "a", "", 0, NULL}, {.name = NULL}};
  assert_check_error(host, 8, "entry 'a' has an invalid type 100");
}

static void test_check_defaults(void **state) {
  (void)state;
  static const struct {
    ctxd_conf_type_t type;
    const char *def;
    const char *reason;
  } cases[] = {
      {CTXD_CONF_INT, "10x", "entry 'k': default \"10x\" is not an integer"},
      {CTXD_CONF_INT, "", "entry 'k': default \"\" is not an integer"},
      {CTXD_CONF_INT, " 5", "entry 'k': default \" 5\" is not an integer"},
      {CTXD_CONF_INT, "2.0", "entry 'k': default \"2.0\" is not an integer"},
      {CTXD_CONF_INT, "99999999999999999999",
       "entry 'k': default \"99999999999999999999\" is not an integer"},
      {CTXD_CONF_BOOL, "yes", "entry 'k': default \"yes\" is not a boolean"},
      {CTXD_CONF_BOOL, "True", "entry 'k': default \"True\" is not a boolean"},
      {CTXD_CONF_DOUBLE, "abc", "entry 'k': default \"abc\" is not a number"},
      {CTXD_CONF_DOUBLE, "nan", "entry 'k': default \"nan\" is not a number"},
      {CTXD_CONF_DOUBLE, "1e999", "entry 'k': default \"1e999\" is not a number"},
      {CTXD_CONF_DOUBLE, "1.5 ", "entry 'k': default \"1.5 \" is not a number"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    ctxd_conf_entry_t m[] = {{cases[i].type, "k", cases[i].def, 0, NULL}, {.name = NULL}};
    assert_check_error(m, 8, cases[i].reason);
  }
  /* every well-formed default passes, an empty string included */
  static const ctxd_conf_entry_t good[] = {{CTXD_CONF_INT, "a", "-9223372036854775808", 0, NULL},
                                           {CTXD_CONF_BOOL, "b", "false", 0, NULL},
                                           {CTXD_CONF_DOUBLE, "c", "-1e-3", 0, NULL},
                                           {CTXD_CONF_DOUBLE, "d", "42", 0, NULL},
                                           {CTXD_CONF_STR, "e", "", 0, NULL},
                                           {.name = NULL}};
  ctxd__conf_error_t e;
  assert_int_equal(ctxd__confmap_check(good, 8, &e), 0);
}

static void test_check_offsets(void **state) {
  (void)state;
  static const ctxd_conf_entry_t past[] = {{CTXD_CONF_INT, "n", "1", 12, NULL}, {.name = NULL}};
  assert_check_error(past, 16, "entry 'n': offset 12 + 8 bytes is outside the 16-byte settings");
  static const ctxd_conf_entry_t far[] = {{CTXD_CONF_BOOL, "b", "true", SIZE_MAX, NULL}, {.name = NULL}};
  char want[160];
  snprintf(want, sizeof want, "entry 'b': offset %zu + %zu bytes is outside the 8-byte settings",
           (size_t)SIZE_MAX, sizeof(int));
  assert_check_error(far, 8, want);
  ctxd__conf_error_t e;
  assert_int_equal(ctxd__confmap_check(map, sizeof(settings_t) - 1, &e), CTXD_EINVAL);
}

/* ---- json_locate ---------------------------------------------------------------------- */

static const char doc[] = "{\n"
                          "  \"endpoints\": {\n"
                          "    \"odd\": \"a \\\"quoted\\\" [x] {y}, \\\\\",\n"
                          "    \"inventory\": {\"prefetch\": 200, \"workers\": [1, {\"a\": null}]}\n"
                          "  },\n"
                          "  \"plugins\": [\n"
                          "    {\"name\": \"a\"},\n"
                          "    {\"name\": \"b\", \"settings\": {}},\n"
                          "    {\"name\": \"c\", \"settings\": {\"interval\": -1.5e3}}\n"
                          "  ],\n"
                          "  \"esc\\u0061ped\": true, \"\\u00e9t\\u00e9\": \"\\ud83d\\ude00\",\n"
                          "  \"\xc3\xbc\": \"\xc3\xa4\", \"dup\": 1, \"dup\": 2\n"
                          "}";

static void assert_at(const char *text, size_t len, const char *path, int line, int col) {
  int l = -1, c = -1;
  assert_int_equal(ctxd__json_locate(text, len, path, &l, &c), 0);
  assert_int_equal(l, line);
  assert_int_equal(c, col);
}

static void assert_absent(const char *text, size_t len, const char *path) {
  int l = -1, c = -1;
  assert_int_equal(ctxd__json_locate(text, len, path, &l, &c), CTXD_ENOENT);
  assert_int_equal(l, -1);
}

static void test_locate_paths(void **state) {
  (void)state;
  size_t n = strlen(doc);
  assert_at(doc, n, "", 1, 1);
  assert_at(doc, n, "endpoints", 2, 16);
  assert_at(doc, n, "endpoints.odd", 3, 12);
  assert_at(doc, n, "endpoints.inventory", 4, 18);
  assert_at(doc, n, "endpoints.inventory.prefetch", 4, 31);
  assert_at(doc, n, "endpoints.inventory.workers", 4, 47);
  assert_at(doc, n, "endpoints.inventory.workers[0]", 4, 48);
  assert_at(doc, n, "endpoints.inventory.workers[1]", 4, 51);
  assert_at(doc, n, "endpoints.inventory.workers[1].a", 4, 57);
  assert_at(doc, n, "plugins", 6, 14);
  assert_at(doc, n, "plugins[0]", 7, 5);
  assert_at(doc, n, "plugins[1].settings", 8, 31);
  assert_at(doc, n, "plugins[2].settings.interval", 9, 44);
  assert_at(doc, n, "plugins[2].name", 9, 14);
  /* keys are compared decoded; columns count characters, not bytes */
  assert_at(doc, n, "escaped", 11, 19);
  assert_at(doc, n, "\xc3\xa9t\xc3\xa9", 11, 42);
  assert_at(doc, n, "\xc3\xbc", 12, 8);
  /* the first of duplicate keys */
  assert_at(doc, n, "dup", 12, 20);
}

static void test_locate_absent(void **state) {
  (void)state;
  size_t n = strlen(doc);
  assert_absent(doc, n, "nope");
  assert_absent(doc, n, "endpoints.inventory.batch_size");
  assert_absent(doc, n, "plugins[3]");
  assert_absent(doc, n, "plugins[0].settings");
  assert_absent(doc, n, "plugins.name");          /* an array is not an object */
  assert_absent(doc, n, "endpoints[0]");          /* an object is not an array */
  assert_absent(doc, n, "plugins[1].settings.x"); /* empty object */
  assert_absent(doc, n, "endpoints.odd.x");       /* a string has no keys */
  assert_absent(doc, n, "\"endpoints\"");
  assert_absent(doc, n, "endpoint");
  assert_absent(doc, n, "endpointsx");
  /* malformed paths */
  static const char *const bad[] = {".endpoints",
                                    "endpoints.",
                                    "endpoints..odd",
                                    "plugins[",
                                    "plugins[]",
                                    "plugins[x]",
                                    "plugins[0",
                                    "plugins[0]name",
                                    "plugins.[0]",
                                    "plugins[-1]",
                                    "plugins[99999999999999999999999999]"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) assert_absent(doc, n, bad[i]);
  assert_absent(NULL, 0, "");
  assert_absent(doc, n, NULL);
}

static void test_locate_root_values(void **state) {
  (void)state;
  assert_at("  [1, [2, 3]]", 13, "[1][1]", 1, 11);
  assert_at("\n\n  42 ", 7, "", 3, 3);
  assert_at("\"s\"", 3, "", 1, 1);
  /* len, not the NUL, ends the text */
  assert_at("[1]garbage", 3, "[0]", 1, 2);
  assert_absent("[1]garbage", 4, "[0]");
  assert_absent("", 0, "");
  assert_absent("   ", 3, "");
}

/* Each case is copied to a buffer of exactly its length, so ASan catches any read past it. */
static void assert_malformed(const char *text, size_t len) {
  char *buf = malloc(len ? len : 1);
  assert_non_null(buf);
  memcpy(buf, text, len);
  int l, c;
  assert_int_equal(ctxd__json_locate(buf, len, "", &l, &c), CTXD_ENOENT);
  assert_int_equal(ctxd__json_locate(buf, len, "a", &l, &c), CTXD_ENOENT);
  assert_int_equal(ctxd__json_locate(buf, len, "a[0]", &l, &c), CTXD_ENOENT);
  free(buf);
}

static void test_locate_malformed(void **state) {
  (void)state;
  static const char *const cases[] = {
      "{\"a\": 1,}",
      "{\"a\" 1}",
      "{\"a\": 1 \"b\": 2}",
      "{a: 1}",
      "[1, 2,]",
      "[1 2]",
      "{\"a\": [1}",
      "{\"a\": {]}",
      "{\"a\": 01}",
      "{\"a\": 1.}",
      "{\"a\": -}",
      "{\"a\": 1e}",
      "{\"a\": .5}",
      "{\"a\": tru}",
      "{\"a\": nul}",
      "{\"a\": True}",
      "{\"a\": \"\\x\"}",
      "{\"a\": \"\\u12G4\"}",
      "{\"a\": \"\\ud800\"}",
      "{\"a\": \"\\udc00\"}",
      "{\"a\": \"tab\there\"}",
      "{\"a\": 1}}",
      "{\"a\": 1} [",
      "{\"a\": [1]]",
      "}",
      "]",
      ",",
      "{\"a\": \"\\",
      "{\"a\": \"\\u00",
      "{\"a\": \"\\ud83d\\u",
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) assert_malformed(cases[i], strlen(cases[i]));
  /* a NUL byte is no whitespace */
  assert_malformed("{\"a\": 1}\0", 9);
  assert_malformed("{\"a\": \"x\0y\"}", 12);
}

static void test_locate_truncated(void **state) {
  (void)state;
  /* every strict prefix of an object is malformed, whatever byte it stops at */
  size_t n = strlen(doc);
  for (size_t len = 0; len < n; len++) assert_malformed(doc, len);
}

static void test_locate_deep(void **state) {
  (void)state;
  /* deep nesting is refused rather than recursed into */
  size_t n = 100000;
  char *deep = malloc(2 * n);
  assert_non_null(deep);
  memset(deep, '[', n);
  memset(deep + n, ']', n);
  assert_malformed(deep, 2 * n);
  /* 2000 levels are fine, and the innermost array is found */
  size_t d = 2000;
  char path[3 * 2000 + 1];
  for (size_t i = 0; i + 1 < d; i++) memcpy(path + 3 * i, "[0]", 3);
  path[3 * (d - 1)] = '\0';
  assert_at(deep + n - d, 2 * d, path, 1, (int)d);
  free(deep);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_apply_values),
      cmocka_unit_test(test_apply_defaults),
      cmocka_unit_test(test_apply_type_errors),
      cmocka_unit_test(test_apply_not_an_object),
      cmocka_unit_test(test_apply_required),
      cmocka_unit_test(test_apply_unknown_keys),
      cmocka_unit_test(test_apply_bad_map),
      cmocka_unit_test(test_apply_host_types),
      cmocka_unit_test(test_apply_unaligned_offset),
      cmocka_unit_test(test_check_valid),
      cmocka_unit_test(test_check_names),
      cmocka_unit_test(test_check_types),
      cmocka_unit_test(test_check_defaults),
      cmocka_unit_test(test_check_offsets),
      cmocka_unit_test(test_locate_paths),
      cmocka_unit_test(test_locate_absent),
      cmocka_unit_test(test_locate_root_values),
      cmocka_unit_test(test_locate_malformed),
      cmocka_unit_test(test_locate_truncated),
      cmocka_unit_test(test_locate_deep),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
