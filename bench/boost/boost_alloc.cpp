// boost_alloc: Boost.Interprocess 1.74 doing bench_alloc.c's work in a
// managed_shared_memory segment (its defaults: rbtree_best_fit with
// mutex_family, so one interprocess_mutex lock per op).  The segment is a
// sparse POSIX shared memory object, like ipx's.  Same metric names as the
// ipx side.
#include <boost/interprocess/managed_shared_memory.hpp>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <new>
#include <vector>

#include "bench_util.h"

namespace bi = boost::interprocess;

static uint64_t rng = 88172645463325252ull;
static inline uint64_t xrand() {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

struct segment {
  char name[64];
  bi::managed_shared_memory seg;
  explicit segment(size_t size)
      : seg(bi::create_only, bench_name(name, sizeof name, "balloc"), size) {}
  ~segment() { bi::shared_memory_object::remove(name); }
};

static double pairs64() {
  segment s(64u << 20);
  const long n = 1000000;
  uint64_t t0 = bench_now_ns();
  for (long i = 0; i < n; i++) {
    void *p = s.seg.allocate(64, std::nothrow);
    *(volatile char *)p = 1;
    s.seg.deallocate(p);
  }
  return 2.0 * n / (double)(bench_now_ns() - t0) * 1e3;
}

static uint64_t largest_allocatable(bi::managed_shared_memory &seg,
                                    uint64_t hi) {
  uint64_t lo = 0;
  while (lo < hi) {
    uint64_t mid = lo + (hi - lo + 1) / 2;
    void *p = seg.allocate((size_t)mid, std::nothrow);
    if (p) {
      seg.deallocate(p);
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  return lo;
}

struct mix {
  const char *name;
  size_t seg, live, min, max;
  long ops;
  bool prefault;
};

static void run_mix(const mix &m) {
  segment s(m.seg);
  bi::managed_shared_memory &seg = s.seg;
  if (m.prefault) bench_populate(seg.get_address(), m.seg);
  std::vector<void *> slot(m.live);
  rng = bench_seed();
  size_t span = m.max - m.min + 1;
  double f0 = bench_faults();
  uint64_t t0 = bench_now_ns();
  long ops = 0;
  for (size_t i = 0; i < m.live; i++, ops++) {
    slot[i] = seg.allocate(m.min + (size_t)(xrand() % span), std::nothrow);
    *(volatile uint64_t *)slot[i] = i;
  }
  while (ops < m.ops) {
    size_t i = (size_t)(xrand() % m.live);
    seg.deallocate(slot[i]);
    slot[i] = seg.allocate(m.min + (size_t)(xrand() % span), std::nothrow);
    *(volatile uint64_t *)slot[i] = i;
    ops += 2;
  }
  double mops = (double)ops / (double)(bench_now_ns() - t0) * 1e3;
  double faults = bench_faults() - f0;
  char metric[64];
  snprintf(metric, sizeof metric, "%s_mix_mops", m.name);
  bench_report(metric, mops, "Mops/s");
  snprintf(metric, sizeof metric, "%s_mix_faults", m.name);
  bench_report(metric, faults, "faults");
  if (m.prefault) return;
  uint64_t fb = seg.get_free_memory();
  snprintf(metric, sizeof metric, "%s_frag_live_pct", m.name);
  bench_report(metric, 100.0 * (double)largest_allocatable(seg, fb) / (double)fb, "%");
  for (size_t i = 0; i < m.live; i++) seg.deallocate(slot[i]);
  fb = seg.get_free_memory();
  snprintf(metric, sizeof metric, "%s_frag_empty_pct", m.name);
  bench_report(metric, 100.0 * (double)largest_allocatable(seg, fb) / (double)fb, "%");
}

static void run_pairs(void *) { bench_report("pairs64_mops", pairs64(), "Mops/s"); }
static void run_small(void *) {
  run_mix({"small", 512u << 20, 100000, 16, 1024, 2000000, false});
}
static void run_large(void *) {
  run_mix({"large", (size_t)2 << 30, 20000, 16384, 65536, 500000, false});
}

static void run_small_pf(void *) {
  run_mix({"small_prefaulted", 512u << 20, 100000, 16, 1024, 2000000, true});
}
static void run_large_pf(void *) {
  run_mix({"large_prefaulted", (size_t)2 << 30, 20000, 16384, 65536, 500000,
           true});
}

int main() {
  bench_pin_cpu(0);
  /* Each workload in a fresh process, as on the ipx side. */
  bench_isolated(run_pairs, nullptr);
  bench_isolated(run_small, nullptr);
  bench_isolated(run_large, nullptr);
  bench_isolated(run_small_pf, nullptr);
  bench_isolated(run_large_pf, nullptr);
  return 0;
}
