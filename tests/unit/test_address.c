/* MassTransit's RabbitMQ addresses, as ctxd writes them into envelopes. */
#include "testsupport.h"

#include <ctxd/errno.h>

#include "address.h"

static void addresses_as_masstransit_writes_them(void **state) {
  (void)state;
  char buf[128];
  assert_int_equal(ctxd__address_build("amqp://guest:guest@localhost:5672/%2f", "orders", buf, sizeof buf),
                   0);
  assert_string_equal(buf, "rabbitmq://localhost/orders");
  assert_int_equal(ctxd__address_build("amqp://u:p@127.0.0.1:5982/", "Ns:Type", buf, sizeof buf), 0);
  assert_string_equal(buf, "rabbitmq://127.0.0.1:5982/Ns:Type");
  assert_int_equal(ctxd__address_build("amqp://broker", "e", buf, sizeof buf), 0);
  assert_string_equal(buf, "rabbitmq://broker/e");
  assert_int_equal(ctxd__address_build("amqp://h/shop%20eu", "e", buf, sizeof buf), 0);
  assert_string_equal(buf, "rabbitmq://h/shop%20eu/e");
  assert_int_equal(ctxd__address_build("amqps://h:5671/prod", "e", buf, sizeof buf), 0);
  assert_string_equal(buf, "rabbitmqs://h/prod/e");
}

static void refusals(void **state) {
  (void)state;
  char buf[24];
  assert_int_equal(ctxd__address_build("http://h/", "e", buf, sizeof buf), CTXD_EINVAL);
  assert_int_equal(ctxd__address_build("amqp://h/", "a-name-far-too-long-for-it", buf, sizeof buf),
                   CTXD_ETOOBIG);
}

static void direct_reply_to(void **state) {
  (void)state;
  assert_true(ctxd__address_is_reply_to("rabbitmq://localhost/amq.rabbitmq.reply-to"));
  assert_true(ctxd__address_is_reply_to("rabbitmq://h/v/amq.rabbitmq.reply-to?x=1"));
  assert_false(ctxd__address_is_reply_to("rabbitmq://localhost/bus-abc?temporary=true"));
  assert_false(ctxd__address_is_reply_to(NULL));
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(addresses_as_masstransit_writes_them),
                                     cmocka_unit_test(refusals), cmocka_unit_test(direct_reply_to)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
