#include "swap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "db.h"
#include "log.h"
#include "migrate.h"
#include "plugin.h"

/* SQLSTATE lock_not_available: a lock waited longer than lock_timeout. */
#define LOCK_TIMEOUT_STATE "55P03"

static int refuse(ctxd__swap_t *s, int rc, const char *why) {
  ctxd__log(CTXD__LOG_ERROR, "host", "reload of plugin '%s' refused, version %s keeps running: %s",
            s->old->name, s->old->desc->version != NULL ? s->old->desc->version : "?", why);
  ctxd__plugin_free(s->fresh);
  s->fresh = NULL;
  return rc;
}

/* Copies the plugin file to a private path: dlopen of the same path would return the
 * library already loaded. */
static int private_copy(const char *from, char *to, size_t len) {
  snprintf(to, len, "%s/ctxd-plugin-XXXXXX.so", getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp");
  int out = mkstemps(to, 3);
  FILE *in = fopen(from, "rb");
  int rc = out >= 0 && in != NULL ? 0 : CTXD_EIO;
  char buf[65536];
  size_t n;
  while (rc == 0 && (n = fread(buf, 1, sizeof buf, in)) > 0)
    if (write(out, buf, n) != (ssize_t)n) rc = CTXD_EIO;
  if (in != NULL) fclose(in);
  if (out >= 0) close(out);
  if (rc != 0 && out >= 0) unlink(to);
  return rc;
}

/* Thread pool: connect, bound every lock wait, migrate. */
static void migrate_work(uv_work_t *w) {
  ctxd__swap_t *s = w->data;
  const ctxd__config_t *cfg = s->cfg;
  const ctxd_migration_t *list = s->fresh->desc->migrations;
  PGconn *c = NULL;
  char timeout[32];
  snprintf(timeout, sizeof timeout, "%lld", (long long)cfg->reload_lock_timeout_ms);
  const char *params[] = {timeout};
  s->status = 0;
  if (list == NULL) return;
  s->status = ctxd__db_open(cfg, &c, s->err, sizeof s->err);
  /* the advisory lock, and a table lock a migration takes while the old version's
   * transactions hold the table, both wait at most this long */
  if (s->status == 0)
    s->status =
        ctxd__db_run(c, "SELECT set_config('lock_timeout', $1, false)", 1, params, s->err, sizeof s->err);
  if (s->status == 0)
    s->status = ctxd__migrate(c, s->fresh->name, list, cfg->db_migrate_auto, s->err, sizeof s->err);
  if (s->status != 0 && c != NULL && strcmp(ctxd__db_sqlstate(c), LOCK_TIMEOUT_STATE) == 0) {
    char db[512];
    snprintf(db, sizeof db, "%.500s", s->err);
    snprintf(s->err, sizeof s->err,
             "a database lock was not granted within reload.lock_timeout_ms (%lld ms): %s",
             (long long)cfg->reload_lock_timeout_ms, db);
  }
  if (c != NULL) PQfinish(c);
}

static void migrated(uv_work_t *w, int status) {
  ctxd__swap_t *s = w->data;
  if (status != 0 && s->status == 0) {
    s->status = CTXD_EIO;
    snprintf(s->err, sizeof s->err, "migrations did not run: %s", uv_strerror(status));
  }
  if (s->status != 0) refuse(s, s->status, s->err);
  s->cb(s, s->status);
}

int ctxd__swap_begin(ctxd__swap_t *s, uv_loop_t *loop, const ctxd__config_t *cfg, ctxd_plugin_t *old,
                     const ctxd__endpoints_t *set, ctxd__swap_cb cb) {
  void *data = s->data;
  memset(s, 0, sizeof *s);
  *s = (ctxd__swap_t){.cfg = cfg, .old = old, .cb = cb, .data = data};
  const ctxd__plugin_config_t *pc = NULL;
  for (size_t k = 0; k < cfg->nplugins; k++)
    if (strcmp(cfg->plugins[k].name, old->name) == 0) pc = &cfg->plugins[k];
  char copy[4096];
  /* a refused file is not tried again until it changes once more */
  if (stat(old->path, &old->file) != 0) memset(&old->file, 0, sizeof old->file);
  if (private_copy(old->path, copy, sizeof copy) != 0) return refuse(s, CTXD_EIO, "cannot copy the new file");
  int rc = ctxd__plugin_open(cfg, pc, copy, &s->fresh, s->err, sizeof s->err);
  unlink(copy); /* the mapping stays */
  if (rc != 0) return refuse(s, rc, s->err);
  ctxd_plugin_t *fresh = s->fresh;
  fresh->staging = fresh->in_init = 1;
  rc = fresh->desc->init(fresh, &ctxd__api, &fresh->state);
  fresh->staging = fresh->in_init = 0;
  if (rc != 0) {
    snprintf(s->err, sizeof s->err, "init failed: %s", ctxd_strerror(rc));
    return refuse(s, rc, s->err);
  }
  for (size_t k = 0; k < fresh->nstaged; k++) {
    const ctxd__endpoint_t *ep = ctxd__endpoints_find(set, fresh->staged[k].endpoint);
    if (ep == NULL || !ctxd__endpoint_uses(ep, old)) {
      snprintf(s->err, sizeof s->err,
               "it consumes on endpoint '%s', which the running version does not: that needs a restart",
               fresh->staged[k].endpoint);
      return refuse(s, CTXD_ESTATE, s->err);
    }
  }
  s->work.data = s;
  if ((rc = uv_queue_work(loop, &s->work, migrate_work, migrated)) != 0) {
    snprintf(s->err, sizeof s->err, "cannot run its migrations: %s", uv_strerror(rc));
    return refuse(s, CTXD_ENOMEM, s->err);
  }
  return 0;
}

ctxd_plugin_t *ctxd__swap_finish(ctxd__swap_t *s, ctxd__endpoints_t *set) {
  ctxd_plugin_t *old = s->old, *fresh = s->fresh;
  ctxd__executors_stop(&old->executors); /* they left their loops (the host waited): no wait */
  if (old->started && old->desc->stop != NULL) old->desc->stop(old->state);
  if (old->desc->destroy != NULL && old->state != NULL) old->desc->destroy(old->state);
  old->state = NULL;
  fresh->endpoints = set;
  for (size_t e = 0; e < set->n; e++) {
    ctxd__endpoint_t *ep = set->v[e];
    if (ctxd__endpoint_uses(ep, old) &&
        ctxd__endpoint_replace(ep, old, fresh, fresh->staged, fresh->nstaged) != 0)
      ctxd__log(CTXD__LOG_ERROR, "host", "plugin '%s': cannot register all its consumers on '%s'",
                fresh->name, ep->name);
  }
  int rc = fresh->desc->start != NULL ? fresh->desc->start(fresh->state) : 0;
  if (rc != 0)
    ctxd__log(CTXD__LOG_ERROR, "host", "plugin '%s': start failed after reload: %s", fresh->name,
              ctxd_strerror(rc));
  fresh->started = rc == 0;
  if (fresh->started && ctxd__executors_start(&fresh->executors, &set->env) != 0)
    ctxd__log(CTXD__LOG_ERROR, "host", "plugin '%s': cannot start its executors after reload", fresh->name);
  ctxd__log(CTXD__LOG_INFO, "host", "replaced plugin '%s' %s with %s", fresh->name, old->desc->version,
            fresh->desc->version);
  ctxd__plugin_free(old);
  s->old = s->fresh = NULL;
  return fresh;
}

void ctxd__swap_abandon(ctxd__swap_t *s) {
  ctxd__plugin_free(s->fresh);
  s->old = s->fresh = NULL;
}
