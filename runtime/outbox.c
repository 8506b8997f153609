#include "outbox.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "address.h"
#include "contract.h"
#include "dispatch.h"
#include "envelope.h"
#include "envelope_out.h"
#include "outrow.h"
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

/* W3C trace context: the outgoing message continues the incoming trace as a child span
 * (same trace id and flags, a new parent id), unless the handler set its own. */
static void continue_trace(json_t *headers, const ctxd__envelope_t *in) {
  if (in == NULL || json_object_get(headers, "traceparent") != NULL) return;
  const char *v = json_string_value(ctxd__json_get_ci(in->headers, "traceparent"));
  /* version "-" 32 hex trace id "-" 16 hex parent id "-" flags */
  if (v == NULL || strlen(v) != 55 || v[2] != '-' || v[35] != '-' || v[52] != '-') return;
  unsigned char id[8];
  if (getrandom(id, sizeof id, 0) != (ssize_t)sizeof id) return;
  char out[56];
  memcpy(out, v, sizeof out);
  for (int i = 0; i < 8; i++) snprintf(out + 36 + 2 * i, 3, "%02x", id[i]);
  out[52] = '-'; /* snprintf wrote its NUL there */
  json_object_set_new(headers, "traceparent", json_string(out));
}

int ctxd__outbox_write(ctxd_tx_t *tx, const ctxd_out_msg_t *msg, ctxd__outbox_mode_t mode) {
  if (tx->failed) return CTXD_ESTATE;
  if (msg == NULL || msg->size < sizeof(ctxd_out_msg_t) || !valid_type(msg->message_type) ||
      msg->body == NULL ||
      (mode == CTXD__OUTBOX_SEND && (msg->destination == NULL || *msg->destination == '\0')))
    return CTXD_EINVAL;
  const ctxd__envelope_t *in = tx->msg != NULL ? &tx->msg->env : NULL;
  char exchange[256];
  if (mode == CTXD__OUTBOX_RESPOND) {
    if (in == NULL || in->response_address == NULL) return CTXD_ENOENT;
    if (ctxd__address_exchange(in->response_address, exchange, sizeof exchange) != 0) return CTXD_EINVAL;
  } else {
    snprintf(exchange, sizeof exchange, "%s",
             mode == CTXD__OUTBOX_SEND ? msg->destination : msg->message_type);
  }

  char id[37];
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
  continue_trace(headers, in);
  ctxd__envelope_out_t out = {
      .message_id = id,
      .message_type = msg->message_type,
      .correlation_id = msg->correlation_id != NULL ? msg->correlation_id
                        : in != NULL                ? in->correlation_id
                                                    : NULL,
      .conversation_id =
          in != NULL ? (in->conversation_id != NULL ? in->conversation_id : in->message_id) : NULL,
      .initiator_id = in != NULL ? in->message_id : NULL,
      .request_id = mode == CTXD__OUTBOX_RESPOND ? in->request_id : NULL,
      .destination_address = mode == CTXD__OUTBOX_RESPOND ? in->response_address : exchange,
      .message = body,
      .headers = headers,
  };
  char *text = ctxd__envelope_encode(&out);
  json_decref(body);
  json_decref(headers);
  /* the inputs were checked above but for UTF-8 in the caller's strings */
  if (text == NULL) return CTXD_EINVAL;
  int rc = ctxd__outrow_insert(tx->conn, &tx->msg->rows, tx->sweep_grace_ms, id, exchange, msg->message_type,
                               text, mode == CTXD__OUTBOX_PUBLISH, tx->error, sizeof tx->error);
  free(text);
  if (rc != 0 && rc != CTXD_ENOMEM) {
    tx->failed = 1;
    tx->fail_code = rc;
  }
  return rc;
}
