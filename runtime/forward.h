/* Copies of deliveries that leave their queue: to the delay queue of their next
 * redelivery, to <queue>_error or to <queue>_skipped, carrying MassTransit's headers in
 * place of any such headers they had (MT-Reason, MT-Fault-*, MT-Redelivery-Count,
 * MT-Host-*). Pure: the loop thread publishes what this builds. */
#ifndef CTXD_RUNTIME_FORWARD_H
#define CTXD_RUNTIME_FORWARD_H

#include <time.h>

#include <amqp.h>

#include "endpoint.h"

typedef struct {
  char exchange[256];            /* where the copy goes */
  amqp_basic_properties_t props; /* the original's, persistent, with the new headers */
  amqp_table_entry_t *entries;   /* props.headers' entries; new */
  char when[40];                 /* MT-Fault-Timestamp's text */
  char address[512];             /* MT-Fault-InputAddress's */
  char stack[768];               /* MT-Fault-StackTrace's */
  char fault_id[37];             /* ctxd-Fault-Id's, an _error copy's */
} ctxd__forward_t;

/* Builds the copy of d, whose outcome is CTXD__OUTCOME_DELAY, _ERROR or _SKIPPED, failed
 * at `now`. The copy borrows d's message and texts: d must outlive it. 0, or CTXD_ENOMEM /
 * CTXD_ETOOBIG (nothing to free). Release with ctxd__forward_free. An _error copy has no
 * expiration. */
int ctxd__forward_build(ctxd__forward_t *f, const ctxd__delivery_t *d, const struct timespec *now);

/* Writes t as .NET's DateTime.ToString("O") writes a UTC time: seven fractional digits. */
void ctxd__forward_timestamp(char out[40], const struct timespec *t);

/* Writes what ctxd says where MassTransit puts a stack trace: where d's failure was
 * decided (its plugin, message type and endpoint). */
void ctxd__forward_stack_trace(char *buf, size_t len, const ctxd__delivery_t *d);

void ctxd__forward_free(ctxd__forward_t *f);

#endif
