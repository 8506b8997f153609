/* The delivery ledger: what the loop thread sends the broker for the deliveries of one
 * channel. A multiple-ack covers every earlier tag, so settlements must come in tag order
 * and only over runs of finished deliveries. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ctxd/errno.h>

#include "ledger.h"

static int setup(void **state) {
  static ctxd__ledger_t l;
  assert_int_equal(ctxd__ledger_init(&l, 8), 0);
  *state = &l;
  return 0;
}

static int teardown(void **state) {
  ctxd__ledger_free(*state);
  return 0;
}

static void receive(ctxd__ledger_t *l, uint64_t from, uint64_t to) {
  for (uint64_t t = from; t <= to; t++) assert_int_equal(ctxd__ledger_receive(l, t), 0);
}

static void expect(ctxd__ledger_t *l, uint64_t tag, int multiple, int requeue, size_t count) {
  ctxd__settlement_t s;
  assert_int_equal(ctxd__ledger_next(l, &s), 1);
  assert_int_equal(s.tag, tag);
  assert_int_equal(s.multiple, multiple);
  assert_int_equal(s.requeue, requeue);
  assert_int_equal(s.count, count);
}

static void expect_none(ctxd__ledger_t *l) {
  ctxd__settlement_t s;
  assert_int_equal(ctxd__ledger_next(l, &s), 0);
}

/* Finished deliveries behind a running one wait; then one multiple-ack takes them all. */
static void acks_wait_for_the_head(void **state) {
  ctxd__ledger_t *l = *state;
  expect_none(l);
  receive(l, 1, 4);
  ctxd__ledger_mark(l, 2, CTXD__TAG_ACK);
  ctxd__ledger_mark(l, 3, CTXD__TAG_ACK);
  expect_none(l);
  ctxd__ledger_mark(l, 1, CTXD__TAG_ACK);
  expect(l, 3, 1, 0, 3);
  expect_none(l); /* 4 still runs */
  ctxd__ledger_mark(l, 4, CTXD__TAG_ACK);
  expect(l, 4, 0, 0, 1);
  expect_none(l);
}

/* A requeue breaks a run: ack up to it, nack it (with its neighbours), ack after it. */
static void requeues_split_runs(void **state) {
  ctxd__ledger_t *l = *state;
  receive(l, 1, 6);
  static const ctxd__tag_state_t states[] = {CTXD__TAG_ACK,     CTXD__TAG_ACK, CTXD__TAG_REQUEUE,
                                             CTXD__TAG_REQUEUE, CTXD__TAG_ACK, CTXD__TAG_ACK};
  for (uint64_t t = 1; t <= 6; t++) ctxd__ledger_mark(l, t, states[t - 1]);
  expect(l, 2, 1, 0, 2);
  expect(l, 4, 1, 1, 2);
  expect(l, 6, 1, 0, 2);
  expect_none(l);
}

/* A copy awaiting its confirm holds the head like a running delivery. */
static void confirming_holds_the_head(void **state) {
  ctxd__ledger_t *l = *state;
  receive(l, 1, 2);
  ctxd__ledger_mark(l, 1, CTXD__TAG_CONFIRMING);
  ctxd__ledger_mark(l, 2, CTXD__TAG_ACK);
  expect_none(l);
  ctxd__ledger_mark(l, 1, CTXD__TAG_ACK);
  expect(l, 2, 1, 0, 2);
}

/* The ring holds at most its capacity, tags come without gaps, and a settled ring takes the
 * next tags; marks for tags not in it are ignored. */
static void the_broker_keeps_its_promises(void **state) {
  ctxd__ledger_t *l = *state;
  assert_int_equal(ctxd__ledger_receive(l, 0), CTXD_ESTATE);
  receive(l, 1, 8);
  assert_int_equal(ctxd__ledger_receive(l, 9), CTXD_ESTATE); /* a ninth unsettled */
  assert_int_equal(ctxd__ledger_receive(l, 8), CTXD_ESTATE); /* not above the last */
  for (uint64_t t = 1; t <= 8; t++) ctxd__ledger_mark(l, t, CTXD__TAG_ACK);
  ctxd__ledger_mark(l, 42, CTXD__TAG_REQUEUE);
  expect(l, 8, 1, 0, 8);
  assert_int_equal(ctxd__ledger_receive(l, 10), CTXD_ESTATE); /* a gap */
  receive(l, 9, 16);                                          /* the ring wraps */
  for (uint64_t t = 9; t <= 16; t++) ctxd__ledger_mark(l, t, CTXD__TAG_ACK);
  expect(l, 16, 1, 0, 8);
}

/* A lost connection: the ledger forgets everything and counts what the caller held (not
 * what the workers hold); tags start again at 1. */
static void reset_counts_what_the_loop_held(void **state) {
  ctxd__ledger_t *l = *state;
  receive(l, 1, 5);
  ctxd__ledger_mark(l, 2, CTXD__TAG_CONFIRMING);
  ctxd__ledger_mark(l, 3, CTXD__TAG_ACK);
  ctxd__ledger_mark(l, 5, CTXD__TAG_REQUEUE);
  assert_int_equal(ctxd__ledger_reset(l), 3);
  expect_none(l);
  ctxd__ledger_mark(l, 1, CTXD__TAG_ACK);
  expect_none(l);
  receive(l, 1, 1);
  ctxd__ledger_mark(l, 1, CTXD__TAG_ACK);
  expect(l, 1, 0, 0, 1);
  assert_int_equal(ctxd__ledger_reset(l), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(acks_wait_for_the_head, setup, teardown),
      cmocka_unit_test_setup_teardown(requeues_split_runs, setup, teardown),
      cmocka_unit_test_setup_teardown(confirming_holds_the_head, setup, teardown),
      cmocka_unit_test_setup_teardown(the_broker_keeps_its_promises, setup, teardown),
      cmocka_unit_test_setup_teardown(reset_counts_what_the_loop_held, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
