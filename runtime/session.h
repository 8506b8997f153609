/* What belongs to one connection to the broker: the connection itself, the publishes
 * awaiting their confirm, the exchanges declared on it for the outbox, and its
 * generation (a batch whose deliveries came on an older connection is stale). Through it
 * the loop thread settles deliveries (acknowledgements, and the copies of failed ones),
 * publishes outbox rows and takes in confirms. Functions return what went wrong instead of
 * deciding about the connection: a CTXD_EBROKER means the caller drops it. Loop thread. */
#ifndef CTXD_RUNTIME_SESSION_H
#define CTXD_RUNTIME_SESSION_H

#include <stdint.h>

#include "broker.h"
#include "confirms.h"
#include "endpoint.h"
#include "outrow.h"
#include "topology.h"

typedef struct {
  ctxd__broker_t broker;       /* broker.conn is NULL while disconnected */
  ctxd__confirms_t confirms;   /* publishes awaiting the broker's confirm */
  ctxd__exchanges_t exchanges; /* declared on this connection for the outbox */
  uint64_t gen;                /* bumped on every connection loss */
  ctxd__outrows_t refused;     /* rows the broker refused, for the relay to archive */
  uint64_t refused_total;      /* ctxd_outbox_refused_total */
  /* the broker sent connection.blocked (a memory or disk alarm) with this reason and not
   * yet connection.unblocked: a publish would stop it reading the connection, acks too */
  int blocked;
  char blocked_reason[128];
} ctxd__session_t;

/* Sends what ep's ledger can settle now, in tag order. 0 or CTXD_EBROKER. */
int ctxd__session_settle(ctxd__session_t *s, ctxd__endpoint_t *ep);

/* Settles the deliveries of batch b (which is freed): acknowledgements go to the ledger,
 * failed deliveries are copied to their side queue and wait for its confirm (their
 * message released as soon as the copy is sent). The
 * batch's outbox rows are published first, whatever became of its connection; a batch of
 * an older connection is dropped (the broker redelivers, the inbox drops the duplicate).
 * 0, or CTXD_EBROKER (deliveries that could not be copied go back to the queue with the
 * connection). */
int ctxd__session_finish_batch(ctxd__session_t *s, ctxd__batch_t *b);

/* Publishes rows in order, unless the broker blocked publishing: then they are dropped
 * here and stay in ctxd.outbox for the sweep after connection.unblocked (mandatory, persistent, with the row's routing key,
 * correlation_id, expiration and headers), each tracked until confirmed; rows are taken
 * from the list, which is left empty. An exchange is declared first unless the row says
 * it is someone else's. Rows that cannot go now are dropped here: they stay in ctxd.outbox
 * and the sweep sends them once their lease ends. When the broker closes the publish
 * channel under a declare, it is handled as ctxd__session_publish_closed says. 0, or
 * CTXD_EBROKER when publishing failed. */
int ctxd__session_publish_rows(ctxd__session_t *s, ctxd__outrows_t *rows);

/* Takes in a confirm (ok: basic.ack, else basic.nack) of publish tag: deliveries whose
 * copy it covers are marked in their ledger (a refused copy sends the original back to
 * the queue), confirmed rows are appended to archived (nacked ones stay in the outbox). */
void ctxd__session_confirmed(ctxd__session_t *s, uint64_t tag, int multiple, int ok,
                             ctxd__outrows_t *archived);

/* Takes in a basic.return (msg: the returned message): the outbox row it was is archived
 * as unroutable, and said. */
void ctxd__session_returned(ctxd__session_t *s, const amqp_basic_return_t *ret, const amqp_message_t *msg);

/* The broker closed the publish channel (code and text: its reason, which names the
 * exchange at fault). The channel is reopened in confirm mode and what was pending on it
 * resolved: rows to that exchange are set aside in s->refused with the reason (logged,
 * counted, never sent again), unless it is an exchange ctxd declares that went missing
 * (404: declared again and sent); the other rows are appended to again, in order, for
 * the caller to publish; a pending copy of a delivery cannot be sent again (its body was
 * released once sent): its original goes back to the queue and runs again. When the reason names nothing pending,
 * the oldest publish is the one set aside, so nothing is refused forever in a loop. 0,
 * or CTXD_EBROKER (the channel could not be reopened: drop the connection). */
int ctxd__session_publish_closed(ctxd__session_t *s, int code, const char *text, ctxd__outrows_t *again);

/* The ids of the outbox rows awaiting their confirm, as an array literal ("{1,2}"; new,
 * free with free()), or NULL when there are none or memory runs out. */
char *ctxd__session_pending_rows(const ctxd__session_t *s);

/* Forgets what was pending on the connection (it is gone): rows stay in the outbox for
 * the sweep, deliveries are redelivered; a new connection is not blocked until the broker
 * says so again. Bumps the generation. */
void ctxd__session_drop(ctxd__session_t *s);

#endif
