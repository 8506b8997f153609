#include "plugin.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "confmap.h"

/* sizeof a descriptor that ends with `field` (a minor's last): the field's end, padded as
 * the compiler pads the struct */
#define DESC_ALIGN _Alignof(ctxd_plugin_desc_t)
#define DESC_SIZE_TO(field)                                                                                  \
  ((offsetof(ctxd_plugin_desc_t, field) + sizeof(((ctxd_plugin_desc_t *)0)->field) + DESC_ALIGN - 1) /       \
   DESC_ALIGN * DESC_ALIGN)

/* The descriptor's size in each ABI minor (index): a plugin must send exactly the size of
 * the minor it declares. A new minor adds its row, the same size again when it appends no
 * descriptor field (tests/unit/test_plugin_check.c checks that the last row is the header's
 * sizeof). Row 0 is the least any descriptor has. */
static const size_t desc_sizes[] = {
    DESC_SIZE_TO(destroy), /* 1.0 */
    DESC_SIZE_TO(destroy), /* 1.1: ctxd_out_msg_t addressing and time to live */
    DESC_SIZE_TO(destroy), /* 1.2: scheduled messages, external calls (api slots only) */
    DESC_SIZE_TO(destroy), /* 1.3: batch handlers (a consumer field and an api slot only) */
};
_Static_assert(sizeof desc_sizes / sizeof desc_sizes[0] == CTXD_ABI_MINOR + 1,
               "one descriptor size per ABI minor");

static void flags_text(uint32_t f, char *buf, size_t len) {
  snprintf(buf, len, "0x%x (%s%s)", f, f & CTXD_BUILD_PTR64 ? "64-bit" : "32-bit",
           f & CTXD_BUILD_ASAN ? ", AddressSanitizer" : "");
}

int ctxd__plugin_check(const ctxd_plugin_desc_t *d, uint32_t host_flags, char *err, size_t errlen) {
  if (d == NULL) {
    snprintf(err, errlen, "entry function returned no descriptor");
    return CTXD_EABI;
  }
  /* size and version come first so that they can be read from any descriptor */
  if (d->size < desc_sizes[0]) {
    snprintf(err, errlen, "size: host needs at least %zu, plugin has %u (descriptor too short)",
             desc_sizes[0], d->size);
    return CTXD_EABI;
  }
  if (d->abi_major != CTXD_ABI_MAJOR) {
    snprintf(err, errlen, "abi_major: host has %d, plugin has %d", CTXD_ABI_MAJOR, d->abi_major);
    return CTXD_EABI;
  }
  if (d->abi_minor > CTXD_ABI_MINOR) {
    snprintf(err, errlen, "abi_minor: host has %d, plugin has %d (the plugin needs a newer host)",
             CTXD_ABI_MINOR, d->abi_minor);
    return CTXD_EABI;
  }
  /* a minor this host knows: a size it does not define is a broken stamp, and the fields
   * past that minor's end would be read as something else */
  if (d->size != desc_sizes[d->abi_minor]) {
    snprintf(err, errlen, "size: abi_minor %d defines %zu bytes, plugin has %u", d->abi_minor,
             desc_sizes[d->abi_minor], d->size);
    return CTXD_EABI;
  }
  if (d->build_flags != host_flags) {
    char h[64], p[64];
    flags_text(host_flags, h, sizeof h);
    flags_text(d->build_flags, p, sizeof p);
    snprintf(err, errlen, "build_flags: host has %s, plugin has %s", h, p);
    return CTXD_EABI;
  }
  if (!ctxd__config_plugin_name_valid(d->name)) {
    snprintf(err, errlen, "name: '%s' is not 1-64 characters of [a-z0-9_-]",
             d->name != NULL ? d->name : "(null)");
    return CTXD_EABI;
  }
  if (d->init == NULL) {
    snprintf(err, errlen, "init: plugin has none");
    return CTXD_EABI;
  }
  if (d->config_map != NULL) {
    ctxd__conf_error_t e;
    if (ctxd__confmap_check(d->config_map, d->settings_size, &e) != 0) {
      snprintf(err, errlen, "config_map: %s", e.reason);
      return CTXD_EABI;
    }
  }
  return 0;
}

int ctxd__plugin_changed(const ctxd_plugin_t *p) {
  struct stat st;
  if (stat(p->path, &st) != 0) return 0; /* gone: nothing to load instead */
  return st.st_ino != p->file.st_ino || st.st_dev != p->file.st_dev || st.st_size != p->file.st_size ||
         st.st_mtim.tv_sec != p->file.st_mtim.tv_sec || st.st_mtim.tv_nsec != p->file.st_mtim.tv_nsec;
}

int ctxd__plugin_open(const ctxd__config_t *cfg, const ctxd__plugin_config_t *pc, const char *load_from,
                      ctxd_plugin_t **out, char *err, size_t errlen) {
  char path[4096], why[512];
  struct stat st;
  if (ctxd__config_plugin_path(cfg, pc, path, sizeof path) != 0) {
    snprintf(err, errlen, "plugin '%s': path too long", pc->name);
    return CTXD_ECONFIG;
  }
  if (stat(path, &st) != 0) memset(&st, 0, sizeof st);
  /* RTLD_NOW: an unresolved symbol fails here, not at the first call in production */
  void *dl = dlopen(load_from != NULL ? load_from : path, RTLD_NOW | RTLD_LOCAL);
  if (dl == NULL) {
    snprintf(err, errlen, "%s: cannot load: %s", path, dlerror());
    return CTXD_ENOENT;
  }
  const ctxd_plugin_desc_t *(*entry)(void);
  *(void **)&entry = dlsym(dl, CTXD_PLUGIN_ENTRY_SYMBOL);
  if (entry == NULL) {
    snprintf(err, errlen, "%s: refused: no entry function %s() (not a ctxd plugin?)", path,
             CTXD_PLUGIN_ENTRY_SYMBOL);
    dlclose(dl);
    return CTXD_EABI;
  }
  const ctxd_plugin_desc_t *d = entry();
  if (ctxd__plugin_check(d, CTXD_BUILD_FLAGS, why, sizeof why) != 0) {
    snprintf(err, errlen, "%s: refused: %s", path, why);
    dlclose(dl);
    return CTXD_EABI;
  }
  if (strcmp(d->name, pc->name) != 0) {
    snprintf(err, errlen, "%s: refused: the configuration names it '%s' but the plugin is '%s'", path,
             pc->name, d->name);
    dlclose(dl);
    return CTXD_ECONFIG;
  }

  ctxd_plugin_t *p = calloc(1, sizeof *p);
  if (p == NULL || (p->name = strdup(d->name)) == NULL || (p->path = strdup(path)) == NULL) goto nomem;
  p->dl = dl;
  p->desc = d;
  p->file = st;
  if (d->config_map != NULL) {
    ctxd__conf_error_t e;
    if ((p->settings = calloc(1, d->settings_size ? d->settings_size : 1)) == NULL) goto nomem;
    if (ctxd__confmap_apply(d->config_map, pc->settings, p->settings, pc->settings_path, &e) != 0) {
      ctxd__config_format_error(cfg, e.path, e.reason, err, errlen);
      ctxd__plugin_free(p);
      return CTXD_ECONFIG;
    }
  } else if (pc->settings != NULL && json_object_size(pc->settings) > 0) {
    ctxd__config_format_error(cfg, pc->settings_path, "the plugin takes no settings", err, errlen);
    ctxd__plugin_free(p);
    return CTXD_ECONFIG;
  }
  *out = p;
  return 0;
nomem:
  snprintf(err, errlen, "%s: out of memory", path);
  if (p != NULL) {
    p->dl = NULL;
    ctxd__plugin_free(p);
  }
  dlclose(dl);
  return CTXD_ENOMEM;
}

int ctxd__plugin_stage(ctxd_plugin_t *p, const ctxd_consumer_t *c) {
  ctxd_consumer_t *grown = realloc(p->staged, (p->nstaged + 1) * sizeof *grown);
  if (grown == NULL) return CTXD_ENOMEM;
  p->staged = grown;
  ctxd_consumer_t *s = &p->staged[p->nstaged];
  *s = *c;
  s->size = sizeof *s;
  s->endpoint = strdup(c->endpoint);
  s->message_type = strdup(c->message_type);
  s->queue_type = NULL; /* an endpoint keeps its settings across a replacement */
  p->nstaged++;
  return s->endpoint != NULL && s->message_type != NULL ? 0 : CTXD_ENOMEM;
}

void ctxd__plugin_free(ctxd_plugin_t *p) {
  if (p == NULL) return;
  ctxd__executors_stop(&p->executors); /* before destroy: they call into the plugin */
  if (p->state != NULL && p->desc->destroy != NULL) p->desc->destroy(p->state);
  ctxd__executors_free(&p->executors);
  free(p->settings);
  for (size_t i = 0; i < p->nstaged; i++) {
    free((char *)p->staged[i].endpoint);
    free((char *)p->staged[i].message_type);
  }
  free(p->staged);
  free(p->name);
  free(p->path);
  free(p);
}
