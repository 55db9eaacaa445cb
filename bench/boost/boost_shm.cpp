// Boost.Interprocess side of bench_shm: the same life cycle of a 1 MiB
// shared memory object and the same sequential read of a mapped 1 GiB file.
#include <fcntl.h>
#include <unistd.h>

#include <boost/interprocess/file_mapping.hpp>
#include <boost/interprocess/mapped_region.hpp>
#include <boost/interprocess/shared_memory_object.hpp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "bench_util.h"

namespace bi = boost::interprocess;
static const size_t MIB = 1024 * 1024;

static double life_cycle_us(const char *name, int n) {
  uint64_t t0 = bench_now_ns();
  for (int i = 0; i < n; i++) {
    bi::shared_memory_object s(bi::create_only, name, bi::read_write);
    s.truncate(MIB);
    bi::mapped_region r(s, bi::read_write);
    static_cast<volatile char *>(r.get_address())[0] = 1;
    bi::shared_memory_object::remove(name);
  }
  return (double)(bench_now_ns() - t0) / 1e3 / n;
}

static uint64_t sum_words(const uint64_t *p, size_t n) {
  uint64_t a = 0, b = 0, c = 0, d = 0;
  for (size_t i = 0; i + 4 <= n; i += 4) {
    a += p[i];
    b += p[i + 1];
    c += p[i + 2];
    d += p[i + 3];
  }
  return a + b + c + d;
}

int main() {
  char name[64];
  bench_name(name, sizeof name, "boostshm");
  int reps = bench_reps(7);
  std::vector<double> v(reps > 3 ? reps : 3);
  life_cycle_us(name, 50);
  for (int i = 0; i < reps; i++) v[i] = life_cycle_us(name, 200);
  bench_report("shm_create_map_unmap_remove_1MiB", bench_median(v.data(), reps), "us");

  const char *mib_env = getenv("IPX_BENCH_FILE_MIB");
  size_t file_size = (mib_env && atoi(mib_env) > 0 ? (size_t)atoi(mib_env) : 1024) * MIB;
  char path[128];
  snprintf(path, sizeof path, "/tmp/ipx-bench-boost-%d.dat", (int)getpid());
  int fd = open(path, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0) return 1;
  std::vector<char> chunk(8 * MIB);
  for (size_t i = 0; i < chunk.size(); i++) chunk[i] = (char)(i * 31);
  for (size_t off = 0; off < file_size; off += chunk.size())
    if (pwrite(fd, chunk.data(), chunk.size(), (off_t)off) != (ssize_t)chunk.size()) {
      unlink(path);
      return 1;
    }
  close(fd);
  uint64_t check = 0;
  {
    bi::file_mapping fm(path, bi::read_only);
    for (int i = 0; i < 3; i++) {
      uint64_t t0 = bench_now_ns();
      bi::mapped_region r(fm, bi::read_only);
      r.advise(bi::mapped_region::advice_sequential);
      check += sum_words(static_cast<const uint64_t *>(r.get_address()), file_size / 8);
      v[i] = (double)file_size / (double)(bench_now_ns() - t0);
    }
  }
  bi::file_mapping::remove(path);
  bench_report("file_map_read_1GiB", bench_median(v.data(), 3), "GB/s");
  fprintf(stderr, "checksum %llx\n", (unsigned long long)check);
  return 0;
}
