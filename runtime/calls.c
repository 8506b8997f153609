/* The executor threads: claim a due call, run it, record its outcome (executor.h). */
#include "executor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "clock.h"
#include "db.h"
#include "dispatch.h"
#include "endpoint.h"
#include "log.h"
#include "outbox.h"
#include "uuid.h"

/* a claim outlives the call's time-out by this much before another host may take it */
#define LEASE_GRACE_MS 5000
#define RECONNECT_MS 1000
/* runs that ended without a result (their host died, their outcome could not be recorded,
 * they outlived their claim) before the call is given up as failed without running it
 * again: a call whose fn takes its host down cannot loop for ever */
#define MAX_LOST_RUNS 3

static int connected(ctxd__executor_t *e, PGconn **conn) {
  char err[512];
  const ctxd__config_t *cfg = e->env->cfg;
  if (ctxd__db_keep(conn, cfg, err, sizeof err) != 0) {
    ctxd__log(CTXD__LOG_WARN, e->plugin, "executor '%s': database unreachable: %s", e->kind, err);
    return 0;
  }
  return 1;
}

/* A claimed call. */
typedef struct {
  char id[24];
  char *key, *payload;
  int attempts; /* runs, this one included: a claim's identity */
  int failures; /* runs that asked to retry */
} claim_t;

/* Claims the next due call of e: 1 and *c (free its strings), 0 when none, -1 on error. */
static int claim(ctxd__executor_t *e, PGconn *conn, claim_t *c) {
  char lease[32], err[512];
  snprintf(lease, sizeof lease, "%lld milliseconds", (long long)e->timeout_ms + LEASE_GRACE_MS);
  const char *params[] = {e->plugin, e->kind, lease};
  int code;
  PGresult *r =
      ctxd__db_exec(conn,
                    "UPDATE ctxd.calls SET attempts = attempts + 1, next_at = now() + $3::interval "
                    "WHERE id = (SELECT id FROM ctxd.calls WHERE plugin = $1 AND kind = $2 AND "
                    "status = 'pending' AND next_at <= now() ORDER BY next_at LIMIT 1 "
                    "FOR UPDATE SKIP LOCKED) RETURNING id, idempotency_key, payload, attempts, failures",
                    3, params, &code, err, sizeof err);
  if (r == NULL) {
    ctxd__log(CTXD__LOG_WARN, e->plugin, "executor '%s': claiming a call failed: %s", e->kind, err);
    return -1;
  }
  int n = PQntuples(r);
  if (n == 1) {
    snprintf(c->id, sizeof c->id, "%s", PQgetvalue(r, 0, 0));
    c->key = strdup(PQgetvalue(r, 0, 1));
    c->payload = strdup(PQgetvalue(r, 0, 2));
    c->attempts = atoi(PQgetvalue(r, 0, 3));
    c->failures = atoi(PQgetvalue(r, 0, 4));
  }
  PQclear(r);
  if (n == 1 && (c->key == NULL || c->payload == NULL)) {
    free(c->key);
    free(c->payload);
    return -1; /* the lease ends and the call is claimed again */
  }
  return n == 1;
}

/* The CallCompleted message of a finished call (new, free with free()), or NULL. */
static char *completed_body(const ctxd__executor_t *e, const claim_t *c, int done, const char *outcome) {
  json_t *o = outcome != NULL ? json_loads(outcome, 0, NULL) : NULL;
  json_t *m = json_pack("{s:s, s:s, s:s, s:i, s:o}", "Kind", e->kind, "IdempotencyKey", c->key, "Status",
                        done ? "done" : "failed", "Attempts", c->attempts, "Outcome",
                        json_is_object(o) ? o : json_object());
  if (o != NULL && !json_is_object(o)) json_decref(o);
  char *text = m != NULL ? json_dumps(m, JSON_COMPACT) : NULL;
  json_decref(m);
  return text;
}

/* Marks the call finished and writes its CallCompleted to the outbox, in one transaction,
 * if the claim is still ours (attempts unchanged): a call finishes once, and its outcome
 * message leaves once. The relay is woken to publish it. 0, CTXD_EINVAL or
 * CTXD_EVALIDATION (the message breaks its contract: nothing written, err says why), or
 * another error. */
static int finish_once(ctxd__executor_t *e, PGconn *conn, const claim_t *c, int done, const char *outcome,
                       int *ours, char *err, size_t errlen) {
  char attempts[16], id[37];
  snprintf(attempts, sizeof attempts, "%d", c->attempts);
  char *body = completed_body(e, c, done, outcome);
  if (body == NULL) return CTXD_ENOMEM;
  /* the same call always reports with the same message id: consumers drop a copy */
  ctxd__call_message_id(e->plugin, e->kind, c->key, id);
  const char *params[] = {c->id, done ? "done" : "failed", outcome, attempts};
  int rc = ctxd__db_run(conn, "BEGIN", 0, NULL, err, errlen), code = 0;
  PGresult *r = NULL;
  if (rc == 0)
    r = ctxd__db_exec(conn,
                      "UPDATE ctxd.calls SET status = $2, outcome = $3, finished_at = now() "
                      "WHERE id = $1::bigint AND status = 'pending' AND attempts = $4::int",
                      4, params, &code, err, errlen);
  if (rc == 0 && r == NULL) rc = code;
  *ours = r != NULL && strcmp(PQcmdTuples(r), "1") == 0;
  PQclear(r);
  if (rc == 0 && *ours) {
    ctxd__outrows_t rows = {0};
    ctxd_tx_t tx = {
        .conn = conn, .contracts = e->env->contracts, .rows = &rows, .address_base = e->env->address_base};
    ctxd_out_msg_t msg = {.size = sizeof msg,
                          .message_type = CTXD__CALL_COMPLETED_TYPE,
                          .body = body,
                          .destination = e->outcome_endpoint,
                          .message_id = id};
    rc = ctxd__outbox_write(&tx, &msg, CTXD__OUTBOX_SEND);
    if (rc != 0) snprintf(err, errlen, "%s", tx.error[0] ? tx.error : ctxd_strerror(rc));
    ctxd__outrows_free(&rows);
  }
  if (rc == 0) rc = ctxd__db_run(conn, "COMMIT", 0, NULL, err, errlen);
  if (rc != 0) ctxd__db_run(conn, "ROLLBACK", 0, NULL, NULL, 0);
  if (rc == 0 && *ours && e->env->scheduled != NULL)
    e->env->scheduled(e->env->scheduled_data, ctxd__clock_wall_ms());
  free(body);
  return rc;
}

/* finish_once; an outcome whose CallCompleted cannot be written (it breaks the contract)
 * finishes the call as failed with an outcome of the host's saying so: otherwise the call
 * would be claimed and run for ever. */
static void finish(ctxd__executor_t *e, PGconn *conn, const claim_t *c, int done, const char *outcome) {
  char err[512] = "";
  int ours = 0;
  int rc = finish_once(e, conn, c, done, outcome, &ours, err, sizeof err);
  if (rc == CTXD_EINVAL || rc == CTXD_EVALIDATION) {
    ctxd__log(CTXD__LOG_WARN, e->plugin, "executor '%s': the outcome of key '%s' was rejected; failed: %s",
              e->kind, c->key, err);
    char why[600];
    json_t *o = json_pack("{s:s}", "Error", (snprintf(why, sizeof why, "outcome rejected: %s", err), why));
    char *text = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    rc = text != NULL ? finish_once(e, conn, c, 0, text, &ours, err, sizeof err) : CTXD_ENOMEM;
    free(text);
  }
  if (rc != 0)
    ctxd__log(CTXD__LOG_WARN, e->plugin,
              "executor '%s': recording the outcome of key '%s' failed (run again once "
              "its claim ends): %s",
              e->kind, c->key, err);
  else if (!ours)
    ctxd__log(CTXD__LOG_WARN, e->plugin,
              "executor '%s': key '%s' took longer than its claim; another run "
              "reports it",
              e->kind, c->key);
}

/* Puts the call back to run after its backoff, one more failure counted, if the claim is
 * still ours. */
static void retry_later(ctxd__executor_t *e, PGconn *conn, const claim_t *c) {
  char attempts[16], delay[32], err[512];
  snprintf(attempts, sizeof attempts, "%d", c->attempts);
  snprintf(delay, sizeof delay, "%lld milliseconds",
           (long long)ctxd__call_backoff_ms(e->backoff_ms, (uint32_t)c->failures + 1));
  const char *params[] = {c->id, attempts, delay};
  if (ctxd__db_run(conn,
                   "UPDATE ctxd.calls SET next_at = now() + $3::interval, failures = failures + 1 "
                   "WHERE id = $1::bigint AND status = 'pending' AND attempts = $2::int",
                   3, params, err, sizeof err) != 0)
    ctxd__log(CTXD__LOG_WARN, e->plugin, "executor '%s': scheduling a retry failed (its claim ends): %s",
              e->kind, err);
}

/* Runs one due call, if there is one: 1 when it did, 0 when there was none or on error. */
static int run_one(ctxd__executor_t *e, PGconn *conn) {
  claim_t c = {0};
  if (claim(e, conn, &c) != 1) return 0;
  ctxd_call_t call = {.kind = e->kind, .key = c.key, .payload = c.payload};
  snprintf(call.attempt, sizeof call.attempt, "%d", c.attempts);
  ctxd_call_result_t res;
  /* max_attempts counts the runs that asked to retry; a run that ended with no result at
   * all (its host died, its outcome was lost) runs again with the same key, a few times */
  if (c.attempts - 1 - c.failures > MAX_LOST_RUNS) {
    res = CTXD_CALL_FAILED;
    ctxd__call_outcome(&call, "{\"Error\":\"the host ended during every attempt\"}");
  } else {
    res = e->fn(&call, e->data);
  }
  if (res == CTXD_CALL_RETRY && (uint32_t)c.failures + 1 < e->max_attempts) {
    ctxd__log(CTXD__LOG_INFO, e->plugin, "executor '%s': key '%s' attempt %d failed; retrying", e->kind,
              c.key, c.attempts);
    retry_later(e, conn, &c);
  } else {
    if (res != CTXD_CALL_DONE)
      ctxd__log(CTXD__LOG_WARN, e->plugin, "executor '%s': key '%s' failed after %d attempts", e->kind, c.key,
                c.attempts);
    finish(e, conn, &c, res == CTXD_CALL_DONE, call.outcome);
  }
  free(call.outcome);
  free(c.key);
  free(c.payload);
  return 1;
}

static void *executor_main(void *arg) {
  ctxd__executor_t *e = arg;
  PGconn *conn = NULL;
  for (;;) {
    pthread_mutex_lock(&e->mu);
    int stopping = e->stopping;
    pthread_mutex_unlock(&e->mu);
    if (stopping) break;
    int up = connected(e, &conn);
    if (up && run_one(e, conn)) continue;
    pthread_mutex_lock(&e->mu);
    /* the database unreachable: tried again (and logged) once a second at most */
    int64_t wait = e->env->cfg->calls_poll_interval_ms;
    if (!up && wait < RECONNECT_MS) wait = RECONNECT_MS;
    struct timespec until = ctxd__clock_deadline(wait);
    if (!e->stopping) pthread_cond_timedwait(&e->cv, &e->mu, &until);
    pthread_mutex_unlock(&e->mu);
  }
  if (conn != NULL) PQfinish(conn);
  pthread_mutex_lock(&e->mu);
  e->exited = 1;
  ctxd__mail_t *m = e->exit_mail;
  e->exit_mail = NULL;
  pthread_mutex_unlock(&e->mu);
  /* the loop may see exited before this arrives: the mail is its own, not e's */
  if (m != NULL) ctxd__mailbox_post(e->env->mailbox, m);
  return NULL;
}

int ctxd__executors_start(ctxd__executors_t *set, const ctxd__endpoint_env_t *env) {
  for (size_t i = 0; i < set->n; i++) {
    ctxd__executor_t *e = set->v[i];
    if (e->running) continue;
    e->env = env;
    e->stopping = e->exited = 0;
    e->exit_mail = NULL;
    if (env->executor_exited != NULL && env->mailbox != NULL) {
      if ((e->exit_mail = calloc(1, sizeof *e->exit_mail)) == NULL) return CTXD_ENOMEM;
      e->exit_mail->done = env->executor_exited;
    }
    pthread_mutex_init(&e->mu, NULL);
    pthread_cond_init(&e->cv, NULL);
    if (pthread_create(&e->thread, NULL, executor_main, e) != 0) {
      pthread_mutex_destroy(&e->mu);
      pthread_cond_destroy(&e->cv);
      free(e->exit_mail);
      e->exit_mail = NULL;
      return CTXD_ENOMEM;
    }
    e->running = 1;
  }
  return 0;
}
