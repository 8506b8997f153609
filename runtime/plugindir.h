/* The default plugin folder, found from where the ctxd executable is, as relocatable tools
 * do: an installed ctxd finds its plugins under whatever prefix it was installed to, and a
 * ctxd run from its build tree finds the build's plugins.
 *
 * The folder plugins given by relative path load from, first found:
 *   1. CTXD_PLUGIN_DIR (environment), 2. plugin_dir (configuration): config.c;
 *   3. <bindir>/../<libdir>/ctxd/plugins beside the executable (CTXD_PLUGIN_DIR_FROM_BIN),
 *      e.g. /opt/ctxd/bin/ctxd -> /opt/ctxd/lib/ctxd/plugins;
 *   4. when that folder does not exist: the build's plugin folder, relative to where the
 *      build puts the executable (CTXD_BUILD_PLUGIN_DIR_FROM_BIN), e.g.
 *      build/release/runtime/ctxd -> build/release/plugins;
 *   5. neither exists: 3, so a failing load names where the plugins were expected. */
#ifndef CTXD_RUNTIME_PLUGINDIR_H
#define CTXD_RUNTIME_PLUGINDIR_H

#include <stddef.h>

/* Writes the default plugin folder of the executable at path `exe` (NULL: the running one,
 * /proc/self/exe) into buf, canonical when it exists (steps 3 to 5 above). 0, CTXD_ENOENT
 * (the running executable's path cannot be read) or CTXD_ETOOBIG. */
int ctxd__plugindir_find(const char *exe, char *buf, size_t buflen);

#endif
