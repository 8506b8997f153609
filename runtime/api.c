#include "api.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "dispatch.h"
#include "endpoint.h"
#include "log.h"
#include "outbox.h"
#include "plugin.h"
#include "uuid.h"

static void api_log(ctxd_plugin_t *p, const ctxd_msg_t *msg, ctxd_log_level_t level, const char *fmt, ...) {
  ctxd__log_fields_t f = {0};
  if (msg != NULL) f = ctxd__msg_log_fields(msg);
  if (level > CTXD_LOG_DEBUG) level = CTXD_LOG_DEBUG;
  va_list ap;
  va_start(ap, fmt);
  ctxd__logv((ctxd__log_level_t)level, p != NULL ? p->name : "plugin", msg != NULL ? &f : NULL, fmt, ap);
  va_end(ap);
}

static const void *api_settings(ctxd_plugin_t *p) { return p->settings; }

static int api_consumer_register(ctxd_plugin_t *p, const ctxd_consumer_t *c) {
  if (!p->in_init) return CTXD_ESTATE;
  int rc = ctxd__consumer_check(c);
  if (rc != 0) return rc;
  /* a replacement's registrations wait until the swap: the old version still runs */
  return p->staging ? ctxd__plugin_stage(p, c) : ctxd__endpoints_register(p->endpoints, p, c);
}

static const char *api_msg_field(const ctxd_msg_t *m, ctxd_msg_field_t field) {
  const ctxd__envelope_t *e = &m->env;
  switch (field) {
  case CTXD_MSG_ID: return e->message_id;
  case CTXD_MSG_CORRELATION_ID: return e->correlation_id;
  case CTXD_MSG_CONVERSATION_ID: return e->conversation_id;
  case CTXD_MSG_INITIATOR_ID: return e->initiator_id;
  case CTXD_MSG_REQUEST_ID: return e->request_id;
  case CTXD_MSG_MESSAGE_TYPE: return m->handler->upcast_to != NULL ? m->handler->upcast_to : m->handler->type;
  case CTXD_MSG_SOURCE_ADDRESS: return e->source_address;
  case CTXD_MSG_DESTINATION_ADDRESS: return e->destination_address;
  case CTXD_MSG_RESPONSE_ADDRESS: return e->response_address;
  case CTXD_MSG_FAULT_ADDRESS: return e->fault_address;
  case CTXD_MSG_SENT_TIME: return e->sent_time;
  case CTXD_MSG_ENDPOINT: return m->delivery->ep->name;
  }
  return NULL;
}

static const char *api_msg_body(const ctxd_msg_t *cm, size_t *len) {
  /* The publisher's own text when it says what was validated: a number keeps its digits
   * (jansson would print 0.1 as 0.10000000000000001), and the decoder's copy costs less
   * than serialising the object again. Else serialised on first use (an upcast message). */
  ctxd_msg_t *m = (ctxd_msg_t *)cm;
  if (m->message == m->env.message && m->env.message_text != NULL) {
    if (len != NULL) *len = m->env.message_len;
    return m->env.message_text;
  }
  if (m->body == NULL) {
    m->body = json_dumps(m->message, JSON_COMPACT | JSON_ENCODE_ANY);
    m->body_len = m->body != NULL ? strlen(m->body) : 0;
  }
  if (len != NULL) *len = m->body_len;
  return m->body;
}

static const char *api_msg_header(const ctxd_msg_t *m, const char *name) {
  const json_t *v = ctxd__json_get_ci(m->env.headers, name);
  return json_is_string(v) ? json_string_value(v) : NULL;
}

static int api_sql_exec(ctxd_tx_t *tx, const char *sql, int nparams, const char *const *params,
                        ctxd_rows_t **rows) {
  if (rows != NULL) *rows = NULL;
  if (tx->failed) return CTXD_ESTATE;
  if (sql == NULL || nparams < 0 || (nparams > 0 && params == NULL)) return CTXD_EINVAL;
  int code;
  PGresult *r = NULL;
  /* rows not wanted: queued, when the batch runs pipelined */
  if (rows == NULL)
    code = ctxd__db_queue(tx->conn, sql, nparams, params, NULL, NULL, tx->error, sizeof tx->error);
  else
    r = ctxd__db_exec(tx->conn, sql, nparams, params, &code, tx->error, sizeof tx->error);
  if (code != 0) {
    tx->failed = 1;
    tx->fail_code = code;
    return code;
  }
  tx->error[0] = '\0';
  if (rows != NULL) *rows = (ctxd_rows_t *)r;
  return 0;
}

static int api_rows_count(const ctxd_rows_t *rows) { return PQntuples((const PGresult *)rows); }

static int64_t api_rows_affected(const ctxd_rows_t *rows) {
  const char *n = PQcmdTuples((PGresult *)rows);
  return n[0] ? strtoll(n, NULL, 10) : 0;
}

static const char *api_rows_value(const ctxd_rows_t *rows, int row, int col) {
  const PGresult *r = (const PGresult *)rows;
  if (row < 0 || col < 0 || row >= PQntuples(r) || col >= PQnfields(r) || PQgetisnull(r, row, col))
    return NULL;
  return PQgetvalue(r, row, col);
}

static void api_rows_free(ctxd_rows_t *rows) { PQclear((PGresult *)rows); }

static const char *api_tx_error(const ctxd_tx_t *tx) { return tx->error; }

static const ctxd_msg_t *api_tx_msg(const ctxd_tx_t *tx) { return tx->msg; }

static int api_tx_focus(ctxd_tx_t *tx, const ctxd_msg_t *msg) {
  /* from the focus on: a handler that walks its batch in order finds each next at once */
  for (size_t k = 0; k < tx->ncall; k++) {
    size_t i = (tx->focus + k) % tx->ncall;
    if (tx->call[i] == msg) {
      tx->focus = i;
      tx->msg = tx->call[i];
      return 0;
    }
  }
  return CTXD_EINVAL;
}

static void api_tx_fault(ctxd_tx_t *tx, const char *exception_type, const char *message) {
  snprintf(tx->fault_type, sizeof tx->fault_type, "%s", exception_type != NULL ? exception_type : "");
  snprintf(tx->fault_message, sizeof tx->fault_message, "%s", message != NULL ? message : "");
}

static int api_publish(ctxd_tx_t *tx, const ctxd_out_msg_t *msg) {
  return ctxd__outbox_write(tx, msg, CTXD__OUTBOX_PUBLISH);
}

static int api_send(ctxd_tx_t *tx, const ctxd_out_msg_t *msg) {
  return ctxd__outbox_write(tx, msg, CTXD__OUTBOX_SEND);
}

static int api_respond(ctxd_tx_t *tx, const ctxd_out_msg_t *msg) {
  return ctxd__outbox_write(tx, msg, CTXD__OUTBOX_RESPOND);
}

/* ---- ABI 1.2 ---- */

static int api_schedule(ctxd_tx_t *tx, const ctxd_schedule_t *s, char id[37]) {
  if (s == NULL || id == NULL || s->size < offsetof(ctxd_schedule_t, at_ms) + sizeof s->at_ms)
    return CTXD_EINVAL;
  return ctxd__outbox_schedule(tx, s->msg, s->publish ? CTXD__OUTBOX_PUBLISH : CTXD__OUTBOX_SEND, s->at_ms,
                               id);
}

static int api_unschedule(ctxd_tx_t *tx, const char *id) {
  char canonical[37];
  if (id == NULL || ctxd__uuid_canonical(id, canonical) != 0) return CTXD_EINVAL;
  const char *params[] = {canonical};
  ctxd_rows_t *rows;
  /* a row the relay is moving is locked: this waits, then finds it gone */
  int rc = api_sql_exec(tx, "DELETE FROM ctxd.scheduled WHERE id = $1::uuid", 1, params, &rows);
  if (rc != 0) return rc;
  int64_t n = api_rows_affected(rows);
  api_rows_free(rows);
  return n > 0 ? 0 : CTXD_ENOENT;
}

static int api_call(ctxd_tx_t *tx, const char *kind, const char *key, const char *payload) {
  /* the key goes into CallCompleted (IdempotencyKey: at most 255 bytes) */
  if (tx->msg == NULL || key == NULL || *key == '\0' || strlen(key) > CTXD__CALL_KEY_MAX) return CTXD_EINVAL;
  const ctxd_plugin_t *p = tx->msg->handler->plugin;
  if (ctxd__executor_find(&p->executors, kind) == NULL) return CTXD_EINVAL;
  json_t *v = payload != NULL ? json_loads(payload, JSON_DECODE_ANY, NULL) : NULL;
  if (payload != NULL && v == NULL) return CTXD_EINVAL;
  json_decref(v);
  const char *params[] = {p->name, kind, key, payload != NULL ? payload : "null"};
  /* recorded once per key: a handler run again, or a second message asking the same, adds nothing */
  return api_sql_exec(
      tx,
      "INSERT INTO ctxd.calls (plugin, kind, idempotency_key, payload) VALUES ($1, $2, $3, $4) "
      "ON CONFLICT (plugin, kind, idempotency_key) DO NOTHING",
      4, params, NULL);
}

static int api_executor_register(ctxd_plugin_t *p, const ctxd_executor_t *e) {
  if (!p->in_init) return CTXD_ESTATE;
  return ctxd__executor_add(&p->executors, p->name, e);
}

const ctxd_api_t ctxd__api = {
    .size = sizeof(ctxd_api_t),
    .abi_major = CTXD_ABI_MAJOR,
    .abi_minor = CTXD_ABI_MINOR,
    .log = api_log,
    .settings = api_settings,
    .consumer_register = api_consumer_register,
    .msg_field = api_msg_field,
    .msg_body = api_msg_body,
    .msg_header = api_msg_header,
    .sql_exec = api_sql_exec,
    .rows_count = api_rows_count,
    .rows_affected = api_rows_affected,
    .rows_value = api_rows_value,
    .rows_free = api_rows_free,
    .tx_error = api_tx_error,
    .publish = api_publish,
    .send = api_send,
    .tx_msg = api_tx_msg,
    .tx_fault = api_tx_fault,
    .respond = api_respond,
    .schedule = api_schedule,
    .unschedule = api_unschedule,
    .call = api_call,
    .executor_register = api_executor_register,
    .call_field = ctxd__call_field,
    .call_outcome = ctxd__call_outcome,
    .tx_focus = api_tx_focus,
};
