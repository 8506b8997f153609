/* ctxd plugin ABI: the only header a plugin includes.
 *
 * A plugin is a shared object exporting one function, ctxd_plugin_entry(), that returns a
 * size- and version-stamped descriptor (CTXD_PLUGIN_DEFINE does it). The host checks the
 * stamps, then calls init() with a table of host functions: a plugin uses no host symbol,
 * so it links with -z defs and loads with RTLD_NOW | RTLD_LOCAL.
 *
 * Versioning (docs/plugin-abi.md): CTXD_ABI_MAJOR changes when anything existing changes
 * meaning or layout; the host refuses other majors. CTXD_ABI_MINOR grows when a field or a
 * function slot is appended; a plugin built for a newer minor than the host's is refused,
 * an older one runs unchanged. Every struct crossing the boundary starts with its size.
 *
 * Threads: init, start, stop and destroy run on the host's loop thread. Handlers run on
 * worker threads, several at once for the same consumer: keep mutable state in the
 * database, or lock it yourself. Never block in init/start/stop except to join your own
 * threads in stop. Never call atexit() and never leave a thread running after stop().
 */
#ifndef CTXD_CTXD_H
#define CTXD_CTXD_H

#include <stddef.h>
#include <stdint.h>

#include <ctxd/errno.h>
#include <ctxd/version.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CTXD_ABI_MAJOR 1
#define CTXD_ABI_MINOR 3

/* Build flags: a plugin must match the host in each, or it is refused. */
#define CTXD_BUILD_PTR64 (1u << 0) /* 64-bit pointers */
#define CTXD_BUILD_ASAN (1u << 1)  /* built with AddressSanitizer */

#if defined(__SANITIZE_ADDRESS__)
#define CTXD__FLAG_ASAN CTXD_BUILD_ASAN
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CTXD__FLAG_ASAN CTXD_BUILD_ASAN
#endif
#endif
#ifndef CTXD__FLAG_ASAN
#define CTXD__FLAG_ASAN 0u
#endif
#define CTXD_BUILD_FLAGS ((sizeof(void *) == 8 ? CTXD_BUILD_PTR64 : 0u) | CTXD__FLAG_ASAN)

typedef struct ctxd_plugin_s ctxd_plugin_t; /* the host's handle for a loaded plugin */
typedef struct ctxd_msg_s ctxd_msg_t;       /* an incoming message, valid during its handler */
typedef struct ctxd_tx_s ctxd_tx_t;         /* the handler's database transaction */
typedef struct ctxd_rows_s ctxd_rows_t;     /* the rows a SQL statement returned */
typedef struct ctxd_api_s ctxd_api_t;
typedef struct ctxd_call_s ctxd_call_t; /* an external call an executor runs (ABI 1.2) */

typedef enum {
  CTXD_LOG_ERROR = 0,
  CTXD_LOG_WARN = 1,
  CTXD_LOG_INFO = 2,
  CTXD_LOG_DEBUG = 3
} ctxd_log_level_t;

/* What a handler tells the host. */
typedef enum {
  CTXD_HANDLER_OK = 0,    /* done: its SQL and publishes commit with the inbox row */
  CTXD_HANDLER_RETRY = 1, /* transient failure: rolled back, delivered again later */
  CTXD_HANDLER_FAIL = 2   /* permanent failure: rolled back, moved to <queue>_error */
} ctxd_handler_result_t;

typedef ctxd_handler_result_t (*ctxd_handler_cb)(ctxd_tx_t *tx, const ctxd_msg_t *msg, void *data);

/* ABI 1.3: a batch handler receives every message of its type in a batch at once: n >= 1
 * messages in delivery order, none handled before, all in one transaction, so that it can
 * run one set-based statement for them all (MassTransit's Batch<T>, inside the
 * exactly-once transaction). CTXD_HANDLER_OK commits them all with their inbox rows. Any
 * other result, or a failed statement, rolls the whole batch back; the host then calls the
 * handler again with one message at a time (n == 1), each under a savepoint of its own,
 * so that only a message that fails is retried, redelivered or set aside, exactly as with
 * a per-message handler. msgs and the messages are borrowed until it returns. What
 * publish(), send(), respond(), schedule(), unschedule(), call(), tx_fault() and tx_msg()
 * do is on behalf of the message last named with tx_focus() (msgs[0] at first). */
typedef ctxd_handler_result_t (*ctxd_batch_handler_cb)(ctxd_tx_t *tx, const ctxd_msg_t *const *msgs, size_t n,
                                                       void *data);

/* ---- configuration map: the plugin's typed settings ---------------------------------- */

typedef enum {
  CTXD_CONF_STR = 1,   /* const char *, borrowed until destroy() returns */
  CTXD_CONF_INT = 2,   /* int64_t */
  CTXD_CONF_BOOL = 3,  /* int, 0 or 1 */
  CTXD_CONF_DOUBLE = 4 /* double */
} ctxd_conf_type_t;

/* One setting. The host writes its value at `offset` in the plugin's settings struct
 * (settings_size bytes, allocated and owned by the host). A NULL `def` makes the key
 * required. Keys the map does not name are refused with their path. */
typedef struct {
  ctxd_conf_type_t type;
  const char *name;
  const char *def; /* default as text: "10", "true", "2.5", or the string itself */
  size_t offset;
  const char *help;
} ctxd_conf_entry_t;

/* ---- migrations ---------------------------------------------------------------------- */

/* One schema migration of the plugin's own tables. Versions start at 1 and increase by
 * one; an applied migration must never change (the host stores a checksum and refuses to
 * start when an applied one differs). The array ends with an entry whose sql is NULL. */
typedef struct {
  int version;
  const char *name;
  const char *sql;
} ctxd_migration_t;

/* ---- consumers ----------------------------------------------------------------------- */

/* A handler for one message type on one endpoint. An endpoint is a queue plus an exchange
 * of the same name; each message type's exchange ("Namespace:Type") is bound to it.
 * Several registrations may share an endpoint. Settings of the endpoint come from the
 * configuration (endpoints.<name>), else from what the plugin suggests here, else from
 * endpoints.defaults. */
typedef struct {
  uint32_t size;            /* sizeof(ctxd_consumer_t) */
  const char *endpoint;     /* queue name; copied */
  const char *message_type; /* e.g. "Dodo.DataCatalog.Contracts.Products.v1:MaterialType"; copied */
  ctxd_handler_cb handler;
  void *data; /* handed to handler; the plugin owns it */
  /* Suggested endpoint settings, 0 or NULL for the host's: the endpoint's own section in
   * the configuration overrides them. When registrations of one endpoint disagree, the
   * first that suggests a value wins. */
  uint32_t prefetch;
  uint32_t workers;
  uint32_t batch_size;
  const char *queue_type; /* "classic" or "quorum" */
  /* ABI 1.3: set instead of handler (exactly one of the two) to handle the type in
   * batches; n is at most the endpoint's batch_size times its batch_growth (a batch grows
   * while the queue is deep and every worker is busy). */
  ctxd_batch_handler_cb batch_handler;
} ctxd_consumer_t;

/* ---- messages ------------------------------------------------------------------------ */

typedef enum {
  CTXD_MSG_ID = 0,
  CTXD_MSG_CORRELATION_ID,
  CTXD_MSG_CONVERSATION_ID,
  CTXD_MSG_INITIATOR_ID,
  CTXD_MSG_REQUEST_ID,
  CTXD_MSG_MESSAGE_TYPE, /* the type this handler was registered for, "Namespace:Type" */
  CTXD_MSG_SOURCE_ADDRESS,
  CTXD_MSG_DESTINATION_ADDRESS,
  CTXD_MSG_RESPONSE_ADDRESS,
  CTXD_MSG_FAULT_ADDRESS,
  CTXD_MSG_SENT_TIME,
  CTXD_MSG_ENDPOINT /* the endpoint that received it */
} ctxd_msg_field_t;

/* An outgoing message. publish() sends it to its type's exchange (every subscriber gets
 * it); send() to one endpoint's exchange. It is written to the outbox in the handler's
 * transaction and leaves only if that commits. */
typedef struct {
  uint32_t size;              /* sizeof(ctxd_out_msg_t) */
  const char *message_type;   /* "Namespace:Type" */
  const char *body;           /* the message as a JSON object */
  size_t body_len;            /* 0: body is NUL-terminated */
  const char *destination;    /* send(): endpoint name; publish(): ignored */
  const char *message_id;     /* NULL: the host makes a new one, stable across retries of the row */
  const char *correlation_id; /* NULL: none (MassTransit does not carry it over either) */
  const char *const *headers; /* NULL or name, value, name, value, ..., NULL */
  /* ABI 1.1: MassTransit addressing a handler may ask for (NULL: none), and a time to live
   * (0: none; envelope expirationTime and AMQP expiration) */
  const char *response_address; /* where the receiver should reply: "rabbitmq://host/name" */
  const char *fault_address;    /* where the receiver should send Fault<T> */
  int64_t time_to_live_ms;
} ctxd_out_msg_t;

/* ---- ABI 1.2: scheduled messages, external calls ------------------------------------- */

/* A message to leave later. It is checked and encoded like publish()/send() at schedule
 * time, and kept in ctxd.scheduled until at_ms: then any host's relay moves it to the
 * outbox (once) and publishes it, at most about outbox.sweep_interval_ms late. */
typedef struct {
  uint32_t size;             /* sizeof(ctxd_schedule_t) */
  const ctxd_out_msg_t *msg; /* as for publish()/send(); its time to live counts from at_ms */
  int publish;               /* 1: publish (its type's exchange); 0: send to msg->destination */
  int64_t at_ms;             /* when, as Unix time in ms; now or in the past: at the next tick */
} ctxd_schedule_t;

/* What an executor's fn returns. */
typedef enum {
  CTXD_CALL_DONE = 0,  /* the call happened: its outcome goes back to the plugin */
  CTXD_CALL_RETRY = 1, /* transient failure: run again after the backoff, up to max_attempts */
  CTXD_CALL_FAILED = 2 /* permanent failure: reported as "failed" */
} ctxd_call_result_t;

typedef enum {
  CTXD_CALL_KIND = 0,    /* the kind the plugin recorded, e.g. "sms.send" */
  CTXD_CALL_KEY = 1,     /* the idempotency key: the same on every attempt and every host */
  CTXD_CALL_PAYLOAD = 2, /* the JSON text recorded with call() */
  CTXD_CALL_ATTEMPT = 3  /* "1" on the first run, "2" on the next, ... */
} ctxd_call_field_t;

/* Runs one external call on an executor thread of the host (never the loop thread, never
 * in a transaction). It may block up to the executor's timeout_ms. */
typedef ctxd_call_result_t (*ctxd_call_cb)(const ctxd_call_t *call, void *data);

/* Who runs the calls of one kind of a plugin (executor_register). */
typedef struct {
  uint32_t size;    /* sizeof(ctxd_executor_t) */
  const char *kind; /* the kind call() records; copied */
  ctxd_call_cb fn;
  void *data;                   /* handed to fn; the plugin owns it (valid until stop() returns) */
  const char *outcome_endpoint; /* where Ctxd.Runtime.v1:CallCompleted is sent; copied */
  uint32_t max_attempts;        /* runs before a call is failed; 0: 5 */
  uint32_t backoff_ms;          /* wait after the first retry, doubled each time; 0: 1000 */
  uint32_t timeout_ms;          /* longest fn may take; its claim lasts longer; 0: 30000 */
} ctxd_executor_t;

/* ---- the host function table --------------------------------------------------------- */

/* Slots are only ever appended. Test a slot newer than ABI 1.0 with CTXD_API_HAS. */
struct ctxd_api_s {
  uint32_t size; /* sizeof the host's table */
  uint16_t abi_major;
  uint16_t abi_minor;

  /* Logs a line tagged with the plugin (and the message's ids when msg is not NULL).
   * Any thread. */
  void (*log)(ctxd_plugin_t *plugin, const ctxd_msg_t *msg, ctxd_log_level_t level, const char *fmt, ...)
      __attribute__((format(printf, 4, 5)));

  /* Returns the settings struct filled from the config map; borrowed until destroy()
   * returns. NULL when the plugin has no config map. */
  const void *(*settings)(ctxd_plugin_t *plugin);

  /* Registers a consumer; init() only. 0, CTXD_EINVAL (bad names, NULL handler), CTXD_EEXIST
   * (this endpoint already has a handler for that type) or CTXD_ESTATE (after init). */
  int (*consumer_register)(ctxd_plugin_t *plugin, const ctxd_consumer_t *consumer);

  /* Returns a field of msg, or NULL when the message does not carry it; borrowed until
   * the handler returns. */
  const char *(*msg_field)(const ctxd_msg_t *msg, ctxd_msg_field_t field);
  /* Returns the message object as JSON text (len set when not NULL); borrowed until the
   * handler returns. It was validated against its contract and, when the handler asked
   * for a newer version than the publisher sent, upcast to that version. */
  const char *(*msg_body)(const ctxd_msg_t *msg, size_t *len);
  /* Returns a string header of the envelope (or AMQP header), NULL if absent; borrowed
   * until the handler returns. */
  const char *(*msg_header)(const ctxd_msg_t *msg, const char *name);

  /* Runs one parameterized statement ($1, $2, ... text parameters, NULL for SQL NULL) in
   * the handler's transaction. `rows` may be NULL; otherwise *rows is new, free with
   * rows_free. 0, CTXD_ECONFLICT (unique violation, serialization failure or deadlock:
   * return CTXD_HANDLER_RETRY), CTXD_EDB (other error; tx_error says which). After an
   * error the transaction refuses further statements (CTXD_ESTATE) until the handler
   * returns. With `rows` NULL the host may only queue the statement (a batch runs
   * pipelined) and return 0; if it then fails, the whole batch is rolled back and runs
   * again with every call reporting its own result, so a handler never commits work past
   * a failed statement. Side effects outside the transaction may therefore run twice. */
  int (*sql_exec)(ctxd_tx_t *tx, const char *sql, int nparams, const char *const *params, ctxd_rows_t **rows);
  int (*rows_count)(const ctxd_rows_t *rows);
  /* Rows changed by an INSERT/UPDATE/DELETE. */
  int64_t (*rows_affected)(const ctxd_rows_t *rows);
  /* Returns the text of a value, NULL for SQL NULL or out of range; borrowed until
   * rows_free. */
  const char *(*rows_value)(const ctxd_rows_t *rows, int row, int col);
  void (*rows_free)(ctxd_rows_t *rows);
  /* Returns the last SQL error of this transaction, "" if none; borrowed until the next
   * sql_exec. */
  const char *(*tx_error)(const ctxd_tx_t *tx);

  /* Writes msg to the outbox of the handler's transaction (see ctxd_out_msg_t). 0,
   * CTXD_EINVAL (missing type, body not a JSON object, send() without destination),
   * CTXD_EVALIDATION (the body breaks its type's contract: tx_error says where; the
   * transaction stays usable) or CTXD_EDB. */
  int (*publish)(ctxd_tx_t *tx, const ctxd_out_msg_t *msg);
  int (*send)(ctxd_tx_t *tx, const ctxd_out_msg_t *msg);

  /* Returns the incoming message the transaction is handling; borrowed until the handler
   * returns. */
  const ctxd_msg_t *(*tx_msg)(const ctxd_tx_t *tx);

  /* Says why the handler is about to return CTXD_HANDLER_FAIL or _RETRY: the text goes
   * to the logs and, for a message that ends in <queue>_error, into its MT-Fault-*
   * headers. Both strings are copied; exception_type may be NULL. */
  void (*tx_fault)(ctxd_tx_t *tx, const char *exception_type, const char *message);

  /* MassTransit request/response: writes msg to the outbox addressed to the incoming
   * message's responseAddress (Direct Reply-To: the request's reply_to), carrying its
   * requestId and the time it has left; the reply target is never declared. 0, CTXD_ENOENT
   * (the request has no responseAddress: reply some other way, e.g. publish), CTXD_EINVAL
   * or CTXD_EDB. msg->destination is ignored. */
  int (*respond)(ctxd_tx_t *tx, const ctxd_out_msg_t *msg);

  /* ---- ABI 1.2 (test with CTXD_API_HAS) ---- */

  /* Writes a message to leave at s->at_ms into ctxd.scheduled, in the handler's transaction
   * (nothing is scheduled if it rolls back). Its message id is written to id (the
   * envelope's messageId when it leaves; s->msg->message_id if given: scheduling an id
   * that is still pending again is a no-op). 0, CTXD_EINVAL, CTXD_EVALIDATION or CTXD_EDB,
   * as publish(). */
  int (*schedule)(ctxd_tx_t *tx, const ctxd_schedule_t *s, char id[37]);
  /* Deletes the scheduled message `id` in the handler's transaction. 0, or CTXD_ENOENT
   * (unknown, or already due and moved to the outbox: it leaves), CTXD_EINVAL, CTXD_EDB. */
  int (*unschedule)(ctxd_tx_t *tx, const char *id);

  /* Records an external call of `kind` (an executor of this plugin runs it after the
   * commit) in the handler's transaction. Recording the same (kind, idempotency_key)
   * again is a no-op returning 0: a call runs to its outcome once per key. payload_json
   * (a JSON value's text, NULL: null) is handed to the executor. 0, CTXD_EINVAL (no such
   * executor kind for this plugin, bad key or payload) or CTXD_EDB. */
  int (*call)(ctxd_tx_t *tx, const char *kind, const char *idempotency_key, const char *payload_json);
  /* Registers the executor of one kind of call; init() only. 0, CTXD_EINVAL, CTXD_EEXIST
   * (this plugin already has that kind) or CTXD_ESTATE (after init). */
  int (*executor_register)(ctxd_plugin_t *plugin, const ctxd_executor_t *executor);
  /* Returns a field of the call being run; borrowed until fn returns. */
  const char *(*call_field)(const ctxd_call_t *call, ctxd_call_field_t field);
  /* Sets the outcome (a JSON object's text, copied) sent back with CallCompleted; the last
   * one set before fn returns counts. 0 or CTXD_EINVAL (not a JSON object). */
  int (*call_outcome)(const ctxd_call_t *call, const char *outcome_json);

  /* ---- ABI 1.3 (test with CTXD_API_HAS) ---- */

  /* In a batch handler: the message that what follows (publish, send, respond, schedule,
   * unschedule, call, tx_fault, tx_msg) is on behalf of; its outbox rows, ids and faults
   * are that message's. 0, or CTXD_EINVAL (msg is not in the batch being handled). In a
   * per-message handler, focusing its own message is a no-op returning 0. */
  int (*tx_focus)(ctxd_tx_t *tx, const ctxd_msg_t *msg);
};

#define CTXD_API_HAS(api, slot)                                                                              \
  ((api)->size >= offsetof(ctxd_api_t, slot) + sizeof((api)->slot) && (api)->slot != NULL)

/* ---- the descriptor ------------------------------------------------------------------ */

typedef struct {
  uint32_t size; /* sizeof(ctxd_plugin_desc_t) */
  uint16_t abi_major;
  uint16_t abi_minor;
  uint32_t build_flags; /* CTXD_BUILD_FLAGS */
  const char *name;     /* unique in a host; [a-z0-9_-] */
  const char *version;
  const char *description;

  const ctxd_conf_entry_t *config_map; /* NULL, or ends with an entry whose name is NULL */
  size_t settings_size;                /* bytes of the struct config_map fills */
  const ctxd_migration_t *migrations;  /* NULL, or ends with an entry whose sql is NULL */

  /* Registers consumers; may store state in *state (handed to the others). A non-zero
   * return stops the host before anything is consumed. */
  int (*init)(ctxd_plugin_t *plugin, const ctxd_api_t *api, void **state);
  /* Optional: called once consumers are declared, before the first delivery. */
  int (*start)(void *state);
  /* Optional: consumers have stopped and no handler runs; join any thread you started. */
  void (*stop)(void *state);
  /* Optional: frees state. Also called after a failed init (with what init stored). */
  void (*destroy)(void *state);
} ctxd_plugin_desc_t;

#define CTXD_PLUGIN_ENTRY_SYMBOL "ctxd_plugin_entry"
#define CTXD_PLUGIN_EXPORT __attribute__((visibility("default")))

CTXD_PLUGIN_EXPORT const ctxd_plugin_desc_t *ctxd_plugin_entry(void);

/* Defines the entry function returning `desc` (a static ctxd_plugin_desc_t). */
#define CTXD_PLUGIN_DEFINE(desc)                                                                             \
  CTXD_PLUGIN_EXPORT const ctxd_plugin_desc_t *ctxd_plugin_entry(void) { return &(desc); }

/* Initializer for the stamp fields of a descriptor. */
#define CTXD_PLUGIN_STAMP                                                                                    \
  .size = sizeof(ctxd_plugin_desc_t), .abi_major = CTXD_ABI_MAJOR, .abi_minor = CTXD_ABI_MINOR,              \
  .build_flags = CTXD_BUILD_FLAGS

#ifdef __cplusplus
}
#endif

#endif
