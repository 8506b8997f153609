/* Unit tests for runtime/log.c: every line is one JSON object that jansson parses, however
 * long its fields and whatever bytes they hold; a cut value carries the truncation mark. */
#include "testsupport.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "log.h"

#define BIG (100 * 1024)

/* stderr, redirected to a file while a test logs */
typedef struct {
  char path[64];
  int fd, saved;
} capture_t;

static void capture_begin(capture_t *c) {
  snprintf(c->path, sizeof c->path, "/tmp/ctxd-test-log-XXXXXX");
  c->fd = mkstemp(c->path);
  assert_true(c->fd >= 0);
  c->saved = dup(STDERR_FILENO);
  assert_true(c->saved >= 0);
  assert_true(dup2(c->fd, STDERR_FILENO) >= 0);
}

/* Restores stderr; returns the one line logged, parsed (free with json_decref). */
static json_t *capture_line(capture_t *c) {
  dup2(c->saved, STDERR_FILENO);
  close(c->saved);
  close(c->fd);
  char *text = ctxt_read_file(c->path);
  unlink(c->path);
  size_t len = strlen(text);
  assert_true(len > 0);
  assert_int_equal(text[len - 1], '\n');
  assert_null(memchr(text, '\n', len - 1)); /* one line */
  assert_true(len <= 16384);
  json_error_t e;
  json_t *line = json_loads(text, 0, &e);
  if (line == NULL) fail_msg("not JSON (%s at %d): %.200s", e.text, e.position, text);
  assert_true(json_is_object(line));
  free(text);
  return line;
}

static char *filled(size_t n, char c) {
  char *s = malloc(n + 1);
  assert_non_null(s);
  memset(s, c, n);
  s[n] = '\0';
  return s;
}

static const char *field(json_t *line, const char *key) {
  const char *v = json_string_value(json_object_get(line, key));
  assert_non_null(v);
  return v;
}

/* Asserts v is `keep` bytes of `c` followed by the mark for `cut` bytes. */
static void assert_cut(const char *v, char c, size_t keep, size_t cut) {
  for (size_t i = 0; i < keep; i++)
    if (v[i] != c) fail_msg("byte %zu is %d", i, v[i]);
  char mark[64];
  snprintf(mark, sizeof mark, "...[truncated %zu bytes]", cut);
  assert_string_equal(v + keep, mark);
}

static void long_fields_are_cut_and_marked(void **state) {
  (void)state;
  char *big = filled(BIG, 'a'), *text = filled(BIG, 'b');
  capture_t c;
  capture_begin(&c);
  ctxd__logf(CTXD__LOG_ERROR, "host", &(ctxd__log_fields_t){.correlation_id = big, .message_id = "m-1"}, "%s",
             text);
  json_t *line = capture_line(&c);
  assert_cut(field(line, "correlation_id"), 'a', CTXD__LOG_FIELD_MAX, BIG - CTXD__LOG_FIELD_MAX);
  assert_cut(field(line, "msg"), 'b', CTXD__LOG_MSG_MAX, BIG - CTXD__LOG_MSG_MAX);
  assert_string_equal(field(line, "message_id"), "m-1");
  assert_string_equal(field(line, "level"), "error");
  assert_true(json_is_true(json_object_get(line, "truncated")));
  json_decref(line);
  free(big);
  free(text);
}

static void short_lines_are_not_marked(void **state) {
  (void)state;
  capture_t c;
  capture_begin(&c);
  ctxd__logf(CTXD__LOG_ERROR, "inventory", &(ctxd__log_fields_t){.endpoint = "e"}, "handled %d", 3);
  json_t *line = capture_line(&c);
  assert_string_equal(field(line, "src"), "inventory");
  assert_string_equal(field(line, "endpoint"), "e");
  assert_string_equal(field(line, "msg"), "handled 3");
  assert_null(json_object_get(line, "truncated"));
  json_decref(line);
}

static void invalid_utf8_and_control_characters(void **state) {
  (void)state;
  /* a stray byte, an overlong '/', a surrogate, a lone continuation, a cut sequence */
  static const char bad[] = "a\xff b\xc0\xaf c\xed\xa0\x80 d\x80 e\xe2\x82";
  static const char replaced[] =
      "a\xef\xbf\xbd b\xef\xbf\xbd\xef\xbf\xbd c\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
      " d\xef\xbf\xbd e\xef\xbf\xbd\xef\xbf\xbd";
  static const char controls[] = "\"q\" \\ \x01\x1b\t\r\n\x7f\x1f end";
  static const char valid[] = "z\xc5\xbc\xc3\xb3\xc5\x82w \xe2\x82\xac \xf0\x9d\x84\x9e";
  capture_t c;
  capture_begin(&c);
  ctxd__logf(CTXD__LOG_WARN, "host",
             &(ctxd__log_fields_t){.message_id = bad, .endpoint = controls, .traceparent = valid}, "%s|%s",
             bad, controls);
  json_t *line = capture_line(&c);
  assert_string_equal(field(line, "message_id"), replaced);
  assert_string_equal(field(line, "endpoint"), controls);
  assert_string_equal(field(line, "traceparent"), valid);
  char msg[256];
  snprintf(msg, sizeof msg, "%s|%s", replaced, controls);
  assert_string_equal(field(line, "msg"), msg);
  assert_null(json_object_get(line, "truncated"));
  json_decref(line);
}

/* The cut falls between characters, never inside one, and counts escaped bytes. */
static void cut_on_a_character_boundary(void **state) {
  (void)state;
  enum { EUROS = 2000 };
  char *euros = malloc(3 * EUROS + 1);
  assert_non_null(euros);
  for (int i = 0; i < EUROS; i++) memcpy(euros + 3 * i, "\xe2\x82\xac", 3);
  euros[3 * EUROS] = '\0';
  /* the message buffer ends inside the euro sign */
  char *msg = filled(CTXD__LOG_MSG_MAX - 1, 'x');
  capture_t c;
  capture_begin(&c);
  ctxd__logf(CTXD__LOG_INFO, "host", &(ctxd__log_fields_t){.endpoint = euros}, "%s\xe2\x82\xac", msg);
  json_t *line = capture_line(&c);
  const char *ep = field(line, "endpoint");
  size_t keep = CTXD__LOG_FIELD_MAX / 3 * 3; /* 341 whole euro signs */
  assert_memory_equal(ep, euros, keep);
  char mark[64];
  snprintf(mark, sizeof mark, "...[truncated %d bytes]", 3 * EUROS - (int)keep);
  assert_string_equal(ep + keep, mark);
  assert_cut(field(line, "msg"), 'x', CTXD__LOG_MSG_MAX - 1, 3);
  json_decref(line);
  free(euros);
  free(msg);
}

/* Every field at its worst at once: the line still fits and parses. */
static void every_field_at_its_longest(void **state) {
  (void)state;
  char *quotes = filled(BIG, '"'), *controls = filled(BIG, '\x01'), *invalid = filled(BIG, '\xff');
  capture_t c;
  capture_begin(&c);
  ctxd__logf(
      CTXD__LOG_ERROR, quotes,
      &(ctxd__log_fields_t){
          .endpoint = controls, .message_id = invalid, .correlation_id = quotes, .traceparent = controls},
      "%s", invalid);
  json_t *line = capture_line(&c);
  const char *keys[] = {"src", "endpoint", "message_id", "correlation_id", "traceparent", "msg"};
  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
    assert_non_null(strstr(field(line, keys[i]), " bytes]"));
  assert_true(json_is_true(json_object_get(line, "truncated")));
  json_decref(line);
  free(quotes);
  free(controls);
  free(invalid);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(long_fields_are_cut_and_marked),      cmocka_unit_test(short_lines_are_not_marked),
      cmocka_unit_test(invalid_utf8_and_control_characters), cmocka_unit_test(cut_on_a_character_boundary),
      cmocka_unit_test(every_field_at_its_longest),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
