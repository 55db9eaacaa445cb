/* bench_heap: the segment allocator (src/heap) against glibc malloc; its
 * Boost side is bench/boost/boost_heap.cpp (rbtree_best_fit).  One op is
 * one allocate or one deallocate.
 *
 * Until the segment module provides the real segment lock, every ipx op
 * takes and releases a stand-in lock: a process-shared robust pthread
 * mutex in the arena's first bytes (Boost takes its own interprocess mutex
 * per op).  Metrics:
 *   pairs64_mops            1M allocate+free pairs of 64 B, lock per op
 *   pairs64_nolock_mops     the same without any lock (allocator alone)
 *   pairs64_nolog_nolock_mops  (ipx) the allocator with its undo log
 *                           compiled out: the log's cost is the difference
 *   small_mix_mops          100k live blocks of 16..1024 B, 2M ops, 512 MiB
 *   large_mix_mops          20k live blocks of 16..64 KiB, 500k ops, 2 GiB
 *   {small,large}_frag_{live,empty}_pct  largest allocatable block (binary
 *                           search with real allocations) / free memory,
 *                           with the working set live and after freeing all
 *   glibc_*                 the same workloads on malloc/free (no lock). */

/* A second copy of the allocator with the undo log compiled out, under
 * other names, to measure the log's cost. */
#define IPX_HEAP_UNLOGGED 1
#define ipx__heap_all_deallocated nl_all_deallocated
#define ipx__heap_alloc nl_alloc
#define ipx__heap_alloc_aligned nl_alloc_aligned
#define ipx__heap_alloc_placed nl_alloc_placed
#define ipx__seg_heap_pages nl_seg_heap_pages
#define ipx__heap_check nl_check
#define ipx__heap_ctl_size nl_ctl_size
#define ipx__heap_expand nl_expand
#define ipx__heap_free nl_free
#define ipx__heap_free_bytes nl_free_bytes
#define ipx__heap_get_stats nl_get_stats
#define ipx__heap_grow nl_grow
#define ipx__heap_init nl_init
#define ipx__heap_init_zeroed nl_init_zeroed
#define ipx__heap_largest_free nl_largest_free
#define ipx__heap_max_size nl_max_size
#define ipx__heap_min_arena nl_min_arena
#define ipx__heap_min_size nl_min_size
#define ipx__heap_realloc nl_realloc
#define ipx__heap_recover nl_recover
#define ipx__heap_shrink nl_shrink
#define ipx__heap_trim nl_trim
#define ipx__heap_usable_size nl_usable_size
#define ipx__heap_validate nl_validate
#define ipx__heap_walk nl_walk
#define ipx__heap_zero_free_memory nl_zero_free_memory
#include "heap/heap.c"
#undef IPX_HEAP_UNLOGGED
#undef ipx__heap_all_deallocated
#undef ipx__heap_alloc
#undef ipx__heap_alloc_aligned
#undef ipx__heap_check
#undef ipx__heap_ctl_size
#undef ipx__heap_expand
#undef ipx__heap_free
#undef ipx__heap_free_bytes
#undef ipx__heap_get_stats
#undef ipx__heap_grow
#undef ipx__heap_init
#undef ipx__heap_init_zeroed
#undef ipx__heap_largest_free
#undef ipx__heap_max_size
#undef ipx__heap_min_arena
#undef ipx__heap_min_size
#undef ipx__heap_realloc
#undef ipx__heap_recover
#undef ipx__heap_shrink
#undef ipx__heap_trim
#undef ipx__heap_usable_size
#undef ipx__heap_validate
#undef ipx__heap_walk
#undef ipx__heap_zero_free_memory
/* heap.h was read under the other names: declare the real ones used. */
int ipx__heap_init(void *base, uint64_t heap_off, uint64_t heap_size);
int ipx__heap_alloc(void *base, uint64_t heap_off, size_t size, uint64_t *off);
int ipx__heap_free(void *base, uint64_t heap_off, uint64_t off);
uint64_t ipx__heap_free_bytes(const void *base, uint64_t heap_off);

#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"

#define HOFF 4096u

static uint64_t rng = 88172645463325252ull;
static inline uint64_t xrand(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

/* ---- the three allocators behind one interface ------------------------- */
enum kind { IPX_LOCKED, IPX_NOLOCK, IPX_NOLOG, GLIBC };
static unsigned char *arena;
static size_t arena_size;
static pthread_mutex_t *lock;

static void arena_setup(size_t size, enum kind k) {
  if (k == GLIBC) return;
  if (arena_size != size) {
    free(arena);
    arena = aligned_alloc(4096, size);
    if (!arena) {
      fprintf(stderr, "bench_heap: no memory for a %zu-byte arena\n", size);
      exit(1);
    }
    /* Fault the pages in up front, as Boost's managed_heap_memory does. */
    memset(arena, 0, size);
    arena_size = size;
  }
  lock = (pthread_mutex_t *)(void *)arena;
  pthread_mutexattr_t at;
  pthread_mutexattr_init(&at);
  pthread_mutexattr_setpshared(&at, PTHREAD_PROCESS_SHARED);
  pthread_mutexattr_setrobust(&at, PTHREAD_MUTEX_ROBUST);
  pthread_mutex_init(lock, &at);
  int r = k == IPX_NOLOG ? nl_init(arena, HOFF, size - HOFF)
                         : ipx__heap_init(arena, HOFF, size - HOFF);
  if (r) {
    fprintf(stderr, "bench_heap: init failed (%d)\n", r);
    exit(1);
  }
}

static inline void *do_alloc(enum kind k, size_t n) {
  uint64_t off;
  int r;
  switch (k) {
    case IPX_LOCKED:
      pthread_mutex_lock(lock);
      r = ipx__heap_alloc(arena, HOFF, n, &off);
      pthread_mutex_unlock(lock);
      return r ? NULL : arena + off;
    case IPX_NOLOCK:
      return ipx__heap_alloc(arena, HOFF, n, &off) ? NULL : arena + off;
    case IPX_NOLOG:
      return nl_alloc(arena, HOFF, n, &off) ? NULL : arena + off;
    case GLIBC:
      return malloc(n);
  }
  return NULL;
}
static inline void do_free(enum kind k, void *p) {
  switch (k) {
    case IPX_LOCKED:
      pthread_mutex_lock(lock);
      ipx__heap_free(arena, HOFF, (uint64_t)((unsigned char *)p - arena));
      pthread_mutex_unlock(lock);
      break;
    case IPX_NOLOCK:
      ipx__heap_free(arena, HOFF, (uint64_t)((unsigned char *)p - arena));
      break;
    case IPX_NOLOG:
      nl_free(arena, HOFF, (uint64_t)((unsigned char *)p - arena));
      break;
    case GLIBC:
      free(p);
      break;
  }
}

static double pairs64(enum kind k) {
  const long n = 1000000;
  arena_setup(64u << 20, k);
  uint64_t t0 = bench_now_ns();
  for (long i = 0; i < n; i++) {
    void *p = do_alloc(k, 64);
    *(volatile char *)p = 1;
    do_free(k, p);
  }
  return 2.0 * n / (double)(bench_now_ns() - t0) * 1e3;
}

/* Largest allocatable block by binary search with real allocations. */
static uint64_t largest_allocatable(enum kind k, uint64_t hi) {
  uint64_t lo = 0;
  while (lo < hi) {
    uint64_t mid = lo + (hi - lo + 1) / 2;
    void *p = do_alloc(k, (size_t)mid);
    if (p) {
      do_free(k, p);
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  return lo;
}

struct mix {
  const char *name;
  size_t arena, live, min, max;
  long ops;
};

static void run_mix(const struct mix *m, enum kind k, const char *prefix) {
  arena_setup(m->arena, k);
  void **slot = calloc(m->live, sizeof *slot);
  rng = 88172645463325252ull;
  size_t span = m->max - m->min + 1;
  uint64_t t0 = bench_now_ns();
  long ops = 0;
  for (size_t i = 0; i < m->live; i++, ops++) {
    slot[i] = do_alloc(k, m->min + (size_t)(xrand() % span));
    *(volatile uint64_t *)slot[i] = i;
  }
  while (ops < m->ops) {
    size_t i = (size_t)(xrand() % m->live);
    do_free(k, slot[i]);
    slot[i] = do_alloc(k, m->min + (size_t)(xrand() % span));
    *(volatile uint64_t *)slot[i] = i;
    ops += 2;
  }
  double mops = (double)ops / (double)(bench_now_ns() - t0) * 1e3;
  char metric[64];
  snprintf(metric, sizeof metric, "%s%s_mix_mops", prefix, m->name);
  bench_report(metric, mops, "Mops/s");
  if (k != GLIBC) {
    uint64_t fb = ipx__heap_free_bytes(arena, HOFF);
    uint64_t big = largest_allocatable(k, fb);
    snprintf(metric, sizeof metric, "%s_frag_live_pct", m->name);
    bench_report(metric, 100.0 * (double)big / (double)fb, "%");
  }
  for (size_t i = 0; i < m->live; i++) do_free(k, slot[i]);
  if (k != GLIBC) {
    uint64_t fb = ipx__heap_free_bytes(arena, HOFF);
    uint64_t big = largest_allocatable(k, fb);
    snprintf(metric, sizeof metric, "%s_frag_empty_pct", m->name);
    bench_report(metric, 100.0 * (double)big / (double)fb, "%");
  }
  free(slot);
}

int main(void) {
  bench_pin_cpu(0);
  bench_report("pairs64_mops", pairs64(IPX_LOCKED), "Mops/s");
  bench_report("pairs64_nolock_mops", pairs64(IPX_NOLOCK), "Mops/s");
  bench_report("pairs64_nolog_nolock_mops", pairs64(IPX_NOLOG), "Mops/s");
  bench_report("glibc_pairs64_mops", pairs64(GLIBC), "Mops/s");
  static const struct mix small = {"small", 512u << 20, 100000, 16, 1024, 2000000};
  static const struct mix large = {"large", (size_t)2 << 30, 20000, 16384, 65536,
                                   500000};
  run_mix(&small, IPX_LOCKED, "");
  run_mix(&small, GLIBC, "glibc_");
  run_mix(&large, IPX_LOCKED, "");
  run_mix(&large, GLIBC, "glibc_");
  free(arena);
  return 0;
}
