/* What MassTransit calls the host (HostInfo.cs): the envelope's "host" object and the
 * MT-Host-* headers of _error and _skipped copies say the same things. Computed once, read
 * by any thread. */
#ifndef CTXD_RUNTIME_HOSTINFO_H
#define CTXD_RUNTIME_HOSTINFO_H

#include <jansson.h>

typedef struct {
  const char *machine_name;
  const char *process_name;
  const char *process_id; /* decimal: a header holds it as text, as MassTransit's does */
  const char *assembly;
  const char *assembly_version;
  const char *framework_version;
  const char *masstransit_version;
  const char *os_version;
} ctxd__host_info_t;

/* This process's description; static, never freed. */
const ctxd__host_info_t *ctxd__host_info(void);

/* The envelope's "host" object (processId a number): a new reference. */
json_t *ctxd__host_info_json(void);

#endif
