/* Command-line parsing for the ctxd executable: no I/O, so it is unit-tested. */
#ifndef CTXD_RUNTIME_CLI_H
#define CTXD_RUNTIME_CLI_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
  CTXD__CMD_HELP = 0,
  CTXD__CMD_VERSION,
  CTXD__CMD_RUN,
  CTXD__CMD_CHECK_CONFIG,
  CTXD__CMD_ERRORS_REPLAY,
  CTXD__CMD_MIGRATE,
  CTXD__CMD_TOPOLOGY,
  CTXD__CMD_SEND,
  CTXD__CMD_CONTRACTS_EXPORT,
  CTXD__CMD_ERRORS_LIST,
  CTXD__CMD_ERRORS_GROUPS,
  CTXD__CMD_ERRORS_SHOW,
  CTXD__CMD_ERRORS_RETRY,
  CTXD__CMD_ERRORS_ARCHIVE,
  CTXD__CMD_ERRORS_UNARCHIVE,
  CTXD__CMD_OUTBOX_RESEND
} ctxd__cmd_t;

/* Most ids one `ctxd errors retry|archive|unarchive` or `ctxd outbox resend` takes; more:
 * select by a filter. */
#define CTXD__CLI_MAX_IDS 256

typedef struct {
  ctxd__cmd_t cmd;
  const char *config_path; /* borrowed from argv */
  const char *endpoint;    /* errors replay, the errors filters: borrowed from argv */
  long limit;              /* errors replay, outbox resend: 0 = all; errors list, groups: 0 = the default */
  /* the errors filters, --by and --json (borrowed from argv, NULL when not given), and the
   * ids of errors show (one), retry, archive and unarchive, and of outbox resend (archive
   * rows) */
  const char *message_type, *exception_type, *status, *since, *until, *message_id, *group, *by;
  long offset;
  int json;
  int include_commands; /* outbox resend: commands too, not only events */
  int64_t ids[CTXD__CLI_MAX_IDS];
  size_t nids;
  int dot;              /* topology: Graphviz (the only format so far) */
  const char *type;     /* send: message type; borrowed from argv */
  const char *message;  /* send: the message JSON or @FILE; borrowed from argv */
  const char *help_for; /* help: the command asked about, NULL for all */
  const char *output;   /* contracts export: the file, NULL for stdout; borrowed from argv */
} ctxd__cli_t;

/* Exit codes of the ctxd executable (documented in docs/operations.md). */
enum {
  CTXD__EXIT_OK = 0,
  CTXD__EXIT_FAILURE = 1, /* runtime failure: a server lost for good, a plugin failed */
  CTXD__EXIT_USAGE = 2,   /* bad command line */
  CTXD__EXIT_CONFIG = 3   /* configuration or plugin refused before start */
};

/* Fills `out` from argv, with getopt_long: a long option's value as the next word or after
 * '=', -c FILE, options before, between or after the command's words, and only the options
 * the command takes. Returns 0, or CTXD_EINVAL with a one-line reason in `err`. Callable
 * again and again, but not from two threads at once (getopt's state is global). */
int ctxd__cli_parse(ctxd__cli_t *out, int argc, char **argv, char *err, size_t errlen);

/* Returns the first word of the i-th command ("errors" for "errors replay", as 'ctxd help'
 * takes it), or NULL past the last one; static, never freed. Lets the tests hold the docs to
 * every command. */
const char *ctxd__cli_command(size_t i);

/* Returns the static usage text of `command` ("run", ...), or of them all when command is
 * NULL or unknown; never freed. */
const char *ctxd__cli_usage(const char *command);

#endif
