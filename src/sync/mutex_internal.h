/* The layout behind ipx_mutex_t / ipx_recursive_mutex_t (docs/FORMAT.md)
 * and what the condition variable needs from a mutex. */
#ifndef IPX_SYNC_MUTEX_INTERNAL_H
#define IPX_SYNC_MUTEX_INTERNAL_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "ipx/mutex.h"
#include "os/futex.h"
#include "sync/robust.h"
#include "sync/tsan.h"

/* Magic words: "IPM" / "IPR" and the layout version in the low byte.  A
 * plain mutex of layout 1 (no identity) is still accepted: it works, it is
 * just never the target of a condition's requeue. */
#define IPX__MUTEX_MAGIC 0x49504d02u
#define IPX__MUTEX_MAGIC_V1 0x49504d01u
#define IPX__RMUTEX_MAGIC 0x49505201u
#define IPX__MUTEX_DESTROYED 0x49504400u

/* The TID bits of a mutex nobody can ever lock again (no thread has this
 * TID: PID_MAX_LIMIT is 2^22). */
#define IPX__MUTEX_NOTREC IPX__FUTEX_TID_MASK

typedef struct ipx__mutex {
  /* owner TID | FUTEX_WAITERS | FUTEX_OWNER_DIED.  OWNER_DIED together with
   * an owner TID means "owned, not yet marked consistent". */
  uint32_t word;
  uint32_t magic;
  uint32_t count; /* recursion depth (recursive kind); owner-only */
  uint32_t reserved0;
  /* Random, non-zero, set at init (plain mutex of layout 2; 0 otherwise):
   * lets a condition's signaller tell this mutex from any other lock it
   * holds at the same address (condition.c). */
  uint64_t id;
  uint64_t prev; /* robust list node: owner-local addresses (robust.h) */
  uint64_t next;
  uint32_t reserved1[6];
} ipx__mutex_t;

_Static_assert(sizeof(ipx__mutex_t) == IPX_MUTEX_SIZE, "mutex size");
_Static_assert(sizeof(ipx__mutex_t) == IPX_RECURSIVE_MUTEX_SIZE,
               "recursive mutex size");
_Static_assert(_Alignof(ipx__mutex_t) == 8, "mutex alignment");
_Static_assert(_Alignof(ipx_mutex_t) == 8, "public mutex alignment");
_Static_assert(sizeof(ipx_mutex_t) == 64 && sizeof(ipx_recursive_mutex_t) == 64,
               "public mutex sizes");
_Static_assert(_Alignof(ipx_recursive_mutex_t) == 8,
               "public recursive mutex alignment");
IPX__ROBUST_LAYOUT_CHECK(ipx__mutex_t, word, prev, next);
/* Inside the first 40 bytes, which every entry of a robust list has mapped
 * (glibc's pthread_mutex_t is 40 bytes): condition.c reads it from any
 * lock the calling thread holds. */
_Static_assert(offsetof(ipx__mutex_t, magic) == 4 &&
                   offsetof(ipx__mutex_t, id) == 16,
               "mutex magic and identity offsets");

/* Check that `m` is a plain mutex the caller holds and give its identity
 * (0 for a layout-1 mutex).  IPX_EINVAL, IPX_ECORRUPT, IPX_ENOTOWNER,
 * IPX_ENOTSUP. */
int ipx__mutex_wait_check(ipx_mutex_t *m, uint64_t *id);

/* Release `m`, held by the caller, for a condition wait.  A mutex still
 * inconsistent (owner died, not yet consistent) is released as "owner
 * died", so whoever takes it next (the waiter itself, usually) gets
 * IPX_EOWNERDEAD again instead of the mutex becoming unrecoverable.
 * 0, IPX_EINVAL, IPX_ECORRUPT, IPX_ENOTOWNER, IPX_ENOTSUP. */
int ipx__mutex_release_for_wait(ipx_mutex_t *m);

/* Re-take `m` after a condition wait that may have slept: as
 * ipx_mutex_lock, except that the word is taken with FUTEX_WAITERS set, as
 * by any thread that slept on it, because a waiter may have been requeued
 * onto it and others may still sleep there. */
int ipx__mutex_lock_after_wait(ipx_mutex_t *m);

/* ---- the uncontended paths ------------------------------------------- */
/* Here rather than in mutex.c so that the segment lock (segment_internal.h)
 * inlines them into its own fast path instead of calling through. */

/* Take an unlocked mutex of kind `magic` with one compare-and-swap.  1 on
 * success; 0 for everything else (held, even by the caller, owner died,
 * not recoverable, wrong kind, thread not yet known), which the caller
 * hands to the slow path. */
static inline int ipx__mutex_try_fast(ipx__mutex_t *m, uint32_t magic,
                                      ipx__robust_self_t *s) {
  if (__builtin_expect(m == NULL || s->tid == 0 ||
                           __atomic_load_n(&m->magic, __ATOMIC_RELAXED) !=
                               magic,
                       0))
    return 0;
  unsigned tflags = IPX__TSAN_TRY | (magic == IPX__RMUTEX_MAGIC
                                         ? IPX__TSAN_WRITE_REENTRANT
                                         : 0);
  IPX__TSAN_PRE_LOCK(m, tflags);
  ipx__robust_pending(s, &m->word);
  uint32_t expected = 0;
  if (__builtin_expect(
          __atomic_compare_exchange_n(&m->word, &expected, s->tid, 0,
                                      __ATOMIC_ACQUIRE, __ATOMIC_RELAXED),
          1)) {
    ipx__robust_enqueue(s, &m->word);
    IPX__TSAN_POST_LOCK(m, tflags, 0);
    return 1;
  }
  ipx__robust_cancel(s);
  IPX__TSAN_POST_LOCK(m, tflags | IPX__TSAN_TRY_FAILED, 0);
  return 0;
}

/* Release a word we own to `final` (0, or OWNER_DIED to hand the
 * inconsistency on, or NOTREC), waking one waiter (all for NOTREC). */
static inline void ipx__mutex_release(ipx__mutex_t *m, ipx__robust_self_t *s,
                                      uint32_t final, unsigned tflags) {
  IPX__TSAN_PRE_UNLOCK(m, tflags);
  ipx__robust_release_begin(s, &m->word);
  uint32_t old = __atomic_exchange_n(&m->word, final, __ATOMIC_RELEASE);
  if (final == IPX__MUTEX_NOTREC)
    ipx__futex_wake(&m->word, INT_MAX);
  else if (old & IPX__FUTEX_WAITERS)
    ipx__futex_wake(&m->word, 1);
  ipx__robust_release_end(s);
  IPX__TSAN_POST_UNLOCK(m, tflags);
}

/* Release a mutex of kind `magic` the caller holds consistently (a
 * recursive one: the innermost level).  1 done; 0 for the slow path
 * (not the owner, inconsistent, wrong kind). */
static inline int ipx__mutex_unlock_fast(ipx__mutex_t *m, uint32_t magic,
                                         ipx__robust_self_t *s) {
  if (__builtin_expect(m == NULL || s->tid == 0, 0)) return 0;
  uint32_t v = __atomic_load_n(&m->word, __ATOMIC_RELAXED);
  /* One compare checks ownership and consistency at once; the lock taken
   * last heads the thread's list (anything else: the slow path checks the
   * word is really linked there, ipx__robust_linked). */
  if (__builtin_expect((v & ~IPX__FUTEX_WAITERS) != s->tid ||
                           ((uintptr_t)s->head->list.next & ~(uintptr_t)1) !=
                               (uintptr_t)IPX__ROBUST_ENTRY(&m->word) ||
                           __atomic_load_n(&m->magic, __ATOMIC_RELAXED) !=
                               magic,
                       0))
    return 0;
  if (magic == IPX__RMUTEX_MAGIC) {
    if (m->count > 1) {
      m->count--;
      return 1;
    }
    ipx__mutex_release(m, s, 0, IPX__TSAN_WRITE_REENTRANT);
  } else {
    ipx__mutex_release(m, s, 0, 0);
  }
  return 1;
}

#endif /* IPX_SYNC_MUTEX_INTERNAL_H */
