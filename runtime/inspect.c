#include "inspect.h"

#include <stdlib.h>

#include "ctxd/errno.h"
#include "series.h"

int ctxd__inspect_sent(ctxd__inspect_t *in, ctxd__endpoint_t *ep) {
  if (in->n == in->cap) { /* grow, unwrapping the ring */
    size_t cap = in->cap > 0 ? in->cap * 2 : 16;
    ctxd__endpoint_t **v = malloc(cap * sizeof *v);
    if (v == NULL) return CTXD_ENOMEM;
    for (size_t i = 0; i < in->n; i++) v[i] = in->fifo[(in->head + i) % in->cap];
    free(in->fifo);
    in->fifo = v;
    in->cap = cap;
    in->head = 0;
  }
  in->fifo[(in->head + in->n++) % in->cap] = ep;
  ep->inspecting++;
  return 0;
}

int ctxd__inspect_send(ctxd__inspect_t *in, ctxd__broker_t *b, ctxd__endpoint_t *ep, const char *queue) {
  char err[256];
  if (!in->open) {
    if (ctxd__broker_channel_open(b, CTXD__INSPECT_CHANNEL, err, sizeof err) != 0) return CTXD_EBROKER;
    in->open = 1;
  }
  int rc = ctxd__inspect_sent(in, ep);
  if (rc != 0) return rc;
  return ctxd__broker_queue_inspect(b, CTXD__INSPECT_CHANNEL, queue) == 0 ? 0 : CTXD_ECLOSED;
}

static ctxd__endpoint_t *pop(ctxd__inspect_t *in) {
  if (in->n == 0) return NULL;
  ctxd__endpoint_t *ep = in->fifo[in->head];
  in->head = (in->head + 1) % in->cap;
  in->n--;
  return ep;
}

void ctxd__inspect_answered(ctxd__inspect_t *in, uint64_t messages, uint64_t consumers, int64_t now_ms) {
  ctxd__endpoint_t *ep = pop(in);
  if (ep == NULL || ep->inspecting == 0) return; /* its connection's round was forgotten */
  ep->inspect_messages += messages;
  ep->inspect_consumers += consumers;
  if (--ep->inspecting > 0) return;
  ep->queue_depth = (int64_t)ep->inspect_messages;
  ep->consumers = (int64_t)ep->inspect_consumers;
  ep->inspected_at = now_ms;
  ep->inspect_messages = ep->inspect_consumers = 0;
}

/* Ends ep's round unanswered. */
static void abandon(ctxd__endpoint_t *ep) {
  ep->inspecting = 0;
  ep->inspect_messages = ep->inspect_consumers = 0;
}

void ctxd__inspect_refused(ctxd__inspect_t *in) {
  ctxd__endpoint_t *ep = pop(in);
  if (ep != NULL) {
    ep->queue_depth = ep->consumers = -1;
    abandon(ep);
  }
  while ((ep = pop(in)) != NULL) abandon(ep);
  in->open = 0;
}

void ctxd__inspect_reset(ctxd__inspect_t *in) {
  in->head = in->n = 0;
  in->open = 0;
}

void ctxd__inspect_free(ctxd__inspect_t *in) {
  free(in->fifo);
  *in = (ctxd__inspect_t){0};
}

void ctxd__inspect_figures(const ctxd__endpoint_t *ep, int64_t now_ms, int64_t *depth, int64_t *consumers) {
  int fresh = now_ms - ep->inspected_at <= 2 * CTXD__SERIES_INTERVAL_MS;
  *depth = fresh ? ep->queue_depth : -1;
  *consumers = fresh ? ep->consumers : -1;
}
