/* The payment and order systems: each request gets its answers after a delay.
 *
 * A request may come twice (a redelivery, or a sender publishing again after a crash), and
 * both copies must be answered alike: the outcome and the references come from a hash of
 * the request's business id, and every answer's message id from the request's message id
 * and the answer's type, so consumers drop the second copy as a duplicate. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ctxd_contracts.h"
#include "sim.h"

static const char *const refund_failures[] = {
    "Original payment is older than 180 days",
    "The card was closed by its issuer",
    "The payment provider declined the refund",
};

static const char *const reship_failures[] = {
    "Out of stock",
    "The carrier refused the parcel: address unreachable",
    "The warehouse cancelled the order",
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

sim_out_t sim_answer_out(const sim_request_t *req, const char *type, bool last, char id[37]) {
  sim_uuid_derive(req->id, type, id);
  return (sim_out_t){.type = type,
                     .id = id,
                     .correlation_id = req->correlation_id,
                     /* a conversation starts with its first message */
                     .conversation_id = req->conversation_id ? req->conversation_id : req->id,
                     .initiator_id = req->id,
                     .delivery = req->delivery,
                     .ack = last};
}

/* A business id's fate at failure_percent: the same id always fails or always succeeds. */
static bool fails(const sim_t *sim, uint64_t h) { return (int64_t)(h % 100) < sim->s->failure_percent; }

static int answer_refund(sim_t *sim, const sim_request_t *req, const char *text, char *err, size_t errlen) {
  ctxd_c_fulfillment_v1_refund_requested_t r;
  int rc = ctxd_c_fulfillment_v1_refund_requested_decode(text, strlen(text), &r, err, errlen);
  uint64_t h = sim_hash(r.refund_id, "payment");
  int64_t due = sim_now_ms() + sim_delay(sim);
  char at[32], id[37];
  sim_iso_at(due, at);
  if (rc == 0 && !fails(sim, h)) {
    char reference[32];
    snprintf(reference, sizeof reference, "RF-%012" PRIu64, (h / 100) % UINT64_C(1000000000000));
    ctxd_c_payment_v1_refund_completed_t a = {.amount_minor = r.amount_minor,
                                              .currency = r.currency,
                                              .payment_reference = reference,
                                              .completed_at = at};
    memcpy(a.refund_id, r.refund_id, sizeof a.refund_id);
    memcpy(a.fulfillment_id, r.fulfillment_id, sizeof a.fulfillment_id);
    sim_out_t out = sim_answer_out(req, CTXD_C_PAYMENT_V1_REFUND_COMPLETED_TYPE, true, id);
    rc = sim_later(sim, due, &out, ctxd_c_payment_v1_refund_completed_encode(&a),
                   "payment: refund %s of %" PRId64 " %s completed (reference %s)", r.refund_id,
                   r.amount_minor, r.currency, reference);
  } else if (rc == 0) {
    ctxd_c_payment_v1_refund_failed_t a = {
        .reason = (char *)refund_failures[(h / 100) % COUNT(refund_failures)], .failed_at = at};
    memcpy(a.refund_id, r.refund_id, sizeof a.refund_id);
    memcpy(a.fulfillment_id, r.fulfillment_id, sizeof a.fulfillment_id);
    sim_out_t out = sim_answer_out(req, CTXD_C_PAYMENT_V1_REFUND_FAILED_TYPE, true, id);
    rc = sim_later(sim, due, &out, ctxd_c_payment_v1_refund_failed_encode(&a),
                   "payment: refund %s failed: %s", r.refund_id, a.reason);
  }
  ctxd_c_fulfillment_v1_refund_requested_free(&r);
  return rc;
}

/* The order is created after one delay, then shipped (or fails) after another. */
static int answer_reship(sim_t *sim, const sim_request_t *req, const char *text, char *err, size_t errlen) {
  ctxd_c_fulfillment_v1_reship_order_requested_t r;
  int rc = ctxd_c_fulfillment_v1_reship_order_requested_decode(text, strlen(text), &r, err, errlen);
  uint64_t h = sim_hash(r.reship_id, "ordering");
  int64_t created = sim_now_ms() + sim_delay(sim), done = created + sim_delay(sim);
  char at[32], order[32], id[37];
  snprintf(order, sizeof order, "RS%014" PRIu64, (h / 100) % UINT64_C(100000000000000));
  if (rc == 0) {
    sim_iso_at(created, at);
    ctxd_c_ordering_v1_reship_order_created_t a = {.order_number = order, .created_at = at};
    memcpy(a.reship_id, r.reship_id, sizeof a.reship_id);
    memcpy(a.fulfillment_id, r.fulfillment_id, sizeof a.fulfillment_id);
    sim_out_t out = sim_answer_out(req, CTXD_C_ORDERING_V1_RESHIP_ORDER_CREATED_TYPE, false, id);
    rc = sim_later(sim, created, &out, ctxd_c_ordering_v1_reship_order_created_encode(&a),
                   "ordering: reship %s created order %s", r.reship_id, order);
  }
  if (rc == 0 && !fails(sim, h)) {
    char tracking[32];
    snprintf(tracking, sizeof tracking, "SF%012" PRIu64, (h >> 20) % UINT64_C(1000000000000));
    sim_iso_at(done, at);
    ctxd_c_ordering_v1_reship_order_shipped_t a = {
        .order_number = order, .tracking_number = tracking, .shipped_at = at};
    memcpy(a.reship_id, r.reship_id, sizeof a.reship_id);
    memcpy(a.fulfillment_id, r.fulfillment_id, sizeof a.fulfillment_id);
    sim_out_t out = sim_answer_out(req, CTXD_C_ORDERING_V1_RESHIP_ORDER_SHIPPED_TYPE, true, id);
    rc = sim_later(sim, done, &out, ctxd_c_ordering_v1_reship_order_shipped_encode(&a),
                   "ordering: reship %s shipped order %s (tracking %s)", r.reship_id, order, tracking);
  } else if (rc == 0) {
    sim_iso_at(done, at);
    ctxd_c_ordering_v1_reship_order_failed_t a = {
        .reason = (char *)reship_failures[(h / 100) % COUNT(reship_failures)], .failed_at = at};
    memcpy(a.reship_id, r.reship_id, sizeof a.reship_id);
    memcpy(a.fulfillment_id, r.fulfillment_id, sizeof a.fulfillment_id);
    sim_out_t out = sim_answer_out(req, CTXD_C_ORDERING_V1_RESHIP_ORDER_FAILED_TYPE, true, id);
    rc = sim_later(sim, done, &out, ctxd_c_ordering_v1_reship_order_failed_encode(&a),
                   "ordering: reship %s failed: %s", r.reship_id, a.reason);
  }
  ctxd_c_fulfillment_v1_reship_order_requested_free(&r);
  return rc;
}

const sim_system_t sim_systems[SIM_SYSTEMS] = {
    [SIM_PAYMENT] = {"payment", CTXD_C_FULFILLMENT_V1_REFUND_REQUESTED_TYPE, answer_refund},
    [SIM_ORDERING] = {"ordering", CTXD_C_FULFILLMENT_V1_RESHIP_ORDER_REQUESTED_TYPE, answer_reship},
    [SIM_AGENT_DESK] = {"agent desk", CTXD_C_CASE_V1_CASE_STATUS_CHANGED_TYPE, sim_desk_answer},
};

static const char *string_field(const json_t *o, const char *key) {
  return json_string_value(json_object_get(o, key));
}

int sim_answer(sim_t *sim, int system, uint64_t delivery, const void *body, size_t len, char *err,
               size_t errlen) {
  json_error_t je;
  json_t *env = json_loadb(body, len, 0, &je);
  json_t *message = json_object_get(env, "message");
  sim_request_t req = {string_field(env, "messageId"), string_field(env, "correlationId"),
                       string_field(env, "conversationId"), delivery};
  /* only MassTransit envelopes come here: ctxd's outbox and .NET publishers write them */
  if (!json_is_object(message) || req.id == NULL) {
    snprintf(err, errlen, "not a MassTransit envelope with messageId and message%s%s",
             env == NULL ? ": " : "", env == NULL ? je.text : "");
    json_decref(env);
    return CTXD_EDECODE;
  }
  char *text = json_dumps(message, JSON_COMPACT);
  int rc = text == NULL ? CTXD_ENOMEM : sim_systems[system].answer(sim, &req, text, err, errlen);
  free(text);
  json_decref(env);
  return rc;
}
