/* The outbox relay's database side: one thread with its own connection that archives
 * rows once the broker confirmed them, sweeps rows left behind (a crash between commit
 * and confirm, a nack, a lost connection), and deletes expired inbox and archive rows.
 * Publishing itself happens on the loop thread, which owns the broker connection. */
#ifndef CTXD_RUNTIME_RELAY_H
#define CTXD_RUNTIME_RELAY_H

#include <stdint.h>

#include "config.h"

/* One outbox row on its way to the broker. */
typedef struct ctxd__outrow_s {
  struct ctxd__outrow_s *next;
  int64_t id;
  char message_id[37];
  char *exchange;
  char *body; /* the MassTransit envelope */
  int unroutable; /* the broker returned it: no queue is bound to its exchange */
  int event;      /* published to its type's exchange: having no subscriber is normal */
} ctxd__outrow_t;

/* Returns a new row (free with ctxd__outrow_free_list), or NULL when memory runs out. */
ctxd__outrow_t *ctxd__outrow_new(int64_t id, const char *message_id, const char *exchange,
                                 const char *body);
void ctxd__outrow_free_list(ctxd__outrow_t *rows);

typedef struct ctxd__relay_s ctxd__relay_t;
struct ctxd__host_s;

/* Starts the relay thread. Rows it sweeps go to ctxd__host_publish_rows(host, ...).
 * 0 and *out (stop and free with ctxd__relay_stop), or CTXD_ENOMEM. */
int ctxd__relay_start(ctxd__relay_t **out, struct ctxd__host_s *host, const ctxd__config_t *cfg);

/* Hands confirmed rows over for archiving (any thread); takes ownership of the list. */
void ctxd__relay_archive(ctxd__relay_t *r, ctxd__outrow_t *rows);

/* What the relay last measured (every sweep): rows in the outbox, the age in seconds of
 * the oldest, and the estimated rows of the inbox. Any thread. */
void ctxd__relay_gauges(ctxd__relay_t *r, int64_t *backlog, double *oldest_s, int64_t *inbox_rows);

/* Archives what is queued, joins the thread, frees r. */
void ctxd__relay_stop(ctxd__relay_t *r);

#endif
