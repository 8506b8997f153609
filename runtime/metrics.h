/* Metrics: fixed-bucket histograms and a writer of the Prometheus text exposition format
 * (version 0.0.4). Pure code without I/O or locks: whoever shares a histogram or a
 * ctxd__prom_t between threads holds its own lock around every call. */
#ifndef CTXD_RUNTIME_METRICS_H
#define CTXD_RUNTIME_METRICS_H

#include <stddef.h>
#include <stdint.h>

/* The Content-Type of a response carrying ctxd__prom_* output. */
#define CTXD__PROM_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Finite upper bounds of a histogram's buckets, ascending; the +Inf bucket is implied. */
typedef struct {
  const double *le;
  size_t n;
} ctxd__buckets_t;

/* 0.0005 s .. 10 s, for latencies. */
extern const ctxd__buckets_t ctxd__buckets_seconds;
/* 1 .. 1024, for sizes such as batch lengths. */
extern const ctxd__buckets_t ctxd__buckets_sizes;

/* Room for the largest bucket set above plus +Inf. */
#define CTXD__HISTOGRAM_MAX_BUCKETS 16

typedef struct {
  const ctxd__buckets_t *buckets;
  /* Observations per bucket (not cumulative); counts[buckets->n] is the +Inf bucket. */
  uint64_t counts[CTXD__HISTOGRAM_MAX_BUCKETS];
  uint64_t count;
  double sum;
} ctxd__histogram_t;

/* Empties h and gives it bucket set b (at most CTXD__HISTOGRAM_MAX_BUCKETS - 1 bounds;
 * b must outlive h). */
void ctxd__histogram_init(ctxd__histogram_t *h, const ctxd__buckets_t *b);

/* Counts value v (seconds, or a size) in the first bucket whose bound is >= v; NaN lands
 * in +Inf only. */
void ctxd__histogram_observe(ctxd__histogram_t *h, double v);

/* A growable, always NUL-terminated text buffer. Zero-initialise it; buf is NULL until
 * something is written. The caller owns buf and frees it with ctxd__prom_free. Every
 * writing function returns 0, or CTXD_ENOMEM and leaves the buffer as it was. */
typedef struct {
  char *buf;
  size_t len, cap;
} ctxd__prom_t;

void ctxd__prom_free(ctxd__prom_t *p);

/* Raw text, for bodies that are not metrics. */
int ctxd__prom_append(ctxd__prom_t *p, const char *s, size_t n);
int ctxd__prom_printf(ctxd__prom_t *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* "# HELP name help" (help escaped) and "# TYPE name type"; type is "counter", "gauge" or
 * "histogram". Once per metric family, before its samples. */
int ctxd__prom_help_type(ctxd__prom_t *p, const char *name, const char *help, const char *type);

/* Samples. name must be a valid metric name (the callers' constants, not checked). labels
 * is NULL or an array of name, value, name, value, ..., NULL; values are escaped, names
 * must be valid label names and no value may be NULL. */
int ctxd__prom_counter(ctxd__prom_t *p, const char *name, const char *const *labels, uint64_t value);
int ctxd__prom_gauge(ctxd__prom_t *p, const char *name, const char *const *labels, double value);
/* name_bucket{...,le="..."} (cumulative, ending with le="+Inf"), name_sum, name_count. */
int ctxd__prom_histogram(ctxd__prom_t *p, const char *name, const char *const *labels,
                         const ctxd__histogram_t *h);

#endif
