/* The private servers the project's scripts start are reachable with the client
 * libraries ctxd uses: a message makes a round trip through RabbitMQ, a query through
 * PostgreSQL. */
#include "testsupport.h"

#include <stdio.h>
#include <string.h>

static void rabbitmq_round_trip(void **state) {
  (void)state;
  amqp_connection_state_t c = ctxt_amqp_connect();
  char q[64];
  snprintf(q, sizeof q, "stack-probe-%s", ctxt_unique());
  amqp_queue_declare(c, 1, amqp_cstring_bytes(q), 0, 0, 0, 1, amqp_empty_table);
  assert_int_equal(amqp_get_rpc_reply(c).reply_type, AMQP_RESPONSE_NORMAL);
  amqp_exchange_declare(c, 1, amqp_cstring_bytes(q), amqp_cstring_bytes("fanout"), 0, 0, 1, 0,
                        amqp_empty_table);
  assert_int_equal(amqp_get_rpc_reply(c).reply_type, AMQP_RESPONSE_NORMAL);
  amqp_queue_bind(c, 1, amqp_cstring_bytes(q), amqp_cstring_bytes(q), amqp_empty_bytes, amqp_empty_table);
  assert_int_equal(amqp_get_rpc_reply(c).reply_type, AMQP_RESPONSE_NORMAL);
  ctxt_amqp_publish(c, q, "text/plain", "hello", NULL, NULL);
  assert_int_equal(ctxt_amqp_wait_count(c, q, 1, 5000), 1);
  char body[64], hv[8];
  assert_int_equal(ctxt_amqp_get(c, q, body, sizeof body, NULL, hv, sizeof hv), 1);
  assert_string_equal(body, "hello");
  ctxt_amqp_close(c);
}

static void postgresql_query(void **state) {
  (void)state;
  PGconn *c = ctxt_pg_connect(ctxt_pg_url());
  assert_int_equal(ctxt_pg_long(c, "SELECT 40 + 2"), 42);
  assert_true(ctxt_pg_long(c, "SELECT current_setting('server_version_num')::int") >= 140000);
  PQfinish(c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(rabbitmq_round_trip),
      cmocka_unit_test(postgresql_query),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
