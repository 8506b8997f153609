#include "jscan.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

void ctxd__jscan_ws(ctxd__jscan_t *s) {
  while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r')) s->p++;
}

int ctxd__jscan_expect(ctxd__jscan_t *s, char c) {
  ctxd__jscan_ws(s);
  if (s->p >= s->end || *s->p != c) return CTXD__JSCAN_SYNTAX;
  s->p++;
  return 0;
}

static int hex_digit(unsigned char c) {
  if (c >= '0' && c <= '9') return c - '0';
  c |= 0x20; /* ASCII lower case */
  return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static int hex4(ctxd__jscan_t *s, unsigned *out) {
  if (s->end - s->p < 4) return -1;
  unsigned v = 0;
  for (int i = 0; i < 4; i++) {
    int d = hex_digit((unsigned char)*s->p++);
    if (d < 0) return -1;
    v = v * 16 + (unsigned)d;
  }
  *out = v;
  return 0;
}

/* After "\u": the code point of the escape, a surrogate pair joined; -1 when malformed,
 * a lone surrogate or U+0000 (which no C string can carry). */
static long unicode_escape(ctxd__jscan_t *s) {
  unsigned cp, lo;
  if (hex4(s, &cp) != 0 || cp == 0 || (cp >= 0xDC00 && cp <= 0xDFFF)) return -1;
  if (cp >= 0xD800 && cp <= 0xDBFF) {
    if (s->end - s->p < 2 || s->p[0] != '\\' || s->p[1] != 'u') return -1;
    s->p += 2;
    if (hex4(s, &lo) != 0 || lo < 0xDC00 || lo > 0xDFFF) return -1;
    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
  }
  return (long)cp;
}

static size_t utf8_encode(unsigned long cp, unsigned char out[4]) {
  if (cp < 0x80) {
    out[0] = (unsigned char)cp;
    return 1;
  }
  if (cp < 0x800) {
    out[0] = (unsigned char)(0xC0 | cp >> 6);
    out[1] = (unsigned char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    out[0] = (unsigned char)(0xE0 | cp >> 12);
    out[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
    out[2] = (unsigned char)(0x80 | (cp & 0x3F));
    return 3;
  }
  out[0] = (unsigned char)(0xF0 | cp >> 18);
  out[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3F));
  out[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
  out[3] = (unsigned char)(0x80 | (cp & 0x3F));
  return 4;
}

/* Reads one character of a string's contents, decoded into out[0..*n): 1, 0 at the closing
 * quote (consumed), -1 when malformed. */
static int string_char(ctxd__jscan_t *s, unsigned char out[4], size_t *n) {
  static const char escapes[] = "\"\"\\\\//b\bf\fn\nr\rt\t"; /* pairs: escape, meaning */
  if (s->p >= s->end) return -1;
  unsigned char c = (unsigned char)*s->p++;
  if (c == '"') return 0;
  if (c < 0x20) return -1;
  *n = 1;
  if (c != '\\') {
    out[0] = c;
    return 1;
  }
  if (s->p >= s->end) return -1;
  c = (unsigned char)*s->p++;
  if (c == 'u') {
    long cp = unicode_escape(s);
    if (cp < 0) return -1;
    *n = utf8_encode((unsigned long)cp, out);
    return 1;
  }
  for (size_t i = 0; escapes[i] != '\0'; i += 2) {
    if ((unsigned char)escapes[i] == c) {
      out[0] = (unsigned char)escapes[i + 1];
      return 1;
    }
  }
  return -1;
}

/* Past the characters of a string that stand for themselves. Eight bytes at a time while
 * none of them is a quote, a backslash or a control character (each test is exact about
 * whether such a byte is there): strings are most of an envelope's text. */
static void skip_plain(ctxd__jscan_t *s) {
  const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
  while (s->end - s->p >= 8) {
    uint64_t v;
    memcpy(&v, s->p, 8);
    uint64_t quote = v ^ (ones * '"'), backslash = v ^ (ones * '\\');
    uint64_t stop = ((quote - ones) & ~quote) | ((backslash - ones) & ~backslash) | ((v - ones * 0x20) & ~v);
    if (stop & highs) break;
    s->p += 8;
  }
  while (s->p < s->end && *s->p != '"' && *s->p != '\\' && (unsigned char)*s->p >= 0x20) s->p++;
}

int ctxd__jscan_string_equals(ctxd__jscan_t *s, const char *key, size_t len) {
  if (ctxd__jscan_expect(s, '"') != 0) return CTXD__JSCAN_SYNTAX;
  unsigned char buf[4];
  size_t n, at = 0;
  int equal = 1, r;
  while ((r = string_char(s, buf, &n)) == 1) {
    if (equal && (len - at < n || memcmp(key + at, buf, n) != 0)) equal = 0;
    if (equal) at += n;
  }
  return r < 0 ? CTXD__JSCAN_SYNTAX : equal && at == len;
}

int ctxd__jscan_string(ctxd__jscan_t *s, char *out, size_t *n) {
  if (ctxd__jscan_expect(s, '"') != 0) return CTXD__JSCAN_SYNTAX;
  size_t k, at = 0;
  int r;
  for (;;) {
    /* runs of plain characters in one copy, the rest one by one */
    const char *run = s->p;
    skip_plain(s);
    memcpy(out + at, run, (size_t)(s->p - run));
    at += (size_t)(s->p - run);
    if ((r = string_char(s, (unsigned char *)out + at, &k)) != 1) break;
    at += k;
  }
  out[at] = '\0';
  *n = at;
  return r < 0 ? CTXD__JSCAN_SYNTAX : 0;
}

/* The string token at s->p. */
static int skip_string(ctxd__jscan_t *s) {
  s->p++; /* the opening quote */
  for (;;) {
    skip_plain(s);
    if (s->p >= s->end || (unsigned char)*s->p < 0x20) return CTXD__JSCAN_SYNTAX;
    if (*s->p == '"') {
      s->p++;
      return 0;
    }
    unsigned char buf[4];
    size_t n;
    const char *escape = s->p;
    if (string_char(s, buf, &n) != 1) {
      s->p = escape; /* the fault is the escape, not where reading it stopped */
      return CTXD__JSCAN_SYNTAX;
    }
  }
}

static int skip_literal(ctxd__jscan_t *s, const char *word) {
  size_t n = strlen(word);
  if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0) return CTXD__JSCAN_SYNTAX;
  s->p += n;
  return 0;
}

static int skip_digits(ctxd__jscan_t *s) {
  const char *start = s->p;
  while (s->p < s->end && *s->p >= '0' && *s->p <= '9') s->p++;
  return s->p > start ? 0 : CTXD__JSCAN_SYNTAX;
}

/* -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
static int skip_number(ctxd__jscan_t *s) {
  if (s->p < s->end && *s->p == '-') s->p++;
  if (s->p < s->end && *s->p == '0')
    s->p++;
  else if (skip_digits(s) != 0)
    return CTXD__JSCAN_SYNTAX;
  if (s->p < s->end && *s->p == '.') {
    s->p++;
    if (skip_digits(s) != 0) return CTXD__JSCAN_SYNTAX;
  }
  if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
    s->p++;
    if (s->p < s->end && (*s->p == '+' || *s->p == '-')) s->p++;
    if (skip_digits(s) != 0) return CTXD__JSCAN_SYNTAX;
  }
  return 0;
}

/* A string, number or literal at s->p. */
static int skip_scalar(ctxd__jscan_t *s) {
  if (s->p >= s->end) return CTXD__JSCAN_SYNTAX;
  switch (*s->p) {
  case '"': return skip_string(s);
  case 't': return skip_literal(s, "true");
  case 'f': return skip_literal(s, "false");
  case 'n': return skip_literal(s, "null");
  default: return skip_number(s);
  }
}

/* An object member's key and colon. */
static int skip_key(ctxd__jscan_t *s) {
  ctxd__jscan_ws(s);
  if (s->p >= s->end || *s->p != '"' || skip_string(s) != 0) return CTXD__JSCAN_SYNTAX;
  return ctxd__jscan_expect(s, ':');
}

int ctxd__jscan_value(ctxd__jscan_t *s, size_t max_depth) {
  unsigned char is_obj[CTXD__JSCAN_MAX_DEPTH / 8]; /* a bit per level, set: an object */
  size_t depth = 0;
  if (max_depth > CTXD__JSCAN_MAX_DEPTH) max_depth = CTXD__JSCAN_MAX_DEPTH;
  for (;;) {
    ctxd__jscan_ws(s);
    if (s->p >= s->end) return CTXD__JSCAN_SYNTAX;
    bool done; /* a whole value was just read */
    char c = *s->p;
    if (c == '{' || c == '[') {
      if (depth == max_depth) return CTXD__JSCAN_DEEP;
      if (c == '{')
        is_obj[depth / 8] |= (unsigned char)(1u << depth % 8);
      else
        is_obj[depth / 8] &= (unsigned char)~(1u << depth % 8);
      depth++;
      s->p++;
      ctxd__jscan_ws(s);
      done = s->p < s->end && *s->p == (c == '{' ? '}' : ']');
      if (done) {
        s->p++;
        depth--;
      } else if (c == '{' && skip_key(s) != 0) {
        return CTXD__JSCAN_SYNTAX;
      }
    } else {
      if (skip_scalar(s) != 0) return CTXD__JSCAN_SYNTAX;
      done = true;
    }
    while (done) {
      if (depth == 0) return 0;
      int obj = is_obj[(depth - 1) / 8] >> (depth - 1) % 8 & 1;
      ctxd__jscan_ws(s);
      if (s->p >= s->end) return CTXD__JSCAN_SYNTAX;
      if (*s->p == ',') {
        s->p++;
        if (obj && skip_key(s) != 0) return CTXD__JSCAN_SYNTAX;
        done = false;
      } else if (*s->p == (obj ? '}' : ']')) {
        s->p++;
        depth--;
      } else {
        return CTXD__JSCAN_SYNTAX;
      }
    }
  }
}

void ctxd__jscan_position(const char *text, size_t off, int *line, int *col) {
  int l = 1, c = 1;
  for (const char *p = text; p < text + off; p++) {
    if (*p == '\n') {
      l++;
      c = 1;
    } else if (((unsigned char)*p & 0xC0) != 0x80) {
      c++; /* skip UTF-8 continuation bytes: columns count characters */
    }
  }
  *line = l;
  *col = c;
}
