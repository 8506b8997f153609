/* Trace context carried from a consumed message to what its handling sends, as MassTransit
 * carries it (MT-Activity-Id, a W3C id) and as W3C trace context does (traceparent). */
#ifndef CTXD_RUNTIME_TRACE_H
#define CTXD_RUNTIME_TRACE_H

#include <jansson.h>

#include "envelope.h"

/* The outgoing message with headers continues the incoming trace of `in` (may be NULL) as
 * a child span, unless headers already hold their own: MT-Activity-Id (parent from the
 * incoming MT-Activity-Id, else its traceparent; a new trace when it has neither) and
 * traceparent (when the incoming message had one). */
void ctxd__trace_continue(json_t *headers, const ctxd__envelope_t *in);

#endif
