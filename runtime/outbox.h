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

/* Writes an envelope already encoded (text) into ctxd.outbox in tx's transaction, to be
 * published to exchange after the commit (event: to a type's exchange, where having no
 * subscriber is normal). 0, CTXD_ENOMEM, or the SQL error's code (tx is then failed). */
int ctxd__outbox_insert(ctxd_tx_t *tx, const char *id, const char *exchange, const char *message_type,
                        const char *text, int event);

/* Writes the exchange a MassTransit address names into buf: the last path segment of
 * "rabbitmq://host/vhost/name?temporary=true" ("name"), or the address itself when it is
 * not a URI. 0, or CTXD_EINVAL when there is no name. */
int ctxd__outbox_address_exchange(const char *address, char *buf, size_t len);

#endif
