/* Reading JSON text in place: a cursor that checks syntax (RFC 8259) while it skips
 * values, compares and decodes string tokens, and walks an object's members, without
 * building a tree or allocating. The envelope decoder reads the few fields it needs this
 * way, and the configuration loader locates a key path for its error messages.
 *
 * Every read checks p < end, whatever the text holds; nesting is tracked with a bit per
 * level, never by recursion. Strings are as strict as jansson's: control characters,
 * unknown escapes, lone surrogates and \u0000 are errors. UTF-8 is not checked here: the
 * callers check the whole text once before scanning it. */
#ifndef CTXD_RUNTIME_JSCAN_H
#define CTXD_RUNTIME_JSCAN_H

#include <stddef.h>

/* Nesting accepted at most (jansson's own parser limit). */
#define CTXD__JSCAN_MAX_DEPTH 2048

typedef struct {
  const char *p;   /* next byte to read */
  const char *end; /* one past the text */
} ctxd__jscan_t;

/* What a failing call returns; s->p is then where the text went wrong. */
enum { CTXD__JSCAN_SYNTAX = -1, CTXD__JSCAN_DEEP = -2 };

/* Skips blanks. */
void ctxd__jscan_ws(ctxd__jscan_t *s);

/* Consumes `c` after blanks: 0, or CTXD__JSCAN_SYNTAX when it is not next. */
int ctxd__jscan_expect(ctxd__jscan_t *s, char c);

/* Skips one value after blanks, checking its syntax: 0, CTXD__JSCAN_SYNTAX, or
 * CTXD__JSCAN_DEEP when containers nest deeper than max_depth (at most
 * CTXD__JSCAN_MAX_DEPTH). */
int ctxd__jscan_value(ctxd__jscan_t *s, size_t max_depth);

/* Consumes a string token after blanks and compares its decoded contents with
 * key[0..len): 1 equal, 0 different, CTXD__JSCAN_SYNTAX when malformed. */
int ctxd__jscan_string_equals(ctxd__jscan_t *s, const char *key, size_t len);

/* Consumes a string token after blanks and writes its decoded contents, NUL-terminated,
 * to out, which must hold as many bytes as the token has (quotes included: decoding never
 * lengthens it). *n is the decoded length. 0 or CTXD__JSCAN_SYNTAX. */
int ctxd__jscan_string(ctxd__jscan_t *s, char *out, size_t *n);

/* The 1-based line and column (in characters, as jansson counts them) of text + off. */
void ctxd__jscan_position(const char *text, size_t off, int *line, int *col);

#endif
