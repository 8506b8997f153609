/* Command-line parsing of the ctxd executable. */
#include "testsupport.h"

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
  return ctxd__cli_parse(cli, argc, argv, err, errlen);
}

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
}

static void version_and_help(void **state) {
  (void)state;
  ctxd__cli_t cli;
  char err[256];
  assert_int_equal(parse(&cli, err, sizeof err, 2, "ctxd", "--version"), 0);
  assert_int_equal(cli.cmd, CTXD__CMD_VERSION);
  assert_int_equal(parse(&cli, err, sizeof err, 2, "ctxd", "version"), 0);
  assert_int_equal(cli.cmd, CTXD__CMD_VERSION);
  assert_int_equal(parse(&cli, err, sizeof err, 3, "ctxd", "run", "-h"), 0);
  assert_int_equal(cli.cmd, CTXD__CMD_HELP);
}

static void errors_name_the_problem(void **state) {
  (void)state;
  ctxd__cli_t cli;
  char err[256];
  assert_int_equal(parse(&cli, err, sizeof err, 1, "ctxd"), CTXD_EINVAL);
  assert_string_equal(err, "no command given (see 'ctxd help')");
  assert_int_equal(parse(&cli, err, sizeof err, 2, "ctxd", "runn"), CTXD_EINVAL);
  assert_string_equal(err, "unknown command 'runn' (see 'ctxd help')");
  assert_int_equal(parse(&cli, err, sizeof err, 2, "ctxd", "run"), CTXD_EINVAL);
  assert_string_equal(err, "'run' needs --config FILE");
  assert_int_equal(parse(&cli, err, sizeof err, 3, "ctxd", "run", "--config"), CTXD_EINVAL);
  assert_string_equal(err, "option --config needs an argument");
  assert_int_equal(parse(&cli, err, sizeof err, 3, "ctxd", "run", "--verbose"), CTXD_EINVAL);
  assert_string_equal(err, "unknown option '--verbose' (see 'ctxd help')");
  assert_int_equal(parse(&cli, err, sizeof err, 5, "ctxd", "run", "-c", "x", "extra"), CTXD_EINVAL);
  assert_string_equal(err, "unexpected argument 'extra' (see 'ctxd help')");
  assert_int_equal(parse(&cli, err, sizeof err, 3, "ctxd", "--config=", "run"), CTXD_EINVAL);
  assert_string_equal(err, "option --config needs a FILE");
}

static void errors_replay(void **state) {
  (void)state;
  ctxd__cli_t cli;
  char err[256];
  assert_int_equal(parse(&cli, err, sizeof err, 8, "ctxd", "errors", "replay", "-c", "a.json",
                         "--endpoint", "orders", "--limit=5"), CTXD_EINVAL);
  assert_string_equal(err, "unknown option '--limit=5' (see 'ctxd help')");
  assert_int_equal(parse(&cli, err, sizeof err, 9, "ctxd", "errors", "replay", "-c", "a.json",
                         "--endpoint", "orders", "--limit", "5"), 0);
  assert_int_equal(cli.cmd, CTXD__CMD_ERRORS_REPLAY);
  assert_string_equal(cli.endpoint, "orders");
  assert_int_equal(cli.limit, 5);
  assert_int_equal(parse(&cli, err, sizeof err, 4, "ctxd", "errors", "-c", "a.json"), CTXD_EINVAL);
  assert_string_equal(err, "'errors' needs a subcommand (see 'ctxd help')");
  assert_int_equal(parse(&cli, err, sizeof err, 5, "ctxd", "errors", "list", "-c", "a.json"), CTXD_EINVAL);
  assert_string_equal(err, "unknown subcommand 'list' (see 'ctxd help')");
  assert_int_equal(parse(&cli, err, sizeof err, 5, "ctxd", "errors", "replay", "-c", "a.json"), CTXD_EINVAL);
  assert_string_equal(err, "'errors replay' needs --endpoint NAME");
  assert_int_equal(parse(&cli, err, sizeof err, 7, "ctxd", "errors", "replay", "-c", "a", "--limit", "0"),
                   CTXD_EINVAL);
  assert_string_equal(err, "--limit takes a whole number above 0, not '0'");
}

static void help_per_command_and_new_commands(void **state) {
  (void)state;
  ctxd__cli_t cli;
  char err[256];
  assert_int_equal(parse(&cli, err, sizeof err, 3, "ctxd", "migrate", "--help"), 0);
  assert_int_equal(cli.cmd, CTXD__CMD_HELP);
  assert_string_equal(cli.help_for, "migrate");
  assert_non_null(strstr(ctxd__cli_usage(cli.help_for), "usage: ctxd migrate --config FILE"));
  assert_int_equal(parse(&cli, err, sizeof err, 3, "ctxd", "help", "topology"), 0);
  assert_string_equal(cli.help_for, "topology");
  assert_non_null(strstr(ctxd__cli_usage(NULL), "exit codes: 0 ok"));
  assert_int_equal(parse(&cli, err, sizeof err, 4, "ctxd", "migrate", "-c", "a.json"), 0);
  assert_int_equal(cli.cmd, CTXD__CMD_MIGRATE);
  assert_int_equal(parse(&cli, err, sizeof err, 5, "ctxd", "topology", "--dot", "-c", "a.json"), 0);
  assert_int_equal(cli.cmd, CTXD__CMD_TOPOLOGY);
  assert_int_equal(cli.dot, 1);
  assert_int_equal(parse(&cli, err, sizeof err, 4, "ctxd", "topology", "-c", "a.json"), CTXD_EINVAL);
  assert_string_equal(err, "'topology' needs --dot (the only output format)");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(run_with_config),
      cmocka_unit_test(version_and_help),
      cmocka_unit_test(errors_name_the_problem),
      cmocka_unit_test(errors_replay),
      cmocka_unit_test(help_per_command_and_new_commands),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
