#include "address.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include <amqp.h>

#include <ctxd/ctxd.h>

/* Appends s escaped as .NET's Uri.EscapeDataString does (all but the unreserved
 * characters); returns the new length, or len when it did not fit. */
static size_t escape(char *buf, size_t len, size_t at, const char *s) {
  for (; *s && at < len; s++) {
    unsigned char ch = (unsigned char)*s;
    int n = isalnum(ch) || strchr("-._~", ch) ? snprintf(buf + at, len - at, "%c", ch)
                                              : snprintf(buf + at, len - at, "%%%02X", ch);
    at = n < 0 || (size_t)n >= len - at ? len : at + (size_t)n;
  }
  return at;
}

int ctxd__address_of(char *buf, size_t len, const char *broker_url, const char *name) {
  char url[1024];
  struct amqp_connection_info ci;
  if ((size_t)snprintf(url, sizeof url, "%s", broker_url) >= sizeof url || amqp_parse_url(url, &ci) != 0)
    return CTXD_EINVAL;
  char host[256];
  size_t i = 0;
  for (; ci.host[i] && i < sizeof host - 1; i++) host[i] = (char)tolower((unsigned char)ci.host[i]);
  host[i] = '\0';
  int n = snprintf(buf, len, "rabbitmq%s://%s", ci.ssl ? "s" : "", host);
  if (n >= 0 && (size_t)n < len && ci.port != (ci.ssl ? 5671 : 5672))
    n += snprintf(buf + n, len - (size_t)n, ":%d", ci.port);
  if (n < 0 || (size_t)n >= len) return CTXD_ETOOBIG;
  size_t at = (size_t)n;
  if (strcmp(ci.vhost, "/") != 0) {
    at = at < len - 1 ? (buf[at] = '/', at + 1) : len;
    at = escape(buf, len, at, ci.vhost);
  }
  n = at < len ? snprintf(buf + at, len - at, "/%s", name) : -1;
  return n >= 0 && (size_t)n < len - at ? 0 : CTXD_ETOOBIG;
}

int ctxd__address_exchange(const char *address, char *buf, size_t len) {
  const char *start = address, *end;
  const char *scheme = strstr(address, "://");
  if (scheme != NULL) {
    end = address + strcspn(address, "?#");
    start = end;
    while (start > scheme + 3 && start[-1] != '/') start--;
    if (start == scheme + 3) return CTXD_EINVAL; /* only a host, no name */
  } else {
    end = address + strlen(address);
  }
  if (end == start || (size_t)(end - start) >= len) return CTXD_EINVAL;
  memcpy(buf, start, (size_t)(end - start));
  buf[end - start] = '\0';
  return 0;
}
