/* heap/heap.h - the allocator inside a managed segment (internal).
 *
 * The segment hands the allocator an arena: the bytes [heap_off, heap_off +
 * heap_size) of a mapping that starts at `base`.  The allocator keeps its
 * control block at base + heap_off and manages the rest.  Everything it
 * stores in the arena is an offset from `base`, so the segment may be
 * mapped at a different address in every process.  Blocks are named by the
 * offset of their first usable byte from `base` ("off" below).
 *
 * Algorithm (docs/heap.md): per-size LIFO caches of freed blocks for usable
 * sizes up to 1024 bytes (O(1) allocate and free on the hot path), under
 * them a boundary-tag TLSF allocator (two-level segregated fits, O(1)
 * search, immediate coalescing), and after the last block a wilderness
 * that holds no header (a fresh arena is all wilderness, so formatting one
 * touches only the control block).  Every block carries a 16-byte header
 * whose two check tags depend on the block's offset and size; free() and
 * friends refuse anything that is not a live block's start.
 *
 * Concurrency: none inside.  The caller serialises every call on one arena
 * with a lock (the segment's robust recursive mutex).  The read-only
 * queries (free_bytes, stats, check, walk, validate) need the lock too to
 * see a consistent state, except validate, which reads only the fixed
 * fields of the control block.
 *
 * Crash consistency: every mutating operation records, before each store
 * into allocator metadata, the store's offset and the old value in an undo
 * log in the control block, and ends by clearing the log.  A process killed
 * at any instruction leaves either a complete operation or a log that
 * ipx__heap_recover() rolls back.  The next holder of the lock must call
 * ipx__heap_recover() before anything else when the lock reports that its
 * previous owner died (IPX_EOWNERDEAD).  Until then every other call
 * returns IPX_ECORRUPT ("an operation was interrupted").  If the log or
 * the heap is found damaged beyond what the log explains, the arena is
 * marked corrupt for good and every call returns IPX_ECORRUPT.
 *
 * Power loss on a file-backed segment is not covered: stores reach the
 * file only when the kernel writes the pages back, in no defined order.
 *
 * Errors shared by all functions: IPX_EINVAL for a NULL pointer argument,
 * IPX_ECORRUPT when the arena is marked corrupt or an interrupted operation
 * awaits recovery. */
#ifndef IPX_HEAP_HEAP_H
#define IPX_HEAP_HEAP_H

#include <stddef.h>
#include <stdint.h>

/* "IPXHEAP1" */
#define IPX__HEAP_MAGIC UINT64_C(0x3150414548585049)
#define IPX__HEAP_VERSION 2u

/* Every block's usable size is a multiple of this, and every block address
 * (base + off) is aligned to it when base is. */
#define IPX__HEAP_ALIGN 16u

/* Bytes of the control block at base + heap_off. */
size_t ipx__heap_ctl_size(void);
/* The smallest heap_size ipx__heap_init accepts. */
uint64_t ipx__heap_min_size(void);
/* The largest heap_size (and so the largest block) the format supports. */
uint64_t ipx__heap_max_size(void);

/* Formats an arena: writes the control block and one free block covering
 * the rest.  base must be 16-byte aligned, heap_off a multiple of 64;
 * heap_size is rounded down to a multiple of 64.  Errors: IPX_EINVAL (bad
 * alignment, heap_size below ipx__heap_min_size()), IPX_ETOOBIG (above
 * ipx__heap_max_size()).  Not crash-atomic by itself: the segment publishes
 * the arena only once init returned. */
int ipx__heap_init(void *base, uint64_t heap_off, uint64_t heap_size);
/* The same on memory known to read as zeros (a fresh object or file):
 * the control block is not cleared first, so its untouched pages are not
 * faulted in. */
int ipx__heap_init_zeroed(void *base, uint64_t heap_off, uint64_t heap_size);

/* Checks, for a process opening an existing segment, that base + heap_off
 * holds a control block of this format describing exactly this arena
 * (magic, version, control block size, offsets and bounds, log length).
 * Reads only the control block; never touches the blocks.  0, IPX_ECORRUPT
 * (not a heap, wrong bounds, marked corrupt), IPX_EVERSION (another format
 * version).  heap_size is the figure given to init (or the last grow). */
int ipx__heap_validate(const void *base, uint64_t heap_off, uint64_t heap_size);

/* Allocates a block of at least `size` usable bytes, 16-byte aligned, and
 * stores its offset in *off.  size 0 gets a unique minimum block (16 usable
 * bytes), like malloc(0).  IPX_ENOMEM when no free block is large enough,
 * including every size above the arena's size (no rounding overflow near
 * SIZE_MAX).  When the free lists cannot serve a request the caches of
 * freed small blocks are coalesced and the search repeated before giving
 * up.  Worst case O(1) plus that one flush (bounded by the cache limits). */
int ipx__heap_alloc(void *base, uint64_t heap_off, size_t size, uint64_t *off);

/* Pages of the arena one process knows to be in memory: bit i of bits
 * stands for the i-th 4 KiB page counted from the one that holds base, set
 * where the process wrote an allocator header and, when `seeded` is not
 * NULL, where the system said the page was resident the first time the
 * map looked at its 2 MiB chunk (mincore: pages other processes
 * touched).  Private to the process, and only a hint: allocation splits a
 * free block so that the header it must write lands on a known page when
 * it can (docs/heap.md, "Placement"), which spares first-touch page faults
 * on sparse segments.  A wrong bit costs at most one page fault, never
 * correctness. */
struct ipx__heap_pages {
  uint64_t *bits;
  uint64_t npages; /* bits beyond this count are unknown */
  /* Optional (NULL: no asking the system): one bit per chunk of
   * IPX__HEAP_PAGES_CHUNK pages, set once the chunk was asked about; the
   * mapping's first page and how many pages of it may be asked about. */
  uint64_t *seeded;
  const unsigned char *map;
  uint64_t mapped;
};
#define IPX__HEAP_PAGES_CHUNK 512u

/* ipx__heap_alloc with a page map to consult and update (pm may be NULL:
 * then exactly ipx__heap_alloc).  The caller serialises use of pm as it
 * does every call on the arena. */
int ipx__heap_alloc_placed(void *base, uint64_t heap_off, size_t size,
                           uint64_t *off, struct ipx__heap_pages *pm);

/* The page map of a segment handle (heap/alloc.c), made on first use;
 * NULL when there is no memory for it.  Call with the segment lock held. */
struct ipx_segment;
struct ipx__heap_pages *ipx__seg_heap_pages(struct ipx_segment *seg);

/* As ipx__heap_alloc, with base + *off a multiple of `align`, a power of
 * two up to the system page size.  IPX_EINVAL for any other alignment.
 * Alignments up to 16 are the plain allocation. */
int ipx__heap_alloc_aligned(void *base, uint64_t heap_off, size_t size,
                            size_t align, uint64_t *off);

/* Frees the block at off.  IPX_EINVAL when off is not the start of a live
 * block of this arena: outside the arena, misaligned, an interior pointer,
 * a block already freed (double free).  Such calls change nothing.  Not
 * detectable: freeing a stale offset whose block was freed and then handed
 * out again (it frees the new owner's block). */
int ipx__heap_free(void *base, uint64_t heap_off, uint64_t off);

/* A hint, before taking the lock, for a free or resize of the block at
 * off: starts the cache miss on its header, which validation reads first,
 * so that it overlaps with taking the lock.  Reads nothing.  off must lie
 * in the mapping (>= 16). */
static inline void ipx__heap_prefetch(const void *base, uint64_t off) {
  __builtin_prefetch((const unsigned char *)base + off - 16u);
}

/* The usable size of the live block at off (>= the size asked for).
 * IPX_EINVAL as for free. */
int ipx__heap_usable_size(const void *base, uint64_t heap_off, uint64_t off,
                          size_t *size);

/* Grows the live block at off in place, using the free block after it, to
 * at least min_size usable bytes and at most preferred_size (the larger of
 * the two counts); *received gets the new usable size.  A block already
 * large enough succeeds unchanged.  IPX_ENOMEM when the neighbour cannot
 * supply min_size; IPX_EINVAL as for free. */
int ipx__heap_expand(void *base, uint64_t heap_off, uint64_t off,
                     size_t min_size, size_t preferred_size, size_t *received);

/* Shrinks the live block at off in place to at least new_size usable bytes,
 * giving the tail back to the free lists when it is large enough to be a
 * block; *received gets the new usable size.  IPX_EINVAL if new_size is
 * larger than the block's usable size, or as for free. */
int ipx__heap_shrink(void *base, uint64_t heap_off, uint64_t off,
                     size_t new_size, size_t *received);

/* Resizes the block at off to at least size usable bytes: in place when it
 * can (shrink, or expand into the next free block), else allocate + copy +
 * free as one crash-atomic operation.  *new_off gets the block's offset
 * (off itself when done in place).  off 0 allocates; size 0 shrinks to the
 * minimum block (it never frees).  IPX_ENOMEM leaves the old block as it
 * was; IPX_EINVAL as for free. */
int ipx__heap_realloc(void *base, uint64_t heap_off, uint64_t off, size_t size,
                      uint64_t *new_off);

/* Free bytes: the arena less the control block and every
 * live block with its header.  Cached freed blocks count as free, so the
 * figure returns exactly to its earlier value once everything allocated
 * since is freed. */
uint64_t ipx__heap_free_bytes(const void *base, uint64_t heap_off);

/* The usable size of the largest block an allocation could get now (after
 * coalescing the caches, which this call does).  O(number of free blocks
 * in the largest size class). */
int ipx__heap_largest_free(void *base, uint64_t heap_off, size_t *size);

/* 1 if no block is allocated, 0 otherwise (IPX_EINVAL/IPX_ECORRUPT as
 * usual). */
int ipx__heap_all_deallocated(const void *base, uint64_t heap_off);

/* Coalesces the caches and zeroes every free block's bytes except its
 * header and its two list links (the first 16 usable bytes). */
int ipx__heap_zero_free_memory(void *base, uint64_t heap_off);

/* The segment grew at its end: extend the arena to new_heap_size (rounded
 * down to 64), the new space becoming free (coalesced with a free last
 * block).  IPX_EINVAL if smaller than the current size; IPX_ETOOBIG above
 * ipx__heap_max_size(). */
int ipx__heap_grow(void *base, uint64_t heap_off, uint64_t new_heap_size);

/* The segment is about to shrink at its end: the smallest heap_size
 * (a multiple of 64, at least ipx__heap_min_size()) that keeps every live
 * block, after giving the caches back to the free lists (which this call
 * does).  O(cached blocks). */
int ipx__heap_min_arena(void *base, uint64_t heap_off, uint64_t *min_size);

/* The segment shrinks at its end: cut the arena to new_heap_size (rounded
 * down to 64), taking the bytes from the free block at its end.  IPX_EINVAL
 * if larger than the current size, below ipx__heap_min_size(), or if live
 * blocks lie beyond the new end (use ipx__heap_min_arena's figure or more).
 * Crash-atomic like every other operation. */
int ipx__heap_trim(void *base, uint64_t heap_off, uint64_t new_heap_size);

/* Repairs the arena after a lock holder died: rolls back an interrupted
 * operation from the undo log and recounts the statistics, verifying every
 * block and free structure on the way.  Returns 0 when nothing needed
 * repair, 1 after a repair, IPX_ECORRUPT when the arena is damaged beyond
 * what the log explains (then marked corrupt).  Idempotent: a recovery
 * killed half way is simply run again. */
int ipx__heap_recover(void *base, uint64_t heap_off);

/* Check: walks every block and every free structure (lists, bitmaps,
 * caches, statistics, the log) and calls report(ctx, message) with one
 * sentence per inconsistency found.  0 when all is well, IPX_ECORRUPT
 * otherwise.  Read-only; O(blocks). report may be NULL. */
typedef void (*ipx__heap_report_fn)(void *ctx, const char *msg);
int ipx__heap_check(const void *base, uint64_t heap_off,
                    ipx__heap_report_fn report, void *ctx);

/* Calls fn(ctx, off, usable, allocated) for every block in address order
 * (allocated is 0 for free and cached blocks; the wilderness after the
 * last block is not a block and is not reported); stops early when fn returns
 * non-zero and returns that value.  IPX_ECORRUPT if a block header is
 * damaged (the walk stops there). */
typedef int (*ipx__heap_walk_fn)(void *ctx, uint64_t off, size_t usable,
                                 int allocated);
int ipx__heap_walk(const void *base, uint64_t heap_off, ipx__heap_walk_fn fn,
                   void *ctx);

struct ipx__heap_stats {
  uint64_t heap_size;     /* arena bytes, control block included */
  uint64_t free_bytes;    /* as ipx__heap_free_bytes */
  uint64_t live_blocks;   /* allocated blocks */
  uint64_t cached_blocks; /* freed blocks waiting in the caches */
  uint64_t repairs;       /* recoveries that rolled something back */
  uint32_t log_high_water; /* most undo entries one operation used */
  uint32_t log_capacity;
};
int ipx__heap_get_stats(const void *base, uint64_t heap_off,
                        struct ipx__heap_stats *st);

#endif /* IPX_HEAP_HEAP_H */
