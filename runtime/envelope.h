/* MassTransit envelopes: decoding what arrives, encoding what ctxd publishes.
 *
 * Two incoming shapes are accepted:
 *  - content type application/vnd.masstransit+json: a JSON envelope
 *    {messageId, requestId, correlationId, conversationId, initiatorId, sourceAddress,
 *     destinationAddress, responseAddress, faultAddress, messageType: ["urn:message:Ns:Type"],
 *     message: {...}, expirationTime, sentTime, headers: {...}, host: {...}}
 *  - content type application/json (or none): the body is the message itself; the metadata
 *    travels in AMQP properties (message_id, correlation_id, type) and headers as
 *    MassTransit's raw JSON serializer writes them (MessageId, CorrelationId,
 *    ConversationId, RequestId, MT-InitiatorId, MT-Source-Address, MT-Response-Address,
 *    MT-Fault-Address, MT-MessageType; older publishers' InitiatorId, SourceAddress,
 *    ResponseAddress... too).
 * Property names match case-insensitively (MassTransit writes camelCase, older publishers
 * PascalCase). Decoding never aborts: bad input yields CTXD_EDECODE and a reason.
 */
#ifndef CTXD_RUNTIME_ENVELOPE_H
#define CTXD_RUNTIME_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>

#include <amqp.h>
#include <jansson.h>

#define CTXD__ENVELOPE_CONTENT_TYPE "application/vnd.masstransit+json"

/* The trace header MassTransit writes (Activity.Id, a W3C traceparent value) into the
 * transport and the envelope headers, and reads from the transport's first. */
#define CTXD__ACTIVITY_HEADER "MT-Activity-Id"

/* What MassTransit puts before a message type in messageType. */
#define CTXD__URN_PREFIX "urn:message:"

typedef struct {
  size_t max_body; /* bytes; larger bodies are refused (CTXD_ETOOBIG) */
  int max_depth;   /* nesting of arrays/objects */
} ctxd__decode_limits_t;

/* The limits for bodies of at most max_body_ bytes (the host's limits.max_message_bytes). */
#define CTXD__DECODE_LIMITS(max_body_)                                                                       \
  ((ctxd__decode_limits_t){.max_body = (size_t)(max_body_), .max_depth = 64})
/* Without limits given: limits.max_message_bytes' default. */
#define CTXD__DECODE_LIMITS_DEFAULT CTXD__DECODE_LIMITS(1u << 20)

typedef struct {
  /* All strings borrowed until ctxd__envelope_free; NULL when absent. */
  const char *message_id; /* canonical lowercase UUID (8-4-4-4-12), always set on success */
  const char *request_id;
  const char *correlation_id;
  const char *conversation_id;
  const char *initiator_id;
  const char *source_address;
  const char *destination_address;
  const char *response_address;
  const char *fault_address;
  const char *sent_time;
  const char *expiration_time; /* the envelope's expirationTime, as written */
  const char *reply_to;        /* the AMQP reply_to property (Direct Reply-To) */
  int64_t expiration_ms;       /* the AMQP expiration property; -1 when absent */
  /* Message types as "Namespace:Type" (the "urn:message:" prefix removed), most specific
   * first, as the publisher listed them. */
  const char **message_types;
  size_t nmessage_types;
  json_t *message; /* the message object (the only part of an envelope parsed into a
                      tree); borrowed */
  json_t *headers; /* envelope headers merged with AMQP headers (envelope wins); an object,
                      never NULL on success; borrowed */
  /* The message object's text exactly as it came, when it means the same as `message`
   * (no repeated keys, no escaped key naming it); else NULL. A NUL-terminated copy
   * among the envelope's strings: handlers get it instead of a re-serialisation. */
  const char *message_text;
  size_t message_len;

  /* private */
  struct ctxd__strings_s *strings; /* the strings above point into these blocks */
  char id_buf[37];
} ctxd__envelope_t;

/* Decodes a delivery. Returns 0 and fills env (release with ctxd__envelope_free), or
 * CTXD_EDECODE / CTXD_ETOOBIG (the message is bad: permanent), CTXD_ENOMEM (transient) or
 * CTXD_EINVAL (NULL arguments), with a one-line reason in err, env left empty (freeing it
 * is still allowed). A missing or non-UUID message id, a missing message type, or a message
 * that is not a JSON object are errors. props may be NULL. */
int ctxd__envelope_decode(const void *body, size_t len, const amqp_basic_properties_t *props,
                          const ctxd__decode_limits_t *limits, ctxd__envelope_t *env, char *err,
                          size_t errlen);

void ctxd__envelope_free(ctxd__envelope_t *env);

/* 1 when an AMQP header named key (len bytes) records a failure ctxd reports: MT-Reason,
 * MT-Fault-*, MT-Redelivery-Count, MT-Host-*, ctxd-Fault-*. Copies to _error replace them. Other MT- headers (MT-MessageType...) belong to the message. */
int ctxd__envelope_fault_header(const void *key, size_t len);

/* Looks a key up in a JSON object ignoring ASCII case (exact match preferred). Returns
 * the value, borrowed from obj, or NULL. */
json_t *ctxd__json_get_ci(const json_t *obj, const char *key);

#endif
