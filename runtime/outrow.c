#include "outrow.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ctxd/ctxd.h>

#include "db.h"

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

static void take_id(void *arg, const PGresult *r) {
  ((ctxd__outrow_t *)arg)->id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
}

int ctxd__outrow_insert(PGconn *c, ctxd__outrows_t *rows, int64_t lease_ms, const char *id,
                        const char *exchange, const char *message_type, const char *body, int event,
                        char *err, size_t errlen) {
  char lease[32];
  snprintf(lease, sizeof lease, "%lld milliseconds", (long long)lease_ms);
  const char *params[] = {id, exchange, message_type, body, lease};
  /* published by this host right after the commit; the sweep is only the safety net */
  ctxd__outrow_t *row = ctxd__outrow_new(0, id, exchange, body);
  if (row == NULL) return CTXD_ENOMEM;
  /* queued when the batch runs pipelined: the id arrives before the commit completes.
   * The lease runs from the insert, not from the transaction's start (now()): time a batch
   * spent waiting before this handler ran does not count against it. Handlers after it in
   * the batch still do: a commit later than the grace lets the sweep send a copy too,
   * which the consumer's inbox drops. */
  int code = ctxd__db_queue(c,
                            "INSERT INTO ctxd.outbox (message_id, exchange, message_type, body, "
                            "lease_until) VALUES ($1, $2, $3, $4, clock_timestamp() + $5::interval) "
                            "RETURNING id",
                            5, params, take_id, row, err, errlen);
  if (code != 0) {
    ctxd__outrow_free(row);
    return code;
  }
  row->event = event;
  ctxd__outrows_push(rows, row);
  return 0;
}
