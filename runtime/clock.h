/* Time for timeouts and backoff: monotonic milliseconds, and deadlines for
 * pthread_cond_timedwait (which measures CLOCK_REALTIME). */
#ifndef CTXD_RUNTIME_CLOCK_H
#define CTXD_RUNTIME_CLOCK_H

#include <stdint.h>
#include <time.h>

int64_t ctxd__clock_ms(void);
/* Unix time in ms (CLOCK_REALTIME). */
int64_t ctxd__clock_wall_ms(void);
int64_t ctxd__clock_us(void);

/* The CLOCK_REALTIME instant ms milliseconds (us microseconds) from now. */
struct timespec ctxd__clock_deadline(int64_t ms);
struct timespec ctxd__clock_deadline_us(int64_t us);

#endif
