/* The delay line of one direction of a ctxd_link connection (tests/stack/link.c): bytes read
 * from one side are held until their arrival time plus the delay in force then, and leave
 * in the order they came, whatever the delay did meanwhile. The bytes held, queued or being
 * written, are counted against a high and a low mark: the reader stops at the high one and
 * reads again at the low one, so a slow link holds a bounded amount. No I/O here: times are
 * the caller's milliseconds. */
#ifndef CTXD_LINKQ_H
#define CTXD_LINKQ_H

#include <stddef.h>
#include <stdint.h>

typedef struct ctxd_linkq_chunk_s {
  struct ctxd_linkq_chunk_s *next;
  uint64_t due_ms; /* arrival + the delay in force at arrival */
  size_t len;
  char data[];
} ctxd_linkq_chunk_t;

typedef struct {
  ctxd_linkq_chunk_t *head, *tail; /* queued, oldest first */
  size_t held;                     /* bytes queued or taken and not yet done */
  size_t high, low;
} ctxd_linkq_t;

void ctxd_linkq_init(ctxd_linkq_t *q, size_t high, size_t low);
/* Frees every chunk still queued (not those taken). */
void ctxd_linkq_free(ctxd_linkq_t *q);

/* Queues a copy of len bytes that arrived at now_ms, due delay_ms later. 0 or -ENOMEM. */
int ctxd_linkq_push(ctxd_linkq_t *q, const void *data, size_t len, uint64_t now_ms, uint64_t delay_ms);

/* Takes the oldest chunk when it is due at now_ms, else NULL (also when an older chunk is
 * not due yet: the order is kept). Its bytes stay held until ctxd_linkq_done(q, chunk),
 * which frees it. */
ctxd_linkq_chunk_t *ctxd_linkq_take(ctxd_linkq_t *q, uint64_t now_ms);
void ctxd_linkq_done(ctxd_linkq_t *q, ctxd_linkq_chunk_t *c);

/* Milliseconds until the oldest chunk is due (0: now), -1 when none is queued. */
int64_t ctxd_linkq_wait_ms(const ctxd_linkq_t *q, uint64_t now_ms);

/* 1 when the reader must stop (held reached the high mark), and when it may read again
 * (held down to the low mark). */
int ctxd_linkq_full(const ctxd_linkq_t *q);
int ctxd_linkq_roomy(const ctxd_linkq_t *q);

/* Parses a delay file's text: a whole number of milliseconds, 0 to 600000, blanks around
 * it allowed. 0 with *ms set, or -EINVAL. */
int ctxd_linkq_parse_delay(const char *text, uint64_t *ms);

#endif
