/* Loading plugins: dlopen, the descriptor checks, settings from the config map. */
#ifndef CTXD_RUNTIME_PLUGIN_H
#define CTXD_RUNTIME_PLUGIN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include <ctxd/ctxd.h>

#include "config.h"
#include "executor.h"

struct ctxd__endpoints_s;

struct ctxd_plugin_s {
  char *name;
  char *path;
  void *dl;
  const ctxd_plugin_desc_t *desc;
  void *settings; /* settings_size bytes, filled from the config map; NULL without a map */
  void *state;    /* what init() stored */
  int in_init;    /* consumer_register is allowed only while init runs */
  int staging;    /* a replacement's init: registrations go to staged */
  int started;
  struct ctxd__endpoints_s *endpoints; /* where its consumers register */
  struct stat file;                    /* of path when loaded: a replaced file is noticed on reload */
  /* a replacement being prepared: its registrations wait here until the swap */
  ctxd_consumer_t *staged;
  size_t nstaged;
  /* ABI 1.2: the executors of its external calls (executor.h) */
  ctxd__executors_t executors;
};

/* Checks a descriptor against this host (ABI major and minor, size, build flags, name,
 * init, config map). Pure. 0, or CTXD_EABI with err naming the field and both values,
 * e.g. "abi_major: host has 1, plugin has 2". */
int ctxd__plugin_check(const ctxd_plugin_desc_t *d, uint32_t host_flags, char *err, size_t errlen);

/* Opens the plugin of config entry pc: dlopen(RTLD_NOW | RTLD_LOCAL), entry function,
 * checks, name must equal pc->name, settings filled. Does not call init. `load_from` is the
 * file to dlopen, NULL for the configured path (a reload loads a private copy: dlopen of
 * a path already loaded returns the old library). Returns 0 and *out (new, free with
 * ctxd__plugin_free), or CTXD_ENOENT / CTXD_EABI / CTXD_ECONFIG with err starting with the
 * plugin's path. */
int ctxd__plugin_open(const ctxd__config_t *cfg, const ctxd__plugin_config_t *pc, const char *load_from,
                      ctxd_plugin_t **out, char *err, size_t errlen);

/* Keeps a copy of registration c of a replacement (p->staging) until the swap. 0 or
 * CTXD_ENOMEM. */
int ctxd__plugin_stage(ctxd_plugin_t *p, const ctxd_consumer_t *c);

/* 1 when the file at p->path is no longer the one p was loaded from. */
int ctxd__plugin_changed(const ctxd_plugin_t *p);

/* Calls destroy() if init ran, frees what the host allocated. The shared object stays
 * mapped (as PostgreSQL does): a plugin's leftovers must never run unmapped code. */
void ctxd__plugin_free(ctxd_plugin_t *p);

#endif
