/* ipx/file_lock.h - advisory whole-file locks (Boost: file_lock).
 *
 * A file lock is taken on an existing file through an open-file-description
 * (OFD) lock.  The lock belongs to the handle, not to the process:
 *  - two handles of one file in one process exclude each other exactly as
 *    two processes do (Boost's per-process fcntl locks do not: a second
 *    handle in the same process "gets" a lock the first already holds);
 *  - closing another descriptor of the same file does not drop the lock
 *    (with per-process locks, any close() of the file drops every lock);
 *  - the kernel drops the lock when its holder dies: nothing to repair.
 *
 * Threads: a handle is one lock owner.  Threads that must exclude each other
 * each open their own handle.  One handle must not be used by two threads at
 * once (its calls are not thread-safe on the same handle); distinct handles
 * are fully independent.
 *
 * Timed forms: the kernel has no timed OFD lock.  _until/_for poll with a
 * non-blocking attempt and an exponential backoff sleep from 50 us up to a
 * cap of 2 ms (never past the deadline), so a timed locker takes a released
 * lock at most about 2 ms later, and a blocked waiter in _lock (which
 * sleeps in the kernel) may take it first.  See docs/file_lock.md.
 *
 * fork(): the child inherits the descriptor, and so the same open file
 * description and the same lock: parent and child then hold it together.
 * Either one's unlock releases it for both.  The lock is dropped by the
 * kernel only when every descriptor of the description is closed (the
 * descriptor is O_CLOEXEC, so exec closes the child's copy).  A child
 * calling ipx_file_lock_close() on an inherited handle closes its descriptor
 * without unlocking (see ipx_file_lock_close). */
#ifndef IPX_FILE_LOCK_H
#define IPX_FILE_LOCK_H

#include "common.h"

IPX_EXTERN_C_BEGIN

typedef struct ipx_file_lock ipx_file_lock_t;

/* Open a lock handle on the existing file `path` (nothing is locked yet).
 * The file is opened read-write when permitted, else read-only (then only
 * sharable locking works; exclusive locking returns IPX_EREADONLY).
 * Errors: IPX_EINVAL (NULL out or path, empty path), IPX_ENOTFOUND (no such
 * file), -EACCES, -EISDIR, -EMFILE, -ENOMEM...  Thread-safe. */
IPX_API int ipx_file_lock_open(ipx_file_lock_t **out, const char *path);

/* Close the handle.  In the process that opened it, a lock still held is
 * released first; in a forked child the inherited descriptor is closed
 * without unlocking, so the child's clean-up never drops the parent's lock.
 * NULL is a no-op returning 0. */
IPX_API int ipx_file_lock_close(ipx_file_lock_t *fl);

/* Exclusive lock of the whole file.  _lock blocks in the kernel;
 * _try_lock returns IPX_EBUSY at once if another handle holds a lock;
 * _lock_until (absolute CLOCK_MONOTONIC ns) and _lock_for (relative ns)
 * return IPX_ETIMEDOUT when the time passes.  Errors: IPX_EINVAL (NULL),
 * IPX_EDEADLK (this handle already holds a lock), IPX_EREADONLY (the file
 * could only be opened read-only), -errno from the kernel (-ENOLCK...). */
IPX_API int ipx_file_lock_lock(ipx_file_lock_t *fl);
IPX_API int ipx_file_lock_try_lock(ipx_file_lock_t *fl);
IPX_API int ipx_file_lock_lock_until(ipx_file_lock_t *fl, uint64_t deadline_ns);
IPX_API int ipx_file_lock_lock_for(ipx_file_lock_t *fl, uint64_t timeout_ns);
/* Release an exclusive lock.  IPX_ENOTOWNER if this handle does not hold
 * one (including when it holds a sharable lock), IPX_EINVAL (NULL). */
IPX_API int ipx_file_lock_unlock(ipx_file_lock_t *fl);

/* Sharable lock of the whole file: any number of handles may hold it at
 * once, excluding exclusive holders.  Same forms and errors as above (no
 * IPX_EREADONLY). */
IPX_API int ipx_file_lock_lock_sharable(ipx_file_lock_t *fl);
IPX_API int ipx_file_lock_try_lock_sharable(ipx_file_lock_t *fl);
IPX_API int ipx_file_lock_lock_sharable_until(ipx_file_lock_t *fl,
                                              uint64_t deadline_ns);
IPX_API int ipx_file_lock_lock_sharable_for(ipx_file_lock_t *fl,
                                            uint64_t timeout_ns);
/* Release a sharable lock.  IPX_ENOTOWNER if this handle does not hold
 * one, IPX_EINVAL (NULL). */
IPX_API int ipx_file_lock_unlock_sharable(ipx_file_lock_t *fl);

IPX_EXTERN_C_END

#endif /* IPX_FILE_LOCK_H */
