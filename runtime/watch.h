/* What a worker's handler call is doing now: which plugin, endpoint, message type and
 * message, and since when. The worker writes it around each call; the loop thread reads it
 * to report a handler past its time limit, and the crash handler (on the worker's own
 * thread) to name what crashed. */
#ifndef CTXD_RUNTIME_WATCH_H
#define CTXD_RUNTIME_WATCH_H

#include <pthread.h>
#include <stdint.h>

typedef struct {
  pthread_mutex_t mu;
  int64_t started_us; /* ctxd__clock_us at the call's start; 0 while no handler runs */
  uint64_t calls;     /* calls begun */
  uint64_t reported;  /* the last call reported as past its time (a count of calls) */
  /* borrowed while the call runs: the plugin and the endpoint outlive their workers */
  const char *plugin, *endpoint, *message_type;
  char message_id[40];
} ctxd__watch_t;

/* A copy of a running call, made under the watch's lock. */
typedef struct {
  char plugin[72], endpoint[208], message_type[256], message_id[40];
  int64_t running_us;
  int first_report; /* 1 until a caller reported this call */
} ctxd__watch_sample_t;

void ctxd__watch_init(ctxd__watch_t *w);
void ctxd__watch_destroy(ctxd__watch_t *w);

/* A handler call starts and ends (worker thread). */
void ctxd__watch_begin(ctxd__watch_t *w, const char *plugin, const char *endpoint, const char *message_type,
                       const char *message_id);
void ctxd__watch_end(ctxd__watch_t *w);

/* 1 with *out when w's call has run limit_us or longer at now (a clock_us reading), else 0.
 * `report`: the caller reports it, so out->first_report is 0 for this call from now on.
 * Any thread. */
int ctxd__watch_overdue(ctxd__watch_t *w, int64_t now, int64_t limit_us, int report,
                        ctxd__watch_sample_t *out);

#endif
