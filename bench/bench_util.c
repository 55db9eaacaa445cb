#include "bench_util.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

uint64_t bench_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void bench_report(const char *metric, double value, const char *unit) {
  printf("bench: %s %.6g %s\n", metric, value, unit);
  fflush(stdout);
}

int bench_isolated(void (*fn)(void *), void *arg) {
  fflush(stdout);
  pid_t p = fork();
  if (p < 0) return -1;
  if (p == 0) {
    fn(arg);
    fflush(stdout);
    _exit(0);
  }
  int st;
  while (waitpid(p, &st, 0) < 0)
    if (errno != EINTR) return -1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

void bench_populate(void *addr, unsigned long len) {
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif
  if (madvise(addr, len, MADV_POPULATE_WRITE) == 0) return;
  /* Older kernels: write each page's first byte back unchanged. */
  long pg = sysconf(_SC_PAGESIZE);
  for (unsigned long o = 0; o < len; o += (unsigned long)pg) {
    volatile char *c = (volatile char *)addr + o;
    *c = *c;
  }
}

int bench_pin_cpu(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return sched_setaffinity(0, sizeof set, &set);
}

int bench_ncpus(void) {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) != 0) return 1;
  return CPU_COUNT(&set);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

double bench_median(double *v, int n) {
  if (n <= 0) return 0;
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int bench_reps(int dflt) {
  const char *s = getenv("IPX_BENCH_REPS");
  return s && atoi(s) > 0 ? atoi(s) : dflt;
}

const char *bench_name(char *buf, unsigned long len, const char *tag) {
  snprintf(buf, len, "b%d.%s", (int)getpid(), tag);
  return buf;
}

double bench_faults(void) {
  struct rusage u;
  getrusage(RUSAGE_SELF, &u);
  return (double)(u.ru_minflt + u.ru_majflt);
}

uint64_t bench_seed(void) {
  const char *e = getenv("IPX_BENCH_SEED");
  unsigned long long v = e ? strtoull(e, NULL, 0) : 0;
  return v ? (uint64_t)v : UINT64_C(88172645463325252);
}
