#include "topology.h"

#include <stdlib.h>
#include <string.h>

#include "amqptable.h"
#include "log.h"
#include "msgname.h"
#include "plugin.h"

int ctxd__topology_side(char *buf, size_t len, const char *endpoint, ctxd__side_t side, int64_t delay_ms) {
  int n;
  switch (side) {
  case CTXD__SIDE_ERROR: n = snprintf(buf, len, "%s_error", endpoint); break;
  case CTXD__SIDE_SKIPPED: n = snprintf(buf, len, "%s_skipped", endpoint); break;
  default: n = snprintf(buf, len, "%s_delay_%lld", endpoint, (long long)delay_ms); break;
  }
  return n >= 0 && (size_t)n < len ? 0 : CTXD_ETOOBIG;
}

/* ---- declaring ------------------------------------------------------------------------- */

/* Queue arguments, built up one entry at a time. */
typedef struct {
  amqp_table_entry_t e[6];
  int n;
} qargs_t;

static amqp_table_t qargs_table(qargs_t *q) { return (amqp_table_t){q->n, q->n ? q->e : NULL}; }

static void add_text(qargs_t *q, const char *key, const char *value) {
  ctxd__amqptable_set_text(&q->e[q->n++], key, value);
}

static void add_i64(qargs_t *q, const char *key, int64_t value) {
  ctxd__amqptable_set_i64(&q->e[q->n++], key, value);
}

/* Delay queues are ctxd's own (MassTransit uses the delayed-message plugin instead): a
 * quorum one dead-letters at least once (RabbitMQ confirms the move internally) only with
 * reject-publish overflow; the default, at most once, may drop a message when the target's
 * leader is unavailable. */
static void quorum_dead_letter(qargs_t *q, const char *exchange) {
  add_text(q, "x-dead-letter-exchange", exchange);
  add_text(q, "x-dead-letter-strategy", "at-least-once");
  add_text(q, "x-overflow", "reject-publish");
}

int ctxd__topology_bind_types(ctxd__broker_t *b, const ctxd__endpoint_t *ep, char *err, size_t errlen) {
  char exchange[256];
  for (size_t k = 0; k < ep->nhandlers; k++) {
    const char *type = ep->handlers[k].type;
    if (ctxd__contracts_exchange(ep->env->contracts, type, exchange, sizeof exchange) != 0) {
      snprintf(err, errlen, "message type '%s' has no RabbitMQ exchange name", type);
      return CTXD_EBROKER;
    }
    if (ctxd__broker_exchange(b, ep->channel, exchange, err, errlen) != 0 ||
        ctxd__broker_bind(b, ep->channel, exchange, ep->name, err, errlen) != 0)
      return CTXD_EBROKER;
  }
  return 0;
}

int ctxd__topology_declare(ctxd__broker_t *b, const ctxd__endpoint_t *ep, char *err, size_t errlen) {
  char error[256], side[256];
  /* As MassTransit declares a receive endpoint: a classic queue has no arguments, a quorum
   * one x-queue-type only (a .NET service declaring the same queue, before or after, must
   * not meet a different declaration). The host's own attempt counting (max_attempts)
   * ends crash loops, not a broker delivery limit. On a cluster a classic queue lives on
   * one node and cannot even be declared while that node is down: every queue beside a
   * quorum endpoint is a quorum queue too. */
  int quorum = strcmp(ep->settings.queue_type, "quorum") == 0;
  qargs_t base = {.n = 0};
  if (quorum) add_text(&base, "x-queue-type", "quorum");
  if (ctxd__topology_side(error, sizeof error, ep->name, CTXD__SIDE_ERROR, 0) != 0 ||
      ctxd__topology_side(side, sizeof side, ep->name, CTXD__SIDE_SKIPPED, 0) != 0) {
    snprintf(err, errlen, "endpoint name '%s' too long", ep->name);
    return CTXD_EBROKER;
  }
  /* _error and _skipped: the endpoint's flags and a copy of its queue arguments, as
   * MassTransit's error and dead-letter settings copy them */
  if (ctxd__broker_queue(b, ep->channel, error, qargs_table(&base), err, errlen) != 0 ||
      ctxd__broker_queue(b, ep->channel, side, qargs_table(&base), err, errlen) != 0)
    return CTXD_EBROKER;
  for (int k = 0; k < ep->nredelivery; k++) {
    /* a delay queue: its messages expire after the interval and dead-letter back to the
     * endpoint's exchange (the delayed-message plugin is not bundled with RabbitMQ) */
    qargs_t d = base;
    add_i64(&d, "x-message-ttl", ep->redelivery_ms[k]);
    if (quorum)
      quorum_dead_letter(&d, ep->name);
    else
      add_text(&d, "x-dead-letter-exchange", ep->name);
    ctxd__topology_side(side, sizeof side, ep->name, CTXD__SIDE_DELAY, ep->redelivery_ms[k]);
    if (ctxd__broker_queue(b, ep->channel, side, qargs_table(&d), err, errlen) != 0) return CTXD_EBROKER;
  }
  if (ctxd__broker_queue(b, ep->channel, ep->name, qargs_table(&base), err, errlen) != 0) return CTXD_EBROKER;
  return ctxd__topology_bind_types(b, ep, err, errlen);
}

int ctxd__topology_error_source(char *buf, size_t len, const char *endpoint, int keep_in_queue) {
  int n = snprintf(buf, len, keep_in_queue ? "%s_error_store" : "%s_error", endpoint);
  return n >= 0 && (size_t)n < len ? 0 : CTXD_ETOOBIG;
}

int ctxd__topology_declare_ingest(ctxd__broker_t *b, const ctxd__endpoints_t *set, int keep_in_queue,
                                  char *err, size_t errlen) {
  char error[256], store[256];
  for (size_t i = 0; keep_in_queue && i < set->n; i++) {
    const ctxd__endpoint_t *ep = set->v[i];
    if (ep->ingest) continue;
    /* beside <E>_error, with its queue type: every copy reaches both */
    qargs_t base = {.n = 0};
    if (strcmp(ep->settings.queue_type, "quorum") == 0) add_text(&base, "x-queue-type", "quorum");
    if (ctxd__topology_side(error, sizeof error, ep->name, CTXD__SIDE_ERROR, 0) != 0 ||
        ctxd__topology_error_source(store, sizeof store, ep->name, 1) != 0) {
      snprintf(err, errlen, "endpoint name '%s' too long", ep->name);
      return CTXD_EBROKER;
    }
    if (ctxd__broker_queue(b, b->publish_channel, store, qargs_table(&base), err, errlen) != 0 ||
        ctxd__broker_bind(b, b->publish_channel, error, store, err, errlen) != 0)
      return CTXD_EBROKER;
  }
  return 0;
}

/* 1 when k's base i is reached through another base of k that is a contract listing it:
 * MassTransit binds a type's exchange to the exchanges of the types it implements
 * directly, and those to theirs; a second, direct path would deliver twice. */
static int indirect_base(const ctxd__contracts_t *c, const ctxd__contract_t *k, size_t i) {
  const char *base = ctxd__contract_base(k, i);
  for (size_t j = 0; j < ctxd__contract_nbases(k); j++) {
    const ctxd__contract_t *other = j != i ? ctxd__contracts_find(c, ctxd__contract_base(k, j)) : NULL;
    for (size_t n = 0; other && n < ctxd__contract_nbases(other); n++)
      if (ctxd__msgname_eq(ctxd__contract_base(other, n), base)) return 1;
  }
  return 0;
}

/* Inheritance chains deeper than this are refused (and a cycle ends here). */
#define PUBLISH_DEPTH_MAX 8

static int publish_exchange(ctxd__broker_t *b, const ctxd__contracts_t *c, const char *exchange, int depth,
                            char *err, size_t errlen) {
  if (depth > PUBLISH_DEPTH_MAX) {
    snprintf(err, errlen, "exchange '%s': implements nests deeper than %d", exchange, PUBLISH_DEPTH_MAX);
    return CTXD_EBROKER;
  }
  if (ctxd__broker_exchange(b, b->publish_channel, exchange, err, errlen) != 0) return CTXD_EBROKER;
  const ctxd__contract_t *k = ctxd__contracts_of_exchange(c, exchange);
  for (size_t i = 0; k && i < ctxd__contract_nbases(k); i++) {
    const char *base = ctxd__contract_base_exchange(k, i);
    if (indirect_base(c, k, i)) continue;
    if (publish_exchange(b, c, base, depth + 1, err, errlen) != 0 ||
        ctxd__broker_bind(b, b->publish_channel, exchange, base, err, errlen) != 0)
      return CTXD_EBROKER;
  }
  return 0;
}

int ctxd__topology_publish_exchange(ctxd__broker_t *b, const ctxd__contracts_t *c, const char *exchange,
                                    char *err, size_t errlen) {
  return publish_exchange(b, c, exchange, 0, err, errlen);
}

/* ---- exchanges the outbox publishes to ------------------------------------------------- */

static int exchange_index(const ctxd__exchanges_t *x, const char *name) {
  for (size_t i = 0; i < x->n; i++)
    if (strcmp(x->v[i].name, name) == 0) return (int)i;
  return -1;
}

#define FAULT_PREFIX CTXD__FAULT_EXCHANGE "--"

int ctxd__topology_fault_exchange(char *buf, size_t len, const char *type) {
  char generic[512]; /* Fault<T>'s URN name; the formatter does the rest (nested T, generic T) */
  int n = snprintf(generic, sizeof generic, CTXD__FAULT_EXCHANGE "[[%s]]", type);
  if (n < 0 || (size_t)n >= sizeof generic) return CTXD_ETOOBIG;
  return ctxd__msgname_exchange(generic, buf, len) == 0 ? 0 : CTXD_ETOOBIG;
}

int ctxd__exchanges_ensure(ctxd__exchanges_t *x, ctxd__broker_t *b, const char *name) {
  if (exchange_index(x, name) >= 0) return 0;
  char err[512];
  int fault = strncmp(name, FAULT_PREFIX, strlen(FAULT_PREFIX)) == 0;
  /* synchronous RPCs, but rare: once per exchange and connection */
  if (ctxd__topology_publish_exchange(b, x->contracts, name, err, sizeof err) != 0 ||
      (fault &&
       (ctxd__broker_exchange(b, b->publish_channel, CTXD__FAULT_EXCHANGE, err, sizeof err) != 0 ||
        ctxd__broker_bind(b, b->publish_channel, name, CTXD__FAULT_EXCHANGE, err, sizeof err) != 0))) {
    ctxd__log(CTXD__LOG_WARN, "host", "outbox: %s", err);
    return CTXD_EBROKER;
  }
  void *grown = realloc(x->v, (x->n + 1) * sizeof *x->v);
  if (grown == NULL) return CTXD_ENOMEM;
  x->v = grown;
  if ((x->v[x->n].name = strdup(name)) == NULL) return CTXD_ENOMEM;
  x->v[x->n++].unroutable_noted = 0;
  return 0;
}

int ctxd__exchanges_note_unroutable(ctxd__exchanges_t *x, const char *name) {
  int i = exchange_index(x, name);
  if (i < 0) return 1;
  int first = !x->v[i].unroutable_noted;
  x->v[i].unroutable_noted = 1;
  return first;
}

void ctxd__exchanges_forget_one(ctxd__exchanges_t *x, const char *name) {
  int i = exchange_index(x, name);
  if (i < 0) return;
  free(x->v[i].name);
  x->v[i] = x->v[--x->n];
}

void ctxd__exchanges_forget(ctxd__exchanges_t *x) {
  for (size_t i = 0; i < x->n; i++) free(x->v[i].name);
  free(x->v);
  x->v = NULL;
  x->n = 0;
}

/* ---- printing ---------------------------------------------------------------------------- */

void ctxd__topology_print(FILE *out, const ctxd__endpoints_t *set) {
  for (size_t i = 0; i < set->n; i++) {
    const ctxd__endpoint_t *ep = set->v[i];
    fprintf(out, "endpoint %s (queue %s, %s, prefetch %lld, workers %lld, batch %lld)\n", ep->name, ep->name,
            ep->settings.queue_type, (long long)ep->settings.prefetch, (long long)ep->settings.workers,
            (long long)ep->settings.batch_size);
    for (size_t k = 0; k < ep->nhandlers; k++) {
      const ctxd__handler_t *hd = &ep->handlers[k];
      fprintf(out, "  %s -> %s (plugin %s%s%s)\n", hd->type, ep->name, hd->plugin->name,
              hd->upcast_to != NULL ? ", upcast to " : "", hd->upcast_to != NULL ? hd->upcast_to : "");
    }
  }
}

/* A side queue of ep as a Graphviz node with a dashed edge from the endpoint's queue. */
static void dot_side(FILE *out, const ctxd__endpoint_t *ep, ctxd__side_t side, int64_t delay_ms,
                     const char *color) {
  char name[256];
  ctxd__topology_side(name, sizeof name, ep->name, side, delay_ms);
  fprintf(out, "  \"q:%s\" [label=\"%s\", shape=cylinder, color=%s];\n", name, name, color);
  fprintf(out, "  \"q:%s\" -> \"q:%s\" [style=dashed, color=%s];\n", ep->name, name, color);
  if (side == CTXD__SIDE_DELAY)
    fprintf(out, "  \"q:%s\" -> \"x:%s\" [style=dotted, color=%s, label=\"ttl\"];\n", name, ep->name, color);
}

/* Message-type exchanges -> endpoint exchanges -> queues -> plugins, with the error,
 * skipped and delay queues beside each endpoint. */
void ctxd__topology_dot(FILE *out, const ctxd__endpoints_t *set) {
  fprintf(out, "digraph ctxd {\n  rankdir=LR;\n  node [fontname=\"Helvetica\", fontsize=10];\n");
  for (size_t i = 0; i < set->n; i++) {
    const ctxd__endpoint_t *ep = set->v[i];
    fprintf(out, "  \"x:%s\" [label=\"%s\\n(exchange)\", shape=box, style=rounded];\n", ep->name, ep->name);
    fprintf(out, "  \"q:%s\" [label=\"%s\\n(%s queue)\", shape=cylinder];\n", ep->name, ep->name,
            ep->settings.queue_type);
    fprintf(out, "  \"x:%s\" -> \"q:%s\";\n", ep->name, ep->name);
    dot_side(out, ep, CTXD__SIDE_ERROR, 0, "red");
    dot_side(out, ep, CTXD__SIDE_SKIPPED, 0, "gray");
    for (int k = 0; k < ep->nredelivery; k++)
      dot_side(out, ep, CTXD__SIDE_DELAY, ep->redelivery_ms[k], "orange");
    for (size_t k = 0; k < ep->nhandlers; k++) {
      const char *type = ep->handlers[k].type, *plugin = ep->handlers[k].plugin->name;
      fprintf(out, "  \"t:%s\" [label=\"%s\", shape=box, style=\"rounded,filled\", fillcolor=lightyellow];\n",
              type, type);
      fprintf(out, "  \"t:%s\" -> \"x:%s\";\n", type, ep->name);
      int seen = 0; /* one edge per plugin, however many types it handles here */
      for (size_t j = 0; j < k; j++) seen |= ep->handlers[j].plugin == ep->handlers[k].plugin;
      if (seen) continue;
      fprintf(out, "  \"p:%s\" [label=\"plugin %s\", shape=component, style=filled, fillcolor=lightblue];\n",
              plugin, plugin);
      fprintf(out, "  \"q:%s\" -> \"p:%s\";\n", ep->name, plugin);
    }
  }
  fprintf(out, "}\n");
}
