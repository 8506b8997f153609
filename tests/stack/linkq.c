#include "linkq.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

void ctxd_linkq_init(ctxd_linkq_t *q, size_t high, size_t low) {
  memset(q, 0, sizeof *q);
  q->high = high;
  q->low = low;
}

void ctxd_linkq_free(ctxd_linkq_t *q) {
  while (q->head != NULL) {
    ctxd_linkq_chunk_t *c = q->head;
    q->head = c->next;
    q->held -= c->len;
    free(c);
  }
  q->tail = NULL;
}

int ctxd_linkq_push(ctxd_linkq_t *q, const void *data, size_t len, uint64_t now_ms, uint64_t delay_ms) {
  ctxd_linkq_chunk_t *c = malloc(sizeof *c + len);
  if (c == NULL) return -ENOMEM;
  c->next = NULL;
  c->due_ms = now_ms + delay_ms;
  c->len = len;
  memcpy(c->data, data, len);
  if (q->tail != NULL)
    q->tail->next = c;
  else
    q->head = c;
  q->tail = c;
  q->held += len;
  return 0;
}

ctxd_linkq_chunk_t *ctxd_linkq_take(ctxd_linkq_t *q, uint64_t now_ms) {
  ctxd_linkq_chunk_t *c = q->head;
  if (c == NULL || c->due_ms > now_ms) return NULL;
  q->head = c->next;
  if (q->head == NULL) q->tail = NULL;
  c->next = NULL;
  return c;
}

void ctxd_linkq_done(ctxd_linkq_t *q, ctxd_linkq_chunk_t *c) {
  q->held -= c->len;
  free(c);
}

int64_t ctxd_linkq_wait_ms(const ctxd_linkq_t *q, uint64_t now_ms) {
  if (q->head == NULL) return -1;
  return q->head->due_ms > now_ms ? (int64_t)(q->head->due_ms - now_ms) : 0;
}

int ctxd_linkq_full(const ctxd_linkq_t *q) { return q->held >= q->high; }
int ctxd_linkq_roomy(const ctxd_linkq_t *q) { return q->held <= q->low; }

int ctxd_linkq_parse_delay(const char *text, uint64_t *ms) {
  while (isspace((unsigned char)*text)) text++;
  if (!isdigit((unsigned char)*text)) return -EINVAL;
  char *end;
  errno = 0;
  unsigned long long v = strtoull(text, &end, 10);
  while (isspace((unsigned char)*end)) end++;
  if (errno != 0 || *end != '\0' || v > 600000) return -EINVAL;
  *ms = v;
  return 0;
}
