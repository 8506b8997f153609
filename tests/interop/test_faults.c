/* MassTransit conformance, failures on the wire (docs/masstransit.md rows 19-24, 29, 31):
 * the test plays the .NET side with raw AMQP, declaring and publishing exactly as
 * MassTransit v8 does, and reads what ctxd sends back: _error and _skipped copies, Fault<T>
 * at the fault address, the response address or the Fault<T> exchange, redelivery counts
 * a .NET service wrote, and a replay from _error. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "hostfixture.h"

/* ---- the MassTransit side ---------------------------------------------------------------- */

/* The address MassTransit gives exchange `name` on the test broker (default port and
 * virtual host are left out; the private broker has neither). */
static void mt_address(char *buf, size_t len, const char *name) {
  const char *at = strchr(ctxt_amqp_url(), '@');
  snprintf(buf, len, "rabbitmq://%s/%s", at != NULL ? at + 1 : "", name);
}

/* A receive endpoint as MassTransit declares it (RabbitMqReceiveEndpointBuilder): exchange
 * fanout durable, queue durable without arguments, bound; `from` (may be NULL) is a message
 * type exchange bound to it exchange-to-exchange. */
static void mt_endpoint(amqp_connection_state_t c, const char *name, const char *from) {
  amqp_exchange_declare(c, 1, amqp_cstring_bytes(name), amqp_cstring_bytes("fanout"), 0, 1, 0, 0,
                        amqp_empty_table);
  amqp_queue_declare(c, 1, amqp_cstring_bytes(name), 0, 1, 0, 0, amqp_empty_table);
  amqp_queue_bind(c, 1, amqp_cstring_bytes(name), amqp_cstring_bytes(name), amqp_empty_bytes,
                  amqp_empty_table);
  if (from != NULL) {
    amqp_exchange_declare(c, 1, amqp_cstring_bytes(from), amqp_cstring_bytes("fanout"), 0, 1, 0, 0,
                          amqp_empty_table);
    amqp_exchange_bind(c, 1, amqp_cstring_bytes(name), amqp_cstring_bytes(from), amqp_empty_bytes,
                       amqp_empty_table);
  }
  assert_int_equal(amqp_get_rpc_reply(c).reply_type, AMQP_RESPONSE_NORMAL);
}

/* Publishes as RabbitMqSendTransportContext does (persistent, content type, message id,
 * expiration when given, the send headers as AMQP headers) with routing key rk, and waits
 * for the confirm. */
static void mt_publish(amqp_connection_state_t c, const char *exchange, const char *rk, const char *body,
                       const char *id, const char *expiration, amqp_table_t headers) {
  amqp_basic_properties_t p = {0};
  p._flags = AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_MESSAGE_ID_FLAG |
             AMQP_BASIC_HEADERS_FLAG;
  p.delivery_mode = AMQP_DELIVERY_PERSISTENT;
  p.content_type = amqp_cstring_bytes("application/vnd.masstransit+json");
  p.message_id = amqp_cstring_bytes(id);
  p.headers = headers;
  if (expiration != NULL) {
    p._flags |= AMQP_BASIC_EXPIRATION_FLAG;
    p.expiration = amqp_cstring_bytes(expiration);
  }
  assert_int_equal(amqp_basic_publish(c, 1, amqp_cstring_bytes(exchange), amqp_cstring_bytes(rk), 0, 0, &p,
                                      amqp_cstring_bytes(body)),
                   AMQP_STATUS_OK);
  struct timeval tv = {30, 0};
  amqp_frame_t f;
  assert_int_equal(amqp_simple_wait_frame_noblock(c, &f, &tv), AMQP_STATUS_OK);
  assert_int_equal(f.payload.method.id, AMQP_BASIC_ACK_METHOD);
  amqp_maybe_release_buffers(c);
}

/* An envelope as SystemTextJsonMessageSerializer writes it: all fifteen members, nulls
 * included, camelCase (pascal 0) or PascalCase (a serializer configured so, or an older
 * one). extra: more members, each `"name":value,`. */
static void mt_envelope(char *buf, size_t len, int pascal, const char *id, const char *type,
                        const char *extra, const char *message) {
  static const char *const names[][2] = {{"messageId", "MessageId"}, {"messageType", "MessageType"},
                                         {"message", "Message"},     {"sentTime", "SentTime"},
                                         {"headers", "Headers"},     {"host", "Host"}};
  const char *n[6];
  for (int i = 0; i < 6; i++) n[i] = names[i][pascal != 0];
  snprintf(buf, len,
           "{\"%s\":\"%s\",%s\"%s\":[\"urn:message:%s\"],\"%s\":%s,\"%s\":\"2026-02-07T09:20:27.1234567Z\","
           "\"%s\":{},\"%s\":{\"machineName\":\"dotnet-host\",\"processName\":\"Orders\",\"processId\":42,"
           "\"assembly\":\"Orders\",\"assemblyVersion\":\"1.0.0.0\",\"frameworkVersion\":\"8.0.0\","
           "\"massTransitVersion\":\"8.5.0.0\",\"operatingSystemVersion\":\"Unix 6.1.0\"}}",
           n[0], id, extra, n[1], type, n[2], message, n[3], n[4], n[5]);
}

/* The first message in queue, taken: 1 with *m (destroy with amqp_destroy_message) and
 * its routing key in rk, 0 when the queue is empty. */
static int mt_get(amqp_connection_state_t c, const char *queue, amqp_message_t *m, char *rk, size_t rklen) {
  amqp_rpc_reply_t r = amqp_basic_get(c, 1, amqp_cstring_bytes(queue), 1);
  assert_int_equal(r.reply_type, AMQP_RESPONSE_NORMAL);
  if (r.reply.id != AMQP_BASIC_GET_OK_METHOD) return 0;
  amqp_basic_get_ok_t *ok = r.reply.decoded;
  snprintf(rk, rklen, "%.*s", (int)ok->routing_key.len, (char *)ok->routing_key.bytes);
  assert_int_equal(amqp_read_message(c, 1, m, 0).reply_type, AMQP_RESPONSE_NORMAL);
  return 1;
}

static const amqp_field_value_t *header(const amqp_message_t *m, const char *key) {
  const amqp_table_t *t = &m->properties.headers;
  for (int i = 0; (m->properties._flags & AMQP_BASIC_HEADERS_FLAG) && i < t->num_entries; i++)
    if (t->entries[i].key.len == strlen(key) && memcmp(t->entries[i].key.bytes, key, strlen(key)) == 0)
      return &t->entries[i].value;
  return NULL;
}

/* Header key as text (it must be one), into a static buffer. */
static const char *text(const amqp_message_t *m, const char *key) {
  static char buf[2048];
  const amqp_field_value_t *v = header(m, key);
  if (v == NULL) fail_msg("header %s missing", key);
  assert_int_equal(v->kind, AMQP_FIELD_KIND_UTF8);
  snprintf(buf, sizeof buf, "%.*s", (int)v->value.bytes.len, (char *)v->value.bytes.bytes);
  return buf;
}

static int integer(const amqp_message_t *m, const char *key) {
  const amqp_field_value_t *v = header(m, key);
  if (v == NULL) fail_msg("header %s missing", key);
  assert_int_equal(v->kind, AMQP_FIELD_KIND_I32);
  return v->value.i32;
}

/* The message of queue, which must arrive, as JSON (a new reference). */
static json_t *mt_receive(ctxt_world_t *w, const char *queue) {
  assert_int_equal(ctxt_amqp_wait_count(w->amqp, queue, 1, CTXT_EFFECT_MS), 1);
  amqp_message_t m;
  char rk[256];
  assert_int_equal(mt_get(w->amqp, queue, &m, rk, sizeof rk), 1);
  json_error_t err;
  json_t *env = json_loadb(m.body.bytes, m.body.len, 0, &err);
  amqp_destroy_message(&m);
  assert_non_null(env);
  return env;
}

static const char *field(const json_t *o, const char *path) {
  char key[128];
  const char *dot;
  while ((dot = strchr(path, '.')) != NULL) {
    snprintf(key, sizeof key, "%.*s", (int)(dot - path), path);
    o = json_object_get(o, key);
    path = dot + 1;
  }
  return json_string_value(json_object_get(o, path));
}

/* The eight MT-Host-* of SendContextExtensions.SetHostHeaders, text, describing the host. */
static void assert_host_headers(ctxt_world_t *w, const amqp_message_t *m) {
  static const char *const keys[] = {"MT-Host-MachineName",      "MT-Host-ProcessName",
                                     "MT-Host-ProcessId",        "MT-Host-Assembly",
                                     "MT-Host-AssemblyVersion",  "MT-Host-MassTransitVersion",
                                     "MT-Host-FrameworkVersion", "MT-Host-OperatingSystemVersion"};
  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) assert_true(strlen(text(m, keys[i])) > 0);
  char want[64];
  snprintf(want, sizeof want, "%ld", (long)w->host.pid);
  assert_string_equal(text(m, "MT-Host-ProcessId"), want);
  gethostname(want, sizeof want);
  want[sizeof want - 1] = '\0';
  assert_string_equal(text(m, "MT-Host-MachineName"), want);
  assert_string_equal(text(m, "MT-Host-ProcessName"), "ctxd");
}

static void side_queue(char *buf, size_t len, const ctxt_world_t *w, const char *side) {
  snprintf(buf, len, "%s_%s", w->endpoint, side);
}

/* ---- rows -------------------------------------------------------------------------------- */

/* Row 19: a refused message and a retried one in _error, with SetExceptionHeaders' headers. */
static void row19_error_copy_headers(void **state) {
  ctxt_world_t *w = *state;
  snprintf(w->endpoint_settings, sizeof w->endpoint_settings,
           "\"immediate_retries\": 1, \"redelivery_ms\": \"\"");
  ctxt_host_start(w, NULL);
  char id[37], body[2048], q[128], rk[64], want[512];
  side_queue(q, sizeof q, w, "error");
  ctxt_make_id(id, 1901);
  mt_envelope(body, sizeof body, 0, id, w->type, "", "{\"action\":\"fail\"}");
  mt_publish(w->amqp, w->type, "", body, id, NULL, amqp_empty_table);
  amqp_message_t m;
  assert_int_equal(ctxt_amqp_wait_count(w->amqp, q, 1, CTXT_EFFECT_MS), 1);
  assert_int_equal(mt_get(w->amqp, q, &m, rk, sizeof rk), 1);
  assert_string_equal(text(&m, "MT-Reason"), "fault");
  assert_string_equal(text(&m, "MT-Fault-ExceptionType"), "Testkit.Refused");
  mt_address(want, sizeof want, w->endpoint);
  assert_string_equal(text(&m, "MT-Fault-InputAddress"), want);
  assert_string_equal(text(&m, "MT-Fault-Message"), "the test asked for a failure");
  /* DateTime.ToString("O") of a UTC time: 2026-02-07T09:20:27.1234567Z */
  const char *ts = text(&m, "MT-Fault-Timestamp");
  assert_int_equal(strlen(ts), 28);
  assert_true(ts[19] == '.' && ts[27] == 'Z');
  assert_non_null(strstr(text(&m, "MT-Fault-StackTrace"), "testkit"));
  assert_string_equal(text(&m, "MT-Fault-ConsumerType"), "testkit");
  assert_string_equal(text(&m, "MT-Fault-MessageType"), w->type);
  assert_null(header(&m, "MT-Fault-RetryCount"));       /* only when > 0 */
  assert_int_equal((int)m.body.len, (int)strlen(body)); /* the body as it came */
  amqp_destroy_message(&m);

  ctxt_make_id(id, 1902);
  mt_envelope(body, sizeof body, 0, id, w->type, "", "{\"action\":\"retry\"}");
  mt_publish(w->amqp, w->type, "", body, id, NULL, amqp_empty_table);
  assert_int_equal(ctxt_amqp_wait_count(w->amqp, q, 1, CTXT_EFFECT_MS), 1);
  assert_int_equal(mt_get(w->amqp, q, &m, rk, sizeof rk), 1);
  assert_string_equal(text(&m, "MT-Fault-ExceptionType"), "Testkit.Transient");
  assert_int_equal(integer(&m, "MT-Fault-RetryCount"), 1);
  amqp_destroy_message(&m);
  ctxt_host_stop(w, SIGTERM);
}

/* Row 20: a request with a 30 s TTL that fails stays in _error (ClearExpiration), and the
 * copy keeps the routing key it was published with. */
static void row20_error_copy_has_no_expiration(void **state) {
  ctxt_world_t *w = *state;
  ctxt_host_start(w, NULL);
  char id[37], body[2048], q[128], rk[64];
  side_queue(q, sizeof q, w, "error");
  ctxt_make_id(id, 2001);
  mt_envelope(body, sizeof body, 0, id, w->type, "\"expirationTime\":\"2099-01-01T00:00:00Z\",",
              "{\"action\":\"fail\"}");
  mt_publish(w->amqp, w->type, "orders.eu", body, id, "30000", amqp_empty_table);
  amqp_message_t m;
  assert_int_equal(ctxt_amqp_wait_count(w->amqp, q, 1, CTXT_EFFECT_MS), 1);
  assert_int_equal(mt_get(w->amqp, q, &m, rk, sizeof rk), 1);
  assert_false(m.properties._flags & AMQP_BASIC_EXPIRATION_FLAG);
  assert_string_equal(rk, "orders.eu");
  assert_true(m.properties._flags & AMQP_BASIC_MESSAGE_ID_FLAG); /* the other properties kept */
  assert_int_equal(m.properties.delivery_mode, AMQP_DELIVERY_PERSISTENT);
  amqp_destroy_message(&m);
  ctxt_host_stop(w, SIGTERM);
}

/* Row 21: a type no handler on the endpoint consumes goes to _skipped with MT-Reason
 * dead-letter and the host headers, no fault headers. */
static void row21_skipped_copy_headers(void **state) {
  ctxt_world_t *w = *state;
  ctxt_host_start(w, NULL);
  char id[37], body[2048], q[128], rk[64];
  side_queue(q, sizeof q, w, "skipped");
  ctxt_make_id(id, 2101);
  mt_envelope(body, sizeof body, 0, id, "Orders.Contracts:Unknown", "", "{}");
  mt_publish(w->amqp, w->endpoint, "", body, id, NULL, amqp_empty_table);
  amqp_message_t m;
  assert_int_equal(ctxt_amqp_wait_count(w->amqp, q, 1, CTXT_EFFECT_MS), 1);
  assert_int_equal(mt_get(w->amqp, q, &m, rk, sizeof rk), 1);
  assert_string_equal(text(&m, "MT-Reason"), "dead-letter");
  assert_host_headers(w, &m);
  assert_null(header(&m, "MT-Fault-ExceptionType"));
  assert_null(header(&m, "MT-Fault-Message"));
  amqp_destroy_message(&m);
  ctxt_host_stop(w, SIGTERM);
}

/* Checks a Fault<T> envelope of message id (the world's type) refused by testkit. */
static void assert_fault(ctxt_world_t *w, const json_t *env, const char *id, const char *exception_type) {
  char urn[256], want[512];
  json_t *types = json_object_get(env, "messageType");
  assert_int_equal(json_array_size(types), 2);
  snprintf(urn, sizeof urn, "urn:message:MassTransit:Fault[[%s]]", w->type);
  assert_string_equal(json_string_value(json_array_get(types, 0)), urn);
  assert_string_equal(json_string_value(json_array_get(types, 1)), "urn:message:MassTransit:Fault");
  mt_address(want, sizeof want, w->endpoint);
  assert_string_equal(field(env, "sourceAddress"), want);
  assert_string_equal(field(env, "message.faultedMessageId"), id);
  assert_non_null(field(env, "message.faultId"));
  assert_non_null(field(env, "message.timestamp"));
  json_t *e = json_array_get(json_object_get(json_object_get(env, "message"), "exceptions"), 0);
  assert_string_equal(field(e, "exceptionType"), exception_type);
  assert_non_null(field(e, "message"));
  assert_non_null(field(e, "stackTrace"));
  assert_string_equal(field(e, "source"), "testkit");
  assert_true(json_is_null(json_object_get(e, "innerException")));
  assert_string_equal(field(env, "message.host.processName"), "ctxd");
  snprintf(urn, sizeof urn, "urn:message:%s", w->type);
  assert_string_equal(json_string_value(json_array_get(
                          json_object_get(json_object_get(env, "message"), "faultMessageTypes"), 0)),
                      urn);
  assert_non_null(field(env, "message.message.action")); /* the original message */
}

/* Row 22: faultAddress first (the response address gets nothing), with the request's
 * ids: requestId and correlationId copied, initiatorId the consumed correlationId. */
static void row22_fault_to_fault_address(void **state) {
  ctxt_world_t *w = *state;
  ctxt_host_start(w, NULL);
  char faults[128], replies[128], fa[512], ra[512], extra[2048], id[37], body[4096];
  snprintf(faults, sizeof faults, "mt-faults-%s", ctxt_unique());
  snprintf(replies, sizeof replies, "mt-replies-%s", ctxt_unique());
  mt_endpoint(w->amqp, faults, NULL);
  mt_endpoint(w->amqp, replies, NULL);
  mt_address(fa, sizeof fa, faults);
  mt_address(ra, sizeof ra, replies);
  const char *request = "5a3c0000-1111-2222-3333-444455556666",
             *corr = "c0000000-1111-2222-3333-444455556666";
  snprintf(
      extra, sizeof extra,
      "\"requestId\":\"%s\",\"correlationId\":\"%s\",\"conversationId\":null,\"initiatorId\":null,"
      "\"sourceAddress\":null,\"destinationAddress\":null,\"responseAddress\":\"%s\",\"faultAddress\":\"%s\","
      "\"expirationTime\":null,",
      request, corr, ra, fa);
  ctxt_make_id(id, 2201);
  mt_envelope(body, sizeof body, 0, id, w->type, extra, "{\"action\":\"fail\"}");
  mt_publish(w->amqp, w->type, "", body, id, NULL, amqp_empty_table);
  json_t *env = mt_receive(w, faults);
  assert_fault(w, env, id, "Testkit.Refused");
  assert_string_equal(field(env, "requestId"), request);
  assert_string_equal(field(env, "correlationId"), corr);
  assert_string_equal(field(env, "initiatorId"), corr);
  assert_string_equal(field(env, "destinationAddress"), fa);
  json_decref(env);
  assert_int_equal(ctxt_amqp_queue_count(w->amqp, replies), 0);
  ctxt_host_stop(w, SIGTERM);
}

/* Rows 9 and 30 for Fault<T>: the fault continues the failed message's trace (its
 * MT-Activity-Id, read from the AMQP headers) as a child span, in the envelope headers and
 * in the AMQP headers, as any send does. */
static void row30_fault_continues_the_trace(void **state) {
  ctxt_world_t *w = *state;
  ctxt_host_start(w, NULL);
  char faults[128], fa[512], extra[1024], id[37], body[4096], rk[64];
  snprintf(faults, sizeof faults, "mt-faults-%s", ctxt_unique());
  mt_endpoint(w->amqp, faults, NULL);
  mt_address(fa, sizeof fa, faults);
  snprintf(extra, sizeof extra, "\"faultAddress\":\"%s\",", fa);
  ctxt_make_id(id, 2230);
  mt_envelope(body, sizeof body, 0, id, w->type, extra, "{\"action\":\"fail\"}");
  const char *parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  amqp_table_entry_t e = {.key = amqp_cstring_bytes("MT-Activity-Id"),
                          .value = {.kind = AMQP_FIELD_KIND_UTF8, .value.bytes = amqp_cstring_bytes(parent)}};
  mt_publish(w->amqp, w->type, "", body, id, NULL, (amqp_table_t){1, &e});
  assert_int_equal(ctxt_amqp_wait_count(w->amqp, faults, 1, CTXT_EFFECT_MS), 1);
  amqp_message_t m;
  assert_int_equal(mt_get(w->amqp, faults, &m, rk, sizeof rk), 1);
  char amqp_activity[64];
  snprintf(amqp_activity, sizeof amqp_activity, "%s", text(&m, "MT-Activity-Id"));
  json_error_t err;
  json_t *env = json_loadb(m.body.bytes, m.body.len, 0, &err);
  amqp_destroy_message(&m);
  assert_non_null(env);
  const char *activity = field(env, "headers.MT-Activity-Id");
  assert_string_equal(activity, amqp_activity);
  assert_int_equal(strlen(activity), 55);
  assert_memory_equal(activity, parent, 36);               /* the same trace */
  assert_memory_not_equal(activity + 36, parent + 36, 16); /* a span of its own */
  json_decref(env);
  ctxt_host_stop(w, SIGTERM);
}

/* Row 22: without faultAddress the fault goes to the response address, with the requestId
 * (the request client fails at once), written once: for the last of the redeliveries, not
 * for each. The request is PascalCase. */
static void row22_fault_to_response_address(void **state) {
  ctxt_world_t *w = *state;
  snprintf(w->endpoint_settings, sizeof w->endpoint_settings,
           "\"immediate_retries\": 0, \"redelivery_ms\": \"100,200\"");
  ctxt_host_start(w, NULL);
  char replies[128], ra[512], extra[1024], id[37], body[4096], q[128];
  snprintf(replies, sizeof replies, "mt-replies-%s", ctxt_unique());
  /* the request client's temporary endpoint: declared again durable, it would be refused */
  ctxt_amqp_temporary_endpoint(w->amqp, replies);
  mt_address(ra, sizeof ra, replies);
  strncat(ra, "?temporary=true", sizeof ra - strlen(ra) - 1);
  const char *request = "5a3c0000-1111-2222-3333-444455550022";
  snprintf(extra, sizeof extra, "\"RequestId\":\"%s\",\"ResponseAddress\":\"%s\",", request, ra);
  ctxt_make_id(id, 2202);
  mt_envelope(body, sizeof body, 1, id, w->type, extra, "{\"action\":\"retry\"}");
  mt_publish(w->amqp, w->type, "", body, id, NULL, amqp_empty_table);
  side_queue(q, sizeof q, w, "error");
  assert_int_equal(ctxt_amqp_wait_count(w->amqp, q, 1, CTXT_EFFECT_MS), 1);
  json_t *env = mt_receive(w, replies);
  assert_fault(w, env, id, "Testkit.Transient");
  assert_string_equal(field(env, "requestId"), request);
  assert_string_equal(field(env, "initiatorId"), request); /* no correlation id: the request's */
  assert_string_equal(field(env, "destinationAddress"), ra);
  assert_int_equal(
      json_integer_value(json_object_get(json_object_get(env, "headers"), "MT-Fault-RedeliveryCount")), 2);
  json_decref(env);
  ctxt_host_stop(w, SIGTERM);
  assert_int_equal(ctxt_amqp_queue_count(w->amqp, replies), 0); /* one fault, not three */
}

/* Row 22: no address: published to MassTransit:Fault--Ns:Type--, bound to
 * MassTransit:Fault. A .NET consumer of Fault<T> (its endpoint bound to the first) and one
 * of Fault (bound to the second) both get it, with both URNs. */
static void row22_fault_published_to_fault_exchange(void **state) {
  ctxt_world_t *w = *state;
  ctxt_host_start(w, NULL);
  char typed[128], any[128], fault_x[256], want[512], id[37], body[4096];
  snprintf(typed, sizeof typed, "mt-fault-of-%s", ctxt_unique());
  snprintf(any, sizeof any, "mt-any-fault-%s", ctxt_unique());
  snprintf(fault_x, sizeof fault_x, "MassTransit:Fault--%s--", w->type);
  mt_endpoint(w->amqp, typed, fault_x);
  mt_endpoint(w->amqp, any, "MassTransit:Fault");
  ctxt_make_id(id, 2203);
  mt_envelope(body, sizeof body, 0, id, w->type, "", "{\"action\":\"fail\"}");
  mt_publish(w->amqp, w->type, "", body, id, NULL, amqp_empty_table);
  json_t *env = mt_receive(w, typed);
  assert_fault(w, env, id, "Testkit.Refused");
  mt_address(want, sizeof want, fault_x);
  assert_string_equal(field(env, "destinationAddress"), want);
  assert_true(json_is_null(json_object_get(env, "requestId")) || json_object_get(env, "requestId") == NULL);
  json_decref(env);
  env = mt_receive(w, any);
  assert_fault(w, env, id, "Testkit.Refused");
  json_decref(env);
  ctxt_host_stop(w, SIGTERM);
}

/* Row 23: ctxd's own delay queues (no delayed-exchange plugin): one per interval, and the
 * copy comes back counted. */
static void row23_redelivery_through_delay_queues(void **state) {
  ctxt_world_t *w = *state;
  snprintf(w->endpoint_settings, sizeof w->endpoint_settings,
           "\"immediate_retries\": 0, \"redelivery_ms\": \"100\"");
  ctxt_host_start(w, NULL);
  char id[37], body[2048], q[128], rk[64];
  side_queue(q, sizeof q, w, "delay_100");
  assert_int_equal(ctxt_amqp_queue_count(w->amqp, q), 0);
  ctxt_make_id(id, 2301);
  mt_envelope(body, sizeof body, 0, id, w->type, "", "{\"action\":\"retry\"}");
  mt_publish(w->amqp, w->type, "", body, id, NULL, amqp_empty_table);
  side_queue(q, sizeof q, w, "error");
  assert_int_equal(ctxt_amqp_wait_count(w->amqp, q, 1, CTXT_EFFECT_MS), 1);
  amqp_message_t m;
  assert_int_equal(mt_get(w->amqp, q, &m, rk, sizeof rk), 1);
  assert_int_equal(integer(&m, "MT-Redelivery-Count"), 1);
  amqp_destroy_message(&m);
  ctxt_host_stop(w, SIGTERM);
  assert_non_null(strstr(w->host.out, "redelivered 1, requeued 0, to _error 1"));
}

/* Row 24: MassTransit writes MT-Redelivery-Count as an integer in the envelope headers and
 * the transport headers. A message a .NET service redelivered once gets only the rest of
 * ctxd's redeliveries; one whose envelope alone says it had them all (a count past the
 * last interval) goes to _error at once. Neither loops. */
static void row24_envelope_redelivery_count_ends_in_error(void **state) {
  ctxt_world_t *w = *state;
  snprintf(w->endpoint_settings, sizeof w->endpoint_settings,
           "\"immediate_retries\": 0, \"redelivery_ms\": \"100,200\"");
  ctxt_host_start(w, NULL);
  char id[37], body[2048], q[128], rk[64];
  amqp_table_entry_t count = {.key = amqp_cstring_bytes("MT-Redelivery-Count"),
                              .value = {.kind = AMQP_FIELD_KIND_I32, .value.i32 = 1}};
  ctxt_make_id(id, 2401);
  mt_envelope(body, sizeof body, 0, id, w->type, "", "{\"action\":\"retry\"}");
  char *h = strstr(body, "\"headers\":{}");
  char with[2048];
  snprintf(with, sizeof with, "%.*s\"headers\":{\"MT-Redelivery-Count\":1}%s", (int)(h - body), body,
           h + strlen("\"headers\":{}"));
  mt_publish(w->amqp, w->type, "", with, id, NULL, (amqp_table_t){1, &count});
  ctxt_make_id(id, 2402);
  mt_envelope(body, sizeof body, 0, id, w->type, "", "{\"action\":\"retry\"}");
  h = strstr(body, "\"headers\":{}");
  snprintf(with, sizeof with, "%.*s\"headers\":{\"MT-Redelivery-Count\":7}%s", (int)(h - body), body,
           h + strlen("\"headers\":{}"));
  mt_publish(w->amqp, w->type, "", with, id, NULL, amqp_empty_table);
  side_queue(q, sizeof q, w, "error");
  assert_int_equal(ctxt_amqp_wait_count(w->amqp, q, 2, CTXT_EFFECT_MS), 2);
  ctxt_wait_settled(w, w->endpoint, 3);
  ctxt_host_stop(w, SIGTERM);
  assert_non_null(strstr(w->host.out, "redelivered 1, requeued 0, to _error 2"));
  amqp_message_t m;
  for (int i = 0; i < 2; i++) {
    assert_int_equal(mt_get(w->amqp, q, &m, rk, sizeof rk), 1);
    /* the .NET count and ctxd's one redelivery; the other's as it came */
    int first = memmem(m.body.bytes, m.body.len, "2401", 4) != NULL;
    assert_int_equal(integer(&m, "MT-Redelivery-Count"), first ? 2 : 7);
    amqp_destroy_message(&m);
  }
}

/* Row 29: all eight MT-Host-* on an _error copy (the _skipped one: row 21). */
static void row29_host_headers(void **state) {
  ctxt_world_t *w = *state;
  ctxt_host_start(w, NULL);
  char id[37], body[2048], q[128], rk[64];
  side_queue(q, sizeof q, w, "error");
  ctxt_make_id(id, 2901);
  mt_envelope(body, sizeof body, 0, id, w->type, "", "{\"action\":\"fail\"}");
  mt_publish(w->amqp, w->type, "", body, id, NULL, amqp_empty_table);
  assert_int_equal(ctxt_amqp_wait_count(w->amqp, q, 1, CTXT_EFFECT_MS), 1);
  amqp_message_t m;
  assert_int_equal(mt_get(w->amqp, q, &m, rk, sizeof rk), 1);
  assert_host_headers(w, &m);
  amqp_destroy_message(&m);
  ctxt_host_stop(w, SIGTERM);
}

/* Row 31: `ctxd errors replay` moves a message back as MassTransit's tools do, its fault
 * headers kept, and its redelivery count reset so that it gets its redeliveries again. */
static void row31_error_replay_keeps_fault_headers(void **state) {
  ctxt_world_t *w = *state;
  snprintf(w->endpoint_settings, sizeof w->endpoint_settings,
           "\"immediate_retries\": 0, \"redelivery_ms\": \"100\"");
  ctxt_host_start(w, NULL);
  char id[37], body[2048], q[128], rk[64];
  side_queue(q, sizeof q, w, "error");
  ctxt_make_id(id, 3101);
  mt_envelope(body, sizeof body, 0, id, w->type, "", "{\"action\":\"retry\"}");
  mt_publish(w->amqp, w->type, "", body, id, NULL, amqp_empty_table);
  assert_int_equal(ctxt_amqp_wait_count(w->amqp, q, 1, CTXT_EFFECT_MS), 1);
  ctxt_host_stop(w, SIGTERM);
  char *argv[] = {
      (char *)ctxt_ctxd_path(), "errors", "replay", "--config", w->config, "--endpoint", w->endpoint, NULL};
  char *env[] = {w->db_env, NULL};
  ctxt_proc_t p;
  ctxt_proc_spawn(&p, argv, env);
  assert_true(ctxt_proc_wait_exit(&p, 30000));
  assert_true(WIFEXITED(p.status) && WEXITSTATUS(p.status) == 0);
  ctxt_proc_free(&p);
  amqp_message_t m;
  assert_int_equal(mt_get(w->amqp, w->endpoint, &m, rk, sizeof rk), 1);
  assert_string_equal(text(&m, "MT-Reason"), "fault");
  assert_string_equal(text(&m, "MT-Fault-ExceptionType"), "Testkit.Transient");
  assert_non_null(header(&m, "MT-Fault-InputAddress"));
  assert_non_null(header(&m, "MT-Host-MachineName"));
  assert_int_equal(integer(&m, "MT-Redelivery-Count"), 0);
  amqp_destroy_message(&m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(row19_error_copy_headers, ctxt_world_setup, ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(row20_error_copy_has_no_expiration, ctxt_world_setup,
                                      ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(row21_skipped_copy_headers, ctxt_world_setup, ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(row22_fault_to_fault_address, ctxt_world_setup, ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(row30_fault_continues_the_trace, ctxt_world_setup, ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(row22_fault_to_response_address, ctxt_world_setup, ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(row22_fault_published_to_fault_exchange, ctxt_world_setup,
                                      ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(row23_redelivery_through_delay_queues, ctxt_world_setup,
                                      ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(row24_envelope_redelivery_count_ends_in_error, ctxt_world_setup,
                                      ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(row29_host_headers, ctxt_world_setup, ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(row31_error_replay_keeps_fault_headers, ctxt_world_setup,
                                      ctxt_world_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
