/* The delay line of the test stack's network links (tests/stack/linkq.h). */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>

#include <cmocka.h>

#include "linkq.h"

/* Takes the chunk due at now and checks its bytes; done with it at once. */
static void take_expect(ctxd_linkq_t *q, uint64_t now, const char *want) {
  ctxd_linkq_chunk_t *c = ctxd_linkq_take(q, now);
  assert_non_null(c);
  assert_int_equal(c->len, strlen(want));
  assert_memory_equal(c->data, want, c->len);
  ctxd_linkq_done(q, c);
}

static void held_until_due(void **state) {
  (void)state;
  ctxd_linkq_t q;
  ctxd_linkq_init(&q, 100, 10);
  assert_int_equal(ctxd_linkq_wait_ms(&q, 0), -1);
  assert_int_equal(ctxd_linkq_push(&q, "abc", 3, 1000, 200), 0);
  assert_int_equal(ctxd_linkq_wait_ms(&q, 1000), 200);
  assert_int_equal(ctxd_linkq_wait_ms(&q, 1150), 50);
  assert_null(ctxd_linkq_take(&q, 1199));
  take_expect(&q, 1200, "abc");
  assert_int_equal(ctxd_linkq_wait_ms(&q, 1200), -1);
  assert_int_equal(q.held, 0);
}

/* A delay made shorter does not let later bytes overtake earlier ones. */
static void order_kept_when_the_delay_shrinks(void **state) {
  (void)state;
  ctxd_linkq_t q;
  ctxd_linkq_init(&q, 100, 10);
  assert_int_equal(ctxd_linkq_push(&q, "first", 5, 0, 500), 0);
  assert_int_equal(ctxd_linkq_push(&q, "second", 6, 10, 0), 0);
  assert_null(ctxd_linkq_take(&q, 100)); /* "second" is due, but waits behind "first" */
  assert_int_equal(ctxd_linkq_wait_ms(&q, 100), 400);
  take_expect(&q, 500, "first");
  take_expect(&q, 500, "second");
  assert_null(ctxd_linkq_take(&q, 500));
}

/* Bytes taken still count until written: the reader stops at the high mark and reads
 * again at the low one. */
static void marks_count_bytes_in_flight(void **state) {
  (void)state;
  ctxd_linkq_t q;
  ctxd_linkq_init(&q, 10, 4);
  assert_int_equal(ctxd_linkq_push(&q, "123456", 6, 0, 0), 0);
  assert_false(ctxd_linkq_full(&q));
  assert_int_equal(ctxd_linkq_push(&q, "7890", 4, 0, 0), 0);
  assert_true(ctxd_linkq_full(&q));
  ctxd_linkq_chunk_t *a = ctxd_linkq_take(&q, 0), *b = ctxd_linkq_take(&q, 0);
  assert_non_null(a);
  assert_non_null(b);
  assert_true(ctxd_linkq_full(&q));
  assert_false(ctxd_linkq_roomy(&q));
  ctxd_linkq_done(&q, a);
  assert_false(ctxd_linkq_full(&q));
  assert_true(ctxd_linkq_roomy(&q));
  ctxd_linkq_done(&q, b);
  assert_int_equal(q.held, 0);
}

static void freed_with_chunks_queued(void **state) {
  (void)state;
  ctxd_linkq_t q;
  ctxd_linkq_init(&q, 100, 10);
  assert_int_equal(ctxd_linkq_push(&q, "a", 1, 0, 50), 0);
  assert_int_equal(ctxd_linkq_push(&q, "b", 1, 0, 50), 0);
  ctxd_linkq_free(&q);
  assert_int_equal(q.held, 0);
  assert_null(ctxd_linkq_take(&q, 100));
}

static void delay_file_text(void **state) {
  (void)state;
  uint64_t ms = 7;
  assert_int_equal(ctxd_linkq_parse_delay("200\n", &ms), 0);
  assert_int_equal(ms, 200);
  assert_int_equal(ctxd_linkq_parse_delay("  0 ", &ms), 0);
  assert_int_equal(ms, 0);
  assert_int_equal(ctxd_linkq_parse_delay("600000", &ms), 0);
  const char *bad[] = {"", "\n", "-5", "12ms", "600001", "1e3", "99999999999999999999999"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    ms = 7;
    assert_int_equal(ctxd_linkq_parse_delay(bad[i], &ms), -EINVAL);
    assert_int_equal(ms, 7);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(held_until_due),
      cmocka_unit_test(order_kept_when_the_delay_shrinks),
      cmocka_unit_test(marks_count_bytes_in_flight),
      cmocka_unit_test(freed_with_chunks_queued),
      cmocka_unit_test(delay_file_text),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
