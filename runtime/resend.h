/* `ctxd outbox resend`: publishes archived outbox rows (ctxd.outbox_archive) again, the
 * seed's event archive kept "for re-sending when needed" (outbox.archive_retention_s
 * "keep" keeps it for good). */
#ifndef CTXD_RUNTIME_RESEND_H
#define CTXD_RUNTIME_RESEND_H

#include <stdio.h>

#include "cli.h"
#include "config.h"

/* Copies the archived rows cli selects back into ctxd.outbox, in their order, as they
 * were sent (message id, exchange, body, event flag, headers, correlation id): a running
 * host's relay sweep publishes them (so consumers' inboxes drop any copy they already
 * handled, by message id). The selection: the archive row ids cli->ids, else the filters
 * --message-id, --message-type, --since and --until (on when the row was dispatched; a
 * time without a zone is UTC), at most cli->limit rows (0: all); events only unless
 * cli->include_commands. Rows the broker refused and replies (a requester's, long gone)
 * are not taken. Prints how many rows it queued and how many commands it left out to
 * out; warns on stderr about queued rows older than cfg's inbox.retention_s (their
 * consumers may no longer drop them), and reports a failure there; returns the process
 * exit code. */
int ctxd__outbox_resend(const ctxd__config_t *cfg, const ctxd__cli_t *cli, FILE *out);

#endif
