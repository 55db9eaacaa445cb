/* ipx/named.h - named synchronization objects (Boost: named_sharable_mutex,
 * named_upgradable_mutex).
 *
 * A named object is an ipx shared memory object (see ipx/shm.h: user name
 * `n` is /dev/shm/ipx.n) holding a 64-byte header (magic, version, kind,
 * ready mark) followed by the lock itself; any process may open it by name.
 * Because the lock inside is an ipx robust lock, a holder that dies never
 * hangs the others (Boost's named_mutex on Linux is a POSIX semaphore: a
 * dead holder hangs everyone).
 *
 * Kinds available now: sharable mutex and upgradable mutex.  (Named mutex,
 * recursive mutex, condition and semaphore come with the synchronization
 * module; kind numbers 1..4 are reserved for them.)
 *
 * Creation is race-free and crash-safe: whoever creates or opens the object
 * holds an open-file-description write lock on it while it checks the
 * header and, if needed, initialises the object and marks it ready last.
 * An opener of an object being created waits for that lock; the kernel
 * drops it if the creator dies, and the opener then finds an object never
 * marked ready: IPX_OPEN_ONLY reports IPX_ENOTFOUND, IPX_CREATE_ONLY and
 * IPX_OPEN_OR_CREATE initialise it afresh (as the creator would have).
 * An existing shared memory object whose first 16 bytes are all zero is
 * taken for such a half-created object.
 *
 * Handles are process-local.  A handle may be used by several threads at
 * once (the lock calls are thread-safe); close needs exclusive use.  After
 * fork() the child may use an inherited handle (the mapping is shared).
 * Do not close the last handle of a process while one of its threads holds
 * the lock: the kernel writes into the mapping when a holder dies. */
#ifndef IPX_NAMED_H
#define IPX_NAMED_H

#include "common.h"
#include "rwlock.h"

IPX_EXTERN_C_BEGIN

typedef struct ipx_named ipx_named_t;

typedef enum ipx_named_kind {
  IPX_NAMED_SHARABLE_MUTEX = 5,
  IPX_NAMED_UPGRADABLE_MUTEX = 6
} ipx_named_kind_t;

/* Open the named sharable (upgradable) mutex `name` with `mode`; a created
 * object gets exactly the permissions `perm` (0 = IPX_DEFAULT_PERM, 0600).
 * Errors: IPX_EINVAL (NULL out, bad mode, perm beyond 0777), IPX_EBADNAME,
 * IPX_EEXIST (create only, a ready object exists), IPX_ENOTFOUND (open
 * only: no object, or one whose creator died before finishing),
 * IPX_EWRONGKIND (the name holds another kind of named object, or a shared
 * memory object that is not a named object), IPX_EVERSION (another format
 * version), IPX_ECORRUPT (header inconsistent), -EACCES, -EMFILE, -ENOSPC...
 * Thread-safe. */
IPX_API int ipx_named_sharable_mutex_open(ipx_named_t **out, const char *name,
                                          ipx_open_mode_t mode, unsigned perm);
IPX_API int ipx_named_upgradable_mutex_open(ipx_named_t **out,
                                            const char *name,
                                            ipx_open_mode_t mode,
                                            unsigned perm);

/* The lock inside, for the ipx_sharable_mutex_* / ipx_upgradable_mutex_*
 * calls; NULL if `n` is NULL or of another kind.  Thread-safe. */
IPX_API ipx_sharable_mutex_t *ipx_named_sharable_mutex(const ipx_named_t *n);
IPX_API ipx_upgradable_mutex_t *ipx_named_upgradable_mutex(
    const ipx_named_t *n);

/* The kind of an open handle (0 for NULL).  1 if this open created (or
 * re-initialised a half-created) object, else 0. */
IPX_API ipx_named_kind_t ipx_named_kind(const ipx_named_t *n);
IPX_API int ipx_named_created(const ipx_named_t *n);

/* Unmap and close the handle; the object stays.  NULL is a no-op. */
IPX_API int ipx_named_close(ipx_named_t *n);

/* Remove the name (as ipx_shm_remove); processes that have it open keep
 * using the object.  Errors: IPX_EINVAL, IPX_EBADNAME, IPX_ENOTFOUND,
 * -EACCES. */
IPX_API int ipx_named_remove(const char *name);

IPX_EXTERN_C_END

#endif /* IPX_NAMED_H */
