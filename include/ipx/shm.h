/* ipx/shm.h - named shared memory objects (Boost: shared_memory_object).
 *
 * A shared memory object is a named, resizable piece of memory that any
 * process may open by name and map (see ipx/region.h).  A user name `n` is
 * the POSIX object "/ipx.n", visible as /dev/shm/ipx.n.
 *
 * Handles are process-local and opaque.  A handle may be used by several
 * threads at once only for the read-only queries (size, name, access, fd);
 * resize and close need exclusive use.  After fork() the child may keep
 * using an inherited handle (the descriptor is shared), but the descriptor is
 * O_CLOEXEC and so does not survive exec. */
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
 * permissions `perm` (0 means IPX_DEFAULT_PERM, 0600), whatever the umask.
 * IPX_OPEN_OR_CREATE is race-free between processes, and an opener never
 * sees a spurious -EACCES while a creator is still setting permissions.
 * Errors: IPX_EINVAL, IPX_EBADNAME, IPX_EEXIST (create only),
 * IPX_ENOTFOUND (open only), -EACCES, -EMFILE, -ENOMEM... */
IPX_API int ipx_shm_open(ipx_shm_t **out, const char *name,
                         ipx_open_mode_t mode, ipx_access_t access,
                         unsigned perm);

/* Close the handle (the object and mappings of it stay).  NULL is a no-op. */
IPX_API int ipx_shm_close(ipx_shm_t *shm);

/* Remove the name; processes that have it open or mapped keep it until they
 * close/unmap.  Errors: IPX_EINVAL, IPX_EBADNAME, IPX_ENOTFOUND, -EACCES. */
IPX_API int ipx_shm_remove(const char *name);

/* Set the size to `size` bytes (flags: IPX_SHM_SPARSE or IPX_SHM_RESERVE).
 * Errors: IPX_EINVAL, IPX_EREADONLY, IPX_ETOOBIG, -ENOSPC (reserve). */
IPX_API int ipx_shm_resize(ipx_shm_t *shm, uint64_t size, unsigned flags);

/* Current size in bytes.  Errors: IPX_EINVAL, -errno from fstat. */
IPX_API int ipx_shm_size(const ipx_shm_t *shm, uint64_t *size);

/* The user name given at open (without the "ipx." prefix). */
IPX_API const char *ipx_shm_name(const ipx_shm_t *shm);

/* IPX_READ_ONLY or IPX_READ_WRITE. */
IPX_API ipx_access_t ipx_shm_access(const ipx_shm_t *shm);

/* 1 if this open created the object, else 0. */
IPX_API int ipx_shm_created(const ipx_shm_t *shm);

/* The descriptor (owned by the handle; do not close it). */
IPX_API int ipx_shm_fd(const ipx_shm_t *shm);

IPX_EXTERN_C_END

#endif /* IPX_SHM_H */
