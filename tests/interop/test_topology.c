/* MassTransit conformance: topology, names and envelopes (rows 1, 3, 5, 6, 7, 13 to 18 of
 * the MassTransit table in docs/masstransit.md). Each test plays the .NET side on the real
 * broker, declaring with the exact flags and arguments MassTransit v8 uses, against a real
 * host. A declaration the broker finds inequivalent closes the channel with 406: the host
 * would then not become ready, or the .NET side's declaration fails here. */
#include "hostfixture.h"

#include <ctype.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#define ENVELOPE "application/vnd.masstransit+json"

/* What a MassTransit v8 service declares; one declaration sequence per connection, so a
 * refusal (which closes the channel) never affects the next. */
typedef enum {
  MT_RECEIVE_ENDPOINT, /* a receive endpoint: exchange + queue + binding (row 13, 14) */
  MT_SEND_TO_QUEUE,    /* Send to "queue:NAME": the same, durable, no arguments (row 15) */
  MT_TYPE_EXCHANGE     /* a message type's exchange (row 16, 17) */
} mt_declare_t;

/* Declares name as MassTransit does (quorum: SetQuorumQueue, x-queue-type only). Returns
 * 0, or the broker's reply code (406 for an inequivalent declaration). */
static int mt_declare(mt_declare_t what, const char *name, int quorum) {
  amqp_connection_state_t c = ctxt_amqp_connect();
  amqp_table_entry_t arg;
  amqp_table_t args = amqp_empty_table;
  if (quorum) {
    arg.key = amqp_cstring_bytes("x-queue-type");
    arg.value.kind = AMQP_FIELD_KIND_UTF8;
    arg.value.value.bytes = amqp_cstring_bytes("quorum");
    args = (amqp_table_t){1, &arg};
  }
  /* fanout, durable, not auto-delete, no arguments */
  amqp_exchange_declare(c, 1, amqp_cstring_bytes(name), amqp_cstring_bytes("fanout"), 0, 1, 0, 0,
                        amqp_empty_table);
  amqp_rpc_reply_t r = amqp_get_rpc_reply(c);
  if (r.reply_type == AMQP_RESPONSE_NORMAL && what != MT_TYPE_EXCHANGE) {
    /* durable, not exclusive, not auto-delete */
    amqp_queue_declare(c, 1, amqp_cstring_bytes(name), 0, 1, 0, 0, args);
    r = amqp_get_rpc_reply(c);
  }
  if (r.reply_type == AMQP_RESPONSE_NORMAL && what != MT_TYPE_EXCHANGE) {
    amqp_queue_bind(c, 1, amqp_cstring_bytes(name), amqp_cstring_bytes(name), amqp_empty_bytes,
                    amqp_empty_table);
    r = amqp_get_rpc_reply(c);
  }
  int code = 0;
  if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION && r.reply.id == AMQP_CHANNEL_CLOSE_METHOD)
    code = ((amqp_channel_close_t *)r.reply.decoded)->reply_code;
  else if (r.reply_type != AMQP_RESPONSE_NORMAL)
    code = -1;
  if (code == 0)
    ctxt_amqp_close(c);
  else
    amqp_destroy_connection(c); /* the channel is gone: no polite close */
  return code;
}

/* A .NET consumer of exchange `source`: a queue of its own (exclusive, gone with the
 * connection) bound to it. The exchange is declared as MassTransit declares it. */
static void mt_consume_exchange(amqp_connection_state_t c, const char *source, const char *queue) {
  assert_int_equal(mt_declare(MT_TYPE_EXCHANGE, source, 0), 0);
  amqp_queue_declare(c, 1, amqp_cstring_bytes(queue), 0, 0, 1, 1, amqp_empty_table);
  assert_int_equal(amqp_get_rpc_reply(c).reply_type, AMQP_RESPONSE_NORMAL);
  amqp_queue_bind(c, 1, amqp_cstring_bytes(queue), amqp_cstring_bytes(source), amqp_empty_bytes,
                  amqp_empty_table);
  assert_int_equal(amqp_get_rpc_reply(c).reply_type, AMQP_RESPONSE_NORMAL);
}

static void side(char *buf, size_t len, const char *endpoint, const char *suffix) {
  snprintf(buf, len, "%s%s", endpoint, suffix);
}

/* Two endpoints: the world's and testkit's echo endpoint (consuming echo_type). */
static void two_endpoints(ctxt_world_t *w, char *echo, size_t len, int quorum) {
  snprintf(echo, len, "%s-echo", w->endpoint);
  snprintf(w->plugin_settings, sizeof w->plugin_settings, ", \"echo_endpoint\": \"%s\"", echo);
  if (quorum) {
    snprintf(w->endpoint_settings, sizeof w->endpoint_settings, "\"queue_type\": \"quorum\"");
    snprintf(w->more_endpoints, sizeof w->more_endpoints, ", \"%s\": {\"queue_type\": \"quorum\"}", echo);
  }
}

/* Declares both endpoints MassTransit's way, one before the host starts and one after:
 * each order must leave the host ready and the .NET side's declaration accepted. */
static void both_orders(ctxt_world_t *w, mt_declare_t what, int quorum) {
  char echo[128], q[160];
  two_endpoints(w, echo, sizeof echo, quorum);
  assert_int_equal(mt_declare(what, w->endpoint, quorum), 0);
  ctxt_host_start(w, NULL); /* fails the test unless ready */
  assert_int_equal(mt_declare(what, echo, quorum), 0);
  /* MassTransit's error queue: the endpoint's flags and a copy of its queue arguments */
  side(q, sizeof q, w->endpoint, "_error");
  assert_int_equal(mt_declare(MT_RECEIVE_ENDPOINT, q, quorum), 0);
  side(q, sizeof q, echo, "_skipped");
  assert_int_equal(mt_declare(MT_RECEIVE_ENDPOINT, q, quorum), 0);
  /* and a message a .NET sender puts in the queue is consumed */
  char id[37];
  ctxt_make_id(id, 13);
  char body[512];
  snprintf(body, sizeof body, "{\"messageId\":\"%s\",\"messageType\":[\"urn:message:%s\"],\"message\":{}}",
           id, w->type);
  ctxt_amqp_publish(w->amqp, w->endpoint, ENVELOPE, body, NULL, NULL);
  assert_int_equal(ctxt_wait_effects(w, NULL, 1), 1);
  ctxt_host_stop(w, SIGTERM);
}

static void row13_classic_endpoint_declared_as_masstransit(void **state) {
  both_orders(*state, MT_RECEIVE_ENDPOINT, 0);
}

static void row14_quorum_endpoint_declared_as_masstransit_either_order(void **state) {
  both_orders(*state, MT_RECEIVE_ENDPOINT, 1);
}

static void row15_dotnet_send_to_queue_before_and_after_ctxd(void **state) {
  both_orders(*state, MT_SEND_TO_QUEUE, 0);
}

static void row15_dotnet_send_to_quorum_queue_before_and_after_ctxd(void **state) {
  both_orders(*state, MT_SEND_TO_QUEUE, 1);
}

static void row18_error_queue_copies_arguments(void **state) {
  ctxt_world_t *w = *state;
  char q[160];
  snprintf(w->endpoint_settings, sizeof w->endpoint_settings, "\"queue_type\": \"quorum\"");
  ctxt_host_start(w, NULL);
  /* _error and _skipped as MassTransit declares them beside a quorum endpoint: quorum too */
  side(q, sizeof q, w->endpoint, "_error");
  assert_int_equal(mt_declare(MT_RECEIVE_ENDPOINT, q, 1), 0);
  side(q, sizeof q, w->endpoint, "_skipped");
  assert_int_equal(mt_declare(MT_RECEIVE_ENDPOINT, q, 1), 0);
  /* a classic declaration would not be the endpoint's copy: the broker refuses it */
  assert_int_equal(mt_declare(MT_RECEIVE_ENDPOINT, q, 0), 406);
  ctxt_host_stop(w, SIGTERM);
}

static void row16_consumed_type_exchange_bound_to_endpoint_exchange(void **state) {
  ctxt_world_t *w = *state;
  ctxt_host_start(w, NULL);
  /* the type exchange is MassTransit's (fanout, durable, no arguments) ... */
  assert_int_equal(mt_declare(MT_TYPE_EXCHANGE, w->type, 0), 0);
  /* ... and a .NET publisher's message reaches the endpoint through it */
  char id[37];
  ctxt_make_id(id, 16);
  ctxt_publish(w, id, "{}");
  assert_int_equal(ctxt_wait_effects(w, NULL, 1), 1);
  ctxt_host_stop(w, SIGTERM);
}

#define ECHOED "Ctxd.Testkit.Contracts.v1:Echoed"

static void row17_publish_binds_base_type_exchanges(void **state) {
  ctxt_world_t *w = *state;
  snprintf(w->echo_type, sizeof w->echo_type, ECHOED);
  /* .NET consumers of the type (its [EntityName] exchange) and of each base type */
  const char *exchanges[] = {"ctxd-testkit-echoed", "Ctxd.Testkit.Contracts:IEcho",
                             "Ctxd.Testkit.Contracts:Outer-INested"};
  char queues[3][96];
  /* bindings outlive a run (the exchanges are durable): start without any */
  for (int i = 0; i < 3; i++) {
    amqp_exchange_delete(w->amqp, 1, amqp_cstring_bytes(exchanges[i]), 0);
    assert_int_equal(amqp_get_rpc_reply(w->amqp).reply_type, AMQP_RESPONSE_NORMAL);
  }
  for (int i = 0; i < 3; i++) {
    snprintf(queues[i], sizeof queues[i], "%s-dotnet-%d", w->endpoint, i);
    mt_consume_exchange(w->amqp, exchanges[i], queues[i]);
  }
  ctxt_host_start(w, NULL);
  char id[37];
  ctxt_make_id(id, 17);
  ctxt_publish(w, id, "{\"action\":\"publish\"}");
  for (int i = 0; i < 3; i++)
    assert_int_equal(ctxt_amqp_wait_count(w->amqp, queues[i], 1, CTXT_EFFECT_MS), 1);
  ctxt_host_stop(w, SIGTERM);
  /* once each, and listing every URN, most specific first */
  char body[8192], none[8];
  for (int i = 0; i < 3; i++) {
    assert_int_equal(ctxt_amqp_get(w->amqp, queues[i], body, sizeof body, "x", none, sizeof none), 1);
    assert_non_null(strstr(body, "\"messageType\":[\"urn:message:" ECHOED
                                 "\",\"urn:message:Ctxd.Testkit.Contracts:IEcho\","
                                 "\"urn:message:Ctxd.Testkit.Contracts:Outer+INested\"]"));
    assert_int_equal(ctxt_amqp_queue_count(w->amqp, queues[i]), 0);
  }
}

static void row6_urn_match_ignores_case_and_base_types(void **state) {
  ctxt_world_t *w = *state;
  ctxt_host_start(w, NULL);
  char lower[96], body[1024], id[37];
  for (size_t i = 0; i <= strlen(w->type); i++) lower[i] = (char)tolower((unsigned char)w->type[i]);
  ctxt_make_id(id, 6);
  /* a derived .NET type first, the consumed one (another casing) among its bases */
  snprintf(body, sizeof body,
           "{\"messageId\":\"%s\",\"messageType\":[\"urn:message:Other.Ns:Derived\","
           "\"URN:MESSAGE:%s\"],\"message\":{}}",
           id, lower);
  ctxt_amqp_publish(w->amqp, w->endpoint, ENVELOPE, body, NULL, NULL);
  assert_int_equal(ctxt_wait_effects(w, NULL, 1), 1);
  ctxt_host_stop(w, SIGTERM);
}

static void row7_nested_and_generic_names(void **state) {
  ctxt_world_t *w = *state;
  char echo[128], nested_exchange[128], generic_exchange[160], body[1024], id[37];
  /* a nested type (Outer+Ping) and a generic one (Fault<Ping>) */
  snprintf(w->type, sizeof w->type, "Ctxd.Tests.v1:Outer+Ping%s", ctxt_unique());
  snprintf(w->echo_type, sizeof w->echo_type, "MassTransit:Fault[[Ctxd.Tests.v1:Ping%s]]", ctxt_unique());
  two_endpoints(w, echo, sizeof echo, 0);
  ctxt_host_start(w, NULL);
  snprintf(nested_exchange, sizeof nested_exchange, "%s", w->type);
  *strchr(nested_exchange, '+') = '-';
  snprintf(generic_exchange, sizeof generic_exchange, "MassTransit:Fault--%s--",
           strstr(w->echo_type, "[[") + 2);
  *strstr(generic_exchange, "]]") = '\0';
  strcat(generic_exchange, "--");
  /* the .NET publishers use the exchange formatter's names and the URN formatter's URNs */
  ctxt_make_id(id, 71);
  snprintf(body, sizeof body, "{\"messageId\":\"%s\",\"messageType\":[\"urn:message:%s\"],\"message\":{}}",
           id, w->type);
  ctxt_amqp_publish(w->amqp, nested_exchange, ENVELOPE, body, NULL, NULL);
  ctxt_make_id(id, 72);
  snprintf(body, sizeof body,
           "{\"messageId\":\"%s\",\"messageType\":[\"urn:message:%s\",\"urn:message:MassTransit:Fault\"],"
           "\"message\":{}}",
           id, w->echo_type);
  ctxt_amqp_publish(w->amqp, generic_exchange, ENVELOPE, body, NULL, NULL);
  assert_int_equal(ctxt_wait_effects(w, "action <> 'echoed'", 1), 1);
  assert_int_equal(ctxt_wait_effects(w, "action = 'echoed'", 1), 1);
  ctxt_host_stop(w, SIGTERM);
}

static void row3_row5_pascal_case_envelope(void **state) {
  ctxt_world_t *w = *state;
  ctxt_host_start(w, NULL);
  char body[2048], id[37];
  /* every member MassTransit's serializer writes, camelCase as v8 writes it */
  ctxt_make_id(id, 31);
  snprintf(body, sizeof body,
           "{\n  \"messageId\": \"%s\",\n  \"requestId\": null,\n  \"correlationId\": null,\n"
           "  \"conversationId\": \"%s\",\n  \"initiatorId\": null,\n"
           "  \"sourceAddress\": \"rabbitmq://localhost/dotnet_bus_abc?temporary=true\",\n"
           "  \"destinationAddress\": \"rabbitmq://localhost/%s\",\n  \"responseAddress\": null,\n"
           "  \"faultAddress\": null,\n  \"messageType\": [\n    \"urn:message:%s\"\n  ],\n"
           "  \"message\": {\"action\": \"ok\"},\n  \"expirationTime\": \"2099-01-01T00:00:00Z\",\n"
           "  \"sentTime\": \"2024-05-01T10:00:00.1234567Z\",\n  \"headers\": {},\n"
           "  \"host\": {\"machineName\": \"dotnet\", \"processName\": \"Service\", \"processId\": 42,"
           " \"assembly\": \"Service\", \"assemblyVersion\": \"1.0.0.0\", \"frameworkVersion\": \"8.0.0\","
           " \"massTransitVersion\": \"8.5.0.0\", \"operatingSystemVersion\": \"Unix 6.1\"}\n}",
           id, id, w->endpoint, w->type);
  ctxt_amqp_publish(w->amqp, w->endpoint, ENVELOPE, body, NULL, NULL);
  /* PascalCase, as older publishers wrote it: read as well */
  ctxt_make_id(id, 32);
  snprintf(body, sizeof body,
           "{\"MessageId\":\"%s\",\"ConversationId\":\"%s\",\"MessageType\":[\"urn:message:%s\"],"
           "\"Message\":{\"Action\":\"ok\"},\"ExpirationTime\":\"2099-01-01T00:00:00Z\",\"Headers\":{}}",
           id, id, w->type);
  ctxt_amqp_publish(w->amqp, w->endpoint, ENVELOPE, body, NULL, NULL);
  assert_int_equal(ctxt_wait_effects(w, NULL, 2), 2);
  ctxt_host_stop(w, SIGTERM);
  char q[160];
  side(q, sizeof q, w->endpoint, "_error");
  assert_int_equal(ctxt_amqp_queue_count(w->amqp, q), 0);
}

static void row1_content_types(void **state) {
  ctxt_world_t *w = *state;
  ctxt_host_start(w, NULL);
  char body[1024], id[37], q[160];
  /* MassTransit's default serializer, with a charset parameter */
  ctxt_make_id(id, 11);
  snprintf(body, sizeof body, "{\"messageId\":\"%s\",\"messageType\":[\"urn:message:%s\"],\"message\":{}}",
           id, w->type);
  ctxt_amqp_publish(w->amqp, w->endpoint, ENVELOPE "; charset=utf-8", body, NULL, NULL);
  /* raw JSON (UseRawJsonSerializer), metadata in headers: accepted as well */
  ctxt_make_id(id, 12);
  char urn[128];
  snprintf(urn, sizeof urn, "urn:message:%s", w->type);
  const char *headers[] = {"MessageId", id, "MT-MessageType", urn, NULL};
  ctxt_amqp_publish(w->amqp, w->endpoint, "application/json", "{}", NULL, headers);
  assert_int_equal(ctxt_wait_effects(w, NULL, 2), 2);
  /* an opt-in serializer's content type is refused where an operator sees it */
  ctxt_make_id(id, 13);
  ctxt_amqp_publish(w->amqp, w->endpoint, "application/vnd.masstransit+xml", "<envelope/>", id, NULL);
  side(q, sizeof q, w->endpoint, "_error");
  assert_int_equal(ctxt_amqp_wait_count(w->amqp, q, 1, CTXT_EFFECT_MS), 1);
  ctxt_host_stop(w, SIGTERM);
  char reason[256];
  assert_int_equal(ctxt_amqp_peek_header(w->amqp, q, "MT-Fault-Message", reason, sizeof reason), 1);
  assert_non_null(strstr(reason, "unsupported content type"));
  assert_int_equal(ctxt_effects(w, NULL), 2);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(row1_content_types, ctxt_world_setup, ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(row3_row5_pascal_case_envelope, ctxt_world_setup, ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(row6_urn_match_ignores_case_and_base_types, ctxt_world_setup,
                                      ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(row7_nested_and_generic_names, ctxt_world_setup, ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(row13_classic_endpoint_declared_as_masstransit, ctxt_world_setup,
                                      ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(row14_quorum_endpoint_declared_as_masstransit_either_order,
                                      ctxt_world_setup, ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(row15_dotnet_send_to_queue_before_and_after_ctxd, ctxt_world_setup,
                                      ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(row15_dotnet_send_to_quorum_queue_before_and_after_ctxd,
                                      ctxt_world_setup, ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(row16_consumed_type_exchange_bound_to_endpoint_exchange,
                                      ctxt_world_setup, ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(row17_publish_binds_base_type_exchanges, ctxt_world_setup,
                                      ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(row18_error_queue_copies_arguments, ctxt_world_setup,
                                      ctxt_world_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
