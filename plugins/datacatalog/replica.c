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
};

/* Columns of each table after id and version, and the statement's parameters in that
 * order: id, version, then these. */
static const char *const org_tables[ORG_KINDS] = {"countries", "departments", "units"};
static const char *const org_columns[ORG_KINDS][4] = {
    [ORG_COUNTRY] = {"name", "code", "is_removed", NULL},
    [ORG_DEPARTMENT] = {"country_id", "name", "is_removed", NULL},
    [ORG_UNIT] = {"country_id", "department_id", "name", "is_removed"},
};

/* The newer-version upsert of material_replica_apply for one organization table. */
static int org_upsert(const ctxd_api_t *api, ctxd_tx_t *tx, const char *schema, org_kind_t kind,
                      const char *const *params, int *applied) {
  char sql[1024], cols[256] = "id, version", vals[64] = "$1, $2", set[512] = "version = EXCLUDED.version";
  int n = 2;
  for (int c = 0; c < 4 && org_columns[kind][c] != NULL; c++, n++) {
    const char *col = org_columns[kind][c];
    snprintf(cols + strlen(cols), sizeof cols - strlen(cols), ", %s", col);
    snprintf(vals + strlen(vals), sizeof vals - strlen(vals), ", $%d", n + 1);
    snprintf(set + strlen(set), sizeof set - strlen(set), ", %s = EXCLUDED.%s", col, col);
  }
  snprintf(sql, sizeof sql,
           "INSERT INTO %s.%s AS t (%s) VALUES (%s) ON CONFLICT (id) DO UPDATE SET %s, updated_at = now() "
           "WHERE t.version < EXCLUDED.version RETURNING 1",
           schema, org_tables[kind], cols, vals, set);
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
  if (rc == CTXD_EVALIDATION) {
    api->tx_fault(tx, "DataCatalog.Undecodable", err);
    return CTXD_HANDLER_FAIL;
  }
  if (rc == CTXD_ECONFLICT) return CTXD_HANDLER_RETRY;
  if (rc != 0) {
    api->tx_fault(tx, "DataCatalog.StoreFailed",
                  api->tx_error(tx)[0] ? api->tx_error(tx) : ctxd_strerror(rc));
    return CTXD_HANDLER_FAIL;
  }
  return CTXD_HANDLER_OK;
}
