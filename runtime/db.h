/* PostgreSQL helpers shared by the workers and the start-up code. Each PGconn belongs to
 * one thread. */
#ifndef CTXD_RUNTIME_DB_H
#define CTXD_RUNTIME_DB_H

#include <stddef.h>

#include <libpq-fe.h>

/* Connects to url (connect_timeout applied). Returns 0 and *out (new, close with
 * PQfinish) or CTXD_EDB with the reason in err (no password in it). */
int ctxd__db_connect(const char *url, int timeout_s, PGconn **out, char *err, size_t errlen);

/* Runs sql with text params, as a statement prepared once per connection (connections of
 * ctxd__db_connect cache up to 192 statements; more run unprepared). Returns the result (new, free with PQclear) when its status
 * is COMMAND_OK or TUPLES_OK; otherwise NULL with the error text in err (if not NULL)
 * and *code set to CTXD_ECONFLICT (unique violation, serialization failure, deadlock),
 * CTXD_ECLOSED (connection lost) or CTXD_EDB. */
PGresult *ctxd__db_exec(PGconn *c, const char *sql, int nparams, const char *const *params,
                        int *code, char *err, size_t errlen);

/* Like ctxd__db_exec for statements whose rows are not wanted: 0 or the code. */
int ctxd__db_run(PGconn *c, const char *sql, int nparams, const char *const *params, char *err,
                 size_t errlen);

#endif
