/* Unit tests for the Inventory context's pure domain (plugins/inventory/domain.h): values,
 * templates, every command in every state, the measurement versioning rules, material and
 * zone checks, event and snapshot JSON, and snapshot + later events == full replay. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ctxd/errno.h>

#include "domain.h"

#define INV "inv-1"
#define UNIT "unit-1"
#define TMPL "tmpl-1"
#define USER "user-1"
#define USER2 "user-2"
#define T0 1700000000000LL

/* ---- Fixtures ---------------------------------------------------------------------- */

typedef struct {
  const char *id;
  inventory_material_t info;
} material_row_t;

static const material_row_t materials[] = {
    {"cheese", {true, false, INVENTORY_UOM_GRAM}},
    {"sauce", {true, false, INVENTORY_UOM_MILLILITER}},
    {"box", {true, false, INVENTORY_UOM_QUANTITY}},
    {"old-flour", {true, true, INVENTORY_UOM_GRAM}},
};

typedef struct {
  const material_row_t *rows;
  size_t count;
  int fail; /* returned instead of looking up when non-zero */
  int calls;
} catalog_t;

static int catalog_lookup(void *ctx, const char *id, inventory_material_t *out) {
  catalog_t *c = ctx;
  c->calls++;
  if (c->fail) return c->fail;
  out->found = false;
  for (size_t i = 0; i < c->count; i++)
    if (strcmp(c->rows[i].id, id) == 0) *out = c->rows[i].info;
  return 0;
}

static const char *const fridge_materials[] = {"cheese", "sauce"};
static const char *const freezer_materials[] = {"cheese"};
static const char *const shelf_materials[] = {"box"};
static const inventory_zone_t zones[] = {
    {"fridge", "Fridge", fridge_materials, 2},
    {"freezer", "Freezer", freezer_materials, 1},
    {"shelf", "Dry shelf", shelf_materials, 1},
};
static const inventory_template_t tmpl = {TMPL, UNIT, "Monthly count", INVENTORY_CATEGORY_MONTHLY, zones, 3};

typedef struct {
  catalog_t catalog;
  inventory_refs_t refs;
} world_t;

static void world_init(world_t *w) {
  memset(w, 0, sizeof *w);
  w->catalog.rows = materials;
  w->catalog.count = sizeof materials / sizeof materials[0];
  w->refs.material_lookup = catalog_lookup;
  w->refs.material_ctx = &w->catalog;
  w->refs.tmpl = &tmpl;
}

static void set_id(char dst[INVENTORY_ID_SIZE], const char *s) {
  assert_int_equal(inventory_id_copy(dst, s), 0);
}

static inventory_command_t start_cmd(void) {
  inventory_command_t c;
  memset(&c, 0, sizeof c);
  c.kind = INVENTORY_CMD_START;
  set_id(c.inventory_id, INV);
  set_id(c.start.unit_id, UNIT);
  set_id(c.start.template_id, TMPL);
  set_id(c.start.started_by, USER);
  c.start.at_ms = T0;
  return c;
}

/* value NULL: the measurement is removed. */
static inventory_command_t add_cmd(const char *mid, int32_t version, const char *material, const char *value,
                                   inventory_uom_t unit, const char *zone) {
  inventory_command_t c;
  memset(&c, 0, sizeof c);
  c.kind = INVENTORY_CMD_ADD_MEASUREMENT;
  set_id(c.inventory_id, INV);
  inventory_measurement_t *m = &c.measurement;
  set_id(m->measurement_id, mid);
  m->version = version;
  set_id(m->material_type_id, material);
  m->removed = value == NULL;
  if (value) assert_int_equal(inventory_value_parse(value, &m->value_milli), 0);
  m->unit = unit;
  set_id(m->zone_id, zone);
  set_id(m->user_id, USER);
  return c;
}

static inventory_command_t cheese(const char *mid, int32_t version, const char *value) {
  return add_cmd(mid, version, "cheese", value, INVENTORY_UOM_GRAM, "fridge");
}

static inventory_command_t finish_cmd(void) {
  inventory_command_t c;
  memset(&c, 0, sizeof c);
  c.kind = INVENTORY_CMD_FINISH;
  set_id(c.inventory_id, INV);
  set_id(c.finish.by, USER2);
  c.finish.at_ms = T0 + 3600000;
  return c;
}

static inventory_decision_t decide_with(const inventory_state_t *s, inventory_command_t c,
                                        const inventory_refs_t *refs) {
  inventory_decision_t d;
  assert_int_equal(inventory_decide(s, &c, refs, &d), 0);
  return d;
}

static inventory_decision_t decide(const inventory_state_t *s, inventory_command_t c) {
  world_t w;
  world_init(&w);
  return decide_with(s, c, &w.refs);
}

static void assert_rejected(inventory_decision_t d, inventory_reason_t reason, const char *text) {
  assert_int_equal(d.outcome, INVENTORY_OUTCOME_REJECTED);
  assert_string_equal(inventory_reason_code(d.rejection.reason), inventory_reason_code(reason));
  if (text) assert_string_equal(d.rejection.text, text);
  assert_int_equal(d.event.kind, 0);
}

/* Decides c, requires acceptance, applies the event; returns it. */
static inventory_event_t run(inventory_state_t *s, inventory_command_t c) {
  inventory_decision_t d = decide(s, c);
  if (d.outcome != INVENTORY_OUTCOME_ACCEPTED)
    fail_msg("expected acceptance, got %d: %s", d.outcome, d.rejection.text);
  assert_int_equal(inventory_state_apply(s, &d.event), 0);
  return d.event;
}

static void started(inventory_state_t *s) {
  inventory_state_init(s);
  run(s, start_cmd());
}

static void finished(inventory_state_t *s) {
  started(s);
  run(s, cheese("m-1", 1, "50"));
  run(s, finish_cmd());
}

static char *encode_event(const inventory_event_t *ev) {
  char *json = NULL;
  assert_int_equal(inventory_event_encode(ev, &json), 0);
  return json;
}

static char *encode_snapshot(const inventory_state_t *s) {
  char *json = NULL;
  assert_int_equal(inventory_snapshot_encode(s, &json), 0);
  return json;
}

/* ---- Values, identifiers, reason codes ---------------------------------------------- */

static void test_value_parse_valid(void **state) {
  (void)state;
  static const struct {
    const char *text;
    int64_t milli;
  } cases[] = {
      {"0", 0},     {"12", 12000},     {"12.5", 12500},     {"0.125", 125},
      {"0.001", 1}, {"007.100", 7100}, {"50000", 50000000}, {"9223372036854775.807", INT64_MAX},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    int64_t v = -1;
    assert_int_equal(inventory_value_parse(cases[i].text, &v), 0);
    assert_int_equal(v, cases[i].milli);
  }
}

static void test_value_parse_invalid(void **state) {
  (void)state;
  static const char *const bad[] = {"",   "-1", "+1",  "1.",  ".5",    "1.2345", "1e3",
                                    " 1", "1 ", "abc", "1,5", "1.2.3", "0x10"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int64_t v = 42;
    assert_int_equal(inventory_value_parse(bad[i], &v), CTXD_EINVAL);
    assert_int_equal(v, 42);
  }
  int64_t v = 42;
  assert_int_equal(inventory_value_parse("9223372036854775.808", &v), CTXD_ERANGE);
  assert_int_equal(inventory_value_parse("9223372036854776", &v), CTXD_ERANGE);
  assert_int_equal(inventory_value_parse("99999999999999999999999", &v), CTXD_ERANGE);
  assert_int_equal(v, 42);
  assert_int_equal(inventory_value_parse(NULL, &v), CTXD_EINVAL);
}

static void test_value_format(void **state) {
  (void)state;
  static const struct {
    int64_t milli;
    const char *text;
  } cases[] = {{0, "0"},        {1, "0.001"},  {125, "0.125"},      {7100, "7.1"},
               {12500, "12.5"}, {12000, "12"}, {50000000, "50000"}, {INT64_MAX, "9223372036854775.807"}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char buf[INVENTORY_VALUE_TEXT_SIZE];
    assert_int_equal(inventory_value_format(cases[i].milli, buf, sizeof buf), 0);
    assert_string_equal(buf, cases[i].text);
    int64_t back = -1;
    assert_int_equal(inventory_value_parse(buf, &back), 0);
    assert_int_equal(back, cases[i].milli);
  }
  char small[4] = "xyz";
  assert_int_equal(inventory_value_format(12500, small, sizeof small), CTXD_ETOOBIG);
  assert_string_equal(small, "");
  assert_int_equal(inventory_value_format(-1, small, sizeof small), CTXD_EINVAL);
}

static void test_id_copy(void **state) {
  (void)state;
  char id[INVENTORY_ID_SIZE];
  assert_int_equal(inventory_id_copy(id, "0b000000-5d56-0015-9c3e-08dcb7f1a2b3"), 0);
  assert_string_equal(id, "0b000000-5d56-0015-9c3e-08dcb7f1a2b3");
  char longest[INVENTORY_ID_SIZE];
  memset(longest, 'a', sizeof longest - 1);
  longest[sizeof longest - 1] = '\0';
  assert_int_equal(inventory_id_copy(id, longest), 0);
  char too_long[INVENTORY_ID_SIZE + 1];
  memset(too_long, 'a', sizeof too_long - 1);
  too_long[sizeof too_long - 1] = '\0';
  static const char *const bad[] = {"", "a b", "tab\t", "caf\xc3\xa9"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    assert_int_equal(inventory_id_copy(id, bad[i]), CTXD_EINVAL);
    assert_string_equal(id, "");
  }
  assert_int_equal(inventory_id_copy(id, too_long), CTXD_EINVAL);
  assert_int_equal(inventory_id_copy(id, NULL), CTXD_EINVAL);
}

static void test_reason_codes(void **state) {
  (void)state;
  static const char *const codes[] = {"none",
                                      "invalid_command",
                                      "unknown_inventory",
                                      "already_started",
                                      "inventory_finished",
                                      "unknown_template",
                                      "template_mismatch",
                                      "measurement_removed",
                                      "measurement_conflict",
                                      "material_changed",
                                      "unknown_material",
                                      "material_removed",
                                      "unit_mismatch",
                                      "unknown_zone",
                                      "invalid_template",
                                      "unknown_unit",
                                      "user_not_allowed"};
  for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
    assert_string_equal(inventory_reason_code((inventory_reason_t)i), codes[i]);
  assert_string_equal(inventory_reason_code((inventory_reason_t)99), "unknown");
  assert_string_equal(inventory_reason_code(INVENTORY_REASON_MEASUREMENT_CONFLICT), "measurement_conflict");
}

/* ---- InventoryTemplate ------------------------------------------------------------- */

static void test_template_valid(void **state) {
  (void)state;
  inventory_rejection_t why;
  memset(&why, 0x55, sizeof why);
  assert_int_equal(inventory_template_validate(&tmpl, &why), 0);
  assert_int_equal(why.reason, INVENTORY_REASON_NONE);
  /* cheese sits in two zones: allowed; an empty zone is allowed too */
  inventory_zone_t z[] = {zones[0], zones[1], {"bin", "Bin", NULL, 0}};
  inventory_template_t t = tmpl;
  t.zones = z;
  t.zone_count = 3;
  t.category = INVENTORY_CATEGORY_DAILY;
  assert_int_equal(inventory_template_validate(&t, &why), 0);
  assert_int_equal(inventory_template_validate(NULL, &why), CTXD_EINVAL);
  assert_int_equal(inventory_template_validate(&tmpl, NULL), CTXD_EINVAL);
}

static void expect_invalid_template(const inventory_template_t *t, const char *text) {
  inventory_rejection_t why;
  assert_int_equal(inventory_template_validate(t, &why), CTXD_EVALIDATION);
  assert_int_equal(why.reason, INVENTORY_REASON_INVALID_TEMPLATE);
  assert_string_equal(why.text, text);
}

static void test_template_invalid(void **state) {
  (void)state;
  inventory_template_t t = tmpl;
  t.name = "  ";
  expect_invalid_template(&t, "template name is blank");
  t = tmpl;
  t.name = NULL;
  expect_invalid_template(&t, "template name is blank");
  t = tmpl;
  t.id = "";
  expect_invalid_template(&t, "template has no valid id");
  t = tmpl;
  t.unit_id = NULL;
  expect_invalid_template(&t, "template has no valid pizzeria id");
  t = tmpl;
  t.category = (inventory_category_t)4;
  expect_invalid_template(&t, "category 4 is not monthly, weekly or daily");
  t = tmpl;
  t.zone_count = 0;
  expect_invalid_template(&t, "template has no storage zone");

  inventory_zone_t z[3] = {zones[0], zones[1], zones[2]};
  t = tmpl;
  t.zones = z;
  z[2].name = "Fridge";
  expect_invalid_template(&t, "zone name \"Fridge\" appears twice");
  z[2] = zones[2];
  z[1].id = "fridge";
  expect_invalid_template(&t, "zone id fridge appears twice");
  z[1] = zones[1];
  z[1].name = "";
  expect_invalid_template(&t, "zone freezer has a blank name");
  z[1] = zones[1];
  z[2].id = "bad id";
  expect_invalid_template(&t, "zone 2 has no valid id");
  z[2] = zones[2];
  static const char *const twice[] = {"cheese", "sauce", "cheese"};
  z[0].material_type_ids = twice;
  z[0].material_count = 3;
  expect_invalid_template(&t, "zone fridge lists material cheese twice");
  static const char *const empty_id[] = {"cheese", ""};
  z[0].material_type_ids = empty_id;
  z[0].material_count = 2;
  expect_invalid_template(&t, "zone fridge: material 1 has no valid id");
  z[0].material_type_ids = NULL;
  expect_invalid_template(&t, "zone fridge has no material list");
}

/* ---- StartInventory ----------------------------------------------------------------- */

/* The office manager's CRUD of templates: create, replace, repeat, delete, the pizzeria
 * a template stays with. */
static void test_template_decide(void **state) {
  (void)state;
  inventory_rejection_t why;
  assert_int_equal(inventory_template_decide(NULL, false, &tmpl, &why), INVENTORY_TEMPLATE_SAVE);
  assert_int_equal(why.reason, INVENTORY_REASON_NONE);
  assert_int_equal(inventory_template_decide(&tmpl, false, &tmpl, &why), INVENTORY_TEMPLATE_UNCHANGED);
  inventory_template_t renamed = tmpl;
  renamed.name = "Weekly count";
  assert_false(inventory_template_equal(&tmpl, &renamed));
  assert_int_equal(inventory_template_decide(&tmpl, false, &renamed, &why), INVENTORY_TEMPLATE_SAVE);
  /* one material less in the fridge is a change */
  inventory_zone_t z[] = {zones[0], zones[1], zones[2]};
  z[0].material_count = 1;
  inventory_template_t fewer = tmpl;
  fewer.zones = z;
  assert_false(inventory_template_equal(&tmpl, &fewer));
  /* a deleted template is created again by a save */
  assert_int_equal(inventory_template_decide(NULL, true, &tmpl, &why), INVENTORY_TEMPLATE_SAVE);

  inventory_template_t moved = tmpl;
  moved.unit_id = "unit-2";
  assert_int_equal(inventory_template_decide(&tmpl, false, &moved, &why), INVENTORY_TEMPLATE_REJECTED);
  assert_int_equal(why.reason, INVENTORY_REASON_TEMPLATE_MISMATCH);
  assert_string_equal(why.text, "template tmpl-1 belongs to pizzeria unit-1, not unit-2");
  inventory_template_t blank = tmpl;
  blank.name = " ";
  assert_int_equal(inventory_template_decide(NULL, false, &blank, &why), INVENTORY_TEMPLATE_REJECTED);
  assert_int_equal(why.reason, INVENTORY_REASON_INVALID_TEMPLATE);

  assert_int_equal(inventory_template_decide(&tmpl, false, NULL, &why), INVENTORY_TEMPLATE_DELETE);
  assert_int_equal(inventory_template_decide(NULL, true, NULL, &why), INVENTORY_TEMPLATE_UNCHANGED);
  assert_int_equal(inventory_template_decide(NULL, false, NULL, &why), INVENTORY_TEMPLATE_REJECTED);
  assert_int_equal(why.reason, INVENTORY_REASON_UNKNOWN_TEMPLATE);
  assert_string_equal(why.text, "template does not exist");
}

/* The application service's check: the pizzeria exists in Inventory's copy of DataCatalog
 * and is not removed; checked before the template. */
static void test_start_unit_check(void **state) {
  (void)state;
  world_t w;
  world_init(&w);
  inventory_unit_t unit = {.found = false};
  w.refs.unit = &unit;
  assert_rejected(decide_with(NULL, start_cmd(), &w.refs), INVENTORY_REASON_UNKNOWN_UNIT,
                  "pizzeria unit-1 does not exist");
  unit = (inventory_unit_t){.found = true, .removed = true};
  assert_rejected(decide_with(NULL, start_cmd(), &w.refs), INVENTORY_REASON_UNKNOWN_UNIT,
                  "pizzeria unit-1 is removed");
  w.refs.tmpl = NULL;
  assert_rejected(decide_with(NULL, start_cmd(), &w.refs), INVENTORY_REASON_UNKNOWN_UNIT, NULL);
  w.refs.tmpl = &tmpl;
  unit.removed = false;
  assert_int_equal(decide_with(NULL, start_cmd(), &w.refs).outcome, INVENTORY_OUTCOME_ACCEPTED);
}

/* The application service's permission check: the user a command names holds a live
 * grant for the inventory's pizzeria; checked after the inventory's own state (a finished
 * inventory stays InventoryFinished), before the measurement rules and the template. */
static void test_user_grant_check(void **state) {
  (void)state;
  assert_string_equal(inventory_command_user(&(inventory_command_t){.kind = 0}), "");
  inventory_command_t start = start_cmd(), add = cheese("m-1", 1, "50"), fin = finish_cmd();
  assert_string_equal(inventory_command_user(&start), USER);
  assert_string_equal(inventory_command_user(&add), USER);
  assert_string_equal(inventory_command_user(&fin), USER2);
  world_t w;
  world_init(&w);
  inventory_grant_t grant = {.found = false};
  w.refs.grant = &grant;
  assert_rejected(decide_with(NULL, start, &w.refs), INVENTORY_REASON_USER_NOT_ALLOWED,
                  "user " USER " is not allowed for pizzeria " UNIT);
  inventory_unit_t unit = {.found = false};
  w.refs.unit = &unit; /* the pizzeria first */
  assert_rejected(decide_with(NULL, start, &w.refs), INVENTORY_REASON_UNKNOWN_UNIT, NULL);
  unit.found = true;
  grant = (inventory_grant_t){.found = true, .revoked = true};
  assert_rejected(decide_with(NULL, start, &w.refs), INVENTORY_REASON_USER_NOT_ALLOWED,
                  "user " USER " is not allowed for pizzeria " UNIT ": the grant is revoked");
  w.refs.tmpl = NULL; /* before the template */
  assert_rejected(decide_with(NULL, start, &w.refs), INVENTORY_REASON_USER_NOT_ALLOWED, NULL);
  w.refs.tmpl = &tmpl;
  grant.revoked = false;
  assert_int_equal(decide_with(NULL, start, &w.refs).outcome, INVENTORY_OUTCOME_ACCEPTED);

  inventory_state_t s;
  started(&s);
  grant.revoked = true;
  assert_rejected(decide_with(&s, add, &w.refs), INVENTORY_REASON_USER_NOT_ALLOWED, NULL);
  assert_rejected(decide_with(&s, cheese("m-1", 1, NULL), &w.refs), INVENTORY_REASON_USER_NOT_ALLOWED, NULL);
  assert_rejected(decide_with(&s, fin, &w.refs), INVENTORY_REASON_USER_NOT_ALLOWED,
                  "user " USER2 " is not allowed for pizzeria " UNIT ": the grant is revoked");
  assert_rejected(decide_with(NULL, fin, &w.refs), INVENTORY_REASON_UNKNOWN_INVENTORY, NULL);
  grant.revoked = false;
  assert_int_equal(decide_with(&s, add, &w.refs).outcome, INVENTORY_OUTCOME_ACCEPTED);
  assert_int_equal(decide_with(&s, fin, &w.refs).outcome, INVENTORY_OUTCOME_ACCEPTED);
  inventory_state_clear(&s);
  finished(&s);
  grant.found = false;
  assert_rejected(decide_with(&s, fin, &w.refs), INVENTORY_REASON_INVENTORY_FINISHED, NULL);
  inventory_state_clear(&s);
}

static void test_start_on_none(void **state) {
  (void)state;
  inventory_command_t c = start_cmd();
  inventory_decision_t d = decide(NULL, c);
  assert_int_equal(d.outcome, INVENTORY_OUTCOME_ACCEPTED);
  assert_int_equal(d.event.kind, INVENTORY_EVENT_STARTED);
  assert_string_equal(d.event.inventory_id, INV);
  assert_int_equal(d.event.version, 1);
  assert_string_equal(d.event.start.unit_id, UNIT);
  assert_string_equal(d.event.start.template_id, TMPL);
  assert_string_equal(d.event.start.started_by, USER);
  assert_int_equal(d.event.start.at_ms, T0);

  inventory_state_t s;
  inventory_state_init(&s);
  inventory_decision_t d2 = decide(&s, c); /* an empty state is "none" too */
  assert_int_equal(d2.outcome, INVENTORY_OUTCOME_ACCEPTED);
  assert_int_equal(inventory_state_apply(&s, &d2.event), 0);
  assert_string_equal(s.id, INV);
  assert_int_equal(s.version, 1);
  assert_int_equal(s.status, INVENTORY_STATUS_IN_PROGRESS);
  assert_string_equal(s.started.unit_id, UNIT);
  assert_string_equal(s.started.template_id, TMPL);
  assert_string_equal(s.started.started_by, USER);
  assert_int_equal(s.started.at_ms, T0);
  assert_int_equal(s.measurement_count, 0);
  assert_string_equal(s.finished.by, "");
  inventory_state_clear(&s);
}

static void test_start_on_in_progress(void **state) {
  (void)state;
  inventory_state_t s;
  started(&s);
  assert_rejected(decide(&s, start_cmd()), INVENTORY_REASON_ALREADY_STARTED,
                  "inventory inv-1 is already started");
  inventory_state_clear(&s);
}

static void test_start_on_finished(void **state) {
  (void)state;
  inventory_state_t s;
  finished(&s);
  assert_rejected(decide(&s, start_cmd()), INVENTORY_REASON_ALREADY_STARTED, NULL);
  inventory_state_clear(&s);
}

static void test_start_template_rules(void **state) {
  (void)state;
  world_t w;
  world_init(&w);
  w.refs.tmpl = NULL;
  assert_rejected(decide_with(NULL, start_cmd(), &w.refs), INVENTORY_REASON_UNKNOWN_TEMPLATE,
                  "template tmpl-1 does not exist");
  assert_rejected(decide_with(NULL, start_cmd(), NULL), INVENTORY_REASON_UNKNOWN_TEMPLATE, NULL);

  inventory_template_t other = tmpl;
  other.unit_id = "unit-2";
  w.refs.tmpl = &other;
  assert_rejected(decide_with(NULL, start_cmd(), &w.refs), INVENTORY_REASON_TEMPLATE_MISMATCH,
                  "template tmpl-1 belongs to another pizzeria than unit-1");

  /* the caller passing another template than the command names is a bug, not a rule */
  other = tmpl;
  other.id = "tmpl-2";
  inventory_command_t c = start_cmd();
  inventory_decision_t d;
  assert_int_equal(inventory_decide(NULL, &c, &w.refs, &d), CTXD_EINVAL);
  assert_int_equal(d.outcome, 0);
}

static void test_start_invalid_command(void **state) {
  (void)state;
  inventory_command_t c = start_cmd();
  c.start.started_by[0] = '\0';
  assert_rejected(decide(NULL, c), INVENTORY_REASON_INVALID_COMMAND,
                  "StartInventory needs valid pizzeria, template and user ids");
  c = start_cmd();
  strcpy(c.inventory_id, "has space");
  assert_rejected(decide(NULL, c), INVENTORY_REASON_INVALID_COMMAND, "the inventory id is not valid");
}

/* ---- AddMeasurement: inventory states ------------------------------------------------ */

static void test_add_on_none(void **state) {
  (void)state;
  assert_rejected(decide(NULL, cheese("m-1", 1, "50")), INVENTORY_REASON_UNKNOWN_INVENTORY,
                  "inventory inv-1 does not exist");
  inventory_state_t s;
  inventory_state_init(&s);
  assert_rejected(decide(&s, cheese("m-1", 1, "50")), INVENTORY_REASON_UNKNOWN_INVENTORY, NULL);
}

static void test_add_on_finished(void **state) {
  (void)state;
  inventory_state_t s;
  finished(&s);
  assert_rejected(decide(&s, cheese("m-2", 1, "20")), INVENTORY_REASON_INVENTORY_FINISHED,
                  "inventory inv-1 is finished");
  /* even a repeat that would be a no-op while in progress */
  assert_rejected(decide(&s, cheese("m-1", 1, "50")), INVENTORY_REASON_INVENTORY_FINISHED, NULL);
  inventory_state_clear(&s);
}

static void assert_measurement(const inventory_state_t *s, const char *mid, int32_t version,
                               const char *material, const char *value, inventory_uom_t unit,
                               const char *zone, const char *user) {
  const inventory_measurement_t *m = inventory_state_find(s, mid);
  assert_non_null(m);
  assert_string_equal(m->measurement_id, mid);
  assert_int_equal(m->version, version);
  assert_string_equal(m->material_type_id, material);
  if (value) {
    int64_t milli;
    assert_int_equal(inventory_value_parse(value, &milli), 0);
    assert_false(m->removed);
    assert_int_equal(m->value_milli, milli);
  } else {
    assert_true(m->removed);
    assert_int_equal(m->value_milli, 0);
  }
  assert_int_equal(m->unit, unit);
  assert_string_equal(m->zone_id, zone);
  assert_string_equal(m->user_id, user);
}

static void test_add_new_measurement(void **state) {
  (void)state;
  inventory_state_t s;
  started(&s);
  /* the seed's example: 5 packs of 10 kg, then 2 more: two measurements */
  inventory_decision_t d = decide(&s, cheese("m-1", 1, "50000"));
  assert_int_equal(d.outcome, INVENTORY_OUTCOME_ACCEPTED);
  assert_int_equal(d.event.kind, INVENTORY_EVENT_MEASUREMENT_CHANGED);
  assert_int_equal(d.event.version, 2);
  assert_string_equal(d.event.inventory_id, INV);
  assert_string_equal(d.event.measurement.measurement_id, "m-1");
  assert_int_equal(d.event.measurement.value_milli, 50000000);
  assert_int_equal(inventory_state_apply(&s, &d.event), 0);
  run(&s, cheese("m-2", 1, "20000"));
  assert_int_equal(s.version, 3);
  assert_int_equal(s.measurement_count, 2);
  assert_measurement(&s, "m-1", 1, "cheese", "50000", INVENTORY_UOM_GRAM, "fridge", USER);
  assert_measurement(&s, "m-2", 1, "cheese", "20000", INVENTORY_UOM_GRAM, "fridge", USER);
  assert_null(inventory_state_find(&s, "m-3"));
  inventory_state_clear(&s);
}

static void test_add_new_measurement_any_first_version(void **state) {
  (void)state;
  inventory_state_t s;
  started(&s);
  run(&s, cheese("m-1", 3, "1.5"));
  assert_measurement(&s, "m-1", 3, "cheese", "1.5", INVENTORY_UOM_GRAM, "fridge", USER);
  run(&s, cheese("m-1", 4, "2"));
  assert_measurement(&s, "m-1", 4, "cheese", "2", INVENTORY_UOM_GRAM, "fridge", USER);
  inventory_state_clear(&s);
}

static void test_add_new_removed_measurement(void **state) {
  (void)state;
  inventory_state_t s;
  started(&s);
  run(&s, cheese("m-1", 2, NULL));
  assert_measurement(&s, "m-1", 2, "cheese", NULL, INVENTORY_UOM_GRAM, "fridge", USER);
  assert_rejected(decide(&s, cheese("m-1", 3, "5")), INVENTORY_REASON_MEASUREMENT_REMOVED, NULL);
  inventory_state_clear(&s);
}

/* ---- AddMeasurement: versioning rules ------------------------------------------------ */

static void test_add_next_version_replaces(void **state) {
  (void)state;
  inventory_state_t s;
  started(&s);
  run(&s, cheese("m-1", 1, "50"));
  inventory_command_t c = add_cmd("m-1", 2, "cheese", "42.125", INVENTORY_UOM_GRAM, "freezer");
  set_id(c.measurement.user_id, USER2);
  inventory_event_t ev = run(&s, c);
  assert_int_equal(ev.version, 3);
  assert_int_equal(ev.measurement.version, 2);
  assert_string_equal(ev.measurement.user_id, USER2);
  /* value and zone follow; the creator stays (the seed sets UserId on add only) */
  assert_measurement(&s, "m-1", 2, "cheese", "42.125", INVENTORY_UOM_GRAM, "freezer", USER);
  assert_int_equal(s.measurement_count, 1);
  assert_int_equal(s.version, 3);
  inventory_state_clear(&s);
}

static void test_add_next_version_replaces_unit(void **state) {
  (void)state;
  /* a unit can only change if the catalog changed the material's basic unit */
  world_t w;
  world_init(&w);
  material_row_t rows[] = {{"cheese", {true, false, INVENTORY_UOM_GRAM}}};
  w.catalog.rows = rows;
  w.catalog.count = 1;
  inventory_state_t s;
  started(&s);
  run(&s, cheese("m-1", 1, "50"));
  rows[0].info.unit = INVENTORY_UOM_QUANTITY;
  inventory_decision_t d =
      decide_with(&s, add_cmd("m-1", 2, "cheese", "3", INVENTORY_UOM_QUANTITY, "fridge"), &w.refs);
  assert_int_equal(d.outcome, INVENTORY_OUTCOME_ACCEPTED);
  assert_int_equal(inventory_state_apply(&s, &d.event), 0);
  assert_measurement(&s, "m-1", 2, "cheese", "3", INVENTORY_UOM_QUANTITY, "fridge", USER);
  inventory_state_clear(&s);
}

static void test_add_next_version_removes(void **state) {
  (void)state;
  inventory_state_t s;
  started(&s);
  run(&s, cheese("m-1", 1, "50"));
  inventory_event_t ev = run(&s, cheese("m-1", 2, NULL));
  assert_true(ev.measurement.removed);
  assert_measurement(&s, "m-1", 2, "cheese", NULL, INVENTORY_UOM_GRAM, "fridge", USER);
  inventory_state_clear(&s);
}

static void test_add_edit_removed_rejected(void **state) {
  (void)state;
  inventory_state_t s;
  started(&s);
  run(&s, cheese("m-1", 1, "50"));
  run(&s, cheese("m-1", 2, NULL));
  assert_rejected(decide(&s, cheese("m-1", 3, "60")), INVENTORY_REASON_MEASUREMENT_REMOVED,
                  "measurement m-1 was removed and cannot change");
  /* the seed checks "removed" before the versions: a repeated removal is refused too */
  assert_rejected(decide(&s, cheese("m-1", 2, NULL)), INVENTORY_REASON_MEASUREMENT_REMOVED, NULL);
  assert_rejected(decide(&s, cheese("m-1", 3, NULL)), INVENTORY_REASON_MEASUREMENT_REMOVED, NULL);
  assert_int_equal(s.version, 3);
  inventory_state_clear(&s);
}

static void test_add_version_gap_conflict(void **state) {
  (void)state;
  inventory_state_t s;
  started(&s);
  run(&s, cheese("m-1", 1, "50"));
  assert_rejected(decide(&s, cheese("m-1", 3, "60")), INVENTORY_REASON_MEASUREMENT_CONFLICT,
                  "measurement m-1 is at version 1; version 3 conflicts with it");
  assert_rejected(decide(&s, cheese("m-1", 3, "50")), INVENTORY_REASON_MEASUREMENT_CONFLICT, NULL);
  inventory_state_clear(&s);
}

static void test_add_older_version_conflict(void **state) {
  (void)state;
  inventory_state_t s;
  started(&s);
  run(&s, cheese("m-1", 1, "50"));
  run(&s, cheese("m-1", 2, "60"));
  /* even with the value version 1 had: stale writes are conflicts (the seed's text) */
  assert_rejected(decide(&s, cheese("m-1", 1, "50")), INVENTORY_REASON_MEASUREMENT_CONFLICT,
                  "measurement m-1 is at version 2; version 1 conflicts with it");
  assert_rejected(decide(&s, cheese("m-1", 1, "60")), INVENTORY_REASON_MEASUREMENT_CONFLICT, NULL);
  inventory_state_clear(&s);
}

static void test_add_same_version_other_content_conflict(void **state) {
  (void)state;
  inventory_state_t s;
  started(&s);
  run(&s, cheese("m-1", 1, "50"));
  assert_rejected(decide(&s, cheese("m-1", 1, "50.001")), INVENTORY_REASON_MEASUREMENT_CONFLICT, NULL);
  assert_rejected(decide(&s, cheese("m-1", 1, NULL)), INVENTORY_REASON_MEASUREMENT_CONFLICT, NULL);
  assert_rejected(decide(&s, add_cmd("m-1", 1, "cheese", "50", INVENTORY_UOM_GRAM, "freezer")),
                  INVENTORY_REASON_MEASUREMENT_CONFLICT, NULL);
  assert_rejected(decide(&s, add_cmd("m-1", 1, "sauce", "50", INVENTORY_UOM_MILLILITER, "fridge")),
                  INVENTORY_REASON_MEASUREMENT_CONFLICT, NULL);
  assert_int_equal(s.version, 2);
  inventory_state_clear(&s);
}

static void test_add_same_version_same_value_unchanged(void **state) {
  (void)state;
  inventory_state_t s;
  started(&s);
  run(&s, cheese("m-1", 1, "50"));
  run(&s, cheese("m-1", 2, "55.5"));
  char *before = encode_snapshot(&s);
  inventory_command_t c = cheese("m-1", 2, "55.500");
  set_id(c.measurement.user_id, USER2); /* who resends does not matter */
  world_t w;
  world_init(&w);
  inventory_decision_t d = decide_with(&s, c, &w.refs);
  assert_int_equal(d.outcome, INVENTORY_OUTCOME_UNCHANGED);
  assert_int_equal(d.event.kind, 0);
  assert_int_equal(d.rejection.reason, INVENTORY_REASON_NONE);
  assert_int_equal(w.catalog.calls, 0); /* a repeat needs no reference data */
  char *after = encode_snapshot(&s);
  assert_string_equal(before, after);
  free(before);
  free(after);
  inventory_state_clear(&s);
}

static void test_add_next_version_other_material(void **state) {
  (void)state;
  inventory_state_t s;
  started(&s);
  run(&s, cheese("m-1", 1, "50"));
  assert_rejected(decide(&s, add_cmd("m-1", 2, "sauce", "50", INVENTORY_UOM_MILLILITER, "fridge")),
                  INVENTORY_REASON_MATERIAL_CHANGED,
                  "measurement m-1 counts material type cheese, not sauce");
  inventory_state_clear(&s);
}

/* ---- AddMeasurement: materials and zones --------------------------------------------- */

static void test_add_unknown_material(void **state) {
  (void)state;
  inventory_state_t s;
  started(&s);
  assert_rejected(decide(&s, add_cmd("m-1", 1, "ghost", "1", INVENTORY_UOM_GRAM, "fridge")),
                  INVENTORY_REASON_UNKNOWN_MATERIAL, "material type ghost is unknown");
  inventory_state_clear(&s);
}

static void test_add_removed_material(void **state) {
  (void)state;
  inventory_state_t s;
  started(&s);
  assert_rejected(decide(&s, add_cmd("m-1", 1, "old-flour", "1", INVENTORY_UOM_GRAM, "fridge")),
                  INVENTORY_REASON_MATERIAL_REMOVED, "material type old-flour is removed");
  inventory_state_clear(&s);
}

static void test_add_unit_mismatch(void **state) {
  (void)state;
  inventory_state_t s;
  started(&s);
  assert_rejected(decide(&s, add_cmd("m-1", 1, "cheese", "1", INVENTORY_UOM_MILLILITER, "fridge")),
                  INVENTORY_REASON_UNIT_MISMATCH, "material type cheese is counted in unit 5, not 7");
  assert_rejected(decide(&s, add_cmd("m-1", 1, "box", "1", INVENTORY_UOM_METER, "shelf")),
                  INVENTORY_REASON_UNIT_MISMATCH, NULL);
  run(&s, add_cmd("m-1", 1, "box", "12", INVENTORY_UOM_QUANTITY, "shelf"));
  inventory_state_clear(&s);
}

static void test_add_material_removed_since(void **state) {
  (void)state;
  world_t w;
  world_init(&w);
  material_row_t rows[] = {{"cheese", {true, false, INVENTORY_UOM_GRAM}}};
  w.catalog.rows = rows;
  w.catalog.count = 1;
  inventory_state_t s;
  started(&s);
  run(&s, cheese("m-1", 1, "50"));
  rows[0].info.removed = true;
  /* editing a value of a since-removed material is refused ... */
  assert_rejected(decide_with(&s, cheese("m-1", 2, "60"), &w.refs), INVENTORY_REASON_MATERIAL_REMOVED, NULL);
  /* ... removing the measurement is not: removals skip material and zone checks */
  w.catalog.calls = 0;
  inventory_decision_t d = decide_with(&s, cheese("m-1", 2, NULL), &w.refs);
  assert_int_equal(d.outcome, INVENTORY_OUTCOME_ACCEPTED);
  assert_int_equal(w.catalog.calls, 0);
  inventory_state_clear(&s);
}

static void test_add_zone_rules(void **state) {
  (void)state;
  world_t w;
  world_init(&w);
  inventory_state_t s;
  started(&s);
  assert_rejected(decide_with(&s, add_cmd("m-1", 1, "cheese", "1", INVENTORY_UOM_GRAM, "attic"), &w.refs),
                  INVENTORY_REASON_UNKNOWN_ZONE, "zone attic is not in template tmpl-1");
  /* a material the zone does not list is still counted there */
  inventory_decision_t d =
      decide_with(&s, add_cmd("m-1", 1, "box", "3", INVENTORY_UOM_QUANTITY, "fridge"), &w.refs);
  assert_int_equal(d.outcome, INVENTORY_OUTCOME_ACCEPTED);
  /* without the template (deleted since) zones are not checked */
  w.refs.tmpl = NULL;
  d = decide_with(&s, add_cmd("m-1", 1, "cheese", "1", INVENTORY_UOM_GRAM, "attic"), &w.refs);
  assert_int_equal(d.outcome, INVENTORY_OUTCOME_ACCEPTED);
  /* a removal names a zone but is not checked against the template */
  w.refs.tmpl = &tmpl;
  d = decide_with(&s, add_cmd("m-1", 1, "cheese", NULL, INVENTORY_UOM_GRAM, "attic"), &w.refs);
  assert_int_equal(d.outcome, INVENTORY_OUTCOME_ACCEPTED);
  /* another template than the inventory's is a caller bug */
  inventory_template_t other = tmpl;
  other.id = "tmpl-2";
  w.refs.tmpl = &other;
  inventory_command_t c = cheese("m-1", 1, "1");
  assert_int_equal(inventory_decide(&s, &c, &w.refs, &d), CTXD_EINVAL);
  assert_int_equal(d.outcome, 0);
  inventory_state_clear(&s);
}

static void test_add_invalid_command(void **state) {
  (void)state;
  inventory_state_t s;
  started(&s);
  const char *text = "AddMeasurement needs valid ids, a version >= 1, a known unit of measure "
                     "and a value >= 0 (0 when removed)";
  inventory_command_t c = cheese("m-1", 0, "1");
  assert_rejected(decide(&s, c), INVENTORY_REASON_INVALID_COMMAND, text);
  c = cheese("m-1", -1, "1");
  assert_rejected(decide(&s, c), INVENTORY_REASON_INVALID_COMMAND, text);
  c = cheese("m-1", 1, "1");
  c.measurement.value_milli = -1;
  assert_rejected(decide(&s, c), INVENTORY_REASON_INVALID_COMMAND, text);
  c = cheese("m-1", 1, NULL);
  c.measurement.value_milli = 5;
  assert_rejected(decide(&s, c), INVENTORY_REASON_INVALID_COMMAND, text);
  c = cheese("m-1", 1, "1");
  c.measurement.unit = (inventory_uom_t)2;
  assert_rejected(decide(&s, c), INVENTORY_REASON_INVALID_COMMAND, text);
  c = cheese("m-1", 1, "1");
  c.measurement.zone_id[0] = '\0';
  assert_rejected(decide(&s, c), INVENTORY_REASON_INVALID_COMMAND, text);
  c = cheese("m-1", 1, "1");
  c.measurement.user_id[0] = '\0';
  assert_rejected(decide(&s, c), INVENTORY_REASON_INVALID_COMMAND, text);
  c = cheese("m-1", 1, "1");
  memset(c.measurement.material_type_id, 'x', INVENTORY_ID_SIZE); /* no NUL */
  assert_rejected(decide(&s, c), INVENTORY_REASON_INVALID_COMMAND, text);
  /* a malformed command is refused before the inventory's state is looked at */
  assert_rejected(decide(NULL, cheese("m-1", 0, "1")), INVENTORY_REASON_INVALID_COMMAND, NULL);
  assert_int_equal(s.version, 1);
  inventory_state_clear(&s);
}

static void test_add_lookup_errors(void **state) {
  (void)state;
  world_t w;
  world_init(&w);
  inventory_state_t s;
  started(&s);
  inventory_command_t c = cheese("m-1", 1, "1");
  inventory_decision_t d;
  w.catalog.fail = CTXD_EDB;
  assert_int_equal(inventory_decide(&s, &c, &w.refs, &d), CTXD_EDB);
  assert_int_equal(d.outcome, 0);
  w.refs.material_lookup = NULL;
  assert_int_equal(inventory_decide(&s, &c, &w.refs, &d), CTXD_EINVAL);
  assert_int_equal(inventory_decide(&s, &c, NULL, &d), CTXD_EINVAL);
  inventory_state_clear(&s);
}

static void test_decide_misuse(void **state) {
  (void)state;
  inventory_state_t s;
  started(&s);
  inventory_command_t c = cheese("m-1", 1, "1");
  inventory_decision_t d;
  strcpy(c.inventory_id, "inv-2");
  assert_int_equal(inventory_decide(&s, &c, NULL, &d), CTXD_EINVAL);
  c = cheese("m-1", 1, "1");
  c.kind = (inventory_command_kind_t)9;
  assert_int_equal(inventory_decide(&s, &c, NULL, &d), CTXD_EINVAL);
  assert_int_equal(inventory_decide(&s, NULL, NULL, &d), CTXD_EINVAL);
  assert_int_equal(inventory_decide(&s, &c, NULL, NULL), CTXD_EINVAL);
  inventory_state_clear(&s);
}

/* ---- FinishInventory ---------------------------------------------------------------- */

static void test_finish_on_none(void **state) {
  (void)state;
  assert_rejected(decide(NULL, finish_cmd()), INVENTORY_REASON_UNKNOWN_INVENTORY,
                  "inventory inv-1 does not exist");
}

static void test_finish_on_in_progress(void **state) {
  (void)state;
  inventory_state_t s;
  started(&s);
  run(&s, cheese("m-1", 1, "50"));
  inventory_decision_t d = decide_with(&s, finish_cmd(), NULL); /* needs no references */
  assert_int_equal(d.outcome, INVENTORY_OUTCOME_ACCEPTED);
  assert_int_equal(d.event.kind, INVENTORY_EVENT_FINISHED);
  assert_int_equal(d.event.version, 3);
  assert_string_equal(d.event.finish.by, USER2);
  assert_int_equal(d.event.finish.at_ms, T0 + 3600000);
  assert_int_equal(inventory_state_apply(&s, &d.event), 0);
  assert_int_equal(s.status, INVENTORY_STATUS_FINISHED);
  assert_int_equal(s.version, 3);
  assert_string_equal(s.finished.by, USER2);
  assert_int_equal(s.finished.at_ms, T0 + 3600000);
  assert_measurement(&s, "m-1", 1, "cheese", "50", INVENTORY_UOM_GRAM, "fridge", USER);
  inventory_state_clear(&s);
}

static void test_finish_on_finished(void **state) {
  (void)state;
  inventory_state_t s;
  finished(&s);
  assert_rejected(decide(&s, finish_cmd()), INVENTORY_REASON_INVENTORY_FINISHED,
                  "inventory inv-1 is finished");
  inventory_state_clear(&s);
}

static void test_finish_invalid_command(void **state) {
  (void)state;
  inventory_state_t s;
  started(&s);
  inventory_command_t c = finish_cmd();
  c.finish.by[0] = '\0';
  assert_rejected(decide(&s, c), INVENTORY_REASON_INVALID_COMMAND, "FinishInventory needs a valid user id");
  inventory_state_clear(&s);
}

/* ---- State ------------------------------------------------------------------------ */

/* Every field takes part in equality: a copy equals, a copy changed anywhere does not. */
static void test_state_equal(void **state) {
  (void)state;
  inventory_state_t s;
  finished(&s);
  char *json = encode_snapshot(&s);
  inventory_state_t c;
  assert_int_equal(inventory_snapshot_decode(json, &c), 0);
  assert_true(inventory_state_equal(&s, &c));
  assert_true(inventory_state_equal(NULL, NULL));
  assert_false(inventory_state_equal(&s, NULL));
  inventory_measurement_t *m;
#define CHANGED(stmt)                                                                                        \
  do {                                                                                                       \
    inventory_state_clear(&c);                                                                               \
    assert_int_equal(inventory_snapshot_decode(json, &c), 0);                                                \
    m = &c.measurements[0];                                                                                  \
    stmt;                                                                                                    \
    if (inventory_state_equal(&s, &c)) fail_msg("still equal after %s", #stmt);                              \
  } while (0)
  CHANGED(c.id[0] = 'X');
  CHANGED(c.version++);
  CHANGED(c.status = INVENTORY_STATUS_IN_PROGRESS);
  CHANGED(c.started.unit_id[0] = 'X');
  CHANGED(c.started.template_id[0] = 'X');
  CHANGED(c.started.started_by[0] = 'X');
  CHANGED(c.started.at_ms++);
  CHANGED(c.finished.by[0] = 'X');
  CHANGED(c.finished.at_ms++);
  CHANGED(c.measurement_count = 0);
  CHANGED(m->measurement_id[0] = 'X');
  CHANGED(m->version++);
  CHANGED(m->material_type_id[0] = 'X');
  CHANGED(m->removed = true);
  CHANGED(m->value_milli++);
  CHANGED(m->unit = INVENTORY_UOM_METER);
  CHANGED(m->zone_id[0] = 'X');
  CHANGED(m->user_id[0] = 'X');
#undef CHANGED
  free(json);
  inventory_state_clear(&c);
  inventory_state_clear(&s);
}

/* ---- apply() refuses impossible histories -------------------------------------------- */

static void expect_apply(inventory_state_t *s, const inventory_event_t *ev, int rc) {
  char *before = s->status == INVENTORY_STATUS_NONE ? NULL : encode_snapshot(s);
  assert_int_equal(inventory_state_apply(s, ev), rc);
  char *after = s->status == INVENTORY_STATUS_NONE ? NULL : encode_snapshot(s);
  if (before)
    assert_string_equal(before, after); /* unchanged on failure */
  else
    assert_null(after);
  free(before);
  free(after);
}

static void test_apply_rejects_impossible_histories(void **state) {
  (void)state;
  inventory_state_t s;
  inventory_state_init(&s);
  inventory_event_t start = decide(NULL, start_cmd()).event;
  inventory_event_t m1 = start;
  m1.kind = INVENTORY_EVENT_MEASUREMENT_CHANGED;
  m1.version = 2;
  m1.measurement = cheese("m-1", 1, "50").measurement;

  expect_apply(&s, &m1, CTXD_ESTATE); /* before started */
  assert_int_equal(inventory_state_apply(&s, &start), 0);
  expect_apply(&s, &start, CTXD_ESTATE); /* started twice */

  inventory_event_t gap = m1;
  gap.version = 3;
  expect_apply(&s, &gap, CTXD_ECONFLICT);
  inventory_event_t other = m1;
  strcpy(other.inventory_id, "inv-2");
  expect_apply(&s, &other, CTXD_EINVAL);
  inventory_event_t bad = m1;
  bad.measurement.version = 0;
  expect_apply(&s, &bad, CTXD_EINVAL);
  bad = m1;
  bad.kind = (inventory_event_kind_t)7;
  expect_apply(&s, &bad, CTXD_EINVAL);

  assert_int_equal(inventory_state_apply(&s, &m1), 0);
  inventory_event_t same = m1; /* an event that changes nothing is never stored */
  same.version = 3;
  expect_apply(&s, &same, CTXD_ECONFLICT);
  inventory_event_t jump = same;
  jump.measurement.version = 3;
  expect_apply(&s, &jump, CTXD_ECONFLICT);
  inventory_event_t material = same;
  material.measurement.version = 2;
  set_id(material.measurement.material_type_id, "sauce");
  expect_apply(&s, &material, CTXD_ECONFLICT);
  inventory_event_t removal = same;
  removal.measurement.version = 2;
  removal.measurement.removed = true;
  removal.measurement.value_milli = 0;
  assert_int_equal(inventory_state_apply(&s, &removal), 0);
  inventory_event_t revive = removal;
  revive.version = 4;
  revive.measurement.version = 3;
  revive.measurement.removed = false;
  revive.measurement.value_milli = 1;
  expect_apply(&s, &revive, CTXD_ECONFLICT);

  inventory_event_t fin = decide(&s, finish_cmd()).event;
  assert_int_equal(fin.version, 4);
  assert_int_equal(inventory_state_apply(&s, &fin), 0);
  revive.version = 5;
  expect_apply(&s, &revive, CTXD_ESTATE); /* after finished */
  fin.version = 5;
  expect_apply(&s, &fin, CTXD_ESTATE);
  assert_int_equal(inventory_state_apply(NULL, &fin), CTXD_EINVAL);
  assert_int_equal(inventory_state_apply(&s, NULL), CTXD_EINVAL);
  inventory_state_clear(&s);
}

/* ---- Event JSON --------------------------------------------------------------------- */

static void test_event_json_exact(void **state) {
  (void)state;
  inventory_state_t s;
  inventory_state_init(&s);
  static const char *const expected[] = {
      "{\"inventoryId\":\"inv-1\",\"version\":1,\"unitId\":\"unit-1\",\"templateId\":"
      "\"tmpl-1\",\"startedBy\":\"user-1\",\"startedAtMs\":1700000000000}",
      "{\"inventoryId\":\"inv-1\",\"version\":2,\"measurementId\":\"m-1\","
      "\"measurementVersion\":1,\"materialTypeId\":\"cheese\",\"value\":\"50000.25\","
      "\"unitOfMeasure\":5,\"zoneId\":\"fridge\",\"userId\":\"user-1\"}",
      "{\"inventoryId\":\"inv-1\",\"version\":3,\"measurementId\":\"m-1\","
      "\"measurementVersion\":2,\"materialTypeId\":\"cheese\",\"value\":null,"
      "\"unitOfMeasure\":5,\"zoneId\":\"fridge\",\"userId\":\"user-1\"}",
      "{\"inventoryId\":\"inv-1\",\"version\":4,\"finishedBy\":\"user-2\","
      "\"finishedAtMs\":1700003600000}",
  };
  static const char *const types[] = {"InventoryStarted", "MeasurementChanged", "MeasurementChanged",
                                      "InventoryFinished"};
  inventory_event_t evs[4] = {run(&s, start_cmd()), run(&s, cheese("m-1", 1, "50000.250")),
                              run(&s, cheese("m-1", 2, NULL)), run(&s, finish_cmd())};
  for (size_t i = 0; i < 4; i++) {
    char *json = encode_event(&evs[i]);
    assert_string_equal(json, expected[i]);
    assert_string_equal(inventory_event_type_name(evs[i].kind), types[i]);
    free(json);
  }
  assert_null(inventory_event_type_name((inventory_event_kind_t)0));
  assert_null(inventory_event_type_name((inventory_event_kind_t)4));
  inventory_state_clear(&s);
}

static void test_event_json_round_trip(void **state) {
  (void)state;
  inventory_state_t s;
  inventory_state_init(&s);
  inventory_command_t big = cheese("m-2", INT32_MAX, "9223372036854775.807");
  inventory_event_t evs[] = {run(&s, start_cmd()), run(&s, cheese("m-1", 1, "0.001")),
                             run(&s, cheese("m-1", 2, NULL)), run(&s, big), run(&s, finish_cmd())};
  for (size_t i = 0; i < sizeof evs / sizeof evs[0]; i++) {
    char *json = encode_event(&evs[i]);
    inventory_event_t back;
    assert_int_equal(inventory_event_decode(inventory_event_type_name(evs[i].kind), json, &back), 0);
    assert_int_equal(back.kind, evs[i].kind);
    assert_int_equal(back.version, evs[i].version);
    char *again = encode_event(&back);
    assert_string_equal(json, again);
    free(json);
    free(again);
  }
  inventory_event_t back;
  char *json = encode_event(&evs[3]);
  assert_int_equal(inventory_event_decode("MeasurementChanged", json, &back), 0);
  assert_int_equal(back.measurement.version, INT32_MAX);
  assert_int_equal(back.measurement.value_milli, INT64_MAX);
  assert_false(back.measurement.removed);
  assert_string_equal(back.measurement.zone_id, "fridge");
  free(json);
  json = encode_event(&evs[2]);
  assert_int_equal(inventory_event_decode("MeasurementChanged", json, &back), 0);
  assert_true(back.measurement.removed);
  assert_int_equal(back.measurement.value_milli, 0);
  free(json);
  inventory_state_clear(&s);
}

static void test_event_decode_tolerates_unknown_keys(void **state) {
  (void)state;
  inventory_event_t ev;
  assert_int_equal(inventory_event_decode("InventoryFinished",
                                          "{\"extra\":[1,2],\"inventoryId\":\"inv-1\","
                                          "\"finishedAtMs\":-5,\"version\":9,"
                                          "\"finishedBy\":\"u\"}",
                                          &ev),
                   0);
  assert_int_equal(ev.kind, INVENTORY_EVENT_FINISHED);
  assert_int_equal(ev.version, 9);
  assert_string_equal(ev.finish.by, "u");
  assert_int_equal(ev.finish.at_ms, -5);
}

static void test_event_decode_rejects(void **state) {
  (void)state;
  static const char m[] = "\"inventoryId\":\"inv-1\",\"measurementId\":\"m-1\","
                          "\"materialTypeId\":\"cheese\",\"zoneId\":\"fridge\","
                          "\"userId\":\"u\"";
  static const struct {
    const char *type;
    const char *json;
  } cases[] = {
      {"InventoryPaused", "{\"inventoryId\":\"inv-1\",\"version\":2}"},
      {"inventoryfinished", "{\"inventoryId\":\"inv-1\",\"version\":2,\"finishedBy\":\"u\","
                            "\"finishedAtMs\":1}"},
      {"InventoryFinished", "not json"},
      {"InventoryFinished", "[1]"},
      {"InventoryFinished", "{\"inventoryId\":\"inv-1\",\"version\":2,\"finishedBy\":\"u\"}"},
      {"InventoryFinished", "{\"inventoryId\":\"inv-1\",\"version\":2,\"finishedBy\":\"u\","
                            "\"finishedAtMs\":\"1\"}"},
      {"InventoryFinished", "{\"inventoryId\":\"inv-1\",\"version\":1,\"finishedBy\":\"u\","
                            "\"finishedAtMs\":1}"},
      {"InventoryFinished", "{\"inventoryId\":\"inv-1\",\"version\":2.0,\"finishedBy\":\"u\","
                            "\"finishedAtMs\":1}"},
      {"InventoryFinished", "{\"inventoryId\":\"inv-1\",\"version\":2,\"finishedBy\":\"u\","
                            "\"finishedBy\":\"v\",\"finishedAtMs\":1}"},
      {"InventoryFinished", "{\"inventoryId\":\"inv\\u0000-1\",\"version\":2,"
                            "\"finishedBy\":\"u\",\"finishedAtMs\":1}"},
      {"InventoryFinished", "{\"inventoryId\":\"\",\"version\":2,\"finishedBy\":\"u\","
                            "\"finishedAtMs\":1}"},
      {"InventoryStarted", "{\"inventoryId\":\"inv-1\",\"version\":2,\"unitId\":\"u\","
                           "\"templateId\":\"t\",\"startedBy\":\"u\",\"startedAtMs\":1}"},
      {"InventoryStarted", "{\"inventoryId\":\"inv-1\",\"version\":1,\"unitId\":\"u\","
                           "\"templateId\":\"t\",\"startedAtMs\":1}"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    inventory_event_t ev;
    memset(&ev, 0x5a, sizeof ev);
    int rc = inventory_event_decode(cases[i].type, cases[i].json, &ev);
    if (rc != CTXD_EDECODE) fail_msg("case %zu decoded (rc %d)", i, rc);
    assert_int_equal(ev.kind, 0);
    assert_int_equal(ev.version, 0);
  }
  static const char *const measurement_tails[] = {
      ",\"version\":2,\"measurementVersion\":1,\"value\":12.5,\"unitOfMeasure\":5}",
      ",\"version\":2,\"measurementVersion\":1,\"value\":\"-1\",\"unitOfMeasure\":5}",
      ",\"version\":2,\"measurementVersion\":1,\"unitOfMeasure\":5}",
      ",\"version\":2,\"measurementVersion\":0,\"value\":\"1\",\"unitOfMeasure\":5}",
      ",\"version\":2,\"measurementVersion\":2147483648,\"value\":\"1\",\"unitOfMeasure\":5}",
      ",\"version\":2,\"measurementVersion\":1,\"value\":\"1\",\"unitOfMeasure\":3}",
      ",\"version\":2,\"measurementVersion\":1,\"value\":\"1\",\"unitOfMeasure\":\"Gram\"}",
      ",\"version\":2,\"measurementVersion\":1,\"value\":\"1.0001\",\"unitOfMeasure\":5}",
  };
  for (size_t i = 0; i < sizeof measurement_tails / sizeof measurement_tails[0]; i++) {
    char json[512];
    snprintf(json, sizeof json, "{%s%s", m, measurement_tails[i]);
    inventory_event_t ev;
    int rc = inventory_event_decode("MeasurementChanged", json, &ev);
    if (rc != CTXD_EDECODE) fail_msg("measurement case %zu decoded (rc %d)", i, rc);
  }
  char json[512];
  snprintf(json, sizeof json, "{%s%s", m,
           ",\"version\":2,\"measurementVersion\":1,\"value\":\"1\",\"unitOfMeasure\":5}");
  inventory_event_t ev;
  assert_int_equal(inventory_event_decode("MeasurementChanged", json, &ev), 0);
  assert_int_equal(ev.measurement.value_milli, 1000);
  assert_int_equal(inventory_event_decode(NULL, json, &ev), CTXD_EINVAL);
  char *out = (char *)1;
  assert_int_equal(inventory_event_encode(NULL, &out), CTXD_EINVAL);
  assert_null(out);
  ev.version = 0;
  assert_int_equal(inventory_event_encode(&ev, &out), CTXD_EINVAL);
}

/* ---- Snapshots ---------------------------------------------------------------------- */

static void test_snapshot_exact(void **state) {
  (void)state;
  inventory_state_t s;
  started(&s);
  run(&s, cheese("m-b", 1, "1.5"));
  run(&s, add_cmd("m-a", 2, "box", "3", INVENTORY_UOM_QUANTITY, "shelf"));
  run(&s, cheese("m-b", 2, NULL));
  char *json = encode_snapshot(&s);
  assert_string_equal(json,
                      "{\"format\":1,\"inventoryId\":\"inv-1\",\"version\":4,\"status\":\"InProgress\","
                      "\"unitId\":\"unit-1\",\"templateId\":\"tmpl-1\",\"startedBy\":\"user-1\","
                      "\"startedAtMs\":1700000000000,\"measurements\":["
                      "{\"measurementId\":\"m-a\",\"measurementVersion\":2,\"materialTypeId\":\"box\","
                      "\"value\":\"3\",\"unitOfMeasure\":1,\"zoneId\":\"shelf\",\"userId\":\"user-1\"},"
                      "{\"measurementId\":\"m-b\",\"measurementVersion\":2,\"materialTypeId\":\"cheese\","
                      "\"value\":null,\"unitOfMeasure\":5,\"zoneId\":\"fridge\",\"userId\":\"user-1\"}]}");
  free(json);
  run(&s, finish_cmd());
  json = encode_snapshot(&s);
  assert_non_null(strstr(json, "\"status\":\"Finished\",\"unitId\":\"unit-1\","
                               "\"templateId\":\"tmpl-1\",\"startedBy\":\"user-1\","
                               "\"startedAtMs\":1700000000000,\"finishedBy\":\"user-2\","
                               "\"finishedAtMs\":1700003600000,\"measurements\":[{"));
  inventory_state_t back;
  assert_int_equal(inventory_snapshot_decode(json, &back), 0);
  assert_true(inventory_state_equal(&s, &back));
  assert_int_equal(back.status, INVENTORY_STATUS_FINISHED);
  assert_int_equal(back.version, 5);
  assert_measurement(&back, "m-a", 2, "box", "3", INVENTORY_UOM_QUANTITY, "shelf", USER);
  assert_measurement(&back, "m-b", 2, "cheese", NULL, INVENTORY_UOM_GRAM, "fridge", USER);
  free(json);
  inventory_state_clear(&back);
  inventory_state_clear(&s);

  inventory_state_init(&s);
  json = (char *)1;
  assert_int_equal(inventory_snapshot_encode(&s, &json), CTXD_EINVAL);
  assert_null(json);
}

static void test_snapshot_decode_rejects(void **state) {
  (void)state;
  static const char head[] = "\"inventoryId\":\"inv-1\",\"unitId\":\"unit-1\","
                             "\"templateId\":\"tmpl-1\",\"startedBy\":\"user-1\","
                             "\"startedAtMs\":1,";
  static const char ma[] = "{\"measurementId\":\"m-a\",\"measurementVersion\":1,"
                           "\"materialTypeId\":\"box\",\"value\":\"3\",\"unitOfMeasure\":1,"
                           "\"zoneId\":\"shelf\",\"userId\":\"u\"}";
  char json[1024];
  snprintf(json, sizeof json,
           "{\"format\":1,%s\"version\":2,\"status\":\"InProgress\",\"measurements\":[%s]}", head, ma);
  inventory_state_t s;
  assert_int_equal(inventory_snapshot_decode(json, &s), 0);
  assert_int_equal(s.measurement_count, 1);
  inventory_state_clear(&s);

  const char *bad_tails[] = {
      "\"format\":2,\"version\":2,\"status\":\"InProgress\",\"measurements\":[%s]}",
      "\"format\":1,\"version\":3,\"status\":\"InProgress\",\"measurements\":[%s,%s]}",
      "\"format\":1,\"version\":1,\"status\":\"InProgress\",\"measurements\":[%s]}",
      ("\"format\":1,\"version\":2,\"status\":\"Finished\",\"finishedBy\":\"u\","
       "\"finishedAtMs\":2,\"measurements\":[%s]}"),
      "\"format\":1,\"version\":3,\"status\":\"Finished\",\"measurements\":[%s]}",
      "\"format\":1,\"version\":2,\"status\":\"Paused\",\"measurements\":[%s]}",
      "\"format\":1,\"version\":2,\"status\":\"InProgress\",\"measurements\":{\"x\":%s}}",
      "\"format\":1,\"version\":2,\"measurements\":[%s]}",
  };
  for (size_t i = 0; i < sizeof bad_tails / sizeof bad_tails[0]; i++) {
    char tail[800];
    snprintf(tail, sizeof tail, bad_tails[i], ma, ma);
    snprintf(json, sizeof json, "{%s%s", head, tail);
    memset(&s, 0x5a, sizeof s);
    int rc = inventory_snapshot_decode(json, &s);
    if (rc != CTXD_EDECODE) fail_msg("snapshot case %zu decoded (rc %d): %s", i, rc, json);
    assert_int_equal(s.status, INVENTORY_STATUS_NONE);
    assert_null(s.measurements);
  }
  /* finished with its finisher is fine */
  snprintf(json, sizeof json,
           "{\"format\":1,%s\"version\":3,\"status\":\"Finished\",\"finishedBy\":\"u\","
           "\"finishedAtMs\":2,\"measurements\":[%s]}",
           head, ma);
  assert_int_equal(inventory_snapshot_decode(json, &s), 0);
  assert_string_equal(s.finished.by, "u");
  inventory_state_clear(&s);
  assert_int_equal(inventory_snapshot_decode("{", &s), CTXD_EDECODE);
  assert_int_equal(inventory_snapshot_decode(NULL, &s), CTXD_EINVAL);
}

/* Restores from the snapshot taken after each prefix of events plus the rest of the
 * events, and requires every restore to equal the full replay and live. */
static void assert_snapshots_equal_replay(const inventory_state_t *live, const char *const *types,
                                          char *const *jsons, size_t n) {
  inventory_event_t *evs = calloc(n, sizeof *evs);
  assert_non_null(evs);
  for (size_t i = 0; i < n; i++) assert_int_equal(inventory_event_decode(types[i], jsons[i], &evs[i]), 0);

  inventory_state_t full;
  inventory_state_init(&full);
  for (size_t i = 0; i < n; i++) assert_int_equal(inventory_state_apply(&full, &evs[i]), 0);
  assert_true(inventory_state_equal(&full, live));
  char *a = encode_snapshot(&full), *b = encode_snapshot(live);
  assert_string_equal(a, b);
  free(a);
  free(b);

  inventory_state_t prefix;
  inventory_state_init(&prefix);
  for (size_t k = 1; k <= n; k++) {
    assert_int_equal(inventory_state_apply(&prefix, &evs[k - 1]), 0);
    char *snap = encode_snapshot(&prefix);
    inventory_state_t restored;
    assert_int_equal(inventory_snapshot_decode(snap, &restored), 0);
    assert_true(inventory_state_equal(&restored, &prefix));
    for (size_t i = k; i < n; i++) assert_int_equal(inventory_state_apply(&restored, &evs[i]), 0);
    if (!inventory_state_equal(&restored, &full))
      fail_msg("snapshot after %zu of %zu events + the rest differs from the replay", k, n);
    free(snap);
    inventory_state_clear(&restored);
  }
  inventory_state_clear(&prefix);
  inventory_state_clear(&full);
  free(evs);
}

typedef struct {
  const char **types; /* static names */
  char **jsons;
  size_t n, cap;
} journal_t;

static void journal_add(journal_t *j, const inventory_event_t *ev) {
  if (j->n == j->cap) {
    j->cap = j->cap ? 2 * j->cap : 64;
    j->types = realloc(j->types, j->cap * sizeof *j->types);
    j->jsons = realloc(j->jsons, j->cap * sizeof *j->jsons);
    assert_non_null(j->types);
    assert_non_null(j->jsons);
  }
  j->types[j->n] = inventory_event_type_name(ev->kind);
  j->jsons[j->n] = encode_event(ev);
  j->n++;
}

static void journal_free(journal_t *j) {
  for (size_t i = 0; i < j->n; i++) free(j->jsons[i]);
  free(j->types);
  free(j->jsons);
}

static void test_snapshot_plus_events_equals_replay(void **state) {
  (void)state;
  journal_t j = {0};
  inventory_state_t s;
  inventory_state_init(&s);
  inventory_command_t cmds[] = {
      start_cmd(),
      cheese("m-1", 1, "50"),
      cheese("m-2", 1, "20"),
      add_cmd("m-3", 1, "sauce", "0.75", INVENTORY_UOM_MILLILITER, "fridge"),
      cheese("m-1", 2, "45.5"),
      cheese("m-2", 2, NULL),
      add_cmd("m-3", 2, "sauce", "1", INVENTORY_UOM_MILLILITER, "freezer"),
      finish_cmd(),
  };
  for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
    inventory_event_t ev = run(&s, cmds[i]);
    journal_add(&j, &ev);
  }
  assert_int_equal(s.version, 8);
  assert_snapshots_equal_replay(&s, j.types, j.jsons, j.n);
  journal_free(&j);
  inventory_state_clear(&s);
}

/* The test's own model of a measurement, to predict each decision independently. */
typedef struct {
  bool exists, removed;
  int32_t version;
  int64_t value;
  int material, zone;
} model_t;

static uint32_t next_random(uint32_t *x) {
  *x ^= *x << 13;
  *x ^= *x >> 17;
  *x ^= *x << 5;
  return *x;
}

static void test_random_sequence_snapshot_equals_replay(void **state) {
  (void)state;
  static const char *const material_ids[] = {"cheese", "sauce", "box"};
  static const inventory_uom_t units[] = {INVENTORY_UOM_GRAM, INVENTORY_UOM_MILLILITER,
                                          INVENTORY_UOM_QUANTITY};
  static const char *const zone_ids[] = {"fridge", "freezer", "shelf"};
  enum { IDS = 40, STEPS = 600 };
  model_t model[IDS];
  memset(model, 0, sizeof model);
  uint32_t seed = 20240810;
  journal_t j = {0};
  inventory_state_t s;
  inventory_state_init(&s);
  inventory_event_t ev = run(&s, start_cmd());
  journal_add(&j, &ev);
  int counts[4] = {0}; /* accepted, unchanged, rejected conflict, rejected removed */

  for (int step = 0; step < STEPS; step++) {
    int k = (int)(next_random(&seed) % IDS);
    int action = (int)(next_random(&seed) % 10); /* removals 1 in 10 */
    model_t *m = &model[k];
    model_t next = *m;
    char mid[16];
    snprintf(mid, sizeof mid, "m-%02d", k);
    int32_t version;
    bool removed = false;
    int64_t value = (int64_t)(next_random(&seed) % 1000000);
    inventory_outcome_t expect = INVENTORY_OUTCOME_ACCEPTED;
    inventory_reason_t reason = INVENTORY_REASON_NONE;
    if (!m->exists) {
      version = 1 + (int32_t)(next_random(&seed) % 3);
      next.material = (int)(next_random(&seed) % 3);
      next.zone = (int)(next_random(&seed) % 3);
      removed = action == 2;
    } else if (m->removed) {
      version = m->version + (int32_t)(next_random(&seed) % 2);
      expect = INVENTORY_OUTCOME_REJECTED;
      reason = INVENTORY_REASON_MEASUREMENT_REMOVED;
    } else if (action <= 1 || action >= 7) {
      version = m->version + 1;
      next.zone = (int)(next_random(&seed) % 3);
    } else if (action == 2) {
      version = m->version + 1;
      removed = true;
    } else if (action == 3 || action == 4) {
      version = m->version;
      value = m->value;
      expect = INVENTORY_OUTCOME_UNCHANGED;
    } else if (action == 5) {
      version = m->version + 2;
      expect = INVENTORY_OUTCOME_REJECTED;
      reason = INVENTORY_REASON_MEASUREMENT_CONFLICT;
    } else {
      version = m->version;
      value = m->value + 1;
      expect = INVENTORY_OUTCOME_REJECTED;
      reason = INVENTORY_REASON_MEASUREMENT_CONFLICT;
    }
    if (removed) value = 0;
    inventory_command_t c =
        add_cmd(mid, version, material_ids[next.material], "0", units[next.material], zone_ids[next.zone]);
    c.measurement.removed = removed;
    c.measurement.value_milli = value;
    inventory_decision_t d = decide(&s, c);
    if (d.outcome != expect || d.rejection.reason != reason)
      fail_msg("step %d (%s v%d, action %d): outcome %d reason %s, expected %d %s: %s", step, mid, version,
               action, d.outcome, inventory_reason_code(d.rejection.reason), expect,
               inventory_reason_code(reason), d.rejection.text);
    if (expect == INVENTORY_OUTCOME_ACCEPTED) {
      counts[0]++;
      assert_int_equal(d.event.version, s.version + 1);
      assert_int_equal(inventory_state_apply(&s, &d.event), 0);
      journal_add(&j, &d.event);
      next.exists = true;
      next.removed = removed;
      next.version = version;
      next.value = value;
      *m = next;
    } else if (expect == INVENTORY_OUTCOME_UNCHANGED) {
      counts[1]++;
    } else {
      counts[reason == INVENTORY_REASON_MEASUREMENT_CONFLICT ? 2 : 3]++;
    }
    /* the aggregate agrees with the model after every step */
    const inventory_measurement_t *got = inventory_state_find(&s, mid);
    if (!m->exists) {
      assert_null(got);
    } else {
      assert_non_null(got);
      assert_int_equal(got->version, m->version);
      assert_int_equal(got->removed, m->removed);
      assert_int_equal(got->value_milli, m->value);
      assert_string_equal(got->zone_id, zone_ids[m->zone]);
      assert_string_equal(got->material_type_id, material_ids[m->material]);
    }
  }
  ev = run(&s, finish_cmd());
  journal_add(&j, &ev);
  /* every kind of outcome was exercised, so the check below covers them */
  for (int i = 0; i < 4; i++)
    if (counts[i] < 20)
      fail_msg("outcomes %d accepted, %d unchanged, %d conflicts, %d removed", counts[0], counts[1],
               counts[2], counts[3]);
  assert_int_equal((int64_t)j.n, s.version);
  assert_snapshots_equal_replay(&s, j.types, j.jsons, j.n);
  journal_free(&j);
  inventory_state_clear(&s);
}

/* ---- Public events ------------------------------------------------------------------ */

/* InventoryFinished.MeasurementCount: a removed measurement stays in the state but does
 * not count. */
static void test_counted_excludes_removed(void **state) {
  (void)state;
  inventory_state_t s;
  started(&s);
  assert_int_equal(inventory_state_counted(&s), 0);
  run(&s, cheese("m-1", 1, "50"));
  run(&s, cheese("m-2", 1, "5"));
  run(&s, cheese("m-3", 1, "7"));
  run(&s, cheese("m-2", 2, NULL));
  assert_int_equal(s.measurement_count, 3);
  assert_int_equal(inventory_state_counted(&s), 2);
  run(&s, cheese("m-1", 2, NULL));
  assert_int_equal(inventory_state_counted(&s), 1);
  inventory_state_clear(&s);
}

static void test_public_events(void **state) {
  (void)state;
  inventory_state_t s;
  inventory_state_init(&s);
  inventory_event_t evs[] = {run(&s, start_cmd()), run(&s, cheese("m-1", 1, "2.5")), run(&s, finish_cmd())};
  static const char *const bodies[] = {
      "{\"inventoryId\":\"inv-1\",\"version\":1,\"unitId\":\"unit-1\",\"templateId\":"
      "\"tmpl-1\",\"startedBy\":\"user-1\",\"startedAtMs\":1700000000000}",
      "{\"inventoryId\":\"inv-1\",\"version\":2,\"measurementId\":\"m-1\","
      "\"measurementVersion\":1,\"materialTypeId\":\"cheese\",\"value\":\"2.5\","
      "\"unitOfMeasure\":5,\"zoneId\":\"fridge\",\"userId\":\"user-1\",\"unitId\":\"unit-1\"}",
      "{\"inventoryId\":\"inv-1\",\"version\":3,\"finishedBy\":\"user-2\","
      "\"finishedAtMs\":1700003600000,\"unitId\":\"unit-1\"}",
  };
  static const char *const types[] = {"InventoryStarted", "MeasurementChanged", "InventoryFinished"};
  for (size_t i = 0; i < 3; i++) {
    inventory_public_event_t pub;
    assert_int_equal(inventory_public_event_build(&s, &evs[i], &pub), 0);
    assert_string_equal(pub.type_name, types[i]);
    assert_string_equal(pub.body, bodies[i]);
    free(pub.body);
  }
  inventory_public_event_t pub;
  inventory_event_t later = evs[2];
  later.version = 4; /* not applied yet */
  assert_int_equal(inventory_public_event_build(&s, &later, &pub), CTXD_EINVAL);
  assert_null(pub.body);
  inventory_event_t other = evs[1];
  strcpy(other.inventory_id, "inv-2");
  assert_int_equal(inventory_public_event_build(&s, &other, &pub), CTXD_EINVAL);
  inventory_state_clear(&s);
  assert_int_equal(inventory_public_event_build(&s, &evs[0], &pub), CTXD_EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_value_parse_valid),
      cmocka_unit_test(test_value_parse_invalid),
      cmocka_unit_test(test_value_format),
      cmocka_unit_test(test_id_copy),
      cmocka_unit_test(test_reason_codes),
      cmocka_unit_test(test_template_valid),
      cmocka_unit_test(test_template_invalid),
      cmocka_unit_test(test_start_on_none),
      cmocka_unit_test(test_start_on_in_progress),
      cmocka_unit_test(test_start_on_finished),
      cmocka_unit_test(test_start_template_rules),
      cmocka_unit_test(test_start_invalid_command),
      cmocka_unit_test(test_add_on_none),
      cmocka_unit_test(test_add_on_finished),
      cmocka_unit_test(test_add_new_measurement),
      cmocka_unit_test(test_add_new_measurement_any_first_version),
      cmocka_unit_test(test_add_new_removed_measurement),
      cmocka_unit_test(test_add_next_version_replaces),
      cmocka_unit_test(test_add_next_version_replaces_unit),
      cmocka_unit_test(test_add_next_version_removes),
      cmocka_unit_test(test_add_edit_removed_rejected),
      cmocka_unit_test(test_add_version_gap_conflict),
      cmocka_unit_test(test_add_older_version_conflict),
      cmocka_unit_test(test_add_same_version_other_content_conflict),
      cmocka_unit_test(test_add_same_version_same_value_unchanged),
      cmocka_unit_test(test_add_next_version_other_material),
      cmocka_unit_test(test_add_unknown_material),
      cmocka_unit_test(test_add_removed_material),
      cmocka_unit_test(test_add_unit_mismatch),
      cmocka_unit_test(test_add_material_removed_since),
      cmocka_unit_test(test_add_zone_rules),
      cmocka_unit_test(test_add_invalid_command),
      cmocka_unit_test(test_add_lookup_errors),
      cmocka_unit_test(test_decide_misuse),
      cmocka_unit_test(test_finish_on_none),
      cmocka_unit_test(test_finish_on_in_progress),
      cmocka_unit_test(test_finish_on_finished),
      cmocka_unit_test(test_finish_invalid_command),
      cmocka_unit_test(test_state_equal),
      cmocka_unit_test(test_apply_rejects_impossible_histories),
      cmocka_unit_test(test_event_json_exact),
      cmocka_unit_test(test_event_json_round_trip),
      cmocka_unit_test(test_event_decode_tolerates_unknown_keys),
      cmocka_unit_test(test_event_decode_rejects),
      cmocka_unit_test(test_snapshot_exact),
      cmocka_unit_test(test_snapshot_decode_rejects),
      cmocka_unit_test(test_snapshot_plus_events_equals_replay),
      cmocka_unit_test(test_random_sequence_snapshot_equals_replay),
      cmocka_unit_test(test_counted_excludes_removed),
      cmocka_unit_test(test_template_decide),
      cmocka_unit_test(test_start_unit_check),
      cmocka_unit_test(test_user_grant_check),
      cmocka_unit_test(test_public_events),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
