/* ipx/error.h - the error model.
 *
 * Every ipx function that can fail returns int: 0 on success, a negative
 * code on failure.  Two kinds of negative codes exist:
 *
 *  - system errors, reported as -errno exactly as the kernel gave them
 *    (-ENOSPC, -EACCES, -EMFILE, ...);
 *  - ipx's own codes, IPX_E*, in the reserved range [IPX_ERRNO_LAST,
 *    IPX_ERRNO_BASE), far below any errno value.  These are ipx's verdicts:
 *    a bad argument, a name that exists, a corrupt segment, a timeout...
 *
 * IPX_EOWNERDEAD is a success with a warning: the lock *is* held, the
 * previous owner died holding it, and the protected data may need repair.
 *
 * ipx_strerror() describes any code, ipx's or the system's.  No ipx function
 * prints, aborts or exits on bad input. */
#ifndef IPX_ERROR_H
#define IPX_ERROR_H

#include "common.h"

IPX_EXTERN_C_BEGIN

#define IPX_ERRNO_BASE (-4000)

/* X-macro so names, values and messages cannot drift apart. */
#define IPX_ERRNO_MAP(X)                                                        \
  X(EINVAL, -4001, "invalid argument")                                         \
  X(EBADNAME, -4002, "invalid object name")                                    \
  X(EEXIST, -4003, "object already exists")                                    \
  X(ENOTFOUND, -4004, "object not found")                                      \
  X(EVERSION, -4005, "incompatible format version or layout")                  \
  X(ECORRUPT, -4006, "object is corrupt or not an ipx object")                 \
  X(ETIMEDOUT, -4007, "timed out")                                             \
  X(EOWNERDEAD, -4008, "lock acquired; its previous owner died holding it")    \
  X(ENOTRECOVERABLE, -4009, "lock state is not recoverable")                   \
  X(ETOOBIG, -4010, "size too big")                                            \
  X(EBUSY, -4011, "resource busy")                                             \
  X(ENOMEM, -4012, "not enough memory in the segment")                         \
  X(ENOTOWNER, -4013, "calling thread does not hold the lock")                 \
  X(EREADONLY, -4014, "object was opened read-only")                           \
  X(EWRONGKIND, -4015, "name holds another kind of object")                    \
  X(EEMPTY, -4016, "object is empty")                                          \
  X(EDEADLK, -4017, "calling thread already holds the lock")                   \
  X(ERANGE, -4018, "offset or handle out of range")                            \
  X(ENOTSUP, -4019, "operation not supported")                                 \
  X(EOVERFLOW, -4020, "counter would overflow")                                \
  X(EFULL, -4021, "no room left")                                              \
  X(ENOENTRY, -4022, "nothing to receive")                                     \
  X(ECLOSED, -4023, "peer closed")                                             \
  X(EBADF, -4024, "handle is not open or has the wrong state")

enum ipx_errno {
#define IPX__ERRNO_ENUM(name, value, msg) IPX_##name = (value),
  IPX_ERRNO_MAP(IPX__ERRNO_ENUM)
#undef IPX__ERRNO_ENUM
  IPX_ERRNO_LAST = -4100
};

/* A static description of err: ipx codes, -errno values, and 0 ("success").
 * Never NULL.  Thread-safe. */
IPX_API const char *ipx_strerror(int err);

/* The symbolic name of err ("IPX_ECORRUPT", "ENOSPC", "0"), or "unknown".
 * Never NULL.  Thread-safe. */
IPX_API const char *ipx_err_name(int err);

IPX_EXTERN_C_END

#endif /* IPX_ERROR_H */
