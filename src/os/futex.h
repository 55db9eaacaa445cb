/* Futex system calls, static inline because they sit on the hot paths of
 * every ipx lock.
 *
 * Every call is process-shared (no FUTEX_PRIVATE_FLAG): the words live in
 * shared memory, and the kernel's robust-list processing wakes waiters with
 * a shared wake, which would never reach a private waiter.
 *
 * Waits take an absolute CLOCK_MONOTONIC deadline in ns (UINT64_MAX = no
 * deadline), passed to FUTEX_WAIT_BITSET, whose timeout is absolute and
 * measured on CLOCK_MONOTONIC: a restarted wait keeps the same deadline, so
 * "restart after EINTR with the remaining time" costs nothing. */
#ifndef IPX_OS_FUTEX_H
#define IPX_OS_FUTEX_H

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* Sleep while *word == expected, until woken or `deadline_ns` passes.
 * Returns 0 (woken, or spuriously), -EAGAIN (the word differed),
 * -ETIMEDOUT, -EINTR (a signal handler ran), other -errno. */
static inline int ipx__futex_wait(uint32_t *word, uint32_t expected,
                                  uint64_t deadline_ns) {
  struct timespec ts, *tsp = NULL;
  if (deadline_ns != UINT64_MAX) {
    ts.tv_sec = (time_t)(deadline_ns / 1000000000u);
    ts.tv_nsec = (long)(deadline_ns % 1000000000u);
    tsp = &ts;
  }
  if (syscall(SYS_futex, word, FUTEX_WAIT_BITSET, expected, tsp, NULL,
              FUTEX_BITSET_MATCH_ANY) == 0)
    return 0;
  return -errno;
}

/* Wake up to n sleepers of *word (INT_MAX: all).  Returns how many were
 * woken, or -errno. */
static inline int ipx__futex_wake(uint32_t *word, int n) {
  long r = syscall(SYS_futex, word, FUTEX_WAKE, n, NULL, NULL, 0);
  return r < 0 ? -errno : (int)r;
}

/* Move up to `nrequeue` sleepers of *from to *to without waking them, if
 * *from still equals `expected` (FUTEX_CMP_REQUEUE; nobody is woken).
 * Returns how many were moved, -EAGAIN (*from differed), or -errno. */
static inline int ipx__futex_cmp_requeue(uint32_t *from, uint32_t expected,
                                         int nrequeue, uint32_t *to) {
  /* The kernel reads the fourth argument as the requeue count here. */
  long r = syscall(SYS_futex, from, FUTEX_CMP_REQUEUE, 0,
                   (unsigned long)nrequeue, to, expected);
  return r < 0 ? -errno : (int)r;
}

/* One spin-wait step: tells the CPU we are spinning (and lets a sibling
 * hyperthread run). */
static inline void ipx__cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield" ::: "memory");
#else
  __asm__ __volatile__("" ::: "memory");
#endif
}

#endif /* IPX_OS_FUTEX_H */
