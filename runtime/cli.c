#include "cli.h"

#include <stdio.h>
#include <string.h>

#include <ctxd/errno.h>

static const struct {
  const char *name;
  ctxd__cmd_t cmd;
  int needs_config;
} commands[] = {
    {"run", CTXD__CMD_RUN, 1},
    {"check-config", CTXD__CMD_CHECK_CONFIG, 1},
    {"version", CTXD__CMD_VERSION, 0},
    {"help", CTXD__CMD_HELP, 0},
};

const char *ctxd__cli_usage(void) {
  return "usage: ctxd <command> [options]\n"
         "\n"
         "commands:\n"
         "  run --config FILE           run the host with the plugins FILE names\n"
         "  check-config --config FILE  validate FILE and the plugins it loads, connect to nothing\n"
         "  version                     print the host and plugin ABI versions\n"
         "  help                        print this text\n"
         "\n"
         "options:\n"
         "  -c, --config FILE           host configuration (JSON)\n"
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
    if (strncmp(a, "--config=", 9) == 0) {
      out->config_path = a + 9;
      if (*out->config_path == '\0') return fail(err, errlen, "option %s needs a FILE", "--config");
      continue;
    }
    if (a[0] == '-') return fail(err, errlen, "unknown option '%s' (see 'ctxd help')", a);
    if (have_cmd) return fail(err, errlen, "unexpected argument '%s' (see 'ctxd help')", a);

    size_t k;
    for (k = 0; k < sizeof commands / sizeof commands[0]; k++)
      if (strcmp(a, commands[k].name) == 0) break;
    if (k == sizeof commands / sizeof commands[0])
      return fail(err, errlen, "unknown command '%s' (see 'ctxd help')", a);
    out->cmd = commands[k].cmd;
    needs_config = commands[k].needs_config;
    cmd_name = commands[k].name;
    have_cmd = 1;
  }

  if (!have_cmd) return fail(err, errlen, "%s", "no command given (see 'ctxd help')");
  if (needs_config && out->config_path == NULL)
    return fail(err, errlen, "'%s' needs --config FILE", cmd_name);
  return 0;
}
