/* Ingestion: the copies in the endpoints' _error queues become rows of
 * ctxd.failed_messages (failstore.h), each copy once. One ingest endpoint per host
 * (CTXD__INGEST_ENDPOINT, endpoint.h) consumes every endpoint's <E>_error queue (or
 * <E>_error_store with errors.keep_in_queue) on one channel with one worker; that worker
 * runs its batches here, in one transaction each: the copy's fault id goes into
 * ctxd.inbox (endpoint "<E>_error"), and a copy not seen before is upserted into
 * ctxd.failed_messages (a message that failed before counts one more failure) with an
 * action row. Worker thread, but for the pure helpers. */
#ifndef CTXD_RUNTIME_INGEST_H
#define CTXD_RUNTIME_INGEST_H

#include <stddef.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "endpoint.h"

/* Writes the endpoint a failed copy came from into out: queue without its "_error" or
 * "_error_store" suffix. 0, or CTXD_EINVAL (no such suffix) / CTXD_ETOOBIG. Pure. */
int ctxd__ingest_endpoint_of(const char *queue, char *out, size_t len);

/* Writes the copy's fault id into out[37]: its ctxd-Fault-Id header (headers: the copy's
 * AMQP headers as JSON) when it is a UUID, else one derived from "error:<endpoint>:
 * <message id>:<MT-Fault-Timestamp>:<body length>" (a copy of an older host, of a
 * MassTransit service, or one moved by hand), the same for the same copy. Pure. */
void ctxd__ingest_fault_id(const json_t *headers, const char *endpoint, const char *message_id,
                           size_t body_len, char out[37]);

/* Writes who this host is in the action log into buf: "host <machine>/<pid>". */
void ctxd__ingest_actor(char *buf, size_t len);

/* Stores the copies of batch b (of the ingest endpoint; each delivery's queue set) on c in
 * one transaction; *fresh counts the copies not stored before. 0 once committed (every
 * delivery may then be acknowledged), or the failure's code with its text in err: nothing
 * was stored, run it again. */
int ctxd__ingest_run(PGconn *c, const ctxd__batch_t *b, size_t *fresh, char *err, size_t errlen);

#endif
