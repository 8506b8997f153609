/* External calls (ABI 1.2): the executors plugins register, the threads that run the calls
 * recorded in ctxd.calls, and the CallCompleted message that reports each outcome.
 *
 * A call is claimed with FOR UPDATE SKIP LOCKED and a lease (next_at = now + timeout +
 * grace, attempts + 1), run outside any transaction, then either finished (status and the
 * CallCompleted outbox row in one transaction, only if the claim is still this executor's:
 * attempts unchanged) or put back for a retry after its backoff. A host that dies mid-call
 * leaves the lease to end: any host runs the call again with the same idempotency key. */
#ifndef CTXD_RUNTIME_EXECUTOR_H
#define CTXD_RUNTIME_EXECUTOR_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <ctxd/ctxd.h>

#include "config.h"

struct ctxd__contracts_s;

/* The message type of an outcome. */
#define CTXD__CALL_COMPLETED_TYPE "Ctxd.Runtime.v1:CallCompleted"

/* One registration, its strings copied, and its thread once started. */
typedef struct ctxd__executor_s {
  char *plugin, *kind, *outcome_endpoint;
  ctxd_call_cb fn;
  void *data;
  uint32_t max_attempts, backoff_ms, timeout_ms;
  /* the running thread (ctxd__executors_start) */
  pthread_t thread;
  int running;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int stopping; /* under mu */
  const ctxd__config_t *cfg;
  const struct ctxd__contracts_s *contracts;
} ctxd__executor_t;

/* A plugin's executors. Zero-initialised it is empty. */
typedef struct {
  ctxd__executor_t **v;
  size_t n;
} ctxd__executors_t;

/* The call an executor's fn runs (ctxd_call_t). */
struct ctxd_call_s {
  const char *kind, *key, *payload;
  char attempt[16];
  char *outcome; /* set by call_outcome; new */
};

/* Validates e and appends a copy, for plugin `plugin`, to set. 0, CTXD_EINVAL, CTXD_EEXIST
 * or CTXD_ENOMEM. */
int ctxd__executor_add(ctxd__executors_t *set, const char *plugin, const ctxd_executor_t *e);

/* Returns the executor of kind in set, or NULL. */
const ctxd__executor_t *ctxd__executor_find(const ctxd__executors_t *set, const char *kind);

/* Starts a thread (with its own database connection) per executor of set. 0 or
 * CTXD_ENOMEM (the threads that started keep running: stop them with ctxd__executors_stop). */
int ctxd__executors_start(ctxd__executors_t *set, const ctxd__config_t *cfg,
                          const struct ctxd__contracts_s *contracts);

/* Stops and joins the threads of set; a call being run finishes first (up to its
 * timeout). No-op for those not started. */
void ctxd__executors_stop(ctxd__executors_t *set);

/* Stops and frees set's registrations; set is left empty. */
void ctxd__executors_free(ctxd__executors_t *set);

/* call_field and call_outcome of the API table. */
const char *ctxd__call_field(const ctxd_call_t *call, ctxd_call_field_t field);
int ctxd__call_outcome(const ctxd_call_t *call, const char *outcome_json);

/* The delay before attempt `attempt` + 1 after attempt `attempt` asked to retry: backoff_ms
 * doubled per earlier attempt, at most an hour. Pure. */
int64_t ctxd__call_backoff_ms(uint32_t backoff_ms, uint32_t attempt);

#endif
