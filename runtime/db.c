#include "db.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-events.h>

#include <ctxd/errno.h>

/* NOTICEs ("schema already exists, skipping") are not for operators, and libpq's default
 * would print them to stderr in the middle of the JSON log lines. */
static void quiet(void *arg, const char *message) {
  (void)arg;
  (void)message;
}

/* Prepared statements, cached per connection: a handler runs the same few statements for
 * every message, and parsing and planning them each time was the largest share of the
 * database's work in the benchmarks. The cache hangs on the PGconn as libpq instance
 * data, so it dies with the connection (PQfinish) and is emptied on PQreset. */
#define STMT_SLOTS 256

typedef struct {
  uint64_t hash;
  char *sql; /* NULL: free slot */
} stmt_t;

typedef struct {
  stmt_t slots[STMT_SLOTS];
  int used;
} stmt_cache_t;

static void cache_clear(stmt_cache_t *cache) {
  for (int i = 0; i < STMT_SLOTS; i++) free(cache->slots[i].sql);
  memset(cache, 0, sizeof *cache);
}

static int stmt_events(PGEventId id, void *event, void *pass) {
  (void)pass;
  if (id == PGEVT_CONNDESTROY || id == PGEVT_CONNRESET) {
    PGconn *c = id == PGEVT_CONNDESTROY ? ((PGEventConnDestroy *)event)->conn : ((PGEventConnReset *)event)->conn;
    stmt_cache_t *cache = PQinstanceData(c, stmt_events);
    if (cache != NULL) cache_clear(cache);
    if (id == PGEVT_CONNDESTROY) free(cache);
  }
  return 1;
}

static uint64_t fnv(const char *s) {
  uint64_t h = 1469598103934665603ULL;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
  return h;
}

/* The name of sql's prepared statement on c ("s<slot>"), preparing it on first use.
 * NULL when it cannot be cached (no cache, cache full): run it unprepared. */
static const char *prepared(PGconn *c, const char *sql, int nparams, char name[16], PGresult **failed) {
  stmt_cache_t *cache = PQinstanceData(c, stmt_events);
  *failed = NULL;
  if (cache == NULL) return NULL;
  uint64_t h = fnv(sql);
  size_t i = (size_t)(h % STMT_SLOTS);
  for (int probe = 0; probe < STMT_SLOTS; probe++, i = (i + 1) % STMT_SLOTS) {
    stmt_t *st = &cache->slots[i];
    if (st->sql != NULL && st->hash == h && strcmp(st->sql, sql) == 0) {
      snprintf(name, 16, "s%zu", i);
      return name;
    }
    if (st->sql != NULL) continue;
    if (cache->used >= STMT_SLOTS * 3 / 4) return NULL; /* keep probes short */
    char *copy = strdup(sql);
    if (copy == NULL) return NULL;
    snprintf(name, 16, "s%zu", i);
    PGresult *r = PQprepare(c, name, sql, nparams, NULL);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
      free(copy);
      *failed = r; /* the statement's own error, as executing it would have said */
      return NULL;
    }
    PQclear(r);
    st->sql = copy;
    st->hash = h;
    cache->used++;
    return name;
  }
  return NULL;
}

int ctxd__db_connect(const char *url, int timeout_s, PGconn **out, char *err, size_t errlen) {
  char timeout[16];
  snprintf(timeout, sizeof timeout, "%d", timeout_s);
  const char *keys[] = {"dbname", "connect_timeout", "application_name", NULL};
  const char *vals[] = {url, timeout, "ctxd", NULL};
  /* expand_dbname: the URL supplies everything, the later keys only fill gaps */
  PGconn *c = PQconnectdbParams(keys, vals, 1);
  if (c == NULL) {
    snprintf(err, errlen, "out of memory");
    return CTXD_ENOMEM;
  }
  if (PQstatus(c) != CONNECTION_OK) {
    /* libpq's message names host and port, never the password */
    snprintf(err, errlen, "%s", PQerrorMessage(c));
    size_t n = strlen(err);
    while (n > 0 && (err[n - 1] == '\n' || err[n - 1] == ' ')) err[--n] = '\0';
    PQfinish(c);
    return CTXD_EDB;
  }
  PQsetNoticeProcessor(c, quiet, NULL);
  stmt_cache_t *cache = calloc(1, sizeof *cache);
  if (cache != NULL && (!PQregisterEventProc(c, stmt_events, "ctxd statements", NULL) ||
                        !PQsetInstanceData(c, stmt_events, cache)))
    free(cache);
  *out = c;
  return 0;
}

static int classify(PGconn *c, const PGresult *r) {
  if (PQstatus(c) == CONNECTION_BAD) return CTXD_ECLOSED;
  const char *state = r != NULL ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
  if (state == NULL) return CTXD_EDB;
  if (strcmp(state, "23505") == 0 || strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0)
    return CTXD_ECONFLICT;
  /* class 08: connection exception; 57P01..03: the server is shutting down */
  if (strncmp(state, "08", 2) == 0 || strncmp(state, "57P0", 4) == 0) return CTXD_ECLOSED;
  return CTXD_EDB;
}

PGresult *ctxd__db_exec(PGconn *c, const char *sql, int nparams, const char *const *params,
                        int *code, char *err, size_t errlen) {
  char name[16];
  PGresult *r;
  const char *stmt = prepared(c, sql, nparams, name, &r);
  if (r == NULL)
    r = stmt != NULL ? PQexecPrepared(c, stmt, nparams, params, NULL, NULL, 0)
                     : PQexecParams(c, sql, nparams, NULL, params, NULL, NULL, 0);
  ExecStatusType st = r != NULL ? PQresultStatus(r) : PGRES_FATAL_ERROR;
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
    *code = 0;
    return r;
  }
  *code = classify(c, r);
  if (err != NULL) {
    snprintf(err, errlen, "%s", r != NULL ? PQresultErrorMessage(r) : PQerrorMessage(c));
    size_t n = strlen(err);
    while (n > 0 && (err[n - 1] == '\n' || err[n - 1] == ' ')) err[--n] = '\0';
  }
  PQclear(r);
  return NULL;
}

int ctxd__db_run(PGconn *c, const char *sql, int nparams, const char *const *params, char *err,
                 size_t errlen) {
  int code;
  PGresult *r = ctxd__db_exec(c, sql, nparams, params, &code, err, errlen);
  PQclear(r);
  return code;
}
