/* The cost of recording what a plugin publishes (runtime/observed.c), per call, on the
 * publish path's common case: triples already known, from several worker threads at once.
 * Prints nanoseconds per call; not a test. */
#include <pthread.h>
#include <stdio.h>
#include <time.h>

#include "observed.h"

#define THREADS 2
#define CALLS 2000000
#define KNOWN 40

static ctxd__observed_t seen;
static char types[KNOWN][64], exchanges[KNOWN][64];

static void *publisher(void *arg) {
  (void)arg;
  for (int i = 0; i < CALLS; i++)
    ctxd__observed_add(&seen, "inventory", types[i % KNOWN], exchanges[i % KNOWN]);
  return NULL;
}

int main(void) {
  ctxd__observed_init(&seen);
  for (int i = 0; i < KNOWN; i++) {
    snprintf(types[i], sizeof types[i], "Inventory.Contracts.v1:Event%d", i);
    snprintf(exchanges[i], sizeof exchanges[i], "Inventory.Contracts.v1:Event%d", i);
    ctxd__observed_add(&seen, "inventory", types[i], exchanges[i]);
  }
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  pthread_t t[THREADS];
  for (int i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, publisher, NULL);
  for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double ns = (double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec);
  printf("observed: %d threads x %d calls, %d known triples: %.1f ns a call (wall / calls per thread)\n",
         THREADS, CALLS, KNOWN, ns / CALLS);
  ctxd__observed_free(&seen);
  return 0;
}
