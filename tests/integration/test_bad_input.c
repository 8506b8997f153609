/* The bad-input catalog: every class of bad input, published to a running host among good
 * messages. Each ends where DESIGN.md says (<queue>_error with a reason, <queue>_skipped,
 * or deduplicated), the host keeps consuming, and nothing else is lost. */
#include "hostfixture.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define V1 "Dodo.DataCatalog.Contracts.Products.v1:MaterialType"
#define MT "application/vnd.masstransit+json"
#define GOOD                                                                                                 \
  "{\"id\":\"6f1e3a52-3a55-4d47-9a0e-2b1c6f3d9a10\",\"version\":1,\"countryId\":643,"                        \
  "\"departmentId\":\"0d5b0000-8f0e-4c2a-b2f1-1a2b3c4d5e6f\",\"name\":\"Flour\",\"category\":1,"             \
  "\"basicUnitOfMeasure\":5,\"isRemoved\":false}"

static void envelope(char *buf, size_t len, int n, const char *type, const char *message) {
  snprintf(
      buf, len,
      "{\"messageId\":\"00000000-0000-4000-8000-%012d\",\"messageType\":[\"urn:message:%s\"],\"message\":%s}",
      n, type, message);
}

static void send_raw(ctxt_world_t *w, const char *content_type, const char *body) {
  ctxt_amqp_publish(w->amqp, w->endpoint, content_type, body, NULL, NULL);
}

static void send_good(ctxt_world_t *w, int n) {
  char body[2048];
  envelope(body, sizeof body, n, V1, GOOD);
  send_raw(w, MT, body);
}

static void every_class_of_bad_input(void **state) {
  ctxt_world_t *w = *state;
  snprintf(w->type, sizeof w->type, V1);
  /* one worker: the copies reach _error in the order sent */
  snprintf(w->endpoint_settings, sizeof w->endpoint_settings, "\"workers\": 1");
  ctxt_host_start(w, NULL);
  char body[4096];
  static const char *const reasons[] = {
      "malformed JSON at line 1",     "unsupported content type 'text/plain'",
      "missing message id",           "missing message type",
      "exceeds the limit of 1048576", "nesting deeper than 64",
      "invalid UTF-8 at byte",        "message.Category: expected an integer, got a string",
  };

  send_good(w, 1);
  send_raw(w, MT, "{\"messageId\": oops");
  send_raw(w, "text/plain", "hello");
  send_raw(w, MT, "{\"messageType\":[\"urn:message:" V1 "\"],\"message\":" GOOD "}");
  send_raw(w, MT, "{\"messageId\":\"00000000-0000-4000-8000-000000000099\",\"message\":" GOOD "}");
  send_good(w, 2);
  /* over the size limit: 1 MiB of padding inside a valid envelope */
  size_t big = (1u << 20) + 100;
  char *huge = malloc(big + 256);
  int n =
      snprintf(huge, 256,
               "{\"messageId\":\"00000000-0000-4000-8000-000000000098\",\"messageType\":[\"urn:message:" V1
               "\"],\"message\":{\"pad\":\"");
  memset(huge + n, 'x', big);
  snprintf(huge + n + big, 256, "\"}}");
  send_raw(w, MT, huge);
  free(huge);
  /* deeper than the nesting limit */
  char deep[512];
  n = snprintf(deep, sizeof deep,
               "{\"messageId\":\"00000000-0000-4000-8000-000000000097\",\"messageType\":[\"urn:message:" V1
               "\"],\"message\":");
  for (int i = 0; i < 70; i++) deep[n++] = '[';
  for (int i = 0; i < 70; i++) deep[n++] = ']';
  snprintf(deep + n, sizeof deep - (size_t)n, "}");
  send_raw(w, MT, deep);
  /* invalid UTF-8 inside a string */
  envelope(body, sizeof body, 96, V1, "{\"name\":\"\xff\xfe\"}");
  send_raw(w, MT, body);
  /* a field of the wrong type */
  envelope(body, sizeof body, 95, V1,
           "{\"id\":\"6f1e3a52-3a55-4d47-9a0e-2b1c6f3d9a10\",\"version\":1,\"countryId\":643,"
           "\"departmentId\":\"0d5b0000-8f0e-4c2a-b2f1-1a2b3c4d5e6f\",\"name\":\"Flour\","
           "\"category\":\"abc\",\"basicUnitOfMeasure\":5,\"isRemoved\":false}");
  send_raw(w, MT, body);
  /* an unknown type, and an unknown version of a known one: nobody here consumes them */
  envelope(body, sizeof body, 94, "Nobody.v1:Thing", "{}");
  send_raw(w, MT, body);
  envelope(body, sizeof body, 93, "Dodo.DataCatalog.Contracts.Products.v9:MaterialType", GOOD);
  send_raw(w, MT, body);
  /* the same message id with another body: the first one wins */
  envelope(body, sizeof body, 3, V1, GOOD);
  send_raw(w, MT, body);
  envelope(body, sizeof body, 3, V1,
           "{\"id\":\"6f1e3a52-3a55-4d47-9a0e-2b1c6f3d9a10\",\"version\":2,\"countryId\":643,"
           "\"departmentId\":\"0d5b0000-8f0e-4c2a-b2f1-1a2b3c4d5e6f\",\"name\":\"Other\","
           "\"category\":1,\"basicUnitOfMeasure\":5,\"isRemoved\":false}");
  send_raw(w, MT, body);
  send_good(w, 4);

  char err[128], skipped[128];
  snprintf(err, sizeof err, "%s_error", w->endpoint);
  snprintf(skipped, sizeof skipped, "%s_skipped", w->endpoint);
  assert_int_equal(ctxt_amqp_wait_count(w->amqp, err, 8, CTXT_EFFECT_MS), 8);
  assert_int_equal(ctxt_amqp_wait_count(w->amqp, skipped, 2, CTXT_EFFECT_MS), 2);
  assert_int_equal(ctxt_wait_effects(w, NULL, 4), 4);
  assert_int_equal(ctxt_amqp_wait_count(w->amqp, w->endpoint, 0, CTXT_EFFECT_MS), 0);
  ctxt_host_stop(w, SIGTERM);
  assert_non_null(
      strstr(w->host.out,
             "handled 4, duplicates 1, retried 0, redelivered 0, requeued 0, to _error 8, to _skipped 2"));
  /* the duplicate did not replace the first body */
  assert_int_equal(
      ctxt_effects(w, "message_id = '00000000-0000-4000-8000-000000000003' AND body LIKE '%Flour%'"), 1);

  /* every error names its reason, in the order they were sent */
  for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++) {
    char hv[1024], b[64];
    assert_int_equal(ctxt_amqp_peek_header(w->amqp, err, "MT-Fault-Message", hv, sizeof hv), 1);
    if (strstr(hv, reasons[i]) == NULL) fail_msg("error %zu: expected '%s' in '%s'", i, reasons[i], hv);
    assert_int_equal(ctxt_amqp_get(w->amqp, err, b, sizeof b, NULL, hv, sizeof hv), 1);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(every_class_of_bad_input, ctxt_world_setup, ctxt_world_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
