#include "ledger.h"

#include <stdlib.h>
#include <string.h>

#include <ctxd/errno.h>

static uint8_t *slot(ctxd__ledger_t *l, uint64_t tag) { return &l->state[tag % l->cap]; }

static int unsettled(const ctxd__ledger_t *l, uint64_t tag) {
  return l->base != 0 && tag >= l->base && tag <= l->top;
}

int ctxd__ledger_init(ctxd__ledger_t *l, size_t cap) {
  memset(l, 0, sizeof *l);
  l->state = calloc(cap, 1);
  if (l->state == NULL) return CTXD_ENOMEM;
  l->cap = cap;
  return 0;
}

void ctxd__ledger_free(ctxd__ledger_t *l) {
  free(l->state);
  memset(l, 0, sizeof *l);
}

int ctxd__ledger_receive(ctxd__ledger_t *l, uint64_t tag) {
  /* a channel numbers its deliveries without gaps: a gap would block the head forever */
  if (tag == 0 || (l->top != 0 && tag != l->top + 1)) return CTXD_ESTATE;
  if (l->base == 0 || l->base > l->top) l->base = tag;
  if (tag - l->base >= l->cap) return CTXD_ESTATE;
  l->top = tag;
  *slot(l, tag) = CTXD__TAG_RUNNING;
  return 0;
}

void ctxd__ledger_mark(ctxd__ledger_t *l, uint64_t tag, ctxd__tag_state_t state) {
  if (unsettled(l, tag)) *slot(l, tag) = (uint8_t)state;
}

int ctxd__ledger_next(ctxd__ledger_t *l, ctxd__settlement_t *s) {
  if (!unsettled(l, l->base)) return 0;
  uint8_t head = *slot(l, l->base);
  if (head != CTXD__TAG_ACK && head != CTXD__TAG_REQUEUE) return 0;
  size_t n = 0;
  while (l->base <= l->top && *slot(l, l->base) == head) {
    *slot(l, l->base) = CTXD__TAG_FREE;
    l->base++;
    n++;
  }
  *s = (ctxd__settlement_t){
      .tag = l->base - 1, .multiple = n > 1, .requeue = head == CTXD__TAG_REQUEUE, .count = n};
  return 1;
}

size_t ctxd__ledger_reset(ctxd__ledger_t *l) {
  size_t held = 0;
  for (uint64_t tag = l->base; unsettled(l, tag); tag++) held += *slot(l, tag) != CTXD__TAG_RUNNING;
  memset(l->state, 0, l->cap);
  l->base = l->top = 0;
  return held;
}
