/* The DataCatalog consumer against the real servers: MaterialType as DataCatalog's
 * MassTransit publishes it (camelCase) and as older publishers did (PascalCase), out of
 * order, duplicated, and deleted (a tombstone): the replica ends right. Countries,
 * departments and pizzerias follow the same version rule. */
#include "hostfixture.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

#define V1 "Dodo.DataCatalog.Contracts.Products.v1:MaterialType"
#define A "6f1e3a52-3a55-4d47-9a0e-2b1c6f3d9a10"
#define B "7a2e3a52-3a55-4d47-9a0e-2b1c6f3d9a11"

static int sent;

static void material(ctxt_world_t *w, const char *id, int version, const char *name, int removed,
                     int pascal) {
  char body[2048];
  snprintf(
      body, sizeof body,
      pascal ? "{\"MessageId\":\"00000000-0000-4000-8000-0000000001%02d\",\"MessageType\":[\"urn:message:" V1
               "\"],"
               "\"Message\":{\"Id\":\"%s\",\"Version\":%d,\"CountryId\":643,"
               "\"DepartmentId\":\"0d5b0000-8f0e-4c2a-b2f1-1a2b3c4d5e6f\",\"Name\":\"%s\",\"Category\":1,"
               "\"BasicUnitOfMeasure\":5,\"IsRemoved\":%s}}"
             : "{\"messageId\":\"00000000-0000-4000-8000-0000000001%02d\",\"messageType\":[\"urn:message:" V1
               "\"],"
               "\"message\":{\"id\":\"%s\",\"version\":%d,\"countryId\":643,"
               "\"departmentId\":\"0d5b0000-8f0e-4c2a-b2f1-1a2b3c4d5e6f\",\"name\":\"%s\",\"category\":1,"
               "\"basicUnitOfMeasure\":5,\"isRemoved\":%s}}",
      sent++, id, version, name, removed ? "true" : "false");
  ctxt_amqp_publish(w->amqp, w->endpoint, "application/vnd.masstransit+json", body, NULL, NULL);
}

static void replica_follows_versions(void **state) {
  ctxt_world_t *w = *state;
  snprintf(w->plugins, sizeof w->plugins,
           "[{\"name\": \"datacatalog\", \"settings\": {\"endpoint\": \"%s\"}}]", w->endpoint);
  ctxt_host_start(w, NULL);
  material(w, A, 2, "Mozzarella", 0, 0);
  material(w, A, 1, "Mozarela", 0, 1);    /* older, late: ignored */
  material(w, A, 2, "Mozzarella!", 0, 1); /* equal version, other name: ignored */
  material(w, B, 5, "Box", 0, 1);
  material(w, A, 3, "Mozzarella", 1, 0); /* deleted: a tombstone */
  material(w, A, 2, "Mozzarella", 0, 0); /* older again */
  assert_int_equal(ctxt_pg_wait_long(w->pg, "SELECT count(*) FROM ctxd.inbox", 6, CTXT_EFFECT_MS), 6);
  ctxt_host_stop(w, SIGTERM);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(*) FROM datacatalog.material_types"), 2);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT version FROM datacatalog.material_types WHERE id = '" A "'"),
                   3);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(*) FROM datacatalog.material_types WHERE id = '" A "'"
                                       " AND is_removed AND name = 'Mozzarella' AND external_code IS NULL"),
                   1);
  assert_int_equal(
      ctxt_pg_long(w->pg,
                   "SELECT version FROM datacatalog.material_types WHERE id = '" B "'"
                   " AND NOT is_removed AND name = 'Box' AND category = 1 AND basic_unit_of_measure = 5"
                   " AND country_id = 643"),
      5);
}

static void organization(ctxt_world_t *w, const char *type, const char *message) {
  char body[2048];
  snprintf(body, sizeof body,
           "{\"messageId\":\"00000000-0000-4000-8000-0000000002%02d\",\"messageType\":[\"urn:message:"
           "Dodo.DataCatalog.Contracts.Organization.v1:%s\"],\"message\":%s}",
           sent++, type, message);
  ctxt_amqp_publish(w->amqp, w->endpoint, "application/vnd.masstransit+json", body, NULL, NULL);
}

/* Seed 001: DataCatalog provides the materials, countries, departments and pizzerias. */
static void organization_replicas_follow_versions(void **state) {
  ctxt_world_t *w = *state;
  snprintf(w->plugins, sizeof w->plugins,
           "[{\"name\": \"datacatalog\", \"settings\": {\"endpoint\": \"%s\"}}]", w->endpoint);
  ctxt_host_start(w, NULL);
  organization(w, "Country",
               "{\"id\":643,\"version\":2,\"name\":\"Russia\",\"code\":\"RU\",\"isRemoved\":false}");
  organization(w, "Country",
               "{\"id\":643,\"version\":1,\"name\":\"Rossiya\",\"code\":\"RU\",\"isRemoved\":false}");
  organization(w, "Department",
               "{\"id\":\"" B
               "\",\"version\":1,\"countryId\":643,\"name\":\"Syktyvkar\",\"isRemoved\":false}");
  organization(w, "Unit",
               "{\"id\":\"" A "\",\"version\":1,\"countryId\":643,\"departmentId\":\"" B
               "\",\"name\":\"Syktyvkar-1\",\"isRemoved\":false}");
  organization(w, "Unit",
               "{\"id\":\"" A "\",\"version\":4,\"countryId\":643,\"departmentId\":\"" B
               "\",\"name\":\"Syktyvkar-1\",\"isRemoved\":true}");
  assert_int_equal(ctxt_pg_wait_long(w->pg, "SELECT count(*) FROM ctxd.inbox", 5, CTXT_EFFECT_MS), 5);
  ctxt_host_stop(w, SIGTERM);
  assert_int_equal(ctxt_pg_long(w->pg,
                                "SELECT count(*) FROM datacatalog.countries WHERE id = 643 AND version = 2"
                                " AND name = 'Russia' AND code = 'RU'"),
                   1);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(*) FROM datacatalog.departments WHERE country_id = 643"),
                   1);
  assert_int_equal(ctxt_pg_long(w->pg,
                                "SELECT version FROM datacatalog.units WHERE id = '" A "' AND is_removed"
                                " AND department_id = '" B "'"),
                   4);
}

/* The same message twice (a redelivery, or DataCatalog's outbox sending again) changes
 * the replica once: the inbox drops the second. */
static void duplicate_message_is_dropped(void **state) {
  ctxt_world_t *w = *state;
  snprintf(w->plugins, sizeof w->plugins,
           "[{\"name\": \"datacatalog\", \"settings\": {\"endpoint\": \"%s\"}}]", w->endpoint);
  ctxt_host_start(w, NULL);
  sent = 50;
  material(w, A, 1, "Flour", 0, 0);
  sent = 50;
  material(w, A, 1, "Flour", 0, 0);
  assert_int_equal(ctxt_amqp_wait_count(w->amqp, w->endpoint, 0, CTXT_EFFECT_MS), 0);
  assert_int_equal(
      ctxt_pg_wait_long(w->pg, "SELECT count(*) FROM datacatalog.material_types", 1, CTXT_EFFECT_MS), 1);
  ctxt_wait_settled(w, w->endpoint, 2);
  ctxt_host_stop(w, SIGTERM);
  assert_non_null(strstr(w->host.out, "handled 1, duplicates 1"));
}

/* 1 when a line of the host's log at `level` holds text */
static int logged_at(const char *out, const char *level, const char *text) {
  char tag[32];
  snprintf(tag, sizeof tag, "\"level\":\"%s\"", level);
  for (const char *at = out; (at = strstr(at, text)) != NULL; at++) {
    const char *line = at;
    while (line > out && line[-1] != '\n') line--;
    const char *found = strstr(line, tag);
    if (found != NULL && found < at) return 1;
  }
  return 0;
}

/* Each change the replica takes is one info line naming the material, its version and
 * name, and what happened (README.md tells newcomers to look for it); a version the
 * replica already has or has passed is logged at debug, and never as applied. */
static void applied_changes_are_logged(void **state) {
  ctxt_world_t *w = *state;
  snprintf(w->plugins, sizeof w->plugins,
           "[{\"name\": \"datacatalog\", \"settings\": {\"endpoint\": \"%s\"}}]", w->endpoint);
  snprintf(w->host_settings, sizeof w->host_settings, ", \"log\": {\"level\": \"debug\"}");
  /* one worker: the messages are applied in the order sent */
  snprintf(w->endpoint_settings, sizeof w->endpoint_settings, "\"workers\": 1");
  ctxt_host_start(w, NULL);
  sent = 70;
  material(w, B, 1, "Gorgonzola", 0, 0);
  material(w, B, 2, "Gorgonzola DOP", 0, 1);
  material(w, B, 1, "Gorgonzola late", 0, 0); /* older, late */
  material(w, B, 3, "Gorgonzola DOP", 1, 0);
  assert_int_equal(ctxt_pg_wait_long(w->pg, "SELECT count(*) FROM ctxd.inbox", 4, CTXT_EFFECT_MS), 4);
  ctxt_host_stop(w, SIGTERM);
  const char *out = w->host.out;
  assert_true(logged_at(out, "info", "material type " B " version 1 'Gorgonzola' applied: inserted"));
  assert_true(logged_at(out, "info", "material type " B " version 2 'Gorgonzola DOP' applied: updated"));
  assert_true(logged_at(out, "info", "material type " B " version 3 'Gorgonzola DOP' applied: removed"));
  assert_true(logged_at(out, "debug", "material type " B " version 1 'Gorgonzola late' ignored: "));
  assert_null(strstr(out, "'Gorgonzola late' applied"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(replica_follows_versions, ctxt_world_setup, ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(duplicate_message_is_dropped, ctxt_world_setup, ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(organization_replicas_follow_versions, ctxt_world_setup,
                                      ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(applied_changes_are_logged, ctxt_world_setup, ctxt_world_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
