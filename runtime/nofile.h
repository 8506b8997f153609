/* The process's open-file limit (RLIMIT_NOFILE). */
#ifndef CTXD_RUNTIME_NOFILE_H
#define CTXD_RUNTIME_NOFILE_H

#include <stdint.h>

typedef struct {
  uint64_t soft; /* what the process may open; UINT64_MAX for no limit */
  uint64_t hard;
} ctxd__nofile_t;

/* Raises the soft limit to the hard one, as Go's runtime and many servers do: the usual
 * soft default of 1024 guards select(), which nothing in the host uses (libuv polls with
 * epoll, rabbitmq-c and libpq with poll), so a plugin must not use select() either.
 * Descriptors beyond it let a host under pressure keep its broker and database
 * connections. Writes the limits in force into *out; 0, or CTXD_EIO when they could not
 * be read or raised (*out then holds what is in force, or zeros when unknown). */
int ctxd__nofile_raise(ctxd__nofile_t *out);

#endif
