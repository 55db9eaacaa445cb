/* Counting semaphore: the count is the futex word; a separate count of
 * possible sleepers lets post skip the wake-up system call when nobody
 * waits.  Design notes: docs/sync.md. */
#include <errno.h>

#include "ipx/error.h"
#include "ipx/semaphore.h"
#include "ipx/time.h"
#include "os/futex.h"
#include "sync/spin.h"

#define IPX__SEM_MAGIC 0x49505301u /* "IPS", layout version 1 */
#define IPX__SEM_DESTROYED 0x49504400u

typedef struct ipx__sem {
  uint32_t value;   /* units; the futex word */
  uint32_t magic;
  uint32_t waiters; /* threads between announcing a sleep and leaving it */
  uint32_t reserved[13];
} ipx__sem_t;

_Static_assert(sizeof(ipx__sem_t) == IPX_SEMAPHORE_SIZE, "semaphore size");
_Static_assert(_Alignof(ipx_semaphore_t) == 8, "semaphore alignment");
_Static_assert(_Alignof(ipx__sem_t) <= _Alignof(ipx_semaphore_t),
               "semaphore alignment");

#define S(p) ((ipx__sem_t *)(void *)(p))

static int check(const ipx__sem_t *s) {
  if (s == NULL) return IPX_EINVAL;
  uint32_t m = __atomic_load_n(&s->magic, __ATOMIC_RELAXED);
  if (m == IPX__SEM_MAGIC) return 0;
  return (m == 0 || m == IPX__SEM_DESTROYED) ? IPX_EINVAL : IPX_ECORRUPT;
}

/* Take a unit if there is one. */
static inline int take(ipx__sem_t *s) {
  uint32_t v = __atomic_load_n(&s->value, __ATOMIC_SEQ_CST);
  while (v > 0) {
    if (__atomic_compare_exchange_n(&s->value, &v, v - 1, 0, __ATOMIC_ACQUIRE,
                                    __ATOMIC_RELAXED))
      return 1;
  }
  return 0;
}

int ipx_semaphore_init(ipx_semaphore_t *ps, unsigned value) {
  ipx__sem_t *s = S(ps);
  if (s == NULL || value > IPX_SEMAPHORE_VALUE_MAX) return IPX_EINVAL;
  *s = (ipx__sem_t){0};
  s->value = value;
  __atomic_store_n(&s->magic, IPX__SEM_MAGIC, __ATOMIC_RELEASE);
  return 0;
}

int ipx_semaphore_destroy(ipx_semaphore_t *ps) {
  ipx__sem_t *s = S(ps);
  int r = check(s);
  if (r != 0) return r;
  __atomic_store_n(&s->magic, IPX__SEM_DESTROYED, __ATOMIC_RELEASE);
  return 0;
}

int ipx_semaphore_post(ipx_semaphore_t *ps) {
  ipx__sem_t *s = S(ps);
  int r = check(s);
  if (r != 0) return r;
  uint32_t v = __atomic_load_n(&s->value, __ATOMIC_RELAXED);
  do {
    if (v >= IPX_SEMAPHORE_VALUE_MAX) return IPX_EOVERFLOW;
  } while (!__atomic_compare_exchange_n(&s->value, &v, v + 1, 0,
                                        __ATOMIC_SEQ_CST, __ATOMIC_RELAXED));
  /* Pairs with the waiter's increment of `waiters` before it re-reads the
   * value: either it sees our unit or we see it. */
  if (__atomic_load_n(&s->waiters, __ATOMIC_SEQ_CST) != 0)
    ipx__futex_wake(&s->value, 1);
  return 0;
}

static int sem_wait(ipx__sem_t *s, uint64_t deadline) {
  int r = check(s);
  if (r != 0) return r;
  if (take(s)) return 0;
  for (unsigned i = ipx__spin_count(IPX__SPIN_WAIT); i > 0; i--) {
    if (__atomic_load_n(&s->value, __ATOMIC_RELAXED) != 0 && take(s)) return 0;
    ipx__cpu_relax();
  }
  __atomic_fetch_add(&s->waiters, 1, __ATOMIC_SEQ_CST);
  for (;;) {
    if (take(s)) {
      r = 0;
      break;
    }
    if (ipx__futex_wait(&s->value, 0, deadline) == -ETIMEDOUT) {
      r = take(s) ? 0 : IPX_ETIMEDOUT;
      break;
    }
  }
  __atomic_fetch_sub(&s->waiters, 1, __ATOMIC_RELAXED);
  return r;
}

int ipx_semaphore_wait(ipx_semaphore_t *s) {
  return sem_wait(S(s), IPX_FOREVER);
}

int ipx_semaphore_wait_until(ipx_semaphore_t *s, uint64_t deadline_ns) {
  return sem_wait(S(s), deadline_ns);
}

int ipx_semaphore_wait_for(ipx_semaphore_t *s, uint64_t timeout_ns) {
  return sem_wait(S(s), ipx_deadline_after(timeout_ns));
}

int ipx_semaphore_try_wait(ipx_semaphore_t *ps) {
  ipx__sem_t *s = S(ps);
  int r = check(s);
  if (r != 0) return r;
  return take(s) ? 0 : IPX_EBUSY;
}

int ipx_semaphore_value(ipx_semaphore_t *ps, unsigned *value) {
  ipx__sem_t *s = S(ps);
  int r = check(s);
  if (r != 0) return r;
  if (value == NULL) return IPX_EINVAL;
  *value = __atomic_load_n(&s->value, __ATOMIC_RELAXED);
  return 0;
}
