/* ABI 1.2 without servers: the new slots of the host's table, what a 1.1 plugin sees,
 * executor registration, call fields and outcomes, the retry backoff. */
#include "testsupport.h"

#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "executor.h"
#include "plugin.h"

static void slots_are_there_and_a_1_1_table_lacks_them(void **state) {
  (void)state;
  const ctxd_api_t *api = &ctxd__api;
  assert_int_equal(api->abi_minor, CTXD_ABI_MINOR);
  assert_true(CTXD_API_HAS(api, schedule));
  assert_true(CTXD_API_HAS(api, unschedule));
  assert_true(CTXD_API_HAS(api, call));
  assert_true(CTXD_API_HAS(api, executor_register));
  assert_true(CTXD_API_HAS(api, call_field));
  assert_true(CTXD_API_HAS(api, call_outcome));
  /* a 1.1 host's table ends with respond: a plugin testing for 1.2 slots finds none */
  ctxd_api_t old = *api;
  old.size = (uint32_t)(offsetof(ctxd_api_t, respond) + sizeof old.respond);
  assert_true(CTXD_API_HAS(&old, respond));
  assert_false(CTXD_API_HAS(&old, schedule));
  assert_false(CTXD_API_HAS(&old, call_outcome));
}

static int init_ok(ctxd_plugin_t *p, const ctxd_api_t *api, void **state) {
  (void)p;
  (void)api;
  (void)state;
  return 0;
}

/* A plugin built for 1.2, 1.1 or 1.0 is accepted by this host. */
static void older_minors_load(void **state) {
  (void)state;
  ctxd_plugin_desc_t d = {CTXD_PLUGIN_STAMP, .name = "old", .init = init_ok};
  char err[256] = "";
  d.abi_minor = 2;
  assert_int_equal(ctxd__plugin_check(&d, CTXD_BUILD_FLAGS, err, sizeof err), 0);
  d.abi_minor = 1;
  assert_int_equal(ctxd__plugin_check(&d, CTXD_BUILD_FLAGS, err, sizeof err), 0);
  d.abi_minor = 0;
  assert_int_equal(ctxd__plugin_check(&d, CTXD_BUILD_FLAGS, err, sizeof err), 0);
}

static ctxd_call_result_t fn(const ctxd_call_t *call, void *data) {
  (void)call;
  (void)data;
  return CTXD_CALL_DONE;
}

static void registration_checks_and_defaults(void **state) {
  (void)state;
  ctxd_plugin_t p = {.name = "kit", .in_init = 1};
  ctxd_executor_t e = {.size = sizeof e, .kind = "sms.send", .fn = fn, .outcome_endpoint = "kit-out"};
  assert_int_equal(ctxd__api.executor_register(&p, &e), 0);
  assert_int_equal(ctxd__api.executor_register(&p, &e), CTXD_EEXIST);
  const ctxd__executor_t *x = ctxd__executor_find(&p.executors, "sms.send");
  assert_non_null(x);
  assert_string_equal(x->plugin, "kit");
  assert_int_equal(x->max_attempts, 5);
  assert_int_equal(x->backoff_ms, 1000);
  assert_int_equal(x->timeout_ms, 30000);
  assert_null(ctxd__executor_find(&p.executors, "other"));
  ctxd_executor_t bad = e;
  bad.kind = "other";
  bad.fn = NULL;
  assert_int_equal(ctxd__api.executor_register(&p, &bad), CTXD_EINVAL);
  bad.fn = fn;
  bad.outcome_endpoint = "";
  assert_int_equal(ctxd__api.executor_register(&p, &bad), CTXD_EINVAL);
  bad.outcome_endpoint = "kit-out";
  bad.size = (uint32_t)offsetof(ctxd_executor_t, timeout_ms); /* too short */
  assert_int_equal(ctxd__api.executor_register(&p, &bad), CTXD_EINVAL);
  p.in_init = 0;
  bad.size = sizeof bad;
  assert_int_equal(ctxd__api.executor_register(&p, &bad), CTXD_ESTATE);
  ctxd__executors_free(&p.executors);
  assert_int_equal(p.executors.n, 0);
}

static void call_fields_and_outcome(void **state) {
  (void)state;
  ctxd_call_t c = {.kind = "sms.send", .key = "k", .payload = "{\"a\":1}", .attempt = "2"};
  assert_string_equal(ctxd__api.call_field(&c, CTXD_CALL_KIND), "sms.send");
  assert_string_equal(ctxd__api.call_field(&c, CTXD_CALL_KEY), "k");
  assert_string_equal(ctxd__api.call_field(&c, CTXD_CALL_PAYLOAD), "{\"a\":1}");
  assert_string_equal(ctxd__api.call_field(&c, CTXD_CALL_ATTEMPT), "2");
  assert_int_equal(ctxd__api.call_outcome(&c, "[1]"), CTXD_EINVAL);
  assert_int_equal(ctxd__api.call_outcome(&c, "not json"), CTXD_EINVAL);
  assert_int_equal(ctxd__api.call_outcome(&c, NULL), CTXD_EINVAL);
  assert_null(c.outcome);
  assert_int_equal(ctxd__api.call_outcome(&c, "{\"id\": \"x\"}"), 0);
  assert_int_equal(ctxd__api.call_outcome(&c, "{\"id\": \"y\"}"), 0); /* the last one counts */
  assert_string_equal(c.outcome, "{\"id\":\"y\"}");
  free(c.outcome);
}

/* CallCompleted's message id: the same for the same call, different when a '/' moves
 * between kind and key (which the old "plugin/kind/key" name could not tell apart) or when
 * long keys differ only at their end. */
static void call_message_ids_do_not_collide(void **state) {
  (void)state;
  char a[37], b[37], long1[256], long2[256];
  ctxd__call_message_id("p", "a/b", "c", a);
  ctxd__call_message_id("p", "a/b", "c", b);
  assert_string_equal(a, b);
  ctxd__call_message_id("p", "a", "b/c", b);
  assert_string_not_equal(a, b);
  ctxd__call_message_id("p/a", "b", "c", b);
  assert_string_not_equal(a, b);
  memset(long1, 'k', 255);
  long1[255] = '\0';
  memcpy(long2, long1, sizeof long2);
  long2[254] = 'x';
  ctxd__call_message_id(long1, long1, long1, a);
  ctxd__call_message_id(long1, long1, long2, b);
  assert_string_not_equal(a, b);
}

static void backoff_doubles_up_to_an_hour(void **state) {
  (void)state;
  assert_int_equal(ctxd__call_backoff_ms(100, 1), 100);
  assert_int_equal(ctxd__call_backoff_ms(100, 2), 200);
  assert_int_equal(ctxd__call_backoff_ms(100, 4), 800);
  assert_int_equal(ctxd__call_backoff_ms(1000, 40), 3600 * 1000);
  assert_int_equal(ctxd__call_backoff_ms(1000, 4000000000u), 3600 * 1000);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(slots_are_there_and_a_1_1_table_lacks_them),
      cmocka_unit_test(older_minors_load),
      cmocka_unit_test(registration_checks_and_defaults),
      cmocka_unit_test(call_fields_and_outcome),
      cmocka_unit_test(backoff_doubles_up_to_an_hour),
      cmocka_unit_test(call_message_ids_do_not_collide),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
