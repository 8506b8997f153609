/* Fulfillment: carrying out approved compensations (seed 004).
 *
 * CompensationApproved creates a fulfillment order (once per compensation). By strategy, a
 * non-product compensation is an external call (api->call, kind "benefit.issue") that this
 * plugin's executor makes to the issuing system (issuing_url: one POST with an
 * Idempotency-Key, the fulfillment's id); its result comes back as CallCompleted and the
 * fulfillment succeeds or fails on it. A refund publishes RefundRequested and waits for the
 * payment system's RefundCompleted (for the amount and currency requested) / RefundFailed; a reship
 * publishes ReshipOrderRequested and waits for the order system's ReshipOrderCreated, then
 * ReshipOrderShipped (or ReshipOrderFailed). A failure opens a pending-communication record;
 * CaseResolved (a person finished the case about a failed fulfillment) makes it succeed, a
 * case closed or rejected abandons it (FulfillmentAbandoned).
 * Every rule is the pure domain's (domain.h); this file maps the contracts to it, stores the
 * order (its domain state as JSON plus indexed columns, optimistic concurrency) and
 * publishes FulfillmentProcessing / -Succeeded / -Failed and the requests. Feedback that is
 * late, repeated, reordered or about an unknown fulfillment changes nothing and is logged,
 * never failed: the downstream systems cannot do anything about it. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include <ctxd/ctxd.h>

#include "contract_schema.h"
#include "ctxd_contracts.h"
#include "domain.h"
#include "call.h"
#include "text.h"

#define FULFILLMENT_CALL_KIND "benefit.issue"

typedef struct {
  const char *endpoint;
  const char *issuing_url;
  plugin_http_call_settings_t call;
} fulfillment_settings_t;

/* A message this context consumes, read into a domain command. */
typedef struct {
  fulfillment_command_t cmd;
  fulfillment_approved_t approved;
  /* which fulfillment: by id (feedback, cases) or, for a new one, by its compensation */
  char fulfillment_id[FULFILLMENT_ID_MAX + 1];
  char request_id[sizeof(ctxd_c_uuid_t)]; /* RefundId / ReshipId the downstream system echoes */
  /* Sized past the domain's limits so that a longer input reaches the domain, which says
   * so, instead of a silently cut one. */
  char reference[FULFILLMENT_ID_MAX * 2 + 2];
  char reason[FULFILLMENT_TEXT_MAX * 2 + 2];
  char actor[FULFILLMENT_ID_MAX * 2 + 2];
  char currency[16];              /* RefundCompleted: ISO 4217, 3 characters */
  char why[FULFILLMENT_WHY_SIZE]; /* "": for the domain; otherwise why it is not */
  int64_t sent_at;                /* the envelope's sentTime; 0 when it has none */
  json_t *extras;                 /* create: currency, item names, note */
} fulfillment_input_t;

/* Reads a validated body into `in`; 0, or a negative code with err filled. */
typedef int (*fulfillment_read_fn)(const char *body, size_t len, fulfillment_input_t *in, char *err,
                                   size_t errlen);

typedef struct {
  const char *type;
  fulfillment_read_fn read;
} fulfillment_route_t;

typedef struct fulfillment_state fulfillment_state_t;

typedef struct {
  fulfillment_state_t *st;
  const fulfillment_route_t *route;
} fulfillment_binding_t;

#define FULFILLMENT_ROUTES 8

struct fulfillment_state {
  const ctxd_api_t *api;
  ctxd_plugin_t *plugin;
  const fulfillment_settings_t *settings;
  fulfillment_binding_t bindings[FULFILLMENT_ROUTES];
  plugin_http_target_t issuing; /* issuing_url, resolved at the start */
};

/* A stored fulfillment and what the contracts need beside its domain state. */
typedef struct {
  int found;
  fulfillment_order_t order;
  char request_id[sizeof(ctxd_c_uuid_t)];
  json_t *extras;
  char communication_id[sizeof(ctxd_c_uuid_t)]; /* the record a failure just opened */
} fulfillment_record_t;

static const ctxd_conf_entry_t fulfillment_config_map[] = {
    {CTXD_CONF_STR, "endpoint", "fulfillment", offsetof(fulfillment_settings_t, endpoint),
     "queue receiving approvals, downstream feedback, the calls' outcomes and resolved cases"},
    {CTXD_CONF_STR, "issuing_url", "http://127.0.0.1:8025/benefits",
     offsetof(fulfillment_settings_t, issuing_url),
     "the system issuing vouchers and red packets: POST with the benefit as JSON and an Idempotency-Key "
     "header; a 2xx answer issued it (its JSON \"id\" names it), a 4xx (but 408, 409, 425, 429) refused "
     "it, anything else is tried again"},
    {CTXD_CONF_INT, "call_timeout_ms", "5000", offsetof(fulfillment_settings_t, call.call_timeout_ms),
     "longest one POST to the issuing system may take (connect, send, answer)"},
    {CTXD_CONF_INT, "max_attempts", "5", offsetof(fulfillment_settings_t, call.max_attempts),
     "POSTs without a clear answer (time-out, connection lost, 5xx, 429) before the benefit fails"},
    {CTXD_CONF_INT, "backoff_ms", "1000", offsetof(fulfillment_settings_t, call.backoff_ms),
     "wait before the second POST, doubled before each next one"},
    {0, NULL, NULL, 0, NULL},
};

static const ctxd_migration_t fulfillment_migrations[] = {
    {1, "fulfillment orders and pending communications",
     "CREATE SCHEMA fulfillment;\n"
     "CREATE TABLE fulfillment.orders (\n"
     "  id text PRIMARY KEY,\n"
     "  compensation_id text NOT NULL UNIQUE,\n"
     "  status text NOT NULL,\n"
     "  version bigint NOT NULL,\n"
     "  request_id text NOT NULL,\n"       /* RefundId / ReshipId sent downstream */
     "  contract_extras jsonb NOT NULL,\n" /* currency, item names: not in the domain */
     "  state jsonb NOT NULL\n"            /* fulfillment_order_encode() */
     ");\n"
     "CREATE TABLE fulfillment.pending_communications (\n"
     "  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),\n"
     "  fulfillment_id text NOT NULL REFERENCES fulfillment.orders (id),\n"
     "  compensation_id text NOT NULL,\n"
     "  reason text NOT NULL,\n"
     "  opened_at timestamptz NOT NULL,\n"
     "  resolved_at timestamptz,\n"
     "  resolved_by text,\n"
     "  resolution text\n"
     ");\n"
     "CREATE UNIQUE INDEX pending_communications_open ON fulfillment.pending_communications "
     "(fulfillment_id)\n"
     "  WHERE resolved_at IS NULL;\n"},
    {0, NULL, NULL},
};

/* The contracts number strategies and benefits as the domain does. */
_Static_assert((int)CTXD_C_COMPENSATION_V1_COMPENSATION_APPROVED_STRATEGY_PRODUCT_REFUND ==
                       (int)FULFILLMENT_KIND_PRODUCT_REFUND &&
                   (int)CTXD_C_COMPENSATION_V1_COMPENSATION_APPROVED_STRATEGY_RESHIP ==
                       (int)FULFILLMENT_KIND_RESHIP &&
                   (int)CTXD_C_COMPENSATION_V1_COMPENSATION_APPROVED_STRATEGY_NON_PRODUCT ==
                       (int)FULFILLMENT_KIND_NON_PRODUCT &&
                   (int)CTXD_C_FULFILLMENT_V1_FULFILLMENT_SUCCEEDED_STRATEGY_RESHIP ==
                       (int)FULFILLMENT_KIND_RESHIP,
               "strategy numbers");
_Static_assert((int)CTXD_C_COMPENSATION_V1_COMPENSATION_APPROVED_NON_PRODUCT_KIND_VOUCHER ==
                       (int)FULFILLMENT_BENEFIT_VOUCHER &&
                   (int)CTXD_C_COMPENSATION_V1_COMPENSATION_APPROVED_NON_PRODUCT_KIND_RED_PACKET ==
                       (int)FULFILLMENT_BENEFIT_RED_PACKET,
               "benefit numbers");

/* ---- time: the contracts carry ISO 8601, the domain epoch milliseconds --------------------- */

static int64_t fulfillment_iso_to_ms(const char *s) {
  struct tm tm = {0};
  int frac_ms = 0;
  const char *p = s != NULL ? strptime(s, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;
  if (p == NULL) return 0; /* the domain refuses a time <= 0 */
  if (*p == '.') {
    int digits = 0;
    for (p++; *p >= '0' && *p <= '9'; p++, digits++)
      if (digits < 3) frac_ms = frac_ms * 10 + (*p - '0');
    for (; digits < 3; digits++) frac_ms *= 10;
  }
  int64_t offset = 0;
  int hh, mm;
  if ((*p == '+' || *p == '-') && sscanf(p + 1, "%2d:%2d", &hh, &mm) == 2)
    offset = (*p == '+' ? 1 : -1) * (int64_t)(hh * 3600 + mm * 60);
  return ((int64_t)timegm(&tm) - offset) * 1000 + frac_ms;
}

static void fulfillment_ms_to_iso(int64_t ms, char out[32]) {
  time_t t = (time_t)(ms / 1000);
  struct tm tm;
  gmtime_r(&t, &tm);
  size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(out + n, 32 - n, ".%03dZ", (int)(ms % 1000));
}

/* ---- reading the contracts ----------------------------------------------------------------- */

/* Copies src, cut on a character boundary when it does not fit (NULL: ""): the domain then
 * sees text longer than it takes, never a broken character. */
static void fulfillment_copy(char *dst, size_t cap, const char *src) { plugin_text_excerpt(src, dst, cap); }

static int fulfillment_read_approved(const char *body, size_t len, fulfillment_input_t *in, char *err,
                                     size_t errlen) {
  ctxd_c_compensation_v1_compensation_approved_t c;
  int rc = ctxd_c_compensation_v1_compensation_approved_decode(body, len, &c, err, errlen);
  fulfillment_approved_t *a = &in->approved;
  json_t *names = json_object();
  if (rc == 0) {
    fulfillment_copy(a->compensation_id, sizeof a->compensation_id, c.compensation_id);
    fulfillment_copy(a->order_id, sizeof a->order_id, c.order_number);
    /* the contract's 64 characters of an order number can be more than the domain's 64 bytes */
    if (strlen(c.order_number) > FULFILLMENT_ID_MAX)
      snprintf(a->unfit.text, sizeof a->unfit.text, "order number is longer than %d bytes",
               FULFILLMENT_ID_MAX);
    fulfillment_copy(a->customer_id, sizeof a->customer_id, c.customer_id);
    fulfillment_plan_init(&a->plan, (fulfillment_kind_t)c.strategy);
    for (size_t i = 0; i < c.items_count; i++) {
      /* the contract's 64 characters of a sku can be more than the domain's 64 bytes */
      if (fulfillment_plan_add_item(&a->plan, c.items[i].sku, (int32_t)c.items[i].quantity,
                                    c.items[i].refund_amount_minor) != 0 &&
          !a->unfit.text[0])
        snprintf(a->unfit.text, sizeof a->unfit.text, "item %zu: sku is longer than %d bytes", i + 1,
                 FULFILLMENT_ID_MAX);
      json_object_set_new(names, c.items[i].sku, json_string(c.items[i].name));
    }
    if (c.has_non_product)
      fulfillment_plan_set_benefit(&a->plan, (fulfillment_benefit_t)c.non_product.kind,
                                   c.non_product.amount_minor);
    in->extras = json_pack("{s:s, s:O, s:s?}", "currency", c.currency, "names", names, "note",
                           c.has_non_product ? c.non_product.note : NULL);
    in->cmd.action = FULFILLMENT_ACTION_CREATE;
    in->cmd.approved = a;
    in->cmd.at = fulfillment_iso_to_ms(c.approved_at);
  }
  json_decref(names);
  ctxd_c_compensation_v1_compensation_approved_free(&c);
  return rc == 0 && in->extras == NULL ? CTXD_ENOMEM : rc;
}

/* Feedback: which fulfillment and request it answers, what it says, when. */
static void fulfillment_feedback(fulfillment_input_t *in, fulfillment_feedback_t kind,
                                 const char *fulfillment_id, const char *request_id, const char *reference,
                                 const char *reason, const char *at) {
  in->cmd.action = FULFILLMENT_ACTION_FEEDBACK;
  in->cmd.feedback = kind;
  fulfillment_copy(in->fulfillment_id, sizeof in->fulfillment_id, fulfillment_id);
  fulfillment_copy(in->request_id, sizeof in->request_id, request_id);
  fulfillment_copy(in->reference, sizeof in->reference, reference);
  fulfillment_copy(in->reason, sizeof in->reason, reason);
  in->cmd.at = fulfillment_iso_to_ms(at);
}

static int fulfillment_read_refund_completed(const char *body, size_t len, fulfillment_input_t *in, char *err,
                                             size_t errlen) {
  ctxd_c_payment_v1_refund_completed_t c;
  int rc = ctxd_c_payment_v1_refund_completed_decode(body, len, &c, err, errlen);
  fulfillment_feedback(in, FULFILLMENT_FEEDBACK_REFUND_COMPLETED, c.fulfillment_id, c.refund_id,
                       c.payment_reference, NULL, c.completed_at);
  in->cmd.amount = c.amount_minor;
  fulfillment_copy(in->currency, sizeof in->currency, c.currency);
  ctxd_c_payment_v1_refund_completed_free(&c);
  return rc;
}

static int fulfillment_read_refund_failed(const char *body, size_t len, fulfillment_input_t *in, char *err,
                                          size_t errlen) {
  ctxd_c_payment_v1_refund_failed_t c;
  int rc = ctxd_c_payment_v1_refund_failed_decode(body, len, &c, err, errlen);
  fulfillment_feedback(in, FULFILLMENT_FEEDBACK_REFUND_FAILED, c.fulfillment_id, c.refund_id, NULL, c.reason,
                       c.failed_at);
  ctxd_c_payment_v1_refund_failed_free(&c);
  return rc;
}

static int fulfillment_read_reship_created(const char *body, size_t len, fulfillment_input_t *in, char *err,
                                           size_t errlen) {
  ctxd_c_ordering_v1_reship_order_created_t c;
  int rc = ctxd_c_ordering_v1_reship_order_created_decode(body, len, &c, err, errlen);
  fulfillment_feedback(in, FULFILLMENT_FEEDBACK_RESHIP_CREATED, c.fulfillment_id, c.reship_id, c.order_number,
                       NULL, c.created_at);
  ctxd_c_ordering_v1_reship_order_created_free(&c);
  return rc;
}

static int fulfillment_read_reship_shipped(const char *body, size_t len, fulfillment_input_t *in, char *err,
                                           size_t errlen) {
  ctxd_c_ordering_v1_reship_order_shipped_t c;
  int rc = ctxd_c_ordering_v1_reship_order_shipped_decode(body, len, &c, err, errlen);
  fulfillment_feedback(in, FULFILLMENT_FEEDBACK_RESHIP_SHIPPED, c.fulfillment_id, c.reship_id, c.order_number,
                       NULL, c.shipped_at);
  ctxd_c_ordering_v1_reship_order_shipped_free(&c);
  return rc;
}

static int fulfillment_read_reship_failed(const char *body, size_t len, fulfillment_input_t *in, char *err,
                                          size_t errlen) {
  ctxd_c_ordering_v1_reship_order_failed_t c;
  int rc = ctxd_c_ordering_v1_reship_order_failed_decode(body, len, &c, err, errlen);
  fulfillment_feedback(in, FULFILLMENT_FEEDBACK_RESHIP_FAILED, c.fulfillment_id, c.reship_id, NULL, c.reason,
                       c.failed_at);
  ctxd_c_ordering_v1_reship_order_failed_free(&c);
  return rc;
}

/* A case about a fulfillment that ends resolves it: finished, by hand (it succeeds); closed
 * or rejected, it is given up (abandoned: the compensation ends Terminated instead of waiting
 * for ever). Other cases are not ours. */
static int fulfillment_read_case_resolved(const char *body, size_t len, fulfillment_input_t *in, char *err,
                                          size_t errlen) {
  ctxd_c_case_v1_case_resolved_t c;
  int rc = ctxd_c_case_v1_case_resolved_decode(body, len, &c, err, errlen);
  if (rc == 0) {
    int finished = c.outcome == CTXD_C_CASE_V1_CASE_RESOLVED_OUTCOME_FINISHED;
    in->cmd.action = finished ? FULFILLMENT_ACTION_RESOLVE_MANUALLY : FULFILLMENT_ACTION_ABANDON;
    fulfillment_copy(in->fulfillment_id, sizeof in->fulfillment_id, c.related_biz_id);
    fulfillment_copy(in->actor, sizeof in->actor, c.agent_id != NULL ? c.agent_id : c.case_id);
    snprintf(in->reason, sizeof in->reason, "case %s %s", c.case_id,
             finished                                                   ? "finished"
             : c.outcome == CTXD_C_CASE_V1_CASE_RESOLVED_OUTCOME_CLOSED ? "closed without finishing"
                                                                        : "rejected without finishing");
    in->cmd.at = fulfillment_iso_to_ms(c.resolved_at);
    if (strcmp(c.related_biz_type, "fulfillment") != 0)
      snprintf(in->why, sizeof in->why, "case %s is about a %.64s", c.case_id, c.related_biz_type);
  }
  ctxd_c_case_v1_case_resolved_free(&c);
  return rc;
}

static int64_t fulfillment_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The issuing system's answer, as the host reports the call: "done" issued the benefit (the
 * outcome's issueId names it there), anything else failed it (the outcome's error says why).
 * The call's key is the fulfillment's id. */
static int fulfillment_read_call_completed(const char *body, size_t len, fulfillment_input_t *in, char *err,
                                           size_t errlen) {
  json_t *m = json_loadb(body, len, 0, NULL);
  const char *kind = json_string_value(ctxd__schema_get_ci(m, "Kind"));
  const char *key = json_string_value(ctxd__schema_get_ci(m, "IdempotencyKey"));
  const char *status = json_string_value(ctxd__schema_get_ci(m, "Status"));
  const json_t *outcome = ctxd__schema_get_ci(m, "Outcome");
  const char *issue_id = json_string_value(ctxd__schema_get_ci(outcome, "issueId"));
  const char *error = json_string_value(ctxd__schema_get_ci(outcome, "error"));
  int rc = m == NULL ? CTXD_ENOMEM : 0;
  if (rc != 0)
    snprintf(err, errlen, "CallCompleted: out of memory"); /* validated by the host already */
  else if (kind == NULL || strcmp(kind, FULFILLMENT_CALL_KIND) != 0 || key == NULL || status == NULL)
    snprintf(in->why, sizeof in->why, "CallCompleted of kind %.64s is not a benefit issued",
             kind ? kind : "?");
  else if (strcmp(status, "done") == 0)
    fulfillment_feedback(in, FULFILLMENT_FEEDBACK_BENEFIT_ISSUED, key, NULL,
                         issue_id != NULL && issue_id[0] ? issue_id : key, NULL, NULL);
  else
    fulfillment_feedback(in, FULFILLMENT_FEEDBACK_BENEFIT_FAILED, key, NULL, NULL,
                         error != NULL && error[0] ? error : "the issuing system gave no answer", NULL);
  /* the answer came at once: it is known since the host sent its outcome, a time a redelivered
   * copy carries too (it is written once, in the outbox); no time at all: now */
  in->cmd.at = in->sent_at > 0 ? in->sent_at : fulfillment_now_ms();
  json_decref(m);
  return rc;
}

static const fulfillment_route_t fulfillment_routes[FULFILLMENT_ROUTES] = {
    {CTXD_C_COMPENSATION_V1_COMPENSATION_APPROVED_TYPE, fulfillment_read_approved},
    {CTXD_C_PAYMENT_V1_REFUND_COMPLETED_TYPE, fulfillment_read_refund_completed},
    {CTXD_C_PAYMENT_V1_REFUND_FAILED_TYPE, fulfillment_read_refund_failed},
    {CTXD_C_ORDERING_V1_RESHIP_ORDER_CREATED_TYPE, fulfillment_read_reship_created},
    {CTXD_C_ORDERING_V1_RESHIP_ORDER_SHIPPED_TYPE, fulfillment_read_reship_shipped},
    {CTXD_C_ORDERING_V1_RESHIP_ORDER_FAILED_TYPE, fulfillment_read_reship_failed},
    {CTXD_C_CASE_V1_CASE_RESOLVED_TYPE, fulfillment_read_case_resolved},
    {CTXD_C_RUNTIME_V1_CALL_COMPLETED_TYPE, fulfillment_read_call_completed},
};

/* ---- the store ----------------------------------------------------------------------------- */

/* Loads the fulfillment of a compensation (by_compensation) or with an id into r. 0,
 * CTXD_EDB / CTXD_ECONFLICT, or CTXD_EDECODE for a stored state the domain no longer reads. */
static int fulfillment_load(const fulfillment_state_t *st, ctxd_tx_t *tx, int by_compensation,
                            const char *key, fulfillment_record_t *r) {
  static const char *const sql[] = {
      "SELECT state::text, request_id, contract_extras::text FROM fulfillment.orders WHERE id = $1",
      "SELECT state::text, request_id, contract_extras::text FROM fulfillment.orders WHERE compensation_id = "
      "$1",
  };
  ctxd_rows_t *rows;
  const char *params[] = {key};
  int rc = st->api->sql_exec(tx, sql[by_compensation != 0], 1, params, &rows);
  if (rc != 0) return rc;
  if (st->api->rows_count(rows) == 1) {
    json_t *state = json_loads(st->api->rows_value(rows, 0, 0), 0, NULL);
    r->extras = json_loads(st->api->rows_value(rows, 0, 2), 0, NULL);
    fulfillment_copy(r->request_id, sizeof r->request_id, st->api->rows_value(rows, 0, 1));
    rc = state != NULL && r->extras != NULL && fulfillment_order_decode(state, &r->order, NULL) == 0
             ? 0
             : CTXD_EDECODE;
    r->found = rc == 0;
    json_decref(state);
  }
  st->api->rows_free(rows);
  return rc;
}

/* New ids for a fulfillment and its downstream request. */
static int fulfillment_new_ids(const fulfillment_state_t *st, ctxd_tx_t *tx, char *id, size_t idlen,
                               char *request_id, size_t reqlen) {
  ctxd_rows_t *rows;
  int rc = st->api->sql_exec(tx, "SELECT gen_random_uuid()::text, gen_random_uuid()::text", 0, NULL, &rows);
  if (rc != 0) return rc;
  fulfillment_copy(id, idlen, st->api->rows_value(rows, 0, 0));
  fulfillment_copy(request_id, reqlen, st->api->rows_value(rows, 0, 1));
  st->api->rows_free(rows);
  return 0;
}

/* Writes the decided order: a new row, or the row still at old_version (else
 * CTXD_ECONFLICT: another writer got there first, the message is decided again). */
static int fulfillment_save(const fulfillment_state_t *st, ctxd_tx_t *tx, const fulfillment_record_t *r,
                            const fulfillment_order_t *o, uint32_t old_version) {
  char version[16], old[16], *state = NULL, *extras = json_dumps(r->extras, JSON_COMPACT);
  json_t *j = fulfillment_order_encode(o);
  if (j != NULL) state = json_dumps(j, JSON_COMPACT);
  json_decref(j);
  snprintf(version, sizeof version, "%" PRIu32, o->version);
  snprintf(old, sizeof old, "%" PRIu32, old_version);
  const char *update[] = {o->id, fulfillment_status_name(o->status), version, state, old};
  const char *insert[] = {
      o->id, fulfillment_status_name(o->status), version, state, o->compensation_id, r->request_id, extras};
  ctxd_rows_t *rows = NULL;
  int rc = state == NULL || extras == NULL ? CTXD_ENOMEM : 0;
  if (rc == 0 && r->found)
    rc = st->api->sql_exec(
        tx,
        "UPDATE fulfillment.orders SET status = $2, version = $3, state = $4 WHERE id = $1 AND version = $5",
        5, update, &rows);
  else if (rc == 0)
    rc = st->api->sql_exec(
        tx,
        "INSERT INTO fulfillment.orders (id, status, version, state, compensation_id, request_id,"
        " contract_extras) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        7, insert, &rows);
  if (rc == 0 && st->api->rows_affected(rows) != 1) rc = CTXD_ECONFLICT;
  if (rows != NULL) st->api->rows_free(rows);
  free(state);
  free(extras);
  return rc;
}

/* Keeps the pending-communication record in step with the domain's: a failure opens one
 * (its id goes into FulfillmentFailed), a manual resolution closes it. */
static int fulfillment_communicate(const fulfillment_state_t *st, ctxd_tx_t *tx, const fulfillment_order_t *o,
                                   fulfillment_record_t *r) {
  const fulfillment_communication_t *k = &o->communication;
  char opened[24], resolved[24];
  snprintf(opened, sizeof opened, "%" PRId64, k->opened_at);
  snprintf(resolved, sizeof resolved, "%" PRId64, k->resolved_at);
  ctxd_rows_t *rows = NULL;
  int rc;
  if (k->resolved_by[0] == '\0') {
    const char *params[] = {o->id, o->compensation_id, k->reason, opened};
    rc = st->api->sql_exec(
        tx,
        "INSERT INTO fulfillment.pending_communications (fulfillment_id, compensation_id, reason,"
        " opened_at) VALUES ($1, $2, $3, to_timestamp($4::bigint / 1000.0)) RETURNING id::text",
        4, params, &rows);
    if (rc == 0)
      fulfillment_copy(r->communication_id, sizeof r->communication_id, st->api->rows_value(rows, 0, 0));
  } else {
    const char *params[] = {o->id, resolved, k->resolved_by, k->resolution};
    rc = st->api->sql_exec(
        tx,
        "UPDATE fulfillment.pending_communications SET resolved_at = to_timestamp($2::bigint / 1000.0),"
        " resolved_by = $3, resolution = $4 WHERE fulfillment_id = $1 AND resolved_at IS NULL",
        4, params, &rows);
  }
  if (rows != NULL) st->api->rows_free(rows);
  return rc;
}

/* ---- writing the contracts ------------------------------------------------------------------ */

static void fulfillment_uuid(ctxd_c_uuid_t dst, const char *src) {
  size_t n = strnlen(src, sizeof(ctxd_c_uuid_t) - 1);
  memcpy(dst, src, n);
  dst[n] = '\0';
}

/* One domain message as its contract's JSON (new string, free()), NULL when out of memory. */
typedef char *(*fulfillment_encode_fn)(const fulfillment_message_t *m, const fulfillment_record_t *r,
                                       const char *at);

static char *fulfillment_encode_processing(const fulfillment_message_t *m, const fulfillment_record_t *r,
                                           const char *at) {
  (void)r;
  ctxd_c_fulfillment_v1_fulfillment_processing_t e = {.strategy = (int32_t)m->kind,
                                                      .occurred_at = (char *)at};
  fulfillment_uuid(e.fulfillment_id, m->fulfillment_id);
  fulfillment_uuid(e.compensation_id, m->compensation_id);
  /* only refunds and reships wait: for the payment system or the order system */
  e.waiting_for = m->kind == FULFILLMENT_KIND_PRODUCT_REFUND
                      ? CTXD_C_FULFILLMENT_V1_FULFILLMENT_PROCESSING_WAITING_FOR_PAYMENT
                      : CTXD_C_FULFILLMENT_V1_FULFILLMENT_PROCESSING_WAITING_FOR_ORDERING;
  return ctxd_c_fulfillment_v1_fulfillment_processing_encode(&e);
}

static char *fulfillment_encode_succeeded(const fulfillment_message_t *m, const fulfillment_record_t *r,
                                          const char *at) {
  (void)r;
  ctxd_c_fulfillment_v1_fulfillment_succeeded_t e = {.strategy = (int32_t)m->kind,
                                                     .succeeded_at = (char *)at};
  fulfillment_uuid(e.fulfillment_id, m->fulfillment_id);
  fulfillment_uuid(e.compensation_id, m->compensation_id);
  e.reference = m->reference[0] ? (char *)m->reference : NULL;
  return ctxd_c_fulfillment_v1_fulfillment_succeeded_encode(&e);
}

static char *fulfillment_encode_failed(const fulfillment_message_t *m, const fulfillment_record_t *r,
                                       const char *at) {
  ctxd_c_fulfillment_v1_fulfillment_failed_t e = {
      .strategy = (int32_t)m->kind, .reason = (char *)m->reason, .failed_at = (char *)at};
  fulfillment_uuid(e.fulfillment_id, m->fulfillment_id);
  fulfillment_uuid(e.compensation_id, m->compensation_id);
  fulfillment_uuid(e.pending_communication_id, r->communication_id);
  return ctxd_c_fulfillment_v1_fulfillment_failed_encode(&e);
}

static char *fulfillment_encode_abandoned(const fulfillment_message_t *m, const fulfillment_record_t *r,
                                          const char *at) {
  (void)r;
  ctxd_c_fulfillment_v1_fulfillment_abandoned_t e = {
      .strategy = (int32_t)m->kind, .reason = (char *)m->reason, .abandoned_at = (char *)at};
  fulfillment_uuid(e.fulfillment_id, m->fulfillment_id);
  fulfillment_uuid(e.compensation_id, m->compensation_id);
  return ctxd_c_fulfillment_v1_fulfillment_abandoned_encode(&e);
}

static char *fulfillment_encode_refund(const fulfillment_message_t *m, const fulfillment_record_t *r,
                                       const char *at) {
  ctxd_c_fulfillment_v1_refund_requested_t e = {
      .order_number = (char *)m->order_id,
      .amount_minor = m->amount,
      .currency = (char *)json_string_value(json_object_get(r->extras, "currency")),
      .requested_at = (char *)at};
  fulfillment_uuid(e.refund_id, r->request_id);
  fulfillment_uuid(e.fulfillment_id, m->fulfillment_id);
  fulfillment_uuid(e.compensation_id, m->compensation_id);
  fulfillment_uuid(e.customer_id, m->customer_id);
  return ctxd_c_fulfillment_v1_refund_requested_encode(&e);
}

static char *fulfillment_encode_reship(const fulfillment_message_t *m, const fulfillment_record_t *r,
                                       const char *at) {
  ctxd_c_fulfillment_v1_reship_order_requested_items_item_t items[FULFILLMENT_MAX_ITEMS];
  const json_t *names = json_object_get(r->extras, "names");
  for (size_t i = 0; i < m->plan.n_items; i++) {
    const fulfillment_item_t *it = &m->plan.items[i];
    const char *name = json_string_value(json_object_get(names, it->sku));
    items[i] = (ctxd_c_fulfillment_v1_reship_order_requested_items_item_t){
        .sku = (char *)it->sku, .name = (char *)(name != NULL ? name : it->sku), .quantity = it->quantity};
  }
  ctxd_c_fulfillment_v1_reship_order_requested_t e = {.original_order_number = (char *)m->order_id,
                                                      .items = items,
                                                      .items_count = m->plan.n_items,
                                                      .requested_at = (char *)at};
  fulfillment_uuid(e.reship_id, r->request_id);
  fulfillment_uuid(e.fulfillment_id, m->fulfillment_id);
  fulfillment_uuid(e.compensation_id, m->compensation_id);
  fulfillment_uuid(e.customer_id, m->customer_id);
  return ctxd_c_fulfillment_v1_reship_order_requested_encode(&e);
}

/* Every domain message but IssueBenefit (a call) is published: events to whoever listens,
 * the requests to the payment and order systems (the exchange of their type). */
static const struct {
  const char *type;
  fulfillment_encode_fn encode;
} fulfillment_outputs[FULFILLMENT_MESSAGE_COUNT] = {
    [FULFILLMENT_MESSAGE_PROCESSING] = {CTXD_C_FULFILLMENT_V1_FULFILLMENT_PROCESSING_TYPE,
                                        fulfillment_encode_processing},
    [FULFILLMENT_MESSAGE_SUCCEEDED] = {CTXD_C_FULFILLMENT_V1_FULFILLMENT_SUCCEEDED_TYPE,
                                       fulfillment_encode_succeeded},
    [FULFILLMENT_MESSAGE_FAILED] = {CTXD_C_FULFILLMENT_V1_FULFILLMENT_FAILED_TYPE, fulfillment_encode_failed},
    [FULFILLMENT_MESSAGE_ABANDONED] = {CTXD_C_FULFILLMENT_V1_FULFILLMENT_ABANDONED_TYPE,
                                       fulfillment_encode_abandoned},
    [FULFILLMENT_MESSAGE_REFUND_REQUESTED] = {CTXD_C_FULFILLMENT_V1_REFUND_REQUESTED_TYPE,
                                              fulfillment_encode_refund},
    [FULFILLMENT_MESSAGE_RESHIP_ORDER_REQUESTED] = {CTXD_C_FULFILLMENT_V1_RESHIP_ORDER_REQUESTED_TYPE,
                                                    fulfillment_encode_reship},
};

/* IssueBenefit: the domain's message plus the currency and the note, as the call's payload;
 * the executor runs it after the commit, once per fulfillment (the key). */
static int fulfillment_issue(const fulfillment_state_t *st, ctxd_tx_t *tx, const fulfillment_message_t *m,
                             const fulfillment_record_t *r) {
  json_t *j = fulfillment_message_encode(m);
  char *payload = NULL;
  if (j != NULL && json_object_set(j, "currency", json_object_get(r->extras, "currency")) == 0 &&
      json_object_set(j, "note",
                      json_object_get(r->extras, "note") ? json_object_get(r->extras, "note")
                                                         : json_null()) == 0)
    payload = json_dumps(j, JSON_COMPACT);
  json_decref(j);
  int rc =
      payload == NULL ? CTXD_ENOMEM : st->api->call(tx, FULFILLMENT_CALL_KIND, m->fulfillment_id, payload);
  free(payload);
  return rc;
}

static int fulfillment_publish(const fulfillment_state_t *st, ctxd_tx_t *tx, const fulfillment_message_t *m,
                               const fulfillment_record_t *r) {
  char at[32];
  if (m->type == FULFILLMENT_MESSAGE_ISSUE_BENEFIT) return fulfillment_issue(st, tx, m, r);
  fulfillment_ms_to_iso(m->at, at);
  ctxd_out_msg_t out = {.size = sizeof out,
                        .message_type = fulfillment_outputs[m->type].type,
                        .body = fulfillment_outputs[m->type].encode(m, r, at)};
  if (out.body == NULL) return CTXD_ENOMEM;
  int rc = st->api->publish(tx, &out);
  free((char *)out.body);
  return rc;
}

/* ---- handling ------------------------------------------------------------------------------- */

static ctxd_handler_result_t fulfillment_fail(const fulfillment_state_t *st, ctxd_tx_t *tx, const char *type,
                                              const char *why) {
  st->api->tx_fault(tx, type, why);
  return CTXD_HANDLER_FAIL;
}

static ctxd_handler_result_t fulfillment_result(const fulfillment_state_t *st, ctxd_tx_t *tx, int rc) {
  if (rc == 0) return CTXD_HANDLER_OK;
  if (rc == CTXD_ECONFLICT) return CTXD_HANDLER_RETRY; /* another writer of this fulfillment */
  const char *err = st->api->tx_error(tx);
  return fulfillment_fail(st, tx, "Fulfillment.Failed", err[0] ? err : ctxd_strerror(rc));
}

/* Decides a read message against its fulfillment and stores and publishes the outcome. */
static ctxd_handler_result_t fulfillment_handle(const fulfillment_state_t *st, ctxd_tx_t *tx,
                                                const ctxd_msg_t *msg, fulfillment_input_t *in,
                                                fulfillment_record_t *r, fulfillment_decision_t *d) {
  int create = in->cmd.action == FULFILLMENT_ACTION_CREATE;
  char id[FULFILLMENT_ID_MAX + 1];
  int rc = fulfillment_load(st, tx, create, create ? in->approved.compensation_id : in->fulfillment_id, r);
  if (rc == 0 && in->why[0] == '\0' && in->request_id[0] && r->found &&
      strcmp(in->request_id, r->request_id) != 0)
    snprintf(in->why, sizeof in->why, "request %s is not this fulfillment's %s", in->request_id,
             r->request_id);
  if (rc == 0 && in->why[0]) {
    st->api->log(st->plugin, msg, CTXD_LOG_INFO, "ignored: %s", in->why);
    return CTXD_HANDLER_OK;
  }
  if (rc == 0 && create && !r->found) {
    rc = fulfillment_new_ids(st, tx, id, sizeof id, r->request_id, sizeof r->request_id);
    in->cmd.id = id;
    r->extras = json_incref(in->extras);
  }
  if (rc != 0) return fulfillment_result(st, tx, rc);
  in->cmd.reference = in->reference;
  in->cmd.reason = in->reason;
  in->cmd.actor = in->actor;
  in->cmd.currency = in->currency;
  in->cmd.requested_currency = json_string_value(json_object_get(r->extras, "currency"));
  int code = fulfillment_order_decide(r->found ? &r->order : NULL, &in->cmd, d);
  /* a valid approval is always created (failed, with a record, when it cannot be carried
   * out): a refusal here is a defect, for an operator */
  if (code != 0 && create) return fulfillment_fail(st, tx, "Fulfillment.Rejected", d->why.text);
  if (code != 0 || d->ignored) {
    st->api->log(st->plugin, msg, code ? CTXD_LOG_WARN : CTXD_LOG_INFO, "fulfillment %s: %s (%s)",
                 r->found ? r->order.id : in->fulfillment_id, d->why.text,
                 code ? ctxd_strerror(code) : fulfillment_ignored_name(d->ignored));
    return CTXD_HANDLER_OK;
  }
  if (d->changed) rc = fulfillment_save(st, tx, r, &d->order, r->order.version);
  /* a new order marks every field changed: only an opened record is written */
  if (rc == 0 && (d->changed & FULFILLMENT_FIELD_PENDING_COMMUNICATION) &&
      d->order.communication.opened_at != 0)
    rc = fulfillment_communicate(st, tx, &d->order, r);
  for (size_t i = 0; rc == 0 && i < d->n_messages; i++) rc = fulfillment_publish(st, tx, &d->messages[i], r);
  return fulfillment_result(st, tx, rc);
}

static ctxd_handler_result_t fulfillment_on_message(ctxd_tx_t *tx, const ctxd_msg_t *msg, void *data) {
  const fulfillment_binding_t *b = data;
  const fulfillment_state_t *st = b->st;
  size_t len;
  char err[256];
  const char *body = st->api->msg_body(msg, &len);
  /* about 10 KB each: off the worker's stack */
  fulfillment_input_t *in = calloc(1, sizeof *in);
  fulfillment_record_t *r = calloc(1, sizeof *r);
  fulfillment_decision_t *d = calloc(1, sizeof *d);
  ctxd_handler_result_t result;
  if (in == NULL || r == NULL || d == NULL) {
    result = CTXD_HANDLER_RETRY;
  } else {
    in->sent_at = fulfillment_iso_to_ms(st->api->msg_field(msg, CTXD_MSG_SENT_TIME));
    if (b->route->read(body, len, in, err, sizeof err) != 0) /* validated: only memory fails */
      result = fulfillment_fail(st, tx, "Fulfillment.Malformed", err);
    else
      result = fulfillment_handle(st, tx, msg, in, r, d);
  }
  if (in != NULL) json_decref(in->extras);
  if (r != NULL) json_decref(r->extras);
  free(in);
  free(r);
  free(d);
  return result;
}

/* ---- the executor: one POST to the issuing system -------------------------------------------- */

/* The issuing system's id of what it issued: "id" of its answer, when the domain can keep it. */
static int fulfillment_issue_id_ok(const char *id) {
  return id[0] != '\0' && strlen(id) <= FULFILLMENT_ID_MAX;
}

static const char *const fulfillment_id_names[] = {"id", NULL};
static const plugin_http_answers_t fulfillment_answers = {
    .peer = "the issuing system",
    .outcome_id = "issueId",
    .id_names = fulfillment_id_names,
    .id_ok = fulfillment_issue_id_ok,
};

/* Seed 2.2.2 (處理通過): the issuing system answers at once, success or failure. A 2xx issued
 * the benefit; a business refusal (a 4xx but 408, 409, 425, 429) refused it for good (the
 * exception outcome: pending communication). Everything else (no answer, 5xx, "too many") is
 * tried again with the same key, which the issuing system uses to issue once; when the
 * attempts run out, the benefit fails with the last reason. */
static ctxd_call_result_t fulfillment_issue_benefit(const ctxd_call_t *call, void *data) {
  const fulfillment_state_t *st = data;
  return plugin_http_call(st->api, st->plugin, call, &st->issuing, (int)st->settings->call.call_timeout_ms,
                          &fulfillment_answers);
}

/* ---- lifecycle ------------------------------------------------------------------------------ */

static int fulfillment_init(ctxd_plugin_t *plugin, const ctxd_api_t *api, void **state) {
  if (!CTXD_API_HAS(api, call_outcome)) {
    api->log(plugin, NULL, CTXD_LOG_ERROR, "needs a host with ABI 1.2 (external calls), this one has %u.%u",
             api->abi_major, api->abi_minor);
    return CTXD_EABI;
  }
  fulfillment_state_t *st = calloc(1, sizeof *st);
  if (st == NULL) return CTXD_ENOMEM;
  st->api = api;
  st->plugin = plugin;
  st->settings = api->settings(plugin);
  *state = st;
  const fulfillment_settings_t *s = st->settings;
  char err[256];
  if (plugin_http_call_settings_check(&s->call, err, sizeof err) != 0) {
    api->log(plugin, NULL, CTXD_LOG_ERROR, "settings: %s", err);
    return CTXD_ECONFIG;
  }
  /* the issuing system's address, once: a bad URL is a configuration error now, and no POST
   * waits on the resolver */
  if (plugin_http_target_init(&st->issuing, s->issuing_url, err, sizeof err) != 0) {
    api->log(plugin, NULL, CTXD_LOG_ERROR, "settings: issuing_url: %s", err);
    return CTXD_ECONFIG;
  }
  int rc = 0;
  for (size_t i = 0; rc == 0 && i < FULFILLMENT_ROUTES; i++) {
    st->bindings[i] = (fulfillment_binding_t){st, &fulfillment_routes[i]};
    ctxd_consumer_t c = {.size = sizeof c,
                         .endpoint = st->settings->endpoint,
                         .message_type = fulfillment_routes[i].type,
                         .handler = fulfillment_on_message,
                         .data = &st->bindings[i]};
    rc = api->consumer_register(plugin, &c);
  }
  if (rc == 0)
    rc = plugin_http_executor_register(api, plugin, FULFILLMENT_CALL_KIND, fulfillment_issue_benefit, st,
                                       s->endpoint, &s->call);
  return rc;
}

static void fulfillment_destroy(void *state) {
  fulfillment_state_t *st = state;
  if (st != NULL) plugin_http_target_free(&st->issuing);
  free(st);
}

static const ctxd_plugin_desc_t fulfillment_desc = {
    CTXD_PLUGIN_STAMP, /* size, ABI version, build flags */
    .name = "fulfillment",
    .version = "1.0.0",
    .description = "after-sales fulfillment: refunds, reships and non-product compensations carried out",
    .config_map = fulfillment_config_map,
    .settings_size = sizeof(fulfillment_settings_t),
    .migrations = fulfillment_migrations,
    .init = fulfillment_init,
    .destroy = fulfillment_destroy,
};

CTXD_PLUGIN_DEFINE(fulfillment_desc)
