/* The plugins' HTTP client: see http.h. */
#include "http.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <http_parser.h>

#include <ctxd/errno.h>

typedef struct {
  plugin_http_response_t *res;
  size_t cap;
  int complete;
  int interim; /* a 1xx response ended: the final one follows on the same connection */
  int too_big;
} reader_t;

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int fail(plugin_http_response_t *res, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(plugin_http_response_t *res, int rc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(res->error, sizeof res->error, fmt, ap);
  va_end(ap);
  res->status = 0;
  return rc;
}

/* http://host[:port][/path], host a name or an IPv4 address ([v6] too). */
static int parse_url(const char *url, plugin_http_target_t *u) {
  struct http_parser_url p;
  http_parser_url_init(&p);
  if (url == NULL || http_parser_parse_url(url, strlen(url), 0, &p) != 0 ||
      !(p.field_set & (1 << UF_SCHEMA)) || !(p.field_set & (1 << UF_HOST)) ||
      p.field_data[UF_SCHEMA].len != 4 || strncasecmp(url + p.field_data[UF_SCHEMA].off, "http", 4) != 0 ||
      p.field_data[UF_HOST].len >= sizeof u->host)
    return CTXD_EINVAL;
  snprintf(u->host, sizeof u->host, "%.*s", (int)p.field_data[UF_HOST].len, url + p.field_data[UF_HOST].off);
  snprintf(u->port, sizeof u->port, "%u", (p.field_set & (1 << UF_PORT)) ? p.port : 80u);
  /* an IPv6 literal goes back into brackets in the Host header */
  snprintf(u->authority, sizeof u->authority, strchr(u->host, ':') != NULL ? "[%s]:%s" : "%s:%s", u->host,
           u->port);
  /* the path with its query: everything from the path on, fragment excluded */
  size_t from = (p.field_set & (1 << UF_PATH)) ? (size_t)p.field_data[UF_PATH].off : strlen(url);
  size_t to = (p.field_set & (1 << UF_FRAGMENT)) ? (size_t)p.field_data[UF_FRAGMENT].off - 1 : strlen(url);
  if (to - from >= sizeof u->path) return CTXD_EINVAL;
  snprintf(u->path, sizeof u->path, "%.*s", (int)(to - from), url + from);
  if (u->path[0] == '\0') strcpy(u->path, "/");
  return 0;
}

int plugin_http_target_init(plugin_http_target_t *t, const char *url, char *err, size_t cap) {
  memset(t, 0, sizeof *t);
  if (parse_url(url, t) != 0) {
    snprintf(err, cap, "not an http:// URL: %s", url != NULL ? url : "(none)");
    return CTXD_EINVAL;
  }
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
  int g = getaddrinfo(t->host, t->port, &hints, &t->addrs);
  if (g != 0) {
    t->addrs = NULL;
    snprintf(err, cap, "resolving %s: %s", t->host, gai_strerror(g));
    return CTXD_EINVAL;
  }
  return 0;
}

void plugin_http_target_free(plugin_http_target_t *t) {
  if (t->addrs != NULL) freeaddrinfo(t->addrs);
  t->addrs = NULL;
}

/* Waits until fd is ready for events or the deadline: 1 ready, 0 timed out, -1 error. */
static int wait_fd(int fd, short events, int64_t deadline) {
  for (;;) {
    int64_t left = deadline - now_ms();
    if (left <= 0) return 0;
    struct pollfd p = {.fd = fd, .events = events};
    int n = poll(&p, 1, left > INT32_MAX ? INT32_MAX : (int)left);
    if (n > 0) return 1;
    if (n == 0) return 0;
    if (errno != EINTR) return -1;
  }
}

/* A non-blocking socket connected to u within the deadline, or a negative code. */
static int connect_to(const plugin_http_target_t *u, int64_t deadline, int timeout_ms,
                      plugin_http_response_t *res) {
  int rc = fail(res, CTXD_EIO, "connecting to %s:%s: no address", u->host, u->port), fd = -1;
  for (const struct addrinfo *a = u->addrs; a != NULL && fd < 0; a = a->ai_next) {
    fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) {
      rc = fail(res, CTXD_EIO, "socket: %s", strerror(errno));
      continue;
    }
    if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) break;
    int err = errno, ready = err == EINPROGRESS ? wait_fd(fd, POLLOUT, deadline) : -1;
    socklen_t len = sizeof err;
    if (ready == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0) break;
    close(fd);
    fd = -1;
    if (ready == 0) {
      rc = fail(res, CTXD_ETIMEDOUT, "connecting to %s:%s: no answer within %d ms", u->host, u->port,
                timeout_ms);
      break;
    }
    rc = fail(res, CTXD_EIO, "connecting to %s:%s: %s", u->host, u->port, strerror(err));
  }
  if (fd < 0) return rc;
  res->error[0] = '\0';
  return fd;
}

static int send_all(int fd, const char *p, size_t n, int64_t deadline, int timeout_ms,
                    plugin_http_response_t *res) {
  while (n > 0) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w > 0) {
      p += w;
      n -= (size_t)w;
      continue;
    }
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      int ready = wait_fd(fd, POLLOUT, deadline);
      if (ready == 0) return fail(res, CTXD_ETIMEDOUT, "sending: not taken within %d ms", timeout_ms);
      if (ready < 0) return fail(res, CTXD_EIO, "sending: %s", strerror(errno));
      continue;
    }
    /* reset or closed by the peer: the connection ended before the response did */
    return fail(res, errno == EPIPE || errno == ECONNRESET ? CTXD_ECLOSED : CTXD_EIO, "sending: %s",
                strerror(errno));
  }
  return 0;
}

static int on_body(http_parser *p, const char *at, size_t len) {
  reader_t *r = p->data;
  plugin_http_response_t *res = r->res;
  if (res->body_len + len > PLUGIN_HTTP_MAX_BODY) {
    r->too_big = 1;
    return -1;
  }
  if (res->body_len + len + 1 > r->cap) {
    size_t cap = r->cap ? r->cap : 1024;
    while (cap < res->body_len + len + 1) cap *= 2;
    char *b = realloc(res->body, cap);
    if (b == NULL) return -1;
    res->body = b;
    r->cap = cap;
  }
  memcpy(res->body + res->body_len, at, len);
  res->body_len += len;
  res->body[res->body_len] = '\0';
  return 0;
}

static int on_complete(http_parser *p);

static const http_parser_settings reader_settings = {.on_body = on_body, .on_message_complete = on_complete};

static int on_complete(http_parser *p) {
  reader_t *r = p->data;
  /* 100 Continue, 103 Early Hints...: interim, the final response follows (101 switches
   * protocols: final, and not one this client asked for) */
  if (p->status_code / 100 == 1 && p->status_code != 101)
    r->interim = 1;
  else
    r->complete = 1;
  r->res->status = (int)p->status_code;
  http_parser_pause(p, 1);
  return 0;
}

/* Feeds n bytes to the parser, starting a new response after each interim one. */
static void feed(http_parser *parser, reader_t *r, const char *buf, size_t n) {
  size_t off = 0;
  for (;;) {
    off += http_parser_execute(parser, &reader_settings, buf + off, n - off);
    if (!r->interim) return;
    r->interim = 0;
    r->res->status = 0;
    http_parser_init(parser, HTTP_RESPONSE);
    parser->data = r;
    if (off >= n) return;
  }
}

static int read_response(int fd, int64_t deadline, int timeout_ms, plugin_http_response_t *res) {
  http_parser parser;
  reader_t r = {.res = res};
  http_parser_init(&parser, HTTP_RESPONSE);
  parser.data = &r;
  char buf[4096];
  while (!r.complete) {
    int ready = wait_fd(fd, POLLIN, deadline);
    if (ready == 0) return fail(res, CTXD_ETIMEDOUT, "no complete response within %d ms", timeout_ms);
    if (ready < 0) return fail(res, CTXD_EIO, "receiving: %s", strerror(errno));
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) continue;
    if (n < 0)
      return fail(res, errno == ECONNRESET ? CTXD_ECLOSED : CTXD_EIO, "receiving: %s", strerror(errno));
    /* n == 0 is the end of the stream: http-parser completes a response read to the close */
    feed(&parser, &r, buf, (size_t)n);
    if (r.complete) break;
    if (r.too_big) return fail(res, CTXD_EIO, "response body larger than %d bytes", PLUGIN_HTTP_MAX_BODY);
    if (n == 0) return fail(res, CTXD_ECLOSED, "the connection closed before the response ended");
    if (HTTP_PARSER_ERRNO(&parser) != HPE_OK)
      return fail(res, HTTP_PARSER_ERRNO(&parser) == HPE_CB_body ? CTXD_ENOMEM : CTXD_EIO,
                  "not an HTTP response: %s", http_errno_description(HTTP_PARSER_ERRNO(&parser)));
  }
  if (res->body == NULL) {
    res->body = calloc(1, 1);
    if (res->body == NULL) return fail(res, CTXD_ENOMEM, "out of memory");
  }
  return 0;
}

static int has_line_break(const char *s) { return s != NULL && strpbrk(s, "\r\n") != NULL; }

/* The request head: line, Host, the extra headers, content type and length, as a string
 * open_memstream allocated: the caller frees it (NULL when out of memory). */
static char *request_head(const plugin_http_target_t *u, const char *const *headers, size_t len) {
  char *head = NULL;
  size_t size = 0;
  FILE *f = open_memstream(&head, &size);
  if (f == NULL) return NULL;
  fprintf(f, "POST %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", u->path, u->authority);
  for (size_t i = 0; headers != NULL && headers[i] != NULL && headers[i + 1] != NULL; i += 2)
    fprintf(f, "%s: %s\r\n", headers[i], headers[i + 1]);
  fprintf(f, "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n", len);
  if (fclose(f) != 0) {
    free(head);
    return NULL;
  }
  return head;
}

int plugin_http_post(const plugin_http_target_t *u, const char *const *headers, const char *body, size_t len,
                     int timeout_ms, plugin_http_response_t *res) {
  memset(res, 0, sizeof *res);
  int64_t deadline = now_ms() + (timeout_ms > 0 ? timeout_ms : 1);
  if (u == NULL || u->addrs == NULL) return fail(res, CTXD_EINVAL, "no address to POST to");
  for (size_t i = 0; headers != NULL && headers[i] != NULL; i++)
    if (has_line_break(headers[i])) return fail(res, CTXD_EINVAL, "a header with a line break");
  char *head = request_head(u, headers, len);
  if (head == NULL) return fail(res, CTXD_ENOMEM, "out of memory");
  int fd = connect_to(u, deadline, timeout_ms, res);
  int rc = fd < 0 ? fd : send_all(fd, head, strlen(head), deadline, timeout_ms, res);
  if (rc == 0) rc = send_all(fd, body != NULL ? body : "", body != NULL ? len : 0, deadline, timeout_ms, res);
  if (rc == 0) rc = read_response(fd, deadline, timeout_ms, res);
  if (fd >= 0) close(fd);
  free(head);
  return rc;
}

void plugin_http_response_free(plugin_http_response_t *res) {
  free(res->body);
  res->body = NULL;
  res->body_len = 0;
}
