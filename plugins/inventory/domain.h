/* Inventory bounded context, pure domain (seed 001: Dodo Pizza's auditor tablet).
 *
 * An auditor counts raw materials of a pizzeria zone by zone, following an
 * InventoryTemplate. The Inventory aggregate is event-sourced: inventory_decide() turns a
 * command into at most one event (or a rejection), inventory_state_apply() folds an event
 * into the state, and events and snapshots encode to the JSON text the event store keeps.
 *
 * Pure: no I/O, no globals, no threads. Reference data (material types, the template) is
 * passed in by the caller. Functions return 0 or a negative CTXD_E* code unless their
 * comment says otherwise; on failure their outputs are left empty.
 *
 * Formats (stable: they are what PostgreSQL keeps):
 * - A measured value is an exact decimal kept as thousandths in an int64_t (value_milli);
 *   in JSON it is a decimal string such as "12.5" (no exponent, at most 3 fraction
 *   digits), because a JSON number would pass through a double. null means removed.
 * - Times are int64 milliseconds since the Unix epoch (UTC), JSON keys ending in "AtMs".
 * - Units of measure use the DataCatalog enum numbers (Quantity=1, Gram=5, ...).
 */
#ifndef CTXD_INVENTORY_DOMAIN_H
#define CTXD_INVENTORY_DOMAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ctxd/errno.h>

/* Identifiers (inventory, pizzeria unit, template, zone, material type, measurement, user)
 * are 1..63 printable ASCII characters without spaces, typically UUIDs. */
#define INVENTORY_ID_SIZE 64
/* Fits the longest formatted value ("9223372036854775.807") and its NUL. */
#define INVENTORY_VALUE_TEXT_SIZE 24
#define INVENTORY_TEXT_SIZE 192

/* DataCatalog's UnitOfMeasure; the numbers are the wire values. */
typedef enum {
  INVENTORY_UOM_QUANTITY = 1,
  INVENTORY_UOM_GRAM = 5,
  INVENTORY_UOM_MILLILITER = 7,
  INVENTORY_UOM_METER = 8,
} inventory_uom_t;

/* ---- Values and identifiers ------------------------------------------------------- */

/* Parses a non-negative decimal ("12", "0.125") into thousandths. CTXD_EINVAL for any
 * other syntax (sign, exponent, spaces, more than 3 fraction digits: never rounded, to
 * stay exact), CTXD_ERANGE when it does not fit. */
int inventory_value_parse(const char *text, int64_t *milli);

/* Writes the canonical text of a non-negative value (no trailing fraction zeros, no
 * point for whole numbers) into buf. CTXD_EINVAL for a negative value, CTXD_ETOOBIG when
 * buf is shorter than needed (INVENTORY_VALUE_TEXT_SIZE always suffices). */
int inventory_value_format(int64_t milli, char *buf, size_t size);

/* Copies a valid identifier into dst. CTXD_EINVAL when src is not one (empty, too long,
 * a space or control character); dst is then set to "". */
int inventory_id_copy(char dst[INVENTORY_ID_SIZE], const char *src);

/* ---- Rejections ------------------------------------------------------------------ */

/* Why the domain refused something. The string codes are stable (they travel in replies
 * and rejection events); enumerators are only appended. */
typedef enum {
  INVENTORY_REASON_NONE = 0,
  INVENTORY_REASON_INVALID_COMMAND,      /* "invalid_command" */
  INVENTORY_REASON_UNKNOWN_INVENTORY,    /* "unknown_inventory" */
  INVENTORY_REASON_ALREADY_STARTED,      /* "already_started" */
  INVENTORY_REASON_INVENTORY_FINISHED,   /* "inventory_finished" */
  INVENTORY_REASON_UNKNOWN_TEMPLATE,     /* "unknown_template" */
  INVENTORY_REASON_TEMPLATE_MISMATCH,    /* "template_mismatch" */
  INVENTORY_REASON_MEASUREMENT_REMOVED,  /* "measurement_removed" */
  INVENTORY_REASON_MEASUREMENT_CONFLICT, /* "measurement_conflict" */
  INVENTORY_REASON_MATERIAL_CHANGED,     /* "material_changed" */
  INVENTORY_REASON_UNKNOWN_MATERIAL,     /* "unknown_material" */
  INVENTORY_REASON_MATERIAL_REMOVED,     /* "material_removed" */
  INVENTORY_REASON_UNIT_MISMATCH,        /* "unit_mismatch" */
  INVENTORY_REASON_UNKNOWN_ZONE,         /* "unknown_zone" */
  INVENTORY_REASON_INVALID_TEMPLATE,     /* "invalid_template" */
  INVENTORY_REASON_UNKNOWN_UNIT,         /* "unknown_unit" */
  INVENTORY_REASON_USER_NOT_ALLOWED,     /* "user_not_allowed" */
} inventory_reason_t;

typedef struct {
  inventory_reason_t reason;
  char text[INVENTORY_TEXT_SIZE]; /* for humans; may change between releases */
} inventory_rejection_t;

/* The stable code of reason ("none" for INVENTORY_REASON_NONE). Static string, never
 * NULL ("unknown" for a value outside the enum), never freed. */
const char *inventory_reason_code(inventory_reason_t reason);

/* ---- InventoryTemplate ------------------------------------------------------------ */

typedef enum {
  INVENTORY_CATEGORY_MONTHLY = 1,
  INVENTORY_CATEGORY_WEEKLY = 2,
  INVENTORY_CATEGORY_DAILY = 3,
} inventory_category_t;

/* A storage zone (fridge, freezer, shelf) and the material types counted there. The
 * template is a plain CRUD entity: these structs only borrow the caller's strings. */
typedef struct {
  const char *id;
  const char *name;
  const char *const *material_type_ids;
  size_t material_count;
} inventory_zone_t;

typedef struct {
  const char *id;
  const char *unit_id; /* the pizzeria */
  const char *name;
  inventory_category_t category;
  const inventory_zone_t *zones;
  size_t zone_count;
} inventory_template_t;

/* 0 when t is a valid template: valid ids, a name that is not blank, a known category,
 * at least one zone, zone ids and zone names unique (names compared byte for byte), zone
 * names not blank, valid material ids, each material at most once per zone (the same
 * material may sit in several zones). Otherwise CTXD_EVALIDATION with *why set to
 * INVENTORY_REASON_INVALID_TEMPLATE and a text naming the first problem; CTXD_EINVAL when
 * t or why is NULL. */
int inventory_template_validate(const inventory_template_t *t, inventory_rejection_t *why);

/* True when a and b are the same template: every field, zones and materials in order. */
bool inventory_template_equal(const inventory_template_t *a, const inventory_template_t *b);

/* What the office manager's save or delete of a template does (the template's CRUD). */
typedef enum {
  INVENTORY_TEMPLATE_SAVE = 1,  /* store next (a new template, or a replacement) */
  INVENTORY_TEMPLATE_DELETE,    /* mark the stored one deleted */
  INVENTORY_TEMPLATE_UNCHANGED, /* a repeat: nothing to store, not an error */
  INVENTORY_TEMPLATE_REJECTED,  /* why says why */
} inventory_template_outcome_t;

/* Decides a save (next not NULL) or a delete (next NULL) of a template against the
 * stored one: current (NULL when there is none, or it is deleted; deleted tells which).
 * Rules: save: next invalid (inventory_template_validate) -> invalid_template; current for
 * another pizzeria -> template_mismatch (a template stays with its pizzeria: inventories
 * started with it name both); equal to current -> UNCHANGED; else SAVE (a deleted one is
 * created again). Delete: never existed -> unknown_template; already deleted -> UNCHANGED;
 * else DELETE. Returns the outcome; why is set for REJECTED and cleared otherwise. */
inventory_template_outcome_t inventory_template_decide(const inventory_template_t *current, bool deleted,
                                                       const inventory_template_t *next,
                                                       inventory_rejection_t *why);

/* ---- Command and event payloads --------------------------------------------------- */

typedef struct {
  char unit_id[INVENTORY_ID_SIZE];
  char template_id[INVENTORY_ID_SIZE];
  char started_by[INVENTORY_ID_SIZE];
  int64_t at_ms;
} inventory_start_t;

/* One measurement: a quantity the auditor entered for a material in a zone, not
 * necessarily its total. The same struct is the AddMeasurement command, the
 * MeasurementChanged event and the stored measurement. */
typedef struct {
  char measurement_id[INVENTORY_ID_SIZE];
  int32_t version; /* the measurement's own version, >= 1 */
  char material_type_id[INVENTORY_ID_SIZE];
  bool removed;        /* the seed's null value; value_milli must then be 0 */
  int64_t value_milli; /* thousandths of unit, >= 0 */
  inventory_uom_t unit;
  char zone_id[INVENTORY_ID_SIZE];
  /* Command and event: who made this change. Stored measurement: who first measured it
   * (the seed keeps the creator; later versions do not replace it). */
  char user_id[INVENTORY_ID_SIZE];
} inventory_measurement_t;

typedef struct {
  char by[INVENTORY_ID_SIZE];
  int64_t at_ms;
} inventory_finish_t;

/* ---- Commands --------------------------------------------------------------------- */

typedef enum {
  INVENTORY_CMD_START = 1,
  INVENTORY_CMD_ADD_MEASUREMENT,
  INVENTORY_CMD_FINISH,
} inventory_command_kind_t;

typedef struct {
  inventory_command_kind_t kind;
  char inventory_id[INVENTORY_ID_SIZE];
  union {
    inventory_start_t start;             /* INVENTORY_CMD_START */
    inventory_measurement_t measurement; /* INVENTORY_CMD_ADD_MEASUREMENT */
    inventory_finish_t finish;           /* INVENTORY_CMD_FINISH */
  };
} inventory_command_t;

/* The user who acts (StartedBy, the measurement's UserId, FinishedBy), borrowed from cmd;
 * "" for an unknown kind. */
const char *inventory_command_user(const inventory_command_t *cmd);

/* ---- Events ----------------------------------------------------------------------- */

typedef enum {
  INVENTORY_EVENT_STARTED = 1,
  INVENTORY_EVENT_MEASUREMENT_CHANGED, /* added, edited or removed */
  INVENTORY_EVENT_FINISHED,
} inventory_event_kind_t;

typedef struct {
  inventory_event_kind_t kind;
  char inventory_id[INVENTORY_ID_SIZE];
  int64_t version; /* the aggregate's version once this event is applied: 1, 2, ... */
  union {
    inventory_start_t start;             /* INVENTORY_EVENT_STARTED */
    inventory_measurement_t measurement; /* INVENTORY_EVENT_MEASUREMENT_CHANGED */
    inventory_finish_t finish;           /* INVENTORY_EVENT_FINISHED */
  };
} inventory_event_t;

/* The event store's type name: "InventoryStarted", "MeasurementChanged",
 * "InventoryFinished". Static string, never freed; NULL for an unknown kind. */
const char *inventory_event_type_name(inventory_event_kind_t kind);

/* Encodes ev as compact JSON into a new string in *json (free() it). CTXD_EINVAL for an
 * invalid event, CTXD_ENOMEM. Shapes (keys in this order):
 *   InventoryStarted   {"inventoryId","version","unitId","templateId","startedBy",
 *                       "startedAtMs"}
 *   MeasurementChanged {"inventoryId","version","measurementId","measurementVersion",
 *                       "materialTypeId","value":"12.5"|null,"unitOfMeasure":5,"zoneId",
 *                       "userId"}
 *   InventoryFinished  {"inventoryId","version","finishedBy","finishedAtMs"} */
int inventory_event_encode(const inventory_event_t *ev, char **json);

/* Decodes the JSON of an event whose type name is type_name into *ev. Unknown keys are
 * ignored; missing or ill-typed fields, an unknown type name or an invalid event give
 * CTXD_EDECODE. */
int inventory_event_decode(const char *type_name, const char *json, inventory_event_t *ev);

/* ---- State ------------------------------------------------------------------------ */

typedef enum {
  INVENTORY_STATUS_NONE = 0, /* no event yet: the inventory does not exist */
  INVENTORY_STATUS_IN_PROGRESS = 1,
  INVENTORY_STATUS_FINISHED = 2,
} inventory_status_t;

/* The aggregate. Owns its measurement array: start with inventory_state_init(), end with
 * inventory_state_clear(). Treat as read-only outside this module. */
typedef struct {
  char id[INVENTORY_ID_SIZE];
  int64_t version; /* number of events applied */
  inventory_status_t status;
  inventory_start_t started;             /* set by InventoryStarted */
  inventory_finish_t finished;           /* set by InventoryFinished, zeroed before */
  inventory_measurement_t *measurements; /* sorted by measurement_id (bytewise) */
  size_t measurement_count;
  size_t measurement_cap; /* private */
} inventory_state_t;

/* Makes s an empty state (status NONE, version 0); allocates nothing. */
void inventory_state_init(inventory_state_t *s);

/* Frees what s owns and makes it empty again. NULL is a no-op. */
void inventory_state_clear(inventory_state_t *s);

/* The measurement with this id, or NULL. The pointer is borrowed from s and valid until
 * the next apply or clear on s. */
const inventory_measurement_t *inventory_state_find(const inventory_state_t *s, const char *measurement_id);

/* The measurements that count: those not removed (a removed one stays in the state, as
 * the seed's null value, so that its later edits are refused). */
size_t inventory_state_counted(const inventory_state_t *s);

/* True when a and b hold the same aggregate (every field, every measurement). */
bool inventory_state_equal(const inventory_state_t *a, const inventory_state_t *b);

/* Folds ev into s; on failure s is unchanged. Checks that the history is possible:
 * CTXD_EINVAL for an invalid event or one of another inventory, CTXD_ESTATE when the
 * status does not allow it (started twice, anything after finished, anything before
 * started), CTXD_ECONFLICT when ev->version is not s->version + 1 or the measurement
 * rules below refuse it, CTXD_ENOMEM. */
int inventory_state_apply(inventory_state_t *s, const inventory_event_t *ev);

/* ---- Snapshots -------------------------------------------------------------------- */

/* Encodes a started state as JSON into a new string in *json (free() it):
 *   {"format":1,"inventoryId","version","status":"InProgress"|"Finished","unitId",
 *    "templateId","startedBy","startedAtMs",["finishedBy","finishedAtMs" when Finished,]
 *    "measurements":[{"measurementId","measurementVersion","materialTypeId","value",
 *                     "unitOfMeasure","zoneId","userId"}, ... sorted by id]}
 * CTXD_EINVAL for a state that was never started, CTXD_ENOMEM. */
int inventory_snapshot_encode(const inventory_state_t *s, char **json);

/* Decodes a snapshot into s, which must be empty (initialised or cleared); the caller
 * clears it afterwards. Replaying the events after the snapshot's version onto s gives
 * the state a full replay gives. CTXD_EDECODE for malformed or impossible snapshots
 * (unknown format, duplicate measurement ids, version smaller than the events its
 * content needs), CTXD_ENOMEM; s is then left empty. */
int inventory_snapshot_decode(const char *json, inventory_state_t *s);

/* ---- Decisions -------------------------------------------------------------------- */

/* What the auditor's material type is, as Inventory's own copy of DataCatalog has it. */
typedef struct {
  bool found;
  bool removed;
  inventory_uom_t unit; /* BasicUnitOfMeasure */
} inventory_material_t;

/* Fills *out for material_type_id and returns 0 (found=false for an unknown id), or
 * returns a negative CTXD_E* code that inventory_decide() passes through. */
typedef int (*inventory_material_lookup_fn)(void *ctx, const char *material_type_id,
                                            inventory_material_t *out);

/* The pizzeria (unit) as Inventory's own copy of DataCatalog has it. */
typedef struct {
  bool found;
  bool removed;
} inventory_unit_t;

/* The acting user's grant for the inventory's pizzeria, as Inventory's own copy of Auth's
 * grants has it. */
typedef struct {
  bool found;
  bool revoked;
} inventory_grant_t;

/* Reference data a decision reads. */
typedef struct {
  inventory_material_lookup_fn material_lookup; /* needed by AddMeasurement with a value */
  void *material_ctx;
  /* StartInventory: the template it names (NULL: it does not exist). AddMeasurement:
   * the inventory's template when it still exists, to check zones; NULL skips that. */
  const inventory_template_t *tmpl;
  /* StartInventory: the pizzeria it names (the seed's application service checks that it
   * exists); NULL skips the check. */
  const inventory_unit_t *unit;
  /* Every command: the grant of inventory_command_user(cmd) for the inventory's pizzeria
   * (StartInventory: the one it names; the others: the one it was started for), since
   * the seed's application service checks that the user may act for it; NULL skips the
   * check. */
  const inventory_grant_t *grant;
} inventory_refs_t;

typedef enum {
  INVENTORY_OUTCOME_ACCEPTED = 1, /* event holds the one new event */
  INVENTORY_OUTCOME_UNCHANGED,    /* idempotent repeat: no event, not an error */
  INVENTORY_OUTCOME_REJECTED,     /* rejection says why */
} inventory_outcome_t;

typedef struct {
  inventory_outcome_t outcome;
  inventory_event_t event;         /* valid when ACCEPTED */
  inventory_rejection_t rejection; /* valid when REJECTED */
} inventory_decision_t;

/* Decides cmd against state (NULL or an empty state: the inventory does not exist).
 * Returns 0 with *out filled, whatever the outcome; a negative code only for misuse
 * (CTXD_EINVAL: NULL arguments, cmd for another inventory than state, a template other
 * than the inventory's, AddMeasurement with a value and no material_lookup) or an error
 * of material_lookup. refs may be NULL when the command needs no reference data.
 *
 * Rules, checked in this order:
 *  all      malformed command (ids, measurement version < 1, unknown unit, negative
 *           value, removed with a value)                       -> invalid_command
 *  Start    inventory exists (in progress or finished)         -> already_started
 *           refs->unit given, the pizzeria unknown or removed  -> unknown_unit
 *           refs->grant given, none or revoked                 -> user_not_allowed
 *           refs->tmpl NULL                                   -> unknown_template
 *           template id or its pizzeria differs from the command -> template_mismatch
 *  Add,     inventory does not exist                           -> unknown_inventory
 *  Finish   inventory finished                                 -> inventory_finished
 *           refs->grant given, none or revoked                 -> user_not_allowed
 *  Add      new measurement id: added, whatever its first version (the seed accepts any)
 *           existing one already removed (checked first, as in the seed, so even a
 *           repeat of the removal)                             -> measurement_removed
 *           version = stored + 1: replaces value, unit, zone (removed when no value);
 *             another material type                            -> material_changed
 *           version = stored, same value, unit, zone, material -> UNCHANGED
 *           version = stored with anything else, a gap (> stored + 1) or an older
 *           version                                            -> measurement_conflict
 *           when it carries a value (removals skip these, so a measurement of a
 *           material deleted since can still be removed):
 *             material unknown / removed                       -> unknown_material /
 *                                                                 material_removed
 *             unit differs from the material's basic unit      -> unit_mismatch
 *             refs->tmpl given and zone not in it              -> unknown_zone
 *           (a material not listed in that zone is accepted: the template is what to
 *           count, and an auditor may find an item elsewhere) */
int inventory_decide(const inventory_state_t *state, const inventory_command_t *cmd,
                     const inventory_refs_t *refs, inventory_decision_t *out);

/* ---- Public (integration) events -------------------------------------------------- */

/* A domain event as other contexts see it: the type name of inventory_event_type_name()
 * and the event's JSON plus "unitId" (the pizzeria, which reports group by). */
typedef struct {
  const char *type_name; /* static, never freed */
  char *body;            /* JSON; free() it */
} inventory_public_event_t;

/* Builds the public form of ev, which must already be applied to state (state supplies
 * the pizzeria). CTXD_EINVAL for an invalid event or one of another inventory,
 * CTXD_ENOMEM. */
int inventory_public_event_build(const inventory_state_t *state, const inventory_event_t *ev,
                                 inventory_public_event_t *out);

#endif
