/* Contracts at the boundary, against the real servers: a message that breaks its contract
 * lands in <queue>_error with the field and the reason; a handler that asked for v2 of
 * MaterialType receives what a v1 publisher sends, upcast; both MassTransit casings pass. */
#include "hostfixture.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

#define V1 "Dodo.DataCatalog.Contracts.Products.v1:MaterialType"
#define V2 "Dodo.DataCatalog.Contracts.Products.v2:MaterialType"

static void send_material(ctxt_world_t *w, int n, const char *type, const char *message) {
  char body[2048];
  snprintf(body, sizeof body,
           "{\"messageId\":\"00000000-0000-4000-8000-0000000000%02d\",\"messageType\":[\"urn:message:%s\"],"
           "\"message\":%s}",
           n, type, message);
  /* straight to the endpoint's exchange: the type exchanges are shared between tests */
  ctxt_amqp_publish(w->amqp, w->endpoint, "application/vnd.masstransit+json", body, NULL, NULL);
}

static void violation_goes_to_error_with_the_field(void **state) {
  ctxt_world_t *w = *state;
  snprintf(w->type, sizeof w->type, V1);
  ctxt_host_start(w, NULL);
  send_material(w, 1, V1,
                "{\"id\":\"6f1e3a52-3a55-4d47-9a0e-2b1c6f3d9a10\",\"version\":3,\"countryId\":643,"
                "\"departmentId\":\"0d5b0000-8f0e-4c2a-b2f1-1a2b3c4d5e6f\",\"name\":\"Mozzarella\","
                "\"category\":9,\"basicUnitOfMeasure\":5,\"isRemoved\":false}");
  char q[128], hv[512];
  snprintf(q, sizeof q, "%s_error", w->endpoint);
  assert_int_equal(ctxt_amqp_wait_count(w->amqp, q, 1, CTXT_EFFECT_MS), 1);
  ctxt_host_stop(w, SIGTERM);
  assert_int_equal(ctxt_amqp_peek_header(w->amqp, q, "MT-Fault-Message", hv, sizeof hv), 1);
  assert_string_equal(hv, "message.Category: 9 is not one of 1,2,3,4,5,6");
  assert_int_equal(ctxt_amqp_peek_header(w->amqp, q, "MT-Fault-ExceptionType", hv, sizeof hv), 1);
  assert_string_equal(hv, "ctxd.ContractViolation");
  assert_int_equal(ctxt_effects(w, NULL), 0);
}

static void v2_handler_receives_v1_upcast(void **state) {
  ctxt_world_t *w = *state;
  snprintf(w->type, sizeof w->type, V2);
  ctxt_host_start(w, NULL);
  /* camelCase, as MassTransit publishes, and PascalCase, as older publishers did */
  send_material(w, 2, V1,
                "{\"id\":\"6f1e3a52-3a55-4d47-9a0e-2b1c6f3d9a10\",\"version\":3,\"countryId\":643,"
                "\"departmentId\":\"0d5b0000-8f0e-4c2a-b2f1-1a2b3c4d5e6f\",\"name\":\"Mozzarella\","
                "\"category\":1,\"basicUnitOfMeasure\":5,\"isRemoved\":false}");
  send_material(w, 3, V1,
                "{\"Id\":\"7f1e3a52-3a55-4d47-9a0e-2b1c6f3d9a10\",\"Version\":1,\"CountryId\":643,"
                "\"DepartmentId\":\"0d5b0000-8f0e-4c2a-b2f1-1a2b3c4d5e6f\",\"Name\":\"Box\","
                "\"Category\":5,\"BasicUnitOfMeasure\":1,\"IsRemoved\":false}");
  assert_int_equal(ctxt_wait_effects(w, NULL, 2), 2);
  ctxt_host_stop(w, SIGTERM);
  /* the handler saw v2: its message type, and the field v2 added */
  assert_int_equal(ctxt_effects(w, "message_type = '" V2 "'"), 2);
  assert_int_equal(
      ctxt_effects(w, "body::jsonb ? 'ExternalCode' AND body::jsonb->'ExternalCode' = 'null'::jsonb"), 2);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(violation_goes_to_error_with_the_field, ctxt_world_setup,
                                      ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(v2_handler_receives_v1_upcast, ctxt_world_setup, ctxt_world_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
