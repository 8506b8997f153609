/* Unit tests for runtime/inspect.c: which endpoint each queue.declare-ok answers (the
 * replies come back in the order the declares went out), a refused declare, and figures
 * that count as unknown once older than two sample intervals. */
#include "testsupport.h"

#include <string.h>

#include "inspect.h"
#include "series.h"

static ctxd__endpoint_t endpoint(void) {
  ctxd__endpoint_t ep;
  memset(&ep, 0, sizeof ep);
  ep.queue_depth = ep.consumers = -1;
  return ep;
}

static void replies_in_order_sum_per_endpoint(void **state) {
  (void)state;
  ctxd__inspect_t in = {0};
  ctxd__endpoint_t a = endpoint(), ingest = endpoint();
  /* the ingest endpoint reads several queues: its figures are their sums */
  assert_int_equal(ctxd__inspect_sent(&in, &a), 0);
  for (int i = 0; i < 20; i++) assert_int_equal(ctxd__inspect_sent(&in, &ingest), 0); /* grows the ring */
  ctxd__inspect_answered(&in, 5, 1, 1000);
  assert_int_equal(a.queue_depth, 5);
  assert_int_equal(a.consumers, 1);
  assert_int_equal(a.inspected_at, 1000);
  for (int i = 0; i < 19; i++) ctxd__inspect_answered(&in, 2, 1, 1100);
  assert_int_equal(ingest.queue_depth, -1); /* not before its last reply */
  ctxd__inspect_answered(&in, 2, 1, 1200);
  assert_int_equal(ingest.queue_depth, 40);
  assert_int_equal(ingest.consumers, 20);
  assert_int_equal(ingest.inspecting, 0);
  assert_int_equal(in.n, 0);
  ctxd__inspect_answered(&in, 9, 9, 1300); /* a reply nothing waits for changes nothing */
  assert_int_equal(a.queue_depth, 5);
  ctxd__inspect_free(&in);
}

static void a_refused_declare_unknowns_only_its_endpoint(void **state) {
  (void)state;
  ctxd__inspect_t in = {.open = 1};
  ctxd__endpoint_t a = endpoint(), b = endpoint(), c = endpoint();
  ctxd__inspect_sent(&in, &a);
  ctxd__inspect_sent(&in, &b);
  ctxd__inspect_sent(&in, &c);
  ctxd__inspect_answered(&in, 3, 1, 1000);
  b.queue_depth = 8; /* b's figures of an earlier round */
  b.consumers = 1;
  c.queue_depth = 4;
  ctxd__inspect_refused(&in); /* b's queue is missing: c's declare was discarded */
  assert_int_equal(in.open, 0);
  assert_int_equal(in.n, 0);
  assert_int_equal(a.queue_depth, 3);
  assert_int_equal(b.queue_depth, -1);
  assert_int_equal(b.consumers, -1);
  assert_int_equal(c.queue_depth, 4); /* kept: it asks again at the next round */
  assert_int_equal(b.inspecting + c.inspecting, 0);
  /* the next round's replies are matched afresh */
  ctxd__inspect_sent(&in, &c);
  ctxd__inspect_answered(&in, 6, 0, 2000);
  assert_int_equal(c.queue_depth, 6);
  ctxd__inspect_free(&in);
}

static void figures_older_than_two_intervals_are_unknown(void **state) {
  (void)state;
  ctxd__inspect_t in = {0};
  ctxd__endpoint_t a = endpoint();
  int64_t depth, consumers;
  ctxd__inspect_figures(&a, 500, &depth, &consumers);
  assert_int_equal(depth, -1); /* never told */
  ctxd__inspect_sent(&in, &a);
  ctxd__inspect_answered(&in, 7, 2, 10000);
  ctxd__inspect_figures(&a, 10000 + 2 * CTXD__SERIES_INTERVAL_MS, &depth, &consumers);
  assert_int_equal(depth, 7);
  assert_int_equal(consumers, 2);
  ctxd__inspect_figures(&a, 10000 + 2 * CTXD__SERIES_INTERVAL_MS + 1, &depth, &consumers);
  assert_int_equal(depth, -1);
  assert_int_equal(consumers, -1);
  ctxd__inspect_free(&in);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(replies_in_order_sum_per_endpoint),
      cmocka_unit_test(a_refused_declare_unknowns_only_its_endpoint),
      cmocka_unit_test(figures_older_than_two_intervals_are_unknown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
