/* The failed-message store (ctxd.failed_messages, runtime migration 9): what the host
 * ingested from its endpoints' _error queues, queried and acted on by the admin API and
 * by `ctxd errors`. Plain libpq and jansson: any thread, each caller with a connection of
 * its own. Every function answers with a new JSON value (json_decref) or NULL with a
 * negative code in *code and the reason in err. */
#ifndef CTXD_RUNTIME_FAILSTORE_H
#define CTXD_RUNTIME_FAILSTORE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <libpq-fe.h>

/* Which rows a query or an action covers; strings borrowed, NULL: any. */
typedef struct {
  const char *endpoint, *message_type, *exception_type, *message_id, *group;
  const char *status;        /* NULL or "open": unresolved and retry_requested; one status; or "all" */
  const char *since, *until; /* ISO 8601 bounds on last_failed_at */
  int64_t limit, offset;     /* limit 0: 100; at most 1000 */
} ctxd__failfilter_t;

/* Groups (endpoint, message type, exception type) of the rows f selects. */
json_t *ctxd__failstore_groups(PGconn *c, const ctxd__failfilter_t *f, int *code, char *err, size_t errlen);

/* The rows f selects, newest failure first. */
json_t *ctxd__failstore_list(PGconn *c, const ctxd__failfilter_t *f, int *code, char *err, size_t errlen);

/* One row with its headers, body, fault and action log; CTXD_ENOENT when there is none. */
json_t *ctxd__failstore_show(PGconn *c, int64_t id, int *code, char *err, size_t errlen);

/* Rows per status, and the number of open groups. */
json_t *ctxd__failstore_summary(PGconn *c, int *code, char *err, size_t errlen);

typedef enum { CTXD__FAIL_RETRY, CTXD__FAIL_ARCHIVE, CTXD__FAIL_UNARCHIVE } ctxd__failaction_t;

/* The status a filter without one selects for action a: "archived" for unarchive (what it
 * can apply to), else NULL (the open rows). Static. */
const char *ctxd__failstore_action_status(ctxd__failaction_t a);

/* Acts on the rows ids[0..n) or, when n is 0, on every row f selects, in one transaction,
 * recorded with actor. A retry goes back to its endpoint through the outbox (its row's
 * lease is 0: the relay's next sweep publishes it). */
json_t *ctxd__failstore_act(PGconn *c, ctxd__failaction_t a, const int64_t *ids, size_t n,
                            const ctxd__failfilter_t *f, const char *actor, int *code, char *err,
                            size_t errlen);

/* A filter as SQL: the conditions on ctxd.failed_messages (after WHERE; "true" when f
 * selects every row) with their text parameters $1..$n, borrowed from f, and the paging
 * f asks for (limit 0 means 100, above 1000 means 1000). */
typedef struct {
  char where[768];
  const char *params[10];
  int n;
  int64_t limit, offset;
} ctxd__failsql_t;

/* Builds q from f. 0, or CTXD_EINVAL with the reason in err (an unknown status, a message
 * id that is no UUID, a negative limit or offset). Pure. */
int ctxd__failfilter_sql(const ctxd__failfilter_t *f, ctxd__failsql_t *q, char *err, size_t errlen);

/* The AMQP headers of a retry of a message whose _error copy had `stored` (a JSON object):
 * the message's own headers, without what its failures added (MT-Fault-*, MT-Reason,
 * MT-Host-*, MT-Redelivery-Count, ctxd-Fault-*) and any earlier retry's marks, plus
 * ctxd-Retry-Of (the row's id, as text) and ctxd-Retry-Count. New (json_decref), NULL when
 * memory runs out. Pure. */
json_t *ctxd__failstore_retry_headers(const json_t *stored, int64_t retry_of, int64_t count);

/* Header of a retry sent by an operator: the failed_messages id it retries, as text; and
 * how many retries were asked for. */
#define CTXD__RETRY_OF_HEADER "ctxd-Retry-Of"
#define CTXD__RETRY_COUNT_HEADER "ctxd-Retry-Count"

#endif
