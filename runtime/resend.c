#include "resend.h"

#include <inttypes.h>
#include <stdlib.h>

#include <libpq-fe.h>

#include "db.h"
#include "uuid.h"

/* One statement: the selection and the copy commit together. A filter not given is NULL
 * and selects everything. */
static const char resend_sql[] =
    "WITH picked AS (SELECT message_id, exchange, message_type, body FROM ctxd.outbox_archive "
    "WHERE refused IS NULL AND routing_key = '' "
    "AND ($1::bigint[] IS NULL OR id = ANY($1::bigint[])) "
    "AND ($2::uuid IS NULL OR message_id = $2::uuid) "
    "AND ($3::text IS NULL OR message_type = $3) "
    "AND ($4::timestamptz IS NULL OR dispatched_at >= $4::timestamptz) "
    "AND ($5::timestamptz IS NULL OR dispatched_at < $5::timestamptz) "
    "ORDER BY id LIMIT $6::bigint) "
    "INSERT INTO ctxd.outbox (message_id, exchange, message_type, body, event) "
    "SELECT message_id, exchange, message_type, body, true FROM picked";

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
  char uuid[37], limit[24], err[1024];
  if (cli->message_id != NULL && ctxd__uuid_canonical(cli->message_id, uuid) != 0) {
    fprintf(stderr, "ctxd: message id '%s' is not a UUID\n", cli->message_id);
    return CTXD__EXIT_USAGE;
  }
  int oom;
  char *ids = ids_literal(cli, &oom);
  if (oom) return fail("out of memory", "");
  snprintf(limit, sizeof limit, "%ld", cli->limit);
  const char *params[] = {ids,        cli->message_id != NULL ? uuid : NULL, cli->message_type, cli->since,
                          cli->until, cli->limit > 0 ? limit : NULL};
  PGconn *c = NULL;
  if (ctxd__db_connect(cfg->database_url, cfg->database_password, (int)cfg->db_connect_timeout_s, &c, err,
                       sizeof err) != 0) {
    free(ids);
    return fail(err, "");
  }
  /* a time without a zone means UTC, as in `ctxd errors` */
  int code = ctxd__db_run(c, "BEGIN", 0, NULL, err, sizeof err);
  if (code == 0) code = ctxd__db_run(c, "SET LOCAL TIME ZONE 'UTC'", 0, NULL, err, sizeof err);
  PGresult *res = code == 0 ? ctxd__db_exec(c, resend_sql, 6, params, &code, err, sizeof err) : NULL;
  long queued = res != NULL ? strtol(PQcmdTuples(res), NULL, 10) : 0;
  PQclear(res);
  if (code == 0) code = ctxd__db_run(c, "COMMIT", 0, NULL, err, sizeof err);
  PQfinish(c);
  free(ids);
  if (code != 0) return fail("resending failed: ", err);
  fprintf(out, "%ld archived message%s queued to be sent again\n", queued, queued == 1 ? "" : "s");
  return CTXD__EXIT_OK;
}
