/* The host: the loop thread that conducts the others. It starts (plugins, migrations,
 * workers, relay), owns the broker connection (receiving, settling, publishing, and
 * reconnecting when it is lost), answers signals (stop, replace plugins) and stops. */
#ifndef CTXD_RUNTIME_HOST_H
#define CTXD_RUNTIME_HOST_H

#include "config.h"

typedef enum {
  CTXD__HOST_RUN,    /* run until SIGINT/SIGTERM */
  CTXD__HOST_CHECK,  /* load the plugins, print the topology, connect to nothing */
  CTXD__HOST_DOT,    /* load the plugins, print the topology as Graphviz */
  CTXD__HOST_MIGRATE /* load the plugins, apply every migration, exit */
} ctxd__host_mode_t;

/* Runs the host in `mode`. Returns the process exit code. */
int ctxd__host_main(const ctxd__config_t *cfg, ctxd__host_mode_t mode);

#endif
