/* Compensation: after-sales compensation orders (seed 004).
 *
 * Commands (Apply, Modify, Submit, Approve, Reject, TerminateCompensation) are sent to this
 * context's endpoint; the fulfillment events (FulfillmentProcessing, -Succeeded, -Failed,
 * -Abandoned)
 * reach the same endpoint through their exchanges. Each message is mapped to a domain
 * command (domain.h) and decided on the order loaded from compensation.orders (repo.h);
 * the changed columns, the events (CompensationApproved, CompensationModified,
 * CompensationStatusChanged) and the
 * reply commit with the inbox row. A command the domain refuses is handled, not failed: the
 * sender gets CompensationCommandRejected at the request's responseAddress, or published
 * when it has none. Fulfillment events are never answered; stale ones change nothing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include <ctxd/ctxd.h>

#include "ctxd_contracts.h"
#include "domain.h"
#include "repo.h"

typedef struct {
  const char *endpoint;
} compensation_settings_t;

typedef struct compensation_state compensation_state_t;

/* A message this context consumes, read into a domain command. */
typedef struct {
  compensation_command_t cmd;
  compensation_strategy_t strategy;
  /* Sized past the domain's limits so that a longer input still reaches the domain, which
   * refuses it with its own text instead of seeing a silently cut one. */
  char id[COMPENSATION_ID_MAX * 2 + 2];
  char order_id[COMPENSATION_ID_MAX * 2 + 2];
  char customer_id[COMPENSATION_ID_MAX * 2 + 2];
  char actor[COMPENSATION_ID_MAX * 2 + 2];
  char reason[COMPENSATION_TEXT_MAX * 2 + 2];
  char fulfillment_id[COMPENSATION_ID_MAX * 2 + 2];
  json_t *extras;                  /* what the contracts carry and the domain does not model; NULL: none */
  char why[COMPENSATION_WHY_SIZE]; /* a plan the domain cannot hold: a second strategy, a sku too long */
  int why_code;                    /* the rejection code of why */
} compensation_input_t;

/* Reads a validated body into `in`; 0, or a negative code with err filled. */
typedef int (*compensation_decode_fn)(const char *body, size_t len, compensation_input_t *in, char *err,
                                      size_t errlen);

typedef struct {
  const char *type; /* the contract */
  compensation_action_t action;
  compensation_decode_fn decode;
  int reply; /* a command: answered; a fulfillment event: not */
} compensation_route_t;

typedef struct {
  compensation_state_t *st;
  const compensation_route_t *route;
} compensation_binding_t;

#define COMPENSATION_ROUTES 10

struct compensation_state {
  const ctxd_api_t *api;
  ctxd_plugin_t *plugin;
  const compensation_settings_t *settings;
  compensation_binding_t bindings[COMPENSATION_ROUTES];
};

static const ctxd_conf_entry_t compensation_config_map[] = {
    {CTXD_CONF_STR, "endpoint", "compensation", offsetof(compensation_settings_t, endpoint),
     "queue receiving the commands and the fulfillment events"},
    {0, NULL, NULL, 0, NULL},
};

static const ctxd_migration_t compensation_migrations[] = {
    {1, "compensation orders", "CREATE SCHEMA compensation;\n" COMPENSATION_REPO_DDL},
    {2, "the responsible party", COMPENSATION_REPO_DDL_2},
    {0, NULL, NULL},
};

/* The contracts number strategies, benefits and channels as the domain does. */
_Static_assert((int)CTXD_C_COMPENSATION_V1_APPLY_COMPENSATION_STRATEGY_PRODUCT_REFUND ==
                       (int)COMPENSATION_STRATEGY_PRODUCT_REFUND &&
                   (int)CTXD_C_COMPENSATION_V1_APPLY_COMPENSATION_STRATEGY_RESHIP ==
                       (int)COMPENSATION_STRATEGY_RESHIP &&
                   (int)CTXD_C_COMPENSATION_V1_APPLY_COMPENSATION_STRATEGY_NON_PRODUCT ==
                       (int)COMPENSATION_STRATEGY_NON_PRODUCT,
               "strategy numbers");
_Static_assert((int)CTXD_C_COMPENSATION_V1_APPLY_COMPENSATION_NON_PRODUCT_KIND_VOUCHER ==
                       (int)COMPENSATION_BENEFIT_VOUCHER &&
                   (int)CTXD_C_COMPENSATION_V1_APPLY_COMPENSATION_NON_PRODUCT_KIND_RED_PACKET ==
                       (int)COMPENSATION_BENEFIT_RED_PACKET,
               "benefit numbers");
_Static_assert((int)CTXD_C_COMPENSATION_V1_APPLY_COMPENSATION_CHANNEL_BACK_OFFICE ==
                       (int)COMPENSATION_CHANNEL_BACK_OFFICE &&
                   (int)CTXD_C_COMPENSATION_V1_APPLY_COMPENSATION_CHANNEL_CUSTOMER_SERVICE ==
                       (int)COMPENSATION_CHANNEL_CUSTOMER_SERVICE &&
                   (int)CTXD_C_COMPENSATION_V1_APPLY_COMPENSATION_CHANNEL_CUSTOMER_APP ==
                       (int)COMPENSATION_CHANNEL_APP,
               "channel numbers");
_Static_assert((int)CTXD_C_COMPENSATION_V1_APPLY_COMPENSATION_RESPONSIBLE_PARTY_MERCHANT ==
                       (int)COMPENSATION_PARTY_MERCHANT &&
                   (int)CTXD_C_COMPENSATION_V1_APPLY_COMPENSATION_RESPONSIBLE_PARTY_PLATFORM ==
                       (int)COMPENSATION_PARTY_PLATFORM &&
                   (int)CTXD_C_COMPENSATION_V1_APPLY_COMPENSATION_RESPONSIBLE_PARTY_LOGISTICS ==
                       (int)COMPENSATION_PARTY_LOGISTICS &&
                   (int)CTXD_C_COMPENSATION_V1_APPLY_COMPENSATION_RESPONSIBLE_PARTY_CUSTOMER ==
                       (int)COMPENSATION_PARTY_CUSTOMER,
               "responsible party numbers");

/* The contracts' status numbers (Draft = 1 ... PendingCommunication = 8) for the domain's. */
static const int32_t compensation_status_numbers[COMPENSATION_STATUS_COUNT] = {
    [COMPENSATION_STATUS_APPLIED] = CTXD_C_COMPENSATION_V1_COMPENSATION_COMMAND_ACCEPTED_STATUS_DRAFT,
    [COMPENSATION_STATUS_PENDING_APPROVAL] =
        CTXD_C_COMPENSATION_V1_COMPENSATION_COMMAND_ACCEPTED_STATUS_PENDING_APPROVAL,
    [COMPENSATION_STATUS_APPROVED] = CTXD_C_COMPENSATION_V1_COMPENSATION_COMMAND_ACCEPTED_STATUS_APPROVED,
    [COMPENSATION_STATUS_REJECTED] = CTXD_C_COMPENSATION_V1_COMPENSATION_COMMAND_ACCEPTED_STATUS_REJECTED,
    [COMPENSATION_STATUS_COMPENSATING] =
        CTXD_C_COMPENSATION_V1_COMPENSATION_COMMAND_ACCEPTED_STATUS_COMPENSATING,
    [COMPENSATION_STATUS_FINISHED] = CTXD_C_COMPENSATION_V1_COMPENSATION_COMMAND_ACCEPTED_STATUS_FINISHED,
    [COMPENSATION_STATUS_PENDING_COMMUNICATION] =
        CTXD_C_COMPENSATION_V1_COMPENSATION_COMMAND_ACCEPTED_STATUS_PENDING_COMMUNICATION,
    [COMPENSATION_STATUS_TERMINATED] = CTXD_C_COMPENSATION_V1_COMPENSATION_COMMAND_ACCEPTED_STATUS_TERMINATED,
};

static int32_t compensation_status_number(compensation_status_t s) {
  return (unsigned)s < COMPENSATION_STATUS_COUNT ? compensation_status_numbers[s] : 0;
}

/* ---- time ---------------------------------------------------------------------------------- */

/* Commands carry no time of their own: the domain gets the host's clock. */
static int64_t compensation_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void compensation_ms_to_iso(int64_t ms, char out[32]) {
  time_t t = (time_t)(ms / 1000);
  struct tm tm;
  gmtime_r(&t, &tm);
  size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(out + n, 32 - n, ".%03dZ", (int)(ms % 1000));
}

/* ---- reading the contracts --------------------------------------------------------------- */

/* Copies a (validated) contract string; NULL stays "". */
static void compensation_copy(char *dst, size_t cap, const char *src) {
  snprintf(dst, cap, "%s", src != NULL ? src : "");
}

/* Apply and Modify carry the same plan members (generated as two struct types): the
 * strategy and the responsible party go to the domain; currency, item names and the note to
 * the extras. A second plan beside the chosen one is refused before anything is dropped. */
#define COMPENSATION_READ_PLAN(c, in)                                                                        \
  do {                                                                                                       \
    compensation_strategy_t *s_ = &(in)->strategy;                                                           \
    json_t *names_ = json_object();                                                                          \
    compensation_why_t why_;                                                                                 \
    size_t amounts_ = 0;                                                                                     \
    for (size_t i_ = 0; i_ < (c)->items_count; i_++) amounts_ += (c)->items[i_].has_refund_amount_minor;     \
    (in)->why_code =                                                                                         \
        compensation_strategy_conflict((compensation_strategy_kind_t)(c)->strategy, (c)->items_count,        \
                                       amounts_, (c)->has_non_product, &why_);                               \
    if ((in)->why_code) snprintf((in)->why, sizeof(in)->why, "%s", why_.text);                               \
    (in)->cmd.responsible_party =                                                                            \
        (c)->has_responsible_party ? (compensation_party_t)(c)->responsible_party : COMPENSATION_PARTY_NONE; \
    compensation_strategy_init(s_, (compensation_strategy_kind_t)(c)->strategy);                             \
    for (size_t i_ = 0; (in)->why_code == 0 && i_ < (c)->items_count; i_++) {                                \
      int rc_ = (c)->strategy == COMPENSATION_STRATEGY_PRODUCT_REFUND                                        \
                    ? compensation_strategy_add_refund_item(s_, (c)->items[i_].sku,                          \
                                                            (int32_t)(c)->items[i_].quantity,                \
                                                            (c)->items[i_].refund_amount_minor)              \
                    : compensation_strategy_add_reship_item(s_, (c)->items[i_].sku,                          \
                                                            (int32_t)(c)->items[i_].quantity);               \
      if (rc_ != 0) { /* the contract's 64 characters can be more bytes than the domain's 64 */              \
        (in)->why_code = CTXD_ETOOBIG;                                                                       \
        snprintf((in)->why, sizeof(in)->why, "item %zu: sku is longer than %d bytes", i_ + 1,                \
                 COMPENSATION_ID_MAX);                                                                       \
      }                                                                                                      \
      json_object_set_new(names_, (c)->items[i_].sku, json_string((c)->items[i_].name));                     \
    }                                                                                                        \
    if ((c)->has_non_product && (in)->why_code == 0)                                                         \
      compensation_strategy_set_non_product(s_, (compensation_benefit_t)(c)->non_product.kind,               \
                                            (c)->non_product.amount_minor);                                  \
    (in)->extras = json_pack("{s:s, s:o, s:s?}", "currency", (c)->currency, "names", names_, "note",         \
                             (c)->has_non_product ? (c)->non_product.note : NULL);                           \
    (in)->cmd.strategy = s_;                                                                                 \
  } while (0)

static int compensation_read_apply(const char *body, size_t len, compensation_input_t *in, char *err,
                                   size_t errlen) {
  ctxd_c_compensation_v1_apply_compensation_t c;
  int rc = ctxd_c_compensation_v1_apply_compensation_decode(body, len, &c, err, errlen);
  if (rc == 0) {
    compensation_copy(in->id, sizeof in->id, c.compensation_id);
    compensation_copy(in->order_id, sizeof in->order_id, c.order_number);
    compensation_copy(in->customer_id, sizeof in->customer_id, c.customer_id);
    compensation_copy(in->actor, sizeof in->actor, c.applied_by);
    compensation_copy(in->reason, sizeof in->reason, c.reason);
    in->cmd.channel = (compensation_channel_t)c.channel;
    in->cmd.order_id = in->order_id;
    in->cmd.customer_id = in->customer_id;
    COMPENSATION_READ_PLAN(&c, in);
  }
  ctxd_c_compensation_v1_apply_compensation_free(&c);
  return rc;
}

static int compensation_read_modify(const char *body, size_t len, compensation_input_t *in, char *err,
                                    size_t errlen) {
  ctxd_c_compensation_v1_modify_compensation_t c;
  int rc = ctxd_c_compensation_v1_modify_compensation_decode(body, len, &c, err, errlen);
  if (rc == 0) {
    compensation_copy(in->id, sizeof in->id, c.compensation_id);
    compensation_copy(in->actor, sizeof in->actor, c.modified_by);
    compensation_copy(in->reason, sizeof in->reason, c.reason);
    COMPENSATION_READ_PLAN(&c, in);
    in->cmd.clear_responsible_party = c.has_clear_responsible_party && c.clear_responsible_party;
  }
  ctxd_c_compensation_v1_modify_compensation_free(&c);
  return rc;
}

static int compensation_read_submit(const char *body, size_t len, compensation_input_t *in, char *err,
                                    size_t errlen) {
  ctxd_c_compensation_v1_submit_compensation_t c;
  int rc = ctxd_c_compensation_v1_submit_compensation_decode(body, len, &c, err, errlen);
  compensation_copy(in->id, sizeof in->id, c.compensation_id);
  compensation_copy(in->actor, sizeof in->actor, c.submitted_by);
  ctxd_c_compensation_v1_submit_compensation_free(&c);
  return rc;
}

static int compensation_read_approve(const char *body, size_t len, compensation_input_t *in, char *err,
                                     size_t errlen) {
  ctxd_c_compensation_v1_approve_compensation_t c;
  int rc = ctxd_c_compensation_v1_approve_compensation_decode(body, len, &c, err, errlen);
  compensation_copy(in->id, sizeof in->id, c.compensation_id);
  compensation_copy(in->actor, sizeof in->actor, c.approved_by);
  ctxd_c_compensation_v1_approve_compensation_free(&c);
  return rc;
}

static int compensation_read_reject(const char *body, size_t len, compensation_input_t *in, char *err,
                                    size_t errlen) {
  ctxd_c_compensation_v1_reject_compensation_t c;
  int rc = ctxd_c_compensation_v1_reject_compensation_decode(body, len, &c, err, errlen);
  compensation_copy(in->id, sizeof in->id, c.compensation_id);
  compensation_copy(in->actor, sizeof in->actor, c.rejected_by);
  compensation_copy(in->reason, sizeof in->reason, c.reason);
  ctxd_c_compensation_v1_reject_compensation_free(&c);
  return rc;
}

static int compensation_read_terminate(const char *body, size_t len, compensation_input_t *in, char *err,
                                       size_t errlen) {
  ctxd_c_compensation_v1_terminate_compensation_t c;
  int rc = ctxd_c_compensation_v1_terminate_compensation_decode(body, len, &c, err, errlen);
  compensation_copy(in->id, sizeof in->id, c.compensation_id);
  compensation_copy(in->actor, sizeof in->actor, c.terminated_by);
  compensation_copy(in->reason, sizeof in->reason, c.reason);
  ctxd_c_compensation_v1_terminate_compensation_free(&c);
  return rc;
}

static int compensation_read_processing(const char *body, size_t len, compensation_input_t *in, char *err,
                                        size_t errlen) {
  ctxd_c_fulfillment_v1_fulfillment_processing_t c;
  int rc = ctxd_c_fulfillment_v1_fulfillment_processing_decode(body, len, &c, err, errlen);
  compensation_copy(in->id, sizeof in->id, c.compensation_id);
  compensation_copy(in->fulfillment_id, sizeof in->fulfillment_id, c.fulfillment_id);
  ctxd_c_fulfillment_v1_fulfillment_processing_free(&c);
  return rc;
}

static int compensation_read_succeeded(const char *body, size_t len, compensation_input_t *in, char *err,
                                       size_t errlen) {
  ctxd_c_fulfillment_v1_fulfillment_succeeded_t c;
  int rc = ctxd_c_fulfillment_v1_fulfillment_succeeded_decode(body, len, &c, err, errlen);
  compensation_copy(in->id, sizeof in->id, c.compensation_id);
  compensation_copy(in->fulfillment_id, sizeof in->fulfillment_id, c.fulfillment_id);
  ctxd_c_fulfillment_v1_fulfillment_succeeded_free(&c);
  return rc;
}

static int compensation_read_failed(const char *body, size_t len, compensation_input_t *in, char *err,
                                    size_t errlen) {
  ctxd_c_fulfillment_v1_fulfillment_failed_t c;
  int rc = ctxd_c_fulfillment_v1_fulfillment_failed_decode(body, len, &c, err, errlen);
  compensation_copy(in->id, sizeof in->id, c.compensation_id);
  compensation_copy(in->fulfillment_id, sizeof in->fulfillment_id, c.fulfillment_id);
  compensation_copy(in->reason, sizeof in->reason, c.reason);
  ctxd_c_fulfillment_v1_fulfillment_failed_free(&c);
  return rc;
}

static int compensation_read_abandoned(const char *body, size_t len, compensation_input_t *in, char *err,
                                       size_t errlen) {
  ctxd_c_fulfillment_v1_fulfillment_abandoned_t c;
  int rc = ctxd_c_fulfillment_v1_fulfillment_abandoned_decode(body, len, &c, err, errlen);
  compensation_copy(in->id, sizeof in->id, c.compensation_id);
  compensation_copy(in->fulfillment_id, sizeof in->fulfillment_id, c.fulfillment_id);
  compensation_copy(in->reason, sizeof in->reason, c.reason);
  ctxd_c_fulfillment_v1_fulfillment_abandoned_free(&c);
  return rc;
}

static const compensation_route_t compensation_routes[COMPENSATION_ROUTES] = {
    {CTXD_C_COMPENSATION_V1_APPLY_COMPENSATION_TYPE, COMPENSATION_ACTION_APPLY, compensation_read_apply, 1},
    {CTXD_C_COMPENSATION_V1_MODIFY_COMPENSATION_TYPE, COMPENSATION_ACTION_MODIFY, compensation_read_modify,
     1},
    {CTXD_C_COMPENSATION_V1_SUBMIT_COMPENSATION_TYPE, COMPENSATION_ACTION_SUBMIT, compensation_read_submit,
     1},
    {CTXD_C_COMPENSATION_V1_APPROVE_COMPENSATION_TYPE, COMPENSATION_ACTION_APPROVE, compensation_read_approve,
     1},
    {CTXD_C_COMPENSATION_V1_REJECT_COMPENSATION_TYPE, COMPENSATION_ACTION_REJECT, compensation_read_reject,
     1},
    {CTXD_C_COMPENSATION_V1_TERMINATE_COMPENSATION_TYPE, COMPENSATION_ACTION_TERMINATE,
     compensation_read_terminate, 1},
    {CTXD_C_FULFILLMENT_V1_FULFILLMENT_PROCESSING_TYPE, COMPENSATION_ACTION_FULFILLMENT_PROCESSING,
     compensation_read_processing, 0},
    {CTXD_C_FULFILLMENT_V1_FULFILLMENT_SUCCEEDED_TYPE, COMPENSATION_ACTION_FULFILLMENT_SUCCEEDED,
     compensation_read_succeeded, 0},
    {CTXD_C_FULFILLMENT_V1_FULFILLMENT_FAILED_TYPE, COMPENSATION_ACTION_FULFILLMENT_FAILED,
     compensation_read_failed, 0},
    {CTXD_C_FULFILLMENT_V1_FULFILLMENT_ABANDONED_TYPE, COMPENSATION_ACTION_FULFILLMENT_ABANDONED,
     compensation_read_abandoned, 0},
};

/* ---- writing the contracts --------------------------------------------------------------- */

/* Domain ids came from the contracts' UUIDs: they fit a UUID field. */
static void compensation_uuid(ctxd_c_uuid_t dst, const char *src) {
  size_t n = strnlen(src, sizeof(ctxd_c_uuid_t) - 1);
  memcpy(dst, src, n);
  dst[n] = '\0';
}

/* Writes an outgoing message (and frees body): a reply goes to the request's
 * responseAddress, or is published when the request has none (reply_or_publish) or dropped
 * (reply_only: nobody else waits for it); an event is published. */
enum { COMPENSATION_EVENT, COMPENSATION_REPLY_OR_PUBLISH, COMPENSATION_REPLY_ONLY };

static int compensation_emit(const compensation_state_t *st, ctxd_tx_t *tx, const char *type, char *body,
                             int how) {
  if (body == NULL) return CTXD_ENOMEM;
  ctxd_out_msg_t out = {.size = sizeof out, .message_type = type, .body = body};
  int rc = how == COMPENSATION_EVENT ? st->api->publish(tx, &out) : st->api->respond(tx, &out);
  if (rc == CTXD_ENOENT) rc = how == COMPENSATION_REPLY_OR_PUBLISH ? st->api->publish(tx, &out) : 0;
  free(body);
  return rc;
}

/* The contract's reasons for the domain's rejection codes. */
static int32_t compensation_reject_reason(int code) {
  switch (code) {
  case CTXD_ENOENT: return CTXD_C_COMPENSATION_V1_COMPENSATION_COMMAND_REJECTED_REASON_NOT_FOUND;
  case CTXD_ESTATE: return CTXD_C_COMPENSATION_V1_COMPENSATION_COMMAND_REJECTED_REASON_NOT_ALLOWED_IN_STATUS;
  case CTXD_EEXIST: return CTXD_C_COMPENSATION_V1_COMPENSATION_COMMAND_REJECTED_REASON_ALREADY_EXISTS;
  default: return CTXD_C_COMPENSATION_V1_COMPENSATION_COMMAND_REJECTED_REASON_INVALID_PLAN;
  }
}

static int compensation_reply_rejected(const compensation_state_t *st, ctxd_tx_t *tx, const char *id,
                                       const compensation_order_t *current, int code, const char *why) {
  ctxd_c_compensation_v1_compensation_command_rejected_t r = {0};
  compensation_uuid(r.compensation_id, id);
  r.reason = compensation_reject_reason(code);
  r.message = (char *)why;
  r.has_status = current != NULL;
  r.status = current != NULL ? compensation_status_number(current->status) : 0;
  st->api->log(st->plugin, st->api->tx_msg(tx), CTXD_LOG_INFO, "command rejected: %s (%s)", why,
               ctxd_strerror(code));
  return compensation_emit(st, tx, CTXD_C_COMPENSATION_V1_COMPENSATION_COMMAND_REJECTED_TYPE,
                           ctxd_c_compensation_v1_compensation_command_rejected_encode(&r),
                           COMPENSATION_REPLY_OR_PUBLISH);
}

static int compensation_reply_accepted(const compensation_state_t *st, ctxd_tx_t *tx,
                                       const compensation_order_t *o) {
  ctxd_c_compensation_v1_compensation_command_accepted_t a = {0};
  compensation_uuid(a.compensation_id, o->id);
  a.status = compensation_status_number(o->status);
  a.version = o->version;
  return compensation_emit(st, tx, CTXD_C_COMPENSATION_V1_COMPENSATION_COMMAND_ACCEPTED_TYPE,
                           ctxd_c_compensation_v1_compensation_command_accepted_encode(&a),
                           COMPENSATION_REPLY_ONLY);
}

static int compensation_publish_status(const compensation_state_t *st, ctxd_tx_t *tx,
                                       const compensation_order_t *before,
                                       const compensation_order_t *after) {
  char at[32];
  ctxd_c_compensation_v1_compensation_status_changed_t e = {0};
  compensation_uuid(e.compensation_id, after->id);
  e.has_old_status = before != NULL;
  e.old_status = before != NULL ? compensation_status_number(before->status) : 0;
  e.new_status = compensation_status_number(after->status);
  e.reason = after->status_reason[0] ? (char *)after->status_reason : NULL;
  e.has_responsible_party = after->responsible_party != COMPENSATION_PARTY_NONE;
  e.responsible_party = (int32_t)after->responsible_party;
  e.version = after->version;
  compensation_ms_to_iso(after->updated_at, at);
  e.changed_at = at;
  return compensation_emit(st, tx, CTXD_C_COMPENSATION_V1_COMPENSATION_STATUS_CHANGED_TYPE,
                           ctxd_c_compensation_v1_compensation_status_changed_encode(&e), COMPENSATION_EVENT);
}

/* CompensationApproved from the domain's event and the order's extras (currency, item
 * names, the note): what Fulfillment needs to carry the plan out. */
static int compensation_publish_approved(const compensation_state_t *st, ctxd_tx_t *tx,
                                         const compensation_event_t *ev, const json_t *extras) {
  char at[32];
  const compensation_strategy_t *s = &ev->strategy;
  compensation_strategy_kind_t kind = compensation_strategy_kind(s);
  const json_t *names = json_object_get(extras, "names");
  ctxd_c_compensation_v1_compensation_approved_items_item_t items[COMPENSATION_MAX_ITEMS];
  ctxd_c_compensation_v1_compensation_approved_t e = {0};
  compensation_uuid(e.compensation_id, ev->compensation_id);
  e.order_number = (char *)ev->order_id;
  compensation_uuid(e.customer_id, ev->customer_id);
  e.strategy = (int32_t)kind;
  size_t n = kind == COMPENSATION_STRATEGY_PRODUCT_REFUND ? s->refund.n
             : kind == COMPENSATION_STRATEGY_RESHIP       ? s->reship.n
                                                          : 0;
  for (size_t i = 0; i < n; i++) {
    const compensation_line_t *line =
        kind == COMPENSATION_STRATEGY_PRODUCT_REFUND ? &s->refund.items[i].line : &s->reship.items[i];
    const char *name = json_string_value(json_object_get(names, line->sku));
    items[i] = (ctxd_c_compensation_v1_compensation_approved_items_item_t){
        .sku = (char *)line->sku,
        .name = (char *)(name != NULL ? name : line->sku),
        .quantity = line->quantity};
    if (kind == COMPENSATION_STRATEGY_PRODUCT_REFUND) {
      items[i].has_refund_amount_minor = true;
      items[i].refund_amount_minor = s->refund.items[i].amount;
    }
  }
  e.has_items = n > 0;
  e.items = items;
  e.items_count = n;
  if (kind == COMPENSATION_STRATEGY_NON_PRODUCT) {
    e.has_non_product = true;
    e.non_product.kind = (int32_t)s->non_product.benefit;
    e.non_product.amount_minor = s->non_product.amount;
    e.non_product.note = (char *)json_string_value(json_object_get(extras, "note"));
  }
  e.currency = (char *)json_string_value(json_object_get(extras, "currency"));
  e.total_amount_minor = ev->total_amount;
  e.has_responsible_party = ev->responsible_party != COMPENSATION_PARTY_NONE;
  e.responsible_party = (int32_t)ev->responsible_party;
  e.approved_by = (char *)ev->actor;
  compensation_ms_to_iso(ev->at, at);
  e.approved_at = at;
  return compensation_emit(st, tx, CTXD_C_COMPENSATION_V1_COMPENSATION_APPROVED_TYPE,
                           ctxd_c_compensation_v1_compensation_approved_encode(&e), COMPENSATION_EVENT);
}

/* CompensationModified: the order as a Modify left it (the reason and the version are the
 * order's, the rest the event's). */
static int compensation_publish_modified(const compensation_state_t *st, ctxd_tx_t *tx,
                                         const compensation_event_t *ev, const compensation_order_t *o) {
  char at[32];
  ctxd_c_compensation_v1_compensation_modified_t e = {0};
  compensation_uuid(e.compensation_id, ev->compensation_id);
  e.reason = (char *)o->reason;
  e.has_responsible_party = ev->responsible_party != COMPENSATION_PARTY_NONE;
  e.responsible_party = (int32_t)ev->responsible_party;
  e.strategy = (int32_t)compensation_strategy_kind(&ev->strategy);
  e.total_amount_minor = ev->total_amount;
  e.version = o->version;
  e.modified_by = (char *)ev->actor;
  compensation_ms_to_iso(ev->at, at);
  e.modified_at = at;
  return compensation_emit(st, tx, CTXD_C_COMPENSATION_V1_COMPENSATION_MODIFIED_TYPE,
                           ctxd_c_compensation_v1_compensation_modified_encode(&e), COMPENSATION_EVENT);
}

/* ---- deciding ------------------------------------------------------------------------------ */

static ctxd_handler_result_t compensation_result(const compensation_state_t *st, ctxd_tx_t *tx, int rc) {
  if (rc == 0) return CTXD_HANDLER_OK;
  if (rc == CTXD_ECONFLICT) return CTXD_HANDLER_RETRY; /* another writer of this order */
  const char *err = st->api->tx_error(tx);
  st->api->tx_fault(tx, "Compensation.Failed", err[0] ? err : ctxd_strerror(rc));
  return CTXD_HANDLER_FAIL;
}

/* Stores an accepted decision and publishes what it yields. */
static int compensation_commit(const compensation_state_t *st, ctxd_tx_t *tx,
                               const compensation_order_t *before, const json_t *stored_extras,
                               const compensation_input_t *in, const compensation_decision_t *d) {
  /* extras follow the message that carries them (apply, modify); the others keep them */
  const json_t *extras = in->extras != NULL ? in->extras : stored_extras;
  int extras_changed = in->extras != NULL && !json_equal((json_t *)in->extras, (json_t *)stored_extras);
  int rc = before == NULL ? compensation_repo_insert(st->api, tx, &d->order, extras)
                          : compensation_repo_update(st->api, tx, before->version, &d->order, d->changed,
                                                     extras_changed ? extras : NULL);
  for (size_t i = 0; rc == 0 && i < d->n_events; i++)
    rc = d->events[i].type == COMPENSATION_EVENT_MODIFIED
             ? compensation_publish_modified(st, tx, &d->events[i], &d->order)
             : compensation_publish_approved(st, tx, &d->events[i], extras);
  if (rc == 0 && (d->changed & COMPENSATION_FIELD_STATUS))
    rc = compensation_publish_status(st, tx, before, &d->order);
  return rc;
}

static ctxd_handler_result_t compensation_on_message(ctxd_tx_t *tx, const ctxd_msg_t *msg, void *data) {
  const compensation_binding_t *b = data;
  const compensation_state_t *st = b->st;
  size_t len;
  char err[256];
  const char *body = st->api->msg_body(msg, &len);
  compensation_input_t *in = calloc(1, sizeof *in);
  compensation_decision_t *d = calloc(1, sizeof *d); /* several KB: off the worker's stack */
  compensation_order_t *current = calloc(1, sizeof *current);
  json_t *stored_extras = NULL;
  int found = 0, malformed = 0, rc = in == NULL || d == NULL || current == NULL ? CTXD_ENOMEM : 0;
  if (rc == 0 && b->route->decode(body, len, in, err, sizeof err) != 0) {
    /* the host validated the body against its contract: only memory can fail here */
    st->api->tx_fault(tx, "Compensation.Malformed", err);
    malformed = 1;
    rc = CTXD_EINVAL;
  }
  if (rc == 0) {
    in->cmd.action = b->route->action;
    in->cmd.at = compensation_now_ms();
    in->cmd.id = in->id;
    in->cmd.actor = in->actor;
    in->cmd.reason = in->reason[0] ? in->reason : NULL;
    in->cmd.fulfillment_id = in->fulfillment_id;
    rc = compensation_repo_load(st->api, tx, in->id, current, &stored_extras, &found);
  }
  int code = 0;
  if (rc == 0) {
    code = in->why_code ? in->why_code : compensation_order_decide(found ? current : NULL, &in->cmd, d);
    const char *why = in->why[0] ? in->why : d->why.text;
    if (code != 0 && b->route->reply)
      rc = compensation_reply_rejected(st, tx, in->id, found ? current : NULL, code, why);
    else if (code != 0 || d->ignored) /* a fulfillment event this order does not take: said, not failed */
      st->api->log(st->plugin, msg, code ? CTXD_LOG_WARN : CTXD_LOG_INFO, "%s on compensation %s: %s",
                   compensation_action_name(in->cmd.action), in->id, why);
    else {
      if (d->changed) rc = compensation_commit(st, tx, found ? current : NULL, stored_extras, in, d);
      if (rc == 0 && b->route->reply) rc = compensation_reply_accepted(st, tx, &d->order);
    }
  }
  ctxd_handler_result_t result = malformed ? CTXD_HANDLER_FAIL : compensation_result(st, tx, rc);
  if (in != NULL) json_decref(in->extras);
  json_decref(stored_extras);
  free(in);
  free(d);
  free(current);
  return result;
}

/* ---- lifecycle ----------------------------------------------------------------------------- */

static int compensation_init(ctxd_plugin_t *plugin, const ctxd_api_t *api, void **state) {
  compensation_state_t *st = calloc(1, sizeof *st);
  if (st == NULL) return CTXD_ENOMEM;
  st->api = api;
  st->plugin = plugin;
  st->settings = api->settings(plugin);
  *state = st;
  int rc = 0;
  for (size_t i = 0; rc == 0 && i < COMPENSATION_ROUTES; i++) {
    st->bindings[i] = (compensation_binding_t){st, &compensation_routes[i]};
    ctxd_consumer_t c = {.size = sizeof c,
                         .endpoint = st->settings->endpoint,
                         .message_type = compensation_routes[i].type,
                         .handler = compensation_on_message,
                         .data = &st->bindings[i]};
    rc = api->consumer_register(plugin, &c);
  }
  return rc;
}

static void compensation_destroy(void *state) { free(state); }

static const ctxd_plugin_desc_t compensation_desc = {
    CTXD_PLUGIN_STAMP, /* size, ABI version, build flags */
    .name = "compensation",
    .version = "1.0.0",
    .description = "after-sales compensation orders: apply, review, react to their fulfillment",
    .config_map = compensation_config_map,
    .settings_size = sizeof(compensation_settings_t),
    .migrations = compensation_migrations,
    .init = compensation_init,
    .destroy = compensation_destroy,
};

CTXD_PLUGIN_DEFINE(compensation_desc)
