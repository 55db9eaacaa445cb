/* ipx/segment.h - managed segments: the container (Boost:
 * managed_shared_memory, managed_mapped_file, managed_external_buffer,
 * managed_heap_memory).
 *
 * A segment is one contiguous piece of memory that starts with a 1 KiB
 * header (docs/FORMAT.md) followed by the heap that the allocator and the
 * named-object index manage.  Four backings:
 *
 *   shared memory  ipx_segment_open_shm(): the POSIX object /dev/shm/ipx.NAME
 *                  (the same object ipx_shm_open("NAME") sees);
 *   file           ipx_segment_open_file(): any path; survives program exit
 *                  and reboots;
 *   caller buffer  ipx_segment_open_buffer(): memory the caller owns;
 *   process heap   ipx_segment_create_heap(): private memory of the process.
 *
 * Creation is atomic: a shared-memory or file segment is built under no
 * name (O_TMPFILE) and published with linkat() only once complete, so a
 * name never shows a half-built segment, and a creator killed at any
 * instruction leaves nothing behind.  Racing IPX_OPEN_OR_CREATE openers all
 * succeed and all get the one segment that was published first.
 *
 * Every opener of a shared-memory or file segment holds a shared
 * open-file-description lock on it for as long as the handle is open; grow
 * and shrink-to-fit take it exclusively and so fail with IPX_EBUSY while any
 * other handle (in any process, including the caller's) is open.
 *
 * Access and the segment lock (a robust recursive mutex in the header):
 *   IPX_READ_WRITE     shared writable mapping; may take the lock.
 *   IPX_READ_ONLY      read-only mapping; never writes a byte, not even a
 *                      lock word.  Readers validate what they read against
 *                      the header's generation counter (a sequence lock that
 *                      every lock holder bumps) and retry instead of locking.
 *   IPX_COPY_ON_WRITE  private writable mapping: every change, lock words
 *                      included, stays in the opener's own copy.  At open the
 *                      header page is made private and its lock set free, so
 *                      a COW opener may lock (it excludes only its own
 *                      threads).  Pages it has not written still show other
 *                      processes' changes (Linux MAP_PRIVATE semantics): open
 *                      COW while no writer is active to get a coherent view.
 *
 * Handles are process-local.  Queries on one handle are thread-safe; close
 * needs exclusive use.  After fork() the child may use an inherited shm or
 * file handle (the mapping and the descriptor are shared, and so is the
 * open-file lock: the segment counts as open until both processes close it);
 * a heap segment is copied into the child like all private memory.
 * Descriptors are O_CLOEXEC: nothing survives exec. */
#ifndef IPX_SEGMENT_H
#define IPX_SEGMENT_H

#include "common.h"

IPX_EXTERN_C_BEGIN

typedef struct ipx_segment ipx_segment_t;

/* The segment format version this build reads and writes. */
#define IPX_SEGMENT_FORMAT_VERSION 2u
/* Bytes of the header at the start of every segment; the heap follows (in
 * the same page: a fresh segment's bookkeeping fits in its first page). */
#define IPX_SEGMENT_HEADER_SIZE 1024u
/* Smallest segment: the header and 31 KiB of heap (the allocator's control
 * block takes 23 KiB of it). */
#define IPX_SEGMENT_MIN_SIZE 32768u
/* Largest segment (64 TiB); larger requests are IPX_ETOOBIG. */
#define IPX_SEGMENT_MAX_SIZE (UINT64_C(1) << 46)
/* Largest heap-backed segment (IPX_ETOOBIG beyond). */
#define IPX_SEGMENT_HEAP_MAX_SIZE (UINT64_C(1) << 38)
/* Alignment a caller buffer must have. */
#define IPX_SEGMENT_BUFFER_ALIGN 64u

/* Option flags. */
#define IPX_SEGMENT_RESERVE 1u /* allocate the backing store at creation: a
                                  full disk or /dev/shm fails the create with
                                  -ENOSPC instead of a SIGBUS on first touch */

typedef struct ipx_segment_options {
  ipx_open_mode_t mode; /* default IPX_OPEN_OR_CREATE */
  ipx_access_t access;  /* default IPX_READ_WRITE */
  unsigned perm;        /* permissions of a created object; 0 = 0600 */
  uint64_t size;        /* size of a created segment in bytes (>= MIN) */
  void *address;        /* NULL: anywhere; else map exactly there or fail
                           with -EEXIST (never replaces a mapping) */
  unsigned flags;       /* IPX_SEGMENT_RESERVE */
} ipx_segment_options_t;

/* Fill `o` with the defaults above (size 64 KiB).  Thread-safe. */
IPX_API void ipx_segment_options_init(ipx_segment_options_t *o);

/* Open or create the shared-memory segment `name` (/dev/shm/ipx.NAME).
 * Creating needs IPX_READ_WRITE; opening accepts any access.
 * Errors: IPX_EINVAL (NULL, bad mode/access/flags, size < MIN, creating
 * without RW access), IPX_EBADNAME, IPX_ETOOBIG, IPX_EEXIST (create only),
 * IPX_ENOTFOUND (open only), IPX_ECORRUPT (the object is not a good
 * segment), IPX_EVERSION (another format version, byte order or layout
 * fingerprint), IPX_EBUSY (a resize was interrupted and this opener cannot
 * finish it: it is read-only, copy-on-write or not alone), -EEXIST (the
 * address is taken), -EACCES, -ENOSPC, -ENOMEM, -EMFILE...
 * Thread-safe. */
IPX_API int ipx_segment_open_shm(ipx_segment_t **out, const char *name,
                                 const ipx_segment_options_t *opts);

/* The same for a file at `path` (the directory must exist).  Created files
 * are built as an unnamed file in the target directory when the file system
 * supports O_TMPFILE, else under a temporary name "PATH.ipx-tmp-PID-N" that a
 * creator killed at the wrong moment may leave behind.  Errors as above, plus
 * -ENOENT (no such directory), -EISDIR. */
IPX_API int ipx_segment_open_file(ipx_segment_t **out, const char *path,
                                  const ipx_segment_options_t *opts);

/* A segment in `size` bytes at `buf` (aligned to IPX_SEGMENT_BUFFER_ALIGN,
 * size >= MIN), which the caller keeps valid until close.  opts->mode:
 * IPX_CREATE_ONLY formats the buffer; IPX_OPEN_ONLY validates a segment
 * already in it (its recorded size must equal `size`).  IPX_OPEN_OR_CREATE
 * and IPX_COPY_ON_WRITE are IPX_EINVAL (a buffer that holds no good segment
 * is reported, never overwritten).  opts->size, perm, address and flags are
 * ignored.  No inter-process coordination: a caller sharing the buffer
 * between processes creates it before anyone opens it.
 * Errors: IPX_EINVAL, IPX_ECORRUPT, IPX_EVERSION, -ENOMEM.  Thread-safe. */
IPX_API int ipx_segment_open_buffer(ipx_segment_t **out, void *buf,
                                    size_t size,
                                    const ipx_segment_options_t *opts);

/* A new segment of `size` bytes on the process heap, zero-filled.
 * Errors: IPX_EINVAL (NULL, size < MIN), IPX_ETOOBIG (size >
 * IPX_SEGMENT_HEAP_MAX_SIZE), -ENOMEM.  Thread-safe. */
IPX_API int ipx_segment_create_heap(ipx_segment_t **out, uint64_t size);

/* Unmap and free the handle (the named object or file stays).  The caller
 * must not hold the segment lock.  NULL is a no-op returning 0. */
IPX_API int ipx_segment_close(ipx_segment_t *seg);

/* Remove the name; handles that are open keep the segment until closed.
 * Errors: IPX_EINVAL, IPX_EBADNAME, IPX_ENOTFOUND, -EACCES.  Thread-safe. */
IPX_API int ipx_segment_remove_shm(const char *name);
IPX_API int ipx_segment_remove_file(const char *path);

/* Grow the segment by `extra` bytes (Boost: managed_shared_memory::grow).
 * Allowed only while no handle to it is open anywhere.  A grower killed
 * midway leaves a recorded intent that the next read-write opener (or
 * grow) completes.  Errors: IPX_EINVAL (NULL, extra 0), IPX_EBADNAME,
 * IPX_ENOTFOUND, IPX_EBUSY (open elsewhere), IPX_ETOOBIG, IPX_ECORRUPT,
 * IPX_EVERSION, -ENOSPC, -EACCES...  Thread-safe. */
IPX_API int ipx_segment_grow_shm(const char *name, uint64_t extra);
IPX_API int ipx_segment_grow_file(const char *path, uint64_t extra);

/* Shrink the segment to the smallest whole-page size that still holds
 * everything allocated in it (at least IPX_SEGMENT_MIN_SIZE); same rules and
 * errors as grow.  `new_size` (may be NULL) receives the size. */
IPX_API int ipx_segment_shrink_to_fit_shm(const char *name,
                                          uint64_t *new_size);
IPX_API int ipx_segment_shrink_to_fit_file(const char *path,
                                           uint64_t *new_size);

/* The address of the segment's first byte in this process. */
IPX_API void *ipx_segment_base(const ipx_segment_t *seg);
/* The total size in bytes, header included. */
IPX_API uint64_t ipx_segment_size(const ipx_segment_t *seg);
/* The access the segment was opened with. */
IPX_API ipx_access_t ipx_segment_access(const ipx_segment_t *seg);
/* 1 if this open created (or formatted) the segment, else 0. */
IPX_API int ipx_segment_created(const ipx_segment_t *seg);

/* Free bytes of the segment's heap as the allocator counts them (the sum
 * of its free blocks with their headers, freed blocks it caches included;
 * ipx/alloc.h).  Returns exactly to its earlier value once everything
 * allocated since is freed.  Errors: IPX_EINVAL, IPX_ECORRUPT, IPX_EBUSY
 * (read-only opener: the segment kept changing, or a writer died in it and
 * no writer has repaired it yet).  Thread-safe. */
IPX_API int ipx_segment_free_memory(ipx_segment_t *seg, uint64_t *out);

/* Number of named objects in the segment.  Errors as free_memory.
 * Thread-safe. */
IPX_API int ipx_segment_named_count(ipx_segment_t *seg, uint64_t *out);

/* Called by ipx_segment_check() once per problem, with a sentence. */
typedef void (*ipx_segment_report_fn)(void *ctx, const char *problem);

/* A full consistency walk: the header, then every layer in the segment
 * (allocator, name index).  Each problem is passed to `report` (may be
 * NULL) in words.  Read-write and copy-on-write openers walk under the
 * segment lock; read-only openers walk without it and repeat the walk until
 * no writer changed the segment meanwhile, so what they report is never an
 * artefact of a concurrent change.
 * Returns 0 (consistent), IPX_ECORRUPT (problems were reported),
 * IPX_EINVAL, IPX_EBUSY (read-only: no quiet moment within a second).
 * Thread-safe. */
IPX_API int ipx_segment_check(ipx_segment_t *seg, ipx_segment_report_fn report,
                              void *ctx);

/* Write a file segment's changes back to the file (msync).  A no-op for
 * other backings.  Errors: IPX_EINVAL, -errno.  Thread-safe. */
IPX_API int ipx_segment_flush(ipx_segment_t *seg);

/* Handles: an address's offset from the segment base, valid in every
 * process that has the segment open (Boost: get_handle_from_address).
 * Errors: IPX_EINVAL (NULL), IPX_ERANGE (address outside the segment).
 * Thread-safe. */
IPX_API int ipx_segment_handle_from_address(const ipx_segment_t *seg,
                                            const void *addr,
                                            uint64_t *handle);
/* And back (Boost: get_address_from_handle).  Errors: IPX_EINVAL,
 * IPX_ERANGE (handle >= size).  Thread-safe. */
IPX_API int ipx_segment_address_from_handle(const ipx_segment_t *seg,
                                            uint64_t handle, void **addr);

IPX_EXTERN_C_END

#endif /* IPX_SEGMENT_H */
