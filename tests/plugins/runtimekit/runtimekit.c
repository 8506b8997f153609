/* A plugin for the tests of ABI 1.2 (scheduled messages, sagas, external calls). Each
 * message {"action": ...} on its endpoint:
 *   "schedule"    {"tag", "delay_ms"}: schedules {"action": "arrived", "tag", "due_ms"} to its
 *                 own endpoint, due_ms = now + delay_ms; remembers the id under tag
 *   "unschedule"  {"tag"}: cancels it; records "unscheduled" or "unschedule:<error>"
 *   "arrived"     records the tag, when it was due and when it arrived (Unix ms)
 *   "saga"        {"key", "sleep_ms"}: adds one to the counter of instance key of saga
 *                 "counter" (sleeping between load and save, to widen any race); records
 *                 "saga" or, when the instance is finished, "saga-finished"
 *   "saga_finish" {"key"}: finishes it
 *   "call"        {"key", "payload"}: records an external call of kind "fake.sms"
 * Every action records a row in runtimekit.effects. The executor of "fake.sms" POSTs the
 * payload to the fake provider (127.0.0.1:provider_port, /sms) with the key as
 * Idempotency-Key: 200 is done, 4xx failed, anything else retried. A payload with
 * "hold_ms" holds the executor that long after the provider accepted it on attempt 1 (the
 * test kills the host meanwhile). CallCompleted outcomes arrive on outcome_endpoint and are
 * recorded as "outcome" rows with their body. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include <ctxd/ctxd.h>
#include <ctxd/saga.h>

typedef struct {
  const char *endpoint;
  const char *message_type;
  const char *outcome_endpoint;
  int64_t provider_port;
  int64_t call_timeout_ms;
  int64_t max_attempts;
  int64_t backoff_ms;
} settings_t;

typedef struct {
  const ctxd_api_t *api;
  ctxd_plugin_t *plugin;
  const settings_t *set;
} state_t;

static const ctxd_conf_entry_t config_map[] = {
    {CTXD_CONF_STR, "endpoint", "runtimekit", offsetof(settings_t, endpoint), "queue to consume"},
    {CTXD_CONF_STR, "message_type", "Ctxd.Tests.v1:Ping", offsetof(settings_t, message_type),
     "message type handled"},
    {CTXD_CONF_STR, "outcome_endpoint", "runtimekit-outcomes", offsetof(settings_t, outcome_endpoint),
     "where CallCompleted arrives"},
    {CTXD_CONF_INT, "provider_port", "0", offsetof(settings_t, provider_port), "the fake provider's port"},
    {CTXD_CONF_INT, "call_timeout_ms", "2000", offsetof(settings_t, call_timeout_ms), "executor timeout_ms"},
    {CTXD_CONF_INT, "max_attempts", "4", offsetof(settings_t, max_attempts), "executor max_attempts"},
    {CTXD_CONF_INT, "backoff_ms", "100", offsetof(settings_t, backoff_ms), "executor backoff_ms"},
    {0, NULL, NULL, 0, NULL},
};

static const ctxd_migration_t migrations[] = {
    {1, "effects",
     "CREATE SCHEMA runtimekit;\n"
     "CREATE TABLE runtimekit.effects (n bigserial PRIMARY KEY, action text NOT NULL, tag text, "
     "body text, due_ms bigint, at_ms bigint);\n"
     "CREATE TABLE runtimekit.scheduled (tag text PRIMARY KEY, id uuid NOT NULL);\n"},
    {0, NULL, NULL},
};

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int64_t ms) {
  struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

static int effect(state_t *st, ctxd_tx_t *tx, const char *action, const char *tag, const char *body,
                  int64_t due_ms) {
  char due[24], at[24];
  snprintf(due, sizeof due, "%lld", (long long)due_ms);
  snprintf(at, sizeof at, "%lld", (long long)now_ms());
  const char *params[] = {action, tag, body, due_ms != 0 ? due : NULL, at};
  return st->api->sql_exec(tx,
                           "INSERT INTO runtimekit.effects (action, tag, body, due_ms, at_ms) "
                           "VALUES ($1, $2, $3, $4::bigint, $5::bigint)",
                           5, params, NULL);
}

static int do_schedule(state_t *st, ctxd_tx_t *tx, const char *tag, json_int_t delay_ms) {
  int64_t due = now_ms() + delay_ms;
  json_t *m = json_pack("{s:s, s:s, s:I}", "action", "arrived", "tag", tag, "due_ms", (json_int_t)due);
  char *body = json_dumps(m, JSON_COMPACT);
  json_decref(m);
  ctxd_out_msg_t out = {.size = sizeof out,
                        .message_type = st->set->message_type,
                        .body = body,
                        .destination = st->set->endpoint};
  ctxd_schedule_t s = {.size = sizeof s, .msg = &out, .publish = 0, .at_ms = due};
  char id[37];
  int rc = st->api->schedule(tx, &s, id);
  free(body);
  if (rc != 0) return rc;
  const char *params[] = {tag, id};
  rc = st->api->sql_exec(tx, "INSERT INTO runtimekit.scheduled (tag, id) VALUES ($1, $2::uuid)", 2, params,
                         NULL);
  return rc != 0 ? rc : effect(st, tx, "scheduled", tag, id, due);
}

static int do_unschedule(state_t *st, ctxd_tx_t *tx, const char *tag) {
  const char *params[] = {tag};
  ctxd_rows_t *rows;
  int rc = st->api->sql_exec(tx, "SELECT id FROM runtimekit.scheduled WHERE tag = $1", 1, params, &rows);
  if (rc != 0) return rc;
  const char *id = st->api->rows_value(rows, 0, 0);
  rc = id != NULL ? st->api->unschedule(tx, id) : CTXD_ENOENT;
  st->api->rows_free(rows);
  char action[64];
  if (rc == 0)
    snprintf(action, sizeof action, "unscheduled");
  else
    snprintf(action, sizeof action, "unschedule:%s", ctxd_err_name(rc));
  return rc == 0 || rc == CTXD_ENOENT ? effect(st, tx, action, tag, NULL, 0) : rc;
}

static int do_saga(state_t *st, ctxd_tx_t *tx, const char *key, json_int_t pause_ms, int finish) {
  ctxd_saga_t s;
  int rc = ctxd_saga_load(st->api, tx, "counter", key, &s);
  if (rc != 0) return rc;
  if (s.finished) {
    ctxd_saga_release(&s);
    return effect(st, tx, "saga-finished", key, NULL, 0);
  }
  json_t *state = json_loads(s.state, 0, NULL);
  json_int_t count = json_integer_value(json_object_get(state, "count"));
  json_decref(state);
  if (pause_ms > 0) sleep_ms(pause_ms);
  char next[64];
  snprintf(next, sizeof next, "{\"count\": %lld}", (long long)(finish ? count : count + 1));
  rc = finish ? ctxd_saga_finish(&s, next) : ctxd_saga_save(&s, next);
  ctxd_saga_release(&s);
  return rc != 0 ? rc : effect(st, tx, finish ? "saga-finish" : "saga", key, next, 0);
}

static ctxd_handler_result_t handle(ctxd_tx_t *tx, const ctxd_msg_t *msg, void *data) {
  state_t *st = data;
  json_t *body = json_loads(st->api->msg_body(msg, NULL), 0, NULL);
  const char *action = json_string_value(json_object_get(body, "action"));
  const char *tag = json_string_value(json_object_get(body, "tag"));
  const char *key = json_string_value(json_object_get(body, "key"));
  int rc = CTXD_EINVAL;
  if (action == NULL) {
  } else if (strcmp(action, "schedule") == 0 && tag != NULL) {
    rc = do_schedule(st, tx, tag, json_integer_value(json_object_get(body, "delay_ms")));
  } else if (strcmp(action, "unschedule") == 0 && tag != NULL) {
    rc = do_unschedule(st, tx, tag);
  } else if (strcmp(action, "arrived") == 0) {
    rc = effect(st, tx, "arrived", tag, st->api->msg_field(msg, CTXD_MSG_ID),
                json_integer_value(json_object_get(body, "due_ms")));
  } else if (strncmp(action, "saga", 4) == 0 && key != NULL) {
    rc = do_saga(st, tx, key, json_integer_value(json_object_get(body, "sleep_ms")),
                 strcmp(action, "saga_finish") == 0);
  } else if (strcmp(action, "call") == 0 && key != NULL) {
    char *payload = json_dumps(json_object_get(body, "payload"), JSON_COMPACT | JSON_ENCODE_ANY);
    rc = st->api->call(tx, "fake.sms", key, payload);
    free(payload);
    if (rc == 0) rc = effect(st, tx, "called", key, NULL, 0);
  }
  json_decref(body);
  if (rc == CTXD_ECONFLICT) return CTXD_HANDLER_RETRY;
  if (rc != 0) st->api->tx_fault(tx, "Runtimekit.Failed", ctxd_err_name(rc));
  return rc == 0 ? CTXD_HANDLER_OK : CTXD_HANDLER_FAIL;
}

static ctxd_handler_result_t handle_outcome(ctxd_tx_t *tx, const ctxd_msg_t *msg, void *data) {
  state_t *st = data;
  json_t *body = json_loads(st->api->msg_body(msg, NULL), 0, NULL);
  const char *key = json_string_value(json_object_get(body, "IdempotencyKey"));
  int rc = effect(st, tx, "outcome", key, st->api->msg_body(msg, NULL), 0);
  json_decref(body);
  return rc == 0 ? CTXD_HANDLER_OK : CTXD_HANDLER_RETRY;
}

/* ---- the executor: a blocking HTTP/1.1 POST with time-outs --------------------------- */

/* POSTs body to 127.0.0.1:port/sms; returns the status (-1: no answer in time) and the
 * answer's body in resp. */
static int post_sms(int port, int timeout_ms, const char *key, const char *body, char *resp, size_t resplen) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  char req[4096];
  int n = snprintf(req, sizeof req,
                   "POST /sms HTTP/1.1\r\nHost: 127.0.0.1\r\nIdempotency-Key: %s\r\nContent-Type: "
                   "application/json\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
                   key, strlen(body), body);
  int status = -1;
  if (n > 0 && (size_t)n < sizeof req && connect(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
      send(fd, req, (size_t)n, MSG_NOSIGNAL) == n) {
    char buf[8192];
    size_t len = 0;
    ssize_t got;
    while (len < sizeof buf - 1 && (got = recv(fd, buf + len, sizeof buf - 1 - len, 0)) > 0)
      len += (size_t)got;
    buf[len] = '\0';
    if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1) status = -1;
    const char *b = strstr(buf, "\r\n\r\n");
    snprintf(resp, resplen, "%s", b != NULL ? b + 4 : "");
  }
  close(fd);
  return status;
}

static ctxd_call_result_t send_sms(const ctxd_call_t *call, void *data) {
  state_t *st = data;
  const ctxd_api_t *api = st->api;
  const char *key = api->call_field(call, CTXD_CALL_KEY);
  const char *payload = api->call_field(call, CTXD_CALL_PAYLOAD);
  int attempt = atoi(api->call_field(call, CTXD_CALL_ATTEMPT));
  char resp[1024] = "";
  int status =
      post_sms((int)st->set->provider_port, (int)st->set->call_timeout_ms, key, payload, resp, sizeof resp);
  api->log(st->plugin, NULL, CTXD_LOG_INFO, "fake.sms key %s attempt %d: HTTP %d", key, attempt, status);
  if (status == 200) {
    json_t *p = json_loads(payload, JSON_DECODE_ANY, NULL);
    json_int_t hold = json_integer_value(json_object_get(p, "hold_ms"));
    json_decref(p);
    if (hold > 0 && attempt == 1) {
      api->log(st->plugin, NULL, CTXD_LOG_INFO, "fake.sms key %s accepted; holding before the outcome", key);
      sleep_ms(hold);
    }
    json_t *r = json_loads(resp, 0, NULL);
    json_t *o = json_pack("{s:i, s:O?}", "HttpStatus", status, "ProviderId", json_object_get(r, "id"));
    char *text = json_dumps(o, JSON_COMPACT);
    api->call_outcome(call, text);
    free(text);
    json_decref(o);
    json_decref(r);
    return CTXD_CALL_DONE;
  }
  if (status >= 400 && status < 500) return CTXD_CALL_FAILED;
  char o[64];
  snprintf(o, sizeof o, "{\"HttpStatus\": %d}", status);
  api->call_outcome(call, o);
  return CTXD_CALL_RETRY;
}

static int init(ctxd_plugin_t *plugin, const ctxd_api_t *api, void **state) {
  if (!CTXD_API_HAS(api, call_outcome)) return CTXD_EPLUGIN;
  state_t *st = calloc(1, sizeof *st);
  if (st == NULL) return CTXD_ENOMEM;
  st->api = api;
  st->plugin = plugin;
  st->set = api->settings(plugin);
  *state = st;
  ctxd_consumer_t c = {.size = sizeof c,
                       .endpoint = st->set->endpoint,
                       .message_type = st->set->message_type,
                       .handler = handle,
                       .data = st};
  ctxd_consumer_t o = {.size = sizeof o,
                       .endpoint = st->set->outcome_endpoint,
                       .message_type = "Ctxd.Runtime.v1:CallCompleted",
                       .handler = handle_outcome,
                       .data = st};
  ctxd_executor_t e = {.size = sizeof e,
                       .kind = "fake.sms",
                       .fn = send_sms,
                       .data = st,
                       .outcome_endpoint = st->set->outcome_endpoint,
                       .max_attempts = (uint32_t)st->set->max_attempts,
                       .backoff_ms = (uint32_t)st->set->backoff_ms,
                       .timeout_ms = (uint32_t)st->set->call_timeout_ms};
  int rc = api->consumer_register(plugin, &c);
  if (rc == 0) rc = api->consumer_register(plugin, &o);
  if (rc == 0) rc = api->executor_register(plugin, &e);
  return rc;
}

static void destroy(void *state) { free(state); }

static const ctxd_plugin_desc_t desc = {
    CTXD_PLUGIN_STAMP,        .name = "runtimekit",
    .version = "1.0.0",       .description = "ABI 1.2 test handler",
    .config_map = config_map, .settings_size = sizeof(settings_t),
    .migrations = migrations, .init = init,
    .destroy = destroy,
};

CTXD_PLUGIN_DEFINE(desc)
