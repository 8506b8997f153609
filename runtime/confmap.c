#include "confmap.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ctxd/errno.h>

#include "fail.h"
#include "jscan.h"

/* ---- types --------------------------------------------------------------------------- */

/* One parsed value; every member starts at offset 0, so storing copies the first `size`
 * bytes of the union. */
typedef union {
  const char *s;
  int64_t i;
  int b;
  double d;
  const json_t *j;
} value_t;

typedef struct {
  int type;
  size_t size;      /* of the C type written at the entry's offset */
  const char *what; /* for "expected ..." */
  int host_only;    /* not part of the plugin ABI */
} type_info_t;

static const type_info_t type_infos[] = {
    {CTXD_CONF_STR, sizeof(const char *), "a string", 0},
    {CTXD_CONF_INT, sizeof(int64_t), "an integer", 0},
    {CTXD_CONF_BOOL, sizeof(int), "a boolean", 0},
    {CTXD_CONF_DOUBLE, sizeof(double), "a number", 0},
    {CTXD__CONF_OBJECT, sizeof(const json_t *), "an object", 1},
    {CTXD__CONF_ARRAY, sizeof(const json_t *), "an array", 1},
};

/* Returns the static description of `type`, NULL when it is no type at all. */
static const type_info_t *type_info(ctxd_conf_type_t type) {
  for (size_t i = 0; i < sizeof type_infos / sizeof type_infos[0]; i++)
    if (type_infos[i].type == (int)type) return &type_infos[i];
  return NULL;
}

/* Returns the static name of a JSON value's type, with its article, for "got ...". */
static const char *json_what(const json_t *v) {
  switch (json_typeof(v)) {
  case JSON_OBJECT: return "an object";
  case JSON_ARRAY: return "an array";
  case JSON_STRING: return "a string";
  case JSON_INTEGER: return "an integer";
  case JSON_REAL: return "a real";
  case JSON_TRUE:
  case JSON_FALSE: return "a boolean";
  case JSON_NULL: break;
  }
  return "null";
}

/* 0, or -1 when v is not of `type`. */
static int from_json(ctxd_conf_type_t type, const json_t *v, value_t *out) {
  switch ((int)type) {
  case CTXD_CONF_STR:
    if (!json_is_string(v)) return -1;
    out->s = json_string_value(v);
    return 0;
  case CTXD_CONF_INT:
    if (!json_is_integer(v)) return -1;
    out->i = (int64_t)json_integer_value(v);
    return 0;
  case CTXD_CONF_BOOL:
    if (!json_is_boolean(v)) return -1;
    out->b = json_is_true(v);
    return 0;
  case CTXD_CONF_DOUBLE:
    if (!json_is_number(v)) return -1;
    out->d = json_number_value(v);
    return 0;
  case CTXD__CONF_OBJECT:
  case CTXD__CONF_ARRAY:
    if ((int)type == CTXD__CONF_OBJECT ? !json_is_object(v) : !json_is_array(v)) return -1;
    out->j = v;
    return 0;
  }
  return -1;
}

/* Parses a map's default text: 0, or -1 when it is not a valid `type`. */
static int parse_default(ctxd_conf_type_t type, const char *def, value_t *out) {
  char *end;
  /* strtoll/strtod skip leading blanks; a default is written by a programmer, be strict */
  int blank = def[0] == '\0' || isspace((unsigned char)def[0]);
  switch ((int)type) {
  case CTXD_CONF_STR: out->s = def; return 0;
  case CTXD_CONF_INT:
    errno = 0;
    out->i = strtoll(def, &end, 10);
    return blank || *end != '\0' || errno != 0 ? -1 : 0;
  case CTXD_CONF_BOOL:
    if (strcmp(def, "true") != 0 && strcmp(def, "false") != 0) return -1;
    out->b = def[0] == 't';
    return 0;
  case CTXD_CONF_DOUBLE:
    errno = 0;
    out->d = strtod(def, &end);
    return blank || *end != '\0' || errno != 0 || !isfinite(out->d) ? -1 : 0;
  case CTXD__CONF_OBJECT:
  case CTXD__CONF_ARRAY: out->j = NULL; return def[0] == '\0' ? 0 : -1;
  }
  return -1;
}

/* ---- errors -------------------------------------------------------------------------- */

/* Fills e (path "<path>.<key>", or just one of them when the other is empty or NULL) and
 * returns `code`. */
__attribute__((format(printf, 5, 6))) static int fail_at(int code, ctxd__conf_error_t *e, const char *path,
                                                         const char *key, const char *fmt, ...) {
  if (key == NULL || key[0] == '\0')
    snprintf(e->path, sizeof e->path, "%s", path);
  else if (path[0] == '\0')
    snprintf(e->path, sizeof e->path, "%s", key);
  else
    snprintf(e->path, sizeof e->path, "%s.%s", path, key);
  va_list ap;
  va_start(ap, fmt);
  ctxd__vfail(e->reason, sizeof e->reason, code, fmt, ap);
  va_end(ap);
  return code;
}

/* Longest map name the edit distance is computed for; longer ones only match ignoring
 * case. Keys are short, and a fixed row keeps this allocation-free. */
#define SUGGEST_MAX_LEN 64

/* Edit distance between a and b ignoring ASCII case; SIZE_MAX when it is surely above 2. */
static size_t distance(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  if ((la > lb ? la - lb : lb - la) > 2) return SIZE_MAX;
  if (lb > SUGGEST_MAX_LEN) return strcasecmp(a, b) == 0 ? 0 : SIZE_MAX;
  size_t row[SUGGEST_MAX_LEN + 1];
  for (size_t j = 0; j <= lb; j++) row[j] = j;
  for (size_t i = 1; i <= la; i++) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= lb; j++) {
      size_t up = row[j];
      size_t cost = tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]);
      size_t best = diag + cost;
      if (up + 1 < best) best = up + 1;
      if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
      row[j] = best;
      diag = up;
    }
  }
  return row[lb];
}

/* Returns the entry named `name` (borrowed from map), or NULL. */
static const ctxd_conf_entry_t *find(const ctxd_conf_entry_t *map, const char *name) {
  for (; map->name != NULL; map++)
    if (strcmp(map->name, name) == 0) return map;
  return NULL;
}

static int unknown_key(const ctxd_conf_entry_t *map, const char *path, const char *key,
                       ctxd__conf_error_t *e) {
  const char *best = NULL;
  size_t best_d = 3; /* suggest within edit distance 2 only */
  for (; map->name != NULL; map++) {
    size_t d = distance(key, map->name);
    if (d < best_d) {
      best = map->name;
      best_d = d;
    }
  }
  if (best == NULL) return fail_at(CTXD_ECONFIG, e, path, key, "unknown key");
  return fail_at(CTXD_ECONFIG, e, path, key, "unknown key (did you mean '%s'?)", best);
}

/* ---- apply and check ----------------------------------------------------------------- */

int ctxd__confmap_apply(const ctxd_conf_entry_t *map, const json_t *obj, void *dst, const char *path,
                        ctxd__conf_error_t *e) {
  if (obj != NULL && !json_is_object(obj))
    return fail_at(CTXD_ECONFIG, e, path, NULL, "expected an object, got %s", json_what(obj));
  if (obj != NULL) {
    const char *key;
    json_t *v;
    /* jansson's iterators take a non-const object but do not change it */
    json_t *o = (json_t *)obj;
    json_object_foreach(o, key, v) {
      if (find(map, key) == NULL) return unknown_key(map, path, key, e);
    }
  }
  for (const ctxd_conf_entry_t *m = map; m->name != NULL; m++) {
    const type_info_t *ti = type_info(m->type);
    if (ti == NULL)
      return fail_at(CTXD_ECONFIG, e, path, m->name, "config map has an invalid type %d", (int)m->type);
    const json_t *v = obj != NULL ? json_object_get(obj, m->name) : NULL;
    value_t val;
    if (v != NULL) {
      if (from_json(m->type, v, &val) != 0)
        return fail_at(CTXD_ECONFIG, e, path, m->name, "expected %s, got %s", ti->what, json_what(v));
    } else if (m->def == NULL) {
      return fail_at(CTXD_ECONFIG, e, path, m->name, "required key is missing");
    } else if (parse_default(m->type, m->def, &val) != 0) {
      return fail_at(CTXD_ECONFIG, e, path, m->name, "config map default \"%s\" is not %s", m->def, ti->what);
    }
    /* memcpy: a plugin's offset need not be aligned for the type */
    memcpy((char *)dst + m->offset, &val, ti->size);
  }
  return 0;
}

int ctxd__confmap_check(const ctxd_conf_entry_t *map, size_t size, ctxd__conf_error_t *e) {
  for (size_t i = 0; map[i].name != NULL; i++) {
    const ctxd_conf_entry_t *m = &map[i];
    const type_info_t *ti = type_info(m->type);
    value_t val;
    if (m->name[0] == '\0') return fail_at(CTXD_EINVAL, e, "", NULL, "entry %zu has an empty name", i);
    for (size_t j = 0; j < i; j++)
      if (strcmp(map[j].name, m->name) == 0)
        return fail_at(CTXD_EINVAL, e, "", m->name, "entries %zu and %zu are both named '%s'", j, i, m->name);
    if (ti == NULL || ti->host_only)
      return fail_at(CTXD_EINVAL, e, "", m->name, "entry '%s' has an invalid type %d", m->name, (int)m->type);
    if (m->def != NULL && parse_default(m->type, m->def, &val) != 0)
      return fail_at(CTXD_EINVAL, e, "", m->name, "entry '%s': default \"%s\" is not %s", m->name, m->def,
                     ti->what);
    if (m->offset > size || size - m->offset < ti->size)
      return fail_at(CTXD_EINVAL, e, "", m->name,
                     "entry '%s': offset %zu + %zu bytes is outside the %zu-byte settings", m->name,
                     m->offset, ti->size, size);
  }
  return 0;
}

/* ---- locating a key path in JSON text ------------------------------------------------ */

/* At an object: moves to the value of member key[0..len) (first one wins). */
static int enter_key(ctxd__jscan_t *s, const char *key, size_t len) {
  if (ctxd__jscan_expect(s, '{') != 0) return -1;
  ctxd__jscan_ws(s);
  if (s->p < s->end && *s->p == '}') return -1;
  for (;;) {
    int eq = ctxd__jscan_string_equals(s, key, len);
    if (eq < 0 || ctxd__jscan_expect(s, ':') != 0) return -1;
    ctxd__jscan_ws(s);
    if (eq) return 0;
    if (ctxd__jscan_value(s, CTXD__JSCAN_MAX_DEPTH) != 0 || ctxd__jscan_expect(s, ',') != 0) return -1;
  }
}

/* At an array: moves to element `index`. */
static int enter_index(ctxd__jscan_t *s, size_t index) {
  if (ctxd__jscan_expect(s, '[') != 0) return -1;
  ctxd__jscan_ws(s);
  if (s->p < s->end && *s->p == ']') return -1;
  for (size_t i = 0; i < index; i++)
    if (ctxd__jscan_value(s, CTXD__JSCAN_MAX_DEPTH) != 0 || ctxd__jscan_expect(s, ',') != 0) return -1;
  ctxd__jscan_ws(s);
  return 0;
}

/* Parses "[n]" at *q: 0 and the index, -1 when malformed or absurdly large. */
static int parse_index(const char **q, size_t *out) {
  const char *p = *q + 1;
  size_t v = 0;
  if (!isdigit((unsigned char)*p)) return -1;
  for (; isdigit((unsigned char)*p); p++) {
    if (v > (SIZE_MAX - 9) / 10) return -1;
    v = v * 10 + (size_t)(*p - '0');
  }
  if (*p != ']') return -1;
  *q = p + 1;
  *out = v;
  return 0;
}

int ctxd__json_locate(const char *text, size_t len, const char *path, int *line, int *col) {
  if (text == NULL || path == NULL) return CTXD_ENOENT;
  ctxd__jscan_t s = {text, text + len};
  /* the whole text must be one valid value: a half-written file locates nothing */
  if (ctxd__jscan_value(&s, CTXD__JSCAN_MAX_DEPTH) != 0) return CTXD_ENOENT;
  ctxd__jscan_ws(&s);
  if (s.p != s.end) return CTXD_ENOENT;

  s.p = text;
  ctxd__jscan_ws(&s);
  for (const char *q = path; *q != '\0';) {
    if (*q == '[') {
      size_t index;
      if (parse_index(&q, &index) != 0 || enter_index(&s, index) != 0) return CTXD_ENOENT;
      continue;
    }
    if (q != path && *q++ != '.') return CTXD_ENOENT;
    size_t n = strcspn(q, ".[");
    if (n == 0 || enter_key(&s, q, n) != 0) return CTXD_ENOENT;
    q += n;
  }

  ctxd__jscan_position(text, (size_t)(s.p - text), line, col);
  return 0;
}
