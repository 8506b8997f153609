/* The host configuration: one JSON file, environment overrides for URLs and secrets.
 *
 * {
 *   "broker":   {"url": "amqp://user:pass@host:port/vhost[,amqp://...]", "heartbeat_s": 30,
 *                "rpc_timeout_ms": 10000, "reconnect_max_ms": 10000,
 *                "password_file": "/path or credential name",
 *                "tls": {"ca_file": "", "cert_file": "", "key_file": "", "server_name": "",
 *                        "verify": true}},
 *   "database": {"url": "postgresql://...", "connect_timeout_s": 10, "migrate": "auto",
 *                "idle_in_transaction_timeout_ms": 120000,
 *                "password_file": "/path or credential name"},
 *   "outbox":   {"sweep_grace_ms": 10000, "sweep_interval_ms": 1000,
 *                "archive_retention_s": 604800},
 *   "inbox":    {"retention_s": 604800},
 *   "reload":   {"lock_timeout_ms": 10000},
 *   "limits":   {"max_message_bytes": 1048576, "max_inflight_bytes": 67108864},
 *   "errors":   {"store": true, "keep_in_queue": false, "retention_s": 2592000},
 *   "calls":    {"poll_interval_ms": 200, "retention_s": 604800},
 *   "sagas":    {"retention_s": 604800},
 *   "cleanup_interval_s": 60,
 *   "log":      {"level": "info"},
 *   "admin":    {"listen": "127.0.0.1:9464", "max_connections": 128, "idle_timeout_ms": 5000,
 *                "token": "...", "token_file": "/path or credential name"},
 *   "plugin_dir": "/usr/lib/ctxd/plugins",
 *   "plugins":  [{"name": "inventory", "path": "ctxd_inventory.so", "enabled": true,
 *                 "settings": {...}}],
 *   "endpoints": {"defaults": {...}, "<endpoint name>": {"prefetch": 200, ...}}
 * }
 *
 * "errors": with store (default) the host ingests its endpoints' _error queues into
 * ctxd.failed_messages (ingest.h), draining them; keep_in_queue reads <E>_error_store
 * instead and leaves <E>_error its copies; resolved rows are deleted after retention_s.
 *
 * Environment: CTXD_AMQP_URL overrides broker.url, CTXD_PG_URL overrides database.url,
 * CTXD_PLUGIN_DIR overrides plugin_dir, CTXD_LOG_LEVEL overrides log.level. Without either
 * (or empty), plugins load from the folder beside the executable (plugindir.h).
 */
#ifndef CTXD_RUNTIME_CONFIG_H
#define CTXD_RUNTIME_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include <ctxd/ctxd.h>

#include "broker.h"
#include "log.h"

/* Most delayed-redelivery intervals an endpoint takes. */
#define CTXD__MAX_REDELIVERIES 16

/* outbox.archive_retention_s "keep": the archive is never cleaned up. */
#define CTXD__RETENTION_KEEP (-1)

/* Settings of one receive endpoint. Members are int64_t so the config map fills them. */
typedef struct {
  int64_t prefetch;           /* unacknowledged deliveries the broker may hand over; default 256 */
  int64_t workers;            /* worker threads (each with its own database connection); default 2 */
  int64_t batch_size;         /* deliveries per transaction; default 64 */
  int64_t batch_growth;       /* a waiting batch grows up to this x batch_size while every worker
                                 is busy (a deep queue drains in fewer, larger transactions);
                                 default 4; 1 = never; no effect at batch_size 1 */
  const char *queue_type;     /* "classic" or "quorum"; default "classic" */
  int64_t delivery_limit;     /* deprecated: read (older configurations load) and ignored */
  int64_t immediate_retries;  /* handler re-runs in the worker before a delayed redelivery; default 2 */
  const char *redelivery_ms;  /* delayed redelivery intervals, comma-separated ms; default
                                "5000,30000,300000"; "" = none */
  int64_t max_attempts;       /* deliveries of a message that ended with the host (a crash, a
                                 time-out exit) before it goes to _error; default 5 */
  int64_t handler_timeout_ms; /* a handler running longer is reported; 0 = never; default 60000 */
  int handler_timeout_exit;   /* ... and the host exits, for its supervisor to restart it */
} ctxd__endpoint_settings_t;

/* Settings a plugin may suggest for its endpoints (ctxd_consumer_t); an endpoint's own
 * section in the configuration overrides them, endpoints.defaults does not. */
enum {
  CTXD__EP_PREFETCH = 1u << 0,
  CTXD__EP_WORKERS = 1u << 1,
  CTXD__EP_BATCH_SIZE = 1u << 2,
  CTXD__EP_QUEUE_TYPE = 1u << 3
};

typedef struct {
  char *name;
  ctxd__endpoint_settings_t settings;
  unsigned own; /* CTXD__EP_* bits its own section sets */
} ctxd__endpoint_config_t;

typedef struct {
  char *name;
  char *path; /* as written; resolve with ctxd__config_plugin_path */
  int enabled;
  json_t *settings;    /* a JSON object (possibly empty); owned by the config */
  char *settings_path; /* key path for messages, e.g. "plugins[2].settings" */
} ctxd__plugin_config_t;

typedef struct {
  char *file; /* path of the file loaded */
  char *text; /* its contents, to locate keys in error messages */
  size_t text_len;

  char *broker_url;   /* as written: one URL, or the nodes of a cluster separated by commas */
  char **broker_urls; /* broker_url split: the nodes, tried in turn */
  size_t nbroker_urls;
  int64_t heartbeat_s;
  int64_t rpc_timeout_ms;
  int64_t reconnect_max_ms;
  char *broker_password; /* from broker.password_file, replacing the URLs'; NULL: none */
  /* for amqps:// URLs; its strings are owned by the config (NULL when not set) */
  ctxd__broker_tls_t broker_tls;

  char *database_url;
  char *database_password; /* from database.password_file, replacing the URL's; NULL: none */
  int db_migrate_auto;     /* database.migrate "auto" (1) or "check" (0) */
  int64_t db_connect_timeout_s;
  int64_t db_idle_close_ms; /* a worker's connection idle this long is closed; default 30000 */
  /* the server ends a session of the host idle this long inside a transaction (0: the
   * server's setting); default 120000 */
  int64_t db_idle_in_transaction_timeout_ms; /* 0: the server's own (always behind a pooler) */
  int db_pooler; /* database.pooler: no session settings, no ending of lost sessions */

  int64_t outbox_sweep_grace_ms;      /* a row is swept once unconfirmed this long; default 10000 */
  int64_t outbox_sweep_interval_ms;   /* default 1000 */
  int64_t outbox_archive_retention_s; /* default 604800 (7 days); CTXD__RETENTION_KEEP: for good */
  int64_t inbox_retention_s;          /* duplicate-detection window; default 604800 */
  int64_t cleanup_interval_s;         /* default 60 */
  int64_t reload_lock_timeout_ms;     /* a plugin replacement's wait for a lock; default 10000 */
  int64_t max_message_bytes;          /* larger bodies go to <queue>_error; default 1 MiB */
  int64_t max_inflight_bytes;         /* bodies held host-wide before reading stops; default 64 MiB */
  int errors_store;           /* ingest the _error queues into ctxd.failed_messages (ingest.h); default 1 */
  int errors_keep_in_queue;   /* ... from <E>_error_store, leaving <E>_error its copies; default 0 */
  int64_t errors_retention_s; /* resolved failed messages are deleted after; default 2592000 (30 days) */
  int64_t calls_poll_interval_ms; /* an idle executor's wait; default 200 */
  int64_t calls_retention_s;      /* finished calls kept (their keys dedupe); default 604800 */
  int64_t sagas_retention_s;      /* finished saga instances kept; default 604800 */

  ctxd__log_level_t log_level;
  char *admin_listen;            /* NULL: no admin endpoint */
  int64_t admin_max_connections; /* 1-65536, default 128; the host uses at most half its file limit */
  int64_t admin_idle_timeout_ms; /* 100-600000, default 5000 */
  char *admin_token;             /* the console's actions need it; NULL: read-only. Never logged */
  char **admin_allowed_hosts;    /* Host values the console also answers (host or host:port) */
  size_t nadmin_allowed_hosts;
  char *plugin_dir; /* as configured, or found from the executable's place */

  ctxd__plugin_config_t *plugins;
  size_t nplugins;

  ctxd__endpoint_settings_t endpoint_defaults;
  ctxd__endpoint_config_t *endpoints;
  size_t nendpoints;
} ctxd__config_t;

/* Loads and validates `path`. Returns 0 and *out (new, free with ctxd__config_free), or
 * CTXD_ECONFIG with a message in `err` naming the file, line and column, and the key path
 * ("ctxd.json:12:17: endpoints.inventory.prefetch: expected an integer, got a string").
 * Unknown keys are errors. Secrets (URL passwords) never appear in err. */
int ctxd__config_load(const char *path, ctxd__config_t **out, char *err, size_t errlen);

void ctxd__config_free(ctxd__config_t *cfg);

/* Returns the settings for endpoint `name`: its own section, else the defaults; borrowed
 * until ctxd__config_free. */
const ctxd__endpoint_settings_t *ctxd__config_endpoint(const ctxd__config_t *cfg, const char *name);

/* Returns the CTXD__EP_* bits the endpoint's own section sets (0 without a section). */
unsigned ctxd__config_endpoint_own(const ctxd__config_t *cfg, const char *name);

/* Writes the file path of plugin `p` into buf: absolute paths as they are, others under
 * plugin_dir. 0 or CTXD_ETOOBIG. */
int ctxd__config_plugin_path(const ctxd__config_t *cfg, const ctxd__plugin_config_t *p, char *buf,
                             size_t buflen);

/* Formats "FILE:LINE:COL: PATH: REASON" into err, locating the key path ("plugins[1].
 * settings.interval") in the file's text (FILE: PATH: REASON when it is not there, e.g. a
 * missing key: then the location of the nearest enclosing object that is). */
void ctxd__config_format_error(const ctxd__config_t *cfg, const char *path, const char *reason, char *err,
                               size_t errlen);

/* 1 when s is a valid plugin name: 1-64 characters of [a-z0-9_-]. */
int ctxd__config_plugin_name_valid(const char *s);

/* Parses a redelivery list, comma-separated delays of 1 ms to a day ("5000,30000"), into
 * out (at most max). Returns how many (0 for ""), or -1 when the text is not such a list
 * or has more than max. */
int ctxd__config_intervals(const char *text, int64_t *out, int max);

#endif
