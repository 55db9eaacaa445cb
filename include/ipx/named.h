/* ipx/named.h - named synchronization objects (Boost: named_mutex,
 * named_recursive_mutex, named_condition, named_semaphore,
 * named_sharable_mutex, named_upgradable_mutex).
 *
 * A named object is an ipx shared memory object (see ipx/shm.h: user name
 * `n` is /dev/shm/ipx.n) holding a 64-byte header (magic, version, kind,
 * ready mark) followed by the lock itself; any process may open it by name.
 * Because the lock inside is an ipx robust lock, a holder that dies never
 * hangs the others (Boost's named_mutex on Linux is a POSIX semaphore: a
 * dead holder hangs everyone).
 *
 * Each kind has an open call and an accessor that hands out the object
 * inside for the anonymous calls (ipx/mutex.h, condition.h, semaphore.h,
 * rwlock.h), so a named object is locked, waited on and repaired exactly
 * like one placed in shared memory by hand:
 *
 *   ipx_named_t *nm, *nc;
 *   ipx_named_mutex_open(&nm, "jobs.lock", IPX_OPEN_OR_CREATE, 0600);
 *   ipx_named_condition_open(&nc, "jobs.cond", IPX_OPEN_OR_CREATE, 0600);
 *   int r = ipx_mutex_lock(ipx_named_mutex(nm));
 *   if (r == IPX_EOWNERDEAD) { repair(); ipx_mutex_consistent(...); }
 *   while (!ready) ipx_condition_wait(ipx_named_condition(nc),
 *                                     ipx_named_mutex(nm));
 *
 * A named condition works with any ipx_mutex_t, a named mutex included.
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
#include "condition.h"
#include "mutex.h"
#include "rwlock.h"
#include "semaphore.h"

IPX_EXTERN_C_BEGIN

typedef struct ipx_named ipx_named_t;

/* The kind numbers are stored in the object's header (docs/FORMAT.md). */
typedef enum ipx_named_kind {
  IPX_NAMED_MUTEX = 1,
  IPX_NAMED_RECURSIVE_MUTEX = 2,
  IPX_NAMED_CONDITION = 3,
  IPX_NAMED_SEMAPHORE = 4,
  IPX_NAMED_SHARABLE_MUTEX = 5,
  IPX_NAMED_UPGRADABLE_MUTEX = 6
} ipx_named_kind_t;

/* Open the named object `name` of the call's kind with `mode`; a created
 * object gets exactly the permissions `perm` (0 = IPX_DEFAULT_PERM, 0600).
 * On failure *out is NULL.
 * Errors: IPX_EINVAL (NULL out, bad mode, perm beyond 0777; for the
 * semaphore `initial` above IPX_SEMAPHORE_VALUE_MAX), IPX_EBADNAME,
 * IPX_EEXIST (create only, a ready object exists), IPX_ENOTFOUND (open
 * only: no object, or one whose creator died before finishing),
 * IPX_EWRONGKIND (the name holds another kind of named object, or a shared
 * memory object that is not a named object), IPX_EVERSION (another format
 * version), IPX_ECORRUPT (header inconsistent), -EACCES, -EMFILE, -ENOSPC...
 * Thread-safe. */
IPX_API int ipx_named_mutex_open(ipx_named_t **out, const char *name,
                                 ipx_open_mode_t mode, unsigned perm);
IPX_API int ipx_named_recursive_mutex_open(ipx_named_t **out,
                                           const char *name,
                                           ipx_open_mode_t mode,
                                           unsigned perm);
IPX_API int ipx_named_condition_open(ipx_named_t **out, const char *name,
                                     ipx_open_mode_t mode, unsigned perm);
/* `initial` is the semaphore's value when this call creates it (as
 * ipx_semaphore_init); an existing semaphore keeps its value.  It is
 * validated in every mode. */
IPX_API int ipx_named_semaphore_open(ipx_named_t **out, const char *name,
                                     ipx_open_mode_t mode, unsigned perm,
                                     unsigned initial);
IPX_API int ipx_named_sharable_mutex_open(ipx_named_t **out, const char *name,
                                          ipx_open_mode_t mode, unsigned perm);
IPX_API int ipx_named_upgradable_mutex_open(ipx_named_t **out,
                                            const char *name,
                                            ipx_open_mode_t mode,
                                            unsigned perm);

/* The object inside, for the ipx_mutex_*, ipx_recursive_mutex_*,
 * ipx_condition_*, ipx_semaphore_*, ipx_sharable_mutex_* and
 * ipx_upgradable_mutex_* calls; NULL if `n` is NULL or of another kind.
 * Valid until ipx_named_close(n).  Thread-safe. */
IPX_API ipx_mutex_t *ipx_named_mutex(const ipx_named_t *n);
IPX_API ipx_recursive_mutex_t *ipx_named_recursive_mutex(
    const ipx_named_t *n);
IPX_API ipx_condition_t *ipx_named_condition(const ipx_named_t *n);
IPX_API ipx_semaphore_t *ipx_named_semaphore(const ipx_named_t *n);
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
