/* Receive endpoints: a queue, the handlers registered for it, the deliveries received on
 * its channel and the batches in flight to its workers.
 *
 * An endpoint gets what its workers need when it is created (the configuration, the
 * contracts, the mailbox that takes finished batches back to the loop), so nothing that
 * runs on a worker reaches back into the host.
 *
 * Threads: the loop thread creates endpoints, registers handlers, receives deliveries and
 * settles them; it hands a batch to the endpoint's queue (under mu), one worker owns it
 * while it runs, and it comes back through the mailbox, where the loop thread settles and
 * frees it. Handlers change only while no worker runs (start-up, a plugin replacement). */
#ifndef CTXD_RUNTIME_ENDPOINT_H
#define CTXD_RUNTIME_ENDPOINT_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <amqp.h>

#include <ctxd/ctxd.h>

#include "config.h"
#include "contract.h"
#include "intake.h"
#include "ledger.h"
#include "mailbox.h"
#include "metrics.h"
#include "observed.h"
#include "outrow.h"
#include "watch.h"

/* Header counting delayed redeliveries, as MassTransit names it. */
#define CTXD__REDELIVERY_HEADER "MT-Redelivery-Count"

/* Header of an _error copy that ran as a suspect: the attempts that ended the host. */
#define CTXD__ATTEMPTS_HEADER "ctxd-Fault-Attempts"

/* Header of an _error copy: a new UUID per copy, what ingestion keeps it once by. */
#define CTXD__FAULT_ID_HEADER "ctxd-Fault-Id"

/* The host's ingest endpoint: it consumes every endpoint's _error queue (ingest.h). */
#define CTXD__INGEST_ENDPOINT "ctxd.errors"

/* What becomes of a delivery; decided once, by the worker. */
typedef enum {
  CTXD__OUTCOME_NONE = 0, /* not finished yet */
  CTXD__OUTCOME_ACK,      /* handled, or a duplicate: acknowledge */
  CTXD__OUTCOME_REQUEUE,  /* not handled for a passing reason (out of memory): back to the queue */
  CTXD__OUTCOME_DELAY,    /* a transient failure: to the delay queue of its next redelivery */
  CTXD__OUTCOME_ERROR,    /* to <queue>_error, then acknowledge */
  CTXD__OUTCOME_SKIPPED,  /* no handler for its type: to <queue>_skipped, then acknowledge */
  CTXD__OUTCOME_ABANDON   /* the host is stopping before it could run: left unacknowledged */
} ctxd__outcome_t;

typedef struct ctxd__endpoint_s ctxd__endpoint_t;

typedef struct ctxd__delivery_s {
  ctxd__endpoint_t *ep;
  uint64_t tag;
  amqp_message_t msg; /* body and properties; owned; empty once released */
  char *routing_key;  /* it was published with; new, NULL when there was none */
  char *queue;        /* the ingest endpoint's: the queue it came from (its consumer tag); new */
  ctxd__outcome_t outcome;
  char *fault_type;         /* new, e.g. "ctxd.DecodeError", for ERROR */
  char *reason;             /* new, for ERROR, SKIPPED and DELAY */
  char *fault_plugin;       /* new: for ERROR and DELAY decided about a handler, its plugin ... */
  char *fault_message_type; /* ... and the message type it handles; else NULL */
  int redeliveries;         /* delayed redeliveries it had (MT-Redelivery-Count) */
  int retries;              /* immediate retries it had in this delivery */
  int redelivered;          /* the broker delivered it before: it may have ended a host (a suspect) */
  int attempts;             /* a suspect's deliveries that ran, this one included (ctxd.attempts) */
} ctxd__delivery_t;

typedef struct ctxd__batch_s {
  ctxd__mail_t mail;          /* how it goes back to the loop thread */
  struct ctxd__batch_s *next; /* in the endpoint's queue */
  ctxd__endpoint_t *ep;
  uint64_t gen;         /* broker connection generation its deliveries came on */
  ctxd__outrows_t rows; /* outbox rows its transactions committed, to publish */
  size_t n;
  size_t cap;        /* its size: full at cap (the endpoint's batch_size) */
  size_t room;       /* slots in items, cap or more: what it may grow to while it waits */
  int64_t queued_us; /* when it entered the endpoint's queue (ctxd__clock_us) */
  ctxd__delivery_t *items[];
} ctxd__batch_t;

typedef struct {
  char *type;                     /* "Namespace:Type" it receives */
  char *upcast_to;                /* NULL, or the newer version the handler asked for: messages of
                      `type` are upcast to it first (owned) */
  ctxd_handler_cb fn;             /* exactly one of fn and batch_fn is set */
  ctxd_batch_handler_cb batch_fn; /* ABI 1.3: takes a batch's messages of the type at once */
  void *data;
  ctxd_plugin_t *plugin;
} ctxd__handler_t;

typedef struct {
  uint64_t handled, duplicates, retried, redelivered, requeued, errored, skipped;
  uint64_t poisoned; /* suspects that reached max_attempts */
  uint64_t unstored; /* the ingest endpoint's: copies the store refused even reduced */
  uint64_t timeouts; /* handler calls found past handler_timeout_ms */
  ctxd__histogram_t handler_seconds, batch_seconds, batch_size;
  int db_ok; /* the last attempt to reach the database succeeded */
} ctxd__endpoint_stats_t;

/* What every endpoint of a host shares; given when it is created, borrowed for its life. */
typedef struct ctxd__endpoint_env_s {
  const ctxd__config_t *cfg;
  const ctxd__contracts_t *contracts;
  ctxd__mailbox_t *mailbox;    /* where workers hand finished batches back */
  ctxd__mail_cb batch_done;    /* finishes such a batch on the loop thread */
  ctxd__intake_t *intake;      /* counts the bodies received until released (loop thread) */
  pthread_mutex_t *suspect_mu; /* held while a suspect (a redelivered message) runs */
  const char *address_base;    /* "rabbitmq://host[:port]/[vhost/]": an exchange's address is
                                  this and its name (address.h); "" when unknown */
  ctxd__observed_t *observed;  /* what the plugins publish and send (the console's topology);
                                  NULL: not recorded */
  /* told (on a worker) when a committed batch scheduled a message, with the earliest due
   * time in Unix ms; NULL: nobody */
  void (*scheduled)(void *data, int64_t at_ms);
  void *scheduled_data;
  /* finishes (and frees with free()) the mail an executor thread posts when it leaves its
   * loop; NULL: none is posted */
  ctxd__mail_cb executor_exited;
} ctxd__endpoint_env_t;

struct ctxd__endpoint_s {
  char *name;
  int ingest; /* the ingest endpoint: no handlers, its batches are stored (ingest.h) */
  const ctxd__endpoint_env_t *env;
  ctxd__endpoint_settings_t settings;            /* the configuration's, with the plugin's suggestions */
  unsigned own;                                  /* CTXD__EP_* settings fixed so far */
  int64_t redelivery_ms[CTXD__MAX_REDELIVERIES]; /* parsed from settings.redelivery_ms */
  int nredelivery;
  ctxd__handler_t *handlers;
  size_t nhandlers;
  int channel;

  /* loop thread */
  int consuming;
  int draining;    /* its plugin is being replaced; not consuming */
  int cancelling;  /* basic.cancel sent, its cancel-ok not read yet */
  size_t inflight; /* deliveries received, not yet settled or dropped */
  /* its queues as the broker last told (passive queue.declare; the console): -1 unknown */
  int64_t queue_depth, consumers;
  int64_t inspected_at;                         /* loop time (ms) they were read (inspect.h) */
  size_t inspecting;                            /* declare-oks still to read for the round under way */
  uint64_t inspect_messages, inspect_consumers; /* summed over the round so far */
  uint64_t received;
  ctxd__ledger_t ledger;
  ctxd__batch_t *filling;

  /* shared with the workers */
  pthread_mutex_t mu;
  pthread_cond_t cv;       /* a batch was queued, or the endpoint stops */
  pthread_cond_t pause_cv; /* the endpoint stops: ends a worker's backoff */
  ctxd__batch_t *queue_head, *queue_tail;
  int partial_running; /* workers running a batch that was not full when taken */
  int stopping;
  pthread_t *threads;
  struct ctxd__worker_s *workers; /* one per thread */
  size_t nthreads;
  ctxd__endpoint_stats_t stats; /* under mu */
};

/* A worker thread's own state; the loop thread reads its watch. */
typedef struct ctxd__worker_s {
  ctxd__endpoint_t *ep;
  ctxd__watch_t watch; /* the handler call it runs now */
  int busy;            /* it runs a batch (under ep->mu) */
} ctxd__worker_t;

/* The endpoints of a host, in the order they were first named; endpoint i consumes on
 * channel first_channel + i. */
typedef struct ctxd__endpoints_s {
  ctxd__endpoint_t **v;
  size_t n;
  int first_channel;
  ctxd__endpoint_env_t env;
} ctxd__endpoints_t;

/* An empty set whose endpoints will get env and channels from first_channel on. */
void ctxd__endpoints_init(ctxd__endpoints_t *set, const ctxd__endpoint_env_t *env, int first_channel);

/* Frees every endpoint (their workers must be stopped) and the set's memory. */
void ctxd__endpoints_free(ctxd__endpoints_t *set);

/* The endpoint named name, or the one consuming on channel; NULL when there is none;
 * borrowed until ctxd__endpoints_free. */
ctxd__endpoint_t *ctxd__endpoints_find(const ctxd__endpoints_t *set, const char *name);
ctxd__endpoint_t *ctxd__endpoints_of_channel(const ctxd__endpoints_t *set, int channel);

/* Adds the ingest endpoint (CTXD__INGEST_ENDPOINT, one worker), which consumes the _error
 * queues of the endpoints before it. 0 or CTXD_ENOMEM. Loop thread, once every plugin
 * registered. */
int ctxd__endpoints_add_ingest(ctxd__endpoints_t *set);

/* The size of a ctxd_consumer_t built before ABI 1.3 (it ended with queue_type): the
 * least a registration has. */
#define CTXD__CONSUMER_SIZE_1_0 offsetof(ctxd_consumer_t, batch_handler)

/* Checks a registration (size, exactly one of handler and batch_handler, endpoint and
 * type names; a name beginning "ctxd." is the host's). 0 or CTXD_EINVAL. */
int ctxd__consumer_check(const ctxd_consumer_t *c);

/* Registers consumer c of plugin p: its endpoint is created on first use, takes the
 * settings c suggests that the configuration leaves open, and gets a handler for c's type
 * and one for each older version that upcasts to it. 0, CTXD_EINVAL, CTXD_EEXIST (the
 * endpoint has a handler of its own for that type) or CTXD_ENOMEM. Loop thread, while no
 * worker runs. */
int ctxd__endpoints_register(ctxd__endpoints_t *set, ctxd_plugin_t *p, const ctxd_consumer_t *c);

/* 1 when a handler of plugin p is registered on ep. */
int ctxd__endpoint_uses(const ctxd__endpoint_t *ep, const ctxd_plugin_t *p);

/* Replaces every handler of plugin old on ep by the consumers of `fresh` on ep (its
 * registrations staged[0..nstaged), for every endpoint). Its workers must be stopped.
 * 0, or the first registration's error (the rest are still made). */
int ctxd__endpoint_replace(ctxd__endpoint_t *ep, const ctxd_plugin_t *old, ctxd_plugin_t *fresh,
                           const ctxd_consumer_t *staged, size_t nstaged);

/* The handler for the first of types (most specific first) this endpoint consumes, or
 * NULL; borrowed while the endpoint lives. Types match ignoring ASCII case, as
 * MassTransit matches a consumer's URN. */
const ctxd__handler_t *ctxd__endpoint_find(const ctxd__endpoint_t *ep, const char *const *types,
                                           size_t ntypes);

/* Sizes the ledger once the settings are final (every plugin registered). 0 or
 * CTXD_ENOMEM. */
int ctxd__endpoint_open(ctxd__endpoint_t *ep);

/* Takes in delivery d (loop thread, d new, owned by the endpoint from now on): recorded
 * in the ledger, its body counted in the intake, added to the filling batch of connection generation gen, which goes to
 * the workers when full. 0, or CTXD_ESTATE (the broker broke the tag order) / CTXD_ENOMEM:
 * d is freed, and the caller drops the connection. */
int ctxd__endpoint_receive(ctxd__endpoint_t *ep, ctxd__delivery_t *d, uint64_t gen);

/* Hands the filling batch, if any, to the workers (the socket has nothing more now). */
void ctxd__endpoint_flush(ctxd__endpoint_t *ep);

/* Forgets every delivery of a lost connection (loop thread): the ledger, and the filling
 * batch, which is freed. Deliveries still with the workers come back stale. */
void ctxd__endpoint_forget(ctxd__endpoint_t *ep);

/* 1 once the endpoint's workers were told to stop (any thread). */
int ctxd__endpoint_stopping(ctxd__endpoint_t *ep);

/* Waits up to ms milliseconds or until the endpoint stops: the workers' backoff. */
void ctxd__endpoint_pause(ctxd__endpoint_t *ep, int ms);

/* Queues a batch for the workers (loop thread). A batch still waiting for a worker
 * takes in as many of b's deliveries as it has room for (b is freed when it gives them
 * all): under load, batches grow to full size while they wait instead of queueing up as
 * many small ones, each with its own transaction, and past it, up to
 * the endpoint's batch_growth times, while every worker is busy and deliveries keep coming. */
void ctxd__endpoint_submit(ctxd__endpoint_t *ep, ctxd__batch_t *b);

/* How long a batch that is not full waits for a worker while another such batch runs. */
#define CTXD__PARTIAL_WAIT_US 2000

/* Takes the batch at the head of the queue for a worker (ep->mu held; waits on ep->cv).
 * A full batch goes at once; one that is not full goes at once unless another such batch
 * is running, else when it fills up or after CTXD__PARTIAL_WAIT_US: under load batches
 * fill up while one runs (fewer, larger transactions), and a slow handler delays the next
 * messages by at most that much. *partial says which kind it took (1: end it with
 * ep->partial_running--). NULL (*partial 0) when the endpoint stops with nothing queued, or
 * when idle_ms > 0 and nothing came for that long (ep->stopping tells which). */
ctxd__batch_t *ctxd__endpoint_take(ctxd__endpoint_t *ep, int *partial, int64_t idle_ms);

/* Frees d's message (body and properties), which leaves the intake; d keeps its tag and
 * outcome. Loop thread; again is harmless. */
void ctxd__delivery_release(ctxd__delivery_t *d);

/* After the stop deadline (loop thread): frees the batches still queued for ep's workers
 * (the broker redelivers them) and returns how many of its workers still run a batch. */
size_t ctxd__endpoint_abandon(ctxd__endpoint_t *ep);

/* Frees a delivery and its message (loop thread). */
void ctxd__delivery_free(ctxd__delivery_t *d);

/* Frees a batch, its deliveries and its rows (loop thread). */
void ctxd__batch_free(ctxd__batch_t *b);

#endif
