/* Notification's tables: see store.h. */
#include "store.h"

#include <stdio.h>
#include <string.h>

int notification_store_lock_customer(const ctxd_api_t *api, ctxd_tx_t *tx, const char *id,
                                     notification_customer_t *c) {
  memset(c, 0, sizeof *c);
  const char *params[] = {id};
  int rc = api->sql_exec(
      tx, "INSERT INTO notification.customers (customer_id) VALUES ($1) ON CONFLICT (customer_id) DO NOTHING",
      1, params, NULL);
  ctxd_rows_t *rows = NULL;
  if (rc == 0)
    rc = api->sql_exec(tx,
                       "SELECT known, coalesce(name, ''), coalesce(phone, '') FROM notification.customers "
                       "WHERE customer_id = $1 FOR UPDATE",
                       1, params, &rows);
  if (rc != 0) return rc;
  if (api->rows_count(rows) == 1) {
    c->known = api->rows_value(rows, 0, 0)[0] == 't';
    snprintf(c->name, sizeof c->name, "%s", api->rows_value(rows, 0, 1));
    snprintf(c->phone, sizeof c->phone, "%s", api->rows_value(rows, 0, 2));
  }
  api->rows_free(rows);
  return 0;
}

int notification_store_set_customer(const ctxd_api_t *api, ctxd_tx_t *tx, const char *id, const char *name,
                                    const char *phone) {
  const char *params[] = {id, name, phone};
  return api->sql_exec(
      tx,
      "UPDATE notification.customers SET known = true, name = $2, phone = $3, updated_at = now() "
      "WHERE customer_id = $1 AND NOT known",
      3, params, NULL);
}

int notification_store_await(const ctxd_api_t *api, ctxd_tx_t *tx, const char *customer_id,
                             const char *order_id) {
  const char *params[] = {customer_id, order_id};
  return api->sql_exec(tx,
                       "INSERT INTO notification.awaiting (customer_id, order_id) VALUES ($1, $2) "
                       "ON CONFLICT DO NOTHING",
                       2, params, NULL);
}

int notification_store_unawait(const ctxd_api_t *api, ctxd_tx_t *tx, const char *customer_id,
                               const char *order_id) {
  const char *params[] = {customer_id, order_id};
  return api->sql_exec(tx, "DELETE FROM notification.awaiting WHERE customer_id = $1 AND order_id = $2", 2,
                       params, NULL);
}

int notification_store_take_awaiting(const ctxd_api_t *api, ctxd_tx_t *tx, const char *customer_id,
                                     ctxd_rows_t **rows) {
  const char *params[] = {customer_id};
  return api->sql_exec(
      tx,
      "WITH taken AS (DELETE FROM notification.awaiting WHERE customer_id = $1 RETURNING order_id) "
      "SELECT order_id FROM taken ORDER BY order_id",
      1, params, rows);
}

int notification_store_outcome(const ctxd_api_t *api, ctxd_tx_t *tx, const char *order_id,
                               notification_phase_t *ended) {
  const char *params[] = {order_id};
  ctxd_rows_t *rows = NULL;
  int rc =
      api->sql_exec(tx, "SELECT outcome FROM notification.outcomes WHERE order_id = $1", 1, params, &rows);
  if (rc != 0) return rc;
  const char *o = api->rows_count(rows) > 0 ? api->rows_value(rows, 0, 0) : "";
  static const notification_phase_t ends[] = {NOTIFICATION_SENT, NOTIFICATION_FAILED, NOTIFICATION_EXPIRED};
  *ended = NOTIFICATION_WAITING;
  for (size_t i = 0; i < sizeof ends / sizeof *ends; i++)
    if (strcmp(o, notification_phase_name(ends[i])) == 0) *ended = ends[i];
  api->rows_free(rows);
  return 0;
}

int notification_store_record_outcome(const ctxd_api_t *api, ctxd_tx_t *tx, const char *order_id,
                                      notification_phase_t ended) {
  const char *params[] = {order_id, notification_phase_name(ended)};
  return api->sql_exec(tx,
                       "INSERT INTO notification.outcomes (order_id, outcome) VALUES ($1, $2) "
                       "ON CONFLICT (order_id) DO NOTHING",
                       2, params, NULL);
}

int notification_store_record_sms(const ctxd_api_t *api, ctxd_tx_t *tx, const notification_state_t *s,
                                  const char *sent_at) {
  char attempts[24];
  snprintf(attempts, sizeof attempts, "%lld", s->attempts);
  const char *params[] = {s->sms_id, s->order_id, s->customer_id, s->phone, s->text, s->provider_message_id,
                          attempts,  sent_at};
  return api->sql_exec(tx,
                       "INSERT INTO notification.sms (sms_id, order_id, customer_id, phone, text, "
                       "provider_message_id, attempts, sent_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) "
                       "ON CONFLICT (order_id) DO NOTHING",
                       8, params, NULL);
}

int notification_store_list(const ctxd_api_t *api, ctxd_tx_t *tx, const char *customer_id, long long limit,
                            ctxd_rows_t **rows) {
  char n[24];
  snprintf(n, sizeof n, "%lld", limit);
  const char *params[] = {customer_id, n};
  return api->sql_exec(tx,
                       "SELECT sms_id, order_id, phone, text, provider_message_id, "
                       "to_char(sent_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), "
                       "count(*) OVER () FROM notification.sms WHERE customer_id = $1 "
                       "ORDER BY sent_at DESC, sms_id LIMIT $2::bigint",
                       2, params, rows);
}
