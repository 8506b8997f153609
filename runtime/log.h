/* Structured logging: one JSON object per line on stderr, safe from any thread.
 *
 * A line is always one valid JSON object and a newline, whatever its fields hold: quotes,
 * backslashes and control characters are escaped, invalid UTF-8 becomes U+FFFD, and a
 * field is cut at CTXD__LOG_FIELD_MAX bytes (the message at CTXD__LOG_MSG_MAX), counted
 * after escaping, on a character boundary. A cut value ends in "...[truncated N bytes]"
 * (N of the original left out) and the line carries "truncated": true. */
#ifndef CTXD_RUNTIME_LOG_H
#define CTXD_RUNTIME_LOG_H

#include <stdarg.h>

#define CTXD__LOG_FIELD_MAX 1024
#define CTXD__LOG_MSG_MAX 8192

typedef enum {
  CTXD__LOG_ERROR = 0,
  CTXD__LOG_WARN = 1,
  CTXD__LOG_INFO = 2,
  CTXD__LOG_DEBUG = 3
} ctxd__log_level_t;

/* Optional fields of a line; NULL members are left out. */
typedef struct {
  const char *endpoint;
  const char *message_id;
  const char *correlation_id;
  const char *traceparent; /* W3C trace context of the message */
} ctxd__log_fields_t;

/* Lines above `level` are dropped. */
void ctxd__log_set_level(ctxd__log_level_t level);
int ctxd__log_enabled(ctxd__log_level_t level);

/* Parses "error", "warn", "info", "debug"; 0 or CTXD_EINVAL. */
int ctxd__log_level_parse(const char *name, ctxd__log_level_t *out);

/* `src` names the emitter: "host" or a plugin's name. */
void ctxd__log(ctxd__log_level_t level, const char *src, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void ctxd__logf(ctxd__log_level_t level, const char *src, const ctxd__log_fields_t *fields, const char *fmt,
                ...) __attribute__((format(printf, 4, 5)));
void ctxd__logv(ctxd__log_level_t level, const char *src, const ctxd__log_fields_t *fields, const char *fmt,
                va_list ap);

#endif
