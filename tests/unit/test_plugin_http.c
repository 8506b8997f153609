/* The plugins' shared call rules (plugins/lib: which answers are retried, text excerpts) and
 * their HTTP client (plugins/lib/http.c) against a loopback
 * socket this test serves from a thread, one scripted answer per connection: what it sends
 * (request line, Idempotency-Key, body), each response framing (length, chunked, to the
 * close), an error status, and each failure with its code: time-out within the deadline,
 * a connection dropped before the response, refused, not HTTP, too large, a bad URL. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <ctxd/errno.h>

#include "call.h"
#include "http.h"
#include "text.h"

typedef struct {
  int listener;
  int port;
  const char *answer; /* sent after the request; NULL: hold until the client leaves */
  int drop;           /* close at once after reading the request, answering nothing */
  char request[8192]; /* what the client sent */
  size_t request_len;
  pthread_t thread;
} server_t;

/* Reads a whole request: the head, then Content-Length bytes. */
static void read_request(server_t *s, int fd) {
  size_t need = 0;
  for (;;) {
    ssize_t n = recv(fd, s->request + s->request_len, sizeof s->request - 1 - s->request_len, 0);
    if (n <= 0) return;
    s->request_len += (size_t)n;
    s->request[s->request_len] = '\0';
    char *end = strstr(s->request, "\r\n\r\n");
    if (end == NULL) continue;
    if (need == 0) {
      const char *cl = strcasestr(s->request, "Content-Length:");
      need = (size_t)(end + 4 - s->request) + (cl != NULL ? strtoul(cl + 15, NULL, 10) : 0);
    }
    if (s->request_len >= need) return;
  }
}

static void *serve(void *arg) {
  server_t *s = arg;
  int fd = accept(s->listener, NULL, NULL);
  if (fd < 0) return NULL;
  read_request(s, fd);
  if (s->answer != NULL && !s->drop) {
    send(fd, s->answer, strlen(s->answer), MSG_NOSIGNAL);
  } else if (s->answer == NULL && !s->drop) {
    char b[64];
    while (recv(fd, b, sizeof b, 0) > 0) {
    } /* hold: until the client gives up */
  }
  close(fd);
  return NULL;
}

static void server_start(server_t *s, const char *answer, int drop) {
  memset(s, 0, sizeof *s);
  s->answer = answer;
  s->drop = drop;
  s->listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  assert_true(s->listener >= 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(bind(s->listener, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(listen(s->listener, 4), 0);
  socklen_t len = sizeof a;
  assert_int_equal(getsockname(s->listener, (struct sockaddr *)&a, &len), 0);
  s->port = ntohs(a.sin_port);
  assert_int_equal(pthread_create(&s->thread, NULL, serve, s), 0);
}

static void server_join(server_t *s) {
  pthread_join(s->thread, NULL);
  close(s->listener);
}

static int post_port(int port, plugin_http_response_t *res, int timeout_ms) {
  char url[64], err[160];
  snprintf(url, sizeof url, "http://127.0.0.1:%d/sms?x=1", port);
  plugin_http_target_t t;
  assert_int_equal(plugin_http_target_init(&t, url, err, sizeof err), 0);
  static const char *const headers[] = {"Idempotency-Key", "sms:order:1", NULL};
  int rc = plugin_http_post(&t, headers, "{\"to\":\"+1\"}", 11, timeout_ms, res);
  plugin_http_target_free(&t);
  return rc;
}

static int post(server_t *s, plugin_http_response_t *res, int timeout_ms) {
  return post_port(s->port, res, timeout_ms);
}

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Serves one connection with (answer, drop), POSTs to it and returns the client's code; the
 * request the server read stays in *s. */
static int exchange(server_t *s, const char *answer, int drop, int timeout_ms, plugin_http_response_t *res) {
  server_start(s, answer, drop);
  int rc = post(s, res, timeout_ms);
  server_join(s);
  return rc;
}

/* A response the client must read whole: its status and body. */
static void expect_response(const char *answer, int status, const char *body) {
  server_t s;
  plugin_http_response_t res;
  assert_int_equal(exchange(&s, answer, 0, 2000, &res), 0);
  assert_int_equal(res.status, status);
  assert_string_equal(res.body, body);
  assert_int_equal(res.body_len, strlen(body));
  assert_string_equal(res.error, "");
  plugin_http_response_free(&res);
}

/* A failure with its code and a part of its reason. */
static void expect_failure(const char *answer, int drop, int timeout_ms, int code, const char *why) {
  server_t s;
  plugin_http_response_t res;
  assert_int_equal(exchange(&s, answer, drop, timeout_ms, &res), code);
  assert_int_equal(res.status, 0);
  if (why != NULL) assert_non_null(strstr(res.error, why));
  plugin_http_response_free(&res);
}

static void test_post_with_length(void **state) {
  (void)state;
  expect_response("HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\n{\"id\":\"p-1\"}\n", 200,
                  "{\"id\":\"p-1\"}\n");
  /* what went out */
  server_t s;
  plugin_http_response_t res;
  assert_int_equal(exchange(&s, "HTTP/1.1 204 No Content\r\n\r\n", 0, 2000, &res), 0);
  plugin_http_response_free(&res);
  assert_non_null(strstr(s.request, "POST /sms?x=1 HTTP/1.1\r\n"));
  assert_non_null(strstr(s.request, "\r\nIdempotency-Key: sms:order:1\r\n"));
  assert_non_null(strstr(s.request, "\r\nContent-Type: application/json\r\n"));
  assert_non_null(strstr(s.request, "\r\nContent-Length: 11\r\n"));
  assert_non_null(strstr(s.request, "\r\n\r\n{\"to\":\"+1\"}"));
}

static void test_chunked_and_to_the_close(void **state) {
  (void)state;
  expect_response(
      "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n", 201,
      "abcde");
  expect_response("HTTP/1.0 200 OK\r\n\r\nuntil the end", 200, "until the end");
}

static void test_error_status_is_a_response(void **state) {
  (void)state;
  expect_response("HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n", 500, "");
}

static void test_timeout_within_deadline(void **state) {
  (void)state;
  long long t0 = now_ms();
  expect_failure(NULL, 0, 300, CTXD_ETIMEDOUT, "300 ms");
  long long took = now_ms() - t0;
  assert_true(took >= 300);
  assert_true(took < 3000); /* the deadline held, with room for a loaded machine and ASan */
}

static void test_dropped_connection(void **state) {
  (void)state;
  expect_failure(NULL, 1, 2000, CTXD_ECLOSED, "closed before the response ended");
  /* cut in the middle of the body */
  expect_failure("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort", 0, 2000, CTXD_ECLOSED, NULL);
}

static void test_refused_and_not_http(void **state) {
  (void)state;
  server_t s;
  plugin_http_response_t res;
  assert_int_equal(exchange(&s, "SMTP ready\r\n\r\n", 0, 2000, &res), CTXD_EIO);
  assert_non_null(strstr(res.error, "not an HTTP response"));
  plugin_http_response_free(&res);
  /* a port held bound but not listening: refused, and no other test can take it meanwhile */
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
  assert_int_equal(post_port(ntohs(a.sin_port), &res, 2000), CTXD_EIO);
  assert_non_null(strstr(res.error, "connecting to 127.0.0.1"));
  plugin_http_response_free(&res);
  close(fd);
}

/* Interim responses (100 Continue, 103 Early Hints) come before the final one: the final one
 * is the answer, in one read or spread over several. */
static void test_interim_responses_skipped(void **state) {
  (void)state;
  expect_response(
      "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n{\"id\":\"p-2\"}", 200,
      "{\"id\":\"p-2\"}");
  expect_response("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n"
                  "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
                  201, "ok");
  /* only an interim response, then the close: no answer */
  expect_failure("HTTP/1.1 100 Continue\r\n\r\n", 0, 2000, CTXD_ECLOSED, NULL);
}

static void test_too_large(void **state) {
  (void)state;
  size_t n = PLUGIN_HTTP_MAX_BODY + 1;
  char *answer = malloc(n + 128);
  assert_non_null(answer);
  int head = snprintf(answer, 128, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", n);
  memset(answer + head, 'x', n);
  answer[head + (int)n] = '\0';
  expect_failure(answer, 0, 2000, CTXD_EIO, "larger than");
  free(answer);
}

static void expect_bad_url(const char *url, const char *why) {
  plugin_http_target_t t;
  char err[160];
  assert_int_equal(plugin_http_target_init(&t, url, err, sizeof err), CTXD_EINVAL);
  assert_non_null(strstr(err, why));
  plugin_http_target_free(&t);
}

static void test_bad_arguments(void **state) {
  (void)state;
  expect_bad_url("https://127.0.0.1/sms", "not an http:// URL");
  expect_bad_url("not a url", "not an http:// URL");
  expect_bad_url(NULL, "not an http:// URL");
  expect_bad_url("http://no-such-host.invalid/sms", "resolving no-such-host.invalid");
  plugin_http_response_t res;
  assert_int_equal(plugin_http_post(NULL, NULL, "", 0, 100, &res), CTXD_EINVAL);
  plugin_http_response_free(&res);
  plugin_http_target_t t;
  char err[160];
  assert_int_equal(plugin_http_target_init(&t, "http://127.0.0.1:1/", err, sizeof err), 0);
  static const char *const evil[] = {"X", "a\r\nInjected: 1", NULL};
  assert_int_equal(plugin_http_post(&t, evil, "", 0, 100, &res), CTXD_EINVAL);
  plugin_http_response_free(&res);
  plugin_http_target_free(&t);
}

/* An IPv6 literal: connected, and named in brackets in the Host header. */
static void test_ipv6_host_header(void **state) {
  (void)state;
  int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
  socklen_t len = sizeof a;
  if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0) {
    if (fd >= 0) close(fd);
    skip(); /* no IPv6 loopback here */
  }
  assert_int_equal(listen(fd, 1), 0);
  assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
  char url[64], err[160];
  snprintf(url, sizeof url, "http://[::1]:%d/sms", ntohs(a.sin6_port));
  plugin_http_target_t t;
  assert_int_equal(plugin_http_target_init(&t, url, err, sizeof err), 0);
  assert_string_equal(t.host, "::1");
  char want[32];
  snprintf(want, sizeof want, "[::1]:%d", ntohs(a.sin6_port));
  assert_string_equal(t.authority, want);
  plugin_http_response_t res;
  /* nobody accepts: the request sits in the backlog and the deadline ends it */
  assert_int_equal(plugin_http_post(&t, NULL, "", 0, 100, &res), CTXD_ETIMEDOUT);
  plugin_http_response_free(&res);
  plugin_http_target_free(&t);
  close(fd);
}

/* Only a clear refusal fails for good; an unclear answer or none is retried. */
static void test_call_verdict(void **state) {
  (void)state;
  assert_int_equal(plugin_http_verdict(0, 200), CTXD_CALL_DONE);
  assert_int_equal(plugin_http_verdict(0, 202), CTXD_CALL_DONE);
  static const int refused[] = {400, 401, 403, 404, 410, 413, 422};
  for (size_t i = 0; i < sizeof refused / sizeof *refused; i++)
    assert_int_equal(plugin_http_verdict(0, refused[i]), CTXD_CALL_FAILED);
  static const int passing[] = {101, 301, 408, 409, 425, 429, 500, 502, 503, 504};
  for (size_t i = 0; i < sizeof passing / sizeof *passing; i++)
    assert_int_equal(plugin_http_verdict(0, passing[i]), CTXD_CALL_RETRY);
  static const int unclear[] = {CTXD_ETIMEDOUT, CTXD_ECLOSED, CTXD_EIO, CTXD_ENOMEM};
  for (size_t i = 0; i < sizeof unclear / sizeof *unclear; i++)
    assert_int_equal(plugin_http_verdict(unclear[i], 0), CTXD_CALL_RETRY);
  /* a request this client can never make (the URL is checked at the start) */
  assert_int_equal(plugin_http_verdict(CTXD_EINVAL, 0), CTXD_CALL_FAILED);
}

static void test_excerpt(void **state) {
  (void)state;
  char out[8];
  plugin_text_excerpt("abc", out, sizeof out);
  assert_string_equal(out, "abc");
  /* "aaaaa" then a 3-byte character that would end past 7 bytes: cut before it */
  plugin_text_excerpt("aaaaa\xe4\xb8\xad", out, sizeof out);
  assert_string_equal(out, "aaaaa");
  plugin_text_excerpt("aaaa\xe4\xb8\xadz", out, sizeof out);
  assert_string_equal(out, "aaaa\xe4\xb8\xad");
  /* bytes that are not UTF-8 become '?' */
  plugin_text_excerpt("a\xff\xe4\xb8"
                      "b",
                      out, sizeof out);
  assert_string_equal(out, "a???b");
  plugin_text_excerpt(NULL, out, sizeof out);
  assert_string_equal(out, "");
}

/* plugin_http_call with a host of the test's own: the call's fields, and the outcome kept. */
static char call_outcome_text[2048];

static const char *fake_call_field(const ctxd_call_t *call, ctxd_call_field_t field) {
  (void)call;
  return field == CTXD_CALL_KEY ? "sms:order:1" : field == CTXD_CALL_PAYLOAD ? "{\"to\":\"+1\"}" : "1";
}

static int fake_call_outcome(const ctxd_call_t *call, const char *outcome_json) {
  (void)call;
  snprintf(call_outcome_text, sizeof call_outcome_text, "%s", outcome_json);
  return 0;
}

static void fake_log(ctxd_plugin_t *plugin, const ctxd_msg_t *msg, ctxd_log_level_t level, const char *fmt,
                     ...) {
  (void)plugin, (void)msg, (void)level, (void)fmt;
}

static int any_id(const char *id) { return strlen(id) <= 512; }

/* An id as long as a peer may name (notification's providers: up to 512 bytes) comes back
 * whole in the outcome. */
static void test_call_long_id(void **state) {
  (void)state;
  char id[301], answer[512], url[64], err[160], expected[400];
  memset(id, 'p', 300);
  id[300] = '\0';
  snprintf(answer, sizeof answer, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n{\"id\":\"%s\"}",
           strlen(id) + 9, id);
  server_t s;
  server_start(&s, answer, 0);
  snprintf(url, sizeof url, "http://127.0.0.1:%d/sms", s.port);
  plugin_http_target_t t;
  assert_int_equal(plugin_http_target_init(&t, url, err, sizeof err), 0);
  ctxd_api_t api;
  memset(&api, 0, sizeof api);
  api.call_field = fake_call_field;
  api.call_outcome = fake_call_outcome;
  api.log = fake_log;
  static const char *const names[] = {"id", NULL};
  plugin_http_answers_t a = {
      .peer = "the provider", .outcome_id = "providerId", .id_names = names, .id_ok = any_id};
  call_outcome_text[0] = '\0';
  assert_int_equal(plugin_http_call(&api, NULL, (const ctxd_call_t *)&a, &t, 2000, &a), CTXD_CALL_DONE);
  server_join(&s);
  plugin_http_target_free(&t);
  snprintf(expected, sizeof expected, "{\"httpStatus\":200,\"providerId\":\"%s\"}", id);
  assert_string_equal(call_outcome_text, expected);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_call_verdict),
      cmocka_unit_test(test_excerpt),
      cmocka_unit_test(test_call_long_id),
      cmocka_unit_test(test_post_with_length),
      cmocka_unit_test(test_chunked_and_to_the_close),
      cmocka_unit_test(test_error_status_is_a_response),
      cmocka_unit_test(test_timeout_within_deadline),
      cmocka_unit_test(test_dropped_connection),
      cmocka_unit_test(test_refused_and_not_http),
      cmocka_unit_test(test_too_large),
      cmocka_unit_test(test_bad_arguments),
      cmocka_unit_test(test_interim_responses_skipped),
      cmocka_unit_test(test_ipv6_host_header),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
