/* Encoding MassTransit envelopes. See envelope_out.h. */
#include "envelope_out.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <ctxd/errno.h>

#include "envelope.h"
#include "hostinfo.h"
#include "uuid.h"

/* String members before messageType, in the order MassTransit writes them. */
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
    {"faultAddress", offsetof(ctxd__envelope_out_t, fault_address)},
};

/* A string member's value: null when unset (MassTransit writes every member). */
static json_t *string_or_null(const char *v) { return v != NULL ? json_string(v) : json_null(); }

void ctxd__iso8601_ms(int64_t ms, char out[32]) {
  time_t s = (time_t)(ms / 1000);
  struct tm tm;
  gmtime_r(&s, &tm);
  size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(out + n, 32 - n, ".%03dZ", (int)(ms % 1000));
}

int ctxd__iso8601_parse_ms(const char *text, int64_t *ms) {
  struct tm tm = {0};
  int n = 0;
  if (text == NULL ||
      sscanf(text, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
             &tm.tm_sec, &n) != 6 ||
      n != 19)
    return CTXD_EINVAL;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  const char *p = text + n;
  int64_t frac = 0, scale = 1000;
  if (*p == '.')
    for (p++; *p >= '0' && *p <= '9'; p++, scale /= 10) frac += scale / 10 * (*p - '0');
  int64_t offset_s = 0;
  if ((*p == '+' || *p == '-') && p[1] && p[2] && p[3] == ':') {
    int h, m;
    if (sscanf(p + 1, "%2d:%2d", &h, &m) != 2) return CTXD_EINVAL;
    offset_s = (*p == '-' ? -1 : 1) * (h * 3600 + m * 60);
    p += 6;
  } else if (*p == 'Z') {
    p++;
  }
  if (*p != '\0') return CTXD_EINVAL;
  *ms = ((int64_t)timegm(&tm) - offset_s) * 1000 + frac;
  return 0;
}

static void now_iso8601(char out[32]) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  ctxd__iso8601_ms((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, out);
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
    bad |= json_object_set_new(root, out_fields[i].key, string_or_null(v));
  }
  if (!out->sent_time) now_iso8601(now);
  /* Deep copies: the caller's message and headers are const and may be shared between
   * publishing threads, so they are never referenced from this tree. */
  /* as given (Fault<T>'s URNs), else the type, then every type it implements: a consumer
   * of any of them matches */
  json_t *types = out->urns != NULL ? json_array() : json_pack("[s+]", CTXD__URN_PREFIX, out->message_type);
  for (size_t i = 0; out->urns != NULL && out->urns[i] != NULL; i++)
    bad |= json_array_append_new(types, json_string(out->urns[i]));
  for (size_t i = 0; types && !out->urns && out->contract && i < ctxd__contract_nbases(out->contract); i++)
    bad |= json_array_append_new(types,
                                 json_pack("s+", CTXD__URN_PREFIX, ctxd__contract_base(out->contract, i)));
  bad |= json_object_set_new(root, "messageType", types);
  bad |= json_object_set_new(root, "message", json_deep_copy(out->message));
  bad |= json_object_set_new(root, "expirationTime", string_or_null(out->expiration_time));
  bad |= json_object_set_new(root, "sentTime", json_string(out->sent_time ? out->sent_time : now));
  bad |= json_object_set_new(root, "headers", out->headers ? json_deep_copy(out->headers) : json_object());
  bad |= json_object_set_new(root, "host", ctxd__host_info_json());
  /* json_dumps allocates with malloc unless json_set_alloc_funcs says otherwise, which
   * ctxd never calls: the caller's free() matches. */
  char *text = bad ? NULL : json_dumps(root, JSON_COMPACT);
  json_decref(root);
  return text;
}
