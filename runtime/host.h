/* The host: the loop thread that owns the broker connection, the plugins and endpoints,
 * start-up (migrations, topology), settlement of deliveries, and shutdown. */
#ifndef CTXD_RUNTIME_HOST_H
#define CTXD_RUNTIME_HOST_H

#include <ctxd/ctxd.h>

#include "config.h"
#include "endpoint.h"
#include "relay.h"

typedef struct ctxd__host_s ctxd__host_t;

typedef enum {
  CTXD__HOST_RUN,      /* run until SIGINT/SIGTERM */
  CTXD__HOST_CHECK,    /* load the plugins, print the topology, connect to nothing */
  CTXD__HOST_DOT,      /* load the plugins, print the topology as Graphviz */
  CTXD__HOST_MIGRATE   /* load the plugins, apply every migration, exit */
} ctxd__host_mode_t;

/* Runs the host in `mode`. Returns the process exit code. */
int ctxd__host_main(const ctxd__config_t *cfg, ctxd__host_mode_t mode);

/* Registers a consumer for plugin p (the ABI's consumer_register). */
int ctxd__host_register(ctxd__host_t *h, ctxd_plugin_t *p, const ctxd_consumer_t *c);

/* Hands a finished batch back to the loop thread (any thread). */
void ctxd__host_complete(ctxd__host_t *h, ctxd__batch_t *b);

/* Hands outbox rows to the loop thread for publishing (any thread); takes ownership. */
void ctxd__host_publish_rows(ctxd__host_t *h, ctxd__outrow_t *rows);

/* Returns the contracts the host validates with; borrowed for the host's life. */
const struct ctxd__contracts_s *ctxd__host_contracts(const ctxd__host_t *h);

/* Returns the configuration; borrowed for the host's life. */
const ctxd__config_t *ctxd__host_config(const ctxd__host_t *h);

#endif
