/* The broker topology, MassTransit's: what the host declares and how it names it. Per
 * endpoint E: queue E with a fanout exchange E bound to it; per message type it consumes,
 * a fanout exchange "Ns:Type" bound to exchange E; beside it E_error, E_skipped and one
 * E_delay_<ms> per redelivery interval (queues with their exchanges). Every declaration
 * and every side queue's name comes from here. Loop thread. */
#ifndef CTXD_RUNTIME_TOPOLOGY_H
#define CTXD_RUNTIME_TOPOLOGY_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "broker.h"
#include "endpoint.h"

typedef enum {
  CTXD__SIDE_ERROR,   /* <endpoint>_error */
  CTXD__SIDE_SKIPPED, /* <endpoint>_skipped */
  CTXD__SIDE_DELAY    /* <endpoint>_delay_<ms> */
} ctxd__side_t;

/* Writes the name of endpoint's side queue (and exchange) into buf; delay_ms is the delay
 * queue's interval, ignored for the others. 0, or CTXD_ETOOBIG when buf is too small. */
int ctxd__topology_side(char *buf, size_t len, const char *endpoint, ctxd__side_t side, int64_t delay_ms);

/* Declares ep's queues and exchanges and binds its message types, on ep's channel (open):
 * the broker runs each channel's methods in a process of their own, so hundreds of
 * endpoints declare on all its cores (a synchronous RPC each, bounded by the broker's RPC
 * timeout, unless pipelined: broker.h). 0, or CTXD_EBROKER with the reason in err. */
int ctxd__topology_declare(ctxd__broker_t *b, const ctxd__endpoint_t *ep, char *err, size_t errlen);

/* Writes the queue the ingest endpoint reads endpoint's failed copies from into buf:
 * <endpoint>_error, or with keep_in_queue <endpoint>_error_store. 0 or CTXD_ETOOBIG. */
int ctxd__topology_error_source(char *buf, size_t len, const char *endpoint, int keep_in_queue);

/* Declares what the ingest endpoint reads besides the endpoints' own declarations: with
 * keep_in_queue, per endpoint of set (but the ingest endpoint) a queue
 * <endpoint>_error_store (its endpoint's queue type) whose exchange is bound to the
 * <endpoint>_error exchange. 0, or CTXD_EBROKER with the reason in err. */
int ctxd__topology_declare_ingest(ctxd__broker_t *b, const ctxd__endpoints_t *set, int keep_in_queue,
                                  char *err, size_t errlen);

/* Declares and binds the exchanges of ep's message types only (after a plugin replacement
 * changed its handlers), on ep's channel. 0, or CTXD_EBROKER with the reason in err. */
int ctxd__topology_bind_types(ctxd__broker_t *b, const ctxd__endpoint_t *ep, char *err, size_t errlen);

/* Declares the exchange a message type is published to and, when it is a contract's
 * exchange in c (c may be NULL), binds it to the exchange of each type the contract
 * implements, declared the same way: MassTransit's publish topology, so a .NET consumer
 * of a base type gets the message. 0, or CTXD_EBROKER with the reason in err. */
int ctxd__topology_publish_exchange(ctxd__broker_t *b, const ctxd__contracts_t *c, const char *exchange,
                                    char *err, size_t errlen);

/* The exchanges the outbox publishes to, declared once per connection (publishing to a
 * missing exchange would close the channel), with contracts (set by the owner; NULL: no
 * base types are bound). Zero-initialised it is empty. */
typedef struct {
  const ctxd__contracts_t *contracts;
  struct {
    char *name;
    int unroutable_noted; /* an event without subscriber was logged once */
  } * v;
  size_t n;
} ctxd__exchanges_t;

/* The exchange Fault<T> events of every type are bound to, as MassTransit's publish
 * topology binds a type's exchange to those of the interfaces it implements. */
#define CTXD__FAULT_EXCHANGE "MassTransit:Fault"

/* Writes the exchange of Fault<T> for message type "Ns:Type" into buf, as MassTransit's
 * message name formatter does: "MassTransit:Fault--Ns:Type--" (the namespace left out
 * when it is MassTransit's own). 0, or CTXD_ETOOBIG. */
int ctxd__topology_fault_exchange(char *buf, size_t len, const char *type);

/* Declares exchange name unless it was on this connection; a Fault<T> exchange is bound to
 * CTXD__FAULT_EXCHANGE too. 0, CTXD_EBROKER (logged) or CTXD_ENOMEM. */
int ctxd__exchanges_ensure(ctxd__exchanges_t *x, ctxd__broker_t *b, const char *name);

/* Whether to say that events on exchange name have no subscriber: said once per exchange
 * and connection, so 1 the first time for name (or when name was not declared on this
 * connection), 0 after. */
int ctxd__exchanges_note_unroutable(ctxd__exchanges_t *x, const char *name);

/* Forgets exchange name (the broker said it is not there, or not as declared): the next
 * publish to it declares it again. */
void ctxd__exchanges_forget_one(ctxd__exchanges_t *x, const char *name);

/* Forgets every exchange (the connection is gone) and frees the memory; contracts stay. */
void ctxd__exchanges_forget(ctxd__exchanges_t *x);

/* Prints what the host declares: one line per endpoint with its settings and one per
 * message type bound to it (`ctxd check-config`), or the same as Graphviz (`ctxd
 * topology --dot`). */
void ctxd__topology_print(FILE *out, const ctxd__endpoints_t *set);
void ctxd__topology_dot(FILE *out, const ctxd__endpoints_t *set);

#endif
