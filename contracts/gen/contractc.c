/* contractc: the contract generator, run by the build.
 *
 *   contractc --root DIR --intro FILE --out DIR DEFINITION.json...
 *
 * Reads every definition (contracts/<Namespace>/<Type>.v<N>.json), checks it with the same
 * parser the host uses (contracts/lib/contract_schema.c) plus what only the whole set can
 * tell (file layout, upcast chains, C name clashes), and writes into --out:
 *   ctxd_contracts.h, ctxd_contracts.c   typed structs, decode/encode/free, sample messages
 *   ctxd_contract_registry.c             every definition as compact JSON text
 *   contracts.md                         the catalog: --intro, then every message
 * Any error stops it with "contractc: <file>: <key path>: <reason>" and exit status 1, so
 * the build fails. Output is deterministic (sorted, no timestamps): docs/contracts.md is a
 * committed copy that a test compares.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "contract_schema.h"

typedef struct {
  char *s;
  size_t len, cap;
} buf_t;

typedef struct {
  const char *file;
  char *rel; /* path under the root, e.g. "Ctxd.Inventory.Contracts/AddMeasurement.v1.json" */
  json_t *json;
  ctxd__schema_def_t def;
  char *cname; /* "ctxd_c_inventory_v1_add_measurement" */
  json_t *sample, *sample_min;
} contract_t;

typedef struct {
  contract_t *v;
  size_t n;
  char **names; /* every C identifier emitted, to catch clashes */
  size_t nnames, capnames;
} gen_t;

/* Exits at once: a failed run leaves its memory to the OS, without a leak report that
 * would bury the reason (LeakSanitizer checks at exit(), not at _exit()). */
__attribute__((noreturn, format(printf, 1, 2))) static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("contractc: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  fflush(stderr);
  _exit(1);
}

static void *xalloc(void *p) {
  if (!p) die("out of memory");
  return p;
}

static char *xstrdup(const char *s) { return xalloc(strdup(s)); }

__attribute__((format(printf, 2, 3))) static void bprintf(buf_t *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0) die("cannot format output");
  if (b->len + (size_t)n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + (size_t)n + 1) cap *= 2;
    b->s = xalloc(realloc(b->s, cap));
    b->cap = cap;
  }
  va_start(ap, fmt);
  vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
}

static void bputs(buf_t *b, const char *s) { bprintf(b, "%s", s); }

/* ---------------------------------------------------------------------------------------
 * C names
 */

/* PascalCase -> snake_case: CountryId -> country_id, SKUCode -> sku_code. New, free(). */
static char *snake(const char *s) {
  size_t n = strlen(s);
  char *out = xalloc(malloc(2 * n + 1)), *o = out;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    bool upper = c >= 'A' && c <= 'Z';
    if (upper && i > 0) {
      char prev = s[i - 1], next = s[i + 1];
      bool prev_upper = prev >= 'A' && prev <= 'Z';
      bool next_lower = next >= 'a' && next <= 'z';
      if (!prev_upper || next_lower) *o++ = '_';
    }
    *o++ = upper ? (char)(c - 'A' + 'a') : c;
  }
  *o = '\0';
  return out;
}

static char *upper(const char *s) {
  char *out = xstrdup(s);
  for (char *p = out; *p; p++)
    if (*p >= 'a' && *p <= 'z') *p = (char)(*p - 'a' + 'A');
  return out;
}

__attribute__((format(printf, 1, 2))) static char *fmt(const char *f, ...) {
  char *out;
  va_list ap;
  va_start(ap, f);
  int n = vasprintf(&out, f, ap);
  va_end(ap);
  if (n < 0) die("out of memory");
  return out;
}

/* A struct member for a field: snake_case, with '_' after a C keyword. New, free(). */
static char *member_name(const char *field) {
  static const char *const keywords[] = {
      "auto",     "break",  "case",   "char",     "const",    "continue", "default",  "do",
      "double",   "else",   "enum",   "extern",   "float",    "for",      "goto",     "if",
      "inline",   "int",    "long",   "register", "restrict", "return",   "short",    "signed",
      "sizeof",   "static", "struct", "switch",   "typedef",  "union",    "unsigned", "void",
      "volatile", "while",  "bool",   "true",     "false",    NULL};
  char *s = snake(field);
  for (size_t i = 0; keywords[i]; i++)
    if (strcmp(s, keywords[i]) == 0) {
      char *k = fmt("%s_", s);
      free(s);
      return k;
    }
  return s;
}

/* The context part of C names: the namespace without its first segment (the company) and
 * without "Contracts", in snake_case: Ctxd.Inventory.Contracts -> inventory,
 * Dodo.DataCatalog.Contracts.Products -> data_catalog_products. New, free(). */
static char *context_name(const char *ns) {
  buf_t b = {0};
  const char *s = strchr(ns, '.') + 1; /* the parser guarantees two segments at least */
  while (*s) {
    size_t n = strcspn(s, ".");
    char seg[80];
    snprintf(seg, sizeof seg, "%.*s", (int)n, s);
    if (strcmp(seg, "Contracts") != 0) {
      char *sn = snake(seg);
      bprintf(&b, "%s%s", b.len ? "_" : "", sn);
      free(sn);
    }
    s += n + (s[n] == '.');
  }
  if (!b.len) die("%s: namespace leaves no context name for C identifiers", ns);
  return b.s;
}

/* Records an emitted identifier (taking name, a new string); two definitions mapping to
 * one C name stop the build. */
static void claim(gen_t *g, const char *owner, char *name) {
  for (size_t i = 0; i < g->nnames; i++)
    if (strcmp(g->names[i], name) == 0)
      die("%s: C name %s is generated twice; rename a field or type", owner, name);
  if (g->nnames == g->capnames) {
    g->capnames = g->capnames ? 2 * g->capnames : 256;
    g->names = xalloc(realloc(g->names, g->capnames * sizeof *g->names));
  }
  g->names[g->nnames++] = name;
}

/* ---------------------------------------------------------------------------------------
 * Loading
 */

static int by_message_type(const void *a, const void *b) {
  return strcmp(((const contract_t *)a)->def.message_type, ((const contract_t *)b)->def.message_type);
}

static const contract_t *find_contract(const gen_t *g, const char *ns, const char *type, int version) {
  for (size_t i = 0; i < g->n; i++) {
    const ctxd__schema_def_t *d = &g->v[i].def;
    if (d->version == version && strcmp(d->ns, ns) == 0 && strcmp(d->type_name, type) == 0) return &g->v[i];
  }
  return NULL;
}

static void load(gen_t *g, const char *root, char **files, size_t n) {
  g->v = xalloc(calloc(n ? n : 1, sizeof *g->v));
  g->n = n;
  size_t rootlen = strlen(root);
  for (size_t i = 0; i < n; i++) {
    contract_t *c = &g->v[i];
    json_error_t je;
    char err[512];
    c->file = files[i];
    c->json = json_load_file(files[i], JSON_REJECT_DUPLICATES, &je);
    if (!c->json) die("%s:%d:%d: %s", files[i], je.line, je.column, je.text);
    if (ctxd__schema_def_parse(c->json, &c->def, err, sizeof err)) die("%s: %s", files[i], err);
    char *want = fmt("%s/%s.v%d.json", c->def.ns, c->def.type_name, c->def.version);
    if (strncmp(files[i], root, rootlen) || files[i][rootlen] != '/' || strcmp(files[i] + rootlen + 1, want))
      die("%s: must be at %s/%s (namespace, type and version decide the path)", files[i], root, want);
    c->rel = want;
  }
  qsort(g->v, g->n, sizeof *g->v, by_message_type);
  for (size_t i = 0; i < g->n; i++) {
    contract_t *c = &g->v[i];
    char err[512];
    if (i && strcmp(g->v[i - 1].def.message_type, c->def.message_type) == 0)
      die("%s: %s is also defined in %s", c->file, c->def.message_type, g->v[i - 1].file);
    for (size_t b = 0; b < json_array_size(c->def.implements); b++) {
      const char *type = json_string_value(json_array_get(c->def.implements, b));
      for (size_t j = 0; j < g->n; j++)
        if (strcmp(g->v[j].def.message_type, type) == 0 &&
            ctxd__schema_check_implements(&g->v[j].def, &c->def, err, sizeof err))
          die("%s: %s", c->file, err);
    }
    if (!c->def.upcast) continue;
    const contract_t *prev = find_contract(g, c->def.ns, c->def.type_name, c->def.version - 1);
    if (!prev)
      die("%s: upcast_from_previous: there is no v%d of %s.%s", c->file, c->def.version - 1, c->def.ns,
          c->def.type_name);
    if (ctxd__schema_check_upcast(&prev->def, &c->def, err, sizeof err)) die("%s: %s", c->file, err);
  }
}

/* ---------------------------------------------------------------------------------------
 * Samples: one message with every field, one with the required ones only. They document
 * each contract and drive the round-trip tests.
 */

static json_t *sample_type(const ctxd__schema_type_t *t, const char *name, bool full, unsigned *seq);

static json_t *sample_object(const ctxd__schema_type_t *t, bool full, unsigned *seq) {
  json_t *obj = xalloc(json_object());
  for (size_t i = 0; i < t->nfields; i++) {
    const ctxd__schema_field_t *f = &t->fields[i];
    json_t *v;
    if (!full && !f->required) continue;
    if (!full && f->nullable)
      v = json_null();
    else if (f->example)
      v = json_deep_copy(f->example);
    else
      v = sample_type(&f->type, f->name, full, seq);
    if (json_object_set_new(obj, f->name, xalloc(v))) die("out of memory");
  }
  return obj;
}

static json_t *sample_type(const ctxd__schema_type_t *t, const char *name, bool full, unsigned *seq) {
  char text[64];
  switch (t->kind) {
  case CTXD__SCHEMA_STRING: {
    size_t n = strlen(name);
    return json_stringn(name, t->max_length && t->max_length < n ? t->max_length : n);
  }
  case CTXD__SCHEMA_INT: {
    int64_t v = 1;
    if (t->has_min && v < t->min) v = t->min;
    if (t->has_max && v > t->max) v = t->max;
    return json_integer((json_int_t)v);
  }
  case CTXD__SCHEMA_DECIMAL: return json_string("12.5");
  case CTXD__SCHEMA_BOOL: return json_boolean(full);
  case CTXD__SCHEMA_UUID:
    snprintf(text, sizeof text, "0b000000-0000-4000-8000-%012x", ++*seq);
    return json_string(text);
  case CTXD__SCHEMA_DATETIME: return json_string("2024-08-10T12:34:56.789Z");
  case CTXD__SCHEMA_ENUM: return json_integer(t->values[0].value);
  case CTXD__SCHEMA_OBJECT: return sample_object(t, full, seq);
  case CTXD__SCHEMA_ARRAY: {
    json_t *a = xalloc(json_array());
    if (full && json_array_append_new(a, xalloc(sample_type(t->items, name, full, seq))))
      die("out of memory");
    return a;
  }
  }
  return NULL;
}

static void make_samples(contract_t *c) {
  unsigned seq = 0;
  char err[512];
  c->sample = sample_object(&c->def.body, true, &seq);
  c->sample_min = sample_object(&c->def.body, false, &seq);
  if (ctxd__schema_validate(&c->def.body, c->sample, "sample", err, sizeof err) ||
      ctxd__schema_validate(&c->def.body, c->sample_min, "sample", err, sizeof err))
    die("%s: %s (give the field an \"example\")", c->file, err);
}

/* ---------------------------------------------------------------------------------------
 * Text helpers
 */

/* A C string literal, split over lines; escapes everything outside printable ASCII, and
 * '?' (trigraphs exist in ISO C11). */
static void c_literal(buf_t *b, const char *s, const char *indent) {
  size_t col = 0;
  bputs(b, "\"");
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (col >= 88) {
      bprintf(b, "\"\n%s\"", indent);
      col = 0;
    }
    if (*p == '"' || *p == '\\' || *p == '?')
      bprintf(b, "\\%c", *p), col += 2;
    else if (*p >= 0x20 && *p < 0x7f)
      bprintf(b, "%c", *p), col++;
    else
      bprintf(b, "\\%03o", *p), col += 4;
  }
  bputs(b, "\"");
}

/* Text for a C comment: one line, no comment terminator. */
static void comment_text(buf_t *b, const char *s) {
  for (; *s; s++) {
    if (*s == '\n' || *s == '\r' || *s == '\t')
      bputs(b, " ");
    else if (s[0] == '*' && s[1] == '/')
      bputs(b, "* ");
    else
      bprintf(b, "%c", *s);
  }
}

/* Text for a Markdown table cell: one line, pipes escaped. */
static void cell_text(buf_t *b, const char *s) {
  for (; *s; s++) {
    if (*s == '\n' || *s == '\r' || *s == '\t')
      bputs(b, " ");
    else if (*s == '|')
      bputs(b, "\\|");
    else
      bprintf(b, "%c", *s);
  }
}

static const char *kind_summary(const char *kind) {
  if (strcmp(kind, "event") == 0)
    return "event: published to its exchange, every subscribed endpoint gets a copy";
  if (strcmp(kind, "command") == 0)
    return "command: sent to the consuming context's endpoint (MassTransit Send)";
  return "reply: sent to the request's responseAddress (MassTransit request/response)";
}

/* ---------------------------------------------------------------------------------------
 * ctxd_contracts.h
 */

static const char *elem_ctype(const ctxd__schema_type_t *t, const char *child) {
  switch (t->kind) {
  case CTXD__SCHEMA_STRING:
  case CTXD__SCHEMA_DECIMAL:
  case CTXD__SCHEMA_DATETIME: return "char *";
  case CTXD__SCHEMA_UUID: return "ctxd_c_uuid_t ";
  case CTXD__SCHEMA_INT: return "int64_t ";
  case CTXD__SCHEMA_BOOL: return "bool ";
  case CTXD__SCHEMA_ENUM: return "int32_t ";
  case CTXD__SCHEMA_OBJECT: return child;
  case CTXD__SCHEMA_ARRAY: break;
  }
  return "?";
}

/* The struct of a nested object or of array items: <parent>_<member>[_item]. */
static char *child_name(const char *sname, const char *member, const ctxd__schema_type_t *t) {
  if (t->kind == CTXD__SCHEMA_OBJECT) return fmt("%s_%s", sname, member);
  if (t->kind == CTXD__SCHEMA_ARRAY && t->items->kind == CTXD__SCHEMA_OBJECT)
    return fmt("%s_%s_item", sname, member);
  return NULL;
}

static const ctxd__schema_type_t *enum_of(const ctxd__schema_type_t *t) {
  if (t->kind == CTXD__SCHEMA_ENUM) return t;
  if (t->kind == CTXD__SCHEMA_ARRAY && t->items->kind == CTXD__SCHEMA_ENUM) return t->items;
  return NULL;
}

static void type_summary(buf_t *b, const ctxd__schema_type_t *t);

static void emit_struct(gen_t *g, buf_t *h, const ctxd__schema_type_t *obj, const char *sname,
                        const char *owner, const char *description) {
  /* Nested structs first: C needs them complete before use. */
  for (size_t i = 0; i < obj->nfields; i++) {
    const ctxd__schema_field_t *f = &obj->fields[i];
    char *m = member_name(f->name), *child = child_name(sname, m, &f->type);
    if (child)
      emit_struct(g, h, f->type.kind == CTXD__SCHEMA_OBJECT ? &f->type : f->type.items, child, owner,
                  f->description);
    free(child);
    free(m);
  }
  for (size_t i = 0; i < obj->nfields; i++) {
    const ctxd__schema_field_t *f = &obj->fields[i];
    const ctxd__schema_type_t *e = enum_of(&f->type);
    if (!e) continue;
    char *m = member_name(f->name), *prefix = fmt("%s_%s", sname, m), *up = upper(prefix);
    bprintf(h, "/* %s.%s */\nenum {\n", sname, f->name);
    for (size_t k = 0; k < e->nvalues; k++) {
      char *vs = snake(e->values[k].name), *vu = upper(vs), *id = fmt("%s_%s", up, vu);
      bprintf(h, "  %s = %d,", id, (int)e->values[k].value);
      claim(g, owner, id);
      if (e->values[k].description) {
        bputs(h, " /* ");
        comment_text(h, e->values[k].description);
        bputs(h, " */");
      }
      bputs(h, "\n");
      free(vu);
      free(vs);
    }
    bputs(h, "};\n");
    /* the names as defined, so a plugin writing a value as text keeps no copy of them */
    char *fn = fmt("%s_name", prefix);
    bprintf(h, "/* The name of a %s.%s value as defined, or NULL for another value. */\n", sname, f->name);
    bprintf(h, "static inline const char *%s(int32_t value) {\n  switch (value) {\n", fn);
    for (size_t k = 0; k < e->nvalues; k++)
      bprintf(h, "  case %d: return \"%s\";\n", (int)e->values[k].value, e->values[k].name);
    bputs(h, "  default: return NULL;\n  }\n}\n\n");
    claim(g, owner, fn);
    free(up);
    free(prefix);
    free(m);
  }
  char *tname = fmt("%s_t", sname);
  claim(g, owner, xstrdup(tname));
  bputs(h, "/* ");
  comment_text(h, description);
  bputs(h, " */\ntypedef struct {\n");
  for (size_t i = 0; i < obj->nfields; i++) {
    const ctxd__schema_field_t *f = &obj->fields[i];
    char *m = member_name(f->name), *child = child_name(sname, m, &f->type);
    char *child_t = child ? fmt("%s_t ", child) : NULL;
    bprintf(h, "  /* %s: ", f->name);
    buf_t sum = {0};
    type_summary(&sum, &f->type);
    bputs(h, sum.s);
    free(sum.s);
    bprintf(h, "%s%s. ", f->required ? "" : ", optional", f->nullable ? ", nullable" : "");
    comment_text(h, f->description);
    bputs(h, " */\n");
    if (ctxd__schema_field_has_flag(f)) {
      char *has = fmt("has_%s", m);
      claim(g, owner, fmt("%s.%s", tname, has));
      bprintf(h, "  bool %s;\n", has);
      free(has);
    }
    claim(g, owner, fmt("%s.%s", tname, m));
    if (f->type.kind == CTXD__SCHEMA_ARRAY) {
      claim(g, owner, fmt("%s.%s_count", tname, m));
      bprintf(h, "  %s*%s;\n  size_t %s_count;\n", elem_ctype(f->type.items, child_t), m, m);
    } else {
      bprintf(h, "  %s%s;\n", elem_ctype(&f->type, child_t), m);
    }
    free(child_t);
    free(child);
    free(m);
  }
  bprintf(h, "} %s;\n\n", tname);
  free(tname);
}

static const char header_intro[] =
    "/* Typed access to every ctxd contract. GENERATED by contractc from contracts/: do not\n"
    " * edit. The catalog (fields, versions, producers, consumers) is docs/contracts.md.\n"
    " *\n"
    " * For each contract Ns.vN:Type, with <c> = ctxd_c_<context>_v<N>_<type> (snake_case;\n"
    " * the context is the namespace without its first segment and without \"Contracts\"):\n"
    " *   <C>_TYPE            the message type \"Ns.vN:Type\" (to register a consumer, to publish)\n"
    " *   <c>_t               the message as a struct; members are the properties in snake_case\n"
    " *   <c>_decode(json, len, &m, err, errlen)\n"
    " *                       JSON text -> struct. 0, CTXD_EVALIDATION (the reason in err:\n"
    " *                       \"message.<path>: <reason>\"), CTXD_ENOMEM or CTXD_EINVAL. m is\n"
    " *                       zeroed first; <c>_free(&m) is safe whatever the result.\n"
    " *                       Property names match ignoring case; unknown properties are\n"
    " *                       ignored.\n"
    " *   <c>_encode(&m)      struct -> compact JSON with the names as defined (PascalCase).\n"
    " *                       New string, free with free(); NULL when m breaks the contract\n"
    " *                       (a required string NULL, a value out of range...) or memory\n"
    " *                       runs out.\n"
    " *   <c>_free(&m)        frees what decode allocated (strings, arrays); zeroes m.\n"
    " *   <c>_<member>_name(v) an enum member's value name as defined (static), NULL for a\n"
    " *                       value the contract does not list.\n"
    " *\n"
    " * C types: string, decimal (plain decimal text) and datetime (ISO 8601 text) are char *,\n"
    " * NULL when absent or null; uuid is ctxd_c_uuid_t (canonical lowercase, \"\" when absent\n"
    " * or null); int is int64_t; enum is int32_t (constants below); bool is bool; an object\n"
    " * is a nested struct; an array is a pointer plus <member>_count. An optional or\n"
    " * nullable int, bool, enum, object or array also has `bool has_<member>`, false when\n"
    " * absent or null. Decoded strings and arrays belong to the struct until <c>_free. */\n";

static void emit_header(gen_t *g, buf_t *h) {
  bputs(h, header_intro);
  bputs(h, "#ifndef CTXD_CONTRACTS_H\n#define CTXD_CONTRACTS_H\n\n"
           "#include <stdbool.h>\n#include <stddef.h>\n#include <stdint.h>\n\n"
           "#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n"
           "typedef char ctxd_c_uuid_t[37];\n\n");
  for (size_t i = 0; i < g->n; i++) {
    contract_t *c = &g->v[i];
    char *up = upper(c->cname), *macro = fmt("%s_TYPE", up);
    claim(g, c->file, xstrdup(macro));
    bprintf(h, "/* ---- %s (%s, %s) ---- */\n\n#define %s \"%s\"\n\n", c->def.message_type, c->def.kind,
            c->def.status, macro, c->def.message_type);
    emit_struct(g, h, &c->def.body, c->cname, c->file, c->def.description);
    const char *fn[] = {"decode", "encode", "free"};
    for (size_t k = 0; k < 3; k++) claim(g, c->file, fmt("%s_%s", c->cname, fn[k]));
    bprintf(h,
            "int %1$s_decode(const char *json, size_t len,\n"
            "    %1$s_t *out, char *err, size_t errlen);\n"
            "char *%1$s_encode(const %1$s_t *in);\n"
            "void %1$s_free(%1$s_t *m);\n\n",
            c->cname);
    free(macro);
    free(up);
  }
  bputs(h, "/* ---- every contract, for tests and generic tools ---- */\n\n"
           "/* The schema is the engine's description (contracts/lib/contract_schema.h); the\n"
           " * samples are valid messages: one with every field, one with the required ones\n"
           " * only. All static. */\n"
           "typedef struct {\n"
           "  const char *message_type;\n"
           "  const struct ctxd__schema_type_s *schema;\n"
           "  size_t size; /* sizeof the struct */\n"
           "  const char *sample;\n"
           "  const char *sample_minimal;\n"
           "} ctxd_c_contract_info_t;\n\n"
           "extern const ctxd_c_contract_info_t ctxd_c_contracts[];\n"
           "extern const size_t ctxd_c_contracts_count;\n\n"
           "#ifdef __cplusplus\n}\n#endif\n\n#endif\n");
}

/* ---------------------------------------------------------------------------------------
 * ctxd_contracts.c
 */

/* INT64_MIN has no literal of its own: -9223372036854775808 is minus an overflow. */
static void int64_literal(buf_t *b, int64_t v) {
  if (v == INT64_MIN)
    bputs(b, "INT64_MIN");
  else
    bprintf(b, "INT64_C(%lld)", (long long)v);
}

static void type_init(buf_t *b, const ctxd__schema_type_t *t, const char *sname, const char *member,
                      const char *child) {
  bputs(b, "{.kind = CTXD__SCHEMA_");
  for (const char *k = ctxd__schema_kind_name(t->kind); *k; k++) bprintf(b, "%c", *k - 'a' + 'A');
  switch (t->kind) {
  case CTXD__SCHEMA_STRING:
    if (t->max_length) bprintf(b, ", .max_length = %zu", t->max_length);
    break;
  case CTXD__SCHEMA_INT:
    if (t->has_min) {
      bputs(b, ", .has_min = true, .min = ");
      int64_literal(b, t->min);
    }
    if (t->has_max) {
      bputs(b, ", .has_max = true, .max = ");
      int64_literal(b, t->max);
    }
    break;
  case CTXD__SCHEMA_ENUM:
    bprintf(b, ", .values = %s__%s_values, .nvalues = %zu", sname, member, t->nvalues);
    break;
  case CTXD__SCHEMA_OBJECT:
    bprintf(b, ", .fields = %1$s__fields, .nfields = %2$zu, .size = sizeof(%1$s_t)", child, t->nfields);
    break;
  case CTXD__SCHEMA_ARRAY:
    bprintf(b, ", .items = &%s__%s_items", sname, member);
    if (t->max_items) bprintf(b, ", .max_items = %zu", t->max_items);
    break;
  default: break;
  }
  bputs(b, "}");
}

static void emit_values(buf_t *c, const ctxd__schema_type_t *e, const char *sname, const char *member) {
  bprintf(c, "static const ctxd__schema_enum_t %s__%s_values[] = {\n", sname, member);
  for (size_t k = 0; k < e->nvalues; k++) {
    bputs(c, "    {");
    c_literal(c, e->values[k].name, "     ");
    bprintf(c, ", %d, NULL},\n", (int)e->values[k].value);
  }
  bputs(c, "};\n");
}

/* Post-order, so every table is defined before the one pointing at it. */
static void emit_tables(buf_t *c, const ctxd__schema_type_t *obj, const char *sname) {
  for (size_t i = 0; i < obj->nfields; i++) {
    const ctxd__schema_field_t *f = &obj->fields[i];
    char *m = member_name(f->name), *child = child_name(sname, m, &f->type);
    const ctxd__schema_type_t *e = enum_of(&f->type);
    if (e) emit_values(c, e, sname, m);
    if (f->type.kind == CTXD__SCHEMA_OBJECT) emit_tables(c, &f->type, child);
    if (f->type.kind == CTXD__SCHEMA_ARRAY) {
      if (child) emit_tables(c, f->type.items, child);
      bprintf(c, "static const ctxd__schema_type_t %s__%s_items = ", sname, m);
      type_init(c, f->type.items, sname, m, child);
      bputs(c, ";\n");
    }
    free(child);
    free(m);
  }
  bprintf(c, "static const ctxd__schema_field_t %s__fields[] = {\n", sname);
  for (size_t i = 0; i < obj->nfields; i++) {
    const ctxd__schema_field_t *f = &obj->fields[i];
    char *m = member_name(f->name), *child = child_name(sname, m, &f->type);
    bputs(c, "    {.name = ");
    c_literal(c, f->name, "     ");
    bprintf(c, ",\n     .required = %s,\n     .nullable = %s,\n     .type = ", f->required ? "true" : "false",
            f->nullable ? "true" : "false");
    type_init(c, &f->type, sname, m, child);
    bprintf(c, ",\n     .offset = offsetof(%s_t, %s)", sname, m);
    if (f->type.kind == CTXD__SCHEMA_ARRAY)
      bprintf(c, ",\n     .count_offset = offsetof(%s_t, %s_count)", sname, m);
    if (ctxd__schema_field_has_flag(f)) bprintf(c, ",\n     .has_offset = offsetof(%s_t, has_%s)", sname, m);
    bputs(c, "},\n");
    free(child);
    free(m);
  }
  bputs(c, "};\n");
}

static void emit_source(const gen_t *g, buf_t *c) {
  bputs(c, "/* GENERATED by contractc from contracts/: do not edit. See ctxd_contracts.h. */\n"
           "#include \"ctxd_contracts.h\"\n\n"
           "#include <stddef.h>\n\n"
           "#include \"contract_schema.h\"\n\n");
  for (size_t i = 0; i < g->n; i++) {
    const contract_t *k = &g->v[i];
    bprintf(c, "/* ---- %s ---- */\n\n", k->def.message_type);
    emit_tables(c, &k->def.body, k->cname);
    bprintf(c,
            "static const ctxd__schema_type_t %1$s__schema = {\n"
            "    .kind = CTXD__SCHEMA_OBJECT, .fields = %1$s__fields, .nfields = %2$zu,\n"
            "    .size = sizeof(%1$s_t)};\n\n"
            "int %1$s_decode(const char *json, size_t len,\n"
            "    %1$s_t *out, char *err, size_t errlen) {\n"
            "  return ctxd__schema_decode(&%1$s__schema, json, len, out, err, errlen);\n"
            "}\n\n"
            "char *%1$s_encode(const %1$s_t *in) {\n"
            "  return ctxd__schema_encode(&%1$s__schema, in);\n"
            "}\n\n"
            "void %1$s_free(%1$s_t *m) {\n"
            "  ctxd__schema_free(&%1$s__schema, m);\n"
            "}\n\n",
            k->cname, k->def.body.nfields);
  }
  bputs(c, "const ctxd_c_contract_info_t ctxd_c_contracts[] = {\n");
  for (size_t i = 0; i < g->n; i++) {
    const contract_t *k = &g->v[i];
    char *full = xalloc(json_dumps(k->sample, JSON_COMPACT | JSON_ENSURE_ASCII));
    char *min = xalloc(json_dumps(k->sample_min, JSON_COMPACT | JSON_ENSURE_ASCII));
    bputs(c, "    {.message_type = ");
    c_literal(c, k->def.message_type, "     ");
    bprintf(c,
            ",\n     .schema = &%1$s__schema,\n     .size = sizeof(%1$s_t),\n"
            "     .sample = ",
            k->cname);
    c_literal(c, full, "         ");
    bputs(c, ",\n     .sample_minimal = ");
    c_literal(c, min, "         ");
    bputs(c, "},\n");
    free(min);
    free(full);
  }
  bputs(c, "};\n\nconst size_t ctxd_c_contracts_count =\n"
           "    sizeof ctxd_c_contracts / sizeof ctxd_c_contracts[0];\n");
}

static void emit_registry(const gen_t *g, buf_t *r) {
  bputs(r, "/* GENERATED by contractc from contracts/: do not edit. Every definition as\n"
           " * compact JSON, sorted by message type (see contract_registry.h). */\n"
           "#include \"contract_registry.h\"\n\n"
           "const char *const ctxd__contract_defs[] = {\n");
  for (size_t i = 0; i < g->n; i++) {
    char *text = xalloc(json_dumps(g->v[i].json, JSON_COMPACT | JSON_ENSURE_ASCII));
    bprintf(r, "    /* %s */\n    ", g->v[i].def.message_type);
    c_literal(r, text, "    ");
    bputs(r, ",\n");
    free(text);
  }
  if (g->n == 0) bputs(r, "    NULL, /* C has no empty arrays */\n");
  bprintf(r, "};\n\nconst size_t ctxd__contract_defs_count = %zu;\n", g->n);
}

/* ---------------------------------------------------------------------------------------
 * contracts.md
 */

static void type_summary(buf_t *b, const ctxd__schema_type_t *t) {
  switch (t->kind) {
  case CTXD__SCHEMA_STRING:
    bputs(b, "string");
    if (t->max_length) bprintf(b, " (at most %zu characters)", t->max_length);
    break;
  case CTXD__SCHEMA_INT:
    bputs(b, "int");
    if (t->has_min && t->has_max)
      bprintf(b, " (%lld to %lld)", (long long)t->min, (long long)t->max);
    else if (t->has_min)
      bprintf(b, " (at least %lld)", (long long)t->min);
    else if (t->has_max)
      bprintf(b, " (at most %lld)", (long long)t->max);
    break;
  case CTXD__SCHEMA_ENUM:
    bputs(b, "enum:");
    for (size_t i = 0; i < t->nvalues; i++)
      bprintf(b, "%s %d %s", i ? "," : "", (int)t->values[i].value, t->values[i].name);
    break;
  case CTXD__SCHEMA_ARRAY:
    bputs(b, "array of ");
    type_summary(b, t->items);
    if (t->max_items) bprintf(b, ", at most %zu items", t->max_items);
    break;
  default: bputs(b, ctxd__schema_kind_name(t->kind)); break;
  }
}

static void doc_fields(buf_t *d, const ctxd__schema_type_t *obj, const char *prefix) {
  for (size_t i = 0; i < obj->nfields; i++) {
    const ctxd__schema_field_t *f = &obj->fields[i];
    bprintf(d, "| `%s%s` | ", prefix, f->name);
    type_summary(d, &f->type);
    bprintf(d, "%s | %s | ", f->nullable ? ", nullable" : "", f->required ? "yes" : "no");
    cell_text(d, f->description);
    bputs(d, " |\n");
    const ctxd__schema_type_t *sub =
        f->type.kind == CTXD__SCHEMA_OBJECT                                                ? &f->type
        : f->type.kind == CTXD__SCHEMA_ARRAY && f->type.items->kind == CTXD__SCHEMA_OBJECT ? f->type.items
                                                                                           : NULL;
    if (sub) {
      char *p = fmt("%s%s%s.", prefix, f->name, f->type.kind == CTXD__SCHEMA_ARRAY ? "[]" : "");
      doc_fields(d, sub, p);
      free(p);
    }
  }
}

static char *anchor(const char *message_type) {
  char *a = xstrdup(message_type);
  for (char *p = a; *p; p++)
    *p = *p >= 'A' && *p <= 'Z' ? (char)(*p - 'A' + 'a') : (*p == '.' || *p == ':') ? '-' : *p;
  return a;
}

static void doc_list(buf_t *d, const json_t *names) {
  for (size_t i = 0; i < json_array_size(names); i++)
    bprintf(d, "%s%s", i ? ", " : "", json_string_value(json_array_get(names, i)));
}

static void doc_contract(const gen_t *g, buf_t *d, const contract_t *c) {
  char *a = anchor(c->def.message_type);
  bprintf(d, "<a id=\"%s\"></a>\n\n### %s\n\n", a, c->def.message_type);
  free(a);
  cell_text(d, c->def.description);
  bprintf(d, "\n\n| | |\n|---|---|\n| Kind | %s |\n| Status | %s |\n", kind_summary(c->def.kind),
          c->def.status);
  bprintf(d, "| Exchange | `%s` (fanout) |\n| Producers | ", c->def.message_type);
  doc_list(d, c->def.producers);
  bputs(d, " |\n| Consumers | ");
  doc_list(d, c->def.consumers);
  bputs(d, " |\n| Versions | ");
  bool first = true;
  for (size_t i = 0; i < g->n; i++) {
    const ctxd__schema_def_t *o = &g->v[i].def;
    if (strcmp(o->ns, c->def.ns) || strcmp(o->type_name, c->def.type_name)) continue;
    char *oa = anchor(o->message_type);
    bprintf(d, "%s[v%d](#%s) (%s%s)", first ? "" : ", ", o->version, oa, o->status,
            o->upcast ? ", upcast from the previous version" : "");
    free(oa);
    first = false;
  }
  bprintf(d, " |\n| Definition | `contracts/%s` |\n| C | `%s_t` in `ctxd_contracts.h` |\n\n", c->rel,
          c->cname);
  bputs(d, "| Field | Type | Required | Description |\n|---|---|---|---|\n");
  doc_fields(d, &c->def.body, "");
  if (c->def.upcast) {
    const char *key;
    json_t *v;
    bprintf(d, "\nUpcast from v%d, applied by the host for handlers of this version:", c->def.version - 1);
    json_object_foreach((json_t *)c->def.renames, key, v) {
      bprintf(d, " `%s` is renamed `%s`;", key, json_string_value(v));
    }
    json_object_foreach((json_t *)c->def.defaults, key, v) {
      char *text = xalloc(json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY));
      bprintf(d, " `%s` defaults to `%s` when absent or null;", key, text);
      free(text);
    }
    d->s[d->len - 1] = '.';
    bputs(d, "\n");
  }
  char *sample = xalloc(json_dumps(c->sample, JSON_INDENT(2)));
  bprintf(d, "\nExample:\n\n```json\n%s\n```\n\n", sample);
  free(sample);
}

static void emit_docs(const gen_t *g, buf_t *d, const char *intro) {
  bputs(d, intro);
  bprintf(d,
          "\n## Catalog\n\n"
          "<!-- GENERATED by contractc from the definitions in contracts/ and the text of\n"
          "contracts/README.md: edit those, then refresh this file with\n"
          "cmake --build <build dir> --target contracts-update-docs. The test\n"
          "unit.contracts_docs_current fails while it differs from the generated one. -->\n\n"
          "%zu message types.\n\n"
          "| Message type | Kind | Status | Producers | Consumers |\n|---|---|---|---|---|\n",
          g->n);
  for (size_t i = 0; i < g->n; i++) {
    const contract_t *c = &g->v[i];
    char *a = anchor(c->def.message_type);
    bprintf(d, "| [`%s`](#%s) | %s | %s | ", c->def.message_type, a, c->def.kind, c->def.status);
    doc_list(d, c->def.producers);
    bputs(d, " | ");
    doc_list(d, c->def.consumers);
    bputs(d, " |\n");
    free(a);
  }
  bputs(d, "\n");
  const char *ns = "";
  for (size_t i = 0; i < g->n; i++) {
    const contract_t *c = &g->v[i];
    if (strcmp(ns, c->def.ns)) {
      ns = c->def.ns;
      bprintf(d, "## %s\n\n", ns);
    }
    doc_contract(g, d, c);
  }
  d->len--; /* one newline at the end, not two */
  d->s[d->len] = '\0';
}

/* ---------------------------------------------------------------------------------------
 * main
 */

static char *read_text(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) die("%s: cannot open", path);
  buf_t b = {0};
  char chunk[4096];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) bprintf(&b, "%.*s", (int)n, chunk);
  if (ferror(f)) die("%s: cannot read", path);
  fclose(f);
  return b.s ? b.s : xstrdup("");
}

/* Writes through a temporary file and a rename, so an interrupted run leaves no half file
 * that looks up to date. */
static void write_text(const char *dir, const char *name, const buf_t *b) {
  char *path = fmt("%s/%s", dir, name), *tmp = fmt("%s.tmp", path);
  FILE *f = fopen(tmp, "wb");
  if (!f || fwrite(b->s, 1, b->len, f) != b->len || fclose(f) != 0 || rename(tmp, path))
    die("%s: cannot write", path);
  free(tmp);
  free(path);
}

int main(int argc, char **argv) {
  const char *root = NULL, *intro = NULL, *out = NULL;
  int i = 1;
  for (; i + 1 < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
    if (strcmp(argv[i], "--root") == 0)
      root = argv[i + 1];
    else if (strcmp(argv[i], "--intro") == 0)
      intro = argv[i + 1];
    else if (strcmp(argv[i], "--out") == 0)
      out = argv[i + 1];
    else
      die("unknown option %s", argv[i]);
  }
  if (!root || !intro || !out) die("usage: contractc --root DIR --intro FILE --out DIR DEFINITION.json...");

  gen_t g = {0};
  load(&g, root, argv + i, (size_t)(argc - i));
  for (size_t k = 0; k < g.n; k++) {
    contract_t *c = &g.v[k];
    char *ctx = context_name(c->def.ns), *type = snake(c->def.type_name);
    c->cname = fmt("ctxd_c_%s_v%d_%s", ctx, c->def.version, type);
    /* Distinct namespaces must not share a context name. */
    for (size_t j = 0; j < k; j++) {
      char *other = context_name(g.v[j].def.ns);
      if (strcmp(other, ctx) == 0 && strcmp(g.v[j].def.ns, c->def.ns))
        die("%s: namespaces %s and %s both give C names ctxd_c_%s_*", c->file, c->def.ns, g.v[j].def.ns, ctx);
      free(other);
    }
    free(type);
    free(ctx);
    make_samples(c);
  }

  buf_t h = {0}, c = {0}, r = {0}, d = {0};
  char *intro_text = read_text(intro);
  emit_header(&g, &h);
  emit_source(&g, &c);
  emit_registry(&g, &r);
  emit_docs(&g, &d, intro_text);
  write_text(out, "ctxd_contracts.h", &h);
  write_text(out, "ctxd_contracts.c", &c);
  write_text(out, "ctxd_contract_registry.c", &r);
  write_text(out, "contracts.md", &d);

  free(intro_text);
  free(h.s);
  free(c.s);
  free(r.s);
  free(d.s);
  for (size_t k = 0; k < g.nnames; k++) free(g.names[k]);
  free(g.names);
  for (size_t k = 0; k < g.n; k++) {
    ctxd__schema_def_release(&g.v[k].def);
    json_decref(g.v[k].json);
    json_decref(g.v[k].sample);
    json_decref(g.v[k].sample_min);
    free(g.v[k].rel);
    free(g.v[k].cname);
  }
  free(g.v);
  return 0;
}
