/* A plugin for the host's end-to-end tests: each message {"action": ...} records an
 * effect row (no unique key, so running a handler twice shows as two rows), fails, or
 * sleeps first so a test can stop the host with work in flight. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include <ctxd/ctxd.h>

typedef struct {
  const char *endpoint;
  const char *message_type;
  int fail_init;
} settings_t;

typedef struct {
  const ctxd_api_t *api;
  ctxd_plugin_t *plugin;
} state_t;

static const ctxd_conf_entry_t config_map[] = {
    {CTXD_CONF_STR, "endpoint", "testkit", offsetof(settings_t, endpoint), "queue to consume"},
    {CTXD_CONF_STR, "message_type", "Ctxd.Tests.v1:Ping", offsetof(settings_t, message_type),
     "message type handled"},
    {CTXD_CONF_BOOL, "fail_init", "false", offsetof(settings_t, fail_init),
     "init fails (to test that the host refuses to start)"},
    {0, NULL, NULL, 0, NULL},
};

static const ctxd_migration_t migrations[] = {
    {1, "effects",
     "CREATE SCHEMA testkit;\n"
     "CREATE TABLE testkit.effects (n bigserial PRIMARY KEY, message_id uuid NOT NULL, action text NOT NULL);\n"},
    {0, NULL, NULL},
};

static ctxd_handler_result_t handle(ctxd_tx_t *tx, const ctxd_msg_t *msg, void *data) {
  state_t *st = data;
  const ctxd_api_t *api = st->api;
  json_error_t jerr;
  json_t *body = json_loads(api->msg_body(msg, NULL), 0, &jerr);
  const char *action = json_string_value(json_object_get(body, "action"));
  if (action == NULL) action = "ok";
  ctxd_handler_result_t result = CTXD_HANDLER_OK;
  /* "publish" writes an event in the same transaction; "publish_then_fail" shows that it
   * rolls back with the handler */
  ctxd_out_msg_t out = {.size = sizeof out, .message_type = "Ctxd.Tests.v1:Echoed",
                        .body = "{\"echo\":true}"};
  if (strncmp(action, "publish", 7) == 0 && api->publish(tx, &out) != 0) {
    result = CTXD_HANDLER_RETRY;
  } else if (strcmp(action, "fail") == 0 || strcmp(action, "publish_then_fail") == 0) {
    api->tx_fault(tx, "Testkit.Refused", "the test asked for a failure");
    result = CTXD_HANDLER_FAIL;
  } else {
    json_int_t ms = json_integer_value(json_object_get(body, "sleep_ms"));
    if (ms > 0) {
      struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
      nanosleep(&ts, NULL);
    }
    const char *params[] = {api->msg_field(msg, CTXD_MSG_ID), action};
    if (api->sql_exec(tx, "INSERT INTO testkit.effects (message_id, action) VALUES ($1, $2)", 2,
                      params, NULL) != 0)
      result = CTXD_HANDLER_RETRY;
  }
  json_decref(body);
  return result;
}

static int init(ctxd_plugin_t *plugin, const ctxd_api_t *api, void **state) {
  const settings_t *s = api->settings(plugin);
  if (s->fail_init) {
    api->log(plugin, NULL, CTXD_LOG_ERROR, "fail_init is set");
    return CTXD_EPLUGIN;
  }
  state_t *st = calloc(1, sizeof *st);
  if (st == NULL) return CTXD_ENOMEM;
  st->api = api;
  st->plugin = plugin;
  *state = st;
  ctxd_consumer_t c = {.size = sizeof c, .endpoint = s->endpoint, .message_type = s->message_type,
                       .handler = handle, .data = st};
  return api->consumer_register(plugin, &c);
}

static void destroy(void *state) { free(state); }

static const ctxd_plugin_desc_t desc = {
    CTXD_PLUGIN_STAMP,
    .name = "testkit",
    .version = "1.0.0",
    .description = "end-to-end test handler",
    .config_map = config_map,
    .settings_size = sizeof(settings_t),
    .migrations = migrations,
    .init = init,
    .destroy = destroy,
};

CTXD_PLUGIN_DEFINE(desc)
