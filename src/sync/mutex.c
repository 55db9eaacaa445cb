/* Robust mutex and recursive mutex on a futex word that sits on the owner
 * thread's robust list (robust.h).  Design notes: docs/sync.md. */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "ipx/error.h"
#include "ipx/mutex.h"
#include "ipx/time.h"
#include "os/futex.h"
#include "sync/mutex_internal.h"
#include "sync/spin.h"
#include "sync/tsan.h"

#define W_WAITERS IPX__FUTEX_WAITERS
#define W_DIED IPX__FUTEX_OWNER_DIED
#define W_TID IPX__FUTEX_TID_MASK

#define LOAD(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define CAS_ACQ(p, expp, v)                                            \
  __atomic_compare_exchange_n((p), (expp), (v), 0, __ATOMIC_ACQUIRE, \
                              __ATOMIC_RELAXED)

enum { F_TRY = 1, F_TIMED = 2, F_SLEPT = 4 };

static int check_magic(const ipx__mutex_t *m, uint32_t magic) {
  if (m == NULL) return IPX_EINVAL;
  uint32_t got = LOAD(&m->magic);
  if (got == magic) return 0;
  if (magic == IPX__MUTEX_MAGIC && got == IPX__MUTEX_MAGIC_V1) return 0;
  /* Never initialised, destroyed, or the other kind: a usage error.
   * Anything else: the memory was overwritten. */
  if (got == 0 || got == IPX__MUTEX_DESTROYED || got == IPX__MUTEX_MAGIC ||
      got == IPX__MUTEX_MAGIC_V1 || got == IPX__RMUTEX_MAGIC)
    return IPX_EINVAL;
  return IPX_ECORRUPT;
}

/* A random non-zero identity.  It only has to differ from the identities
 * of the other mutexes one thread holds at once, so a weak fallback (when
 * getrandom is unavailable) is enough. */
static uint64_t new_identity(const void *where) {
  uint64_t x = 0;
  if (getrandom(&x, sizeof x, GRND_NONBLOCK) != (ssize_t)sizeof x) {
    static uint64_t counter;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^
        (uint64_t)(uintptr_t)where ^ ((uint64_t)ipx__robust_tls.tid << 40) ^
        __atomic_add_fetch(&counter, 0x9e3779b97f4a7c15ull, __ATOMIC_RELAXED);
    /* splitmix64's finaliser */
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    x ^= x >> 31;
  }
  return x != 0 ? x : 1;
}

static int mutex_init(ipx__mutex_t *m, uint32_t magic) {
  if (m == NULL) return IPX_EINVAL;
  ipx__robust_self_t *s;
  int r = ipx__robust_self(&s);
  if (r != 0) return r;
  memset(m, 0, sizeof *m);
  if (magic == IPX__MUTEX_MAGIC)
    __atomic_store_n(&m->id, new_identity(m), __ATOMIC_RELAXED);
  IPX__TSAN_CREATE(m, magic == IPX__RMUTEX_MAGIC ? IPX__TSAN_WRITE_REENTRANT
                                                 : 0);
  __atomic_store_n(&m->magic, magic, __ATOMIC_RELEASE);
  return 0;
}

static int mutex_destroy(ipx__mutex_t *m, uint32_t magic) {
  int r = check_magic(m, magic);
  if (r != 0) return r;
  uint32_t owner = LOAD(&m->word) & W_TID;
  if (owner != 0 && owner != IPX__MUTEX_NOTREC) return IPX_EBUSY;
  IPX__TSAN_DESTROY(m);
  __atomic_store_n(&m->magic, IPX__MUTEX_DESTROYED, __ATOMIC_RELAXED);
  __atomic_store_n(&m->word, 0, __ATOMIC_RELEASE);
  return 0;
}

/* Whether word value v of m (just read) is the calling thread's hold. */
static int mine(ipx__mutex_t *m, const ipx__robust_self_t *s, uint32_t v) {
  return (v & W_TID) == s->tid && ipx__robust_linked(s, &m->word);
}

/* Everything but the uncontended acquisition: validation, relock by the
 * owner, spinning, sleeping, owner death, timeouts. */
static int lock_slow(ipx__mutex_t *m, uint32_t magic, uint64_t deadline,
                     int flags) {
  int r = check_magic(m, magic);
  if (r != 0) return r;
  ipx__robust_self_t *s;
  r = ipx__robust_self(&s);
  if (r != 0) return r;
  const uint32_t tid = s->tid;
  const int recursive = magic == IPX__RMUTEX_MAGIC;
  const unsigned tflags = ((flags & (F_TRY | F_TIMED)) ? IPX__TSAN_TRY : 0) |
                          (recursive ? IPX__TSAN_WRITE_REENTRANT : 0);

  uint32_t v = LOAD(&m->word);
  /* Our TID in a word not on our list is someone else's hold (robust.h). */
  if (mine(m, s, v)) {
    if (!recursive) return IPX_EDEADLK;
    if (m->count == UINT32_MAX) return IPX_EOVERFLOW;
    m->count++;
    return 0;
  }

  IPX__TSAN_PRE_LOCK(m, tflags);
  ipx__robust_pending(s, &m->word);
  if (!(flags & F_TRY)) {
    for (unsigned i = ipx__spin_count(IPX__SPIN_MUTEX); i > 0; i--) {
      v = LOAD(&m->word);
      if ((v & W_TID) == 0 || (v & W_TID) == IPX__MUTEX_NOTREC) break;
      ipx__cpu_relax();
    }
  }
  /* After a sleep we cannot know whether others still sleep, so we take
   * the lock with FUTEX_WAITERS set and the unlock wakes one more. */
  uint32_t wbit = (flags & F_SLEPT) ? W_WAITERS : 0;
  for (;;) {
    v = LOAD(&m->word);
    if ((v & W_TID) == 0) {
      /* Free, possibly with OWNER_DIED: keeping that bit next to our TID
       * records "inconsistent" until ipx_mutex_consistent. */
      uint32_t nv = tid | (v & W_DIED) | (v & W_WAITERS) | wbit;
      if (CAS_ACQ(&m->word, &v, nv)) {
        ipx__robust_enqueue(s, &m->word);
        if (recursive) m->count = 1;
        IPX__TSAN_POST_LOCK(m, tflags, 0);
        return (v & W_DIED) ? IPX_EOWNERDEAD : 0;
      }
      continue;
    }
    if ((v & W_TID) == IPX__MUTEX_NOTREC) {
      r = IPX_ENOTRECOVERABLE;
      break;
    }
    if (flags & F_TRY) {
      r = IPX_EBUSY;
      break;
    }
    if (!(v & W_WAITERS)) {
      if (!CAS_ACQ(&m->word, &v, v | W_WAITERS)) continue;
      v |= W_WAITERS;
    }
    int w = ipx__futex_wait(&m->word, v, deadline);
    wbit = W_WAITERS;
    if (w == -ETIMEDOUT) {
      r = IPX_ETIMEDOUT;
      break;
    }
  }
  ipx__robust_cancel(s);
  IPX__TSAN_POST_LOCK(m, tflags | IPX__TSAN_TRY_FAILED, 0);
  return r;
}

static int unlock_slow(ipx__mutex_t *m, uint32_t magic) {
  int r = check_magic(m, magic);
  if (r != 0) return r;
  ipx__robust_self_t *s;
  r = ipx__robust_self(&s);
  if (r != 0) return r;
  uint32_t v = LOAD(&m->word);
  if (!mine(m, s, v)) return IPX_ENOTOWNER;
  const int recursive = magic == IPX__RMUTEX_MAGIC;
  if (recursive && m->count > 1) {
    m->count--;
    return 0;
  }
  /* Owned and still inconsistent: the data was never declared repaired. */
  ipx__mutex_release(m, s, (v & W_DIED) ? IPX__MUTEX_NOTREC : 0,
          recursive ? IPX__TSAN_WRITE_REENTRANT : 0);
  return 0;
}

static int consistent(ipx__mutex_t *m, uint32_t magic) {
  int r = check_magic(m, magic);
  if (r != 0) return r;
  ipx__robust_self_t *s;
  r = ipx__robust_self(&s);
  if (r != 0) return r;
  uint32_t v = LOAD(&m->word);
  if (!mine(m, s, v)) return IPX_ENOTOWNER;
  if (!(v & W_DIED)) return IPX_EINVAL;
  /* Others may be setting FUTEX_WAITERS meanwhile. */
  __atomic_fetch_and(&m->word, ~W_DIED, __ATOMIC_RELAXED);
  return 0;
}

#define M(p) ((ipx__mutex_t *)(void *)(p))

int ipx__mutex_wait_check(ipx_mutex_t *pm, uint64_t *id) {
  ipx__mutex_t *m = M(pm);
  int r = check_magic(m, IPX__MUTEX_MAGIC);
  if (r != 0) return r;
  ipx__robust_self_t *s;
  r = ipx__robust_self(&s);
  if (r != 0) return r;
  if (!mine(m, s, LOAD(&m->word))) return IPX_ENOTOWNER;
  *id = LOAD(&m->magic) == IPX__MUTEX_MAGIC ? LOAD(&m->id) : 0;
  return 0;
}

int ipx__mutex_lock_after_wait(ipx_mutex_t *m) {
  return lock_slow(M(m), IPX__MUTEX_MAGIC, IPX_FOREVER, F_SLEPT);
}

int ipx__mutex_release_for_wait(ipx_mutex_t *pm) {
  ipx__mutex_t *m = M(pm);
  int r = check_magic(m, IPX__MUTEX_MAGIC);
  if (r != 0) return r;
  ipx__robust_self_t *s;
  r = ipx__robust_self(&s);
  if (r != 0) return r;
  uint32_t v = LOAD(&m->word);
  if (!mine(m, s, v)) return IPX_ENOTOWNER;
  ipx__mutex_release(m, s, v & W_DIED, 0);
  return 0;
}

/* ---- ipx_mutex_t ------------------------------------------------------- */

int ipx_mutex_init(ipx_mutex_t *m) { return mutex_init(M(m), IPX__MUTEX_MAGIC); }

int ipx_mutex_destroy(ipx_mutex_t *m) {
  return mutex_destroy(M(m), IPX__MUTEX_MAGIC);
}

int ipx_mutex_lock(ipx_mutex_t *m) {
  if (ipx__mutex_try_fast(M(m), IPX__MUTEX_MAGIC, &ipx__robust_tls)) return 0;
  return lock_slow(M(m), IPX__MUTEX_MAGIC, IPX_FOREVER, 0);
}

int ipx_mutex_try_lock(ipx_mutex_t *m) {
  if (ipx__mutex_try_fast(M(m), IPX__MUTEX_MAGIC, &ipx__robust_tls)) return 0;
  return lock_slow(M(m), IPX__MUTEX_MAGIC, IPX_FOREVER, F_TRY);
}

int ipx_mutex_lock_until(ipx_mutex_t *m, uint64_t deadline_ns) {
  if (ipx__mutex_try_fast(M(m), IPX__MUTEX_MAGIC, &ipx__robust_tls)) return 0;
  return lock_slow(M(m), IPX__MUTEX_MAGIC, deadline_ns, F_TIMED);
}

int ipx_mutex_lock_for(ipx_mutex_t *m, uint64_t timeout_ns) {
  return ipx_mutex_lock_until(m, ipx_deadline_after(timeout_ns));
}

int ipx_mutex_unlock(ipx_mutex_t *m) {
  if (ipx__mutex_unlock_fast(M(m), IPX__MUTEX_MAGIC, &ipx__robust_tls)) return 0;
  return unlock_slow(M(m), IPX__MUTEX_MAGIC);
}

int ipx_mutex_consistent(ipx_mutex_t *m) {
  return consistent(M(m), IPX__MUTEX_MAGIC);
}

/* ---- ipx_recursive_mutex_t --------------------------------------------- */

int ipx_recursive_mutex_init(ipx_recursive_mutex_t *m) {
  return mutex_init(M(m), IPX__RMUTEX_MAGIC);
}

int ipx_recursive_mutex_destroy(ipx_recursive_mutex_t *m) {
  return mutex_destroy(M(m), IPX__RMUTEX_MAGIC);
}

int ipx_recursive_mutex_lock(ipx_recursive_mutex_t *m) {
  if (ipx__mutex_try_fast(M(m), IPX__RMUTEX_MAGIC, &ipx__robust_tls)) {
    M(m)->count = 1;
    return 0;
  }
  return lock_slow(M(m), IPX__RMUTEX_MAGIC, IPX_FOREVER, 0);
}

int ipx_recursive_mutex_try_lock(ipx_recursive_mutex_t *m) {
  if (ipx__mutex_try_fast(M(m), IPX__RMUTEX_MAGIC, &ipx__robust_tls)) {
    M(m)->count = 1;
    return 0;
  }
  return lock_slow(M(m), IPX__RMUTEX_MAGIC, IPX_FOREVER, F_TRY);
}

int ipx_recursive_mutex_lock_until(ipx_recursive_mutex_t *m,
                                   uint64_t deadline_ns) {
  if (ipx__mutex_try_fast(M(m), IPX__RMUTEX_MAGIC, &ipx__robust_tls)) {
    M(m)->count = 1;
    return 0;
  }
  return lock_slow(M(m), IPX__RMUTEX_MAGIC, deadline_ns, F_TIMED);
}

int ipx_recursive_mutex_lock_for(ipx_recursive_mutex_t *m,
                                 uint64_t timeout_ns) {
  return ipx_recursive_mutex_lock_until(m, ipx_deadline_after(timeout_ns));
}

int ipx_recursive_mutex_unlock(ipx_recursive_mutex_t *m) {
  if (ipx__mutex_unlock_fast(M(m), IPX__RMUTEX_MAGIC, &ipx__robust_tls)) return 0;
  return unlock_slow(M(m), IPX__RMUTEX_MAGIC);
}

int ipx_recursive_mutex_consistent(ipx_recursive_mutex_t *m) {
  return consistent(M(m), IPX__RMUTEX_MAGIC);
}
