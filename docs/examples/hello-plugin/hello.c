/* hello: the smallest useful ctxd plugin. It counts greetings by name: each
 * Ctxd.Examples.v1:Hello message, {"name": "Ada"}, adds one to the row of its name in the
 * handler's transaction, so each message counts exactly once. */
#include <stddef.h>
#include <stdlib.h>
#include <strings.h>

#include <ctxd/ctxd.h>
#include <jansson.h>

/* This plugin's "settings" in the host configuration, filled in by the host. */
typedef struct {
  const char *endpoint;
} settings_t;

static const ctxd_conf_entry_t config_map[] = {
    {CTXD_CONF_STR, "endpoint", "hello", offsetof(settings_t, endpoint), "queue to consume"},
    {0, NULL, NULL, 0, NULL},
};

static const ctxd_migration_t migrations[] = {
    {1, "greetings",
     "CREATE SCHEMA hello;\n"
     "CREATE TABLE hello.greetings (name text PRIMARY KEY, count int NOT NULL);\n"},
    {0, NULL, NULL},
};

/* Returns the member of obj called `name`, matched as the contracts match property names:
 * ignoring ASCII case (MassTransit writes camelCase, older publishers PascalCase), an exact
 * match first. Borrowed from obj; NULL when absent. */
static json_t *member(json_t *obj, const char *name) {
  json_t *exact = json_object_get(obj, name);
  if (exact != NULL) return exact;
  const char *key;
  json_t *value;
  json_object_foreach(obj, key, value) {
    if (strcasecmp(key, name) == 0) return value;
  }
  return NULL;
}

/* What the handler needs: made by init, freed by destroy. */
typedef struct {
  const ctxd_api_t *api;
  ctxd_plugin_t *plugin;
} state_t;

static ctxd_handler_result_t on_hello(ctxd_tx_t *tx, const ctxd_msg_t *msg, void *data) {
  const state_t *st = data;
  size_t len;
  const char *body = st->api->msg_body(msg, &len);
  json_t *hello = json_loadb(body, len, 0, NULL);
  const char *params[] = {json_string_value(member(hello, "Name"))};
  if (params[0] == NULL) {
    json_decref(hello);
    st->api->tx_fault(tx, "Hello.NoName", "the message has no string Name");
    return CTXD_HANDLER_FAIL;
  }
  int rc = st->api->sql_exec(tx,
                             "INSERT INTO hello.greetings (name, count) VALUES ($1, 1) "
                             "ON CONFLICT (name) DO UPDATE SET count = greetings.count + 1",
                             1, params, NULL);
  json_decref(hello);
  if (rc == CTXD_ECONFLICT) return CTXD_HANDLER_RETRY;
  if (rc != 0) {
    st->api->tx_fault(tx, "Hello.NotCounted", st->api->tx_error(tx));
    return CTXD_HANDLER_FAIL;
  }
  st->api->log(st->plugin, msg, CTXD_LOG_DEBUG, "greeting counted");
  return CTXD_HANDLER_OK;
}

static int init(ctxd_plugin_t *plugin, const ctxd_api_t *api, void **state) {
  const settings_t *s = api->settings(plugin);
  state_t *st = calloc(1, sizeof *st);
  if (st == NULL) return CTXD_ENOMEM;
  st->api = api;
  st->plugin = plugin;
  *state = st;
  ctxd_consumer_t c = {.size = sizeof c,
                       .endpoint = s->endpoint,
                       .message_type = "Ctxd.Examples.v1:Hello",
                       .handler = on_hello,
                       .data = st};
  return api->consumer_register(plugin, &c);
}

static void destroy(void *state) { free(state); }

static const ctxd_plugin_desc_t desc = {
    CTXD_PLUGIN_STAMP, /* size, ABI version, build flags */
    .name = "hello",
    .version = "1.0.0",
    .description = "counts greetings",
    .config_map = config_map,
    .settings_size = sizeof(settings_t),
    .migrations = migrations,
    .init = init,
    .destroy = destroy,
};

CTXD_PLUGIN_DEFINE(desc)
