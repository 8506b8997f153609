/* Compensation orders in PostgreSQL: one row per order, a column per domain field
 * (compensation_field_name) plus the contract details the domain does not model
 * (contract_extras: currency, item names, the non-product note). Writes only the columns a
 * decision changed, guarded by the version it was decided on (optimistic concurrency). Runs
 * in the handler's transaction through the host's SQL. */
#ifndef CTXD_COMPENSATION_REPO_H
#define CTXD_COMPENSATION_REPO_H

#include <jansson.h>

#include <ctxd/ctxd.h>

#include "domain.h"

/* Loads order `id` into o and its extras into *extras (new reference, caller json_decref's
 * it; NULL when not found); *found says whether it exists. 0, CTXD_EDB / CTXD_ECONFLICT from
 * SQL, or CTXD_EDECODE for a stored row the domain no longer reads. */
int compensation_repo_load(const ctxd_api_t *api, ctxd_tx_t *tx, const char *id, compensation_order_t *o,
                           json_t **extras, int *found);

/* Inserts a new order. A concurrent insert of the same id is CTXD_ECONFLICT (a retry then
 * finds the order). */
int compensation_repo_insert(const ctxd_api_t *api, ctxd_tx_t *tx, const compensation_order_t *o,
                             const json_t *extras);

/* Writes the columns `changed` names (and extras unless NULL) of o, where the row still has
 * old_version; CTXD_ECONFLICT when another writer got there first. */
int compensation_repo_update(const ctxd_api_t *api, ctxd_tx_t *tx, uint32_t old_version,
                             const compensation_order_t *o, uint32_t changed, const json_t *extras);

/* The schema, for the plugin's migrations: columns named as compensation_field_name. */
#define COMPENSATION_REPO_DDL                                                                                \
  "CREATE TABLE compensation.orders (\n"                                                                     \
  "  id text PRIMARY KEY,\n"                                                                                 \
  "  order_id text NOT NULL,\n"                                                                              \
  "  customer_id text NOT NULL,\n"                                                                           \
  "  created_by text NOT NULL,\n"                                                                            \
  "  applicant text NOT NULL,\n"                                                                             \
  "  created_at bigint NOT NULL,\n"                                                                          \
  "  reason text NOT NULL,\n"                                                                                \
  "  strategy_kind text NOT NULL,\n"                                                                         \
  "  strategy_detail jsonb NOT NULL,\n"                                                                      \
  "  total_amount bigint NOT NULL,\n"                                                                        \
  "  status text NOT NULL,\n"                                                                                \
  "  status_reason text NOT NULL,\n"                                                                         \
  "  reviewer text NOT NULL,\n"                                                                              \
  "  fulfillment_id text NOT NULL,\n"                                                                        \
  "  updated_at bigint NOT NULL,\n"                                                                          \
  "  version bigint NOT NULL,\n"                                                                             \
  "  contract_extras jsonb NOT NULL\n"                                                                       \
  ");\n"                                                                                                     \
  "CREATE INDEX orders_order_id ON compensation.orders (order_id);\n"

/* Migration 2: the responsible party ("": not stated), for orders of any age. */
#define COMPENSATION_REPO_DDL_2                                                                              \
  "ALTER TABLE compensation.orders ADD COLUMN responsible_party text NOT NULL DEFAULT '';\n"

#endif
