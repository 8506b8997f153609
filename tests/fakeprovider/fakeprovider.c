/* A fake SMS provider and voucher issuing system for tests and the demo: an HTTP/1.1
 * server on 127.0.0.1.
 *
 *   POST /sms      header Idempotency-Key (required), any body: accepted once per key; a
 *                  repeated key gets the first answer again (200 {"id":..., "duplicate":true})
 *   POST /benefits the same for vouchers and red packets (ids "benefit-N" instead of "sms-N")
 *   GET /sms       {"requests": N, "messages": [{"key", "id", "body", "hits"}, ...]}: every
 *                  accepted message of both, with how many POSTs carried its key
 *   POST /control  {"mode": "fail" | "refuse" | "timeout" | "drop" | "hold" | "ok", "count": N,
 *                  "ms": M, "status": S}: the next N POSTs fail with S (default 500: a passing
 *                  failure), are refused for good with 422 (a business refusal: "refuse"), are
 *                  held open and never answered, are accepted and then the connection is
 *                  closed without an answer, or are accepted and answered (200) only M ms
 *                  later (hold; M defaults to 1000)
 *
 * Usage: ctxd_fakeprovider [port]   (0 or none: a free port). Prints "listening on PORT" to
 * stderr once it accepts connections; stops on SIGTERM or SIGINT. One request per
 * connection (the answer says Connection: close). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <http_parser.h>
#include <jansson.h>
#include <uv.h>

#define MAX_BODY (64 * 1024)

typedef enum { MODE_OK, MODE_FAIL, MODE_REFUSE, MODE_TIMEOUT, MODE_DROP, MODE_HOLD } fake_mode_t;

static struct {
  json_t *messages; /* array of {"key", "id", "body", "hits"} */
  long requests;    /* POSTs received */
  fake_mode_t mode;
  long mode_count;
  long hold_ms;     /* MODE_HOLD's delay */
  long fail_status; /* MODE_FAIL's status */
  uv_tcp_t server;
  uv_signal_t sigterm, sigint;
} g;

typedef struct {
  uv_tcp_t tcp;
  http_parser parser;
  char url[256];
  char header[64];   /* the header being read, lowercased (fragments appended) */
  char key[256];     /* Idempotency-Key */
  int header_is_key; /* the current header's value goes to key */
  int in_value;      /* the last callback was a header value: a field fragment starts a new one */
  int too_long;      /* the URL, a header name or the key did not fit: answered 431 */
  char *body;
  size_t body_len;
  int done;
  uv_timer_t hold; /* MODE_HOLD: answers `held` when it fires */
  json_t *held;
  int handles; /* open handles (tcp, hold): freed when the last one closed */
} conn_t;

static void on_closed(uv_handle_t *h) {
  conn_t *c = h->data;
  if (--c->handles > 0) return;
  json_decref(c->held);
  free(c->body);
  free(c);
}

static void close_conn(conn_t *c) {
  if (!uv_is_closing((uv_handle_t *)&c->tcp)) uv_close((uv_handle_t *)&c->tcp, on_closed);
  if (c->handles == 2 && !uv_is_closing((uv_handle_t *)&c->hold))
    uv_close((uv_handle_t *)&c->hold, on_closed);
}

typedef struct {
  uv_write_t req;
  conn_t *conn;
  char *text;
} write_t;

static void on_written(uv_write_t *w, int status) {
  (void)status;
  write_t *wr = (write_t *)w;
  close_conn(wr->conn);
  free(wr->text);
  free(wr);
}

static void reply(conn_t *c, int status, const char *body) {
  write_t *w = calloc(1, sizeof *w);
  size_t n = strlen(body);
  w->text = malloc(n + 256);
  w->conn = c;
  int len = snprintf(w->text, n + 256,
                     "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n%s",
                     status,
                     status == 200   ? "OK"
                     : status == 404 ? "Not Found"
                     : status == 400 ? "Bad Request"
                     : status == 431 ? "Request Header Fields Too Large"
                     : status == 422 ? "Unprocessable Content"
                                     : "Error",
                     n, body);
  uv_buf_t buf = uv_buf_init(w->text, (unsigned)len);
  uv_write(&w->req, (uv_stream_t *)&c->tcp, &buf, 1, on_written);
}

static void reply_json(conn_t *c, int status, json_t *j) {
  char *text = json_dumps(j, JSON_COMPACT);
  json_decref(j);
  reply(c, status, text != NULL ? text : "{}");
  free(text);
}

static json_t *find(const char *key) {
  size_t i;
  json_t *m;
  json_array_foreach(g.messages, i,
                     m) if (strcmp(json_string_value(json_object_get(m, "key")), key) == 0) return m;
  return NULL;
}

/* The mode for the next POST (and uses one of its count). */
static fake_mode_t next_mode(void) {
  if (g.mode == MODE_OK || g.mode_count <= 0) return MODE_OK;
  if (--g.mode_count == 0) {
    fake_mode_t m = g.mode;
    g.mode = MODE_OK;
    return m;
  }
  return g.mode;
}

static void on_hold(uv_timer_t *t) {
  conn_t *c = t->data;
  json_t *answer = c->held;
  c->held = NULL;
  if (!uv_is_closing((uv_handle_t *)&c->tcp))
    reply_json(c, 200, answer);
  else
    json_decref(answer);
}

/* POST /sms or /benefits: `kind` names the ids ("sms", "benefit"). */
static void post_message(conn_t *c, const char *kind) {
  g.requests++;
  if (c->key[0] == '\0') {
    reply(c, 400, "{\"error\":\"Idempotency-Key header missing\"}");
    return;
  }
  fake_mode_t mode = next_mode();
  if (mode == MODE_FAIL) {
    reply(c, (int)g.fail_status, "{\"error\":\"the test asked for a failure\"}");
    return;
  }
  if (mode == MODE_REFUSE) {
    reply(c, 422, "{\"error\":\"the test asked for a refusal\"}");
    return;
  }
  if (mode == MODE_TIMEOUT) return; /* held open: the client's time-out ends it */
  json_t *m = find(c->key);
  int duplicate = m != NULL;
  if (m == NULL) {
    char id[32];
    snprintf(id, sizeof id, "%s-%zu", kind, json_array_size(g.messages) + 1);
    m = json_pack("{s:s, s:s, s:s%, s:i}", "key", c->key, "id", id, "body", c->body != NULL ? c->body : "",
                  c->body_len, "hits", 0);
    if (m == NULL) {
      reply(c, 400, "{\"error\":\"the key or the body is not valid UTF-8\"}");
      return;
    }
    json_array_append_new(g.messages, m);
  }
  json_object_set_new(m, "hits", json_integer(json_integer_value(json_object_get(m, "hits")) + 1));
  fprintf(stderr, "fakeprovider: POST %s key %s%s\n", c->url, c->key, duplicate ? " (duplicate)" : "");
  if (mode == MODE_DROP) {
    close_conn(c); /* accepted, but the caller never hears of it */
    return;
  }
  json_t *answer = json_pack("{s:O, s:b}", "id", json_object_get(m, "id"), "duplicate", duplicate);
  if (mode == MODE_HOLD) {
    /* accepted; the answer waits (a caller killed meanwhile never hears of it) */
    c->held = answer;
    uv_timer_init(c->tcp.loop, &c->hold);
    c->hold.data = c;
    c->handles++;
    uv_timer_start(&c->hold, on_hold, (uint64_t)g.hold_ms, 0);
    return;
  }
  reply_json(c, 200, answer);
}

static void post_control(conn_t *c) {
  json_t *j = c->body != NULL ? json_loadb(c->body, c->body_len, 0, NULL) : NULL;
  const char *mode = json_string_value(json_object_get(j, "mode"));
  json_int_t count = json_integer_value(json_object_get(j, "count"));
  int ok = mode != NULL;
  if (ok && strcmp(mode, "fail") == 0)
    g.mode = MODE_FAIL;
  else if (ok && strcmp(mode, "refuse") == 0)
    g.mode = MODE_REFUSE;
  else if (ok && strcmp(mode, "timeout") == 0)
    g.mode = MODE_TIMEOUT;
  else if (ok && strcmp(mode, "drop") == 0)
    g.mode = MODE_DROP;
  else if (ok && strcmp(mode, "hold") == 0)
    g.mode = MODE_HOLD;
  else if (ok && strcmp(mode, "ok") == 0)
    g.mode = MODE_OK;
  else
    ok = 0;
  if (ok) g.mode_count = count > 0 ? (long)count : 1;
  json_int_t ms = json_integer_value(json_object_get(j, "ms"));
  if (ok) g.hold_ms = ms > 0 ? (long)ms : 1000;
  json_int_t status = json_integer_value(json_object_get(j, "status"));
  if (ok) g.fail_status = status >= 400 && status <= 599 ? (long)status : 500;
  json_decref(j);
  reply(c, ok ? 200 : 400, ok ? "{}" : "{\"error\":\"expected {\\\"mode\\\": ..., \\\"count\\\": N}\"}");
}

/* Appends at[0..len) (lowercased if asked) to the string buf (cap bytes); 0, or -1 when
 * it does not fit (buf unchanged). Fragments of one element arrive in several calls. */
static int append(char *buf, size_t cap, const char *at, size_t len, int lower) {
  size_t have = strlen(buf);
  if (have + len >= cap) return -1;
  for (size_t i = 0; i < len; i++)
    buf[have + i] = (char)(lower && at[i] >= 'A' && at[i] <= 'Z' ? at[i] + 32 : at[i]);
  buf[have + len] = '\0';
  return 0;
}

static int on_url(http_parser *p, const char *at, size_t len) {
  conn_t *c = p->data;
  if (append(c->url, sizeof c->url, at, len, 0) != 0) c->too_long = 1;
  return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len) {
  conn_t *c = p->data;
  if (c->in_value) c->header[0] = '\0'; /* a new header */
  c->in_value = 0;
  /* a name longer than the buffer is no header this server reads: it can never match */
  if (append(c->header, sizeof c->header, at, len, 1) != 0) snprintf(c->header, sizeof c->header, "\x7f");
  return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len) {
  conn_t *c = p->data;
  if (!c->in_value) c->header_is_key = strcmp(c->header, "idempotency-key") == 0;
  c->in_value = 1;
  if (c->header_is_key && append(c->key, sizeof c->key, at, len, 0) != 0) c->too_long = 1;
  return 0;
}

static int on_body(http_parser *p, const char *at, size_t len) {
  conn_t *c = p->data;
  if (c->body_len + len > MAX_BODY) return 1;
  char *b = realloc(c->body, c->body_len + len + 1);
  if (b == NULL) return 1;
  memcpy(b + c->body_len, at, len);
  c->body = b;
  c->body_len += len;
  c->body[c->body_len] = '\0';
  return 0;
}

static int on_message_complete(http_parser *p) {
  conn_t *c = p->data;
  c->done = 1;
  int post = p->method == HTTP_POST;
  if (c->too_long) {
    reply(c, 431, "{\"error\":\"the URL or the Idempotency-Key is too long\"}");
  } else if (post && strcmp(c->url, "/sms") == 0) {
    post_message(c, "sms");
  } else if (post && strcmp(c->url, "/benefits") == 0) {
    post_message(c, "benefit");
  } else if (p->method == HTTP_GET && strcmp(c->url, "/sms") == 0) {
    reply_json(c, 200, json_pack("{s:I, s:O}", "requests", (json_int_t)g.requests, "messages", g.messages));
  } else if (post && strcmp(c->url, "/control") == 0) {
    post_control(c);
  } else {
    reply(c, 404, "{\"error\":\"try POST /sms, POST /benefits, GET /sms or POST /control\"}");
  }
  return 0;
}

static const http_parser_settings settings = {.on_url = on_url,
                                              .on_header_field = on_header_field,
                                              .on_header_value = on_header_value,
                                              .on_body = on_body,
                                              .on_message_complete = on_message_complete};

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)h;
  buf->base = malloc(suggested);
  buf->len = buf->base != NULL ? suggested : 0;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  conn_t *c = s->data;
  if (n > 0 && !c->done) {
    size_t parsed = http_parser_execute(&c->parser, &settings, buf->base, (size_t)n);
    if (parsed != (size_t)n && !c->done) {
      c->done = 1; /* answered once: later reads are dropped */
      reply(c, 400, "{\"error\":\"malformed request\"}");
    }
  } else if (n < 0) {
    close_conn(c);
  }
  free(buf->base);
}

static void on_connection(uv_stream_t *server, int status) {
  if (status < 0) return;
  conn_t *c = calloc(1, sizeof *c);
  c->handles = 1;
  uv_tcp_init(server->loop, &c->tcp);
  c->tcp.data = c;
  if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
    close_conn(c);
    return;
  }
  http_parser_init(&c->parser, HTTP_REQUEST);
  c->parser.data = c;
  uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static void close_any(uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h)) uv_close(h, h->data == NULL || h == (uv_handle_t *)&g.server ? NULL : on_closed);
}

static void on_signal(uv_signal_t *s, int sig) {
  (void)sig;
  uv_walk(s->loop, close_any, NULL);
}

int main(int argc, char **argv) {
  int port = argc > 1 ? atoi(argv[1]) : 0;
  signal(SIGPIPE, SIG_IGN);
  g.messages = json_array();
  uv_loop_t *loop = uv_default_loop();
  uv_tcp_init(loop, &g.server);
  struct sockaddr_in addr;
  uv_ip4_addr("127.0.0.1", port, &addr);
  int rc = uv_tcp_bind(&g.server, (const struct sockaddr *)&addr, 0);
  if (rc == 0) rc = uv_listen((uv_stream_t *)&g.server, 128, on_connection);
  if (rc != 0) {
    fprintf(stderr, "fakeprovider: cannot listen on port %d: %s\n", port, uv_strerror(rc));
    return 1;
  }
  struct sockaddr_in bound;
  int len = sizeof bound;
  uv_tcp_getsockname(&g.server, (struct sockaddr *)&bound, &len);
  uv_signal_init(loop, &g.sigterm);
  uv_signal_init(loop, &g.sigint);
  uv_signal_start(&g.sigterm, on_signal, SIGTERM);
  uv_signal_start(&g.sigint, on_signal, SIGINT);
  fprintf(stderr, "fakeprovider: listening on %d\n", ntohs(bound.sin_port));
  uv_run(loop, UV_RUN_DEFAULT);
  uv_loop_close(loop);
  json_decref(g.messages);
  return 0;
}
