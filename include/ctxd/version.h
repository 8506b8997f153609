/* Version of the ctxd host and of its plugin ABI. */
#ifndef CTXD_VERSION_H
#define CTXD_VERSION_H

#define CTXD_VERSION_MAJOR 0
#define CTXD_VERSION_MINOR 1
#define CTXD_VERSION_PATCH 0
#define CTXD_VERSION_STRING "0.1.0"

#endif
