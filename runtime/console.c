#include "console.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <libpq-fe.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <ctxd/errno.h>
#include <ctxd/version.h>

#include "clock.h"
#include "console_assets.h"
#include "db.h"
#include "envelope_out.h"
#include "failstore.h"
#include "hostinfo.h"
#include "inspect.h"
#include "plugin.h"
#include "redact.h"

#define JSON_TYPE "application/json; charset=utf-8"
#define JSON_HEADERS "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n"
#define PAGE_HEADERS                                                                                         \
  "Content-Security-Policy: default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src "        \
  "'self'; "                                                                                                 \
  "script-src 'self'; frame-ancestors 'none'\r\n"                                                            \
  "X-Content-Type-Options: nosniff\r\nReferrer-Policy: no-referrer\r\nCache-Control: no-store\r\n"
/* a console statement waits at most this long on the database */
#define STATEMENT_TIMEOUT_MS 10000
#define STATEMENT_TIMEOUT "SET statement_timeout = 10000"
/* an action's answer is due within this: it runs a few statements per row */
#define ACTION_DEADLINE_MS 120000
#define ACTION_LATE "the action is still running: see the action log before acting again"
#define READ_LATE "the database is slow to answer"
/* the most messages one action takes (ids given, or selected by a group or a filter) */
#define MAX_IDS 1000
#define MAX_OPERATOR 64
/* queries waiting for their turn at most: one runs on the thread pool at a time, so a page
 * polling a database that does not answer neither piles them up nor takes the pool's
 * threads from the swap's migrations */
#define MAX_WAITING 8
/* after a failed connection, queries fail at once for this long instead of each waiting
 * for database.connect_timeout_s */
#define RETRY_CONNECT_US 2000000

struct ctxd__console_s {
  uv_loop_t *loop;
  const ctxd__config_t *cfg;
  int64_t started_ms;
  int has_token;
  unsigned char token_hash[SHA256_DIGEST_LENGTH];
  struct job_s *running;      /* the query on the thread pool, or NULL (loop thread) */
  struct job_s *first, *last; /* the queries waiting for their turn, oldest first (loop) */
  size_t waiting;
  int stopping;              /* the host stops: no query starts any more (loop) */
  pthread_mutex_t mu;        /* the job on the pool holds it while it uses conn */
  PGconn *conn;              /* under mu; NULL until needed, and after a failure */
  pthread_mutex_t cancel_mu; /* cancel may be used from the loop while conn is in use */
  PGcancel *cancel;          /* under cancel_mu: conn's, while it exists */
  int64_t connect_after_us;  /* under mu: no new connection before (ctxd__clock_us) */
  char connect_error[512];   /* under mu: why the last one failed */
  /* the last /api/endpoints answer and what it was rendered from (endpoints_key; loop):
   * open tabs poll it, one rendering a sample serves them all */
  char *endpoints_text;
  int64_t *endpoints_key;
  size_t endpoints_nkey;
};

typedef enum { JOB_SUMMARY, JOB_GROUPS, JOB_LIST, JOB_SHOW, JOB_ACT, JOB_OUTBOX } job_kind_t;

/* A query for the thread pool; the loop thread makes it and answers with it. */
typedef struct job_s {
  uv_work_t work;
  struct job_s *next; /* while waiting */
  ctxd__console_t *k;
  ctxd__admin_pending_t *pending;
  job_kind_t kind;
  json_t *args; /* owns the strings f points into */
  ctxd__failfilter_t f;
  int64_t id;
  int64_t *ids;
  size_t nids;
  ctxd__failaction_t action;
  char actor[MAX_OPERATOR + 1];
  int64_t backlog; /* the relay's gauges, for JOB_OUTBOX */
  double oldest_s;
  json_t *out;
  int code;
  int64_t remaining; /* JOB_ACT on a group or filter: what the capped action left */
  char err[512];
} job_t;

ctxd__console_t *ctxd__console_new(uv_loop_t *loop, const ctxd__config_t *cfg) {
  ctxd__console_t *k = calloc(1, sizeof *k);
  if (k == NULL) return NULL;
  k->loop = loop;
  k->cfg = cfg;
  k->started_ms = ctxd__clock_wall_ms();
  /* compared as digests: equal lengths, and CRYPTO_memcmp takes the same time either way */
  k->has_token = cfg->admin_token != NULL;
  if (k->has_token) SHA256((const unsigned char *)cfg->admin_token, strlen(cfg->admin_token), k->token_hash);
  pthread_mutex_init(&k->mu, NULL);
  pthread_mutex_init(&k->cancel_mu, NULL);
  return k;
}

void ctxd__console_free(ctxd__console_t *k) {
  if (k == NULL) return;
  if (k->conn != NULL) PQfinish(k->conn);
  if (k->cancel != NULL) PQfreeCancel(k->cancel);
  pthread_mutex_destroy(&k->mu);
  pthread_mutex_destroy(&k->cancel_mu);
  OPENSSL_cleanse(k->token_hash, sizeof k->token_hash);
  free(k->endpoints_text);
  free(k->endpoints_key);
  free(k);
}

/* ---- answers ------------------------------------------------------------------------ */

/* j as the answer's text (j is released); new, free with free; NULL when out of memory. */
static char *json_text(json_t *j) {
  char *text = j != NULL ? json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(6)) : NULL;
  json_decref(j);
  return text;
}

/* Answers JSON text (NULL: out of memory, 500). */
static int text_answer(ctxd__admin_resp_t *resp, int status, const char *text) {
  resp->content_type = JSON_TYPE;
  resp->headers = JSON_HEADERS;
  resp->body.len = 0;
  int rc = text != NULL ? ctxd__prom_append(&resp->body, text, strlen(text)) : CTXD_ENOMEM;
  if (rc == 0) return status;
  resp->body.len = 0;
  ctxd__prom_printf(&resp->body, "{\"error\":\"out of memory\"}");
  return 500;
}

static int json_answer(ctxd__admin_resp_t *resp, int status, json_t *j) {
  char *text = json_text(j);
  int rc = text_answer(resp, status, text);
  free(text);
  return rc;
}

/* The length of the valid UTF-8 sequence at s (1-4), or 0 when there is none. */
static size_t utf8_char(const unsigned char *s) {
  if (s[0] < 0x80) return 1;
  size_t n = s[0] >= 0xc2 && s[0] <= 0xdf   ? 2
             : s[0] >= 0xe0 && s[0] <= 0xef ? 3
             : s[0] >= 0xf0 && s[0] <= 0xf4 ? 4
                                            : 0;
  for (size_t i = 1; i < n; i++)
    if ((s[i] & 0xc0) != 0x80) return 0;
  /* overlong forms, surrogates and code points past U+10FFFF */
  if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] >= 0xa0) || (s[0] == 0xf0 && s[1] < 0x90) ||
      (s[0] == 0xf4 && s[1] >= 0x90))
    return 0;
  return n;
}

/* Makes s valid UTF-8 in place: a byte that starts no valid character becomes '?', a
 * character cut at the end (a bounded format) is dropped. */
static void utf8_clean(char *s) {
  unsigned char *p = (unsigned char *)s;
  while (*p != '\0') {
    size_t n = utf8_char(p);
    if (n > 0) {
      p += n;
      continue;
    }
    if (*p >= 0xc2 && *p <= 0xf4 && strlen((char *)p) < 4) {
      int cut = 1; /* a prefix of a character: only continuation bytes follow, then the end */
      for (unsigned char *q = p + 1; *q != '\0'; q++) cut &= (*q & 0xc0) == 0x80;
      if (cut) {
        *p = '\0';
        return;
      }
    }
    *p++ = '?';
  }
}

static int json_error(ctxd__admin_resp_t *resp, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int json_error(ctxd__admin_resp_t *resp, int status, const char *fmt, ...) {
  char reason[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(reason, sizeof reason, fmt, ap);
  va_end(ap);
  utf8_clean(reason); /* a path, a parameter or the database's text, cut at any byte */
  return json_answer(resp, status, json_pack("{s:s}", "error", reason));
}

static int not_allowed(ctxd__admin_resp_t *resp, const char *allow) {
  int status = json_error(resp, 405, "method not allowed: use %s", allow);
  resp->headers =
      strcmp(allow, "POST") == 0 ? JSON_HEADERS "Allow: POST\r\n" : JSON_HEADERS "Allow: GET, HEAD\r\n";
  return status;
}

static json_t *iso_time(int64_t ms) {
  char t[32];
  ctxd__iso8601_ms(ms, t);
  return json_string(t);
}

/* ---- the host's state ---------------------------------------------------------------- */

static int host_route(ctxd__console_t *k, const ctxd__status_t *s, ctxd__admin_resp_t *resp) {
  ctxd__prom_t lines = {0}, why = {0};
  int ready = ctxd__status_readiness(s, &lines) == 200;
  /* its lines, joined */
  for (char *line = lines.buf, *end; line != NULL && (end = strchr(line, '\n')) != NULL; line = end + 1)
    ctxd__prom_printf(&why, "%s%.*s", why.len > 0 ? "; " : "", (int)(end - line), line);
  ctxd__prom_free(&lines);
  const ctxd__host_info_t *info = ctxd__host_info();
  char host[300];
  snprintf(host, sizeof host, "%s/%s", info->machine_name, info->process_id);
  json_t *plugins = json_array();
  for (size_t i = 0; i < s->nplugins; i++) {
    const ctxd_plugin_t *p = s->plugins[i];
    json_array_append_new(plugins, json_pack("{s:s,s:s}", "name", p->name, "version",
                                             p->desc->version != NULL ? p->desc->version : ""));
  }
  json_t *j =
      json_pack("{s:s,s:s,s:o,s:b,s:b,s:s,s:b,s:o}", "version", CTXD_VERSION_STRING, "host", host,
                "started_at", iso_time(k->started_ms), "connected", s->connected, "ready", ready, "readiness",
                why.buf != NULL ? why.buf : "", "actions_enabled", k->has_token, "plugins", plugins);
  ctxd__prom_free(&why);
  return json_answer(resp, 200, j);
}

static const char *endpoint_state(const ctxd__status_t *s, const ctxd__endpoint_t *ep) {
  if (!s->connected) return "disconnected";
  if (ep->draining) return "draining";
  return ep->consuming ? "consuming" : "stopped";
}

/* A count the broker told, or null when unknown. */
static json_t *known(int64_t v) { return v >= 0 ? json_integer(v) : json_null(); }

static json_t *series_json(const ctxd__ring_t *r) {
  json_t *t = json_array(), *rate = json_array(), *errors = json_array(), *depth = json_array(),
         *p99 = json_array();
  for (size_t i = 0; r != NULL && i < r->n; i++) {
    const ctxd__point_t *p = ctxd__ring_at(r, i);
    json_array_append_new(t, json_integer(p->t));
    json_array_append_new(rate, json_real(p->rate));
    json_array_append_new(errors, json_real(p->errors));
    json_array_append_new(depth, known(p->queue_depth));
    json_array_append_new(p99, json_real(p->p99_ms));
  }
  return json_pack("{s:o,s:o,s:o,s:o,s:o}", "t", t, "rate", rate, "errors", errors, "queue_depth", depth,
                   "p99_ms", p99);
}

static json_t *endpoints_json(const ctxd__status_t *s) {
  json_t *list = json_array();
  for (size_t i = 0; i < s->endpoints->n; i++) {
    ctxd__endpoint_t *ep = s->endpoints->v[i];
    pthread_mutex_lock(&ep->mu);
    ctxd__endpoint_stats_t st = ep->stats;
    pthread_mutex_unlock(&ep->mu);
    const ctxd__ring_t *r = s->series != NULL ? ctxd__series_find(s->series, ep->name) : NULL;
    const ctxd__point_t *now = r != NULL && r->n > 0 ? ctxd__ring_at(r, r->n - 1) : NULL;
    int64_t depth, consumers;
    ctxd__inspect_figures(ep, s->now_ms, &depth, &consumers);
    json_t *e = json_pack(
        "{s:s,s:s,s:o,s:o,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:f,s:f,s:f,s:o}", "name", ep->name, "state",
        endpoint_state(s, ep), "consumers", known(consumers), "queue_depth", known(depth), "in_flight",
        (json_int_t)ep->inflight, "workers", (json_int_t)ep->settings.workers, "handled",
        (json_int_t)st.handled, "duplicates", (json_int_t)st.duplicates, "retried", (json_int_t)st.retried,
        "errored", (json_int_t)st.errored, "skipped", (json_int_t)st.skipped, "poisoned",
        (json_int_t)st.poisoned, "rate", now != NULL ? now->rate : 0.0, "p50_ms",
        now != NULL ? now->p50_ms : 0.0, "p99_ms", now != NULL ? now->p99_ms : 0.0, "series", series_json(r));
    json_array_append_new(list, e);
  }
  return json_pack("{s:i,s:o}", "interval_s", CTXD__SERIES_INTERVAL_MS / 1000, "endpoints", list);
}

/* What an /api/endpoints answer shows besides the numbers read at each sample: which
 * sample (the series counts them), the connection, each endpoint's state and queue
 * figures (they change between samples). New, free with free; NULL when out of memory. */
static int64_t *endpoints_key(const ctxd__status_t *s, size_t *n) {
  *n = 2 + 3 * s->endpoints->n;
  int64_t *key = malloc(*n * sizeof *key);
  if (key == NULL) return NULL;
  key[0] = s->series != NULL ? (int64_t)s->series->taken : 0;
  key[1] = s->connected;
  for (size_t i = 0; i < s->endpoints->n; i++) {
    const ctxd__endpoint_t *ep = s->endpoints->v[i];
    key[2 + 3 * i] = ep->draining * 2 + ep->consuming;
    ctxd__inspect_figures(ep, s->now_ms, &key[3 + 3 * i], &key[4 + 3 * i]);
  }
  return key;
}

/* Rendered again only when its key changed: its counts are those of the first request
 * after a sample, at most an interval old. */
static int endpoints_route(ctxd__console_t *k, const ctxd__status_t *s, ctxd__admin_resp_t *resp) {
  size_t n;
  int64_t *key = endpoints_key(s, &n);
  if (key == NULL || k->endpoints_text == NULL || n != k->endpoints_nkey ||
      memcmp(key, k->endpoints_key, n * sizeof *key) != 0) {
    free(k->endpoints_text);
    free(k->endpoints_key);
    k->endpoints_text = json_text(endpoints_json(s));
    k->endpoints_key = key;
    k->endpoints_nkey = key != NULL ? n : 0;
  } else {
    free(key);
  }
  return text_answer(resp, 200, k->endpoints_text);
}

static void add_sent(void *arg, const ctxd__sent_t *sent) {
  json_array_append_new(
      arg, json_pack("{s:s,s:s}", "message_type", sent->message_type, "exchange", sent->exchange));
}

static int topology_route(const ctxd__status_t *s, ctxd__admin_resp_t *resp) {
  json_t *plugins = json_array();
  for (size_t i = 0; i < s->nplugins; i++) {
    ctxd_plugin_t *p = s->plugins[i];
    json_t *consumes = json_array(), *publishes = json_array();
    for (size_t e = 0; e < s->endpoints->n; e++) {
      const ctxd__endpoint_t *ep = s->endpoints->v[e];
      for (size_t h = 0; h < ep->nhandlers; h++)
        if (ep->handlers[h].plugin == p)
          json_array_append_new(
              consumes, json_pack("{s:s,s:s}", "endpoint", ep->name, "message_type", ep->handlers[h].type));
    }
    if (s->observed != NULL) ctxd__observed_each(s->observed, p->name, add_sent, publishes);
    json_array_append_new(
        plugins, json_pack("{s:s,s:o,s:o}", "name", p->name, "consumes", consumes, "publishes", publishes));
  }
  return json_answer(resp, 200, json_pack("{s:o}", "plugins", plugins));
}

/* ---- queries on the thread pool -------------------------------------------------------- */

static const char set_aside_count[] = "SELECT count(*) FROM ctxd.outbox_set_aside";
static const char set_aside_rows[] = "SELECT id, message_type, exchange, refused,"
                                     " to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
                                     " FROM ctxd.outbox_set_aside ORDER BY id DESC LIMIT 20";

/* The outbox's set-aside rows: {"set_aside":N,"set_aside_rows":[...]}. */
static json_t *set_aside(PGconn *c, int *code, char *err, size_t errlen) {
  PGresult *n = ctxd__db_exec(c, set_aside_count, 0, NULL, code, err, errlen);
  PGresult *r = n != NULL ? ctxd__db_exec(c, set_aside_rows, 0, NULL, code, err, errlen) : NULL;
  json_t *out = NULL;
  if (r != NULL) {
    json_t *rows = json_array();
    for (int i = 0; i < PQntuples(r); i++)
      json_array_append_new(
          rows, json_pack("{s:I,s:s,s:s,s:s,s:s}", "id", (json_int_t)strtoll(PQgetvalue(r, i, 0), NULL, 10),
                          "message_type", PQgetvalue(r, i, 1), "exchange", PQgetvalue(r, i, 2), "refused",
                          PQgetvalue(r, i, 3), "at", PQgetvalue(r, i, 4)));
    out = json_pack("{s:I,s:o}", "set_aside", (json_int_t)strtoll(PQgetvalue(n, 0, 0), NULL, 10),
                    "set_aside_rows", rows);
  }
  PQclear(n);
  PQclear(r);
  return out;
}

/* Each action's name, and the statuses it applies to as SQL (failstore.c's refusal()
 * refuses the others). */
static const struct {
  const char *name, *applies;
} acts[] = {{"retry", "status IN ('unresolved', 'archived')"},
            {"archive", "status IN ('unresolved', 'retry_requested')"},
            {"unarchive", "status = 'archived'"}};

/* An action on a group or a filter: on the first MAX_IDS rows it applies to (a bounded
 * transaction: its answer stays within the deadline), the rest counted in j->remaining:
 * the same request again takes the next ones, as the rows done no longer qualify. */
static json_t *act_capped(job_t *j, PGconn *c) {
  ctxd__failsql_t q;
  char sql[1200];
  if (j->f.status == NULL) j->f.status = ctxd__failstore_action_status(j->action);
  if ((j->code = ctxd__failfilter_sql(&j->f, &q, j->err, sizeof j->err)) != 0) return NULL;
  snprintf(sql, sizeof sql, "SELECT id FROM ctxd.failed_messages WHERE (%s) AND %s ORDER BY id LIMIT %d",
           q.where, acts[j->action].applies, MAX_IDS);
  PGresult *r = ctxd__db_exec(c, sql, q.n, q.params, &j->code, j->err, sizeof j->err);
  if (r == NULL) return NULL;
  j->nids = (size_t)PQntuples(r);
  j->ids = calloc(j->nids + 1, sizeof *j->ids);
  for (size_t i = 0; j->ids != NULL && i < j->nids; i++)
    j->ids[i] = strtoll(PQgetvalue(r, (int)i, 0), NULL, 10);
  PQclear(r);
  if (j->ids == NULL) {
    j->code = CTXD_ENOMEM;
    snprintf(j->err, sizeof j->err, "out of memory");
    return NULL;
  }
  json_t *out = j->nids > 0 ? ctxd__failstore_act(c, j->action, j->ids, j->nids, &j->f, j->actor, &j->code,
                                                  j->err, sizeof j->err)
                            : json_pack("{s:s,s:i,s:i,s:[]}", "action", acts[j->action].name, "requested", 0,
                                        "done", 0, "skipped");
  if (out == NULL || j->nids < MAX_IDS) return out;
  snprintf(sql, sizeof sql, "SELECT count(*) FROM ctxd.failed_messages WHERE (%s) AND %s", q.where,
           acts[j->action].applies);
  r = ctxd__db_exec(c, sql, q.n, q.params, &j->code, j->err, sizeof j->err);
  if (r != NULL) j->remaining = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
  PQclear(r);
  return out; /* the action committed: its answer stands even when the count failed */
}

static json_t *job_call(job_t *j, PGconn *c) {
  switch (j->kind) {
  case JOB_SUMMARY: return ctxd__failstore_summary(c, &j->code, j->err, sizeof j->err);
  case JOB_GROUPS: return ctxd__failstore_groups(c, &j->f, &j->code, j->err, sizeof j->err);
  case JOB_LIST: return ctxd__failstore_list(c, &j->f, &j->code, j->err, sizeof j->err);
  case JOB_SHOW: return ctxd__failstore_show(c, j->id, &j->code, j->err, sizeof j->err);
  case JOB_ACT:
    if (j->nids == 0) return act_capped(j, c);
    return ctxd__failstore_act(c, j->action, j->ids, j->nids, &j->f, j->actor, &j->code, j->err,
                               sizeof j->err);
  case JOB_OUTBOX: return set_aside(c, &j->code, j->err, sizeof j->err);
  }
  return NULL;
}

/* Under mu: closes the connection, its cancel handle first. */
static void conn_drop(ctxd__console_t *k) {
  pthread_mutex_lock(&k->cancel_mu);
  if (k->cancel != NULL) PQfreeCancel(k->cancel);
  k->cancel = NULL;
  pthread_mutex_unlock(&k->cancel_mu);
  if (k->conn != NULL) PQfinish(k->conn);
  k->conn = NULL;
}

/* Thread pool: connects when needed and runs the job; a query that failed on a broken
 * connection runs once more on a new one, an action never (it may have committed). */
static void job_run(uv_work_t *w) {
  job_t *j = w->data;
  ctxd__console_t *k = j->k;
  pthread_mutex_lock(&k->mu);
  for (int attempt = 0; attempt < 2 && j->out == NULL; attempt++) {
    if (k->conn == NULL && ctxd__clock_us() < k->connect_after_us) {
      j->code = CTXD_EDB;
      snprintf(j->err, sizeof j->err, "%s", k->connect_error);
      break;
    }
    if (k->conn == NULL) {
      const ctxd__config_t *cfg = k->cfg;
      j->code = ctxd__db_open(cfg, &k->conn, j->err, sizeof j->err);
      if (j->code == 0) j->code = ctxd__db_run(k->conn, STATEMENT_TIMEOUT, 0, NULL, j->err, sizeof j->err);
      if (j->code != 0) {
        conn_drop(k);
        k->connect_after_us = ctxd__clock_us() + RETRY_CONNECT_US;
        snprintf(k->connect_error, sizeof k->connect_error, "%s", j->err);
        break;
      }
      pthread_mutex_lock(&k->cancel_mu);
      k->cancel = PQgetCancel(k->conn); /* NULL (out of memory): a stop waits for the query */
      pthread_mutex_unlock(&k->cancel_mu);
    }
    j->code = 0;
    j->out = job_call(j, k->conn);
    if (j->out != NULL || ctxd__db_usable(k->conn)) break;
    conn_drop(k);
    if (j->kind == JOB_ACT) break;
  }
  pthread_mutex_unlock(&k->mu);
}

static void job_free(job_t *j) {
  json_decref(j->args);
  json_decref(j->out);
  free(j->ids);
  free(j);
}

/* Loop thread: answers j's request with a JSON error. */
static void job_refuse(job_t *j, int http, const char *why) {
  ctxd__admin_resp_t resp = {0};
  http = json_error(&resp, http, "%s", why);
  ctxd__admin_reply(j->pending, http, &resp);
  job_free(j);
}

static void job_done(uv_work_t *w, int status);

/* Loop thread: puts the oldest waiting job on the thread pool, unless one runs. A read
 * whose answer would be dropped (its client left, its deadline passed) is skipped; an
 * action is not: its operator was told it may be running. */
static void job_next(ctxd__console_t *k) {
  while (k->running == NULL && k->first != NULL) {
    job_t *j = k->first;
    if ((k->first = j->next) == NULL) k->last = NULL;
    k->waiting--;
    if (j->kind != JOB_ACT && ctxd__admin_pending_gone(j->pending)) {
      job_refuse(j, 503, READ_LATE);
      continue;
    }
    int rc = uv_queue_work(k->loop, &j->work, job_run, job_done);
    if (rc != 0) {
      char why[128];
      snprintf(why, sizeof why, "cannot queue the query: %s", uv_strerror(rc));
      job_refuse(j, 500, why);
      continue;
    }
    k->running = j;
  }
}

/* Loop thread: answers the request the job was for, and starts the next. */
static void job_done(uv_work_t *w, int status) {
  job_t *j = w->data;
  ctxd__console_t *k = j->k;
  k->running = NULL;
  ctxd__admin_resp_t resp = {0};
  int http;
  if (status != 0 || (j->out == NULL && j->code == 0)) {
    http = json_error(&resp, 500, "the query did not run");
  } else if (j->out == NULL) {
    char safe[512];
    ctxd__redact(j->err, safe, sizeof safe);
    http = json_error(&resp, j->code == CTXD_ENOENT ? 404 : j->code == CTXD_EINVAL ? 400 : 503, "%s", safe);
  } else {
    if (j->kind == JOB_OUTBOX) {
      json_object_set_new(j->out, "backlog", json_integer(j->backlog));
      json_object_set_new(j->out, "oldest_s", json_real(j->oldest_s));
    }
    if (j->kind == JOB_ACT) json_object_set_new(j->out, "remaining", json_integer(j->remaining));
    http = json_answer(&resp, 200, json_incref(j->out));
  }
  ctxd__admin_reply(j->pending, http, &resp);
  job_free(j);
  if (!k->stopping) job_next(k);
}

/* Defers the request and queues j (taken) for its turn. */
static int job_start(ctxd__console_t *k, job_t *j, ctxd__admin_req_t *req, ctxd__admin_resp_t *resp) {
  j->k = k;
  j->work.data = j;
  if (k->stopping || k->waiting >= MAX_WAITING) {
    job_free(j);
    return k->stopping ? json_error(resp, 503, "the host is stopping")
                       : json_error(resp, 503, "the database is slow to answer: %d queries wait already",
                                    MAX_WAITING);
  }
  /* reads: the statement timeout, after a connection's; actions: a few statements per row */
  uint64_t deadline = j->kind == JOB_ACT
                          ? ACTION_DEADLINE_MS
                          : STATEMENT_TIMEOUT_MS + (uint64_t)k->cfg->db_connect_timeout_s * 1000 + 1000;
  if ((j->pending = ctxd__admin_defer(req, deadline, j->kind == JOB_ACT ? ACTION_LATE : READ_LATE)) == NULL) {
    job_free(j);
    return json_error(resp, 500, "out of memory");
  }
  if (k->last != NULL)
    k->last->next = j;
  else
    k->first = j;
  k->last = j;
  k->waiting++;
  job_next(k); /* a failure to queue answers through pending, once this callback returned */
  return CTXD__ADMIN_DEFERRED;
}

void ctxd__console_stop(ctxd__console_t *k) {
  if (k == NULL) return;
  k->stopping = 1;
  while (k->first != NULL) {
    job_t *j = k->first;
    k->first = j->next;
    job_refuse(j, 503, "the host is stopping");
  }
  k->last = NULL;
  k->waiting = 0;
  char err[256];
  pthread_mutex_lock(&k->cancel_mu);
  if (k->running != NULL && k->cancel != NULL) PQcancel(k->cancel, err, sizeof err);
  pthread_mutex_unlock(&k->cancel_mu);
}

static job_t *job_new(job_kind_t kind) {
  job_t *j = calloc(1, sizeof *j);
  if (j != NULL) j->kind = kind;
  return j;
}

/* ---- filters -------------------------------------------------------------------------- */

static int hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Decodes n bytes of a query string component (%XX, '+' a space) into a new string; NULL
 * when it is malformed or decodes to a NUL byte. */
static char *url_decode(const char *s, size_t n) {
  char *out = malloc(n + 1);
  size_t o = 0;
  for (size_t i = 0; out != NULL && i < n; i++) {
    if (s[i] != '%') {
      out[o++] = s[i] == '+' ? ' ' : s[i];
      continue;
    }
    int hi = i + 2 < n ? hex(s[i + 1]) : -1, lo = i + 2 < n ? hex(s[i + 2]) : -1;
    if (hi < 0 || lo < 0 || hi * 16 + lo == 0) {
      free(out);
      return NULL;
    }
    out[o++] = (char)(hi * 16 + lo);
    i += 2;
  }
  if (out != NULL) out[o] = '\0';
  return out;
}

static const char *const filter_keys[] = {"endpoint", "message_type", "exception_type", "message_id",
                                          "group",    "status",       "since",          "until",
                                          "limit",    "offset"};

static int filter_key(const char *key) {
  for (size_t i = 0; i < sizeof filter_keys / sizeof filter_keys[0]; i++)
    if (strcmp(filter_keys[i], key) == 0) return 1;
  return 0;
}

/* A whole non-negative number in text, or -1. */
static int64_t count_of(const json_t *v) {
  if (json_is_integer(v)) return json_integer_value(v) >= 0 ? json_integer_value(v) : -1;
  const char *t = json_string_value(v);
  if (t == NULL || *t == '\0' || strlen(t) > 18) return -1;
  for (const char *c = t; *c; c++)
    if (*c < '0' || *c > '9') return -1;
  return strtoll(t, NULL, 10);
}

/* Fills f from obj (borrowed while obj lives): its members must be filter keys, with
 * strings (limit and offset: whole numbers). 0, or -1 with the reason in why. */
static int filter_from(const json_t *obj, ctxd__failfilter_t *f, char *why, size_t whylen) {
  memset(f, 0, sizeof *f);
  const char *key;
  json_t *v;
  json_object_foreach((json_t *)obj, key, v) {
    if (!filter_key(key)) {
      snprintf(why, whylen,
               "unknown filter '%.64s': expected one of endpoint, message_type, exception_type, "
               "message_id, group, status, since, until, limit, offset",
               key);
      return -1;
    }
    if (strcmp(key, "limit") == 0 || strcmp(key, "offset") == 0) {
      int64_t n = count_of(v);
      if (n < 0) {
        snprintf(why, whylen, "%s: expected a whole number", key);
        return -1;
      }
      *(key[0] == 'l' ? &f->limit : &f->offset) = n;
      continue;
    }
    if (!json_is_string(v)) {
      snprintf(why, whylen, "%s: expected a string", key);
      return -1;
    }
    const char *s = json_string_value(v);
    const char **dst[] = {&f->endpoint, &f->message_type, &f->exception_type, &f->message_id,
                          &f->group,    &f->status,       &f->since,          &f->until};
    for (size_t i = 0; i < sizeof dst / sizeof dst[0]; i++)
      if (strcmp(filter_keys[i], key) == 0) *dst[i] = s;
  }
  return 0;
}

/* The query string as an object of decoded strings (new), or NULL with the reason. */
static json_t *query_object(const char *q, char *why, size_t whylen) {
  json_t *o = json_object();
  while (o != NULL && *q != '\0') {
    size_t n = strcspn(q, "&");
    const char *eq = memchr(q, '=', n);
    size_t klen = eq != NULL ? (size_t)(eq - q) : n;
    char *key = url_decode(q, klen), *val = eq != NULL ? url_decode(eq + 1, n - klen - 1) : strdup("");
    if (key == NULL || val == NULL || json_object_get(o, key) != NULL ||
        json_object_set_new(o, key, json_string(val)) != 0) {
      snprintf(why, whylen, "malformed or repeated query parameter '%.*s'", (int)(klen < 64 ? klen : 64), q);
      json_decref(o);
      o = NULL;
    }
    free(key);
    free(val);
    q += n + (q[n] == '&');
  }
  return o;
}

/* ---- actions ----------------------------------------------------------------------------- */

/* The host:port of an Origin ("scheme://host[:port]"), its port said even when the
 * scheme's default, into out; -1 when it is not http(s). */
static int authority(const char *text, const char *scheme, char *out, size_t outlen) {
  const char *host = text;
  if (scheme == NULL) {
    if (strncasecmp(text, "http://", 7) == 0) {
      scheme = "http";
      host = text + 7;
    } else if (strncasecmp(text, "https://", 8) == 0) {
      scheme = "https";
      host = text + 8;
    } else {
      return -1;
    }
  }
  size_t len = strcspn(host, "/");
  const char *bracket = memchr(host, ']', len);
  const char *colon =
      memchr(bracket != NULL ? bracket : host, ':', len - (size_t)((bracket ? bracket : host) - host));
  int n = colon != NULL ? snprintf(out, outlen, "%.*s", (int)len, host)
                        : snprintf(out, outlen, "%.*s:%s", (int)len, host, scheme[4] == 's' ? "443" : "80");
  return n > 0 && (size_t)n < outlen ? 0 : -1;
}

/* Why a POST is refused as cross-site, or NULL: Sec-Fetch-Site other than same-origin or
 * none, or an Origin whose host:port is not Host's. */
static const char *cross_site(ctxd__admin_req_t *req) {
  const char *site = ctxd__admin_header(req, "Sec-Fetch-Site");
  if (site != NULL && strcasecmp(site, "same-origin") != 0 && strcasecmp(site, "none") != 0)
    return "refused: a cross-site request (Sec-Fetch-Site)";
  const char *origin = ctxd__admin_header(req, "Origin"), *host = ctxd__admin_header(req, "Host");
  if (origin == NULL) return NULL;
  char a[300], b[300];
  const char *scheme = strncasecmp(origin, "https://", 8) == 0 ? "https" : "http";
  if (host == NULL || authority(origin, NULL, a, sizeof a) != 0 ||
      authority(host, scheme, b, sizeof b) != 0 || strcasecmp(a, b) != 0)
    return "refused: a cross-site request (Origin is not this host)";
  return NULL;
}

/* 1 when the request's Host names this console: an IP address or localhost, any port, or
 * one of admin.allowed_hosts (host:port exactly, or host with any port). Another name
 * may be a page's own that its DNS now points here (DNS rebinding): it would read the API
 * as same-origin. No Host: not a browser. */
static int host_ok(const ctxd__console_t *k, ctxd__admin_req_t *req) {
  const char *host = ctxd__admin_header(req, "Host");
  if (host == NULL) return 1;
  const char *name = host, *port;
  size_t len;
  if (host[0] == '[') {
    const char *end = strchr(host, ']');
    if (end == NULL) return 0;
    name = host + 1;
    len = (size_t)(end - name);
    port = end + 1;
  } else {
    len = strcspn(host, ":");
    port = host + len;
  }
  if (*port != '\0' &&
      (*port != ':' || port[1] == '\0' || strspn(port + 1, "0123456789") != strlen(port + 1)))
    return 0;
  char text[256];
  if (len >= sizeof text) return 0;
  memcpy(text, name, len);
  text[len] = '\0';
  unsigned char addr[sizeof(struct in6_addr)];
  if (host[0] == '[' ? inet_pton(AF_INET6, text, addr) == 1
                     : inet_pton(AF_INET, text, addr) == 1 || strcasecmp(text, "localhost") == 0)
    return 1;
  const ctxd__config_t *cfg = k->cfg;
  for (size_t i = 0; i < cfg->nadmin_allowed_hosts; i++) {
    const char *allowed = cfg->admin_allowed_hosts[i];
    if (strcasecmp(allowed, host) == 0 || (strchr(allowed, ':') == NULL && strcasecmp(allowed, text) == 0))
      return 1;
  }
  return 0;
}

/* 1 when the request carries the token as "Authorization: Bearer <token>". */
static int token_ok(const ctxd__console_t *k, ctxd__admin_req_t *req) {
  const char *auth = ctxd__admin_header(req, "Authorization");
  if (auth == NULL || strncasecmp(auth, "Bearer ", 7) != 0) return 0;
  unsigned char got[SHA256_DIGEST_LENGTH];
  SHA256((const unsigned char *)auth + 7, strlen(auth + 7), got);
  return CRYPTO_memcmp(got, k->token_hash, sizeof got) == 0;
}

static int json_content(ctxd__admin_req_t *req) {
  const char *t = ctxd__admin_header(req, "Content-Type");
  if (t == NULL) return 0;
  size_t n = strcspn(t, "; \t");
  return n == 16 && strncasecmp(t, "application/json", 16) == 0;
}

/* The operator's name for the action log, into out; -1 when it is not printable UTF-8
 * text (the database refuses invalid UTF-8). */
static int operator_name(ctxd__admin_req_t *req, char *out, size_t outlen) {
  const char *name = ctxd__admin_header(req, "X-Ctxd-Operator");
  if (name == NULL) name = "console";
  size_t n = strlen(name);
  if (n == 0 || n > MAX_OPERATOR) return -1;
  for (size_t i = 0, len; i < n; i += len)
    if ((len = utf8_char((const unsigned char *)name + i)) == 0 || (unsigned char)name[i] < 0x20 ||
        name[i] == 0x7f)
      return -1;
  snprintf(out, outlen, "%s", name);
  return 0;
}

/* An action's filter into j: it must narrow (a key other than status, limit and offset),
 * or say "all": true, so that {} never acts on every open message. 0, or -1 with why. */
static int act_filter(job_t *j, json_t *filter, char *why, size_t whylen) {
  json_t *all = json_object_get(filter, "all");
  if (all != NULL && !json_is_true(all)) {
    snprintf(why, whylen, "filter.all: expected true");
    return -1;
  }
  json_object_del(filter, "all");
  if (filter_from(filter, &j->f, why, whylen) != 0) return -1;
  const ctxd__failfilter_t *f = &j->f;
  if (all == NULL && f->endpoint == NULL && f->message_type == NULL && f->exception_type == NULL &&
      f->message_id == NULL && f->group == NULL && f->since == NULL && f->until == NULL) {
    snprintf(why, whylen,
             "filter: name the messages (endpoint, message_type, exception_type, message_id, group, "
             "since or until), or say \"all\": true");
    return -1;
  }
  return 0;
}

/* Reads {"ids":[...]} or {"group":"..."} or {"filter":{...}} into j. 0, or -1 with why. */
static int act_body(job_t *j, char *why, size_t whylen) {
  json_t *ids = json_object_get(j->args, "ids"), *group = json_object_get(j->args, "group"),
         *filter = json_object_get(j->args, "filter");
  if (!json_is_object(j->args) || json_object_size(j->args) != 1 ||
      (ids == NULL && group == NULL && filter == NULL)) {
    snprintf(why, whylen, "expected {\"ids\":[...]}, {\"group\":\"...\"} or {\"filter\":{...}}");
    return -1;
  }
  if (group != NULL) {
    if (!json_is_string(group) || json_string_length(group) == 0) {
      snprintf(why, whylen, "group: expected a group id");
      return -1;
    }
    j->f.group = json_string_value(group);
    return 0;
  }
  if (filter != NULL && !json_is_object(filter)) {
    snprintf(why, whylen, "filter: expected an object");
    return -1;
  }
  if (filter != NULL) return act_filter(j, filter, why, whylen);
  size_t n = json_array_size(ids);
  if (!json_is_array(ids) || n == 0 || n > MAX_IDS || (j->ids = calloc(n, sizeof *j->ids)) == NULL) {
    snprintf(why, whylen, "ids: expected 1 to %d message ids", MAX_IDS);
    return -1;
  }
  for (size_t i = 0; i < n; i++) {
    json_t *v = json_array_get(ids, i);
    if (!json_is_integer(v) || json_integer_value(v) <= 0) {
      snprintf(why, whylen, "ids: expected whole numbers above 0");
      return -1;
    }
    j->ids[i] = json_integer_value(v);
  }
  j->nids = n;
  return 0;
}

static int act_route(ctxd__console_t *k, ctxd__failaction_t action, ctxd__admin_req_t *req,
                     ctxd__admin_resp_t *resp) {
  if (!k->has_token) return json_error(resp, 403, "actions are disabled: set admin.token");
  const char *why = cross_site(req);
  if (why != NULL) return json_error(resp, 403, "%s", why);
  if (!token_ok(k, req))
    return json_error(resp, 401, "an action needs \"Authorization: Bearer <admin.token>\"");
  if (!json_content(req)) return json_error(resp, 415, "expected Content-Type: application/json");
  job_t *j = job_new(JOB_ACT);
  if (j == NULL) return json_error(resp, 500, "out of memory");
  j->action = action;
  char reason[256] = "";
  size_t len;
  const char *body = ctxd__admin_body(req, &len);
  json_error_t jerr;
  j->args = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
  if (j->args == NULL) snprintf(reason, sizeof reason, "the body is not JSON: %s", jerr.text);
  if (j->args == NULL || act_body(j, reason, sizeof reason) != 0 ||
      (operator_name(req, j->actor, sizeof j->actor) != 0 &&
       snprintf(reason, sizeof reason, "X-Ctxd-Operator: expected 1 to %d bytes of printable UTF-8 text",
                MAX_OPERATOR) > 0)) {
    job_free(j);
    return json_error(resp, 400, "%s", reason[0] != '\0' ? reason : "bad request");
  }
  return job_start(k, j, req, resp);
}

/* ---- routes ----------------------------------------------------------------------------- */

static int asset_route(const char *path, ctxd__admin_resp_t *resp) {
  size_t len;
  const char *type;
  const unsigned char *data = ctxd__console_asset(path, &len, &type);
  if (data == NULL) return CTXD_ENOENT;
  resp->content_type = type;
  resp->headers = PAGE_HEADERS;
  return ctxd__prom_append(&resp->body, (const char *)data, len) == 0 ? 200 : 500;
}

/* GET /api/failed..., with the query string's filter. */
static int failed_query(ctxd__console_t *k, job_kind_t kind, int64_t id, ctxd__admin_req_t *req,
                        ctxd__admin_resp_t *resp) {
  job_t *j = job_new(kind);
  if (j == NULL) return json_error(resp, 500, "out of memory");
  j->id = id;
  char why[256];
  if ((j->args = query_object(ctxd__admin_query(req), why, sizeof why)) == NULL ||
      filter_from(j->args, &j->f, why, sizeof why) != 0) {
    job_free(j);
    return json_error(resp, 400, "%s", why);
  }
  return job_start(k, j, req, resp);
}

/* The id of "/api/failed/<id>", or 0. */
static int64_t failed_id(const char *rest) {
  if (*rest == '\0' || strlen(rest) > 18) return 0;
  for (const char *c = rest; *c; c++)
    if (*c < '0' || *c > '9') return 0;
  return strtoll(rest, NULL, 10);
}

int ctxd__console_handle(ctxd__console_t *k, const ctxd__status_t *s, ctxd__admin_req_t *req,
                         ctxd__admin_resp_t *resp) {
  const char *path = ctxd__admin_path(req);
  int post = strcmp(ctxd__admin_method(req), "POST") == 0;
  int api = strncmp(path, "/api/", 5) == 0;
  if (!api && strcmp(path, "/") != 0 && strcmp(path, "/console.js") != 0 && strcmp(path, "/console.css") != 0)
    return CTXD_ENOENT;
  if (!host_ok(k, req))
    return json_error(resp, 421,
                      "refused: the console answers to an IP address, localhost or admin.allowed_hosts, "
                      "not to this Host");
  if (!api) return post ? not_allowed(resp, "GET") : asset_route(path, resp);
  static const struct {
    const char *path;
    ctxd__failaction_t action;
  } actions[] = {{"/api/failed/retry", CTXD__FAIL_RETRY},
                 {"/api/failed/archive", CTXD__FAIL_ARCHIVE},
                 {"/api/failed/unarchive", CTXD__FAIL_UNARCHIVE}};
  for (size_t i = 0; i < sizeof actions / sizeof actions[0]; i++)
    if (strcmp(path, actions[i].path) == 0)
      return post ? act_route(k, actions[i].action, req, resp) : not_allowed(resp, "POST");
  static const char *const reads[] = {"/api/host",     "/api/endpoints",      "/api/outbox",
                                      "/api/topology", "/api/failed/summary", "/api/failed/groups",
                                      "/api/failed"};
  int64_t id = strncmp(path, "/api/failed/", 12) == 0 ? failed_id(path + 12) : 0;
  int known_path = id > 0;
  for (size_t i = 0; i < sizeof reads / sizeof reads[0]; i++) known_path |= strcmp(path, reads[i]) == 0;
  if (!known_path) return json_error(resp, 404, "not found: %s", path);
  if (post) return not_allowed(resp, "GET");
  if (strcmp(path, "/api/host") == 0) return host_route(k, s, resp);
  if (strcmp(path, "/api/endpoints") == 0) return endpoints_route(k, s, resp);
  if (strcmp(path, "/api/topology") == 0) return topology_route(s, resp);
  if (strcmp(path, "/api/outbox") == 0) {
    job_t *j = job_new(JOB_OUTBOX);
    if (j == NULL) return json_error(resp, 500, "out of memory");
    ctxd__relay_stats_t rs = {0};
    if (s->relay != NULL) ctxd__relay_gauges(s->relay, &rs);
    j->backlog = rs.backlog;
    j->oldest_s = rs.oldest_s;
    return job_start(k, j, req, resp);
  }
  if (strcmp(path, "/api/failed/summary") == 0) return failed_query(k, JOB_SUMMARY, 0, req, resp);
  if (strcmp(path, "/api/failed/groups") == 0) return failed_query(k, JOB_GROUPS, 0, req, resp);
  return failed_query(k, id > 0 ? JOB_SHOW : JOB_LIST, id, req, resp);
}
