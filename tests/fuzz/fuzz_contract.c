/* libFuzzer: contract validation and upcasting of arbitrary JSON against MaterialType. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <jansson.h>

#include "contract.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static ctxd__contracts_t *contracts;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char err[512];
  if (contracts == NULL && ctxd__contracts_new(&contracts, err, sizeof err) != 0) abort();
  json_error_t e;
  json_t *m = json_loadb((const char *)data, size, JSON_DECODE_ANY, &e);
  if (m == NULL) return 0;
  static const char *const types[] = {"Dodo.DataCatalog.Contracts.Products.v1:MaterialType",
                                      "Ctxd.Inventory.Contracts.v1:AddMeasurement",
                                      "Ctxd.Compensation.Contracts.v1:ApplyCompensation"};
  for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
    ctxd__contract_validate(ctxd__contracts_find(contracts, types[i]), m, err, sizeof err);
  json_t *up = NULL;
  if (ctxd__contracts_upcast(contracts, types[0], "Dodo.DataCatalog.Contracts.Products.v2:MaterialType", m,
                             &up, err, sizeof err) == 0)
    json_decref(up);
  json_decref(m);
  return 0;
}
