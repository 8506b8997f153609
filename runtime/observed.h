/* What the plugins were seen sending, for the console's topology: each (plugin, message
 * type, exchange) the outbox wrote a row for (an attempted publish: the row's transaction
 * may still roll back), recorded the first time. Host-wide and any thread (the workers
 * record, the loop reads). On the publish path the common case, a triple already known
 * or a full set, takes no lock: a flag and a table of the triples' 64-bit hashes are read
 * with atomic loads; a mutex guards adding. Bounded: past CTXD__OBSERVED_MAX entries
 * nothing new is recorded. */
#ifndef CTXD_RUNTIME_OBSERVED_H
#define CTXD_RUNTIME_OBSERVED_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define CTXD__OBSERVED_MAX 256
#define CTXD__OBSERVED_SLOTS 512 /* the hash table: a power of two, at most half full */

typedef struct {
  char *plugin, *message_type, *exchange; /* owned */
} ctxd__sent_t;

typedef struct {
  pthread_mutex_t mu;
  /* open addressing, linear probing, 0 empty; slots are only ever filled (under mu) */
  _Atomic uint64_t hashes[CTXD__OBSERVED_SLOTS];
  atomic_int full;
  ctxd__sent_t v[CTXD__OBSERVED_MAX]; /* under mu */
  size_t n;
} ctxd__observed_t;

void ctxd__observed_init(ctxd__observed_t *o);
void ctxd__observed_free(ctxd__observed_t *o);

/* Records the triple unless it is known (or the set is full, or memory is short, or
 * another triple has the same 64-bit hash: the topology only misses it). */
void ctxd__observed_add(ctxd__observed_t *o, const char *plugin, const char *message_type,
                        const char *exchange);

/* Calls f for each triple of plugin, under the lock (f must not call back). */
void ctxd__observed_each(ctxd__observed_t *o, const char *plugin, void (*f)(void *arg, const ctxd__sent_t *s),
                         void *arg);

#endif
