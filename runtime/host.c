#include "host.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "admin.h"
#include "broker.h"
#include "contract.h"
#include "cli.h"
#include "db.h"
#include "dispatch.h"
#include "fault.h"
#include "log.h"
#include "metrics.h"
#include "migrate.h"
#include "notify.h"
#include "plugin.h"
#include "relay.h"

/* A publish waiting for its confirm: a forwarded copy of delivery d (to _error, _skipped
 * or a delay queue), or an outbox row. */
typedef struct {
  uint64_t seq;
  ctxd__delivery_t *d;
  ctxd__outrow_t *row;
} pending_confirm_t;

struct ctxd__host_s {
  const ctxd__config_t *cfg;
  uv_loop_t loop;
  uv_signal_t sigint, sigterm, sighup;
  uv_poll_t poll;
  uv_timer_t heartbeat, reconnect, drain_deadline, watchdog;
  uv_async_t done_async;
  int poll_active;

  pthread_mutex_t done_mu;
  ctxd__batch_t *done_head, *done_tail; /* under done_mu */
  ctxd__outrow_t *to_publish;           /* under done_mu: swept outbox rows */
  int loop_closed;                      /* under done_mu: no more async sends */
  ctxd__relay_t *relay;
  struct {
    char *name;
    int unroutable_noted; /* an event without subscriber was logged once */
  } *declared;            /* exchanges declared on this connection */
  size_t ndeclared;

  ctxd__broker_t broker;
  uint64_t gen; /* bumped on every connection loss: stale completions are dropped */
  int backoff_ms;
  int ready_logged;

  ctxd_plugin_t **plugins;
  size_t nplugins;
  ctxd__endpoint_t **endpoints;
  size_t nendpoints;

  pending_confirm_t *confirms;
  size_t nconfirms, capconfirms;

  ctxd__contracts_t *contracts;
  ctxd__admin_t *admin;
  uint64_t reconnects;
  size_t node; /* index in cfg->broker_urls of the node to connect to */
  size_t inflight; /* deliveries received and not yet settled or dropped */
  /* a plugin replacement under way: fresh waits while old's endpoints drain */
  struct {
    ctxd_plugin_t *old, *fresh;
    size_t index;
  } swap;
  int stopping;
  int exit_code;
};

const ctxd__config_t *ctxd__host_config(const ctxd__host_t *h) { return h->cfg; }

const ctxd__contracts_t *ctxd__host_contracts(const ctxd__host_t *h) { return h->contracts; }

/* ---- registration ------------------------------------------------------------------- */

static int valid_endpoint(const char *s) {
  if (s == NULL || *s == '\0' || strlen(s) > 200) return 0;
  for (; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
          *s == '_' || *s == '-' || *s == '.'))
      return 0;
  return 1;
}

static ctxd__endpoint_t *endpoint_get(ctxd__host_t *h, const char *name) {
  for (size_t i = 0; i < h->nendpoints; i++)
    if (strcmp(h->endpoints[i]->name, name) == 0) return h->endpoints[i];
  ctxd__endpoint_t **grown = realloc(h->endpoints, (h->nendpoints + 1) * sizeof *grown);
  if (grown == NULL) return NULL;
  h->endpoints = grown;
  ctxd__endpoint_t *ep = calloc(1, sizeof *ep);
  if (ep == NULL || (ep->name = strdup(name)) == NULL) {
    free(ep);
    return NULL;
  }
  ep->settings = *ctxd__config_endpoint(h->cfg, name);
  ep->own = ctxd__config_endpoint_own(h->cfg, name);
  ep->nredelivery = ctxd__config_intervals(ep->settings.redelivery_ms, ep->redelivery_ms,
                                           CTXD__MAX_REDELIVERIES);
  ep->channel = CTXD__PUBLISH_CHANNEL + 1 + (int)h->nendpoints;
  ep->host = h;
  ctxd__histogram_init(&ep->stats.handler_seconds, &ctxd__buckets_seconds);
  ctxd__histogram_init(&ep->stats.batch_seconds, &ctxd__buckets_seconds);
  ctxd__histogram_init(&ep->stats.batch_size, &ctxd__buckets_sizes);
  ep->stats.db_ok = 1; /* the start-up migrations just reached it */
  pthread_mutex_init(&ep->mu, NULL);
  pthread_cond_init(&ep->cv, NULL);
  pthread_cond_init(&ep->pause_cv, NULL);
  h->endpoints[h->nendpoints++] = ep;
  return ep;
}

/* Takes what the plugin suggests for settings the configuration leaves open. */
static int suggest(ctxd__endpoint_t *ep, const ctxd_consumer_t *c) {
  unsigned done = ep->own;
  if (c->queue_type != NULL && strcmp(c->queue_type, "classic") != 0 && strcmp(c->queue_type, "quorum") != 0)
    return CTXD_EINVAL;
  if (c->prefetch > 65535 || c->workers > 64) return CTXD_EINVAL;
  if (c->prefetch && !(done & CTXD__EP_PREFETCH)) ep->settings.prefetch = c->prefetch;
  if (c->workers && !(done & CTXD__EP_WORKERS)) ep->settings.workers = c->workers;
  if (c->batch_size && !(done & CTXD__EP_BATCH_SIZE)) ep->settings.batch_size = c->batch_size;
  if (c->queue_type != NULL && !(done & CTXD__EP_QUEUE_TYPE))
    ep->settings.queue_type = strcmp(c->queue_type, "quorum") == 0 ? "quorum" : "classic";
  /* the first suggestion of each wins */
  ep->own |= (c->prefetch ? CTXD__EP_PREFETCH : 0) | (c->workers ? CTXD__EP_WORKERS : 0) |
             (c->batch_size ? CTXD__EP_BATCH_SIZE : 0) | (c->queue_type ? CTXD__EP_QUEUE_TYPE : 0);
  /* a batch never waits for more than the broker may hand over */
  if (ep->settings.batch_size > ep->settings.prefetch) ep->settings.batch_size = ep->settings.prefetch;
  return 0;
}

/* A replacement's registrations wait until the swap; the old version still runs. */
static int stage(ctxd_plugin_t *p, const ctxd_consumer_t *c) {
  ctxd_consumer_t *grown = realloc(p->staged, (p->nstaged + 1) * sizeof *grown);
  if (grown == NULL) return CTXD_ENOMEM;
  p->staged = grown;
  ctxd_consumer_t *s = &p->staged[p->nstaged];
  *s = *c;
  s->size = sizeof *s;
  s->endpoint = strdup(c->endpoint);
  s->message_type = strdup(c->message_type);
  s->queue_type = NULL; /* an endpoint keeps its settings across a swap */
  p->nstaged++;
  return s->endpoint != NULL && s->message_type != NULL ? 0 : CTXD_ENOMEM;
}

/* Adds a handler of `type` (upcasting to `upcast_to` when not NULL). A plugin's own
 * registration of a type replaces an implicit upcasting one. */
static int add_entry(ctxd__endpoint_t *ep, ctxd_plugin_t *p, const ctxd_consumer_t *c, const char *type,
                     const char *upcast_to) {
  for (size_t i = 0; i < ep->nhandlers; i++) {
    ctxd__handler_t *hd = &ep->handlers[i];
    if (strcmp(hd->type, type) != 0) continue;
    if (upcast_to != NULL) return 0; /* the type has a handler of its own already */
    if (hd->upcast_to == NULL) return CTXD_EEXIST;
    free(hd->upcast_to);
    hd->upcast_to = NULL;
    hd->fn = c->handler;
    hd->data = c->data;
    hd->plugin = p;
    return 0;
  }
  ctxd__handler_t *grown = realloc(ep->handlers, (ep->nhandlers + 1) * sizeof *grown);
  if (grown == NULL) return CTXD_ENOMEM;
  ep->handlers = grown;
  ctxd__handler_t *hd = &ep->handlers[ep->nhandlers];
  memset(hd, 0, sizeof *hd);
  if ((hd->type = strdup(type)) == NULL) return CTXD_ENOMEM;
  if (upcast_to != NULL && (hd->upcast_to = strdup(upcast_to)) == NULL) {
    free(hd->type);
    return CTXD_ENOMEM;
  }
  hd->fn = c->handler;
  hd->data = c->data;
  hd->plugin = p;
  ep->nhandlers++;
  return 0;
}

/* The handler for c's type, and one for each older version that upcasts to it: old
 * publishers keep reaching a handler that asked for the newest version. */
static int add_handler(ctxd__host_t *h, ctxd__endpoint_t *ep, ctxd_plugin_t *p, const ctxd_consumer_t *c) {
  int rc = add_entry(ep, p, c, c->message_type, NULL);
  const char *older[16];
  size_t n = ctxd__contracts_older(h->contracts, c->message_type, older, 16);
  for (size_t i = 0; rc == 0 && i < n && i < 16; i++) rc = add_entry(ep, p, c, older[i], c->message_type);
  return rc;
}

int ctxd__host_register(ctxd__host_t *h, ctxd_plugin_t *p, const ctxd_consumer_t *c) {
  if (!p->in_init) return CTXD_ESTATE;
  if (c == NULL || c->size < sizeof(ctxd_consumer_t) || c->handler == NULL ||
      !valid_endpoint(c->endpoint) || c->message_type == NULL || strchr(c->message_type, ':') == NULL)
    return CTXD_EINVAL;
  if (p->staging) return stage(p, c);
  ctxd__endpoint_t *ep = endpoint_get(h, c->endpoint);
  if (ep == NULL) return CTXD_ENOMEM;
  int rc = suggest(ep, c);
  return rc != 0 ? rc : add_handler(h, ep, p, c);
}

/* ---- settlement ---------------------------------------------------------------------- */

static ctxd__delivery_t **slot(ctxd__endpoint_t *ep, uint64_t tag) {
  return &ep->ledger[tag % (uint64_t)ep->settings.prefetch];
}

static void connection_lost(ctxd__host_t *h, const char *why);

/* Acknowledges, in tag order, every finished delivery at the head of the endpoint's
 * ledger. Runs of acks become one multiple-ack: every earlier tag is settled by then. */
static void settle(ctxd__host_t *h, ctxd__endpoint_t *ep) {
  uint64_t run_end = 0;
  int rc = 0;
  while (rc == 0 && ep->ledger_base <= ep->ledger_top) {
    ctxd__delivery_t *d = *slot(ep, ep->ledger_base);
    if (d == NULL || !d->completed || d->awaiting_confirm) break;
    if (d->outcome == CTXD__OUT_REQUEUE || d->outcome == CTXD__OUT_ABANDON) {
      if (run_end != 0) rc = ctxd__broker_ack(&h->broker, ep->channel, run_end, 1);
      run_end = 0;
      if (rc == 0) rc = ctxd__broker_nack(&h->broker, ep->channel, d->tag, 1);
    } else {
      run_end = d->tag;
    }
    *slot(ep, ep->ledger_base) = NULL;
    ep->ledger_base++;
    h->inflight--;
    ep->inflight--;
    ctxd__delivery_free(d);
  }
  if (rc == 0 && run_end != 0) rc = ctxd__broker_ack(&h->broker, ep->channel, run_end, 1);
  if (rc != 0) connection_lost(h, "acknowledgement failed");
}

static void add_header(amqp_table_entry_t *e, const char *key, const char *value) {
  e->key = amqp_cstring_bytes(key);
  e->value.kind = AMQP_FIELD_KIND_UTF8;
  e->value.value.bytes = amqp_cstring_bytes(value);
}

static int track_confirm(ctxd__host_t *h, uint64_t seq, ctxd__delivery_t *d, ctxd__outrow_t *row) {
  if (h->nconfirms == h->capconfirms) {
    size_t cap = h->capconfirms ? h->capconfirms * 2 : 64;
    pending_confirm_t *grown = realloc(h->confirms, cap * sizeof *grown);
    if (grown == NULL) return CTXD_ENOMEM;
    h->confirms = grown;
    h->capconfirms = cap;
  }
  h->confirms[h->nconfirms++] = (pending_confirm_t){seq, d, row};
  return 0;
}

/* Publishes a copy of d: to a delay queue (a redelivery), or to <queue>_error or
 * <queue>_skipped with MassTransit's fault headers. d is acknowledged once the broker
 * confirms the copy. */
static int forward(ctxd__host_t *h, ctxd__delivery_t *d) {
  ctxd__endpoint_t *ep = d->ep;
  char exchange[256], when[32], retries[16], redeliveries[16];
  const char *reason = "fault";
  int delayed = d->outcome == CTXD__OUT_REDELIVER && d->redeliveries < ep->nredelivery;
  if (delayed) {
    snprintf(exchange, sizeof exchange, "%s_delay_%lld", ep->name,
             (long long)ep->redelivery_ms[d->redeliveries]);
  } else if (d->outcome == CTXD__OUT_SKIPPED) {
    snprintf(exchange, sizeof exchange, "%s_skipped", ep->name);
    reason = "dead-letter";
  } else {
    snprintf(exchange, sizeof exchange, "%s_error", ep->name);
  }
  time_t now = time(NULL);
  struct tm tm;
  gmtime_r(&now, &tm);
  strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
  snprintf(retries, sizeof retries, "%d", d->retries);
  snprintf(redeliveries, sizeof redeliveries, "%d", d->redeliveries + (delayed ? 1 : 0));

  amqp_basic_properties_t props = d->msg.properties;
  amqp_table_t orig = (props._flags & AMQP_BASIC_HEADERS_FLAG) ? props.headers : amqp_empty_table;
  amqp_table_entry_t *entries = calloc((size_t)orig.num_entries + 8, sizeof *entries);
  if (entries == NULL) return CTXD_ENOMEM;
  int n = 0;
  for (int i = 0; i < orig.num_entries; i++)
    if (!ctxd__envelope_fault_header(orig.entries[i].key.bytes, orig.entries[i].key.len))
      entries[n++] = orig.entries[i];
  add_header(&entries[n++], CTXD__REDELIVERY_HEADER, redeliveries);
  if (!delayed) {
    add_header(&entries[n++], "MT-Reason", reason);
    if (d->outcome != CTXD__OUT_SKIPPED) {
      add_header(&entries[n++], "MT-Fault-ExceptionType", d->fault_type != NULL ? d->fault_type : "ctxd.Fault");
      add_header(&entries[n++], "MT-Fault-Message", d->reason != NULL ? d->reason : "");
      add_header(&entries[n++], "MT-Fault-Timestamp", when);
      add_header(&entries[n++], "MT-Fault-RetryCount", retries);
      add_header(&entries[n++], "MT-Fault-RedeliveryCount", redeliveries);
    }
    add_header(&entries[n++], "MT-Host-ProcessName", "ctxd");
  }
  props.headers.num_entries = n;
  props.headers.entries = entries;
  props._flags |= AMQP_BASIC_HEADERS_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG;
  props.delivery_mode = AMQP_DELIVERY_PERSISTENT;

  uint64_t seq;
  int rc = ctxd__broker_publish(&h->broker, exchange, "", 0, &props, d->msg.body, &seq);
  free(entries);
  if (rc == 0) rc = track_confirm(h, seq, d, NULL);
  if (rc == 0) d->awaiting_confirm = 1;
  return rc;
}

/* Declares a message's exchange once per connection: publishing to a missing exchange
 * would close the channel. A synchronous RPC, but rare: once per exchange. */
static int ensure_exchange(ctxd__host_t *h, const char *name) {
  for (size_t i = 0; i < h->ndeclared; i++)
    if (strcmp(h->declared[i].name, name) == 0) return 0;
  char err[512];
  if (ctxd__broker_exchange(&h->broker, CTXD__PUBLISH_CHANNEL, name, err, sizeof err) != 0) {
    ctxd__log(CTXD__LOG_WARN, "host", "outbox: %s", err);
    return CTXD_EBROKER;
  }
  void *grown = realloc(h->declared, (h->ndeclared + 1) * sizeof *h->declared);
  if (grown == NULL) return CTXD_ENOMEM;
  h->declared = grown;
  if ((h->declared[h->ndeclared].name = strdup(name)) == NULL) return CTXD_ENOMEM;
  h->declared[h->ndeclared++].unroutable_noted = 0;
  return 0;
}

static void forget_declared(ctxd__host_t *h) {
  for (size_t i = 0; i < h->ndeclared; i++) free(h->declared[i].name);
  free(h->declared);
  h->declared = NULL;
  h->ndeclared = 0;
}

/* Publishes outbox rows (mandatory, persistent) and tracks their confirms. Rows that
 * cannot go now are dropped here: they stay in ctxd.outbox and the sweep sends them once
 * their lease ends. */
static void publish_rows(ctxd__host_t *h, ctxd__outrow_t *rows) {
  while (rows != NULL) {
    ctxd__outrow_t *row = rows;
    rows = row->next;
    row->next = NULL;
    if (h->broker.conn == NULL || ensure_exchange(h, row->exchange) != 0) {
      ctxd__outrow_free_list(row);
      continue;
    }
    amqp_basic_properties_t props = {0};
    props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_MESSAGE_ID_FLAG;
    props.content_type = amqp_cstring_bytes(CTXD__ENVELOPE_CONTENT_TYPE);
    props.delivery_mode = AMQP_DELIVERY_PERSISTENT;
    props.message_id = amqp_cstring_bytes(row->message_id);
    uint64_t seq;
    if (ctxd__broker_publish(&h->broker, row->exchange, "", 1, &props, amqp_cstring_bytes(row->body), &seq) != 0 ||
        track_confirm(h, seq, NULL, row) != 0) {
      ctxd__outrow_free_list(row);
      ctxd__outrow_free_list(rows);
      connection_lost(h, "publishing an outbox row failed");
      return;
    }
    ctxd__fault_point("after-publish");
  }
}

/* basic.return: no queue is bound to the row's exchange. The row is still archived, but
 * marked, and said: silence would be a lost message. A command or a reply that nobody can
 * receive is a warning each time; an event nobody subscribes to yet is normal in
 * publish/subscribe, so it is said once per exchange and connection. */
static void on_return(ctxd__host_t *h, const amqp_basic_return_t *ret, const amqp_message_t *msg) {
  amqp_bytes_t id = (msg->properties._flags & AMQP_BASIC_MESSAGE_ID_FLAG) ? msg->properties.message_id
                                                                           : amqp_empty_bytes;
  for (size_t i = 0; i < h->nconfirms; i++) {
    ctxd__outrow_t *row = h->confirms[i].row;
    if (row == NULL || id.len != strlen(row->message_id) || memcmp(id.bytes, row->message_id, id.len) != 0)
      continue;
    row->unroutable = 1;
    int *noted = NULL;
    for (size_t k = 0; k < h->ndeclared; k++)
      if (strcmp(h->declared[k].name, row->exchange) == 0) noted = &h->declared[k].unroutable_noted;
    if (row->event && noted != NULL && *noted) return;
    if (row->event && noted != NULL) *noted = 1;
    ctxd__logf(row->event ? CTXD__LOG_INFO : CTXD__LOG_WARN, "host",
               &(ctxd__log_fields_t){.message_id = row->message_id},
               row->event ? "outbox: no subscriber for events on '%s' yet (%.*s); they are archived as unroutable"
                          : "outbox: message to exchange '%s' was unroutable (%.*s): no queue is bound to it",
               row->exchange, (int)ret->reply_text.len, (char *)ret->reply_text.bytes);
    return;
  }
}

static void on_confirm(ctxd__host_t *h, uint64_t tag, int multiple, int ok) {
  /* pending confirms are in sequence order: a multiple confirm settles a prefix, a single
   * one the entry with its sequence number */
  size_t lo = 0, hi = h->nconfirms;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (h->confirms[mid].seq < tag) lo = mid + 1; else hi = mid;
  }
  size_t end = lo < h->nconfirms && h->confirms[lo].seq == tag ? lo + 1 : lo;
  size_t start = multiple ? 0 : lo;
  if (start == end) return; /* a confirm for a publish of a lost connection */
  ctxd__outrow_t *archived = NULL;
  for (size_t i = start; i < end; i++) {
    pending_confirm_t pc = h->confirms[i];
    if (pc.row != NULL) {
      /* a nacked row keeps its outbox row; the sweep sends it again */
      if (ok) {
        pc.row->next = archived;
        archived = pc.row;
      } else {
        ctxd__outrow_free_list(pc.row);
      }
      continue;
    }
    pc.d->awaiting_confirm = 0;
    /* a copy the broker refused must not cost the original: deliver it again */
    if (!ok) pc.d->outcome = CTXD__OUT_REQUEUE;
  }
  memmove(&h->confirms[start], &h->confirms[end], (h->nconfirms - end) * sizeof *h->confirms);
  h->nconfirms -= end - start;
  ctxd__relay_archive(h->relay, archived);
  for (size_t i = 0; i < h->nendpoints && h->broker.conn != NULL; i++) settle(h, h->endpoints[i]);
}

static void drop_confirms(ctxd__host_t *h) {
  for (size_t i = 0; i < h->nconfirms; i++) ctxd__outrow_free_list(h->confirms[i].row);
  h->nconfirms = 0;
}

static void finish_batch(ctxd__host_t *h, ctxd__batch_t *b) {
  ctxd__endpoint_t *ep = b->ep;
  /* committed rows go out whatever happened to the connection the batch came on */
  publish_rows(h, b->rows);
  b->rows = NULL;
  if (b->gen != h->gen) {
    /* came on a lost connection: the broker redelivers, the inbox drops the duplicate */
    for (size_t i = 0; i < b->n; i++) ctxd__delivery_free(b->items[i]);
    h->inflight -= b->n;
    ep->inflight -= b->n;
    free(b);
    return;
  }
  for (size_t i = 0; i < b->n; i++) {
    ctxd__delivery_t *d = b->items[i];
    d->completed = 1;
    int copy = d->outcome == CTXD__OUT_ERROR || d->outcome == CTXD__OUT_SKIPPED ||
               d->outcome == CTXD__OUT_REDELIVER;
    if (copy && forward(h, d) != 0) {
      free(b);
      connection_lost(h, "publishing to an error queue failed");
      return;
    }
  }
  free(b);
  settle(h, ep);
}

static void progressed(ctxd__host_t *h);

static void on_done(uv_async_t *a) {
  ctxd__host_t *h = a->data;
  pthread_mutex_lock(&h->done_mu);
  ctxd__batch_t *b = h->done_head;
  h->done_head = h->done_tail = NULL;
  ctxd__outrow_t *rows = h->to_publish;
  h->to_publish = NULL;
  pthread_mutex_unlock(&h->done_mu);
  publish_rows(h, rows);
  while (b != NULL) {
    ctxd__batch_t *next = b->next;
    finish_batch(h, b);
    b = next;
  }
  progressed(h);
}

void ctxd__host_complete(ctxd__host_t *h, ctxd__batch_t *b) {
  b->next = NULL;
  pthread_mutex_lock(&h->done_mu);
  if (h->done_tail != NULL)
    h->done_tail->next = b;
  else
    h->done_head = b;
  h->done_tail = b;
  if (!h->loop_closed) uv_async_send(&h->done_async);
  pthread_mutex_unlock(&h->done_mu);
}

void ctxd__host_publish_rows(ctxd__host_t *h, ctxd__outrow_t *rows) {
  ctxd__outrow_t *last = rows;
  while (last->next != NULL) last = last->next;
  pthread_mutex_lock(&h->done_mu);
  last->next = h->to_publish;
  h->to_publish = rows;
  if (!h->loop_closed) uv_async_send(&h->done_async);
  pthread_mutex_unlock(&h->done_mu);
}

/* ---- receiving ------------------------------------------------------------------------ */

static void flush_batches(ctxd__host_t *h) {
  for (size_t i = 0; i < h->nendpoints; i++) {
    ctxd__endpoint_t *ep = h->endpoints[i];
    if (ep->filling != NULL && ep->filling->n > 0) {
      ctxd__endpoint_submit(ep, ep->filling);
      ep->filling = NULL;
    }
  }
}

static ctxd__endpoint_t *endpoint_of_channel(ctxd__host_t *h, int channel) {
  size_t i = (size_t)(channel - CTXD__PUBLISH_CHANNEL - 1);
  return channel > CTXD__PUBLISH_CHANNEL && i < h->nendpoints ? h->endpoints[i] : NULL;
}

static int on_deliver(ctxd__host_t *h, int channel, const amqp_basic_deliver_t *m) {
  ctxd__endpoint_t *ep = endpoint_of_channel(h, channel);
  ctxd__delivery_t *d = calloc(1, sizeof *d);
  if (d == NULL) return CTXD_ENOMEM;
  if (ctxd__broker_read_content(&h->broker, channel, &d->msg) != 0) {
    free(d);
    return CTXD_ECLOSED;
  }
  if (ep == NULL) { /* cannot happen: only endpoint channels consume */
    ctxd__delivery_free(d);
    return CTXD_ESTATE;
  }
  d->ep = ep;
  d->tag = m->delivery_tag;
  if (ep->ledger_base == 0) ep->ledger_base = d->tag;
  ep->ledger_top = d->tag;
  *slot(ep, d->tag) = d;
  h->inflight++;
  ep->inflight++;
  ep->received++;
  size_t cap = (size_t)ep->settings.batch_size;
  if (ep->filling == NULL) {
    ep->filling = calloc(1, sizeof *ep->filling + cap * sizeof(ctxd__delivery_t *));
    if (ep->filling == NULL) return CTXD_ENOMEM;
    ep->filling->ep = ep;
    ep->filling->gen = h->gen;
    ep->filling->cap = cap;
  }
  ep->filling->items[ep->filling->n++] = d;
  if (ep->filling->n == cap) {
    ctxd__endpoint_submit(ep, ep->filling);
    ep->filling = NULL;
  }
  return 0;
}

/* Reads every frame available now. Buffered frames never make the socket readable
 * again, so stop only when the library says nothing is left. */
static void drain(ctxd__host_t *h) {
  while (h->broker.conn != NULL) {
    amqp_frame_t f;
    int rc = ctxd__broker_next_frame(&h->broker, &f);
    if (rc == CTXD_ETIMEDOUT) break;
    if (rc != 0) {
      connection_lost(h, "connection to the broker lost");
      return;
    }
    if (f.frame_type != AMQP_FRAME_METHOD) continue;
    switch (f.payload.method.id) {
    case AMQP_BASIC_DELIVER_METHOD:
      rc = on_deliver(h, f.channel, f.payload.method.decoded);
      break;
    case AMQP_BASIC_ACK_METHOD: {
      amqp_basic_ack_t *a = f.payload.method.decoded;
      on_confirm(h, a->delivery_tag, a->multiple, 1);
      break;
    }
    case AMQP_BASIC_NACK_METHOD: {
      amqp_basic_nack_t *a = f.payload.method.decoded;
      on_confirm(h, a->delivery_tag, a->multiple, 0);
      break;
    }
    case AMQP_BASIC_RETURN_METHOD: {
      amqp_basic_return_t ret = *(amqp_basic_return_t *)f.payload.method.decoded;
      amqp_message_t msg;
      rc = ctxd__broker_read_content(&h->broker, f.channel, &msg);
      if (rc == 0) {
        on_return(h, &ret, &msg);
        amqp_destroy_message(&msg);
      }
      break;
    }
    case AMQP_BASIC_CANCEL_OK_METHOD:
      break;
    case AMQP_BASIC_CANCEL_METHOD:
      connection_lost(h, "the broker cancelled a consumer (queue deleted?)");
      return;
    case AMQP_CHANNEL_CLOSE_METHOD:
    case AMQP_CONNECTION_CLOSE_METHOD:
      connection_lost(h, "the broker closed the connection or a channel");
      return;
    default:
      break;
    }
    if (rc != 0) {
      connection_lost(h, "reading a delivery failed");
      return;
    }
    amqp_maybe_release_buffers(h->broker.conn);
  }
  flush_batches(h);
  progressed(h);
}

static void on_poll(uv_poll_t *p, int status, int events) {
  (void)events;
  ctxd__host_t *h = p->data;
  if (status < 0) {
    connection_lost(h, uv_strerror(status));
    return;
  }
  drain(h);
}

static void on_heartbeat(uv_timer_t *t) {
  ctxd__host_t *h = t->data;
  if (h->broker.conn != NULL) drain(h);
}

/* ---- connection ---------------------------------------------------------------------- */

static void add_i64(amqp_table_entry_t *e, const char *key, int64_t value) {
  e->key = amqp_cstring_bytes(key);
  e->value.kind = AMQP_FIELD_KIND_I64;
  e->value.value.i64 = value;
}

/* Queue arguments, built up one entry at a time. */
typedef struct {
  amqp_table_entry_t e[6];
  int n;
} qargs_t;

static amqp_table_t qargs_table(qargs_t *q) { return (amqp_table_t){q->n, q->n ? q->e : NULL}; }

/* Quorum queues dead-letter at least once (RabbitMQ confirms the move internally) only
 * with reject-publish overflow; the default, at most once, may drop a message when the
 * target's leader is unavailable. */
static void quorum_dead_letter(qargs_t *q, const char *exchange) {
  add_header(&q->e[q->n++], "x-dead-letter-exchange", exchange);
  add_header(&q->e[q->n++], "x-dead-letter-strategy", "at-least-once");
  add_header(&q->e[q->n++], "x-overflow", "reject-publish");
}

static int declare_topology(ctxd__host_t *h, char *err, size_t errlen) {
  ctxd__broker_t *b = &h->broker;
  for (size_t i = 0; i < h->nendpoints; i++) {
    ctxd__endpoint_t *ep = h->endpoints[i];
    char side[256], error[256];
    /* On a cluster a classic queue lives on one node and cannot even be declared while
     * that node is down: every queue beside a quorum endpoint is a quorum queue too. */
    int quorum = strcmp(ep->settings.queue_type, "quorum") == 0;
    qargs_t base = {.n = 0};
    if (quorum) add_header(&base.e[base.n++], "x-queue-type", "quorum");
    snprintf(error, sizeof error, "%s_error", ep->name);
    if (ctxd__broker_queue(b, CTXD__PUBLISH_CHANNEL, error, qargs_table(&base), err, errlen) != 0)
      return CTXD_EBROKER;
    for (int k = 0; k < ep->nredelivery; k++) {
      /* a delay queue: its messages expire after the interval and dead-letter back to the
       * endpoint's exchange (the delayed-message plugin is not bundled with RabbitMQ) */
      qargs_t d = base;
      add_i64(&d.e[d.n++], "x-message-ttl", ep->redelivery_ms[k]);
      if (quorum)
        quorum_dead_letter(&d, ep->name);
      else
        add_header(&d.e[d.n++], "x-dead-letter-exchange", ep->name);
      snprintf(side, sizeof side, "%s_delay_%lld", ep->name, (long long)ep->redelivery_ms[k]);
      if (ctxd__broker_queue(b, CTXD__PUBLISH_CHANNEL, side, qargs_table(&d), err, errlen) != 0)
        return CTXD_EBROKER;
    }
    qargs_t main = base;
    if (quorum) {
      /* an explicit limit and dead-letter target: a poison message ends in _error */
      add_i64(&main.e[main.n++], "x-delivery-limit", ep->settings.delivery_limit);
      quorum_dead_letter(&main, error);
    }
    snprintf(side, sizeof side, "%s_skipped", ep->name);
    if (ctxd__broker_queue(b, CTXD__PUBLISH_CHANNEL, side, qargs_table(&base), err, errlen) != 0 ||
        ctxd__broker_queue(b, CTXD__PUBLISH_CHANNEL, ep->name, qargs_table(&main), err, errlen) != 0)
      return CTXD_EBROKER;
    for (size_t k = 0; k < ep->nhandlers; k++) {
      if (ctxd__broker_exchange(b, CTXD__PUBLISH_CHANNEL, ep->handlers[k].type, err, errlen) != 0 ||
          ctxd__broker_bind(b, CTXD__PUBLISH_CHANNEL, ep->handlers[k].type, ep->name, err, errlen) != 0)
        return CTXD_EBROKER;
    }
  }
  return 0;
}

static int start_consuming(ctxd__host_t *h, char *err, size_t errlen) {
  for (size_t i = 0; i < h->nendpoints; i++) {
    ctxd__endpoint_t *ep = h->endpoints[i];
    ep->ledger_base = ep->ledger_top = 0;
    if (ctxd__broker_channel_open(&h->broker, ep->channel, err, errlen) != 0) return CTXD_EBROKER;
    /* a draining endpoint consumes again when its plugin's swap completes */
    if (ep->draining) continue;
    if (ctxd__broker_consume(&h->broker, ep->channel, ep->name, (int)ep->settings.prefetch, err,
                             errlen) != 0)
      return CTXD_EBROKER;
    ep->consuming = 1;
  }
  return 0;
}

static void on_reconnect(uv_timer_t *t);

static void schedule_reconnect(ctxd__host_t *h) {
  if (h->stopping) return;
  int max = (int)h->cfg->reconnect_max_ms;
  /* jitter keeps a fleet of hosts from reconnecting in lockstep */
  int delay = h->backoff_ms / 2 + rand() % (h->backoff_ms / 2 + 1);
  h->backoff_ms = h->backoff_ms * 2 > max ? max : h->backoff_ms * 2;
  uv_timer_start(&h->reconnect, on_reconnect, (uint64_t)delay, 0);
}

static void connect_broker(ctxd__host_t *h) {
  char err[512], safe[512];
  const char *url = h->cfg->broker_urls[h->node];
  int rc = ctxd__broker_connect(&h->broker, url, (int)h->cfg->heartbeat_s,
                                (int)h->cfg->rpc_timeout_ms, err, sizeof err);
  if (rc == 0) rc = declare_topology(h, err, sizeof err);
  if (rc == 0) rc = start_consuming(h, err, sizeof err);
  if (rc == 0 && uv_poll_init(&h->loop, &h->poll, h->broker.fd) == 0) {
    h->poll.data = h;
    uv_poll_start(&h->poll, UV_READABLE, on_poll);
    h->poll_active = 1;
  } else if (rc == 0) {
    rc = CTXD_EBROKER;
    snprintf(err, sizeof err, "cannot poll the broker socket");
  }
  if (rc != 0) {
    ctxd__broker_close(&h->broker, 0);
    ctxd__config_redact_url(url, safe, sizeof safe);
    ctxd__log(CTXD__LOG_WARN, "host", "broker %s: %s; retrying", safe, err);
    h->node = (h->node + 1) % h->cfg->nbroker_urls; /* a cluster: the next node */
    schedule_reconnect(h);
    return;
  }
  h->backoff_ms = 100;
  if (!h->ready_logged) {
    ctxd__log(CTXD__LOG_INFO, "host", "ready: %zu plugins, %zu endpoints consuming", h->nplugins,
              h->nendpoints);
    h->ready_logged = 1;
    if (ctxd__notify("READY=1\nSTATUS=consuming") != 0)
      ctxd__log(CTXD__LOG_WARN, "host", "could not tell the service manager we are ready");
  } else {
    h->reconnects++;
    ctxd__config_redact_url(url, safe, sizeof safe);
    ctxd__log(CTXD__LOG_INFO, "host", "reconnected to the broker (%s); consuming again", safe);
  }
  drain(h); /* frames may already sit in the library's buffer */
}

static void on_reconnect(uv_timer_t *t) { connect_broker(t->data); }

static void on_poll_closed(uv_handle_t *handle) { (void)handle; }

/* Drops the connection: every unsettled delivery comes back from the broker and the inbox
 * recognises what was already committed. */
static void connection_lost(ctxd__host_t *h, const char *why) {
  if (h->broker.conn == NULL) return;
  ctxd__log(CTXD__LOG_WARN, "host", "broker: %s; reconnecting", why);
  /* the node may be gone: in a cluster, try the next one first */
  h->node = (h->node + 1) % h->cfg->nbroker_urls;
  if (h->poll_active) {
    uv_poll_stop(&h->poll);
    uv_close((uv_handle_t *)&h->poll, on_poll_closed);
    h->poll_active = 0;
  }
  ctxd__broker_close(&h->broker, 0);
  h->gen++;
  drop_confirms(h);
  forget_declared(h);
  for (size_t i = 0; i < h->nendpoints; i++) {
    ctxd__endpoint_t *ep = h->endpoints[i];
    ep->consuming = 0;
    /* deliveries a worker still holds come back through finish_batch as stale */
    for (uint64_t tag = ep->ledger_base; tag != 0 && tag <= ep->ledger_top; tag++) {
      ctxd__delivery_t **s = slot(ep, tag);
      if (*s != NULL && (*s)->completed) {
        ctxd__delivery_free(*s);
        h->inflight--;
        ep->inflight--;
      }
      *s = NULL;
    }
    ep->ledger_base = ep->ledger_top = 0;
    if (ep->filling != NULL) {
      for (size_t k = 0; k < ep->filling->n; k++) ctxd__delivery_free(ep->filling->items[k]);
      h->inflight -= ep->filling->n;
      ep->inflight -= ep->filling->n;
      free(ep->filling);
      ep->filling = NULL;
    }
  }
  schedule_reconnect(h);
  progressed(h);
}

/* ---- stopping ----------------------------------------------------------------------- */

static void close_walk(uv_handle_t *handle, void *arg) {
  (void)arg;
  if (!uv_is_closing(handle)) uv_close(handle, NULL);
}

static void maybe_finish_stop(ctxd__host_t *h) {
  if (!h->stopping || h->inflight > 0 || h->nconfirms > 0) return;
  if (h->broker.conn != NULL) {
    if (h->poll_active) {
      uv_poll_stop(&h->poll);
      h->poll_active = 0;
    }
    ctxd__broker_close(&h->broker, 1);
  }
  pthread_mutex_lock(&h->done_mu);
  h->loop_closed = 1;
  pthread_mutex_unlock(&h->done_mu);
  if (h->admin != NULL) ctxd__admin_close(h->admin); /* frees itself in its close callbacks */
  h->admin = NULL;
  uv_walk(&h->loop, close_walk, NULL);
}

static void on_drain_deadline(uv_timer_t *t) {
  ctxd__host_t *h = t->data;
  ctxd__log(CTXD__LOG_WARN, "host", "stop deadline reached with %zu deliveries unsettled; the "
            "broker will redeliver them", h->inflight);
  connection_lost(h, "stop deadline");
  h->inflight = 0;
  for (size_t i = 0; i < h->nendpoints; i++) h->endpoints[i]->inflight = 0;
  drop_confirms(h);
  maybe_finish_stop(h);
}

static void begin_stop(ctxd__host_t *h, const char *why) {
  if (h->stopping) return;
  h->stopping = 1;
  ctxd__log(CTXD__LOG_INFO, "host", "stopping (%s): finishing %zu deliveries in flight", why,
            h->inflight);
  if (h->swap.fresh != NULL) {
    /* the replacement never ran: the old version drains and stops as usual */
    ctxd__plugin_free(h->swap.fresh);
    h->swap.old = h->swap.fresh = NULL;
    for (size_t i = 0; i < h->nendpoints; i++) h->endpoints[i]->draining = 0;
  }
  ctxd__notify("STOPPING=1");
  uv_timer_stop(&h->reconnect);
  if (h->broker.conn != NULL) {
    for (size_t i = 0; i < h->nendpoints; i++)
      if (h->endpoints[i]->consuming)
        ctxd__broker_cancel(&h->broker, h->endpoints[i]->channel, h->endpoints[i]->name);
  }
  flush_batches(h);
  /* a deadline, so a wedged database cannot hold the process forever; what is not
   * acknowledged by then is redelivered by the broker */
  uv_timer_start(&h->drain_deadline, on_drain_deadline, 30000, 0);
  maybe_finish_stop(h);
}

/* Pings come from the loop itself: a wedged loop stops them and systemd restarts us. */
static void on_watchdog(uv_timer_t *t) {
  (void)t;
  ctxd__notify("WATCHDOG=1");
}

static void on_signal(uv_signal_t *s, int signum) {
  begin_stop(s->data, signum == SIGINT ? "SIGINT" : "SIGTERM");
}

/* ---- the admin endpoint --------------------------------------------------------------- */

/* Ready: connected to the broker, every endpoint consuming (or draining for a swap), and
 * every endpoint's workers reaching the database. The reasons go in the body. */
static int readiness(ctxd__host_t *h, ctxd__prom_t *body) {
  int ready = h->broker.conn != NULL && !h->stopping;
  if (h->broker.conn == NULL) ctxd__prom_printf(body, "broker: not connected\n");
  if (h->stopping) ctxd__prom_printf(body, "stopping\n");
  for (size_t i = 0; i < h->nendpoints; i++) {
    ctxd__endpoint_t *ep = h->endpoints[i];
    pthread_mutex_lock(&ep->mu);
    int db_ok = ep->stats.db_ok;
    pthread_mutex_unlock(&ep->mu);
    if (!ep->consuming && !ep->draining) ctxd__prom_printf(body, "endpoint %s: not consuming\n", ep->name);
    if (!db_ok) ctxd__prom_printf(body, "endpoint %s: database unreachable\n", ep->name);
    ready &= (ep->consuming || ep->draining) && db_ok;
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
    {"ctxd_messages_received_total", "counter", "Deliveries received from the broker.", offsetof(ep_sample_t, received)},
    {"ctxd_messages_handled_total", "counter", "Messages whose handler committed.", offsetof(ep_sample_t, s.handled)},
    {"ctxd_messages_duplicate_total", "counter", "Deliveries skipped: their inbox row existed.", offsetof(ep_sample_t, s.duplicates)},
    {"ctxd_messages_retried_total", "counter", "Immediate retries of a handler.", offsetof(ep_sample_t, s.retried)},
    {"ctxd_messages_redelivered_total", "counter", "Messages sent to a delay queue.", offsetof(ep_sample_t, s.redelivered)},
    {"ctxd_messages_requeued_total", "counter", "Deliveries given back to the queue.", offsetof(ep_sample_t, s.requeued)},
    {"ctxd_messages_error_total", "counter", "Messages moved to <queue>_error.", offsetof(ep_sample_t, s.errored)},
    {"ctxd_messages_skipped_total", "counter", "Messages moved to <queue>_skipped.", offsetof(ep_sample_t, s.skipped)},
    {"ctxd_deliveries_in_flight", "gauge", "Deliveries received and not yet settled.", offsetof(ep_sample_t, inflight)},
    {"ctxd_handler_seconds", "histogram", "Time in a handler, all attempts, per message it settled.", offsetof(ep_sample_t, s.handler_seconds)},
    {"ctxd_batch_seconds", "histogram", "Time to run a batch, commit included.", offsetof(ep_sample_t, s.batch_seconds)},
    {"ctxd_batch_size", "histogram", "Deliveries per batch.", offsetof(ep_sample_t, s.batch_size)},
};

static int metrics(ctxd__host_t *h, ctxd__prom_t *p) {
  ep_sample_t *samples = calloc(h->nendpoints + 1, sizeof *samples);
  if (samples == NULL) return 500;
  for (size_t i = 0; i < h->nendpoints; i++) {
    ctxd__endpoint_t *ep = h->endpoints[i];
    samples[i].name = ep->name;
    samples[i].received = ep->received;
    samples[i].inflight = ep->inflight;
    pthread_mutex_lock(&ep->mu);
    samples[i].s = ep->stats;
    pthread_mutex_unlock(&ep->mu);
  }
  for (size_t f = 0; f < sizeof families / sizeof families[0]; f++) {
    ctxd__prom_help_type(p, families[f].name, families[f].help, families[f].type);
    for (size_t i = 0; i < h->nendpoints; i++) {
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
  free(samples);
  int64_t backlog = 0, inbox = 0;
  double oldest = 0;
  if (h->relay != NULL) ctxd__relay_gauges(h->relay, &backlog, &oldest, &inbox);
  const struct {
    const char *name, *help;
    double value;
  } gauges[] = {
      {"ctxd_outbox_backlog", "Outbox rows not yet confirmed by the broker.", (double)backlog},
      {"ctxd_outbox_oldest_seconds", "Age of the oldest outbox row.", oldest},
      {"ctxd_inbox_rows", "Rows in the inbox (the planner's estimate).", (double)inbox},
      {"ctxd_broker_connected", "1 while connected to the broker.", h->broker.conn != NULL},
  };
  for (size_t g = 0; g < sizeof gauges / sizeof gauges[0]; g++) {
    ctxd__prom_help_type(p, gauges[g].name, gauges[g].help, "gauge");
    ctxd__prom_gauge(p, gauges[g].name, NULL, gauges[g].value);
  }
  ctxd__prom_help_type(p, "ctxd_broker_reconnects_total", "Reconnections to the broker.", "counter");
  return ctxd__prom_counter(p, "ctxd_broker_reconnects_total", NULL, h->reconnects) == 0 ? 200 : 500;
}

static int on_admin(void *data, const char *method, const char *path, ctxd__prom_t *body, const char **content_type) {
  (void)method;
  ctxd__host_t *h = data;
  if (strcmp(path, "/healthz") == 0) return ctxd__prom_printf(body, "ok\n") == 0 ? 200 : 500;
  if (strcmp(path, "/readyz") == 0) return readiness(h, body);
  if (strcmp(path, "/metrics") == 0) {
    *content_type = CTXD__PROM_CONTENT_TYPE;
    return metrics(h, body);
  }
  ctxd__prom_printf(body, "not found: try /healthz, /readyz or /metrics\n");
  return 404;
}

/* ---- replacing a plugin -------------------------------------------------------------- */

/* The plugin is replaced in this process: its endpoints stop consuming and drain, their
 * workers are joined (so no handler of the old version runs any more), the old version is
 * stopped and destroyed, the new one takes its place and consumption resumes. Messages not
 * yet delivered wait in their queues; the inbox keeps everything exactly once. The old
 * shared object stays mapped: unmapping code a plugin may still reference (an atexit
 * handler, a stray thread) would crash the host. */

static int uses(const ctxd__endpoint_t *ep, const ctxd_plugin_t *p) {
  for (size_t k = 0; k < ep->nhandlers; k++)
    if (ep->handlers[k].plugin == p) return 1;
  return 0;
}

/* Copies the plugin file to a private path: dlopen of the same path would return the
 * library already loaded. */
static int private_copy(const char *from, char *to, size_t len) {
  snprintf(to, len, "%s/ctxd-plugin-XXXXXX.so", getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp");
  int out = mkstemps(to, 3);
  FILE *in = fopen(from, "rb");
  int rc = out >= 0 && in != NULL ? 0 : CTXD_EIO;
  char buf[65536];
  size_t n;
  while (rc == 0 && (n = fread(buf, 1, sizeof buf, in)) > 0)
    if (write(out, buf, n) != (ssize_t)n) rc = CTXD_EIO;
  if (in != NULL) fclose(in);
  if (out >= 0) close(out);
  if (rc != 0 && out >= 0) unlink(to);
  return rc;
}

static void refuse_swap(ctxd_plugin_t *old, ctxd_plugin_t *fresh, const char *why) {
  ctxd__log(CTXD__LOG_ERROR, "host", "reload of plugin '%s' refused, version %s keeps running: %s",
            old->name, old->desc->version != NULL ? old->desc->version : "?", why);
  ctxd__plugin_free(fresh);
}

/* Loads, checks, initialises and migrates the replacement of h->plugins[i]; on success
 * starts draining the old version's endpoints. */
static void prepare_swap(ctxd__host_t *h, size_t i) {
  ctxd_plugin_t *old = h->plugins[i], *fresh = NULL;
  const ctxd__plugin_config_t *pc = NULL;
  for (size_t k = 0; k < h->cfg->nplugins; k++)
    if (strcmp(h->cfg->plugins[k].name, old->name) == 0) pc = &h->cfg->plugins[k];
  char copy[4096], err[1024];
  /* a refused file is not tried again until it changes once more */
  if (stat(old->path, &old->file) != 0) memset(&old->file, 0, sizeof old->file);
  if (private_copy(old->path, copy, sizeof copy) != 0) {
    refuse_swap(old, NULL, "cannot copy the new file");
    return;
  }
  int rc = ctxd__plugin_open(h->cfg, pc, copy, &fresh, err, sizeof err);
  unlink(copy); /* the mapping stays */
  if (rc != 0) {
    refuse_swap(old, NULL, err);
    return;
  }
  fresh->host = h;
  fresh->staging = fresh->in_init = 1;
  rc = fresh->desc->init(fresh, &ctxd__api, &fresh->state);
  fresh->staging = fresh->in_init = 0;
  if (rc != 0) {
    snprintf(err, sizeof err, "init failed: %s", ctxd_strerror(rc));
    refuse_swap(old, fresh, err);
    return;
  }
  for (size_t k = 0; k < fresh->nstaged; k++) {
    ctxd__endpoint_t *ep = NULL;
    for (size_t e = 0; e < h->nendpoints; e++)
      if (strcmp(h->endpoints[e]->name, fresh->staged[k].endpoint) == 0) ep = h->endpoints[e];
    if (ep == NULL || !uses(ep, old)) {
      snprintf(err, sizeof err, "it consumes on endpoint '%s', which the running version does not: "
               "that needs a restart", fresh->staged[k].endpoint);
      refuse_swap(old, fresh, err);
      return;
    }
  }
  if (fresh->desc->migrations != NULL) {
    PGconn *c;
    if (ctxd__db_connect(h->cfg->database_url, (int)h->cfg->db_connect_timeout_s, &c, err, sizeof err) != 0 ||
        (rc = ctxd__migrate(c, fresh->name, fresh->desc->migrations, err, sizeof err), PQfinish(c), rc) != 0) {
      refuse_swap(old, fresh, err);
      return;
    }
  }
  h->swap.old = old;
  h->swap.fresh = fresh;
  h->swap.index = i;
  for (size_t e = 0; e < h->nendpoints; e++) {
    ctxd__endpoint_t *ep = h->endpoints[e];
    if (!uses(ep, old)) continue;
    ep->draining = 1;
    if (ep->consuming && h->broker.conn != NULL) ctxd__broker_cancel(&h->broker, ep->channel, ep->name);
    ep->consuming = 0;
  }
  ctxd__log(CTXD__LOG_INFO, "host", "replacing plugin '%s' %s with %s: draining its endpoints", old->name,
            old->desc->version, fresh->desc->version);
  flush_batches(h);
}

static void finish_swap(ctxd__host_t *h) {
  ctxd_plugin_t *old = h->swap.old, *fresh = h->swap.fresh;
  for (size_t e = 0; e < h->nendpoints; e++)
    if (h->endpoints[e]->draining) ctxd__endpoint_stop_workers(h->endpoints[e]);
  if (old->started && old->desc->stop != NULL) old->desc->stop(old->state);
  if (old->desc->destroy != NULL && old->state != NULL) old->desc->destroy(old->state);
  old->state = NULL;
  for (size_t e = 0; e < h->nendpoints; e++) {
    ctxd__endpoint_t *ep = h->endpoints[e];
    if (!ep->draining) continue;
    size_t kept = 0;
    for (size_t k = 0; k < ep->nhandlers; k++) {
      if (ep->handlers[k].plugin == old) {
        free(ep->handlers[k].type);
        free(ep->handlers[k].upcast_to);
      } else
        ep->handlers[kept++] = ep->handlers[k];
    }
    ep->nhandlers = kept;
    for (size_t k = 0; k < fresh->nstaged; k++)
      if (strcmp(fresh->staged[k].endpoint, ep->name) == 0 && add_handler(h, ep, fresh, &fresh->staged[k]) != 0)
        ctxd__log(CTXD__LOG_ERROR, "host", "plugin '%s': cannot register '%s' on '%s'", fresh->name,
                  fresh->staged[k].message_type, ep->name);
  }
  h->plugins[h->swap.index] = fresh;
  h->swap.old = h->swap.fresh = NULL;
  int rc = fresh->desc->start != NULL ? fresh->desc->start(fresh->state) : 0;
  if (rc != 0)
    ctxd__log(CTXD__LOG_ERROR, "host", "plugin '%s': start failed after reload: %s", fresh->name, ctxd_strerror(rc));
  fresh->started = rc == 0;
  char err[512];
  for (size_t e = 0; e < h->nendpoints; e++) {
    ctxd__endpoint_t *ep = h->endpoints[e];
    if (!ep->draining) continue;
    ep->draining = 0;
    if (ctxd__endpoint_start_workers(ep) != 0) ctxd__log(CTXD__LOG_ERROR, "host", "cannot start workers of '%s'", ep->name);
    if (h->broker.conn == NULL) continue; /* the reconnect consumes */
    rc = 0;
    for (size_t k = 0; rc == 0 && k < ep->nhandlers; k++)
      rc = ctxd__broker_exchange(&h->broker, CTXD__PUBLISH_CHANNEL, ep->handlers[k].type, err, sizeof err) ||
           ctxd__broker_bind(&h->broker, CTXD__PUBLISH_CHANNEL, ep->handlers[k].type, ep->name, err, sizeof err);
    if (rc == 0)
      rc = ctxd__broker_consume(&h->broker, ep->channel, ep->name, (int)ep->settings.prefetch, err, sizeof err);
    if (rc != 0) {
      connection_lost(h, err);
      break;
    }
    ep->consuming = 1;
  }
  ctxd__log(CTXD__LOG_INFO, "host", "replaced plugin '%s' %s with %s", fresh->name, old->desc->version,
            fresh->desc->version);
  ctxd__plugin_free(old);
}

static void progressed(ctxd__host_t *h) {
  if (h->swap.fresh != NULL) {
    int drained = 1;
    for (size_t e = 0; e < h->nendpoints; e++)
      if (h->endpoints[e]->draining && h->endpoints[e]->inflight > 0) drained = 0;
    if (drained) finish_swap(h);
  }
  maybe_finish_stop(h);
}

/* SIGHUP: replace every plugin whose file changed, one after another. */
static void reload(ctxd__host_t *h) {
  if (h->stopping) return;
  if (h->swap.fresh != NULL) {
    ctxd__log(CTXD__LOG_WARN, "host", "reload: plugin '%s' is still being replaced; signal again later",
              h->swap.old->name);
    return;
  }
  for (size_t i = 0; i < h->nplugins; i++) {
    if (!ctxd__plugin_changed(h->plugins[i])) continue;
    prepare_swap(h, i);
    progressed(h);
    if (h->swap.fresh != NULL) return; /* the next one on the next signal */
  }
}

static void on_sighup(uv_signal_t *s, int signum) {
  (void)signum;
  reload(s->data);
}

/* ---- start-up ------------------------------------------------------------------------ */

static int load_plugins(ctxd__host_t *h) {
  const ctxd__config_t *cfg = h->cfg;
  h->plugins = calloc(cfg->nplugins + 1, sizeof *h->plugins);
  if (h->plugins == NULL) return CTXD_ENOMEM;
  for (size_t i = 0; i < cfg->nplugins; i++) {
    const ctxd__plugin_config_t *pc = &cfg->plugins[i];
    if (!pc->enabled) continue;
    char err[1024];
    ctxd_plugin_t *p;
    int rc = ctxd__plugin_open(cfg, pc, NULL, &p, err, sizeof err);
    if (rc != 0) {
      ctxd__log(CTXD__LOG_ERROR, "host", "%s", err);
      return rc;
    }
    h->plugins[h->nplugins++] = p;
    p->host = h;
    p->in_init = 1;
    rc = p->desc->init(p, &ctxd__api, &p->state);
    p->in_init = 0;
    if (rc != 0) {
      ctxd__log(CTXD__LOG_ERROR, "host", "plugin '%s' (%s): init failed: %s (%d); not starting",
                p->name, p->path, ctxd_strerror(rc), rc);
      return CTXD_EPLUGIN;
    }
    ctxd__log(CTXD__LOG_INFO, "host", "loaded plugin '%s' %s from %s", p->name,
              p->desc->version != NULL ? p->desc->version : "", p->path);
  }
  return 0;
}

/* Graphviz of what the host declares: message-type exchanges -> endpoint exchanges ->
 * queues -> plugins, with the error, skipped and delay queues beside each endpoint. */
static void print_dot(const ctxd__host_t *h) {
  printf("digraph ctxd {\n  rankdir=LR;\n  node [fontname=\"Helvetica\", fontsize=10];\n");
  for (size_t i = 0; i < h->nendpoints; i++) {
    const ctxd__endpoint_t *ep = h->endpoints[i];
    printf("  \"x:%s\" [label=\"%s\\n(exchange)\", shape=box, style=rounded];\n", ep->name, ep->name);
    printf("  \"q:%s\" [label=\"%s\\n(%s queue)\", shape=cylinder];\n", ep->name, ep->name,
           ep->settings.queue_type);
    printf("  \"x:%s\" -> \"q:%s\";\n", ep->name, ep->name);
    printf("  \"q:%s_error\" [label=\"%s_error\", shape=cylinder, color=red];\n", ep->name, ep->name);
    printf("  \"q:%s_skipped\" [label=\"%s_skipped\", shape=cylinder, color=gray];\n", ep->name, ep->name);
    printf("  \"q:%s\" -> \"q:%s_error\" [style=dashed, color=red];\n", ep->name, ep->name);
    printf("  \"q:%s\" -> \"q:%s_skipped\" [style=dashed, color=gray];\n", ep->name, ep->name);
    for (int k = 0; k < ep->nredelivery; k++)
      printf("  \"q:%s_delay_%lld\" [label=\"%s_delay_%lld\", shape=cylinder, color=orange];\n"
             "  \"q:%s\" -> \"q:%s_delay_%lld\" [style=dashed, color=orange];\n"
             "  \"q:%s_delay_%lld\" -> \"x:%s\" [style=dotted, color=orange, label=\"ttl\"];\n",
             ep->name, (long long)ep->redelivery_ms[k], ep->name, (long long)ep->redelivery_ms[k],
             ep->name, ep->name, (long long)ep->redelivery_ms[k], ep->name,
             (long long)ep->redelivery_ms[k], ep->name);
    for (size_t k = 0; k < ep->nhandlers; k++) {
      printf("  \"t:%s\" [label=\"%s\", shape=box, style=\"rounded,filled\", fillcolor=lightyellow];\n",
             ep->handlers[k].type, ep->handlers[k].type);
      printf("  \"t:%s\" -> \"x:%s\";\n", ep->handlers[k].type, ep->name);
      int seen = 0; /* one edge per plugin, however many types it handles here */
      for (size_t j = 0; j < k; j++) seen |= ep->handlers[j].plugin == ep->handlers[k].plugin;
      if (seen) continue;
      printf("  \"p:%s\" [label=\"plugin %s\", shape=component, style=filled, fillcolor=lightblue];\n",
             ep->handlers[k].plugin->name, ep->handlers[k].plugin->name);
      printf("  \"q:%s\" -> \"p:%s\";\n", ep->name, ep->handlers[k].plugin->name);
    }
  }
  printf("}\n");
}

static void print_topology(const ctxd__host_t *h) {
  for (size_t i = 0; i < h->nendpoints; i++) {
    const ctxd__endpoint_t *ep = h->endpoints[i];
    printf("endpoint %s (queue %s, %s, prefetch %lld, workers %lld, batch %lld)\n", ep->name,
           ep->name, ep->settings.queue_type, (long long)ep->settings.prefetch,
           (long long)ep->settings.workers, (long long)ep->settings.batch_size);
    for (size_t k = 0; k < ep->nhandlers; k++)
      printf("  %s -> %s (plugin %s%s%s)\n", ep->handlers[k].type, ep->name, ep->handlers[k].plugin->name,
             ep->handlers[k].upcast_to != NULL ? ", upcast to " : "",
             ep->handlers[k].upcast_to != NULL ? ep->handlers[k].upcast_to : "");
  }
}

static int migrate_all(ctxd__host_t *h) {
  PGconn *c;
  char err[1024], safe[512];
  if (ctxd__db_connect(h->cfg->database_url, (int)h->cfg->db_connect_timeout_s, &c, err, sizeof err) != 0) {
    ctxd__config_redact_url(h->cfg->database_url, safe, sizeof safe);
    ctxd__log(CTXD__LOG_ERROR, "host", "database %s: %s", safe, err);
    return CTXD_EDB;
  }
  int rc = ctxd__migrate(c, "ctxd", ctxd__runtime_migrations, err, sizeof err);
  for (size_t i = 0; rc == 0 && i < h->nplugins; i++)
    if (h->plugins[i]->desc->migrations != NULL)
      rc = ctxd__migrate(c, h->plugins[i]->name, h->plugins[i]->desc->migrations, err, sizeof err);
  if (rc != 0) ctxd__log(CTXD__LOG_ERROR, "host", "%s", err);
  PQfinish(c);
  return rc;
}

static void host_free(ctxd__host_t *h) {
  for (size_t i = 0; i < h->nplugins; i++) ctxd__plugin_free(h->plugins[i]);
  free(h->plugins);
  for (size_t i = 0; i < h->nendpoints; i++) {
    ctxd__endpoint_t *ep = h->endpoints[i];
    for (size_t k = 0; k < ep->nhandlers; k++) {
      free(ep->handlers[k].type);
      free(ep->handlers[k].upcast_to);
    }
    free(ep->handlers);
    free(ep->ledger);
    pthread_mutex_destroy(&ep->mu);
    pthread_cond_destroy(&ep->cv);
    pthread_cond_destroy(&ep->pause_cv);
    free(ep->name);
    free(ep);
  }
  free(h->endpoints);
  free(h->confirms);
  ctxd__contracts_free(h->contracts);
  pthread_mutex_destroy(&h->done_mu);
}

static int start(ctxd__host_t *h) {
  int rc = migrate_all(h);
  if (rc != 0) return CTXD__EXIT_FAILURE;
  if (ctxd__relay_start(&h->relay, h, h->cfg) != 0) return CTXD__EXIT_FAILURE;
  for (size_t i = 0; i < h->nendpoints; i++) {
    ctxd__endpoint_t *ep = h->endpoints[i];
    /* sized now: the settings are final once every plugin registered */
    ep->ledger = calloc((size_t)ep->settings.prefetch, sizeof *ep->ledger);
    if (ep->ledger == NULL || ctxd__endpoint_start_workers(ep) != 0) return CTXD__EXIT_FAILURE;
  }
  for (size_t i = 0; i < h->nplugins; i++) {
    ctxd_plugin_t *p = h->plugins[i];
    if (p->desc->start != NULL && (rc = p->desc->start(p->state)) != 0) {
      ctxd__log(CTXD__LOG_ERROR, "host", "plugin '%s': start failed: %s", p->name, ctxd_strerror(rc));
      return CTXD__EXIT_FAILURE;
    }
    p->started = 1;
  }
  return 0;
}

static void log_stats(const ctxd__host_t *h) {
  for (size_t i = 0; i < h->nendpoints; i++) {
    ctxd__endpoint_t *ep = h->endpoints[i];
    ctxd__endpoint_stats_t s = ep->stats;
    ctxd__logf(CTXD__LOG_INFO, "host", &(ctxd__log_fields_t){.endpoint = ep->name},
               "handled %llu, duplicates %llu, retried %llu, redelivered %llu, requeued %llu, "
               "to _error %llu, to _skipped %llu",
               (unsigned long long)s.handled, (unsigned long long)s.duplicates,
               (unsigned long long)s.retried, (unsigned long long)s.redelivered,
               (unsigned long long)s.requeued, (unsigned long long)s.errored,
               (unsigned long long)s.skipped);
  }
}

int ctxd__host_main(const ctxd__config_t *cfg, ctxd__host_mode_t mode) {
  ctxd__host_t h;
  memset(&h, 0, sizeof h);
  h.cfg = cfg;
  h.backoff_ms = 100;
  pthread_mutex_init(&h.done_mu, NULL);
  srand((unsigned)time(NULL) ^ (unsigned)getpid());

  char err[512];
  if (ctxd__contracts_new(&h.contracts, err, sizeof err) != 0) {
    ctxd__log(CTXD__LOG_ERROR, "host", "contracts: %s", err);
    host_free(&h);
    return CTXD__EXIT_FAILURE;
  }
  if (load_plugins(&h) != 0) {
    host_free(&h);
    return CTXD__EXIT_CONFIG;
  }
  if (mode != CTXD__HOST_RUN) {
    int rc = CTXD__EXIT_OK;
    if (mode == CTXD__HOST_CHECK) print_topology(&h);
    if (mode == CTXD__HOST_DOT) print_dot(&h);
    if (mode == CTXD__HOST_MIGRATE && migrate_all(&h) != 0) rc = CTXD__EXIT_FAILURE;
    if (mode == CTXD__HOST_MIGRATE && rc == 0) ctxd__log(CTXD__LOG_INFO, "host", "migrations applied");
    host_free(&h);
    return rc;
  }

  uv_loop_init(&h.loop);
  h.exit_code = start(&h);
  if (h.exit_code == 0) {
    uv_signal_init(&h.loop, &h.sigint);
    uv_signal_init(&h.loop, &h.sigterm);
    h.sigint.data = h.sigterm.data = &h;
    uv_signal_start(&h.sigint, on_signal, SIGINT);
    uv_signal_start(&h.sigterm, on_signal, SIGTERM);
    uv_signal_init(&h.loop, &h.sighup);
    h.sighup.data = &h;
    uv_signal_start(&h.sighup, on_sighup, SIGHUP);
    uv_async_init(&h.loop, &h.done_async, on_done);
    h.done_async.data = &h;
    uv_timer_init(&h.loop, &h.heartbeat);
    uv_timer_init(&h.loop, &h.reconnect);
    uv_timer_init(&h.loop, &h.drain_deadline);
    h.heartbeat.data = h.reconnect.data = h.drain_deadline.data = &h;
    uint64_t beat = cfg->heartbeat_s > 1 ? (uint64_t)cfg->heartbeat_s * 500 : 1000;
    uv_timer_start(&h.heartbeat, on_heartbeat, beat, beat);
    /* before anything can stop the host: a stop closes the handles that exist then, and a
     * timer started after it would keep the loop running */
    uint64_t watchdog = ctxd__notify_watchdog_ms();
    if (watchdog > 0) {
      uv_timer_init(&h.loop, &h.watchdog);
      uv_timer_start(&h.watchdog, on_watchdog, watchdog / 2, watchdog / 2);
    }
    char aerr[256];
    if (cfg->admin_listen != NULL &&
        ctxd__admin_start(&h.loop, cfg->admin_listen, on_admin, &h, &h.admin, aerr, sizeof aerr) != 0) {
      ctxd__log(CTXD__LOG_ERROR, "host", "%s", aerr);
      h.exit_code = CTXD__EXIT_FAILURE;
      begin_stop(&h, "admin endpoint");
    } else if (h.admin != NULL) {
      ctxd__log(CTXD__LOG_INFO, "host", "admin endpoint on %s, port %d (/healthz, /readyz, /metrics)",
                cfg->admin_listen, ctxd__admin_port(h.admin));
    }
    /* a host that failed to start its admin endpoint must not consume, nor say ready */
    if (!h.stopping) connect_broker(&h);
    uv_run(&h.loop, UV_RUN_DEFAULT);
  }
  for (size_t i = 0; i < h.nendpoints; i++) ctxd__endpoint_stop_workers(h.endpoints[i]);
  ctxd__relay_stop(h.relay);
  /* what came back after the loop ended: rows stay in the outbox for the next sweep,
   * deliveries are redelivered */
  pthread_mutex_lock(&h.done_mu);
  h.loop_closed = 1;
  pthread_mutex_unlock(&h.done_mu);
  for (ctxd__batch_t *b = h.done_head, *next; b != NULL; b = next) {
    next = b->next;
    for (size_t i = 0; i < b->n; i++) ctxd__delivery_free(b->items[i]);
    ctxd__outrow_free_list(b->rows);
    free(b);
  }
  ctxd__outrow_free_list(h.to_publish);
  drop_confirms(&h);
  forget_declared(&h);
  ctxd__broker_close(&h.broker, 0);
  for (size_t i = h.nplugins; i-- > 0;)
    if (h.plugins[i]->started && h.plugins[i]->desc->stop != NULL) h.plugins[i]->desc->stop(h.plugins[i]->state);
  log_stats(&h);
  int closed = uv_loop_close(&h.loop);
  if (closed != 0) ctxd__log(CTXD__LOG_ERROR, "host", "event loop not closed cleanly: %s", uv_strerror(closed));
  host_free(&h);
  if (h.exit_code == 0) ctxd__log(CTXD__LOG_INFO, "host", "stopped");
  return h.exit_code;
}
