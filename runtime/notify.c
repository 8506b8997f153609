#include "notify.h"

#include <stddef.h>
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
