// boost_objects: Boost.Interprocess doing bench_objects.c's work in a
// 256 MiB managed_shared_memory: construct<int>(name)(i), find<int>(name),
// destroy<int>(name) of N names in random order.  The default index
// (iset_index, an intrusive red-black tree) gives the plain metrics; a
// segment with iunordered_set_index (a hash index) gives find_*_hashidx_*
// (and its construct/destroy as *_hashidx_* for reference).
#include <boost/interprocess/indexes/iunordered_set_index.hpp>
#include <boost/interprocess/managed_shared_memory.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "bench_util.h"

namespace bi = boost::interprocess;
using hash_shm =
    bi::basic_managed_shared_memory<char, bi::rbtree_best_fit<bi::mutex_family>,
                                    bi::iunordered_set_index>;

static uint64_t rng = 88172645463325252ull;
static uint64_t xrand() {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

static void shuffle(std::vector<int> &v) {
  for (int i = (int)v.size() - 1; i > 0; i--) {
    int j = (int)(xrand() % (uint64_t)(i + 1));
    std::swap(v[i], v[j]);
  }
}

static double mops(int n, uint64_t t0) {
  return (double)n / (double)(bench_now_ns() - t0) * 1e3;
}

template <class Seg>
static void run(int n, const char *tag, const char *suffix) {
  char segname[64], metric[96];
  bench_name(segname, sizeof segname, "objects");
  bi::shared_memory_object::remove(segname);
  {
    Seg s(bi::create_only, segname, 256u << 20);
    std::vector<std::string> names(n);
    std::vector<int> order(n);
    for (int i = 0; i < n; i++) {
      char b[24];
      snprintf(b, sizeof b, "object-%d", i);
      names[i] = b;
      order[i] = i;
    }
    rng = 88172645463325252ull;

    shuffle(order);
    uint64_t t0 = bench_now_ns();
    for (int i = 0; i < n; i++)
      s.template construct<int>(names[order[i]].c_str())(order[i]);
    double c = mops(n, t0);

    shuffle(order);
    long sum = 0;
    t0 = bench_now_ns();
    for (int i = 0; i < n; i++)
      sum += *s.template find<int>(names[order[i]].c_str()).first;
    double f = mops(n, t0);
    if (sum != (long)n * (n - 1) / 2) std::abort();

    shuffle(order);
    t0 = bench_now_ns();
    for (int i = 0; i < n; i++) s.template destroy<int>(names[order[i]].c_str());
    double d = mops(n, t0);

    snprintf(metric, sizeof metric, "construct_%s%s_mops", tag, suffix);
    bench_report(metric, c, "Mops/s");
    snprintf(metric, sizeof metric, "find_%s%s_mops", tag, suffix);
    bench_report(metric, f, "Mops/s");
    snprintf(metric, sizeof metric, "destroy_%s%s_mops", tag, suffix);
    bench_report(metric, d, "Mops/s");
  }
  bi::shared_memory_object::remove(segname);
}

int main() {
  bench_pin_cpu(0);
  run<bi::managed_shared_memory>(100000, "100k", "");
  run<bi::managed_shared_memory>(10000, "10k", "");
  run<hash_shm>(100000, "100k", "_hashidx");
  run<hash_shm>(10000, "10k", "_hashidx");
  return 0;
}
