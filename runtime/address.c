#include "address.h"

#include <stdio.h>
#include <string.h>

#include <amqp.h>

#include <ctxd/errno.h>

/* Appends s to out[*n..len) escaped as .NET's Uri.EscapeDataString does (RFC 3986
 * unreserved characters kept). 0 or CTXD_ETOOBIG. */
static int put_escaped(char *out, size_t *n, size_t len, const char *s) {
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    int plain = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
                c == '.' || c == '_' || c == '~';
    int w = plain ? snprintf(out + *n, len - *n, "%c", c) : snprintf(out + *n, len - *n, "%%%02X", c);
    if (w < 0 || (size_t)w >= len - *n) return CTXD_ETOOBIG;
    *n += (size_t)w;
  }
  return 0;
}

int ctxd__address_build(const char *broker_url, const char *name, char *buf, size_t len) {
  char url[1024];
  struct amqp_connection_info ci;
  if (broker_url == NULL || name == NULL || strlen(broker_url) >= sizeof url) return CTXD_EINVAL;
  strcpy(url, broker_url); /* amqp_parse_url cuts its input up */
  if (amqp_parse_url(url, &ci) != AMQP_STATUS_OK) return CTXD_EINVAL;
  for (char *h = ci.host; *h; h++) /* as .NET's Uri writes a host name */
    if (*h >= 'A' && *h <= 'Z') *h = (char)(*h - 'A' + 'a');
  int default_port = ci.ssl ? 5671 : 5672;
  char port[16] = "";
  if (ci.port != default_port) snprintf(port, sizeof port, ":%d", ci.port);
  int w = snprintf(buf, len, "%s://%s%s/", ci.ssl ? "rabbitmqs" : "rabbitmq", ci.host, port);
  if (w < 0 || (size_t)w >= len) return CTXD_ETOOBIG;
  size_t n = (size_t)w;
  if (ci.vhost[0] != '\0' && strcmp(ci.vhost, "/") != 0) {
    if (put_escaped(buf, &n, len, ci.vhost) != 0 || n + 1 >= len) return CTXD_ETOOBIG;
    buf[n++] = '/';
    buf[n] = '\0';
  }
  w = snprintf(buf + n, len - n, "%s", name);
  return w >= 0 && (size_t)w < len - n ? 0 : CTXD_ETOOBIG;
}

int ctxd__address_is_reply_to(const char *address) {
  if (address == NULL) return 0;
  size_t end = strcspn(address, "?#"), k = strlen(CTXD__REPLY_TO);
  return end >= k && memcmp(address + end - k, CTXD__REPLY_TO, k) == 0;
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
