#include "observed.h"

#include <stdlib.h>
#include <string.h>

void ctxd__observed_init(ctxd__observed_t *o) {
  memset(o, 0, sizeof *o);
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

void ctxd__observed_add(ctxd__observed_t *o, const char *plugin, const char *message_type,
                        const char *exchange) {
  pthread_mutex_lock(&o->mu);
  size_t i = 0;
  while (i < o->n && (strcmp(o->v[i].exchange, exchange) != 0 ||
                      strcmp(o->v[i].message_type, message_type) != 0 || strcmp(o->v[i].plugin, plugin) != 0))
    i++;
  if (i == o->n && o->n < CTXD__OBSERVED_MAX) {
    ctxd__sent_t s = {strdup(plugin), strdup(message_type), strdup(exchange)};
    if (s.plugin != NULL && s.message_type != NULL && s.exchange != NULL) {
      o->v[o->n++] = s;
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
