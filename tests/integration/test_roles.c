/* Least privilege and secrets (issue 18): `ctxd migrate` as the owner, `ctxd run` as a role
 * with only DML rights, the refusal of an unmigrated database, the superuser warning, the
 * broker's login refusal, a password from a file, and secrets kept out of every output. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "db.h"
#include "hostfixture.h"

/* Runs sql on c or fails the test. */
static void pg_do(PGconn *c, const char *sql) {
  PGresult *r = PQexec(c, sql);
  if (PQresultStatus(r) != PGRES_COMMAND_OK) fail_msg("%s: %s", sql, PQerrorMessage(c));
  PQclear(r);
}

/* The world's database URL with user role instead of the stack's superuser. */
static void url_as(const ctxt_world_t *w, const char *role, char *url, size_t len) {
  const char *at = strchr(w->db, '@');
  assert_non_null(at);
  snprintf(url, len, "postgresql://%s%s", role, at);
}

/* The database name, the last piece of the world's URL. */
static const char *db_name(const ctxt_world_t *w) { return strrchr(w->db, '/') + 1; }

/* Creates the roles of docs/operations.md ("Roles and secrets") for the world's database:
 * owner may create schemas in it, dml only logs in. Names are unique to this run. */
static void make_roles(ctxt_world_t *w, char owner[64], char dml[64]) {
  char sql[512];
  snprintf(owner, 64, "ctxd_owner_%s", ctxt_unique());
  snprintf(dml, 64, "ctxd_testkit_%s", ctxt_unique());
  PGconn *c = ctxt_pg_connect(w->db);
  snprintf(sql, sizeof sql, "CREATE ROLE %s LOGIN; GRANT CREATE ON DATABASE %s TO %s", owner, db_name(w),
           owner);
  pg_do(c, sql);
  snprintf(sql, sizeof sql, "CREATE ROLE %s LOGIN; GRANT CONNECT ON DATABASE %s TO %s", dml, db_name(w), dml);
  pg_do(c, sql);
  PQfinish(c);
}

/* The grants of docs/operations.md for a context's DML role, once `ctxd migrate` made the
 * schemas; default privileges cover the tables later migrations of owner add. */
static void grant_dml(ctxt_world_t *w, const char *owner, const char *dml) {
  char sql[2048];
  snprintf(sql, sizeof sql,
           "GRANT USAGE ON SCHEMA ctxd, testkit TO %2$s;"
           "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ctxd, testkit TO %2$s;"
           "GRANT USAGE ON ALL SEQUENCES IN SCHEMA ctxd, testkit TO %2$s;"
           "ALTER DEFAULT PRIVILEGES FOR ROLE %1$s IN SCHEMA ctxd, testkit"
           " GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO %2$s;"
           "ALTER DEFAULT PRIVILEGES FOR ROLE %1$s IN SCHEMA ctxd, testkit GRANT USAGE ON SEQUENCES TO %2$s;",
           owner, dml);
  PGconn *c = ctxt_pg_connect(w->db);
  pg_do(c, sql);
  PQfinish(c);
}

/* Runs `ctxd <command> --config w->config` with CTXD_PG_URL=pg_url; returns its exit code,
 * its output in p (free with ctxt_proc_free). */
static int run_ctxd(ctxt_world_t *w, ctxt_proc_t *p, const char *command, const char *pg_url) {
  char env_pg[600];
  snprintf(env_pg, sizeof env_pg, "CTXD_PG_URL=%s", pg_url);
  char *argv[] = {(char *)ctxt_ctxd_path(), (char *)command, "--config", w->config, NULL};
  char *env[] = {env_pg, NULL};
  ctxt_world_write_config(w);
  ctxt_proc_spawn(p, argv, env);
  assert_true(ctxt_proc_wait_exit(p, CTXT_READY_MS));
  assert_true(WIFEXITED(p->status));
  return WEXITSTATUS(p->status);
}

static void dml_role_runs_after_migrate(void **state) {
  ctxt_world_t *w = *state;
  char owner[64], dml[64], url[256];
  make_roles(w, owner, dml);
  ctxt_proc_t mig = {0};
  url_as(w, owner, url, sizeof url);
  if (run_ctxd(w, &mig, "migrate", url) != 0) fail_msg("ctxd migrate as the owner failed:\n%s", mig.out);
  ctxt_proc_free(&mig);
  grant_dml(w, owner, dml);

  url_as(w, dml, url, sizeof url);
  snprintf(w->db_env, sizeof w->db_env, "CTXD_PG_URL=%s", url);
  snprintf(w->database_settings, sizeof w->database_settings, ", \"migrate\": \"check\"");
  ctxt_host_start(w, NULL);
  assert_null(strstr(w->host.out, "superuser"));
  char id[37];
  ctxt_make_id(id, 1);
  ctxt_publish(w, id, "{\"action\":\"publish\"}");
  ctxt_publish(w, id, "{\"action\":\"publish\"}"); /* the inbox drops the duplicate */
  assert_int_equal(ctxt_wait_effects(w, NULL, 1), 1);
  /* the relay, as the DML role too, published the event and archived its row */
  assert_int_equal(ctxt_pg_wait_long(w->pg, "SELECT count(*) FROM ctxd.outbox_archive", 1, CTXT_EFFECT_MS),
                   1);
  assert_int_equal(ctxt_pg_wait_long(w->pg, "SELECT count(*) FROM ctxd.outbox", 0, CTXT_EFFECT_MS), 0);
  ctxt_host_stop(w, SIGTERM);

  /* "auto" (the default) needs no CREATE either when nothing is lacking */
  w->database_settings[0] = '\0';
  ctxt_host_start(w, NULL);
  ctxt_host_stop(w, SIGTERM);
}

static void unmigrated_database_refused(void **state) {
  ctxt_world_t *w = *state;
  char owner[64], dml[64], url[256];
  make_roles(w, owner, dml);
  url_as(w, dml, url, sizeof url);
  snprintf(w->db_env, sizeof w->db_env, "CTXD_PG_URL=%s", url);
  snprintf(w->database_settings, sizeof w->database_settings, ", \"migrate\": \"check\"");
  ctxt_host_start_fails(w);
  assert_non_null(strstr(w->host.out, "the database lacks migrations: 'ctxd' lacks v1 (inbox), v2 (outbox)"));
  assert_non_null(strstr(w->host.out, "'testkit' lacks v1 (effects)"));
  assert_non_null(strstr(w->host.out, "run `ctxd migrate` as the database owner"));

  /* "auto" tries, and says why it cannot */
  w->database_settings[0] = '\0';
  ctxt_host_start_fails(w);
  assert_non_null(strstr(w->host.out,
                         "this role may not change the schema: run `ctxd migrate` as the database "
                         "owner"));
}

static void superuser_warned(void **state) {
  ctxt_world_t *w = *state;
  ctxt_host_start(w, NULL); /* the stack's URL: the postgres superuser */
  assert_non_null(strstr(w->host.out, "connected to the database as 'postgres', a superuser"));
  ctxt_host_stop(w, SIGTERM);
}

/* The stack's broker URL with password instead of its own. */
static void amqp_with_password(const char *password, char *url, size_t len) {
  const char *base = ctxt_amqp_url(), *scheme = strstr(base, "://") + 3, *at = strchr(base, '@');
  const char *colon = strchr(scheme, ':');
  assert_non_null(at);
  assert_true(colon != NULL && colon < at);
  snprintf(url, len, "%.*s:%s%s", (int)(colon - base), base, password, at);
}

static void wrong_broker_password_refused(void **state) {
  ctxt_world_t *w = *state;
  amqp_with_password("hunter2", w->broker_url, sizeof w->broker_url);
  ctxt_world_write_config(w);
  char env_amqp[600];
  snprintf(env_amqp, sizeof env_amqp, "CTXD_AMQP_URL=%s", w->broker_url);
  char *argv[] = {(char *)ctxt_ctxd_path(), "run", "--config", w->config, NULL};
  char *env[] = {w->db_env, env_amqp, NULL};
  ctxt_proc_spawn(&w->host, argv, env);
  assert_true(ctxt_proc_wait_output(&w->host, "retrying", CTXT_READY_MS));
  assert_non_null(
      strstr(w->host.out, "connection closed by the broker: 403 ACCESS_REFUSED - Login was refused"));
  assert_null(strstr(w->host.out, "hunter2"));
  ctxt_host_stop(w, SIGTERM);
}

static void broker_password_from_file(void **state) {
  ctxt_world_t *w = *state;
  /* the stack's password, in a file named as systemd's LoadCredential= names it */
  const char *base = ctxt_amqp_url(), *scheme = strstr(base, "://") + 3, *at = strchr(base, '@');
  const char *colon = strchr(scheme, ':');
  char dir[] = "/tmp/ctxd-test-cred-XXXXXX", file[128], password[128], env_dir[160];
  assert_non_null(mkdtemp(dir));
  snprintf(password, sizeof password, "%.*s\n", (int)(at - colon - 1), colon + 1);
  snprintf(file, sizeof file, "%s/amqp", dir);
  FILE *f = fopen(file, "w");
  assert_non_null(f);
  fputs(password, f);
  fclose(f);
  /* the URL's password is wrong (without one, rabbitmq-c would send "guest"): the file's
   * replaces it */
  amqp_with_password("hunter2", w->broker_url, sizeof w->broker_url);
  snprintf(w->broker_settings, sizeof w->broker_settings, ", \"password_file\": \"amqp\"");
  snprintf(env_dir, sizeof env_dir, "CREDENTIALS_DIRECTORY=%s", dir);
  ctxt_host_start(w, env_dir);
  char id[37];
  ctxt_make_id(id, 1);
  ctxt_publish(w, id, "{\"action\":\"ok\"}");
  assert_int_equal(ctxt_wait_effects(w, NULL, 1), 1);
  ctxt_host_stop(w, SIGTERM);
  unlink(file);
  rmdir(dir);
}

/* database.password_file's password reaches libpq and wins over the URL's (the stack's
 * server trusts every local connection, so libpq's view of it is what can be checked). */
static void database_password_replaces_the_urls(void **state) {
  ctxt_world_t *w = *state;
  char url[256], err[512];
  const char *at = strchr(w->db, '@');
  snprintf(url, sizeof url, "postgresql://postgres:wrong%s", at);
  PGconn *c = NULL;
  assert_int_equal(ctxd__db_connect(url, "hunter2", 5, &c, err, sizeof err), 0);
  assert_string_equal(PQpass(c), "hunter2");
  PQfinish(c);
  assert_int_equal(ctxd__db_connect(url, NULL, 5, &c, err, sizeof err), 0);
  assert_string_equal(PQpass(c), "wrong");
  PQfinish(c);
}

/* `ctxd check-config` and `ctxd run` on the typos of issue 18: each refused, the secret in
 * no output. */
static void secrets_in_no_output(void **state) {
  ctxt_world_t *w = *state;
  static const struct {
    const char *var, *value;
  } cases[] = {
      {"CTXD_AMQP_URL", "amqp://guest:hun,hunter2@127.0.0.1:1/"},
      {"CTXD_PG_URL", "postgresql://postgres:hunter2%zz@127.0.0.1:1/x"},
      {"CTXD_PG_URL", "host=127.0.0.1 port=1 password hunter2 dbname=x"},
  };
  static const char *const commands[] = {"check-config", "run"};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    for (size_t j = 0; j < 2; j++) {
      char entry[600];
      snprintf(entry, sizeof entry, "%s=%s", cases[i].var, cases[i].value);
      char *argv[] = {(char *)ctxt_ctxd_path(), (char *)commands[j], "--config", w->config, NULL};
      /* the world's database unless the case replaces it */
      char *env[] = {strcmp(cases[i].var, "CTXD_PG_URL") != 0 ? w->db_env : entry, entry, NULL};
      ctxt_world_write_config(w);
      ctxt_proc_t p = {0};
      ctxt_proc_spawn(&p, argv, env);
      assert_true(ctxt_proc_wait_exit(&p, CTXT_READY_MS));
      if (!WIFEXITED(p.status) || WEXITSTATUS(p.status) == 0 || strstr(p.out, "hunter2") != NULL ||
          strstr(p.out, cases[i].var) == NULL)
        fail_msg("%s with %s: exit %d, output:\n%s", commands[j], entry, WEXITSTATUS(p.status), p.out);
      ctxt_proc_free(&p);
    }
}

int main(void) {
  const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, ctxt_world_setup, ctxt_world_teardown)
      T(dml_role_runs_after_migrate),         T(unmigrated_database_refused), T(superuser_warned),
      T(wrong_broker_password_refused),       T(broker_password_from_file),   T(secrets_in_no_output),
      T(database_password_replaces_the_urls),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
