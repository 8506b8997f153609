#include "cli.h"

#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ctxd/errno.h>

#include "fail.h"

/* Every option, in the order errors name them; a command's table row says which it takes. */
enum {
  O_CONFIG,
  O_TYPE,
  O_MESSAGE,
  O_ENDPOINT,
  O_LIMIT,
  O_DOT,
  O_OUTPUT,
  O_MESSAGE_TYPE,
  O_EXCEPTION_TYPE,
  O_STATUS,
  O_SINCE,
  O_UNTIL,
  O_MESSAGE_ID,
  O_GROUP,
  O_OFFSET,
  O_BY,
  O_JSON,
  O_INCLUDE_COMMANDS,
  O_HELP,
  O_VERSION,
  NOPTIONS
};

/* Long-only options return 256 + their index, above any short option's character. */
static const struct option options[NOPTIONS + 1] = {
    [O_CONFIG] = {"config", required_argument, NULL, 'c'},
    [O_TYPE] = {"type", required_argument, NULL, 256 + O_TYPE},
    [O_MESSAGE] = {"message", required_argument, NULL, 256 + O_MESSAGE},
    [O_ENDPOINT] = {"endpoint", required_argument, NULL, 256 + O_ENDPOINT},
    [O_LIMIT] = {"limit", required_argument, NULL, 256 + O_LIMIT},
    [O_DOT] = {"dot", no_argument, NULL, 256 + O_DOT},
    [O_OUTPUT] = {"output", required_argument, NULL, 256 + O_OUTPUT},
    [O_MESSAGE_TYPE] = {"message-type", required_argument, NULL, 256 + O_MESSAGE_TYPE},
    [O_EXCEPTION_TYPE] = {"exception-type", required_argument, NULL, 256 + O_EXCEPTION_TYPE},
    [O_STATUS] = {"status", required_argument, NULL, 256 + O_STATUS},
    [O_SINCE] = {"since", required_argument, NULL, 256 + O_SINCE},
    [O_UNTIL] = {"until", required_argument, NULL, 256 + O_UNTIL},
    [O_MESSAGE_ID] = {"message-id", required_argument, NULL, 256 + O_MESSAGE_ID},
    [O_GROUP] = {"group", required_argument, NULL, 256 + O_GROUP},
    [O_OFFSET] = {"offset", required_argument, NULL, 256 + O_OFFSET},
    [O_BY] = {"by", required_argument, NULL, 256 + O_BY},
    [O_JSON] = {"json", no_argument, NULL, 256 + O_JSON},
    [O_INCLUDE_COMMANDS] = {"include-commands", no_argument, NULL, 256 + O_INCLUDE_COMMANDS},
    [O_HELP] = {"help", no_argument, NULL, 'h'},
    [O_VERSION] = {"version", no_argument, NULL, 'V'},
    [NOPTIONS] = {NULL, 0, NULL, 0}};

/* What the value of an option is, as the usage texts call it. */
static const char *const value_names[NOPTIONS] = {[O_CONFIG] = "FILE",
                                                  [O_TYPE] = "NS.vN:TYPE",
                                                  [O_MESSAGE] = "JSON|@FILE",
                                                  [O_ENDPOINT] = "NAME",
                                                  [O_LIMIT] = "N",
                                                  [O_OUTPUT] = "FILE",
                                                  [O_MESSAGE_TYPE] = "NS:TYPE",
                                                  [O_EXCEPTION_TYPE] = "TYPE",
                                                  [O_STATUS] = "STATUS",
                                                  [O_SINCE] = "TIME",
                                                  [O_UNTIL] = "TIME",
                                                  [O_MESSAGE_ID] = "UUID",
                                                  [O_GROUP] = "GROUP",
                                                  [O_OFFSET] = "N",
                                                  [O_BY] = "NAME"};

/* "-" returns the command words in place, even with POSIXLY_CORRECT set, so options may
 * come before and after them; ":" reports a missing value as ':' and silences getopt. */
#define SHORT_OPTIONS "-:c:hV"

#define BIT(o) (1u << (o))

#define EXIT_CODES "exit codes: 0 ok, 1 runtime failure, 2 usage error, 3 configuration refused\n"

/* The options that select failed messages, and what every errors command says about them. */
#define FILTERS                                                                                              \
  (BIT(O_ENDPOINT) | BIT(O_MESSAGE_TYPE) | BIT(O_EXCEPTION_TYPE) | BIT(O_STATUS) | BIT(O_SINCE) |            \
   BIT(O_UNTIL) | BIT(O_MESSAGE_ID) | BIT(O_GROUP))
#define ERRORS_USAGE                                                                                         \
  "usage: ctxd errors list|groups --config FILE [FILTERS] [--limit N] [--offset N] [--json]\n"               \
  "       ctxd errors show ID --config FILE [--json]\n"                                                      \
  "       ctxd errors retry|archive|unarchive (ID... | FILTERS) --config FILE [--by NAME] [--json]\n"        \
  "       ctxd errors replay --config FILE --endpoint NAME [--limit N]\n"                                    \
  "  The failed-message store (ctxd.failed_messages, what the hosts ingest from the _error\n"                \
  "  queues): list its messages, newest failure first, or their groups (endpoint, message\n"                 \
  "  type, exception type); show one with its headers, body and action log; retry (back\n"                   \
  "  to its endpoint through the outbox), archive or unarchive the ones given by id or\n"                    \
  "  selected by FILTERS, recorded as done by NAME (default $USER@cli).\n"                                   \
  "  FILTERS: --endpoint NAME --message-type NS:TYPE --exception-type TYPE --message-id UUID\n"              \
  "  --group GROUP --since TIME --until TIME (ISO 8601, on the last failure) --status STATUS\n"              \
  "  (open (the default: unresolved and retry_requested), unresolved, retry_requested,\n"                    \
  "  resolved, archived or all). --json prints the JSON the admin API answers.\n"                            \
  "  replay moves messages from NAME_error back to NAME without their fault headers (all,\n"                 \
  "  or at most N), each removed from NAME_error only once the broker confirmed its copy,\n"                 \
  "  and prints how many it moved.\n"

/* The options that select archived outbox rows. */
#define ARCHIVE_FILTERS (BIT(O_MESSAGE_TYPE) | BIT(O_SINCE) | BIT(O_UNTIL) | BIT(O_MESSAGE_ID))
#define OUTBOX_USAGE                                                                                         \
  "usage: ctxd outbox resend (ID... | ARCHIVE_FILTERS) --config FILE [--limit N] [--include-commands]\n"     \
  "  Sends archived events (ctxd.outbox_archive: what the hosts published) again: the ones\n"                \
  "  given by archive row id, or selected by ARCHIVE_FILTERS (all of them, or the first N).\n"               \
  "  They go back into the outbox as they were sent (message id, headers, correlation id),\n"                \
  "  and a running host's relay publishes them: a consumer that handled one before drops the\n"              \
  "  copy by its message id, unless its inbox forgot the id (rows older than\n"                              \
  "  inbox.retention_s are counted in a warning). Commands sent to an endpoint are sent again\n"             \
  "  only with --include-commands (a command may ask another system to act twice, e.g. to\n"                 \
  "  refund again); rows archived before runtime migration 14 only by id, as commands (they may\n"           \
  "  be replies). Replies and rows the broker refused are never sent again. Prints how many\n"               \
  "  rows it queued and how many it left out.\n"                                                             \
  "  ARCHIVE_FILTERS: --message-type NS.vN:TYPE --message-id UUID --since TIME --until TIME\n"               \
  "  (ISO 8601, on when the row was sent; without a zone: UTC).\n"

/* -h and -V go with every command, so no row names them. */
static const struct {
  const char *name;
  const char *verb; /* second word, or NULL */
  ctxd__cmd_t cmd;
  unsigned takes; /* BIT(O_...) of the options it takes */
  unsigned needs; /* of those, the ones it cannot do without */
  const char *usage;
  int ids; /* ids after the verb: 0 none, 1 exactly one, 2 any number */
} commands[] = {
    {"run", NULL, CTXD__CMD_RUN, BIT(O_CONFIG), BIT(O_CONFIG),
     "usage: ctxd run --config FILE\n"
     "  Runs the host: loads the plugins FILE names, applies lacking migrations (with\n"
     "  database.migrate \"check\": refuses to start when any lacks), declares the topology,\n"
     "  consumes until SIGINT or SIGTERM, then drains and exits 0.\n",
     0},
    {"check-config", NULL, CTXD__CMD_CHECK_CONFIG, BIT(O_CONFIG), BIT(O_CONFIG),
     "usage: ctxd check-config --config FILE\n"
     "  Validates FILE, loads and checks its plugins and prints the topology. Connects to\n"
     "  nothing.\n",
     0},
    {"migrate", NULL, CTXD__CMD_MIGRATE, BIT(O_CONFIG), BIT(O_CONFIG),
     "usage: ctxd migrate --config FILE\n"
     "  Applies the runtime's and the plugins' migrations to the database, then exits.\n"
     "  Run it as the role that owns the schemas.\n",
     0},
    {"topology", NULL, CTXD__CMD_TOPOLOGY, BIT(O_CONFIG) | BIT(O_DOT), BIT(O_CONFIG) | BIT(O_DOT),
     "usage: ctxd topology --dot --config FILE\n"
     "  Prints the exchanges, queues and bindings the host declares, as Graphviz (--dot,\n"
     "  the only format so far): ctxd topology --dot -c FILE | dot -Tsvg > topology.svg.\n"
     "  Connects to nothing.\n",
     0},
    {"send", NULL, CTXD__CMD_SEND, BIT(O_CONFIG) | BIT(O_TYPE) | BIT(O_MESSAGE) | BIT(O_ENDPOINT),
     BIT(O_CONFIG) | BIT(O_TYPE) | BIT(O_MESSAGE),
     "usage: ctxd send --config FILE --type NS.vN:TYPE --message JSON|@FILE [--endpoint NAME]\n"
     "  Validates the message against its contract and publishes it in a MassTransit\n"
     "  envelope to the type's exchange (or sends it to endpoint NAME), waiting for the\n"
     "  broker's confirm. Prints the new message id.\n",
     0},
    {"errors", "replay", CTXD__CMD_ERRORS_REPLAY, BIT(O_CONFIG) | BIT(O_ENDPOINT) | BIT(O_LIMIT),
     BIT(O_CONFIG) | BIT(O_ENDPOINT), ERRORS_USAGE, 0},
    {"errors", "list", CTXD__CMD_ERRORS_LIST,
     BIT(O_CONFIG) | FILTERS | BIT(O_LIMIT) | BIT(O_OFFSET) | BIT(O_JSON), BIT(O_CONFIG), ERRORS_USAGE, 0},
    {"errors", "groups", CTXD__CMD_ERRORS_GROUPS,
     BIT(O_CONFIG) | FILTERS | BIT(O_LIMIT) | BIT(O_OFFSET) | BIT(O_JSON), BIT(O_CONFIG), ERRORS_USAGE, 0},
    {"errors", "show", CTXD__CMD_ERRORS_SHOW, BIT(O_CONFIG) | BIT(O_JSON), BIT(O_CONFIG), ERRORS_USAGE, 1},
    {"errors", "retry", CTXD__CMD_ERRORS_RETRY, BIT(O_CONFIG) | FILTERS | BIT(O_BY) | BIT(O_JSON),
     BIT(O_CONFIG), ERRORS_USAGE, 2},
    {"errors", "archive", CTXD__CMD_ERRORS_ARCHIVE, BIT(O_CONFIG) | FILTERS | BIT(O_BY) | BIT(O_JSON),
     BIT(O_CONFIG), ERRORS_USAGE, 2},
    {"errors", "unarchive", CTXD__CMD_ERRORS_UNARCHIVE, BIT(O_CONFIG) | FILTERS | BIT(O_BY) | BIT(O_JSON),
     BIT(O_CONFIG), ERRORS_USAGE, 2},
    {"outbox", "resend", CTXD__CMD_OUTBOX_RESEND,
     BIT(O_CONFIG) | ARCHIVE_FILTERS | BIT(O_LIMIT) | BIT(O_INCLUDE_COMMANDS), BIT(O_CONFIG), OUTBOX_USAGE,
     2},
    {"contracts", "export", CTXD__CMD_CONTRACTS_EXPORT, BIT(O_OUTPUT), 0,
     "usage: ctxd contracts export [--output FILE]\n"
     "  Writes every contract and version built into this host as an AsyncAPI 2.6.0\n"
     "  document (JSON) to FILE, or to stdout: one channel per RabbitMQ exchange, each\n"
     "  message with its JSON Schema, URNs and content type. Connects to nothing.\n",
     0},
    {"version", NULL, CTXD__CMD_VERSION, 0, 0,
     "usage: ctxd version\n"
     "  Prints the host version and the plugin ABI version (as ctxd -V does).\n",
     0},
    {"help", NULL, CTXD__CMD_HELP, 0, 0,
     "usage: ctxd help [COMMAND]\n"
     "  Prints the commands, or COMMAND's usage (as ctxd COMMAND -h does).\n",
     0},
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

const char *ctxd__cli_command(size_t i) { return i < NCOMMANDS ? commands[i].name : NULL; }

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
         "  send --config FILE --type NS.vN:TYPE --message JSON|@FILE [--endpoint NAME]\n"
         "                                validate and publish a message\n"
         "  errors list|groups --config FILE [FILTERS] [--limit N] [--offset N] [--json]\n"
         "                                failed messages in the store, or their groups\n"
         "  errors show ID --config FILE [--json]\n"
         "                                one failed message: headers, body, action log\n"
         "  errors retry|archive|unarchive (ID... | FILTERS) --config FILE [--by NAME] [--json]\n"
         "                                act on failed messages (see 'ctxd help errors')\n"
         "  errors replay --config FILE --endpoint NAME [--limit N]\n"
         "                                move messages from NAME_error back to NAME\n"
         "  outbox resend (ID... | ARCHIVE_FILTERS) --config FILE [--limit N] [--include-commands]\n"
         "                                send archived events again (same message ids)\n"
         "  contracts export [--output FILE]\n"
         "                                write the contracts as an AsyncAPI document\n"
         "  version                       print the host and plugin ABI versions\n"
         "  help [COMMAND]                print this text, or a command's\n"
         "\n"
         "options (a command refuses those its usage does not show):\n"
         "  -c, --config FILE   host configuration (JSON)\n"
         "  -h, --help          help (of the command given)\n"
         "  -V, --version       same as 'version'\n"
         "  A value follows its option as the next word or after '=': --limit 5, --limit=5.\n"
         "\n" EXIT_CODES;
}

/* The index of the option getopt_long returned as c, or NOPTIONS. */
static int option_index(int c) {
  int o = 0;
  while (o < NOPTIONS && options[o].val != c) o++;
  return o;
}

/* The command line's words, as they come: the command, its verb, help's COMMAND. */
typedef struct {
  size_t k; /* the command's row, NCOMMANDS before the first word */
  int words;
} words_t;

static int take_word(words_t *w, ctxd__cli_t *out, const char *a, char *err, size_t errlen) {
  if (w->words == 0) {
    for (w->k = 0; w->k < NCOMMANDS; w->k++)
      if (strcmp(a, commands[w->k].name) == 0) break;
    if (w->k == NCOMMANDS)
      return ctxd__fail(err, errlen, CTXD_EINVAL, "unknown command '%s' (see 'ctxd help')", a);
  } else if (w->words == 1 && commands[w->k].verb != NULL) {
    /* the rows of one command are next to each other: find its row for this verb */
    const char *name = commands[w->k].name;
    size_t k = w->k;
    while (k < NCOMMANDS && strcmp(commands[k].name, name) == 0 && strcmp(commands[k].verb, a) != 0) k++;
    if (k == NCOMMANDS || strcmp(commands[k].name, name) != 0)
      return ctxd__fail(err, errlen, CTXD_EINVAL, "unknown subcommand '%s' (see 'ctxd help')", a);
    w->k = k;
  } else if (w->words == 1 && commands[w->k].cmd == CTXD__CMD_HELP) {
    out->help_for = a;
  } else if (w->words >= 2 && commands[w->k].ids > 0) {
    char *end;
    long long id = strtoll(a, &end, 10);
    if (*end != '\0' || id < 1)
      return ctxd__fail(err, errlen, CTXD_EINVAL, "'%s' is not the id of a %s", a,
                        commands[w->k].cmd == CTXD__CMD_OUTBOX_RESEND ? "row of the outbox archive"
                                                                      : "failed message");
    if (out->nids == (commands[w->k].ids == 1 ? 1 : CTXD__CLI_MAX_IDS))
      return ctxd__fail(err, errlen, CTXD_EINVAL, "too many ids (at most %d; select by a filter instead)",
                        commands[w->k].ids == 1 ? 1 : CTXD__CLI_MAX_IDS);
    out->ids[out->nids++] = id;
  } else {
    return ctxd__fail(err, errlen, CTXD_EINVAL, "unexpected argument '%s' (see 'ctxd help')", a);
  }
  w->words++;
  return 0;
}

static int needs_value(int o, char *err, size_t errlen) {
  return ctxd__fail(err, errlen, CTXD_EINVAL, "option --%s needs a value (%s)", options[o].name,
                    value_names[o]);
}

/* Stores the value of option o; an empty one is as good as none. */
static int take_value(ctxd__cli_t *out, int o, const char *v, char *err, size_t errlen) {
  if (v[0] == '\0') return needs_value(o, err, errlen);
  char *end;
  switch (o) {
  case O_CONFIG: out->config_path = v; break;
  case O_TYPE: out->type = v; break;
  case O_MESSAGE: out->message = v; break;
  case O_ENDPOINT: out->endpoint = v; break;
  case O_OUTPUT: out->output = v; break;
  case O_MESSAGE_TYPE: out->message_type = v; break;
  case O_EXCEPTION_TYPE: out->exception_type = v; break;
  case O_STATUS: out->status = v; break;
  case O_SINCE: out->since = v; break;
  case O_UNTIL: out->until = v; break;
  case O_MESSAGE_ID: out->message_id = v; break;
  case O_GROUP: out->group = v; break;
  case O_BY: out->by = v; break;
  case O_OFFSET:
    out->offset = strtol(v, &end, 10);
    if (*end != '\0' || out->offset < 0)
      return ctxd__fail(err, errlen, CTXD_EINVAL, "--offset takes a whole number, not '%s'", v);
    break;
  default: /* O_LIMIT */
    out->limit = strtol(v, &end, 10);
    if (*end != '\0' || out->limit < 1)
      return ctxd__fail(err, errlen, CTXD_EINVAL, "--limit takes a whole number above 0, not '%s'", v);
  }
  return 0;
}

/* The message for getopt_long's return c, '?' or ':', right after it returned. */
static int option_error(int c, char **argv, char *err, size_t errlen) {
  int o = option_index(optopt);
  if (c == ':') return needs_value(o, err, errlen); /* the last word; optopt is the option */
  if (o < NOPTIONS) /* a known option: only --help=x, --version=x or --dot=x end here */
    return ctxd__fail(err, errlen, CTXD_EINVAL, "option --%s takes no value", options[o].name);
  if (optopt != 0)
    return ctxd__fail(err, errlen, CTXD_EINVAL, "unknown option '-%c' (see 'ctxd help')", optopt);
  return ctxd__fail(err, errlen, CTXD_EINVAL, "unknown option '%s' (see 'ctxd help')", argv[optind - 1]);
}

/* getopt_long also takes unique abbreviations (--conf): the whole name only, as before
 * getopt, so an option added later cannot change what a command line means. Called right
 * after getopt_long returned the long option o, with its value (or NULL) in value. */
static int whole_name(char **argv, int o, const char *value, char *err, size_t errlen) {
  /* a value given as the next word is at optind - 1, the option before it */
  const char *token = argv[optind - (value != NULL && value == argv[optind - 1] ? 2 : 1)];
  size_t n = strcspn(token + 2, "=");
  if (strncmp(token + 2, options[o].name, n) == 0 && options[o].name[n] == '\0') return 0;
  return ctxd__fail(err, errlen, CTXD_EINVAL, "unknown option '%.*s' (see 'ctxd help')", (int)(n + 2), token);
}

int ctxd__cli_parse(ctxd__cli_t *out, int argc, char **argv, char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  out->cmd = CTXD__CMD_HELP;
  words_t w = {NCOMMANDS, 0};
  unsigned seen = 0; /* BIT(O_...) of the options given, but -h and -V */
  int help = 0, c, longindex;

  optind = 0; /* glibc: a full reset, so every call parses afresh */
  while ((longindex = -1, c = getopt_long(argc, argv, SHORT_OPTIONS, options, &longindex)) != -1) {
    if (c == 1) { /* a word, in optarg */
      if (take_word(&w, out, optarg, err, errlen) != 0) return CTXD_EINVAL;
      continue;
    }
    if (c == '?' || c == ':') return option_error(c, argv, err, errlen);
    int o = option_index(c);
    if (longindex >= 0 && whole_name(argv, o, optarg, err, errlen) != 0) return CTXD_EINVAL;
    if (o == O_VERSION) {
      out->cmd = CTXD__CMD_VERSION;
      return 0;
    }
    if (o == O_HELP) {
      help = 1;
      continue;
    }
    seen |= BIT(o);
    if (o == O_DOT)
      out->dot = 1;
    else if (o == O_JSON)
      out->json = 1;
    else if (o == O_INCLUDE_COMMANDS)
      out->include_commands = 1;
    else if (take_value(out, o, optarg, err, errlen) != 0)
      return CTXD_EINVAL;
  }
  /* what follows "--" is words only */
  for (; optind < argc; optind++)
    if (take_word(&w, out, argv[optind], err, errlen) != 0) return CTXD_EINVAL;

  if (help) {
    out->cmd = CTXD__CMD_HELP;
    out->help_for = w.words > 0 ? commands[w.k].name : NULL;
    return 0;
  }
  if (w.words == 0) return ctxd__fail(err, errlen, CTXD_EINVAL, "no command given (see 'ctxd help')");
  const char *name = commands[w.k].name, *verb = commands[w.k].verb;
  out->cmd = commands[w.k].cmd;
  if (verb != NULL && w.words < 2)
    return ctxd__fail(err, errlen, CTXD_EINVAL, "'%s' needs a subcommand (see 'ctxd help')", name);
  char full[64]; /* the command as typed: "errors replay" */
  snprintf(full, sizeof full, "%s%s%s", name, verb ? " " : "", verb ? verb : "");
  for (int o = 0; o < NOPTIONS; o++)
    if (seen & BIT(o) & ~commands[w.k].takes)
      return ctxd__fail(err, errlen, CTXD_EINVAL, "'%s' does not take --%s (see 'ctxd help %s')", full,
                        options[o].name, name);
  for (int o = 0; o < NOPTIONS; o++)
    if (commands[w.k].needs & BIT(o) & ~seen)
      return ctxd__fail(err, errlen, CTXD_EINVAL, "'%s' needs --%s%s%s (see 'ctxd help %s')", full,
                        options[o].name, value_names[o] ? " " : "", value_names[o] ? value_names[o] : "",
                        name);
  if (commands[w.k].ids == 1 && out->nids == 0)
    return ctxd__fail(err, errlen, CTXD_EINVAL, "'%s' needs the ID of a failed message (see 'ctxd help %s')",
                      full, name);
  /* an action on everything open is never what an empty command line meant */
  if (commands[w.k].ids == 2 && out->nids == 0 && !(seen & (FILTERS | ARCHIVE_FILTERS)))
    return ctxd__fail(err, errlen, CTXD_EINVAL, "'%s' needs IDs%s or a filter (see 'ctxd help %s')", full,
                      out->cmd == CTXD__CMD_OUTBOX_RESEND ? "" : ", --group", name);
  if (commands[w.k].ids == 2 && out->nids > 0 && (seen & (FILTERS | ARCHIVE_FILTERS)))
    return ctxd__fail(err, errlen, CTXD_EINVAL, "'%s' takes IDs or filters, not both (see 'ctxd help %s')",
                      full, name);
  return 0;
}
