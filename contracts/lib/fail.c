#include "fail.h"

#include <stdio.h>

int ctxd__vfail(char *err, size_t errlen, int code, const char *fmt, va_list ap) {
  if (err != NULL && errlen > 0) vsnprintf(err, errlen, fmt, ap);
  return code;
}

int ctxd__fail(char *err, size_t errlen, int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  ctxd__vfail(err, errlen, code, fmt, ap);
  va_end(ap);
  return code;
}
