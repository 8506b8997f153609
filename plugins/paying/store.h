/* Paying orders in PostgreSQL (the seed's PayingOrderRepository), in the handler's
 * transaction through the host's SQL:
 *
 *   paying.orders         one row per order, a column per domain field (paying_field_column)
 *   paying.payments       the payments recorded, one per (order, payment id), counted or
 *                         refused (a canceled order's): how a repeated callback is
 *                         recognised, and with what amount
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

/* What is stored of payment `payment_id` of order `number`: *known NEW (no row), COUNTED or
 * REFUSED, with its amount in *amount (0 when new). 0, an SQL code, or CTXD_EDECODE for a
 * row the domain cannot read. */
int paying_store_payment_find(const ctxd_api_t *api, ctxd_tx_t *tx, const char *number,
                              const char *payment_id, paying_payment_known_t *known, int64_t *amount);

/* What caused a save, for the change log and the payment row. */
typedef struct {
  const char *operation;  /* paying_op_name() */
  const char *message_id; /* the incoming message's id; NULL: none */
  const char *payment_id; /* pay with record_payment or record_refusal: the payment to
                             store; else NULL */
  bool refused;           /* store it as refused (record_refusal) */
  int64_t payment_amount;
  bool free_pay;
  const char *paid_at; /* PayOrder.PaidAt as sent (ISO 8601); NULL: not given */
  int64_t at;          /* the command's time: the payment's counted_at */
} paying_cause_t;

/* Writes the decided order: inserts it (before NULL) or updates the columns that differ
 * from before, guarded by before's version; then the payment (when cause->payment_id) and
 * a change-log row per logged field that changed. Nothing differs and no payment: nothing
 * is written. 0, CTXD_ECONFLICT (the row moved on since it was loaded, or a concurrent
 * insert), CTXD_EDB, CTXD_ENOMEM, CTXD_ETOOBIG (a statement past its buffer: a bug). */
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

/* The second: the values the domain never makes are refused by the database too; payments
 * refused (a canceled order's) are recorded, and the payment system's time is kept. */
#define PAYING_STORE_DDL_2                                                                                   \
  "ALTER TABLE paying.orders\n"                                                                              \
  "  ADD CONSTRAINT orders_kind CHECK (kind IN ('normal', 'group_buy', 'free')),\n"                          \
  "  ADD CONSTRAINT orders_state CHECK (state IN ('paying', 'paid', 'canceled')),\n"                         \
  "  ADD CONSTRAINT orders_amounts CHECK (amount_minor >= 0 AND paid_minor >= 0 AND payments >= 0),\n"       \
  "  ADD CONSTRAINT orders_version CHECK (version >= 1);\n"                                                  \
  "ALTER TABLE paying.payments\n"                                                                            \
  "  ADD COLUMN status text NOT NULL DEFAULT 'counted' CONSTRAINT payments_status\n"                         \
  "    CHECK (status IN ('counted', 'refused')),\n"                                                          \
  "  ADD COLUMN paid_at timestamptz,\n"                                                                      \
  "  ADD CONSTRAINT payments_amount CHECK (amount_minor >= 0);\n"

#endif
