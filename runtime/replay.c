#include "replay.h"

#include <stdlib.h>
#include <string.h>

#include "amqptable.h"
#include "broker.h"
#include "cli.h"
#include "endpoint.h"
#include "topology.h"

static int named(const amqp_table_entry_t *e, const char *key) {
  return e->key.len == strlen(key) && memcmp(e->key.bytes, key, e->key.len) == 0;
}

/* Publishes a copy of msg to exchange and waits for its confirm. The fault headers stay,
 * as a move with MassTransit's tools (a shovel, the management UI) keeps them; the
 * redelivery count starts again at 0 (the envelope may carry an older one, which this
 * one comes before), and the attempts that ended a host are forgotten. */
static int move_one(ctxd__broker_t *b, const char *exchange, amqp_message_t *msg, int timeout_ms) {
  amqp_basic_properties_t props = msg->properties;
  amqp_table_t orig = (props._flags & AMQP_BASIC_HEADERS_FLAG) ? props.headers : amqp_empty_table;
  amqp_table_entry_t *kept = calloc((size_t)orig.num_entries + 1, sizeof *kept);
  if (kept == NULL) return CTXD_ENOMEM;
  int n = 0;
  for (int i = 0; i < orig.num_entries; i++)
    if (!named(&orig.entries[i], CTXD__REDELIVERY_HEADER) && !named(&orig.entries[i], CTXD__ATTEMPTS_HEADER))
      kept[n++] = orig.entries[i];
  ctxd__amqptable_set_i32(&kept[n++], CTXD__REDELIVERY_HEADER, 0);
  props.headers.entries = kept;
  props.headers.num_entries = n;
  props._flags |= AMQP_BASIC_HEADERS_FLAG;
  uint64_t seq;
  int rc = ctxd__broker_publish(b, exchange, "", 0, &props, msg->body, &seq);
  free(kept);
  return rc != 0 ? rc : ctxd__broker_wait_confirm(b, seq, timeout_ms);
}

int ctxd__errors_replay(const ctxd__config_t *cfg, const char *endpoint, long limit, FILE *out) {
  ctxd__broker_t b;
  char err[512], queue[256];
  if (ctxd__topology_side(queue, sizeof queue, endpoint, CTXD__SIDE_ERROR, 0) != 0) {
    fprintf(stderr, "ctxd: endpoint name too long: %s\n", endpoint);
    return CTXD__EXIT_USAGE;
  }
  if (ctxd__broker_connect_any(&b, cfg->broker_urls, cfg->nbroker_urls, cfg->broker_password,
                               &cfg->broker_tls, 0, (int)cfg->rpc_timeout_ms, err, sizeof err) != 0) {
    fprintf(stderr, "ctxd: %s\n", err);
    return CTXD__EXIT_FAILURE;
  }
  long moved = 0;
  int rc = 0;
  while (limit == 0 || moved < limit) {
    uint64_t tag;
    amqp_message_t msg;
    rc = ctxd__broker_get(&b, CTXD__PUBLISH_CHANNEL, queue, &tag, &msg);
    if (rc == CTXD_ENOENT) {
      rc = 0;
      break;
    }
    if (rc != 0) {
      fprintf(stderr, "ctxd: cannot read '%s' (does the queue exist?)\n", queue);
      break;
    }
    rc = move_one(&b, endpoint, &msg, (int)cfg->rpc_timeout_ms);
    amqp_destroy_message(&msg);
    /* unconfirmed: leave the original where it is (it returns when we close) */
    if (rc != 0) {
      fprintf(stderr, "ctxd: the broker did not confirm a copy to '%s': %s\n", endpoint, ctxd_strerror(rc));
      break;
    }
    if ((rc = ctxd__broker_ack(&b, CTXD__PUBLISH_CHANNEL, tag, 0)) != 0) break;
    moved++;
    amqp_maybe_release_buffers(b.conn);
  }
  ctxd__broker_close(&b, 1);
  fprintf(out, "moved %ld message%s from %s to %s\n", moved, moved == 1 ? "" : "s", queue, endpoint);
  return rc == 0 ? CTXD__EXIT_OK : CTXD__EXIT_FAILURE;
}
