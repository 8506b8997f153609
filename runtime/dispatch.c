#include "dispatch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "address.h"
#include "amqptable.h"
#include "clock.h"
#include "contract.h"
#include "db.h"
#include "fault.h"
#include "failstore.h"
#include "faultevent.h"
#include "forward.h"
#include "ingest.h"
#include "log.h"
#include "notify.h"
#include "plugin.h"
#include "topology.h"
#include "uuid.h"
#include "watch.h"
#include "crash.h"

#define INBOX_INSERT                                                                                         \
  "INSERT INTO ctxd.inbox (endpoint, message_id) SELECT $1, unnest($2::uuid[]) "                             \
  "ON CONFLICT DO NOTHING RETURNING message_id::text"

static void set_outcome(ctxd__delivery_t *d, ctxd__outcome_t o, const char *fault_type, const char *reason) {
  d->outcome = o;
  free(d->fault_type);
  free(d->reason);
  free(d->fault_plugin); /* a rolled-back attempt's, say: blame follows the outcome */
  free(d->fault_message_type);
  d->fault_plugin = d->fault_message_type = NULL;
  /* copies: the texts often live in the handler's transaction, gone after this call */
  d->fault_type = fault_type != NULL ? strdup(fault_type) : NULL;
  d->reason = reason != NULL ? strdup(reason) : NULL;
}

/* Names the handler a failure is about, for the fault headers of the copy. */
static void blame(ctxd__delivery_t *d, const ctxd__handler_t *hd) {
  free(d->fault_plugin);
  free(d->fault_message_type);
  d->fault_plugin = strdup(hd->plugin->name);
  d->fault_message_type = strdup(hd->type);
}

/* A transient failure: to the delay queue of its next redelivery, or to _error once it had
 * them all. Decided here, once; the statistics and the loop's routing follow the outcome. */
static void fail_transient(ctxd__delivery_t *d, const char *fault_type, const char *reason) {
  int delayed = d->redeliveries < d->ep->nredelivery;
  set_outcome(d, delayed ? CTXD__OUTCOME_DELAY : CTXD__OUTCOME_ERROR, fault_type, reason);
}

/* Checks m against its contract (types without one pass) and upcasts it to the version
 * its handler asked for. 0, or the outcome is set and m->handler cleared. */
static int admit(struct ctxd_msg_s *m, const ctxd__contracts_t *contracts) {
  char err[512];
  const ctxd__handler_t *hd = m->handler;
  const ctxd__contract_t *k = ctxd__contracts_find(contracts, hd->type);
  int rc = k != NULL ? ctxd__contract_validate(k, m->env.message, err, sizeof err) : 0;
  if (rc == 0 && hd->upcast_to != NULL)
    rc = ctxd__contracts_upcast(contracts, hd->type, hd->upcast_to, m->env.message, &m->message, err,
                                sizeof err);
  else if (rc == 0)
    m->message = json_incref(m->env.message);
  if (rc == 0) return 0;
  if (rc == CTXD_ENOMEM)
    set_outcome(m->delivery, CTXD__OUTCOME_REQUEUE, NULL, err);
  else
    set_outcome(m->delivery, CTXD__OUTCOME_ERROR,
                rc == CTXD_EVALIDATION ? "ctxd.ContractViolation" : "ctxd.UpcastFailed", err);
  ctxd__log_fields_t f = ctxd__msg_log_fields(m);
  ctxd__logf(CTXD__LOG_WARN, "host", &f, "message refused at the boundary: %s", err);
  m->handler = NULL;
  return rc;
}

/* The delayed redeliveries message d had. The copy a delay queue hands back carries ctxd's
 * count in its AMQP headers (ctxd never re-serialises the envelope), so that count comes
 * first; else the envelope's, a MassTransit service's own. A count someone else wrote is
 * only a hint: never below 0, never past the last interval. */
static int redeliveries_of(const ctxd__delivery_t *d, const ctxd__envelope_t *env) {
  int64_t n = 0;
  const amqp_basic_properties_t *p = &d->msg.properties;
  if (!((p->_flags & AMQP_BASIC_HEADERS_FLAG) &&
        ctxd__amqptable_get_int(&p->headers, CTXD__REDELIVERY_HEADER, &n))) {
    const json_t *count = ctxd__json_get_ci(env->headers, CTXD__REDELIVERY_HEADER);
    n = json_is_integer(count)  ? json_integer_value(count)
        : json_is_string(count) ? strtoll(json_string_value(count), NULL, 10)
                                : 0;
  }
  return n < 0 ? 0 : n > CTXD__MAX_REDELIVERIES ? CTXD__MAX_REDELIVERIES : (int)n;
}

/* Decodes every delivery and finds its handler; what cannot be handled gets its outcome
 * now. Returns how many remain to be handled. */
static size_t prepare(ctxd__batch_t *b, struct ctxd_msg_s *msgs, const ctxd__contracts_t *contracts) {
  ctxd__decode_limits_t limits = CTXD__DECODE_LIMITS(b->ep->env->cfg->max_message_bytes);
  size_t todo = 0;
  for (size_t i = 0; i < b->n; i++) {
    ctxd__delivery_t *d = b->items[i];
    struct ctxd_msg_s *m = &msgs[i];
    char err[512];
    m->delivery = d;
    int rc = ctxd__envelope_decode(d->msg.body.bytes, d->msg.body.len, &d->msg.properties, &limits, &m->env,
                                   err, sizeof err);
    if (rc == CTXD_ENOMEM) {
      set_outcome(d, CTXD__OUTCOME_REQUEUE, NULL, err);
      continue;
    }
    if (rc != 0) {
      set_outcome(d, CTXD__OUTCOME_ERROR, rc == CTXD_ETOOBIG ? "ctxd.MessageTooLarge" : "ctxd.DecodeError",
                  err);
      char queue[256];
      ctxd__topology_side(queue, sizeof queue, b->ep->name, CTXD__SIDE_ERROR, 0);
      ctxd__logf(CTXD__LOG_WARN, "host", &(ctxd__log_fields_t){.endpoint = b->ep->name},
                 "undecodable message moved to %s: %s", queue, err);
      continue;
    }
    d->redeliveries = redeliveries_of(d, &m->env);
    m->handler = ctxd__endpoint_find(b->ep, m->env.message_types, m->env.nmessage_types);
    if (m->handler == NULL) {
      snprintf(err, sizeof err, "no handler on endpoint '%s' for message type '%s'", b->ep->name,
               m->env.message_types[0]);
      set_outcome(d, CTXD__OUTCOME_SKIPPED, NULL, err);
      continue;
    }
    if (admit(m, contracts) != 0) continue;
    todo++;
  }
  return todo;
}

/* The messages one transaction runs: a whole batch, or one message of it run alone. */
typedef struct {
  ctxd__endpoint_t *ep;
  struct ctxd_msg_s *msgs;
  size_t n;
  ctxd__outrows_t *rows; /* the batch's list, where committed outbox rows go */
  ctxd__watch_t *watch;  /* the worker's: what it runs now */
  int suspect;           /* one redelivered message: its transaction clears its attempts */
} span_t;

/* Inserts the inbox rows of every decodable message in one statement and marks those
 * inserted as fresh; the others were handled before (or earlier in this batch). */
static int inbox_insert(PGconn *c, const span_t *s, char *err, size_t errlen) {
  struct ctxd_msg_s *msgs = s->msgs;
  size_t cap = 3 + s->n * 38, len = 0;
  char *ids = malloc(cap);
  if (ids == NULL) return CTXD_ENOMEM;
  ids[len++] = '{';
  for (size_t i = 0; i < s->n; i++) {
    msgs[i].fresh = 0;
    if (msgs[i].handler == NULL) continue;
    if (len > 1) ids[len++] = ',';
    memcpy(ids + len, msgs[i].env.message_id, 36);
    len += 36;
  }
  ids[len++] = '}';
  ids[len] = '\0';
  const char *params[] = {s->ep->name, ids};
  int code;
  PGresult *r = ctxd__db_exec(c, INBOX_INSERT, 2, params, &code, err, errlen);
  free(ids);
  if (r == NULL) return code;
  /* the rows come back in the order of the array (not a promise of the server's: any
   * order is matched, the usual one in a single pass) */
  size_t at = 0;
  for (int row = 0; row < PQntuples(r); row++) {
    const char *id = PQgetvalue(r, row, 0);
    for (size_t k = 0; k < s->n; k++) {
      size_t i = (at + k) % s->n;
      if (msgs[i].handler != NULL && !msgs[i].fresh && memcmp(msgs[i].env.message_id, id, 37) == 0) {
        msgs[i].fresh = 1;
        at = i + 1;
        break;
      }
    }
  }
  PQclear(r);
  return 0;
}

#define ATTEMPTS_FORGET "DELETE FROM ctxd.attempts WHERE endpoint = $1 AND message_id = $2"

/* A suspect's transaction settles it, whatever its handler decides: its attempts are
 * forgotten with it, and stay counted if the host dies first. */
static int begin(PGconn *c, const span_t *s, char *err, size_t errlen) {
  int rc = ctxd__db_queue(c, "BEGIN", 0, NULL, NULL, NULL, err, errlen);
  const char *params[] = {s->ep->name, s->msgs[0].env.message_id};
  if (rc == 0 && s->suspect) rc = ctxd__db_queue(c, ATTEMPTS_FORGET, 2, params, NULL, NULL, err, errlen);
  if (rc == 0) rc = inbox_insert(c, s, err, errlen);
  return rc;
}

/* Frees the outbox rows a rolled-back attempt wrote. */
static void drop_rows(struct ctxd_msg_s *m) {
  ctxd__outrows_free(&m->rows);
  m->scheduled_ms = 0;
}

/* Calls the handler of ms[0..n) (a per-message handler: n == 1; a batch handler: every
 * message it takes in one call) in the open transaction. The call's time is shared out
 * evenly among its messages. */
static ctxd_handler_result_t call_handler(PGconn *c, struct ctxd_msg_s **ms, size_t n, struct ctxd_tx_s *tx,
                                          ctxd__watch_t *watch) {
  struct ctxd_msg_s *m = ms[0];
  const ctxd__endpoint_env_t *env = m->delivery->ep->env;
  for (size_t i = 0; i < n; i++) drop_rows(ms[i]);
  memset(tx, 0, sizeof *tx);
  tx->conn = c;
  tx->msg = m;
  tx->call = ms;
  tx->ncall = n;
  tx->sweep_grace_ms = env->cfg->outbox_sweep_grace_ms;
  tx->contracts = env->contracts;
  const ctxd__handler_t *hd = m->handler;
  ctxd__watch_begin(watch, hd->plugin->name, m->delivery->ep->name, hd->type, m->env.message_id);
  int64_t t0 = ctxd__clock_us();
  ctxd_handler_result_t r = hd->batch_fn != NULL
                                ? hd->batch_fn(tx, (const ctxd_msg_t *const *)ms, n, hd->data)
                                : hd->fn(tx, m, hd->data);
  int64_t share = (ctxd__clock_us() - t0) / (int64_t)n;
  ctxd__watch_end(watch);
  for (size_t i = 0; i < n; i++) {
    ms[i]->handler_us += share;
    ms[i]->ran = ms[i]->called = 1;
  }
  /* a handler that ignored a failed statement cannot commit: the transaction is aborted */
  if (r == CTXD_HANDLER_OK && tx->failed)
    r = tx->fail_code == CTXD_ECONFLICT ? CTXD_HANDLER_RETRY : CTXD_HANDLER_FAIL;
  return r;
}

/* The type a handler's messages reach it as: older versions arrive upcast. */
static const char *target_type(const ctxd__handler_t *hd) {
  return hd->upcast_to != NULL ? hd->upcast_to : hd->type;
}

/* The messages of s's next handler call in the fast path, from msgs[i] (fresh, its
 * handler not called yet) into out: msgs[i] alone for a per-message handler; for a batch
 * handler every fresh message from i on that it handles as the same type, in delivery
 * order (older versions upcast to it included). A plugin may register one callback for
 * several types: one call never mixes them, as the ABI promises. How many. */
static size_t next_call(const span_t *s, size_t i, struct ctxd_msg_s **out) {
  const ctxd__handler_t *hd = s->msgs[i].handler;
  out[0] = &s->msgs[i];
  if (hd->batch_fn == NULL) return 1;
  size_t n = 1;
  for (size_t j = i + 1; j < s->n; j++) {
    const ctxd__handler_t *h = s->msgs[j].handler;
    if (s->msgs[j].fresh && h != NULL && h->batch_fn == hd->batch_fn && h->data == hd->data &&
        strcmp(target_type(h), target_type(hd)) == 0)
      out[n++] = &s->msgs[j];
  }
  return n;
}

ctxd__log_fields_t ctxd__msg_log_fields(const struct ctxd_msg_s *m) {
  /* a MassTransit publisher writes its trace as MT-Activity-Id, the same W3C id */
  const char *tp = json_string_value(ctxd__json_get_ci(m->env.headers, "traceparent"));
  return (ctxd__log_fields_t){
      .endpoint = m->delivery->ep->name,
      .message_id = m->env.message_id,
      .correlation_id = m->env.correlation_id,
      .traceparent =
          tp != NULL ? tp : json_string_value(ctxd__json_get_ci(m->env.headers, CTXD__ACTIVITY_HEADER)),
  };
}

static void log_fault(const struct ctxd_msg_s *m, const struct ctxd_tx_s *tx, ctxd_handler_result_t r) {
  ctxd__log_fields_t f = ctxd__msg_log_fields(m);
  const char *why = tx->fault_message[0] ? tx->fault_message : tx->error[0] ? tx->error : "no reason given";
  ctxd__logf(CTXD__LOG_WARN, m->handler->plugin->name, &f, "handler %s (attempt %d): %s",
             r == CTXD_HANDLER_RETRY ? "asked for a retry" : "failed", m->delivery->retries + 1, why);
}

/* Writes the Fault<T> of m, whose failure is final (outcome ERROR, decided about its
 * handler), into the outbox of c's open transaction, so that the fault and the decision
 * commit together. 0, or the SQL error's code (its text in err). MassTransit faults only
 * the last attempt (RetryConsumeContext holds the faults of the others back). */
static int write_fault(PGconn *c, struct ctxd_msg_s *m, char *err, size_t errlen) {
  const ctxd__delivery_t *d = m->delivery;
  const ctxd__config_t *cfg = d->ep->env->cfg;
  char id[37], exchange[256], stack[768];
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  /* the same failure decided again (its original came back: a copy not confirmed, a
   * stale batch) writes the same Fault<T>, which consumers' inboxes drop */
  char name[512];
  snprintf(name, sizeof name, "fault:%s:%s:%d", d->ep->name, m->env.message_id, d->redeliveries);
  ctxd__uuid_derive(name, id);
  ctxd__forward_stack_trace(stack, sizeof stack, d);
  ctxd__fault_event_t f = {
      .in = &m->env,
      .message_type = m->handler->type,
      .fault_id = id,
      .exception_type = d->fault_type != NULL ? d->fault_type : "ctxd.Fault",
      .reason = d->reason != NULL ? d->reason : "",
      .stack_trace = stack,
      .source = m->handler->plugin->name,
      .broker_url = cfg->broker_urls[0],
      .endpoint = d->ep->name,
      .retries = d->retries,
      .redeliveries = d->redeliveries,
      .now = &now,
  };
  int event;
  char *amqp_headers;
  char *text = ctxd__fault_event_encode(&f, exchange, sizeof exchange, &event, &amqp_headers);
  if (text == NULL) { /* the message itself was written once: only a name can be at fault */
    ctxd__log_fields_t lf = ctxd__msg_log_fields(m);
    ctxd__logf(CTXD__LOG_WARN, "host", &lf, "no Fault<%s> for this message: an address or name does not fit",
               m->handler->type);
    return 0;
  }
  char type[512];
  ctxd__fault_event_urn(type, sizeof type, m->handler->type);
  /* a fault or response address is the requester's: published to as it is, never
   * declared; Direct Reply-To through the default exchange, to the request's reply_to */
  int reply_to = !event && strcmp(exchange, CTXD__REPLY_TO) == 0;
  ctxd__outrow_spec_t w = {.id = id,
                           .exchange = reply_to ? "" : exchange,
                           .message_type = type + strlen(CTXD__URN_PREFIX),
                           .body = text,
                           .routing_key = reply_to ? m->env.reply_to : NULL,
                           .correlation_id = m->env.correlation_id,
                           .headers = amqp_headers,
                           .no_declare = !event,
                           .event = event};
  int rc = reply_to && (m->env.reply_to == NULL || *m->env.reply_to == '\0')
               ? 0 /* nowhere to answer: the request client times out, as with MassTransit */
               : ctxd__outrow_insert(c, &m->rows, cfg->outbox_sweep_grace_ms, &w, err, errlen);
  free(text);
  free(amqp_headers);
  return rc;
}

/* m's failure became final outside a transaction (its own could not commit, or it is a
 * poison message): its Fault<T> commits in one of its own. Rows committed go to rows; a
 * failure is logged. */
static void commit_fault(PGconn *c, ctxd__outrows_t *rows, struct ctxd_msg_s *m) {
  char err[512] = "";
  int rc = ctxd__db_run(c, "BEGIN", 0, NULL, err, sizeof err);
  if (rc == 0) rc = write_fault(c, m, err, sizeof err);
  if (rc == 0) rc = ctxd__db_run(c, "COMMIT", 0, NULL, err, sizeof err);
  if (rc == 0) {
    ctxd__outrows_splice(rows, &m->rows);
    return;
  }
  ctxd__db_run(c, "ROLLBACK", 0, NULL, NULL, 0);
  drop_rows(m);
  ctxd__log_fields_t f = ctxd__msg_log_fields(m);
  ctxd__logf(CTXD__LOG_WARN, "host", &f, "the Fault<%s> of this message was not written: %s",
             m->handler->type, err);
}

#define RETRY_RESOLVED                                                                                       \
  "WITH u AS (UPDATE ctxd.failed_messages SET status = 'resolved', status_at = now(), status_by = $3 "       \
  "WHERE id = $2::bigint AND endpoint = $1 AND status = 'retry_requested' RETURNING id) "                    \
  "INSERT INTO ctxd.failed_actions (failed_id, action, actor) SELECT id, 'resolved', $3 FROM u"

/* Marks resolved, in s's transaction, the failed message an operator's retry of which
 * commits now without failing: handled, or a duplicate (handled by an earlier copy). The
 * row is the one ctxd-Retry-Of names: the store and the workers may read a message's id
 * differently (a raw JSON message's AMQP id or MessageId header). */
static int resolve_retries(PGconn *c, const span_t *s, char *err, size_t errlen) {
  char actor[300] = "";
  for (size_t i = 0; i < s->n; i++) {
    const struct ctxd_msg_s *m = &s->msgs[i];
    const amqp_basic_properties_t *p = &m->delivery->msg.properties;
    int64_t of;
    if (m->handler == NULL || m->delivery->outcome != CTXD__OUTCOME_NONE ||
        !(p->_flags & AMQP_BASIC_HEADERS_FLAG) ||
        !ctxd__amqptable_get_int(&p->headers, CTXD__RETRY_OF_HEADER, &of))
      continue;
    if (actor[0] == '\0') ctxd__ingest_actor(actor, sizeof actor);
    char row[24];
    snprintf(row, sizeof row, "%lld", (long long)of);
    const char *params[] = {s->ep->name, row, actor};
    int rc = ctxd__db_queue(c, RETRY_RESOLVED, 3, params, NULL, NULL, err, errlen);
    if (rc != 0) return rc;
  }
  return 0;
}

/* Ends the transaction: COMMIT (with what is still queued in a pipeline), and on success
 * hands the committed outbox rows to the batch. */
static int commit(PGconn *c, const span_t *s, char *err, size_t errlen) {
  int rc = resolve_retries(c, s, err, errlen);
  if (rc == 0) rc = ctxd__db_queue(c, "COMMIT", 0, NULL, NULL, NULL, err, errlen);
  int end = ctxd__db_pipeline_end(c, err, errlen);
  if (rc == 0) rc = end;
  if (rc != 0) return rc;
  int handled = 0;
  for (size_t i = 0; i < s->n; i++) handled |= s->msgs[i].fresh;
  if (handled) ctxd__fault_point("after-commit");
  /* in the order they were written: the order the broker must see them in */
  int64_t due = 0;
  for (size_t i = 0; i < s->n; i++) {
    ctxd__outrows_splice(s->rows, &s->msgs[i].rows);
    if (s->msgs[i].scheduled_ms != 0 && (due == 0 || s->msgs[i].scheduled_ms < due))
      due = s->msgs[i].scheduled_ms;
    s->msgs[i].scheduled_ms = 0;
  }
  /* a message scheduled to leave before the relay's next tick: it wakes for it */
  const ctxd__endpoint_env_t *env = s->ep->env;
  if (due != 0 && env->scheduled != NULL) env->scheduled(env->scheduled_data, due);
  return 0;
}

static int rollback(PGconn *c, const span_t *s, int rc) {
  /* queued statements may still write into the rows dropped below: read them first */
  ctxd__db_pipeline_end(c, NULL, 0);
  ctxd__db_run(c, "ROLLBACK", 0, NULL, NULL, 0);
  for (size_t i = 0; i < s->n; i++) drop_rows(&s->msgs[i]);
  return rc == CTXD_ECLOSED || PQstatus(c) == CONNECTION_BAD ? CTXD_ECLOSED : rc;
}

/* All handlers in one transaction without savepoints: the common case, and the fast one.
 * Pipelined: statements whose results the handlers do not read go out without waiting,
 * so the batch costs a few round trips, not one per statement; a statement that fails
 * there fails the batch, and the careful path runs it again where each call reports its
 * own result. Returns 0 when committed, CTXD_ECLOSED on a lost connection, CTXD_ESTATE
 * when a handler did not succeed (rolled back: run the careful path). */
static int run_fast(PGconn *c, const span_t *s) {
  char err[512];
  struct ctxd_msg_s **call = malloc(s->n * sizeof *call);
  if (call == NULL) return CTXD_ESTATE; /* the careful path calls one message at a time */
  ctxd__db_pipeline_begin(c);
  int rc = begin(c, s, err, sizeof err);
  for (size_t i = 0; i < s->n; i++) s->msgs[i].called = 0;
  for (size_t i = 0; rc == 0 && i < s->n; i++) {
    if (!s->msgs[i].fresh || s->msgs[i].called) continue;
    struct ctxd_tx_s tx;
    if (call_handler(c, call, next_call(s, i, call), &tx, s->watch) != CTXD_HANDLER_OK)
      rc = tx.fail_code == CTXD_ECLOSED ? CTXD_ECLOSED : CTXD_ESTATE;
  }
  free(call);
  if (rc == 0) rc = commit(c, s, err, sizeof err);
  if (rc != 0) {
    rc = rollback(c, s, rc);
    return rc == CTXD_ECLOSED ? rc : CTXD_ESTATE;
  }
  return 0;
}

/* Runs one message under a savepoint, retrying a transient failure up to the endpoint's
 * immediate_retries; a message that still fails loses only its own work (and its inbox
 * row, so its redelivery runs). */
static int run_one(PGconn *c, const span_t *s, struct ctxd_msg_s *m, char *err, size_t errlen) {
  ctxd__endpoint_t *ep = s->ep;
  ctxd__delivery_t *d = m->delivery;
  struct ctxd_tx_s tx;
  ctxd_handler_result_t r = CTXD_HANDLER_RETRY;
  for (;;) {
    int rc = ctxd__db_run(c, "SAVEPOINT m", 0, NULL, err, errlen);
    if (rc != 0) return rc;
    r = call_handler(c, &m, 1, &tx, s->watch); /* a batch handler too: its messages fail alone */
    if (tx.fail_code == CTXD_ECLOSED) return CTXD_ECLOSED;
    if (r == CTXD_HANDLER_OK) return ctxd__db_run(c, "RELEASE SAVEPOINT m", 0, NULL, err, errlen);
    log_fault(m, &tx, r);
    drop_rows(m);
    if ((rc = ctxd__db_run(c, "ROLLBACK TO SAVEPOINT m", 0, NULL, err, errlen)) != 0) return rc;
    if (r != CTXD_HANDLER_RETRY || d->retries >= ep->settings.immediate_retries) break;
    d->retries++;
  }
  const char *params[] = {ep->name, m->env.message_id};
  int rc = ctxd__db_run(c, "DELETE FROM ctxd.inbox WHERE endpoint = $1 AND message_id = $2", 2, params, err,
                        errlen);
  m->fresh = 0;
  const char *why = tx.fault_message[0] ? tx.fault_message : tx.error[0] ? tx.error : "handler failed";
  const char *type = tx.fault_type[0] ? tx.fault_type : "ctxd.HandlerFailed";
  if (r == CTXD_HANDLER_RETRY)
    fail_transient(d, type, why);
  else
    set_outcome(d, CTXD__OUTCOME_ERROR, type, why);
  blame(d, m->handler);
  if (rc == 0 && d->outcome == CTXD__OUTCOME_ERROR) rc = write_fault(c, m, err, errlen);
  return rc;
}

/* One savepoint per message, so a failing handler loses only its own work. 0, or the
 * code of the failure that rolled the transaction back (its text in err). */
static int run_careful(PGconn *c, const span_t *s, char *err, size_t errlen) {
  int rc = begin(c, s, err, errlen);
  for (size_t i = 0; rc == 0 && i < s->n; i++)
    if (s->msgs[i].fresh) rc = run_one(c, s, &s->msgs[i], err, errlen);
  if (rc == 0) rc = commit(c, s, err, errlen);
  return rc != 0 ? rollback(c, s, rc) : 0;
}

/* What /readyz and /metrics say of ep's database, from a worker's last attempt. */
static void set_db_ok(ctxd__endpoint_t *ep, int ok) {
  pthread_mutex_lock(&ep->mu);
  ep->stats.db_ok = ok;
  pthread_mutex_unlock(&ep->mu);
}

static int ensure_conn(PGconn **conn, ctxd__endpoint_t *ep) {
  const ctxd__config_t *cfg = ep->env->cfg;
  int backoff = 100, failed = 0;
  for (;;) {
    char err[512];
    if (ctxd__db_keep(conn, cfg, err, sizeof err) == 0) {
      if (failed) {
        set_db_ok(ep, 1);
        ctxd__notify("STATUS=consuming");
      }
      return 0;
    }
    /* said now, not when the batch at last commits: the worker waits here until then */
    if (!failed) set_db_ok(ep, 0);
    failed = 1;
    if (ctxd__endpoint_stopping(ep)) return CTXD_ECLOSED;
    ctxd__log(CTXD__LOG_WARN, "host", "endpoint '%s': database unreachable, retrying in %d ms: %s", ep->name,
              backoff, err);
    ctxd__notify("STATUS=database unreachable; retrying");
    ctxd__endpoint_pause(ep, backoff);
    if (ctxd__endpoint_stopping(ep)) return CTXD_ECLOSED;
    backoff = backoff * 2 > 5000 ? 5000 : backoff * 2;
  }
}

/* Whether m's handler decided its outcome, so that its time counts once per message. A
 * copy whose handler ran in a rolled-back attempt and then found its inbox row taken by
 * another batch ends a duplicate, and an abandoned message runs again: neither counts. */
static int handler_decided(const struct ctxd_msg_s *m) {
  ctxd__outcome_t o = m->delivery->outcome;
  return m->ran &&
         ((o == CTXD__OUTCOME_ACK && m->fresh) || o == CTXD__OUTCOME_ERROR || o == CTXD__OUTCOME_DELAY);
}

/* A transaction the database refuses for its data may fail the same way every time
 * (a constraint checked at COMMIT, a conflict that repeats): after this many attempts its
 * messages run alone. */
#define DATA_ATTEMPTS 3

/* Whether the database refused the transaction for what it holds (a constraint, a
 * conflict, an error a deferred trigger raised), not because the server cannot work right
 * now: connection (08), resources (53), an operator (57), the system (58, XX), or a
 * failure that carried no SQLSTATE. (A read-only standby, 25006, comes as CTXD_ECLOSED.) */
static int data_failure(PGconn *c, int rc) {
  if (rc != CTXD_EDB && rc != CTXD_ECONFLICT) return 0;
  const char *state = ctxd__db_sqlstate(c);
  static const char *const server[] = {"08", "53", "57", "58", "XX"};
  if (state[0] == '\0') return 0;
  for (size_t i = 0; i < sizeof server / sizeof server[0]; i++)
    if (strncmp(state, server[i], 2) == 0) return 0;
  return 1;
}

/* Clears what an attempt decided: it was rolled back, or is about to run again. */
static void reset_outcomes(const span_t *s) {
  for (size_t i = 0; i < s->n; i++) {
    if (s->msgs[i].handler == NULL) continue;
    set_outcome(s->msgs[i].delivery, CTXD__OUTCOME_NONE, NULL, NULL);
    s->msgs[i].delivery->retries = 0;
  }
}

/* Runs s's transaction until it commits, 200 ms between attempts. A lost connection or a
 * failure of the server (disk full, say) is tried again without limit: it is not the
 * messages' fault. A refusal for the data ends after DATA_ATTEMPTS attempts. 0 when
 * committed; otherwise the failure's code (its text in err), or CTXD_ECLOSED when the
 * endpoint stops, with every outcome of s cleared: nothing of the attempt committed. */
static int run_attempts(const span_t *s, PGconn **conn, char *err, size_t errlen) {
  for (int data_failures = 0;;) {
    reset_outcomes(s);
    if (ensure_conn(conn, s->ep) != 0) return CTXD_ECLOSED;
    int rc = run_fast(*conn, s);
    if (rc == CTXD_ESTATE) rc = run_careful(*conn, s, err, errlen);
    if (rc == 0) return 0;
    if (ctxd__endpoint_stopping(s->ep) ||
        (rc != CTXD_ECLOSED && data_failure(*conn, rc) && ++data_failures >= DATA_ATTEMPTS)) {
      reset_outcomes(s);
      return rc;
    }
    /* a lost connection is reported when connecting again fails; a read-only server lets
     * the new connection in, so only this says why nothing commits */
    if (rc == CTXD_ECLOSED && strcmp(ctxd__db_sqlstate(*conn), "25006") == 0)
      ctxd__log(CTXD__LOG_WARN, "host",
                "endpoint '%s': the database refused a write as read-only (SQLSTATE 25006: a standby, not "
                "the primary); connecting again",
                s->ep->name);
    else if (rc != CTXD_ECLOSED)
      ctxd__log(CTXD__LOG_WARN, "host", "endpoint '%s': transaction of %zu message(s) failed, will retry: %s",
                s->ep->name, s->n, err);
    ctxd__endpoint_pause(s->ep, 200); /* a connection lost in every attempt: no busy loop */
  }
}

/* Sets m aside the way a failed handler's message is: a delayed redelivery, then _error
 * with its Fault<T> (written on c, its rows to rows). */
static void set_aside(PGconn *c, ctxd__outrows_t *rows, struct ctxd_msg_s *m, const char *err) {
  m->fresh = 0; /* its inbox row went with the rollback */
  ctxd__log_fields_t f = ctxd__msg_log_fields(m);
  ctxd__logf(CTXD__LOG_WARN, "host", &f, "message cannot be committed (%d attempts): %s", DATA_ATTEMPTS, err);
  fail_transient(m->delivery, "ctxd.CommitFailed", err);
  if (m->delivery->outcome == CTXD__OUTCOME_ERROR) {
    blame(m->delivery, m->handler);
    commit_fault(c, rows, m);
  }
}

/* The batch's transaction keeps failing because of its data: each message runs in a
 * transaction of its own, so that only one that cannot commit is set aside. 0, or
 * CTXD_ECLOSED when the endpoint stops first (what did not commit is then abandoned). */
static int run_alone(const span_t *all, PGconn **conn) {
  ctxd__log(CTXD__LOG_WARN, "host", "endpoint '%s': running the %zu messages of a failing batch one by one",
            all->ep->name, all->n);
  for (size_t i = 0; i < all->n; i++) {
    struct ctxd_msg_s *m = &all->msgs[i];
    if (m->handler == NULL) continue;
    span_t one = {all->ep, m, 1, all->rows, all->watch, 0};
    char err[512] = "";
    int rc = run_attempts(&one, conn, err, sizeof err);
    if (rc != 0 && (rc == CTXD_ECLOSED || ctxd__endpoint_stopping(all->ep))) return CTXD_ECLOSED;
    if (rc != 0) {
      set_aside(*conn, all->rows, m, err);
    } else if (m->delivery->outcome == CTXD__OUTCOME_NONE) {
      /* settled now: a stop before the next message must not abandon this one */
      set_outcome(m->delivery, CTXD__OUTCOME_ACK, NULL, NULL);
    }
  }
  return 0;
}

/* Runs the messages of s that are not suspects: one transaction, else each alone. 0, or
 * CTXD_ECLOSED when the endpoint stops first. */
static int run_span(const span_t *s, size_t todo, PGconn **conn) {
  char err[512] = "";
  int rc = run_attempts(s, conn, err, sizeof err);
  if (rc == 0 || rc == CTXD_ECLOSED || ctxd__endpoint_stopping(s->ep)) return rc;
  if (todo > 1) return run_alone(s, conn);
  for (size_t i = 0; i < s->n; i++) /* alone already */
    if (s->msgs[i].handler != NULL) set_aside(*conn, s->rows, &s->msgs[i], err);
  return 0;
}

#define ATTEMPT_COUNT                                                                                        \
  "INSERT INTO ctxd.attempts AS a (endpoint, message_id, attempts) VALUES ($1, $2, 2) "                      \
  "ON CONFLICT (endpoint, message_id) DO UPDATE SET attempts = a.attempts + 1, last_at = now() "             \
  "RETURNING attempts, EXISTS (SELECT 1 FROM ctxd.inbox WHERE endpoint = $1 AND message_id = $2)"

/* Counts the run of suspect m before it starts, committed on its own so that the count
 * outlives a host the run ends. The first delivery left no row (a commit per message would
 * cost every message): a suspect's first run is its second attempt. 0 with
 * m->delivery->attempts and *handled (its inbox row exists: its handler will not run), or
 * CTXD_ECLOSED when the endpoint stops first. */
static int count_attempt(PGconn **conn, struct ctxd_msg_s *m, int *handled) {
  ctxd__endpoint_t *ep = m->delivery->ep;
  const char *params[] = {ep->name, m->env.message_id};
  for (;;) {
    if (ensure_conn(conn, ep) != 0) return CTXD_ECLOSED;
    char err[512];
    int code;
    PGresult *r = ctxd__db_exec(*conn, ATTEMPT_COUNT, 2, params, &code, err, sizeof err);
    if (r != NULL) {
      m->delivery->attempts = atoi(PQgetvalue(r, 0, 0));
      *handled = PQgetvalue(r, 0, 1)[0] == 't';
      PQclear(r);
      return 0;
    }
    if (ctxd__endpoint_stopping(ep)) return CTXD_ECLOSED;
    ctxd__log(CTXD__LOG_WARN, "host", "endpoint '%s': cannot count an attempt, will retry: %s", ep->name,
              err);
    ctxd__endpoint_pause(ep, 200);
  }
}

/* Sets aside suspect m, which ended the host in every run it had: its handler does not run
 * again. Its count stays (and expires with the inbox): should the copy to _error not be
 * confirmed, the next delivery is set aside at once instead of running again. Its
 * Fault<T> is committed on its own: no transaction decided this. */
static void set_poisoned(PGconn *c, ctxd__outrows_t *rows, struct ctxd_msg_s *m) {
  ctxd__delivery_t *d = m->delivery;
  char why[512];
  snprintf(why, sizeof why,
           "the host ended (a crash, or an exit at handler_timeout_ms) in each of the %d attempts to "
           "handle this message, max_attempts %lld: set aside without running its handler again",
           d->attempts - 1, (long long)d->ep->settings.max_attempts);
  set_outcome(d, CTXD__OUTCOME_ERROR, "ctxd.PoisonMessage", why);
  blame(d, m->handler);
  commit_fault(c, rows, m);
  ctxd__log_fields_t f = ctxd__msg_log_fields(m);
  ctxd__logf(CTXD__LOG_WARN, m->handler->plugin->name, &f, "poison message (type %s) moved aside: %s",
             m->handler->type, why);
}

/* Takes the host's suspect lock: suspects run one at a time across every endpoint, so a
 * host a suspect ends counts an attempt for that one only. A suspect that runs past its
 * endpoint's handler_timeout_ms (it is reported as stuck) stops holding the others back:
 * the wait ends then, and this one runs without the lock. 1 when taken. */
static int suspect_lock(const ctxd__endpoint_t *ep) {
  pthread_mutex_t *mu = ep->env->suspect_mu;
  int64_t limit = ep->settings.handler_timeout_ms;
  if (limit == 0) return pthread_mutex_lock(mu) == 0;
  struct timespec until = ctxd__clock_deadline((int)limit);
  return pthread_mutex_timedlock(mu, &until) == 0;
}

/* Runs suspect m in a transaction of its own, after counting the attempt (under the
 * suspect lock). 0, or CTXD_ECLOSED when the endpoint stops first. */
static int run_suspect(const span_t *one, PGconn **conn, int *poisoned) {
  ctxd__endpoint_t *ep = one->ep;
  struct ctxd_msg_s *m = &one->msgs[0];
  int handled = 0;
  int locked = suspect_lock(ep);
  int rc = count_attempt(conn, m, &handled);
  if (rc == 0 && !handled && m->delivery->attempts > ep->settings.max_attempts) {
    set_poisoned(*conn, one->rows, m);
    *poisoned = 1;
  } else if (rc == 0 && (rc = run_span(one, 1, conn)) == 0 && m->delivery->outcome != CTXD__OUTCOME_NONE &&
             m->delivery->outcome != CTXD__OUTCOME_ACK) {
    /* set aside after failed commits: its transaction, which forgets the count, never
     * committed */
    const char *params[] = {ep->name, m->env.message_id};
    ctxd__db_run(*conn, ATTEMPTS_FORGET, 2, params, NULL, 0);
  }
  if (locked) pthread_mutex_unlock(ep->env->suspect_mu);
  return rc;
}

/* Moves b's redelivered deliveries after the others, each group in its order (pointers:
 * what the decoded messages point into stays where it is); returns how many there are. */
static size_t redelivered_last(ctxd__batch_t *b) {
  size_t k = 0;
  for (size_t i = 0; i < b->n; i++) k += b->items[i]->redelivered != 0;
  if (k == 0 || k == b->n) return k;
  ctxd__delivery_t **tmp = malloc(k * sizeof *tmp);
  if (tmp == NULL) return 0; /* they run with the others: slower to isolate, not lost */
  size_t kept = 0, moved = 0;
  for (size_t i = 0; i < b->n; i++) {
    if (b->items[i]->redelivered)
      tmp[moved++] = b->items[i];
    else
      b->items[kept++] = b->items[i];
  }
  memcpy(b->items + kept, tmp, k * sizeof *tmp);
  free(tmp);
  return k;
}

void ctxd__batch_run(ctxd__batch_t *b, PGconn **conn, ctxd__watch_t *watch) {
  ctxd__endpoint_t *ep = b->ep;
  int64_t started = ctxd__clock_us();
  struct ctxd_msg_s *msgs = calloc(b->n, sizeof *msgs);
  if (msgs == NULL) {
    for (size_t i = 0; i < b->n; i++) set_outcome(b->items[i], CTXD__OUTCOME_REQUEUE, NULL, "out of memory");
    return;
  }
  /* a message the broker delivered before may be what ended the last host: it never
   * shares a transaction, nor a crash, with the others */
  size_t nredelivered = redelivered_last(b);
  size_t todo = prepare(b, msgs, ep->env->contracts), others_todo = 0;
  for (size_t i = 0; i < b->n - nredelivered; i++) others_todo += msgs[i].handler != NULL;
  int rc = 0, poisoned = 0;
  if (others_todo > 0) {
    span_t others = {ep, msgs, b->n - nredelivered, &b->rows, watch, 0};
    rc = run_span(&others, others_todo, conn);
  }
  for (size_t i = b->n - nredelivered; rc == 0 && i < b->n; i++) {
    if (msgs[i].handler == NULL) continue; /* its outcome is set already */
    span_t one = {ep, &msgs[i], 1, &b->rows, watch, 1};
    int p = 0;
    rc = run_suspect(&one, conn, &p);
    poisoned += p;
  }
  for (size_t i = 0; todo > 0 && i < b->n; i++) {
    ctxd__delivery_t *d = msgs[i].delivery;
    if (d->outcome != CTXD__OUTCOME_NONE) continue;
    if (msgs[i].handler != NULL && rc != 0)
      set_outcome(d, CTXD__OUTCOME_ABANDON, NULL, NULL);
    else
      set_outcome(d, CTXD__OUTCOME_ACK, NULL, NULL);
  }
  pthread_mutex_lock(&ep->mu);
  ctxd__histogram_observe(&ep->stats.batch_seconds, (double)(ctxd__clock_us() - started) / 1e6);
  ctxd__histogram_observe(&ep->stats.batch_size, (double)b->n);
  ep->stats.db_ok = ctxd__db_usable(*conn);
  ep->stats.poisoned += (uint64_t)poisoned;
  for (size_t i = 0; i < b->n; i++) {
    ctxd__delivery_t *d = msgs[i].delivery;
    if (handler_decided(&msgs[i]))
      ctxd__histogram_observe(&ep->stats.handler_seconds, (double)msgs[i].handler_us / 1e6);
    ep->stats.retried += (uint64_t)d->retries;
    switch (d->outcome) {
    case CTXD__OUTCOME_ACK: msgs[i].fresh ? ep->stats.handled++ : ep->stats.duplicates++; break;
    case CTXD__OUTCOME_REQUEUE: ep->stats.requeued++; break;
    case CTXD__OUTCOME_DELAY: ep->stats.redelivered++; break;
    case CTXD__OUTCOME_ERROR: ep->stats.errored++; break;
    case CTXD__OUTCOME_SKIPPED: ep->stats.skipped++; break;
    default: break;
    }
  }
  pthread_mutex_unlock(&ep->mu);
  for (size_t i = 0; i < b->n; i++) {
    json_decref(msgs[i].message);
    ctxd__envelope_free(&msgs[i].env);
    free(msgs[i].body);
    drop_rows(&msgs[i]);
  }
  free(msgs);
}

/* ---- the ingest endpoint's batches -------------------------------------------------------- */

/* Runs ctxd__ingest_run on items[0..n) until it commits, as run_attempts runs a
 * transaction: a lost connection or a failure of the server is waited for, a refusal for
 * the data ends after DATA_ATTEMPTS. 0, CTXD_ENOMEM, CTXD_ECLOSED when the endpoint stops
 * first, or the refusal's code with its text in err and its SQLSTATE kept on *conn. */
static int ingest_attempts(ctxd__endpoint_t *ep, ctxd__delivery_t **items, size_t n, const char *reduced,
                           PGconn **conn, size_t *fresh, char *err, size_t errlen) {
  ctxd__decode_limits_t limits = CTXD__DECODE_LIMITS(ep->env->cfg->max_message_bytes);
  for (int data_failures = 0;;) {
    if (ensure_conn(conn, ep) != 0) return CTXD_ECLOSED;
    int rc = ctxd__ingest_run(*conn, items, n, &limits, reduced, fresh, err, errlen);
    if (rc == 0 || rc == CTXD_ENOMEM) return rc;
    if (ctxd__endpoint_stopping(ep)) return CTXD_ECLOSED;
    if (rc != CTXD_ECLOSED && data_failure(*conn, rc) && ++data_failures >= DATA_ATTEMPTS) return rc;
    ctxd__log(CTXD__LOG_WARN, "host", "endpoint '%s': storing %zu failed message(s) failed, will retry: %s",
              ep->name, n, err);
    ctxd__endpoint_pause(ep, 200); /* a connection lost in every attempt: no busy loop */
  }
}

/* What became of an ingest batch's copies, for its endpoint's numbers. */
typedef struct {
  size_t fresh, stored, unstored;
} ingest_count_t;

/* Stores items[0..n) (ingest.h) and sets their outcomes. Copies the database keeps
 * refusing together run alone; one refused alone is stored without its headers and
 * properties; one refused even so is acknowledged, logged as an ERROR and counted
 * unstored. So no copy blocks the others, and none goes to an _error queue: ctxd.errors
 * has none. */
static void ingest_span(ctxd__endpoint_t *ep, ctxd__delivery_t **items, size_t n, PGconn **conn,
                        ingest_count_t *k) {
  char err[512] = "";
  size_t fresh = 0;
  int rc = ingest_attempts(ep, items, n, NULL, conn, &fresh, err, sizeof err);
  int refused = rc != 0 && rc != CTXD_ENOMEM && rc != CTXD_ECLOSED;
  if (refused && n > 1) {
    ctxd__log(CTXD__LOG_WARN, "host", "endpoint '%s': storing the %zu copies of a failing batch one by one",
              ep->name, n);
    for (size_t i = 0; i < n; i++) ingest_span(ep, &items[i], 1, conn, k);
    return;
  }
  if (refused) {
    char why[600];
    snprintf(why, sizeof why, "stored without headers: %s %s", ctxd__db_sqlstate(*conn), err);
    ctxd__log(CTXD__LOG_WARN, "host",
              "endpoint '%s': a copy from %s refused (%s): storing it without headers", ep->name,
              items[0]->queue, err);
    rc = ingest_attempts(ep, items, 1, why, conn, &fresh, err, sizeof err);
    if (rc != 0 && rc != CTXD_ENOMEM && rc != CTXD_ECLOSED) {
      ctxd__log(CTXD__LOG_ERROR, "host", "endpoint '%s': a copy from %s cannot be stored, acknowledged: %s",
                ep->name, items[0]->queue, err);
      k->unstored++;
      set_outcome(items[0], CTXD__OUTCOME_ACK, NULL, NULL);
      return;
    }
  }
  ctxd__outcome_t outcome = rc == 0             ? CTXD__OUTCOME_ACK
                            : rc == CTXD_ENOMEM ? CTXD__OUTCOME_REQUEUE
                                                : CTXD__OUTCOME_ABANDON; /* the endpoint stops */
  for (size_t i = 0; i < n; i++) set_outcome(items[i], outcome, NULL, NULL);
  if (rc == 0) {
    k->fresh += fresh;
    k->stored += n;
  }
}

/* Stores the failed copies of b, like a batch of messages: a lost database is waited for,
 * nothing is acknowledged before its commit. A copy over limits.max_message_bytes is
 * stored in a transaction of its own: a batch holds one such body at a time. */
static void ingest_batch(ctxd__batch_t *b, PGconn **conn) {
  ctxd__endpoint_t *ep = b->ep;
  int64_t started = ctxd__clock_us();
  ingest_count_t k = {0};
  size_t max = (size_t)ep->env->cfg->max_message_bytes;
  for (size_t i = 0; i < b->n;) {
    size_t n = 1;
    if (b->items[i]->msg.body.len <= max)
      while (i + n < b->n && b->items[i + n]->msg.body.len <= max) n++;
    ingest_span(ep, &b->items[i], n, conn, &k);
    i += n;
  }
  pthread_mutex_lock(&ep->mu);
  ctxd__histogram_observe(&ep->stats.batch_seconds, (double)(ctxd__clock_us() - started) / 1e6);
  ctxd__histogram_observe(&ep->stats.batch_size, (double)b->n);
  ep->stats.db_ok = ctxd__db_usable(*conn);
  ep->stats.handled += k.fresh;
  ep->stats.duplicates += k.stored - k.fresh;
  ep->stats.unstored += k.unstored;
  for (size_t i = 0; i < b->n; i++) ep->stats.requeued += b->items[i]->outcome == CTXD__OUTCOME_REQUEUE;
  pthread_mutex_unlock(&ep->mu);
}

/* ---- the worker threads ------------------------------------------------------------------ */

static void *worker_main(void *arg) {
  ctxd__worker_t *self = arg;
  ctxd__endpoint_t *ep = self->ep;
  PGconn *conn = NULL;
  int partial = 0; /* the batch this worker ran last was partial */
  ctxd__crash_thread_enter(&self->watch);
  for (;;) {
    pthread_mutex_lock(&ep->mu);
    ep->partial_running -= partial;
    self->busy = 0;
    /* an idle worker lets go of its connection: hundreds of endpoints with two workers
     * each would otherwise hold more connections than the server allows, most of them
     * for endpoints that see a message now and then */
    ctxd__batch_t *b = ctxd__endpoint_take(ep, &partial, conn != NULL ? ep->env->cfg->db_idle_close_ms : 0);
    self->busy = b != NULL;
    int stop = b == NULL && ep->stopping;
    pthread_mutex_unlock(&ep->mu);
    if (stop) break;
    if (b == NULL) {
      PQfinish(conn);
      conn = NULL;
      continue;
    }
    if (ep->ingest)
      ingest_batch(b, &conn);
    else
      ctxd__batch_run(b, &conn, &self->watch);
    ctxd__mailbox_post(ep->env->mailbox, &b->mail);
  }
  if (conn != NULL) PQfinish(conn);
  ctxd__crash_thread_leave();
  return NULL;
}

int ctxd__workers_start(ctxd__endpoint_t *ep) {
  size_t n = (size_t)ep->settings.workers;
  ep->stopping = 0; /* started again after a plugin replacement */
  ep->threads = calloc(n, sizeof *ep->threads);
  ep->workers = calloc(n, sizeof *ep->workers);
  if (ep->threads == NULL || ep->workers == NULL) return CTXD_ENOMEM;
  for (size_t i = 0; i < n; i++) {
    ep->workers[i].ep = ep;
    ctxd__watch_init(&ep->workers[i].watch);
  }
  for (; ep->nthreads < n; ep->nthreads++)
    if (pthread_create(&ep->threads[ep->nthreads], NULL, worker_main, &ep->workers[ep->nthreads]) != 0)
      return CTXD_ENOMEM;
  return 0;
}

void ctxd__workers_stop(ctxd__endpoint_t *ep) {
  pthread_mutex_lock(&ep->mu);
  ep->stopping = 1;
  pthread_cond_broadcast(&ep->cv);
  pthread_cond_broadcast(&ep->pause_cv);
  pthread_mutex_unlock(&ep->mu);
  for (size_t i = 0; i < ep->nthreads; i++) pthread_join(ep->threads[i], NULL);
  for (size_t i = 0; ep->workers != NULL && i < (size_t)ep->settings.workers; i++)
    ctxd__watch_destroy(&ep->workers[i].watch);
  free(ep->threads);
  free(ep->workers);
  ep->threads = NULL;
  ep->workers = NULL;
  ep->nthreads = 0;
}
