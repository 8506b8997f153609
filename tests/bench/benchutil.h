/* What the benchmark programs share (bench.c, bench_endpoints.c): clocks, medians, and
 * reading a process's /proc entries and a host's log. */
#ifndef CTXD_BENCHUTIL_H
#define CTXD_BENCHUTIL_H

#include <sys/types.h>

#include "procfs.h" /* a process's /proc entries */

/* Seconds on CLOCK_MONOTONIC. */
double bench_now_s(void);
void bench_sleep_s(double s);
/* The median of v[0..n), n >= 1; v is left as it is. */
double bench_median(const double *v, int n);
/* Whether a line of the file at path contains needle (0 when it cannot be read). */
int bench_log_has(const char *path, const char *needle);

#endif
