#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ctxd/errno.h>

static const struct {
  const char *name;
  const char *verb; /* second word, or NULL */
  ctxd__cmd_t cmd;
  int needs_config;
} commands[] = {
    {"run", NULL, CTXD__CMD_RUN, 1},
    {"check-config", NULL, CTXD__CMD_CHECK_CONFIG, 1},
    {"errors", "replay", CTXD__CMD_ERRORS_REPLAY, 1},
    {"version", NULL, CTXD__CMD_VERSION, 0},
    {"help", NULL, CTXD__CMD_HELP, 0},
};

const char *ctxd__cli_usage(void) {
  return "usage: ctxd <command> [options]\n"
         "\n"
         "commands:\n"
         "  run --config FILE           run the host with the plugins FILE names\n"
         "  check-config --config FILE  validate FILE and the plugins it loads, connect to nothing\n"
         "  errors replay --config FILE --endpoint NAME [--limit N]\n"
         "                              move messages from NAME_error back to NAME\n"
         "  version                     print the host and plugin ABI versions\n"
         "  help                        print this text\n"
         "\n"
         "options:\n"
         "  -c, --config FILE           host configuration (JSON)\n"
         "  --endpoint NAME             errors replay: the endpoint\n"
         "  --limit N                   errors replay: move at most N messages (default all)\n"
         "  -h, --help                  print this text\n"
         "  -V, --version               same as 'version'\n"
         "\n"
         "exit codes: 0 ok, 1 runtime failure, 2 usage error, 3 configuration refused\n";
}

static int fail(char *err, size_t errlen, const char *fmt, const char *arg) {
  snprintf(err, errlen, fmt, arg);
  return CTXD_EINVAL;
}

int ctxd__cli_parse(ctxd__cli_t *out, int argc, char **argv, char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  out->cmd = CTXD__CMD_HELP;
  int have_cmd = 0;
  int needs_config = 0;
  const char *cmd_name = NULL;
  const char *verb = NULL;

  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      out->cmd = CTXD__CMD_HELP;
      return 0;
    }
    if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) {
      out->cmd = CTXD__CMD_VERSION;
      return 0;
    }
    if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) {
      if (i + 1 >= argc) return fail(err, errlen, "option %s needs a FILE argument", a);
      out->config_path = argv[++i];
      continue;
    }
    if (strcmp(a, "--endpoint") == 0 || strcmp(a, "--limit") == 0) {
      if (i + 1 >= argc) return fail(err, errlen, "option %s needs an argument", a);
      const char *v = argv[++i];
      if (a[2] == 'e') {
        out->endpoint = v;
        continue;
      }
      char *end;
      out->limit = strtol(v, &end, 10);
      if (*v == '\0' || *end != '\0' || out->limit < 1)
        return fail(err, errlen, "--limit takes a whole number above 0, not '%s'", v);
      continue;
    }
    if (strncmp(a, "--config=", 9) == 0) {
      out->config_path = a + 9;
      if (*out->config_path == '\0') return fail(err, errlen, "option %s needs a FILE", "--config");
      continue;
    }
    if (a[0] == '-') return fail(err, errlen, "unknown option '%s' (see 'ctxd help')", a);
    if (have_cmd == 1 && verb != NULL) {
      if (strcmp(a, verb) != 0) return fail(err, errlen, "unknown subcommand '%s' (see 'ctxd help')", a);
      have_cmd = 2;
      continue;
    }
    if (have_cmd) return fail(err, errlen, "unexpected argument '%s' (see 'ctxd help')", a);

    size_t k;
    for (k = 0; k < sizeof commands / sizeof commands[0]; k++)
      if (strcmp(a, commands[k].name) == 0) break;
    if (k == sizeof commands / sizeof commands[0])
      return fail(err, errlen, "unknown command '%s' (see 'ctxd help')", a);
    out->cmd = commands[k].cmd;
    needs_config = commands[k].needs_config;
    cmd_name = commands[k].name;
    verb = commands[k].verb;
    have_cmd = 1;
  }

  if (!have_cmd) return fail(err, errlen, "%s", "no command given (see 'ctxd help')");
  if (verb != NULL && have_cmd < 2)
    return fail(err, errlen, "'%s' needs a subcommand (see 'ctxd help')", cmd_name);
  if (out->cmd == CTXD__CMD_ERRORS_REPLAY && out->endpoint == NULL)
    return fail(err, errlen, "%s", "'errors replay' needs --endpoint NAME");
  if (needs_config && out->config_path == NULL)
    return fail(err, errlen, "'%s' needs --config FILE", cmd_name);
  return 0;
}
