/* A small blocking HTTP/1.1 client for the SMS provider: one POST per connection
 * ("Connection: close"), plain http:// only, the whole exchange bounded by one deadline.
 * The response is read with http-parser (any framing: Content-Length, chunked, or up to the
 * close). For the executor thread: it blocks, and uses no global state but the resolver. */
#ifndef CTXD_NOTIFICATION_HTTP_H
#define CTXD_NOTIFICATION_HTTP_H

#include <stddef.h>

#define NOTIFICATION_HTTP_MAX_BODY (64 * 1024) /* a longer response body is an error */

typedef struct {
  int status; /* the HTTP status code; 0 when no complete response came */
  char *body; /* the response body, NUL-terminated (malloc; notification_http_response_free) */
  size_t body_len;
  char error[160]; /* why there is no response, or "" */
} notification_http_response_t;

/* POSTs body (len bytes, content type application/json) to url ("http://host[:port][/path]")
 * with the extra headers (NULL, or name, value, ..., NULL), and reads the response within
 * timeout_ms of the call. 0 when a complete response arrived, whatever its status (res->status,
 * res->body set); otherwise res->error says why: CTXD_EINVAL (a URL this client does not
 * take, a header with a line break), CTXD_ETIMEDOUT (the deadline passed: the provider may
 * or may not have taken it), CTXD_ECLOSED (the connection ended before the response did),
 * CTXD_EIO (resolving, connecting, sending, or a response that is not HTTP or too large),
 * CTXD_ENOMEM. Always free res with notification_http_response_free. */
int notification_http_post(const char *url, const char *const *headers, const char *body, size_t len,
                           int timeout_ms, notification_http_response_t *res);

void notification_http_response_free(notification_http_response_t *res);

#endif
