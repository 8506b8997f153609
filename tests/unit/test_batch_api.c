/* ABI 1.3 without servers: what a consumer registration with a batch handler must hold,
 * a registration of an older minor (its size ends before the field), and tx_focus. */
#include "testsupport.h"

#include <string.h>

#include "api.h"
#include "dispatch.h"
#include "endpoint.h"

static ctxd_handler_result_t one(ctxd_tx_t *tx, const ctxd_msg_t *msg, void *data) {
  (void)tx;
  (void)msg;
  (void)data;
  return CTXD_HANDLER_OK;
}

static ctxd_handler_result_t many(ctxd_tx_t *tx, const ctxd_msg_t *const *msgs, size_t n, void *data) {
  (void)tx;
  (void)msgs;
  (void)n;
  (void)data;
  return CTXD_HANDLER_OK;
}

static void exactly_one_of_handler_and_batch_handler(void **state) {
  (void)state;
  ctxd_consumer_t c = {.size = sizeof c, .endpoint = "orders", .message_type = "Ns:T", .handler = one};
  assert_int_equal(ctxd__consumer_check(&c), 0);
  c.batch_handler = many;
  assert_int_equal(ctxd__consumer_check(&c), CTXD_EINVAL);
  c.handler = NULL;
  assert_int_equal(ctxd__consumer_check(&c), 0);
  c.batch_handler = NULL;
  assert_int_equal(ctxd__consumer_check(&c), CTXD_EINVAL);
}

/* A consumer built before 1.3 ends with queue_type: whatever lies past it is not read. */
static void an_older_registration_is_read_to_its_size(void **state) {
  (void)state;
  ctxd_consumer_t c = {.size = CTXD__CONSUMER_SIZE_1_0, .endpoint = "orders", .message_type = "Ns:T"};
  memset(&c.batch_handler, 0xa5, sizeof c.batch_handler);  /* what follows it in the plugin's memory */
  assert_int_equal(ctxd__consumer_check(&c), CTXD_EINVAL); /* no handler at all */
  c.handler = one;
  assert_int_equal(ctxd__consumer_check(&c), 0);
  c.size = CTXD__CONSUMER_SIZE_1_0 - 1;
  assert_int_equal(ctxd__consumer_check(&c), CTXD_EINVAL);
}

static void focus_names_a_message_of_the_call_only(void **state) {
  (void)state;
  struct ctxd_msg_s m[3], foreign;
  memset(m, 0, sizeof m);
  struct ctxd_msg_s *call[] = {&m[0], &m[1], &m[2]};
  struct ctxd_tx_s tx = {.msg = &m[0], .call = call, .ncall = 3};
  const ctxd_api_t *api = &ctxd__api;
  assert_true(CTXD_API_HAS(api, tx_focus));
  assert_int_equal(api->tx_focus(&tx, &m[2]), 0);
  assert_ptr_equal(api->tx_msg(&tx), &m[2]);
  assert_int_equal(api->tx_focus(&tx, &m[1]), 0); /* backwards too */
  assert_ptr_equal(api->tx_msg(&tx), &m[1]);
  assert_int_equal(api->tx_focus(&tx, &foreign), CTXD_EINVAL);
  assert_ptr_equal(api->tx_msg(&tx), &m[1]); /* unchanged */
  assert_int_equal(api->tx_focus(&tx, NULL), CTXD_EINVAL);
  /* a transaction that handles no message (an executor's) has nothing to focus */
  struct ctxd_tx_s none = {0};
  assert_int_equal(api->tx_focus(&none, &m[0]), CTXD_EINVAL);
  /* a 1.2 host's table ends with call_outcome: a plugin testing for tx_focus finds none */
  ctxd_api_t old = *api;
  old.size = (uint32_t)(offsetof(ctxd_api_t, call_outcome) + sizeof old.call_outcome);
  assert_false(CTXD_API_HAS(&old, tx_focus));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(exactly_one_of_handler_and_batch_handler),
      cmocka_unit_test(an_older_registration_is_read_to_its_size),
      cmocka_unit_test(focus_names_a_message_of_the_call_only),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
