#include "endpoint.h"

#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "dispatch.h"
#include "host.h"

const ctxd__handler_t *ctxd__endpoint_find(const ctxd__endpoint_t *ep, const char *const *types,
                                           size_t ntypes) {
  for (size_t t = 0; t < ntypes; t++)
    for (size_t i = 0; i < ep->nhandlers; i++)
      if (strcmp(ep->handlers[i].type, types[t]) == 0) return &ep->handlers[i];
  return NULL;
}

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
  if (tail != NULL && tail->gen == b->gen && tail->n < tail->cap) {
    size_t k = tail->cap - tail->n < b->n ? tail->cap - tail->n : b->n;
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

ctxd__batch_t *ctxd__endpoint_take(ctxd__endpoint_t *ep, int *partial) {
  for (;;) {
    ctxd__batch_t *b = ep->queue_head;
    *partial = 0;
    /* queued batches are finished even when stopping: they are already received */
    if (b == NULL && ep->stopping) return NULL;
    if (b == NULL) {
      pthread_cond_wait(&ep->cv, &ep->mu);
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

static void *worker_main(void *arg) {
  ctxd__endpoint_t *ep = arg;
  PGconn *conn = NULL;
  int partial = 0; /* the batch this worker ran last was partial */
  for (;;) {
    pthread_mutex_lock(&ep->mu);
    ep->partial_running -= partial;
    ctxd__batch_t *b = ctxd__endpoint_take(ep, &partial);
    pthread_mutex_unlock(&ep->mu);
    if (b == NULL) break;
    ctxd__batch_run(b, &conn, ctxd__host_config(ep->host));
    ctxd__host_complete(ep->host, b);
  }
  if (conn != NULL) PQfinish(conn);
  return NULL;
}

int ctxd__endpoint_start_workers(ctxd__endpoint_t *ep) {
  size_t n = (size_t)ep->settings.workers;
  ep->stopping = 0; /* started again after a plugin swap */
  ep->threads = calloc(n, sizeof *ep->threads);
  if (ep->threads == NULL) return CTXD_ENOMEM;
  for (; ep->nthreads < n; ep->nthreads++)
    if (pthread_create(&ep->threads[ep->nthreads], NULL, worker_main, ep) != 0) return CTXD_ENOMEM;
  return 0;
}

void ctxd__endpoint_stop_workers(ctxd__endpoint_t *ep) {
  pthread_mutex_lock(&ep->mu);
  ep->stopping = 1;
  pthread_cond_broadcast(&ep->cv);
  pthread_cond_broadcast(&ep->pause_cv);
  pthread_mutex_unlock(&ep->mu);
  for (size_t i = 0; i < ep->nthreads; i++) pthread_join(ep->threads[i], NULL);
  free(ep->threads);
  ep->threads = NULL;
  ep->nthreads = 0;
}

void ctxd__delivery_free(ctxd__delivery_t *d) {
  if (d == NULL) return;
  amqp_destroy_message(&d->msg);
  free(d->reason);
  free(d->fault_type);
  free(d);
}
