/* Publisher confirms of the publish channel: which publishes the broker has yet to
 * confirm, and what a basic.ack or basic.nack settles. RabbitMQ numbers publishes 1, 2,
 * 3, ... per channel; a confirm with `multiple` covers every earlier one. Pure
 * bookkeeping, no I/O: the loop thread feeds it the confirms it reads and acts on what
 * comes out. */
#ifndef CTXD_RUNTIME_CONFIRMS_H
#define CTXD_RUNTIME_CONFIRMS_H

#include <stddef.h>
#include <stdint.h>

struct ctxd__delivery_s;
struct ctxd__outrow_s;

/* One publish awaiting its confirm: a copy of a delivery (to _error, _skipped or a delay
 * queue) or an outbox row, exactly one of them not NULL. The tracker holds the pointers;
 * their owner is whoever settles or drops the entry. */
typedef struct {
  uint64_t seq;
  struct ctxd__delivery_s *copy_of;
  struct ctxd__outrow_s *row;
} ctxd__pending_t;

typedef struct {
  ctxd__pending_t *v; /* v[head .. head + n), ascending seq */
  size_t head;        /* confirms settle the oldest first: a settled prefix only moves head */
  size_t n, cap;
} ctxd__confirms_t;

/* Zero-initialised it is empty. */
void ctxd__confirms_free(ctxd__confirms_t *c);

/* Tracks publish seq (above every tracked one). 0, or CTXD_ENOMEM (nothing tracked). */
int ctxd__confirms_add(ctxd__confirms_t *c, uint64_t seq, struct ctxd__delivery_s *copy_of,
                       struct ctxd__outrow_s *row);

/* Removes the entries a confirm of seq settles (every one up to seq when multiple, else
 * the one with seq), the first max of them, into out in publish order; returns how many.
 * Call again with the same arguments until it returns less than max. A confirm for a
 * publish not tracked (one of a lost connection) settles nothing. */
size_t ctxd__confirms_settle(ctxd__confirms_t *c, uint64_t seq, int multiple, ctxd__pending_t *out,
                             size_t max);

/* The tracked outbox row whose message id is id (len bytes), or NULL; borrowed until its
 * entry is settled. */
struct ctxd__outrow_s *ctxd__confirms_find_row(const ctxd__confirms_t *c, const void *id, size_t len);

#endif
