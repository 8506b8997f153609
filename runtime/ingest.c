#include "ingest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ctxd/errno.h>

#include "amqptable.h"
#include "db.h"
#include "envelope.h"
#include "hostinfo.h"
#include "uuid.h"

int ctxd__ingest_endpoint_of(const char *queue, char *out, size_t len) {
  static const char *const suffixes[] = {"_error_store", "_error"};
  size_t n = strlen(queue);
  for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
    size_t k = strlen(suffixes[i]);
    if (n <= k || strcmp(queue + n - k, suffixes[i]) != 0) continue;
    if (n - k >= len) return CTXD_ETOOBIG;
    memcpy(out, queue, n - k);
    out[n - k] = '\0';
    return 0;
  }
  return CTXD_EINVAL;
}

/* Header key of the copy as text, "" when absent or not text. Borrowed from headers. */
static const char *header_text(const json_t *headers, const char *key) {
  const char *v = json_string_value(ctxd__json_get_ci(headers, key));
  return v != NULL ? v : "";
}

/* Header key as an integer (an AMQP integer, or text of digits), 0 when absent. */
static long long header_int(const json_t *headers, const char *key) {
  const json_t *v = ctxd__json_get_ci(headers, key);
  return json_is_integer(v)  ? json_integer_value(v)
         : json_is_string(v) ? strtoll(json_string_value(v), NULL, 10)
                             : 0;
}

void ctxd__ingest_fault_id(const json_t *headers, const char *endpoint, const char *message_id,
                           size_t body_len, char out[37]) {
  if (ctxd__uuid_canonical(header_text(headers, CTXD__FAULT_ID_HEADER), out) == 0) return;
  char name[1024];
  snprintf(name, sizeof name, "error:%s:%s:%s:%zu", endpoint, message_id,
           header_text(headers, "MT-Fault-Timestamp"), body_len);
  ctxd__uuid_derive(name, out);
}

void ctxd__ingest_actor(char *buf, size_t len) {
  const ctxd__host_info_t *h = ctxd__host_info();
  snprintf(buf, len, "host %s/%s", h->machine_name, h->process_id);
}

/* Seconds since the epoch of an ISO 8601 UTC time ("2026-12-03T18:07:29.1234567Z", as
 * MT-Fault-Timestamp has it) into out, or 0 when text is not one: the copy is then dated
 * when it is stored. Read here, not by the server, whose refusal would fail the batch. */
static int parse_time(const char *text, char out[32]) {
  struct tm tm = {0};
  const char *rest = strptime(text, "%Y-%m-%dT%H:%M:%S", &tm);
  if (rest == NULL) return 0;
  double fraction = 0;
  if (*rest == '.') {
    char *end;
    fraction = strtod(rest, &end);
    rest = end;
  }
  if (strcmp(rest, "Z") != 0) return 0;
  snprintf(out, 32, "%.6f", (double)timegm(&tm) + fraction);
  return 1;
}

/* The message's id: its AMQP message_id, else its envelope's messageId, else none (the
 * copy's fault id stands in). Into out[37]; 0 or CTXD_ENOENT. */
static int message_id_of(const ctxd__delivery_t *d, const json_t *envelope, char out[37]) {
  const amqp_basic_properties_t *p = &d->msg.properties;
  char given[64];
  if ((p->_flags & AMQP_BASIC_MESSAGE_ID_FLAG) && p->message_id.len < sizeof given) {
    snprintf(given, sizeof given, "%.*s", (int)p->message_id.len, (const char *)p->message_id.bytes);
    if (ctxd__uuid_canonical(given, out) == 0) return 0;
  }
  const char *id = json_string_value(json_object_get(envelope, "messageId"));
  return id != NULL && ctxd__uuid_canonical(id, out) == 0 ? 0 : CTXD_ENOENT;
}

/* The AMQP properties an operator and a retry need, as JSON. New, NULL without memory. */
static json_t *properties_of(const amqp_basic_properties_t *p) {
  json_t *o = json_object();
  const struct {
    amqp_flags_t flag;
    const char *name;
    const amqp_bytes_t *value;
  } texts[] = {{AMQP_BASIC_CONTENT_TYPE_FLAG, "content_type", &p->content_type},
               {AMQP_BASIC_CONTENT_ENCODING_FLAG, "content_encoding", &p->content_encoding},
               {AMQP_BASIC_CORRELATION_ID_FLAG, "correlation_id", &p->correlation_id},
               {AMQP_BASIC_REPLY_TO_FLAG, "reply_to", &p->reply_to},
               {AMQP_BASIC_MESSAGE_ID_FLAG, "message_id", &p->message_id},
               {AMQP_BASIC_TYPE_FLAG, "type", &p->type},
               {AMQP_BASIC_APP_ID_FLAG, "app_id", &p->app_id}};
  for (size_t i = 0; o != NULL && i < sizeof texts / sizeof texts[0]; i++) {
    if (!(p->_flags & texts[i].flag)) continue;
    /* a value that is not UTF-8 is left out, as the headers' are */
    json_t *v = json_stringn(texts[i].value->len ? texts[i].value->bytes : "", texts[i].value->len);
    if (v != NULL) json_object_set_new(o, texts[i].name, v);
  }
  if (o != NULL && (p->_flags & AMQP_BASIC_DELIVERY_MODE_FLAG))
    json_object_set_new(o, "delivery_mode", json_integer(p->delivery_mode));
  if (o != NULL && (p->_flags & AMQP_BASIC_TIMESTAMP_FLAG))
    json_object_set_new(o, "timestamp", json_integer((json_int_t)p->timestamp));
  return o;
}

/* j as compact JSON text for a jsonb column, which refuses the NUL character: an escaped
 * NUL in a string becomes U+FFFD. New (free), NULL without memory. */
static char *jsonb_text(const json_t *j) {
  char *s = json_dumps(j, JSON_COMPACT);
  for (char *p = s; p != NULL && *p; p++) {
    if (*p != '\\') continue;
    if (strncmp(p, "\\u0000", 6) == 0) memcpy(p, "\\ufffd", 6);
    p++; /* the escaped character: "\\\\u0000" is a backslash and text */
  }
  return s;
}

/* bytes as a bytea literal in hex ("\x..."). New (free), NULL without memory. */
static char *bytea_hex(const amqp_bytes_t *b) {
  static const char digits[] = "0123456789abcdef";
  char *out = malloc(b->len * 2 + 3);
  if (out == NULL) return NULL;
  out[0] = '\\';
  out[1] = 'x';
  for (size_t i = 0; i < b->len; i++) {
    out[2 + 2 * i] = digits[((const unsigned char *)b->bytes)[i] >> 4];
    out[3 + 2 * i] = digits[((const unsigned char *)b->bytes)[i] & 15];
  }
  out[2 + 2 * b->len] = '\0';
  return out;
}

/* One copy: its fault id into the inbox, and only if it is new, the upsert and the action
 * row (detail: the exception type). Returns a row when the copy was new. On conflict the
 * fault, headers and body are those of the newer failure: n, the stored row or this copy,
 * whichever failed last. */
static const char STORE[] =
    "WITH fresh AS (INSERT INTO ctxd.inbox (endpoint, message_id) VALUES ($1, $2::uuid) "
    "ON CONFLICT DO NOTHING RETURNING 1), "
    "stored AS (INSERT INTO ctxd.failed_messages AS f (endpoint, message_id, message_type, exception_type, "
    "exception_message, stack_trace, plugin, attempts, headers, properties, body, first_failed_at, "
    "last_failed_at, status_by) SELECT $3, $4::uuid, $5, $6, $7, $8, $9, $10::int, $11::jsonb, $12::jsonb, "
    "$13::bytea, coalesce(to_timestamp($15::float8), now()), coalesce(to_timestamp($15::float8), now()), $14 "
    "FROM fresh ON CONFLICT (endpoint, message_id) DO UPDATE SET failures = f.failures + 1, "
    "first_failed_at = least(f.first_failed_at, EXCLUDED.first_failed_at), "
    "last_failed_at = greatest(f.last_failed_at, EXCLUDED.last_failed_at), "
    "message_type = CASE WHEN f.message_type = '' THEN EXCLUDED.message_type ELSE f.message_type END, "
    "(exception_type, exception_message, stack_trace, plugin, attempts, headers, properties, body) = "
    "(SELECT n.exception_type, n.exception_message, n.stack_trace, n.plugin, n.attempts, n.headers, "
    "n.properties, n.body FROM (SELECT EXCLUDED.*, 1 AS o UNION ALL SELECT f.*, 2) AS n "
    "ORDER BY (n.o = 1) = (EXCLUDED.last_failed_at >= f.last_failed_at) DESC LIMIT 1), "
    "status = CASE WHEN f.status = 'archived' THEN 'archived' ELSE 'unresolved' END, "
    "status_at = CASE WHEN f.status IN ('archived', 'unresolved') THEN f.status_at ELSE now() END, "
    "status_by = CASE WHEN f.status IN ('archived', 'unresolved') THEN f.status_by ELSE EXCLUDED.status_by "
    "END "
    "RETURNING id, xmax = 0 AS inserted) "
    "INSERT INTO ctxd.failed_actions (failed_id, action, actor, detail) "
    "SELECT id, CASE WHEN inserted THEN 'failed' ELSE 'failed again' END, $14, $6 FROM stored RETURNING 1";

static void count_fresh(void *arg, const PGresult *r) { *(size_t *)arg += (size_t)PQntuples(r); }

/* Queues the statement that stores copy d on c. 0, CTXD_ENOMEM, or the code of a failure
 * reported now. */
static int queue_copy(PGconn *c, const ctxd__delivery_t *d, const char *actor, size_t *fresh, char *err,
                      size_t errlen) {
  const amqp_basic_properties_t *p = &d->msg.properties;
  json_t *headers = ctxd__amqp_table_to_json((p->_flags & AMQP_BASIC_HEADERS_FLAG) ? &p->headers : NULL);
  json_t *props = properties_of(p);
  json_t *envelope = json_loadb(d->msg.body.bytes, d->msg.body.len, 0, NULL); /* NULL: not an envelope */
  char endpoint[256], source[280], fault_id[37], message_id[37], attempts[24], when[32];
  ctxd__ingest_endpoint_of(d->queue, endpoint, sizeof endpoint);
  snprintf(source, sizeof source, "%s_error", endpoint); /* either source queue: one key */
  int has_id = message_id_of(d, envelope, message_id) == 0;
  ctxd__ingest_fault_id(headers, endpoint, has_id ? message_id : "", d->msg.body.len, fault_id);
  if (!has_id) memcpy(message_id, fault_id, sizeof message_id);
  const char *type = header_text(headers, "MT-Fault-MessageType");
  const char *urn = json_string_value(json_array_get(json_object_get(envelope, "messageType"), 0));
  if (*type == '\0' && urn != NULL)
    type =
        strncmp(urn, CTXD__URN_PREFIX, strlen(CTXD__URN_PREFIX)) == 0 ? urn + strlen(CTXD__URN_PREFIX) : urn;
  long long n = header_int(headers, CTXD__ATTEMPTS_HEADER);
  if (n == 0)
    n = header_int(headers, "MT-Fault-RetryCount") + header_int(headers, "MT-Fault-RedeliveryCount");
  snprintf(attempts, sizeof attempts, "%lld", n);
  char *htext = headers != NULL ? jsonb_text(headers) : NULL,
       *ptext = props != NULL ? jsonb_text(props) : NULL;
  char *body = bytea_hex(&d->msg.body);
  int rc = CTXD_ENOMEM;
  if (htext != NULL && ptext != NULL && body != NULL) {
    const char *params[] = {source,
                            fault_id,
                            endpoint,
                            message_id,
                            type,
                            header_text(headers, "MT-Fault-ExceptionType"),
                            header_text(headers, "MT-Fault-Message"),
                            header_text(headers, "MT-Fault-StackTrace"),
                            header_text(headers, "MT-Fault-ConsumerType"),
                            attempts,
                            htext,
                            ptext,
                            body,
                            actor,
                            parse_time(header_text(headers, "MT-Fault-Timestamp"), when) ? when : NULL};
    rc = ctxd__db_queue(c, STORE, 15, params, count_fresh, fresh, err, errlen);
  }
  free(body);
  free(htext);
  free(ptext);
  json_decref(envelope);
  json_decref(props);
  json_decref(headers);
  return rc;
}

int ctxd__ingest_run(PGconn *c, const ctxd__batch_t *b, size_t *fresh, char *err, size_t errlen) {
  char actor[300];
  ctxd__ingest_actor(actor, sizeof actor);
  *fresh = 0;
  /* pipelined: the batch costs one round trip, however many copies it has */
  ctxd__db_pipeline_begin(c);
  int rc = ctxd__db_queue(c, "BEGIN", 0, NULL, NULL, NULL, err, errlen);
  for (size_t i = 0; rc == 0 && i < b->n; i++) rc = queue_copy(c, b->items[i], actor, fresh, err, errlen);
  if (rc == 0) rc = ctxd__db_queue(c, "COMMIT", 0, NULL, NULL, NULL, err, errlen);
  int end = ctxd__db_pipeline_end(c, err, errlen);
  if (rc == 0) rc = end;
  if (rc != 0) {
    ctxd__db_run(c, "ROLLBACK", 0, NULL, NULL, 0);
    *fresh = 0;
  }
  return rc;
}
