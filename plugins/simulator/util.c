/* Ids, randomness and clocks for the simulator. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "sim.h"

static void random_bytes(unsigned char *b, size_t n) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = getrandom(b + got, n - got, 0);
    if (r < 0 && errno == EINTR) continue;
    /* ids are what consumers deduplicate on: a repeated one would drop real messages, so
     * stopping is better; getrandom cannot fail on Linux >= 3.17 once seeded */
    if (r < 0) abort();
    got += (size_t)r;
  }
}

static void uuid_format(const unsigned char b[16], char out[37]) {
  snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2],
           b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

void sim_uuid_new(char out[37]) {
  unsigned char b[16];
  random_bytes(b, sizeof b);
  b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
  b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
  uuid_format(b, out);
}

/* FNV-1a over "kind|name" from a seed, then splitmix64's finalizer to spread the bits. */
static uint64_t hash_seeded(uint64_t h, const char *name, const char *kind) {
  for (const char *p = kind; *p; p++) h = (h ^ (unsigned char)*p) * 0x100000001b3ULL;
  h = (h ^ '|') * 0x100000001b3ULL;
  for (const char *p = name; *p; p++) h = (h ^ (unsigned char)*p) * 0x100000001b3ULL;
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ULL;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebULL;
  return h ^ (h >> 31);
}

uint64_t sim_hash(const char *name, const char *kind) {
  return hash_seeded(0xcbf29ce484222325ULL, name, kind);
}

void sim_uuid_derive(const char *name, const char *kind, char out[37]) {
  uint64_t h[2] = {sim_hash(name, kind), hash_seeded(0x84222325cbf29ce4ULL, name, kind)};
  unsigned char b[16];
  for (int i = 0; i < 16; i++) b[i] = (unsigned char)(h[i / 8] >> (8 * (i % 8)));
  /* name-based like version 5, but not SHA-1: RFC 9562's version 8 (custom) says so */
  b[6] = (unsigned char)((b[6] & 0x0f) | 0x80);
  b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
  uuid_format(b, out);
}

int64_t sim_random(int64_t lo, int64_t hi) {
  if (hi <= lo) return lo;
  uint64_t r;
  random_bytes((unsigned char *)&r, sizeof r);
  /* the modulo bias is far below what a demo's delays could show */
  return lo + (int64_t)(r % (uint64_t)(hi - lo + 1));
}

int64_t sim_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void sim_iso_at(int64_t due_ms, char out[32]) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  int64_t wall = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + (due_ms - sim_now_ms());
  time_t t = (time_t)(wall / 1000);
  struct tm tm;
  gmtime_r(&t, &tm);
  size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(out + n, 32 - n, ".%03dZ", (int)(wall % 1000));
}

int64_t sim_version_floor(void) { return (int64_t)time(NULL) - 1704067200; }

int sim_id_copy(char out[37], const char *in) {
  if (in == NULL || strlen(in) != 36) return CTXD_EINVAL;
  memcpy(out, in, 37);
  return 0;
}

bool sim_uuid_valid(const char *s) {
  size_t i = 0;
  for (; s[i] != '\0' && i < 36; i++)
    if ((i == 8 || i == 13 || i == 18 || i == 23) ? s[i] != '-' : strchr("0123456789abcdef", s[i]) == NULL)
      return false;
  return i == 36 && s[i] == '\0';
}
