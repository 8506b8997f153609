/* libFuzzer: the configuration loader, on arbitrary file contents. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* the loader reads a file: give it one, in memory-backed /dev/shm when there is one */
  char path[64];
  snprintf(path, sizeof path, "/dev/shm/ctxd-fuzz-config-%d", (int)getpid());
  FILE *f = fopen(path, "wb");
  if (f == NULL) return 0;
  fwrite(data, 1, size, f);
  fclose(f);
  ctxd__config_t *cfg = NULL;
  char err[1024];
  if (ctxd__config_load(path, &cfg, err, sizeof err) == 0) ctxd__config_free(cfg);
  unlink(path);
  return 0;
}
