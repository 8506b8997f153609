/* ctxd error codes. Every ctxd function that can fail returns 0 or one of these
 * (negative) codes; ctxd_strerror() and ctxd_err_name() describe them. Header-only so a
 * plugin gets them without any host symbol. Codes are part of the ABI: never renumbered,
 * only appended. */
#ifndef CTXD_ERRNO_H
#define CTXD_ERRNO_H

#define CTXD_ERRNO_MAP(XX)                                                                                   \
  XX(EINVAL, -1, "invalid argument")                                                                         \
  XX(ENOMEM, -2, "out of memory")                                                                            \
  XX(ENOENT, -3, "no such file or entry")                                                                    \
  XX(EEXIST, -4, "already exists")                                                                           \
  XX(ECONFIG, -5, "configuration error")                                                                     \
  XX(EABI, -6, "plugin ABI mismatch")                                                                        \
  XX(EPLUGIN, -7, "plugin failed")                                                                           \
  XX(EBROKER, -8, "message broker error")                                                                    \
  XX(EDB, -9, "database error")                                                                              \
  XX(EDECODE, -10, "message cannot be decoded")                                                              \
  XX(ETIMEDOUT, -11, "timed out")                                                                            \
  XX(ECLOSED, -12, "connection closed")                                                                      \
  XX(ESTATE, -13, "not allowed in the current state")                                                        \
  XX(ERANGE, -14, "value out of range")                                                                      \
  XX(EIO, -15, "i/o error")                                                                                  \
  XX(ECONFLICT, -16, "concurrency conflict")                                                                 \
  XX(EMIGRATION, -17, "migration error")                                                                     \
  XX(EVALIDATION, -18, "message fails its contract")                                                         \
  XX(ETOOBIG, -19, "too large")

typedef enum {
#define CTXD__ERR_ENUM(name, code, text) CTXD_##name = (code),
  CTXD_ERRNO_MAP(CTXD__ERR_ENUM)
#undef CTXD__ERR_ENUM
} ctxd_errno_t;

/* Returns a static string describing err ("unknown error" for codes this header does not
 * know); never NULL, never freed. */
static inline const char *ctxd_strerror(int err) {
  switch (err) {
#define CTXD__ERR_TEXT(name, code, text)                                                                     \
  case code: return text;
    CTXD_ERRNO_MAP(CTXD__ERR_TEXT)
#undef CTXD__ERR_TEXT
  case 0: return "success";
  default: return "unknown error";
  }
}

/* Returns the static name of err, e.g. "CTXD_EINVAL"; never NULL, never freed. */
static inline const char *ctxd_err_name(int err) {
  switch (err) {
#define CTXD__ERR_NAME(name, code, text)                                                                     \
  case code: return "CTXD_" #name;
    CTXD_ERRNO_MAP(CTXD__ERR_NAME)
#undef CTXD__ERR_NAME
  case 0: return "0";
  default: return "CTXD_EUNKNOWN";
  }
}

#endif
