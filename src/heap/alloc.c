/* The allocator as the segment's first layer (its hooks), and the public
 * allocation API (ipx/alloc.h): argument checks, the segment lock, and the
 * translation between this process's addresses and heap offsets.
 * Design: docs/heap.md. */
#include "ipx/alloc.h"

#include <stdint.h>
#include <stdlib.h>

#include "heap/heap.h"
#include "ipx/time.h"
#include "segment/segment_internal.h"

/* ---- the layer ---------------------------------------------------------- */

static inline uint64_t hoff(const ipx_segment_t *seg) {
  return ipx__seg_heap_off(seg);
}

static int h_init(ipx_segment_t *seg) {
  /* On fresh memory, clearing the 23 KiB control block would only fault
   * in pages that already read as zeros (most of it stays untouched until
   * the sizes it describes are used). */
  if (seg->zeroed)
    return ipx__heap_init_zeroed(seg->base, hoff(seg), ipx__seg_heap_size(seg));
  return ipx__heap_init(seg->base, hoff(seg), ipx__seg_heap_size(seg));
}

static int h_open(ipx_segment_t *seg) {
  return ipx__heap_validate(seg->base, hoff(seg), ipx__seg_heap_size(seg));
}

static int h_repair(ipx_segment_t *seg) {
  int r = ipx__heap_recover(seg->base, hoff(seg));
  return r < 0 ? r : 0;
}

static void relay(void *ctx, const char *msg) {
  ipx__seg_problem(ctx, "heap: %s", msg);
}

static int h_check(ipx_segment_t *seg, struct ipx__seg_report *r) {
  uint64_t hs = ipx__seg_heap_size(seg);
  /* The control block first: the walk trusts its bounds. */
  int v = ipx__heap_validate(seg->base, hoff(seg), hs);
  if (v == IPX_EVERSION) {
    ipx__seg_problem(r, "heap: control block of another format version");
    return v;
  }
  if (v) {
    ipx__seg_problem(r, "heap: control block is damaged, marked corrupt, or "
                        "does not describe this segment's %llu-byte heap",
                     (unsigned long long)hs);
    return IPX_ECORRUPT;
  }
  return ipx__heap_check(seg->base, hoff(seg), relay, r);
}

/* Read-only openers cannot lock: they read between two looks at the
 * generation counter and retry when a writer was inside meanwhile. */
typedef int (*read_fn)(ipx_segment_t *seg, void *ctx);

static int read_stable(ipx_segment_t *seg, read_fn fn, void *ctx) {
  uint64_t deadline = ipx_deadline_after(IPX_SEC);
  for (;;) {
    uint64_t gen;
    int r = ipx__seg_read_begin(seg, &gen, deadline);
    if (r) return r;
    if (__atomic_load_n(&ipx__seg_hdr(seg)->flags, __ATOMIC_ACQUIRE) &
        IPX__SEG_F_CORRUPT)
      return IPX_ECORRUPT;
    r = fn(seg, ctx);
    if (!ipx__seg_read_retry(seg, gen)) return r;
    if (ipx_now() >= deadline) return IPX_EBUSY;
  }
}

static int read_locked(ipx_segment_t *seg, read_fn fn, void *ctx) {
  if (seg->access == IPX_READ_ONLY) return read_stable(seg, fn, ctx);
  int r = ipx__seg_lock(seg);
  if (r) return r;
  r = fn(seg, ctx);
  ipx__seg_unlock(seg);
  return r;
}

static int q_free(ipx_segment_t *seg, void *ctx) {
  *(uint64_t *)ctx = ipx__heap_free_bytes(seg->base, hoff(seg));
  return 0;
}

static int h_free_memory(ipx_segment_t *seg, uint64_t *out) {
  uint64_t v = 0;
  int r = read_locked(seg, q_free, &v);
  if (!r) *out = v;
  return r;
}

/* min_heap and resize run with no other handle open and without the lock:
 * a writer that died in the heap left its undo log for them to roll back
 * (the next locker's repair then finds nothing to do). */
static int settle(ipx_segment_t *seg, uint64_t heap_a, uint64_t heap_b) {
  int v = ipx__heap_validate(seg->base, hoff(seg), heap_a);
  if (v && heap_b != heap_a)
    v = ipx__heap_validate(seg->base, hoff(seg), heap_b);
  if (v) return v;
  int r = ipx__heap_recover(seg->base, hoff(seg));
  return r < 0 ? r : 0;
}

static int h_min_heap(ipx_segment_t *seg, uint64_t *out) {
  uint64_t hs = ipx__seg_heap_size(seg);
  int r = settle(seg, hs, hs);
  return r ? r : ipx__heap_min_arena(seg->base, hoff(seg), out);
}

/* Idempotent: the heap records its own size, so a resize that already
 * happened (or half happened and was rolled back) is recognised. */
static int h_resize(ipx_segment_t *seg, uint64_t old_heap, uint64_t new_heap) {
  int r = settle(seg, old_heap, new_heap);
  if (r) return r;
  struct ipx__heap_stats st;
  r = ipx__heap_get_stats(seg->base, hoff(seg), &st);
  if (r) return r;
  if (st.heap_size == new_heap) return 0;
  if (new_heap > st.heap_size)
    return ipx__heap_grow(seg->base, hoff(seg), new_heap);
  return ipx__heap_trim(seg->base, hoff(seg), new_heap);
}

const struct ipx__seg_layer ipx__heap_layer = {
    .name = "heap",
    .init = h_init,
    .repair = h_repair,
    .check = h_check,
    .free_memory = h_free_memory,
    .min_heap = h_min_heap,
    .resize = h_resize,
    .open = h_open,
};

/* ---- placement hint ----------------------------------------------------- */

struct ipx__heap_pages *ipx__seg_heap_pages(ipx_segment_t *seg) {
  struct ipx__heap_pages *pm = seg->heap_local;
  if (pm) return pm;
  /* One bit per 4 KiB of the mapping (64 KiB for 2 GiB), zero until this
   * process writes there.  Without memory for it, allocation still works,
   * only without the hint. */
  uint64_t n = seg->size / 4096u + 2u, words = (n + 63u) / 64u;
  uint64_t chunks = (n + IPX__HEAP_PAGES_CHUNK - 1u) / IPX__HEAP_PAGES_CHUNK;
  uint64_t swords = (chunks + 63u) / 64u;
  pm = calloc(1, sizeof *pm + (size_t)(words + swords) * sizeof(uint64_t));
  if (!pm) return NULL;
  pm->bits = (uint64_t *)(void *)(pm + 1);
  pm->npages = n;
  /* Pages other processes (or an earlier life of this segment) already
   * brought in count as known too: the map asks the system about each
   * 2 MiB chunk the first time it looks there. */
  uintptr_t b = (uintptr_t)seg->base;
  pm->seeded = pm->bits + words;
  pm->map = (const unsigned char *)(b & ~(uintptr_t)4095u);
  pm->mapped = ((b + seg->size - 1u) >> 12) - (b >> 12) + 1u;
  seg->heap_local = pm;
  return pm;
}

/* ---- the public API ----------------------------------------------------- */

/* The heap offset of an address of this process's mapping. */
static inline int off_of(const ipx_segment_t *seg, const void *p,
                         uint64_t *off) {
  uintptr_t a = (uintptr_t)p, b = (uintptr_t)seg->base;
  if (a < b + hoff(seg) || a - b >= seg->size) return IPX_ERANGE;
  *off = (uint64_t)(a - b);
  return 0;
}

/* End of a locked call.  The heap reports IPX_ECORRUPT under the lock only
 * when it found damage (and marked itself): the whole segment is then
 * unusable, and check should say so. */
static inline int done(ipx_segment_t *seg, int r) {
  if (__builtin_expect(r == IPX_ECORRUPT, 0))
    ipx__seg_mark_corrupt(seg, "heap: damage found by an allocation call");
  ipx__seg_unlock(seg);
  return r;
}

int ipx_segment_allocate(ipx_segment_t *seg, size_t size, void **ptr) {
  if (!seg || !ptr) return IPX_EINVAL;
  int r = ipx__seg_lock(seg);
  if (r) return r;
  uint64_t off;
  r = done(seg, ipx__heap_alloc_placed(seg->base, hoff(seg), size, &off,
                                      ipx__seg_heap_pages(seg)));
  if (!r) *ptr = seg->base + off;
  return r;
}

int ipx_segment_allocate_aligned(ipx_segment_t *seg, size_t size, size_t align,
                                 void **ptr) {
  if (!seg || !ptr) return IPX_EINVAL;
  if (align == 0 || (align & (align - 1))) return IPX_EINVAL;
  int r = ipx__seg_lock(seg);
  if (r) return r;
  uint64_t off;
  r = done(seg,
           ipx__heap_alloc_aligned(seg->base, hoff(seg), size, align, &off));
  if (!r) *ptr = seg->base + off;
  return r;
}

int ipx_segment_deallocate(ipx_segment_t *seg, void *ptr) {
  if (!seg) return IPX_EINVAL;
  if (!ptr) return 0;
  uint64_t off;
  int r = off_of(seg, ptr, &off);
  if (r) return r;
  ipx__heap_prefetch(seg->base, off);
  r = ipx__seg_lock(seg);
  if (r) return r;
  return done(seg, ipx__heap_free(seg->base, hoff(seg), off));
}

struct usable_q {
  uint64_t off;
  size_t size;
};
static int q_usable(ipx_segment_t *seg, void *ctx) {
  struct usable_q *q = ctx;
  return ipx__heap_usable_size(seg->base, hoff(seg), q->off, &q->size);
}

int ipx_segment_usable_size(ipx_segment_t *seg, const void *ptr,
                            size_t *size) {
  if (!seg || !ptr || !size) return IPX_EINVAL;
  struct usable_q q = {0, 0};
  int r = off_of(seg, ptr, &q.off);
  if (!r) r = read_locked(seg, q_usable, &q);
  if (!r) *size = q.size;
  return r;
}

int ipx_segment_expand(ipx_segment_t *seg, void *ptr, size_t min_size,
                       size_t preferred_size, size_t *received) {
  if (!seg || !ptr || !received) return IPX_EINVAL;
  uint64_t off;
  int r = off_of(seg, ptr, &off);
  if (r) return r;
  r = ipx__seg_lock(seg);
  if (r) return r;
  return done(seg, ipx__heap_expand(seg->base, hoff(seg), off, min_size,
                                    preferred_size, received));
}

int ipx_segment_shrink(ipx_segment_t *seg, void *ptr, size_t new_size,
                       size_t *received) {
  if (!seg || !ptr || !received) return IPX_EINVAL;
  uint64_t off;
  int r = off_of(seg, ptr, &off);
  if (r) return r;
  r = ipx__seg_lock(seg);
  if (r) return r;
  return done(seg, ipx__heap_shrink(seg->base, hoff(seg), off, new_size,
                                    received));
}

int ipx_segment_reallocate(ipx_segment_t *seg, void *ptr, size_t size,
                           void **new_ptr) {
  if (!seg || !new_ptr) return IPX_EINVAL;
  uint64_t off = 0, noff;
  int r = ptr ? off_of(seg, ptr, &off) : 0;
  if (r) return r;
  r = ipx__seg_lock(seg);
  if (r) return r;
  r = done(seg, ipx__heap_realloc(seg->base, hoff(seg), off, size, &noff));
  if (!r) *new_ptr = seg->base + noff;
  return r;
}

int ipx_segment_largest_free_block(ipx_segment_t *seg, size_t *size) {
  if (!seg || !size) return IPX_EINVAL;
  int r = ipx__seg_lock(seg);
  if (r) return r;
  return done(seg, ipx__heap_largest_free(seg->base, hoff(seg), size));
}

int ipx_segment_zero_free_memory(ipx_segment_t *seg) {
  if (!seg) return IPX_EINVAL;
  int r = ipx__seg_lock(seg);
  if (r) return r;
  return done(seg, ipx__heap_zero_free_memory(seg->base, hoff(seg)));
}

static int q_all(ipx_segment_t *seg, void *ctx) {
  int r = ipx__heap_all_deallocated(seg->base, hoff(seg));
  if (r >= 0) *(int *)ctx = r;
  return r < 0 ? r : 0;
}

int ipx_segment_all_memory_deallocated(ipx_segment_t *seg, int *out) {
  if (!seg || !out) return IPX_EINVAL;
  int v = 0, r = read_locked(seg, q_all, &v);
  if (!r) *out = v;
  return r;
}
