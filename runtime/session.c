#include "session.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "envelope.h"
#include "fault.h"
#include "forward.h"
#include "log.h"

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

/* Publishes the copy d's outcome asks for; d is acknowledged once the broker confirmed it,
 * and until then the confirms hold it. */
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

int ctxd__session_publish_rows(ctxd__session_t *s, ctxd__outrows_t *rows) {
  ctxd__outrow_t *row;
  while ((row = ctxd__outrows_shift(rows)) != NULL) {
    if (s->broker.conn == NULL || ctxd__exchanges_ensure(&s->exchanges, &s->broker, row->exchange) != 0) {
      ctxd__outrow_free(row);
      continue;
    }
    amqp_basic_properties_t props = {0};
    props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_MESSAGE_ID_FLAG;
    props.content_type = amqp_cstring_bytes(CTXD__ENVELOPE_CONTENT_TYPE);
    props.delivery_mode = AMQP_DELIVERY_PERSISTENT;
    props.message_id = amqp_cstring_bytes(row->message_id);
    uint64_t seq;
    if (ctxd__broker_publish(&s->broker, row->exchange, "", 1, &props, amqp_cstring_bytes(row->body), &seq) !=
            0 ||
        ctxd__confirms_add(&s->confirms, seq, NULL, row) != 0) {
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
  ctxd__outrow_t *row = ctxd__confirms_find_row(&s->confirms, id.bytes, id.len);
  if (row == NULL) { /* a copy to a side queue someone unbound: its original is gone */
    ctxd__log(CTXD__LOG_ERROR, "host", "a copy of message %.*s to '%.*s' was unroutable (%.*s)", (int)id.len,
              (char *)id.bytes, (int)ret->exchange.len, (char *)ret->exchange.bytes, (int)ret->reply_text.len,
              (char *)ret->reply_text.bytes);
    return;
  }
  row->unroutable = 1;
  if (row->event && !ctxd__exchanges_note_unroutable(&s->exchanges, row->exchange)) return;
  ctxd__logf(row->event ? CTXD__LOG_INFO : CTXD__LOG_WARN, "host",
             &(ctxd__log_fields_t){.message_id = row->message_id},
             row->event
                 ? "outbox: no subscriber for events on '%s' yet (%.*s); they are archived as unroutable"
                 : "outbox: message to exchange '%s' was unroutable (%.*s): no queue is bound to it",
             row->exchange, (int)ret->reply_text.len, (char *)ret->reply_text.bytes);
}

void ctxd__session_drop(ctxd__session_t *s) {
  ctxd__session_confirmed(s, UINT64_MAX, 1, 0, NULL);
  ctxd__exchanges_forget(&s->exchanges);
  s->gen++;
}
