/* What the host tells about itself: readiness (GET /readyz), the metrics snapshot (GET
 * /metrics, Prometheus text format) and the counts it logs when it stops. Loop thread. */
#ifndef CTXD_RUNTIME_STATUS_H
#define CTXD_RUNTIME_STATUS_H

#include <stdint.h>

#include "endpoint.h"
#include "intake.h"
#include "metrics.h"
#include "relay.h"

/* The host's state as these functions read it; everything borrowed for the call. */
typedef struct {
  int connected; /* to the broker */
  int stopping;
  uint64_t reconnects;
  const ctxd__endpoints_t *endpoints;
  const ctxd__intake_t *intake;
  ctxd__relay_t *relay; /* NULL before it started */
} ctxd__status_t;

/* Ready: connected to the broker, not stopping, every endpoint consuming (or draining for
 * a plugin replacement) and its workers reaching the database. Writes the reasons (or
 * "ready") into body; returns the HTTP status, 200 or 503. */
int ctxd__status_readiness(const ctxd__status_t *s, ctxd__prom_t *body);

/* Writes every metric family into body; returns the HTTP status, 200 or 500 (out of
 * memory). Each endpoint's numbers are copied under its lock, so a family is consistent. */
int ctxd__status_metrics(const ctxd__status_t *s, ctxd__prom_t *body);

/* Logs each endpoint's counts, one line per endpoint (the workers must be stopped). */
void ctxd__status_log(const ctxd__endpoints_t *set);

#endif
