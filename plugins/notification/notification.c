/* Notification: an SMS to the customer for every order (seed 000).
 *
 * One process manager per order (<ctxd/saga.h>, saga "notification.sms", key = the order
 * id; the rules in domain.h) waits for OrderCreated and CustomerCreated, in either order and
 * either of them twice. When both are known it records one external call (api->call, kind
 * "sms.send", idempotency key "sms:order:<order id>") in the same transaction; after the
 * commit the host runs this plugin's executor off the loop thread, which POSTs the SMS to
 * the provider (plugins/lib: call.c, http.c) with that key as Idempotency-Key, and the outcome comes back as
 * Ctxd.Runtime.v1:CallCompleted on this context's endpoint. A "done" outcome records the SMS
 * in the read model (notification.sms) and publishes SmsSent in one transaction; "failed"
 * ends the process manager with a warning. ListCustomerSms is answered from the read model
 * (request/response).
 *
 * A process manager does not wait for ever: when it starts waiting (an order whose customer
 * is not known yet) it schedules its time-out, SmsWaitExpired to this context's endpoint
 * wait_timeout_s ahead (api->schedule, in the same transaction; the id is kept in its
 * state), cancelled (api->unschedule) when the customer comes first. Handled while the order
 * still waits, the time-out ends it as expired: recorded in notification.outcomes, the order
 * no longer awaits its customer, no SMS ever. Handled later (it had already left when the
 * customer's handler cancelled it) it is ignored.
 *
 * CustomerCreated carries no order: this context keeps its own copy of customers
 * (store.h), whose row also serialises an order and its customer handled at the same time,
 * and the orders waiting for a customer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include <ctxd/ctxd.h>
#include <ctxd/saga.h>

#include "contract_schema.h"
#include "ctxd_contracts.h"
#include "domain.h"
#include "call.h"
#include "store.h"

#define NOTIFICATION_SAGA "notification.sms"

typedef struct {
  const char *endpoint;
  const char *provider_url;
  plugin_http_call_settings_t call;
  int64_t list_limit;
  int64_t wait_timeout_s;
} notification_settings_t;

typedef struct {
  const ctxd_api_t *api;
  ctxd_plugin_t *plugin;
  const notification_settings_t *settings;
  plugin_http_target_t provider; /* provider_url, resolved at the start */
} notification_t;

static const ctxd_conf_entry_t notification_config_map[] = {
    {CTXD_CONF_STR, "endpoint", "notification", offsetof(notification_settings_t, endpoint),
     "queue receiving OrderCreated, CustomerCreated, the calls' outcomes and ListCustomerSms"},
    {CTXD_CONF_STR, "provider_url", "http://127.0.0.1:8025/sms",
     offsetof(notification_settings_t, provider_url),
     "the SMS provider: POST with the SMS as JSON and an Idempotency-Key header"},
    {CTXD_CONF_INT, "call_timeout_ms", "5000", offsetof(notification_settings_t, call.call_timeout_ms),
     "longest one POST to the provider may take (connect, send, response)"},
    {CTXD_CONF_INT, "max_attempts", "200", offsetof(notification_settings_t, call.max_attempts),
     "POSTs of one SMS without a clear answer before it is given up as failed (the default, with "
     "backoff_ms 1000 and the host's 1 h cap on the backoff, keeps trying for about 8 days)"},
    {CTXD_CONF_INT, "backoff_ms", "1000", offsetof(notification_settings_t, call.backoff_ms),
     "wait before the second POST, doubled before each next one up to the host's cap of 1 h"},
    {CTXD_CONF_INT, "list_limit", "100", offsetof(notification_settings_t, list_limit),
     "SMS a ListCustomerSms answer holds when the request names no Limit"},
    {CTXD_CONF_INT, "wait_timeout_s", "86400", offsetof(notification_settings_t, wait_timeout_s),
     "how long an order waits for its customer before it expires without an SMS (1 to 2592000)"},
    {0, NULL, NULL, 0, NULL},
};

static const ctxd_migration_t notification_migrations[] = {
    {1, "customers, awaiting orders, sms read model", "CREATE SCHEMA notification;\n" NOTIFICATION_STORE_DDL},
    {2, "outcomes of every order's SMS, kept for good", NOTIFICATION_STORE_DDL_2},
    {3, "an order's SMS may end as expired", NOTIFICATION_STORE_DDL_3},
    {0, NULL, NULL},
};

/* ---- time -------------------------------------------------------------------------------- */

static long long notification_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void notification_iso(long long ms, char out[32]) {
  time_t t = (time_t)(ms / 1000);
  struct tm tm;
  gmtime_r(&t, &tm);
  size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(out + n, 32 - n, ".%03dZ", (int)(ms % 1000));
}

/* ---- one process manager ----------------------------------------------------------------- */

/* A loaded process manager and its state. */
typedef struct {
  ctxd_saga_t saga;
  notification_state_t state;
  int changed, finish;
  int want_expiry; /* a decision asked for the time-out: scheduled on store if still waiting */
} notification_pm_t;

static int notification_pm_load(const notification_t *n, ctxd_tx_t *tx, const char *order_id,
                                notification_pm_t *pm) {
  memset(pm, 0, sizeof *pm);
  int rc = ctxd_saga_load(n->api, tx, NOTIFICATION_SAGA, order_id, &pm->saga);
  if (rc != 0) return rc;
  json_t *j = json_loads(pm->saga.state, 0, NULL);
  if (j == NULL || json_object_size(j) == 0) /* new, or cleaned up in between */
    notification_state_init(&pm->state);
  else
    rc = notification_state_from_json(j, &pm->state);
  json_decref(j);
  if (rc != 0) ctxd_saga_release(&pm->saga);
  return rc;
}

/* Schedules the time-out of a waiting process manager and keeps its id in the state. */
static int notification_pm_schedule_expiry(const notification_t *n, notification_pm_t *pm) {
  ctxd_c_notification_v1_sms_wait_expired_t e = {0};
  snprintf(e.order_id, sizeof e.order_id, "%s", pm->state.order_id);
  snprintf(e.customer_id, sizeof e.customer_id, "%s", pm->state.customer_id);
  char *body = ctxd_c_notification_v1_sms_wait_expired_encode(&e);
  if (body == NULL) return CTXD_ENOMEM;
  ctxd_out_msg_t out = {.size = sizeof out,
                        .message_type = CTXD_C_NOTIFICATION_V1_SMS_WAIT_EXPIRED_TYPE,
                        .body = body,
                        .destination = n->settings->endpoint};
  ctxd_schedule_t at = {.size = sizeof at,
                        .msg = &out,
                        .publish = 0,
                        .at_ms = notification_now_ms() + n->settings->wait_timeout_s * 1000};
  int rc = n->api->schedule(pm->saga.tx, &at, pm->state.expiry_id);
  free(body);
  if (rc != 0) return rc;
  pm->changed = 1;
  n->api->log(n->plugin, n->api->tx_msg(pm->saga.tx), CTXD_LOG_INFO,
              "order %s waits for customer %s: time-out %s in %lld s", pm->state.order_id,
              pm->state.customer_id, pm->state.expiry_id, (long long)n->settings->wait_timeout_s);
  return 0;
}

/* Saves the process manager's state (its time-out scheduled first when a decision asked for
 * one and it still waits: an order whose customer is known is decided twice in one
 * transaction, and needs none) and releases it. */
static int notification_pm_store(const notification_t *n, notification_pm_t *pm) {
  int rc = 0;
  if (pm->want_expiry && !pm->saga.finished && !pm->finish && pm->state.phase == NOTIFICATION_WAITING &&
      pm->state.expiry_id[0] == '\0')
    rc = notification_pm_schedule_expiry(n, pm);
  if (rc == 0 && pm->changed && !pm->saga.finished) {
    json_t *j = notification_state_to_json(&pm->state);
    char *text = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    rc = text == NULL ? CTXD_ENOMEM
         : pm->finish ? ctxd_saga_finish(&pm->saga, text)
                      : ctxd_saga_save(&pm->saga, text);
    free(text);
  }
  ctxd_saga_release(&pm->saga);
  return rc;
}

static int notification_publish_sent(const notification_t *n, ctxd_tx_t *tx, const notification_state_t *s,
                                     const char *sent_at) {
  ctxd_c_notification_v1_sms_sent_t e = {0};
  snprintf(e.sms_id, sizeof e.sms_id, "%s", s->sms_id);
  snprintf(e.customer_id, sizeof e.customer_id, "%s", s->customer_id);
  snprintf(e.order_id, sizeof e.order_id, "%s", s->order_id);
  e.phone_number = (char *)s->phone;
  e.text = (char *)s->text;
  e.provider_message_id = (char *)s->provider_message_id;
  e.sent_at = (char *)sent_at;
  char *body = ctxd_c_notification_v1_sms_sent_encode(&e);
  if (body == NULL) return CTXD_ENOMEM;
  ctxd_out_msg_t out = {
      .size = sizeof out, .message_type = CTXD_C_NOTIFICATION_V1_SMS_SENT_TYPE, .body = body};
  int rc = n->api->publish(tx, &out);
  free(body);
  return rc;
}

/* Decides `in` on the loaded process manager and carries the decision out: the call, the
 * SMS recorded and published, the log line. */
static int notification_pm_apply(const notification_t *n, ctxd_tx_t *tx, notification_pm_t *pm,
                                 const notification_input_t *in) {
  const ctxd_msg_t *msg = n->api->tx_msg(tx);
  if (pm->saga.finished) {
    /* over (its state may be a cleaned-up {}): nothing is decided again */
    n->api->log(n->plugin, msg, CTXD_LOG_INFO, "order %s: its process manager is finished: ignored",
                pm->saga.key);
    return 0;
  }
  notification_decision_t d;
  int rc = notification_decide(&pm->state, in, &d);
  if (rc != 0) return rc;
  if (d.note != NOTIFICATION_NOTE_NONE)
    n->api->log(n->plugin, msg, d.note == NOTIFICATION_NOTE_DUPLICATE ? CTXD_LOG_INFO : CTXD_LOG_WARN, "%s",
                d.why);
  if (d.call) {
    char *payload = notification_call_payload(&d.next);
    rc = payload == NULL ? CTXD_ENOMEM : n->api->call(tx, NOTIFICATION_CALL_KIND, d.key, payload);
    free(payload);
    if (rc == 0)
      n->api->log(n->plugin, msg, CTXD_LOG_INFO, "SMS of order %s to customer %s asked for (%s)",
                  d.next.order_id, d.next.customer_id, d.key);
  }
  if (rc == 0 && d.unschedule[0] != '\0') {
    rc = n->api->unschedule(tx, d.unschedule);
    if (rc == CTXD_ENOENT) {
      /* it has left: handled later, it finds the order calling or finished, and is ignored */
      n->api->log(n->plugin, msg, CTXD_LOG_INFO, "order %s: its time-out %s has already left",
                  d.next.order_id, d.unschedule);
      rc = 0;
    }
  }
  if (rc == 0 && d.sent) {
    char at[32];
    notification_iso(d.next.decided_at_ms, at);
    rc = notification_store_record_sms(n->api, tx, &d.next, at);
    if (rc == 0) rc = notification_store_record_outcome(n->api, tx, d.next.order_id, NOTIFICATION_SENT);
    if (rc == 0) rc = notification_publish_sent(n, tx, &d.next, at);
    if (rc == 0)
      n->api->log(n->plugin, msg, CTXD_LOG_INFO, "SMS %s of order %s sent (provider id %s, %lld attempts)",
                  d.next.sms_id, d.next.order_id, d.next.provider_message_id, d.next.attempts);
  }
  if (rc == 0 && d.finish && d.next.phase == NOTIFICATION_FAILED && pm->state.phase == NOTIFICATION_CALLING)
    rc = notification_store_record_outcome(n->api, tx, d.next.order_id, NOTIFICATION_FAILED);
  if (rc == 0 && d.finish && d.next.phase == NOTIFICATION_EXPIRED && in->kind == NOTIFICATION_IN_EXPIRY) {
    rc = notification_store_record_outcome(n->api, tx, d.next.order_id, NOTIFICATION_EXPIRED);
    if (rc == 0) rc = notification_store_unawait(n->api, tx, d.next.customer_id, d.next.order_id);
  }
  if (rc == 0) {
    pm->state = d.next;
    pm->changed |= d.changed;
    pm->finish |= d.finish;
    pm->want_expiry |= d.schedule_expiry;
  }
  return rc;
}

/* ---- handlers ---------------------------------------------------------------------------- */

static ctxd_handler_result_t notification_result(const notification_t *n, ctxd_tx_t *tx, int rc,
                                                 const char *what) {
  if (rc == 0) return CTXD_HANDLER_OK;
  if (rc == CTXD_ECONFLICT) return CTXD_HANDLER_RETRY; /* a deadlock between two customers' orders */
  const char *err = n->api->tx_error(tx);
  n->api->tx_fault(tx, what, err[0] ? err : ctxd_strerror(rc));
  return CTXD_HANDLER_FAIL;
}

/* The customer, as the process manager's input. */
static notification_input_t notification_customer_input(const char *customer_id,
                                                        const notification_customer_t *c) {
  return (notification_input_t){.kind = NOTIFICATION_IN_CUSTOMER,
                                .at_ms = notification_now_ms(),
                                .customer_id = customer_id,
                                .customer_name = c->name,
                                .phone = c->phone};
}

/* Decodes the handler's message as contract `c` (ctxd_c_<c>_t) into *m, or frees m, says why
 * and fails the message (the host validated the body: only memory can fail here). */
#define NOTIFICATION_DECODE(n, tx, msg, c, m)                                                                \
  do {                                                                                                       \
    size_t len_;                                                                                             \
    char err_[256];                                                                                          \
    const char *body_ = (n)->api->msg_body((msg), &len_);                                                    \
    if (ctxd_c_##c##_decode(body_, len_, (m), err_, sizeof err_) != 0) {                                     \
      ctxd_c_##c##_free(m);                                                                                  \
      (n)->api->tx_fault((tx), "Notification.Malformed", err_);                                              \
      return CTXD_HANDLER_FAIL;                                                                              \
    }                                                                                                        \
  } while (0)

/* Locks the customer's row, then loads the order's process manager: every handler of an
 * order takes its locks in this order (docs/contexts.md). On error pm holds nothing. */
static int notification_open(const notification_t *n, ctxd_tx_t *tx, const char *customer_id,
                             const char *order_id, notification_customer_t *c, notification_pm_t *pm) {
  int rc = notification_store_lock_customer(n->api, tx, customer_id, c);
  return rc != 0 ? rc : notification_pm_load(n, tx, order_id, pm);
}

static ctxd_handler_result_t notification_on_order(ctxd_tx_t *tx, const ctxd_msg_t *msg, void *data) {
  const notification_t *n = data;
  ctxd_c_ordering_v1_order_created_t o;
  NOTIFICATION_DECODE(n, tx, msg, ordering_v1_order_created, &o);
  notification_customer_t c;
  notification_pm_t pm;
  notification_phase_t ended = NOTIFICATION_WAITING;
  int rc = notification_open(n, tx, o.customer_id, o.order_id, &c, &pm);
  int loaded = rc == 0;
  if (rc == 0) rc = notification_store_outcome(n->api, tx, o.order_id, &ended);
  if (rc == 0) {
    notification_input_t in = {.kind = NOTIFICATION_IN_ORDER,
                               .at_ms = notification_now_ms(),
                               .order_id = o.order_id,
                               .order_number = o.order_number,
                               .customer_id = o.customer_id,
                               .already = ended};
    rc = notification_pm_apply(n, tx, &pm, &in);
  }
  /* still waiting for its customer: this message's customer, when it is the order's (a copy
   * naming another customer was only warned about) */
  if (rc == 0 && !pm.saga.finished && pm.state.phase == NOTIFICATION_WAITING && pm.state.has_order &&
      !pm.state.has_customer && strcmp(pm.state.customer_id, o.customer_id) == 0) {
    if (c.known) {
      notification_input_t in = notification_customer_input(o.customer_id, &c);
      rc = notification_pm_apply(n, tx, &pm, &in);
    } else {
      rc = notification_store_await(n->api, tx, o.customer_id, o.order_id);
    }
  }
  if (loaded) {
    int src = notification_pm_store(n, &pm);
    if (rc == 0) rc = src;
  }
  ctxd_c_ordering_v1_order_created_free(&o);
  return notification_result(n, tx, rc, "Notification.OrderFailed");
}

/* The customer to one waiting order. */
static int notification_customer_to_order(const notification_t *n, ctxd_tx_t *tx, const char *order_id,
                                          const char *customer_id, const notification_customer_t *c) {
  notification_pm_t pm;
  int rc = notification_pm_load(n, tx, order_id, &pm);
  if (rc != 0) return rc;
  notification_input_t in = notification_customer_input(customer_id, c);
  rc = notification_pm_apply(n, tx, &pm, &in);
  int src = notification_pm_store(n, &pm);
  return rc != 0 ? rc : src;
}

static ctxd_handler_result_t notification_on_customer(ctxd_tx_t *tx, const ctxd_msg_t *msg, void *data) {
  const notification_t *n = data;
  ctxd_c_customers_v1_customer_created_t m;
  NOTIFICATION_DECODE(n, tx, msg, customers_v1_customer_created, &m);
  notification_customer_t c;
  int rc = notification_store_lock_customer(n->api, tx, m.customer_id, &c);
  if (rc == 0 && !c.known) {
    rc = notification_store_set_customer(n->api, tx, m.customer_id, m.name, m.phone_number);
    c.known = 1;
    snprintf(c.name, sizeof c.name, "%s", m.name);
    snprintf(c.phone, sizeof c.phone, "%s", m.phone_number);
  } else if (rc == 0) {
    int same = strcmp(c.name, m.name) == 0 && strcmp(c.phone, m.phone_number) == 0;
    n->api->log(n->plugin, msg, same ? CTXD_LOG_INFO : CTXD_LOG_WARN, "customer %s again%s", m.customer_id,
                same ? "" : " with other details: the first kept");
  }
  ctxd_rows_t *waiting = NULL;
  if (rc == 0) rc = notification_store_take_awaiting(n->api, tx, m.customer_id, &waiting);
  for (int i = 0; rc == 0 && i < n->api->rows_count(waiting); i++)
    rc = notification_customer_to_order(n, tx, n->api->rows_value(waiting, i, 0), m.customer_id, &c);
  if (waiting != NULL) n->api->rows_free(waiting);
  ctxd_c_customers_v1_customer_created_free(&m);
  return notification_result(n, tx, rc, "Notification.CustomerFailed");
}

static ctxd_handler_result_t notification_on_call_completed(ctxd_tx_t *tx, const ctxd_msg_t *msg,
                                                            void *data) {
  const notification_t *n = data;
  size_t len;
  const char *body = n->api->msg_body(msg, &len);
  json_t *m = json_loadb(body, len, 0, NULL);
  const char *kind = json_string_value(ctxd__schema_get_ci(m, "Kind"));
  const char *key = json_string_value(ctxd__schema_get_ci(m, "IdempotencyKey"));
  const char *status = json_string_value(ctxd__schema_get_ci(m, "Status"));
  const json_t *outcome = ctxd__schema_get_ci(m, "Outcome");
  static const char prefix[] = "sms:order:";
  if (kind == NULL || strcmp(kind, NOTIFICATION_CALL_KIND) != 0 || key == NULL ||
      strncmp(key, prefix, sizeof prefix - 1) != 0 || status == NULL) {
    n->api->tx_fault(tx, "Notification.Malformed", "CallCompleted of another kind or without key or status");
    json_decref(m);
    return CTXD_HANDLER_FAIL;
  }
  const char *order_id = key + sizeof prefix - 1;
  notification_pm_t pm;
  int rc = notification_pm_load(n, tx, order_id, &pm);
  if (rc == 0) {
    if (pm.saga.created) {
      /* no process manager asked for it (or it was cleaned up): nothing to resume. It ends
       * as failed, never waiting: an order coming later must not start an SMS whose outcome
       * could no longer be recorded */
      n->api->log(n->plugin, msg, CTXD_LOG_WARN, "outcome of %s without its process manager: ignored", key);
      pm.state.phase = NOTIFICATION_FAILED;
      pm.changed = pm.finish = 1;
    } else {
      const char *pid = json_string_value(ctxd__schema_get_ci(outcome, "providerMessageId"));
      const char *error = json_string_value(ctxd__schema_get_ci(outcome, "error"));
      const json_t *attempts = ctxd__schema_get_ci(m, "Attempts");
      notification_input_t in = {.kind = strcmp(status, "done") == 0 ? NOTIFICATION_IN_CALL_DONE
                                                                     : NOTIFICATION_IN_CALL_FAILED,
                                 .at_ms = notification_now_ms(),
                                 .provider_message_id = notification_provider_id_ok(pid) ? pid : key,
                                 .reason = error,
                                 .attempts = json_is_integer(attempts) ? json_integer_value(attempts) : 0};
      rc = notification_pm_apply(n, tx, &pm, &in);
    }
    int src = notification_pm_store(n, &pm);
    if (rc == 0) rc = src;
  }
  json_decref(m);
  return notification_result(n, tx, rc, "Notification.OutcomeFailed");
}

/* The time-out of an order waiting for its customer. The customer's row first, as every
 * handler (it orders this with the customer coming at the same moment), then the order's
 * process manager. */
static ctxd_handler_result_t notification_on_expiry(ctxd_tx_t *tx, const ctxd_msg_t *msg, void *data) {
  const notification_t *n = data;
  ctxd_c_notification_v1_sms_wait_expired_t m;
  NOTIFICATION_DECODE(n, tx, msg, notification_v1_sms_wait_expired, &m);
  notification_customer_t c;
  notification_pm_t pm;
  int rc = notification_open(n, tx, m.customer_id, m.order_id, &c, &pm);
  if (rc == 0 && pm.saga.created) {
    /* gone (cleaned up after its end) or never there: nothing waits. Finished as it is ({}),
     * so no order starts it again before the cleanup */
    n->api->log(n->plugin, msg, CTXD_LOG_WARN, "time-out of order %s without its process manager: ignored",
                m.order_id);
    rc = ctxd_saga_finish(&pm.saga, NULL);
    ctxd_saga_release(&pm.saga);
  } else if (rc == 0) {
    notification_input_t in = {
        .kind = NOTIFICATION_IN_EXPIRY, .at_ms = notification_now_ms(), .order_id = m.order_id};
    rc = notification_pm_apply(n, tx, &pm, &in);
    int src = notification_pm_store(n, &pm);
    if (rc == 0) rc = src;
  }
  ctxd_c_notification_v1_sms_wait_expired_free(&m);
  return notification_result(n, tx, rc, "Notification.ExpiryFailed");
}

static ctxd_handler_result_t notification_on_list(ctxd_tx_t *tx, const ctxd_msg_t *msg, void *data) {
  const notification_t *n = data;
  ctxd_c_notification_v1_list_customer_sms_t q;
  NOTIFICATION_DECODE(n, tx, msg, notification_v1_list_customer_sms, &q);
  ctxd_rows_t *rows = NULL;
  int rc = notification_store_list(n->api, tx, q.customer_id, q.has_limit ? q.limit : n->settings->list_limit,
                                   &rows);
  if (rc == 0) {
    int count = n->api->rows_count(rows);
    ctxd_c_notification_v1_customer_sms_list_messages_item_t *items =
        calloc((size_t)count + 1, sizeof *items);
    ctxd_c_notification_v1_customer_sms_list_t r = {0};
    snprintf(r.customer_id, sizeof r.customer_id, "%s", q.customer_id);
    r.total = count > 0 ? strtoll(n->api->rows_value(rows, 0, 6), NULL, 10) : 0;
    for (int i = 0; items != NULL && i < count; i++) {
      snprintf(items[i].sms_id, sizeof items[i].sms_id, "%s", n->api->rows_value(rows, i, 0));
      snprintf(items[i].order_id, sizeof items[i].order_id, "%s", n->api->rows_value(rows, i, 1));
      items[i].phone_number = (char *)n->api->rows_value(rows, i, 2);
      items[i].text = (char *)n->api->rows_value(rows, i, 3);
      items[i].provider_message_id = (char *)n->api->rows_value(rows, i, 4);
      items[i].sent_at = (char *)n->api->rows_value(rows, i, 5);
    }
    r.messages = items;
    r.messages_count = (size_t)count;
    char *reply = items != NULL ? ctxd_c_notification_v1_customer_sms_list_encode(&r) : NULL;
    ctxd_out_msg_t out = {
        .size = sizeof out, .message_type = CTXD_C_NOTIFICATION_V1_CUSTOMER_SMS_LIST_TYPE, .body = reply};
    rc = reply == NULL ? CTXD_ENOMEM : n->api->respond(tx, &out);
    if (rc == CTXD_ENOENT) {
      n->api->log(n->plugin, msg, CTXD_LOG_WARN, "ListCustomerSms without a responseAddress: not answered");
      rc = 0;
    }
    free(reply);
    free(items);
    n->api->rows_free(rows);
  }
  ctxd_c_notification_v1_list_customer_sms_free(&q);
  return notification_result(n, tx, rc, "Notification.ListFailed");
}

/* ---- the executor: one POST to the provider ---------------------------------------------- */

/* The provider's id of an accepted SMS: "id", "messageId" or "providerMessageId" of its
 * answer, unless the contracts cannot carry it (the key then stands for it). */
static const char *const notification_id_names[] = {"providerMessageId", "messageId", "id", NULL};
static const plugin_http_answers_t notification_answers = {
    .peer = "the provider",
    .outcome_id = "providerMessageId",
    .id_names = notification_id_names,
    .id_ok = notification_provider_id_ok,
};

static ctxd_call_result_t notification_send_sms(const ctxd_call_t *call, void *data) {
  const notification_t *n = data;
  return plugin_http_call(n->api, n->plugin, call, &n->provider, (int)n->settings->call.call_timeout_ms,
                          &notification_answers);
}

/* ---- lifecycle --------------------------------------------------------------------------- */

static int notification_init(ctxd_plugin_t *plugin, const ctxd_api_t *api, void **state) {
  if (!CTXD_API_HAS(api, call_outcome)) {
    api->log(plugin, NULL, CTXD_LOG_ERROR,
             "needs a host with ABI 1.2 (scheduled messages, external calls), this one has %u.%u",
             api->abi_major, api->abi_minor);
    return CTXD_EABI;
  }
  notification_t *n = calloc(1, sizeof *n);
  if (n == NULL) return CTXD_ENOMEM;
  n->api = api;
  n->plugin = plugin;
  n->settings = api->settings(plugin);
  *state = n;
  const notification_settings_t *s = n->settings;
  char err[256];
  if (plugin_http_call_settings_check(&s->call, err, sizeof err) != 0) {
    api->log(plugin, NULL, CTXD_LOG_ERROR, "settings: %s", err);
    return CTXD_ECONFIG;
  }
  if (s->list_limit < 1 || s->list_limit > 500 || s->wait_timeout_s < 1 || s->wait_timeout_s > 2592000) {
    api->log(plugin, NULL, CTXD_LOG_ERROR,
             "settings: list_limit must be 1 to 500, wait_timeout_s 1 to 2592000");
    return CTXD_ECONFIG;
  }
  /* the provider's address, once: a bad URL is a configuration error now, not an SMS failed
   * max_attempts times later, and no POST waits on the resolver */
  if (plugin_http_target_init(&n->provider, s->provider_url, err, sizeof err) != 0) {
    api->log(plugin, NULL, CTXD_LOG_ERROR, "settings: provider_url: %s", err);
    return CTXD_ECONFIG;
  }
  static const struct {
    const char *type;
    ctxd_handler_cb handler;
  } routes[] = {
      {CTXD_C_ORDERING_V1_ORDER_CREATED_TYPE, notification_on_order},
      {CTXD_C_CUSTOMERS_V1_CUSTOMER_CREATED_TYPE, notification_on_customer},
      {CTXD_C_RUNTIME_V1_CALL_COMPLETED_TYPE, notification_on_call_completed},
      {CTXD_C_NOTIFICATION_V1_LIST_CUSTOMER_SMS_TYPE, notification_on_list},
      {CTXD_C_NOTIFICATION_V1_SMS_WAIT_EXPIRED_TYPE, notification_on_expiry},
  };
  int rc = 0;
  for (size_t i = 0; rc == 0 && i < sizeof routes / sizeof *routes; i++) {
    /* One message per transaction, a hard rule (docs/contexts.md): a handler locks its
     * customer's row, then process managers; a batch takes its messages' locks in the
     * order they came, so two batches could deadlock (then retry and deadlock again,
     * until _error). The configuration's endpoint section can override this: it must not. */
    ctxd_consumer_t c = {.size = sizeof c,
                         .endpoint = s->endpoint,
                         .message_type = routes[i].type,
                         .handler = routes[i].handler,
                         .data = n,
                         .batch_size = 1};
    rc = api->consumer_register(plugin, &c);
  }
  if (rc == 0)
    rc = plugin_http_executor_register(api, plugin, NOTIFICATION_CALL_KIND, notification_send_sms, n,
                                       s->endpoint, &s->call);
  return rc;
}

static void notification_destroy(void *state) {
  notification_t *n = state;
  if (n != NULL) plugin_http_target_free(&n->provider);
  free(n);
}

static const ctxd_plugin_desc_t notification_desc = {
    CTXD_PLUGIN_STAMP, /* size, ABI version, build flags */
    .name = "notification",
    .version = "1.0.0",
    .description = "an SMS to the customer for every order, once: a process manager and an external call",
    .config_map = notification_config_map,
    .settings_size = sizeof(notification_settings_t),
    .migrations = notification_migrations,
    .init = notification_init,
    .destroy = notification_destroy,
};

CTXD_PLUGIN_DEFINE(notification_desc)
