#include "store.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

int inventory_store_load(const ctxd_api_t *api, ctxd_tx_t *tx, const char *id, inventory_state_t *s) {
  ctxd_rows_t *rows;
  const char *params[] = {id, "0"};
  int rc = api->sql_exec(tx,
                         "SELECT version, body FROM inventory.snapshots WHERE inventory_id = $1 "
                         "ORDER BY version DESC LIMIT 1",
                         1, params, &rows);
  if (rc != 0) return rc;
  char after[24] = "0";
  if (api->rows_count(rows) == 1) {
    rc = inventory_snapshot_decode(api->rows_value(rows, 0, 1), s);
    snprintf(after, sizeof after, "%s", api->rows_value(rows, 0, 0));
  }
  api->rows_free(rows);
  if (rc != 0) return rc;
  params[1] = after;
  rc = api->sql_exec(tx,
                     "SELECT type, body FROM inventory.events WHERE inventory_id = $1 AND version > $2 "
                     "ORDER BY version",
                     2, params, &rows);
  if (rc != 0) return rc;
  for (int i = 0; rc == 0 && i < api->rows_count(rows); i++) {
    inventory_event_t ev;
    rc = inventory_event_decode(api->rows_value(rows, i, 0), api->rows_value(rows, i, 1), &ev);
    if (rc == 0) rc = inventory_state_apply(s, &ev);
  }
  api->rows_free(rows);
  return rc;
}

int inventory_store_append(const ctxd_api_t *api, ctxd_tx_t *tx, const inventory_event_t *ev,
                           const inventory_state_t *after, int64_t snapshot_every) {
  char *body, version[24];
  int rc = inventory_event_encode(ev, &body);
  if (rc != 0) return rc;
  snprintf(version, sizeof version, "%" PRId64, ev->version);
  const char *params[] = {ev->inventory_id, version, inventory_event_type_name(ev->kind), body};
  rc = api->sql_exec(
      tx, "INSERT INTO inventory.events (inventory_id, version, type, body) VALUES ($1, $2, $3, $4)", 4,
      params, NULL);
  free(body);
  if (rc != 0 || snapshot_every <= 0 || ev->version % snapshot_every != 0) return rc;
  if ((rc = inventory_snapshot_encode(after, &body)) != 0) return rc;
  const char *snap[] = {ev->inventory_id, version, body};
  rc = api->sql_exec(tx, "INSERT INTO inventory.snapshots (inventory_id, version, body) VALUES ($1, $2, $3)",
                     3, snap, NULL);
  free(body);
  return rc;
}
