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
