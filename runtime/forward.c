#include "forward.h"

#include <stdlib.h>
#include <string.h>

#include "amqptable.h"
#include "envelope.h"
#include "topology.h"

/* Headers this adds at most (see ctxd__forward_build). */
#define NEW_HEADERS 11

static void add_text(amqp_table_t *t, const char *key, const char *value) {
  ctxd__amqptable_set_text(&t->entries[t->num_entries++], key, value);
}

/* Counts are integers on the wire, as MassTransit writes them (a .NET int). */
static void add_int(amqp_table_t *t, const char *key, int value) {
  ctxd__amqptable_set_i32(&t->entries[t->num_entries++], key, value);
}

int ctxd__forward_build(ctxd__forward_t *f, const ctxd__delivery_t *d, time_t now) {
  const ctxd__endpoint_t *ep = d->ep;
  int delayed = d->outcome == CTXD__OUTCOME_DELAY, skipped = d->outcome == CTXD__OUTCOME_SKIPPED;
  ctxd__side_t side = delayed ? CTXD__SIDE_DELAY : skipped ? CTXD__SIDE_SKIPPED : CTXD__SIDE_ERROR;
  int64_t delay_ms = delayed ? ep->redelivery_ms[d->redeliveries] : 0;
  if (ctxd__topology_side(f->exchange, sizeof f->exchange, ep->name, side, delay_ms) != 0)
    return CTXD_ETOOBIG;
  struct tm tm;
  gmtime_r(&now, &tm);
  strftime(f->when, sizeof f->when, "%Y-%m-%dT%H:%M:%SZ", &tm);

  f->props = d->msg.properties;
  amqp_table_t orig = (f->props._flags & AMQP_BASIC_HEADERS_FLAG) ? f->props.headers : amqp_empty_table;
  f->entries = calloc((size_t)orig.num_entries + NEW_HEADERS, sizeof *f->entries);
  if (f->entries == NULL) return CTXD_ENOMEM;
  amqp_table_t t = {0, f->entries};
  /* what an earlier failure reported is replaced, the rest belongs to the message */
  for (int i = 0; i < orig.num_entries; i++)
    if (!ctxd__envelope_fault_header(orig.entries[i].key.bytes, orig.entries[i].key.len))
      t.entries[t.num_entries++] = orig.entries[i];
  int redeliveries = d->redeliveries + delayed;
  add_int(&t, CTXD__REDELIVERY_HEADER, redeliveries);
  if (!delayed) {
    add_text(&t, "MT-Reason", skipped ? "dead-letter" : "fault");
    if (!skipped) {
      add_text(&t, "MT-Fault-ExceptionType", d->fault_type != NULL ? d->fault_type : "ctxd.Fault");
      add_text(&t, "MT-Fault-Message", d->reason != NULL ? d->reason : "");
      add_text(&t, "MT-Fault-Timestamp", f->when);
      /* MassTransit writes the retry count only when there were retries */
      if (d->retries > 0) add_int(&t, "MT-Fault-RetryCount", d->retries);
      add_int(&t, "MT-Fault-RedeliveryCount", redeliveries);
      /* the handler it failed in: MassTransit names the consumer class, ctxd its plugin */
      if (d->fault_plugin != NULL) add_text(&t, "MT-Fault-ConsumerType", d->fault_plugin);
      if (d->fault_message_type != NULL) add_text(&t, "MT-Fault-MessageType", d->fault_message_type);
      if (d->attempts > 0) add_int(&t, CTXD__ATTEMPTS_HEADER, d->attempts - 1);
    }
    add_text(&t, "MT-Host-ProcessName", "ctxd");
  }
  f->props.headers = t;
  f->props._flags |= AMQP_BASIC_HEADERS_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG;
  f->props.delivery_mode = AMQP_DELIVERY_PERSISTENT;
  return 0;
}

void ctxd__forward_free(ctxd__forward_t *f) {
  free(f->entries);
  f->entries = NULL;
}
