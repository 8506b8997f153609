/* The console's files built into the binary (runtime/console/, embedded by
 * runtime/console/embed.cmake): each is served with its content type, is the file of the
 * source tree as it is now, and the page asks for nothing but those files (the admin
 * endpoint's Content-Security-Policy would block anything else: no other origin, no inline
 * script or style, no eval). */
#include "testsupport.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "console_assets.h"

static const struct {
  const char *path;
  const char *file;
  const char *content_type;
} files[] = {
    {"/", "index.html", "text/html; charset=utf-8"},
    {"/console.js", "console.js", "text/javascript; charset=utf-8"},
    {"/console.css", "console.css", "text/css; charset=utf-8"},
};

static char *source_of(const char *file) {
  char path[512];
  snprintf(path, sizeof path, "%s/runtime/console/%s", CTXD_TEST_SOURCE_DIR, file);
  return ctxt_read_file(path);
}

static void served_with_their_types_as_in_the_tree(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
    size_t len = 0;
    const char *type = NULL;
    const unsigned char *data = ctxd__console_asset(files[i].path, &len, &type);
    assert_non_null(data);
    assert_string_equal(type, files[i].content_type);
    char *want = source_of(files[i].file);
    /* the build embedded the current file: an edited asset is embedded again */
    assert_int_equal(len, strlen(want));
    assert_memory_equal(data, want, len);
    free(want);
  }
}

static void nothing_else_is_served(void **state) {
  (void)state;
  const char *absent[] = {"",  "/index.html", "console.js", "/console.js/", "/../console.js", "/embed.cmake",
                          "/x"};
  for (size_t i = 0; i < sizeof absent / sizeof absent[0]; i++) {
    size_t len = 7;
    const char *type = "unchanged";
    assert_null(ctxd__console_asset(absent[i], &len, &type));
  }
}

/* The value of the attribute starting at p (just after `name=`), into out. */
static void attribute_value(const char *p, char *out, size_t outlen) {
  char quote = *p == '"' || *p == '\'' ? *p++ : ' ';
  size_t n = 0;
  while (*p && *p != quote && *p != '>' && n + 1 < outlen) out[n++] = *p++;
  out[n] = '\0';
}

/* Every src= and href= of the page names a file the host serves (or a fragment, or the
 * empty data: icon that keeps the browser from asking for /favicon.ico). */
static void the_page_asks_only_for_its_own_files(void **state) {
  (void)state;
  char *html = source_of("index.html");
  int references = 0;
  for (const char *p = html; *p; p++) {
    size_t skip = 0;
    if (strncmp(p, " src=", 5) == 0) skip = 5;
    if (strncmp(p, " href=", 6) == 0) skip = 6;
    if (!skip) continue;
    char value[256];
    attribute_value(p + skip, value, sizeof value);
    if (value[0] == '#' || strcmp(value, "data:,") == 0) continue;
    size_t len;
    const char *type;
    if (ctxd__console_asset(value, &len, &type) == NULL)
      fail_msg("index.html refers to %s, which is not served", value);
    references++;
  }
  assert_int_equal(references, 2); /* the script and the style sheet */
  free(html);
}

/* What the Content-Security-Policy (script-src 'self', style-src 'self') would refuse. */
static void nothing_inline_nothing_from_elsewhere(void **state) {
  (void)state;
  char *html = source_of("index.html");
  for (const char *p = strstr(html, "<script"); p; p = strstr(p + 1, "<script")) {
    const char *end = strchr(p, '>');
    assert_non_null(end);
    if (!memmem(p, (size_t)(end - p), " src=", 5)) fail_msg("index.html has an inline script");
  }
  assert_null(strstr(html, "<style"));
  assert_null(strstr(html, " style="));
  for (const char *p = html; *p; p++) {
    /* an event handler attribute: " on<letters>=" inside a tag */
    if (isspace((unsigned char)p[0]) && p[1] == 'o' && p[2] == 'n' && isalpha((unsigned char)p[3])) {
      const char *q = p + 3;
      while (isalpha((unsigned char)*q)) q++;
      if (*q == '=') fail_msg("index.html has an inline event handler near: %.40s", p);
    }
  }
  free(html);

  char *js = source_of("console.js");
  const char *refused[] = {"eval(",          "new Function",         "innerHTML", "outerHTML",
                           "document.write", "setAttribute('style'", "import("};
  for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
    if (strstr(js, refused[i])) fail_msg("console.js uses %s", refused[i]);
  }
  /* the only absolute URL is the SVG namespace, which is a name, never fetched */
  const char *svg_ns = "http://www.w3.org/2000/svg";
  for (const char *p = strstr(js, "://"); p; p = strstr(p + 3, "://")) {
    if (p - js < 4 || strncmp(p - 4, svg_ns, strlen(svg_ns)) != 0)
      fail_msg("console.js names a URL near: %.40s", p - 5);
  }
  free(js);

  char *css = source_of("console.css");
  assert_null(strstr(css, "@import"));
  assert_null(strstr(css, "://"));
  for (const char *p = strstr(css, "url("); p; p = strstr(p + 1, "url(")) {
    if (strncmp(p, "url(data:", 9) != 0) fail_msg("console.css loads %.40s", p);
  }
  free(css);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(served_with_their_types_as_in_the_tree),
      cmocka_unit_test(nothing_else_is_served),
      cmocka_unit_test(the_page_asks_only_for_its_own_files),
      cmocka_unit_test(nothing_inline_nothing_from_elsewhere),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
