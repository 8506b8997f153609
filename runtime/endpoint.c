#include "endpoint.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "msgname.h"

/* ---- the set and registration ----------------------------------------------------------- */

void ctxd__endpoints_init(ctxd__endpoints_t *set, const ctxd__endpoint_env_t *env, int first_channel) {
  memset(set, 0, sizeof *set);
  set->env = *env;
  set->first_channel = first_channel;
}

static void handler_free(ctxd__handler_t *hd) {
  free(hd->type);
  free(hd->upcast_to);
}

static void endpoint_free(ctxd__endpoint_t *ep) {
  for (size_t k = 0; k < ep->nhandlers; k++) handler_free(&ep->handlers[k]);
  free(ep->handlers);
  ctxd__ledger_free(&ep->ledger);
  pthread_mutex_destroy(&ep->mu);
  pthread_cond_destroy(&ep->cv);
  pthread_cond_destroy(&ep->pause_cv);
  free(ep->name);
  free(ep);
}

void ctxd__endpoints_free(ctxd__endpoints_t *set) {
  for (size_t i = 0; i < set->n; i++) endpoint_free(set->v[i]);
  free(set->v);
  set->v = NULL;
  set->n = 0;
}

ctxd__endpoint_t *ctxd__endpoints_find(const ctxd__endpoints_t *set, const char *name) {
  for (size_t i = 0; i < set->n; i++)
    if (strcmp(set->v[i]->name, name) == 0) return set->v[i];
  return NULL;
}

ctxd__endpoint_t *ctxd__endpoints_of_channel(const ctxd__endpoints_t *set, int channel) {
  size_t i = (size_t)(channel - set->first_channel);
  return channel >= set->first_channel && i < set->n ? set->v[i] : NULL;
}

static ctxd__endpoint_t *endpoint_new(ctxd__endpoints_t *set, const char *name) {
  ctxd__endpoint_t **grown = realloc(set->v, (set->n + 1) * sizeof *grown);
  if (grown == NULL) return NULL;
  set->v = grown;
  ctxd__endpoint_t *ep = calloc(1, sizeof *ep);
  if (ep == NULL || (ep->name = strdup(name)) == NULL) {
    free(ep);
    return NULL;
  }
  const ctxd__config_t *cfg = set->env.cfg;
  ep->env = &set->env;
  ep->settings = *ctxd__config_endpoint(cfg, name);
  ep->own = ctxd__config_endpoint_own(cfg, name);
  ep->nredelivery =
      ctxd__config_intervals(ep->settings.redelivery_ms, ep->redelivery_ms, CTXD__MAX_REDELIVERIES);
  ep->channel = set->first_channel + (int)set->n;
  ep->queue_depth = ep->consumers = -1;
  ctxd__histogram_init(&ep->stats.handler_seconds, &ctxd__buckets_seconds);
  ctxd__histogram_init(&ep->stats.batch_seconds, &ctxd__buckets_seconds);
  ctxd__histogram_init(&ep->stats.batch_size, &ctxd__buckets_sizes);
  ep->stats.db_ok = 1; /* the start-up migrations just reached it */
  pthread_mutex_init(&ep->mu, NULL);
  pthread_cond_init(&ep->cv, NULL);
  pthread_cond_init(&ep->pause_cv, NULL);
  set->v[set->n++] = ep;
  return ep;
}

int ctxd__endpoints_add_ingest(ctxd__endpoints_t *set) {
  int64_t sources = (int64_t)set->n;
  ctxd__endpoint_t *ep = endpoint_new(set, CTXD__INGEST_ENDPOINT);
  if (ep == NULL) return CTXD_ENOMEM;
  ep->ingest = 1;
  /* one worker, one connection, however many endpoints there are; its consumers share
   * the prefetch, at least one delivery each */
  ep->settings.workers = 1;
  if (ep->settings.prefetch < sources) ep->settings.prefetch = sources;
  if (ep->settings.batch_size > ep->settings.prefetch) ep->settings.batch_size = ep->settings.prefetch;
  ep->nredelivery = 0;
  return 0;
}

static int valid_endpoint_name(const char *s) {
  if (s == NULL || *s == '\0' || strlen(s) > 200) return 0;
  for (; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_' ||
          *s == '-' || *s == '.'))
      return 0;
  return 1;
}

/* The batch handler of c; NULL when c was built before ABI 1.3 (its size ends before
 * the field, which must not be read) or has none. */
static ctxd_batch_handler_cb batch_handler_of(const ctxd_consumer_t *c) {
  return c->size >= offsetof(ctxd_consumer_t, batch_handler) + sizeof c->batch_handler ? c->batch_handler
                                                                                       : NULL;
}

int ctxd__consumer_check(const ctxd_consumer_t *c) {
  if (c == NULL || c->size < CTXD__CONSUMER_SIZE_1_0 ||
      (c->handler == NULL) == (batch_handler_of(c) == NULL) || !valid_endpoint_name(c->endpoint) ||
      c->message_type == NULL || strchr(c->message_type, ':') == NULL)
    return CTXD_EINVAL;
  if (c->queue_type != NULL && strcmp(c->queue_type, "classic") != 0 && strcmp(c->queue_type, "quorum") != 0)
    return CTXD_EINVAL;
  if (c->prefetch > 65535 || c->workers > 64) return CTXD_EINVAL;
  /* the host's own endpoints (CTXD__INGEST_ENDPOINT) have these names */
  if (strncmp(c->endpoint, "ctxd.", 5) == 0) return CTXD_EINVAL;
  return 0;
}

/* Takes what the plugin suggests for settings the configuration leaves open. */
static void suggest(ctxd__endpoint_t *ep, const ctxd_consumer_t *c) {
  unsigned done = ep->own;
  if (c->prefetch && !(done & CTXD__EP_PREFETCH)) ep->settings.prefetch = c->prefetch;
  if (c->workers && !(done & CTXD__EP_WORKERS)) ep->settings.workers = c->workers;
  if (c->batch_size && !(done & CTXD__EP_BATCH_SIZE)) ep->settings.batch_size = c->batch_size;
  if (c->queue_type != NULL && !(done & CTXD__EP_QUEUE_TYPE))
    ep->settings.queue_type = strcmp(c->queue_type, "quorum") == 0 ? "quorum" : "classic";
  /* the first suggestion of each wins */
  ep->own |= (c->prefetch ? CTXD__EP_PREFETCH : 0) | (c->workers ? CTXD__EP_WORKERS : 0) |
             (c->batch_size ? CTXD__EP_BATCH_SIZE : 0) | (c->queue_type ? CTXD__EP_QUEUE_TYPE : 0);
  /* a batch never waits for more than the broker may hand over */
  if (ep->settings.batch_size > ep->settings.prefetch) ep->settings.batch_size = ep->settings.prefetch;
}

/* Adds a handler of `type` (upcasting to `upcast_to` when not NULL). A plugin's own
 * registration of a type replaces an implicit upcasting one. */
static int add_entry(ctxd__endpoint_t *ep, ctxd_plugin_t *p, const ctxd_consumer_t *c, const char *type,
                     const char *upcast_to) {
  for (size_t i = 0; i < ep->nhandlers; i++) {
    ctxd__handler_t *hd = &ep->handlers[i];
    if (strcmp(hd->type, type) != 0) continue;
    if (upcast_to != NULL) return 0; /* the type has a handler of its own already */
    if (hd->upcast_to == NULL) return CTXD_EEXIST;
    free(hd->upcast_to);
    *hd = (ctxd__handler_t){
        .type = hd->type, .fn = c->handler, .batch_fn = batch_handler_of(c), .data = c->data, .plugin = p};
    return 0;
  }
  ctxd__handler_t *grown = realloc(ep->handlers, (ep->nhandlers + 1) * sizeof *grown);
  if (grown == NULL) return CTXD_ENOMEM;
  ep->handlers = grown;
  ctxd__handler_t hd = {
      .type = strdup(type), .fn = c->handler, .batch_fn = batch_handler_of(c), .data = c->data, .plugin = p};
  if (upcast_to != NULL) hd.upcast_to = strdup(upcast_to);
  if (hd.type == NULL || (upcast_to != NULL && hd.upcast_to == NULL)) {
    handler_free(&hd);
    return CTXD_ENOMEM;
  }
  ep->handlers[ep->nhandlers++] = hd;
  return 0;
}

/* The handler for c's type, and one for each older version that upcasts to it: old
 * publishers keep reaching a handler that asked for the newest version. */
static int add_handler(ctxd__endpoint_t *ep, ctxd_plugin_t *p, const ctxd_consumer_t *c) {
  int rc = add_entry(ep, p, c, c->message_type, NULL);
  const char *older[16];
  size_t n = ctxd__contracts_older(ep->env->contracts, c->message_type, older, 16);
  for (size_t i = 0; rc == 0 && i < n && i < 16; i++) rc = add_entry(ep, p, c, older[i], c->message_type);
  return rc;
}

int ctxd__endpoints_register(ctxd__endpoints_t *set, ctxd_plugin_t *p, const ctxd_consumer_t *c) {
  int rc = ctxd__consumer_check(c);
  if (rc != 0) return rc;
  ctxd__endpoint_t *ep = ctxd__endpoints_find(set, c->endpoint);
  if (ep == NULL && (ep = endpoint_new(set, c->endpoint)) == NULL) return CTXD_ENOMEM;
  suggest(ep, c);
  return add_handler(ep, p, c);
}

int ctxd__endpoint_uses(const ctxd__endpoint_t *ep, const ctxd_plugin_t *p) {
  for (size_t k = 0; k < ep->nhandlers; k++)
    if (ep->handlers[k].plugin == p) return 1;
  return 0;
}

int ctxd__endpoint_replace(ctxd__endpoint_t *ep, const ctxd_plugin_t *old, ctxd_plugin_t *fresh,
                           const ctxd_consumer_t *staged, size_t nstaged) {
  size_t kept = 0;
  for (size_t k = 0; k < ep->nhandlers; k++) {
    if (ep->handlers[k].plugin == old)
      handler_free(&ep->handlers[k]);
    else
      ep->handlers[kept++] = ep->handlers[k];
  }
  ep->nhandlers = kept;
  int rc = 0;
  for (size_t k = 0; k < nstaged; k++) {
    if (strcmp(staged[k].endpoint, ep->name) != 0) continue;
    int one = add_handler(ep, fresh, &staged[k]);
    if (rc == 0) rc = one;
  }
  return rc;
}

const ctxd__handler_t *ctxd__endpoint_find(const ctxd__endpoint_t *ep, const char *const *types,
                                           size_t ntypes) {
  for (size_t t = 0; t < ntypes; t++)
    for (size_t i = 0; i < ep->nhandlers; i++)
      if (ctxd__msgname_eq(ep->handlers[i].type, types[t])) return &ep->handlers[i];
  return NULL;
}

/* ---- receiving (loop thread) ---------------------------------------------------------- */

int ctxd__endpoint_open(ctxd__endpoint_t *ep) {
  return ctxd__ledger_init(&ep->ledger, (size_t)ep->settings.prefetch);
}

int ctxd__endpoint_receive(ctxd__endpoint_t *ep, ctxd__delivery_t *d, uint64_t gen) {
  int rc = ctxd__ledger_receive(&ep->ledger, d->tag);
  size_t cap = (size_t)ep->settings.batch_size,
         room = cap > 1 ? cap * (size_t)ep->settings.batch_growth : cap;
  if (rc == 0 && ep->filling == NULL) {
    ep->filling = calloc(1, sizeof *ep->filling + room * sizeof(ctxd__delivery_t *));
    if (ep->filling == NULL) {
      rc = CTXD_ENOMEM;
    } else {
      ep->filling->mail.done = ep->env->batch_done;
      ep->filling->ep = ep;
      ep->filling->gen = gen;
      ep->filling->cap = cap;
      ep->filling->room = room;
    }
  }
  if (rc != 0) {
    ctxd__delivery_free(d);
    return rc;
  }
  d->ep = ep;
  ctxd__intake_hold(ep->env->intake, d->msg.body.len);
  ep->inflight++;
  ep->received++;
  ep->filling->items[ep->filling->n++] = d;
  if (ep->filling->n == cap) ctxd__endpoint_flush(ep);
  return 0;
}

void ctxd__endpoint_flush(ctxd__endpoint_t *ep) {
  if (ep->filling == NULL || ep->filling->n == 0) return;
  ctxd__endpoint_submit(ep, ep->filling);
  ep->filling = NULL;
}

void ctxd__endpoint_forget(ctxd__endpoint_t *ep) {
  ep->consuming = ep->cancelling = 0;
  ep->inspecting = 0;
  ep->inspect_messages = ep->inspect_consumers = 0;
  ep->queue_depth = ep->consumers = -1;
  ep->inflight -= ctxd__ledger_reset(&ep->ledger);
  if (ep->filling != NULL) {
    ep->inflight -= ep->filling->n;
    ctxd__batch_free(ep->filling);
    ep->filling = NULL;
  }
}

/* ---- the queue to the workers ------------------------------------------------------------ */

int ctxd__endpoint_stopping(ctxd__endpoint_t *ep) {
  pthread_mutex_lock(&ep->mu);
  int s = ep->stopping;
  pthread_mutex_unlock(&ep->mu);
  return s;
}

void ctxd__endpoint_pause(ctxd__endpoint_t *ep, int ms) {
  struct timespec until = ctxd__clock_deadline(ms);
  pthread_mutex_lock(&ep->mu);
  /* not ep->cv: a submit's signal, meant for an idle worker, would end the backoff and
   * leave the batch waiting */
  if (!ep->stopping) pthread_cond_timedwait(&ep->pause_cv, &ep->mu, &until);
  pthread_mutex_unlock(&ep->mu);
}

void ctxd__endpoint_submit(ctxd__endpoint_t *ep, ctxd__batch_t *b) {
  b->next = NULL;
  pthread_mutex_lock(&ep->mu);
  ctxd__batch_t *tail = ep->queue_tail;
  /* a batch of an older connection must stay apart: its completion is dropped whole */
  size_t room = tail == NULL ? 0 : tail->room > tail->cap ? tail->room : tail->cap;
  if (tail != NULL && tail->gen == b->gen && tail->n < room) {
    size_t k = room - tail->n < b->n ? room - tail->n : b->n;
    memcpy(tail->items + tail->n, b->items, k * sizeof *b->items);
    tail->n += k;
    b->n -= k;
    memmove(b->items, b->items + k, b->n * sizeof *b->items);
  }
  if (b->n == 0) {
    free(b);
  } else {
    b->queued_us = ctxd__clock_us();
    if (tail != NULL)
      tail->next = b;
    else
      ep->queue_head = b;
    ep->queue_tail = b;
    pthread_cond_signal(&ep->cv);
  }
  pthread_mutex_unlock(&ep->mu);
}

ctxd__batch_t *ctxd__endpoint_take(ctxd__endpoint_t *ep, int *partial, int64_t idle_ms) {
  struct timespec idle_until = {0, 0}; /* set when the first wait begins */
  for (;;) {
    ctxd__batch_t *b = ep->queue_head;
    *partial = 0;
    /* queued batches are finished even when stopping: they are already received */
    if (b == NULL && ep->stopping) return NULL;
    if (b == NULL && idle_ms <= 0) {
      pthread_cond_wait(&ep->cv, &ep->mu);
      continue;
    }
    if (b == NULL) {
      if (idle_until.tv_sec == 0) idle_until = ctxd__clock_deadline(idle_ms);
      if (pthread_cond_timedwait(&ep->cv, &ep->mu, &idle_until) == ETIMEDOUT && ep->queue_head == NULL &&
          !ep->stopping)
        return NULL;
      continue;
    }
    int64_t waited = ctxd__clock_us() - b->queued_us;
    if (b->n < b->cap && ep->partial_running > 0 && waited < CTXD__PARTIAL_WAIT_US && !ep->stopping) {
      struct timespec until = ctxd__clock_deadline_us(CTXD__PARTIAL_WAIT_US - waited);
      pthread_cond_timedwait(&ep->cv, &ep->mu, &until);
      continue;
    }
    ep->queue_head = b->next;
    if (ep->queue_head == NULL) ep->queue_tail = NULL;
    *partial = b->n < b->cap;
    ep->partial_running += *partial;
    return b;
  }
}

void ctxd__delivery_release(ctxd__delivery_t *d) {
  /* only a delivery an endpoint took in was counted */
  if (d->ep != NULL) ctxd__intake_release(d->ep->env->intake, d->msg.body.len);
  amqp_destroy_message(&d->msg);
  memset(&d->msg, 0, sizeof d->msg);
}

size_t ctxd__endpoint_abandon(ctxd__endpoint_t *ep) {
  pthread_mutex_lock(&ep->mu);
  ctxd__batch_t *b = ep->queue_head;
  ep->queue_head = ep->queue_tail = NULL;
  size_t busy = 0;
  for (size_t i = 0; ep->workers != NULL && i < ep->nthreads; i++) busy += ep->workers[i].busy != 0;
  pthread_mutex_unlock(&ep->mu);
  while (b != NULL) {
    ctxd__batch_t *next = b->next;
    ctxd__batch_free(b);
    b = next;
  }
  return busy;
}

void ctxd__delivery_free(ctxd__delivery_t *d) {
  if (d == NULL) return;
  ctxd__delivery_release(d);
  free(d->routing_key);
  free(d->queue);
  free(d->reason);
  free(d->fault_type);
  free(d->fault_plugin);
  free(d->fault_message_type);
  free(d);
}

void ctxd__batch_free(ctxd__batch_t *b) {
  for (size_t i = 0; i < b->n; i++) ctxd__delivery_free(b->items[i]);
  ctxd__outrows_free(&b->rows);
  free(b);
}
