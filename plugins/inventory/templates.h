/* InventoryTemplates as the office manager keeps them (seed 001: a CRUD entity): rows of
 * inventory.templates, written by SaveInventoryTemplate and DeleteInventoryTemplate, over
 * the optional templates_file, read once at start as seed data (a row of the same id,
 * even a deleted one, wins over the file). The text of a template is the file's format:
 *   {"id","unitId","name","category":"monthly"|"weekly"|"daily",
 *    "zones":[{"id","name","materialTypeIds":[...]}]} */
#ifndef CTXD_INVENTORY_TEMPLATES_H
#define CTXD_INVENTORY_TEMPLATES_H

#include <stdbool.h>

#include <jansson.h>

#include <ctxd/ctxd.h>

#include "domain.h"

/* A template and what its strings point into. Release with template_release(). */
typedef struct {
  json_t *json;
  inventory_template_t t;
} owned_template_t;

/* Fills *out from the JSON j (a reference is taken); 0, or CTXD_EDECODE for a shape that
 * is not a template's (inventory_template_validate judges the content), CTXD_ENOMEM. */
int template_parse(json_t *j, owned_template_t *out);

/* Frees what o holds and empties it; an empty one is a no-op. */
void template_release(owned_template_t *o);

/* The text of t, as a new string (free() it), or NULL when memory ran out. */
char *template_encode(const inventory_template_t *t);

/* The seed templates of a file: read once, immutable, shared by every worker. */
typedef struct {
  owned_template_t *items;
  size_t count;
} template_seeds_t;

/* Reads path (a JSON array of templates, each valid) into *out; 0, or CTXD_ECONFIG with
 * the reason in why (size INVENTORY_TEXT_SIZE), CTXD_ENOMEM. */
int template_seeds_load(const char *path, template_seeds_t *out, char *why, size_t whylen);
void template_seeds_free(template_seeds_t *s);

/* The template `id` as stored, read in the handler's transaction: *t is the template when
 * it exists, else NULL: a row's (held in *own, which the caller releases whatever the
 * result) or a seed's (borrowed from seeds). *deleted tells a deleted row. for_update locks
 * the row, for a save or delete deciding on it; the inventory commands only read (no lock,
 * not even FOR SHARE): they write nothing that depends on the row staying as read, so a
 * save committing meanwhile just comes after them, and unrelated inventories of one
 * template never wait for each other. 0, or the host's SQL error code, CTXD_EDECODE,
 * CTXD_ENOMEM. */
int template_get(const ctxd_api_t *api, ctxd_tx_t *tx, const template_seeds_t *seeds, const char *id,
                 bool for_update, owned_template_t *own, const inventory_template_t **t, bool *deleted);

/* Writes t (saved, or deleted when deleted is true) by user `by` as the row's next version
 * (1 for a new row, a seed's first save too), returned in *version. The row keeps its
 * pizzeria: when the stored row names another one (a first save of the same id that no
 * lock could order, committed after template_get found nothing) nothing is written and it
 * returns CTXD_ECONFLICT, so the command is decided again on that row (UnitMismatch).
 * 0 or the host's SQL error code, CTXD_ENOMEM. */
int template_put(const ctxd_api_t *api, ctxd_tx_t *tx, const inventory_template_t *t, bool deleted,
                 const char *by, int64_t *version);

/* The table, for the plugin's migrations. */
#define INVENTORY_TEMPLATES_DDL                                                                              \
  "CREATE TABLE inventory.templates (\n"                                                                     \
  "  id text PRIMARY KEY,\n"                                                                                 \
  "  unit_id text NOT NULL,\n"                                                                               \
  "  version bigint NOT NULL,\n"                                                                             \
  "  deleted boolean NOT NULL,\n"                                                                            \
  "  body text NOT NULL,\n"                                                                                  \
  "  updated_by text NOT NULL,\n"                                                                            \
  "  updated_at timestamptz NOT NULL DEFAULT now()\n"                                                        \
  ");\n"

#endif
