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
#include "mailbox.h"

struct ctxd__contracts_s;
struct ctxd__endpoint_env_s;

/* The longest idempotency key api->call takes, in bytes (CallCompleted's IdempotencyKey). */
#define CTXD__CALL_KEY_MAX 255

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
  int stopping;            /* under mu */
  int exited;              /* under mu: its thread left its loop (it is joined by ctxd__executors_stop) */
  ctxd__mail_t *exit_mail; /* under mu: posted when it leaves its loop; NULL once posted */
  const struct ctxd__endpoint_env_s *env; /* the host's: configuration, contracts, address base,
                                             mailbox and what it is told (ctxd__executors_start) */
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

/* Starts a thread (with its own database connection) per executor of set, with the host's
 * env (borrowed for as long as they run): a thread that leaves its loop posts a mail whose
 * done is env->executor_exited (when set; the mail is the callback's to free with free());
 * one that recorded an outcome tells env->scheduled (the relay publishes it at once). 0 or
 * CTXD_ENOMEM (the threads that started keep running: stop them with ctxd__executors_stop). */
int ctxd__executors_start(ctxd__executors_t *set, const struct ctxd__endpoint_env_s *env);

/* Tells the threads of set to stop claiming calls, without waiting: a call being run
 * finishes first. Loop thread; no-op for those not started. */
void ctxd__executors_signal(ctxd__executors_t *set);

/* 1 when no thread of set runs its loop any more (joining them does not wait). */
int ctxd__executors_exited(ctxd__executors_t *set);

/* Stops and joins the threads of set; a call being run finishes first (the thread waits
 * for fn to return: call it after ctxd__executors_exited on the loop thread). No-op for
 * those not started. */
void ctxd__executors_stop(ctxd__executors_t *set);

/* Stops and frees set's registrations; set is left empty. */
void ctxd__executors_free(ctxd__executors_t *set);

/* call_field and call_outcome of the API table. */
const char *ctxd__call_field(const ctxd_call_t *call, ctxd_call_field_t field);
int ctxd__call_outcome(const ctxd_call_t *call, const char *outcome_json);

/* The message id of the CallCompleted of (plugin, kind, key): derived from the three,
 * length-prefixed (no two tuples share it), the same on every run. */
void ctxd__call_message_id(const char *plugin, const char *kind, const char *key, char id[37]);

/* The delay before attempt `attempt` + 1 after attempt `attempt` asked to retry: backoff_ms
 * doubled per earlier attempt, at most an hour. Pure. */
int64_t ctxd__call_backoff_ms(uint32_t backoff_ms, uint32_t attempt);

#endif
