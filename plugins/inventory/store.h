/* Inventory's event store in PostgreSQL: events per aggregate with a unique
 * (inventory_id, version), a snapshot every N events, loading = latest snapshot + later
 * events. Runs in the handler's transaction through the host's SQL. */
#ifndef CTXD_INVENTORY_STORE_H
#define CTXD_INVENTORY_STORE_H

#include <ctxd/ctxd.h>

#include "domain.h"

/* Loads inventory `id` into s (initialised by the caller; status NONE when it has no
 * event). 0, CTXD_EDB / CTXD_ECONFLICT from SQL, or CTXD_EDECODE for a stored row that no
 * longer decodes. */
int inventory_store_load(const ctxd_api_t *api, ctxd_tx_t *tx, const char *id, inventory_state_t *s);

/* Appends ev (whose version must be the stored version + 1) and, when ev->version is a
 * multiple of snapshot_every, a snapshot of `after` (the state with ev applied). A
 * concurrent writer of the same version makes it fail with CTXD_ECONFLICT: the message is
 * retried and decides again on the newer state. */
int inventory_store_append(const ctxd_api_t *api, ctxd_tx_t *tx, const inventory_event_t *ev,
                           const inventory_state_t *after, int64_t snapshot_every);

/* The schema, for the plugin's migrations. */
#define INVENTORY_STORE_DDL                                                                                  \
  "CREATE TABLE inventory.events (\n"                                                                        \
  "  inventory_id text NOT NULL,\n"                                                                          \
  "  version bigint NOT NULL,\n"                                                                             \
  "  type text NOT NULL,\n"                                                                                  \
  "  body text NOT NULL,\n"                                                                                  \
  "  recorded_at timestamptz NOT NULL DEFAULT now(),\n"                                                      \
  "  PRIMARY KEY (inventory_id, version)\n"                                                                  \
  ");\n"                                                                                                     \
  "CREATE TABLE inventory.snapshots (\n"                                                                     \
  "  inventory_id text NOT NULL,\n"                                                                          \
  "  version bigint NOT NULL,\n"                                                                             \
  "  body text NOT NULL,\n"                                                                                  \
  "  PRIMARY KEY (inventory_id, version)\n"                                                                  \
  ");\n"

#endif
