/* The workers: threads that take an endpoint's batches and run each exactly once in
 * effect (decode, inbox, handlers, commit), then hand it back through the endpoint's
 * mailbox. Everything here but starting and stopping them runs on a worker thread. */
#ifndef CTXD_RUNTIME_DISPATCH_H
#define CTXD_RUNTIME_DISPATCH_H

#include <libpq-fe.h>

#include <ctxd/ctxd.h>

#include "endpoint.h"
#include "envelope.h"
#include "log.h"
#include "outrow.h"
#include "watch.h"

struct ctxd_msg_s {
  ctxd__envelope_t env;
  const ctxd__handler_t *handler;
  ctxd__delivery_t *delivery;
  json_t *message; /* what the handler sees: the envelope's message, or its upcast to the
                      version the handler asked for; a reference of its own */
  char *body;      /* lazily serialised message object, when there is no message_text; new */
  size_t body_len;
  int fresh;            /* its inbox row was inserted in this transaction */
  int ran;              /* its handler was called, in any attempt */
  int called;           /* its handler was called in the current attempt's fast path */
  int64_t handler_us;   /* time in its handler, every attempt */
  ctxd__outrows_t rows; /* outbox rows its handler wrote in the current attempt */
  int64_t scheduled_ms; /* the earliest due time (Unix ms) it scheduled in that attempt; 0: none */
};

struct ctxd_tx_s {
  PGconn *conn;
  struct ctxd_msg_s *msg;   /* the message it acts for: the one handled, or a batch's focus */
  struct ctxd_msg_s **call; /* the messages of the handler call under way (tx_focus) */
  size_t ncall, focus;      /* how many; the index of msg among them */
  int failed;               /* a statement failed: the transaction is aborted */
  int fail_code;            /* its CTXD_E* code */
  char error[512];
  char fault_type[128];
  char fault_message[512];
  int64_t sweep_grace_ms;                    /* lease of the outbox rows it writes */
  const struct ctxd__contracts_s *contracts; /* to validate what it publishes */
  /* an executor's transaction, which handles no message (msg NULL): */
  ctxd__outrows_t *rows;    /* where the rows it writes go */
  const char *address_base; /* the base of the addresses it writes ("rabbitmq://host/") */
};

/* The log fields of message m: endpoint, ids, traceparent; borrowed from m. */
ctxd__log_fields_t ctxd__msg_log_fields(const struct ctxd_msg_s *m);

/* Runs batch b on the worker connection *conn, reconnecting as needed; sets the outcome
 * of every delivery. Each handler call is recorded in watch (the worker's) while it runs.
 * A delivery the broker marks redelivered runs alone, after its attempt is counted in
 * ctxd.attempts; past the endpoint's max_attempts it goes to _error as ctxd.PoisonMessage
 * without running. Gives up (CTXD__OUTCOME_ABANDON) only when the endpoint is stopping
 * while the database is unreachable. */
void ctxd__batch_run(ctxd__batch_t *b, PGconn **conn, ctxd__watch_t *watch);

/* Starts ep's `workers` threads (loop thread). 0, or CTXD_ENOMEM with the threads that did
 * start still running (stop them with ctxd__workers_stop). */
int ctxd__workers_start(ctxd__endpoint_t *ep);

/* Tells ep's workers to finish the queued batches and exit, and joins them (loop
 * thread). */
void ctxd__workers_stop(ctxd__endpoint_t *ep);

#endif
