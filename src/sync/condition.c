/* Condition variable: a sequence counter that every signal advances, so a
 * waiter sleeps on "the counter still has the value I read while holding
 * the mutex" and cannot miss a signal given after that.  The kernel wakes
 * only live sleepers, so a killed waiter never absorbs a wake-up, and there
 * is no per-waiter state for destroy to wait for.  Design notes:
 * docs/sync.md. */
#include <errno.h>
#include <limits.h>

#include "ipx/condition.h"
#include "ipx/error.h"
#include "ipx/time.h"
#include "os/futex.h"
#include "sync/mutex_internal.h"
#include "sync/spin.h"

#define IPX__COND_MAGIC 0x49504301u /* "IPC", layout version 1 */
#define IPX__COND_DESTROYED 0x49504400u

typedef struct ipx__cond {
  uint32_t seq;     /* advanced by every signal; the futex word */
  uint32_t magic;
  uint32_t waiters; /* threads between announcing a wait and leaving it */
  uint32_t reserved[13];
} ipx__cond_t;

_Static_assert(sizeof(ipx__cond_t) == IPX_CONDITION_SIZE, "condition size");
_Static_assert(_Alignof(ipx_condition_t) == 8, "condition alignment");

#define C(p) ((ipx__cond_t *)(void *)(p))

static int check(const ipx__cond_t *c) {
  if (c == NULL) return IPX_EINVAL;
  uint32_t m = __atomic_load_n(&c->magic, __ATOMIC_RELAXED);
  if (m == IPX__COND_MAGIC) return 0;
  return (m == 0 || m == IPX__COND_DESTROYED) ? IPX_EINVAL : IPX_ECORRUPT;
}

int ipx_condition_init(ipx_condition_t *pc) {
  ipx__cond_t *c = C(pc);
  if (c == NULL) return IPX_EINVAL;
  *c = (ipx__cond_t){0};
  __atomic_store_n(&c->magic, IPX__COND_MAGIC, __ATOMIC_RELEASE);
  return 0;
}

static int wake(ipx__cond_t *c, int n) {
  int r = check(c);
  if (r != 0) return r;
  __atomic_fetch_add(&c->seq, 1, __ATOMIC_SEQ_CST);
  /* Pairs with the waiter's increment of `waiters` before it reads seq:
   * either it sees the new seq or we see it waiting. */
  if (__atomic_load_n(&c->waiters, __ATOMIC_SEQ_CST) != 0)
    ipx__futex_wake(&c->seq, n);
  return 0;
}

int ipx_condition_signal(ipx_condition_t *c) { return wake(C(c), 1); }

int ipx_condition_broadcast(ipx_condition_t *c) { return wake(C(c), INT_MAX); }

int ipx_condition_destroy(ipx_condition_t *pc) {
  ipx__cond_t *c = C(pc);
  int r = check(c);
  if (r != 0) return r;
  __atomic_store_n(&c->magic, IPX__COND_DESTROYED, __ATOMIC_RELEASE);
  __atomic_fetch_add(&c->seq, 1, __ATOMIC_SEQ_CST);
  if (__atomic_load_n(&c->waiters, __ATOMIC_SEQ_CST) != 0)
    ipx__futex_wake(&c->seq, INT_MAX);
  return 0;
}

int ipx_condition_wait_until(ipx_condition_t *pc, ipx_mutex_t *m,
                             uint64_t deadline_ns) {
  ipx__cond_t *c = C(pc);
  int r = check(c);
  if (r != 0) return r;
  __atomic_fetch_add(&c->waiters, 1, __ATOMIC_SEQ_CST);
  uint32_t seq = __atomic_load_n(&c->seq, __ATOMIC_SEQ_CST);
  r = ipx__mutex_release_for_wait(m);
  if (r != 0) {
    __atomic_fetch_sub(&c->waiters, 1, __ATOMIC_RELAXED);
    return r;
  }
  int timed_out = 0;
  unsigned spin = ipx__spin_count(IPX__SPIN_WAIT);
  while (spin > 0 && __atomic_load_n(&c->seq, __ATOMIC_ACQUIRE) == seq) {
    ipx__cpu_relax();
    spin--;
  }
  if (spin == 0) {
    int w;
    do
      w = ipx__futex_wait(&c->seq, seq, deadline_ns);
    while (w == -EINTR);
    timed_out = w == -ETIMEDOUT;
  }
  __atomic_fetch_sub(&c->waiters, 1, __ATOMIC_RELAXED);
  r = ipx_mutex_lock(m);
  if (r != 0) return r; /* IPX_EOWNERDEAD (held), IPX_ENOTRECOVERABLE... */
  return timed_out ? IPX_ETIMEDOUT : 0;
}

int ipx_condition_wait(ipx_condition_t *c, ipx_mutex_t *m) {
  return ipx_condition_wait_until(c, m, IPX_FOREVER);
}

int ipx_condition_wait_for(ipx_condition_t *c, ipx_mutex_t *m,
                           uint64_t timeout_ns) {
  return ipx_condition_wait_until(c, m, ipx_deadline_after(timeout_ns));
}
