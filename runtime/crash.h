/* The breadcrumb a crash leaves. On SIGSEGV, SIGBUS, SIGABRT and SIGFPE the host writes
 * one JSON log line naming what the crashing thread was handling (the plugin, endpoint,
 * message id and type of its watch), then dies as it would have without it: the action
 * installed before (the default's core dump, or a sanitizer's report) takes over. The
 * signal handler does only async-signal-safe things. */
#ifndef CTXD_RUNTIME_CRASH_H
#define CTXD_RUNTIME_CRASH_H

#include "watch.h"

/* Installs the handlers, and an alternate signal stack for the calling thread (a stack
 * overflow must still be reported). 0, or CTXD_EIO. Once per process, before threads. */
int ctxd__crash_install(void);

/* The calling thread reports w's call when it crashes (w borrowed until the leave); gives
 * it an alternate signal stack if it has none. Worker threads, at their start. */
void ctxd__crash_thread_enter(const ctxd__watch_t *w);

/* Undoes the enter, before the thread ends. */
void ctxd__crash_thread_leave(void);

#endif
