/* AMQP field tables (message headers) and JSON, both ways. Pure. */
#ifndef CTXD_RUNTIME_AMQPTABLE_H
#define CTXD_RUNTIME_AMQPTABLE_H

#include <stdint.h>

#include <amqp.h>
#include <jansson.h>

/* Fill one entry of a table being built: key and a UTF-8 string, or an integer of 32 or 64
 * bits. Key and text are borrowed: they must outlive the table. */
void ctxd__amqptable_set_text(amqp_table_entry_t *e, const char *key, const char *value);
void ctxd__amqptable_set_i32(amqp_table_entry_t *e, const char *key, int32_t value);
void ctxd__amqptable_set_i64(amqp_table_entry_t *e, const char *key, int64_t value);

/* The integer value of key (ASCII case ignored) in t: 1 with *out when the entry is an
 * integer of any width or a string of decimal digits, 0 when there is no such entry. */
int ctxd__amqptable_get_int(const amqp_table_t *t, const char *key, int64_t *out);

/* Converts an AMQP field table to a JSON object: strings (UTF-8 and byte strings that are
 * valid UTF-8; others are skipped) -> string, integers and timestamps -> integer (a uint64
 * above INT64_MAX -> real), floats and decimals -> real, bool, void -> null, tables ->
 * object, arrays -> array. Entries whose key is not UTF-8 are skipped. t may be NULL (empty
 * object). Returns a new reference (json_decref), NULL only when memory runs out. */
json_t *ctxd__amqp_table_to_json(const amqp_table_t *t);

/* Converts a JSON object to an AMQP field table allocated from pool (freed with the pool):
 * string -> UTF-8 string, integer -> int64, real -> double, bool, object -> table,
 * array -> array; null and keys longer than 255 bytes are skipped. 0, CTXD_EINVAL (obj not
 * an object) or CTXD_ENOMEM. */
int ctxd__json_to_amqp_table(const json_t *obj, amqp_pool_t *pool, amqp_table_t *out);

#endif
