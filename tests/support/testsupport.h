/* Helpers for ctxd's tests: the private stack's URLs, child processes with captured
 * stderr, and waiting on conditions with a deadline (never a bare sleep). */
#ifndef CTXD_TESTSUPPORT_H
#define CTXD_TESTSUPPORT_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <sys/types.h>

#include <cmocka.h>

#include <amqp.h>
#include <jansson.h>
#include <libpq-fe.h>

#include "procfs.h" /* a process's /proc entries */

/* The env file tests/stack/stack.sh writes (CTXD_STACK_ENV names another). Static string. */
const char *ctxt_stack_env_file(void);

/* URLs of the private servers: from CTXD_AMQP_URL / CTXD_PG_URL, else from the env file.
 * Fails the test when neither is there. Static strings. */
const char *ctxt_amqp_url(void);
const char *ctxt_pg_url(void);

/* Creates an empty database with a unique name; writes its URL into url. */
void ctxt_pg_fresh_db(char *url, size_t len);

/* Connects to url or fails the test. Close with PQfinish. */
PGconn *ctxt_pg_connect(const char *url);
/* The first column of the first row of sql as an integer; -1 when no row. */
long ctxt_pg_long(PGconn *c, const char *sql);
/* Waits until ctxt_pg_long(sql) == want; returns the last value seen. */
long ctxt_pg_wait_long(PGconn *c, const char *sql, long want, int timeout_ms);

/* A short unique suffix for queue and exchange names. */
const char *ctxt_unique(void);

/* A child process with its stderr captured. */
typedef struct {
  pid_t pid;
  int err_fd; /* reads the file the child's stderr goes to: a child whose output is not
                 read for a while never blocks on a full pipe */
  char *out;  /* everything read so far, NUL-terminated */
  size_t len, cap;
  int status; /* waitpid status once exited */
  int exited;
} ctxt_proc_t;

/* Starts argv[0] with extra environment entries (NAME=VALUE, NULL-terminated; may be NULL).
 * The child inherits the environment but CTXD_PLUGIN_DIR, which it has only from env. */
void ctxt_proc_spawn(ctxt_proc_t *p, char *const argv[], char *const env[]);
/* The same with the child's open-file limit, soft and hard, set to nofile (0: inherited). */
void ctxt_proc_spawn_nofile(ctxt_proc_t *p, char *const argv[], char *const env[], unsigned long nofile);
/* 1 when needle appears in stderr within timeout_ms (counting from the call), else 0. */
int ctxt_proc_wait_output(ctxt_proc_t *p, const char *needle, int timeout_ms);
/* Reads what the process wrote so far into p->out; returns p->len. */
size_t ctxt_proc_read(ctxt_proc_t *p);
/* 1 when the process exited within timeout_ms (p->status set), else 0. */
int ctxt_proc_wait_exit(ctxt_proc_t *p, int timeout_ms);
/* Sends sig; kills with SIGKILL and reaps if still running at free. */
void ctxt_proc_signal(ctxt_proc_t *p, int sig);
void ctxt_proc_free(ctxt_proc_t *p);

/* Path of the built ctxd executable and of the plugin folder. */
const char *ctxt_ctxd_path(void);
const char *ctxt_plugin_dir(void);

/* Returns the whole file at path, NUL-terminated (new, free with free()); fails the test
 * when it cannot be read. */
char *ctxt_read_file(const char *path);

/* Writes text into a new temporary file; returns its path (static buffer per call slot). */
void ctxt_write_file(char *path, size_t len, const char *text);

/* AMQP: a connected client on channel 1, or the test fails. */
amqp_connection_state_t ctxt_amqp_connect(void);
/* The same to url (channel 1, publisher confirms on), or NULL when the broker cannot be
 * reached: for a thread, which must not fail the test itself. */
amqp_connection_state_t ctxt_amqp_try_connect(const char *url);
/* The same to another broker (a cluster node). */
amqp_connection_state_t ctxt_amqp_connect_url(const char *url);
/* Publishes body to exchange (persistent, with confirms) with content type and optional
 * headers (name, value, ..., NULL); fails the test when not confirmed. */
void ctxt_amqp_publish(amqp_connection_state_t c, const char *exchange, const char *content_type,
                       const char *body, const char *message_id, const char *const *headers);
/* Messages ready in queue (passive declare); -1 when the queue does not exist. */
long ctxt_amqp_queue_count(amqp_connection_state_t c, const char *queue);
/* Waits until queue holds `want` messages; returns the last count seen. */
long ctxt_amqp_wait_count(amqp_connection_state_t c, const char *queue, long want, int timeout_ms);
/* Waits until the queue has `want` consumers; returns the last count. */
long ctxt_amqp_wait_consumers(amqp_connection_state_t c, const char *queue, long want, int timeout_ms);
/* Gets one message from queue into body (NUL-terminated) and its header `header` into
 * value (empty when absent); 1 when a message was there. */
int ctxt_amqp_get(amqp_connection_state_t c, const char *queue, char *body, size_t bodylen,
                  const char *header, char *value, size_t valuelen);
/* Gets one message from queue, acknowledged, into *m (release with amqp_destroy_message,
 * then amqp_maybe_release_buffers); 1 when a message was there. */
int ctxt_amqp_take(amqp_connection_state_t c, const char *queue, amqp_message_t *m);
/* Header `header` of m, a string, into value (empty when absent or of another type). */
void ctxt_amqp_header(const amqp_message_t *m, const char *header, char *value, size_t valuelen);
/* Reads header `header` of the first message in queue into value (empty when absent) and
 * puts the message back; 1 when a message was there. */
int ctxt_amqp_peek_header(amqp_connection_state_t c, const char *queue, const char *header, char *value,
                          size_t valuelen);
/* The same for a header that must be an AMQP integer: 1 with its value in *value; 0 when
 * the header is absent or of another type; -1 when the queue is empty. */
int ctxt_amqp_peek_header_int(amqp_connection_state_t c, const char *queue, const char *header, long *value);
/* Declares what MassTransit's default request client replies to, its bus endpoint: exchange
 * and queue `name`, durable=false, auto-delete=true, the queue with x-expires 60000
 * (RabbitMqBusFactoryConfigurator); bound. Fails the test when the broker refuses. */
void ctxt_amqp_temporary_endpoint(amqp_connection_state_t c, const char *name);
void ctxt_amqp_close(amqp_connection_state_t c);

/* GET http://127.0.0.1:port/path; returns the status (-1 when unreachable) and the body. */
int ctxt_http_get(int port, const char *path, char *body, size_t len);
/* The same with any method, and a JSON request body when req_body is not NULL. */
int ctxt_http_request(int port, const char *method, const char *path, const char *req_body, char *body,
                      size_t len);

/* The fake SMS provider (tests/fakeprovider): starts it as p on a free port and returns the
 * port; POST /control {"mode", "count"} (fail: the next count POSTs answer `status`); GET /sms
 * as JSON (new, json_decref). The caller frees p with ctxt_proc_free. */
int ctxt_fakeprovider_start(ctxt_proc_t *p);
void ctxt_fakeprovider_control(int port, const char *mode, int count);
void ctxt_fakeprovider_fail(int port, int status, int count);
json_t *ctxt_fakeprovider_list(int port);

/* The max_items of the top-level array field `field` of contract `message_type`, read from
 * the contracts the host embeds: a domain's own limit is tested against it. Fails the test
 * when the contract or the field is unknown. */
size_t ctxt_contract_max_items(const char *message_type, const char *field);

/* Runs tests/stack/stack.sh with args (words separated by spaces, as a shell reads them):
 * ctxt_stack_run returns its exit status (system's), ctxt_stack fails the test unless it
 * is 0. */
int ctxt_stack_run(const char *args);
void ctxt_stack(const char *args);
/* stack.sh link-up with this build's ctxd_link: the URLs of the broker and of the stack's
 * database "ctxd" through the links (CTXD_LINK_AMQP_URL, CTXD_LINK_PG_URL), or the test
 * fails. The caller runs link-down (stack.sh stop does too). */
void ctxt_link_up(char *amqp_url, size_t amqp_len, char *pg_url, size_t pg_len);

/* Milliseconds of a monotonic clock. */
int64_t ctxt_now_ms(void);

/* The integer in environment variable name, def when unset or empty (a test's knobs). */
long ctxt_env_long(const char *name, long def);

#endif
