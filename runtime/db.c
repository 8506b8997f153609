#include "db.h"

#include <stdio.h>
#include <string.h>

#include <ctxd/errno.h>

/* NOTICEs ("schema already exists, skipping") are not for operators, and libpq's default
 * would print them to stderr in the middle of the JSON log lines. */
static void quiet(void *arg, const char *message) {
  (void)arg;
  (void)message;
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
  PGresult *r = PQexecParams(c, sql, nparams, NULL, params, NULL, NULL, 0);
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
