// Boost.Interprocess side of bench_segment: the same 64 MiB
// managed_shared_memory created, opened from another process, and grown by
// 64 MiB with no one attached.
#include <sys/wait.h>
#include <unistd.h>

#include <boost/interprocess/managed_shared_memory.hpp>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "bench_util.h"

namespace bi = boost::interprocess;
static const size_t MIB = 1024 * 1024;
static const int OPS = 51;

static double create_us(const char *name) {
  double v[OPS];
  for (int i = 0; i < OPS; i++) {
    uint64_t t0 = bench_now_ns();
    {
      bi::managed_shared_memory m(bi::create_only, name, 64 * MIB);
      v[i] = (double)(bench_now_ns() - t0) / 1e3;
    }
    bi::shared_memory_object::remove(name);
  }
  return bench_median(v, OPS);
}

static double open_other_us(const char *name) {
  int fds[2];
  if (pipe(fds) != 0) exit(1);
  bi::managed_shared_memory m(bi::create_only, name, 64 * MIB);
  pid_t p = fork();
  if (p == 0) {
    double v[OPS];
    for (int i = 0; i < OPS; i++) {
      uint64_t t0 = bench_now_ns();
      {
        bi::managed_shared_memory o(bi::open_only, name);
        v[i] = (double)(bench_now_ns() - t0) / 1e3;
      }
    }
    double med = bench_median(v, OPS);
    _exit(write(fds[1], &med, sizeof med) == sizeof med ? 0 : 1);
  }
  double med = -1;
  if (read(fds[0], &med, sizeof med) != sizeof med) exit(1);
  waitpid(p, NULL, 0);
  close(fds[0]);
  close(fds[1]);
  bi::shared_memory_object::remove(name);
  return med;
}

static double grow_us(const char *name) {
  double v[OPS];
  for (int i = 0; i < OPS; i++) {
    { bi::managed_shared_memory m(bi::create_only, name, 64 * MIB); }
    uint64_t t0 = bench_now_ns();
    bi::managed_shared_memory::grow(name, 64 * MIB);
    v[i] = (double)(bench_now_ns() - t0) / 1e3;
    bi::shared_memory_object::remove(name);
  }
  return bench_median(v, OPS);
}

int main() {
  char name[64];
  bench_name(name, sizeof name, "bseg");
  int reps = bench_reps(5);
  std::vector<double> c(reps), o(reps), g(reps);
  create_us(name);
  for (int i = 0; i < reps; i++) {
    c[i] = create_us(name);
    o[i] = open_other_us(name);
    g[i] = grow_us(name);
  }
  bench_report("segment_create_64MiB", bench_median(c.data(), reps), "us");
  bench_report("segment_open_64MiB_other_process", bench_median(o.data(), reps), "us");
  bench_report("segment_grow_64MiB_by_64MiB", bench_median(g.data(), reps), "us");
  return 0;
}
