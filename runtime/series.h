/* The console's recent history of each endpoint: a sample every CTXD__SERIES_INTERVAL_MS,
 * the last CTXD__SERIES_POINTS of them kept (10 minutes), each turned into rates and
 * handler-time quantiles from its difference to the sample before. Pure code without I/O
 * or locks: the loop thread owns a series. */
#ifndef CTXD_RUNTIME_SERIES_H
#define CTXD_RUNTIME_SERIES_H

#include <stddef.h>
#include <stdint.h>

#include "metrics.h"

#define CTXD__SERIES_INTERVAL_MS 2000
#define CTXD__SERIES_POINTS 300

/* One endpoint's numbers as read at a sample. */
typedef struct {
  int64_t t_ms;    /* Unix time: when, for the page */
  int64_t mono_ms; /* a monotonic clock: the interval, whatever the wall clock does */
  uint64_t handled, errored;
  int64_t queue_depth;       /* -1: unknown (not connected, or not answered) */
  ctxd__histogram_t handler; /* handler_seconds, cumulative */
} ctxd__sample_t;

/* What happened between a sample and the one before. */
typedef struct {
  int64_t t;             /* Unix time, seconds, of the later sample */
  double rate, errors;   /* messages handled, and moved to _error, per second */
  int64_t queue_depth;   /* at the later sample; -1 unknown */
  double p50_ms, p99_ms; /* handler time of the messages settled meanwhile; 0 when none */
} ctxd__point_t;

typedef struct {
  char *name; /* the endpoint's; owned */
  ctxd__sample_t last;
  int has_last;
  ctxd__point_t points[CTXD__SERIES_POINTS]; /* a ring: the newest at head - 1 */
  size_t head, n;
} ctxd__ring_t;

typedef struct {
  ctxd__ring_t **v;
  size_t n;
  uint64_t taken; /* samples taken so far (the owner counts them): what is new since */
} ctxd__series_t;

/* The ring of endpoint name, made when it has none yet; borrowed until
 * ctxd__series_free; NULL when out of memory. */
ctxd__ring_t *ctxd__series_ring(ctxd__series_t *s, const char *name);

/* The ring of endpoint name, or NULL; borrowed until ctxd__series_free. */
const ctxd__ring_t *ctxd__series_find(const ctxd__series_t *s, const char *name);

void ctxd__series_free(ctxd__series_t *s);

/* Adds a sample: a point from its difference to the last one (the first sample is only
 * the baseline). A counter lower than before (a histogram or counter reset) counts from
 * zero; a sample no later than the last is taken as the baseline only. */
void ctxd__ring_add(ctxd__ring_t *r, const ctxd__sample_t *s);

/* Point i of r, 0 the oldest; i < r->n. Borrowed until the next ctxd__ring_add. */
const ctxd__point_t *ctxd__ring_at(const ctxd__ring_t *r, size_t i);

/* The q quantile (0..1) of the observations in h, in h's unit, interpolated linearly
 * inside its bucket as Prometheus's histogram_quantile does; one in the +Inf bucket
 * answers the largest finite bound. 0 when h is empty. */
double ctxd__histogram_quantile(const ctxd__histogram_t *h, double q);

#endif
