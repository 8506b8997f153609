/* A process's /proc entries, for the tests and the benchmarks alike (no test framework). */
#ifndef CTXT_PROCFS_H
#define CTXT_PROCFS_H

#include <sys/types.h>

/* The number after key ("VmRSS:", "Threads:") in /proc/<pid>/status (kB for sizes), -1
 * when absent. */
long ctxt_proc_status_kb(pid_t pid, const char *key);
/* The open files of pid (entries of /proc/<pid>/fd), -1 when it cannot be read. */
long ctxt_proc_fds(pid_t pid);

#endif
