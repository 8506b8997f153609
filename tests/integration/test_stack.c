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

/* The env file is all it takes to find the servers again: with nothing but its variables
 * (and PATH), stack.sh ctl reaches the node behind CTXD_AMQP_URL, not the default one. */
static void env_file_finds_the_broker(void **state) {
  (void)state;
  amqp_connection_state_t c = ctxt_amqp_connect();
  char q[64];
  snprintf(q, sizeof q, "stack-env-probe-%s", ctxt_unique());
  amqp_queue_declare(c, 1, amqp_cstring_bytes(q), 0, 0, 1, 0, amqp_empty_table); /* exclusive */
  assert_int_equal(amqp_get_rpc_reply(c).reply_type, AMQP_RESPONSE_NORMAL);
  char cmd[2048];
  snprintf(
      cmd, sizeof cmd,
      "env -i PATH=\"$PATH\" bash -c 'set -a; . \"$0\"; set +a; exec bash \"$1\" ctl -q list_queues name'"
      " '%s' '%s/tests/stack/stack.sh' 2>&1",
      ctxt_stack_env_file(), CTXD_TEST_SOURCE_DIR);
  FILE *p = popen(cmd, "r");
  assert_non_null(p);
  char line[512], out[4096] = "";
  int listed = 0;
  while (fgets(line, sizeof line, p) != NULL) {
    strncat(out, line, sizeof out - strlen(out) - 1);
    line[strcspn(line, "\n")] = '\0';
    listed |= strcmp(line, q) == 0;
  }
  int status = pclose(p);
  if (status != 0 || !listed)
    fail_msg("stack.sh ctl with the env file's variables only (status %d):\n%s", status, out);
  ctxt_amqp_close(c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(rabbitmq_round_trip),
      cmocka_unit_test(postgresql_query),
      cmocka_unit_test(env_file_finds_the_broker),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
