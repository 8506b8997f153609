/* Receive endpoints: a queue, the handlers registered for it, the batches in flight and
 * the worker threads (each with its own PostgreSQL connection) that run them.
 *
 * Ownership across threads: the loop thread creates deliveries and batches and hands a
 * batch to the endpoint's queue; one worker owns it while it runs; it comes back through
 * the host's completion queue, and the loop thread settles and frees it. */
#ifndef CTXD_RUNTIME_ENDPOINT_H
#define CTXD_RUNTIME_ENDPOINT_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <amqp.h>
#include <libpq-fe.h>

#include <ctxd/ctxd.h>

#include "config.h"
#include "envelope.h"
#include "metrics.h"
#include "relay.h"

/* Header counting delayed redeliveries, as MassTransit names it. */
#define CTXD__REDELIVERY_HEADER "MT-Redelivery-Count"

typedef enum {
  CTXD__OUT_NONE = 0, /* not finished yet */
  CTXD__OUT_ACK,      /* handled, or a duplicate: acknowledge */
  CTXD__OUT_REQUEUE,  /* not handled for a passing reason (out of memory): back to the queue */
  CTXD__OUT_REDELIVER, /* transient failure after the immediate retries: to a delay queue
                          (or <queue>_error once the redeliveries are used up) */
  CTXD__OUT_ERROR,    /* to <queue>_error, then acknowledge */
  CTXD__OUT_SKIPPED,  /* no handler for its type: to <queue>_skipped, then acknowledge */
  CTXD__OUT_ABANDON   /* the host is stopping before it could run: left unacknowledged */
} ctxd__outcome_t;

typedef struct ctxd__endpoint_s ctxd__endpoint_t;

typedef struct ctxd__delivery_s {
  ctxd__endpoint_t *ep;
  uint64_t tag;
  amqp_message_t msg; /* body and properties; owned */
  ctxd__outcome_t outcome;
  char *fault_type;       /* new, e.g. "ctxd.DecodeError", for ERROR */
  char *reason;           /* new, for ERROR, SKIPPED and REDELIVER */
  int redeliveries;       /* delayed redeliveries it had (MT-Redelivery-Count) */
  int retries;            /* immediate retries it had in this delivery */
  int completed;          /* loop thread: its batch came back (the outcome is final) */
  int awaiting_confirm;   /* loop thread: forwarded copy not yet confirmed */
} ctxd__delivery_t;

typedef struct ctxd__batch_s {
  struct ctxd__batch_s *next;
  ctxd__endpoint_t *ep;
  uint64_t gen; /* broker connection generation its deliveries came on */
  ctxd__outrow_t *rows; /* outbox rows its transaction committed, to publish */
  size_t n;
  size_t cap; /* slots in items */
  int64_t queued_us; /* when it entered the endpoint's queue (ctxd__clock_us) */
  ctxd__delivery_t *items[];
} ctxd__batch_t;

typedef struct {
  char *type; /* "Namespace:Type" it receives */
  char *upcast_to; /* NULL, or the newer version the handler asked for: messages of
                      `type` are upcast to it first (owned) */
  ctxd_handler_cb fn;
  void *data;
  ctxd_plugin_t *plugin;
} ctxd__handler_t;

typedef struct {
  uint64_t handled, duplicates, retried, redelivered, requeued, errored, skipped;
  ctxd__histogram_t handler_seconds, batch_seconds, batch_size;
  int db_ok; /* the last attempt to reach the database succeeded */
} ctxd__endpoint_stats_t;

struct ctxd__endpoint_s {
  char *name;
  ctxd__endpoint_settings_t settings; /* the configuration's, with the plugin's suggestions */
  unsigned own; /* CTXD__EP_* settings the configuration fixed */
  int64_t redelivery_ms[CTXD__MAX_REDELIVERIES]; /* parsed from settings->redelivery_ms */
  int nredelivery;
  ctxd__handler_t *handlers;
  size_t nhandlers;
  int channel;
  int consuming;
  int draining;    /* loop thread: its plugin is being replaced; not consuming */
  size_t inflight; /* loop thread: deliveries received, not yet settled or dropped */
  uint64_t received; /* loop thread */

  /* loop thread: deliveries by tag, a ring of `prefetch` slots from ledger_base */
  ctxd__delivery_t **ledger;
  uint64_t ledger_base; /* lowest unsettled tag */
  uint64_t ledger_top;  /* highest tag received */
  ctxd__batch_t *filling;

  /* shared with the workers */
  pthread_mutex_t mu;
  pthread_cond_t cv;       /* a batch was queued, or the endpoint stops */
  pthread_cond_t pause_cv; /* the endpoint stops: ends a worker's backoff */
  ctxd__batch_t *queue_head, *queue_tail;
  int partial_running; /* workers running a batch that was not full when taken */
  int stopping;
  pthread_t *threads;
  size_t nthreads;
  struct ctxd__host_s *host;
  ctxd__endpoint_stats_t stats; /* under mu */
};

/* The handler for the first of types (most specific first) this endpoint consumes, or
 * NULL; borrowed while the endpoint lives. */
const ctxd__handler_t *ctxd__endpoint_find(const ctxd__endpoint_t *ep, const char *const *types,
                                           size_t ntypes);

/* 1 once ctxd__endpoint_stop_workers was called (any thread). */
int ctxd__endpoint_stopping(ctxd__endpoint_t *ep);

/* Waits up to ms milliseconds or until the endpoint stops: the workers' backoff. */
void ctxd__endpoint_pause(ctxd__endpoint_t *ep, int ms);

/* Queues a batch for the workers (loop thread). A batch still waiting for a worker
 * takes in as many of b's deliveries as it has room for (b is freed when it gives them
 * all): under load, batches grow to full size while they wait instead of queueing up as
 * many small ones, each with its own transaction. */
void ctxd__endpoint_submit(ctxd__endpoint_t *ep, ctxd__batch_t *b);

/* How long a batch that is not full waits for a worker while another such batch runs. */
#define CTXD__PARTIAL_WAIT_US 2000

/* Takes the batch at the head of the queue for a worker (ep->mu held; waits on ep->cv).
 * A full batch goes at once; one that is not full goes at once unless another such batch
 * is running, else when it fills up or after CTXD__PARTIAL_WAIT_US: under load batches
 * fill up while one runs (fewer, larger transactions), and a slow handler delays the next
 * messages by at most that much. *partial says which kind it took (1: end it with
 * ep->partial_running--). NULL (*partial 0) when the endpoint stops with nothing queued. */
ctxd__batch_t *ctxd__endpoint_take(ctxd__endpoint_t *ep, int *partial);

/* Starts the endpoint's workers. 0 or CTXD_ENOMEM. */
int ctxd__endpoint_start_workers(ctxd__endpoint_t *ep);

/* Tells the workers to finish the queued batches and exit, and joins them. */
void ctxd__endpoint_stop_workers(ctxd__endpoint_t *ep);

/* Frees a delivery and its message. */
void ctxd__delivery_free(ctxd__delivery_t *d);

#endif
