/* UUIDs as MassTransit and PostgreSQL write them. */
#ifndef CTXD_RUNTIME_UUID_H
#define CTXD_RUNTIME_UUID_H

/* Parses a UUID in 8-4-4-4-12, 32-hex or {braced} form into canonical lowercase
 * 8-4-4-4-12 in out[37]. 0 or CTXD_EINVAL. */
int ctxd__uuid_canonical(const char *in, char out[37]);

/* Writes a new random (version 4) UUID into out[37]. */
void ctxd__uuid_new(char out[37]);

#endif
