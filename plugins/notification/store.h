/* Notification's tables in PostgreSQL, in the handler's transaction through the host's SQL:
 *
 * - customers: this context's copy of CustomerCreated (the first details win). Its row is
 *   also the lock that orders the messages of one customer: OrderCreated and CustomerCreated
 *   both lock it first, so an order and its customer handled at the same time on two workers
 *   never both miss each other.
 * - awaiting: orders whose process manager waits for their customer (until it comes, or the
 *   time-out expires the order).
 * - sms: the read model, every SMS the provider accepted, one per order; never deleted.
 * - outcomes: the end of every order's SMS, sent, failed or expired, kept for good: an order that
 *   comes again after the runtime cleaned up its process manager and its call
 *   (sagas.retention_s, calls.retention_s) finds its outcome here and is not sent again.
 *
 * The process managers themselves are the runtime's (ctxd.sagas, <ctxd/saga.h>). */
#ifndef CTXD_NOTIFICATION_STORE_H
#define CTXD_NOTIFICATION_STORE_H

#include <ctxd/ctxd.h>

#include "domain.h"

/* A customer as this context knows it. */
typedef struct {
  int known; /* CustomerCreated seen */
  char name[NOTIFICATION_NAME_MAX + 1];
  char phone[NOTIFICATION_PHONE_MAX + 1];
} notification_customer_t;

/* Locks customer `id` until the transaction ends (creating its row, unknown, when missing)
 * and reads it into c. 0 or sql_exec's code (CTXD_ECONFLICT: retry). */
int notification_store_lock_customer(const ctxd_api_t *api, ctxd_tx_t *tx, const char *id,
                                     notification_customer_t *c);

/* Stores the customer's details (the row must be locked and not known yet). */
int notification_store_set_customer(const ctxd_api_t *api, ctxd_tx_t *tx, const char *id, const char *name,
                                    const char *phone);

/* Order `order_id` waits for customer `customer_id`. */
int notification_store_await(const ctxd_api_t *api, ctxd_tx_t *tx, const char *customer_id,
                             const char *order_id);

/* Order `order_id` waits for customer `customer_id` no more (its time-out expired it). */
int notification_store_unawait(const ctxd_api_t *api, ctxd_tx_t *tx, const char *customer_id,
                               const char *order_id);

/* Removes the orders waiting for customer_id and returns them in *rows (column 0: the order
 * id, in order; free with rows_free). */
int notification_store_take_awaiting(const ctxd_api_t *api, ctxd_tx_t *tx, const char *customer_id,
                                     ctxd_rows_t **rows);

/* The outcome on record for order_id's SMS into *ended: NOTIFICATION_SENT, _FAILED or
 * _EXPIRED, or NOTIFICATION_WAITING when there is none yet. */
int notification_store_outcome(const ctxd_api_t *api, ctxd_tx_t *tx, const char *order_id,
                               notification_phase_t *ended);

/* Records the outcome of order_id's SMS for good (ended: NOTIFICATION_SENT, _FAILED or
 * _EXPIRED), once per order. */
int notification_store_record_outcome(const ctxd_api_t *api, ctxd_tx_t *tx, const char *order_id,
                                      notification_phase_t ended);

/* Records the SMS of a sent process manager, sent_at an ISO 8601 time; once per order (an SMS
 * id derived from another order, a hash collision, is an error, never a silent skip). */
int notification_store_record_sms(const ctxd_api_t *api, ctxd_tx_t *tx, const notification_state_t *s,
                                  const char *sent_at);

/* The customer's SMS, newest first, at most `limit`: columns sms_id, order_id, phone, text,
 * provider_message_id, sent_at (ISO 8601, UTC), and the customer's total count (the same in
 * every row). *rows: free with rows_free. */
int notification_store_list(const ctxd_api_t *api, ctxd_tx_t *tx, const char *customer_id, long long limit,
                            ctxd_rows_t **rows);

/* The schema, for the plugin's migrations. */
#define NOTIFICATION_STORE_DDL                                                                               \
  "CREATE TABLE notification.customers (\n"                                                                  \
  "  customer_id text PRIMARY KEY,\n"                                                                        \
  "  known boolean NOT NULL DEFAULT false,\n"                                                                \
  "  name text,\n"                                                                                           \
  "  phone text,\n"                                                                                          \
  "  updated_at timestamptz NOT NULL DEFAULT now()\n"                                                        \
  ");\n"                                                                                                     \
  "CREATE TABLE notification.awaiting (\n"                                                                   \
  "  customer_id text NOT NULL,\n"                                                                           \
  "  order_id text NOT NULL,\n"                                                                              \
  "  since timestamptz NOT NULL DEFAULT now(),\n"                                                            \
  "  PRIMARY KEY (customer_id, order_id)\n"                                                                  \
  ");\n"                                                                                                     \
  "CREATE TABLE notification.sms (\n"                                                                        \
  "  sms_id text PRIMARY KEY,\n"                                                                             \
  "  order_id text NOT NULL UNIQUE,\n"                                                                       \
  "  customer_id text NOT NULL,\n"                                                                           \
  "  phone text NOT NULL,\n"                                                                                 \
  "  text text NOT NULL,\n"                                                                                  \
  "  provider_message_id text NOT NULL,\n"                                                                   \
  "  attempts bigint NOT NULL,\n"                                                                            \
  "  sent_at timestamptz NOT NULL\n"                                                                         \
  ");\n"                                                                                                     \
  "CREATE INDEX sms_customer ON notification.sms (customer_id, sent_at DESC);\n"

/* Migration 2: the outcomes, with those of the SMS already sent. */
#define NOTIFICATION_STORE_DDL_2                                                                             \
  "CREATE TABLE notification.outcomes (\n"                                                                   \
  "  order_id text PRIMARY KEY,\n"                                                                           \
  "  outcome text NOT NULL CHECK (outcome IN ('sent', 'failed')),\n"                                         \
  "  at timestamptz NOT NULL DEFAULT now()\n"                                                                \
  ");\n"                                                                                                     \
  "INSERT INTO notification.outcomes (order_id, outcome, at) SELECT order_id, 'sent', sent_at "              \
  "FROM notification.sms;\n"

/* Migration 3: an order's SMS may also end as expired (its customer never came). */
#define NOTIFICATION_STORE_DDL_3                                                                             \
  "ALTER TABLE notification.outcomes DROP CONSTRAINT outcomes_outcome_check,\n"                              \
  "  ADD CONSTRAINT outcomes_outcome_check CHECK (outcome IN ('sent', 'failed', 'expired'));\n"

#endif
