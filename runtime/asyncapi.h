/* `ctxd contracts export`: every contract as an AsyncAPI 2.6.0 document. Channels are the
 * RabbitMQ exchanges (fanout, durable, with the AMQP channel binding), one per contract
 * version, each with its message: the MassTransit envelope whose "message" member has the
 * contract's JSON Schema, the URNs it carries in messageType and the content type.
 * AsyncAPI 2.6 rather than 3.0: its AMQP binding and JSON Schema payloads are what most
 * generators and validators read today, and a channel per exchange maps one to one. Pure:
 * no I/O. */
#ifndef CTXD_RUNTIME_ASYNCAPI_H
#define CTXD_RUNTIME_ASYNCAPI_H

#include <jansson.h>

#include "contract.h"

/* The document for every contract in c: a new reference (json_decref), or NULL when
 * memory runs out. */
json_t *ctxd__asyncapi_document(const ctxd__contracts_t *c);

/* The JSON Schema (draft 7, AsyncAPI's schema dialect) of a contract body type t: a new
 * reference, or NULL when memory runs out. */
json_t *ctxd__asyncapi_schema(const ctxd__schema_type_t *t);

/* Writes the document for the contracts built into this host to path ("-" or NULL:
 * stdout). An exit code (CTXD__EXIT_OK, or CTXD__EXIT_FAILURE with the reason on stderr). */
int ctxd__asyncapi_export(const char *path);

#endif
