#include "executor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "uuid.h"

#define DEFAULT_MAX_ATTEMPTS 5
#define DEFAULT_BACKOFF_MS 1000
#define DEFAULT_TIMEOUT_MS 30000
#define MAX_BACKOFF_MS (3600 * 1000)

#define EXECUTOR_HAS(e, field) ((e)->size >= offsetof(ctxd_executor_t, field) + sizeof((e)->field))

static int name_ok(const char *s) { return s != NULL && *s != '\0' && strlen(s) <= 255; }

int ctxd__executor_add(ctxd__executors_t *set, const char *plugin, const ctxd_executor_t *e) {
  if (e == NULL || !EXECUTOR_HAS(e, timeout_ms) || !name_ok(e->kind) || e->fn == NULL ||
      !name_ok(e->outcome_endpoint))
    return CTXD_EINVAL;
  if (ctxd__executor_find(set, e->kind) != NULL) return CTXD_EEXIST;
  ctxd__executor_t **v = realloc(set->v, (set->n + 1) * sizeof *v);
  if (v == NULL) return CTXD_ENOMEM;
  set->v = v;
  ctxd__executor_t *x = calloc(1, sizeof *x);
  if (x == NULL) return CTXD_ENOMEM;
  x->plugin = strdup(plugin);
  x->kind = strdup(e->kind);
  x->outcome_endpoint = strdup(e->outcome_endpoint);
  if (x->plugin == NULL || x->kind == NULL || x->outcome_endpoint == NULL) {
    free(x->plugin);
    free(x->kind);
    free(x->outcome_endpoint);
    free(x);
    return CTXD_ENOMEM;
  }
  x->fn = e->fn;
  x->data = e->data;
  x->max_attempts = e->max_attempts != 0 ? e->max_attempts : DEFAULT_MAX_ATTEMPTS;
  x->backoff_ms = e->backoff_ms != 0 ? e->backoff_ms : DEFAULT_BACKOFF_MS;
  x->timeout_ms = e->timeout_ms != 0 ? e->timeout_ms : DEFAULT_TIMEOUT_MS;
  v[set->n++] = x;
  return 0;
}

const ctxd__executor_t *ctxd__executor_find(const ctxd__executors_t *set, const char *kind) {
  for (size_t i = 0; kind != NULL && i < set->n; i++)
    if (strcmp(set->v[i]->kind, kind) == 0) return set->v[i];
  return NULL;
}

const char *ctxd__call_field(const ctxd_call_t *call, ctxd_call_field_t field) {
  if (call == NULL) return NULL;
  switch (field) {
  case CTXD_CALL_KIND: return call->kind;
  case CTXD_CALL_KEY: return call->key;
  case CTXD_CALL_PAYLOAD: return call->payload;
  case CTXD_CALL_ATTEMPT: return call->attempt;
  }
  return NULL;
}

int ctxd__call_outcome(const ctxd_call_t *cc, const char *outcome_json) {
  ctxd_call_t *call = (ctxd_call_t *)cc;
  json_t *o = outcome_json != NULL ? json_loads(outcome_json, 0, NULL) : NULL;
  int ok = json_is_object(o);
  char *text = ok ? json_dumps(o, JSON_COMPACT) : NULL;
  json_decref(o);
  if (call == NULL || !ok) {
    free(text);
    return CTXD_EINVAL;
  }
  if (text == NULL) return CTXD_ENOMEM;
  free(call->outcome);
  call->outcome = text;
  return 0;
}

int64_t ctxd__call_backoff_ms(uint32_t backoff_ms, uint32_t attempt) {
  int64_t d = backoff_ms;
  for (uint32_t i = 1; i < attempt && d < MAX_BACKOFF_MS; i++) d *= 2;
  return d < MAX_BACKOFF_MS ? d : MAX_BACKOFF_MS;
}

void ctxd__call_message_id(const char *plugin, const char *kind, const char *key, char id[37]) {
  /* plugin names (64), kinds (255) and keys (CTXD__CALL_KEY_MAX) are bounded: this holds
   * the longest. "ctxd.call/<len>:<plugin><len>:<kind><len>:<key>": a '/' in a kind or a key
   * cannot make two calls' names meet */
  char name[1024];
  snprintf(name, sizeof name, "ctxd.call/%zu:%s%zu:%s%zu:%s", strlen(plugin), plugin, strlen(kind), kind,
           strlen(key), key);
  ctxd__uuid_derive(name, id);
}

void ctxd__executors_signal(ctxd__executors_t *set) {
  for (size_t i = 0; i < set->n; i++) {
    ctxd__executor_t *e = set->v[i];
    if (!e->running) continue;
    pthread_mutex_lock(&e->mu);
    e->stopping = 1;
    pthread_cond_signal(&e->cv);
    pthread_mutex_unlock(&e->mu);
  }
}

int ctxd__executors_exited(ctxd__executors_t *set) {
  int all = 1;
  for (size_t i = 0; i < set->n; i++) {
    ctxd__executor_t *e = set->v[i];
    if (!e->running) continue;
    pthread_mutex_lock(&e->mu);
    if (!e->exited) all = 0;
    pthread_mutex_unlock(&e->mu);
  }
  return all;
}

void ctxd__executors_stop(ctxd__executors_t *set) {
  ctxd__executors_signal(set);
  for (size_t i = 0; i < set->n; i++) {
    ctxd__executor_t *e = set->v[i];
    if (!e->running) continue;
    pthread_join(e->thread, NULL);
    free(e->exit_mail); /* posted unless the thread never reached its end */
    e->exit_mail = NULL;
    pthread_mutex_destroy(&e->mu);
    pthread_cond_destroy(&e->cv);
    e->running = 0;
  }
}

void ctxd__executors_free(ctxd__executors_t *set) {
  ctxd__executors_stop(set);
  for (size_t i = 0; i < set->n; i++) {
    free(set->v[i]->plugin);
    free(set->v[i]->kind);
    free(set->v[i]->outcome_endpoint);
    free(set->v[i]);
  }
  free(set->v);
  set->v = NULL;
  set->n = 0;
}
