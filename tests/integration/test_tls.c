/* TLS to both servers, with certificates this test makes (tests/stack/tls-certs.sh): a
 * RabbitMQ node with only a TLS listener that requires a client certificate (stack.sh
 * tls-start, started once for the group) and the private PostgreSQL with ssl = on
 * (stack.sh pg-tls, switched off again at the end). The host, `ctxd send` and `ctxd errors
 * replay` connect over verified TLS; a wrong CA, a wrong name and a missing client
 * certificate are refused with reasons an operator can act on. */
#include "hostfixture.h"

#include "broker.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char certs[64];      /* the scratch folder of the certificates */
static char amqps_url[256]; /* the TLS node */

static int group_setup(void **state) {
  (void)state;
  char cmd[512], env[512];
  snprintf(certs, sizeof certs, "/tmp/ctxd-tls-XXXXXX");
  assert_non_null(mkdtemp(certs));
  snprintf(cmd, sizeof cmd, "bash %s/tests/stack/tls-certs.sh %s", CTXD_TEST_SOURCE_DIR, certs);
  assert_int_equal(system(cmd), 0);
  snprintf(cmd, sizeof cmd, "tls-start %s", certs);
  ctxt_stack(cmd);
  snprintf(cmd, sizeof cmd, "pg-tls %s", certs);
  ctxt_stack(cmd);
  /* the TLS node's URL, beside the stack's env file */
  snprintf(env, sizeof env, "%s", ctxt_stack_env_file());
  *strrchr(env, '/') = '\0';
  strcat(env, "/tls/env");
  char *text = ctxt_read_file(env);
  const char *at = strstr(text, "CTXD_AMQPS_URL=");
  assert_non_null(at);
  snprintf(amqps_url, sizeof amqps_url, "%.*s", (int)strcspn(at + 15, "\n"), at + 15);
  free(text);
  return 0;
}

static int group_teardown(void **state) {
  (void)state;
  char cmd[256];
  ctxt_stack("tls-stop");
  ctxt_stack("pg-tls off");
  snprintf(cmd, sizeof cmd, "rm -rf %s", certs);
  return system(cmd) == 0 ? 0 : -1;
}

/* The world on the TLS node, with broker.tls `tls` (the inside of the object) and the
 * database URL's TLS parameters `pg` ("sslmode=...&..."). */
static void use_tls(ctxt_world_t *w, const char *tls, const char *pg) {
  snprintf(w->broker_url, sizeof w->broker_url, "%s", amqps_url);
  snprintf(w->broker_settings, sizeof w->broker_settings, ", \"tls\": {%s}", tls);
  snprintf(w->db_env, sizeof w->db_env, "CTXD_PG_URL=%s?%s", w->db, pg);
}

/* broker.tls members: the test CA (or another) and the client certificate */
#define CA(name) "\"ca_file\": \"%s/" name ".pem\""
#define CLIENT ", \"cert_file\": \"%s/client.pem\", \"key_file\": \"%s/client.key\""
#define PG_VERIFIED "sslmode=verify-full&sslrootcert=%s/ca.pem"

/* Runs `ctxd ARGS... --config` on the world's configuration with its environment; returns
 * the exit code, its stderr in p. */
static int run_ctxd(ctxt_world_t *w, ctxt_proc_t *p, char **args) {
  char *argv[16] = {(char *)ctxt_ctxd_path()};
  size_t n = 1;
  for (; args[n - 1] != NULL; n++) argv[n] = args[n - 1];
  argv[n++] = "--config";
  argv[n++] = w->config;
  argv[n] = NULL;
  char amqp_env[600];
  snprintf(amqp_env, sizeof amqp_env, "CTXD_AMQP_URL=%s", w->broker_url);
  char *env[] = {w->db_env, amqp_env, NULL};
  ctxt_proc_spawn(p, argv, env);
  assert_true(ctxt_proc_wait_exit(p, 60000));
  assert_true(WIFEXITED(p->status));
  return WEXITSTATUS(p->status);
}

/* Sends {"action": action} of the world's type with `ctxd send`; returns its exit code. */
static int send_message(ctxt_world_t *w, ctxt_proc_t *p, const char *action) {
  char message[128];
  snprintf(message, sizeof message, "{\"action\": \"%s\"}", action);
  char *args[] = {"send", "--type", w->type, "--message", message, NULL};
  return run_ctxd(w, p, args);
}

/* Starts the host, which cannot connect to the broker: returns once it logged `want` (it
 * keeps retrying, never ready), after stopping it. */
static void host_refused_by_broker(ctxt_world_t *w, const char *want) {
  ctxt_world_write_config(w);
  char *argv[] = {(char *)ctxt_ctxd_path(), "run", "--config", w->config, NULL};
  char amqp_env[600];
  snprintf(amqp_env, sizeof amqp_env, "CTXD_AMQP_URL=%s", w->broker_url);
  char *env[] = {w->db_env, amqp_env, NULL};
  ctxt_proc_free(&w->host);
  ctxt_proc_spawn(&w->host, argv, env);
  if (!ctxt_proc_wait_output(&w->host, want, CTXT_READY_MS)) fail_msg("no '%s' in: %s", want, w->host.out);
  assert_null(strstr(w->host.out, "\"ready:"));
  ctxt_proc_signal(&w->host, SIGTERM);
  assert_true(ctxt_proc_wait_exit(&w->host, 60000));
}

/* Consumes, handles and publishes over verified, mutual TLS to both servers; `ctxd send`
 * and `ctxd errors replay` too. */
static void verified_mutual_tls(void **state) {
  ctxt_world_t *w = *state;
  char tls[1024], pg[512];
  snprintf(tls, sizeof tls, CA("ca") CLIENT, certs, certs, certs);
  snprintf(pg, sizeof pg, PG_VERIFIED "&sslcert=%s/client.pem&sslkey=%s/client.key", certs, certs, certs);
  use_tls(w, tls, pg);
  ctxt_host_start(w, NULL);
  assert_null(strstr(w->host.out, "verify is false"));
  ctxt_proc_t p = {0};
  assert_int_equal(send_message(w, &p, "publish"), 0);
  ctxt_proc_free(&p);
  assert_int_equal(ctxt_wait_effects(w, NULL, 1), 1);
  /* the event the handler wrote is published (and confirmed) over the same connection */
  assert_int_equal(ctxt_pg_wait_long(w->pg, "SELECT count(*) FROM ctxd.outbox_archive", 1, CTXT_EFFECT_MS),
                   1);
  /* every connection of the host to its database is TLS, with the client certificate */
  assert_int_equal(ctxt_pg_long(w->pg,
                                "SELECT count(*) FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)"
                                " WHERE a.datname = current_database() AND a.pid <> pg_backend_pid()"
                                " AND NOT coalesce(s.ssl AND s.client_dn = '/CN=ctxd-client', false)"),
                   0);
  assert_true(ctxt_pg_long(w->pg, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                                  " AND pid <> pg_backend_pid()") >= 2);
  char *replay[] = {"errors", "replay", "--endpoint", w->endpoint, NULL};
  assert_int_equal(run_ctxd(w, &p, replay), 0);
  ctxt_proc_free(&p);
  ctxt_host_stop(w, SIGTERM);
}

/* A backlog read over TLS: hundreds of deliveries arrive as a burst of TLS records, all
 * handled (rabbitmq-c reads what OpenSSL holds before it waits on the socket, so records
 * OpenSSL read ahead never wait for the next readable event). */
static void backlog_over_tls(void **state) {
  ctxt_world_t *w = *state;
  enum { N = 400 };
  char tls[1024], pg[512], err[512], ca[128], cert[128], key[128];
  snprintf(tls, sizeof tls, CA("ca") CLIENT, certs, certs, certs);
  snprintf(pg, sizeof pg, PG_VERIFIED, certs);
  use_tls(w, tls, pg);
  ctxt_host_start(w, NULL); /* declares the topology */
  ctxt_host_stop(w, SIGTERM);
  snprintf(ca, sizeof ca, "%s/ca.pem", certs);
  snprintf(cert, sizeof cert, "%s/client.pem", certs);
  snprintf(key, sizeof key, "%s/client.key", certs);
  ctxd__broker_tls_t t = {.ca_file = ca, .cert_file = cert, .key_file = key, .verify = 1};
  ctxd__broker_t b;
  if (ctxd__broker_connect(&b, amqps_url, NULL, &t, 0, 10000, err, sizeof err) != 0) fail_msg("%s", err);
  amqp_basic_properties_t props = {._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG,
                                   .content_type = amqp_cstring_bytes("application/vnd.masstransit+json"),
                                   .delivery_mode = AMQP_DELIVERY_PERSISTENT};
  uint64_t seq = 0;
  for (int i = 0; i < N; i++) {
    char id[37], body[4096];
    ctxt_make_id(id, i + 1);
    /* about 3 KiB each: the backlog spans hundreds of TLS records */
    snprintf(body, sizeof body,
             "{\"messageId\":\"%s\",\"messageType\":[\"urn:message:%s\"],"
             "\"message\":{\"action\":\"ok\",\"pad\":\"%03000d\"}}",
             id, w->type, i);
    assert_int_equal(ctxd__broker_publish(&b, w->type, "", 0, &props, amqp_cstring_bytes(body), &seq), 0);
  }
  assert_int_equal(ctxd__broker_wait_confirm(&b, seq, 30000), 0);
  ctxd__broker_close(&b, 1);
  ctxt_host_start(w, NULL);
  assert_int_equal(ctxt_wait_effects(w, NULL, N), N);
  ctxt_host_stop(w, SIGTERM);
}

/* A broker certificate from another CA: the host keeps retrying and says why; a database
 * certificate from another CA: the host does not start, and says why. */
static void wrong_ca_refused(void **state) {
  ctxt_world_t *w = *state;
  char tls[1024], pg[512], want[512];
  snprintf(tls, sizeof tls, CA("other-ca") CLIENT, certs, certs, certs);
  snprintf(pg, sizeof pg, PG_VERIFIED, certs);
  use_tls(w, tls, pg);
  snprintf(want, sizeof want,
           "TLS handshake with %s failed: certificate verify failed: ", strrchr(amqps_url, '@') + 1);
  host_refused_by_broker(w, want);

  snprintf(tls, sizeof tls, CA("ca") CLIENT, certs, certs, certs);
  snprintf(pg, sizeof pg, "sslmode=verify-full&sslrootcert=%s/other-ca.pem", certs);
  use_tls(w, tls, pg);
  ctxt_host_start_fails(w);
  assert_non_null(strstr(w->host.out, "certificate verify failed"));

  /* a name the certificate does not carry */
  snprintf(tls, sizeof tls, CA("ca") CLIENT ", \"server_name\": \"broker.example\"", certs, certs, certs);
  use_tls(w, tls, "sslmode=disable");
  ctxt_world_write_config(w);
  ctxt_proc_t p = {0};
  assert_int_equal(send_message(w, &p, "ok"), 1);
  assert_non_null(strstr(p.out, "certificate verify failed: hostname mismatch"));
  ctxt_proc_free(&p);
}

/* The broker requires a client certificate: without one it ends the session, and the
 * host says so. */
static void client_certificate_required(void **state) {
  ctxt_world_t *w = *state;
  char tls[512], pg[512];
  snprintf(tls, sizeof tls, CA("ca"), certs);
  snprintf(pg, sizeof pg, PG_VERIFIED, certs);
  use_tls(w, tls, pg);
  host_refused_by_broker(w, "the TLS session failed: ");
}

/* verify: false connects to a broker whose certificate it cannot check, and says so. */
static void verify_off_warns(void **state) {
  ctxt_world_t *w = *state;
  char tls[1024], pg[512];
  snprintf(tls, sizeof tls, CA("other-ca") CLIENT ", \"verify\": false", certs, certs, certs);
  snprintf(pg, sizeof pg, PG_VERIFIED, certs);
  use_tls(w, tls, pg);
  ctxt_host_start(w, NULL);
  assert_non_null(strstr(w->host.out, "broker.tls.verify is false: the broker's certificate and name are not "
                                      "checked"));
  assert_non_null(strstr(w->host.out, "\"level\":\"warn\""));
  ctxt_proc_t p = {0};
  assert_int_equal(send_message(w, &p, "ok"), 0);
  ctxt_proc_free(&p);
  assert_int_equal(ctxt_wait_effects(w, NULL, 1), 1);
  ctxt_host_stop(w, SIGTERM);
}

/* An encrypted client key is refused at once with OpenSSL's reason: nothing prompts for a
 * passphrase on a terminal. */
static void encrypted_key_refused(void **state) {
  ctxt_world_t *w = *state;
  char tls[1024];
  snprintf(tls, sizeof tls,
           CA("ca") ", \"cert_file\": \"%s/client.pem\", \"key_file\": \"%s/client-encrypted.key\"", certs,
           certs, certs);
  use_tls(w, tls, "sslmode=disable");
  ctxt_world_write_config(w);
  ctxt_proc_t p = {0};
  assert_int_equal(send_message(w, &p, "ok"), 1);
  assert_non_null(strstr(p.out, "client-encrypted.key: bad decrypt"));
  ctxt_proc_free(&p);
}

int main(void) {
#define T(f) cmocka_unit_test_setup_teardown(f, ctxt_world_setup, ctxt_world_teardown)
  const struct CMUnitTest tests[] = {
      T(verified_mutual_tls), T(wrong_ca_refused), T(client_certificate_required),
      T(backlog_over_tls),    T(verify_off_warns), T(encrypted_key_refused),
  };
#undef T
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
