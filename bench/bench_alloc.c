/* bench_alloc: allocation through the public API on a real shared memory
 * segment (ipx_segment_allocate / ipx_segment_deallocate, each taking the
 * segment's robust lock), against Boost.Interprocess managed_shared_memory
 * (bench/boost/boost_alloc.cpp: rbtree_best_fit with its default
 * mutex_family, one interprocess_mutex lock per op) and glibc malloc.  One
 * op is one allocate or one deallocate.  Segments are sparse: pages are
 * touched only as the allocator and the benchmark use them.  Metrics:
 *   pairs64_mops          1M allocate+free pairs of 64 B, 64 MiB segment
 *   small_mix_mops        100k live blocks of 16..1024 B, 2M ops, 512 MiB
 *   large_mix_mops        20k live blocks of 16..64 KiB, 500k ops, 2 GiB
 *   {small,large}_prefaulted_mix_mops  the same on a segment populated
 *                         first (glibc_small_prefaulted: a heap populated
 *                         first), no page faults in the timed region
 *   {small,large}_frag_{live,empty}_pct  largest allocatable block (binary
 *                         search with real allocations) / free memory, with
 *                         the working set live and after freeing all
 *   *_mix_faults          page faults taken in the timed region
 *   seglock_pair_ns       (ipx) one segment lock + unlock, uncontended
 *   glibc_*               the same workloads on malloc/free.
 * Every workload runs in a process of its own (bench_isolated), on every
 * side.  IPX_BENCH_SEED=n replays the mixes with another random sequence
 * (both sides): fragmentation figures are exact for one sequence but move
 * by tenths of a point from one sequence to the next. */
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_util.h"
#include "ipx/ipx.h"
#include "segment/segment_internal.h"

static uint64_t rng = 88172645463325252ull;
static inline uint64_t xrand(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

static ipx_segment_t *seg;
static char seg_name[64];

static void seg_open(uint64_t size) {
  bench_name(seg_name, sizeof seg_name, "alloc");
  ipx_segment_options_t o;
  ipx_segment_options_init(&o);
  o.mode = IPX_CREATE_ONLY;
  o.size = size;
  int r = ipx_segment_open_shm(&seg, seg_name, &o);
  if (r) {
    fprintf(stderr, "bench_alloc: segment of %llu bytes: %s\n",
            (unsigned long long)size, ipx_strerror(r));
    exit(1);
  }
}

static void seg_done(void) {
  ipx_segment_close(seg);
  ipx_segment_remove_shm(seg_name);
  seg = NULL;
}

static inline void *do_alloc(int glibc, size_t n) {
  if (glibc) return malloc(n);
  void *p;
  return ipx_segment_allocate(seg, n, &p) ? NULL : p;
}
static inline void do_free(int glibc, void *p) {
  if (glibc)
    free(p);
  else
    ipx_segment_deallocate(seg, p);
}

static double pairs64(int glibc) {
  const long n = 1000000;
  if (!glibc) seg_open(64u << 20);
  uint64_t t0 = bench_now_ns();
  for (long i = 0; i < n; i++) {
    void *p = do_alloc(glibc, 64);
    *(volatile char *)p = 1;
    do_free(glibc, p);
  }
  double mops = 2.0 * n / (double)(bench_now_ns() - t0) * 1e3;
  if (!glibc) seg_done();
  return mops;
}

static double lock_pair_ns(void) {
  const long n = 1000000;
  seg_open(64u << 10);
  uint64_t t0 = bench_now_ns();
  for (long i = 0; i < n; i++) {
    ipx__seg_lock(seg);
    ipx__seg_unlock(seg);
  }
  double ns = (double)(bench_now_ns() - t0) / (double)n;
  seg_done();
  return ns;
}

static uint64_t largest_allocatable(uint64_t hi) {
  uint64_t lo = 0;
  while (lo < hi) {
    uint64_t mid = lo + (hi - lo + 1) / 2;
    void *p = do_alloc(0, (size_t)mid);
    if (p) {
      do_free(0, p);
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  return lo;
}

static double frag_pct(void) {
  uint64_t fb = 0;
  ipx_segment_free_memory(seg, &fb);
  return 100.0 * (double)largest_allocatable(fb) / (double)fb;
}

struct mix {
  const char *name;
  size_t seg, live, min, max;
  long ops;
  int prefault; /* populate the whole segment before the clock starts */
};

/* glibc's counterpart of a populated segment: one heap of `size` bytes
 * grown at once (M_TOP_PAD), never trimmed, its free top populated.  The
 * process is a fresh one (bench_isolated), so the heap is all top. */
static void glibc_populate(size_t size) {
  mallopt(M_TOP_PAD, (int)(size > INT32_MAX ? INT32_MAX : size));
  mallopt(M_TRIM_THRESHOLD, INT32_MAX);
  char *p = malloc(64);
  long pg = sysconf(_SC_PAGESIZE);
  /* From two pages past p to the heap's end: the pages of p and of the
   * top chunk's header right after it are in memory already. */
  uintptr_t lo = ((uintptr_t)p + 2 * (uintptr_t)pg) & ~((uintptr_t)pg - 1);
  uintptr_t hi = (uintptr_t)sbrk(0);
  if (hi > lo) bench_populate((void *)lo, (unsigned long)(hi - lo));
  free(p);
}

static void run_mix(const struct mix *m, int glibc) {
  if (!glibc) seg_open(m->seg);
  if (!glibc && m->prefault) bench_populate(ipx_segment_base(seg), m->seg);
  if (glibc && m->prefault) glibc_populate(m->seg);
  void **slot = malloc(m->live * sizeof *slot);
  /* Written here, outside the clock, as Boost's side's std::vector is. */
  for (size_t i = 0; i < m->live; i++) ((void *volatile *)slot)[i] = NULL;
  rng = bench_seed();
  size_t span = m->max - m->min + 1;
  double f0 = bench_faults();
  uint64_t t0 = bench_now_ns();
  long ops = 0;
  for (size_t i = 0; i < m->live; i++, ops++) {
    slot[i] = do_alloc(glibc, m->min + (size_t)(xrand() % span));
    *(volatile uint64_t *)slot[i] = i;
  }
  while (ops < m->ops) {
    size_t i = (size_t)(xrand() % m->live);
    do_free(glibc, slot[i]);
    slot[i] = do_alloc(glibc, m->min + (size_t)(xrand() % span));
    *(volatile uint64_t *)slot[i] = i;
    ops += 2;
  }
  double mops = (double)ops / (double)(bench_now_ns() - t0) * 1e3;
  double faults = bench_faults() - f0;
  char metric[64];
  snprintf(metric, sizeof metric, "%s%s_mix_mops", glibc ? "glibc_" : "",
           m->name);
  bench_report(metric, mops, "Mops/s");
  snprintf(metric, sizeof metric, "%s%s_mix_faults", glibc ? "glibc_" : "",
           m->name);
  bench_report(metric, faults, "faults");
  if (!glibc && !m->prefault) {
    snprintf(metric, sizeof metric, "%s_frag_live_pct", m->name);
    bench_report(metric, frag_pct(), "%");
  }
  for (size_t i = 0; i < m->live; i++) do_free(glibc, slot[i]);
  if (!glibc && !m->prefault) {
    snprintf(metric, sizeof metric, "%s_frag_empty_pct", m->name);
    bench_report(metric, frag_pct(), "%");
  }
  if (!glibc) seg_done();
  free(slot);
}

static const struct mix small = {"small", 512u << 20, 100000, 16, 1024,
                                  2000000, 0};
static const struct mix large = {"large", (size_t)2 << 30, 20000, 16384,
                                  65536, 500000, 0};
/* Both mixes again with no page faults in the timed region: what the
 * allocators cost apart from the kernel's first touches, which cost more
 * on shared memory than on glibc's private memory. */
static const struct mix small_pf = {"small_prefaulted", 512u << 20, 100000,
                                     16, 1024, 2000000, 1};
static const struct mix large_pf = {"large_prefaulted", (size_t)2 << 30,
                                     20000, 16384, 65536, 500000, 1};

static void w_pairs(void *glibc) {
  bench_report(glibc ? "glibc_pairs64_mops" : "pairs64_mops",
               pairs64(glibc != NULL), "Mops/s");
}
static void w_lock(void *unused) {
  (void)unused;
  bench_report("seglock_pair_ns", lock_pair_ns(), "ns");
}
static void w_small(void *glibc) { run_mix(&small, glibc != NULL); }
static void w_large(void *glibc) { run_mix(&large, glibc != NULL); }
static void w_small_pf(void *glibc) { run_mix(&small_pf, glibc != NULL); }
static void w_large_pf(void *unused) {
  (void)unused;
  run_mix(&large_pf, 0);
}

/* IPX_BENCH_ONLY=name[,name...] runs only those workloads (pairs, lock,
 * small, glibc_small, large, glibc_large, small_prefaulted...): for a
 * profiler. */
static int want(const char *name) {
  const char *only = getenv("IPX_BENCH_ONLY");
  if (!only || !*only) return 1;
  size_t n = strlen(name);
  for (const char *p = only; *p;) {
    const char *e = strchr(p, ',');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    if (len == n && strncmp(p, name, n) == 0) return 1;
    p += len + (e != NULL);
  }
  return 0;
}

static void run(const char *name, void (*fn)(void *), void *arg) {
  if (want(name)) bench_isolated(fn, arg);
}

int main(void) {
  static int yes = 1;
  bench_pin_cpu(0);
  /* Each workload in a fresh process: malloc adapts its thresholds to what
   * a process freed before (a large free raises its mmap and trim
   * thresholds), and pages faulted in by one workload would favour the
   * next. */
  run("pairs", w_pairs, NULL);
  run("glibc_pairs", w_pairs, &yes);
  run("lock", w_lock, NULL);
  run("small", w_small, NULL);
  run("glibc_small", w_small, &yes);
  run("large", w_large, NULL);
  run("glibc_large", w_large, &yes);
  run("small_prefaulted", w_small_pf, NULL);
  run("glibc_small_prefaulted", w_small_pf, &yes);
  run("large_prefaulted", w_large_pf, NULL);
  return 0;
}
