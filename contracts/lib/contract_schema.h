/* The contract schema engine: the one implementation behind every contract check.
 *
 * A contract's body is described by a tree of ctxd__schema_type_t. The tree comes either
 * from a JSON definition (ctxd__schema_def_parse: what the generator and the host's
 * registry do) or from static tables that contractc generates for typed access (those
 * also carry the C layout: offsets of each field in the generated struct). Validation,
 * typed decoding and encoding, and the comparison behind the compatibility check and the
 * upcaster check all walk this tree, so the host's validator, the plugins' typed decoders
 * and the build agree on every rule and every error text.
 *
 * It links into plugins (through ctxd_contracts) as well as into the host, so it uses
 * nothing but libc and jansson. Pure: no I/O, no globals; every function is thread-safe
 * on distinct outputs. See contracts/README.md for the definition format.
 */
#ifndef CTXD_CONTRACT_SCHEMA_H
#define CTXD_CONTRACT_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* Limits of typed decoding (the host's envelope decoder applies its own to whole bodies). */
#define CTXD__SCHEMA_MAX_BYTES ((size_t)1 << 20)
#define CTXD__SCHEMA_MAX_DEPTH 64

typedef enum {
  CTXD__SCHEMA_STRING = 1, /* char *, NULL when absent or null */
  CTXD__SCHEMA_INT,        /* int64_t */
  CTXD__SCHEMA_DECIMAL,    /* char *, plain decimal text; NULL when absent or null */
  CTXD__SCHEMA_BOOL,       /* bool */
  CTXD__SCHEMA_UUID,       /* char[37], canonical; "" when absent or null */
  CTXD__SCHEMA_DATETIME,   /* char *, ISO 8601 as received; NULL when absent or null */
  CTXD__SCHEMA_ENUM,       /* int32_t */
  CTXD__SCHEMA_OBJECT,     /* nested struct */
  CTXD__SCHEMA_ARRAY       /* T *items at offset, size_t count at count_offset */
} ctxd__schema_kind_t;

typedef struct {
  const char *name;
  int32_t value;
  const char *description; /* may be NULL */
} ctxd__schema_enum_t;

typedef struct ctxd__schema_field_s ctxd__schema_field_t;
typedef struct ctxd__schema_type_s ctxd__schema_type_t;

struct ctxd__schema_type_s {
  ctxd__schema_kind_t kind;
  size_t max_length;                 /* string: characters (code points); 0 = unlimited */
  bool has_min, has_max;             /* int */
  int64_t min, max;                  /* int */
  const ctxd__schema_enum_t *values; /* enum, in definition order */
  size_t nvalues;
  const ctxd__schema_field_t *fields; /* object, in definition order */
  size_t nfields;
  const ctxd__schema_type_t *items; /* array: the element type (never an array) */
  size_t max_items;                 /* array; 0 = unlimited */
  size_t size; /* typed layout of an object: sizeof its struct; 0 in parsed definitions */
};

struct ctxd__schema_field_s {
  const char *name; /* as defined (PascalCase); matched case-insensitively on the wire */
  const char *description;
  bool required; /* must be present (possibly null when nullable) */
  bool nullable; /* may be null */
  ctxd__schema_type_t type;
  const json_t *example; /* parsed definitions only (borrowed), NULL otherwise */
  /* Typed layout, generated tables only. */
  size_t offset;       /* the value; for arrays the items pointer */
  size_t count_offset; /* arrays: the size_t element count */
  size_t has_offset;   /* the bool presence flag, when ctxd__schema_field_has_flag() */
};

/* Whether the typed struct carries `bool has_<field>`: for an optional or nullable field
 * whose C type has no empty value of its own (int, bool, enum, object, array). Pointers
 * are NULL and UUIDs "" instead. */
bool ctxd__schema_field_has_flag(const ctxd__schema_field_t *f);

/* The definition-language name of a kind ("string", "int", ...); static, never NULL. */
const char *ctxd__schema_kind_name(ctxd__schema_kind_t kind);

/* ---- values ------------------------------------------------------------------------- */

/* Checks value against type t. Returns 0 or CTXD_EVALIDATION with one line in err:
 * "<root>.<path>: <reason>", e.g. "message.Items[2].Quantity: expected an integer, got a
 * string". Unknown properties are ignored; property names match ignoring ASCII case (an
 * exact match wins). Optional fields may be absent or null. CTXD_EINVAL for NULL args. */
int ctxd__schema_validate(const ctxd__schema_type_t *t, const json_t *value, const char *root, char *err,
                          size_t errlen);

/* Typed access over a generated object type (one with a C layout). */

/* Parses text (len bytes, at most CTXD__SCHEMA_MAX_BYTES, nesting at most
 * CTXD__SCHEMA_MAX_DEPTH), validates it as ctxd__schema_validate does with root "message",
 * and fills *out (t->size bytes, zeroed first). 0, CTXD_EVALIDATION (bad input; reason in
 * err), CTXD_ENOMEM or CTXD_EINVAL (NULL args). On error *out is left zeroed. Whatever
 * the result, ctxd__schema_free(t, out) is safe afterwards. */
int ctxd__schema_decode(const ctxd__schema_type_t *t, const char *text, size_t len, void *out, char *err,
                        size_t errlen);

/* Returns the compact JSON text of *in with property names exactly as defined (new, free
 * with free()), or NULL when *in does not satisfy the contract (a required string unset,
 * a bad UUID, a value out of range...) or memory runs out. */
char *ctxd__schema_encode(const ctxd__schema_type_t *t, const void *in);

/* Same as ctxd__schema_encode, as a JSON value (new reference), with the reason in err
 * when it returns NULL. */
json_t *ctxd__schema_to_json(const ctxd__schema_type_t *t, const void *in, char *err, size_t errlen);

/* Frees what decoding allocated in *obj and zeroes it. */
void ctxd__schema_free(const ctxd__schema_type_t *t, void *obj);

/* ---- definitions -------------------------------------------------------------------- */

/* One parsed definition file. Strings and JSON values are borrowed from `json`, which
 * must outlive it; message_type and the body's arrays are owned (ctxd__schema_def_release). */
typedef struct {
  const json_t *json;
  const char *ns;        /* "Ctxd.Inventory.Contracts" (without the version) */
  const char *type_name; /* "AddMeasurement" */
  int version;           /* >= 1 */
  const char *kind;      /* "event", "command" or "reply" */
  const char *status;    /* "released" or "draft" */
  const char *description;
  const json_t *producers; /* arrays of context names */
  const json_t *consumers;
  char *message_type;       /* "Ctxd.Inventory.Contracts.v1:AddMeasurement" */
  ctxd__schema_type_t body; /* an object */
  bool upcast;              /* has upcast_from_previous */
  const json_t *renames;    /* object {"Old": "New"}, or NULL */
  const json_t *defaults;   /* object {"Field": value}, or NULL */
  const char *exchange;     /* the RabbitMQ exchange when it is not derived from the type
                               (.NET's [EntityName]), or NULL */
  const json_t *implements; /* array of the message types (URN names) it also is, or NULL */
} ctxd__schema_def_t;

/* Parses and checks a definition (unknown keys, names, types, limits, examples and upcast
 * defaults valid for their field, ...). 0, or CTXD_EINVAL with "<key path>: <reason>" in
 * err (e.g. "fields.Category.values[2].value: 5 is used twice"), or CTXD_ENOMEM. *out is
 * zeroed on error; releasing it is still allowed. */
int ctxd__schema_def_parse(const json_t *json, ctxd__schema_def_t *out, char *err, size_t errlen);

void ctxd__schema_def_release(ctxd__schema_def_t *def);

/* Checks that cur's upcast_from_previous turns every valid message of prev (the same
 * Namespace:Type, version one lower) into a valid message of cur: renames name fields of
 * both, every field cur requires is carried over or has a default, and carried-over fields
 * accept every value the previous version allowed. 0 or CTXD_EINVAL with the reason. */
int ctxd__schema_check_upcast(const ctxd__schema_def_t *prev, const ctxd__schema_def_t *cur, char *err,
                              size_t errlen);

/* Checks that every valid message of def is a valid message of base, one of the types def
 * lists in "implements": a consumer of base receives def's messages (MassTransit's
 * messageType lists base) and validates them against base. Every field base has must be
 * in def, at least as present and with no value base refuses (an enum value base lacks, a
 * looser limit). 0 or CTXD_EINVAL with the reason, e.g. "implements: Ns.v1:Rejected does
 * not accept every message of this type: Reason: enum value 12 (MaterialTypeChanged) is
 * not in it". */
int ctxd__schema_check_implements(const ctxd__schema_def_t *base, const ctxd__schema_def_t *def, char *err,
                                  size_t errlen);

typedef enum {
  /* A released version must accept exactly the messages it accepted (modulo new optional
   * fields): producers and consumers on either side of the change keep understanding
   * each other. */
  CTXD__SCHEMA_FROZEN,
  /* The newer type accepts every value of the older one (what an upcast needs). */
  CTXD__SCHEMA_WIDENS
} ctxd__schema_compare_t;

/* Compares two object types. 0, or CTXD_EVALIDATION with "<field path>: <reason>", e.g.
 * "Items[].Quantity: type changed from int to string" or "Category: enum value 6
 * (Consumables) removed". */
int ctxd__schema_compare(const ctxd__schema_type_t *older, const ctxd__schema_type_t *newer,
                         ctxd__schema_compare_t mode, char *err, size_t errlen);

/* Shared with the host's envelope decoder (plugins cannot reach host symbols, so the rules
 * live here, in the one library both link). */

/* 1 when a and b are equal ignoring ASCII case (not the locale's). */
bool ctxd__schema_ascii_ieq(const char *a, size_t alen, const char *b, size_t blen);

/* The value of key in obj, an exact match first, else ignoring ASCII case (MassTransit
 * writes camelCase, older publishers PascalCase); borrowed from obj, or NULL. */
const json_t *ctxd__schema_get_ci(const json_t *obj, const char *key);

/* Parses a UUID of len bytes in 8-4-4-4-12, 32-hex or {braced} form into canonical
 * lowercase 8-4-4-4-12 in out. 0 or -1. */
int ctxd__schema_uuid_parse(const char *s, size_t len, char out[37]);

#endif
