#include "trace.h"

#include <stdio.h>
#include <string.h>
#include <sys/random.h>

/* 1 when v looks like a W3C trace context id: "00-<32 hex trace id>-<16 hex span
 * id>-<2 hex flags>". */
static int w3c_id(const char *v) {
  return v != NULL && strlen(v) == 55 && v[2] == '-' && v[35] == '-' && v[52] == '-';
}

/* Writes into out a child of parent (same trace id and flags, a new span id), or, when
 * parent is not such an id, the first span of a new trace. 0, or -1 when no random bytes
 * could be had. */
static int trace_child(const char *parent, char out[56]) {
  unsigned char id[24];
  if (getrandom(id, sizeof id, 0) != (ssize_t)sizeof id) return -1;
  if (w3c_id(parent)) {
    memcpy(out, parent, 56);
  } else {
    memcpy(out, "00-", 3);
    for (int i = 0; i < 16; i++) snprintf(out + 3 + 2 * i, 3, "%02x", id[8 + i]);
    memcpy(out + 35, "-0000000000000000-01", 21);
  }
  for (int i = 0; i < 8; i++) snprintf(out + 36 + 2 * i, 3, "%02x", id[i]);
  out[52] = '-'; /* snprintf wrote its NUL there */
  return 0;
}

void ctxd__trace_continue(json_t *headers, const ctxd__envelope_t *in) {
  const char *tp = in != NULL ? json_string_value(ctxd__json_get_ci(in->headers, "traceparent")) : NULL;
  const char *activity =
      in != NULL ? json_string_value(ctxd__json_get_ci(in->headers, CTXD__ACTIVITY_HEADER)) : NULL;
  char out[56];
  if (ctxd__json_get_ci(headers, CTXD__ACTIVITY_HEADER) == NULL &&
      trace_child(w3c_id(activity) ? activity : tp, out) == 0)
    json_object_set_new(headers, CTXD__ACTIVITY_HEADER, json_string(out));
  if (w3c_id(tp) && json_object_get(headers, "traceparent") == NULL && trace_child(tp, out) == 0)
    json_object_set_new(headers, "traceparent", json_string(out));
}
