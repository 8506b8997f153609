/* One external call as one POST: see call.h. */
#include "call.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <ctxd/errno.h>

#include "contract_schema.h"
#include "text.h"

ctxd_call_result_t plugin_http_verdict(int http_rc, int status) {
  if (http_rc == CTXD_EINVAL) return CTXD_CALL_FAILED;
  if (http_rc != 0) return CTXD_CALL_RETRY;
  if (status >= 200 && status < 300) return CTXD_CALL_DONE;
  if (status >= 400 && status < 500 && status != 408 && status != 409 && status != 425 && status != 429)
    return CTXD_CALL_FAILED;
  return CTXD_CALL_RETRY;
}

int plugin_http_call_settings_check(const plugin_http_call_settings_t *s, char *err, size_t cap) {
  if (s->call_timeout_ms >= 1 && s->call_timeout_ms <= 600000 && s->max_attempts >= 1 &&
      s->max_attempts <= 100000 && s->backoff_ms >= 1 && s->backoff_ms <= 3600000)
    return 0;
  snprintf(err, cap,
           "call_timeout_ms must be 1 to 600000, max_attempts 1 to 100000, backoff_ms 1 to 3600000");
  return CTXD_ECONFIG;
}

int plugin_http_executor_register(const ctxd_api_t *api, ctxd_plugin_t *plugin, const char *kind,
                                  ctxd_call_cb fn, void *data, const char *outcome_endpoint,
                                  const plugin_http_call_settings_t *s) {
  ctxd_executor_t e = {.size = sizeof e,
                       .kind = kind,
                       .fn = fn,
                       .data = data,
                       .outcome_endpoint = outcome_endpoint,
                       .max_attempts = (uint32_t)s->max_attempts,
                       .backoff_ms = (uint32_t)s->backoff_ms,
                       .timeout_ms = (uint32_t)s->call_timeout_ms};
  return api->executor_register(plugin, &e);
}

/* The answer's id (its first named member that is a string and that id_ok takes, as long
 * as id_ok allows), borrowed from j; NULL when none. Names match ignoring case, as the
 * contracts' do. */
static const char *answer_id(const json_t *j, const plugin_http_answers_t *a) {
  const char *found = NULL;
  for (size_t i = 0; found == NULL && a->id_names[i] != NULL; i++)
    found = json_string_value(ctxd__schema_get_ci(j, a->id_names[i]));
  return found != NULL && a->id_ok(found) ? found : NULL;
}

ctxd_call_result_t plugin_http_call(const ctxd_api_t *api, ctxd_plugin_t *plugin, const ctxd_call_t *call,
                                    const plugin_http_target_t *t, int timeout_ms,
                                    const plugin_http_answers_t *a) {
  const char *key = api->call_field(call, CTXD_CALL_KEY);
  const char *payload = api->call_field(call, CTXD_CALL_PAYLOAD);
  const char *headers[] = {"Idempotency-Key", key, NULL};
  plugin_http_response_t res;
  int rc = plugin_http_post(t, headers, payload, payload != NULL ? strlen(payload) : 0, timeout_ms, &res);
  ctxd_call_result_t result = plugin_http_verdict(rc, res.status);
  json_t *answer = rc == 0 ? json_loads(res.body, 0, NULL) : NULL;
  json_t *o = json_object();
  char said[201], why[320];
  if (rc != 0) { /* timed out, dropped, refused: it may have arrived; the next attempt has the same key */
    snprintf(why, sizeof why, "%s", res.error);
  } else {
    json_object_set_new(o, "httpStatus", json_integer(res.status));
    const char *error = json_string_value(ctxd__schema_get_ci(answer, "error"));
    plugin_text_excerpt(error != NULL ? error : res.body, said, sizeof said);
    snprintf(why, sizeof why, "%s answered HTTP %d%s%s", a->peer, res.status, said[0] ? ": " : "", said);
  }
  if (result == CTXD_CALL_DONE) {
    const char *found = answer_id(answer, a);
    if (found != NULL) json_object_set_new(o, a->outcome_id, json_string(found));
  } else {
    json_object_set_new(o, "error", json_string(why));
    api->log(plugin, NULL, result == CTXD_CALL_RETRY ? CTXD_LOG_WARN : CTXD_LOG_ERROR,
             "call %s, attempt %s: %s", key, api->call_field(call, CTXD_CALL_ATTEMPT), why);
  }
  char *text = json_dumps(o, JSON_COMPACT);
  if (text != NULL) api->call_outcome(call, text);
  free(text);
  json_decref(o);
  json_decref(answer);
  plugin_http_response_free(&res);
  return result;
}
