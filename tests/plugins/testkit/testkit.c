/* A plugin for the host's end-to-end tests: each message {"action": ...} records an
 * effect row (no unique key, so running a handler twice shows as two rows), or:
 *   "fail"            refuses (permanent failure)
 *   "retry"           always asks for a retry (transient failure)
 *   "flaky"           asks for a retry the first two times it sees a message id
 *   "abort"           aborts the process (a poison message)
 *   "segv"            writes through an invalid pointer (a crashing plugin)
 *   "publish"         also publishes an event of type echo_type through the outbox
 *   "publish_then_fail"  publishes, then refuses (the publish must roll back)
 *   "respond"         answers the request at its responseAddress (Ctxd.Tests.v1:Pong), with
 *                     the request's correlationId, as a MassTransit consumer sets it
 *   "bad_commit"      writes a row whose deferred foreign key fails only at COMMIT
 * and "sleep_ms" delays it, so a test can stop the host with work in flight. With
 * echo_endpoint set, a second consumer records every such event as action "echoed".
 * Built as version 2 (TESTKIT_V2) it records actions as "<action>@v2"; built with
 * TESTKIT_BAD_ABI its descriptor claims another ABI major, with TESTKIT_ABI_MINOR=n the
 * older minor n (a plugin built before that minor's additions: before 1.3, its consumers
 * end before batch_handler). */
#include <pthread.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include <ctxd/ctxd.h>

#if defined(TESTKIT_ABI_MINOR) && TESTKIT_ABI_MINOR < 3
#define CONSUMER_SIZE offsetof(ctxd_consumer_t, batch_handler)
#else
#define CONSUMER_SIZE sizeof(ctxd_consumer_t)
#endif

typedef struct {
  const char *endpoint;
  const char *message_type;
  const char *echo_endpoint;
  const char *echo_type;
  int64_t suggest_prefetch;
  int fail_init;
} settings_t;

#define FLAKY_SLOTS 64

typedef struct {
  const ctxd_api_t *api;
  ctxd_plugin_t *plugin;
  /* attempts per message id for "flaky": handlers run on several threads */
  pthread_mutex_t mu;
  char flaky_ids[FLAKY_SLOTS][37];
  int flaky_count[FLAKY_SLOTS];
} state_t;

/* Counts an attempt of message id; returns the attempts so far including this one. */
static int attempt(state_t *st, const char *id) {
  pthread_mutex_lock(&st->mu);
  int i = 0;
  while (i < FLAKY_SLOTS && st->flaky_ids[i][0] && strcmp(st->flaky_ids[i], id) != 0) i++;
  int n = 0;
  if (i < FLAKY_SLOTS) {
    snprintf(st->flaky_ids[i], sizeof st->flaky_ids[i], "%s", id);
    n = ++st->flaky_count[i];
  }
  pthread_mutex_unlock(&st->mu);
  return n;
}

static const ctxd_conf_entry_t config_map[] = {
    {CTXD_CONF_STR, "endpoint", "testkit", offsetof(settings_t, endpoint), "queue to consume"},
    {CTXD_CONF_STR, "message_type", "Ctxd.Tests.v1:Ping", offsetof(settings_t, message_type),
     "message type handled"},
    {CTXD_CONF_STR, "echo_endpoint", "", offsetof(settings_t, echo_endpoint),
     "endpoint recording the echo_type events; \"\": none"},
    {CTXD_CONF_STR, "echo_type", "Ctxd.Tests.v1:Echoed", offsetof(settings_t, echo_type),
     "message type of the event \"publish\" writes"},
    {CTXD_CONF_INT, "suggest_prefetch", "0", offsetof(settings_t, suggest_prefetch),
     "prefetch the consumer suggests for its endpoint (0: none)"},
    {CTXD_CONF_BOOL, "fail_init", "false", offsetof(settings_t, fail_init),
     "init fails (to test that the host refuses to start)"},
    {0, NULL, NULL, 0, NULL},
};

static const ctxd_migration_t migrations[] = {
    {1, "effects",
     "CREATE SCHEMA testkit;\n"
     "CREATE TABLE testkit.effects (n bigserial PRIMARY KEY, message_id uuid NOT NULL, action text NOT "
     "NULL);\n"},
    {2, "effect bodies", "ALTER TABLE testkit.effects ADD COLUMN body text, ADD COLUMN message_type text;\n"},
    {3, "orphans",
     "CREATE TABLE testkit.parents (id int PRIMARY KEY);\n"
     "CREATE TABLE testkit.orphans (parent int REFERENCES testkit.parents DEFERRABLE INITIALLY DEFERRED);\n"},
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
  const settings_t *set = api->settings(st->plugin);
  ctxd_out_msg_t out = {.size = sizeof out, .message_type = set->echo_type, .body = "{\"echo\":true}"};
  ctxd_out_msg_t pong = {
      .size = sizeof pong, .message_type = "Ctxd.Tests.v1:Pong", .body = "{\"pong\":true}"};
  if (strcmp(action, "respond") == 0) {
    pong.correlation_id = api->msg_field(msg, CTXD_MSG_CORRELATION_ID);
    result = api->respond(tx, &pong) == 0 ? CTXD_HANDLER_OK : CTXD_HANDLER_FAIL;
  } else if (strncmp(action, "publish", 7) == 0 && api->publish(tx, &out) != 0) {
    result = CTXD_HANDLER_RETRY;
  } else if (strcmp(action, "fail") == 0 || strcmp(action, "publish_then_fail") == 0) {
    api->tx_fault(tx, "Testkit.Refused", "the test asked for a failure");
    result = CTXD_HANDLER_FAIL;
  } else if (strcmp(action, "retry") == 0 ||
             (strcmp(action, "flaky") == 0 && attempt(st, api->msg_field(msg, CTXD_MSG_ID)) <= 2)) {
    api->tx_fault(tx, "Testkit.Transient", "the test asked for a retry");
    result = CTXD_HANDLER_RETRY;
  } else if (strcmp(action, "bad_commit") == 0) {
    result = api->sql_exec(tx, "INSERT INTO testkit.orphans (parent) VALUES (1)", 0, NULL, NULL) == 0
                 ? CTXD_HANDLER_OK
                 : CTXD_HANDLER_FAIL;
  } else if (strcmp(action, "abort") == 0) {
    abort();
  } else if (strcmp(action, "segv") == 0) {
    /* a real fault: volatile, so the compiler cannot see it, and not NULL, which the
     * test build's undefined-behaviour checks would stop at first */
    int *volatile nowhere = (int *)16;
    *nowhere = 1;
  } else if (strcmp(action, "bad_value") == 0 || strcmp(action, "bad_sql") == 0) {
    /* a statement that fails when it runs, or already when it is prepared; its rows are
     * not wanted, so a pipelined batch only queues it */
    const char *params[] = {"not a uuid"};
    int bad_value = action[4] == 'v';
    result = api->sql_exec(tx,
                           bad_value ? "INSERT INTO testkit.effects (message_id, action) VALUES ($1, 'bad')"
                                     : "INSERT INTO testkit.effects VALUES (",
                           bad_value, params, NULL) == 0
                 ? CTXD_HANDLER_OK
                 : CTXD_HANDLER_FAIL;
  } else {
    json_int_t ms = json_integer_value(json_object_get(body, "sleep_ms"));
    if (ms > 0) {
      struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
      nanosleep(&ts, NULL);
    }
#if TESTKIT_V2
    char recorded[64];
    snprintf(recorded, sizeof recorded, "%s@v2", action);
    action = recorded;
#endif
    const char *params[] = {api->msg_field(msg, CTXD_MSG_ID), action, api->msg_body(msg, NULL),
                            api->msg_field(msg, CTXD_MSG_MESSAGE_TYPE)};
    if (api->sql_exec(tx,
                      "INSERT INTO testkit.effects (message_id, action, body, message_type) "
                      "VALUES ($1, $2, $3, $4)",
                      4, params, NULL) != 0)
      result = CTXD_HANDLER_RETRY;
  }
  json_decref(body);
  return result;
}

static ctxd_handler_result_t handle_echo(ctxd_tx_t *tx, const ctxd_msg_t *msg, void *data) {
  state_t *st = data;
  const char *params[] = {st->api->msg_field(msg, CTXD_MSG_ID), "echoed"};
  return st->api->sql_exec(tx, "INSERT INTO testkit.effects (message_id, action) VALUES ($1, $2)", 2, params,
                           NULL) == 0
             ? CTXD_HANDLER_OK
             : CTXD_HANDLER_RETRY;
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
  pthread_mutex_init(&st->mu, NULL);
  ctxd_consumer_t c = {.size = CONSUMER_SIZE,
                       .endpoint = s->endpoint,
                       .message_type = s->message_type,
                       .handler = handle,
                       .data = st,
                       .prefetch = (uint32_t)s->suggest_prefetch};
  int rc = api->consumer_register(plugin, &c);
  if (rc == 0 && s->echo_endpoint[0]) {
    ctxd_consumer_t e = {.size = CONSUMER_SIZE,
                         .endpoint = s->echo_endpoint,
                         .message_type = s->echo_type,
                         .handler = handle_echo,
                         .data = st};
    rc = api->consumer_register(plugin, &e);
  }
  return rc;
}

static void destroy(void *state) {
  state_t *st = state;
  pthread_mutex_destroy(&st->mu);
  free(st);
}

static const ctxd_plugin_desc_t desc = {
    CTXD_PLUGIN_STAMP, /* size, ABI version, build flags */
#if TESTKIT_BAD_ABI
    .abi_major = CTXD_ABI_MAJOR + 1,
#endif
#ifdef TESTKIT_ABI_MINOR
    .abi_minor = TESTKIT_ABI_MINOR,
#endif
    .name = "testkit",
#if TESTKIT_V2
    .version = "2.0.0",
#else
    .version = "1.0.0",
#endif
    .description = "end-to-end test handler",
    .config_map = config_map,
    .settings_size = sizeof(settings_t),
    .migrations = migrations,
    .init = init,
    .destroy = destroy,
};

CTXD_PLUGIN_DEFINE(desc)
