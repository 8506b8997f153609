/* UTF-8 for the plugins: see text.h. */
#include "text.h"

#include <stdint.h>
#include <string.h>

size_t plugin_utf8_len(const char *str) {
  const unsigned char *s = (const unsigned char *)str;
  size_t n;
  uint32_t cp;
  if (s[0] < 0x80) return s[0] != 0;
  if (s[0] >= 0xc2 && s[0] <= 0xdf)
    n = 2, cp = s[0] & 0x1f;
  else if (s[0] >= 0xe0 && s[0] <= 0xef)
    n = 3, cp = s[0] & 0x0f;
  else if (s[0] >= 0xf0 && s[0] <= 0xf4)
    n = 4, cp = s[0] & 0x07;
  else
    return 0;
  for (size_t i = 1; i < n; i++) {
    if ((s[i] & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (s[i] & 0x3f);
  }
  /* no overlong forms, no surrogates, nothing past U+10FFFF */
  if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) || (cp >= 0xd800 && cp <= 0xdfff))
    return 0;
  return n;
}

void plugin_text_excerpt(const char *s, char *out, size_t cap) {
  if (cap == 0) return;
  size_t o = 0;
  for (const char *p = s != NULL ? s : ""; *p;) {
    size_t n = plugin_utf8_len(p);
    const char *from = n > 0 ? p : "?";
    size_t take = n > 0 ? n : 1;
    if (o + take > cap - 1) break;
    memcpy(out + o, from, take);
    o += take;
    p += take;
  }
  out[o] = '\0';
}
