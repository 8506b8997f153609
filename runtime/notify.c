#include "notify.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <ctxd/errno.h>

int ctxd__notify(const char *state) {
  const char *path = getenv("NOTIFY_SOCKET");
  if (path == NULL || path[0] == '\0') return 0;
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  size_t len = strlen(path);
  if (len >= sizeof addr.sun_path) return CTXD_EIO;
  memcpy(addr.sun_path, path, len);
  /* '@' names a socket in the abstract namespace */
  if (path[0] == '@') addr.sun_path[0] = '\0';
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return CTXD_EIO;
  ssize_t n = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&addr,
                     (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len));
  close(fd);
  return n == (ssize_t)strlen(state) ? 0 : CTXD_EIO;
}

uint64_t ctxd__notify_watchdog_ms(void) {
  const char *usec = getenv("WATCHDOG_USEC");
  const char *pid = getenv("WATCHDOG_PID");
  if (usec == NULL) return 0;
  if (pid != NULL && strtol(pid, NULL, 10) != (long)getpid()) return 0;
  return strtoull(usec, NULL, 10) / 1000;
}

static void extend_loop(void *arg) {
  ctxd__notify_extend_t *x = arg;
  char msg[64];
  snprintf(msg, sizeof msg, "EXTEND_TIMEOUT_USEC=%llu", (unsigned long long)(x->interval_ms * 2000));
  uv_mutex_lock(&x->mutex);
  for (uint64_t asked = 0; !x->stop; asked += x->interval_ms) {
    /* a start-up that waits this long is stuck (a lock held): let systemd's timeout end it */
    if (asked < x->limit_ms) ctxd__notify(msg);
    /* a spurious or early wake-up only sends once more */
    uv_cond_timedwait(&x->cond, &x->mutex, x->interval_ms * 1000000);
  }
  uv_mutex_unlock(&x->mutex);
}

void ctxd__notify_extend_start(ctxd__notify_extend_t *x, uint64_t interval_ms, uint64_t limit_ms) {
  memset(x, 0, sizeof *x);
  const char *path = getenv("NOTIFY_SOCKET");
  if (path == NULL || path[0] == '\0') return;
  x->interval_ms = interval_ms;
  x->limit_ms = limit_ms;
  if (uv_mutex_init(&x->mutex) != 0) return;
  if (uv_cond_init(&x->cond) != 0) {
    uv_mutex_destroy(&x->mutex);
    return;
  }
  if (uv_thread_create(&x->thread, extend_loop, x) != 0) {
    uv_cond_destroy(&x->cond);
    uv_mutex_destroy(&x->mutex);
    return;
  }
  x->running = 1;
}

void ctxd__notify_extend_stop(ctxd__notify_extend_t *x) {
  if (!x->running) return;
  uv_mutex_lock(&x->mutex);
  x->stop = 1;
  uv_cond_signal(&x->cond);
  uv_mutex_unlock(&x->mutex);
  uv_thread_join(&x->thread);
  uv_cond_destroy(&x->cond);
  uv_mutex_destroy(&x->mutex);
  x->running = 0;
}
