#include "templates.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const categories[] = {"monthly", "weekly", "daily"};

void template_release(owned_template_t *o) {
  for (size_t z = 0; z < o->t.zone_count && o->t.zones != NULL; z++)
    free((void *)o->t.zones[z].material_type_ids);
  free((void *)o->t.zones);
  json_decref(o->json);
  memset(o, 0, sizeof *o);
}

int template_parse(json_t *j, owned_template_t *out) {
  memset(out, 0, sizeof *out);
  if (!json_is_object(j)) return CTXD_EDECODE;
  out->json = json_incref(j);
  inventory_template_t *tp = &out->t;
  json_t *zones = json_object_get(j, "zones");
  tp->id = json_string_value(json_object_get(j, "id"));
  tp->unit_id = json_string_value(json_object_get(j, "unitId"));
  tp->name = json_string_value(json_object_get(j, "name"));
  const char *category = json_string_value(json_object_get(j, "category"));
  for (int c = 0; category != NULL && c < 3; c++)
    if (strcmp(category, categories[c]) == 0) tp->category = (inventory_category_t)(c + 1);
  size_t n = json_array_size(zones);
  inventory_zone_t *zs = calloc(n ? n : 1, sizeof *zs);
  if (zs == NULL) {
    template_release(out);
    return CTXD_ENOMEM;
  }
  tp->zones = zs;
  for (size_t z = 0; z < n; z++, tp->zone_count++) {
    json_t *zone = json_array_get(zones, z), *mats = json_object_get(zone, "materialTypeIds");
    zs[z].id = json_string_value(json_object_get(zone, "id"));
    zs[z].name = json_string_value(json_object_get(zone, "name"));
    zs[z].material_count = json_array_size(mats);
    const char **ids = calloc(zs[z].material_count ? zs[z].material_count : 1, sizeof *ids);
    if (ids == NULL) {
      template_release(out);
      return CTXD_ENOMEM;
    }
    for (size_t m = 0; m < zs[z].material_count; m++) ids[m] = json_string_value(json_array_get(mats, m));
    zs[z].material_type_ids = ids;
  }
  return 0;
}

char *template_encode(const inventory_template_t *t) {
  json_t *zones = json_array();
  for (size_t z = 0; zones != NULL && z < t->zone_count; z++) {
    json_t *ids = json_array();
    for (size_t m = 0; ids != NULL && m < t->zones[z].material_count; m++)
      json_array_append_new(ids, json_string(t->zones[z].material_type_ids[m]));
    json_array_append_new(zones, json_pack("{s:s, s:s, s:o*}", "id", t->zones[z].id, "name", t->zones[z].name,
                                           "materialTypeIds", ids));
  }
  int c = (int)t->category;
  json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:o*}", "id", t->id, "unitId", t->unit_id, "name", t->name,
                        "category", c >= 1 && c <= 3 ? categories[c - 1] : "", "zones", zones);
  char *text = j != NULL ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
  json_decref(j);
  return text;
}

int template_seeds_load(const char *path, template_seeds_t *out, char *why, size_t whylen) {
  memset(out, 0, sizeof *out);
  json_error_t e;
  json_t *all = json_load_file(path, 0, &e);
  if (!json_is_array(all)) {
    snprintf(why, whylen, "%s (line %d)", all == NULL ? e.text : "not an array", e.line);
    json_decref(all);
    return CTXD_ECONFIG;
  }
  size_t n = json_array_size(all);
  int rc = (out->items = calloc(n ? n : 1, sizeof *out->items)) != NULL ? 0 : CTXD_ENOMEM;
  for (size_t i = 0; rc == 0 && i < n; i++) {
    rc = template_parse(json_array_get(all, i), &out->items[i]);
    if (rc == 0) out->count++;
    inventory_rejection_t r;
    if (rc == CTXD_EDECODE || (rc == 0 && inventory_template_validate(&out->items[i].t, &r) != 0)) {
      snprintf(why, whylen, "template %zu: %s", i, rc == 0 ? r.text : "not an object");
      rc = CTXD_ECONFIG;
    }
  }
  json_decref(all);
  return rc;
}

void template_seeds_free(template_seeds_t *s) {
  for (size_t i = 0; i < s->count; i++) template_release(&s->items[i]);
  free(s->items);
  memset(s, 0, sizeof *s);
}

int template_get(const ctxd_api_t *api, ctxd_tx_t *tx, const template_seeds_t *seeds, const char *id,
                 bool for_update, owned_template_t *own, const inventory_template_t **t, bool *deleted) {
  memset(own, 0, sizeof *own);
  *t = NULL;
  *deleted = false;
  ctxd_rows_t *rows;
  const char *params[] = {id};
  int rc = api->sql_exec(tx,
                         for_update ? "SELECT deleted, body FROM inventory.templates WHERE id = $1 FOR UPDATE"
                                    : "SELECT deleted, body FROM inventory.templates WHERE id = $1",
                         1, params, &rows);
  if (rc != 0) return rc;
  if (api->rows_count(rows) == 1) {
    *deleted = api->rows_value(rows, 0, 0)[0] == 't';
    json_t *j = *deleted ? NULL : json_loads(api->rows_value(rows, 0, 1), 0, NULL);
    rc = *deleted ? 0 : j == NULL ? CTXD_EDECODE : template_parse(j, own);
    json_decref(j);
    api->rows_free(rows);
    if (rc == 0 && !*deleted) *t = &own->t;
    return rc;
  }
  api->rows_free(rows);
  /* the seeds are shared by the workers: borrowed, never parsed again (no reference
   * counting across threads) */
  for (size_t i = 0; seeds != NULL && i < seeds->count; i++)
    if (strcmp(seeds->items[i].t.id, id) == 0) *t = &seeds->items[i].t;
  return 0;
}

int template_put(const ctxd_api_t *api, ctxd_tx_t *tx, const inventory_template_t *t, bool deleted,
                 const char *by, int64_t *version) {
  char *body = template_encode(t);
  if (body == NULL) return CTXD_ENOMEM;
  const char *params[] = {t->id, t->unit_id, deleted ? "true" : "false", body, by};
  ctxd_rows_t *rows;
  int rc =
      api->sql_exec(tx,
                    "INSERT INTO inventory.templates AS t (id, unit_id, version, deleted, body, updated_by) "
                    "VALUES ($1, $2, 1, $3, $4, $5) ON CONFLICT (id) DO UPDATE SET "
                    "version = t.version + 1, deleted = EXCLUDED.deleted, body = EXCLUDED.body, "
                    "updated_by = EXCLUDED.updated_by, updated_at = now() WHERE t.unit_id = EXCLUDED.unit_id "
                    "RETURNING version",
                    5, params, &rows);
  free(body);
  if (rc != 0) return rc;
  /* no row: a first save of the same id for another pizzeria committed after our read */
  rc = api->rows_count(rows) == 1 ? 0 : CTXD_ECONFLICT;
  if (rc == 0) *version = strtoll(api->rows_value(rows, 0, 0), NULL, 10);
  api->rows_free(rows);
  return rc;
}
