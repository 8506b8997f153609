#include "failstore.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ctxd/errno.h>

#include "db.h"
#include "envelope.h"
#include "fail.h"
#include "outrow.h"
#include "uuid.h"

#define DEFAULT_LIMIT 100
#define MAX_LIMIT 1000

/* A time column as the API writes times: ISO 8601, UTC, milliseconds. */
#define ISO(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

/* The columns of a list item, named as the JSON members; their kinds for row_object. */
#define ITEM_COLUMNS                                                                                         \
  "id, endpoint, message_id::text AS message_id, message_type, exception_type, exception_message, "          \
  "plugin, attempts, failures, operator_retries, status, " ISO(                                              \
      "first_failed_at") " AS first_failed_at, " ISO("last_failed_at") " AS last_failed_at, group_id AS "    \
                                                                       "\"group\""
#define ITEM_KINDS "issssssiiissss"

static const char *const statuses[] = {"unresolved", "retry_requested", "resolved", "archived"};

static int append(ctxd__failsql_t *q, size_t *len, const char *fmt, const char *value) {
  if (q->n == (int)(sizeof q->params / sizeof q->params[0])) return CTXD_ETOOBIG;
  q->params[q->n++] = value;
  int w = snprintf(q->where + *len, sizeof q->where - *len, fmt, *len > 0 ? " AND " : "", q->n);
  if (w < 0 || (size_t)w >= sizeof q->where - *len) return CTXD_ETOOBIG;
  *len += (size_t)w;
  return 0;
}

int ctxd__failfilter_sql(const ctxd__failfilter_t *f, ctxd__failsql_t *q, char *err, size_t errlen) {
  static const ctxd__failfilter_t none = {0};
  if (f == NULL) f = &none;
  memset(q, 0, sizeof *q);
  size_t len = 0;
  char uuid[37];
  if (f->message_id != NULL && ctxd__uuid_canonical(f->message_id, uuid) != 0)
    return ctxd__fail(err, errlen, CTXD_EINVAL, "message id '%s' is not a UUID", f->message_id);
  if (f->limit < 0 || f->offset < 0)
    return ctxd__fail(err, errlen, CTXD_EINVAL, "limit and offset must not be negative");
  const char *status = f->status != NULL ? f->status : "open";
  int known = strcmp(status, "open") == 0 || strcmp(status, "all") == 0;
  for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++) known |= strcmp(status, statuses[i]) == 0;
  if (!known)
    return ctxd__fail(err, errlen, CTXD_EINVAL,
                      "status '%s' is none of open, all, unresolved, retry_requested, resolved, archived",
                      status);
  int rc = 0;
  if (f->endpoint != NULL) rc |= append(q, &len, "%sendpoint = $%d", f->endpoint);
  if (f->message_type != NULL) rc |= append(q, &len, "%smessage_type = $%d", f->message_type);
  if (f->exception_type != NULL) rc |= append(q, &len, "%sexception_type = $%d", f->exception_type);
  if (f->message_id != NULL) rc |= append(q, &len, "%smessage_id = $%d::uuid", f->message_id);
  if (f->group != NULL) rc |= append(q, &len, "%sgroup_id = $%d", f->group);
  if (f->since != NULL) rc |= append(q, &len, "%slast_failed_at >= $%d::timestamptz", f->since);
  if (f->until != NULL) rc |= append(q, &len, "%slast_failed_at < $%d::timestamptz", f->until);
  if (strcmp(status, "open") == 0) {
    int w = snprintf(q->where + len, sizeof q->where - len, "%sstatus IN ('unresolved', 'retry_requested')",
                     len > 0 ? " AND " : "");
    len += w > 0 ? (size_t)w : 0;
  } else if (strcmp(status, "all") != 0) {
    rc |= append(q, &len, "%sstatus = $%d", status);
  }
  if (rc != 0 || len >= sizeof q->where) return ctxd__fail(err, errlen, CTXD_ETOOBIG, "filter too long");
  if (len == 0) snprintf(q->where, sizeof q->where, "true");
  q->limit = f->limit == 0 ? DEFAULT_LIMIT : f->limit > MAX_LIMIT ? MAX_LIMIT : f->limit;
  q->offset = f->offset;
  return 0;
}

/* Runs sql; NULL with *code and err on failure. Bad input the server refused (a time that
 * does not parse: SQLSTATE class 22) is the caller's error, CTXD_EINVAL. */
static PGresult *query(PGconn *c, const char *sql, int n, const char *const *params, int *code, char *err,
                       size_t errlen) {
  PGresult *r = ctxd__db_exec(c, sql, n, params, code, err, errlen);
  if (r == NULL && strncmp(ctxd__db_sqlstate(c), "22", 2) == 0) *code = CTXD_EINVAL;
  return r;
}

/* JSON text of a jsonb column. Large numbers (a u64 header above INT64_MAX, a big double)
 * are printed with all their digits, which jansson refuses as integers: they are read
 * as reals then. New, NULL when it does not parse. */
static json_t *parse_jsonb(const char *text) {
  json_t *j = json_loads(text, JSON_DECODE_ANY, NULL);
  return j != NULL ? j : json_loads(text, JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL, NULL);
}

/* Row `row` of r as an object whose members are r's columns, of the kinds kinds[i]: 's'
 * text, 'i' integer, 'j' JSON text. New, NULL when memory runs out. */
static json_t *row_object(const PGresult *r, int row, const char *kinds) {
  json_t *o = json_object();
  for (int i = 0; o != NULL && kinds[i] != '\0'; i++) {
    const char *v = PQgetvalue(r, row, i);
    json_t *value = kinds[i] == 'i'   ? json_integer(strtoll(v, NULL, 10))
                    : kinds[i] == 'j' ? parse_jsonb(v)
                                      : json_string(v);
    if (value == NULL || json_object_set_new(o, PQfname(r, i), value) != 0) {
      json_decref(o);
      return NULL;
    }
  }
  return o;
}

/* Every row of r, as row_object makes them. */
static json_t *rows_array(const PGresult *r, const char *kinds) {
  json_t *a = json_array();
  for (int row = 0; a != NULL && row < PQntuples(r); row++)
    if (json_array_append_new(a, row_object(r, row, kinds)) != 0) {
      json_decref(a);
      return NULL;
    }
  return a;
}

static json_t *no_memory(int *code, char *err, size_t errlen) {
  *code = ctxd__fail(err, errlen, CTXD_ENOMEM, "out of memory");
  return NULL;
}

/* Starts a transaction whose times are read and written in UTC: a filter's time without
 * a zone ("--since 2026-12-03") means UTC, whatever the server's or the session's zone. */
static int begin_utc(PGconn *c, const char *begin, char *err, size_t errlen) {
  int rc = ctxd__db_run(c, begin, 0, NULL, err, errlen);
  if (rc == 0) rc = ctxd__db_run(c, "SET LOCAL TIME ZONE 'UTC'", 0, NULL, err, errlen);
  return rc;
}

/* Runs the statement `select` made for f (a format with the WHERE conditions, LIMIT and
 * OFFSET in that order) and hands back its rows as rows_array makes them, under `member`,
 * with the numbers the count statement `count` (a format with the conditions; integer
 * columns named as the members, "total" first) finds. One read-only snapshot: the
 * numbers agree with the rows. */
static json_t *paged(PGconn *c, const ctxd__failfilter_t *f, const char *select, const char *count,
                     const char *member, const char *kinds, int *code, char *err, size_t errlen) {
  ctxd__failsql_t q;
  if ((*code = ctxd__failfilter_sql(f, &q, err, errlen)) != 0) return NULL;
  if ((*code = begin_utc(c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", err, errlen)) != 0) {
    ctxd__db_run(c, "ROLLBACK", 0, NULL, NULL, 0);
    return NULL;
  }
  char sql[4096];
  snprintf(sql, sizeof sql, count, q.where);
  json_t *out = NULL, *rows = NULL;
  PGresult *r = query(c, sql, q.n, q.params, code, err, errlen);
  if (r != NULL) {
    out = row_object(r, 0, PQnfields(r) == 2 ? "ii" : "i");
    PQclear(r);
    snprintf(sql, sizeof sql, select, q.where, (long long)q.limit, (long long)q.offset);
    if (out != NULL && (r = query(c, sql, q.n, q.params, code, err, errlen)) != NULL) {
      rows = rows_array(r, kinds);
      PQclear(r);
      if (rows == NULL || json_object_set_new(out, member, rows) != 0 ||
          json_object_set_new(out, "limit", json_integer(q.limit)) != 0 ||
          json_object_set_new(out, "offset", json_integer(q.offset)) != 0)
        rows = NULL;
    } else if (out == NULL) {
      no_memory(code, err, errlen);
    }
  }
  if (rows == NULL) {
    ctxd__db_run(c, "ROLLBACK", 0, NULL, NULL, 0);
    json_decref(out);
    if (*code == 0) no_memory(code, err, errlen);
    return NULL;
  }
  if ((*code = ctxd__db_run(c, "COMMIT", 0, NULL, err, errlen)) != 0) {
    json_decref(out);
    return NULL;
  }
  return out;
}

json_t *ctxd__failstore_groups(PGconn *c, const ctxd__failfilter_t *f, int *code, char *err, size_t errlen) {
  /* example_message: the newest failure's, the one an operator most likely looks for */
  return paged(
      c, f,
      "SELECT group_id AS \"group\", endpoint, message_type, exception_type, count(*) AS count, "
      "count(*) FILTER (WHERE failures > 1) AS repeated, "
      "count(*) FILTER (WHERE status = 'retry_requested') AS retry_requested, " ISO(
          "min(first_failed_at)") " AS first_failed_at, " ISO("max(last_failed_at)") " AS last_failed_at, "
                                                                                     "(array_agg(exception_"
                                                                                     "message ORDER BY "
                                                                                     "last_failed_at "
                                                                                     "DESC))[1] AS "
                                                                                     "example_message "
                                                                                     "FROM "
                                                                                     "ctxd.failed_messages "
                                                                                     "WHERE %s GROUP BY "
                                                                                     "group_id, endpoint, "
                                                                                     "message_type, "
                                                                                     "exception_type "
                                                                                     "ORDER BY "
                                                                                     "max(last_failed_at) "
                                                                                     "DESC, group_id LIMIT "
                                                                                     "%lld OFFSET %lld",
      "SELECT count(*) AS total, count(DISTINCT group_id) AS groups_total FROM ctxd.failed_messages WHERE %s",
      "groups", "ssssiiisss", code, err, errlen);
}

json_t *ctxd__failstore_list(PGconn *c, const ctxd__failfilter_t *f, int *code, char *err, size_t errlen) {
  return paged(c, f,
               "SELECT " ITEM_COLUMNS " FROM ctxd.failed_messages WHERE %s "
               "ORDER BY last_failed_at DESC, id DESC LIMIT %lld OFFSET %lld",
               "SELECT count(*) AS total FROM ctxd.failed_messages WHERE %s", "messages", ITEM_KINDS, code,
               err, errlen);
}

/* len bytes of data in base64 (RFC 4648, padded). New, NULL when memory runs out. */
static char *base64(const unsigned char *data, size_t len) {
  static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  char *out = malloc((len + 2) / 3 * 4 + 1), *o = out;
  if (out == NULL) return NULL;
  for (size_t i = 0; i < len; i += 3) {
    uint32_t v = (uint32_t)data[i] << 16 | (i + 1 < len ? (uint32_t)data[i + 1] << 8 : 0) |
                 (i + 2 < len ? data[i + 2] : 0);
    *o++ = abc[v >> 18 & 63];
    *o++ = abc[v >> 12 & 63];
    *o++ = i + 1 < len ? abc[v >> 6 & 63] : '=';
    *o++ = i + 2 < len ? abc[v & 63] : '=';
  }
  *o = '\0';
  return out;
}

/* body as a JSON string when it is text (UTF-8 without NUL), else NULL. New reference. */
static json_t *body_text(const unsigned char *body, size_t len) {
  return memchr(body, 0, len) == NULL ? json_stringn((const char *)body, len) : NULL;
}

/* The body member of a shown row: "body" when it is text, else "body_base64". 0 or
 * CTXD_ENOMEM. */
static int set_body(json_t *o, const unsigned char *body, size_t len) {
  json_t *text = body_text(body, len);
  if (text != NULL) return json_object_set_new(o, "body", text) == 0 ? 0 : CTXD_ENOMEM;
  char *b64 = base64(body, len);
  int rc = b64 != NULL && json_object_set_new(o, "body_base64", json_string(b64)) == 0 ? 0 : CTXD_ENOMEM;
  free(b64);
  return rc;
}

json_t *ctxd__failstore_show(PGconn *c, int64_t id, int *code, char *err, size_t errlen) {
  char idtext[24];
  snprintf(idtext, sizeof idtext, "%lld", (long long)id);
  const char *params[] = {idtext};
  PGresult *r = query(c,
                      "SELECT " ITEM_COLUMNS ", stack_trace, headers::text AS headers, "
                      "properties::text AS properties, body FROM ctxd.failed_messages WHERE id = $1",
                      1, params, code, err, errlen);
  if (r == NULL) return NULL;
  if (PQntuples(r) == 0) {
    PQclear(r);
    *code = ctxd__fail(err, errlen, CTXD_ENOENT, "no failed message %lld", (long long)id);
    return NULL;
  }
  json_t *o = row_object(r, 0, ITEM_KINDS "sjj");
  size_t blen = 0;
  unsigned char *body = PQunescapeBytea((const unsigned char *)PQgetvalue(r, 0, PQnfields(r) - 1), &blen);
  PQclear(r);
  int rc = o != NULL && body != NULL ? set_body(o, body, blen) : CTXD_ENOMEM;
  PQfreemem(body);
  if (rc != 0) {
    json_decref(o);
    return no_memory(code, err, errlen);
  }
  r = query(c,
            "SELECT action, actor, " ISO("at") " AS at, detail FROM ctxd.failed_actions "
                                               "WHERE failed_id = $1 ORDER BY at, id",
            1, params, code, err, errlen);
  if (r == NULL) {
    json_decref(o);
    return NULL;
  }
  json_t *actions = rows_array(r, "ssss");
  PQclear(r);
  if (actions == NULL || json_object_set_new(o, "actions", actions) != 0) {
    json_decref(o);
    return no_memory(code, err, errlen);
  }
  return o;
}

json_t *ctxd__failstore_summary(PGconn *c, int *code, char *err, size_t errlen) {
  PGresult *r = query(c,
                      "SELECT count(*) FILTER (WHERE status = 'unresolved') AS unresolved, "
                      "count(*) FILTER (WHERE status = 'retry_requested') AS retry_requested, "
                      "count(*) FILTER (WHERE status = 'resolved') AS resolved, "
                      "count(*) FILTER (WHERE status = 'archived') AS archived, "
                      "count(DISTINCT group_id) FILTER (WHERE status IN ('unresolved', 'retry_requested')) "
                      "AS groups FROM ctxd.failed_messages",
                      0, NULL, code, err, errlen);
  if (r == NULL) return NULL;
  json_t *o = row_object(r, 0, "iiiii");
  PQclear(r);
  return o != NULL ? o : no_memory(code, err, errlen);
}

/* Whether header `key` is a failure's or a retry's mark, which a retry does not carry. */
static int failure_header(const char *key) {
  static const char *const prefixes[] = {"MT-Fault-", "MT-Host-", "ctxd-Fault-", "ctxd-Retry-"};
  for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++)
    if (strncasecmp(key, prefixes[i], strlen(prefixes[i])) == 0) return 1;
  return strcasecmp(key, "MT-Reason") == 0 || strcasecmp(key, "MT-Redelivery-Count") == 0;
}

json_t *ctxd__failstore_retry_headers(const json_t *stored, int64_t retry_of, int64_t count) {
  json_t *out = json_object();
  const char *key;
  json_t *value;
  char of[24];
  if (out == NULL) return NULL;
  json_object_foreach((json_t *)stored, key, value) {
    if (!failure_header(key) && json_object_set(out, key, value) != 0) goto oom;
  }
  snprintf(of, sizeof of, "%lld", (long long)retry_of);
  if (json_object_set_new(out, CTXD__RETRY_OF_HEADER, json_string(of)) != 0 ||
      json_object_set_new(out, CTXD__RETRY_COUNT_HEADER, json_integer(count)) != 0)
    goto oom;
  return out;
oom:
  json_decref(out);
  return NULL;
}

/* ---- actions ----------------------------------------------------------------------------- */

/* A row a retry sends, as send_retry needs it. */
#define RETRY_COLUMNS                                                                                        \
  "id, endpoint, message_id::text, message_type, operator_retries, headers::text, "                          \
  "properties->>'correlation_id', properties->>'content_type', body"

enum { R_ID, R_ENDPOINT, R_MESSAGE_ID, R_TYPE, R_RETRIES, R_HEADERS, R_CORRELATION, R_CONTENT_TYPE, R_BODY };

static const char *const action_names[] = {"retry", "archive", "unarchive"};

/* Why action a does not apply to a row in status, or NULL when it does. A row whose retry
 * is requested may be retried again: that retry may never have reached a handler (refused,
 * unroutable, its type no longer handled), and a copy that did is dropped as a duplicate
 * by the endpoint's inbox, which resolves the row. */
static const char *refusal(ctxd__failaction_t a, const char *status) {
  if (a == CTXD__FAIL_UNARCHIVE) return strcmp(status, "archived") == 0 ? NULL : "not archived";
  if (strcmp(status, "resolved") == 0) return "already resolved";
  if (a == CTXD__FAIL_ARCHIVE && strcmp(status, "archived") == 0) return "already archived";
  return NULL;
}

/* Whether a body with this content type (NULL: none recorded) goes back as the envelope
 * the outbox sends: a raw JSON message would arrive as an envelope without its metadata,
 * fail to decode, and come back to _error at every retry. */
static int envelope_body(const char *content_type, const json_t *body) {
  if (content_type != NULL) return strcasecmp(content_type, CTXD__ENVELOPE_CONTENT_TYPE) == 0;
  json_t *j = json_loads(json_string_value(body), 0, NULL);
  int shaped =
      json_is_object(j) && json_object_get(j, "messageType") != NULL && json_object_get(j, "message");
  json_decref(j);
  return shaped;
}

/* Sends row `row` of r (RETRY_COLUMNS) back to its endpoint through the outbox: the body
 * as it was, the headers of a retry. 0, 1 when it cannot go back so (*why says why), or
 * the SQL error's code. */
static int send_retry(PGconn *c, const PGresult *r, int row, const char **why, char *err, size_t errlen) {
  size_t blen = 0;
  unsigned char *body = PQunescapeBytea((const unsigned char *)PQgetvalue(r, row, R_BODY), &blen);
  if (body == NULL) return CTXD_ENOMEM;
  /* the outbox holds text: a body that is not UTF-8 goes back byte for byte with replay */
  json_t *text = body_text(body, blen);
  PQfreemem(body);
  json_t *stored = text != NULL ? parse_jsonb(PQgetvalue(r, row, R_HEADERS)) : NULL;
  if (text == NULL)
    *why = "the body is not UTF-8 text: move it with `ctxd errors replay`";
  else if (!envelope_body(PQgetisnull(r, row, R_CONTENT_TYPE) ? NULL : PQgetvalue(r, row, R_CONTENT_TYPE),
                          text))
    *why = "raw JSON: use ctxd errors replay";
  else if (stored == NULL) /* never sent without the message's own headers */
    *why = "its stored headers cannot be read: move it with `ctxd errors replay`";
  if (*why != NULL) {
    json_decref(stored);
    json_decref(text);
    return 1;
  }
  json_t *headers = ctxd__failstore_retry_headers(stored, strtoll(PQgetvalue(r, row, R_ID), NULL, 10),
                                                  strtoll(PQgetvalue(r, row, R_RETRIES), NULL, 10) + 1);
  char *htext = headers != NULL ? json_dumps(headers, JSON_COMPACT) : NULL;
  int rc = CTXD_ENOMEM;
  if (htext != NULL) {
    const char *endpoint = PQgetvalue(r, row, R_ENDPOINT);
    ctxd__outrow_spec_t w = {
        .id = PQgetvalue(r, row, R_MESSAGE_ID),
        .exchange = endpoint, /* the endpoint's own exchange, bound to its queue alone */
        .message_type = PQgetvalue(r, row, R_TYPE),
        .body = json_string_value(text),
        .correlation_id = PQgetisnull(r, row, R_CORRELATION) ? NULL : PQgetvalue(r, row, R_CORRELATION),
        .headers = htext,
    };
    ctxd__outrows_t rows = {0}; /* the relay's sweep sends it: lease 0 */
    rc = ctxd__outrow_insert(c, &rows, 0, &w, err, errlen);
    ctxd__outrows_free(&rows);
    const char *params[] = {endpoint, w.id};
    if (rc == 0)
      rc = ctxd__db_run(c, "DELETE FROM ctxd.attempts WHERE endpoint = $1 AND message_id = $2::uuid", 2,
                        params, err, errlen);
  }
  free(htext);
  json_decref(headers);
  json_decref(stored);
  json_decref(text);
  return rc;
}

#define SET_STATUS                                                                                           \
  "WITH u AS (UPDATE ctxd.failed_messages SET status = $2, status_at = now(), status_by = $3, "              \
  "operator_retries = operator_retries + $4::int WHERE id = $1::bigint RETURNING id) "                       \
  "INSERT INTO ctxd.failed_actions (failed_id, action, actor) SELECT id, $5, $3 FROM u"

/* ids[0..n) as a PostgreSQL array literal. New, NULL when memory runs out. */
static char *id_array(const int64_t *ids, size_t n) {
  char *out = malloc(n * 21 + 3), *o = out;
  if (out == NULL) return NULL;
  *o++ = '{';
  for (size_t i = 0; i < n; i++) o += sprintf(o, "%s%lld", i > 0 ? "," : "", (long long)ids[i]);
  strcpy(o, "}");
  return out;
}

/* Rows a retry reads at a time: a group's bodies are never all in memory at once. */
#define RETRY_CHUNK 100

/* The rows of r (id, status) from..to, with RETRY_COLUMNS, in the same order (by id; they
 * are locked: none went away). NULL with *code on failure. */
static PGresult *retry_rows(PGconn *c, const PGresult *r, int from, int to, int *code, char *err,
                            size_t errlen) {
  int64_t ids[RETRY_CHUNK];
  for (int row = from; row < to; row++) ids[row - from] = strtoll(PQgetvalue(r, row, 0), NULL, 10);
  char *array = id_array(ids, (size_t)(to - from));
  if (array == NULL) {
    *code = ctxd__fail(err, errlen, CTXD_ENOMEM, "out of memory");
    return NULL;
  }
  const char *params[] = {array};
  PGresult *full = query(c,
                         "SELECT " RETRY_COLUMNS " FROM ctxd.failed_messages WHERE id = ANY($1::bigint[]) "
                         "ORDER BY id",
                         1, params, code, err, errlen);
  free(array);
  return full;
}

/* Applies a to the rows of r (id, status; selected FOR UPDATE, by id) in c's open
 * transaction; counts what was done in *done and appends what was skipped to skipped. 0 or
 * the SQL error's code. */
static int act_rows(PGconn *c, ctxd__failaction_t a, const PGresult *r, const char *actor, int64_t *done,
                    json_t *skipped, char *err, size_t errlen) {
  static const char *const to[] = {"retry_requested", "archived", "unresolved"};
  for (int from = 0; from < PQntuples(r); from += RETRY_CHUNK) {
    int end = from + RETRY_CHUNK < PQntuples(r) ? from + RETRY_CHUNK : PQntuples(r), rc = 0;
    PGresult *full = a == CTXD__FAIL_RETRY ? retry_rows(c, r, from, end, &rc, err, errlen) : NULL;
    if (rc != 0) return rc;
    for (int row = from; rc == 0 && row < end; row++) {
      const char *id = PQgetvalue(r, row, 0), *why = refusal(a, PQgetvalue(r, row, 1));
      if (why == NULL && a == CTXD__FAIL_RETRY) rc = send_retry(c, full, row - from, &why, err, errlen);
      if (rc < 0) break;
      rc = 0;
      if (why != NULL) {
        if (json_array_append_new(
                skipped, json_pack("{s:I,s:s}", "id", (json_int_t)strtoll(id, NULL, 10), "reason", why)) != 0)
          rc = CTXD_ENOMEM;
        continue;
      }
      const char *params[] = {id, to[a], actor, a == CTXD__FAIL_RETRY ? "1" : "0", action_names[a]};
      if ((rc = ctxd__db_run(c, SET_STATUS, 5, params, err, errlen)) == 0) (*done)++;
    }
    PQclear(full);
    if (rc != 0) return rc;
  }
  return 0;
}

/* Adds to skipped the ids of ids[0..n) that r (the rows found) lacks. */
static int skip_missing(const int64_t *ids, size_t n, const PGresult *r, json_t *skipped) {
  for (size_t i = 0; i < n; i++) {
    int found = 0;
    for (int row = 0; row < PQntuples(r) && !found; row++)
      found = strtoll(PQgetvalue(r, row, 0), NULL, 10) == ids[i];
    if (!found && json_array_append_new(skipped, json_pack("{s:I,s:s}", "id", (json_int_t)ids[i], "reason",
                                                           "no such failed message")) != 0)
      return CTXD_ENOMEM;
  }
  return 0;
}

/* Selects the rows of an action (id, status), locked, by id: ids, or every row f selects
 * (its paging is not applied: a group is acted on whole). */
static PGresult *select_rows(PGconn *c, const int64_t *ids, size_t n, const ctxd__failfilter_t *f, int *code,
                             char *err, size_t errlen) {
  char sql[2048];
  if (n > 0) {
    char *array = id_array(ids, n);
    if (array == NULL) {
      *code = ctxd__fail(err, errlen, CTXD_ENOMEM, "out of memory");
      return NULL;
    }
    const char *params[] = {array};
    PGresult *r = query(c,
                        "SELECT id, status FROM ctxd.failed_messages WHERE id = ANY($1::bigint[]) "
                        "ORDER BY id FOR UPDATE",
                        1, params, code, err, errlen);
    free(array);
    return r;
  }
  ctxd__failsql_t q;
  if ((*code = ctxd__failfilter_sql(f, &q, err, errlen)) != 0) return NULL;
  snprintf(sql, sizeof sql, "SELECT id, status FROM ctxd.failed_messages WHERE %s ORDER BY id FOR UPDATE",
           q.where);
  return query(c, sql, q.n, q.params, code, err, errlen);
}

const char *ctxd__failstore_action_status(ctxd__failaction_t a) {
  return a == CTXD__FAIL_UNARCHIVE ? "archived" : NULL;
}

json_t *ctxd__failstore_act(PGconn *c, ctxd__failaction_t a, const int64_t *ids, size_t n,
                            const ctxd__failfilter_t *f, const char *actor, int *code, char *err,
                            size_t errlen) {
  if ((unsigned)a > CTXD__FAIL_UNARCHIVE || actor == NULL || *actor == '\0') {
    *code = ctxd__fail(err, errlen, CTXD_EINVAL, "an action needs a known kind and an actor");
    return NULL;
  }
  ctxd__failfilter_t own;
  if (n == 0 && (f == NULL || f->status == NULL) && ctxd__failstore_action_status(a) != NULL) {
    own = f != NULL ? *f : (ctxd__failfilter_t){0};
    own.status = ctxd__failstore_action_status(a);
    f = &own;
  }
  if ((*code = begin_utc(c, "BEGIN", err, errlen)) != 0) {
    ctxd__db_run(c, "ROLLBACK", 0, NULL, NULL, 0);
    return NULL;
  }
  json_t *skipped = json_array(), *out = NULL;
  int64_t done = 0;
  PGresult *r = NULL;
  if (skipped == NULL)
    no_memory(code, err, errlen);
  else
    r = select_rows(c, ids, n, f, code, err, errlen);
  if (r != NULL) {
    int64_t requested = n > 0 ? (int64_t)n : PQntuples(r);
    *code = skip_missing(ids, n, r, skipped);
    if (*code == 0) *code = act_rows(c, a, r, actor, &done, skipped, err, errlen);
    if (*code == 0) *code = ctxd__db_run(c, "COMMIT", 0, NULL, err, errlen);
    if (*code == 0)
      out = json_pack("{s:s,s:I,s:I,s:O}", "action", action_names[a], "requested", (json_int_t)requested,
                      "done", (json_int_t)done, "skipped", skipped);
    if (*code == 0 && out == NULL) *code = CTXD_ENOMEM;
    PQclear(r);
  }
  json_decref(skipped);
  if (out == NULL) {
    ctxd__db_run(c, "ROLLBACK", 0, NULL, NULL, 0);
    if (*code == CTXD_ENOMEM) ctxd__fail(err, errlen, CTXD_ENOMEM, "out of memory");
  }
  return out;
}
