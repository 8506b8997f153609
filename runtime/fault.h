/* Fault injection for the crash tests: CTXD_FAULT=<point> kills the process with SIGKILL
 * when it reaches that point. Points: "after-commit" (a batch that ran a handler
 * committed, nothing acknowledged or published yet), "after-publish" (an outbox row sent, not confirmed). */
#ifndef CTXD_RUNTIME_FAULT_H
#define CTXD_RUNTIME_FAULT_H

void ctxd__fault_point(const char *name);

#endif
