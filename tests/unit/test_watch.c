/* The record of a worker's handler call: a call past its limit is found, with what it
 * handles, and reported once however often it is looked at. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "clock.h"
#include "watch.h"

static void idle_worker_is_never_overdue(void **state) {
  (void)state;
  ctxd__watch_t w;
  ctxd__watch_sample_t s;
  ctxd__watch_init(&w);
  assert_int_equal(ctxd__watch_overdue(&w, ctxd__clock_us() + 3600000000LL, 0, 1, &s), 0);
  ctxd__watch_begin(&w, "p", "e", "Ns:T", "00000000-0000-4000-8000-000000000001");
  ctxd__watch_end(&w);
  assert_int_equal(ctxd__watch_overdue(&w, ctxd__clock_us() + 3600000000LL, 0, 1, &s), 0);
  ctxd__watch_destroy(&w);
}

static void overdue_call_is_named_and_reported_once(void **state) {
  (void)state;
  ctxd__watch_t w;
  ctxd__watch_sample_t s;
  ctxd__watch_init(&w);
  ctxd__watch_begin(&w, "inventory", "inventory", "Ns:Reserve", "00000000-0000-4000-8000-000000000002");
  int64_t now = ctxd__clock_us();
  assert_int_equal(ctxd__watch_overdue(&w, now, 5000000, 1, &s), 0); /* not yet */
  /* looked at without reporting: still a first report afterwards */
  assert_int_equal(ctxd__watch_overdue(&w, now + 6000000, 5000000, 0, &s), 1);
  assert_int_equal(s.first_report, 1);
  assert_int_equal(ctxd__watch_overdue(&w, now + 6000000, 5000000, 1, &s), 1);
  assert_int_equal(s.first_report, 1);
  assert_string_equal(s.plugin, "inventory");
  assert_string_equal(s.endpoint, "inventory");
  assert_string_equal(s.message_type, "Ns:Reserve");
  assert_string_equal(s.message_id, "00000000-0000-4000-8000-000000000002");
  assert_true(s.running_us >= 6000000);
  assert_int_equal(ctxd__watch_overdue(&w, now + 7000000, 5000000, 1, &s), 1);
  assert_int_equal(s.first_report, 0);
  /* the next call is a new one */
  ctxd__watch_end(&w);
  ctxd__watch_begin(&w, "inventory", "inventory", "Ns:Reserve", "00000000-0000-4000-8000-000000000003");
  assert_int_equal(ctxd__watch_overdue(&w, ctxd__clock_us() + 6000000, 5000000, 1, &s), 1);
  assert_int_equal(s.first_report, 1);
  assert_string_equal(s.message_id, "00000000-0000-4000-8000-000000000003");
  ctxd__watch_destroy(&w);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(idle_worker_is_never_overdue),
      cmocka_unit_test(overdue_call_is_named_and_reported_once),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
