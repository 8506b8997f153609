/* The simulator's own AMQP connection: topology, consuming requests, publishing in
 * MassTransit envelopes with publisher confirms.
 *
 * One channel does both. Frames are read one at a time (amqp_simple_wait_frame_noblock)
 * by one function, whether the thread is idle or waiting for a confirm, so a request
 * arriving meanwhile is scheduled, never lost or mistaken for a confirm. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <amqp_tcp_socket.h>
#include <jansson.h>

#include "ctxd_contracts.h"
#include "sim.h"

#define CHANNEL 1
#define HEARTBEAT_S 30
#define CONNECT_TIMEOUT_S 5
#define RPC_TIMEOUT_S 10
#define NACK_ATTEMPTS 3 /* a nack is the broker failing to store it: try again */
#define CONTENT_TYPE "application/vnd.masstransit+json"

/* The events it publishes, to their type's exchange (declared so a publish never fails). */
static const char *const event_types[] = {
    CTXD_C_PAYMENT_V1_REFUND_COMPLETED_TYPE,      CTXD_C_PAYMENT_V1_REFUND_FAILED_TYPE,
    CTXD_C_ORDERING_V1_RESHIP_ORDER_CREATED_TYPE, CTXD_C_ORDERING_V1_RESHIP_ORDER_SHIPPED_TYPE,
    CTXD_C_ORDERING_V1_RESHIP_ORDER_FAILED_TYPE,  CTXD_C_DATA_CATALOG_PRODUCTS_V1_MATERIAL_TYPE_TYPE,
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* A publish waiting for its confirm. */
enum { CONFIRM_ACKED = 0, CONFIRM_NACKED = 1, CONFIRM_WAITING = 2 };
typedef struct {
  uint64_t tag;
  int state;
} confirm_t;

static int failed(const sim_t *sim, const char *what, const char *why) {
  sim->api->log(sim->plugin, NULL, CTXD_LOG_WARN, "%s: %s", what, why);
  return CTXD_EBROKER;
}

/* The broker's reason in a channel.close or connection.close. */
static void close_reason(amqp_method_number_t id, const void *decoded, char *why, size_t len) {
  const amqp_channel_close_t *ch = decoded;
  const amqp_connection_close_t *conn = decoded;
  if (id == AMQP_CHANNEL_CLOSE_METHOD)
    snprintf(why, len, "%d %.*s", ch->reply_code, (int)ch->reply_text.len, (char *)ch->reply_text.bytes);
  else if (id == AMQP_CONNECTION_CLOSE_METHOD)
    snprintf(why, len, "%d %.*s", conn->reply_code, (int)conn->reply_text.len,
             (char *)conn->reply_text.bytes);
  else
    snprintf(why, len, "unexpected method 0x%08x", (unsigned)id);
}

/* 0 when r says an RPC succeeded; otherwise logs why and returns CTXD_EBROKER. */
static int reply_failed(const sim_t *sim, const char *what, amqp_rpc_reply_t r) {
  char why[300];
  if (r.reply_type == AMQP_RESPONSE_NORMAL) return 0;
  if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION)
    return failed(sim, what, amqp_error_string2(r.library_error));
  if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION)
    close_reason(r.reply.id, r.reply.decoded, why, sizeof why);
  else
    snprintf(why, sizeof why, "no reply");
  return failed(sim, what, why);
}

/* The same for the last RPC made by the wrappers that keep their reply (declare, bind...). */
static int rpc_failed(const sim_t *sim, const char *what) {
  return reply_failed(sim, what, amqp_get_rpc_reply(sim->conn));
}

static int declare_exchange(const sim_t *sim, const char *name) {
  char what[300];
  amqp_exchange_declare(sim->conn, CHANNEL, amqp_cstring_bytes(name), amqp_cstring_bytes("fanout"), 0, 1, 0,
                        0, amqp_empty_table);
  snprintf(what, sizeof what, "declare exchange '%s'", name);
  return rpc_failed(sim, what);
}

/* The system's durable queue on its request type's exchange, consumed with manual acks. */
static int consume(const sim_t *sim, int system) {
  const char *queue = sim->s->queues[system], *type = sim_systems[system].request_type;
  char what[300];
  int rc = declare_exchange(sim, type);
  if (rc == 0) {
    amqp_queue_declare(sim->conn, CHANNEL, amqp_cstring_bytes(queue), 0, 1, 0, 0, amqp_empty_table);
    snprintf(what, sizeof what, "declare queue '%s'", queue);
    rc = rpc_failed(sim, what);
  }
  if (rc == 0) {
    amqp_queue_bind(sim->conn, CHANNEL, amqp_cstring_bytes(queue), amqp_cstring_bytes(type), amqp_empty_bytes,
                    amqp_empty_table);
    snprintf(what, sizeof what, "bind queue '%s' to '%s'", queue, type);
    rc = rpc_failed(sim, what);
  }
  if (rc == 0) {
    amqp_basic_consume(sim->conn, CHANNEL, amqp_cstring_bytes(queue),
                       amqp_cstring_bytes(sim_systems[system].name), 0, 0, 0, amqp_empty_table);
    snprintf(what, sizeof what, "consume '%s'", queue);
    rc = rpc_failed(sim, what);
  }
  return rc;
}

int sim_bus_connect(sim_t *sim) {
  char url[sizeof sim->url], where[300];
  struct amqp_connection_info ci;
  snprintf(url, sizeof url, "%s", sim->url);
  amqp_parse_url(url, &ci); /* checked in init */
  snprintf(where, sizeof where, "broker %s:%d", ci.host, ci.port);
  if ((sim->conn = amqp_new_connection()) == NULL) return failed(sim, where, "out of memory");
  amqp_socket_t *sock = amqp_tcp_socket_new(sim->conn);
  struct timeval connect_tv = {CONNECT_TIMEOUT_S, 0}, rpc_tv = {RPC_TIMEOUT_S, 0};
  int st =
      sock == NULL ? AMQP_STATUS_NO_MEMORY : amqp_socket_open_noblock(sock, ci.host, ci.port, &connect_tv);
  int rc = st != AMQP_STATUS_OK ? failed(sim, where, amqp_error_string2(st)) : 0;
  /* without consumer_cancel_notify the broker would silently drop a consumer whose queue
   * is deleted, and the simulator would wait forever; with it, it connects again */
  amqp_table_entry_t caps[] = {
      {amqp_cstring_bytes("consumer_cancel_notify"), {.kind = AMQP_FIELD_KIND_BOOLEAN, .value.boolean = 1}}};
  amqp_table_entry_t client[] = {
      {amqp_cstring_bytes("connection_name"),
       {.kind = AMQP_FIELD_KIND_UTF8, .value.bytes = amqp_cstring_bytes("ctxd simulator")}},
      {amqp_cstring_bytes("capabilities"), {.kind = AMQP_FIELD_KIND_TABLE, .value.table = {1, caps}}}};
  amqp_table_t properties = {2, client};
  if (rc == 0) {
    amqp_set_rpc_timeout(sim->conn, &rpc_tv);
    rc = reply_failed(sim, where,
                      amqp_login_with_properties(sim->conn, ci.vhost, 0, 131072, HEARTBEAT_S, &properties,
                                                 AMQP_SASL_METHOD_PLAIN, ci.user, ci.password));
  }
  if (rc == 0) {
    amqp_channel_open(sim->conn, CHANNEL);
    rc = rpc_failed(sim, "open channel");
  }
  if (rc == 0) {
    amqp_confirm_select(sim->conn, CHANNEL);
    rc = rpc_failed(sim, "select publisher confirms");
  }
  if (rc == 0) {
    /* a request stays unacknowledged until its answers are out: this many at once */
    amqp_basic_qos(sim->conn, CHANNEL, 0, (uint16_t)sim->s->prefetch, 0);
    rc = rpc_failed(sim, "set prefetch");
  }
  for (size_t i = 0; i < COUNT(event_types) && rc == 0; i++) rc = declare_exchange(sim, event_types[i]);
  /* the endpoints' exchanges may not exist yet: their context may run later, or nowhere */
  if (rc == 0) rc = declare_exchange(sim, sim->s->inventory_endpoint);
  if (rc == 0) rc = declare_exchange(sim, sim->s->compensation_endpoint);
  if (rc == 0 && sim->s->feeds[SIM_FEED_PAYING].on) rc = declare_exchange(sim, sim->s->paying_endpoint);
  if (rc == 0 && sim->s->feed_agents) rc = declare_exchange(sim, sim->s->case_endpoint);
  for (int i = 0; i < SIM_SYSTEMS && rc == 0; i++)
    if (i != SIM_AGENT_DESK || sim->s->feed_agents) rc = consume(sim, i);
  if (rc != 0) {
    sim_bus_close(sim, false);
    return rc;
  }
  sim->published = 0;
  sim->api->log(
      sim->plugin, NULL, CTXD_LOG_INFO, "connected to %s: consuming '%s' (payment) and '%s' (ordering)%s%s%s",
      where, sim->s->queues[SIM_PAYMENT], sim->s->queues[SIM_ORDERING], sim->s->feed_agents ? " and '" : "",
      sim->s->feed_agents ? sim->s->queues[SIM_AGENT_DESK] : "", sim->s->feed_agents ? "' (agent desk)" : "");
  return 0;
}

void sim_bus_close(sim_t *sim, bool graceful) {
  if (sim->conn == NULL) return;
  if (graceful) amqp_connection_close(sim->conn, AMQP_REPLY_SUCCESS);
  amqp_destroy_connection(sim->conn);
  sim->conn = NULL;
}

/* The MassTransit envelope of job (new, free with free()), or NULL when memory runs out. */
static char *envelope(const sim_t *sim, const sim_job_t *job) {
  static const struct {
    const char *key;
    size_t offset;
  } ids[] = {
      {"messageId", offsetof(sim_job_t, id)},
      {"correlationId", offsetof(sim_job_t, correlation_id)},
      {"conversationId", offsetof(sim_job_t, conversation_id)},
      {"initiatorId", offsetof(sim_job_t, initiator_id)},
  };
  char sent[32], urn[160];
  sim_iso_at(sim_now_ms(), sent);
  snprintf(urn, sizeof urn, "urn:message:%s", job->type);
  json_t *env = json_object();
  int bad = env == NULL;
  for (size_t i = 0; i < COUNT(ids) && !bad; i++) {
    const char *v = (const char *)job + ids[i].offset;
    if (v[0]) bad |= json_object_set_new(env, ids[i].key, json_string(v));
  }
  /* json_object_set_new refuses a NULL value (out of memory) with -1 */
  if (!bad) {
    bad |= json_object_set_new(env, "messageType", json_pack("[s]", urn));
    bad |= json_object_set_new(env, "message", json_loads(job->body, 0, NULL));
    bad |= json_object_set_new(env, "sentTime", json_string(sent));
    bad |= json_object_set_new(env, "headers", json_object());
    bad |= json_object_set_new(env, "host",
                               json_pack("{s:s, s:s, s:I}", "machineName", sim->machine, "processName",
                                         "ctxd simulator", "processId", (json_int_t)getpid()));
  }
  char *text = bad ? NULL : json_dumps(env, JSON_COMPACT);
  json_decref(env);
  return text;
}

static int on_delivery(sim_t *sim, const amqp_frame_t *f) {
  const amqp_basic_deliver_t *d = f->payload.method.decoded;
  uint64_t tag = d->delivery_tag;
  int system = 0;
  while (system < SIM_SYSTEMS &&
         !(d->consumer_tag.len == strlen(sim_systems[system].name) &&
           memcmp(d->consumer_tag.bytes, sim_systems[system].name, d->consumer_tag.len) == 0))
    system++;
  amqp_message_t m;
  if (amqp_read_message(sim->conn, f->channel, &m, 0).reply_type != AMQP_RESPONSE_NORMAL)
    return failed(sim, "read a request", "the connection failed");
  char err[512] = "it came from no consumer of the simulator";
  int rc = system < SIM_SYSTEMS ? sim_answer(sim, system, tag, m.body.bytes, m.body.len, err, sizeof err)
                                : CTXD_EINVAL;
  amqp_destroy_message(&m);
  if (rc == SIM_NOTHING) return sim_bus_ack(sim, tag);
  if (rc == 0) return 0;
  /* running out of memory is not the request's fault: it comes back; anything else never
   * gets better, so it is dropped, saying why */
  if (rc == CTXD_ENOMEM) snprintf(err, sizeof err, "out of memory; requeued");
  sim->api->log(sim->plugin, NULL, CTXD_LOG_WARN, "%s: request dropped: %s",
                system < SIM_SYSTEMS ? sim_systems[system].name : "unknown", err);
  return amqp_basic_reject(sim->conn, CHANNEL, tag, rc == CTXD_ENOMEM) == AMQP_STATUS_OK ? 0 : CTXD_EBROKER;
}

/* Whether the broker's (n)ack of delivery_tag (multiple: and every earlier one) covers c. */
static bool covers(uint64_t delivery_tag, amqp_boolean_t multiple, const confirm_t *c) {
  return c != NULL && (multiple ? c->tag <= delivery_tag : c->tag == delivery_tag);
}

/* Reads one frame within timeout_ms and handles it; c, when not NULL, is the confirm
 * being waited for. 0 (handled, or nothing came) or CTXD_EBROKER. */
static int pump(sim_t *sim, int64_t timeout_ms, confirm_t *c) {
  amqp_frame_t f;
  struct timeval tv = {(time_t)(timeout_ms / 1000), (suseconds_t)(timeout_ms % 1000 * 1000)};
  int st = amqp_simple_wait_frame_noblock(sim->conn, &f, &tv);
  if (st == AMQP_STATUS_TIMEOUT) return 0;
  if (st != AMQP_STATUS_OK) return failed(sim, "connection lost", amqp_error_string2(st));
  int rc = 0;
  if (f.frame_type == AMQP_FRAME_METHOD) {
    const void *m = f.payload.method.decoded;
    switch (f.payload.method.id) {
    case AMQP_BASIC_DELIVER_METHOD: rc = on_delivery(sim, &f); break;
    case AMQP_BASIC_ACK_METHOD:
      if (covers(((const amqp_basic_ack_t *)m)->delivery_tag, ((const amqp_basic_ack_t *)m)->multiple, c))
        c->state = CONFIRM_ACKED;
      break;
    case AMQP_BASIC_NACK_METHOD:
      if (covers(((const amqp_basic_nack_t *)m)->delivery_tag, ((const amqp_basic_nack_t *)m)->multiple, c))
        c->state = CONFIRM_NACKED;
      break;
    case AMQP_CHANNEL_CLOSE_METHOD:
    case AMQP_CONNECTION_CLOSE_METHOD: {
      char why[300];
      close_reason(f.payload.method.id, m, why, sizeof why);
      rc = failed(sim, "the broker closed the connection", why);
      break;
    }
    case AMQP_BASIC_CANCEL_METHOD:
      rc = failed(sim, "the broker cancelled a consumer", "its queue was deleted?");
      break;
    default: break;
    }
  }
  amqp_maybe_release_buffers(sim->conn);
  return rc;
}

int sim_bus_pump(sim_t *sim, int64_t timeout_ms) { return pump(sim, timeout_ms, NULL); }

/* CONFIRM_ACKED, CONFIRM_NACKED, or CTXD_EBROKER (no confirm in time, or the connection
 * failed). */
static int wait_confirm(sim_t *sim, uint64_t tag) {
  confirm_t c = {tag, CONFIRM_WAITING};
  int64_t end = sim_now_ms() + sim->s->confirm_timeout_ms;
  while (c.state == CONFIRM_WAITING) {
    int64_t left = end - sim_now_ms();
    if (left <= 0) return failed(sim, "publish", "no confirm from the broker in time");
    int rc = pump(sim, left, &c);
    if (rc != 0) return rc;
  }
  return c.state;
}

int sim_bus_publish(sim_t *sim, const sim_job_t *job) {
  char *text = envelope(sim, job);
  if (text == NULL) return failed(sim, job->type, "out of memory");
  amqp_basic_properties_t props = {._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG |
                                             AMQP_BASIC_MESSAGE_ID_FLAG,
                                   .content_type = amqp_cstring_bytes(CONTENT_TYPE),
                                   .delivery_mode = AMQP_DELIVERY_PERSISTENT,
                                   .message_id = amqp_cstring_bytes(job->id)};
  int rc = CONFIRM_NACKED;
  for (int attempt = 0; attempt < NACK_ATTEMPTS && rc == CONFIRM_NACKED; attempt++) {
    if (attempt > 0)
      sim->api->log(sim->plugin, NULL, CTXD_LOG_WARN, "%s %s: nacked, publishing again", job->type, job->id);
    rc = amqp_basic_publish(sim->conn, CHANNEL, amqp_cstring_bytes(job->exchange), amqp_empty_bytes, 0, 0,
                            &props, amqp_cstring_bytes(text)) != AMQP_STATUS_OK
             ? failed(sim, job->type, "publish failed")
             : wait_confirm(sim, ++sim->published);
  }
  free(text);
  return rc == CONFIRM_ACKED ? 0 : CTXD_EBROKER;
}

int sim_bus_ack(sim_t *sim, uint64_t delivery) {
  return amqp_basic_ack(sim->conn, CHANNEL, delivery, 0) == AMQP_STATUS_OK ? 0 : failed(sim, "ack", "failed");
}
