/* systemd's readiness protocol (sd_notify) without libsystemd: one datagram to the socket
 * named by $NOTIFY_SOCKET. Without that variable every call does nothing, so the host
 * runs the same under systemd, another supervisor, or none. */
#ifndef CTXD_RUNTIME_NOTIFY_H
#define CTXD_RUNTIME_NOTIFY_H

#include <stdint.h>
#include <uv.h>

/* Sends `state` ("READY=1", "STOPPING=1", "WATCHDOG=1", "STATUS=..."). 0, or CTXD_EIO
 * when the socket refused it (logged by the caller; the host keeps running). */
int ctxd__notify(const char *state);

/* The watchdog interval systemd expects pings within, in milliseconds, from
 * $WATCHDOG_USEC (when $WATCHDOG_PID is unset or ours); 0 when there is no watchdog. */
uint64_t ctxd__notify_watchdog_ms(void);

/* Asks systemd for more start-up time while work that blocks the loop runs (migrations):
 * a thread sends EXTEND_TIMEOUT_USEC= (twice the interval) at once and then every
 * interval_ms, until stopped or for limit_ms in all (then systemd's own timeout runs out,
 * and a start that waits on a stuck lock ends). Without $NOTIFY_SOCKET nothing starts. */
typedef struct {
  uv_thread_t thread;
  uv_mutex_t mutex;
  uv_cond_t cond;
  uint64_t interval_ms, limit_ms;
  int stop;
  int running;
} ctxd__notify_extend_t;

void ctxd__notify_extend_start(ctxd__notify_extend_t *x, uint64_t interval_ms, uint64_t limit_ms);
void ctxd__notify_extend_stop(ctxd__notify_extend_t *x);

#endif
