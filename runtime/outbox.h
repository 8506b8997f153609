/* The transactional outbox: what handlers publish is written in their transaction. */
#ifndef CTXD_RUNTIME_OUTBOX_H
#define CTXD_RUNTIME_OUTBOX_H

#include <stdint.h>

#include <ctxd/ctxd.h>

typedef enum {
  CTXD__OUTBOX_PUBLISH, /* to the message type's exchange */
  CTXD__OUTBOX_SEND,    /* to msg->destination, an endpoint's exchange */
  CTXD__OUTBOX_RESPOND  /* to the incoming message's responseAddress, with its requestId */
} ctxd__outbox_mode_t;

/* Writes msg as a MassTransit envelope into ctxd.outbox in tx's transaction, addressed as
 * MassTransit addresses a message sent from a consumer: sourceAddress the receiving
 * endpoint, conversationId carried over, initiatorId the incoming correlationId (else its
 * requestId), correlationId only the handler's. A reply goes to the request's
 * responseAddress as it is (never declared; Direct Reply-To through the default exchange
 * to the request's reply_to), with its requestId and the time the request has left. 0,
 * CTXD_EINVAL (bad message: tx stays usable), CTXD_ENOENT (respond to a message without
 * responseAddress), or the SQL error's code. */
int ctxd__outbox_write(ctxd_tx_t *tx, const ctxd_out_msg_t *msg, ctxd__outbox_mode_t mode);

/* Checks and encodes msg like ctxd__outbox_write, as leaving at at_ms (Unix ms; its time
 * to live counts from then), and writes it into ctxd.scheduled in tx's transaction; its
 * message id goes to id. The relay moves it to the outbox once due (ctxd__sched_move). */
int ctxd__outbox_schedule(ctxd_tx_t *tx, const ctxd_out_msg_t *msg, ctxd__outbox_mode_t mode, int64_t at_ms,
                          char id[37]);

#endif
