/* Idle admin connections cannot starve the host of descriptors: a host limited to 1,024
 * open files gets 2,000 idle connections on its admin port, and still a fresh /readyz is
 * answered and the host reconnects after a broker restart. Restarts the shared broker:
 * run alone. */
#include "hostfixture.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

enum { HOST_NOFILE = 1024, IDLE = 2000, READY_WITHIN_MS = 5000 };

/* A connected socket to the admin port that never sends anything; -1 on failure. */
static int connect_idle(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

static void idle_connections_do_not_starve_the_host(void **state) {
  ctxt_world_t *w = *state;
  /* this process holds the 2,000 client sockets itself */
  struct rlimit lim;
  assert_int_equal(getrlimit(RLIMIT_NOFILE, &lim), 0);
  if (lim.rlim_max != RLIM_INFINITY && lim.rlim_max < IDLE + 256) {
    print_message("the hard open-file limit %lu is too low for %d connections\n", (unsigned long)lim.rlim_max,
                  IDLE);
    skip();
  }
  lim.rlim_cur = lim.rlim_max != RLIM_INFINITY ? lim.rlim_max : IDLE + 256;
  assert_int_equal(setrlimit(RLIMIT_NOFILE, &lim), 0);

  w->nofile = HOST_NOFILE;
  /* a long idle deadline: only the connection bound can make room */
  snprintf(w->host_settings, sizeof w->host_settings,
           ", \"admin\": {\"listen\": \"127.0.0.1:0\", \"idle_timeout_ms\": 600000}");
  ctxt_host_start(w, NULL);
  assert_non_null(strstr(w->host.out, "open-file limit 1024\""));
  int port = w->admin_port;
  assert_true(port > 0);

  static int idle[IDLE];
  for (int i = 0; i < IDLE; i++) {
    idle[i] = connect_idle(port);
    assert_true(idle[i] >= 0);
  }
  /* a fresh probe is answered, behind 2,000 connections in the queue */
  char body[4096];
  int64_t t0 = ctxt_now_ms();
  assert_int_equal(ctxt_http_get(port, "/readyz", body, sizeof body), 200);
  int64_t ready_ms = ctxt_now_ms() - t0;
  print_message("/readyz answered in %lld ms behind %d idle connections\n", (long long)ready_ms, IDLE);
  assert_true(ready_ms < READY_WITHIN_MS);
  long open = ctxt_metric(w, NULL, "ctxd_admin_connections");
  long evicted = ctxt_metric(w, NULL, "ctxd_admin_evicted_total");
  print_message("admin connections open %ld, evicted %ld\n", open, evicted);
  assert_true(open >= 1 && open <= 128);
  assert_true(evicted >= IDLE - 128);

  /* the broker restarts with the idle clients still connected: the host has the
   * descriptors to reconnect, and handles a message afterwards */
  ctxt_amqp_close(w->amqp);
  ctxt_restart("broker");
  w->amqp = ctxt_amqp_connect();
  assert_int_equal(ctxt_wait_status(w, "/readyz", 200, 60000), 200);
  assert_true(ctxt_proc_wait_output(&w->host, "consuming again", CTXT_READY_MS));
  char id[37];
  ctxt_make_id(id, 1);
  ctxt_publish(w, id, "{\"action\":\"ok\"}");
  assert_int_equal(ctxt_wait_effects(w, NULL, 1), 1);

  for (int i = 0; i < IDLE; i++) close(idle[i]);
  assert_int_equal(ctxt_metric(w, NULL, "ctxd_admin_accept_errors_total"), 0);
  ctxt_host_stop(w, SIGTERM);
  assert_null(strstr(w->host.out, "Too many open files"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(idle_connections_do_not_starve_the_host, ctxt_world_setup,
                                      ctxt_world_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
