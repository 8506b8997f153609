#include "outrow.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

ctxd__outrow_t *ctxd__outrow_new(int64_t id, const char *message_id, const char *exchange, const char *body) {
  ctxd__outrow_t *r = calloc(1, sizeof *r);
  if (r == NULL) return NULL;
  r->id = id;
  snprintf(r->message_id, sizeof r->message_id, "%s", message_id);
  r->exchange = strdup(exchange);
  r->body = strdup(body);
  if (r->exchange == NULL || r->body == NULL) {
    ctxd__outrow_free(r);
    return NULL;
  }
  return r;
}

void ctxd__outrow_free(ctxd__outrow_t *r) {
  if (r == NULL) return;
  free(r->exchange);
  free(r->body);
  free(r);
}

void ctxd__outrows_push(ctxd__outrows_t *l, ctxd__outrow_t *r) {
  r->next = NULL;
  if (l->last != NULL)
    l->last->next = r;
  else
    l->head = r;
  l->last = r;
}

ctxd__outrow_t *ctxd__outrows_shift(ctxd__outrows_t *l) {
  ctxd__outrow_t *r = l->head;
  if (r == NULL) return NULL;
  l->head = r->next;
  if (l->head == NULL) l->last = NULL;
  r->next = NULL;
  return r;
}

void ctxd__outrows_splice(ctxd__outrows_t *to, ctxd__outrows_t *from) {
  if (from->head == NULL) return;
  if (to->last != NULL)
    to->last->next = from->head;
  else
    to->head = from->head;
  to->last = from->last;
  from->head = from->last = NULL;
}

void ctxd__outrows_free(ctxd__outrows_t *l) {
  ctxd__outrow_t *r;
  while ((r = ctxd__outrows_shift(l)) != NULL) ctxd__outrow_free(r);
}
