/* The delivery ledger of one consumer channel: which delivery tags are unsettled and in
 * what state, and what to tell the broker about them. A multiple-ack acknowledges every
 * earlier tag on the channel, so the ledger settles strictly in tag order: a run of
 * finished tags at its head becomes one acknowledgement, however the deliveries finished.
 * Pure bookkeeping, no I/O: the loop thread asks it what to send and sends it.
 *
 * RabbitMQ numbers deliveries 1, 2, 3, ... per channel and never has more than prefetch
 * of them unacknowledged, so a ring of prefetch slots holds every unsettled tag. */
#ifndef CTXD_RUNTIME_LEDGER_H
#define CTXD_RUNTIME_LEDGER_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
  CTXD__TAG_FREE = 0,   /* not received (or settled) */
  CTXD__TAG_RUNNING,    /* received, its outcome not known yet */
  CTXD__TAG_CONFIRMING, /* a copy (to _error, _skipped, a delay queue) awaits its confirm */
  CTXD__TAG_ACK,        /* done: acknowledge */
  CTXD__TAG_REQUEUE     /* not done: give it back to the queue */
} ctxd__tag_state_t;

typedef struct {
  uint8_t *state; /* cap slots, indexed by tag % cap */
  size_t cap;
  uint64_t base; /* lowest unsettled tag; 0 when nothing was received since the reset */
  uint64_t top;  /* highest tag received */
} ctxd__ledger_t;

/* What to send for the head of the ledger: basic.ack, or basic.nack with requeue, of tag
 * (with multiple: of every unsettled tag up to it). count tags are settled by it. */
typedef struct {
  uint64_t tag;
  int multiple;
  int requeue;
  size_t count;
} ctxd__settlement_t;

/* 0, or CTXD_ENOMEM. cap is the channel's prefetch (at least 1). */
int ctxd__ledger_init(ctxd__ledger_t *l, size_t cap);
void ctxd__ledger_free(ctxd__ledger_t *l);

/* Records delivery `tag` as running. 0, or CTXD_ESTATE when the broker broke its promise
 * (a tag other than the last one plus one, or more than cap unsettled): the connection is
 * not to be trusted. */
int ctxd__ledger_receive(ctxd__ledger_t *l, uint64_t tag);

/* Sets the state of an unsettled tag (one that is not is ignored: it belongs to a
 * connection that was reset). */
void ctxd__ledger_mark(ctxd__ledger_t *l, uint64_t tag, ctxd__tag_state_t state);

/* The next settlement: 1 and *s when the head of the ledger is finished (an acknowledgement
 * covers the longest run of ACK tags there, a requeue the longest run of REQUEUE tags),
 * which the ledger then forgets; 0 when the head still runs or confirms, or the ledger is
 * empty. Call until it returns 0. */
int ctxd__ledger_next(ctxd__ledger_t *l, ctxd__settlement_t *s);

/* Forgets every tag (the connection was lost; tags start again at 1). Returns how many were
 * no longer running (confirming or finished): their deliveries are with the caller, while
 * the running ones still are with the workers. */
size_t ctxd__ledger_reset(ctxd__ledger_t *l);

#endif
