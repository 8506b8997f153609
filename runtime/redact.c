#include "redact.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

typedef struct {
  char *buf;
  size_t cap; /* > 0; one byte is kept for the NUL */
  size_t len;
} out_t;

static void put(out_t *o, const char *s, size_t n) {
  size_t room = o->cap - 1 - o->len;
  memcpy(o->buf + o->len, s, n < room ? n : room);
  o->len += n < room ? n : room;
}

/* Returns the end (a pointer into v) of a libpq keyword value at v: 'quoted with
 * \-escapes' or up to a blank. */
static const char *keyword_value_end(const char *v) {
  if (*v != '\'') {
    while (*v != '\0' && !isspace((unsigned char)*v)) v++;
    return v;
  }
  for (v++; *v != '\0' && *v != '\''; v++)
    if (*v == '\\' && v[1] != '\0') v++;
  return *v == '\'' ? v + 1 : v;
}

/* Works on any text, not just a lone URL, so whole error messages (which may quote a piece
 * of the file) go through it. Errs towards hiding: a password is everything between the
 * first ':' after "://" (the user name holds no blank) and the last '@' before the next
 * URL or the end of the text, since passwords may hold '/', '@' and even blanks, which
 * libpq and rabbitmq-c accept unescaped. */
void ctxd__redact(const char *text, char *buf, size_t buflen) {
  if (buflen == 0) return;
  out_t o = {buf, buflen, 0};
  const char *p = text;
  while (*p != '\0') {
    if (strncmp(p, "://", 3) == 0) {
      const char *at = NULL, *colon = NULL;
      for (const char *q = p + 3; *q != '\0' && !isspace((unsigned char)*q) && colon == NULL; q++)
        if (*q == ':') colon = q;
      for (const char *q = colon; q != NULL && *q != '\0' && strncmp(q, "://", 3) != 0; q++)
        if (*q == '@') at = q;
      if (at != NULL && colon != NULL && colon < at) {
        put(&o, p, (size_t)(colon + 1 - p));
        put(&o, "***", 3);
        p = at;
        continue;
      }
    } else if (strncasecmp(p, "password", 8) == 0) {
      const char *v = p + 8;
      while (*v == ' ') v++;
      if (*v == '=') {
        v++;
        while (*v == ' ') v++;
        put(&o, p, (size_t)(v - p));
        put(&o, "***", 3);
        p = keyword_value_end(v);
        continue;
      }
    }
    put(&o, p, 1);
    p++;
  }
  buf[o.len] = '\0';
}
