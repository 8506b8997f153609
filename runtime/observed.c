#include "observed.h"

#include <stdlib.h>
#include <string.h>

void ctxd__observed_init(ctxd__observed_t *o) {
  memset(o, 0, sizeof *o);
  for (size_t i = 0; i < CTXD__OBSERVED_SLOTS; i++) atomic_init(&o->hashes[i], 0);
  atomic_init(&o->full, 0);
  pthread_mutex_init(&o->mu, NULL);
}

void ctxd__observed_free(ctxd__observed_t *o) {
  for (size_t i = 0; i < o->n; i++) {
    free(o->v[i].plugin);
    free(o->v[i].message_type);
    free(o->v[i].exchange);
  }
  o->n = 0;
  pthread_mutex_destroy(&o->mu);
}

/* A 64-bit hash of the three strings, eight bytes a step (the publish path pays for it);
 * each part's length is mixed in, so "ab","c" and "a","bc" differ. Never 0, which marks
 * an empty slot. */
static uint64_t triple_hash(const char *plugin, const char *message_type, const char *exchange) {
  const uint64_t k = 0x9E3779B97F4A7C15ULL;
  uint64_t h = 0;
  const char *parts[] = {plugin, message_type, exchange};
  for (size_t p = 0; p < 3; p++) {
    size_t len = strlen(parts[p]), i = 0;
    for (; i + 8 <= len; i += 8) {
      uint64_t w;
      memcpy(&w, parts[p] + i, 8);
      h = (h ^ w) * k;
      h ^= h >> 29;
    }
    uint64_t tail = len;
    memcpy(&tail, parts[p] + i, len - i); /* the length's low bytes give way to the last ones */
    h = (h ^ tail ^ ((uint64_t)len << 56)) * k;
    h ^= h >> 29;
  }
  h ^= h >> 33; /* MurmurHash3's finaliser */
  h *= 0xFF51AFD7ED558CCDULL;
  h ^= h >> 33;
  return h != 0 ? h : 1;
}

/* The slot holding h, or the empty one where it would go (the table is never full). */
static size_t probe(ctxd__observed_t *o, uint64_t h) {
  size_t i = (size_t)h & (CTXD__OBSERVED_SLOTS - 1);
  for (;;) {
    uint64_t x = atomic_load_explicit(&o->hashes[i], memory_order_acquire);
    if (x == h || x == 0) return i;
    i = (i + 1) & (CTXD__OBSERVED_SLOTS - 1);
  }
}

void ctxd__observed_add(ctxd__observed_t *o, const char *plugin, const char *message_type,
                        const char *exchange) {
  if (atomic_load_explicit(&o->full, memory_order_acquire)) return;
  uint64_t h = triple_hash(plugin, message_type, exchange);
  if (atomic_load_explicit(&o->hashes[probe(o, h)], memory_order_acquire) == h) return;
  pthread_mutex_lock(&o->mu);
  size_t slot = probe(o, h); /* again: another thread may have added it meanwhile */
  if (atomic_load_explicit(&o->hashes[slot], memory_order_relaxed) == 0 && o->n < CTXD__OBSERVED_MAX) {
    ctxd__sent_t s = {strdup(plugin), strdup(message_type), strdup(exchange)};
    if (s.plugin != NULL && s.message_type != NULL && s.exchange != NULL) {
      o->v[o->n++] = s;
      atomic_store_explicit(&o->hashes[slot], h, memory_order_release);
      if (o->n == CTXD__OBSERVED_MAX) atomic_store_explicit(&o->full, 1, memory_order_release);
    } else {
      free(s.plugin);
      free(s.message_type);
      free(s.exchange);
    }
  }
  pthread_mutex_unlock(&o->mu);
}

void ctxd__observed_each(ctxd__observed_t *o, const char *plugin, void (*f)(void *arg, const ctxd__sent_t *s),
                         void *arg) {
  pthread_mutex_lock(&o->mu);
  for (size_t i = 0; i < o->n; i++)
    if (strcmp(o->v[i].plugin, plugin) == 0) f(arg, &o->v[i]);
  pthread_mutex_unlock(&o->mu);
}
