/* Publisher confirms: a basic.ack or basic.nack settles the publish with its sequence
 * number, or with `multiple` every one up to it; the tracker hands the settled entries back
 * in publish order, in chunks the caller chooses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "confirms.h"
#include "endpoint.h"
#include "outrow.h"

static ctxd__delivery_t copies[256];

static void track(ctxd__confirms_t *c, uint64_t from, uint64_t to) {
  for (uint64_t seq = from; seq <= to; seq++)
    assert_int_equal(ctxd__confirms_add(c, seq, &copies[seq], NULL), 0);
}

/* Settles and returns the sequence numbers settled, in order, as text ("1,2,4"). */
static const char *settle(ctxd__confirms_t *c, uint64_t seq, int multiple, size_t max) {
  static char out[2048];
  out[0] = '\0';
  ctxd__pending_t got[4];
  size_t k;
  do {
    k = ctxd__confirms_settle(c, seq, multiple, got, max);
    for (size_t i = 0; i < k; i++) {
      assert_ptr_equal(got[i].copy_of, &copies[got[i].seq]);
      snprintf(out + strlen(out), sizeof out - strlen(out), "%s%llu", out[0] ? "," : "",
               (unsigned long long)got[i].seq);
    }
  } while (k == max);
  return out;
}

static void single_and_multiple(void **state) {
  (void)state;
  ctxd__confirms_t c = {0};
  track(&c, 1, 6);
  assert_string_equal(settle(&c, 3, 0, 4), "3");
  assert_string_equal(settle(&c, 3, 0, 4), ""); /* settled already */
  assert_string_equal(settle(&c, 5, 1, 4), "1,2,4,5");
  assert_string_equal(settle(&c, 2, 1, 4), ""); /* nothing up to 2 is left */
  assert_int_equal(c.n, 1);
  /* a confirm of a publish of a lost connection settles nothing */
  assert_string_equal(settle(&c, 99, 0, 4), "");
  track(&c, 7, 15);
  /* in chunks, in publish order */
  assert_string_equal(settle(&c, 14, 1, 2), "6,7,8,9,10,11,12,13,14");
  assert_string_equal(settle(&c, UINT64_MAX, 1, 3), "15");
  assert_int_equal(c.n, 0);
  ctxd__confirms_free(&c);
}

/* Settled prefixes free room at the front that later publishes reuse; a single confirm in
 * the middle leaves the order of the rest alone. */
static void room_is_reused(void **state) {
  (void)state;
  ctxd__confirms_t c = {0};
  track(&c, 1, 64); /* the first allocation, full */
  assert_string_equal(settle(&c, 10, 1, 4), "1,2,3,4,5,6,7,8,9,10");
  assert_string_equal(settle(&c, 30, 0, 4), "30");
  track(&c, 65, 75); /* into the room the prefix left */
  assert_int_equal(c.cap, 64);
  assert_string_equal(settle(&c, 12, 1, 4), "11,12");
  assert_string_equal(settle(&c, 75, 0, 4), "75");
  track(&c, 76, 200); /* grows */
  size_t n = c.n;
  char want[2048] = "";
  for (int i = 13; i <= 200; i++)
    if (i != 30 && i != 75)
      snprintf(want + strlen(want), sizeof want - strlen(want), "%s%d", want[0] ? "," : "", i);
  assert_string_equal(settle(&c, 200, 1, 4), want);
  assert_int_equal(n, 186);
  assert_int_equal(c.n, 0);
  ctxd__confirms_free(&c);
}

/* A basic.return names the message id: the tracked row is found by it. */
static void rows_found_by_message_id(void **state) {
  (void)state;
  ctxd__confirms_t c = {0};
  ctxd__outrow_t *a = ctxd__outrow_new(1, "00000000-0000-4000-8000-000000000001", "x", "{}");
  ctxd__outrow_t *b = ctxd__outrow_new(2, "00000000-0000-4000-8000-000000000002", "y", "{}");
  assert_int_equal(ctxd__confirms_add(&c, 1, NULL, a), 0);
  assert_int_equal(ctxd__confirms_add(&c, 2, &copies[2], NULL), 0);
  assert_int_equal(ctxd__confirms_add(&c, 3, NULL, b), 0);
  const char *id = "00000000-0000-4000-8000-000000000002";
  assert_ptr_equal(ctxd__confirms_find_row(&c, id, strlen(id)), b);
  assert_null(ctxd__confirms_find_row(&c, id, strlen(id) - 1));
  assert_null(ctxd__confirms_find_row(&c, "", 0));
  ctxd__pending_t got[4];
  assert_int_equal(ctxd__confirms_settle(&c, 3, 1, got, 4), 3);
  assert_ptr_equal(got[0].row, a);
  assert_ptr_equal(got[2].row, b);
  assert_null(ctxd__confirms_find_row(&c, id, strlen(id)));
  ctxd__outrow_free(a);
  ctxd__outrow_free(b);
  ctxd__confirms_free(&c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(single_and_multiple),
      cmocka_unit_test(room_is_reused),
      cmocka_unit_test(rows_found_by_message_id),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
