#include "ingest.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ctxd/errno.h>

#include "amqptable.h"
#include "db.h"
#include "envelope.h"
#include "fault.h"
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

/* Header key as a count (an AMQP integer, or text of digits) within [0, INT32_MAX], the
 * range of the attempts column; 0 when absent. */
static long long header_count(const json_t *headers, const char *key) {
  const json_t *v = ctxd__json_get_ci(headers, key);
  long long n = json_is_integer(v)  ? json_integer_value(v)
                : json_is_string(v) ? strtoll(json_string_value(v), NULL, 10)
                                    : 0;
  return n < 0 ? 0 : n > INT32_MAX ? INT32_MAX : n;
}

/* FNV-1a of len bytes of data: tells apart bodies of equal length. */
static uint64_t body_hash(const void *data, size_t len) {
  uint64_t h = 1469598103934665603ULL;
  for (size_t i = 0; i < len; i++) h = (h ^ ((const unsigned char *)data)[i]) * 1099511628211ULL;
  return h;
}

void ctxd__ingest_fault_id(const json_t *headers, const char *endpoint, const char *message_id,
                           const void *body, size_t body_len, char out[37]) {
  char name[1024], own[37];
  const char *when = header_text(headers, "MT-Fault-Timestamp");
  /* with the time of the failure: a copy another tool moved back with its headers, failed
   * again by a MassTransit consumer, keeps the old fault id but is a new failure */
  if (ctxd__uuid_canonical(header_text(headers, CTXD__FAULT_ID_HEADER), own) == 0)
    snprintf(name, sizeof name, "fault:%s:%s", own, when);
  else
    snprintf(name, sizeof name, "error:%s:%s:%s:%zu:%016llx", endpoint, message_id, when, body_len,
             (unsigned long long)body_hash(body, body_len));
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

/* The AMQP message_id of p when it is a UUID, into out[37]: 0 or CTXD_ENOENT. */
static int amqp_message_id(const amqp_basic_properties_t *p, char out[37]) {
  char given[64];
  if (!(p->_flags & AMQP_BASIC_MESSAGE_ID_FLAG) || p->message_id.len >= sizeof given) return CTXD_ENOENT;
  snprintf(given, sizeof given, "%.*s", (int)p->message_id.len, (const char *)p->message_id.bytes);
  return ctxd__uuid_canonical(given, out) == 0 ? 0 : CTXD_ENOENT;
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

/* One copy: its fault id into the inbox, and only if it is new, the upsert and the action
 * row (detail $16). Returns a row when the copy was new. On conflict the fault, headers and
 * body are those of the newer failure: n, the stored row or this copy, whichever failed
 * last; and the row opens again (unresolved) unless archived or the copy failed before the
 * row's last status change: a late copy of an earlier failure (a backlog, another host's
 * batch) does not undo an operator's retry or its resolution, it only counts. */
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
    "status = CASE WHEN f.status = 'archived' OR EXCLUDED.last_failed_at <= f.status_at THEN f.status "
    "ELSE 'unresolved' END, "
    "status_at = CASE WHEN f.status IN ('archived', 'unresolved') OR EXCLUDED.last_failed_at <= f.status_at "
    "THEN f.status_at ELSE now() END, "
    "status_by = CASE WHEN f.status IN ('archived', 'unresolved') OR EXCLUDED.last_failed_at <= f.status_at "
    "THEN f.status_by ELSE EXCLUDED.status_by END "
    "RETURNING id, xmax = 0 AS inserted) "
    "INSERT INTO ctxd.failed_actions (failed_id, action, actor, detail) "
    "SELECT id, CASE WHEN inserted THEN 'failed' ELSE 'failed again' END, $14, $16 FROM stored RETURNING 1";

static void count_fresh(void *arg, const PGresult *r) { *(size_t *)arg += (size_t)PQntuples(r); }

/* What identifies copy d: the message's id and type as the workers read them (decoded
 * within limits; a copy that does not decode has its AMQP message_id, else its fault id
 * stands in, and its MT-Fault-MessageType) and the fault id. */
typedef struct {
  char endpoint[256], fault_id[37], message_id[37];
  const char *type; /* borrowed from the headers or the envelope */
} copy_ids_t;

static void copy_ids(const ctxd__delivery_t *d, const json_t *headers, const ctxd__envelope_t *env,
                     int decoded, copy_ids_t *k) {
  if (ctxd__ingest_endpoint_of(d->queue, k->endpoint, sizeof k->endpoint) != 0)
    snprintf(k->endpoint, sizeof k->endpoint, "%s", d->queue); /* not an _error queue: as it is */
  int has_id = decoded ? snprintf(k->message_id, sizeof k->message_id, "%s", env->message_id) > 0
                       : amqp_message_id(&d->msg.properties, k->message_id) == 0;
  ctxd__ingest_fault_id(headers, k->endpoint, has_id ? k->message_id : "", d->msg.body.bytes, d->msg.body.len,
                        k->fault_id);
  if (!has_id) memcpy(k->message_id, k->fault_id, sizeof k->message_id);
  k->type = header_text(headers, "MT-Fault-MessageType");
  if (*k->type == '\0' && decoded && env->nmessage_types > 0) k->type = env->message_types[0];
}

/* Queues the statement that stores copy d on c: whole, or when reduced is not NULL (the
 * copy alone was refused so), without its headers, properties, fault text and time, with
 * reduced as its action's detail. 0, CTXD_ENOMEM, or the code of a failure reported now. */
static int queue_copy(PGconn *c, const ctxd__delivery_t *d, const ctxd__decode_limits_t *limits,
                      const char *reduced, const char *actor, size_t *fresh, char *err, size_t errlen) {
  const amqp_basic_properties_t *p = &d->msg.properties;
  json_t *headers = ctxd__amqp_table_to_json((p->_flags & AMQP_BASIC_HEADERS_FLAG) ? &p->headers : NULL);
  json_t *props = reduced == NULL ? properties_of(p) : NULL;
  ctxd__envelope_t env = {0};
  char why[128], attempts[24], when[32];
  int decoded =
      ctxd__envelope_decode(d->msg.body.bytes, d->msg.body.len, p, limits, &env, why, sizeof why) == 0;
  copy_ids_t k;
  copy_ids(d, headers, &env, decoded, &k);
  long long n = header_count(headers, CTXD__ATTEMPTS_HEADER);
  if (n == 0)
    n = header_count(headers, "MT-Fault-RetryCount") + header_count(headers, "MT-Fault-RedeliveryCount");
  snprintf(attempts, sizeof attempts, "%lld", reduced != NULL ? 0 : n > INT32_MAX ? INT32_MAX : n);
  char *htext = reduced != NULL   ? strdup("{}")
                : headers != NULL ? jsonb_text(headers)
                                  : NULL,
       *ptext = reduced != NULL ? strdup("{}")
                : props != NULL ? jsonb_text(props)
                                : NULL;
  const char *exception = header_text(headers, "MT-Fault-ExceptionType");
  int rc = CTXD_ENOMEM;
  if (htext != NULL && ptext != NULL) {
    char source[280];
    snprintf(source, sizeof source, "%s_error", k.endpoint); /* either source queue: one key */
    int whole = reduced == NULL;
    const char *params[] = {source,
                            k.fault_id,
                            k.endpoint,
                            k.message_id,
                            k.type,
                            exception,
                            whole ? header_text(headers, "MT-Fault-Message") : "",
                            whole ? header_text(headers, "MT-Fault-StackTrace") : "",
                            whole ? header_text(headers, "MT-Fault-ConsumerType") : "",
                            attempts,
                            htext,
                            ptext,
                            d->msg.body.len ? d->msg.body.bytes : "",
                            actor,
                            whole && parse_time(header_text(headers, "MT-Fault-Timestamp"), when) ? when
                                                                                                  : NULL,
                            reduced != NULL ? reduced : exception};
    int lengths[16] = {0}, formats[16] = {0};
    lengths[12] = (int)d->msg.body.len; /* the body as it is: a binary bytea */
    formats[12] = 1;
    rc = ctxd__db_queue_binary(c, STORE, 16, params, lengths, formats, count_fresh, fresh, err, errlen);
  }
  free(htext);
  free(ptext);
  ctxd__envelope_free(&env);
  json_decref(props);
  json_decref(headers);
  return rc;
}

int ctxd__ingest_run(PGconn *c, ctxd__delivery_t *const *items, size_t n, const ctxd__decode_limits_t *limits,
                     const char *reduced, size_t *fresh, char *err, size_t errlen) {
  char actor[300];
  ctxd__ingest_actor(actor, sizeof actor);
  *fresh = 0;
  /* pipelined: the batch costs one round trip, however many copies it has */
  ctxd__db_pipeline_begin(c);
  int rc = ctxd__db_queue(c, "BEGIN", 0, NULL, NULL, NULL, err, errlen);
  for (size_t i = 0; rc == 0 && i < n; i++)
    rc = queue_copy(c, items[i], limits, reduced, actor, fresh, err, errlen);
  if (rc == 0) rc = ctxd__db_queue(c, "COMMIT", 0, NULL, NULL, NULL, err, errlen);
  int end = ctxd__db_pipeline_end(c, err, errlen);
  if (rc == 0) rc = end;
  if (rc != 0) {
    ctxd__db_run(c, "ROLLBACK", 0, NULL, NULL, 0);
    *fresh = 0;
    return rc;
  }
  ctxd__fault_point("after-commit"); /* committed, not acknowledged: the copies come again */
  return 0;
}
