/* systemd's notify protocol: READY=1 once consuming, watchdog pings from the loop,
 * STOPPING=1 on drain, EXTEND_TIMEOUT_USEC while start-up migrations run, RELOADING=1 and
 * READY=1 again around a plugin replacement. The test plays the service manager with a
 * datagram socket. */
#include "hostfixture.h"

#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* Receives datagrams until one contains want; 1 if it came within timeout_ms. */
static int wait_datagram(int fd, const char *want, int timeout_ms) {
  int64_t end = ctxt_now_ms() + timeout_ms;
  for (;;) {
    int64_t left = end - ctxt_now_ms();
    if (left <= 0) return 0;
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, (int)left) <= 0) continue;
    char buf[256];
    ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
    if (n <= 0) continue;
    buf[n] = '\0';
    if (strstr(buf, want) != NULL) return 1;
  }
}

/* Binds the service manager's socket at path (108 bytes); returns its descriptor. */
static int listen_notify(char *path) {
  snprintf(path, 108, "/tmp/ctxd-notify-%s", ctxt_unique());
  int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path);
  assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof addr), 0);
  return fd;
}

static void ready_watchdog_stopping(void **state) {
  ctxt_world_t *w = *state;
  char path[108];
  int fd = listen_notify(path);

  char notify[160];
  snprintf(notify, sizeof notify, "NOTIFY_SOCKET=%s", path);
  char *env[] = {notify, "WATCHDOG_USEC=200000", NULL};
  ctxt_host_start_env(w, env);
  assert_true(wait_datagram(fd, "READY=1", 10000));
  /* 200 ms interval, pinged every 100 ms; the deadlines allow for a loaded machine */
  assert_true(wait_datagram(fd, "WATCHDOG=1", 5000));
  assert_true(wait_datagram(fd, "WATCHDOG=1", 5000));
  ctxt_proc_signal(&w->host, SIGTERM);
  assert_true(wait_datagram(fd, "STOPPING=1", 10000));
  ctxt_host_stop(w, SIGTERM);
  close(fd);
  unlink(path);
}

static void extend_reloading(void **state) {
  ctxt_world_t *w = *state;
  char path[108], dir[] = "/tmp/ctxd-plugins-XXXXXX";
  int fd = listen_notify(path);
  assert_non_null(mkdtemp(dir));
  snprintf(w->plugin_dir, sizeof w->plugin_dir, "%s", dir);
  ctxt_plugin_install(dir, "ctxd_testkit.so");

  char notify[160];
  snprintf(notify, sizeof notify, "NOTIFY_SOCKET=%s", path);
  char *env[] = {notify, NULL};
  ctxt_host_start_env(w, env);
  /* in this order: the time asked for while migrating, then ready */
  assert_true(wait_datagram(fd, "EXTEND_TIMEOUT_USEC=20000000", 10000));
  assert_true(wait_datagram(fd, "READY=1", 10000));

  ctxt_plugin_install(dir, "ctxd_testkit_v2.so");
  ctxt_proc_signal(&w->host, SIGHUP);
  assert_true(wait_datagram(fd, "RELOADING=1", 10000));
  assert_true(wait_datagram(fd, "READY=1", CTXT_EFFECT_MS));
  assert_true(ctxt_proc_wait_output(&w->host, "replaced plugin 'testkit' 1.0.0 with 2.0.0", CTXT_EFFECT_MS));
  ctxt_host_stop(w, SIGTERM);
  close(fd);
  unlink(path);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  assert_int_equal(system(cmd), 0);
}

/* Without NOTIFY_SOCKET the host runs as it does anywhere else. */
static void runs_without_systemd(void **state) {
  ctxt_world_t *w = *state;
  ctxt_host_start(w, NULL);
  ctxt_host_stop(w, SIGTERM);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(ready_watchdog_stopping, ctxt_world_setup, ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(extend_reloading, ctxt_world_setup, ctxt_world_teardown),
      cmocka_unit_test_setup_teardown(runs_without_systemd, ctxt_world_setup, ctxt_world_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
