/* Loading the host configuration: values, defaults, environment overrides, and the exact
 * error messages (file:line:col, key path, reason, no secrets). */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <ctxd/errno.h>

#include "config.h"
#include "redact.h"
#include "plugindir.h"

static const char *const env_vars[] = {"CTXD_AMQP_URL", "CTXD_PG_URL", "CTXD_PLUGIN_DIR", "CTXD_LOG_LEVEL",
                                       "CREDENTIALS_DIRECTORY"};

/* The environment of a developer or CI run must not leak into these tests, nor one test's
 * variables into the next. */
static int clear_env(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof env_vars / sizeof env_vars[0]; i++) unsetenv(env_vars[i]);
  return 0;
}

typedef struct {
  char file[64];
  char err[1024];
  ctxd__config_t *cfg;
  int rc;
} loaded_t;

/* Writes text to a fresh temporary file and loads it (the file is gone afterwards; the
 * config keeps its own copy of the text). */
static void load_text(loaded_t *r, const char *text) {
  snprintf(r->file, sizeof r->file, "/tmp/ctxd-test-config-XXXXXX");
  int fd = mkstemp(r->file);
  assert_true(fd >= 0);
  size_t len = strlen(text);
  assert_int_equal(write(fd, text, len), (ssize_t)len);
  close(fd);
  r->err[0] = '\0';
  r->cfg = NULL;
  r->rc = ctxd__config_load(r->file, &r->cfg, r->err, sizeof r->err);
  unlink(r->file);
}

static ctxd__config_t *load_ok(const char *text) {
  loaded_t r;
  load_text(&r, text);
  if (r.rc != 0) fail_msg("unexpected error: %s", r.err);
  assert_non_null(r.cfg);
  return r.cfg;
}

/* Loads text and expects CTXD_ECONFIG with the message "<file>" + tail. */
static void assert_load_error(const char *text, const char *tail) {
  loaded_t r;
  load_text(&r, text);
  char want[1024];
  snprintf(want, sizeof want, "%s%s", r.file, tail);
  assert_int_equal(r.rc, CTXD_ECONFIG);
  assert_null(r.cfg);
  assert_string_equal(r.err, want);
}

/* The error for a broker URL's node that does not parse: it never quotes the node. */
#define NODE_ERROR(i, n)                                                                                     \
  "node " #i " of " #n " is not an amqp:// or amqps:// URL naming a host (nodes are separated by ','; "      \
  "write a ',' in a password as %2C, a '@' as %40)"

/* The smallest valid file. */
#define URLS "\"broker\": {\"url\": \"amqp://localhost\"}, \"database\": {\"url\": \"postgresql:///ctxd\"}"

/* ---- values --------------------------------------------------------------------------- */

/* Several URLs are the nodes of one cluster, tried in turn. */
static void test_cluster_urls(void **state) {
  (void)state;
  ctxd__config_t *cfg = load_ok("{\"broker\": {\"url\": \"amqps://a:5722, amqps://b:5723 ,amqps://c\"},"
                                " \"database\": {\"url\": \"postgresql:///ctxd\"}}");
  assert_int_equal(cfg->nbroker_urls, 3);
  assert_string_equal(cfg->broker_urls[0], "amqps://a:5722");
  assert_string_equal(cfg->broker_urls[1], "amqps://b:5723");
  assert_string_equal(cfg->broker_urls[2], "amqps://c");
  ctxd__config_free(cfg);
  assert_load_error("{\"broker\": {\"url\": \"amqp://a,http://u:secret@b\"}, \"database\": {\"url\": \"p\"}}",
                    ":1:20: broker.url: " NODE_ERROR(2, 2));
}

/* broker.tls: verification on unless turned off by name; settings that cannot be honoured
 * (TLS for plaintext URLs, plaintext nodes beside TLS ones, half a client certificate, an
 * unreadable file) refused at load. */
static void test_broker_tls(void **state) {
  (void)state;
#define DB ", \"database\": {\"url\": \"postgresql://h/db\"}}"
  ctxd__config_t *cfg = load_ok("{\"broker\": {\"url\": \"amqps://h\"}" DB);
  assert_int_equal(cfg->broker_tls.verify, 1);
  assert_null(cfg->broker_tls.ca_file);
  assert_null(cfg->broker_tls.cert_file);
  assert_null(cfg->broker_tls.server_name);
  ctxd__config_free(cfg);
  cfg = load_ok("{\"broker\": {\"url\": \"amqps://h\", \"tls\": {\"ca_file\": \"/dev/null\", "
                "\"cert_file\": \"/dev/null\", \"key_file\": \"/dev/null\", \"server_name\": \"rabbit\", "
                "\"verify\": false}}" DB);
  assert_int_equal(cfg->broker_tls.verify, 0);
  assert_string_equal(cfg->broker_tls.ca_file, "/dev/null");
  assert_string_equal(cfg->broker_tls.cert_file, "/dev/null");
  assert_string_equal(cfg->broker_tls.key_file, "/dev/null");
  assert_string_equal(cfg->broker_tls.server_name, "rabbit");
  ctxd__config_free(cfg);
  assert_load_error("{\"broker\": {\"url\": \"amqp://h\", \"tls\": {}}" DB,
                    ":1:39: broker.tls: set, but no broker URL is amqps://: TLS settings would not be used");
  assert_load_error("{\"broker\": {\"url\": \"amqps://a,amqp://b\"}" DB,
                    ":1:20: broker.url: mixes amqp:// and amqps:// nodes: some would be reached without TLS");
  loaded_t r;
  setenv("CTXD_AMQP_URL", "amqp://a,amqps://b", 1);
  load_text(&r, "{\"broker\": {\"url\": \"amqps://a\"}" DB);
  assert_string_equal(r.err,
                      "CTXD_AMQP_URL: mixes amqp:// and amqps:// nodes: some would be reached without TLS");
  unsetenv("CTXD_AMQP_URL");
  assert_load_error("{\"broker\": {\"url\": \"amqps://h\", \"tls\": {\"cert_file\": \"/dev/null\"}}" DB,
                    ":1:54: broker.tls.cert_file: cert_file and key_file go together (mutual TLS)");
  assert_load_error("{\"broker\": {\"url\": \"amqps://h\", \"tls\": {\"key_file\": \"/dev/null\"}}" DB,
                    ":1:53: broker.tls.key_file: cert_file and key_file go together (mutual TLS)");
  assert_load_error("{\"broker\": {\"url\": \"amqps://h\", \"tls\": {\"ca_file\": \"/no/ca.pem\"}}" DB,
                    ":1:52: broker.tls.ca_file: cannot read '/no/ca.pem': No such file or directory");
  assert_load_error("{\"broker\": {\"url\": \"amqps://h\", \"tls\": {\"verify\": \"no\"}}" DB,
                    ":1:51: broker.tls.verify: expected a boolean, got a string");
#undef DB
}

static const char full[] =
    "{\n"
    "  \"broker\": {\"url\": \"amqps://u:p@rabbit:5671/v\", \"heartbeat_s\": 0,\n"
    "             \"rpc_timeout_ms\": 2000, \"reconnect_max_ms\": 600000},\n"
    "  \"database\": {\"url\": \"host=pg dbname=ctxd\", \"connect_timeout_s\": 5,\n"
    "               \"idle_in_transaction_timeout_ms\": 0},\n"
    "  \"outbox\": {\"sweep_grace_ms\": 100, \"sweep_interval_ms\": 600000,\n"
    "             \"archive_retention_s\": 0},\n"
    "  \"inbox\": {\"retention_s\": 31536000}, \"cleanup_interval_s\": 86400,\n"
    "  \"log\": {\"level\": \"debug\"},\n"
    "  \"admin\": {\"listen\": \"[::1]:9464\", \"max_connections\": 65536, \"idle_timeout_ms\": 100},\n"
    "  \"plugin_dir\": \"/opt/ctxd/plugins\",\n"
    "  \"plugins\": [\n"
    "    {\"name\": \"inventory\", \"path\": \"/abs/inv.so\", \"enabled\": false,\n"
    "     \"settings\": {\"interval\": 5, \"nested\": {\"deep\": [1]}}},\n"
    "    {\"name\": \"order-book_2\", \"path\": \"sub/ob.so\"}\n"
    "  ],\n"
    "  \"endpoints\": {\n"
    "    \"defaults\": {\"prefetch\": 100, \"batch_size\": 10},\n"
    "    \"inventory\": {\"workers\": 4, \"queue_type\": \"quorum\", \"delivery_limit\": 1000,\n"
    "                  \"immediate_retries\": 0, \"redelivery_ms\": \"\"},\n"
    "    \"orders\": {\"prefetch\": 65535, \"batch_size\": 65535, \"workers\": 64,\n"
    "               \"immediate_retries\": 100, \"redelivery_ms\": \"86400000,1\"}\n"
    "  }\n"
    "}\n";

static void test_full(void **state) {
  (void)state;
  ctxd__config_t *cfg = load_ok(full);
  assert_string_equal(cfg->broker_url, "amqps://u:p@rabbit:5671/v");
  assert_true(cfg->heartbeat_s == 0);
  assert_true(cfg->rpc_timeout_ms == 2000);
  assert_true(cfg->reconnect_max_ms == 600000);
  assert_string_equal(cfg->database_url, "host=pg dbname=ctxd");
  assert_true(cfg->db_connect_timeout_s == 5);
  assert_true(cfg->db_idle_in_transaction_timeout_ms == 0);
  assert_true(cfg->outbox_sweep_grace_ms == 100);
  assert_true(cfg->outbox_sweep_interval_ms == 600000);
  assert_true(cfg->outbox_archive_retention_s == 0);
  assert_true(cfg->inbox_retention_s == 31536000);
  assert_true(cfg->cleanup_interval_s == 86400);
  assert_int_equal(cfg->log_level, CTXD__LOG_DEBUG);
  assert_string_equal(cfg->admin_listen, "[::1]:9464");
  assert_true(cfg->admin_max_connections == 65536);
  assert_true(cfg->admin_idle_timeout_ms == 100);
  assert_string_equal(cfg->plugin_dir, "/opt/ctxd/plugins");
  assert_int_equal(cfg->text_len, strlen(full));
  assert_memory_equal(cfg->text, full, strlen(full));

  assert_int_equal(cfg->nplugins, 2);
  const ctxd__plugin_config_t *p = &cfg->plugins[0];
  assert_string_equal(p->name, "inventory");
  assert_string_equal(p->path, "/abs/inv.so");
  assert_int_equal(p->enabled, 0);
  assert_string_equal(p->settings_path, "plugins[0].settings");
  char *settings = json_dumps(p->settings, JSON_COMPACT);
  assert_string_equal(settings, "{\"interval\":5,\"nested\":{\"deep\":[1]}}");
  free(settings);
  p = &cfg->plugins[1];
  assert_string_equal(p->name, "order-book_2");
  assert_string_equal(p->path, "sub/ob.so");
  assert_int_equal(p->enabled, 1);
  assert_int_equal(json_object_size(p->settings), 0);
  assert_string_equal(p->settings_path, "plugins[1].settings");

  const ctxd__endpoint_settings_t *d = &cfg->endpoint_defaults;
  assert_true(d->prefetch == 100 && d->workers == 2 && d->batch_size == 10);
  assert_true(d->delivery_limit == 5 && d->immediate_retries == 2);
  assert_true(d->max_attempts == 5 && d->handler_timeout_ms == 60000 && !d->handler_timeout_exit);
  assert_string_equal(d->queue_type, "classic");
  assert_string_equal(d->redelivery_ms, "5000,30000,300000");
  assert_int_equal(cfg->nendpoints, 2);
  assert_string_equal(cfg->endpoints[0].name, "inventory");
  assert_string_equal(cfg->endpoints[1].name, "orders");

  /* an endpoint starts from the "defaults" section, then its own keys */
  const ctxd__endpoint_settings_t *s = ctxd__config_endpoint(cfg, "inventory");
  assert_ptr_equal(s, &cfg->endpoints[0].settings);
  assert_true(s->prefetch == 100 && s->workers == 4 && s->batch_size == 10);
  /* delivery_limit is deprecated: still read, so older configurations load, and ignored */
  assert_true(s->delivery_limit == 1000 && s->immediate_retries == 0);
  assert_string_equal(s->queue_type, "quorum");
  assert_string_equal(s->redelivery_ms, "");
  s = ctxd__config_endpoint(cfg, "orders");
  assert_true(s->prefetch == 65535 && s->workers == 64 && s->batch_size == 65535);
  assert_true(s->immediate_retries == 100);
  assert_string_equal(s->queue_type, "classic");
  assert_string_equal(s->redelivery_ms, "86400000,1");
  assert_ptr_equal(ctxd__config_endpoint(cfg, "billing"), &cfg->endpoint_defaults);
  ctxd__config_free(cfg);
}

static void test_defaults(void **state) {
  (void)state;
  ctxd__config_t *cfg = load_ok("{" URLS ", \"plugins\": [{\"name\": \"inv\"}],"
                                " \"endpoints\": {\"e\": {}}}");
  assert_string_equal(cfg->broker_url, "amqp://localhost");
  assert_true(cfg->heartbeat_s == 30);
  assert_true(cfg->rpc_timeout_ms == 10000);
  assert_true(cfg->reconnect_max_ms == 10000);
  assert_string_equal(cfg->database_url, "postgresql:///ctxd");
  assert_true(cfg->db_connect_timeout_s == 10);
  assert_true(cfg->db_idle_in_transaction_timeout_ms == 120000);
  assert_int_equal(cfg->db_migrate_auto, 1);
  assert_null(cfg->database_password);
  assert_null(cfg->broker_password);
  assert_true(cfg->outbox_sweep_grace_ms == 10000);
  assert_true(cfg->outbox_sweep_interval_ms == 1000);
  assert_true(cfg->outbox_archive_retention_s == 604800);
  assert_true(cfg->inbox_retention_s == 604800);
  assert_true(cfg->cleanup_interval_s == 60);
  assert_true(cfg->max_message_bytes == 1048576);
  assert_true(cfg->max_inflight_bytes == 67108864);
  assert_int_equal(cfg->log_level, CTXD__LOG_INFO);
  assert_null(cfg->admin_listen);
  assert_true(cfg->admin_max_connections == 128);
  assert_true(cfg->admin_idle_timeout_ms == 5000);
  char dir[PATH_MAX];
  assert_int_equal(ctxd__plugindir_find(NULL, dir, sizeof dir), 0);
  assert_string_equal(cfg->plugin_dir, dir);

  assert_int_equal(cfg->nplugins, 1);
  assert_string_equal(cfg->plugins[0].path, "ctxd_inv.so");
  assert_int_equal(cfg->plugins[0].enabled, 1);
  assert_true(json_is_object(cfg->plugins[0].settings));
  assert_int_equal(json_object_size(cfg->plugins[0].settings), 0);

  const ctxd__endpoint_settings_t *d = &cfg->endpoint_defaults;
  assert_true(d->prefetch == 256 && d->workers == 2 && d->batch_size == 64);
  assert_true(d->delivery_limit == 5 && d->immediate_retries == 2);
  assert_string_equal(d->queue_type, "classic");
  assert_string_equal(d->redelivery_ms, "5000,30000,300000");
  const ctxd__endpoint_settings_t *e = ctxd__config_endpoint(cfg, "e");
  assert_ptr_not_equal(e, d);
  assert_true(e->prefetch == 256 && e->workers == 2 && e->batch_size == 64);
  assert_string_equal(e->redelivery_ms, "5000,30000,300000");
  ctxd__config_free(cfg);

  /* sections may be absent or empty altogether; an empty plugin_dir is an absent one */
  cfg = load_ok("{" URLS ", \"log\": {}, \"admin\": {}, \"plugins\": [], \"endpoints\": {},"
                " \"plugin_dir\": \"\"}");
  assert_int_equal(cfg->nplugins, 0);
  assert_int_equal(cfg->nendpoints, 0);
  assert_null(cfg->admin_listen);
  assert_string_equal(cfg->plugin_dir, dir);
  ctxd__config_free(cfg);
}

static void test_plugin_path(void **state) {
  (void)state;
  ctxd__config_t *cfg = load_ok("{" URLS ", \"plugin_dir\": \"/p\", \"plugins\": ["
                                "{\"name\": \"a\"}, {\"name\": \"b\", \"path\": \"/x/b.so\"}]}");
  char buf[64];
  assert_int_equal(ctxd__config_plugin_path(cfg, &cfg->plugins[0], buf, sizeof buf), 0);
  assert_string_equal(buf, "/p/ctxd_a.so");
  assert_int_equal(ctxd__config_plugin_path(cfg, &cfg->plugins[1], buf, sizeof buf), 0);
  assert_string_equal(buf, "/x/b.so");
  /* "/p/ctxd_a.so" is 12 characters: 13 bytes fit, 12 do not */
  assert_int_equal(ctxd__config_plugin_path(cfg, &cfg->plugins[0], buf, 13), 0);
  assert_int_equal(ctxd__config_plugin_path(cfg, &cfg->plugins[0], buf, 12), CTXD_ETOOBIG);
  assert_int_equal(ctxd__config_plugin_path(cfg, &cfg->plugins[1], buf, 7), CTXD_ETOOBIG);
  ctxd__config_free(cfg);
}

/* ---- environment ---------------------------------------------------------------------- */

static void test_env_overrides(void **state) {
  (void)state;
  setenv("CTXD_AMQP_URL", "amqp://env-broker", 1);
  setenv("CTXD_PG_URL", "postgresql://env-db/x", 1);
  setenv("CTXD_PLUGIN_DIR", "/env/plugins", 1);
  setenv("CTXD_LOG_LEVEL", "warn", 1);
  ctxd__config_t *cfg = load_ok("{" URLS ", \"plugin_dir\": \"/file\", \"log\": {\"level\": \"debug\"}}");
  assert_string_equal(cfg->broker_url, "amqp://env-broker");
  assert_string_equal(cfg->database_url, "postgresql://env-db/x");
  assert_string_equal(cfg->plugin_dir, "/env/plugins");
  assert_int_equal(cfg->log_level, CTXD__LOG_WARN);
  ctxd__config_free(cfg);

  /* with the URLs in the environment the file needs none */
  cfg = load_ok("{}");
  assert_string_equal(cfg->broker_url, "amqp://env-broker");
  assert_string_equal(cfg->database_url, "postgresql://env-db/x");
  ctxd__config_free(cfg);
}

static void test_env_empty_is_unset(void **state) {
  (void)state;
  setenv("CTXD_AMQP_URL", "", 1);
  setenv("CTXD_LOG_LEVEL", "", 1);
  ctxd__config_t *cfg = load_ok("{" URLS "}");
  assert_string_equal(cfg->broker_url, "amqp://localhost");
  assert_int_equal(cfg->log_level, CTXD__LOG_INFO);
  ctxd__config_free(cfg);
}

static void test_env_errors(void **state) {
  (void)state;
  setenv("CTXD_LOG_LEVEL", "loud", 1);
  loaded_t r;
  load_text(&r, "{" URLS "}");
  assert_int_equal(r.rc, CTXD_ECONFIG);
  assert_string_equal(r.err, "CTXD_LOG_LEVEL: expected error, warn, info or debug, got 'loud'");
  unsetenv("CTXD_LOG_LEVEL");

  setenv("CTXD_AMQP_URL", "http://guest:hunter2@rabbit/", 1);
  load_text(&r, "{" URLS "}");
  assert_int_equal(r.rc, CTXD_ECONFIG);
  assert_string_equal(r.err, "CTXD_AMQP_URL: " NODE_ERROR(1, 1));
}

/* ---- errors --------------------------------------------------------------------------- */

static void test_error_wrong_type(void **state) {
  (void)state;
  assert_load_error("{" URLS ",\n"
                    "  \"endpoints\": {\n"
                    "    \"inventory\": {\"prefetch\": \"200\"}}}",
                    ":3:31: endpoints.inventory.prefetch: expected an integer, got a string");
  assert_load_error("{\n \"broker\": 1}", ":2:12: broker: expected an object, got an integer");
  assert_load_error("{" URLS ",\n \"plugins\": {}}", ":2:13: plugins: expected an array, got an object");
  assert_load_error("{" URLS ",\n \"plugins\": [{\"name\": \"a\", \"settings\": []}]}",
                    ":2:40: plugins[0].settings: expected an object, got an array");
  assert_load_error("{" URLS ",\n \"plugins\": [{\"name\": \"a\", \"enabled\": \"yes\"}]}",
                    ":2:39: plugins[0].enabled: expected a boolean, got a string");
  assert_load_error("{" URLS ",\n \"plugins\": [1]}",
                    ":2:14: plugins[0]: expected an object, got an integer");
  assert_load_error("{" URLS ",\n \"endpoints\": {\"e\": null}}",
                    ":2:21: endpoints.e: expected an object, got null");
  assert_load_error("{" URLS ",\n \"endpoints\": {\"defaults\": {\"workers\": 1.5}}}",
                    ":2:40: endpoints.defaults.workers: expected an integer, got a real");
  assert_load_error("[1]", ":1:1: expected an object, got an array");
}

/* The archive kept for good: "keep" instead of seconds; any other word is refused. */
static void test_archive_keep(void **state) {
  (void)state;
  ctxd__config_t *cfg =
      load_ok("{" URLS ", \"outbox\": {\"archive_retention_s\": \"keep\", \"sweep_grace_ms\": 200}}");
  assert_true(cfg->outbox_archive_retention_s == CTXD__RETENTION_KEEP);
  assert_true(cfg->outbox_sweep_grace_ms == 200);
  ctxd__config_free(cfg);
  loaded_t r;
  load_text(&r, "{" URLS ", \"outbox\": {\"archive_retention_s\": \"forever\"}}");
  assert_int_equal(r.rc, CTXD_ECONFIG);
  assert_non_null(strstr(r.err, "outbox.archive_retention_s"));
}

static void test_error_range(void **state) {
  (void)state;
  assert_load_error("{\"broker\": {\"url\": \"amqp://h\",\n"
                    "            \"heartbeat_s\": 3601}, \"database\": {\"url\": \"x\"}}",
                    ":2:28: broker.heartbeat_s: expected an integer from 0 to 3600, got 3601");
  assert_load_error("{\"broker\": {\"url\": \"amqp://h\",\n \"rpc_timeout_ms\": 99}}",
                    ":2:20: broker.rpc_timeout_ms: expected an integer from 100 to 600000, got 99");
  assert_load_error("{\"broker\": {\"url\": \"amqp://h\"},\n"
                    " \"database\": {\"url\": \"x\", \"connect_timeout_s\": 0}}",
                    ":2:48: database.connect_timeout_s: expected an integer from 1 to 600, got 0");
  assert_load_error("{\"broker\": {\"url\": \"amqp://h\"},\n"
                    " \"database\": {\"url\": \"x\", \"idle_in_transaction_timeout_ms\": -1}}",
                    ":2:61: database.idle_in_transaction_timeout_ms: expected an integer from 0 to 86400000, "
                    "got -1");
  assert_load_error("{" URLS ",\n \"endpoints\": {\"e\": {\"workers\": 65}}}",
                    ":2:33: endpoints.e.workers: expected an integer from 1 to 64, got 65");
  assert_load_error("{" URLS ",\n \"endpoints\": {\"defaults\": {\"prefetch\": 65536}}}",
                    ":2:41: endpoints.defaults.prefetch: expected an integer from 1 to 65535, got 65536");
  assert_load_error("{" URLS ",\n \"endpoints\": {\"e\": {\"max_attempts\": 0}}}",
                    ":2:38: endpoints.e.max_attempts: expected an integer from 1 to 1000, got 0");
  assert_load_error("{" URLS ",\n \"endpoints\": {\"e\": {\"handler_timeout_ms\": -1}}}",
                    ":2:44: endpoints.e.handler_timeout_ms: expected an integer from 0 to 86400000, got -1");
  assert_load_error("{" URLS ",\n \"outbox\": {\"sweep_grace_ms\": 99}}",
                    ":2:31: outbox.sweep_grace_ms: expected an integer from 100 to 3600000, got 99");
  assert_load_error("{" URLS ",\n \"outbox\": {\"sweep_interval_ms\": 9}}",
                    ":2:34: outbox.sweep_interval_ms: expected an integer from 10 to 600000, got 9");
  assert_load_error("{" URLS ",\n \"outbox\": {\"archive_retention_s\": -1}}",
                    ":2:36: outbox.archive_retention_s: expected an integer from 0 to 31536000, "
                    "got -1");
  assert_load_error("{" URLS ",\n \"inbox\": {\"retention_s\": 0}}",
                    ":2:27: inbox.retention_s: expected an integer from 1 to 31536000, got 0");
  assert_load_error("{" URLS ",\n \"cleanup_interval_s\": 86401}",
                    ":2:24: cleanup_interval_s: expected an integer from 1 to 86400, got 86401");
  assert_load_error("{" URLS ",\n \"endpoints\": {\"e\": {\"immediate_retries\": 101}}}",
                    ":2:43: endpoints.e.immediate_retries: expected an integer from 0 to 100, got 101");
  assert_load_error("{" URLS ",\n \"endpoints\": {\"e\": {\"batch_size\": 0}}}",
                    ":2:36: endpoints.e.batch_size: expected an integer from 1 to 65535, got 0");
}

/* A handler runs inside a transaction the server counts as idle on the careful path: one
 * allowed longer than the server's idle-in-transaction timeout is refused; behind a pooler
 * the host sets no such timeout. */
static void test_idle_timeout(void **state) {
  (void)state;
  assert_load_error(
      "{" URLS ",\n \"endpoints\": {\"e\": {\"handler_timeout_ms\": 0}}}",
      ":2:44: endpoints.e.handler_timeout_ms: 0 is not below "
      "database.idle_in_transaction_timeout_ms (120000), after which the server ends a session "
      "idle inside a transaction, where a handler runs: lower this (0 is no limit) or raise that "
      "(0: the server's own)");
  assert_load_error(
      "{\"broker\": {\"url\": \"amqp://h\"}, \"database\": {\"url\": \"postgresql:///ctxd\",\n"
      " \"idle_in_transaction_timeout_ms\": 60000}}",
      ":1:1: endpoints.defaults.handler_timeout_ms: 60000 is not below "
      "database.idle_in_transaction_timeout_ms (60000), after which the server ends a session "
      "idle inside a transaction, where a handler runs: lower this (0 is no limit) or raise that "
      "(0: the server's own)");
  ctxd__config_t *cfg =
      load_ok("{\"broker\": {\"url\": \"amqp://h\"}, \"database\": {\"url\": \"postgresql:///ctxd\", "
              "\"pooler\": true}, \"endpoints\": {\"e\": {\"handler_timeout_ms\": 0}}}");
  assert_true(cfg->db_pooler && cfg->db_idle_in_transaction_timeout_ms == 0);
  ctxd__config_free(cfg);
  cfg =
      load_ok("{\"broker\": {\"url\": \"amqp://h\"}, \"database\": {\"url\": \"postgresql:///ctxd\", "
              "\"idle_in_transaction_timeout_ms\": 0}, \"endpoints\": {\"e\": {\"handler_timeout_ms\": 0}}}");
  assert_true(!cfg->db_pooler && cfg->db_idle_in_transaction_timeout_ms == 0);
  ctxd__config_free(cfg);
}

/* The memory bounds: one message must fit in what may be held. */
static void test_limits(void **state) {
  (void)state;
  ctxd__config_t *cfg =
      load_ok("{" URLS ", \"limits\": {\"max_message_bytes\": 4096, \"max_inflight_bytes\": 4096}}");
  assert_true(cfg->max_message_bytes == 4096 && cfg->max_inflight_bytes == 4096);
  ctxd__config_free(cfg);
  assert_load_error("{" URLS ",\n \"limits\": {\"max_message_bytes\": 1023}}",
                    ":2:34: limits.max_message_bytes: expected an integer from 1024 to 536870912, got 1023");
  assert_load_error("{" URLS ",\n \"limits\": {\"max_message_bytes\": \"1M\"}}",
                    ":2:34: limits.max_message_bytes: expected an integer, got a string");
  assert_load_error("{" URLS ",\n \"limits\": {\"max_inflight_bytes\": 1048575}}",
                    ":2:35: limits.max_inflight_bytes: max_inflight_bytes 1048575 is smaller than "
                    "max_message_bytes 1048576");
  /* only the message limit set: it is the one to blame */
  assert_load_error("{" URLS ",\n \"limits\": {\"max_message_bytes\": 100000000}}",
                    ":2:34: limits.max_message_bytes: max_inflight_bytes 67108864 is smaller than "
                    "max_message_bytes 100000000");
}

static void test_error_batch_size(void **state) {
  (void)state;
  assert_load_error("{" URLS ",\n \"endpoints\": {\"e\": {\"prefetch\": 10, \"batch_size\": 11}}}",
                    ":2:52: endpoints.e.batch_size: batch_size 11 is larger than prefetch 10");
  /* the default batch_size (64) is inherited: the prefetch this endpoint lowers is at fault */
  assert_load_error("{" URLS ",\n \"endpoints\": {\"e\": {\"prefetch\": 32}}}",
                    ":2:34: endpoints.e.prefetch: batch_size 64 is larger than prefetch 32");
  assert_load_error("{" URLS ",\n \"endpoints\": {\"defaults\": {\"batch_size\": 300}}}",
                    ":2:43: endpoints.defaults.batch_size: batch_size 300 is larger than "
                    "prefetch 256");
  /* the defaults' batch_size against an endpoint's prefetch */
  assert_load_error("{" URLS ",\n \"endpoints\": {\"defaults\": {\"batch_size\": 100},"
                    " \"e\": {\"prefetch\": 99}}}",
                    ":2:67: endpoints.e.prefetch: batch_size 100 is larger than prefetch 99");
}

static void test_error_unknown_key(void **state) {
  (void)state;
  assert_load_error("{" URLS ",\n \"endpoint\": {}}",
                    ":2:14: endpoint: unknown key (did you mean 'endpoints'?)");
  assert_load_error("{\"broker\": {\"url\": \"amqp://h\",\n  \"heartbeat\": 5}}",
                    ":2:16: broker.heartbeat: unknown key (did you mean 'heartbeat_s'?)");
  assert_load_error("{" URLS ",\n \"log\": {\"Level\": \"info\"}}",
                    ":2:19: log.Level: unknown key (did you mean 'level'?)");
  assert_load_error("{" URLS ",\n \"endpoints\": {\"e\": {\"prefech\": 1}}}",
                    ":2:33: endpoints.e.prefech: unknown key (did you mean 'prefetch'?)");
  assert_load_error("{" URLS ",\n \"plugins\": [{\"name\": \"a\", \"color\": 1}]}",
                    ":2:37: plugins[0].color: unknown key");
  assert_load_error("{" URLS ",\n \"extra\": true}", ":2:11: extra: unknown key");
}

static void test_error_json(void **state) {
  (void)state;
  assert_load_error("{\"broker\": {\"url\": \"amqp://h\"},\n \"broker\": {}}",
                    ":2:9: malformed JSON: duplicate object key near '\"broker\"'");
  assert_load_error("{\"a\": 1,}", ":1:9: malformed JSON: string or '}' expected near '}'");
  assert_load_error("", ":1:0: malformed JSON: '[' or '{' expected near end of file");
  assert_load_error("\"text\"", ":1:6: malformed JSON: '[' or '{' expected near '\"text\"'");
}

static void test_error_required(void **state) {
  (void)state;
  /* no broker section: located at the nearest enclosing value, the root */
  assert_load_error("{\"database\": {\"url\": \"x\"}}",
                    ":1:1: broker.url: required key is missing (or set CTXD_AMQP_URL)");
  assert_load_error("{\"broker\": {\"url\": \"amqp://h\"},\n \"database\": {\"connect_timeout_s\": 3}}",
                    ":2:14: database.url: required key is missing (or set CTXD_PG_URL)");
  assert_load_error("{\"broker\": {\"url\": \"\"}}",
                    ":1:20: broker.url: expected a URL, got an empty string");
  assert_load_error("{" URLS ",\n \"plugins\": [{\"path\": \"x.so\"}]}",
                    ":2:14: plugins[0].name: required key is missing");
}

static void test_error_plugins(void **state) {
  (void)state;
  assert_load_error("{" URLS ",\n \"plugins\": [{\"name\": \"a\"}, {\"name\": \"b\"},\n"
                    "  {\"name\": \"a\", \"enabled\": false}]}",
                    ":3:12: plugins[2].name: duplicate plugin name 'a' (plugins[0] and plugins[2])");
  assert_load_error("{" URLS ",\n \"plugins\": [{\"name\": \"Inventory\"}]}",
                    ":2:23: plugins[0].name: expected 1-64 characters of [a-z0-9_-], got "
                    "'Inventory'");
  assert_load_error("{" URLS ",\n \"plugins\": [{\"name\": \"\"}]}",
                    ":2:23: plugins[0].name: expected 1-64 characters of [a-z0-9_-], got ''");
  char text[256], tail[256];
  snprintf(text, sizeof text, "{" URLS ",\n \"plugins\": [{\"name\": \"%065d\"}]}", 0);
  snprintf(tail, sizeof tail, ":2:23: plugins[0].name: expected 1-64 characters of [a-z0-9_-], got '%065d'",
           0);
  assert_load_error(text, tail);
  snprintf(text, sizeof text, "{" URLS ",\n \"plugins\": [{\"name\": \"%064d\"}]}", 0);
  ctxd__config_free(load_ok(text));
  assert_load_error("{" URLS ",\n \"plugins\": [{\"name\": \"a\", \"path\": \"\"}]}",
                    ":2:36: plugins[0].path: expected a file path, got an empty string");
}

static void test_error_values(void **state) {
  (void)state;
  assert_load_error("{" URLS ",\n \"log\": {\"level\": \"verbose\"}}",
                    ":2:19: log.level: expected error, warn, info or debug, got 'verbose'");
  /* the rule ctxd run binds by: check-config must not pass what run then refuses */
  static const char *const bad_listen[] = {"9464",           "127.0.0.1:65536", ":80",
                                           "localhost:9615", "::1:9464",        "[::1]9464",
                                           "127.1:80",       "127.0.0.1:-1",    ""};
  for (size_t i = 0; i < sizeof bad_listen / sizeof bad_listen[0]; i++) {
    char text[256], tail[256];
    snprintf(text, sizeof text, "{" URLS ",\n \"admin\": {\"listen\": \"%s\"}}", bad_listen[i]);
    snprintf(tail, sizeof tail,
             ":2:22: admin.listen: expected a numeric a.b.c.d:PORT or [IPv6]:PORT with PORT "
             "0-65535, got '%s'",
             bad_listen[i]);
    assert_load_error(text, tail);
  }
  assert_load_error("{" URLS ",\n \"admin\": {\"max_connections\": 0}}",
                    ":2:31: admin.max_connections: expected an integer from 1 to 65536, got 0");
  assert_load_error("{" URLS ",\n \"admin\": {\"listen\": \"127.0.0.1:0\", \"idle_timeout_ms\": 99}}",
                    ":2:56: admin.idle_timeout_ms: expected an integer from 100 to 600000, got 99");
  static const char *const good_listen[] = {"127.0.0.1:0", "[::1]:9464", "0.0.0.0:65535"};
  for (size_t i = 0; i < sizeof good_listen / sizeof good_listen[0]; i++) {
    char text[256];
    snprintf(text, sizeof text, "{" URLS ", \"admin\": {\"listen\": \"%s\"}}", good_listen[i]);
    ctxd__config_t *cfg = load_ok(text);
    assert_string_equal(cfg->admin_listen, good_listen[i]);
    ctxd__config_free(cfg);
  }
  assert_load_error("{" URLS ",\n \"endpoints\": {\"e\": {\"queue_type\": \"stream\"}}}",
                    ":2:36: endpoints.e.queue_type: expected 'classic' or 'quorum', got 'stream'");
  static const char *const bad_redelivery[] = {
      "5000,", ",5000", "5000 ,1",  "0", "86400001", "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17",
      "-5",    "1e3",   "123456789"};
  for (size_t i = 0; i < sizeof bad_redelivery / sizeof bad_redelivery[0]; i++) {
    char text[256], tail[256];
    snprintf(text, sizeof text, "{" URLS ",\n \"endpoints\": {\"e\": {\"redelivery_ms\": \"%s\"}}}",
             bad_redelivery[i]);
    snprintf(tail, sizeof tail,
             ":2:39: endpoints.e.redelivery_ms: expected up to 16 comma-separated delays in "
             "milliseconds (1 to 86400000), got '%s'",
             bad_redelivery[i]);
    assert_load_error(text, tail);
  }
  ctxd__config_t *cfg = load_ok("{" URLS ", \"endpoints\": {\"e\": {\"redelivery_ms\": "
                                "\"1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16\"}}}");
  assert_string_equal(ctxd__config_endpoint(cfg, "e")->redelivery_ms,
                      "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16");
  ctxd__config_free(cfg);
}

static void test_error_file(void **state) {
  (void)state;
  char err[256];
  ctxd__config_t dummy, *cfg = &dummy; /* must be reset to NULL */
  assert_int_equal(ctxd__config_load("/nonexistent/ctxd.json", &cfg, err, sizeof err), CTXD_ECONFIG);
  assert_null(cfg);
  assert_string_equal(err, "/nonexistent/ctxd.json: No such file or directory");
  assert_int_equal(ctxd__config_load("/", &cfg, err, sizeof err), CTXD_ECONFIG);
  assert_string_equal(err, "/: Is a directory");
}

/* ---- secrets -------------------------------------------------------------------------- */

static void assert_redacted(const char *in, const char *want) {
  char buf[256];
  ctxd__redact(in, buf, sizeof buf);
  assert_string_equal(buf, want);
}

static void test_redact_url(void **state) {
  (void)state;
  assert_redacted("amqp://user:secret@h:5672/v", "amqp://user:***@h:5672/v");
  assert_redacted("amqps://user@h/v", "amqps://user@h/v");
  assert_redacted("amqp://h:5672/v", "amqp://h:5672/v");
  assert_redacted("amqp://h/v@x", "amqp://h/v@x");
  assert_redacted("postgresql://ctxd:pa/ss@w0rd@db:5432/ctxd?sslmode=require",
                  "postgresql://ctxd:***@db:5432/ctxd?sslmode=require");
  assert_redacted("postgres://u:@db/x", "postgres://u:***@db/x");
  assert_redacted("postgresql://db/x?user=u&password=secret", "postgresql://db/x?user=u&password=***");
  assert_redacted("host=db user=u password=secret dbname=x", "host=db user=u password=*** dbname=x");
  assert_redacted("host=db password = 'se cr\\'et' dbname=x", "host=db password = *** dbname=x");
  assert_redacted("PASSWORD=x", "PASSWORD=***");
  assert_redacted("no password here", "no password here");
  assert_redacted("", "");
  /* in running text, every URL */
  assert_redacted("got 'amqp://a:b@h' and 'amqp://c:d@i'", "got 'amqp://a:***@h' and 'amqp://c:***@i'");
  /* a password with blanks, which libpq and rabbitmq-c take unescaped */
  assert_redacted("broker amqp://u:correct horse@h:5672/: refused", "broker amqp://u:***@h:5672/: refused");
  assert_redacted("postgresql://u:my pass word@h/db unreachable", "postgresql://u:***@h/db unreachable");

  /* truncation keeps the NUL and never the secret */
  char small[16];
  ctxd__redact("amqp://user:secret@h:5672/v", small, sizeof small);
  assert_string_equal(small, "amqp://user:***");
  ctxd__redact("amqp://user:secret@h:5672/v", small, 1);
  assert_string_equal(small, "");
}

/* Loads text and checks the error names no password while still pointing at the place. */
static void assert_secret_hidden(const char *text, const char *tail) {
  loaded_t r;
  load_text(&r, text);
  assert_int_equal(r.rc, CTXD_ECONFIG);
  assert_null(strstr(r.err, "hunter2"));
  char want[1024];
  snprintf(want, sizeof want, "%s%s", r.file, tail);
  assert_string_equal(r.err, want);
}

static void test_error_secrets(void **state) {
  (void)state;
  assert_secret_hidden("{\"broker\": {\"url\": \"http://guest:hunter2@rabbit/\"}}",
                       ":1:20: broker.url: " NODE_ERROR(1, 1));
  /* the typos of issue 18: a ',' in the broker's password cuts the URL in two nodes, of
   * which the second is the password's tail */
  assert_secret_hidden("{\"broker\": {\"url\": \"amqp://guest:hun,hunter2@rabbit/\"}}",
                       ":1:20: broker.url: " NODE_ERROR(1, 2));
  assert_secret_hidden("{\"broker\": {\"url\": \"amqp://guest@rabbit/,hunter2@x\"}}",
                       ":1:20: broker.url: " NODE_ERROR(2, 2));
  /* libpq quotes the token it could not decode */
  assert_secret_hidden("{\"broker\": {\"url\": \"amqp://h\"}, \"database\": {\"url\": "
                       "\"postgresql://u:hunter2%zz@db/x\"}}",
                       ":1:53: database.url: invalid percent-encoded token: \"***\"");
  /* a keyword string without its '=': libpq names the keyword, or quotes the word */
  assert_secret_hidden("{\"broker\": {\"url\": \"amqp://h\"}, \"database\": {\"url\": "
                       "\"host=db password hunter2 dbname=x\"}}",
                       ":1:53: database.url: missing \"=\" after \"password\" in connection info string");
  assert_secret_hidden("{\"broker\": {\"url\": \"amqp://h\"}, \"database\": {\"url\": "
                       "\"host=db hunter2 dbname=x\"}}",
                       ":1:53: database.url: missing \"=\" after \"***\"");
  /* a '"' inside the password: libpq's quoted piece ends early, nothing after it shows */
  assert_secret_hidden("{\"broker\": {\"url\": \"amqp://h\"}, \"database\": {\"url\": "
                       "\"postgresql://u:ab\\\"cd%zzhunter2@db/x\"}}",
                       ":1:53: database.url: invalid percent-encoded token: \"***\"");
  /* jansson quotes the token it stopped at (up to 20 characters): a half-written URL */
  assert_secret_hidden("{\"broker\": {\"url\": \"amqp://u:hunter2@h/",
                       ":1:39: malformed JSON: premature end of input near '\"amqp://u:***@h/'");
  assert_secret_hidden("{\"database\": {\"url\": \"password=hunter2\n\"}}",
                       ":1:38: malformed JSON: unexpected newline near '\"password=***");
  /* a URL pasted where a key belongs */
  assert_secret_hidden("{\"broker\": {\"amqp://guest:hunter2@rabbit/\": 1}}",
                       ":1:45: broker.amqp://guest:***@rabbit/: unknown key");
  assert_secret_hidden("{" URLS ",\n \"plugins\": [{\"name\": \"amqp://u:hunter2@h\"}]}",
                       ":2:23: plugins[0].name: expected 1-64 characters of [a-z0-9_-], got "
                       "'amqp://u:***@h'");
}

/* ---- secrets from files, migrations ---------------------------------------------------- */

static void test_password_file(void **state) {
  (void)state;
  char dir[] = "/tmp/ctxd-test-cred-XXXXXX", file[128], text[512];
  assert_non_null(mkdtemp(dir));
  snprintf(file, sizeof file, "%s/pg", dir);
  FILE *f = fopen(file, "w");
  assert_non_null(f);
  fputs("hunter2\n", f); /* echo and editors end the file with a newline: not part of it */
  fclose(f);
  snprintf(
      text, sizeof text,
      "{\"broker\": {\"url\": \"amqp://h\", \"password_file\": \"pg\"},"
      " \"database\": {\"url\": \"postgresql:///x\", \"password_file\": \"%s\", \"migrate\": \"check\"}}",
      file);
  /* a relative name is a systemd credential: without CREDENTIALS_DIRECTORY it is an error */
  loaded_t r;
  load_text(&r, text);
  assert_int_equal(r.rc, CTXD_ECONFIG);
  assert_non_null(
      strstr(r.err, "broker.password_file: 'pg' is not an absolute path, and CREDENTIALS_DIRECTORY"));
  setenv("CREDENTIALS_DIRECTORY", dir, 1);
  ctxd__config_t *cfg = load_ok(text);
  assert_string_equal(cfg->broker_password, "hunter2");
  assert_string_equal(cfg->database_password, "hunter2");
  assert_int_equal(cfg->db_migrate_auto, 0);
  ctxd__config_free(cfg);
  /* an unreadable or empty file names the file, never a content */
  unlink(file);
  load_text(&r, text);
  assert_int_equal(r.rc, CTXD_ECONFIG);
  assert_non_null(strstr(r.err, "broker.password_file: cannot read "));
  assert_non_null(strstr(r.err, "/pg: No such file or directory"));
  f = fopen(file, "w");
  assert_non_null(f);
  fclose(f);
  load_text(&r, text);
  assert_int_equal(r.rc, CTXD_ECONFIG);
  assert_non_null(strstr(r.err, "holds no password"));
  unlink(file);
  rmdir(dir);
  unsetenv("CREDENTIALS_DIRECTORY");
}

/* The console's token: inline or from a file like the passwords; not both; absent by
 * default (read-only). */
static void test_admin_token(void **state) {
  (void)state;
  ctxd__config_t *cfg = load_ok("{" URLS "}");
  assert_null(cfg->admin_token);
  ctxd__config_free(cfg);
  cfg = load_ok("{" URLS ", \"admin\": {\"listen\": \"127.0.0.1:0\", \"token\": \"t0ken\"}}");
  assert_string_equal(cfg->admin_token, "t0ken");
  ctxd__config_free(cfg);
  char dir[] = "/tmp/ctxd-test-token-XXXXXX", text[512];
  assert_non_null(mkdtemp(dir));
  setenv("CREDENTIALS_DIRECTORY", dir, 1);
  char file[128];
  snprintf(file, sizeof file, "%s/console", dir);
  FILE *f = fopen(file, "w");
  assert_non_null(f);
  fputs("s3cret\n", f);
  fclose(f);
  snprintf(text, sizeof text, "{" URLS ", \"admin\": {\"token_file\": \"console\"}}");
  cfg = load_ok(text);
  assert_string_equal(cfg->admin_token, "s3cret");
  ctxd__config_free(cfg);
  loaded_t r;
  load_text(&r, "{" URLS ", \"admin\": {\"token\": \"s3cret\", \"token_file\": \"console\"}}");
  assert_int_equal(r.rc, CTXD_ECONFIG);
  assert_non_null(strstr(r.err, "admin.token: set admin.token or admin.token_file, not both"));
  assert_null(strstr(r.err, "s3cret"));
  unlink(file);
  load_text(&r, text);
  assert_int_equal(r.rc, CTXD_ECONFIG);
  assert_non_null(strstr(r.err, "admin.token_file: cannot read "));
  rmdir(dir);
  unsetenv("CREDENTIALS_DIRECTORY");
}

static void test_migrate_setting(void **state) {
  (void)state;
  assert_load_error("{\"broker\": {\"url\": \"amqp://h\"}, \"database\": {\"url\": \"postgresql:///x\", "
                    "\"migrate\": \"sometimes\"}}",
                    ":1:83: database.migrate: expected \"auto\" or \"check\", got \"sometimes\"");
}

/* ---- format_error --------------------------------------------------------------------- */

static void test_format_error(void **state) {
  (void)state;
  ctxd__config_t *cfg = load_ok("{" URLS ",\n \"plugins\": [\n  {\"name\": \"a\",\n"
                                "   \"settings\": {\"interval\": \"x\"}}]}");
  char err[512], want[512];
  ctxd__config_format_error(cfg, "plugins[0].settings.interval", "expected an integer, got a string", err,
                            sizeof err);
  snprintf(want, sizeof want, "%s:4:29: plugins[0].settings.interval: expected an integer, got a string",
           cfg->file);
  assert_string_equal(err, want);
  /* a key that is not there: the nearest enclosing value that is */
  ctxd__config_format_error(cfg, "plugins[0].settings.period", "required key is missing", err, sizeof err);
  snprintf(want, sizeof want, "%s:4:16: plugins[0].settings.period: required key is missing", cfg->file);
  assert_string_equal(err, want);
  ctxd__config_format_error(cfg, "plugins[3].settings", "x", err, sizeof err);
  snprintf(want, sizeof want, "%s:2:13: plugins[3].settings: x", cfg->file);
  assert_string_equal(err, want);
  /* reasons are redacted too */
  ctxd__config_format_error(cfg, "plugins[0]", "cannot reach amqp://u:hunter2@h", err, sizeof err);
  snprintf(want, sizeof want, "%s:3:3: plugins[0]: cannot reach amqp://u:***@h", cfg->file);
  assert_string_equal(err, want);
  ctxd__config_free(cfg);

  /* without text to search, no location */
  ctxd__config_t bare = {.file = "ctxd.json"};
  ctxd__config_format_error(&bare, "plugins[0].settings", "the plugin takes no settings", err, sizeof err);
  assert_string_equal(err, "ctxd.json: plugins[0].settings: the plugin takes no settings");
}

int main(void) {
#define T(f) cmocka_unit_test_setup_teardown(f, clear_env, clear_env)
  const struct CMUnitTest tests[] = {
      T(test_full),
      T(test_defaults),
      T(test_cluster_urls),
      T(test_plugin_path),
      T(test_env_overrides),
      T(test_env_empty_is_unset),
      T(test_env_errors),
      T(test_error_wrong_type),
      T(test_archive_keep),
      T(test_error_range),
      T(test_error_batch_size),
      T(test_error_unknown_key),
      T(test_error_json),
      T(test_error_required),
      T(test_error_plugins),
      T(test_error_values),
      T(test_error_file),
      T(test_redact_url),
      T(test_error_secrets),
      T(test_format_error),
      T(test_limits),
      T(test_idle_timeout),
      T(test_password_file),
      T(test_admin_token),
      T(test_migrate_setting),
      T(test_broker_tls),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
