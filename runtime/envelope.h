/* MassTransit envelopes: decoding what arrives, encoding what ctxd publishes.
 *
 * Two incoming shapes are accepted:
 *  - content type application/vnd.masstransit+json: a JSON envelope
 *    {messageId, requestId, correlationId, conversationId, initiatorId, sourceAddress,
 *     destinationAddress, responseAddress, faultAddress, messageType: ["urn:message:Ns:Type"],
 *     message: {...}, sentTime, headers: {...}, host: {...}}
 *  - content type application/json (or none): the body is the message itself; the metadata
 *    travels in AMQP properties (message_id, correlation_id, type) and headers
 *    (MessageId, CorrelationId, ConversationId, InitiatorId, RequestId, MT-MessageType,
 *     SourceAddress, ResponseAddress, ...).
 * Property names match case-insensitively (MassTransit writes camelCase, older publishers
 * PascalCase). Decoding never aborts: bad input yields CTXD_EDECODE and a reason.
 */
#ifndef CTXD_RUNTIME_ENVELOPE_H
#define CTXD_RUNTIME_ENVELOPE_H

#include <stddef.h>

#include <amqp.h>
#include <jansson.h>

#define CTXD__ENVELOPE_CONTENT_TYPE "application/vnd.masstransit+json"

typedef struct {
  size_t max_body;     /* bytes; larger bodies are refused (CTXD_ETOOBIG) */
  int max_depth;       /* nesting of arrays/objects */
} ctxd__decode_limits_t;

#define CTXD__DECODE_LIMITS_DEFAULT ((ctxd__decode_limits_t){.max_body = 1u << 20, .max_depth = 64})

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
  /* Message types as "Namespace:Type" (the "urn:message:" prefix removed), most specific
   * first, as the publisher listed them. */
  const char **message_types;
  size_t nmessage_types;
  json_t *message; /* the message object (the only part of an envelope parsed into a
                      tree); borrowed */
  json_t *headers; /* envelope headers merged with AMQP headers (envelope wins); an object,
                      never NULL on success; borrowed */
  /* The message object's text exactly as it came, when it means the same as `message`
   * (no repeated keys, no escaped key naming it); else NULL. Borrowed from the decoded
   * body, not NUL-terminated: handlers get it instead of a re-serialisation. */
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
                          const ctxd__decode_limits_t *limits, ctxd__envelope_t *env,
                          char *err, size_t errlen);

void ctxd__envelope_free(ctxd__envelope_t *env);

/* What ctxd publishes. */
typedef struct {
  const char *message_id;     /* required, UUID */
  const char *message_type;   /* "Namespace:Type", required */
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

/* 1 when an AMQP header named key (len bytes) records a failure ctxd reports: MT-Reason,
 * MT-Fault-*, MT-Redelivery-Count, MT-Host-*. Copies to _error replace them; a replayed
 * message drops them. Other MT- headers (MT-MessageType...) belong to the message. */
int ctxd__envelope_fault_header(const void *key, size_t len);

/* Looks a key up in a JSON object ignoring ASCII case (exact match preferred). Returns
 * the value, borrowed from obj, or NULL. */
json_t *ctxd__json_get_ci(const json_t *obj, const char *key);

/* Parses a UUID in 8-4-4-4-12, 32-hex or {braced} form into canonical lowercase
 * 8-4-4-4-12 in out[37]. 0 or CTXD_EINVAL. */
int ctxd__uuid_canonical(const char *in, char out[37]);

/* Writes a new random (version 4) UUID into out[37]. */
void ctxd__uuid_new(char out[37]);

/* Converts an AMQP field table to a JSON object: strings (UTF-8 and byte strings that are
 * valid UTF-8; others are skipped) -> string, integers and timestamps -> integer (a uint64
 * above INT64_MAX -> real), floats and decimals -> real, bool, void -> null, tables ->
 * object, arrays -> array. Entries whose key is not UTF-8 are skipped. t may be NULL (empty
 * object). Returns a new reference (json_decref), NULL only when memory runs out. */
json_t *ctxd__amqp_table_to_json(const amqp_table_t *t);

/* Converts a JSON object to an AMQP field table allocated from pool (freed with the pool):
 * string -> UTF-8 string, integer -> int64, real -> double, bool, object -> table,
 * array -> array; null and keys longer than 255 bytes are skipped. 0, CTXD_EINVAL (obj not
 * an object) or CTXD_ENOMEM. */
int ctxd__json_to_amqp_table(const json_t *obj, amqp_pool_t *pool, amqp_table_t *out);

#endif
