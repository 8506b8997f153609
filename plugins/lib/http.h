/* A small blocking HTTP/1.1 client for the systems the plugins call (the SMS provider, the
 * issuing system): one POST per connection
 * ("Connection: close"), plain http:// only, the whole exchange bounded by one deadline.
 * The response is read with http-parser (any framing: Content-Length, chunked, or up to the
 * close). For the executor thread: it blocks, and uses no global state. */
#ifndef CTXD_PLUGIN_HTTP_H
#define CTXD_PLUGIN_HTTP_H

#include <stddef.h>

#include <netdb.h>

#define PLUGIN_HTTP_MAX_BODY (64 * 1024) /* a longer response body is an error */

typedef struct {
  int status; /* the HTTP status code; 0 when no complete response came */
  char *body; /* the response body, NUL-terminated (malloc; plugin_http_response_free) */
  size_t body_len;
  char error[160]; /* why there is no response, or "" */
} plugin_http_response_t;

/* Where the POSTs go: the URL taken apart and its host resolved, once (at the plugin's start:
 * a POST then never waits on the resolver, whose time no deadline bounds). */
typedef struct {
  char host[256]; /* a name, or an address without brackets */
  char port[8];
  char authority[272]; /* host:port for the Host header ([v6]:port) */
  char path[1024];     /* with its query */
  struct addrinfo *addrs;
} plugin_http_target_t;

/* Takes url ("http://host[:port][/path]") apart and resolves its host into *t. 0, or
 * CTXD_EINVAL with the reason in err (a URL this client does not take, a host that does not
 * resolve). Free with plugin_http_target_free (also after a failure). */
int plugin_http_target_init(plugin_http_target_t *t, const char *url, char *err, size_t cap);

void plugin_http_target_free(plugin_http_target_t *t);

/* POSTs body (len bytes, content type application/json) to target t with the extra headers
 * (NULL, or name, value, ..., NULL), and reads the final response (interim 1xx responses are
 * skipped) within timeout_ms of the call. 0 when a complete response arrived, whatever its
 * status (res->status, res->body set); otherwise res->error says why: CTXD_EINVAL (no target,
 * a header with a line break), CTXD_ETIMEDOUT (the deadline passed: the peer may or may
 * not have taken it), CTXD_ECLOSED (the peer closed or reset the connection before the
 * response ended, while sending or receiving), CTXD_EIO (connecting, another socket error, a
 * response that is not HTTP or too large), CTXD_ENOMEM. Always free res with
 * plugin_http_response_free. */
int plugin_http_post(const plugin_http_target_t *t, const char *const *headers, const char *body, size_t len,
                     int timeout_ms, plugin_http_response_t *res);

void plugin_http_response_free(plugin_http_response_t *res);

#endif
