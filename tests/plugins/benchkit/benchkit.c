/* The benchmarks' handler (tests/bench/bench.c): each message {"key": K, "sentNs": T}
 * upserts one row of benchkit.items keyed by K, storing T and clock_timestamp(), so the
 * benchmark can count finished messages and compute publish -> handled latency from the
 * rows afterwards. With "publish" set it also publishes one event per message through the
 * outbox (the relay benchmark). With "batch" set it is a batch handler (ABI 1.3): one
 * set-based upsert for all the messages of a batch. No JSON library: the body is the benchmark's own, a flat
 * object of integers, and the plugin must stay as cheap as a real handler's SQL. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ctxd/ctxd.h>

typedef struct {
  const char *endpoint;
  const char *message_type;
  int publish;
  const char *event_type;
  int batch;
  int64_t endpoints;
} settings_t;

typedef struct {
  const ctxd_api_t *api;
  const settings_t *set;
} state_t;

static const ctxd_conf_entry_t config_map[] = {
    {CTXD_CONF_STR, "endpoint", "bench", offsetof(settings_t, endpoint), "queue to consume"},
    {CTXD_CONF_STR, "message_type", "Ctxd.Bench.v1:Work", offsetof(settings_t, message_type),
     "message type handled"},
    {CTXD_CONF_BOOL, "publish", "false", offsetof(settings_t, publish),
     "also publish one event_type event per message through the outbox"},
    {CTXD_CONF_STR, "event_type", "Ctxd.Bench.v1:WorkDone", offsetof(settings_t, event_type),
     "type of the published event"},
    {CTXD_CONF_BOOL, "batch", "false", offsetof(settings_t, batch),
     "a batch handler: one upsert statement for the whole batch"},
    {CTXD_CONF_INT, "endpoints", "1", offsetof(settings_t, endpoints),
     "1: consume `endpoint`; N > 1: the same handler on endpoints <endpoint>-0 .. <endpoint>-<N-1> "
     "(the many-endpoints benchmark)"},
    {0, NULL, NULL, 0, NULL},
};

static const ctxd_migration_t migrations[] = {
    {1, "items",
     "CREATE SCHEMA benchkit;\n"
     "CREATE TABLE benchkit.items (key bigint PRIMARY KEY, n int NOT NULL, sent_ns bigint NOT NULL,\n"
     "  handled_at timestamptz NOT NULL);\n"},
    {0, NULL, NULL},
};

/* Copies the digits of integer field `name` of a flat JSON object into out; 0 or -1. */
static int int_field(const char *body, const char *name, char *out, size_t len) {
  const char *p = strstr(body, name);
  if (p == NULL) return -1;
  p += strlen(name);
  while (*p == '"' || *p == ':' || *p == ' ') p++;
  size_t n = strspn(p, "-0123456789");
  if (n == 0 || n >= len) return -1;
  memcpy(out, p, n);
  out[n] = '\0';
  return 0;
}

/* Reads msg's key and sentNs into key and sent (24 bytes each); 0, or -1 with msg's
 * fault set. */
static int parse(ctxd_tx_t *tx, const ctxd_api_t *api, const ctxd_msg_t *msg, char *key, char *sent) {
  const char *body = api->msg_body(msg, NULL);
  if (int_field(body, "\"key\"", key, 24) == 0 && int_field(body, "\"sentNs\"", sent, 24) == 0) return 0;
  api->tx_fault(tx, "Benchkit.BadBody", "expected {\"key\": int, \"sentNs\": int}");
  return -1;
}

static int publish(ctxd_tx_t *tx, const state_t *st, const ctxd_msg_t *msg) {
  ctxd_out_msg_t out = {
      .size = sizeof out, .message_type = st->set->event_type, .body = st->api->msg_body(msg, NULL)};
  return st->api->publish(tx, &out);
}

static ctxd_handler_result_t handle(ctxd_tx_t *tx, const ctxd_msg_t *msg, void *data) {
  const state_t *st = data;
  const ctxd_api_t *api = st->api;
  char key[24], sent[24];
  if (parse(tx, api, msg, key, sent) != 0) return CTXD_HANDLER_FAIL;
  const char *params[] = {key, sent};
  /* clock_timestamp(), not now(): now() is the transaction start, shared by the batch */
  if (api->sql_exec(tx,
                    "INSERT INTO benchkit.items (key, n, sent_ns, handled_at) "
                    "VALUES ($1, 1, $2, clock_timestamp()) ON CONFLICT (key) DO UPDATE "
                    "SET n = items.n + 1, sent_ns = EXCLUDED.sent_ns, handled_at = EXCLUDED.handled_at",
                    2, params, NULL) != 0)
    return CTXD_HANDLER_RETRY;
  if (st->set->publish && publish(tx, st, msg) != 0) return CTXD_HANDLER_RETRY;
  return CTXD_HANDLER_OK;
}

/* Writes sep and digits at buf + len; the new length. */
static size_t put(char *buf, size_t len, char sep, const char *digits) {
  size_t n = strlen(digits);
  buf[len] = sep;
  memcpy(buf + len + 1, digits, n);
  return len + 1 + n;
}

/* The batch's keys and sent times as two array literals in one statement; a key twice in
 * the batch counts twice. A body that does not parse fails the batch: the host then runs
 * its messages one at a time, and only that one fails. */
static ctxd_handler_result_t handle_batch(ctxd_tx_t *tx, const ctxd_msg_t *const *msgs, size_t n,
                                          void *data) {
  const state_t *st = data;
  const ctxd_api_t *api = st->api;
  size_t cap = 3 + n * 24, klen = 0, slen = 0; /* "{...}": up to 23 characters and a comma each */
  char *buf = malloc(2 * cap), *keys = buf, *sents = buf + cap;
  if (buf == NULL) return CTXD_HANDLER_RETRY;
  for (size_t i = 0; i < n; i++) {
    char key[24], sent[24];
    api->tx_focus(tx, msgs[i]); /* a fault is the message's own */
    if (parse(tx, api, msgs[i], key, sent) != 0) {
      free(buf);
      return CTXD_HANDLER_FAIL;
    }
    klen = put(keys, klen, i == 0 ? '{' : ',', key);
    slen = put(sents, slen, i == 0 ? '{' : ',', sent);
  }
  memcpy(keys + klen, "}", 2);
  memcpy(sents + slen, "}", 2);
  const char *params[] = {keys, sents};
  int rc = api->sql_exec(tx,
                         "INSERT INTO benchkit.items (key, n, sent_ns, handled_at) "
                         "SELECT k, count(*), max(s), clock_timestamp() "
                         "FROM unnest($1::bigint[], $2::bigint[]) AS t(k, s) GROUP BY k "
                         "ON CONFLICT (key) DO UPDATE SET n = items.n + EXCLUDED.n, "
                         "sent_ns = EXCLUDED.sent_ns, handled_at = EXCLUDED.handled_at",
                         2, params, NULL);
  free(buf);
  if (rc != 0) return CTXD_HANDLER_RETRY;
  for (size_t i = 0; st->set->publish && i < n; i++)
    if (api->tx_focus(tx, msgs[i]) != 0 || publish(tx, st, msgs[i]) != 0) return CTXD_HANDLER_RETRY;
  return CTXD_HANDLER_OK;
}

static int init(ctxd_plugin_t *plugin, const ctxd_api_t *api, void **state) {
  state_t *st = calloc(1, sizeof *st);
  if (st == NULL) return CTXD_ENOMEM;
  st->api = api;
  st->set = api->settings(plugin);
  *state = st;
  ctxd_consumer_t c = {.size = sizeof c,
                       .endpoint = st->set->endpoint,
                       .message_type = st->set->message_type,
                       .handler = st->set->batch ? NULL : handle,
                       .batch_handler = st->set->batch ? handle_batch : NULL,
                       .data = st};
  if (st->set->endpoints <= 1) return api->consumer_register(plugin, &c);
  char name[256]; /* the host copies the endpoint name */
  for (int64_t i = 0; i < st->set->endpoints; i++) {
    if (snprintf(name, sizeof name, "%s-%lld", st->set->endpoint, (long long)i) >= (int)sizeof name)
      return CTXD_EINVAL;
    c.endpoint = name;
    int rc = api->consumer_register(plugin, &c);
    if (rc != 0) return rc;
  }
  return 0;
}

static void destroy(void *state) { free(state); }

static const ctxd_plugin_desc_t desc = {
    CTXD_PLUGIN_STAMP, /* size, ABI version, build flags */
    .name = "benchkit",
    .version = "1.0.0",
    .description = "benchmark handler: one-row upsert, optional outbox event",
    .config_map = config_map,
    .settings_size = sizeof(settings_t),
    .migrations = migrations,
    .init = init,
    .destroy = destroy,
};

CTXD_PLUGIN_DEFINE(desc)
