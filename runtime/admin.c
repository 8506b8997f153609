#include "admin.h"

#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <http_parser.h>

#include <ctxd/errno.h>

#include "log.h"

typedef enum {
  CONN_READING,   /* the request is arriving */
  CONN_DEFERRED,  /* the callback answers later (in progress: never evicted) */
  CONN_WRITING,   /* the response is being written */
  CONN_LINGERING, /* answered and shut down for writing; waiting for the client's EOF */
  CONN_CLOSING
} conn_state_t;

/* The request headers the console reads; each kept once (a repeat is a 400). */
static const char *const kept_headers[] = {"Host",         "Origin",        "Sec-Fetch-Site",
                                           "Content-Type", "Authorization", "X-Ctxd-Operator"};
#define NKEPT (sizeof kept_headers / sizeof kept_headers[0])

typedef struct ctxd__admin_conn_s {
  struct ctxd__admin_conn_s *prev, *next;
  ctxd__admin_t *admin;
  uv_tcp_t tcp;
  uv_timer_t timer;
  uv_write_t write;
  uv_shutdown_t shutdown;
  http_parser parser;
  conn_state_t state;
  int handles;      /* not yet closed; the connection is freed at 0 */
  int complete;     /* http-parser saw the whole request */
  int headers_done; /* http-parser saw the end of the headers: the body is bounded alone */
  int too_large;    /* the body is over CTXD__ADMIN_MAX_BODY */
  int repeated;     /* a kept header came twice */
  int in_value;     /* the last header piece was a value */
  int kept;         /* index in kept_headers of the header being read, or -1 */
  int eof;          /* the client finished sending */
  int head_only;    /* HEAD: the body is measured, not sent */
  int in_callback;  /* the callback runs: a reply now is kept for handle_request */
  int early_status; /* a reply given during the callback, its body in body */
  uint64_t wakeup;  /* the listener's wakeup that accepted it */
  size_t received;
  const char *path, *query; /* in url, once parsed */
  const char *content_type, *extra_headers;
  const char *late;               /* the reason a deferred request past its deadline is answered with */
  uint64_t deadline_ms;           /* a deferred request's; 0: the idle timeout */
  ctxd__admin_pending_t *pending; /* while deferred */
  ctxd__prom_t url, head, body, field, reqbody;
  ctxd__prom_t headers[NKEPT];
} conn_t;

struct ctxd__admin_pending_s {
  conn_t *c; /* NULL once the connection closed: the answer is dropped */
};

struct ctxd__admin_s {
  uv_loop_t *loop;
  /* Accepting is done here, not by uv_listen: on EMFILE libuv either drops the queued
   * connections or, without its reserve descriptor, calls back in a tight loop. Polling
   * the socket ourselves lets a failure pause accepting and leave clients queued. */
  uv_poll_t poll;
  uv_timer_t retry; /* resumes accepting after a failure */
  int fd;           /* the listening socket, closed with the poll handle */
  ctxd__admin_cb cb;
  void *data;
  conn_t *head, *tail; /* in accept order: the oldest first */
  size_t nconns;       /* not yet freed */
  size_t nopen;        /* sockets open (not closing): what max_conns bounds */
  size_t max_conns;
  uint64_t idle_ms;
  uint64_t wakeup;        /* counts the listener's wakeups */
  uint64_t evicted;       /* idle connections closed to make room */
  uint64_t accept_errors; /* failed accepts (the first of a run is logged) */
  uint64_t failing;       /* failures since the last accepted connection */
  int paused;             /* not polling the listener (see pause_accepting) */
  int port;
  int refs; /* the poll and timer handles plus every connection; a is freed at 0 */
  int closing;
  /* One read buffer for all connections: libuv calls alloc, read and the read callback
   * for one stream in a row, so no two reads ever share it. */
  char rbuf[CTXD__ADMIN_MAX_REQUEST];
};

static void resume_accepting(ctxd__admin_t *a);

static void admin_unref(ctxd__admin_t *a) {
  if (--a->refs == 0) free(a);
}

static void listener_closed(uv_handle_t *h) {
  ctxd__admin_t *a = h->data;
  close(a->fd); /* only now: a polled descriptor must not be closed */
  admin_unref(a);
}

static void retry_closed(uv_handle_t *h) { admin_unref(h->data); }

static void conn_closed(uv_handle_t *h) {
  conn_t *c = h->data;
  if (--c->handles > 0) return;
  ctxd__admin_t *a = c->admin;
  if (c->prev)
    c->prev->next = c->next;
  else
    a->head = c->next;
  if (c->next)
    c->next->prev = c->prev;
  else
    a->tail = c->prev;
  a->nconns--;
  ctxd__prom_free(&c->url);
  ctxd__prom_free(&c->head);
  ctxd__prom_free(&c->body);
  ctxd__prom_free(&c->field);
  ctxd__prom_free(&c->reqbody);
  for (size_t i = 0; i < NKEPT; i++) ctxd__prom_free(&c->headers[i]);
  free(c);
  admin_unref(a);
}

/* Idempotent: pending writes and shutdowns get UV_ECANCELED before the close callbacks.
 * The socket is closed now (uv_close does), so its slot is free at once. */
static void conn_close(conn_t *c) {
  if (c->state == CONN_CLOSING) return;
  c->state = CONN_CLOSING;
  if (c->pending != NULL) c->pending->c = NULL; /* its answer, when it comes, is dropped */
  c->pending = NULL;
  uv_close((uv_handle_t *)&c->tcp, conn_closed);
  uv_close((uv_handle_t *)&c->timer, conn_closed);
  ctxd__admin_t *a = c->admin;
  a->nopen--;
  if (a->paused && !a->closing) resume_accepting(a);
}

static void respond_error_why(conn_t *c, int status, const char *why);

/* A deferred request past its deadline is told so; any other connection just closes. */
static void on_timeout(uv_timer_t *t) {
  conn_t *c = t->data;
  if (c->state != CONN_DEFERRED) {
    conn_close(c);
    return;
  }
  c->pending->c = NULL;
  c->pending = NULL;
  respond_error_why(c, 503, c->late);
}

static const char *reason(int status) {
  switch (status) {
  case 200: return "OK";
  case 204: return "No Content";
  case 400: return "Bad Request";
  case 404: return "Not Found";
  case 401: return "Unauthorized";
  case 403: return "Forbidden";
  case 405: return "Method Not Allowed";
  case 413: return "Payload Too Large";
  case 415: return "Unsupported Media Type";
  case 421: return "Misdirected Request";
  case 431: return "Request Header Fields Too Large";
  case 500: return "Internal Server Error";
  case 503: return "Service Unavailable";
  default: return ""; /* HTTP/1.1 allows an empty reason phrase */
  }
}

static void on_shutdown(uv_shutdown_t *req, int status) {
  if (status < 0) conn_close(req->data);
}

static void on_written(uv_write_t *req, int status) {
  conn_t *c = req->data;
  /* written before the connection was closed (the server's close): its callback comes after */
  if (c->state == CONN_CLOSING) return;
  if (status < 0 || c->eof) {
    conn_close(c);
    return;
  }
  /* Closing now would reset the connection if the client sent more than was read (an
   * oversized request), and a reset can destroy the response before the client read it.
   * So: FIN first, then read and discard until the client's EOF or the timer. */
  c->state = CONN_LINGERING;
  if (uv_shutdown(&c->shutdown, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
    conn_close(c);
    return;
  }
  /* idle now: a connection waiting for a slot may take its place */
  ctxd__admin_t *a = c->admin;
  if (a->paused && !a->closing) resume_accepting(a);
}

/* Sends the status line, headers and (unless the request was HEAD) c->body. */
static void respond(conn_t *c, int status) {
  c->state = CONN_WRITING;
  if (ctxd__prom_printf(&c->head,
                        "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s"
                        "Connection: close\r\n\r\n",
                        status, reason(status),
                        c->content_type ? c->content_type : "text/plain; charset=utf-8", c->body.len,
                        c->extra_headers ? c->extra_headers : "") != 0) {
    conn_close(c);
    return;
  }
  uv_buf_t bufs[2] = {uv_buf_init(c->head.buf, (unsigned)c->head.len),
                      uv_buf_init(c->body.buf, (unsigned)c->body.len)};
  unsigned nbufs = c->head_only || c->body.len == 0 ? 1 : 2;
  /* The response gets its own deadline: a client that does not read is dropped. */
  uv_timer_start(&c->timer, on_timeout, c->admin->idle_ms, 0);
  if (uv_write(&c->write, (uv_stream_t *)&c->tcp, bufs, nbufs, on_written) != 0) conn_close(c);
}

/* Answers status with why (NULL: the status's reason phrase): {"error":why} for the API's
 * paths (under /api/), the text elsewhere. why holds no '"' or '\\'. */
static void respond_error_why(conn_t *c, int status, const char *why) {
  int json = c->url.buf != NULL && strncmp(c->url.buf, "/api/", 5) == 0;
  if (why == NULL) why = reason(status);
  c->body.len = 0;
  c->content_type = json ? "application/json; charset=utf-8" : NULL;
  c->extra_headers = status == 405 ? "Allow: GET, HEAD, POST\r\n" : NULL;
  c->head_only = 0;
  if (ctxd__prom_printf(&c->body, json ? "{\"error\":\"%s\"}" : "%s\n", why) != 0) {
    conn_close(c);
    return;
  }
  respond(c, status);
}

static void respond_error(conn_t *c, int status) { respond_error_why(c, status, NULL); }

/* Sends what the callback (or a deferred answer) put in resp, taking its body. */
static void respond_with(conn_t *c, int status, ctxd__admin_resp_t *resp) {
  ctxd__prom_free(&c->body);
  c->body = resp->body;
  resp->body = (ctxd__prom_t){0};
  c->content_type = resp->content_type;
  c->extra_headers = resp->headers;
  if (status < 100 || status > 599) {
    ctxd__log(CTXD__LOG_WARN, "host", "admin: the handler of %s returned status %d", c->path, status);
    respond_error(c, 500);
    return;
  }
  respond(c, status);
}

const char *ctxd__admin_method(const ctxd__admin_req_t *r) { return http_method_str(r->parser.method); }
const char *ctxd__admin_path(const ctxd__admin_req_t *r) { return r->path; }
const char *ctxd__admin_query(const ctxd__admin_req_t *r) { return r->query; }

const char *ctxd__admin_header(const ctxd__admin_req_t *r, const char *name) {
  for (size_t i = 0; i < NKEPT; i++)
    if (strcasecmp(kept_headers[i], name) == 0) return r->headers[i].buf;
  return NULL;
}

const char *ctxd__admin_body(const ctxd__admin_req_t *r, size_t *len) {
  if (len != NULL) *len = r->reqbody.len;
  return r->reqbody.buf != NULL ? r->reqbody.buf : "";
}

ctxd__admin_pending_t *ctxd__admin_defer(ctxd__admin_req_t *c, uint64_t deadline_ms, const char *late) {
  ctxd__admin_pending_t *p = calloc(1, sizeof *p);
  if (p == NULL) return NULL;
  p->c = c;
  c->pending = p;
  c->deadline_ms = deadline_ms;
  c->late = late;
  return p;
}

int ctxd__admin_pending_gone(const ctxd__admin_pending_t *p) { return p->c == NULL; }

void ctxd__admin_reply(ctxd__admin_pending_t *p, int status, ctxd__admin_resp_t *resp) {
  conn_t *c = p->c;
  free(p);
  if (c == NULL) {
    ctxd__prom_free(&resp->body);
    return;
  }
  c->pending = NULL;
  if (c->in_callback) { /* handle_request answers with it once the callback returns */
    ctxd__prom_free(&c->body);
    c->body = resp->body;
    resp->body = (ctxd__prom_t){0};
    c->content_type = resp->content_type;
    c->extra_headers = resp->headers;
    c->early_status = status;
    return;
  }
  respond_with(c, status, resp);
}

static void handle_request(conn_t *c) {
  enum http_method method = (enum http_method)c->parser.method;
  if (method != HTTP_GET && method != HTTP_HEAD && method != HTTP_POST) {
    respond_error(c, 405);
    return;
  }
  if (c->repeated) {
    respond_error(c, 400);
    return;
  }
  struct http_parser_url u;
  http_parser_url_init(&u);
  if (!c->url.buf || http_parser_parse_url(c->url.buf, c->url.len, 0, &u) != 0) {
    respond_error(c, 400);
    return;
  }
  /* The path and the query are cut out of the URL in place; the fragment is dropped. */
  c->path = "/"; /* absolute form without a path: "http://host" */
  c->query = "";
  if (u.field_set & (1 << UF_QUERY)) {
    c->query = c->url.buf + u.field_data[UF_QUERY].off;
    c->url.buf[u.field_data[UF_QUERY].off + u.field_data[UF_QUERY].len] = '\0';
  }
  if (u.field_set & (1 << UF_PATH)) {
    c->path = c->url.buf + u.field_data[UF_PATH].off;
    c->url.buf[u.field_data[UF_PATH].off + u.field_data[UF_PATH].len] = '\0';
  }
  if (c->path[0] != '/') { /* "*", which http-parser lets through as a path */
    respond_error(c, 400);
    return;
  }
  c->head_only = method == HTTP_HEAD;
  ctxd__admin_t *a = c->admin;
  ctxd__admin_resp_t resp = {0};
  c->in_callback = 1;
  int status = a->cb(a->data, c, &resp);
  c->in_callback = 0;
  if (status == CTXD__ADMIN_DEFERRED && c->early_status != 0) { /* deferred and answered at once */
    ctxd__prom_free(&resp.body);
    resp =
        (ctxd__admin_resp_t){.body = c->body, .content_type = c->content_type, .headers = c->extra_headers};
    c->body = (ctxd__prom_t){0};
    status = c->early_status;
  } else if (status == CTXD__ADMIN_DEFERRED && c->pending != NULL) {
    ctxd__prom_free(&resp.body);
    c->state = CONN_DEFERRED;
    /* the answer gets a deadline of its own */
    uv_timer_start(&c->timer, on_timeout, c->deadline_ms > 0 ? c->deadline_ms : a->idle_ms, 0);
    return;
  }
  if (c->pending != NULL) { /* deferred, yet answered now: the late answer is dropped */
    c->pending->c = NULL;
    c->pending = NULL;
  }
  respond_with(c, status, &resp);
}

static int on_url(http_parser *p, const char *at, size_t len) {
  conn_t *c = p->data;
  return ctxd__prom_append(&c->url, at, len) == 0 ? 0 : -1;
}

static int on_message_complete(http_parser *p) {
  conn_t *c = p->data;
  c->complete = 1;
  /* One request per connection: whatever the client pipelined after it is ignored. */
  http_parser_pause(p, 1);
  return 0;
}

/* A header name may come in pieces; a value's first piece ends it. */
static int on_header_field(http_parser *p, const char *at, size_t len) {
  conn_t *c = p->data;
  if (c->headers_done) return 0; /* a chunked body's trailer: not a request header */
  if (c->in_value) c->field.len = 0;
  c->in_value = 0;
  return ctxd__prom_append(&c->field, at, len) == 0 ? 0 : -1;
}

static int on_header_value(http_parser *p, const char *at, size_t len) {
  conn_t *c = p->data;
  if (c->headers_done) return 0;
  if (!c->in_value) {
    c->in_value = 1;
    c->kept = -1;
    for (size_t i = 0; c->field.buf != NULL && i < NKEPT; i++)
      if (strcasecmp(kept_headers[i], c->field.buf) == 0) c->kept = (int)i;
    if (c->kept >= 0 && c->headers[c->kept].buf != NULL) c->repeated = 1;
    /* an empty value still counts as present */
    if (c->kept >= 0 && ctxd__prom_append(&c->headers[c->kept], "", 0) != 0) return -1;
  }
  return c->kept < 0 || ctxd__prom_append(&c->headers[c->kept], at, len) == 0 ? 0 : -1;
}

/* A declared length over the bound is refused before any of the body is read. */
static int on_headers_complete(http_parser *p) {
  conn_t *c = p->data;
  c->headers_done = 1;
  /* a value's trailing blanks are not part of it (RFC 9110, 5.5); http-parser keeps them */
  for (size_t i = 0; i < NKEPT; i++) {
    ctxd__prom_t *v = &c->headers[i];
    while (v->len > 0 && (v->buf[v->len - 1] == ' ' || v->buf[v->len - 1] == '\t')) v->buf[--v->len] = '\0';
  }
  if ((p->flags & F_CONTENTLENGTH) && p->content_length > CTXD__ADMIN_MAX_BODY) {
    c->too_large = 1;
    return -1;
  }
  return 0;
}

static int on_body(http_parser *p, const char *at, size_t len) {
  conn_t *c = p->data;
  if (c->reqbody.len + len > CTXD__ADMIN_MAX_BODY) {
    c->too_large = 1;
    return -1;
  }
  return ctxd__prom_append(&c->reqbody, at, len) == 0 ? 0 : -1;
}

static const http_parser_settings parser_settings = {
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)suggested;
  conn_t *c = h->data;
  *buf = uv_buf_init(c->admin->rbuf, sizeof c->admin->rbuf);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  conn_t *c = s->data;
  if (nread == UV_EOF) {
    c->eof = 1;
    if (c->state == CONN_READING && c->received > 0)
      respond_error(c, 400); /* cut short */
    else if (c->state != CONN_WRITING && c->state != CONN_DEFERRED)
      conn_close(c); /* on_written closes; so does a deferred request's, answered (or its deadline) */
    return;
  }
  if (nread < 0) {
    conn_close(c);
    return;
  }
  /* nread == 0 is libuv's "try again"; it must not reach http-parser, where it means EOF.
   * Past the request, data is discarded (see on_written). */
  if (nread == 0 || c->state != CONN_READING) return;
  const char *at = buf->base;
  size_t left = (size_t)nread;
  /* The request line and headers are bounded by CTXD__ADMIN_MAX_REQUEST, the body by
   * CTXD__ADMIN_MAX_BODY (on_body): once the headers ended, the rest of a read is the body's. */
  while (left > 0 && !c->complete) {
    size_t room = c->headers_done ? left : CTXD__ADMIN_MAX_REQUEST - c->received;
    size_t n = left < room ? left : room;
    if (n == 0) break;
    http_parser_execute(&c->parser, &parser_settings, at, n);
    c->received += n;
    at += n;
    left -= n;
    if (HTTP_PARSER_ERRNO(&c->parser) != HPE_OK) break;
  }
  if (c->too_large)
    respond_error(c, 413);
  else if (c->complete)
    handle_request(c);
  else if (HTTP_PARSER_ERRNO(&c->parser) != HPE_OK)
    respond_error(c, 400);
  else if (!c->headers_done && c->received == CTXD__ADMIN_MAX_REQUEST)
    respond_error(c, 431);
}

static void on_retry(uv_timer_t *t) { resume_accepting(t->data); }

/* Stops polling the listener: connections wait in the kernel's queue. A closing
 * connection resumes (its slot or descriptor is free), and so does the retry timer when
 * retry is set (the shortage lies elsewhere: descriptors or memory). */
static void pause_accepting(ctxd__admin_t *a, int retry) {
  a->paused = 1;
  uv_poll_stop(&a->poll);
  if (retry) uv_timer_start(&a->retry, on_retry, CTXD__ADMIN_ACCEPT_RETRY_MS, 0);
}

/* Logs the first failure of a run only: a host out of descriptors must not also flood its
 * log. Accepting pauses, so a failure costs one system call per retry, not a busy loop. */
static void accept_failed(ctxd__admin_t *a, const char *what) {
  a->accept_errors++;
  if (a->failing++ == 0)
    ctxd__log(CTXD__LOG_ERROR, "host",
              "admin: cannot accept connections: %s; they wait in the listen queue, retrying every %d ms "
              "(logged once until a connection is accepted)",
              what, CTXD__ADMIN_ACCEPT_RETRY_MS);
  pause_accepting(a, 1);
}

/* 1 when the client sent bytes the loop has not read yet. */
static int request_waiting(conn_t *c) {
  uv_os_fd_t fd;
  int n = 0;
  return uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0 && ioctl(fd, FIONREAD, &n) == 0 && n > 0;
}

/* No request in progress: answered and lingering, or nothing received, not even unread. */
static int conn_idle(conn_t *c) {
  return c->state == CONN_LINGERING || (c->state == CONN_READING && c->received == 0 && !request_waiting(c));
}

/* The connection idle the longest (the earliest accepted of the idle ones), or NULL. One
 * accepted in this wakeup is never taken: its client had no time to send. *young tells
 * whether such a one was what stopped the search. */
static conn_t *idle_longest(ctxd__admin_t *a, int *young) {
  *young = 0;
  for (conn_t *c = a->head; c; c = c->next) {
    if (!conn_idle(c)) continue;
    if (c->wakeup != a->wakeup) return c;
    *young = 1; /* the rest are younger still */
    return NULL;
  }
  return NULL;
}

/* Takes over socket fd as connection c. */
static void conn_open(ctxd__admin_t *a, conn_t *c, int fd) {
  c->admin = a;
  c->wakeup = a->wakeup;
  /* Neither init can fail: no socket is created (AF_UNSPEC), no flags are given. */
  uv_tcp_init(a->loop, &c->tcp);
  uv_timer_init(a->loop, &c->timer);
  c->tcp.data = c->timer.data = c->write.data = c->shutdown.data = c;
  c->handles = 2;
  http_parser_init(&c->parser, HTTP_REQUEST);
  c->parser.data = c;
  c->prev = a->tail;
  if (a->tail)
    a->tail->next = c;
  else
    a->head = c;
  a->tail = c;
  a->nconns++;
  a->nopen++;
  a->refs++;
  if (uv_tcp_open(&c->tcp, fd) != 0) {
    close(fd); /* the handle took it only on success */
    conn_close(c);
    return;
  }
  if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0 ||
      uv_timer_start(&c->timer, on_timeout, a->idle_ms, 0) != 0)
    conn_close(c);
}

/* Accepts until the queue is empty. At max_conns, a new connection takes the slot of the
 * one idle the longest, which is closed once the new one is in hand (so a slot is never
 * given up for nothing). When every slot holds a request in progress, accepting pauses
 * until one closes (their deadlines bound that). */
static void on_listen(uv_poll_t *p, int status, int events) {
  (void)events;
  ctxd__admin_t *a = p->data;
  if (status < 0) {
    accept_failed(a, uv_strerror(status));
    return;
  }
  a->wakeup++;
  for (;;) {
    conn_t *victim = NULL;
    int young = 0;
    if (a->nopen >= a->max_conns && (victim = idle_longest(a, &young)) == NULL) {
      /* young ones: the poll is level-triggered, so the next loop iteration (their reads
       * first) comes back here */
      if (!young) pause_accepting(a, 0);
      return;
    }
    conn_t *c = calloc(1, sizeof *c);
    if (!c) {
      accept_failed(a, "out of memory");
      return;
    }
    int fd = accept4(a->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      int e = errno;
      free(c);
      if (e == EINTR || e == ECONNABORTED) continue;
      if (e != EAGAIN && e != EWOULDBLOCK) accept_failed(a, strerror(e));
      return;
    }
    if (a->failing > 0) {
      ctxd__log(CTXD__LOG_INFO, "host", "admin: accepting connections again after %llu failed attempts",
                (unsigned long long)a->failing);
      a->failing = 0;
    }
    if (victim) {
      a->evicted++;
      conn_close(victim);
    }
    conn_open(a, c, fd);
  }
}

static void resume_accepting(ctxd__admin_t *a) {
  if (!a->paused || a->closing) return;
  a->paused = 0;
  uv_timer_stop(&a->retry);
  if (uv_poll_start(&a->poll, UV_READABLE, on_listen) != 0) pause_accepting(a, 1);
}

int ctxd__admin_address_parse(const char *s, struct sockaddr_storage *ss) {
  const char *host = s, *host_end, *colon;
  int v6 = s[0] == '[';
  if (v6) {
    host++;
    host_end = strchr(host, ']');
    if (!host_end || host_end[1] != ':') return CTXD_EINVAL;
    colon = host_end + 1;
  } else {
    colon = strchr(s, ':');
    host_end = colon;
    if (!colon || strchr(colon + 1, ':')) return CTXD_EINVAL;
  }
  char name[64];
  size_t len = (size_t)(host_end - host);
  if (len == 0 || len >= sizeof name) return CTXD_EINVAL;
  memcpy(name, host, len);
  name[len] = '\0';
  unsigned port = 0;
  const char *p = colon + 1;
  if (!*p) return CTXD_EINVAL;
  for (; *p; p++) {
    if (*p < '0' || *p > '9') return CTXD_EINVAL;
    port = port * 10 + (unsigned)(*p - '0');
    if (port > 65535) return CTXD_EINVAL;
  }
  memset(ss, 0, sizeof *ss);
  return (v6 ? uv_ip6_addr(name, (int)port, (struct sockaddr_in6 *)ss)
             : uv_ip4_addr(name, (int)port, (struct sockaddr_in *)ss)) == 0
             ? 0
             : CTXD_EINVAL;
}

/* A listening socket bound to ss, its port in *port; the fd, or -1 with errno set.
 * Binding outside libuv means every likely failure (address in use, no permission)
 * happens before a handle exists, so a failed start leaves nothing on the loop. */
static int listen_socket(const struct sockaddr_storage *ss, int *port) {
  int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  int on = 1;
  struct sockaddr_storage bound;
  socklen_t blen = sizeof bound;
  socklen_t slen = ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
  /* SO_REUSEADDR: a restarted host rebinds while old connections sit in TIME_WAIT. */
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) != 0 ||
      bind(fd, (const struct sockaddr *)ss, slen) != 0 || listen(fd, SOMAXCONN) != 0 ||
      getsockname(fd, (struct sockaddr *)&bound, &blen) != 0) {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  *port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                            : ((struct sockaddr_in *)&bound)->sin_port);
  return fd;
}

/* libuv writes with writev(), so a client leaving mid-response would raise SIGPIPE and
 * kill the process; ignored, the write fails with EPIPE instead. A handler the process
 * installed itself is left alone. */
static void ignore_sigpipe(void) {
  struct sigaction sa;
  if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL) signal(SIGPIPE, SIG_IGN);
}

int ctxd__admin_start(uv_loop_t *loop, const char *listen, ctxd__admin_cb cb, void *data, ctxd__admin_t **out,
                      char *err, size_t errlen) {
  struct sockaddr_storage ss;
  if (ctxd__admin_address_parse(listen, &ss) != 0) {
    snprintf(err, errlen, "admin listen address '%s': expected " CTXD__ADMIN_ADDRESS_EXPECTED, listen);
    return CTXD_EINVAL;
  }
  ctxd__admin_t *a = calloc(1, sizeof *a);
  if (!a) {
    snprintf(err, errlen, "admin: out of memory");
    return CTXD_ENOMEM;
  }
  int fd = listen_socket(&ss, &a->port);
  if (fd < 0) {
    snprintf(err, errlen, "admin: cannot listen on %s: %s", listen, strerror(errno));
    free(a);
    return CTXD_EIO;
  }
  a->loop = loop;
  a->fd = fd;
  a->cb = cb;
  a->data = data;
  a->idle_ms = CTXD__ADMIN_IDLE_TIMEOUT_MS;
  a->max_conns = CTXD__ADMIN_MAX_CONNECTIONS;
  int rc = uv_poll_init_socket(loop, &a->poll, fd);
  if (rc != 0) { /* not expected on a fresh socket; nothing is on the loop yet */
    snprintf(err, errlen, "admin: cannot listen on %s: %s", listen, uv_strerror(rc));
    close(fd);
    free(a);
    return CTXD_EIO;
  }
  uv_timer_init(loop, &a->retry); /* cannot fail */
  a->poll.data = a->retry.data = a;
  a->refs = 2;
  a->paused = 1;
  resume_accepting(a); /* on failure, the retry timer tries again */
  ignore_sigpipe();
  *out = a;
  return 0;
}

int ctxd__admin_port(const ctxd__admin_t *a) { return a->port; }

size_t ctxd__admin_connections(const ctxd__admin_t *a) { return a->nconns; }

void ctxd__admin_stats(const ctxd__admin_t *a, ctxd__admin_stats_t *out) {
  *out = (ctxd__admin_stats_t){.open = a->nopen, .evicted = a->evicted, .accept_errors = a->accept_errors};
}

void ctxd__admin_set_idle_timeout(ctxd__admin_t *a, uint64_t ms) { a->idle_ms = ms; }

void ctxd__admin_set_max_connections(ctxd__admin_t *a, size_t n) {
  a->max_conns = n > 0 ? n : 1;
  resume_accepting(a); /* a larger bound may have room now */
}

void ctxd__admin_close(ctxd__admin_t *a) {
  a->closing = 1;
  uv_close((uv_handle_t *)&a->poll, listener_closed);
  uv_close((uv_handle_t *)&a->retry, retry_closed);
  for (conn_t *c = a->head; c; c = c->next) conn_close(c);
}
