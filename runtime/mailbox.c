#include "mailbox.h"

#include <ctxd/errno.h>

/* Takes the whole queue under the lock, so a producer never waits for the loop's work. */
static ctxd__mail_t *take_all(ctxd__mailbox_t *mb) {
  pthread_mutex_lock(&mb->mu);
  ctxd__mail_t *m = mb->head;
  mb->head = mb->tail = NULL;
  pthread_mutex_unlock(&mb->mu);
  return m;
}

static void deliver(ctxd__mailbox_t *mb, ctxd__mail_t *m, int status) {
  while (m != NULL) {
    ctxd__mail_t *next = m->next;
    m->next = NULL;
    m->done(mb->arg, m, status);
    m = next;
  }
}

static void on_async(uv_async_t *a) {
  ctxd__mailbox_t *mb = a->data;
  deliver(mb, take_all(mb), 0);
}

int ctxd__mailbox_init(ctxd__mailbox_t *mb, uv_loop_t *loop, void *arg) {
  mb->head = mb->tail = NULL;
  mb->closed = 0;
  mb->arg = arg;
  pthread_mutex_init(&mb->mu, NULL);
  int rc = uv_async_init(loop, &mb->async, on_async);
  if (rc != 0) {
    pthread_mutex_destroy(&mb->mu);
    return rc;
  }
  mb->async.data = mb;
  return 0;
}

void ctxd__mailbox_post(ctxd__mailbox_t *mb, ctxd__mail_t *m) {
  m->next = NULL;
  pthread_mutex_lock(&mb->mu);
  if (mb->tail != NULL)
    mb->tail->next = m;
  else
    mb->head = m;
  mb->tail = m;
  /* under the lock: close() must not free the handle between the check and the send */
  if (!mb->closed) uv_async_send(&mb->async);
  pthread_mutex_unlock(&mb->mu);
}

void ctxd__mailbox_close(ctxd__mailbox_t *mb) {
  pthread_mutex_lock(&mb->mu);
  mb->closed = 1;
  pthread_mutex_unlock(&mb->mu);
  if (!uv_is_closing((uv_handle_t *)&mb->async)) uv_close((uv_handle_t *)&mb->async, NULL);
}

void ctxd__mailbox_drain(ctxd__mailbox_t *mb) {
  deliver(mb, take_all(mb), CTXD_ECLOSED);
  pthread_mutex_destroy(&mb->mu);
}
