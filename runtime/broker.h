/* A thin, synchronous layer over one rabbitmq-c connection. A connection belongs to one
 * thread at a time: the host connects on its thread pool (ctxd__broker_connect waits on
 * the broker) and uses the connection on its loop thread after ctxd__broker_move. No call
 * blocks longer than the RPC timeout (frame reads never block). */
#ifndef CTXD_RUNTIME_BROKER_H
#define CTXD_RUNTIME_BROKER_H

#include <stddef.h>
#include <stdint.h>

#include <amqp.h>

/* TLS settings for amqps:// URLs (broker.tls); amqp:// URLs ignore them. Strings are
 * borrowed; NULL or "" means not set. */
typedef struct {
  const char *ca_file;     /* PEM CA bundle; not set: the system's trust store */
  const char *cert_file;   /* client certificate chain, for mutual TLS (with key_file) */
  const char *key_file;    /* its unencrypted PEM private key */
  const char *server_name; /* the name the broker's certificate must carry; not set: the
                              URL's host (an IP address is matched against IP SANs) */
  int verify;              /* check the certificate chain and name; 0 only by explicit configuration */
} ctxd__broker_tls_t;

typedef struct {
  amqp_connection_state_t conn; /* NULL when not connected */
  int tls;                      /* the connection is amqps:// */
  long verify_error;            /* X509_V_ERR_* of a failed TLS handshake, else 0 */
  int fd;
  int publish_channel; /* the publish channel's number now (see CTXD__PUBLISH_CHANNEL) */
  uint64_t next_seq;   /* publisher-confirm sequence number of the next publish */
  /* the broker closed the publish channel in answer to an RPC on it (a declare), with
   * this reason; cleared by ctxd__broker_publish_reopen */
  int publish_closed;
  int close_code;
  char close_text[256];
  /* between ctxd__broker_pipeline_begin and _end: declares, binds, channel.open and
   * basic.qos are sent without waiting, and `unread` of their replies are still due */
  int pipelined;
  size_t unread;
  /* the last connection.blocked (1) or connection.unblocked (0) read among those replies,
   * -1: none; the reason of a block in blocked_reason */
  int blocked;
  char blocked_reason[128];
  unsigned send_deadline_ms; /* TCP_USER_TIMEOUT of the socket (ctxd__broker_send_deadline) */
} ctxd__broker_t;

/* The channel every publish uses, in confirm mode; endpoints use 2, 3, ...; the console's
 * queue figures 2047 (CTXD__INSPECT_CHANNEL, inspect.h). A publish
 * channel the broker closed is reopened under a new number, from CTXD__PUBLISH_REOPENED
 * on (below RabbitMQ's default channel_max, 2047): confirms of the closed one that were
 * already read and queued then cannot settle the new one's publishes. */
#define CTXD__PUBLISH_CHANNEL 1
#define CTXD__PUBLISH_REOPENED 1024
#define CTXD__PUBLISH_REOPENED_LAST 2046

/* Connects (over TLS with `tls` for an amqps:// URL; tls NULL: verified against the
 * system's trust store), logs in (with password instead of the URL's when not NULL), opens
 * the publish channel in confirm mode. 0, or CTXD_EBROKER with the reason in err, redacted
 * (redact.h), e.g. "TLS handshake with host:port failed: certificate verify failed (...)";
 * a refused login says so as the broker does ("ACCESS_REFUSED - Login was refused ...").
 * What it sends and the broker's TCP does not acknowledge within twice heartbeat_s
 * (without heartbeats: rpc_timeout_ms) fails the connection (TCP_USER_TIMEOUT). */
int ctxd__broker_connect(ctxd__broker_t *b, const char *url, const char *password,
                         const ctxd__broker_tls_t *tls, int heartbeat_s, int rpc_timeout_ms, char *err,
                         size_t errlen);

/* Connects to the first of urls that answers (the nodes of a cluster). As
 * ctxd__broker_connect; err holds the last node's reason. */
int ctxd__broker_connect_any(ctxd__broker_t *b, char *const *urls, size_t n, const char *password,
                             const ctxd__broker_tls_t *tls, int heartbeat_s, int rpc_timeout_ms, char *err,
                             size_t errlen);

/* Moves the connection `from` holds to `to`, which must hold none; `from` holds none
 * after. */
void ctxd__broker_move(ctxd__broker_t *to, ctxd__broker_t *from);

/* Closes politely when `polite`, else drops the socket (after a connection error). */
void ctxd__broker_close(ctxd__broker_t *b, int polite);

/* From here on ctxd__broker_exchange, _queue, _bind, _channel_open and _qos send their
 * method without waiting for its reply (a few hundred at most are outstanding): a host
 * of 500 endpoints declares thousands of objects at connect, and one round trip each was
 * most of its start-up. Nothing else may read the connection until
 * ctxd__broker_pipeline_end. */
void ctxd__broker_pipeline_begin(ctxd__broker_t *b);

/* Reads every reply still due and sends methods one round trip at a time again. 0, or
 * CTXD_EBROKER with the broker's reason (which names the object it refused) in err. */
int ctxd__broker_pipeline_end(ctxd__broker_t *b, char *err, size_t errlen);

/* Declares a durable fanout exchange. 0 or CTXD_EBROKER. */
int ctxd__broker_exchange(ctxd__broker_t *b, int channel, const char *name, char *err, size_t errlen);

/* Declares queue `name` (args may be amqp_empty_table) with a same-name fanout exchange
 * bound to it. 0 or CTXD_EBROKER. */
int ctxd__broker_queue(ctxd__broker_t *b, int channel, const char *name, amqp_table_t args, char *err,
                       size_t errlen);

/* Sends a passive queue.declare of `name` without waiting: its queue.declare-ok (ready
 * messages and consumers) arrives among the frames the loop reads, and a missing queue
 * closes the channel, as the broker does. 0 or CTXD_ECLOSED. */
int ctxd__broker_queue_inspect(ctxd__broker_t *b, int channel, const char *name);

/* Binds exchange `source` to exchange `dest` (MassTransit's type -> endpoint binding). */
int ctxd__broker_bind(ctxd__broker_t *b, int channel, const char *source, const char *dest, char *err,
                      size_t errlen);

int ctxd__broker_channel_open(ctxd__broker_t *b, int channel, char *err, size_t errlen);

/* Answers the broker's channel.close of `channel` (its number is free again). 0 or
 * CTXD_ECLOSED. */
int ctxd__broker_channel_close_ok(ctxd__broker_t *b, int channel);

/* After the broker closed the publish channel: answers its channel.close, opens the
 * channel again in confirm mode (sequence numbers start again at 1). 0 or CTXD_EBROKER with
 * the reason in err (the connection is then unusable). */
int ctxd__broker_publish_reopen(ctxd__broker_t *b, char *err, size_t errlen);

/* basic.qos: at most `prefetch` unacknowledged deliveries for each consumer started on
 * `channel` after it. 0 or CTXD_EBROKER. */
int ctxd__broker_qos(ctxd__broker_t *b, int channel, int prefetch, char *err, size_t errlen);

/* basic.consume on `queue`, waiting for its consume-ok; the consumer tag is the queue name. */
int ctxd__broker_consume(ctxd__broker_t *b, int channel, const char *queue, char *err, size_t errlen);
int ctxd__broker_cancel(ctxd__broker_t *b, int channel, const char *queue);

int ctxd__broker_ack(ctxd__broker_t *b, int channel, uint64_t tag, int multiple);
int ctxd__broker_nack(ctxd__broker_t *b, int channel, uint64_t tag, int multiple, int requeue);

/* Publishes on the confirm channel; *seq receives the sequence number its confirm will
 * carry. 0 or CTXD_EBROKER. */
int ctxd__broker_publish(ctxd__broker_t *b, const char *exchange, const char *routing_key, int mandatory,
                         const amqp_basic_properties_t *props, amqp_bytes_t body, uint64_t *seq);

/* Reads the next frame without blocking (services heartbeats as a side effect). 0 with
 * *frame, CTXD_ETIMEDOUT when nothing is buffered or readable, CTXD_ECLOSED when the
 * connection is gone. */
int ctxd__broker_next_frame(ctxd__broker_t *b, amqp_frame_t *frame);

/* Whether frame f is the broker's connection.blocked (1, with its reason, e.g. "low on
 * memory", in reason), connection.unblocked (0) or neither (-1). */
int ctxd__broker_blocked_frame(const amqp_frame_t *f, char *reason, size_t len);

/* Arms (on) or lifts the socket's send deadline (TCP_USER_TIMEOUT, set at connect): bytes
 * the broker's TCP leaves unacknowledged that long fail the connection. Lifted while the
 * broker blocks the connection: it stops reading, its window shuts, and the kernel would
 * take that for a dead link. 0, or CTXD_EBROKER (errno says why). */
int ctxd__broker_send_deadline(ctxd__broker_t *b, int on);

/* Sends a heartbeat frame: what the frame reads do by themselves, for a connection the
 * host does not read for a while. 0 or CTXD_ECLOSED. */
int ctxd__broker_heartbeat(ctxd__broker_t *b);

/* Reads the content frames that follow a basic.deliver/basic.return on `channel`. 0 and
 * *msg (release with amqp_destroy_message), or CTXD_ECLOSED. */
int ctxd__broker_read_content(ctxd__broker_t *b, int channel, amqp_message_t *msg);

/* basic.get (manual ack) from queue. 0 with *tag and *msg (release with
 * amqp_destroy_message), CTXD_ENOENT when the queue is empty, CTXD_EBROKER. Blocking:
 * for command-line tools, not the loop. */
int ctxd__broker_get(ctxd__broker_t *b, int channel, const char *queue, uint64_t *tag, amqp_message_t *msg);

/* Waits (blocking, up to timeout_ms) for the confirm of publish `seq`. 0 when acked,
 * CTXD_EBROKER when nacked, CTXD_ETIMEDOUT or CTXD_ECLOSED. For command-line tools. */
int ctxd__broker_wait_confirm(ctxd__broker_t *b, uint64_t seq, int timeout_ms);

#endif
