/* ipx/mutex.h - robust mutexes placed in shared memory
 * (Boost: interprocess_mutex, interprocess_recursive_mutex).
 *
 * CONTRACT DRAFT: names and sizes are fixed; the implementation and the full
 * documentation come with the synchronization module.
 *
 * Naming of the waits, shared by every ipx lock: _lock blocks, _try_lock
 * never blocks (IPX_EBUSY), _lock_until takes an absolute CLOCK_MONOTONIC
 * deadline in ns, _lock_for a relative timeout in ns (IPX_ETIMEDOUT). */
#ifndef IPX_MUTEX_H
#define IPX_MUTEX_H

#include "common.h"

IPX_EXTERN_C_BEGIN

#define IPX_MUTEX_SIZE 64
#define IPX_RECURSIVE_MUTEX_SIZE 64

typedef struct ipx_mutex {
  union {
    unsigned char bytes_[IPX_MUTEX_SIZE];
    uint64_t align_;
  } u_;
} ipx_mutex_t;

typedef struct ipx_recursive_mutex {
  union {
    unsigned char bytes_[IPX_RECURSIVE_MUTEX_SIZE];
    uint64_t align_;
  } u_;
} ipx_recursive_mutex_t;

IPX_API int ipx_mutex_init(ipx_mutex_t *m);
IPX_API int ipx_mutex_destroy(ipx_mutex_t *m);
IPX_API int ipx_mutex_lock(ipx_mutex_t *m);
IPX_API int ipx_mutex_try_lock(ipx_mutex_t *m);
IPX_API int ipx_mutex_lock_until(ipx_mutex_t *m, uint64_t deadline_ns);
IPX_API int ipx_mutex_lock_for(ipx_mutex_t *m, uint64_t timeout_ns);
IPX_API int ipx_mutex_unlock(ipx_mutex_t *m);
IPX_API int ipx_mutex_consistent(ipx_mutex_t *m);

IPX_API int ipx_recursive_mutex_init(ipx_recursive_mutex_t *m);
IPX_API int ipx_recursive_mutex_destroy(ipx_recursive_mutex_t *m);
IPX_API int ipx_recursive_mutex_lock(ipx_recursive_mutex_t *m);
IPX_API int ipx_recursive_mutex_try_lock(ipx_recursive_mutex_t *m);
IPX_API int ipx_recursive_mutex_lock_until(ipx_recursive_mutex_t *m,
                                           uint64_t deadline_ns);
IPX_API int ipx_recursive_mutex_lock_for(ipx_recursive_mutex_t *m,
                                         uint64_t timeout_ns);
IPX_API int ipx_recursive_mutex_unlock(ipx_recursive_mutex_t *m);
IPX_API int ipx_recursive_mutex_consistent(ipx_recursive_mutex_t *m);

IPX_EXTERN_C_END

#endif /* IPX_MUTEX_H */
