/* UUIDs as MassTransit and PostgreSQL write them. */
#ifndef CTXD_RUNTIME_UUID_H
#define CTXD_RUNTIME_UUID_H

/* Parses a UUID in 8-4-4-4-12, 32-hex or {braced} form into canonical lowercase
 * 8-4-4-4-12 in out[37]. 0 or CTXD_EINVAL. */
int ctxd__uuid_canonical(const char *in, char out[37]);

/* Writes a new random (version 4) UUID into out[37]. */
void ctxd__uuid_new(char out[37]);

/* Writes a UUID derived from name into out[37] (version 8, a 128-bit hash of name): the
 * same name always gives the same id, so a message written again after a rerun keeps
 * its id and consumers' inboxes drop the copy. */
void ctxd__uuid_derive(const char *name, char out[37]);

#endif
