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

/* What escaping may add to a field besides its value: the key (at most 14 characters),
 * the quotes, colon and comma, and the truncation mark. */
#define MARK_MAX 48 /* "...[truncated 18446744073709551615 bytes]" */
#define FIELD_OVERHEAD (20 + MARK_MAX)
#define NFIELDS 5 /* src, endpoint, message_id, correlation_id, traceparent */
/* time and level, ",\"truncated\":true", "}\n" */
#define LINE_FRAME 128
#define LINE_MAX_BYTES                                                                                       \
  (LINE_FRAME + NFIELDS * (CTXD__LOG_FIELD_MAX + FIELD_OVERHEAD) + CTXD__LOG_MSG_MAX + FIELD_OVERHEAD)

typedef struct {
  char p[LINE_MAX_BYTES];
  size_t len;
  int truncated; /* some field was cut */
} line_t;

/* Every write is within the bound LINE_MAX_BYTES is made of, so none is checked. */
static void put(line_t *l, const char *s, size_t n) {
  memcpy(l->p + l->len, s, n);
  l->len += n;
}

static void put_str(line_t *l, const char *s) { put(l, s, strlen(s)); }

/* The length of the UTF-8 sequence at s (n bytes available): 1-4 when it is a valid
 * character (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF), 0 when
 * it is not, -1 when it is valid so far but cut at n. */
static int utf8_len(const unsigned char *s, size_t n) {
  unsigned char c = s[0];
  int len;
  unsigned char lo = 0x80, hi = 0xbf; /* the second byte's range */
  if (c < 0x80) return 1;
  if (c >= 0xc2 && c <= 0xdf)
    len = 2;
  else if (c >= 0xe0 && c <= 0xef) {
    len = 3;
    if (c == 0xe0) lo = 0xa0;
    if (c == 0xed) hi = 0x9f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    len = 4;
    if (c == 0xf0) lo = 0x90;
    if (c == 0xf4) hi = 0x8f;
  } else
    return 0;
  for (int i = 1; i < len; i++) {
    if ((size_t)i >= n) return -1;
    if (s[i] < (i == 1 ? lo : 0x80) || s[i] > (i == 1 ? hi : 0xbf)) return 0;
  }
  return len;
}

/* Writes s as a JSON string of at most cap bytes between its quotes (plus the mark):
 * quotes, backslashes and control characters escaped, each byte of invalid UTF-8 replaced
 * by U+FFFD. s holds len bytes of a value total bytes long; what is left out is counted in
 * the mark "...[truncated N bytes]". Whole characters only, so the cut is clean. */
static void put_json_string(line_t *l, const char *s, size_t len, size_t total, size_t cap) {
  const unsigned char *u = (const unsigned char *)s;
  size_t i = 0, written = 0;
  put(l, "\"", 1);
  while (i < len) {
    char esc[8];
    const char *out = esc;
    size_t in = 1, n;
    unsigned char c = u[i];
    if (c == '"' || c == '\\') {
      esc[0] = '\\';
      esc[1] = (char)c;
      n = 2;
    } else if (c == '\n' || c == '\r' || c == '\t') {
      esc[0] = '\\';
      esc[1] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
      n = 2;
    } else if (c < 0x20 || c == 0x7f) {
      n = (size_t)snprintf(esc, sizeof esc, "\\u%04x", c);
    } else {
      int k = utf8_len(u + i, len - i);
      if (k < 0 && len < total) break; /* a character the caller's buffer cut */
      if (k > 0) {
        out = s + i;
        in = n = (size_t)k;
      } else {
        out = "\\ufffd";
        n = 6;
      }
    }
    if (written + n > cap) break;
    put(l, out, n);
    written += n;
    i += in;
  }
  if (i < total) {
    char mark[MARK_MAX];
    put(l, mark, (size_t)snprintf(mark, sizeof mark, "...[truncated %zu bytes]", total - i));
    l->truncated = 1;
  }
  put(l, "\"", 1);
}

static void put_field(line_t *l, const char *key, const char *value) {
  if (value == NULL) return;
  put(l, ",\"", 2);
  put_str(l, key);
  put(l, "\":", 2);
  size_t n = strlen(value);
  put_json_string(l, value, n, n, CTXD__LOG_FIELD_MAX);
}

void ctxd__logv(ctxd__log_level_t level, const char *src, const ctxd__log_fields_t *fields, const char *fmt,
                va_list ap) {
  if (!ctxd__log_enabled(level)) return;

  /* escaping never shortens, so more than CTXD__LOG_MSG_MAX bytes could never be written */
  char msg[CTXD__LOG_MSG_MAX + 1];
  int total = vsnprintf(msg, sizeof msg, fmt, ap);
  if (total < 0) total = 0; /* an encoding error: an empty message */
  size_t len = strlen(msg);

  struct timespec ts;
  struct tm tm;
  char when[40];
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  size_t n = strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(when + n, sizeof when - n, ".%03ldZ", ts.tv_nsec / 1000000);

  line_t l;
  l.len = 0;
  l.truncated = 0;
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
  put(&l, ",\"msg\":", 7);
  /* a NUL the format wrote (%c of 0) ends the text early: what follows counts as cut */
  put_json_string(&l, msg, len, (size_t)total, CTXD__LOG_MSG_MAX);
  if (l.truncated) put_str(&l, ",\"truncated\":true");
  put(&l, "}\n", 2);
  /* one write(2) per line keeps lines from different threads whole */
  ssize_t ignored = write(STDERR_FILENO, l.p, l.len);
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
