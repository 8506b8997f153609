#include "relay.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "db.h"
#include "log.h"

/* pg_try_advisory_lock key: one host at a time deletes expired rows */
#define CLEANUP_LOCK_KEY "7274640002"
#define SWEEP_LIMIT 500
#define CLEANUP_BATCH 1000
/* batches per table per run, so one run never holds the relay (and the archiving of what
 * the broker confirmed) for long; a run that stopped there has more to delete and the next
 * one follows after a sweep interval, so deleting keeps pace with a sustained rate */
#define CLEANUP_MAX_BATCHES 10
/* no scheduled message is pending */
#define NO_DUE INT64_MIN
/* a tick again this soon when a due message was not moved (it fell due during the tick, or
 * another host's relay holds it); while a tick moves nothing and a due row is still there
 * (someone holds it), twice as late each time, up to a tick: never a busy loop */
#define DUE_AGAIN_MS 5

/* Ids of rows the broker confirmed, waiting to be archived: their rows are freed once
 * handed over (a body is of no use to the archive, which reads the row from the outbox),
 * so a database that falls behind costs the host 9 bytes a row, not the row. */
typedef struct {
  int64_t *id;
  unsigned char *unroutable;
  size_t n, cap;
} confirmed_t;

struct ctxd__relay_s {
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  confirmed_t confirmed;   /* under mu */
  ctxd__outrows_t refused; /* under mu: rows the broker refused, archived with its reason */
  int stopping;
  const ctxd__config_t *cfg;
  ctxd__mailbox_t *mailbox;
  ctxd__mail_cb swept;
  PGconn *conn;
  int64_t next_cleanup_ms;
  ctxd__relay_stats_t stats; /* under mu */
  int64_t wake_ms;           /* under mu: a tick wanted then (ctxd__clock_ms), 0: none */
  int held;                  /* under mu: no sweeps (ctxd__relay_hold) */
  char *renew;               /* under mu: ids whose lease to renew before the next sweep, or NULL */
  int64_t renew_ms;          /* under mu: the lease they get, from now */
};

/* 1 when the relay has a usable connection, making one if need be; what it found is what
 * /readyz says of the database (the relay connects every tick, traffic or not). */
static int connected(ctxd__relay_t *r) {
  char err[512];
  int ok = ctxd__db_keep(&r->conn, r->cfg, err, sizeof err) == 0;
  if (!ok) ctxd__log(CTXD__LOG_WARN, "host", "outbox relay: database unreachable: %s", err);
  pthread_mutex_lock(&r->mu);
  r->stats.db_ok = ok;
  pthread_mutex_unlock(&r->mu);
  return ok;
}

/* The ids of c matching `unroutable` (-1: any), as an array literal (new, free with
 * free()), or NULL when memory runs out. */
static char *id_array(const confirmed_t *c, int unroutable) {
  char *buf = malloc(c->n * 21 + 3);
  if (buf == NULL) return NULL;
  size_t len = 0;
  buf[len++] = '{';
  for (size_t i = 0; i < c->n; i++) {
    if (unroutable >= 0 && c->unroutable[i] != unroutable) continue;
    len += (size_t)sprintf(buf + len, "%s%lld", len > 1 ? "," : "", (long long)c->id[i]);
  }
  buf[len++] = '}';
  buf[len] = '\0';
  return buf;
}

static void confirmed_free(confirmed_t *c) {
  free(c->id);
  free(c->unroutable);
  *c = (confirmed_t){0};
}

/* What an outbox row keeps in the archive: enough to send it again as it was sent
 * (`ctxd outbox resend`). */
#define ARCHIVED_COLUMNS                                                                                     \
  "id, message_id, exchange, message_type, body, created_at, routing_key, event, correlation_id, headers, "  \
  "expires_at, no_declare"

/* Moves the rows the broker refused to the archive with its reason, and notes them in
 * ctxd.outbox_set_aside for the console, one statement each (they are rare). On failure a row stays in the outbox and is tried again by the sweep. */
static void archive_refused(ctxd__relay_t *r, const ctxd__outrows_t *rows) {
  char err[512], id[24];
  for (const ctxd__outrow_t *row = rows->head; row != NULL; row = row->next) {
    if (row->refused == NULL) continue;
    snprintf(id, sizeof id, "%lld", (long long)row->id);
    const char *params[] = {id, row->refused};
    if (ctxd__db_run(r->conn,
                     "WITH moved AS (DELETE FROM ctxd.outbox WHERE id = $1::bigint "
                     "RETURNING " ARCHIVED_COLUMNS "), "
                     "aside AS (INSERT INTO ctxd.outbox_set_aside (id, message_type, exchange, refused) "
                     "SELECT id, message_type, exchange, $2 FROM moved) "
                     "INSERT INTO ctxd.outbox_archive (" ARCHIVED_COLUMNS ", refused) "
                     "SELECT " ARCHIVED_COLUMNS ", $2 FROM moved",
                     2, params, err, sizeof err) != 0)
      ctxd__log(CTXD__LOG_WARN, "host", "outbox relay: archiving a refused row failed: %s", err);
  }
}

/* Moves the refused rows and the confirmed ones to the archive, the confirmed ones in one
 * statement. On failure the rows stay in the outbox and the sweep publishes them again
 * once their lease ends: consumers drop the duplicate by message id. */
static void archive(ctxd__relay_t *r, ctxd__outrows_t *refused, confirmed_t *confirmed) {
  char err[512];
  if (refused->head != NULL && connected(r)) archive_refused(r, refused);
  ctxd__outrows_free(refused);
  if (confirmed->n == 0) return;
  char *all = id_array(confirmed, -1), *bad = id_array(confirmed, 1);
  if (all != NULL && bad != NULL && connected(r)) {
    const char *params[] = {all, bad};
    if (ctxd__db_run(r->conn,
                     "WITH moved AS (DELETE FROM ctxd.outbox WHERE id = ANY($1::bigint[]) "
                     "RETURNING " ARCHIVED_COLUMNS ") "
                     "INSERT INTO ctxd.outbox_archive (" ARCHIVED_COLUMNS ", unroutable) "
                     "SELECT " ARCHIVED_COLUMNS ", id = ANY($2::bigint[]) FROM moved",
                     2, params, err, sizeof err) != 0)
      ctxd__log(CTXD__LOG_WARN, "host", "outbox relay: archiving failed (rows will be sent again): %s", err);
  }
  free(all);
  free(bad);
  confirmed_free(confirmed);
}

static int cmp_id(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

/* Marks in claimed[0..n) (sorted) the ids the broker confirmed since this tick's archiving
 * (their confirms came while it ran): such a row is in the outbox only until archived. */
static void mark_confirmed(ctxd__relay_t *r, const int64_t *claimed, unsigned char *hit, size_t n) {
  pthread_mutex_lock(&r->mu);
  for (size_t i = 0; i < r->confirmed.n; i++) {
    const int64_t *at = bsearch(&r->confirmed.id[i], claimed, n, sizeof *claimed, cmp_id);
    if (at != NULL) hit[at - claimed] = 1;
  }
  pthread_mutex_unlock(&r->mu);
}

/* Claims rows whose lease ended (their writer did not get them confirmed in time) and
 * hands them to the loop. SKIP LOCKED and the lease keep hosts sharing a database from
 * sending the same rows at once or waiting on each other. */
static int sweep(ctxd__relay_t *r) {
  if (!connected(r)) return 0;
  char lease[32], limit[16], err[512];
  snprintf(lease, sizeof lease, "%lld milliseconds", (long long)r->cfg->outbox_sweep_grace_ms);
  snprintf(limit, sizeof limit, "%d", SWEEP_LIMIT);
  const char *params[] = {lease, limit};
  int code;
  PGresult *res = ctxd__db_exec(
      r->conn,
      /* published in id order, the order the rows were written. The ids are chosen once
       * (ARRAY(...)): as a join (id IN (SELECT ...)) the planner, trusting statistics of
       * a nearly empty outbox, could run the choice again for every row of a backlog */
      "WITH claimed AS (UPDATE ctxd.outbox SET lease_until = now() + $1::interval, "
      "attempts = attempts + 1 WHERE id = ANY(ARRAY(SELECT id FROM ctxd.outbox WHERE lease_until < now() "
      "ORDER BY id LIMIT $2::int FOR UPDATE SKIP LOCKED)) "
      "RETURNING id, message_id, exchange, body, event, routing_key, correlation_id, "
      "headers, coalesce((extract(epoch FROM expires_at) * 1000)::bigint, 0), no_declare) "
      "SELECT * FROM claimed ORDER BY id",
      2, params, &code, err, sizeof err);
  if (res == NULL) {
    ctxd__log(CTXD__LOG_WARN, "host", "outbox relay: sweep failed: %s", err);
    return 0;
  }
  int n = PQntuples(res), sent = 0;
  /* A row whose confirm the relay holds is not sent again: with the database behind (the
   * archiving slower than the confirms), rows wait longer than their lease between confirm
   * and archive, and sending them again would only add to the load that put it behind. */
  int64_t *claimed = calloc((size_t)n + 1, sizeof *claimed);
  unsigned char *hit = calloc((size_t)n + 1, 1);
  for (int i = 0; claimed != NULL && i < n; i++) claimed[i] = strtoll(PQgetvalue(res, i, 0), NULL, 10);
  if (claimed != NULL && hit != NULL) mark_confirmed(r, claimed, hit, (size_t)n);
  ctxd__swept_t *swept = n > 0 ? calloc(1, sizeof *swept) : NULL;
  for (int i = 0; swept != NULL && i < n; i++) {
    if (hit != NULL && hit[i]) continue;
    ctxd__outrow_t *row = ctxd__outrow_new(strtoll(PQgetvalue(res, i, 0), NULL, 10), PQgetvalue(res, i, 1),
                                           PQgetvalue(res, i, 2), PQgetvalue(res, i, 3));
    /* published as its writer would have: the same routing key, properties and headers */
    if (row != NULL &&
        ctxd__outrow_set(row, PQgetvalue(res, i, 5), PQgetisnull(res, i, 6) ? NULL : PQgetvalue(res, i, 6),
                         PQgetisnull(res, i, 7) ? NULL : PQgetvalue(res, i, 7),
                         strtoll(PQgetvalue(res, i, 8), NULL, 10), PQgetvalue(res, i, 9)[0] == 't') != 0) {
      ctxd__outrow_free(row);
      row = NULL;
    }
    /* out of memory: the rest keep their lease and come back in the next sweep */
    if (row == NULL) break;
    row->event = PQgetvalue(res, i, 4)[0] == 't';
    ctxd__outrows_push(&swept->rows, row);
    sent++;
  }
  PQclear(res);
  free(claimed);
  free(hit);
  if (swept != NULL && swept->rows.head != NULL) {
    ctxd__log(CTXD__LOG_INFO, "host", "outbox relay: sweeping %d unconfirmed rows", sent);
    swept->mail.done = r->swept;
    ctxd__mailbox_post(r->mailbox, &swept->mail);
  } else {
    free(swept);
  }
  return n;
}

/* Moves due scheduled messages to the outbox, oldest first, in one statement (one
 * transaction: a row leaves ctxd.scheduled exactly when it enters the outbox). Their rows
 * have no lease, so the sweep that follows publishes them in the same tick. SKIP LOCKED
 * lets every host's relay do it at once without waiting or moving a row twice. Returns how
 * many moved, -1 on error. Sets *due_in_ms to the ms until the next pending row is due, by
 * the database's clock (NO_DUE: none; 0 or less: due already, since the statement's now()
 * or locked by another host's relay moving it): the index on due_at makes both cheap
 * whatever the number of pending rows. */
static int move_due(ctxd__relay_t *r, int64_t *due_in_ms) {
  char limit[16], err[512];
  snprintf(limit, sizeof limit, "%d", SWEEP_LIMIT);
  const char *params[] = {limit};
  int code;
  *due_in_ms = NO_DUE;
  PGresult *res = ctxd__db_exec(
      r->conn,
      "WITH due AS (DELETE FROM ctxd.scheduled WHERE id IN (SELECT id FROM ctxd.scheduled WHERE due_at <= "
      "now() ORDER BY due_at LIMIT $1::int FOR UPDATE SKIP LOCKED) RETURNING *) "
      "INSERT INTO ctxd.outbox (message_id, exchange, message_type, body, lease_until, routing_key, "
      "correlation_id, headers, expires_at, no_declare, event) SELECT id, exchange, message_type, body, "
      "now(), "
      "routing_key, correlation_id, headers, expires_at, no_declare, event FROM due ORDER BY due_at, id",
      1, params, &code, err, sizeof err);
  if (res == NULL) {
    ctxd__log(CTXD__LOG_WARN, "host", "scheduled messages: moving due ones failed: %s", err);
    return -1;
  }
  int n = (int)strtol(PQcmdTuples(res), NULL, 10);
  PQclear(res);
  res = ctxd__db_exec(r->conn,
                      "SELECT ceil(extract(epoch FROM due_at - clock_timestamp()) * 1000)::bigint "
                      "FROM ctxd.scheduled ORDER BY due_at LIMIT 1",
                      0, NULL, &code, err, sizeof err);
  if (res != NULL && PQntuples(res) == 1) *due_in_ms = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
  PQclear(res);
  return n;
}

/* Deletes rows older than `interval` from `table` in small batches: rows whose `column`
 * (which may start with a condition: "status = 'resolved' AND status_at") is older.
 * skip_locked: rows a handler holds (a finished saga it loaded FOR UPDATE, say) are left
 * for the next cleanup instead of stalling the relay's thread behind its transaction. */
static int expire(ctxd__relay_t *r, const char *table, const char *column, int64_t seconds, int skip_locked) {
  char sql[512], interval[32], err[512];
  snprintf(sql, sizeof sql,
           "DELETE FROM %s WHERE ctid = ANY(ARRAY(SELECT ctid FROM %s WHERE %s < now() - "
           "$1::interval LIMIT %d%s))",
           table, table, column, CLEANUP_BATCH, skip_locked ? " FOR UPDATE SKIP LOCKED" : "");
  snprintf(interval, sizeof interval, "%lld seconds", (long long)seconds);
  const char *params[] = {interval};
  for (int i = 0; i < CLEANUP_MAX_BATCHES; i++) {
    int code;
    PGresult *res = ctxd__db_exec(r->conn, sql, 1, params, &code, err, sizeof err);
    if (res == NULL) {
      ctxd__log(CTXD__LOG_WARN, "host", "cleanup of %s failed: %s", table, err);
      return 0;
    }
    long deleted = strtol(PQcmdTuples(res), NULL, 10);
    PQclear(res);
    if (deleted < CLEANUP_BATCH) return 0;
  }
  return 1;
}

/* Deletes expired rows; returns 1 when some table has more than one run deletes. */
static int cleanup(ctxd__relay_t *r) {
  if (!connected(r)) return 0;
  int code;
  PGresult *res =
      ctxd__db_exec(r->conn, "SELECT pg_try_advisory_lock(" CLEANUP_LOCK_KEY ")", 0, NULL, &code, NULL, 0);
  int locked = res != NULL && PQgetvalue(res, 0, 0)[0] == 't';
  PQclear(res);
  if (!locked) return 0;
  int more = expire(r, "ctxd.inbox", "received_at", r->cfg->inbox_retention_s, 0);
  if (r->cfg->outbox_archive_retention_s != CTXD__RETENTION_KEEP) {
    more |= expire(r, "ctxd.outbox_archive", "dispatched_at", r->cfg->outbox_archive_retention_s, 0);
    more |= expire(r, "ctxd.outbox_set_aside", "at", r->cfg->outbox_archive_retention_s, 0);
  }
  /* counts of messages that left otherwise (purged, replayed); few rows, no index needed */
  more |= expire(r, "ctxd.attempts", "last_at", r->cfg->inbox_retention_s, 0);
  /* failed messages only once resolved: an open one waits for its operator however old */
  more |=
      expire(r, "ctxd.failed_messages", "status = 'resolved' AND status_at", r->cfg->errors_retention_s, 1);
  /* finished process managers and calls; pending ones have no finished_at */
  more |= expire(r, "ctxd.sagas", "finished_at", r->cfg->sagas_retention_s, 1);
  more |= expire(r, "ctxd.calls", "finished_at", r->cfg->calls_retention_s, 1);
  ctxd__db_run(r->conn, "SELECT pg_advisory_unlock(" CLEANUP_LOCK_KEY ")", 0, NULL, NULL, 0);
  return more;
}

/* Cheap gauges for /metrics: the outbox is small (rows leave once confirmed), and the
 * inbox size is the planner's estimate, not a count of millions of rows. */
static void measure(ctxd__relay_t *r) {
  int code;
  PGresult *res = ctxd__db_exec(r->conn,
                                "SELECT count(*), coalesce(extract(epoch FROM now() - min(created_at)), 0), "
                                "(SELECT reltuples::bigint FROM pg_class WHERE oid = 'ctxd.inbox'::regclass) "
                                "FROM ctxd.outbox",
                                0, NULL, &code, NULL, 0);
  if (res == NULL) return;
  pthread_mutex_lock(&r->mu);
  r->stats.backlog = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
  r->stats.oldest_s = strtod(PQgetvalue(res, 0, 1), NULL);
  r->stats.inbox_rows = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
  pthread_mutex_unlock(&r->mu);
  PQclear(res);
}

void ctxd__relay_gauges(ctxd__relay_t *r, ctxd__relay_stats_t *out) {
  pthread_mutex_lock(&r->mu);
  *out = r->stats;
  pthread_mutex_unlock(&r->mu);
  if (out->inbox_rows < 0) out->inbox_rows = 0;
}

static void count_tick(ctxd__relay_t *r, int64_t started_us, int moved) {
  double s = (double)(ctxd__clock_us() - started_us) / 1e6;
  pthread_mutex_lock(&r->mu);
  r->stats.tick_s = s;
  if (s > r->stats.tick_max_s) r->stats.tick_max_s = s;
  if (moved > 0) r->stats.scheduled_moved += moved;
  pthread_mutex_unlock(&r->mu);
}

/* Gives rows ids (an array literal) a new lease: see ctxd__relay_hold. On failure they may
 * be swept and sent twice; consumers drop the duplicate by message id. */
static void renew_leases(ctxd__relay_t *r, const char *ids, int64_t lease_ms) {
  char lease[32], err[512];
  snprintf(lease, sizeof lease, "%lld milliseconds", (long long)lease_ms);
  const char *params[] = {ids, lease};
  if (connected(r) &&
      ctxd__db_run(r->conn,
                   "UPDATE ctxd.outbox SET lease_until = now() + $2::interval WHERE id = ANY($1::bigint[])",
                   2, params, err, sizeof err) != 0)
    ctxd__log(CTXD__LOG_WARN, "host", "outbox relay: renewing the leases of unconfirmed rows failed: %s",
              err);
}

static void *relay_main(void *arg) {
  ctxd__relay_t *r = arg;
  int64_t next_sweep = ctxd__clock_ms();
  /* a due row someone holds (an unschedule in a long batch, another relay moving it) is
   * looked at again soon, but less often each time: never a tick at 200 Hz */
  int64_t due_again = DUE_AGAIN_MS;
  r->next_cleanup_ms = ctxd__clock_ms() + r->cfg->cleanup_interval_s * 1000;
  for (;;) {
    pthread_mutex_lock(&r->mu);
    while (r->confirmed.n == 0 && r->refused.head == NULL && !r->stopping) {
      int64_t at = r->wake_ms != 0 && r->wake_ms < next_sweep ? r->wake_ms : next_sweep;
      int64_t wait = at - ctxd__clock_ms();
      if (wait <= 0) break;
      struct timespec until = ctxd__clock_deadline(wait);
      pthread_cond_timedwait(&r->cv, &r->mu, &until);
    }
    if (r->wake_ms != 0 && r->wake_ms <= ctxd__clock_ms()) {
      /* a scheduled message is due: tick now */
      if (r->wake_ms < next_sweep) next_sweep = r->wake_ms;
      r->wake_ms = 0;
    }
    confirmed_t confirmed = r->confirmed;
    ctxd__outrows_t refused = r->refused;
    r->confirmed = (confirmed_t){0};
    r->refused = (ctxd__outrows_t){0};
    int stopping = r->stopping, held = r->held;
    char *renew = r->renew;
    int64_t renew_ms = r->renew_ms;
    r->renew = NULL;
    pthread_mutex_unlock(&r->mu);

    archive(r, &refused, &confirmed);
    if (renew != NULL) renew_leases(r, renew, renew_ms);
    free(renew);
    if (stopping) break;
    int64_t now = ctxd__clock_ms();
    if (now >= next_sweep) {
      /* due scheduled messages first: the sweep then publishes them too */
      int64_t due_in = NO_DUE, started_us = ctxd__clock_us();
      int moved = connected(r) ? move_due(r, &due_in) : 0;
      /* a full sweep means a backlog (after a crash): take the next rows at once */
      int full = !held && (sweep(r) == SWEEP_LIMIT || moved == SWEEP_LIMIT);
      if (ctxd__db_usable(r->conn)) measure(r);
      count_tick(r, started_us, moved);
      next_sweep = full ? now : now + r->cfg->outbox_sweep_interval_ms;
      /* the next pending message due before the next tick: wake for it. One a handler
       * of this host schedules later wakes the relay through ctxd__relay_wake_at; one
       * another host schedules waits at most a tick. */
      int64_t after = ctxd__clock_ms() + (due_in > 0 ? due_in : due_again);
      if (due_in != NO_DUE && due_in <= 0 && moved == 0)
        due_again = due_again * 2 < r->cfg->outbox_sweep_interval_ms ? due_again * 2
                                                                     : r->cfg->outbox_sweep_interval_ms;
      else
        due_again = DUE_AGAIN_MS;
      if (due_in != NO_DUE && after < next_sweep) next_sweep = after;
    }
    if (now >= r->next_cleanup_ms)
      r->next_cleanup_ms =
          now + (cleanup(r) ? r->cfg->outbox_sweep_interval_ms : r->cfg->cleanup_interval_s * 1000);
  }
  if (r->conn != NULL) PQfinish(r->conn);
  return NULL;
}

int ctxd__relay_start(ctxd__relay_t **out, const ctxd__config_t *cfg, ctxd__mailbox_t *mailbox,
                      ctxd__mail_cb swept) {
  ctxd__relay_t *r = calloc(1, sizeof *r);
  if (r == NULL) return CTXD_ENOMEM;
  r->cfg = cfg;
  r->mailbox = mailbox;
  r->swept = swept;
  r->stats.db_ok = 1; /* the start-up migrations just reached it */
  pthread_mutex_init(&r->mu, NULL);
  pthread_cond_init(&r->cv, NULL);
  if (pthread_create(&r->thread, NULL, relay_main, r) != 0) {
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    free(r);
    return CTXD_ENOMEM;
  }
  *out = r;
  return 0;
}

/* Appends row's id to c; 0, or CTXD_ENOMEM. */
static int confirmed_push(confirmed_t *c, const ctxd__outrow_t *row) {
  if (c->n == c->cap) {
    size_t cap = c->cap ? 2 * c->cap : 256;
    int64_t *id = realloc(c->id, cap * sizeof *id);
    if (id != NULL) c->id = id;
    unsigned char *u = id != NULL ? realloc(c->unroutable, cap) : NULL;
    if (u == NULL) return CTXD_ENOMEM;
    c->unroutable = u;
    c->cap = cap;
  }
  c->id[c->n] = row->id;
  c->unroutable[c->n++] = (unsigned char)(row->unroutable != 0);
  return 0;
}

void ctxd__relay_archive(ctxd__relay_t *r, ctxd__outrows_t *rows) {
  if (rows->head == NULL) return;
  pthread_mutex_lock(&r->mu);
  for (ctxd__outrow_t *row; (row = ctxd__outrows_shift(rows)) != NULL;) {
    if (row->refused != NULL) {
      ctxd__outrows_push(&r->refused, row);
      continue;
    }
    /* out of memory: the row stays in the outbox and the sweep sends it again */
    confirmed_push(&r->confirmed, row);
    ctxd__outrow_free(row);
  }
  pthread_cond_signal(&r->cv);
  pthread_mutex_unlock(&r->mu);
}

void ctxd__relay_wake_at(ctxd__relay_t *r, int64_t at_ms) {
  int64_t now = ctxd__clock_ms(), wall = ctxd__clock_wall_ms();
  /* in the past: now (no overflow for any at_ms) */
  int64_t at = at_ms > wall ? now + (at_ms - wall) : now;
  pthread_mutex_lock(&r->mu);
  if (r->wake_ms == 0 || at < r->wake_ms) {
    r->wake_ms = at;
    pthread_cond_signal(&r->cv);
  }
  pthread_mutex_unlock(&r->mu);
}

void ctxd__relay_hold(ctxd__relay_t *r, int held, char *pending, int64_t lease_ms) {
  pthread_mutex_lock(&r->mu);
  r->held = held;
  free(r->renew);
  r->renew = pending;
  r->renew_ms = lease_ms;
  pthread_mutex_unlock(&r->mu);
  /* what waited for the broker goes now, not a sweep interval later */
  if (!held) ctxd__relay_wake_at(r, 0);
}

void ctxd__relay_stop(ctxd__relay_t *r) {
  if (r == NULL) return;
  pthread_mutex_lock(&r->mu);
  r->stopping = 1;
  pthread_cond_signal(&r->cv);
  pthread_mutex_unlock(&r->mu);
  pthread_join(r->thread, NULL);
  confirmed_free(&r->confirmed);
  ctxd__outrows_free(&r->refused);
  free(r->renew);
  pthread_mutex_destroy(&r->mu);
  pthread_cond_destroy(&r->cv);
  free(r);
}
