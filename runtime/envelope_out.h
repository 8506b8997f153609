/* Encoding what ctxd publishes as a MassTransit envelope (the counterpart of envelope.h,
 * which decodes what arrives). */
#ifndef CTXD_RUNTIME_ENVELOPE_OUT_H
#define CTXD_RUNTIME_ENVELOPE_OUT_H

#include <jansson.h>

/* What ctxd publishes. */
typedef struct {
  const char *message_id;     /* required, UUID */
  const char *message_type;   /* "Namespace:Type", required */
  const char *const *urns;    /* NULL, or the messageType list as is (NULL-terminated, not
                                 empty): a type whose URN is not "urn:message:" + its name */
  const char *correlation_id; /* optional */
  const char *conversation_id;
  const char *initiator_id;
  const char *request_id;
  const char *source_address;
  const char *destination_address;
  const char *response_address;
  const json_t *message; /* required, an object */
  const json_t *headers; /* optional object */
  const char *sent_time; /* optional; NULL: now, ISO 8601 UTC */
} ctxd__envelope_out_t;

/* Returns the MassTransit JSON envelope text (new, free with free()), or NULL when a
 * required field is missing, the message id is not a UUID, headers is not an object, a
 * string is not UTF-8, or memory runs out. */
char *ctxd__envelope_encode(const ctxd__envelope_out_t *out);

#endif
