#include "replica.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

ctxd_handler_result_t material_replica_apply(const ctxd_api_t *api, ctxd_tx_t *tx, const ctxd_msg_t *msg,
                                             const char *table,
                                             ctxd_c_data_catalog_products_v2_material_type_t *m,
                                             material_change_t *change) {
  size_t len;
  const char *body = api->msg_body(msg, &len);
  char err[512];
  *change = MATERIAL_IGNORED;
  /* the host validated it against its contract: a failure here is a bug, not bad input */
  if (ctxd_c_data_catalog_products_v2_material_type_decode(body, len, m, err, sizeof err) != 0) {
    api->tx_fault(tx, "DataCatalog.Undecodable", err);
    return CTXD_HANDLER_FAIL;
  }
  /* RETURNING gives a row only when the row changed; xmax is 0 in a row the statement
   * inserted, the updating transaction's id in one it updated */
  char sql[1024], version[24], country[24], category[16], unit[16];
  snprintf(sql, sizeof sql,
           "INSERT INTO %s AS t (id, version, country_id, department_id, name, category, "
           "basic_unit_of_measure, is_removed, external_code) "
           "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) "
           "ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version, country_id = EXCLUDED.country_id, "
           "department_id = EXCLUDED.department_id, name = EXCLUDED.name, category = EXCLUDED.category, "
           "basic_unit_of_measure = EXCLUDED.basic_unit_of_measure, is_removed = EXCLUDED.is_removed, "
           "external_code = EXCLUDED.external_code, updated_at = now() "
           "WHERE t.version < EXCLUDED.version "
           "RETURNING t.xmax = 0",
           table);
  snprintf(version, sizeof version, "%" PRId64, m->version);
  snprintf(country, sizeof country, "%" PRId64, m->country_id);
  snprintf(category, sizeof category, "%" PRId32, m->category);
  snprintf(unit, sizeof unit, "%" PRId32, m->basic_unit_of_measure);
  const char *params[] = {m->id,           version,  country, m->department_id,
                          m->name,         category, unit,    m->is_removed ? "true" : "false",
                          m->external_code};
  ctxd_rows_t *rows = NULL;
  int rc = api->sql_exec(tx, sql, 9, params, &rows);
  if (rc == CTXD_ECONFLICT) return CTXD_HANDLER_RETRY;
  if (rc != 0) {
    api->tx_fault(tx, "DataCatalog.StoreFailed", api->tx_error(tx));
    return CTXD_HANDLER_FAIL;
  }
  if (api->rows_count(rows) == 1) {
    const char *inserted = api->rows_value(rows, 0, 0);
    *change = m->is_removed                                    ? MATERIAL_REMOVED
              : inserted != NULL && strcmp(inserted, "t") == 0 ? MATERIAL_INSERTED
                                                               : MATERIAL_UPDATED;
  }
  api->rows_free(rows);
  return CTXD_HANDLER_OK;
}

const char *const org_message_types[ORG_KINDS] = {
    [ORG_COUNTRY] = CTXD_C_DATA_CATALOG_ORGANIZATION_V1_COUNTRY_TYPE,
    [ORG_DEPARTMENT] = CTXD_C_DATA_CATALOG_ORGANIZATION_V1_DEPARTMENT_TYPE,
    [ORG_UNIT] = CTXD_C_DATA_CATALOG_ORGANIZATION_V1_UNIT_TYPE,
    [ORG_USER_GRANT] = CTXD_C_AUTH_V1_USER_UNIT_GRANT_TYPE,
};

/* Each table: its key, its columns (the key's first) in the order of the statement's
 * parameters, and the publisher its faults name. */
static const struct {
  const char *table, *key;
  int key_columns;
  const char *columns[6];
  const char *publisher;
} org_tables[ORG_KINDS] = {
    [ORG_COUNTRY] = {"countries", "id", 1, {"id", "version", "name", "code", "is_removed"}, "DataCatalog"},
    [ORG_DEPARTMENT] =
        {"departments", "id", 1, {"id", "version", "country_id", "name", "is_removed"}, "DataCatalog"},
    [ORG_UNIT] = {"units",
                  "id",
                  1,
                  {"id", "version", "country_id", "department_id", "name", "is_removed"},
                  "DataCatalog"},
    [ORG_USER_GRANT] =
        {"user_grants", "user_id, unit_id", 2, {"user_id", "unit_id", "version", "is_removed"}, "Auth"},
};

/* The newer-version upsert of material_replica_apply for one table. */
static int org_upsert(const ctxd_api_t *api, ctxd_tx_t *tx, const char *schema, org_kind_t kind,
                      const char *const *params, int *applied) {
  char sql[1024], cols[256] = "", vals[64] = "", set[512] = "";
  int n = 0;
  for (; n < 6 && org_tables[kind].columns[n] != NULL; n++) {
    const char *col = org_tables[kind].columns[n];
    snprintf(cols + strlen(cols), sizeof cols - strlen(cols), "%s%s", n ? ", " : "", col);
    snprintf(vals + strlen(vals), sizeof vals - strlen(vals), "%s$%d", n ? ", " : "", n + 1);
    if (n >= org_tables[kind].key_columns)
      snprintf(set + strlen(set), sizeof set - strlen(set), "%s = EXCLUDED.%s, ", col, col);
  }
  snprintf(sql, sizeof sql,
           "INSERT INTO %s.%s AS t (%s) VALUES (%s) ON CONFLICT (%s) DO UPDATE SET %supdated_at = now() "
           "WHERE t.version < EXCLUDED.version RETURNING 1",
           schema, org_tables[kind].table, cols, vals, org_tables[kind].key, set);
  ctxd_rows_t *rows = NULL;
  int rc = api->sql_exec(tx, sql, n, params, &rows);
  if (rc == 0) *applied = api->rows_count(rows) == 1;
  if (rows != NULL) api->rows_free(rows);
  return rc;
}

ctxd_handler_result_t org_replica_apply(const ctxd_api_t *api, ctxd_tx_t *tx, const ctxd_msg_t *msg,
                                        const char *schema, org_kind_t kind, int *applied) {
  size_t len;
  const char *body = api->msg_body(msg, &len);
  char err[512], version[24], country[24];
  int rc;
  *applied = 0;
  /* the host validated it against its contract: a failure to decode is a bug, not bad input */
  switch (kind) {
  case ORG_COUNTRY: {
    ctxd_c_data_catalog_organization_v1_country_t m;
    if ((rc = ctxd_c_data_catalog_organization_v1_country_decode(body, len, &m, err, sizeof err)) == 0) {
      char id[24];
      snprintf(id, sizeof id, "%" PRId64, m.id);
      snprintf(version, sizeof version, "%" PRId64, m.version);
      const char *params[] = {id, version, m.name, m.code, m.is_removed ? "true" : "false"};
      rc = org_upsert(api, tx, schema, kind, params, applied);
    }
    ctxd_c_data_catalog_organization_v1_country_free(&m);
    break;
  }
  case ORG_DEPARTMENT: {
    ctxd_c_data_catalog_organization_v1_department_t m;
    if ((rc = ctxd_c_data_catalog_organization_v1_department_decode(body, len, &m, err, sizeof err)) == 0) {
      snprintf(version, sizeof version, "%" PRId64, m.version);
      snprintf(country, sizeof country, "%" PRId64, m.country_id);
      const char *params[] = {m.id, version, country, m.name, m.is_removed ? "true" : "false"};
      rc = org_upsert(api, tx, schema, kind, params, applied);
    }
    ctxd_c_data_catalog_organization_v1_department_free(&m);
    break;
  }
  case ORG_USER_GRANT: {
    ctxd_c_auth_v1_user_unit_grant_t m;
    if ((rc = ctxd_c_auth_v1_user_unit_grant_decode(body, len, &m, err, sizeof err)) == 0) {
      snprintf(version, sizeof version, "%" PRId64, m.version);
      const char *params[] = {m.user_id, m.unit_id, version, m.is_removed ? "true" : "false"};
      rc = org_upsert(api, tx, schema, kind, params, applied);
    }
    ctxd_c_auth_v1_user_unit_grant_free(&m);
    break;
  }
  default: {
    ctxd_c_data_catalog_organization_v1_unit_t m;
    if ((rc = ctxd_c_data_catalog_organization_v1_unit_decode(body, len, &m, err, sizeof err)) == 0) {
      snprintf(version, sizeof version, "%" PRId64, m.version);
      snprintf(country, sizeof country, "%" PRId64, m.country_id);
      const char *params[] = {
          m.id, version, country, m.department_id, m.name, m.is_removed ? "true" : "false"};
      rc = org_upsert(api, tx, schema, kind, params, applied);
    }
    ctxd_c_data_catalog_organization_v1_unit_free(&m);
  }
  }
  char fault[32];
  if (rc == CTXD_EVALIDATION) {
    snprintf(fault, sizeof fault, "%s.Undecodable", org_tables[kind].publisher);
    api->tx_fault(tx, fault, err);
    return CTXD_HANDLER_FAIL;
  }
  if (rc == CTXD_ECONFLICT) return CTXD_HANDLER_RETRY;
  if (rc != 0) {
    snprintf(fault, sizeof fault, "%s.StoreFailed", org_tables[kind].publisher);
    api->tx_fault(tx, fault, api->tx_error(tx)[0] ? api->tx_error(tx) : ctxd_strerror(rc));
    return CTXD_HANDLER_FAIL;
  }
  return CTXD_HANDLER_OK;
}
