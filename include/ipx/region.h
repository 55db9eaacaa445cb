/* ipx/region.h - mapped regions, file mappings and anonymous shared memory
 * (Boost: mapped_region, file_mapping, anonymous_shared_memory).
 *
 * A region maps part of a shared memory object (ipx/shm.h) or of a file
 * into the address space, read-only, read-write or copy-on-write.  Any
 * offset may be asked for: the library maps from the page that holds it
 * and hands back the address of the very byte asked for.  A region is
 * independent of the handle it was mapped from: closing the handle, or
 * removing the name, leaves the region usable until it is unmapped.
 *
 * A region must lie inside the object: an offset or size reaching past the
 * current end is refused (IPX_ERANGE), and an empty object cannot be mapped
 * (IPX_EEMPTY).  If the object is shrunk later, touching what is past its
 * new end raises SIGBUS; that is the one fault no library can prevent.
 *
 * Access: IPX_READ_ONLY maps with PROT_READ (a write faults with SIGSEGV),
 * IPX_READ_WRITE shares writes with every process mapping the object and
 * needs a read-write handle, IPX_COPY_ON_WRITE gives a private writable
 * copy (also from a read-only handle) whose changes nobody else sees.
 *
 * Threads: the queries (address, size, access) and flush/advise may be
 * called concurrently; unmap needs exclusive use of the region.  The
 * mapping functions are thread-safe.
 *
 * fork(): mappings are inherited by the child (shared ones stay shared,
 * copy-on-write ones become private copies in each), and the child may use
 * and unmap its copy of the region handle.  After exec nothing survives.
 *
 * Crash semantics: mappings vanish with the process; the data of a shared
 * mapping stays in the object (for files, flush to make it durable). */
#ifndef IPX_REGION_H
#define IPX_REGION_H

#include "common.h"
#include "shm.h"

IPX_EXTERN_C_BEGIN

typedef struct ipx_region ipx_region_t;
typedef struct ipx_file_mapping ipx_file_mapping_t;

/* The largest region ipx will try to map: 2^47 bytes (128 TiB), the user
 * address space of x86_64 with 4-level page tables.  Larger requests are
 * IPX_ETOOBIG without asking the kernel. */
#define IPX_REGION_SIZE_MAX (UINT64_C(1) << 47)

/* Flags of ipx_region_opts_t. */
#define IPX_REGION_HINT_STRICT 1u /* fail with IPX_EBUSY rather than map
                                     anywhere but at the hint */

/* Where and how much to map.  Initialise with ipx_region_opts_init(), then
 * set what you need (new fields may be added; _init keeps them neutral). */
typedef struct ipx_region_opts {
  uint64_t offset; /* first byte of the object to map (any value) */
  uint64_t size;   /* bytes to map; 0 = from offset to the current end */
  /* Desired address of the byte at `offset`, or NULL for anywhere.  It must
   * have the same position in its page as `offset` (IPX_EINVAL otherwise).
   * ipx never maps over an existing mapping: if the range is occupied the
   * region goes elsewhere (or IPX_EBUSY with IPX_REGION_HINT_STRICT). */
  void *hint;
  unsigned flags; /* IPX_REGION_HINT_STRICT */
} ipx_region_opts_t;

/* Advice for ipx_region_advise() (madvise). */
typedef enum ipx_advice {
  IPX_ADVICE_NORMAL = 0,
  IPX_ADVICE_SEQUENTIAL = 1, /* read ahead aggressively, drop behind */
  IPX_ADVICE_RANDOM = 2,     /* no read-ahead */
  IPX_ADVICE_WILLNEED = 3,   /* start reading the range in now */
  IPX_ADVICE_DONTNEED = 4    /* drop this process's pages of the range: a
                                shared mapping re-reads the object, a
                                copy-on-write one LOSES its private changes,
                                anonymous memory reads as zero */
} ipx_advice_t;

/* Flags of ipx_region_flush(). */
#define IPX_FLUSH_SYNC 0u  /* return when the data is written */
#define IPX_FLUSH_ASYNC 1u /* schedule the write-back and return */

/* Offset 0, size 0 (everything), no hint, no flags.  NULL is a no-op. */
IPX_API void ipx_region_opts_init(ipx_region_opts_t *opts);

/* Map the object of `shm` (opts NULL = the whole object, anywhere).
 * Thread-safe.  On failure *out is NULL.
 * Errors: IPX_EINVAL (NULL out or shm, bad access or flags, hint at a
 * different page position than offset), IPX_EREADONLY (IPX_READ_WRITE
 * from a read-only handle), IPX_EEMPTY (object of size 0), IPX_ERANGE
 * (offset at or past the end, offset+size past the end), IPX_ETOOBIG
 * (size beyond IPX_REGION_SIZE_MAX), IPX_EBUSY (strict hint occupied),
 * -ENOMEM, -EACCES... */
IPX_API int ipx_region_map_shm(ipx_region_t **out, const ipx_shm_t *shm,
                               ipx_access_t access,
                               const ipx_region_opts_t *opts);

/* The same for a file mapping.  Errors as ipx_region_map_shm(). */
IPX_API int ipx_region_map_file(ipx_region_t **out,
                                const ipx_file_mapping_t *fm,
                                ipx_access_t access,
                                const ipx_region_opts_t *opts);

/* `size` bytes of zeroed anonymous memory shared with the children this
 * process fork()s afterwards (and with nobody else).  Always
 * IPX_READ_WRITE.  Thread-safe.
 * Errors: IPX_EINVAL (out NULL, size 0), IPX_ETOOBIG, -ENOMEM. */
IPX_API int ipx_region_anonymous(ipx_region_t **out, uint64_t size);

/* Unmap and free the handle; the address range is gone.  NULL is a no-op.
 * Errors: -errno from munmap (the handle is freed regardless). */
IPX_API int ipx_region_unmap(ipx_region_t *region);

/* Address of the byte at the offset asked for; NULL for NULL. */
IPX_API void *ipx_region_address(const ipx_region_t *region);
/* Bytes usable from that address; 0 for NULL. */
IPX_API uint64_t ipx_region_size(const ipx_region_t *region);
/* How it was mapped; 0 for NULL. */
IPX_API ipx_access_t ipx_region_access(const ipx_region_t *region);

/* Write back [offset, offset+size) of the region (offsets relative to
 * ipx_region_address(); size 0 = to the end) to the object or file: with
 * IPX_FLUSH_SYNC it is on its way to disk when this returns.  Shared
 * memory and anonymous regions need no flush (it is a cheap no-op).
 * Errors: IPX_EINVAL (NULL, bad flags), IPX_ERANGE, -EIO... */
IPX_API int ipx_region_flush(ipx_region_t *region, uint64_t offset,
                             uint64_t size, unsigned flags);

/* Advise the kernel about [offset, offset+size) (size 0 = to the end).
 * Errors: IPX_EINVAL (NULL, unknown advice), IPX_ERANGE, -errno. */
IPX_API int ipx_region_advise(ipx_region_t *region, uint64_t offset,
                              uint64_t size, ipx_advice_t advice);

/* The page size: the granularity of mappings.  Thread-safe. */
IPX_API size_t ipx_page_size(void);

/* Open the existing regular file `path` for mapping, IPX_READ_ONLY or
 * IPX_READ_WRITE (the file is not created or resized; size it first).
 * Thread-safe.  On failure *out is NULL.
 * Errors: IPX_EINVAL (NULL, bad access), IPX_EBADNAME (empty or longer
 * than PATH_MAX), IPX_ENOTFOUND, IPX_EWRONGKIND (not a regular file),
 * -EACCES... */
IPX_API int ipx_file_mapping_open(ipx_file_mapping_t **out, const char *path,
                                  ipx_access_t access);

/* Close the handle; regions mapped from it stay.  NULL is a no-op. */
IPX_API int ipx_file_mapping_close(ipx_file_mapping_t *fm);

/* Remove the file (unlink); mappings of it stay valid.  Thread-safe.
 * Errors: IPX_EINVAL, IPX_EBADNAME, IPX_ENOTFOUND, IPX_EWRONGKIND
 * (a directory), -EACCES... */
IPX_API int ipx_file_mapping_remove(const char *path);

/* The path given at open; NULL for NULL. */
IPX_API const char *ipx_file_mapping_path(const ipx_file_mapping_t *fm);
/* IPX_READ_ONLY or IPX_READ_WRITE; 0 for NULL. */
IPX_API ipx_access_t ipx_file_mapping_access(const ipx_file_mapping_t *fm);
/* The descriptor (owned by the handle); IPX_EINVAL for NULL. */
IPX_API int ipx_file_mapping_fd(const ipx_file_mapping_t *fm);

IPX_EXTERN_C_END

#endif /* IPX_REGION_H */
