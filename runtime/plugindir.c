#include "plugindir.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ctxd/errno.h>

static int put(char *buf, size_t buflen, const char *path) {
  int n = snprintf(buf, buflen, "%s", path);
  return n >= 0 && (size_t)n < buflen ? 0 : CTXD_ETOOBIG;
}

/* Writes <the folder of exe>/rel into out (PATH_MAX bytes). */
static int beside(const char *exe, const char *rel, char *out) {
  const char *slash = strrchr(exe, '/');
  int n = slash != NULL ? snprintf(out, PATH_MAX, "%.*s/%s", (int)(slash - exe), exe, rel)
                        : snprintf(out, PATH_MAX, "./%s", rel);
  return n >= 0 && n < PATH_MAX ? 0 : CTXD_ETOOBIG;
}

int ctxd__plugindir_find(const char *exe, char *buf, size_t buflen) {
  char self[PATH_MAX], installed[PATH_MAX], built[PATH_MAX], real[PATH_MAX];
  if (exe == NULL) {
    ssize_t n = readlink("/proc/self/exe", self, sizeof self);
    if (n < 0) return CTXD_ENOENT;
    if ((size_t)n == sizeof self) return CTXD_ETOOBIG; /* readlink truncates silently */
    self[n] = '\0';
    exe = self;
  }
  int rc = beside(exe, CTXD_PLUGIN_DIR_FROM_BIN, installed);
  if (rc == 0) rc = beside(exe, CTXD_BUILD_PLUGIN_DIR_FROM_BIN, built);
  if (rc != 0) return rc;
  /* realpath both tests that the folder exists and drops the "bin/.." from what is logged */
  if (realpath(installed, real) != NULL || realpath(built, real) != NULL) return put(buf, buflen, real);
  return put(buf, buflen, installed);
}
