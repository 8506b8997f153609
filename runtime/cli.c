#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ctxd/errno.h>

#define EXIT_CODES "exit codes: 0 ok, 1 runtime failure, 2 usage error, 3 configuration refused\n"

static const struct {
  const char *name;
  const char *verb; /* second word, or NULL */
  ctxd__cmd_t cmd;
  int needs_config;
  const char *usage;
} commands[] = {
    {"run", NULL, CTXD__CMD_RUN, 1,
     "usage: ctxd run --config FILE\n"
     "  Runs the host: loads the plugins FILE names, applies migrations, declares the\n"
     "  topology, consumes until SIGINT or SIGTERM, then drains and exits 0.\n"},
    {"check-config", NULL, CTXD__CMD_CHECK_CONFIG, 1,
     "usage: ctxd check-config --config FILE\n"
     "  Validates FILE, loads and checks its plugins and prints the topology. Connects to\n"
     "  nothing.\n"},
    {"migrate", NULL, CTXD__CMD_MIGRATE, 1,
     "usage: ctxd migrate --config FILE\n"
     "  Applies the runtime's and the plugins' migrations to the database, then exits.\n"},
    {"topology", NULL, CTXD__CMD_TOPOLOGY, 1,
     "usage: ctxd topology --dot --config FILE\n"
     "  Prints the exchanges, queues and bindings the host declares, as Graphviz\n"
     "  (ctxd topology --dot -c FILE | dot -Tsvg > topology.svg). Connects to nothing.\n"},
    {"send", NULL, CTXD__CMD_SEND, 1,
     "usage: ctxd send --config FILE --type NS.vN:TYPE --message JSON|@FILE [--endpoint NAME]\n"
     "  Validates the message against its contract and publishes it in a MassTransit\n"
     "  envelope to the type's exchange (or sends it to endpoint NAME), waiting for the\n"
     "  broker's confirm. Prints the new message id.\n"},
    {"errors", "replay", CTXD__CMD_ERRORS_REPLAY, 1,
     "usage: ctxd errors replay --config FILE --endpoint NAME [--limit N]\n"
     "  Moves messages from NAME_error back to NAME without their fault headers (all, or\n"
     "  at most N), each removed from NAME_error only once the broker confirmed its copy.\n"
     "  Prints how many it moved.\n"},
    {"version", NULL, CTXD__CMD_VERSION, 0,
     "usage: ctxd version\n  Prints the host version and the plugin ABI version.\n"},
    {"help", NULL, CTXD__CMD_HELP, 0, "usage: ctxd help [COMMAND]\n"},
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

const char *ctxd__cli_usage(const char *command) {
  for (size_t k = 0; command != NULL && k < NCOMMANDS; k++)
    if (strcmp(command, commands[k].name) == 0) return commands[k].usage;
  return "usage: ctxd <command> [options]\n"
         "\n"
         "commands:\n"
         "  run --config FILE             run the host with the plugins FILE names\n"
         "  check-config --config FILE    validate FILE and its plugins, print the topology\n"
         "  migrate --config FILE         apply every migration, then exit\n"
         "  topology --dot --config FILE  print the topology as Graphviz\n"
         "  send --config FILE --type T --message JSON [--endpoint NAME]\n"
         "                                validate and publish a message\n"
         "  errors replay --config FILE --endpoint NAME [--limit N]\n"
         "                                move messages from NAME_error back to NAME\n"
         "  version                       print the host and plugin ABI versions\n"
         "  help [COMMAND]                print this text, or a command's\n"
         "\n"
         "options:\n"
         "  -c, --config FILE   host configuration (JSON)\n"
         "  -h, --help          help (of the command given)\n"
         "  -V, --version       same as 'version'\n"
         "\n" EXIT_CODES;
}

static int fail(char *err, size_t errlen, const char *fmt, const char *arg) {
  snprintf(err, errlen, fmt, arg);
  return CTXD_EINVAL;
}

/* Reads the value of option argv[*i] into *value. */
static int option_value(int argc, char **argv, int *i, const char **value, char *err, size_t errlen) {
  if (*i + 1 >= argc) return fail(err, errlen, "option %s needs an argument", argv[*i]);
  *value = argv[++*i];
  return 0;
}

int ctxd__cli_parse(ctxd__cli_t *out, int argc, char **argv, char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  out->cmd = CTXD__CMD_HELP;
  int words = 0; /* command words seen: 1 for the command, 2 with its verb */
  size_t k = NCOMMANDS;
  int help = 0;

  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v;
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      help = 1;
    } else if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) {
      out->cmd = CTXD__CMD_VERSION;
      return 0;
    } else if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) {
      if (option_value(argc, argv, &i, &out->config_path, err, errlen) != 0) return CTXD_EINVAL;
    } else if (strncmp(a, "--config=", 9) == 0) {
      out->config_path = a + 9;
      if (*out->config_path == '\0') return fail(err, errlen, "option %s needs a FILE", "--config");
    } else if (strcmp(a, "--endpoint") == 0) {
      if (option_value(argc, argv, &i, &out->endpoint, err, errlen) != 0) return CTXD_EINVAL;
    } else if (strcmp(a, "--limit") == 0) {
      if (option_value(argc, argv, &i, &v, err, errlen) != 0) return CTXD_EINVAL;
      char *end;
      out->limit = strtol(v, &end, 10);
      if (*v == '\0' || *end != '\0' || out->limit < 1)
        return fail(err, errlen, "--limit takes a whole number above 0, not '%s'", v);
    } else if (strcmp(a, "--type") == 0) {
      if (option_value(argc, argv, &i, &out->type, err, errlen) != 0) return CTXD_EINVAL;
    } else if (strcmp(a, "--message") == 0) {
      if (option_value(argc, argv, &i, &out->message, err, errlen) != 0) return CTXD_EINVAL;
    } else if (strcmp(a, "--dot") == 0) {
      out->dot = 1;
    } else if (a[0] == '-') {
      return fail(err, errlen, "unknown option '%s' (see 'ctxd help')", a);
    } else if (words == 1 && commands[k].verb != NULL) {
      if (strcmp(a, commands[k].verb) != 0)
        return fail(err, errlen, "unknown subcommand '%s' (see 'ctxd help')", a);
      words = 2;
    } else if (words == 1 && commands[k].cmd == CTXD__CMD_HELP && out->help_for == NULL) {
      out->help_for = a;
    } else if (words > 0) {
      return fail(err, errlen, "unexpected argument '%s' (see 'ctxd help')", a);
    } else {
      for (k = 0; k < NCOMMANDS; k++)
        if (strcmp(a, commands[k].name) == 0) break;
      if (k == NCOMMANDS) return fail(err, errlen, "unknown command '%s' (see 'ctxd help')", a);
      words = 1;
    }
  }

  if (help) {
    out->cmd = CTXD__CMD_HELP;
    out->help_for = words > 0 ? commands[k].name : NULL;
    return 0;
  }
  if (words == 0) return fail(err, errlen, "%s", "no command given (see 'ctxd help')");
  out->cmd = commands[k].cmd;
  if (commands[k].verb != NULL && words < 2)
    return fail(err, errlen, "'%s' needs a subcommand (see 'ctxd help')", commands[k].name);
  if (commands[k].needs_config && out->config_path == NULL)
    return fail(err, errlen, "'%s' needs --config FILE", commands[k].name);
  if (out->cmd == CTXD__CMD_ERRORS_REPLAY && out->endpoint == NULL)
    return fail(err, errlen, "%s", "'errors replay' needs --endpoint NAME");
  if (out->cmd == CTXD__CMD_SEND && (out->type == NULL || out->message == NULL))
    return fail(err, errlen, "%s", "'send' needs --type TYPE and --message JSON");
  if (out->cmd == CTXD__CMD_TOPOLOGY && !out->dot)
    return fail(err, errlen, "%s", "'topology' needs --dot (the only output format)");
  return 0;
}
