/* ctxd_link: a TCP forwarder for the test stack's network faults (tests/stack/stack.sh
 * link-up and the rest). Its listening socket lives in a network namespace, reached from
 * the host over a veth pair, so that nftables rules on that namespace (loss, a cut) touch
 * only the traffic through the link; the connections it makes go to 127.0.0.1:PORT in the
 * namespace it was started in, where the servers listen.
 *
 *   ctxd_link --netns NAME --listen ADDR:PORT --to PORT [--delay-file PATH] [--pid-file PATH]
 *
 * Latency: each direction holds what it reads for the delay in force when it arrived, in
 * order (linkq.h), with at most HIGH_MARK bytes held per direction (reading stops until the
 * writes bring it down to LOW_MARK). The delay, one way, in milliseconds, is the number in
 * the delay file (none, or no file: 0); it is read at start and again at every SIGHUP, and
 * applies to what arrives from then on. The kernel of this machine has no netem qdisc, so
 * the delay is added here. The pid file is written once the link listens and takes
 * SIGHUP: a script that waited for it may signal at once. SIGTERM or SIGINT stop it. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <uv.h>

#include "linkq.h"

#define HIGH_MARK (1024 * 1024)
#define LOW_MARK (256 * 1024)
#define READ_SIZE (64 * 1024)

typedef struct conn_s conn_t;

/* One direction: what src sends goes to dst through q. */
typedef struct {
  conn_t *conn;
  uv_tcp_t *src, *dst;
  ctxd_linkq_t q;
  uv_timer_t timer; /* the oldest chunk's due time */
  int reading;
  int ended;  /* src sent its end (EOF) */
  int passed; /* and it was passed on to dst */
} dir_t;

struct conn_s {
  uv_tcp_t client;   /* accepted in the namespace */
  uv_tcp_t upstream; /* to the server */
  uv_connect_t connect;
  dir_t up, down; /* client -> upstream, upstream -> client */
  int shut;       /* directions whose end was passed on */
  int refused;    /* the server refused the connection: the client is reset when it speaks */
  int closing, open_handles;
};

typedef struct {
  uv_write_t req;
  dir_t *dir;
  ctxd_linkq_chunk_t *chunk;
} write_t;

static uv_loop_t *loop;
static uv_tcp_t server;
static uv_signal_t sighup, sigterm, sigint;
static struct sockaddr_in target;
static const char *delay_file;
static uint64_t delay_ms;

/* Every handle of a connection has the connection as its data. */
static void on_closed(uv_handle_t *h) {
  conn_t *c = h->data;
  if (--c->open_handles > 0) return;
  ctxd_linkq_free(&c->up.q);
  ctxd_linkq_free(&c->down.q);
  free(c);
}

/* Ends both sides, with a reset when one side failed (a reset, say, or the server refused
 * the connection): what is still held is dropped, as a broken path drops it. */
static void conn_close(conn_t *c, int reset) {
  if (c->closing) return;
  c->closing = 1;
  uv_tcp_t *tcp[] = {&c->client, &c->upstream};
  for (size_t i = 0; i < 2; i++)
    if (!reset || uv_tcp_close_reset(tcp[i], on_closed) != 0) uv_close((uv_handle_t *)tcp[i], on_closed);
  uv_close((uv_handle_t *)&c->up.timer, on_closed);
  uv_close((uv_handle_t *)&c->down.timer, on_closed);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)h;
  (void)suggested;
  buf->base = malloc(READ_SIZE);
  buf->len = buf->base != NULL ? READ_SIZE : 0;
}

static void read_start(dir_t *d) {
  if (d->reading || d->ended || d->conn->closing) return;
  if (uv_read_start((uv_stream_t *)d->src, on_alloc, on_read) != 0) {
    conn_close(d->conn, 1);
    return;
  }
  d->reading = 1;
}

static void on_shutdown(uv_shutdown_t *req, int status) {
  conn_t *c = req->data;
  free(req);
  if (status != 0 || ++c->shut == 2) conn_close(c, status != 0);
}

static void on_written(uv_write_t *req, int status) {
  write_t *w = (write_t *)req;
  dir_t *d = w->dir;
  ctxd_linkq_done(&d->q, w->chunk);
  free(w);
  if (d->conn->closing) return;
  if (status != 0) {
    conn_close(d->conn, 1);
    return;
  }
  if (ctxd_linkq_roomy(&d->q)) read_start(d);
}

static void on_timer(uv_timer_t *t);

/* Sends what is due, sets the timer for the next chunk, and passes an end on once
 * everything before it left (the shutdown waits for the writes in flight). */
static void pump(dir_t *d) {
  ctxd_linkq_chunk_t *chunk;
  while (!d->conn->closing && (chunk = ctxd_linkq_take(&d->q, uv_now(loop))) != NULL) {
    write_t *w = malloc(sizeof *w);
    uv_buf_t b = uv_buf_init(chunk->data, (unsigned)chunk->len);
    if (w == NULL) {
      ctxd_linkq_done(&d->q, chunk);
      conn_close(d->conn, 1);
      return;
    }
    w->dir = d;
    w->chunk = chunk;
    if (uv_write(&w->req, (uv_stream_t *)d->dst, &b, 1, on_written) != 0) {
      ctxd_linkq_done(&d->q, chunk);
      free(w);
      conn_close(d->conn, 1);
      return;
    }
  }
  if (d->conn->closing) return;
  int64_t wait = ctxd_linkq_wait_ms(&d->q, uv_now(loop));
  if (wait >= 0)
    uv_timer_start(&d->timer, on_timer, (uint64_t)wait, 0);
  else
    uv_timer_stop(&d->timer);
  if (d->ended && !d->passed && wait < 0) {
    uv_shutdown_t *req = malloc(sizeof *req);
    d->passed = 1;
    if (req == NULL || uv_shutdown(req, (uv_stream_t *)d->dst, on_shutdown) != 0) {
      free(req);
      conn_close(d->conn, 1);
      return;
    }
    req->data = d->conn;
  }
}

static void on_timer(uv_timer_t *t) {
  conn_t *c = t->data;
  pump(t == &c->up.timer ? &c->up : &c->down);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  conn_t *c = s->data;
  dir_t *d = s == (uv_stream_t *)&c->client ? &c->up : &c->down;
  if (n > 0 && ctxd_linkq_push(&d->q, buf->base, (size_t)n, uv_now(loop), delay_ms) != 0) n = UV_ENOMEM;
  free(buf->base);
  if (n == 0) return;
  if (c->refused) {
    conn_close(c, 1);
    return;
  }
  if (n == UV_EOF) {
    uv_read_stop(s);
    d->reading = 0;
    d->ended = 1;
  } else if (n < 0) { /* a reset, say: the other side is reset too */
    conn_close(c, 1);
    return;
  } else if (ctxd_linkq_full(&d->q)) {
    uv_read_stop(s);
    d->reading = 0;
  }
  pump(d);
}

static void on_connected(uv_connect_t *req, int status) {
  conn_t *c = req->data;
  if (status != 0) {
    /* The server is down. As a TCP proxy in front of it does (HAProxy, say), the client's
     * connection was taken and is reset once it sends its first bytes: a client that moves
     * on to its next host only when it cannot connect (libpq) stays on this one. */
    c->refused = 1;
    read_start(&c->up);
    return;
  }
  read_start(&c->up);
  read_start(&c->down);
}

static void dir_init(conn_t *c, dir_t *d, uv_tcp_t *src, uv_tcp_t *dst) {
  d->conn = c;
  d->src = src;
  d->dst = dst;
  ctxd_linkq_init(&d->q, HIGH_MARK, LOW_MARK);
  uv_timer_init(loop, &d->timer);
  d->timer.data = c;
}

static void on_connection(uv_stream_t *srv, int status) {
  if (status != 0) return;
  conn_t *c = calloc(1, sizeof *c);
  if (c == NULL) return;
  uv_tcp_init(loop, &c->client);
  uv_tcp_init(loop, &c->upstream);
  c->client.data = c->upstream.data = c->connect.data = c;
  dir_init(c, &c->up, &c->client, &c->upstream);
  dir_init(c, &c->down, &c->upstream, &c->client);
  c->open_handles = 4;
  if (uv_accept(srv, (uv_stream_t *)&c->client) != 0) {
    conn_close(c, 0);
    return;
  }
  uv_tcp_nodelay(&c->client, 1);
  uv_tcp_nodelay(&c->upstream, 1);
  if (uv_tcp_connect(&c->connect, &c->upstream, (const struct sockaddr *)&target, on_connected) != 0)
    conn_close(c, 1);
}

static void load_delay(void) {
  uint64_t ms = 0;
  FILE *f = delay_file != NULL ? fopen(delay_file, "r") : NULL;
  if (f != NULL) {
    char text[64] = "";
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    fclose(f);
    if (ctxd_linkq_parse_delay(text, &ms) != 0) {
      fprintf(stderr, "ctxd_link: %s: not a delay in milliseconds (0-600000); keeping %llu ms\n", delay_file,
              (unsigned long long)delay_ms);
      return;
    }
  }
  delay_ms = ms;
  fprintf(stderr, "ctxd_link: delay %llu ms each way\n", (unsigned long long)delay_ms);
}

static void on_sighup(uv_signal_t *s, int sig) {
  (void)s;
  (void)sig;
  load_delay();
}

/* The connections' handles carry their connection; the listener and the signals none. */
static void close_any(uv_handle_t *h, void *arg) {
  (void)arg;
  if (uv_is_closing(h)) return;
  if (h->data != NULL)
    conn_close(h->data, 0);
  else
    uv_close(h, NULL);
}

static void on_stop(uv_signal_t *s, int sig) {
  (void)s;
  (void)sig;
  uv_walk(loop, close_any, NULL);
}

/* A listening socket on addr in network namespace ns: the socket keeps the namespace it was
 * made in, so the thread enters it for socket() only. The fd, or -1 with the reason said. */
static int listen_in(const char *ns, const struct sockaddr_in *addr) {
  char path[512];
  snprintf(path, sizeof path, "/var/run/netns/%s", ns);
  int nsfd = open(path, O_RDONLY | O_CLOEXEC), home = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  if (nsfd < 0 || home < 0) {
    fprintf(stderr, "ctxd_link: %s: %s\n", nsfd < 0 ? path : "/proc/self/ns/net", strerror(errno));
    return -1;
  }
  int fd = -1, one = 1;
  if (setns(nsfd, CLONE_NEWNET) != 0) {
    fprintf(stderr, "ctxd_link: entering network namespace %s: %s\n", ns, strerror(errno));
  } else {
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, (const struct sockaddr *)addr, sizeof *addr) != 0 || listen(fd, 128) != 0) {
      fprintf(stderr, "ctxd_link: listening in %s: %s\n", ns, strerror(errno));
      if (fd >= 0) close(fd);
      fd = -1;
    }
    if (setns(home, CLONE_NEWNET) != 0) {
      fprintf(stderr, "ctxd_link: back to the first network namespace: %s\n", strerror(errno));
      if (fd >= 0) close(fd);
      fd = -1;
    }
  }
  close(nsfd);
  close(home);
  return fd;
}

static int write_pid(const char *path) {
  char tmp[600];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *f = fopen(tmp, "w");
  if (f == NULL || fprintf(f, "%d\n", (int)getpid()) < 0 || fclose(f) != 0) return -1;
  return rename(tmp, path);
}

static int usage(void) {
  fprintf(
      stderr,
      "usage: ctxd_link --netns NAME --listen ADDR:PORT --to PORT [--delay-file PATH] [--pid-file PATH]\n");
  return 2;
}

int main(int argc, char **argv) {
  const char *ns = NULL, *listen_at = NULL, *pid_file = NULL;
  int to = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--netns") == 0)
      ns = argv[i + 1];
    else if (strcmp(argv[i], "--listen") == 0)
      listen_at = argv[i + 1];
    else if (strcmp(argv[i], "--to") == 0)
      to = atoi(argv[i + 1]);
    else if (strcmp(argv[i], "--delay-file") == 0)
      delay_file = argv[i + 1];
    else if (strcmp(argv[i], "--pid-file") == 0)
      pid_file = argv[i + 1];
    else
      return usage();
  }
  char host[64];
  int port;
  struct sockaddr_in addr;
  if (argc % 2 == 0 || ns == NULL || listen_at == NULL || to <= 0 || to > 65535 ||
      sscanf(listen_at, "%63[^:]:%d", host, &port) != 2 || uv_ip4_addr(host, port, &addr) != 0 ||
      uv_ip4_addr("127.0.0.1", to, &target) != 0)
    return usage();
  int fd = listen_in(ns, &addr);
  if (fd < 0) return 1;
  loop = uv_default_loop();
  load_delay();
  uv_tcp_init(loop, &server);
  if (uv_tcp_open(&server, fd) != 0 || uv_listen((uv_stream_t *)&server, 128, on_connection) != 0) {
    fprintf(stderr, "ctxd_link: cannot serve the listening socket\n");
    return 1;
  }
  uv_signal_init(loop, &sighup);
  uv_signal_init(loop, &sigterm);
  uv_signal_init(loop, &sigint);
  uv_signal_start(&sighup, on_sighup, SIGHUP);
  uv_signal_start(&sigterm, on_stop, SIGTERM);
  uv_signal_start(&sigint, on_stop, SIGINT);
  signal(SIGPIPE, SIG_IGN);
  if (pid_file != NULL && write_pid(pid_file) != 0) {
    fprintf(stderr, "ctxd_link: %s: %s\n", pid_file, strerror(errno));
    return 1;
  }
  fprintf(stderr, "ctxd_link: listening on %s:%d in network namespace %s, forwarding to 127.0.0.1:%d\n", host,
          port, ns, to);
  uv_run(loop, UV_RUN_DEFAULT);
  uv_loop_close(loop);
  return 0;
}
