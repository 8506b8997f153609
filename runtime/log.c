#include "log.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <ctxd/errno.h>

static atomic_int log_level = CTXD__LOG_INFO;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void ctxd__log_set_level(ctxd__log_level_t level) { atomic_store(&log_level, (int)level); }

int ctxd__log_enabled(ctxd__log_level_t level) { return (int)level <= atomic_load(&log_level); }

int ctxd__log_level_parse(const char *name, ctxd__log_level_t *out) {
  for (int i = 0; i < 4; i++) {
    if (strcasecmp(name, level_names[i]) == 0) {
      *out = (ctxd__log_level_t)i;
      return 0;
    }
  }
  return CTXD_EINVAL;
}

typedef struct {
  char *p;
  size_t len;
  size_t cap;
} line_t;

static void put(line_t *l, const char *s, size_t n) {
  if (l->len + n >= l->cap) n = l->cap - l->len - 1;
  memcpy(l->p + l->len, s, n);
  l->len += n;
}

static void put_str(line_t *l, const char *s) { put(l, s, strlen(s)); }

/* JSON string escaping; truncation can only cut between characters we wrote. */
static void put_json_string(line_t *l, const char *s) {
  put(l, "\"", 1);
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    char esc[8];
    if (c == '"' || c == '\\') {
      esc[0] = '\\';
      esc[1] = (char)c;
      put(l, esc, 2);
    } else if (c == '\n') {
      put(l, "\\n", 2);
    } else if (c < 0x20) {
      snprintf(esc, sizeof esc, "\\u%04x", c);
      put(l, esc, 6);
    } else {
      put(l, (const char *)&c, 1);
    }
  }
  put(l, "\"", 1);
}

static void put_field(line_t *l, const char *key, const char *value) {
  if (value == NULL) return;
  put(l, ",\"", 2);
  put_str(l, key);
  put(l, "\":", 2);
  put_json_string(l, value);
}

void ctxd__logv(ctxd__log_level_t level, const char *src, const ctxd__log_fields_t *fields, const char *fmt,
                va_list ap) {
  if (!ctxd__log_enabled(level)) return;

  char msg[2048];
  vsnprintf(msg, sizeof msg, fmt, ap);

  struct timespec ts;
  struct tm tm;
  char when[40];
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  size_t n = strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(when + n, sizeof when - n, ".%03ldZ", ts.tv_nsec / 1000000);

  char buf[16384];
  line_t l = {buf, 0, sizeof buf - 1};
  put_str(&l, "{\"time\":\"");
  put_str(&l, when);
  put_str(&l, "\",\"level\":\"");
  put_str(&l, level_names[level]);
  put_str(&l, "\"");
  put_field(&l, "src", src);
  if (fields != NULL) {
    put_field(&l, "endpoint", fields->endpoint);
    put_field(&l, "message_id", fields->message_id);
    put_field(&l, "correlation_id", fields->correlation_id);
    put_field(&l, "traceparent", fields->traceparent);
  }
  put_field(&l, "msg", msg);
  put_str(&l, "}");
  buf[l.len++] = '\n';
  /* one write(2) per line keeps lines from different threads whole */
  ssize_t ignored = write(STDERR_FILENO, buf, l.len);
  (void)ignored;
}

void ctxd__logf(ctxd__log_level_t level, const char *src, const ctxd__log_fields_t *fields, const char *fmt,
                ...) {
  va_list ap;
  va_start(ap, fmt);
  ctxd__logv(level, src, fields, fmt, ap);
  va_end(ap);
}

void ctxd__log(ctxd__log_level_t level, const char *src, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  ctxd__logv(level, src, NULL, fmt, ap);
  va_end(ap);
}
