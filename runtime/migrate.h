/* Versioned, checksummed schema migrations, for the runtime's own schema and each
 * plugin's. Applied by `ctxd migrate`, and at start unless database.migrate is "check",
 * under an advisory lock, so hosts starting together apply each migration once. */
#ifndef CTXD_RUNTIME_MIGRATE_H
#define CTXD_RUNTIME_MIGRATE_H

#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include <ctxd/ctxd.h>

/* The runtime's own migrations (schema ctxd). */
extern const ctxd_migration_t ctxd__runtime_migrations[];

/* Applies the migrations of `scope` ("ctxd" or a plugin's name) that the database lacks,
 * or with apply 0 only checks that none is lacking: then nothing is created, so a role with
 * only DML rights may run it. Refuses (CTXD_EMIGRATION, reason in err) when versions are not
 * 1, 2, 3, ..., when an applied migration's text changed, or when the database holds a
 * version the list does not (a newer build ran). Returns 0, CTXD_ENOENT when apply is 0 and
 * migrations are lacking (err: "'scope' lacks v6 (name), v7 (name)"), or CTXD_EMIGRATION /
 * CTXD_EDB. Creating the schema or a table needs CREATE: nothing is created when nothing
 * is lacking. */
int ctxd__migrate(PGconn *c, const char *scope, const ctxd_migration_t *list, int apply, char *err,
                  size_t errlen);

/* 64-bit FNV-1a of s, as 16 hex digits in out[17]. */
void ctxd__migration_checksum(const char *s, char out[17]);

#endif
