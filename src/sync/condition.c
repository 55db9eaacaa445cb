/* Condition variable: a sequence counter that every signal advances, so a
 * waiter sleeps on "the counter still has the value I read while holding
 * the mutex" and cannot miss a signal given after that.  The kernel wakes
 * only live sleepers, so a killed waiter never absorbs a wake-up, and there
 * is no per-waiter state for destroy to wait for.  A signaller that holds
 * the waiters' mutex moves them onto the mutex word instead of waking them
 * (wait morphing).  Design notes: docs/sync.md. */
#include <errno.h>
#include <limits.h>
#include <stddef.h>

#include "ipx/condition.h"
#include "ipx/error.h"
#include "ipx/time.h"
#include "os/futex.h"
#include "sync/mutex_internal.h"
#include "sync/spin.h"

#define IPX__COND_MAGIC 0x49504302u /* "IPC", layout version 2 */
/* Layout 1 lacks nothing the code needs (its reserved bytes are where
 * layout 2 keeps the mutex record), so it is still accepted. */
#define IPX__COND_MAGIC_V1 0x49504301u
#define IPX__COND_DESTROYED 0x49504400u

typedef struct ipx__cond {
  uint32_t seq;     /* advanced by every signal; the futex word */
  uint32_t magic;
  uint32_t waiters; /* threads between announcing a wait and leaving it */
  uint32_t reserved0;
  /* The latest waiter's mutex: its address minus the condition's in the
   * waiter's process, and its identity (0: do not requeue). */
  int64_t mutex_off;
  uint64_t mutex_id;
  uint32_t reserved1[8];
} ipx__cond_t;

_Static_assert(sizeof(ipx__cond_t) == IPX_CONDITION_SIZE, "condition size");
_Static_assert(_Alignof(ipx_condition_t) == 8, "condition alignment");
_Static_assert(offsetof(ipx__cond_t, mutex_off) == 16 &&
                   offsetof(ipx__cond_t, mutex_id) == 24,
               "condition layout");

#define C(p) ((ipx__cond_t *)(void *)(p))
#define LOAD(p) __atomic_load_n((p), __ATOMIC_RELAXED)

static int check(const ipx__cond_t *c) {
  if (c == NULL) return IPX_EINVAL;
  uint32_t m = LOAD(&c->magic);
  if (m == IPX__COND_MAGIC || m == IPX__COND_MAGIC_V1) return 0;
  return (m == 0 || m == IPX__COND_DESTROYED) ? IPX_EINVAL : IPX_ECORRUPT;
}

int ipx_condition_init(ipx_condition_t *pc) {
  ipx__cond_t *c = C(pc);
  if (c == NULL) return IPX_EINVAL;
  *c = (ipx__cond_t){0};
  __atomic_store_n(&c->magic, IPX__COND_MAGIC, __ATOMIC_RELEASE);
  return 0;
}

/* The waiters' mutex word, if the calling thread holds that mutex, else
 * NULL.  The recorded offset may point anywhere in this process (the two
 * objects may be mapped at another distance here), so the candidate is
 * first found among the locks this thread holds (its robust list, which
 * only links mapped memory) before any byte of it is read; then it must be
 * held by this thread and carry the recorded identity (docs/sync.md). */
static uint32_t *requeue_target(const ipx__cond_t *c) {
  const ipx__robust_self_t *s = &ipx__robust_tls;
  if (s->tid == 0) return NULL; /* this thread holds no ipx lock */
  uint64_t id = LOAD(&c->mutex_id);
  if (id == 0) return NULL;
  uintptr_t a = (uintptr_t)c + (uint64_t)LOAD(&c->mutex_off);
  if ((a & 7) != 0 || !ipx__robust_holds(s, a)) return NULL;
  ipx__mutex_t *m = (ipx__mutex_t *)a;
  if ((LOAD(&m->word) & IPX__FUTEX_TID_MASK) != s->tid ||
      LOAD(&m->magic) != IPX__MUTEX_MAGIC || LOAD(&m->id) != id)
    return NULL;
  return &m->word;
}

static int wake(ipx__cond_t *c, int n) {
  int r = check(c);
  if (r != 0) return r;
  uint32_t seq = __atomic_add_fetch(&c->seq, 1, __ATOMIC_SEQ_CST);
  /* Pairs with the waiter's increment of `waiters` before it reads seq:
   * either it sees the new seq or we see it waiting. */
  if (__atomic_load_n(&c->waiters, __ATOMIC_SEQ_CST) == 0) return 0;
  uint32_t *word = requeue_target(c);
  if (word != NULL) {
    /* We own the word, so our unlock (or the kernel, if we die first)
     * wakes one sleeper of it once this bit is set; set it before anyone
     * can be sleeping there because of us. */
    __atomic_fetch_or(word, IPX__FUTEX_WAITERS, __ATOMIC_RELAXED);
    /* -EAGAIN: another signal moved seq on; wake as if unsure. */
    if (ipx__futex_cmp_requeue(&c->seq, seq, n, word) >= 0) return 0;
  }
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
  uint64_t id;
  r = ipx__mutex_wait_check(m, &id);
  if (r != 0) return r;
  /* Written while holding m: a signaller holding m sees it. */
  int64_t off = (int64_t)((uintptr_t)m - (uintptr_t)c);
  if (LOAD(&c->mutex_off) != off)
    __atomic_store_n(&c->mutex_off, off, __ATOMIC_RELAXED);
  if (LOAD(&c->mutex_id) != id)
    __atomic_store_n(&c->mutex_id, id, __ATOMIC_RELAXED);
  __atomic_fetch_add(&c->waiters, 1, __ATOMIC_SEQ_CST);
  uint32_t seq = __atomic_load_n(&c->seq, __ATOMIC_SEQ_CST);
  r = ipx__mutex_release_for_wait(m);
  if (r != 0) {
    __atomic_fetch_sub(&c->waiters, 1, __ATOMIC_RELAXED);
    return r;
  }
  /* From here on we are a would-be locker of m, as in lock_slow: if we die
   * after a requeue moved us onto m's word and its unlock woke us, the
   * kernel sees the word free with our operation pending and wakes the
   * next sleeper there, so we cannot swallow that wake-up. */
  ipx__robust_self_t *s = &ipx__robust_tls;
  ipx__robust_pending(s, (uint32_t *)(void *)m);
  int timed_out = 0, slept = 0;
  unsigned spin = ipx__spin_count(IPX__SPIN_WAIT);
  while (spin > 0 && __atomic_load_n(&c->seq, __ATOMIC_ACQUIRE) == seq) {
    ipx__cpu_relax();
    spin--;
  }
  if (spin == 0) {
    int w;
    do {
      w = ipx__futex_wait(&c->seq, seq, deadline_ns);
      slept |= w != -EAGAIN;
    } while (w == -EINTR);
    timed_out = w == -ETIMEDOUT;
  }
  __atomic_fetch_sub(&c->waiters, 1, __ATOMIC_RELAXED);
  /* A sleep may have ended on m's word, where other requeued waiters may
   * still sleep: take m as a woken mutex waiter does, announcing them. */
  r = slept ? ipx__mutex_lock_after_wait(m) : ipx_mutex_lock(m);
  if (r != 0) {
    if (r != IPX_EOWNERDEAD) ipx__robust_cancel(s);
    return r; /* IPX_EOWNERDEAD (held), IPX_ENOTRECOVERABLE... */
  }
  return timed_out ? IPX_ETIMEDOUT : 0;
}

int ipx_condition_wait(ipx_condition_t *c, ipx_mutex_t *m) {
  return ipx_condition_wait_until(c, m, IPX_FOREVER);
}

int ipx_condition_wait_for(ipx_condition_t *c, ipx_mutex_t *m,
                           uint64_t timeout_ns) {
  return ipx_condition_wait_until(c, m, ipx_deadline_after(timeout_ns));
}
