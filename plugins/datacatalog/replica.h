/* Versioned replicas shared by the contexts that keep one: DataCatalog's MaterialType and
 * organization (the DataCatalog consumer, Inventory), Auth's user grants (Inventory). */
#ifndef CTXD_PLUGINS_MATERIAL_REPLICA_H
#define CTXD_PLUGINS_MATERIAL_REPLICA_H

#include <ctxd/ctxd.h>

#include "ctxd_contracts.h"

/* The table, for a plugin's migration: MATERIAL_REPLICA_DDL("inventory"). */
#define MATERIAL_REPLICA_DDL(schema)                                                                         \
  "CREATE TABLE " schema ".material_types (\n"                                                               \
  "  id uuid PRIMARY KEY,\n"                                                                                 \
  "  version bigint NOT NULL,\n"                                                                             \
  "  country_id int NOT NULL,\n"                                                                             \
  "  department_id uuid NOT NULL,\n"                                                                         \
  "  name text NOT NULL,\n"                                                                                  \
  "  category int NOT NULL,\n"                                                                               \
  "  basic_unit_of_measure int NOT NULL,\n"                                                                  \
  "  is_removed boolean NOT NULL,\n"                                                                         \
  "  external_code text,\n"                                                                                  \
  "  updated_at timestamptz NOT NULL DEFAULT now()\n"                                                        \
  ");\n"

/* What a MaterialType message did to the replica. */
typedef enum {
  MATERIAL_IGNORED,  /* an older or equal version: nothing changed */
  MATERIAL_INSERTED, /* a material the replica did not have */
  MATERIAL_UPDATED,  /* a newer version of one it had */
  MATERIAL_REMOVED,  /* a newer version that is a tombstone (IsRemoved) */
} material_change_t;

/* Applies a MaterialType message (v2, or v1 upcast by the host) to `table` (a constant of
 * the calling plugin, e.g. "inventory.material_types"): a newer Version replaces the row,
 * an older or equal one changes nothing (messages come twice and out of order), IsRemoved
 * stays as a tombstone. The rule is the statement's WHERE clause, so two workers applying
 * versions of one material at once cannot lose the newer. Returns the handler result;
 * *change says what the message did. *m is the message as decoded (zeroed when it could
 * not be): the caller frees it with ctxd_c_data_catalog_products_v2_material_type_free,
 * whatever the result. */
ctxd_handler_result_t material_replica_apply(const ctxd_api_t *api, ctxd_tx_t *tx, const ctxd_msg_t *msg,
                                             const char *table,
                                             ctxd_c_data_catalog_products_v2_material_type_t *m,
                                             material_change_t *change);

/* ---- Countries, departments, pizzerias (units) ------------------------------------------ */

/* The tables, for a plugin's migration: COUNTRIES_DDL("datacatalog"), ... A context keeps
 * copies of those it reads (Inventory: the pizzerias). */
#define COUNTRIES_DDL(schema)                                                                                \
  "CREATE TABLE " schema ".countries (\n"                                                                    \
  "  id int PRIMARY KEY,\n"                                                                                  \
  "  version bigint NOT NULL,\n"                                                                             \
  "  name text NOT NULL,\n"                                                                                  \
  "  code text NOT NULL,\n"                                                                                  \
  "  is_removed boolean NOT NULL,\n"                                                                         \
  "  updated_at timestamptz NOT NULL DEFAULT now()\n"                                                        \
  ");\n"
#define DEPARTMENTS_DDL(schema)                                                                              \
  "CREATE TABLE " schema ".departments (\n"                                                                  \
  "  id uuid PRIMARY KEY,\n"                                                                                 \
  "  version bigint NOT NULL,\n"                                                                             \
  "  country_id int NOT NULL,\n"                                                                             \
  "  name text NOT NULL,\n"                                                                                  \
  "  is_removed boolean NOT NULL,\n"                                                                         \
  "  updated_at timestamptz NOT NULL DEFAULT now()\n"                                                        \
  ");\n"
#define UNITS_DDL(schema)                                                                                    \
  "CREATE TABLE " schema ".units (\n"                                                                        \
  "  id uuid PRIMARY KEY,\n"                                                                                 \
  "  version bigint NOT NULL,\n"                                                                             \
  "  country_id int NOT NULL,\n"                                                                             \
  "  department_id uuid NOT NULL,\n"                                                                         \
  "  name text NOT NULL,\n"                                                                                  \
  "  is_removed boolean NOT NULL,\n"                                                                         \
  "  updated_at timestamptz NOT NULL DEFAULT now()\n"                                                        \
  ");\n"

/* A user's grant for a pizzeria, as Auth publishes it (Ctxd.Auth.Contracts UserUnitGrant):
 * one row per user and pizzeria, IsRemoved when revoked. Inventory keeps a copy. */
#define USER_GRANTS_DDL(schema)                                                                              \
  "CREATE TABLE " schema ".user_grants (\n"                                                                  \
  "  user_id uuid NOT NULL,\n"                                                                               \
  "  unit_id uuid NOT NULL,\n"                                                                               \
  "  version bigint NOT NULL,\n"                                                                             \
  "  is_removed boolean NOT NULL,\n"                                                                         \
  "  updated_at timestamptz NOT NULL DEFAULT now(),\n"                                                       \
  "  PRIMARY KEY (user_id, unit_id)\n"                                                                       \
  ");\n"

/* The entities of those tables, and the message type of each. A user grant is Auth's, not
 * DataCatalog's, but it is replicated by the same rule. */
typedef enum { ORG_COUNTRY, ORG_DEPARTMENT, ORG_UNIT, ORG_USER_GRANT, ORG_KINDS } org_kind_t;
extern const char *const org_message_types[ORG_KINDS];

/* Applies a Country, Department, Unit or UserUnitGrant message (kind) to the replica in
 * `schema` (a constant of the calling plugin), by the rule of material_replica_apply: a
 * newer Version replaces the row, an older or equal one changes nothing, IsRemoved stays
 * as a tombstone. Returns the handler result; *applied is 1 when the row changed. */
ctxd_handler_result_t org_replica_apply(const ctxd_api_t *api, ctxd_tx_t *tx, const ctxd_msg_t *msg,
                                        const char *schema, org_kind_t kind, int *applied);

#endif
