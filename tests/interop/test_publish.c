/* MassTransit conformance of what ctxd publishes: properties, envelope members, addresses,
 * id propagation, host info, replies (the default request client's temporary endpoint and
 * Direct Reply-To), TTL, trace ids, and a publish channel that keeps flowing when the broker
 * refuses a reply target. The test plays the MassTransit side with raw AMQP, declaring and
 * writing exactly what MassTransit v8 declares and writes; one test per row. */
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hostfixture.h"

#define ENVELOPE "application/vnd.masstransit+json"

/* ---- the MassTransit side ------------------------------------------------------------ */

/* A message taken from a queue: its properties and its body parsed. */
typedef struct {
  amqp_message_t msg;
  json_t *body; /* the envelope */
} got_t;

static void got_free(got_t *g) {
  json_decref(g->body);
  amqp_destroy_message(&g->msg);
}

/* An AMQP reply or fails the test. */
static void ok(amqp_connection_state_t c, const char *what) {
  if (amqp_get_rpc_reply(c).reply_type != AMQP_RESPONSE_NORMAL) fail_msg("%s failed", what);
}

/* A durable fanout exchange as MassTransit declares a message type's (ctxd declares it
 * the same way) and a queue of the test's bound to it. */
static void listen_on(amqp_connection_state_t c, const char *queue, const char *exchange) {
  amqp_exchange_declare(c, 1, amqp_cstring_bytes(exchange), amqp_cstring_bytes("fanout"), 0, 1, 0, 0,
                        amqp_empty_table);
  ok(c, "exchange.declare");
  amqp_queue_declare(c, 1, amqp_cstring_bytes(queue), 0, 0, 0, 1, amqp_empty_table);
  ok(c, "queue.declare");
  amqp_queue_bind(c, 1, amqp_cstring_bytes(queue), amqp_cstring_bytes(exchange), amqp_empty_bytes,
                  amqp_empty_table);
  ok(c, "queue.bind");
}

/* Publishes body on `channel` with props (content type and persistence added) and, on the
 * confirm channel 1, waits for its confirm. */
static void mt_publish(amqp_connection_state_t c, int channel, const char *exchange,
                       amqp_basic_properties_t props, const char *content_type, const char *body) {
  props._flags |= AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG;
  props.content_type = amqp_cstring_bytes(content_type);
  props.delivery_mode = AMQP_DELIVERY_PERSISTENT;
  if (amqp_basic_publish(c, (amqp_channel_t)channel, amqp_cstring_bytes(exchange), amqp_empty_bytes, 0, 0,
                         &props, amqp_cstring_bytes(body)) != AMQP_STATUS_OK)
    fail_msg("publish to %s failed", exchange);
  for (int64_t until = ctxt_now_ms() + 30000; channel == 1;) {
    struct timeval tv = {1, 0};
    amqp_frame_t f;
    int st = amqp_simple_wait_frame_noblock(c, &f, &tv);
    if (st == AMQP_STATUS_OK && f.frame_type == AMQP_FRAME_METHOD &&
        f.payload.method.id == AMQP_BASIC_ACK_METHOD)
      return;
    if ((st != AMQP_STATUS_OK && st != AMQP_STATUS_TIMEOUT) || ctxt_now_ms() > until)
      fail_msg("publish to %s not confirmed", exchange);
  }
}

/* Takes one message from queue, waiting up to timeout_ms; 1 when one came. */
static int take(amqp_connection_state_t c, const char *queue, got_t *g, int timeout_ms) {
  memset(g, 0, sizeof *g);
  for (int64_t until = ctxt_now_ms() + timeout_ms;;) {
    amqp_rpc_reply_t r = amqp_basic_get(c, 1, amqp_cstring_bytes(queue), 1);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) fail_msg("basic.get %s failed", queue);
    if (r.reply.id == AMQP_BASIC_GET_OK_METHOD) {
      if (amqp_read_message(c, 1, &g->msg, 0).reply_type != AMQP_RESPONSE_NORMAL) fail_msg("read failed");
      json_error_t e;
      g->body = json_loadb(g->msg.body.bytes, g->msg.body.len, 0, &e);
      if (g->body == NULL) fail_msg("not JSON: %.*s", (int)g->msg.body.len, (char *)g->msg.body.bytes);
      return 1;
    }
    if (ctxt_now_ms() > until) return 0;
    struct timespec poll = {0, 20 * 1000000L};
    nanosleep(&poll, NULL); /* the next look at the queue, until the deadline */
  }
}

static const char *str(const json_t *o, const char *key) {
  return json_string_value(json_object_get(o, key));
}

/* The AMQP header key of g as text (static buffer), or NULL. */
static const char *amqp_header(const got_t *g, const char *key) {
  static char buf[512];
  const amqp_table_t *t = &g->msg.properties.headers;
  if (!(g->msg.properties._flags & AMQP_BASIC_HEADERS_FLAG)) return NULL;
  for (int i = 0; i < t->num_entries; i++)
    if (t->entries[i].key.len == strlen(key) && memcmp(t->entries[i].key.bytes, key, strlen(key)) == 0 &&
        (t->entries[i].value.kind == AMQP_FIELD_KIND_UTF8 ||
         t->entries[i].value.kind == AMQP_FIELD_KIND_BYTES)) {
      snprintf(buf, sizeof buf, "%.*s", (int)t->entries[i].value.value.bytes.len,
               (char *)t->entries[i].value.value.bytes.bytes);
      return buf;
    }
  return NULL;
}

/* A property of g as text (static buffer), or NULL when it is not set. */
static const char *property(const got_t *g, amqp_flags_t flag) {
  static char buf[256];
  const amqp_basic_properties_t *p = &g->msg.properties;
  const amqp_bytes_t *b = flag == AMQP_BASIC_CONTENT_TYPE_FLAG     ? &p->content_type
                          : flag == AMQP_BASIC_MESSAGE_ID_FLAG     ? &p->message_id
                          : flag == AMQP_BASIC_CORRELATION_ID_FLAG ? &p->correlation_id
                                                                   : &p->expiration;
  if (!(p->_flags & flag)) return NULL;
  snprintf(buf, sizeof buf, "%.*s", (int)b->len, (char *)b->bytes);
  return buf;
}

/* The address MassTransit gives name on the private broker (guest@127.0.0.1:port, vhost /). */
static void address_of(char *buf, size_t len, const char *name) {
  char url[256];
  struct amqp_connection_info ci;
  snprintf(url, sizeof url, "%s", ctxt_amqp_url());
  assert_int_equal(amqp_parse_url(url, &ci), AMQP_STATUS_OK);
  snprintf(buf, len, "rabbitmq://%s:%d/%s", ci.host, ci.port, name);
}

/* An envelope of the world's type as MassTransit's serializer writes it; `more` is more
 * members (starting with ","), or "". */
static void ping(ctxt_world_t *w, int n, const char *action, const char *more, char *body, size_t len) {
  char id[37];
  ctxt_make_id(id, n);
  snprintf(body, len,
           "{\n  \"messageId\": \"%s\",\n  \"messageType\": [\n    \"urn:message:%s\"\n  ],\n"
           "  \"message\": {\n    \"action\": \"%s\"\n  }%s\n}",
           id, w->type, action, more);
}

static void send_ping(ctxt_world_t *w, int n, const char *action, const char *more) {
  char body[4096];
  ping(w, n, action, more, body, sizeof body);
  mt_publish(w->amqp, 1, w->type, (amqp_basic_properties_t){0}, ENVELOPE, body);
}

/* Starts the host with a queue of the test's on the event testkit's "publish" writes, sends
 * a Ping asking for it (more: envelope members) and takes the event. */
static void published_event(ctxt_world_t *w, const char *more, got_t *g) {
  char q[96];
  snprintf(q, sizeof q, "%s-events", w->endpoint);
  listen_on(w->amqp, q, w->echo_type);
  ctxt_host_start(w, NULL);
  send_ping(w, 1, "publish", more);
  assert_true(take(w->amqp, q, g, CTXT_EFFECT_MS));
}

/* ---- rows ---------------------------------------------------------------------------- */

/* Row 2: content_type from the serializer, persistent, message_id. */
static void row2_content_type_is_the_envelope(void **state) {
  ctxt_world_t *w = *state;
  got_t g;
  published_event(w, "", &g);
  assert_string_equal(property(&g, AMQP_BASIC_CONTENT_TYPE_FLAG), ENVELOPE);
  assert_int_equal(g.msg.properties.delivery_mode, AMQP_DELIVERY_PERSISTENT);
  assert_string_equal(property(&g, AMQP_BASIC_MESSAGE_ID_FLAG), str(g.body, "messageId"));
  got_free(&g);
}

/* Row 4: all 15 members of MassTransit's envelope, in its order, nulls included. */
static void row4_envelope_has_all_15_members(void **state) {
  ctxt_world_t *w = *state;
  static const char *const members[] = {
      "messageId",     "requestId",          "correlationId",   "conversationId", "initiatorId",
      "sourceAddress", "destinationAddress", "responseAddress", "faultAddress",   "messageType",
      "message",       "expirationTime",     "sentTime",        "headers",        "host"};
  got_t g;
  published_event(w, "", &g);
  assert_int_equal(json_object_size(g.body), 15);
  size_t at = 0;
  const char *key;
  json_t *value;
  json_object_foreach(g.body, key, value) assert_string_equal(key, members[at++]);
  assert_true(json_is_null(json_object_get(g.body, "requestId")));
  assert_true(json_is_null(json_object_get(g.body, "expirationTime")));
  got_free(&g);
}

/* Row 8: a raw JSON request (UseRawJsonSerializer) carries its metadata in MassTransit's
 * headers: the reply goes to MT-Response-Address with RequestId, and CorrelationId counts
 * as the initiator. */
static void row8_raw_json_request_reads_mt_headers(void **state) {
  ctxt_world_t *w = *state;
  char reply[96], address[256], urn[160], id[37];
  snprintf(reply, sizeof reply, "%s-bus", w->endpoint);
  ctxt_amqp_temporary_endpoint(w->amqp, reply);
  address_of(address, sizeof address, reply);
  strcat(address, "?temporary=true");
  snprintf(urn, sizeof urn, "urn:message:%s", w->type);
  ctxt_make_id(id, 8);
  ctxt_host_start(w, NULL);
  amqp_table_entry_t h[] = {
      {amqp_cstring_bytes("MessageId"), {AMQP_FIELD_KIND_UTF8, {.bytes = amqp_cstring_bytes(id)}}},
      {amqp_cstring_bytes("MT-MessageType"), {AMQP_FIELD_KIND_UTF8, {.bytes = amqp_cstring_bytes(urn)}}},
      {amqp_cstring_bytes("RequestId"),
       {AMQP_FIELD_KIND_UTF8, {.bytes = amqp_cstring_bytes("00000000-0000-4000-8000-0000000008aa")}}},
      {amqp_cstring_bytes("CorrelationId"),
       {AMQP_FIELD_KIND_UTF8, {.bytes = amqp_cstring_bytes("00000000-0000-4000-8000-0000000008bb")}}},
      {amqp_cstring_bytes("MT-Response-Address"),
       {AMQP_FIELD_KIND_UTF8, {.bytes = amqp_cstring_bytes(address)}}},
  };
  amqp_basic_properties_t p = {._flags = AMQP_BASIC_HEADERS_FLAG, .headers = {5, h}};
  mt_publish(w->amqp, 1, w->type, p, "application/json", "{\"action\": \"respond\"}");
  got_t g;
  assert_true(take(w->amqp, reply, &g, CTXT_EFFECT_MS));
  assert_string_equal(str(g.body, "requestId"), "00000000-0000-4000-8000-0000000008aa");
  assert_string_equal(str(g.body, "initiatorId"), "00000000-0000-4000-8000-0000000008bb");
  assert_string_equal(str(g.body, "destinationAddress"), address);
  got_free(&g);
}

/* Row 9: correlation_id when set, expiration from the time to live, the send headers
 * copied to the AMQP headers. */
static void row9_amqp_properties_written(void **state) {
  ctxt_world_t *w = *state;
  char reply[96], more[512];
  snprintf(reply, sizeof reply, "%s-bus", w->endpoint);
  ctxt_amqp_temporary_endpoint(w->amqp, reply);
  ctxt_host_start(w, NULL);
  snprintf(more, sizeof more,
           ",\n  \"requestId\": \"00000000-0000-4000-8000-0000000009aa\",\n"
           "  \"correlationId\": \"00000000-0000-4000-8000-0000000009bb\",\n"
           "  \"responseAddress\": \"rabbitmq://localhost/%s?temporary=true\"",
           reply);
  amqp_basic_properties_t p = {._flags = AMQP_BASIC_EXPIRATION_FLAG,
                               .expiration = amqp_cstring_bytes("30000")};
  char body[2048];
  ping(w, 9, "respond", more, body, sizeof body);
  mt_publish(w->amqp, 1, w->type, p, ENVELOPE, body);
  got_t g;
  assert_true(take(w->amqp, reply, &g, CTXT_EFFECT_MS));
  assert_string_equal(property(&g, AMQP_BASIC_CONTENT_TYPE_FLAG), ENVELOPE);
  assert_int_equal(g.msg.properties.delivery_mode, AMQP_DELIVERY_PERSISTENT);
  assert_string_equal(property(&g, AMQP_BASIC_MESSAGE_ID_FLAG), str(g.body, "messageId"));
  assert_string_equal(property(&g, AMQP_BASIC_CORRELATION_ID_FLAG), "00000000-0000-4000-8000-0000000009bb");
  long ttl = strtol(property(&g, AMQP_BASIC_EXPIRATION_FLAG), NULL, 10);
  assert_true(ttl > 0 && ttl <= 30000);
  const char *activity = str(json_object_get(g.body, "headers"), "MT-Activity-Id");
  assert_non_null(activity);
  assert_string_equal(amqp_header(&g, "MT-Activity-Id"), activity);
  got_free(&g);
}

/* Row 10: sourceAddress is the consuming endpoint, destinationAddress the exchange, both
 * rabbitmq://host:port/name. */
static void row10_addresses_are_rabbitmq_uris(void **state) {
  ctxt_world_t *w = *state;
  char source[256], destination[256];
  address_of(source, sizeof source, w->endpoint);
  address_of(destination, sizeof destination, w->echo_type);
  got_t g;
  published_event(w, "", &g);
  assert_string_equal(str(g.body, "sourceAddress"), source);
  assert_string_equal(str(g.body, "destinationAddress"), destination);
  got_free(&g);
}

/* Row 11: from a consumer the conversation goes on, the initiator is the consumed
 * correlationId (else its requestId), the correlationId is not copied. */
static void row11_initiator_is_consumed_correlation_else_request(void **state) {
  ctxt_world_t *w = *state;
  got_t g;
  published_event(w,
                  ",\n  \"correlationId\": \"00000000-0000-4000-8000-0000000011cc\",\n"
                  "  \"conversationId\": \"00000000-0000-4000-8000-0000000011dd\"",
                  &g);
  assert_string_equal(str(g.body, "initiatorId"), "00000000-0000-4000-8000-0000000011cc");
  assert_string_equal(str(g.body, "conversationId"), "00000000-0000-4000-8000-0000000011dd");
  assert_true(json_is_null(json_object_get(g.body, "correlationId")));
  got_free(&g);
  char q[96];
  snprintf(q, sizeof q, "%s-events", w->endpoint);
  send_ping(w, 2, "publish", ",\n  \"requestId\": \"00000000-0000-4000-8000-0000000011ee\"");
  assert_true(take(w->amqp, q, &g, CTXT_EFFECT_MS));
  assert_string_equal(str(g.body, "initiatorId"), "00000000-0000-4000-8000-0000000011ee");
  got_free(&g);
}

/* Row 12: the host object with MassTransit's 8 members, processId an integer. */
static void row12_host_info(void **state) {
  ctxt_world_t *w = *state;
  static const char *const members[] = {"machineName",        "processName",           "processId",
                                        "assembly",           "assemblyVersion",       "frameworkVersion",
                                        "massTransitVersion", "operatingSystemVersion"};
  got_t g;
  published_event(w, "", &g);
  json_t *host = json_object_get(g.body, "host");
  assert_int_equal(json_object_size(host), 8);
  for (size_t i = 0; i < 8; i++) assert_non_null(json_object_get(host, members[i]));
  assert_true(json_is_integer(json_object_get(host, "processId")));
  got_free(&g);
}

/* Row 25: the default request client's temporary endpoint (non-durable, auto-delete) gets
 * the reply; ctxd never redeclares it (the 406 that closed its publish channel), and what
 * it publishes next still flows. */
static void row25_temporary_reply_endpoint_not_redeclared(void **state) {
  ctxt_world_t *w = *state;
  char reply[96], events[96], more[512];
  snprintf(reply, sizeof reply, "%s-bus", w->endpoint);
  snprintf(events, sizeof events, "%s-events", w->endpoint);
  ctxt_amqp_temporary_endpoint(w->amqp, reply);
  listen_on(w->amqp, events, w->echo_type);
  ctxt_host_start(w, NULL);
  snprintf(more, sizeof more,
           ",\n  \"requestId\": \"00000000-0000-4000-8000-0000000025aa\",\n"
           "  \"responseAddress\": \"rabbitmq://localhost/%s?temporary=true\"",
           reply);
  send_ping(w, 1, "respond", more);
  got_t g;
  assert_true(take(w->amqp, reply, &g, CTXT_EFFECT_MS));
  assert_string_equal(str(g.body, "requestId"), "00000000-0000-4000-8000-0000000025aa");
  got_free(&g);
  send_ping(w, 2, "publish", "");
  assert_true(take(w->amqp, events, &g, CTXT_EFFECT_MS));
  got_free(&g);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(*) FROM ctxd.outbox_archive WHERE refused IS NOT NULL"),
                   0);
}

/* Row 26: Direct Reply-To. The requester consumes amq.rabbitmq.reply-to (no-ack) and
 * publishes on the same channel with reply_to amq.rabbitmq.reply-to and a responseAddress
 * ending in it; the reply goes through the default exchange to the broker's reply_to. */
static void row26_direct_reply_to(void **state) {
  ctxt_world_t *w = *state;
  ctxt_host_start(w, NULL);
  amqp_channel_open(w->amqp, 2);
  ok(w->amqp, "channel.open");
  amqp_basic_consume(w->amqp, 2, amqp_cstring_bytes("amq.rabbitmq.reply-to"), amqp_empty_bytes, 0, 1, 0,
                     amqp_empty_table);
  ok(w->amqp, "basic.consume amq.rabbitmq.reply-to");
  char body[2048], address[256];
  address_of(address, sizeof address, "amq.rabbitmq.reply-to");
  char more[512];
  snprintf(more, sizeof more,
           ",\n  \"requestId\": \"00000000-0000-4000-8000-0000000026aa\",\n  \"responseAddress\": \"%s\"",
           address);
  ping(w, 26, "respond", more, body, sizeof body);
  amqp_basic_properties_t p = {._flags = AMQP_BASIC_REPLY_TO_FLAG,
                               .reply_to = amqp_cstring_bytes("amq.rabbitmq.reply-to")};
  mt_publish(w->amqp, 2, w->type, p, ENVELOPE, body);
  amqp_envelope_t e;
  struct timeval tv = {CTXT_EFFECT_MS / 1000, 0};
  amqp_maybe_release_buffers(w->amqp);
  amqp_rpc_reply_t r = amqp_consume_message(w->amqp, &e, &tv, 0);
  assert_int_equal(r.reply_type, AMQP_RESPONSE_NORMAL);
  assert_int_equal(e.channel, 2);
  json_t *reply = json_loadb(e.message.body.bytes, e.message.body.len, 0, NULL);
  assert_string_equal(str(reply, "requestId"), "00000000-0000-4000-8000-0000000026aa");
  assert_string_equal(str(reply, "destinationAddress"), address);
  json_decref(reply);
  amqp_destroy_envelope(&e);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(*) FROM ctxd.outbox_archive WHERE refused IS NOT NULL"),
                   0);
}

/* Row 27: the response carries the RequestId, its SourceAddress is the responding
 * endpoint, and its time to live is what the request had left. */
static void row27_response_envelope(void **state) {
  ctxt_world_t *w = *state;
  char reply[96], more[512], source[256], expires[32];
  snprintf(reply, sizeof reply, "%s-bus", w->endpoint);
  ctxt_amqp_temporary_endpoint(w->amqp, reply);
  address_of(source, sizeof source, w->endpoint);
  ctxt_host_start(w, NULL);
  time_t at = time(NULL) + 30;
  strftime(expires, sizeof expires, "%Y-%m-%dT%H:%M:%S.1234567Z", gmtime(&at));
  snprintf(more, sizeof more,
           ",\n  \"requestId\": \"00000000-0000-4000-8000-0000000027aa\",\n"
           "  \"responseAddress\": \"rabbitmq://localhost/%s?temporary=true\",\n  \"expirationTime\": \"%s\"",
           reply, expires);
  send_ping(w, 27, "respond", more);
  got_t g;
  assert_true(take(w->amqp, reply, &g, CTXT_EFFECT_MS));
  assert_string_equal(str(g.body, "requestId"), "00000000-0000-4000-8000-0000000027aa");
  assert_string_equal(str(g.body, "sourceAddress"), source);
  assert_memory_equal(str(g.body, "expirationTime"), expires, 20); /* to the second */
  long ttl = strtol(property(&g, AMQP_BASIC_EXPIRATION_FLAG), NULL, 10);
  assert_true(ttl > 0 && ttl <= 31000);
  got_free(&g);
}

/* Row 28: a time to live is written as the envelope's expirationTime and the AMQP
 * expiration (here a reply's, from a request that had only an AMQP expiration). */
static void row28_ttl_sets_expiration_time_and_amqp_expiration(void **state) {
  ctxt_world_t *w = *state;
  char reply[96], more[512], body[2048];
  snprintf(reply, sizeof reply, "%s-bus", w->endpoint);
  ctxt_amqp_temporary_endpoint(w->amqp, reply);
  ctxt_host_start(w, NULL);
  snprintf(more, sizeof more,
           ",\n  \"requestId\": \"00000000-0000-4000-8000-0000000028aa\",\n"
           "  \"responseAddress\": \"rabbitmq://localhost/%s?temporary=true\"",
           reply);
  ping(w, 28, "respond", more, body, sizeof body);
  amqp_basic_properties_t p = {._flags = AMQP_BASIC_EXPIRATION_FLAG,
                               .expiration = amqp_cstring_bytes("20000")};
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  mt_publish(w->amqp, 1, w->type, p, ENVELOPE, body);
  got_t g;
  assert_true(take(w->amqp, reply, &g, CTXT_EFFECT_MS));
  int64_t when = 0;
  const char *t = str(g.body, "expirationTime");
  assert_non_null(t);
  struct tm tm = {0};
  assert_non_null(strptime(t, "%Y-%m-%dT%H:%M:%S", &tm));
  when = (int64_t)timegm(&tm);
  assert_true(when >= now.tv_sec + 18 && when <= now.tv_sec + 21);
  long ttl = strtol(property(&g, AMQP_BASIC_EXPIRATION_FLAG), NULL, 10);
  assert_true(ttl > 0 && ttl <= 20000);
  got_free(&g);
}

/* Row 30: the trace parent is read from the transport's MT-Activity-Id (not the older
 * envelope copy); what is published continues the trace with a new span id, in both the
 * envelope and the AMQP headers; the log lines carry the incoming id. */
static void row30_mt_activity_id_continues_the_trace(void **state) {
  ctxt_world_t *w = *state;
  const char *transport = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  const char *stale = "00-11111111111111111111111111111111-2222222222222222-01";
  char q[96], body[2048], more[256];
  snprintf(q, sizeof q, "%s-events", w->endpoint);
  listen_on(w->amqp, q, w->echo_type);
  ctxt_host_start(w, NULL);
  snprintf(more, sizeof more, ",\n  \"headers\": {\n    \"MT-Activity-Id\": \"%s\"\n  }", stale);
  ping(w, 30, "publish", more, body, sizeof body);
  amqp_table_entry_t h = {amqp_cstring_bytes("MT-Activity-Id"),
                          {AMQP_FIELD_KIND_UTF8, {.bytes = amqp_cstring_bytes(transport)}}};
  amqp_basic_properties_t p = {._flags = AMQP_BASIC_HEADERS_FLAG, .headers = {1, &h}};
  mt_publish(w->amqp, 1, w->type, p, ENVELOPE, body);
  got_t g;
  assert_true(take(w->amqp, q, &g, CTXT_EFFECT_MS));
  const char *out = str(json_object_get(g.body, "headers"), "MT-Activity-Id");
  assert_non_null(out);
  assert_int_equal(strlen(out), 55);
  assert_memory_equal(out, transport, 36);
  assert_string_equal(out + 52, "-01");
  assert_memory_not_equal(out + 36, transport + 36, 16);
  assert_string_equal(amqp_header(&g, "MT-Activity-Id"), out);
  got_free(&g);
  /* a failure is logged with the trace it belongs to */
  ping(w, 31, "fail", more, body, sizeof body);
  mt_publish(w->amqp, 1, w->type, p, ENVELOPE, body);
  snprintf(q, sizeof q, "%s_error", w->endpoint);
  assert_int_equal(ctxt_amqp_wait_count(w->amqp, q, 1, CTXT_EFFECT_MS), 1);
  ctxt_host_stop(w, SIGTERM);
  char field[128];
  snprintf(field, sizeof field, "\"traceparent\":\"%s\"", transport);
  assert_non_null(strstr(w->host.out, field));
}

/* Publish channel health: a reply target that does not exist makes the broker close the
 * publish channel. The row is set aside with the broker's reason (archive, metric, log),
 * an event published meanwhile arrives within a second, and no later sweep sends the
 * refused row again. */
static void publish_channel_refusal_keeps_other_publishes_flowing(void **state) {
  ctxt_world_t *w = *state;
  char events[96], more[512];
  snprintf(events, sizeof events, "%s-events", w->endpoint);
  listen_on(w->amqp, events, w->echo_type);
  /* a sweep soon after: a refused row left in the outbox would be sent again */
  snprintf(w->host_settings, sizeof w->host_settings,
           ", \"outbox\": {\"sweep_grace_ms\": 300, \"sweep_interval_ms\": 100}");
  ctxt_host_start(w, NULL);
  snprintf(more, sizeof more,
           ",\n  \"requestId\": \"00000000-0000-4000-8000-00000000ffaa\",\n"
           "  \"responseAddress\": \"rabbitmq://localhost/%s-gone?temporary=true\"",
           w->endpoint);
  send_ping(w, 1, "respond", more);
  int64_t sent = ctxt_now_ms();
  send_ping(w, 2, "publish", "");
  got_t g;
  assert_true(take(w->amqp, events, &g, CTXT_EFFECT_MS));
  int64_t took = ctxt_now_ms() - sent;
  got_free(&g);
  if (took > 1000) fail_msg("the event took %lld ms", (long long)took);
  assert_int_equal(
      ctxt_pg_wait_long(w->pg,
                        "SELECT count(*) FROM ctxd.outbox_archive WHERE refused LIKE '404 NOT_FOUND%'"
                        " AND (body::json->>'requestId') = '00000000-0000-4000-8000-00000000ffaa'",
                        1, CTXT_EFFECT_MS),
      1);
  /* noted for the console in the same statement */
  assert_int_equal(ctxt_pg_long(w->pg,
                                "SELECT count(*) FROM ctxd.outbox_set_aside s JOIN ctxd.outbox_archive a"
                                " USING (id) WHERE s.refused = a.refused AND s.exchange = a.exchange"),
                   1);
  assert_int_equal(ctxt_metric(w, NULL, "ctxd_outbox_refused_total"), 1);
  /* a few sweeps later: nothing left to send, nothing refused again */
  send_ping(w, 3, "publish", "");
  assert_true(take(w->amqp, events, &g, CTXT_EFFECT_MS));
  got_free(&g);
  for (int64_t later = ctxt_now_ms() + 1000; ctxt_now_ms() < later;) { /* ten sweep intervals */
    assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(*) FROM ctxd.outbox"), 0);
    struct timespec look = {0, 50 * 1000000L};
    nanosleep(&look, NULL);
  }
  assert_int_equal(ctxt_metric(w, NULL, "ctxd_outbox_refused_total"), 1);
  ctxt_host_stop(w, SIGTERM);
  assert_non_null(strstr(w->host.out, "archived as refused"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(row2_content_type_is_the_envelope, ctxt_world_setup,
                                      ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(row4_envelope_has_all_15_members, ctxt_world_setup,
                                      ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(row8_raw_json_request_reads_mt_headers, ctxt_world_setup,
                                      ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(row9_amqp_properties_written, ctxt_world_setup, ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(row10_addresses_are_rabbitmq_uris, ctxt_world_setup,
                                      ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(row11_initiator_is_consumed_correlation_else_request, ctxt_world_setup,
                                      ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(row12_host_info, ctxt_world_setup, ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(row25_temporary_reply_endpoint_not_redeclared, ctxt_world_setup,
                                      ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(row26_direct_reply_to, ctxt_world_setup, ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(row27_response_envelope, ctxt_world_setup, ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(row28_ttl_sets_expiration_time_and_amqp_expiration, ctxt_world_setup,
                                      ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(row30_mt_activity_id_continues_the_trace, ctxt_world_setup,
                                      ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(publish_channel_refusal_keeps_other_publishes_flowing, ctxt_world_setup,
                                      ctxt_world_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
