/* The intake's bookkeeping: bytes held, oversized bodies, and when the host must stop and
 * resume reading from the broker. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "intake.h"

#define MIB (1024u * 1024u)

static void test_bytes_bound(void **state) {
  (void)state;
  ctxd__intake_t in;
  ctxd__intake_init(&in, 1 * MIB, 4 * MIB);
  assert_int_equal(ctxd__intake_pace(&in), CTXD__INTAKE_KEEP);
  for (int i = 0; i < 3; i++) ctxd__intake_hold(&in, MIB);
  assert_int_equal(ctxd__intake_full(&in), 0);
  assert_int_equal(ctxd__intake_pace(&in), CTXD__INTAKE_KEEP);
  /* the last one that fits under the bound makes it full */
  ctxd__intake_hold(&in, MIB);
  assert_true(in.held == 4 * MIB);
  assert_int_equal(ctxd__intake_full(&in), 1);
  assert_int_equal(ctxd__intake_pace(&in), CTXD__INTAKE_PAUSE);
  assert_int_equal(ctxd__intake_pace(&in), CTXD__INTAKE_KEEP); /* said once */
  assert_int_equal(in.paused, 1);
  ctxd__intake_release(&in, 1);
  ctxd__intake_release(&in, MIB - 1);
  assert_int_equal(ctxd__intake_pace(&in), CTXD__INTAKE_RESUME);
  assert_int_equal(ctxd__intake_pace(&in), CTXD__INTAKE_KEEP);
  assert_int_equal(in.paused, 0);
  assert_true(in.pauses == 1);
}

/* One oversized body alone stops reading, however little else is held, until it is gone. */
static void test_oversized(void **state) {
  (void)state;
  ctxd__intake_t in;
  ctxd__intake_init(&in, 1 * MIB, 64 * MIB);
  ctxd__intake_hold(&in, 10);
  ctxd__intake_hold(&in, MIB); /* at the limit: not oversized */
  assert_int_equal(ctxd__intake_full(&in), 0);
  ctxd__intake_hold(&in, MIB + 1);
  assert_int_equal(ctxd__intake_full(&in), 1);
  assert_int_equal(ctxd__intake_pace(&in), CTXD__INTAKE_PAUSE);
  /* the small ones leaving do not resume it */
  ctxd__intake_release(&in, 10);
  ctxd__intake_release(&in, MIB);
  assert_int_equal(ctxd__intake_pace(&in), CTXD__INTAKE_KEEP);
  ctxd__intake_release(&in, MIB + 1);
  assert_true(in.held == 0 && in.oversized == 0);
  assert_int_equal(ctxd__intake_pace(&in), CTXD__INTAKE_RESUME);
  /* a released body counts for nothing: releasing it again changes nothing */
  ctxd__intake_release(&in, 0);
  assert_true(in.held == 0 && in.oversized == 0);
}

/* Each stop is counted, for ctxd_broker_read_paused_total. */
static void test_pauses_counted(void **state) {
  (void)state;
  ctxd__intake_t in;
  ctxd__intake_init(&in, 1 * MIB, 2 * MIB);
  for (int i = 0; i < 3; i++) {
    ctxd__intake_hold(&in, 2 * MIB);
    assert_int_equal(ctxd__intake_pace(&in), CTXD__INTAKE_PAUSE);
    ctxd__intake_release(&in, 2 * MIB);
    assert_int_equal(ctxd__intake_pace(&in), CTXD__INTAKE_RESUME);
  }
  assert_true(in.pauses == 3);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_bytes_bound),
      cmocka_unit_test(test_oversized),
      cmocka_unit_test(test_pauses_counted),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
