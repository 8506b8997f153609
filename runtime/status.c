#include "status.h"

#include <stddef.h>
#include <stdlib.h>

#include "clock.h"
#include "log.h"

/* Calls f for each handler of ep running past its time limit; report: the caller reports
 * them (see ctxd__watch_overdue). Returns how many there are. */
static size_t overdue(ctxd__endpoint_t *ep, int report, void (*f)(void *, const ctxd__watch_sample_t *),
                      void *arg) {
  int64_t limit = ep->settings.handler_timeout_ms * 1000, now = ctxd__clock_us();
  size_t n = 0;
  for (size_t i = 0; limit > 0 && ep->workers != NULL && i < ep->nthreads; i++) {
    ctxd__watch_sample_t w;
    if (!ctxd__watch_overdue(&ep->workers[i].watch, now, limit, report, &w)) continue;
    f(arg, &w);
    n++;
  }
  return n;
}

static void say_overdue(void *arg, const ctxd__watch_sample_t *w) {
  ctxd__prom_printf(arg, "endpoint %s: handler of plugin %s running for %lld s on message %s (%s)\n",
                    w->endpoint, w->plugin, (long long)(w->running_us / 1000000), w->message_id,
                    w->message_type);
}

/* 1 when the relay and every endpoint reached the database at their last attempt. */
static int db_up(const ctxd__status_t *s, ctxd__prom_t *body) {
  ctxd__relay_stats_t rs = {.db_ok = 1};
  if (s->relay != NULL) ctxd__relay_gauges(s->relay, &rs);
  /* the relay uses its connection every tick: it notices even while no message comes */
  if (!rs.db_ok && body != NULL) ctxd__prom_printf(body, "outbox relay: database unreachable\n");
  int up = rs.db_ok;
  for (size_t i = 0; i < s->endpoints->n; i++) {
    ctxd__endpoint_t *ep = s->endpoints->v[i];
    pthread_mutex_lock(&ep->mu);
    int db_ok = ep->stats.db_ok;
    pthread_mutex_unlock(&ep->mu);
    if (!db_ok && body != NULL) ctxd__prom_printf(body, "endpoint %s: database unreachable\n", ep->name);
    up &= db_ok;
  }
  return up;
}

int ctxd__status_readiness(const ctxd__status_t *s, ctxd__prom_t *body) {
  int ready = s->connected && !s->stopping && s->blocked == NULL;
  if (!s->connected) ctxd__prom_printf(body, "broker: not connected\n");
  if (s->blocked != NULL)
    ctxd__prom_printf(body, "broker: publishing blocked (%s); outbox rows wait, consuming goes on\n",
                      s->blocked);
  if (s->stopping) ctxd__prom_printf(body, "stopping\n");
  ready &= db_up(s, body);
  for (size_t i = 0; i < s->endpoints->n; i++) {
    ctxd__endpoint_t *ep = s->endpoints->v[i];
    if (!ep->consuming && !ep->draining) ctxd__prom_printf(body, "endpoint %s: not consuming\n", ep->name);
    ready &= ep->consuming || ep->draining;
    ready &= overdue(ep, 0, say_overdue, body) == 0;
  }
  if (ready) ctxd__prom_printf(body, "ready\n");
  return ready ? 200 : 503;
}

/* One endpoint's numbers, copied under its lock, so each family is written whole. */
typedef struct {
  const char *name;
  uint64_t received, inflight;
  ctxd__endpoint_stats_t s;
} ep_sample_t;

static const struct {
  const char *name, *type, *help;
  size_t offset; /* of a uint64_t counter/gauge, or a ctxd__histogram_t, in ep_sample_t */
} families[] = {
    {"ctxd_messages_received_total", "counter", "Deliveries received from the broker.",
     offsetof(ep_sample_t, received)},
    {"ctxd_messages_handled_total", "counter", "Messages whose handler committed.",
     offsetof(ep_sample_t, s.handled)},
    {"ctxd_messages_duplicate_total", "counter", "Deliveries skipped: their inbox row existed.",
     offsetof(ep_sample_t, s.duplicates)},
    {"ctxd_messages_retried_total", "counter", "Immediate retries of a handler.",
     offsetof(ep_sample_t, s.retried)},
    {"ctxd_messages_redelivered_total", "counter", "Messages sent to a delay queue.",
     offsetof(ep_sample_t, s.redelivered)},
    {"ctxd_messages_requeued_total", "counter", "Deliveries given back to the queue.",
     offsetof(ep_sample_t, s.requeued)},
    {"ctxd_messages_error_total", "counter", "Messages moved to <queue>_error.",
     offsetof(ep_sample_t, s.errored)},
    {"ctxd_messages_skipped_total", "counter", "Messages moved to <queue>_skipped.",
     offsetof(ep_sample_t, s.skipped)},
    {"ctxd_messages_poisoned_total", "counter",
     "Messages moved to <queue>_error after ending the host max_attempts times.",
     offsetof(ep_sample_t, s.poisoned)},
    {"ctxd_handler_timeouts_total", "counter", "Handler calls found running past handler_timeout_ms.",
     offsetof(ep_sample_t, s.timeouts)},
    {"ctxd_deliveries_in_flight", "gauge", "Deliveries received and not yet settled.",
     offsetof(ep_sample_t, inflight)},
    {"ctxd_handler_seconds", "histogram", "Time in a handler, all attempts, per message it settled.",
     offsetof(ep_sample_t, s.handler_seconds)},
    {"ctxd_batch_seconds", "histogram", "Time to run a batch, commit included.",
     offsetof(ep_sample_t, s.batch_seconds)},
    {"ctxd_batch_size", "histogram", "Deliveries per batch.", offsetof(ep_sample_t, s.batch_size)},
};

static void endpoint_families(const ctxd__endpoints_t *set, ep_sample_t *samples, ctxd__prom_t *p) {
  for (size_t i = 0; i < set->n; i++) {
    ctxd__endpoint_t *ep = set->v[i];
    samples[i].name = ep->name;
    samples[i].received = ep->received;
    samples[i].inflight = ep->inflight;
    pthread_mutex_lock(&ep->mu);
    samples[i].s = ep->stats;
    pthread_mutex_unlock(&ep->mu);
  }
  for (size_t f = 0; f < sizeof families / sizeof families[0]; f++) {
    ctxd__prom_help_type(p, families[f].name, families[f].help, families[f].type);
    for (size_t i = 0; i < set->n; i++) {
      const char *labels[] = {"endpoint", samples[i].name, NULL};
      const char *field = (const char *)&samples[i] + families[f].offset;
      if (families[f].type[0] == 'h')
        ctxd__prom_histogram(p, families[f].name, labels, (const ctxd__histogram_t *)field);
      else if (families[f].type[0] == 'g')
        ctxd__prom_gauge(p, families[f].name, labels, (double)*(const uint64_t *)field);
      else
        ctxd__prom_counter(p, families[f].name, labels, *(const uint64_t *)field);
    }
  }
}

static int admin_families(const ctxd__admin_stats_t *a, ctxd__prom_t *p) {
  ctxd__prom_help_type(p, "ctxd_admin_connections", "Admin connections open.", "gauge");
  ctxd__prom_gauge(p, "ctxd_admin_connections", NULL, (double)a->open);
  ctxd__prom_help_type(p, "ctxd_admin_evicted_total",
                       "Idle admin connections closed to make room at admin.max_connections.", "counter");
  ctxd__prom_counter(p, "ctxd_admin_evicted_total", NULL, a->evicted);
  ctxd__prom_help_type(p, "ctxd_admin_accept_errors_total",
                       "Failed accepts of admin connections (out of descriptors or memory).", "counter");
  return ctxd__prom_counter(p, "ctxd_admin_accept_errors_total", NULL, a->accept_errors);
}

int ctxd__status_metrics(const ctxd__status_t *s, ctxd__prom_t *p) {
  ep_sample_t *samples = calloc(s->endpoints->n + 1, sizeof *samples);
  if (samples == NULL) return 500;
  endpoint_families(s->endpoints, samples, p);
  uint64_t unstored = 0; /* the ingest endpoint's alone: a number of the host */
  for (size_t i = 0; i < s->endpoints->n; i++) unstored += samples[i].s.unstored;
  free(samples);
  ctxd__prom_help_type(p, "ctxd_errors_unstored_total",
                       "_error copies acknowledged without a row: the failed-message store refused them.",
                       "counter");
  ctxd__prom_counter(p, "ctxd_errors_unstored_total", NULL, unstored);
  ctxd__relay_stats_t rs = {0};
  if (s->relay != NULL) ctxd__relay_gauges(s->relay, &rs);
  const struct {
    const char *name, *help;
    double value;
  } gauges[] = {
      {"ctxd_outbox_backlog", "Outbox rows not yet confirmed by the broker.", (double)rs.backlog},
      {"ctxd_outbox_oldest_seconds", "Age of the oldest outbox row.", rs.oldest_s},
      {"ctxd_inbox_rows", "Rows in the inbox (the planner's estimate).", (double)rs.inbox_rows},
      {"ctxd_relay_tick_seconds",
       "How long the relay's last tick took (due scheduled messages moved, the sweep, the gauges).",
       rs.tick_s},
      {"ctxd_relay_tick_max_seconds", "The longest relay tick since start.", rs.tick_max_s},
      {"ctxd_broker_connected", "1 while connected to the broker.", s->connected},
      {"ctxd_db_up",
       "1 while the outbox relay and every endpoint reached the database at their last attempt.",
       db_up(s, NULL)},
      {"ctxd_broker_blocked", "1 while the broker blocks publishing (connection.blocked: a resource alarm).",
       s->blocked != NULL},
      {"ctxd_inflight_bytes", "Bytes of message bodies held, from receipt until settled or copied.",
       (double)s->intake->held},
      {"ctxd_broker_read_paused", "1 while the host does not read from the broker: too many bytes held.",
       s->intake->paused},
  };
  for (size_t g = 0; g < sizeof gauges / sizeof gauges[0]; g++) {
    ctxd__prom_help_type(p, gauges[g].name, gauges[g].help, "gauge");
    ctxd__prom_gauge(p, gauges[g].name, NULL, gauges[g].value);
  }
  ctxd__prom_help_type(p, "ctxd_broker_read_paused_total",
                       "Times the host stopped reading from the broker: too many bytes held.", "counter");
  ctxd__prom_counter(p, "ctxd_broker_read_paused_total", NULL, s->intake->pauses);
  ctxd__prom_help_type(p, "ctxd_scheduled_moved_total",
                       "Scheduled messages this host's relay moved to the outbox once due.", "counter");
  ctxd__prom_counter(p, "ctxd_scheduled_moved_total", NULL, (uint64_t)rs.scheduled_moved);
  ctxd__prom_help_type(p, "ctxd_broker_blocked_total", "Times the broker blocked publishing.", "counter");
  ctxd__prom_counter(p, "ctxd_broker_blocked_total", NULL, s->blocks);
  ctxd__prom_help_type(p, "ctxd_broker_blocked_seconds_total", "Time the broker blocked publishing.",
                       "counter");
  /* a counter of seconds, with their fraction: the gauge's sample line writes it */
  ctxd__prom_gauge(p, "ctxd_broker_blocked_seconds_total", NULL, s->blocked_s);
  ctxd__prom_help_type(p, "ctxd_broker_reconnects_total", "Reconnections to the broker.", "counter");
  int rc = ctxd__prom_counter(p, "ctxd_broker_reconnects_total", NULL, s->reconnects);
  ctxd__prom_help_type(p, "ctxd_outbox_refused_total",
                       "Outbox rows the broker refused (its reason in ctxd.outbox_archive.refused).",
                       "counter");
  if (rc == 0) rc = ctxd__prom_counter(p, "ctxd_outbox_refused_total", NULL, s->outbox_refused);
  if (rc == 0 && s->admin != NULL) rc = admin_families(s->admin, p);
  return rc == 0 ? 200 : 500;
}

static void warn_overdue(void *arg, const ctxd__watch_sample_t *w) {
  ctxd__endpoint_t *ep = arg;
  if (!w->first_report) return;
  ctxd__logf(CTXD__LOG_WARN, w->plugin,
             &(ctxd__log_fields_t){.endpoint = w->endpoint, .message_id = w->message_id},
             "handler for %s has run for %lld ms, past handler_timeout_ms %lld; the endpoint's other workers "
             "go on",
             w->message_type, (long long)(w->running_us / 1000), (long long)ep->settings.handler_timeout_ms);
  pthread_mutex_lock(&ep->mu);
  ep->stats.timeouts++;
  pthread_mutex_unlock(&ep->mu);
}

int ctxd__status_watch(const ctxd__endpoints_t *set) {
  int must_exit = 0;
  for (size_t i = 0; i < set->n; i++) {
    ctxd__endpoint_t *ep = set->v[i];
    if (overdue(ep, 1, warn_overdue, ep) > 0 && ep->settings.handler_timeout_exit) must_exit = 1;
  }
  return must_exit;
}

void ctxd__status_sample(ctxd__endpoint_t *ep, int64_t now_ms, ctxd__sample_t *out) {
  pthread_mutex_lock(&ep->mu);
  *out = (ctxd__sample_t){.t_ms = now_ms,
                          .handled = ep->stats.handled,
                          .errored = ep->stats.errored,
                          .handler = ep->stats.handler_seconds};
  pthread_mutex_unlock(&ep->mu);
}

void ctxd__status_log(const ctxd__endpoints_t *set) {
  for (size_t i = 0; i < set->n; i++) {
    const ctxd__endpoint_t *ep = set->v[i];
    const ctxd__endpoint_stats_t *s = &ep->stats;
    ctxd__logf(CTXD__LOG_INFO, "host", &(ctxd__log_fields_t){.endpoint = ep->name},
               "handled %llu, duplicates %llu, retried %llu, redelivered %llu, requeued %llu, "
               "to _error %llu, to _skipped %llu",
               (unsigned long long)s->handled, (unsigned long long)s->duplicates,
               (unsigned long long)s->retried, (unsigned long long)s->redelivered,
               (unsigned long long)s->requeued, (unsigned long long)s->errored,
               (unsigned long long)s->skipped);
  }
}
