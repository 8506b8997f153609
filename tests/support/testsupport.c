#include "testsupport.h"

#include "contract.h"

#include <errno.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <amqp_tcp_socket.h>

extern char **environ;

int64_t ctxt_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

long ctxt_env_long(const char *name, long def) {
  const char *v = getenv(name);
  return v != NULL && *v ? strtol(v, NULL, 10) : def;
}

/* Polling interval of the wait helpers: each wait ends at its deadline or its condition. */
static void tick(void) {
  struct timespec ts = {0, 20 * 1000000L};
  nanosleep(&ts, NULL);
}

const char *ctxt_stack_env_file(void) {
  const char *file = getenv("CTXD_STACK_ENV");
  return file != NULL ? file : CTXD_TEST_STACK_ENV;
}

static const char *stack_value(const char *name, char *buf, size_t len) {
  const char *v = getenv(name);
  if (v != NULL && *v) return v;
  const char *file = ctxt_stack_env_file();
  FILE *f = fopen(file, "r");
  if (f == NULL)
    fail_msg("%s is not set and %s is missing: start the servers with tests/stack/stack.sh start", name,
             file);
  char line[1024];
  size_t n = strlen(name);
  while (fgets(line, sizeof line, f) != NULL) {
    if (strncmp(line, name, n) == 0 && line[n] == '=') {
      line[strcspn(line, "\n")] = '\0';
      snprintf(buf, len, "%s", line + n + 1);
      fclose(f);
      return buf;
    }
  }
  fclose(f);
  fail_msg("%s not found in %s", name, file);
  return NULL;
}

const char *ctxt_amqp_url(void) {
  static char buf[512];
  return stack_value("CTXD_AMQP_URL", buf, sizeof buf);
}

const char *ctxt_pg_url(void) {
  static char buf[512];
  return stack_value("CTXD_PG_URL", buf, sizeof buf);
}

const char *ctxt_unique(void) {
  static char buf[32];
  static unsigned counter;
  /* fixed widths keep the fields apart: another run (time, pid) never makes the same name
   * and so never meets an old queue still holding messages */
  snprintf(buf, sizeof buf, "%08lx%06x%x", (unsigned long)time(NULL) & 0xffffffffUL,
           (unsigned)getpid() & 0xffffffU, counter++);
  return buf;
}

PGconn *ctxt_pg_connect(const char *url) {
  PGconn *c = PQconnectdb(url);
  if (PQstatus(c) != CONNECTION_OK) fail_msg("cannot connect to %s: %s", url, PQerrorMessage(c));
  return c;
}

void ctxt_pg_fresh_db(char *url, size_t len) {
  PGconn *c = ctxt_pg_connect(ctxt_pg_url());
  char name[64], sql[128];
  snprintf(name, sizeof name, "ctxd_t_%s", ctxt_unique());
  snprintf(sql, sizeof sql, "CREATE DATABASE %s", name);
  PGresult *r = PQexec(c, sql);
  if (PQresultStatus(r) != PGRES_COMMAND_OK) fail_msg("%s: %s", sql, PQerrorMessage(c));
  PQclear(r);
  PQfinish(c);
  /* the stack URL ends with /<database> */
  const char *base = ctxt_pg_url();
  const char *slash = strrchr(base, '/');
  snprintf(url, len, "%.*s/%s", (int)(slash - base), base, name);
}

long ctxt_pg_long(PGconn *c, const char *sql) {
  PGresult *r = PQexec(c, sql);
  long v = -1;
  if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0 && !PQgetisnull(r, 0, 0))
    v = strtol(PQgetvalue(r, 0, 0), NULL, 10);
  else if (PQresultStatus(r) != PGRES_TUPLES_OK)
    v = -2;
  PQclear(r);
  return v;
}

long ctxt_pg_wait_long(PGconn *c, const char *sql, long want, int timeout_ms) {
  int64_t end = ctxt_now_ms() + timeout_ms;
  long v;
  while ((v = ctxt_pg_long(c, sql)) != want && ctxt_now_ms() < end) tick();
  return v;
}

const char *ctxt_ctxd_path(void) { return CTXD_TEST_BINARY_DIR "/runtime/ctxd"; }
const char *ctxt_plugin_dir(void) { return CTXD_TEST_BINARY_DIR "/plugins"; }

char *ctxt_read_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) fail_msg("cannot open %s", path);
  char *text = NULL;
  size_t cap = 0, len = 0, n;
  do {
    if (len + 4096 + 1 > cap) {
      cap = 2 * cap + 4096 + 1;
      text = realloc(text, cap);
      assert_non_null(text);
    }
    n = fread(text + len, 1, cap - len - 1, f);
    len += n;
  } while (n > 0);
  fclose(f);
  text[len] = '\0';
  return text;
}

void ctxt_write_file(char *path, size_t len, const char *text) {
  snprintf(path, len, "/tmp/ctxd-test-XXXXXX");
  int fd = mkstemp(path);
  if (fd < 0) fail_msg("mkstemp: %s", strerror(errno));
  size_t n = strlen(text);
  if (write(fd, text, n) != (ssize_t)n) fail_msg("write %s failed", path);
  close(fd);
}

/* ---- processes ------------------------------------------------------------------------ */

void ctxt_proc_spawn(ctxt_proc_t *p, char *const argv[], char *const env[]) {
  ctxt_proc_spawn_nofile(p, argv, env, 0);
}

void ctxt_proc_spawn_nofile(ctxt_proc_t *p, char *const argv[], char *const env[], unsigned long nofile) {
  memset(p, 0, sizeof *p);
  char path[64];
  snprintf(path, sizeof path, "/tmp/ctxd-test-err-XXXXXX");
  int wfd = mkstemp(path);
  if (wfd < 0) fail_msg("mkstemp: %s", strerror(errno));
  /* a second open file description: the child's appends must not move the read offset */
  p->err_fd = open(path, O_RDONLY | O_CLOEXEC);
  unlink(path);
  if (p->err_fd < 0) fail_msg("open %s: %s", path, strerror(errno));
  p->pid = fork();
  if (p->pid < 0) fail_msg("fork: %s", strerror(errno));
  if (p->pid == 0) {
    dup2(wfd, STDERR_FILENO);
    close(wfd);
    /* it would override every plugin_dir a test writes: a child has it only from env */
    unsetenv("CTXD_PLUGIN_DIR");
    for (size_t i = 0; env != NULL && env[i] != NULL; i++) putenv(env[i]);
    /* the hard limit too: the host raises its soft limit to the hard one */
    struct rlimit lim = {nofile, nofile};
    if (nofile != 0 && setrlimit(RLIMIT_NOFILE, &lim) != 0) _exit(126);
    execv(argv[0], argv);
    _exit(127);
  }
  close(wfd);
  p->cap = 65536;
  p->out = calloc(1, p->cap);
}

/* Reads what the child wrote; with nothing new, waits up to ms (a file cannot be polled:
 * short naps). 0 once the child exited and everything it wrote was read. */
static int pump(ctxt_proc_t *p, int ms) {
  char buf[8192];
  ssize_t n = read(p->err_fd, buf, sizeof buf);
  if (n < 0) return 0;
  if (n == 0) {
    if (p->exited) return 0; /* it had exited before this read: all read */
    if (waitpid(p->pid, &p->status, WNOHANG) == p->pid) {
      p->exited = 1;
      return 1; /* read once more: what it wrote just before exiting */
    }
    if (ms > 0) usleep((useconds_t)(ms < 10 ? ms : 10) * 1000);
    return 1;
  }
  if (p->len + (size_t)n + 1 > p->cap) {
    p->cap = (p->len + (size_t)n + 1) * 2;
    p->out = realloc(p->out, p->cap);
  }
  memcpy(p->out + p->len, buf, (size_t)n);
  p->len += (size_t)n;
  p->out[p->len] = '\0';
  /* echo, so a failing test shows the host's log */
  fwrite(buf, 1, (size_t)n, stderr);
  return 1;
}

int ctxt_proc_wait_output(ctxt_proc_t *p, const char *needle, int timeout_ms) {
  int64_t end = ctxt_now_ms() + timeout_ms;
  size_t from = p->len;
  for (;;) {
    if (p->len > from && strstr(p->out + from, needle) != NULL) return 1;
    int64_t left = end - ctxt_now_ms();
    if (left <= 0) return 0;
    if (!pump(p, (int)(left < 50 ? left : 50))) {
      return p->len > from && strstr(p->out + from, needle) != NULL;
    }
  }
}

size_t ctxt_proc_read(ctxt_proc_t *p) {
  size_t before;
  do {
    before = p->len;
  } while (pump(p, 0) && p->len > before);
  return p->len;
}

int ctxt_proc_wait_exit(ctxt_proc_t *p, int timeout_ms) {
  int64_t end = ctxt_now_ms() + timeout_ms;
  while (!p->exited) {
    pid_t r = waitpid(p->pid, &p->status, WNOHANG);
    if (r == p->pid) {
      p->exited = 1;
      break;
    }
    if (ctxt_now_ms() >= end) return 0;
    pump(p, 20);
  }
  while (pump(p, 0)) {
  }
  return 1;
}

void ctxt_proc_signal(ctxt_proc_t *p, int sig) {
  if (!p->exited) kill(p->pid, sig);
}

void ctxt_proc_free(ctxt_proc_t *p) {
  if (p->pid > 0 && !p->exited) {
    kill(p->pid, SIGKILL);
    waitpid(p->pid, &p->status, 0);
  }
  if (p->err_fd > 0) close(p->err_fd);
  free(p->out);
  memset(p, 0, sizeof *p);
}

/* ---- AMQP ----------------------------------------------------------------------------- */

static void check_reply(amqp_connection_state_t c, const char *what) {
  amqp_rpc_reply_t r = amqp_get_rpc_reply(c);
  if (r.reply_type != AMQP_RESPONSE_NORMAL) fail_msg("%s failed (reply type %d)", what, r.reply_type);
}

amqp_connection_state_t ctxt_amqp_connect(void) { return ctxt_amqp_connect_url(ctxt_amqp_url()); }

amqp_connection_state_t ctxt_amqp_try_connect(const char *text) {
  char url[512];
  struct amqp_connection_info ci;
  snprintf(url, sizeof url, "%s", text);
  if (amqp_parse_url(url, &ci) != AMQP_STATUS_OK) return NULL;
  amqp_connection_state_t c = amqp_new_connection();
  amqp_socket_t *s = amqp_tcp_socket_new(c);
  /* a broker that accepts but never answers (a node booting) must not hold the caller */
  struct timeval tv = {10, 0};
  amqp_set_handshake_timeout(c, &tv);
  amqp_set_rpc_timeout(c, &tv);
  if (s == NULL || amqp_socket_open_noblock(s, ci.host, ci.port, &tv) != AMQP_STATUS_OK ||
      amqp_login(c, ci.vhost, 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, ci.user, ci.password).reply_type !=
          AMQP_RESPONSE_NORMAL ||
      amqp_channel_open(c, 1) == NULL || amqp_confirm_select(c, 1) == NULL) {
    amqp_destroy_connection(c);
    return NULL;
  }
  /* the tests' own waits bound what comes after */
  amqp_set_rpc_timeout(c, NULL);
  return c;
}

amqp_connection_state_t ctxt_amqp_connect_url(const char *text) {
  amqp_connection_state_t c = ctxt_amqp_try_connect(text);
  if (c == NULL) fail_msg("cannot connect to %s", text);
  return c;
}

void ctxt_amqp_publish(amqp_connection_state_t c, const char *exchange, const char *content_type,
                       const char *body, const char *message_id, const char *const *headers) {
  amqp_table_entry_t entries[16];
  int n = 0;
  for (size_t i = 0; headers != NULL && headers[i] != NULL && n < 16; i += 2, n++) {
    entries[n].key = amqp_cstring_bytes(headers[i]);
    entries[n].value.kind = AMQP_FIELD_KIND_UTF8;
    entries[n].value.value.bytes = amqp_cstring_bytes(headers[i + 1]);
  }
  amqp_basic_properties_t props = {0};
  props._flags = AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_HEADERS_FLAG;
  props.delivery_mode = AMQP_DELIVERY_PERSISTENT;
  props.headers.num_entries = n;
  props.headers.entries = entries;
  if (content_type != NULL) {
    props._flags |= AMQP_BASIC_CONTENT_TYPE_FLAG;
    props.content_type = amqp_cstring_bytes(content_type);
  }
  if (message_id != NULL) {
    props._flags |= AMQP_BASIC_MESSAGE_ID_FLAG;
    props.message_id = amqp_cstring_bytes(message_id);
  }
  if (amqp_basic_publish(c, 1, amqp_cstring_bytes(exchange), amqp_empty_bytes, 0, 0, &props,
                         amqp_cstring_bytes(body)) != AMQP_STATUS_OK)
    fail_msg("publish to %s failed", exchange);
  /* generous: a cluster electing a new queue leader on a loaded machine confirms late */
  struct timeval tv = {30, 0};
  amqp_frame_t f;
  int st = amqp_simple_wait_frame_noblock(c, &f, &tv);
  if (st == AMQP_STATUS_OK && f.frame_type == AMQP_FRAME_METHOD &&
      f.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD) {
    amqp_channel_close_t *cc = f.payload.method.decoded;
    fail_msg("publish to %s: the broker closed the channel: %d %.*s", exchange, cc->reply_code,
             (int)cc->reply_text.len, (char *)cc->reply_text.bytes);
  }
  if (st != AMQP_STATUS_OK || f.frame_type != AMQP_FRAME_METHOD ||
      f.payload.method.id != AMQP_BASIC_ACK_METHOD)
    fail_msg("publish to %s was not confirmed (status %d)", exchange, st);
  amqp_maybe_release_buffers(c);
}

/* A passive declare: the queue's message count, or its consumer count; -1 if missing. */
static long queue_declare_passive(amqp_connection_state_t c, const char *queue, int consumers) {
  /* a passive declare of a missing queue closes the channel: use a throwaway one */
  amqp_channel_open(c, 2);
  check_reply(c, "channel.open");
  amqp_queue_declare_ok_t *ok =
      amqp_queue_declare(c, 2, amqp_cstring_bytes(queue), 1, 0, 0, 0, amqp_empty_table);
  long n = ok == NULL ? -1 : consumers ? (long)ok->consumer_count : (long)ok->message_count;
  if (ok != NULL) {
    amqp_channel_close(c, 2, AMQP_REPLY_SUCCESS);
  } else {
    /* the broker closed the channel: acknowledge, so that it can be opened again */
    amqp_channel_close_ok_t close_ok = {0};
    amqp_send_method(c, 2, AMQP_CHANNEL_CLOSE_OK_METHOD, &close_ok);
  }
  amqp_maybe_release_buffers(c);
  return n;
}

long ctxt_amqp_queue_count(amqp_connection_state_t c, const char *queue) {
  return queue_declare_passive(c, queue, 0);
}

static long wait_passive(amqp_connection_state_t c, const char *queue, int consumers, long want,
                         int timeout_ms) {
  int64_t end = ctxt_now_ms() + timeout_ms;
  long v;
  while ((v = queue_declare_passive(c, queue, consumers)) != want && ctxt_now_ms() < end) tick();
  return v;
}

long ctxt_amqp_wait_count(amqp_connection_state_t c, const char *queue, long want, int timeout_ms) {
  return wait_passive(c, queue, 0, want, timeout_ms);
}

long ctxt_amqp_wait_consumers(amqp_connection_state_t c, const char *queue, long want, int timeout_ms) {
  return wait_passive(c, queue, 1, want, timeout_ms);
}

void ctxt_amqp_header(const amqp_message_t *m, const char *header, char *value, size_t valuelen) {
  value[0] = '\0';
  if (header == NULL || !(m->properties._flags & AMQP_BASIC_HEADERS_FLAG)) return;
  for (int i = 0; i < m->properties.headers.num_entries; i++) {
    const amqp_table_entry_t *e = &m->properties.headers.entries[i];
    if (e->key.len == strlen(header) && memcmp(e->key.bytes, header, e->key.len) == 0 &&
        (e->value.kind == AMQP_FIELD_KIND_UTF8 || e->value.kind == AMQP_FIELD_KIND_BYTES))
      snprintf(value, valuelen, "%.*s", (int)e->value.value.bytes.len, (char *)e->value.value.bytes.bytes);
  }
}

/* basic.get; 1 with *m (destroy with amqp_destroy_message) and *tag, 0 when empty. */
static int get_one(amqp_connection_state_t c, const char *queue, int no_ack, amqp_message_t *m,
                   uint64_t *tag) {
  amqp_rpc_reply_t r = amqp_basic_get(c, 1, amqp_cstring_bytes(queue), no_ack);
  if (r.reply_type != AMQP_RESPONSE_NORMAL) fail_msg("basic.get %s failed", queue);
  if (r.reply.id != AMQP_BASIC_GET_OK_METHOD) return 0;
  *tag = ((amqp_basic_get_ok_t *)r.reply.decoded)->delivery_tag;
  if (amqp_read_message(c, 1, m, 0).reply_type != AMQP_RESPONSE_NORMAL) fail_msg("read message failed");
  return 1;
}

int ctxt_amqp_take(amqp_connection_state_t c, const char *queue, amqp_message_t *m) {
  uint64_t tag;
  return get_one(c, queue, 1, m, &tag);
}

int ctxt_amqp_get(amqp_connection_state_t c, const char *queue, char *body, size_t bodylen,
                  const char *header, char *value, size_t valuelen) {
  amqp_message_t m;
  if (!ctxt_amqp_take(c, queue, &m)) return 0;
  snprintf(body, bodylen, "%.*s", (int)m.body.len, (char *)m.body.bytes);
  ctxt_amqp_header(&m, header, value, valuelen);
  amqp_destroy_message(&m);
  amqp_maybe_release_buffers(c);
  return 1;
}

int ctxt_amqp_peek_header(amqp_connection_state_t c, const char *queue, const char *header, char *value,
                          size_t valuelen) {
  amqp_message_t m;
  uint64_t tag;
  if (!get_one(c, queue, 0, &m, &tag)) return 0;
  ctxt_amqp_header(&m, header, value, valuelen);
  amqp_destroy_message(&m);
  amqp_basic_nack(c, 1, tag, 0, 1);
  amqp_maybe_release_buffers(c);
  return 1;
}

int ctxt_amqp_peek_header_int(amqp_connection_state_t c, const char *queue, const char *header, long *value) {
  amqp_message_t m;
  uint64_t tag;
  if (!get_one(c, queue, 0, &m, &tag)) return -1;
  int found = 0;
  const amqp_table_t *t = &m.properties.headers;
  for (int i = 0; (m.properties._flags & AMQP_BASIC_HEADERS_FLAG) && i < t->num_entries; i++) {
    const amqp_table_entry_t *e = &t->entries[i];
    if (e->key.len != strlen(header) || memcmp(e->key.bytes, header, e->key.len) != 0) continue;
    found = 1;
    switch (e->value.kind) {
    case AMQP_FIELD_KIND_I8: *value = e->value.value.i8; break;
    case AMQP_FIELD_KIND_I16: *value = e->value.value.i16; break;
    case AMQP_FIELD_KIND_I32: *value = e->value.value.i32; break;
    case AMQP_FIELD_KIND_I64: *value = (long)e->value.value.i64; break;
    default: found = 0; break;
    }
  }
  amqp_destroy_message(&m);
  amqp_basic_nack(c, 1, tag, 0, 1);
  amqp_maybe_release_buffers(c);
  return found;
}

void ctxt_amqp_close(amqp_connection_state_t c) {
  amqp_channel_close(c, 1, AMQP_REPLY_SUCCESS);
  amqp_connection_close(c, AMQP_REPLY_SUCCESS);
  amqp_destroy_connection(c);
}

int ctxt_http_request(int port, const char *method, const char *path, const char *req_body, char *body,
                      size_t len) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  struct timeval tv = {5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
    close(fd);
    return -1;
  }
  char req[4096], resp[65536];
  int n = req_body == NULL
              ? snprintf(req, sizeof req, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", method, path)
              : snprintf(req, sizeof req,
                         "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                         "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                         method, path, strlen(req_body), req_body);
  if (n < 0 || (size_t)n >= sizeof req) fail_msg("http request too long");
  if (write(fd, req, (size_t)n) != n) fail_msg("http write failed");
  size_t got = 0;
  ssize_t r;
  while (got < sizeof resp - 1 && (r = read(fd, resp + got, sizeof resp - 1 - got)) > 0) got += (size_t)r;
  close(fd);
  resp[got] = '\0';
  int status = -1;
  sscanf(resp, "HTTP/1.1 %d", &status);
  const char *b = strstr(resp, "\r\n\r\n");
  snprintf(body, len, "%s", b != NULL ? b + 4 : "");
  return status;
}

int ctxt_http_get(int port, const char *path, char *body, size_t len) {
  return ctxt_http_request(port, "GET", path, NULL, body, len);
}

int ctxt_stack_run(const char *args) {
  char cmd[2048];
  snprintf(cmd, sizeof cmd, "bash %s/tests/stack/stack.sh %s", CTXD_TEST_SOURCE_DIR, args);
  return system(cmd);
}

void ctxt_stack(const char *args) {
  if (ctxt_stack_run(args) != 0) fail_msg("stack.sh %s failed", args);
}

void ctxt_link_up(char *amqp_url, size_t amqp_len, char *pg_url, size_t pg_len) {
  char cmd[1024], line[1024];
  snprintf(cmd, sizeof cmd, "bash %s/tests/stack/stack.sh link-up --bin %s/tests/ctxd_link",
           CTXD_TEST_SOURCE_DIR, CTXD_TEST_BINARY_DIR);
  FILE *f = popen(cmd, "r");
  assert_non_null(f);
  amqp_url[0] = pg_url[0] = '\0';
  while (fgets(line, sizeof line, f) != NULL) {
    line[strcspn(line, "\n")] = '\0';
    if (strncmp(line, "CTXD_LINK_AMQP_URL=", 19) == 0) snprintf(amqp_url, amqp_len, "%s", line + 19);
    if (strncmp(line, "CTXD_LINK_PG_URL=", 17) == 0) snprintf(pg_url, pg_len, "%s", line + 17);
  }
  if (pclose(f) != 0 || !amqp_url[0] || !pg_url[0]) fail_msg("stack.sh link-up failed");
}

int ctxt_fakeprovider_start(ctxt_proc_t *p) {
  char path[512];
  snprintf(path, sizeof path, "%s/tests/ctxd_fakeprovider", CTXD_TEST_BINARY_DIR);
  char *argv[] = {path, "0", NULL};
  ctxt_proc_spawn(p, argv, NULL);
  if (!ctxt_proc_wait_output(p, "listening on ", 10000))
    fail_msg("the fake provider did not start: %s", p->out);
  return atoi(strstr(p->out, "listening on ") + strlen("listening on "));
}

void ctxt_fakeprovider_control(int port, const char *mode, int count) {
  char req[128], body[256];
  snprintf(req, sizeof req, "{\"mode\": \"%s\", \"count\": %d}", mode, count);
  assert_int_equal(ctxt_http_request(port, "POST", "/control", req, body, sizeof body), 200);
}

void ctxt_fakeprovider_fail(int port, int status, int count) {
  char req[128], body[256];
  snprintf(req, sizeof req, "{\"mode\": \"fail\", \"count\": %d, \"status\": %d}", count, status);
  assert_int_equal(ctxt_http_request(port, "POST", "/control", req, body, sizeof body), 200);
}

json_t *ctxt_fakeprovider_list(int port) {
  char body[65536];
  assert_int_equal(ctxt_http_get(port, "/sms", body, sizeof body), 200);
  json_t *j = json_loads(body, 0, NULL);
  assert_non_null(j);
  return j;
}

size_t ctxt_contract_max_items(const char *message_type, const char *field) {
  ctxd__contracts_t *all = NULL;
  char err[256];
  assert_int_equal(ctxd__contracts_new(&all, err, sizeof err), 0);
  const ctxd__contract_t *k = ctxd__contracts_find(all, message_type);
  assert_non_null(k);
  json_t *fields = json_object_get(ctxd__contract_definition(k), "fields");
  json_int_t max = -1;
  for (size_t i = 0; i < json_array_size(fields); i++)
    if (strcmp(json_string_value(json_object_get(json_array_get(fields, i), "name")), field) == 0)
      max = json_integer_value(json_object_get(json_array_get(fields, i), "max_items"));
  ctxd__contracts_free(all);
  assert_true(max >= 0);
  return (size_t)max;
}

void ctxt_amqp_temporary_endpoint(amqp_connection_state_t c, const char *name) {
  amqp_exchange_declare(c, 1, amqp_cstring_bytes(name), amqp_cstring_bytes("fanout"), 0, 0, 1, 0,
                        amqp_empty_table);
  assert_int_equal(amqp_get_rpc_reply(c).reply_type, AMQP_RESPONSE_NORMAL);
  amqp_table_entry_t e = {.key = amqp_cstring_bytes("x-expires"),
                          .value = {.kind = AMQP_FIELD_KIND_I32, .value.i32 = 60000}};
  amqp_queue_declare(c, 1, amqp_cstring_bytes(name), 0, 0, 0, 1, (amqp_table_t){1, &e});
  assert_int_equal(amqp_get_rpc_reply(c).reply_type, AMQP_RESPONSE_NORMAL);
  amqp_queue_bind(c, 1, amqp_cstring_bytes(name), amqp_cstring_bytes(name), amqp_empty_bytes,
                  amqp_empty_table);
  assert_int_equal(amqp_get_rpc_reply(c).reply_type, AMQP_RESPONSE_NORMAL);
}
