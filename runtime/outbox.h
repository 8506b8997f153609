/* The transactional outbox: what handlers publish is written in their transaction. */
#ifndef CTXD_RUNTIME_OUTBOX_H
#define CTXD_RUNTIME_OUTBOX_H

#include <ctxd/ctxd.h>

/* Writes msg as a MassTransit envelope into ctxd.outbox in tx's transaction, addressed to
 * its type's exchange (send == 0) or to msg->destination's endpoint exchange (send == 1).
 * correlationId and conversationId carry over from the incoming message, initiatorId is
 * its id. 0, CTXD_EINVAL (bad message: tx stays usable), or the SQL error's code. */
int ctxd__outbox_write(ctxd_tx_t *tx, const ctxd_out_msg_t *msg, int send);

#endif
