/* shm + region: the cost of a shared memory object's life cycle, and the
 * bandwidth of reading a mapped file next to memcpy's on this machine.
 *   bench: shm_create_map_unmap_remove_1MiB   microseconds per cycle
 *   bench: file_map_read_1GiB                 GB/s, sequential, via a region
 *   bench: memcpy_bandwidth                   GB/s, same run, for scale
 * IPX_BENCH_FILE_MIB overrides the file size (default 1024). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_util.h"
#include "ipx/ipx.h"

#define MIB (1024u * 1024u)

static void die(const char *what, int err) {
  fprintf(stderr, "bench_shm: %s: %s\n", what, ipx_strerror(err));
  exit(1);
}

static double life_cycle_us(const char *name, int n) {
  uint64_t t0 = bench_now_ns();
  for (int i = 0; i < n; i++) {
    ipx_shm_t *s;
    ipx_region_t *r;
    int e = ipx_shm_open(&s, name, IPX_CREATE_ONLY, IPX_READ_WRITE, 0);
    if (e) die("create", e);
    if ((e = ipx_shm_resize(s, MIB, IPX_SHM_SPARSE))) die("resize", e);
    if ((e = ipx_region_map_shm(&r, s, IPX_READ_WRITE, NULL))) die("map", e);
    ((volatile char *)ipx_region_address(r))[0] = 1;
    ipx_region_unmap(r);
    ipx_shm_close(s);
    if ((e = ipx_shm_remove(name))) die("remove", e);
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

int main(void) {
  char name[64];
  bench_name(name, sizeof name, "shm");

  /* 1. life cycle of a 1 MiB object */
  int reps = bench_reps(7);
  double v[64];
  if (reps > 64) reps = 64;
  life_cycle_us(name, 50); /* warm-up */
  for (int i = 0; i < reps; i++) v[i] = life_cycle_us(name, 200);
  bench_report("shm_create_map_unmap_remove_1MiB", bench_median(v, reps), "us");

  /* 2. sequential read of a mapped file */
  const char *mib_env = getenv("IPX_BENCH_FILE_MIB");
  size_t file_mib = mib_env && atoi(mib_env) > 0 ? (size_t)atoi(mib_env) : 1024;
  size_t file_size = file_mib * MIB;
  char path[128];
  snprintf(path, sizeof path, "/tmp/ipx-bench-%d.dat", (int)getpid());
  int fd = open(path, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0) {
    perror(path);
    return 1;
  }
  char *chunk = malloc(8 * MIB);
  for (size_t i = 0; i < 8 * MIB; i++) chunk[i] = (char)(i * 31);
  for (size_t off = 0; off < file_size; off += 8 * MIB)
    if (pwrite(fd, chunk, 8 * MIB, (off_t)off) != (ssize_t)(8 * MIB)) {
      perror("write");
      unlink(path);
      return 1;
    }
  close(fd);

  ipx_file_mapping_t *fm;
  int e = ipx_file_mapping_open(&fm, path, IPX_READ_ONLY);
  if (e) die("file open", e);
  int passes = 3;
  uint64_t check = 0;
  for (int i = 0; i < passes; i++) {
    ipx_region_t *r;
    uint64_t t0 = bench_now_ns();
    if ((e = ipx_region_map_file(&r, fm, IPX_READ_ONLY, NULL))) die("map", e);
    ipx_region_advise(r, 0, 0, IPX_ADVICE_SEQUENTIAL);
    check += sum_words(ipx_region_address(r), file_size / 8);
    ipx_region_unmap(r);
    v[i] = (double)file_size / (double)(bench_now_ns() - t0); /* bytes/ns = GB/s */
  }
  ipx_file_mapping_close(fm);
  ipx_file_mapping_remove(path);
  bench_report("file_map_read_1GiB", bench_median(v, passes), "GB/s");

  /* 3. memcpy bandwidth, same run */
  size_t buf = 256 * MIB;
  char *src = malloc(buf), *dst = malloc(buf);
  memset(src, 1, buf);
  memset(dst, 2, buf);
  for (int i = 0; i < passes; i++) {
    uint64_t t0 = bench_now_ns();
    memcpy(dst, src, buf);
    v[i] = (double)buf / (double)(bench_now_ns() - t0);
    check += (unsigned char)dst[i * 4096];
  }
  bench_report("memcpy_bandwidth", bench_median(v, passes), "GB/s");
  free(src);
  free(dst);
  free(chunk);
  /* Keeps the sums alive and lets a reader see the data was really read. */
  fprintf(stderr, "checksum %llx\n", (unsigned long long)check);
  return 0;
}
