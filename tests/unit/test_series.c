/* Unit tests for runtime/series.c: rates and handler-time quantiles from successive
 * samples, the ring of the last 10 minutes, and Prometheus-style quantiles. */
#include "testsupport.h"

#include <math.h>
#include <string.h>

#include "series.h"

static ctxd__sample_t sample_at(int64_t t_ms, uint64_t handled, uint64_t errored) {
  ctxd__sample_t s = {
      .t_ms = t_ms, .mono_ms = t_ms, .handled = handled, .errored = errored, .queue_depth = 7};
  ctxd__histogram_init(&s.handler, &ctxd__buckets_seconds);
  return s;
}

static void rates_from_differences(void **state) {
  (void)state;
  ctxd__series_t set = {0};
  ctxd__ring_t *r = ctxd__series_ring(&set, "inventory");
  assert_non_null(r);
  assert_ptr_equal(ctxd__series_ring(&set, "inventory"), r);
  assert_ptr_equal(ctxd__series_find(&set, "inventory"), r);
  assert_null(ctxd__series_find(&set, "other"));
  ctxd__sample_t s = sample_at(1000000, 100, 3);
  ctxd__ring_add(r, &s); /* the baseline: no point yet */
  assert_int_equal(r->n, 0);
  s = sample_at(1002000, 125, 5);
  for (int i = 0; i < 10; i++) ctxd__histogram_observe(&s.handler, 0.002); /* in (1 ms, 2.5 ms] */
  ctxd__ring_add(r, &s);
  assert_int_equal(r->n, 1);
  const ctxd__point_t *p = ctxd__ring_at(r, 0);
  assert_int_equal(p->t, 1002);
  assert_true(fabs(p->rate - 12.5) < 1e-9);
  assert_true(fabs(p->errors - 1.0) < 1e-9);
  assert_int_equal(p->queue_depth, 7);
  assert_true(p->p50_ms > 1.0 && p->p50_ms <= 2.5);
  assert_true(p->p99_ms >= p->p50_ms && p->p99_ms <= 2.5);
  /* nothing handled since: rate 0 and no handler time; the histogram stays cumulative */
  ctxd__sample_t quiet = s;
  quiet.t_ms += 2000;
  quiet.mono_ms += 2000;
  ctxd__ring_add(r, &quiet);
  p = ctxd__ring_at(r, 1);
  assert_true(p->rate == 0 && p->p50_ms == 0 && p->p99_ms == 0);
  /* counters that went back (reset) count from zero, not as a huge difference */
  ctxd__sample_t reset = sample_at(quiet.t_ms + 2000, 4, 0);
  ctxd__ring_add(r, &reset);
  assert_true(fabs(ctxd__ring_at(r, 2)->rate - 2.0) < 1e-9);
  /* a sample no later than the last is only a baseline */
  ctxd__ring_add(r, &reset);
  assert_int_equal(r->n, 3);
  /* the wall clock set back an hour: the interval is still the monotonic clock's 2 s */
  ctxd__sample_t back = sample_at(reset.t_ms - 3600000, 8, 0);
  back.mono_ms = reset.mono_ms + 2000;
  ctxd__ring_add(r, &back);
  assert_int_equal(r->n, 4);
  assert_true(fabs(ctxd__ring_at(r, 3)->rate - 2.0) < 1e-9);
  ctxd__series_free(&set);
  assert_int_equal(set.n, 0);
}

static void ring_keeps_the_last_ten_minutes(void **state) {
  (void)state;
  ctxd__series_t set = {0};
  ctxd__ring_t *r = ctxd__series_ring(&set, "e");
  for (int i = 0; i <= CTXD__SERIES_POINTS + 50; i++) {
    ctxd__sample_t s = sample_at((int64_t)i * CTXD__SERIES_INTERVAL_MS, (uint64_t)i * 2, 0);
    ctxd__ring_add(r, &s);
  }
  assert_int_equal(r->n, CTXD__SERIES_POINTS);
  /* oldest first: points 51 .. 350 (each at its sample's time) */
  assert_int_equal(ctxd__ring_at(r, 0)->t, 51 * CTXD__SERIES_INTERVAL_MS / 1000);
  assert_int_equal(ctxd__ring_at(r, CTXD__SERIES_POINTS - 1)->t,
                   (CTXD__SERIES_POINTS + 50) * CTXD__SERIES_INTERVAL_MS / 1000);
  for (size_t i = 1; i < r->n; i++) assert_true(ctxd__ring_at(r, i)->t > ctxd__ring_at(r, i - 1)->t);
  assert_true(fabs(ctxd__ring_at(r, 0)->rate - 1.0) < 1e-9);
  ctxd__series_free(&set);
}

static void quantiles_interpolate_within_buckets(void **state) {
  (void)state;
  static const double le[] = {1, 2, 4};
  static const ctxd__buckets_t b = {le, 3};
  ctxd__histogram_t h;
  ctxd__histogram_init(&h, &b);
  assert_true(ctxd__histogram_quantile(&h, 0.5) == 0);          /* empty */
  for (int i = 0; i < 4; i++) ctxd__histogram_observe(&h, 0.5); /* (0, 1] */
  for (int i = 0; i < 4; i++) ctxd__histogram_observe(&h, 3);   /* (2, 4] */
  /* rank 4 of 8: the end of the first bucket */
  assert_true(fabs(ctxd__histogram_quantile(&h, 0.5) - 1.0) < 1e-9);
  /* rank 6: half-way through (2, 4] */
  assert_true(fabs(ctxd__histogram_quantile(&h, 0.75) - 3.0) < 1e-9);
  /* rank 1: a quarter through (0, 1] */
  assert_true(fabs(ctxd__histogram_quantile(&h, 0.125) - 0.25) < 1e-9);
  /* the +Inf bucket answers the largest finite bound */
  for (int i = 0; i < 100; i++) ctxd__histogram_observe(&h, 60);
  assert_true(fabs(ctxd__histogram_quantile(&h, 0.99) - 4.0) < 1e-9);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(rates_from_differences),
      cmocka_unit_test(ring_keeps_the_last_ten_minutes),
      cmocka_unit_test(quantiles_interpolate_within_buckets),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
