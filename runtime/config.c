#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <amqp.h>
#include <libpq-fe.h>

#include <ctxd/errno.h>

#include "admin.h"
#include "confmap.h"
#include "fail.h"
#include "plugindir.h"
#include "redact.h"

/* ---- messages ------------------------------------------------------------------------ */

/* Writes a message into err, redacted: nothing this file reports can carry a secret. */
__attribute__((format(printf, 3, 4))) static void emit(char *err, size_t errlen, const char *fmt, ...) {
  char raw[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(raw, sizeof raw, fmt, ap);
  va_end(ap);
  ctxd__redact(raw, err, errlen);
}

/* Writes the key path of `key` in the object at `path` ("" for the root). */
static void join(char *buf, size_t buflen, const char *path, const char *key) {
  snprintf(buf, buflen, "%s%s%s", path, path[0] != '\0' ? "." : "", key);
}

/* Cuts the last ".key" or "[n]" off a key path. */
static void parent_path(char *path) {
  size_t cut = 0;
  for (size_t i = 0; path[i] != '\0'; i++)
    if (path[i] == '.' || path[i] == '[') cut = i;
  path[cut] = '\0';
}

void ctxd__config_format_error(const ctxd__config_t *cfg, const char *path, const char *reason, char *err,
                               size_t errlen) {
  const char *sep = path[0] != '\0' ? ": " : "";
  char at[512];
  snprintf(at, sizeof at, "%s", path);
  for (;;) {
    int line, col;
    if (ctxd__json_locate(cfg->text, cfg->text_len, at, &line, &col) == 0) {
      emit(err, errlen, "%s:%d:%d: %s%s%s", cfg->file, line, col, path, sep, reason);
      return;
    }
    if (at[0] == '\0') break;
    parent_path(at);
  }
  emit(err, errlen, "%s: %s%s%s", cfg->file, path, sep, reason);
}

/* ---- loading ------------------------------------------------------------------------- */

/* The config being built and where its first error goes. */
typedef struct {
  ctxd__config_t *cfg;
  char *err;
  size_t errlen;
} load_t;

/* Reports a wrong value, from environment variable `var` when not NULL, else at key `path`
 * of the file. Returns CTXD_ECONFIG. */
static int report(load_t *l, const char *var, const char *path, const char *reason) {
  if (var != NULL)
    emit(l->err, l->errlen, "%s: %s", var, reason);
  else
    ctxd__config_format_error(l->cfg, path, reason, l->err, l->errlen);
  return CTXD_ECONFIG;
}

/* Reports a wrong value at key `path` of the file. Returns CTXD_ECONFIG. */
__attribute__((format(printf, 3, 4))) static int fail_at(load_t *l, const char *path, const char *fmt, ...) {
  char reason[1024];
  va_list ap;
  va_start(ap, fmt);
  ctxd__vfail(reason, sizeof reason, CTXD_ECONFIG, fmt, ap);
  va_end(ap);
  return report(l, NULL, path, reason);
}

static int nomem(load_t *l) {
  emit(l->err, l->errlen, "%s: out of memory", l->cfg->file);
  return CTXD_ENOMEM;
}

static int copy(load_t *l, char **dst, const char *s) {
  *dst = strdup(s);
  return *dst != NULL ? 0 : nomem(l);
}

static int apply(load_t *l, const ctxd_conf_entry_t *map, const json_t *obj, void *dst, const char *path) {
  ctxd__conf_error_t e;
  if (ctxd__confmap_apply(map, obj, dst, path, &e) == 0) return 0;
  return report(l, NULL, e.path, e.reason);
}

/* Returns the variable's value (owned by the environment), or NULL: an unset and an empty
 * variable both mean "not overridden", as shells make either easily. */
static const char *env_get(const char *name) {
  const char *v = getenv(name);
  return v != NULL && v[0] != '\0' ? v : NULL;
}

/* Inclusive bounds of an int64_t member of a section; tables end with key NULL. */
typedef struct {
  const char *key;
  size_t offset;
  int64_t min;
  int64_t max;
} range_t;

static int check_ranges(load_t *l, const range_t *r, const void *section, const char *path) {
  for (; r->key != NULL; r++) {
    int64_t v;
    memcpy(&v, (const char *)section + r->offset, sizeof v);
    if (v < r->min || v > r->max) {
      char at[512];
      join(at, sizeof at, path, r->key);
      return fail_at(l, at, "expected an integer from %lld to %lld, got %lld", (long long)r->min,
                     (long long)r->max, (long long)v);
    }
  }
  return 0;
}

/* The section's URL from environment variable `var`, else from its "url" key (`url`, the
 * map having made "" of an absent key): one of the two is required. */
static int take_url(load_t *l, char **dst, const char *var, const json_t *section, const char *url,
                    const char *path) {
  const char *env = env_get(var);
  if (env != NULL) return copy(l, dst, env);
  if (json_object_get(section, "url") == NULL)
    return fail_at(l, path, "required key is missing (or set %s)", var);
  if (url[0] == '\0') return fail_at(l, path, "expected a URL, got an empty string");
  return copy(l, dst, url);
}

/* ---- the root ------------------------------------------------------------------------ */

typedef struct {
  const json_t *broker;
  const json_t *database;
  const json_t *outbox;
  const json_t *inbox;
  const json_t *reload;
  const json_t *limits;
  const json_t *errors;
  const json_t *calls;
  const json_t *sagas;
  int64_t cleanup_interval_s;
  const json_t *log;
  const json_t *admin;
  const char *plugin_dir;
  const json_t *plugins;
  const json_t *endpoints;
} root_t;

static const ctxd_conf_entry_t root_map[] = {
    {CTXD__CONF_OBJECT, "broker", "", offsetof(root_t, broker), "message broker connection"},
    {CTXD__CONF_OBJECT, "database", "", offsetof(root_t, database), "PostgreSQL connection"},
    {CTXD__CONF_OBJECT, "outbox", "", offsetof(root_t, outbox), "outbox relay"},
    {CTXD__CONF_OBJECT, "inbox", "", offsetof(root_t, inbox), "inbox (duplicate detection)"},
    {CTXD__CONF_OBJECT, "reload", "", offsetof(root_t, reload), "replacing plugins on SIGHUP"},
    {CTXD__CONF_OBJECT, "limits", "", offsetof(root_t, limits), "memory bounds of message bodies"},
    {CTXD__CONF_OBJECT, "errors", "", offsetof(root_t, errors), "the failed-message store"},
    {CTXD__CONF_OBJECT, "calls", "", offsetof(root_t, calls), "external calls (executors)"},
    {CTXD__CONF_OBJECT, "sagas", "", offsetof(root_t, sagas), "process manager instances"},
    {CTXD_CONF_INT, "cleanup_interval_s", "60", offsetof(root_t, cleanup_interval_s),
     "how often expired inbox and outbox archive rows are deleted"},
    {CTXD__CONF_OBJECT, "log", "", offsetof(root_t, log), "logging"},
    {CTXD__CONF_OBJECT, "admin", "", offsetof(root_t, admin), "admin HTTP endpoint"},
    {CTXD_CONF_STR, "plugin_dir", "", offsetof(root_t, plugin_dir),
     "directory of plugins given by relative path; CTXD_PLUGIN_DIR overrides; absent or "
     "empty: <bindir>/../<libdir>/ctxd/plugins beside the executable (plugindir.h)"},
    {CTXD__CONF_ARRAY, "plugins", "", offsetof(root_t, plugins), "plugins to load"},
    {CTXD__CONF_OBJECT, "endpoints", "", offsetof(root_t, endpoints),
     "receive endpoint settings: \"defaults\" and one object per endpoint name"},
    {.name = NULL}};

static const range_t root_ranges[] = {{"cleanup_interval_s", offsetof(root_t, cleanup_interval_s), 1, 86400},
                                      {NULL, 0, 0, 0}};

/* ---- secrets ------------------------------------------------------------------------- */

/* Longest password file read; a longer one is refused rather than cut. */
#define SECRET_MAX 4096

/* Reads the password in `file` into *dst (new, freed with the config): an absolute path as
 * it is, else a systemd credential's name under $CREDENTIALS_DIRECTORY (LoadCredential=).
 * One trailing newline is dropped. Errors name the file, never its content. */
static int read_secret(load_t *l, const char *file, char **dst, const char *path) {
  char full[PATH_MAX], buf[SECRET_MAX + 2];
  const char *dir = env_get("CREDENTIALS_DIRECTORY");
  if (file[0] == '\0') return 0;
  if (file[0] != '/' && dir == NULL)
    return fail_at(l, path,
                   "'%s' is not an absolute path, and CREDENTIALS_DIRECTORY (systemd's LoadCredential=) "
                   "is not set",
                   file);
  int n = file[0] == '/' ? snprintf(full, sizeof full, "%s", file)
                         : snprintf(full, sizeof full, "%s/%s", dir, file);
  if (n < 0 || (size_t)n >= sizeof full) return fail_at(l, path, "path too long");
  FILE *f = fopen(full, "r");
  if (f == NULL) return fail_at(l, path, "cannot read %s: %s", full, strerror(errno));
  size_t len = fread(buf, 1, sizeof buf - 1, f);
  int bad = ferror(f);
  fclose(f);
  if (bad) return fail_at(l, path, "cannot read %s", full);
  buf[len] = '\0';
  if (len > 0 && buf[len - 1] == '\n') buf[--len] = '\0';
  if (len > 0 && buf[len - 1] == '\r') buf[--len] = '\0';
  if (len > SECRET_MAX) return fail_at(l, path, "%s is longer than %d bytes", full, SECRET_MAX);
  if (len == 0 || strlen(buf) != len)
    return fail_at(l, path, "%s holds no password (empty, or a NUL byte)", full);
  return copy(l, dst, buf);
}

/* Copies libpq's message about a connection string into out, each "quoted" piece that is
 * not a libpq keyword (or "=") replaced by "***": libpq quotes the text it could not parse, and that
 * may be the password ('invalid percent-encoded token: "S3cr%zzet"'). */
static void conninfo_error(const char *msg, char *out, size_t outlen) {
  PQconninfoOption *known = PQconndefaults();
  size_t len = 0;
  for (const char *p = msg; *p != '\0' && *p != '\n' && len + 1 < outlen;) {
    const char *end = *p == '"' ? strchr(p + 1, '"') : NULL;
    if (end == NULL) {
      out[len++] = *p++;
      continue;
    }
    int keyword = end == p + 2 && p[1] == '='; /* 'missing "=" after ...' */
    for (PQconninfoOption *o = known; o != NULL && o->keyword != NULL && !keyword; o++)
      keyword = strlen(o->keyword) == (size_t)(end - p - 1) &&
                strncmp(o->keyword, p + 1, (size_t)(end - p - 1)) == 0;
    int w = snprintf(out + len, outlen - len, "\"%.*s\"", keyword ? (int)(end - p - 1) : 3,
                     keyword ? p + 1 : "***");
    len = w < 0 || (size_t)w >= outlen - len ? outlen - 1 : len + (size_t)w;
    /* a quoted piece of the value may hold a '"' of its own: nothing after it is safe */
    if (!keyword) break;
    p = end + 1;
  }
  out[len] = '\0';
  PQconninfoFree(known);
}

/* ---- broker and database ------------------------------------------------------------- */

typedef struct {
  const char *url;
  const char *password_file;
  int64_t heartbeat_s;
  int64_t rpc_timeout_ms;
  int64_t reconnect_max_ms;
  const json_t *tls;
} broker_t;

typedef struct {
  const char *ca_file;
  const char *cert_file;
  const char *key_file;
  const char *server_name;
  int verify;
} tls_t;

static const ctxd_conf_entry_t tls_map[] = {
    {CTXD_CONF_STR, "ca_file", "", offsetof(tls_t, ca_file),
     "PEM file of the CA certificates the broker's certificate must chain to; empty: the "
     "system's trust store"},
    {CTXD_CONF_STR, "cert_file", "", offsetof(tls_t, cert_file),
     "PEM client certificate (chain) for mutual TLS; needs key_file"},
    {CTXD_CONF_STR, "key_file", "", offsetof(tls_t, key_file), "unencrypted PEM private key of cert_file"},
    {CTXD_CONF_STR, "server_name", "", offsetof(tls_t, server_name),
     "host name (or IP address) the broker's certificate must carry; empty: the URL's host"},
    {CTXD_CONF_BOOL, "verify", "true", offsetof(tls_t, verify),
     "check the broker's certificate and name; false is logged as a warning at start"},
    {.name = NULL}};
static const ctxd_conf_entry_t broker_map[] = {
    {CTXD_CONF_STR, "url", "", offsetof(broker_t, url),
     "amqp://user:password@host:port/vhost, or the nodes of a cluster separated by commas; "
     "required unless CTXD_AMQP_URL is set"},
    {CTXD_CONF_STR, "password_file", "", offsetof(broker_t, password_file),
     "file holding the password, used instead of the URLs' (absolute, or a systemd credential's "
     "name under $CREDENTIALS_DIRECTORY)"},
    {CTXD_CONF_INT, "heartbeat_s", "30", offsetof(broker_t, heartbeat_s),
     "AMQP heartbeat in seconds, 0 to disable"},
    {CTXD_CONF_INT, "rpc_timeout_ms", "10000", offsetof(broker_t, rpc_timeout_ms),
     "how long to wait for the broker's reply to a request"},
    {CTXD_CONF_INT, "reconnect_max_ms", "10000", offsetof(broker_t, reconnect_max_ms),
     "longest pause between reconnection attempts"},
    {CTXD__CONF_OBJECT, "tls", "", offsetof(broker_t, tls),
     "TLS for amqps:// URLs (verified against the system's trust store without it)"},
    {.name = NULL}};

static const range_t broker_ranges[] = {
    {"heartbeat_s", offsetof(broker_t, heartbeat_s), 0, 3600},
    {"rpc_timeout_ms", offsetof(broker_t, rpc_timeout_ms), 100, 600000},
    {"reconnect_max_ms", offsetof(broker_t, reconnect_max_ms), 100, 600000},
    {NULL, 0, 0, 0}};

/* A file setting `key` of broker.tls must be readable now: a host that could not read it
 * would only say so at its first connection. */
static int tls_file(load_t *l, const char *key, const char *file, const char **dst) {
  char at[64];
  if (file[0] == '\0') return 0;
  join(at, sizeof at, "broker.tls", key);
  FILE *f = fopen(file, "r");
  if (f == NULL) return fail_at(l, at, "cannot read '%s': %s", file, strerror(errno));
  fclose(f);
  return copy(l, (char **)dst, file);
}

/* broker.tls: only with an amqps:// URL (settings that would not be used are a mistake),
 * and whole (a certificate without its key cannot be honoured). */
static int load_broker_tls(load_t *l, const json_t *section) {
  ctxd__broker_tls_t *t = &l->cfg->broker_tls;
  int tls_urls = 0;
  tls_t s;
  for (size_t i = 0; i < l->cfg->nbroker_urls; i++)
    tls_urls += strncmp(l->cfg->broker_urls[i], "amqps://", 8) == 0;
  int rc = apply(l, tls_map, section, &s, "broker.tls");
  if (rc != 0) return rc;
  if (tls_urls != 0 && tls_urls != (int)l->cfg->nbroker_urls)
    return report(l, env_get("CTXD_AMQP_URL") != NULL ? "CTXD_AMQP_URL" : NULL, "broker.url",
                  "mixes amqp:// and amqps:// nodes: some would be reached without TLS");
  t->verify = s.verify;
  if (section == NULL) return 0;
  if (tls_urls == 0)
    return fail_at(l, "broker.tls", "set, but no broker URL is amqps://: TLS settings would not be used");
  if ((s.cert_file[0] == '\0') != (s.key_file[0] == '\0'))
    return fail_at(l, s.cert_file[0] == '\0' ? "broker.tls.key_file" : "broker.tls.cert_file",
                   "cert_file and key_file go together (mutual TLS)");
  if ((rc = tls_file(l, "ca_file", s.ca_file, &t->ca_file)) != 0) return rc;
  if ((rc = tls_file(l, "cert_file", s.cert_file, &t->cert_file)) != 0) return rc;
  if ((rc = tls_file(l, "key_file", s.key_file, &t->key_file)) != 0) return rc;
  if (s.server_name[0] != '\0' && (rc = copy(l, (char **)&t->server_name, s.server_name)) != 0) return rc;
  if (!s.verify)
    ctxd__log(CTXD__LOG_WARN, "config",
              "broker.tls.verify is false: the broker's certificate and name are not checked, "
              "so anyone between this host and the broker can read and change its traffic");
  return 0;
}

static int load_broker(load_t *l, const json_t *section) {
  ctxd__config_t *cfg = l->cfg;
  broker_t b;
  int rc = apply(l, broker_map, section, &b, "broker");
  if (rc == 0) rc = check_ranges(l, broker_ranges, &b, "broker");
  if (rc == 0) rc = take_url(l, &cfg->broker_url, "CTXD_AMQP_URL", section, b.url, "broker.url");
  if (rc != 0) return rc;
  /* several URLs, separated by commas, are the nodes of one cluster */
  size_t n = 1;
  for (const char *c = cfg->broker_url; *c; c++) n += *c == ',';
  if ((cfg->broker_urls = calloc(n, sizeof *cfg->broker_urls)) == NULL) return nomem(l);
  for (const char *p = cfg->broker_url; cfg->nbroker_urls < n;) {
    p += strspn(p, " ");
    size_t len = strcspn(p, ",");
    while (len > 0 && p[len - 1] == ' ') len--;
    char *url = strndup(p, len);
    if (url == NULL) return nomem(l);
    cfg->broker_urls[cfg->nbroker_urls++] = url;
    /* the node's text is never quoted: a ',' in a password cuts it, and either piece may
     * be a piece of the password */
    char parsed[1024];
    struct amqp_connection_info ci;
    snprintf(parsed, sizeof parsed, "%s", url); /* amqp_parse_url cuts its input up */
    if ((strncmp(url, "amqp://", 7) != 0 && strncmp(url, "amqps://", 8) != 0) ||
        strlen(url) >= sizeof parsed || amqp_parse_url(parsed, &ci) != AMQP_STATUS_OK) {
      char reason[256];
      snprintf(reason, sizeof reason,
               "node %zu of %zu is not an amqp:// or amqps:// URL naming a host (nodes are "
               "separated by ','; write a ',' in a password as %%2C, a '@' as %%40)",
               cfg->nbroker_urls, n);
      return report(l, env_get("CTXD_AMQP_URL") != NULL ? "CTXD_AMQP_URL" : NULL, "broker.url", reason);
    }
    p += strcspn(p, ",");
    if (*p == ',') p++;
  }
  if ((rc = read_secret(l, b.password_file, &cfg->broker_password, "broker.password_file")) != 0) return rc;
  cfg->heartbeat_s = b.heartbeat_s;
  cfg->rpc_timeout_ms = b.rpc_timeout_ms;
  cfg->reconnect_max_ms = b.reconnect_max_ms;
  return load_broker_tls(l, b.tls);
}

typedef struct {
  const char *url;
  const char *password_file;
  const char *migrate;
  int64_t connect_timeout_s;
  int64_t idle_close_ms;
  int64_t idle_in_transaction_timeout_ms;
  int pooler;
} database_t;

static const ctxd_conf_entry_t database_map[] = {
    {CTXD_CONF_STR, "url", "", offsetof(database_t, url),
     "libpq connection URI or keyword string; required unless CTXD_PG_URL is set"},
    {CTXD_CONF_STR, "password_file", "", offsetof(database_t, password_file),
     "file holding the password, used instead of the URL's (absolute, or a systemd credential's "
     "name under $CREDENTIALS_DIRECTORY)"},
    {CTXD_CONF_STR, "migrate", "auto", offsetof(database_t, migrate),
     "\"auto\": `ctxd run` applies lacking migrations (needs CREATE); \"check\": it only checks "
     "that `ctxd migrate` applied them all, and refuses to start if not"},
    {CTXD_CONF_INT, "connect_timeout_s", "10", offsetof(database_t, connect_timeout_s),
     "connection timeout in seconds"},
    {CTXD_CONF_INT, "idle_close_ms", "30000", offsetof(database_t, idle_close_ms),
     "a worker closes its database connection after this long without a batch (and connects "
     "again for the next): idle endpoints hold none"},
    {CTXD_CONF_INT, "idle_in_transaction_timeout_ms", "120000",
     offsetof(database_t, idle_in_transaction_timeout_ms),
     "the server ends a session of the host left idle inside a transaction this long (its "
     "idle_in_transaction_session_timeout), releasing the locks of one cut off from the host; "
     "keep it above every handler_timeout_ms; 0: the server's own setting"},
    {CTXD_CONF_BOOL, "pooler", "false", offsetof(database_t, pooler),
     "the URL leads to a connection pooler (PgBouncer): the host makes no session settings "
     "and ends no session a lost connection left behind, since a pooled server session serves "
     "other clients; the pooler's own timeouts apply"},
    {.name = NULL}};

static const range_t database_ranges[] = {
    {"connect_timeout_s", offsetof(database_t, connect_timeout_s), 1, 600},
    {"idle_close_ms", offsetof(database_t, idle_close_ms), 10, 86400000},
    {"idle_in_transaction_timeout_ms", offsetof(database_t, idle_in_transaction_timeout_ms), 0, 86400000},
    {NULL, 0, 0, 0}};

static int load_database(load_t *l, const json_t *section) {
  database_t d;
  int rc = apply(l, database_map, section, &d, "database");
  if (rc == 0) rc = check_ranges(l, database_ranges, &d, "database");
  if (rc == 0) rc = take_url(l, &l->cfg->database_url, "CTXD_PG_URL", section, d.url, "database.url");
  if (rc != 0) return rc;
  char *msg = NULL;
  PQconninfoOption *opts = PQconninfoParse(l->cfg->database_url, &msg);
  PQconninfoFree(opts);
  if (opts == NULL) {
    char reason[512];
    conninfo_error(msg != NULL ? msg : "out of memory", reason, sizeof reason);
    PQfreemem(msg);
    return report(l, env_get("CTXD_PG_URL") != NULL ? "CTXD_PG_URL" : NULL, "database.url", reason);
  }
  if (strcmp(d.migrate, "auto") != 0 && strcmp(d.migrate, "check") != 0)
    return fail_at(l, "database.migrate", "expected \"auto\" or \"check\", got \"%s\"", d.migrate);
  l->cfg->db_migrate_auto = strcmp(d.migrate, "auto") == 0;
  l->cfg->db_connect_timeout_s = d.connect_timeout_s;
  l->cfg->db_idle_close_ms = d.idle_close_ms;
  l->cfg->db_idle_in_transaction_timeout_ms = d.pooler ? 0 : d.idle_in_transaction_timeout_ms;
  l->cfg->db_pooler = d.pooler;
  return read_secret(l, d.password_file, &l->cfg->database_password, "database.password_file");
}

/* ---- outbox and inbox: plain integers, applied straight onto the config ---------------- */

static const ctxd_conf_entry_t outbox_map[] = {
    {CTXD_CONF_INT, "sweep_grace_ms", "10000", offsetof(ctxd__config_t, outbox_sweep_grace_ms),
     "a row unconfirmed this long is sent again by the sweep"},
    {CTXD_CONF_INT, "sweep_interval_ms", "1000", offsetof(ctxd__config_t, outbox_sweep_interval_ms),
     "how often the sweep looks for such rows"},
    {CTXD_CONF_INT, "archive_retention_s", "604800", offsetof(ctxd__config_t, outbox_archive_retention_s),
     "how long sent rows are archived (seconds, or \"keep\": for good)"},
    {.name = NULL}};

static const range_t outbox_ranges[] = {
    {"sweep_grace_ms", offsetof(ctxd__config_t, outbox_sweep_grace_ms), 100, 3600000},
    {"sweep_interval_ms", offsetof(ctxd__config_t, outbox_sweep_interval_ms), 10, 600000},
    {"archive_retention_s", offsetof(ctxd__config_t, outbox_archive_retention_s), 0, 31536000},
    {NULL, 0, 0, 0}};

/* outbox: archive_retention_s is seconds or "keep" (the seed keeps published events for
 * good, for re-sending: ctxd outbox resend); the map reads the rest. */
static int load_outbox(load_t *l, const json_t *outbox) {
  const json_t *v = json_object_get(outbox, "archive_retention_s");
  int keep = json_is_string(v) && strcmp(json_string_value(v), "keep") == 0;
  json_t *rest = keep ? json_deep_copy(outbox) : NULL;
  if (keep && (rest == NULL || json_object_del(rest, "archive_retention_s") != 0)) {
    json_decref(rest);
    return fail_at(l, "outbox", "out of memory");
  }
  int rc = apply(l, outbox_map, keep ? rest : outbox, l->cfg, "outbox");
  json_decref(rest);
  if (rc == 0) rc = check_ranges(l, outbox_ranges, l->cfg, "outbox");
  if (rc == 0 && keep) l->cfg->outbox_archive_retention_s = CTXD__RETENTION_KEEP;
  return rc;
}

static const ctxd_conf_entry_t inbox_map[] = {
    {CTXD_CONF_INT, "retention_s", "604800", offsetof(ctxd__config_t, inbox_retention_s),
     "how long a handled message id is remembered to drop duplicates"},
    {.name = NULL}};

static const range_t inbox_ranges[] = {
    {"retention_s", offsetof(ctxd__config_t, inbox_retention_s), 1, 31536000}, {NULL, 0, 0, 0}};

static const ctxd_conf_entry_t reload_map[] = {
    {CTXD_CONF_INT, "lock_timeout_ms", "10000", offsetof(ctxd__config_t, reload_lock_timeout_ms),
     "how long a plugin replacement waits for a database lock (the migration lock, a table "
     "its migration alters) before it gives up and the running version stays"},
    {.name = NULL}};

static const range_t reload_ranges[] = {
    {"lock_timeout_ms", offsetof(ctxd__config_t, reload_lock_timeout_ms), 1, 3600000}, {NULL, 0, 0, 0}};

static const ctxd_conf_entry_t errors_map[] = {
    {CTXD_CONF_BOOL, "store", "true", offsetof(ctxd__config_t, errors_store),
     "ingest the endpoints' _error queues into ctxd.failed_messages; false: leave them alone"},
    {CTXD_CONF_BOOL, "keep_in_queue", "false", offsetof(ctxd__config_t, errors_keep_in_queue),
     "ingest from <endpoint>_error_store, a queue bound beside <endpoint>_error, which keeps its copies"},
    {CTXD_CONF_INT, "retention_s", "2592000", offsetof(ctxd__config_t, errors_retention_s),
     "how long a resolved failed message is kept"},
    {.name = NULL}};

static const range_t errors_ranges[] = {
    {"retention_s", offsetof(ctxd__config_t, errors_retention_s), 1, 315360000}, {NULL, 0, 0, 0}};
static const ctxd_conf_entry_t calls_map[] = {
    {CTXD_CONF_INT, "poll_interval_ms", "200", offsetof(ctxd__config_t, calls_poll_interval_ms),
     "how often an idle executor looks for calls to run"},
    {CTXD_CONF_INT, "retention_s", "604800", offsetof(ctxd__config_t, calls_retention_s),
     "how long a finished call is kept: recording its key again within it is a no-op"},
    {.name = NULL}};

static const range_t calls_ranges[] = {
    {"poll_interval_ms", offsetof(ctxd__config_t, calls_poll_interval_ms), 10, 600000},
    {"retention_s", offsetof(ctxd__config_t, calls_retention_s), 1, 31536000},
    {NULL, 0, 0, 0}};

static const ctxd_conf_entry_t sagas_map[] = {
    {CTXD_CONF_INT, "retention_s", "604800", offsetof(ctxd__config_t, sagas_retention_s),
     "how long a finished process manager instance is kept (later messages see it finished)"},
    {.name = NULL}};

static const range_t sagas_ranges[] = {
    {"retention_s", offsetof(ctxd__config_t, sagas_retention_s), 1, 31536000}, {NULL, 0, 0, 0}};

/* ---- limits -------------------------------------------------------------------------- */

static const ctxd_conf_entry_t limits_map[] = {
    {CTXD_CONF_INT, "max_message_bytes", "1048576", offsetof(ctxd__config_t, max_message_bytes),
     "largest message body handled; a larger one goes to <queue>_error as it is"},
    {CTXD_CONF_INT, "max_inflight_bytes", "67108864", offsetof(ctxd__config_t, max_inflight_bytes),
     "bytes of message bodies the host holds before it stops reading from the broker (at "
     "least max_message_bytes); memory stays under this plus one message of the broker's "
     "max_message_size"},
    {.name = NULL}};

/* 512 MiB is RabbitMQ's largest max_message_size. */
static const range_t limits_ranges[] = {
    {"max_message_bytes", offsetof(ctxd__config_t, max_message_bytes), 1024, 536870912},
    {"max_inflight_bytes", offsetof(ctxd__config_t, max_inflight_bytes), 1024, INT64_C(1) << 40},
    {NULL, 0, 0, 0}};

static int load_limits(load_t *l, const json_t *section) {
  ctxd__config_t *cfg = l->cfg;
  int rc = apply(l, limits_map, section, cfg, "limits");
  if (rc == 0) rc = check_ranges(l, limits_ranges, cfg, "limits");
  if (rc == 0 && cfg->max_inflight_bytes < cfg->max_message_bytes)
    /* blame the key the file sets: the other one is the default */
    rc = fail_at(l,
                 json_object_get(section, "max_inflight_bytes") != NULL ? "limits.max_inflight_bytes"
                                                                        : "limits.max_message_bytes",
                 "max_inflight_bytes %lld is smaller than max_message_bytes %lld",
                 (long long)cfg->max_inflight_bytes, (long long)cfg->max_message_bytes);
  return rc;
}

/* ---- log and admin ------------------------------------------------------------------- */

typedef struct {
  const char *level;
} log_t;

static const ctxd_conf_entry_t log_map[] = {{CTXD_CONF_STR, "level", "info", offsetof(log_t, level),
                                             "error, warn, info or debug; CTXD_LOG_LEVEL overrides"},
                                            {.name = NULL}};

static int parse_level(load_t *l, const char *var, const char *path, const char *text,
                       ctxd__log_level_t *out) {
  if (ctxd__log_level_parse(text, out) == 0) return 0;
  char reason[1024];
  snprintf(reason, sizeof reason, "expected error, warn, info or debug, got '%s'", text);
  return report(l, var, path, reason);
}

static int load_log(load_t *l, const json_t *section) {
  log_t g;
  const char *env = env_get("CTXD_LOG_LEVEL");
  /* the file's value must be valid even when the environment overrides it */
  int rc = apply(l, log_map, section, &g, "log");
  if (rc == 0) rc = parse_level(l, NULL, "log.level", g.level, &l->cfg->log_level);
  if (rc == 0 && env != NULL) rc = parse_level(l, "CTXD_LOG_LEVEL", NULL, env, &l->cfg->log_level);
  return rc;
}

typedef struct {
  const char *listen;
  int64_t max_connections;
  int64_t idle_timeout_ms;
  const char *token, *token_file;
  const json_t *allowed_hosts;
} admin_t;

/* The map takes its defaults as text: admin.h's numbers, spelled. */
#define SPELL(x) #x
#define SPELL_VALUE(x) SPELL(x)

static const ctxd_conf_entry_t admin_map[] = {
    {CTXD_CONF_STR, "listen", "", offsetof(admin_t, listen),
     "a.b.c.d:port or [IPv6]:port of the admin HTTP endpoint (port 0: any free one, "
     "logged); absent: none"},
    {CTXD_CONF_INT, "max_connections", SPELL_VALUE(CTXD__ADMIN_MAX_CONNECTIONS),
     offsetof(admin_t, max_connections),
     "most admin connections open at once; at the bound a new one closes the one idle the "
     "longest; at most half the file limit is used"},
    {CTXD_CONF_INT, "idle_timeout_ms", SPELL_VALUE(CTXD__ADMIN_IDLE_TIMEOUT_MS),
     offsetof(admin_t, idle_timeout_ms),
     "how long a connection may take to send its request, and again to take the response"},
    {CTXD_CONF_STR, "token", "", offsetof(admin_t, token),
     "the console's actions need it as \"Authorization: Bearer <token>\"; absent: the console is "
     "read-only"},
    {CTXD_CONF_STR, "token_file", "", offsetof(admin_t, token_file),
     "file holding admin.token (absolute, or a systemd credential's name)"},
    {CTXD__CONF_ARRAY, "allowed_hosts", "", offsetof(admin_t, allowed_hosts),
     "names (host or host:port) a browser may reach the console by besides an IP address or "
     "localhost: a reverse proxy's, which must pass the Host header on"},
    {.name = NULL}};

static const range_t admin_ranges[] = {{"max_connections", offsetof(admin_t, max_connections), 1, 65536},
                                       {"idle_timeout_ms", offsetof(admin_t, idle_timeout_ms), 100, 600000},
                                       {NULL, 0, 0, 0}};

/* admin.allowed_hosts (absent: none) into the configuration: names without spaces. */
static int allowed_hosts(load_t *l, const json_t *list) {
  size_t n = json_array_size(list);
  if (n == 0) return 0;
  if ((l->cfg->admin_allowed_hosts = calloc(n, sizeof(char *))) == NULL) return nomem(l);
  size_t i;
  const json_t *v;
  json_array_foreach(list, i, v) {
    const char *name = json_string_value(v);
    if (name == NULL || *name == '\0' || strpbrk(name, " \t\r\n/,") != NULL)
      return fail_at(l, "admin.allowed_hosts", "expected host or host:port names, got item %zu", i);
    int rc = copy(l, &l->cfg->admin_allowed_hosts[i], name);
    if (rc != 0) return rc;
    l->cfg->nadmin_allowed_hosts = i + 1;
  }
  return 0;
}

static int load_admin(load_t *l, const json_t *section) {
  admin_t a;
  int rc = apply(l, admin_map, section, &a, "admin");
  if (rc == 0) rc = check_ranges(l, admin_ranges, &a, "admin");
  if (rc != 0) return rc;
  l->cfg->admin_max_connections = a.max_connections;
  l->cfg->admin_idle_timeout_ms = a.idle_timeout_ms;
  if (a.token[0] != '\0' && a.token_file[0] != '\0')
    return fail_at(l, "admin.token", "set admin.token or admin.token_file, not both");
  if (a.token[0] != '\0' && (rc = copy(l, &l->cfg->admin_token, a.token)) != 0) return rc;
  if ((rc = read_secret(l, a.token_file, &l->cfg->admin_token, "admin.token_file")) != 0) return rc;
  if ((rc = allowed_hosts(l, a.allowed_hosts)) != 0) return rc;
  /* the map's "" default stands for "absent": no admin endpoint */
  if (json_object_get(section, "listen") == NULL) return 0;
  /* the admin endpoint's own parser: check-config and ctxd run accept the same addresses */
  struct sockaddr_storage ss;
  if (ctxd__admin_address_parse(a.listen, &ss) != 0)
    return fail_at(l, "admin.listen", "expected " CTXD__ADMIN_ADDRESS_EXPECTED ", got '%s'", a.listen);
  return copy(l, &l->cfg->admin_listen, a.listen);
}

/* ---- plugins ------------------------------------------------------------------------- */

typedef struct {
  const char *name;
  const char *path;
  int enabled;
  const json_t *settings;
} plugin_t;

static const ctxd_conf_entry_t plugin_map[] = {
    {CTXD_CONF_STR, "name", NULL, offsetof(plugin_t, name),
     "the plugin's own name, 1-64 characters of [a-z0-9_-]"},
    {CTXD_CONF_STR, "path", "", offsetof(plugin_t, path),
     "shared object, absolute or under plugin_dir; absent: ctxd_<name>.so"},
    {CTXD_CONF_BOOL, "enabled", "true", offsetof(plugin_t, enabled), "load it at all"},
    {CTXD__CONF_OBJECT, "settings", "", offsetof(plugin_t, settings),
     "the plugin's settings, checked against its config map"},
    {.name = NULL}};

int ctxd__config_plugin_name_valid(const char *s) {
  if (s == NULL) return 0;
  size_t n = strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_-");
  return n >= 1 && n <= 64 && s[n] == '\0';
}

static int load_plugin(load_t *l, const json_t *obj, size_t i) {
  ctxd__config_t *cfg = l->cfg;
  ctxd__plugin_config_t *pc = &cfg->plugins[i];
  char path[64], at[96];
  plugin_t p;
  snprintf(path, sizeof path, "plugins[%zu]", i);
  int rc = apply(l, plugin_map, obj, &p, path);
  if (rc != 0) return rc;

  join(at, sizeof at, path, "name");
  if (!ctxd__config_plugin_name_valid(p.name))
    return fail_at(l, at, "expected 1-64 characters of [a-z0-9_-], got '%s'", p.name);
  for (size_t j = 0; j < i; j++)
    if (strcmp(cfg->plugins[j].name, p.name) == 0)
      return fail_at(l, at, "duplicate plugin name '%s' (plugins[%zu] and plugins[%zu])", p.name, j, i);
  if ((rc = copy(l, &pc->name, p.name)) != 0) return rc;

  /* the map's "" default stands for "absent": the conventional file name */
  if (json_object_get(obj, "path") == NULL) {
    if (asprintf(&pc->path, "ctxd_%s.so", p.name) < 0) {
      pc->path = NULL;
      return nomem(l);
    }
  } else if (p.path[0] == '\0') {
    join(at, sizeof at, path, "path");
    return fail_at(l, at, "expected a file path, got an empty string");
  } else if ((rc = copy(l, &pc->path, p.path)) != 0) {
    return rc;
  }

  pc->enabled = p.enabled;
  /* the config outlives the parsed document: keep our own reference */
  pc->settings = p.settings != NULL ? json_incref((json_t *)p.settings) : json_object();
  if (pc->settings == NULL) return nomem(l);
  join(at, sizeof at, path, "settings");
  return copy(l, &pc->settings_path, at);
}

static int load_plugins(load_t *l, const json_t *array) {
  size_t n = json_array_size(array);
  if (n == 0) return 0;
  ctxd__config_t *cfg = l->cfg;
  if ((cfg->plugins = calloc(n, sizeof *cfg->plugins)) == NULL) return nomem(l);
  /* counted up front: ctxd__config_free handles the zeroed entries a failure leaves */
  cfg->nplugins = n;
  for (size_t i = 0; i < n; i++) {
    int rc = load_plugin(l, json_array_get(array, i), i);
    if (rc != 0) return rc;
  }
  return 0;
}

/* ---- endpoints ----------------------------------------------------------------------- */

static const ctxd_conf_entry_t endpoint_map[] = {
    {CTXD_CONF_INT, "prefetch", "256", offsetof(ctxd__endpoint_settings_t, prefetch),
     "unacknowledged deliveries the broker may hand over"},
    {CTXD_CONF_INT, "workers", "2", offsetof(ctxd__endpoint_settings_t, workers),
     "worker threads, each with its own database connection"},
    {CTXD_CONF_INT, "batch_size", "64", offsetof(ctxd__endpoint_settings_t, batch_size),
     "deliveries per transaction, at most prefetch"},
    {CTXD_CONF_INT, "batch_growth", "4", offsetof(ctxd__endpoint_settings_t, batch_growth),
     "while every worker is busy, a waiting batch grows up to batch_growth x batch_size "
     "(never with batch_size 1); 1: never past batch_size"},
    {CTXD_CONF_STR, "queue_type", "classic", offsetof(ctxd__endpoint_settings_t, queue_type),
     "classic or quorum"},
    {CTXD_CONF_INT, "delivery_limit", "5", offsetof(ctxd__endpoint_settings_t, delivery_limit),
     "deprecated, ignored: quorum endpoints are declared as MassTransit declares them; max_attempts "
     "ends crash loops"},
    {CTXD_CONF_INT, "immediate_retries", "2", offsetof(ctxd__endpoint_settings_t, immediate_retries),
     "handler re-runs in the worker before a delayed redelivery"},
    {CTXD_CONF_STR, "redelivery_ms", "5000,30000,300000", offsetof(ctxd__endpoint_settings_t, redelivery_ms),
     "delayed redelivery intervals, comma-separated milliseconds; \"\" for none"},
    {CTXD_CONF_INT, "max_attempts", "5", offsetof(ctxd__endpoint_settings_t, max_attempts),
     "deliveries of one message that ended with the host (a crash, a time-out exit) before it goes to "
     "_error as ctxd.PoisonMessage"},
    {CTXD_CONF_INT, "handler_timeout_ms", "60000", offsetof(ctxd__endpoint_settings_t, handler_timeout_ms),
     "a handler running longer makes /readyz fail and is logged and counted; 0 for no limit"},
    {CTXD_CONF_BOOL, "handler_timeout_exit", "false",
     offsetof(ctxd__endpoint_settings_t, handler_timeout_exit),
     "exit when a handler runs past handler_timeout_ms, for the supervisor to restart the host"},
    {.name = NULL}};

/* batch_size's real upper bound is prefetch, checked on its own; 65535 is prefetch's. */
static const range_t endpoint_ranges[] = {
    {"prefetch", offsetof(ctxd__endpoint_settings_t, prefetch), 1, 65535},
    {"workers", offsetof(ctxd__endpoint_settings_t, workers), 1, 64},
    {"batch_size", offsetof(ctxd__endpoint_settings_t, batch_size), 1, 65535},
    {"batch_growth", offsetof(ctxd__endpoint_settings_t, batch_growth), 1, 64},
    {"immediate_retries", offsetof(ctxd__endpoint_settings_t, immediate_retries), 0, 100},
    {"max_attempts", offsetof(ctxd__endpoint_settings_t, max_attempts), 1, 1000},
    {"handler_timeout_ms", offsetof(ctxd__endpoint_settings_t, handler_timeout_ms), 0, 86400000},
    {NULL, 0, 0, 0}};

static const char *const queue_types[] = {"classic", "quorum"};

/* The longest redelivery interval: a day. */
#define REDELIVERY_MAX_MS 86400000

int ctxd__config_intervals(const char *text, int64_t *out, int max) {
  if (text[0] == '\0') return 0;
  for (int n = 0; n < max; n++) {
    size_t digits = strspn(text, "0123456789");
    if (digits == 0 || digits > 8) return -1;
    long v = strtol(text, NULL, 10);
    if (v < 1 || v > REDELIVERY_MAX_MS) return -1;
    out[n] = v;
    text += digits;
    if (*text == '\0') return n + 1;
    if (*text++ != ',') return -1;
  }
  return -1;
}

/* Checks settings s, read from `own` (the endpoint's object) at `path`, and points
 * queue_type at a static string (the parsed one dies with the document). */
static int check_endpoint(load_t *l, ctxd__endpoint_settings_t *s, const json_t *own, const char *path) {
  char at[512];
  int rc = check_ranges(l, endpoint_ranges, s, path);
  if (rc != 0) return rc;
  if (s->batch_size > s->prefetch) {
    /* blame the key this object sets: the defaults it inherits are already checked */
    join(at, sizeof at, path, json_object_get(own, "batch_size") != NULL ? "batch_size" : "prefetch");
    return fail_at(l, at, "batch_size %lld is larger than prefetch %lld", (long long)s->batch_size,
                   (long long)s->prefetch);
  }
  const char *queue_type = NULL;
  for (size_t i = 0; i < sizeof queue_types / sizeof queue_types[0]; i++)
    if (strcmp(s->queue_type, queue_types[i]) == 0) queue_type = queue_types[i];
  if (queue_type == NULL) {
    join(at, sizeof at, path, "queue_type");
    return fail_at(l, at, "expected 'classic' or 'quorum', got '%s'", s->queue_type);
  }
  s->queue_type = queue_type;
  if (json_object_get(own, "delivery_limit") != NULL) {
    /* accepted, so configurations written for older hosts still load */
    join(at, sizeof at, path, "delivery_limit");
    ctxd__log(CTXD__LOG_WARN, "config",
              "%s is deprecated and ignored: the endpoint queue carries no "
              "x-delivery-limit; max_attempts ends crash loops",
              at);
  }
  int64_t intervals[CTXD__MAX_REDELIVERIES];
  if (ctxd__config_intervals(s->redelivery_ms, intervals, CTXD__MAX_REDELIVERIES) < 0) {
    join(at, sizeof at, path, "redelivery_ms");
    return fail_at(l, at, "expected up to %d comma-separated delays in milliseconds (1 to %d), got '%s'",
                   CTXD__MAX_REDELIVERIES, REDELIVERY_MAX_MS, s->redelivery_ms);
  }
  return 0;
}

/* Fills *out from `obj` at `path`; keys obj lacks come from `base` (the "defaults" object,
 * already checked), else from the built-in defaults. Merging the JSON first keeps one map
 * and one set of checks for both levels; errors can only come from obj's own keys. */
static int load_endpoint(load_t *l, const json_t *obj, const json_t *base, const char *path,
                         ctxd__endpoint_settings_t *out) {
  json_t *merged = NULL;
  if (base != NULL && json_is_object(obj)) {
    /* jansson's copy and update take non-const objects but only read the source ones */
    merged = json_copy((json_t *)base);
    if (merged == NULL || json_object_update(merged, (json_t *)obj) != 0) {
      json_decref(merged);
      return nomem(l);
    }
  }
  const json_t *src = merged != NULL ? merged : obj;
  ctxd__endpoint_settings_t s;
  int rc = apply(l, endpoint_map, src, &s, path);
  if (rc == 0) rc = check_endpoint(l, &s, obj, path);
  /* the config owns its copy (the parsed one dies with the document); *out is only written
   * whole, so ctxd__config_free never sees a borrowed pointer there */
  if (rc == 0 && (s.redelivery_ms = strdup(s.redelivery_ms)) == NULL) rc = nomem(l);
  if (rc == 0) *out = s;
  json_decref(merged);
  return rc;
}

/* A handler on the careful path runs inside a transaction the server counts as idle: one
 * allowed longer than database.idle_in_transaction_timeout_ms would lose its session on
 * every attempt, and its message would end in _error. */
static int check_idle_timeout(load_t *l, const ctxd__endpoint_settings_t *s, const char *path) {
  int64_t idle = l->cfg->db_idle_in_transaction_timeout_ms;
  if (idle == 0 || (s->handler_timeout_ms > 0 && s->handler_timeout_ms < idle)) return 0;
  char at[560];
  join(at, sizeof at, path, "handler_timeout_ms");
  return fail_at(l, at,
                 "%lld is not below database.idle_in_transaction_timeout_ms (%lld), after which the server "
                 "ends a session idle inside a transaction, where a handler runs: lower this (0 is no "
                 "limit) or raise that (0: the server's own)",
                 (long long)s->handler_timeout_ms, (long long)idle);
}

static int load_endpoints(load_t *l, const json_t *section) {
  ctxd__config_t *cfg = l->cfg;
  const json_t *defaults = json_object_get(section, "defaults");
  int rc = load_endpoint(l, defaults, NULL, "endpoints.defaults", &cfg->endpoint_defaults);
  if (rc == 0) rc = check_idle_timeout(l, &cfg->endpoint_defaults, "endpoints.defaults");
  size_t n = json_object_size(section) - (defaults != NULL);
  if (rc != 0 || n == 0) return rc;
  if ((cfg->endpoints = calloc(n, sizeof *cfg->endpoints)) == NULL) return nomem(l);

  const char *name;
  json_t *obj;
  json_t *s = (json_t *)section; /* jansson's iterators take non-const but only read */
  json_object_foreach(s, name, obj) {
    if (strcmp(name, "defaults") == 0) continue;
    ctxd__endpoint_config_t *ep = &cfg->endpoints[cfg->nendpoints];
    char path[512];
    join(path, sizeof path, "endpoints", name);
    if ((rc = load_endpoint(l, obj, defaults, path, &ep->settings)) != 0) return rc;
    static const struct {
      const char *key;
      unsigned bit;
    } suggested[] = {{"prefetch", CTXD__EP_PREFETCH},
                     {"workers", CTXD__EP_WORKERS},
                     {"batch_size", CTXD__EP_BATCH_SIZE},
                     {"queue_type", CTXD__EP_QUEUE_TYPE}};
    for (size_t k = 0; k < sizeof suggested / sizeof suggested[0]; k++)
      if (json_object_get(obj, suggested[k].key) != NULL) ep->own |= suggested[k].bit;
    cfg->nendpoints++; /* counted as soon as it owns memory, for ctxd__config_free */
    if ((rc = copy(l, &ep->name, name)) != 0 || (rc = check_idle_timeout(l, &ep->settings, path)) != 0)
      return rc;
  }
  return 0;
}

/* ---- the file ------------------------------------------------------------------------ */

static int read_file(load_t *l) {
  ctxd__config_t *cfg = l->cfg;
  FILE *f = fopen(cfg->file, "rb");
  if (f == NULL) {
    emit(l->err, l->errlen, "%s: %s", cfg->file, strerror(errno));
    return CTXD_ECONFIG;
  }
  size_t cap = 0;
  int rc = 0;
  for (;;) {
    if (cfg->text_len + 1 >= cap) {
      cap = cap != 0 ? cap * 2 : 4096;
      char *t = realloc(cfg->text, cap);
      if (t == NULL) {
        rc = nomem(l);
        break;
      }
      cfg->text = t;
    }
    size_t room = cap - 1 - cfg->text_len;
    size_t got = fread(cfg->text + cfg->text_len, 1, room, f);
    cfg->text_len += got;
    if (got < room) {
      if (ferror(f)) {
        emit(l->err, l->errlen, "%s: %s", cfg->file, strerror(errno));
        rc = CTXD_ECONFIG;
      }
      break;
    }
  }
  fclose(f);
  if (rc == 0) cfg->text[cfg->text_len] = '\0'; /* kept NUL-terminated for debugging */
  return rc;
}

/* plugin_dir: as given (CTXD_PLUGIN_DIR, else the file), else the executable's own. */
static int load_plugin_dir(load_t *l, const char *given) {
  char dir[PATH_MAX];
  if (given[0] != '\0') return copy(l, &l->cfg->plugin_dir, given);
  int rc = ctxd__plugindir_find(NULL, dir, sizeof dir);
  if (rc != 0)
    return fail_at(l, "plugin_dir", "not set, and the folder beside the executable is not known (%s)",
                   ctxd_strerror(rc));
  return copy(l, &l->cfg->plugin_dir, dir);
}

static int load_root(load_t *l) {
  ctxd__config_t *cfg = l->cfg;
  json_error_t je;
  json_t *doc = json_loadb(cfg->text, cfg->text_len, JSON_REJECT_DUPLICATES, &je);
  if (doc == NULL) {
    emit(l->err, l->errlen, "%s:%d:%d: malformed JSON: %s", cfg->file, je.line, je.column, je.text);
    return CTXD_ECONFIG;
  }
  root_t r;
  const char *plugin_dir = env_get("CTXD_PLUGIN_DIR");
  int rc = apply(l, root_map, doc, &r, "");
  if (rc == 0) rc = load_broker(l, r.broker);
  if (rc == 0) rc = load_database(l, r.database);
  if (rc == 0) rc = load_outbox(l, r.outbox);
  if (rc == 0) rc = apply(l, inbox_map, r.inbox, cfg, "inbox");
  if (rc == 0) rc = check_ranges(l, inbox_ranges, cfg, "inbox");
  if (rc == 0) rc = apply(l, reload_map, r.reload, cfg, "reload");
  if (rc == 0) rc = check_ranges(l, reload_ranges, cfg, "reload");
  if (rc == 0) rc = load_limits(l, r.limits);
  if (rc == 0) rc = apply(l, errors_map, r.errors, cfg, "errors");
  if (rc == 0) rc = check_ranges(l, errors_ranges, cfg, "errors");
  if (rc == 0) rc = apply(l, calls_map, r.calls, cfg, "calls");
  if (rc == 0) rc = check_ranges(l, calls_ranges, cfg, "calls");
  if (rc == 0) rc = apply(l, sagas_map, r.sagas, cfg, "sagas");
  if (rc == 0) rc = check_ranges(l, sagas_ranges, cfg, "sagas");
  if (rc == 0) rc = check_ranges(l, root_ranges, &r, "");
  if (rc == 0) cfg->cleanup_interval_s = r.cleanup_interval_s;
  if (rc == 0) rc = load_log(l, r.log);
  if (rc == 0) rc = load_admin(l, r.admin);
  if (rc == 0) rc = load_plugin_dir(l, plugin_dir != NULL ? plugin_dir : r.plugin_dir);
  if (rc == 0) rc = load_plugins(l, r.plugins);
  if (rc == 0) rc = load_endpoints(l, r.endpoints);
  json_decref(doc);
  return rc;
}

int ctxd__config_load(const char *path, ctxd__config_t **out, char *err, size_t errlen) {
  *out = NULL;
  ctxd__config_t *cfg = calloc(1, sizeof *cfg);
  if (cfg == NULL || (cfg->file = strdup(path)) == NULL) {
    free(cfg);
    emit(err, errlen, "%s: out of memory", path);
    return CTXD_ENOMEM;
  }
  load_t l = {cfg, err, errlen};
  int rc = read_file(&l);
  if (rc == 0) rc = load_root(&l);
  if (rc != 0) {
    ctxd__config_free(cfg);
    return rc;
  }
  *out = cfg;
  return 0;
}

void ctxd__config_free(ctxd__config_t *cfg) {
  if (cfg == NULL) return;
  for (size_t i = 0; i < cfg->nplugins; i++) {
    free(cfg->plugins[i].name);
    free(cfg->plugins[i].path);
    json_decref(cfg->plugins[i].settings);
    free(cfg->plugins[i].settings_path);
  }
  free(cfg->plugins);
  /* redelivery_ms is const for its readers but owned here */
  free((char *)cfg->endpoint_defaults.redelivery_ms);
  for (size_t i = 0; i < cfg->nendpoints; i++) {
    free(cfg->endpoints[i].name);
    free((char *)cfg->endpoints[i].settings.redelivery_ms);
  }
  free(cfg->endpoints);
  free(cfg->plugin_dir);
  free(cfg->admin_listen);
  free(cfg->admin_token);
  for (size_t i = 0; i < cfg->nadmin_allowed_hosts; i++) free(cfg->admin_allowed_hosts[i]);
  free(cfg->admin_allowed_hosts);
  free(cfg->database_url);
  free(cfg->database_password);
  free(cfg->broker_password);
  free(cfg->broker_url);
  /* const for the broker layer, owned here */
  free((char *)cfg->broker_tls.ca_file);
  free((char *)cfg->broker_tls.cert_file);
  free((char *)cfg->broker_tls.key_file);
  free((char *)cfg->broker_tls.server_name);
  for (size_t i = 0; i < cfg->nbroker_urls; i++) free(cfg->broker_urls[i]);
  free(cfg->broker_urls);
  free(cfg->text);
  free(cfg->file);
  free(cfg);
}

/* ---- lookups ------------------------------------------------------------------------- */

const ctxd__endpoint_settings_t *ctxd__config_endpoint(const ctxd__config_t *cfg, const char *name) {
  for (size_t i = 0; i < cfg->nendpoints; i++)
    if (strcmp(cfg->endpoints[i].name, name) == 0) return &cfg->endpoints[i].settings;
  return &cfg->endpoint_defaults;
}

unsigned ctxd__config_endpoint_own(const ctxd__config_t *cfg, const char *name) {
  for (size_t i = 0; i < cfg->nendpoints; i++)
    if (strcmp(cfg->endpoints[i].name, name) == 0) return cfg->endpoints[i].own;
  return 0;
}

int ctxd__config_plugin_path(const ctxd__config_t *cfg, const ctxd__plugin_config_t *p, char *buf,
                             size_t buflen) {
  int n = p->path[0] == '/' ? snprintf(buf, buflen, "%s", p->path)
                            : snprintf(buf, buflen, "%s/%s", cfg->plugin_dir, p->path);
  return n >= 0 && (size_t)n < buflen ? 0 : CTXD_ETOOBIG;
}
