#include "watch.h"

#include <stdio.h>
#include <string.h>

#include "clock.h"

void ctxd__watch_init(ctxd__watch_t *w) {
  memset(w, 0, sizeof *w);
  pthread_mutex_init(&w->mu, NULL);
}

void ctxd__watch_destroy(ctxd__watch_t *w) { pthread_mutex_destroy(&w->mu); }

void ctxd__watch_begin(ctxd__watch_t *w, const char *plugin, const char *endpoint, const char *message_type,
                       const char *message_id) {
  pthread_mutex_lock(&w->mu);
  w->plugin = plugin;
  w->endpoint = endpoint;
  w->message_type = message_type;
  size_t n = strnlen(message_id, sizeof w->message_id - 1); /* per message: no formatting */
  memcpy(w->message_id, message_id, n);
  w->message_id[n] = '\0';
  w->calls++;
  w->started_us = ctxd__clock_us();
  pthread_mutex_unlock(&w->mu);
}

void ctxd__watch_end(ctxd__watch_t *w) {
  pthread_mutex_lock(&w->mu);
  w->started_us = 0;
  pthread_mutex_unlock(&w->mu);
}

int ctxd__watch_overdue(ctxd__watch_t *w, int64_t now, int64_t limit_us, int report,
                        ctxd__watch_sample_t *out) {
  pthread_mutex_lock(&w->mu);
  int overdue = w->started_us != 0 && now - w->started_us >= limit_us;
  if (overdue) {
    snprintf(out->plugin, sizeof out->plugin, "%s", w->plugin);
    snprintf(out->endpoint, sizeof out->endpoint, "%s", w->endpoint);
    snprintf(out->message_type, sizeof out->message_type, "%s", w->message_type);
    memcpy(out->message_id, w->message_id, sizeof out->message_id);
    out->running_us = now - w->started_us;
    out->first_report = w->reported != w->calls;
    if (report) w->reported = w->calls;
  }
  pthread_mutex_unlock(&w->mu);
  return overdue;
}
