/* rwlock: uncontended and 4-reader + 1-writer figures of the robust
 * sharable mutex (the Boost side, boost/boost_rwlock.cpp, does the same
 * work with interprocess_sharable_mutex).
 *   bench: rwlock_uncontended_exclusive   ns per lock + unlock
 *   bench: rwlock_uncontended_sharable    ns per lock_sharable + unlock
 *   bench: rwlock_4r1w_total              M lock+unlock per second, 4 reader
 *                                         processes + 1 writer process
 *   bench: rwlock_4r1w_writes             k exclusive sections per second
 *   bench: named_sharable_mutex_exclusive ns per lock + unlock of a named
 *                                         sharable mutex (Boost:
 *                                         named_sharable_mutex)
 *   bench: named_mutex_lock_unlock        ns per lock + unlock of a named
 *                                         mutex (Boost: named_mutex)
 *   bench: named_semaphore_post_wait      ns per post + wait of a named
 *                                         semaphore (Boost: named_semaphore) */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_util.h"
#include "ipx/ipx.h"

struct area {
  ipx_sharable_mutex_t m __attribute__((aligned(64)));
  volatile long rec[8];
  volatile int go, stop;
  long counts[5] __attribute__((aligned(64)));
};

static void check(int e, const char *what) {
  if (e != 0) {
    fprintf(stderr, "bench_rwlock: %s: %s\n", what, ipx_strerror(e));
    exit(1);
  }
}

static double uncontended(struct area *a, int sharable, long n) {
  uint64_t t0 = bench_now_ns();
  if (sharable) {
    for (long i = 0; i < n; i++) {
      ipx_sharable_mutex_lock_sharable(&a->m);
      ipx_sharable_mutex_unlock_sharable(&a->m);
    }
  } else {
    for (long i = 0; i < n; i++) {
      ipx_sharable_mutex_lock(&a->m);
      ipx_sharable_mutex_unlock(&a->m);
    }
  }
  return (double)(bench_now_ns() - t0) / (double)n;
}

static void worker(struct area *a, int idx, int writer) {
  long n = 0;
  while (!a->go) {
  }
  while (!a->stop) {
    if (writer) {
      ipx_sharable_mutex_lock(&a->m);
      for (int f = 0; f < 8; f++) a->rec[f]++;
      ipx_sharable_mutex_unlock(&a->m);
    } else {
      ipx_sharable_mutex_lock_sharable(&a->m);
      long s = 0;
      for (int f = 0; f < 8; f++) s += a->rec[f];
      if (s != 8 * a->rec[0]) abort();
      ipx_sharable_mutex_unlock_sharable(&a->m);
    }
    n++;
  }
  a->counts[idx] = n;
  _exit(0);
}

static void mixed(struct area *a, double *total, double *writes) {
  a->go = a->stop = 0;
  pid_t pid[5];
  for (int i = 0; i < 5; i++) {
    pid[i] = fork();
    if (pid[i] == 0) worker(a, i, i == 4);
  }
  usleep(20000);
  uint64_t t0 = bench_now_ns();
  a->go = 1;
  usleep(300000);
  a->stop = 1;
  for (int i = 0; i < 5; i++) waitpid(pid[i], NULL, 0);
  double s = (double)(bench_now_ns() - t0) / 1e9;
  long sum = 0;
  for (int i = 0; i < 5; i++) sum += a->counts[i];
  *total = (double)sum / s / 1e6;
  *writes = (double)a->counts[4] / s / 1e3;
}

int main(void) {
  struct area *a = mmap(NULL, sizeof *a, PROT_READ | PROT_WRITE,
                        MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (a == MAP_FAILED) return 1;
  check(ipx_sharable_mutex_init(&a->m), "init");
  int reps = bench_reps(5);
  double ex[32], sh[32], tot[32], wr[32];
  if (reps > 32) reps = 32;
  uncontended(a, 0, 200000);
  for (int i = 0; i < reps; i++) {
    ex[i] = uncontended(a, 0, 2000000);
    sh[i] = uncontended(a, 1, 2000000);
  }
  bench_report("rwlock_uncontended_exclusive", bench_median(ex, reps), "ns");
  bench_report("rwlock_uncontended_sharable", bench_median(sh, reps), "ns");
  int mreps = reps < 3 ? reps : 3;
  for (int i = 0; i < mreps; i++) mixed(a, &tot[i], &wr[i]);
  bench_report("rwlock_4r1w_total", bench_median(tot, mreps), "Mops/s");
  bench_report("rwlock_4r1w_writes", bench_median(wr, mreps), "kops/s");

  char name[64];
  bench_name(name, sizeof name, "nsm");
  ipx_named_t *n;
  check(ipx_named_sharable_mutex_open(&n, name, IPX_CREATE_ONLY, 0), "named");
  ipx_sharable_mutex_t *nm = ipx_named_sharable_mutex(n);
  double nv[32];
  for (int i = 0; i < reps; i++) {
    uint64_t t0 = bench_now_ns();
    for (long k = 0; k < 2000000; k++) {
      ipx_sharable_mutex_lock(nm);
      ipx_sharable_mutex_unlock(nm);
    }
    nv[i] = (double)(bench_now_ns() - t0) / 2e6;
  }
  ipx_named_close(n);
  ipx_named_remove(name);
  bench_report("named_sharable_mutex_exclusive", bench_median(nv, reps), "ns");

  bench_name(name, sizeof name, "nmx");
  check(ipx_named_mutex_open(&n, name, IPX_CREATE_ONLY, 0), "named mutex");
  ipx_mutex_t *mx = ipx_named_mutex(n);
  for (int i = 0; i < reps; i++) {
    uint64_t t0 = bench_now_ns();
    for (long k = 0; k < 2000000; k++) {
      ipx_mutex_lock(mx);
      ipx_mutex_unlock(mx);
    }
    nv[i] = (double)(bench_now_ns() - t0) / 2e6;
  }
  ipx_named_close(n);
  ipx_named_remove(name);
  bench_report("named_mutex_lock_unlock", bench_median(nv, reps), "ns");

  bench_name(name, sizeof name, "nsem");
  check(ipx_named_semaphore_open(&n, name, IPX_CREATE_ONLY, 0, 0),
        "named semaphore");
  ipx_semaphore_t *sem = ipx_named_semaphore(n);
  for (int i = 0; i < reps; i++) {
    uint64_t t0 = bench_now_ns();
    for (long k = 0; k < 2000000; k++) {
      ipx_semaphore_post(sem);
      ipx_semaphore_wait(sem);
    }
    nv[i] = (double)(bench_now_ns() - t0) / 2e6;
  }
  ipx_named_close(n);
  ipx_named_remove(name);
  bench_report("named_semaphore_post_wait", bench_median(nv, reps), "ns");
  return 0;
}
