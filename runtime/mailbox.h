/* The mailbox: how worker and relay threads hand results back to the loop thread. Items
 * are delivered first in, first out, on the loop thread, woken by one uv_async_t (libuv's
 * thread-pool completion queue works the same way: a mutex-guarded queue, one async, and
 * each item carrying the function that finishes it).
 *
 * Lifetime: init on the loop thread before any producer starts; close on the loop thread
 * when the loop is to end (later posts are kept, not delivered); once every producer has
 * stopped, ctxd__mailbox_drain hands what was kept back, with CTXD_ECLOSED, to be freed. */
#ifndef CTXD_RUNTIME_MAILBOX_H
#define CTXD_RUNTIME_MAILBOX_H

#include <pthread.h>

#include <uv.h>

typedef struct ctxd__mail_s ctxd__mail_t;

/* Finishes item m on the loop thread. status is 0, or CTXD_ECLOSED when the mailbox closed
 * before m could be delivered (only free it then). arg is the mailbox's. */
typedef void (*ctxd__mail_cb)(void *arg, ctxd__mail_t *m, int status);

/* Embedded in whatever is handed back; the poster sets done. */
struct ctxd__mail_s {
  ctxd__mail_t *next;
  ctxd__mail_cb done;
};

typedef struct {
  uv_async_t async;
  pthread_mutex_t mu;
  ctxd__mail_t *head, *tail; /* under mu */
  int closed;                /* under mu: no more wake-ups, the handle is closing */
  void *arg;
} ctxd__mailbox_t;

/* Loop thread. 0, or a negative libuv error code (nothing to undo then). */
int ctxd__mailbox_init(ctxd__mailbox_t *mb, uv_loop_t *loop, void *arg);

/* Queues m behind everything posted before it and wakes the loop. Any thread; never
 * fails. m->done must be set. */
void ctxd__mailbox_post(ctxd__mailbox_t *mb, ctxd__mail_t *m);

/* Loop thread, once: stops delivering and closes the async handle (run the loop until the
 * handle is closed before uv_loop_close). */
void ctxd__mailbox_close(ctxd__mailbox_t *mb);

/* After the loop ended and every producer stopped: calls done(arg, m, CTXD_ECLOSED) for
 * each item still queued, in order, then releases the mailbox's lock. */
void ctxd__mailbox_drain(ctxd__mailbox_t *mb);

#endif
