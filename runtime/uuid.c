#include "uuid.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <ctxd/errno.h>

#include "contract_schema.h"

static void uuid_format(const unsigned char b[16], char out[37]) {
  static const char digits[] = "0123456789abcdef";
  size_t o = 0;
  for (size_t i = 0; i < 16; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out[o++] = '-';
    out[o++] = digits[b[i] >> 4];
    out[o++] = digits[b[i] & 0xf];
  }
  out[o] = '\0';
}

int ctxd__uuid_canonical(const char *in, char out[37]) {
  char id[37]; /* out stays as it was when in is not a UUID */
  if (in == NULL || ctxd__schema_uuid_parse(in, strlen(in), id) != 0) return CTXD_EINVAL;
  memcpy(out, id, sizeof id);
  return 0;
}

void ctxd__uuid_new(char out[37]) {
  unsigned char b[16];
  size_t got = 0;
  while (got < sizeof b) {
    ssize_t n = getrandom(b + got, sizeof b - got, 0);
    if (n < 0 && errno == EINTR) continue;
    /* Message ids are what consumers deduplicate on: a predictable or repeated id would
     * make them drop real messages, which is worse than stopping. getrandom() cannot
     * fail here on Linux >= 3.17 once the pool is seeded. */
    if (n < 0) abort();
    got += (size_t)n;
  }
  b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
  b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
  uuid_format(b, out);
}

/* splitmix64's finaliser: spreads FNV-1a's weak low bits over the whole word */
static uint64_t mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

void ctxd__uuid_derive(const char *name, char out[37]) {
  uint64_t h[2] = {1469598103934665603ULL, 0x6c62272e07bb0142ULL};
  for (int k = 0; k < 2; k++) {
    for (const char *p = name; *p; p++) h[k] = (h[k] ^ (unsigned char)*p) * 1099511628211ULL;
    h[k] = mix(h[k] + (uint64_t)k);
  }
  unsigned char b[16];
  for (int i = 0; i < 8; i++) {
    b[i] = (unsigned char)(h[0] >> (56 - 8 * i));
    b[8 + i] = (unsigned char)(h[1] >> (56 - 8 * i));
  }
  b[6] = (unsigned char)((b[6] & 0x0f) | 0x80); /* version 8: vendor-defined (RFC 9562) */
  b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
  uuid_format(b, out);
}
