/* heap.c - segregated caches over a boundary-tag TLSF allocator, with an
 * undo log for crash consistency.  Design and costs: docs/heap.md; layout:
 * docs/FORMAT.md ("heap"). */
#include "heap/heap.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ipx/error.h"

/* ---- geometry ---------------------------------------------------------- */
#define HDR 16u                /* block header: prev_size, word */
#define MIN_BLOCK 32u          /* header + two list links */
#define SL_LOG 6u
#define SL_COUNT (1u << SL_LOG) /* second-level lists per power of two */
#define LINEAR_LIMIT (16u << SL_LOG) /* below: one list per 16-byte size */
#define FL_COUNT 40u            /* covers blocks up to 2^47 bytes */
#define MAX_HEAP (UINT64_C(1) << 46)
#define CACHE_MAX_BLOCK 1040u   /* usable sizes up to 1024 are cached */
#define CACHE_CLASSES (CACHE_MAX_BLOCK / 16u + 1u)
#define CACHE_CAP 64u           /* blocks per cache class */
#define EXACT_SCAN 8u           /* best-fit probes in the exact list */
#define PLACE_PROBES 32u        /* larger lists' heads placement may read */
#define LOG_CAP 96u

/* Header word: tag(off) in bits 48..63, size in bits 4..47, state 0..3. */
#define W_SIZE UINT64_C(0x0000FFFFFFFFFFF0)
#define W_STATE UINT64_C(0xF)
#define W_TAG UINT64_C(0xFFFF000000000000)
enum { ST_ALLOC = 1, ST_FREE = 2, ST_CACHED = 3 };
/* F_CORRUPT: damaged beyond repair.  F_RECOUNT: a recovery rolled back the
 * log but may have died before recounting the statistics. */
enum { F_CORRUPT = 1, F_RECOUNT = 2 };

struct logent {
  uint64_t off; /* from base */
  uint64_t old;
};

struct ipx__heap_ctl {
  /* fixed fields (validate) */
  uint64_t magic;
  uint32_t version;
  uint32_t ctl_size;
  uint64_t heap_off;
  uint64_t heap_size; /* as given (logged: grow changes it) */
  uint64_t first;     /* offset of the first block's header */
  uint64_t end;       /* end of the arena (logged) */
  uint32_t flags;     /* F_CORRUPT, F_RECOUNT */
  uint32_t log_n;     /* entries of the current operation's undo log */
  uint32_t log_hwm;
  uint32_t reserved0;
  /* the wilderness [top, end): free, never carved since init or given
   * back by the block before it; holds no header (logged) */
  uint64_t top;
  uint64_t top_prev; /* size of the block that ends at top, 0 if none (logged) */
  /* statistics: not logged, recounted by recovery */
  uint64_t free_bytes;
  uint64_t live_blocks;
  uint64_t cached_blocks;
  uint64_t repairs;
  uint64_t reserved1[5];
  /* The parts every operation touches come first, so that with the fixed
   * fields they share a page with the segment header (and the free-list
   * heads, 20 KiB, come last). */
  struct logent log[LOG_CAP];
  /* caches of freed small blocks, by block size / 16 */
  uint64_t cache_head[CACHE_CLASSES];
  uint64_t cache_count[CACHE_CLASSES];
  /* TLSF */
  uint64_t fl_bitmap;
  uint64_t sl_bitmap[FL_COUNT];
  uint64_t heads[FL_COUNT][SL_COUNT];
};
IPX_STATIC_ASSERT(sizeof(struct ipx__heap_ctl) == 23552,
                  "heap control block layout (docs/FORMAT.md)");
IPX_STATIC_ASSERT(offsetof(struct ipx__heap_ctl, log_n) == 52 &&
                      offsetof(struct ipx__heap_ctl, top) == 64 &&
                      offsetof(struct ipx__heap_ctl, log) == 152 &&
                      offsetof(struct ipx__heap_ctl, cache_head) == 1688 &&
                      offsetof(struct ipx__heap_ctl, fl_bitmap) == 2744 &&
                      offsetof(struct ipx__heap_ctl, heads) == 3072,
                  "heap control block offsets (docs/FORMAT.md)");
#define CTL_SIZE ((sizeof(struct ipx__heap_ctl) + 63u) & ~(size_t)63u)

#define BARRIER() __asm__ __volatile__("" ::: "memory")

/* ---- small helpers ----------------------------------------------------- */
static inline struct ipx__heap_ctl *ctl_of(const void *base, uint64_t hoff) {
  return (struct ipx__heap_ctl *)((unsigned char *)(uintptr_t)base + hoff);
}
static inline uint64_t *W(unsigned char *base, uint64_t off) {
  return (uint64_t *)(void *)(base + off);
}
static inline uint64_t tag_of(uint64_t b) {
  return ((b >> 4) * UINT64_C(0x9E3779B97F4A7C15)) & W_TAG;
}
static inline uint64_t mkword(uint64_t b, uint64_t size, unsigned st) {
  return tag_of(b) | size | st;
}
/* First header word: the previous block's size in bits 0..45, and in bits
 * 46..63 a second check tag over the block's offset and size, so that the
 * 16 bytes of a header vouch for themselves (34 bits of check in one cache
 * line) without a look at the next block's boundary tag. */
#define P_MASK ((UINT64_C(1) << 46) - 1u)
static inline uint64_t tag2_of(uint64_t b, uint64_t size) {
  return ((((b >> 4) ^ (size << 17)) * UINT64_C(0xD6E8FEB86659FD93)) >> 46)
         << 46;
}
static inline uint64_t mkprev(uint64_t b, uint64_t size, uint64_t prev) {
  return tag2_of(b, size) | prev;
}
static inline uint64_t prev_of(const unsigned char *base, uint64_t b) {
  return ((const uint64_t *)(const void *)(base + b))[0] & P_MASK;
}
/* Both check tags of the header at b hold for header word w. */
static inline int hdr_ok(const unsigned char *base, uint64_t b, uint64_t w) {
  return (w & W_TAG) == tag_of(b) &&
         (((const uint64_t *)(const void *)(base + b))[0] & ~P_MASK) ==
             tag2_of(b, w & W_SIZE);
}
static inline unsigned msb64(uint64_t x) { return 63u - (unsigned)__builtin_clzll(x); }

static void mapping(uint64_t size, unsigned *fl, unsigned *sl) {
  if (size < LINEAR_LIMIT) {
    *fl = 0;
    *sl = (unsigned)(size >> 4);
  } else {
    unsigned m = msb64(size);
    *fl = m - SL_LOG - 3u;
    *sl = (unsigned)(size >> (m - SL_LOG)) - SL_COUNT;
  }
}

static inline uint64_t block_size_for(size_t size) {
  uint64_t bs = (((uint64_t)size + 15u) & ~UINT64_C(15)) + HDR;
  return bs < MIN_BLOCK ? MIN_BLOCK : bs;
}

static long page_size(void) {
  static long pg;
  long p = __atomic_load_n(&pg, __ATOMIC_RELAXED);
  if (p == 0) {
    p = sysconf(_SC_PAGESIZE);
    if (p <= 0) p = 4096;
    __atomic_store_n(&pg, p, __ATOMIC_RELAXED);
  }
  return p;
}

/* ---- the undo log ------------------------------------------------------ */
struct tx {
  unsigned char *base;
  struct ipx__heap_ctl *c;
  uint32_t n;
  struct ipx__heap_pages *pm; /* placement hint, or NULL */
  /* A list operation met a link that points outside the blocks or that
   * its neighbour does not point back to: it wrote nothing through it,
   * and the commit rolls the whole operation back instead. */
  int bad;
};

/* Record (offset, old value) and make the record count before storing.
 * IPX_HEAP_UNLOGGED (defined only by bench/bench_heap.c, which compiles a
 * second copy of this file) turns the log off to measure what it costs. */
static inline void tx_set(struct tx *t, uint64_t *p, uint64_t v) {
#ifndef IPX_HEAP_UNLOGGED
  struct logent *e = &t->c->log[t->n];
  e->off = (uint64_t)((unsigned char *)p - t->base);
  e->old = *p;
  BARRIER();
  t->c->log_n = ++t->n;
  BARRIER();
#else
  (void)t;
#endif
  *p = v;
}
static int tx_corrupt(struct tx *t);
/* 0, or IPX_ECORRUPT when the operation met a bad list link (rolled back,
 * the heap marked corrupt). */
static inline int tx_commit(struct tx *t) {
  if (__builtin_expect(t->bad, 0)) return tx_corrupt(t);
  BARRIER();
  if (t->n > t->c->log_hwm) t->c->log_hwm = t->n;
  t->c->log_n = 0;
  BARRIER();
  t->n = 0;
  return 0;
}
/* Undo in memory (an inconsistency found half way through an operation). */
static void tx_rollback(struct tx *t) {
  for (uint32_t i = t->n; i-- > 0;)
    *W(t->base, t->c->log[i].off) = t->c->log[i].old;
  BARRIER();
  t->c->log_n = 0;
  t->n = 0;
}
static int tx_corrupt(struct tx *t) {
  tx_rollback(t);
  t->c->flags |= F_CORRUPT;
  return IPX_ECORRUPT;
}

/* ---- TLSF lists -------------------------------------------------------- */
/* A real block can start at b: blocks tile [first, top). */
static inline int in_heap(const struct ipx__heap_ctl *c, uint64_t b) {
  return b >= c->first && b < c->top && (b & 15u) == 0;
}
/* A free block's list links can name b: its header and both links lie
 * below top. */
static inline int link_ok(const struct ipx__heap_ctl *c, uint64_t b) {
  return b >= c->first && b <= c->top - MIN_BLOCK && (b & 15u) == 0;
}

/* Writes block b's whole header.  fresh: the bytes held no allocator
 * state when the operation began, so they need no log. */
static inline void hdr_write(struct tx *t, uint64_t b, uint64_t prev,
                             uint64_t size, unsigned st, int fresh) {
  uint64_t *h = W(t->base, b);
  uint64_t w0 = mkprev(b, size, prev), w1 = mkword(b, size, st);
  if (fresh) {
    h[0] = w0;
    h[1] = w1;
  } else {
    tx_set(t, &h[0], w0);
    tx_set(t, &h[1], w1);
  }
}
/* New size and state for the header of block b; its previous-size field
 * stays, and the word that holds it is stored (and logged) only when the
 * second tag changes with the size. */
static inline void hdr_resize(struct tx *t, uint64_t b, uint64_t size,
                              unsigned st) {
  uint64_t *h = W(t->base, b);
  uint64_t w0 = mkprev(b, size, h[0] & P_MASK);
  if (h[0] != w0) tx_set(t, &h[0], w0);
  tx_set(t, &h[1], mkword(b, size, st));
}

/* The previous-size field of whatever follows a block: a block's header, or
 * for the wilderness the control block's top_prev. */
static inline void set_prev(struct tx *t, uint64_t next, uint64_t size) {
  if (next == t->c->top) {
    tx_set(t, &t->c->top_prev, size);
  } else {
    uint64_t ns = W(t->base, next)[1] & W_SIZE;
    tx_set(t, &W(t->base, next)[0], mkprev(next, ns, size));
  }
}

static void list_remove(struct tx *t, uint64_t b, uint64_t size) {
  unsigned char *base = t->base;
  struct ipx__heap_ctl *c = t->c;
  unsigned fl, sl;
  mapping(size, &fl, &sl);
  uint64_t next = W(base, b)[2], prev = W(base, b)[3];
  /* Unlink only what its neighbours (or the list head) point back to: a
   * damaged link is never written through. */
  if ((prev ? !link_ok(c, prev) || W(base, prev)[2] != b
            : c->heads[fl][sl] != b) ||
      (next && (!link_ok(c, next) || W(base, next)[3] != b))) {
    t->bad = 1;
    return;
  }
  if (prev)
    tx_set(t, &W(base, prev)[2], next);
  else
    tx_set(t, &c->heads[fl][sl], next);
  if (next) tx_set(t, &W(base, next)[3], prev);
  if (c->heads[fl][sl] == 0) {
    tx_set(t, &c->sl_bitmap[fl], c->sl_bitmap[fl] & ~(UINT64_C(1) << sl));
    if (c->sl_bitmap[fl] == 0)
      tx_set(t, &c->fl_bitmap, c->fl_bitmap & ~(UINT64_C(1) << fl));
  }
}

/* fresh: b's link words held no allocator state when the operation began
 * (they lie inside a block that was free then, past its header and links),
 * so a rollback has nothing to restore there and they need no log. */
static void list_insert(struct tx *t, uint64_t b, uint64_t size, int fresh) {
  unsigned char *base = t->base;
  struct ipx__heap_ctl *c = t->c;
  unsigned fl, sl;
  mapping(size, &fl, &sl);
  uint64_t h = c->heads[fl][sl];
  if (h && (!link_ok(c, h) || W(base, h)[3] != 0)) {
    t->bad = 1;
    return;
  }
  if (fresh) {
    W(base, b)[2] = h;
    W(base, b)[3] = 0;
  } else {
    tx_set(t, &W(base, b)[2], h);
    tx_set(t, &W(base, b)[3], 0);
  }
  if (h) tx_set(t, &W(base, h)[3], b);
  tx_set(t, &c->heads[fl][sl], b);
  if (!(c->sl_bitmap[fl] & (UINT64_C(1) << sl)))
    tx_set(t, &c->sl_bitmap[fl], c->sl_bitmap[fl] | (UINT64_C(1) << sl));
  if (!(c->fl_bitmap & (UINT64_C(1) << fl)))
    tx_set(t, &c->fl_bitmap, c->fl_bitmap | (UINT64_C(1) << fl));
}

/* ---- placement: pages known to be in memory ----------------------------- */
/* The 4 KiB page (counted from the one holding base) that holds byte off. */
static inline uint64_t pm_page(const struct tx *t, uint64_t off) {
  return (((uintptr_t)t->base & 4095u) + off) >> 12;
}
/* Ask the system which pages of chunk ch are resident (other processes'
 * first touches, or this one's before the map existed), once per chunk.
 * Only where its pages are 4 KiB, as the map's. */
__attribute__((noinline)) static void pm_seed(struct ipx__heap_pages *pm,
                                              uint64_t ch) {
  pm->seeded[ch >> 6] |= UINT64_C(1) << (ch & 63u);
  uint64_t first = ch * IPX__HEAP_PAGES_CHUNK;
  if (first >= pm->mapped || page_size() != 4096) return;
  uint64_t n = pm->mapped - first;
  if (n > IPX__HEAP_PAGES_CHUNK) n = IPX__HEAP_PAGES_CHUNK;
  unsigned char vec[IPX__HEAP_PAGES_CHUNK];
  if (mincore((void *)(uintptr_t)(pm->map + first * 4096u), (size_t)n * 4096u,
              vec) != 0)
    return;
  for (uint64_t i = 0; i < n; i++)
    if (vec[i] & 1u) {
      uint64_t p = first + i;
      if (p < pm->npages) pm->bits[p >> 6] |= UINT64_C(1) << (p & 63u);
    }
}

static inline int pm_known(const struct tx *t, uint64_t off) {
  struct ipx__heap_pages *pm = t->pm;
  uint64_t p = pm_page(t, off);
  if (p >= pm->npages) return 0;
  uint64_t ch = p / IPX__HEAP_PAGES_CHUNK;
  if (pm->seeded && !((pm->seeded[ch >> 6] >> (ch & 63u)) & 1u))
    pm_seed(pm, ch);
  return (pm->bits[p >> 6] >> (p & 63u)) & 1u;
}
static inline void pm_mark(struct tx *t, uint64_t off) {
  if (!t->pm) return;
  uint64_t p = pm_page(t, off);
  if (p < t->pm->npages) t->pm->bits[p >> 6] |= UINT64_C(1) << (p & 63u);
}

/* Whether splitting free block b (`size` bytes) for `want` writes no
 * header on a page this process has not seen: no split, a tail that goes
 * back to the wilderness, or a known page at the front or back split. */
static int split_known(const struct tx *t, uint64_t b, uint64_t size,
                       uint64_t want) {
  if (size - want < MIN_BLOCK || b + size == t->c->top) return 1;
  return pm_known(t, b + want) || pm_known(t, b + size - want);
}

/* Free block b (`size` bytes, out of every list, not bordering the
 * wilderness) is split for a block of `want` bytes: the split writes one
 * header in bytes nobody may have touched yet, at b + want when the block
 * takes the front, at b + size - want when it takes the back.  Prefer the
 * back when only that header's page is known to be in memory: first-touch
 * page faults cost microseconds each, far more than the allocation. */
static int place_at_back(const struct tx *t, uint64_t b, uint64_t size,
                         uint64_t want) {
  if (!t->pm || size - want < MIN_BLOCK || b + size == t->c->top) return 0;
  return !pm_known(t, b + want) && pm_known(t, b + size - want);
}

/* A free block of list (fl, sl) or a larger one, all of whose blocks fit
 * `need`, that can be split on known pages, when `head`, the good fit,
 * cannot (docs/heap.md, "Placement"): the second block of head's list
 * first (taking the head rewrites its back link anyway, so reading it
 * costs no extra cache miss), then the heads of the next PLACE_PROBES
 * non-empty larger lists, a header read each.  The block, still in its
 * list; 0 for none; -1 on a damaged list. */
static int64_t place_elsewhere(const struct tx *t, uint64_t head, unsigned fl,
                               unsigned sl, uint64_t need) {
  unsigned char *base = t->base;
  const struct ipx__heap_ctl *c = t->c;
  uint64_t x = W(base, head)[2];
  for (unsigned k = 0; k <= PLACE_PROBES; k++) {
    if (k > 0) {
      /* The head of the next non-empty list after (fl, sl). */
      uint64_t slm = sl + 1u < SL_COUNT
                         ? c->sl_bitmap[fl] & (~UINT64_C(0) << (sl + 1u))
                         : 0;
      if (!slm) {
        uint64_t flm =
            fl + 1u < FL_COUNT ? c->fl_bitmap & (~UINT64_C(0) << (fl + 1u)) : 0;
        if (!flm) return 0;
        fl = (unsigned)__builtin_ctzll(flm);
        slm = c->sl_bitmap[fl];
        if (!slm) return -1;
      }
      sl = (unsigned)__builtin_ctzll(slm);
      x = c->heads[fl][sl];
    }
    if (!x) continue; /* head's list had no second block */
    if (!in_heap(c, x)) return -1;
    uint64_t w = W(base, x)[1];
    if ((w & W_STATE) != ST_FREE || !hdr_ok(base, x, w) ||
        (w & W_SIZE) < need)
      return -1;
    if (split_known(t, x, w & W_SIZE, need)) return (int64_t)x;
  }
  return 0;
}

/* A free block of at least `need` bytes, removed from its list (header
 * still FREE), or 0.  *size gets its size.  -1 on a damaged list. */
static int64_t tlsf_take(struct tx *t, uint64_t need, uint64_t *size) {
  unsigned char *base = t->base;
  struct ipx__heap_ctl *c = t->c;
  unsigned fl, sl;
  mapping(need, &fl, &sl);
  if (fl >= FL_COUNT) return 0;
  /* Bounded best fit in the list `need` belongs to (all one size below
   * 1024 bytes, so the first block fits exactly there). */
  uint64_t best = 0, best_size = UINT64_MAX, x = c->heads[fl][sl];
  for (unsigned i = 0; x && i < EXACT_SCAN; i++) {
    if (!in_heap(c, x)) return -1;
    uint64_t w = W(base, x)[1];
    if ((w & W_STATE) != ST_FREE || !hdr_ok(base, x, w)) return -1;
    uint64_t s = w & W_SIZE;
    if (s >= need && s < best_size) {
      best = x;
      best_size = s;
      if (s == need) break;
    }
    x = W(base, x)[2];
  }
  if (!best) {
    /* Good fit: the next list whose every block is large enough. */
    uint64_t r = need;
    if (need >= LINEAR_LIMIT) r += (UINT64_C(1) << (msb64(need) - SL_LOG)) - 1u;
    mapping(r, &fl, &sl);
    if (r == need) sl++; /* the exact list was searched */
    if (sl >= SL_COUNT) {
      fl++;
      sl = 0;
    }
    if (fl >= FL_COUNT) return 0;
    uint64_t slmap = c->sl_bitmap[fl] & (~UINT64_C(0) << sl);
    if (!slmap) {
      uint64_t flmap = fl + 1 < 64 ? c->fl_bitmap & (~UINT64_C(0) << (fl + 1)) : 0;
      if (!flmap) return 0;
      fl = (unsigned)__builtin_ctzll(flmap);
      slmap = c->sl_bitmap[fl];
      if (!slmap) return -1;
    }
    sl = (unsigned)__builtin_ctzll(slmap);
    best = c->heads[fl][sl];
    if (!in_heap(c, best)) return -1;
    uint64_t w = W(base, best)[1];
    if ((w & W_STATE) != ST_FREE || !hdr_ok(base, best, w)) return -1;
    best_size = w & W_SIZE;
    if (best_size < need) return -1;
    /* Placement: when the good fit's split would write on a page not
     * known to be in memory, another block that fits may not. */
    if (t->pm && !split_known(t, best, best_size, need)) {
      int64_t alt = place_elsewhere(t, best, fl, sl, need);
      if (alt < 0) return -1;
      if (alt > 0) {
        best = (uint64_t)alt;
        best_size = W(base, best)[1] & W_SIZE;
      }
    }
  }
  list_remove(t, best, best_size);
  *size = best_size;
  return (int64_t)best;
}

/* Block b of `size` bytes, out of every list, becomes a live block of
 * `want` bytes; the tail returns to the lists when it can be a block.  The
 * block after b is never FREE here (b was free and coalesced, or b's tail
 * is being split off a live block whose next was checked by the caller).
 * fresh: b was one free block when the operation began, so the tail's
 * header and links (at least MIN_BLOCK bytes into it) overwrite nothing a
 * rollback must restore and go unlogged.  Not so when expanding, where
 * the tail may start inside the absorbed block's header or links. */
static uint64_t carve(struct tx *t, uint64_t b, uint64_t size, uint64_t want,
                      int fresh) {
  struct ipx__heap_ctl *c = t->c;
  uint64_t rem = b + want, rsize = size - want;
  if (rsize && b + size == c->top) {
    /* A tail that borders the wilderness goes back to it, whatever its
     * size: no free block ever borders the wilderness. */
    tx_set(t, &c->top, rem);
    tx_set(t, &c->top_prev, want);
    size = want;
  } else if (rsize >= MIN_BLOCK) {
    hdr_write(t, rem, want, rsize, ST_FREE, fresh);
    set_prev(t, rem + rsize, rsize);
    list_insert(t, rem, rsize, fresh);
    size = want;
  }
  hdr_resize(t, b, size, ST_ALLOC);
  return size;
}

/* Cuts `need` bytes off the front of the wilderness as a free block that
 * is in no list, or returns 0 when the wilderness is smaller.  The bytes at
 * top hold no allocator state (a rollback moves top back and they are
 * ignored again), so the new header needs no log. */
static uint64_t top_take(struct tx *t, uint64_t need) {
  struct ipx__heap_ctl *c = t->c;
  if (c->end - c->top < need) return 0;
  uint64_t b = c->top;
  hdr_write(t, b, c->top_prev, need, ST_FREE, 1);
  tx_set(t, &c->top, b + need);
  tx_set(t, &c->top_prev, need);
  return b;
}

/* Free the (ALLOC or CACHED) block b of `size` bytes into the TLSF lists,
 * coalescing with free neighbours.  0, or -1 on a damaged neighbour. */
static int tlsf_release(struct tx *t, uint64_t b, uint64_t size) {
  unsigned char *base = t->base;
  struct ipx__heap_ctl *c = t->c;
  uint64_t next = b + size;
  int to_top = next == c->top;
  if (!to_top) {
    uint64_t nw = W(base, next)[1];
    if (!hdr_ok(base, next, nw)) return -1;
    if ((nw & W_STATE) == ST_FREE) {
      uint64_t ns = nw & W_SIZE;
      if (ns < MIN_BLOCK || ns >= c->top - next) return -1;
      list_remove(t, next, ns);
      size += ns;
      next = b + size;
    }
  }
  if (b != c->first) {
    uint64_t ps = prev_of(base, b);
    if (ps < MIN_BLOCK || ps > b - c->first || (ps & 15u)) return -1;
    uint64_t p = b - ps, pw = W(base, p)[1];
    if (!hdr_ok(base, p, pw) || (pw & W_SIZE) != ps) return -1;
    if ((pw & W_STATE) == ST_FREE) {
      /* b's header becomes interior: it must not keep saying ALLOC, or a
       * second free of b could pass for a live block. */
      tx_set(t, &W(base, b)[1], mkword(b, size, ST_FREE));
      list_remove(t, p, ps);
      b = p;
      size += ps;
    }
  }
  hdr_resize(t, b, size, ST_FREE);
  if (to_top) {
    /* Into the wilderness; the header above stops saying ALLOC, so a
     * second free of b is refused even once top has moved past it. */
    tx_set(t, &c->top, b);
    tx_set(t, &c->top_prev, prev_of(base, b));
    return 0;
  }
  set_prev(t, next, size);
  list_insert(t, b, size, 0);
  return 0;
}

/* ---- entry checks ------------------------------------------------------ */
static inline int usable(const struct ipx__heap_ctl *c) {
  return c->magic == IPX__HEAP_MAGIC && (c->flags | c->log_n) == 0;
}

/* The size of the live block whose usable bytes start at off, or 0. */
static uint64_t live_block(unsigned char *base, const struct ipx__heap_ctl *c,
                           uint64_t off) {
  if (off < c->first + HDR || off >= c->top || (off & 15u)) return 0;
  uint64_t b = off - HDR, w = W(base, b)[1];
  if ((w & (W_TAG | W_STATE)) != (tag_of(b) | ST_ALLOC)) return 0;
  uint64_t s = w & W_SIZE;
  if (s < MIN_BLOCK || s > c->top - b) return 0;
  if ((W(base, b)[0] & ~P_MASK) != tag2_of(b, s)) return 0;
  return s;
}

/* ---- cache flush ------------------------------------------------------- */
/* Coalesce every cached block into the TLSF lists, one operation per block
 * (each one crash-atomic on its own).  Needs an empty log. */
static int flush_caches(struct tx *t) {
  unsigned char *base = t->base;
  struct ipx__heap_ctl *c = t->c;
  for (unsigned ci = 0; ci < CACHE_CLASSES && c->cached_blocks; ci++) {
    uint64_t guard = c->cache_count[ci];
    while (c->cache_head[ci]) {
      uint64_t h = c->cache_head[ci], bs = (uint64_t)ci * 16u;
      if (guard-- == 0 || !in_heap(c, h) ||
          W(base, h)[1] != mkword(h, bs, ST_CACHED))
        return tx_corrupt(t);
      tx_set(t, &c->cache_head[ci], W(base, h)[2]);
      if (tlsf_release(t, h, bs) != 0) return tx_corrupt(t);
      c->cache_count[ci]--;
      c->cached_blocks--;
      int r = tx_commit(t);
      if (r) return r;
    }
  }
  return 0;
}

/* The back `want` bytes of free block b (`size` bytes, out of every list,
 * its next block not FREE and not the wilderness) become a live block; the
 * front stays a free block.  Returns the new block's offset. */
static uint64_t carve_back(struct tx *t, uint64_t b, uint64_t size,
                           uint64_t want) {
  uint64_t lead = size - want, nb = b + lead;
  /* nb lies at least MIN_BLOCK bytes into a block that was free when the
   * operation began: nothing there to log. */
  hdr_write(t, nb, lead, want, ST_ALLOC, 1);
  hdr_resize(t, b, lead, ST_FREE);
  set_prev(t, nb + want, want);
  list_insert(t, b, lead, 0);
  return nb;
}

/* ---- allocation core --------------------------------------------------- */
/* A block of bs bytes from its size's cache inside the open transaction:
 * the block offset, 0 when the cache is empty (or bs is not cached),
 * IPX_ECORRUPT. */
static inline int64_t cache_pop(struct tx *t, uint64_t bs) {
  unsigned char *base = t->base;
  struct ipx__heap_ctl *c = t->c;
  if (bs > CACHE_MAX_BLOCK) return 0;
  unsigned ci = (unsigned)(bs >> 4);
  uint64_t h = c->cache_head[ci];
  if (!h) return 0;
  if (!in_heap(c, h) || W(base, h)[1] != mkword(h, bs, ST_CACHED))
    return tx_corrupt(t);
  tx_set(t, &c->cache_head[ci], W(base, h)[2]);
  tx_set(t, &W(base, h)[1], mkword(h, bs, ST_ALLOC));
  c->cache_count[ci]--;
  c->cached_blocks--;
  c->free_bytes -= bs;
  c->live_blocks++;
  return (int64_t)h;
}

/* Allocate a block of bs bytes (align <= 16) inside the open transaction.
 * Returns the block offset, 0 for no memory, IPX_ECORRUPT. */
static int64_t alloc_from_lists(struct tx *t, uint64_t bs, int may_flush);

static inline int64_t alloc_block(struct tx *t, uint64_t bs, int may_flush) {
  int64_t b = cache_pop(t, bs);
  return b ? b : alloc_from_lists(t, bs, may_flush);
}

/* ipx__heap_alloc's list path, a transaction of its own. */
static int64_t alloc_listed(unsigned char *base, struct ipx__heap_ctl *c,
                            uint64_t bs, struct ipx__heap_pages *pm);

/* The rest of alloc_block, out of line so that a cache hit pays for none
 * of its registers. */
__attribute__((noinline)) static int64_t alloc_from_lists(struct tx *t,
                                                          uint64_t bs,
                                                          int may_flush) {
  struct ipx__heap_ctl *c = t->c;
  uint64_t size;
  int64_t b = tlsf_take(t, bs, &size);
  if (b == 0 && may_flush && c->cached_blocks) {
    /* Only the wilderness fits: give the cached blocks back to the lists
     * first, so that they serve this request or later ones instead of the
     * wilderness shrinking around them. */
    int r = flush_caches(t);
    if (r) return r;
    b = tlsf_take(t, bs, &size);
  }
  if (b < 0) return tx_corrupt(t);
  if (b == 0) {
    b = (int64_t)top_take(t, bs);
    if (b == 0) return 0;
    size = bs;
  } else if (place_at_back(t, (uint64_t)b, size, bs)) {
    uint64_t nb = carve_back(t, (uint64_t)b, size, bs);
    pm_mark(t, nb);
    c->free_bytes -= bs;
    c->live_blocks++;
    return (int64_t)nb;
  }
  size = carve(t, (uint64_t)b, size, bs, 1);
  /* What this process now knows to be in memory: the block's header and
   * the header of the remainder split off it (if any). */
  pm_mark(t, (uint64_t)b);
  if ((uint64_t)b + size < c->top) pm_mark(t, (uint64_t)b + size);
  c->free_bytes -= size;
  c->live_blocks++;
  return b;
}

__attribute__((noinline)) static int64_t alloc_listed(
    unsigned char *base, struct ipx__heap_ctl *c, uint64_t bs,
    struct ipx__heap_pages *pm) {
  struct tx t = {base, c, 0, pm, 0};
  int64_t b = alloc_from_lists(&t, bs, 1);
  if (b > 0 && tx_commit(&t) != 0) return IPX_ECORRUPT;
  return b;
}

/* Bytes to skip after block b so that its usable bytes are aligned in this
 * process: 0, or a piece large enough to be a free block. */
static uint64_t lead_for(const unsigned char *base, uint64_t b,
                         uint64_t align) {
  uintptr_t addr = (uintptr_t)(base + b + HDR);
  uint64_t lead = (uint64_t)((align - (addr & (align - 1))) & (align - 1));
  if (lead != 0 && lead < MIN_BLOCK) lead += align;
  return lead;
}

static int alloc_aligned_block(struct tx *t, uint64_t bs, uint64_t align,
                               uint64_t *out) {
  unsigned char *base = t->base;
  struct ipx__heap_ctl *c = t->c;
  uint64_t size;
  int64_t b = tlsf_take(t, bs + align + HDR, &size);
  if (b == 0 && c->cached_blocks) {
    int r = flush_caches(t);
    if (r) return r;
    b = tlsf_take(t, bs + align + HDR, &size);
  }
  if (b < 0) return tx_corrupt(t);
  if (b == 0) {
    /* From the wilderness: just what the alignment needs. */
    uint64_t lead = lead_for(base, c->top, align);
    b = (int64_t)top_take(t, lead + bs);
    if (b == 0) return IPX_ENOMEM;
    size = lead + bs;
  }
  uint64_t blk = (uint64_t)b;
  uint64_t lead = lead_for(base, blk, align);
  if (lead) {
    /* The leading piece stays free; its previous block is not FREE
     * (blk was coalesced), so no merge is due. */
    uint64_t nb = blk + lead;
    /* nb lies at least MIN_BLOCK bytes into a block that was free (or
     * wilderness) when the operation began: nothing there to log. */
    hdr_write(t, nb, lead, size - lead, ST_FREE, 1);
    hdr_resize(t, blk, lead, ST_FREE);
    set_prev(t, nb + (size - lead), size - lead);
    list_insert(t, blk, lead, 0);
    blk = nb;
    size -= lead;
  }
  size = carve(t, blk, size, bs, 1);
  c->free_bytes -= size;
  c->live_blocks++;
  *out = blk + HDR;
  return 0;
}

int ipx__heap_alloc(void *base, uint64_t heap_off, size_t size, uint64_t *off) {
  return ipx__heap_alloc_placed(base, heap_off, size, off, NULL);
}

int ipx__heap_alloc_placed(void *base, uint64_t heap_off, size_t size,
                           uint64_t *off, struct ipx__heap_pages *pm) {
  if (!base || !off) return IPX_EINVAL;
  struct ipx__heap_ctl *c = ctl_of(base, heap_off);
  if (!usable(c)) return IPX_ECORRUPT;
  if (size > c->heap_size) return IPX_ENOMEM;
  uint64_t bs = block_size_for(size);
  /* The cache path's transaction never leaves this function, so it can
   * live in registers. */
  struct tx t = {(unsigned char *)base, c, 0, pm, 0};
  int64_t b = cache_pop(&t, bs);
  if (b > 0)
    (void)tx_commit(&t); /* no list operation: cannot fail */
  else if (b == 0)
    b = alloc_listed(base, c, bs, pm);
  if (b <= 0) return b == 0 ? IPX_ENOMEM : (int)b;
  *off = (uint64_t)b + HDR;
  return 0;
}

int ipx__heap_alloc_aligned(void *base, uint64_t heap_off, size_t size,
                            size_t align, uint64_t *off) {
  if (!base || !off) return IPX_EINVAL;
  if (align == 0 || (align & (align - 1)) || align > (size_t)page_size())
    return IPX_EINVAL;
  if (align <= IPX__HEAP_ALIGN) return ipx__heap_alloc(base, heap_off, size, off);
  struct ipx__heap_ctl *c = ctl_of(base, heap_off);
  if (!usable(c)) return IPX_ECORRUPT;
  if (size > c->heap_size) return IPX_ENOMEM;
  struct tx t = {(unsigned char *)base, c, 0, NULL, 0};
  int r = alloc_aligned_block(&t, block_size_for(size), align, off);
  if (r == 0) r = tx_commit(&t);
  return r;
}

/* Push live block b of bs bytes onto its size's cache inside the open
 * transaction: 1 done, 0 when the cache is full (or bs is not cached).
 * log_link: the cache link overwrites the block's first usable word; log it
 * when the operation may be rolled back with the block still live
 * (realloc). */
static inline int cache_push(struct tx *t, uint64_t b, uint64_t bs,
                             int log_link) {
  unsigned char *base = t->base;
  struct ipx__heap_ctl *c = t->c;
  if (bs > CACHE_MAX_BLOCK) return 0;
  unsigned ci = (unsigned)(bs >> 4);
  if (c->cache_count[ci] >= CACHE_CAP) return 0;
  if (log_link)
    tx_set(t, &W(base, b)[2], c->cache_head[ci]);
  else
    W(base, b)[2] = c->cache_head[ci];
  tx_set(t, &W(base, b)[1], mkword(b, bs, ST_CACHED));
  tx_set(t, &c->cache_head[ci], b);
  c->cache_count[ci]++;
  c->cached_blocks++;
  c->free_bytes += bs;
  c->live_blocks--;
  return 1;
}

/* Free live block b of bs bytes into the lists inside the open
 * transaction, coalescing. */
__attribute__((noinline)) static int free_to_lists(struct tx *t, uint64_t b,
                                                   uint64_t bs) {
  if (tlsf_release(t, b, bs) != 0) return tx_corrupt(t);
  t->c->free_bytes += bs;
  t->c->live_blocks--;
  return 0;
}

/* Free live block b of bs bytes inside the open transaction. */
static inline int free_block(struct tx *t, uint64_t b, uint64_t bs,
                             int log_link) {
  return cache_push(t, b, bs, log_link) ? 0 : free_to_lists(t, b, bs);
}

/* ipx__heap_free's list path, a transaction of its own. */
__attribute__((noinline)) static int free_listed(unsigned char *base,
                                                 struct ipx__heap_ctl *c,
                                                 uint64_t b, uint64_t bs) {
  struct tx t = {base, c, 0, NULL, 0};
  int r = free_to_lists(&t, b, bs);
  if (r == 0) r = tx_commit(&t);
  return r;
}

int ipx__heap_free(void *base, uint64_t heap_off, uint64_t off) {
  if (!base) return IPX_EINVAL;
  struct ipx__heap_ctl *c = ctl_of(base, heap_off);
  if (!usable(c)) return IPX_ECORRUPT;
  uint64_t bs = live_block(base, c, off);
  if (!bs) return IPX_EINVAL;
  /* The cache path's transaction never leaves this function, so it can
   * live in registers. */
  struct tx t = {(unsigned char *)base, c, 0, NULL, 0};
  if (cache_push(&t, off - HDR, bs, 0))
    return tx_commit(&t); /* no list operation: 0 */
  return free_listed(base, c, off - HDR, bs);
}

int ipx__heap_usable_size(const void *base, uint64_t heap_off, uint64_t off,
                          size_t *size) {
  if (!base || !size) return IPX_EINVAL;
  struct ipx__heap_ctl *c = ctl_of(base, heap_off);
  if (!usable(c)) return IPX_ECORRUPT;
  uint64_t bs = live_block((unsigned char *)(uintptr_t)base, c, off);
  if (!bs) return IPX_EINVAL;
  *size = (size_t)(bs - HDR);
  return 0;
}

/* Grow live block b (bs bytes) into the free block after it, to at least
 * min_bs and at most pref_bs.  New size, or 0 when it cannot. */
static uint64_t expand_block(struct tx *t, uint64_t b, uint64_t bs,
                             uint64_t min_bs, uint64_t pref_bs) {
  unsigned char *base = t->base;
  struct ipx__heap_ctl *c = t->c;
  uint64_t next = b + bs;
  if (next == c->top) {
    uint64_t total = bs + (c->end - c->top);
    if (total < min_bs) return 0;
    uint64_t want = pref_bs < total ? pref_bs : total;
    if (want < min_bs) want = min_bs;
    tx_set(t, &c->top, b + want);
    tx_set(t, &c->top_prev, want);
    hdr_resize(t, b, want, ST_ALLOC);
    c->free_bytes -= want - bs;
    return want;
  }
  uint64_t nw = W(base, next)[1];
  if ((nw & W_STATE) != ST_FREE || !hdr_ok(base, next, nw)) return 0;
  uint64_t ns = nw & W_SIZE, total = bs + ns;
  if (total < min_bs || ns >= c->top - next) return 0;
  list_remove(t, next, ns);
  uint64_t want = pref_bs < total ? pref_bs : total;
  if (want < min_bs) want = min_bs;
  set_prev(t, b + total, total);
  hdr_resize(t, b, total, ST_ALLOC);
  uint64_t got = carve(t, b, total, want, 0);
  c->free_bytes -= got - bs;
  return got;
}

int ipx__heap_expand(void *base, uint64_t heap_off, uint64_t off,
                     size_t min_size, size_t preferred_size, size_t *received) {
  if (!base || !received) return IPX_EINVAL;
  struct ipx__heap_ctl *c = ctl_of(base, heap_off);
  if (!usable(c)) return IPX_ECORRUPT;
  uint64_t bs = live_block(base, c, off);
  if (!bs) return IPX_EINVAL;
  if (min_size <= bs - HDR) {
    *received = (size_t)(bs - HDR);
    return 0;
  }
  if (min_size > c->heap_size) return IPX_ENOMEM;
  if (preferred_size < min_size) preferred_size = min_size;
  if (preferred_size > c->heap_size) preferred_size = (size_t)c->heap_size;
  struct tx t = {(unsigned char *)base, c, 0, NULL, 0};
  uint64_t got = expand_block(&t, off - HDR, bs, block_size_for(min_size),
                              block_size_for(preferred_size));
  if (!got) return IPX_ENOMEM; /* nothing changed */
  int r = tx_commit(&t);
  if (r) return r;
  *received = (size_t)(got - HDR);
  return 0;
}

/* Give the tail of live block b beyond new_bs back, if it can be a block. */
static uint64_t shrink_block(struct tx *t, uint64_t b, uint64_t bs,
                             uint64_t new_bs) {
  struct ipx__heap_ctl *c = t->c;
  if (b + bs == c->top) {
    /* Any tail, however small, goes back to the wilderness. */
    if (new_bs == bs) return bs;
    tx_set(t, &c->top, b + new_bs);
    tx_set(t, &c->top_prev, new_bs);
    hdr_resize(t, b, new_bs, ST_ALLOC);
    c->free_bytes += bs - new_bs;
    return new_bs;
  }
  if (bs - new_bs < MIN_BLOCK) return bs;
  uint64_t rem = b + new_bs, rs = bs - new_bs;
  hdr_write(t, rem, new_bs, rs, ST_ALLOC, 0);
  set_prev(t, b + bs, rs);
  hdr_resize(t, b, new_bs, ST_ALLOC);
  if (tlsf_release(t, rem, rs) != 0) return 0;
  c->free_bytes += rs;
  return new_bs;
}

int ipx__heap_shrink(void *base, uint64_t heap_off, uint64_t off,
                     size_t new_size, size_t *received) {
  if (!base || !received) return IPX_EINVAL;
  struct ipx__heap_ctl *c = ctl_of(base, heap_off);
  if (!usable(c)) return IPX_ECORRUPT;
  uint64_t bs = live_block(base, c, off);
  if (!bs || new_size > bs - HDR) return IPX_EINVAL;
  struct tx t = {(unsigned char *)base, c, 0, NULL, 0};
  uint64_t got = shrink_block(&t, off - HDR, bs, block_size_for(new_size));
  if (!got) return tx_corrupt(&t);
  int r = tx_commit(&t);
  if (r) return r;
  *received = (size_t)(got - HDR);
  return 0;
}

int ipx__heap_realloc(void *base, uint64_t heap_off, uint64_t off, size_t size,
                      uint64_t *new_off) {
  if (!base || !new_off) return IPX_EINVAL;
  if (off == 0) return ipx__heap_alloc(base, heap_off, size, new_off);
  struct ipx__heap_ctl *c = ctl_of(base, heap_off);
  if (!usable(c)) return IPX_ECORRUPT;
  unsigned char *b8 = base;
  uint64_t bs = live_block(b8, c, off);
  if (!bs) return IPX_EINVAL;
  if (size > c->heap_size) return IPX_ENOMEM;
  uint64_t want = block_size_for(size), b = off - HDR;
  struct tx t = {b8, c, 0, NULL, 0};
  if (want <= bs) {
    if (!shrink_block(&t, b, bs, want)) return tx_corrupt(&t);
    int r = tx_commit(&t);
    if (r) return r;
    *new_off = off;
    return 0;
  }
  if (expand_block(&t, b, bs, want, want)) {
    int r = tx_commit(&t);
    if (r) return r;
    *new_off = off;
    return 0;
  }
  /* expand_block failed before changing anything. */
  int64_t nb = alloc_block(&t, want, 1);
  if (nb < 0) return (int)nb;
  if (t.bad) return tx_corrupt(&t); /* before copying into the new block */
  if (nb == 0) return IPX_ENOMEM;
  /* The copy overwrites the new block's links; a rollback must find them. */
  tx_set(&t, &W(b8, (uint64_t)nb)[2], W(b8, (uint64_t)nb)[2]);
  tx_set(&t, &W(b8, (uint64_t)nb)[3], W(b8, (uint64_t)nb)[3]);
  memcpy(b8 + nb + HDR, b8 + off, (size_t)(bs - HDR));
  int r = free_block(&t, b, bs, 1);
  if (r == 0) r = tx_commit(&t);
  if (r) return r;
  *new_off = (uint64_t)nb + HDR;
  return 0;
}

uint64_t ipx__heap_free_bytes(const void *base, uint64_t heap_off) {
  if (!base) return 0;
  return ctl_of(base, heap_off)->free_bytes;
}

int ipx__heap_largest_free(void *base, uint64_t heap_off, size_t *size) {
  if (!base || !size) return IPX_EINVAL;
  struct ipx__heap_ctl *c = ctl_of(base, heap_off);
  if (!usable(c)) return IPX_ECORRUPT;
  struct tx t = {(unsigned char *)base, c, 0, NULL, 0};
  int r = flush_caches(&t);
  if (r) return r;
  uint64_t best = c->end - c->top;
  if (c->fl_bitmap) {
    unsigned fl = msb64(c->fl_bitmap);
    unsigned sl = msb64(c->sl_bitmap[fl] | 1u);
    uint64_t steps = c->heap_size / MIN_BLOCK;
    for (uint64_t x = c->heads[fl][sl]; x; x = W(base, x)[2]) {
      if (!in_heap(c, x) || steps-- == 0) return IPX_ECORRUPT;
      uint64_t s = W(base, x)[1] & W_SIZE;
      if (s > best) best = s;
    }
  }
  /* The wilderness serves blocks of any multiple of 16 up to its size;
   * a listed block, only its own size. */
  best &= ~UINT64_C(15);
  *size = best >= MIN_BLOCK ? (size_t)(best - HDR) : 0;
  return 0;
}

int ipx__heap_all_deallocated(const void *base, uint64_t heap_off) {
  if (!base) return IPX_EINVAL;
  struct ipx__heap_ctl *c = ctl_of(base, heap_off);
  if (!usable(c)) return IPX_ECORRUPT;
  return c->live_blocks == 0;
}

int ipx__heap_zero_free_memory(void *base, uint64_t heap_off) {
  if (!base) return IPX_EINVAL;
  struct ipx__heap_ctl *c = ctl_of(base, heap_off);
  if (!usable(c)) return IPX_ECORRUPT;
  struct tx t = {(unsigned char *)base, c, 0, NULL, 0};
  int r = flush_caches(&t);
  if (r) return r;
  unsigned char *b8 = base;
  for (uint64_t b = c->first; b < c->top;) {
    uint64_t w = W(b8, b)[1], s = w & W_SIZE;
    if (!hdr_ok(b8, b, w) || s < MIN_BLOCK || s > c->top - b)
      return IPX_ECORRUPT;
    if ((w & W_STATE) == ST_FREE) memset(b8 + b + MIN_BLOCK, 0, s - MIN_BLOCK);
    b += s;
  }
  memset(b8 + c->top, 0, c->end - c->top);
  return 0;
}

/* ---- init, validate, grow ---------------------------------------------- */
size_t ipx__heap_ctl_size(void) { return CTL_SIZE; }

/* Where the arena of a heap of heap_size bytes ends. */
static inline uint64_t end_for(uint64_t heap_off, uint64_t heap_size) {
  return heap_off + (heap_size & ~UINT64_C(63));
}
uint64_t ipx__heap_min_size(void) { return CTL_SIZE + MIN_BLOCK + HDR + 64u; }
uint64_t ipx__heap_max_size(void) { return MAX_HEAP; }

static int heap_init(void *base, uint64_t heap_off, uint64_t heap_size,
                     int zeroed) {
  if (!base || ((uintptr_t)base & 15u) || (heap_off & 63u)) return IPX_EINVAL;
  if (heap_size > MAX_HEAP) return IPX_ETOOBIG;
  if (heap_size < ipx__heap_min_size()) return IPX_EINVAL;
  struct ipx__heap_ctl *c = ctl_of(base, heap_off);
  if (!zeroed) memset(c, 0, CTL_SIZE);
  c->version = IPX__HEAP_VERSION;
  c->ctl_size = (uint32_t)CTL_SIZE;
  c->heap_off = heap_off;
  c->heap_size = heap_size;
  c->first = heap_off + CTL_SIZE;
  c->end = end_for(heap_off, heap_size);
  /* All wilderness: nothing is written outside the control block's first
   * 160 bytes, so a fresh segment's arena stays untouched. */
  c->top = c->first;
  c->top_prev = 0;
  c->free_bytes = c->end - c->first;
  c->log_n = 0;
  BARRIER();
  c->magic = IPX__HEAP_MAGIC;
  return 0;
}

int ipx__heap_init(void *base, uint64_t heap_off, uint64_t heap_size) {
  return heap_init(base, heap_off, heap_size, 0);
}

int ipx__heap_init_zeroed(void *base, uint64_t heap_off, uint64_t heap_size) {
  return heap_init(base, heap_off, heap_size, 1);
}

static int validate_ctl(const struct ipx__heap_ctl *c, uint64_t heap_off) {
  if (c->magic != IPX__HEAP_MAGIC) return IPX_ECORRUPT;
  if (c->version != IPX__HEAP_VERSION) return IPX_EVERSION;
  if (c->ctl_size != CTL_SIZE || c->heap_off != heap_off) return IPX_ECORRUPT;
  if (c->heap_size > MAX_HEAP || c->heap_size < ipx__heap_min_size())
    return IPX_ECORRUPT;
  if (c->first != heap_off + CTL_SIZE) return IPX_ECORRUPT;
  /* An interrupted grow leaves size and end out of step until recovery
   * rolls it back. */
  uint64_t e = end_for(heap_off, c->heap_size);
  if (c->log_n == 0 && c->end != e) return IPX_ECORRUPT;
  /* Bounded even mid-operation, so that walks never leave the arena (grow
   * and trim store the size and the end in an order that keeps this true
   * at every instant, and never move the end below top). */
  if (c->end < c->first || (c->end & 15u) || c->end > e) return IPX_ECORRUPT;
  if (c->top < c->first || c->top > c->end || (c->top & 15u) ||
      c->top_prev > c->top - c->first || (c->top_prev & 15u))
    return IPX_ECORRUPT;
  if (c->log_n > LOG_CAP || (c->flags & F_CORRUPT)) return IPX_ECORRUPT;
  return 0;
}

int ipx__heap_validate(const void *base, uint64_t heap_off, uint64_t heap_size) {
  if (!base) return IPX_EINVAL;
  const struct ipx__heap_ctl *c = ctl_of(base, heap_off);
  int r = validate_ctl(c, heap_off);
  if (r) return r;
  return c->heap_size == heap_size ? 0 : IPX_ECORRUPT;
}

int ipx__heap_grow(void *base, uint64_t heap_off, uint64_t new_heap_size) {
  if (!base) return IPX_EINVAL;
  struct ipx__heap_ctl *c = ctl_of(base, heap_off);
  if (!usable(c)) return IPX_ECORRUPT;
  if (new_heap_size < c->heap_size) return IPX_EINVAL;
  if (new_heap_size > MAX_HEAP) return IPX_ETOOBIG;
  struct tx t = {(unsigned char *)base, c, 0, NULL, 0};
  uint64_t new_end = end_for(heap_off, new_heap_size);
  /* The size first: validate allows end below what the size gives. */
  tx_set(&t, &c->heap_size, new_heap_size);
  if (new_end > c->end) {
    /* The wilderness simply reaches further; no byte of the arena is
     * touched.  Statistics change only once the log is open, so that
     * recovery recounts them if the operation dies. */
    uint64_t more = new_end - c->end;
    tx_set(&t, &c->end, new_end);
    c->free_bytes += more;
  }
  return tx_commit(&t);
}


int ipx__heap_min_arena(void *base, uint64_t heap_off, uint64_t *min_size) {
  if (!base || !min_size) return IPX_EINVAL;
  struct ipx__heap_ctl *c = ctl_of(base, heap_off);
  if (!usable(c)) return IPX_ECORRUPT;
  struct tx t = {(unsigned char *)base, c, 0, NULL, 0};
  int r = flush_caches(&t);
  if (r) return r;
  /* Flushing merged every free tail into the wilderness: the last block
   * before top is live, and the arena can end at top. */
  uint64_t m = ((c->top - heap_off) + 63u) & ~UINT64_C(63);
  uint64_t lo = (ipx__heap_min_size() + 63u) & ~UINT64_C(63);
  *min_size = m > lo ? m : lo;
  return 0;
}

int ipx__heap_trim(void *base, uint64_t heap_off, uint64_t new_heap_size) {
  if (!base) return IPX_EINVAL;
  struct ipx__heap_ctl *c = ctl_of(base, heap_off);
  if (!usable(c)) return IPX_ECORRUPT;
  if (new_heap_size > c->heap_size || new_heap_size < ipx__heap_min_size())
    return IPX_EINVAL;
  struct tx t = {(unsigned char *)base, c, 0, NULL, 0};
  uint64_t new_end = end_for(heap_off, new_heap_size);
  if (new_end != c->end) {
    int r = flush_caches(&t);
    if (r) return r;
    if (new_end < c->top) return IPX_EINVAL; /* live bytes beyond the end */
    uint64_t less = c->end - new_end;
    /* The end first: the size must never describe less than the end. */
    tx_set(&t, &c->end, new_end);
    c->free_bytes -= less;
  }
  tx_set(&t, &c->heap_size, new_heap_size);
  return tx_commit(&t);
}

/* ---- walk, check, recovery --------------------------------------------- */
struct counts {
  uint64_t free_bytes, live, free_blocks, cached;
  uint64_t cache_count[CACHE_CLASSES];
};

struct reporter {
  ipx__heap_report_fn fn;
  void *ctx;
  unsigned problems;
};

__attribute__((format(printf, 2, 3))) static void say(struct reporter *r,
                                                      const char *fmt, ...) {
  char msg[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  r->problems++;
  if (r->fn) r->fn(r->ctx, msg);
}

/* Verifies the whole structure and counts it.  stats: compare the
 * statistics too (recovery recounts them instead). */
static void verify(unsigned char *base, const struct ipx__heap_ctl *c,
                   struct reporter *rep, struct counts *k, int stats) {
  memset(k, 0, sizeof *k);
  if (c->log_n)
    say(rep, "an operation was interrupted (%u undo entries pending); "
             "recovery has not run", (unsigned)c->log_n);
  if (c->flags & F_CORRUPT) say(rep, "the heap is marked corrupt");
  if ((c->flags & F_RECOUNT) && stats)
    say(rep, "a recovery was interrupted before recounting the statistics");
  /* Physical walk. */
  uint64_t b = c->first, prev_size = 0, prev_state = 0;
  while (b < c->top) {
    uint64_t w = W(base, b)[1], s = w & W_SIZE, st = w & W_STATE;
    if (!hdr_ok(base, b, w)) {
      say(rep, "block at offset %llu: damaged header (bad check tag)",
          (unsigned long long)b);
      return;
    }
    if (s < MIN_BLOCK || s > c->top - b) {
      say(rep, "block at offset %llu: size %llu out of bounds",
          (unsigned long long)b, (unsigned long long)s);
      return;
    }
    if (prev_of(base, b) != prev_size)
      say(rep, "block at offset %llu: previous-size field %llu, but the "
               "previous block has %llu bytes", (unsigned long long)b,
          (unsigned long long)prev_of(base, b), (unsigned long long)prev_size);
    if (st == ST_FREE) {
      if (prev_state == ST_FREE)
        say(rep, "free blocks at offset %llu and before it were not coalesced",
            (unsigned long long)b);
      k->free_blocks++;
      k->free_bytes += s;
    } else if (st == ST_CACHED) {
      if (s > CACHE_MAX_BLOCK)
        say(rep, "cached block at offset %llu is too large for a cache",
            (unsigned long long)b);
      k->cached++;
      k->free_bytes += s;
    } else if (st == ST_ALLOC) {
      k->live++;
    } else {
      say(rep, "block at offset %llu: unknown state %llu",
          (unsigned long long)b, (unsigned long long)st);
    }
    prev_size = s;
    prev_state = st;
    b += s;
  }
  if (b != c->top) {
    say(rep, "blocks overrun the wilderness at offset %llu",
        (unsigned long long)c->top);
    return;
  }
  if (c->top_prev != prev_size)
    say(rep, "the wilderness at offset %llu records a previous block of %llu "
             "bytes, but it has %llu", (unsigned long long)c->top,
        (unsigned long long)c->top_prev, (unsigned long long)prev_size);
  if (prev_state == ST_FREE)
    say(rep, "the free block before the wilderness at offset %llu was not "
             "merged into it", (unsigned long long)c->top);
  k->free_bytes += c->end - c->top;

  /* TLSF lists and bitmaps. */
  uint64_t listed = 0, limit = k->free_blocks + 1;
  for (unsigned fl = 0; fl < FL_COUNT; fl++) {
    if (!!(c->fl_bitmap & (UINT64_C(1) << fl)) != (c->sl_bitmap[fl] != 0))
      say(rep, "first-level bitmap bit %u disagrees with its second level", fl);
    for (unsigned sl = 0; sl < SL_COUNT; sl++) {
      uint64_t x = c->heads[fl][sl], prev = 0;
      if (!!(c->sl_bitmap[fl] & (UINT64_C(1) << sl)) != (x != 0))
        say(rep, "bitmap bit of free list (%u,%u) disagrees with the list",
            fl, sl);
      for (; x; prev = x, x = W(base, x)[2]) {
        if (listed++ > limit) {
          say(rep, "free list (%u,%u) loops or holds more blocks than are "
                   "free", fl, sl);
          break;
        }
        uint64_t w = in_heap(c, x) ? W(base, x)[1] : 0;
        if ((w & W_STATE) != ST_FREE || !hdr_ok(base, x, w)) {
          say(rep, "free list (%u,%u) holds offset %llu, which is not a free "
                   "block", fl, sl, (unsigned long long)x);
          break;
        }
        unsigned f2, s2;
        mapping(w & W_SIZE, &f2, &s2);
        if (f2 != fl || s2 != sl)
          say(rep, "free block at offset %llu (%llu bytes) is in the wrong "
                   "list (%u,%u)", (unsigned long long)x,
              (unsigned long long)(w & W_SIZE), fl, sl);
        if (W(base, x)[3] != prev)
          say(rep, "free block at offset %llu: back link is wrong",
              (unsigned long long)x);
      }
    }
  }
  if (listed != k->free_blocks)
    say(rep, "%llu free blocks in the heap but %llu in the free lists",
        (unsigned long long)k->free_blocks, (unsigned long long)listed);

  /* Caches. */
  uint64_t cached = 0;
  for (unsigned ci = 0; ci < CACHE_CLASSES; ci++) {
    uint64_t n = 0;
    for (uint64_t x = c->cache_head[ci]; x; x = W(base, x)[2]) {
      if (n++ > k->cached) {
        say(rep, "cache of %u-byte blocks loops", ci * 16u);
        break;
      }
      if (!in_heap(c, x) || W(base, x)[1] != mkword(x, ci * 16u, ST_CACHED)) {
        say(rep, "cache of %u-byte blocks holds offset %llu, which is not a "
                 "cached block of that size", ci * 16u, (unsigned long long)x);
        break;
      }
    }
    k->cache_count[ci] = n;
    cached += n;
    if (stats && n != c->cache_count[ci])
      say(rep, "cache of %u-byte blocks holds %llu blocks but counts %llu",
          ci * 16u, (unsigned long long)n,
          (unsigned long long)c->cache_count[ci]);
  }
  if (cached != k->cached)
    say(rep, "%llu cached blocks in the heap but %llu in the caches",
        (unsigned long long)k->cached, (unsigned long long)cached);
  if (stats) {
    if (c->free_bytes != k->free_bytes)
      say(rep, "free-bytes statistic is %llu, the blocks add up to %llu",
          (unsigned long long)c->free_bytes, (unsigned long long)k->free_bytes);
    if (c->live_blocks != k->live)
      say(rep, "live-block count is %llu, the heap holds %llu",
          (unsigned long long)c->live_blocks, (unsigned long long)k->live);
    if (c->cached_blocks != k->cached)
      say(rep, "cached-block count is %llu, the heap holds %llu",
          (unsigned long long)c->cached_blocks, (unsigned long long)k->cached);
  }
}

int ipx__heap_check(const void *base, uint64_t heap_off,
                    ipx__heap_report_fn report, void *ctx) {
  if (!base) return IPX_EINVAL;
  const struct ipx__heap_ctl *c = ctl_of(base, heap_off);
  struct reporter rep = {report, ctx, 0};
  int r = validate_ctl(c, heap_off);
  if (r == IPX_EVERSION) {
    say(&rep, "heap format version %u, expected %u", (unsigned)c->version,
        IPX__HEAP_VERSION);
    return r;
  }
  if (r && (c->magic != IPX__HEAP_MAGIC || c->log_n > LOG_CAP ||
            c->ctl_size != CTL_SIZE || c->first != heap_off + CTL_SIZE)) {
    say(&rep, "heap control block is damaged or missing");
    return IPX_ECORRUPT;
  }
  struct counts k;
  verify((unsigned char *)(uintptr_t)base, c, &rep, &k, 1);
  return rep.problems ? IPX_ECORRUPT : 0;
}

int ipx__heap_walk(const void *base, uint64_t heap_off, ipx__heap_walk_fn fn,
                   void *ctx) {
  if (!base || !fn) return IPX_EINVAL;
  const struct ipx__heap_ctl *c = ctl_of(base, heap_off);
  if (validate_ctl(c, heap_off)) return IPX_ECORRUPT;
  unsigned char *b8 = (unsigned char *)(uintptr_t)base;
  for (uint64_t b = c->first; b < c->top;) {
    uint64_t w = W(b8, b)[1], s = w & W_SIZE;
    if (!hdr_ok(b8, b, w) || s < MIN_BLOCK || s > c->top - b)
      return IPX_ECORRUPT;
    int r = fn(ctx, b + HDR, (size_t)(s - HDR), (w & W_STATE) == ST_ALLOC);
    if (r) return r;
    b += s;
  }
  return 0;
}

int ipx__heap_recover(void *base, uint64_t heap_off) {
  if (!base) return IPX_EINVAL;
  struct ipx__heap_ctl *c = ctl_of(base, heap_off);
  if (c->magic != IPX__HEAP_MAGIC || (c->flags & F_CORRUPT)) return IPX_ECORRUPT;
  uint32_t n = c->log_n;
  if (n == 0 && !(c->flags & F_RECOUNT)) return 0;
  if (n > LOG_CAP) {
    c->flags |= F_CORRUPT;
    return IPX_ECORRUPT;
  }
  /* Every logged store lies inside the arena (an interrupted grow has
   * already stored the larger size, or logged nothing beyond the old end). */
  uint64_t hi = heap_off + (c->heap_size & ~UINT64_C(63));
  for (uint32_t i = 0; i < n; i++) {
    uint64_t o = c->log[i].off;
    if (o < heap_off || o + 8 > hi || (o & 7u)) {
      c->flags |= F_CORRUPT;
      return IPX_ECORRUPT;
    }
  }
  unsigned char *b8 = base;
  c->flags |= F_RECOUNT;
  BARRIER();
  for (uint32_t i = n; i-- > 0;) *W(b8, c->log[i].off) = c->log[i].old;
  BARRIER();
  c->log_n = 0;
  struct reporter rep = {NULL, NULL, 0};
  struct counts k;
  verify(b8, c, &rep, &k, 0);
  if (rep.problems) {
    c->flags |= F_CORRUPT;
    return IPX_ECORRUPT;
  }
  c->free_bytes = k.free_bytes;
  c->live_blocks = k.live;
  c->cached_blocks = k.cached;
  memcpy(c->cache_count, k.cache_count, sizeof c->cache_count);
  c->repairs++;
  BARRIER();
  c->flags &= ~(uint32_t)F_RECOUNT;
  return 1;
}

int ipx__heap_get_stats(const void *base, uint64_t heap_off,
                        struct ipx__heap_stats *st) {
  if (!base || !st) return IPX_EINVAL;
  const struct ipx__heap_ctl *c = ctl_of(base, heap_off);
  if (validate_ctl(c, heap_off)) return IPX_ECORRUPT;
  st->heap_size = c->heap_size;
  st->free_bytes = c->free_bytes;
  st->live_blocks = c->live_blocks;
  st->cached_blocks = c->cached_blocks;
  st->repairs = c->repairs;
  st->log_high_water = c->log_hwm;
  st->log_capacity = LOG_CAP;
  return 0;
}
