/* `ctxd contracts export`: the AsyncAPI document lists every contract version as a channel
 * (its exchange, fanout) with a message carrying its JSON Schema, URNs and content type. */
#include "testsupport.h"

#include <string.h>

#include <jansson.h>

#include "asyncapi.h"
#include "contract.h"
#include "contract_schema.h"

static void every_contract_version_is_a_channel_with_its_schema(void **state) {
  (void)state;
  char err[512];
  ctxd__contracts_t *c;
  assert_int_equal(ctxd__contracts_new(&c, err, sizeof err), 0);
  json_t *doc = ctxd__asyncapi_document(c);
  assert_non_null(doc);
  /* valid JSON once written, and read back the same */
  char *text = json_dumps(doc, JSON_INDENT(2));
  json_error_t je;
  json_t *back = json_loads(text, JSON_REJECT_DUPLICATES, &je);
  assert_non_null(back);
  assert_true(json_equal(doc, back));
  assert_string_equal(json_string_value(json_object_get(doc, "asyncapi")), "2.6.0");
  json_t *channels = json_object_get(doc, "channels");
  json_t *messages = json_object_get(json_object_get(doc, "components"), "messages");
  assert_int_equal(json_object_size(channels), ctxd__contracts_count(c));
  assert_int_equal(json_object_size(messages), ctxd__contracts_count(c));
  for (size_t i = 0; i < ctxd__contracts_count(c); i++) {
    const ctxd__contract_t *k = ctxd__contracts_at(c, i);
    json_t *ch = json_object_get(channels, ctxd__contract_exchange(k));
    assert_non_null(ch);
    json_t *x = json_object_get(json_object_get(json_object_get(ch, "bindings"), "amqp"), "exchange");
    assert_string_equal(json_string_value(json_object_get(x, "type")), "fanout");
    assert_true(json_is_true(json_object_get(x, "durable")));
    json_t *op = json_object_get(ch, strcmp(ctxd__contract_kind(k), "event") == 0 ? "subscribe" : "publish");
    const char *ref = json_string_value(json_object_get(json_object_get(op, "message"), "$ref"));
    assert_non_null(ref);
    assert_true(strncmp(ref, "#/components/messages/", 22) == 0);
    json_t *m = json_object_get(messages, ref + 22);
    assert_string_equal(json_string_value(json_object_get(m, "name")), ctxd__contract_type(k));
    assert_string_equal(json_string_value(json_object_get(m, "contentType")),
                        "application/vnd.masstransit+json");
    assert_int_equal(json_array_size(json_object_get(m, "x-urns")), 1 + ctxd__contract_nbases(k));
    /* the message member's schema has every field of the contract, required ones listed */
    json_t *body = json_object_get(json_object_get(json_object_get(m, "payload"), "properties"), "message");
    json_t *props = json_object_get(body, "properties");
    const ctxd__schema_type_t *t = ctxd__contract_body(k);
    assert_int_equal(json_object_size(props), t->nfields);
    size_t required = 0;
    for (size_t f = 0; f < t->nfields; f++) {
      assert_non_null(json_object_get(props, t->fields[f].name));
      required += t->fields[f].required;
    }
    assert_int_equal(json_array_size(json_object_get(body, "required")), required);
  }
  /* a stated exchange and the types it implements */
  json_t *echoed = json_object_get(channels, "ctxd-testkit-echoed");
  assert_non_null(echoed);
  assert_string_equal(json_string_value(json_array_get(json_object_get(echoed, "x-bound-to"), 1)),
                      "Ctxd.Testkit.Contracts:Outer-INested");
  json_decref(back);
  free(text);
  json_decref(doc);
  ctxd__contracts_free(c);
}

static void field_types_become_json_schema(void **state) {
  (void)state;
  const char *def =
      "{\"namespace\": \"Ctxd.Tests.Contracts\", \"type\": \"Sample\", \"version\": 1, \"kind\": \"command\","
      " \"status\": \"draft\", \"description\": \"d\", \"producers\": [\"a\"], \"consumers\": [\"b\"],"
      " \"fields\": [{\"name\": \"Code\", \"type\": \"string\", \"max_length\": 8, \"description\": \"c\"},"
      " {\"name\": \"Count\", \"type\": \"int\", \"min\": 0, \"max\": 9, \"required\": false, "
      "\"description\": \"n\"},"
      " {\"name\": \"Unit\", \"type\": \"enum\", \"nullable\": true, \"description\": \"u\","
      "   \"values\": [{\"name\": \"Gram\", \"value\": 5}]},"
      " {\"name\": \"Tags\", \"type\": \"array\", \"max_items\": 3, \"description\": \"t\","
      "   \"items\": {\"type\": \"uuid\"}}]}";
  char err[512];
  ctxd__contracts_t *c;
  assert_int_equal(ctxd__contracts_load(&def, 1, &c, err, sizeof err), 0);
  json_t *s = ctxd__asyncapi_schema(ctxd__contract_body(ctxd__contracts_at(c, 0)));
  json_t *want = json_loads(
      "{\"type\": \"object\", \"required\": [\"Code\", \"Unit\", \"Tags\"], \"properties\": {"
      " \"Code\": {\"type\": \"string\", \"maxLength\": 8, \"description\": \"c\"},"
      " \"Count\": {\"type\": [\"integer\", \"null\"], \"minimum\": 0, \"maximum\": 9, \"description\": "
      "\"n\"},"
      " \"Unit\": {\"type\": [\"integer\", \"null\"], \"enum\": [5, null], \"x-enum-names\": [\"Gram\"],"
      "   \"description\": \"u\"},"
      " \"Tags\": {\"type\": \"array\", \"items\": {\"type\": \"string\", \"format\": \"uuid\"}, "
      "\"maxItems\": 3,"
      "   \"description\": \"t\"}}}",
      0, NULL);
  assert_non_null(want);
  if (!json_equal(s, want)) {
    char *got = json_dumps(s, JSON_SORT_KEYS);
    fail_msg("schema: %s", got);
  }
  json_decref(want);
  json_decref(s);
  ctxd__contracts_free(c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(every_contract_version_is_a_channel_with_its_schema),
      cmocka_unit_test(field_types_become_json_schema),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
