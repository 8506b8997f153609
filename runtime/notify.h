/* systemd's readiness protocol (sd_notify) without libsystemd: one datagram to the socket
 * named by $NOTIFY_SOCKET. Without that variable every call does nothing, so the host
 * runs the same under systemd, another supervisor, or none. */
#ifndef CTXD_RUNTIME_NOTIFY_H
#define CTXD_RUNTIME_NOTIFY_H

#include <stdint.h>

/* Sends `state` ("READY=1", "STOPPING=1", "WATCHDOG=1", "STATUS=..."). 0, or CTXD_EIO
 * when the socket refused it (logged by the caller; the host keeps running). */
int ctxd__notify(const char *state);

/* The watchdog interval systemd expects pings within, in milliseconds, from
 * $WATCHDOG_USEC (when $WATCHDOG_PID is unset or ours); 0 when there is no watchdog. */
uint64_t ctxd__notify_watchdog_ms(void);

#endif
