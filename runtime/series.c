#include "series.h"

#include <stdlib.h>
#include <string.h>

ctxd__ring_t *ctxd__series_ring(ctxd__series_t *s, const char *name) {
  ctxd__ring_t *found = (ctxd__ring_t *)ctxd__series_find(s, name);
  if (found != NULL) return found;
  ctxd__ring_t **v = realloc(s->v, (s->n + 1) * sizeof *v);
  if (v == NULL) return NULL;
  s->v = v;
  ctxd__ring_t *r = calloc(1, sizeof *r);
  if (r == NULL || (r->name = strdup(name)) == NULL) {
    free(r);
    return NULL;
  }
  s->v[s->n++] = r;
  return r;
}

const ctxd__ring_t *ctxd__series_find(const ctxd__series_t *s, const char *name) {
  for (size_t i = 0; i < s->n; i++)
    if (strcmp(s->v[i]->name, name) == 0) return s->v[i];
  return NULL;
}

void ctxd__series_free(ctxd__series_t *s) {
  for (size_t i = 0; i < s->n; i++) {
    free(s->v[i]->name);
    free(s->v[i]);
  }
  free(s->v);
  s->v = NULL;
  s->n = 0;
}

/* Counts since the last sample; a counter that went back was reset and counts from 0. */
static uint64_t delta(uint64_t now, uint64_t before) { return now >= before ? now - before : now; }

double ctxd__histogram_quantile(const ctxd__histogram_t *h, double q) {
  if (h->buckets == NULL || h->count == 0) return 0;
  const ctxd__buckets_t *b = h->buckets;
  double rank = q * (double)h->count;
  uint64_t below = 0;
  for (size_t i = 0; i <= b->n; i++) {
    if (h->counts[i] == 0 || (double)(below + h->counts[i]) < rank) {
      below += h->counts[i];
      continue;
    }
    if (i == b->n) return b->n > 0 ? b->le[b->n - 1] : 0;
    double lo = i == 0 ? 0 : b->le[i - 1], hi = b->le[i];
    return lo + (hi - lo) * (rank - (double)below) / (double)h->counts[i];
  }
  return b->n > 0 ? b->le[b->n - 1] : 0;
}

void ctxd__ring_add(ctxd__ring_t *r, const ctxd__sample_t *s) {
  const ctxd__sample_t *p = &r->last;
  if (r->has_last && s->mono_ms > p->mono_ms) {
    double dt = (double)(s->mono_ms - p->mono_ms) / 1000.0;
    ctxd__histogram_t d = s->handler;
    int reset = s->handler.count < p->handler.count;
    d.count = reset ? s->handler.count : s->handler.count - p->handler.count;
    for (size_t i = 0; !reset && i < CTXD__HISTOGRAM_MAX_BUCKETS; i++)
      d.counts[i] = delta(s->handler.counts[i], p->handler.counts[i]);
    ctxd__point_t *pt = &r->points[r->head];
    *pt = (ctxd__point_t){
        .t = s->t_ms / 1000,
        .rate = (double)delta(s->handled, p->handled) / dt,
        .errors = (double)delta(s->errored, p->errored) / dt,
        .queue_depth = s->queue_depth,
        .p50_ms = ctxd__histogram_quantile(&d, 0.5) * 1000.0,
        .p99_ms = ctxd__histogram_quantile(&d, 0.99) * 1000.0,
    };
    r->head = (r->head + 1) % CTXD__SERIES_POINTS;
    if (r->n < CTXD__SERIES_POINTS) r->n++;
  }
  r->last = *s;
  r->has_last = 1;
}

const ctxd__point_t *ctxd__ring_at(const ctxd__ring_t *r, size_t i) {
  return &r->points[(r->head + CTXD__SERIES_POINTS - r->n + i) % CTXD__SERIES_POINTS];
}
