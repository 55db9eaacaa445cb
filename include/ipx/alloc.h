/* ipx/alloc.h - allocating memory inside a managed segment (Boost:
 * segment_manager::allocate, deallocate, allocation_command, size,
 * get_free_memory, all_memory_deallocated, zero_free_memory).
 *
 * Blocks live in the segment's heap and are named by their address in the
 * calling process; to hand a block to another process, pass its handle
 * (ipx_segment_handle_from_address) and let the other side turn it back
 * into an address (ipx_segment_address_from_handle).  Every block is 16-byte
 * aligned from the segment base (shared memory, file and heap segments map
 * at page-aligned addresses, so the address itself is 16-aligned).
 *
 * Algorithm and costs: docs/heap.md.  Every call that changes the heap
 * takes the segment lock (a robust recursive mutex in the segment header)
 * for its duration, so all calls are thread-safe and work between the
 * processes that have the segment open.  A process killed at any instruction
 * inside one of them leaves the heap as it was before the call: the next
 * locker rolls the interrupted operation back (a block it was allocating is
 * not handed out twice, a block it was freeing stays live).
 *
 * Pointers.  `ptr` arguments must be addresses returned by an allocation
 * call in this process's mapping of the segment.  A pointer outside the
 * segment's heap is IPX_ERANGE; one inside it that is not the start of a
 * live block (freed already, interior, never allocated) is IPX_EINVAL and
 * changes nothing.  Not detectable: freeing a pointer whose block was freed
 * and since handed out again (it frees the new owner's block).
 *
 * Errors common to every call: IPX_EINVAL (NULL segment or out-parameter),
 * IPX_EREADONLY (the segment was opened read-only: only usable_size,
 * all_memory_deallocated and ipx_segment_free_memory work then),
 * IPX_ECORRUPT (the segment is marked corrupt, or this call found the heap
 * damaged and marked it so), and the segment lock's errors
 * (IPX_ENOTRECOVERABLE). */
#ifndef IPX_ALLOC_H
#define IPX_ALLOC_H

#include "common.h"
#include "segment.h"

IPX_EXTERN_C_BEGIN

/* Allocate at least `size` bytes; *ptr gets the block's address.  size 0
 * gets a unique block of 16 usable bytes (like malloc(0)).
 * Errors: IPX_ENOMEM (no free block large enough, including every size
 * larger than the segment, SIZE_MAX among them: no rounding overflow).
 * *ptr is untouched on error. */
IPX_API int ipx_segment_allocate(ipx_segment_t *seg, size_t size, void **ptr);

/* The same, with the address a multiple of `align`: a power of two up to
 * the system page size (IPX_EINVAL otherwise; 1..16 give a plain
 * allocation).  In a buffer segment whose buffer is less aligned than
 * `align`, the alignment holds for this process's address only. */
IPX_API int ipx_segment_allocate_aligned(ipx_segment_t *seg, size_t size,
                                         size_t align, void **ptr);

/* Free a block.  NULL is a no-op returning 0 (like free(NULL)).
 * Errors: IPX_ERANGE (not in the segment's heap), IPX_EINVAL (not a live
 * block: double free, interior pointer). */
IPX_API int ipx_segment_deallocate(ipx_segment_t *seg, void *ptr);

/* The usable size of a live block (at least what was asked).  Works for
 * read-only openers too (IPX_EBUSY if the segment kept changing for a
 * second).  Errors: IPX_ERANGE, IPX_EINVAL as for deallocate. */
IPX_API int ipx_segment_usable_size(ipx_segment_t *seg, const void *ptr,
                                    size_t *size);

/* Grow a block in place (Boost: allocation_command with expand_fwd): to at
 * least `min_size` usable bytes, and up to `preferred_size` when the free
 * space after the block allows (a preferred_size below min_size counts as
 * min_size).  *received gets the new usable size.  A block already holding
 * min_size bytes succeeds unchanged.  The block never moves.
 * Errors: IPX_ENOMEM (the space after the block cannot supply min_size;
 * the block is unchanged), IPX_ERANGE, IPX_EINVAL. */
IPX_API int ipx_segment_expand(ipx_segment_t *seg, void *ptr, size_t min_size,
                               size_t preferred_size, size_t *received);

/* Shrink a block in place (Boost: shrink_in_place) to at least `new_size`
 * usable bytes, giving the tail back when it is large enough to be a free
 * block; *received gets the new usable size.  Errors: IPX_EINVAL
 * (new_size larger than the usable size, or not a live block),
 * IPX_ERANGE. */
IPX_API int ipx_segment_shrink(ipx_segment_t *seg, void *ptr, size_t new_size,
                               size_t *received);

/* Resize a block to at least `size` bytes, keeping its contents (up to the
 * smaller size): in place when it can, else allocate, copy and free as one
 * crash-atomic step.  *new_ptr gets the block's address (ptr itself when
 * done in place).  ptr NULL allocates; size 0 shrinks to the minimum block
 * (it never frees).  Errors: IPX_ENOMEM (the old block is untouched),
 * IPX_ERANGE, IPX_EINVAL. */
IPX_API int ipx_segment_reallocate(ipx_segment_t *seg, void *ptr, size_t size,
                                   void **new_ptr);

/* The usable size of the largest block an allocation could get now (Boost
 * has no direct equivalent; a fragmentation measure).  Gives freed small
 * blocks held in the allocator's caches back to the free lists first. */
IPX_API int ipx_segment_largest_free_block(ipx_segment_t *seg, size_t *size);

/* Zero every free byte of the heap except the allocator's own bookkeeping
 * (each free block's header and list links, 32 bytes).  O(blocks). */
IPX_API int ipx_segment_zero_free_memory(ipx_segment_t *seg);

/* *out = 1 if no block is allocated in the segment, else 0.  Works for
 * read-only openers (IPX_EBUSY as for usable_size). */
IPX_API int ipx_segment_all_memory_deallocated(ipx_segment_t *seg, int *out);

IPX_EXTERN_C_END

#endif /* IPX_ALLOC_H */
