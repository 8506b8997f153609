/* Inventory domain: JSON of events, snapshots and public events (the shapes are in
 * domain.h). Payload encoders and decoders are shared by events and snapshots so that a
 * measurement has one JSON shape wherever it appears. */
#include "domain_internal.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define SNAPSHOT_FORMAT 1

static const char *const event_type_names[] = {
    [INVENTORY_EVENT_STARTED] = "InventoryStarted",
    [INVENTORY_EVENT_MEASUREMENT_CHANGED] = "MeasurementChanged",
    [INVENTORY_EVENT_FINISHED] = "InventoryFinished",
};
#define EVENT_KINDS (sizeof event_type_names / sizeof event_type_names[0])

static const char *const status_names[] = {
    [INVENTORY_STATUS_IN_PROGRESS] = "InProgress",
    [INVENTORY_STATUS_FINISHED] = "Finished",
};
#define STATUSES (sizeof status_names / sizeof status_names[0])

const char *inventory_event_type_name(inventory_event_kind_t kind) {
  return (unsigned)kind < EVENT_KINDS ? event_type_names[kind] : NULL;
}

/* ---- Encoding: each put returns 0 or -1 (out of memory), chained with || so the keys
 * keep their documented order. ---------------------------------------------------- */

static int put_string(json_t *o, const char *key, const char *s) {
  return json_object_set_new(o, key, json_string(s));
}

static int put_int(json_t *o, const char *key, int64_t n) {
  return json_object_set_new(o, key, json_integer((json_int_t)n));
}

static int put_value(json_t *o, const char *key, const inventory_measurement_t *m) {
  if (m->removed) return json_object_set_new(o, key, json_null());
  char text[INVENTORY_VALUE_TEXT_SIZE];
  if (inventory_value_format(m->value_milli, text, sizeof text) != 0) return -1;
  return put_string(o, key, text);
}

static int put_start(json_t *o, const inventory_start_t *p) {
  return put_string(o, "unitId", p->unit_id) || put_string(o, "templateId", p->template_id) ||
                 put_string(o, "startedBy", p->started_by) || put_int(o, "startedAtMs", p->at_ms)
             ? -1
             : 0;
}

static int put_measurement(json_t *o, const inventory_measurement_t *m) {
  return put_string(o, "measurementId", m->measurement_id) || put_int(o, "measurementVersion", m->version) ||
                 put_string(o, "materialTypeId", m->material_type_id) || put_value(o, "value", m) ||
                 put_int(o, "unitOfMeasure", m->unit) || put_string(o, "zoneId", m->zone_id) ||
                 put_string(o, "userId", m->user_id)
             ? -1
             : 0;
}

static int put_finish(json_t *o, const inventory_finish_t *p) {
  return put_string(o, "finishedBy", p->by) || put_int(o, "finishedAtMs", p->at_ms) ? -1 : 0;
}

/* A new object for a valid event; NULL when out of memory. */
static json_t *event_to_json(const inventory_event_t *ev) {
  json_t *o = json_object();
  if (!o) return NULL;
  int bad = put_string(o, "inventoryId", ev->inventory_id) || put_int(o, "version", ev->version);
  if (!bad) {
    switch (ev->kind) {
    case INVENTORY_EVENT_STARTED: bad = put_start(o, &ev->start); break;
    case INVENTORY_EVENT_MEASUREMENT_CHANGED: bad = put_measurement(o, &ev->measurement); break;
    case INVENTORY_EVENT_FINISHED: bad = put_finish(o, &ev->finish); break;
    }
  }
  if (bad) {
    json_decref(o);
    return NULL;
  }
  return o;
}

/* Dumps o (NULL: an earlier allocation failed) into *json and releases o. */
static int dump(json_t *o, char **json) {
  *json = o ? json_dumps(o, JSON_COMPACT) : NULL;
  json_decref(o);
  return *json ? 0 : CTXD_ENOMEM;
}

int inventory_event_encode(const inventory_event_t *ev, char **json) {
  if (!json) return CTXD_EINVAL;
  *json = NULL;
  if (!ev || !inventory_event_valid(ev)) return CTXD_EINVAL;
  return dump(event_to_json(ev), json);
}

int inventory_snapshot_encode(const inventory_state_t *s, char **json) {
  if (!json) return CTXD_EINVAL;
  *json = NULL;
  if (!s || s->status == INVENTORY_STATUS_NONE || (unsigned)s->status >= STATUSES) return CTXD_EINVAL;
  json_t *o = json_object();
  json_t *list = json_array();
  int bad = !o || !list || put_int(o, "format", SNAPSHOT_FORMAT) || put_string(o, "inventoryId", s->id) ||
            put_int(o, "version", s->version) || put_string(o, "status", status_names[s->status]) ||
            put_start(o, &s->started) ||
            (s->status == INVENTORY_STATUS_FINISHED && put_finish(o, &s->finished));
  for (size_t i = 0; !bad && i < s->measurement_count; i++) {
    json_t *m = json_object();
    /* appended first so that the list owns it whatever happens next */
    bad = json_array_append_new(list, m) || put_measurement(m, &s->measurements[i]);
  }
  if (bad)
    json_decref(list);
  else
    bad = json_object_set_new(o, "measurements", list);
  if (bad) {
    json_decref(o);
    return CTXD_ENOMEM;
  }
  return dump(o, json);
}

/* ---- Decoding: each get returns 0 or -1 (missing, ill-typed or out of range). ------ */

static int get_id(const json_t *o, const char *key, char dst[INVENTORY_ID_SIZE]) {
  const json_t *v = json_object_get(o, key);
  const char *s = json_string_value(v);
  /* an embedded NUL would silently shorten the id */
  if (!s || json_string_length(v) != strlen(s)) return -1;
  return inventory_id_copy(dst, s) == 0 ? 0 : -1;
}

static int get_int(const json_t *o, const char *key, int64_t min, int64_t max, int64_t *out) {
  const json_t *v = json_object_get(o, key);
  if (!json_is_integer(v)) return -1;
  json_int_t n = json_integer_value(v);
  if (n < min || n > max) return -1;
  *out = n;
  return 0;
}

static int get_value(const json_t *o, const char *key, inventory_measurement_t *m) {
  const json_t *v = json_object_get(o, key);
  m->removed = json_is_null(v);
  m->value_milli = 0;
  if (m->removed) return 0;
  const char *text = json_string_value(v);
  return text && inventory_value_parse(text, &m->value_milli) == 0 ? 0 : -1;
}

static int get_start(const json_t *o, inventory_start_t *p) {
  return get_id(o, "unitId", p->unit_id) || get_id(o, "templateId", p->template_id) ||
                 get_id(o, "startedBy", p->started_by) ||
                 get_int(o, "startedAtMs", INT64_MIN, INT64_MAX, &p->at_ms)
             ? -1
             : 0;
}

static int get_measurement(const json_t *o, inventory_measurement_t *m) {
  int64_t version, unit;
  memset(m, 0, sizeof *m);
  if (get_id(o, "measurementId", m->measurement_id) ||
      get_int(o, "measurementVersion", 1, INT32_MAX, &version) ||
      get_id(o, "materialTypeId", m->material_type_id) || get_value(o, "value", m) ||
      get_int(o, "unitOfMeasure", 0, INT32_MAX, &unit) || get_id(o, "zoneId", m->zone_id) ||
      get_id(o, "userId", m->user_id))
    return -1;
  m->version = (int32_t)version;
  m->unit = (inventory_uom_t)unit;
  return inventory_measurement_valid(m) ? 0 : -1;
}

static int get_finish(const json_t *o, inventory_finish_t *p) {
  return get_id(o, "finishedBy", p->by) || get_int(o, "finishedAtMs", INT64_MIN, INT64_MAX, &p->at_ms) ? -1
                                                                                                       : 0;
}

/* The top-level object of json; NULL when it is not one. */
static json_t *load_object(const char *json) {
  json_t *o = json_loads(json, JSON_REJECT_DUPLICATES, NULL);
  if (o && !json_is_object(o)) {
    json_decref(o);
    return NULL;
  }
  return o;
}

static int get_event(const json_t *o, inventory_event_kind_t kind, inventory_event_t *ev) {
  ev->kind = kind;
  if (get_id(o, "inventoryId", ev->inventory_id) || get_int(o, "version", 1, INT64_MAX, &ev->version))
    return -1;
  int bad = -1;
  switch (kind) {
  case INVENTORY_EVENT_STARTED: bad = get_start(o, &ev->start); break;
  case INVENTORY_EVENT_MEASUREMENT_CHANGED: bad = get_measurement(o, &ev->measurement); break;
  case INVENTORY_EVENT_FINISHED: bad = get_finish(o, &ev->finish); break;
  }
  return !bad && inventory_event_valid(ev) ? 0 : -1;
}

int inventory_event_decode(const char *type_name, const char *json, inventory_event_t *ev) {
  if (!type_name || !json || !ev) return CTXD_EINVAL;
  memset(ev, 0, sizeof *ev);
  inventory_event_kind_t kind = 0;
  for (unsigned k = 0; k < EVENT_KINDS; k++)
    if (event_type_names[k] && strcmp(event_type_names[k], type_name) == 0) kind = (inventory_event_kind_t)k;
  if (kind == 0) return CTXD_EDECODE;
  json_t *o = load_object(json);
  int rc = o && get_event(o, kind, ev) == 0 ? 0 : CTXD_EDECODE;
  json_decref(o);
  if (rc) memset(ev, 0, sizeof *ev);
  return rc;
}

static int get_snapshot(const json_t *o, inventory_state_t *s) {
  int64_t format;
  const char *status = json_string_value(json_object_get(o, "status"));
  const json_t *list = json_object_get(o, "measurements");
  if (get_int(o, "format", SNAPSHOT_FORMAT, SNAPSHOT_FORMAT, &format) || get_id(o, "inventoryId", s->id) ||
      get_int(o, "version", 1, INT64_MAX, &s->version) || !status || get_start(o, &s->started) ||
      !json_is_array(list))
    return CTXD_EDECODE;
  for (unsigned k = 0; k < STATUSES; k++)
    if (status_names[k] && strcmp(status_names[k], status) == 0) s->status = (inventory_status_t)k;
  if (s->status == INVENTORY_STATUS_NONE) return CTXD_EDECODE;
  bool finished = s->status == INVENTORY_STATUS_FINISHED;
  if (finished && get_finish(o, &s->finished)) return CTXD_EDECODE;
  size_t i;
  const json_t *item;
  json_array_foreach(list, i, item) {
    inventory_measurement_t m;
    if (get_measurement(item, &m)) return CTXD_EDECODE;
    int rc = inventory_state_insert(s, &m);
    if (rc) return rc == CTXD_EEXIST ? CTXD_EDECODE : rc;
  }
  /* one InventoryStarted, at least one event per measurement, one InventoryFinished */
  if ((uint64_t)s->version < 1 + (uint64_t)s->measurement_count + (finished ? 1 : 0)) return CTXD_EDECODE;
  return 0;
}

int inventory_snapshot_decode(const char *json, inventory_state_t *s) {
  if (!json || !s) return CTXD_EINVAL;
  inventory_state_init(s);
  json_t *o = load_object(json);
  int rc = o ? get_snapshot(o, s) : CTXD_EDECODE;
  json_decref(o);
  if (rc) inventory_state_clear(s);
  return rc;
}

/* ---- Public events ---------------------------------------------------------------- */

int inventory_public_event_build(const inventory_state_t *state, const inventory_event_t *ev,
                                 inventory_public_event_t *out) {
  if (!out) return CTXD_EINVAL;
  memset(out, 0, sizeof *out);
  if (!state || !ev || state->status == INVENTORY_STATUS_NONE || !inventory_event_valid(ev) ||
      strcmp(state->id, ev->inventory_id) != 0 || ev->version > state->version)
    return CTXD_EINVAL;
  json_t *o = event_to_json(ev);
  /* InventoryStarted has unitId already; setting it again keeps its place */
  if (o && put_string(o, "unitId", state->started.unit_id)) {
    json_decref(o);
    o = NULL;
  }
  int rc = dump(o, &out->body);
  if (rc == 0) out->type_name = inventory_event_type_name(ev->kind);
  return rc;
}
