/* MassTransit envelopes: decoding, encoding, UUIDs and AMQP header tables. See envelope.h. */
#include "envelope.h"

#include "contract_schema.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <ctxd/errno.h>
#include <ctxd/version.h>

#define URN_PREFIX "urn:message:"
#define URN_PREFIX_LEN (sizeof URN_PREFIX - 1)

/* Longest value quoted in an error reason; longer ones are cut and end in "...". */
enum { QUOTE_MAX = 64 };

/* AMQP short strings (table keys) carry a one-byte length. */
enum { AMQP_KEY_MAX = 255 };

/* ---------------------------------------------------------------------------------------
 * Small helpers
 */

/* Writes the one-line reason and returns code, so callers can `return fail(...)`. */
__attribute__((format(printf, 4, 5))) static int fail(char *err, size_t errlen, int code,
                                                      const char *fmt, ...) {
  if (err && errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return code;
}

/* Copies a value into buf for an error reason. Anything but printable ASCII becomes '?'
 * so a hostile value cannot break the reason onto several lines or into invalid UTF-8. */
static const char *printable(char buf[QUOTE_MAX + 4], const char *s, size_t len) {
  size_t n = len > QUOTE_MAX ? QUOTE_MAX : len;
  for (size_t i = 0; i < n; i++)
    buf[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
  strcpy(buf + n, len > QUOTE_MAX ? "..." : "");
  return buf;
}


static bool is_space(char c) { return c == ' ' || c == '\t'; }

static void trim(const char **s, size_t *len) {
  while (*len && is_space(**s))
    (*s)++, (*len)--;
  while (*len && is_space((*s)[*len - 1]))
    (*len)--;
}

/* Returns the offset of the first byte of the first invalid UTF-8 sequence, or len when
 * all is valid (RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF). */
static size_t utf8_invalid_at(const unsigned char *p, size_t len) {
  size_t i = 0;
  while (i < len) {
    unsigned c = p[i], lo = 0x80, hi = 0xbf;
    size_t more;
    if (c < 0x80) {
      i++;
      continue;
    }
    if (c >= 0xc2 && c <= 0xdf)
      more = 1;
    else if (c == 0xe0)
      more = 2, lo = 0xa0;
    else if (c == 0xed)
      more = 2, hi = 0x9f;
    else if (c >= 0xe1 && c <= 0xef)
      more = 2;
    else if (c == 0xf0)
      more = 3, lo = 0x90;
    else if (c == 0xf4)
      more = 3, hi = 0x8f;
    else if (c >= 0xf1 && c <= 0xf3)
      more = 3;
    else
      return i;
    if (len - i - 1 < more || p[i + 1] < lo || p[i + 1] > hi)
      return i;
    for (size_t k = 2; k <= more; k++)
      if ((p[i + k] & 0xc0) != 0x80)
        return i;
    i += more + 1;
  }
  return len;
}

/* The first index at or after i that is outside every string: strings starting there
 * are skipped whole (escapes included); len when the text ends first. */
static size_t skip_strings(const char *p, size_t i, size_t len) {
  while (i < len && p[i] == '"') {
    for (i++; i < len && p[i] != '"'; i++)
      if (p[i] == '\\')
        i++;
    i++;
  }
  return i < len ? i : len;
}

/* Counts bracket nesting without parsing, so a hostile body cannot make the parser recurse
 * deeply; brackets inside strings do not count. */
static bool too_deep(const char *p, size_t len, int max_depth) {
  int depth = 0;
  for (size_t i = 0; (i = skip_strings(p, i, len)) < len; i++) {
    if (p[i] == '{' || p[i] == '[') {
      if (depth >= max_depth)
        return true;
      depth++;
    } else if ((p[i] == '}' || p[i] == ']') && depth > 0) {
      depth--;
    }
  }
  return false;
}

/* ---- the message's own text --------------------------------------------------------
 * These scans run only on text json_loadb accepted, so they need not validate. */

static bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

static size_t skip_ws(const char *p, size_t i, size_t len) {
  while (i < len && is_ws(p[i]))
    i++;
  return i;
}

/* The end of the value starting at p[i]. */
static size_t skip_value(const char *p, size_t i, size_t len) {
  if (i < len && p[i] == '"')
    return skip_strings(p, i, len);
  int depth = 0;
  for (; (i = skip_strings(p, i, len)) < len; i++) {
    char c = p[i];
    if (c == '{' || c == '[') {
      depth++;
    } else if (c == '}' || c == ']') {
      if (depth == 0)
        return i;
      if (--depth == 0)
        return i + 1;
    } else if (depth == 0 && (c == ',' || is_ws(c))) {
      return i;
    }
  }
  return len;
}

/* Object members in the text (each has one ':' outside strings). */
static size_t text_members(const char *p, size_t len) {
  size_t n = 0;
  for (size_t i = 0; (i = skip_strings(p, i, len)) < len; i++)
    n += p[i] == ':';
  return n;
}

/* Object members in the parsed tree: fewer than in the text when a key repeated. */
static size_t tree_members(const json_t *v) {
  size_t n = 0;
  if (json_is_object(v)) {
    const char *key;
    const json_t *member;
    json_object_foreach((json_t *)v, key, member) n += 1 + tree_members(member);
  } else if (json_is_array(v)) {
    for (size_t i = 0; i < json_array_size(v); i++)
      n += tree_members(json_array_get(v, i));
  }
  return n;
}

/* The span of the top-level member `key` (matched ignoring ASCII case, as the decoder
 * does); false unless exactly one key matches and no key has escapes (json_loadb would
 * unescape them, and the text would name another member than the tree). */
static bool member_span(const char *p, size_t len, const char *key, size_t *off, size_t *n) {
  size_t klen = strlen(key), i = skip_ws(p, 0, len);
  int found = 0;
  if (i >= len || p[i] != '{')
    return false;
  for (i++;; i++) {
    i = skip_ws(p, i, len);
    if (i >= len || p[i] != '"')
      return found == 1;
    size_t k = i + 1, kend = k;
    for (; kend < len && p[kend] != '"'; kend++)
      if (p[kend] == '\\')
        return false;
    i = skip_ws(p, skip_ws(p, kend + 1, len) + 1, len); /* past the ':' */
    size_t end = skip_value(p, i, len);
    if (ctxd__schema_ascii_ieq(p + k, kend - k, key, klen)) {
      found++;
      *off = i;
      *n = end - i;
    }
    i = skip_ws(p, end, len);
    if (i >= len || p[i] != ',')
      return found == 1;
  }
}

static void set_message_text(ctxd__envelope_t *env, const char *p, size_t len, bool envelope) {
  size_t off = 0, n = len;
  if (envelope && !member_span(p, len, "message", &off, &n))
    return;
  if (text_members(p + off, n) != tree_members(env->message))
    return;
  env->message_text = p + off;
  env->message_len = n;
}

json_t *ctxd__json_get_ci(const json_t *obj, const char *key) {
  /* one rule for the host and the contracts' decoders */
  return json_is_object(obj) && key ? (json_t *)ctxd__schema_get_ci(obj, key) : NULL;
}

/* ---------------------------------------------------------------------------------------
 * UUIDs
 */

static void uuid_format(const unsigned char b[16], char out[37]) {
  static const char digits[] = "0123456789abcdef";
  size_t o = 0;
  for (size_t i = 0; i < 16; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10)
      out[o++] = '-';
    out[o++] = digits[b[i] >> 4];
    out[o++] = digits[b[i] & 0xf];
  }
  out[o] = '\0';
}

int ctxd__uuid_canonical(const char *in, char out[37]) {
  char id[37]; /* out stays as it was when in is not a UUID */
  if (in == NULL || ctxd__schema_uuid_parse(in, strlen(in), id) != 0) return CTXD_EINVAL;
  memcpy(out, id, sizeof id);
  return 0;
}

void ctxd__uuid_new(char out[37]) {
  unsigned char b[16];
  size_t got = 0;
  while (got < sizeof b) {
    ssize_t n = getrandom(b + got, sizeof b - got, 0);
    if (n < 0 && errno == EINTR)
      continue;
    /* Message ids are what consumers deduplicate on: a predictable or repeated id would
     * make them drop real messages, which is worse than stopping. getrandom() cannot
     * fail here on Linux >= 3.17 once the pool is seeded. */
    if (n < 0)
      abort();
    got += (size_t)n;
  }
  b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
  b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
  uuid_format(b, out);
}

/* ---------------------------------------------------------------------------------------
 * AMQP tables <-> JSON
 */

static json_t *field_to_json(const amqp_field_value_t *v);

static json_t *u64_to_json(uint64_t u) {
  return u > INT64_MAX ? json_real((double)u) : json_integer((json_int_t)u);
}

/* AMQP decimals are a scale and a signed 32-bit mantissa; rabbitmq-c declares the mantissa
 * unsigned, so reinterpret it. */
static json_t *decimal_to_json(amqp_decimal_t d) {
  double v = d.value > INT32_MAX ? (double)d.value - 4294967296.0 : (double)d.value;
  for (unsigned i = 0; i < d.decimals; i++)
    v /= 10;
  return json_real(v);
}

static json_t *array_to_json(const amqp_array_t *a) {
  json_t *arr = json_array();
  for (int i = 0; arr && i < a->num_entries; i++) {
    json_t *v = field_to_json(&a->entries[i]);
    if (v)
      json_array_append_new(arr, v);
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
  if (!p)
    return CTXD_ENOMEM;
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
  default:
    return 0;
  }
  return rc < 0 ? rc : 1;
}

static int json_to_array(const json_t *arr, amqp_pool_t *pool, amqp_array_t *out) {
  size_t n = json_array_size(arr);
  *out = (amqp_array_t){0};
  if (n == 0)
    return 0;
  if (n > INT32_MAX)
    return CTXD_ENOMEM;
  amqp_field_value_t *entries = amqp_pool_alloc(pool, n * sizeof *entries);
  if (!entries)
    return CTXD_ENOMEM;
  int count = 0;
  for (size_t i = 0; i < n; i++) {
    int rc = json_to_field(json_array_get(arr, i), pool, &entries[count]);
    if (rc < 0)
      return rc;
    count += rc;
  }
  *out = (amqp_array_t){.num_entries = count, .entries = entries};
  return 0;
}

int ctxd__json_to_amqp_table(const json_t *obj, amqp_pool_t *pool, amqp_table_t *out) {
  if (!out)
    return CTXD_EINVAL;
  *out = amqp_empty_table;
  if (!json_is_object(obj) || !pool)
    return CTXD_EINVAL;
  size_t n = json_object_size(obj);
  if (n == 0)
    return 0;
  if (n > INT32_MAX)
    return CTXD_ENOMEM;
  amqp_table_entry_t *entries = amqp_pool_alloc(pool, n * sizeof *entries);
  if (!entries)
    return CTXD_ENOMEM;
  int count = 0;
  json_t *o = (json_t *)obj; /* jansson's iteration API is not const-correct */
  for (void *it = json_object_iter(o); it; it = json_object_iter_next(o, it)) {
    size_t klen = json_object_iter_key_len(it);
    if (klen > AMQP_KEY_MAX)
      continue;
    int rc = json_to_field(json_object_iter_value(it), pool, &entries[count].value);
    if (rc == 0)
      continue;
    if (rc > 0)
      rc = pool_bytes(pool, json_object_iter_key(it), klen, &entries[count].key);
    if (rc < 0)
      return rc;
    count++;
  }
  *out = (amqp_table_t){.num_entries = count, .entries = entries};
  return 0;
}

/* ---------------------------------------------------------------------------------------
 * Decoding
 */

enum { SHAPE_ENVELOPE, SHAPE_PLAIN, SHAPE_SNIFF };

/* Optional string metadata: its envelope key, its AMQP header in plain JSON, its slot. */
static const struct meta_field {
  const char *envelope_key;
  const char *header;
  size_t offset;
} meta_fields[] = {
    {"requestId", "RequestId", offsetof(ctxd__envelope_t, request_id)},
    {"correlationId", "CorrelationId", offsetof(ctxd__envelope_t, correlation_id)},
    {"conversationId", "ConversationId", offsetof(ctxd__envelope_t, conversation_id)},
    {"initiatorId", "InitiatorId", offsetof(ctxd__envelope_t, initiator_id)},
    {"sourceAddress", "SourceAddress", offsetof(ctxd__envelope_t, source_address)},
    {"destinationAddress", "DestinationAddress",
     offsetof(ctxd__envelope_t, destination_address)},
    {"responseAddress", "ResponseAddress", offsetof(ctxd__envelope_t, response_address)},
    {"faultAddress", "FaultAddress", offsetof(ctxd__envelope_t, fault_address)},
    {"sentTime", "SentTime", offsetof(ctxd__envelope_t, sent_time)},
};

/* Returns the property selected by flag when flagged and non-empty (an empty id or type
 * carries nothing), else NULL. */
static const amqp_bytes_t *prop(const amqp_basic_properties_t *props, amqp_flags_t flag) {
  const amqp_bytes_t *b;
  if (!props || !(props->_flags & flag))
    return NULL;
  switch (flag) {
  case AMQP_BASIC_CONTENT_TYPE_FLAG: b = &props->content_type; break;
  case AMQP_BASIC_MESSAGE_ID_FLAG: b = &props->message_id; break;
  case AMQP_BASIC_CORRELATION_ID_FLAG: b = &props->correlation_id; break;
  case AMQP_BASIC_TYPE_FLAG: b = &props->type; break;
  default: return NULL;
  }
  return b->len ? b : NULL;
}

static int content_shape(const amqp_basic_properties_t *props, char *err, size_t errlen) {
  const amqp_bytes_t *type = prop(props, AMQP_BASIC_CONTENT_TYPE_FLAG);
  if (!type)
    return SHAPE_SNIFF;
  const char *ct = type->bytes;
  size_t len = type->len;
  const char *semi = memchr(ct, ';', len);
  const char *media = ct;
  size_t mlen = semi ? (size_t)(semi - ct) : len;
  trim(&media, &mlen);
  if (ctxd__schema_ascii_ieq(media, mlen, CTXD__ENVELOPE_CONTENT_TYPE, strlen(CTXD__ENVELOPE_CONTENT_TYPE)))
    return SHAPE_ENVELOPE;
  if (ctxd__schema_ascii_ieq(media, mlen, "application/json", strlen("application/json")) ||
      ctxd__schema_ascii_ieq(media, mlen, "text/json", strlen("text/json")))
    return SHAPE_PLAIN;
  char q[QUOTE_MAX + 4];
  return fail(err, errlen, CTXD_EDECODE, "unsupported content type '%s'",
              printable(q, ct, len));
}

static int set_message_id(ctxd__envelope_t *env, const char *s, size_t len, char *err,
                          size_t errlen) {
  if (!s)
    return fail(err, errlen, CTXD_EDECODE, "missing message id");
  if (ctxd__schema_uuid_parse(s, len, env->id_buf) != 0) {
    char q[QUOTE_MAX + 4];
    return fail(err, errlen, CTXD_EDECODE, "message id '%s' is not a UUID",
                printable(q, s, len));
  }
  env->message_id = env->id_buf;
  return 0;
}

/* Appends the ';'-separated URNs in s to types (copies: s may point into AMQP properties),
 * without the "urn:message:" prefix. Empty or non-UTF-8 pieces are skipped. */
static int add_types(json_t *types, const char *s, size_t len) {
  while (len > 0) {
    const char *semi = memchr(s, ';', len);
    const char *t = s;
    size_t tlen = semi ? (size_t)(semi - s) : len;
    size_t step = semi ? tlen + 1 : len;
    s += step, len -= step;
    trim(&t, &tlen);
    if (tlen >= URN_PREFIX_LEN && memcmp(t, URN_PREFIX, URN_PREFIX_LEN) == 0)
      t += URN_PREFIX_LEN, tlen -= URN_PREFIX_LEN;
    if (tlen == 0 || utf8_invalid_at((const unsigned char *)t, tlen) < tlen)
      continue;
    if (json_array_append_new(types, json_stringn(t, tlen)))
      return CTXD_ENOMEM;
  }
  return 0;
}

/* Points env->message_types at the strings collected in types (owned by env->root). */
static int set_types(ctxd__envelope_t *env, const json_t *types, char *err, size_t errlen) {
  size_t n = json_array_size(types);
  if (n == 0)
    return fail(err, errlen, CTXD_EDECODE, "missing message type");
  env->message_types = malloc(n * sizeof *env->message_types);
  if (!env->message_types)
    return fail(err, errlen, CTXD_ENOMEM, "out of memory");
  for (size_t i = 0; i < n; i++)
    env->message_types[i] = json_string_value(json_array_get(types, i));
  env->nmessage_types = n;
  return 0;
}

static void read_meta(ctxd__envelope_t *env, const json_t *src, bool envelope) {
  for (size_t i = 0; i < sizeof meta_fields / sizeof meta_fields[0]; i++) {
    const struct meta_field *f = &meta_fields[i];
    json_t *v = ctxd__json_get_ci(src, envelope ? f->envelope_key : f->header);
    if (json_is_string(v))
      *(const char **)((char *)env + f->offset) = json_string_value(v);
  }
}

static int decode_envelope(ctxd__envelope_t *env, json_t *body, json_t *types, char *err,
                           size_t errlen) {
  json_t *id = ctxd__json_get_ci(body, "messageId");
  int rc = set_message_id(env, json_string_value(id), json_string_length(id), err, errlen);
  if (rc)
    return rc;
  json_t *mt = ctxd__json_get_ci(body, "messageType");
  for (size_t i = 0; i < json_array_size(mt); i++) {
    json_t *t = json_array_get(mt, i);
    if (json_is_string(t) && add_types(types, json_string_value(t), json_string_length(t)))
      return fail(err, errlen, CTXD_ENOMEM, "out of memory");
  }
  if ((rc = set_types(env, types, err, errlen)))
    return rc;
  env->message = ctxd__json_get_ci(body, "message");
  if (!json_is_object(env->message))
    return fail(err, errlen, CTXD_EDECODE, "message is not a JSON object");
  json_t *headers = ctxd__json_get_ci(body, "headers");
  if (json_is_object(headers) && json_object_update(env->headers, headers))
    return fail(err, errlen, CTXD_ENOMEM, "out of memory");
  read_meta(env, body, true);
  return 0;
}

static int decode_plain(ctxd__envelope_t *env, json_t *body,
                        const amqp_basic_properties_t *props, json_t *types, char *err,
                        size_t errlen) {
  int rc;
  const amqp_bytes_t *b = prop(props, AMQP_BASIC_MESSAGE_ID_FLAG);
  if (b) {
    rc = set_message_id(env, b->bytes, b->len, err, errlen);
  } else {
    json_t *id = ctxd__json_get_ci(env->headers, "MessageId");
    rc = set_message_id(env, json_string_value(id), json_string_length(id), err, errlen);
  }
  if (rc)
    return rc;
  json_t *mt = ctxd__json_get_ci(env->headers, "MT-MessageType");
  if (json_is_string(mt))
    rc = add_types(types, json_string_value(mt), json_string_length(mt));
  else if ((b = prop(props, AMQP_BASIC_TYPE_FLAG)))
    rc = add_types(types, b->bytes, b->len);
  if (rc)
    return fail(err, errlen, CTXD_ENOMEM, "out of memory");
  if ((rc = set_types(env, types, err, errlen)))
    return rc;
  env->message = body;
  read_meta(env, env->headers, false);
  if (!env->correlation_id && (b = prop(props, AMQP_BASIC_CORRELATION_ID_FLAG))) {
    /* Copied into env->root: props belongs to the caller and is not NUL-terminated. A
     * non-UTF-8 value yields NULL: the id stays absent. */
    json_t *c = json_stringn(b->bytes, b->len);
    if (c && json_object_set(env->root, "correlationId", c) == 0)
      env->correlation_id = json_string_value(c);
    json_decref(c);
  }
  return 0;
}

int ctxd__envelope_decode(const void *body, size_t len, const amqp_basic_properties_t *props,
                          const ctxd__decode_limits_t *limits, ctxd__envelope_t *env,
                          char *err, size_t errlen) {
  ctxd__decode_limits_t defaults = CTXD__DECODE_LIMITS_DEFAULT;
  if (err && errlen)
    err[0] = '\0';
  if (!env)
    return fail(err, errlen, CTXD_EINVAL, "no envelope to fill");
  memset(env, 0, sizeof *env);
  if (!body && len)
    return fail(err, errlen, CTXD_EINVAL, "no body");
  if (!limits)
    limits = &defaults;
  if (len > limits->max_body)
    return fail(err, errlen, CTXD_ETOOBIG, "body of %zu bytes exceeds the limit of %zu", len,
                limits->max_body);
  int shape = content_shape(props, err, errlen);
  if (shape < 0)
    return shape;
  const unsigned char *p = len ? body : (const unsigned char *)"";
  size_t bad = utf8_invalid_at(p, len);
  if (bad < len)
    return fail(err, errlen, CTXD_EDECODE, "invalid UTF-8 at byte %zu", bad);
  if (too_deep((const char *)p, len, limits->max_depth))
    return fail(err, errlen, CTXD_EDECODE, "nesting deeper than %d", limits->max_depth);

  /* Duplicate keys are tolerated (the last wins); JSON_DECODE_ANY so a scalar body gets
   * the clearer "not a JSON object" reason below. */
  json_error_t jerr;
  json_t *parsed = json_loadb((const char *)p, len, JSON_DECODE_ANY, &jerr);
  if (!parsed)
    return fail(err, errlen, CTXD_EDECODE, "malformed JSON at line %d column %d: %s",
                jerr.line, jerr.column, jerr.text);
  if (!json_is_object(parsed)) {
    json_decref(parsed);
    return fail(err, errlen, CTXD_EDECODE, "body is not a JSON object");
  }

  /* env->root is a private holder owning everything env points at: the parsed body, the
   * merged headers, the message types and copies of property strings. */
  env->root = json_object();
  env->headers = ctxd__amqp_table_to_json(
      props && (props->_flags & AMQP_BASIC_HEADERS_FLAG) ? &props->headers : NULL);
  json_t *types = json_array();
  /* Not short-circuited: each set_new releases its value when it fails. */
  int rc = json_object_set_new(env->root, "body", parsed);
  rc |= json_object_set_new(env->root, "headers", env->headers);
  rc |= json_object_set_new(env->root, "types", types);
  if (rc)
    rc = fail(err, errlen, CTXD_ENOMEM, "out of memory");
  if (rc == 0 && shape == SHAPE_SNIFF)
    shape = ctxd__json_get_ci(parsed, "message") && ctxd__json_get_ci(parsed, "messageType")
                ? SHAPE_ENVELOPE
                : SHAPE_PLAIN;
  if (rc == 0)
    rc = shape == SHAPE_ENVELOPE ? decode_envelope(env, parsed, types, err, errlen)
                                 : decode_plain(env, parsed, props, types, err, errlen);
  if (rc == 0)
    set_message_text(env, (const char *)p, len, shape == SHAPE_ENVELOPE);
  if (rc)
    ctxd__envelope_free(env);
  return rc;
}

void ctxd__envelope_free(ctxd__envelope_t *env) {
  if (!env)
    return;
  json_decref(env->root);
  free(env->message_types);
  memset(env, 0, sizeof *env);
}

/* ---------------------------------------------------------------------------------------
 * Encoding
 */

/* Optional string metadata, in the order MassTransit writes it. */
static const struct {
  const char *key;
  size_t offset;
} out_fields[] = {
    {"requestId", offsetof(ctxd__envelope_out_t, request_id)},
    {"correlationId", offsetof(ctxd__envelope_out_t, correlation_id)},
    {"conversationId", offsetof(ctxd__envelope_out_t, conversation_id)},
    {"initiatorId", offsetof(ctxd__envelope_out_t, initiator_id)},
    {"sourceAddress", offsetof(ctxd__envelope_out_t, source_address)},
    {"destinationAddress", offsetof(ctxd__envelope_out_t, destination_address)},
    {"responseAddress", offsetof(ctxd__envelope_out_t, response_address)},
};

/* The host description never changes: computed once, read by every publishing thread. */
static pthread_once_t host_once = PTHREAD_ONCE_INIT;
static char host_machine[256];
static char host_os[sizeof ((struct utsname *)0)->sysname + sizeof ((struct utsname *)0)->release];

static void host_init(void) {
  struct utsname u;
  if (gethostname(host_machine, sizeof host_machine) != 0)
    strcpy(host_machine, "unknown");
  host_machine[sizeof host_machine - 1] = '\0'; /* gethostname may not terminate */
  if (uname(&u) == 0)
    snprintf(host_os, sizeof host_os, "%s %s", u.sysname, u.release);
  else
    strcpy(host_os, "unknown");
}

/* Returns a new reference. Built per call from the cached strings so nothing allocated
 * outlives the caller (no leak reported at exit). */
static json_t *host_json(void) {
  pthread_once(&host_once, host_init);
  return json_pack("{s:s, s:s, s:I, s:s, s:s, s:s, s:s, s:s}", "machineName", host_machine,
                   "processName", "ctxd", "processId", (json_int_t)getpid(), "assembly",
                   "ctxd", "assemblyVersion", CTXD_VERSION_STRING, "frameworkVersion", "C11",
                   "massTransitVersion", "ctxd", "operatingSystemVersion", host_os);
}

/* "2026-11-24T04:30:15.123Z", the UTC form MassTransit writes and parses. */
static void now_iso8601(char out[32]) {
  struct timespec ts;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(out + n, 32 - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

char *ctxd__envelope_encode(const ctxd__envelope_out_t *out) {
  char id[37], now[32];
  if (!out || ctxd__uuid_canonical(out->message_id, id) != 0 || !out->message_type ||
      !*out->message_type || !json_is_object(out->message) ||
      (out->headers && !json_is_object(out->headers)))
    return NULL;
  json_t *root = json_object();
  if (!root)
    return NULL;
  /* json_object_set_new refuses a NULL value (out of memory, invalid UTF-8) with -1. */
  int bad = json_object_set_new(root, "messageId", json_string(id));
  for (size_t i = 0; i < sizeof out_fields / sizeof out_fields[0]; i++) {
    const char *v = *(const char *const *)((const char *)out + out_fields[i].offset);
    if (v)
      bad |= json_object_set_new(root, out_fields[i].key, json_string(v));
  }
  if (!out->sent_time)
    now_iso8601(now);
  /* Deep copies: the caller's message and headers are const and may be shared between
   * publishing threads, so they are never referenced from this tree. */
  bad |= json_object_set_new(root, "messageType",
                             json_pack("[s+]", URN_PREFIX, out->message_type));
  bad |= json_object_set_new(root, "message", json_deep_copy(out->message));
  bad |= json_object_set_new(root, "sentTime",
                             json_string(out->sent_time ? out->sent_time : now));
  bad |= json_object_set_new(root, "headers",
                             out->headers ? json_deep_copy(out->headers) : json_object());
  bad |= json_object_set_new(root, "host", host_json());
  /* json_dumps allocates with malloc unless json_set_alloc_funcs says otherwise, which
   * ctxd never calls: the caller's free() matches. */
  char *text = bad ? NULL : json_dumps(root, JSON_COMPACT);
  json_decref(root);
  return text;
}

int ctxd__envelope_fault_header(const void *key, size_t len) {
  static const char *const prefixes[] = {"MT-Reason", "MT-Fault-", "MT-Redelivery-Count", "MT-Host-"};
  for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
    size_t n = strlen(prefixes[i]);
    if (len >= n && memcmp(key, prefixes[i], n) == 0) return 1;
  }
  return 0;
}
