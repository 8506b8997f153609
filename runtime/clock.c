#include "clock.h"

int64_t ctxd__clock_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t ctxd__clock_ms(void) { return ctxd__clock_us() / 1000; }

int64_t ctxd__clock_wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct timespec ctxd__clock_deadline_us(int64_t us) {
  struct timespec t;
  clock_gettime(CLOCK_REALTIME, &t);
  t.tv_sec += (time_t)(us / 1000000);
  t.tv_nsec += (long)(us % 1000000) * 1000L;
  if (t.tv_nsec >= 1000000000L) {
    t.tv_sec++;
    t.tv_nsec -= 1000000000L;
  }
  return t;
}

struct timespec ctxd__clock_deadline(int64_t ms) {
  return ctxd__clock_deadline_us(ms * 1000);
}
