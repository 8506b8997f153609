#include "intake.h"

void ctxd__intake_init(ctxd__intake_t *in, uint64_t max_message, uint64_t max_inflight) {
  *in = (ctxd__intake_t){.max_message = max_message, .max_inflight = max_inflight};
}

void ctxd__intake_hold(ctxd__intake_t *in, size_t bytes) {
  in->held += bytes;
  in->oversized += bytes > in->max_message;
}

void ctxd__intake_release(ctxd__intake_t *in, size_t bytes) {
  in->held -= bytes;
  in->oversized -= bytes > in->max_message;
}

int ctxd__intake_full(const ctxd__intake_t *in) { return in->held >= in->max_inflight || in->oversized > 0; }

ctxd__intake_step_t ctxd__intake_pace(ctxd__intake_t *in) {
  int full = ctxd__intake_full(in);
  if (full == in->paused) return CTXD__INTAKE_KEEP;
  in->paused = full;
  in->pauses += (uint64_t)full;
  return full ? CTXD__INTAKE_PAUSE : CTXD__INTAKE_RESUME;
}
