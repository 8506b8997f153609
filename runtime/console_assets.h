/* The operator console's files (runtime/console/), built into the binary so the admin
 * endpoint serves the page with nothing else installed. */
#ifndef CTXD_RUNTIME_CONSOLE_ASSETS_H
#define CTXD_RUNTIME_CONSOLE_ASSETS_H

#include <stddef.h>

/* The file served at path ("/" is the page), or NULL when there is none. Sets *len and
 * *content_type; everything is static, never freed. */
const unsigned char *ctxd__console_asset(const char *path, size_t *len, const char **content_type);

#endif
