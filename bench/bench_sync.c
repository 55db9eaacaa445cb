/* Synchronization benchmarks, ipx side.  bench/boost/boost_sync.cpp does
 * the same work with Boost.Interprocess under the same metric names; the
 * C-only metrics (pthread, raw futex) are the floors and references.
 *
 *   uncontended_<kind>_ns       lock + unlock, one thread, median of reps
 *   contended_<cpus|1cpu>_mops  two processes hammering one mutex: total
 *                               lock+unlock pairs per second (millions),
 *                               pinned to two CPUs / both to one CPU
 *   <sem|cond>_pingpong_<cpus|1cpu>_us  round trip between two processes */
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_util.h"
#include "ipx/ipx.h"

/* ---- the floor: a minimal (non-robust) futex lock ---------------------- */
typedef struct {
  _Atomic uint32_t w; /* 0 free, 1 locked, 2 locked with waiters */
} flock_t;

static long futex(void *addr, int op, uint32_t val) {
  return syscall(SYS_futex, addr, op, val, NULL, NULL, 0);
}
static inline void flock_lock(flock_t *l) {
  uint32_t e = 0;
  if (atomic_compare_exchange_strong(&l->w, &e, 1)) return;
  if (e != 2) e = atomic_exchange(&l->w, 2);
  while (e != 0) {
    futex(&l->w, FUTEX_WAIT, 2);
    e = atomic_exchange(&l->w, 2);
  }
}
static inline void flock_unlock(flock_t *l) {
  if (atomic_exchange(&l->w, 0) == 2) futex(&l->w, FUTEX_WAKE, 1);
}

/* ---- shared state ------------------------------------------------------ */
typedef struct {
  ipx_mutex_t m;
  ipx_recursive_mutex_t r;
  ipx_condition_t c;
  ipx_semaphore_t s1, s2;
  pthread_mutex_t pm, prm;
  flock_t fl;
  _Atomic uint32_t turn;
  atomic_int go, stop, ready;
  atomic_long ops[2];
  uint32_t cturn;
  double pp_us; /* the measuring child's result */
} shared_t;

static shared_t *sh;

#define UNCONTENDED(metric, lock, unlock)                         \
  do {                                                            \
    enum { N = 2000000 };                                         \
    int reps = bench_reps(7);                                     \
    double v[64];                                                 \
    if (reps > 64) reps = 64;                                     \
    for (int rep = 0; rep < reps; rep++) {                        \
      uint64_t t0 = bench_now_ns();                               \
      for (int i = 0; i < N; i++) {                               \
        lock;                                                     \
        unlock;                                                   \
      }                                                           \
      v[rep] = (double)(bench_now_ns() - t0) / N;                 \
    }                                                             \
    bench_report(metric, bench_median(v, reps), "ns");            \
  } while (0)

static void uncontended(void) {
  UNCONTENDED("uncontended_mutex_ns", ipx_mutex_lock(&sh->m),
              ipx_mutex_unlock(&sh->m));
  UNCONTENDED("uncontended_recursive_ns", ipx_recursive_mutex_lock(&sh->r),
              ipx_recursive_mutex_unlock(&sh->r));
  UNCONTENDED("uncontended_pthread_pshared_ns", pthread_mutex_lock(&sh->pm),
              pthread_mutex_unlock(&sh->pm));
  UNCONTENDED("uncontended_pthread_robust_ns", pthread_mutex_lock(&sh->prm),
              pthread_mutex_unlock(&sh->prm));
  UNCONTENDED("uncontended_futex_floor_ns", flock_lock(&sh->fl),
              flock_unlock(&sh->fl));
}

/* ---- two processes ------------------------------------------------------ */
typedef void (*role_fn)(int who);

static void run_pair(role_fn fn, int same_cpu) {
  atomic_store(&sh->go, 0);
  atomic_store(&sh->stop, 0);
  atomic_store(&sh->ready, 0);
  pid_t p[2];
  for (int who = 0; who < 2; who++) {
    p[who] = fork();
    if (p[who] == 0) {
      bench_pin_cpu(same_cpu ? 0 : who);
      atomic_fetch_add(&sh->ready, 1);
      while (!atomic_load(&sh->go)) {
      }
      fn(who);
      _exit(0);
    }
  }
  while (atomic_load(&sh->ready) < 2) usleep(100);
  atomic_store(&sh->go, 1);
  for (int who = 0; who < 2; who++) waitpid(p[who], NULL, 0);
}

#define CONTEND_MS 200
static void contend_ipx(int who) {
  long n = 0;
  uint64_t end = bench_now_ns() + CONTEND_MS * 1000000ull;
  while (bench_now_ns() < end) {
    for (int i = 0; i < 256; i++) {
      ipx_mutex_lock(&sh->m);
      ipx_mutex_unlock(&sh->m);
    }
    n += 256;
  }
  atomic_store(&sh->ops[who], n);
}
static void contend_floor(int who) {
  long n = 0;
  uint64_t end = bench_now_ns() + CONTEND_MS * 1000000ull;
  while (bench_now_ns() < end) {
    for (int i = 0; i < 256; i++) {
      flock_lock(&sh->fl);
      flock_unlock(&sh->fl);
    }
    n += 256;
  }
  atomic_store(&sh->ops[who], n);
}

static void contended(const char *metric, role_fn fn, int same_cpu) {
  int reps = bench_reps(3);
  double v[16];
  if (reps > 16) reps = 16;
  for (int rep = 0; rep < reps; rep++) {
    run_pair(fn, same_cpu);
    v[rep] = (double)(atomic_load(&sh->ops[0]) + atomic_load(&sh->ops[1])) /
             (CONTEND_MS * 1e-3) / 1e6;
  }
  bench_report(metric, bench_median(v, reps), "Mops/s");
}

/* Round trips; who 0 measures. */
static long pp_rounds(int same_cpu) { return same_cpu ? 20000 : 50000; }
static int pp_same_cpu;

static void pp_sem(int who) {
  long n = pp_rounds(pp_same_cpu);
  uint64_t t0 = bench_now_ns();
  for (long i = 0; i < n; i++) {
    if (who == 0) {
      ipx_semaphore_post(&sh->s1);
      ipx_semaphore_wait(&sh->s2);
    } else {
      ipx_semaphore_wait(&sh->s1);
      ipx_semaphore_post(&sh->s2);
    }
  }
  if (who == 0) sh->pp_us = (double)(bench_now_ns() - t0) / n / 1e3;
}

static void pp_cond(int who) {
  long n = pp_rounds(pp_same_cpu);
  uint64_t t0 = bench_now_ns();
  for (long i = 0; i < n; i++) {
    ipx_mutex_lock(&sh->m);
    if (who == 0) {
      sh->cturn = 1;
      ipx_condition_signal(&sh->c);
      while (sh->cturn != 0) ipx_condition_wait(&sh->c, &sh->m);
    } else {
      while (sh->cturn != 1) ipx_condition_wait(&sh->c, &sh->m);
      sh->cturn = 0;
      ipx_condition_signal(&sh->c);
    }
    ipx_mutex_unlock(&sh->m);
  }
  if (who == 0) sh->pp_us = (double)(bench_now_ns() - t0) / n / 1e3;
}

/* The floor: a raw futex word passed back and forth. */
static void pp_futex(int who) {
  long n = pp_rounds(pp_same_cpu);
  uint64_t t0 = bench_now_ns();
  for (long i = 0; i < n; i++) {
    uint32_t mine = who == 0 ? 0 : 1;
    uint32_t v;
    while ((v = atomic_load(&sh->turn)) != mine) futex(&sh->turn, FUTEX_WAIT, v);
    atomic_store(&sh->turn, 1 - mine);
    futex(&sh->turn, FUTEX_WAKE, 1);
  }
  if (who == 0) sh->pp_us = (double)(bench_now_ns() - t0) / n / 1e3;
}

static void pingpong(const char *metric, role_fn fn, int same_cpu) {
  int reps = bench_reps(3);
  double v[16];
  if (reps > 16) reps = 16;
  pp_same_cpu = same_cpu;
  for (int rep = 0; rep < reps; rep++) {
    atomic_store(&sh->turn, 0);
    sh->cturn = 0;
    ipx_semaphore_init(&sh->s1, 0);
    ipx_semaphore_init(&sh->s2, 0);
    run_pair(fn, same_cpu);
    v[rep] = sh->pp_us;
  }
  bench_report(metric, bench_median(v, reps), "us");
}

int main(void) {
  sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE,
            MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (sh == MAP_FAILED) return 1;
  memset(sh, 0, sizeof *sh);
  if (ipx_mutex_init(&sh->m) || ipx_recursive_mutex_init(&sh->r) ||
      ipx_condition_init(&sh->c))
    return 1;
  pthread_mutexattr_t a;
  pthread_mutexattr_init(&a);
  pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
  pthread_mutex_init(&sh->pm, &a);
  pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
  pthread_mutex_init(&sh->prm, &a);

  uncontended();
  int two = bench_ncpus() >= 2;
  if (two) contended("contended_cpus_mops", contend_ipx, 0);
  contended("contended_1cpu_mops", contend_ipx, 1);
  if (two) contended("contended_cpus_futex_floor_mops", contend_floor, 0);
  contended("contended_1cpu_futex_floor_mops", contend_floor, 1);
  if (two) pingpong("sem_pingpong_cpus_us", pp_sem, 0);
  pingpong("sem_pingpong_1cpu_us", pp_sem, 1);
  if (two) pingpong("cond_pingpong_cpus_us", pp_cond, 0);
  pingpong("cond_pingpong_1cpu_us", pp_cond, 1);
  if (two) pingpong("futex_pingpong_cpus_us", pp_futex, 0);
  pingpong("futex_pingpong_1cpu_us", pp_futex, 1);
  return 0;
}
