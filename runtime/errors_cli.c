#include "errors_cli.h"

#include <stdlib.h>
#include <string.h>

#include <ctxd/errno.h>

#include "db.h"

ctxd__failfilter_t ctxd__errors_cli_filter(const ctxd__cli_t *cli) {
  return (ctxd__failfilter_t){.endpoint = cli->endpoint,
                              .message_type = cli->message_type,
                              .exception_type = cli->exception_type,
                              .message_id = cli->message_id,
                              .group = cli->group,
                              .status = cli->status,
                              .since = cli->since,
                              .until = cli->until,
                              .limit = cli->limit,
                              .offset = cli->offset};
}

static const char *str(const json_t *o, const char *key) {
  const char *v = json_string_value(json_object_get(o, key));
  return v != NULL ? v : "";
}

static long long num(const json_t *o, const char *key) { return json_integer_value(json_object_get(o, key)); }

/* The rows of a list or groups answer, one line each under a heading. */
static void print_rows(FILE *out, ctxd__cmd_t cmd, const json_t *answer) {
  int groups = cmd == CTXD__CMD_ERRORS_GROUPS;
  const json_t *rows = json_object_get(answer, groups ? "groups" : "messages");
  if (groups)
    fprintf(out, "%-16s %6s %8s  %-24s  %-20s  %-30s  %s\n", "GROUP", "COUNT", "REPEATED", "LAST FAILED",
            "ENDPOINT", "MESSAGE TYPE", "EXCEPTION");
  else
    fprintf(out, "%-8s %-15s %8s  %-24s  %-20s  %-30s  %-24s  %s\n", "ID", "STATUS", "FAILURES",
            "LAST FAILED", "ENDPOINT", "MESSAGE TYPE", "EXCEPTION", "MESSAGE");
  size_t i;
  const json_t *r;
  json_array_foreach(rows, i, r) {
    if (groups)
      fprintf(out, "%-16s %6lld %8lld  %-24s  %-20s  %-30s  %s\n", str(r, "group"), num(r, "count"),
              num(r, "repeated"), str(r, "last_failed_at"), str(r, "endpoint"), str(r, "message_type"),
              str(r, "exception_type"));
    else
      fprintf(out, "%-8lld %-15s %8lld  %-24s  %-20s  %-30s  %-24s  %s\n", num(r, "id"), str(r, "status"),
              num(r, "failures"), str(r, "last_failed_at"), str(r, "endpoint"), str(r, "message_type"),
              str(r, "exception_type"), str(r, "exception_message"));
  }
  if (groups)
    fprintf(out, "%zu of %lld groups (%lld failed messages)\n", json_array_size(rows),
            num(answer, "groups_total"), num(answer, "total"));
  else
    fprintf(out, "%zu of %lld\n", json_array_size(rows), num(answer, "total"));
}

/* One member of a shown message as an indented JSON block. */
static void print_json(FILE *out, const char *title, const json_t *v) {
  char *text = json_dumps(v, JSON_INDENT(2) | JSON_SORT_KEYS);
  fprintf(out, "%s:\n%s\n", title, text != NULL ? text : "?");
  free(text);
}

static void print_one(FILE *out, const json_t *m) {
  static const char *const fields[] = {"endpoint", "message_id",       "message_type",    "exception_type",
                                       "plugin",   "status",           "first_failed_at", "last_failed_at",
                                       "group",    "exception_message"};
  fprintf(out, "failed message %lld: %lld failure(s), %lld attempt(s), %lld operator retr%s\n", num(m, "id"),
          num(m, "failures"), num(m, "attempts"), num(m, "operator_retries"),
          num(m, "operator_retries") == 1 ? "y" : "ies");
  for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
    fprintf(out, "%-18s %s\n", fields[i], str(m, fields[i]));
  fprintf(out, "stack_trace:\n%s\n", str(m, "stack_trace"));
  print_json(out, "headers", json_object_get(m, "headers"));
  print_json(out, "properties", json_object_get(m, "properties"));
  if (json_object_get(m, "body") != NULL)
    fprintf(out, "body:\n%s\n", str(m, "body"));
  else
    fprintf(out, "body (not UTF-8 text, base64):\n%s\n", str(m, "body_base64"));
  fprintf(out, "actions:\n");
  size_t i;
  const json_t *a;
  json_array_foreach(json_object_get(m, "actions"), i, a)
      fprintf(out, "  %s  %-12s by %s%s%s\n", str(a, "at"), str(a, "action"), str(a, "actor"),
              *str(a, "detail") ? ": " : "", str(a, "detail"));
}

void ctxd__errors_cli_print(FILE *out, ctxd__cmd_t cmd, const json_t *answer) {
  switch (cmd) {
  case CTXD__CMD_ERRORS_LIST:
  case CTXD__CMD_ERRORS_GROUPS: print_rows(out, cmd, answer); break;
  case CTXD__CMD_ERRORS_SHOW: print_one(out, answer); break;
  default: {
    fprintf(out, "%s: %lld requested, %lld done", str(answer, "action"), num(answer, "requested"),
            num(answer, "done"));
    size_t i;
    const json_t *s;
    json_array_foreach(json_object_get(answer, "skipped"), i, s)
        fprintf(out, "%s%lld (%s)", i == 0 ? ", skipped " : ", ", num(s, "id"), str(s, "reason"));
    fprintf(out, "\n");
  }
  }
}

/* Who an action is recorded as done by: --by, else $USER@cli. */
static void actor_of(const ctxd__cli_t *cli, char *buf, size_t len) {
  const char *user = getenv("USER");
  if (cli->by != NULL)
    snprintf(buf, len, "%s", cli->by);
  else
    snprintf(buf, len, "%s@cli", user != NULL && *user ? user : "unknown");
}

static json_t *answer(PGconn *c, const ctxd__cli_t *cli, int *code, char *err, size_t errlen) {
  ctxd__failfilter_t f = ctxd__errors_cli_filter(cli);
  static const ctxd__failaction_t actions[] = {
      [CTXD__CMD_ERRORS_RETRY] = CTXD__FAIL_RETRY,
      [CTXD__CMD_ERRORS_ARCHIVE] = CTXD__FAIL_ARCHIVE,
      [CTXD__CMD_ERRORS_UNARCHIVE] = CTXD__FAIL_UNARCHIVE,
  };
  char actor[256];
  switch (cli->cmd) {
  case CTXD__CMD_ERRORS_LIST: return ctxd__failstore_list(c, &f, code, err, errlen);
  case CTXD__CMD_ERRORS_GROUPS: return ctxd__failstore_groups(c, &f, code, err, errlen);
  case CTXD__CMD_ERRORS_SHOW: return ctxd__failstore_show(c, cli->ids[0], code, err, errlen);
  default:
    actor_of(cli, actor, sizeof actor);
    return ctxd__failstore_act(c, actions[cli->cmd], cli->ids, cli->nids, &f, actor, code, err, errlen);
  }
}

int ctxd__errors_cli(const ctxd__config_t *cfg, const ctxd__cli_t *cli, FILE *out) {
  PGconn *c = NULL;
  char err[1024];
  if (ctxd__db_open(cfg, &c, err, sizeof err) != 0) {
    fprintf(stderr, "ctxd: %s\n", err);
    return CTXD__EXIT_FAILURE;
  }
  int code = 0;
  json_t *a = answer(c, cli, &code, err, sizeof err);
  PQfinish(c);
  if (a == NULL) {
    fprintf(stderr, "ctxd: %s\n", err);
    return code == CTXD_EINVAL ? CTXD__EXIT_USAGE : CTXD__EXIT_FAILURE;
  }
  if (cli->json) {
    json_dumpf(a, out, JSON_INDENT(2));
    fputc('\n', out);
  } else {
    ctxd__errors_cli_print(out, cli->cmd, a);
  }
  json_decref(a);
  return CTXD__EXIT_OK;
}
