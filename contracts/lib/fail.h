/* One-line reasons for failures: formats the reason into the caller's buffer and returns
 * the error code, so that a failing function ends with `return ctxd__fail(err, errlen,
 * CTXD_EINVAL, "...", ...)`. It lives in the lowest library, which the contract engine,
 * the generator, the host and the plugins all link. */
#ifndef CTXD_FAIL_H
#define CTXD_FAIL_H

#include <stdarg.h>
#include <stddef.h>

/* Writes the reason into err (nothing when err is NULL or errlen 0; cut to errlen) and
 * returns code. */
int ctxd__fail(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int ctxd__vfail(char *err, size_t errlen, int code, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

#endif
