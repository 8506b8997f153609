/* Inventory domain: values, templates, the aggregate's state and its decisions. The JSON
 * side (events, snapshots, public events) is in domain_json.c. */
#include "domain_internal.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Values and identifiers ------------------------------------------------------- */

int inventory_value_parse(const char *text, int64_t *milli) {
  if (!text || !milli) return CTXD_EINVAL;
  const int64_t max_whole = INT64_MAX / 1000;
  const char *p = text;
  int64_t whole = 0, frac = 0;
  if (!isdigit((unsigned char)*p)) return CTXD_EINVAL;
  for (; isdigit((unsigned char)*p); p++) {
    int d = *p - '0';
    if (whole > (max_whole - d) / 10) return CTXD_ERANGE;
    whole = whole * 10 + d;
  }
  if (*p == '.') {
    int digits = 0;
    for (p++; isdigit((unsigned char)*p); p++, digits++) {
      if (digits == 3) return CTXD_EINVAL;
      frac = frac * 10 + (*p - '0');
    }
    if (digits == 0) return CTXD_EINVAL;
    for (; digits < 3; digits++) frac *= 10;
  }
  if (*p != '\0') return CTXD_EINVAL;
  if (whole * 1000 > INT64_MAX - frac) return CTXD_ERANGE;
  *milli = whole * 1000 + frac;
  return 0;
}

int inventory_value_format(int64_t milli, char *buf, size_t size) {
  if (!buf || milli < 0) return CTXD_EINVAL;
  long long whole = milli / 1000, frac = milli % 1000;
  int n;
  if (frac == 0) {
    n = snprintf(buf, size, "%lld", whole);
  } else {
    int digits = 3;
    for (; frac % 10 == 0; frac /= 10) digits--;
    n = snprintf(buf, size, "%lld.%0*lld", whole, digits, frac);
  }
  if (n < 0 || (size_t)n >= size) {
    if (size > 0) buf[0] = '\0';
    return CTXD_ETOOBIG;
  }
  return 0;
}

bool inventory_id_valid(const char id[INVENTORY_ID_SIZE]) {
  size_t n = 0;
  for (; n < INVENTORY_ID_SIZE && id[n] != '\0'; n++) {
    unsigned char c = (unsigned char)id[n];
    if (c <= ' ' || c > '~') return false;
  }
  return n > 0 && n < INVENTORY_ID_SIZE;
}

int inventory_id_copy(char dst[INVENTORY_ID_SIZE], const char *src) {
  if (!dst) return CTXD_EINVAL;
  dst[0] = '\0';
  if (!src) return CTXD_EINVAL;
  size_t n = strnlen(src, INVENTORY_ID_SIZE);
  if (n == INVENTORY_ID_SIZE) return CTXD_EINVAL;
  memcpy(dst, src, n + 1);
  if (!inventory_id_valid(dst)) {
    dst[0] = '\0';
    return CTXD_EINVAL;
  }
  return 0;
}

bool inventory_uom_valid(int unit) {
  return unit == INVENTORY_UOM_QUANTITY || unit == INVENTORY_UOM_GRAM || unit == INVENTORY_UOM_MILLILITER ||
         unit == INVENTORY_UOM_METER;
}

/* NULL-safe equality of borrowed strings: a missing string equals nothing. */
static bool str_eq(const char *a, const char *b) { return a && b && strcmp(a, b) == 0; }

/* ---- Rejections ------------------------------------------------------------------ */

static const char *const reason_codes[] = {
    [INVENTORY_REASON_NONE] = "none",
    [INVENTORY_REASON_INVALID_COMMAND] = "invalid_command",
    [INVENTORY_REASON_UNKNOWN_INVENTORY] = "unknown_inventory",
    [INVENTORY_REASON_ALREADY_STARTED] = "already_started",
    [INVENTORY_REASON_INVENTORY_FINISHED] = "inventory_finished",
    [INVENTORY_REASON_UNKNOWN_TEMPLATE] = "unknown_template",
    [INVENTORY_REASON_TEMPLATE_MISMATCH] = "template_mismatch",
    [INVENTORY_REASON_MEASUREMENT_REMOVED] = "measurement_removed",
    [INVENTORY_REASON_MEASUREMENT_CONFLICT] = "measurement_conflict",
    [INVENTORY_REASON_MATERIAL_CHANGED] = "material_changed",
    [INVENTORY_REASON_UNKNOWN_MATERIAL] = "unknown_material",
    [INVENTORY_REASON_MATERIAL_REMOVED] = "material_removed",
    [INVENTORY_REASON_UNIT_MISMATCH] = "unit_mismatch",
    [INVENTORY_REASON_UNKNOWN_ZONE] = "unknown_zone",
    [INVENTORY_REASON_INVALID_TEMPLATE] = "invalid_template",
    [INVENTORY_REASON_UNKNOWN_UNIT] = "unknown_unit",
    [INVENTORY_REASON_USER_NOT_ALLOWED] = "user_not_allowed",
};

const char *inventory_reason_code(inventory_reason_t reason) {
  if ((unsigned)reason >= sizeof reason_codes / sizeof reason_codes[0]) return "unknown";
  return reason_codes[reason];
}

__attribute__((format(printf, 3, 0))) static void
rejection_vset(inventory_rejection_t *why, inventory_reason_t reason, const char *fmt, va_list ap) {
  why->reason = reason;
  vsnprintf(why->text, sizeof why->text, fmt, ap);
}

/* ---- InventoryTemplate ------------------------------------------------------------ */

__attribute__((format(printf, 2, 3))) static int template_invalid(inventory_rejection_t *why, const char *fmt,
                                                                  ...) {
  va_list ap;
  va_start(ap, fmt);
  rejection_vset(why, INVENTORY_REASON_INVALID_TEMPLATE, fmt, ap);
  va_end(ap);
  return CTXD_EVALIDATION;
}

static bool blank(const char *s) {
  if (!s) return true;
  for (; *s; s++)
    if (!isspace((unsigned char)*s)) return false;
  return true;
}

static bool id_string_valid(const char *s) {
  char copy[INVENTORY_ID_SIZE];
  return inventory_id_copy(copy, s) == 0;
}

static int zone_validate(const inventory_zone_t *z, size_t index, inventory_rejection_t *why) {
  if (!id_string_valid(z->id)) return template_invalid(why, "zone %zu has no valid id", index);
  if (blank(z->name)) return template_invalid(why, "zone %s has a blank name", z->id);
  if (z->material_count > 0 && !z->material_type_ids)
    return template_invalid(why, "zone %s has no material list", z->id);
  for (size_t k = 0; k < z->material_count; k++) {
    const char *material = z->material_type_ids[k];
    if (!id_string_valid(material))
      return template_invalid(why, "zone %s: material %zu has no valid id", z->id, k);
    for (size_t l = 0; l < k; l++)
      if (strcmp(z->material_type_ids[l], material) == 0)
        return template_invalid(why, "zone %s lists material %s twice", z->id, material);
  }
  return 0;
}

int inventory_template_validate(const inventory_template_t *t, inventory_rejection_t *why) {
  if (!t || !why) return CTXD_EINVAL;
  memset(why, 0, sizeof *why);
  if (!id_string_valid(t->id)) return template_invalid(why, "template has no valid id");
  if (!id_string_valid(t->unit_id)) return template_invalid(why, "template has no valid pizzeria id");
  if (blank(t->name)) return template_invalid(why, "template name is blank");
  if (t->category != INVENTORY_CATEGORY_MONTHLY && t->category != INVENTORY_CATEGORY_WEEKLY &&
      t->category != INVENTORY_CATEGORY_DAILY)
    return template_invalid(why, "category %d is not monthly, weekly or daily", (int)t->category);
  if (t->zone_count == 0 || !t->zones) return template_invalid(why, "template has no storage zone");
  for (size_t i = 0; i < t->zone_count; i++) {
    const inventory_zone_t *z = &t->zones[i];
    int rc = zone_validate(z, i, why);
    if (rc) return rc;
    for (size_t j = 0; j < i; j++) {
      if (strcmp(t->zones[j].id, z->id) == 0) return template_invalid(why, "zone id %s appears twice", z->id);
      if (strcmp(t->zones[j].name, z->name) == 0)
        return template_invalid(why, "zone name \"%s\" appears twice", z->name);
    }
  }
  return 0;
}

bool inventory_template_equal(const inventory_template_t *a, const inventory_template_t *b) {
  if (!str_eq(a->id, b->id) || !str_eq(a->unit_id, b->unit_id) || !str_eq(a->name, b->name) ||
      a->category != b->category || a->zone_count != b->zone_count)
    return false;
  for (size_t i = 0; i < a->zone_count; i++) {
    const inventory_zone_t *x = &a->zones[i], *y = &b->zones[i];
    if (!str_eq(x->id, y->id) || !str_eq(x->name, y->name) || x->material_count != y->material_count)
      return false;
    for (size_t k = 0; k < x->material_count; k++)
      if (!str_eq(x->material_type_ids[k], y->material_type_ids[k])) return false;
  }
  return true;
}

__attribute__((format(printf, 2, 3))) static inventory_template_outcome_t
template_refused(inventory_rejection_t *why, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  rejection_vset(why, why->reason, fmt, ap);
  va_end(ap);
  return INVENTORY_TEMPLATE_REJECTED;
}

inventory_template_outcome_t inventory_template_decide(const inventory_template_t *current, bool deleted,
                                                       const inventory_template_t *next,
                                                       inventory_rejection_t *why) {
  memset(why, 0, sizeof *why);
  if (next == NULL) {
    if (current != NULL) return INVENTORY_TEMPLATE_DELETE;
    if (deleted) return INVENTORY_TEMPLATE_UNCHANGED;
    why->reason = INVENTORY_REASON_UNKNOWN_TEMPLATE;
    return template_refused(why, "template does not exist");
  }
  if (inventory_template_validate(next, why) != 0) return INVENTORY_TEMPLATE_REJECTED;
  if (current != NULL && !str_eq(current->unit_id, next->unit_id)) {
    why->reason = INVENTORY_REASON_TEMPLATE_MISMATCH;
    return template_refused(why, "template %s belongs to pizzeria %s, not %s", current->id, current->unit_id,
                            next->unit_id);
  }
  return current != NULL && inventory_template_equal(current, next) ? INVENTORY_TEMPLATE_UNCHANGED
                                                                    : INVENTORY_TEMPLATE_SAVE;
}

static bool template_has_zone(const inventory_template_t *t, const char *zone_id) {
  for (size_t i = 0; i < t->zone_count; i++)
    if (str_eq(t->zones[i].id, zone_id)) return true;
  return false;
}

/* ---- Payload and event shapes ----------------------------------------------------- */

bool inventory_start_valid(const inventory_start_t *p) {
  return inventory_id_valid(p->unit_id) && inventory_id_valid(p->template_id) &&
         inventory_id_valid(p->started_by);
}

bool inventory_measurement_valid(const inventory_measurement_t *m) {
  /* removed carries value 0 so that equal measurements are equal field by field */
  return inventory_id_valid(m->measurement_id) && inventory_id_valid(m->material_type_id) &&
         inventory_id_valid(m->zone_id) && inventory_id_valid(m->user_id) && m->version >= 1 &&
         inventory_uom_valid(m->unit) && m->value_milli >= 0 && (!m->removed || m->value_milli == 0);
}

bool inventory_finish_valid(const inventory_finish_t *p) { return inventory_id_valid(p->by); }

bool inventory_event_valid(const inventory_event_t *ev) {
  if (!inventory_id_valid(ev->inventory_id) || ev->version < 1) return false;
  switch (ev->kind) {
  case INVENTORY_EVENT_STARTED: return ev->version == 1 && inventory_start_valid(&ev->start);
  case INVENTORY_EVENT_MEASUREMENT_CHANGED:
    return ev->version > 1 && inventory_measurement_valid(&ev->measurement);
  case INVENTORY_EVENT_FINISHED: return ev->version > 1 && inventory_finish_valid(&ev->finish);
  }
  return false;
}

/* ---- State ------------------------------------------------------------------------ */

void inventory_state_init(inventory_state_t *s) { memset(s, 0, sizeof *s); }

void inventory_state_clear(inventory_state_t *s) {
  if (!s) return;
  free(s->measurements);
  inventory_state_init(s);
}

/* Index of the first measurement whose id is not below id; *found tells whether it is
 * that id. Binary search: measurements stay sorted so that snapshots and comparisons do
 * not depend on the order in which measurements arrived. */
static size_t locate(const inventory_state_t *s, const char *id, bool *found) {
  size_t lo = 0, hi = s->measurement_count;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (strcmp(s->measurements[mid].measurement_id, id) < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  *found = lo < s->measurement_count && strcmp(s->measurements[lo].measurement_id, id) == 0;
  return lo;
}

const inventory_measurement_t *inventory_state_find(const inventory_state_t *s, const char *measurement_id) {
  if (!s || !measurement_id) return NULL;
  bool found;
  size_t i = locate(s, measurement_id, &found);
  return found ? &s->measurements[i] : NULL;
}

int inventory_state_insert(inventory_state_t *s, const inventory_measurement_t *m) {
  bool found;
  size_t i = locate(s, m->measurement_id, &found);
  if (found) return CTXD_EEXIST;
  if (s->measurement_count == s->measurement_cap) {
    size_t cap = s->measurement_cap ? 2 * s->measurement_cap : 16;
    if (cap > SIZE_MAX / sizeof *m) return CTXD_ENOMEM;
    inventory_measurement_t *grown = realloc(s->measurements, cap * sizeof *m);
    if (!grown) return CTXD_ENOMEM;
    s->measurements = grown;
    s->measurement_cap = cap;
  }
  memmove(&s->measurements[i + 1], &s->measurements[i], (s->measurement_count - i) * sizeof *m);
  s->measurements[i] = *m;
  s->measurement_count++;
  return 0;
}

static bool start_equal(const inventory_start_t *a, const inventory_start_t *b) {
  return strcmp(a->unit_id, b->unit_id) == 0 && strcmp(a->template_id, b->template_id) == 0 &&
         strcmp(a->started_by, b->started_by) == 0 && a->at_ms == b->at_ms;
}

static bool finish_equal(const inventory_finish_t *a, const inventory_finish_t *b) {
  return strcmp(a->by, b->by) == 0 && a->at_ms == b->at_ms;
}

/* What two versions of one measurement must share for a repeat to be a no-op. The seed
 * compares the value only; a different unit, zone or material under the same version is
 * just as much a concurrent edit, so it is compared too. Who sent it is not. */
static bool measurement_same_content(const inventory_measurement_t *a, const inventory_measurement_t *b) {
  return a->removed == b->removed && a->value_milli == b->value_milli && a->unit == b->unit &&
         strcmp(a->zone_id, b->zone_id) == 0 && strcmp(a->material_type_id, b->material_type_id) == 0;
}

static bool measurement_equal(const inventory_measurement_t *a, const inventory_measurement_t *b) {
  return strcmp(a->measurement_id, b->measurement_id) == 0 && a->version == b->version &&
         measurement_same_content(a, b) && strcmp(a->user_id, b->user_id) == 0;
}

size_t inventory_state_counted(const inventory_state_t *s) {
  size_t n = 0;
  for (size_t i = 0; i < s->measurement_count; i++) n += !s->measurements[i].removed;
  return n;
}

bool inventory_state_equal(const inventory_state_t *a, const inventory_state_t *b) {
  if (!a || !b) return a == b;
  if (strcmp(a->id, b->id) != 0 || a->version != b->version || a->status != b->status ||
      !start_equal(&a->started, &b->started) || !finish_equal(&a->finished, &b->finished) ||
      a->measurement_count != b->measurement_count)
    return false;
  for (size_t i = 0; i < a->measurement_count; i++)
    if (!measurement_equal(&a->measurements[i], &b->measurements[i])) return false;
  return true;
}

/* ---- Measurement versioning (the seed's When(MeasurementEvent)) -------------------- */

typedef enum {
  RULE_ADD,
  RULE_REPLACE,
  RULE_UNCHANGED,
  RULE_REMOVED,
  RULE_CONFLICT,
  RULE_MATERIAL_CHANGED,
} measurement_rule_t;

/* How an incoming version relates to the stored one (NULL: none yet). Shared by decide
 * (which turns it into an outcome) and apply (which refuses impossible histories), so
 * the two can never disagree. */
static measurement_rule_t measurement_rule(const inventory_measurement_t *stored,
                                           const inventory_measurement_t *in) {
  if (!stored) return RULE_ADD;
  if (stored->removed) return RULE_REMOVED;
  if ((int64_t)stored->version + 1 == in->version)
    return strcmp(stored->material_type_id, in->material_type_id) == 0 ? RULE_REPLACE : RULE_MATERIAL_CHANGED;
  if (stored->version == in->version && measurement_same_content(stored, in)) return RULE_UNCHANGED;
  return RULE_CONFLICT;
}

static int apply_measurement(inventory_state_t *s, const inventory_measurement_t *m) {
  bool found;
  size_t i = locate(s, m->measurement_id, &found);
  inventory_measurement_t *stored = found ? &s->measurements[i] : NULL;
  switch (measurement_rule(stored, m)) {
  case RULE_ADD: return inventory_state_insert(s, m);
  case RULE_REPLACE:
    /* value, unit and zone follow the new version; material and creator stay */
    stored->version = m->version;
    stored->removed = m->removed;
    stored->value_milli = m->value_milli;
    stored->unit = m->unit;
    memcpy(stored->zone_id, m->zone_id, sizeof stored->zone_id);
    return 0;
  case RULE_UNCHANGED:
  case RULE_REMOVED:
  case RULE_CONFLICT:
  case RULE_MATERIAL_CHANGED: break;
  }
  return CTXD_ECONFLICT;
}

int inventory_state_apply(inventory_state_t *s, const inventory_event_t *ev) {
  if (!s || !ev || !inventory_event_valid(ev)) return CTXD_EINVAL;
  if (s->status != INVENTORY_STATUS_NONE && strcmp(s->id, ev->inventory_id) != 0) return CTXD_EINVAL;
  bool starts = ev->kind == INVENTORY_EVENT_STARTED;
  if (starts ? s->status != INVENTORY_STATUS_NONE : s->status != INVENTORY_STATUS_IN_PROGRESS)
    return CTXD_ESTATE;
  if (ev->version != s->version + 1) return CTXD_ECONFLICT;
  switch (ev->kind) {
  case INVENTORY_EVENT_STARTED:
    memcpy(s->id, ev->inventory_id, sizeof s->id);
    s->started = ev->start;
    s->status = INVENTORY_STATUS_IN_PROGRESS;
    break;
  case INVENTORY_EVENT_MEASUREMENT_CHANGED: {
    int rc = apply_measurement(s, &ev->measurement);
    if (rc) return rc;
    break;
  }
  case INVENTORY_EVENT_FINISHED:
    s->finished = ev->finish;
    s->status = INVENTORY_STATUS_FINISHED;
    break;
  }
  s->version = ev->version;
  return 0;
}

/* ---- Decisions -------------------------------------------------------------------- */

__attribute__((format(printf, 3, 4))) static int reject(inventory_decision_t *out, inventory_reason_t reason,
                                                        const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  out->outcome = INVENTORY_OUTCOME_REJECTED;
  rejection_vset(&out->rejection, reason, fmt, ap);
  va_end(ap);
  return 0;
}

static bool exists(const inventory_state_t *state) { return state && state->status != INVENTORY_STATUS_NONE; }

/* Sets out to the accepted event header; the caller copies the payload. */
static void accept(const inventory_state_t *state, const inventory_command_t *cmd,
                   inventory_event_kind_t kind, inventory_decision_t *out) {
  out->outcome = INVENTORY_OUTCOME_ACCEPTED;
  out->event.kind = kind;
  memcpy(out->event.inventory_id, cmd->inventory_id, sizeof out->event.inventory_id);
  out->event.version = (state ? state->version : 0) + 1;
}

/* AddMeasurement and FinishInventory need an inventory in progress; true when refused. */
static bool refused_unless_in_progress(const inventory_state_t *state, const inventory_command_t *cmd,
                                       inventory_decision_t *out) {
  if (!exists(state))
    reject(out, INVENTORY_REASON_UNKNOWN_INVENTORY, "inventory %s does not exist", cmd->inventory_id);
  else if (state->status == INVENTORY_STATUS_FINISHED)
    reject(out, INVENTORY_REASON_INVENTORY_FINISHED, "inventory %s is finished", cmd->inventory_id);
  return out->outcome == INVENTORY_OUTCOME_REJECTED;
}

const char *inventory_command_user(const inventory_command_t *cmd) {
  switch (cmd ? cmd->kind : 0) {
  case INVENTORY_CMD_START: return cmd->start.started_by;
  case INVENTORY_CMD_ADD_MEASUREMENT: return cmd->measurement.user_id;
  case INVENTORY_CMD_FINISH: return cmd->finish.by;
  }
  return "";
}

/* The application service's permission check: the acting user holds a live grant for the
 * pizzeria; true when refused. */
static bool refused_without_grant(const inventory_refs_t *refs, const inventory_command_t *cmd,
                                  const char *unit_id, inventory_decision_t *out) {
  const inventory_grant_t *g = refs ? refs->grant : NULL;
  if (g && (!g->found || g->revoked))
    reject(out, INVENTORY_REASON_USER_NOT_ALLOWED, "user %s is not allowed for pizzeria %s%s",
           inventory_command_user(cmd), unit_id, g->found ? ": the grant is revoked" : "");
  return out->outcome == INVENTORY_OUTCOME_REJECTED;
}

static int decide_start(const inventory_state_t *state, const inventory_command_t *cmd,
                        const inventory_refs_t *refs, inventory_decision_t *out) {
  const inventory_start_t *p = &cmd->start;
  if (!inventory_start_valid(p))
    return reject(out, INVENTORY_REASON_INVALID_COMMAND,
                  "StartInventory needs valid pizzeria, template and user ids");
  if (exists(state))
    return reject(out, INVENTORY_REASON_ALREADY_STARTED, "inventory %s is already started",
                  cmd->inventory_id);
  const inventory_unit_t *unit = refs ? refs->unit : NULL;
  if (unit && (!unit->found || unit->removed))
    return reject(out, INVENTORY_REASON_UNKNOWN_UNIT, "pizzeria %s %s", p->unit_id,
                  unit->found ? "is removed" : "does not exist");
  if (refused_without_grant(refs, cmd, p->unit_id, out)) return 0;
  const inventory_template_t *t = refs ? refs->tmpl : NULL;
  if (!t) return reject(out, INVENTORY_REASON_UNKNOWN_TEMPLATE, "template %s does not exist", p->template_id);
  if (!str_eq(t->id, p->template_id)) return CTXD_EINVAL;
  if (!str_eq(t->unit_id, p->unit_id))
    return reject(out, INVENTORY_REASON_TEMPLATE_MISMATCH, "template %s belongs to another pizzeria than %s",
                  p->template_id, p->unit_id);
  accept(state, cmd, INVENTORY_EVENT_STARTED, out);
  out->event.start = *p;
  return 0;
}

/* Material and zone of a measurement that carries a value. */
static int check_references(const inventory_state_t *state, const inventory_measurement_t *m,
                            const inventory_refs_t *refs, inventory_decision_t *out) {
  if (!refs || !refs->material_lookup) return CTXD_EINVAL;
  inventory_material_t material = {.found = false};
  int rc = refs->material_lookup(refs->material_ctx, m->material_type_id, &material);
  if (rc < 0) return rc;
  if (!material.found)
    return reject(out, INVENTORY_REASON_UNKNOWN_MATERIAL, "material type %s is unknown", m->material_type_id);
  if (material.removed)
    return reject(out, INVENTORY_REASON_MATERIAL_REMOVED, "material type %s is removed", m->material_type_id);
  if (material.unit != m->unit)
    return reject(out, INVENTORY_REASON_UNIT_MISMATCH, "material type %s is counted in unit %d, not %d",
                  m->material_type_id, (int)material.unit, (int)m->unit);
  const inventory_template_t *t = refs->tmpl;
  if (!t) return 0;
  if (!str_eq(t->id, state->started.template_id)) return CTXD_EINVAL;
  if (!template_has_zone(t, m->zone_id))
    return reject(out, INVENTORY_REASON_UNKNOWN_ZONE, "zone %s is not in template %s", m->zone_id, t->id);
  return 0;
}

static int decide_add(const inventory_state_t *state, const inventory_command_t *cmd,
                      const inventory_refs_t *refs, inventory_decision_t *out) {
  const inventory_measurement_t *m = &cmd->measurement;
  if (!inventory_measurement_valid(m))
    return reject(out, INVENTORY_REASON_INVALID_COMMAND,
                  "AddMeasurement needs valid ids, a version >= 1, a known unit of measure "
                  "and a value >= 0 (0 when removed)");
  if (refused_unless_in_progress(state, cmd, out) ||
      refused_without_grant(refs, cmd, state->started.unit_id, out))
    return 0;
  const inventory_measurement_t *stored = inventory_state_find(state, m->measurement_id);
  switch (measurement_rule(stored, m)) {
  case RULE_REMOVED:
    return reject(out, INVENTORY_REASON_MEASUREMENT_REMOVED, "measurement %s was removed and cannot change",
                  m->measurement_id);
  case RULE_CONFLICT:
    return reject(out, INVENTORY_REASON_MEASUREMENT_CONFLICT,
                  "measurement %s is at version %d; version %d conflicts with it", m->measurement_id,
                  (int)stored->version, (int)m->version);
  case RULE_MATERIAL_CHANGED:
    return reject(out, INVENTORY_REASON_MATERIAL_CHANGED, "measurement %s counts material type %s, not %s",
                  m->measurement_id, stored->material_type_id, m->material_type_id);
  case RULE_UNCHANGED: out->outcome = INVENTORY_OUTCOME_UNCHANGED; return 0;
  case RULE_ADD:
  case RULE_REPLACE: break;
  }
  if (!m->removed) {
    int rc = check_references(state, m, refs, out);
    if (rc < 0 || out->outcome == INVENTORY_OUTCOME_REJECTED) return rc;
  }
  accept(state, cmd, INVENTORY_EVENT_MEASUREMENT_CHANGED, out);
  out->event.measurement = *m;
  return 0;
}

static int decide_finish(const inventory_state_t *state, const inventory_command_t *cmd,
                         const inventory_refs_t *refs, inventory_decision_t *out) {
  if (!inventory_finish_valid(&cmd->finish))
    return reject(out, INVENTORY_REASON_INVALID_COMMAND, "FinishInventory needs a valid user id");
  if (refused_unless_in_progress(state, cmd, out) ||
      refused_without_grant(refs, cmd, state->started.unit_id, out))
    return 0;
  accept(state, cmd, INVENTORY_EVENT_FINISHED, out);
  out->event.finish = cmd->finish;
  return 0;
}

int inventory_decide(const inventory_state_t *state, const inventory_command_t *cmd,
                     const inventory_refs_t *refs, inventory_decision_t *out) {
  if (!cmd || !out) return CTXD_EINVAL;
  memset(out, 0, sizeof *out);
  if (!inventory_id_valid(cmd->inventory_id))
    return reject(out, INVENTORY_REASON_INVALID_COMMAND, "the inventory id is not valid");
  if (exists(state) && strcmp(state->id, cmd->inventory_id) != 0) return CTXD_EINVAL;
  int rc = CTXD_EINVAL;
  switch (cmd->kind) {
  case INVENTORY_CMD_START: rc = decide_start(state, cmd, refs, out); break;
  case INVENTORY_CMD_ADD_MEASUREMENT: rc = decide_add(state, cmd, refs, out); break;
  case INVENTORY_CMD_FINISH: rc = decide_finish(state, cmd, refs, out); break;
  }
  if (rc < 0) memset(out, 0, sizeof *out);
  return rc;
}
