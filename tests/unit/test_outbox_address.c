/* MassTransit addresses to exchange names, for request/response. */
#include "testsupport.h"

#include <ctxd/errno.h>

#include "address.h"

static void names(void **state) {
  (void)state;
  char buf[64];
  assert_int_equal(
      ctxd__address_exchange("rabbitmq://localhost/vhost/bus-abc?temporary=true", buf, sizeof buf), 0);
  assert_string_equal(buf, "bus-abc");
  assert_int_equal(ctxd__address_exchange("rabbitmq://localhost/orders", buf, sizeof buf), 0);
  assert_string_equal(buf, "orders");
  assert_int_equal(ctxd__address_exchange("rabbitmq://h:5672/v/Ns:Type#x", buf, sizeof buf), 0);
  assert_string_equal(buf, "Ns:Type");
  assert_int_equal(ctxd__address_exchange("plain-exchange", buf, sizeof buf), 0);
  assert_string_equal(buf, "plain-exchange");
}

static void refusals(void **state) {
  (void)state;
  char buf[8];
  assert_int_equal(ctxd__address_exchange("rabbitmq://localhost", buf, sizeof buf), CTXD_EINVAL);
  assert_int_equal(ctxd__address_exchange("rabbitmq://localhost/", buf, sizeof buf), CTXD_EINVAL);
  assert_int_equal(ctxd__address_exchange("", buf, sizeof buf), CTXD_EINVAL);
  assert_int_equal(ctxd__address_exchange("rabbitmq://h/a-name-too-long", buf, sizeof buf), CTXD_EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(names), cmocka_unit_test(refusals)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
