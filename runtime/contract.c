/* Contracts in the host. See contract.h. Parsing, validation and comparison are the
 * engine's (contracts/lib/contract_schema.c, shared with the generator and the plugins'
 * typed decoders); this file holds the set of contracts and the upcasters. */
#include "contract.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ctxd/errno.h>

#include "contract_registry.h"
#include "contract_schema.h"
#include "fail.h"
#include "envelope.h"
#include "msgname.h"

struct ctxd__contract_s {
  json_t *json;
  ctxd__schema_def_t def;           /* borrows json */
  const ctxd__contract_t *previous; /* the version this one upcasts from, or NULL */
  char *exchange;                   /* stated, or derived from the message type */
  char **base_exchanges;            /* one per def.implements entry */
};

struct ctxd__contracts_s {
  ctxd__contract_t *v; /* sorted by message type */
  size_t n;
};

static int by_type(const void *a, const void *b) {
  return strcmp(((const ctxd__contract_t *)a)->def.message_type,
                ((const ctxd__contract_t *)b)->def.message_type);
}

static int by_key(const void *key, const void *elem) {
  return strcmp(key, ((const ctxd__contract_t *)elem)->def.message_type);
}

void ctxd__contracts_free(ctxd__contracts_t *c) {
  if (!c) return;
  for (size_t i = 0; i < c->n; i++) {
    for (size_t b = 0; c->v[i].base_exchanges && b < json_array_size(c->v[i].def.implements); b++)
      free(c->v[i].base_exchanges[b]);
    free(c->v[i].base_exchanges);
    free(c->v[i].exchange);
    ctxd__schema_def_release(&c->v[i].def);
    json_decref(c->v[i].json);
  }
  free(c->v);
  free(c);
}

const ctxd__contract_t *ctxd__contracts_find(const ctxd__contracts_t *c, const char *message_type) {
  if (!c || !message_type || c->n == 0) return NULL;
  return bsearch(message_type, c->v, c->n, sizeof *c->v, by_key);
}

/* The version before k of the same Namespace:Type, or NULL. */
static const ctxd__contract_t *find_version(const ctxd__contracts_t *c, const ctxd__contract_t *k,
                                            int version) {
  char name[512];
  snprintf(name, sizeof name, "%s.v%d:%s", k->def.ns, version, k->def.type_name);
  return ctxd__contracts_find(c, name);
}

/* A new copy of type's exchange name: the contract's own when type has one in c, else
 * MassTransit's formatting of it. NULL with the reason in err. */
static char *exchange_of(const ctxd__contracts_t *c, const char *type, char *err, size_t errlen) {
  const ctxd__contract_t *k = ctxd__contracts_find(c, type);
  if (k && k->def.exchange) return strdup(k->def.exchange);
  char name[256];
  int rc = ctxd__msgname_exchange(type, name, sizeof name);
  if (rc) ctxd__fail(err, errlen, rc, "'%s' is not a message type MassTransit can name", type);
  char *copy = rc ? NULL : strdup(name);
  if (!rc && !copy) ctxd__fail(err, errlen, CTXD_ENOMEM, "out of memory");
  return copy;
}

/* Fills k's exchange and its bases' exchanges, checking that a base defined in c accepts
 * k's messages (every contract is parsed and sorted). */
static int name_exchanges(const ctxd__contracts_t *c, ctxd__contract_t *k, char *err, size_t errlen) {
  char reason[512] = "out of memory";
  size_t n = json_array_size(k->def.implements);
  if (!(k->exchange = exchange_of(c, k->def.message_type, reason, sizeof reason)))
    return ctxd__fail(err, errlen, CTXD_EINVAL, "%s: %s", k->def.message_type, reason);
  if (n && !(k->base_exchanges = calloc(n, sizeof *k->base_exchanges)))
    return ctxd__fail(err, errlen, CTXD_ENOMEM, "out of memory");
  for (size_t b = 0; b < n; b++) {
    const char *type = json_string_value(json_array_get(k->def.implements, b));
    const ctxd__contract_t *base = ctxd__contracts_find(c, type);
    /* a base that is a contract validates what it receives: k's messages must pass */
    if (base && ctxd__schema_check_implements(&base->def, &k->def, reason, sizeof reason))
      return ctxd__fail(err, errlen, CTXD_EINVAL, "%s: %s", k->def.message_type, reason);
    if (!(k->base_exchanges[b] = exchange_of(c, type, reason, sizeof reason)))
      return ctxd__fail(err, errlen, CTXD_EINVAL, "%s: implements[%zu]: %s", k->def.message_type, b, reason);
  }
  return 0;
}

int ctxd__contracts_load(const char *const *defs, size_t n, ctxd__contracts_t **out, char *err,
                         size_t errlen) {
  if (!out || (!defs && n)) return ctxd__fail(err, errlen, CTXD_EINVAL, "invalid arguments");
  *out = NULL;
  ctxd__contracts_t *c = calloc(1, sizeof *c);
  if (!c || (n && !(c->v = calloc(n, sizeof *c->v)))) {
    free(c);
    return ctxd__fail(err, errlen, CTXD_ENOMEM, "out of memory");
  }
  int rc = 0;
  char reason[512];
  for (size_t i = 0; i < n && !rc; i++) {
    json_error_t je;
    ctxd__contract_t *k = &c->v[c->n];
    k->json = json_loads(defs[i], JSON_REJECT_DUPLICATES, &je);
    if (!k->json) {
      rc = ctxd__fail(err, errlen, CTXD_EINVAL, "contract definition %zu: not JSON: %s", i, je.text);
      break;
    }
    c->n++;
    rc = ctxd__schema_def_parse(k->json, &k->def, reason, sizeof reason);
    if (rc) {
      const char *type = json_string_value(json_object_get(k->json, "type"));
      ctxd__fail(err, errlen, rc, "contract definition %zu (%s): %s", i, type ? type : "?", reason);
    }
  }
  if (!rc) qsort(c->v, c->n, sizeof *c->v, by_type);
  for (size_t i = 0; i < c->n && !rc; i++) {
    ctxd__contract_t *k = &c->v[i];
    if (i && strcmp(c->v[i - 1].def.message_type, k->def.message_type) == 0) {
      rc = ctxd__fail(err, errlen, CTXD_EINVAL, "%s is defined twice", k->def.message_type);
    } else if (k->def.upcast) {
      k->previous = find_version(c, k, k->def.version - 1);
      if (!k->previous)
        rc = ctxd__fail(err, errlen, CTXD_EINVAL, "%s: upcast_from_previous: no version %d",
                        k->def.message_type, k->def.version - 1);
      else if ((rc = ctxd__schema_check_upcast(&k->previous->def, &k->def, reason, sizeof reason)))
        ctxd__fail(err, errlen, rc, "%s: %s", k->def.message_type, reason);
    }
  }
  for (size_t i = 0; i < c->n && !rc; i++) rc = name_exchanges(c, &c->v[i], err, errlen);
  if (rc) {
    ctxd__contracts_free(c);
    return rc;
  }
  *out = c;
  return 0;
}

int ctxd__contracts_new(ctxd__contracts_t **out, char *err, size_t errlen) {
  return ctxd__contracts_load(ctxd__contract_defs, ctxd__contract_defs_count, out, err, errlen);
}

size_t ctxd__contracts_count(const ctxd__contracts_t *c) { return c ? c->n : 0; }

const ctxd__contract_t *ctxd__contracts_at(const ctxd__contracts_t *c, size_t i) {
  return c && i < c->n ? &c->v[i] : NULL;
}

const char *ctxd__contract_type(const ctxd__contract_t *k) { return k->def.message_type; }
int ctxd__contract_version(const ctxd__contract_t *k) { return k->def.version; }
const char *ctxd__contract_kind(const ctxd__contract_t *k) { return k->def.kind; }
const char *ctxd__contract_status(const ctxd__contract_t *k) { return k->def.status; }
const json_t *ctxd__contract_definition(const ctxd__contract_t *k) { return k->json; }
const char *ctxd__contract_description(const ctxd__contract_t *k) { return k->def.description; }
const ctxd__schema_type_t *ctxd__contract_body(const ctxd__contract_t *k) { return &k->def.body; }
const char *ctxd__contract_exchange(const ctxd__contract_t *k) { return k->exchange; }
size_t ctxd__contract_nbases(const ctxd__contract_t *k) { return json_array_size(k->def.implements); }

const char *ctxd__contract_base(const ctxd__contract_t *k, size_t i) {
  return json_string_value(json_array_get(k->def.implements, i));
}

const char *ctxd__contract_base_exchange(const ctxd__contract_t *k, size_t i) {
  return i < ctxd__contract_nbases(k) ? k->base_exchanges[i] : NULL;
}

int ctxd__contracts_exchange(const ctxd__contracts_t *c, const char *type, char *buf, size_t len) {
  const ctxd__contract_t *k = ctxd__contracts_find(c, type);
  if (!k) return ctxd__msgname_exchange(type, buf, len);
  int n = snprintf(buf, len, "%s", k->exchange);
  return n >= 0 && (size_t)n < len ? 0 : CTXD_ETOOBIG;
}

const ctxd__contract_t *ctxd__contracts_of_exchange(const ctxd__contracts_t *c, const char *exchange) {
  for (size_t i = 0; c && exchange && i < c->n; i++)
    if (strcmp(c->v[i].exchange, exchange) == 0) return &c->v[i];
  return NULL;
}

int ctxd__contract_validate(const ctxd__contract_t *k, const json_t *message, char *err, size_t errlen) {
  if (!k || !message) return ctxd__fail(err, errlen, CTXD_EINVAL, "invalid arguments");
  return ctxd__schema_validate(&k->def.body, message, "message", err, errlen);
}

/* ---------------------------------------------------------------------------------------
 * Upcasting
 */

/* Removes the property whose value is v (found case-insensitively by the caller). */
static void remove_value(json_t *m, const json_t *v) {
  for (void *it = json_object_iter(m); it; it = json_object_iter_next(m, it))
    if (json_object_iter_value(it) == v) {
      /* The key lives in the object: copy it before deleting. */
      char *key = strdup(json_object_iter_key(it));
      if (key) json_object_del(m, key);
      free(key);
      return;
    }
}

/* One step, into m (owned by the caller), as k's upcast_from_previous says. Definition
 * values are deep-copied, never shared: the set is read by many threads at once and
 * jansson's reference counts are the only thing sharing would change. */
static int upcast_step(const ctxd__contract_t *k, json_t *m) {
  const char *key;
  json_t *v;
  json_object_foreach((json_t *)k->def.renames, key, v) {
    json_t *old = ctxd__json_get_ci(m, key);
    if (!old) continue;
    if (!ctxd__json_get_ci(m, json_string_value(v)) && json_object_set(m, json_string_value(v), old))
      return CTXD_ENOMEM;
    remove_value(m, old);
  }
  json_object_foreach((json_t *)k->def.defaults, key, v) {
    json_t *cur = ctxd__json_get_ci(m, key);
    if (cur && !json_is_null(cur)) continue;
    if (cur) remove_value(m, cur); /* a null under another case of the name */
    if (json_object_set_new(m, key, json_deep_copy(v))) return CTXD_ENOMEM;
  }
  return 0;
}

int ctxd__contracts_upcast(const ctxd__contracts_t *c, const char *from_type, const char *to_type,
                           const json_t *message, json_t **out, char *err, size_t errlen) {
  if (!out) return ctxd__fail(err, errlen, CTXD_EINVAL, "invalid arguments");
  *out = NULL;
  if (!c || !from_type || !to_type || !json_is_object(message))
    return ctxd__fail(err, errlen, CTXD_EINVAL, "invalid arguments: the message must be an object");
  const ctxd__contract_t *from = ctxd__contracts_find(c, from_type);
  const ctxd__contract_t *to = ctxd__contracts_find(c, to_type);
  if (!from || !to) return ctxd__fail(err, errlen, CTXD_ENOENT, "no contract %s", from ? to_type : from_type);
  if (from == to) {
    /* A reference, not a change: jansson counts it inside the value. */
    *out = json_incref((json_t *)message);
    return 0;
  }
  /* Walk down from `to`; each step knows only its previous version. */
  size_t nsteps = 0;
  const ctxd__contract_t *s = to;
  while (s && s != from) {
    s = s->previous;
    nsteps++;
  }
  if (!s) return ctxd__fail(err, errlen, CTXD_ENOENT, "no upcast from %s to %s", from_type, to_type);
  const ctxd__contract_t **steps = malloc(nsteps * sizeof *steps);
  json_t *m = json_deep_copy(message);
  int rc = steps && m ? 0 : CTXD_ENOMEM;
  s = to;
  for (size_t i = nsteps; !rc && i > 0; i--, s = s->previous) steps[i - 1] = s;
  for (size_t i = 0; !rc && i < nsteps; i++) rc = upcast_step(steps[i], m);
  free(steps);
  if (rc) {
    json_decref(m);
    return ctxd__fail(err, errlen, rc, "out of memory");
  }
  *out = m;
  return 0;
}

size_t ctxd__contracts_older(const ctxd__contracts_t *c, const char *type, const char **out, size_t max) {
  const ctxd__contract_t *k = ctxd__contracts_find(c, type);
  size_t n = 0;
  for (const ctxd__contract_t *s = k ? k->previous : NULL; s; s = s->previous, n++)
    if (out && n < max) out[n] = s->def.message_type;
  return n;
}

/* ---------------------------------------------------------------------------------------
 * Compatibility of released versions
 */

int ctxd__contract_compat(const json_t *released, const json_t *current, char *err, size_t errlen) {
  ctxd__schema_def_t r, n;
  char reason[512];
  int rc;
  if ((rc = ctxd__schema_def_parse(released, &r, reason, sizeof reason)))
    return ctxd__fail(err, errlen, rc, "released definition: %s", reason);
  if ((rc = ctxd__schema_def_parse(current, &n, reason, sizeof reason))) {
    ctxd__schema_def_release(&r);
    return ctxd__fail(err, errlen, rc, "current definition: %s", reason);
  }
  if (strcmp(r.message_type, n.message_type))
    rc = ctxd__fail(err, errlen, CTXD_EINVAL, "%s and %s are different contracts", r.message_type,
                    n.message_type);
  else if (strcmp(r.status, "released"))
    rc =
        ctxd__fail(err, errlen, CTXD_EINVAL, "%s: the snapshot is not a released definition", r.message_type);
  else if (strcmp(n.status, "released"))
    rc = ctxd__fail(err, errlen, CTXD_EVALIDATION, "%s: status changed from released to %s", r.message_type,
                    n.status);
  else if (strcmp(r.kind, n.kind))
    rc = ctxd__fail(err, errlen, CTXD_EVALIDATION, "%s: kind changed from %s to %s", r.message_type, r.kind,
                    n.kind);
  else if ((rc = ctxd__schema_compare(&r.body, &n.body, CTXD__SCHEMA_FROZEN, reason, sizeof reason)))
    ctxd__fail(err, errlen, rc, "%s: %s", r.message_type, reason);
  ctxd__schema_def_release(&n);
  ctxd__schema_def_release(&r);
  return rc;
}
