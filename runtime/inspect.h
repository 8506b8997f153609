/* The queue figures the console shows (ready messages and consumers of each endpoint's
 * queues), asked of the broker with passive queue.declares on one channel of their own,
 * CTXD__INSPECT_CHANNEL, without waiting: the replies come back in the order the declares
 * went out, so a FIFO says which endpoint each one answers. A missing queue makes the
 * broker close that channel only (never an endpoint's: the connection stays); its
 * endpoint's figures become unknown and the channel is opened again at the next round.
 * Figures older than two sample intervals (replies not read while the intake is full)
 * count as unknown too. Loop thread only. */
#ifndef CTXD_RUNTIME_INSPECT_H
#define CTXD_RUNTIME_INSPECT_H

#include <stddef.h>
#include <stdint.h>

#include "broker.h"
#include "endpoint.h"

/* Above the publish channel's reopened numbers (broker.h), at RabbitMQ's default
 * channel_max: never an endpoint's nor the publish channel's. */
#define CTXD__INSPECT_CHANNEL 2047

typedef struct {
  int open;                /* on the current connection */
  ctxd__endpoint_t **fifo; /* a ring: the endpoint each unread reply answers, oldest at head */
  size_t head, n, cap;
} ctxd__inspect_t;

/* Sends a passive queue.declare of queue for ep (opening the channel first when it is not
 * open) and counts the reply ep waits for. 0, or CTXD_EBROKER / CTXD_ECLOSED (the
 * connection is unusable), CTXD_ENOMEM. */
int ctxd__inspect_send(ctxd__inspect_t *in, ctxd__broker_t *b, ctxd__endpoint_t *ep, const char *queue);

/* Notes that a declare for ep goes out (what ctxd__inspect_send does before sending). */
int ctxd__inspect_sent(ctxd__inspect_t *in, ctxd__endpoint_t *ep);

/* A queue.declare-ok read at loop time now_ms: added to its endpoint's round; the round's
 * sums become the endpoint's figures once its last reply is read. */
void ctxd__inspect_answered(ctxd__inspect_t *in, uint64_t messages, uint64_t consumers, int64_t now_ms);

/* The broker closed the channel: the declare at the head was refused (its endpoint's
 * figures become unknown), the later ones are discarded unanswered (their endpoints ask
 * again at the next round). The channel counts as closed; the caller answers the close. */
void ctxd__inspect_refused(ctxd__inspect_t *in);

/* The connection is gone: nothing is pending and the channel is closed. */
void ctxd__inspect_reset(ctxd__inspect_t *in);

void ctxd__inspect_free(ctxd__inspect_t *in);

/* ep's queue depth and consumers as the broker told, or -1 each when unknown or older
 * than two sample intervals at loop time now_ms. */
void ctxd__inspect_figures(const ctxd__endpoint_t *ep, int64_t now_ms, int64_t *depth, int64_t *consumers);

#endif
