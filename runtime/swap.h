/* Replacing a plugin in the running host (SIGHUP). The new file is loaded from a private
 * copy and initialised on the loop thread, its registrations staged; its migrations run
 * on libuv's thread pool, since connecting to the database and waiting for the migration
 * lock may take long and the loop must go on acknowledging, confirming and heartbeating
 * meanwhile. A lock not granted within reload.lock_timeout_ms gives the replacement up
 * and the running version stays. Once migrated, the host drains the old version's
 * endpoints and finishes the swap here. The old shared object stays mapped: unmapping code
 * a plugin may still reference (an atexit handler, a stray thread) would crash the host. */
#ifndef CTXD_RUNTIME_SWAP_H
#define CTXD_RUNTIME_SWAP_H

#include <stddef.h>

#include <uv.h>

#include <ctxd/ctxd.h>

#include "config.h"
#include "endpoint.h"

typedef struct ctxd__swap_s ctxd__swap_t;

/* The replacement's migrations finished (loop thread). status 0: drain the old version's
 * endpoints, then call ctxd__swap_finish (or ctxd__swap_abandon). Otherwise the refusal
 * was logged and the replacement freed: the swap is over. */
typedef void (*ctxd__swap_cb)(ctxd__swap_t *s, int status);

struct ctxd__swap_s {
  uv_work_t work;
  const ctxd__config_t *cfg;
  ctxd_plugin_t *old;   /* the running version; the caller's */
  ctxd_plugin_t *fresh; /* the replacement; the swap's until finished */
  ctxd__swap_cb cb;
  void *data; /* the caller's */
  int status; /* of the migrations */
  char err[1024];
};

/* Loads and initialises the replacement of old and starts its migrations; set is where
 * old's consumers are registered. 0: cb runs on the loop thread when the migrations end.
 * Otherwise the refusal is logged ("reload of plugin 'x' refused, version v keeps
 * running: why"), nothing is left to undo and cb never runs. Either way the file is not
 * tried again until it changes once more. */
int ctxd__swap_begin(ctxd__swap_t *s, uv_loop_t *loop, const ctxd__config_t *cfg, ctxd_plugin_t *old,
                     const ctxd__endpoints_t *set, ctxd__swap_cb cb);

/* After old's endpoints drained and their workers were stopped: stops and frees old,
 * gives its handlers on those endpoints to the replacement and starts it. Returns the
 * replacement, which the caller owns from now on. */
ctxd_plugin_t *ctxd__swap_finish(ctxd__swap_t *s, ctxd__endpoints_t *set);

/* Frees the replacement instead (the host stops first); old keeps running. */
void ctxd__swap_abandon(ctxd__swap_t *s);

#endif
