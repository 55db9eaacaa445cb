/* ipx/shm.h - named shared memory objects (Boost: shared_memory_object).
 *
 * A shared memory object is a named, resizable piece of memory that any
 * process may open by name and map (see ipx/region.h).  A user name `n` is
 * the POSIX object "/ipx.n", visible as the file /dev/shm/ipx.n; names are
 * checked by ipx_name_check() (1..IPX_NAME_MAX bytes of [A-Za-z0-9._-],
 * not "." or "..").
 *
 * Creation is atomic with exact permissions: the object is built unnamed,
 * given its permissions, then published under its name in one step (see
 * docs/shm.md), so open-or-create races between processes have exactly one
 * creator, and an opener never meets an object whose permissions are not
 * final yet (no spurious -EACCES).
 *
 * Handles are process-local and opaque.  Functions taking a handle may run
 * concurrently on one handle for the queries (size, name, access, created,
 * fd); resize and close need exclusive use of the handle.  Functions on
 * names (open, remove) are thread-safe.
 *
 * fork(): the child inherits the handle and may use it (the descriptor is
 * shared with the parent; closing it in one process does not affect the
 * other).  The descriptor is O_CLOEXEC: after exec, reopen by name.
 *
 * Crash semantics: an object outlives every process until it is removed
 * (or the machine reboots); a process that dies loses only its handles.
 * Creation either publishes a complete object or nothing. */
#ifndef IPX_SHM_H
#define IPX_SHM_H

#include "common.h"

IPX_EXTERN_C_BEGIN

typedef struct ipx_shm ipx_shm_t;

/* Flags of ipx_shm_resize(). */
#define IPX_SHM_SPARSE 0u  /* pages are allocated when first touched */
#define IPX_SHM_RESERVE 1u /* allocate now: a full /dev/shm is -ENOSPC here,
                              not a SIGBUS at first touch later */

/* Open the object `name` with `mode` and `access` (IPX_READ_ONLY or
 * IPX_READ_WRITE).  A created object is empty (size 0) and gets exactly the
 * permissions `perm` (0 means IPX_DEFAULT_PERM, 0600), whatever the umask;
 * perm is ignored when an existing object is opened.  On failure *out is
 * set to NULL.  Thread-safe.
 * Errors: IPX_EINVAL (out NULL, bad mode or access, perm beyond 0777),
 * IPX_EBADNAME, IPX_EEXIST (create only), IPX_ENOTFOUND (open only),
 * IPX_EWRONGKIND (the name is not a regular file), -EACCES, -EMFILE,
 * -ENOMEM, -ENOSPC... */
IPX_API int ipx_shm_open(ipx_shm_t **out, const char *name,
                         ipx_open_mode_t mode, ipx_access_t access,
                         unsigned perm);

/* Close the handle; the object and every mapping of it stay.  NULL is a
 * no-op.  Returns 0. */
IPX_API int ipx_shm_close(ipx_shm_t *shm);

/* Remove the name; processes that have it open or mapped keep it until they
 * close/unmap.  Thread-safe.
 * Errors: IPX_EINVAL (NULL), IPX_EBADNAME, IPX_ENOTFOUND, -EACCES. */
IPX_API int ipx_shm_remove(const char *name);

/* Set the size to `size` bytes (flags: IPX_SHM_SPARSE or IPX_SHM_RESERVE).
 * Growing adds zero bytes.  Shrinking an object that is mapped makes
 * accesses past the new end fault (SIGBUS) in every process.
 * With IPX_SHM_RESERVE a failure leaves the size unchanged.
 * Errors: IPX_EINVAL (NULL, unknown flags), IPX_EREADONLY (read-only
 * handle), IPX_ETOOBIG (beyond INT64_MAX or the file system's limit),
 * -ENOSPC (reserve on a full /dev/shm). */
IPX_API int ipx_shm_resize(ipx_shm_t *shm, uint64_t size, unsigned flags);

/* Current size in bytes (what every process sees now).
 * Errors: IPX_EINVAL (NULL), -errno from fstat. */
IPX_API int ipx_shm_size(const ipx_shm_t *shm, uint64_t *size);

/* The user name given at open (without the "ipx." prefix); NULL for NULL. */
IPX_API const char *ipx_shm_name(const ipx_shm_t *shm);

/* IPX_READ_ONLY or IPX_READ_WRITE; 0 for NULL. */
IPX_API ipx_access_t ipx_shm_access(const ipx_shm_t *shm);

/* 1 if this open created the object, else 0 (also for NULL). */
IPX_API int ipx_shm_created(const ipx_shm_t *shm);

/* The descriptor (owned by the handle; do not close it); IPX_EINVAL for
 * NULL. */
IPX_API int ipx_shm_fd(const ipx_shm_t *shm);

IPX_EXTERN_C_END

#endif /* IPX_SHM_H */
