/* The intake: how many bytes of delivery bodies the host holds, and whether it may read
 * more from the broker. A body is counted from its receipt until it is released: when its
 * delivery is freed, or as soon as its copy to a side queue is published (only the tag
 * waits for the confirm, and confirms are read from the socket that a full intake stops
 * reading). Pure bookkeeping: the host stops and restarts reading. Loop thread only. */
#ifndef CTXD_RUNTIME_INTAKE_H
#define CTXD_RUNTIME_INTAKE_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
  uint64_t max_message;  /* limits.max_message_bytes: larger bodies are oversized */
  uint64_t max_inflight; /* limits.max_inflight_bytes */
  uint64_t held;         /* bytes of bodies held */
  size_t oversized;      /* bodies held that are larger than max_message */
  int paused;            /* reading is stopped */
  uint64_t pauses;       /* how often reading stopped */
} ctxd__intake_t;

/* What the host does about reading (ctxd__intake_pace). */
typedef enum {
  CTXD__INTAKE_KEEP = 0, /* nothing changes */
  CTXD__INTAKE_PAUSE,    /* stop reading from the broker */
  CTXD__INTAKE_RESUME    /* read again, frames already buffered first */
} ctxd__intake_step_t;

void ctxd__intake_init(ctxd__intake_t *in, uint64_t max_message, uint64_t max_inflight);

/* A body of `bytes` was received / released. */
void ctxd__intake_hold(ctxd__intake_t *in, size_t bytes);
void ctxd__intake_release(ctxd__intake_t *in, size_t bytes);

/* 1 while no more may be read: max_inflight bytes or more are held, or an oversized body
 * is (so the host never holds two of them). */
int ctxd__intake_full(const ctxd__intake_t *in);

/* Compares the paused state with ctxd__intake_full and returns what the host must do;
 * counts the pauses. */
ctxd__intake_step_t ctxd__intake_pace(ctxd__intake_t *in);

#endif
