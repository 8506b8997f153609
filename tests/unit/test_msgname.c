/* URN names to RabbitMQ exchange names, as MassTransit's RabbitMqMessageNameFormatter
 * writes them (row 7 of the MassTransit table). */
#include "testsupport.h"

#include <ctxd/errno.h>

#include "msgname.h"

static void exchange_is(const char *urn_name, const char *want) {
  char buf[256];
  assert_int_equal(ctxd__msgname_exchange(urn_name, buf, sizeof buf), 0);
  assert_string_equal(buf, want);
}

static void plain_and_nested(void **state) {
  (void)state;
  exchange_is("Ctxd.Inventory.Contracts.v1:AddMeasurement", "Ctxd.Inventory.Contracts.v1:AddMeasurement");
  exchange_is("Ns:Outer+Inner", "Ns:Outer-Inner");
  exchange_is("Ns:A+B+C", "Ns:A-B-C");
  exchange_is("NoNamespace", "NoNamespace");
}

static void generics(void **state) {
  (void)state;
  exchange_is("MassTransit:Fault[[Ctxd.Tests.v1:Ping]]", "MassTransit:Fault--Ctxd.Tests.v1:Ping--");
  /* an argument in the generic type's own namespace loses it */
  exchange_is("MassTransit:Fault[[MassTransit:ReceiveFault]]", "MassTransit:Fault--ReceiveFault--");
  exchange_is("MassTransit:Fault[[Ns:Outer+Inner]]", "MassTransit:Fault--Ns:Outer-Inner--");
  exchange_is("Ns:Pair[[A:X],[B:Y]]", "Ns:Pair--A:X::B:Y--");
  exchange_is("MassTransit:Fault[[MassTransit:Fault[[Ns:T]]]]", "MassTransit:Fault--Fault--Ns:T----");
}

static void refusals(void **state) {
  (void)state;
  char buf[16];
  assert_int_equal(ctxd__msgname_exchange("", buf, sizeof buf), CTXD_EINVAL);
  assert_int_equal(ctxd__msgname_exchange("Ns:F[[Ns:X]", buf, sizeof buf), CTXD_EINVAL);
  assert_int_equal(ctxd__msgname_exchange("Ns:F[[Ns:X]]]", buf, sizeof buf), CTXD_EINVAL);
  assert_int_equal(ctxd__msgname_exchange("Ns:F[[]]", buf, sizeof buf), CTXD_EINVAL);
  assert_int_equal(ctxd__msgname_exchange("Ns:A+", buf, sizeof buf), CTXD_EINVAL);
  assert_int_equal(ctxd__msgname_exchange("Ns:F[[Ns:X]]Tail", buf, sizeof buf), CTXD_EINVAL);
  assert_int_equal(ctxd__msgname_exchange("Namespace:AVeryLongTypeName", buf, sizeof buf), CTXD_ETOOBIG);
}

static void urns_match_ignoring_case(void **state) {
  (void)state;
  assert_true(ctxd__msgname_eq("Ctxd.Tests.v1:Ping", "ctxd.tests.V1:PING"));
  assert_false(ctxd__msgname_eq("Ctxd.Tests.v1:Ping", "Ctxd.Tests.v1:Pong"));
  assert_false(ctxd__msgname_eq("Ctxd.Tests.v1:Ping", "Ctxd.Tests.v1:Ping2"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(plain_and_nested),
      cmocka_unit_test(generics),
      cmocka_unit_test(refusals),
      cmocka_unit_test(urns_match_ignoring_case),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
