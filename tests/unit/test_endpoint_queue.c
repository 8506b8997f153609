/* The endpoint's batch queue: batches waiting for a worker take in what arrives after
 * them, up to their size, and one batch that is not full runs at a time (for a bounded
 * wait), so a busy endpoint runs full batches (one transaction each) instead of many
 * small ones. No worker thread runs here: the test takes batches as a worker would. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <ctxd/errno.h>

#include "clock.h"
#include "endpoint.h"

enum { CAP = 8 };

/* A batch of n deliveries tagged from `first` on, for connection generation gen, with
 * slots for `room` (its size CAP). */
static ctxd__batch_t *batch_in(ctxd__delivery_t *d, uint64_t first, size_t n, uint64_t gen, size_t room) {
  ctxd__batch_t *b = calloc(1, sizeof *b + room * sizeof b->items[0]);
  assert_non_null(b);
  b->cap = CAP;
  b->room = room;
  b->gen = gen;
  for (size_t i = 0; i < n; i++) {
    d[first + i].tag = first + i;
    b->items[b->n++] = &d[first + i];
  }
  return b;
}

static ctxd__batch_t *batch(ctxd__delivery_t *d, uint64_t first, size_t n, uint64_t gen) {
  return batch_in(d, first, n, gen, CAP);
}

/* The queued batches' sizes, head first, into sizes; returns how many batches. Checks that
 * the tags run from 0 in order, each delivery queued once. */
static size_t queued(ctxd__endpoint_t *ep, size_t sizes[], size_t max) {
  size_t k = 0;
  uint64_t next = 0;
  for (ctxd__batch_t *b = ep->queue_head; b != NULL; b = b->next) {
    assert_true(k < max);
    sizes[k++] = b->n;
    for (size_t i = 0; i < b->n; i++) assert_int_equal(b->items[i]->tag, next++);
    if (b->next == NULL) assert_ptr_equal(ep->queue_tail, b);
  }
  return k;
}

static void drop_queue(ctxd__endpoint_t *ep) {
  while (ep->queue_head != NULL) {
    ctxd__batch_t *b = ep->queue_head;
    ep->queue_head = b->next;
    free(b);
  }
  ep->queue_tail = NULL;
}

static int setup(void **state) {
  ctxd__endpoint_t *ep = calloc(1, sizeof *ep);
  assert_non_null(ep);
  pthread_mutex_init(&ep->mu, NULL);
  pthread_cond_init(&ep->cv, NULL);
  *state = ep;
  return 0;
}

static int teardown(void **state) {
  ctxd__endpoint_t *ep = *state;
  drop_queue(ep);
  pthread_cond_destroy(&ep->cv);
  pthread_mutex_destroy(&ep->mu);
  free(ep);
  return 0;
}

static void waiting_batches_fill_up(void **state) {
  ctxd__endpoint_t *ep = *state;
  ctxd__delivery_t d[64];
  size_t sizes[8];

  ctxd__endpoint_submit(ep, batch(d, 0, 3, 1));
  ctxd__endpoint_submit(ep, batch(d, 3, 2, 1)); /* joins the first: freed */
  assert_int_equal(queued(ep, sizes, 8), 1);
  assert_int_equal(sizes[0], 5);

  ctxd__endpoint_submit(ep, batch(d, 5, 6, 1)); /* 3 fit, 3 wait in a batch of their own */
  assert_int_equal(queued(ep, sizes, 8), 2);
  assert_int_equal(sizes[0], CAP);
  assert_int_equal(sizes[1], 3);

  ctxd__endpoint_submit(ep, batch(d, 11, CAP, 1)); /* fills the second, the rest queues */
  assert_int_equal(queued(ep, sizes, 8), 3);
  assert_int_equal(sizes[1], CAP);
  assert_int_equal(sizes[2], 3);

  /* after a reconnection: a batch of the new connection never joins an old one, whose
   * completion is dropped whole */
  ctxd__endpoint_submit(ep, batch(d, 19, 2, 2));
  assert_int_equal(queued(ep, sizes, 8), 4);
  assert_int_equal(sizes[2], 3);
  assert_int_equal(sizes[3], 2);
}

/* While every worker is busy, a waiting batch keeps taking in what arrives, past its size
 * up to its room: a deep queue is drained in fewer, larger transactions. */
static void waiting_batches_grow_to_their_room(void **state) {
  ctxd__endpoint_t *ep = *state;
  ctxd__delivery_t d[64];
  size_t sizes[8];
  ctxd__endpoint_submit(ep, batch_in(d, 0, CAP, 1, 3 * CAP));
  ctxd__endpoint_submit(ep, batch_in(d, CAP, CAP, 1, 3 * CAP)); /* joins the full one */
  assert_int_equal(queued(ep, sizes, 8), 1);
  assert_int_equal(sizes[0], 2 * CAP);
  ctxd__endpoint_submit(ep, batch_in(d, 2 * CAP, CAP + 2, 1, 3 * CAP)); /* 2 are left over */
  assert_int_equal(queued(ep, sizes, 8), 2);
  assert_int_equal(sizes[0], 3 * CAP);
  assert_int_equal(sizes[1], 2);
}

/* Takes the head batch as a worker would; returns how long that took, in microseconds. */
static int64_t take(ctxd__endpoint_t *ep, ctxd__batch_t **b, int *partial) {
  int64_t t0 = ctxd__clock_us();
  pthread_mutex_lock(&ep->mu);
  *b = ctxd__endpoint_take(ep, partial, 0);
  pthread_mutex_unlock(&ep->mu);
  return ctxd__clock_us() - t0;
}

static void one_partial_batch_at_a_time(void **state) {
  ctxd__endpoint_t *ep = *state;
  ctxd__delivery_t d[64];
  ctxd__batch_t *b;
  int partial;

  /* nothing running: a partial batch goes at once */
  ctxd__endpoint_submit(ep, batch(d, 0, 2, 1));
  take(ep, &b, &partial);
  assert_int_equal(b->n, 2);
  assert_true(partial);
  assert_int_equal(ep->partial_running, 1);
  free(b);

  /* a partial batch running: a full one still goes at once... */
  ctxd__endpoint_submit(ep, batch(d, 0, CAP, 1));
  take(ep, &b, &partial);
  assert_int_equal(b->n, CAP);
  assert_false(partial);
  free(b);

  /* ...another partial one waits for it (to fill up), at most CTXD__PARTIAL_WAIT_US */
  ctxd__endpoint_submit(ep, batch(d, 0, 3, 1));
  int64_t waited = take(ep, &b, &partial);
  assert_true(waited >= CTXD__PARTIAL_WAIT_US);
  assert_true(partial);
  assert_int_equal(ep->partial_running, 2);
  free(b);

  /* a stopping endpoint hands out what is queued without waiting, then nothing */
  ctxd__endpoint_submit(ep, batch(d, 0, 1, 1));
  ep->stopping = 1;
  take(ep, &b, &partial);
  assert_int_equal(b->n, 1);
  free(b);
  assert_true(take(ep, &b, &partial) < CTXD__PARTIAL_WAIT_US);
  assert_null(b);
}

static ctxd_handler_result_t handler(ctxd_tx_t *tx, const ctxd_msg_t *msg, void *data) {
  (void)tx, (void)msg, (void)data;
  return CTXD_HANDLER_OK;
}

/* A plugin's endpoint cannot take a name of the host's own: "ctxd.errors" is the ingest
 * endpoint's, and every "ctxd." name is kept for the host. */
static void host_names_are_reserved(void **state) {
  (void)state;
  ctxd_consumer_t c = {
      .size = sizeof c, .endpoint = "inventory.v1", .message_type = "Ns:T", .handler = handler};
  assert_int_equal(ctxd__consumer_check(&c), 0);
  c.endpoint = CTXD__INGEST_ENDPOINT;
  assert_int_equal(ctxd__consumer_check(&c), CTXD_EINVAL);
  c.endpoint = "ctxd.mine";
  assert_int_equal(ctxd__consumer_check(&c), CTXD_EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(waiting_batches_fill_up, setup, teardown),
      cmocka_unit_test_setup_teardown(waiting_batches_grow_to_their_room, setup, teardown),
      cmocka_unit_test_setup_teardown(one_partial_batch_at_a_time, setup, teardown),
      cmocka_unit_test(host_names_are_reserved),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
