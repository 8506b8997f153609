/* `ctxd send`: validates a message against its contract and publishes it in a MassTransit
 * envelope, waiting for the broker's confirm. For operators and demos. */
#ifndef CTXD_RUNTIME_SEND_H
#define CTXD_RUNTIME_SEND_H

#include <stdio.h>

#include "config.h"

/* Publishes `message` (a JSON object, or "@FILE") of `type` to the type's exchange, or to
 * endpoint's exchange when endpoint is not NULL. Prints the message id on out. Returns the
 * process exit code (1 with the reason on stderr when the message breaks its contract or
 * the broker does not confirm). */
int ctxd__send(const ctxd__config_t *cfg, const char *type, const char *message, const char *endpoint,
               FILE *out);

#endif
