/* MassTransit's Fault<T> event (FaultEvent.cs, ConsumeContextEndpointExtensions.cs): what a
 * consumer's final failure sends to the message's faultAddress, else its responseAddress,
 * else publishes to the Fault<T> exchange. Pure: the worker writes what this builds into
 * the outbox of the transaction that decided the failure. */
#ifndef CTXD_RUNTIME_FAULTEVENT_H
#define CTXD_RUNTIME_FAULTEVENT_H

#include <stddef.h>
#include <time.h>

#include "envelope.h"

typedef struct {
  const ctxd__envelope_t *in; /* the message that failed */
  const char *message_type;   /* T, "Ns:Type": the type its handler receives */
  const char *fault_id;       /* the fault's own id, a UUID */
  const char *exception_type; /* "ctxd.HandlerFailed", the handler's own... */
  const char *reason;         /* the exception's message */
  const char *stack_trace;    /* what ctxd says in its place */
  const char *source;         /* the plugin that failed (.NET: the exception's assembly) */
  const char *broker_url;     /* the host's, for the addresses */
  const char *endpoint;       /* where it failed: the fault's sourceAddress */
  int retries;                /* immediate retries it had (MT-Fault-RetryCount when > 0) */
  int redeliveries;           /* delayed redeliveries it had (MT-Fault-RedeliveryCount when
                                 it carried MT-Redelivery-Count) */
  const struct timespec *now;
} ctxd__fault_event_t;

/* The URN of Fault<T> for message type "Ns:Type": "urn:message:MassTransit:Fault[[Ns:Type]]"
 * written into buf. 0, or CTXD_ETOOBIG. */
int ctxd__fault_event_urn(char *buf, size_t len, const char *type);

/* Builds f's envelope; writes into exchange (len bytes) where it goes, into *event
 * whether it is published (1) or sent to the message's fault or response address (0), and
 * into *amqp_headers its headers as a JSON object's text for the AMQP headers (new, free
 * with free(); NULL when there are none). Returns the envelope text (new, free with
 * free()), or NULL (and *amqp_headers NULL) when an address or a name does not fit, a
 * text is not UTF-8, or memory runs out. */
char *ctxd__fault_event_encode(const ctxd__fault_event_t *f, char *exchange, size_t len, int *event,
                               char **amqp_headers);

#endif
