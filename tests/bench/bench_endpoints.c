/* Many endpoints: what a host costs with 1, 10, 100 and 500 endpoints of one plugin.
 *
 *   ctxd_bench_endpoints --amqp URL --pg URL --ctxd PATH --plugin-dir DIR --out DIR
 *                        [--plugins FILE] [--ctl COMMAND] [--runs R] [--counts 1,10,100,500]
 *
 * For each count N, benchkit registers N endpoints (its `endpoints` setting) and nothing
 * else is loaded; the first start of each N finds none of its queues (they are deleted
 * before), the other R runs find them declared. Each run measures exec -> "ready" log
 * line; 1 s after ready the RSS, threads, open files, the host's AMQP and PostgreSQL
 * connections (its sockets to the broker's port; pg_stat_activity) and channels (COMMAND,
 * a rabbitmqctl, `list_channels`: the private stack has no other client then); then its
 * idle CPU over the next 10 s (utime + stime, % of one core). With --plugins (the context
 * plugins, as tests/bench/run.sh writes them) a reference row runs every context beside
 * one benchkit endpoint. Hosts run on the default endpoint settings with the admin endpoint
 * on. Prints a table (medians), writes DIR/endpoints.{md,json,dat}.
 * Figures, not a pass/fail test. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "benchutil.h"

#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <jansson.h>
#include <libpq-fe.h>

#define MAX_RUNS 15
#define MAX_COUNTS 8
#define ENDPOINT "many"
/* A type of their own: bound to the throughput benchmark's type, 500 idle queues would each
 * get a copy of every message the next benchmark publishes on the same broker. */
#define MESSAGE_TYPE "Ctxd.Bench.v1:ManyWork"
#define IDLE_S 10

typedef struct {
  const char *amqp, *pg, *ctxd, *plugin_dir, *plugins, *out, *ctl, *counts;
  int runs;
} opts_t;

static opts_t O = {.runs = 5, .counts = "1,10,100,500"};
static pid_t running_host; /* stopped when the benchmark gives up */

static void die(const char *what) {
  fprintf(stderr, "bench_endpoints: %s\n", what);
  if (running_host > 0) {
    kill(running_host, SIGKILL);
    waitpid(running_host, NULL, 0);
  }
  exit(1);
}

/* ---- what one run measures ------------------------------------------------------------- */

enum { F_READY, F_RSS, F_CPU, F_THREADS, F_FDS, F_AMQP, F_CHANNELS, F_PG, NFIG };
static const char *const fig_name[NFIG] = {"ready_ms", "rss_mib",    "idle_cpu_pct", "threads",
                                           "fds",      "amqp_conns", "channels",     "pg_conns"};
static const char *const fig_head[NFIG] = {"ready ms", "RSS MiB",    "idle CPU %", "threads",
                                           "fds",      "AMQP conns", "channels",   "PG conns"};

/* utime + stime of pid in clock ticks. */
static long long cpu_ticks(pid_t pid) {
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "r");
  size_t n = f != NULL ? fread(buf, 1, sizeof buf - 1, f) : 0;
  if (f != NULL) fclose(f);
  buf[n] = '\0';
  const char *p = strrchr(buf, ')'); /* the command name may hold spaces */
  unsigned long long ut = 0, st = 0;
  if (p == NULL || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
    die("cannot read the host's /proc stat");
  return (long long)(ut + st);
}

/* Inodes of the sockets pid holds open, and how many files it has open. */
static long open_files(pid_t pid, unsigned long *inodes, size_t cap, size_t *ninodes) {
  char path[64], link[384], target[128];
  snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
  DIR *d = opendir(path);
  long n = 0;
  *ninodes = 0;
  for (struct dirent *e; d != NULL && (e = readdir(d)) != NULL;) {
    if (e->d_name[0] == '.') continue;
    n++;
    snprintf(link, sizeof link, "%s/%s", path, e->d_name);
    ssize_t len = readlink(link, target, sizeof target - 1);
    if (len <= 0) continue;
    target[len] = '\0';
    unsigned long ino;
    if (sscanf(target, "socket:[%lu]", &ino) == 1 && *ninodes < cap) inodes[(*ninodes)++] = ino;
  }
  if (d != NULL) closedir(d);
  return n;
}

/* How many of the sockets (inodes) are TCP connections to remote port `port`. */
static long sockets_to(pid_t pid, const unsigned long *inodes, size_t n, int port) {
  long count = 0;
  const char *files[] = {"tcp", "tcp6"};
  for (size_t k = 0; k < 2; k++) {
    char path[64], line[512];
    snprintf(path, sizeof path, "/proc/%d/net/%s", (int)pid, files[k]);
    FILE *f = fopen(path, "r");
    while (f != NULL && fgets(line, sizeof line, f) != NULL) {
      unsigned rport;
      unsigned long ino;
      if (sscanf(line, " %*d: %*[0-9A-Fa-f]:%*x %*[0-9A-Fa-f]:%x %*x %*s %*s %*x %*d %*d %lu", &rport,
                 &ino) != 2)
        continue;
      for (size_t i = 0; i < n; i++) count += inodes[i] == ino && (int)rport == port;
    }
    if (f != NULL) fclose(f);
  }
  return count;
}

static int url_port(const char *url, int fallback) {
  const char *at = strrchr(url, '@');
  const char *colon = strchr(at != NULL ? at : url + strlen("amqp://"), ':');
  return colon != NULL ? atoi(colon + 1) : fallback;
}

/* Lines a command prints, -1 when there is no command or it fails. */
static long command_lines(const char *args) {
  if (O.ctl == NULL) return -1;
  char cmd[1024], line[1024];
  snprintf(cmd, sizeof cmd, "%s %s 2>/dev/null", O.ctl, args);
  FILE *p = popen(cmd, "r");
  long n = 0;
  while (p != NULL && fgets(line, sizeof line, p) != NULL) n++;
  return p != NULL && pclose(p) == 0 ? n : -1;
}

static long pg_connections(PGconn *pg) {
  PGresult *r = PQexec(pg, "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' "
                           "AND pid <> pg_backend_pid()");
  long n = PQresultStatus(r) == PGRES_TUPLES_OK ? atol(PQgetvalue(r, 0, 0)) : -1;
  PQclear(r);
  return n;
}

/* ---- the host ----------------------------------------------------------------------------- */

static const char *write_config(const char *label, long endpoints, int contexts) {
  static char path[600];
  json_t *plugins = json_array();
  if (contexts) {
    json_error_t jerr;
    json_decref(plugins);
    if (!json_is_array(plugins = json_load_file(O.plugins, 0, &jerr))) die("--plugins: not a JSON array");
  }
  json_array_append_new(plugins, json_pack("{s:s, s:{s:s, s:s, s:I}}", "name", "benchkit", "settings",
                                           "endpoint", ENDPOINT, "message_type", MESSAGE_TYPE, "endpoints",
                                           (json_int_t)endpoints));
  /* the endpoints keep the host's defaults, and the admin endpoint is on (its console
   * samples every endpoint every 2 s): what an operator runs */
  json_t *cfg = json_pack("{s:{s:s}, s:{s:s}, s:{s:s}, s:s, s:o, s:{s:s}}", "broker", "url", O.amqp,
                          "database", "url", O.pg, "log", "level", "info", "plugin_dir", O.plugin_dir,
                          "plugins", plugins, "admin", "listen", "127.0.0.1:0");
  snprintf(path, sizeof path, "%s/ctxd-endpoints-%s.json", O.out, label);
  if (cfg == NULL || json_dump_file(cfg, path, JSON_INDENT(2)) != 0) die("cannot write a configuration");
  json_decref(cfg);
  return path;
}

/* Runs ctxd with config once and fills fig[]. */
static void measure(const char *config, const char *label, PGconn *pg, double fig[NFIG]) {
  static int serial;
  char log[700];
  snprintf(log, sizeof log, "%s/logs/ctxd-endpoints-%s-%d.log", O.out, label, serial++);
  unlink(log);
  double t0 = bench_now_s();
  pid_t pid = fork();
  if (pid < 0) die("fork failed");
  if (pid == 0) {
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) _exit(127);
    dup2(fd, 1);
    dup2(fd, 2);
    execl(O.ctxd, O.ctxd, "run", "--config", config, (char *)NULL);
    _exit(127);
  }
  running_host = pid;
  while (!bench_log_has(log, "\"ready: ")) {
    if (waitpid(pid, NULL, WNOHANG) == pid) die("ctxd exited before it was ready (see its log in --out)");
    if (bench_now_s() - t0 > 120) die("ctxd not ready after 120 s (see its log in --out)");
    bench_sleep_s(0.0005);
  }
  fig[F_READY] = (bench_now_s() - t0) * 1000;
  bench_sleep_s(1);
  unsigned long inodes[4096];
  size_t ninodes;
  fig[F_RSS] = (double)ctxt_proc_status_kb(pid, "VmRSS:") / 1024;
  fig[F_THREADS] = (double)ctxt_proc_status_kb(pid, "Threads:");
  fig[F_FDS] = (double)open_files(pid, inodes, sizeof inodes / sizeof inodes[0], &ninodes);
  fig[F_AMQP] = (double)sockets_to(pid, inodes, ninodes, url_port(O.amqp, 5672));
  fig[F_PG] = (double)pg_connections(pg);
  fig[F_CHANNELS] = (double)command_lines("-q list_channels --no-table-headers number");
  long long c0 = cpu_ticks(pid);
  double w0 = bench_now_s();
  bench_sleep_s(IDLE_S);
  fig[F_CPU] = (double)(cpu_ticks(pid) - c0) / (double)sysconf(_SC_CLK_TCK) / (bench_now_s() - w0) * 100;
  running_host = 0;
  kill(pid, SIGTERM);
  int st;
  if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
    fprintf(stderr, "bench_endpoints: ctxd ended with status %d; see %s\n", st, log);
}

/* Deletes what a host with n endpoints declares, so that its next start is a first one.
 * The delay queues are the default redelivery intervals'. */
static void forget_topology(long n) {
  static const char *const sides[] = {
      "", "_error", "_skipped", "_delay_5000", "_delay_30000", "_delay_300000"};
  char url[512], name[256];
  struct amqp_connection_info ci;
  snprintf(url, sizeof url, "%s", O.amqp);
  if (amqp_parse_url(url, &ci) != AMQP_STATUS_OK) die("--amqp: not an amqp:// URL");
  amqp_connection_state_t c = amqp_new_connection();
  amqp_socket_t *s = amqp_tcp_socket_new(c);
  if (s == NULL || amqp_socket_open(s, ci.host, ci.port) != AMQP_STATUS_OK ||
      amqp_login(c, ci.vhost, 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, ci.user, ci.password).reply_type !=
          AMQP_RESPONSE_NORMAL ||
      amqp_channel_open(c, 1) == NULL)
    die("cannot connect to the broker");
  for (long i = 0; i < n; i++)
    for (size_t k = 0; k < sizeof sides / sizeof sides[0]; k++) {
      if (n > 1)
        snprintf(name, sizeof name, ENDPOINT "-%ld%s", i, sides[k]);
      else
        snprintf(name, sizeof name, ENDPOINT "%s", sides[k]);
      amqp_queue_delete(c, 1, amqp_cstring_bytes(name), 0, 0);
      amqp_exchange_delete(c, 1, amqp_cstring_bytes(name), 0);
      if (amqp_get_rpc_reply(c).reply_type != AMQP_RESPONSE_NORMAL) die("deleting the topology failed");
    }
  amqp_connection_close(c, AMQP_REPLY_SUCCESS);
  amqp_destroy_connection(c);
}

/* ---- the report -------------------------------------------------------------------------- */

typedef struct {
  char label[32];
  long endpoints;
  double first_ready_ms;
  double med[NFIG];
} row_t;

static void print_row(FILE *f, const row_t *r, const char *sep, const char *end) {
  fprintf(f, "%s%s%s%ld%s%.0f", end[0] != '\0' ? "| " : "", r->label, sep, r->endpoints, sep,
          r->first_ready_ms);
  for (int k = 0; k < NFIG; k++) {
    if (r->med[k] < 0)
      fprintf(f, "%s-", sep);
    else
      fprintf(f, k == F_RSS || k == F_CPU ? "%s%.2f" : "%s%.0f", sep, r->med[k]);
  }
  fprintf(f, "%s\n", end);
}

static void report(const row_t *rows, int n) {
  char path[700];
  printf("\n%-10s %9s %10s", "host", "endpoints", "first ms");
  for (int k = 0; k < NFIG; k++) printf(" %10s", fig_head[k]);
  printf("\n");
  for (int i = 0; i < n; i++) {
    printf("%-10s %9ld %10.0f", rows[i].label, rows[i].endpoints, rows[i].first_ready_ms);
    for (int k = 0; k < NFIG; k++) printf(k == F_RSS || k == F_CPU ? " %10.2f" : " %10.0f", rows[i].med[k]);
    printf("\n");
  }
  printf("(medians of %d restarts; first: the first start, queues not declared yet; targets at 500 "
         "endpoints: ready < 2000 ms, RSS < 64 MiB, idle CPU < 1%%)\n",
         O.runs);

  snprintf(path, sizeof path, "%s/endpoints.md", O.out);
  FILE *md = fopen(path, "w");
  snprintf(path, sizeof path, "%s/endpoints.dat", O.out);
  FILE *dat = fopen(path, "w");
  if (md == NULL || dat == NULL) die("cannot write the results");
  fprintf(md, "| host | endpoints | first start ms");
  for (int k = 0; k < NFIG; k++) fprintf(md, " | %s", fig_head[k]);
  fprintf(md, " |\n|---|---:|---:");
  for (int k = 0; k < NFIG; k++) fprintf(md, "|---:");
  fprintf(md, "|\n");
  fprintf(dat, "# label endpoints first_ready_ms");
  for (int k = 0; k < NFIG; k++) fprintf(dat, " %s", fig_name[k]);
  fprintf(dat, "\n");
  json_t *all = json_array();
  for (int i = 0; i < n; i++) {
    print_row(md, &rows[i], " | ", " |");
    if (strcmp(rows[i].label, "benchkit") == 0) print_row(dat, &rows[i], " ", "");
    json_t *o =
        json_pack("{s:s, s:I, s:f, s:i}", "host", rows[i].label, "endpoints", (json_int_t)rows[i].endpoints,
                  "first_ready_ms", rows[i].first_ready_ms, "runs", O.runs);
    for (int k = 0; k < NFIG; k++) json_object_set_new(o, fig_name[k], json_real(rows[i].med[k]));
    json_array_append_new(all, o);
  }
  fclose(md);
  fclose(dat);
  snprintf(path, sizeof path, "%s/endpoints.json", O.out);
  if (json_dump_file(all, path, JSON_INDENT(2)) != 0) die("cannot write the results");
  json_decref(all);
}

/* Runs a host of n endpoints (contexts: with every context plugin too) R + 1 times. */
static void bench(row_t *row, const char *label, long n, int contexts, PGconn *pg) {
  double runs[NFIG][MAX_RUNS], fig[NFIG];
  snprintf(row->label, sizeof row->label, "%s", label);
  row->endpoints = n;
  const char *config = write_config(label, n, contexts);
  forget_topology(n);
  measure(config, label, pg, fig);
  row->first_ready_ms = fig[F_READY];
  for (int i = 0; i < O.runs; i++) {
    measure(config, label, pg, fig);
    for (int k = 0; k < NFIG; k++) runs[k][i] = fig[k];
  }
  forget_topology(n); /* leaves the broker as it found it */
  for (int k = 0; k < NFIG; k++) row->med[k] = bench_median(runs[k], O.runs);
  printf("%s, %ld endpoints: first start %.0f ms, ready %.0f ms, RSS %.1f MiB, idle CPU %.2f%%\n", label, n,
         row->first_ready_ms, row->med[F_READY], row->med[F_RSS], row->med[F_CPU]);
  fflush(stdout);
}

static void usage(void) {
  fprintf(stderr, "usage: ctxd_bench_endpoints --amqp URL --pg URL --ctxd PATH --plugin-dir DIR --out DIR\n"
                  "       [--plugins FILE] [--ctl COMMAND] [--runs R] [--counts 1,10,100,500]\n");
  exit(2);
}

int main(int argc, char **argv) {
  struct {
    const char *flag;
    const char **to;
  } flags[] = {
      {"--amqp", &O.amqp}, {"--pg", &O.pg},           {"--ctxd", &O.ctxd}, {"--plugin-dir", &O.plugin_dir},
      {"--out", &O.out},   {"--plugins", &O.plugins}, {"--ctl", &O.ctl},   {"--counts", &O.counts}};
  for (int i = 1; i < argc; i++) {
    int known = 0;
    for (size_t k = 0; k < sizeof flags / sizeof flags[0] && i + 1 < argc; k++)
      if (strcmp(argv[i], flags[k].flag) == 0) *flags[k].to = argv[++i], known = 1;
    if (!known && strcmp(argv[i], "--runs") == 0 && i + 1 < argc) O.runs = atoi(argv[++i]), known = 1;
    if (!known) usage();
  }
  if (!O.amqp || !O.pg || !O.ctxd || !O.plugin_dir || !O.out || O.runs < 1 || O.runs > MAX_RUNS) usage();
  /* the configuration names --amqp and --pg; inherited overrides would win over it */
  unsetenv("CTXD_AMQP_URL");
  unsetenv("CTXD_PG_URL");
  char dir[700];
  snprintf(dir, sizeof dir, "%s/logs", O.out);
  mkdir(O.out, 0755);
  mkdir(dir, 0755);
  PGconn *pg = PQconnectdb(O.pg);
  if (PQstatus(pg) != CONNECTION_OK) die("cannot connect to the database");

  row_t rows[MAX_COUNTS + 1];
  int nrows = 0;
  char counts[256];
  snprintf(counts, sizeof counts, "%s", O.counts);
  for (char *save, *t = strtok_r(counts, ",", &save); t != NULL && nrows < MAX_COUNTS;
       t = strtok_r(NULL, ",", &save)) {
    long n = atol(t);
    if (n < 1 || n > 1000) usage();
    bench(&rows[nrows++], "benchkit", n, 0, pg);
  }
  if (O.plugins != NULL) bench(&rows[nrows++], "contexts", 1, 1, pg);
  report(rows, nrows);
  PQfinish(pg);
  return 0;
}
