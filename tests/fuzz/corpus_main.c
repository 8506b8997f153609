/* Replays a fuzz target's corpus (seeds and every crash ever found) as an ordinary test,
 * so the regressions run in every build, not only under libFuzzer. */
#include "testsupport.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *corpus;

static void replay_corpus(void **state) {
  (void)state;
  DIR *d = opendir(corpus);
  assert_non_null(d);
  int files = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", corpus, e->d_name);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc((size_t)n + 1);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    LLVMFuzzerTestOneInput(buf, (size_t)n);
    free(buf);
    files++;
  }
  closedir(d);
  assert_true(files > 0);
}

int main(int argc, char **argv) {
  if (argc != 2) return 2;
  corpus = argv[1];
  const struct CMUnitTest tests[] = {cmocka_unit_test(replay_corpus)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
