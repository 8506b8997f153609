/* Unit tests for runtime/admin.c: the admin HTTP server on 127.0.0.1:0. The test thread
 * drives the loop itself (uv_run NOWAIT) while its client sockets do non-blocking I/O;
 * every wait polls the client socket and the loop's backend fd until a deadline. */
#include "testsupport.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <uv.h>

#include <ctxd/errno.h>

#include "admin.h"

#define DEADLINE_MS 5000

typedef struct {
  uv_loop_t loop;
  ctxd__admin_t *admin;
  int calls;
  char method[16], path[256];
  int status;        /* what the handler returns */
  const char *body;  /* what it writes */
  size_t big;        /* or this many bytes of 'x' */
  const char *ctype; /* and the content type it sets, when not NULL */
  int defer;         /* it defers its answer instead, keeping the handle in pending */
  uint64_t defer_ms; /* with this deadline (0: the idle timeout) */
  const char *late;  /* and this reason past it */
  int reply_now;     /* and answers at once, before it returns */
  ctxd__admin_pending_t *pending[8];
  int npending;
  char query[256], body_in[256], origin[64], auth[64];
} fx_t;

static int handler(void *data, ctxd__admin_req_t *req, ctxd__admin_resp_t *resp) {
  fx_t *f = data;
  f->calls++;
  snprintf(f->method, sizeof f->method, "%s", ctxd__admin_method(req));
  snprintf(f->path, sizeof f->path, "%s", ctxd__admin_path(req));
  snprintf(f->query, sizeof f->query, "%s", ctxd__admin_query(req));
  size_t len;
  const char *in = ctxd__admin_body(req, &len);
  snprintf(f->body_in, sizeof f->body_in, "%zu:%.200s", len, in);
  const char *origin = ctxd__admin_header(req, "origin"), *auth = ctxd__admin_header(req, "Authorization");
  snprintf(f->origin, sizeof f->origin, "%s", origin != NULL ? origin : "(none)");
  snprintf(f->auth, sizeof f->auth, "%s", auth != NULL ? auth : "(none)");
  if (f->defer) {
    assert_true(f->npending < 8);
    f->pending[f->npending] = ctxd__admin_defer(req, f->defer_ms, f->late);
    assert_non_null(f->pending[f->npending++]);
    if (f->reply_now) {
      ctxd__admin_resp_t r = {0};
      assert_int_equal(ctxd__prom_printf(&r.body, "now"), 0);
      ctxd__admin_reply(f->pending[f->npending - 1], 202, &r);
      f->pending[f->npending - 1] = NULL;
    }
    return CTXD__ADMIN_DEFERRED;
  }
  if (f->ctype) resp->content_type = f->ctype;
  if (f->big) {
    char *x = malloc(f->big);
    assert_non_null(x);
    memset(x, 'x', f->big);
    assert_int_equal(ctxd__prom_append(&resp->body, x, f->big), 0);
    free(x);
  } else {
    assert_int_equal(ctxd__prom_printf(&resp->body, "%s", f->body), 0);
  }
  return f->status;
}

static int setup(void **state) {
  fx_t *f = calloc(1, sizeof *f);
  assert_non_null(f);
  assert_int_equal(uv_loop_init(&f->loop), 0);
  f->status = 200;
  f->body = "ok\n";
  char err[256];
  assert_int_equal(ctxd__admin_start(&f->loop, "127.0.0.1:0", handler, f, &f->admin, err, sizeof err), 0);
  assert_true(ctxd__admin_port(f->admin) > 0);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fx_t *f = *state;
  if (f->admin) ctxd__admin_close(f->admin);
  assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(uv_loop_close(&f->loop), 0);
  free(f);
  return 0;
}

/* Waits for the loop's next event (I/O or timer) or, when fd >= 0, for one of events on
 * fd, and runs the loop once; repeats until fd is ready. Returns fd's revents, or 0 at the
 * deadline or after one round when fd < 0. Waiting before running means a caller checking
 * its condition between calls never sleeps past an event the loop already handled. */
static short step(fx_t *f, int fd, short events, int64_t deadline) {
  for (;;) {
    int64_t left = deadline - ctxt_now_ms();
    if (left <= 0) return 0;
    uv_update_time(&f->loop);
    int t = uv_backend_timeout(&f->loop);
    struct pollfd p[2] = {{uv_backend_fd(&f->loop), POLLIN, 0}, {fd, events, 0}};
    poll(p, fd >= 0 ? 2 : 1, t >= 0 && t < left ? t : (int)left);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    if (fd < 0) return 0;
    if (p[1].revents) return p[1].revents;
  }
}

static void wait_connections(fx_t *f, size_t n) {
  int64_t deadline = ctxt_now_ms() + DEADLINE_MS;
  while (ctxd__admin_connections(f->admin) != n) {
    assert_true(ctxt_now_ms() < deadline);
    step(f, -1, 0, deadline);
  }
}

static int client_connect(fx_t *f) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  assert_true(fd >= 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)ctxd__admin_port(f->admin))};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
    assert_int_equal(errno, EINPROGRESS);
    assert_true(step(f, fd, POLLOUT, ctxt_now_ms() + DEADLINE_MS) & POLLOUT);
    int e = -1;
    socklen_t len = sizeof e;
    assert_int_equal(getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len), 0);
    assert_int_equal(e, 0);
  }
  return fd;
}

static void client_send(fx_t *f, int fd, const char *data, size_t len) {
  int64_t deadline = ctxt_now_ms() + DEADLINE_MS;
  while (len > 0) {
    ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
    if (n > 0) {
      data += n;
      len -= (size_t)n;
      continue;
    }
    assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
    assert_true(step(f, fd, POLLOUT, deadline) != 0);
  }
}

/* Reads until the server closes (a reset fails the test); buf is NUL-terminated. */
static size_t client_read_all(fx_t *f, int fd, char *buf, size_t cap) {
  int64_t deadline = ctxt_now_ms() + DEADLINE_MS;
  size_t len = 0;
  for (;;) {
    assert_true(len < cap - 1);
    ssize_t n = recv(fd, buf + len, cap - 1 - len, 0);
    if (n == 0) break;
    if (n > 0) {
      len += (size_t)n;
      continue;
    }
    assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
    assert_true(step(f, fd, POLLIN, deadline) != 0);
  }
  buf[len] = '\0';
  return len;
}

/* One request on a new connection; the whole response in resp. */
static void exchange(fx_t *f, const char *req, char *resp, size_t cap) {
  int fd = client_connect(f);
  client_send(f, fd, req, strlen(req));
  client_read_all(f, fd, resp, cap);
  close(fd);
}

static void get_returns_handler_status_and_body(void **state) {
  fx_t *f = *state;
  char resp[4096];
  exchange(f, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", resp, sizeof resp);
  assert_string_equal(resp, "HTTP/1.1 200 OK\r\n"
                            "Content-Type: text/plain; charset=utf-8\r\n"
                            "Content-Length: 3\r\n"
                            "Connection: close\r\n"
                            "\r\n"
                            "ok\n");
  assert_int_equal(f->calls, 1);
  assert_string_equal(f->method, "GET");
  assert_string_equal(f->path, "/healthz");

  f->status = 503;
  f->body = "broker down\n";
  exchange(f, "GET /readyz HTTP/1.0\r\n\r\n", resp, sizeof resp);
  assert_string_equal(resp, "HTTP/1.1 503 Service Unavailable\r\n"
                            "Content-Type: text/plain; charset=utf-8\r\n"
                            "Content-Length: 12\r\n"
                            "Connection: close\r\n"
                            "\r\n"
                            "broker down\n");
}

static void query_string_and_fragment_are_stripped(void **state) {
  fx_t *f = *state;
  char resp[4096];
  f->ctype = CTXD__PROM_CONTENT_TYPE;
  f->body = "";
  exchange(f, "GET /metrics?name[]=a&b=%20#frag HTTP/1.1\r\n\r\n", resp, sizeof resp);
  assert_string_equal(f->path, "/metrics");
  assert_string_equal(resp, "HTTP/1.1 200 OK\r\n"
                            "Content-Type: " CTXD__PROM_CONTENT_TYPE "\r\n"
                            "Content-Length: 0\r\n"
                            "Connection: close\r\n"
                            "\r\n");
  exchange(f, "GET http://localhost:9090/readyz?x=1 HTTP/1.1\r\n\r\n", resp, sizeof resp);
  assert_string_equal(f->path, "/readyz");
  exchange(f, "GET /?x HTTP/1.1\r\n\r\n", resp, sizeof resp);
  assert_string_equal(f->path, "/");
  exchange(f, "GET http://localhost?x HTTP/1.1\r\n\r\n", resp, sizeof resp);
  assert_string_equal(f->path, "/");
  assert_int_equal(f->calls, 4);
}

static void head_sends_length_without_body(void **state) {
  fx_t *f = *state;
  char resp[4096];
  exchange(f, "HEAD /healthz HTTP/1.1\r\n\r\n", resp, sizeof resp);
  assert_string_equal(f->method, "HEAD");
  assert_string_equal(resp, "HTTP/1.1 200 OK\r\n"
                            "Content-Type: text/plain; charset=utf-8\r\n"
                            "Content-Length: 3\r\n"
                            "Connection: close\r\n"
                            "\r\n");
}

static void other_methods_get_405(void **state) {
  fx_t *f = *state;
  char resp[4096];
  exchange(f, "DELETE / HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi", resp, sizeof resp);
  assert_string_equal(resp, "HTTP/1.1 405 Method Not Allowed\r\n"
                            "Content-Type: text/plain; charset=utf-8\r\n"
                            "Content-Length: 19\r\n"
                            "Allow: GET, HEAD, POST\r\n"
                            "Connection: close\r\n"
                            "\r\n"
                            "Method Not Allowed\n");
  exchange(f, "PUT / HTTP/1.1\r\n\r\n", resp, sizeof resp);
  assert_non_null(strstr(resp, "HTTP/1.1 405 "));
  assert_int_equal(f->calls, 0);
}

static void malformed_requests_get_400(void **state) {
  fx_t *f = *state;
  char resp[4096];
  static const char *const bad[] = {
      "HELLO WORLD\r\n\r\n",          "GET / HTTP/1.1\r\nNo colon here\r\n\r\n",
      "GET / XTTP/1.1\r\n\r\n",       "GET * HTTP/1.1\r\n\r\n",
      "GET /a\x01b HTTP/1.1\r\n\r\n",
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    exchange(f, bad[i], resp, sizeof resp);
    assert_non_null(strstr(resp, "HTTP/1.1 400 Bad Request\r\n"));
    assert_non_null(strstr(resp, "\r\n\r\nBad Request\n"));
  }
  /* A request cut short by the client's EOF. */
  int fd = client_connect(f);
  client_send(f, fd, "GET /healthz HTTP/1.1\r\nHost:", 28);
  shutdown(fd, SHUT_WR);
  client_read_all(f, fd, resp, sizeof resp);
  close(fd);
  assert_non_null(strstr(resp, "HTTP/1.1 400 Bad Request\r\n"));
  assert_int_equal(f->calls, 0);
}

static void handler_status_is_passed_on(void **state) {
  fx_t *f = *state;
  char resp[4096];
  f->status = 404;
  exchange(f, "GET /nope HTTP/1.1\r\n\r\n", resp, sizeof resp);
  assert_non_null(strstr(resp, "HTTP/1.1 404 Not Found\r\n"));
  f->status = 299; /* no reason phrase known: an empty one, as HTTP/1.1 allows */
  exchange(f, "GET /odd HTTP/1.1\r\n\r\n", resp, sizeof resp);
  assert_non_null(strstr(resp, "HTTP/1.1 299 \r\n"));
  f->status = 42;
  exchange(f, "GET /x HTTP/1.1\r\n\r\n", resp, sizeof resp);
  assert_string_equal(resp, "HTTP/1.1 500 Internal Server Error\r\n"
                            "Content-Type: text/plain; charset=utf-8\r\n"
                            "Content-Length: 22\r\n"
                            "Connection: close\r\n"
                            "\r\n"
                            "Internal Server Error\n");
}

/* A request of len bytes: headers padded with one long header. */
static char *request_of(size_t len) {
  static const char head[] = "GET /big HTTP/1.1\r\nX-Pad: ";
  char *r = malloc(len + 1);
  assert_non_null(r);
  assert_true(len > sizeof head + 4);
  memcpy(r, head, sizeof head - 1);
  memset(r + sizeof head - 1, 'a', len - (sizeof head - 1) - 4);
  memcpy(r + len - 4, "\r\n\r\n", 5);
  return r;
}

static void oversized_request_gets_431(void **state) {
  fx_t *f = *state;
  char resp[4096];
  char *r = request_of(CTXD__ADMIN_MAX_REQUEST);
  exchange(f, r, resp, sizeof resp);
  free(r);
  assert_int_equal(f->calls, 1); /* exactly the limit still passes */
  assert_non_null(strstr(resp, "HTTP/1.1 200 OK\r\n"));

  /* Far more than the limit: the 431 must arrive intact although most of the request is
   * never read (no reset before the client read the response). */
  r = request_of(64 * 1024);
  exchange(f, r, resp, sizeof resp);
  free(r);
  assert_string_equal(resp, "HTTP/1.1 431 Request Header Fields Too Large\r\n"
                            "Content-Type: text/plain; charset=utf-8\r\n"
                            "Content-Length: 32\r\n"
                            "Connection: close\r\n"
                            "\r\n"
                            "Request Header Fields Too Large\n");
  r = request_of(CTXD__ADMIN_MAX_REQUEST + 1);
  exchange(f, r, resp, sizeof resp);
  free(r);
  assert_non_null(strstr(resp, "HTTP/1.1 431 "));
  assert_int_equal(f->calls, 1);
}

static void idle_connections_are_closed(void **state) {
  fx_t *f = *state;
  ctxd__admin_set_idle_timeout(f->admin, 100);
  char resp[64];
  int64_t t0 = ctxt_now_ms();
  int silent = client_connect(f);
  int partial = client_connect(f);
  client_send(f, partial, "GET /healthz HT", 15);
  /* Closed without a response. */
  assert_int_equal(client_read_all(f, silent, resp, sizeof resp), 0);
  assert_int_equal(client_read_all(f, partial, resp, sizeof resp), 0);
  int64_t elapsed = ctxt_now_ms() - t0;
  assert_true(elapsed >= 90);
  assert_true(elapsed < DEADLINE_MS);
  close(silent);
  close(partial);
  wait_connections(f, 0);
  assert_int_equal(f->calls, 0);
}

static void many_concurrent_connections(void **state) {
  fx_t *f = *state;
  enum { N = 64 };
  int fds[N];
  char resp[4096];
  for (int i = 0; i < N; i++) {
    fds[i] = client_connect(f);
    client_send(f, fds[i], "GET /healthz", 12);
  }
  wait_connections(f, N);
  for (int i = N - 1; i >= 0; i--) client_send(f, fds[i], " HTTP/1.1\r\n\r\n", 13);
  for (int i = 0; i < N; i++) {
    client_read_all(f, fds[i], resp, sizeof resp);
    assert_non_null(strstr(resp, "HTTP/1.1 200 OK\r\n"));
    close(fds[i]);
  }
  assert_int_equal(f->calls, N);
  wait_connections(f, 0);
}

/* 1 when the server closed fd: EOF (no response) is readable; 0 when it is still open. */
static int closed_by_server(int fd) {
  char c;
  ssize_t n = recv(fd, &c, 1, MSG_DONTWAIT);
  if (n == 0) return 1;
  assert_true(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
  return 0;
}

/* Runs the loop until the server closed fd without a response. */
static void wait_closed(fx_t *f, int fd) {
  char resp[64];
  assert_int_equal(client_read_all(f, fd, resp, sizeof resp), 0);
}

static void stats(fx_t *f, ctxd__admin_stats_t *st) { ctxd__admin_stats(f->admin, st); }

/* A POST reaches the handler with its body, query string and the headers kept; the
 * handler's extra header lines are sent. */
static void post_with_body_headers_and_query(void **state) {
  fx_t *f = *state;
  char resp[4096];
  exchange(f,
           "POST /api/x?a=1&b=%20 HTTP/1.1\r\nHost: h\r\nORIGIN: http://h\r\nX-Other: y\r\n"
           "Authorization: Bearer t\r\nContent-Length: 11\r\n\r\n{\"ids\":[1]}",
           resp, sizeof resp);
  assert_non_null(strstr(resp, "HTTP/1.1 200 OK\r\n"));
  assert_string_equal(f->method, "POST");
  assert_string_equal(f->path, "/api/x");
  assert_string_equal(f->query, "a=1&b=%20");
  assert_string_equal(f->body_in, "11:{\"ids\":[1]}");
  assert_string_equal(f->origin, "http://h");
  assert_string_equal(f->auth, "Bearer t");
  /* chunked, split over reads of any size: the same body */
  exchange(f, "POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n", resp,
           sizeof resp);
  assert_string_equal(f->body_in, "5:abcde");
  assert_string_equal(f->origin, "(none)");
  assert_string_equal(f->query, "");
  /* a kept header twice is refused */
  exchange(f, "GET / HTTP/1.1\r\nOrigin: a\r\norigin: b\r\n\r\n", resp, sizeof resp);
  assert_non_null(strstr(resp, "HTTP/1.1 400 "));
  assert_int_equal(f->calls, 2);
}

/* A body up to CTXD__ADMIN_MAX_BODY passes, after headers up to CTXD__ADMIN_MAX_REQUEST;
 * one byte more is a 413, declared or chunked, and the answer arrives intact. */
static void body_over_the_bound_gets_413(void **state) {
  fx_t *f = *state;
  static char req[CTXD__ADMIN_MAX_BODY + 2 * CTXD__ADMIN_MAX_REQUEST], resp[4096];
  for (int over = 0; over <= 1; over++) {
    size_t body = CTXD__ADMIN_MAX_BODY + (size_t)over;
    int n = snprintf(req, sizeof req, "POST /b HTTP/1.1\r\nX-Pad: %06000d\r\nContent-Length: %zu\r\n\r\n", 0,
                     body);
    memset(req + n, 'b', body);
    req[n + (int)body] = '\0';
    exchange(f, req, resp, sizeof resp);
    assert_non_null(strstr(resp, over ? "HTTP/1.1 413 Payload Too Large\r\n" : "HTTP/1.1 200 OK\r\n"));
  }
  assert_int_equal(f->calls, 1);
  assert_true(strncmp(f->body_in, "65536:bbb", 9) == 0);
  /* chunked: the bound is found while reading */
  int n = snprintf(req, sizeof req, "POST /b HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n",
                   CTXD__ADMIN_MAX_BODY + 1);
  memset(req + n, 'c', CTXD__ADMIN_MAX_BODY + 1);
  snprintf(req + n + CTXD__ADMIN_MAX_BODY + 1, 16, "\r\n0\r\n\r\n");
  exchange(f, req, resp, sizeof resp);
  assert_non_null(strstr(resp, "HTTP/1.1 413 "));
  assert_int_equal(f->calls, 1);
}

/* Runs the loop until the handler deferred n requests. */
static void wait_deferred(fx_t *f, int n) {
  int64_t deadline = ctxt_now_ms() + DEADLINE_MS;
  while (f->npending < n) {
    assert_true(ctxt_now_ms() < deadline);
    step(f, -1, 0, deadline);
  }
}

static void reply(fx_t *f, int i, int status, const char *body) {
  ctxd__admin_resp_t r = {.content_type = "application/json", .headers = "X-A: 1\r\n"};
  assert_int_equal(ctxd__prom_printf(&r.body, "%s", body), 0);
  ctxd__admin_reply(f->pending[i], status, &r);
  assert_null(r.body.buf); /* taken */
  f->pending[i] = NULL;
}

/* A deferred answer is sent when given, with its type and headers; given after its client
 * left, it goes nowhere harmlessly (ASan: no use after free). */
static void deferred_answers(void **state) {
  fx_t *f = *state;
  f->defer = 1;
  int a = client_connect(f), b = client_connect(f);
  client_send(f, a, "GET /a HTTP/1.1\r\n\r\n", 20);
  client_send(f, b, "GET /b HTTP/1.1\r\n\r\n", 20);
  wait_deferred(f, 2);
  assert_false(closed_by_server(a));
  /* b's client leaves (a FIN, as a half-close): its answer is written into the void */
  close(b);
  reply(f, 1, 200, "late");
  wait_connections(f, 1);
  reply(f, 0, 201, "{}");
  char resp[4096];
  client_read_all(f, a, resp, sizeof resp);
  assert_string_equal(resp, "HTTP/1.1 201 \r\n"
                            "Content-Type: application/json\r\n"
                            "Content-Length: 2\r\n"
                            "X-A: 1\r\n"
                            "Connection: close\r\n"
                            "\r\n"
                            "{}");
  close(a);
  wait_connections(f, 0);
}

/* Deferred requests are in progress: at the connection bound they are not evicted, a new
 * connection waits until one is answered; one not answered in time gets a 503 and its
 * late answer is dropped. */
static void deferred_requests_hold_their_slots(void **state) {
  fx_t *f = *state;
  f->defer = 1;
  ctxd__admin_set_max_connections(f->admin, 2);
  int a = client_connect(f), b = client_connect(f);
  client_send(f, a, "GET /a HTTP/1.1\r\n\r\n", 20);
  client_send(f, b, "GET /b HTTP/1.1\r\n\r\n", 20);
  wait_deferred(f, 2);
  int c = client_connect(f);
  client_send(f, c, "GET /c HTTP/1.1\r\n\r\n", 20);
  /* c waits in the listen queue: a few turns of the loop do not serve it */
  for (int i = 0; i < 20; i++) step(f, -1, 0, ctxt_now_ms() + 10);
  assert_int_equal(f->npending, 2);
  assert_false(closed_by_server(a));
  assert_false(closed_by_server(b));
  ctxd__admin_stats_t st;
  stats(f, &st);
  assert_int_equal(st.evicted, 0);
  assert_int_equal(st.open, 2);
  char resp[4096];
  reply(f, 0, 200, "a");
  client_read_all(f, a, resp, sizeof resp);
  assert_non_null(strstr(resp, "\r\n\r\na"));
  wait_deferred(f, 3); /* c got a's slot */
  /* the answer's deadline: b and c, never answered, get 503 */
  ctxd__admin_set_idle_timeout(f->admin, 100);
  reply(f, 2, 200, "c"); /* c was deferred before the shorter deadline: answer it */
  client_read_all(f, c, resp, sizeof resp);
  assert_non_null(strstr(resp, "HTTP/1.1 200 OK\r\n"));
  int d = client_connect(f);
  client_send(f, d, "GET /d HTTP/1.1\r\n\r\n", 20);
  wait_deferred(f, 4);
  client_read_all(f, d, resp, sizeof resp);
  assert_non_null(strstr(resp, "HTTP/1.1 503 Service Unavailable\r\n"));
  reply(f, 3, 200, "too late"); /* dropped */
  reply(f, 1, 200, "b");
  client_read_all(f, b, resp, sizeof resp);
  assert_non_null(strstr(resp, "\r\n\r\nb"));
  close(a);
  close(b);
  close(c);
  close(d);
  wait_connections(f, 0);
}

/* A deferred request's deadline is the callback's, not the idle timeout, and past it the
 * answer says the callback's reason: JSON under /api/, text elsewhere. */
static void deferred_deadline_and_reason(void **state) {
  fx_t *f = *state;
  f->defer = 1;
  f->defer_ms = 100;
  f->late = "still running; see the action log";
  char resp[4096];
  int64_t t0 = ctxt_now_ms();
  exchange(f, "POST /api/act HTTP/1.1\r\nContent-Length: 0\r\n\r\n", resp, sizeof resp);
  assert_true(ctxt_now_ms() - t0 < 4000); /* not the idle timeout's 5 s */
  assert_non_null(strstr(resp, "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json; "
                               "charset=utf-8\r\n"));
  assert_non_null(strstr(resp, "\r\n\r\n{\"error\":\"still running; see the action log\"}"));
  f->late = NULL;
  exchange(f, "GET /x HTTP/1.1\r\n\r\n", resp, sizeof resp);
  assert_non_null(strstr(resp, "Content-Type: text/plain; charset=utf-8\r\n"));
  assert_non_null(strstr(resp, "\r\n\r\nService Unavailable\n"));
  reply(f, 0, 200, "dropped");
  reply(f, 1, 200, "dropped");
  /* the server's own errors under /api/ are JSON too */
  f->defer = 0;
  exchange(f, "GET /api/x HTTP/1.1\r\nOrigin: a\r\nOrigin: b\r\n\r\n", resp, sizeof resp);
  assert_non_null(strstr(resp, "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json"));
  assert_non_null(strstr(resp, "\r\n\r\n{\"error\":\"Bad Request\"}"));
}

/* An answer given while the callback still runs is sent once, after it returned. */
static void reply_during_the_callback(void **state) {
  fx_t *f = *state;
  f->defer = 1;
  f->reply_now = 1;
  char resp[4096];
  exchange(f, "GET /a HTTP/1.1\r\n\r\n", resp, sizeof resp);
  assert_string_equal(resp, "HTTP/1.1 202 \r\n"
                            "Content-Type: text/plain; charset=utf-8\r\n"
                            "Content-Length: 3\r\n"
                            "Connection: close\r\n"
                            "\r\n"
                            "now");
  wait_connections(f, 0);
}

/* A client that finished sending (shutdown for writing, as nc -N does) still gets the
 * deferred answer. */
static void half_closed_client_gets_the_deferred_answer(void **state) {
  fx_t *f = *state;
  f->defer = 1;
  int a = client_connect(f);
  client_send(f, a, "GET /a HTTP/1.1\r\n\r\n", 20);
  assert_int_equal(shutdown(a, SHUT_WR), 0);
  wait_deferred(f, 1);
  for (int i = 0; i < 20; i++) step(f, -1, 0, ctxt_now_ms() + 10); /* the EOF is read */
  assert_int_equal(ctxd__admin_connections(f->admin), 1);
  reply(f, 0, 200, "kept");
  char resp[4096];
  client_read_all(f, a, resp, sizeof resp);
  assert_non_null(strstr(resp, "HTTP/1.1 200 OK\r\n"));
  assert_non_null(strstr(resp, "\r\n\r\nkept"));
  close(a);
  wait_connections(f, 0);
}

/* A header value's trailing blanks are trimmed; a chunked body's trailers are no headers. */
static void header_values_trimmed_and_trailers_ignored(void **state) {
  fx_t *f = *state;
  char resp[4096];
  exchange(f, "GET /t HTTP/1.1\r\nAuthorization: Bearer tok \t \r\nOrigin:  http://h\t\r\n\r\n", resp,
           sizeof resp);
  assert_string_equal(f->auth, "Bearer tok");
  assert_string_equal(f->origin, "http://h");
  exchange(f,
           "POST /t HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n"
           "Origin: http://evil\r\nAuthorization: Bearer t\r\n\r\n",
           resp, sizeof resp);
  assert_non_null(strstr(resp, "HTTP/1.1 200 OK\r\n"));
  assert_string_equal(f->body_in, "2:ab");
  assert_string_equal(f->origin, "(none)");
  assert_string_equal(f->auth, "(none)");
}

/* Closing the server with a deferred request: the answer that comes afterwards is dropped. */
static void deferred_answer_after_close(void **state) {
  fx_t *f = *state;
  f->defer = 1;
  int a = client_connect(f);
  client_send(f, a, "GET /a HTTP/1.1\r\n\r\n", 20);
  wait_deferred(f, 1);
  ctxd__admin_close(f->admin);
  f->admin = NULL;
  assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
  reply(f, 0, 200, "gone");
  close(a);
}

static void idle_connection_gives_way_at_the_bound(void **state) {
  fx_t *f = *state;
  ctxd__admin_set_max_connections(f->admin, 2);
  int silent = client_connect(f);
  wait_connections(f, 1);
  int partial = client_connect(f);
  client_send(f, partial, "GET /", 5);
  wait_connections(f, 2);
  /* the bound is full: a fresh request is still answered, in the silent one's place */
  char resp[4096];
  exchange(f, "GET /readyz HTTP/1.1\r\n\r\n", resp, sizeof resp);
  assert_non_null(strstr(resp, "HTTP/1.1 200 OK\r\n"));
  wait_closed(f, silent);
  assert_false(closed_by_server(partial)); /* a request in progress is never evicted */
  ctxd__admin_stats_t st;
  stats(f, &st);
  assert_int_equal(st.evicted, 1);
  assert_true(st.open <= 2);
  /* the partial request completes normally */
  client_send(f, partial, "healthz HTTP/1.1\r\n\r\n", 20);
  client_read_all(f, partial, resp, sizeof resp);
  assert_non_null(strstr(resp, "HTTP/1.1 200 OK\r\n"));
  assert_string_equal(f->path, "/healthz");
  close(silent);
  close(partial);
  wait_connections(f, 0);
}

/* Among idle connections the oldest goes first; many more than the bound, one at a time. */
static void oldest_idle_goes_first(void **state) {
  fx_t *f = *state;
  enum { MAX = 4, N = 40 };
  ctxd__admin_set_max_connections(f->admin, MAX);
  int fds[N];
  for (int i = 0; i < N; i++) {
    fds[i] = client_connect(f);
    wait_connections(f, (size_t)(i < MAX ? i + 1 : MAX));
    /* the one before the last MAX is gone, the last MAX are open */
    if (i >= MAX) wait_closed(f, fds[i - MAX]);
    for (int j = i - MAX + 1; j <= i; j++)
      if (j >= 0) assert_false(closed_by_server(fds[j]));
  }
  ctxd__admin_stats_t st;
  stats(f, &st);
  assert_int_equal(st.evicted, N - MAX);
  assert_int_equal(st.open, MAX);
  for (int i = 0; i < N; i++) close(fds[i]);
  wait_connections(f, 0);
}

/* Every slot holds a request in progress: the new connection waits in the listen queue
 * (not refused, not a busy loop) until a slot frees at its deadline. */
static void busy_slots_make_new_connections_wait(void **state) {
  fx_t *f = *state;
  ctxd__admin_set_max_connections(f->admin, 1);
  ctxd__admin_set_idle_timeout(f->admin, 300);
  int partial = client_connect(f);
  client_send(f, partial, "GET /", 5);
  wait_connections(f, 1);
  int64_t t0 = ctxt_now_ms();
  int fresh = client_connect(f); /* the kernel completes it; the host does not accept yet */
  client_send(f, fresh, "GET /healthz HTTP/1.1\r\n\r\n", 25);
  char resp[4096];
  client_read_all(f, fresh, resp, sizeof resp);
  assert_non_null(strstr(resp, "HTTP/1.1 200 OK\r\n"));
  assert_true(ctxt_now_ms() - t0 >= 250); /* served once the partial one timed out */
  wait_closed(f, partial);
  ctxd__admin_stats_t st;
  stats(f, &st);
  assert_int_equal(st.evicted, 0);
  assert_int_equal(st.accept_errors, 0);
  close(partial);
  close(fresh);
  wait_connections(f, 0);
}

/* Counts the lines of path holding needle. */
static int count_lines(const char *path, const char *needle) {
  char *text = ctxt_read_file(path);
  int n = 0;
  for (const char *s = text; (s = strstr(s, needle)) != NULL; s++) n++;
  free(text);
  return n;
}

/* Out of descriptors: accepting pauses and retries (not a busy loop), the failure is
 * logged once, and the waiting connection is served once descriptors are free again. */
static void accept_failure_pauses_and_logs_once(void **state) {
  fx_t *f = *state;
  char log[] = "/tmp/ctxd-test-admin-log-XXXXXX";
  int log_fd = mkstemp(log);
  assert_true(log_fd >= 0);
  int saved_stderr = dup(STDERR_FILENO);
  assert_true(saved_stderr >= 0);
  struct rlimit old, low;
  assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
  low = old;
  low.rlim_cur = 256;
  int probe = dup(0);
  assert_true(probe >= 0 && probe < 200);
  close(probe);
  assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
  dup2(log_fd, STDERR_FILENO);
  /* every descriptor taken but the client's: the host cannot accept it */
  int fill[256], nfill = 0;
  while (nfill < 256 && (fill[nfill] = dup(0)) >= 0) nfill++;
  assert_int_equal(errno, EMFILE);
  close(fill[--nfill]);
  int client = client_connect(f); /* queued in the kernel until the host accepts */
  client_send(f, client, "GET /healthz HTTP/1.1\r\n\r\n", 25);

  int64_t t0 = ctxt_now_ms(), deadline = t0 + DEADLINE_MS;
  ctxd__admin_stats_t st;
  for (stats(f, &st); st.accept_errors < 3; stats(f, &st)) {
    assert_true(ctxt_now_ms() < deadline);
    step(f, -1, 0, deadline);
  }
  /* three attempts took two retry periods: no attempt in between */
  assert_true(ctxt_now_ms() - t0 >= 2 * CTXD__ADMIN_ACCEPT_RETRY_MS - 50);
  assert_int_equal(st.accept_errors, 3);

  while (nfill > 0) close(fill[--nfill]);
  char resp[4096];
  client_read_all(f, client, resp, sizeof resp);
  close(client);
  dup2(saved_stderr, STDERR_FILENO);
  close(saved_stderr);
  assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
  assert_non_null(strstr(resp, "HTTP/1.1 200 OK\r\n"));
  assert_int_equal(count_lines(log, "cannot accept connections: Too many open files"), 1);
  assert_int_equal(count_lines(log, "accepting connections again after 3 failed attempts"), 1);
  close(log_fd);
  unlink(log);
}

static void close_with_open_connections(void **state) {
  fx_t *f = *state;
  static char resp[1 << 16];
  int idle = client_connect(f);
  int partial = client_connect(f);
  client_send(f, partial, "GET /", 5);
  /* Answered and lingering: the client neither reads nor closes. */
  int answered = client_connect(f);
  client_send(f, answered, "GET / HTTP/1.1\r\n\r\n", 18);
  /* Mid-response: a body far larger than the socket buffers, never read. */
  f->big = 32u << 20;
  int writing = client_connect(f);
  client_send(f, writing, "GET /big HTTP/1.1\r\n\r\n", 21);
  wait_connections(f, 4);
  int64_t deadline = ctxt_now_ms() + DEADLINE_MS;
  while (f->calls < 2) {
    assert_true(ctxt_now_ms() < deadline);
    step(f, -1, 0, deadline);
  }
  ctxd__admin_close(f->admin);
  f->admin = NULL;
  assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(uv_loop_close(&f->loop), 0);
  /* Every client sees its connection end (the loop is closed, so plain poll). */
  int fds[] = {idle, partial, answered, writing};
  for (size_t i = 0; i < sizeof fds / sizeof *fds; i++) {
    struct pollfd p = {fds[i], POLLIN, 0};
    ssize_t n;
    do {
      assert_int_equal(poll(&p, 1, DEADLINE_MS), 1);
      n = recv(fds[i], resp, sizeof resp, 0);
    } while (n > 0);
    assert_true(n == 0 || errno == ECONNRESET);
    close(fds[i]);
  }
  assert_int_equal(uv_loop_init(&f->loop), 0); /* for teardown */
}

static void client_leaving_mid_response_is_harmless(void **state) {
  fx_t *f = *state;
  f->big = 32u << 20;
  int fd = client_connect(f);
  client_send(f, fd, "GET /big HTTP/1.1\r\n\r\n", 21);
  int64_t deadline = ctxt_now_ms() + DEADLINE_MS;
  while (f->calls < 1) {
    assert_true(ctxt_now_ms() < deadline);
    step(f, -1, 0, deadline);
  }
  /* Unread data makes this close a reset: the server's write fails with EPIPE or
   * ECONNRESET (SIGPIPE is ignored) and the connection is dropped. */
  close(fd);
  wait_connections(f, 0);
  f->big = 0;
  char resp[4096];
  exchange(f, "GET /healthz HTTP/1.1\r\n\r\n", resp, sizeof resp);
  assert_non_null(strstr(resp, "HTTP/1.1 200 OK\r\n"));
}

static void start_errors(void **state) {
  fx_t *f = *state;
  char err[256];
  ctxd__admin_t *a = NULL;
  static const char *const bad[] = {"",         "127.0.0.1",     "127.0.0.1:", "127.0.0.1:65536",
                                    "1.2.3:80", "localhost:80",  "::1:80",     "[::1]80",
                                    "[::1:80",  "127.0.0.1:80x", "[]:80",      ":80"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    assert_int_equal(ctxd__admin_start(&f->loop, bad[i], handler, f, &a, err, sizeof err), CTXD_EINVAL);
    char want[128];
    snprintf(want, sizeof want,
             "admin listen address '%s': expected a numeric a.b.c.d:PORT or [IPv6]:PORT with "
             "PORT 0-65535",
             bad[i]);
    assert_string_equal(err, want);
    struct sockaddr_storage ss;
    assert_int_equal(ctxd__admin_address_parse(bad[i], &ss), CTXD_EINVAL);
  }
  char addr[64];
  snprintf(addr, sizeof addr, "127.0.0.1:%d", ctxd__admin_port(f->admin));
  assert_int_equal(ctxd__admin_start(&f->loop, addr, handler, f, &a, err, sizeof err), CTXD_EIO);
  char want[128];
  snprintf(want, sizeof want, "admin: cannot listen on %s: Address already in use", addr);
  assert_string_equal(err, want);
  assert_null(a);

  /* A failed start leaves nothing on the loop. */
  uv_loop_t loop;
  assert_int_equal(uv_loop_init(&loop), 0);
  assert_int_equal(ctxd__admin_start(&loop, addr, handler, f, &a, err, sizeof err), CTXD_EIO);
  assert_int_equal(uv_loop_close(&loop), 0);
}

/* The rule the config loader checks admin.listen by, so what it accepts here is bound. */
static void address_parse(void **state) {
  (void)state;
  struct sockaddr_storage ss;
  assert_int_equal(ctxd__admin_address_parse("127.0.0.1:0", &ss), 0);
  assert_int_equal(ss.ss_family, AF_INET);
  const struct sockaddr_in *v4 = (const struct sockaddr_in *)&ss;
  assert_int_equal(ntohs(v4->sin_port), 0);
  assert_int_equal(ntohl(v4->sin_addr.s_addr), INADDR_LOOPBACK);
  assert_int_equal(ctxd__admin_address_parse("0.0.0.0:65535", &ss), 0);
  assert_int_equal(ntohs(((const struct sockaddr_in *)&ss)->sin_port), 65535);
  assert_int_equal(ctxd__admin_address_parse("[::1]:9464", &ss), 0);
  assert_int_equal(ss.ss_family, AF_INET6);
  const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)&ss;
  assert_int_equal(ntohs(v6->sin6_port), 9464);
  assert_memory_equal(&v6->sin6_addr, &in6addr_loopback, sizeof in6addr_loopback);
}

static void ipv6_loopback(void **state) {
  fx_t *f = *state;
  char err[256];
  ctxd__admin_t *a = NULL;
  int rc = ctxd__admin_start(&f->loop, "[::1]:0", handler, f, &a, err, sizeof err);
  if (rc == CTXD_EIO) { /* no IPv6 on this machine */
    print_message("skipped: %s\n", err);
    return;
  }
  assert_int_equal(rc, 0);
  assert_true(ctxd__admin_port(a) > 0);
  ctxd__admin_close(a);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(get_returns_handler_status_and_body, setup, teardown),
      cmocka_unit_test_setup_teardown(query_string_and_fragment_are_stripped, setup, teardown),
      cmocka_unit_test_setup_teardown(head_sends_length_without_body, setup, teardown),
      cmocka_unit_test_setup_teardown(other_methods_get_405, setup, teardown),
      cmocka_unit_test_setup_teardown(post_with_body_headers_and_query, setup, teardown),
      cmocka_unit_test_setup_teardown(body_over_the_bound_gets_413, setup, teardown),
      cmocka_unit_test_setup_teardown(deferred_answers, setup, teardown),
      cmocka_unit_test_setup_teardown(deferred_requests_hold_their_slots, setup, teardown),
      cmocka_unit_test_setup_teardown(deferred_answer_after_close, setup, teardown),
      cmocka_unit_test_setup_teardown(deferred_deadline_and_reason, setup, teardown),
      cmocka_unit_test_setup_teardown(reply_during_the_callback, setup, teardown),
      cmocka_unit_test_setup_teardown(half_closed_client_gets_the_deferred_answer, setup, teardown),
      cmocka_unit_test_setup_teardown(header_values_trimmed_and_trailers_ignored, setup, teardown),
      cmocka_unit_test_setup_teardown(malformed_requests_get_400, setup, teardown),
      cmocka_unit_test_setup_teardown(handler_status_is_passed_on, setup, teardown),
      cmocka_unit_test_setup_teardown(oversized_request_gets_431, setup, teardown),
      cmocka_unit_test_setup_teardown(idle_connections_are_closed, setup, teardown),
      cmocka_unit_test_setup_teardown(many_concurrent_connections, setup, teardown),
      cmocka_unit_test_setup_teardown(idle_connection_gives_way_at_the_bound, setup, teardown),
      cmocka_unit_test_setup_teardown(oldest_idle_goes_first, setup, teardown),
      cmocka_unit_test_setup_teardown(busy_slots_make_new_connections_wait, setup, teardown),
      cmocka_unit_test_setup_teardown(accept_failure_pauses_and_logs_once, setup, teardown),
      cmocka_unit_test_setup_teardown(close_with_open_connections, setup, teardown),
      cmocka_unit_test_setup_teardown(client_leaving_mid_response_is_harmless, setup, teardown),
      cmocka_unit_test_setup_teardown(start_errors, setup, teardown),
      cmocka_unit_test(address_parse),
      cmocka_unit_test_setup_teardown(ipv6_loopback, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
