/* The smallest useful ctxd plugin: counts greetings by name.
 *
 * It consumes Ctxd.Examples.v1:Hello {"Name": "..."} on one endpoint and upserts a row of
 * its own table in the handler's transaction, so each message counts exactly once. The
 * JSON is read by PostgreSQL: the plugin needs no library besides the ABI header. */
#include <stddef.h>
#include <stdlib.h>

#include <ctxd/ctxd.h>

typedef struct {
  const char *endpoint;
} settings_t;

typedef struct {
  const ctxd_api_t *api;
  ctxd_plugin_t *plugin;
} state_t;

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

static ctxd_handler_result_t on_hello(ctxd_tx_t *tx, const ctxd_msg_t *msg, void *data) {
  state_t *st = data;
  const char *params[] = {st->api->msg_body(msg, NULL)};
  /* property names arrive camelCase or PascalCase: accept both */
  int rc = st->api->sql_exec(tx,
                             "INSERT INTO hello.greetings (name, count) "
                             "SELECT coalesce($1::json->>'Name', $1::json->>'name'), 1 "
                             "ON CONFLICT (name) DO UPDATE SET count = greetings.count + 1",
                             1, params, NULL);
  if (rc == CTXD_ECONFLICT) return CTXD_HANDLER_RETRY;
  if (rc != 0) {
    st->api->tx_fault(tx, "Hello.BadGreeting", st->api->tx_error(tx));
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
  ctxd_consumer_t c = {.size = sizeof c, .endpoint = s->endpoint,
                       .message_type = "Ctxd.Examples.v1:Hello", .handler = on_hello, .data = st};
  return api->consumer_register(plugin, &c);
}

static void destroy(void *state) { free(state); }

static const ctxd_plugin_desc_t desc = {
    CTXD_PLUGIN_STAMP,
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
