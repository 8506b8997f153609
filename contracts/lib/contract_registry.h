/* The contract registry: every definition in contracts/, embedded by the build as compact
 * JSON text (contractc writes ctxd_contract_registry.c; library ctxd_contract_registry).
 * The host parses it once at start (runtime/contract.c, ctxd__contracts_new). */
#ifndef CTXD_CONTRACT_REGISTRY_H
#define CTXD_CONTRACT_REGISTRY_H

#include <stddef.h>

/* Static strings, sorted by message type; never freed. */
extern const char *const ctxd__contract_defs[];
extern const size_t ctxd__contract_defs_count;

#endif
