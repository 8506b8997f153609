#include "db.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-events.h>

#include <ctxd/errno.h>

#include "redact.h"

/* NOTICEs ("schema already exists, skipping") are not for operators, and libpq's default
 * would print them to stderr in the middle of the JSON log lines. */
static void quiet(void *arg, const char *message) {
  (void)arg;
  (void)message;
}

/* Prepared statements, cached per connection: a handler runs the same few statements for
 * every message, and parsing and planning them each time was the largest share of the
 * database's work in the benchmarks. The cache hangs on the PGconn as libpq instance
 * data, so it dies with the connection (PQfinish) and is emptied on PQreset. The same
 * state keeps the statements queued in pipeline mode whose results are still unread. */
#define STMT_SLOTS 256
/* unread results in a pipeline before reading them: keeps the server from blocking on a
 * full socket while the client blocks on its own */
#define PIPELINE_MAX 512

typedef struct {
  uint64_t hash;
  char *sql; /* NULL: free slot */
} stmt_t;

typedef struct {
  int slot;              /* >= 0: the PQsendPrepare of this cache slot */
  ctxd__db_result_cb cb; /* a queued statement's result, when its caller wants it */
  void *arg;
  PGresult **keep; /* the result itself, for ctxd__db_exec */
} pending_t;

/* the slots of the statements last seen, by the address of their text: a handler passes
 * the same string constant for every message, and a match is confirmed by strcmp, cheaper
 * than hashing the text again */
#define MEMO_SLOTS 64

typedef struct {
  const char *sql;
  int slot;
} memo_t;

typedef struct {
  stmt_t slots[STMT_SLOTS];
  memo_t memo[MEMO_SLOTS];
  int used;
  pending_t pending[PIPELINE_MAX + 2];
  size_t npending;
  int code; /* the pipeline's first error, 0 if none */
  char err[512];
  char sqlstate[6]; /* of the last error, "" when it had none */
  int read_only;    /* the server refused a write (25006): a standby, no longer the primary */
  /* the session at the server (ctxd__db_open): its pid (PQbackendPID says 0 once the
   * connection is lost) and backend_start, "" when unknown */
  char pid[16], started[40];
} conn_state_t;

static void cache_clear(conn_state_t *st) {
  for (int i = 0; i < STMT_SLOTS; i++) free(st->slots[i].sql);
  memset(st, 0, sizeof *st);
}

static int stmt_events(PGEventId id, void *event, void *pass) {
  (void)pass;
  if (id == PGEVT_CONNDESTROY || id == PGEVT_CONNRESET) {
    PGconn *c =
        id == PGEVT_CONNDESTROY ? ((PGEventConnDestroy *)event)->conn : ((PGEventConnReset *)event)->conn;
    conn_state_t *st = PQinstanceData(c, stmt_events);
    if (st != NULL) cache_clear(st);
    if (id == PGEVT_CONNDESTROY) free(st);
  }
  return 1;
}

static uint64_t fnv(const char *s) {
  uint64_t h = 1469598103934665603ULL;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
  return h;
}

/* The name of sql's prepared statement ("s<slot>"); *fresh is the slot when it was
 * reserved now and must still be prepared, else -1. NULL when it cannot be cached (no
 * cache, cache full): run it unprepared. */
static const char *cache_find(conn_state_t *st, const char *sql, char name[16], int *fresh) {
  *fresh = -1;
  if (st == NULL) return NULL;
  memo_t *memo = &st->memo[((uintptr_t)sql >> 3) % MEMO_SLOTS];
  if (memo->sql == sql && st->slots[memo->slot].sql != NULL && strcmp(st->slots[memo->slot].sql, sql) == 0) {
    snprintf(name, 16, "s%d", memo->slot);
    return name;
  }
  uint64_t h = fnv(sql);
  size_t i = (size_t)(h % STMT_SLOTS);
  for (int probe = 0; probe < STMT_SLOTS; probe++, i = (i + 1) % STMT_SLOTS) {
    stmt_t *s = &st->slots[i];
    if (s->sql != NULL && s->hash == h && strcmp(s->sql, sql) == 0) break;
    if (s->sql != NULL) continue;
    if (st->used >= STMT_SLOTS * 3 / 4) return NULL; /* keep probes short */
    if ((s->sql = strdup(sql)) == NULL) return NULL;
    s->hash = h;
    st->used++;
    *fresh = (int)i;
    break;
  }
  *memo = (memo_t){sql, (int)i};
  snprintf(name, 16, "s%zu", i);
  return name;
}

/* A slot whose PREPARE failed: free again. */
static void cache_release(conn_state_t *st, int slot) {
  free(st->slots[slot].sql);
  st->slots[slot].sql = NULL;
  st->used--;
}

static conn_state_t *state(PGconn *c) { return PQinstanceData(c, stmt_events); }

static int pipelined(PGconn *c) { return PQpipelineStatus(c) != PQ_PIPELINE_OFF; }

static void copy_error(char *err, size_t errlen, const char *text);

/* The i-th item of a comma-separated list into out, the only item of a one-item list
 * whatever i (a port for every host), "" for no list or no such item. */
static void list_item(const char *list, int i, char *out, size_t len) {
  out[0] = '\0';
  if (list == NULL || *list == '\0') return;
  if (strchr(list, ',') == NULL) i = 0;
  for (; i > 0 && list != NULL; i--) list = strchr(list, ',') != NULL ? strchr(list, ',') + 1 : NULL;
  if (list != NULL) snprintf(out, len, "%.*s", (int)strcspn(list, ","), list);
}

/* How many hosts the URL names, and its host, hostaddr and port lists (borrowed until
 * PQconninfoFree(*opts)). */
static int url_hosts(const char *url, PQconninfoOption **opts, const char *lists[3]) {
  static const char *const names[3] = {"host", "hostaddr", "port"};
  lists[0] = lists[1] = lists[2] = NULL;
  if ((*opts = PQconninfoParse(url, NULL)) == NULL) return 0;
  for (PQconninfoOption *o = *opts; o->keyword != NULL; o++)
    for (int k = 0; k < 3; k++)
      if (strcmp(o->keyword, names[k]) == 0) lists[k] = o->val;
  int n = 1;
  for (const char *h = lists[0] != NULL ? lists[0] : lists[1]; h != NULL && (h = strchr(h, ',')) != NULL; h++)
    n++;
  return n;
}

int ctxd__db_connect(const char *url, const char *password, int timeout_s, PGconn **out, char *err,
                     size_t errlen) {
  char timeout[16];
  snprintf(timeout, sizeof timeout, "%d", timeout_s);
  /* expand_dbname: the URL is expanded in place; it overrides the keys before it (the
   * deadlines: a URL may set its own) and the keys after it override what it says (one
   * host of several, below); an empty value sets nothing */
  char one[3][256] = {"", "", ""};
  const char *keys[] = {"keepalives",
                        "keepalives_idle",
                        "keepalives_interval",
                        "keepalives_count",
                        "tcp_user_timeout",
                        "dbname",
                        "connect_timeout",
                        "application_name",
                        "host",
                        "hostaddr",
                        "port",
                        password != NULL ? "password" : NULL,
                        NULL};
  const char *vals[] = {"1",    "10",   "5",    "3",    "30000",  url, timeout,
                        "ctxd", one[0], one[1], one[2], password, NULL};
  PGconn *c = PQconnectdbParams(keys, vals, 1);
  if (c == NULL) {
    snprintf(err, errlen, "out of memory");
    return CTXD_ENOMEM;
  }
  /* libpq moves on to a URL's next host only when a connection cannot be made at all: one
   * that is made and then fails (a proxy in front of a dead primary resets it, a server
   * refuses in its startup) ends the attempt. The later hosts are then tried one by one, so
   * a promoted replica is found whatever stands where the old primary was. */
  PQconninfoOption *opts = NULL;
  const char *lists[3];
  int hosts = PQstatus(c) != CONNECTION_OK ? url_hosts(url, &opts, lists) : 1;
  if (PQstatus(c) != CONNECTION_OK) copy_error(err, errlen, PQerrorMessage(c));
  for (int i = 1; i < hosts && PQstatus(c) != CONNECTION_OK; i++) {
    for (int k = 0; k < 3; k++) list_item(lists[k], i, one[k], sizeof one[k]);
    PQfinish(c);
    if ((c = PQconnectdbParams(keys, vals, 1)) == NULL) break;
  }
  PQconninfoFree(opts);
  if (c == NULL || PQstatus(c) != CONNECTION_OK) {
    /* the first attempt's error: it names every host libpq tried */
    PQfinish(c);
    return c == NULL ? CTXD_ENOMEM : CTXD_EDB;
  }
  PQsetNoticeProcessor(c, quiet, NULL);
  conn_state_t *st = calloc(1, sizeof *st);
  if (st != NULL && (!PQregisterEventProc(c, stmt_events, "ctxd statements", NULL) ||
                     !PQsetInstanceData(c, stmt_events, st)))
    free(st);
  *out = c;
  return 0;
}

int ctxd__db_usable(PGconn *c) {
  const conn_state_t *st = c != NULL ? state(c) : NULL;
  return c != NULL && PQstatus(c) == CONNECTION_OK && (st == NULL || !st->read_only);
}

int ctxd__db_open(const ctxd__config_t *cfg, PGconn **out, char *err, size_t errlen) {
  PGconn *c;
  int rc = ctxd__db_connect(cfg->database_url, cfg->database_password, (int)cfg->db_connect_timeout_s, &c,
                            err, errlen);
  if (rc != 0) return rc;
  /* behind a pooler the server session is not this connection's own: nothing to set, no
   * pid to end later */
  if (cfg->db_pooler) {
    *out = c;
    return 0;
  }
  /* A session cut off from the host inside a transaction keeps its locks (the inbox rows of
   * its batch, say) until the server notices the host is gone, which by the system's
   * keepalive defaults takes hours. The server watches this connection as the host does
   * (the same keepalives and tcp_user_timeout, the URL's or the defaults), and ends a
   * session left idle in a transaction. A statement, not the startup packet's options:
   * poolers refuse those. A setting left "", or one the server does not have, is not set. */
  const char *params[5] = {"", "", "", "", ""};
  char ms[24];
  if (cfg->db_idle_in_transaction_timeout_ms > 0) {
    snprintf(ms, sizeof ms, "%lld", (long long)cfg->db_idle_in_transaction_timeout_ms);
    params[0] = ms;
  }
  static const char *const tcp[] = {"keepalives_idle", "keepalives_interval", "keepalives_count",
                                    "tcp_user_timeout"};
  PQconninfoOption *opts = PQconninfo(c);
  int keepalives = 1;
  for (PQconninfoOption *o = opts; o != NULL && o->keyword != NULL; o++) {
    if (o->val == NULL) continue;
    if (strcmp(o->keyword, "keepalives") == 0) keepalives = strcmp(o->val, "0") != 0;
    for (size_t i = 0; i < sizeof tcp / sizeof tcp[0]; i++)
      if (strcmp(o->keyword, tcp[i]) == 0) params[1 + i] = o->val;
  }
  for (size_t i = 1; !keepalives && i < 4; i++) params[i] = "";
  /* its pid and start tell it from a later session with the same pid, for ctxd__db_keep */
  PGresult *r = ctxd__db_exec(c,
                              "SELECT a.pid, (extract(epoch FROM a.backend_start) * 1000000)::bigint, "
                              "(SELECT count(set_config(v.name, v.value, "
                              "false)) FROM (VALUES ('idle_in_transaction_session_timeout', $1), "
                              "('tcp_keepalives_idle', $2), ('tcp_keepalives_interval', $3), "
                              "('tcp_keepalives_count', $4), ('tcp_user_timeout', $5)) v (name, value) "
                              "JOIN pg_settings USING (name) WHERE v.value <> '') "
                              "FROM pg_stat_activity a WHERE a.pid = pg_backend_pid()",
                              5, params, &rc, err, errlen);
  PQconninfoFree(opts);
  conn_state_t *st = state(c);
  if (r != NULL && PQntuples(r) == 1 && st != NULL) {
    snprintf(st->pid, sizeof st->pid, "%s", PQgetvalue(r, 0, 0));
    snprintf(st->started, sizeof st->started, "%s", PQgetvalue(r, 0, 1));
  }
  PQclear(r);
  if (rc != 0) {
    PQfinish(c);
    return rc;
  }
  *out = c;
  return 0;
}

/* Ends the session `old` had at the server, if it lives on there (found by its pid and
 * start: the server may have given the pid to another session since), from c. */
static void end_session(PGconn *c, PGconn *old) {
  const conn_state_t *st = state(old);
  if (st == NULL || st->started[0] == '\0') return;
  const char *params[] = {st->pid, st->started};
  PQclear(ctxd__db_exec(
      c,
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
      "WHERE pid = $1::int AND (extract(epoch FROM backend_start) * 1000000)::bigint = $2::bigint",
      2, params, &(int){0}, NULL, 0));
}

int ctxd__db_keep(PGconn **conn, const ctxd__config_t *cfg, char *err, size_t errlen) {
  if (ctxd__db_usable(*conn)) return 0;
  PGconn *fresh;
  int rc = ctxd__db_open(cfg, &fresh, err, errlen);
  if (rc != 0) return rc;
  /* A connection lost to a cut link leaves its session running at the server, in the
   * middle of a batch's pipeline say: not idle, so no timeout of the server ends it, and
   * the batch run again here would wait for its locks (the inbox rows) for as long as the
   * server keeps it, hours without keepalives. It is ended first. */
  if (*conn != NULL) {
    end_session(fresh, *conn);
    PQfinish(*conn);
  }
  *conn = fresh;
  return 0;
}

static int classify(PGconn *c, const PGresult *r) {
  if (PQstatus(c) == CONNECTION_BAD) return CTXD_ECLOSED;
  const char *code = r != NULL ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
  conn_state_t *st = state(c);
  if (st != NULL) snprintf(st->sqlstate, sizeof st->sqlstate, "%s", code != NULL ? code : "");
  if (code == NULL) return CTXD_EDB;
  if (strcmp(code, "23505") == 0 || strcmp(code, "40001") == 0 || strcmp(code, "40P01") == 0)
    return CTXD_ECONFLICT;
  /* class 08: connection exception; 57P01..03: the server is shutting down */
  if (strncmp(code, "08", 2) == 0 || strncmp(code, "57P0", 4) == 0) return CTXD_ECLOSED;
  /* read-only: the server we reached is (or became) a standby. Only a new connection can
   * find the primary (target_session_attrs=read-write in the URL): this one counts as lost. */
  if (strcmp(code, "25006") == 0) {
    if (st != NULL) st->read_only = 1;
    return CTXD_ECLOSED;
  }
  return CTXD_EDB;
}

/* libpq's texts may quote the connection string or a statement's parameters: redacted */
static void copy_error(char *err, size_t errlen, const char *text) {
  if (err == NULL || errlen == 0) return;
  ctxd__redact(text, err, errlen);
  size_t n = strlen(err);
  while (n > 0 && (err[n - 1] == '\n' || err[n - 1] == ' ')) err[--n] = '\0';
}

/* The statement's error, or the connection's when there is no result to say it. */
static const char *error_text(PGconn *c, const PGresult *r) {
  return r != NULL && PQresultErrorMessage(r)[0] ? PQresultErrorMessage(r) : PQerrorMessage(c);
}

/* The pipeline's first error: later statements only report that they were skipped. */
static void pipeline_fail(PGconn *c, conn_state_t *st, const PGresult *r) {
  if (st->code != 0) return;
  st->code = classify(c, r);
  copy_error(st->err, sizeof st->err, error_text(c, r));
}

/* A statement's parameters: text, or as lengths[i] bytes in formats[i] (1: binary); both
 * NULL for text only. */
typedef struct {
  int n;
  const char *const *values;
  const int *lengths, *formats;
} params_t;

static PGresult *exec_now(PGconn *c, conn_state_t *st, const char *sql, const params_t *p) {
  char name[16];
  int fresh;
  const char *stmt = cache_find(st, sql, name, &fresh);
  if (fresh >= 0) {
    PGresult *r = PQprepare(c, stmt, sql, p->n, NULL);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
      cache_release(st, fresh);
      return r; /* the statement's own error, as executing it would have said */
    }
    PQclear(r);
  }
  return stmt != NULL ? PQexecPrepared(c, stmt, p->n, p->values, p->lengths, p->formats, 0)
                      : PQexecParams(c, sql, p->n, NULL, p->values, p->lengths, p->formats, 0);
}

/* Queues sql in the pipeline (a PREPARE first when it is new to the cache). */
static void send_stmt(PGconn *c, conn_state_t *st, const char *sql, const params_t *p, ctxd__db_result_cb cb,
                      void *arg, PGresult **keep) {
  char name[16];
  int fresh;
  const char *stmt = cache_find(st, sql, name, &fresh);
  if (fresh >= 0) {
    if (!PQsendPrepare(c, stmt, sql, p->n, NULL)) {
      cache_release(st, fresh);
      pipeline_fail(c, st, NULL);
      return;
    }
    st->pending[st->npending++] = (pending_t){.slot = fresh};
  }
  int sent = stmt != NULL ? PQsendQueryPrepared(c, stmt, p->n, p->values, p->lengths, p->formats, 0)
                          : PQsendQueryParams(c, sql, p->n, NULL, p->values, p->lengths, p->formats, 0);
  if (!sent) {
    pipeline_fail(c, st, NULL);
    return;
  }
  st->pending[st->npending++] = (pending_t){.slot = -1, .cb = cb, .arg = arg, .keep = keep};
}

/* Reads the results of every queued statement, in order. */
static void drain(PGconn *c, conn_state_t *st) {
  for (size_t i = 0; i < st->npending; i++) {
    pending_t *p = &st->pending[i];
    PGresult *r = PQgetResult(c);
    ExecStatusType s = r != NULL ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    int ok = s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK;
    if (r != NULL) {
      /* each statement's results end with a NULL */
      PGresult *more;
      while ((more = PQgetResult(c)) != NULL) PQclear(more);
    }
    if (!ok) pipeline_fail(c, st, r);
    if (p->slot >= 0 && !ok) cache_release(st, p->slot);
    /* once the pipeline failed its transaction only rolls back, and on a lost connection
     * libpq's results need not line up with the statements any more (an INSERT ...
     * RETURNING was handed an empty one): no result of it is used */
    ok &= st->code == 0;
    if (ok && p->cb != NULL) p->cb(p->arg, r);
    if (p->keep != NULL && ok)
      *p->keep = r;
    else
      PQclear(r);
  }
  st->npending = 0;
}

/* Asks the server for what it has and reads it. */
static void flush_and_drain(PGconn *c, conn_state_t *st) {
  if (st->npending == 0) return;
  if (!PQsendFlushRequest(c) || PQflush(c) != 0) pipeline_fail(c, st, NULL);
  drain(c, st);
}

static PGresult *report(PGconn *c, PGresult *r, int *code, char *err, size_t errlen) {
  ExecStatusType s = r != NULL ? PQresultStatus(r) : PGRES_FATAL_ERROR;
  if (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK) {
    *code = 0;
    return r;
  }
  *code = classify(c, r);
  copy_error(err, errlen, error_text(c, r));
  PQclear(r);
  return NULL;
}

static PGresult *exec_params(PGconn *c, const char *sql, const params_t *p, int *code, char *err,
                             size_t errlen) {
  conn_state_t *st = state(c);
  if (st == NULL || !pipelined(c)) return report(c, exec_now(c, st, sql, p), code, err, errlen);
  /* pipelined: every queued statement's result comes before this one's */
  PGresult *mine = NULL;
  if (st->code == 0) {
    send_stmt(c, st, sql, p, NULL, NULL, &mine);
    flush_and_drain(c, st);
  }
  if (st->code != 0) {
    PQclear(mine);
    *code = st->code;
    copy_error(err, errlen, st->err);
    return NULL;
  }
  *code = 0;
  return mine;
}

PGresult *ctxd__db_exec(PGconn *c, const char *sql, int nparams, const char *const *params, int *code,
                        char *err, size_t errlen) {
  params_t p = {nparams, params, NULL, NULL};
  return exec_params(c, sql, &p, code, err, errlen);
}

void ctxd__db_pipeline_begin(PGconn *c) {
  if (state(c) != NULL) PQenterPipelineMode(c);
}

static int queue_params(PGconn *c, const char *sql, const params_t *p, ctxd__db_result_cb cb, void *arg,
                        char *err, size_t errlen) {
  conn_state_t *st = state(c);
  if (st == NULL || !pipelined(c)) {
    int code;
    PGresult *r = exec_params(c, sql, p, &code, err, errlen);
    if (r != NULL && cb != NULL) cb(arg, r);
    PQclear(r);
    return code;
  }
  if (st->code == 0) send_stmt(c, st, sql, p, cb, arg, NULL);
  if (st->npending >= PIPELINE_MAX) flush_and_drain(c, st);
  if (st->code != 0) {
    copy_error(err, errlen, st->err);
    return st->code;
  }
  return 0;
}

int ctxd__db_queue(PGconn *c, const char *sql, int nparams, const char *const *params, ctxd__db_result_cb cb,
                   void *arg, char *err, size_t errlen) {
  params_t p = {nparams, params, NULL, NULL};
  return queue_params(c, sql, &p, cb, arg, err, errlen);
}

int ctxd__db_queue_binary(PGconn *c, const char *sql, int nparams, const char *const *params,
                          const int *lengths, const int *formats, ctxd__db_result_cb cb, void *arg, char *err,
                          size_t errlen) {
  params_t p = {nparams, params, lengths, formats};
  return queue_params(c, sql, &p, cb, arg, err, errlen);
}

int ctxd__db_pipeline_end(PGconn *c, char *err, size_t errlen) {
  conn_state_t *st = state(c);
  if (st == NULL || !pipelined(c)) return 0;
  if (!PQpipelineSync(c)) pipeline_fail(c, st, NULL);
  drain(c, st);
  PGresult *r;
  while ((r = PQgetResult(c)) != NULL) {
    int sync = PQresultStatus(r) == PGRES_PIPELINE_SYNC;
    PQclear(r);
    if (sync) break;
  }
  PQexitPipelineMode(c);
  int code = st->code;
  if (code != 0) copy_error(err, errlen, st->err);
  st->code = 0;
  st->err[0] = '\0';
  return code;
}

int ctxd__db_run(PGconn *c, const char *sql, int nparams, const char *const *params, char *err,
                 size_t errlen) {
  int code;
  PGresult *r = ctxd__db_exec(c, sql, nparams, params, &code, err, errlen);
  PQclear(r);
  return code;
}

int ctxd__db_script(PGconn *c, const char *sql, char *err, size_t errlen) {
  int code;
  PQclear(report(c, PQexec(c, sql), &code, err, errlen));
  return code;
}

const char *ctxd__db_sqlstate(PGconn *c) {
  conn_state_t *st = state(c);
  return st != NULL ? st->sqlstate : "";
}
