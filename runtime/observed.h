/* What the plugins were seen sending, for the console's topology: each (plugin, message
 * type, exchange) the outbox wrote a row for, recorded the first time. Host-wide and any
 * thread (the workers record, the loop reads): a mutex guards it. Bounded: past
 * CTXD__OBSERVED_MAX entries nothing new is recorded. */
#ifndef CTXD_RUNTIME_OBSERVED_H
#define CTXD_RUNTIME_OBSERVED_H

#include <pthread.h>
#include <stddef.h>

#define CTXD__OBSERVED_MAX 256

typedef struct {
  char *plugin, *message_type, *exchange; /* owned */
} ctxd__sent_t;

typedef struct {
  pthread_mutex_t mu;
  ctxd__sent_t v[CTXD__OBSERVED_MAX];
  size_t n;
} ctxd__observed_t;

void ctxd__observed_init(ctxd__observed_t *o);
void ctxd__observed_free(ctxd__observed_t *o);

/* Records the triple unless it is known (or the set is full, or memory is short: the
 * topology only misses it). */
void ctxd__observed_add(ctxd__observed_t *o, const char *plugin, const char *message_type,
                        const char *exchange);

/* Calls f for each triple of plugin, under the lock (f must not call back). */
void ctxd__observed_each(ctxd__observed_t *o, const char *plugin, void (*f)(void *arg, const ctxd__sent_t *s),
                         void *arg);

#endif
