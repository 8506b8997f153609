/* Contracts in the host: the definitions embedded by the build (ctxd_contract_registry),
 * validation at the boundary, upcasting between versions, and the compatibility check of
 * released versions. Pure: no I/O.
 *
 * A message type is "Namespace.vN:Type" (MassTransit's name, the exchange name). The
 * format of definitions and the rules are in contracts/README.md (docs/contracts.md).
 *
 * Threads: a ctxd__contracts_t is immutable once made; every function taking a const one
 * may run on any number of threads at once.
 */
#ifndef CTXD_RUNTIME_CONTRACT_H
#define CTXD_RUNTIME_CONTRACT_H

#include <stddef.h>

#include <jansson.h>

typedef struct ctxd__contracts_s ctxd__contracts_t;
typedef struct ctxd__schema_type_s ctxd__schema_type_t; /* contracts/lib/contract_schema.h */
typedef struct ctxd__contract_s ctxd__contract_t;

/* Parses every definition embedded by the build. *out is new: free with
 * ctxd__contracts_free. 0, CTXD_EINVAL (a definition is broken; the build prevents it) or
 * CTXD_ENOMEM, with a one-line reason in err. */
int ctxd__contracts_new(ctxd__contracts_t **out, char *err, size_t errlen);

/* Same from n definition texts (tests, tools). The texts are copied. The set is checked as
 * the build checks it: every definition valid, no type twice, every upcast_from_previous
 * sound against the version before it. */
int ctxd__contracts_load(const char *const *defs, size_t n, ctxd__contracts_t **out, char *err,
                         size_t errlen);

void ctxd__contracts_free(ctxd__contracts_t *c);

/* The contract of message_type ("Ns.vN:Type", exact), or NULL; borrowed from c. */
const ctxd__contract_t *ctxd__contracts_find(const ctxd__contracts_t *c, const char *message_type);

/* Every contract, sorted by message type: i < ctxd__contracts_count(c); borrowed from c. */
size_t ctxd__contracts_count(const ctxd__contracts_t *c);
const ctxd__contract_t *ctxd__contracts_at(const ctxd__contracts_t *c, size_t i);

/* Accessors; strings and JSON borrowed from the set. */
const char *ctxd__contract_type(const ctxd__contract_t *k); /* "Ns.vN:Type" */
int ctxd__contract_version(const ctxd__contract_t *k);
const char *ctxd__contract_kind(const ctxd__contract_t *k);   /* event, command, reply */
const char *ctxd__contract_status(const ctxd__contract_t *k); /* released, draft */
const json_t *ctxd__contract_definition(const ctxd__contract_t *k);
const char *ctxd__contract_description(const ctxd__contract_t *k);
const ctxd__schema_type_t *ctxd__contract_body(const ctxd__contract_t *k); /* the message object */

/* The RabbitMQ exchange k is published to: the definition's "exchange", else the message
 * type as MassTransit's RabbitMQ name formatter writes it (msgname.h). Borrowed from the set. */
const char *ctxd__contract_exchange(const ctxd__contract_t *k);

/* The message types k also is (its definition's "implements": .NET interfaces and base
 * classes), as URN names, and the exchange of each (its contract's, or formatted), for
 * i < ctxd__contract_nbases(k). Publishing k binds its exchange to each base exchange and
 * lists every URN in messageType, as MassTransit does. Borrowed from the set. */
size_t ctxd__contract_nbases(const ctxd__contract_t *k);
const char *ctxd__contract_base(const ctxd__contract_t *k, size_t i);
const char *ctxd__contract_base_exchange(const ctxd__contract_t *k, size_t i);

/* Writes the exchange of message type `type` into buf: its contract's when c has one,
 * else MassTransit's formatting of the name. 0, CTXD_EINVAL (not a name MassTransit can
 * format) or CTXD_ETOOBIG. */
int ctxd__contracts_exchange(const ctxd__contracts_t *c, const char *type, char *buf, size_t len);

/* The contract published to exchange (exact name), or NULL; borrowed from c. */
const ctxd__contract_t *ctxd__contracts_of_exchange(const ctxd__contracts_t *c, const char *exchange);

/* Checks message (the envelope's "message" object) against the contract. 0, or
 * CTXD_EVALIDATION with "message.<path>: <reason>" in err, e.g. "message.Category: 9 is
 * not one of 1,2,3,4,5,6" or "message.Id: missing required field". Property names match
 * ignoring ASCII case; unknown properties are tolerated. CTXD_EINVAL for NULL args. */
int ctxd__contract_validate(const ctxd__contract_t *k, const json_t *message, char *err, size_t errlen);

/* Upcasts message from from_type to to_type (same Namespace:Type, to_type's version >=
 * from_type's), applying every step vN -> vN+1 in between as the definitions describe
 * (renames, then defaults). *out is a new reference (json_decref): a changed deep copy, or
 * message itself when the types are equal; message is not modified. It is not validated:
 * validate message against from_type before, and *out against to_type after if in doubt.
 * 0, CTXD_ENOENT (a type is unknown, or no chain of upcasters links them), CTXD_EINVAL
 * (NULL args, message not an object) or CTXD_ENOMEM, with the reason in err. */
int ctxd__contracts_upcast(const ctxd__contracts_t *c, const char *from_type, const char *to_type,
                           const json_t *message, json_t **out, char *err, size_t errlen);

/* Lists the older versions of type's Namespace:Type that upcast to type (type's previous
 * version when type has upcast_from_previous, then that one's, and so on), newest first,
 * into out[0..max) (strings borrowed from c). Returns how many there are, which may exceed
 * max (call with max 0 to count). 0 for an unknown type. A host binds these exchanges to an
 * endpoint with a handler for type. */
size_t ctxd__contracts_older(const ctxd__contracts_t *c, const char *type, const char **out, size_t max);

/* The compatibility check: may `current` replace the released definition `released`? Both
 * are definition JSON of the same message type. 0, CTXD_EVALIDATION naming the first
 * incompatible change ("<type>: <field path>: <reason>", e.g.
 * "Dodo.DataCatalog.Contracts.Products.v1:MaterialType: Category: enum value 6
 * (Consumables) removed"), or CTXD_EINVAL (a definition is broken, they are different
 * types, or `released` is not released). Allowed: description, example, producer and
 * consumer changes, new optional fields. */
int ctxd__contract_compat(const json_t *released, const json_t *current, char *err, size_t errlen);

#endif
