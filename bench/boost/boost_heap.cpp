// boost_heap: Boost.Interprocess 1.74 doing bench_heap.c's work with
// rbtree_best_fit in a managed_heap_memory segment.  The default segment
// takes its interprocess_mutex (a process-shared pthread mutex) per op;
// the _nolock metric uses null_mutex_family.  Same metric names as the ipx
// side.
#include <boost/interprocess/managed_heap_memory.hpp>
#include <boost/interprocess/mem_algo/rbtree_best_fit.hpp>
#include <boost/interprocess/sync/mutex_family.hpp>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <new>
#include <vector>

#include "bench_util.h"

namespace bi = boost::interprocess;
using locked_heap = bi::managed_heap_memory;
using nolock_heap =
    bi::basic_managed_heap_memory<char, bi::rbtree_best_fit<bi::null_mutex_family>,
                                  bi::iset_index>;

static uint64_t rng = 88172645463325252ull;
static inline uint64_t xrand() {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

template <class Seg>
static double pairs64() {
  Seg seg(64u << 20);
  const long n = 1000000;
  uint64_t t0 = bench_now_ns();
  for (long i = 0; i < n; i++) {
    void *p = seg.allocate(64, std::nothrow);
    *(volatile char *)p = 1;
    seg.deallocate(p);
  }
  return 2.0 * n / (double)(bench_now_ns() - t0) * 1e3;
}

static uint64_t largest_allocatable(locked_heap &seg, uint64_t hi) {
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
  size_t arena, live, min, max;
  long ops;
};

static void run_mix(const mix &m) {
  locked_heap seg(m.arena);
  std::vector<void *> slot(m.live);
  rng = 88172645463325252ull;
  size_t span = m.max - m.min + 1;
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
  char metric[64];
  snprintf(metric, sizeof metric, "%s_mix_mops", m.name);
  bench_report(metric, mops, "Mops/s");
  uint64_t fb = seg.get_free_memory();
  snprintf(metric, sizeof metric, "%s_frag_live_pct", m.name);
  bench_report(metric, 100.0 * (double)largest_allocatable(seg, fb) / (double)fb, "%");
  for (size_t i = 0; i < m.live; i++) seg.deallocate(slot[i]);
  fb = seg.get_free_memory();
  snprintf(metric, sizeof metric, "%s_frag_empty_pct", m.name);
  bench_report(metric, 100.0 * (double)largest_allocatable(seg, fb) / (double)fb, "%");
}

int main() {
  bench_pin_cpu(0);
  bench_report("pairs64_mops", pairs64<locked_heap>(), "Mops/s");
  bench_report("pairs64_nolock_mops", pairs64<nolock_heap>(), "Mops/s");
  run_mix({"small", 512u << 20, 100000, 16, 1024, 2000000});
  run_mix({"large", (size_t)2 << 30, 20000, 16384, 65536, 500000});
  return 0;
}
