/* Encoding MassTransit envelopes. See envelope_out.h. */
#include "envelope_out.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "envelope.h"
#include "hostinfo.h"
#include "uuid.h"

/* Optional string metadata, in the order MassTransit writes it. */
static const struct {
  const char *key;
  size_t offset;
} out_fields[] = {
    {"requestId", offsetof(ctxd__envelope_out_t, request_id)},
    {"correlationId", offsetof(ctxd__envelope_out_t, correlation_id)},
    {"conversationId", offsetof(ctxd__envelope_out_t, conversation_id)},
    {"initiatorId", offsetof(ctxd__envelope_out_t, initiator_id)},
    {"sourceAddress", offsetof(ctxd__envelope_out_t, source_address)},
    {"destinationAddress", offsetof(ctxd__envelope_out_t, destination_address)},
    {"responseAddress", offsetof(ctxd__envelope_out_t, response_address)},
};

/* "2026-11-24T04:30:15.123Z", the UTC form MassTransit writes and parses. */
static void now_iso8601(char out[32]) {
  struct timespec ts;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(out + n, 32 - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

char *ctxd__envelope_encode(const ctxd__envelope_out_t *out) {
  char id[37], now[32];
  if (!out || ctxd__uuid_canonical(out->message_id, id) != 0 || !out->message_type || !*out->message_type ||
      !json_is_object(out->message) || (out->headers && !json_is_object(out->headers)))
    return NULL;
  json_t *root = json_object();
  if (!root) return NULL;
  /* json_object_set_new refuses a NULL value (out of memory, invalid UTF-8) with -1. */
  int bad = json_object_set_new(root, "messageId", json_string(id));
  for (size_t i = 0; i < sizeof out_fields / sizeof out_fields[0]; i++) {
    const char *v = *(const char *const *)((const char *)out + out_fields[i].offset);
    if (v) bad |= json_object_set_new(root, out_fields[i].key, json_string(v));
  }
  if (!out->sent_time) now_iso8601(now);
  /* Deep copies: the caller's message and headers are const and may be shared between
   * publishing threads, so they are never referenced from this tree. */
  json_t *types = out->urns != NULL ? json_array() : json_pack("[s+]", CTXD__URN_PREFIX, out->message_type);
  for (size_t i = 0; out->urns != NULL && out->urns[i] != NULL; i++)
    bad |= json_array_append_new(types, json_string(out->urns[i]));
  bad |= json_object_set_new(root, "messageType", types);
  bad |= json_object_set_new(root, "message", json_deep_copy(out->message));
  bad |= json_object_set_new(root, "sentTime", json_string(out->sent_time ? out->sent_time : now));
  bad |= json_object_set_new(root, "headers", out->headers ? json_deep_copy(out->headers) : json_object());
  bad |= json_object_set_new(root, "host", ctxd__host_info_json());
  /* json_dumps allocates with malloc unless json_set_alloc_funcs says otherwise, which
   * ctxd never calls: the caller's free() matches. */
  char *text = bad ? NULL : json_dumps(root, JSON_COMPACT);
  json_decref(root);
  return text;
}
