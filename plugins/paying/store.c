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

/* A statement being built; `rc` turns CTXD_ETOOBIG when it did not fit, and stays so. */
typedef struct {
  char text[SQL_MAX];
  size_t used;
  int rc;
} sql_t;

/* Appends printf output to sql, unless it is too long already. */
static void sql_add(sql_t *sql, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sql_add(sql_t *sql, const char *fmt, ...) {
  if (sql->rc != 0) return;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(sql->text + sql->used, SQL_MAX - sql->used, fmt, ap);
  va_end(ap);
  if (n < 0 || (size_t)n >= SQL_MAX - sql->used)
    sql->rc = CTXD_ETOOBIG; /* cut: never run it */
  else
    sql->used += (size_t)n;
}

/* Runs the built statement, or says why it was not built. */
static int sql_run(const ctxd_api_t *api, ctxd_tx_t *tx, const sql_t *sql, int n, const char *const *params,
                   ctxd_rows_t **rows) {
  return sql->rc != 0 ? sql->rc : api->sql_exec(tx, sql->text, n, params, rows);
}

int paying_store_load(const ctxd_api_t *api, ctxd_tx_t *tx, const char *number, bool lock, paying_order_t *o,
                      bool *found) {
  sql_t sql = {.used = 0};
  sql_add(&sql, "SELECT ");
  for (int f = 0; f < PAYING_FIELD_COUNT; f++)
    sql_add(&sql, "%s%s::text", f ? ", " : "", paying_field_column((paying_field_t)f));
  sql_add(&sql, " FROM paying.orders WHERE order_number = $1%s", lock ? " FOR UPDATE" : "");
  const char *params[] = {number};
  ctxd_rows_t *rows;
  *found = false;
  int rc = sql_run(api, tx, &sql, 1, params, &rows);
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

int paying_store_payment_find(const ctxd_api_t *api, ctxd_tx_t *tx, const char *number,
                              const char *payment_id, paying_payment_known_t *known, int64_t *amount) {
  const char *params[] = {number, payment_id};
  ctxd_rows_t *rows;
  *known = PAYING_PAYMENT_NEW;
  *amount = 0;
  int rc = api->sql_exec(tx,
                         "SELECT status, amount_minor::text FROM paying.payments"
                         " WHERE order_number = $1 AND payment_id = $2",
                         2, params, &rows);
  if (rc != 0) return rc;
  if (api->rows_count(rows) == 1) {
    paying_order_t scratch = {0}; /* the amount reads as the domain reads its numbers */
    const char *status = api->rows_value(rows, 0, 0);
    rc = paying_field_parse(&scratch, PAYING_FIELD_AMOUNT, api->rows_value(rows, 0, 1));
    *amount = scratch.amount;
    *known = strcmp(status, "refused") == 0 ? PAYING_PAYMENT_REFUSED : PAYING_PAYMENT_COUNTED;
  }
  api->rows_free(rows);
  return rc;
}

/* INSERT of every column. */
static int insert_order(const ctxd_api_t *api, ctxd_tx_t *tx, const columns_t *now) {
  sql_t sql = {.used = 0};
  const char *params[PAYING_FIELD_COUNT];
  sql_add(&sql, "INSERT INTO paying.orders (");
  for (int f = 0; f < PAYING_FIELD_COUNT; f++) {
    sql_add(&sql, "%s%s", f ? ", " : "", paying_field_column((paying_field_t)f));
    params[f] = now->v[f];
  }
  sql_add(&sql, ") VALUES (");
  for (int f = 0; f < PAYING_FIELD_COUNT; f++) sql_add(&sql, "%s$%d", f ? ", " : "", f + 1);
  sql_add(&sql, ")");
  return sql_run(api, tx, &sql, PAYING_FIELD_COUNT, params, NULL);
}

/* UPDATE of the columns in `changed`, where the row still has the old version. */
static int update_order(const ctxd_api_t *api, ctxd_tx_t *tx, const columns_t *old, const columns_t *now,
                        uint32_t changed) {
  sql_t sql = {.used = 0};
  const char *params[PAYING_FIELD_COUNT + 2];
  int n = 0;
  sql_add(&sql, "UPDATE paying.orders SET ");
  for (int f = 0; f < PAYING_FIELD_COUNT; f++) {
    if (!(changed & (1u << f))) continue;
    params[n] = now->v[f];
    n++;
    sql_add(&sql, "%s%s = $%d", n > 1 ? ", " : "", paying_field_column((paying_field_t)f), n);
  }
  params[n] = old->v[PAYING_FIELD_ORDER_NUMBER];
  params[n + 1] = old->v[PAYING_FIELD_VERSION];
  sql_add(&sql, " WHERE order_number = $%d AND version = $%d", n + 1, n + 2);
  ctxd_rows_t *rows = NULL;
  int rc = sql_run(api, tx, &sql, n + 2, params, &rows);
  /* no row at that version: another writer changed it since it was loaded */
  if (rc == 0 && api->rows_affected(rows) != 1) rc = CTXD_ECONFLICT;
  if (rows != NULL) api->rows_free(rows);
  return rc;
}

/* One INSERT of the change-log rows: $1..$5 are common, then (field, old, new) per row. */
static int log_changes(const ctxd_api_t *api, ctxd_tx_t *tx, const columns_t *old, const columns_t *now,
                       uint32_t changed, const paying_cause_t *cause) {
  sql_t sql = {.used = 0};
  const char *params[5 + 3 * PAYING_FIELD_COUNT] = {now->v[PAYING_FIELD_ORDER_NUMBER],
                                                    now->v[PAYING_FIELD_VERSION], cause->operation,
                                                    cause->message_id, now->v[PAYING_FIELD_UPDATED_AT]};
  int n = 5, rows = 0;
  sql_add(&sql,
          "INSERT INTO paying.order_changes (order_number, version, operation, field, old_value, new_value,"
          " message_id, changed_at) VALUES ");
  for (int f = 0; f < PAYING_FIELD_COUNT; f++) {
    if (!(changed & (1u << f)) || !paying_field_logged((paying_field_t)f)) continue;
    params[n] = paying_field_column((paying_field_t)f);
    params[n + 1] = old != NULL ? old->v[f] : NULL;
    params[n + 2] = now->v[f];
    sql_add(&sql, "%s($1, $2::bigint, $3, $%d, $%d, $%d, $4, $5::bigint)", rows ? ", " : "", n + 1, n + 2,
            n + 3);
    n += 3;
    rows++;
  }
  return rows == 0 ? 0 : sql_run(api, tx, &sql, n, params, NULL);
}

static int record_payment(const ctxd_api_t *api, ctxd_tx_t *tx, const columns_t *now,
                          const paying_cause_t *cause) {
  char amount[24], at[24];
  snprintf(amount, sizeof amount, "%" PRId64, cause->payment_amount);
  snprintf(at, sizeof at, "%" PRId64, cause->at);
  const char *params[] = {now->v[PAYING_FIELD_ORDER_NUMBER],      cause->payment_id, amount,
                          cause->free_pay ? "true" : "false",     cause->message_id, at,
                          cause->refused ? "refused" : "counted", cause->paid_at};
  /* the domain counted it because the id was not there; a conflict means a concurrent
   * writer of the same order, which the row lock rules out: then it is not counted twice */
  return api->sql_exec(
      tx,
      "INSERT INTO paying.payments (order_number, payment_id, amount_minor, free_pay, message_id,"
      " counted_at, status, paid_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8::timestamptz)",
      8, params, NULL);
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
