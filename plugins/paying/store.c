/* The paying order repository (store.h). */
#include "store.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SQL_MAX 4096

/* An order's columns as text, the statements' parameters. */
typedef struct {
  char v[PAYING_FIELD_COUNT][PAYING_VALUE_SIZE];
} columns_t;

static void columns_of(const paying_order_t *o, columns_t *c) {
  for (int f = 0; f < PAYING_FIELD_COUNT; f++)
    paying_field_text(o, (paying_field_t)f, c->v[f], sizeof c->v[f]);
}

/* Appends printf output to sql at *used. */
static void sql_add(char *sql, size_t *used, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void sql_add(char *sql, size_t *used, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(sql + *used, SQL_MAX - *used, fmt, ap);
  va_end(ap);
  if (n > 0) *used = *used + (size_t)n < SQL_MAX ? *used + (size_t)n : SQL_MAX - 1;
}

int paying_store_load(const ctxd_api_t *api, ctxd_tx_t *tx, const char *number, bool lock, paying_order_t *o,
                      bool *found) {
  char sql[SQL_MAX];
  size_t used = 0;
  sql_add(sql, &used, "SELECT ");
  for (int f = 0; f < PAYING_FIELD_COUNT; f++)
    sql_add(sql, &used, "%s%s::text", f ? ", " : "", paying_field_column((paying_field_t)f));
  sql_add(sql, &used, " FROM paying.orders WHERE order_number = $1%s", lock ? " FOR UPDATE" : "");
  const char *params[] = {number};
  ctxd_rows_t *rows;
  *found = false;
  int rc = api->sql_exec(tx, sql, 1, params, &rows);
  if (rc != 0) return rc;
  if (api->rows_count(rows) == 1) {
    memset(o, 0, sizeof *o);
    for (int f = 0; rc == 0 && f < PAYING_FIELD_COUNT; f++)
      rc = paying_field_parse(o, (paying_field_t)f, api->rows_value(rows, 0, f));
    *found = rc == 0;
  }
  api->rows_free(rows);
  return rc;
}

int paying_store_payment_known(const ctxd_api_t *api, ctxd_tx_t *tx, const char *number,
                               const char *payment_id, bool *known) {
  const char *params[] = {number, payment_id};
  ctxd_rows_t *rows;
  int rc = api->sql_exec(tx, "SELECT 1 FROM paying.payments WHERE order_number = $1 AND payment_id = $2", 2,
                         params, &rows);
  if (rc != 0) return rc;
  *known = api->rows_count(rows) > 0;
  api->rows_free(rows);
  return 0;
}

/* INSERT of every column. */
static int insert_order(const ctxd_api_t *api, ctxd_tx_t *tx, const columns_t *now) {
  char sql[SQL_MAX];
  size_t used = 0;
  const char *params[PAYING_FIELD_COUNT];
  sql_add(sql, &used, "INSERT INTO paying.orders (");
  for (int f = 0; f < PAYING_FIELD_COUNT; f++) {
    sql_add(sql, &used, "%s%s", f ? ", " : "", paying_field_column((paying_field_t)f));
    params[f] = now->v[f];
  }
  sql_add(sql, &used, ") VALUES (");
  for (int f = 0; f < PAYING_FIELD_COUNT; f++) sql_add(sql, &used, "%s$%d", f ? ", " : "", f + 1);
  sql_add(sql, &used, ")");
  return api->sql_exec(tx, sql, PAYING_FIELD_COUNT, params, NULL);
}

/* UPDATE of the columns in `changed`, where the row still has the old version. */
static int update_order(const ctxd_api_t *api, ctxd_tx_t *tx, const columns_t *old, const columns_t *now,
                        uint32_t changed) {
  char sql[SQL_MAX];
  size_t used = 0;
  const char *params[PAYING_FIELD_COUNT + 2];
  int n = 0;
  sql_add(sql, &used, "UPDATE paying.orders SET ");
  for (int f = 0; f < PAYING_FIELD_COUNT; f++) {
    if (!(changed & (1u << f))) continue;
    params[n] = now->v[f];
    n++;
    sql_add(sql, &used, "%s%s = $%d", n > 1 ? ", " : "", paying_field_column((paying_field_t)f), n);
  }
  params[n] = old->v[PAYING_FIELD_ORDER_NUMBER];
  params[n + 1] = old->v[PAYING_FIELD_VERSION];
  sql_add(sql, &used, " WHERE order_number = $%d AND version = $%d", n + 1, n + 2);
  ctxd_rows_t *rows = NULL;
  int rc = api->sql_exec(tx, sql, n + 2, params, &rows);
  /* no row at that version: another writer changed it since it was loaded */
  if (rc == 0 && api->rows_affected(rows) != 1) rc = CTXD_ECONFLICT;
  if (rows != NULL) api->rows_free(rows);
  return rc;
}

/* One INSERT of the change-log rows: $1..$5 are common, then (field, old, new) per row. */
static int log_changes(const ctxd_api_t *api, ctxd_tx_t *tx, const columns_t *old, const columns_t *now,
                       uint32_t changed, const paying_cause_t *cause) {
  char sql[SQL_MAX];
  size_t used = 0;
  const char *params[5 + 3 * PAYING_FIELD_COUNT] = {now->v[PAYING_FIELD_ORDER_NUMBER],
                                                    now->v[PAYING_FIELD_VERSION], cause->operation,
                                                    cause->message_id, now->v[PAYING_FIELD_UPDATED_AT]};
  int n = 5, rows = 0;
  sql_add(sql, &used,
          "INSERT INTO paying.order_changes (order_number, version, operation, field, old_value, new_value,"
          " message_id, changed_at) VALUES ");
  for (int f = 0; f < PAYING_FIELD_COUNT; f++) {
    if (!(changed & (1u << f)) || !paying_field_logged((paying_field_t)f)) continue;
    params[n] = paying_field_column((paying_field_t)f);
    params[n + 1] = old != NULL ? old->v[f] : NULL;
    params[n + 2] = now->v[f];
    sql_add(sql, &used, "%s($1, $2::bigint, $3, $%d, $%d, $%d, $4, $5::bigint)", rows ? ", " : "", n + 1,
            n + 2, n + 3);
    n += 3;
    rows++;
  }
  return rows == 0 ? 0 : api->sql_exec(tx, sql, n, params, NULL);
}

static int record_payment(const ctxd_api_t *api, ctxd_tx_t *tx, const columns_t *now,
                          const paying_cause_t *cause) {
  char amount[24];
  snprintf(amount, sizeof amount, "%" PRId64, cause->payment_amount);
  const char *params[] = {
      now->v[PAYING_FIELD_ORDER_NUMBER],  cause->payment_id, amount,
      cause->free_pay ? "true" : "false", cause->message_id, now->v[PAYING_FIELD_UPDATED_AT]};
  /* the domain counted it because the id was not there; a conflict means a concurrent
   * writer of the same order, which the row lock rules out: then it is not counted twice */
  return api->sql_exec(
      tx,
      "INSERT INTO paying.payments (order_number, payment_id, amount_minor, free_pay, message_id,"
      " counted_at) VALUES ($1, $2, $3, $4, $5, $6)",
      6, params, NULL);
}

int paying_store_save(const ctxd_api_t *api, ctxd_tx_t *tx, const paying_order_t *before,
                      const paying_order_t *after, const paying_cause_t *cause) {
  columns_t *old = before != NULL ? malloc(sizeof *old) : NULL, *now = malloc(sizeof *now);
  int rc = now == NULL || (before != NULL && old == NULL) ? CTXD_ENOMEM : 0;
  uint32_t changed = before != NULL ? paying_order_diff(before, after) : PAYING_FIELDS_ALL;
  if (rc == 0) {
    columns_of(after, now);
    if (old != NULL) columns_of(before, old);
    if (before == NULL)
      rc = insert_order(api, tx, now);
    else if (changed != 0)
      rc = update_order(api, tx, old, now, changed);
  }
  if (rc == 0 && cause->payment_id != NULL) rc = record_payment(api, tx, now, cause);
  if (rc == 0 && changed != 0) rc = log_changes(api, tx, old, now, changed, cause);
  free(old);
  free(now);
  return rc;
}
