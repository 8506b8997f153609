/* Unit tests for runtime/envelope.c: MassTransit envelope decoding and encoding, UUIDs,
 * AMQP header tables. No broker needed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ctxd/errno.h>
#include <ctxd/version.h>

#include "amqptable.h"
#include "envelope.h"
#include "envelope_out.h"
#include "uuid.h"

#define MATERIAL_TYPE "Dodo.DataCatalog.Contracts.Products.v1:MaterialType"
#define MESSAGE_ID "0b000000-5d56-0015-9c3e-08dcb7f1a2b3"
#define CONVERSATION_ID "0b000000-5d56-0015-a3f1-08dcb7f1a2b3"
#define SOURCE_ADDRESS                                                                                       \
  "rabbitmq://rabbitmq/datacatalog/datacatalog_api_bus_6ooyyyrbw1ofzrbgbdpd4x4s8y"                           \
  "?temporary=true"
#define DESTINATION_ADDRESS "rabbitmq://rabbitmq/datacatalog/" MATERIAL_TYPE
#define SENT_TIME "2024-08-10T12:34:56.1234567Z"

/* A MaterialType update as MassTransit 8 (System.Text.Json, camelCase) publishes it. */
static const char camel_envelope[] = "{\n"
                                     "  \"messageId\": \"" MESSAGE_ID "\",\n"
                                     "  \"requestId\": null,\n"
                                     "  \"correlationId\": null,\n"
                                     "  \"conversationId\": \"" CONVERSATION_ID "\",\n"
                                     "  \"initiatorId\": null,\n"
                                     "  \"sourceAddress\": \"" SOURCE_ADDRESS "\",\n"
                                     "  \"destinationAddress\": \"" DESTINATION_ADDRESS "\",\n"
                                     "  \"responseAddress\": null,\n"
                                     "  \"faultAddress\": null,\n"
                                     "  \"messageType\": [\n"
                                     "    \"urn:message:" MATERIAL_TYPE "\"\n"
                                     "  ],\n"
                                     "  \"message\": {\n"
                                     "    \"id\": \"11eb7a3c0f7c4b7e9f1a2b3c4d5e6f70\",\n"
                                     "    \"version\": 3,\n"
                                     "    \"countryId\": 643,\n"
                                     "    \"departmentId\": \"000d3a240c719a8711e68aba13f7fe8e\",\n"
                                     "    \"name\": \"Сыр моцарелла\",\n"
                                     "    \"category\": 1,\n"
                                     "    \"basicUnitOfMeasure\": 5,\n"
                                     "    \"isRemoved\": false\n"
                                     "  },\n"
                                     "  \"expirationTime\": null,\n"
                                     "  \"sentTime\": \"" SENT_TIME "\",\n"
                                     "  \"headers\": {},\n"
                                     "  \"host\": {\n"
                                     "    \"machineName\": \"datacatalog-api-5f7d9c8b4-x2k9z\",\n"
                                     "    \"processName\": \"Dodo.DataCatalog.Api\",\n"
                                     "    \"processId\": 1,\n"
                                     "    \"assembly\": \"Dodo.DataCatalog.Api\",\n"
                                     "    \"assemblyVersion\": \"1.0.0.0\",\n"
                                     "    \"frameworkVersion\": \"8.0.7\",\n"
                                     "    \"massTransitVersion\": \"8.2.3.0\",\n"
                                     "    \"operatingSystemVersion\": \"Unix 5.15.0.1064\"\n"
                                     "  }\n"
                                     "}\n";

/* The same update from an older publisher: PascalCase keys, braced upper-case message id. */
static const char pascal_envelope[] =
    "{\"MessageId\":\"{0B000000-5D56-0015-9C3E-08DCB7F1A2B3}\","
    "\"RequestId\":null,"
    "\"ConversationId\":\"" CONVERSATION_ID "\","
    "\"SourceAddress\":\"" SOURCE_ADDRESS "\","
    "\"DestinationAddress\":\"" DESTINATION_ADDRESS "\","
    "\"MessageType\":[\"urn:message:" MATERIAL_TYPE "\"],"
    "\"Message\":{\"Id\":\"11eb7a3c0f7c4b7e9f1a2b3c4d5e6f70\",\"Version\":3,"
    "\"CountryId\":643,\"DepartmentId\":\"000d3a240c719a8711e68aba13f7fe8e\","
    "\"Name\":\"Сыр моцарелла\",\"Category\":1,\"BasicUnitOfMeasure\":5,"
    "\"IsRemoved\":false},"
    "\"SentTime\":\"" SENT_TIME "\","
    "\"Headers\":{},"
    "\"Host\":{\"MachineName\":\"dc-01\",\"ProcessName\":\"Dodo.DataCatalog.Api\"}}";

#define UUID_A "6f1c2f8e-8d5b-4c8e-9d1a-3b2c1d0e9f8a"

enum { ERRLEN = 256 };

/* ------------------------------------------------------------------------------------- */

static amqp_basic_properties_t content_type_props(const char *ct) {
  amqp_basic_properties_t p = {0};
  p._flags = AMQP_BASIC_CONTENT_TYPE_FLAG;
  p.content_type = amqp_cstring_bytes(ct);
  return p;
}

static amqp_table_entry_t string_entry(const char *key, const char *value) {
  return (amqp_table_entry_t){
      .key = amqp_cstring_bytes(key),
      .value = {.kind = AMQP_FIELD_KIND_UTF8, .value.bytes = amqp_cstring_bytes(value)}};
}

static int decode(const char *body, const amqp_basic_properties_t *props, ctxd__envelope_t *env,
                  char err[ERRLEN]) {
  return ctxd__envelope_decode(body, strlen(body), props, NULL, env, err, ERRLEN);
}

static void assert_env_empty(const ctxd__envelope_t *env) {
  ctxd__envelope_t zero;
  memset(&zero, 0, sizeof zero);
  assert_memory_equal(env, &zero, sizeof zero);
}

static const char *member_string(const json_t *obj, const char *key) {
  return json_string_value(json_object_get(obj, key));
}

/* Checks a decoded MaterialType update, whatever the case of its keys. */
static void assert_material_type(const ctxd__envelope_t *env) {
  assert_string_equal(env->message_id, MESSAGE_ID);
  assert_string_equal(env->conversation_id, CONVERSATION_ID);
  assert_string_equal(env->source_address, SOURCE_ADDRESS);
  assert_string_equal(env->destination_address, DESTINATION_ADDRESS);
  assert_string_equal(env->sent_time, SENT_TIME);
  assert_null(env->request_id); /* null in the envelope counts as absent */
  assert_null(env->correlation_id);
  assert_null(env->initiator_id);
  assert_null(env->response_address);
  assert_null(env->fault_address);
  assert_int_equal(env->nmessage_types, 1);
  assert_string_equal(env->message_types[0], MATERIAL_TYPE);
  assert_true(json_is_object(env->headers));
  assert_int_equal(json_object_size(env->headers), 0);
  assert_true(json_is_object(env->message));
  assert_int_equal(json_integer_value(ctxd__json_get_ci(env->message, "version")), 3);
  assert_int_equal(json_integer_value(ctxd__json_get_ci(env->message, "countryId")), 643);
  assert_int_equal(json_integer_value(ctxd__json_get_ci(env->message, "category")), 1);
  assert_int_equal(json_integer_value(ctxd__json_get_ci(env->message, "basicUnitOfMeasure")), 5);
  assert_true(json_is_false(ctxd__json_get_ci(env->message, "isRemoved")));
  assert_string_equal(json_string_value(ctxd__json_get_ci(env->message, "id")),
                      "11eb7a3c0f7c4b7e9f1a2b3c4d5e6f70");
  assert_string_equal(json_string_value(ctxd__json_get_ci(env->message, "name")), "Сыр моцарелла");
}

/* ---- envelope decoding -------------------------------------------------------------- */

static void test_decode_camel_case_envelope(void **state) {
  (void)state;
  amqp_basic_properties_t props = content_type_props(CTXD__ENVELOPE_CONTENT_TYPE);
  ctxd__envelope_t env;
  char err[ERRLEN];
  assert_int_equal(decode(camel_envelope, &props, &env, err), 0);
  assert_string_equal(err, "");
  assert_material_type(&env);
  ctxd__envelope_free(&env);
  assert_env_empty(&env);
}

static void test_decode_pascal_case_envelope(void **state) {
  (void)state;
  ctxd__envelope_t camel, pascal;
  char err[ERRLEN];
  amqp_basic_properties_t props = content_type_props(CTXD__ENVELOPE_CONTENT_TYPE);
  assert_int_equal(decode(camel_envelope, &props, &camel, err), 0);
  /* no content type at all: recognised as an envelope by its Message/MessageType keys */
  assert_int_equal(decode(pascal_envelope, NULL, &pascal, err), 0);
  assert_material_type(&pascal);
  assert_string_equal(pascal.message_id, camel.message_id);
  assert_string_equal(pascal.conversation_id, camel.conversation_id);
  assert_string_equal(pascal.message_types[0], camel.message_types[0]);
  ctxd__envelope_free(&camel);
  ctxd__envelope_free(&pascal);
}

static void test_decode_content_type_parameters_and_case(void **state) {
  (void)state;
  static const char *const types[] = {"application/vnd.masstransit+json; charset=utf-8",
                                      "Application/Vnd.MassTransit+JSON",
                                      " application/vnd.masstransit+json ;charset=utf-8"};
  for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
    amqp_basic_properties_t props = content_type_props(types[i]);
    ctxd__envelope_t env;
    char err[ERRLEN];
    assert_int_equal(decode(camel_envelope, &props, &env, err), 0);
    assert_material_type(&env);
    ctxd__envelope_free(&env);
  }
}

static void test_decode_envelope_headers_merged(void **state) {
  (void)state;
  const char *body = "{\"messageId\":\"" UUID_A "\",\"messageType\":[\"urn:message:A.v1:B\","
                     "\"urn:message:A.v1:IB\",\"NoPrefix:C\"],\"message\":{},"
                     "\"headers\":{\"Shared\":\"envelope\",\"OnlyEnvelope\":1}}";
  amqp_table_entry_t entries[] = {string_entry("Shared", "amqp"), string_entry("OnlyAmqp", "x")};
  amqp_basic_properties_t props = content_type_props(CTXD__ENVELOPE_CONTENT_TYPE);
  props._flags |= AMQP_BASIC_HEADERS_FLAG;
  props.headers = (amqp_table_t){.num_entries = 2, .entries = entries};
  ctxd__envelope_t env;
  char err[ERRLEN];
  assert_int_equal(decode(body, &props, &env, err), 0);
  assert_int_equal(json_object_size(env.headers), 3);
  assert_string_equal(member_string(env.headers, "Shared"), "envelope");
  assert_string_equal(member_string(env.headers, "OnlyAmqp"), "x");
  assert_int_equal(json_integer_value(json_object_get(env.headers, "OnlyEnvelope")), 1);
  assert_int_equal(env.nmessage_types, 3);
  assert_string_equal(env.message_types[0], "A.v1:B");
  assert_string_equal(env.message_types[1], "A.v1:IB");
  assert_string_equal(env.message_types[2], "NoPrefix:C");
  ctxd__envelope_free(&env);
}

/* MassTransit never repeats a key, but a repeated one is tolerated: the last wins. */
static void test_decode_duplicate_keys_tolerated(void **state) {
  (void)state;
  const char *body = "{\"messageId\":\"" MESSAGE_ID "\",\"messageId\":\"" UUID_A "\","
                     "\"messageType\":[\"urn:message:A:B\"],\"message\":{\"n\":1,\"n\":2}}";
  ctxd__envelope_t env;
  char err[ERRLEN];
  assert_int_equal(decode(body, NULL, &env, err), 0);
  assert_string_equal(env.message_id, UUID_A);
  assert_int_equal(json_integer_value(json_object_get(env.message, "n")), 2);
  ctxd__envelope_free(&env);
}

/* The message's own text is handed out only when it says exactly what was decoded. */
static void test_decode_message_text(void **state) {
  (void)state;
  static const struct {
    const char *body, *text; /* text NULL: not available */
  } cases[] = {
      {"{\"messageId\":\"" UUID_A
       "\",\"messageType\":[\"urn:message:A:B\"],\"message\": {\"n\": [1, {\"s\": \"}\\\"\"}]} ,\"x\":1}",
       "{\"n\": [1, {\"s\": \"}\\\"\"}]}"},
      {"{\"Message\":{\"a\":\"b\"},\"MessageId\":\"" UUID_A "\",\"MessageType\":[\"urn:message:A:B\"]}",
       "{\"a\":\"b\"}"},
      /* a repeated key inside the message: the tree holds the last value only */
      {"{\"messageId\":\"" UUID_A "\",\"messageType\":[\"urn:message:A:B\"],\"message\":{\"n\":1,\"n\":2}}",
       NULL},
      /* two members name the message */
      {"{\"messageId\":\"" UUID_A
       "\",\"messageType\":[\"urn:message:A:B\"],\"message\":{\"n\":1},\"Message\":{\"n\":2}}",
       NULL},
      /* an escaped key json_loadb reads as "message" */
      {"{\"messageId\":\"" UUID_A
       "\",\"messageType\":[\"urn:message:A:B\"],\"message\":{\"n\":1},\"m\\u0065ssage\":{\"n\":2}}",
       NULL},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    ctxd__envelope_t env;
    char err[ERRLEN];
    assert_int_equal(decode(cases[i].body, NULL, &env, err), 0);
    if (cases[i].text == NULL) {
      assert_null(env.message_text);
    } else {
      assert_non_null(env.message_text);
      assert_int_equal(env.message_len, strlen(cases[i].text));
      assert_memory_equal(env.message_text, cases[i].text, env.message_len);
    }
    ctxd__envelope_free(&env);
  }
}

/* The message's tree is built from the scanned text: it must be the tree jansson's parser
 * makes of it, numbers, escapes, repeated keys and deep nesting included. */
#define LONG                                                                                                 \
  "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"     \
  "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"     \
  "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"

static void test_decode_message_tree(void **state) {
  (void)state;
  static const char *const messages[] = {
      "{}",
      "{\"key\":12,\"sentNs\":1733000000000000000,\"neg\":-0,\"min\":-9223372036854775808}",
      "{\"r\":0.1,\"e\":-1.5E-3,\"big\":1e308,\"tiny\":1e-400,\"t\":true,\"f\":false,\"z\":null}",
      "{\"s\":\"caf\\u00e9 \\ud83d\\ude00 \\\"q\\\" \\\\ \\/ \\b\\f\\n\\r\\t\",\"u\":\"\xc3\xa9\",\"\":\"\"}",
      "{\"n\":1,\"n\":{\"a\":[1,2]},\"k\\u0065y\":[],\"a\":[[],{},[{\"b\":[null]}]]}",
      /* escaped strings longer than the builder's buffer on the stack */
      "{\"k\\n" LONG "\":\"\\t" LONG "\"}",
      /* deeper than the builder goes: jansson's parser builds it */
      "{\"a\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}",
  };
  for (size_t i = 0; i < sizeof messages / sizeof messages[0]; i++) {
    char body[2048];
    snprintf(body, sizeof body,
             "{\"messageId\":\"" UUID_A "\",\"messageType\":[\"urn:message:A:B\"],\"message\":%s}",
             messages[i]);
    ctxd__envelope_t env;
    char err[ERRLEN];
    assert_int_equal(decode(body, NULL, &env, err), 0);
    json_t *want = json_loads(messages[i], 0, NULL);
    assert_non_null(want);
    assert_true(json_equal(env.message, want));
    json_decref(want);
    ctxd__envelope_free(&env);
  }
}

/* The body is read in place: keys and strings are matched and decoded as jansson would
 * read them, without a tree for anything but the message. */
static void test_decode_in_place(void **state) {
  (void)state;
  ctxd__envelope_t env;
  char err[ERRLEN];
  /* an escaped key still names its member; an exact key beats another case; the last of
   * repeated keys wins; strings are unescaped */
  const char *body = "{\"message\\u0049d\":\"" UUID_A "\",\"CorrelationId\":\"x\","
                     "\"correlationId\":\"a\",\"correlationId\":\"caf\\u00e9 \\ud83d\\ude00\\n\","
                     "\"ConversationID\":\"1\",\"CONVERSATIONID\":\"2\",\"ConversationID\":\"3\","
                     "\"messageType\":[7,\"urn:message:A.v1:\\u0042\"],\"message\":{\"n\":1},"
                     "\"host\":{\"pid\":123456789012345678901234567890}}";
  assert_int_equal(decode(body, NULL, &env, err), 0);
  assert_string_equal(env.message_id, UUID_A);
  assert_string_equal(env.correlation_id, "caf\xc3\xa9 \xf0\x9f\x98\x80\n");
  assert_string_equal(env.conversation_id, "3");
  assert_int_equal(env.nmessage_types, 1);
  assert_string_equal(env.message_types[0], "A.v1:B");
  assert_null(env.message_text); /* an escaped key: the text may not say what the tree does */
  ctxd__envelope_free(&env);

  static const struct {
    const char *body, *reason;
  } bad[] = {
      /* U+0000 and lone surrogates: jansson refuses them, so does the scanner */
      {"{\"a\":\"x\\u0000\"}", "malformed JSON at line 1 column 8: invalid escape"},
      {"{\"a\":\"\\udc00\"}", "malformed JSON at line 1 column 7: invalid escape"},
      {"{\"a\":\"\\ud800x\"}", "malformed JSON at line 1 column 7: invalid escape"},
      {"{\"a\":\"\\q\"}", "malformed JSON at line 1 column 7: invalid escape"},
      {"{\"a\":\"tab\there\"}", "malformed JSON at line 1 column 10: unexpected control character"},
      {"{\"a\":01}", "malformed JSON at line 1 column 7: unexpected '1'"},
      {"{\"a\" 1}", "malformed JSON at line 1 column 6: unexpected '1'"},
      {"{\"a\":1,}", "malformed JSON at line 1 column 8: unexpected '}'"},
      {"{\"a\":[1,]}", "malformed JSON at line 1 column 9: unexpected ']'"},
      {"{1:2}", "malformed JSON at line 1 column 2: unexpected '1'"},
      /* what only jansson refuses, in the one part it parses */
      {"{\"messageId\":\"" UUID_A "\",\"messageType\":[\"urn:message:A:B\"],\n"
       "\"message\":{\"n\":123456789012345678901234567890}}",
       "malformed JSON at line 2 column 46: too big integer"},
  };
  /* jansson stopped reading at a NUL byte and took what came before; the scanner does not */
  static const char nul[] = "{\"a\":1}\0{";
  assert_int_equal(ctxd__envelope_decode(nul, sizeof nul - 1, NULL, NULL, &env, err, ERRLEN), CTXD_EDECODE);
  assert_string_equal(err, "malformed JSON at line 1 column 8: unexpected control character");
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int rc = decode(bad[i].body, NULL, &env, err);
    if (rc != CTXD_EDECODE || strcmp(err, bad[i].reason) != 0)
      print_error("case %zu: rc %d, reason '%s', expected '%s'\n", i, rc, err, bad[i].reason);
    assert_int_equal(rc, CTXD_EDECODE);
    assert_string_equal(err, bad[i].reason);
    assert_env_empty(&env);
  }
}

/* ---- plain JSON decoding ------------------------------------------------------------ */

static void test_decode_plain_from_headers(void **state) {
  (void)state;
  amqp_table_entry_t entries[] = {
      string_entry("MessageId", "6F1C2F8E8D5B4C8E9D1A3B2C1D0E9F8A"),
      string_entry("MT-MessageType", "urn:message:A.v1:Created; urn:message:A.v1:IEvent"),
      string_entry("CorrelationId", "corr"),
      string_entry("ConversationId", "conv"),
      string_entry("initiatorid", "init"), /* header names match case-insensitively */
      string_entry("RequestId", "req"),
      string_entry("SourceAddress", "rabbitmq://h/src"),
      string_entry("ResponseAddress", "rabbitmq://h/resp"),
      string_entry("FaultAddress", "rabbitmq://h/fault"),
      string_entry("DestinationAddress", "rabbitmq://h/dest"),
      string_entry("SentTime", SENT_TIME),
  };
  amqp_basic_properties_t props = content_type_props("application/json; charset=utf-8");
  props._flags |= AMQP_BASIC_HEADERS_FLAG;
  props.headers = (amqp_table_t){.num_entries = sizeof entries / sizeof entries[0], .entries = entries};
  ctxd__envelope_t env;
  char err[ERRLEN];
  /* a plain body may itself have "message"/"messageType" keys: the content type decides */
  assert_int_equal(decode("{\"message\":\"hi\",\"messageType\":2}", &props, &env, err), 0);
  assert_string_equal(env.message_id, UUID_A);
  assert_int_equal(env.nmessage_types, 2);
  assert_string_equal(env.message_types[0], "A.v1:Created");
  assert_string_equal(env.message_types[1], "A.v1:IEvent");
  assert_string_equal(env.correlation_id, "corr");
  assert_string_equal(env.conversation_id, "conv");
  assert_string_equal(env.initiator_id, "init");
  assert_string_equal(env.request_id, "req");
  assert_string_equal(env.source_address, "rabbitmq://h/src");
  assert_string_equal(env.response_address, "rabbitmq://h/resp");
  assert_string_equal(env.fault_address, "rabbitmq://h/fault");
  assert_string_equal(env.destination_address, "rabbitmq://h/dest");
  assert_string_equal(env.sent_time, SENT_TIME);
  assert_string_equal(member_string(env.message, "message"), "hi");
  assert_int_equal(json_object_size(env.headers), sizeof entries / sizeof entries[0]);
  ctxd__envelope_free(&env);
}

/* Property strings are copied: the caller's buffers are freed before env is read. */
static void test_decode_plain_from_properties(void **state) {
  (void)state;
  char *id = strdup("{6F1C2F8E-8D5B-4C8E-9D1A-3B2C1D0E9F8A}");
  char *type = strdup("urn:message:A.v1:Thing");
  char *corr = strdup("corr-from-props");
  char *ct = strdup("text/json");
  amqp_table_entry_t entries[] = {string_entry("MessageId", "not used: property wins")};
  amqp_basic_properties_t props = {0};
  props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_MESSAGE_ID_FLAG | AMQP_BASIC_TYPE_FLAG |
                 AMQP_BASIC_CORRELATION_ID_FLAG | AMQP_BASIC_HEADERS_FLAG;
  props.content_type = amqp_cstring_bytes(ct);
  props.message_id = amqp_cstring_bytes(id);
  props.type = amqp_cstring_bytes(type);
  props.correlation_id = amqp_cstring_bytes(corr);
  props.headers = (amqp_table_t){.num_entries = 1, .entries = entries};
  ctxd__envelope_t env;
  char err[ERRLEN];
  int rc = decode("{\"a\":1}", &props, &env, err);
  memset(type, 'X', strlen(type));
  memset(corr, 'X', strlen(corr));
  free(id), free(type), free(corr), free(ct);
  assert_int_equal(rc, 0);
  assert_string_equal(env.message_id, UUID_A);
  assert_int_equal(env.nmessage_types, 1);
  assert_string_equal(env.message_types[0], "A.v1:Thing");
  assert_string_equal(env.correlation_id, "corr-from-props");
  assert_null(env.conversation_id);
  assert_int_equal(json_integer_value(json_object_get(env.message, "a")), 1);
  ctxd__envelope_free(&env);
}

/* Properties are not NUL-terminated: only len bytes count. */
static void test_decode_plain_properties_not_terminated(void **state) {
  (void)state;
  static const char id[] = UUID_A "garbage";
  static const char type[] = "urn:message:A.v1:Thing;;;garbage";
  amqp_basic_properties_t props = {0};
  props._flags = AMQP_BASIC_MESSAGE_ID_FLAG | AMQP_BASIC_TYPE_FLAG;
  props.message_id = (amqp_bytes_t){.len = 36, .bytes = (void *)id};
  props.type = (amqp_bytes_t){.len = 22, .bytes = (void *)type};
  ctxd__envelope_t env;
  char err[ERRLEN];
  assert_int_equal(decode("{}", &props, &env, err), 0);
  assert_string_equal(env.message_id, UUID_A);
  assert_int_equal(env.nmessage_types, 1);
  assert_string_equal(env.message_types[0], "A.v1:Thing");
  ctxd__envelope_free(&env);
}

/* ---- decoding errors ---------------------------------------------------------------- */

#define ENVELOPE_CT CTXD__ENVELOPE_CONTENT_TYPE
#define TYPE_A "\"messageType\":[\"urn:message:A.v1:B\"]"
#define ID_A "\"messageId\":\"" UUID_A "\""

static const struct error_case {
  const char *content_type; /* NULL: no properties */
  const char *body;
  const char *reason;
} error_cases[] = {
    {ENVELOPE_CT, "{\"messageId\": }", "malformed JSON at line 1 column 15: unexpected '}'"},
    {NULL, "{\"a\":1\n,\"b\":tru}", "malformed JSON at line 2 column 6: unexpected 't'"},
    {NULL, "", "malformed JSON at line 1 column 1: premature end of input"},
    {NULL, "{} x", "malformed JSON at line 1 column 4: unexpected 'x'"},
    {NULL, "[1,2]", "body is not a JSON object"},
    {ENVELOPE_CT, "\"text\"", "body is not a JSON object"},
    {"text/plain", "{}", "unsupported content type 'text/plain'"},
    {"application/xml; charset=utf-8", "<a/>", "unsupported content type 'application/xml; charset=utf-8'"},
    {"text/plain\r\nX: y", "{}", "unsupported content type 'text/plain??X: y'"},
    {ENVELOPE_CT, "{" TYPE_A ",\"message\":{}}", "missing message id"},
    {ENVELOPE_CT, "{\"messageId\":null," TYPE_A ",\"message\":{}}", "missing message id"},
    {ENVELOPE_CT, "{\"messageId\":42," TYPE_A ",\"message\":{}}", "missing message id"},
    {NULL, "{\"a\":1}", "missing message id"},
    {ENVELOPE_CT, "{\"messageId\":\"not-a-uuid\"," TYPE_A ",\"message\":{}}",
     "message id 'not-a-uuid' is not a UUID"},
    {ENVELOPE_CT, "{\"messageId\":\"6f1c2f8e-8d5b-4c8e-9d1a-3b2c1d0e9f8\"," TYPE_A ",\"message\":{}}",
     "message id '6f1c2f8e-8d5b-4c8e-9d1a-3b2c1d0e9f8' is not a UUID"},
    {ENVELOPE_CT, "{\"messageId\":\"a\\nb\"," TYPE_A ",\"message\":{}}", "message id 'a?b' is not a UUID"},
    {ENVELOPE_CT,
     "{\"messageId\":\"00000000001111111111222222222233333333334444444444555555555566666666667777\"," TYPE_A
     ",\"message\":{}}",
     "message id '0000000000111111111122222222223333333333444444444455555555556666...' is not a "
     "UUID"},
    {ENVELOPE_CT, "{" ID_A ",\"message\":{}}", "missing message type"},
    {ENVELOPE_CT, "{" ID_A ",\"messageType\":[],\"message\":{}}", "missing message type"},
    {ENVELOPE_CT, "{" ID_A ",\"messageType\":null,\"message\":{}}", "missing message type"},
    /* MassTransit's envelope has string[] MessageType: a lone URN is not one */
    {ENVELOPE_CT, "{" ID_A ",\"messageType\":\"urn:message:A:B\",\"message\":{}}",
     "messageType: expected an array of \"urn:message:...\" strings, got a string"},
    {NULL, "{" ID_A ",\"MessageType\": \"urn:message:A:B\",\"message\":{}}",
     "messageType: expected an array of \"urn:message:...\" strings, got a string"},
    {ENVELOPE_CT, "{" ID_A ",\"messageType\":-1.5e3,\"message\":{}}",
     "messageType: expected an array of \"urn:message:...\" strings, got a number"},
    {ENVELOPE_CT, "{" ID_A ",\"messageType\":{\"0\":\"urn:message:A:B\"},\"message\":{}}",
     "messageType: expected an array of \"urn:message:...\" strings, got an object"},
    {ENVELOPE_CT, "{" ID_A ",\"messageType\":true,\"message\":{}}",
     "messageType: expected an array of \"urn:message:...\" strings, got a boolean"},
    {ENVELOPE_CT, "{" ID_A ",\"messageType\":[null,\"urn:message:\"],\"message\":{}}",
     "missing message type"},
    {ENVELOPE_CT, "{" ID_A "," TYPE_A ",\"message\":[1]}", "message is not a JSON object"},
    {ENVELOPE_CT, "{" ID_A "," TYPE_A ",\"message\":null}", "message is not a JSON object"},
    {ENVELOPE_CT, "{" ID_A "," TYPE_A "}", "message is not a JSON object"},
    {NULL, "{\"messageId\":\"\xff\"}", "invalid UTF-8 at byte 14"},
    {NULL, "{\xc3\x28:1}", "invalid UTF-8 at byte 1"},
    {NULL, "{\"a\":\"\xc0\xaf\"}", "invalid UTF-8 at byte 6"},         /* overlong */
    {NULL, "{\"a\":\"\xed\xa0\x80\"}", "invalid UTF-8 at byte 6"},     /* surrogate */
    {NULL, "{\"a\":\"\xf4\x90\x80\x80\"}", "invalid UTF-8 at byte 6"}, /* > U+10FFFF */
    {NULL, "{\"a\":\"\xe2\x82", "invalid UTF-8 at byte 6"},            /* cut short */
    {NULL, "{\"a\":\"\xe2\x82\xac\",\"b\":\"\x80\"}", "invalid UTF-8 at byte 16"},
};

static void test_decode_errors(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof error_cases / sizeof error_cases[0]; i++) {
    const struct error_case *c = &error_cases[i];
    amqp_basic_properties_t props = content_type_props(c->content_type ? c->content_type : "");
    ctxd__envelope_t env;
    char err[ERRLEN];
    memset(&env, 0xa5, sizeof env); /* decode must not trust what it is given */
    int rc = decode(c->body, c->content_type ? &props : NULL, &env, err);
    if (rc != CTXD_EDECODE || strcmp(err, c->reason) != 0)
      print_error("case %zu: rc %d, reason '%s', expected '%s'\n", i, rc, err, c->reason);
    assert_int_equal(rc, CTXD_EDECODE);
    assert_string_equal(err, c->reason);
    assert_env_empty(&env);
    ctxd__envelope_free(&env); /* allowed after an error, and a no-op */
    assert_env_empty(&env);
  }
}

static void test_decode_plain_errors(void **state) {
  (void)state;
  amqp_table_entry_t entries[] = {string_entry("MessageId", UUID_A)};
  amqp_basic_properties_t props = content_type_props("application/json");
  props._flags |= AMQP_BASIC_HEADERS_FLAG;
  props.headers = (amqp_table_t){.num_entries = 1, .entries = entries};
  ctxd__envelope_t env;
  char err[ERRLEN];
  assert_int_equal(decode("{}", &props, &env, err), CTXD_EDECODE);
  assert_string_equal(err, "missing message type");
  assert_env_empty(&env);

  entries[0] = string_entry("MessageId", "12345");
  assert_int_equal(decode("{}", &props, &env, err), CTXD_EDECODE);
  assert_string_equal(err, "message id '12345' is not a UUID");

  props._flags |= AMQP_BASIC_MESSAGE_ID_FLAG;
  props.message_id = (amqp_bytes_t){.len = 3, .bytes = "\x01\xff\n"};
  assert_int_equal(decode("{}", &props, &env, err), CTXD_EDECODE);
  assert_string_equal(err, "message id '\?\?\?' is not a UUID" /* no trigraph */);
  assert_env_empty(&env);
}

static void test_decode_too_big(void **state) {
  (void)state;
  ctxd__decode_limits_t limits = CTXD__DECODE_LIMITS_DEFAULT;
  ctxd__envelope_t env;
  char err[ERRLEN];
  size_t len = strlen(camel_envelope);
  limits.max_body = len - 1;
  assert_int_equal(ctxd__envelope_decode(camel_envelope, len, NULL, &limits, &env, err, ERRLEN),
                   CTXD_ETOOBIG);
  char expected[ERRLEN];
  snprintf(expected, sizeof expected, "body of %zu bytes exceeds the limit of %zu", len, len - 1);
  assert_string_equal(err, expected);
  assert_env_empty(&env);
  limits.max_body = len;
  assert_int_equal(ctxd__envelope_decode(camel_envelope, len, NULL, &limits, &env, err, ERRLEN), 0);
  ctxd__envelope_free(&env);

  /* the default limit is 1 MiB; the size is checked before anything is read */
  assert_int_equal(ctxd__envelope_decode(camel_envelope, (1u << 20) + 1, NULL, NULL, &env, err, ERRLEN),
                   CTXD_ETOOBIG);
  assert_string_equal(err, "body of 1048577 bytes exceeds the limit of 1048576");
}

/* An envelope whose total nesting (root object included) is depth. */
static char *nested_envelope(int depth, const char *extra) {
  size_t cap = 256 + 2 * (size_t)depth + strlen(extra);
  char *s = malloc(cap);
  int n = snprintf(s, cap, "{" ID_A "," TYPE_A ",%s\"message\":{\"x\":", extra);
  for (int i = 0; i < depth - 2; i++) s[n++] = '[';
  s[n++] = '1';
  for (int i = 0; i < depth - 2; i++) s[n++] = ']';
  strcpy(s + n, "}}");
  return s;
}

static void test_decode_too_deep(void **state) {
  (void)state;
  ctxd__envelope_t env;
  char err[ERRLEN];
  char *ok = nested_envelope(64, "");
  char *deep = nested_envelope(65, "");
  assert_int_equal(decode(ok, NULL, &env, err), 0);
  ctxd__envelope_free(&env);
  assert_int_equal(decode(deep, NULL, &env, err), CTXD_EDECODE);
  assert_string_equal(err, "nesting deeper than 64");
  assert_env_empty(&env);
  free(ok), free(deep);

  /* brackets inside strings, escaped quotes included, do not count */
  ctxd__decode_limits_t limits = {.max_body = 4096, .max_depth = 3};
  char *strings = nested_envelope(3, "\"s\":\"\\\"[[[[{{\\\\\",");
  char *four = nested_envelope(4, "");
  assert_int_equal(ctxd__envelope_decode(strings, strlen(strings), NULL, &limits, &env, err, ERRLEN), 0);
  ctxd__envelope_free(&env);
  assert_int_equal(ctxd__envelope_decode(four, strlen(four), NULL, &limits, &env, err, ERRLEN), CTXD_EDECODE);
  assert_string_equal(err, "nesting deeper than 3");
  free(strings), free(four);
}

/* Every prefix of a valid envelope (cutting multi-byte characters too) fails cleanly. */
static void test_decode_truncated_prefixes(void **state) {
  (void)state;
  amqp_basic_properties_t props = content_type_props(CTXD__ENVELOPE_CONTENT_TYPE);
  size_t full = strlen(camel_envelope);
  for (size_t len = 0; len < full; len++) {
    for (int with_props = 0; with_props < 2; with_props++) {
      ctxd__envelope_t env;
      char err[ERRLEN];
      /* a heap copy of exactly len bytes so ASan sees any read past the end */
      char *copy = malloc(len ? len : 1);
      memcpy(copy, camel_envelope, len);
      int rc = ctxd__envelope_decode(copy, len, with_props ? &props : NULL, NULL, &env, err, ERRLEN);
      free(copy);
      /* the trailing "\n" is whitespace: only the last prefix is complete */
      if (len == full - 1) {
        assert_int_equal(rc, 0);
        ctxd__envelope_free(&env);
        continue;
      }
      assert_int_equal(rc, CTXD_EDECODE);
      assert_true(strncmp(err, "malformed JSON at line ", 23) == 0 ||
                  strncmp(err, "invalid UTF-8 at byte ", 22) == 0);
      assert_env_empty(&env);
    }
  }
}

static void test_decode_null_arguments(void **state) {
  (void)state;
  ctxd__envelope_t env;
  char err[ERRLEN];
  assert_int_equal(ctxd__envelope_decode(NULL, 0, NULL, NULL, &env, err, ERRLEN), CTXD_EDECODE);
  assert_env_empty(&env);
  assert_int_equal(ctxd__envelope_decode(NULL, 5, NULL, NULL, &env, err, ERRLEN), CTXD_EINVAL);
  assert_string_equal(err, "no body");
  assert_int_equal(ctxd__envelope_decode("{}", 2, NULL, NULL, NULL, err, ERRLEN), CTXD_EINVAL);
  /* no room for a reason is fine */
  assert_int_equal(ctxd__envelope_decode("[]", 2, NULL, NULL, &env, NULL, 0), CTXD_EDECODE);
  ctxd__envelope_free(NULL);
}

/* ---- encoding ----------------------------------------------------------------------- */

static void test_encode_decode_round_trip(void **state) {
  (void)state;
  json_t *message = json_pack("{s:s, s:i, s:s, s:b}", "id", "11eb7a3c0f7c4b7e9f1a2b3c4d5e6f70", "version", 4,
                              "name", "Сыр", "isRemoved", 1);
  json_t *headers = json_pack("{s:s, s:i}", "MT-Custom", "v", "n", 7);
  ctxd__envelope_out_t out = {
      .message_id = "{6F1C2F8E-8D5B-4C8E-9D1A-3B2C1D0E9F8A}",
      .message_type = MATERIAL_TYPE,
      .correlation_id = "corr",
      .conversation_id = "conv",
      .initiator_id = "init",
      .request_id = "req",
      .source_address = "rabbitmq://h/src",
      .destination_address = "rabbitmq://h/dest",
      .response_address = "rabbitmq://h/resp",
      .message = message,
      .headers = headers,
      .sent_time = SENT_TIME,
  };
  char *text = ctxd__envelope_encode(&out);
  assert_non_null(text);
  static const char head[] = "{\"messageId\":\"" UUID_A "\",\"requestId\":\"req\",";
  assert_true(strncmp(text, head, strlen(head)) == 0); /* canonical id, MassTransit order */
  assert_null(strchr(text, '\n'));
  assert_null(strstr(text, "\": ")); /* compact */

  amqp_basic_properties_t props = content_type_props(CTXD__ENVELOPE_CONTENT_TYPE);
  ctxd__envelope_t env;
  char err[ERRLEN];
  assert_int_equal(decode(text, &props, &env, err), 0);
  assert_string_equal(env.message_id, UUID_A);
  assert_int_equal(env.nmessage_types, 1);
  assert_string_equal(env.message_types[0], MATERIAL_TYPE);
  assert_string_equal(env.correlation_id, "corr");
  assert_string_equal(env.conversation_id, "conv");
  assert_string_equal(env.initiator_id, "init");
  assert_string_equal(env.request_id, "req");
  assert_string_equal(env.source_address, "rabbitmq://h/src");
  assert_string_equal(env.destination_address, "rabbitmq://h/dest");
  assert_string_equal(env.response_address, "rabbitmq://h/resp");
  assert_null(env.fault_address);
  assert_string_equal(env.sent_time, SENT_TIME);
  assert_true(json_equal(env.message, message));
  assert_true(json_equal(env.headers, headers));

  json_t *parsed = json_loads(text, 0, NULL);
  json_t *host = json_object_get(parsed, "host");
  assert_true(json_is_object(host));
  assert_string_equal(member_string(host, "processName"), "ctxd");
  assert_string_equal(member_string(host, "assembly"), "ctxd");
  assert_string_equal(member_string(host, "assemblyVersion"), CTXD_VERSION_STRING);
  assert_string_equal(member_string(host, "frameworkVersion"), "C11");
  assert_string_equal(member_string(host, "massTransitVersion"), "ctxd");
  assert_int_equal(json_integer_value(json_object_get(host, "processId")), getpid());
  char hostname[256] = "";
  gethostname(hostname, sizeof hostname - 1);
  assert_string_equal(member_string(host, "machineName"), hostname);
  assert_non_null(strchr(member_string(host, "operatingSystemVersion"), ' '));
  json_decref(parsed);
  ctxd__envelope_free(&env);
  free(text);
  json_decref(message);
  json_decref(headers);
}

static void test_encode_defaults(void **state) {
  (void)state;
  json_t *message = json_object();
  ctxd__envelope_out_t out = {.message_id = UUID_A, .message_type = "A.v1:B", .message = message};
  char *text = ctxd__envelope_encode(&out);
  assert_non_null(text);
  json_t *root = json_loads(text, 0, NULL);
  assert_non_null(root);
  /* MassTransit's 15 members, in its order, null when unset */
  static const char *const members[] = {
      "messageId",     "requestId",          "correlationId",   "conversationId", "initiatorId",
      "sourceAddress", "destinationAddress", "responseAddress", "faultAddress",   "messageType",
      "message",       "expirationTime",     "sentTime",        "headers",        "host"};
  assert_int_equal(json_object_size(root), 15);
  size_t at = 0;
  const char *key;
  json_t *value;
  json_object_foreach(root, key, value) assert_string_equal(key, members[at++]);
  assert_true(json_is_null(json_object_get(root, "requestId")));
  assert_true(json_is_null(json_object_get(root, "expirationTime")));
  assert_string_equal(member_string(root, "messageId"), UUID_A);
  assert_string_equal(json_string_value(json_array_get(json_object_get(root, "messageType"), 0)),
                      "urn:message:A.v1:B");
  assert_int_equal(json_array_size(json_object_get(root, "messageType")), 1);
  assert_true(json_is_object(json_object_get(root, "headers")));
  assert_int_equal(json_object_size(json_object_get(root, "headers")), 0);
  assert_true(json_equal(json_object_get(root, "message"), message));
  const char *sent = member_string(root, "sentTime");
  assert_non_null(sent);
  assert_int_equal(strlen(sent), 24);
  static const char pattern[] = "dddd-dd-ddTdd:dd:dd.dddZ";
  for (size_t i = 0; i < 24; i++) {
    if (pattern[i] == 'd')
      assert_true(sent[i] >= '0' && sent[i] <= '9');
    else
      assert_int_equal(sent[i], pattern[i]);
  }
  assert_true(strncmp(sent, "20", 2) == 0);
  json_decref(root);
  free(text);
  json_decref(message);
}

/* .NET's DateTime texts, read back to the millisecond (expirationTime of a request). */
static void test_iso8601_both_ways(void **state) {
  (void)state;
  int64_t ms;
  char text[32];
  assert_int_equal(ctxd__iso8601_parse_ms("2026-11-24T04:30:15.1234567Z", &ms), 0);
  assert_int_equal(ms, 1795494615123);
  ctxd__iso8601_ms(ms, text);
  assert_string_equal(text, "2026-11-24T04:30:15.123Z");
  assert_int_equal(ctxd__iso8601_parse_ms("2026-11-24T06:30:15.5+02:00", &ms), 0);
  assert_int_equal(ms, 1795494615500);
  assert_int_equal(ctxd__iso8601_parse_ms("2026-11-24T04:30:15", &ms), 0);
  assert_int_equal(ms, 1795494615000);
  assert_int_equal(ctxd__iso8601_parse_ms("2026-11-24 04:30", &ms), CTXD_EINVAL);
  assert_int_equal(ctxd__iso8601_parse_ms("2026-11-24T04:30:15Zjunk", &ms), CTXD_EINVAL);
}

static void test_encode_rejects_incomplete(void **state) {
  (void)state;
  json_t *message = json_object();
  json_t *array = json_array();
  const ctxd__envelope_out_t good = {.message_id = UUID_A, .message_type = "A:B", .message = message};
  ctxd__envelope_out_t out;
  assert_null(ctxd__envelope_encode(NULL));
  out = good, out.message_id = NULL;
  assert_null(ctxd__envelope_encode(&out));
  out = good, out.message_id = "not-a-uuid";
  assert_null(ctxd__envelope_encode(&out));
  out = good, out.message_type = NULL;
  assert_null(ctxd__envelope_encode(&out));
  out = good, out.message_type = "";
  assert_null(ctxd__envelope_encode(&out));
  out = good, out.message = NULL;
  assert_null(ctxd__envelope_encode(&out));
  out = good, out.message = array;
  assert_null(ctxd__envelope_encode(&out));
  out = good, out.headers = array;
  assert_null(ctxd__envelope_encode(&out));
  out = good, out.correlation_id = "\xff"; /* not UTF-8 */
  assert_null(ctxd__envelope_encode(&out));
  char *text = ctxd__envelope_encode(&good);
  assert_non_null(text);
  free(text);
  json_decref(message);
  json_decref(array);
}

enum { ENCODE_THREADS = 4, ENCODES_PER_THREAD = 200 };

static void *encode_many(void *arg) {
  const ctxd__envelope_out_t *out = arg;
  for (int i = 0; i < ENCODES_PER_THREAD; i++) {
    char *text = ctxd__envelope_encode(out);
    if (!text || !strstr(text, "\"processName\":\"ctxd\"")) return (void *)1;
    free(text);
  }
  return NULL;
}

/* The host description is built once under pthread_once while threads race to it. */
static void test_encode_concurrent(void **state) {
  (void)state;
  json_t *message = json_pack("{s:i}", "n", 1);
  ctxd__envelope_out_t out = {.message_id = UUID_A, .message_type = "A:B", .message = message};
  pthread_t threads[ENCODE_THREADS];
  for (int i = 0; i < ENCODE_THREADS; i++)
    assert_int_equal(pthread_create(&threads[i], NULL, encode_many, &out), 0);
  for (int i = 0; i < ENCODE_THREADS; i++) {
    void *result;
    assert_int_equal(pthread_join(threads[i], &result), 0);
    assert_null(result);
  }
  json_decref(message);
}

/* ---- UUIDs -------------------------------------------------------------------------- */

static void test_uuid_canonical(void **state) {
  (void)state;
  static const char *const accepted[] = {
      UUID_A,
      "6F1C2F8E-8D5B-4C8E-9D1A-3B2C1D0E9F8A",
      "6f1c2f8e8d5b4c8e9d1a3b2c1d0e9f8a",
      "6F1C2F8E8D5B4C8E9D1A3B2C1D0E9F8A",
      "{6f1c2f8e-8d5b-4c8e-9d1a-3b2c1d0e9f8a}",
      "{6F1c2F8e-8D5b-4C8e-9D1a-3B2c1D0e9F8a}",
  };
  for (size_t i = 0; i < sizeof accepted / sizeof accepted[0]; i++) {
    char out[37];
    assert_int_equal(ctxd__uuid_canonical(accepted[i], out), 0);
    assert_string_equal(out, UUID_A);
  }
  static const char *const rejected[] = {
      "",
      "6f1c2f8e-8d5b-4c8e-9d1a-3b2c1d0e9f8",   /* one digit short */
      "6f1c2f8e-8d5b-4c8e-9d1a-3b2c1d0e9f8a0", /* one digit long */
      "6f1c2f8e-8d5b-4c8e-9d1a-3b2c1d0e9f8g",  /* not hex */
      "6f1c2f8e8-d5b-4c8e-9d1a-3b2c1d0e9f8a",  /* dash misplaced */
      "6f1c2f8e-8d5b-4c8e-9d1a-3b2c1d0e9f8a}", /* half braced */
      "{6f1c2f8e8d5b4c8e9d1a3b2c1d0e9f8a}",    /* braces need dashes */
      "(6f1c2f8e-8d5b-4c8e-9d1a-3b2c1d0e9f8a)",
      "6f1c2f8e 8d5b 4c8e 9d1a 3b2c1d0e9f8a",
      "6f1c2f8e8d5b4c8e9d1a3b2c1d0e9f8 ",
      "urn:uuid:6f1c2f8e-8d5b-4c8e-9d1a-3b2c1d0e9f8a",
  };
  for (size_t i = 0; i < sizeof rejected / sizeof rejected[0]; i++) {
    char out[37] = "untouched";
    assert_int_equal(ctxd__uuid_canonical(rejected[i], out), CTXD_EINVAL);
    assert_string_equal(out, "untouched");
  }
  char out[37];
  assert_int_equal(ctxd__uuid_canonical(NULL, out), CTXD_EINVAL);
}

static int compare_ids(const void *a, const void *b) { return strcmp(a, b); }

static void test_uuid_new(void **state) {
  (void)state;
  enum { N = 1000 };
  char(*ids)[37] = malloc(N * sizeof *ids);
  for (int i = 0; i < N; i++) {
    ctxd__uuid_new(ids[i]);
    char canonical[37];
    assert_int_equal(strlen(ids[i]), 36);
    assert_int_equal(ctxd__uuid_canonical(ids[i], canonical), 0);
    assert_string_equal(canonical, ids[i]);      /* already canonical: lowercase, dashed */
    assert_int_equal(ids[i][14], '4');           /* version 4 */
    assert_non_null(strchr("89ab", ids[i][19])); /* RFC 4122 variant */
  }
  qsort(ids, N, sizeof *ids, compare_ids);
  for (int i = 1; i < N; i++) assert_string_not_equal(ids[i - 1], ids[i]);
  free(ids);
}

/* The same name gives the same id, other names other ids; all valid version 8 UUIDs. */
static void test_uuid_derive(void **state) {
  (void)state;
  enum { N = 1000 };
  char(*ids)[37] = malloc(N * sizeof *ids);
  char again[37], name[64];
  for (int i = 0; i < N; i++) {
    snprintf(name, sizeof name, "fault:orders:%d:0", i);
    ctxd__uuid_derive(name, ids[i]);
    ctxd__uuid_derive(name, again);
    assert_string_equal(again, ids[i]);
    char canonical[37];
    assert_int_equal(ctxd__uuid_canonical(ids[i], canonical), 0);
    assert_string_equal(canonical, ids[i]);
    assert_int_equal(ids[i][14], '8');
    assert_non_null(strchr("89ab", ids[i][19]));
  }
  qsort(ids, N, sizeof *ids, compare_ids);
  for (int i = 1; i < N; i++) assert_string_not_equal(ids[i - 1], ids[i]);
  free(ids);
}

/* ---- helpers ------------------------------------------------------------------------ */

static void test_json_get_ci(void **state) {
  (void)state;
  json_t *obj = json_pack("{s:i, s:i, s:i}", "messageid", 1, "MessageId", 2, "other", 3);
  assert_int_equal(json_integer_value(ctxd__json_get_ci(obj, "MessageId")), 2); /* exact */
  assert_int_equal(json_integer_value(ctxd__json_get_ci(obj, "messageid")), 1); /* exact */
  assert_int_equal(json_integer_value(ctxd__json_get_ci(obj, "MESSAGEID")), 1); /* first */
  assert_int_equal(json_integer_value(ctxd__json_get_ci(obj, "OTHER")), 3);
  assert_null(ctxd__json_get_ci(obj, "othe"));
  assert_null(ctxd__json_get_ci(obj, "others"));
  assert_null(ctxd__json_get_ci(obj, NULL));
  json_t *arr = json_array();
  assert_null(ctxd__json_get_ci(arr, "a"));
  assert_null(ctxd__json_get_ci(NULL, "a"));
  json_decref(arr);
  json_decref(obj);
}

static amqp_field_value_t field(uint8_t kind) { return (amqp_field_value_t){.kind = kind}; }

/* An integer header of any width, or digits in a string, is read; anything else is not. */
static void test_amqp_table_get_int(void **state) {
  (void)state;
  amqp_table_entry_t e[5];
  ctxd__amqptable_set_i32(&e[0], "MT-Redelivery-Count", -3);
  ctxd__amqptable_set_i64(&e[1], "big", INT64_C(5000000000));
  ctxd__amqptable_set_text(&e[2], "text", "42");
  ctxd__amqptable_set_text(&e[3], "words", "4 2");
  e[4].key = amqp_cstring_bytes("small");
  e[4].value.kind = AMQP_FIELD_KIND_U8;
  e[4].value.value.u8 = 7;
  amqp_table_t t = {5, e};
  int64_t v = 0;
  assert_int_equal(ctxd__amqptable_get_int(&t, "mt-redelivery-count", &v), 1);
  assert_int_equal(v, -3);
  assert_int_equal(ctxd__amqptable_get_int(&t, "big", &v), 1);
  assert_true(v == INT64_C(5000000000));
  assert_int_equal(ctxd__amqptable_get_int(&t, "text", &v), 1);
  assert_int_equal(v, 42);
  assert_int_equal(ctxd__amqptable_get_int(&t, "small", &v), 1);
  assert_int_equal(v, 7);
  assert_int_equal(ctxd__amqptable_get_int(&t, "words", &v), 0);
  assert_int_equal(ctxd__amqptable_get_int(&t, "absent", &v), 0);
  assert_int_equal(ctxd__amqptable_get_int(NULL, "big", &v), 0);
}

static void test_amqp_table_to_json(void **state) {
  (void)state;
  amqp_field_value_t array_values[] = {field(AMQP_FIELD_KIND_I32), field(AMQP_FIELD_KIND_UTF8),
                                       field(AMQP_FIELD_KIND_BYTES)};
  array_values[0].value.i32 = 7;
  array_values[1].value.bytes = amqp_cstring_bytes("x");
  array_values[2].value.bytes = amqp_cstring_bytes("\xff"); /* not UTF-8: dropped */
  amqp_table_entry_t inner[] = {{.key = amqp_cstring_bytes("depth"), .value = field(AMQP_FIELD_KIND_U8)}};
  inner[0].value.value.u8 = 2;

  amqp_table_entry_t e[] = {
      string_entry("s", "hello"),
      {.key = amqp_cstring_bytes("bytes"), .value = field(AMQP_FIELD_KIND_BYTES)},
      {.key = amqp_cstring_bytes("binary"), .value = field(AMQP_FIELD_KIND_BYTES)},
      {.key = amqp_cstring_bytes("empty"), .value = field(AMQP_FIELD_KIND_UTF8)},
      {.key = amqp_cstring_bytes("b"), .value = field(AMQP_FIELD_KIND_BOOLEAN)},
      {.key = amqp_cstring_bytes("i8"), .value = field(AMQP_FIELD_KIND_I8)},
      {.key = amqp_cstring_bytes("u16"), .value = field(AMQP_FIELD_KIND_U16)},
      {.key = amqp_cstring_bytes("u32"), .value = field(AMQP_FIELD_KIND_U32)},
      {.key = amqp_cstring_bytes("i64"), .value = field(AMQP_FIELD_KIND_I64)},
      {.key = amqp_cstring_bytes("u64"), .value = field(AMQP_FIELD_KIND_U64)},
      {.key = amqp_cstring_bytes("u64big"), .value = field(AMQP_FIELD_KIND_U64)},
      {.key = amqp_cstring_bytes("ts"), .value = field(AMQP_FIELD_KIND_TIMESTAMP)},
      {.key = amqp_cstring_bytes("f32"), .value = field(AMQP_FIELD_KIND_F32)},
      {.key = amqp_cstring_bytes("f64"), .value = field(AMQP_FIELD_KIND_F64)},
      {.key = amqp_cstring_bytes("dec"), .value = field(AMQP_FIELD_KIND_DECIMAL)},
      {.key = amqp_cstring_bytes("negdec"), .value = field(AMQP_FIELD_KIND_DECIMAL)},
      {.key = amqp_cstring_bytes("void"), .value = field(AMQP_FIELD_KIND_VOID)},
      {.key = amqp_cstring_bytes("table"), .value = field(AMQP_FIELD_KIND_TABLE)},
      {.key = amqp_cstring_bytes("array"), .value = field(AMQP_FIELD_KIND_ARRAY)},
      {.key = amqp_cstring_bytes("bad\xffkey"), .value = field(AMQP_FIELD_KIND_I8)},
      {.key = amqp_cstring_bytes("unknown"), .value = field('?')},
  };
  e[1].value.value.bytes = amqp_cstring_bytes("raw");
  e[2].value.value.bytes = (amqp_bytes_t){.len = 2, .bytes = "\xfe\xff"};
  e[3].value.value.bytes = (amqp_bytes_t){.len = 0, .bytes = NULL};
  e[4].value.value.boolean = 1;
  e[5].value.value.i8 = -8;
  e[6].value.value.u16 = 65535;
  e[7].value.value.u32 = 4294967295u;
  e[8].value.value.i64 = INT64_MIN;
  e[9].value.value.u64 = 42;
  e[10].value.value.u64 = UINT64_MAX;
  e[11].value.value.u64 = 1700000000;
  e[12].value.value.f32 = 0.5f;
  e[13].value.value.f64 = 2.25;
  e[14].value.value.decimal = (amqp_decimal_t){.decimals = 2, .value = 12345};
  e[15].value.value.decimal = (amqp_decimal_t){.decimals = 1, .value = (uint32_t)-5};
  e[17].value.value.table = (amqp_table_t){.num_entries = 1, .entries = inner};
  e[18].value.value.array = (amqp_array_t){.num_entries = 3, .entries = array_values};
  amqp_table_t table = {.num_entries = sizeof e / sizeof e[0], .entries = e};

  json_t *got = ctxd__amqp_table_to_json(&table);
  json_t *expected =
      json_loads("{\"s\":\"hello\",\"bytes\":\"raw\",\"empty\":\"\",\"b\":true,\"i8\":-8,\"u16\":65535,"
                 "\"u32\":4294967295,\"i64\":-9223372036854775808,\"u64\":42,"
                 "\"u64big\":18446744073709551616.0,\"ts\":1700000000,\"f32\":0.5,\"f64\":2.25,"
                 "\"dec\":123.45,\"negdec\":-0.5,\"void\":null,\"table\":{\"depth\":2},"
                 "\"array\":[7,\"x\"]}",
                 0, NULL);
  assert_non_null(expected);
  if (!json_equal(got, expected)) {
    char *dump = json_dumps(got, JSON_COMPACT);
    print_error("got %s\n", dump);
    free(dump);
  }
  assert_true(json_equal(got, expected));
  assert_true(json_is_real(json_object_get(got, "u64big")));
  assert_true(json_is_integer(json_object_get(got, "ts")));
  json_decref(got);
  json_decref(expected);

  got = ctxd__amqp_table_to_json(NULL);
  assert_true(json_is_object(got));
  assert_int_equal(json_object_size(got), 0);
  json_decref(got);
}

static const amqp_field_value_t *table_get(const amqp_table_t *t, const char *key) {
  for (int i = 0; i < t->num_entries; i++)
    if (t->entries[i].key.len == strlen(key) && memcmp(t->entries[i].key.bytes, key, strlen(key)) == 0)
      return &t->entries[i].value;
  return NULL;
}

static void test_json_amqp_table_round_trip(void **state) {
  (void)state;
  char long_key[300];
  memset(long_key, 'k', sizeof long_key - 1);
  long_key[sizeof long_key - 1] = '\0';
  json_t *source =
      json_loads("{\"s\":\"hello\",\"empty\":\"\",\"t\":true,\"f\":false,\"i\":-9223372036854775808,"
                 "\"r\":2.25,\"null\":null,\"table\":{\"depth\":2,\"inner\":{\"x\":\"y\"}},"
                 "\"array\":[7,\"x\",[1],{\"k\":1},null]}",
                 0, NULL);
  assert_non_null(source);
  json_object_set_new(source, long_key, json_integer(1)); /* too long for AMQP: skipped */

  amqp_pool_t pool;
  init_amqp_pool(&pool, 4096);
  amqp_table_t table;
  assert_int_equal(ctxd__json_to_amqp_table(source, &pool, &table), 0);
  assert_int_equal(table.num_entries, 8); /* null and the long key skipped */
  const amqp_field_value_t *v = table_get(&table, "s");
  assert_non_null(v);
  assert_int_equal(v->kind, AMQP_FIELD_KIND_UTF8);
  assert_int_equal(v->value.bytes.len, 5);
  assert_string_equal(v->value.bytes.bytes, "hello"); /* NUL-terminated too */
  v = table_get(&table, "i");
  assert_int_equal(v->kind, AMQP_FIELD_KIND_I64);
  assert_true(v->value.i64 == INT64_MIN);
  v = table_get(&table, "r");
  assert_int_equal(v->kind, AMQP_FIELD_KIND_F64);
  assert_true(v->value.f64 == 2.25);
  assert_int_equal(table_get(&table, "t")->kind, AMQP_FIELD_KIND_BOOLEAN);
  assert_int_equal(table_get(&table, "t")->value.boolean, 1);
  assert_int_equal(table_get(&table, "f")->value.boolean, 0);
  v = table_get(&table, "table");
  assert_int_equal(v->kind, AMQP_FIELD_KIND_TABLE);
  assert_int_equal(v->value.table.num_entries, 2);
  assert_int_equal(table_get(&v->value.table, "inner")->kind, AMQP_FIELD_KIND_TABLE);
  v = table_get(&table, "array");
  assert_int_equal(v->kind, AMQP_FIELD_KIND_ARRAY);
  assert_int_equal(v->value.array.num_entries, 4);
  assert_int_equal(v->value.array.entries[2].kind, AMQP_FIELD_KIND_ARRAY);
  assert_int_equal(v->value.array.entries[3].kind, AMQP_FIELD_KIND_TABLE);
  assert_null(table_get(&table, "null"));

  json_t *back = ctxd__amqp_table_to_json(&table);
  json_object_del(source, "null");
  json_object_del(source, long_key);
  json_array_remove(json_object_get(source, "array"), 4);
  assert_true(json_equal(back, source));
  json_decref(back);

  json_t *empty = json_object();
  assert_int_equal(ctxd__json_to_amqp_table(empty, &pool, &table), 0);
  assert_int_equal(table.num_entries, 0);
  json_t *array = json_array();
  assert_int_equal(ctxd__json_to_amqp_table(array, &pool, &table), CTXD_EINVAL);
  assert_int_equal(table.num_entries, 0);
  assert_int_equal(ctxd__json_to_amqp_table(NULL, &pool, &table), CTXD_EINVAL);
  json_decref(array);
  json_decref(empty);
  json_decref(source);
  empty_amqp_pool(&pool);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_decode_camel_case_envelope),
      cmocka_unit_test(test_decode_pascal_case_envelope),
      cmocka_unit_test(test_decode_content_type_parameters_and_case),
      cmocka_unit_test(test_decode_envelope_headers_merged),
      cmocka_unit_test(test_decode_duplicate_keys_tolerated),
      cmocka_unit_test(test_decode_in_place),
      cmocka_unit_test(test_decode_message_text),
      cmocka_unit_test(test_decode_message_tree),
      cmocka_unit_test(test_decode_plain_from_headers),
      cmocka_unit_test(test_decode_plain_from_properties),
      cmocka_unit_test(test_decode_plain_properties_not_terminated),
      cmocka_unit_test(test_decode_errors),
      cmocka_unit_test(test_decode_plain_errors),
      cmocka_unit_test(test_decode_too_big),
      cmocka_unit_test(test_decode_too_deep),
      cmocka_unit_test(test_decode_truncated_prefixes),
      cmocka_unit_test(test_decode_null_arguments),
      cmocka_unit_test(test_encode_decode_round_trip),
      cmocka_unit_test(test_encode_defaults),
      cmocka_unit_test(test_iso8601_both_ways),
      cmocka_unit_test(test_encode_rejects_incomplete),
      cmocka_unit_test(test_encode_concurrent),
      cmocka_unit_test(test_uuid_canonical),
      cmocka_unit_test(test_uuid_new),
      cmocka_unit_test(test_uuid_derive),
      cmocka_unit_test(test_json_get_ci),
      cmocka_unit_test(test_amqp_table_get_int),
      cmocka_unit_test(test_amqp_table_to_json),
      cmocka_unit_test(test_json_amqp_table_round_trip),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
