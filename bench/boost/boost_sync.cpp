// Synchronization benchmarks, Boost.Interprocess side: the same work and
// metric names as bench/bench_sync.c, so scripts/run-bench.sh prints the
// ipx/Boost ratio per metric.
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <boost/interprocess/sync/interprocess_condition.hpp>
#include <boost/interprocess/sync/interprocess_mutex.hpp>
#include <boost/interprocess/sync/interprocess_recursive_mutex.hpp>
#include <boost/interprocess/sync/interprocess_semaphore.hpp>
#include <boost/interprocess/sync/scoped_lock.hpp>
#include <new>

#include "bench_util.h"

namespace bi = boost::interprocess;

struct Shared {
  bi::interprocess_mutex m;
  bi::interprocess_recursive_mutex r;
  bi::interprocess_condition c;
  bi::interprocess_semaphore s1{0}, s2{0};
  std::atomic<int> go{0}, ready{0};
  std::atomic<long> ops[2];
  unsigned cturn = 0;
  double pp_us = 0;
};

static Shared *sh;

template <class Lock, class Unlock>
static void uncontended(const char *metric, Lock lock, Unlock unlock) {
  const int N = 2000000;
  int reps = bench_reps(7);
  double v[64];
  if (reps > 64) reps = 64;
  for (int rep = 0; rep < reps; rep++) {
    uint64_t t0 = bench_now_ns();
    for (int i = 0; i < N; i++) {
      lock();
      unlock();
    }
    v[rep] = double(bench_now_ns() - t0) / N;
  }
  bench_report(metric, bench_median(v, reps), "ns");
}

typedef void (*role_fn)(int who);

static void run_pair(role_fn fn, int same_cpu) {
  sh->go = 0;
  sh->ready = 0;
  pid_t p[2];
  for (int who = 0; who < 2; who++) {
    p[who] = fork();
    if (p[who] == 0) {
      bench_pin_cpu(same_cpu ? 0 : who);
      sh->ready++;
      while (!sh->go) {
      }
      fn(who);
      _exit(0);
    }
  }
  while (sh->ready < 2) usleep(100);
  sh->go = 1;
  for (int who = 0; who < 2; who++) waitpid(p[who], nullptr, 0);
}

static const int CONTEND_MS = 200;
static void contend(int who) {
  long n = 0;
  uint64_t end = bench_now_ns() + CONTEND_MS * 1000000ull;
  while (bench_now_ns() < end) {
    for (int i = 0; i < 256; i++) {
      sh->m.lock();
      sh->m.unlock();
    }
    n += 256;
  }
  sh->ops[who] = n;
}

static void contended(const char *metric, int same_cpu) {
  int reps = bench_reps(3);
  double v[16];
  if (reps > 16) reps = 16;
  for (int rep = 0; rep < reps; rep++) {
    run_pair(contend, same_cpu);
    v[rep] = double(sh->ops[0] + sh->ops[1]) / (CONTEND_MS * 1e-3) / 1e6;
  }
  bench_report(metric, bench_median(v, reps), "Mops/s");
}

static int pp_same_cpu;
static long pp_rounds() { return pp_same_cpu ? 20000 : 50000; }

static void pp_sem(int who) {
  long n = pp_rounds();
  uint64_t t0 = bench_now_ns();
  for (long i = 0; i < n; i++) {
    if (who == 0) {
      sh->s1.post();
      sh->s2.wait();
    } else {
      sh->s1.wait();
      sh->s2.post();
    }
  }
  if (who == 0) sh->pp_us = double(bench_now_ns() - t0) / n / 1e3;
}

static void pp_cond(int who) {
  long n = pp_rounds();
  uint64_t t0 = bench_now_ns();
  for (long i = 0; i < n; i++) {
    bi::scoped_lock<bi::interprocess_mutex> lk(sh->m);
    if (who == 0) {
      sh->cturn = 1;
      sh->c.notify_one();
      while (sh->cturn != 0) sh->c.wait(lk);
    } else {
      while (sh->cturn != 1) sh->c.wait(lk);
      sh->cturn = 0;
      sh->c.notify_one();
    }
  }
  if (who == 0) sh->pp_us = double(bench_now_ns() - t0) / n / 1e3;
}

static void pingpong(const char *metric, role_fn fn, int same_cpu) {
  int reps = bench_reps(3);
  double v[16];
  if (reps > 16) reps = 16;
  pp_same_cpu = same_cpu;
  for (int rep = 0; rep < reps; rep++) {
    sh->cturn = 0;
    run_pair(fn, same_cpu);
    v[rep] = sh->pp_us;
  }
  bench_report(metric, bench_median(v, reps), "us");
}

int main() {
  void *mem = mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return 1;
  sh = new (mem) Shared;
  uncontended("uncontended_mutex_ns", [] { sh->m.lock(); },
              [] { sh->m.unlock(); });
  uncontended("uncontended_recursive_ns", [] { sh->r.lock(); },
              [] { sh->r.unlock(); });
  int two = bench_ncpus() >= 2;
  if (two) contended("contended_cpus_mops", 0);
  contended("contended_1cpu_mops", 1);
  if (two) pingpong("sem_pingpong_cpus_us", pp_sem, 0);
  pingpong("sem_pingpong_1cpu_us", pp_sem, 1);
  if (two) pingpong("cond_pingpong_cpus_us", pp_cond, 0);
  pingpong("cond_pingpong_1cpu_us", pp_cond, 1);
  return 0;
}
