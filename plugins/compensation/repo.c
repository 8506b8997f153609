/* The compensation order repository (repo.h). */
#include "repo.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Statement parameters: one per column, plus the id and the old version of an update. */
#define COMPENSATION_REPO_PARAMS (COMPENSATION_FIELD_COUNT + 3)

typedef struct {
  int n;
  const char *values[COMPENSATION_REPO_PARAMS];
  char *owned[COMPENSATION_REPO_PARAMS]; /* texts made for the statement, freed after */
  json_t *row;                           /* the order's columns: string values point into it */
  char sets[COMPENSATION_REPO_PARAMS * 48];
  size_t used;
} compensation_params_t;

/* Appends a value as statement text: strings as they are, integers in decimal, objects as
 * JSON (the column's type comes from the statement). CTXD_ENOMEM when out of memory. */
static int compensation_param(compensation_params_t *p, const char *column, const json_t *v) {
  if (json_is_string(v)) {
    p->values[p->n] = json_string_value(v);
  } else {
    char *text = NULL;
    if (json_is_integer(v)) {
      if (asprintf(&text, "%" JSON_INTEGER_FORMAT, json_integer_value(v)) < 0) text = NULL;
    } else {
      text = json_dumps(v, JSON_COMPACT);
    }
    if (text == NULL) return CTXD_ENOMEM;
    p->values[p->n] = p->owned[p->n] = text;
  }
  p->n++;
  p->used += (size_t)snprintf(p->sets + p->used, sizeof p->sets - p->used, "%s%s = $%d", p->n > 1 ? ", " : "",
                              column, p->n);
  return 0;
}

static void compensation_params_free(compensation_params_t *p) {
  for (int i = 0; i < p->n; i++) free(p->owned[i]);
  json_decref(p->row);
}

/* Parameters for the columns in `fields`, from the order's column object. */
static int compensation_params_of(compensation_params_t *p, const compensation_order_t *o, uint32_t fields,
                                  const json_t *extras) {
  p->row = compensation_order_encode(o);
  int rc = p->row == NULL ? CTXD_ENOMEM : 0;
  for (uint32_t bit = 1; rc == 0 && bit <= fields; bit <<= 1)
    if (fields & bit)
      rc = compensation_param(p, compensation_field_name(bit),
                              json_object_get(p->row, compensation_field_name(bit)));
  if (rc == 0 && extras != NULL) rc = compensation_param(p, "contract_extras", extras);
  return rc;
}

int compensation_repo_load(const ctxd_api_t *api, ctxd_tx_t *tx, const char *id, compensation_order_t *o,
                           json_t **extras, int *found) {
  ctxd_rows_t *rows;
  const char *params[] = {id};
  *found = 0;
  *extras = NULL;
  int rc = api->sql_exec(tx, "SELECT row_to_json(o)::text FROM compensation.orders o WHERE id = $1", 1,
                         params, &rows);
  if (rc != 0) return rc;
  if (api->rows_count(rows) == 1) {
    json_t *row = json_loads(api->rows_value(rows, 0, 0), 0, NULL);
    rc = row != NULL && compensation_order_decode(row, o, NULL) == 0 ? 0 : CTXD_EDECODE;
    if (rc == 0) *extras = json_incref(json_object_get(row, "contract_extras"));
    *found = rc == 0;
    json_decref(row);
  }
  api->rows_free(rows);
  return rc;
}

int compensation_repo_insert(const ctxd_api_t *api, ctxd_tx_t *tx, const compensation_order_t *o,
                             const json_t *extras) {
  compensation_params_t p = {0};
  int rc = compensation_params_of(&p, o, COMPENSATION_FIELD_ALL, extras);
  char sql[2048], columns[1024] = "", values[256] = "";
  size_t c = 0, v = 0;
  for (int i = 0; rc == 0 && i < p.n; i++) {
    const char *name = i < COMPENSATION_FIELD_COUNT ? compensation_field_name(1u << i) : "contract_extras";
    c += (size_t)snprintf(columns + c, sizeof columns - c, "%s%s", i ? ", " : "", name);
    v += (size_t)snprintf(values + v, sizeof values - v, "%s$%d", i ? ", " : "", i + 1);
  }
  snprintf(sql, sizeof sql, "INSERT INTO compensation.orders (%s) VALUES (%s)", columns, values);
  if (rc == 0) rc = api->sql_exec(tx, sql, p.n, p.values, NULL);
  compensation_params_free(&p);
  return rc;
}

int compensation_repo_update(const ctxd_api_t *api, ctxd_tx_t *tx, uint32_t old_version,
                             const compensation_order_t *o, uint32_t changed, const json_t *extras) {
  compensation_params_t p = {0};
  char sql[2048], version[16];
  ctxd_rows_t *rows = NULL;
  int rc = compensation_params_of(&p, o, changed, extras);
  if (rc == 0 && p.n == 0) {
    compensation_params_free(&p);
    return 0;
  }
  snprintf(version, sizeof version, "%" PRIu32, old_version);
  p.values[p.n] = o->id;
  p.values[p.n + 1] = version;
  snprintf(sql, sizeof sql, "UPDATE compensation.orders SET %s WHERE id = $%d AND version = $%d", p.sets,
           p.n + 1, p.n + 2);
  if (rc == 0) rc = api->sql_exec(tx, sql, p.n + 2, p.values, &rows);
  /* no row at that version: another writer changed the order since it was loaded */
  if (rc == 0 && api->rows_affected(rows) != 1) rc = CTXD_ECONFLICT;
  if (rows != NULL) api->rows_free(rows);
  compensation_params_free(&p);
  return rc;
}
