#include "session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "amqptable.h"
#include "envelope.h"
#include "fault.h"
#include "forward.h"
#include "log.h"
#include "redact.h"

/* Confirms handled per call of ctxd__confirms_settle. */
#define SETTLE_CHUNK 64

int ctxd__session_settle(ctxd__session_t *s, ctxd__endpoint_t *ep) {
  ctxd__settlement_t st;
  int rc = 0;
  while (rc == 0 && ctxd__ledger_next(&ep->ledger, &st)) {
    rc = st.requeue ? ctxd__broker_nack(&s->broker, ep->channel, st.tag, st.multiple, 1)
                    : ctxd__broker_ack(&s->broker, ep->channel, st.tag, st.multiple);
    ep->inflight -= st.count;
  }
  return rc;
}

/* Publishes the copy d's outcome asks for and releases d's message; d is acknowledged once
 * the broker confirmed the copy, and until then the confirms hold it. */
static int forward(ctxd__session_t *s, ctxd__delivery_t *d) {
  ctxd__forward_t f;
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  int rc = ctxd__forward_build(&f, d, &now);
  if (rc != 0) return rc;
  uint64_t seq;
  /* as RabbitMqMoveTransport publishes: mandatory, with the routing key it came with */
  rc = ctxd__broker_publish(&s->broker, f.exchange, d->routing_key != NULL ? d->routing_key : "", 1, &f.props,
                            d->msg.body, &seq);
  ctxd__forward_free(&f);
  /* the copy is sent: only d's tag waits for the confirm, which is read from a socket the
   * host stops reading while it holds too many bytes */
  ctxd__delivery_release(d);
  if (rc == 0) rc = ctxd__confirms_add(&s->confirms, seq, d, NULL);
  if (rc == 0) ctxd__ledger_mark(&d->ep->ledger, d->tag, CTXD__TAG_CONFIRMING);
  return rc;
}

int ctxd__session_finish_batch(ctxd__session_t *s, ctxd__batch_t *b) {
  ctxd__endpoint_t *ep = b->ep;
  int rc = ctxd__session_publish_rows(s, &b->rows);
  if (b->gen != s->gen) {
    ep->inflight -= b->n;
    ctxd__batch_free(b);
    return rc;
  }
  int failed = rc != 0;
  for (size_t i = 0; i < b->n; i++) {
    ctxd__delivery_t *d = b->items[i];
    ctxd__tag_state_t state = CTXD__TAG_ACK;
    switch (d->outcome) {
    case CTXD__OUTCOME_DELAY:
    case CTXD__OUTCOME_ERROR:
    case CTXD__OUTCOME_SKIPPED:
      if (!failed && forward(s, d) == 0) continue;
      failed = 1;
      state = CTXD__TAG_REQUEUE;
      break;
    case CTXD__OUTCOME_REQUEUE:
    case CTXD__OUTCOME_ABANDON: state = CTXD__TAG_REQUEUE; break;
    default: break;
    }
    ctxd__ledger_mark(&ep->ledger, d->tag, state);
    ctxd__delivery_free(d);
  }
  free(b);
  return failed ? CTXD_EBROKER : ctxd__session_settle(s, ep);
}

/* Publishes row on the publish channel as its writer asked and tracks its confirm. 0, or
 * CTXD_EBROKER / CTXD_ENOMEM (row not tracked: the caller still owns it). */
static int publish_row(ctxd__session_t *s, ctxd__outrow_t *row) {
  amqp_basic_properties_t props = {0};
  props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_MESSAGE_ID_FLAG;
  props.content_type = amqp_cstring_bytes(CTXD__ENVELOPE_CONTENT_TYPE);
  props.delivery_mode = AMQP_DELIVERY_PERSISTENT;
  props.message_id = amqp_cstring_bytes(row->message_id);
  if (row->correlation_id != NULL) {
    props._flags |= AMQP_BASIC_CORRELATION_ID_FLAG;
    props.correlation_id = amqp_cstring_bytes(row->correlation_id);
  }
  char expiration[24];
  if (row->expires_ms != 0) {
    /* what is left of its time to live; at least a second, as MassTransit sends it */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t left = row->expires_ms - ((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
    snprintf(expiration, sizeof expiration, "%lld", (long long)(left > 0 ? left : 1000));
    props._flags |= AMQP_BASIC_EXPIRATION_FLAG;
    props.expiration = amqp_cstring_bytes(expiration);
  }
  amqp_pool_t pool;
  init_amqp_pool(&pool, 1024);
  json_t *headers = row->headers != NULL ? json_loads(row->headers, 0, NULL) : NULL;
  if (headers != NULL && ctxd__json_to_amqp_table(headers, &pool, &props.headers) == 0)
    props._flags |= AMQP_BASIC_HEADERS_FLAG;
  json_decref(headers);
  uint64_t seq;
  int rc = ctxd__broker_publish(&s->broker, row->exchange, row->routing_key != NULL ? row->routing_key : "",
                                1, &props, amqp_cstring_bytes(row->body), &seq);
  empty_amqp_pool(&pool);
  return rc == 0 ? ctxd__confirms_add(&s->confirms, seq, NULL, row) : rc;
}

/* The exchange a broker's reason names: "NOT_FOUND - no exchange 'X' in vhost '/'",
 * "PRECONDITION_FAILED - inequivalent arg 'durable' for exchange 'X' ...",
 * "ACCESS_REFUSED - exchange name 'X' contains reserved prefix 'amq.*'". 0, or -1 when it
 * names none. */
static int named_exchange(const char *text, char *buf, size_t len) {
  static const char *const marks[] = {"exchange '", "exchange name '"};
  for (size_t i = 0; i < sizeof marks / sizeof marks[0]; i++) {
    const char *p = strstr(text, marks[i]);
    if (p == NULL) continue;
    p += strlen(marks[i]);
    const char *q = strchr(p, '\'');
    if (q == NULL || (size_t)(q - p) >= len) return -1;
    memcpy(buf, p, (size_t)(q - p));
    buf[q - p] = '\0';
    return 0;
  }
  return -1;
}

/* Sets row aside with the broker's reason: archived as refused, never sent again. */
static void refuse(ctxd__session_t *s, ctxd__outrow_t *row, int code, const char *text) {
  char why[320];
  snprintf(why, sizeof why, "%d %s", code, text);
  free(row->refused);
  if ((row->refused = strdup(why)) == NULL) { /* it stays in the outbox, for the sweep */
    ctxd__outrow_free(row);
    return;
  }
  ctxd__logf(
      CTXD__LOG_WARN, "host", &(ctxd__log_fields_t){.message_id = row->message_id},
      "outbox: the broker refused the message to exchange '%s' (%s): archived as refused, not sent again",
      row->exchange, why);
  s->refused_total++;
  ctxd__outrows_push(&s->refused, row);
}

/* 1 when the copy d's outcome asks for goes to exchange name. */
static int copy_goes_to(const ctxd__delivery_t *d, const char *name) {
  ctxd__forward_t f;
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  if (ctxd__forward_build(&f, d, &now) != 0) return 0;
  int hit = strcmp(f.exchange, name) == 0;
  ctxd__forward_free(&f);
  return hit;
}

/* See ctxd__session_publish_closed; current (may be NULL) is the row whose declare the
 * broker answered by closing the channel: it goes after the pending rows. */
static int recover(ctxd__session_t *s, int code, const char *reason, ctxd__outrow_t *current,
                   ctxd__outrows_t *again) {
  char text[256], name[256], err[512];
  snprintf(text, sizeof text, "%s", reason);
  int named = named_exchange(text, name, sizeof name) == 0;
  /* a side queue's exchange (_error, _skipped, a delay) is declared with the topology, at
   * connect: one that went missing comes back with a new connection */
  for (size_t i = 0; named && i < s->confirms.n; i++) {
    const ctxd__pending_t *p = &s->confirms.v[s->confirms.head + i];
    if (p->copy_of != NULL && copy_goes_to(p->copy_of, name)) {
      ctxd__log(CTXD__LOG_WARN, "host",
                "broker: side exchange '%s' refused (%d %s): reconnecting to declare it", name, code, text);
      ctxd__outrow_free(current);
      return CTXD_EBROKER;
    }
  }
  if (ctxd__broker_publish_reopen(&s->broker, err, sizeof err) != 0) {
    ctxd__log(CTXD__LOG_WARN, "host", "broker: reopening the publish channel failed: %s", err);
    ctxd__outrow_free(current); /* it stays in the outbox; the pending ones go with the connection */
    return CTXD_EBROKER;
  }
  /* not poisoned: whatever the broker said about it, it is declared again before use */
  if (named) ctxd__exchanges_forget_one(&s->exchanges, name);
  ctxd__confirms_t pending = s->confirms; /* the new channel numbers its publishes from 1 */
  s->confirms = (ctxd__confirms_t){0};
  int any = 0;
  for (size_t i = 0; named && !any && i < pending.n; i++) {
    const ctxd__pending_t *p = &pending.v[pending.head + i];
    any = p->row != NULL ? strcmp(p->row->exchange, name) == 0 : copy_goes_to(p->copy_of, name);
  }
  any = any || (named && current != NULL && strcmp(current->exchange, name) == 0);
  size_t resent = 0, refused = 0, requeued = 0;
  for (size_t i = 0; i < pending.n; i++) {
    ctxd__pending_t *p = &pending.v[pending.head + i];
    int at_fault =
        any ? (p->row != NULL ? strcmp(p->row->exchange, name) == 0 : copy_goes_to(p->copy_of, name))
            : i == 0 && current == NULL;
    if (p->row != NULL) {
      /* an exchange of ours that went missing is declared again; any other refusal stands */
      if (at_fault && (p->row->no_declare || code != 404 || !any)) {
        refuse(s, p->row, code, text);
        refused++;
      } else {
        ctxd__outrows_push(again, p->row);
        resent++;
      }
      continue;
    }
    /* a copy cannot be sent again: its body was released once it was sent (the bytes held
     * bound the host's memory). The original goes back to its queue and runs again */
    ctxd__delivery_t *d = p->copy_of;
    ctxd__ledger_mark(&d->ep->ledger, d->tag, CTXD__TAG_REQUEUE);
    requeued++;
    ctxd__delivery_free(d);
  }
  ctxd__confirms_free(&pending);
  if (current != NULL && (!any || strcmp(current->exchange, name) == 0)) {
    refuse(s, current, code, text);
    refused++;
  } else if (current != NULL) {
    ctxd__outrows_push(again, current);
  }
  ctxd__log(CTXD__LOG_WARN, "host",
            "broker: the publish channel was closed (%d %s); reopened, %zu pending rows sent again, %zu set "
            "aside, %zu failed deliveries back to their queue",
            code, text, resent, refused, requeued);
  return 0;
}

int ctxd__session_publish_closed(ctxd__session_t *s, int code, const char *text, ctxd__outrows_t *again) {
  return recover(s, code, text, NULL, again);
}

int ctxd__session_publish_rows(ctxd__session_t *s, ctxd__outrows_t *rows) {
  ctxd__outrow_t *row;
  while ((row = ctxd__outrows_shift(rows)) != NULL) {
    /* blocked: the rows wait in the outbox, and the broker goes on reading acks */
    if (s->broker.conn == NULL || s->blocked) {
      ctxd__outrow_free(row);
      continue;
    }
    if (!row->no_declare && ctxd__exchanges_ensure(&s->exchanges, &s->broker, row->exchange) != 0) {
      if (!s->broker.publish_closed) { /* the sweep tries it again */
        ctxd__outrow_free(row);
        continue;
      }
      /* what was pending goes first, then this row, then the rest */
      ctxd__outrows_t again = {0};
      int rc = recover(s, s->broker.close_code, s->broker.close_text, row, &again);
      ctxd__outrows_splice(&again, rows);
      *rows = again;
      if (rc != 0) {
        ctxd__outrows_free(rows);
        return CTXD_EBROKER;
      }
      continue;
    }
    if (publish_row(s, row) != 0) {
      ctxd__outrow_free(row);
      ctxd__outrows_free(rows);
      return CTXD_EBROKER;
    }
    ctxd__fault_point("after-publish");
  }
  return 0;
}

/* Applies one chunk of the entries a confirm settles; returns how many there were.
 * archived NULL: the connection is gone, the entries are only freed. */
static size_t settle_chunk(ctxd__session_t *s, uint64_t tag, int multiple, int ok,
                           ctxd__outrows_t *archived) {
  ctxd__pending_t done[SETTLE_CHUNK];
  size_t k = ctxd__confirms_settle(&s->confirms, tag, multiple, done, SETTLE_CHUNK);
  for (size_t i = 0; i < k; i++) {
    ctxd__delivery_t *d = done[i].copy_of;
    if (d != NULL && archived != NULL)
      /* a copy the broker refused must not cost the original: deliver it again */
      ctxd__ledger_mark(&d->ep->ledger, d->tag, ok ? CTXD__TAG_ACK : CTXD__TAG_REQUEUE);
    ctxd__delivery_free(d);
    /* a nacked row keeps its outbox row; the sweep sends it again */
    if (done[i].row != NULL && ok && archived != NULL)
      ctxd__outrows_push(archived, done[i].row);
    else
      ctxd__outrow_free(done[i].row);
  }
  return k;
}

void ctxd__session_confirmed(ctxd__session_t *s, uint64_t tag, int multiple, int ok,
                             ctxd__outrows_t *archived) {
  while (settle_chunk(s, tag, multiple, ok, archived) == SETTLE_CHUNK) continue;
}

/* basic.return: no queue is bound to the row's exchange. The row is still archived, but
 * marked, and said: silence would be a lost message. A command or a reply that nobody can
 * receive is a warning each time; an event nobody subscribes to yet is normal in
 * publish/subscribe, so it is said once per exchange and connection. */
void ctxd__session_returned(ctxd__session_t *s, const amqp_basic_return_t *ret, const amqp_message_t *msg) {
  amqp_bytes_t id =
      (msg->properties._flags & AMQP_BASIC_MESSAGE_ID_FLAG) ? msg->properties.message_id : amqp_empty_bytes;
  /* the broker's text, like every text it sends, is logged redacted */
  char raw[256], why[256];
  snprintf(raw, sizeof raw, "%.*s", (int)ret->reply_text.len, (char *)ret->reply_text.bytes);
  ctxd__redact(raw, why, sizeof why);
  ctxd__outrow_t *row = ctxd__confirms_find_row(&s->confirms, id.bytes, id.len);
  if (row == NULL) { /* a copy to a side queue someone unbound: its original is gone */
    ctxd__log(CTXD__LOG_ERROR, "host", "a copy of message %.*s to '%.*s' was unroutable (%s)", (int)id.len,
              (char *)id.bytes, (int)ret->exchange.len, (char *)ret->exchange.bytes, why);
    return;
  }
  row->unroutable = 1;
  if (row->event && !ctxd__exchanges_note_unroutable(&s->exchanges, row->exchange)) return;
  ctxd__logf(row->event ? CTXD__LOG_INFO : CTXD__LOG_WARN, "host",
             &(ctxd__log_fields_t){.message_id = row->message_id},
             row->event ? "outbox: no subscriber for events on '%s' yet (%s); they are archived as unroutable"
                        : "outbox: message to exchange '%s' was unroutable (%s): no queue is bound to it",
             row->exchange, why);
}

char *ctxd__session_pending_rows(const ctxd__session_t *s) {
  char *buf = s->confirms.n > 0 ? malloc(s->confirms.n * 21 + 3) : NULL;
  if (buf == NULL) return NULL;
  size_t len = 0;
  buf[len++] = '{';
  for (size_t i = 0; i < s->confirms.n; i++) {
    const ctxd__outrow_t *row = s->confirms.v[s->confirms.head + i].row;
    if (row != NULL) len += (size_t)sprintf(buf + len, "%s%lld", len > 1 ? "," : "", (long long)row->id);
  }
  buf[len++] = '}';
  buf[len] = '\0';
  return buf;
}

void ctxd__session_drop(ctxd__session_t *s) {
  ctxd__session_confirmed(s, UINT64_MAX, 1, 0, NULL);
  ctxd__exchanges_forget(&s->exchanges);
  s->blocked = 0;
  s->gen++;
}
