/* The mailbox: items posted from other threads reach the loop thread first in, first out,
 * each finished by its own function; what is posted after the mailbox closed is handed
 * back by the drain, in order, marked closed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include <ctxd/errno.h>

#include "mailbox.h"

enum { PRODUCERS = 4, PER_PRODUCER = 2000, DEADLINE_MS = 20000 };

typedef struct {
  ctxd__mail_t mail; /* first: the mailbox hands this pointer back */
  int producer;
  int seq;
} item_t;

typedef struct {
  ctxd__mailbox_t mb;
  uv_timer_t deadline;
  int next[PRODUCERS]; /* the sequence number each producer's next item must carry */
  int received, closed_received, out_of_order, timed_out;
} world_t;

static void done(void *arg, ctxd__mail_t *m, int status) {
  world_t *w = arg;
  item_t *it = (item_t *)m;
  if (it->seq != w->next[it->producer]) w->out_of_order++;
  w->next[it->producer] = it->seq + 1;
  free(it);
  if (status == CTXD_ECLOSED) {
    w->closed_received++;
    return;
  }
  if (++w->received == PRODUCERS * PER_PRODUCER) {
    ctxd__mailbox_close(&w->mb);
    uv_close((uv_handle_t *)&w->deadline, NULL);
  }
}

static void post(world_t *w, int producer, int seq) {
  item_t *it = calloc(1, sizeof *it);
  assert_non_null(it);
  *it = (item_t){.mail.done = done, .producer = producer, .seq = seq};
  ctxd__mailbox_post(&w->mb, &it->mail);
}

typedef struct {
  world_t *w;
  int producer;
} producer_t;

static void *produce(void *arg) {
  producer_t *p = arg;
  for (int i = 0; i < PER_PRODUCER; i++) post(p->w, p->producer, i);
  return NULL;
}

static void on_deadline(uv_timer_t *t) {
  world_t *w = t->data;
  w->timed_out = 1;
  ctxd__mailbox_close(&w->mb);
  uv_close((uv_handle_t *)t, NULL);
}

/* A loop with the mailbox and a deadline that ends it if items go missing. */
static void open_world(world_t *w, uv_loop_t *loop) {
  assert_int_equal(uv_loop_init(loop), 0);
  assert_int_equal(ctxd__mailbox_init(&w->mb, loop, w), 0);
  uv_timer_init(loop, &w->deadline);
  w->deadline.data = w;
  uv_timer_start(&w->deadline, on_deadline, DEADLINE_MS, 0);
}

/* Four threads post at once while the loop runs: every item arrives once, and each
 * thread's items in the order it posted them. */
static void fifo_across_threads(void **state) {
  (void)state;
  uv_loop_t loop;
  world_t w = {0};
  open_world(&w, &loop);
  pthread_t threads[PRODUCERS];
  producer_t producers[PRODUCERS];
  for (int i = 0; i < PRODUCERS; i++) {
    producers[i] = (producer_t){&w, i};
    assert_int_equal(pthread_create(&threads[i], NULL, produce, &producers[i]), 0);
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  for (int i = 0; i < PRODUCERS; i++) pthread_join(threads[i], NULL);
  ctxd__mailbox_drain(&w.mb);
  assert_false(w.timed_out);
  assert_int_equal(w.received, PRODUCERS * PER_PRODUCER);
  assert_int_equal(w.closed_received, 0);
  assert_int_equal(w.out_of_order, 0);
  assert_int_equal(uv_loop_close(&loop), 0);
}

/* Posted from the loop thread itself before it runs: one thread's items keep their order
 * however many wake-ups libuv folds into one. After the close, posts are kept and the
 * drain hands them back in order with CTXD_ECLOSED. */
static void order_and_drain(void **state) {
  (void)state;
  uv_loop_t loop;
  world_t w = {0};
  open_world(&w, &loop);
  for (int p = 0; p < PRODUCERS; p++)
    for (int i = 0; i < PER_PRODUCER; i++) post(&w, p, i);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_false(w.timed_out);
  assert_int_equal(w.received, PRODUCERS * PER_PRODUCER);
  for (int i = 0; i < 5; i++) post(&w, 0, PER_PRODUCER + i); /* closed: kept */
  assert_int_equal(w.closed_received, 0);
  ctxd__mailbox_drain(&w.mb);
  assert_int_equal(w.closed_received, 5);
  assert_int_equal(w.out_of_order, 0);
  assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(fifo_across_threads),
      cmocka_unit_test(order_and_drain),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
