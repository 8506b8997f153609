#include "faultevent.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "address.h"
#include "endpoint.h"
#include "envelope_out.h"
#include "forward.h"
#include "hostinfo.h"
#include "topology.h"
#include "trace.h"

int ctxd__fault_event_urn(char *buf, size_t len, const char *type) {
  int n = snprintf(buf, len, CTXD__URN_PREFIX "MassTransit:Fault[[%s]]", type);
  return n >= 0 && (size_t)n < len ? 0 : CTXD_ETOOBIG;
}

/* FaultEvent<T>'s members in their order, camelCase, nulls written (System.Text.Json as
 * MassTransit configures it). A new reference, or NULL. */
static json_t *fault_body(const ctxd__fault_event_t *f) {
  char when[40];
  ctxd__forward_timestamp(when, f->now);
  json_t *types = json_array();
  for (size_t i = 0; types != NULL && i < f->in->nmessage_types; i++)
    if (json_array_append_new(types, json_sprintf(CTXD__URN_PREFIX "%s", f->in->message_types[i])) != 0) {
      json_decref(types);
      types = NULL;
    }
  return json_pack("{s:s, s:s, s:s, s:[{s:s, s:n, s:s, s:s, s:s, s:n}], s:o, s:o, s:O}", "faultId",
                   f->fault_id, "faultedMessageId", f->in->message_id, "timestamp", when, "exceptions",
                   "exceptionType", f->exception_type, "innerException", "stackTrace", f->stack_trace,
                   "message", f->reason, "source", f->source, "data", "host", ctxd__host_info_json(),
                   "faultMessageTypes", types, "message", f->in->message);
}

/* FaultPipe: the consumed message's headers but MassTransit's own, and the counts. A new
 * reference, or NULL. */
static json_t *fault_headers(const ctxd__fault_event_t *f) {
  json_t *h = json_object();
  const char *key;
  json_t *value;
  json_object_foreach(f->in->headers, key, value) {
    if (strncmp(key, "MT-", 3) != 0 && json_object_set(h, key, value) != 0) break;
  }
  if (f->retries > 0) json_object_set_new(h, "MT-Fault-RetryCount", json_integer(f->retries));
  if (ctxd__json_get_ci(f->in->headers, CTXD__REDELIVERY_HEADER) != NULL)
    json_object_set_new(h, "MT-Fault-RedeliveryCount", json_integer(f->redeliveries));
  /* the fault continues the failed message's trace as a child span, as a send does */
  json_object_del(h, "traceparent");
  ctxd__trace_continue(h, f->in);
  return h;
}

char *ctxd__fault_event_encode(const ctxd__fault_event_t *f, char *exchange, size_t len, int *event,
                               char **amqp_headers) {
  *amqp_headers = NULL;
  const ctxd__envelope_t *in = f->in;
  char source[512], publish[512], fault_urn[512];
  const char *to = in->fault_address != NULL ? in->fault_address : in->response_address;
  *event = to == NULL;
  if (ctxd__fault_event_urn(fault_urn, sizeof fault_urn, f->message_type) != 0 ||
      ctxd__address_build(f->broker_url, f->endpoint, source, sizeof source) != 0)
    return NULL;
  if (to != NULL ? ctxd__address_exchange(to, exchange, len) != 0
                 : ctxd__topology_fault_exchange(exchange, len, f->message_type) != 0 ||
                       ctxd__address_build(f->broker_url, exchange, publish, sizeof publish) != 0)
    return NULL;
  const char *const urns[] = {fault_urn, CTXD__URN_PREFIX CTXD__FAULT_EXCHANGE, NULL};
  json_t *body = fault_body(f), *headers = fault_headers(f);
  ctxd__envelope_out_t out = {
      .message_id = f->fault_id,
      .message_type = fault_urn,
      .urns = urns,
      .request_id = in->request_id,
      .correlation_id = in->correlation_id,
      .conversation_id = in->conversation_id,
      /* TransferConsumeContextHeaders: the consumed correlation id, else its request id */
      .initiator_id = in->correlation_id != NULL ? in->correlation_id : in->request_id,
      .source_address = source,
      .destination_address = to != NULL ? to : publish,
      .message = body,
      .headers = headers,
  };
  char *text = body != NULL && headers != NULL ? ctxd__envelope_encode(&out) : NULL;
  /* the send headers go to the AMQP headers too, as RabbitMqSendTransportContext copies them */
  if (text != NULL && json_object_size(headers) > 0 &&
      (*amqp_headers = json_dumps(headers, JSON_COMPACT)) == NULL) {
    free(text);
    text = NULL;
  }
  json_decref(body);
  json_decref(headers);
  return text;
}
