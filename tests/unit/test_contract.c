/* Unit tests for runtime/contract.c and the schema engine under it: the embedded registry,
 * every validation rule with its exact error, upcasting (the real MaterialType v1 -> v2
 * and a fixture chain with renames), the checks on definitions and upcasters, and the
 * compatibility checker against deliberate breaking edits of a fixture. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ctxd/errno.h>

#include "contract.h"

#define MATERIAL_TYPE_V1 "Dodo.DataCatalog.Contracts.Products.v1:MaterialType"
#define MATERIAL_TYPE_V2 "Dodo.DataCatalog.Contracts.Products.v2:MaterialType"

/* A MaterialType body as MassTransit 8 (System.Text.Json) publishes it: camelCase, Dodo's
 * 32-hex UUIDs. */
static const char camel_material_type[] =
    "{\"id\":\"11eb7a3c0f7c4b7e9f1a2b3c4d5e6f70\",\"version\":3,\"countryId\":643,"
    "\"departmentId\":\"000d3a240c719a8711e68aba13f7fe8e\",\"name\":\"Сыр моцарелла\","
    "\"category\":1,\"basicUnitOfMeasure\":5,\"isRemoved\":false}";

/* The same from an older (Newtonsoft) publisher: PascalCase, dashed upper-case UUIDs, and a
 * property this version does not know. */
static const char pascal_material_type[] =
    "{\"Id\":\"11EB7A3C-0F7C-4B7E-9F1A-2B3C4D5E6F70\",\"Version\":3,\"CountryId\":643,"
    "\"DepartmentId\":\"000D3A24-0C71-9A87-11E6-8ABA13F7FE8E\",\"Name\":\"Сыр моцарелла\","
    "\"Category\":1,\"BasicUnitOfMeasure\":5,\"IsRemoved\":false,\"Comment\":\"new field\"}";

/* A fixture contract with one field of every kind and limit. */
static const char everything_def[] =
    "{\"namespace\":\"Ctxd.Test.Contracts\",\"type\":\"Everything\",\"version\":1,"
    "\"kind\":\"event\",\"status\":\"released\",\"description\":\"Every rule.\","
    "\"producers\":[\"test\"],\"consumers\":[\"test\"],\"fields\":["
    "{\"name\":\"Id\",\"type\":\"uuid\",\"description\":\"d\"},"
    "{\"name\":\"Name\",\"type\":\"string\",\"max_length\":5,\"description\":\"d\"},"
    "{\"name\":\"Count\",\"type\":\"int\",\"min\":1,\"max\":10,\"description\":\"d\"},"
    "{\"name\":\"Amount\",\"type\":\"decimal\",\"description\":\"d\"},"
    "{\"name\":\"Flag\",\"type\":\"bool\",\"description\":\"d\"},"
    "{\"name\":\"At\",\"type\":\"datetime\",\"description\":\"d\"},"
    "{\"name\":\"Kind\",\"type\":\"enum\",\"description\":\"d\",\"values\":["
    "{\"name\":\"One\",\"value\":1},{\"name\":\"Two\",\"value\":2},{\"name\":\"Three\",\"value\":3}]},"
    "{\"name\":\"Note\",\"type\":\"string\",\"required\":false,\"description\":\"d\"},"
    "{\"name\":\"Maybe\",\"type\":\"int\",\"nullable\":true,\"description\":\"d\"},"
    "{\"name\":\"Inner\",\"type\":\"object\",\"description\":\"d\",\"fields\":["
    "{\"name\":\"Code\",\"type\":\"string\",\"description\":\"d\"}]},"
    "{\"name\":\"Items\",\"type\":\"array\",\"max_items\":3,\"description\":\"d\",\"items\":"
    "{\"type\":\"object\",\"fields\":[{\"name\":\"Quantity\",\"type\":\"int\",\"description\":\"d\"}]}},"
    "{\"name\":\"Tags\",\"type\":\"array\",\"required\":false,\"description\":\"d\",\"items\":"
    "{\"type\":\"string\",\"max_length\":3}}]}";

static const char everything_msg[] =
    "{\"Id\":\"0b000000-0000-4000-8000-000000000001\",\"Name\":\"abc\",\"Count\":5,"
    "\"Amount\":\"12.50\",\"Flag\":true,\"At\":\"2024-08-10T12:34:56.789Z\",\"Kind\":2,"
    "\"Maybe\":null,\"Inner\":{\"Code\":\"x\"},\"Items\":[{\"Quantity\":1}],\"Tags\":[\"a\"]}";

static json_t *parse(const char *text) {
  json_error_t je;
  json_t *v = json_loads(text, JSON_DECODE_ANY, &je);
  if (!v) fail_msg("fixture is not JSON: %s: %s", je.text, text);
  return v;
}

static ctxd__contracts_t *load1(const char *def) {
  ctxd__contracts_t *c = NULL;
  char err[512] = "";
  int rc = ctxd__contracts_load(&def, 1, &c, err, sizeof err);
  if (rc) fail_msg("fixture does not load: %s", err);
  return c;
}

/* ---------------------------------------------------------------------------------------
 * The embedded registry
 */

static void test_registry_loads_every_definition(void **state) {
  (void)state;
  ctxd__contracts_t *c = NULL;
  char err[512] = "";
  assert_int_equal(ctxd__contracts_new(&c, err, sizeof err), 0);
  assert_string_equal(err, "");
  assert_true(ctxd__contracts_count(c) >= 51);
  for (size_t i = 0; i < ctxd__contracts_count(c); i++) {
    const ctxd__contract_t *k = ctxd__contracts_at(c, i);
    assert_ptr_equal(ctxd__contracts_find(c, ctxd__contract_type(k)), k);
    if (i) assert_true(strcmp(ctxd__contract_type(ctxd__contracts_at(c, i - 1)), ctxd__contract_type(k)) < 0);
    assert_non_null(ctxd__contract_definition(k));
  }
  assert_null(ctxd__contracts_at(c, ctxd__contracts_count(c)));
  const char *expected[] = {
      MATERIAL_TYPE_V1,
      MATERIAL_TYPE_V2,
      "Ctxd.Inventory.Contracts.v1:StartInventory",
      "Ctxd.Inventory.Contracts.v1:AddMeasurement",
      "Ctxd.Inventory.Contracts.v1:FinishInventory",
      "Ctxd.Inventory.Contracts.v1:InventoryCommandAccepted",
      "Ctxd.Inventory.Contracts.v1:InventoryCommandRejected",
      "Ctxd.Inventory.Contracts.v1:InventoryStarted",
      "Ctxd.Inventory.Contracts.v1:MeasurementChanged",
      "Ctxd.Inventory.Contracts.v1:InventoryFinished",
      "Ctxd.Compensation.Contracts.v1:ApplyCompensation",
      "Ctxd.Compensation.Contracts.v1:ModifyCompensation",
      "Ctxd.Compensation.Contracts.v1:SubmitCompensation",
      "Ctxd.Compensation.Contracts.v1:ApproveCompensation",
      "Ctxd.Compensation.Contracts.v1:RejectCompensation",
      "Ctxd.Compensation.Contracts.v1:TerminateCompensation",
      "Ctxd.Compensation.Contracts.v1:CompensationApproved",
      "Ctxd.Compensation.Contracts.v1:CompensationStatusChanged",
      "Ctxd.Fulfillment.Contracts.v1:FulfillmentProcessing",
      "Ctxd.Fulfillment.Contracts.v1:FulfillmentSucceeded",
      "Ctxd.Fulfillment.Contracts.v1:FulfillmentFailed",
      "Ctxd.Fulfillment.Contracts.v1:RefundRequested",
      "Ctxd.Payment.Contracts.v1:RefundCompleted",
      "Ctxd.Payment.Contracts.v1:RefundFailed",
      "Ctxd.Fulfillment.Contracts.v1:ReshipOrderRequested",
      "Ctxd.Ordering.Contracts.v1:ReshipOrderCreated",
      "Ctxd.Ordering.Contracts.v1:ReshipOrderShipped",
      "Ctxd.Case.Contracts.v1:AssignCase",
      "Ctxd.Case.Contracts.v1:AcceptCase",
      "Ctxd.Case.Contracts.v1:TransferCase",
      "Ctxd.Case.Contracts.v1:ProcessCase",
      "Ctxd.Case.Contracts.v1:RejectCaseBack",
      "Ctxd.Case.Contracts.v1:CompleteCase",
      "Ctxd.Case.Contracts.v1:CloseCase",
      "Ctxd.Case.Contracts.v1:RefuseCase",
      "Ctxd.Case.Contracts.v1:UrgeCase",
      "Ctxd.Case.Contracts.v1:CaseStatusChanged",
      "Ctxd.Case.Contracts.v1:CaseOpened",
      "Ctxd.Case.Contracts.v1:CaseResolved",
      "Ctxd.Case.Contracts.v1:AgentOnDuty",
      "Ctxd.Case.Contracts.v1:AgentOffDuty",
      "Ctxd.Case.Contracts.v1:DefineSkillGroup",
      "Ctxd.Case.Contracts.v1:DefineDistributionRule",
  };
  for (size_t i = 0; i < sizeof expected / sizeof *expected; i++)
    if (!ctxd__contracts_find(c, expected[i])) fail_msg("no contract %s", expected[i]);
  const ctxd__contract_t *mt = ctxd__contracts_find(c, MATERIAL_TYPE_V1);
  assert_int_equal(ctxd__contract_version(mt), 1);
  assert_string_equal(ctxd__contract_kind(mt), "event");
  assert_string_equal(ctxd__contract_status(mt), "released");
  assert_null(ctxd__contracts_find(c, "Dodo.DataCatalog.Contracts.Products.v9:MaterialType"));
  assert_null(ctxd__contracts_find(c, "dodo.datacatalog.contracts.products.v1:materialtype"));
  assert_null(ctxd__contracts_find(c, NULL));
  ctxd__contracts_free(c);
  ctxd__contracts_free(NULL);
}

static void test_material_type_camel_and_pascal_validate(void **state) {
  (void)state;
  ctxd__contracts_t *c = NULL;
  char err[512] = "";
  assert_int_equal(ctxd__contracts_new(&c, err, sizeof err), 0);
  const ctxd__contract_t *k = ctxd__contracts_find(c, MATERIAL_TYPE_V1);
  json_t *camel = parse(camel_material_type), *pascal = parse(pascal_material_type);
  assert_int_equal(ctxd__contract_validate(k, camel, err, sizeof err), 0);
  assert_int_equal(ctxd__contract_validate(k, pascal, err, sizeof err), 0);

  json_object_set_new(camel, "category", json_integer(9));
  assert_int_equal(ctxd__contract_validate(k, camel, err, sizeof err), CTXD_EVALIDATION);
  assert_string_equal(err, "message.Category: 9 is not one of 1,2,3,4,5,6");
  json_object_del(pascal, "Id");
  assert_int_equal(ctxd__contract_validate(k, pascal, err, sizeof err), CTXD_EVALIDATION);
  assert_string_equal(err, "message.Id: missing required field");
  json_object_set_new(pascal, "id", json_string("abc"));
  assert_int_equal(ctxd__contract_validate(k, pascal, err, sizeof err), CTXD_EVALIDATION);
  assert_string_equal(err, "message.Id: 'abc' is not a UUID");
  /* an exact match wins over another spelling */
  json_object_set_new(pascal, "Id", json_string("11eb7a3c0f7c4b7e9f1a2b3c4d5e6f70"));
  assert_int_equal(ctxd__contract_validate(k, pascal, err, sizeof err), 0);

  assert_int_equal(ctxd__contract_validate(NULL, pascal, err, sizeof err), CTXD_EINVAL);
  assert_int_equal(ctxd__contract_validate(k, NULL, err, sizeof err), CTXD_EINVAL);
  json_decref(camel);
  json_decref(pascal);
  ctxd__contracts_free(c);
}

/* ---------------------------------------------------------------------------------------
 * Validation rules, each with its exact error
 */

typedef struct {
  const char *patch;  /* top-level properties replacing the valid message's, or NULL */
  const char *remove; /* a top-level property to delete, or NULL */
  const char *error;  /* NULL: valid */
} rule_case_t;

static void test_every_rule_has_its_error(void **state) {
  (void)state;
  static const rule_case_t cases[] = {
      {NULL, NULL, NULL},
      {NULL, "Id", "message.Id: missing required field"},
      {"{\"Kind\":9}", NULL, "message.Kind: 9 is not one of 1,2,3"},
      {"{\"Kind\":\"Two\"}", NULL, "message.Kind: expected an integer, got a string"},
      {"{\"Items\":[{\"Quantity\":1},{\"Quantity\":2},{\"Quantity\":\"3\"}]}", NULL,
       "message.Items[2].Quantity: expected an integer, got a string"},
      {"{\"Id\":\"abc\"}", NULL, "message.Id: 'abc' is not a UUID"},
      {"{\"Id\":7}", NULL, "message.Id: expected a UUID string, got an integer"},
      {"{\"Id\":\"0b0000000000400080000000000000000\"}", NULL,
       "message.Id: '0b0000000000400080000000000000000' is not a UUID"},
      {"{\"Id\":\"0B000000000040008000000000000001\"}", NULL, NULL},
      {"{\"Id\":\"{0b000000-0000-4000-8000-000000000001}\"}", NULL, NULL},
      {"{\"Id\":\"0b000000-0000-4000-8000-00000000000g\"}", NULL,
       "message.Id: '0b000000-0000-4000-8000-00000000000g' is not a UUID"},
      {"{\"Id\":\"\\n\\u00e9\"}", NULL, "message.Id: '?\?\?' is not a UUID"},
      {"{\"Name\":null}", NULL, "message.Name: expected a string, got null"},
      {"{\"Name\":\"toolong\"}", NULL, "message.Name: 7 characters, more than the maximum 5"},
      {"{\"Name\":\"\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\"}", NULL, NULL},
      {"{\"Name\":\"\"}", NULL, NULL},
      {NULL, "Count", "message.Count: missing required field"},
      {"{\"Count\":0}", NULL, "message.Count: 0 is less than the minimum 1"},
      {"{\"Count\":11}", NULL, "message.Count: 11 is more than the maximum 10"},
      {"{\"Count\":1.5}", NULL, "message.Count: expected an integer, got a number"},
      {"{\"Count\":\"5\"}", NULL, "message.Count: expected an integer, got a string"},
      {"{\"Amount\":12.5}", NULL, NULL},
      {"{\"Amount\":12}", NULL, NULL},
      {"{\"Amount\":\"-0.001\"}", NULL, NULL},
      {"{\"Amount\":\"12,5\"}", NULL, "message.Amount: '12,5' is not a decimal number"},
      {"{\"Amount\":\"1e5\"}", NULL, "message.Amount: '1e5' is not a decimal number"},
      {"{\"Amount\":\".5\"}", NULL, "message.Amount: '.5' is not a decimal number"},
      {"{\"Amount\":\"5.\"}", NULL, "message.Amount: '5.' is not a decimal number"},
      {"{\"Amount\":\"123456789012345678901234567890\"}", NULL,
       "message.Amount: '123456789012345678901234567890' is not a decimal number"},
      {"{\"Amount\":1e300}", NULL, "message.Amount: 1.0000000000000001e+300 is out of range for a decimal"},
      {"{\"Amount\":true}", NULL,
       "message.Amount: expected a decimal (a number or a numeric string), got a boolean"},
      {"{\"Flag\":\"true\"}", NULL, "message.Flag: expected a boolean, got a string"},
      {"{\"Flag\":1}", NULL, "message.Flag: expected a boolean, got an integer"},
      {"{\"At\":\"2024-02-29T10:00:00.1234567+03:00\"}", NULL, NULL},
      {"{\"At\":\"2024-08-10T12:34:56\"}", NULL, NULL},
      {"{\"At\":\"2024-02-30T10:00:00Z\"}", NULL,
       "message.At: '2024-02-30T10:00:00Z' is not an ISO 8601 date-time"},
      {"{\"At\":\"2023-02-29T10:00:00Z\"}", NULL,
       "message.At: '2023-02-29T10:00:00Z' is not an ISO 8601 date-time"},
      {"{\"At\":\"2024-08-10 12:34:56Z\"}", NULL,
       "message.At: '2024-08-10 12:34:56Z' is not an ISO 8601 date-time"},
      {"{\"At\":\"2024-08-10T24:00:00Z\"}", NULL,
       "message.At: '2024-08-10T24:00:00Z' is not an ISO 8601 date-time"},
      {"{\"At\":\"2024-08-10T12:34:56.1234567890Z\"}", NULL,
       "message.At: '2024-08-10T12:34:56.1234567890Z' is not an ISO 8601 date-time"},
      {"{\"At\":\"2024-08-10T12:34:56+3:00\"}", NULL,
       "message.At: '2024-08-10T12:34:56+3:00' is not an ISO 8601 date-time"},
      {"{\"At\":1723293296}", NULL, "message.At: expected an ISO 8601 date-time string, got an integer"},
      {"{\"Note\":null}", NULL, NULL},
      {"{\"Note\":5}", NULL, "message.Note: expected a string, got an integer"},
      {NULL, "Maybe", "message.Maybe: missing required field"},
      {"{\"Maybe\":4}", NULL, NULL},
      {"{\"Inner\":\"x\"}", NULL, "message.Inner: expected an object, got a string"},
      {"{\"Inner\":{}}", NULL, "message.Inner.Code: missing required field"},
      {"{\"Inner\":{\"code\":\"x\",\"Extra\":[1,2]}}", NULL, NULL},
      {"{\"Items\":[]}", NULL, NULL},
      {"{\"Items\":{}}", NULL, "message.Items: expected an array, got an object"},
      {"{\"Items\":[{\"Quantity\":1},{\"Quantity\":1},{\"Quantity\":1},{\"Quantity\":1}]}", NULL,
       "message.Items: 4 items, more than the maximum 3"},
      {"{\"Items\":[null]}", NULL, "message.Items[0]: expected an object, got null"},
      {"{\"Tags\":[\"abcd\"]}", NULL, "message.Tags[0]: 4 characters, more than the maximum 3"},
      {"{\"Tags\":null}", NULL, NULL},
      {"{\"Unknown\":{\"deep\":[[[1]]]}}", NULL, NULL},
  };
  ctxd__contracts_t *c = load1(everything_def);
  const ctxd__contract_t *k = ctxd__contracts_find(c, "Ctxd.Test.Contracts.v1:Everything");
  assert_non_null(k);
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    json_t *m = parse(everything_msg);
    if (cases[i].patch) {
      json_t *patch = parse(cases[i].patch);
      json_object_update(m, patch);
      json_decref(patch);
    }
    if (cases[i].remove) json_object_del(m, cases[i].remove);
    char err[512] = "";
    int rc = ctxd__contract_validate(k, m, err, sizeof err);
    if (!cases[i].error && rc) fail_msg("case %zu should pass: %s", i, err);
    if (cases[i].error && (rc != CTXD_EVALIDATION || strcmp(err, cases[i].error)))
      fail_msg("case %zu: got %d '%s', want '%s'", i, rc, err, cases[i].error);
    json_decref(m);
  }
  ctxd__contracts_free(c);
}

static void test_odd_values_and_names(void **state) {
  (void)state;
  ctxd__contracts_t *c = load1(everything_def);
  const ctxd__contract_t *k = ctxd__contracts_find(c, "Ctxd.Test.Contracts.v1:Everything");
  char err[512] = "";

  /* Names match ignoring ASCII case. */
  json_t *m = parse("{\"ID\":\"0b000000-0000-4000-8000-000000000001\",\"name\":\"abc\","
                    "\"COUNT\":5,\"amount\":1,\"fLaG\":false,\"at\":\"2024-08-10T12:34:56Z\","
                    "\"kind\":1,\"maybe\":1,\"inner\":{\"CODE\":\"x\"},\"items\":[{\"quantity\":1}]}");
  assert_int_equal(ctxd__contract_validate(k, m, err, sizeof err), 0);
  json_decref(m);

  /* A NUL inside a string would silently cut a C string. */
  m = parse(everything_msg);
  json_object_set_new(m, "Name", json_stringn("a\0b", 3));
  assert_int_equal(ctxd__contract_validate(k, m, err, sizeof err), CTXD_EVALIDATION);
  assert_string_equal(err, "message.Name: contains a NUL character");

  /* Long values are cut in the reason. */
  char longid[101];
  memset(longid, 'x', 100);
  longid[100] = '\0';
  json_object_set_new(m, "Name", json_string("abc"));
  json_object_set_new(m, "Id", json_string(longid));
  assert_int_equal(ctxd__contract_validate(k, m, err, sizeof err), CTXD_EVALIDATION);
  assert_string_equal(err, "message.Id: 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                           "xxxxxxxx...' is not a UUID");
  /* A tiny error buffer is cut, never overrun. */
  char tiny[8];
  assert_int_equal(ctxd__contract_validate(k, m, tiny, sizeof tiny), CTXD_EVALIDATION);
  assert_string_equal(tiny, "message");
  assert_int_equal(ctxd__contract_validate(k, m, NULL, 0), CTXD_EVALIDATION);
  json_decref(m);

  /* Not an object at all. */
  json_t *values[] = {json_array(), json_string("x"), json_integer(1),
                      json_null(),  json_true(),      json_real(1.5)};
  const char *got[] = {"an array", "a string", "an integer", "null", "a boolean", "a number"};
  for (size_t i = 0; i < sizeof values / sizeof *values; i++) {
    char want[128];
    snprintf(want, sizeof want, "message: expected an object, got %s", got[i]);
    assert_int_equal(ctxd__contract_validate(k, values[i], err, sizeof err), CTXD_EVALIDATION);
    assert_string_equal(err, want);
    json_decref(values[i]);
  }

  /* Unknown properties nested far deeper than any definition are never walked. */
  m = parse(everything_msg);
  json_t *deep = json_array();
  for (int i = 0; i < 1000; i++) {
    json_t *outer = json_array();
    json_array_append_new(outer, deep);
    deep = outer;
  }
  json_object_set_new(m, "Deep", deep);
  assert_int_equal(ctxd__contract_validate(k, m, err, sizeof err), 0);
  json_decref(m);
  ctxd__contracts_free(c);
}

/* ---------------------------------------------------------------------------------------
 * Upcasting
 */

static void test_upcast_material_type_v1_to_v2(void **state) {
  (void)state;
  ctxd__contracts_t *c = NULL;
  char err[512] = "";
  assert_int_equal(ctxd__contracts_new(&c, err, sizeof err), 0);
  const ctxd__contract_t *v2 = ctxd__contracts_find(c, MATERIAL_TYPE_V2);

  json_t *v1 = parse(camel_material_type), *out = NULL;
  /* v2 requires ExternalCode, so a v1 message is not a v2 message as it is... */
  assert_int_equal(ctxd__contract_validate(v2, v1, err, sizeof err), CTXD_EVALIDATION);
  assert_string_equal(err, "message.ExternalCode: missing required field");
  /* ...until upcast, as the v2 definition describes (ExternalCode defaults to null). */
  assert_int_equal(ctxd__contracts_upcast(c, MATERIAL_TYPE_V1, MATERIAL_TYPE_V2, v1, &out, err, sizeof err),
                   0);
  assert_int_equal(ctxd__contract_validate(v2, out, err, sizeof err), 0);
  assert_true(json_is_null(json_object_get(out, "ExternalCode")));
  assert_int_equal(json_integer_value(json_object_get(out, "countryId")), 643);
  assert_null(json_object_get(v1, "ExternalCode")); /* the input is untouched */
  assert_int_equal(json_object_size(out), json_object_size(v1) + 1);
  json_decref(out);

  /* A value already there (in any case) is kept; a null one gets the default. */
  json_object_set_new(v1, "externalCode", json_string("MOZ-1"));
  assert_int_equal(ctxd__contracts_upcast(c, MATERIAL_TYPE_V1, MATERIAL_TYPE_V2, v1, &out, err, sizeof err),
                   0);
  assert_string_equal(json_string_value(json_object_get(out, "externalCode")), "MOZ-1");
  assert_null(json_object_get(out, "ExternalCode"));
  json_decref(out);

  /* The same version: the message itself, one more reference. */
  assert_int_equal(ctxd__contracts_upcast(c, MATERIAL_TYPE_V1, MATERIAL_TYPE_V1, v1, &out, err, sizeof err),
                   0);
  assert_ptr_equal(out, v1);
  json_decref(out);

  /* No path: unknown types, other types, downcasts. */
  assert_int_equal(ctxd__contracts_upcast(c, "Nope.v1:X", MATERIAL_TYPE_V2, v1, &out, err, sizeof err),
                   CTXD_ENOENT);
  assert_string_equal(err, "no contract Nope.v1:X");
  assert_null(out);
  assert_int_equal(ctxd__contracts_upcast(c, MATERIAL_TYPE_V2, MATERIAL_TYPE_V1, v1, &out, err, sizeof err),
                   CTXD_ENOENT);
  assert_string_equal(err, "no upcast from " MATERIAL_TYPE_V2 " to " MATERIAL_TYPE_V1);
  assert_int_equal(ctxd__contracts_upcast(c, "Ctxd.Inventory.Contracts.v1:AddMeasurement", MATERIAL_TYPE_V2,
                                          v1, &out, err, sizeof err),
                   CTXD_ENOENT);
  json_t *array = json_array();
  assert_int_equal(
      ctxd__contracts_upcast(c, MATERIAL_TYPE_V1, MATERIAL_TYPE_V2, array, &out, err, sizeof err),
      CTXD_EINVAL);
  assert_int_equal(ctxd__contracts_upcast(c, MATERIAL_TYPE_V1, MATERIAL_TYPE_V2, v1, NULL, err, sizeof err),
                   CTXD_EINVAL);
  json_decref(array);

  /* The host binds the older exchanges of what a handler consumes. */
  const char *older[4] = {NULL};
  assert_int_equal(ctxd__contracts_older(c, MATERIAL_TYPE_V2, older, 4), 1);
  assert_string_equal(older[0], MATERIAL_TYPE_V1);
  assert_int_equal(ctxd__contracts_older(c, MATERIAL_TYPE_V2, NULL, 0), 1);
  assert_int_equal(ctxd__contracts_older(c, MATERIAL_TYPE_V1, older, 4), 0);
  assert_int_equal(ctxd__contracts_older(c, "Nope.v2:X", older, 4), 0);
  json_decref(v1);
  ctxd__contracts_free(c);
}

#define THING_HEAD(v, extra)                                                                                 \
  "{\"namespace\":\"Ctxd.Test.Contracts\",\"type\":\"Thing\",\"version\":" #v ","                            \
  "\"kind\":\"event\",\"status\":\"draft\",\"description\":\"A thing.\","                                    \
  "\"producers\":[\"test\"],\"consumers\":[\"test\"]," extra "\"fields\":["

static const char thing_v1[] =
    THING_HEAD(1, "") "{\"name\":\"Id\",\"type\":\"uuid\",\"description\":\"d\"},"
                      "{\"name\":\"Qty\",\"type\":\"int\",\"min\":1,\"description\":\"d\"},"
                      "{\"name\":\"Color\",\"type\":\"string\",\"required\":false,\"description\":\"d\"}]}";
/* v2 renames Qty, adds a required Unit with a default, keeps Color optional. */
static const char thing_v2[] =
    THING_HEAD(2, "\"upcast_from_previous\":{\"renames\":{\"Qty\":\"Quantity\"},\"defaults\":{\"Unit\":1}"
                  "},") "{\"name\":\"Id\",\"type\":\"uuid\",\"description\":\"d\"},"
                        "{\"name\":\"Quantity\",\"type\":\"int\",\"min\":1,\"description\":\"d\"},"
                        "{\"name\":\"Unit\",\"type\":\"enum\",\"description\":\"d\",\"values\":["
                        "{\"name\":\"Piece\",\"value\":1},{\"name\":\"Gram\",\"value\":5}]},"
                        "{\"name\":\"Color\",\"type\":\"string\",\"required\":false,\"description\":"
                        "\"d\"}]}";
/* v3 widens Quantity to decimal and makes Color required with a default. */
static const char thing_v3[] = THING_HEAD(
    3,
    "\"upcast_from_previous\":{\"defaults\":{\"Color\":\"none\"}},") "{\"name\":\"Id\",\"type\":\"uuid\","
                                                                     "\"description\":\"d\"},"
                                                                     "{\"name\":\"Quantity\",\"type\":"
                                                                     "\"decimal\",\"description\":\"d\"},"
                                                                     "{\"name\":\"Unit\",\"type\":\"enum\","
                                                                     "\"description\":\"d\",\"values\":["
                                                                     "{\"name\":\"Piece\",\"value\":1},{"
                                                                     "\"name\":\"Gram\",\"value\":5},"
                                                                     "{\"name\":\"Liter\",\"value\":7}]},"
                                                                     "{\"name\":\"Color\",\"type\":"
                                                                     "\"string\",\"description\":\"d\"}]}";

static void test_upcast_chain_with_renames(void **state) {
  (void)state;
  const char *defs[] = {thing_v3, thing_v1, thing_v2};
  ctxd__contracts_t *c = NULL;
  char err[512] = "";
  assert_int_equal(ctxd__contracts_load(defs, 3, &c, err, sizeof err), 0);
  json_t *v1 = parse("{\"id\":\"0b000000-0000-4000-8000-000000000001\",\"qty\":5,"
                     "\"color\":null,\"Extra\":true}");
  json_t *out = NULL;
  assert_int_equal(ctxd__contracts_upcast(c, "Ctxd.Test.Contracts.v1:Thing", "Ctxd.Test.Contracts.v3:Thing",
                                          v1, &out, err, sizeof err),
                   0);
  json_t *want = parse("{\"id\":\"0b000000-0000-4000-8000-000000000001\",\"Extra\":true,"
                       "\"Quantity\":5,\"Unit\":1,\"Color\":\"none\"}");
  if (!json_equal(out, want)) {
    char *text = json_dumps(out, JSON_COMPACT);
    fail_msg("upcast gave %s", text);
  }
  assert_int_equal(
      ctxd__contract_validate(ctxd__contracts_find(c, "Ctxd.Test.Contracts.v3:Thing"), out, err, sizeof err),
      0);
  json_decref(want);
  json_decref(out);

  /* A rename target already present wins; the old name goes. */
  json_t *both = parse("{\"Id\":\"0b000000-0000-4000-8000-000000000001\",\"Qty\":5,"
                       "\"quantity\":6}");
  assert_int_equal(ctxd__contracts_upcast(c, "Ctxd.Test.Contracts.v1:Thing", "Ctxd.Test.Contracts.v2:Thing",
                                          both, &out, err, sizeof err),
                   0);
  assert_int_equal(json_integer_value(json_object_get(out, "quantity")), 6);
  assert_null(json_object_get(out, "Qty"));
  assert_null(json_object_get(out, "Quantity"));
  json_decref(out);
  json_decref(both);

  const char *older[4];
  assert_int_equal(ctxd__contracts_older(c, "Ctxd.Test.Contracts.v3:Thing", older, 1), 2);
  assert_string_equal(older[0], "Ctxd.Test.Contracts.v2:Thing");
  assert_int_equal(ctxd__contracts_older(c, "Ctxd.Test.Contracts.v3:Thing", older, 4), 2);
  assert_string_equal(older[1], "Ctxd.Test.Contracts.v1:Thing");
  json_decref(v1);
  ctxd__contracts_free(c);

  /* Without v2's upcaster, v1 no longer reaches v3. */
  const char *gap[] = {thing_v1, thing_v3};
  assert_int_equal(ctxd__contracts_load(gap, 2, &c, err, sizeof err), CTXD_EINVAL);
  assert_string_equal(err, "Ctxd.Test.Contracts.v3:Thing: upcast_from_previous: no version 2");
  assert_null(c);
}

/* Workers share one set: validation and upcasting only read it. */
static void *share_worker(void *arg) {
  const ctxd__contracts_t *c = arg;
  const ctxd__contract_t *v2 = ctxd__contracts_find(c, MATERIAL_TYPE_V2);
  json_t *v1 = parse(camel_material_type);
  char err[256];
  intptr_t bad = 0;
  for (int i = 0; i < 2000; i++) {
    json_t *out = NULL;
    bad += ctxd__contracts_upcast(c, MATERIAL_TYPE_V1, MATERIAL_TYPE_V2, v1, &out, err, sizeof err) != 0;
    bad += ctxd__contract_validate(v2, out, err, sizeof err) != 0;
    json_decref(out);
  }
  json_decref(v1);
  return (void *)bad;
}

static void test_set_is_shared_by_threads(void **state) {
  (void)state;
  ctxd__contracts_t *c = NULL;
  char err[512] = "";
  assert_int_equal(ctxd__contracts_new(&c, err, sizeof err), 0);
  pthread_t t[4];
  for (size_t i = 0; i < 4; i++) assert_int_equal(pthread_create(&t[i], NULL, share_worker, c), 0);
  for (size_t i = 0; i < 4; i++) {
    void *bad;
    pthread_join(t[i], &bad);
    assert_null(bad);
  }
  ctxd__contracts_free(c);
}

/* ---------------------------------------------------------------------------------------
 * Broken definitions and unsound upcasters fail with their reason
 */

typedef struct {
  const char *from, *to; /* a replacement in everything_def (or thing_v2) */
  const char *error;
} def_case_t;

static char *replace(const char *text, const char *from, const char *to) {
  const char *at = strstr(text, from);
  if (!at) fail_msg("fixture lacks '%s'", from);
  size_t n = strlen(text) - strlen(from) + strlen(to) + 1;
  char *out = malloc(n);
  snprintf(out, n, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
  return out;
}

static void check_def_cases(const char *base, const def_case_t *cases, size_t n, const char *also) {
  for (size_t i = 0; i < n; i++) {
    char *def = replace(base, cases[i].from, cases[i].to);
    const char *defs[] = {def, also};
    ctxd__contracts_t *c = NULL;
    char err[512] = "";
    int rc = ctxd__contracts_load(defs, also ? 2 : 1, &c, err, sizeof err);
    if (rc != CTXD_EINVAL || strcmp(err, cases[i].error))
      fail_msg("case %zu: got %d '%s', want '%s'", i, rc, err, cases[i].error);
    assert_null(c);
    free(def);
  }
}

static void test_broken_definitions_are_refused(void **state) {
  (void)state;
#define P "contract definition 0 (Everything): "
  static const def_case_t cases[] = {
      {"\"max_length\":5,", "\"max_length\":5,\"requried\":false,", P "fields.Name: unknown key 'requried'"},
      {"\"type\":\"decimal\"", "\"type\":\"float\"",
       P "fields.Amount.type: unknown type 'float' (one of string, int, decimal, bool, uuid, "
         "datetime, enum, object, array)"},
      {"\"min\":1,\"max\":10", "\"max_length\":1", P "fields.Count: unknown key 'max_length'"},
      {"\"min\":1,\"max\":10", "\"min\":10,\"max\":1", P "fields.Count: min is greater than max"},
      {"{\"name\":\"Two\",\"value\":2}", "{\"name\":\"Two\",\"value\":1}",
       P "fields.Kind.values[1]: value 1 is used twice"},
      {"{\"name\":\"Two\",\"value\":2}", "{\"name\":\"two\",\"value\":2}",
       P "fields.Kind.values[1]: name 'two' is not a PascalCase identifier"},
      {"{\"name\":\"Count\"", "{\"name\":\"NAME\"",
       P "fields.NAME: the name is used twice (names are matched ignoring case)"},
      {"{\"name\":\"Count\"", "{\"name\":\"count\"",
       P "fields[2]: name 'count' is not a PascalCase identifier"},
      {"\"namespace\":\"Ctxd.Test.Contracts\"", "\"namespace\":\"Ctxd.Test.Contracts.v1\"",
       P "namespace: leave the version segment out (it comes from \"version\")"},
      {"\"namespace\":\"Ctxd.Test.Contracts\"", "\"namespace\":\"Ctxd\"",
       P "namespace: expected at least two segments"},
      {"\"kind\":\"event\"", "\"kind\":\"query\"", P "kind: expected event, command or reply"},
      {"\"status\":\"released\"", "\"status\":\"final\"", P "status: expected released or draft"},
      {"\"version\":1", "\"version\":0", P "version: 0 is not in 1..9999"},
      {"\"producers\":[\"test\"]", "\"producers\":[\"Test\"]",
       P "producers[0]: expected a context name like \"inventory\" or \"payment\""},
      {"\"consumers\":[\"test\"]", "\"consumers\":[]",
       P "consumers: expected a non-empty array of context names, got an array"},
      {"\"max_length\":5,", "\"max_length\":5,\"example\":\"toolong\",",
       P "fields.Name.example: 7 characters, more than the maximum 5"},
      {"{\"type\":\"string\",\"max_length\":3}", "{\"type\":\"array\",\"items\":{\"type\":\"int\"}}",
       P "fields.Tags.items: arrays of arrays are not supported: make the items objects"},
      {"{\"type\":\"string\",\"max_length\":3}", "{\"type\":\"string\",\"description\":\"x\"}",
       P "fields.Tags.items: unknown key 'description'"},
      {"{\"name\":\"Id\",\"type\":\"uuid\",\"description\":\"d\"}", "{\"name\":\"Id\",\"type\":\"uuid\"}",
       P "fields.Id.description: expected a non-empty string, got nothing"},
      {"\"description\":\"Every rule.\",", "\"description\":\"Every rule.\",\"owner\":\"x\",",
       P "unknown key 'owner'"},
      {"\"description\":\"Every rule.\",", "\"description\":\"Every rule.\",\"upcast_from_previous\":{},",
       P "upcast_from_previous: version 1 has no previous version"},
  };
#undef P
  check_def_cases(everything_def, cases, sizeof cases / sizeof *cases, NULL);

  const char *dup[] = {everything_def, everything_def};
  ctxd__contracts_t *c = NULL;
  char err[512] = "";
  assert_int_equal(ctxd__contracts_load(dup, 2, &c, err, sizeof err), CTXD_EINVAL);
  assert_string_equal(err, "Ctxd.Test.Contracts.v1:Everything is defined twice");
  const char *notjson[] = {"{\"namespace\":"};
  assert_int_equal(ctxd__contracts_load(notjson, 1, &c, err, sizeof err), CTXD_EINVAL);
  assert_string_equal(err, "contract definition 0: not JSON: unexpected token near end of file");
}

static void test_unsound_upcasters_are_refused(void **state) {
  (void)state;
#define P "Ctxd.Test.Contracts.v2:Thing: upcast_from_previous: "
  static const def_case_t cases[] = {
      /* Unit is required and v1 has nothing to carry over */
      {"\"defaults\":{\"Unit\":1}", "\"defaults\":{}",
       P "from v1: Unit: required field added without a default"},
      {"\"defaults\":{\"Unit\":1}", "\"defaults\":{\"Unit\":9}",
       "contract definition 0 (Thing): upcast_from_previous.defaults.Unit: 9 is not one of 1,5"},
      {"\"defaults\":{\"Unit\":1}", "\"defaults\":{\"Unit\":1,\"Size\":2}",
       "contract definition 0 (Thing): upcast_from_previous.defaults.Size: no such field in this "
       "version"},
      {"\"renames\":{\"Qty\":\"Quantity\"}", "\"renames\":{\"Qtty\":\"Quantity\"}",
       P "renames.Qtty: no such field in v1"},
      {"\"renames\":{\"Qty\":\"Quantity\"}", "\"renames\":{\"Qty\":\"Amount\"}",
       "contract definition 0 (Thing): upcast_from_previous.renames.Qty: expected the name of a "
       "field of this version"},
      /* without the rename, Quantity is a new required field */
      {"\"renames\":{\"Qty\":\"Quantity\"},", "",
       P "from v1: Quantity: required field added without a default"},
      {"{\"name\":\"Quantity\",\"type\":\"int\",\"min\":1",
       "{\"name\":\"Quantity\",\"type\":\"string\",\"max_length\":1",
       P "from v1: Quantity: type changed from int to string"},
      {"{\"name\":\"Quantity\",\"type\":\"int\",\"min\":1",
       "{\"name\":\"Quantity\",\"type\":\"int\",\"min\":2", P "from v1: Quantity: min changed from 1 to 2"},
      {"{\"name\":\"Color\",\"type\":\"string\",\"required\":false",
       "{\"name\":\"Color\",\"type\":\"string\"",
       P "from v1: Color: required, but optional before, and without a default"},
      {"{\"name\":\"Color\",\"type\":\"string\",\"required\":false",
       "{\"name\":\"Color\",\"type\":\"string\",\"required\":false,\"max_length\":3",
       P "from v1: Color: max_length changed from none to 3"},
  };
#undef P
  check_def_cases(thing_v2, cases, sizeof cases / sizeof *cases, thing_v1);
}

/* ---------------------------------------------------------------------------------------
 * The compatibility checker, against deliberate breaking edits of a fixture
 */

/* A released fixture, and a deliberately broken "current" version of it: an enum value
 * dropped in place, instead of a new version. */
static const char released_fixture[] =
    "{\"namespace\":\"Ctxd.Test.Contracts\",\"type\":\"Widget\",\"version\":1,"
    "\"kind\":\"event\",\"status\":\"released\",\"description\":\"A widget.\","
    "\"producers\":[\"test\"],\"consumers\":[\"test\"],\"fields\":["
    "{\"name\":\"Id\",\"type\":\"uuid\",\"description\":\"d\"},"
    "{\"name\":\"Name\",\"type\":\"string\",\"max_length\":50,\"description\":\"d\"},"
    "{\"name\":\"Count\",\"type\":\"int\",\"min\":0,\"description\":\"d\"},"
    "{\"name\":\"Size\",\"type\":\"enum\",\"description\":\"d\",\"values\":["
    "{\"name\":\"Small\",\"value\":1},{\"name\":\"Large\",\"value\":2}]},"
    "{\"name\":\"Note\",\"type\":\"string\",\"required\":false,\"description\":\"d\"},"
    "{\"name\":\"Parts\",\"type\":\"array\",\"max_items\":10,\"description\":\"d\",\"items\":"
    "{\"type\":\"object\",\"fields\":[{\"name\":\"Quantity\",\"type\":\"int\","
    "\"description\":\"d\"}]}}]}";

static const char broken_fixture[] =
    "{\"namespace\":\"Ctxd.Test.Contracts\",\"type\":\"Widget\",\"version\":1,"
    "\"kind\":\"event\",\"status\":\"released\",\"description\":\"A widget.\","
    "\"producers\":[\"test\"],\"consumers\":[\"test\"],\"fields\":["
    "{\"name\":\"Id\",\"type\":\"uuid\",\"description\":\"d\"},"
    "{\"name\":\"Name\",\"type\":\"string\",\"max_length\":50,\"description\":\"d\"},"
    "{\"name\":\"Count\",\"type\":\"int\",\"min\":0,\"description\":\"d\"},"
    "{\"name\":\"Size\",\"type\":\"enum\",\"description\":\"d\",\"values\":["
    "{\"name\":\"Small\",\"value\":1}]},"
    "{\"name\":\"Note\",\"type\":\"string\",\"required\":false,\"description\":\"d\"},"
    "{\"name\":\"Parts\",\"type\":\"array\",\"max_items\":10,\"description\":\"d\",\"items\":"
    "{\"type\":\"object\",\"fields\":[{\"name\":\"Quantity\",\"type\":\"int\","
    "\"description\":\"d\"}]}}]}";

static int compat(const char *released, const char *current, char *err, size_t errlen) {
  json_t *r = parse(released), *c = parse(current);
  int rc = ctxd__contract_compat(r, c, err, errlen);
  json_decref(r);
  json_decref(c);
  return rc;
}

static void test_compat_catches_breaking_edits(void **state) {
  (void)state;
  char err[512] = "";
  assert_int_equal(compat(released_fixture, broken_fixture, err, sizeof err), CTXD_EVALIDATION);
  assert_string_equal(err, "Ctxd.Test.Contracts.v1:Widget: Size: enum value 2 (Large) removed");
  assert_int_equal(compat(released_fixture, released_fixture, err, sizeof err), 0);

#define W "Ctxd.Test.Contracts.v1:Widget: "
  static const def_case_t breaking[] = {
      {"{\"name\":\"Name\",\"type\":\"string\",\"max_length\":50,\"description\":\"d\"},", "",
       W "Name: field removed"},
      {"{\"name\":\"Count\",\"type\":\"int\",\"min\":0,", "{\"name\":\"Count\",\"type\":\"string\",",
       W "Count: type changed from int to string"},
      {"{\"name\":\"Note\",\"type\":\"string\",\"required\":false,",
       "{\"name\":\"Extra\",\"type\":\"bool\",\"description\":\"d\"},"
       "{\"name\":\"Note\",\"type\":\"string\",\"required\":false,",
       W "Extra: required field added"},
      {"{\"name\":\"Large\",\"value\":2}",
       "{\"name\":\"Large\",\"value\":2},"
       "{\"name\":\"Huge\",\"value\":3}",
       W "Size: enum value 3 (Huge) added"},
      {"{\"name\":\"Large\",\"value\":2}", "{\"name\":\"Big\",\"value\":2}",
       W "Size: enum value 2 renamed from Large to Big"},
      {"\"required\":false,", "", W "Note: became required"},
      {"{\"name\":\"Id\",\"type\":\"uuid\",", "{\"name\":\"Id\",\"type\":\"uuid\",\"required\":false,",
       W "Id: became optional"},
      {"{\"name\":\"Id\",\"type\":\"uuid\",", "{\"name\":\"Id\",\"type\":\"uuid\",\"nullable\":true,",
       W "Id: became nullable"},
      {"\"max_length\":50", "\"max_length\":60", W "Name: max_length changed from 50 to 60"},
      {"\"max_length\":50", "\"max_length\":40", W "Name: max_length changed from 50 to 40"},
      {"\"min\":0,", "", W "Count: min changed from 0 to none"},
      {"\"min\":0,", "\"min\":0,\"max\":9,", W "Count: max changed from none to 9"},
      {"\"max_items\":10,", "", W "Parts: max_items changed from 10 to none"},
      {"{\"name\":\"Quantity\",\"type\":\"int\",", "{\"name\":\"Qty\",\"type\":\"int\",",
       W "Parts[].Quantity: field removed"},
      {"\"kind\":\"event\"", "\"kind\":\"command\"", W "kind changed from event to command"},
      {"\"status\":\"released\"", "\"status\":\"draft\"", W "status changed from released to draft"},
  };
  for (size_t i = 0; i < sizeof breaking / sizeof *breaking; i++) {
    char *current = replace(released_fixture, breaking[i].from, breaking[i].to);
    int rc = compat(released_fixture, current, err, sizeof err);
    if (rc != CTXD_EVALIDATION || strcmp(err, breaking[i].error))
      fail_msg("case %zu: got %d '%s', want '%s'", i, rc, err, breaking[i].error);
    free(current);
  }

  /* What stays compatible: descriptions, examples, contexts, new optional fields. */
  static const def_case_t fine[] = {
      {"\"description\":\"A widget.\"", "\"description\":\"A widget, better described.\"", ""},
      {"\"producers\":[\"test\"]", "\"producers\":[\"test\",\"other\"]", ""},
      {"{\"name\":\"Id\",\"type\":\"uuid\",\"description\":\"d\"}",
       "{\"name\":\"Id\",\"type\":\"uuid\",\"description\":\"The id.\","
       "\"example\":\"0b000000-0000-4000-8000-000000000001\"}",
       ""},
      {"{\"name\":\"Note\",",
       "{\"name\":\"Color\",\"type\":\"string\",\"required\":false,"
       "\"description\":\"d\"},{\"name\":\"Note\",",
       ""},
  };
  for (size_t i = 0; i < sizeof fine / sizeof *fine; i++) {
    char *current = replace(released_fixture, fine[i].from, fine[i].to);
    if (compat(released_fixture, current, err, sizeof err))
      fail_msg("compatible case %zu refused: %s", i, err);
    free(current);
  }
#undef W

  /* Not comparable at all. */
  char *other = replace(released_fixture, "\"version\":1", "\"version\":2");
  assert_int_equal(compat(released_fixture, other, err, sizeof err), CTXD_EINVAL);
  assert_string_equal(err, "Ctxd.Test.Contracts.v1:Widget and Ctxd.Test.Contracts.v2:Widget "
                           "are different contracts");
  free(other);
  char *draft = replace(released_fixture, "\"status\":\"released\"", "\"status\":\"draft\"");
  assert_int_equal(compat(draft, released_fixture, err, sizeof err), CTXD_EINVAL);
  assert_string_equal(err, "Ctxd.Test.Contracts.v1:Widget: the snapshot is not a released definition");
  free(draft);
  char *broken = replace(released_fixture, "\"type\":\"uuid\"", "\"type\":\"guid\"");
  assert_int_equal(compat(released_fixture, broken, err, sizeof err), CTXD_EINVAL);
  assert_string_equal(err, "current definition: fields.Id.type: unknown type 'guid' (one of "
                           "string, int, decimal, bool, uuid, datetime, enum, object, array)");
  free(broken);
  json_t *n = json_null();
  assert_int_equal(ctxd__contract_compat(n, n, err, sizeof err), CTXD_EINVAL);
  assert_string_equal(err, "released definition: expected an object, got null");
  json_decref(n);
}

/* A contract states its exchange ([EntityName]) and the types it implements; without a
 * stated one the exchange is MassTransit's formatting of the type; bases are checked. */
static void test_exchange_and_implements(void **state) {
  (void)state;
  const char *defs[] = {
      "{\"namespace\": \"Ctxd.Tests.Contracts\", \"type\": \"Derived\", \"version\": 1, \"kind\": "
      "\"event\", \"status\": \"draft\", \"description\": \"d\", \"producers\": [\"a\"], \"consumers\": "
      "[\"b\"], \"exchange\": \"derived-x\", \"implements\": [\"Ctxd.Tests.Contracts:IBase\", "
      "\"Ctxd.Tests.Contracts.v1:Base\"], \"fields\": [{\"name\": \"Id\", \"type\": \"uuid\", "
      "\"description\": \"i\"}]}",
      "{\"namespace\": \"Ctxd.Tests.Contracts\", \"type\": \"Base\", \"version\": 1, \"kind\": "
      "\"event\", \"status\": \"draft\", \"description\": \"d\", \"producers\": [\"a\"], \"consumers\": "
      "[\"b\"], \"exchange\": \"base-x\", \"fields\": [{\"name\": \"Id\", \"type\": \"uuid\", "
      "\"description\": \"i\"}]}"};
  char err[512], x[64];
  ctxd__contracts_t *c;
  if (ctxd__contracts_load(defs, 2, &c, err, sizeof err) != 0) fail_msg("%s", err);
  const ctxd__contract_t *k = ctxd__contracts_find(c, "Ctxd.Tests.Contracts.v1:Derived");
  assert_string_equal(ctxd__contract_exchange(k), "derived-x");
  assert_int_equal(ctxd__contract_nbases(k), 2);
  assert_string_equal(ctxd__contract_base_exchange(k, 0), "Ctxd.Tests.Contracts:IBase");
  assert_string_equal(ctxd__contract_base_exchange(k, 1), "base-x"); /* the base's own */
  assert_ptr_equal(ctxd__contracts_of_exchange(c, "derived-x"), k);
  assert_int_equal(ctxd__contracts_exchange(c, "Ctxd.Tests.Contracts.v1:Derived", x, sizeof x), 0);
  assert_string_equal(x, "derived-x");
  assert_int_equal(ctxd__contracts_exchange(c, "Other:Outer+Inner", x, sizeof x), 0);
  assert_string_equal(x, "Other:Outer-Inner");
  ctxd__contracts_free(c);
  const char *twice =
      "{\"namespace\": \"Ctxd.Tests.Contracts\", \"type\": \"T\", \"version\": 1, \"kind\": \"event\", "
      "\"status\": \"draft\", \"description\": \"d\", \"producers\": [\"a\"], \"consumers\": [\"b\"], "
      "\"implements\": [\"Ns:IBase\", \"ns:ibase\"], \"fields\": [{\"name\": \"Id\", \"type\": \"uuid\", "
      "\"description\": \"i\"}]}";
  assert_int_equal(ctxd__contracts_load(&twice, 1, &c, err, sizeof err), CTXD_EINVAL);
  assert_non_null(strstr(err, "implements[1]: listed twice"));
}

/* A message that says it is a contract it implements must pass that contract's validator:
 * a consumer of the base receives it and would send it to _error. */
static void test_implements_must_validate_as_the_base(void **state) {
  (void)state;
#define DEF(type, extra, fields)                                                                             \
  "{\"namespace\": \"Ctxd.Tests.Contracts\", \"type\": \"" type "\", \"version\": 1, \"kind\": \"reply\", "  \
  "\"status\": \"draft\", \"description\": \"d\", \"producers\": [\"a\"], \"consumers\": [\"b\"], " extra    \
  "\"fields\": [" fields "]}"
#define IMPL "\"implements\": [\"Ctxd.Tests.Contracts.v1:Base\"], "
#define REASON(values)                                                                                       \
  "{\"name\": \"Reason\", \"type\": \"enum\", \"description\": \"r\", \"values\": [" values "]}"
#define V1 "{\"name\": \"A\", \"value\": 1}"
#define V2 "{\"name\": \"B\", \"value\": 2}"
#define TEXT(max)                                                                                            \
  "{\"name\": \"Text\", \"type\": \"string\", \"max_length\": " max ", \"description\": \"t\"}"
  const char *base = DEF("Base", "", REASON(V1 "," V2) "," TEXT("10"));
  static const struct {
    const char *derived;
    const char *error; /* NULL: loads */
  } cases[] = {
      {DEF("Derived", IMPL, REASON(V1) "," TEXT("5")), NULL},
      {DEF("Derived", IMPL, REASON(V1 "," V2 ",{\"name\": \"C\", \"value\": 3}") "," TEXT("10")),
       "Ctxd.Tests.Contracts.v1:Derived: implements: Ctxd.Tests.Contracts.v1:Base does not accept every "
       "message of this type: Reason: enum value 3 (C) is not in it"},
      {DEF("Derived", IMPL, REASON(V1) "," TEXT("20")),
       "Ctxd.Tests.Contracts.v1:Derived: implements: Ctxd.Tests.Contracts.v1:Base does not accept every "
       "message of this type: Text: max_length changed from 20 to 10"},
      {DEF("Derived", IMPL, REASON(V1)),
       "Ctxd.Tests.Contracts.v1:Derived: implements: Ctxd.Tests.Contracts.v1:Base does not accept every "
       "message of this type: Text: required there, missing here"},
  };
#undef DEF
#undef IMPL
#undef REASON
#undef V1
#undef V2
#undef TEXT
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    const char *defs[] = {cases[i].derived, base};
    ctxd__contracts_t *c = NULL;
    char err[512] = "";
    int rc = ctxd__contracts_load(defs, 2, &c, err, sizeof err);
    if (cases[i].error == NULL) {
      if (rc != 0) fail_msg("case %zu: %s", i, err);
      ctxd__contracts_free(c);
    } else {
      assert_int_equal(rc, CTXD_EINVAL);
      assert_string_equal(err, cases[i].error);
    }
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_registry_loads_every_definition),
      cmocka_unit_test(test_exchange_and_implements),
      cmocka_unit_test(test_implements_must_validate_as_the_base),
      cmocka_unit_test(test_material_type_camel_and_pascal_validate),
      cmocka_unit_test(test_every_rule_has_its_error),
      cmocka_unit_test(test_odd_values_and_names),
      cmocka_unit_test(test_upcast_material_type_v1_to_v2),
      cmocka_unit_test(test_upcast_chain_with_renames),
      cmocka_unit_test(test_set_is_shared_by_threads),
      cmocka_unit_test(test_broken_definitions_are_refused),
      cmocka_unit_test(test_unsound_upcasters_are_refused),
      cmocka_unit_test(test_compat_catches_breaking_edits),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
