/* A plugin with one defect chosen at build time, for the loader's refusal tests. */
#include <ctxd/ctxd.h>

static int init(ctxd_plugin_t *plugin, const ctxd_api_t *api, void **state) {
  (void)plugin;
  (void)api;
  (void)state;
  return 0;
}

static const ctxd_plugin_desc_t desc = {
    CTXD_PLUGIN_STAMP, /* size, ABI version, build flags */
#if BAD_MAJOR
    .abi_major = CTXD_ABI_MAJOR + 1,
#elif BAD_MINOR
    .abi_minor = CTXD_ABI_MINOR + 7,
#elif BAD_SHORT
    .size = 16,
#elif BAD_FLAGS
    .build_flags = CTXD_BUILD_FLAGS ^ CTXD_BUILD_ASAN,
#endif
    .name = PLUGIN_NAME,
    .version = "0.0.1",
    .init = init,
};

#if BAD_NOENTRY
/* exported under another name: the host finds no entry function */
CTXD_PLUGIN_EXPORT const ctxd_plugin_desc_t *ctxd_plugin_entry_v0(void);
CTXD_PLUGIN_EXPORT const ctxd_plugin_desc_t *ctxd_plugin_entry_v0(void) { return &desc; }
#else
CTXD_PLUGIN_DEFINE(desc)
#endif
