/* Private to the Case domain files: bounded string copy shared by domain.c and
 * domain_distribution.c. */
#ifndef CTXD_CASE_DOMAIN_TEXT_H
#define CTXD_CASE_DOMAIN_TEXT_H

#include <stddef.h>

/* Copies src (NULL reads as "") into dst[cap]. Returns 0, or CTXD_ETOOBIG with dst
 * untouched when src does not fit with its NUL. */
int case_text_copy(char *dst, size_t cap, const char *src);

#endif
