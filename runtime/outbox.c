#include "outbox.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "dispatch.h"
#include "envelope.h"
#include "relay.h"

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

int ctxd__outbox_address_exchange(const char *address, char *buf, size_t len) {
  const char *start = address, *end;
  const char *scheme = strstr(address, "://");
  if (scheme != NULL) {
    end = address + strcspn(address, "?#");
    start = end;
    while (start > scheme + 3 && start[-1] != '/') start--;
    if (start == scheme + 3) return CTXD_EINVAL; /* only a host, no name */
  } else {
    end = address + strlen(address);
  }
  if (end == start || (size_t)(end - start) >= len) return CTXD_EINVAL;
  memcpy(buf, start, (size_t)(end - start));
  buf[end - start] = '\0';
  return 0;
}

int ctxd__outbox_write(ctxd_tx_t *tx, const ctxd_out_msg_t *msg, ctxd__out_mode_t mode) {
  if (tx->failed) return CTXD_ESTATE;
  if (msg == NULL || msg->size < sizeof(ctxd_out_msg_t) || !valid_type(msg->message_type) ||
      msg->body == NULL ||
      (mode == CTXD__OUT_SEND && (msg->destination == NULL || *msg->destination == '\0')))
    return CTXD_EINVAL;
  const ctxd__envelope_t *in = tx->msg != NULL ? &tx->msg->env : NULL;
  char exchange[256];
  if (mode == CTXD__OUT_RESPOND) {
    if (in == NULL || in->response_address == NULL) return CTXD_ENOENT;
    if (ctxd__outbox_address_exchange(in->response_address, exchange, sizeof exchange) != 0)
      return CTXD_EINVAL;
  } else {
    snprintf(exchange, sizeof exchange, "%s", mode == CTXD__OUT_SEND ? msg->destination : msg->message_type);
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
  json_t *headers = headers_object(msg->headers);
  ctxd__envelope_out_t out = {
      .message_id = id,
      .message_type = msg->message_type,
      .correlation_id = msg->correlation_id != NULL ? msg->correlation_id
                        : in != NULL                ? in->correlation_id
                                                    : NULL,
      .conversation_id = in != NULL ? (in->conversation_id != NULL ? in->conversation_id : in->message_id) : NULL,
      .initiator_id = in != NULL ? in->message_id : NULL,
      .request_id = mode == CTXD__OUT_RESPOND ? in->request_id : NULL,
      .destination_address = mode == CTXD__OUT_RESPOND ? in->response_address : exchange,
      .message = body,
      .headers = headers,
  };
  char *text = ctxd__envelope_encode(&out);
  json_decref(body);
  json_decref(headers);
  /* the inputs were checked above but for UTF-8 in the caller's strings */
  if (text == NULL) return CTXD_EINVAL;
  char lease[32];
  snprintf(lease, sizeof lease, "%lld milliseconds", (long long)tx->sweep_grace_ms);
  const char *params[] = {id, exchange, msg->message_type, text, lease};
  int code;
  PGresult *r = ctxd__db_exec(tx->conn,
                              "INSERT INTO ctxd.outbox (message_id, exchange, message_type, body, "
                              "lease_until) VALUES ($1, $2, $3, $4, now() + $5::interval) "
                              "RETURNING id",
                              5, params, &code, tx->error, sizeof tx->error);
  if (r == NULL) {
    free(text);
    tx->failed = 1;
    tx->fail_code = code;
    return code;
  }
  /* published by this host right after the commit; the sweep is only the safety net */
  ctxd__outrow_t *row = ctxd__outrow_new(strtoll(PQgetvalue(r, 0, 0), NULL, 10), id, exchange, text);
  PQclear(r);
  free(text);
  if (row == NULL) return 0;
  row->next = tx->msg->rows;
  tx->msg->rows = row;
  return 0;
}
