#include "resend.h"

#include <inttypes.h>
#include <stdlib.h>

#include <libpq-fe.h>

#include "db.h"
#include "uuid.h"

/* One statement: the selection and the copy commit together. A filter not given is NULL
 * and selects everything. A row goes back as it was sent (event or command, headers,
 * correlation id, expiration). Replies (through the default exchange, or to a requester's
 * exchange: no_declare) and rows the broker refused never do: their requester is gone.
 * Commands only with $7, as one may make another system act again (refund again). A row
 * archived before the archive kept how it was sent (event NULL) may have been a reply to a
 * requester's exchange (no_declare was not kept either): only by id ($1), as a command. Answers the rows
 * queued, the commands left out, and how many queued rows were sent more than $8 seconds
 * (the inbox retention) ago. */
static const char resend_sql[] =
    "WITH matching AS (SELECT id, message_id, exchange, message_type, body, event, correlation_id, headers, "
    "expires_at, dispatched_at, coalesce(event, false) OR $7::boolean AS sendable FROM ctxd.outbox_archive "
    "WHERE refused IS NULL AND routing_key = '' AND NOT no_declare "
    "AND ($1::bigint[] IS NULL AND event IS NOT NULL OR id = ANY($1::bigint[])) "
    "AND ($2::uuid IS NULL OR message_id = $2::uuid) "
    "AND ($3::text IS NULL OR message_type = $3) "
    "AND ($4::timestamptz IS NULL OR dispatched_at >= $4::timestamptz) "
    "AND ($5::timestamptz IS NULL OR dispatched_at < $5::timestamptz)), "
    "picked AS (SELECT * FROM matching WHERE sendable ORDER BY id LIMIT $6::bigint), "
    "queued AS (INSERT INTO ctxd.outbox (message_id, exchange, message_type, body, event, correlation_id, "
    "headers, expires_at) SELECT message_id, exchange, message_type, body, coalesce(event, false), "
    "correlation_id, headers, expires_at FROM picked ORDER BY id RETURNING 1) "
    "SELECT (SELECT count(*) FROM queued), (SELECT count(*) FROM matching WHERE NOT sendable), "
    "(SELECT count(*) FROM picked WHERE dispatched_at < now() - $8::bigint * interval '1 second')";

/* The ids as a PostgreSQL array literal ("{1,2}") in a new string (free() it), or NULL
 * when there are none or memory ran out (*oom set). */
static char *ids_literal(const ctxd__cli_t *cli, int *oom) {
  *oom = 0;
  if (cli->nids == 0) return NULL;
  char *buf = malloc(cli->nids * 21 + 3);
  if (buf == NULL) {
    *oom = 1;
    return NULL;
  }
  size_t len = 0;
  buf[len++] = '{';
  for (size_t i = 0; i < cli->nids; i++)
    len += (size_t)sprintf(buf + len, "%s%" PRId64, i > 0 ? "," : "", cli->ids[i]);
  buf[len++] = '}';
  buf[len] = '\0';
  return buf;
}

static int fail(const char *what, const char *why) {
  fprintf(stderr, "ctxd: %s%s\n", what, why);
  return CTXD__EXIT_FAILURE;
}

int ctxd__outbox_resend(const ctxd__config_t *cfg, const ctxd__cli_t *cli, FILE *out) {
  char uuid[37], limit[24], retention[24], err[1024];
  if (cli->message_id != NULL && ctxd__uuid_canonical(cli->message_id, uuid) != 0) {
    fprintf(stderr, "ctxd: message id '%s' is not a UUID\n", cli->message_id);
    return CTXD__EXIT_USAGE;
  }
  int oom;
  char *ids = ids_literal(cli, &oom);
  if (oom) return fail("out of memory", "");
  snprintf(limit, sizeof limit, "%ld", cli->limit);
  snprintf(retention, sizeof retention, "%" PRId64, cfg->inbox_retention_s);
  const char *params[] = {ids,
                          cli->message_id != NULL ? uuid : NULL,
                          cli->message_type,
                          cli->since,
                          cli->until,
                          cli->limit > 0 ? limit : NULL,
                          cli->include_commands ? "t" : "f",
                          retention};
  PGconn *c = NULL;
  if (ctxd__db_open(cfg, &c, err, sizeof err) != 0) {
    free(ids);
    return fail(err, "");
  }
  /* a time without a zone means UTC, as in `ctxd errors` */
  int code = ctxd__db_run(c, "BEGIN", 0, NULL, err, sizeof err);
  if (code == 0) code = ctxd__db_run(c, "SET LOCAL TIME ZONE 'UTC'", 0, NULL, err, sizeof err);
  PGresult *res = code == 0 ? ctxd__db_exec(c, resend_sql, 8, params, &code, err, sizeof err) : NULL;
  long queued = 0, commands = 0, old = 0;
  if (res != NULL && PQntuples(res) == 1) {
    queued = strtol(PQgetvalue(res, 0, 0), NULL, 10);
    commands = strtol(PQgetvalue(res, 0, 1), NULL, 10);
    old = strtol(PQgetvalue(res, 0, 2), NULL, 10);
  }
  PQclear(res);
  if (code == 0) code = ctxd__db_run(c, "COMMIT", 0, NULL, err, sizeof err);
  PQfinish(c);
  free(ids);
  if (code != 0) return fail("resending failed: ", err);
  fprintf(out, "%ld archived message%s queued to be sent again\n", queued, queued == 1 ? "" : "s");
  if (commands > 0)
    fprintf(out, "%ld command%s left out: --include-commands sends them too\n", commands,
            commands == 1 ? "" : "s");
  if (old > 0)
    fprintf(stderr,
            "ctxd: warning: %ld of them were sent more than inbox.retention_s (%" PRId64
            " s) ago: a consumer that handled one may have forgotten its id and handle it again\n",
            old, cfg->inbox_retention_s);
  return CTXD__EXIT_OK;
}
