/* Outbox rows on their way to the broker, and lists of them that keep the order they were
 * written in (the order the broker must see them in). Plain data: any thread, one owner at
 * a time. */
#ifndef CTXD_RUNTIME_OUTROW_H
#define CTXD_RUNTIME_OUTROW_H

#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

/* One row of ctxd.outbox. */
typedef struct ctxd__outrow_s {
  struct ctxd__outrow_s *next;
  int64_t id;
  char message_id[37];
  char *exchange;
  char *body;     /* the MassTransit envelope */
  int unroutable; /* the broker returned it: no queue is bound to its exchange */
  int event;      /* published to its type's exchange: having no subscriber is normal */
} ctxd__outrow_t;

/* A list of rows, first written first. Zero-initialised it is empty. */
typedef struct {
  ctxd__outrow_t *head;
  ctxd__outrow_t *last;
} ctxd__outrows_t;

/* Returns a new row (free with ctxd__outrow_free, or with the list holding it), or NULL
 * when memory runs out. */
ctxd__outrow_t *ctxd__outrow_new(int64_t id, const char *message_id, const char *exchange, const char *body);

/* Frees r (not the rows after it). */
void ctxd__outrow_free(ctxd__outrow_t *r);

/* Appends r (which the list then owns). */
void ctxd__outrows_push(ctxd__outrows_t *l, ctxd__outrow_t *r);

/* Removes and returns the first row (the caller owns it), or NULL when l is empty. */
ctxd__outrow_t *ctxd__outrows_shift(ctxd__outrows_t *l);

/* Appends every row of from to to, in order; from is left empty. */
void ctxd__outrows_splice(ctxd__outrows_t *to, ctxd__outrows_t *from);

/* Frees every row; l is left empty. */
void ctxd__outrows_free(ctxd__outrows_t *l);

/* Writes an encoded envelope (body) into ctxd.outbox in c's open transaction (queued when
 * c is in pipeline mode), to go to exchange after the commit; its row, leased for
 * lease_ms, is appended to rows. event: published to a type's exchange, where having no
 * subscriber is normal. 0, CTXD_ENOMEM (nothing written), or the SQL error's code (its
 * text in err; the transaction is aborted). */
int ctxd__outrow_insert(PGconn *c, ctxd__outrows_t *rows, int64_t lease_ms, const char *id,
                        const char *exchange, const char *message_type, const char *body, int event,
                        char *err, size_t errlen);

#endif
