/* Paying: paying orders (seed 003), read-write and read-only models apart (CQRS).
 *
 * The read-write model, on `endpoint`: OpenPayingOrder, PayOrder (the payment system's
 * callback) and CancelOrder. Each is read into a domain command (domain.h), decided on the
 * order loaded with a row lock (store.h), and the changed columns, the change log, the
 * payment, the events (OrderPayFinished, OverPaid, PayingOrderCanceled) and the reply commit
 * with the inbox row. Answers: PayingCommandAccepted at the response address (none without
 * one); PayingCommandRejected there, or published when the command has none, so that a
 * refused payment (a canceled order's, which the seed ignores with a warning) reaches the
 * payment system, which refunds it. A refused payment is recorded (paying.payments, status
 * 'refused'): its repeated callback is answered again at its response address (Repeated)
 * and never published again. A payment for an order not opened yet (the callback overtook
 * OpenPayingOrder) asks for a retry: the endpoint's immediate retries and delayed
 * redeliveries (redelivery_ms) give the order time to open; after the last it goes to
 * <endpoint>_error, from where an operator can replay it.
 *
 * The read-only model, on `read_endpoint`: GetAmountToPay (the cashier) and
 * GetPaymentResult (the result page), answered with AmountToPay and PaymentResult by
 * request/response. It reads the order without a lock and decides nothing, so reads never
 * wait behind the commands' locks or their queue. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ctxd/ctxd.h>

#include "ctxd_contracts.h"
#include "domain.h"
#include "store.h"

typedef struct {
  const char *endpoint;
  const char *read_endpoint;
} paying_settings_t;

static const ctxd_conf_entry_t paying_config_map[] = {
    {CTXD_CONF_STR, "endpoint", "paying", offsetof(paying_settings_t, endpoint),
     "queue of the read-write model: OpenPayingOrder, PayOrder, CancelOrder"},
    {CTXD_CONF_STR, "read_endpoint", "paying-read", offsetof(paying_settings_t, read_endpoint),
     "queue of the read-only model: GetAmountToPay, GetPaymentResult"},
    {0, NULL, NULL, 0, NULL},
};

static const ctxd_migration_t paying_migrations[] = {
    {1, "paying orders, payments, change log", PAYING_STORE_DDL},
    {2, "checks, refused payments, the payment system's time", PAYING_STORE_DDL_2},
    {0, NULL, NULL},
};

_Static_assert((int)CTXD_C_PAYING_V1_OPEN_PAYING_ORDER_KIND_NORMAL == (int)PAYING_KIND_NORMAL &&
                   (int)CTXD_C_PAYING_V1_OPEN_PAYING_ORDER_KIND_GROUP_BUY == (int)PAYING_KIND_GROUP_BUY &&
                   (int)CTXD_C_PAYING_V1_OPEN_PAYING_ORDER_KIND_FREE == (int)PAYING_KIND_FREE,
               "kind numbers");
_Static_assert((int)CTXD_C_PAYING_V1_PAYING_COMMAND_ACCEPTED_STATE_PAYING == (int)PAYING_STATE_PAYING &&
                   (int)CTXD_C_PAYING_V1_PAYING_COMMAND_ACCEPTED_STATE_PAID == (int)PAYING_STATE_PAID &&
                   (int)CTXD_C_PAYING_V1_PAYING_COMMAND_ACCEPTED_STATE_CANCELED == (int)PAYING_STATE_CANCELED,
               "state numbers");

typedef struct paying_plugin paying_plugin_t;

/* A command as read from its contract: the texts the domain command points into. The host
 * checked each against its contract's max_length (characters), so each fits whole: a
 * character is at most PAYING_UTF8_MAX bytes. */
typedef struct {
  paying_command_t cmd;
  char order_number[PAYING_ID_SIZE];
  char group_id[PAYING_ID_SIZE];
  char payment_id[PAYING_ID_SIZE];
  char currency[PAYING_UTF8_MAX * 3 + 1]; /* 3 characters: the domain wants 3 capital letters */
  char reason[PAYING_TEXT_SIZE];
  char actor[PAYING_ID_SIZE];
  char paid_at[64]; /* PayOrder.PaidAt as sent; "" when not */
} paying_input_t;

typedef int (*paying_read_fn)(const char *body, size_t len, paying_input_t *in, char *err, size_t errlen);
typedef int (*paying_handle_fn)(const paying_plugin_t *st, ctxd_tx_t *tx, const paying_input_t *in);

typedef struct {
  const char *type;
  paying_read_fn read;
  paying_handle_fn handle;
  int read_model; /* on read_endpoint */
} paying_route_t;

typedef struct {
  const paying_plugin_t *st;
  const paying_route_t *route;
} paying_binding_t;

#define PAYING_ROUTES 5

struct paying_plugin {
  const ctxd_api_t *api;
  ctxd_plugin_t *plugin;
  const paying_settings_t *settings;
  paying_binding_t bindings[PAYING_ROUTES];
};

/* ---- time ---------------------------------------------------------------------------------- */

static int64_t paying_clock_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ISO 8601 UTC with milliseconds, as the contracts' datetime; NULL for 0 (not so). */
static const char *paying_iso(int64_t ms, char out[64]) {
  if (ms <= 0) return NULL;
  time_t secs = (time_t)(ms / 1000);
  struct tm t;
  gmtime_r(&secs, &t);
  snprintf(out, 64, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", t.tm_year + 1900, t.tm_mon + 1, t.tm_mday,
           t.tm_hour, t.tm_min, t.tm_sec, (int)(ms % 1000));
  return out;
}

/* ---- reading the contracts --------------------------------------------------------------- */

/* Never cut inside a character (a text past its buffer is past its limit: the domain
 * refuses it by its characters). */
static void paying_copy(char *dst, size_t cap, const char *src) { paying_text_copy(dst, cap, src); }

static int paying_read_open(const char *body, size_t len, paying_input_t *in, char *err, size_t errlen) {
  ctxd_c_paying_v1_open_paying_order_t c;
  int rc = ctxd_c_paying_v1_open_paying_order_decode(body, len, &c, err, errlen);
  paying_copy(in->order_number, sizeof in->order_number, c.order_number);
  paying_copy(in->group_id, sizeof in->group_id, c.group_id);
  paying_copy(in->currency, sizeof in->currency, c.currency);
  in->cmd.op = PAYING_OP_OPEN;
  in->cmd.kind = (paying_kind_t)c.kind;
  in->cmd.amount = c.amount_minor;
  ctxd_c_paying_v1_open_paying_order_free(&c);
  return rc;
}

static int paying_read_pay(const char *body, size_t len, paying_input_t *in, char *err, size_t errlen) {
  ctxd_c_paying_v1_pay_order_t c;
  int rc = ctxd_c_paying_v1_pay_order_decode(body, len, &c, err, errlen);
  paying_copy(in->order_number, sizeof in->order_number, c.order_number);
  paying_copy(in->payment_id, sizeof in->payment_id, c.payment_id);
  paying_copy(in->currency, sizeof in->currency, c.currency);
  in->cmd.op = PAYING_OP_PAY;
  in->cmd.amount = c.amount_minor;
  in->cmd.free_pay = c.has_free_pay && c.free_pay;
  paying_copy(in->paid_at, sizeof in->paid_at, c.paid_at);
  ctxd_c_paying_v1_pay_order_free(&c);
  return rc;
}

static int paying_read_cancel(const char *body, size_t len, paying_input_t *in, char *err, size_t errlen) {
  ctxd_c_paying_v1_cancel_order_t c;
  int rc = ctxd_c_paying_v1_cancel_order_decode(body, len, &c, err, errlen);
  paying_copy(in->order_number, sizeof in->order_number, c.order_number);
  paying_copy(in->reason, sizeof in->reason, c.reason);
  paying_copy(in->actor, sizeof in->actor, c.canceled_by);
  in->cmd.op = PAYING_OP_CANCEL;
  ctxd_c_paying_v1_cancel_order_free(&c);
  return rc;
}

/* Both queries are {OrderNumber} alone, with the same limits (two generated types of one
 * shape): GetAmountToPay's decoder reads either. */
static int paying_read_query(const char *body, size_t len, paying_input_t *in, char *err, size_t errlen) {
  ctxd_c_paying_v1_get_amount_to_pay_t c;
  int rc = ctxd_c_paying_v1_get_amount_to_pay_decode(body, len, &c, err, errlen);
  paying_copy(in->order_number, sizeof in->order_number, c.order_number);
  ctxd_c_paying_v1_get_amount_to_pay_free(&c);
  return rc;
}

/* ---- writing ------------------------------------------------------------------------------- */

enum { PAYING_PUBLISH, PAYING_REPLY_ONLY, PAYING_REPLY_OR_PUBLISH };

/* Writes body (freed here; NULL: the encoder refused it) to the outbox. */
static int paying_out(const paying_plugin_t *st, ctxd_tx_t *tx, const char *type, char *body, int how) {
  if (body == NULL) return CTXD_EVALIDATION;
  ctxd_out_msg_t out = {.size = sizeof out, .message_type = type, .body = body};
  int rc = how == PAYING_PUBLISH ? st->api->publish(tx, &out) : st->api->respond(tx, &out);
  if (rc == CTXD_ENOENT && how != PAYING_PUBLISH) {
    /* no response address */
    rc = how == PAYING_REPLY_OR_PUBLISH ? st->api->publish(tx, &out) : 0;
  }
  free(body);
  return rc;
}

/* A payment refused: new (IGNORED, said once, published without a response address) or
 * its callback again (REPEATED with the refused payment's text: answered, never published). */
static bool paying_refused(int code, const paying_decision_t *d, const paying_command_t *cmd) {
  return code == 0 && cmd->op == PAYING_OP_PAY &&
         (d->outcome == PAYING_OUTCOME_IGNORED ||
          (d->outcome == PAYING_OUTCOME_REPEATED && cmd->payment_known == PAYING_PAYMENT_REFUSED));
}

static int32_t paying_reject_reason(int code) {
  if (code == 0) /* a refused payment: the order is canceled */
    return CTXD_C_PAYING_V1_PAYING_COMMAND_REJECTED_REASON_ORDER_CANCELED;
  switch (code) {
  case CTXD_ENOENT: return CTXD_C_PAYING_V1_PAYING_COMMAND_REJECTED_REASON_NOT_FOUND;
  case CTXD_ESTATE: return CTXD_C_PAYING_V1_PAYING_COMMAND_REJECTED_REASON_NOT_ALLOWED_IN_STATE;
  case CTXD_EEXIST: return CTXD_C_PAYING_V1_PAYING_COMMAND_REJECTED_REASON_ALREADY_EXISTS;
  default: return CTXD_C_PAYING_V1_PAYING_COMMAND_REJECTED_REASON_INVALID;
  }
}

/* cmd: the command as decided (with what the repository knew of its payment). */
static int paying_reply(const paying_plugin_t *st, ctxd_tx_t *tx, const paying_input_t *in,
                        const paying_command_t *cmd, const paying_order_t *o, int code,
                        const paying_decision_t *d) {
  bool refused = paying_refused(code, d, cmd);
  if (code != 0 || refused) {
    bool pay = in->cmd.op == PAYING_OP_PAY, again = refused && d->outcome == PAYING_OUTCOME_REPEATED;
    ctxd_c_paying_v1_paying_command_rejected_t r = {.order_number = (char *)in->order_number,
                                                    .reason = paying_reject_reason(code),
                                                    .message = (char *)d->why,
                                                    .has_state = o != NULL,
                                                    .state = o != NULL ? (int32_t)o->state : 0,
                                                    .payment_id = pay ? (char *)in->payment_id : NULL,
                                                    .has_amount_minor = pay && in->cmd.amount >= 0,
                                                    .amount_minor = in->cmd.amount,
                                                    .currency = pay ? (char *)in->currency : NULL,
                                                    .has_repeated = again,
                                                    .repeated = again};
    return paying_out(st, tx, CTXD_C_PAYING_V1_PAYING_COMMAND_REJECTED_TYPE,
                      ctxd_c_paying_v1_paying_command_rejected_encode(&r),
                      again ? PAYING_REPLY_ONLY : PAYING_REPLY_OR_PUBLISH);
  }
  ctxd_c_paying_v1_paying_command_accepted_t a = {.order_number = (char *)o->order_number,
                                                  .state = (int32_t)o->state,
                                                  .paid_amount_minor = o->paid,
                                                  .version = o->version,
                                                  .note = d->why[0] ? (char *)d->why : NULL};
  return paying_out(st, tx, CTXD_C_PAYING_V1_PAYING_COMMAND_ACCEPTED_TYPE,
                    ctxd_c_paying_v1_paying_command_accepted_encode(&a), PAYING_REPLY_ONLY);
}

static int paying_publish(const paying_plugin_t *st, ctxd_tx_t *tx, paying_event_t e,
                          const paying_decision_t *d, const paying_input_t *in) {
  const paying_order_t *o = &d->order;
  char at[64];
  char *group = o->group_id[0] ? (char *)o->group_id : NULL;
  switch (e) {
  case PAYING_EVENT_PAY_FINISHED: {
    ctxd_c_paying_v1_order_pay_finished_t m = {.order_number = (char *)o->order_number,
                                               .kind = (int32_t)o->kind,
                                               .group_id = group,
                                               .amount_minor = o->amount,
                                               .paid_amount_minor = o->paid,
                                               .currency = (char *)o->currency,
                                               .paid_at = (char *)paying_iso(o->paid_at, at)};
    return paying_out(st, tx, CTXD_C_PAYING_V1_ORDER_PAY_FINISHED_TYPE,
                      ctxd_c_paying_v1_order_pay_finished_encode(&m), PAYING_PUBLISH);
  }
  case PAYING_EVENT_OVER_PAID: {
    ctxd_c_paying_v1_over_paid_t m = {.order_number = (char *)o->order_number,
                                      .payment_id = (char *)in->payment_id,
                                      .amount_minor = o->amount,
                                      .paid_amount_minor = o->paid,
                                      .over_paid_amount_minor = d->over_paid, /* this payment's */
                                      .currency = (char *)o->currency};
    return paying_out(st, tx, CTXD_C_PAYING_V1_OVER_PAID_TYPE, ctxd_c_paying_v1_over_paid_encode(&m),
                      PAYING_PUBLISH);
  }
  default: {
    ctxd_c_paying_v1_paying_order_canceled_t m = {.order_number = (char *)o->order_number,
                                                  .kind = (int32_t)o->kind,
                                                  .paid_amount_minor = o->paid,
                                                  .currency = (char *)o->currency,
                                                  .reason =
                                                      o->cancel_reason[0] ? (char *)o->cancel_reason : NULL,
                                                  .canceled_at = (char *)paying_iso(o->canceled_at, at)};
    return paying_out(st, tx, CTXD_C_PAYING_V1_PAYING_ORDER_CANCELED_TYPE,
                      ctxd_c_paying_v1_paying_order_canceled_encode(&m), PAYING_PUBLISH);
  }
  }
}

/* ---- the read-write model ------------------------------------------------------------------ */

static int paying_handle_command(const paying_plugin_t *st, ctxd_tx_t *tx, const paying_input_t *in) {
  const ctxd_msg_t *msg = st->api->tx_msg(tx);
  paying_order_t current;
  paying_decision_t d;
  bool found = false;
  paying_command_t cmd = in->cmd;
  int rc = paying_store_load(st->api, tx, in->order_number, true, &current, &found);
  if (rc == 0 && found && in->cmd.op == PAYING_OP_PAY)
    rc = paying_store_payment_find(st->api, tx, in->order_number, in->payment_id, &cmd.payment_known,
                                   &cmd.known_amount);
  if (rc != 0) return rc;
  int code = paying_order_decide(found ? &current : NULL, &cmd, &d);
  const char *op = paying_op_name(cmd.op);
  if (code == CTXD_ENOENT && cmd.op == PAYING_OP_PAY) {
    /* the callback overtook OpenPayingOrder: delivered again later (the endpoint's retries) */
    st->api->log(st->plugin, msg, CTXD_LOG_INFO, "pay of order %s: not open yet, delivered again later",
                 in->order_number);
    return CTXD_ENOENT;
  }
  if (code != 0)
    st->api->log(st->plugin, msg, CTXD_LOG_INFO, "%s of order %s refused: %s", op, in->order_number, d.why);
  else if (d.outcome == PAYING_OUTCOME_IGNORED)
    st->api->log(st->plugin, msg, CTXD_LOG_WARN, "%s", d.why); /* the seed's log.warn */
  else if (d.why[0])
    st->api->log(st->plugin, msg, CTXD_LOG_INFO, "%s of order %s: %s", op, in->order_number, d.why);
  if (code == 0 && (d.outcome == PAYING_OUTCOME_APPLIED || d.record_refusal)) {
    paying_cause_t cause = {.operation = op,
                            .message_id = st->api->msg_field(msg, CTXD_MSG_ID),
                            .payment_id = d.record_payment || d.record_refusal ? in->payment_id : NULL,
                            .refused = d.record_refusal,
                            .payment_amount = cmd.amount,
                            .free_pay = cmd.free_pay,
                            .paid_at = in->paid_at[0] ? in->paid_at : NULL,
                            .at = cmd.at};
    rc = paying_store_save(st->api, tx, found ? &current : NULL, &d.order, &cause);
    for (size_t i = 0; rc == 0 && i < d.n_events; i++) rc = paying_publish(st, tx, d.events[i], &d, in);
    if (rc == 0 && d.n_events > 0)
      st->api->log(st->plugin, msg, CTXD_LOG_INFO, "order %s %s%s%s: paid %lld of %lld %s",
                   d.order.order_number, paying_event_name(d.events[0]), d.n_events > 1 ? ", " : "",
                   d.n_events > 1 ? paying_event_name(d.events[1]) : "", (long long)d.order.paid,
                   (long long)d.order.amount, d.order.currency);
  }
  if (rc == 0) rc = paying_reply(st, tx, in, &cmd, code == 0 ? &d.order : found ? &current : NULL, code, &d);
  return rc;
}

/* ---- the read-only model ------------------------------------------------------------------- */

static int paying_answer_amount(const paying_plugin_t *st, ctxd_tx_t *tx, const paying_input_t *in) {
  paying_order_t o = {0}; /* not found: the view of nothing, unused */
  bool found;
  int rc = paying_store_load(st->api, tx, in->order_number, false, &o, &found);
  if (rc != 0) return rc;
  paying_view_t v = paying_order_view(&o);
  ctxd_c_paying_v1_amount_to_pay_t a = {.order_number = (char *)in->order_number, .found = found};
  if (found) {
    a.has_state = a.has_amount_minor = a.has_paid_amount_minor = a.has_due_amount_minor = true;
    a.state = (int32_t)v.state;
    a.amount_minor = v.amount;
    a.paid_amount_minor = v.paid;
    a.due_amount_minor = v.due;
    a.currency = o.currency;
  }
  return paying_out(st, tx, CTXD_C_PAYING_V1_AMOUNT_TO_PAY_TYPE, ctxd_c_paying_v1_amount_to_pay_encode(&a),
                    PAYING_REPLY_ONLY);
}

static int paying_answer_result(const paying_plugin_t *st, ctxd_tx_t *tx, const paying_input_t *in) {
  paying_order_t o = {0}; /* not found: the view of nothing, unused */
  bool found;
  char paid_at[64], canceled_at[64];
  int rc = paying_store_load(st->api, tx, in->order_number, false, &o, &found);
  if (rc != 0) return rc;
  paying_view_t v = paying_order_view(&o);
  ctxd_c_paying_v1_payment_result_t r = {.order_number = (char *)in->order_number, .found = found};
  if (found) {
    r.has_state = r.has_paid = r.has_amount_minor = r.has_paid_amount_minor = true;
    r.has_over_paid_amount_minor = r.has_payments = true;
    r.state = (int32_t)v.state;
    r.paid = v.paid_in_full;
    r.amount_minor = v.amount;
    r.paid_amount_minor = v.paid;
    r.over_paid_amount_minor = v.over_paid;
    r.payments = o.payments;
    r.currency = o.currency;
    r.paid_at = (char *)paying_iso(o.paid_at, paid_at);
    r.canceled_at = (char *)paying_iso(o.canceled_at, canceled_at);
  }
  return paying_out(st, tx, CTXD_C_PAYING_V1_PAYMENT_RESULT_TYPE, ctxd_c_paying_v1_payment_result_encode(&r),
                    PAYING_REPLY_ONLY);
}

static const paying_route_t paying_routes[PAYING_ROUTES] = {
    {CTXD_C_PAYING_V1_OPEN_PAYING_ORDER_TYPE, paying_read_open, paying_handle_command, 0},
    {CTXD_C_PAYING_V1_PAY_ORDER_TYPE, paying_read_pay, paying_handle_command, 0},
    {CTXD_C_PAYING_V1_CANCEL_ORDER_TYPE, paying_read_cancel, paying_handle_command, 0},
    {CTXD_C_PAYING_V1_GET_AMOUNT_TO_PAY_TYPE, paying_read_query, paying_answer_amount, 1},
    {CTXD_C_PAYING_V1_GET_PAYMENT_RESULT_TYPE, paying_read_query, paying_answer_result, 1},
};

/* ---- the handler --------------------------------------------------------------------------- */

static ctxd_handler_result_t paying_on_message(ctxd_tx_t *tx, const ctxd_msg_t *msg, void *data) {
  const paying_binding_t *b = data;
  const paying_plugin_t *st = b->st;
  size_t len;
  char err[256];
  const char *body = st->api->msg_body(msg, &len);
  paying_input_t *in = calloc(1, sizeof *in);
  if (in == NULL) return CTXD_HANDLER_RETRY;
  int rc = b->route->read(body, len, in, err, sizeof err);
  if (rc != 0) {
    /* the host validated the body against its contract: only memory fails here */
    st->api->tx_fault(tx, "Paying.Malformed", err);
    free(in);
    return rc == CTXD_ENOMEM ? CTXD_HANDLER_RETRY : CTXD_HANDLER_FAIL;
  }
  in->cmd.at = paying_clock_ms();
  in->cmd.order_number = in->order_number;
  in->cmd.group_id = in->group_id;
  in->cmd.currency = in->currency;
  in->cmd.payment_id = in->payment_id;
  in->cmd.reason = in->reason;
  in->cmd.actor = in->actor;
  rc = b->route->handle(st, tx, in);
  free(in);
  if (rc == 0) return CTXD_HANDLER_OK;
  if (rc == CTXD_ECONFLICT) return CTXD_HANDLER_RETRY; /* another writer of this order */
  if (rc == CTXD_ENOENT) return CTXD_HANDLER_RETRY;    /* a payment before its order: later */
  const char *why = st->api->tx_error(tx);
  st->api->tx_fault(tx, "Paying.Failed", why[0] ? why : ctxd_strerror(rc));
  return CTXD_HANDLER_FAIL;
}

/* ---- lifecycle ----------------------------------------------------------------------------- */

static int paying_init(ctxd_plugin_t *plugin, const ctxd_api_t *api, void **state) {
  paying_plugin_t *st = calloc(1, sizeof *st);
  if (st == NULL) return CTXD_ENOMEM;
  st->api = api;
  st->plugin = plugin;
  st->settings = api->settings(plugin);
  *state = st;
  int rc = 0;
  for (size_t i = 0; rc == 0 && i < PAYING_ROUTES; i++) {
    st->bindings[i] = (paying_binding_t){st, &paying_routes[i]};
    ctxd_consumer_t c = {.size = sizeof c,
                         .endpoint = paying_routes[i].read_model ? st->settings->read_endpoint
                                                                 : st->settings->endpoint,
                         .message_type = paying_routes[i].type,
                         .handler = paying_on_message,
                         .data = &st->bindings[i]};
    rc = api->consumer_register(plugin, &c);
  }
  return rc;
}

static void paying_destroy(void *state) { free(state); }

static const ctxd_plugin_desc_t paying_desc = {
    CTXD_PLUGIN_STAMP, /* size, ABI version, build flags */
    .name = "paying",
    .version = "1.0.0",
    .description =
        "paying orders: payments counted once, paid, over-paid, canceled; amount to pay and result",
    .config_map = paying_config_map,
    .settings_size = sizeof(paying_settings_t),
    .migrations = paying_migrations,
    .init = paying_init,
    .destroy = paying_destroy,
};

CTXD_PLUGIN_DEFINE(paying_desc)
