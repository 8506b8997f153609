/* The plugin SDK as a new user meets it: docs/plugin-guide.md, followed to the letter.
 *
 * The guide's shell commands the test runs are fenced ```sh blocks, each after a line
 * `<!-- test_sdk: run -->` (run to completion; it must exit 0) or `<!-- test_sdk: start -->`
 * (one command started in the background: the host, stopped at the end). Each block runs
 * with `sh -e` in a scratch working folder laid out as the guide says: the ctxd source as
 * `ctxd`, its build as `ctxd-build` (links to this tree and to this build, which the guide's
 * own install command installs). The only change to the text is the documented prefix:
 * /opt/ctxd becomes a scratch folder. The environment adds only the servers (CTXD_AMQP_URL
 * on a virtual host of its own, CTXD_PG_URL on a fresh database: the overrides the guide
 * names) and CMAKE_EXPORT_COMPILE_COMMANDS; it drops CTXD_PLUGIN_DIR, PKG_CONFIG_PATH and
 * CMAKE_PREFIX_PATH, so the guide must set what it needs. A wrong command fails the test. */
#include "testsupport.h"

#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define GUIDE CTXD_TEST_SOURCE_DIR "/docs/plugin-guide.md"
#define EXAMPLE CTXD_TEST_SOURCE_DIR "/docs/examples/hello-plugin"
#define GUIDE_PREFIX "/opt/ctxd"
#define MARK "<!-- test_sdk: "
#define BLOCK_MS 180000

/* Returns text with every `from` replaced by `to`; the caller frees it. */
static char *replace_all(const char *text, const char *from, const char *to) {
  size_t nfrom = strlen(from), nto = strlen(to), count = 0;
  for (const char *p = strstr(text, from); p != NULL; p = strstr(p + nfrom, from)) count++;
  char *out = malloc(strlen(text) + count * nto + 1), *w = out;
  assert_non_null(out);
  const char *p;
  while ((p = strstr(text, from)) != NULL) {
    memcpy(w, text, (size_t)(p - text));
    w += p - text;
    memcpy(w, to, nto);
    w += nto;
    text = p + nfrom;
  }
  strcpy(w, text);
  return out;
}

/* A fenced block of the guide. */
typedef struct {
  char info[16]; /* what follows the opening ```: "sh", "c", "cmake" */
  char mark[16]; /* the test_sdk mark on the line before it ("run", "start"), or "" */
  char *body;    /* its lines, each ending in a newline; the caller frees it */
} block_t;

/* Reads the fenced block at or after *at into b and moves *at past it; 0 when there is none. */
static int next_block(const char **at, block_t *b) {
  const char *open = *at;
  while ((open = strstr(open, "```")) != NULL && open != *at && open[-1] != '\n') open += 3;
  if (open == NULL) return 0;
  memset(b, 0, sizeof *b);
  const char *eol = strchr(open, '\n');
  assert_non_null(eol);
  snprintf(b->info, sizeof b->info, "%.*s", (int)(eol - open - 3), open + 3);
  /* the line before: the mark, if it is one */
  if (open > *at) {
    const char *prev = open - 1;
    while (prev > *at && prev[-1] != '\n') prev--;
    if (strncmp(prev, MARK, strlen(MARK)) == 0) sscanf(prev + strlen(MARK), "%15[a-z]", b->mark);
  }
  const char *close = strstr(eol + 1, "\n```");
  if (close == NULL) fail_msg("%s: block ```%s never closed", GUIDE, b->info);
  b->body = strndup(eol + 1, (size_t)(close + 1 - (eol + 1)));
  *at = close + 4;
  return 1;
}

/* ---- the guide's code is the example's ------------------------------------------------ */

/* The guide's blocks of `info`, each followed by an empty line but the last: the file a
 * reader gets by pasting them in order. The caller frees it. */
static char *pasted(const char *guide, const char *info) {
  char *all = strdup("");
  const char *at = guide;
  block_t b;
  while (next_block(&at, &b)) {
    if (strcmp(b.info, info) == 0) {
      char *more = malloc(strlen(all) + strlen(b.body) + 2);
      assert_non_null(more);
      sprintf(more, "%s%s%s", all, all[0] != '\0' ? "\n" : "", b.body);
      free(all);
      all = more;
    }
    free(b.body);
  }
  return all;
}

static void snippets_are_the_example(void **state) {
  (void)state;
  char *guide = ctxt_read_file(GUIDE), *c = ctxt_read_file(EXAMPLE "/hello.c"),
       *cmake = ctxt_read_file(EXAMPLE "/CMakeLists.txt");
  assert_non_null(guide);
  char *c_pasted = pasted(guide, "c"), *cmake_pasted = pasted(guide, "cmake");
  /* what the reader pastes compiles: it is the file the SDK test builds */
  assert_string_equal(c_pasted, c);
  assert_string_equal(cmake_pasted, cmake);
  free(c_pasted);
  free(cmake_pasted);
  free(guide);
  free(c);
  free(cmake);
}

/* ---- the guide's commands ------------------------------------------------------------- */

typedef struct {
  char dir[256];    /* scratch, canonical: prefix/ and work/ */
  char prefix[300]; /* what /opt/ctxd becomes */
  char work[300];   /* the working folder of every command */
  char vhost[64];   /* the broker's virtual host of this test, once made */
  char amqp_env[600], pg_env[300];
  ctxt_proc_t host; /* the guide's `start` block */
} sdk_t;

/* Runs `bash tests/stack/stack.sh ctl ARGS` (rabbitmqctl on the private broker); 0 on success. */
static int stack_ctl(const char *args) {
  char cmd[PATH_MAX + 512];
  snprintf(cmd, sizeof cmd, "bash %s/tests/stack/stack.sh ctl %s >/dev/null", CTXD_TEST_SOURCE_DIR, args);
  return system(cmd) == 0 ? 0 : -1;
}

static int sdk_setup(void **state) {
  *state = calloc(1, sizeof(sdk_t));
  return *state != NULL ? 0 : -1;
}

/* Makes the scratch folders, the virtual host and the database; the teardown removes them. */
static void sdk_prepare(sdk_t *s) {
  char dir[] = "/tmp/ctxd-sdk-XXXXXX", link[PATH_MAX], args[128], db[256];
  assert_non_null(mkdtemp(dir));
  /* canonical, as the host's log names the folders it found */
  char *real = realpath(dir, NULL);
  assert_non_null(real);
  snprintf(s->dir, sizeof s->dir, "%s", real);
  free(real);
  snprintf(s->prefix, sizeof s->prefix, "%s/prefix", s->dir);
  snprintf(s->work, sizeof s->work, "%s/work", s->dir);
  assert_int_equal(mkdir(s->work, 0700), 0);
  snprintf(link, sizeof link, "%s/ctxd", s->work);
  assert_int_equal(symlink(CTXD_TEST_SOURCE_DIR, link), 0);
  snprintf(link, sizeof link, "%s/ctxd-build", s->work);
  assert_int_equal(symlink(CTXD_TEST_BINARY_DIR, link), 0);
  /* the guide's queue and type exchange have fixed names: apart from every other run's */
  char vhost[64];
  snprintf(vhost, sizeof vhost, "ctxd-sdk-%s", ctxt_unique());
  snprintf(args, sizeof args, "add_vhost %s", vhost);
  if (stack_ctl(args) != 0) fail_msg("cannot make the virtual host %s", vhost);
  snprintf(s->vhost, sizeof s->vhost, "%s", vhost);
  snprintf(args, sizeof args, "set_permissions -p %s guest '.*' '.*' '.*'", s->vhost);
  if (stack_ctl(args) != 0) fail_msg("cannot open the virtual host %s to guest", vhost);
  snprintf(s->amqp_env, sizeof s->amqp_env, "CTXD_AMQP_URL=%s/%s", ctxt_amqp_url(), s->vhost);
  ctxt_pg_fresh_db(db, sizeof db);
  snprintf(s->pg_env, sizeof s->pg_env, "CTXD_PG_URL=%s", db);
  /* the guide must say where ctxd is: nothing of this environment may tell the tools */
  unsetenv("PKG_CONFIG_PATH");
  unsetenv("CMAKE_PREFIX_PATH");
}

static int sdk_teardown(void **state) {
  sdk_t *s = *state;
  ctxt_proc_free(&s->host);
  char cmd[PATH_MAX];
  int rc = 0;
  if (s->vhost[0] != '\0') {
    snprintf(cmd, sizeof cmd, "delete_vhost %s", s->vhost);
    rc |= stack_ctl(cmd);
  }
  if (s->dir[0] != '\0') {
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", s->dir);
    rc |= system(cmd);
  }
  free(s);
  return rc == 0 ? 0 : -1;
}

/* Starts block text (already substituted) with sh -e in the working folder; stdout goes
 * with stderr into p->out. `exec_last`: the block is one command the shell becomes, so a
 * signal reaches it. */
static void block_spawn(sdk_t *s, const char *text, int exec_last, ctxt_proc_t *p) {
  char *script = malloc(strlen(s->work) + strlen(text) + 32);
  assert_non_null(script);
  sprintf(script, "cd '%s'\nexec 1>&2\n%s%s", s->work, exec_last ? "exec " : "", text);
  char *argv[] = {"/bin/sh", "-ec", script, NULL};
  char *env[] = {s->amqp_env, s->pg_env, "CMAKE_EXPORT_COMPILE_COMMANDS=ON", NULL};
  ctxt_proc_spawn(p, argv, env);
  free(script);
}

/* Runs a `run` block to its end and appends what it wrote to *log; fails the test unless
 * it exits 0. */
static void block_run(sdk_t *s, const char *text, char **log) {
  ctxt_proc_t p;
  block_spawn(s, text, 0, &p);
  if (!ctxt_proc_wait_exit(&p, BLOCK_MS)) fail_msg("the guide's command did not end:\n%s", text);
  if (!WIFEXITED(p.status) || WEXITSTATUS(p.status) != 0)
    fail_msg("the guide's command failed (status %d):\n%s", p.status, text);
  size_t had = strlen(*log);
  *log = realloc(*log, had + p.len + 1);
  assert_non_null(*log);
  memcpy(*log + had, p.out, p.len + 1);
  ctxt_proc_free(&p);
}

/* Fails unless text holds needle. */
static void holds(const char *text, const char *needle, const char *what) {
  if (strstr(text, needle) == NULL) fail_msg("%s: no '%s' in:\n%s", what, needle, text);
}

/* Runs the guide's marked blocks in order; returns what the `run` blocks wrote (the caller
 * frees it) once the last one ended, the host of the `start` block running. */
static char *follow_guide(sdk_t *s) {
  char *guide = ctxt_read_file(GUIDE), *log = strdup("");
  assert_non_null(guide);
  /* the steps the guide must take, whatever else it does */
  static const char *const steps[] = {"cmake --install ctxd-build --prefix " GUIDE_PREFIX,
                                      "-DCMAKE_PREFIX_PATH=" GUIDE_PREFIX, "pkg-config --cflags ctxd",
                                      "check-config", GUIDE_PREFIX "/bin/ctxd send"};
  enum { NSTEPS = sizeof steps / sizeof steps[0] };
  int took[NSTEPS] = {0}, started = 0;
  const char *at = guide;
  block_t b;
  while (next_block(&at, &b)) {
    int start = strcmp(b.mark, "start") == 0;
    if (start || strcmp(b.mark, "run") == 0) {
      assert_string_equal(b.info, "sh");
      for (int i = 0; i < NSTEPS; i++) took[i] |= strstr(b.body, steps[i]) != NULL;
      char *text = replace_all(b.body, GUIDE_PREFIX, s->prefix);
      if (!start) {
        block_run(s, text, &log);
      } else {
        /* the host: once it is ready, the guide goes on in a second terminal */
        if (started++ || strchr(text, '\n') != text + strlen(text) - 1)
          fail_msg("the guide may start one command, once; it starts:\n%s", b.body);
        block_spawn(s, text, 1, &s->host);
        if (!ctxt_proc_wait_output(&s->host, "\"ready:", 60000)) fail_msg("the guide's host is not ready");
      }
      free(text);
    }
    free(b.body);
  }
  free(guide);
  for (int i = 0; i < NSTEPS; i++)
    if (!took[i]) fail_msg("the guide runs no '%s'", steps[i]);
  if (!started) fail_msg("the guide starts no host");
  return log;
}

static void guide_commands_build_and_run_hello(void **state) {
  sdk_t *s = *state;
  sdk_prepare(s);
  char *log = follow_guide(s);

  /* the installed host found its bundled plugins beside itself: the guide's check-config
   * of a configuration without plugin_dir, CTXD_PLUGIN_DIR not set */
  char path[PATH_MAX], dir[PATH_MAX], want[PATH_MAX + 64];
  snprintf(path, sizeof path, "%s/bin/%s", s->prefix, CTXD_PLUGIN_DIR_FROM_BIN);
  assert_non_null(realpath(path, dir));
  snprintf(want, sizeof want, "loaded plugin 'datacatalog' 1.0.0 from %s/ctxd_datacatalog.so", dir);
  holds(log, want, "the guide's commands");
  free(log);

  /* the guide's message took effect */
  PGconn *pg = ctxt_pg_connect(s->pg_env + strlen("CTXD_PG_URL="));
  assert_int_equal(ctxt_pg_wait_long(pg, "SELECT count FROM hello.greetings WHERE name = 'Ada'", 1, 30000),
                   1);
  assert_int_equal(ctxt_pg_long(pg, "SELECT sum(count) FROM hello.greetings"), 1);
  PQfinish(pg);
  ctxt_proc_signal(&s->host, SIGTERM);
  assert_true(ctxt_proc_wait_exit(&s->host, 30000));
  assert_true(WIFEXITED(s->host.status));
  assert_int_equal(WEXITSTATUS(s->host.status), 0);

  /* nothing of this source tree went into the plugin's build: only the installed SDK */
  snprintf(path, sizeof path, "%s/hello-plugin/build/compile_commands.json", s->work);
  char *commands = ctxt_read_file(path);
  assert_non_null(commands);
  assert_null(strstr(commands, CTXD_TEST_SOURCE_DIR "/include"));
  snprintf(path, sizeof path, "%s/include", s->prefix);
  holds(commands, path, "compile_commands.json");
  free(commands);

  /* the plugin the guide built with cc (no CMake) loads too: its flags are the host's */
  char config[PATH_MAX], dir_env[PATH_MAX];
  snprintf(path, sizeof path, "%s/bin/ctxd", s->prefix);
  snprintf(config, sizeof config, "%s/hello.json", s->work);
  snprintf(dir_env, sizeof dir_env, "CTXD_PLUGIN_DIR=%s/hello-plugin", s->work);
  snprintf(want, sizeof want, "loaded plugin 'hello' 1.0.0 from %s/hello-plugin/ctxd_hello.so", s->work);
  char *argv[] = {path, "check-config", "--config", config, NULL};
  char *env[] = {dir_env, NULL};
  ctxt_proc_t p;
  ctxt_proc_spawn(&p, argv, env);
  assert_true(ctxt_proc_wait_exit(&p, 30000));
  holds(p.out, want, "check-config of the plugin built with cc");
  assert_true(WIFEXITED(p.status));
  assert_int_equal(WEXITSTATUS(p.status), 0);
  ctxt_proc_free(&p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(snippets_are_the_example),
      cmocka_unit_test_setup_teardown(guide_commands_build_and_run_hello, sdk_setup, sdk_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
