/* The transactional outbox: what handlers publish is written in their transaction. */
#ifndef CTXD_RUNTIME_OUTBOX_H
#define CTXD_RUNTIME_OUTBOX_H

#include <ctxd/ctxd.h>

typedef enum {
  CTXD__OUTBOX_PUBLISH, /* to the message type's exchange */
  CTXD__OUTBOX_SEND,    /* to msg->destination, an endpoint's exchange */
  CTXD__OUTBOX_RESPOND  /* to the incoming message's responseAddress, with its requestId */
} ctxd__outbox_mode_t;

/* Writes msg as a MassTransit envelope into ctxd.outbox in tx's transaction.
 * correlationId and conversationId carry over from the incoming message, initiatorId is
 * its id. 0, CTXD_EINVAL (bad message: tx stays usable), CTXD_ENOENT (respond to a message
 * without responseAddress), or the SQL error's code. */
int ctxd__outbox_write(ctxd_tx_t *tx, const ctxd_out_msg_t *msg, ctxd__outbox_mode_t mode);

#endif
