/* PostgreSQL helpers shared by the workers and the start-up code. Each PGconn belongs to
 * one thread. */
#ifndef CTXD_RUNTIME_DB_H
#define CTXD_RUNTIME_DB_H

#include <stddef.h>

#include <libpq-fe.h>

#include "config.h"

/* Connects to url (connect_timeout applied), with password instead of the URL's when not
 * NULL. Returns 0 and *out (new, close with PQfinish) or CTXD_EDB with the reason in err.
 * Every error text of this file is redacted (redact.h): no password in it.
 *
 * Unless the URL says otherwise, the connection has TCP keepalives (idle 10 s, then every
 * 5 s, 3 of them) and a tcp_user_timeout of 30 s: without them a server that goes silent
 * (a cut link, a dead machine) leaves a statement or a commit waiting for its answer for
 * good (in practice the kernel gives up after about 15 minutes of retransmissions). */
int ctxd__db_connect(const char *url, const char *password, int timeout_s, PGconn **out, char *err,
                     size_t errlen);

/* Connects as the host does: ctxd__db_connect with cfg's database settings; then the
 * server watches the session as the host watches the connection (its tcp_keepalives_* and
 * tcp_user_timeout set to the connection's), ends it when left idle inside a transaction
 * (database.idle_in_transaction_timeout_ms), and its pid and start are noted for
 * ctxd__db_keep. 0 and *out (new, close with PQfinish) or the code with the reason in
 * err. */
int ctxd__db_open(const ctxd__config_t *cfg, PGconn **out, char *err, size_t errlen);

/* Whether c can still do a writer's work: connected, and no statement on it was refused
 * for a read-only server (SQLSTATE 25006, reported as CTXD_ECLOSED). */
int ctxd__db_usable(PGconn *c);

/* Keeps *conn usable for a thread that owns it: 0 when it is, or was replaced by a new
 * connection (ctxd__db_open) after the session of the broken one was ended at the server
 * if it still ran there (a connection lost to a cut link leaves it running); else the
 * code with the reason in err and *conn as it was (NULL, or the broken connection, kept
 * to end its session once a new one is made). */
int ctxd__db_keep(PGconn **conn, const ctxd__config_t *cfg, char *err, size_t errlen);

/* Runs sql with text params, as a statement prepared once per connection (connections of
 * ctxd__db_connect cache up to 192 statements; more run unprepared). Returns the result
 * (new, free with PQclear) when its status is COMMAND_OK or TUPLES_OK; otherwise NULL with
 * the error text in err (if not NULL) and *code set to CTXD_ECONFLICT (unique violation,
 * serialization failure, deadlock), CTXD_ECLOSED (connection lost, or the server is read-only)
 * or CTXD_EDB. */
PGresult *ctxd__db_exec(PGconn *c, const char *sql, int nparams, const char *const *params, int *code,
                        char *err, size_t errlen);

/* Like ctxd__db_exec for statements whose rows are not wanted: 0 or the code. */
int ctxd__db_run(PGconn *c, const char *sql, int nparams, const char *const *params, char *err,
                 size_t errlen);

/* Runs sql, which may hold several statements, as it is (unprepared, unparameterised: a
 * migration's text). 0, or the code as for ctxd__db_exec, its text in err and its SQLSTATE
 * kept for ctxd__db_sqlstate. */
int ctxd__db_script(PGconn *c, const char *sql, char *err, size_t errlen);

/* Pipelining (libpq pipeline mode): statements whose results are not needed at once are
 * sent without waiting, and a batch of them costs one round trip instead of one each.
 *
 * ctxd__db_pipeline_begin enters pipeline mode (a no-op on a connection not made by
 * ctxd__db_connect). In it, ctxd__db_queue sends a statement and returns; its result
 * reaches cb (if not NULL; the result is borrowed for the call) once it is read, and its
 * error is reported by the next ctxd__db_exec, ctxd__db_queue or ctxd__db_pipeline_end.
 * After an error the server skips every later statement until the end of the pipeline.
 * ctxd__db_exec in pipeline mode reads every queued result first, then its own.
 * ctxd__db_pipeline_end reads what is left and leaves pipeline mode: 0, or the first
 * error's code with its text in err. Outside pipeline mode ctxd__db_queue runs the
 * statement at once and ctxd__db_pipeline_end returns 0. */
typedef void (*ctxd__db_result_cb)(void *arg, const PGresult *r);
void ctxd__db_pipeline_begin(PGconn *c);
int ctxd__db_queue(PGconn *c, const char *sql, int nparams, const char *const *params, ctxd__db_result_cb cb,
                   void *arg, char *err, size_t errlen);
int ctxd__db_pipeline_end(PGconn *c, char *err, size_t errlen);

/* Like ctxd__db_queue, with parameter i sent as lengths[i] bytes in format formats[i]
 * (0 text, 1 binary): a bytea goes as it is, not as hex text twice its size. */
int ctxd__db_queue_binary(PGconn *c, const char *sql, int nparams, const char *const *params,
                          const int *lengths, const int *formats, ctxd__db_result_cb cb, void *arg, char *err,
                          size_t errlen);

/* The SQLSTATE of the last error on c ("" when it had none, when there was none yet, or
 * when c was not made by ctxd__db_connect); borrowed until the next statement on c. */
const char *ctxd__db_sqlstate(PGconn *c);

#endif
