/* Decoding MassTransit envelopes. See envelope.h. */
#include "envelope.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ctxd/errno.h>

#include "amqptable.h"
#include "contract_schema.h"
#include "fail.h"
#include "jscan.h"
#include "uuid.h"

#define URN_PREFIX_LEN (sizeof CTXD__URN_PREFIX - 1)

/* Longest value quoted in an error reason; longer ones are cut and end in "...". */
enum { QUOTE_MAX = 64 };

/* ---------------------------------------------------------------------------------------
 * Small helpers
 */

/* Copies a value into buf for an error reason. Anything but printable ASCII becomes '?'
 * so a hostile value cannot break the reason onto several lines or into invalid UTF-8. */
static const char *printable(char buf[QUOTE_MAX + 4], const char *s, size_t len) {
  size_t n = len > QUOTE_MAX ? QUOTE_MAX : len;
  for (size_t i = 0; i < n; i++) buf[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
  strcpy(buf + n, len > QUOTE_MAX ? "..." : "");
  return buf;
}

static bool is_space(char c) { return c == ' ' || c == '\t'; }

static void trim(const char **s, size_t *len) {
  while (*len && is_space(**s)) (*s)++, (*len)--;
  while (*len && is_space((*s)[*len - 1])) (*len)--;
}

/* Returns the offset of the first byte of the first invalid UTF-8 sequence, or len when
 * all is valid (RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF). */
static size_t utf8_invalid_at(const unsigned char *p, size_t len) {
  size_t i = 0;
  while (i < len) {
    unsigned c = p[i], lo = 0x80, hi = 0xbf;
    size_t more;
    if (c < 0x80) {
      /* envelopes are mostly ASCII: eight bytes at a time while no high bit is set */
      uint64_t w;
      for (i++; len - i >= 8 && (memcpy(&w, p + i, 8), (w & 0x8080808080808080u) == 0); i += 8)
        ;
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
    if (len - i - 1 < more || p[i + 1] < lo || p[i + 1] > hi) return i;
    for (size_t k = 2; k <= more; k++)
      if ((p[i + k] & 0xc0) != 0x80) return i;
    i += more + 1;
  }
  return len;
}

/* The first index at or after i that is outside every string: strings starting there
 * are skipped whole (escapes included); len when the text ends first. */
static size_t skip_strings(const char *p, size_t i, size_t len) {
  while (i < len && p[i] == '"') {
    for (i++; i < len && p[i] != '"'; i++)
      if (p[i] == '\\') i++;
    i++;
  }
  return i < len ? i : len;
}

/* ---- the message's own text --------------------------------------------------------
 * These scans run only on text the scanner accepted, so they need not validate. */

/* Object members in the text (each has one ':' outside strings). */
static size_t text_members(const char *p, size_t len) {
  size_t n = 0;
  for (size_t i = 0; (i = skip_strings(p, i, len)) < len; i++) n += p[i] == ':';
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
    for (size_t i = 0; i < json_array_size(v); i++) n += tree_members(json_array_get(v, i));
  }
  return n;
}

json_t *ctxd__json_get_ci(const json_t *obj, const char *key) {
  /* one rule for the host and the contracts' decoders */
  return json_is_object(obj) && key ? (json_t *)ctxd__schema_get_ci(obj, key) : NULL;
}

/* ---------------------------------------------------------------------------------------
 * Decoding
 */

enum { SHAPE_ENVELOPE, SHAPE_PLAIN, SHAPE_SNIFF };

/* Optional string metadata: its envelope key, its AMQP header in raw JSON (MassTransit's
 * name, then the name older publishers used; NULL: none), its slot. */
static const struct meta_field {
  const char *envelope_key;
  const char *header, *older_header;
  size_t offset;
} meta_fields[] = {
    {"requestId", "RequestId", NULL, offsetof(ctxd__envelope_t, request_id)},
    {"correlationId", "CorrelationId", NULL, offsetof(ctxd__envelope_t, correlation_id)},
    {"conversationId", "ConversationId", NULL, offsetof(ctxd__envelope_t, conversation_id)},
    {"initiatorId", "MT-InitiatorId", "InitiatorId", offsetof(ctxd__envelope_t, initiator_id)},
    {"sourceAddress", "MT-Source-Address", "SourceAddress", offsetof(ctxd__envelope_t, source_address)},
    {"destinationAddress", NULL, "DestinationAddress", offsetof(ctxd__envelope_t, destination_address)},
    {"responseAddress", "MT-Response-Address", "ResponseAddress",
     offsetof(ctxd__envelope_t, response_address)},
    {"faultAddress", "MT-Fault-Address", "FaultAddress", offsetof(ctxd__envelope_t, fault_address)},
    {"expirationTime", NULL, NULL, offsetof(ctxd__envelope_t, expiration_time)},
    {"sentTime", NULL, "SentTime", offsetof(ctxd__envelope_t, sent_time)},
};

/* Strings the envelope points at (decoded from the body, copied from AMQP properties),
 * carved from a few blocks freed with it instead of one allocation each. */
struct ctxd__strings_s {
  struct ctxd__strings_s *next;
  size_t used, cap;
  char data[];
};

/* n bytes that live until ctxd__envelope_free, or NULL when memory runs out. */
static char *strings_alloc(ctxd__envelope_t *env, size_t n) {
  struct ctxd__strings_s *b = env->strings;
  if (!b || b->cap - b->used < n) {
    size_t cap = n > 512 ? n : 512;
    if (!(b = malloc(sizeof *b + cap))) return NULL;
    *b = (struct ctxd__strings_s){.next = env->strings, .cap = cap};
    env->strings = b;
  }
  b->used += n;
  return b->data + b->used - n;
}

static const char *strings_copy(ctxd__envelope_t *env, const char *s, size_t len) {
  char *c = strings_alloc(env, len + 1);
  if (c) {
    memcpy(c, s, len);
    c[len] = '\0';
  }
  return c;
}

/* One member of the body's top-level object, in the order the text has them. */
typedef struct {
  const char *key; /* decoded; into the body unless `escaped` */
  size_t klen;
  bool escaped;
  const char *value; /* the value's text, [value, end) */
  const char *end;
} member_t;

typedef struct {
  member_t *at;
  size_t n, cap;
  member_t inline_[24]; /* enough for any envelope MassTransit writes */
} members_t;

/* Decodes the (valid) string token at p, which ends before `end`, into the envelope's
 * strings: freed with the envelope; NULL when memory runs out. */
static const char *decode_string(ctxd__envelope_t *env, const char *p, const char *end, size_t *n) {
  ctxd__jscan_t token = {p, end};
  ctxd__jscan_value(&token, 0); /* to its end, for the size decoding needs at most */
  char *out = strings_alloc(env, (size_t)(token.p - p));
  ctxd__jscan_t s = {p, token.p};
  size_t len;
  if (!out || ctxd__jscan_string(&s, out, &len) != 0) return NULL;
  if (n) *n = len;
  return out;
}

static int fail_syntax(const char *text, const ctxd__jscan_t *s, int rc, int max_depth, char *err,
                       size_t errlen) {
  if (rc == CTXD__JSCAN_DEEP)
    return ctxd__fail(err, errlen, CTXD_EDECODE, "nesting deeper than %d", max_depth);
  int line, col;
  ctxd__jscan_position(text, (size_t)(s->p - text), &line, &col);
  if (s->p >= s->end)
    return ctxd__fail(err, errlen, CTXD_EDECODE,
                      "malformed JSON at line %d column %d: premature end of input", line, col);
  if (*s->p == '\\' || (unsigned char)*s->p < 0x20)
    return ctxd__fail(err, errlen, CTXD_EDECODE, "malformed JSON at line %d column %d: %s", line, col,
                      *s->p == '\\' ? "invalid escape" : "unexpected control character");
  char q[QUOTE_MAX + 4];
  return ctxd__fail(err, errlen, CTXD_EDECODE, "malformed JSON at line %d column %d: unexpected '%s'", line,
                    col, printable(q, s->p, 1));
}

/* Checks the syntax of the whole body and, when it is an object, records its top-level
 * members. 0 (m->n == 0 and *object false for another valid value), CTXD_EDECODE or
 * CTXD_ENOMEM. */
static int scan_body(ctxd__envelope_t *env, const char *p, size_t len, int max_depth, members_t *m,
                     bool *object, char *err, size_t errlen) {
  ctxd__jscan_t s = {p, p + len};
  int rc = 0;
  ctxd__jscan_ws(&s);
  *object = s.p < s.end && *s.p == '{';
  if (!*object) {
    rc = ctxd__jscan_value(&s, (size_t)max_depth);
  } else if (max_depth < 1) {
    rc = CTXD__JSCAN_DEEP;
  } else {
    s.p++;
    ctxd__jscan_ws(&s);
    bool empty = s.p < s.end && *s.p == '}';
    if (empty) s.p++;
    while (!empty && rc == 0) {
      ctxd__jscan_ws(&s);
      const char *key = s.p;
      size_t klen;
      bool escaped = false;
      /* a key's syntax first, then (rarely) its decoded text */
      ctxd__jscan_t k = s;
      if (key >= s.end || *key != '"' || (rc = ctxd__jscan_value(&k, 0)) != 0) {
        s = k;
        rc = rc ? rc : CTXD__JSCAN_SYNTAX;
        break;
      }
      klen = (size_t)(k.p - key) - 2;
      escaped = memchr(key + 1, '\\', klen) != NULL;
      if (escaped && !(key = decode_string(env, key, k.p, &klen)))
        return ctxd__fail(err, errlen, CTXD_ENOMEM, "out of memory");
      if (!escaped) key++;
      s = k;
      if ((rc = ctxd__jscan_expect(&s, ':')) != 0) break;
      ctxd__jscan_ws(&s);
      const char *value = s.p;
      if ((rc = ctxd__jscan_value(&s, (size_t)max_depth - 1)) != 0) break;
      if (m->n == m->cap) {
        size_t cap = m->cap * 2;
        member_t *grown =
            m->at == m->inline_ ? malloc(cap * sizeof *grown) : realloc(m->at, cap * sizeof *grown);
        if (!grown) return ctxd__fail(err, errlen, CTXD_ENOMEM, "out of memory");
        if (m->at == m->inline_) memcpy(grown, m->inline_, sizeof m->inline_);
        m->at = grown;
        m->cap = cap;
      }
      m->at[m->n++] = (member_t){key, klen, escaped, value, s.p};
      ctxd__jscan_ws(&s);
      if (s.p < s.end && *s.p == '}') {
        s.p++;
        break;
      }
      rc = ctxd__jscan_expect(&s, ',');
    }
  }
  if (rc == 0) {
    ctxd__jscan_ws(&s);
    if (s.p != s.end) rc = CTXD__JSCAN_SYNTAX;
  }
  return rc ? fail_syntax(p, &s, rc, max_depth, err, errlen) : 0;
}

/* The member `key` as jansson's tree and ctxd__json_get_ci would find it: an exact match
 * first (its last value when the key repeats), else the first key equal ignoring ASCII
 * case (again its last value). Borrowed from m; NULL when absent. */
static const member_t *member_get(const members_t *m, const char *key) {
  size_t klen = strlen(key);
  const member_t *found = NULL;
  for (size_t i = 0; i < m->n; i++)
    if (m->at[i].klen == klen && memcmp(m->at[i].key, key, klen) == 0) found = &m->at[i];
  for (size_t i = 0; !found && i < m->n; i++) /* the length first: most keys differ in it */
    if (m->at[i].klen == klen && ctxd__schema_ascii_ieq(m->at[i].key, m->at[i].klen, key, klen))
      found = &m->at[i];
  for (const member_t *later = found ? found + 1 : NULL; later && later < m->at + m->n; later++)
    if (later->klen == found->klen && memcmp(later->key, found->key, found->klen) == 0) found = later;
  return found;
}

/* A member's value when it is a string, decoded into the envelope's strings (freed with
 * it); NULL otherwise (or out of memory). */
static const char *member_string(ctxd__envelope_t *env, const members_t *m, const char *key, size_t *n) {
  const member_t *v = member_get(m, key);
  return v && *v->value == '"' ? decode_string(env, v->value, v->end, n) : NULL;
}

/* The tree of a value the scanner checked, built without jansson's parser. Each build_*
 * returns a new reference (json_decref), s past the value, or NULL: out of memory, or
 * what jansson's parser must judge. Containers nested deeper than BUILD_DEPTH are left to
 * it too: the builder recurses. */
#define BUILD_DEPTH 32
#define SHORT_STRING 256

static json_t *build_value(ctxd__jscan_t *s, int depth);

/* The contents of the string token at s->p (checked), s past it, *n bytes: the text
 * itself when it has no escape, else decoded into buf (SHORT_STRING bytes) or, longer,
 * into *heap (new: free it; NULL otherwise). NULL when memory runs out. */
static const char *string_text(ctxd__jscan_t *s, char *buf, char **heap, size_t *n) {
  const char *start = s->p + 1;
  ctxd__jscan_t token = *s;
  ctxd__jscan_value(&token, 0);
  size_t max = (size_t)(token.p - start - 1);
  *heap = NULL;
  if (memchr(start, '\\', max) == NULL) {
    s->p = token.p;
    *n = max;
    return start;
  }
  char *out = max < SHORT_STRING ? buf : (*heap = malloc(max + 1));
  return out != NULL && ctxd__jscan_string(s, out, n) == 0 ? out : NULL;
}

static json_t *build_string(ctxd__jscan_t *s) {
  char buf[SHORT_STRING], *heap;
  size_t n;
  const char *text = string_text(s, buf, &heap, &n);
  json_t *v = text != NULL ? json_stringn_nocheck(text, n) : NULL;
  free(heap);
  return v;
}

/* A number as jansson reads it; left to jansson when out of range or too long to copy. */
static json_t *build_number(ctxd__jscan_t *s) {
  ctxd__jscan_t token = *s;
  ctxd__jscan_value(&token, 0);
  size_t len = (size_t)(token.p - s->p);
  char text[64], *end;
  if (len >= sizeof text) return NULL;
  memcpy(text, s->p, len);
  text[len] = '\0';
  s->p = token.p;
  errno = 0;
  if (strpbrk(text, ".eE") == NULL) {
    long long i = strtoll(text, &end, 10);
    return errno == 0 ? json_integer(i) : NULL;
  }
  double d = strtod(text, &end);
  return errno == 0 ? json_real(d) : NULL;
}

static json_t *build_object(ctxd__jscan_t *s, int depth) {
  json_t *o = json_object();
  s->p++;
  if (ctxd__jscan_expect(s, '}') == 0) return o;
  while (o != NULL) {
    char buf[SHORT_STRING], *heap;
    size_t klen;
    ctxd__jscan_ws(s);
    const char *key = string_text(s, buf, &heap, &klen);
    json_t *v = key != NULL && ctxd__jscan_expect(s, ':') == 0 ? build_value(s, depth) : NULL;
    /* a repeated key replaces the earlier one, as in jansson's parser */
    if (v == NULL || json_object_setn_new_nocheck(o, key, klen, v)) {
      json_decref(o);
      o = NULL;
    }
    free(heap);
    if (o != NULL && ctxd__jscan_expect(s, ',') != 0) break;
  }
  if (o != NULL) ctxd__jscan_expect(s, '}');
  return o;
}

static json_t *build_array(ctxd__jscan_t *s, int depth) {
  json_t *a = json_array();
  s->p++;
  if (ctxd__jscan_expect(s, ']') == 0) return a;
  while (a != NULL) {
    if (json_array_append_new(a, build_value(s, depth))) {
      json_decref(a);
      a = NULL;
    }
    if (a != NULL && ctxd__jscan_expect(s, ',') != 0) break;
  }
  if (a != NULL) ctxd__jscan_expect(s, ']');
  return a;
}

static json_t *build_value(ctxd__jscan_t *s, int depth) {
  ctxd__jscan_ws(s);
  switch (*s->p) {
  case '{': return depth < BUILD_DEPTH ? build_object(s, depth + 1) : NULL;
  case '[': return depth < BUILD_DEPTH ? build_array(s, depth + 1) : NULL;
  case '"': return build_string(s);
  case 't': s->p += 4; return json_true();
  case 'f': s->p += 5; return json_false();
  case 'n': s->p += 4; return json_null();
  default: return build_number(s);
  }
}

/* A member's value parsed into a new tree (json_decref) when it is an object, else NULL
 * (*rc 0); *rc is CTXD_EDECODE when jansson refuses what the scanner let through (an
 * integer beyond 64 bits, a real that overflows), CTXD_ENOMEM when memory runs out. The
 * tree is built from the text the scanner checked; what the builder leaves (those
 * numbers, deep nesting, no memory) is parsed by jansson, for its verdict and message. */
static json_t *member_object(const char *body, const member_t *v, int *rc, char *err, size_t errlen) {
  *rc = 0;
  if (!v || *v->value != '{') return NULL;
  ctxd__jscan_t s = {v->value, v->end};
  json_t *built = build_value(&s, 0);
  if (built != NULL) return built;
  json_error_t jerr;
  json_t *o = json_loadb(v->value, (size_t)(v->end - v->value), 0, &jerr);
  if (!o) {
    int line, col;
    ctxd__jscan_position(body, (size_t)(v->value - body) + (size_t)jerr.position, &line, &col);
    *rc = ctxd__fail(err, errlen,
                     json_error_code(&jerr) == json_error_out_of_memory ? CTXD_ENOMEM : CTXD_EDECODE,
                     "malformed JSON at line %d column %d: %s", line, col, jerr.text);
  }
  return o;
}

/* Whether v is an object without members: nothing to parse. */
static int empty_object(const member_t *v) {
  if (!v || *v->value != '{') return 0;
  ctxd__jscan_t s = {v->value + 1, v->end};
  ctxd__jscan_ws(&s);
  return *s.p == '}';
}

/* Returns the property selected by flag when flagged and non-empty (an empty id or type
 * carries nothing), else NULL. */
static const amqp_bytes_t *prop(const amqp_basic_properties_t *props, amqp_flags_t flag) {
  const amqp_bytes_t *b;
  if (!props || !(props->_flags & flag)) return NULL;
  switch (flag) {
  case AMQP_BASIC_CONTENT_TYPE_FLAG: b = &props->content_type; break;
  case AMQP_BASIC_MESSAGE_ID_FLAG: b = &props->message_id; break;
  case AMQP_BASIC_CORRELATION_ID_FLAG: b = &props->correlation_id; break;
  case AMQP_BASIC_TYPE_FLAG: b = &props->type; break;
  case AMQP_BASIC_REPLY_TO_FLAG: b = &props->reply_to; break;
  case AMQP_BASIC_EXPIRATION_FLAG: b = &props->expiration; break;
  default: return NULL;
  }
  return b->len ? b : NULL;
}

static int content_shape(const amqp_basic_properties_t *props, char *err, size_t errlen) {
  const amqp_bytes_t *type = prop(props, AMQP_BASIC_CONTENT_TYPE_FLAG);
  if (!type) return SHAPE_SNIFF;
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
  return ctxd__fail(err, errlen, CTXD_EDECODE, "unsupported content type '%s'", printable(q, ct, len));
}

static int set_message_id(ctxd__envelope_t *env, const char *s, size_t len, char *err, size_t errlen) {
  if (!s) return ctxd__fail(err, errlen, CTXD_EDECODE, "missing message id");
  if (ctxd__schema_uuid_parse(s, len, env->id_buf) != 0) {
    char q[QUOTE_MAX + 4];
    return ctxd__fail(err, errlen, CTXD_EDECODE, "message id '%s' is not a UUID", printable(q, s, len));
  }
  env->message_id = env->id_buf;
  return 0;
}

/* Appends the ';'-separated URNs in s to the message types (copies: s may point into AMQP
 * properties), without the "urn:message:" prefix. Empty or non-UTF-8 pieces are skipped.
 * 0 or CTXD_ENOMEM. */
static int add_types(ctxd__envelope_t *env, const char *s, size_t len) {
  while (len > 0) {
    const char *semi = memchr(s, ';', len);
    const char *t = s;
    size_t tlen = semi ? (size_t)(semi - s) : len;
    size_t step = semi ? tlen + 1 : len;
    s += step, len -= step;
    trim(&t, &tlen);
    if (tlen >= URN_PREFIX_LEN && ctxd__schema_ascii_ieq(t, URN_PREFIX_LEN, CTXD__URN_PREFIX, URN_PREFIX_LEN))
      t += URN_PREFIX_LEN, tlen -= URN_PREFIX_LEN;
    if (tlen == 0 || utf8_invalid_at((const unsigned char *)t, tlen) < tlen) continue;
    const char **grown = realloc(env->message_types, (env->nmessage_types + 1) * sizeof *grown);
    if (!grown) return CTXD_ENOMEM;
    env->message_types = grown;
    if (!(grown[env->nmessage_types] = strings_copy(env, t, tlen))) return CTXD_ENOMEM;
    env->nmessage_types++;
  }
  return 0;
}

static int need_types(const ctxd__envelope_t *env, char *err, size_t errlen) {
  return env->nmessage_types ? 0 : ctxd__fail(err, errlen, CTXD_EDECODE, "missing message type");
}

/* What kind of JSON value the (valid) value text at p is, for a reason. */
static const char *value_kind(const char *p) {
  switch (*p) {
  case '"': return "a string";
  case '{': return "an object";
  case '[': return "an array";
  case 't':
  case 'f': return "a boolean";
  case 'n': return "null";
  default: return "a number";
  }
}

/* The envelope's "messageType": an array of URN strings (other elements are ignored), as
 * MassTransit writes it (string[]) and reads it (anything else fails its deserializer).
 * Absent or null leaves the types empty, for need_types to report. */
static int read_types(ctxd__envelope_t *env, const member_t *v, char *err, size_t errlen) {
  if (!v || *v->value == 'n') return 0;
  if (*v->value != '[')
    return ctxd__fail(err, errlen, CTXD_EDECODE,
                      "messageType: expected an array of \"urn:message:...\" strings, got %s",
                      value_kind(v->value));
  ctxd__jscan_t s = {v->value + 1, v->end};
  for (;;) {
    ctxd__jscan_ws(&s);
    if (*s.p == ']') return 0;
    if (*s.p == '"') {
      size_t n;
      const char *t = decode_string(env, s.p, s.end, &n);
      if (!t || add_types(env, t, n)) return ctxd__fail(err, errlen, CTXD_ENOMEM, "out of memory");
    }
    ctxd__jscan_value(&s, CTXD__JSCAN_MAX_DEPTH); /* valid: the body was checked whole */
    if (ctxd__jscan_expect(&s, ',') != 0) return 0;
  }
}

static int decode_envelope(ctxd__envelope_t *env, const char *body, const members_t *m, char *err,
                           size_t errlen) {
  size_t n = 0;
  const char *id = member_string(env, m, "messageId", &n);
  int rc = set_message_id(env, id, n, err, errlen);
  if (rc) return rc;
  if ((rc = read_types(env, member_get(m, "messageType"), err, errlen)) ||
      (rc = need_types(env, err, errlen)))
    return rc;
  env->message = member_object(body, member_get(m, "message"), &rc, err, errlen);
  if (rc) return rc;
  if (!env->message) return ctxd__fail(err, errlen, CTXD_EDECODE, "message is not a JSON object");
  /* empty headers ({}, as MassTransit writes them) add nothing: not parsed */
  const member_t *hv = member_get(m, "headers");
  json_t *headers = empty_object(hv) ? NULL : member_object(body, hv, &rc, err, errlen);
  if (rc == 0 && headers && json_object_update(env->headers, headers))
    rc = ctxd__fail(err, errlen, CTXD_ENOMEM, "out of memory");
  json_decref(headers);
  if (rc) return rc;
  for (size_t i = 0; i < sizeof meta_fields / sizeof meta_fields[0]; i++) {
    const member_t *v = member_get(m, meta_fields[i].envelope_key);
    if (v && *v->value == '"' &&
        !(*(const char **)((char *)env + meta_fields[i].offset) = decode_string(env, v->value, v->end, NULL)))
      return ctxd__fail(err, errlen, CTXD_ENOMEM, "out of memory");
  }
  return 0;
}

static int decode_plain(ctxd__envelope_t *env, const char *body, size_t len,
                        const amqp_basic_properties_t *props, char *err, size_t errlen) {
  int rc;
  const amqp_bytes_t *b = prop(props, AMQP_BASIC_MESSAGE_ID_FLAG);
  if (b) {
    rc = set_message_id(env, b->bytes, b->len, err, errlen);
  } else {
    json_t *id = ctxd__json_get_ci(env->headers, "MessageId");
    rc = set_message_id(env, json_string_value(id), json_string_length(id), err, errlen);
  }
  if (rc) return rc;
  json_t *mt = ctxd__json_get_ci(env->headers, "MT-MessageType");
  if (json_is_string(mt))
    rc = add_types(env, json_string_value(mt), json_string_length(mt));
  else if ((b = prop(props, AMQP_BASIC_TYPE_FLAG)))
    rc = add_types(env, b->bytes, b->len);
  if (rc) return ctxd__fail(err, errlen, CTXD_ENOMEM, "out of memory");
  if ((rc = need_types(env, err, errlen))) return rc;
  member_t whole = {.value = body, .end = body + len};
  while (*whole.value != '{') /* the body is an object: only blanks come first */
    whole.value++;
  if (!(env->message = member_object(body, &whole, &rc, err, errlen))) return rc;
  for (size_t i = 0; i < sizeof meta_fields / sizeof meta_fields[0]; i++) {
    json_t *v = ctxd__json_get_ci(env->headers, meta_fields[i].header);
    if (!json_is_string(v)) v = ctxd__json_get_ci(env->headers, meta_fields[i].older_header);
    if (json_is_string(v)) *(const char **)((char *)env + meta_fields[i].offset) = json_string_value(v);
  }
  if (!env->correlation_id && (b = prop(props, AMQP_BASIC_CORRELATION_ID_FLAG)) &&
      utf8_invalid_at(b->bytes, b->len) == b->len &&
      !(env->correlation_id = strings_copy(env, b->bytes, b->len)))
    return ctxd__fail(err, errlen, CTXD_ENOMEM, "out of memory");
  return 0;
}

/* What the transport says beside the body: the reply_to property (Direct Reply-To), the
 * expiration property, and `activity`, the transport headers' MT-Activity-Id (NULL: none),
 * which MassTransit reads before the envelope's copy. 0 or CTXD_ENOMEM. */
static int read_transport(ctxd__envelope_t *env, const amqp_basic_properties_t *props, json_t *activity,
                          char *err, size_t errlen) {
  const amqp_bytes_t *b = prop(props, AMQP_BASIC_REPLY_TO_FLAG);
  if (b && utf8_invalid_at(b->bytes, b->len) == b->len &&
      !(env->reply_to = strings_copy(env, b->bytes, b->len)))
    return ctxd__fail(err, errlen, CTXD_ENOMEM, "out of memory");
  env->expiration_ms = -1;
  if ((b = prop(props, AMQP_BASIC_EXPIRATION_FLAG)) && b->len < 19) {
    int64_t ms = 0;
    size_t i = 0;
    for (; i < b->len && ((const char *)b->bytes)[i] >= '0' && ((const char *)b->bytes)[i] <= '9'; i++)
      ms = ms * 10 + (((const char *)b->bytes)[i] - '0');
    if (i == b->len) env->expiration_ms = ms;
  }
  return activity && json_object_set(env->headers, CTXD__ACTIVITY_HEADER, activity)
             ? ctxd__fail(err, errlen, CTXD_ENOMEM, "out of memory")
             : 0;
}

/* The message's own text, when it says exactly what the tree holds: for an envelope, the
 * one member naming the message, with no escaped key anywhere (the text could then name
 * another member than the tree); no key repeated inside it. */
static void set_message_text(ctxd__envelope_t *env, const char *p, size_t len, const members_t *m) {
  const member_t *message = NULL;
  for (size_t i = 0; i < m->n; i++) {
    if (m->at[i].escaped) return;
    if (ctxd__schema_ascii_ieq(m->at[i].key, m->at[i].klen, "message", 7)) {
      if (message) return;
      message = &m->at[i];
    }
  }
  if (message) {
    p = message->value;
    len = (size_t)(message->end - message->value);
  }
  if (text_members(p, len) != tree_members(env->message)) return;
  /* a copy among the envelope's strings, NUL-terminated: msg_body hands it out as it is,
   * without an allocation of its own per message (out of memory: no text, msg_body
   * serialises the tree instead) */
  env->message_text = strings_copy(env, p, len);
  env->message_len = env->message_text != NULL ? len : 0;
}

int ctxd__envelope_decode(const void *body, size_t len, const amqp_basic_properties_t *props,
                          const ctxd__decode_limits_t *limits, ctxd__envelope_t *env, char *err,
                          size_t errlen) {
  ctxd__decode_limits_t defaults = CTXD__DECODE_LIMITS_DEFAULT;
  if (err && errlen) err[0] = '\0';
  if (!env) return ctxd__fail(err, errlen, CTXD_EINVAL, "no envelope to fill");
  memset(env, 0, sizeof *env);
  if (!body && len) return ctxd__fail(err, errlen, CTXD_EINVAL, "no body");
  if (!limits) limits = &defaults;
  if (len > limits->max_body)
    return ctxd__fail(err, errlen, CTXD_ETOOBIG, "body of %zu bytes exceeds the limit of %zu", len,
                      limits->max_body);
  int shape = content_shape(props, err, errlen);
  if (shape < 0) return shape;
  const char *p = len ? body : "";
  size_t bad = utf8_invalid_at((const unsigned char *)p, len);
  if (bad < len) return ctxd__fail(err, errlen, CTXD_EDECODE, "invalid UTF-8 at byte %zu", bad);

  /* The body is read in place: only the message (and the envelope's headers, when it has
   * any) become jansson trees, the rest is a few strings. */
  members_t m = {.cap = sizeof m.inline_ / sizeof m.inline_[0]};
  m.at = m.inline_;
  bool object;
  int rc = scan_body(env, p, len, limits->max_depth, &m, &object, err, errlen);
  if (rc == 0 && !object) rc = ctxd__fail(err, errlen, CTXD_EDECODE, "body is not a JSON object");
  if (rc == 0 && !(env->headers = ctxd__amqp_table_to_json(
                       props && (props->_flags & AMQP_BASIC_HEADERS_FLAG) ? &props->headers : NULL)))
    rc = ctxd__fail(err, errlen, CTXD_ENOMEM, "out of memory");
  /* the transport's own, before the envelope's headers are merged over it */
  json_t *activity = rc == 0 ? json_incref(ctxd__json_get_ci(env->headers, CTXD__ACTIVITY_HEADER)) : NULL;
  if (!json_is_string(activity)) {
    json_decref(activity);
    activity = NULL;
  }
  if (rc == 0 && shape == SHAPE_SNIFF)
    shape = member_get(&m, "message") && member_get(&m, "messageType") ? SHAPE_ENVELOPE : SHAPE_PLAIN;
  if (rc == 0)
    rc = shape == SHAPE_ENVELOPE ? decode_envelope(env, p, &m, err, errlen)
                                 : decode_plain(env, p, len, props, err, errlen);
  if (rc == 0) rc = read_transport(env, props, activity, err, errlen);
  json_decref(activity);
  if (rc == 0) {
    members_t none = {.n = 0};
    set_message_text(env, p, len, shape == SHAPE_ENVELOPE ? &m : &none);
  }
  if (m.at != m.inline_) free(m.at);
  if (rc) ctxd__envelope_free(env);
  return rc;
}

void ctxd__envelope_free(ctxd__envelope_t *env) {
  if (!env) return;
  json_decref(env->message);
  json_decref(env->headers);
  free(env->message_types);
  while (env->strings) {
    struct ctxd__strings_s *next = env->strings->next;
    free(env->strings);
    env->strings = next;
  }
  memset(env, 0, sizeof *env);
}

int ctxd__envelope_fault_header(const void *key, size_t len) {
  static const char *const prefixes[] = {"MT-Reason", "MT-Fault-", "MT-Redelivery-Count", "MT-Host-",
                                         "ctxd-Fault-"};
  for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
    size_t n = strlen(prefixes[i]);
    if (len >= n && memcmp(key, prefixes[i], n) == 0) return 1;
  }
  return 0;
}
