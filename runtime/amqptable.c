#include "amqptable.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ctxd/errno.h>

/* AMQP short strings (table keys) carry a one-byte length. */
enum { AMQP_KEY_MAX = 255 };

void ctxd__amqptable_set_text(amqp_table_entry_t *e, const char *key, const char *value) {
  e->key = amqp_cstring_bytes(key);
  e->value.kind = AMQP_FIELD_KIND_UTF8;
  e->value.value.bytes = amqp_cstring_bytes(value);
}

void ctxd__amqptable_set_i32(amqp_table_entry_t *e, const char *key, int32_t value) {
  e->key = amqp_cstring_bytes(key);
  e->value.kind = AMQP_FIELD_KIND_I32;
  e->value.value.i32 = value;
}

void ctxd__amqptable_set_i64(amqp_table_entry_t *e, const char *key, int64_t value) {
  e->key = amqp_cstring_bytes(key);
  e->value.kind = AMQP_FIELD_KIND_I64;
  e->value.value.i64 = value;
}

/* The value of a decimal string field: 1 with *out, else 0. */
static int decimal(amqp_bytes_t b, int64_t *out) {
  char text[24];
  if (b.len == 0 || b.len >= sizeof text) return 0;
  memcpy(text, b.bytes, b.len);
  text[b.len] = '\0';
  char *end;
  long long v = strtoll(text, &end, 10);
  if (*end != '\0') return 0;
  *out = v;
  return 1;
}

int ctxd__amqptable_get_int(const amqp_table_t *t, const char *key, int64_t *out) {
  size_t len = strlen(key);
  for (int i = 0; t != NULL && i < t->num_entries; i++) {
    const amqp_table_entry_t *e = &t->entries[i];
    if (e->key.len != len || strncasecmp(e->key.bytes, key, len) != 0) continue;
    const amqp_field_value_t *v = &e->value;
    switch (v->kind) {
    case AMQP_FIELD_KIND_I8: *out = v->value.i8; return 1;
    case AMQP_FIELD_KIND_U8: *out = v->value.u8; return 1;
    case AMQP_FIELD_KIND_I16: *out = v->value.i16; return 1;
    case AMQP_FIELD_KIND_U16: *out = v->value.u16; return 1;
    case AMQP_FIELD_KIND_I32: *out = v->value.i32; return 1;
    case AMQP_FIELD_KIND_U32: *out = v->value.u32; return 1;
    case AMQP_FIELD_KIND_I64: *out = v->value.i64; return 1;
    case AMQP_FIELD_KIND_UTF8:
    case AMQP_FIELD_KIND_BYTES: return decimal(v->value.bytes, out);
    default: return 0;
    }
  }
  return 0;
}

static json_t *field_to_json(const amqp_field_value_t *v);

static json_t *u64_to_json(uint64_t u) {
  return u > INT64_MAX ? json_real((double)u) : json_integer((json_int_t)u);
}

/* AMQP decimals are a scale and a signed 32-bit mantissa; rabbitmq-c declares the mantissa
 * unsigned, so reinterpret it. */
static json_t *decimal_to_json(amqp_decimal_t d) {
  double v = d.value > INT32_MAX ? (double)d.value - 4294967296.0 : (double)d.value;
  for (unsigned i = 0; i < d.decimals; i++) v /= 10;
  return json_real(v);
}

static json_t *array_to_json(const amqp_array_t *a) {
  json_t *arr = json_array();
  for (int i = 0; arr && i < a->num_entries; i++) {
    json_t *v = field_to_json(&a->entries[i]);
    if (v) json_array_append_new(arr, v);
  }
  return arr;
}

/* Returns a new reference, or NULL for a value JSON cannot carry (skipped by callers). */
static json_t *field_to_json(const amqp_field_value_t *v) {
  switch (v->kind) {
  case AMQP_FIELD_KIND_BOOLEAN: return json_boolean(v->value.boolean);
  case AMQP_FIELD_KIND_I8: return json_integer(v->value.i8);
  case AMQP_FIELD_KIND_U8: return json_integer(v->value.u8);
  case AMQP_FIELD_KIND_I16: return json_integer(v->value.i16);
  case AMQP_FIELD_KIND_U16: return json_integer(v->value.u16);
  case AMQP_FIELD_KIND_I32: return json_integer(v->value.i32);
  case AMQP_FIELD_KIND_U32: return json_integer(v->value.u32);
  case AMQP_FIELD_KIND_I64: return json_integer(v->value.i64);
  case AMQP_FIELD_KIND_U64:
  case AMQP_FIELD_KIND_TIMESTAMP: return u64_to_json(v->value.u64);
  case AMQP_FIELD_KIND_F32: return json_real(v->value.f32);
  case AMQP_FIELD_KIND_F64: return json_real(v->value.f64);
  case AMQP_FIELD_KIND_DECIMAL: return decimal_to_json(v->value.decimal);
  case AMQP_FIELD_KIND_UTF8:
  case AMQP_FIELD_KIND_BYTES:
    /* json_stringn refuses invalid UTF-8 (-> skipped) and a NULL pointer even for "". */
    return json_stringn(v->value.bytes.len ? v->value.bytes.bytes : "", v->value.bytes.len);
  case AMQP_FIELD_KIND_TABLE: return ctxd__amqp_table_to_json(&v->value.table);
  case AMQP_FIELD_KIND_ARRAY: return array_to_json(&v->value.array);
  case AMQP_FIELD_KIND_VOID: return json_null();
  default: return NULL;
  }
}

json_t *ctxd__amqp_table_to_json(const amqp_table_t *t) {
  json_t *obj = json_object();
  for (int i = 0; obj && t && i < t->num_entries; i++) {
    const amqp_table_entry_t *e = &t->entries[i];
    json_t *v = field_to_json(&e->value);
    /* setn_new drops v itself when the key is not UTF-8. */
    if (v && e->key.bytes)
      json_object_setn_new(obj, e->key.bytes, e->key.len, v);
    else
      json_decref(v);
  }
  return obj;
}

/* NUL-terminated copy in the pool: rabbitmq-c documents table keys as NUL-terminated and
 * an empty string still gets a valid pointer. */
static int pool_bytes(amqp_pool_t *pool, const char *s, size_t len, amqp_bytes_t *out) {
  char *p = amqp_pool_alloc(pool, len + 1);
  if (!p) return CTXD_ENOMEM;
  memcpy(p, s, len);
  p[len] = '\0';
  *out = (amqp_bytes_t){.len = len, .bytes = p};
  return 0;
}

static int json_to_array(const json_t *arr, amqp_pool_t *pool, amqp_array_t *out);

/* Returns 1 when converted, 0 when the value has no AMQP counterpart here (skipped), or a
 * negative CTXD_E* code. */
static int json_to_field(const json_t *j, amqp_pool_t *pool, amqp_field_value_t *out) {
  int rc;
  switch (json_typeof(j)) {
  case JSON_STRING:
    out->kind = AMQP_FIELD_KIND_UTF8;
    rc = pool_bytes(pool, json_string_value(j), json_string_length(j), &out->value.bytes);
    break;
  case JSON_INTEGER:
    out->kind = AMQP_FIELD_KIND_I64;
    out->value.i64 = json_integer_value(j);
    return 1;
  case JSON_REAL:
    out->kind = AMQP_FIELD_KIND_F64;
    out->value.f64 = json_real_value(j);
    return 1;
  case JSON_TRUE:
  case JSON_FALSE:
    out->kind = AMQP_FIELD_KIND_BOOLEAN;
    out->value.boolean = json_is_true(j);
    return 1;
  case JSON_OBJECT:
    out->kind = AMQP_FIELD_KIND_TABLE;
    rc = ctxd__json_to_amqp_table(j, pool, &out->value.table);
    break;
  case JSON_ARRAY:
    out->kind = AMQP_FIELD_KIND_ARRAY;
    rc = json_to_array(j, pool, &out->value.array);
    break;
  default: return 0;
  }
  return rc < 0 ? rc : 1;
}

static int json_to_array(const json_t *arr, amqp_pool_t *pool, amqp_array_t *out) {
  size_t n = json_array_size(arr);
  *out = (amqp_array_t){0};
  if (n == 0) return 0;
  if (n > INT32_MAX) return CTXD_ENOMEM;
  amqp_field_value_t *entries = amqp_pool_alloc(pool, n * sizeof *entries);
  if (!entries) return CTXD_ENOMEM;
  int count = 0;
  for (size_t i = 0; i < n; i++) {
    int rc = json_to_field(json_array_get(arr, i), pool, &entries[count]);
    if (rc < 0) return rc;
    count += rc;
  }
  *out = (amqp_array_t){.num_entries = count, .entries = entries};
  return 0;
}

int ctxd__json_to_amqp_table(const json_t *obj, amqp_pool_t *pool, amqp_table_t *out) {
  if (!out) return CTXD_EINVAL;
  *out = amqp_empty_table;
  if (!json_is_object(obj) || !pool) return CTXD_EINVAL;
  size_t n = json_object_size(obj);
  if (n == 0) return 0;
  if (n > INT32_MAX) return CTXD_ENOMEM;
  amqp_table_entry_t *entries = amqp_pool_alloc(pool, n * sizeof *entries);
  if (!entries) return CTXD_ENOMEM;
  int count = 0;
  json_t *o = (json_t *)obj; /* jansson's iteration API is not const-correct */
  for (void *it = json_object_iter(o); it; it = json_object_iter_next(o, it)) {
    size_t klen = json_object_iter_key_len(it);
    if (klen > AMQP_KEY_MAX) continue;
    int rc = json_to_field(json_object_iter_value(it), pool, &entries[count].value);
    if (rc == 0) continue;
    if (rc > 0) rc = pool_bytes(pool, json_object_iter_key(it), klen, &entries[count].key);
    if (rc < 0) return rc;
    count++;
  }
  *out = (amqp_table_t){.num_entries = count, .entries = entries};
  return 0;
}
