/* Command-line parsing of the ctxd executable, and its usage texts against the docs. */
#include "testsupport.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ctxd/errno.h>

#include "cli.h"

static int parse(ctxd__cli_t *cli, char *err, size_t errlen, int argc, ...) {
  char *argv[16];
  va_list ap;
  va_start(ap, argc);
  for (int i = 0; i < argc; i++) argv[i] = va_arg(ap, char *);
  va_end(ap);
  argv[argc] = NULL;
  err[0] = '\0';
  return ctxd__cli_parse(cli, argc, argv, err, errlen);
}

/* Parses and expects CTXD_EINVAL with exactly the message want. */
#define assert_refused(want, argc, ...)                                                                      \
  do {                                                                                                       \
    ctxd__cli_t cli_;                                                                                        \
    char err_[256];                                                                                          \
    assert_int_equal(parse(&cli_, err_, sizeof err_, argc, __VA_ARGS__), CTXD_EINVAL);                       \
    assert_string_equal(err_, want);                                                                         \
  } while (0)

static void run_with_config(void **state) {
  (void)state;
  ctxd__cli_t cli;
  char err[256];
  assert_int_equal(parse(&cli, err, sizeof err, 4, "ctxd", "run", "--config", "a.json"), 0);
  assert_int_equal(cli.cmd, CTXD__CMD_RUN);
  assert_string_equal(cli.config_path, "a.json");
  assert_int_equal(parse(&cli, err, sizeof err, 3, "ctxd", "--config=b.json", "check-config"), 0);
  assert_int_equal(cli.cmd, CTXD__CMD_CHECK_CONFIG);
  assert_string_equal(cli.config_path, "b.json");
  assert_int_equal(parse(&cli, err, sizeof err, 4, "ctxd", "run", "-c", "c.json"), 0);
  assert_string_equal(cli.config_path, "c.json");
  assert_int_equal(parse(&cli, err, sizeof err, 3, "ctxd", "-cd.json", "run"), 0);
  assert_string_equal(cli.config_path, "d.json");
  assert_int_equal(parse(&cli, err, sizeof err, 4, "ctxd", "-c", "e.json", "migrate"), 0);
  assert_int_equal(cli.cmd, CTXD__CMD_MIGRATE);
  assert_string_equal(cli.config_path, "e.json");
  /* the last one counts */
  assert_int_equal(parse(&cli, err, sizeof err, 5, "ctxd", "run", "-c", "f.json", "--config=g.json"), 0);
  assert_string_equal(cli.config_path, "g.json");
}

static void values_after_equals_or_as_next_word(void **state) {
  (void)state;
  ctxd__cli_t cli;
  char err[256];
  assert_int_equal(parse(&cli, err, sizeof err, 6, "ctxd", "errors", "replay", "--config=a.json",
                         "--endpoint=orders", "--limit=3"),
                   0);
  assert_int_equal(cli.cmd, CTXD__CMD_ERRORS_REPLAY);
  assert_string_equal(cli.config_path, "a.json");
  assert_string_equal(cli.endpoint, "orders");
  assert_int_equal(cli.limit, 3);
  assert_int_equal(parse(&cli, err, sizeof err, 9, "ctxd", "--limit", "5", "errors", "--endpoint", "billing",
                         "-c", "b.json", "replay"),
                   0);
  assert_int_equal(cli.cmd, CTXD__CMD_ERRORS_REPLAY);
  assert_string_equal(cli.endpoint, "billing");
  assert_int_equal(cli.limit, 5);
  assert_int_equal(parse(&cli, err, sizeof err, 6, "ctxd", "send", "-c", "a.json", "--type=ns.v1:Ping",
                         "--message={\"a\": 1}"),
                   0);
  assert_int_equal(cli.cmd, CTXD__CMD_SEND);
  assert_string_equal(cli.type, "ns.v1:Ping");
  assert_string_equal(cli.message, "{\"a\": 1}");
  assert_null(cli.endpoint);
  assert_int_equal(parse(&cli, err, sizeof err, 10, "ctxd", "send", "--config", "a.json", "--type",
                         "ns.v1:Ping", "--message", "@m.json", "--endpoint", "e"),
                   0);
  assert_string_equal(cli.type, "ns.v1:Ping");
  assert_string_equal(cli.message, "@m.json");
  assert_string_equal(cli.endpoint, "e");
  /* a value is taken as it is, even when it looks like an option */
  assert_int_equal(
      parse(&cli, err, sizeof err, 8, "ctxd", "send", "-c", "a.json", "--type", "T", "--message", "--dot"),
      0);
  assert_string_equal(cli.message, "--dot");
  assert_int_equal(cli.dot, 0);
}

static void options_a_command_does_not_take(void **state) {
  (void)state;
  assert_refused("'run' does not take --limit (see 'ctxd help run')", 6, "ctxd", "run", "-c", "x", "--limit",
                 "5");
  assert_refused("'run' does not take --limit (see 'ctxd help run')", 4, "ctxd", "--limit=5", "--config=x",
                 "run");
  assert_refused("'check-config' does not take --dot (see 'ctxd help check-config')", 5, "ctxd",
                 "check-config", "--dot", "-c", "x");
  assert_refused("'errors replay' does not take --type (see 'ctxd help errors')", 9, "ctxd", "errors",
                 "replay", "-c", "x", "--endpoint", "e", "--type", "T");
  assert_refused("'topology' does not take --endpoint (see 'ctxd help topology')", 6, "ctxd", "topology",
                 "--dot", "-c", "x", "--endpoint=e");
  assert_refused("'version' does not take --config (see 'ctxd help version')", 4, "ctxd", "version", "-c",
                 "x");
  assert_refused("'help' does not take --message (see 'ctxd help help')", 4, "ctxd", "help", "run",
                 "--message={}");
  /* refused before what is missing: the stray option is the likelier mistake */
  assert_refused("'migrate' does not take --limit (see 'ctxd help migrate')", 4, "ctxd", "migrate", "--limit",
                 "1");
  /* with POSIXLY_CORRECT, getopt would stop at the command word unless told otherwise */
  assert_int_equal(setenv("POSIXLY_CORRECT", "1", 1), 0);
  assert_refused("'run' does not take --limit (see 'ctxd help run')", 6, "ctxd", "run", "-c", "x", "--limit",
                 "5");
  assert_int_equal(unsetenv("POSIXLY_CORRECT"), 0);
}

static void options_a_command_needs(void **state) {
  (void)state;
  assert_refused("'run' needs --config FILE (see 'ctxd help run')", 2, "ctxd", "run");
  assert_refused("'errors replay' needs --endpoint NAME (see 'ctxd help errors')", 5, "ctxd", "errors",
                 "replay", "-c", "a.json");
  assert_refused("'send' needs --type NS.vN:TYPE (see 'ctxd help send')", 5, "ctxd", "send", "-c", "a.json",
                 "--message={}");
  assert_refused("'send' needs --message JSON|@FILE (see 'ctxd help send')", 5, "ctxd", "send", "-c",
                 "a.json", "--type=T");
  assert_refused("'topology' needs --dot (see 'ctxd help topology')", 4, "ctxd", "topology", "-c", "a.json");
  ctxd__cli_t cli;
  char err[256];
  assert_int_equal(parse(&cli, err, sizeof err, 5, "ctxd", "topology", "--dot", "-c", "a.json"), 0);
  assert_int_equal(cli.cmd, CTXD__CMD_TOPOLOGY);
  assert_int_equal(cli.dot, 1);
}

static void missing_and_bad_values(void **state) {
  (void)state;
  assert_refused("option --config needs a value (FILE)", 3, "ctxd", "run", "--config");
  assert_refused("option --config needs a value (FILE)", 3, "ctxd", "run", "-c");
  assert_refused("option --config needs a value (FILE)", 3, "ctxd", "--config=", "run");
  assert_refused("option --config needs a value (FILE)", 4, "ctxd", "run", "-c", "");
  assert_refused("option --endpoint needs a value (NAME)", 6, "ctxd", "errors", "replay", "-c", "a",
                 "--endpoint");
  assert_refused("option --type needs a value (NS.vN:TYPE)", 5, "ctxd", "send", "-c", "a", "--type=");
  assert_refused("option --message needs a value (JSON|@FILE)", 5, "ctxd", "send", "-c", "a", "--message");
  assert_refused("option --limit needs a value (N)", 7, "ctxd", "errors", "replay", "-c", "a", "--endpoint=e",
                 "--limit");
  assert_refused("--limit takes a whole number above 0, not '0'", 7, "ctxd", "errors", "replay", "-c", "a",
                 "--limit", "0");
  assert_refused("--limit takes a whole number above 0, not '2x'", 6, "ctxd", "errors", "replay", "-c", "a",
                 "--limit=2x");
  assert_refused("--limit takes a whole number above 0, not '-1'", 6, "ctxd", "errors", "replay", "-c", "a",
                 "--limit=-1");
  assert_refused("option --dot takes no value", 5, "ctxd", "topology", "-c", "a", "--dot=yes");
  assert_refused("option --help takes no value", 3, "ctxd", "run", "--help=1");
}

static void unknown_options_and_words(void **state) {
  (void)state;
  assert_refused("unknown option '--verbose' (see 'ctxd help')", 3, "ctxd", "run", "--verbose");
  assert_refused("unknown option '--verbose=2' (see 'ctxd help')", 3, "ctxd", "run", "--verbose=2");
  assert_refused("unknown option '-x' (see 'ctxd help')", 3, "ctxd", "run", "-x");
  assert_refused("unknown option '-x' (see 'ctxd help')", 3, "ctxd", "run", "-hx");
  /* getopt_long would take these abbreviations; ctxd takes whole names only */
  assert_refused("unknown option '--conf' (see 'ctxd help')", 4, "ctxd", "run", "--conf", "a.json");
  assert_refused("unknown option '--lim' (see 'ctxd help')", 7, "ctxd", "errors", "replay", "-c", "a",
                 "--endpoint=e", "--lim=3");
  assert_refused("unknown option '--d' (see 'ctxd help')", 5, "ctxd", "topology", "-c", "a", "--d");
  assert_refused("no command given (see 'ctxd help')", 1, "ctxd");
  assert_refused("no command given (see 'ctxd help')", 3, "ctxd", "-c", "a.json");
  assert_refused("unknown command 'runn' (see 'ctxd help')", 2, "ctxd", "runn");
  assert_refused("unexpected argument 'extra' (see 'ctxd help')", 5, "ctxd", "run", "-c", "x", "extra");
  assert_refused("'errors' needs a subcommand (see 'ctxd help')", 4, "ctxd", "errors", "-c", "a.json");
  assert_refused("unknown subcommand 'purge' (see 'ctxd help')", 5, "ctxd", "errors", "purge", "-c",
                 "a.json");
  /* after "--" everything is a word */
  assert_refused("unexpected argument '--limit' (see 'ctxd help')", 6, "ctxd", "run", "-c", "x", "--",
                 "--limit");
  ctxd__cli_t cli;
  char err[256];
  assert_int_equal(parse(&cli, err, sizeof err, 5, "ctxd", "-c", "x", "--", "run"), 0);
  assert_int_equal(cli.cmd, CTXD__CMD_RUN);
}

static void version_and_help(void **state) {
  (void)state;
  ctxd__cli_t cli;
  char err[256];
  assert_int_equal(parse(&cli, err, sizeof err, 2, "ctxd", "--version"), 0);
  assert_int_equal(cli.cmd, CTXD__CMD_VERSION);
  assert_int_equal(parse(&cli, err, sizeof err, 2, "ctxd", "version"), 0);
  assert_int_equal(cli.cmd, CTXD__CMD_VERSION);
  assert_int_equal(parse(&cli, err, sizeof err, 4, "ctxd", "run", "-V", "--bogus"), 0);
  assert_int_equal(cli.cmd, CTXD__CMD_VERSION);
  assert_int_equal(parse(&cli, err, sizeof err, 3, "ctxd", "run", "-h"), 0);
  assert_int_equal(cli.cmd, CTXD__CMD_HELP);
  assert_string_equal(cli.help_for, "run");
  assert_int_equal(parse(&cli, err, sizeof err, 2, "ctxd", "-h"), 0);
  assert_int_equal(cli.cmd, CTXD__CMD_HELP);
  assert_null(cli.help_for);
  /* help is asked for: what else is wrong does not matter */
  assert_int_equal(parse(&cli, err, sizeof err, 5, "ctxd", "run", "--limit", "5", "--help"), 0);
  assert_int_equal(cli.cmd, CTXD__CMD_HELP);
  assert_string_equal(cli.help_for, "run");
  assert_int_equal(parse(&cli, err, sizeof err, 5, "ctxd", "errors", "replay", "--dot", "-h"), 0);
  assert_string_equal(cli.help_for, "errors");
  assert_int_equal(parse(&cli, err, sizeof err, 3, "ctxd", "migrate", "--help"), 0);
  assert_string_equal(cli.help_for, "migrate");
  assert_non_null(strstr(ctxd__cli_usage(cli.help_for), "usage: ctxd migrate --config FILE"));
  assert_int_equal(parse(&cli, err, sizeof err, 3, "ctxd", "help", "topology"), 0);
  assert_int_equal(cli.cmd, CTXD__CMD_HELP);
  assert_string_equal(cli.help_for, "topology");
  assert_int_equal(parse(&cli, err, sizeof err, 2, "ctxd", "help"), 0);
  assert_null(cli.help_for);
  assert_non_null(strstr(ctxd__cli_usage(NULL), "exit codes: 0 ok"));
  assert_ptr_equal(ctxd__cli_usage("nonsense"), ctxd__cli_usage(NULL));
}

/* getopt keeps state between calls; every parse must start afresh, even after one that
 * stopped in the middle of "-hx" or "-Vh". */
static void repeated_calls(void **state) {
  (void)state;
  for (int round = 0; round < 3; round++) {
    ctxd__cli_t cli;
    char err[256];
    assert_refused("unknown option '-x' (see 'ctxd help')", 2, "ctxd", "-hx");
    assert_int_equal(parse(&cli, err, sizeof err, 2, "ctxd", "-Vh"), 0);
    assert_int_equal(cli.cmd, CTXD__CMD_VERSION);
    assert_int_equal(
        parse(&cli, err, sizeof err, 7, "ctxd", "send", "-c", "a", "--type=T", "--message", "{}"), 0);
    assert_int_equal(cli.cmd, CTXD__CMD_SEND);
    assert_string_equal(cli.type, "T");
    assert_int_equal(parse(&cli, err, sizeof err, 4, "ctxd", "run", "-c", "b"), 0);
    assert_int_equal(cli.cmd, CTXD__CMD_RUN);
    assert_string_equal(cli.config_path, "b");
    assert_null(cli.type);
    assert_null(cli.message);
    assert_refused("option --config needs a value (FILE)", 3, "ctxd", "run", "-c");
    assert_refused("'run' does not take --dot (see 'ctxd help run')", 5, "ctxd", "run", "-c", "b", "--dot");
  }
}

/* Every command's synopsis (the first line of its usage) is in the overview 'ctxd help'
 * prints and, as an indented line, in docs/operations.md: a command added to the table
 * and not documented, or a usage changed in one place only, fails here. */
/* The failed-message store's commands: filters, ids after the verb, --by and --json. */
static void errors_store_commands(void **state) {
  (void)state;
  ctxd__cli_t cli;
  char err[256];
  assert_int_equal(parse(&cli, err, sizeof err, 12, "ctxd", "errors", "list", "-c", "a", "--endpoint=e",
                         "--message-type=Ns:T", "--exception-type", "X", "--status=all", "--since=2026-01-01",
                         "--json"),
                   0);
  assert_int_equal(cli.cmd, CTXD__CMD_ERRORS_LIST);
  assert_string_equal(cli.message_type, "Ns:T");
  assert_string_equal(cli.exception_type, "X");
  assert_string_equal(cli.status, "all");
  assert_string_equal(cli.since, "2026-01-01");
  assert_int_equal(cli.json, 1);
  assert_int_equal(parse(&cli, err, sizeof err, 6, "ctxd", "errors", "show", "12", "-c", "a"), 0);
  assert_int_equal(cli.cmd, CTXD__CMD_ERRORS_SHOW);
  assert_int_equal(cli.nids, 1);
  assert_int_equal(cli.ids[0], 12);
  assert_int_equal(
      parse(&cli, err, sizeof err, 9, "ctxd", "errors", "retry", "3", "4", "-c", "a", "--by", "ops"), 0);
  assert_int_equal(cli.cmd, CTXD__CMD_ERRORS_RETRY);
  assert_int_equal(cli.nids, 2);
  assert_int_equal(cli.ids[1], 4);
  assert_string_equal(cli.by, "ops");
  assert_int_equal(parse(&cli, err, sizeof err, 6, "ctxd", "errors", "archive", "--group=ab12", "-c", "a"),
                   0);
  assert_int_equal(cli.cmd, CTXD__CMD_ERRORS_ARCHIVE);
  assert_string_equal(cli.group, "ab12");
  assert_refused("'errors show' needs the ID of a failed message (see 'ctxd help errors')", 5, "ctxd",
                 "errors", "show", "-c", "a");
  assert_refused("too many ids (at most 1; select by a filter instead)", 7, "ctxd", "errors", "show", "1",
                 "2", "-c", "a");
  assert_refused("'x' is not the id of a failed message", 6, "ctxd", "errors", "unarchive", "x", "-c", "a");
  assert_refused("'errors retry' needs IDs, --group or a filter (see 'ctxd help errors')", 5, "ctxd",
                 "errors", "retry", "-c", "a");
  assert_refused("'errors retry' takes IDs or filters, not both (see 'ctxd help errors')", 7, "ctxd",
                 "errors", "retry", "1", "--group=g", "-c", "a");
  assert_refused("'errors show' does not take --by (see 'ctxd help errors')", 8, "ctxd", "errors", "show",
                 "1", "-c", "a", "--by", "me");
  assert_refused("'errors list' does not take --by (see 'ctxd help errors')", 6, "ctxd", "errors", "list",
                 "-c", "a", "--by=me");
  assert_refused("--offset takes a whole number, not '-2'", 6, "ctxd", "errors", "list", "-c", "a",
                 "--offset=-2");
  assert_refused("unexpected argument '7' (see 'ctxd help')", 6, "ctxd", "errors", "list", "7", "-c", "a");
}

/* ctxd outbox resend: archive row ids, or the archive's filters (type and time range). */
static void outbox_resend_command(void **state) {
  (void)state;
  ctxd__cli_t cli;
  char err[256];
  assert_int_equal(parse(&cli, err, sizeof err, 7, "ctxd", "outbox", "resend", "5", "9", "-c", "a"), 0);
  assert_int_equal(cli.cmd, CTXD__CMD_OUTBOX_RESEND);
  assert_int_equal(cli.nids, 2);
  assert_int_equal(cli.ids[1], 9);
  assert_int_equal(parse(&cli, err, sizeof err, 9, "ctxd", "outbox", "resend", "--message-type=Ns.v1:T",
                         "--since", "2026-12-01", "--until=2026-12-02", "-c", "a"),
                   0);
  assert_string_equal(cli.message_type, "Ns.v1:T");
  assert_string_equal(cli.since, "2026-12-01");
  assert_string_equal(cli.until, "2026-12-02");
  assert_int_equal(cli.include_commands, 0); /* events only unless asked */
  assert_int_equal(
      parse(&cli, err, sizeof err, 7, "ctxd", "outbox", "resend", "5", "--include-commands", "-c", "a"), 0);
  assert_int_equal(cli.include_commands, 1);
  assert_refused("'errors list' does not take --include-commands (see 'ctxd help errors')", 6, "ctxd",
                 "errors", "list", "--include-commands", "-c", "a");
  assert_refused("'outbox resend' needs IDs or a filter (see 'ctxd help outbox')", 5, "ctxd", "outbox",
                 "resend", "-c", "a");
  assert_refused("'outbox resend' takes IDs or filters, not both (see 'ctxd help outbox')", 7, "ctxd",
                 "outbox", "resend", "1", "--message-id=x", "-c", "a");
  assert_refused("'outbox resend' does not take --group (see 'ctxd help outbox')", 6, "ctxd", "outbox",
                 "resend", "--group=g", "-c", "a");
  assert_refused("'x' is not the id of a row of the outbox archive", 6, "ctxd", "outbox", "resend", "x", "-c",
                 "a");
}

static void usages_and_docs_agree(void **state) {
  (void)state;
  char *doc = ctxt_read_file(CTXD_TEST_SOURCE_DIR "/docs/operations.md");
  const char *overview = ctxd__cli_usage(NULL);
  size_t n = 0;
  for (const char *name; (name = ctxd__cli_command(n)) != NULL; n++) {
    const char *usage = ctxd__cli_usage(name);
    assert_ptr_not_equal(usage, overview);
    assert_true(strncmp(usage, "usage: ctxd ", 12) == 0);
    const char *synopsis = usage + strlen("usage: "); /* "ctxd run --config FILE" */
    size_t len = strcspn(synopsis, "\n");
    char line[256];
    snprintf(line, sizeof line, "\n    %.*s\n", (int)len, synopsis);
    if (strstr(doc, line) == NULL)
      fail_msg("docs/operations.md lacks the line '    %.*s'", (int)len, synopsis);
    snprintf(line, sizeof line, "\n  %.*s", (int)len - 5, synopsis + 5);
    if (strstr(overview, line) == NULL) fail_msg("'ctxd help' lacks '%.*s'", (int)len - 5, synopsis + 5);
  }
  assert_true(n > 0);
  free(doc);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(run_with_config),
      cmocka_unit_test(values_after_equals_or_as_next_word),
      cmocka_unit_test(options_a_command_does_not_take),
      cmocka_unit_test(options_a_command_needs),
      cmocka_unit_test(missing_and_bad_values),
      cmocka_unit_test(unknown_options_and_words),
      cmocka_unit_test(version_and_help),
      cmocka_unit_test(repeated_calls),
      cmocka_unit_test(errors_store_commands),
      cmocka_unit_test(outbox_resend_command),
      cmocka_unit_test(usages_and_docs_agree),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
