/* One external call (api->call) carried out as one POST: what the plugins' executors share.
 * The call's payload goes to a target with the call's key as Idempotency-Key; the answer is
 * judged (plugin_http_verdict) and becomes the call's outcome, which comes back to the plugin
 * with Ctxd.Runtime.v1:CallCompleted. For the executor thread: blocks, no global state. */
#ifndef CTXD_PLUGIN_CALL_H
#define CTXD_PLUGIN_CALL_H

#include <stddef.h>
#include <stdint.h>

#include <ctxd/ctxd.h>

#include "http.h"

/* What one POST's result means: http_rc is plugin_http_post's code, status the HTTP status
 * when http_rc is 0. A 2xx is done. Only a clear refusal fails: a 4xx other than 408
 * (time-out), 409 (the key is in use by a concurrent request), 425 and 429 (too early, too
 * many), or CTXD_EINVAL (a request this client will never be able to make). Every other
 * result may pass, and may even have reached the peer (time-outs, drops, 5xx): retried, which
 * the idempotency key makes safe. */
ctxd_call_result_t plugin_http_verdict(int http_rc, int status);

/* The executor's settings every calling plugin has (its config map places them). */
typedef struct {
  int64_t call_timeout_ms; /* one POST, connect to answer: 1 to 600000 */
  int64_t max_attempts;    /* 1 to 100000 */
  int64_t backoff_ms;      /* before the second attempt, doubled after: 1 to 3600000 */
} plugin_http_call_settings_t;

/* 0 when s is within the ranges above; otherwise CTXD_ECONFIG with err saying them. */
int plugin_http_call_settings_check(const plugin_http_call_settings_t *s, char *err, size_t cap);

/* Registers the executor of the calls of `kind` (init() only) with s's attempts, backoff and
 * time-out, its outcomes sent to outcome_endpoint; executor_register's result. */
int plugin_http_executor_register(const ctxd_api_t *api, ctxd_plugin_t *plugin, const char *kind,
                                  ctxd_call_cb fn, void *data, const char *outcome_endpoint,
                                  const plugin_http_call_settings_t *s);

/* How a plugin reads its peer's answers. */
typedef struct {
  const char *peer;             /* for texts: "the issuing system" */
  const char *outcome_id;       /* the outcome's member naming what a 2xx created: "issueId" */
  const char *const *id_names;  /* the answer's members that may name it, NULL-terminated: the
                                   first present string wins */
  int (*id_ok)(const char *id); /* whether the plugin can carry that id on */
} plugin_http_answers_t;

/* POSTs the call's payload to t within timeout_ms and sets the call's outcome, a JSON object:
 * "httpStatus" (when an answer came), and on a 2xx the answer's id under a->outcome_id (when
 * it names one that a->id_ok takes), otherwise "error": "<peer> answered HTTP 422: <the
 * answer's "error" member, or the start of its body>", or why no answer came. Logs every
 * attempt that is not done. Returns plugin_http_verdict's result for the executor. */
ctxd_call_result_t plugin_http_call(const ctxd_api_t *api, ctxd_plugin_t *plugin, const ctxd_call_t *call,
                                    const plugin_http_target_t *t, int timeout_ms,
                                    const plugin_http_answers_t *a);

#endif
