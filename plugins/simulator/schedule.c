/* The schedule: a binary min-heap of jobs on (due time, insertion order). */
#include <stdlib.h>

#include "sim.h"

static int earlier(const sim_job_t *a, const sim_job_t *b) {
  return a->due_ms != b->due_ms ? a->due_ms < b->due_ms : a->seq < b->seq;
}

static void swap(sim_schedule_t *s, size_t i, size_t j) {
  sim_job_t *t = s->items[i];
  s->items[i] = s->items[j];
  s->items[j] = t;
}

static void sift_up(sim_schedule_t *s, size_t i) {
  for (; i > 0 && earlier(s->items[i], s->items[(i - 1) / 2]); i = (i - 1) / 2) swap(s, i, (i - 1) / 2);
}

static void sift_down(sim_schedule_t *s, size_t i) {
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    if (l < s->n && earlier(s->items[l], s->items[m])) m = l;
    if (r < s->n && earlier(s->items[r], s->items[m])) m = r;
    if (m == i) return;
    swap(s, i, m);
    i = m;
  }
}

void sim_job_free(sim_job_t *job) {
  if (job == NULL) return;
  free(job->body);
  free(job);
}

int sim_schedule_push(sim_schedule_t *s, sim_job_t *job) {
  if (s->n == s->cap) {
    size_t cap = s->cap ? s->cap * 2 : 64;
    sim_job_t **grown = realloc(s->items, cap * sizeof *grown);
    if (grown == NULL) {
      sim_job_free(job);
      return CTXD_ENOMEM;
    }
    s->items = grown;
    s->cap = cap;
  }
  if (job->seq == 0) job->seq = ++s->seq;
  s->items[s->n++] = job;
  sift_up(s, s->n - 1);
  return 0;
}

sim_job_t *sim_schedule_peek(const sim_schedule_t *s) { return s->n ? s->items[0] : NULL; }

sim_job_t *sim_schedule_pop(sim_schedule_t *s) {
  if (s->n == 0) return NULL;
  sim_job_t *top = s->items[0];
  s->items[0] = s->items[--s->n];
  sift_down(s, 0);
  return top;
}

void sim_schedule_drop_answers(sim_schedule_t *s) {
  size_t kept = 0;
  for (size_t i = 0; i < s->n; i++) {
    if (s->items[i]->delivery != 0)
      sim_job_free(s->items[i]);
    else
      s->items[kept++] = s->items[i];
  }
  s->n = kept;
  for (size_t i = s->n / 2; i-- > 0;) sift_down(s, i);
}

void sim_schedule_clear(sim_schedule_t *s) {
  for (size_t i = 0; i < s->n; i++) sim_job_free(s->items[i]);
  free(s->items);
  s->items = NULL;
  s->n = s->cap = 0;
}
