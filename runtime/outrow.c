#include "outrow.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ctxd/errno.h>

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

/* *to = a copy of s (NULL stays NULL); 0 or CTXD_ENOMEM. */
static int copy(char **to, const char *s) {
  free(*to);
  *to = s != NULL ? strdup(s) : NULL;
  return s != NULL && *to == NULL ? CTXD_ENOMEM : 0;
}

int ctxd__outrow_set(ctxd__outrow_t *r, const char *routing_key, const char *correlation_id,
                     const char *headers, int64_t expires_ms, int no_declare) {
  r->expires_ms = expires_ms;
  r->no_declare = no_declare;
  int rc = copy(&r->routing_key, routing_key);
  if (rc == 0) rc = copy(&r->correlation_id, correlation_id);
  if (rc == 0) rc = copy(&r->headers, headers);
  return rc;
}

void ctxd__outrow_free(ctxd__outrow_t *r) {
  if (r == NULL) return;
  free(r->exchange);
  free(r->body);
  free(r->routing_key);
  free(r->correlation_id);
  free(r->headers);
  free(r->refused);
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
