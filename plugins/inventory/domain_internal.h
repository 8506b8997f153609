/* Inventory domain: helpers shared by domain.c and domain_json.c, so that commands, decoded
 * events and decoded snapshots pass the very same checks. Not part of the plugin's API. */
#ifndef CTXD_INVENTORY_DOMAIN_INTERNAL_H
#define CTXD_INVENTORY_DOMAIN_INTERNAL_H

#include "domain.h"

/* True for 1..63 printable ASCII characters without spaces, NUL-terminated in the array. */
bool inventory_id_valid(const char id[INVENTORY_ID_SIZE]);

bool inventory_uom_valid(int unit);

/* Shape checks of payloads (ids, versions, units, values); no state involved. */
bool inventory_start_valid(const inventory_start_t *p);
bool inventory_measurement_valid(const inventory_measurement_t *m);
bool inventory_finish_valid(const inventory_finish_t *p);

/* Known kind, valid inventory id, version >= 1 (exactly 1 for InventoryStarted), valid
 * payload. */
bool inventory_event_valid(const inventory_event_t *ev);

/* Inserts m at its sorted place. CTXD_EEXIST when its id is there already, CTXD_ENOMEM;
 * s is unchanged on failure. */
int inventory_state_insert(inventory_state_t *s, const inventory_measurement_t *m);

#endif
