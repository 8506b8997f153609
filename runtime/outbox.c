#include "outbox.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "address.h"
#include "clock.h"
#include "contract.h"
#include "db.h"
#include "dispatch.h"
#include "envelope.h"
#include "envelope_out.h"
#include "outrow.h"
#include "plugin.h"
#include "trace.h"
#include "uuid.h"

static int valid_type(const char *t) {
  const char *colon = t != NULL ? strchr(t, ':') : NULL;
  return colon != NULL && colon != t && colon[1] != '\0' && strchr(colon + 1, ':') == NULL;
}

static json_t *headers_object(const char *const *kv) {
  json_t *h = json_object();
  for (size_t i = 0; kv != NULL && kv[i] != NULL && kv[i + 1] != NULL; i += 2)
    json_object_set_new(h, kv[i], json_string(kv[i + 1]));
  return h;
}

/* The fields of msg a plugin of ABI 1.0 did not have are read only when its size covers
 * them. */
#define OUT_MSG_HAS(msg, field) ((msg)->size >= offsetof(ctxd_out_msg_t, field) + sizeof((msg)->field))

/* Where a message goes and how, as MassTransit sends it. */
typedef struct {
  char exchange[256];
  const char *routing_key; /* NULL: "" */
  char destination_address[512];
  char source_address[512]; /* "" when unknown */
  int no_declare;           /* a reply target is the requester's: never declared */
  int64_t expires_ms;       /* 0: never */
} route_t;

/* The Unix time in ms when the reply to `in` expires: the request's own expirationTime,
 * else its AMQP expiration counted from now; 0 when it has neither. What is left is at
 * least a second, as MassTransit gives it (ConsumeSendPipeAdapter). */
static int64_t reply_expiry(const ctxd__envelope_t *in, int64_t now) {
  int64_t at = 0;
  if (in->expiration_time == NULL || ctxd__iso8601_parse_ms(in->expiration_time, &at) != 0)
    at = in->expiration_ms >= 0 ? now + in->expiration_ms : 0;
  return at != 0 && at - now < 1000 ? now + 1000 : at;
}

/* at_ms: when the message leaves (0: now); its time to live counts from then. */
static int route(ctxd_tx_t *tx, const ctxd_out_msg_t *msg, ctxd__outbox_mode_t mode, int64_t at_ms,
                 route_t *r) {
  const ctxd__envelope_t *in = tx->msg != NULL ? &tx->msg->env : NULL;
  const ctxd__endpoint_t *ep = tx->msg != NULL && tx->msg->delivery != NULL ? tx->msg->delivery->ep : NULL;
  const char *base = ep != NULL ? ep->env->address_base : tx->address_base != NULL ? tx->address_base : "";
  int64_t now = ctxd__clock_wall_ms();
  if (at_ms > now) now = at_ms;
  memset(r, 0, sizeof *r);
  if (ep != NULL && base[0] != '\0')
    snprintf(r->source_address, sizeof r->source_address, "%s%s", base, ep->name);
  int64_t ttl = OUT_MSG_HAS(msg, time_to_live_ms) ? msg->time_to_live_ms : 0;
  if (ttl < 0 || ttl > CTXD__SCHEDULE_MAX_MS) return CTXD_EINVAL; /* no overflow below */
  r->expires_ms = ttl > 0 ? now + ttl : 0;
  if (mode != CTXD__OUTBOX_RESPOND) {
    if (mode == CTXD__OUTBOX_SEND)
      snprintf(r->exchange, sizeof r->exchange, "%s", msg->destination);
    else if (ctxd__contracts_exchange(tx->contracts, msg->message_type, r->exchange, sizeof r->exchange) != 0)
      return CTXD_EINVAL;
    snprintf(r->destination_address, sizeof r->destination_address, "%s%s", base, r->exchange);
    return 0;
  }
  if (in == NULL || in->response_address == NULL) return CTXD_ENOENT;
  if (strlen(in->response_address) >= sizeof r->destination_address) return CTXD_EINVAL;
  strcpy(r->destination_address, in->response_address);
  r->no_declare = 1;
  if (r->expires_ms == 0 && in->request_id != NULL) r->expires_ms = reply_expiry(in, now);
  if (ctxd__address_is_reply_to(in->response_address)) {
    /* Direct Reply-To: the default exchange, to the channel the request's reply_to names */
    if (in->reply_to == NULL || *in->reply_to == '\0') return CTXD_EINVAL;
    r->routing_key = in->reply_to;
    return 0;
  }
  return ctxd__address_exchange(in->response_address, r->exchange, sizeof r->exchange);
}

/* A message checked and encoded, ready for a row of the outbox or of ctxd.scheduled. */
typedef struct {
  char id[37];
  route_t r;
  char *text;         /* the envelope; new */
  char *amqp_headers; /* NULL or new */
  ctxd__outrow_spec_t w;
} encoded_t;

static void encoded_free(encoded_t *e) {
  free(e->text);
  free(e->amqp_headers);
}

/* Checks msg and encodes it as leaving at at_ms (0: now) into *e (free with
 * encoded_free on success). 0 or CTXD_E* as ctxd__outbox_write. */
static int encode(ctxd_tx_t *tx, const ctxd_out_msg_t *msg, ctxd__outbox_mode_t mode, int64_t at_ms,
                  encoded_t *e) {
  memset(e, 0, sizeof *e);
  if (tx->failed) return CTXD_ESTATE;
  if (msg == NULL || !OUT_MSG_HAS(msg, headers) || !valid_type(msg->message_type) || msg->body == NULL ||
      (mode == CTXD__OUTBOX_SEND && (msg->destination == NULL || *msg->destination == '\0')))
    return CTXD_EINVAL;
  const ctxd__envelope_t *in = tx->msg != NULL ? &tx->msg->env : NULL;
  route_t *r = &e->r;
  int rc = route(tx, msg, mode, at_ms, r);
  if (rc != 0) return rc;

  char *id = e->id;
  if (msg->message_id != NULL) {
    if (ctxd__uuid_canonical(msg->message_id, id) != 0) return CTXD_EINVAL;
  } else {
    ctxd__uuid_new(id);
  }
  json_error_t jerr;
  size_t len = msg->body_len != 0 ? msg->body_len : strlen(msg->body);
  json_t *body = json_loadb(msg->body, len, 0, &jerr);
  if (!json_is_object(body)) {
    json_decref(body);
    return CTXD_EINVAL;
  }
  /* what leaves is checked like what arrives: a consumer would refuse it anyway */
  const ctxd__contract_t *k = ctxd__contracts_find(tx->contracts, msg->message_type);
  if (k != NULL && ctxd__contract_validate(k, body, tx->error, sizeof tx->error) != 0) {
    json_decref(body);
    return CTXD_EVALIDATION;
  }
  json_t *headers = headers_object(msg->headers);
  ctxd__trace_continue(headers, in);
  char expires[32];
  if (r->expires_ms != 0) ctxd__iso8601_ms(r->expires_ms, expires);
  /* from a consumer, as MassTransit's TransferConsumeContextHeaders: the conversation goes
   * on, the initiator is the consumed message's correlation (else its request), the
   * correlation itself is the handler's to set */
  ctxd__envelope_out_t out = {
      .message_id = id,
      .message_type = msg->message_type,
      .contract = k,
      .correlation_id = msg->correlation_id,
      .conversation_id =
          in != NULL ? (in->conversation_id != NULL ? in->conversation_id : in->message_id) : NULL,
      .initiator_id = in != NULL ? (in->correlation_id != NULL ? in->correlation_id : in->request_id) : NULL,
      .request_id = mode == CTXD__OUTBOX_RESPOND ? in->request_id : NULL,
      .source_address = r->source_address[0] != '\0' ? r->source_address : NULL,
      .destination_address = r->destination_address,
      .response_address = OUT_MSG_HAS(msg, response_address) ? msg->response_address : NULL,
      .fault_address = OUT_MSG_HAS(msg, fault_address) ? msg->fault_address : NULL,
      .message = body,
      .expiration_time = r->expires_ms != 0 ? expires : NULL,
      .headers = headers,
  };
  e->text = ctxd__envelope_encode(&out);
  /* MassTransit copies every send header to the AMQP headers */
  e->amqp_headers = json_object_size(headers) > 0 ? json_dumps(headers, JSON_COMPACT) : NULL;
  json_decref(body);
  json_decref(headers);
  /* the inputs were checked above but for UTF-8 in the caller's strings */
  if (e->text == NULL) {
    encoded_free(e);
    return CTXD_EINVAL;
  }
  e->w = (ctxd__outrow_spec_t){.id = id,
                               .exchange = r->exchange,
                               .message_type = msg->message_type,
                               .body = e->text,
                               .routing_key = r->routing_key,
                               .correlation_id = msg->correlation_id,
                               .headers = e->amqp_headers,
                               .expires_ms = r->expires_ms,
                               .no_declare = r->no_declare,
                               .event = mode == CTXD__OUTBOX_PUBLISH};
  return 0;
}

/* Marks tx failed after a statement's error rc (not for CTXD_ENOMEM: nothing was sent). */
static int failed(ctxd_tx_t *tx, int rc) {
  if (rc != 0 && rc != CTXD_ENOMEM) {
    tx->failed = 1;
    tx->fail_code = rc;
  }
  return rc;
}

/* Records what a plugin's handler publishes or sends, for the console's topology; a reply
 * goes to its requester's own queue and is not part of it. */
static void observe(const ctxd_tx_t *tx, const encoded_t *e, ctxd__outbox_mode_t mode) {
  const ctxd__endpoint_t *ep = tx->msg != NULL && tx->msg->delivery != NULL ? tx->msg->delivery->ep : NULL;
  if (mode != CTXD__OUTBOX_RESPOND && ep != NULL && ep->env->observed != NULL && tx->msg->handler != NULL &&
      tx->msg->handler->plugin != NULL)
    ctxd__observed_add(ep->env->observed, tx->msg->handler->plugin->name, e->w.message_type, e->w.exchange);
}

int ctxd__outbox_write(ctxd_tx_t *tx, const ctxd_out_msg_t *msg, ctxd__outbox_mode_t mode) {
  encoded_t e;
  int rc = encode(tx, msg, mode, 0, &e);
  if (rc != 0) return rc;
  ctxd__outrows_t *rows = tx->msg != NULL ? &tx->msg->rows : tx->rows;
  rc = ctxd__outrow_insert(tx->conn, rows, tx->sweep_grace_ms, &e.w, tx->error, sizeof tx->error);
  if (rc == 0) observe(tx, &e, mode);
  encoded_free(&e);
  return failed(tx, rc);
}

int ctxd__outbox_schedule(ctxd_tx_t *tx, const ctxd_out_msg_t *msg, ctxd__outbox_mode_t mode, int64_t at_ms,
                          char id[37]) {
  /* PostgreSQL's timestamps end with year 9999; the time to live counts from at_ms */
  int64_t ttl = msg != NULL && OUT_MSG_HAS(msg, time_to_live_ms) ? msg->time_to_live_ms : 0;
  if (at_ms < 0 || at_ms > CTXD__SCHEDULE_MAX_MS || ttl > CTXD__SCHEDULE_MAX_MS - at_ms) return CTXD_EINVAL;
  encoded_t e;
  int rc = encode(tx, msg, mode, at_ms, &e);
  if (rc != 0) return rc;
  char at[24], expires_ms[24];
  snprintf(at, sizeof at, "%lld", (long long)at_ms);
  snprintf(expires_ms, sizeof expires_ms, "%lld", (long long)e.w.expires_ms);
  const char *params[] = {e.w.id,
                          at,
                          e.w.exchange,
                          e.w.message_type,
                          e.w.body,
                          e.w.routing_key != NULL ? e.w.routing_key : "",
                          e.w.correlation_id,
                          e.w.headers,
                          e.w.expires_ms != 0 ? expires_ms : NULL,
                          e.w.no_declare ? "t" : "f",
                          e.w.event ? "t" : "f"};
  /* due_at in the past or now: the next tick of any relay moves it */
  rc = ctxd__db_queue(tx->conn,
                      "INSERT INTO ctxd.scheduled (id, due_at, exchange, message_type, body, routing_key, "
                      "correlation_id, headers, expires_at, no_declare, event) VALUES ($1::uuid, "
                      "to_timestamp($2::bigint / 1000.0), $3, $4, $5, $6, $7, $8, "
                      "to_timestamp($9::bigint / 1000.0), $10::boolean, $11::boolean) "
                      "ON CONFLICT (id) DO NOTHING",
                      11, params, NULL, NULL, tx->error, sizeof tx->error);
  if (rc == 0) {
    memcpy(id, e.id, 37);
    observe(tx, &e, mode);
  }
  /* scheduled_ms 0 is "none": a message due at 0 (now) is noted as due at 1 */
  int64_t due = at_ms > 0 ? at_ms : 1;
  if (rc == 0 && tx->msg != NULL && (tx->msg->scheduled_ms == 0 || due < tx->msg->scheduled_ms))
    tx->msg->scheduled_ms = due;
  encoded_free(&e);
  return failed(tx, rc);
}
