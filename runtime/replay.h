/* `ctxd errors replay`: moves messages from <endpoint>_error back to the endpoint. */
#ifndef CTXD_RUNTIME_REPLAY_H
#define CTXD_RUNTIME_REPLAY_H

#include <stdio.h>

#include "config.h"

/* Moves up to `limit` messages (0: all) from <endpoint>_error to the endpoint's exchange,
 * without the fault headers, each acknowledged from the error queue only once the broker
 * confirmed its copy. Reports on out. Returns the process exit code. */
int ctxd__errors_replay(const ctxd__config_t *cfg, const char *endpoint, long limit, FILE *out);

#endif
