/* Paying orders in PostgreSQL (the seed's PayingOrderRepository), in the handler's
 * transaction through the host's SQL:
 *
 *   paying.orders         one row per order, a column per domain field (paying_field_column)
 *   paying.payments       the payments counted, one per (order, payment id): how a repeated
 *                         callback is recognised
 *   paying.order_changes  the change log: one row per changed field per command, with the
 *                         old and the new text, the order's version, the command and the
 *                         message that caused it
 *
 * Saving compares the order as loaded with the order as decided (paying_order_diff): only
 * the columns that differ are written, and each logged one gets its change-log row. */
#ifndef CTXD_PAYING_STORE_H
#define CTXD_PAYING_STORE_H

#include <stdbool.h>

#include <ctxd/ctxd.h>

#include "domain.h"

/* Loads order `number` into o; *found says whether it exists. With lock, the row stays
 * locked until the transaction ends (FOR UPDATE), so commands for one order run one after
 * another; the read-only model reads without. 0, CTXD_EDB / CTXD_ECONFLICT from SQL, or
 * CTXD_EDECODE for a row the domain cannot read. */
int paying_store_load(const ctxd_api_t *api, ctxd_tx_t *tx, const char *number, bool lock, paying_order_t *o,
                      bool *found);

/* Whether payment `payment_id` of order `number` was counted. 0 or an SQL code. */
int paying_store_payment_known(const ctxd_api_t *api, ctxd_tx_t *tx, const char *number,
                               const char *payment_id, bool *known);

/* What caused a save, for the change log and the payment row. */
typedef struct {
  const char *operation;  /* paying_op_name() */
  const char *message_id; /* the incoming message's id; NULL: none */
  const char *payment_id; /* pay with record_payment: the payment to store; else NULL */
  int64_t payment_amount;
  bool free_pay;
} paying_cause_t;

/* Writes the decided order: inserts it (before NULL) or updates the columns that differ
 * from before, guarded by before's version; then the payment (when cause->payment_id) and
 * a change-log row per logged field that changed. Nothing differs and no payment: nothing
 * is written. 0, CTXD_ECONFLICT (the row moved on since it was loaded, or a concurrent
 * insert), CTXD_EDB, CTXD_ENOMEM. */
int paying_store_save(const ctxd_api_t *api, ctxd_tx_t *tx, const paying_order_t *before,
                      const paying_order_t *after, const paying_cause_t *cause);

/* The plugin's first migration. Columns of paying.orders named as paying_field_column. */
#define PAYING_STORE_DDL                                                                                     \
  "CREATE SCHEMA paying;\n"                                                                                  \
  "CREATE TABLE paying.orders (\n"                                                                           \
  "  order_number text PRIMARY KEY,\n"                                                                       \
  "  kind text NOT NULL,\n"                                                                                  \
  "  group_id text NOT NULL,\n"                                                                              \
  "  currency text NOT NULL,\n"                                                                              \
  "  amount_minor bigint NOT NULL,\n"                                                                        \
  "  paid_minor bigint NOT NULL,\n"                                                                          \
  "  payments bigint NOT NULL,\n"                                                                            \
  "  state text NOT NULL,\n"                                                                                 \
  "  cancel_reason text NOT NULL,\n"                                                                         \
  "  canceled_by text NOT NULL,\n"                                                                           \
  "  opened_at bigint NOT NULL,\n"                                                                           \
  "  paid_at bigint NOT NULL,\n"                                                                             \
  "  canceled_at bigint NOT NULL,\n"                                                                         \
  "  updated_at bigint NOT NULL,\n"                                                                          \
  "  version bigint NOT NULL\n"                                                                              \
  ");\n"                                                                                                     \
  "CREATE TABLE paying.payments (\n"                                                                         \
  "  order_number text NOT NULL REFERENCES paying.orders,\n"                                                 \
  "  payment_id text NOT NULL,\n"                                                                            \
  "  amount_minor bigint NOT NULL,\n"                                                                        \
  "  free_pay boolean NOT NULL,\n"                                                                           \
  "  message_id text,\n"                                                                                     \
  "  counted_at bigint NOT NULL,\n"                                                                          \
  "  PRIMARY KEY (order_number, payment_id)\n"                                                               \
  ");\n"                                                                                                     \
  "CREATE TABLE paying.order_changes (\n"                                                                    \
  "  id bigserial PRIMARY KEY,\n"                                                                            \
  "  order_number text NOT NULL,\n"                                                                          \
  "  version bigint NOT NULL,\n"                                                                             \
  "  operation text NOT NULL,\n"                                                                             \
  "  field text NOT NULL,\n"                                                                                 \
  "  old_value text,\n"                                                                                      \
  "  new_value text NOT NULL,\n"                                                                             \
  "  message_id text,\n"                                                                                     \
  "  changed_at bigint NOT NULL\n"                                                                           \
  ");\n"                                                                                                     \
  "CREATE INDEX order_changes_order ON paying.order_changes (order_number, id);\n"

#endif
