/* Encoding what ctxd publishes as a MassTransit envelope (the counterpart of envelope.h,
 * which decodes what arrives). */
#ifndef CTXD_RUNTIME_ENVELOPE_OUT_H
#define CTXD_RUNTIME_ENVELOPE_OUT_H

#include <stdint.h>

#include <jansson.h>

#include "contract.h"

/* What ctxd publishes. */
typedef struct {
  const char *message_id;           /* required, UUID */
  const char *message_type;         /* "Namespace:Type", required */
  const ctxd__contract_t *contract; /* optional: message_type's; the URNs of the types it
                                       implements follow message_type's in messageType */
  const char *const *urns;          /* NULL, or the messageType list as is (NULL-terminated,
                                       not empty): a type whose URN is not "urn:message:" +
                                       its name; replaces the two above in messageType */
  const char *correlation_id;       /* optional */
  const char *conversation_id;
  const char *initiator_id;
  const char *request_id;
  const char *source_address;
  const char *destination_address;
  const char *response_address;
  const char *fault_address;
  const json_t *message;       /* required, an object */
  const char *expiration_time; /* optional, ISO 8601 UTC */
  const json_t *headers;       /* optional object */
  const char *sent_time;       /* optional; NULL: now, ISO 8601 UTC */
} ctxd__envelope_out_t;

/* Returns the MassTransit JSON envelope text (new, free with free()), or NULL when a
 * required field is missing, the message id is not a UUID, headers is not an object, a
 * string is not UTF-8, or memory runs out. Every one of MassTransit's 15 members is
 * written, in its order, null when unset (as System.Text.Json writes a MessageEnvelope). */
char *ctxd__envelope_encode(const ctxd__envelope_out_t *out);

/* Writes Unix time ms as "2026-11-24T04:30:15.123Z", the UTC form MassTransit writes and
 * parses. */
void ctxd__iso8601_ms(int64_t ms, char out[32]);

/* Reads an ISO 8601 date and time as .NET writes a DateTime ("2026-11-24T04:30:15.1234567Z",
 * or with an offset "+02:00"; none: UTC) into *ms, Unix time in ms. 0, or CTXD_EINVAL. */
int ctxd__iso8601_parse_ms(const char *text, int64_t *ms);

#endif
