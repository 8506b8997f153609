#include "migrate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "fail.h"

/* pg_advisory_lock key shared by every ctxd host on a database */
#define MIGRATE_LOCK_KEY "7274640001"

const ctxd_migration_t ctxd__runtime_migrations[] = {
    {1, "inbox",
     "CREATE TABLE ctxd.inbox (\n"
     "  endpoint text NOT NULL,\n"
     "  message_id uuid NOT NULL,\n"
     "  received_at timestamptz NOT NULL DEFAULT now(),\n"
     "  PRIMARY KEY (endpoint, message_id)\n"
     ");\n"
     "CREATE INDEX inbox_received_at ON ctxd.inbox (received_at);\n"},
    {2, "outbox",
     "CREATE TABLE ctxd.outbox (\n"
     "  id bigserial PRIMARY KEY,\n"
     "  message_id uuid NOT NULL,\n"
     "  exchange text NOT NULL,\n"
     "  message_type text NOT NULL,\n"
     "  body text NOT NULL,\n"
     "  created_at timestamptz NOT NULL DEFAULT now(),\n"
     "  xid xid8 NOT NULL DEFAULT pg_current_xact_id()\n"
     ");\n"},
    {3, "outbox relay",
     /* the writer holds a lease on its rows: the sweep takes only rows whose lease ended */
     "ALTER TABLE ctxd.outbox\n"
     "  ADD COLUMN lease_until timestamptz NOT NULL DEFAULT now(),\n"
     "  ADD COLUMN attempts int NOT NULL DEFAULT 0;\n"
     "CREATE INDEX outbox_lease ON ctxd.outbox (lease_until, id);\n"
     "CREATE TABLE ctxd.outbox_archive (\n"
     "  id bigint PRIMARY KEY,\n"
     "  message_id uuid NOT NULL,\n"
     "  exchange text NOT NULL,\n"
     "  message_type text NOT NULL,\n"
     "  body text NOT NULL,\n"
     "  created_at timestamptz NOT NULL,\n"
     "  dispatched_at timestamptz NOT NULL DEFAULT now(),\n"
     "  unroutable boolean NOT NULL DEFAULT false\n"
     ");\n"
     "CREATE INDEX outbox_archive_dispatched ON ctxd.outbox_archive (dispatched_at);\n"},
    {4, "time indexes as BRIN",
     /* rows arrive in time order, so a block-range index finds the expired ones as well
      * as a B-tree, for a fraction of the cost of every insert and of the space */
     "DROP INDEX ctxd.inbox_received_at;\n"
     "CREATE INDEX inbox_received_at ON ctxd.inbox USING brin (received_at);\n"
     "DROP INDEX ctxd.outbox_archive_dispatched;\n"
     "CREATE INDEX outbox_archive_dispatched ON ctxd.outbox_archive USING brin (dispatched_at);\n"},
    {5, "outbox without xid",
     /* the sweep takes rows by their lease, and only committed rows are visible to it: the
      * writing transaction's id was never read */
     "ALTER TABLE ctxd.outbox DROP COLUMN xid;\n"},
    {6, "attempts",
     /* runs of redelivered messages, committed before each run: a message that ends the
      * host again and again is counted across hosts and restarts */
     "CREATE TABLE ctxd.attempts (\n"
     "  endpoint text NOT NULL,\n"
     "  message_id uuid NOT NULL,\n"
     "  attempts int NOT NULL,\n"
     "  last_at timestamptz NOT NULL DEFAULT now(),\n"
     "  PRIMARY KEY (endpoint, message_id)\n"
     ");\n"},
    {7, "outbox publish properties",
     /* a row says how it is published, as MassTransit sends it: a reply through the default
      * exchange has a routing key, a reply target belongs to the requester and is never
      * declared, the AMQP correlation_id, headers and expiration. A row the broker refused
      * is archived with the broker's reason instead of being sent again. */
     "ALTER TABLE ctxd.outbox\n"
     "  ADD COLUMN routing_key text NOT NULL DEFAULT '',\n"
     "  ADD COLUMN correlation_id text,\n"
     "  ADD COLUMN headers text,\n"
     "  ADD COLUMN expires_at timestamptz,\n"
     "  ADD COLUMN no_declare boolean NOT NULL DEFAULT false;\n"
     "ALTER TABLE ctxd.outbox_archive\n"
     "  ADD COLUMN routing_key text NOT NULL DEFAULT '',\n"
     "  ADD COLUMN refused text;\n"},
    {8, "outbox event flag",
     /* the writer knows whether a row is an event (no subscriber is normal): the sweep
      * cannot tell from the names once an exchange is not the type's URN name */
     "ALTER TABLE ctxd.outbox ADD COLUMN event boolean NOT NULL DEFAULT false;\n"},
    {9, "failed messages",
     /* what the host ingests from its endpoints' _error queues (failstore.h, ingest.h):
      * one row per endpoint and message id, however often it failed, grouped by where and
      * how it failed; the action log says who did what to it */
     "CREATE TABLE ctxd.failed_messages (\n"
     "  id bigserial PRIMARY KEY,\n"
     "  endpoint text NOT NULL,\n"
     "  message_id uuid NOT NULL,\n"
     "  message_type text NOT NULL DEFAULT '',\n"
     "  exception_type text NOT NULL DEFAULT '',\n"
     "  exception_message text NOT NULL DEFAULT '',\n"
     "  stack_trace text NOT NULL DEFAULT '',\n"
     "  plugin text NOT NULL DEFAULT '',\n"
     "  attempts int NOT NULL DEFAULT 0,\n"
     "  failures int NOT NULL DEFAULT 1,\n"
     "  operator_retries int NOT NULL DEFAULT 0,\n"
     "  headers jsonb NOT NULL DEFAULT '{}',\n"
     "  properties jsonb NOT NULL DEFAULT '{}',\n"
     "  body bytea NOT NULL,\n"
     "  first_failed_at timestamptz NOT NULL,\n"
     "  last_failed_at timestamptz NOT NULL,\n"
     "  status text NOT NULL DEFAULT 'unresolved'\n"
     "    CHECK (status IN ('unresolved', 'retry_requested', 'resolved', 'archived')),\n"
     "  status_at timestamptz NOT NULL DEFAULT now(),\n"
     "  status_by text NOT NULL DEFAULT '',\n"
     "  group_id text GENERATED ALWAYS AS (left(md5(endpoint || E'\\n' || message_type || E'\\n' ||\n"
     "    exception_type), 16)) STORED,\n"
     "  UNIQUE (endpoint, message_id)\n"
     ");\n"
     "CREATE INDEX failed_messages_group ON ctxd.failed_messages (group_id, status);\n"
     "CREATE INDEX failed_messages_last ON ctxd.failed_messages (last_failed_at);\n"
     "CREATE TABLE ctxd.failed_actions (\n"
     "  id bigserial PRIMARY KEY,\n"
     "  failed_id bigint NOT NULL REFERENCES ctxd.failed_messages (id) ON DELETE CASCADE,\n"
     "  action text NOT NULL,\n"
     "  actor text NOT NULL,\n"
     "  at timestamptz NOT NULL DEFAULT now(),\n"
     "  detail text NOT NULL DEFAULT ''\n"
     ");\n"
     "CREATE INDEX failed_actions_failed ON ctxd.failed_actions (failed_id, at);\n"},
    {10, "set-aside outbox rows",
     /* the rows the broker refused, a few among days of archived ones, kept apart for the
      * console (the relay writes each here with its archive row). Not an index on the
      * archive: building one would lock out every host's archiving meanwhile; the copy of
      * the rows refused so far is a plain read. */
     "CREATE TABLE ctxd.outbox_set_aside (\n"
     "  id bigint PRIMARY KEY,\n"
     "  message_type text NOT NULL,\n"
     "  exchange text NOT NULL,\n"
     "  refused text NOT NULL,\n"
     "  at timestamptz NOT NULL DEFAULT now()\n"
     ");\n"
     "INSERT INTO ctxd.outbox_set_aside (id, message_type, exchange, refused, at)\n"
     "  SELECT id, message_type, exchange, refused, dispatched_at FROM ctxd.outbox_archive\n"
     "  WHERE refused IS NOT NULL;\n"},
    {11, "scheduled messages",
     /* encoded when scheduled; the relay moves due rows to the outbox, oldest first, by the
      * index on due_at: pending rows far in the future are never read */
     "CREATE TABLE ctxd.scheduled (\n"
     "  id uuid PRIMARY KEY,\n"
     "  due_at timestamptz NOT NULL,\n"
     "  exchange text NOT NULL,\n"
     "  message_type text NOT NULL,\n"
     "  body text NOT NULL,\n"
     "  routing_key text NOT NULL DEFAULT '',\n"
     "  correlation_id text,\n"
     "  headers text,\n"
     "  expires_at timestamptz,\n"
     "  no_declare boolean NOT NULL DEFAULT false,\n"
     "  event boolean NOT NULL DEFAULT false,\n"
     "  created_at timestamptz NOT NULL DEFAULT now()\n"
     ");\n"
     "CREATE INDEX scheduled_due ON ctxd.scheduled (due_at);\n"},
    {12, "sagas",
     "CREATE TABLE ctxd.sagas (\n"
     "  saga text NOT NULL,\n"
     "  key text NOT NULL,\n"
     "  state jsonb NOT NULL DEFAULT '{}',\n"
     "  version bigint NOT NULL DEFAULT 0,\n"
     "  created_at timestamptz NOT NULL DEFAULT now(),\n"
     "  updated_at timestamptz NOT NULL DEFAULT now(),\n"
     "  finished_at timestamptz,\n"
     "  PRIMARY KEY (saga, key)\n"
     ");\n"
     "CREATE INDEX sagas_finished ON ctxd.sagas (finished_at) WHERE finished_at IS NOT NULL;\n"},
    {13, "external calls",
     /* next_at is both the retry time and the claim's lease: a call whose executor died is
      * claimed again once it passes. attempts counts claims (runs), failures the runs that
      * asked to retry: max_attempts bounds failures, so a run lost with its host runs again */
     "CREATE TABLE ctxd.calls (\n"
     "  id bigserial PRIMARY KEY,\n"
     "  plugin text NOT NULL,\n"
     "  kind text NOT NULL,\n"
     "  idempotency_key text NOT NULL,\n"
     "  payload text NOT NULL,\n"
     "  status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'done', 'failed')),\n"
     "  attempts int NOT NULL DEFAULT 0,\n"
     "  failures int NOT NULL DEFAULT 0,\n"
     "  next_at timestamptz NOT NULL DEFAULT now(),\n"
     "  outcome text,\n"
     "  created_at timestamptz NOT NULL DEFAULT now(),\n"
     "  finished_at timestamptz,\n"
     "  UNIQUE (plugin, kind, idempotency_key)\n"
     ");\n"
     "CREATE INDEX calls_pending ON ctxd.calls (plugin, kind, next_at) WHERE status = 'pending';\n"
     "CREATE INDEX calls_finished ON ctxd.calls (finished_at) WHERE finished_at IS NOT NULL;\n"},
    {14, "outbox archive keeps how rows were sent",
     /* `ctxd outbox resend` sends a row again as it was sent: an event or a command, with
      * its headers, correlation id and expiration; a reply target (no_declare) is never
      * sent again. Rows archived before have event NULL: whether they were replies is not
      * known either, so they are re-sent only by id, as commands. */
     "ALTER TABLE ctxd.outbox_archive\n"
     "  ADD COLUMN event boolean,\n"
     "  ADD COLUMN correlation_id text,\n"
     "  ADD COLUMN headers text,\n"
     "  ADD COLUMN expires_at timestamptz,\n"
     "  ADD COLUMN no_declare boolean NOT NULL DEFAULT false;\n"},
    {15, "outbox lease index on the lease alone",
     /* On (lease_until, id) the index offered the planner a way to find rows by id (the
      * archive's id = ANY(...), the sweep's join) that scans all of it once per id. With
      * the statistics an outbox gets while nearly empty (its usual state) and a backlog
      * behind (a database or broker outage), that path was taken: the relay's statements
      * grew with the square of the backlog, seconds each at tens of thousands of rows. On
      * lease_until alone, rows are found by id through the primary key only. */
     "DROP INDEX ctxd.outbox_lease;\n"
     "CREATE INDEX outbox_lease ON ctxd.outbox (lease_until);\n"},
    {0, NULL, NULL},
};

void ctxd__migration_checksum(const char *s, char out[17]) {
  uint64_t h = 1469598103934665603ULL;
  for (; *s; s++) {
    h ^= (unsigned char)*s;
    h *= 1099511628211ULL;
  }
  snprintf(out, 17, "%016llx", (unsigned long long)h);
}

static int apply_one(PGconn *c, const char *scope, const ctxd_migration_t *m, char *err, size_t errlen) {
  char sum[17], version[16], dberr[512];
  ctxd__migration_checksum(m->sql, sum);
  snprintf(version, sizeof version, "%d", m->version);
  const char *params[] = {scope, version, m->name != NULL ? m->name : "", sum};
  if (ctxd__db_run(c, "BEGIN", 0, NULL, dberr, sizeof dberr) != 0) goto failed;
  if (ctxd__db_script(c, m->sql, dberr, sizeof dberr) != 0) {
    ctxd__db_run(c, "ROLLBACK", 0, NULL, NULL, 0);
    goto failed;
  }
  if (ctxd__db_run(c,
                   "INSERT INTO ctxd.migrations (scope, version, name, checksum) "
                   "VALUES ($1, $2, $3, $4)",
                   4, params, dberr, sizeof dberr) != 0 ||
      ctxd__db_run(c, "COMMIT", 0, NULL, dberr, sizeof dberr) != 0) {
    ctxd__db_run(c, "ROLLBACK", 0, NULL, NULL, 0);
    goto failed;
  }
  return 0;
failed:
  dberr[strcspn(dberr, "\n")] = '\0';
  snprintf(err, errlen, "migrations of '%s': v%d (%s) failed: %s", scope, m->version,
           m->name != NULL ? m->name : "", dberr);
  return CTXD_EMIGRATION;
}

/* Creates the schema and the migrations table: only for a run that applies something,
 * since a role with only DML rights may not run CREATE, even with IF NOT EXISTS. */
static int create_bookkeeping(PGconn *c, char *err, size_t errlen) {
  char dberr[512];
  if (ctxd__db_run(c, "CREATE SCHEMA IF NOT EXISTS ctxd", 0, NULL, dberr, sizeof dberr) != 0 ||
      ctxd__db_run(c,
                   "CREATE TABLE IF NOT EXISTS ctxd.migrations ("
                   " scope text NOT NULL, version int NOT NULL, name text NOT NULL,"
                   " checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now(),"
                   " PRIMARY KEY (scope, version))",
                   0, NULL, dberr, sizeof dberr) != 0)
    return ctxd__fail(err, errlen, CTXD_EMIGRATION, "cannot create ctxd.migrations: %s", dberr);
  return 0;
}

/* Sets *applied to how many of the scope's migrations the database holds (0 when it has no
 * ctxd.migrations yet), after checking them against list (n entries). Reads only. */
static int read_applied(PGconn *c, const char *scope, const ctxd_migration_t *list, int n, int *applied,
                        char *err, size_t errlen) {
  char dberr[512];
  int code;
  *applied = 0;
  PGresult *r = ctxd__db_exec(c, "SELECT to_regclass('ctxd.migrations') IS NOT NULL", 0, NULL, &code, dberr,
                              sizeof dberr);
  if (r == NULL) return ctxd__fail(err, errlen, CTXD_EMIGRATION, "%s", dberr);
  int exists = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
  PQclear(r);
  if (!exists) return 0;
  const char *params[] = {scope};
  r = ctxd__db_exec(c,
                    "SELECT version, checksum, name FROM ctxd.migrations "
                    "WHERE scope = $1 ORDER BY version",
                    1, params, &code, dberr, sizeof dberr);
  if (r == NULL) return ctxd__fail(err, errlen, CTXD_EMIGRATION, "%s", dberr);
  int rc = 0;
  *applied = PQntuples(r);
  for (int i = 0; i < *applied && rc == 0; i++) {
    int v = atoi(PQgetvalue(r, i, 0));
    char sum[17];
    if (v > n) {
      rc = ctxd__fail(err, errlen, CTXD_EMIGRATION,
                      "the database has v%d (%s), which this build does not know: a newer build "
                      "migrated it",
                      v, PQgetvalue(r, i, 2));
      break;
    }
    ctxd__migration_checksum(list[v - 1].sql, sum);
    if (strcmp(sum, PQgetvalue(r, i, 1)) != 0)
      rc = ctxd__fail(err, errlen, CTXD_EMIGRATION,
                      "v%d (%s) was changed after it was applied (checksum %s, applied %s); add a "
                      "new migration instead",
                      v, list[v - 1].name, sum, PQgetvalue(r, i, 1));
  }
  PQclear(r);
  return rc;
}

/* Lists the versions from..n of list into buf ("v6 (attempts), v7 (...)"). */
static void name_missing(const ctxd_migration_t *list, int from, int n, char *buf, size_t buflen) {
  size_t len = 0;
  buf[0] = '\0';
  for (int v = from; v <= n && len < buflen; v++) {
    int w = snprintf(buf + len, buflen - len, "%sv%d (%s)", v > from ? ", " : "", v,
                     list[v - 1].name != NULL ? list[v - 1].name : "");
    if (w < 0) break;
    len += (size_t)w;
  }
}

static int migrate_locked(PGconn *c, const char *scope, const ctxd_migration_t *list, int apply, char *err,
                          size_t errlen) {
  char what[768], missing[512];
  int n = 0, applied;
  while (list != NULL && list[n].sql != NULL) {
    if (list[n].version != n + 1)
      return ctxd__fail(err, errlen, CTXD_EMIGRATION,
                        "migrations of '%s': versions must run 1, 2, 3, ...: entry %d has version %d", scope,
                        n, list[n].version);
    n++;
  }
  if (read_applied(c, scope, list, n, &applied, what, sizeof what) != 0)
    return ctxd__fail(err, errlen, CTXD_EMIGRATION, "migrations of '%s': %s", scope, what);
  if (applied == n) return 0;
  if (!apply) {
    name_missing(list, applied + 1, n, missing, sizeof missing);
    return ctxd__fail(err, errlen, CTXD_ENOENT, "'%s' lacks %s", scope, missing);
  }
  if (create_bookkeeping(c, what, sizeof what) != 0)
    return ctxd__fail(err, errlen, CTXD_EMIGRATION, "migrations of '%s': %s", scope, what);
  int rc = 0;
  for (int v = applied + 1; v <= n && rc == 0; v++) rc = apply_one(c, scope, &list[v - 1], err, errlen);
  return rc;
}

int ctxd__migrate(PGconn *c, const char *scope, const ctxd_migration_t *list, int apply, char *err,
                  size_t errlen) {
  char dberr[512];
  if (ctxd__db_run(c, "SELECT pg_advisory_lock(" MIGRATE_LOCK_KEY ")", 0, NULL, dberr, sizeof dberr) != 0)
    return ctxd__fail(err, errlen, CTXD_EMIGRATION, "migrations of '%s': %s", scope, dberr);
  int rc = migrate_locked(c, scope, list, apply, err, errlen);
  ctxd__db_run(c, "SELECT pg_advisory_unlock(" MIGRATE_LOCK_KEY ")", 0, NULL, NULL, 0);
  return rc;
}
