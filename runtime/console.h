/* The operator console behind the admin endpoint: its page and the JSON API the page reads
 * (docs/operations.md, "Admin endpoint"). Loop thread. What needs the database (the
 * failed-message store, set-aside outbox rows) runs on libuv's thread pool through one
 * connection of the console's own, made when first needed and again after a failure, one
 * query at a time; the answer is deferred meanwhile, so the loop never waits on
 * PostgreSQL. Actions (POST) need admin.token, as a bearer token, and are refused
 * cross-site. */
#ifndef CTXD_RUNTIME_CONSOLE_H
#define CTXD_RUNTIME_CONSOLE_H

#include <uv.h>

#include "admin.h"
#include "config.h"
#include "status.h"

typedef struct ctxd__console_s ctxd__console_t;

/* A console answering on loop with cfg's database and token (both borrowed for its life).
 * New, free with ctxd__console_free; NULL when out of memory. */
ctxd__console_t *ctxd__console_new(uv_loop_t *loop, const ctxd__config_t *cfg);

/* Answers req when its path is the console's ("/", "/console.js", "/console.css", or under
 * "/api/"): the HTTP status, or CTXD__ADMIN_DEFERRED; CTXD_ENOENT when the path is not the
 * console's. s is the host's state now (borrowed for the call). */
int ctxd__console_handle(ctxd__console_t *k, const ctxd__status_t *s, ctxd__admin_req_t *req,
                         ctxd__admin_resp_t *resp);

/* The host stops: the queries waiting for their turn are answered 503 at once, the one
 * running is cancelled (its answer comes as it ends), and none starts any more. */
void ctxd__console_stop(ctxd__console_t *k);

/* Once the loop ended (no query of it still runs): closes its connection, frees k. */
void ctxd__console_free(ctxd__console_t *k);

#endif
