#include "forward.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "address.h"
#include "amqptable.h"
#include "envelope.h"
#include "hostinfo.h"
#include "topology.h"
#include "uuid.h"

/* Headers this adds at most (see ctxd__forward_build). */
#define NEW_HEADERS 24

static void add_text(amqp_table_t *t, const char *key, const char *value) {
  ctxd__amqptable_set_text(&t->entries[t->num_entries++], key, value);
}

/* Counts are integers on the wire, as MassTransit writes them (a .NET int). */
static void add_int(amqp_table_t *t, const char *key, int value) {
  ctxd__amqptable_set_i32(&t->entries[t->num_entries++], key, value);
}

/* SendContextExtensions.SetHostHeaders, in its order; the process id as text, as the
 * SendHeaders overload a move uses writes it. */
static void add_host(amqp_table_t *t) {
  const ctxd__host_info_t *h = ctxd__host_info();
  add_text(t, "MT-Host-MachineName", h->machine_name);
  add_text(t, "MT-Host-ProcessName", h->process_name);
  add_text(t, "MT-Host-ProcessId", h->process_id);
  add_text(t, "MT-Host-Assembly", h->assembly);
  add_text(t, "MT-Host-AssemblyVersion", h->assembly_version);
  add_text(t, "MT-Host-MassTransitVersion", h->masstransit_version);
  add_text(t, "MT-Host-FrameworkVersion", h->framework_version);
  add_text(t, "MT-Host-OperatingSystemVersion", h->os_version);
}

void ctxd__forward_timestamp(char out[40], const struct timespec *t) {
  struct tm tm;
  gmtime_r(&t->tv_sec, &tm);
  size_t n = strftime(out, 40, "%Y-%m-%dT%H:%M:%S", &tm);
  /* .NET's ticks are 100 ns: "O" writes seven digits */
  snprintf(out + n, 40 - n, ".%07ldZ", t->tv_nsec / 100);
}

void ctxd__forward_stack_trace(char *buf, size_t len, const ctxd__delivery_t *d) {
  /* no stack to speak of: where the failure was decided, which a .NET reader expects there */
  if (d->fault_plugin != NULL)
    snprintf(buf, len, "   at plugin %s, handler of %s, endpoint %s", d->fault_plugin, d->fault_message_type,
             d->ep->name);
  else
    snprintf(buf, len, "   at ctxd host, endpoint %s, before any handler", d->ep->name);
}

int ctxd__forward_build(ctxd__forward_t *f, const ctxd__delivery_t *d, const struct timespec *now) {
  const ctxd__endpoint_t *ep = d->ep;
  int delayed = d->outcome == CTXD__OUTCOME_DELAY, skipped = d->outcome == CTXD__OUTCOME_SKIPPED;
  ctxd__side_t side = delayed ? CTXD__SIDE_DELAY : skipped ? CTXD__SIDE_SKIPPED : CTXD__SIDE_ERROR;
  int64_t delay_ms = delayed ? ep->redelivery_ms[d->redeliveries] : 0;
  if (ctxd__topology_side(f->exchange, sizeof f->exchange, ep->name, side, delay_ms) != 0 ||
      ctxd__address_build(ep->env->cfg->broker_urls[0], ep->name, f->address, sizeof f->address) != 0)
    return CTXD_ETOOBIG;
  ctxd__forward_timestamp(f->when, now);
  ctxd__forward_stack_trace(f->stack, sizeof f->stack, d);

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
    /* RabbitMqMoveTransport: the host headers first, then the reason */
    add_host(&t);
    add_text(&t, "MT-Reason", skipped ? "dead-letter" : "fault");
  }
  if (!delayed && !skipped) {
    /* SetExceptionHeaders, in its order */
    add_text(&t, "MT-Fault-ExceptionType", d->fault_type != NULL ? d->fault_type : "ctxd.Fault");
    add_text(&t, "MT-Fault-InputAddress", f->address);
    add_text(&t, "MT-Fault-Message", d->reason != NULL ? d->reason : "");
    add_text(&t, "MT-Fault-Timestamp", f->when);
    add_text(&t, "MT-Fault-StackTrace", f->stack);
    /* the handler it failed in: MassTransit names the consumer class, ctxd its plugin */
    if (d->fault_plugin != NULL) add_text(&t, "MT-Fault-ConsumerType", d->fault_plugin);
    if (d->fault_message_type != NULL) add_text(&t, "MT-Fault-MessageType", d->fault_message_type);
    /* MassTransit writes the retry count only when there were retries */
    if (d->retries > 0) add_int(&t, "MT-Fault-RetryCount", d->retries);
    add_int(&t, "MT-Fault-RedeliveryCount", redeliveries);
    if (d->attempts > 0) add_int(&t, CTXD__ATTEMPTS_HEADER, d->attempts - 1);
    /* this copy's own id: ingestion stores each copy once (ingest.h), and a message that
     * fails again makes a new copy, a repeated failure */
    ctxd__uuid_new(f->fault_id);
    add_text(&t, CTXD__FAULT_ID_HEADER, f->fault_id);
    /* RabbitMqErrorTransport clears it: a copy kept for an operator must not expire */
    f->props._flags &= ~AMQP_BASIC_EXPIRATION_FLAG;
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
