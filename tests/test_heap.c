/* heap: the allocator inside a managed segment (src/heap/heap.h).
 *
 * The arena lives in plain memory or in anonymous MAP_SHARED memory shared
 * by forked processes; a process-shared robust pthread mutex stands in for
 * the segment lock (the library uses the segment's own). */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "heap/heap.h"
#include "ipx/ipx.h"
#include "ipx_test.h"

#define HOFF 4096u /* arena offset: room for the stand-in lock before it */

static unsigned char *arena_new(size_t size) {
  unsigned char *p = aligned_alloc(4096, size);
  IPX_ASSERT(p != NULL);
  memset(p, 0xA5, size);
  return p;
}

struct problems {
  int n;
  char first[256];
};
static void collect(void *ctx, const char *msg) {
  struct problems *p = ctx;
  if (p->n++ == 0) snprintf(p->first, sizeof p->first, "%s", msg);
}
static void assert_check(const unsigned char *base) {
  struct problems p = {0, ""};
  int r = ipx__heap_check(base, HOFF, collect, &p);
  if (r != 0 || p.n != 0)
    IPX_FAIL("check: %d problems, first: %s", p.n, p.first);
}

/* Everything allocated was freed: the heap checks clean, its free bytes are
 * back to free0 and no block is live. */
static void assert_all_returned(const unsigned char *base, uint64_t free0) {
  assert_check(base);
  IPX_ASSERT_EQ(ipx__heap_free_bytes(base, HOFF), free0);
  IPX_ASSERT_EQ(ipx__heap_all_deallocated(base, HOFF), 1);
}

/* A page map covering an arena of `size` bytes (heap.h: a placement hint
 * of one process), all pages unknown. */
static struct ipx__heap_pages *pages_new(size_t size) {
  struct ipx__heap_pages *pm = calloc(1, sizeof *pm);
  IPX_ASSERT(pm != NULL);
  pm->npages = size / 4096u + 2u;
  pm->bits = calloc((size_t)(pm->npages + 63u) / 64u, sizeof(uint64_t));
  IPX_ASSERT(pm->bits != NULL);
  return pm;
}
static void pages_free(struct ipx__heap_pages *pm) {
  if (!pm) return;
  free(pm->bits);
  free(pm);
}
/* The map's bit for the page holding base + off. */
static void pages_set(struct ipx__heap_pages *pm, const unsigned char *base,
                      uint64_t off, int known) {
  uint64_t p = (((uintptr_t)base & 4095u) + off) >> 12;
  if (known)
    pm->bits[p >> 6] |= UINT64_C(1) << (p & 63u);
  else
    pm->bits[p >> 6] &= ~(UINT64_C(1) << (p & 63u));
}

/* ---- init and validation ----------------------------------------------- */
IPX_TEST(init_validate_and_bad_arguments) {
  size_t sz = 1u << 20;
  unsigned char *b = arena_new(sz + 4096);
  IPX_ASSERT_ERR(ipx__heap_init(NULL, HOFF, sz), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx__heap_init(b + 8, HOFF, sz), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx__heap_init(b, HOFF + 16, sz), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx__heap_init(b, HOFF, ipx__heap_min_size() - 1), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx__heap_init(b, HOFF, ipx__heap_max_size() + 64), IPX_ETOOBIG);
  IPX_ASSERT_ERR(ipx__heap_validate(b, HOFF, sz - HOFF), IPX_ECORRUPT);
  IPX_ASSERT_ERR(ipx__heap_check(b, HOFF, NULL, NULL), IPX_ECORRUPT);

  IPX_ASSERT_OK(ipx__heap_init(b, HOFF, sz - HOFF));
  IPX_ASSERT_OK(ipx__heap_validate(b, HOFF, sz - HOFF));
  IPX_ASSERT_ERR(ipx__heap_validate(b, HOFF, sz - HOFF - 64), IPX_ECORRUPT);
  IPX_ASSERT_ERR(ipx__heap_validate(b, 0, sz - HOFF), IPX_ECORRUPT);
  IPX_ASSERT_ERR(ipx__heap_validate(NULL, HOFF, sz), IPX_EINVAL);
  assert_check(b);
  uint64_t fb = ipx__heap_free_bytes(b, HOFF);
  IPX_ASSERT_EQ(fb, sz - HOFF - ipx__heap_ctl_size());
  IPX_ASSERT_EQ(ipx__heap_all_deallocated(b, HOFF), 1);
  size_t largest;
  IPX_ASSERT_OK(ipx__heap_largest_free(b, HOFF, &largest));
  IPX_ASSERT_EQ(largest, fb - 16);

  /* A flipped version byte, then a flipped magic. */
  b[HOFF + 8] ^= 0x40;
  IPX_ASSERT_ERR(ipx__heap_validate(b, HOFF, sz - HOFF), IPX_EVERSION);
  struct problems p = {0, ""};
  IPX_ASSERT_ERR(ipx__heap_check(b, HOFF, collect, &p), IPX_EVERSION);
  IPX_ASSERT(strstr(p.first, "version") != NULL);
  b[HOFF + 8] ^= 0x40;
  b[HOFF] ^= 1;
  IPX_ASSERT_ERR(ipx__heap_validate(b, HOFF, sz - HOFF), IPX_ECORRUPT);
  uint64_t off;
  IPX_ASSERT_ERR(ipx__heap_alloc(b, HOFF, 8, &off), IPX_ECORRUPT);
  b[HOFF] ^= 1;
  IPX_ASSERT_OK(ipx__heap_alloc(b, HOFF, 8, &off));
  free(b);
}

/* ---- bad input ----------------------------------------------------------- */
IPX_TEST(bad_input_is_refused_and_changes_nothing) {
  size_t sz = 1u << 20;
  unsigned char *b = arena_new(sz);
  IPX_ASSERT_OK(ipx__heap_init(b, HOFF, sz - HOFF));
  uint64_t free0 = ipx__heap_free_bytes(b, HOFF);
  uint64_t z1, z2, a;
  size_t us;

  /* allocate(0): a unique minimum block, like malloc(0). */
  IPX_ASSERT_OK(ipx__heap_alloc(b, HOFF, 0, &z1));
  IPX_ASSERT_OK(ipx__heap_alloc(b, HOFF, 0, &z2));
  IPX_ASSERT_NE(z1, z2);
  IPX_ASSERT_OK(ipx__heap_usable_size(b, HOFF, z1, &us));
  IPX_ASSERT_EQ(us, 16);

  /* Sizes whose rounding would overflow, and sizes above the arena. */
  for (size_t k = 0; k < 80; k++) {
    IPX_ASSERT_ERR(ipx__heap_alloc(b, HOFF, SIZE_MAX - k, &a), IPX_ENOMEM);
    IPX_ASSERT_ERR(ipx__heap_alloc_aligned(b, HOFF, SIZE_MAX - k, 64, &a),
                   IPX_ENOMEM);
    IPX_ASSERT_ERR(ipx__heap_realloc(b, HOFF, z1, SIZE_MAX - k, &a), IPX_ENOMEM);
    IPX_ASSERT_ERR(ipx__heap_expand(b, HOFF, z1, SIZE_MAX - k, SIZE_MAX, &us),
                   IPX_ENOMEM);
  }
  IPX_ASSERT_ERR(ipx__heap_alloc(b, HOFF, sz, &a), IPX_ENOMEM);
  IPX_ASSERT_ERR(ipx__heap_alloc(b, HOFF, sz - HOFF - 4096, &a), IPX_ENOMEM);

  /* Alignments: not a power of two, zero, above the page size. */
  size_t pg = (size_t)sysconf(_SC_PAGESIZE);
  size_t bad_al[] = {0, 3, 24, 48, 100, pg + 1, pg * 2, (size_t)1 << 40};
  for (size_t i = 0; i < sizeof bad_al / sizeof *bad_al; i++)
    IPX_ASSERT_ERR(ipx__heap_alloc_aligned(b, HOFF, 64, bad_al[i], &a),
                   IPX_EINVAL);
  IPX_ASSERT_OK(ipx__heap_alloc_aligned(b, HOFF, 64, pg, &a));
  IPX_ASSERT_EQ(((uintptr_t)(b + a)) % pg, 0);
  IPX_ASSERT_OK(ipx__heap_free(b, HOFF, a));

  /* NULL out-parameters. */
  IPX_ASSERT_ERR(ipx__heap_alloc(b, HOFF, 8, NULL), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx__heap_alloc(NULL, HOFF, 8, &a), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx__heap_usable_size(b, HOFF, z1, NULL), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx__heap_expand(b, HOFF, z1, 1, 1, NULL), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx__heap_shrink(b, HOFF, z1, 1, NULL), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx__heap_realloc(b, HOFF, z1, 1, NULL), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx__heap_largest_free(b, HOFF, NULL), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx__heap_get_stats(b, HOFF, NULL), IPX_EINVAL);

  /* Double free, interior, foreign and out-of-range offsets. */
  IPX_ASSERT_OK(ipx__heap_alloc(b, HOFF, 200, &a));
  memset(b + a, 0x5A, 200);
  uint64_t live_free = ipx__heap_free_bytes(b, HOFF);
  uint64_t bad[] = {0,        8,         HOFF,      HOFF + 64, a + 16,
                    a + 8,    a - 16,    a + 1,     a + 192,   sz - 16,
                    sz,       sz + 4096, UINT64_MAX, UINT64_MAX - 15};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    IPX_ASSERT_ERR(ipx__heap_free(b, HOFF, bad[i]), IPX_EINVAL);
    IPX_ASSERT_ERR(ipx__heap_usable_size(b, HOFF, bad[i], &us), IPX_EINVAL);
    IPX_ASSERT_ERR(ipx__heap_expand(b, HOFF, bad[i], 8, 8, &us), IPX_EINVAL);
    IPX_ASSERT_ERR(ipx__heap_shrink(b, HOFF, bad[i], 8, &us), IPX_EINVAL);
    if (bad[i] != 0)
      IPX_ASSERT_ERR(ipx__heap_realloc(b, HOFF, bad[i], 8, &z2), IPX_EINVAL);
  }
  /* An interior offset whose preceding bytes imitate a header copied from
   * a real block is still refused (the check tag depends on the offset). */
  memcpy(b + a + 32, b + a - 16, 16);
  IPX_ASSERT_ERR(ipx__heap_free(b, HOFF, a + 48), IPX_EINVAL);
  IPX_ASSERT_EQ(ipx__heap_free_bytes(b, HOFF), live_free);
  assert_check(b);
  /* A header whose size bits changed (say a stray write from the block
   * before) is refused: the second check tag covers the size. */
  for (unsigned bit = 4; bit < 20; bit++) {
    b[a - 8 + bit / 8] ^= (unsigned char)(1u << (bit % 8));
    IPX_ASSERT_ERR(ipx__heap_free(b, HOFF, a), IPX_EINVAL);
    IPX_ASSERT_ERR(ipx__heap_usable_size(b, HOFF, a, &us), IPX_EINVAL);
    b[a - 8 + bit / 8] ^= (unsigned char)(1u << (bit % 8));
  }
  IPX_ASSERT_EQ(ipx__heap_free_bytes(b, HOFF), live_free);
  assert_check(b);

  IPX_ASSERT_OK(ipx__heap_free(b, HOFF, a));
  IPX_ASSERT_ERR(ipx__heap_free(b, HOFF, a), IPX_EINVAL); /* cached */
  IPX_ASSERT_OK(ipx__heap_alloc(b, HOFF, 5000, &a));
  IPX_ASSERT_OK(ipx__heap_free(b, HOFF, a));
  IPX_ASSERT_ERR(ipx__heap_free(b, HOFF, a), IPX_EINVAL); /* coalesced */
  /* A block merged with both free neighbours: its stale header and the
   * next block's stale boundary tag must not pass for a live block. */
  uint64_t x1, x2, x3, x4;
  IPX_ASSERT_OK(ipx__heap_alloc(b, HOFF, 5000, &x1));
  IPX_ASSERT_OK(ipx__heap_alloc(b, HOFF, 5000, &x2));
  IPX_ASSERT_OK(ipx__heap_alloc(b, HOFF, 5000, &x3));
  IPX_ASSERT_OK(ipx__heap_alloc(b, HOFF, 5000, &x4));
  IPX_ASSERT_OK(ipx__heap_free(b, HOFF, x1));
  IPX_ASSERT_OK(ipx__heap_free(b, HOFF, x3));
  IPX_ASSERT_OK(ipx__heap_free(b, HOFF, x2));
  IPX_ASSERT_ERR(ipx__heap_free(b, HOFF, x2), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx__heap_free(b, HOFF, x3), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx__heap_realloc(b, HOFF, x2, 10, &a), IPX_EINVAL);
  IPX_ASSERT_OK(ipx__heap_free(b, HOFF, x4));
  assert_check(b);
  IPX_ASSERT_ERR(ipx__heap_shrink(b, HOFF, z1, 17, &us), IPX_EINVAL);
  IPX_ASSERT_OK(ipx__heap_free(b, HOFF, z1));
  IPX_ASSERT_OK(ipx__heap_free(b, HOFF, z2));
  assert_all_returned(b, free0);
  free(b);
}

/* ---- exhaustion, caches and coalescing ---------------------------------- */
IPX_TEST(exhaustion_returns_enomem_and_everything_comes_back) {
  size_t sz = 4u << 20;
  unsigned char *b = arena_new(sz);
  IPX_ASSERT_OK(ipx__heap_init(b, HOFF, sz - HOFF));
  uint64_t free0 = ipx__heap_free_bytes(b, HOFF);
  size_t max = (sz / 32) + 16;
  uint64_t *offs = malloc(max * sizeof *offs);
  static const size_t sizes[] = {0, 1, 24, 64, 100, 1000, 1024, 1025, 5000};
  for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
    size_t n = 0;
    int r;
    while ((r = ipx__heap_alloc(b, HOFF, sizes[s], &offs[n])) == 0) {
      IPX_ASSERT_LT(n, max);
      n++;
    }
    IPX_ASSERT_ERR(r, IPX_ENOMEM);
    IPX_ASSERT_GT(n, (sz / 2) / (sizes[s] + 48));
    assert_check(b);
    for (size_t i = 0; i < n; i++) IPX_ASSERT_OK(ipx__heap_free(b, HOFF, offs[i]));
    IPX_ASSERT_EQ(ipx__heap_free_bytes(b, HOFF), free0);
    /* The freed small blocks sit in caches; a large request coalesces them. */
    uint64_t big;
    IPX_ASSERT_OK(ipx__heap_alloc(b, HOFF, (size_t)free0 - 16, &big));
    IPX_ASSERT_OK(ipx__heap_free(b, HOFF, big));
    assert_check(b);
  }
  struct ipx__heap_stats st;
  IPX_ASSERT_OK(ipx__heap_get_stats(b, HOFF, &st));
  IPX_ASSERT_LT(st.log_high_water, st.log_capacity);
  free(offs);
  free(b);
}

IPX_TEST(expand_shrink_realloc_in_place_and_moving) {
  size_t sz = 1u << 20;
  unsigned char *b = arena_new(sz);
  IPX_ASSERT_OK(ipx__heap_init(b, HOFF, sz - HOFF));
  uint64_t free0 = ipx__heap_free_bytes(b, HOFF);
  uint64_t a, c, d, n;
  size_t got;
  IPX_ASSERT_OK(ipx__heap_alloc(b, HOFF, 2000, &a));
  IPX_ASSERT_OK(ipx__heap_alloc(b, HOFF, 3000, &c));
  IPX_ASSERT_OK(ipx__heap_alloc(b, HOFF, 2000, &d));
  for (int i = 0; i < 2000; i++) b[a + i] = (unsigned char)i;
  IPX_ASSERT_OK(ipx__heap_free(b, HOFF, c)); /* above the caches: coalesced */
  /* a can grow over c's 3016 bytes, not beyond (d is live). */
  IPX_ASSERT_ERR(ipx__heap_expand(b, HOFF, a, 6000, 6000, &got), IPX_ENOMEM);
  IPX_ASSERT_OK(ipx__heap_expand(b, HOFF, a, 2500, 4000, &got));
  IPX_ASSERT_EQ(got, 4000);
  IPX_ASSERT_OK(ipx__heap_usable_size(b, HOFF, a, &got));
  IPX_ASSERT_EQ(got, 4000);
  IPX_ASSERT_OK(ipx__heap_expand(b, HOFF, a, 100, 100, &got)); /* big enough */
  IPX_ASSERT_EQ(got, 4000);
  IPX_ASSERT_OK(ipx__heap_expand(b, HOFF, a, 4500, 99999, &got));
  IPX_ASSERT_EQ(got, 5040 - 16); /* all of it: 2016 + 3024 - 16 */
  assert_check(b);
  IPX_ASSERT_OK(ipx__heap_shrink(b, HOFF, a, 1500, &got));
  IPX_ASSERT_EQ(got, 1504);
  assert_check(b);
  for (int i = 0; i < 1500; i++) IPX_ASSERT_EQ(b[a + i], (unsigned char)i);
  /* realloc within the block and into the free neighbour stays put. */
  IPX_ASSERT_OK(ipx__heap_realloc(b, HOFF, a, 1000, &n));
  IPX_ASSERT_EQ(n, a);
  IPX_ASSERT_OK(ipx__heap_realloc(b, HOFF, a, 4000, &n));
  IPX_ASSERT_EQ(n, a);
  /* Beyond the neighbour it moves, keeping the contents. */
  IPX_ASSERT_OK(ipx__heap_realloc(b, HOFF, a, 9000, &n));
  IPX_ASSERT_NE(n, a);
  for (int i = 0; i < 1000; i++) IPX_ASSERT_EQ(b[n + i], (unsigned char)i);
  IPX_ASSERT_ERR(ipx__heap_usable_size(b, HOFF, a, &got), IPX_EINVAL);
  IPX_ASSERT_OK(ipx__heap_realloc(b, HOFF, n, 0, &n)); /* never frees */
  IPX_ASSERT_OK(ipx__heap_usable_size(b, HOFF, n, &got));
  IPX_ASSERT_EQ(got, 16);
  IPX_ASSERT_OK(ipx__heap_realloc(b, HOFF, 0, 10, &a)); /* off 0 allocates */
  IPX_ASSERT_OK(ipx__heap_free(b, HOFF, a));
  IPX_ASSERT_OK(ipx__heap_free(b, HOFF, n));
  IPX_ASSERT_OK(ipx__heap_free(b, HOFF, d));
  IPX_ASSERT_EQ(ipx__heap_free_bytes(b, HOFF), free0);
  assert_check(b);
  free(b);
}

IPX_TEST(grow_and_zero_free_memory) {
  size_t sz = 4u << 20;
  unsigned char *b = arena_new(sz);
  IPX_ASSERT_OK(ipx__heap_init(b, HOFF, (1u << 20) - HOFF));
  uint64_t a, c;
  IPX_ASSERT_OK(ipx__heap_alloc(b, HOFF, 100000, &a));
  IPX_ASSERT_ERR(ipx__heap_alloc(b, HOFF, 2u << 20, &c), IPX_ENOMEM);
  IPX_ASSERT_ERR(ipx__heap_grow(b, HOFF, 1000), IPX_EINVAL);
  IPX_ASSERT_ERR(ipx__heap_grow(b, HOFF, ipx__heap_max_size() + 64), IPX_ETOOBIG);
  uint64_t before = ipx__heap_free_bytes(b, HOFF);
  IPX_ASSERT_OK(ipx__heap_grow(b, HOFF, sz - HOFF));
  IPX_ASSERT_EQ(ipx__heap_free_bytes(b, HOFF), before + sz - (1u << 20));
  IPX_ASSERT_OK(ipx__heap_validate(b, HOFF, sz - HOFF));
  assert_check(b);
  IPX_ASSERT_OK(ipx__heap_alloc(b, HOFF, 2u << 20, &c));
  memset(b + c, 0xEE, 2u << 20);
  memset(b + a, 0xDD, 100000);
  IPX_ASSERT_OK(ipx__heap_free(b, HOFF, c));
  IPX_ASSERT_OK(ipx__heap_free(b, HOFF, a));
  IPX_ASSERT_OK(ipx__heap_zero_free_memory(b, HOFF));
  assert_check(b);
  size_t largest;
  IPX_ASSERT_OK(ipx__heap_largest_free(b, HOFF, &largest));
  IPX_ASSERT_EQ(largest, ipx__heap_free_bytes(b, HOFF) - 16);
  IPX_ASSERT_OK(ipx__heap_alloc(b, HOFF, largest, &a));
  /* All but the list links at the start are zero. */
  for (size_t i = 16; i < largest; i++)
    if (b[a + i] != 0) IPX_FAIL("byte %zu of free memory is %d", i, b[a + i]);
  IPX_ASSERT_OK(ipx__heap_free(b, HOFF, a));
  free(b);
}

/* The free bytes after the last block hold no header: formatting and
 * growing write nothing there, and blocks freed or shrunk next to them go
 * back into them. */
IPX_TEST(wilderness_is_untouched_until_used_and_takes_back_its_neighbours) {
  size_t sz = 2u << 20;
  unsigned char *b = arena_new(sz);
  const size_t first = HOFF + ipx__heap_ctl_size();
  IPX_ASSERT_OK(ipx__heap_init(b, HOFF, (1u << 20) - HOFF));
  for (size_t i = first; i < sz; i++)
    if (b[i] != 0xA5) IPX_FAIL("init wrote byte %zu of the arena", i);
  IPX_ASSERT_OK(ipx__heap_grow(b, HOFF, sz - HOFF));
  for (size_t i = first; i < sz; i++)
    if (b[i] != 0xA5) IPX_FAIL("grow wrote byte %zu of the arena", i);
  const uint64_t free0 = ipx__heap_free_bytes(b, HOFF);
  IPX_ASSERT_EQ(free0, sz - first);

  /* The last block, freed, goes back and a second free is refused; so is
   * a free of a block that went back with its neighbour and whose header
   * now lies inside a newer block. */
  uint64_t p, a, q, x, y;
  IPX_ASSERT_OK(ipx__heap_alloc(b, HOFF, 5000, &a));
  IPX_ASSERT_EQ(a, first + 16);
  IPX_ASSERT_OK(ipx__heap_free(b, HOFF, a));
  IPX_ASSERT_EQ(ipx__heap_free_bytes(b, HOFF), free0);
  IPX_ASSERT_ERR(ipx__heap_free(b, HOFF, a), IPX_EINVAL);
  IPX_ASSERT_OK(ipx__heap_alloc(b, HOFF, 100, &p));
  IPX_ASSERT_OK(ipx__heap_alloc(b, HOFF, 5000, &a));
  IPX_ASSERT_OK(ipx__heap_alloc(b, HOFF, 100, &q));
  IPX_ASSERT_OK(ipx__heap_free(b, HOFF, a)); /* into a list: q follows */
  IPX_ASSERT_OK(ipx__heap_free(b, HOFF, q)); /* q and a into the wilderness */
  IPX_ASSERT_EQ(ipx__heap_free_bytes(b, HOFF), free0 - 128);
  IPX_ASSERT_OK(ipx__heap_alloc(b, HOFF, 6000, &x));
  IPX_ASSERT_EQ(x, a);
  IPX_ASSERT_ERR(ipx__heap_free(b, HOFF, q), IPX_EINVAL);
  IPX_ASSERT_OK(ipx__heap_alloc(b, HOFF, 8000, &y));
  assert_check(b);
  IPX_ASSERT_OK(ipx__heap_free(b, HOFF, p));

  /* Freed in either order, both return to the wilderness: the arena is
   * one free stretch again and every byte of it can be handed out. */
  IPX_ASSERT_OK(ipx__heap_free(b, HOFF, x));
  IPX_ASSERT_OK(ipx__heap_free(b, HOFF, y));
  IPX_ASSERT_EQ(ipx__heap_free_bytes(b, HOFF), free0);
  size_t largest;
  IPX_ASSERT_OK(ipx__heap_largest_free(b, HOFF, &largest));
  IPX_ASSERT_EQ(largest, free0 - 16);
  assert_check(b);

  /* Shrinking the last block gives back even 16 bytes; expanding it
   * takes from the wilderness. */
  IPX_ASSERT_OK(ipx__heap_alloc(b, HOFF, 4000, &a));
  uint64_t f1 = ipx__heap_free_bytes(b, HOFF);
  size_t got;
  IPX_ASSERT_OK(ipx__heap_shrink(b, HOFF, a, 3984, &got));
  IPX_ASSERT_EQ(got, 3984);
  IPX_ASSERT_EQ(ipx__heap_free_bytes(b, HOFF), f1 + 16);
  IPX_ASSERT_OK(ipx__heap_expand(b, HOFF, a, 600000, 600000, &got));
  IPX_ASSERT_EQ(got, 600000);
  IPX_ASSERT_EQ(ipx__heap_free_bytes(b, HOFF), f1 + 4000 - 600000);
  assert_check(b);

  /* Shrink-to-fit ends the arena just after the last block. */
  uint64_t min;
  IPX_ASSERT_OK(ipx__heap_min_arena(b, HOFF, &min));
  IPX_ASSERT_EQ(min, ((first + 16 + 600000 - HOFF) + 63) & ~(uint64_t)63);
  IPX_ASSERT_ERR(ipx__heap_trim(b, HOFF, min - 64), IPX_EINVAL);
  IPX_ASSERT_OK(ipx__heap_trim(b, HOFF, min));
  IPX_ASSERT_OK(ipx__heap_validate(b, HOFF, min));
  assert_check(b);
  IPX_ASSERT_OK(ipx__heap_free(b, HOFF, a));
  IPX_ASSERT_EQ(ipx__heap_free_bytes(b, HOFF), min - ipx__heap_ctl_size());
  assert_check(b);
  free(b);
}

/* ---- property test against a shadow model -------------------------------- */
struct shadow {
  uint64_t off;
  size_t size;
  uint8_t seed;
};

static void fill(unsigned char *p, size_t n, uint8_t seed) {
  for (size_t i = 0; i < n; i++) p[i] = (uint8_t)(seed + i * 7u);
}
static int holds(const unsigned char *p, size_t n, uint8_t seed) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != (uint8_t)(seed + i * 7u)) return 0;
  return 1;
}
static int cmp_off(const void *x, const void *y) {
  const struct shadow *a = x, *b = y;
  return (a->off > b->off) - (a->off < b->off);
}

static size_t rand_size(void) {
  uint64_t r = ipx_test_rand() % 100;
  if (r < 70) return (size_t)(ipx_test_rand() % 1100);
  if (r < 95) return (size_t)(ipx_test_rand() % 20000);
  return (size_t)(ipx_test_rand() % 300000);
}

static void verify_all(const unsigned char *b, struct shadow *s, size_t n) {
  struct shadow *t = malloc((n + 1) * sizeof *t);
  memcpy(t, s, n * sizeof *t);
  qsort(t, n, sizeof *t, cmp_off);
  for (size_t i = 0; i < n; i++) {
    size_t us;
    IPX_ASSERT_OK(ipx__heap_usable_size(b, HOFF, t[i].off, &us));
    IPX_ASSERT_GE(us, t[i].size);
    if (i + 1 < n) IPX_ASSERT_LE(t[i].off + us, t[i + 1].off - 16);
    if (!holds(b + t[i].off, t[i].size, t[i].seed))
      IPX_FAIL("block at %llu lost its contents", (unsigned long long)t[i].off);
  }
  free(t);
}

/* A 4 MiB arena with an empty page map, for the placement tests. */
struct placement_arena {
  unsigned char *b;
  uint64_t free0;
  struct ipx__heap_pages *pm;
};
static struct placement_arena placement_arena_new(void) {
  size_t sz = 4u << 20;
  struct placement_arena a = {arena_new(sz), 0, pages_new(sz)};
  IPX_ASSERT_OK(ipx__heap_init(a.b, HOFF, sz - HOFF));
  a.free0 = ipx__heap_free_bytes(a.b, HOFF);
  return a;
}
/* Everything was freed: check so, then drop the arena and its map. */
static void placement_arena_done(struct placement_arena *a) {
  assert_all_returned(a->b, a->free0);
  pages_free(a->pm);
  free(a->b);
}

/* A fresh block whose previous block is free was placed at the back of a
 * split (a block taken from the front never has a free block before it:
 * free blocks are always coalesced).  Reads the format: docs/FORMAT.md. */
static int placed_at_back(const unsigned char *b, uint64_t off) {
  uint64_t w0, w1, prev;
  memcpy(&w0, b + off - 16, 8);
  prev = w0 & ((UINT64_C(1) << 46) - 1u);
  if (prev == 0 || prev > off - 16) return 0;
  memcpy(&w1, b + off - 16 - prev + 8, 8);
  return (w1 & 15u) == 2u; /* FREE */
}

/* Splitting a free block writes one new header: at the front split point
 * normally, at the back one when only that page is known to be in memory
 * (docs/heap.md, "Placement").  Either way the heap stays consistent. */
IPX_TEST(placement_splits_where_the_new_header_lands_on_a_known_page) {
  struct placement_arena a = placement_arena_new();
  unsigned char *b = a.b;
  struct ipx__heap_pages *pm = a.pm;
  /* A 64 KiB free block with a live guard after it (so that it does not
   * border the wilderness). */
  uint64_t x, guard, y, z;
  IPX_ASSERT_OK(ipx__heap_alloc_placed(b, HOFF, 65536, &x, pm));
  IPX_ASSERT_OK(ipx__heap_alloc_placed(b, HOFF, 2000, &guard, pm));
  IPX_ASSERT_OK(ipx__heap_free(b, HOFF, x));
  uint64_t blk = x - 16, size = 65536 + 16, want = 16384 + 16;

  /* Front page unknown, back page known: the block takes the back. */
  pages_set(pm, b, blk + want, 0);
  pages_set(pm, b, blk + size - want, 1);
  IPX_ASSERT_OK(ipx__heap_alloc_placed(b, HOFF, 16384, &y, pm));
  IPX_ASSERT_EQ(y, blk + size - want + 16);
  assert_check(b);
  /* The front stays one free block that the next request can use. */
  IPX_ASSERT_OK(ipx__heap_alloc_placed(b, HOFF, 65536 - 16384 - 16, &z, pm));
  IPX_ASSERT_EQ(z, x);
  assert_check(b);
  IPX_ASSERT_OK(ipx__heap_free(b, HOFF, z));
  IPX_ASSERT_OK(ipx__heap_free(b, HOFF, y));
  assert_check(b);

  /* Both known, or no map at all: the front, as always. */
  pages_set(pm, b, blk + want, 1);
  IPX_ASSERT_OK(ipx__heap_alloc_placed(b, HOFF, 16384, &y, pm));
  IPX_ASSERT_EQ(y, x);
  IPX_ASSERT_OK(ipx__heap_free(b, HOFF, y));
  pages_set(pm, b, blk + want, 0);
  IPX_ASSERT_OK(ipx__heap_alloc(b, HOFF, 16384, &y));
  IPX_ASSERT_EQ(y, x);
  IPX_ASSERT_OK(ipx__heap_free(b, HOFF, y));

  /* A block bordering the wilderness gives its tail back to it instead. */
  IPX_ASSERT_OK(ipx__heap_free(b, HOFF, guard));
  IPX_ASSERT_OK(ipx__heap_alloc_placed(b, HOFF, 16384, &y, pm));
  IPX_ASSERT_EQ(y, x);
  IPX_ASSERT_OK(ipx__heap_free(b, HOFF, y));
  placement_arena_done(&a);
}

/* Mark the four split points known as `known` says (bit i for splits[i]),
 * then place a 16 KiB request: its offset. */
static uint64_t place_with_known(struct placement_arena *a,
                                 const uint64_t splits[4], unsigned known) {
  uint64_t y;
  for (int i = 0; i < 4; i++)
    pages_set(a->pm, a->b, splits[i], (known >> i) & 1u);
  IPX_ASSERT_OK(ipx__heap_alloc_placed(a->b, HOFF, 16384, &y, a->pm));
  return y;
}

/* A request served from a larger list may take the list's second block
 * instead of its head, when only the second's split lands on a known page
 * (docs/heap.md, "Placement"). */
IPX_TEST(placement_takes_the_second_block_of_a_list_when_only_its_page_is_known) {
  struct placement_arena a = placement_arena_new();
  unsigned char *b = a.b;
  struct ipx__heap_pages *pm = a.pm;
  /* Two free 64 KiB blocks, each followed by a live guard; the one freed
   * last heads their list. */
  uint64_t x1, g1, x2, g2, y;
  IPX_ASSERT_OK(ipx__heap_alloc_placed(b, HOFF, 65536, &x1, pm));
  IPX_ASSERT_OK(ipx__heap_alloc_placed(b, HOFF, 2000, &g1, pm));
  IPX_ASSERT_OK(ipx__heap_alloc_placed(b, HOFF, 65536, &x2, pm));
  IPX_ASSERT_OK(ipx__heap_alloc_placed(b, HOFF, 2000, &g2, pm));
  IPX_ASSERT_OK(ipx__heap_free(b, HOFF, x1));
  IPX_ASSERT_OK(ipx__heap_free(b, HOFF, x2));
  uint64_t blk1 = x1 - 16, blk2 = x2 - 16, size = 65536 + 16,
           want = 16384 + 16;
  const uint64_t splits[4] = {blk1 + want, blk1 + size - want, blk2 + want,
                              blk2 + size - want};

  /* Neither split of the head is known, the second's back is: the second
   * block, split at its back. */
  y = place_with_known(&a, splits, 1u << 1);
  IPX_ASSERT_EQ(y, blk1 + size - want + 16);
  assert_check(b);
  /* Coalesced again, the first block now heads the list. */
  IPX_ASSERT_OK(ipx__heap_free(b, HOFF, y));

  /* Nothing known: the head, split at its front, as without a map. */
  y = place_with_known(&a, splits, 0);
  IPX_ASSERT_EQ(y, x1);
  assert_check(b);
  IPX_ASSERT_OK(ipx__heap_free(b, HOFF, y));

  /* The head's front known: the head, whatever the second offers. */
  y = place_with_known(&a, splits, ~(1u << 1) & 15u);
  IPX_ASSERT_EQ(y, x1);
  IPX_ASSERT_OK(ipx__heap_free(b, HOFF, y));

  IPX_ASSERT_OK(ipx__heap_free(b, HOFF, g1));
  IPX_ASSERT_OK(ipx__heap_free(b, HOFF, g2));
  placement_arena_done(&a);
}

/* When neither the good fit nor the second block of its list can be split
 * on a known page, placement reads the heads of the next 32 non-empty
 * larger lists, and no more (docs/heap.md, "Placement"). */
IPX_TEST(placement_reads_at_most_32_larger_lists) {
  struct placement_arena a = placement_arena_new();
  unsigned char *b = a.b;
  struct ipx__heap_pages *pm = a.pm;
  /* 35 free blocks of 20 000 .. 54 000 bytes, 1000 apart (one list each),
   * each followed by a live guard. */
  enum { N = 35 };
  uint64_t x[N], g[N], blk[N], size[N], y;
  for (int i = 0; i < N; i++) {
    IPX_ASSERT_OK(ipx__heap_alloc(b, HOFF, 20000u + 1000u * (unsigned)i, &x[i]));
    IPX_ASSERT_OK(ipx__heap_alloc(b, HOFF, 2000, &g[i]));
    size_t u;
    IPX_ASSERT_OK(ipx__heap_usable_size(b, HOFF, x[i], &u));
    blk[i] = x[i] - 16;
    size[i] = u + 16;
  }
  for (int i = 0; i < N; i++) IPX_ASSERT_OK(ipx__heap_free(b, HOFF, x[i]));
  const uint64_t want = 16384 + 16;
  for (int i = 0; i < N; i++) {
    pages_set(pm, b, blk[i] + want, 0);
    pages_set(pm, b, blk[i] + size[i] - want, 0);
  }

  /* Only the 34th block (the 33rd larger list) splits on a known page:
   * out of reach, so the good fit, at its front. */
  pages_set(pm, b, blk[33] + size[33] - want, 1);
  IPX_ASSERT_OK(ipx__heap_alloc_placed(b, HOFF, 16384, &y, pm));
  IPX_ASSERT_EQ(y, x[0]);
  IPX_ASSERT_OK(ipx__heap_free(b, HOFF, y));
  pages_set(pm, b, blk[0] + want, 0); /* the split just marked it */

  /* The 33rd block (the 32nd larger list) is within reach: its back. */
  pages_set(pm, b, blk[32] + size[32] - want, 1);
  IPX_ASSERT_OK(ipx__heap_alloc_placed(b, HOFF, 16384, &y, pm));
  IPX_ASSERT_EQ(y, blk[32] + size[32] - want + 16);
  assert_check(b);
  IPX_ASSERT_OK(ipx__heap_free(b, HOFF, y));

  for (int i = 0; i < N; i++) IPX_ASSERT_OK(ipx__heap_free(b, HOFF, g[i]));
  placement_arena_done(&a);
}

IPX_TEST(property_random_operations_against_shadow_model) {
  size_t sz = 16u << 20;
  unsigned char *b = arena_new(sz);
  IPX_ASSERT_OK(ipx__heap_init(b, HOFF, sz - HOFF));
  uint64_t free0 = ipx__heap_free_bytes(b, HOFF);
  size_t pg = (size_t)sysconf(_SC_PAGESIZE);
  enum { SLOTS = 3000 };
  struct shadow *s = calloc(SLOTS, sizeof *s);
  size_t n = 0;
  long ops = ipx_test_scale(300000, 5000);
  long enomem = 0, moved = 0, in_place = 0, back = 0;
  /* Half the plain allocations consult and teach a page map, so that both
   * ways of splitting a block meet every other operation. */
  struct ipx__heap_pages *pm = pages_new(sz);
  for (long op = 0; op < ops; op++) {
    uint64_t r = ipx_test_rand() % 100;
    if (n == 0 || (r < 45 && n < SLOTS)) {
      size_t size = rand_size(), align = 16;
      uint64_t off;
      int e;
      if (ipx_test_rand() % 8 == 0) {
        align = (size_t)1 << (ipx_test_rand() % 13);
        if (align > pg) align = pg;
        e = ipx__heap_alloc_aligned(b, HOFF, size, align, &off);
      } else if (ipx_test_rand() % 2) {
        e = ipx__heap_alloc_placed(b, HOFF, size, &off, pm);
        if (e == 0 && placed_at_back(b, off)) back++;
      } else {
        e = ipx__heap_alloc(b, HOFF, size, &off);
      }
      if (e == IPX_ENOMEM) {
        enomem++;
        continue;
      }
      IPX_ASSERT_OK(e);
      IPX_ASSERT_EQ((uintptr_t)(b + off) % align, 0);
      IPX_ASSERT_EQ((uintptr_t)(b + off) % 16, 0);
      s[n] = (struct shadow){off, size, (uint8_t)ipx_test_rand()};
      fill(b + off, size, s[n].seed);
      n++;
    } else {
      size_t i = (size_t)(ipx_test_rand() % n);
      if (!holds(b + s[i].off, s[i].size, s[i].seed))
        IPX_FAIL("op %ld: block at %llu lost its contents", op,
                 (unsigned long long)s[i].off);
      if (r < 80) {
        IPX_ASSERT_OK(ipx__heap_free(b, HOFF, s[i].off));
        s[i] = s[--n];
      } else if (r < 90) {
        size_t size = rand_size();
        uint64_t no;
        int e = ipx__heap_realloc(b, HOFF, s[i].off, size, &no);
        if (e == IPX_ENOMEM) {
          enomem++;
          continue;
        }
        IPX_ASSERT_OK(e);
        if (no == s[i].off) in_place++; else moved++;
        size_t keep = size < s[i].size ? size : s[i].size;
        if (!holds(b + no, keep, s[i].seed)) IPX_FAIL("op %ld: realloc lost data", op);
        s[i].off = no;
        s[i].size = size;
        fill(b + no, size, s[i].seed);
      } else if (r < 95) {
        size_t want = s[i].size + (size_t)(ipx_test_rand() % 4000), got;
        int e = ipx__heap_expand(b, HOFF, s[i].off, want, want + 1000, &got);
        if (e == 0) {
          IPX_ASSERT_GE(got, want);
          s[i].size = want;
          fill(b + s[i].off, want, s[i].seed);
        } else {
          IPX_ASSERT_ERR(e, IPX_ENOMEM);
        }
      } else {
        size_t want = s[i].size / 2, got;
        IPX_ASSERT_OK(ipx__heap_shrink(b, HOFF, s[i].off, want, &got));
        IPX_ASSERT_GE(got, want);
        s[i].size = want;
      }
    }
    if (op % 20000 == 0) {
      verify_all(b, s, n);
      assert_check(b);
    }
  }
  verify_all(b, s, n);
  assert_check(b);
  for (size_t i = 0; i < n; i++) IPX_ASSERT_OK(ipx__heap_free(b, HOFF, s[i].off));
  assert_all_returned(b, free0);
  size_t largest;
  IPX_ASSERT_OK(ipx__heap_largest_free(b, HOFF, &largest));
  IPX_ASSERT_EQ(largest, free0 - 16); /* one block again */
  struct ipx__heap_stats st;
  IPX_ASSERT_OK(ipx__heap_get_stats(b, HOFF, &st));
  ipx_test_log("%ld ops, %ld ENOMEM, realloc %ld in place %ld moved, %ld "
               "placed at the back of a split, log high water %u/%u",
               ops, enomem, in_place, moved, back, st.log_high_water,
               st.log_capacity);
  IPX_ASSERT_LT(st.log_high_water, st.log_capacity);
  if (ops >= 100000) IPX_ASSERT_GT(back, 0);
  pages_free(pm);
  free(s);
  free(b);
}

/* ---- several processes --------------------------------------------------- */
struct shared_arena {
  unsigned char *base;
  size_t size;
  pthread_mutex_t *lock;
};

static struct shared_arena shared_new(size_t size) {
  struct shared_arena a;
  a.size = size;
  a.base = ipx_test_shared_alloc(size);
  a.lock = (pthread_mutex_t *)(void *)a.base;
  pthread_mutexattr_t at;
  pthread_mutexattr_init(&at);
  pthread_mutexattr_setpshared(&at, PTHREAD_PROCESS_SHARED);
  pthread_mutexattr_setrobust(&at, PTHREAD_MUTEX_ROBUST);
  IPX_ASSERT_EQ(pthread_mutex_init(a.lock, &at), 0);
  pthread_mutexattr_destroy(&at);
  IPX_ASSERT_OK(ipx__heap_init(a.base, HOFF, size - HOFF));
  return a;
}

/* The segment lock's protocol: on EOWNERDEAD, repair before anything else.
 * Returns what recovery returned (0 nothing, 1 repaired). */
static int lock_arena(struct shared_arena *a) {
  int r = pthread_mutex_lock(a->lock);
  if (r == EOWNERDEAD) {
    int rr = ipx__heap_recover(a->base, HOFF);
    IPX_ASSERT_GE(rr, 0);
    IPX_ASSERT_EQ(pthread_mutex_consistent(a->lock), 0);
    return rr;
  }
  IPX_ASSERT_EQ(r, 0);
  return 0;
}
static void unlock_arena(struct shared_arena *a) {
  IPX_ASSERT_EQ(pthread_mutex_unlock(a->lock), 0);
}

struct worker_arg {
  struct shared_arena *a;
  long ops;
  int id;
};

static void worker(void *p) {
  struct worker_arg *w = p;
  enum { MINE = 300 };
  struct shadow s[MINE];
  size_t n = 0;
  for (long op = 0; op < w->ops; op++) {
    if (n < MINE && (n == 0 || ipx_test_rand() % 2)) {
      size_t size = rand_size() / 4;
      uint64_t off;
      lock_arena(w->a);
      int e = ipx__heap_alloc(w->a->base, HOFF, size, &off);
      unlock_arena(w->a);
      if (e == IPX_ENOMEM) continue;
      IPX_ASSERT_OK(e);
      s[n] = (struct shadow){off, size, (uint8_t)(w->id * 31 + op)};
      fill(w->a->base + off, size, s[n].seed);
      n++;
    } else {
      size_t i = (size_t)(ipx_test_rand() % n);
      IPX_ASSERT(holds(w->a->base + s[i].off, s[i].size, s[i].seed));
      if (ipx_test_rand() % 4 == 0) {
        size_t size = rand_size() / 4;
        uint64_t no;
        lock_arena(w->a);
        int e = ipx__heap_realloc(w->a->base, HOFF, s[i].off, size, &no);
        unlock_arena(w->a);
        if (e == IPX_ENOMEM) continue;
        IPX_ASSERT_OK(e);
        size_t keep = size < s[i].size ? size : s[i].size;
        IPX_ASSERT(holds(w->a->base + no, keep, s[i].seed));
        s[i].off = no;
        s[i].size = size;
        fill(w->a->base + no, size, s[i].seed);
      } else {
        lock_arena(w->a);
        IPX_ASSERT_OK(ipx__heap_free(w->a->base, HOFF, s[i].off));
        unlock_arena(w->a);
        s[i] = s[--n];
      }
    }
  }
  for (size_t i = 0; i < n; i++) {
    IPX_ASSERT(holds(w->a->base + s[i].off, s[i].size, s[i].seed));
    lock_arena(w->a);
    IPX_ASSERT_OK(ipx__heap_free(w->a->base, HOFF, s[i].off));
    unlock_arena(w->a);
  }
}

IPX_TEST(several_processes_allocate_and_free_at_once) {
  struct shared_arena a = shared_new(32u << 20);
  uint64_t free0 = ipx__heap_free_bytes(a.base, HOFF);
  enum { P = 4 };
  struct worker_arg w[P];
  pid_t pid[P];
  for (int i = 0; i < P; i++) {
    w[i] = (struct worker_arg){&a, ipx_test_scale(40000, 500), i};
    pid[i] = ipx_test_fork(worker, &w[i]);
  }
  for (int i = 0; i < P; i++) IPX_ASSERT_CHILD_OK(pid[i]);
  assert_check(a.base);
  IPX_ASSERT_EQ(ipx__heap_free_bytes(a.base, HOFF), free0);
  IPX_ASSERT_EQ(ipx__heap_all_deallocated(a.base, HOFF), 1);
  ipx_test_shared_free(a.base, a.size);
}

/* ---- crash loop ---------------------------------------------------------- */
enum { T_EMPTY, T_PENDING, T_LIVE, T_FREEING, T_REALLOC };
struct entry {
  volatile uint32_t state;
  uint32_t seed;
  uint64_t off;
  uint64_t size;
  uint64_t new_size;
};
enum { ENTRIES = 256 };

/* Every field of the entry is written before its new state is. */
static void set_state(struct entry *e, uint32_t st) {
  __atomic_store_n(&e->state, st, __ATOMIC_RELEASE);
}

struct crash_ctx {
  struct shared_arena *a;
  struct entry *table;
  uint64_t table_off;
  int *ready; /* shared: the child is inside its loop */
};

/* Wait until the child is at work (a slow start under a sanitizer must not
 * eat the whole delay), then let it run for 0..2 ms. */
static void let_it_run(int *ready) {
  for (int i = 0; i < 200000 && !__atomic_load_n(ready, __ATOMIC_ACQUIRE); i++)
    usleep(50);
  usleep((useconds_t)(ipx_test_rand() % 2000));
}

/* Pattern: the seed's 8 bytes, then its low byte repeated; any prefix of
 * a stamped block is the stamp of that length.  Cheap to write, so the
 * child spends its time in the allocator. */
static void stamp(unsigned char *p, size_t n, uint32_t seed) {
  uint64_t s = seed;
  memcpy(p, &s, n < 8 ? n : 8);
  if (n > 8) memset(p + 8, (int)(seed & 0xff), n - 8);
}
static int stamped(const unsigned char *p, size_t n, uint32_t seed) {
  uint64_t s = seed;
  if (memcmp(p, &s, n < 8 ? n : 8) != 0) return 0;
  for (size_t i = 8; i < n; i++)
    if (p[i] != (seed & 0xff)) return 0;
  return 1;
}

static size_t crash_size(void) {
  return ipx_test_rand() % 4 == 0 ? (size_t)(ipx_test_rand() % 12000)
                                  : (size_t)(ipx_test_rand() % 700);
}

static void crash_child(void *p) {
  struct crash_ctx *cx = p;
  struct shared_arena *a = cx->a;
  unsigned char *b = a->base;
  uint32_t seed = (uint32_t)ipx_test_rand() | 1u;
  /* This process's page map: kills land in both ways of splitting. */
  struct ipx__heap_pages *pm = pages_new(a->size);
  /* Hold the lock across many operations so the kill lands with it held,
   * mostly inside the allocator. */
  lock_arena(a);
  __atomic_store_n(cx->ready, 1, __ATOMIC_RELEASE);
  for (unsigned long op = 0;; op++) {
    struct entry *e = &cx->table[ipx_test_rand() % ENTRIES];
    if (e->state == T_EMPTY) {
      e->size = crash_size();
      e->seed = seed++;
      set_state(e, T_PENDING);
      uint64_t off;
      if (ipx__heap_alloc_placed(b, HOFF, e->size, &off, pm) != 0) {
        set_state(e, T_EMPTY);
        continue;
      }
      e->off = off;
      stamp(b + off, e->size, e->seed);
      set_state(e, T_LIVE);
    } else if (ipx_test_rand() % 3 == 0) {
      e->new_size = crash_size();
      set_state(e, T_REALLOC);
      uint64_t no;
      if (ipx__heap_realloc(b, HOFF, e->off, e->new_size, &no) != 0) {
        set_state(e, T_LIVE);
        continue;
      }
      set_state(e, T_PENDING); /* the new offset is not recorded yet */
      e->off = no;
      e->size = e->new_size;
      stamp(b + no, e->size, e->seed);
      set_state(e, T_LIVE);
    } else {
      set_state(e, T_FREEING);
      ipx__heap_free(b, HOFF, e->off);
      set_state(e, T_EMPTY);
    }
    if (op % 64 == 63) {
      unlock_arena(a);
      lock_arena(a);
    }
  }
}

struct orphan_scan {
  struct crash_ctx *cx;
  uint64_t orphans[4];
  int n_orphans;
  int n_alloc;
};
static int find_orphans(void *ctx, uint64_t off, size_t usable, int allocated) {
  struct orphan_scan *o = ctx;
  (void)usable;
  if (!allocated) return 0;
  o->n_alloc++;
  if (off == o->cx->table_off) return 0;
  for (int i = 0; i < ENTRIES; i++)
    if (o->cx->table[i].state == T_LIVE && o->cx->table[i].off == off) return 0;
  if (o->n_orphans < 4) o->orphans[o->n_orphans] = off;
  o->n_orphans++;
  return 0;
}
static int is_live(unsigned char *b, uint64_t off) {
  size_t us;
  return ipx__heap_usable_size(b, HOFF, off, &us) == 0;
}

IPX_TEST_T(crash_loop_children_killed_inside_the_allocator, 120) {
  struct shared_arena a = shared_new(8u << 20);
  unsigned char *b = a.base;
  struct crash_ctx cx = {&a, NULL, 0, ipx_test_shared_alloc(sizeof(int))};
  IPX_ASSERT_OK(ipx__heap_alloc(b, HOFF, ENTRIES * sizeof(struct entry),
                                &cx.table_off));
  cx.table = (struct entry *)(void *)(b + cx.table_off);
  memset(cx.table, 0, ENTRIES * sizeof(struct entry));
  long iters = ipx_test_scale(400, 60);
  long repaired = 0, orphans_freed = 0, realloc_resolved = 0;
  /* Past `iters` only while no kill has yet landed inside the allocator. */
  long it = 0;
  for (; it < iters || (repaired == 0 && it < 5 * iters); it++) {
    *cx.ready = 0;
    pid_t pid = ipx_test_fork(crash_child, &cx);
    let_it_run(cx.ready);
    kill(pid, SIGKILL);
    int st = ipx_test_wait(pid, 10000);
    IPX_ASSERT(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);

    repaired += lock_arena(&a);
    assert_check(b);
    /* Resolve what the child was doing when it died. */
    for (int i = 0; i < ENTRIES; i++) {
      struct entry *e = &cx.table[i];
      if (e->state == T_FREEING) {
        /* An interrupted free is undone or done; the block's first word
         * may hold a cache link (the caller was discarding it). */
        if (is_live(b, e->off)) IPX_ASSERT_OK(ipx__heap_free(b, HOFF, e->off));
        e->state = T_EMPTY;
      } else if (e->state == T_REALLOC) {
        /* Undone (the old block is live and intact) or done: then the old
         * block is gone unless resized in place, and the data moved. */
        size_t keep = e->new_size < e->size ? e->new_size : e->size;
        if (is_live(b, e->off)) {
          if (!stamped(b + e->off, keep, e->seed)) {
            size_t us = 0, k = 8;
            ipx__heap_usable_size(b, HOFF, e->off, &us);
            while (k < keep && b[e->off + k] == (e->seed & 0xff)) k++;
            IPX_FAIL("iteration %ld: interrupted realloc of %llu (%llu -> "
                     "%llu bytes, usable %zu) lost its data at byte %zu",
                     it, (unsigned long long)e->off,
                     (unsigned long long)e->size,
                     (unsigned long long)e->new_size, us, k);
          }
          e->state = T_LIVE;
          e->size = keep;
        } else {
          struct orphan_scan o = {&cx, {0}, 0, 0};
          IPX_ASSERT_OK(ipx__heap_walk(b, HOFF, find_orphans, &o));
          IPX_ASSERT_EQ(o.n_orphans, 1);
          IPX_ASSERT(stamped(b + o.orphans[0], keep, e->seed));
          e->off = o.orphans[0];
          e->size = keep;
          e->state = T_LIVE;
        }
        realloc_resolved++;
      } else if (e->state == T_PENDING) {
        e->state = T_EMPTY; /* its block, if any, is an orphan below */
      }
    }
    struct orphan_scan o = {&cx, {0}, 0, 0};
    IPX_ASSERT_OK(ipx__heap_walk(b, HOFF, find_orphans, &o));
    IPX_ASSERT_LE(o.n_orphans, 1); /* only the block being allocated */
    for (int i = 0; i < o.n_orphans; i++) {
      IPX_ASSERT_OK(ipx__heap_free(b, HOFF, o.orphans[i]));
      orphans_freed++;
    }
    /* Every recorded block holds its pattern; none overlap. */
    struct shadow s[ENTRIES];
    size_t n = 0;
    for (int i = 0; i < ENTRIES; i++) {
      struct entry *e = &cx.table[i];
      if (e->state != T_LIVE) continue;
      IPX_ASSERT(is_live(b, e->off));
      if (!stamped(b + e->off, e->size, e->seed))
        IPX_FAIL("iteration %ld: block at %llu lost its pattern", it,
                 (unsigned long long)e->off);
      s[n++] = (struct shadow){e->off, e->size, 0};
    }
    qsort(s, n, sizeof *s, cmp_off);
    for (size_t i = 0; i + 1 < n; i++) {
      size_t us;
      IPX_ASSERT_OK(ipx__heap_usable_size(b, HOFF, s[i].off, &us));
      IPX_ASSERT_LE(s[i].off + us, s[i + 1].off);
    }
    /* The parent allocates and frees more. */
    for (int k = 0; k < 20; k++) {
      uint64_t off;
      size_t size = crash_size();
      if (ipx__heap_alloc(b, HOFF, size, &off) == 0) {
        stamp(b + off, size, 7);
        IPX_ASSERT(stamped(b + off, size, 7));
        IPX_ASSERT_OK(ipx__heap_free(b, HOFF, off));
      }
    }
    assert_check(b);
    unlock_arena(&a);
  }
  /* Everything comes back. */
  for (int i = 0; i < ENTRIES; i++)
    if (cx.table[i].state == T_LIVE)
      IPX_ASSERT_OK(ipx__heap_free(b, HOFF, cx.table[i].off));
  IPX_ASSERT_OK(ipx__heap_free(b, HOFF, cx.table_off));
  IPX_ASSERT_EQ(ipx__heap_all_deallocated(b, HOFF), 1);
  IPX_ASSERT_EQ(ipx__heap_free_bytes(b, HOFF),
                a.size - HOFF - ipx__heap_ctl_size());
  assert_check(b);
  ipx_test_log("%ld kills: %ld needed repair (rolled back), %ld interrupted "
               "reallocs resolved, %ld orphaned blocks freed",
               it, repaired, realloc_resolved, orphans_freed);
  IPX_ASSERT_GT(repaired, 0);
  ipx_test_shared_free(cx.ready, sizeof(int));
  ipx_test_shared_free(a.base, a.size);
}

/* A damaged undo log or heap is reported, never acted on blindly. */
IPX_TEST(recovery_marks_damage_corrupt_and_check_says_why) {
  size_t sz = 1u << 20;
  unsigned char *b = arena_new(sz);
  IPX_ASSERT_OK(ipx__heap_init(b, HOFF, sz - HOFF));
  uint64_t a1, a2;
  IPX_ASSERT_OK(ipx__heap_alloc(b, HOFF, 3000, &a1));
  IPX_ASSERT_OK(ipx__heap_alloc(b, HOFF, 3000, &a2));
  IPX_ASSERT_EQ(ipx__heap_recover(b, HOFF), 0); /* nothing to do */
  /* Overwrite a2's header as a buffer overrun from a1 would. */
  memset(b + a1, 0x11, 3008 + 16);
  struct problems p = {0, ""};
  IPX_ASSERT_ERR(ipx__heap_check(b, HOFF, collect, &p), IPX_ECORRUPT);
  if (!strstr(p.first, "header")) IPX_FAIL("check said: %s", p.first);
  IPX_ASSERT_ERR(ipx__heap_free(b, HOFF, a2), IPX_EINVAL);
  free(b);

  /* A log entry pointing outside the arena: corrupt, for good. */
  b = arena_new(sz);
  IPX_ASSERT_OK(ipx__heap_init(b, HOFF, sz - HOFF));
  uint32_t *log_n = (uint32_t *)(void *)(b + HOFF + 52);
  uint64_t *entry0 = (uint64_t *)(void *)(b + HOFF + 152) /* the undo log (docs/FORMAT.md) */;
  entry0[0] = sz * 4;
  entry0[1] = 0;
  *log_n = 1;
  IPX_ASSERT_ERR(ipx__heap_alloc(b, HOFF, 8, &a1), IPX_ECORRUPT);
  p.n = 0;
  IPX_ASSERT_ERR(ipx__heap_check(b, HOFF, collect, &p), IPX_ECORRUPT);
  IPX_ASSERT(strstr(p.first, "interrupted") != NULL);
  IPX_ASSERT_ERR(ipx__heap_recover(b, HOFF), IPX_ECORRUPT);
  IPX_ASSERT_ERR(ipx__heap_recover(b, HOFF), IPX_ECORRUPT);
  IPX_ASSERT_ERR(ipx__heap_validate(b, HOFF, sz - HOFF), IPX_ECORRUPT);
  free(b);

  /* A valid log entry is rolled back: simulate a free interrupted after
   * its first logged store by replaying that store by hand. */
  b = arena_new(sz);
  IPX_ASSERT_OK(ipx__heap_init(b, HOFF, sz - HOFF));
  IPX_ASSERT_OK(ipx__heap_alloc(b, HOFF, 3000, &a1));
  uint64_t *hdr_word = (uint64_t *)(void *)(b + a1 - 8);
  log_n = (uint32_t *)(void *)(b + HOFF + 52);
  entry0 = (uint64_t *)(void *)(b + HOFF + 152) /* the undo log (docs/FORMAT.md) */;
  entry0[0] = a1 - 8;
  entry0[1] = *hdr_word;
  *log_n = 1;
  *hdr_word ^= 3; /* ALLOC -> FREE state, mid-operation */
  IPX_ASSERT_EQ(ipx__heap_recover(b, HOFF), 1);
  assert_check(b);
  size_t us;
  IPX_ASSERT_OK(ipx__heap_usable_size(b, HOFF, a1, &us));
  IPX_ASSERT_OK(ipx__heap_free(b, HOFF, a1));
  struct ipx__heap_stats st;
  IPX_ASSERT_OK(ipx__heap_get_stats(b, HOFF, &st));
  IPX_ASSERT_EQ(st.repairs, 1);
  IPX_ASSERT_EQ(st.live_blocks, 0);
  free(b);
}

/* The heads of the TLSF lists (docs/FORMAT.md: control block offset 3072,
 * 64 lists per first level); the slot that holds `block`. */
static uint64_t *head_slot_holding(unsigned char *b, uint64_t block) {
  uint64_t *heads = (uint64_t *)(void *)(b + HOFF + 3072);
  for (unsigned i = 0; i < 40u * 64u; i++)
    if (heads[i] == block) return &heads[i];
  return NULL;
}

/* A damaged free-list link (a list head, or a free block's link to its
 * neighbour) is never written through: the operation that meets it fails
 * with IPX_ECORRUPT and changes nothing, even when the link names a live
 * block.  Found by fuzz_segment: a misaligned head made an aligned
 * allocation store through it. */
IPX_TEST(damaged_list_links_are_never_written_through) {
  size_t sz = 1u << 20;
  for (int kind = 0; kind < 3; kind++) {
    unsigned char *b = arena_new(sz);
    IPX_ASSERT_OK(ipx__heap_init(b, HOFF, sz - HOFF));
    /* live | free (in a list: too large for the caches) | live | live */
    uint64_t live, gone, sep, other;
    IPX_ASSERT_OK(ipx__heap_alloc(b, HOFF, 2000, &live));
    IPX_ASSERT_OK(ipx__heap_alloc(b, HOFF, 2000, &gone));
    IPX_ASSERT_OK(ipx__heap_alloc(b, HOFF, 64, &sep));
    IPX_ASSERT_OK(ipx__heap_alloc(b, HOFF, 2000, &other));
    uint64_t keep;
    IPX_ASSERT_OK(ipx__heap_alloc(b, HOFF, 64, &keep)); /* other not at top */
    stamp(b + live, 2000, 0x5eed);
    IPX_ASSERT_OK(ipx__heap_free(b, HOFF, gone));
    uint64_t *head = head_slot_holding(b, gone - 16);
    IPX_ASSERT(head != NULL);
    uint64_t *gone_links = (uint64_t *)(void *)(b + gone); /* next, prev */
    int r;
    uint64_t got;
    if (kind == 0) {
      /* The list head names the live block: freeing another block of the
       * same size would link it in front of "its" first block. */
      *head = live - 16;
      r = ipx__heap_free(b, HOFF, other);
    } else if (kind == 1) {
      /* The free block's prev link names the live block: taking it out of
       * its list would store its successor there. */
      gone_links[1] = live - 16;
      r = ipx__heap_alloc(b, HOFF, 2000, &got);
    } else {
      /* The head misaligned, as the fuzzer left it (its input, which
       * reaches this through an aligned allocation, is replayed from the
       * corpus): freeing a block into that list would store through it. */
      *head = gone - 16 + 7;
      r = ipx__heap_free(b, HOFF, other);
    }
    IPX_ASSERT_ERR(r, IPX_ECORRUPT);
    if (!stamped(b + live, 2000, 0x5eed))
      IPX_FAIL("case %d: the live block was written through a damaged link",
               kind);
    /* The heap stays refused, and check says so. */
    IPX_ASSERT_ERR(ipx__heap_alloc(b, HOFF, 2000, &got), IPX_ECORRUPT);
    struct problems p = {0, ""};
    IPX_ASSERT_ERR(ipx__heap_check(b, HOFF, collect, &p), IPX_ECORRUPT);
    free(b);
  }
}
