/* Config maps: typed keys with defaults and help text, applied to a JSON object. Used for
 * the host's own sections and for each plugin's settings (ctxd_conf_entry_t in the ABI). */
#ifndef CTXD_RUNTIME_CONFMAP_H
#define CTXD_RUNTIME_CONFMAP_H

#include <stddef.h>

#include <jansson.h>

#include <ctxd/ctxd.h>

/* Host-only entry types, outside the plugin ABI (ctxd__confmap_check refuses them): a JSON
 * object or array, written as a borrowed `const json_t *`. `def` is NULL (required) or ""
 * (optional: NULL when absent). They let the host describe its own sections, nested objects
 * included, with maps, so unknown keys and wrong types are reported the same everywhere. */
#define CTXD__CONF_OBJECT ((ctxd_conf_type_t)100)
#define CTXD__CONF_ARRAY ((ctxd_conf_type_t)101)

typedef struct {
  char path[512];   /* key path of the offending value, e.g. "plugins[0].settings.interval" */
  char reason[512]; /* e.g. "expected an integer, got a string" or "unknown key" */
} ctxd__conf_error_t;

/* Fills dst from obj per map (terminated by an entry with name NULL): each key's value,
 * else its default; a key without default that is absent is an error, so are unknown keys
 * and wrong types. `path` is obj's own key path ("" for the root). CTXD_CONF_STR values
 * point into obj or into the map's default text: borrowed while both live. Returns 0 or
 * CTXD_ECONFIG with e filled. obj may be NULL (all defaults). */
int ctxd__confmap_apply(const ctxd_conf_entry_t *map, const json_t *obj, void *dst, const char *path,
                        ctxd__conf_error_t *e);

/* Checks a map itself (names unique and non-empty, defaults parse as their type, offsets
 * inside `size`): plugins are refused at load when theirs is broken. 0 or CTXD_EINVAL with
 * the reason in e->reason. */
int ctxd__confmap_check(const ctxd_conf_entry_t *map, size_t size, ctxd__conf_error_t *e);

/* Locates the value at key path `path` in JSON text: 1-based line and column. 0, or
 * CTXD_ENOENT when the path is not in the text. */
int ctxd__json_locate(const char *text, size_t len, const char *path, int *line, int *col);

#endif
