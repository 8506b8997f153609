/* Unit tests for the generated typed access (ctxd_contracts.h): every contract round-trips
 * through its struct, MassTransit bodies in camelCase and PascalCase decode alike, the
 * typed decoders agree with the host's validator on every error, and bad input (invalid
 * UTF-8, wrong types, too deep, too big, truncated) gets a clear error, never a crash. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ctxd/errno.h>

#include "contract.h"
#include "contract_schema.h"
#include "ctxd_contracts.h"

typedef ctxd_c_data_catalog_products_v1_material_type_t material_type_t;

static const char camel_material_type[] =
    "{\"id\":\"11eb7a3c0f7c4b7e9f1a2b3c4d5e6f70\",\"version\":3,\"countryId\":643,"
    "\"departmentId\":\"000d3a240c719a8711e68aba13f7fe8e\",\"name\":\"Сыр моцарелла\","
    "\"category\":1,\"basicUnitOfMeasure\":5,\"isRemoved\":false}";

static const char pascal_material_type[] =
    "{\"Id\":\"11EB7A3C-0F7C-4B7E-9F1A-2B3C4D5E6F70\",\"Version\":3,\"CountryId\":643,"
    "\"DepartmentId\":\"000D3A24-0C71-9A87-11E6-8ABA13F7FE8E\",\"Name\":\"Сыр моцарелла\","
    "\"Category\":1,\"BasicUnitOfMeasure\":5,\"IsRemoved\":false,\"Comment\":\"new field\"}";

static json_t *parse(const char *text) {
  json_error_t je;
  json_t *v = json_loads(text, JSON_DECODE_ANY, &je);
  if (!v) fail_msg("not JSON: %s: %s", je.text, text);
  return v;
}

static ctxd__contracts_t *registry(void) {
  ctxd__contracts_t *c = NULL;
  char err[512] = "";
  if (ctxd__contracts_new(&c, err, sizeof err)) fail_msg("registry: %s", err);
  return c;
}

static void assert_json_text_equal(const char *got, const char *want, const char *what) {
  json_t *g = parse(got), *w = parse(want);
  if (!json_equal(g, w)) fail_msg("%s:\n got  %s\n want %s", what, got, want);
  json_decref(g);
  json_decref(w);
}

/* decode(sample) -> encode -> the same JSON; decode again -> encode -> the same again. */
static void round_trip(const ctxd_c_contract_info_t *info, const char *sample) {
  char err[512] = "";
  void *m = calloc(1, info->size), *m2 = calloc(1, info->size);
  if (ctxd__schema_decode(info->schema, sample, strlen(sample), m, err, sizeof err))
    fail_msg("%s: sample does not decode: %s", info->message_type, err);
  char *text = ctxd__schema_encode(info->schema, m);
  if (!text) {
    ctxd__schema_to_json(info->schema, m, err, sizeof err);
    fail_msg("%s: decoded sample does not encode: %s", info->message_type, err);
  }
  assert_json_text_equal(text, sample, info->message_type);
  assert_int_equal(ctxd__schema_decode(info->schema, text, strlen(text), m2, err, sizeof err), 0);
  char *again = ctxd__schema_encode(info->schema, m2);
  assert_non_null(again);
  assert_string_equal(again, text);
  free(again);
  free(text);
  ctxd__schema_free(info->schema, m);
  ctxd__schema_free(info->schema, m2);
  /* free zeroes: a second free is harmless */
  ctxd__schema_free(info->schema, m);
  free(m);
  free(m2);
}

static void test_every_contract_round_trips(void **state) {
  (void)state;
  ctxd__contracts_t *c = registry();
  assert_int_equal(ctxd_c_contracts_count, ctxd__contracts_count(c));
  for (size_t i = 0; i < ctxd_c_contracts_count; i++) {
    const ctxd_c_contract_info_t *info = &ctxd_c_contracts[i];
    const ctxd__contract_t *k = ctxd__contracts_find(c, info->message_type);
    if (!k) fail_msg("%s is not in the registry", info->message_type);
    const char *samples[] = {info->sample, info->sample_minimal};
    for (size_t s = 0; s < 2; s++) {
      char err[512] = "";
      json_t *v = parse(samples[s]);
      if (ctxd__contract_validate(k, v, err, sizeof err))
        fail_msg("%s: sample fails the host's validator: %s", info->message_type, err);
      json_decref(v);
      round_trip(info, samples[s]);
    }
  }
  ctxd__contracts_free(c);
}

static void test_material_type_camel_and_pascal_decode_alike(void **state) {
  (void)state;
  material_type_t a, b;
  char err[512] = "";
  assert_int_equal(ctxd_c_data_catalog_products_v1_material_type_decode(
                       camel_material_type, strlen(camel_material_type), &a, err, sizeof err),
                   0);
  assert_int_equal(ctxd_c_data_catalog_products_v1_material_type_decode(
                       pascal_material_type, strlen(pascal_material_type), &b, err, sizeof err),
                   0);
  const material_type_t *both[] = {&a, &b};
  for (size_t i = 0; i < 2; i++) {
    const material_type_t *m = both[i];
    assert_string_equal(m->id, "11eb7a3c-0f7c-4b7e-9f1a-2b3c4d5e6f70");
    assert_int_equal(m->version, 3);
    assert_int_equal(m->country_id, 643);
    assert_string_equal(m->department_id, "000d3a24-0c71-9a87-11e6-8aba13f7fe8e");
    assert_string_equal(m->name, "Сыр моцарелла");
    assert_int_equal(m->category, CTXD_C_DATA_CATALOG_PRODUCTS_V1_MATERIAL_TYPE_CATEGORY_INGREDIENT);
    assert_int_equal(m->basic_unit_of_measure,
                     CTXD_C_DATA_CATALOG_PRODUCTS_V1_MATERIAL_TYPE_BASIC_UNIT_OF_MEASURE_GRAM);
    assert_false(m->is_removed);
  }
  /* What encoders write: the names exactly as defined, canonical UUIDs. */
  char *ea = ctxd_c_data_catalog_products_v1_material_type_encode(&a);
  char *eb = ctxd_c_data_catalog_products_v1_material_type_encode(&b);
  assert_non_null(ea);
  assert_string_equal(ea, eb);
  assert_string_equal(ea, "{\"Id\":\"11eb7a3c-0f7c-4b7e-9f1a-2b3c4d5e6f70\",\"Version\":3,"
                          "\"CountryId\":643,\"DepartmentId\":\"000d3a24-0c71-9a87-11e6-"
                          "8aba13f7fe8e\",\"Name\":\"Сыр моцарелла\",\"Category\":1,"
                          "\"BasicUnitOfMeasure\":5,\"IsRemoved\":false}");
  free(ea);
  free(eb);
  assert_string_equal(CTXD_C_DATA_CATALOG_PRODUCTS_V1_MATERIAL_TYPE_TYPE,
                      "Dodo.DataCatalog.Contracts.Products.v1:MaterialType");
  ctxd_c_data_catalog_products_v1_material_type_free(&a);
  ctxd_c_data_catalog_products_v1_material_type_free(&b);
  assert_null(a.name);
}

/* The host validates and upcasts v1 for a v2 handler; the handler decodes v2. */
static void test_v2_handler_reads_upcast_v1(void **state) {
  (void)state;
  ctxd__contracts_t *c = registry();
  json_t *v1 = parse(camel_material_type), *v2 = NULL;
  char err[512] = "";
  assert_int_equal(ctxd__contracts_upcast(c, CTXD_C_DATA_CATALOG_PRODUCTS_V1_MATERIAL_TYPE_TYPE,
                                          CTXD_C_DATA_CATALOG_PRODUCTS_V2_MATERIAL_TYPE_TYPE, v1, &v2, err,
                                          sizeof err),
                   0);
  char *body = json_dumps(v2, JSON_COMPACT);
  ctxd_c_data_catalog_products_v2_material_type_t m;
  assert_int_equal(
      ctxd_c_data_catalog_products_v2_material_type_decode(body, strlen(body), &m, err, sizeof err), 0);
  assert_null(m.external_code);
  assert_int_equal(m.country_id, 643);
  /* Written back, the required nullable field is an explicit null. */
  char *text = ctxd_c_data_catalog_products_v2_material_type_encode(&m);
  assert_non_null(strstr(text, "\"ExternalCode\":null"));
  free(text);
  ctxd_c_data_catalog_products_v2_material_type_free(&m);
  free(body);
  json_decref(v2);
  json_decref(v1);
  ctxd__contracts_free(c);
}

static void test_decimals_uuids_and_presence(void **state) {
  (void)state;
  static const struct {
    const char *value, *text;
  } decimals[] = {
      {"12.5", "12.5"},
      {"0.1", "0.1"},
      {"1e-7", "0.0000001"},
      {"100", "100"},
      {"1.5e20", "150000000000000000000"},
      {"\"007.50\"", "007.50"},
      {"-0.0", "0"},
      {"-2.25", "-2.25"},
      {"123456789.123456", "123456789.123456"},
  };
  for (size_t i = 0; i < sizeof decimals / sizeof *decimals; i++) {
    char body[512], err[512] = "";
    snprintf(body, sizeof body,
             "{\"InventoryId\":\"0b000000-0000-4000-8000-000000000001\","
             "\"MeasurementId\":\"0b000000-0000-4000-8000-000000000002\",\"Version\":1,"
             "\"MaterialTypeId\":\"0b000000-0000-4000-8000-000000000003\",\"Value\":%s,"
             "\"UnitOfMeasure\":5,\"InventoryZoneId\":\"0b000000-0000-4000-8000-000000000004\","
             "\"UserId\":\"0b000000-0000-4000-8000-000000000005\"}",
             decimals[i].value);
    ctxd_c_inventory_v1_add_measurement_t m;
    if (ctxd_c_inventory_v1_add_measurement_decode(body, strlen(body), &m, err, sizeof err))
      fail_msg("%s: %s", decimals[i].value, err);
    assert_string_equal(m.value, decimals[i].text);
    ctxd_c_inventory_v1_add_measurement_free(&m);
  }

  /* Built by a handler from scratch: a 32-hex UUID is written canonical; Value NULL is the
   * removal, written as null. */
  ctxd_c_inventory_v1_add_measurement_t m = {
      .version = 2, .unit_of_measure = CTXD_C_INVENTORY_V1_ADD_MEASUREMENT_UNIT_OF_MEASURE_GRAM};
  strcpy(m.inventory_id, "0B0000000000400080000000000000AA");
  strcpy(m.measurement_id, "0b000000-0000-4000-8000-000000000002");
  strcpy(m.material_type_id, "0b000000-0000-4000-8000-000000000003");
  strcpy(m.inventory_zone_id, "0b000000-0000-4000-8000-000000000004");
  strcpy(m.user_id, "0b000000-0000-4000-8000-000000000005");
  char *text = ctxd_c_inventory_v1_add_measurement_encode(&m);
  assert_non_null(text);
  assert_json_text_equal(text,
                         "{\"InventoryId\":\"0b000000-0000-4000-8000-0000000000aa\","
                         "\"MeasurementId\":\"0b000000-0000-4000-8000-000000000002\","
                         "\"Version\":2,\"MaterialTypeId\":\"0b000000-0000-4000-8000-"
                         "000000000003\",\"Value\":null,\"UnitOfMeasure\":5,"
                         "\"InventoryZoneId\":\"0b000000-0000-4000-8000-000000000004\","
                         "\"UserId\":\"0b000000-0000-4000-8000-000000000005\"}",
                         "built AddMeasurement");
  free(text);

  /* Optional objects and arrays carry has_ flags. */
  const char body[] =
      "{\"CompensationId\":\"0b000000-0000-4000-8000-000000000001\",\"OrderNumber\":\"SO1\","
      "\"CustomerId\":\"0b000000-0000-4000-8000-000000000002\",\"Strategy\":1,"
      "\"Items\":[{\"Sku\":\"A\",\"Name\":\"Pizza\",\"Quantity\":2,\"RefundAmountMinor\":990},"
      "{\"sku\":\"B\",\"name\":\"Cola\",\"quantity\":1}],\"Currency\":\"CNY\","
      "\"TotalAmountMinor\":990,\"ApprovedBy\":\"staff-1\","
      "\"ApprovedAt\":\"2024-08-10T12:34:56Z\",\"NonProduct\":null}";
  ctxd_c_compensation_v1_compensation_approved_t a;
  char err[512] = "";
  assert_int_equal(
      ctxd_c_compensation_v1_compensation_approved_decode(body, strlen(body), &a, err, sizeof err), 0);
  assert_true(a.has_items);
  assert_int_equal(a.items_count, 2);
  assert_string_equal(a.items[1].sku, "B");
  assert_true(a.items[0].has_refund_amount_minor);
  assert_int_equal(a.items[0].refund_amount_minor, 990);
  assert_false(a.items[1].has_refund_amount_minor);
  assert_false(a.has_non_product);
  assert_int_equal(a.strategy, CTXD_C_COMPENSATION_V1_COMPENSATION_APPROVED_STRATEGY_PRODUCT_REFUND);
  ctxd_c_compensation_v1_compensation_approved_free(&a);
  assert_null(a.items);
  assert_int_equal(a.items_count, 0);
}

static void test_encode_refuses_what_breaks_the_contract(void **state) {
  (void)state;
  const ctxd_c_contract_info_t *info = NULL;
  for (size_t i = 0; i < ctxd_c_contracts_count; i++)
    if (strcmp(ctxd_c_contracts[i].message_type, CTXD_C_DATA_CATALOG_PRODUCTS_V1_MATERIAL_TYPE_TYPE) == 0)
      info = &ctxd_c_contracts[i];
  assert_non_null(info);
  material_type_t m;
  char err[512] = "";
  assert_int_equal(ctxd_c_data_catalog_products_v1_material_type_decode(info->sample, strlen(info->sample),
                                                                        &m, err, sizeof err),
                   0);
  char *name = m.name;
  m.name = NULL;
  assert_null(ctxd_c_data_catalog_products_v1_material_type_encode(&m));
  assert_null(ctxd__schema_to_json(info->schema, &m, err, sizeof err));
  assert_string_equal(err, "message.Name: missing required field");
  m.name = "\xff\xfe";
  assert_null(ctxd__schema_to_json(info->schema, &m, err, sizeof err));
  assert_string_equal(err, "message.Name: cannot be written (not UTF-8, or out of memory)");
  m.name = name;
  m.category = 9;
  assert_null(ctxd__schema_to_json(info->schema, &m, err, sizeof err));
  assert_string_equal(err, "message.Category: 9 is not one of 1,2,3,4,5,6");
  m.category = 1;
  m.country_id = INT64_C(3000000000);
  assert_null(ctxd__schema_to_json(info->schema, &m, err, sizeof err));
  assert_string_equal(err, "message.CountryId: 3000000000 is more than the maximum 2147483647");
  m.country_id = 643;
  strcpy(m.id, "not-a-uuid");
  assert_null(ctxd__schema_to_json(info->schema, &m, err, sizeof err));
  assert_string_equal(err, "message.Id: not a UUID");
  m.id[0] = '\0';
  assert_null(ctxd__schema_to_json(info->schema, &m, err, sizeof err));
  assert_string_equal(err, "message.Id: missing required field");
  ctxd_c_data_catalog_products_v1_material_type_free(&m);

  /* An array with a count but no items, a NULL string element. */
  ctxd_c_case_v1_define_skill_group_t g = {.version = 1, .agent_ids_count = 2};
  strcpy(g.skill_group_id, "0b000000-0000-4000-8000-000000000001");
  g.name = "Refunds";
  assert_null(ctxd_c_case_v1_define_skill_group_encode(&g));
  char *agents[] = {"agent-1", NULL};
  g.agent_ids = agents;
  assert_null(ctxd_c_case_v1_define_skill_group_encode(&g));
  g.agent_ids_count = 1;
  char *text = ctxd_c_case_v1_define_skill_group_encode(&g);
  assert_non_null(strstr(text, "\"AgentIds\":[\"agent-1\"]"));
  free(text);
}

static void test_bad_input_gets_clear_errors(void **state) {
  (void)state;
  material_type_t m;
  char err[512] = "";
  static const struct {
    const char *body, *error;
  } cases[] = {
      {"[1,2]", "message: expected an object, got an array"},
      {"5", "message: expected an object, got an integer"},
      {"{\"id\":", "message: not valid JSON: "},
      {"", "message: not valid JSON: "},
      {"{} x", "message: not valid JSON: "},
      {"{\"id\":\"x\xff\"}", "message: invalid UTF-8 at byte 8"},
      {"{\"id\":\"\xc0\xaf\"}", "message: invalid UTF-8 at byte 7"}, /* an overlong '/' */
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    int rc = ctxd_c_data_catalog_products_v1_material_type_decode(cases[i].body, strlen(cases[i].body), &m,
                                                                  err, sizeof err);
    if (rc != CTXD_EVALIDATION || strncmp(err, cases[i].error, strlen(cases[i].error)))
      fail_msg("case %zu: got %d '%s', want '%s'", i, rc, err, cases[i].error);
    ctxd_c_data_catalog_products_v1_material_type_free(&m);
  }
  /* A wrong type deep inside. */
  const char items[] = "{\"InventoryId\":\"0b000000-0000-4000-8000-000000000001\",\"Version\":1,"
                       "\"UnitId\":\"0b000000-0000-4000-8000-000000000002\","
                       "\"FinishedBy\":\"0b000000-0000-4000-8000-000000000003\","
                       "\"FinishedAt\":\"2024-08-10T12:34:56Z\",\"MeasurementCount\":\"42\"}";
  ctxd_c_inventory_v1_inventory_finished_t f;
  assert_int_equal(ctxd_c_inventory_v1_inventory_finished_decode(items, strlen(items), &f, err, sizeof err),
                   CTXD_EVALIDATION);
  assert_string_equal(err, "message.MeasurementCount: expected an integer, got a string");

  /* Nesting: 64 levels pass the limit (and fail the contract), 65 do not. */
  for (int depth = 64; depth <= 65; depth++) {
    size_t n = (size_t)depth;
    char *deep = malloc(2 * n + 16);
    char *p = deep;
    for (size_t i = 0; i < n - 1; i++) *p++ = '[';
    p += sprintf(p, "{\"x\":1}");
    for (size_t i = 0; i < n - 1; i++) *p++ = ']';
    *p = '\0';
    int rc = ctxd_c_data_catalog_products_v1_material_type_decode(deep, strlen(deep), &m, err, sizeof err);
    assert_int_equal(rc, CTXD_EVALIDATION);
    assert_string_equal(err, depth == 64 ? "message: expected an object, got an array"
                                         : "message: nested deeper than 64 levels");
    free(deep);
  }
  /* jansson's own parser limit (2048) is far beyond ours: still a clean error. */
  size_t huge = 100000;
  char *deep = malloc(huge + 1);
  memset(deep, '[', huge);
  deep[huge] = '\0';
  assert_int_equal(ctxd_c_data_catalog_products_v1_material_type_decode(deep, huge, &m, err, sizeof err),
                   CTXD_EVALIDATION);
  assert_non_null(strstr(err, "message: not valid JSON"));
  free(deep);

  /* Size. */
  size_t big = CTXD__SCHEMA_MAX_BYTES + 1;
  char *body = malloc(big);
  memset(body, ' ', big);
  body[0] = '{';
  body[big - 1] = '}';
  assert_int_equal(ctxd_c_data_catalog_products_v1_material_type_decode(body, big, &m, err, sizeof err),
                   CTXD_EVALIDATION);
  assert_string_equal(err, "message: 1048577 bytes, more than the limit 1048576");
  /* the length is what counts, not a terminator */
  assert_int_equal(ctxd_c_data_catalog_products_v1_material_type_decode(body, big - 2, &m, err, sizeof err),
                   CTXD_EVALIDATION);
  free(body);

  /* Arguments. */
  assert_int_equal(ctxd_c_data_catalog_products_v1_material_type_decode(NULL, 3, &m, err, sizeof err),
                   CTXD_EINVAL);
  assert_int_equal(ctxd_c_data_catalog_products_v1_material_type_decode("{}", 2, NULL, err, sizeof err),
                   CTXD_EINVAL);
  assert_null(ctxd_c_data_catalog_products_v1_material_type_encode(NULL));
  ctxd_c_data_catalog_products_v1_material_type_free(NULL);
}

/* Every contract, every field replaced by every kind of wrong value, and every prefix of
 * every sample: the typed decoder never crashes, and says exactly what the host's validator
 * says. */
static void test_typed_decoders_agree_with_the_validator(void **state) {
  (void)state;
  ctxd__contracts_t *c = registry();
  const char *wrong[] = {"null",  "1",          "1.5",
                         "\"x\"", "true",       "[]",
                         "{}",    "[null]",     "\"0b000000-0000-4000-8000-000000000001\"",
                         "-1",    "99999999999"};
  size_t checked = 0, failed = 0;
  for (size_t i = 0; i < ctxd_c_contracts_count; i++) {
    const ctxd_c_contract_info_t *info = &ctxd_c_contracts[i];
    const ctxd__contract_t *k = ctxd__contracts_find(c, info->message_type);
    json_t *sample = parse(info->sample);
    void *m = calloc(1, info->size);
    const char *key;
    json_t *value;
    json_object_foreach(sample, key, value) {
      for (size_t w = 0; w < sizeof wrong / sizeof *wrong; w++) {
        json_t *msg = json_deep_copy(sample);
        json_object_set_new(msg, key, parse(wrong[w]));
        char *text = json_dumps(msg, JSON_COMPACT);
        char verr[512] = "", terr[512] = "";
        int vrc = ctxd__contract_validate(k, msg, verr, sizeof verr);
        int trc = ctxd__schema_decode(info->schema, text, strlen(text), m, terr, sizeof terr);
        if (vrc != trc || strcmp(verr, terr))
          fail_msg("%s %s=%s: validator %d '%s', decoder %d '%s'", info->message_type, key, wrong[w], vrc,
                   verr, trc, terr);
        if (trc) {
          assert_int_equal(trc, CTXD_EVALIDATION);
          assert_non_null(strstr(terr, "message."));
          failed++;
        }
        checked++;
        ctxd__schema_free(info->schema, m);
        free(text);
        json_decref(msg);
      }
    }
    size_t len = strlen(info->sample);
    for (size_t n = 0; n < len; n++) {
      char err[512] = "";
      assert_int_equal(ctxd__schema_decode(info->schema, info->sample, n, m, err, sizeof err),
                       CTXD_EVALIDATION);
      assert_int_equal(strncmp(err, "message: ", 9), 0);
      ctxd__schema_free(info->schema, m);
    }
    free(m);
    json_decref(sample);
  }
  assert_true(checked > 1000);
  assert_true(failed > checked / 2);
  ctxd__contracts_free(c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_every_contract_round_trips),
      cmocka_unit_test(test_material_type_camel_and_pascal_decode_alike),
      cmocka_unit_test(test_v2_handler_reads_upcast_v1),
      cmocka_unit_test(test_decimals_uuids_and_presence),
      cmocka_unit_test(test_encode_refuses_what_breaks_the_contract),
      cmocka_unit_test(test_bad_input_gets_clear_errors),
      cmocka_unit_test(test_typed_decoders_agree_with_the_validator),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
