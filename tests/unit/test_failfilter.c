/* The pure pieces of the failed-message store: a filter as SQL, a retry's headers, the
 * fault id of an ingested copy and the endpoint of its queue. */
#include "testsupport.h"

#include <string.h>

#include <ctxd/errno.h>

#include "errors_cli.h"
#include "failstore.h"
#include "ingest.h"

static void filter_as_sql(void **state) {
  (void)state;
  ctxd__failsql_t q;
  char err[256];
  assert_int_equal(ctxd__failfilter_sql(NULL, &q, err, sizeof err), 0);
  assert_string_equal(q.where, "status IN ('unresolved', 'retry_requested')");
  assert_int_equal(q.n, 0);
  assert_int_equal(q.limit, 100);
  ctxd__failfilter_t all = {.status = "all", .limit = 5000, .offset = 7};
  assert_int_equal(ctxd__failfilter_sql(&all, &q, err, sizeof err), 0);
  assert_string_equal(q.where, "true");
  assert_int_equal(q.limit, 1000);
  assert_int_equal(q.offset, 7);
  ctxd__failfilter_t f = {.endpoint = "inv",
                          .message_type = "Ns:T",
                          .exception_type = "X",
                          .message_id = "00000000-0000-4000-8000-000000000001",
                          .group = "g",
                          .since = "2026-01-01",
                          .until = "2026-02-01",
                          .status = "archived",
                          .limit = 3};
  assert_int_equal(ctxd__failfilter_sql(&f, &q, err, sizeof err), 0);
  assert_string_equal(q.where, "endpoint = $1 AND message_type = $2 AND exception_type = $3 AND message_id = "
                               "$4::uuid AND group_id = $5 AND last_failed_at >= $6::timestamptz AND "
                               "last_failed_at < $7::timestamptz AND status = $8");
  assert_int_equal(q.n, 8);
  assert_string_equal(q.params[0], "inv");
  assert_string_equal(q.params[7], "archived");
  assert_int_equal(q.limit, 3);
  ctxd__failfilter_t open = {.group = "g", .status = "open"};
  assert_int_equal(ctxd__failfilter_sql(&open, &q, err, sizeof err), 0);
  assert_string_equal(q.where, "group_id = $1 AND status IN ('unresolved', 'retry_requested')");

  ctxd__failfilter_t bad = {.status = "lost"};
  assert_int_equal(ctxd__failfilter_sql(&bad, &q, err, sizeof err), CTXD_EINVAL);
  assert_non_null(strstr(err, "status 'lost'"));
  bad = (ctxd__failfilter_t){.message_id = "nope"};
  assert_int_equal(ctxd__failfilter_sql(&bad, &q, err, sizeof err), CTXD_EINVAL);
  assert_string_equal(err, "message id 'nope' is not a UUID");
  bad = (ctxd__failfilter_t){.offset = -1};
  assert_int_equal(ctxd__failfilter_sql(&bad, &q, err, sizeof err), CTXD_EINVAL);
}

/* A retry carries the message's own headers, not what its failures added. */
static void retry_headers_leave_the_fault_out(void **state) {
  (void)state;
  json_t *stored =
      json_pack("{s:s,s:s,s:s,s:i,s:s,s:s,s:s,s:s,s:i}", "MT-Fault-Message", "x", "MT-Reason", "fault",
                "mt-host-machinename", "m", "MT-Redelivery-Count", 2, "ctxd-Fault-Id", "f", "ctxd-Retry-Of",
                "1", "traceparent", "tp", "Tenant", "t1", "ctxd-Retry-Count", 1);
  json_t *h = ctxd__failstore_retry_headers(stored, 42, 2);
  assert_non_null(h);
  assert_int_equal(json_object_size(h), 4);
  assert_string_equal(json_string_value(json_object_get(h, "traceparent")), "tp");
  assert_string_equal(json_string_value(json_object_get(h, "Tenant")), "t1");
  assert_string_equal(json_string_value(json_object_get(h, CTXD__RETRY_OF_HEADER)), "42");
  assert_int_equal(json_integer_value(json_object_get(h, CTXD__RETRY_COUNT_HEADER)), 2);
  json_decref(h);
  json_decref(stored);
  h = ctxd__failstore_retry_headers(NULL, 1, 1); /* stored headers that did not parse */
  assert_int_equal(json_object_size(h), 2);
  json_decref(h);
}

/* The copy's own fault id when it has one; else one derived from what identifies the
 * copy, the same each time, different for another failure of the same message. */
static void fault_id_of_a_copy(void **state) {
  (void)state;
  char a[37], b[37], c[37];
  json_t *own = json_pack("{s:s}", "ctxd-Fault-Id", "6F9619FF-8B86-D011-B42D-00C04FC964FF");
  ctxd__ingest_fault_id(own, "inv", "00000000-0000-4000-8000-000000000001", 10, a);
  assert_string_equal(a, "6f9619ff-8b86-d011-b42d-00c04fc964ff");
  json_t *mt = json_pack("{s:s}", "MT-Fault-Timestamp", "2026-01-02T03:04:05.1234567Z");
  ctxd__ingest_fault_id(mt, "inv", "00000000-0000-4000-8000-000000000001", 10, a);
  ctxd__ingest_fault_id(mt, "inv", "00000000-0000-4000-8000-000000000001", 10, b);
  assert_string_equal(a, b);
  json_object_set_new(mt, "MT-Fault-Timestamp", json_string("2026-01-02T03:04:06.0000000Z"));
  ctxd__ingest_fault_id(mt, "inv", "00000000-0000-4000-8000-000000000001", 10, c);
  assert_string_not_equal(a, c);
  ctxd__ingest_fault_id(mt, "other", "00000000-0000-4000-8000-000000000001", 10, b);
  assert_string_not_equal(b, c);
  /* a fault id that is no UUID does not count */
  json_object_set_new(mt, "ctxd-Fault-Id", json_string("nope"));
  ctxd__ingest_fault_id(mt, "inv", "00000000-0000-4000-8000-000000000001", 10, b);
  assert_string_equal(b, c);
  json_decref(own);
  json_decref(mt);
}

static void endpoint_of_a_queue(void **state) {
  (void)state;
  char ep[16];
  assert_int_equal(ctxd__ingest_endpoint_of("inventory_error", ep, sizeof ep), 0);
  assert_string_equal(ep, "inventory");
  assert_int_equal(ctxd__ingest_endpoint_of("inventory_error_store", ep, sizeof ep), 0);
  assert_string_equal(ep, "inventory");
  assert_int_equal(ctxd__ingest_endpoint_of("inventory", ep, sizeof ep), CTXD_EINVAL);
  assert_int_equal(ctxd__ingest_endpoint_of("_error", ep, sizeof ep), CTXD_EINVAL);
  assert_int_equal(ctxd__ingest_endpoint_of("a-rather-long-name_error", ep, sizeof ep), CTXD_ETOOBIG);
}

static void cli_options_make_the_filter(void **state) {
  (void)state;
  ctxd__cli_t cli = {.endpoint = "e", .group = "g", .status = "all", .limit = 5, .offset = 10};
  ctxd__failfilter_t f = ctxd__errors_cli_filter(&cli);
  assert_string_equal(f.endpoint, "e");
  assert_string_equal(f.group, "g");
  assert_string_equal(f.status, "all");
  assert_null(f.message_type);
  assert_int_equal(f.limit, 5);
  assert_int_equal(f.offset, 10);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(filter_as_sql),
      cmocka_unit_test(retry_headers_leave_the_fault_out),
      cmocka_unit_test(fault_id_of_a_copy),
      cmocka_unit_test(endpoint_of_a_queue),
      cmocka_unit_test(cli_options_make_the_filter),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
