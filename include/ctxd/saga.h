/* ctxd process managers (sagas), ABI 1.2: the state of long-running processes, one
 * instance per (saga, key), in the runtime's table ctxd.sagas.
 *
 * Header only: every function is static inline and calls the host through the ctxd_api_t
 * table, so a plugin using it still needs no host symbol. Use it inside a handler, with the
 * handler's transaction:
 *
 *   ctxd_saga_t s;
 *   int rc = ctxd_saga_load(api, tx, "sms", order_id, &s);   // locks the instance
 *   if (rc != 0) return rc == CTXD_ECONFLICT ? CTXD_HANDLER_RETRY : CTXD_HANDLER_FAIL;
 *   if (!s.finished) { ... decide from s.state ...; rc = ctxd_saga_save(&s, new_state); }
 *   ctxd_saga_release(&s);
 *
 * Concurrency: load inserts the instance if it is missing (INSERT ... ON CONFLICT DO
 * NOTHING) and then locks its row (SELECT ... FOR UPDATE) until the transaction ends. Two
 * messages for one instance handled at once therefore run one after the other, the second
 * seeing what the first saved: no update is lost and no handler needs to retry. (An
 * optimistic version check would make the loser roll back its whole batch and come back
 * later; instances are hot only briefly, so waiting is cheaper.) A batch that locks two
 * instances in the order another batch locks them the other way round deadlocks:
 * PostgreSQL ends one, the call returns CTXD_ECONFLICT, return CTXD_HANDLER_RETRY.
 *
 * Finishing keeps the row, with finished_at set: later messages for the instance load it
 * with `finished` = 1 (and must not start it again). The relay deletes finished instances
 * after sagas.retention_s. Time-outs are scheduled messages (api->schedule), cancelled with
 * api->unschedule when the process ends first. */
#ifndef CTXD_SAGA_H
#define CTXD_SAGA_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ctxd/ctxd.h>

#ifdef __cplusplus
extern "C" {
#endif

/* One loaded instance; its strings are borrowed from the caller (saga, key) or owned
 * (state: free with ctxd_saga_release). */
typedef struct {
  const ctxd_api_t *api;
  ctxd_tx_t *tx;
  const char *saga;
  const char *key;
  char *state;     /* the instance's state, a JSON object's text; "{}" for a new instance */
  int64_t version; /* 0 for a new instance; each save adds one */
  int created;     /* 1 when this load created the instance */
  int finished;    /* 1 when the instance was finished (state is its last) */
} ctxd_saga_t;

static inline int ctxd__saga_set_state(ctxd_saga_t *s, const char *state) {
  size_t len = strlen(state) + 1;
  char *copy = (char *)malloc(len); /* not strdup: plugins may build as strict ISO C */
  if (copy == NULL) return CTXD_ENOMEM;
  memcpy(copy, state, len);
  free(s->state);
  s->state = copy;
  return 0;
}

/* Loads the instance (saga, key), creating it with state {} when it does not exist, and
 * locks it until tx ends. saga and key must stay valid while s is used. 0, CTXD_EINVAL,
 * CTXD_ENOMEM, or sql_exec's code (CTXD_ECONFLICT: return CTXD_HANDLER_RETRY). On error
 * *s holds nothing to release. */
static inline int ctxd_saga_load(const ctxd_api_t *api, ctxd_tx_t *tx, const char *saga, const char *key,
                                 ctxd_saga_t *s) {
  memset(s, 0, sizeof *s);
  if (api == NULL || tx == NULL || saga == NULL || key == NULL || *saga == '\0') return CTXD_EINVAL;
  s->api = api;
  s->tx = tx;
  s->saga = saga;
  s->key = key;
  const char *params[] = {saga, key};
  ctxd_rows_t *rows = NULL;
  int rc = api->sql_exec(tx,
                         "INSERT INTO ctxd.sagas (saga, key) VALUES ($1, $2) "
                         "ON CONFLICT (saga, key) DO NOTHING RETURNING 1",
                         2, params, &rows);
  if (rc != 0) return rc;
  s->created = api->rows_count(rows) == 1;
  api->rows_free(rows);
  if (s->created) return ctxd__saga_set_state(s, "{}");
  /* the row exists (committed, or ours): wait for whoever holds it, then read it */
  rc = api->sql_exec(tx,
                     "SELECT state::text, version, finished_at IS NOT NULL FROM ctxd.sagas "
                     "WHERE saga = $1 AND key = $2 FOR UPDATE",
                     2, params, &rows);
  if (rc != 0) return rc;
  if (api->rows_count(rows) != 1) {
    /* deleted by the cleanup between the two statements: it was finished */
    api->rows_free(rows);
    s->finished = 1;
    return ctxd__saga_set_state(s, "{}");
  }
  s->version = strtoll(api->rows_value(rows, 0, 1), NULL, 10);
  s->finished = api->rows_value(rows, 0, 2)[0] == 't';
  rc = ctxd__saga_set_state(s, api->rows_value(rows, 0, 0));
  api->rows_free(rows);
  return rc;
}

static inline int ctxd__saga_update(ctxd_saga_t *s, const char *state_json, int finish) {
  if (s->finished) return CTXD_ESTATE;
  char version[24];
  snprintf(version, sizeof version, "%lld", (long long)s->version);
  const char *params[] = {s->saga, s->key, state_json, version, finish ? "t" : "f"};
  int rc =
      s->api->sql_exec(s->tx,
                       "UPDATE ctxd.sagas SET state = coalesce($3::jsonb, state), version = version + 1, "
                       "updated_at = now(), finished_at = CASE WHEN $5::boolean THEN now() END "
                       "WHERE saga = $1 AND key = $2 AND version = $4::bigint",
                       5, params, NULL);
  if (rc != 0) return rc;
  s->version++;
  s->finished = finish;
  return state_json != NULL ? ctxd__saga_set_state(s, state_json) : 0;
}

/* Saves state_json (a JSON object's text) as the instance's state, in tx. 0,
 * CTXD_ESTATE (the instance is finished), CTXD_ENOMEM or sql_exec's code. */
static inline int ctxd_saga_save(ctxd_saga_t *s, const char *state_json) {
  if (state_json == NULL) return CTXD_EINVAL;
  return ctxd__saga_update(s, state_json, 0);
}

/* Finishes the instance, with state_json as its last state (NULL: keep it), in tx. Later
 * loads see finished = 1 until the cleanup deletes it. 0, CTXD_ESTATE (already finished),
 * CTXD_ENOMEM or sql_exec's code. */
static inline int ctxd_saga_finish(ctxd_saga_t *s, const char *state_json) {
  return ctxd__saga_update(s, state_json, 1);
}

/* Frees what load allocated (the lock is held until tx ends). */
static inline void ctxd_saga_release(ctxd_saga_t *s) {
  free(s->state);
  s->state = NULL;
}

#ifdef __cplusplus
}
#endif

#endif
