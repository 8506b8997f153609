/* `ctxd errors list|groups|show|retry|archive|unarchive`: the failed-message store
 * (failstore.h) from the command line, as JSON (--json, what the admin API answers) or as
 * a table for people. */
#ifndef CTXD_RUNTIME_ERRORS_CLI_H
#define CTXD_RUNTIME_ERRORS_CLI_H

#include <stdio.h>

#include <jansson.h>

#include "cli.h"
#include "config.h"
#include "failstore.h"

/* Runs the errors command cli names on cfg's database; writes the answer to out, a
 * failure to stderr. Returns the process exit code (usage: a filter the store refuses). */
int ctxd__errors_cli(const ctxd__config_t *cfg, const ctxd__cli_t *cli, FILE *out);

/* The filter cli's options make; strings borrowed from cli. Pure. */
ctxd__failfilter_t ctxd__errors_cli_filter(const ctxd__cli_t *cli);

/* Writes answer (of command cmd) as a table for people. Pure but the write. */
void ctxd__errors_cli_print(FILE *out, ctxd__cmd_t cmd, const json_t *answer);

#endif
