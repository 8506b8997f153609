/* The host function table plugins receive in init (ctxd_api_t). */
#ifndef CTXD_RUNTIME_API_H
#define CTXD_RUNTIME_API_H

#include <ctxd/ctxd.h>

extern const ctxd_api_t ctxd__api;

#endif
