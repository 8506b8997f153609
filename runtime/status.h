/* What the host tells about itself: readiness (GET /readyz), the metrics snapshot (GET
 * /metrics, Prometheus text format) and the counts it logs when it stops. Loop thread. */
#ifndef CTXD_RUNTIME_STATUS_H
#define CTXD_RUNTIME_STATUS_H

#include <stdint.h>

#include "admin.h"
#include "endpoint.h"
#include "intake.h"
#include "metrics.h"
#include "relay.h"
#include "series.h"

/* The host's state as these functions read it; everything borrowed for the call. */
typedef struct {
  int connected; /* to the broker */
  int stopping;
  uint64_t reconnects;
  const char *blocked;     /* the broker blocked publishing for this reason; NULL: not blocked */
  uint64_t blocks;         /* times it did */
  double blocked_s;        /* how long it was blocked in all, the block in force included */
  uint64_t outbox_refused; /* rows the broker refused, set aside */
  const ctxd__endpoints_t *endpoints;
  const ctxd__intake_t *intake;
  ctxd__relay_t *relay;             /* NULL before it started */
  const ctxd__admin_stats_t *admin; /* NULL without an admin endpoint */
  ctxd_plugin_t *const *plugins;    /* the plugins loaded now */
  size_t nplugins;
  const ctxd__series_t *series; /* the endpoints' recent history (console) */
  ctxd__observed_t *observed;   /* what the plugins were seen sending (console) */
  int64_t now_ms;               /* the loop's clock: the age of the queue figures (inspect.h) */
} ctxd__status_t;

/* Ready: connected to the broker and not blocked by it (a resource alarm), not stopping, every endpoint consuming (or draining for
 * a plugin replacement), its workers reaching the database and no handler of it running
 * past its handler_timeout_ms (the reason names the plugin and the message). Writes the reasons (or
 * "ready") into body; returns the HTTP status, 200 or 503. */
int ctxd__status_readiness(const ctxd__status_t *s, ctxd__prom_t *body);

/* Writes every metric family into body; returns the HTTP status, 200 or 500 (out of
 * memory). Each endpoint's numbers are copied under its lock, so a family is consistent. */
int ctxd__status_metrics(const ctxd__status_t *s, ctxd__prom_t *body);

/* Finds handlers running past their endpoint's handler_timeout_ms (loop thread): each such
 * call is logged and counted once. Returns 1 when one of them is on an endpoint with
 * handler_timeout_exit, so the host must exit, else 0. */
int ctxd__status_watch(const ctxd__endpoints_t *set);

/* Reads ep's counters and handler times into *out at Unix time now_ms (loop thread); the
 * queue depth is the caller's to set: the broker tells it. */
void ctxd__status_sample(ctxd__endpoint_t *ep, int64_t now_ms, ctxd__sample_t *out);

/* Logs each endpoint's counts, one line per endpoint (the workers must be stopped). */
void ctxd__status_log(const ctxd__endpoints_t *set);

#endif
