/* The runtime's files import each other without a cycle: a module (x.c with x.h) may
 * include only modules that do not include it back, directly or through others, so that
 * worker and relay threads never reach back into the host. The check reads every
 * `#include "x.h"` of runtime/; headers from elsewhere (contracts, the public ABI) are
 * not runtime modules. A directory with a planted cycle shows that the check finds one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testsupport.h"

enum { MAX_MODULES = 128, NAME_MAX_LEN = 64 };

typedef struct {
  char names[MAX_MODULES][NAME_MAX_LEN];
  size_t n;
  unsigned char edge[MAX_MODULES][MAX_MODULES]; /* edge[a][b]: a includes b */
} graph_t;

/* The module of file name ("host.c", "host.h" -> "host"), added if new; -1 for other files. */
static int module(graph_t *g, const char *file, int add) {
  const char *dot = strrchr(file, '.');
  if (dot == NULL || (strcmp(dot, ".c") != 0 && strcmp(dot, ".h") != 0)) return -1;
  size_t len = (size_t)(dot - file);
  assert_true(len < NAME_MAX_LEN);
  for (size_t i = 0; i < g->n; i++)
    if (strlen(g->names[i]) == len && strncmp(g->names[i], file, len) == 0) return (int)i;
  if (!add) return -1;
  assert_true(g->n < MAX_MODULES);
  memcpy(g->names[g->n], file, len);
  g->names[g->n][len] = '\0';
  return (int)g->n++;
}

/* Reads every .c and .h of dir into g. */
static void read_dir(graph_t *g, const char *dir) {
  memset(g, 0, sizeof *g);
  DIR *d = opendir(dir);
  assert_non_null(d);
  struct dirent *e;
  while ((e = readdir(d)) != NULL) module(g, e->d_name, 1);
  rewinddir(d);
  while ((e = readdir(d)) != NULL) {
    int from = module(g, e->d_name, 0);
    if (from < 0) continue;
    char path[1024], line[1024];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    while (fgets(line, sizeof line, f) != NULL) {
      char inc[NAME_MAX_LEN + 8];
      if (sscanf(line, " #include \"%71[^\"]\"", inc) != 1) continue;
      int to = module(g, inc, 0); /* a header of another folder is no runtime module */
      if (to >= 0 && to != from) g->edge[from][to] = 1;
    }
    fclose(f);
  }
  closedir(d);
}

/* Depth-first search; writes the first cycle found ("a -> b -> a") into out, 1 if any. */
static int cycle_from(const graph_t *g, size_t v, int *state, size_t *stack, size_t depth, char *out,
                      size_t len) {
  state[v] = 1;
  stack[depth] = v;
  for (size_t w = 0; w < g->n; w++) {
    if (!g->edge[v][w]) continue;
    if (state[w] == 1) {
      size_t start = 0;
      while (stack[start] != w) start++;
      out[0] = '\0';
      for (size_t i = start; i <= depth; i++)
        snprintf(out + strlen(out), len - strlen(out), "%s -> ", g->names[stack[i]]);
      snprintf(out + strlen(out), len - strlen(out), "%s", g->names[w]);
      return 1;
    }
    if (state[w] == 0 && cycle_from(g, w, state, stack, depth + 1, out, len)) return 1;
  }
  state[v] = 2;
  return 0;
}

static int find_cycle(const graph_t *g, char *out, size_t len) {
  int state[MAX_MODULES] = {0};
  size_t stack[MAX_MODULES];
  for (size_t v = 0; v < g->n; v++)
    if (state[v] == 0 && cycle_from(g, v, state, stack, 0, out, len)) return 1;
  return 0;
}

static void runtime_has_no_include_cycle(void **state) {
  (void)state;
  static graph_t g;
  read_dir(&g, CTXD_TEST_SOURCE_DIR "/runtime");
  assert_true(g.n > 20);
  char cycle[2048];
  if (find_cycle(&g, cycle, sizeof cycle))
    fail_msg("runtime files include each other in a circle: %s", cycle);
}

static void write_file(const char *dir, const char *name, const char *text) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

static void a_planted_cycle_is_found(void **state) {
  (void)state;
  char dir[] = "/tmp/ctxd-includes-XXXXXX";
  assert_non_null(mkdtemp(dir));
  write_file(dir, "host.h", "#include <uv.h>\n");
  write_file(dir, "host.c", "#include \"host.h\"\n#include \"endpoint.h\"\n#include \"fail.h\"\n");
  write_file(dir, "endpoint.h", "#include \"mailbox.h\"\n");
  write_file(dir, "endpoint.c", "#include \"endpoint.h\"\n");
  write_file(dir, "mailbox.h", "");
  write_file(dir, "mailbox.c", "#include \"mailbox.h\"\n");
  static graph_t g;
  char cycle[2048];
  read_dir(&g, dir);
  assert_false(find_cycle(&g, cycle, sizeof cycle));
  /* the worker side reaching back into the host */
  write_file(dir, "mailbox.c", "#include \"mailbox.h\"\n  #include \"host.h\"\n");
  read_dir(&g, dir);
  assert_true(find_cycle(&g, cycle, sizeof cycle));
  /* whichever module the search starts from */
  assert_non_null(strstr(cycle, "host -> endpoint"));
  assert_non_null(strstr(cycle, "endpoint -> mailbox"));
  assert_non_null(strstr(cycle, "mailbox -> host"));
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  assert_int_equal(system(cmd), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(runtime_has_no_include_cycle),
      cmocka_unit_test(a_planted_cycle_is_found),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
