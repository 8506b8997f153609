/* The outbox relay's database side: one thread with its own connection that archives
 * rows once the broker confirmed them, sweeps rows left behind (a crash between commit
 * and confirm, a nack, a lost connection), and deletes expired inbox and archive rows.
 * Publishing itself happens on the loop thread, which owns the broker connection. */
#ifndef CTXD_RUNTIME_RELAY_H
#define CTXD_RUNTIME_RELAY_H

#include <stdint.h>

#include "config.h"
#include "mailbox.h"
#include "outrow.h"

/* Rows a sweep claimed, on their way to the loop thread, which publishes them in order
 * (the order they were written in) and frees this with free(). */
typedef struct {
  ctxd__mail_t mail;
  ctxd__outrows_t rows;
} ctxd__swept_t;

typedef struct ctxd__relay_s ctxd__relay_t;

/* Starts the relay thread. Rows it sweeps are posted to mailbox as a ctxd__swept_t whose
 * mail.done is `swept`. 0 and *out (stop and free with ctxd__relay_stop), or CTXD_ENOMEM. */
int ctxd__relay_start(ctxd__relay_t **out, const ctxd__config_t *cfg, ctxd__mailbox_t *mailbox,
                      ctxd__mail_cb swept);

/* Hands confirmed rows, and rows the broker refused (row->refused set: archived with the
 * reason, never sent again), over for archiving (any thread); takes every row of rows,
 * which is left empty. */
void ctxd__relay_archive(ctxd__relay_t *r, ctxd__outrows_t *rows);

/* What the relay measured. */
typedef struct {
  int64_t backlog;    /* rows in the outbox (every tick) */
  double oldest_s;    /* the age of the oldest */
  int64_t inbox_rows; /* the inbox's estimated rows */
  double tick_s;      /* how long its last tick took: due scheduled rows moved, the sweep, these gauges */
  double tick_max_s;  /* the longest tick since start */
  int64_t scheduled_moved; /* scheduled messages it moved to the outbox since start */
  int db_ok;               /* it had a connection, or made one, when it last needed one */
} ctxd__relay_stats_t;

/* Copies what the relay last measured into *out. Any thread. */
void ctxd__relay_gauges(ctxd__relay_t *r, ctxd__relay_stats_t *out);

/* Wakes the relay at Unix time at_ms (or now, if past) for a message scheduled then, when
 * that is before its next tick. Any thread. */
void ctxd__relay_wake_at(ctxd__relay_t *r, int64_t at_ms);

/* held: the broker blocked publishing, or the host has no connection to it; the relay
 * stops sweeping (the rows would only be claimed and dropped, tick after tick) and goes on
 * archiving and measuring. Released: it sweeps at once, after giving the rows in `pending`
 * (an array literal of ids, "{1,2}", taken and freed; NULL: none) a lease of `lease_ms`
 * from now: outbox.sweep_grace_ms for those published before a block, whose confirms the
 * broker sends now and which a sweep would only send twice; 0 for those published on a
 * connection since lost, whose confirms never come, so the sweep sends them at once rather
 * than when their lease would have ended. Any thread. */
void ctxd__relay_hold(ctxd__relay_t *r, int held, char *pending, int64_t lease_ms);

/* Archives what is queued, joins the thread, frees r. */
void ctxd__relay_stop(ctxd__relay_t *r);

#endif
