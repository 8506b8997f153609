/* A plugin for the tests of batch handlers (ABI 1.3). Its batch handler takes messages
 * {"action": ...} of message_type (and of other_type, when set: the same callback and
 * data for a second type) and records, in one statement per call, an effect row per
 * message (no unique key: a message applied twice shows as two rows) and the call's size
 * and message ids in batchkit.calls. Per message (tx_focus first):
 *   "ok"       nothing more
 *   "fail"     refuses (permanent failure) with fault Batchkit.Refused
 *   "flaky"    asks for a retry in a batch of more than one, and the first time it runs
 *              alone; succeeds on its immediate retry
 *   "publish"  publishes an event of echo_type whose body names the message tx_msg() gives
 *   "foreign"  records what tx_focus answers for a pointer that is no message of the call
 * A per-message handler on the same endpoint records each echo_type event as action
 * "echoed" with the event's conversationId and the message its body names. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <ctxd/ctxd.h>

typedef struct {
  const char *endpoint;
  const char *message_type;
  const char *echo_type;
  const char *other_type;
} settings_t;

#define MAX_FLAKY 16

typedef struct {
  const ctxd_api_t *api;
  const settings_t *set;
  pthread_mutex_t mu;
  char flaky[MAX_FLAKY][37]; /* ids of "flaky" messages that ran alone once */
  size_t nflaky;
} state_t;

static const ctxd_conf_entry_t config_map[] = {
    {CTXD_CONF_STR, "endpoint", "batch", offsetof(settings_t, endpoint), "queue to consume"},
    {CTXD_CONF_STR, "message_type", "Ctxd.Tests.v1:Batch", offsetof(settings_t, message_type),
     "type the batch handler takes"},
    {CTXD_CONF_STR, "echo_type", "Ctxd.Tests.v1:BatchEcho", offsetof(settings_t, echo_type),
     "type of the events it publishes, which a per-message handler records"},
    {CTXD_CONF_STR, "other_type", "", offsetof(settings_t, other_type),
     "a second type the batch handler takes (empty: none)"},
    {0, NULL, NULL, 0, NULL},
};

static const ctxd_migration_t migrations[] = {
    {1, "effects",
     "CREATE SCHEMA batchkit;\n"
     "CREATE TABLE batchkit.effects (message_id uuid NOT NULL, action text NOT NULL, detail text);\n"
     "CREATE TABLE batchkit.calls (n int NOT NULL);\n"},
    /* which messages shared a call: the tests look for types mixed or kept together */
    {2, "call ids", "ALTER TABLE batchkit.calls ADD COLUMN ids uuid[];\n"},
    {0, NULL, NULL},
};

/* 1 the first time flaky message id runs alone (it asks for a retry), 0 after. */
static int first_alone(state_t *st, const char *id) {
  pthread_mutex_lock(&st->mu);
  int first = 1;
  for (size_t i = 0; i < st->nflaky && first; i++) first = strcmp(st->flaky[i], id) != 0;
  if (first && st->nflaky < MAX_FLAKY) snprintf(st->flaky[st->nflaky++], 37, "%s", id);
  pthread_mutex_unlock(&st->mu);
  return first;
}

/* Appends text to the array literal in *buf (grown as needed), quoted. 0 or -1. */
static int append(char **buf, size_t *len, size_t *cap, const char *text) {
  size_t need = *len + strlen(text) + 4;
  if (need > *cap) {
    char *grown = realloc(*buf, need * 2);
    if (grown == NULL) return -1;
    *buf = grown;
    *cap = need * 2;
  }
  *len += (size_t)snprintf(*buf + *len, *cap - *len, "%s\"%s\"", *len ? "," : "", text);
  return 0;
}

/* Runs one message's action (it is the focus); its detail (for the effect row) in detail. */
static ctxd_handler_result_t act(ctxd_tx_t *tx, state_t *st, const ctxd_msg_t *msg, size_t n,
                                 const char *action, char *detail, size_t len) {
  const ctxd_api_t *api = st->api;
  const char *id = api->msg_field(msg, CTXD_MSG_ID);
  snprintf(detail, len, "%zu", n);
  if (strcmp(action, "fail") == 0) {
    api->tx_fault(tx, "Batchkit.Refused", "the test asked for a failure");
    return CTXD_HANDLER_FAIL;
  }
  if (strcmp(action, "flaky") == 0 && (n > 1 || first_alone(st, id))) {
    api->tx_fault(tx, "Batchkit.Transient", "the test asked for a retry");
    return CTXD_HANDLER_RETRY;
  }
  if (strcmp(action, "publish") == 0) {
    char body[128];
    snprintf(body, sizeof body, "{\"of\":\"%s\"}", api->msg_field(api->tx_msg(tx), CTXD_MSG_ID));
    ctxd_out_msg_t out = {.size = sizeof out, .message_type = st->set->echo_type, .body = body};
    if (api->publish(tx, &out) != 0) return CTXD_HANDLER_RETRY;
  }
  if (strcmp(action, "foreign") == 0) snprintf(detail, len, "%d", api->tx_focus(tx, (const ctxd_msg_t *)st));
  return CTXD_HANDLER_OK;
}

static ctxd_handler_result_t handle_batch(ctxd_tx_t *tx, const ctxd_msg_t *const *msgs, size_t n,
                                          void *data) {
  state_t *st = data;
  const ctxd_api_t *api = st->api;
  char *lists[3] = {NULL, NULL, NULL}; /* ids, actions, details */
  size_t lens[3] = {0, 0, 0}, caps[3] = {0, 0, 0};
  ctxd_handler_result_t r = CTXD_HANDLER_OK;
  for (size_t i = 0; r == CTXD_HANDLER_OK && i < n; i++) {
    api->tx_focus(tx, msgs[i]);
    json_error_t jerr;
    json_t *body = json_loads(api->msg_body(msgs[i], NULL), 0, &jerr);
    const char *action = json_string_value(json_object_get(body, "action"));
    char detail[32];
    r = act(tx, st, msgs[i], n, action != NULL ? action : "ok", detail, sizeof detail);
    if (r == CTXD_HANDLER_OK &&
        (append(&lists[0], &lens[0], &caps[0], api->msg_field(msgs[i], CTXD_MSG_ID)) != 0 ||
         append(&lists[1], &lens[1], &caps[1], action != NULL ? action : "ok") != 0 ||
         append(&lists[2], &lens[2], &caps[2], detail) != 0))
      r = CTXD_HANDLER_RETRY;
    json_decref(body);
  }
  char *arrays[3] = {NULL, NULL, NULL}, count[24];
  for (size_t k = 0; r == CTXD_HANDLER_OK && k < 3; k++)
    if ((arrays[k] = malloc(lens[k] + 3)) == NULL)
      r = CTXD_HANDLER_RETRY;
    else
      snprintf(arrays[k], lens[k] + 3, "{%s}", lists[k]);
  snprintf(count, sizeof count, "%zu", n);
  const char *params[] = {arrays[0], arrays[1], arrays[2]}, *np[] = {count, arrays[0]};
  if (r == CTXD_HANDLER_OK &&
      (api->sql_exec(tx,
                     "INSERT INTO batchkit.effects (message_id, action, detail) "
                     "SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[])",
                     3, params, NULL) != 0 ||
       api->sql_exec(tx, "INSERT INTO batchkit.calls (n, ids) VALUES ($1::int, $2::uuid[])", 2, np, NULL) !=
           0))
    r = CTXD_HANDLER_RETRY;
  for (size_t k = 0; k < 3; k++) {
    free(lists[k]);
    free(arrays[k]);
  }
  return r;
}

static ctxd_handler_result_t handle_echo(ctxd_tx_t *tx, const ctxd_msg_t *msg, void *data) {
  const state_t *st = data;
  const ctxd_api_t *api = st->api;
  if (api->tx_focus(tx, msg) != 0) return CTXD_HANDLER_FAIL; /* its own message: a no-op */
  json_error_t jerr;
  json_t *body = json_loads(api->msg_body(msg, NULL), 0, &jerr);
  const char *params[] = {api->msg_field(msg, CTXD_MSG_CONVERSATION_ID),
                          json_string_value(json_object_get(body, "of"))};
  int rc =
      api->sql_exec(tx, "INSERT INTO batchkit.effects (message_id, action, detail) VALUES ($1, 'echoed', $2)",
                    2, params, NULL);
  json_decref(body);
  return rc == 0 ? CTXD_HANDLER_OK : CTXD_HANDLER_RETRY;
}

static int init(ctxd_plugin_t *plugin, const ctxd_api_t *api, void **state) {
  state_t *st = calloc(1, sizeof *st);
  if (st == NULL) return CTXD_ENOMEM;
  st->api = api;
  st->set = api->settings(plugin);
  pthread_mutex_init(&st->mu, NULL);
  *state = st;
  ctxd_consumer_t c = {.size = sizeof c,
                       .endpoint = st->set->endpoint,
                       .message_type = st->set->message_type,
                       .batch_handler = handle_batch,
                       .data = st};
  ctxd_consumer_t e = {.size = sizeof e,
                       .endpoint = st->set->endpoint,
                       .message_type = st->set->echo_type,
                       .handler = handle_echo,
                       .data = st};
  int rc = api->consumer_register(plugin, &c);
  if (rc == 0 && st->set->other_type[0] != '\0') {
    c.message_type = st->set->other_type;
    rc = api->consumer_register(plugin, &c);
  }
  return rc != 0 ? rc : api->consumer_register(plugin, &e);
}

static void destroy(void *state) {
  state_t *st = state;
  pthread_mutex_destroy(&st->mu);
  free(st);
}

static const ctxd_plugin_desc_t desc = {
    CTXD_PLUGIN_STAMP, /* size, ABI version, build flags */
    .name = "batchkit",
    .version = "1.0.0",
    .description = "ABI 1.3 test handler: batch handler with per-message outcomes",
    .config_map = config_map,
    .settings_size = sizeof(settings_t),
    .migrations = migrations,
    .init = init,
    .destroy = destroy,
};

CTXD_PLUGIN_DEFINE(desc)
