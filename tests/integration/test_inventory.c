/* Inventory against the real servers: a full audit (start, measurements in several zones,
 * an edit, a removal, finish) gives the events on their exchanges and the right state
 * (MeasurementCount without the removed measurement); rejected commands answer at the
 * response address, each with its own reason (an edit naming another material type is
 * MaterialTypeChanged, not a conflict); two workers adding measurements to one inventory
 * at once lose nothing. */
#include "hostfixture.h"

#include <signal.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define INV "11111111-1111-4111-8111-111111111111"
#define UNIT "22222222-2222-4222-8222-222222222222"
#define TEMPLATE "33333333-3333-4333-8333-333333333333"
#define FRIDGE "44444444-4444-4444-8444-444444444441"
#define SHELF "44444444-4444-4444-8444-444444444442"
#define CHEESE "55555555-5555-4555-8555-555555555551"
#define FLOUR "55555555-5555-4555-8555-555555555552"
#define GONE "55555555-5555-4555-8555-555555555553"
#define USER "66666666-6666-4666-8666-666666666666"

static int seq;
static char templates[64], reply[96];

static void setup_inventory(ctxt_world_t *w, const char *endpoint_settings) {
  char text[1024];
  snprintf(text, sizeof text,
           "[{\"id\": \"" TEMPLATE "\", \"unitId\": \"" UNIT
           "\", \"name\": \"Monthly\", \"category\": \"monthly\","
           " \"zones\": [{\"id\": \"" FRIDGE "\", \"name\": \"Fridge\", \"materialTypeIds\": [\"" CHEESE
           "\"]},"
           " {\"id\": \"" SHELF "\", \"name\": \"Shelf\", \"materialTypeIds\": [\"" FLOUR "\"]}]}]");
  ctxt_write_file(templates, sizeof templates, text);
  snprintf(w->plugins, sizeof w->plugins,
           "[{\"name\": \"inventory\", \"settings\": {\"endpoint\": \"%s\", \"material_endpoint\": \"%s-mt\","
           " \"templates_file\": \"%s\", \"snapshot_every\": 3}}]",
           w->endpoint, w->endpoint, templates);
  snprintf(w->endpoint_settings, sizeof w->endpoint_settings, "%s", endpoint_settings);
  /* where the replies of this test's requests arrive */
  snprintf(reply, sizeof reply, "%s-reply", w->endpoint);
  amqp_queue_declare(w->amqp, 1, amqp_cstring_bytes(reply), 0, 0, 0, 1, amqp_empty_table);
  amqp_exchange_declare(w->amqp, 1, amqp_cstring_bytes(reply), amqp_cstring_bytes("fanout"), 0, 1, 0, 0,
                        amqp_empty_table);
  amqp_queue_bind(w->amqp, 1, amqp_cstring_bytes(reply), amqp_cstring_bytes(reply), amqp_empty_bytes,
                  amqp_empty_table);
  assert_int_equal(amqp_get_rpc_reply(w->amqp).reply_type, AMQP_RESPONSE_NORMAL);
}

static void command(ctxt_world_t *w, const char *type, const char *message) {
  char body[2048];
  snprintf(body, sizeof body,
           "{\"messageId\":\"00000000-0000-4000-8000-%012d\",\"requestId\":\"00000000-0000-4000-9000-%012d\","
           "\"responseAddress\":\"rabbitmq://localhost/"
           "%s\",\"messageType\":[\"urn:message:Ctxd.Inventory.Contracts.v1:%s\"],"
           "\"message\":%s}",
           seq, seq, reply, type, message);
  seq++;
  ctxt_amqp_publish(w->amqp, w->endpoint, "application/vnd.masstransit+json", body, NULL, NULL);
}

/* A MaterialType envelope as DataCatalog publishes it, message id number n. */
static void material_body(char *body, size_t size, int n, const char *id, int unit, int removed) {
  snprintf(body, size,
           "{\"messageId\":\"00000000-0000-4000-a000-%012d\",\"messageType\":[\"urn:message:Dodo.DataCatalog."
           "Contracts.Products.v1:MaterialType\"],"
           "\"message\":{\"id\":\"%s\",\"version\":1,\"countryId\":643,\"departmentId\":\"" UNIT
           "\",\"name\":\"m\","
           "\"category\":1,\"basicUnitOfMeasure\":%d,\"isRemoved\":%s}}",
           n, id, unit, removed ? "true" : "false");
}

/* Publishes a MaterialType to Inventory's replica; returns its message id number. */
static int material(ctxt_world_t *w, const char *id, int unit, int removed) {
  char body[1024], ep[128];
  int n = seq++;
  material_body(body, sizeof body, n, id, unit, removed);
  snprintf(ep, sizeof ep, "%s-mt", w->endpoint);
  ctxt_amqp_publish(w->amqp, ep, "application/vnd.masstransit+json", body, NULL, NULL);
  return n;
}

static void measure(ctxt_world_t *w, const char *id, int version, const char *material_id, const char *value,
                    int unit, const char *zone) {
  char m[1024];
  snprintf(m, sizeof m,
           "{\"inventoryId\":\"" INV "\",\"measurementId\":\"%s\",\"version\":%d,\"materialTypeId\":\"%s\","
           "\"value\":%s,\"unitOfMeasure\":%d,\"inventoryZoneId\":\"%s\",\"userId\":\"" USER "\"}",
           id, version, material_id, value, unit, zone);
  command(w, "AddMeasurement", m);
}

static long count_archive(ctxt_world_t *w, const char *type) {
  char sql[256];
  snprintf(sql, sizeof sql,
           "SELECT count(*) FROM ctxd.outbox_archive WHERE message_type = 'Ctxd.Inventory.Contracts.v1:%s'",
           type);
  return ctxt_pg_long(w->pg, sql);
}

static void full_audit(void **state) {
  ctxt_world_t *w = *state;
  setup_inventory(w, "\"workers\": 1");
  ctxt_host_start(w, NULL);
  material(w, CHEESE, 5, 0);
  material(w, FLOUR, 5, 0);
  material(w, GONE, 5, 1);
  assert_int_equal(
      ctxt_pg_wait_long(w->pg, "SELECT count(*) FROM inventory.material_types", 3, CTXT_EFFECT_MS), 3);

  command(w, "StartInventory",
          "{\"inventoryId\":\"" INV "\",\"unitId\":\"" UNIT "\",\"inventoryTemplateId\":\"" TEMPLATE "\","
          "\"startedBy\":\"" USER "\",\"startedAt\":\"2026-11-24T08:00:00Z\"}");
  measure(w, "77777777-0000-4000-8000-000000000001", 1, CHEESE, "\"12.5\"", 5, FRIDGE);
  measure(w, "77777777-0000-4000-8000-000000000002", 1, FLOUR, "\"3000\"", 5, SHELF);
  measure(w, "77777777-0000-4000-8000-000000000001", 2, CHEESE, "\"13\"", 5, FRIDGE); /* an edit */
  measure(w, "77777777-0000-4000-8000-000000000002", 2, FLOUR, "null", 5, SHELF);     /* removed */
  measure(w, "77777777-0000-4000-8000-000000000001", 2, CHEESE, "\"13\"", 5, FRIDGE); /* same: no-op */
  measure(w, "77777777-0000-4000-8000-000000000003", 1, GONE, "\"1\"", 5, FRIDGE);    /* removed material */
  measure(w, "77777777-0000-4000-8000-000000000004", 1, CHEESE, "\"1\"", 1, FRIDGE);  /* wrong unit */
  measure(w, "77777777-0000-4000-8000-000000000002", 3, FLOUR, "\"1\"", 5, SHELF); /* edit of a removed one */
  measure(w, "77777777-0000-4000-8000-000000000001", 3, FLOUR, "\"1\"", 5, SHELF); /* another material */
  command(w, "FinishInventory",
          "{\"inventoryId\":\"" INV "\",\"finishedBy\":\"" USER
          "\",\"finishedAt\":\"2026-11-24T09:30:00.250+01:00\"}");
  measure(w, "77777777-0000-4000-8000-000000000005", 1, CHEESE, "\"1\"", 5, FRIDGE); /* after finish */

  /* twelve commands, twelve replies */
  assert_int_equal(ctxt_amqp_wait_count(w->amqp, reply, 12, CTXT_EFFECT_MS), 12);
  assert_int_equal(ctxt_pg_wait_long(w->pg, "SELECT count(*) FROM ctxd.outbox", 0, CTXT_EFFECT_MS), 0);
  ctxt_host_stop(w, SIGTERM);

  assert_int_equal(
      ctxt_pg_long(w->pg, "SELECT count(*) FROM inventory.events WHERE inventory_id = '" INV "'"), 6);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT max(version) FROM inventory.snapshots"), 6);
  assert_int_equal(count_archive(w, "InventoryStarted"), 1);
  assert_int_equal(count_archive(w, "MeasurementChanged"), 4);
  assert_int_equal(count_archive(w, "InventoryFinished"), 1);
  /* the edit names the value it replaced; the finish counts the measurements that count
   * (the removed one does not) */
  assert_int_equal(
      ctxt_pg_long(w->pg,
                   "SELECT count(*) FROM ctxd.outbox_archive WHERE body::json->'message'->>'Value' = '13'"
                   " AND body::json->'message'->>'PreviousValue' = '12.5'"),
      1);
  assert_int_equal(
      ctxt_pg_long(w->pg, "SELECT (body::json->'message'->>'MeasurementCount')::int FROM ctxd.outbox_archive"
                          " WHERE message_type LIKE '%InventoryFinished'"),
      1);
  assert_int_equal(
      ctxt_pg_long(w->pg,
                   "SELECT count(*) FROM ctxd.outbox_archive WHERE message_type LIKE '%InventoryFinished'"
                   " AND body::json->'message'->>'FinishedAt' = '2026-11-24T08:30:00.250Z'"),
      1);

  /* replies in order: 7 accepted (one unchanged), then the rejections with their reasons */
  char body[4096], hv[8];
  int accepted = 0, unchanged = 0, reasons[16] = {0};
  for (int i = 0; i < 12; i++) {
    assert_int_equal(ctxt_amqp_get(w->amqp, reply, body, sizeof body, NULL, hv, sizeof hv), 1);
    assert_non_null(strstr(body, "\"requestId\":\"00000000-0000-4000-9000-"));
    if (strstr(body, "InventoryCommandAccepted") != NULL) {
      accepted++;
      unchanged += strstr(body, "\"Changed\":false") != NULL;
    } else {
      char *r = strstr(body, "\"Reason\":");
      assert_non_null(r);
      int reason = atoi(r + 9);
      reasons[reason]++;
      /* v1 for the reasons it has, which released requesters understand; v2 (which does
       * not say it is v1) only for the new ones */
      int v1 = strstr(body, "\"urn:message:Ctxd.Inventory.Contracts.v1:InventoryCommandRejected\"") != NULL,
          v2 = strstr(body, "\"urn:message:Ctxd.Inventory.Contracts.v2:InventoryCommandRejected\"") != NULL;
      if (v1 == v2 || v2 != (reason == 12)) fail_msg("reason %d answered as %s", reason, body);
    }
  }
  assert_int_equal(accepted, 7);
  assert_int_equal(unchanged, 1);
  assert_int_equal(reasons[5], 1);  /* material removed */
  assert_int_equal(reasons[6], 1);  /* unit of measure mismatch */
  assert_int_equal(reasons[7], 1);  /* edit of a removed measurement */
  assert_int_equal(reasons[12], 1); /* an edit naming another material type */
  assert_int_equal(reasons[8], 0);  /* which is not a concurrency conflict */
  assert_int_equal(reasons[2], 1);  /* not in progress */
  unlink(templates);
}

/* Measurements of one inventory from two workers at once: the unique (inventory, version)
 * turns a race into a retry, and no measurement is lost. */
static void two_workers_lose_no_update(void **state) {
  ctxt_world_t *w = *state;
  const int n = 60;
  setup_inventory(w, "\"workers\": 2, \"batch_size\": 1, \"immediate_retries\": 50");
  ctxt_host_start(w, NULL);
  material(w, CHEESE, 5, 0);
  assert_int_equal(
      ctxt_pg_wait_long(w->pg, "SELECT count(*) FROM inventory.material_types", 1, CTXT_EFFECT_MS), 1);
  command(w, "StartInventory",
          "{\"inventoryId\":\"" INV "\",\"unitId\":\"" UNIT "\",\"inventoryTemplateId\":\"" TEMPLATE "\","
          "\"startedBy\":\"" USER "\",\"startedAt\":\"2026-11-24T08:00:00Z\"}");
  assert_int_equal(ctxt_pg_wait_long(w->pg, "SELECT count(*) FROM inventory.events", 1, CTXT_EFFECT_MS), 1);
  for (int i = 0; i < n; i++) {
    char id[37];
    snprintf(id, sizeof id, "88888888-0000-4000-8000-%012d", i);
    measure(w, id, 1, CHEESE, "\"1\"", 5, FRIDGE);
  }
  assert_int_equal(ctxt_pg_wait_long(w->pg, "SELECT count(*) FROM inventory.events", n + 1, CTXT_EFFECT_MS),
                   n + 1);
  assert_int_equal(ctxt_amqp_wait_count(w->amqp, w->endpoint, 0, CTXT_EFFECT_MS), 0);
  ctxt_host_stop(w, SIGTERM);
  assert_int_equal(ctxt_pg_long(w->pg,
                                "SELECT count(DISTINCT body::json->>'measurementId') FROM inventory.events"
                                " WHERE type = 'MeasurementChanged'"),
                   n);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT max(version) FROM inventory.events"), n + 1);
  unlink(templates);
}

/* The next reply at the test's response address, which must contain want. */
static void expect_reply(ctxt_world_t *w, const char *want) {
  char body[4096], hv[8];
  assert_int_equal(ctxt_amqp_wait_count(w->amqp, reply, 1, CTXT_EFFECT_MS) >= 1, 1);
  assert_int_equal(ctxt_amqp_get(w->amqp, reply, body, sizeof body, NULL, hv, sizeof hv), 1);
  if (strstr(body, want) == NULL) fail_msg("reply %s lacks %s", body, want);
}

#define TEMPLATE2 "33333333-3333-4333-8333-333333333334"
#define INV2 "11111111-1111-4111-8111-111111111112"
#define UNIT2 "22222222-2222-4222-8222-222222222223"

static void save_template(ctxt_world_t *w, const char *unit, const char *zone2_name) {
  char m[1024];
  snprintf(m, sizeof m,
           "{\"inventoryTemplateId\":\"" TEMPLATE2 "\",\"unitId\":\"%s\",\"name\":\"Daily\",\"category\":3,"
           "\"zones\":[{\"inventoryZoneId\":\"" FRIDGE "\",\"name\":\"Fridge\",\"materialTypeIds\":[\"" CHEESE
           "\"]},"
           "{\"inventoryZoneId\":\"44444444-4444-4444-8444-444444444443\",\"name\":\"%s\","
           "\"materialTypeIds\":[]}],"
           "\"savedBy\":\"" USER "\"}",
           unit, zone2_name);
  command(w, "SaveInventoryTemplate", m);
}

static void start(ctxt_world_t *w, const char *inventory, const char *tmpl) {
  char m[512];
  snprintf(m, sizeof m,
           "{\"inventoryId\":\"%s\",\"unitId\":\"" UNIT "\",\"inventoryTemplateId\":\"%s\","
           "\"startedBy\":\"" USER "\",\"startedAt\":\"2026-11-24T08:00:00Z\"}",
           inventory, tmpl);
  command(w, "StartInventory", m);
}

/* The office manager keeps the templates over the broker (seed 001: a CRUD entity): a
 * save creates or replaces one, a repeat changes nothing, a template stays with its
 * pizzeria, a bad one is refused with the reason; inventories start with the saved
 * template and check their zones against it; a deleted one (a seed of the file too) no
 * longer starts an inventory. */
static void office_manager_keeps_templates(void **state) {
  ctxt_world_t *w = *state;
  setup_inventory(w, "\"workers\": 1");
  ctxt_host_start(w, NULL);
  material(w, CHEESE, 5, 0);
  assert_int_equal(
      ctxt_pg_wait_long(w->pg, "SELECT count(*) FROM inventory.material_types", 1, CTXT_EFFECT_MS), 1);
  save_template(w, UNIT, "Bin");
  expect_reply(w, "\"Version\":1,\"Deleted\":false,\"Changed\":true");
  save_template(w, UNIT, "Bin");
  expect_reply(w, "\"Version\":1,\"Deleted\":false,\"Changed\":false");
  save_template(w, UNIT2, "Bin");
  expect_reply(w, "\"Reason\":3");
  save_template(w, UNIT, "Fridge"); /* two zones named Fridge */
  expect_reply(w, "\"Reason\":1");
  save_template(w, UNIT, "Freezer");
  expect_reply(w, "\"Version\":2,\"Deleted\":false,\"Changed\":true");

  start(w, INV, TEMPLATE2);
  expect_reply(w, "InventoryCommandAccepted");
  measure(w, "77777777-0000-4000-8000-000000000001", 1, CHEESE, "\"1\"", 5, SHELF); /* not in TEMPLATE2 */
  expect_reply(w, "\"Reason\":11");

  command(w, "DeleteInventoryTemplate",
          "{\"inventoryTemplateId\":\"" TEMPLATE2 "\",\"deletedBy\":\"" USER "\"}");
  expect_reply(w, "\"Version\":3,\"Deleted\":true,\"Changed\":true");
  command(w, "DeleteInventoryTemplate",
          "{\"inventoryTemplateId\":\"" TEMPLATE2 "\",\"deletedBy\":\"" USER "\"}");
  expect_reply(w, "\"Deleted\":true,\"Changed\":false");
  start(w, INV2, TEMPLATE2);
  expect_reply(w, "\"Reason\":10");
  /* the file's template is a seed: deleting it stores the deletion */
  command(w, "DeleteInventoryTemplate",
          "{\"inventoryTemplateId\":\"" TEMPLATE "\",\"deletedBy\":\"" USER "\"}");
  expect_reply(w, "\"Version\":1,\"Deleted\":true,\"Changed\":true");
  start(w, INV2, TEMPLATE);
  expect_reply(w, "\"Reason\":10");
  command(w, "DeleteInventoryTemplate", "{\"inventoryTemplateId\":\"" INV2 "\",\"deletedBy\":\"" USER "\"}");
  expect_reply(w, "\"Reason\":2");
  ctxt_host_stop(w, SIGTERM);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(*) FROM inventory.templates WHERE deleted"), 2);
  assert_int_equal(
      ctxt_pg_long(w->pg, "SELECT count(*) FROM inventory.templates WHERE updated_by = '" USER "'"), 2);
  unlink(templates);
}

/* Turns a setting of Inventory on in this world's configuration (before the host starts). */
static void inventory_setting(ctxt_world_t *w, const char *setting) {
  char *at = strstr(w->plugins, "\"snapshot_every\"");
  assert_non_null(at);
  char rest[1024];
  snprintf(rest, sizeof rest, "\"%s\": true, %s", setting, at);
  snprintf(at, sizeof w->plugins - (size_t)(at - w->plugins), "%s", rest);
}

/* A pizzeria as DataCatalog publishes it, to Inventory's replica queue. */
static void pizzeria(ctxt_world_t *w, int version, int removed) {
  char body[1024], ep[128];
  snprintf(body, sizeof body,
           "{\"messageId\":\"00000000-0000-4000-b000-%012d\",\"messageType\":[\"urn:message:Dodo.DataCatalog."
           "Contracts.Organization.v1:Unit\"],\"message\":{\"id\":\"" UNIT
           "\",\"version\":%d,\"countryId\":643,"
           "\"departmentId\":\"" UNIT2 "\",\"name\":\"Syktyvkar-1\",\"isRemoved\":%s}}",
           seq++, version, removed ? "true" : "false");
  snprintf(ep, sizeof ep, "%s-mt", w->endpoint);
  ctxt_amqp_publish(w->amqp, ep, "application/vnd.masstransit+json", body, NULL, NULL);
}

/* The seed's application service checks that the pizzeria exists: with require_units,
 * StartInventory needs the pizzeria in Inventory's copy of DataCatalog's Unit, not
 * removed. */
static void pizzeria_must_exist(void **state) {
  ctxt_world_t *w = *state;
  setup_inventory(w, "\"workers\": 1");
  inventory_setting(w, "require_units");
  ctxt_host_start(w, NULL);
  start(w, INV, TEMPLATE);
  expect_reply(w, "\"Reason\":13");
  pizzeria(w, 1, 0);
  assert_int_equal(ctxt_pg_wait_long(w->pg, "SELECT count(*) FROM inventory.units", 1, CTXT_EFFECT_MS), 1);
  start(w, INV, TEMPLATE);
  expect_reply(w, "InventoryCommandAccepted");
  pizzeria(w, 2, 1);
  pizzeria(w, 1, 0); /* older: ignored */
  assert_int_equal(ctxt_pg_wait_long(w->pg,
                                     "SELECT count(*) FROM inventory.units WHERE is_removed AND version = 2",
                                     1, CTXT_EFFECT_MS),
                   1);
  start(w, INV2, TEMPLATE);
  expect_reply(w, "\"Reason\":13");
  ctxt_host_stop(w, SIGTERM);
  unlink(templates);
}

/* USER's grant for UNIT as Auth publishes it, to the message type's exchange; returns its
 * message id number. */
static int grant(ctxt_world_t *w, int version, int removed) {
  char body[1024];
  int n = seq++;
  snprintf(body, sizeof body,
           "{\"messageId\":\"00000000-0000-4000-c000-%012d\",\"messageType\":[\"urn:message:Ctxd.Auth."
           "Contracts.v1:UserUnitGrant\"],\"message\":{\"userId\":\"" USER "\",\"unitId\":\"" UNIT
           "\",\"version\":%d,\"isRemoved\":%s}}",
           n, version, removed ? "true" : "false");
  ctxt_amqp_publish(w->amqp, "Ctxd.Auth.Contracts.v1:UserUnitGrant", "application/vnd.masstransit+json", body,
                    NULL, NULL);
  return n;
}

/* The seed's application service checks that the user may act for the pizzeria (Auth):
 * with require_user_grants, Inventory's copy of Auth's UserUnitGrant decides. No grant:
 * refused; granted: accepted; revoked (a newer version): the measurement and the finish
 * are refused UserNotAllowed (InventoryCommandRejected v2); an older grant version after
 * the revoke changes nothing. */
static void user_needs_a_grant(void **state) {
  ctxt_world_t *w = *state;
  setup_inventory(w, "\"workers\": 1");
  inventory_setting(w, "require_user_grants");
  ctxt_host_start(w, NULL);
  material(w, CHEESE, 5, 0);
  start(w, INV, TEMPLATE);
  expect_reply(w, "\"Reason\":14");
  grant(w, 1, 0);
  assert_int_equal(ctxt_pg_wait_long(w->pg, "SELECT count(*) FROM inventory.user_grants WHERE NOT is_removed",
                                     1, CTXT_EFFECT_MS),
                   1);
  start(w, INV, TEMPLATE);
  expect_reply(w, "InventoryCommandAccepted");
  measure(w, "77777777-0000-4000-8000-000000000001", 1, CHEESE, "\"12.5\"", 5, FRIDGE);
  expect_reply(w, "InventoryCommandAccepted");

  grant(w, 2, 1); /* revoked */
  assert_int_equal(
      ctxt_pg_wait_long(w->pg, "SELECT count(*) FROM inventory.user_grants WHERE is_removed AND version = 2",
                        1, CTXT_EFFECT_MS),
      1);
  measure(w, "77777777-0000-4000-8000-000000000002", 1, CHEESE, "\"1\"", 5, FRIDGE);
  expect_reply(w, "v2:InventoryCommandRejected");
  command(w, "FinishInventory",
          "{\"inventoryId\":\"" INV "\",\"finishedBy\":\"" USER
          "\",\"finishedAt\":\"2026-11-24T09:30:00Z\"}");
  expect_reply(w, "\"Reason\":14");

  /* an older version arriving late: handled (in the inbox), the revoke stays */
  int late = grant(w, 1, 0);
  char sql[256];
  snprintf(sql, sizeof sql,
           "SELECT count(*) FROM ctxd.inbox WHERE endpoint = '%s-mt' AND message_id = "
           "'00000000-0000-4000-c000-%012d'",
           w->endpoint, late);
  assert_int_equal(ctxt_pg_wait_long(w->pg, sql, 1, CTXT_EFFECT_MS), 1);
  assert_int_equal(
      ctxt_pg_long(w->pg, "SELECT count(*) FROM inventory.user_grants WHERE is_removed AND version = 2"), 1);
  measure(w, "77777777-0000-4000-8000-000000000002", 1, CHEESE, "\"1\"", 5, FRIDGE);
  expect_reply(w, "\"Reason\":14");
  ctxt_host_stop(w, SIGTERM);
  assert_int_equal(
      ctxt_pg_long(w->pg, "SELECT count(*) FROM inventory.events WHERE inventory_id = '" INV "'"), 2);
  unlink(templates);
}

#define TEMPLATE3 "33333333-3333-4333-8333-333333333335"

static void sql_ok(PGconn *c, const char *sql) {
  PGresult *r = PQexec(c, sql);
  if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
    fail_msg("%s: %s", sql, PQerrorMessage(c));
  PQclear(r);
}

/* Only a template's save and delete lock its row: an inventory's measurements go on while
 * a save holds it. Two first saves of one new template id for two pizzerias cannot move
 * it: the second finds the first's row and is refused UnitMismatch. */
static void template_locks_only_for_its_writers(void **state) {
  ctxt_world_t *w = *state;
  setup_inventory(w, "\"workers\": 1");
  ctxt_host_start(w, NULL);
  material(w, CHEESE, 5, 0);
  assert_int_equal(
      ctxt_pg_wait_long(w->pg, "SELECT count(*) FROM inventory.material_types", 1, CTXT_EFFECT_MS), 1);
  save_template(w, UNIT, "Bin");
  expect_reply(w, "\"Version\":1,\"Deleted\":false,\"Changed\":true");
  start(w, INV, TEMPLATE2);
  expect_reply(w, "InventoryCommandAccepted");

  /* a save in progress holds the row: a measurement of an inventory using it is not held */
  PGconn *other = ctxt_pg_connect(w->db);
  sql_ok(other, "BEGIN");
  sql_ok(other, "SELECT 1 FROM inventory.templates WHERE id = '" TEMPLATE2 "' FOR UPDATE");
  measure(w, "77777777-0000-4000-8000-000000000001", 1, CHEESE, "\"1\"", 5, FRIDGE);
  expect_reply(w, "InventoryCommandAccepted");
  sql_ok(other, "COMMIT");

  /* another pizzeria's first save of TEMPLATE3, committed while this one waits on it */
  sql_ok(other, "BEGIN");
  sql_ok(
      other,
      "INSERT INTO inventory.templates (id, unit_id, version, deleted, body, updated_by) VALUES ('" TEMPLATE3
      "', '" UNIT2 "', 1, false, '{\"id\":\"" TEMPLATE3 "\",\"unitId\":\"" UNIT2
      "\",\"name\":\"Daily\",\"category\":\"daily\",\"zones\":[{\"id\":\"" FRIDGE
      "\",\"name\":\"Fridge\",\"materialTypeIds\":[\"" CHEESE "\"]}]}', 'other')");
  command(w, "SaveInventoryTemplate",
          "{\"inventoryTemplateId\":\"" TEMPLATE3 "\",\"unitId\":\"" UNIT
          "\",\"name\":\"Daily\",\"category\":3,\"zones\":[{\"inventoryZoneId\":\"" FRIDGE
          "\",\"name\":\"Fridge\",\"materialTypeIds\":[\"" CHEESE "\"]}],\"savedBy\":\"" USER "\"}");
  assert_int_equal(
      ctxt_pg_wait_long(w->pg,
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                        " AND wait_event_type = 'Lock' AND query LIKE '%inventory.templates%'",
                        1, CTXT_EFFECT_MS),
      1);
  sql_ok(other, "COMMIT");
  PQfinish(other);
  expect_reply(w, "\"Reason\":3");
  assert_int_equal(ctxt_pg_long(w->pg,
                                "SELECT count(*) FROM inventory.templates WHERE id = '" TEMPLATE3
                                "' AND unit_id = '" UNIT2 "' AND version = 1 AND updated_by = 'other'"),
                   1);
  ctxt_host_stop(w, SIGTERM);
  unlink(templates);
}

/* `ctxd outbox resend` of this world's configuration with args; returns its exit code. */
static int resend(ctxt_world_t *w, char **args) {
  char *argv[16] = {(char *)ctxt_ctxd_path(), "outbox", "resend"};
  size_t n = 3;
  for (; args[n - 3] != NULL; n++) argv[n] = args[n - 3];
  argv[n++] = "--config";
  argv[n++] = w->config;
  argv[n] = NULL;
  char *env[] = {w->db_env, NULL};
  ctxt_proc_t p;
  ctxt_proc_spawn(&p, argv, env);
  assert_true(ctxt_proc_wait_exit(&p, 60000));
  int rc = WIFEXITED(p.status) ? WEXITSTATUS(p.status) : -1;
  ctxt_proc_free(&p);
  return rc;
}

/* The seed keeps published events for good and re-sends them when needed: with
 * archive_retention_s "keep", an operator re-sends archived events by type (and time
 * range) or by id; they arrive again with their message ids, so a consumer that handled
 * one drops the copy through its inbox. */
static void resend_archived_events(void **state) {
  ctxt_world_t *w = *state;
  setup_inventory(w, "\"workers\": 1");
  snprintf(w->host_settings, sizeof w->host_settings, ", \"outbox\": {\"archive_retention_s\": \"keep\"}");
  /* a subscriber of InventoryFinished, standing for accounting */
  char sub[96];
  snprintf(sub, sizeof sub, "%s-finished", w->endpoint);
  amqp_bytes_t x = amqp_cstring_bytes("Ctxd.Inventory.Contracts.v1:InventoryFinished");
  amqp_exchange_declare(w->amqp, 1, x, amqp_cstring_bytes("fanout"), 0, 1, 0, 0, amqp_empty_table);
  amqp_queue_declare(w->amqp, 1, amqp_cstring_bytes(sub), 0, 0, 0, 1, amqp_empty_table);
  amqp_queue_bind(w->amqp, 1, amqp_cstring_bytes(sub), x, amqp_empty_bytes, amqp_empty_table);
  assert_int_equal(amqp_get_rpc_reply(w->amqp).reply_type, AMQP_RESPONSE_NORMAL);
  ctxt_host_start(w, NULL);
  int cheese = material(w, CHEESE, 5, 0);
  assert_int_equal(
      ctxt_pg_wait_long(w->pg, "SELECT count(*) FROM inventory.material_types", 1, CTXT_EFFECT_MS), 1);
  command(w, "StartInventory",
          "{\"inventoryId\":\"" INV "\",\"unitId\":\"" UNIT "\",\"inventoryTemplateId\":\"" TEMPLATE "\","
          "\"startedBy\":\"" USER "\",\"startedAt\":\"2026-11-24T08:00:00Z\"}");
  command(w, "FinishInventory",
          "{\"inventoryId\":\"" INV "\",\"finishedBy\":\"" USER
          "\",\"finishedAt\":\"2026-11-24T09:00:00Z\"}");
  assert_int_equal(ctxt_amqp_wait_count(w->amqp, sub, 1, CTXT_EFFECT_MS), 1);
  /* the archive keeps how each row was sent: the event as an event, a reply as a reply */
  assert_int_equal(ctxt_pg_wait_long(w->pg,
                                     "SELECT count(*) FROM ctxd.outbox_archive WHERE message_type LIKE "
                                     "'%InventoryFinished' AND event AND NOT no_declare",
                                     1, CTXT_EFFECT_MS),
                   1);
  assert_int_equal(ctxt_pg_wait_long(w->pg,
                                     "SELECT count(*) FROM ctxd.outbox_archive WHERE message_type LIKE "
                                     "'%InventoryCommandAccepted' AND NOT event AND no_declare",
                                     2, CTXT_EFFECT_MS),
                   2);

  /* by type and time range: the finish again, with its message id */
  char *by_type[] = {"--message-type",
                     "Ctxd.Inventory.Contracts.v1:InventoryFinished",
                     "--since",
                     "2000-01-01",
                     "--until",
                     "2100-01-01",
                     NULL};
  assert_int_equal(resend(w, by_type), 0);
  assert_int_equal(ctxt_amqp_wait_count(w->amqp, sub, 2, CTXT_EFFECT_MS), 2);
  char first[4096], second[4096], hv[8];
  assert_int_equal(ctxt_amqp_get(w->amqp, sub, first, sizeof first, NULL, hv, sizeof hv), 1);
  assert_int_equal(ctxt_amqp_get(w->amqp, sub, second, sizeof second, NULL, hv, sizeof hv), 1);
  assert_string_equal(first, second);
  /* a time range that holds nothing re-sends nothing */
  char *none[] = {"--message-type", "Ctxd.Inventory.Contracts.v1:InventoryFinished", "--until", "2000-01-01",
                  NULL};
  assert_int_equal(resend(w, none), 0);

  /* by id: an event a consumer (Inventory's replica) already handled is dropped by its
   * inbox. The archive row stands for DataCatalog's own publication of the MaterialType
   * the test sent above: the same envelope, the same message id. */
  char body[1024], sql[2048], ep[128];
  material_body(body, sizeof body, cheese, CHEESE, 5, 0);
  snprintf(
      sql, sizeof sql,
      "WITH a AS (INSERT INTO ctxd.outbox_archive (id, message_id, exchange, message_type, body, created_at,"
      " event) VALUES (999999999, '00000000-0000-4000-a000-%012d',"
      " 'Dodo.DataCatalog.Contracts.Products.v1:MaterialType',"
      " 'Dodo.DataCatalog.Contracts.Products.v1:MaterialType', '%s', now(), true) RETURNING 1)"
      " SELECT count(*) FROM a",
      cheese, body);
  assert_int_equal(ctxt_pg_long(w->pg, sql), 1);
  snprintf(ep, sizeof ep, "%s-mt", w->endpoint);
  char *by_id[] = {"999999999", NULL};
  assert_int_equal(resend(w, by_id), 0);
  ctxt_wait_settled(w, ep, 2);
  assert_int_equal(ctxt_metric(w, ep, "ctxd_messages_duplicate_total"), 1);
  /* kept: re-sent rows are archived again, and nothing expired */
  assert_int_equal(count_archive(w, "InventoryFinished"), 2);
  ctxt_host_stop(w, SIGTERM);
  unlink(templates);
}

/* The archive row id with how it was sent (and dispatched days ago) to exchange x. */
static void archive_row(ctxt_world_t *w, int id, const char *x, int event, int no_declare, int days) {
  char sql[2048];
  snprintf(sql, sizeof sql,
           "WITH a AS (INSERT INTO ctxd.outbox_archive (id, message_id, exchange, message_type, body, "
           "created_at, dispatched_at, event, no_declare, correlation_id, headers) VALUES (%d, "
           "'00000000-0000-4000-b000-%012d', '%s', 'Ctxd.Tests.Contracts.v1:Thing', "
           "'{\"messageId\":\"00000000-0000-4000-b000-%012d\",\"message\":{}}', now(), "
           "now() - interval '%d days', %s, %s, 'corr-%d', '{\"MT-Activity-Id\": \"act-%d\"}') RETURNING 1)"
           " SELECT count(*) FROM a",
           id, id, x, id, days, event ? "true" : "false", no_declare ? "true" : "false", id, id);
  assert_int_equal(ctxt_pg_long(w->pg, sql), 1);
}

/* A re-send sends a row as it was sent: an event with its headers and correlation id; a
 * command (it might ask the payment system to refund again) only with --include-commands;
 * a reply never; a row archived before migration 14 only by id. A command keeps its
 * expiration. Rows older than the inbox retention are sent with a warning: their
 * consumers may have forgotten their ids. */
static void resend_keeps_what_was_sent(void **state) {
  ctxt_world_t *w = *state;
  setup_inventory(w, "\"workers\": 1");
  snprintf(w->host_settings, sizeof w->host_settings, ", \"outbox\": {\"archive_retention_s\": \"keep\"}");
  char x[96];
  snprintf(x, sizeof x, "%s-things", w->endpoint);
  amqp_exchange_declare(w->amqp, 1, amqp_cstring_bytes(x), amqp_cstring_bytes("fanout"), 0, 1, 0, 0,
                        amqp_empty_table);
  amqp_queue_declare(w->amqp, 1, amqp_cstring_bytes(x), 0, 0, 0, 1, amqp_empty_table);
  amqp_queue_bind(w->amqp, 1, amqp_cstring_bytes(x), amqp_cstring_bytes(x), amqp_empty_bytes,
                  amqp_empty_table);
  assert_int_equal(amqp_get_rpc_reply(w->amqp).reply_type, AMQP_RESPONSE_NORMAL);
  ctxt_host_start(w, NULL);
  archive_row(w, 999999001, x, 1, 0, 0);  /* an event */
  archive_row(w, 999999002, x, 0, 0, 0);  /* a command */
  archive_row(w, 999999003, x, 1, 0, 30); /* an event older than the inbox retention (7 days) */
  archive_row(w, 999999004, x, 0, 1, 0);  /* a reply to a requester's exchange */
  archive_row(w, 999999005, x, 0, 0, 0);  /* archived before runtime migration 14: how, not known */
  assert_int_equal(ctxt_pg_long(w->pg,
                                "WITH u AS (UPDATE ctxd.outbox_archive SET expires_at = CASE id"
                                " WHEN 999999002 THEN now() + interval '1 hour' END,"
                                " event = CASE id WHEN 999999005 THEN NULL ELSE event END,"
                                " message_type = CASE id WHEN 999999005 THEN 'Ctxd.Tests.Contracts.v1:Old'"
                                " ELSE message_type END WHERE id IN (999999002, 999999005) RETURNING 1)"
                                " SELECT count(*) FROM u"),
                   2);

  char *argv[] = {(char *)ctxt_ctxd_path(),
                  "outbox",
                  "resend",
                  "999999001",
                  "999999002",
                  "999999003",
                  "999999004",
                  "--config",
                  w->config,
                  NULL};
  char *env[] = {w->db_env, NULL};
  ctxt_proc_t p;
  ctxt_proc_spawn(&p, argv, env);
  assert_true(ctxt_proc_wait_exit(&p, 60000));
  assert_true(WIFEXITED(p.status) && WEXITSTATUS(p.status) == 0);
  assert_non_null(strstr(p.out, "warning: 1 of them were sent more than inbox.retention_s"));
  ctxt_proc_free(&p);
  assert_int_equal(ctxt_amqp_wait_count(w->amqp, x, 2, CTXT_EFFECT_MS), 2);
  for (int i = 0; i < 2; i++) {
    amqp_message_t m;
    char activity[64];
    assert_int_equal(ctxt_amqp_take(w->amqp, x, &m), 1);
    ctxt_amqp_header(&m, "MT-Activity-Id", activity, sizeof activity);
    char want_corr[32], want_act[32];
    const char *id = strstr((const char *)m.body.bytes, "b000-");
    assert_non_null(id);
    int n = atoi(id + 5);
    assert_true(n == 999999001 || n == 999999003);
    snprintf(want_corr, sizeof want_corr, "corr-%d", n);
    snprintf(want_act, sizeof want_act, "act-%d", n);
    assert_string_equal(activity, want_act);
    assert_true(m.properties._flags & AMQP_BASIC_CORRELATION_ID_FLAG);
    assert_int_equal(m.properties.correlation_id.len, strlen(want_corr));
    assert_memory_equal(m.properties.correlation_id.bytes, want_corr, strlen(want_corr));
    amqp_destroy_message(&m);
  }
  amqp_maybe_release_buffers(w->amqp);

  /* the command with --include-commands; the reply still not */
  assert_int_equal(resend(w, (char *[]){"999999002", "999999004", "--include-commands", NULL}), 0);
  assert_int_equal(ctxt_amqp_wait_count(w->amqp, x, 1, CTXT_EFFECT_MS), 1);
  assert_int_equal(ctxt_pg_wait_long(w->pg, "SELECT count(*) FROM ctxd.outbox", 0, CTXT_EFFECT_MS), 0);
  /* re-archived as they were sent: two events, one command */
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(*) FROM ctxd.outbox_archive WHERE id < 999999001 AND "
                                       "message_type = 'Ctxd.Tests.Contracts.v1:Thing' AND event"),
                   2);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(*) FROM ctxd.outbox_archive WHERE id < 999999001 AND "
                                       "message_type = 'Ctxd.Tests.Contracts.v1:Thing' AND NOT event"),
                   1);
  assert_int_equal(ctxt_amqp_queue_count(w->amqp, x), 1);
  /* the command kept its expiration */
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(*) FROM ctxd.outbox_archive WHERE id < 999999001 AND "
                                       "message_type = 'Ctxd.Tests.Contracts.v1:Thing' AND NOT event"
                                       " AND expires_at > now()"),
                   1);

  /* a row archived before the archive kept how it was sent may have been a reply: no filter
   * selects it, even with --include-commands; by id it goes, as a command */
  assert_int_equal(
      resend(w, (char *[]){"--message-type", "Ctxd.Tests.Contracts.v1:Old", "--include-commands", NULL}), 0);
  assert_int_equal(resend(w, (char *[]){"999999005", "--include-commands", NULL}), 0);
  assert_int_equal(ctxt_amqp_wait_count(w->amqp, x, 2, CTXT_EFFECT_MS), 2);
  assert_int_equal(ctxt_pg_wait_long(w->pg, "SELECT count(*) FROM ctxd.outbox", 0, CTXT_EFFECT_MS), 0);
  /* sent once: by id, not by the filter */
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(*) FROM ctxd.outbox_archive"
                                       " WHERE message_type = 'Ctxd.Tests.Contracts.v1:Old'"),
                   2);
  assert_int_equal(ctxt_amqp_queue_count(w->amqp, x), 2);
  ctxt_host_stop(w, SIGTERM);
  unlink(templates);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(full_audit, ctxt_world_setup, ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(two_workers_lose_no_update, ctxt_world_setup, ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(resend_archived_events, ctxt_world_setup, ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(resend_keeps_what_was_sent, ctxt_world_setup, ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(template_locks_only_for_its_writers, ctxt_world_setup,
                                      ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(office_manager_keeps_templates, ctxt_world_setup, ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(pizzeria_must_exist, ctxt_world_setup, ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(user_needs_a_grant, ctxt_world_setup, ctxt_world_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
