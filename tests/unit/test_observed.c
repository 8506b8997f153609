/* Unit tests for runtime/observed.c: each triple recorded once, triples that differ only
 * in where one part ends and the next begins kept apart, and the bound. */
#include "testsupport.h"

#include <stdio.h>
#include <string.h>

#include "observed.h"

static void count(void *arg, const ctxd__sent_t *s) {
  (void)s;
  (*(int *)arg)++;
}

static int of_plugin(ctxd__observed_t *o, const char *plugin) {
  int n = 0;
  ctxd__observed_each(o, plugin, count, &n);
  return n;
}

static void each_triple_once(void **state) {
  (void)state;
  ctxd__observed_t o;
  ctxd__observed_init(&o);
  for (int i = 0; i < 3; i++) ctxd__observed_add(&o, "inventory", "Ns:Reserved", "Ns:Reserved");
  ctxd__observed_add(&o, "inventory", "Ns:Reserved", "other");
  ctxd__observed_add(&o, "inventory", "Ns:Reserve", "dNs:Reserved"); /* the same bytes, split elsewhere */
  ctxd__observed_add(&o, "inventoryNs:Reserved", "", "Ns:Reserved");
  ctxd__observed_add(&o, "billing", "Ns:Reserved", "Ns:Reserved");
  assert_int_equal(of_plugin(&o, "inventory"), 3);
  assert_int_equal(of_plugin(&o, "inventoryNs:Reserved"), 1);
  assert_int_equal(of_plugin(&o, "billing"), 1);
  ctxd__observed_free(&o);
}

static void bounded(void **state) {
  (void)state;
  ctxd__observed_t o;
  ctxd__observed_init(&o);
  char type[32];
  for (int i = 0; i < CTXD__OBSERVED_MAX + 10; i++) {
    snprintf(type, sizeof type, "Ns:Type%d", i);
    ctxd__observed_add(&o, "p", type, type);
    ctxd__observed_add(&o, "p", type, type);
  }
  assert_int_equal(of_plugin(&o, "p"), CTXD__OBSERVED_MAX);
  assert_int_equal(atomic_load(&o.full), 1);
  ctxd__observed_free(&o);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(each_triple_once),
      cmocka_unit_test(bounded),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
