/* The contract schema engine. See contract_schema.h. */
#include "contract_schema.h"

#include "fail.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ctxd/errno.h>

enum {
  PATH_CAP = 256,       /* longest path quoted in an error; longer ones are cut */
  QUOTE_MAX = 64,       /* longest value quoted in an error; longer ones end in "..." */
  NAME_MAX_LEN = 64,    /* field, type, enum and context names */
  DEF_MAX_DEPTH = 8,    /* nesting of objects and arrays in a definition */
  DEC_INT_DIGITS = 29,  /* what a .NET decimal holds: 28-29 significant digits */
  DEC_FRAC_DIGITS = 28, /* and a scale of at most 28 */
  DEC_BUF = 64          /* longest decimal text with its sign, point and NUL */
};

/* ---------------------------------------------------------------------------------------
 * Small helpers
 */

typedef struct {
  char text[PATH_CAP];
  size_t len;
} path_t;

static void path_init(path_t *p, const char *root) {
  p->len = 0;
  p->text[0] = '\0';
  if (root) {
    snprintf(p->text, sizeof p->text, "%s", root);
    p->len = strlen(p->text);
  }
}

/* Appends to the path; returns the length to restore with path_pop. */
__attribute__((format(printf, 2, 3))) static size_t path_push(path_t *p, const char *fmt, ...) {
  size_t mark = p->len;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(p->text + p->len, sizeof p->text - p->len, fmt, ap);
  va_end(ap);
  p->len += strlen(p->text + p->len);
  return mark;
}

/* Appends ".name", or "name" at the root. */
static size_t path_field(path_t *p, const char *name) {
  return path_push(p, "%s%s", p->len ? "." : "", name);
}

static void path_pop(path_t *p, size_t mark) {
  p->len = mark;
  p->text[mark] = '\0';
}

/* Writes "<path>: <reason>" and returns code, so callers can `return fail_at(...)`. */
__attribute__((format(printf, 5, 6))) static int fail_at(char *err, size_t errlen, int code, const path_t *p,
                                                         const char *fmt, ...) {
  if (err && errlen) {
    int n = p->len ? snprintf(err, errlen, "%s: ", p->text) : 0;
    if (n >= 0 && (size_t)n < errlen) {
      va_list ap;
      va_start(ap, fmt);
      ctxd__vfail(err + n, errlen - (size_t)n, code, fmt, ap);
      va_end(ap);
    }
  }
  return code;
}

/* Copies a value for an error reason: anything but printable ASCII becomes '?' so hostile
 * input cannot break the reason onto several lines or into invalid UTF-8. */
static const char *quote(char buf[QUOTE_MAX + 4], const char *s, size_t len) {
  size_t n = len > QUOTE_MAX ? QUOTE_MAX : len;
  for (size_t i = 0; i < n; i++) buf[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
  strcpy(buf + n, len > QUOTE_MAX ? "..." : "");
  return buf;
}

static int lower_ascii(int c) { return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c; }

/* ASCII-only on purpose: strcasecmp follows the locale (Turkish 'I'). */
bool ctxd__schema_ascii_ieq(const char *a, size_t alen, const char *b, size_t blen) {
  if (alen != blen) return false;
  for (size_t i = 0; i < alen; i++)
    if (lower_ascii((unsigned char)a[i]) != lower_ascii((unsigned char)b[i])) return false;
  return true;
}

/* Looks a property up ignoring ASCII case, an exact match first: MassTransit writes
 * camelCase, older publishers PascalCase. The host's envelope decoder uses it too. */
const json_t *ctxd__schema_get_ci(const json_t *obj, const char *key) {
  const json_t *exact = json_object_get(obj, key);
  if (exact) return exact;
  /* jansson's iteration API takes a non-const object although it does not modify it. */
  json_t *o = (json_t *)obj;
  size_t klen = strlen(key);
  for (void *it = json_object_iter(o); it; it = json_object_iter_next(o, it))
    if (ctxd__schema_ascii_ieq(json_object_iter_key(it), json_object_iter_key_len(it), key, klen))
      return json_object_iter_value(it);
  return NULL;
}

static const char *json_kind_phrase(const json_t *v) {
  switch (json_typeof(v)) {
  case JSON_OBJECT: return "an object";
  case JSON_ARRAY: return "an array";
  case JSON_STRING: return "a string";
  case JSON_INTEGER: return "an integer";
  case JSON_REAL: return "a number";
  case JSON_TRUE:
  case JSON_FALSE: return "a boolean";
  case JSON_NULL: return "null";
  }
  return "an unknown value";
}

static const char *const kind_names[] = {
    [CTXD__SCHEMA_STRING] = "string", [CTXD__SCHEMA_INT] = "int",       [CTXD__SCHEMA_DECIMAL] = "decimal",
    [CTXD__SCHEMA_BOOL] = "bool",     [CTXD__SCHEMA_UUID] = "uuid",     [CTXD__SCHEMA_DATETIME] = "datetime",
    [CTXD__SCHEMA_ENUM] = "enum",     [CTXD__SCHEMA_OBJECT] = "object", [CTXD__SCHEMA_ARRAY] = "array"};

const char *ctxd__schema_kind_name(ctxd__schema_kind_t kind) {
  return kind >= CTXD__SCHEMA_STRING && kind <= CTXD__SCHEMA_ARRAY ? kind_names[kind] : "?";
}

/* What a validation error says a kind expects. */
static const char *expected_phrase(ctxd__schema_kind_t kind) {
  switch (kind) {
  case CTXD__SCHEMA_STRING: return "a string";
  case CTXD__SCHEMA_INT:
  case CTXD__SCHEMA_ENUM: return "an integer";
  case CTXD__SCHEMA_DECIMAL: return "a decimal (a number or a numeric string)";
  case CTXD__SCHEMA_BOOL: return "a boolean";
  case CTXD__SCHEMA_UUID: return "a UUID string";
  case CTXD__SCHEMA_DATETIME: return "an ISO 8601 date-time string";
  case CTXD__SCHEMA_OBJECT: return "an object";
  case CTXD__SCHEMA_ARRAY: return "an array";
  }
  return "a value";
}

bool ctxd__schema_field_has_flag(const ctxd__schema_field_t *f) {
  if (f->required && !f->nullable) return false;
  switch (f->type.kind) {
  case CTXD__SCHEMA_STRING:
  case CTXD__SCHEMA_DECIMAL:
  case CTXD__SCHEMA_DATETIME:
  case CTXD__SCHEMA_UUID: return false;
  default: return true;
  }
}

/* ---------------------------------------------------------------------------------------
 * Scalar formats
 */

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

static int hex_value(char c) {
  if (is_digit(c)) return c - '0';
  c = (char)lower_ascii((unsigned char)c);
  return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Parses a UUID in 8-4-4-4-12, 32-hex or {braced} form (.NET writes all three) into
 * canonical lowercase 8-4-4-4-12. 0 or -1. */
int ctxd__schema_uuid_parse(const char *s, size_t len, char out[37]) {
  if (len == 38 && s[0] == '{' && s[37] == '}') s++, len = 36;
  bool dashed = len == 36;
  if (!dashed && len != 32) return -1;
  static const char digits[] = "0123456789abcdef";
  size_t o = 0;
  for (size_t i = 0; i < len; i++) {
    if (dashed && (i == 8 || i == 13 || i == 18 || i == 23)) {
      if (s[i] != '-') return -1;
      out[o++] = '-';
      continue;
    }
    int v = hex_value(s[i]);
    if (v < 0) return -1;
    if (!dashed && (o == 8 || o == 13 || o == 18 || o == 23)) out[o++] = '-';
    out[o++] = digits[v];
  }
  out[o] = '\0';
  return 0;
}

static int digits_value(const char *s, size_t n) {
  int v = 0;
  for (size_t i = 0; i < n; i++) {
    if (!is_digit(s[i])) return -1;
    v = v * 10 + (s[i] - '0');
  }
  return v;
}

static bool leap_year(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

/* ISO 8601 as .NET writes DateTime and DateTimeOffset: YYYY-MM-DDTHH:MM:SS, an optional
 * fraction of 1 to 9 digits, and Z, an offset +HH:MM, or nothing (an unspecified zone). */
static bool datetime_ok(const char *s, size_t len) {
  static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (len < 19 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':') return false;
  int y = digits_value(s, 4), mo = digits_value(s + 5, 2), d = digits_value(s + 8, 2);
  int h = digits_value(s + 11, 2), mi = digits_value(s + 14, 2), sec = digits_value(s + 17, 2);
  if (y < 1 || mo < 1 || mo > 12 || d < 1 || h < 0 || h > 23 || mi < 0 || mi > 59 || sec < 0 || sec > 59)
    return false;
  if (d > days[mo - 1] + (mo == 2 && leap_year(y))) return false;
  size_t i = 19;
  if (i < len && s[i] == '.') {
    size_t start = ++i;
    while (i < len && is_digit(s[i])) i++;
    if (i == start || i - start > 9) return false;
  }
  if (i == len) return true;
  if (s[i] == 'Z') return i + 1 == len;
  if ((s[i] != '+' && s[i] != '-') || len - i != 6 || s[i + 3] != ':') return false;
  int oh = digits_value(s + i + 1, 2), om = digits_value(s + i + 4, 2);
  return oh >= 0 && oh <= 23 && om >= 0 && om <= 59;
}

/* Plain decimal text: -?D{1,29}(.D{1,28})? */
static bool decimal_string_ok(const char *s, size_t len) {
  size_t i = 0, start;
  if (i < len && s[i] == '-') i++;
  for (start = i; i < len && is_digit(s[i]); i++)
    ;
  if (i == start || i - start > DEC_INT_DIGITS) return false;
  if (i == len) return true;
  if (s[i++] != '.') return false;
  for (start = i; i < len && is_digit(s[i]); i++)
    ;
  return i == len && i > start && i - start <= DEC_FRAC_DIGITS;
}

/* Writes a JSON real as plain decimal text with 15 significant digits (every decimal of
 * at most 15 digits survives the trip through a double). 0, or -1 when it does not fit
 * the decimal limits. */
static int real_to_decimal(double d, char out[DEC_BUF]) {
  char sci[40];
  /* d.dddddddddddddde[+-]X: 15 significant digits and an exponent */
  snprintf(sci, sizeof sci, "%.14e", d);
  const char *s = sci;
  bool negative = *s == '-';
  if (negative) s++;
  char digits[16];
  size_t nd = 0;
  for (; *s && *s != 'e'; s++)
    if (is_digit(*s)) digits[nd++] = *s;
  if (*s != 'e' || nd != 15) return -1;
  long exp10 = strtol(s + 1, NULL, 10);
  while (nd > 1 && digits[nd - 1] == '0') nd--;
  if (nd == 1 && digits[0] == '0') {
    strcpy(out, "0");
    return 0;
  }
  /* The point goes after int_len digits; negative means leading zeros after "0.". */
  long int_len = exp10 + 1;
  long frac_len = (long)nd - int_len;
  if (int_len > DEC_INT_DIGITS || frac_len > DEC_FRAC_DIGITS) return -1;
  char *o = out;
  if (negative) *o++ = '-';
  if (int_len <= 0) {
    *o++ = '0';
    *o++ = '.';
    for (long i = 0; i < -int_len; i++) *o++ = '0';
    memcpy(o, digits, nd);
    o += nd;
  } else if ((size_t)int_len >= nd) {
    memcpy(o, digits, nd);
    o += nd;
    for (long i = 0; i < int_len - (long)nd; i++) *o++ = '0';
  } else {
    memcpy(o, digits, (size_t)int_len);
    o += int_len;
    *o++ = '.';
    memcpy(o, digits + int_len, nd - (size_t)int_len);
    o += nd - (size_t)int_len;
  }
  *o = '\0';
  return 0;
}

/* The decimal text of a JSON integer, real or numeric string. 0 or -1. */
static int decimal_text(const json_t *v, char out[DEC_BUF]) {
  if (json_is_integer(v)) {
    snprintf(out, DEC_BUF, "%" PRId64, (int64_t)json_integer_value(v));
    return 0;
  }
  if (json_is_real(v)) return real_to_decimal(json_real_value(v), out);
  if (json_is_string(v) && decimal_string_ok(json_string_value(v), json_string_length(v))) {
    memcpy(out, json_string_value(v), json_string_length(v) + 1);
    return 0;
  }
  return -1;
}

/* Characters (code points) of valid UTF-8. */
static size_t utf8_chars(const char *s, size_t len) {
  size_t n = 0;
  for (size_t i = 0; i < len; i++) n += ((unsigned char)s[i] & 0xc0) != 0x80;
  return n;
}

/* ---------------------------------------------------------------------------------------
 * Validation
 */

typedef struct {
  char *err;
  size_t errlen;
  int code; /* what a failure returns: CTXD_EVALIDATION, or CTXD_EINVAL in definitions */
  path_t path;
} check_t;

static int check_type(check_t *c, const ctxd__schema_type_t *t, const json_t *v);

static int wrong_type(check_t *c, const ctxd__schema_type_t *t, const json_t *v) {
  return fail_at(c->err, c->errlen, c->code, &c->path, "expected %s, got %s", expected_phrase(t->kind),
                 json_kind_phrase(v));
}

static int check_enum(check_t *c, const ctxd__schema_type_t *t, const json_t *v) {
  json_int_t x = json_integer_value(v);
  char list[256] = "";
  size_t len = 0;
  for (size_t i = 0; i < t->nvalues; i++) {
    if (t->values[i].value == x) return 0;
    if (len < sizeof list - 1) {
      snprintf(list + len, sizeof list - len, "%s%" PRId32, i ? "," : "", t->values[i].value);
      len += strlen(list + len);
    }
  }
  return fail_at(c->err, c->errlen, c->code, &c->path, "%" PRId64 " is not one of %s", (int64_t)x, list);
}

static int check_fields(check_t *c, const ctxd__schema_type_t *t, const json_t *obj) {
  for (size_t i = 0; i < t->nfields; i++) {
    const ctxd__schema_field_t *f = &t->fields[i];
    const json_t *v = ctxd__schema_get_ci(obj, f->name);
    size_t mark = path_field(&c->path, f->name);
    int rc = 0;
    if (!v) {
      if (f->required) rc = fail_at(c->err, c->errlen, c->code, &c->path, "missing required field");
    } else if (json_is_null(v)) {
      if (f->required && !f->nullable) rc = wrong_type(c, &f->type, v);
    } else {
      rc = check_type(c, &f->type, v);
    }
    path_pop(&c->path, mark);
    if (rc) return rc;
  }
  return 0;
}

static int check_type(check_t *c, const ctxd__schema_type_t *t, const json_t *v) {
  char q[QUOTE_MAX + 4], dec[DEC_BUF], uuid[37];
  const char *s = json_string_value(v);
  size_t len = json_string_length(v);
  switch (t->kind) {
  case CTXD__SCHEMA_STRING:
  case CTXD__SCHEMA_UUID:
  case CTXD__SCHEMA_DATETIME:
    if (!json_is_string(v)) return wrong_type(c, t, v);
    /* A C string ends at the first NUL: the typed value would silently differ. */
    if (strlen(s) != len) return fail_at(c->err, c->errlen, c->code, &c->path, "contains a NUL character");
    if (t->kind == CTXD__SCHEMA_UUID && ctxd__schema_uuid_parse(s, len, uuid))
      return fail_at(c->err, c->errlen, c->code, &c->path, "'%s' is not a UUID", quote(q, s, len));
    if (t->kind == CTXD__SCHEMA_DATETIME && !datetime_ok(s, len))
      return fail_at(c->err, c->errlen, c->code, &c->path, "'%s' is not an ISO 8601 date-time",
                     quote(q, s, len));
    if (t->kind == CTXD__SCHEMA_STRING && t->max_length) {
      size_t n = utf8_chars(s, len);
      if (n > t->max_length)
        return fail_at(c->err, c->errlen, c->code, &c->path, "%zu characters, more than the maximum %zu", n,
                       t->max_length);
    }
    return 0;
  case CTXD__SCHEMA_INT: {
    if (!json_is_integer(v)) return wrong_type(c, t, v);
    int64_t x = (int64_t)json_integer_value(v);
    if (t->has_min && x < t->min)
      return fail_at(c->err, c->errlen, c->code, &c->path, "%" PRId64 " is less than the minimum %" PRId64, x,
                     t->min);
    if (t->has_max && x > t->max)
      return fail_at(c->err, c->errlen, c->code, &c->path, "%" PRId64 " is more than the maximum %" PRId64, x,
                     t->max);
    return 0;
  }
  case CTXD__SCHEMA_DECIMAL:
    if (!json_is_number(v) && !json_is_string(v)) return wrong_type(c, t, v);
    if (decimal_text(v, dec) == 0) return 0;
    if (json_is_real(v))
      return fail_at(c->err, c->errlen, c->code, &c->path, "%.17g is out of range for a decimal",
                     json_real_value(v));
    return fail_at(c->err, c->errlen, c->code, &c->path, "'%s' is not a decimal number", quote(q, s, len));
  case CTXD__SCHEMA_BOOL: return json_is_boolean(v) ? 0 : wrong_type(c, t, v);
  case CTXD__SCHEMA_ENUM: return json_is_integer(v) ? check_enum(c, t, v) : wrong_type(c, t, v);
  case CTXD__SCHEMA_OBJECT: return json_is_object(v) ? check_fields(c, t, v) : wrong_type(c, t, v);
  case CTXD__SCHEMA_ARRAY: {
    if (!json_is_array(v)) return wrong_type(c, t, v);
    size_t n = json_array_size(v);
    if (t->max_items && n > t->max_items)
      return fail_at(c->err, c->errlen, c->code, &c->path, "%zu items, more than the maximum %zu", n,
                     t->max_items);
    for (size_t i = 0; i < n; i++) {
      size_t mark = path_push(&c->path, "[%zu]", i);
      int rc = check_type(c, t->items, json_array_get(v, i));
      path_pop(&c->path, mark);
      if (rc) return rc;
    }
    return 0;
  }
  }
  return fail_at(c->err, c->errlen, CTXD_EINVAL, &c->path, "unknown kind %d", (int)t->kind);
}

int ctxd__schema_validate(const ctxd__schema_type_t *t, const json_t *value, const char *root, char *err,
                          size_t errlen) {
  if (!t || !value) return CTXD_EINVAL;
  check_t c = {.err = err, .errlen = errlen, .code = CTXD_EVALIDATION};
  path_init(&c.path, root ? root : "message");
  return check_type(&c, t, value);
}

/* ---------------------------------------------------------------------------------------
 * Typed access
 */

static size_t element_size(const ctxd__schema_type_t *t) {
  switch (t->kind) {
  case CTXD__SCHEMA_STRING:
  case CTXD__SCHEMA_DECIMAL:
  case CTXD__SCHEMA_DATETIME: return sizeof(char *);
  case CTXD__SCHEMA_UUID: return 37;
  case CTXD__SCHEMA_INT: return sizeof(int64_t);
  case CTXD__SCHEMA_BOOL: return sizeof(bool);
  case CTXD__SCHEMA_ENUM: return sizeof(int32_t);
  case CTXD__SCHEMA_OBJECT: return t->size;
  case CTXD__SCHEMA_ARRAY: break; /* never an element: the definition parser refuses it */
  }
  return 0;
}

static void free_fields(const ctxd__schema_type_t *t, char *base);

/* count is where an array keeps its element count (NULL for other kinds). */
static void free_value(const ctxd__schema_type_t *t, char *dst, char *count) {
  switch (t->kind) {
  case CTXD__SCHEMA_STRING:
  case CTXD__SCHEMA_DECIMAL:
  case CTXD__SCHEMA_DATETIME: free(*(char **)dst); break;
  case CTXD__SCHEMA_OBJECT: free_fields(t, dst); break;
  case CTXD__SCHEMA_ARRAY: {
    char *items;
    /* memcpy: the member is a T *, read here without naming T */
    memcpy(&items, dst, sizeof items);
    size_t n = *(size_t *)count, size = element_size(t->items);
    for (size_t i = 0; items && i < n; i++) free_value(t->items, items + i * size, NULL);
    free(items);
    break;
  }
  default: break;
  }
}

static void free_fields(const ctxd__schema_type_t *t, char *base) {
  for (size_t i = 0; i < t->nfields; i++)
    free_value(&t->fields[i].type, base + t->fields[i].offset, base + t->fields[i].count_offset);
}

void ctxd__schema_free(const ctxd__schema_type_t *t, void *obj) {
  if (!t || !obj) return;
  free_fields(t, obj);
  memset(obj, 0, t->size);
}

static int store_fields(const ctxd__schema_type_t *t, const json_t *obj, char *base);

/* Stores an already validated value. 0 or CTXD_ENOMEM (what was stored is freed later). */
static int store_value(const ctxd__schema_type_t *t, const json_t *v, char *dst, char *count) {
  char dec[DEC_BUF];
  switch (t->kind) {
  case CTXD__SCHEMA_STRING:
  case CTXD__SCHEMA_DATETIME: return (*(char **)dst = strdup(json_string_value(v))) ? 0 : CTXD_ENOMEM;
  case CTXD__SCHEMA_DECIMAL: decimal_text(v, dec); return (*(char **)dst = strdup(dec)) ? 0 : CTXD_ENOMEM;
  case CTXD__SCHEMA_UUID: ctxd__schema_uuid_parse(json_string_value(v), json_string_length(v), dst); return 0;
  case CTXD__SCHEMA_INT: *(int64_t *)dst = (int64_t)json_integer_value(v); return 0;
  case CTXD__SCHEMA_ENUM: *(int32_t *)dst = (int32_t)json_integer_value(v); return 0;
  case CTXD__SCHEMA_BOOL: *(bool *)dst = json_is_true(v); return 0;
  case CTXD__SCHEMA_OBJECT: return store_fields(t, v, dst);
  case CTXD__SCHEMA_ARRAY: {
    size_t n = json_array_size(v), size = element_size(t->items);
    if (n == 0) return 0;
    char *items = calloc(n, size);
    if (!items) return CTXD_ENOMEM;
    /* Pointer and count are set first so that a failure below frees what was stored. */
    memcpy(dst, &items, sizeof items);
    *(size_t *)count = n;
    for (size_t i = 0; i < n; i++) {
      int rc = store_value(t->items, json_array_get(v, i), items + i * size, NULL);
      if (rc) return rc;
    }
    return 0;
  }
  }
  return CTXD_EINVAL;
}

static int store_fields(const ctxd__schema_type_t *t, const json_t *obj, char *base) {
  for (size_t i = 0; i < t->nfields; i++) {
    const ctxd__schema_field_t *f = &t->fields[i];
    const json_t *v = ctxd__schema_get_ci(obj, f->name);
    bool present = v && !json_is_null(v);
    if (ctxd__schema_field_has_flag(f)) *(bool *)(base + f->has_offset) = present;
    if (present) {
      int rc = store_value(&f->type, v, base + f->offset, base + f->count_offset);
      if (rc) return rc;
    }
  }
  return 0;
}

/* Nesting deeper than max containers (a scalar has depth 0). */
static bool deeper_than(const json_t *v, int max) {
  if (!json_is_object(v) && !json_is_array(v)) return false;
  if (max == 0) return true;
  json_t *o = (json_t *)v; /* iteration does not modify */
  if (json_is_array(v)) {
    for (size_t i = 0; i < json_array_size(v); i++)
      if (deeper_than(json_array_get(v, i), max - 1)) return true;
    return false;
  }
  for (void *it = json_object_iter(o); it; it = json_object_iter_next(o, it))
    if (deeper_than(json_object_iter_value(it), max - 1)) return true;
  return false;
}

int ctxd__schema_decode(const ctxd__schema_type_t *t, const char *text, size_t len, void *out, char *err,
                        size_t errlen) {
  if (!t || !out || t->kind != CTXD__SCHEMA_OBJECT || (!text && len)) return CTXD_EINVAL;
  memset(out, 0, t->size);
  path_t root;
  path_init(&root, "message");
  if (len > CTXD__SCHEMA_MAX_BYTES)
    return fail_at(err, errlen, CTXD_EVALIDATION, &root, "%zu bytes, more than the limit %zu", len,
                   CTXD__SCHEMA_MAX_BYTES);
  json_error_t je;
  /* JSON_DECODE_ANY: a scalar body gets "expected an object" like any wrong type. */
  json_t *v = json_loadb(text ? text : "", len, JSON_DECODE_ANY, &je);
  if (!v) {
    char q[QUOTE_MAX + 4];
    if (json_error_code(&je) == json_error_invalid_utf8)
      return fail_at(err, errlen, CTXD_EVALIDATION, &root, "invalid UTF-8 at byte %d", je.position);
    return fail_at(err, errlen, CTXD_EVALIDATION, &root, "not valid JSON: %s (line %d, column %d)",
                   quote(q, je.text, strlen(je.text)), je.line, je.column);
  }
  int rc;
  if (deeper_than(v, CTXD__SCHEMA_MAX_DEPTH)) {
    rc =
        fail_at(err, errlen, CTXD_EVALIDATION, &root, "nested deeper than %d levels", CTXD__SCHEMA_MAX_DEPTH);
  } else {
    check_t c = {.err = err, .errlen = errlen, .code = CTXD_EVALIDATION, .path = root};
    rc = check_type(&c, t, v);
    if (rc == 0 && (rc = store_fields(t, v, out)) != 0) {
      ctxd__schema_free(t, out);
      fail_at(err, errlen, rc, &root, "out of memory");
    }
  }
  json_decref(v);
  return rc;
}

static int build_fields(check_t *c, const ctxd__schema_type_t *t, const char *base, json_t **out);

/* The JSON of one typed value the struct says is there. 0 or CTXD_EVALIDATION. */
static int build_value(check_t *c, const ctxd__schema_type_t *t, const char *src, const char *count,
                       json_t **out) {
  char uuid[37];
  *out = NULL;
  switch (t->kind) {
  case CTXD__SCHEMA_STRING:
  case CTXD__SCHEMA_DECIMAL:
  case CTXD__SCHEMA_DATETIME: {
    const char *s = *(char *const *)src;
    if (!s) /* only array elements get here with NULL: fields count as absent */
      return fail_at(c->err, c->errlen, c->code, &c->path, "expected %s, got NULL", expected_phrase(t->kind));
    *out = json_string(s);
    break;
  }
  case CTXD__SCHEMA_UUID:
    if (ctxd__schema_uuid_parse(src, strnlen(src, 37), uuid))
      return fail_at(c->err, c->errlen, c->code, &c->path, "not a UUID");
    *out = json_string(uuid); /* canonical, whatever form the handler stored */
    break;
  case CTXD__SCHEMA_INT: *out = json_integer((json_int_t) * (const int64_t *)src); break;
  case CTXD__SCHEMA_ENUM: *out = json_integer(*(const int32_t *)src); break;
  case CTXD__SCHEMA_BOOL: *out = json_boolean(*(const bool *)src); break;
  case CTXD__SCHEMA_OBJECT: return build_fields(c, t, src, out);
  case CTXD__SCHEMA_ARRAY: {
    const char *items;
    memcpy(&items, src, sizeof items);
    size_t n = *(const size_t *)count, size = element_size(t->items);
    if (n && !items) return fail_at(c->err, c->errlen, c->code, &c->path, "%zu items but no item pointer", n);
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++) {
      json_t *item;
      size_t mark = path_push(&c->path, "[%zu]", i);
      int rc = build_value(c, t->items, items + i * size, NULL, &item);
      path_pop(&c->path, mark);
      if (rc || json_array_append_new(a, item)) {
        json_decref(a);
        return rc ? rc : fail_at(c->err, c->errlen, c->code, &c->path, "out of memory");
      }
    }
    *out = a;
    break;
  }
  }
  /* jansson refuses a string that is not UTF-8; otherwise memory ran out. */
  return *out ? 0
              : fail_at(c->err, c->errlen, c->code, &c->path,
                        "cannot be written (not UTF-8, or out of memory)");
}

static bool typed_present(const ctxd__schema_field_t *f, const char *base) {
  const char *v = base + f->offset;
  if (ctxd__schema_field_has_flag(f)) return *(const bool *)(base + f->has_offset);
  switch (f->type.kind) {
  case CTXD__SCHEMA_STRING:
  case CTXD__SCHEMA_DECIMAL:
  case CTXD__SCHEMA_DATETIME: return *(char *const *)v != NULL;
  case CTXD__SCHEMA_UUID: return v[0] != '\0';
  default: return true;
  }
}

/* A field the struct does not carry is left out (validation then reports a required one
 * as missing), except a required nullable one, which is written as null. */
static int build_fields(check_t *c, const ctxd__schema_type_t *t, const char *base, json_t **out) {
  json_t *obj = json_object();
  int rc = obj ? 0 : fail_at(c->err, c->errlen, c->code, &c->path, "out of memory");
  for (size_t i = 0; !rc && i < t->nfields; i++) {
    const ctxd__schema_field_t *f = &t->fields[i];
    json_t *v = NULL;
    size_t mark = path_field(&c->path, f->name);
    if (typed_present(f, base))
      rc = build_value(c, &f->type, base + f->offset, base + f->count_offset, &v);
    else if (f->required && f->nullable)
      v = json_null();
    if (!rc && v && json_object_set_new(obj, f->name, v))
      rc = fail_at(c->err, c->errlen, c->code, &c->path, "out of memory");
    path_pop(&c->path, mark);
  }
  if (rc) json_decref(obj);
  *out = rc ? NULL : obj;
  return rc;
}

json_t *ctxd__schema_to_json(const ctxd__schema_type_t *t, const void *in, char *err, size_t errlen) {
  check_t c = {.err = err, .errlen = errlen, .code = CTXD_EVALIDATION};
  path_init(&c.path, "message");
  json_t *v = NULL;
  if (!t || !in || t->kind != CTXD__SCHEMA_OBJECT) {
    fail_at(err, errlen, CTXD_EINVAL, &c.path, "invalid arguments");
    return NULL;
  }
  if (build_fields(&c, t, in, &v)) return NULL;
  if (check_type(&c, t, v)) {
    json_decref(v);
    return NULL;
  }
  return v;
}

char *ctxd__schema_encode(const ctxd__schema_type_t *t, const void *in) {
  json_t *v = ctxd__schema_to_json(t, in, NULL, 0);
  if (!v) return NULL;
  char *text = json_dumps(v, JSON_COMPACT);
  json_decref(v);
  return text;
}

/* ---------------------------------------------------------------------------------------
 * Definitions
 */

typedef check_t def_t; /* a definition error: CTXD_EINVAL at a key path */

static int def_fail_type(def_t *d, const char *key, const char *expected, const json_t *v) {
  size_t mark = path_field(&d->path, key);
  fail_at(d->err, d->errlen, CTXD_EINVAL, &d->path, "expected %s, got %s", expected,
          v ? json_kind_phrase(v) : "nothing");
  path_pop(&d->path, mark);
  return CTXD_EINVAL;
}

static bool name_ok(const char *s, bool upper_first, bool dash) {
  size_t n = strlen(s);
  if (n == 0 || n > NAME_MAX_LEN) return false;
  if (upper_first ? !(s[0] >= 'A' && s[0] <= 'Z') : !(s[0] >= 'a' && s[0] <= 'z')) return false;
  for (size_t i = 1; i < n; i++) {
    char c = s[i];
    bool ok =
        is_digit(c) || (c >= 'a' && c <= 'z') || (upper_first && c >= 'A' && c <= 'Z') || (dash && c == '-');
    if (!ok) return false;
  }
  return true;
}

/* A PascalCase identifier: what MassTransit types and properties look like. */
static bool identifier_ok(const char *s) { return name_ok(s, true, false); }

/* obj's keys must all be in allowed (NULL-terminated). */
static int only_keys(def_t *d, const json_t *obj, const char *const *allowed) {
  json_t *o = (json_t *)obj; /* iteration does not modify */
  for (void *it = json_object_iter(o); it; it = json_object_iter_next(o, it)) {
    const char *key = json_object_iter_key(it);
    bool ok = false;
    for (size_t i = 0; allowed[i] && !ok; i++) ok = strcmp(key, allowed[i]) == 0;
    if (!ok) {
      char q[QUOTE_MAX + 4];
      return fail_at(d->err, d->errlen, CTXD_EINVAL, &d->path, "unknown key '%s'",
                     quote(q, key, strlen(key)));
    }
  }
  return 0;
}

/* A required (or optional: *out stays NULL) non-empty string member. */
static int def_string(def_t *d, const json_t *obj, const char *key, bool required, const char **out) {
  const json_t *v = json_object_get(obj, key);
  if (!v && !required) return 0;
  if (!json_is_string(v) || json_string_length(v) == 0 ||
      strlen(json_string_value(v)) != json_string_length(v))
    return def_fail_type(d, key, "a non-empty string", v);
  *out = json_string_value(v);
  return 0;
}

static int def_bool(def_t *d, const json_t *obj, const char *key, bool dflt, bool *out) {
  const json_t *v = json_object_get(obj, key);
  *out = dflt;
  if (!v) return 0;
  if (!json_is_boolean(v)) return def_fail_type(d, key, "true or false", v);
  *out = json_is_true(v);
  return 0;
}

/* An optional integer member within [lo, hi]. */
static int def_int(def_t *d, const json_t *obj, const char *key, int64_t lo, int64_t hi, bool *has,
                   int64_t *out) {
  const json_t *v = json_object_get(obj, key);
  *has = v != NULL;
  if (!v) return 0;
  if (!json_is_integer(v)) return def_fail_type(d, key, "an integer", v);
  *out = (int64_t)json_integer_value(v);
  if (*out < lo || *out > hi) {
    size_t mark = path_field(&d->path, key);
    fail_at(d->err, d->errlen, CTXD_EINVAL, &d->path, "%" PRId64 " is not in %" PRId64 "..%" PRId64, *out, lo,
            hi);
    path_pop(&d->path, mark);
    return CTXD_EINVAL;
  }
  return 0;
}

static void type_release(ctxd__schema_type_t *t) {
  /* Parsed types own their arrays (generated ones are static and never released). */
  if (t->kind == CTXD__SCHEMA_OBJECT && t->fields) {
    ctxd__schema_field_t *fields = (ctxd__schema_field_t *)t->fields;
    for (size_t i = 0; i < t->nfields; i++) type_release(&fields[i].type);
    free(fields);
  } else if (t->kind == CTXD__SCHEMA_ARRAY && t->items) {
    ctxd__schema_type_t *items = (ctxd__schema_type_t *)t->items;
    type_release(items);
    free(items);
  } else if (t->kind == CTXD__SCHEMA_ENUM) {
    free((ctxd__schema_enum_t *)t->values);
  }
  memset(t, 0, sizeof *t);
}

static int parse_fields(def_t *d, const json_t *fields, int depth, ctxd__schema_type_t *out);

static int parse_kind(def_t *d, const json_t *spec, ctxd__schema_kind_t *out) {
  const char *name = NULL;
  int rc = def_string(d, spec, "type", true, &name);
  if (rc) return rc;
  for (int k = CTXD__SCHEMA_STRING; k <= CTXD__SCHEMA_ARRAY; k++)
    if (strcmp(name, kind_names[k]) == 0) {
      *out = (ctxd__schema_kind_t)k;
      return 0;
    }
  char q[QUOTE_MAX + 4];
  size_t mark = path_field(&d->path, "type");
  fail_at(d->err, d->errlen, CTXD_EINVAL, &d->path,
          "unknown type '%s' (one of string, int, decimal, bool, uuid, datetime, enum, object, "
          "array)",
          quote(q, name, strlen(name)));
  path_pop(&d->path, mark);
  return CTXD_EINVAL;
}

static int parse_enum(def_t *d, const json_t *spec, ctxd__schema_type_t *out) {
  const json_t *values = json_object_get(spec, "values");
  if (!json_is_array(values) || json_array_size(values) == 0)
    return def_fail_type(d, "values", "a non-empty array", values);
  size_t n = json_array_size(values);
  ctxd__schema_enum_t *v = calloc(n, sizeof *v);
  if (!v) return CTXD_ENOMEM;
  out->values = v;
  out->nvalues = n;
  static const char *const keys[] = {"name", "value", "description", NULL};
  for (size_t i = 0; i < n; i++) {
    const json_t *e = json_array_get(values, i);
    size_t mark = path_push(&d->path, ".values[%zu]", i);
    bool has;
    int64_t value = 0;
    int rc = json_is_object(e) ? only_keys(d, e, keys)
                               : fail_at(d->err, d->errlen, CTXD_EINVAL, &d->path,
                                         "expected an object, got %s", json_kind_phrase(e));
    if (!rc) rc = def_string(d, e, "name", true, &v[i].name);
    if (!rc) rc = def_int(d, e, "value", INT32_MIN, INT32_MAX, &has, &value);
    if (!rc && !has) rc = def_fail_type(d, "value", "an integer", NULL);
    if (!rc) rc = def_string(d, e, "description", false, &v[i].description);
    v[i].value = (int32_t)value;
    if (!rc && !identifier_ok(v[i].name))
      rc = fail_at(d->err, d->errlen, CTXD_EINVAL, &d->path, "name '%s' is not a PascalCase identifier",
                   v[i].name);
    for (size_t k = 0; !rc && k < i; k++) {
      if (v[k].value == v[i].value)
        rc = fail_at(d->err, d->errlen, CTXD_EINVAL, &d->path, "value %" PRId32 " is used twice", v[i].value);
      else if (strcmp(v[k].name, v[i].name) == 0)
        rc = fail_at(d->err, d->errlen, CTXD_EINVAL, &d->path, "name %s is used twice", v[i].name);
    }
    path_pop(&d->path, mark);
    if (rc) return rc;
  }
  return 0;
}

/* The keys a type spec may carry besides "type", per kind. */
static const char *const *kind_keys(ctxd__schema_kind_t kind) {
  static const char *const string_keys[] = {"max_length", NULL};
  static const char *const int_keys[] = {"min", "max", NULL};
  static const char *const enum_keys[] = {"values", NULL};
  static const char *const object_keys[] = {"fields", NULL};
  static const char *const array_keys[] = {"items", "max_items", NULL};
  static const char *const none[] = {NULL};
  switch (kind) {
  case CTXD__SCHEMA_STRING: return string_keys;
  case CTXD__SCHEMA_INT: return int_keys;
  case CTXD__SCHEMA_ENUM: return enum_keys;
  case CTXD__SCHEMA_OBJECT: return object_keys;
  case CTXD__SCHEMA_ARRAY: return array_keys;
  default: return none;
  }
}

/* Checks that spec carries only base keys and the keys of its kind. */
static int spec_keys(def_t *d, const json_t *spec, const char *const *base, ctxd__schema_kind_t kind) {
  const char *allowed[16];
  size_t n = 0;
  for (size_t i = 0; base[i]; i++) allowed[n++] = base[i];
  for (const char *const *k = kind_keys(kind); *k; k++) allowed[n++] = *k;
  allowed[n] = NULL;
  return only_keys(d, spec, allowed);
}

/* The type part of a field spec, or of an array's items. */
static int parse_type(def_t *d, const json_t *spec, ctxd__schema_kind_t kind, int depth,
                      ctxd__schema_type_t *out) {
  static const char *const item_keys[] = {"type", NULL};
  out->kind = kind;
  bool has;
  int64_t v;
  int rc = 0;
  switch (kind) {
  case CTXD__SCHEMA_STRING:
    rc = def_int(d, spec, "max_length", 1, INT32_MAX, &has, &v);
    out->max_length = has ? (size_t)v : 0;
    return rc;
  case CTXD__SCHEMA_INT:
    if ((rc = def_int(d, spec, "min", INT64_MIN, INT64_MAX, &out->has_min, &out->min)) ||
        (rc = def_int(d, spec, "max", INT64_MIN, INT64_MAX, &out->has_max, &out->max)))
      return rc;
    if (out->has_min && out->has_max && out->min > out->max)
      return fail_at(d->err, d->errlen, CTXD_EINVAL, &d->path, "min is greater than max");
    return 0;
  case CTXD__SCHEMA_ENUM: return parse_enum(d, spec, out);
  case CTXD__SCHEMA_OBJECT:
    if (depth >= DEF_MAX_DEPTH)
      return fail_at(d->err, d->errlen, CTXD_EINVAL, &d->path, "nested deeper than %d levels", DEF_MAX_DEPTH);
    return parse_fields(d, json_object_get(spec, "fields"), depth + 1, out);
  case CTXD__SCHEMA_ARRAY: {
    if ((rc = def_int(d, spec, "max_items", 1, INT32_MAX, &has, &v))) return rc;
    out->max_items = has ? (size_t)v : 0;
    const json_t *items = json_object_get(spec, "items");
    if (!json_is_object(items)) return def_fail_type(d, "items", "an object", items);
    if (depth >= DEF_MAX_DEPTH)
      return fail_at(d->err, d->errlen, CTXD_EINVAL, &d->path, "nested deeper than %d levels", DEF_MAX_DEPTH);
    size_t mark = path_field(&d->path, "items");
    ctxd__schema_kind_t ik = CTXD__SCHEMA_STRING;
    ctxd__schema_type_t *it = calloc(1, sizeof *it);
    if (!it)
      rc = CTXD_ENOMEM;
    else
      out->items = it;
    if (!rc) rc = parse_kind(d, items, &ik);
    if (!rc && ik == CTXD__SCHEMA_ARRAY)
      rc = fail_at(d->err, d->errlen, CTXD_EINVAL, &d->path,
                   "arrays of arrays are not supported: make the items objects");
    if (!rc) rc = spec_keys(d, items, item_keys, ik);
    if (!rc) rc = parse_type(d, items, ik, depth + 1, it);
    path_pop(&d->path, mark);
    return rc;
  }
  default: return 0;
  }
}

static int parse_field(def_t *d, const json_t *spec, int depth, ctxd__schema_field_t *f) {
  static const char *const base[] = {"name", "type", "description", "required", "nullable", "example", NULL};
  ctxd__schema_kind_t kind = CTXD__SCHEMA_STRING;
  int rc;
  if (!json_is_object(spec))
    return fail_at(d->err, d->errlen, CTXD_EINVAL, &d->path, "expected an object, got %s",
                   json_kind_phrase(spec));
  if ((rc = def_string(d, spec, "name", true, &f->name))) return rc;
  if (!identifier_ok(f->name))
    return fail_at(d->err, d->errlen, CTXD_EINVAL, &d->path, "name '%s' is not a PascalCase identifier",
                   f->name);
  if ((rc = parse_kind(d, spec, &kind)) || (rc = spec_keys(d, spec, base, kind)) ||
      (rc = def_string(d, spec, "description", true, &f->description)) ||
      (rc = def_bool(d, spec, "required", true, &f->required)) ||
      (rc = def_bool(d, spec, "nullable", false, &f->nullable)) ||
      (rc = parse_type(d, spec, kind, depth, &f->type)))
    return rc;
  f->example = json_object_get(spec, "example");
  if (f->example && !(json_is_null(f->example) && (f->nullable || !f->required))) {
    size_t mark = path_field(&d->path, "example");
    rc = check_type(d, &f->type, f->example);
    path_pop(&d->path, mark);
  }
  return rc;
}

static int parse_fields(def_t *d, const json_t *fields, int depth, ctxd__schema_type_t *out) {
  out->kind = CTXD__SCHEMA_OBJECT;
  if (!json_is_array(fields) || json_array_size(fields) == 0)
    return def_fail_type(d, "fields", "a non-empty array", fields);
  size_t n = json_array_size(fields);
  ctxd__schema_field_t *f = calloc(n, sizeof *f);
  if (!f) return CTXD_ENOMEM;
  out->fields = f;
  out->nfields = n;
  for (size_t i = 0; i < n; i++) {
    const json_t *spec = json_array_get(fields, i);
    const json_t *name = json_object_get(spec, "name");
    /* Paths name the field ("fields.Items.items.fields.Sku"); its index until it has one. */
    size_t mark = json_is_string(name) && identifier_ok(json_string_value(name))
                      ? path_push(&d->path, "%sfields.%s", d->path.len ? "." : "", json_string_value(name))
                      : path_push(&d->path, "%sfields[%zu]", d->path.len ? "." : "", i);
    int rc = parse_field(d, spec, depth, &f[i]);
    /* Names match case-insensitively on the wire, so they must differ in more than case. */
    for (size_t k = 0; !rc && k < i; k++)
      if (ctxd__schema_ascii_ieq(f[k].name, strlen(f[k].name), f[i].name, strlen(f[i].name)))
        rc = fail_at(d->err, d->errlen, CTXD_EINVAL, &d->path,
                     "the name is used twice (names are matched ignoring case)");
    path_pop(&d->path, mark);
    if (rc) return rc;
  }
  return 0;
}

static const ctxd__schema_field_t *find_field(const ctxd__schema_type_t *obj, const char *name) {
  for (size_t i = 0; i < obj->nfields; i++)
    if (strcmp(obj->fields[i].name, name) == 0) return &obj->fields[i];
  return NULL;
}

static int parse_contexts(def_t *d, const json_t *def, const char *key, const json_t **out) {
  const json_t *a = json_object_get(def, key);
  if (!json_is_array(a) || json_array_size(a) == 0)
    return def_fail_type(d, key, "a non-empty array of context names", a);
  for (size_t i = 0; i < json_array_size(a); i++) {
    const char *s = json_string_value(json_array_get(a, i));
    bool dup = false;
    for (size_t k = 0; s && k < i; k++) dup = dup || strcmp(s, json_string_value(json_array_get(a, k))) == 0;
    if (!s || !name_ok(s, false, true) || dup) {
      size_t mark = path_push(&d->path, "%s%s[%zu]", d->path.len ? "." : "", key, i);
      fail_at(d->err, d->errlen, CTXD_EINVAL, &d->path,
              dup ? "listed twice" : "expected a context name like \"inventory\" or \"payment\"");
      path_pop(&d->path, mark);
      return CTXD_EINVAL;
    }
  }
  *out = a;
  return 0;
}

/* A RabbitMQ exchange name (at most 255 bytes), without blanks. */
static bool exchange_name_ok(const char *s) {
  size_t n = strlen(s);
  return n > 0 && n <= 255 && !strpbrk(s, " \t\r\n");
}

/* A message name as MassTransit's URN carries it after "urn:message:": "Ns:Type", with
 * "+" for nested types and "[[...]]" for generic arguments. */
static bool message_name_ok(const char *s) {
  return exchange_name_ok(s) && strchr(s, ':') && strncmp(s, "urn:", 4) != 0;
}

/* "implements": the message types (URN names) this one also is, as a .NET message
 * implements interfaces or extends a class; none twice (ignoring case), not itself. */
static int parse_implements(def_t *d, const json_t *def, const char *self, const json_t **out) {
  const json_t *a = json_object_get(def, "implements");
  if (!a) return 0;
  if (!json_is_array(a) || json_array_size(a) == 0)
    return def_fail_type(d, "implements", "a non-empty array of message types", a);
  for (size_t i = 0; i < json_array_size(a); i++) {
    const char *s = json_string_value(json_array_get(a, i));
    const char *why = !s || !message_name_ok(s) ? "expected a message type like \"Ns.Contracts:IBase\" "
                                                  "(no \"urn:message:\")"
                      : ctxd__schema_ascii_ieq(s, strlen(s), self, strlen(self)) ? "the type itself"
                                                                                 : NULL;
    for (size_t k = 0; !why && k < i; k++) {
      const char *o = json_string_value(json_array_get(a, k));
      if (ctxd__schema_ascii_ieq(s, strlen(s), o, strlen(o))) why = "listed twice";
    }
    if (why) {
      size_t mark = path_push(&d->path, "implements[%zu]", i);
      fail_at(d->err, d->errlen, CTXD_EINVAL, &d->path, "%s", why);
      path_pop(&d->path, mark);
      return CTXD_EINVAL;
    }
  }
  *out = a;
  return 0;
}

static int parse_upcast(def_t *d, const json_t *up, ctxd__schema_def_t *out) {
  static const char *const keys[] = {"defaults", "renames", NULL};
  char q[QUOTE_MAX + 4];
  size_t mark = path_field(&d->path, "upcast_from_previous");
  int rc = 0;
  if (out->version < 2)
    rc = fail_at(d->err, d->errlen, CTXD_EINVAL, &d->path, "version 1 has no previous version");
  else if (!json_is_object(up))
    rc =
        fail_at(d->err, d->errlen, CTXD_EINVAL, &d->path, "expected an object, got %s", json_kind_phrase(up));
  else
    rc = only_keys(d, up, keys);
  out->upcast = true;
  out->defaults = json_object_get(up, "defaults");
  out->renames = json_object_get(up, "renames");
  if (!rc && out->defaults && !json_is_object(out->defaults))
    rc = def_fail_type(d, "defaults", "an object", out->defaults);
  if (!rc && out->renames && !json_is_object(out->renames))
    rc = def_fail_type(d, "renames", "an object", out->renames);
  const char *key;
  json_t *v;
  if (!rc) {
    json_object_foreach((json_t *)out->defaults, key, v) {
      const ctxd__schema_field_t *f = find_field(&out->body, key);
      size_t m2 = path_push(&d->path, ".defaults.%s", quote(q, key, strlen(key)));
      if (!f)
        rc = fail_at(d->err, d->errlen, CTXD_EINVAL, &d->path, "no such field in this version");
      else if (!json_is_null(v) || (f->required && !f->nullable))
        rc = check_type(d, &f->type, v);
      path_pop(&d->path, m2);
      if (rc) break;
    }
  }
  if (!rc) {
    json_object_foreach((json_t *)out->renames, key, v) {
      const char *to = json_string_value(v);
      size_t m2 = path_push(&d->path, ".renames.%s", quote(q, key, strlen(key)));
      if (!identifier_ok(key))
        rc = fail_at(d->err, d->errlen, CTXD_EINVAL, &d->path, "not a PascalCase identifier");
      else if (!to || !find_field(&out->body, to))
        rc =
            fail_at(d->err, d->errlen, CTXD_EINVAL, &d->path, "expected the name of a field of this version");
      else if (strcmp(key, to) == 0)
        rc = fail_at(d->err, d->errlen, CTXD_EINVAL, &d->path, "renamed to itself");
      path_pop(&d->path, m2);
      if (rc) break;
    }
  }
  path_pop(&d->path, mark);
  return rc;
}

int ctxd__schema_def_parse(const json_t *json, ctxd__schema_def_t *out, char *err, size_t errlen) {
  static const char *const keys[] = {
      "namespace",   "type",       "version",   "kind",   "status",
      "description", "producers",  "consumers", "fields", "upcast_from_previous",
      "exchange",    "implements", NULL};
  if (!json || !out) return CTXD_EINVAL;
  memset(out, 0, sizeof *out);
  def_t d = {.err = err, .errlen = errlen, .code = CTXD_EINVAL};
  path_init(&d.path, "");
  int rc = 0;
  bool has;
  int64_t version = 0;
  if (!json_is_object(json))
    rc = fail_at(err, errlen, CTXD_EINVAL, &d.path, "expected an object, got %s", json_kind_phrase(json));
  out->json = json;
  if (!rc) rc = only_keys(&d, json, keys);
  if (!rc) rc = def_string(&d, json, "namespace", true, &out->ns);
  if (!rc) rc = def_string(&d, json, "type", true, &out->type_name);
  if (!rc) rc = def_int(&d, json, "version", 1, 9999, &has, &version);
  if (!rc && !has) rc = def_fail_type(&d, "version", "an integer", NULL);
  out->version = (int)version;
  if (!rc) rc = def_string(&d, json, "kind", true, &out->kind);
  if (!rc) rc = def_string(&d, json, "status", true, &out->status);
  if (!rc) rc = def_string(&d, json, "description", true, &out->description);
  if (!rc) rc = parse_contexts(&d, json, "producers", &out->producers);
  if (!rc) rc = parse_contexts(&d, json, "consumers", &out->consumers);
  if (!rc) {
    /* Segments are PascalCase; the version segment comes from "version". */
    const char *s = out->ns;
    char seg[NAME_MAX_LEN + 1];
    size_t nseg = 0;
    while (!rc && *s) {
      size_t n = strcspn(s, ".");
      bool ok = n > 0 && n <= NAME_MAX_LEN;
      if (ok) {
        memcpy(seg, s, n);
        seg[n] = '\0';
        ok = identifier_ok(seg);
      }
      if (!ok && n > 1 && s[0] == 'v' && is_digit(s[1]))
        rc = fail_at(err, errlen, CTXD_EINVAL, &d.path,
                     "namespace: leave the version segment out (it comes from \"version\")");
      else if (!ok || (s[n] == '.' && s[n + 1] == '\0'))
        rc = fail_at(err, errlen, CTXD_EINVAL, &d.path,
                     "namespace: expected PascalCase segments separated by dots");
      s += n + (s[n] == '.');
      nseg++;
    }
    if (!rc && nseg < 2)
      rc = fail_at(err, errlen, CTXD_EINVAL, &d.path, "namespace: expected at least two segments");
  }
  if (!rc && !identifier_ok(out->type_name))
    rc = fail_at(err, errlen, CTXD_EINVAL, &d.path, "type: '%s' is not a PascalCase identifier",
                 out->type_name);
  if (!rc && strcmp(out->kind, "event") && strcmp(out->kind, "command") && strcmp(out->kind, "reply"))
    rc = fail_at(err, errlen, CTXD_EINVAL, &d.path, "kind: expected event, command or reply");
  if (!rc && strcmp(out->status, "released") && strcmp(out->status, "draft"))
    rc = fail_at(err, errlen, CTXD_EINVAL, &d.path, "status: expected released or draft");
  if (!rc) rc = parse_fields(&d, json_object_get(json, "fields"), 1, &out->body);
  if (!rc && json_object_get(json, "upcast_from_previous"))
    rc = parse_upcast(&d, json_object_get(json, "upcast_from_previous"), out);
  if (!rc && asprintf(&out->message_type, "%s.v%d:%s", out->ns, out->version, out->type_name) < 0) {
    out->message_type = NULL;
    rc = CTXD_ENOMEM;
  }
  if (!rc) rc = def_string(&d, json, "exchange", false, &out->exchange);
  if (!rc && out->exchange && !exchange_name_ok(out->exchange))
    rc = fail_at(err, errlen, CTXD_EINVAL, &d.path, "exchange: expected at most 255 bytes without blanks");
  if (!rc) rc = parse_implements(&d, json, out->message_type, &out->implements);
  if (rc == CTXD_ENOMEM) fail_at(err, errlen, rc, &d.path, "out of memory");
  if (rc) ctxd__schema_def_release(out);
  return rc;
}

void ctxd__schema_def_release(ctxd__schema_def_t *def) {
  if (!def) return;
  type_release(&def->body);
  free(def->message_type);
  memset(def, 0, sizeof *def);
}

/* ---------------------------------------------------------------------------------------
 * Comparison: the compatibility check and the upcaster check
 */

typedef struct {
  char *err;
  size_t errlen;
  ctxd__schema_compare_t mode;
  bool implements; /* widening from a type to a base it implements: "newer" is the base */
  path_t path;
} cmp_t;

__attribute__((format(printf, 2, 3))) static int cmp_fail(cmp_t *c, const char *fmt, ...) {
  char reason[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(reason, sizeof reason, fmt, ap);
  va_end(ap);
  return fail_at(c->err, c->errlen, CTXD_EVALIDATION, &c->path, "%s", reason);
}

static void limit_text(bool has, int64_t v, char buf[24]) {
  if (has)
    snprintf(buf, 24, "%" PRId64, v);
  else
    strcpy(buf, "none");
}

/* A size limit (0 = none): frozen means equal, widening means not tighter. */
static int cmp_limit(cmp_t *c, const char *what, size_t older, size_t newer) {
  bool ok = c->mode == CTXD__SCHEMA_FROZEN ? older == newer : newer == 0 || (older != 0 && newer >= older);
  if (ok) return 0;
  char a[24], b[24];
  limit_text(older != 0, (int64_t)older, a);
  limit_text(newer != 0, (int64_t)newer, b);
  return cmp_fail(c, "%s changed from %s to %s", what, a, b);
}

/* An int bound: frozen means equal; widening means the newer bound is absent or lets more
 * values through (lower for min, higher for max). */
static int cmp_bound(cmp_t *c, const char *what, bool has_o, int64_t o, bool has_n, int64_t n, bool is_min) {
  bool ok;
  if (c->mode == CTXD__SCHEMA_FROZEN)
    ok = has_o == has_n && (!has_o || o == n);
  else
    ok = !has_n || (has_o && (is_min ? n <= o : n >= o));
  if (ok) return 0;
  char a[24], b[24];
  limit_text(has_o, o, a);
  limit_text(has_n, n, b);
  return cmp_fail(c, "%s changed from %s to %s", what, a, b);
}

static const ctxd__schema_enum_t *find_value(const ctxd__schema_type_t *t, int32_t value) {
  for (size_t i = 0; i < t->nvalues; i++)
    if (t->values[i].value == value) return &t->values[i];
  return NULL;
}

static int cmp_fields(cmp_t *c, const ctxd__schema_type_t *o, const ctxd__schema_type_t *n,
                      const json_t *renames, const json_t *defaults);

static int cmp_type(cmp_t *c, const ctxd__schema_type_t *o, const ctxd__schema_type_t *n) {
  if (o->kind != n->kind) {
    /* Every integer is a decimal, so an upcast may widen one into the other. */
    if (c->mode == CTXD__SCHEMA_WIDENS && o->kind == CTXD__SCHEMA_INT && n->kind == CTXD__SCHEMA_DECIMAL)
      return 0;
    return cmp_fail(c, "type changed from %s to %s", ctxd__schema_kind_name(o->kind),
                    ctxd__schema_kind_name(n->kind));
  }
  int rc = 0;
  switch (o->kind) {
  case CTXD__SCHEMA_STRING: return cmp_limit(c, "max_length", o->max_length, n->max_length);
  case CTXD__SCHEMA_INT:
    if ((rc = cmp_bound(c, "min", o->has_min, o->min, n->has_min, n->min, true))) return rc;
    return cmp_bound(c, "max", o->has_max, o->max, n->has_max, n->max, false);
  case CTXD__SCHEMA_ENUM:
    for (size_t i = 0; i < o->nvalues; i++) {
      const ctxd__schema_enum_t *v = find_value(n, o->values[i].value);
      if (!v)
        return cmp_fail(c,
                        c->implements ? "enum value %" PRId32 " (%s) is not in it"
                                      : "enum value %" PRId32 " (%s) removed",
                        o->values[i].value, o->values[i].name);
      if (c->mode == CTXD__SCHEMA_FROZEN && strcmp(v->name, o->values[i].name))
        return cmp_fail(c, "enum value %" PRId32 " renamed from %s to %s", v->value, o->values[i].name,
                        v->name);
    }
    for (size_t i = 0; c->mode == CTXD__SCHEMA_FROZEN && i < n->nvalues; i++)
      if (!find_value(o, n->values[i].value))
        return cmp_fail(c, "enum value %" PRId32 " (%s) added", n->values[i].value, n->values[i].name);
    return 0;
  case CTXD__SCHEMA_OBJECT: return cmp_fields(c, o, n, NULL, NULL);
  case CTXD__SCHEMA_ARRAY: {
    if ((rc = cmp_limit(c, "max_items", o->max_items, n->max_items))) return rc;
    size_t mark = path_push(&c->path, "[]");
    rc = cmp_type(c, o->items, n->items);
    path_pop(&c->path, mark);
    return rc;
  }
  default: return 0;
  }
}

static int cmp_frozen_field(cmp_t *c, const ctxd__schema_field_t *o, const ctxd__schema_field_t *n) {
  if (o->required != n->required) return cmp_fail(c, n->required ? "became required" : "became optional");
  if (o->nullable != n->nullable)
    return cmp_fail(c, n->nullable ? "became nullable" : "is no longer nullable");
  return cmp_type(c, &o->type, &n->type);
}

/* Given a valid older value (after renames and defaults), is the newer field valid? */
static int cmp_widening_field(cmp_t *c, const ctxd__schema_field_t *o, const ctxd__schema_field_t *n,
                              bool has_default) {
  bool n_takes_null = n->nullable || !n->required;
  if (!o && c->implements) return n->required ? cmp_fail(c, "required there, missing here") : 0;
  if (!o) return n->required && !has_default ? cmp_fail(c, "required field added without a default") : 0;
  if (!has_default && !o->required && n->required)
    return cmp_fail(c, "required, but optional before, and without a default");
  if (!has_default && (o->nullable || !o->required) && !n_takes_null)
    return cmp_fail(c, "no longer takes null, and has no default");
  return cmp_type(c, &o->type, &n->type);
}

static int cmp_fields(cmp_t *c, const ctxd__schema_type_t *o, const ctxd__schema_type_t *n,
                      const json_t *renames, const json_t *defaults) {
  int rc = 0;
  if (c->mode == CTXD__SCHEMA_FROZEN) {
    for (size_t i = 0; !rc && i < o->nfields; i++) {
      const ctxd__schema_field_t *of = &o->fields[i], *nf = find_field(n, of->name);
      size_t mark = path_field(&c->path, of->name);
      rc = nf ? cmp_frozen_field(c, of, nf) : cmp_fail(c, "field removed");
      path_pop(&c->path, mark);
    }
    for (size_t i = 0; !rc && i < n->nfields; i++) {
      const ctxd__schema_field_t *nf = &n->fields[i];
      size_t mark = path_field(&c->path, nf->name);
      if (!find_field(o, nf->name) && nf->required) rc = cmp_fail(c, "required field added");
      path_pop(&c->path, mark);
    }
    return rc;
  }
  for (size_t i = 0; !rc && i < n->nfields; i++) {
    const ctxd__schema_field_t *nf = &n->fields[i];
    const char *source = nf->name, *key;
    json_t *v;
    json_object_foreach((json_t *)renames, key, v) {
      if (strcmp(json_string_value(v), nf->name) == 0) source = key;
    }
    size_t mark = path_field(&c->path, nf->name);
    rc = cmp_widening_field(c, find_field(o, source), nf, json_object_get(defaults, nf->name) != NULL);
    path_pop(&c->path, mark);
  }
  return rc;
}

int ctxd__schema_compare(const ctxd__schema_type_t *older, const ctxd__schema_type_t *newer,
                         ctxd__schema_compare_t mode, char *err, size_t errlen) {
  if (!older || !newer || older->kind != CTXD__SCHEMA_OBJECT || newer->kind != CTXD__SCHEMA_OBJECT)
    return CTXD_EINVAL;
  cmp_t c = {.err = err, .errlen = errlen, .mode = mode};
  path_init(&c.path, "");
  return cmp_fields(&c, older, newer, NULL, NULL);
}

int ctxd__schema_check_upcast(const ctxd__schema_def_t *prev, const ctxd__schema_def_t *cur, char *err,
                              size_t errlen) {
  if (!prev || !cur) return CTXD_EINVAL;
  path_t p;
  path_init(&p, "upcast_from_previous");
  if (strcmp(prev->ns, cur->ns) || strcmp(prev->type_name, cur->type_name) ||
      prev->version + 1 != cur->version)
    return fail_at(err, errlen, CTXD_EINVAL, &p, "%s is not the version before %s", prev->message_type,
                   cur->message_type);
  const char *key;
  json_t *v;
  json_object_foreach((json_t *)cur->renames, key, v) {
    if (!find_field(&prev->body, key))
      return fail_at(err, errlen, CTXD_EINVAL, &p, "renames.%s: no such field in v%d", key, prev->version);
    if (find_field(&prev->body, json_string_value(v)))
      return fail_at(err, errlen, CTXD_EINVAL, &p, "renames.%s: v%d already has a field %s", key,
                     prev->version, json_string_value(v));
  }
  char reason[256];
  cmp_t c = {.err = reason, .errlen = sizeof reason, .mode = CTXD__SCHEMA_WIDENS};
  path_init(&c.path, "");
  if (cmp_fields(&c, &prev->body, &cur->body, cur->renames, cur->defaults))
    return fail_at(err, errlen, CTXD_EINVAL, &p, "from v%d: %s", prev->version, reason);
  return 0;
}

int ctxd__schema_check_implements(const ctxd__schema_def_t *base, const ctxd__schema_def_t *def, char *err,
                                  size_t errlen) {
  if (!base || !def) return CTXD_EINVAL;
  char reason[256];
  cmp_t c = {.err = reason, .errlen = sizeof reason, .mode = CTXD__SCHEMA_WIDENS, .implements = true};
  path_init(&c.path, "");
  path_t p;
  path_init(&p, "implements");
  if (cmp_fields(&c, &def->body, &base->body, NULL, NULL))
    return fail_at(err, errlen, CTXD_EINVAL, &p, "%s does not accept every message of this type: %s",
                   base->message_type, reason);
  return 0;
}
