/* The admin endpoint: a small HTTP/1.1 server on the loop for health checks, metrics and
 * the operator console. One request per connection (answered with Content-Length and
 * "Connection: close"), parsed by http-parser. GET, HEAD and POST reach the callback;
 * other methods get 405, a malformed request 400, a request line and headers over
 * CTXD__ADMIN_MAX_REQUEST bytes 431, a body over CTXD__ADMIN_MAX_BODY bytes 413. A
 * connection gets the idle timeout to deliver its request, and again to take its
 * response, then it is closed. Every function here runs on the loop's thread.
 *
 * The callback may defer its answer (work on libuv's thread pool, say): the request is
 * then in progress, never evicted as idle, and gets a deadline for its answer (the
 * callback's choice), after which it is answered 503. A connection closed or timed out
 * meanwhile drops the late answer; a client that only finished sending (half-closed)
 * still gets it. Errors of the server itself (400, 405, 413, 431, a deadline's 503) are
 * {"error":...} JSON under /api/, text elsewhere. Request headers' trailing blanks are
 * trimmed; a chunked body's trailers are ignored. Starting the server sets
 * SIGPIPE to SIG_IGN unless the process handles it already (libuv writes with writev).
 *
 * Descriptors are bounded: at most max_connections sockets are open (one more for the
 * instant a new one takes an old one's place). A new connection at the bound closes the
 * one idle the longest (no request in progress: nothing received, or answered), so a
 * fresh probe is served however many idle clients hold connections. When every slot holds
 * a request in progress, or accepting fails (EMFILE, ENFILE, out of memory), accepting
 * pauses and new connections wait in the kernel's listen queue: a closing connection or
 * a retry every CTXD__ADMIN_ACCEPT_RETRY_MS resumes it. A run of failures is logged once. */
#ifndef CTXD_RUNTIME_ADMIN_H
#define CTXD_RUNTIME_ADMIN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <uv.h>

#include "metrics.h"

#define CTXD__ADMIN_MAX_REQUEST 8192
#define CTXD__ADMIN_MAX_BODY 65536
#define CTXD__ADMIN_IDLE_TIMEOUT_MS 5000
#define CTXD__ADMIN_MAX_CONNECTIONS 128
#define CTXD__ADMIN_ACCEPT_RETRY_MS 500

typedef struct ctxd__admin_s ctxd__admin_t;

/* A request while the callback runs (borrowed for the call). */
typedef struct ctxd__admin_conn_s ctxd__admin_req_t;

/* "GET", "HEAD" or "POST". */
const char *ctxd__admin_method(const ctxd__admin_req_t *r);
/* The request target's path, not percent-decoded; never NULL. */
const char *ctxd__admin_path(const ctxd__admin_req_t *r);
/* The query string without '?', not decoded; "" when there is none. */
const char *ctxd__admin_query(const ctxd__admin_req_t *r);
/* The value of header name, or NULL when absent. Only the headers the console needs are
 * kept (Host, Origin, Sec-Fetch-Site, Content-Type, Authorization, X-Ctxd-Operator; any
 * other name gives NULL); a repeated one of them makes the request a 400. */
const char *ctxd__admin_header(const ctxd__admin_req_t *r, const char *name);
/* The body (at most CTXD__ADMIN_MAX_BODY bytes, NUL-terminated; "" when none). */
const char *ctxd__admin_body(const ctxd__admin_req_t *r, size_t *len);

/* What the callback answers. content_type and headers must live until the response is
 * written (string constants): NULL type is "text/plain; charset=utf-8"; headers are extra
 * header lines, each ending in "\r\n", or NULL. */
typedef struct {
  ctxd__prom_t body; /* owned by the server */
  const char *content_type;
  const char *headers;
} ctxd__admin_resp_t;

/* What a callback returns after ctxd__admin_defer. */
#define CTXD__ADMIN_DEFERRED 0

/* Answers one request, on the loop's thread, so it must be quick: it fills resp and
 * returns the HTTP status (anything outside 100..599 but CTXD__ADMIN_DEFERRED is answered
 * as 500), or defers. For HEAD the body is measured but not sent. Must not call
 * ctxd__admin_close. */
typedef int (*ctxd__admin_cb)(void *data, ctxd__admin_req_t *req, ctxd__admin_resp_t *resp);

typedef struct ctxd__admin_pending_s ctxd__admin_pending_t;

/* Called by the callback to answer later: returns a handle (new; ctxd__admin_reply frees
 * it, and must be called exactly once, on the loop's thread) and the callback returns
 * CTXD__ADMIN_DEFERRED; NULL when out of memory (then answer now). A reply given before
 * the callback returned is sent once it has. The answer is due within deadline_ms (0: the
 * idle timeout); past it the request is answered 503 with late (a string constant without
 * '"' or '\\'; NULL: the reason phrase) and the reply is dropped. The request's accessors
 * are valid only during the callback: copy what the answer needs. */
ctxd__admin_pending_t *ctxd__admin_defer(ctxd__admin_req_t *req, uint64_t deadline_ms, const char *late);

/* 1 when a deferred request's answer would be dropped (its connection closed or its
 * deadline passed): the work for it may be skipped. */
int ctxd__admin_pending_gone(const ctxd__admin_pending_t *p);

/* Answers a deferred request with status and resp (its body is taken, left empty), or
 * drops the answer when the connection closed or timed out meanwhile; frees p. Valid
 * after ctxd__admin_close too. */
void ctxd__admin_reply(ctxd__admin_pending_t *p, int status, ctxd__admin_resp_t *resp);

/* What ctxd__admin_address_parse takes, for error messages. */
#define CTXD__ADMIN_ADDRESS_EXPECTED "a numeric a.b.c.d:PORT or [IPv6]:PORT with PORT 0-65535"

/* Parses an admin listen address: "a.b.c.d:port" or "[IPv6]:port", port 0-65535 (0 picks
 * a free one when bound). Host names are refused, not resolved (a name may stand for
 * several addresses). This is the one rule for admin.listen: the config loader checks with
 * it what ctxd__admin_start will bind. 0 and *out, or CTXD_EINVAL. */
int ctxd__admin_address_parse(const char *listen, struct sockaddr_storage *out);

/* Listens on listen (see ctxd__admin_address_parse). 0 and *out (close with
 * ctxd__admin_close), CTXD_EINVAL for a bad address, CTXD_EIO when the socket cannot be
 * bound (message in err), or CTXD_ENOMEM. A failure leaves nothing on the loop (except if
 * libuv refuses the bound socket, which it does not for a fresh one: then its handle is
 * closing and the loop must run once). */
int ctxd__admin_start(uv_loop_t *loop, const char *listen, ctxd__admin_cb cb, void *data, ctxd__admin_t **out,
                      char *err, size_t errlen);

/* The bound port (useful with port 0). */
int ctxd__admin_port(const ctxd__admin_t *a);

/* Connections not yet freed, closing ones included (tests wait on it). */
size_t ctxd__admin_connections(const ctxd__admin_t *a);

typedef struct {
  size_t open;            /* sockets open now */
  uint64_t evicted;       /* idle connections closed to make room for a new one */
  uint64_t accept_errors; /* failed accepts */
} ctxd__admin_stats_t;

void ctxd__admin_stats(const ctxd__admin_t *a, ctxd__admin_stats_t *out);

/* The idle timeout of connections accepted from now on (default
 * CTXD__ADMIN_IDLE_TIMEOUT_MS; tests shorten it). */
void ctxd__admin_set_idle_timeout(ctxd__admin_t *a, uint64_t ms);

/* The most sockets open at once (default CTXD__ADMIN_MAX_CONNECTIONS; 0 counts as 1).
 * Lowering it closes nothing: each new connection then takes an idle one's place. */
void ctxd__admin_set_max_connections(ctxd__admin_t *a, size_t n);

/* Stops listening and closes every connection, answered or not; call it once. a is freed
 * by the loop once the last handle's close callback ran, so run the loop before
 * uv_loop_close. */
void ctxd__admin_close(ctxd__admin_t *a);

#endif
