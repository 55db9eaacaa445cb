/* ipx/mutex.h - robust mutexes placed in shared memory
 * (Boost: interprocess_mutex, interprocess_recursive_mutex).
 *
 * An ipx_mutex_t is a 64-byte, 8-aligned struct that lives anywhere both
 * sides can map: a shared memory object, a segment, memory inherited over
 * fork().  It works between processes and between threads of one process,
 * at any mapping address in each process.  Initialise it once (by one
 * process) with ipx_mutex_init(); ipx_mutex_t is plain bytes, never copy an
 * initialised one.  See docs/sync.md for the design and docs/FORMAT.md for
 * the byte layout.
 *
 * Naming of the waits, shared by every ipx lock: _lock blocks, _try_lock
 * never blocks (IPX_EBUSY), _lock_until takes an absolute CLOCK_MONOTONIC
 * deadline in ns, _lock_for a relative timeout in ns (IPX_ETIMEDOUT).
 *
 * Owner death.  If the thread holding a mutex dies (its process is killed,
 * or the thread exits), the kernel marks the mutex and wakes a waiter; the
 * next locker gets IPX_EOWNERDEAD *with the lock held*.  It may repair the
 * protected data and call ipx_*_consistent(), after which the mutex is
 * normal again.  If it unlocks without calling consistent (or dies too, in
 * which case the next locker gets IPX_EOWNERDEAD again), the mutex becomes
 * permanently unusable: every later lock returns IPX_ENOTRECOVERABLE, and
 * only destroy + init revive it.  Death is detected through the kernel's
 * robust futex list of the owner thread, never by a process id.
 *
 * Memory holding a locked mutex must not be unmapped or reused while it is
 * locked: the kernel writes into it when the owner dies.
 *
 * Error codes common to every call below: IPX_EINVAL for a NULL pointer or
 * memory that is not an initialised mutex of this kind (never initialised,
 * destroyed, or the other kind), IPX_ECORRUPT for memory whose magic word is
 * neither (overwritten), IPX_ENOTSUP when the calling thread has no glibc
 * robust list in the expected layout.  All calls are thread-safe; none is
 * async-signal-safe. */
#ifndef IPX_MUTEX_H
#define IPX_MUTEX_H

#include "common.h"
#include "error.h"

IPX_EXTERN_C_BEGIN

#define IPX_MUTEX_SIZE 64
#define IPX_RECURSIVE_MUTEX_SIZE 64

typedef struct ipx_mutex {
  union {
    unsigned char bytes_[IPX_MUTEX_SIZE];
    uint64_t align_;
  } u_;
} ipx_mutex_t;

typedef struct ipx_recursive_mutex {
  union {
    unsigned char bytes_[IPX_RECURSIVE_MUTEX_SIZE];
    uint64_t align_;
  } u_;
} ipx_recursive_mutex_t;

IPX_STATIC_ASSERT(sizeof(ipx_mutex_t) == IPX_MUTEX_SIZE, "ipx_mutex_t size");
IPX_STATIC_ASSERT(sizeof(ipx_recursive_mutex_t) == IPX_RECURSIVE_MUTEX_SIZE,
                  "ipx_recursive_mutex_t size");

/* Initialise *m unlocked.  Initialising a mutex that is in use is
 * undefined.  Errors: IPX_EINVAL (NULL), IPX_ENOTSUP. */
IPX_API int ipx_mutex_init(ipx_mutex_t *m);

/* Invalidate *m; later use returns IPX_EINVAL.  Never blocks.  A mutex
 * whose owner died (not re-locked since) or that is not recoverable may be
 * destroyed.  Errors: IPX_EBUSY (locked), common errors. */
IPX_API int ipx_mutex_destroy(ipx_mutex_t *m);

/* Lock.  0, or IPX_EOWNERDEAD (locked; the previous owner died, see above).
 * Errors (not locked): IPX_EDEADLK (the caller holds it already),
 * IPX_ENOTRECOVERABLE, common errors. */
IPX_API int ipx_mutex_lock(ipx_mutex_t *m);

/* Lock if free now, never waiting.  As ipx_mutex_lock, plus IPX_EBUSY. */
IPX_API int ipx_mutex_try_lock(ipx_mutex_t *m);

/* Lock, waiting at most until `deadline_ns` (CLOCK_MONOTONIC, IPX_FOREVER
 * for no limit).  As ipx_mutex_lock, plus IPX_ETIMEDOUT. */
IPX_API int ipx_mutex_lock_until(ipx_mutex_t *m, uint64_t deadline_ns);

/* ipx_mutex_lock_until(m, ipx_deadline_after(timeout_ns)). */
IPX_API int ipx_mutex_lock_for(ipx_mutex_t *m, uint64_t timeout_ns);

/* Unlock.  Unlocking a mutex that is still inconsistent (IPX_EOWNERDEAD
 * without ipx_mutex_consistent) makes it not recoverable, waking every
 * waiter with IPX_ENOTRECOVERABLE.  No system call unless a thread waits.
 * Errors: IPX_ENOTOWNER (the calling thread does not hold it), common
 * errors. */
IPX_API int ipx_mutex_unlock(ipx_mutex_t *m);

/* Mark a mutex acquired with IPX_EOWNERDEAD as repaired.
 * Errors: IPX_ENOTOWNER (not held by the caller), IPX_EINVAL (it is not
 * inconsistent), common errors. */
IPX_API int ipx_mutex_consistent(ipx_mutex_t *m);

/* The recursive mutex: the same, except that its owner may lock it again
 * (a depth count, up to UINT32_MAX: IPX_EOVERFLOW beyond) and must unlock
 * it as many times.  Re-locking never returns IPX_EDEADLK, and try_lock by
 * the owner succeeds.  If the owner dies at any depth, the next locker gets
 * IPX_EOWNERDEAD holding it at depth 1.  Unlocking at depth > 1 only
 * decrements, even while inconsistent; the final unlock of an inconsistent
 * mutex makes it not recoverable. */
IPX_API int ipx_recursive_mutex_init(ipx_recursive_mutex_t *m);
IPX_API int ipx_recursive_mutex_destroy(ipx_recursive_mutex_t *m);
IPX_API int ipx_recursive_mutex_lock(ipx_recursive_mutex_t *m);
IPX_API int ipx_recursive_mutex_try_lock(ipx_recursive_mutex_t *m);
IPX_API int ipx_recursive_mutex_lock_until(ipx_recursive_mutex_t *m,
                                           uint64_t deadline_ns);
IPX_API int ipx_recursive_mutex_lock_for(ipx_recursive_mutex_t *m,
                                         uint64_t timeout_ns);
IPX_API int ipx_recursive_mutex_unlock(ipx_recursive_mutex_t *m);
IPX_API int ipx_recursive_mutex_consistent(ipx_recursive_mutex_t *m);

/* ---- scoped locking ----------------------------------------------------
 *
 *   int rc;
 *   IPX_WITH_LOCK(&shared->lock, &rc) {
 *     if (rc == IPX_EOWNERDEAD) { repair(shared); ipx_mutex_consistent(...); }
 *     ...
 *   }
 *   if (rc != 0 && rc != IPX_EOWNERDEAD) handle_error(rc);
 *
 * The block runs only if the lock was taken (rc 0 or IPX_EOWNERDEAD: the
 * owner-death warning is handed to the block, not treated as a failure),
 * and the lock is released however the block is left by normal control
 * flow: falling off its end, break, continue, return, or a goto out of it
 * (a cleanup attribute on the guard variable does it).  rc must not be
 * NULL (the block is then skipped).  Not covered: longjmp/siglongjmp out of
 * the block, exit(), thread cancellation, and C++ exceptions thrown
 * through it in C code built without -fexceptions: the lock stays held.
 * Because the macro is a loop, a break or continue inside the block leaves
 * the block, not an enclosing loop.  An error of the final unlock is not
 * reported; unlocking inside the block by hand is not allowed.  Needs GCC
 * or Clang (the cleanup attribute). */
typedef struct ipx_mutex_guard {
  ipx_mutex_t *m_;
  int held_;
} ipx_mutex_guard_t;
typedef struct ipx_recursive_mutex_guard {
  ipx_recursive_mutex_t *m_;
  int held_;
} ipx_recursive_mutex_guard_t;

static inline ipx_mutex_guard_t ipx__mutex_guard_take(ipx_mutex_t *m,
                                                      int *rc) {
  ipx_mutex_guard_t g;
  int r = rc ? ipx_mutex_lock(m) : (int)IPX_EINVAL;
  g.m_ = m;
  g.held_ = (r == 0 || r == (int)IPX_EOWNERDEAD);
  if (rc) *rc = r;
  return g;
}
static inline void ipx__mutex_guard_drop(ipx_mutex_guard_t *g) {
  if (g->held_) {
    g->held_ = 0;
    (void)ipx_mutex_unlock(g->m_);
  }
}
static inline ipx_recursive_mutex_guard_t ipx__recursive_mutex_guard_take(
    ipx_recursive_mutex_t *m, int *rc) {
  ipx_recursive_mutex_guard_t g;
  int r = rc ? ipx_recursive_mutex_lock(m) : (int)IPX_EINVAL;
  g.m_ = m;
  g.held_ = (r == 0 || r == (int)IPX_EOWNERDEAD);
  if (rc) *rc = r;
  return g;
}
static inline void ipx__recursive_mutex_guard_drop(
    ipx_recursive_mutex_guard_t *g) {
  if (g->held_) {
    g->held_ = 0;
    (void)ipx_recursive_mutex_unlock(g->m_);
  }
}

#define IPX__CAT2(a, b) a##b
#define IPX__CAT(a, b) IPX__CAT2(a, b)
#define IPX__GUARD IPX__CAT(ipx__guard_, __LINE__)

/* IPX_WITH_LOCK(ipx_mutex_t *m, int *rc) { block } */
#define IPX_WITH_LOCK(m, rc)                                             \
  for (ipx_mutex_guard_t IPX__GUARD                                      \
           __attribute__((cleanup(ipx__mutex_guard_drop))) =             \
               ipx__mutex_guard_take((m), (rc));                         \
       IPX__GUARD.held_; ipx__mutex_guard_drop(&IPX__GUARD))

/* IPX_WITH_RECURSIVE_LOCK(ipx_recursive_mutex_t *m, int *rc) { block } */
#define IPX_WITH_RECURSIVE_LOCK(m, rc)                                   \
  for (ipx_recursive_mutex_guard_t IPX__GUARD                            \
           __attribute__((cleanup(ipx__recursive_mutex_guard_drop))) =   \
               ipx__recursive_mutex_guard_take((m), (rc));               \
       IPX__GUARD.held_; ipx__recursive_mutex_guard_drop(&IPX__GUARD))

IPX_EXTERN_C_END

#endif /* IPX_MUTEX_H */
