/* Text as the contracts carry it (UTF-8), for the plugins' pure code and their glue alike:
 * no I/O, no globals. */
#ifndef CTXD_PLUGIN_TEXT_H
#define CTXD_PLUGIN_TEXT_H

#include <stddef.h>

/* The length of the valid UTF-8 sequence at s (1 to 4 bytes), or 0 at the NUL or when s
 * starts no valid sequence (an overlong form, a surrogate, past U+10FFFF, cut short). */
size_t plugin_utf8_len(const char *s);

/* Copies at most cap - 1 bytes of s (NULL: "") into out, NUL-terminated, cut on a character
 * boundary, every byte that is not part of valid UTF-8 written as '?': a longer text cut to
 * a field's size without splitting a character, or a peer's text made fit for JSON. */
void plugin_text_excerpt(const char *s, char *out, size_t cap);

#endif
