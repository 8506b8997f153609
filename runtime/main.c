/* The ctxd executable: parse the command line, hand over to the host. */
#include <stdio.h>

#include <ctxd/ctxd.h>

#include "asyncapi.h"
#include "cli.h"
#include "config.h"
#include "errors_cli.h"
#include "host.h"
#include "log.h"
#include "replay.h"
#include "resend.h"
#include "send.h"

static int load_config(const char *path, ctxd__config_t **cfg) {
  char err[1024];
  if (ctxd__config_load(path, cfg, err, sizeof err) != 0) {
    fprintf(stderr, "ctxd: %s\n", err);
    return CTXD__EXIT_CONFIG;
  }
  ctxd__log_set_level((*cfg)->log_level);
  return CTXD__EXIT_OK;
}

static int run(const ctxd__cli_t *cli) {
  ctxd__config_t *cfg = NULL;
  int rc = load_config(cli->config_path, &cfg);
  if (rc != CTXD__EXIT_OK) return rc;
  switch (cli->cmd) {
  case CTXD__CMD_ERRORS_REPLAY: rc = ctxd__errors_replay(cfg, cli->endpoint, cli->limit, stdout); break;
  case CTXD__CMD_CHECK_CONFIG: rc = ctxd__host_main(cfg, CTXD__HOST_CHECK); break;
  case CTXD__CMD_TOPOLOGY: rc = ctxd__host_main(cfg, CTXD__HOST_DOT); break;
  case CTXD__CMD_MIGRATE: rc = ctxd__host_main(cfg, CTXD__HOST_MIGRATE); break;
  case CTXD__CMD_SEND: rc = ctxd__send(cfg, cli->type, cli->message, cli->endpoint, stdout); break;
  case CTXD__CMD_ERRORS_LIST:
  case CTXD__CMD_ERRORS_GROUPS:
  case CTXD__CMD_ERRORS_SHOW:
  case CTXD__CMD_ERRORS_RETRY:
  case CTXD__CMD_ERRORS_ARCHIVE:
  case CTXD__CMD_ERRORS_UNARCHIVE: rc = ctxd__errors_cli(cfg, cli, stdout); break;
  case CTXD__CMD_OUTBOX_RESEND: rc = ctxd__outbox_resend(cfg, cli, stdout); break;
  default: rc = ctxd__host_main(cfg, CTXD__HOST_RUN); break;
  }
  ctxd__config_free(cfg);
  return rc;
}

int main(int argc, char **argv) {
  ctxd__cli_t cli;
  char err[256];
  if (ctxd__cli_parse(&cli, argc, argv, err, sizeof err) != 0) {
    fprintf(stderr, "ctxd: %s\n", err);
    return CTXD__EXIT_USAGE;
  }
  switch (cli.cmd) {
  case CTXD__CMD_HELP: fputs(ctxd__cli_usage(cli.help_for), stdout); return CTXD__EXIT_OK;
  case CTXD__CMD_VERSION:
    printf("ctxd %s (plugin ABI %d.%d)\n", CTXD_VERSION_STRING, CTXD_ABI_MAJOR, CTXD_ABI_MINOR);
    return CTXD__EXIT_OK;
  case CTXD__CMD_CONTRACTS_EXPORT: return ctxd__asyncapi_export(cli.output);
  default: return run(&cli);
  }
}
