#include "metrics.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ctxd/errno.h>

static const double seconds_le[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                    0.1,    0.25,  0.5,    1,     2.5,  5,     10};
static const double sizes_le[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024};

const ctxd__buckets_t ctxd__buckets_seconds = {seconds_le, sizeof seconds_le / sizeof *seconds_le};
const ctxd__buckets_t ctxd__buckets_sizes = {sizes_le, sizeof sizes_le / sizeof *sizes_le};

void ctxd__histogram_init(ctxd__histogram_t *h, const ctxd__buckets_t *b) {
  memset(h, 0, sizeof *h);
  h->buckets = b;
}

void ctxd__histogram_observe(ctxd__histogram_t *h, double v) {
  size_t i = 0;
  /* Written as !(v <= le) so that NaN, which compares false, falls through to +Inf. */
  while (i < h->buckets->n && !(v <= h->buckets->le[i])) i++;
  h->counts[i]++;
  h->count++;
  h->sum += v;
}

void ctxd__prom_free(ctxd__prom_t *p) {
  free(p->buf);
  p->buf = NULL;
  p->len = p->cap = 0;
}

/* Makes room for n more bytes and the NUL; 0, or -1 when memory runs out. The internal
 * helpers below return 0 or -1 so they chain with ||; the public functions turn -1 into
 * CTXD_ENOMEM. */
static int reserve(ctxd__prom_t *p, size_t n) {
  if (p->cap > p->len && p->cap - p->len > n) return 0;
  size_t cap = p->cap ? p->cap : 256;
  while (cap - p->len <= n) {
    if (cap > SIZE_MAX / 2) return -1;
    cap *= 2;
  }
  char *b = realloc(p->buf, cap);
  if (!b) return -1;
  p->buf = b;
  p->cap = cap;
  return 0;
}

static int put(ctxd__prom_t *p, const char *s, size_t n) {
  if (reserve(p, n) != 0) return -1;
  memcpy(p->buf + p->len, s, n);
  p->len += n;
  p->buf[p->len] = '\0';
  return 0;
}

static int put_str(ctxd__prom_t *p, const char *s) { return put(p, s, strlen(s)); }

/* The text format escapes backslash and newline in HELP, and also the double quote in
 * label values. */
static int put_escaped(ctxd__prom_t *p, const char *s, int quote) {
  const char *run = s;
  for (; *s; s++) {
    const char *esc = *s == '\\' ? "\\\\" : *s == '\n' ? "\\n" : quote && *s == '"' ? "\\\"" : NULL;
    if (!esc) continue;
    if (put(p, run, (size_t)(s - run)) || put(p, esc, 2)) return -1;
    run = s + 1;
  }
  return put(p, run, (size_t)(s - run));
}

/* {a="x",b="y",le="0.5"}: the caller's labels plus le when given; nothing when neither. */
static int put_labels(ctxd__prom_t *p, const char *const *labels, const char *le) {
  if ((!labels || !labels[0]) && !le) return 0;
  const char *sep = "{";
  for (size_t i = 0; labels && labels[i]; i += 2) {
    if (put_str(p, sep) || put_str(p, labels[i]) || put_str(p, "=\"") || put_escaped(p, labels[i + 1], 1) ||
        put_str(p, "\""))
      return -1;
    sep = ",";
  }
  if (le && (put_str(p, sep) || put_str(p, "le=\"") || put_str(p, le) || put_str(p, "\""))) return -1;
  return put_str(p, "}");
}

static int put_sample(ctxd__prom_t *p, const char *name, const char *suffix, const char *const *labels,
                      const char *le, const char *value) {
  return put_str(p, name) || put_str(p, suffix) || put_labels(p, labels, le) || put_str(p, " ") ||
         put_str(p, value) || put_str(p, "\n");
}

/* What Go's strconv.FormatFloat(v, 'g', -1, 64) prints, as the Prometheus clients do: the
 * fewest significant digits that read back as v, in exponent form only when the exponent
 * is below -4 or above 5; and the format's spellings of the non-finite values. */
static void format_double(char out[32], double v) {
  if (isnan(v)) {
    strcpy(out, "NaN");
    return;
  }
  if (isinf(v)) {
    strcpy(out, v > 0 ? "+Inf" : "-Inf");
    return;
  }
  int digits = 0;
  do {
    digits++;
    snprintf(out, 32, "%.*e", digits - 1, v);
  } while (digits < 17 && strtod(out, NULL) != v);
  int exp = atoi(strchr(out, 'e') + 1);
  if (exp < -4 || exp > 5) return;
  snprintf(out, 32, "%.*f", digits - 1 - exp > 0 ? digits - 1 - exp : 0, v);
}

/* Undoes a partly written call so a failure leaves the buffer as it was. */
static int finish(ctxd__prom_t *p, size_t mark, int failed) {
  if (!failed) return 0;
  if (p->buf) {
    p->len = mark;
    p->buf[mark] = '\0';
  }
  return CTXD_ENOMEM;
}

int ctxd__prom_append(ctxd__prom_t *p, const char *s, size_t n) { return finish(p, p->len, put(p, s, n)); }

int ctxd__prom_printf(ctxd__prom_t *p, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0 || reserve(p, (size_t)n) != 0) return CTXD_ENOMEM;
  va_start(ap, fmt);
  vsnprintf(p->buf + p->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  p->len += (size_t)n;
  return 0;
}

int ctxd__prom_help_type(ctxd__prom_t *p, const char *name, const char *help, const char *type) {
  size_t mark = p->len;
  return finish(p, mark,
                put_str(p, "# HELP ") || put_str(p, name) || put_str(p, " ") || put_escaped(p, help, 0) ||
                    put_str(p, "\n# TYPE ") || put_str(p, name) || put_str(p, " ") || put_str(p, type) ||
                    put_str(p, "\n"));
}

int ctxd__prom_counter(ctxd__prom_t *p, const char *name, const char *const *labels, uint64_t value) {
  char v[32];
  snprintf(v, sizeof v, "%" PRIu64, value);
  size_t mark = p->len;
  return finish(p, mark, put_sample(p, name, "", labels, NULL, v));
}

int ctxd__prom_gauge(ctxd__prom_t *p, const char *name, const char *const *labels, double value) {
  char v[32];
  format_double(v, value);
  size_t mark = p->len;
  return finish(p, mark, put_sample(p, name, "", labels, NULL, v));
}

int ctxd__prom_histogram(ctxd__prom_t *p, const char *name, const char *const *labels,
                         const ctxd__histogram_t *h) {
  size_t mark = p->len;
  char le[32], v[32];
  uint64_t cumulative = 0;
  int failed = 0;
  /* i == n is the +Inf bucket: format_double spells its bound "+Inf". */
  for (size_t i = 0; i <= h->buckets->n && !failed; i++) {
    cumulative += h->counts[i];
    format_double(le, i < h->buckets->n ? h->buckets->le[i] : INFINITY);
    snprintf(v, sizeof v, "%" PRIu64, cumulative);
    failed = put_sample(p, name, "_bucket", labels, le, v);
  }
  format_double(v, h->sum);
  failed = failed || put_sample(p, name, "_sum", labels, NULL, v);
  snprintf(v, sizeof v, "%" PRIu64, h->count);
  failed = failed || put_sample(p, name, "_count", labels, NULL, v);
  return finish(p, mark, failed);
}
