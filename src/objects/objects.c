/* Named, unique and anonymous objects in a managed segment: the name index
 * (docs/objects.md; layout in objects_internal.h and docs/FORMAT.md).
 *
 * Write protocol (segment lock held).  Every change to the index runs
 * inside root.busy++ ... root.busy--; a block is allocated with its offset
 * written straight into root.pending, and freed with root.pending naming it
 * and its magic already cleared.  So after a lock holder dies:
 *   busy == 0 && pending == 0   the index is as the last finished call left it;
 *   otherwise                   the repair hook rebuilds it from a heap walk:
 *                               READY headers are the objects, CONSTRUCTING
 *                               ones and stray tables are freed, and the
 *                               pending block is freed unless its header is
 *                               valid (then the walk decided for it).
 * Readers without the lock (read-only openers) validate every offset and
 * header they read and retry when the segment generation moved. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "heap/heap.h"
#include "ipx/time.h"
#include "objects/objects_internal.h"

#define SLOT_OFF_MASK ((UINT64_C(1) << IPX__OBJ_SLOT_OFF_BITS) - 1)
#define HDR_SIZE ((uint64_t)sizeof(struct ipx__obj_hdr))

/* ---- small helpers --------------------------------------------------- */

static struct ipx__obj_root *root_of(const ipx_segment_t *seg) {
  return (struct ipx__obj_root *)(void *)ipx__seg_hdr(seg)->index_root;
}

static uint64_t hoff(const ipx_segment_t *seg) { return ipx__seg_heap_off(seg); }

static uint64_t obj_magic(uint64_t off) {
  return (IPX__OBJ_HDR_MAGIC ^ (off * UINT64_C(0x9E3779B97F4A7C15))) | 1u;
}

static uint64_t mix(uint64_t h) {
  h ^= h >> 32;
  h *= UINT64_C(0x94d049bb133111eb);
  h ^= h >> 29;
  return h;
}

static uint64_t obj_hash(unsigned kind, const char *s, size_t n) {
  uint64_t h = UINT64_C(0x9E3779B97F4A7C15) ^ ((uint64_t)n << 8) ^ kind;
  while (n >= 8) {
    uint64_t w;
    memcpy(&w, s, 8);
    h = (h ^ w) * UINT64_C(0xbf58476d1ce4e5b9);
    h ^= h >> 31;
    s += 8;
    n -= 8;
  }
  if (n) {
    /* The tail's bytes little-endian in w, as memcpy(&w, s, n) on a
     * zeroed w: two overlapping loads, not a byte loop. */
    const unsigned char *u = (const unsigned char *)s;
    uint64_t w;
    if (n >= 4) {
      uint32_t lo, hi;
      memcpy(&lo, u, 4);
      memcpy(&hi, u + n - 4, 4);
      w = lo | (uint64_t)hi << ((n - 4) * 8);
    } else {
      w = u[0] | (uint64_t)u[n / 2] << (n / 2 * 8) |
          (uint64_t)u[n - 1] << ((n - 1) * 8);
    }
    h = (h ^ w) * UINT64_C(0xbf58476d1ce4e5b9);
    h ^= h >> 31;
  }
  return mix(h);
}

static uint32_t hdr_check(const struct ipx__obj_hdr *h, uint64_t off) {
  uint64_t x = (uint64_t)h->kind | (uint64_t)h->align_log2 << 8 |
               (uint64_t)h->name_len << 16;
  x = mix((x ^ off << 24) * UINT64_C(0xbf58476d1ce4e5b9));
  x = mix((x ^ h->elem_size) * UINT64_C(0xbf58476d1ce4e5b9));
  x = mix((x ^ h->count) * UINT64_C(0xbf58476d1ce4e5b9));
  return (uint32_t)(x >> 32);
}

/* Where the elements start, from the block's offset (see the header). */
static uint64_t data_off_of(uint64_t off, unsigned name_len,
                            unsigned align_log2) {
  uint64_t a = (uint64_t)1 << align_log2;
  return ((off + HDR_SIZE + name_len + 1u + IPX__OBJ_BACK_SIZE + a - 1) &
          ~(a - 1)) -
         off;
}
static uint64_t hdr_data_off(const struct ipx__obj_hdr *h, uint64_t off) {
  return data_off_of(off, h->name_len, h->align_log2);
}
/* End of the elements, from the block's offset (valid headers only). */
static uint64_t hdr_end(const struct ipx__obj_hdr *h, uint64_t off) {
  return hdr_data_off(h, off) + h->elem_size * h->count;
}

static uint64_t slot_make(uint64_t hash, uint64_t off) {
  return (hash >> IPX__OBJ_SLOT_OFF_BITS) << IPX__OBJ_SLOT_OFF_BITS |
         (off >> 4);
}
static uint64_t slot_off(uint64_t e) { return (e & SLOT_OFF_MASK) << 4; }
static int slot_tag_ok(uint64_t e, uint64_t hash) {
  return (e >> IPX__OBJ_SLOT_OFF_BITS) == (hash >> IPX__OBJ_SLOT_OFF_BITS);
}

static int name_len(const char *name, size_t *len) {
  if (!name) return IPX_EINVAL;
  size_t n = strnlen(name, IPX_OBJECT_NAME_MAX + 1);
  if (n == 0 || n > IPX_OBJECT_NAME_MAX) return IPX_EBADNAME;
  *len = n;
  return 0;
}

/* The header at block offset `off` if it lies inside the heap, else NULL.
 * Safe on any value (read-only openers read offsets that may be torn). */
static struct ipx__obj_hdr *hdr_at(const ipx_segment_t *seg, uint64_t off) {
  if (off < hoff(seg) || (off & 15u) || off > seg->size ||
      seg->size - off < HDR_SIZE)
    return NULL;
  return (struct ipx__obj_hdr *)ipx__seg_at(seg, off);
}

/* Validation of a header copy taken from block offset `off`: the bounds
 * every reader needs, and with `full` the checksum too (check, repair and
 * addresses from the caller; the hot lookups skip it, the magic and the
 * name comparison already identify the block). */
static int hdr_valid_ex(const ipx_segment_t *seg,
                        const struct ipx__obj_hdr *h, uint64_t off, int full) {
  if (h->magic != obj_magic(off)) return 0;
  if (h->kind < IPX_OBJECT_NAMED || h->kind > IPX__OBJ_TABLE) return 0;
  if (h->state != IPX__OBJ_CONSTRUCTING && h->state != IPX__OBJ_READY) return 0;
  if (h->align_log2 < 4 || h->align_log2 > 12 || h->elem_size == 0) return 0;
  /* off <= size - HDR_SIZE (hdr_at), so neither side overflows. */
  uint64_t room = seg->size - off, doff = hdr_data_off(h, off), bytes;
  if (doff > room || __builtin_mul_overflow(h->elem_size, h->count, &bytes) ||
      bytes > room - doff)
    return 0;
  return !full || h->check == hdr_check(h, off);
}

static int hdr_valid(const ipx_segment_t *seg, const struct ipx__obj_hdr *h,
                     uint64_t off) {
  return hdr_valid_ex(seg, h, off, 1);
}

static void hdr_copy(struct ipx__obj_hdr *dst, const struct ipx__obj_hdr *src) {
  memcpy(dst, (const void *)src, sizeof *dst);
}

/* The hash of a header's name (lock held, or a validated header). */
static uint64_t hdr_hash(const struct ipx__obj_hdr *h) {
  return obj_hash(h->kind, (const char *)(h + 1), h->name_len);
}

/* ---- the table ------------------------------------------------------- */

/* The slots of the current table, bounds-checked; NULL when there is no
 * table or the root does not describe a sane one. */
static uint64_t *table_slots(const ipx_segment_t *seg,
                             const struct ipx__obj_root *rt, uint64_t *mask) {
  uint64_t t = rt->table, m = rt->mask;
  const struct ipx__obj_hdr *at = t ? hdr_at(seg, t) : NULL;
  if (!at) return NULL;
  struct ipx__obj_hdr th;
  hdr_copy(&th, at);
  if ((m & (m + 1)) || m + 1 < IPX__OBJ_MIN_SLOTS || m > (seg->size >> 3) ||
      th.kind != IPX__OBJ_TABLE || th.count != m + 1 || th.align_log2 < 4 ||
      th.align_log2 > 12)
    return NULL;
  uint64_t doff = hdr_data_off(&th, t);
  if (doff > seg->size - t || (seg->size - t - doff) / 8 < m + 1)
    return NULL;
  *mask = m;
  return (uint64_t *)ipx__seg_at(seg, t + doff);
}

/* The slots for reading only: the root's table and mask bounds-checked
 * against the segment, the table's header not read.  Enough for a probe
 * to stay inside the segment and terminate; whoever writes slots uses
 * table_slots, and check() validates the table header itself. */
static const uint64_t *table_slots_read(const ipx_segment_t *seg,
                                        const struct ipx__obj_root *rt,
                                        uint64_t *mask) {
  uint64_t t = rt->table, m = rt->mask;
  /* A TABLE block's slots start right after a header with no name. */
  uint64_t doff = data_off_of(0, 0, 4);
  if (!t || !hdr_at(seg, t) || (m & (m + 1)) || m + 1 < IPX__OBJ_MIN_SLOTS ||
      m > (seg->size >> 3) || doff > seg->size - t ||
      (seg->size - t - doff) / 8 < m + 1)
    return NULL;
  *mask = m;
  return (const uint64_t *)ipx__seg_at(seg, t + doff);
}

struct hit {
  uint64_t off;           /* block offset, 0 if not found */
  uint64_t slot;          /* slot index */
  struct ipx__obj_hdr h;  /* the header as compared (valid when off) */
};

/* Probe for (kind, name).  Matches headers in any state.  Bounded and
 * bounds-checked, so it terminates on garbage.  Compares a copy of each
 * candidate header, so fields a concurrent writer changes are read once. */
static struct hit lookup(const ipx_segment_t *seg,
                         const struct ipx__obj_root *rt, unsigned kind,
                         const char *name, size_t len, uint64_t hash) {
  /* res.h is meaningful only with res.off set, and is left as it is
   * otherwise: zeroing it costs the find path a few percent. */
  struct hit res;
  res.off = 0;
  res.slot = 0;
  uint64_t mask;
  const uint64_t *slots = table_slots_read(seg, rt, &mask);
  /* cppcheck-suppress uninitvar */
  if (!slots) return res;
  for (uint64_t i = 0; i <= mask; i++) {
    uint64_t idx = (hash + i) & mask;
    uint64_t e = __atomic_load_n(&slots[idx], __ATOMIC_RELAXED);
    if (!e) break;
    if (!slot_tag_ok(e, hash)) continue;
    uint64_t off = slot_off(e);
    const struct ipx__obj_hdr *h = hdr_at(seg, off);
    if (!h) continue;
    /* A header not at a line's start, a longer name or the elements reach
     * into the next cache line: fetch it together with the header's. */
    __builtin_prefetch((const char *)h + 64);
    hdr_copy(&res.h, h);
    if (res.h.magic != obj_magic(off) || res.h.kind != kind ||
        res.h.name_len != len || seg->size - off - HDR_SIZE < len)
      continue;
    if (memcmp((const char *)(h + 1), name, len) == 0) {
      res.off = off;
      res.slot = idx;
      return res;
    }
  }
  return res;
}

/* The full hash of the name behind slot e, recomputed from the header
 * (format 2 does not store it; the lock holder is the only caller).  A
 * slot whose header or name would lie outside the segment (a damaged
 * table) keeps its own tag bits and home 0 instead of being read. */
static uint64_t slot_hash(const ipx_segment_t *seg, uint64_t e) {
  uint64_t off = slot_off(e);
  const struct ipx__obj_hdr *h = hdr_at(seg, off);
  if (!h || seg->size - off - HDR_SIZE < h->name_len)
    return (e >> IPX__OBJ_SLOT_OFF_BITS) << IPX__OBJ_SLOT_OFF_BITS;
  return hdr_hash(h);
}

static void slot_insert(uint64_t *slots, uint64_t mask, uint64_t hash,
                        uint64_t off) {
  uint64_t idx = hash & mask;
  while (slots[idx]) idx = (idx + 1) & mask;
  __atomic_store_n(&slots[idx], slot_make(hash, off), __ATOMIC_RELAXED);
}

/* Backward-shift deletion: no tombstones, clusters stay short. */
static void slot_delete(const ipx_segment_t *seg, uint64_t *slots,
                        uint64_t mask, uint64_t i) {
  uint64_t j = i;
  for (;;) {
    j = (j + 1) & mask;
    uint64_t e = slots[j];
    if (!e) break;
    uint64_t home = slot_hash(seg, e) & mask;
    /* Move e back into the hole unless its home lies cyclically in (i, j]. */
    int stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
    if (!stays) {
      __atomic_store_n(&slots[i], e, __ATOMIC_RELAXED);
      i = j;
    }
  }
  __atomic_store_n(&slots[i], 0, __ATOMIC_RELAXED);
}

/* ---- blocks ---------------------------------------------------------- */

static unsigned log2u(size_t a) {
  unsigned l = 0;
  while (((size_t)1 << l) < a) l++;
  return l;
}

/* Allocate and label a block (busy already raised).  The allocator writes
 * the offset straight into root.pending, so a death right after the
 * allocation leaves the block findable by the repair. */
static int block_new(ipx_segment_t *seg, struct ipx__obj_root *rt,
                     unsigned kind, const char *name, size_t len,
                     size_t elem_size, size_t align, size_t count,
                     uint64_t *off_out, unsigned char **data) {
  uint64_t bytes;
  if (__builtin_mul_overflow((uint64_t)elem_size, (uint64_t)count, &bytes))
    return IPX_ENOMEM;
  /* Blocks are 16-aligned: the elements start at most align - 16 bytes
   * after the 16-aligned end of the name and back link. */
  uint64_t head = (HDR_SIZE + len + 1u + IPX__OBJ_BACK_SIZE + 15u) &
                  ~(uint64_t)15;
  uint64_t slack = align > 16 ? align - 16 : 0;
  uint64_t total;
  if (__builtin_add_overflow(bytes, head + slack, &total) ||
      total > ipx__seg_heap_size(seg))
    return IPX_ENOMEM;
  rt->pending = 0;
  int r = ipx__heap_alloc_placed(seg->base, hoff(seg), (size_t)total,
                                 &rt->pending, ipx__seg_heap_pages(seg));
  if (r) return r;
  uint64_t off = rt->pending;
  unsigned char *blk = ipx__seg_at(seg, off);
  struct ipx__obj_hdr *h = (struct ipx__obj_hdr *)(void *)blk;
  h->magic = 0;
  h->state = IPX__OBJ_CONSTRUCTING;
  h->kind = (uint8_t)kind;
  h->align_log2 = (uint8_t)log2u(align);
  h->name_len = (uint8_t)len;
  h->elem_size = elem_size;
  h->count = count;
  h->check = hdr_check(h, off);
  uint64_t doff = hdr_data_off(h, off);
  if (len) memcpy(blk + HDR_SIZE, name, len);
  blk[HDR_SIZE + len] = 0;
  uint16_t back = (uint16_t)(doff / 16);
  memcpy(blk + doff - IPX__OBJ_BACK_SIZE, &back, IPX__OBJ_BACK_SIZE);
  __atomic_store_n(&h->magic, obj_magic(off), __ATOMIC_RELEASE);
  rt->pending = 0;
  *off_out = off;
  *data = blk + doff;
  return 0;
}

/* Unmark and free the block at off (busy already raised). */
static void block_free(ipx_segment_t *seg, struct ipx__obj_root *rt,
                       uint64_t off) {
  struct ipx__obj_hdr *h = ipx__seg_at(seg, off);
  rt->pending = off;
  __atomic_store_n(&h->magic, 0, __ATOMIC_RELEASE);
  ipx__heap_free(seg->base, hoff(seg), off);
  rt->pending = 0;
}

/* A new table of `slots` slots with every finished or unfinished entry of
 * the current one; the old table is freed. */
static int table_resize(ipx_segment_t *seg, struct ipx__obj_root *rt,
                        uint64_t slots_n) {
  uint64_t off;
  unsigned char *data;
  rt->busy++;
  int r = block_new(seg, rt, IPX__OBJ_TABLE, NULL, 0, 8, 16, (size_t)slots_n,
                    &off, &data);
  if (r) {
    rt->busy--;
    return r;
  }
  uint64_t *ns = (uint64_t *)(void *)data, nmask = slots_n - 1;
  memset(ns, 0, slots_n * 8);
  struct ipx__obj_hdr *th = ipx__seg_at(seg, off);
  th->state = IPX__OBJ_READY;
  uint64_t omask = 0;
  uint64_t *os = table_slots(seg, rt, &omask);
  if (os)
    for (uint64_t i = 0; i <= omask; i++)
      if (os[i])
        slot_insert(ns, nmask, slot_hash(seg, os[i]), slot_off(os[i]));
  uint64_t old = rt->table;
  rt->table = off;
  rt->mask = nmask;
  if (old) block_free(seg, rt, old);
  rt->busy--;
  return 0;
}

static uint64_t slots_for(uint64_t n) {
  uint64_t s = IPX__OBJ_MIN_SLOTS;
  while (s / 2 < n) s *= 2;
  return s;
}

static int ensure_room(ipx_segment_t *seg, struct ipx__obj_root *rt,
                       uint64_t n) {
  /* A root naming a table whose header does not hold up: nothing may be
   * added to it, and growing it would drop its entries. */
  uint64_t m;
  if (rt->table && !table_slots(seg, rt, &m)) return IPX_ECORRUPT;
  if (n > (ipx__seg_heap_size(seg) >> 4)) return IPX_ENOMEM;
  if (rt->table && n <= (rt->mask + 1) / 2) return 0;
  return table_resize(seg, rt, slots_for(n));
}

/* ---- locking --------------------------------------------------------- */

/* Root check under the lock; an all-zero root (a segment no index has
 * touched yet) is given its magic when `write`. */
static int root_ok(struct ipx__obj_root *rt, int write) {
  if (rt->magic == IPX__OBJ_ROOT_MAGIC)
    return rt->version == IPX__OBJ_VERSION ? 0 : IPX_EVERSION;
  static const struct ipx__obj_root zero;
  if (memcmp(rt, &zero, sizeof zero) != 0) return IPX_ECORRUPT;
  if (write) {
    rt->magic = IPX__OBJ_ROOT_MAGIC;
    rt->version = IPX__OBJ_VERSION;
  }
  return 0;
}

static int lock(ipx_segment_t *seg, struct ipx__obj_root **rt, int write) {
  int r = ipx__seg_lock(seg);
  if (r) return r;
  *rt = root_of(seg);
  r = root_ok(*rt, write);
  if (r) ipx__seg_unlock(seg);
  return r;
}

#define RO_DEADLINE_NS IPX_SEC

/* ---- construct / find / destroy ------------------------------------ */

static int check_kind_name(ipx_object_kind_t kind, const char *name,
                           size_t *len) {
  if (kind == IPX_OBJECT_ANONYMOUS) {
    *len = 0;
    return name ? IPX_EINVAL : 0;
  }
  if (kind != IPX_OBJECT_NAMED && kind != IPX_OBJECT_UNIQUE) return IPX_EINVAL;
  return name_len(name, len);
}

static int check_shape(size_t elem_size, size_t *align) {
  if (elem_size == 0) return IPX_EINVAL;
  if (*align == 0) *align = IPX_OBJECT_DEFAULT_ALIGN;
  if ((*align & (*align - 1)) || *align > IPX_OBJECT_MAX_ALIGN)
    return IPX_EINVAL;
  if (*align < IPX_OBJECT_DEFAULT_ALIGN) *align = IPX_OBJECT_DEFAULT_ALIGN;
  return 0;
}

static void put_ptr(void **out, void *p) { memcpy(out, &p, sizeof p); }

/* Lock held, name known to be absent. */
static int construct_locked(ipx_segment_t *seg, struct ipx__obj_root *rt,
                            unsigned kind, const char *name, size_t len,
                            uint64_t hash, size_t elem_size, size_t align,
                            size_t count, ipx_object_init_fn init, void *ctx,
                            void **out) {
  int r;
  if (kind != IPX_OBJECT_ANONYMOUS && (r = ensure_room(seg, rt, rt->used + 1)))
    return r;
  rt->busy++;
  uint64_t off;
  unsigned char *data;
  r = block_new(seg, rt, kind, name, len, elem_size, align, count, &off, &data);
  if (r) {
    rt->busy--;
    return r;
  }
  if (kind != IPX_OBJECT_ANONYMOUS) {
    uint64_t mask;
    uint64_t *slots = table_slots(seg, rt, &mask);
    if (!slots) { /* checked by ensure_room; never trust it twice */
      block_free(seg, rt, off);
      rt->busy--;
      return IPX_ECORRUPT;
    }
    slot_insert(slots, mask, hash, off);
    rt->used++;
  }
  memset(data, 0, elem_size * count);
  if (init)
    for (size_t i = 0; i < count; i++) {
      r = init(data + i * elem_size, i, ctx);
      if (r) break;
    }
  if (r) {
    /* Abandoned: the callback may have grown the table meanwhile. */
    if (kind != IPX_OBJECT_ANONYMOUS) {
      struct hit hit = lookup(seg, rt, kind, name, len, hash);
      uint64_t mask;
      uint64_t *slots = table_slots(seg, rt, &mask);
      if (hit.off == off && slots) {
        slot_delete(seg, slots, mask, hit.slot);
        rt->used--;
      }
    }
    block_free(seg, rt, off);
    rt->busy--;
    return r;
  }
  struct ipx__obj_hdr *h = ipx__seg_at(seg, off);
  __atomic_store_n(&h->state, IPX__OBJ_READY, __ATOMIC_RELEASE);
  if (kind == IPX_OBJECT_NAMED) rt->named++;
  if (kind == IPX_OBJECT_UNIQUE) rt->unique++;
  rt->busy--;
  put_ptr(out, data);
  return 0;
}

int ipx_object_construct(ipx_segment_t *seg, ipx_object_kind_t kind,
                         const char *name, size_t elem_size, size_t align,
                         size_t count, ipx_object_init_fn init, void *ctx,
                         void **out) {
  size_t len;
  if (!seg || !out) return IPX_EINVAL;
  int r = check_kind_name(kind, name, &len);
  if (r || (r = check_shape(elem_size, &align))) return r;
  if (seg->access == IPX_READ_ONLY) return IPX_EREADONLY;
  uint64_t hash = len ? obj_hash(kind, name, len) : 0;
  struct ipx__obj_root *rt;
  if ((r = lock(seg, &rt, 1))) return r;
  if (kind != IPX_OBJECT_ANONYMOUS && rt->walking)
    r = IPX_EBUSY;
  else if (kind != IPX_OBJECT_ANONYMOUS &&
           lookup(seg, rt, kind, name, len, hash).off)
    r = IPX_EEXIST;
  else
    r = construct_locked(seg, rt, kind, name, len, hash, elem_size, align,
                         count, init, ctx, out);
  ipx__seg_unlock(seg);
  return r;
}

struct found {
  void *addr;
  uint64_t elem_size, count;
  int ready;
};

/* What a hit found: its header copy validated (bounds; the magic and the
 * name comparison identify the block, so no checksum here). */
static struct found found_at(const ipx_segment_t *seg, const struct hit *hit) {
  struct found f = {NULL, 0, 0, 0};
  const struct ipx__obj_hdr *h = &hit->h;
  if (!hit->off || !hdr_valid_ex(seg, h, hit->off, 0)) return f;
  f.addr = ipx__seg_at(seg, hit->off + hdr_data_off(h, hit->off));
  f.elem_size = h->elem_size;
  f.count = h->count;
  f.ready = h->state == IPX__OBJ_READY;
  return f;
}

static int found_result(const struct found *f, size_t elem_size, void **out,
                        size_t *count) {
  if (!f->addr || !f->ready) return IPX_ENOTFOUND;
  if (elem_size && f->elem_size != elem_size) return IPX_EWRONGKIND;
  put_ptr(out, f->addr);
  if (count) *count = (size_t)f->count;
  return 0;
}

/* Read-only openers: run `fn` on a consistent moment without the lock. */
typedef int (*ro_fn)(const ipx_segment_t *seg, const struct ipx__obj_root *rt,
                     void *arg);
static int ro_read(const ipx_segment_t *seg, ro_fn fn, void *arg) {
  uint64_t deadline = ipx_deadline_after(RO_DEADLINE_NS);
  for (;;) {
    uint64_t gen;
    int r = ipx__seg_read_begin(seg, &gen, deadline);
    if (r) return r;
    struct ipx__obj_root rt;
    memcpy(&rt, (const void *)root_of(seg), sizeof rt);
    if (rt.magic == 0)
      r = IPX_ENOTFOUND;
    else if (rt.magic != IPX__OBJ_ROOT_MAGIC)
      r = IPX_ECORRUPT;
    else if (rt.version != IPX__OBJ_VERSION)
      r = IPX_EVERSION;
    else
      r = fn(seg, &rt, arg);
    if (!ipx__seg_read_retry(seg, gen)) return r;
    if (ipx_now() >= deadline) return IPX_EBUSY;
  }
}

struct find_arg {
  unsigned kind;
  const char *name;
  size_t len;
  uint64_t hash;
  struct found f;
};

static int ro_find(const ipx_segment_t *seg, const struct ipx__obj_root *rt,
                   void *arg) {
  struct find_arg *a = arg;
  struct hit hit = lookup(seg, rt, a->kind, a->name, a->len, a->hash);
  a->f = found_at(seg, &hit);
  return 0;
}

/* A read-write opener's find without the lock: one pass inside the
 * generation protocol, exactly as a read-only opener reads (every offset
 * and header bounds-checked, the result used only if no lock holder came
 * in meanwhile).  1 when *f holds the answer; 0 sends the caller to the
 * lock: a holder is inside (the caller itself included: finds from an init
 * callback or atomic_func), a holder died (the generation stays odd until
 * the lock's repair), a repair is due, the segment is marked corrupt, the
 * root is not a current index (the lock path names the error), or the
 * generation moved.  Copy-on-write views always take the lock. */
static int rw_find_unlocked(ipx_segment_t *seg, struct find_arg *a) {
  if (seg->access != IPX_READ_WRITE) return 0;
  const struct ipx__seg_header *sh = ipx__seg_hdr(seg);
  uint64_t gen = __atomic_load_n(&sh->generation, __ATOMIC_ACQUIRE);
  if ((gen & 1) || (__atomic_load_n(&sh->flags, __ATOMIC_RELAXED) &
                    (IPX__SEG_F_CORRUPT | IPX__SEG_F_REPAIR)))
    return 0;
  struct ipx__obj_root rt;
  memcpy(&rt, (const void *)root_of(seg), sizeof rt);
  if (rt.magic != IPX__OBJ_ROOT_MAGIC || rt.version != IPX__OBJ_VERSION)
    return 0;
  ro_find(seg, &rt, a);
  return !ipx__seg_read_retry(seg, gen);
}

int ipx_object_find(ipx_segment_t *seg, ipx_object_kind_t kind,
                    const char *name, size_t elem_size, void **out,
                    size_t *count) {
  size_t len;
  if (!seg || !out || kind == IPX_OBJECT_ANONYMOUS) return IPX_EINVAL;
  int r = check_kind_name(kind, name, &len);
  if (r) return r;
  struct find_arg a = {kind, name, len, obj_hash(kind, name, len),
                       {NULL, 0, 0, 0}};
  if (seg->access == IPX_READ_ONLY) {
    r = ro_read(seg, ro_find, &a);
    if (r && r != IPX_ENOTFOUND) return r;
  } else if (!rw_find_unlocked(seg, &a)) {
    memset(&a.f, 0, sizeof a.f);
    struct ipx__obj_root *rt;
    if ((r = lock(seg, &rt, 0))) return r;
    struct hit hit = lookup(seg, rt, kind, name, len, a.hash);
    a.f = found_at(seg, &hit);
    ipx__seg_unlock(seg);
  }
  return found_result(&a.f, elem_size, out, count);
}

int ipx_object_find_or_construct(ipx_segment_t *seg, ipx_object_kind_t kind,
                                 const char *name, size_t elem_size,
                                 size_t align, size_t count,
                                 ipx_object_init_fn init, void *ctx,
                                 void **out, size_t *count_out,
                                 int *constructed) {
  size_t len;
  if (!seg || !out || kind == IPX_OBJECT_ANONYMOUS) return IPX_EINVAL;
  int r = check_kind_name(kind, name, &len);
  if (r || (r = check_shape(elem_size, &align))) return r;
  if (constructed) *constructed = 0;
  if (seg->access == IPX_READ_ONLY) {
    r = ipx_object_find(seg, kind, name, elem_size, out, count_out);
    return r == IPX_ENOTFOUND ? IPX_EREADONLY : r;
  }
  uint64_t hash = obj_hash(kind, name, len);
  struct ipx__obj_root *rt;
  if ((r = lock(seg, &rt, 1))) return r;
  struct hit hit = lookup(seg, rt, kind, name, len, hash);
  if (hit.off) {
    struct found f = found_at(seg, &hit);
    /* Unfinished under our own lock: asked from its own init callback. */
    r = f.addr && !f.ready ? IPX_EBUSY
                           : found_result(&f, elem_size, out, count_out);
  } else if (rt->walking) {
    r = IPX_EBUSY;
  } else {
    r = construct_locked(seg, rt, kind, name, len, hash, elem_size, align,
                         count, init, ctx, out);
    if (!r) {
      if (count_out) *count_out = count;
      if (constructed) *constructed = 1;
    }
  }
  ipx__seg_unlock(seg);
  return r;
}

/* Lock held; off is a finished object's block.  `slot` its slot, or
 * UINT64_MAX for an anonymous object.  IPX_ECORRUPT, with nothing
 * changed, when the table the slot is in does not hold up (a lookup only
 * bounds-checks it). */
static int destroy_locked(ipx_segment_t *seg, struct ipx__obj_root *rt,
                          uint64_t off, uint64_t slot) {
  struct ipx__obj_hdr *h = ipx__seg_at(seg, off);
  unsigned kind = h->kind;
  uint64_t mask = 0;
  uint64_t *slots = NULL;
  if (slot != UINT64_MAX &&
      (!(slots = table_slots(seg, rt, &mask)) || slot > mask))
    return IPX_ECORRUPT;
  rt->busy++;
  rt->pending = off;
  /* The commit point: from here on a repair frees the block. */
  __atomic_store_n(&h->magic, 0, __ATOMIC_RELEASE);
  if (slots) {
    slot_delete(seg, slots, mask, slot);
    rt->used--;
  }
  if (kind == IPX_OBJECT_NAMED) rt->named--;
  if (kind == IPX_OBJECT_UNIQUE) rt->unique--;
  ipx__heap_free(seg->base, hoff(seg), off);
  rt->pending = 0;
  rt->busy--;
  return 0;
}

int ipx_object_destroy(ipx_segment_t *seg, ipx_object_kind_t kind,
                       const char *name, size_t elem_size) {
  size_t len;
  if (!seg || kind == IPX_OBJECT_ANONYMOUS) return IPX_EINVAL;
  int r = check_kind_name(kind, name, &len);
  if (r) return r;
  if (seg->access == IPX_READ_ONLY) return IPX_EREADONLY;
  uint64_t hash = obj_hash(kind, name, len);
  struct ipx__obj_root *rt;
  if ((r = lock(seg, &rt, 0))) return r;
  struct hit hit = lookup(seg, rt, kind, name, len, hash);
  struct found f = found_at(seg, &hit);
  if (!f.addr || !f.ready)
    r = IPX_ENOTFOUND;
  else if (elem_size && f.elem_size != elem_size)
    r = IPX_EWRONGKIND;
  else if (rt->walking)
    r = IPX_EBUSY;
  else
    r = destroy_locked(seg, rt, hit.off, hit.slot);
  ipx__seg_unlock(seg);
  return r;
}

/* ---- from an address ------------------------------------------------- */

/* The block offset of the finished object whose first element is at addr,
 * with its header copied to *h; 0 with *err set otherwise. */
static uint64_t instance_of(const ipx_segment_t *seg, const void *addr,
                            struct ipx__obj_hdr *h, int *err) {
  uintptr_t a = (uintptr_t)addr, b = (uintptr_t)seg->base;
  *err = IPX_ERANGE;
  if (a < b || a - b >= seg->size) return 0;
  uint64_t doff = (uint64_t)(a - b);
  *err = IPX_ENOTFOUND;
  if ((doff & 15u) || doff < hoff(seg) + HDR_SIZE + 16u) return 0;
  uint16_t back;
  memcpy(&back, (const unsigned char *)addr - IPX__OBJ_BACK_SIZE,
         IPX__OBJ_BACK_SIZE);
  uint64_t dist = (uint64_t)back * 16u;
  if (dist < HDR_SIZE + 16u || dist > doff) return 0;
  uint64_t off = doff - dist;
  if (!hdr_at(seg, off)) return 0;
  hdr_copy(h, ipx__seg_at(seg, off));
  if (!hdr_valid(seg, h, off) || h->kind == IPX__OBJ_TABLE ||
      h->state != IPX__OBJ_READY || off + hdr_data_off(h, off) != doff)
    return 0;
  *err = 0;
  return off;
}

static void info_fill(const ipx_segment_t *seg, const struct ipx__obj_hdr *h,
                      uint64_t off, ipx_object_info_t *info) {
  info->kind = (ipx_object_kind_t)h->kind;
  info->address = ipx__seg_at(seg, off + hdr_data_off(h, off));
  info->elem_size = (size_t)h->elem_size;
  info->count = (size_t)h->count;
  info->align = (size_t)1 << h->align_log2;
  info->name_len = h->name_len;
  memcpy(info->name, (const char *)ipx__seg_at(seg, off + HDR_SIZE),
         h->name_len);
  info->name[h->name_len] = 0;
}

struct query_arg {
  const void *addr;
  ipx_object_info_t *info;
};

static int ro_query(const ipx_segment_t *seg, const struct ipx__obj_root *rt,
                    void *arg) {
  (void)rt;
  struct query_arg *q = arg;
  struct ipx__obj_hdr h;
  int err;
  uint64_t off = instance_of(seg, q->addr, &h, &err);
  if (off) info_fill(seg, &h, off, q->info);
  return err;
}

int ipx_object_query(ipx_segment_t *seg, const void *addr,
                     ipx_object_info_t *info) {
  if (!seg || !addr || !info) return IPX_EINVAL;
  struct query_arg q = {addr, info};
  if (seg->access == IPX_READ_ONLY) {
    return ro_read(seg, ro_query, &q);
  }
  struct ipx__obj_root *rt;
  int r = lock(seg, &rt, 0);
  if (r) return r;
  r = ro_query(seg, rt, &q);
  ipx__seg_unlock(seg);
  return r;
}

int ipx_object_destroy_ptr(ipx_segment_t *seg, void *addr) {
  if (!seg || !addr) return IPX_EINVAL;
  if (seg->access == IPX_READ_ONLY) return IPX_EREADONLY;
  struct ipx__obj_root *rt;
  int r = lock(seg, &rt, 0);
  if (r) return r;
  struct ipx__obj_hdr h;
  uint64_t off = instance_of(seg, addr, &h, &r);
  size_t us;
  if (off && ipx__heap_usable_size(seg->base, hoff(seg), off, &us) == 0 &&
      us >= hdr_end(&h, off)) {
    if (h.kind == IPX_OBJECT_ANONYMOUS) {
      r = destroy_locked(seg, rt, off, UINT64_MAX);
    } else if (rt->walking) {
      r = IPX_EBUSY;
    } else {
      const char *name = ipx__seg_at(seg, off + HDR_SIZE);
      struct hit hit = lookup(seg, rt, h.kind, name, h.name_len,
                              obj_hash(h.kind, name, h.name_len));
      if (hit.off == off)
        r = destroy_locked(seg, rt, off, hit.slot);
      else
        r = IPX_ECORRUPT; /* a finished object missing from the index */
    }
  } else if (off) {
    r = IPX_ENOTFOUND;
  }
  ipx__seg_unlock(seg);
  return r;
}

/* ---- iteration, counts, reserve ------------------------------------- */

struct walk_arg {
  unsigned kinds;
  ipx_object_visit_fn fn; /* called directly (locked walk) */
  void *ctx;
  ipx_object_info_t *snap; /* or collected (read-only walk) */
  size_t n, cap;
  int oom;
};

static int walk_table(const ipx_segment_t *seg, const struct ipx__obj_root *rt,
                      void *arg) {
  struct walk_arg *w = arg;
  w->n = 0;
  uint64_t mask;
  uint64_t *slots = table_slots(seg, rt, &mask);
  if (!slots) return 0;
  for (uint64_t i = 0; i <= mask; i++) {
    uint64_t e = __atomic_load_n(&slots[i], __ATOMIC_RELAXED);
    if (!e) continue;
    uint64_t off = slot_off(e);
    if (!hdr_at(seg, off)) continue;
    struct ipx__obj_hdr h;
    hdr_copy(&h, ipx__seg_at(seg, off));
    if (!hdr_valid(seg, &h, off) || h.state != IPX__OBJ_READY ||
        h.kind > IPX_OBJECT_UNIQUE || !(w->kinds & (1u << h.kind)))
      continue;
    if (w->fn) {
      ipx_object_info_t info;
      info_fill(seg, &h, off, &info);
      int r = w->fn(w->ctx, &info);
      if (r) return r;
      continue;
    }
    if (w->n == w->cap) {
      size_t nc = w->cap ? w->cap * 2 : 64;
      ipx_object_info_t *p = realloc(w->snap, nc * sizeof *p);
      if (!p) {
        w->oom = 1;
        return 0;
      }
      w->snap = p;
      w->cap = nc;
    }
    info_fill(seg, &h, off, &w->snap[w->n++]);
  }
  return 0;
}

int ipx_object_foreach(ipx_segment_t *seg, unsigned kinds,
                       ipx_object_visit_fn fn, void *ctx) {
  if (!seg || !fn || !(kinds & (IPX_OBJECT_NAMED_BIT | IPX_OBJECT_UNIQUE_BIT)))
    return IPX_EINVAL;
  struct walk_arg w = {kinds, NULL, ctx, NULL, 0, 0, 0};
  int r;
  if (seg->access == IPX_READ_ONLY) {
    r = ro_read(seg, walk_table, &w);
    if (r == IPX_ENOTFOUND) r = 0; /* no index yet: nothing to visit */
    if (!r && w.oom) r = -ENOMEM;
    for (size_t i = 0; !r && i < w.n; i++) r = fn(ctx, &w.snap[i]);
    free(w.snap);
    return r;
  }
  struct ipx__obj_root *rt;
  if ((r = lock(seg, &rt, 0))) return r;
  w.fn = fn;
  rt->walking++;
  r = walk_table(seg, rt, &w);
  rt->walking--;
  ipx__seg_unlock(seg);
  return r;
}

struct count_arg {
  unsigned kind;
  uint64_t n;
};

static int ro_count(const ipx_segment_t *seg, const struct ipx__obj_root *rt,
                    void *arg) {
  (void)seg;
  struct count_arg *c = arg;
  c->n = c->kind == IPX_OBJECT_NAMED ? rt->named : rt->unique;
  return 0;
}

int ipx_object_count(ipx_segment_t *seg, ipx_object_kind_t kind,
                     uint64_t *out) {
  if (!seg || !out ||
      (kind != IPX_OBJECT_NAMED && kind != IPX_OBJECT_UNIQUE))
    return IPX_EINVAL;
  struct count_arg c = {kind, 0};
  int r;
  if (seg->access == IPX_READ_ONLY) {
    r = ro_read(seg, ro_count, &c);
    if (r == IPX_ENOTFOUND) r = 0;
  } else {
    struct ipx__obj_root *rt;
    if ((r = lock(seg, &rt, 0))) return r;
    ro_count(seg, rt, &c);
    ipx__seg_unlock(seg);
  }
  if (!r) *out = c.n;
  return r;
}

int ipx_object_reserve(ipx_segment_t *seg, uint64_t n) {
  if (!seg) return IPX_EINVAL;
  if (seg->access == IPX_READ_ONLY) return IPX_EREADONLY;
  struct ipx__obj_root *rt;
  int r = lock(seg, &rt, 1);
  if (r) return r;
  r = rt->walking ? IPX_EBUSY : ensure_room(seg, rt, n);
  ipx__seg_unlock(seg);
  return r;
}

int ipx_segment_atomic_func(ipx_segment_t *seg, int (*fn)(void *ctx),
                            void *ctx) {
  if (!seg || !fn) return IPX_EINVAL;
  int r = ipx__seg_lock(seg);
  if (r) return r;
  r = fn(ctx);
  ipx__seg_unlock(seg);
  return r;
}

/* ---- the layer: init, repair, check, named count --------------------- */

static int obj_init(ipx_segment_t *seg) {
  struct ipx__obj_root *rt = root_of(seg);
  memset(rt, 0, sizeof *rt);
  rt->magic = IPX__OBJ_ROOT_MAGIC;
  rt->version = IPX__OBJ_VERSION;
  return 0;
}

struct scan {
  const ipx_segment_t *seg;
  uint64_t *off; /* blocks with a valid header */
  size_t n, cap;
  uint64_t pending;
  int pending_live; /* the pending block is allocated */
  int bad;          /* a valid magic over a damaged header */
  int oom;
};

/* Collect the blocks that carry a valid object magic. */
static int collect_block(void *ctx, uint64_t off, size_t usable,
                         int allocated) {
  struct scan *s = ctx;
  if (!allocated) return 0;
  if (off == s->pending) s->pending_live = 1;
  if (usable < HDR_SIZE) return 0;
  const struct ipx__obj_hdr *h = ipx__seg_at(s->seg, off);
  if (h->magic != obj_magic(off)) return 0;
  struct ipx__obj_hdr copy;
  hdr_copy(&copy, h);
  if (!hdr_valid(s->seg, &copy, off) || hdr_end(&copy, off) > usable) {
    s->bad = 1;
    return 0;
  }
  if (s->n == s->cap) {
    size_t nc = s->cap ? s->cap * 2 : 256;
    uint64_t *p = realloc(s->off, nc * sizeof *p);
    if (!p) {
      s->oom = 1;
      return 1;
    }
    s->off = p;
    s->cap = nc;
  }
  s->off[s->n++] = off;
  return 0;
}

/* Rebuild the table from the headers in the heap (lock held, previous
 * holder died inside an index operation).  Idempotent: a repair killed
 * midway leaves busy set and is simply run again. */
static int rebuild(ipx_segment_t *seg, struct ipx__obj_root *rt) {
  struct scan s = {seg, NULL, 0, 0, rt->pending, 0, 0, 0};
  int r = ipx__heap_walk(seg->base, hoff(seg), collect_block, &s);
  if (r || s.oom || s.bad) {
    free(s.off);
    return r < 0 ? r : s.oom ? -ENOMEM : IPX_ECORRUPT;
  }
  /* The block being allocated or freed when the holder died: free it
   * unless it carries a valid header (then the walk decides). */
  if (rt->pending && s.pending_live) {
    const struct ipx__obj_hdr *ph = ipx__seg_at(seg, rt->pending);
    if (ph->magic != obj_magic(rt->pending))
      ipx__heap_free(seg->base, hoff(seg), rt->pending);
  }
  rt->pending = 0;
  uint64_t need = 0, keep = 0;
  for (size_t i = 0; i < s.n; i++) {
    struct ipx__obj_hdr *h = ipx__seg_at(seg, s.off[i]);
    if (h->state == IPX__OBJ_READY &&
        (h->kind == IPX_OBJECT_NAMED || h->kind == IPX_OBJECT_UNIQUE))
      need++;
  }
  for (size_t i = 0; i < s.n; i++) {
    uint64_t off = s.off[i];
    struct ipx__obj_hdr *h = ipx__seg_at(seg, off);
    int drop = h->state != IPX__OBJ_READY;
    if (h->kind == IPX__OBJ_TABLE) {
      int fits = off == rt->table && h->count >= slots_for(need) &&
                 !(h->count & (h->count - 1));
      drop = !fits;
      if (fits) keep = off;
    }
    if (drop) block_free(seg, rt, off);
  }
  rt->table = 0;
  rt->mask = 0;
  if (keep) {
    rt->table = keep;
    rt->mask = ((struct ipx__obj_hdr *)ipx__seg_at(seg, keep))->count - 1;
  } else {
    uint64_t off;
    unsigned char *data;
    r = block_new(seg, rt, IPX__OBJ_TABLE, NULL, 0, 8, 16,
                  (size_t)slots_for(need), &off, &data);
    if (r) {
      free(s.off);
      return IPX_ECORRUPT;
    }
    ((struct ipx__obj_hdr *)ipx__seg_at(seg, off))->state = IPX__OBJ_READY;
    rt->table = off;
    rt->mask = slots_for(need) - 1;
  }
  uint64_t mask;
  uint64_t *slots = table_slots(seg, rt, &mask);
  if (!slots) {
    free(s.off);
    return IPX_ECORRUPT;
  }
  memset(slots, 0, (mask + 1) * 8);
  rt->used = rt->named = rt->unique = 0;
  for (size_t i = 0; i < s.n && !r; i++) {
    uint64_t off = s.off[i];
    struct ipx__obj_hdr *h = ipx__seg_at(seg, off);
    if (h->magic != obj_magic(off) || h->state != IPX__OBJ_READY ||
        (h->kind != IPX_OBJECT_NAMED && h->kind != IPX_OBJECT_UNIQUE))
      continue;
    const char *name = (const char *)(h + 1);
    uint64_t hash = hdr_hash(h);
    if (lookup(seg, rt, h->kind, name, h->name_len, hash).off) {
      r = IPX_ECORRUPT; /* two finished objects of one name */
      break;
    }
    slot_insert(slots, mask, hash, off);
    rt->used++;
    if (h->kind == IPX_OBJECT_NAMED) rt->named++;
    else rt->unique++;
  }
  free(s.off);
  if (!r) rt->busy = 0;
  return r;
}

static int obj_repair(ipx_segment_t *seg) {
  struct ipx__obj_root *rt = root_of(seg);
  int r = root_ok(rt, 0);
  if (r) return r;
  if (rt->magic == 0) return 0;
  rt->walking = 0;
  if (rt->busy == 0 && rt->pending == 0) return 0;
  return rebuild(seg, rt);
}

/* ---- check ----------------------------------------------------------- */

struct heap_count {
  const ipx_segment_t *seg;
  struct ipx__seg_report *r;
  uint64_t ready, tables;
};

static int count_block(void *ctx, uint64_t off, size_t usable, int allocated) {
  struct heap_count *hc = ctx;
  if (!allocated || usable < HDR_SIZE) return 0;
  const struct ipx__obj_hdr *h = ipx__seg_at(hc->seg, off);
  if (h->magic != obj_magic(off)) return 0;
  struct ipx__obj_hdr copy;
  hdr_copy(&copy, h);
  if (!hdr_valid(hc->seg, &copy, off) || hdr_end(&copy, off) > usable) {
    ipx__seg_problem(hc->r, "objects: damaged header at offset %llu",
                     (unsigned long long)off);
    return 0;
  }
  if (copy.kind == IPX__OBJ_TABLE) hc->tables++;
  else if (copy.state == IPX__OBJ_READY && copy.kind != IPX_OBJECT_ANONYMOUS)
    hc->ready++;
  return 0;
}

static int obj_check(ipx_segment_t *seg, struct ipx__seg_report *r) {
  struct ipx__obj_root rt;
  memcpy(&rt, (const void *)root_of(seg), sizeof rt);
  if (rt.magic == 0) {
    static const struct ipx__obj_root zero;
    if (memcmp(&rt, &zero, sizeof zero) != 0)
      ipx__seg_problem(r, "objects: index root has no magic but is not empty");
    return 0;
  }
  if (rt.magic != IPX__OBJ_ROOT_MAGIC || rt.version != IPX__OBJ_VERSION) {
    ipx__seg_problem(r, "objects: index root magic %#x version %u",
                     rt.magic, rt.version);
    return IPX_ECORRUPT;
  }
  int locked = seg->access != IPX_READ_ONLY;
  /* A lock holder never calls check between an allocation and its label,
   * so pending is 0 here unless an operation died (read-only: a writer
   * died and no writer repaired yet). */
  if (rt.pending || (!locked && rt.busy))
    ipx__seg_problem(r, "objects: an index operation was interrupted "
                        "(busy %u, pending %llu) and awaits repair",
                     rt.busy, (unsigned long long)rt.pending);
  if (rt.reserved)
    ipx__seg_problem(r, "objects: reserved root field is %#x", rt.reserved);
  if (!rt.table && rt.mask)
    ipx__seg_problem(r, "objects: no index table but a mask of %llu",
                     (unsigned long long)rt.mask);
  uint64_t ready = 0, named = 0, unique = 0, used = 0, building = 0;
  if (rt.table) {
    uint64_t mask;
    uint64_t *slots = table_slots(seg, &rt, &mask);
    struct ipx__obj_hdr th;
    if (!slots || (hdr_copy(&th, ipx__seg_at(seg, rt.table)),
                   !hdr_valid(seg, &th, rt.table))) {
      ipx__seg_problem(r, "objects: index table at offset %llu is damaged",
                       (unsigned long long)rt.table);
      return IPX_ECORRUPT;
    }
    for (uint64_t i = 0; i <= mask; i++) {
      uint64_t e = __atomic_load_n(&slots[i], __ATOMIC_RELAXED);
      if (!e) continue;
      used++;
      uint64_t off = slot_off(e);
      struct ipx__obj_hdr h;
      if (!hdr_at(seg, off) ||
          (hdr_copy(&h, ipx__seg_at(seg, off)), !hdr_valid(seg, &h, off)) ||
          (h.kind != IPX_OBJECT_NAMED && h.kind != IPX_OBJECT_UNIQUE)) {
        ipx__seg_problem(r, "objects: slot %llu points to offset %llu, "
                            "which holds no named or unique object",
                         (unsigned long long)i, (unsigned long long)off);
        continue;
      }
      uint64_t hash = obj_hash(
          h.kind, (const char *)ipx__seg_at(seg, off + HDR_SIZE), h.name_len);
      if (!slot_tag_ok(e, hash)) {
        ipx__seg_problem(r, "objects: slot %llu: hash does not match the name",
                         (unsigned long long)i);
        continue;
      }
      struct hit hit = lookup(seg, &rt, h.kind,
                              (const char *)ipx__seg_at(seg, off + HDR_SIZE),
                              h.name_len, hash);
      if (hit.off != off || hit.slot != i)
        ipx__seg_problem(r, "objects: \"%.*s\" (slot %llu) is unreachable "
                            "or has a duplicate",
                         (int)(h.name_len > 60 ? 60 : h.name_len),
                         (const char *)ipx__seg_at(seg, off + HDR_SIZE),
                         (unsigned long long)i);
      if (h.state == IPX__OBJ_READY) {
        ready++;
        if (h.kind == IPX_OBJECT_NAMED) named++;
        else unique++;
      } else {
        building++;
      }
    }
  }
  if (used != rt.used || named != rt.named || unique != rt.unique)
    ipx__seg_problem(r, "objects: counters say %llu slots, %llu named, %llu "
                        "unique; the table holds %llu, %llu, %llu",
                     (unsigned long long)rt.used, (unsigned long long)rt.named,
                     (unsigned long long)rt.unique, (unsigned long long)used,
                     (unsigned long long)named, (unsigned long long)unique);
  if (building && rt.busy == 0)
    ipx__seg_problem(r, "objects: %llu objects under construction with no "
                        "operation in progress",
                     (unsigned long long)building);
  if (locked) {
    /* The table is a cache of the headers: compare it with the heap. */
    struct heap_count hc = {seg, r, 0, 0};
    if (ipx__heap_walk(seg->base, hoff(seg), count_block, &hc) == 0) {
      if (hc.ready != ready)
        ipx__seg_problem(r, "objects: the heap holds %llu finished named or "
                            "unique objects, the index %llu",
                         (unsigned long long)hc.ready,
                         (unsigned long long)ready);
      if (rt.busy == 0 && hc.tables != (rt.table ? 1u : 0u))
        ipx__seg_problem(r, "objects: %llu index tables in the heap",
                         (unsigned long long)hc.tables);
    }
  }
  return 0;
}

static int obj_named_count(ipx_segment_t *seg, uint64_t *out) {
  return ipx_object_count(seg, IPX_OBJECT_NAMED, out);
}

const struct ipx__seg_layer ipx__objects_layer = {
    .name = "objects",
    .init = obj_init,
    .repair = obj_repair,
    .check = obj_check,
    .named_count = obj_named_count,
};
