#include "nofile.h"

#include <sys/resource.h>

#include <ctxd/errno.h>

static uint64_t limit_value(rlim_t v) { return v == RLIM_INFINITY ? UINT64_MAX : (uint64_t)v; }

int ctxd__nofile_raise(ctxd__nofile_t *out) {
  struct rlimit r;
  *out = (ctxd__nofile_t){0, 0};
  if (getrlimit(RLIMIT_NOFILE, &r) != 0) return CTXD_EIO;
  int rc = 0;
  if (r.rlim_cur != r.rlim_max) {
    struct rlimit raised = {r.rlim_max, r.rlim_max};
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0)
      r = raised;
    else
      rc = CTXD_EIO; /* e.g. an unlimited hard limit the kernel will not take as soft */
  }
  out->soft = limit_value(r.rlim_cur);
  out->hard = limit_value(r.rlim_max);
  return rc;
}
