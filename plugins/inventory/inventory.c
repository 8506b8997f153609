/* Inventory: an auditor counts raw materials of a pizzeria by storage zone (seed 001).
 *
 * Commands (StartInventory, AddMeasurement, FinishInventory) are sent to this context's
 * endpoint. Each is decided by the pure domain (domain.h) on the aggregate loaded from the
 * event store (store.h); the new event, its public form (through the outbox) and the reply
 * commit together with the inbox row. A command the domain refuses is handled, not failed:
 * the sender gets InventoryCommandRejected with the reason, at the request's
 * responseAddress (MassTransit request/response), or published when it has none.
 * Inventory keeps its own copy of DataCatalog's material types (a second endpoint on the
 * MaterialType exchange) and checks measurements against it; on the same endpoint, its
 * copies of DataCatalog's pizzerias and of Auth's user grants, which the application
 * service's checks read (require_units, require_user_grants). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include <ctxd/ctxd.h>

#include "ctxd_contracts.h"
#include "domain.h"
#include "replica.h"
#include "store.h"
#include "templates.h"

typedef struct {
  const char *endpoint;
  const char *material_endpoint;
  const char *templates_file;
  int64_t snapshot_every;
  int require_units;
  int require_user_grants;
} settings_t;

typedef struct {
  const ctxd_api_t *api;
  ctxd_plugin_t *plugin;
  const settings_t *settings;
  template_seeds_t seeds; /* templates_file, read once at init: immutable, shared */
} state_t;

static const ctxd_conf_entry_t config_map[] = {
    {CTXD_CONF_STR, "endpoint", "inventory", offsetof(settings_t, endpoint), "queue receiving the commands"},
    {CTXD_CONF_STR, "material_endpoint", "inventory-material-type", offsetof(settings_t, material_endpoint),
     "queue receiving DataCatalog's MaterialType and Unit and Auth's UserUnitGrant (Inventory's own copies)"},
    {CTXD_CONF_STR, "templates_file", "", offsetof(settings_t, templates_file),
     "JSON file of seed inventory templates: [{id, unitId, name, category, zones: [{id, name, "
     "materialTypeIds}]}]; the office manager's saves and deletes (kept in the database) win"},
    {CTXD_CONF_BOOL, "require_units", "false", offsetof(settings_t, require_units),
     "StartInventory only for a pizzeria in Inventory's copy of DataCatalog's Unit (on once the "
     "Unit feed reaches material_endpoint)"},
    {CTXD_CONF_BOOL, "require_user_grants", "false", offsetof(settings_t, require_user_grants),
     "StartInventory, AddMeasurement and FinishInventory only from a user with a live grant for the "
     "inventory's pizzeria in Inventory's copy of Auth's UserUnitGrant (on once Auth's grant feed "
     "reaches material_endpoint: until then every command would be refused)"},
    {CTXD_CONF_INT, "snapshot_every", "50", offsetof(settings_t, snapshot_every),
     "a snapshot of the aggregate every N events (0: never)"},
    {0, NULL, NULL, 0, NULL},
};

static const ctxd_migration_t migrations[] = {
    {1, "event store and material types",
     "CREATE SCHEMA inventory;\n" INVENTORY_STORE_DDL MATERIAL_REPLICA_DDL("inventory")},
    {2, "inventory templates kept by the office manager", INVENTORY_TEMPLATES_DDL},
    {3, "pizzerias", UNITS_DDL("inventory")},
    {4, "user grants from Auth", USER_GRANTS_DDL("inventory")},
    {0, NULL, NULL},
};

/* ---- time: the contracts carry ISO 8601, the domain epoch milliseconds --------------- */

static int iso_to_ms(const char *s, int64_t *ms) {
  struct tm tm = {0};
  int frac_ms = 0;
  const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
  if (p == NULL) return CTXD_EINVAL;
  if (*p == '.') {
    int digits = 0;
    for (p++; *p >= '0' && *p <= '9'; p++, digits++)
      if (digits < 3) frac_ms = frac_ms * 10 + (*p - '0');
    for (; digits < 3; digits++) frac_ms *= 10;
  }
  int64_t offset = 0;
  if (*p == '+' || *p == '-') {
    int hh, mm;
    if (sscanf(p + 1, "%2d:%2d", &hh, &mm) != 2) return CTXD_EINVAL;
    offset = (*p == '+' ? 1 : -1) * (int64_t)(hh * 3600 + mm * 60);
  }
  *ms = ((int64_t)timegm(&tm) - offset) * 1000 + frac_ms;
  return 0;
}

static void ms_to_iso(int64_t ms, char out[32]) {
  time_t t = (time_t)(ms / 1000);
  struct tm tm;
  gmtime_r(&t, &tm);
  size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(out + n, 32 - n, ".%03dZ", (int)(ms % 1000));
}

/* ---- replies and public events ---------------------------------------------------------- */

/* Domain ids came from the contracts' UUIDs: they fit a UUID field. */
static void uuid_copy(ctxd_c_uuid_t dst, const char *src) {
  size_t n = strnlen(src, sizeof(ctxd_c_uuid_t) - 1);
  memcpy(dst, src, n);
  dst[n] = '\0';
}

/* The contract's reasons for the domain's (InventoryCommandRejected.Reason). */
static int32_t reason_value(inventory_reason_t r) {
  switch (r) {
  case INVENTORY_REASON_UNKNOWN_INVENTORY: return 1;
  case INVENTORY_REASON_INVENTORY_FINISHED: return 2;
  case INVENTORY_REASON_ALREADY_STARTED: return 3;
  case INVENTORY_REASON_UNKNOWN_MATERIAL: return 4;
  case INVENTORY_REASON_MATERIAL_REMOVED: return 5;
  case INVENTORY_REASON_UNIT_MISMATCH: return 6;
  case INVENTORY_REASON_MEASUREMENT_REMOVED: return 7;
  case INVENTORY_REASON_MEASUREMENT_CONFLICT: return 8;
  case INVENTORY_REASON_MATERIAL_CHANGED: return 12;
  case INVENTORY_REASON_UNKNOWN_TEMPLATE:
  case INVENTORY_REASON_TEMPLATE_MISMATCH: return 10;
  case INVENTORY_REASON_UNKNOWN_ZONE: return 11;
  case INVENTORY_REASON_UNKNOWN_UNIT: return 13;
  case INVENTORY_REASON_USER_NOT_ALLOWED: return 14;
  default: return 9;
  }
}

/* Writes an outgoing message (and frees body): a reply goes to the request's
 * responseAddress, or is published when the request has none; an event is published. */
static int emit(const state_t *st, ctxd_tx_t *tx, const char *type, char *body, int reply) {
  if (body == NULL) return CTXD_ENOMEM;
  ctxd_out_msg_t out = {.size = sizeof out, .message_type = type, .body = body};
  int rc = reply ? st->api->respond(tx, &out) : st->api->publish(tx, &out);
  if (rc == CTXD_ENOENT) rc = st->api->publish(tx, &out); /* no responseAddress */
  free(body);
  return rc;
}

static int reply_accepted(const state_t *st, ctxd_tx_t *tx, const inventory_command_t *cmd, int64_t version,
                          int changed) {
  ctxd_c_inventory_v1_inventory_command_accepted_t a = {0};
  uuid_copy(a.inventory_id, cmd->inventory_id);
  a.version = version;
  a.changed = changed;
  if (cmd->kind == INVENTORY_CMD_ADD_MEASUREMENT) {
    uuid_copy(a.measurement_id, cmd->measurement.measurement_id);
    a.has_measurement_version = true;
    a.measurement_version = cmd->measurement.version;
  }
  /* accepted replies only go to a requester: nobody else waits for them */
  ctxd_out_msg_t out = {.size = sizeof out,
                        .message_type = CTXD_C_INVENTORY_V1_INVENTORY_COMMAND_ACCEPTED_TYPE,
                        .body = ctxd_c_inventory_v1_inventory_command_accepted_encode(&a)};
  if (out.body == NULL) return CTXD_ENOMEM;
  int rc = st->api->respond(tx, &out);
  free((char *)out.body);
  return rc == CTXD_ENOENT ? 0 : rc;
}

/* A reason v1 has is answered as v1, which released requesters understand; only the
 * reasons v1 lacks (MaterialTypeChanged, UnknownUnit, UserNotAllowed) need v2. */
static int reply_rejected(const state_t *st, ctxd_tx_t *tx, const ctxd_msg_t *msg,
                          const inventory_command_t *cmd, const inventory_rejection_t *why) {
  ctxd_c_inventory_v2_inventory_command_rejected_t r = {0};
  uuid_copy(r.inventory_id, cmd->inventory_id);
  r.reason = reason_value(why->reason);
  r.message = (char *)why->text;
  if (cmd->kind == INVENTORY_CMD_ADD_MEASUREMENT)
    uuid_copy(r.measurement_id, cmd->measurement.measurement_id);
  st->api->log(st->plugin, msg, CTXD_LOG_INFO, "command rejected: %s (%s)", why->text,
               inventory_reason_code(why->reason));
  if (ctxd_c_inventory_v1_inventory_command_rejected_reason_name(r.reason) == NULL)
    return emit(st, tx, CTXD_C_INVENTORY_V2_INVENTORY_COMMAND_REJECTED_TYPE,
                ctxd_c_inventory_v2_inventory_command_rejected_encode(&r), 1);
  ctxd_c_inventory_v1_inventory_command_rejected_t v1 = {.reason = r.reason, .message = r.message};
  memcpy(v1.inventory_id, r.inventory_id, sizeof v1.inventory_id);
  memcpy(v1.measurement_id, r.measurement_id, sizeof v1.measurement_id);
  return emit(st, tx, CTXD_C_INVENTORY_V1_INVENTORY_COMMAND_REJECTED_TYPE,
              ctxd_c_inventory_v1_inventory_command_rejected_encode(&v1), 1);
}

/* The public form of a new event, for reports and the accounting monolith. */
static int publish_event(const state_t *st, ctxd_tx_t *tx, const inventory_measurement_t *old,
                         const inventory_state_t *after, const inventory_event_t *ev) {
  char at[32], value[INVENTORY_VALUE_TEXT_SIZE], previous[INVENTORY_VALUE_TEXT_SIZE];
  switch (ev->kind) {
  case INVENTORY_EVENT_STARTED: {
    ctxd_c_inventory_v1_inventory_started_t e = {0};
    uuid_copy(e.inventory_id, ev->inventory_id);
    e.version = ev->version;
    uuid_copy(e.unit_id, ev->start.unit_id);
    uuid_copy(e.inventory_template_id, ev->start.template_id);
    uuid_copy(e.started_by, ev->start.started_by);
    ms_to_iso(ev->start.at_ms, at);
    e.started_at = at;
    return emit(st, tx, CTXD_C_INVENTORY_V1_INVENTORY_STARTED_TYPE,
                ctxd_c_inventory_v1_inventory_started_encode(&e), 0);
  }
  case INVENTORY_EVENT_MEASUREMENT_CHANGED: {
    const inventory_measurement_t *m = &ev->measurement;
    ctxd_c_inventory_v1_measurement_changed_t e = {0};
    uuid_copy(e.inventory_id, ev->inventory_id);
    e.version = ev->version;
    uuid_copy(e.unit_id, after->started.unit_id);
    uuid_copy(e.measurement_id, m->measurement_id);
    e.measurement_version = m->version;
    uuid_copy(e.material_type_id, m->material_type_id);
    if (!m->removed && inventory_value_format(m->value_milli, value, sizeof value) == 0) e.value = value;
    if (old != NULL && !old->removed &&
        inventory_value_format(old->value_milli, previous, sizeof previous) == 0)
      e.previous_value = previous;
    e.unit_of_measure = (int32_t)m->unit;
    uuid_copy(e.inventory_zone_id, m->zone_id);
    uuid_copy(e.user_id, m->user_id);
    return emit(st, tx, CTXD_C_INVENTORY_V1_MEASUREMENT_CHANGED_TYPE,
                ctxd_c_inventory_v1_measurement_changed_encode(&e), 0);
  }
  case INVENTORY_EVENT_FINISHED: {
    ctxd_c_inventory_v1_inventory_finished_t e = {0};
    uuid_copy(e.inventory_id, ev->inventory_id);
    e.version = ev->version;
    uuid_copy(e.unit_id, after->started.unit_id);
    uuid_copy(e.finished_by, ev->finish.by);
    ms_to_iso(ev->finish.at_ms, at);
    e.finished_at = at;
    e.measurement_count = (int64_t)inventory_state_counted(after);
    return emit(st, tx, CTXD_C_INVENTORY_V1_INVENTORY_FINISHED_TYPE,
                ctxd_c_inventory_v1_inventory_finished_encode(&e), 0);
  }
  }
  return CTXD_EINVAL;
}

/* ---- deciding a command ----------------------------------------------------------------- */

typedef struct {
  const ctxd_api_t *api;
  ctxd_tx_t *tx;
} lookup_t;

/* The pizzeria as Inventory's replica has it, in the handler's transaction. */
static int unit_lookup(const state_t *st, ctxd_tx_t *tx, const char *id, inventory_unit_t *out) {
  ctxd_rows_t *rows;
  const char *params[] = {id};
  int rc =
      st->api->sql_exec(tx, "SELECT is_removed FROM inventory.units WHERE id = $1::uuid", 1, params, &rows);
  if (rc != 0) return rc;
  out->found = st->api->rows_count(rows) == 1;
  out->removed = out->found && st->api->rows_value(rows, 0, 0)[0] == 't';
  st->api->rows_free(rows);
  return 0;
}

/* The user's grant for the pizzeria as Inventory's replica has it, in the handler's
 * transaction. */
static int grant_lookup(const state_t *st, ctxd_tx_t *tx, const char *user_id, const char *unit_id,
                        inventory_grant_t *out) {
  ctxd_rows_t *rows;
  const char *params[] = {user_id, unit_id};
  int rc = st->api->sql_exec(
      tx, "SELECT is_removed FROM inventory.user_grants WHERE user_id = $1::uuid AND unit_id = $2::uuid", 2,
      params, &rows);
  if (rc != 0) return rc;
  out->found = st->api->rows_count(rows) == 1;
  out->revoked = out->found && st->api->rows_value(rows, 0, 0)[0] == 't';
  st->api->rows_free(rows);
  return 0;
}

/* The domain's material lookup: Inventory's own replica, in the handler's transaction. */
static int material_lookup(void *ctx, const char *id, inventory_material_t *out) {
  lookup_t *l = ctx;
  ctxd_rows_t *rows;
  const char *params[] = {id};
  int rc = l->api->sql_exec(
      l->tx, "SELECT is_removed, basic_unit_of_measure FROM inventory.material_types WHERE id = $1", 1,
      params, &rows);
  if (rc != 0) return rc;
  out->found = l->api->rows_count(rows) == 1;
  if (out->found) {
    out->removed = l->api->rows_value(rows, 0, 0)[0] == 't';
    out->unit = (inventory_uom_t)atoi(l->api->rows_value(rows, 0, 1));
  }
  l->api->rows_free(rows);
  return 0;
}

static ctxd_handler_result_t result_of(const state_t *st, ctxd_tx_t *tx, int rc) {
  if (rc == 0) return CTXD_HANDLER_OK;
  if (rc == CTXD_ECONFLICT) return CTXD_HANDLER_RETRY; /* another writer of this inventory or template */
  st->api->tx_fault(tx, "Inventory.Failed",
                    st->api->tx_error(tx)[0] ? st->api->tx_error(tx) : ctxd_strerror(rc));
  return CTXD_HANDLER_FAIL;
}

static ctxd_handler_result_t decide_and_store(state_t *st, ctxd_tx_t *tx, const ctxd_msg_t *msg,
                                              const inventory_command_t *cmd) {
  inventory_state_t state;
  inventory_state_init(&state);
  lookup_t lookup = {st->api, tx};
  owned_template_t own;
  bool deleted;
  inventory_unit_t unit;
  inventory_grant_t grant;
  inventory_refs_t refs = {material_lookup, &lookup, NULL, NULL, NULL};
  int rc = inventory_store_load(st->api, tx, cmd->inventory_id, &state);
  if (rc == 0 && cmd->kind == INVENTORY_CMD_START && st->settings->require_units) {
    rc = unit_lookup(st, tx, cmd->start.unit_id, &unit);
    refs.unit = &unit;
  }
  /* an inventory that does not exist has no pizzeria: the domain refuses it first */
  const char *unit_id = cmd->kind == INVENTORY_CMD_START ? cmd->start.unit_id : state.started.unit_id;
  const char *user_id = inventory_command_user(cmd);
  if (rc == 0 && st->settings->require_user_grants && unit_id[0] != '\0' && user_id[0] != '\0') {
    rc = grant_lookup(st, tx, user_id, unit_id, &grant);
    refs.grant = &grant;
  }
  const char *template_id =
      cmd->kind == INVENTORY_CMD_START ? cmd->start.template_id : state.started.template_id;
  if (rc == 0 && template_id[0] != '\0')
    rc = template_get(st->api, tx, &st->seeds, template_id, false, &own, &refs.tmpl, &deleted);
  else
    memset(&own, 0, sizeof own);
  inventory_decision_t d;
  if (rc == 0) rc = inventory_decide(state.status == INVENTORY_STATUS_NONE ? NULL : &state, cmd, &refs, &d);
  if (rc == 0 && d.outcome == INVENTORY_OUTCOME_REJECTED) rc = reply_rejected(st, tx, msg, cmd, &d.rejection);
  if (rc == 0 && d.outcome == INVENTORY_OUTCOME_UNCHANGED) rc = reply_accepted(st, tx, cmd, state.version, 0);
  if (rc == 0 && d.outcome == INVENTORY_OUTCOME_ACCEPTED) {
    /* the public event names the value the change replaced */
    inventory_measurement_t old;
    const inventory_measurement_t *found =
        d.event.kind == INVENTORY_EVENT_MEASUREMENT_CHANGED
            ? inventory_state_find(&state, d.event.measurement.measurement_id)
            : NULL;
    if (found != NULL) old = *found;
    rc = inventory_state_apply(&state, &d.event);
    if (rc == 0) rc = inventory_store_append(st->api, tx, &d.event, &state, st->settings->snapshot_every);
    if (rc == 0) rc = publish_event(st, tx, found != NULL ? &old : NULL, &state, &d.event);
    if (rc == 0) rc = reply_accepted(st, tx, cmd, d.event.version, 1);
  }
  template_release(&own);
  inventory_state_clear(&state);
  return result_of(st, tx, rc);
}

static ctxd_handler_result_t refuse_malformed(state_t *st, ctxd_tx_t *tx, const char *why) {
  st->api->tx_fault(tx, "Inventory.Malformed", why);
  return CTXD_HANDLER_FAIL;
}

static ctxd_handler_result_t on_start(ctxd_tx_t *tx, const ctxd_msg_t *msg, void *data) {
  state_t *st = data;
  size_t len;
  char err[256];
  ctxd_c_inventory_v1_start_inventory_t c;
  /* the host validated it against its contract; decoding gives it types */
  const char *body = st->api->msg_body(msg, &len);
  if (ctxd_c_inventory_v1_start_inventory_decode(body, len, &c, err, sizeof err) != 0)
    return refuse_malformed(st, tx, err);
  inventory_command_t cmd = {.kind = INVENTORY_CMD_START};
  snprintf(cmd.inventory_id, sizeof cmd.inventory_id, "%s", c.inventory_id);
  snprintf(cmd.start.unit_id, sizeof cmd.start.unit_id, "%s", c.unit_id);
  snprintf(cmd.start.template_id, sizeof cmd.start.template_id, "%s", c.inventory_template_id);
  snprintf(cmd.start.started_by, sizeof cmd.start.started_by, "%s", c.started_by);
  int rc = iso_to_ms(c.started_at, &cmd.start.at_ms);
  ctxd_c_inventory_v1_start_inventory_free(&c);
  return rc != 0 ? refuse_malformed(st, tx, "StartedAt is not a time") : decide_and_store(st, tx, msg, &cmd);
}

static ctxd_handler_result_t on_add(ctxd_tx_t *tx, const ctxd_msg_t *msg, void *data) {
  state_t *st = data;
  size_t len;
  char err[256];
  ctxd_c_inventory_v1_add_measurement_t c;
  /* the host validated it against its contract; decoding gives it types */
  const char *body = st->api->msg_body(msg, &len);
  if (ctxd_c_inventory_v1_add_measurement_decode(body, len, &c, err, sizeof err) != 0)
    return refuse_malformed(st, tx, err);
  inventory_command_t cmd = {.kind = INVENTORY_CMD_ADD_MEASUREMENT};
  inventory_measurement_t *m = &cmd.measurement;
  snprintf(cmd.inventory_id, sizeof cmd.inventory_id, "%s", c.inventory_id);
  snprintf(m->measurement_id, sizeof m->measurement_id, "%s", c.measurement_id);
  m->version = (int32_t)c.version;
  snprintf(m->material_type_id, sizeof m->material_type_id, "%s", c.material_type_id);
  /* a null value removes the measurement (the seed's rule) */
  m->removed = c.value == NULL;
  int rc = c.value != NULL ? inventory_value_parse(c.value, &m->value_milli) : 0;
  m->unit = (inventory_uom_t)c.unit_of_measure;
  snprintf(m->zone_id, sizeof m->zone_id, "%s", c.inventory_zone_id);
  snprintf(m->user_id, sizeof m->user_id, "%s", c.user_id);
  ctxd_c_inventory_v1_add_measurement_free(&c);
  /* a value the domain cannot hold exactly goes to the domain as invalid */
  if (rc != 0) m->value_milli = -1;
  return decide_and_store(st, tx, msg, &cmd);
}

static ctxd_handler_result_t on_finish(ctxd_tx_t *tx, const ctxd_msg_t *msg, void *data) {
  state_t *st = data;
  size_t len;
  char err[256];
  ctxd_c_inventory_v1_finish_inventory_t c;
  /* the host validated it against its contract; decoding gives it types */
  const char *body = st->api->msg_body(msg, &len);
  if (ctxd_c_inventory_v1_finish_inventory_decode(body, len, &c, err, sizeof err) != 0)
    return refuse_malformed(st, tx, err);
  inventory_command_t cmd = {.kind = INVENTORY_CMD_FINISH};
  snprintf(cmd.inventory_id, sizeof cmd.inventory_id, "%s", c.inventory_id);
  snprintf(cmd.finish.by, sizeof cmd.finish.by, "%s", c.finished_by);
  int rc = iso_to_ms(c.finished_at, &cmd.finish.at_ms);
  ctxd_c_inventory_v1_finish_inventory_free(&c);
  return rc != 0 ? refuse_malformed(st, tx, "FinishedAt is not a time") : decide_and_store(st, tx, msg, &cmd);
}

/* ---- templates: the office manager's CRUD ---------------------------------------------- */

static int template_reply(const state_t *st, ctxd_tx_t *tx, const ctxd_msg_t *msg, const char *id,
                          inventory_template_outcome_t outcome, const inventory_rejection_t *why,
                          int64_t version, bool deleted) {
  if (outcome == INVENTORY_TEMPLATE_REJECTED) {
    ctxd_c_inventory_v1_inventory_template_rejected_t r = {0};
    uuid_copy(r.inventory_template_id, id);
    r.reason = why->reason == INVENTORY_REASON_UNKNOWN_TEMPLATE    ? 2
               : why->reason == INVENTORY_REASON_TEMPLATE_MISMATCH ? 3
                                                                   : 1;
    r.message = (char *)why->text;
    st->api->log(st->plugin, msg, CTXD_LOG_INFO, "template %s refused: %s", id, why->text);
    return emit(st, tx, CTXD_C_INVENTORY_V1_INVENTORY_TEMPLATE_REJECTED_TYPE,
                ctxd_c_inventory_v1_inventory_template_rejected_encode(&r), 1);
  }
  ctxd_c_inventory_v1_inventory_template_accepted_t a = {0};
  uuid_copy(a.inventory_template_id, id);
  a.version = version > 0 ? version : 1;
  a.deleted = deleted;
  a.changed = outcome != INVENTORY_TEMPLATE_UNCHANGED;
  return emit(st, tx, CTXD_C_INVENTORY_V1_INVENTORY_TEMPLATE_ACCEPTED_TYPE,
              ctxd_c_inventory_v1_inventory_template_accepted_encode(&a), 1);
}

/* Decides a save (next) or delete (NULL) of template `id` on what is stored, stores the
 * result and replies. */
static ctxd_handler_result_t template_command(state_t *st, ctxd_tx_t *tx, const ctxd_msg_t *msg,
                                              const char *id, const inventory_template_t *next,
                                              const char *by) {
  owned_template_t own;
  const inventory_template_t *current;
  bool deleted;
  inventory_rejection_t why;
  int64_t version = 0;
  int rc = template_get(st->api, tx, &st->seeds, id, true, &own, &current, &deleted);
  inventory_template_outcome_t outcome =
      rc == 0 ? inventory_template_decide(current, deleted, next, &why) : INVENTORY_TEMPLATE_REJECTED;
  if (rc == 0 && (outcome == INVENTORY_TEMPLATE_SAVE || outcome == INVENTORY_TEMPLATE_DELETE))
    rc = template_put(st->api, tx, next != NULL ? next : current, next == NULL, by, &version);
  if (rc == 0) rc = template_reply(st, tx, msg, id, outcome, &why, version, next == NULL);
  template_release(&own);
  return result_of(st, tx, rc);
}

static ctxd_handler_result_t on_save_template(ctxd_tx_t *tx, const ctxd_msg_t *msg, void *data) {
  state_t *st = data;
  size_t len;
  char err[256];
  ctxd_c_inventory_v1_save_inventory_template_t c;
  const char *body = st->api->msg_body(msg, &len);
  if (ctxd_c_inventory_v1_save_inventory_template_decode(body, len, &c, err, sizeof err) != 0)
    return refuse_malformed(st, tx, err);
  /* the domain's view borrows the command's strings */
  inventory_zone_t *zones = calloc(c.zones_count ? c.zones_count : 1, sizeof *zones);
  int ok = zones != NULL;
  for (size_t z = 0; ok && z < c.zones_count; z++) {
    const ctxd_c_inventory_v1_save_inventory_template_zones_item_t *in = &c.zones[z];
    const char **ids = calloc(in->material_type_ids_count ? in->material_type_ids_count : 1, sizeof *ids);
    ok = ids != NULL;
    for (size_t m = 0; ok && m < in->material_type_ids_count; m++) ids[m] = in->material_type_ids[m];
    zones[z] = (inventory_zone_t){in->inventory_zone_id, in->name, ids, in->material_type_ids_count};
  }
  inventory_template_t t = {c.inventory_template_id,          c.unit_id, c.name,
                            (inventory_category_t)c.category, zones,     c.zones_count};
  ctxd_handler_result_t r = ok ? template_command(st, tx, msg, c.inventory_template_id, &t, c.saved_by)
                               : result_of(st, tx, CTXD_ENOMEM);
  for (size_t z = 0; zones != NULL && z < c.zones_count; z++) free((void *)zones[z].material_type_ids);
  free(zones);
  ctxd_c_inventory_v1_save_inventory_template_free(&c);
  return r;
}

static ctxd_handler_result_t on_delete_template(ctxd_tx_t *tx, const ctxd_msg_t *msg, void *data) {
  state_t *st = data;
  size_t len;
  char err[256];
  ctxd_c_inventory_v1_delete_inventory_template_t c;
  const char *body = st->api->msg_body(msg, &len);
  if (ctxd_c_inventory_v1_delete_inventory_template_decode(body, len, &c, err, sizeof err) != 0)
    return refuse_malformed(st, tx, err);
  ctxd_handler_result_t r = template_command(st, tx, msg, c.inventory_template_id, NULL, c.deleted_by);
  ctxd_c_inventory_v1_delete_inventory_template_free(&c);
  return r;
}

static ctxd_handler_result_t on_unit(ctxd_tx_t *tx, const ctxd_msg_t *msg, void *data) {
  state_t *st = data;
  int applied;
  return org_replica_apply(st->api, tx, msg, "inventory", ORG_UNIT, &applied);
}

static ctxd_handler_result_t on_user_grant(ctxd_tx_t *tx, const ctxd_msg_t *msg, void *data) {
  state_t *st = data;
  int applied;
  return org_replica_apply(st->api, tx, msg, "inventory", ORG_USER_GRANT, &applied);
}

static ctxd_handler_result_t on_material_type(ctxd_tx_t *tx, const ctxd_msg_t *msg, void *data) {
  state_t *st = data;
  ctxd_c_data_catalog_products_v2_material_type_t m;
  material_change_t change;
  ctxd_handler_result_t r = material_replica_apply(st->api, tx, msg, "inventory.material_types", &m, &change);
  ctxd_c_data_catalog_products_v2_material_type_free(&m);
  return r;
}

/* ---- lifecycle --------------------------------------------------------------------------- */

static int init(ctxd_plugin_t *plugin, const ctxd_api_t *api, void **state) {
  state_t *st = calloc(1, sizeof *st);
  if (st == NULL) return CTXD_ENOMEM;
  st->api = api;
  st->plugin = plugin;
  st->settings = api->settings(plugin);
  *state = st;
  char why[INVENTORY_TEXT_SIZE];
  int rc = st->settings->templates_file[0]
               ? template_seeds_load(st->settings->templates_file, &st->seeds, why, sizeof why)
               : 0;
  if (rc != 0)
    api->log(plugin, NULL, CTXD_LOG_ERROR, "templates_file %s: %s", st->settings->templates_file,
             rc == CTXD_ENOMEM ? "out of memory" : why);
  const struct {
    const char *endpoint, *type;
    ctxd_handler_cb fn;
  } consumers[] = {
      {st->settings->endpoint, CTXD_C_INVENTORY_V1_START_INVENTORY_TYPE, on_start},
      {st->settings->endpoint, CTXD_C_INVENTORY_V1_ADD_MEASUREMENT_TYPE, on_add},
      {st->settings->endpoint, CTXD_C_INVENTORY_V1_FINISH_INVENTORY_TYPE, on_finish},
      {st->settings->endpoint, CTXD_C_INVENTORY_V1_SAVE_INVENTORY_TEMPLATE_TYPE, on_save_template},
      {st->settings->endpoint, CTXD_C_INVENTORY_V1_DELETE_INVENTORY_TEMPLATE_TYPE, on_delete_template},
      {st->settings->material_endpoint, CTXD_C_DATA_CATALOG_PRODUCTS_V2_MATERIAL_TYPE_TYPE, on_material_type},
      {st->settings->material_endpoint, CTXD_C_DATA_CATALOG_ORGANIZATION_V1_UNIT_TYPE, on_unit},
      {st->settings->material_endpoint, CTXD_C_AUTH_V1_USER_UNIT_GRANT_TYPE, on_user_grant},
  };
  for (size_t i = 0; rc == 0 && i < sizeof consumers / sizeof consumers[0]; i++) {
    ctxd_consumer_t c = {.size = sizeof c,
                         .endpoint = consumers[i].endpoint,
                         .message_type = consumers[i].type,
                         .handler = consumers[i].fn,
                         .data = st};
    rc = api->consumer_register(plugin, &c);
  }
  return rc;
}

static void destroy(void *state) {
  state_t *st = state;
  template_seeds_free(&st->seeds);
  free(st);
}

static const ctxd_plugin_desc_t desc = {
    CTXD_PLUGIN_STAMP, /* size, ABI version, build flags */
    .name = "inventory",
    .version = "1.0.0",
    .description = "inventory audits of a pizzeria's raw materials (event-sourced)",
    .config_map = config_map,
    .settings_size = sizeof(settings_t),
    .migrations = migrations,
    .init = init,
    .destroy = destroy,
};

CTXD_PLUGIN_DEFINE(desc)
