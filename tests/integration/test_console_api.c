/* The console's JSON API on a running host against the real broker and database: every
 * route's shape, rates while messages flow, actions refused without the token, with a
 * wrong one, cross-site or as a form, and done once with it; read-only without a token;
 * deferred database queries at a small connection bound while the loop stays free; the
 * console's connection made again after the database restarted. Restarts the shared
 * database: run alone. */
#include "hostfixture.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>

#define TOKEN "s3cret-console-token"

/* A response: status, head and body (new, free with http_free). */
typedef struct {
  int status;
  char *text; /* head and body */
  const char *body;
  json_t *json; /* the body parsed, when it is JSON */
} http_t;

static void http_free(http_t *r) {
  free(r->text);
  json_decref(r->json);
  memset(r, 0, sizeof *r);
}

static int http_open(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  assert_true(fd >= 0);
  struct timeval tv = {15, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
  return fd;
}

static void http_send(int fd, const char *method, const char *path, const char *headers, const char *body) {
  char req[8192];
  int n = snprintf(req, sizeof req, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%sContent-Length: %zu\r\n\r\n%s",
                   method, path, headers != NULL ? headers : "", body != NULL ? strlen(body) : 0,
                   body != NULL ? body : "");
  assert_true(n > 0 && (size_t)n < sizeof req);
  assert_int_equal(write(fd, req, (size_t)n), n);
}

/* Reads the response until the server closes. */
static http_t http_read(int fd) {
  http_t r = {.status = -1};
  size_t len = 0, cap = 65536;
  r.text = malloc(cap);
  ssize_t n;
  while ((n = read(fd, r.text + len, cap - 1 - len)) > 0) {
    len += (size_t)n;
    if (len + 1 == cap) r.text = realloc(r.text, cap *= 2);
  }
  close(fd);
  r.text[len] = '\0';
  sscanf(r.text, "HTTP/1.1 %d", &r.status);
  const char *b = strstr(r.text, "\r\n\r\n");
  r.body = b != NULL ? b + 4 : "";
  if (strstr(r.text, "Content-Type: application/json") != NULL) r.json = json_loads(r.body, 0, NULL);
  return r;
}

static http_t http(ctxt_world_t *w, const char *method, const char *path, const char *headers,
                   const char *body) {
  int fd = http_open(w->admin_port);
  http_send(fd, method, path, headers, body);
  return http_read(fd);
}

/* A request written as given (its own Host, if any) on a new connection. */
static http_t http_raw(ctxt_world_t *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static http_t http_raw(ctxt_world_t *w, const char *fmt, ...) {
  char req[4096];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(req, sizeof req, fmt, ap);
  va_end(ap);
  assert_true(n > 0 && (size_t)n < sizeof req);
  int fd = http_open(w->admin_port);
  assert_int_equal(write(fd, req, (size_t)n), n);
  return http_read(fd);
}

/* GET path: status 200 and a JSON object, or the test fails. */
static http_t get_json(ctxt_world_t *w, const char *path) {
  http_t r = http(w, "GET", path, NULL, NULL);
  if (r.status != 200 || !json_is_object(r.json)) fail_msg("GET %s: %d %s", path, r.status, r.text);
  assert_non_null(strstr(r.text, "Cache-Control: no-store\r\n"));
  return r;
}

static json_t *at(json_t *o, const char *key) {
  json_t *v = json_object_get(o, key);
  if (v == NULL) fail_msg("no member '%s' in %s", key, json_dumps(o, JSON_COMPACT));
  return v;
}

static long num(json_t *o, const char *key) { return (long)json_integer_value(at(o, key)); }
static const char *str(json_t *o, const char *key) { return json_string_value(at(o, key)); }

/* The endpoint named name in an /api/endpoints answer (the host's ingest endpoint,
 * ctxd.errors, is listed too). */
static json_t *endpoint_named(json_t *answer, const char *name) {
  json_t *list = at(answer, "endpoints");
  for (size_t i = 0; i < json_array_size(list); i++)
    if (strcmp(str(json_array_get(list, i), "name"), name) == 0) return json_array_get(list, i);
  fail_msg("no endpoint %s", name);
  return NULL;
}

static void start_with_token(ctxt_world_t *w, const char *admin_extra) {
  int n =
      snprintf(w->host_settings, sizeof w->host_settings,
               ", \"errors\": {\"store\": true}, \"admin\": {\"listen\": \"127.0.0.1:0\"%s}", admin_extra);
  assert_true(n > 0 && (size_t)n < sizeof w->host_settings);
  ctxt_host_start(w, NULL);
}

/* Inserts a failed message of the world's endpoint whose body is a well-formed envelope of
 * the world's type with message, as ingestion stores an _error copy; returns its row id. */
static long insert_failed(ctxt_world_t *w, int n, const char *message) {
  char id[37], sql[4096];
  ctxt_make_id(id, n);
  snprintf(sql, sizeof sql,
           "INSERT INTO ctxd.failed_messages (endpoint, message_id, message_type, exception_type, "
           "exception_message, plugin, headers, properties, body, first_failed_at, last_failed_at) VALUES "
           "('%s', '%s', '%s', 'ctxd.HandlerFailed', 'refused', 'testkit', '{\"MT-Reason\": \"fault\"}', "
           "'{\"content_type\": \"application/vnd.masstransit+json\"}', convert_to('{\"messageId\":\"%s\","
           "\"conversationId\":\"%s\",\"messageType\":[\"urn:message:%s\"],\"message\":%s}', 'UTF8'), now(), "
           "now()) "
           "RETURNING id",
           w->endpoint, id, w->type, id, id, w->type, message);
  return ctxt_pg_long(w->pg, sql);
}

static void routes_answer_json_and_rates_follow_the_load(void **state) {
  ctxt_world_t *w = *state;
  start_with_token(w, ", \"token\": \"" TOKEN "\"");

  http_t r = get_json(w, "/api/host");
  assert_string_equal(str(r.json, "readiness"), "ready");
  assert_true(json_is_true(at(r.json, "ready")) && json_is_true(at(r.json, "connected")));
  assert_true(json_is_true(at(r.json, "actions_enabled")));
  assert_non_null(strchr(str(r.json, "host"), '/'));
  assert_non_null(strstr(str(r.json, "started_at"), "Z"));
  assert_string_equal(str(json_array_get(at(r.json, "plugins"), 0), "name"), "testkit");
  assert_non_null(str(r.json, "version"));
  http_free(&r);

  /* a stream of messages, one published event among them: the rate shows it */
  char id[37], path[256];
  int sent = 0;
  double rate = 0;
  int64_t worst_ms = 0, deadline = ctxt_now_ms() + 30000;
  ctxt_make_id(id, 999);
  ctxt_publish(w, id, "{\"action\":\"publish\"}");
  sent++;
  while (rate <= 0 && ctxt_now_ms() < deadline) {
    for (int i = 0; i < 50; i++, sent++) {
      ctxt_make_id(id, 1000 + sent);
      ctxt_publish(w, id, "{\"action\":\"ok\"}");
    }
    int64_t t0 = ctxt_now_ms();
    r = get_json(w, "/api/endpoints");
    int64_t took = ctxt_now_ms() - t0;
    worst_ms = took > worst_ms ? took : worst_ms;
    json_t *e = endpoint_named(r.json, w->endpoint);
    rate = json_number_value(at(e, "rate"));
    http_free(&r);
  }
  print_message("rate %.1f/s after %d messages; /api/endpoints under load at most %lld ms\n", rate, sent,
                (long long)worst_ms);
  assert_true(rate > 0);
  assert_true(worst_ms < 1000);
  ctxt_wait_settled(w, w->endpoint, sent);

  /* rendered once a sample: the counts are the next sample's */
  deadline = ctxt_now_ms() + 10000;
  json_t *e;
  do {
    http_free(&r);
    r = get_json(w, "/api/endpoints");
    e = endpoint_named(r.json, w->endpoint);
  } while (num(e, "handled") != sent && ctxt_now_ms() < deadline);
  assert_int_equal(num(r.json, "interval_s"), 2);
  assert_string_equal(str(e, "name"), w->endpoint);
  assert_string_equal(str(e, "state"), "consuming");
  assert_int_equal(num(e, "handled"), sent);
  assert_int_equal(num(e, "workers"), 2);
  assert_int_equal(num(e, "errored"), 0);
  const char *counts[] = {"in_flight", "duplicates", "retried", "skipped", "poisoned"};
  for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++)
    assert_true(json_is_integer(at(e, counts[i])));
  assert_true(json_is_number(at(e, "p50_ms")) && json_is_number(at(e, "p99_ms")));
  json_t *series = at(e, "series");
  size_t points = json_array_size(at(series, "t"));
  assert_true(points >= 1);
  const char *lines[] = {"rate", "errors", "queue_depth", "p99_ms"};
  for (size_t i = 0; i < 4; i++) assert_int_equal(json_array_size(at(series, lines[i])), points);
  http_free(&r);
  /* consumers and queue depth come from the broker at the next sample */
  deadline = ctxt_now_ms() + 10000;
  long consumers = -1;
  while (consumers != 1 && ctxt_now_ms() < deadline) {
    r = get_json(w, "/api/endpoints");
    e = endpoint_named(r.json, w->endpoint);
    consumers = json_is_integer(at(e, "consumers")) ? num(e, "consumers") : -1;
    if (consumers == 1) assert_int_equal(num(e, "queue_depth"), 0);
    http_free(&r);
  }
  assert_int_equal(consumers, 1);

  r = get_json(w, "/api/topology");
  json_t *p = json_array_get(at(r.json, "plugins"), 0);
  assert_string_equal(str(p, "name"), "testkit");
  json_t *consumes = at(p, "consumes");
  int found = 0;
  for (size_t i = 0; i < json_array_size(consumes); i++)
    found |= strcmp(str(json_array_get(consumes, i), "endpoint"), w->endpoint) == 0 &&
             strcmp(str(json_array_get(consumes, i), "message_type"), w->type) == 0;
  assert_true(found);
  json_t *pub = json_array_get(at(p, "publishes"), 0);
  assert_non_null(pub);
  assert_string_equal(str(pub, "message_type"), w->echo_type);
  assert_true(strlen(str(pub, "exchange")) > 0);
  http_free(&r);

  r = get_json(w, "/api/outbox");
  assert_true(json_is_integer(at(r.json, "backlog")) && json_is_number(at(r.json, "oldest_s")));
  assert_int_equal(num(r.json, "set_aside"), 0);
  assert_int_equal(json_array_size(at(r.json, "set_aside_rows")), 0);
  http_free(&r);

  /* a message the handler refuses reaches _error, is ingested and listed */
  ctxt_make_id(id, 1);
  ctxt_publish(w, id, "{\"action\":\"fail\"}");
  long unresolved = 0;
  deadline = ctxt_now_ms() + CTXT_EFFECT_MS;
  while (unresolved != 1 && ctxt_now_ms() < deadline) {
    r = get_json(w, "/api/failed/summary");
    unresolved = num(r.json, "unresolved");
    if (unresolved == 1) assert_int_equal(num(r.json, "groups"), 1);
    http_free(&r);
  }
  assert_int_equal(unresolved, 1);
  long row = ctxt_pg_long(w->pg, "SELECT id FROM ctxd.failed_messages");
  r = get_json(w, "/api/failed/groups?status=open");
  json_t *g = json_array_get(at(r.json, "groups"), 0);
  assert_string_equal(str(g, "endpoint"), w->endpoint);
  assert_int_equal(num(g, "count"), 1);
  char group[32];
  snprintf(group, sizeof group, "%s", str(g, "group"));
  http_free(&r);
  snprintf(path, sizeof path, "/api/failed?group=%s&limit=5&endpoint=%s", group, w->endpoint);
  r = get_json(w, path);
  assert_int_equal(num(r.json, "total"), 1);
  assert_int_equal(num(r.json, "limit"), 5);
  assert_int_equal(num(json_array_get(at(r.json, "messages"), 0), "id"), row);
  http_free(&r);
  snprintf(path, sizeof path, "/api/failed/%ld", row);
  r = get_json(w, path);
  assert_string_equal(str(r.json, "message_id"), id);
  assert_string_equal(str(r.json, "plugin"), "testkit");
  assert_non_null(strstr(str(r.json, "body"), "\"action\":\"fail\""));
  assert_true(json_is_object(at(r.json, "headers")) && json_is_array(at(r.json, "actions")));
  http_free(&r);

  /* errors are JSON too, with their reason */
  static const struct {
    const char *method, *path, *headers, *reason;
    int status;
  } bad[] = {
      {"GET", "/api/failed/987654", NULL, "", 404},
      {"GET", "/api/failed?colour=red", NULL, "colour", 400},
      {"GET", "/api/failed?status=lost", NULL, "", 400},
      {"GET", "/api/failed?endpoint=%zz", NULL, "malformed", 400},
      {"GET", "/api/nothing", NULL, "not found", 404},
      {"POST", "/api/host", "Content-Type: application/json\r\n", "method", 405},
      {"GET", "/api/failed/retry", NULL, "method", 405},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    r = http(w, bad[i].method, bad[i].path, bad[i].headers, bad[i].method[0] == 'P' ? "{}" : NULL);
    if (r.status != bad[i].status || strstr(str(r.json, "error"), bad[i].reason) == NULL)
      fail_msg("%s %s: %s", bad[i].method, bad[i].path, r.text);
    http_free(&r);
  }

  /* the page and its files, under a strict policy */
  r = http(w, "GET", "/", NULL, NULL);
  assert_int_equal(r.status, 200);
  assert_non_null(strstr(r.text, "Content-Type: text/html"));
  assert_non_null(strstr(r.text,
                         "Content-Security-Policy: default-src 'self'; connect-src 'self'; img-src "
                         "'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'\r\n"));
  assert_non_null(strstr(r.text, "X-Content-Type-Options: nosniff\r\n"));
  assert_non_null(strstr(r.text, "Referrer-Policy: no-referrer\r\n"));
  http_free(&r);
  r = http(w, "GET", "/console.js", NULL, NULL);
  assert_int_equal(r.status, 200);
  assert_non_null(strstr(r.text, "javascript"));
  http_free(&r);
  ctxt_host_stop(w, SIGTERM);
  assert_null(strstr(w->host.out, TOKEN));
}

/* An action that must be refused: its status, and nothing changed. */
static void refused(ctxt_world_t *w, long row, int want, const char *headers, const char *body) {
  char path[64];
  http_t r = http(w, "POST", "/api/failed/retry", headers, body);
  if (r.status != want) fail_msg("want %d, got %d %s", want, r.status, r.text);
  assert_non_null(str(r.json, "error"));
  http_free(&r);
  snprintf(path, sizeof path, "/api/failed/%ld", row);
  r = get_json(w, path);
  assert_string_equal(str(r.json, "status"), "unresolved");
  assert_int_equal(num(r.json, "operator_retries"), 0);
  http_free(&r);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(*) FROM ctxd.outbox"), 0);
}

#define BEARER "Authorization: Bearer " TOKEN "\r\n"
#define JSON "Content-Type: application/json\r\n"

static void actions_need_the_token_and_the_same_origin(void **state) {
  ctxt_world_t *w = *state;
  char file[256], extra[512];
  ctxt_write_file(file, sizeof file, TOKEN "\n");
  snprintf(extra, sizeof extra, ", \"token_file\": \"%s\"", file);
  start_with_token(w, extra);
  long row = insert_failed(w, 1, "{\"action\":\"ok\"}");
  long other = insert_failed(w, 2, "{\"action\":\"ok\"}");
  char body[64];
  snprintf(body, sizeof body, "{\"ids\":[%ld]}", row);

  refused(w, row, 401, JSON, body);
  refused(w, row, 401, JSON "Authorization: Bearer wrong\r\n", body);
  refused(w, row, 401, JSON "Authorization: Basic " TOKEN "\r\n", body);
  refused(w, row, 403, JSON BEARER "Origin: http://evil.example:8080\r\n", body);
  refused(w, row, 403, JSON BEARER "Origin: null\r\n", body);
  refused(w, row, 403, JSON BEARER "Sec-Fetch-Site: cross-site\r\n", body);
  refused(w, row, 403, JSON BEARER "Sec-Fetch-Site: same-site\r\n", body);
  refused(w, row, 415, "Content-Type: text/plain\r\n" BEARER, body);
  refused(w, row, 415, "Content-Type: application/x-www-form-urlencoded\r\n" BEARER, "ids=1");
  refused(w, row, 415, BEARER, body);
  refused(w, row, 400, JSON BEARER, "{\"ids\":[");
  refused(w, row, 400, JSON BEARER, "{\"ids\":[],\"group\":\"x\"}");
  refused(w, row, 400, JSON BEARER, "{\"ids\":[-1]}");
  refused(w, row, 400, JSON BEARER, "{\"filter\":{\"colour\":\"red\"}}");
  refused(w, row, 400, JSON BEARER "X-Ctxd-Operator: \r\n", body);

  /* with the token, from the page's own origin: retried through the outbox, handled once */
  char origin[256];
  snprintf(origin, sizeof origin,
           JSON BEARER
           "Origin: http://127.0.0.1:%d\r\nSec-Fetch-Site: same-origin\r\nX-Ctxd-Operator: ops\r\n",
           w->admin_port);
  /* the Host header says 127.0.0.1 without the port: compare as the browser would send it */
  int fd = http_open(w->admin_port);
  char req[1024];
  int n = snprintf(req, sizeof req,
                   "POST /api/failed/retry HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n%sContent-Length: %zu\r\n\r\n%s",
                   w->admin_port, origin, strlen(body), body);
  assert_int_equal(write(fd, req, (size_t)n), n);
  http_t r = http_read(fd);
  if (r.status != 200) fail_msg("retry: %d %s", r.status, r.text);
  assert_string_equal(str(r.json, "action"), "retry");
  assert_int_equal(num(r.json, "requested"), 1);
  assert_int_equal(num(r.json, "done"), 1);
  assert_int_equal(json_array_size(at(r.json, "skipped")), 0);
  http_free(&r);
  char id[37], where[128];
  ctxt_make_id(id, 1);
  snprintf(where, sizeof where, "message_id = '%s'", id);
  assert_int_equal(ctxt_wait_effects(w, where, 1), 1);
  /* the retry committed: its failed message is resolved */
  char resolved[128];
  snprintf(resolved, sizeof resolved,
           "SELECT count(*) FROM ctxd.failed_messages WHERE id = %ld AND status = 'resolved'", row);
  assert_int_equal(ctxt_pg_wait_long(w->pg, resolved, 1, CTXT_EFFECT_MS), 1);
  char path[64];
  snprintf(path, sizeof path, "/api/failed/%ld", row);
  r = get_json(w, path);
  /* the log: the operator's retry, then the host's "resolved" */
  json_t *actions = at(r.json, "actions");
  size_t nactions = json_array_size(actions);
  assert_true(nactions >= 2);
  assert_string_equal(str(json_array_get(actions, nactions - 2), "action"), "retry");
  assert_string_equal(str(json_array_get(actions, nactions - 2), "actor"), "ops");
  assert_string_equal(str(json_array_get(actions, nactions - 1), "action"), "resolved");
  assert_string_equal(str(r.json, "status"), "resolved");
  assert_int_equal(num(r.json, "operator_retries"), 1);
  http_free(&r);
  /* the same retry again: refused, resolved already */
  r = http(w, "POST", "/api/failed/retry", JSON BEARER, body);
  assert_int_equal(r.status, 200);
  assert_int_equal(num(r.json, "done"), 0);
  assert_string_equal(str(json_array_get(at(r.json, "skipped"), 0), "reason"), "already resolved");
  http_free(&r);
  /* both retries' rows sent and confirmed, whatever they carried handled */
  assert_int_equal(ctxt_pg_wait_long(w->pg, "SELECT count(*) FROM ctxd.outbox", 0, CTXT_EFFECT_MS), 0);
  ctxt_wait_settled(w, w->endpoint, ctxt_metric(w, w->endpoint, "ctxd_messages_received_total"));
  assert_int_equal(ctxt_effects(w, where), 1);

  /* archive by group hides the other row from the open list; unarchive brings it back */
  snprintf(path, sizeof path, "/api/failed/%ld", other);
  r = get_json(w, path);
  char group_body[96];
  snprintf(group_body, sizeof group_body, "{\"filter\":{\"group\":\"%s\",\"status\":\"unresolved\"}}",
           str(r.json, "group"));
  http_free(&r);
  r = http(w, "POST", "/api/failed/archive", JSON BEARER, group_body);
  assert_int_equal(r.status, 200);
  assert_int_equal(num(r.json, "done"), 1);
  http_free(&r);
  r = get_json(w, "/api/failed?status=open");
  for (size_t i = 0; i < json_array_size(at(r.json, "messages")); i++)
    assert_int_not_equal(num(json_array_get(at(r.json, "messages"), i), "id"), other);
  http_free(&r);
  snprintf(body, sizeof body, "{\"ids\":[%ld]}", other);
  r = http(w, "POST", "/api/failed/unarchive", JSON BEARER, body);
  assert_int_equal(num(r.json, "done"), 1);
  http_free(&r);
  /* a group named without a status: unarchive takes the archived rows, as the CLI does */
  r = http(w, "POST", "/api/failed/archive", JSON BEARER, group_body);
  assert_int_equal(num(r.json, "done"), 1);
  http_free(&r);
  snprintf(path, sizeof path, "/api/failed/%ld", other);
  r = get_json(w, path);
  snprintf(group_body, sizeof group_body, "{\"group\":\"%s\"}", str(r.json, "group"));
  http_free(&r);
  r = http(w, "POST", "/api/failed/unarchive", JSON BEARER, group_body);
  assert_int_equal(r.status, 200);
  assert_int_equal(num(r.json, "done"), 1);
  http_free(&r);
  ctxt_host_stop(w, SIGTERM);
  assert_null(strstr(w->host.out, TOKEN));
}

static void read_only_without_a_token(void **state) {
  ctxt_world_t *w = *state;
  start_with_token(w, "");
  long row = insert_failed(w, 1, "{\"action\":\"ok\"}");
  http_t r = get_json(w, "/api/host");
  assert_true(json_is_false(at(r.json, "actions_enabled")));
  http_free(&r);
  char body[64];
  snprintf(body, sizeof body, "{\"ids\":[%ld]}", row);
  refused(w, row, 403, JSON "Authorization: Bearer anything\r\n", body);
  r = http(w, "POST", "/api/failed/archive", JSON, body);
  assert_int_equal(r.status, 403);
  assert_string_equal(str(r.json, "error"), "actions are disabled: set admin.token");
  http_free(&r);
  ctxt_host_stop(w, SIGTERM);
}

/* 1 when fd has an answer within ms. */
static int answered_within(int fd, int ms) {
  struct pollfd p = {fd, POLLIN, 0};
  return poll(&p, 1, ms) == 1;
}

/* A query waits on a lock the test holds: its request is deferred, the loop goes on
 * (/healthz answers at once), and at admin.max_connections 4 the deferred ones hold
 * their slots until they are answered, while messages flow. */
static void deferred_queries_at_a_small_connection_bound(void **state) {
  ctxt_world_t *w = *state;
  /* a long deadline for the deferred answers: the lock is held while messages flow */
  start_with_token(w, ", \"max_connections\": 4, \"idle_timeout_ms\": 30000, \"token\": \"" TOKEN "\"");
  http_t r = get_json(w, "/api/outbox"); /* the console's connection exists */
  http_free(&r);
  PGconn *locker = ctxt_pg_connect(w->db);
  PQclear(PQexec(locker, "BEGIN"));
  PQclear(PQexec(locker, "LOCK TABLE ctxd.outbox_set_aside IN ACCESS EXCLUSIVE MODE"));
  int slow[3];
  for (int i = 0; i < 3; i++) {
    slow[i] = http_open(w->admin_port);
    http_send(slow[i], "GET", "/api/outbox", NULL, NULL);
  }
  assert_int_equal(ctxt_pg_wait_long(w->pg, "SELECT count(*) FROM pg_locks WHERE NOT granted", 1, 10000), 1);
  /* messages still flow and the loop answers at once */
  char id[37];
  for (int i = 0; i < 20; i++) {
    ctxt_make_id(id, 500 + i);
    ctxt_publish(w, id, "{\"action\":\"ok\"}");
  }
  int64_t t0 = ctxt_now_ms();
  r = http(w, "GET", "/healthz", NULL, NULL);
  int64_t took = ctxt_now_ms() - t0;
  print_message("/healthz answered in %lld ms while 3 console queries wait on a lock\n", (long long)took);
  assert_int_equal(r.status, 200);
  assert_true(took < 1000);
  http_free(&r);
  assert_int_equal(ctxt_wait_effects(w, NULL, 20), 20);
  /* a fourth deferred request fills the bound: a fifth connection waits */
  int fourth = http_open(w->admin_port);
  http_send(fourth, "GET", "/api/failed/summary", NULL, NULL);
  long open = -1;
  int64_t deadline = ctxt_now_ms() + 10000;
  while (open != 4 && ctxt_now_ms() < deadline) {
    int fd = http_open(w->admin_port);
    http_send(fd, "GET", "/metrics", NULL, NULL);
    if (!answered_within(fd, 300)) {
      /* nothing answers it: every slot is in use; it is served once one frees */
      open = 4;
      PQclear(PQexec(locker, "COMMIT"));
      r = http_read(fd);
      assert_int_equal(r.status, 200);
      http_free(&r);
      break;
    }
    r = http_read(fd);
    http_free(&r);
  }
  assert_int_equal(open, 4);
  for (int i = 0; i < 3; i++) {
    r = http_read(slow[i]);
    assert_int_equal(r.status, 200);
    assert_true(json_is_integer(at(r.json, "set_aside")));
    http_free(&r);
  }
  r = http_read(fourth);
  assert_int_equal(r.status, 200);
  http_free(&r);
  PQfinish(locker);
  ctxt_host_stop(w, SIGTERM);
}

/* The world's endpoint in /api/endpoints now (new, free with json_decref). */
static json_t *endpoint_now(ctxt_world_t *w) {
  http_t r = get_json(w, "/api/endpoints");
  json_t *e = json_deep_copy(endpoint_named(r.json, w->endpoint));
  http_free(&r);
  return e;
}

/* Waits until the world's endpoint's member key is null (want_null) or not; 1 when it was. */
static int wait_figure(ctxt_world_t *w, const char *key, int want_null, int timeout_ms) {
  int64_t deadline = ctxt_now_ms() + timeout_ms;
  for (;;) {
    json_t *e = endpoint_now(w);
    int is_null = json_is_null(at(e, key));
    json_decref(e);
    if (is_null == want_null) return 1;
    if (ctxt_now_ms() >= deadline) return 0;
    usleep(50000); /* polling a URL: the deadline bounds it */
  }
}

/* A queue the console asks about that nothing consumes (a draining endpoint's) is deleted:
 * the broker refuses that passive declare and closes the channel it came on. Only the
 * figures go (null), the connection stays: no reconnect, still ready. */
static void a_missing_queue_costs_only_its_figures(void **state) {
  ctxt_world_t *w = *state;
  char dir[] = "/tmp/ctxd-plugins-XXXXXX";
  assert_non_null(mkdtemp(dir));
  snprintf(w->plugin_dir, sizeof w->plugin_dir, "%s", dir);
  ctxt_plugin_install(dir, "ctxd_testkit.so");
  start_with_token(w, "");
  assert_true(wait_figure(w, "queue_depth", 0, 10000));
  /* a handler waits on a lock the test holds: the replaced plugin's endpoint stays draining */
  PGconn *locker = ctxt_pg_connect(w->db);
  PQclear(PQexec(locker, "BEGIN"));
  PQclear(PQexec(locker, "LOCK TABLE testkit.effects IN ACCESS EXCLUSIVE MODE"));
  char id[37];
  ctxt_make_id(id, 1);
  ctxt_publish(w, id, "{\"action\":\"ok\"}");
  assert_int_equal(ctxt_pg_wait_long(w->pg, "SELECT count(*) FROM pg_locks WHERE NOT granted", 1, 10000), 1);
  ctxt_plugin_install(dir, "ctxd_testkit_v2.so");
  ctxt_proc_signal(&w->host, SIGHUP);
  int64_t deadline = ctxt_now_ms() + CTXT_EFFECT_MS;
  int draining = 0;
  while (!draining && ctxt_now_ms() < deadline) {
    json_t *e = endpoint_now(w);
    draining = strcmp(str(e, "state"), "draining") == 0;
    json_decref(e);
  }
  assert_true(draining);
  amqp_queue_delete(w->amqp, 1, amqp_cstring_bytes(w->endpoint), 0, 0);
  assert_int_equal(amqp_get_rpc_reply(w->amqp).reply_type, AMQP_RESPONSE_NORMAL);

  assert_true(wait_figure(w, "queue_depth", 1, 10000));
  json_t *e = endpoint_now(w);
  assert_true(json_is_null(at(e, "consumers")));
  assert_string_equal(str(e, "state"), "draining"); /* not "disconnected" */
  json_decref(e);
  ctxt_proc_wait_output(&w->host, "\001", 100); /* reads what it logged so far */
  assert_null(strstr(w->host.out, "reconnecting"));
  assert_int_equal(ctxt_metric(w, NULL, "ctxd_broker_reconnects_total"), 0);
  assert_int_equal(ctxt_wait_status(w, "/readyz", 200, 1000), 200);

  /* the swap then consumes from a queue that is gone: that reconnect declares it again */
  PQclear(PQexec(locker, "COMMIT"));
  PQfinish(locker);
  assert_true(ctxt_proc_wait_output(&w->host, "replaced plugin 'testkit'", CTXT_EFFECT_MS));
  assert_int_equal(ctxt_wait_effects(w, NULL, 1), 1);
  ctxt_host_stop(w, SIGTERM);
  char cmd[256];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  assert_int_equal(system(cmd), 0);
}

/* 1 when every endpoint of two /api/endpoints answers shows the same sample, state and
 * queue figures: what the answer is rendered from besides the counts. */
static int same_sample(json_t *a, json_t *b) {
  json_t *la = at(a, "endpoints"), *lb = at(b, "endpoints");
  if (json_array_size(la) != json_array_size(lb)) return 0;
  const char *keys[] = {"series", "state", "consumers", "queue_depth"};
  for (size_t i = 0; i < json_array_size(la); i++)
    for (size_t j = 0; j < sizeof keys / sizeof keys[0]; j++)
      if (!json_equal(at(json_array_get(la, i), keys[j]), at(json_array_get(lb, i), keys[j]))) return 0;
  return 1;
}

/* /api/endpoints is rendered once a sample, however many tabs poll it: two answers of one
 * sample are the same text although messages were handled between them. */
static void endpoints_rendered_once_a_sample(void **state) {
  ctxt_world_t *w = *state;
  start_with_token(w, "");
  assert_true(wait_figure(w, "queue_depth", 0, 10000));
  char id[37];
  int sent = 0, pairs = 0;
  for (int attempt = 0; attempt < 20 && pairs == 0; attempt++) {
    http_t a = get_json(w, "/api/endpoints");
    for (int i = 0; i < 5; i++, sent++) {
      ctxt_make_id(id, sent + 1);
      ctxt_publish(w, id, "{\"action\":\"ok\"}");
    }
    ctxt_wait_settled(w, w->endpoint, sent);
    http_t b = get_json(w, "/api/endpoints");
    if (same_sample(a.json, b.json)) { /* else a sample came between them: again */
      assert_string_equal(a.body, b.body);
      pairs++;
    }
    http_free(&a);
    http_free(&b);
  }
  assert_int_equal(pairs, 1);
  /* the next sample shows what was handled */
  int64_t deadline = ctxt_now_ms() + 10000;
  long handled = -1;
  while (handled != sent && ctxt_now_ms() < deadline) {
    json_t *e = endpoint_now(w);
    handled = num(e, "handled");
    json_decref(e);
  }
  assert_int_equal(handled, sent);
  ctxt_host_stop(w, SIGTERM);
}

/* The console's connection is made again after the database restarted (the query that
 * finds it broken runs once more on a new one, or a later one does). */
static void console_reconnects_after_the_database_restarts(void **state) {
  ctxt_world_t *w = *state;
  start_with_token(w, "");
  http_t r = get_json(w, "/api/failed/summary");
  http_free(&r);
  PQfinish(w->pg);
  w->pg = NULL;
  ctxt_restart("db");
  int status = 0;
  int64_t deadline = ctxt_now_ms() + 60000;
  while (status != 200 && ctxt_now_ms() < deadline) {
    r = http(w, "GET", "/api/failed/summary", NULL, NULL);
    status = r.status;
    assert_true(status == 200 || status == 503); /* 503: the database is not back yet */
    assert_non_null(r.json);
    http_free(&r);
  }
  assert_int_equal(status, 200);
  w->pg = ctxt_pg_connect(w->db);
  assert_int_equal(ctxt_wait_status(w, "/readyz", 200, 60000), 200);
  ctxt_host_stop(w, SIGTERM);
}

/* GET path with Host: host; the status. */
static int get_as(ctxt_world_t *w, const char *path, const char *host) {
  http_t r = http_raw(w, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", path, host);
  int status = r.status;
  if (status == 421) {
    assert_non_null(r.json);
    assert_non_null(strstr(str(r.json, "error"), "admin.allowed_hosts"));
  }
  http_free(&r);
  return status;
}

/* The console answers to an IP address, localhost or admin.allowed_hosts only: a page of
 * another name pointed here by its DNS (rebinding) reads nothing, while /metrics and the
 * probes answer any Host. An invalid UTF-8 path still gets a JSON 404. */
static void host_header_names_this_console(void **state) {
  ctxt_world_t *w = *state;
  start_with_token(w, ", \"allowed_hosts\": [\"console.example\", \"proxy.example:8443\"]");
  char evil[64];
  snprintf(evil, sizeof evil, "evil.example:%d", w->admin_port);
  assert_int_equal(get_as(w, "/api/failed", evil), 421);
  assert_int_equal(get_as(w, "/api/host", "127.0.0.1.evil.example"), 421);
  assert_int_equal(get_as(w, "/", evil), 421);
  assert_int_equal(get_as(w, "/console.js", "proxy.example:8444"), 421);
  assert_int_equal(get_as(w, "/api/host", "localhost:1"), 200);
  assert_int_equal(get_as(w, "/api/host", "[::1]:9464"), 200);
  assert_int_equal(get_as(w, "/api/host", "10.1.2.3"), 200);
  assert_int_equal(get_as(w, "/api/host", "CONSOLE.example:443"), 200);
  assert_int_equal(get_as(w, "/api/host", "proxy.example:8443"), 200);
  assert_int_equal(get_as(w, "/metrics", evil), 200);
  assert_int_equal(get_as(w, "/readyz", evil), 200);
  /* the path is not UTF-8: still a JSON answer */
  http_t r = http_raw(w, "GET /api/x\xff HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  if (r.status != 404 || r.json == NULL) fail_msg("GET /api/x\\xff: %s", r.text);
  assert_string_equal(str(r.json, "error"), "not found: /api/x?");
  http_free(&r);
  ctxt_host_stop(w, SIGTERM);
}

/* An action on a filter must name its messages (or say "all"); one takes at most 1000 and
 * says how many remain, and the same request again takes them. The operator's name must be
 * UTF-8. */
static void filter_actions_are_bounded(void **state) {
  ctxt_world_t *w = *state;
  start_with_token(w, ", \"token\": \"" TOKEN "\"");
  char sql[1024];
  snprintf(
      sql, sizeof sql,
      "WITH n AS (INSERT INTO ctxd.failed_messages (endpoint, message_id, message_type, body, "
      "first_failed_at, last_failed_at) SELECT '%s', md5(i::text)::uuid, 'Ns:T', '\\x7b7d', now(), now() "
      "FROM generate_series(1, 1003) i RETURNING 1) SELECT count(*) FROM n",
      w->endpoint);
  assert_int_equal(ctxt_pg_long(w->pg, sql), 1003);
  static const char *const vague[] = {"{\"filter\":{}}", "{\"filter\":{\"status\":\"open\",\"limit\":5}}",
                                      "{\"filter\":{\"all\":false,\"endpoint\":\"x\"}}"};
  for (size_t i = 0; i < sizeof vague / sizeof vague[0]; i++) {
    http_t r = http(w, "POST", "/api/failed/archive", JSON BEARER, vague[i]);
    if (r.status != 400) fail_msg("%s: %d %s", vague[i], r.status, r.text);
    http_free(&r);
  }
  http_t r =
      http(w, "POST", "/api/failed/archive", JSON BEARER "X-Ctxd-Operator: op\xff\r\n", "{\"ids\":[1]}");
  assert_int_equal(r.status, 400);
  assert_non_null(strstr(str(r.json, "error"), "UTF-8"));
  http_free(&r);
  assert_int_equal(ctxt_pg_long(w->pg, "SELECT count(*) FROM ctxd.failed_messages WHERE status = 'archived'"),
                   0);
  char body[256];
  snprintf(body, sizeof body, "{\"filter\":{\"endpoint\":\"%s\"}}", w->endpoint);
  long remaining[] = {3, 0}, done[] = {1000, 3};
  for (int round = 0; round < 2; round++) {
    r = http(w, "POST", "/api/failed/archive", JSON BEARER, body);
    if (r.status != 200) fail_msg("archive: %d %s", r.status, r.text);
    assert_int_equal(num(r.json, "done"), done[round]);
    assert_int_equal(num(r.json, "remaining"), remaining[round]);
    http_free(&r);
  }
  r = http(w, "POST", "/api/failed/unarchive", JSON BEARER, "{\"filter\":{\"all\":true,\"status\":\"all\"}}");
  if (r.status != 200) fail_msg("unarchive: %d %s", r.status, r.text);
  assert_int_equal(num(r.json, "done"), 1000);
  assert_int_equal(num(r.json, "remaining"), 3);
  http_free(&r);
  ctxt_host_stop(w, SIGTERM);
}

/* One console query runs at a time, eight wait, the next is refused at once; a stop
 * answers the waiting ones and cancels the running one instead of waiting for each. */
static void stop_cancels_the_console_queries(void **state) {
  ctxt_world_t *w = *state;
  start_with_token(w, ", \"idle_timeout_ms\": 30000");
  http_t r = get_json(w, "/api/outbox");
  http_free(&r);
  PGconn *locker = ctxt_pg_connect(w->db);
  PQclear(PQexec(locker, "BEGIN"));
  PQclear(PQexec(locker, "LOCK TABLE ctxd.outbox_set_aside IN ACCESS EXCLUSIVE MODE"));
  int fds[9];
  fds[0] = http_open(w->admin_port);
  http_send(fds[0], "GET", "/api/outbox", NULL, NULL);
  assert_int_equal(ctxt_pg_wait_long(w->pg, "SELECT count(*) FROM pg_locks WHERE NOT granted", 1, 10000), 1);
  for (int i = 1; i < 9; i++) {
    fds[i] = http_open(w->admin_port);
    http_send(fds[i], "GET", "/api/failed/summary", NULL, NULL);
  }
  /* the tenth: the host answers it at once (the others are answered in order, so once
   * this one is, the eight before it were queued) */
  int64_t t0 = ctxt_now_ms();
  r = http(w, "GET", "/api/failed/summary", NULL, NULL);
  assert_int_equal(r.status, 503);
  assert_non_null(strstr(str(r.json, "error"), "wait already"));
  http_free(&r);
  assert_true(ctxt_now_ms() - t0 < 2000);
  t0 = ctxt_now_ms();
  ctxt_host_stop(w, SIGTERM);
  int64_t took = ctxt_now_ms() - t0;
  print_message("stopped in %lld ms with one console query blocked and eight waiting\n", (long long)took);
  assert_true(took < 5000); /* not the blocked query's 10 s statement timeout, nor eight more */
  for (int i = 1; i < 9; i++) {
    r = http_read(fds[i]);
    assert_int_equal(r.status, 503);
    assert_string_equal(str(r.json, "error"), "the host is stopping");
    http_free(&r);
  }
  r = http_read(fds[0]); /* cancelled: a 503 if it came before the admin endpoint closed */
  assert_true(r.status == 503 || r.status == -1);
  http_free(&r);
  PQclear(PQexec(locker, "COMMIT"));
  PQfinish(locker);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(routes_answer_json_and_rates_follow_the_load, ctxt_world_setup,
                                      ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(actions_need_the_token_and_the_same_origin, ctxt_world_setup,
                                      ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(read_only_without_a_token, ctxt_world_setup, ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(deferred_queries_at_a_small_connection_bound, ctxt_world_setup,
                                      ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(a_missing_queue_costs_only_its_figures, ctxt_world_setup,
                                      ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(endpoints_rendered_once_a_sample, ctxt_world_setup,
                                      ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(console_reconnects_after_the_database_restarts, ctxt_world_setup,
                                      ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(host_header_names_this_console, ctxt_world_setup, ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(filter_actions_are_bounded, ctxt_world_setup, ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(stop_cancels_the_console_queries, ctxt_world_setup,
                                      ctxt_world_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
