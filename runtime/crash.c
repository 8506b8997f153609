#include "crash.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <ctxd/errno.h>

/* Room for the handler's own frames; SIGSTKSZ is not a constant in newer C libraries. */
#define ALT_STACK_BYTES (64 * 1024)

static const int signals[] = {SIGSEGV, SIGBUS, SIGABRT, SIGFPE};
static struct sigaction previous[sizeof signals / sizeof signals[0]];

static __thread const ctxd__watch_t *current;
static __thread void *own_stack; /* the alternate stack this thread was given, to free */

/* ---- an async-signal-safe line ----------------------------------------------------- */

typedef struct {
  char *p;
  size_t len, cap;
} out_t;

static void put(out_t *o, const char *s, size_t n) {
  if (n > o->cap - o->len) n = o->cap - o->len;
  memcpy(o->p + o->len, s, n);
  o->len += n;
}

static void put_str(out_t *o, const char *s) { put(o, s, strlen(s)); }

static void put_uint(out_t *o, unsigned long v, int width) {
  char d[24];
  int n = 0;
  do {
    d[sizeof d - 1 - n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v > 0 || n < width);
  put(o, d + sizeof d - n, (size_t)n);
}

/* At most 200 bytes of s inside a JSON string: control characters and quotes escaped. */
static void put_escaped(out_t *o, const char *s) {
  for (size_t i = 0; s != NULL && s[i] != '\0' && i < 200; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\') {
      put(o, "\\", 1);
      put(o, s + i, 1);
    } else if (c < 0x20) {
      put(o, "?", 1);
    } else {
      put(o, s + i, 1);
    }
  }
}

static void put_json(out_t *o, const char *s) {
  put(o, "\"", 1);
  put_escaped(o, s);
  put(o, "\"", 1);
}

static void put_field(out_t *o, const char *key, const char *value) {
  put(o, ",\"", 2);
  put_str(o, key);
  put(o, "\":", 2);
  put_json(o, value);
}

/* The log's time format from a clock reading, without gmtime_r (not async-signal-safe):
 * days to a civil date as in Howard Hinnant's algorithm. */
static void put_time(out_t *o) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  long days = (long)(ts.tv_sec / 86400), secs = (long)(ts.tv_sec % 86400);
  long z = days + 719468, era = z / 146097, doe = z - era * 146097;
  long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  long doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
  long day = doy - (153 * mp + 2) / 5 + 1, month = mp < 10 ? mp + 3 : mp - 9;
  long year = yoe + era * 400 + (month <= 2);
  put_uint(o, (unsigned long)year, 4);
  put(o, "-", 1);
  put_uint(o, (unsigned long)month, 2);
  put(o, "-", 1);
  put_uint(o, (unsigned long)day, 2);
  put(o, "T", 1);
  put_uint(o, (unsigned long)(secs / 3600), 2);
  put(o, ":", 1);
  put_uint(o, (unsigned long)(secs / 60 % 60), 2);
  put(o, ":", 1);
  put_uint(o, (unsigned long)(secs % 60), 2);
  put(o, ".", 1);
  put_uint(o, (unsigned long)(ts.tv_nsec / 1000000), 3);
  put(o, "Z", 1);
}

static const char *signal_name(int sig) {
  switch (sig) {
  case SIGSEGV: return "SIGSEGV";
  case SIGBUS: return "SIGBUS";
  case SIGABRT: return "SIGABRT";
  default: return "SIGFPE";
  }
}

static void on_crash(int sig, siginfo_t *si, void *uc) {
  (void)uc;
  char buf[2048];
  out_t o = {buf, 0, sizeof buf - 2};
  const ctxd__watch_t *w = current;
  int handling = w != NULL && w->started_us != 0;
  put_str(&o, "{\"time\":\"");
  put_time(&o);
  put_str(&o, "\",\"level\":\"error\"");
  put_field(&o, "src", handling ? w->plugin : "host");
  if (handling) {
    put_field(&o, "endpoint", w->endpoint);
    put_field(&o, "message_id", w->message_id);
    put_field(&o, "message_type", w->message_type);
  }
  put_field(&o, "signal", signal_name(sig));
  /* sent by another process (kill, a supervisor's watchdog): any thread may receive it,
   * so what that thread ran is no culprit */
  int sent = si != NULL && si->si_code <= 0 && si->si_pid != getpid();
  put_str(&o, sent ? ",\"msg\":\"stopped by " : ",\"msg\":\"crashed with ");
  put_str(&o, signal_name(sig));
  if (sent) {
    put_str(&o, " sent by process ");
    put_uint(&o, (unsigned long)si->si_pid, 1);
  }
  if (handling) {
    put_str(&o, sent ? " while a handler of plugin " : " in a handler of plugin ");
    put_escaped(&o, w->plugin);
    put_str(&o, " on endpoint ");
    put_escaped(&o, w->endpoint);
    put_str(&o, sent ? " ran message " : ", handling message ");
    put_escaped(&o, w->message_id);
    put_str(&o, "\"}\n");
  } else {
    put_str(&o, w != NULL ? " on a worker thread, outside a handler\"}\n" : " outside a handler\"}\n");
  }
  ssize_t ignored = write(STDERR_FILENO, buf, o.len);
  (void)ignored;
  for (size_t i = 0; i < sizeof signals / sizeof signals[0]; i++)
    if (signals[i] == sig) sigaction(sig, &previous[i], NULL);
  /* a fault happens again when the handler returns, now met by the action from before; a
   * signal that was sent (abort, kill) has to be raised again */
  if (sig == SIGABRT || si == NULL || si->si_code <= 0) raise(sig);
}

/* ---- installing ---------------------------------------------------------------------- */

/* Gives the calling thread an alternate signal stack unless it has one (a sanitizer's
 * runtime, say, sets its own and frees it itself). */
static void alt_stack(void) {
  stack_t now;
  if (sigaltstack(NULL, &now) != 0 || !(now.ss_flags & SS_DISABLE)) return;
  stack_t ss = {.ss_sp = malloc(ALT_STACK_BYTES), .ss_size = ALT_STACK_BYTES, .ss_flags = 0};
  if (ss.ss_sp == NULL) return;
  if (sigaltstack(&ss, NULL) != 0) {
    free(ss.ss_sp);
    return;
  }
  own_stack = ss.ss_sp;
}

int ctxd__crash_install(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_crash;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  for (size_t i = 0; i < sizeof signals / sizeof signals[0]; i++)
    if (sigaction(signals[i], &sa, &previous[i]) != 0) return CTXD_EIO;
  alt_stack();
  return 0;
}

void ctxd__crash_thread_enter(const ctxd__watch_t *w) {
  current = w;
  alt_stack();
}

void ctxd__crash_thread_leave(void) {
  current = NULL;
  if (own_stack == NULL) return;
  stack_t off = {.ss_flags = SS_DISABLE};
  sigaltstack(&off, NULL);
  free(own_stack);
  own_stack = NULL;
}
