#include "hostinfo.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <ctxd/version.h>

static pthread_once_t once = PTHREAD_ONCE_INIT;
static char machine[256];
static char pid[24];
static char os[sizeof((struct utsname *)0)->sysname + sizeof((struct utsname *)0)->release];
static ctxd__host_info_t info;

static void init(void) {
  struct utsname u;
  if (gethostname(machine, sizeof machine) != 0) strcpy(machine, "unknown");
  machine[sizeof machine - 1] = '\0'; /* gethostname may not terminate */
  if (uname(&u) == 0)
    snprintf(os, sizeof os, "%s %s", u.sysname, u.release);
  else
    strcpy(os, "unknown");
  snprintf(pid, sizeof pid, "%ld", (long)getpid());
  /* MassTransit names the .NET runtime and its own version; ctxd has neither */
  info = (ctxd__host_info_t){machine, "ctxd", pid, "ctxd", CTXD_VERSION_STRING, "C11", "ctxd", os};
}

const ctxd__host_info_t *ctxd__host_info(void) {
  pthread_once(&once, init);
  return &info;
}

/* Built per call from the static strings, so nothing allocated outlives the caller. */
json_t *ctxd__host_info_json(void) {
  const ctxd__host_info_t *h = ctxd__host_info();
  return json_pack("{s:s, s:s, s:I, s:s, s:s, s:s, s:s, s:s}", "machineName", h->machine_name, "processName",
                   h->process_name, "processId", (json_int_t)strtoll(h->process_id, NULL, 10), "assembly",
                   h->assembly, "assemblyVersion", h->assembly_version, "frameworkVersion",
                   h->framework_version, "massTransitVersion", h->masstransit_version,
                   "operatingSystemVersion", h->os_version);
}
