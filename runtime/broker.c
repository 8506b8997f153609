#include "broker.h"

#include <stdio.h>
#include <string.h>
#include <sys/time.h>

#include <amqp_tcp_socket.h>

#include <ctxd/errno.h>

#include "redact.h"

/* 0 when reply r (of an RPC on channel) is normal, else CTXD_EBROKER with the reason in err,
 * redacted: the broker's text may quote what it was sent. */
static int reply_failed(ctxd__broker_t *b, amqp_rpc_reply_t r, int channel, const char *what, char *err,
                        size_t errlen) {
  char raw[1024];
  if (r.reply_type == AMQP_RESPONSE_NORMAL) return 0;
  if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION) {
    snprintf(raw, sizeof raw, "%s: %s", what, amqp_error_string2(r.library_error));
  } else if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
    amqp_channel_close_t *c = r.reply.decoded;
    if (channel == b->publish_channel) { /* its owner must reopen it */
      b->publish_closed = 1;
      b->close_code = c->reply_code;
      snprintf(raw, sizeof raw, "%.*s", (int)c->reply_text.len, (char *)c->reply_text.bytes);
      ctxd__redact(raw, b->close_text, sizeof b->close_text);
    }
    snprintf(raw, sizeof raw, "%s: channel closed by the broker: %d %.*s", what, c->reply_code,
             (int)c->reply_text.len, (char *)c->reply_text.bytes);
  } else if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
    amqp_connection_close_t *c = r.reply.decoded;
    snprintf(raw, sizeof raw, "%s: connection closed by the broker: %d %.*s", what, c->reply_code,
             (int)c->reply_text.len, (char *)c->reply_text.bytes);
  } else {
    snprintf(raw, sizeof raw, "%s: unexpected reply 0x%08x", what, r.reply.id);
  }
  ctxd__redact(raw, err, errlen);
  return CTXD_EBROKER;
}

/* 0 when the last RPC on channel succeeded, else CTXD_EBROKER with the reason in err. */
static int rpc_failed(ctxd__broker_t *b, int channel, const char *what, char *err, size_t errlen) {
  return reply_failed(b, amqp_get_rpc_reply(b->conn), channel, what, err, errlen);
}

/* Opens the publish channel in confirm mode; its publishes are numbered from 1. */
static int open_publish_channel(ctxd__broker_t *b, int channel, char *err, size_t errlen) {
  b->publish_closed = 0;
  b->publish_channel = channel;
  if (ctxd__broker_channel_open(b, channel, err, errlen) != 0) return CTXD_EBROKER;
  amqp_confirm_select(b->conn, (amqp_channel_t)channel);
  if (rpc_failed(b, channel, "confirm.select", err, errlen) != 0) return CTXD_EBROKER;
  b->next_seq = 1;
  return 0;
}

int ctxd__broker_connect(ctxd__broker_t *b, const char *url, const char *password, int heartbeat_s,
                         int rpc_timeout_ms, char *err, size_t errlen) {
  char buf[1024];
  struct amqp_connection_info ci;
  memset(b, 0, sizeof *b);
  b->fd = -1;
  snprintf(buf, sizeof buf, "%s", url);
  if (amqp_parse_url(buf, &ci) != AMQP_STATUS_OK) {
    snprintf(err, errlen, "broker url is not an amqp:// URL");
    return CTXD_EBROKER;
  }
  b->conn = amqp_new_connection();
  amqp_socket_t *s = b->conn != NULL ? amqp_tcp_socket_new(b->conn) : NULL;
  if (s == NULL) {
    snprintf(err, errlen, "out of memory");
    ctxd__broker_close(b, 0);
    return CTXD_ENOMEM;
  }
  struct timeval tv = {rpc_timeout_ms / 1000, (rpc_timeout_ms % 1000) * 1000};
  int st = amqp_socket_open_noblock(s, ci.host, ci.port, &tv);
  if (st != AMQP_STATUS_OK) {
    char raw[512];
    snprintf(raw, sizeof raw, "cannot connect to %s:%d: %s", ci.host, ci.port, amqp_error_string2(st));
    ctxd__redact(raw, err, errlen);
    ctxd__broker_close(b, 0);
    return CTXD_EBROKER;
  }
  amqp_set_rpc_timeout(b->conn, &tv);
  amqp_rpc_reply_t r = amqp_login(b->conn, ci.vhost, 0, 131072, heartbeat_s, AMQP_SASL_METHOD_PLAIN, ci.user,
                                  password != NULL ? password : ci.password);
  if (r.reply_type != AMQP_RESPONSE_NORMAL) {
    char what[256];
    snprintf(what, sizeof what, "login to %s:%d vhost '%s' as '%s'", ci.host, ci.port, ci.vhost, ci.user);
    /* the refusal is in login's own reply (a connection.close), not in amqp_get_rpc_reply */
    reply_failed(b, r, 0, what, err, errlen);
    ctxd__broker_close(b, 0);
    return CTXD_EBROKER;
  }
  b->fd = amqp_get_sockfd(b->conn);
  if (open_publish_channel(b, CTXD__PUBLISH_CHANNEL, err, errlen) != 0) {
    ctxd__broker_close(b, 0);
    return CTXD_EBROKER;
  }
  return 0;
}

int ctxd__broker_publish_reopen(ctxd__broker_t *b, char *err, size_t errlen) {
  amqp_channel_close_ok_t ok = {0};
  if (amqp_send_method(b->conn, (amqp_channel_t)b->publish_channel, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok) !=
      AMQP_STATUS_OK) {
    snprintf(err, errlen, "channel.close-ok could not be sent");
    return CTXD_EBROKER;
  }
  int next = b->publish_channel < CTXD__PUBLISH_REOPENED || b->publish_channel >= CTXD__PUBLISH_REOPENED_LAST
                 ? CTXD__PUBLISH_REOPENED
                 : b->publish_channel + 1;
  return open_publish_channel(b, next, err, errlen);
}

int ctxd__broker_connect_any(ctxd__broker_t *b, char *const *urls, size_t n, const char *password,
                             int heartbeat_s, int rpc_timeout_ms, char *err, size_t errlen) {
  int rc = CTXD_EBROKER;
  for (size_t i = 0; i < n && rc != 0; i++)
    rc = ctxd__broker_connect(b, urls[i], password, heartbeat_s, rpc_timeout_ms, err, errlen);
  return rc;
}

void ctxd__broker_close(ctxd__broker_t *b, int polite) {
  if (b->conn == NULL) return;
  if (polite) amqp_connection_close(b->conn, AMQP_REPLY_SUCCESS);
  amqp_destroy_connection(b->conn);
  b->conn = NULL;
  b->fd = -1;
}

int ctxd__broker_channel_open(ctxd__broker_t *b, int channel, char *err, size_t errlen) {
  amqp_channel_open(b->conn, (amqp_channel_t)channel);
  return rpc_failed(b, channel, "channel.open", err, errlen);
}

int ctxd__broker_exchange(ctxd__broker_t *b, int channel, const char *name, char *err, size_t errlen) {
  char what[512];
  amqp_exchange_declare(b->conn, (amqp_channel_t)channel, amqp_cstring_bytes(name),
                        amqp_cstring_bytes("fanout"), 0, 1, 0, 0, amqp_empty_table);
  snprintf(what, sizeof what, "declare exchange '%s'", name);
  return rpc_failed(b, channel, what, err, errlen);
}

int ctxd__broker_queue(ctxd__broker_t *b, int channel, const char *name, amqp_table_t args, char *err,
                       size_t errlen) {
  char what[512];
  if (ctxd__broker_exchange(b, channel, name, err, errlen) != 0) return CTXD_EBROKER;
  amqp_queue_declare(b->conn, (amqp_channel_t)channel, amqp_cstring_bytes(name), 0, 1, 0, 0, args);
  snprintf(what, sizeof what, "declare queue '%s'", name);
  if (rpc_failed(b, channel, what, err, errlen) != 0) return CTXD_EBROKER;
  amqp_queue_bind(b->conn, (amqp_channel_t)channel, amqp_cstring_bytes(name), amqp_cstring_bytes(name),
                  amqp_empty_bytes, amqp_empty_table);
  snprintf(what, sizeof what, "bind queue '%s'", name);
  return rpc_failed(b, channel, what, err, errlen);
}

int ctxd__broker_bind(ctxd__broker_t *b, int channel, const char *source, const char *dest, char *err,
                      size_t errlen) {
  char what[768];
  amqp_exchange_bind(b->conn, (amqp_channel_t)channel, amqp_cstring_bytes(dest), amqp_cstring_bytes(source),
                     amqp_empty_bytes, amqp_empty_table);
  snprintf(what, sizeof what, "bind exchange '%s' to '%s'", source, dest);
  return rpc_failed(b, channel, what, err, errlen);
}

int ctxd__broker_consume(ctxd__broker_t *b, int channel, const char *queue, int prefetch, char *err,
                         size_t errlen) {
  char what[512];
  amqp_basic_qos(b->conn, (amqp_channel_t)channel, 0, (uint16_t)prefetch, 0);
  if (rpc_failed(b, channel, "basic.qos", err, errlen) != 0) return CTXD_EBROKER;
  amqp_basic_consume(b->conn, (amqp_channel_t)channel, amqp_cstring_bytes(queue), amqp_cstring_bytes(queue),
                     0, 0, 0, amqp_empty_table);
  snprintf(what, sizeof what, "consume '%s'", queue);
  return rpc_failed(b, channel, what, err, errlen);
}

int ctxd__broker_cancel(ctxd__broker_t *b, int channel, const char *queue) {
  /* sent without waiting: the cancel-ok arrives among the deliveries the loop reads */
  amqp_basic_cancel_t m = {.consumer_tag = amqp_cstring_bytes(queue), .nowait = 0};
  int st = amqp_send_method(b->conn, (amqp_channel_t)channel, AMQP_BASIC_CANCEL_METHOD, &m);
  return st == AMQP_STATUS_OK ? 0 : CTXD_EBROKER;
}

int ctxd__broker_ack(ctxd__broker_t *b, int channel, uint64_t tag, int multiple) {
  return amqp_basic_ack(b->conn, (amqp_channel_t)channel, tag, multiple) == AMQP_STATUS_OK ? 0 : CTXD_EBROKER;
}

int ctxd__broker_nack(ctxd__broker_t *b, int channel, uint64_t tag, int multiple, int requeue) {
  return amqp_basic_nack(b->conn, (amqp_channel_t)channel, tag, multiple, requeue) == AMQP_STATUS_OK
             ? 0
             : CTXD_EBROKER;
}

int ctxd__broker_publish(ctxd__broker_t *b, const char *exchange, const char *routing_key, int mandatory,
                         const amqp_basic_properties_t *props, amqp_bytes_t body, uint64_t *seq) {
  int st = amqp_basic_publish(b->conn, (amqp_channel_t)b->publish_channel, amqp_cstring_bytes(exchange),
                              amqp_cstring_bytes(routing_key), mandatory, 0, props, body);
  if (st != AMQP_STATUS_OK) return CTXD_EBROKER;
  *seq = b->next_seq++;
  return 0;
}

int ctxd__broker_next_frame(ctxd__broker_t *b, amqp_frame_t *frame) {
  struct timeval zero = {0, 0};
  int st = amqp_simple_wait_frame_noblock(b->conn, frame, &zero);
  if (st == AMQP_STATUS_OK) return 0;
  if (st == AMQP_STATUS_TIMEOUT) return CTXD_ETIMEDOUT;
  return CTXD_ECLOSED;
}

int ctxd__broker_heartbeat(ctxd__broker_t *b) {
  amqp_frame_t f = {.frame_type = AMQP_FRAME_HEARTBEAT, .channel = 0};
  return amqp_send_frame(b->conn, &f) == AMQP_STATUS_OK ? 0 : CTXD_ECLOSED;
}

int ctxd__broker_read_content(ctxd__broker_t *b, int channel, amqp_message_t *msg) {
  amqp_rpc_reply_t r = amqp_read_message(b->conn, (amqp_channel_t)channel, msg, 0);
  return r.reply_type == AMQP_RESPONSE_NORMAL ? 0 : CTXD_ECLOSED;
}

int ctxd__broker_get(ctxd__broker_t *b, int channel, const char *queue, uint64_t *tag, amqp_message_t *msg) {
  amqp_rpc_reply_t r = amqp_basic_get(b->conn, (amqp_channel_t)channel, amqp_cstring_bytes(queue), 0);
  if (r.reply_type != AMQP_RESPONSE_NORMAL) return CTXD_EBROKER;
  if (r.reply.id != AMQP_BASIC_GET_OK_METHOD) return CTXD_ENOENT;
  *tag = ((amqp_basic_get_ok_t *)r.reply.decoded)->delivery_tag;
  return ctxd__broker_read_content(b, channel, msg) == 0 ? 0 : CTXD_EBROKER;
}

int ctxd__broker_wait_confirm(ctxd__broker_t *b, uint64_t seq, int timeout_ms) {
  struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  for (;;) {
    amqp_frame_t f;
    int st = amqp_simple_wait_frame_noblock(b->conn, &f, &tv);
    if (st == AMQP_STATUS_TIMEOUT) return CTXD_ETIMEDOUT;
    if (st != AMQP_STATUS_OK) return CTXD_ECLOSED;
    if (f.frame_type != AMQP_FRAME_METHOD || f.channel != b->publish_channel) continue;
    if (f.payload.method.id == AMQP_BASIC_ACK_METHOD) {
      amqp_basic_ack_t *a = f.payload.method.decoded;
      if (a->delivery_tag == seq || (a->multiple && a->delivery_tag > seq)) return 0;
    } else if (f.payload.method.id == AMQP_BASIC_NACK_METHOD) {
      amqp_basic_nack_t *a = f.payload.method.decoded;
      if (a->delivery_tag == seq || (a->multiple && a->delivery_tag > seq)) return CTXD_EBROKER;
    } else if (f.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD) {
      return CTXD_ECLOSED;
    }
  }
}
