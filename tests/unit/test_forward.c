/* Copies of failed deliveries: where each outcome goes and the headers it carries, as
 * MassTransit writes them (SendContextExtensions.cs, RabbitMqMoveTransport.cs): counts are
 * integers, the retry count only when there were retries, the original headers kept except
 * those of an earlier failure. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "endpoint.h"
#include "forward.h"

static const amqp_field_value_t *header(const ctxd__forward_t *f, const char *key) {
  const amqp_table_t *t = &f->props.headers;
  const amqp_field_value_t *found = NULL;
  for (int i = 0; i < t->num_entries; i++)
    if (t->entries[i].key.len == strlen(key) && memcmp(t->entries[i].key.bytes, key, strlen(key)) == 0) {
      assert_null(found); /* never twice */
      found = &t->entries[i].value;
    }
  return found;
}

static void assert_text(const ctxd__forward_t *f, const char *key, const char *want) {
  const amqp_field_value_t *v = header(f, key);
  assert_non_null(v);
  assert_int_equal(v->kind, AMQP_FIELD_KIND_UTF8);
  assert_int_equal(v->value.bytes.len, strlen(want));
  assert_memory_equal(v->value.bytes.bytes, want, strlen(want));
}

static void assert_int(const ctxd__forward_t *f, const char *key, int want) {
  const amqp_field_value_t *v = header(f, key);
  assert_non_null(v);
  assert_int_equal(v->kind, AMQP_FIELD_KIND_I32);
  assert_int_equal(v->value.i32, want);
}

/* The eight MT-Host-* headers, all text (the SendHeaders overload a move uses). */
static void assert_host(const ctxd__forward_t *f) {
  static const char *const keys[] = {"MT-Host-MachineName",      "MT-Host-ProcessName",
                                     "MT-Host-ProcessId",        "MT-Host-Assembly",
                                     "MT-Host-AssemblyVersion",  "MT-Host-MassTransitVersion",
                                     "MT-Host-FrameworkVersion", "MT-Host-OperatingSystemVersion"};
  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
    const amqp_field_value_t *v = header(f, keys[i]);
    assert_non_null(v);
    assert_int_equal(v->kind, AMQP_FIELD_KIND_UTF8);
  }
  assert_text(f, "MT-Host-ProcessName", "ctxd");
}

static const struct timespec when = {1, 234567890};

typedef struct {
  ctxd__config_t cfg;
  char *urls[1];
  ctxd__endpoint_env_t env;
  ctxd__endpoint_t ep;
  ctxd__delivery_t d;
  amqp_table_entry_t orig[3];
} world_t;

/* A delivery of endpoint "orders" with a message header, and the fault headers of an
 * earlier failure (a replayed or redelivered message). */
static int setup(void **state) {
  world_t *w = calloc(1, sizeof *w);
  w->urls[0] = "amqp://guest:guest@Broker.example:5673/prod";
  w->cfg.broker_urls = w->urls;
  w->cfg.nbroker_urls = 1;
  w->env.cfg = &w->cfg;
  w->ep.env = &w->env;
  w->ep.name = "orders";
  w->ep.redelivery_ms[0] = 5000;
  w->ep.redelivery_ms[1] = 30000;
  w->ep.nredelivery = 2;
  w->d.ep = &w->ep;
  static const char *const kv[][2] = {
      {"MT-MessageType", "urn:message:A:B"}, {"MT-Fault-Message", "old"}, {"MT-Redelivery-Count", "1"}};
  for (int i = 0; i < 3; i++) {
    w->orig[i].key = amqp_cstring_bytes(kv[i][0]);
    w->orig[i].value.kind = AMQP_FIELD_KIND_UTF8;
    w->orig[i].value.value.bytes = amqp_cstring_bytes(kv[i][1]);
  }
  w->d.msg.properties._flags =
      AMQP_BASIC_HEADERS_FLAG | AMQP_BASIC_MESSAGE_ID_FLAG | AMQP_BASIC_EXPIRATION_FLAG;
  w->d.msg.properties.expiration = amqp_cstring_bytes("30000");
  w->d.msg.properties.headers = (amqp_table_t){3, w->orig};
  w->d.msg.properties.message_id = amqp_cstring_bytes("id");
  *state = w;
  return 0;
}

static int teardown(void **state) {
  free(*state);
  return 0;
}

static void to_error(void **state) {
  world_t *w = *state;
  w->d.outcome = CTXD__OUTCOME_ERROR;
  w->d.fault_type = "Testkit.Refused";
  w->d.reason = "no";
  w->d.redeliveries = 2;
  w->d.retries = 3;
  w->d.fault_plugin = "orders-plugin";
  w->d.fault_message_type = "A:B";
  ctxd__forward_t f;
  assert_int_equal(ctxd__forward_build(&f, &w->d, &when), 0);
  assert_string_equal(f.exchange, "orders_error");
  assert_int_equal(f.props.delivery_mode, AMQP_DELIVERY_PERSISTENT);
  assert_true(f.props._flags & AMQP_BASIC_MESSAGE_ID_FLAG); /* the rest of the properties kept */
  assert_text(&f, "MT-MessageType", "urn:message:A:B");
  assert_text(&f, "MT-Reason", "fault");
  assert_text(&f, "MT-Fault-ExceptionType", "Testkit.Refused");
  assert_text(&f, "MT-Fault-Message", "no");
  /* DateTime.ToString("O"): 100 ns ticks */
  assert_text(&f, "MT-Fault-Timestamp", "1970-01-01T00:00:01.2345678Z");
  assert_text(&f, "MT-Fault-InputAddress", "rabbitmq://broker.example:5673/prod/orders");
  assert_text(&f, "MT-Fault-StackTrace", "   at plugin orders-plugin, handler of A:B, endpoint orders");
  assert_text(&f, "MT-Fault-ConsumerType", "orders-plugin");
  assert_text(&f, "MT-Fault-MessageType", "A:B");
  assert_host(&f);
  assert_false(f.props._flags & AMQP_BASIC_EXPIRATION_FLAG); /* a kept copy does not expire */
  assert_int(&f, "MT-Fault-RetryCount", 3);
  assert_int(&f, "MT-Fault-RedeliveryCount", 2);
  assert_int(&f, "MT-Redelivery-Count", 2);
  ctxd__forward_free(&f);
  /* no retries: MassTransit leaves the count out */
  w->d.retries = 0;
  assert_int_equal(ctxd__forward_build(&f, &w->d, &when), 0);
  assert_null(header(&f, "MT-Fault-RetryCount"));
  ctxd__forward_free(&f);
}

/* A delayed redelivery goes to the queue of its interval and counts itself; it is no
 * fault yet. */
static void to_a_delay_queue(void **state) {
  world_t *w = *state;
  w->d.outcome = CTXD__OUTCOME_DELAY;
  w->d.redeliveries = 1;
  ctxd__forward_t f;
  assert_int_equal(ctxd__forward_build(&f, &w->d, &when), 0);
  assert_string_equal(f.exchange, "orders_delay_30000");
  assert_int(&f, "MT-Redelivery-Count", 2);
  assert_null(header(&f, "MT-Reason"));
  assert_null(header(&f, "MT-Fault-Message"));
  assert_null(header(&f, "MT-Host-ProcessName")); /* a redelivery is no move */
  assert_text(&f, "MT-MessageType", "urn:message:A:B");
  ctxd__forward_free(&f);
}

static void to_skipped(void **state) {
  world_t *w = *state;
  w->d.outcome = CTXD__OUTCOME_SKIPPED;
  ctxd__forward_t f;
  assert_int_equal(ctxd__forward_build(&f, &w->d, &when), 0);
  assert_string_equal(f.exchange, "orders_skipped");
  assert_text(&f, "MT-Reason", "dead-letter");
  assert_host(&f);
  assert_true(f.props._flags & AMQP_BASIC_EXPIRATION_FLAG); /* only _error copies lose it */
  assert_null(header(&f, "MT-Fault-ExceptionType"));
  ctxd__forward_free(&f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(to_error, setup, teardown),
      cmocka_unit_test_setup_teardown(to_a_delay_queue, setup, teardown),
      cmocka_unit_test_setup_teardown(to_skipped, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
