/* DataCatalog consumer: replicates MaterialType, Country, Department and Unit (the
 * pizzerias), which DataCatalog (.NET, MassTransit) publishes, into this context's
 * schema. It publishes nothing. */
#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>

#include <ctxd/ctxd.h>

#include "ctxd_contracts.h"
#include "replica.h"

typedef struct {
  const char *endpoint;
} settings_t;

typedef struct {
  const ctxd_api_t *api;
  ctxd_plugin_t *plugin;
} state_t;

static const ctxd_conf_entry_t config_map[] = {
    {CTXD_CONF_STR, "endpoint", "datacatalog-material-type", offsetof(settings_t, endpoint),
     "queue receiving MaterialType"},
    {0, NULL, NULL, 0, NULL},
};

static const ctxd_migration_t migrations[] = {
    {1, "material types", "CREATE SCHEMA datacatalog;\n" MATERIAL_REPLICA_DDL("datacatalog")},
    {2, "countries, departments, pizzerias",
     COUNTRIES_DDL("datacatalog") DEPARTMENTS_DDL("datacatalog") UNITS_DDL("datacatalog")},
    {0, NULL, NULL},
};

/* One info line per change (the simulator's demo feed makes one every few seconds), so
 * that a change can be followed in the host's output (a batch rolled back and run again
 * logs it again); an ignored version only at debug: late copies are normal traffic. */
static ctxd_handler_result_t on_material_type(ctxd_tx_t *tx, const ctxd_msg_t *msg, void *data) {
  static const char *const outcomes[] = {
      [MATERIAL_IGNORED] = "ignored: the replica has this version or a newer one",
      [MATERIAL_INSERTED] = "applied: inserted",
      [MATERIAL_UPDATED] = "applied: updated",
      [MATERIAL_REMOVED] = "applied: removed",
  };
  state_t *st = data;
  ctxd_c_data_catalog_products_v2_material_type_t m;
  material_change_t change;
  ctxd_handler_result_t r =
      material_replica_apply(st->api, tx, msg, "datacatalog.material_types", &m, &change);
  if (r == CTXD_HANDLER_OK)
    st->api->log(st->plugin, msg, change == MATERIAL_IGNORED ? CTXD_LOG_DEBUG : CTXD_LOG_INFO,
                 "material type %s version %" PRId64 " '%s' %s", m.id, m.version, m.name, outcomes[change]);
  ctxd_c_data_catalog_products_v2_material_type_free(&m);
  return r;
}

static ctxd_handler_result_t on_org(ctxd_tx_t *tx, const ctxd_msg_t *msg, void *data, org_kind_t kind) {
  state_t *st = data;
  int applied;
  ctxd_handler_result_t r = org_replica_apply(st->api, tx, msg, "datacatalog", kind, &applied);
  if (r == CTXD_HANDLER_OK)
    st->api->log(st->plugin, msg, applied ? CTXD_LOG_INFO : CTXD_LOG_DEBUG, "%s %s", org_message_types[kind],
                 applied ? "applied" : "ignored: the replica has this version or a newer one");
  return r;
}

static ctxd_handler_result_t on_country(ctxd_tx_t *tx, const ctxd_msg_t *msg, void *data) {
  return on_org(tx, msg, data, ORG_COUNTRY);
}
static ctxd_handler_result_t on_department(ctxd_tx_t *tx, const ctxd_msg_t *msg, void *data) {
  return on_org(tx, msg, data, ORG_DEPARTMENT);
}
static ctxd_handler_result_t on_unit(ctxd_tx_t *tx, const ctxd_msg_t *msg, void *data) {
  return on_org(tx, msg, data, ORG_UNIT);
}

static int init(ctxd_plugin_t *plugin, const ctxd_api_t *api, void **state) {
  const settings_t *s = api->settings(plugin);
  state_t *st = calloc(1, sizeof *st);
  if (st == NULL) return CTXD_ENOMEM;
  st->api = api;
  st->plugin = plugin;
  *state = st;
  /* MaterialType v2: the host upcasts what v1 publishers send */
  const struct {
    const char *type;
    ctxd_handler_cb fn;
  } consumers[] = {
      {CTXD_C_DATA_CATALOG_PRODUCTS_V2_MATERIAL_TYPE_TYPE, on_material_type},
      {org_message_types[ORG_COUNTRY], on_country},
      {org_message_types[ORG_DEPARTMENT], on_department},
      {org_message_types[ORG_UNIT], on_unit},
  };
  int rc = 0;
  for (size_t i = 0; rc == 0 && i < sizeof consumers / sizeof consumers[0]; i++) {
    ctxd_consumer_t c = {.size = sizeof c,
                         .endpoint = s->endpoint,
                         .message_type = consumers[i].type,
                         .handler = consumers[i].fn,
                         .data = st};
    rc = api->consumer_register(plugin, &c);
  }
  return rc;
}

static void destroy(void *state) { free(state); }

static const ctxd_plugin_desc_t desc = {
    CTXD_PLUGIN_STAMP, /* size, ABI version, build flags */
    .name = "datacatalog",
    .version = "1.0.0",
    .description = "replica of DataCatalog's MaterialType, countries, departments and pizzerias",
    .config_map = config_map,
    .settings_size = sizeof(settings_t),
    .migrations = migrations,
    .init = init,
    .destroy = destroy,
};

CTXD_PLUGIN_DEFINE(desc)
