/* Hiding secrets in text that goes to logs and error messages. Pure. */
#ifndef CTXD_RUNTIME_REDACT_H
#define CTXD_RUNTIME_REDACT_H

#include <stddef.h>

/* Copies text into buf (always NUL-terminated, cut to buflen) with every password it holds
 * replaced by "***": the password of a URL ("scheme://user:password@host"), and the value
 * of a libpq "password=" keyword. */
void ctxd__redact(const char *text, char *buf, size_t buflen);

#endif
