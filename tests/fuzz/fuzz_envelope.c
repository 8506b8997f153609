/* libFuzzer: the MassTransit envelope decoder, with and without AMQP properties. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "envelope_out.h"
#include "uuid.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  ctxd__decode_limits_t limits = CTXD__DECODE_LIMITS_DEFAULT;
  char err[512];
  ctxd__envelope_t env;
  /* the first byte picks the content type the bytes claim to be */
  static const char *const types[] = {"application/vnd.masstransit+json", "application/json", NULL};
  const char *type = size > 0 ? types[data[0] % 3] : NULL;
  amqp_basic_properties_t props = {0};
  if (type != NULL) {
    props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_MESSAGE_ID_FLAG | AMQP_BASIC_TYPE_FLAG;
    props.content_type = amqp_cstring_bytes(type);
    props.message_id = amqp_cstring_bytes("6f1e3a52-3a55-4d47-9a0e-2b1c6f3d9a10");
    props.type = amqp_cstring_bytes("urn:message:Ns.v1:Type");
  }
  const uint8_t *body = size > 0 ? data + 1 : data;
  size_t len = size > 0 ? size - 1 : 0;
  int rc = ctxd__envelope_decode(body, len, type != NULL ? &props : NULL, &limits, &env, err, sizeof err);
  /* The decoder reads the body in place and parses only the message with jansson: both
   * must agree on what is JSON. Known differences: jansson alone refuses integers beyond
   * 64 bits and reals that overflow (the decoder leaves them to the message's own parse),
   * and jansson ends its input at a NUL byte, which the decoder refuses. */
  json_error_t jerr;
  json_t *tree = json_loadb((const char *)body, len, JSON_DECODE_ANY, &jerr);
  if (rc == 0 && tree == NULL && json_error_code(&jerr) != json_error_numeric_overflow) abort();
  if (tree != NULL && strncmp(err, "malformed JSON", 14) == 0 && memchr(body, 0, len) == NULL) abort();
  json_decref(tree);
  if (rc == 0) {
    /* what decodes must encode again */
    ctxd__envelope_out_t out = {.message_id = env.message_id,
                                .message_type = env.message_types[0],
                                .correlation_id = env.correlation_id,
                                .message = env.message,
                                .headers = env.headers};
    char *text = ctxd__envelope_encode(&out);
    free(text);
  }
  ctxd__envelope_free(&env);
  return 0;
}
