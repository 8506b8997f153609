#include "host.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <uv.h>

#include "address.h"
#include "admin.h"
#include "api.h"
#include "broker.h"
#include "cli.h"
#include "clock.h"
#include "console.h"
#include "contract.h"
#include "crash.h"
#include "db.h"
#include "dispatch.h"
#include "endpoint.h"
#include "inspect.h"
#include "log.h"
#include "mailbox.h"
#include "migrate.h"
#include "nofile.h"
#include "notify.h"
#include "outrow.h"
#include "plugin.h"
#include "redact.h"
#include "relay.h"
#include "session.h"
#include "status.h"
#include "swap.h"
#include "topology.h"

/* How long a stop waits for the deliveries in flight; what is not acknowledged by then is
 * redelivered by the broker. */
#define STOP_DEADLINE_MS 30000

typedef enum {
  SWAP_NONE,      /* no plugin replacement under way */
  SWAP_MIGRATING, /* the replacement's migrations run on the thread pool */
  SWAP_DRAINING   /* the old version's endpoints drain */
} swap_phase_t;

typedef struct {
  const ctxd__config_t *cfg;
  uv_loop_t loop;
  uv_signal_t sigint, sigterm, sighup;
  uv_poll_t poll;
  uv_timer_t heartbeat, reconnect, drain_deadline, watchdog, handlers;
  int poll_active;
  ctxd__intake_t intake;   /* message bodies held; the socket is not read while it is full */
  ctxd__mailbox_t mailbox; /* workers' batches and the relay's swept rows come back here */
  ctxd__relay_t *relay;

  ctxd__session_t session; /* the broker connection and what is pending on it */
  size_t node;             /* index in cfg->broker_urls of the node to connect to */
  int backoff_ms;
  uint64_t reconnects;
  uint64_t blocks;     /* connection.blocked received */
  uint64_t blocked_ms; /* time spent blocked, the blocks that ended */
  uint64_t blocked_at; /* uv_now when the block in force began */
  int ready_logged;

  ctxd_plugin_t **plugins;
  size_t nplugins;
  ctxd__endpoints_t endpoints;
  ctxd__contracts_t *contracts;
  ctxd__admin_t *admin;
  ctxd__console_t *console; /* the admin endpoint's page and API */
  uv_timer_t sample;        /* the console's history, every CTXD__SERIES_INTERVAL_MS */
  ctxd__series_t series;
  ctxd__inspect_t inspect;   /* the console's queue figures */
  ctxd__observed_t observed; /* what plugins send, for the console's topology */
  uint64_t nofile;           /* the soft open-file limit in force */

  ctxd__swap_t swap;
  swap_phase_t swap_phase;
  size_t swap_index; /* of the plugin being replaced */

  int stopping;
  int deadline_passed; /* the stop deadline came with deliveries unsettled */
  int exit_code;
} host_t;

static void connection_lost(host_t *h, const char *why);
static void progressed(host_t *h);
static void pace(host_t *h);

/* ---- settlement ---------------------------------------------------------------------- */

static void settle_all(host_t *h) {
  for (size_t i = 0; i < h->endpoints.n && h->session.broker.conn != NULL; i++)
    if (ctxd__session_settle(&h->session, h->endpoints.v[i]) != 0)
      connection_lost(h, "acknowledgement failed");
}

static void on_confirm(host_t *h, uint64_t tag, int multiple, int ok) {
  ctxd__outrows_t archived = {0};
  ctxd__session_confirmed(&h->session, tag, multiple, ok, &archived);
  ctxd__relay_archive(h->relay, &archived);
  settle_all(h);
}

/* Publishes rows; the rows the broker refused meanwhile go to the archive. */
static void publish_rows(host_t *h, ctxd__outrows_t *rows, const char *why) {
  if (ctxd__session_publish_rows(&h->session, rows) != 0) connection_lost(h, why);
  ctxd__relay_archive(h->relay, &h->session.refused);
  settle_all(h); /* a channel recovered meanwhile sent originals of any endpoint back */
}

/* The broker closed the publish channel (a publish or a declare it refused): the session
 * reopens it, sets the refused rows aside and everything else is sent again at once. */
static void on_publish_closed(host_t *h, const amqp_channel_close_t *c) {
  char raw[256], text[256];
  snprintf(raw, sizeof raw, "%.*s", (int)c->reply_text.len, (char *)c->reply_text.bytes);
  ctxd__redact(raw, text, sizeof text); /* the broker's text may quote what it was sent */
  ctxd__outrows_t again = {0};
  if (ctxd__session_publish_closed(&h->session, c->reply_code, text, &again) != 0) {
    ctxd__outrows_free(&again);
    ctxd__relay_archive(h->relay, &h->session.refused);
    connection_lost(h, "the publish channel could not be reopened");
    return;
  }
  publish_rows(h, &again, "publishing an outbox row failed"); /* settles what went back too */
}

/* The mailbox's items: a batch the workers finished, rows the relay swept. What comes
 * back after the loop ended is only freed: rows stay in the outbox for the next sweep,
 * deliveries are redelivered. */
static void on_batch(void *arg, ctxd__mail_t *m, int status) {
  ctxd__batch_t *b = (ctxd__batch_t *)m;
  if (status != 0) {
    ctxd__batch_free(b);
    return;
  }
  host_t *h = arg;
  if (ctxd__session_finish_batch(&h->session, b) != 0)
    connection_lost(h, "publishing an outbox row, or to an error or delay queue, failed");
  ctxd__relay_archive(h->relay, &h->session.refused);
  settle_all(h); /* a channel recovered meanwhile sent originals of any endpoint back */
  pace(h);
  progressed(h);
}

static void on_swept(void *arg, ctxd__mail_t *m, int status) {
  host_t *h = arg;
  ctxd__swept_t *s = (ctxd__swept_t *)m;
  if (status == 0) publish_rows(h, &s->rows, "publishing an outbox row failed");
  ctxd__outrows_free(&s->rows);
  free(s);
}

/* The broker blocked publishing on the connection (a resource alarm) or lifted the block
 * (connection.unblocked, or the connection is gone). Blocked, no outbox row is published:
 * a publish would make the broker stop reading the connection, acknowledgements included,
 * so consuming goes on while the rows wait in the outbox, and the relay does not sweep
 * them; lifted, the relay sweeps at once (but for the rows awaiting a confirm). Nothing
 * times out meanwhile: the rows keep their place, the connection stays up. */
static void set_blocked(host_t *h, int blocked, const char *reason) {
  ctxd__session_t *s = &h->session;
  if (blocked == s->blocked) return;
  s->blocked = blocked;
  if (!blocked) h->blocked_ms += uv_now(&h->loop) - h->blocked_at;
  if (s->broker.conn == NULL) return; /* lost: the relay stays held until a new one */
  /* the rows published before the block get their confirms now */
  ctxd__relay_hold(h->relay, blocked, blocked ? NULL : ctxd__session_pending_rows(s),
                   h->cfg->outbox_sweep_grace_ms);
  /* a broker that stops reading leaves the socket's window shut, which the send deadline
   * takes for a dead link: the heartbeats (the broker goes on sending them) watch the
   * connection meanwhile */
  ctxd__broker_send_deadline(&s->broker, !blocked);
  if (blocked) {
    h->blocks++;
    h->blocked_at = uv_now(&h->loop);
    snprintf(s->blocked_reason, sizeof s->blocked_reason, "%s", reason);
    ctxd__log(CTXD__LOG_WARN, "host", "broker: publishing blocked (%s); outbox rows wait, consuming goes on",
              s->blocked_reason);
    ctxd__notify("STATUS=broker blocked publishing");
    return;
  }
  ctxd__log(CTXD__LOG_INFO, "host", "broker: publishing unblocked after %llu ms; sending the outbox",
            (unsigned long long)(uv_now(&h->loop) - h->blocked_at));
  ctxd__notify("STATUS=consuming");
}

/* ---- receiving ------------------------------------------------------------------------ */

static void flush_batches(host_t *h) {
  for (size_t i = 0; i < h->endpoints.n; i++) ctxd__endpoint_flush(h->endpoints.v[i]);
}

static int on_deliver(host_t *h, int channel, const amqp_basic_deliver_t *m) {
  ctxd__endpoint_t *ep = ctxd__endpoints_of_channel(&h->endpoints, channel);
  ctxd__delivery_t *d = calloc(1, sizeof *d);
  if (d == NULL) return CTXD_ENOMEM;
  if (ctxd__broker_read_content(&h->session.broker, channel, &d->msg) != 0) {
    free(d);
    return CTXD_ECLOSED;
  }
  if (ep == NULL) { /* cannot happen: only endpoint channels consume */
    ctxd__delivery_free(d);
    return CTXD_ESTATE;
  }
  d->tag = m->delivery_tag;
  d->redelivered = m->redelivered;
  if (ep->ingest && (d->queue = strndup(m->consumer_tag.bytes, m->consumer_tag.len)) == NULL) {
    ctxd__delivery_free(d);
    return CTXD_ENOMEM;
  }
  if (m->routing_key.len > 0 &&
      (d->routing_key = strndup(m->routing_key.bytes, m->routing_key.len)) == NULL) {
    ctxd__delivery_free(d);
    return CTXD_ENOMEM;
  }
  return ctxd__endpoint_receive(ep, d, h->session.gen);
}

/* Reads every frame available now, or until the intake is full. Buffered frames never make
 * the socket readable again, so stop only when the library says nothing is left (a full
 * intake drains them when it resumes). */
static void drain(host_t *h) {
  while (h->session.broker.conn != NULL && !ctxd__intake_full(&h->intake)) {
    amqp_frame_t f;
    int rc = ctxd__broker_next_frame(&h->session.broker, &f);
    if (rc == CTXD_ETIMEDOUT) break;
    if (rc != 0) {
      connection_lost(h, "connection to the broker lost");
      return;
    }
    if (f.frame_type != AMQP_FRAME_METHOD) continue;
    switch (f.payload.method.id) {
    case AMQP_BASIC_DELIVER_METHOD: rc = on_deliver(h, f.channel, f.payload.method.decoded); break;
    /* a confirm of a publish channel the broker closed numbers another channel's
     * publishes: only the open one's count */
    case AMQP_BASIC_ACK_METHOD: {
      amqp_basic_ack_t *a = f.payload.method.decoded;
      if (f.channel == h->session.broker.publish_channel) on_confirm(h, a->delivery_tag, a->multiple, 1);
      break;
    }
    case AMQP_BASIC_NACK_METHOD: {
      amqp_basic_nack_t *a = f.payload.method.decoded;
      if (f.channel == h->session.broker.publish_channel) on_confirm(h, a->delivery_tag, a->multiple, 0);
      break;
    }
    case AMQP_BASIC_RETURN_METHOD: {
      amqp_basic_return_t ret = *(amqp_basic_return_t *)f.payload.method.decoded;
      amqp_message_t msg;
      rc = ctxd__broker_read_content(&h->session.broker, f.channel, &msg);
      if (rc == 0) {
        ctxd__session_returned(&h->session, &ret, &msg);
        amqp_destroy_message(&msg);
      }
      break;
    }
    case AMQP_QUEUE_DECLARE_OK_METHOD:
      if (f.channel == CTXD__INSPECT_CHANNEL) {
        amqp_queue_declare_ok_t *ok = f.payload.method.decoded;
        ctxd__inspect_answered(&h->inspect, ok->message_count, ok->consumer_count, (int64_t)uv_now(&h->loop));
      }
      break;
    case AMQP_BASIC_CANCEL_OK_METHOD: {
      ctxd__endpoint_t *ep = ctxd__endpoints_of_channel(&h->endpoints, f.channel);
      if (ep != NULL) ep->cancelling = 0;
      break;
    }
    case AMQP_BASIC_CANCEL_METHOD:
      connection_lost(h, "the broker cancelled a consumer (queue deleted?)");
      return;
    case AMQP_CHANNEL_CLOSE_METHOD:
      if (f.channel == h->session.broker.publish_channel) {
        on_publish_closed(h, f.payload.method.decoded);
        break;
      }
      if (f.channel == CTXD__INSPECT_CHANNEL) { /* a queue asked about is missing: only its figures */
        ctxd__inspect_refused(&h->inspect);
        if (ctxd__broker_channel_close_ok(&h->session.broker, CTXD__INSPECT_CHANNEL) != 0) rc = CTXD_ECLOSED;
        break;
      }
      connection_lost(h, "the broker closed a channel");
      return;
    case AMQP_CONNECTION_CLOSE_METHOD:
      connection_lost(h, "the broker closed the connection or a channel");
      return;
    case AMQP_CONNECTION_BLOCKED_METHOD:
    case AMQP_CONNECTION_UNBLOCKED_METHOD: {
      char reason[sizeof h->session.blocked_reason];
      set_blocked(h, ctxd__broker_blocked_frame(&f, reason, sizeof reason), reason);
      break;
    }
    default: break;
    }
    if (rc != 0) connection_lost(h, "reading a delivery failed");
    /* settling what a confirm covered may have lost the connection too */
    if (h->session.broker.conn == NULL) return;
    /* the frame (and its content's frames) came into its channel's pool: only that one is
     * released. Releasing every channel's after each frame walks them all (the library
     * keeps them in 16 lists): 12,000 instructions a delivery with 13 channels, and most of
     * an idle host's CPU with hundreds of endpoints */
    amqp_maybe_release_buffers_on_channel(h->session.broker.conn, f.channel);
  }
  flush_batches(h); /* before a pause too: the workers' results are what empties the intake */
  pace(h);
  progressed(h);
}

static void on_poll(uv_poll_t *p, int status, int events) {
  (void)events;
  host_t *h = p->data;
  if (status < 0) {
    /* libuv says EBADF for any error on the socket (POLLERR): the socket says which */
    int e = 0;
    socklen_t len = sizeof e;
    if (getsockopt(h->session.broker.fd, SOL_SOCKET, SO_ERROR, &e, &len) != 0) e = 0;
    char why[128];
    snprintf(why, sizeof why, "connection to the broker lost (%s)", e != 0 ? strerror(e) : "socket error");
    connection_lost(h, why);
    return;
  }
  drain(h);
}

/* Stops reading from the broker while the intake is full (only a drain fills it, and hands
 * its batches to the workers first), and reads again once it is not. */
static void pace(host_t *h) {
  if (!h->poll_active) return; /* not connected: connecting reads, then paces */
  switch (ctxd__intake_pace(&h->intake)) {
  case CTXD__INTAKE_PAUSE:
    uv_poll_stop(&h->poll);
    ctxd__log(CTXD__LOG_DEBUG, "host", "broker: reading paused, %llu bytes of messages held",
              (unsigned long long)h->intake.held);
    break;
  case CTXD__INTAKE_RESUME:
    uv_poll_start(&h->poll, UV_READABLE, on_poll);
    drain(h);
    break;
  default: break;
  }
}

static void on_heartbeat(uv_timer_t *t) {
  host_t *h = t->data;
  if (h->session.broker.conn == NULL) return;
  if (!h->intake.paused)
    drain(h);
  else if (ctxd__broker_heartbeat(&h->session.broker) != 0) /* the library sends them only as it reads */
    connection_lost(h, "sending a heartbeat failed");
}

/* ---- connection ---------------------------------------------------------------------- */

/* Calls f with each queue ep consumes: its own, or for the ingest endpoint every other
 * endpoint's source of failed copies (the consumer tag names the queue: a delivery says
 * which endpoint it failed on). 0 or the first failure. */
static int each_queue(host_t *h, const ctxd__endpoint_t *ep,
                      int (*f)(host_t *, const ctxd__endpoint_t *, const char *, char *, size_t), char *err,
                      size_t errlen) {
  if (!ep->ingest) return f(h, ep, ep->name, err, errlen);
  char queue[256];
  for (size_t i = 0; i < h->endpoints.n; i++) {
    if (h->endpoints.v[i]->ingest) continue;
    if (ctxd__topology_error_source(queue, sizeof queue, h->endpoints.v[i]->name,
                                    h->cfg->errors_keep_in_queue) != 0)
      return CTXD_ETOOBIG;
    int rc = f(h, ep, queue, err, errlen);
    if (rc != 0) return rc;
  }
  return 0;
}

static int consume_queue(host_t *h, const ctxd__endpoint_t *ep, const char *queue, char *err, size_t errlen) {
  return ctxd__broker_consume(&h->session.broker, ep->channel, queue, err, errlen);
}

static int cancel_queue(host_t *h, const ctxd__endpoint_t *ep, const char *queue, char *err, size_t errlen) {
  (void)err;
  (void)errlen;
  return ctxd__broker_cancel(&h->session.broker, ep->channel, queue);
}

/* Cancels ep's consumers. 0 or CTXD_EBROKER. */
static int cancel(host_t *h, const ctxd__endpoint_t *ep) { return each_queue(h, ep, cancel_queue, NULL, 0); }

/* Opens ep's channel, declares ep's topology and sets its prefetch. */
static int prepare(host_t *h, const ctxd__endpoint_t *ep, char *err, size_t errlen) {
  ctxd__broker_t *b = &h->session.broker;
  if (ctxd__broker_channel_open(b, ep->channel, err, errlen) != 0) return CTXD_EBROKER;
  /* the ingest endpoint comes last: the queues it reads are declared by then */
  int rc = ep->ingest
               ? ctxd__topology_declare_ingest(b, &h->endpoints, h->cfg->errors_keep_in_queue, err, errlen)
               : ctxd__topology_declare(b, ep, err, errlen);
  /* the ingest endpoint's consumers share its prefetch, the size of its one ledger (a
   * channel-wide limit is refused by quorum queues): a per-consumer limit, set once for
   * every consumer of its channel */
  int64_t prefetch =
      ep->ingest ? ep->settings.prefetch / (int64_t)(h->endpoints.n - 1) : ep->settings.prefetch;
  return rc != 0 ? rc : ctxd__broker_qos(b, ep->channel, (int)prefetch, err, errlen);
}

static int start_consuming(host_t *h, char *err, size_t errlen) {
  /* every declare, channel and prefetch first, without a round trip each; then the
   * consumers, whose deliveries may come at once */
  ctxd__broker_pipeline_begin(&h->session.broker);
  int rc = 0;
  for (size_t i = 0; rc == 0 && i < h->endpoints.n; i++) rc = prepare(h, h->endpoints.v[i], err, errlen);
  /* after a failure the replies still due never come: the caller drops the connection */
  if (rc != 0 || ctxd__broker_pipeline_end(&h->session.broker, err, errlen) != 0) return CTXD_EBROKER;
  for (size_t i = 0; i < h->endpoints.n; i++) {
    ctxd__endpoint_t *ep = h->endpoints.v[i];
    /* a draining endpoint consumes again when its plugin's swap completes */
    if (ep->draining) continue;
    if (each_queue(h, ep, consume_queue, err, errlen) != 0) return CTXD_EBROKER;
    ep->consuming = 1;
  }
  return 0;
}

static void on_reconnect(uv_timer_t *t);

static void schedule_reconnect(host_t *h) {
  if (h->stopping) return;
  int max = (int)h->cfg->reconnect_max_ms;
  /* jitter keeps a fleet of hosts from reconnecting in lockstep */
  int delay = h->backoff_ms / 2 + rand() % (h->backoff_ms / 2 + 1);
  h->backoff_ms = h->backoff_ms * 2 > max ? max : h->backoff_ms * 2;
  uv_timer_start(&h->reconnect, on_reconnect, (uint64_t)delay, 0);
}

static void log_ready(host_t *h, const char *url) {
  char safe[512];
  if (!h->ready_logged) {
    ctxd__log(CTXD__LOG_INFO, "host", "ready: %zu plugins, %zu endpoints consuming", h->nplugins,
              h->endpoints.n);
    h->ready_logged = 1;
    if (ctxd__notify("READY=1\nSTATUS=consuming") != 0)
      ctxd__log(CTXD__LOG_WARN, "host", "could not tell the service manager we are ready");
    return;
  }
  h->reconnects++;
  ctxd__redact(url, safe, sizeof safe);
  ctxd__log(CTXD__LOG_INFO, "host", "reconnected to the broker (%s); consuming again", safe);
  ctxd__notify("STATUS=consuming");
}

/* A connection made on the thread pool: its TCP and TLS handshakes, login and publish
 * channel wait on the broker, up to rpc_timeout_ms each when the broker does not answer
 * (a cut link), and the loop goes on meanwhile: the admin endpoint answers, the watchdog
 * is pinged, the workers' results are taken. */
typedef struct {
  uv_work_t req;
  host_t *h;
  const char *url;
  ctxd__broker_t broker; /* the thread's until done */
  int rc;
  char err[512];
} dial_t;

static void dial(uv_work_t *req) {
  dial_t *d = req->data;
  const ctxd__config_t *cfg = d->h->cfg;
  d->rc = ctxd__broker_connect(&d->broker, d->url, cfg->broker_password, &cfg->broker_tls,
                               (int)cfg->heartbeat_s, (int)cfg->rpc_timeout_ms, d->err, sizeof d->err);
  /* OpenSSL's state of this thread (its error queue, kept even for amqp://) is freed when
   * a thread exits, and the pool's threads never do: freed now, made again when needed */
  OPENSSL_thread_stop();
}

static void dialed(uv_work_t *req, int status) {
  dial_t *d = req->data;
  host_t *h = d->h;
  if (status != 0 || h->stopping) { /* not wanted any more */
    if (status == 0 && d->rc == 0) ctxd__broker_close(&d->broker, 0);
    free(d);
    return;
  }
  char err[512], safe[512];
  const char *url = d->url;
  int rc = d->rc;
  snprintf(err, sizeof err, "%s", d->err);
  if (rc == 0) ctxd__broker_move(&h->session.broker, &d->broker);
  free(d);
  if (rc == 0) rc = start_consuming(h, err, sizeof err);
  if (rc == 0 && uv_poll_init(&h->loop, &h->poll, h->session.broker.fd) == 0) {
    h->poll.data = h;
    uv_poll_start(&h->poll, UV_READABLE, on_poll);
    h->poll_active = 1;
  } else if (rc == 0) {
    rc = CTXD_EBROKER;
    snprintf(err, sizeof err, "cannot poll the broker socket");
  }
  if (rc != 0) {
    ctxd__broker_close(&h->session.broker, 0);
    ctxd__redact(url, safe, sizeof safe);
    ctxd__log(CTXD__LOG_WARN, "host", "broker %s: %s; retrying", safe, err);
    ctxd__notify("STATUS=broker unreachable; retrying");
    h->node = (h->node + 1) % h->cfg->nbroker_urls; /* a cluster: the next node */
    schedule_reconnect(h);
    return;
  }
  h->backoff_ms = 100;
  log_ready(h, url);
  /* an alarm in force when the connection opened (said among the topology's replies) keeps
   * the outbox held; else what waited for the broker goes now */
  if (h->session.broker.blocked > 0) {
    set_blocked(h, 1, h->session.broker.blocked_reason);
  } else {
    ctxd__relay_hold(h->relay, 0, NULL, 0);
  }
  drain(h); /* frames may already sit in the library's buffer */
}

static void connect_broker(host_t *h) {
  dial_t *d = calloc(1, sizeof *d);
  if (d != NULL) {
    *d = (dial_t){.req.data = d, .h = h, .url = h->cfg->broker_urls[h->node]};
    if (uv_queue_work(&h->loop, &d->req, dial, dialed) == 0) return;
    free(d);
  }
  ctxd__log(CTXD__LOG_WARN, "host", "broker: cannot start connecting; retrying");
  schedule_reconnect(h);
}

static void on_reconnect(uv_timer_t *t) { connect_broker(t->data); }

static void on_poll_closed(uv_handle_t *handle) { (void)handle; }

/* Drops the connection: every unsettled delivery comes back from the broker and the inbox
 * recognises what was already committed. */
static void connection_lost(host_t *h, const char *why) {
  if (h->session.broker.conn == NULL) return;
  ctxd__log(CTXD__LOG_WARN, "host", "broker: %s; reconnecting", why);
  ctxd__notify("STATUS=broker connection lost; reconnecting");
  /* the node may be gone: in a cluster, try the next one first */
  h->node = (h->node + 1) % h->cfg->nbroker_urls;
  if (h->poll_active) {
    uv_poll_stop(&h->poll);
    uv_close((uv_handle_t *)&h->poll, on_poll_closed);
    h->poll_active = 0;
  }
  h->intake.paused = 0; /* a new connection reads first, then paces */
  /* no sweeps until connected again (the rows would only be claimed and dropped, tick
   * after tick); the rows awaiting a confirm lose their lease now, as their confirms are
   * lost with the connection: the first sweep after it, or another host's, sends them */
  ctxd__relay_hold(h->relay, 1, ctxd__session_pending_rows(&h->session), 0);
  ctxd__broker_close(&h->session.broker, 0);
  set_blocked(h, 0, NULL); /* a new connection hears of an alarm still in force */
  ctxd__session_drop(&h->session);
  /* deliveries a worker still holds come back stale, and are dropped then */
  for (size_t i = 0; i < h->endpoints.n; i++) ctxd__endpoint_forget(h->endpoints.v[i]);
  ctxd__inspect_reset(&h->inspect);
  schedule_reconnect(h);
  progressed(h);
}

/* ---- stopping ----------------------------------------------------------------------- */

static size_t inflight(const host_t *h) {
  size_t n = 0;
  for (size_t i = 0; i < h->endpoints.n; i++) n += h->endpoints.v[i]->inflight;
  return n;
}

static void close_walk(uv_handle_t *handle, void *arg) {
  (void)arg;
  if (!uv_is_closing(handle)) uv_close(handle, NULL);
}

static void maybe_finish_stop(host_t *h) {
  if (!h->stopping || inflight(h) > 0 || h->session.confirms.n > 0) return;
  if (h->session.broker.conn != NULL) {
    if (h->poll_active) {
      uv_poll_stop(&h->poll);
      h->poll_active = 0;
    }
    ctxd__broker_close(&h->session.broker, 1);
  }
  ctxd__mailbox_close(&h->mailbox);
  if (h->admin != NULL) ctxd__admin_close(h->admin); /* frees itself in its close callbacks */
  h->admin = NULL;
  uv_walk(&h->loop, close_walk, NULL);
}

static void on_drain_deadline(uv_timer_t *t) {
  host_t *h = t->data;
  ctxd__log(CTXD__LOG_WARN, "host",
            "stop deadline reached with %zu deliveries unsettled; the broker will redeliver them",
            inflight(h));
  h->deadline_passed = 1;
  connection_lost(h, "stop deadline");
  /* what the workers still hold is freed when they are joined */
  for (size_t i = 0; i < h->endpoints.n; i++) h->endpoints.v[i]->inflight = 0;
  maybe_finish_stop(h);
}

static void abandon_swap(host_t *h) {
  ctxd__swap_abandon(&h->swap);
  h->swap_phase = SWAP_NONE;
  for (size_t i = 0; i < h->endpoints.n; i++) h->endpoints.v[i]->draining = 0;
}

static void begin_stop(host_t *h, const char *why) {
  if (h->stopping) return;
  h->stopping = 1;
  ctxd__log(CTXD__LOG_INFO, "host", "stopping (%s): finishing %zu deliveries in flight", why, inflight(h));
  /* a replacement that never ran: the old version drains and stops as usual (one still
   * migrating is dropped when its migrations end) */
  if (h->swap_phase == SWAP_DRAINING) abandon_swap(h);
  ctxd__notify("STOPPING=1");
  /* its queries end now: the loop (and the process) waits for the running one */
  ctxd__console_stop(h->console);
  uv_timer_stop(&h->reconnect);
  for (size_t i = 0; i < h->endpoints.n && h->session.broker.conn != NULL; i++)
    if (h->endpoints.v[i]->consuming) cancel(h, h->endpoints.v[i]);
  flush_batches(h);
  /* executors claim no more calls; one being run finishes and its outcome is recorded */
  for (size_t i = 0; i < h->nplugins; i++) ctxd__executors_signal(&h->plugins[i]->executors);
  /* a deadline, so a wedged database cannot hold the process forever */
  uv_timer_start(&h->drain_deadline, on_drain_deadline, STOP_DEADLINE_MS, 0);
  maybe_finish_stop(h);
}

/* Pings come from the loop itself: a wedged loop stops them and systemd restarts us. */
static void on_watchdog(uv_timer_t *t) {
  (void)t;
  ctxd__notify("WATCHDOG=1");
}

/* Handlers past their time limit are reported; on an endpoint that says so, the host exits
 * for its supervisor to restart it: the message comes back redelivered and counts an
 * attempt. _exit: the stuck thread holds locks an orderly exit would wait for. */
static void on_handlers(uv_timer_t *t) {
  if (!ctxd__status_watch(&((host_t *)t->data)->endpoints)) return;
  ctxd__log(CTXD__LOG_ERROR, "host",
            "exiting: a handler ran past handler_timeout_ms on an endpoint with "
            "handler_timeout_exit; its message will be redelivered");
  _exit(CTXD__EXIT_FAILURE);
}

/* How often handlers are checked: a quarter of the shortest limit, within [50 ms, 1 s]. */
static uint64_t handler_check_ms(const ctxd__endpoints_t *set) {
  int64_t ms = 1000;
  for (size_t i = 0; i < set->n; i++) {
    int64_t limit = set->v[i]->settings.handler_timeout_ms;
    if (limit > 0 && limit / 4 < ms) ms = limit / 4;
  }
  return ms < 50 ? 50 : (uint64_t)ms;
}

/* After the stop deadline a worker still in a batch could hold the exit forever (its
 * thread is joined), a handler that hangs say: the queued batches are dropped (their
 * deliveries come back) and, while a worker is still in one, the host leaves without it,
 * naming the handler that runs. */
static void exit_if_workers_busy(host_t *h) {
  size_t busy = 0;
  for (size_t i = 0; h->deadline_passed && i < h->endpoints.n; i++)
    busy += ctxd__endpoint_abandon(h->endpoints.v[i]);
  if (busy == 0) return;
  int64_t now = ctxd__clock_us();
  for (size_t i = 0; i < h->endpoints.n; i++) {
    ctxd__endpoint_t *ep = h->endpoints.v[i];
    for (size_t k = 0; ep->workers != NULL && k < ep->nthreads; k++) {
      ctxd__watch_sample_t w;
      if (!ctxd__watch_overdue(&ep->workers[k].watch, now, 0, 0, &w)) continue;
      ctxd__logf(CTXD__LOG_ERROR, w.plugin,
                 &(ctxd__log_fields_t){.endpoint = w.endpoint, .message_id = w.message_id},
                 "the handler for %s still runs after the stop deadline", w.message_type);
    }
  }
  ctxd__log(CTXD__LOG_ERROR, "host", "exiting without %zu worker(s) still in a batch after the stop deadline",
            busy);
  _exit(CTXD__EXIT_FAILURE);
}

static void on_signal(uv_signal_t *s, int signum) {
  begin_stop(s->data, signum == SIGINT ? "SIGINT" : "SIGTERM");
}

/* ---- the admin endpoint --------------------------------------------------------------- */

static int on_admin(void *data, ctxd__admin_req_t *req, ctxd__admin_resp_t *resp) {
  host_t *h = data;
  ctxd__admin_stats_t admin;
  ctxd__admin_stats(h->admin, &admin);
  uint64_t blocked_ms = h->blocked_ms + (h->session.blocked ? uv_now(&h->loop) - h->blocked_at : 0);
  ctxd__status_t s = {.connected = h->session.broker.conn != NULL,
                      .stopping = h->stopping,
                      .reconnects = h->reconnects,
                      .blocked = h->session.blocked ? h->session.blocked_reason : NULL,
                      .blocks = h->blocks,
                      .blocked_s = (double)blocked_ms / 1e3,
                      .outbox_refused = h->session.refused_total,
                      .endpoints = &h->endpoints,
                      .intake = &h->intake,
                      .relay = h->relay,
                      .admin = &admin,
                      .plugins = h->plugins,
                      .nplugins = h->nplugins,
                      .series = &h->series,
                      .observed = &h->observed,
                      .now_ms = (int64_t)uv_now(&h->loop)};
  const char *path = ctxd__admin_path(req);
  ctxd__prom_t *body = &resp->body;
  int probe = strcmp(path, "/healthz") == 0 || strcmp(path, "/readyz") == 0 || strcmp(path, "/metrics") == 0;
  if (probe && strcmp(ctxd__admin_method(req), "POST") == 0) {
    resp->headers = "Allow: GET, HEAD\r\n";
    return ctxd__prom_printf(body, "Method Not Allowed\n") == 0 ? 405 : 500;
  }
  if (strcmp(path, "/healthz") == 0) return ctxd__prom_printf(body, "ok\n") == 0 ? 200 : 500;
  if (strcmp(path, "/readyz") == 0) return ctxd__status_readiness(&s, body);
  if (strcmp(path, "/metrics") == 0) {
    resp->content_type = CTXD__PROM_CONTENT_TYPE;
    return ctxd__status_metrics(&s, body);
  }
  int status = h->console != NULL ? ctxd__console_handle(h->console, &s, req, resp) : CTXD_ENOENT;
  if (status != CTXD_ENOENT) return status;
  ctxd__prom_printf(body, "not found: try /healthz, /readyz, /metrics or / (the console)\n");
  return 404;
}

static int inspect_queue(host_t *h, const ctxd__endpoint_t *ep, const char *queue, char *err, size_t errlen) {
  (void)err;
  (void)errlen;
  return ctxd__inspect_send(&h->inspect, &h->session.broker, (ctxd__endpoint_t *)ep, queue);
}

/* The console's history: each endpoint's counters, and its queue's depth and consumers as
 * the broker last told (inspect.h). While connected, a passive queue.declare per queue it
 * consumes is sent without waiting (the replies are read with the deliveries, and never
 * make the loop wait or read past a full intake); a round still unanswered is not repeated. */
static void on_sample(uv_timer_t *t) {
  host_t *h = t->data;
  int64_t now = ctxd__clock_wall_ms();
  int was_open = h->inspect.open;
  h->series.taken++;
  for (size_t i = 0; i < h->endpoints.n; i++) {
    ctxd__endpoint_t *ep = h->endpoints.v[i];
    ctxd__sample_t sample;
    ctxd__status_sample(ep, now, &sample);
    sample.mono_ms = (int64_t)uv_now(&h->loop);
    int64_t consumers; /* the console reads them live */
    ctxd__inspect_figures(ep, sample.mono_ms, &sample.queue_depth, &consumers);
    ctxd__ring_t *r = ctxd__series_ring(&h->series, ep->name);
    if (r != NULL) ctxd__ring_add(r, &sample);
    /* blocked, the broker may read nothing of the connection: opening the channel would
     * wait out the RPC timeout and drop the connection; the figures wait for the block */
    if (h->poll_active && h->session.broker.conn != NULL && !h->session.blocked && ep->inspecting == 0 &&
        each_queue(h, ep, inspect_queue, NULL, 0) != 0)
      connection_lost(h, "sending a queue.declare failed, or opening its channel");
  }
  /* opening the channel waited for its reply and kept the frames read meanwhile in the
   * library's buffer, which never makes the socket readable again */
  if (!was_open && h->inspect.open && !h->intake.paused) drain(h);
}

/* ---- replacing a plugin -------------------------------------------------------------- */

/* The plugin is replaced in this process: its endpoints stop consuming and drain, their
 * workers are joined (so no handler of the old version runs any more), the old version is
 * stopped and destroyed, the new one takes its place and consumption resumes. Messages not
 * yet delivered wait in their queues; the inbox keeps everything exactly once. */

static void reload(host_t *h);

/* READY=1 again after the RELOADING=1 told when the swap began (replaced or refused, the
 * host serves); the status says what the connection is now */
static void swap_ended(const host_t *h) {
  ctxd__notify(h->session.broker.conn != NULL ? "READY=1\nSTATUS=consuming"
                                              : "READY=1\nSTATUS=broker connection lost; reconnecting");
}

static void finish_swap(host_t *h) {
  for (size_t e = 0; e < h->endpoints.n; e++)
    if (h->endpoints.v[e]->draining) ctxd__workers_stop(h->endpoints.v[e]);
  h->plugins[h->swap_index] = ctxd__swap_finish(&h->swap, &h->endpoints);
  h->swap_phase = SWAP_NONE;
  swap_ended(h);
  char err[512];
  for (size_t e = 0; e < h->endpoints.n; e++) {
    ctxd__endpoint_t *ep = h->endpoints.v[e];
    if (!ep->draining) continue;
    ep->draining = 0;
    if (ctxd__workers_start(ep) != 0)
      ctxd__log(CTXD__LOG_ERROR, "host", "cannot start workers of '%s'", ep->name);
    if (h->session.broker.conn == NULL) continue; /* the reconnect consumes */
    if (ctxd__topology_bind_types(&h->session.broker, ep, err, sizeof err) != 0 ||
        ctxd__broker_qos(&h->session.broker, ep->channel, (int)ep->settings.prefetch, err, sizeof err) != 0 ||
        ctxd__broker_consume(&h->session.broker, ep->channel, ep->name, err, sizeof err) != 0) {
      connection_lost(h, err); /* the other endpoints still get their workers; the reconnect consumes */
      continue;
    }
    ep->consuming = 1;
  }
  reload(h); /* the next plugin whose file changed */
}

static void progressed(host_t *h) {
  if (h->swap_phase == SWAP_DRAINING) {
    int drained = 1;
    /* and no delivery of the cancelled consumer can still arrive: a new consumer on the
     * channel would get a prefetch of its own on top of them */
    for (size_t e = 0; e < h->endpoints.n; e++)
      if (h->endpoints.v[e]->draining && (h->endpoints.v[e]->inflight > 0 || h->endpoints.v[e]->cancelling))
        drained = 0;
    /* and the old version's executors left their loops (a call being run finished): joining
     * them does not block the loop */
    if (!ctxd__executors_exited(&h->swap.old->executors)) drained = 0;
    if (drained) finish_swap(h);
  }
  maybe_finish_stop(h);
}

/* The replacement is migrated: the old version's endpoints stop consuming and drain. */
static void on_swap_migrated(ctxd__swap_t *s, int status) {
  host_t *h = s->data;
  h->swap_phase = SWAP_NONE;
  if (status != 0) {
    swap_ended(h);
    reload(h); /* refused: the next changed plugin, if any */
    return;
  }
  if (h->stopping) {
    abandon_swap(h);
    maybe_finish_stop(h);
    return;
  }
  h->swap_phase = SWAP_DRAINING;
  for (size_t e = 0; e < h->endpoints.n; e++) {
    ctxd__endpoint_t *ep = h->endpoints.v[e];
    if (!ctxd__endpoint_uses(ep, s->old)) continue;
    ep->draining = 1;
    if (ep->consuming && h->session.broker.conn != NULL &&
        ctxd__broker_cancel(&h->session.broker, ep->channel, ep->name) == 0)
      ep->cancelling = 1;
    ep->consuming = 0;
  }
  ctxd__log(CTXD__LOG_INFO, "host", "replacing plugin '%s' %s with %s: draining its endpoints", s->old->name,
            s->old->desc->version, s->fresh->desc->version);
  ctxd__executors_signal(&s->old->executors); /* each posts when it has left its loop */
  flush_batches(h);
  progressed(h);
}

/* SIGHUP: replace every plugin whose file changed, one after another (each one's end,
 * replaced or refused, starts the next). */
static void reload(host_t *h) {
  if (h->stopping) return;
  if (h->swap_phase != SWAP_NONE) {
    ctxd__log(CTXD__LOG_WARN, "host", "reload: plugin '%s' is still being replaced; signal again later",
              h->plugins[h->swap_index]->name);
    return;
  }
  for (size_t i = 0; i < h->nplugins; i++) {
    if (!ctxd__plugin_changed(h->plugins[i])) continue;
    h->swap.data = h;
    if (ctxd__swap_begin(&h->swap, &h->loop, h->cfg, h->plugins[i], &h->endpoints, on_swap_migrated) == 0) {
      h->swap_phase = SWAP_MIGRATING;
      h->swap_index = i;
      ctxd__notify("RELOADING=1\nSTATUS=replacing a plugin");
      return;
    }
  }
}

static void on_sighup(uv_signal_t *s, int signum) {
  (void)signum;
  reload(s->data);
}

/* ---- start-up ------------------------------------------------------------------------ */

static int load_plugins(host_t *h) {
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
    p->endpoints = &h->endpoints;
    p->in_init = 1;
    rc = p->desc->init(p, &ctxd__api, &p->state);
    p->in_init = 0;
    if (rc != 0) {
      ctxd__log(CTXD__LOG_ERROR, "host", "plugin '%s' (%s): init failed: %s (%d); not starting", p->name,
                p->path, ctxd_strerror(rc), rc);
      return CTXD_EPLUGIN;
    }
    ctxd__log(CTXD__LOG_INFO, "host", "loaded plugin '%s' %s from %s", p->name,
              p->desc->version != NULL ? p->desc->version : "", p->path);
  }
  return 0;
}

/* Warns when the host's database role is a superuser: a bug or a hostile message in any
 * plugin could then do anything to the whole cluster. */
static void warn_superuser(PGconn *c) {
  char err[256];
  int code;
  PGresult *r = ctxd__db_exec(c, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user", 0, NULL, &code,
                              err, sizeof err);
  if (r != NULL && PQntuples(r) == 1 && strcmp(PQgetvalue(r, 0, 0), "t") == 0)
    ctxd__log(CTXD__LOG_WARN, "host",
              "connected to the database as '%s', a superuser: give the host a role with only the rights "
              "its statements need (docs/operations.md, \"Roles and secrets\")",
              PQuser(c));
  PQclear(r);
}

/* Warns when the database URL names several servers but lets libpq take any of them: after
 * a failover the host could connect to a standby, where every write fails (25006), and it
 * would reconnect to the same standby again. target_session_attrs=read-write (or primary)
 * makes libpq skip the servers that are not the primary. */
static void warn_any_server(const char *url) {
  PQconninfoOption *opts = PQconninfoParse(url, NULL);
  const char *hosts = NULL, *addrs = NULL, *attrs = NULL;
  for (PQconninfoOption *o = opts; o != NULL && o->keyword != NULL; o++) {
    if (strcmp(o->keyword, "host") == 0) hosts = o->val;
    if (strcmp(o->keyword, "hostaddr") == 0) addrs = o->val;
    if (strcmp(o->keyword, "target_session_attrs") == 0) attrs = o->val;
  }
  int several =
      (hosts != NULL && strchr(hosts, ',') != NULL) || (addrs != NULL && strchr(addrs, ',') != NULL);
  if (several && (attrs == NULL || (strcmp(attrs, "read-write") != 0 && strcmp(attrs, "primary") != 0)))
    ctxd__log(CTXD__LOG_WARN, "host",
              "the database URL names several servers without target_session_attrs=read-write: after a "
              "failover the host may connect to a standby and fail every write (docs/operations.md, "
              "\"Database failover\")");
  PQconninfoFree(opts);
}

/* Applies the runtime's and every plugin's lacking migrations (apply 1), or checks that none
 * is lacking (apply 0), naming every one that is. */
static int migrate_all(host_t *h, int apply, int run) {
  PGconn *c;
  char err[1024], safe[512], lacking[2048] = "";
  size_t len = 0;
  if (ctxd__db_open(h->cfg, &c, err, sizeof err) != 0) {
    ctxd__redact(h->cfg->database_url, safe, sizeof safe);
    ctxd__log(CTXD__LOG_ERROR, "host", "database %s: %s", safe, err);
    return CTXD_EDB;
  }
  if (run) {
    warn_superuser(c);
    warn_any_server(h->cfg->database_url);
  }
  int rc = 0;
  for (size_t i = 0; rc == 0 && i <= h->nplugins; i++) {
    const char *scope = i == 0 ? "ctxd" : h->plugins[i - 1]->name;
    const ctxd_migration_t *list = i == 0 ? ctxd__runtime_migrations : h->plugins[i - 1]->desc->migrations;
    if (list == NULL) continue;
    rc = ctxd__migrate(c, scope, list, apply, err, sizeof err);
    if (rc == CTXD_ENOENT && len < sizeof lacking) { /* lacking: name them all, then refuse */
      len += (size_t)snprintf(lacking + len, sizeof lacking - len, "%s%s", len > 0 ? "; " : "", err);
      rc = 0;
    }
  }
  if (rc != 0 && strcmp(ctxd__db_sqlstate(c), "42501") == 0) /* insufficient_privilege */
    ctxd__log(CTXD__LOG_ERROR, "host",
              "%s; this role may not change the schema: run `ctxd migrate` as the database owner, and set "
              "database.migrate to \"check\"",
              err);
  else if (rc != 0)
    ctxd__log(CTXD__LOG_ERROR, "host", "%s", err);
  if (rc == 0 && lacking[0] != '\0') {
    ctxd__log(
        CTXD__LOG_ERROR, "host",
        "the database lacks migrations: %s; run `ctxd migrate` as the database owner (database.migrate is "
        "\"check\": `ctxd run` does not apply them)",
        lacking);
    rc = CTXD_EMIGRATION;
  }
  PQfinish(c);
  return rc;
}

/* systemd's start timeout is extended by twice this while start-up migrations run, for
 * at most MIGRATE_EXTEND_LIMIT_MS: migrations that take longer wait on a lock nobody
 * releases, and the supervisor's timeout ends such a start */
#define MIGRATE_EXTEND_MS 10000
#define MIGRATE_EXTEND_LIMIT_MS (15 * 60 * 1000)

static int start(host_t *h) {
  ctxd__notify_extend_t extend;
  ctxd__notify("STATUS=migrating the database");
  ctxd__notify_extend_start(&extend, MIGRATE_EXTEND_MS, MIGRATE_EXTEND_LIMIT_MS);
  int rc = migrate_all(h, h->cfg->db_migrate_auto, 1);
  ctxd__notify_extend_stop(&extend);
  if (rc != 0) return CTXD__EXIT_FAILURE;
  if (ctxd__relay_start(&h->relay, h->cfg, &h->mailbox, on_swept) != 0) return CTXD__EXIT_FAILURE;
  for (size_t i = 0; i < h->endpoints.n; i++) {
    /* the ledger is sized now: the settings are final once every plugin registered */
    ctxd__endpoint_t *ep = h->endpoints.v[i];
    if (ctxd__endpoint_open(ep) != 0 || ctxd__workers_start(ep) != 0) return CTXD__EXIT_FAILURE;
  }
  for (size_t i = 0; i < h->nplugins; i++) {
    ctxd_plugin_t *p = h->plugins[i];
    if (p->desc->start != NULL && (rc = p->desc->start(p->state)) != 0) {
      ctxd__log(CTXD__LOG_ERROR, "host", "plugin '%s': start failed: %s", p->name, ctxd_strerror(rc));
      return CTXD__EXIT_FAILURE;
    }
    p->started = 1;
    if (ctxd__executors_start(&p->executors, &h->endpoints.env) != 0) {
      ctxd__log(CTXD__LOG_ERROR, "host", "plugin '%s': cannot start its executors", p->name);
      return CTXD__EXIT_FAILURE;
    }
  }
  return 0;
}

/* Admin connections may hold at most half the open-file limit: the rest stays for the
 * broker, the workers' database connections, plugins and the loop. */
static void admin_bound(host_t *h) {
  const ctxd__config_t *cfg = h->cfg;
  uint64_t max = (uint64_t)cfg->admin_max_connections;
  if (max > h->nofile / 2) {
    ctxd__log(CTXD__LOG_WARN, "host",
              "admin.max_connections %llu is more than half the open-file limit %llu: using %llu",
              (unsigned long long)max, (unsigned long long)h->nofile, (unsigned long long)(h->nofile / 2));
    max = h->nofile / 2;
  }
  ctxd__admin_set_max_connections(h->admin, (size_t)max);
  ctxd__admin_set_idle_timeout(h->admin, (uint64_t)cfg->admin_idle_timeout_ms);
}

/* Signals, timers and the admin endpoint; then the broker. */
static void run(host_t *h) {
  const ctxd__config_t *cfg = h->cfg;
  uv_signal_init(&h->loop, &h->sigint);
  uv_signal_init(&h->loop, &h->sigterm);
  uv_signal_init(&h->loop, &h->sighup);
  h->sigint.data = h->sigterm.data = h->sighup.data = h;
  uv_signal_start(&h->sigint, on_signal, SIGINT);
  uv_signal_start(&h->sigterm, on_signal, SIGTERM);
  uv_signal_start(&h->sighup, on_sighup, SIGHUP);
  uv_timer_init(&h->loop, &h->heartbeat);
  uv_timer_init(&h->loop, &h->reconnect);
  uv_timer_init(&h->loop, &h->drain_deadline);
  h->heartbeat.data = h->reconnect.data = h->drain_deadline.data = h;
  uint64_t beat = cfg->heartbeat_s > 1 ? (uint64_t)cfg->heartbeat_s * 500 : 1000;
  uv_timer_start(&h->heartbeat, on_heartbeat, beat, beat);
  uv_timer_init(&h->loop, &h->handlers);
  h->handlers.data = h;
  uint64_t check = handler_check_ms(&h->endpoints);
  uv_timer_start(&h->handlers, on_handlers, check, check);
  /* before anything can stop the host: a stop closes the handles that exist then, and a
   * timer started after it would keep the loop running */
  uint64_t watchdog = ctxd__notify_watchdog_ms();
  if (watchdog > 0) {
    uv_timer_init(&h->loop, &h->watchdog);
    uv_timer_start(&h->watchdog, on_watchdog, watchdog / 2, watchdog / 2);
  }
  char aerr[256];
  if (cfg->admin_listen != NULL &&
      ctxd__admin_start(&h->loop, cfg->admin_listen, on_admin, h, &h->admin, aerr, sizeof aerr) != 0) {
    ctxd__log(CTXD__LOG_ERROR, "host", "%s", aerr);
    h->exit_code = CTXD__EXIT_FAILURE;
    begin_stop(h, "admin endpoint");
  } else if (h->admin != NULL) {
    admin_bound(h);
    if ((h->console = ctxd__console_new(&h->loop, cfg)) == NULL)
      ctxd__log(CTXD__LOG_WARN, "host", "admin: out of memory: no console");
    uv_timer_init(&h->loop, &h->sample);
    h->sample.data = h;
    uv_timer_start(&h->sample, on_sample, CTXD__SERIES_INTERVAL_MS, CTXD__SERIES_INTERVAL_MS);
    ctxd__log(CTXD__LOG_INFO, "host", "admin endpoint on %s, port %d (/healthz, /readyz, /metrics)",
              cfg->admin_listen, ctxd__admin_port(h->admin));
  }
  /* a host that failed to start its admin endpoint must not consume, nor say ready */
  if (h->stopping) return;
  ctxd__relay_hold(h->relay, 1, NULL, 0); /* no sweeps before there is a broker to publish to */
  connect_broker(h);
}

static void host_free(host_t *h) {
  for (size_t i = 0; i < h->nplugins; i++) ctxd__plugin_free(h->plugins[i]);
  free(h->plugins);
  ctxd__endpoints_free(&h->endpoints);
  ctxd__confirms_free(&h->session.confirms);
  ctxd__outrows_free(&h->session.refused); /* the relay is gone: they stay in the outbox */
  ctxd__contracts_free(h->contracts);
  ctxd__console_free(h->console); /* the loop ended: no query of it runs */
  ctxd__series_free(&h->series);
  ctxd__inspect_free(&h->inspect);
  ctxd__observed_free(&h->observed);
}

/* Runs the loop; returns once it ended and every thread is joined. */
static void serve(host_t *h) {
  int rc = ctxd__mailbox_init(&h->mailbox, &h->loop, h);
  if (rc != 0) {
    ctxd__log(CTXD__LOG_ERROR, "host", "cannot wake the loop from other threads: %s", uv_strerror(rc));
    h->exit_code = CTXD__EXIT_FAILURE;
    return;
  }
  h->exit_code = start(h);
  if (h->exit_code == 0)
    run(h);
  else
    ctxd__mailbox_close(&h->mailbox); /* the loop runs only to close it */
  uv_run(&h->loop, UV_RUN_DEFAULT);
  exit_if_workers_busy(h);
  for (size_t i = 0; i < h->endpoints.n; i++) ctxd__workers_stop(h->endpoints.v[i]);
  /* before the relay (they wake it) and the mailbox (they post when they leave) end */
  for (size_t i = 0; i < h->nplugins; i++) ctxd__executors_stop(&h->plugins[i]->executors);
  ctxd__relay_stop(h->relay);
  ctxd__mailbox_drain(&h->mailbox);
  ctxd__broker_close(&h->session.broker, 0);
  ctxd__session_drop(&h->session);
  for (size_t i = h->nplugins; i-- > 0;)
    if (h->plugins[i]->started && h->plugins[i]->desc->stop != NULL)
      h->plugins[i]->desc->stop(h->plugins[i]->state);
  ctxd__status_log(&h->endpoints);
}

/* A worker committed a scheduled message due at at_ms: the relay (started before any
 * worker) wakes for it. */
static void on_scheduled(void *data, int64_t at_ms) { ctxd__relay_wake_at(((host_t *)data)->relay, at_ms); }

/* An executor thread left its loop: a replacement waiting for it may go on. */
static void on_executor_exited(void *arg, ctxd__mail_t *m, int status) {
  free(m);
  if (status == 0) progressed(arg);
}

/* Before anything opens files: plugins, database and broker connections. */
static void raise_nofile(host_t *h) {
  ctxd__nofile_t lim;
  int rc = ctxd__nofile_raise(&lim);
  h->nofile = lim.soft != 0 ? lim.soft : 1024; /* unknown: the usual default */
  if (rc != 0)
    ctxd__log(CTXD__LOG_WARN, "host", "open-file limit %llu (hard %llu); raising it to the hard limit failed",
              (unsigned long long)lim.soft, (unsigned long long)lim.hard);
  else
    ctxd__log(CTXD__LOG_INFO, "host", "open-file limit %llu", (unsigned long long)lim.soft);
}

int ctxd__host_main(const ctxd__config_t *cfg, ctxd__host_mode_t mode) {
  host_t h;
  memset(&h, 0, sizeof h);
  h.cfg = cfg;
  h.backoff_ms = 100;
  srand((unsigned)time(NULL) ^ (unsigned)getpid());

  if (mode == CTXD__HOST_RUN) raise_nofile(&h);
  char err[512];
  if (ctxd__contracts_new(&h.contracts, err, sizeof err) != 0) {
    ctxd__log(CTXD__LOG_ERROR, "host", "contracts: %s", err);
    return CTXD__EXIT_FAILURE;
  }
  ctxd__intake_init(&h.intake, (uint64_t)cfg->max_message_bytes, (uint64_t)cfg->max_inflight_bytes);
  h.session.exchanges.contracts = h.contracts;            /* publishing a type binds its base types */
  pthread_mutex_t suspect_mu = PTHREAD_MUTEX_INITIALIZER; /* outlives every worker: joined in serve */
  /* built once: every message sent carries addresses, and the broker URL does not change */
  char address_base[512];
  if (ctxd__address_build(cfg->broker_urls[0], "", address_base, sizeof address_base) != 0)
    address_base[0] = '\0';
  ctxd__observed_init(&h.observed);
  ctxd__endpoint_env_t env = {.cfg = cfg,
                              .contracts = h.contracts,
                              .mailbox = &h.mailbox,
                              .batch_done = on_batch,
                              .intake = &h.intake,
                              .suspect_mu = &suspect_mu,
                              .address_base = address_base,
                              .observed = &h.observed,
                              .scheduled = on_scheduled,
                              .scheduled_data = &h,
                              .executor_exited = on_executor_exited};
  ctxd__endpoints_init(&h.endpoints, &env, CTXD__PUBLISH_CHANNEL + 1);
  if (load_plugins(&h) != 0) {
    host_free(&h);
    return CTXD__EXIT_CONFIG;
  }
  /* a host that runs takes in its endpoints' failed copies (a plugin replacement cannot
   * add an endpoint: swap.c refuses one that needs a restart) */
  if (mode == CTXD__HOST_RUN && cfg->errors_store && h.endpoints.n > 0 &&
      ctxd__endpoints_add_ingest(&h.endpoints) != 0) {
    host_free(&h);
    return CTXD__EXIT_FAILURE;
  }
  /* a channel each, numbered up from the first endpoint's: past the reopened publish
   * channels' numbers two would share one */
  if (h.endpoints.n > (size_t)(CTXD__PUBLISH_REOPENED - h.endpoints.first_channel)) {
    ctxd__log(CTXD__LOG_ERROR, "host", "%zu endpoints: a host serves at most %d (one broker channel each)",
              h.endpoints.n, CTXD__PUBLISH_REOPENED - h.endpoints.first_channel);
    host_free(&h);
    return CTXD__EXIT_CONFIG;
  }
  if (mode != CTXD__HOST_RUN) {
    int rc = CTXD__EXIT_OK;
    if (mode == CTXD__HOST_CHECK) ctxd__topology_print(stdout, &h.endpoints);
    if (mode == CTXD__HOST_DOT) ctxd__topology_dot(stdout, &h.endpoints);
    if (mode == CTXD__HOST_MIGRATE && migrate_all(&h, 1, 0) != 0) rc = CTXD__EXIT_FAILURE;
    if (mode == CTXD__HOST_MIGRATE && rc == 0) ctxd__log(CTXD__LOG_INFO, "host", "migrations applied");
    host_free(&h);
    return rc;
  }
  if (ctxd__crash_install() != 0)
    ctxd__log(CTXD__LOG_WARN, "host", "cannot install the crash handlers: a crash will not be described");
  uv_loop_init(&h.loop);
  serve(&h);
  int closed = uv_loop_close(&h.loop);
  if (closed != 0)
    ctxd__log(CTXD__LOG_ERROR, "host", "event loop not closed cleanly: %s", uv_strerror(closed));
  host_free(&h);
  if (h.exit_code == 0) ctxd__log(CTXD__LOG_INFO, "host", "stopped");
  return h.exit_code;
}
