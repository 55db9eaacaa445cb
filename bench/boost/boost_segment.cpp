// Boost.Interprocess side of bench_segment: the same 64 MiB
// managed_shared_memory created, opened from another process, and grown by
// 64 MiB with no one attached; and the page faults each takes.
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

struct m {
  double us, faults;
};

static m create_us(const char *name) {
  double v[OPS], f[OPS];
  for (int i = 0; i < OPS; i++) {
    double f0 = bench_faults();
    uint64_t t0 = bench_now_ns();
    {
      bi::managed_shared_memory seg(bi::create_only, name, 64 * MIB);
      v[i] = (double)(bench_now_ns() - t0) / 1e3;
      f[i] = bench_faults() - f0;
    }
    bi::shared_memory_object::remove(name);
  }
  return m{bench_median(v, OPS), bench_median(f, OPS)};
}

static m open_other_us(const char *name) {
  int fds[2];
  if (pipe(fds) != 0) exit(1);
  bi::managed_shared_memory seg(bi::create_only, name, 64 * MIB);
  pid_t p = fork();
  if (p == 0) {
    double v[OPS], f[OPS];
    for (int i = 0; i < OPS; i++) {
      double f0 = bench_faults();
      uint64_t t0 = bench_now_ns();
      {
        bi::managed_shared_memory o(bi::open_only, name);
        v[i] = (double)(bench_now_ns() - t0) / 1e3;
        f[i] = bench_faults() - f0;
      }
    }
    m res{bench_median(v, OPS), bench_median(f, OPS)};
    _exit(write(fds[1], &res, sizeof res) == sizeof res ? 0 : 1);
  }
  m res{-1, -1};
  if (read(fds[0], &res, sizeof res) != sizeof res) exit(1);
  waitpid(p, NULL, 0);
  close(fds[0]);
  close(fds[1]);
  bi::shared_memory_object::remove(name);
  return res;
}

static m grow_us(const char *name) {
  double v[OPS], f[OPS];
  for (int i = 0; i < OPS; i++) {
    { bi::managed_shared_memory seg(bi::create_only, name, 64 * MIB); }
    double f0 = bench_faults();
    uint64_t t0 = bench_now_ns();
    bi::managed_shared_memory::grow(name, 64 * MIB);
    v[i] = (double)(bench_now_ns() - t0) / 1e3;
    f[i] = bench_faults() - f0;
    bi::shared_memory_object::remove(name);
  }
  return m{bench_median(v, OPS), bench_median(f, OPS)};
}

int main() {
  char name[64];
  bench_name(name, sizeof name, "bseg");
  int reps = bench_reps(5);
  std::vector<double> c(reps), o(reps), g(reps), cf(reps), of(reps), gf(reps);
  create_us(name);
  for (int i = 0; i < reps; i++) {
    m x = create_us(name), y = open_other_us(name), z = grow_us(name);
    c[i] = x.us;
    cf[i] = x.faults;
    o[i] = y.us;
    of[i] = y.faults;
    g[i] = z.us;
    gf[i] = z.faults;
  }
  bench_report("segment_create_64MiB", bench_median(c.data(), reps), "us");
  bench_report("segment_open_64MiB_other_process", bench_median(o.data(), reps), "us");
  bench_report("segment_grow_64MiB_by_64MiB", bench_median(g.data(), reps), "us");
  bench_report("segment_create_64MiB_faults", bench_median(cf.data(), reps), "faults");
  bench_report("segment_open_64MiB_other_process_faults", bench_median(of.data(), reps),
               "faults");
  bench_report("segment_grow_64MiB_by_64MiB_faults", bench_median(gf.data(), reps),
               "faults");
  return 0;
}
