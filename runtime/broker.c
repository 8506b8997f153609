#include "broker.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <amqp_ssl_socket.h>
#include <amqp_tcp_socket.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <ctxd/errno.h>

#include "redact.h"

/* Writes the first failure OpenSSL recorded on this thread, with its detail, e.g.
 * "tlsv13 alert certificate required (SSL alert number 116)", or
 * `fallback` when it recorded none; empties the thread's error queue. */
static void tls_reason(char *buf, size_t len, const char *fallback) {
  const char *data = NULL;
  int flags = 0;
  unsigned long e = ERR_get_error_all(NULL, NULL, NULL, &data, &flags);
  const char *reason = e != 0 ? ERR_reason_error_string(e) : NULL;
  if (reason == NULL)
    snprintf(buf, len, "%s", fallback);
  else if ((flags & ERR_TXT_STRING) && data != NULL && data[0] != '\0')
    snprintf(buf, len, "%s (%s)", reason, data);
  else
    snprintf(buf, len, "%s", reason);
  ERR_clear_error();
}

/* Keeps the first certificate error of a handshake in the ctxd__broker_t the context
 * points to (rabbitmq-c frees the SSL object before it reports the failure). */
static int on_verify(int ok, X509_STORE_CTX *x) {
  SSL *ssl = X509_STORE_CTX_get_ex_data(x, SSL_get_ex_data_X509_STORE_CTX_idx());
  ctxd__broker_t *b = ssl != NULL ? SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl)) : NULL;
  if (!ok && b != NULL && b->verify_error == 0) b->verify_error = X509_STORE_CTX_get_error(x);
  return ok;
}

/* Gives no passphrase: an encrypted key fails to load instead of OpenSSL's default
 * prompting on the terminal (a service would hang there). */
static int no_passphrase(char *buf, int size, int rwflag, void *u) {
  (void)buf, (void)size, (void)rwflag, (void)u;
  return 0;
}

/* 1 for the library's TLS failures, whose reason OpenSSL holds. */
static int tls_status(int st) {
  return st == AMQP_STATUS_SSL_ERROR || st == AMQP_STATUS_SSL_CONNECTION_FAILED ||
         st == AMQP_STATUS_SSL_PEER_VERIFY_FAILED || st == AMQP_STATUS_SSL_HOSTNAME_VERIFY_FAILED ||
         st == AMQP_STATUS_SSL_SET_ENGINE_FAILED;
}

/* 0 when reply r (of an RPC on channel) is normal, else CTXD_EBROKER with the reason in err,
 * redacted: the broker's text may quote what it was sent. */
static int reply_failed(ctxd__broker_t *b, amqp_rpc_reply_t r, int channel, const char *what, char *err,
                        size_t errlen) {
  char raw[1024];
  if (r.reply_type == AMQP_RESPONSE_NORMAL) return 0;
  if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION && b->tls && tls_status(r.library_error)) {
    /* e.g. a broker that wants a client certificate ends the session after the handshake:
     * its alert, when it arrived before the socket closed under a write */
    char reason[256];
    tls_reason(reason, sizeof reason,
               "the broker ended it (as one does that requires a client certificate and got none, or "
               "one it does not trust)");
    snprintf(raw, sizeof raw, "%.700s: the TLS session failed: %.255s", what, reason);
  } else if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION) {
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

static int given(const char *s) { return s != NULL && s[0] != '\0'; }

/* Sets up the TLS socket of an amqps:// connection to `host`. 0, or CTXD_EBROKER with the
 * reason in err. The socket belongs to conn. */
static int tls_setup(ctxd__broker_t *b, amqp_socket_t *s, const ctxd__broker_tls_t *tls, const char *host,
                     char *err, size_t errlen) {
  static const ctxd__broker_tls_t defaults = {.verify = 1};
  char reason[256];
  if (tls == NULL) tls = &defaults;
  SSL_CTX *ctx = amqp_ssl_socket_get_context(s);
  ERR_clear_error();
  if (given(tls->ca_file) ? amqp_ssl_socket_set_cacert(s, tls->ca_file) != AMQP_STATUS_OK
                          : SSL_CTX_set_default_verify_paths(ctx) != 1) {
    tls_reason(reason, sizeof reason, "unreadable");
    snprintf(err, errlen, "TLS CA file %s: %s", given(tls->ca_file) ? tls->ca_file : "(system store)",
             reason);
    return CTXD_EBROKER;
  }
  SSL_CTX_set_default_passwd_cb(ctx, no_passphrase);
  if (given(tls->cert_file) && amqp_ssl_socket_set_key(s, tls->cert_file, tls->key_file) != AMQP_STATUS_OK) {
    tls_reason(reason, sizeof reason, "unreadable");
    snprintf(err, errlen, "TLS client certificate %s / key %s: %s", tls->cert_file, tls->key_file, reason);
    return CTXD_EBROKER;
  }
  amqp_ssl_socket_set_verify_peer(s, tls->verify != 0);
  /* OpenSSL checks the name during the handshake (rabbitmq-c's own check knows no IP SANs),
   * so a failure names its reason */
  amqp_ssl_socket_set_verify_hostname(s, 0);
  if (!tls->verify) return 0;
  /* fail in the handshake, so OpenSSL records why */
  SSL_CTX_set_app_data(ctx, b);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, on_verify);
  const char *name = given(tls->server_name) ? tls->server_name : host;
  unsigned char ip[16];
  X509_VERIFY_PARAM *param = SSL_CTX_get0_param(ctx);
  int ok = inet_pton(AF_INET, name, ip) == 1 || inet_pton(AF_INET6, name, ip) == 1
               ? X509_VERIFY_PARAM_set1_ip_asc(param, name)
               : X509_VERIFY_PARAM_set1_host(param, name, 0);
  if (ok != 1) {
    snprintf(err, errlen, "TLS server name '%s' cannot be checked", name);
    return CTXD_EBROKER;
  }
  return 0;
}

int ctxd__broker_connect(ctxd__broker_t *b, const char *url, const char *password,
                         const ctxd__broker_tls_t *tls, int heartbeat_s, int rpc_timeout_ms, char *err,
                         size_t errlen) {
  char buf[1024];
  struct amqp_connection_info ci;
  memset(b, 0, sizeof *b);
  b->fd = -1;
  b->blocked = -1;
  snprintf(buf, sizeof buf, "%s", url);
  if (amqp_parse_url(buf, &ci) != AMQP_STATUS_OK) {
    snprintf(err, errlen, "broker url is not an amqp:// or amqps:// URL");
    return CTXD_EBROKER;
  }
  b->tls = ci.ssl;
  b->conn = amqp_new_connection();
  amqp_socket_t *s = b->conn == NULL ? NULL
                     : ci.ssl        ? amqp_ssl_socket_new(b->conn)
                                     : amqp_tcp_socket_new(b->conn);
  if (s == NULL) {
    snprintf(err, errlen, "out of memory");
    ctxd__broker_close(b, 0);
    return CTXD_ENOMEM;
  }
  if (ci.ssl && tls_setup(b, s, tls, ci.host, err, errlen) != 0) {
    ctxd__broker_close(b, 0);
    return CTXD_EBROKER;
  }
  struct timeval tv = {rpc_timeout_ms / 1000, (rpc_timeout_ms % 1000) * 1000};
  ERR_clear_error();
  int st = amqp_socket_open_noblock(s, ci.host, ci.port, &tv);
  char raw[512] = "";
  if (st != AMQP_STATUS_OK && ci.ssl && b->verify_error != 0) {
    ERR_clear_error();
    snprintf(raw, sizeof raw, "TLS handshake with %s:%d failed: certificate verify failed: %s", ci.host,
             ci.port, X509_verify_cert_error_string(b->verify_error));
  } else if (st != AMQP_STATUS_OK && ci.ssl && tls_status(st)) {
    char reason[256];
    tls_reason(reason, sizeof reason, amqp_error_string2(st));
    snprintf(raw, sizeof raw, "TLS handshake with %s:%d failed: %s", ci.host, ci.port, reason);
  } else if (st != AMQP_STATUS_OK) {
    snprintf(raw, sizeof raw, "cannot connect to %s:%d: %s", ci.host, ci.port, amqp_error_string2(st));
  }
  if (st != AMQP_STATUS_OK) {
    ctxd__redact(raw, err, errlen);
    ctxd__broker_close(b, 0);
    return CTXD_EBROKER;
  }
  amqp_set_rpc_timeout(b->conn, &tv);
  /* A send deadline: bytes the broker's TCP leaves unacknowledged this long (a cut link, a
   * dead machine) fail the connection. The library waits in a send whose socket buffer is
   * full for as long as the heartbeat lets it, without heartbeats for good, and the whole
   * loop waits with it. */
  b->send_deadline_ms = heartbeat_s > 0 ? (unsigned)heartbeat_s * 2000 : (unsigned)rpc_timeout_ms;
  if (ctxd__broker_send_deadline(b, 1) != 0) {
    snprintf(err, errlen, "cannot set a send deadline on the broker socket: %s", strerror(errno));
    ctxd__broker_close(b, 0);
    return CTXD_EBROKER;
  }
  /* connection.blocked: without it the broker stops reading a publishing connection in a
   * resource alarm without a word, and the host cannot tell a blocked broker from a dead
   * one; authentication_failure_close: a refused login says why instead of a bare EOF */
  amqp_table_entry_t caps[] = {
      {.key = amqp_cstring_bytes("connection.blocked"),
       .value = {.kind = AMQP_FIELD_KIND_BOOLEAN, .value.boolean = 1}},
      {.key = amqp_cstring_bytes("authentication_failure_close"),
       .value = {.kind = AMQP_FIELD_KIND_BOOLEAN, .value.boolean = 1}},
  };
  amqp_table_entry_t props[] = {
      {.key = amqp_cstring_bytes("capabilities"),
       .value = {.kind = AMQP_FIELD_KIND_TABLE, .value.table = {.num_entries = 2, .entries = caps}}},
  };
  amqp_table_t client = {.num_entries = 1, .entries = props};
  amqp_rpc_reply_t r =
      amqp_login_with_properties(b->conn, ci.vhost, 0, 131072, heartbeat_s, &client, AMQP_SASL_METHOD_PLAIN,
                                 ci.user, password != NULL ? password : ci.password);
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

int ctxd__broker_channel_close_ok(ctxd__broker_t *b, int channel) {
  amqp_channel_close_ok_t ok = {0};
  return amqp_send_method(b->conn, (amqp_channel_t)channel, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok) ==
                 AMQP_STATUS_OK
             ? 0
             : CTXD_ECLOSED;
}

int ctxd__broker_publish_reopen(ctxd__broker_t *b, char *err, size_t errlen) {
  if (ctxd__broker_channel_close_ok(b, b->publish_channel) != 0) {
    snprintf(err, errlen, "channel.close-ok could not be sent");
    return CTXD_EBROKER;
  }
  int next = b->publish_channel < CTXD__PUBLISH_REOPENED || b->publish_channel >= CTXD__PUBLISH_REOPENED_LAST
                 ? CTXD__PUBLISH_REOPENED
                 : b->publish_channel + 1;
  return open_publish_channel(b, next, err, errlen);
}

int ctxd__broker_connect_any(ctxd__broker_t *b, char *const *urls, size_t n, const char *password,
                             const ctxd__broker_tls_t *tls, int heartbeat_s, int rpc_timeout_ms, char *err,
                             size_t errlen) {
  int rc = CTXD_EBROKER;
  for (size_t i = 0; i < n && rc != 0; i++)
    rc = ctxd__broker_connect(b, urls[i], password, tls, heartbeat_s, rpc_timeout_ms, err, errlen);
  return rc;
}

void ctxd__broker_move(ctxd__broker_t *to, ctxd__broker_t *from) {
  *to = *from;
  /* the certificate check's context pointed to `from`; the handshake is over */
  if (to->conn != NULL && to->tls)
    SSL_CTX_set_app_data(amqp_ssl_socket_get_context(amqp_get_socket(to->conn)), NULL);
  from->conn = NULL;
  from->fd = -1;
}

void ctxd__broker_close(ctxd__broker_t *b, int polite) {
  if (b->conn == NULL) return;
  if (polite) amqp_connection_close(b->conn, AMQP_REPLY_SUCCESS);
  amqp_destroy_connection(b->conn);
  b->conn = NULL;
  b->fd = -1;
  b->pipelined = 0;
  b->unread = 0;
}

/* Replies outstanding before the oldest are read: enough to hide the round trips, few
 * enough that neither side's socket buffers fill with them. */
#define PIPELINE_WINDOW 256

void ctxd__broker_pipeline_begin(ctxd__broker_t *b) { b->pipelined = 1; }

int ctxd__broker_blocked_frame(const amqp_frame_t *f, char *reason, size_t len) {
  if (f->frame_type != AMQP_FRAME_METHOD) return -1;
  if (f->payload.method.id == AMQP_CONNECTION_UNBLOCKED_METHOD) return 0;
  if (f->payload.method.id != AMQP_CONNECTION_BLOCKED_METHOD) return -1;
  const amqp_bytes_t *r = &((const amqp_connection_blocked_t *)f->payload.method.decoded)->reason;
  snprintf(reason, len, "%.*s", (int)r->len, (const char *)r->bytes);
  return 1;
}

/* Reads replies until at most `left` are due. Every frame is a reply: only the host's
 * own pipelined methods are outstanding (no consumer runs yet), and the broker answers
 * a refusal with a channel.close or connection.close instead. */
static int read_replies(ctxd__broker_t *b, size_t left, char *err, size_t errlen) {
  while (b->unread > left) {
    amqp_frame_t f;
    int st = amqp_simple_wait_frame_noblock(b->conn, &f, amqp_get_rpc_timeout(b->conn));
    amqp_rpc_reply_t r = {.reply_type = AMQP_RESPONSE_NORMAL};
    if (st != AMQP_STATUS_OK)
      r = (amqp_rpc_reply_t){.reply_type = AMQP_RESPONSE_LIBRARY_EXCEPTION, .library_error = st};
    else if (f.frame_type != AMQP_FRAME_METHOD)
      continue;
    else if (f.channel == 0 &&
             (b->blocked = ctxd__broker_blocked_frame(&f, b->blocked_reason, sizeof b->blocked_reason)) >= 0)
      continue; /* not a reply: an alarm in force when the connection opened */
    else if (f.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD ||
             f.payload.method.id == AMQP_CONNECTION_CLOSE_METHOD)
      r = (amqp_rpc_reply_t){.reply_type = AMQP_RESPONSE_SERVER_EXCEPTION, .reply = f.payload.method};
    if (reply_failed(b, r, st == AMQP_STATUS_OK ? f.channel : 0, "declaring the topology", err, errlen) != 0)
      return CTXD_EBROKER;
    b->unread--;
  }
  return 0;
}

int ctxd__broker_pipeline_end(ctxd__broker_t *b, char *err, size_t errlen) {
  int rc = read_replies(b, 0, err, errlen);
  b->pipelined = 0;
  b->unread = 0;
  amqp_maybe_release_buffers(b->conn);
  return rc;
}

/* Sends method `id` (m) on channel and, unless pipelined, waits for its reply `reply`.
 * 0 or CTXD_EBROKER with the reason in err. */
static int call(ctxd__broker_t *b, int channel, amqp_method_number_t id, void *m, amqp_method_number_t reply,
                const char *what, char *err, size_t errlen) {
  if (!b->pipelined) {
    amqp_method_number_t replies[] = {reply, 0};
    return reply_failed(b, amqp_simple_rpc(b->conn, (amqp_channel_t)channel, id, replies, m), channel, what,
                        err, errlen);
  }
  int st = amqp_send_method(b->conn, (amqp_channel_t)channel, id, m);
  if (st != AMQP_STATUS_OK) {
    snprintf(err, errlen, "%s: %s", what, amqp_error_string2(st));
    return CTXD_EBROKER;
  }
  b->unread++;
  return b->unread >= PIPELINE_WINDOW ? read_replies(b, PIPELINE_WINDOW / 2, err, errlen) : 0;
}

int ctxd__broker_channel_open(ctxd__broker_t *b, int channel, char *err, size_t errlen) {
  amqp_channel_open_t m = {.out_of_band = amqp_empty_bytes};
  return call(b, channel, AMQP_CHANNEL_OPEN_METHOD, &m, AMQP_CHANNEL_OPEN_OK_METHOD, "channel.open", err,
              errlen);
}

int ctxd__broker_exchange(ctxd__broker_t *b, int channel, const char *name, char *err, size_t errlen) {
  char what[512];
  amqp_exchange_declare_t m = {.exchange = amqp_cstring_bytes(name),
                               .type = amqp_cstring_bytes("fanout"),
                               .durable = 1,
                               .arguments = amqp_empty_table};
  snprintf(what, sizeof what, "declare exchange '%s'", name);
  return call(b, channel, AMQP_EXCHANGE_DECLARE_METHOD, &m, AMQP_EXCHANGE_DECLARE_OK_METHOD, what, err,
              errlen);
}

int ctxd__broker_queue(ctxd__broker_t *b, int channel, const char *name, amqp_table_t args, char *err,
                       size_t errlen) {
  char what[512];
  if (ctxd__broker_exchange(b, channel, name, err, errlen) != 0) return CTXD_EBROKER;
  amqp_queue_declare_t q = {.queue = amqp_cstring_bytes(name), .durable = 1, .arguments = args};
  snprintf(what, sizeof what, "declare queue '%s'", name);
  if (call(b, channel, AMQP_QUEUE_DECLARE_METHOD, &q, AMQP_QUEUE_DECLARE_OK_METHOD, what, err, errlen) != 0)
    return CTXD_EBROKER;
  amqp_queue_bind_t m = {.queue = amqp_cstring_bytes(name),
                         .exchange = amqp_cstring_bytes(name),
                         .routing_key = amqp_empty_bytes,
                         .arguments = amqp_empty_table};
  snprintf(what, sizeof what, "bind queue '%s'", name);
  return call(b, channel, AMQP_QUEUE_BIND_METHOD, &m, AMQP_QUEUE_BIND_OK_METHOD, what, err, errlen);
}

int ctxd__broker_queue_inspect(ctxd__broker_t *b, int channel, const char *name) {
  amqp_queue_declare_t m = {.queue = amqp_cstring_bytes(name), .passive = 1, .arguments = amqp_empty_table};
  return amqp_send_method(b->conn, (amqp_channel_t)channel, AMQP_QUEUE_DECLARE_METHOD, &m) == AMQP_STATUS_OK
             ? 0
             : CTXD_ECLOSED;
}

int ctxd__broker_bind(ctxd__broker_t *b, int channel, const char *source, const char *dest, char *err,
                      size_t errlen) {
  char what[768];
  amqp_exchange_bind_t m = {.destination = amqp_cstring_bytes(dest),
                            .source = amqp_cstring_bytes(source),
                            .routing_key = amqp_empty_bytes,
                            .arguments = amqp_empty_table};
  snprintf(what, sizeof what, "bind exchange '%s' to '%s'", source, dest);
  return call(b, channel, AMQP_EXCHANGE_BIND_METHOD, &m, AMQP_EXCHANGE_BIND_OK_METHOD, what, err, errlen);
}

int ctxd__broker_qos(ctxd__broker_t *b, int channel, int prefetch, char *err, size_t errlen) {
  amqp_basic_qos_t m = {.prefetch_count = (uint16_t)prefetch};
  return call(b, channel, AMQP_BASIC_QOS_METHOD, &m, AMQP_BASIC_QOS_OK_METHOD, "basic.qos", err, errlen);
}

int ctxd__broker_consume(ctxd__broker_t *b, int channel, const char *queue, char *err, size_t errlen) {
  char what[512];
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

int ctxd__broker_send_deadline(ctxd__broker_t *b, int on) {
  /* 0 is the kernel's own: a shut window is probed for as long as the peer answers */
  unsigned ms = on ? b->send_deadline_ms : 0;
  return setsockopt(amqp_get_sockfd(b->conn), IPPROTO_TCP, TCP_USER_TIMEOUT, &ms, sizeof ms) == 0
             ? 0
             : CTXD_EBROKER;
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
