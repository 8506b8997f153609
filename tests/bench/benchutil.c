#include "benchutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

double bench_now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void bench_sleep_s(double s) {
  struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
  nanosleep(&ts, NULL);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

double bench_median(const double *v, int n) {
  double *s = malloc((size_t)n * sizeof *s);
  if (s == NULL) abort(); /* a benchmark without a few bytes has nothing to report */
  memcpy(s, v, (size_t)n * sizeof *s);
  qsort(s, (size_t)n, sizeof *s, cmp_double);
  double m = n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
  free(s);
  return m;
}

int bench_log_has(const char *path, const char *needle) {
  FILE *f = fopen(path, "r");
  char line[4096];
  int found = 0;
  while (!found && f != NULL && fgets(line, sizeof line, f) != NULL) found = strstr(line, needle) != NULL;
  if (f != NULL) fclose(f);
  return found;
}
