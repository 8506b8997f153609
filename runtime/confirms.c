#include "confirms.h"

#include <stdlib.h>
#include <string.h>

#include <ctxd/errno.h>

#include "outrow.h"

void ctxd__confirms_free(ctxd__confirms_t *c) {
  free(c->v);
  memset(c, 0, sizeof *c);
}

int ctxd__confirms_add(ctxd__confirms_t *c, uint64_t seq, struct ctxd__delivery_s *copy_of,
                       struct ctxd__outrow_s *row) {
  if (c->head + c->n == c->cap && c->head > 0) {
    memmove(c->v, &c->v[c->head], c->n * sizeof *c->v);
    c->head = 0;
  } else if (c->n == c->cap) {
    size_t cap = c->cap ? c->cap * 2 : 64;
    ctxd__pending_t *grown = realloc(c->v, cap * sizeof *grown);
    if (grown == NULL) return CTXD_ENOMEM;
    c->v = grown;
    c->cap = cap;
  }
  c->v[c->head + c->n++] = (ctxd__pending_t){seq, copy_of, row};
  return 0;
}

size_t ctxd__confirms_settle(ctxd__confirms_t *c, uint64_t seq, int multiple, ctxd__pending_t *out,
                             size_t max) {
  /* entries are in sequence order: a multiple confirm settles a prefix, a single one the
   * entry with its number */
  size_t lo = c->head, hi = c->head + c->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (c->v[mid].seq < seq)
      lo = mid + 1;
    else
      hi = mid;
  }
  size_t end = lo < c->head + c->n && c->v[lo].seq == seq ? lo + 1 : lo;
  size_t start = multiple ? c->head : lo;
  size_t k = end - start < max ? end - start : max;
  if (k == 0) return 0;
  memcpy(out, &c->v[start], k * sizeof *out);
  if (start == c->head)
    c->head += k;
  else
    memmove(&c->v[start], &c->v[start + k], (c->head + c->n - start - k) * sizeof *c->v);
  c->n -= k;
  if (c->n == 0) c->head = 0;
  return k;
}

struct ctxd__outrow_s *ctxd__confirms_find_row(const ctxd__confirms_t *c, const void *id, size_t len) {
  for (size_t i = c->head; i < c->head + c->n; i++) {
    ctxd__outrow_t *row = c->v[i].row;
    if (row != NULL && strlen(row->message_id) == len && memcmp(row->message_id, id, len) == 0) return row;
  }
  return NULL;
}
