#include "outrow.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ctxd/ctxd.h>
#include <ctxd/errno.h>

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

static void take_id(void *arg, const PGresult *r) {
  if (PQntuples(r) == 1) ((ctxd__outrow_t *)arg)->id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
}

int ctxd__outrow_insert(PGconn *c, ctxd__outrows_t *rows, int64_t lease_ms, const ctxd__outrow_spec_t *w,
                        char *err, size_t errlen) {
  char lease[32], expires_ms[24];
  snprintf(lease, sizeof lease, "%lld milliseconds", (long long)lease_ms);
  snprintf(expires_ms, sizeof expires_ms, "%lld", (long long)w->expires_ms);
  const char *params[] = {w->id,
                          w->exchange,
                          w->message_type,
                          w->body,
                          lease,
                          w->routing_key != NULL ? w->routing_key : "",
                          w->correlation_id,
                          w->headers,
                          w->expires_ms != 0 ? expires_ms : NULL,
                          w->no_declare ? "t" : "f",
                          w->event ? "t" : "f"};
  /* published by this host right after the commit; the sweep is only the safety net */
  ctxd__outrow_t *row = ctxd__outrow_new(0, w->id, w->exchange, w->body);
  if (row == NULL || ctxd__outrow_set(row, w->routing_key, w->correlation_id, w->headers, w->expires_ms,
                                      w->no_declare) != 0) {
    ctxd__outrow_free(row);
    return CTXD_ENOMEM;
  }
  /* queued when the batch runs pipelined: the id arrives before the commit completes.
   * The lease runs from the insert, not from the transaction's start (now()): time a batch
   * spent waiting before this handler ran does not count against it. Handlers after it in
   * the batch still do: a commit later than the grace lets the sweep send a copy too,
   * which the consumer's inbox drops. */
  int code = ctxd__db_queue(c,
                            "INSERT INTO ctxd.outbox (message_id, exchange, message_type, body, "
                            "lease_until, routing_key, correlation_id, headers, expires_at, no_declare, "
                            "event) VALUES ($1, $2, $3, $4, clock_timestamp() + $5::interval, $6, $7, $8, "
                            "to_timestamp($9::bigint / 1000.0), $10::boolean, $11::boolean) RETURNING id",
                            11, params, take_id, row, err, errlen);
  if (code != 0) {
    ctxd__outrow_free(row);
    return code;
  }
  row->event = w->event;
  ctxd__outrows_push(rows, row);
  return 0;
}
