/* Encoding MassTransit envelopes. See envelope_out.h. */
#include "envelope_out.h"

#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <ctxd/version.h>

#include "envelope.h"
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

/* The host description never changes: computed once, read by every publishing thread. */
static pthread_once_t host_once = PTHREAD_ONCE_INIT;
static char host_machine[256];
static char host_os[sizeof((struct utsname *)0)->sysname + sizeof((struct utsname *)0)->release];

static void host_init(void) {
  struct utsname u;
  if (gethostname(host_machine, sizeof host_machine) != 0) strcpy(host_machine, "unknown");
  host_machine[sizeof host_machine - 1] = '\0'; /* gethostname may not terminate */
  if (uname(&u) == 0)
    snprintf(host_os, sizeof host_os, "%s %s", u.sysname, u.release);
  else
    strcpy(host_os, "unknown");
}

/* Returns a new reference. Built per call from the cached strings so nothing allocated
 * outlives the caller (no leak reported at exit). */
static json_t *host_json(void) {
  pthread_once(&host_once, host_init);
  return json_pack("{s:s, s:s, s:I, s:s, s:s, s:s, s:s, s:s}", "machineName", host_machine, "processName",
                   "ctxd", "processId", (json_int_t)getpid(), "assembly", "ctxd", "assemblyVersion",
                   CTXD_VERSION_STRING, "frameworkVersion", "C11", "massTransitVersion", "ctxd",
                   "operatingSystemVersion", host_os);
}

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
  /* the type, then every type it implements: a consumer of any of them matches */
  json_t *types = json_pack("[s+]", CTXD__URN_PREFIX, out->message_type);
  for (size_t i = 0; types && out->contract && i < ctxd__contract_nbases(out->contract); i++)
    bad |= json_array_append_new(types,
                                 json_pack("s+", CTXD__URN_PREFIX, ctxd__contract_base(out->contract, i)));
  bad |= json_object_set_new(root, "messageType", types);
  bad |= json_object_set_new(root, "message", json_deep_copy(out->message));
  bad |= json_object_set_new(root, "sentTime", json_string(out->sent_time ? out->sent_time : now));
  bad |= json_object_set_new(root, "headers", out->headers ? json_deep_copy(out->headers) : json_object());
  bad |= json_object_set_new(root, "host", host_json());
  /* json_dumps allocates with malloc unless json_set_alloc_funcs says otherwise, which
   * ctxd never calls: the caller's free() matches. */
  char *text = bad ? NULL : json_dumps(root, JSON_COMPACT);
  json_decref(root);
  return text;
}
