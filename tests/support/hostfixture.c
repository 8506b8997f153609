#include "hostfixture.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

void ctxt_world_write_config(ctxt_world_t *w) {
  char plugins[4096], text[10240];
  /* every host serves /metrics on a port of its choosing: tests wait on its counters */
  const char *admin =
      strstr(w->host_settings, "\"admin\"") ? "" : ", \"admin\": {\"listen\": \"127.0.0.1:0\"}";
  /* the tests read the _error queues themselves unless they ask for the store */
  const char *errors = strstr(w->host_settings, "\"errors\"") ? "" : ", \"errors\": {\"store\": false}";
  if (w->plugins[0])
    snprintf(plugins, sizeof plugins, "%s", w->plugins);
  else
    snprintf(plugins, sizeof plugins,
             "[{\"name\": \"testkit\", \"settings\": {\"endpoint\": \"%s\", \"message_type\": \"%s\","
             " \"echo_type\": \"%s\"%s}}]",
             w->endpoint, w->type, w->echo_type, w->plugin_settings);
  snprintf(text, sizeof text,
           "{\n"
           "  \"broker\": {\"url\": \"%s\", \"heartbeat_s\": %d%s},\n"
           "  \"database\": {\"url\": \"%s\"%s},\n"
           "  \"plugin_dir\": \"%s\",\n"
           "  \"plugins\": %s,\n"
           "  \"endpoints\": {\"%s\": {%s}%s}%s%s%s\n"
           "}\n",
           w->broker_url[0] ? w->broker_url : ctxt_amqp_url(), w->heartbeat_s != 0 ? w->heartbeat_s : 10,
           w->broker_settings, w->db, w->database_settings, w->plugin_dir, plugins, w->endpoint,
           w->endpoint_settings, w->more_endpoints, w->host_settings, admin, errors);
  if (w->config[0]) unlink(w->config);
  ctxt_write_file(w->config, sizeof w->config, text);
}

int ctxt_world_setup(void **state) {
  ctxt_world_t *w = calloc(1, sizeof *w);
  ctxt_pg_fresh_db(w->db, sizeof w->db);
  snprintf(w->endpoint, sizeof w->endpoint, "t-%s", ctxt_unique());
  snprintf(w->type, sizeof w->type, "Ctxd.Tests.v1:Ping%s", ctxt_unique());
  snprintf(w->echo_type, sizeof w->echo_type, "Ctxd.Tests.v1:Echoed%s", ctxt_unique());
  snprintf(w->db_env, sizeof w->db_env, "CTXD_PG_URL=%s", w->db);
  snprintf(w->plugin_dir, sizeof w->plugin_dir, "%s", ctxt_plugin_dir());
  snprintf(w->endpoint_settings, sizeof w->endpoint_settings, "\"workers\": 2, \"batch_size\": 16");
  w->amqp = ctxt_amqp_connect();
  *state = w;
  return 0;
}

int ctxt_world_teardown(void **state) {
  ctxt_world_t *w = *state;
  ctxt_proc_free(&w->host);
  ctxt_proc_free(&w->peer);
  for (size_t i = 0; i < sizeof w->more / sizeof w->more[0]; i++) ctxt_proc_free(&w->more[i]);
  if (w->pg != NULL) PQfinish(w->pg);
  if (w->amqp != NULL) ctxt_amqp_close(w->amqp);
  if (w->config[0]) unlink(w->config);
  free(w);
  return 0;
}

void ctxt_host_start(ctxt_world_t *w, char *extra) {
  char *env[] = {extra, NULL};
  ctxt_host_start_env(w, env);
}

/* Starts a host on w's configuration file. A broker URL the test chose goes into the
 * environment too: an inherited CTXD_AMQP_URL would otherwise override the file. */
static void launch(ctxt_world_t *w, ctxt_proc_t *p, const char *broker_url, char *const *extra) {
  char *argv[] = {(char *)ctxt_ctxd_path(), "run", "--config", w->config, NULL};
  char amqp_env[600];
  char *env[8] = {w->db_env};
  size_t n = 1;
  if (broker_url[0]) {
    snprintf(amqp_env, sizeof amqp_env, "CTXD_AMQP_URL=%s", broker_url);
    env[n++] = amqp_env;
  }
  for (size_t i = 0; extra != NULL && extra[i] != NULL && n + 1 < 8; i++) env[n++] = extra[i];
  ctxt_proc_free(p);
  ctxt_proc_spawn_nofile(p, argv, env, w->nofile);
}

/* launch, and returns once the host is ready */
static void spawn(ctxt_world_t *w, ctxt_proc_t *p, const char *broker_url, char *const *extra) {
  launch(w, p, broker_url, extra);
  if (!ctxt_proc_wait_output(p, "\"ready:", CTXT_READY_MS)) fail_msg("host did not become ready");
}

/* The port the host logged for its admin endpoint, or 0. */
static int admin_port(const ctxt_proc_t *p) {
  const char *at = NULL;
  for (const char *s = p->out; (s = strstr(s, "\"admin endpoint on ")) != NULL; s++) at = s;
  const char *port = at != NULL ? strstr(at, ", port ") : NULL;
  return port != NULL ? atoi(port + 7) : 0;
}

void ctxt_host_start_env(ctxt_world_t *w, char *const *extra) {
  ctxt_world_write_config(w);
  spawn(w, &w->host, w->broker_url, extra);
  w->admin_port = admin_port(&w->host);
  if (w->pg == NULL) w->pg = ctxt_pg_connect(w->db);
}

void ctxt_host_start_fails(ctxt_world_t *w) {
  ctxt_world_write_config(w);
  launch(w, &w->host, w->broker_url, NULL);
  assert_true(ctxt_proc_wait_exit(&w->host, CTXT_READY_MS));
  assert_true(WIFEXITED(w->host.status));
  assert_int_equal(WEXITSTATUS(w->host.status), 1);
}

void ctxt_peer_start(ctxt_world_t *w, const char *broker_url) {
  spawn(w, &w->peer, broker_url != NULL ? broker_url : w->broker_url, NULL);
}

static void stop(ctxt_proc_t *p, int sig) {
  ctxt_proc_signal(p, sig);
  assert_true(ctxt_proc_wait_exit(p, 60000));
  assert_true(WIFEXITED(p->status));
  assert_int_equal(WEXITSTATUS(p->status), 0);
  assert_non_null(strstr(p->out, "\"stopped\""));
}

void ctxt_host_stop(ctxt_world_t *w, int sig) { stop(&w->host, sig); }
void ctxt_peer_stop(ctxt_world_t *w, int sig) { stop(&w->peer, sig); }

long ctxt_metric(ctxt_world_t *w, const char *endpoint, const char *name) {
  static char page[1 << 16];
  char sample[256];
  if (endpoint != NULL)
    snprintf(sample, sizeof sample, "\n%s{endpoint=\"%s\"} ", name, endpoint);
  else
    snprintf(sample, sizeof sample, "\n%s ", name);
  if (ctxt_http_get(w->admin_port, "/metrics", page, sizeof page) != 200) return -1;
  const char *at = strstr(page, sample);
  return at != NULL ? strtol(at + strlen(sample), NULL, 10) : -1;
}

void ctxt_wait_settled(ctxt_world_t *w, const char *endpoint, long received) {
  int64_t end = ctxt_now_ms() + CTXT_EFFECT_MS;
  long got = -1, inflight = -1;
  while ((got = ctxt_metric(w, endpoint, "ctxd_messages_received_total")) != received ||
         (inflight = ctxt_metric(w, endpoint, "ctxd_deliveries_in_flight")) != 0) {
    if (ctxt_now_ms() >= end)
      fail_msg("endpoint %s: %ld received (want %ld), %ld in flight", endpoint, got, received, inflight);
    /* polling a URL: the deadline bounds it */
    usleep(20000);
  }
}

void ctxt_publish(ctxt_world_t *w, const char *id, const char *message) {
  ctxt_publish_type(w, w->type, id, message);
}

void ctxt_publish_type(ctxt_world_t *w, const char *type, const char *id, const char *message) {
  ctxt_publish_to(w, type, type, id, message);
}

int ctxt_envelope(char *buf, size_t len, const char *type, const char *id, const char *message) {
  return snprintf(buf, len,
                  "{\"messageId\":\"%s\",\"conversationId\":\"%s\",\"messageType\":[\"urn:message:%s\"],"
                  "\"message\":%s}",
                  id, id, type, message);
}

void ctxt_publish_to(ctxt_world_t *w, const char *exchange, const char *type, const char *id,
                     const char *message) {
  char body[2048];
  ctxt_envelope(body, sizeof body, type, id, message);
  ctxt_amqp_publish(w->amqp, exchange, "application/vnd.masstransit+json", body, NULL, NULL);
}

void ctxt_make_id(char *id, int n) { snprintf(id, 37, "00000000-0000-4000-8000-%012d", n); }

static void effects_sql(char *sql, size_t len, const char *where) {
  snprintf(sql, len, "SELECT count(*) FROM testkit.effects%s%s", where ? " WHERE " : "", where ? where : "");
}

long ctxt_effects(ctxt_world_t *w, const char *where) {
  char sql[512];
  effects_sql(sql, sizeof sql, where);
  return ctxt_pg_long(w->pg, sql);
}

long ctxt_wait_effects(ctxt_world_t *w, const char *where, long want) {
  char sql[512];
  effects_sql(sql, sizeof sql, where);
  return ctxt_pg_wait_long(w->pg, sql, want, CTXT_EFFECT_MS);
}

int64_t ctxt_wait_effects_above(ctxt_world_t *w, const char *where, long count, int timeout_ms) {
  char sql[512];
  effects_sql(sql, sizeof sql, where);
  int64_t end = ctxt_now_ms() + timeout_ms;
  long got;
  while ((got = ctxt_pg_long(w->pg, sql)) <= count) {
    if (ctxt_now_ms() >= end) fail_msg("no commit within %d ms: still %ld effects", timeout_ms, got);
    usleep(10000); /* polling: the deadline bounds it */
  }
  return ctxt_now_ms();
}

void ctxt_stream_count(ctxt_world_t *w, const char *echo, ctxt_stream_counts_t *c) {
  c->effects = ctxt_effects(w, "action = 'publish'");
  c->events = ctxt_effects(w, "action = 'echoed'");
  c->distinct =
      ctxt_pg_long(w->pg, "SELECT count(DISTINCT message_id) FROM testkit.effects WHERE action = 'publish'");
  c->distinct_events =
      ctxt_pg_long(w->pg, "SELECT count(DISTINCT message_id) FROM testkit.effects WHERE action = 'echoed'");
  char q[128];
  snprintf(q, sizeof q, "%s_error", w->endpoint);
  c->errors = ctxt_amqp_queue_count(w->amqp, q);
  snprintf(q, sizeof q, "%s_error", echo);
  c->errors += ctxt_amqp_queue_count(w->amqp, q);
}

void ctxt_stream_assert_once(ctxt_world_t *w, const char *echo, long n, const char *label) {
  ctxt_stream_counts_t c;
  ctxt_stream_count(w, echo, &c);
  printf("%s: %ld messages -> %ld effects (%ld distinct), %ld events applied downstream (%ld distinct), "
         "%ld in _error\n",
         label, n, c.effects, c.distinct, c.events, c.distinct_events, c.errors);
  assert_int_equal(c.effects, n);
  assert_int_equal(c.distinct, n);
  assert_int_equal(c.events, n);
  assert_int_equal(c.distinct_events, n);
  assert_int_equal(c.errors, 0);
}

void ctxt_stack_spawn(ctxt_proc_t *p, const char *verb, const char *arg) {
  char script[512];
  snprintf(script, sizeof script, "%s/tests/stack/stack.sh", CTXD_TEST_SOURCE_DIR);
  char *argv[] = {"/bin/bash", script, (char *)verb, (char *)arg, NULL};
  ctxt_proc_spawn(p, argv, NULL);
}

void ctxt_stack_done(ctxt_proc_t *p) {
  if (!ctxt_proc_wait_exit(p, 180000)) fail_msg("stack.sh did not finish within 180 s: %s", p->out);
  if (!WIFEXITED(p->status) || WEXITSTATUS(p->status) != 0) fail_msg("stack.sh failed: %s", p->out);
  ctxt_proc_free(p);
}

void ctxt_restart(const char *which) {
  char args[64];
  snprintf(args, sizeof args, "restart-%s", which);
  ctxt_stack(args);
}

pid_t ctxt_publish_background(ctxt_world_t *w, long first, long n, long per_s, const char *message) {
  fflush(NULL);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid > 0) return pid;
  /* the parent's connection stays the parent's: closing it here would close it there */
  w->amqp = ctxt_amqp_connect();
  struct timespec start, at;
  clock_gettime(CLOCK_MONOTONIC, &start);
  char id[37];
  for (long i = 0; i < n; i++) {
    if (per_s > 0) { /* pacing to absolute times, not waiting for anything */
      long long ns = (long long)start.tv_nsec + i * 1000000000LL / per_s;
      at = (struct timespec){start.tv_sec + (time_t)(ns / 1000000000LL), (long)(ns % 1000000000LL)};
      clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, NULL);
    }
    ctxt_make_id(id, (int)(first + i));
    ctxt_publish(w, id, message);
  }
  ctxt_amqp_close(w->amqp);
  _exit(0);
}

int ctxt_publisher_done(pid_t pid) {
  int status;
  pid_t got = waitpid(pid, &status, WNOHANG);
  if (got == 0) return 0;
  assert_int_equal(got, pid);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) fail_msg("the publisher failed");
  return 1;
}

void ctxt_publisher_wait(pid_t pid, int timeout_ms) {
  int64_t end = ctxt_now_ms() + timeout_ms;
  while (!ctxt_publisher_done(pid)) {
    if (ctxt_now_ms() >= end) {
      kill(pid, SIGKILL);
      waitpid(pid, NULL, 0);
      fail_msg("the publisher did not finish within %d ms", timeout_ms);
    }
    usleep(20000); /* polling: the deadline bounds it */
  }
}

void ctxt_wait_drained(ctxt_world_t *w, const char *echo, int timeout_ms) {
  int64_t end = ctxt_now_ms() + timeout_ms;
  for (;;) {
    long left[] = {ctxt_amqp_queue_count(w->amqp, w->endpoint), ctxt_amqp_queue_count(w->amqp, echo),
                   ctxt_metric(w, w->endpoint, "ctxd_deliveries_in_flight"),
                   ctxt_metric(w, echo, "ctxd_deliveries_in_flight"),
                   ctxt_pg_long(w->pg, "SELECT count(*) FROM ctxd.outbox")};
    if (!left[0] && !left[1] && !left[2] && !left[3] && !left[4]) return;
    if (ctxt_now_ms() >= end)
      fail_msg("not drained: queued %ld + %ld, in flight %ld + %ld, outbox %ld", left[0], left[1], left[2],
               left[3], left[4]);
    usleep(20000); /* polling: the deadline bounds it */
  }
}

void ctxt_world_quick_deadlines(ctxt_world_t *w) {
  w->heartbeat_s = 2;
  snprintf(w->broker_settings, sizeof w->broker_settings,
           ", \"rpc_timeout_ms\": 3000, \"reconnect_max_ms\": 1000");
  snprintf(w->database_settings, sizeof w->database_settings,
           ", \"connect_timeout_s\": 2, \"idle_in_transaction_timeout_ms\": 3000");
  /* below the idle-in-transaction timeout, or the host refuses the configuration */
  size_t len = strlen(w->more_endpoints);
  snprintf(w->more_endpoints + len, sizeof w->more_endpoints - len,
           ", \"defaults\": {\"handler_timeout_ms\": 2000}");
}

/* Drops the ctxd_t_* databases but `keep` that have no session; a drop that fails (a
 * session came) leaves that one. */
static void drop_idle_test_dbs(const char *keep) {
  PGconn *c = ctxt_pg_connect(ctxt_pg_url());
  PGresult *r =
      PQexecParams(c,
                   "SELECT quote_ident(datname) FROM pg_database d WHERE datname LIKE 'ctxd\\_t\\_%' "
                   "AND datname <> $1 AND NOT EXISTS "
                   "(SELECT 1 FROM pg_stat_activity a WHERE a.datid = d.oid)",
                   1, NULL, &keep, NULL, NULL, 0);
  if (PQresultStatus(r) != PGRES_TUPLES_OK) fail_msg("listing the test databases: %s", PQerrorMessage(c));
  int64_t t0 = ctxt_now_ms();
  int dropped = 0;
  for (int i = 0; i < PQntuples(r); i++) {
    char sql[128];
    snprintf(sql, sizeof sql, "DROP DATABASE %s", PQgetvalue(r, i, 0));
    PGresult *d = PQexec(c, sql);
    dropped += PQresultStatus(d) == PGRES_COMMAND_OK;
    PQclear(d);
  }
  printf("replica: dropped %d databases of earlier tests in %lld ms\n", dropped,
         (long long)(ctxt_now_ms() - t0));
  PQclear(r);
  PQfinish(c);
}

void ctxt_world_replica(ctxt_world_t *w, int sync) {
  const char *slash = strrchr(w->db, '/');
  char keep[128];
  snprintf(keep, sizeof keep, "%.*s", (int)strcspn(slash + 1, "?"), slash + 1);
  drop_idle_test_dbs(keep);
  ctxt_stack(sync ? "pg-replica start --sync" : "pg-replica start");
  const char *port = getenv("CTXD_PG_REPLICA_PORT");
  if (port == NULL || !*port) fail_msg("CTXD_PG_REPLICA_PORT is not set: source the stack's env file");
  char url[sizeof w->db];
  snprintf(url, sizeof url, "%.*s,127.0.0.1:%s%s?target_session_attrs=read-write", (int)(slash - w->db),
           w->db, port, slash);
  snprintf(w->db, sizeof w->db, "%s", url);
  snprintf(w->db_env, sizeof w->db_env, "CTXD_PG_URL=%s", w->db);
}

void ctxt_world_through_links(ctxt_world_t *w) {
  char amqp[512], pg[512];
  ctxt_link_up(amqp, sizeof amqp, pg, sizeof pg);
  snprintf(w->broker_url, sizeof w->broker_url, "%s", amqp);
  /* w->db's first host (the primary) becomes the link's address; what follows it (a
   * replica's host, the database, the parameters) stays */
  const char *host = strstr(w->db, "://") + 3, *at = strchr(host, '@');
  if (at != NULL && at < host + strcspn(host, ",/")) host = at + 1;
  const char *rest = host + strcspn(host, ",/");
  *strrchr(pg, '/') = '\0';
  /* as an operator would write them: a silent partition fails a database call in 3 s */
  snprintf(w->db_env, sizeof w->db_env,
           "CTXD_PG_URL=%.80s%.160s%skeepalives_idle=1&keepalives_interval=1&keepalives_count=3&tcp_user_"
           "timeout=3000",
           pg, rest, strchr(rest, '?') != NULL ? "&" : "?");
}

void ctxt_broker_watermark(const char *fraction) {
  char args[256];
  snprintf(args, sizeof args, "ctl -q set_vm_memory_high_watermark %s >/dev/null", fraction);
  ctxt_stack(args);
}

int ctxt_wait_status(ctxt_world_t *w, const char *path, int want, int timeout_ms) {
  char body[4096];
  int64_t end = ctxt_now_ms() + timeout_ms;
  int st;
  while ((st = ctxt_http_get(w->admin_port, path, body, sizeof body)) != want && ctxt_now_ms() < end) {
    /* polling a URL: the deadline bounds it */
    usleep(50000);
  }
  return st;
}

void ctxt_plugin_install_as(const char *dir, const char *from, const char *as) {
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "cp %s/%s %s/.incoming.so && mv -f %s/.incoming.so %s/%s", ctxt_plugin_dir(),
           from, dir, dir, dir, as);
  assert_int_equal(system(cmd), 0);
}

void ctxt_plugin_install(const char *dir, const char *from) {
  ctxt_plugin_install_as(dir, from, "ctxd_testkit.so");
}

void ctxt_trace_updates(PGconn *pg, const char *schema, const char *table) {
  char sql[2048];
  snprintf(sql, sizeof sql,
           "CREATE TABLE public.touched (col text NOT NULL);\n"
           "CREATE FUNCTION public.touch() RETURNS trigger LANGUAGE plpgsql AS\n"
           "  $$BEGIN INSERT INTO public.touched VALUES (TG_ARGV[0]); RETURN NULL; END$$;\n"
           "DO $$DECLARE c text; BEGIN\n"
           "  FOR c IN SELECT column_name FROM information_schema.columns\n"
           "           WHERE table_schema = '%s' AND table_name = '%s' LOOP\n"
           "    EXECUTE format('CREATE TRIGGER %%I AFTER UPDATE OF %%I ON %s.%s\n"
           "                    FOR EACH ROW EXECUTE FUNCTION public.touch(%%L)', 'touch_' || c, c, c);\n"
           "  END LOOP; END$$;",
           schema, table, schema, table);
  PGresult *r = PQexec(pg, sql);
  assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
  PQclear(r);
}

void ctxt_assert_touched(PGconn *pg, const char *want) {
  PGresult *r = PQexec(pg, "SELECT coalesce(string_agg(col, ',' ORDER BY col), '') FROM public.touched");
  assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
  if (strcmp(PQgetvalue(r, 0, 0), want) != 0)
    fail_msg("columns written: %s, want %s", PQgetvalue(r, 0, 0), want);
  PQclear(r);
  PQclear(PQexec(pg, "TRUNCATE public.touched"));
}
