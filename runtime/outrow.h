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
  /* how it is published (ctxd__outrow_set); NULL / 0 when unset */
  char *routing_key;    /* "" when NULL */
  char *correlation_id; /* the AMQP correlation_id */
  char *headers;        /* JSON object copied to the AMQP headers */
  int64_t expires_ms;   /* Unix time in ms when it expires (AMQP expiration), 0: never */
  int no_declare;       /* its exchange is someone else's (a reply target): never declared */
  char *refused;        /* new: why the broker refused it; it is archived, not sent again */
} ctxd__outrow_t;

/* A list of rows, first written first. Zero-initialised it is empty. */
typedef struct {
  ctxd__outrow_t *head;
  ctxd__outrow_t *last;
} ctxd__outrows_t;

/* Returns a new row (free with ctxd__outrow_free, or with the list holding it), or NULL
 * when memory runs out. */
ctxd__outrow_t *ctxd__outrow_new(int64_t id, const char *message_id, const char *exchange, const char *body);

/* Sets how r is published: routing key, correlation id and headers (a JSON object's text)
 * are copied, any may be NULL. 0, or CTXD_ENOMEM (r unchanged but for what was copied). */
int ctxd__outrow_set(ctxd__outrow_t *r, const char *routing_key, const char *correlation_id,
                     const char *headers, int64_t expires_ms, int no_declare);

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

/* A row to write: an encoded envelope and how to publish it. Strings borrowed. */
typedef struct {
  const char *id, *exchange, *message_type, *body;
  const char *routing_key;    /* NULL: "" */
  const char *correlation_id; /* the AMQP property; NULL: none */
  const char *headers;        /* the AMQP headers as a JSON object's text; NULL: none */
  int64_t expires_ms;         /* Unix time in ms it expires at; 0: never */
  int no_declare;             /* a reply or fault target is the requester's: never declared */
  int event;                  /* published to a type's exchange: no subscriber is normal */
} ctxd__outrow_spec_t;

/* Writes row w into ctxd.outbox in c's open transaction (queued when c is in pipeline
 * mode), to go out after the commit; its row, leased for lease_ms, is appended to rows.
 * 0, CTXD_ENOMEM (nothing written), or the SQL error's code (its text in err; the
 * transaction is aborted). */
int ctxd__outrow_insert(PGconn *c, ctxd__outrows_t *rows, int64_t lease_ms, const ctxd__outrow_spec_t *w,
                        char *err, size_t errlen);

#endif
