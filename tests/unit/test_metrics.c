/* Unit tests for runtime/metrics.c: histograms and the exact Prometheus text it writes. */
#include "testsupport.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "metrics.h"

static void counters_with_help_and_labels(void **state) {
  (void)state;
  ctxd__prom_t p = {0};
  assert_int_equal(ctxd__prom_help_type(&p, "ctxd_messages_total", "Messages handled.", "counter"), 0);
  assert_int_equal(ctxd__prom_counter(&p, "ctxd_messages_total",
                                      (const char *const[]){"endpoint", "orders", "outcome", "ack", NULL},
                                      12),
                   0);
  assert_int_equal(ctxd__prom_counter(&p, "ctxd_messages_total", NULL, UINT64_MAX), 0);
  /* An empty label list writes no braces either. */
  assert_int_equal(ctxd__prom_counter(&p, "ctxd_messages_total", (const char *const[]){NULL}, 0), 0);
  assert_string_equal(p.buf, "# HELP ctxd_messages_total Messages handled.\n"
                             "# TYPE ctxd_messages_total counter\n"
                             "ctxd_messages_total{endpoint=\"orders\",outcome=\"ack\"} 12\n"
                             "ctxd_messages_total 18446744073709551615\n"
                             "ctxd_messages_total 0\n");
  assert_int_equal(p.len, strlen(p.buf));
  ctxd__prom_free(&p);
  assert_null(p.buf);
  assert_int_equal(p.len, 0);
  assert_int_equal(p.cap, 0);
}

static void gauges_escape_labels_and_help(void **state) {
  (void)state;
  ctxd__prom_t p = {0};
  assert_int_equal(ctxd__prom_help_type(&p, "ctxd_up", "A \"quoted\" back\\slash\nsecond line", "gauge"), 0);
  assert_int_equal(
      ctxd__prom_gauge(&p, "ctxd_up", (const char *const[]){"path", "C:\\dir \"x\"\nend", NULL}, 0.5), 0);
  assert_int_equal(ctxd__prom_gauge(&p, "ctxd_up", NULL, -3), 0);
  assert_int_equal(ctxd__prom_gauge(&p, "ctxd_up", NULL, 1e21), 0);
  assert_int_equal(ctxd__prom_gauge(&p, "ctxd_up", NULL, 0.1), 0);
  assert_int_equal(ctxd__prom_gauge(&p, "ctxd_up", NULL, 100000), 0);
  assert_int_equal(ctxd__prom_gauge(&p, "ctxd_up", NULL, 1234567), 0);
  assert_int_equal(ctxd__prom_gauge(&p, "ctxd_up", NULL, 0.0001), 0);
  assert_int_equal(ctxd__prom_gauge(&p, "ctxd_up", NULL, 0.00001), 0);
  assert_int_equal(ctxd__prom_gauge(&p, "ctxd_up", NULL, INFINITY), 0);
  assert_int_equal(ctxd__prom_gauge(&p, "ctxd_up", NULL, -INFINITY), 0);
  assert_int_equal(ctxd__prom_gauge(&p, "ctxd_up", NULL, NAN), 0);
  /* HELP escapes backslash and newline only; label values also the double quote. Numbers
   * as Go's FormatFloat(v, 'g', -1, 64) prints them, like the official clients. */
  assert_string_equal(p.buf, "# HELP ctxd_up A \"quoted\" back\\\\slash\\nsecond line\n"
                             "# TYPE ctxd_up gauge\n"
                             "ctxd_up{path=\"C:\\\\dir \\\"x\\\"\\nend\"} 0.5\n"
                             "ctxd_up -3\n"
                             "ctxd_up 1e+21\n"
                             "ctxd_up 0.1\n"
                             "ctxd_up 100000\n"
                             "ctxd_up 1.234567e+06\n"
                             "ctxd_up 0.0001\n"
                             "ctxd_up 1e-05\n"
                             "ctxd_up +Inf\n"
                             "ctxd_up -Inf\n"
                             "ctxd_up NaN\n");
  ctxd__prom_free(&p);
}

static void histogram_buckets_are_cumulative(void **state) {
  (void)state;
  ctxd__histogram_t h;
  ctxd__histogram_init(&h, &ctxd__buckets_seconds);
  /* Bounds are inclusive: 0.0005 and 0.25 land in their own buckets. */
  ctxd__histogram_observe(&h, 0.0005);
  ctxd__histogram_observe(&h, 0.25);
  ctxd__histogram_observe(&h, 0.75);
  ctxd__histogram_observe(&h, 20);
  ctxd__prom_t p = {0};
  assert_int_equal(
      ctxd__prom_histogram(&p, "ctxd_handler_seconds", (const char *const[]){"endpoint", "orders", NULL}, &h),
      0);
  assert_string_equal(p.buf, "ctxd_handler_seconds_bucket{endpoint=\"orders\",le=\"0.0005\"} 1\n"
                             "ctxd_handler_seconds_bucket{endpoint=\"orders\",le=\"0.001\"} 1\n"
                             "ctxd_handler_seconds_bucket{endpoint=\"orders\",le=\"0.0025\"} 1\n"
                             "ctxd_handler_seconds_bucket{endpoint=\"orders\",le=\"0.005\"} 1\n"
                             "ctxd_handler_seconds_bucket{endpoint=\"orders\",le=\"0.01\"} 1\n"
                             "ctxd_handler_seconds_bucket{endpoint=\"orders\",le=\"0.025\"} 1\n"
                             "ctxd_handler_seconds_bucket{endpoint=\"orders\",le=\"0.05\"} 1\n"
                             "ctxd_handler_seconds_bucket{endpoint=\"orders\",le=\"0.1\"} 1\n"
                             "ctxd_handler_seconds_bucket{endpoint=\"orders\",le=\"0.25\"} 2\n"
                             "ctxd_handler_seconds_bucket{endpoint=\"orders\",le=\"0.5\"} 2\n"
                             "ctxd_handler_seconds_bucket{endpoint=\"orders\",le=\"1\"} 3\n"
                             "ctxd_handler_seconds_bucket{endpoint=\"orders\",le=\"2.5\"} 3\n"
                             "ctxd_handler_seconds_bucket{endpoint=\"orders\",le=\"5\"} 3\n"
                             "ctxd_handler_seconds_bucket{endpoint=\"orders\",le=\"10\"} 3\n"
                             "ctxd_handler_seconds_bucket{endpoint=\"orders\",le=\"+Inf\"} 4\n"
                             "ctxd_handler_seconds_sum{endpoint=\"orders\"} 21.0005\n"
                             "ctxd_handler_seconds_count{endpoint=\"orders\"} 4\n");
  ctxd__prom_free(&p);
}

static void empty_histogram_has_every_bucket(void **state) {
  (void)state;
  ctxd__histogram_t h;
  ctxd__histogram_init(&h, &ctxd__buckets_seconds);
  ctxd__prom_t p = {0};
  assert_int_equal(ctxd__prom_help_type(&p, "lat", "Latency.", "histogram"), 0);
  assert_int_equal(ctxd__prom_histogram(&p, "lat", NULL, &h), 0);
  const char *s = p.buf;
  size_t lines = 0;
  for (; *s; s++) lines += *s == '\n';
  assert_int_equal(lines, 2 + 15 + 2);
  assert_non_null(strstr(p.buf, "\nlat_bucket{le=\"+Inf\"} 0\nlat_sum 0\nlat_count 0\n"));
  ctxd__prom_free(&p);
}

static void size_buckets(void **state) {
  (void)state;
  ctxd__histogram_t h;
  ctxd__histogram_init(&h, &ctxd__buckets_sizes);
  ctxd__histogram_observe(&h, 1);
  ctxd__histogram_observe(&h, 3);
  ctxd__histogram_observe(&h, 1024);
  ctxd__histogram_observe(&h, 5000);
  ctxd__histogram_observe(&h, NAN); /* only in +Inf; the sum becomes NaN */
  assert_int_equal(h.count, 5);
  ctxd__prom_t p = {0};
  assert_int_equal(ctxd__prom_histogram(&p, "ctxd_batch_size", NULL, &h), 0);
  assert_string_equal(p.buf, "ctxd_batch_size_bucket{le=\"1\"} 1\n"
                             "ctxd_batch_size_bucket{le=\"2\"} 1\n"
                             "ctxd_batch_size_bucket{le=\"4\"} 2\n"
                             "ctxd_batch_size_bucket{le=\"8\"} 2\n"
                             "ctxd_batch_size_bucket{le=\"16\"} 2\n"
                             "ctxd_batch_size_bucket{le=\"32\"} 2\n"
                             "ctxd_batch_size_bucket{le=\"64\"} 2\n"
                             "ctxd_batch_size_bucket{le=\"128\"} 2\n"
                             "ctxd_batch_size_bucket{le=\"256\"} 2\n"
                             "ctxd_batch_size_bucket{le=\"512\"} 2\n"
                             "ctxd_batch_size_bucket{le=\"1024\"} 3\n"
                             "ctxd_batch_size_bucket{le=\"+Inf\"} 5\n"
                             "ctxd_batch_size_sum NaN\n"
                             "ctxd_batch_size_count 5\n");
  ctxd__prom_free(&p);
  /* init empties a used histogram. */
  ctxd__histogram_init(&h, &ctxd__buckets_sizes);
  assert_int_equal(h.count, 0);
  assert_int_equal(h.counts[h.buckets->n], 0);
}

static void raw_text_grows_the_buffer(void **state) {
  (void)state;
  ctxd__prom_t p = {0};
  assert_int_equal(ctxd__prom_append(&p, "ok", 2), 0);
  assert_string_equal(p.buf, "ok");
  for (int i = 0; i < 1000; i++) assert_int_equal(ctxd__prom_printf(&p, " %d", i), 0);
  assert_int_equal(ctxd__prom_append(&p, "", 0), 0);
  assert_true(p.len < p.cap);
  assert_int_equal(strlen(p.buf), p.len);
  assert_memory_equal(p.buf + p.len - 8, " 998 999", 8);
  ctxd__prom_free(&p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(counters_with_help_and_labels),
      cmocka_unit_test(gauges_escape_labels_and_help),
      cmocka_unit_test(histogram_buckets_are_cumulative),
      cmocka_unit_test(empty_histogram_has_every_bucket),
      cmocka_unit_test(size_buckets),
      cmocka_unit_test(raw_text_grows_the_buffer),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
