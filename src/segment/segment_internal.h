/* segment_internal.h - what the layers inside a segment (the allocator, the
 * name index) build on: the header layout, the segment lock with its repair
 * hook, the read-side generation protocol for read-only openers, problem
 * reporting for ipx_segment_check(), and the layer table.
 *
 * Layout: docs/FORMAT.md, section "segment".  All offsets are from the
 * segment base; nothing in the segment holds a raw pointer. */
#ifndef IPX_SEGMENT_INTERNAL_H
#define IPX_SEGMENT_INTERNAL_H

#include <stdarg.h>
#include <stdint.h>

#include "ipx/error.h"
#include "ipx/mutex.h"
#include "ipx/segment.h"
#include "sync/mutex_internal.h"

/* "IPXSEG\r\n": the CR LF catches text-mode and line-ending mangling. */
#define IPX__SEG_MAGIC "IPXSEG\r\n"
#define IPX__SEG_ENDIAN 0x01020304u

/* Live flags (ipx__seg_header.flags). */
#define IPX__SEG_F_CORRUPT 1u /* a repair failed: locking is IPX_ECORRUPT */
#define IPX__SEG_F_REPAIR 2u  /* the next lock holder runs the repair hooks
                                 (a writer was inside when the machine went
                                 down) */

/* How big the segment is.  Two slots: an update writes the inactive slot
 * whole, then switches geo_slot, so a process killed midway leaves the old
 * geometry intact. */
struct ipx__seg_geo {
  uint64_t total_size; /* bytes, header included */
  uint64_t heap_size;  /* total_size - heap_off */
  uint64_t resize_to;  /* 0, or the target of an unfinished grow/shrink */
  uint64_t check;      /* ipx__seg_hash of the three words and the slot */
};

struct ipx__seg_header {
  /* 0..127: identity; written at creation, never changed, checksummed. */
  char magic[8];         /* 0   IPX__SEG_MAGIC */
  uint32_t version;      /* 8   IPX_SEGMENT_FORMAT_VERSION */
  uint32_t header_size;  /* 12  IPX_SEGMENT_HEADER_SIZE */
  uint32_t endian;       /* 16  IPX__SEG_ENDIAN in the writer's order */
  uint8_t ptr_size;      /* 20  sizeof(void *) */
  uint8_t max_align;     /* 21  alignof(max_align_t) */
  uint16_t cache_line;   /* 22  IPX_CACHE_LINE */
  uint16_t mutex_size;   /* 24  sizeof(ipx_mutex_t) */
  uint16_t mutex_align;  /* 26  alignof(ipx_mutex_t) */
  uint16_t rmutex_size;  /* 28  sizeof(ipx_recursive_mutex_t) */
  uint16_t rmutex_align; /* 30  alignof(ipx_recursive_mutex_t) */
  uint64_t fingerprint;  /* 32  ipx__seg_hash of bytes 8..31 */
  uint64_t heap_off;     /* 40  IPX_SEGMENT_HEADER_SIZE */
  int32_t creator_pid;   /* 48 */
  uint32_t backing;      /* 52  enum ipx__seg_backing at creation */
  uint8_t reserved0[64]; /* 56  zero */
  uint64_t checksum;     /* 120 ipx__seg_hash of bytes 0..119 */
  /* 128..255: geometry. */
  uint32_t geo_slot;          /* 128 0 or 1 */
  uint8_t reserved1[28];      /* 132 zero */
  struct ipx__seg_geo geo[2]; /* 160 */
  uint8_t reserved2[32];      /* 224 zero */
  /* 256..511: live state, changed while the segment is in use; not
   * checksummed (validated field by field). */
  ipx_recursive_mutex_t lock; /* 256 the segment lock */
  uint64_t generation;        /* 320 odd while a lock holder is inside */
  uint32_t lock_depth;        /* 328 recursion depth of the lock holder */
  uint32_t lock_owner;        /* 332 thread id of the holder, 0 if none */
  uint32_t flags;             /* 336 IPX__SEG_F_* */
  uint32_t reserved3;         /* 340 zero */
  uint8_t boot_id[16];        /* 344 boot whose processes use the lock */
  char corrupt_reason[64];    /* 360 why IPX__SEG_F_CORRUPT was set */
  uint8_t reserved4[24];      /* 424 zero */
  uint8_t index_root[64];     /* 448 the name index's root (src/objects) */
  uint8_t reserved5[IPX_SEGMENT_HEADER_SIZE - 512]; /* zero */
};
IPX_STATIC_ASSERT(sizeof(struct ipx__seg_header) == IPX_SEGMENT_HEADER_SIZE,
                  "segment header is 1 KiB: the heap starts in its page");
IPX_STATIC_ASSERT(IPX_SEGMENT_HEADER_SIZE % 64 == 0,
                  "the heap starts on a cache line (the allocator needs a "
                  "multiple of 64)");
IPX_STATIC_ASSERT(offsetof(struct ipx__seg_header, checksum) == 120,
                  "identity block layout");
IPX_STATIC_ASSERT(offsetof(struct ipx__seg_header, geo) == 160,
                  "geometry layout");
IPX_STATIC_ASSERT(offsetof(struct ipx__seg_header, lock) == 256,
                  "lock on its own cache lines");
IPX_STATIC_ASSERT(offsetof(struct ipx__seg_header, index_root) == 448,
                  "index root layout");

enum ipx__seg_backing {
  IPX__SEG_SHM = 1,
  IPX__SEG_FILE = 2,
  IPX__SEG_BUFFER = 3,
  IPX__SEG_HEAP = 4
};

/* The process-local handle.  Immutable after open, so any thread may read
 * it. */
struct ipx_segment {
  unsigned char *base;
  uint64_t size;
  int fd; /* -1 for buffer and heap */
  enum ipx__seg_backing backing;
  ipx_access_t access;
  int created;
  int zeroed; /* the memory was all zeros when it was formatted (a fresh
                 object or file, or memory the segment cleared itself):
                 layers may skip clearing what they initialise */
  /* The heap layer's private state in this process (its page map,
   * heap/alloc.c): made on first use under the lock, freed with the
   * handle. */
  void *heap_local;
};

static inline struct ipx__seg_header *ipx__seg_hdr(const ipx_segment_t *seg) {
  return (struct ipx__seg_header *)(void *)seg->base;
}
static inline void *ipx__seg_at(const ipx_segment_t *seg, uint64_t off) {
  return seg->base + off;
}
static inline uint64_t ipx__seg_heap_off(const ipx_segment_t *seg) {
  (void)seg; /* fixed in format version 2 */
  return IPX_SEGMENT_HEADER_SIZE;
}
/* Heap bytes; fixed while any handle is open (resizing needs everyone
 * gone). */
uint64_t ipx__seg_heap_size(const ipx_segment_t *seg);

/* ---- the segment lock ------------------------------------------------ */
/* Take the segment lock (recursive).  When the previous holder died in it,
 * every layer's repair hook runs first, in table order, and the call then
 * returns 0 as usual; if a repair fails, the segment is marked corrupt.
 * The generation counter becomes odd on the outermost lock.
 * Errors: IPX_EREADONLY (read-only opener), IPX_ECORRUPT (marked corrupt),
 * IPX_ENOTRECOVERABLE, errors of ipx_recursive_mutex_lock. */
static inline int ipx__seg_lock(ipx_segment_t *seg);
/* Release it; the outermost unlock makes the generation even again. */
static inline int ipx__seg_unlock(ipx_segment_t *seg);

/* Everything but the outermost uncontended lock and unlock (segment.c). */
int ipx__seg_lock_slow(ipx_segment_t *seg);
int ipx__seg_unlock_slow(ipx_segment_t *seg);
int ipx__seg_lock_tail(ipx_segment_t *seg, int dead);

/* The generation is odd while a holder is inside.  A holder that died
 * inside left it odd: it stays odd until a later holder leaves. */
static inline void ipx__seg_gen_enter(struct ipx__seg_header *h) {
  uint64_t g = __atomic_load_n(&h->generation, __ATOMIC_RELAXED);
  if (!(g & 1)) __atomic_store_n(&h->generation, g + 1, __ATOMIC_RELAXED);
  __atomic_thread_fence(__ATOMIC_RELEASE);
}
static inline void ipx__seg_gen_leave(struct ipx__seg_header *h) {
  uint64_t g = __atomic_load_n(&h->generation, __ATOMIC_RELAXED);
  __atomic_store_n(&h->generation, (g | 1) + 1, __ATOMIC_RELEASE);
}

/* The common case of every allocation call, inline: the lock is free and
 * nobody died in it.  One compare-and-swap and the robust-list links, as
 * ipx_recursive_mutex_lock's own fast path, without the two calls and the
 * checks the recursive mutex and the segment would each repeat.  ThreadSanitizer
 * builds take the annotated calls instead. */
static inline int ipx__seg_lock(ipx_segment_t *seg) {
#ifndef IPX__TSAN
  if (__builtin_expect(seg->access != IPX_READ_ONLY, 1)) {
    struct ipx__seg_header *h = ipx__seg_hdr(seg);
    ipx__mutex_t *m = (ipx__mutex_t *)(void *)&h->lock;
    ipx__robust_self_t *s = &ipx__robust_tls;
    if (__builtin_expect(ipx__mutex_try_fast(m, IPX__RMUTEX_MAGIC, s), 1)) {
      /* The word was 0: nobody held it, so this is the outermost level,
       * and nobody died holding it (that leaves OWNER_DIED in the word). */
      m->count = 1;
      h->lock_owner = s->tid;
      h->lock_depth = 1;
      ipx__seg_gen_enter(h);
      if (__builtin_expect(
              (h->flags & (IPX__SEG_F_REPAIR | IPX__SEG_F_CORRUPT)) == 0, 1))
        return 0;
      return ipx__seg_lock_tail(seg, 0);
    }
  }
#endif
  return ipx__seg_lock_slow(seg);
}

static inline int ipx__seg_unlock(ipx_segment_t *seg) {
#ifndef IPX__TSAN
  if (__builtin_expect(seg->access != IPX_READ_ONLY, 1)) {
    struct ipx__seg_header *h = ipx__seg_hdr(seg);
    ipx__mutex_t *m = (ipx__mutex_t *)(void *)&h->lock;
    ipx__robust_self_t *s = &ipx__robust_tls;
    uint32_t me = s->tid;
    /* Outermost level, held by us, consistent; waiters may be flagged. */
    if (__builtin_expect(
            me != 0 && h->lock_owner == me && h->lock_depth == 1 &&
                m->count == 1 &&
                (__atomic_load_n(&m->word, __ATOMIC_RELAXED) &
                 ~IPX__FUTEX_WAITERS) == me &&
                __atomic_load_n(&m->magic, __ATOMIC_RELAXED) ==
                    IPX__RMUTEX_MAGIC,
            1)) {
      h->lock_depth = 0;
      h->lock_owner = 0;
      ipx__seg_gen_leave(h);
      ipx__mutex_release(m, s, 0, IPX__TSAN_WRITE_REENTRANT);
      return 0;
    }
  }
#endif
  return ipx__seg_unlock_slow(seg);
}

/* Mark the segment corrupt (lock held): later locks fail with IPX_ECORRUPT
 * and check reports `why`. */
void ipx__seg_mark_corrupt(ipx_segment_t *seg, const char *why);

/* ---- reading without the lock (read-only openers) -------------------- */
/* Wait (until deadline_ns) for no lock holder to be inside and return the
 * generation in *gen.  IPX_EBUSY at the deadline. */
int ipx__seg_read_begin(const ipx_segment_t *seg, uint64_t *gen,
                        uint64_t deadline_ns);
/* 1 if what was read since read_begin may be inconsistent (retry), else
 * 0. */
int ipx__seg_read_retry(const ipx_segment_t *seg, uint64_t gen);

/* ---- check reports --------------------------------------------------- */
struct ipx__seg_report;
/* Report one problem (a sentence, no trailing newline). */
void ipx__seg_problem(struct ipx__seg_report *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- layers ---------------------------------------------------------- *
 * A layer is something that lives inside the segment (the allocator, the
 * name index).  The table ipx__seg_layers[] (segment_layers.c) lists them
 * in dependency order: the allocator before the index.  Each hook may be
 * NULL.  Hooks run under the segment lock unless said otherwise. */
struct ipx__seg_layer {
  const char *name;
  /* A fresh segment (nobody else can see it yet). */
  int (*init)(ipx_segment_t *seg);
  /* The previous lock holder died inside (or the segment comes from an
   * earlier boot with a writer inside).  Make the layer consistent, or
   * return IPX_ECORRUPT. */
  int (*repair)(ipx_segment_t *seg);
  /* Walk everything, reporting problems; return 0 or IPX_ECORRUPT.  For a
   * read-only opener this runs without the lock inside a generation
   * check: never trust an offset without bounds-checking it. */
  int (*check)(ipx_segment_t *seg, struct ipx__seg_report *r);
  /* Free bytes of the heap (first layer that has it answers). */
  int (*free_memory)(ipx_segment_t *seg, uint64_t *out);
  /* Number of named objects (first layer that has it answers). */
  int (*named_count)(ipx_segment_t *seg, uint64_t *out);
  /* Smallest heap size that keeps everything (shrink_to_fit). */
  int (*min_heap)(ipx_segment_t *seg, uint64_t *out);
  /* The heap goes from old_heap to new_heap bytes (the mapping covers
   * both).  Runs with no other handle open, without the lock.  Must be
   * idempotent: after a crash it runs again with the same arguments, and
   * the layer must recognise work it already did. */
  int (*resize)(ipx_segment_t *seg, uint64_t old_heap, uint64_t new_heap);
  /* A process opens an existing segment (any access, no lock held, other
   * processes may be using it): check the layer's fixed fields so that a
   * damaged layer is IPX_ECORRUPT (or IPX_EVERSION) at open, not a crash
   * later.  Read only.  Not called for a segment already marked corrupt
   * (its lock refuses everyone and check reports why). */
  int (*open)(ipx_segment_t *seg);
};
/* NULL-terminated. */
extern const struct ipx__seg_layer *const ipx__seg_layers[];

/* ---- format helpers (also for the fuzzer) ---------------------------- */
/* The header's checksum function over n bytes (a multiple of 8), 64-bit
 * words in host order: h = 0xcbf29ce484222325, then per word w
 * h = (h ^ w) * 0x9e3779b97f4a7c15, h ^= h >> 32 (docs/FORMAT.md). */
uint64_t ipx__seg_hash(const void *p, size_t n);
/* Recompute the identity checksum and the active geometry check of a
 * header in memory. */
void ipx__seg_seal(struct ipx__seg_header *h);
/* Validate a header copy for a segment of `actual` bytes: 0,
 * IPX_ECORRUPT or IPX_EVERSION.  *resize_pending is set when the geometry
 * records an unfinished resize (then `actual` may differ). */
int ipx__seg_validate(const struct ipx__seg_header *h, uint64_t actual,
                      int *resize_pending);

#endif
