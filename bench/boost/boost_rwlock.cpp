// Boost side of bench/bench_rwlock.c: the same work with Boost 1.74's
// interprocess_sharable_mutex (same metric names).
#include <boost/interprocess/sync/interprocess_sharable_mutex.hpp>
#include <boost/interprocess/sync/named_mutex.hpp>
#include <boost/interprocess/sync/named_semaphore.hpp>
#include <boost/interprocess/sync/named_sharable_mutex.hpp>
#include <string>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <algorithm>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

using boost::interprocess::interprocess_sharable_mutex;

static uint64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
static void report(const char *m, double v, const char *u) {
  std::printf("bench: %s %.6g %s\n", m, v, u);
  std::fflush(stdout);
}
static double median(double *v, int n) {
  std::sort(v, v + n);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}
static int reps_of(int d) {
  const char *s = std::getenv("IPX_BENCH_REPS");
  return s && std::atoi(s) > 0 ? std::atoi(s) : d;
}

struct area {
  alignas(64) interprocess_sharable_mutex m;
  volatile long rec[8];
  volatile int go, stop;
  alignas(64) long counts[5];
};

static double uncontended(area *a, bool sharable, long n) {
  uint64_t t0 = now_ns();
  if (sharable) {
    for (long i = 0; i < n; i++) {
      a->m.lock_sharable();
      a->m.unlock_sharable();
    }
  } else {
    for (long i = 0; i < n; i++) {
      a->m.lock();
      a->m.unlock();
    }
  }
  return (double)(now_ns() - t0) / (double)n;
}

static void worker(area *a, int idx, bool writer) {
  long n = 0;
  while (!a->go) {
  }
  while (!a->stop) {
    if (writer) {
      a->m.lock();
      for (int f = 0; f < 8; f++) a->rec[f]++;
      a->m.unlock();
    } else {
      a->m.lock_sharable();
      long s = 0;
      for (int f = 0; f < 8; f++) s += a->rec[f];
      if (s != 8 * a->rec[0]) std::abort();
      a->m.unlock_sharable();
    }
    n++;
  }
  a->counts[idx] = n;
  _exit(0);
}

static void mixed(area *a, double *total, double *writes) {
  a->go = a->stop = 0;
  pid_t pid[5];
  for (int i = 0; i < 5; i++) {
    pid[i] = fork();
    if (pid[i] == 0) worker(a, i, i == 4);
  }
  usleep(20000);
  uint64_t t0 = now_ns();
  a->go = 1;
  usleep(300000);
  a->stop = 1;
  for (int i = 0; i < 5; i++) waitpid(pid[i], nullptr, 0);
  double s = (double)(now_ns() - t0) / 1e9;
  long sum = 0;
  for (int i = 0; i < 5; i++) sum += a->counts[i];
  *total = (double)sum / s / 1e6;
  *writes = (double)a->counts[4] / s / 1e3;
}

int main() {
  void *mem = mmap(nullptr, sizeof(area), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return 1;
  area *a = new (mem) area();
  int reps = std::min(reps_of(5), 32);
  double ex[32], sh[32], tot[32], wr[32];
  uncontended(a, false, 200000);
  for (int i = 0; i < reps; i++) {
    ex[i] = uncontended(a, false, 2000000);
    sh[i] = uncontended(a, true, 2000000);
  }
  report("rwlock_uncontended_exclusive", median(ex, reps), "ns");
  report("rwlock_uncontended_sharable", median(sh, reps), "ns");
  int mreps = reps < 3 ? reps : 3;
  for (int i = 0; i < mreps; i++) mixed(a, &tot[i], &wr[i]);
  report("rwlock_4r1w_total", median(tot, mreps), "Mops/s");
  report("rwlock_4r1w_writes", median(wr, mreps), "kops/s");

  std::string name = "b" + std::to_string(getpid()) + ".nsm";
  double nv[32];
  {
    boost::interprocess::named_sharable_mutex nm(
        boost::interprocess::create_only, name.c_str());
    for (int i = 0; i < reps; i++) {
      uint64_t t0 = now_ns();
      for (long k = 0; k < 2000000; k++) {
        nm.lock();
        nm.unlock();
      }
      nv[i] = (double)(now_ns() - t0) / 2e6;
    }
  }
  boost::interprocess::named_sharable_mutex::remove(name.c_str());
  report("named_sharable_mutex_exclusive", median(nv, reps), "ns");

  name = "b" + std::to_string(getpid()) + ".nmx";
  {
    boost::interprocess::named_mutex nm(boost::interprocess::create_only,
                                        name.c_str());
    for (int i = 0; i < reps; i++) {
      uint64_t t0 = now_ns();
      for (long k = 0; k < 2000000; k++) {
        nm.lock();
        nm.unlock();
      }
      nv[i] = (double)(now_ns() - t0) / 2e6;
    }
  }
  boost::interprocess::named_mutex::remove(name.c_str());
  report("named_mutex_lock_unlock", median(nv, reps), "ns");

  name = "b" + std::to_string(getpid()) + ".nsem";
  {
    boost::interprocess::named_semaphore ns(boost::interprocess::create_only,
                                            name.c_str(), 0);
    for (int i = 0; i < reps; i++) {
      uint64_t t0 = now_ns();
      for (long k = 0; k < 2000000; k++) {
        ns.post();
        ns.wait();
      }
      nv[i] = (double)(now_ns() - t0) / 2e6;
    }
  }
  boost::interprocess::named_semaphore::remove(name.c_str());
  report("named_semaphore_post_wait", median(nv, reps), "ns");
  return 0;
}
