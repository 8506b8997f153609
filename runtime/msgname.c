/* MassTransit's two names of a message type. See msgname.h. */
#include "msgname.h"

#include <string.h>

#include <ctxd/errno.h>

#include "contract_schema.h"

typedef struct {
  char *buf;
  size_t len, used;
  int rc;
} out_t;

static void put(out_t *o, const char *s, size_t n) {
  if (o->rc) return;
  if (o->len - o->used <= n) {
    o->rc = CTXD_ETOOBIG;
    return;
  }
  memcpy(o->buf + o->used, s, n);
  o->used += n;
  o->buf[o->used] = '\0';
}

/* The first of `stops` in s at bracket depth 0, or s + strlen(s). */
static const char *top_level(const char *s, const char *stops) {
  int depth = 0;
  for (; *s; s++) {
    if (depth == 0 && strchr(stops, *s)) return s;
    depth += *s == '[' ? 1 : *s == ']' ? -1 : 0;
  }
  return s;
}

/* One type name [s, end) in URN form, written in exchange form; its namespace is left out
 * when it equals scope (the enclosing generic type's namespace), as MassTransit does. */
static void type_name(out_t *o, const char *s, const char *end, const char *scope, size_t scope_len) {
  const char *colon = s;
  while (colon < end && *colon != ':' && *colon != '[' && *colon != '+') colon++;
  const char *ns = s;
  size_t ns_len = 0;
  if (colon < end && *colon == ':') {
    ns_len = (size_t)(colon - s);
    s = colon + 1;
    if (!scope || ns_len != scope_len || memcmp(ns, scope, ns_len) != 0) {
      put(o, ns, ns_len);
      put(o, ":", 1);
    }
  }
  while (s < end && !o->rc) {
    /* one segment: a name, then maybe generic arguments [[A],[B]] */
    const char *name_end = s;
    while (name_end < end && *name_end != '[' && *name_end != '+') name_end++;
    if (name_end == s) o->rc = CTXD_EINVAL;
    put(o, s, (size_t)(name_end - s));
    s = name_end;
    if (s < end && *s == '[') {
      put(o, "--", 2);
      s++;
      for (int first = 1; !o->rc && s < end && *s == '['; first = 0) {
        const char *arg_end = top_level(s + 1, "]");
        if (arg_end >= end || arg_end == s + 1) {
          o->rc = CTXD_EINVAL;
          break;
        }
        if (!first) put(o, "::", 2);
        type_name(o, s + 1, arg_end, ns_len ? ns : NULL, ns_len);
        s = arg_end + 1;
        if (s < end && *s == ',') s++;
      }
      if (s >= end || *s != ']') o->rc = o->rc ? o->rc : CTXD_EINVAL;
      put(o, "--", 2);
      s++;
    }
    if (s < end && *s == '+') {
      put(o, "-", 1);
      if (++s == end) o->rc = o->rc ? o->rc : CTXD_EINVAL;
    } else if (s < end && !o->rc) {
      o->rc = CTXD_EINVAL; /* something after a generic argument list */
    }
  }
}

/* 1 when every '[' in s is closed by a ']' after it. */
static int balanced(const char *s) {
  int depth = 0;
  for (; *s && depth >= 0; s++) depth += *s == '[' ? 1 : *s == ']' ? -1 : 0;
  return depth == 0;
}

int ctxd__msgname_exchange(const char *type, char *buf, size_t len) {
  if (!type || !*type || !buf || len == 0) return CTXD_EINVAL;
  out_t o = {buf, len, 0, 0};
  buf[0] = '\0';
  const char *end = type + strlen(type);
  if (!balanced(type)) return CTXD_EINVAL;
  type_name(&o, type, end, NULL, 0);
  return o.rc;
}

int ctxd__msgname_eq(const char *a, const char *b) {
  return a && b && ctxd__schema_ascii_ieq(a, strlen(a), b, strlen(b));
}
